//! Restart pacing: exponential backoff from `backoff_initial`, doubling per quick failure,
//! capped at `backoff_max`, reset by a run of `stable_after`; after `max_failures` quick
//! failures in a row the service is given up on. Pure, so it is tested on its own.

use super::spec::Spec;

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Backoff {
    /// Quick failures in a row.
    pub failures: u32,
    /// The wait before the next restart.
    pub next_ms: u64,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    RestartIn(u64),
    GiveUp,
}

impl Backoff {
    pub const fn new(spec: &Spec) -> Backoff {
        Backoff { failures: 0, next_ms: spec.backoff_initial_ms }
    }

    /// The service ran for `ran_ms` and must restart: when, or not at all.
    pub fn after_run(&mut self, spec: &Spec, ran_ms: u64) -> Decision {
        if ran_ms >= spec.stable_after_ms {
            *self = Backoff::new(spec);
            return Decision::RestartIn(self.next_ms);
        }
        self.failures += 1;
        if self.failures >= spec.max_failures {
            return Decision::GiveUp;
        }
        let wait = self.next_ms;
        self.next_ms = wait.saturating_mul(2).min(spec.backoff_max_ms);
        Decision::RestartIn(wait)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> Spec<'static> {
        Spec { backoff_initial_ms: 100, backoff_max_ms: 1000, stable_after_ms: 10_000, max_failures: 7, ..crate::services::spec::example() }
    }

    #[test]
    fn doubles_then_caps_then_gives_up() {
        let spec = spec();
        let mut b = Backoff::new(&spec);
        let waits: Vec<Decision> = (0..7).map(|_| b.after_run(&spec, 50)).collect();
        use Decision::*;
        assert_eq!(waits, [RestartIn(100), RestartIn(200), RestartIn(400), RestartIn(800), RestartIn(1000), RestartIn(1000), GiveUp]);
    }

    #[test]
    fn a_stable_run_resets() {
        let spec = spec();
        let mut b = Backoff::new(&spec);
        for _ in 0..4 {
            b.after_run(&spec, 50);
        }
        assert_eq!(b.failures, 4);
        assert_eq!(b.after_run(&spec, 10_000), Decision::RestartIn(100));
        assert_eq!(b.failures, 0);
        assert_eq!(b.after_run(&spec, 9_999), Decision::RestartIn(100));
        assert_eq!(b.after_run(&spec, 9_999), Decision::RestartIn(200));
    }
}
