#!/usr/bin/env python3
"""The one QEMU launcher: `just vm`, `just bench-boot` and the QEMU tests all boot through it.

As a program:
    tests/vm/qemu.py vm [--arch aarch64] [--initrd target/initramfs.cpio] [--disk FILE]
        [--append WORDS]
        the serial console on this terminal (Ctrl-A X quits, Ctrl-A C is the QEMU
        monitor), QMP on target/vm/qmp.sock
    tests/vm/qemu.py qmp system_powerdown [--socket target/vm/qmp.sock]
        send one QMP command to a running `vm` (system_powerdown presses the power button)
    tests/vm/qemu.py bench [--runs 5] [--arch aarch64 --initrd target/initramfs-arm64.cpio]
        boot time and power-button-to-exit time, medians

As a library (tests):
    with Vm(initrd, name="boot") as vm:
        vm.start()
        vm.wait_for(r"keel: ready")
        out = vm.shell("cat /proc/mounts")
        vm.qmp("system_powerdown")
        status = vm.wait_exit(30)

The machine: q35, `-cpu max`, 256 MiB, no default devices, the uncompressed vmlinux booted
through its PVH entry (`-kernel vmlinux`: no bzImage decompression, ~2-3 s less under TCG),
the initramfs, the serial port as the console, -no-reboot (a guest reboot ends QEMU, so
tests see it). q35 and pc boot equally fast here and both deliver the ACPI power button
(ICH9 / PIIX4 PM); q35 is the current PC.

`Vm(reboot=True)`: without -no-reboot, a guest reboot (or a reset: a panic with panic=-1,
a watchdog, QMP system_reset) restarts the guest in the same QEMU, its RAM kept (pstore's
ramoops region survives); a poweroff still ends QEMU.

`Vm(serial="pipe:PATH")`: the console elsewhere than on QEMU's stdout (any -serial
value); `text`, `wait_for` and `shell` then see nothing.

`Vm(vsock_backend=True)`: the guest's vsock (CID `vsock_cid`, default 3) is
vhost-user-vsock-pci served by rust-vmm's vhost-device-vsock, started before QEMU and
stopped after it, its sockets in the Vm's temp dir; the host side is the hybrid-vsock unix
socket `vm.vsock_path` (`keelctl --vsock-unix PATH:PORT`). Guest memory is then a shared
memfd (the backend maps it). This host has no /dev/vhost-vsock for `vsock_cid` alone.

arch="aarch64" (Vm(arch=...), --arch): qemu-system-aarch64 -machine virt -cpu cortex-a57,
512 MiB, Debian's arm64 Image (tests/vm/fetch-kernel arm64), the PL011 as the console
(ttyAMA0). virt boots by device tree here (no firmware, so no ACPI): system_powerdown
presses KEY_POWER through gpio-keys on the PL061. The same -device virtio-*-pci devices
as on x86 (virt has a PCIe host bridge), so virtio_pci drives them on both.

Everything QEMU prints on the serial port goes to a log file as it arrives; a Vm always
kills its QEMU when it is closed, when its deadline passes, or when Python dies.
"""

import argparse
import ctypes
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CACHE = Path(os.environ.get("KEEL_CACHE", REPO / ".cache"))
KERNEL = CACHE / "kernel" / "vmlinux"
INITRAMFS = REPO / "target" / "initramfs.cpio"
LOG_DIR = REPO / "target" / "qemu-logs"
QEMU = "qemu-system-x86_64"
# rust-vmm's vhost-user vsock backend: the guest's vsock without /dev/vhost-vsock, its host
# side a "hybrid vsock" unix socket (`CONNECT PORT\n`, `OK HOSTPORT\n`, then the stream).
VSOCK_BACKEND = "vhost-device-vsock"
VSOCK_BACKEND_INSTALL = "cargo install vhost-device-vsock --version 0.3.0 --locked"


class Arch:
    """What differs between the guests: the QEMU binary (and its Debian package), the
    machine, the console and the kernel (and how to get it)."""

    def __init__(self, qemu, package, machine, cpu, memory, console, kernel, kernel_how, initramfs, initramfs_how):
        self.qemu, self.package, self.machine, self.cpu, self.memory = qemu, package, machine, cpu, memory
        # panic=-1: should the kernel ever panic (keel must make sure it does not), reboot at
        # once, which -no-reboot turns into QEMU exiting: a test fails fast instead of hanging.
        self.append = f"console={console} panic=-1"
        self.kernel, self.kernel_how, self.initramfs, self.initramfs_how = kernel, kernel_how, initramfs, initramfs_how


ARCHES = {
    "x86_64": Arch(QEMU, "qemu-system-x86", "q35", "max", "256M", "ttyS0", KERNEL, "just kernel", INITRAMFS, "just initramfs"),
    # cortex-a57: `max` adds pointer authentication, which TCG emulates slowly. 512 MiB:
    # headroom, as Debian's arm64 kernel reserves 64 MiB of CMA (256 MiB boots as fast).
    "aarch64": Arch(
        "qemu-system-aarch64", "qemu-system-arm", "virt", "cortex-a57", "512M", "ttyAMA0",
        CACHE / "kernel-arm64" / "Image", "just kernel-arm",
        REPO / "target" / "initramfs-arm64.cpio", "just initramfs-arm",
    ),  # fmt: skip
}
# The kernel's and keel's console stamps: `[    1.234567] `.
STAMP = re.compile(r"^\[\s*(\d+\.\d+)\]", re.M)


class VmError(AssertionError):
    """A wait that failed; the message names the serial log."""


def _die_with_parent():
    # PR_SET_PDEATHSIG = 1: QEMU gets SIGKILL when the Python thread that started it dies
    # (start VMs from the main thread, or from one that outlives them).
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)
    except Exception:
        pass


class Qmp:
    """A QMP client: one command at a time; events are kept in `events`."""

    def __init__(self, path, timeout=10.0, alive=lambda: True):
        self.events = []
        self.lock = threading.Lock()
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                self.sock.connect(str(path))
                break
            except OSError:
                self.sock.close()
                if time.monotonic() > deadline or not alive():
                    raise
                time.sleep(0.02)
        self.file = self.sock.makefile("rwb", buffering=0)
        greeting = self._read()
        if "QMP" not in greeting:
            raise VmError(f"not a QMP greeting: {greeting}")
        self.execute("qmp_capabilities")

    def _read(self):
        line = self.file.readline()
        if not line:
            raise EOFError("QMP connection closed")
        return json.loads(line)

    def execute(self, command, **arguments):
        """Run a command and return its "return" value; QMP errors raise VmError."""
        with self.lock:
            msg = {"execute": command}
            if arguments:
                msg["arguments"] = arguments
            self.file.write(json.dumps(msg).encode() + b"\n")
            while True:
                reply = self._read()
                if "event" in reply:
                    self.events.append(reply)
                elif "error" in reply:
                    raise VmError(f"QMP {command}: {reply['error']}")
                elif "return" in reply:
                    return reply["return"]

    def drain(self, timeout=0.5):
        """Read the events that arrive within `timeout` (or until QEMU closes the socket)."""
        with self.lock:
            self.sock.settimeout(timeout)
            try:
                while True:
                    self.events.append(self._read())
            except (socket.timeout, EOFError, OSError, ValueError):
                pass
            finally:
                try:
                    self.sock.settimeout(None)
                except OSError:
                    pass
        return self.events

    def close(self):
        for f in (self.file, self.sock):
            try:
                f.close()
            except OSError:
                pass


class Vm:
    """One QEMU run. Use as a context manager: QEMU is killed on the way out, whatever happens."""

    def __init__(
        self,
        initrd=None,
        *,
        name="vm",
        arch="x86_64",
        kernel=None,
        append="",
        disk=None,
        virtio_console=False,
        vsock_cid=None,
        vsock_backend=False,
        memory=None,
        machine=None,
        serial="stdio",
        reboot=False,
        extra_args=(),
        max_runtime=180.0,
        log_dir=LOG_DIR,
    ):
        if arch not in ARCHES:
            raise VmError(f"unknown arch {arch!r}: one of {', '.join(ARCHES)}")
        a = ARCHES[arch]
        self.arch = arch
        self.kernel, self.initrd = Path(kernel or a.kernel), Path(initrd or a.initramfs)
        for what, path, how in (("kernel", self.kernel, a.kernel_how), ("initramfs", self.initrd, a.initramfs_how)):
            if not path.is_file():
                raise VmError(f"{what} {path} is missing: run `{how}`")
        if not shutil.which(a.qemu):
            raise VmError(f"{a.qemu} is missing: apt-get install {a.package}")
        self._vsock_proc = None  # its Popen, while it runs
        if vsock_backend and not shutil.which(VSOCK_BACKEND):
            raise VmError(f"{VSOCK_BACKEND} is missing (vsock_backend=True): {VSOCK_BACKEND_INSTALL}")
        self.name = name
        self.append = f"{a.append} {append}".strip()
        self.max_runtime = max_runtime
        self.tmp = Path(tempfile.mkdtemp(prefix=f"keel-{name}-"))
        self.qmp_path = self.tmp / "qmp.sock"
        log_dir = Path(log_dir)
        log_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = log_dir / f"{name}.log"
        machine, memory = machine or a.machine, memory or a.memory
        if vsock_backend:
            # vhost-user maps the guest's memory in the backend: it must be a shared memfd.
            machine += ",memory-backend=mem"
        self.args = [
            a.qemu,
            "-machine", machine,
            "-cpu", a.cpu,
            "-m", memory,
            "-nodefaults",
            "-no-user-config",
            "-display", "none",
            *([] if reboot else ["-no-reboot"]),
            "-kernel", str(self.kernel),
            "-initrd", str(self.initrd),
            "-append", self.append,
            "-serial", serial,
            "-qmp", f"unix:{self.qmp_path},server=on,wait=off",
        ]  # fmt: skip
        if disk:
            self.args += ["-drive", f"file={disk},if=none,id=d0,format=raw", "-device", "virtio-blk-pci,drive=d0"]
        self.console_path = None
        if virtio_console:
            # /dev/hvc0 in the guest (virtio_console); a Unix socket here.
            self.console_path = self.tmp / "hvc0.sock"
            self.args += [
                "-device", "virtio-serial-pci",
                "-chardev", f"socket,id=hvc0,path={self.console_path},server=on,wait=off",
                "-device", "virtconsole,chardev=hvc0",
            ]  # fmt: skip
        self.vsock_path = None  # the hybrid-vsock socket: keelctl --vsock-unix PATH:PORT
        self.vsock_backend_args = None
        if vsock_backend:
            # The guest's vsock through vhost-device-vsock (started by `start`, before QEMU):
            # QEMU's vhost-user-vsock-pci talks to it on vhost_user_path.
            self.vsock_path = self.tmp / "vsock.sock"
            self.vhost_user_path = self.tmp / "vhost-user-vsock.sock"
            self.vsock_backend_args = [
                shutil.which(VSOCK_BACKEND),
                "--guest-cid", str(3 if vsock_cid is None else vsock_cid),
                "--socket", str(self.vhost_user_path),
                "--uds-path", str(self.vsock_path),
            ]  # fmt: skip
            self.args += [
                "-object", f"memory-backend-memfd,id=mem,size={memory},share=on",
                "-chardev", f"socket,id=vsock,path={self.vhost_user_path}",
                "-device", "vhost-user-vsock-pci,chardev=vsock",
            ]  # fmt: skip
        elif vsock_cid is not None:
            self.args += ["-device", f"vhost-vsock-pci,guest-cid={vsock_cid}"]
        self.args += list(extra_args)
        self.proc = None
        self._qmp = None
        self.text = ""  # serial output so far, \r removed
        # QEMU's stderr and the vsock backend's output: in the log file, never in `text`,
        # where a line of theirs could land inside a console line and hide it from a match.
        self.side_text = ""
        self.cursor = 0  # where wait_for searches from
        self.cond = threading.Condition()
        self.marks = {}  # name -> time.monotonic()
        self.exit_status = None
        self._shell_n = 0
        self._closed = False

    # -- life cycle ---------------------------------------------------------------------

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def start(self):
        self.log = open(self.log_path, "wb")
        self.log.write(("# " + " ".join(self.args) + "\n").encode())
        self.log.flush()
        self._pumps = []
        if self.vsock_backend_args:
            self._start_vsock_backend()
        self.marks["start"] = time.monotonic()
        self.proc = subprocess.Popen(
            self.args,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            preexec_fn=_die_with_parent,
        )
        for stream, prefix in ((self.proc.stdout, b""), (self.proc.stderr, b"qemu: ")):
            self._pumps.append(threading.Thread(target=self._pump, args=(stream, prefix), daemon=True))
            self._pumps[-1].start()
        threading.Thread(target=self._reap, daemon=True).start()
        self._deadline = threading.Timer(self.max_runtime, self._overrun)
        self._deadline.daemon = True
        self._deadline.start()
        # Connected from the start, so no QMP event (SHUTDOWN and its reason) is missed.
        try:
            self._qmp = Qmp(self.qmp_path, timeout=10, alive=self.running)
        except Exception as e:
            self.close()
            raise self.failure(f"QEMU did not start: {e}")
        return self

    def _start_vsock_backend(self):
        """vhost-device-vsock, up once its vhost-user socket exists (QEMU connects to it at
        start). Its output goes to the log file, marked `vsock: ` (into `side_text`, not `text`)."""
        self.log.write(("# " + " ".join(self.vsock_backend_args) + "\n").encode())
        # Warnings and errors only. 0.3.0 warns "Could not remove epoll listener" each time a
        # guest resets a connection it had already dropped: harmless.
        env = dict(os.environ, RUST_LOG=os.environ.get("RUST_LOG", "warn"))
        self._vsock_proc = subprocess.Popen(
            self.vsock_backend_args,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=env,
            preexec_fn=_die_with_parent,
        )
        pump = threading.Thread(target=self._pump, args=(self._vsock_proc.stdout, b"vsock: "), daemon=True)
        pump.start()
        self._pumps.append(pump)
        deadline = time.monotonic() + 10
        while not self.vhost_user_path.exists():
            code = self._vsock_proc.poll()
            if code is not None or time.monotonic() > deadline:
                self._stop_vsock_backend()
                pump.join(timeout=2)
                how = "no vhost-user socket within 10 s" if code is None else f"exited ({code})"
                raise self.failure(f"{VSOCK_BACKEND} did not start: {how}")
            time.sleep(0.02)

    def _stop_vsock_backend(self):
        b = self._vsock_proc
        if b is None or b.poll() is not None:
            return
        b.terminate()
        try:
            b.wait(timeout=3)
        except subprocess.TimeoutExpired:
            b.kill()
            b.wait(timeout=3)

    def _pump(self, stream, prefix):
        while True:
            chunk = stream.read1(4096) if hasattr(stream, "read1") else os.read(stream.fileno(), 4096)
            if not chunk:
                return
            with self.cond:
                if self.log.closed:
                    return
                if prefix:
                    chunk = b"".join(prefix + l for l in chunk.splitlines(keepends=True))
                self.log.write(chunk)
                self.log.flush()
                text = chunk.decode("utf-8", "replace").replace("\r", "")
                if prefix:
                    self.side_text += text
                else:
                    self.text += text
                self.cond.notify_all()

    def _reap(self):
        status = self.proc.wait()
        with self.cond:
            self.marks["exit"] = time.monotonic()
            self.exit_status = status
            self.cond.notify_all()

    def _overrun(self):
        if self.running():
            self.note(f"killing QEMU: still running after {self.max_runtime:.0f} s")
            self.proc.kill()

    def running(self):
        return self.proc is not None and self.exit_status is None and self.proc.poll() is None

    def note(self, text):
        """A line of our own in the serial log (marked `##`), to make it readable later."""
        with self.cond:
            self.log.write(f"\n## {text}\n".encode())
            self.log.flush()

    def close(self):
        if self.proc is None:
            self._stop_vsock_backend()  # started, but QEMU was not
            if hasattr(self, "log"):
                with self.cond:
                    self.log.close()
            shutil.rmtree(self.tmp, ignore_errors=True)
            return
        if self._closed:
            return
        self._closed = True
        if self.running():
            try:
                self.qmp("quit", timeout=2)
            except Exception:
                pass
            try:
                self.proc.wait(timeout=3)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        self._stop_vsock_backend()  # after QEMU: it serves QEMU to the end
        self._deadline.cancel()
        if self._qmp:
            self._qmp.close()
        for t in self._pumps:  # the last bytes, up to QEMU's exit
            t.join(timeout=2)
        with self.cond:
            self.log.close()
        for f in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            try:
                f.close()
            except OSError:
                pass
        shutil.rmtree(self.tmp, ignore_errors=True)

    # -- the serial console -------------------------------------------------------------

    def failure(self, what):
        tail = "\n".join(self.text.splitlines()[-25:])
        side = "\n".join(self.side_text.splitlines()[-5:])
        side = f"--- last lines of QEMU's stderr and the vsock backend ---\n{side}\n" if side else ""
        return VmError(f"{self.name}: {what}\n--- last serial lines ---\n{tail}\n{side}--- full serial log: {self.log_path}")

    def wait_for(self, pattern, timeout=30.0, since=None, fail_on_exit=True):
        """Wait for `pattern` (a regex) in the serial output after `since` (default: after
        the previous match). Returns the match; raises VmError on timeout or QEMU exit."""
        regex = re.compile(pattern, re.M)
        start = self.cursor if since is None else since
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                m = regex.search(self.text, start)
                if m:
                    self.cursor = m.end()
                    return m
                if fail_on_exit and self.exit_status is not None:
                    raise self.failure(f"QEMU exited ({self.exit_status}) before /{pattern}/ appeared")
                left = deadline - time.monotonic()
                if left <= 0:
                    raise self.failure(f"no /{pattern}/ within {timeout:.0f} s")
                self.cond.wait(min(left, 0.5))

    def seen(self, pattern, since=0):
        return re.search(pattern, self.text[since:], re.M) is not None

    def send(self, text):
        """Type `text` on the serial console."""
        if not self.running():
            raise self.failure("QEMU is not running")
        self.proc.stdin.write(text.encode())
        self.proc.stdin.flush()

    def _marker(self):
        self._shell_n += 1
        n = self._shell_n
        # As typed (and echoed) the command reads `'@@<n>' 'END@@'`; its output `@@<n>END@@`.
        return f"printf '%s%s\\n' '@@{n}' 'END@@'", f"@@{n}END@@"

    def wait_shell(self, timeout=30.0):
        """Wait until a shell answers on the console (asking again every second)."""
        deadline = time.monotonic() + timeout
        while True:
            cmd, marker = self._marker()
            self.send(cmd + "\n")
            try:
                return self.wait_for("^" + re.escape(marker), timeout=min(1.5, max(0.1, deadline - time.monotonic())))
            except VmError:
                if time.monotonic() >= deadline:
                    raise self.failure(f"no shell answered on the console within {timeout:.0f} s")

    def shell(self, command, timeout=30.0):
        """Run one command line in the console shell; return what it printed."""
        cmd, marker = self._marker()
        start = len(self.text)
        self.send(f"{command}; {cmd}\n")
        m = self.wait_for(f"^{re.escape(marker)}$", timeout=timeout, since=start)
        out = self.text[start : m.start()]
        # Drop the echoed command line, however the line editor wrapped it.
        typed = out.rfind("'END@@'")
        if typed >= 0:
            out = out[out.find("\n", typed) + 1 :]
        return re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", out)

    # -- QMP and exit -------------------------------------------------------------------

    def qmp(self, command, timeout=10.0, **arguments):
        if self._qmp is None:
            self._qmp = Qmp(self.qmp_path, timeout=timeout)
        self.marks[command] = time.monotonic()
        self.note(f"QMP {command}")
        return self._qmp.execute(command, **arguments)

    def events(self):
        """QMP events received so far (after QEMU exits, all of them)."""
        if self._qmp is None:
            return []
        return self._qmp.drain(0.2)

    def shutdown_reason(self):
        """The reason of QEMU's SHUTDOWN event: guest-shutdown (poweroff), guest-reset
        (reboot, under -no-reboot), guest-panic, host-qmp-quit..., or None."""
        for e in self.events():
            if e.get("event") == "SHUTDOWN":
                return e.get("data", {}).get("reason")
        return None

    def wait_exit(self, timeout=30.0):
        """Wait until QEMU exits by itself; return its exit status (raise on timeout)."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while self.exit_status is None:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise self.failure(f"QEMU still running after {timeout:.0f} s")
                self.cond.wait(min(left, 0.5))
        time.sleep(0.05)
        return self.exit_status

    def since(self, mark, until="exit"):
        """Host seconds from one mark (a QMP command name, "start", "exit"...) to another."""
        return self.marks[until] - self.marks[mark]

    def guest_time(self, pattern, since=0):
        """The console stamp (guest seconds) of the first line matching `pattern`, or None."""
        for line in self.text[since:].splitlines():
            if re.search(pattern, line):
                m = STAMP.match(line)
                if m:
                    return float(m.group(1))
        return None


# -- command line ---------------------------------------------------------------------


def cmd_vm(args):
    a = ARCHES[args.arch]
    args.kernel, args.initrd = str(args.kernel or a.kernel), str(args.initrd or a.initramfs)
    for path, how in ((Path(args.kernel), a.kernel_how), (Path(args.initrd), a.initramfs_how)):
        if not path.is_file():
            sys.exit(f"{path} is missing: run `{how}`")
    qmp = Path(args.qmp)
    qmp.parent.mkdir(parents=True, exist_ok=True)
    if qmp.exists():
        qmp.unlink()
    argv = [
        a.qemu, "-machine", a.machine, "-cpu", a.cpu, "-m", args.memory or a.memory,
        "-nodefaults", "-no-user-config", "-display", "none", "-no-reboot",
        "-kernel", args.kernel, "-initrd", args.initrd,
        "-append", f"{a.append} {args.append}".strip(),
        "-serial", "mon:stdio",
        "-qmp", f"unix:{qmp},server=on,wait=off",
    ]  # fmt: skip
    if args.disk:
        argv += ["-drive", f"file={args.disk},if=none,id=d0,format=raw", "-device", "virtio-blk-pci,drive=d0"]
    # keel's debug protocol on /dev/hvc0 (keel.debug=hvc0:rw), a unix socket here for keelctl.
    debug = qmp.parent / "debug.sock"
    if debug.exists():
        debug.unlink()
    argv += [
        "-device", "virtio-serial-pci",
        "-chardev", f"socket,id=dbg,path={debug},server=on,wait=off",
        "-device", "virtconsole,chardev=dbg",
    ]  # fmt: skip
    argv[argv.index("-append") + 1] += " keel.debug=hvc0:rw"
    argv += args.qemu_args
    print(f"keel vm: Ctrl-A X quits, Ctrl-A C toggles the QEMU monitor; power button:\n"
          f"  tests/vm/qemu.py qmp system_powerdown --socket {qmp}\n"
          f"debug protocol: keelctl --unix {debug} status   (just keelctl builds it)", file=sys.stderr)  # fmt: skip
    sys.stderr.flush()
    os.execvp(a.qemu, argv)


def cmd_qmp(args):
    q = Qmp(args.socket, timeout=2)
    print(json.dumps(q.execute(args.command)))
    q.close()


def median(xs):
    return statistics.median(xs) if xs else float("nan")


def cmd_bench(args):
    """PID 1 exec -> `keel: ready` (guest clock) and power button -> QEMU exit (host clock)."""
    kernel, boot, modules, ready_wall, powerdown, config, coldplug = [], [], [], [], [], [], []
    for i in range(args.runs):
        with Vm(args.initrd, name=f"bench-{args.arch}-{i}" if args.arch != "x86_64" else f"bench-{i}",
                arch=args.arch, kernel=args.kernel, append=args.append) as vm:
            vm.start()
            vm.wait_for(r"keel: ready", timeout=60)
            ready_wall.append(time.monotonic() - vm.marks["start"])
            start = vm.guest_time(r"Run /init as init process")
            start_what = "kernel's `Run /init`"
            if start is not None:
                kernel.append(start)
            else:
                start, start_what = vm.guest_time(r"keel: "), "keel's first line"
            boot.append(vm.guest_time(r"keel: ready") - start)
            # The goal is stated without module loading, which is the kernel's work.
            took = re.search(r"keel: kernel modules \((\d+) us\)", vm.text)
            modules.append(int(took.group(1)) / 1e6 if took else 0.0)
            # The configuration phase: reading (or not) /etc/keel/keel.db and the command line.
            took = re.search(r"keel: configuration \((\d+) us\)", vm.text)
            config.append(int(took.group(1)) if took else 0)
            # Coldplug (docs/devices.md): the walk of /sys/devices, modules.alias, its loads.
            took = re.search(r"keel: coldplug \((\d+) us\)", vm.text)
            if took:
                coldplug.append(int(took.group(1)))
            # The shell is up (and the button driver loaded) before the button is pressed.
            vm.wait_shell(30)
            vm.qmp("system_powerdown")
            vm.wait_exit(60)
            powerdown.append(vm.since("system_powerdown"))
            print(
                f"run {i + 1}: exec->ready {boot[-1] * 1000:.0f} ms (guest), QEMU start->ready {ready_wall[-1]:.2f} s,"
                f" powerdown->exit {powerdown[-1] * 1000:.0f} ms (host)",
                file=sys.stderr,
            )
    if kernel:
        print(f"kernel start -> Run /init (PID 1 exec), guest clock: median {median(kernel) * 1000:.0f} ms")
    print(f"boot (start: {start_what}) -> keel: ready, guest clock: median {median(boot) * 1000:.0f} ms")
    print(f"  of which loading kernel modules: median {median(modules) * 1000:.0f} ms;"
          f" without it: median {median([b - m for b, m in zip(boot, modules)]) * 1000:.0f} ms")
    print(f"  the configuration phase (compiled config + command line): median {median(config):.0f} us")
    if coldplug:
        print(f"  the coldplug phase (/sys/devices, modules.alias, its modules): median {median(coldplug) / 1000:.1f} ms")
    print(f"QEMU start -> keel: ready seen, host clock:   median {median(ready_wall):.2f} s")
    print(f"system_powerdown -> QEMU exit, host clock:    median {median(powerdown) * 1000:.0f} ms")
    print(f"({args.runs} {args.arch} boots; logs in {LOG_DIR}/bench-*.log)")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    vm = sub.add_parser("vm", help="boot with the serial console on this terminal")
    vm.add_argument("--arch", choices=sorted(ARCHES), default="x86_64")
    vm.add_argument("--kernel", help=f"default {KERNEL} (aarch64: {ARCHES['aarch64'].kernel})")
    vm.add_argument("--initrd", help=f"default {INITRAMFS} (aarch64: {ARCHES['aarch64'].initramfs})")
    vm.add_argument("--disk", help="a raw disk image, as virtio-blk (/dev/vda)")
    vm.add_argument("--append", default="", help="more kernel command line words")
    vm.add_argument("--memory", help="default 256M (aarch64: 512M)")
    vm.add_argument("--qmp", default=str(REPO / "target" / "vm" / "qmp.sock"))
    vm.add_argument("qemu_args", nargs="*", help="more QEMU arguments (after --)")
    q = sub.add_parser("qmp", help="send one QMP command to a running `vm`")
    q.add_argument("command")
    q.add_argument("--socket", default=str(REPO / "target" / "vm" / "qmp.sock"))
    b = sub.add_parser("bench", help="boot and power-off times, medians of several boots")
    b.add_argument("--runs", type=int, default=5)
    b.add_argument("--arch", choices=sorted(ARCHES), default="x86_64")
    b.add_argument("--kernel")
    b.add_argument("--initrd")
    b.add_argument("--append", default="")
    args = p.parse_args()
    {"vm": cmd_vm, "qmp": cmd_qmp, "bench": cmd_bench}[args.cmd](args)


if __name__ == "__main__":
    main()
