//! Reaping: on SIGCHLD (and before each shutdown step) collect every exited child, adopted
//! orphans included, with wait4(-1, WNOHANG) until none is left. Nothing is dropped: each
//! exit goes to the caller.

use rustix::process::{wait, WaitOptions};

/// How a child ended.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum ExitStatus {
    Exited(i32),
    Signaled(i32),
}

impl ExitStatus {
    /// `exit` or `signal`, and its number: the `% %` of a `log::say` template.
    pub fn parts(self) -> [crate::log::say::Part<'static>; 2] {
        use crate::log::say::Part::{I, T};
        match self {
            ExitStatus::Exited(code) => [T(b"exit"), I(code.into())],
            ExitStatus::Signaled(sig) => [T(b"signal"), I(sig.into())],
        }
    }
}

/// One exited child, if any: Ok(None) when children exist but none has exited,
/// Err(ECHILD) when there are none. Not generic, so every `reap_all` shares one copy.
#[inline(never)]
fn reap_one() -> Result<Option<(i32, ExitStatus)>, rustix::io::Errno> {
    Ok(wait(WaitOptions::NOHANG)?.map(|(pid, status)| {
        let how = match status.terminating_signal() {
            Some(signo) => ExitStatus::Signaled(signo),
            None => ExitStatus::Exited(status.exit_status().unwrap_or(0)),
        };
        (pid.as_raw_nonzero().get(), how)
    }))
}

/// Reap every child that has exited, handing each to `on_exit`. Returns whether children
/// remain (false once wait says ECHILD).
pub fn reap_all(mut on_exit: impl FnMut(i32, ExitStatus)) -> bool {
    loop {
        match reap_one() {
            Ok(Some((pid, status))) => on_exit(pid, status),
            Ok(None) => return true,
            Err(rustix::io::Errno::CHILD) => return false,
            Err(rustix::io::Errno::INTR) => continue,
            // Nothing else is documented; assume children remain and try on the next event.
            Err(_) => return true,
        }
    }
}
