//! What a service is: a `Spec` (keel_config::spec) in the table of the configuration that
//! runs (src/config: a compiled file read at boot, or the built-in one). Zero text parsing
//! at boot.

pub use keel_config::spec::{CStrs, Readiness, Restart, Spec};
use crate::sys::TryLock;

/// The running table, set once at boot, read by whoever names services (the command line's
/// `keel.svc.NAME`, debug clients, the root's rescue list).
static TABLE: TryLock<&'static [Spec<'static>]> = TryLock::new(&[]);

pub fn set_table(table: &'static [Spec<'static>]) {
    TABLE.with(|t| *t = table);
}

pub fn table() -> &'static [Spec<'static>] {
    TABLE.with(|t| *t).unwrap_or(&[])
}

/// Index of the service called `name`.
pub fn find(name: &[u8]) -> Option<usize> {
    table().iter().position(|s| s.name.as_bytes() == name)
}

/// A plain service for unit tests to vary (`Spec { oneshot: true, ..example() }`).
#[cfg(test)]
pub fn example() -> Spec<'static> {
    Spec {
        name: "svc",
        argv: CStrs::new(b"/bin/true\0").unwrap(),
        env: CStrs::new(b"").unwrap(),
        cwd: c"/",
        uid: 0,
        gid: 0,
        tty: None,
        deps: &[],
        restart: Restart::Always,
        oneshot: false,
        ready: Readiness::Exec,
        ready_timeout_ms: 1000,
        stop_signal: 15,
        stop_grace_ms: 500,
        ring: 256,
        echo: true,
        backoff_initial_ms: 100,
        backoff_max_ms: 1000,
        stable_after_ms: 10_000,
        max_failures: 6,
    }
}
