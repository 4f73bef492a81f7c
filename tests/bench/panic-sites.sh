#!/bin/bash
# The panic sites of PID 1 that bring core::fmt along (slice_index_fail, panic_bounds_check,
# assert_failed, len_mismatch_fail, and direct panic_fmt calls), with the source line each
# is at: a line-tables twin of the release binary, its calls mapped by addr2line. A report.
# A FromFn row names the caller of an iterator whose closure indexes (keel-config CStrs).
cd "$(dirname "$0")/../.."
CARGO_PROFILE_RELEASE_STRIP=false CARGO_PROFILE_RELEASE_DEBUG=line-tables-only cargo build --release --quiet --target-dir target/lines || exit 1
B=target/lines/x86_64-unknown-linux-musl/release/keel
python3 - "$B" <<'PY'
import re, subprocess, sys, collections
b = sys.argv[1]
out = subprocess.run(['objdump', '-d', '--no-show-raw-insn', '-C', b], capture_output=True, text=True).stdout
fn = None; calls = []  # (addr, caller, callee)
callers = collections.defaultdict(set)
for line in out.splitlines():
    m = re.match(r'^([0-9a-f]+) <(.*)>:$', line)
    if m: fn = m.group(2); continue
    m = re.match(r'^\s*([0-9a-f]+):\s+(call|j\w+)\s+[0-9a-f]+ <(.+)>$', line)
    if m and fn:
        tgt = re.sub(r'\+0x[0-9a-f]+$', '', m.group(3))
        if tgt != fn:
            calls.append((m.group(1), fn, tgt)); callers[tgt].add(fn)
roots = {t for _, _, t in calls if re.search(r'panic_bounds_check$|slice_index_fail$|assert_failed$|len_mismatch_fail$', t)}
roots |= {f for f in callers.get('core::panicking::panic_fmt', ()) if not f.startswith('core::panicking') and 'slice_index_fail' not in f}
# helpers: core functions (not panicking::) that reach a root
bad = set(roots); changed = True
while changed:
    changed = False
    for _, f, t in calls:
        if t in bad and f not in bad and (f.startswith('core::') or f.startswith('<core::') or f.startswith('heapless') or f.startswith('<heapless')) and not f.startswith('core::panicking') and 'call_once' not in f and 'call_mut' not in f:
            bad.add(f); changed = True
sites = [(a, f, t) for a, f, t in calls if t in bad and f not in bad]
addrs = [a for a, _, _ in sites]
res = subprocess.run(['addr2line', '-e', b, '-i', '-f', '-C', '-a'] + addrs, capture_output=True, text=True).stdout
# parse blocks starting with 0x...
blocks = re.split(r'^0x[0-9a-f]+\n', res, flags=re.M)[1:]
rows = collections.Counter()
for (a, f, t), blk in zip(sites, blocks):
    lines = blk.strip().split('\n')
    frames = [(lines[i], lines[i+1]) for i in range(0, len(lines) - 1, 2)]
    # first frame in our sources
    loc = '?'
    for func, pos in frames:
        if '/rustc/' not in pos and '.cargo/registry' not in pos or pos.startswith('src/') or pos.startswith('keel-'):
            loc = re.sub(r'.*?/(src|keel-[a-z]+)/', r'\1/', pos, count=1); break
    else:
        if frames: loc = re.sub(r'.*/(rustix|heapless)-', r'\1-', frames[-1][1])
    tname = re.sub(r'^core::(panicking|slice::index|slice)::', '', t)[:50]
    rows[(loc.split(' ')[0], tname)] += 1
for (loc, t), n in sorted(rows.items()):
    print(f'{loc:45} {t}' + (f'  x{n}' if n > 1 else ''))
print(len(rows), 'sites')
PY
