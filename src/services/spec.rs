//! What a service is: the static description compiled from the configuration file
//! (src/services/default.toml, or KEEL_CONFIG) by build.rs (src/services/config.rs). Zero parsing at boot.

use core::ffi::CStr;

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Restart {
    Always,
    OnFailure,
    Never,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Readiness {
    /// Ready as soon as exec succeeds.
    Exec,
    /// sd_notify: a `READY=1` datagram on the socket named in `NOTIFY_SOCKET`.
    Notify,
    /// s6/nitro notification-fd: a newline written to this fd.
    Fd(u32),
}

#[derive(Copy, Clone, Debug)]
pub struct Spec {
    pub name: &'static str,
    pub argv: &'static [&'static CStr],
    pub env: &'static [&'static CStr],
    pub cwd: &'static CStr,
    pub uid: u32,
    pub gid: u32,
    /// A controlling terminal: the service gets a session and job control on it.
    pub tty: Option<&'static CStr>,
    /// Indices into SERVICES: start after these are ready, stop before them.
    pub deps: &'static [usize],
    pub restart: Restart,
    /// A boot task: dependents wait until it has exited successfully.
    pub oneshot: bool,
    pub ready: Readiness,
    pub ready_timeout_ms: u64,
    pub stop_signal: u32,
    pub stop_grace_ms: u64,
    /// Bytes of output kept in the service's log ring.
    pub ring: usize,
    /// Echo output lines to the console as `name| line`.
    pub echo: bool,
    pub backoff_initial_ms: u64,
    pub backoff_max_ms: u64,
    /// A run this long resets the backoff and the failure count.
    pub stable_after_ms: u64,
    /// Quick failures in a row before the service is marked failed.
    pub max_failures: u32,
}

include!(concat!(env!("OUT_DIR"), "/services.rs"));

/// Index of the service called `name`.
pub fn find(name: &[u8]) -> Option<usize> {
    SERVICES.iter().position(|s| s.name.as_bytes() == name)
}
