//! The hardware watchdog (`keel.watchdog=DEVICE[:SECONDS]`). Opened at boot, it is petted
//! from the one loop at a third of its timeout: the loop's only periodic wakeup, and only
//! with a watchdog. If the loop stops (a bug), nothing pets it and the machine resets within
//! the timeout. At the start of the power sequence its timeout becomes everything the
//! sequence allows itself plus a grace, it is petted once and never again: a shutdown that
//! hangs (a disk, keel itself) still ends, by a hardware reset. keel never writes the magic
//! close 'V', and the descriptor lives as long as PID 1, so nothing ever disarms it.

use crate::clock::Instant;
use crate::config::cmdline;
use crate::log::say::{say, Part::{E, N, T}};
use crate::sys::{watchdog_ioctl, WatchdogRequest};
use rustix::fd::{AsFd, OwnedFd};

/// Beyond the power sequence's own bounds: the loop's latency and reboot(2) itself (the
/// kernel shutting devices down).
pub const GRACE_SECS: u32 = 5;

/// When to pet: pure, so the loop's timer is data (`poll_at`).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Pets {
    period_ms: u64,
    /// None once the power sequence has the hardware bound.
    next: Option<Instant>,
}

impl Pets {
    /// Just petted (opening the device starts it) with a timeout of `timeout_secs`.
    pub fn new(now: Instant, timeout_secs: u32) -> Pets {
        let period_ms = timeout_secs as u64 * 1000 / 3;
        Pets { period_ms, next: Some(now.plus_millis(period_ms)) }
    }

    pub fn poll_at(&self) -> Option<Instant> {
        self.next
    }

    /// Whether to pet now; if so, the next is a period later.
    pub fn step(&mut self, now: Instant) -> bool {
        match self.next {
            Some(at) if now >= at => {
                self.next = Some(now.plus_millis(self.period_ms));
                true
            }
            _ => false,
        }
    }

    /// Never again.
    pub fn stop(&mut self) {
        self.next = None;
    }
}

/// The timeout that covers the power sequence from `now` until it ends by its own bounds
/// (`ends_by`), in whole seconds rounded up, plus the grace.
pub fn shutdown_timeout_secs(now: Instant, ends_by: Instant) -> u32 {
    let secs = ends_by.millis_since(now).div_ceil(1000);
    (secs.min(u32::MAX as u64) as u32).saturating_add(GRACE_SECS)
}

pub struct Watchdog {
    fd: OwnedFd,
    pets: Pets,
}

impl Watchdog {
    /// Open /dev/DEVICE (which starts it) and ask for the timeout; pet at a third of what
    /// the driver chose.
    pub fn open(config: &cmdline::Watchdog) -> Result<Watchdog, rustix::io::Errno> {
        // "/dev/", the name (at most 32 bytes), and at least one NUL.
        let mut path = [0u8; 38];
        let name = &config.device[..];
        for (to, &from) in path.iter_mut().zip(b"/dev/".iter().chain(name)) {
            *to = from;
        }
        let path = core::ffi::CStr::from_bytes_until_nul(&path).map_err(|_| rustix::io::Errno::INVAL)?;
        let fd = crate::sys::fd::open(path, rustix::fs::OFlags::WRONLY | rustix::fs::OFlags::CLOEXEC, rustix::fs::Mode::empty())?;
        let asked = config.timeout_secs;
        // A driver that refuses it keeps its own: GETTIMEOUT says which (it may round too);
        // if it cannot say, pet as for what was asked.
        let _ = watchdog_ioctl(fd.as_fd(), WatchdogRequest::SetTimeout, asked as i32);
        let timeout = match watchdog_ioctl(fd.as_fd(), WatchdogRequest::GetTimeout, 0) {
            Ok(secs) if secs > 0 => secs as u32,
            _ => asked,
        };
        say(b"watchdog %: % s", &[T(name), N(timeout.into())]);
        Ok(Watchdog { fd, pets: Pets::new(Instant::now(), timeout) })
    }

    pub fn poll_at(&self) -> Option<Instant> {
        self.pets.poll_at()
    }

    /// Pet if it is time.
    #[inline(never)] // smaller out of line (measured)
    pub fn poll(&mut self, now: Instant) {
        if self.pets.step(now) {
            self.pet();
        }
    }

    fn pet(&self) {
        if let Err(e) = watchdog_ioctl(crate::sys::fd::borrow(&self.fd), WatchdogRequest::KeepAlive, 0) {
            say(b"watchdog: %", &[E(e)]);
        }
    }

    /// The power sequence begins: the hardware bounds it from here. A driver that refuses
    /// the longer timeout keeps being petted instead: the loop's own bounds end the sequence,
    /// and the old timeout still covers a hang of keel or of reboot(2).
    pub fn bound_shutdown(&mut self, now: Instant, ends_by: Instant) {
        let secs = shutdown_timeout_secs(now, ends_by);
        match watchdog_ioctl(crate::sys::fd::borrow(&self.fd), WatchdogRequest::SetTimeout, secs.min(i32::MAX as u32) as i32) {
            Ok(chosen) => {
                self.pet();
                self.pets.stop();
                say(b"watchdog: reset in % s", &[N(chosen as u64)]);
            }
            Err(e) => say(b"watchdog: % s refused (%): still petting", &[N(secs.into()), E(e)]),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    const T0: Instant = Instant(7_000_000_000);

    #[test]
    fn pets_at_a_third_of_the_timeout_and_only_when_due() {
        let mut p = Pets::new(T0, 30);
        assert_eq!(p.poll_at(), Some(T0.plus_millis(10_000)));
        assert!(!p.step(T0.plus_millis(9_999)));
        assert!(p.step(T0.plus_millis(10_000)));
        assert!(!p.step(T0.plus_millis(10_000)), "once per period");
        // A late wakeup counts the next period from the pet, not from the missed slot.
        assert!(p.step(T0.plus_millis(25_000)));
        assert_eq!(p.poll_at(), Some(T0.plus_millis(35_000)));
        let mut p = Pets::new(T0, 2);
        assert_eq!(p.poll_at(), Some(T0.plus_millis(666)));
        p.stop();
        assert_eq!(p.poll_at(), None);
        assert!(!p.step(Instant(u64::MAX)), "never again");
    }

    #[test]
    fn the_shutdown_timeout_covers_the_whole_sequence_plus_the_grace() {
        assert_eq!(shutdown_timeout_secs(T0, T0.plus_millis(41_000)), 41 + GRACE_SECS);
        assert_eq!(shutdown_timeout_secs(T0, T0.plus_millis(41_001)), 42 + GRACE_SECS, "rounded up");
        assert_eq!(shutdown_timeout_secs(T0, T0), GRACE_SECS);
        assert_eq!(shutdown_timeout_secs(T0, Instant(u64::MAX)), u32::MAX);
    }
}
