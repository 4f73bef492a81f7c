//! Shared helpers for the integration tests: where the binaries are.
//! `just test` builds them first (the PID 1 binary is no_std musl; the tests run on the host
//! target), so these only locate them.
#![allow(dead_code)]

pub mod ns;

use std::path::PathBuf;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn existing(var: &str, default: &str, how: &str) -> PathBuf {
    let path = std::env::var_os(var).map(PathBuf::from).unwrap_or_else(|| root().join(default));
    assert!(path.exists(), "{} is missing: run `{how}` (or `just test`)", path.display());
    path
}

/// The release binary, as shipped.
pub fn keel_bin() -> PathBuf {
    existing("KEEL_BIN", "target/x86_64-unknown-linux-musl/release/keel", "just build")
}

/// The release binary with the `test-hooks` feature (keel.test_panic).
pub fn keel_test_bin() -> PathBuf {
    existing("KEEL_TEST_BIN", "target/test-hooks/x86_64-unknown-linux-musl/release/keel", "just build-test")
}

/// The release binary built with tests/services/services.toml as its service table.
pub fn keel_services_bin() -> PathBuf {
    existing("KEEL_SERVICES_BIN", "target/test-services/x86_64-unknown-linux-musl/release/keel", "just build-test")
}

/// keelctl, the host client (`just keelctl`).
pub fn keelctl_bin() -> PathBuf {
    existing("KEELCTL", "target/x86_64-unknown-linux-gnu/release/keelctl", "just keelctl")
}
