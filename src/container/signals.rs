//! Where each signal keel gets goes, as dumb-init has it: every signal but SIGKILL and
//! SIGSTOP (which cannot be caught) and SIGCHLD (keel's own, for reaping) is blocked, read
//! from the signalfd and passed on. Pure: `run` sends.
//!
//! Blocking the fault signals (SEGV, BUS, ILL, FPE, TRAP, ABRT, SYS) does not hide a fault of
//! keel's own: the kernel delivers a synchronous fault by force, unblocking it and resetting
//! its action, so keel dies of it as it should. What reaches the signalfd is what another
//! process sent with kill(2) (`kill -SEGV` for a dump, say): the child's business. What the
//! kernel queued about keel itself without forcing it (a memory error it may act on later)
//! is not.

use crate::sys::{SigSet, SignalInfo};
use linux_raw_sys::general as k;

/// What keel blocks and reads from its signalfd: every signal it can.
pub const BLOCKED: SigSet = SigSet(!SigSet(0).with(k::SIGKILL).with(k::SIGSTOP).0);

/// Raised by the kernel for the process that faulted (forced, when the fault is synchronous).
const FAULTS: SigSet = SigSet(0)
    .with(k::SIGILL)
    .with(k::SIGTRAP)
    .with(k::SIGABRT)
    .with(k::SIGBUS)
    .with(k::SIGFPE)
    .with(k::SIGSEGV)
    .with(k::SIGSYS);

/// The terminal's stop signals: the job stops, so keel stops with it.
const JOB_STOPS: SigSet = SigSet(0).with(k::SIGTSTP).with(k::SIGTTIN).with(k::SIGTTOU);

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Route {
    /// Not the child's business.
    Drop,
    /// To the child, or to its process group with -g.
    Child,
    /// TSTP, TTIN, TTOU: to the child's whole group (what the terminal would stop), then keel
    /// stops itself, so the shell that started keel sees its job stop and takes the terminal.
    StopJob,
    /// SIGCONT: the terminal back to the child's group if keel's group was given it, and the
    /// whole group continued (the terminal stopped all of it).
    ContinueJob,
}

/// Where `signal` goes; `me` is keel's pid.
pub fn route(signal: SignalInfo, me: i32) -> Route {
    let from_kernel = signal.code > 0;
    match signal.signo {
        k::SIGCHLD => Route::Drop,
        // One keel caused itself: SIGPIPE from writing to a closed stderr.
        _ if signal.sender == me && !from_kernel => Route::Drop,
        s if FAULTS.contains(s) && from_kernel => Route::Drop,
        s if JOB_STOPS.contains(s) => Route::StopJob,
        k::SIGCONT => Route::ContinueJob,
        _ => Route::Child,
    }
}

/// Whether the child stopping on `signo` means its job stopped (and keel must stop too).
pub fn is_job_stop(signo: u32) -> bool {
    JOB_STOPS.contains(signo)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ME: i32 = 40;
    const SI_USER: i32 = 0;
    const SI_TKILL: i32 = -6;
    const SI_QUEUE: i32 = -1;
    const SI_KERNEL: i32 = 0x80;
    const SEGV_MAPERR: i32 = 1;

    fn from(signo: u32, code: i32, sender: i32) -> Route {
        route(SignalInfo { signo, code, sender }, ME)
    }

    #[test]
    fn every_signal_but_kill_and_stop_is_read() {
        for sig in (1..=64).filter(|&s| s != k::SIGKILL && s != k::SIGSTOP) {
            assert!(BLOCKED.contains(sig), "signal {sig}");
        }
        assert!(!BLOCKED.contains(k::SIGKILL) && !BLOCKED.contains(k::SIGSTOP));
    }

    #[test]
    fn what_another_process_sends_goes_to_the_child() {
        let asked = [k::SIGHUP, k::SIGINT, k::SIGQUIT, k::SIGUSR1, k::SIGUSR2, k::SIGPIPE, k::SIGALRM, k::SIGTERM];
        let faults = [k::SIGFPE, k::SIGILL, k::SIGSEGV, k::SIGBUS, k::SIGABRT, k::SIGTRAP, k::SIGSYS];
        let more = [k::SIGURG, k::SIGWINCH, k::SIGPWR, 32, 33, 34, 40, 64];
        for sig in asked.into_iter().chain(faults).chain(more) {
            for code in [SI_USER, SI_TKILL, SI_QUEUE] {
                assert_eq!(from(sig, code, 7), Route::Child, "signal {sig}, code {code}");
            }
            // From the parent PID namespace the sender is not visible: pid 0.
            assert_eq!(from(sig, SI_USER, 0), Route::Child, "signal {sig}");
        }
        // The terminal's signals (Ctrl-C, a window change) come from the kernel.
        assert_eq!(from(k::SIGINT, SI_KERNEL, 0), Route::Child);
        assert_eq!(from(k::SIGWINCH, SI_KERNEL, 0), Route::Child);
    }

    #[test]
    fn what_is_about_keel_itself_stays_with_keel() {
        assert_eq!(from(k::SIGCHLD, 1, 7), Route::Drop, "reaping is keel's");
        assert_eq!(from(k::SIGPIPE, SI_USER, ME), Route::Drop, "keel's own SIGPIPE");
        assert_eq!(from(k::SIGUSR1, SI_TKILL, ME), Route::Drop);
        for sig in [k::SIGSEGV, k::SIGBUS, k::SIGILL, k::SIGFPE, k::SIGTRAP, k::SIGSYS, k::SIGABRT] {
            assert_eq!(from(sig, SEGV_MAPERR, ME), Route::Drop, "signal {sig}: a kernel report about keel");
            assert_eq!(from(sig, SI_KERNEL, 0), Route::Drop, "signal {sig}");
        }
    }

    #[test]
    fn job_control() {
        for sig in [k::SIGTSTP, k::SIGTTIN, k::SIGTTOU] {
            assert_eq!(from(sig, SI_KERNEL, 0), Route::StopJob, "signal {sig} from the terminal");
            assert_eq!(from(sig, SI_USER, 7), Route::StopJob, "signal {sig} from kill");
            assert!(is_job_stop(sig));
        }
        assert_eq!(from(k::SIGCONT, SI_USER, 7), Route::ContinueJob);
        assert!(!is_job_stop(k::SIGSTOP), "SIGSTOP (a debugger, kill -STOP) is not the terminal's");
    }

    #[test]
    fn the_wire_layout() {
        let mut wire = [0u8; SignalInfo::WIRE_LEN];
        wire[0..4].copy_from_slice(&11u32.to_ne_bytes());
        wire[8..12].copy_from_slice(&SEGV_MAPERR.to_ne_bytes());
        wire[12..16].copy_from_slice(&1234u32.to_ne_bytes());
        let info = SignalInfo::from_wire(&wire);
        assert_eq!((info.signo, info.code, info.sender), (11, SEGV_MAPERR, 1234));
        wire[8..12].copy_from_slice(&SI_TKILL.to_ne_bytes());
        assert_eq!(SignalInfo::from_wire(&wire).code, SI_TKILL);
    }
}
