//! The one way keel ends processes: a polite signal (the caller sends it, with SIGCONT so a
//! stopped process can act on it), a grace, SIGKILL, then a short wait for the reaper, after
//! which what is left is stuck (uninterruptible sleep) and waiting longer would not help.
//! Used by a service stop, the power sequence and container mode, each with its own grace
//! and its own idea of "gone". Pure: timers are data and the caller signals.

use crate::clock::Instant;

/// After SIGKILL, how long to wait for the last processes to be reaped.
pub const KILL_WAIT_MS: u64 = 1000;

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Escalation {
    /// The polite signal was sent; SIGKILL at `kill_at`.
    Grace { kill_at: Instant },
    /// SIGKILL was sent; give up waiting at `give_up_at`.
    Killed { give_up_at: Instant },
    /// Everything is gone, or what is left is stuck: nothing more to do.
    Over,
}

/// What the caller must do after `step`.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Nothing until the next event or `poll_at()`.
    Wait,
    /// The grace ran out: send SIGKILL.
    Kill,
    /// Nothing is left: done.
    Done,
    /// SIGKILL did not end everything within KILL_WAIT_MS: go on without it.
    GiveUp,
}

impl Escalation {
    /// The polite signal has just been sent; SIGKILL follows `grace_ms` later (0: at once).
    pub const fn begin(now: Instant, grace_ms: u64) -> Escalation {
        Escalation::Grace { kill_at: now.plus_millis(grace_ms) }
    }

    /// SIGKILL no later than `at` (a global deadline that cuts a longer grace short).
    pub fn cap(self, at: Instant) -> Escalation {
        match self {
            Escalation::Grace { kill_at } if at < kill_at => Escalation::Grace { kill_at: at },
            other => other,
        }
    }

    /// Advance given the time and whether anything is left to end.
    #[inline(never)] // smaller out of line (measured)
    pub fn step(&mut self, now: Instant, gone: bool) -> Action {
        let (next, action) = match *self {
            Escalation::Over => (Escalation::Over, Action::Wait),
            _ if gone => (Escalation::Over, Action::Done),
            Escalation::Grace { kill_at } if now >= kill_at => {
                (Escalation::Killed { give_up_at: now.plus_millis(KILL_WAIT_MS) }, Action::Kill)
            }
            Escalation::Killed { give_up_at } if now >= give_up_at => (Escalation::Over, Action::GiveUp),
            waiting => (waiting, Action::Wait),
        };
        *self = next;
        action
    }

    /// When the caller must call `step` even if nothing happens.
    pub fn poll_at(&self) -> Option<Instant> {
        match *self {
            Escalation::Grace { kill_at } => Some(kill_at),
            Escalation::Killed { give_up_at } => Some(give_up_at),
            Escalation::Over => None,
        }
    }

    /// SIGKILL has been sent (container mode repeats it on each wake, for late forks).
    pub fn killed(&self) -> bool {
        matches!(self, Escalation::Killed { .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    const T0: Instant = Instant(7_000_000_000);

    fn at(ms: u64) -> Instant {
        T0.plus_millis(ms)
    }

    #[test]
    fn grace_then_kill_then_give_up() {
        let mut e = Escalation::begin(T0, 500);
        assert_eq!(e.poll_at(), Some(at(500)));
        assert_eq!(e.step(at(499), false), Action::Wait);
        assert_eq!(e.step(at(500), false), Action::Kill);
        assert!(e.killed());
        assert_eq!(e.poll_at(), Some(at(500 + KILL_WAIT_MS)));
        assert_eq!(e.step(at(501), false), Action::Wait);
        assert_eq!(e.step(at(500 + KILL_WAIT_MS), false), Action::GiveUp);
        assert_eq!((e, e.poll_at()), (Escalation::Over, None));
        assert_eq!(e.step(at(9_999), false), Action::Wait, "over stays over");
    }

    #[test]
    fn ends_as_soon_as_nothing_is_left() {
        let mut e = Escalation::begin(T0, 500);
        assert_eq!(e.step(at(10), true), Action::Done);
        assert_eq!(e, Escalation::Over);
        let mut e = Escalation::begin(T0, 0);
        assert_eq!(e.step(T0, false), Action::Kill, "no grace: SIGKILL at once");
        assert_eq!(e.step(at(1), true), Action::Done);
    }

    #[test]
    fn a_deadline_cuts_the_grace_short_never_longer() {
        assert_eq!(Escalation::begin(T0, 5_000).cap(at(1_000)).poll_at(), Some(at(1_000)));
        assert_eq!(Escalation::begin(T0, 500).cap(at(1_000)).poll_at(), Some(at(500)));
        let killed = Escalation::Killed { give_up_at: at(2) };
        assert_eq!(killed.cap(at(1)), killed);
    }
}
