//! What happens at shutdown, in one place:
//! stop services (reverse dependency order) → SIGTERM + SIGCONT to every process → wait
//! until no child is left or the deadline → SIGKILL the rest (src/escalate.rs: TERM → grace
//! → KILL) → the flush (sync, unmount all, sync) in a child process (`flush`) while the loop
//! keeps serving → reboot(2).
//! The flush has its own bounds: it goes on while the page cache drains (Dirty + Writeback
//! falling) or a step completes, up to `keel.sync_timeout`; NO_PROGRESS_MS without progress
//! ends it, and so does a second power request ("now"). `Shutdown::step` is pure: timers
//! are data, `poll_at` tells the loop when to call again.

use crate::clock::Instant;
use crate::escalate::{self, Escalation};
use crate::log::say::{say, Part::{E, N, T}};
use crate::power::PowerCmd;
use linux_raw_sys::general as k;

/// How long the flush may go without progress before keel gives up on the disk. Dirty +
/// Writeback falls in steps of whole requests (2 MB on virtio-blk), and the journal commit
/// after the data does not show in it at all: at 256 KiB/s the figure stands still for 8 s
/// at a time. 10 s of nothing is a stall (so is a disk under ~200 KiB/s with 2 MB requests).
pub const NO_PROGRESS_MS: u64 = 10_000;
/// A request this soon after the first is the same press seen twice (one button is both an
/// ACPI event and an evdev key), not a second request.
pub const SAME_PRESS_MS: u64 = 1_000;
/// How often the console hears what is left to write.
pub const REPORT_EVERY_MS: u64 = 1_000;

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Stage {
    /// Services stop here in reverse dependency order, within the deadline.
    StopServices,
    /// SIGTERM + SIGCONT sent to all; SIGKILL at the deadline.
    Processes(Escalation),
    /// The flush child runs.
    Flush(Flush),
    /// reboot(2) is all that is left.
    Off,
}

/// The flush's timers and what it has seen.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Flush {
    /// The hard cap (`keel.sync_timeout` after the flush began).
    pub cap: Instant,
    /// The last progress: the start, a completed step, or a new low of pending bytes.
    pub progress_at: Instant,
    /// The least Dirty + Writeback seen (KiB).
    pub lowest_kib: u64,
    pub report_at: Instant,
}

/// Why the flush ended.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum End {
    /// The child finished: everything synced and unmounted.
    Flushed,
    /// A second power request: off without waiting.
    Now,
    /// NO_PROGRESS_MS without progress.
    Stalled,
    /// `keel.sync_timeout` passed.
    Cap,
}

impl End {
    /// Why a flush that did not finish was abandoned.
    pub const fn reason(self) -> &'static str {
        match self {
            End::Flushed => "finished",
            End::Now => "a second request",
            End::Stalled => "no progress for 10 s",
            End::Cap => "keel.sync_timeout",
        }
    }
}

const _: () = assert!(NO_PROGRESS_MS == 10_000, "End::reason says 10 s");

/// What the loop must do for the sequence to go on.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Action {
    TermAll,
    KillAll,
    /// Fork the flush child.
    StartFlush,
    /// Tell the console how much is left (KiB).
    Report(u64),
    /// reboot(2), the flush over for this reason.
    PowerOff(End),
    /// Nothing until the next event or `poll_at()`.
    Wait,
}

/// What the loop knows when it calls `step`.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Facts {
    pub now: Instant,
    pub children_left: bool,
    pub services_down: bool,
    /// The flush child has exited.
    pub flushed: bool,
    /// It started a new step since the last call (so the one before is done).
    pub stepped: bool,
    /// Dirty + Writeback (KiB), when /proc/meminfo could be read.
    pub pending_kib: Option<u64>,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Shutdown {
    pub cmd: PowerCmd,
    pub started: Instant,
    pub deadline: Instant,
    pub sync_timeout_ms: u64,
    pub stage: Stage,
    /// A second request came during the flush.
    pub hurry: bool,
}

/// What a further request did.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Reply {
    /// Nothing: the sequence is under way and never restarts.
    UnderWay,
    /// Halt became poweroff.
    Upgraded,
    /// During the flush: stop waiting for the disk (the command possibly upgraded too).
    Now,
}

impl Shutdown {
    pub fn begin(cmd: PowerCmd, now: Instant, timeout_secs: u32, sync_timeout_secs: u32) -> Shutdown {
        let deadline = now.plus_millis(timeout_secs as u64 * 1000);
        let sync_timeout_ms = sync_timeout_secs as u64 * 1000;
        Shutdown { cmd, started: now, deadline, sync_timeout_ms, stage: Stage::StopServices, hurry: false }
    }

    /// A further request while the sequence runs. Halt may become poweroff; during the
    /// flush a request (not the first one seen again) means "now".
    pub fn request(&mut self, cmd: PowerCmd, now: Instant) -> Reply {
        let upgraded = self.cmd.upgraded_by(cmd);
        self.cmd = upgraded.unwrap_or(self.cmd);
        if matches!(self.stage, Stage::Flush(_)) && now >= self.started.plus_millis(SAME_PRESS_MS) {
            self.hurry = true;
            return Reply::Now;
        }
        if upgraded.is_some() { Reply::Upgraded } else { Reply::UnderWay }
    }

    /// Advance given what the loop knows; call until it says Wait.
    pub fn step(&mut self, f: Facts) -> Action {
        let now = f.now;
        let (stage, action) = match self.stage {
            Stage::StopServices if f.services_down || now >= self.deadline => {
                let grace = self.deadline.millis_since(now);
                (Stage::Processes(Escalation::begin(now, grace)), Action::TermAll)
            }
            Stage::Processes(mut e) => match e.step(now, !f.children_left) {
                escalate::Action::Kill => (Stage::Processes(e), Action::KillAll),
                escalate::Action::Done | escalate::Action::GiveUp => {
                    let flush = Flush {
                        cap: now.plus_millis(self.sync_timeout_ms),
                        progress_at: now,
                        lowest_kib: u64::MAX,
                        report_at: now.plus_millis(REPORT_EVERY_MS),
                    };
                    (Stage::Flush(flush), Action::StartFlush)
                }
                escalate::Action::Wait => (Stage::Processes(e), Action::Wait),
            },
            Stage::Flush(_) if f.flushed => (Stage::Off, Action::PowerOff(End::Flushed)),
            Stage::Flush(_) if self.hurry => (Stage::Off, Action::PowerOff(End::Now)),
            Stage::Flush(mut fl) => {
                let pending = f.pending_kib.unwrap_or(u64::MAX);
                if f.stepped || pending < fl.lowest_kib {
                    fl.progress_at = now;
                    fl.lowest_kib = fl.lowest_kib.min(pending);
                }
                if now >= fl.cap {
                    (Stage::Off, Action::PowerOff(End::Cap))
                } else if now >= fl.progress_at.plus_millis(NO_PROGRESS_MS) {
                    (Stage::Off, Action::PowerOff(End::Stalled))
                } else if now >= fl.report_at {
                    // Unreadable meminfo: nothing to say, but the next report is still a
                    // second away (a report_at in the past would spin the loop).
                    fl.report_at = now.plus_millis(REPORT_EVERY_MS);
                    let action = if pending == u64::MAX { Action::Wait } else { Action::Report(pending) };
                    (Stage::Flush(fl), action)
                } else {
                    (Stage::Flush(fl), Action::Wait)
                }
            }
            stage => (stage, Action::Wait),
        };
        self.stage = stage;
        action
    }

    /// The latest the sequence ends by its own bounds: the deadline, the wait after
    /// SIGKILL, then the whole flush cap (what a hardware watchdog must allow it).
    pub fn ends_by(&self) -> Instant {
        self.deadline.plus_millis(escalate::KILL_WAIT_MS + self.sync_timeout_ms)
    }

    /// When the loop must wake even if nothing happens.
    pub fn poll_at(&self) -> Option<Instant> {
        match self.stage {
            Stage::StopServices => Some(self.deadline),
            Stage::Processes(e) => e.poll_at(),
            Stage::Flush(f) => Some(f.cap.min(f.progress_at.plus_millis(NO_PROGRESS_MS)).min(f.report_at)),
            Stage::Off => None,
        }
    }
}

/// Send `signo` to every process but PID 1 (kill(-1)).
pub fn signal_all(signo: u32) {
    // ESRCH just means there was nobody to signal.
    if let Err(e) = crate::sys::kill(-1, signo) {
        if e != rustix::io::Errno::SRCH {
            say(b"kill(-1, %) failed: %", &[N(signo.into()), E(e)]);
        }
    }
}

pub fn term_all() {
    say(b"sending SIGTERM to all processes", &[]);
    signal_all(k::SIGTERM);
    // Stopped processes cannot act on SIGTERM until they continue.
    signal_all(k::SIGCONT);
}

pub fn kill_all() {
    say(b"deadline passed: sending SIGKILL to all processes", &[]);
    signal_all(k::SIGKILL);
}

/// reboot(2) with `cmd`; if the kernel refuses, say so and stay alive forever.
pub fn power_off_now(cmd: PowerCmd) -> ! {
    say(b"%", &[T(cmd.name().as_bytes())]);
    crate::log::console::flush(crate::log::console::FLUSH_MS);
    let err = match rustix::system::reboot(crate::power::reboot_command(cmd)) {
        Ok(()) => rustix::io::Errno::INVAL, // reboot(2) does not return on success
        Err(e) => e,
    };
    say(b"reboot(2) % failed: %; sleeping forever", &[T(cmd.name().as_bytes()), E(err)]);
    crate::log::console::flush(crate::log::console::FLUSH_MS);
    crate::sys::unreachable_loop()
}

#[cfg(test)]
mod tests {
    use super::*;
    use escalate::KILL_WAIT_MS;
    const T0: Instant = Instant(5_000_000_000);

    fn at_ms(ms: u64) -> Instant {
        T0.plus_millis(ms)
    }

    /// Before the flush: the time, whether children are left, whether services are down.
    fn facts(ms: u64, children_left: bool, services_down: bool) -> Facts {
        Facts { now: at_ms(ms), children_left, services_down, flushed: false, stepped: false, pending_kib: None }
    }

    /// During the flush: the time and Dirty + Writeback.
    fn flushing(ms: u64, pending_kib: u64) -> Facts {
        Facts { pending_kib: Some(pending_kib), ..facts(ms, true, true) }
    }

    /// A sequence whose processes are gone at T0 + `ms`: the flush starts then.
    fn in_flush(ms: u64, sync_timeout_secs: u32) -> Shutdown {
        let mut sd = Shutdown::begin(PowerCmd::PowerOff, T0, 10, sync_timeout_secs);
        assert_eq!(sd.step(facts(0, true, true)), Action::TermAll);
        assert_eq!(sd.step(facts(ms, false, true)), Action::StartFlush);
        sd
    }

    #[test]
    fn ends_at_once_when_nothing_is_left() {
        let mut sd = Shutdown::begin(PowerCmd::PowerOff, T0, 10, 30);
        assert_eq!(sd.step(facts(0, true, true)), Action::TermAll);
        assert_eq!(sd.poll_at(), Some(at_ms(10_000)));
        assert_eq!(sd.step(facts(1, false, true)), Action::StartFlush);
        assert_eq!(sd.step(Facts { flushed: true, ..flushing(2, 0) }), Action::PowerOff(End::Flushed));
        assert_eq!(sd.poll_at(), None);
    }

    #[test]
    fn waits_for_children_until_the_deadline_then_kills() {
        let mut sd = Shutdown::begin(PowerCmd::Reboot, T0, 10, 30);
        assert_eq!(sd.step(facts(0, true, true)), Action::TermAll);
        assert_eq!(sd.step(facts(9_999, true, true)), Action::Wait);
        assert_eq!(sd.step(facts(10_000, true, true)), Action::KillAll);
        assert_eq!(sd.poll_at(), Some(at_ms(10_000 + KILL_WAIT_MS)));
        assert_eq!(sd.step(facts(10_001, true, true)), Action::Wait);
        assert_eq!(sd.step(facts(10_002, false, true)), Action::StartFlush);
    }

    #[test]
    fn unkillable_children_do_not_hold_the_sequence_forever() {
        let mut sd = Shutdown::begin(PowerCmd::Halt, T0, 0, 30);
        assert_eq!(sd.step(facts(0, true, true)), Action::TermAll);
        assert_eq!(sd.step(facts(0, true, true)), Action::KillAll);
        assert_eq!(sd.step(facts(KILL_WAIT_MS - 1, true, true)), Action::Wait);
        assert_eq!(sd.step(facts(KILL_WAIT_MS, true, true)), Action::StartFlush);
    }

    #[test]
    fn services_stop_first_within_the_same_deadline() {
        let mut sd = Shutdown::begin(PowerCmd::PowerOff, T0, 10, 30);
        assert_eq!(sd.step(facts(0, true, false)), Action::Wait, "services are still stopping");
        assert_eq!(sd.poll_at(), Some(at_ms(10_000)));
        assert_eq!(sd.step(facts(300, true, true)), Action::TermAll);
        assert_eq!(sd.poll_at(), Some(at_ms(10_000)), "the processes get what is left of the deadline");
        // Services that outlive the deadline do not hold the sequence.
        let mut sd = Shutdown::begin(PowerCmd::PowerOff, T0, 1, 30);
        assert_eq!(sd.step(facts(1_000, true, false)), Action::TermAll);
        assert_eq!(sd.step(facts(1_000, true, false)), Action::KillAll);
    }

    #[test]
    fn a_second_request_before_the_flush_upgrades_halt_only_and_never_restarts() {
        let mut sd = Shutdown::begin(PowerCmd::Halt, T0, 10, 30);
        sd.step(facts(0, true, true));
        assert_eq!(sd.request(PowerCmd::Reboot, at_ms(1)), Reply::UnderWay);
        assert_eq!(sd.request(PowerCmd::PowerOff, at_ms(2)), Reply::Upgraded);
        assert_eq!(sd.cmd, PowerCmd::PowerOff);
        assert_eq!(sd.request(PowerCmd::Halt, at_ms(3_000)), Reply::UnderWay);
        assert_eq!(sd.cmd, PowerCmd::PowerOff);
        assert!(!sd.hurry, "before the flush a request does not cut the grace short");
        assert!(matches!(sd.stage, Stage::Processes(_)));
        assert_eq!(sd.deadline, at_ms(10_000), "the deadline does not move");
    }

    #[test]
    fn progress_keeps_the_flush_going_past_the_shutdown_deadline() {
        let mut sd = in_flush(100, 30);
        // 20 MB draining at 256 KiB/s: 80 s would be needed; the cap (30 s) ends it, but
        // every second of it is progress.
        let mut kib = 20_000;
        for s in 1..30 {
            kib -= 256;
            assert_eq!(sd.step(flushing(100 + s * 1000, kib)), Action::Report(kib), "second {s}");
            assert_eq!(sd.step(flushing(100 + s * 1000, kib)), Action::Wait);
        }
        assert_eq!(sd.step(flushing(100 + 30_000, kib - 256)), Action::PowerOff(End::Cap));
    }

    #[test]
    fn the_report_comes_at_most_every_second() {
        let mut sd = in_flush(0, 30);
        assert_eq!(sd.step(flushing(10, 900)), Action::Wait, "a flush that ends within a second says nothing");
        assert_eq!(sd.poll_at(), Some(at_ms(REPORT_EVERY_MS)));
        assert_eq!(sd.step(flushing(999, 800)), Action::Wait);
        assert_eq!(sd.step(flushing(1_000, 700)), Action::Report(700));
        assert_eq!(sd.step(flushing(1_500, 600)), Action::Wait);
        assert_eq!(sd.step(flushing(2_000, 500)), Action::Report(500));
        // meminfo unreadable: no report, the timers still run, and none is in the past.
        assert_eq!(sd.step(Facts { pending_kib: None, ..flushing(3_000, 0) }), Action::Wait);
        assert_eq!(sd.poll_at(), Some(at_ms(4_000)));
    }

    #[test]
    fn no_progress_gives_up_after_the_bound() {
        let mut sd = in_flush(0, 30);
        assert_eq!(sd.step(flushing(0, 5_000)), Action::Wait);
        assert_eq!(sd.step(flushing(1_000, 4_000)), Action::Report(4_000));
        // Stuck at 4000 KiB (or worse: the figure rising is no progress either).
        for ms in (2..=10).map(|s| s * 1_000) {
            assert_eq!(sd.step(flushing(ms, 4_000 + ms)), Action::Report(4_000 + ms));
        }
        assert_eq!(sd.poll_at(), Some(at_ms(1_000 + NO_PROGRESS_MS)));
        assert_eq!(sd.step(flushing(1_000 + NO_PROGRESS_MS - 1, 4_000)), Action::Wait);
        assert_eq!(sd.step(flushing(1_000 + NO_PROGRESS_MS, 4_000)), Action::PowerOff(End::Stalled));
        assert_eq!(sd.stage, Stage::Off);
    }

    #[test]
    fn a_completed_step_is_progress_even_with_nothing_dirty() {
        // An unmount that writes its journal shows no Dirty pages; the child's step report
        // (the next mount begun) is what tells it apart from a stall.
        let mut sd = in_flush(0, 30);
        assert_eq!(sd.step(flushing(0, 0)), Action::Wait);
        assert_eq!(sd.step(Facts { stepped: true, ..flushing(4_900, 0) }), Action::Report(0));
        assert_eq!(sd.step(flushing(4_900 + NO_PROGRESS_MS - 1, 0)), Action::Report(0));
        assert_eq!(sd.step(flushing(4_900 + NO_PROGRESS_MS, 0)), Action::PowerOff(End::Stalled));
    }

    #[test]
    fn the_cap_ends_even_a_progressing_flush() {
        let mut sd = in_flush(0, 3);
        assert_eq!(sd.poll_at(), Some(at_ms(REPORT_EVERY_MS)));
        assert_eq!(sd.step(flushing(2_500, 100)), Action::Report(100));
        assert_eq!(sd.poll_at(), Some(at_ms(3_000)), "the cap comes before the next report");
        assert_eq!(sd.step(Facts { stepped: true, ..flushing(3_000, 50) }), Action::PowerOff(End::Cap));
        // sync_timeout=0: the flush is not waited for at all (but still started).
        let mut sd = in_flush(0, 0);
        assert_eq!(sd.step(flushing(0, 100)), Action::PowerOff(End::Cap));
    }

    #[test]
    fn a_second_request_during_the_flush_means_now() {
        let mut sd = in_flush(0, 30);
        assert_eq!(sd.step(flushing(1_000, 4_000)), Action::Report(4_000));
        assert_eq!(sd.request(PowerCmd::PowerOff, at_ms(1_000)), Reply::Now);
        assert_eq!(sd.step(flushing(1_001, 3_000)), Action::PowerOff(End::Now));
        // Halt, then a press during the flush: upgraded and at once.
        let mut sd = Shutdown::begin(PowerCmd::Halt, T0, 10, 30);
        sd.step(facts(0, true, true));
        sd.step(facts(1, false, true));
        assert_eq!(sd.request(PowerCmd::PowerOff, at_ms(SAME_PRESS_MS)), Reply::Now);
        assert_eq!((sd.cmd, sd.step(flushing(2, 1))), (PowerCmd::PowerOff, Action::PowerOff(End::Now)));
    }

    #[test]
    fn one_press_seen_twice_is_not_a_second_request() {
        // Nothing to stop: the flush starts at once, and the same press arrives again as the
        // other kind of event (ACPI after evdev) a moment later.
        let mut sd = in_flush(0, 30);
        assert_eq!(sd.request(PowerCmd::PowerOff, at_ms(1)), Reply::UnderWay);
        assert_eq!(sd.request(PowerCmd::PowerOff, at_ms(SAME_PRESS_MS - 1)), Reply::UnderWay);
        assert!(!sd.hurry);
        assert_eq!(sd.step(flushing(2, 100)), Action::Wait);
    }

    #[test]
    fn ends_by_bounds_the_slowest_sequence() {
        // Services that never stop, processes that never die, a flush that always progresses:
        // each stage takes all it may, and the sequence still ends at ends_by().
        let mut sd = Shutdown::begin(PowerCmd::PowerOff, T0, 10, 30);
        assert_eq!(sd.ends_by(), at_ms(10_000 + KILL_WAIT_MS + 30_000));
        let mut ms = 0;
        for _ in 0..100 {
            if let Action::PowerOff(end) = sd.step(Facts { stepped: true, ..facts(ms, true, false) }) {
                assert_eq!((end, at_ms(ms)), (End::Cap, sd.ends_by()));
                return;
            }
            ms = sd.poll_at().unwrap().millis_since(T0);
        }
        panic!("no end after 100 steps: {sd:?}");
    }

    #[test]
    fn a_finished_flush_is_final() {
        // Finished counts even when a request or the cap arrive at the same moment: what was
        // synced and unmounted is not reported as abandoned.
        let mut sd = in_flush(0, 1);
        sd.request(PowerCmd::PowerOff, at_ms(4_000));
        assert_eq!(sd.step(Facts { flushed: true, ..flushing(5_000, 0) }), Action::PowerOff(End::Flushed));
        assert_eq!(sd.stage, Stage::Off);
        assert_eq!(sd.step(Facts { flushed: true, ..flushing(5_001, 0) }), Action::Wait, "nothing is done twice");
        assert_eq!(sd.step(facts(5_002, false, true)), Action::Wait);
        assert_eq!(sd.poll_at(), None);
    }
}
