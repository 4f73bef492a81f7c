#!/usr/bin/env python3
"""Wakeups of an idle PID 1 (a report, not a test), run by `just bench`: keel's voluntary
context switches (/proc/1/status, read from the console shell) over BENCH_IDLE_SECS
(default 60) of idle, in QEMU: without a watchdog (expected 0) and with i6300esb at
keel.watchdog=watchdog0:30 (expected one per pet: every 10 s). A PID namespace cannot have a
real watchdog, hence the VM."""
import os
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests/vm"))
import qemu  # noqa: E402

IDLE = int(os.environ.get("BENCH_IDLE_SECS", "60"))
TIMEOUT = 30
KEEL = REPO / "target/x86_64-unknown-linux-musl/release/keel"
INITRD = REPO / "target/bench/wakeups.cpio"


def initramfs():
    # The console shell and [system] modules = ["i6300esb"]: keel loads the driver, the
    # watchdog itself is set on the command line.
    config = REPO / "tests/qemu/image/watchdog.toml"
    INITRD.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, str(REPO / "tests/vm/mkinitramfs"), "--init", str(KEEL), "--out", str(INITRD),
                    "--busybox", "--config", str(config)], check=True, capture_output=True)  # fmt: skip


def idle_wakeups(name, append):
    with qemu.Vm(INITRD, name=name, append=append, extra_args=["-device", "i6300esb", "-watchdog-action", "reset"],
                 max_runtime=IDLE + 120) as vm:  # fmt: skip
        vm.start()
        vm.wait_for(r"keel: ready", timeout=60)
        vm.wait_shell(timeout=60)
        # Let boot's stragglers (module loading, the shell's start) settle first.
        vm.shell("sleep 2")
        out = vm.shell(f"grep voluntary_ctxt_switches /proc/1/status; sleep {IDLE}; grep voluntary_ctxt_switches /proc/1/status",
                       timeout=IDLE + 30)  # fmt: skip
        before, after = (int(n) for n in re.findall(r"^voluntary_ctxt_switches:\s+(\d+)", out, re.M))
        return after - before


def main():
    initramfs()
    print(f"== PID 1 wakeups (voluntary context switches) in {IDLE} s idle, QEMU x86_64")
    none = idle_wakeups("bench-wakeups-none", "")
    print(f"no watchdog:                  {none} (expected 0)")
    pets = IDLE // (TIMEOUT // 3)
    watched = idle_wakeups("bench-wakeups-watchdog", f"keel.watchdog=watchdog0:{TIMEOUT}")
    print(f"watchdog0:{TIMEOUT} (a pet every {TIMEOUT // 3} s): {watched} (expected {pets}, one per pet, +-1 for the phase)")


if __name__ == "__main__":
    main()
