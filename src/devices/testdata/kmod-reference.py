#!/usr/bin/env python3
"""Regenerate the kmod reference the alias tests compare against:

  modules.alias    a subset of Debian 12's (linux-image 6.1.0-57-amd64, depmod of kmod 30):
                   every line of every module named below, every `cpu:` and `[` line,
                   every 4th with a `-` and every 32nd other line (most match nothing);
  kmod-lookup.txt  MODALIAS<TAB>MODULES for each line of modaliases-*.txt: what
                   `modprobe -R` (kmod 30, the modules.alias.bin index) resolves it to,
                   sorted, each once, built-in modules left out (modules.alias has none).

Because the subset keeps every line of every module in the answers, matching it gives
the same answers as matching the whole file.

    python3 src/devices/testdata/kmod-reference.py MODULES_ROOT RELEASE
(MODULES_ROOT: a copy of the kernel package's tree on which depmod -b was run.)
"""
import subprocess
import sys
from pathlib import Path

here = Path(__file__).parent
root, release = sys.argv[1], sys.argv[2]
moddir = Path(root) / "lib/modules" / release
builtin = {Path(l.strip()).name.split(".")[0].replace("-", "_") for l in open(moddir / "modules.builtin")}
modaliases = []
for f in sorted(here.glob("modaliases-*.txt")):
    modaliases += [l.rstrip("\n") for l in open(f) if l.strip()]
answers = {}
for m in dict.fromkeys(modaliases):
    out = subprocess.run(["modprobe", "-C", "/dev/null", "-d", root, "-S", release, "-R", m],
                         capture_output=True, text=True).stdout.split()
    answers[m] = sorted({n for n in out if n not in builtin})
wanted = {n for ns in answers.values() for n in ns}
lines = open(moddir / "modules.alias").read().splitlines()
keep = []
for i, line in enumerate(lines):
    words = line.split()
    if line.startswith("#") or not words:
        keep.append(line)
    elif words[-1] in wanted or words[1].startswith("cpu:") or "[" in words[1] or i % (4 if "-" in words[1] else 32) == 0:
        keep.append(line)
(here / "modules.alias").write_text("\n".join(keep) + "\n")
with open(here / "kmod-lookup.txt", "w") as f:
    for m, ns in answers.items():
        f.write(f"{m}\t{' '.join(ns)}\n")
print(f"{len(keep)} of {len(lines)} lines kept; {len(answers)} modaliases, {len(wanted)} modules", file=sys.stderr)
