#!/usr/bin/env python3
"""PID 1's resident memory in the VM (a report, not a test), run by `just bench-rss`: keel
built with a 10-service configuration (the console shell and 9 sleepers), booted as the
machine's init; once every service runs, /proc/1/smaps_rollup's Rss (the kernel's exact
figure; VmRSS lags behind on 6.1) against the 128 KiB budget, and /proc/1/smaps mapping by
mapping (what is resident: text pages touched, .data/.bss pages written, the stack), and
which of keel's statics the resident .data/.bss pages hold (from /proc/1/pagemap; the
binary is built unstripped for that, which changes no address)."""
import os
import re
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "vm"))
from qemu import Vm  # noqa: E402

TARGET = "x86_64-unknown-linux-musl"
BUDGET_KIB = 128
PAGE = 4096
SLEEPERS = 9

CONFIG = """[service.shell]
argv = ["/bin/sh"]
tty = "/dev/console"
env = ["HOME=/root", "TERM=linux", "PATH=/sbin:/bin:/usr/sbin:/usr/bin"]
restart = "always"
echo = false
stop_signal = "HUP"
""" + "".join(f'\n[service.sleep{i}]\nargv = ["/bin/sleep", "100000"]\n' for i in range(SLEEPERS))


def build():
    out = REPO / "target" / "bench" / "rss10"
    out.mkdir(parents=True, exist_ok=True)
    conf = out / "services.toml"
    conf.write_text(CONFIG)
    env = dict(os.environ, KEEL_CONFIG=str(conf), CARGO_PROFILE_RELEASE_STRIP="false")
    subprocess.run(["cargo", "build", "--release", "--quiet", "--target-dir", str(out / "target")],
                   cwd=REPO, env=env, check=True)
    keel = out / "target" / TARGET / "release" / "keel"
    cpio = out / "initramfs.cpio"
    subprocess.run([str(REPO / "tests" / "vm" / "mkinitramfs"), "--init", str(keel), "--out", str(cpio), "--busybox"],
                   cwd=REPO, check=True, stdout=subprocess.DEVNULL)
    return keel, cpio


def mappings(smaps):
    """(Rss kB, what) per mapping of /proc/PID/smaps."""
    rows, head = [], None
    for line in smaps.splitlines():
        m = re.match(r"^([0-9a-f]+)-([0-9a-f]+) (\S+) \S+ \S+ \S+\s*(.*)$", line)
        if m:
            size = (int(m.group(2), 16) - int(m.group(1), 16)) // 1024
            head = f"{m.group(3)} {size:6d} kB {m.group(4) or '[anon]'}"
        elif head and line.startswith("Rss:"):
            rows.append((int(line.split()[1]), head))
            head = None
    return rows


def main():
    keel, cpio = build()
    print(f"keel with the console shell and {SLEEPERS} sleepers (unstripped): {keel.stat().st_size} bytes")
    statics = data_symbols(keel)
    first, last = statics[0][0] // PAGE, (statics[-1][0] + statics[-1][1] - 1) // PAGE
    with Vm(cpio, name="bench-rss") as vm:
        vm.start()
        vm.wait_for(r"keel: ready", timeout=60)
        vm.wait_shell(30)
        vm.wait_for(rf"svc sleep{SLEEPERS - 1}: waiting -> ready", timeout=30, since=0)
        time.sleep(2)  # whatever follows the last start (its log lines) is done
        rollup = vm.shell("cat /proc/1/smaps_rollup")
        smaps = vm.shell("cat /proc/1/smaps")
        # One 64-bit entry per page; bit 63: present.
        pagemap = vm.shell(f"od -An -v -tx8 -j {first * 8} -N {(last - first + 1) * 8} /proc/1/pagemap")
        vm.qmp("system_powerdown")
        vm.wait_exit(60)
    rss = int(re.search(r"^Rss:\s+(\d+) kB", rollup, re.M).group(1))
    fields = {k: int(v) for k, v in re.findall(r"^(Rss|Pss_Anon|Pss_File|Anonymous|Shared_Clean|Private_Clean|Private_Dirty):\s+(\d+) kB", rollup, re.M)}
    print(f"PID 1 Rss with {SLEEPERS + 1} services: {rss} kB (budget {BUDGET_KIB} KiB: "
          f"{'within' if rss <= BUDGET_KIB else f'{rss - BUDGET_KIB} kB over'})")
    print("  " + ", ".join(f"{k} {v} kB" for k, v in fields.items() if k != "Rss"))
    print("  by mapping (perms, size, Rss):")
    for kb, what in mappings(smaps):
        print(f"    {kb:4d} kB  {what}")
    # The console echoes the command line before od's words.
    words = re.findall(r"^ ([0-9a-f]{16})(?: ([0-9a-f]{16}))?$", pagemap, re.M)
    words = [w for pair in words for w in pair if w]
    if len(words) != last - first + 1:
        sys.exit(f"od gave {len(words)} pagemap entries, not {last - first + 1}: {pagemap[:300]!r}")
    present = [int(w, 16) >> 63 for w in words]
    print(f"  .data/.bss pages resident: {sum(present)} of {len(present)}; what they hold:")
    for i, p in enumerate(present):
        if p:
            lo, hi = (first + i) * PAGE, (first + i + 1) * PAGE
            held = [f"{name} ({size} B)" for addr, size, name in statics if addr < hi and addr + size > lo]
            print(f"    {lo:#x}  {', '.join(held) or '(nothing named)'}")


def data_symbols(binary):
    """(address, size, name) of the statics in .data and .bss, by address."""
    out = subprocess.run(["nm", "-S", "-C", "--defined-only", str(binary)], capture_output=True, text=True, check=True).stdout
    rows = []
    for line in out.splitlines():
        parts = line.split(" ", 3)
        if len(parts) == 4 and parts[2] in "bBdD":
            rows.append((int(parts[0], 16), int(parts[1], 16), parts[3]))
    return sorted(rows)


if __name__ == "__main__":
    main()
