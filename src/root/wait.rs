//! The finder's timing, pure: an optional delay first (`rootdelay=`), then a search that
//! ends at a deadline. Block devices are looked at once when the search begins and once
//! more at the deadline (so an event missed in between costs time, not the boot); between
//! the two, uevents bring each new device. No polling: the loop's timer is armed to `at`.

use crate::clock::{Instant, NANOS_PER_SEC};

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Wait {
    /// Nothing is looked at before `until`; the search ends at `deadline`.
    Delay { until: Instant, deadline: Instant },
    /// Looking: uevents matter until `deadline`.
    Search { deadline: Instant },
    /// Found, given up, or not looking at all.
    Over,
}

/// What time asks of the finder.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Tick {
    Nothing,
    /// Look at every block device (the search begins).
    Scan,
    /// The deadline: look a last time; if still nothing, give up.
    LastScan,
}

fn plus_secs(t: Instant, secs: u32) -> Instant {
    Instant(t.0.saturating_add(u64::from(secs) * NANOS_PER_SEC))
}

impl Wait {
    pub fn new(now: Instant, delay_secs: u32, wait_secs: u32) -> Wait {
        let until = plus_secs(now, delay_secs);
        Wait::Delay { until, deadline: plus_secs(until, wait_secs) }
    }

    pub fn tick(&mut self, now: Instant) -> Tick {
        match *self {
            Wait::Delay { until, deadline } if now >= until => {
                *self = Wait::Search { deadline };
                Tick::Scan
            }
            Wait::Search { deadline } if now >= deadline => {
                *self = Wait::Over;
                Tick::LastScan
            }
            _ => Tick::Nothing,
        }
    }

    /// When `tick` has something to say next.
    pub fn at(&self) -> Option<Instant> {
        match *self {
            Wait::Delay { until, .. } => Some(until),
            Wait::Search { deadline } => Some(deadline),
            Wait::Over => None,
        }
    }

    /// Whether a new device should be looked at now.
    pub fn searching(&self) -> bool {
        matches!(self, Wait::Search { .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = NANOS_PER_SEC;

    #[test]
    fn search_at_once_then_a_last_look_at_the_deadline() {
        let t0 = Instant(7 * S);
        let mut w = Wait::new(t0, 0, 5);
        assert!(!w.searching());
        assert_eq!(w.at(), Some(t0), "due now: the first pass scans");
        assert_eq!(w.tick(t0), Tick::Scan);
        assert!(w.searching());
        assert_eq!(w.at(), Some(Instant(12 * S)));
        assert_eq!(w.tick(Instant(12 * S - 1)), Tick::Nothing);
        assert_eq!(w.tick(Instant(12 * S)), Tick::LastScan);
        assert_eq!((w, w.at(), w.searching()), (Wait::Over, None, false));
        assert_eq!(w.tick(Instant(99 * S)), Tick::Nothing, "over is over");
    }

    #[test]
    fn a_delay_comes_first_and_the_wait_counts_after_it() {
        let mut w = Wait::new(Instant(0), 3, 2);
        assert_eq!(w.tick(Instant(S)), Tick::Nothing);
        assert!(!w.searching(), "no device is looked at during rootdelay");
        assert_eq!(w.at(), Some(Instant(3 * S)));
        assert_eq!(w.tick(Instant(3 * S)), Tick::Scan);
        assert_eq!(w.at(), Some(Instant(5 * S)));
        assert_eq!(w.tick(Instant(5 * S)), Tick::LastScan);
    }

    #[test]
    fn no_wait_is_one_scan_then_the_last_at_once() {
        let mut w = Wait::new(Instant(S), 0, 0);
        assert_eq!(w.tick(Instant(S)), Tick::Scan);
        assert_eq!(w.tick(Instant(S)), Tick::LastScan);
    }

    #[test]
    fn huge_values_saturate() {
        let mut w = Wait::new(Instant(u64::MAX - 1), u32::MAX, u32::MAX);
        assert_eq!(w.at(), Some(Instant(u64::MAX)));
        assert_eq!(w.tick(Instant(u64::MAX)), Tick::Scan);
    }
}
