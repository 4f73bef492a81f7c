//! The end of the child, in order: it exits → every process left after it gets SIGTERM and
//! SIGCONT → `KEEL_GRACE` → SIGKILL, repeated on each wake for any forked meanwhile → keel
//! exits with the child's code once nothing is left, or KILL_WAIT_MS after SIGKILL (what is
//! left then is stuck). The TERM → grace → KILL steps are the shared `escalate` piece; this
//! adds what is container mode's own: the child's code and when the sequence starts. Pure.

use super::args::ExitCodes;
use crate::clock::Instant;
use crate::escalate::{self, Escalation};
use crate::reaper::ExitStatus;
use rustix::io::Errno;

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Action {
    Wait,
    /// SIGTERM (and SIGCONT) to every process left.
    TermRest,
    /// SIGKILL to every process left; repeated on each wake, for any forked meanwhile.
    KillRest,
    Exit(i32),
}

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Lifecycle {
    /// The child's exit code, once it is reaped.
    pub code: Option<i32>,
    /// The end of the processes left, once it began.
    end: Option<Escalation>,
    grace_ms: u64,
}

impl Lifecycle {
    pub fn new(grace_secs: u32) -> Lifecycle {
        Lifecycle { code: None, end: None, grace_ms: grace_secs as u64 * 1000 }
    }

    /// Only the first exit counts: the child's pid may be reused by a later orphan.
    pub fn child_exited(&mut self, code: i32) {
        self.code.get_or_insert(code);
    }

    /// One step per loop pass, after reaping.
    pub fn step(&mut self, now: Instant, children_left: bool) -> Action {
        let Some(code) = self.code else { return Action::Wait };
        if !children_left {
            return Action::Exit(code);
        }
        let Some(end) = &mut self.end else {
            self.end = Some(Escalation::begin(now, self.grace_ms));
            return Action::TermRest;
        };
        match end.step(now, false) {
            escalate::Action::Kill => Action::KillRest,
            escalate::Action::Wait if end.killed() => Action::KillRest,
            escalate::Action::Wait if end.poll_at().is_some() => Action::Wait,
            // Given up (or over): what is left is stuck; keel does not wait forever.
            _ => Action::Exit(code),
        }
    }

    /// No wakeups while the child runs.
    pub fn poll_at(&self) -> Option<Instant> {
        self.end.and_then(|end| end.poll_at())
    }
}

/// The code keel exits with for the child's end: its exit code, or 128+N for signal N;
/// then `-e` maps to 0.
pub fn exit_code(status: ExitStatus, success: &ExitCodes) -> i32 {
    let code = match status {
        ExitStatus::Exited(code) => code & 0xff,
        ExitStatus::Signaled(signo) => 128 + signo,
    };
    if success.contains(code) {
        0
    } else {
        code
    }
}

/// The exit code for a failed exec, as shells have it: 127 not found, 126 found but not runnable.
pub fn exec_failure_code(e: Errno) -> i32 {
    if e == Errno::NOENT || e == Errno::NOTDIR {
        127
    } else {
        126
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes() {
        let mut success = ExitCodes::default();
        assert_eq!(exit_code(ExitStatus::Exited(3), &success), 3);
        assert_eq!(exit_code(ExitStatus::Signaled(15), &success), 143);
        success.insert(143);
        success.insert(3);
        assert_eq!(exit_code(ExitStatus::Exited(3), &success), 0);
        assert_eq!(exit_code(ExitStatus::Signaled(15), &success), 0);
        assert_eq!(exit_code(ExitStatus::Exited(4), &success), 4);
        assert!(!success.contains(-1) && !success.contains(256 + 3));
        assert_eq!(exec_failure_code(Errno::NOENT), 127);
        assert_eq!(exec_failure_code(Errno::NOTDIR), 127);
        assert_eq!(exec_failure_code(Errno::ACCESS), 126);
        assert_eq!(exec_failure_code(Errno::NOEXEC), 126);
    }

    #[test]
    fn the_end_sequence() {
        let t = |s: u64| Instant(s * 1_000_000_000);
        let mut life = Lifecycle::new(5);
        assert_eq!(life.step(t(1), true), Action::Wait, "child running");
        assert_eq!(life.poll_at(), None, "no wakeups while the child runs");
        life.child_exited(3);
        life.child_exited(9); // a later orphan with the same pid
        assert_eq!(life.step(t(2), true), Action::TermRest);
        assert_eq!(life.poll_at(), Some(t(7)));
        assert_eq!(life.step(t(3), true), Action::Wait);
        assert_eq!(life.step(t(7), true), Action::KillRest);
        assert_eq!(life.step(t(7), true), Action::KillRest, "again on each wake");
        assert_eq!(life.step(t(8), true), Action::Exit(3), "after escalate::KILL_WAIT_MS keel gives up");

        let mut life = Lifecycle::new(5);
        life.child_exited(0);
        assert_eq!(life.step(t(1), false), Action::Exit(0), "no orphans: exit at once");

        let mut life = Lifecycle::new(5);
        life.child_exited(1);
        assert_eq!(life.step(t(1), true), Action::TermRest);
        assert_eq!(life.step(t(2), false), Action::Exit(1), "orphans gone within the grace");

        let mut life = Lifecycle::new(0);
        life.child_exited(1);
        assert_eq!(life.step(t(1), true), Action::TermRest);
        assert_eq!(life.step(t(1), true), Action::KillRest, "KEEL_GRACE=0: SIGKILL next");
    }
}
