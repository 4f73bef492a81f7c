# keel: the two commands users need are `just vm` and `just test` (README.md).
set shell := ["bash", "-euo", "pipefail", "-c"]

target := "x86_64-unknown-linux-musl"
bin := "target/" + target + "/release/keel"

# Build the static PID 1 binary (x86_64 musl, no libc).
build:
    cargo build --release

# Print the size of the release binary.
size: build
    @stat -c '%s bytes  {{bin}}' {{bin}}

# Build for 64-bit Arm too (small boards are a target).
build-arm:
    cargo build --release --target aarch64-unknown-linux-musl

# Build the binary with test-only hooks (keel.test_panic), in its own target dir.
# and the binary whose service table is tests/services/services.toml.
build-test:
    cargo build --release --features test-hooks --target-dir target/test-hooks
    KEEL_CONFIG=tests/services/services.toml cargo build --release --target-dir target/test-services

# Everything CI runs: unit tests, PID-namespace tests, size test, the Arm build.
test: build build-test build-arm
    cargo test-host
