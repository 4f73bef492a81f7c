//! The boot clock (CLOCK_BOOTTIME): what log stamps, deadlines and the timerfd all use.

/// Nanoseconds since boot.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Instant(pub u64);

pub const NANOS_PER_SEC: u64 = 1_000_000_000;
pub const NANOS_PER_MILLI: u64 = 1_000_000;

impl Instant {
    pub fn now() -> Instant {
        Instant(crate::sys::boottime_nanos())
    }

    pub const fn plus_millis(self, ms: u64) -> Instant {
        Instant(self.0.saturating_add(ms.saturating_mul(NANOS_PER_MILLI)))
    }

    pub const fn millis_since(self, earlier: Instant) -> u64 {
        self.0.saturating_sub(earlier.0) / NANOS_PER_MILLI
    }

    pub fn to_timespec(self) -> rustix::time::Timespec {
        rustix::time::Timespec { tv_sec: (self.0 / NANOS_PER_SEC) as _, tv_nsec: (self.0 % NANOS_PER_SEC) as _ }
    }
}

/// Sleep for whole seconds (used only on paths that have nothing else to do).
pub fn sleep_secs(secs: u32) {
    let mut left = rustix::time::Timespec { tv_sec: secs as _, tv_nsec: 0 };
    while let rustix::thread::NanosleepRelativeResult::Interrupted(rest) = rustix::thread::nanosleep(&left) {
        left = rest;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn now_reads_the_boot_clock() {
        let read = || {
            let ts = rustix::time::clock_gettime(rustix::time::ClockId::Boottime);
            ts.tv_sec as u64 * NANOS_PER_SEC + ts.tv_nsec as u64
        };
        let (before, now, after) = (read(), Instant::now(), read());
        assert!(before <= now.0 && now.0 <= after, "{before} <= {} <= {after}", now.0);
    }

    #[test]
    fn realtime_secs_reads_the_wall_clock() {
        let read = || rustix::time::clock_gettime(rustix::time::ClockId::Realtime).tv_sec as u64;
        let (before, now, after) = (read(), crate::sys::realtime_secs(), read());
        assert!(before > 0 && before <= now && now <= after, "{before} <= {now} <= {after}");
    }
}
