"""The console never blocks PID 1, and keel's lines reach the kernel log.

Stalled console: ttyS0 is QEMU's `-serial pipe:`, a FIFO nobody on the host reads. Once its
64 KiB are full QEMU's UART keeps the byte it could not send (THRE stays clear), the guest
tty's buffer fills, and a blocking write(2) to the console sleeps for good: main's keel
did (keelctl timed out, the orphans stayed zombies, the power button did nothing). The
guest fills the console with `yes` for 2 s and kills it, so the console is stalled
whatever keel prints; then 10,000 orphans are reaped, and the power button must still power
the VM off within the shutdown deadline. The console tells us nothing, so the guest state
comes from keelctl over a virtio console (keel.debug=hvc0:rw) and from a second serial port
(ttyS1, a file here) where the flood script writes how far it got."""

import fcntl
import os
import re
import shutil
import struct
import subprocess
import tempfile
import termios
import time
from pathlib import Path

from common import BOOT_TIMEOUT, EXIT_TIMEOUT, REPO, VmTest

KEELCTL = Path(os.environ.get("KEELCTL", REPO / "target/x86_64-unknown-linux-gnu/release/keelctl"))
ORPHANS = 10_000
# Typed into the console shell. A non-interactive sh with its output away from the console
# (an interactive shell would print job numbers there, and block). `(true &)`: the subshell
# exits at once, so its child is an orphan for PID 1. How many processes are left a few
# seconds later tells whether keel kept reaping (an unreaped orphan stays a zombie, and the
# 256 MiB guest runs out of threads at about 1,500).
FLOOD = (
    "sh -c 'yes >/dev/console & y=$!; sleep 2; kill $y; echo filled >/dev/ttyS1;"
    f" i=0; while [ $i -lt {ORPHANS} ]; do (true &); i=$((i+1)); done;"
    " echo forked=$i >/dev/ttyS1; sleep 3;"
    " set -- /proc/[0-9]*; echo processes=$# >/dev/ttyS1'"
    " >/dev/null 2>&1\n"
)


def keelctl(sock, *args, timeout=5):
    if not KEELCTL.is_file():
        raise AssertionError(f"{KEELCTL} is missing: run `just keelctl`")
    try:
        return subprocess.run([str(KEELCTL), "--unix", str(sock), "--timeout", str(timeout), *args],
                              capture_output=True, text=True, timeout=timeout + 10)
    except subprocess.TimeoutExpired as e:
        return subprocess.CompletedProcess(e.cmd, 124, e.stdout or "", e.stderr or "")


def fifo_bytes(path):
    """How many bytes wait in the FIFO `path` (opened without blocking, never read)."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        return struct.unpack("i", fcntl.ioctl(fd, termios.FIONREAD, b"\0" * 4))[0]
    finally:
        os.close(fd)


class StalledConsole(VmTest):
    def test_stalled_console_10000_orphans_then_the_button(self):
        tmp = Path(tempfile.mkdtemp(prefix="keel-console-"))
        self.addCleanup(shutil.rmtree, tmp, True)
        serial = tmp / "ttyS0"
        for end in ("in", "out"):
            os.mkfifo(f"{serial}.{end}")
        # Our end of the console's input; QEMU opens both FIFOs read-write, so nothing blocks.
        typist = os.open(f"{serial}.in", os.O_RDWR | os.O_NONBLOCK)
        self.addCleanup(os.close, typist)
        marks = tmp / "ttyS1.txt"
        # quiet: the kernel prints (almost) nothing on the console, so it boots before the stall.
        vm = self.boot(virtio_console=True, serial=f"pipe:{serial}", extra_args=["-serial", f"file:{marks}"],
                       append="quiet keel.debug=hvc0:rw")
        deadline = time.monotonic() + BOOT_TIMEOUT
        while not re.search(r"shell\s+ready", keelctl(vm.console_path, "services").stdout):
            self.assertLess(time.monotonic(), deadline, f"keel not ready over hvc0; log: {vm.log_path}")
            time.sleep(0.5)
        os.write(typist, FLOOD.encode())

        def mark(pattern, timeout):
            until = time.monotonic() + timeout
            while True:
                seen = marks.read_text() if marks.exists() else ""
                m = re.search(pattern, seen)
                if m:
                    return m
                self.assertLess(time.monotonic(), until, f"no /{pattern}/ on ttyS1 ({seen!r}); log: {vm.log_path}")
                time.sleep(0.2)

        mark(r"filled", 30)
        t0 = time.monotonic()
        mark(r"forked=(\d+)", 600)
        forked = time.monotonic() - t0
        processes = int(mark(r"processes=(\d+)", 60).group(1))
        # The stall is real: the host pipe is full and stays full.
        full = fifo_bytes(f"{serial}.out")
        time.sleep(1)
        self.assertEqual((full, fifo_bytes(f"{serial}.out")), (65536, 65536), "the console FIFO should be full and stay full")
        status = keelctl(vm.console_path, "status")
        vm.qmp("system_powerdown")
        try:
            code = vm.wait_exit(EXIT_TIMEOUT)
        except AssertionError:
            code = None
        took = vm.since("system_powerdown") if code is not None else None
        self.report(f"{ORPHANS} orphans forked in {forked:.1f} s; {processes} processes left; keelctl status "
                    f"{'answered' if status.returncode == 0 else 'timed out'}; system_powerdown -> exit: "
                    + (f"{took * 1000:.0f} ms" if took is not None else f"none within {EXIT_TIMEOUT} s"))
        self.assertEqual(status.returncode, 0, f"keel did not answer keelctl: {status.stderr}; log: {vm.log_path}")
        self.assertLess(processes, 100, f"keel stopped reaping; log: {vm.log_path}")
        self.assertEqual(code, 0, f"the power button did not power off within {EXIT_TIMEOUT} s; log: {vm.log_path}")
        self.assertEqual(vm.shutdown_reason(), "guest-shutdown")


def keel_lines(text):
    """The text of every `keel: ` line in `text` (console or dmesg), cut as the journal cuts
    the lines it replays into the kernel log."""
    return [m.group(1)[:100] for m in re.finditer(r"^\[\s*\d+\.\d+\] keel: (.*)$", text, re.M)]


class KernelLog(VmTest):
    def test_keel_lines_reach_dmesg_and_the_console_once(self):
        vm = self.boot_ready(virtio_console=True, append="keel.debug=hvc0:rw")
        booted = vm.text[: vm.wait_for(r"keel: ready", since=0).end()]
        self.assertEqual(vm.shell("cat /proc/sys/kernel/printk_devkmsg").split(), ["on"], f"log: {vm.log_path}")
        dmesg = keelctl(vm.console_path, "dmesg")
        self.assertEqual(dmesg.returncode, 0, dmesg.stderr)
        # Every line of the boot, those from before /dev/kmsg was there (replayed from the
        # journal) and after: far more than the 10 a rate-limited writer gets through.
        console, kernel = keel_lines(booted), set(keel_lines(dmesg.stdout))
        self.assertGreater(len(console), 20)
        self.assertEqual([l for l in console if l not in kernel], [], f"not in dmesg; log: {vm.log_path}")
        # KERN_DEBUG is not printed on the console: each line is there once, keel's own.
        self.assertEqual(len(re.findall(r"keel: ready$", vm.text, re.M)), 1, f"log: {vm.log_path}")
        vm.qmp("system_powerdown")
        self.assertEqual(vm.wait_exit(EXIT_TIMEOUT), 0)

    def test_the_command_lines_rate_limit_stands(self):
        vm = self.boot(append="printk.devkmsg=ratelimit")
        vm.wait_for(r"keel: kernel log: printk_devkmsg not set to on", timeout=BOOT_TIMEOUT)
        vm.wait_for(r"keel: ready", timeout=BOOT_TIMEOUT)
        vm.wait_shell(BOOT_TIMEOUT)
        booted = len(keel_lines(vm.text))
        self.assertEqual(vm.shell("cat /proc/sys/kernel/printk_devkmsg").split(), ["ratelimit"])
        # The kernel keeps the first 10 of keel's writes in 5 s and drops the rest.
        in_dmesg = int(vm.shell("dmesg | grep -c ' keel: '").split()[-1])
        self.assertLess(in_dmesg, booted, f"log: {vm.log_path}")
        self.report(f"rate-limited: {in_dmesg} of keel's {booted} boot lines in dmesg")
        vm.qmp("system_powerdown")
        self.assertEqual(vm.wait_exit(EXIT_TIMEOUT), 0)
