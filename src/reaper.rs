//! Reaping: on SIGCHLD (and before each shutdown step) collect every exited child, adopted
//! orphans included, with waitid(P_ALL, WNOHANG) until none is left. Nothing is dropped:
//! each exit goes to the caller.

pub use crate::sys::ExitStatus;

impl ufmt::uDisplay for ExitStatus {
    fn fmt<W: ufmt::uWrite + ?Sized>(&self, f: &mut ufmt::Formatter<'_, W>) -> Result<(), W::Error> {
        match *self {
            ExitStatus::Exited(code) => ufmt::uwrite!(f, "exit {}", code),
            ExitStatus::Signaled(sig) => ufmt::uwrite!(f, "signal {}", sig),
        }
    }
}

/// Reap every child that has exited, handing each to `on_exit`. Returns whether children
/// remain (false once waitid says ECHILD).
pub fn reap_all(mut on_exit: impl FnMut(i32, ExitStatus)) -> bool {
    loop {
        match crate::sys::reap_one() {
            Ok(Some((pid, status))) => on_exit(pid, status),
            Ok(None) => return true,
            Err(rustix::io::Errno::CHILD) => return false,
            Err(rustix::io::Errno::INTR) => continue,
            // Nothing else is documented; assume children remain and try on the next event.
            Err(_) => return true,
        }
    }
}
