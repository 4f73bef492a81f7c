#!/usr/bin/env bash
# Code size by module of the release binary: an unstripped twin is built in its own target
# dir and its function symbols summed by their `keel::ROOM::MODULE` path (or keel_proto,
# keel_config). Inlined code counts
# where it was inlined; rodata and the runtime crates (rustix, core) are listed apart.
set -euo pipefail
cd "$(dirname "$0")/../.."
CARGO_PROFILE_RELEASE_STRIP=false cargo build --release --quiet --target-dir target/size-breakdown
bin=target/size-breakdown/x86_64-unknown-linux-musl/release/keel
# The files of each room (src/ROOM/FILE.rs) as `keel::ROOM::FILE` names.
files=$(cd src && ls */*.rs | sed 's|\.rs$||; s|/|::|; s|^|keel::|' | tr '\n' ' ')
nm --size-sort -S -C "$bin" | awk -v files="$files" '
    BEGIN { n = split(files, f, " "); for (i = 1; i <= n; i++) file[f[i]] = 1 }
    $3 ~ /^[tT]$/ {
        size = strtonum("0x" $2); name = $0; sub(/^[^ ]+ [^ ]+ [^ ]+ /, "", name)
        if (match(name, /keel(_proto|_config)?(::[a-z_0-9]+)+/)) {
            # keel::ROOM::FILE for files in a room, else CRATE::FILE (a room: its mod.rs).
            n = split(substr(name, RSTART, RLENGTH), p, "::")
            key = p[1] "::" p[2]
            if (n > 2 && (key "::" p[3]) in file) key = key "::" p[3]
        }
        else if (name ~ /rustix/) { key = "rustix" } else if (name ~ /core::|compiler_builtins/) { key = "core" }
        else if (name ~ /heapless|ufmt|memchr/) { key = "heapless, ufmt, memchr" } else { key = "other" }
        sum[key] += size; total += size
    }
    END { for (k in sum) printf "%7d  %s\n", sum[k], k; printf "%7d  all code\n", total }' | sort -rn
size -A "$bin" | awk '$1 ~ /^\.(text|rodata|data|bss)$/ { printf "%7d  section %s\n", $2, $1 }'
