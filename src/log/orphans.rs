//! Reaped orphans on the console. PID 1 may adopt thousands at once (a build, a fork bomb;
//! a test reaped 10,000): one console line each would flood a slow console for minutes.
//! Every orphan is a record in the LOGS journal, as before; the console shows an orphan's
//! own `reaped pid N (status)` line when no orphan line was shown in the last second, and
//! otherwise holds it for one summary per second: `reaped 1234 more orphans, the last pid
//! N (status)`. So a quiet system still shows each orphan at once, and a flood costs the
//! console one line a second. What is still held when the power sequence ends is said then.

use crate::clock::Instant;
use crate::reaper::ExitStatus;
use crate::log::say::Part::{I, N};

/// At most one orphan line on the console per this many milliseconds.
pub const QUIET_MS: u64 = 1000;

pub struct Orphans {
    shown: Option<Instant>,
    held: u32,
    last: (i32, ExitStatus),
}

impl Orphans {
    pub const fn new() -> Self {
        Orphans { shown: None, held: 0, last: (0, ExitStatus::Exited(0)) }
    }

    /// One orphan reaped: its line, to the console or to the journal only.
    pub fn reaped(&mut self, pid: i32, status: ExitStatus, now: Instant) {
        let mut line = crate::log::begin();
        let [how, n] = status.parts();
        crate::log::say::fill(&mut line, b"reaped pid % (% %)", &[I(pid.into()), how, n]);
        if self.show(pid, status, now) {
            crate::log::emit(line)
        } else {
            crate::log::keep(&line)
        }
    }

    /// Whether this orphan's line may go to the console now; if not it is held.
    fn show(&mut self, pid: i32, status: ExitStatus, now: Instant) -> bool {
        if self.held == 0 && self.shown.is_none_or(|t| now >= t.plus_millis(QUIET_MS)) {
            self.shown = Some(now);
            return true;
        }
        self.held += 1;
        self.last = (pid, status);
        false
    }

    /// When the held orphans are due on the console.
    pub fn due(&self) -> Option<Instant> {
        self.shown.filter(|_| self.held > 0).map(|t| t.plus_millis(QUIET_MS))
    }

    /// The summary line, if it is due at `now` (or whatever is held, when `now` is None).
    pub fn tick(&mut self, now: Option<Instant>) {
        if let Some((held, (pid, status))) = self.take(now) {
            let [how, n] = status.parts();
            crate::log::say::say(b"reaped % more orphans, the last pid % (% %)", &[N(held.into()), I(pid.into()), how, n]);
        }
    }

    fn take(&mut self, now: Option<Instant>) -> Option<(u32, (i32, ExitStatus))> {
        let due = self.due()?;
        let now = now.unwrap_or(due);
        if now < due {
            return None;
        }
        self.shown = Some(now);
        Some((core::mem::take(&mut self.held), self.last))
    }
}

impl Default for Orphans {
    fn default() -> Self {
        Orphans::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    const T0: Instant = Instant(7_000_000_000);
    const OK: ExitStatus = ExitStatus::Exited(0);

    #[test]
    fn a_lone_orphan_is_shown_at_once_and_a_flood_once_a_second() {
        let mut o = Orphans::new();
        assert!(o.show(10, OK, T0));
        assert_eq!(o.due(), None, "nothing held");
        // 999 more within the second: held.
        for pid in 11..1010 {
            assert!(!o.show(pid, ExitStatus::Signaled(9), T0.plus_millis(1 + (pid as u64 - 11) % 900)));
        }
        assert_eq!(o.due(), Some(T0.plus_millis(QUIET_MS)));
        assert_eq!(o.take(Some(T0.plus_millis(999))), None, "not yet");
        assert_eq!(o.take(Some(T0.plus_millis(1000))), Some((999, (1009, ExitStatus::Signaled(9)))));
        assert_eq!(o.take(Some(T0.plus_millis(5000))), None, "said once");
        // The summary counts as the second's line: the next orphan waits for the next one.
        assert!(!o.show(2000, OK, T0.plus_millis(1500)));
        assert_eq!(o.due(), Some(T0.plus_millis(2000)));
        assert_eq!(o.take(Some(T0.plus_millis(2000))), Some((1, (2000, OK))));
        // A quiet second later, an orphan is shown as itself again.
        assert!(o.show(3000, OK, T0.plus_millis(3000)));
    }

    #[test]
    fn what_is_held_can_be_said_at_once() {
        let mut o = Orphans::new();
        assert_eq!(o.take(None), None);
        assert!(o.show(1, OK, T0));
        assert!(!o.show(2, OK, T0));
        assert_eq!(o.take(None), Some((1, (2, OK))));
        assert_eq!(o.take(None), None);
    }
}
