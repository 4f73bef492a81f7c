#!/usr/bin/env python3
"""Debug protocol benchmark (a report, not a test), run by `just bench`: keelctl against keel
booted in QEMU (TCG).
  - round trip over a serial line: keel.debug=ttyS1:115200:rw, the second UART on a unix
    socket; `keelctl ping` (its own timing) and `keelctl status` (whole command), medians;
  - throughput over the dedicated virtio console (hvc0): `keelctl dmesg -n 5000`, bytes/s."""
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests/vm"))
import qemu  # noqa: E402

KEELCTL = REPO / "target/x86_64-unknown-linux-gnu/release/keelctl"
INITRD = REPO / "target/initramfs.cpio"


def keelctl(sock, *args):
    return subprocess.run([str(KEELCTL), "--unix", str(sock), "--timeout", "10", *args], capture_output=True, text=True, timeout=60)


def serial_round_trip(runs=20):
    tmp = Path(qemu.tempfile.mkdtemp(prefix="keel-bench-serial-"))
    sock = tmp / "ttyS1.sock"
    extra = ["-chardev", f"socket,id=s1,path={sock},server=on,wait=off", "-serial", "chardev:s1"]
    with qemu.Vm(INITRD, name="bench-serial", append="keel.debug=ttyS1:115200:rw", extra_args=extra) as vm:
        vm.start()
        vm.wait_for(r"keel: ready", timeout=60)
        pings, statuses = [], []
        for _ in range(runs):
            out = keelctl(sock, "ping")
            m = re.search(r"time=([0-9.]+) ms", out.stdout)
            if m:
                pings.append(float(m.group(1)))
            t0 = time.monotonic()
            if keelctl(sock, "status").returncode == 0:
                statuses.append((time.monotonic() - t0) * 1000)
    print(f"serial (ttyS1 at 115200, QEMU socket): ping round trip median {statistics.median(pings):.1f} ms;"
          f" `keelctl status` (connect, hello, request, reply) median {statistics.median(statuses):.1f} ms"
          f" ({len(statuses)} runs)")


def console_throughput():
    with qemu.Vm(INITRD, name="bench-hvc", append="keel.debug=hvc0:rw", virtio_console=True) as vm:
        vm.start()
        vm.wait_for(r"keel: ready", timeout=60)
        time.sleep(0.5)
        t0 = time.monotonic()
        out = keelctl(vm.console_path, "dmesg", "-n", "5000")
        took = time.monotonic() - t0
        lines, size = len(out.stdout.splitlines()), len(out.stdout.encode())
    print(f"virtio console (hvc0): dmesg of {lines} records, {size} bytes of text in {took * 1000:.0f} ms"
          f" ({size / took / 1024:.0f} KiB/s of text, framing not counted)")


if __name__ == "__main__":
    if not KEELCTL.is_file() or not INITRD.is_file():
        sys.exit("run `just keelctl initramfs` first")
    serial_round_trip()
    console_throughput()
