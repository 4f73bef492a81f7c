//! What happens at shutdown, in one place with one deadline:
//! stop services (reverse dependency order; the services issue fills this stage) →
//! SIGTERM + SIGCONT to every process → wait until no child is left or the deadline →
//! SIGKILL the rest → sync → unmount all → sync → reboot(2).
//! The state machine (`Shutdown::step`) is pure; `finish` performs the irreversible end.

use crate::clock::Instant;
use crate::info;
use crate::log::Errno;
use crate::power::PowerCmd;
use linux_raw_sys::general as k;

/// After SIGKILL, how long to wait for the last children to be reaped. A process stuck in
/// uninterruptible sleep never dies; waiting longer would not help it.
pub const KILL_WAIT_MS: u64 = 1000;

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Stage {
    /// Services stop here in reverse dependency order, within the same deadline.
    StopServices,
    /// SIGTERM + SIGCONT sent to all; waiting for the last child or the deadline.
    Terminate,
    /// SIGKILL sent to the rest; a short wait for them to be reaped.
    Kill { until: Instant },
    /// sync, unmount, sync, reboot(2): nothing left to wait for.
    Finish,
}

/// What the loop must do for the sequence to go on.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Action {
    TermAll,
    KillAll,
    Finish,
    /// Nothing until the next event or `poll_at()`.
    Wait,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Shutdown {
    pub cmd: PowerCmd,
    pub started: Instant,
    pub deadline: Instant,
    pub stage: Stage,
}

impl Shutdown {
    pub fn begin(cmd: PowerCmd, now: Instant, timeout_secs: u32) -> Shutdown {
        let deadline = now.plus_millis(timeout_secs as u64 * 1000);
        Shutdown { cmd, started: now, deadline, stage: Stage::StopServices }
    }

    /// A further request while the sequence runs: returns the upgraded command, if any.
    /// The sequence itself never restarts.
    pub fn request(&mut self, cmd: PowerCmd) -> Option<PowerCmd> {
        let upgraded = self.cmd.upgraded_by(cmd)?;
        self.cmd = upgraded;
        Some(upgraded)
    }

    /// Advance given the time, whether any child is left and whether every service is
    /// down; call until it says Wait.
    pub fn step(&mut self, now: Instant, children_left: bool, services_down: bool) -> Action {
        let (stage, action) = match self.stage {
            Stage::StopServices if services_down || now >= self.deadline => (Stage::Terminate, Action::TermAll),
            Stage::Terminate if !children_left => (Stage::Finish, Action::Finish),
            Stage::Terminate if now >= self.deadline => {
                (Stage::Kill { until: now.plus_millis(KILL_WAIT_MS) }, Action::KillAll)
            }
            Stage::Kill { until } if !children_left || now >= until => (Stage::Finish, Action::Finish),
            stage => (stage, Action::Wait),
        };
        self.stage = stage;
        action
    }

    /// When the loop must wake even if nothing happens.
    pub fn poll_at(&self) -> Option<Instant> {
        match self.stage {
            Stage::StopServices | Stage::Terminate => Some(self.deadline),
            Stage::Kill { until } => Some(until),
            Stage::Finish => None,
        }
    }
}

/// Send `signo` to every process but PID 1 (kill(-1)).
pub fn signal_all(signo: u32) {
    // ESRCH just means there was nobody to signal.
    if let Err(e) = crate::sys::kill(-1, signo) {
        if e != rustix::io::Errno::SRCH {
            info!("kill(-1, {}) failed: {}", signo, Errno(e));
        }
    }
}

pub fn term_all() {
    info!("sending SIGTERM to all processes");
    signal_all(k::SIGTERM);
    // Stopped processes cannot act on SIGTERM until they continue.
    signal_all(k::SIGCONT);
}

pub fn kill_all() {
    info!("deadline passed: sending SIGKILL to all processes");
    signal_all(k::SIGKILL);
}

/// The end: sync, unmount (only when keel runs the machine, not a PID namespace whose
/// mounts belong to its runtime), sync, reboot(2). Never returns.
pub fn finish(sd: &Shutdown, owns_mounts: bool) -> ! {
    info!("processes done after {} ms; syncing", Instant::now().millis_since(sd.started));
    rustix::fs::sync();
    if owns_mounts {
        crate::power::unmount::unmount_all();
        rustix::fs::sync();
    } else {
        info!("in a PID namespace: mounts are left to the container runtime");
    }
    power_off_now(sd.cmd)
}

/// reboot(2) with `cmd`; if the kernel refuses, say so and stay alive forever.
pub fn power_off_now(cmd: PowerCmd) -> ! {
    info!("{}", cmd);
    crate::log::console::flush(crate::log::console::FLUSH_MS);
    let err = match rustix::system::reboot(crate::power::reboot_command(cmd)) {
        Ok(()) => rustix::io::Errno::INVAL, // reboot(2) does not return on success
        Err(e) => e,
    };
    info!("reboot(2) {} failed: {}; sleeping forever", cmd, Errno(err));
    crate::log::console::flush(crate::log::console::FLUSH_MS);
    crate::sys::unreachable_loop()
}

#[cfg(test)]
mod tests {
    use super::*;
    const T0: Instant = Instant(5_000_000_000);

    fn at_ms(ms: u64) -> Instant {
        T0.plus_millis(ms)
    }

    #[test]
    fn ends_at_once_when_nothing_is_left() {
        let mut sd = Shutdown::begin(PowerCmd::PowerOff, T0, 10);
        assert_eq!(sd.step(T0, true, true), Action::TermAll);
        assert_eq!(sd.poll_at(), Some(at_ms(10_000)));
        assert_eq!(sd.step(at_ms(1), false, true), Action::Finish);
        assert_eq!(sd.step(at_ms(2), false, true), Action::Wait);
    }

    #[test]
    fn waits_for_children_until_the_deadline_then_kills() {
        let mut sd = Shutdown::begin(PowerCmd::Reboot, T0, 10);
        assert_eq!(sd.step(T0, true, true), Action::TermAll);
        assert_eq!(sd.step(at_ms(9_999), true, true), Action::Wait);
        assert_eq!(sd.step(at_ms(10_000), true, true), Action::KillAll);
        assert_eq!(sd.poll_at(), Some(at_ms(10_000 + KILL_WAIT_MS)));
        assert_eq!(sd.step(at_ms(10_001), true, true), Action::Wait);
        assert_eq!(sd.step(at_ms(10_002), false, true), Action::Finish);
    }

    #[test]
    fn unkillable_children_do_not_hold_the_sequence_forever() {
        let mut sd = Shutdown::begin(PowerCmd::Halt, T0, 0);
        assert_eq!(sd.step(T0, true, true), Action::TermAll);
        assert_eq!(sd.step(T0, true, true), Action::KillAll);
        assert_eq!(sd.step(at_ms(KILL_WAIT_MS - 1), true, true), Action::Wait);
        assert_eq!(sd.step(at_ms(KILL_WAIT_MS), true, true), Action::Finish);
        assert_eq!(sd.poll_at(), None);
    }

    #[test]
    fn services_stop_first_within_the_same_deadline() {
        let mut sd = Shutdown::begin(PowerCmd::PowerOff, T0, 10);
        assert_eq!(sd.step(T0, true, false), Action::Wait, "services are still stopping");
        assert_eq!(sd.poll_at(), Some(at_ms(10_000)));
        assert_eq!(sd.step(at_ms(300), true, true), Action::TermAll);
        // Services that outlive the deadline do not hold the sequence.
        let mut sd = Shutdown::begin(PowerCmd::PowerOff, T0, 1);
        assert_eq!(sd.step(at_ms(1_000), true, false), Action::TermAll);
        assert_eq!(sd.step(at_ms(1_000), true, false), Action::KillAll);
    }

    #[test]
    fn a_second_request_upgrades_halt_only_and_never_restarts() {
        let mut sd = Shutdown::begin(PowerCmd::Halt, T0, 10);
        sd.step(T0, true, true);
        assert_eq!(sd.request(PowerCmd::Reboot), None);
        assert_eq!(sd.request(PowerCmd::PowerOff), Some(PowerCmd::PowerOff));
        assert_eq!(sd.cmd, PowerCmd::PowerOff);
        assert_eq!(sd.request(PowerCmd::Halt), None);
        assert_eq!(sd.cmd, PowerCmd::PowerOff);
        assert_eq!(sd.stage, Stage::Terminate);
        assert_eq!(sd.deadline, at_ms(10_000), "the deadline does not move");
    }
}
