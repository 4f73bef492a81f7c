"""The debug protocol under a real kernel: keelctl talks to keel over a virtio console
(/dev/hvc0, a unix socket on the host); and on a shared line (ttyS0 with the kernel
console), frames travel in APC strings that a terminal hides, between the kernel's text."""

import base64
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
import zlib
from pathlib import Path

from common import EXIT_TIMEOUT, REPO, VmTest

KEELCTL = Path(os.environ.get("KEELCTL", REPO / "target/x86_64-unknown-linux-gnu/release/keelctl"))
APC = re.compile(rb"\x1b_k([A-Za-z0-9+/=]*)\x1b\\")


def keelctl(sock, *args, timeout=30):
    if not KEELCTL.is_file():
        raise AssertionError(f"{KEELCTL} is missing: run `just keelctl`")
    return subprocess.run([str(KEELCTL), "--unix", str(sock), "--timeout", "10", *args],
                          capture_output=True, text=True, timeout=timeout)


class Debug(VmTest):
    def test_keelctl_over_a_virtio_console(self):
        vm = self.boot_ready(virtio_console=True, append="keel.debug=hvc0:rw")
        self.assertTrue(vm.seen(r"keel: debug channel hvc0:rw \(read-write\)"), f"log: {vm.log_path}")
        out = keelctl(vm.console_path, "status")
        self.assertEqual(out.returncode, 0, f"{out.stdout}{out.stderr}; log: {vm.log_path}")
        self.assertIn("uptime", out.stdout)
        # The resident size is the kernel's exact one (6.1's VmRSS lags far behind).
        out = keelctl(vm.console_path, "--json", "status")
        self.assertEqual(out.returncode, 0, out.stderr)
        rss = json.loads(out.stdout)["rss_kib"]
        exact = int(re.search(r"^Rss:\s+(\d+) kB", vm.shell("cat /proc/1/smaps_rollup"), re.M).group(1))
        self.report(f"keelctl status: rss {rss} KiB; /proc/1/smaps_rollup: {exact} kB")
        self.assertLessEqual(abs(rss - exact), 16, f"status says {rss} KiB, smaps_rollup {exact} kB")
        out = keelctl(vm.console_path, "services")
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertRegex(out.stdout, r"shell\s+ready")
        out = keelctl(vm.console_path, "dmesg", "-n", "5")
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertEqual(len(out.stdout.splitlines()), 5, out.stdout)
        out = keelctl(vm.console_path, "poweroff")
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertEqual(vm.wait_exit(EXIT_TIMEOUT), 0, f"log: {vm.log_path}")
        self.assertTrue(vm.seen(r"keel: poweroff requested \(debug client\)"), f"log: {vm.log_path}")

    def test_a_virtio_serial_port_serves_each_host_connection(self):
        # A virtio-serial port (not the console): the guest sees the host side open and close
        # (POLLHUP, EOF while nobody is connected, from boot on). keel must serve every new
        # connection, and wait for one without waking up.
        tmp = Path(tempfile.mkdtemp(prefix="keel-vport-"))
        self.addCleanup(shutil.rmtree, tmp, ignore_errors=True)
        port = tmp / "port.sock"
        vm = self.boot_ready(append="keel.debug=vport0p1:rw", extra_args=[
            "-device", "virtio-serial-pci",
            "-chardev", f"socket,id=port1,path={port},server=on,wait=off",
            "-device", "virtserialport,chardev=port1,name=keel.debug",
        ])  # fmt: skip
        self.assertTrue(vm.seen(r"keel: debug channel vport0p1:rw \(read-write\)"), f"log: {vm.log_path}")
        for n in range(3):
            out = keelctl(port, "status")
            self.assertEqual(out.returncode, 0, f"connection {n}: {out.stdout}{out.stderr}; log: {vm.log_path}")
            self.assertIn("uptime", out.stdout)
        # Nobody connected: keel sleeps. PID 1's context switches and CPU time (clock ticks)
        # over 3 s; a loop spinning on the port's HUP shows in both.
        def activity():
            out = vm.shell("cat /proc/1/status /proc/1/stat")
            switches = sum(int(n) for n in re.findall(r"^(?:non)?voluntary_ctxt_switches:\s+(\d+)", out, re.M))
            stat = re.search(r"^1 \(\S+\) (.*)$", out, re.M).group(1).split()
            return switches, int(stat[11]) + int(stat[12])  # utime + stime
        before = activity()
        time.sleep(3)
        wakeups, ticks = (a - b for a, b in zip(activity(), before))
        self.report(f"PID 1 in 3 s with the port closed: {wakeups} context switches, {ticks} clock ticks of CPU")
        self.assertLessEqual(wakeups, 2, f"log: {vm.log_path}")
        self.assertLessEqual(ticks, 1, f"log: {vm.log_path}")
        out = keelctl(port, "services")
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertRegex(out.stdout, r"shell\s+ready")
        out = keelctl(port, "poweroff")
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertEqual(vm.wait_exit(EXIT_TIMEOUT), 0, f"log: {vm.log_path}")

    def test_frames_share_the_console_line(self):
        vm = self.boot_ready(append="keel.debug=ttyS0:shared")
        vm.shell("echo hello")  # the shell keeps working on the shared line
        vm.qmp("system_powerdown")
        self.assertEqual(vm.wait_exit(EXIT_TIMEOUT), 0, f"log: {vm.log_path}")
        raw = vm.log_path.read_bytes()
        frames = APC.findall(raw)
        self.assertTrue(frames, f"no APC frames on the shared line; log: {vm.log_path}")
        types = []
        for b64 in frames:
            body = base64.b64decode(b64 + b"=" * (-len(b64) % 4))
            self.assertEqual(body[0], 1, "version")
            self.assertEqual(zlib.crc32(body[:-4]).to_bytes(4, "little"), body[-4:], "CRC")
            types.append(body[3])
        self.assertIn(0x01, types, "Hello")
        self.assertIn(0x03, types, "events")
        # What a plain terminal shows once it hides the APC strings: no binary bytes.
        text = APC.sub(b"", raw)
        self.assertNotIn(b"\x1b_", text)
        stray = {b for b in text if b < 0x20 and b not in b"\r\n\t\x1b\x07\x08"}
        self.assertFalse(stray, f"control bytes on the console: {sorted(stray)}")
        # keelctl reads the same line: kernel text as text, frames decoded.
        out = subprocess.run([str(KEELCTL), "--serial", str(vm.log_path), "--shared", "console"],
                             capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
        self.assertIn("Run /init as init process", out.stdout, out.stderr)
        self.assertRegex(out.stdout, r"shell", out.stderr)
