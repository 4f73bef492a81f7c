# keel: the two commands users need are `just vm` and `just test` (README.md).
set shell := ["bash", "-euo", "pipefail", "-c"]

target := "x86_64-unknown-linux-musl"
bin := "target/" + target + "/release/keel"
arm_bin := "target/aarch64-unknown-linux-musl/release/keel"
# A config for the VM's image (docs/image.md): `just vm CONFIG=my.toml`. Empty: none in the
# image, so keel's built-in table (a shell on the console) runs.
CONFIG := ""
config_arg := if CONFIG == "" { "" } else { "--config " + quote(join(invocation_directory(), CONFIG)) }

# Build the static PID 1 binary (x86_64 musl, no libc).
build:
    cargo build --release

# keelctl, the host-side debug client (docs/keelctl.md): the std crate keelctl/, for the
# host target. Gives target/x86_64-unknown-linux-gnu/release/keelctl.
keelctl:
    cargo build --release -p keelctl --target x86_64-unknown-linux-gnu

# Print the size of the release binary.
size: build
    @stat -c '%s bytes  {{bin}}' {{bin}}

# Build for 64-bit Arm too (small boards are a target).
build-arm:
    cargo build --release --target aarch64-unknown-linux-musl

# The QEMU panic test runs on both architectures.
# Build the binaries with test-only hooks (keel.test_panic, x86_64 and aarch64), and with
# tests/services/services.toml as the built-in configuration.
build-test:
    cargo build --release --features test-hooks --target-dir target/test-hooks
    cargo build --release --features test-hooks --target-dir target/test-hooks --target aarch64-unknown-linux-musl
    KEEL_CONFIG=tests/services/services.toml cargo build --release --target-dir target/test-services

# Everything CI runs: unit, PID-namespace, service, container and size tests, the Arm build,
# then the QEMU boots of a real kernel.
test: build build-test build-arm keelctl
    cargo test-host
    just fuzz-ci
    just test-qemu

# The stock Debian kernel for the VM: fetched once into .cache/kernel (KEEL_CACHE moves it).
kernel:
    @tests/vm/fetch-kernel >/dev/null

# Debian's arm64 kernel (as a plain Image) and busybox-static:arm64, into .cache/kernel-arm64.
kernel-arm:
    @tests/vm/fetch-kernel arm64 >/dev/null

# Made once into .cache/debian-root (KEEL_CACHE moves it) from this machine's apt mirror:
# 30-90 s and 131 MiB; needs root and debootstrap (tests/vm/fetch-debian-root).
# A Debian bookworm root for the QEMU tests: debootstrap --variant=minbase, rsyslog, dropbear.
debian-root:
    @tests/vm/fetch-debian-root >/dev/null

# target/initramfs.cpio: keel as /init, busybox, the default kernel modules and CONFIG if
# set, packed by `keelctl image` (tests/vm/mkinitramfs fills in the repository's defaults).
initramfs: build kernel keelctl
    tests/vm/mkinitramfs --init {{bin}} --out target/initramfs.cpio --busybox {{config_arg}}

# target/initramfs-arm64.cpio: the same for aarch64 (arm64 keel, busybox and modules).
initramfs-arm: build-arm kernel-arm keelctl
    tests/vm/mkinitramfs --arch aarch64 --init {{arm_bin}} --out target/initramfs-arm64.cpio --busybox {{config_arg}}

# Boot keel in QEMU, a shell on the serial console (Ctrl-A X quits). `just vm --disk FILE`;
# `just vm CONFIG=my.toml` boots that config (compiled into the image's /etc/keel/keel.db).
[positional-arguments]
vm *ARGS: _vm-packages
    #!/usr/bin/env bash
    set -euo pipefail
    config={{quote(CONFIG)}}
    args=()
    for a in "$@"; do
        case $a in CONFIG=*) config=${a#CONFIG=} ;; *) args+=("$a") ;; esac
    done
    [[ -z $config || $config == /* ]] || config={{quote(invocation_directory())}}/$config
    {{quote(just_executable())}} --justfile {{quote(justfile())}} CONFIG="$config" initramfs
    exec tests/vm/qemu.py vm "${args[@]}"

# The same on aarch64: QEMU virt, cortex-a57 (TCG), Debian's arm64 kernel.
[positional-arguments]
vm-arm *ARGS: (_vm-packages "aarch64") initramfs-arm
    tests/vm/qemu.py vm --arch aarch64 "$@"

# The QEMU integration tests (tests/qemu/test_*.py, aarch64 in test_arm64.py), one boot at a time.
test-qemu: (_vm-packages "x86_64 aarch64") build build-arm build-test keelctl kernel kernel-arm debian-root
    @python3 -B tests/vm/disk.py check
    python3 -B tests/qemu/run.py

# Boot timing report (5 boots, medians): PID 1 exec -> "keel: ready", power button -> exit.
bench-boot: _vm-packages initramfs
    tests/vm/qemu.py bench --runs 5

# The same on aarch64 (QEMU virt under TCG; the power key is gpio-keys).
bench-boot-arm: (_vm-packages "aarch64") initramfs-arm
    tests/vm/qemu.py bench --arch aarch64 --runs 5

# exec -> `keel: ready` with the built-in configuration and with the same one read from
# /etc/keel/keel.db (compiled from src/config/default.toml): what reading a file costs.
bench-config: _vm-packages build kernel keelctl
    tests/vm/mkinitramfs --init {{bin}} --out target/bench/builtin.cpio --busybox
    tests/vm/mkinitramfs --init {{bin}} --out target/bench/with-db.cpio --busybox --config src/config/default.toml
    @echo "== the built-in configuration"
    tests/vm/qemu.py bench --runs 5 --initrd target/bench/builtin.cpio
    @echo "== the same configuration from /etc/keel/keel.db"
    tests/vm/qemu.py bench --runs 5 --initrd target/bench/with-db.cpio

# On the default image keel's own modules are all there is, so nothing more is loaded: this
# is the cost of walking /sys/devices and matching modules.alias (docs/devices.md).
# exec -> `keel: ready` with coldplug on (the default) and off (keel.coldplug=off).
bench-coldplug: _vm-packages build kernel keelctl
    tests/vm/mkinitramfs --init {{bin}} --out target/bench/coldplug.cpio --busybox
    @echo "== coldplug on"
    tests/vm/qemu.py bench --runs 5 --initrd target/bench/coldplug.cpio
    @echo "== coldplug off (keel.coldplug=off)"
    tests/vm/qemu.py bench --runs 5 --initrd target/bench/coldplug.cpio --append keel.coldplug=off

# Benchmarks, a report (not a test): size, boot and power button, services, container mode.
bench: size size-breakdown bench-boot bench-config bench-coldplug bench-services bench-rss bench-debug bench-container bench-wakeups

# PID 1 wakeups in BENCH_IDLE_SECS (default 60) of idle, in QEMU: none without a watchdog,
# one per pet with one (keel.watchdog=watchdog0:30 on i6300esb: every 10 s).
bench-wakeups: _vm-packages build kernel
    python3 -B tests/bench/wakeups.py

# Code size by module (an unstripped twin of the release binary, symbols summed).
size-breakdown:
    bash tests/bench/size-breakdown.sh

# PID 1's Rss in the VM with 10 services (/proc/1/smaps_rollup; budget 128 KiB), by mapping,
# and which statics the resident .bss pages hold.
bench-rss: _vm-packages kernel
    python3 -B tests/bench/rss.py

# The panic sites that bring core::fmt into PID 1, by source line (a report).
panic-sites:
    bash tests/bench/panic-sites.sh

# Debug protocol: keelctl round trip over a serial line, throughput over a virtio console.
bench-debug: _vm-packages initramfs keelctl
    python3 -B tests/bench/debug.py

# Services: spawn rate, PID 1 CPU in a crash loop (BENCH_CRASH_SECS, default 60), VmRSS.
bench-services: build
    python3 -B tests/bench/services.py

# What the VM needs from Debian (for the guest ARCHES); names the apt-get line when
# something is missing. aarch64's busybox comes with its kernel (fetch-kernel arm64).
_vm-packages ARCHES="x86_64":
    #!/usr/bin/env bash
    missing=()
    for arch in {{ARCHES}}; do
        case $arch in
            x86_64) command -v qemu-system-x86_64 >/dev/null || missing+=(qemu-system-x86) ;;
            aarch64) command -v qemu-system-aarch64 >/dev/null || missing+=(qemu-system-arm) ;;
            *) echo "_vm-packages: unknown arch $arch" >&2; exit 1 ;;
        esac
    done
    dpkg-query -W -f='${Status}' busybox-static 2>/dev/null | grep -q 'ok installed' || missing+=(busybox-static)
    command -v xz >/dev/null || missing+=(xz-utils)
    command -v python3 >/dev/null || missing+=(python3)
    if (( ${#missing[@]} )); then
        # A qemu-utils from backports blocks bookworm's QEMU: apt-qemu names the way around it.
        echo "missing packages: apt-get install -y --allow-downgrades $(tests/vm/apt-qemu "${missing[@]}" | tr '\n' ' ')" >&2
        exit 1
    fi

# Fuzz every decoder for SECS seconds each (needs a nightly toolchain and cargo-fuzz).
fuzz SECS="60":
    for t in $(cargo +nightly fuzz list --fuzz-dir tests/fuzz); do cargo +nightly fuzz run --fuzz-dir tests/fuzz $t -- -max_total_time={{SECS}}; done

# The bounded fuzzing `just test` runs: every target for SECS seconds, one summary line each
# (`fuzz: NAME: N executions in S s`). Without a nightly toolchain and cargo-fuzz it is
# skipped with a warning, except under CI=true (set by .ci/run), where that is a failure.
fuzz-ci SECS="30":
    #!/usr/bin/env bash
    set -euo pipefail
    if ! cargo +nightly --version >/dev/null 2>&1 || ! cargo +nightly fuzz --version >/dev/null 2>&1; then
        if [[ ${CI:-} == true ]]; then
            echo "fuzz-ci: FAILED: no nightly toolchain with cargo-fuzz (.ci/run installs them)" >&2
            exit 1
        fi
        echo "fuzz-ci: WARNING: no nightly toolchain with cargo-fuzz here: fuzzing SKIPPED" >&2
        echo "  (rustup toolchain install nightly --profile minimal; cargo install cargo-fuzz --locked)" >&2
        exit 0
    fi
    targets=$(cargo +nightly fuzz list --fuzz-dir tests/fuzz)
    cargo +nightly fuzz build --fuzz-dir tests/fuzz >/dev/null
    log=$(mktemp)
    trap 'rm -f "$log"' EXIT
    for t in $targets; do
        if ! cargo +nightly fuzz run --fuzz-dir tests/fuzz "$t" -- -max_total_time={{SECS}} -rss_limit_mb=4096 >"$log" 2>&1; then
            tail -n 40 "$log" >&2
            echo "fuzz: $t: FAILED (artifacts in tests/fuzz/artifacts/$t)" >&2
            exit 1
        fi
        done_line=$(grep -E '^Done [0-9]+ runs in [0-9]+ second' "$log" | tail -n 1)
        [[ -n $done_line ]] || { tail -n 20 "$log" >&2; echo "fuzz: $t: no summary from libFuzzer" >&2; exit 1; }
        read -r _ runs _ _ secs _ <<<"$done_line"
        echo "fuzz: $t: $runs executions in $secs s"
    done

# Container mode against tini and catatonit (Debian's): startup overhead of `INIT -- true`
# (hyperfine, RUNS runs each) and the init's VmRSS while its child runs. A report, not a test.
bench-container RUNS="1000": build
    #!/usr/bin/env bash
    set -euo pipefail
    missing=()
    for tool in hyperfine tini-static catatonit; do command -v $tool >/dev/null || missing+=($tool); done
    if (( ${#missing[@]} )); then
        echo "missing: apt-get install -y hyperfine tini catatonit  (tini-static comes with tini)" >&2
        exit 1
    fi
    # name, then the init's command line up to `--` (tini gets -s: a subreaper, as keel is).
    inits=("keel $(realpath {{bin}})" "tini-static $(command -v tini-static) -s" "tini $(command -v tini) -s"
           "catatonit $(command -v catatonit)")
    echo "== startup: INIT -- true vs true ({{RUNS}} runs each, no shell)"
    table=$(mktemp)
    trap 'rm -f "$table"' EXIT
    args=(-N --warmup 50 --runs {{RUNS}} --export-markdown "$table" --style none -n true true)
    for init in "${inits[@]}"; do args+=(-n "${init%% *}" "${init#* } -- true"); done
    hyperfine "${args[@]}"
    cat "$table"
    echo
    echo "== the init's memory while its child runs (INIT -- sleep 1), and its file size"
    printf '| %-12s | %8s | %8s | %10s |\n' init VmRSS VmHWM size
    for init in "${inits[@]}"; do
        cmd=(${init#* })
        "${cmd[@]}" -- sleep 1 & pid=$!
        sleep 0.3
        mem=($(awk '/^Vm(RSS|HWM)/ {print $2}' /proc/$pid/status))
        wait $pid
        printf '| %-12s | %5s kB | %5s kB | %8s B |\n' "${init%% *}" "${mem[1]}" "${mem[0]}" "$(stat -L -c %s "${cmd[0]}")"
    done
