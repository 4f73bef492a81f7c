//! Where signals go: every signal PID 1 handles is blocked and read from one signalfd,
//! then mapped here to a request. The table follows every common convention at once
//! (busybox, s6, systemd, sysvinit ctrl-alt-del); README.md has it for users.

use crate::power::PowerCmd;
use crate::sys::{self, SigSet, SignalInfo};
use linux_raw_sys::general as k;
use rustix::fd::OwnedFd;

/// glibc's SIGRTMIN (the kernel's 32 plus the two glibc keeps): systemctl and friends
/// send SIGRTMIN+n counted from here.
pub const SIGRTMIN: u32 = 34;

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Request {
    /// SIGCHLD: reap.
    Reap,
    Power(PowerCmd),
}

/// The signal table. Conflicts between conventions resolve to the busybox/sysvinit
/// meaning, so busybox's own `poweroff`/`reboot`/`halt` applets work under keel.
pub const fn request_for(signo: u32) -> Option<Request> {
    use PowerCmd::*;
    let cmd = match signo {
        k::SIGCHLD => return Some(Request::Reap),
        k::SIGTERM => Reboot,   // busybox reboot
        k::SIGUSR1 => Halt,     // busybox halt
        k::SIGUSR2 => PowerOff, // busybox poweroff
        k::SIGINT => Reboot,    // ctrl-alt-del (CAD is off, so the kernel sends SIGINT)
        k::SIGPWR => PowerOff,  // power failure / s6, finit
        s if s == SIGRTMIN + 3 => Halt,     // systemd halt
        s if s == SIGRTMIN + 4 => PowerOff, // systemd poweroff
        s if s == SIGRTMIN + 5 => Reboot,   // systemd reboot
        _ => return None,
    };
    Some(Request::Power(cmd))
}

/// Every signal of the table.
pub const HANDLED: SigSet = SigSet(0)
    .with(k::SIGCHLD)
    .with(k::SIGTERM)
    .with(k::SIGUSR1)
    .with(k::SIGUSR2)
    .with(k::SIGINT)
    .with(k::SIGPWR)
    .with(SIGRTMIN + 3)
    .with(SIGRTMIN + 4)
    .with(SIGRTMIN + 5);

/// The signalfd source of the event loop.
pub struct Signals {
    pub fd: OwnedFd,
}

impl Signals {
    /// Block the handled signals and open the signalfd that receives them instead.
    pub fn open() -> Result<Signals, rustix::io::Errno> {
        sys::block_signals(HANDLED)?;
        Ok(Signals { fd: sys::signalfd(HANDLED)? })
    }

    /// The next pending signal, if any (the fd is non-blocking).
    pub fn next(&self) -> Option<SignalInfo> {
        let mut raw = [0u8; SignalInfo::WIRE_LEN];
        match rustix::io::read(crate::sys::fd::borrow(&self.fd), &mut raw) {
            Ok(SignalInfo::WIRE_LEN) => Some(SignalInfo::from_wire(&raw)),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use PowerCmd::*;

    #[test]
    fn the_table() {
        let table = [
            (k::SIGTERM, Reboot),
            (k::SIGUSR1, Halt),
            (k::SIGUSR2, PowerOff),
            (k::SIGINT, Reboot),
            (k::SIGPWR, PowerOff),
            (37, Halt),
            (38, PowerOff),
            (39, Reboot),
        ];
        for (sig, cmd) in table {
            assert_eq!(request_for(sig), Some(Request::Power(cmd)), "signal {sig}");
            assert!(HANDLED.contains(sig), "signal {sig} must be blocked and read");
        }
        assert_eq!(request_for(k::SIGCHLD), Some(Request::Reap));
        assert!(HANDLED.contains(k::SIGCHLD));
    }

    #[test]
    fn other_signals_are_not_requests() {
        for sig in [k::SIGHUP, k::SIGQUIT, k::SIGKILL, k::SIGSEGV, k::SIGPIPE, k::SIGWINCH, 34, 35, 36, 40, 64] {
            assert_eq!(request_for(sig), None, "signal {sig}");
            assert!(!HANDLED.contains(sig), "signal {sig}");
        }
    }
}
