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

/// A fresh directory under the system temp dir, removed (with its contents) when dropped,
/// so no test leaves files behind, even when it fails.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(name: &str) -> TempDir {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("keel-{name}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("a temp dir");
        TempDir(dir)
    }

    pub fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
