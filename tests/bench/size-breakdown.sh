#!/usr/bin/env bash
# Code size by module of the release binary: an unstripped twin is built in its own target
# dir and its function symbols summed by their `keel::MODULE` path. Inlined code counts
# where it was inlined; rodata and the runtime crates (rustix, core) are listed apart.
set -euo pipefail
cd "$(dirname "$0")/../.."
CARGO_PROFILE_RELEASE_STRIP=false cargo build --release --quiet --target-dir target/size-breakdown
bin=target/size-breakdown/x86_64-unknown-linux-musl/release/keel
nm --size-sort -S -C "$bin" | awk '
    $3 ~ /^[tT]$/ {
        size = strtonum("0x" $2); name = $0; sub(/^[^ ]+ [^ ]+ [^ ]+ /, "", name)
        if (match(name, /keel::[a-z_0-9]+/)) { key = substr(name, RSTART, RLENGTH) }
        else if (name ~ /rustix/) { key = "rustix" } else if (name ~ /core::|compiler_builtins/) { key = "core" }
        else if (name ~ /heapless|ufmt|memchr/) { key = "heapless, ufmt, memchr" } else { key = "other" }
        sum[key] += size; total += size
    }
    END { for (k in sum) printf "%7d  %s\n", sum[k], k; printf "%7d  all code\n", total }' | sort -rn
size -A "$bin" | awk '$1 ~ /^\.(text|rodata|data|bss)$/ { printf "%7d  section %s\n", $2, $1 }'
