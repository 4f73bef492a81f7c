//! keel as PID 1 of a PID namespace: signals, reaping, the power sequence, panics.
mod common;

use common::ns::{Pid1, SIGHUP, SIGINT};
use std::time::{Duration, Instant};

const SIGUSR1: i32 = 10;
const SIGUSR2: i32 = 12;
const SIGTERM: i32 = 15;
const SIGPWR: i32 = 30;
const SECOND: Duration = Duration::from_secs(1);

/// The signal that reboot(2) uses to end a PID namespace for each command.
fn ending_signal(cmd: &str) -> i32 {
    if cmd == "reboot" { SIGHUP } else { SIGINT }
}

#[test]
fn every_signal_of_the_table_issues_its_reboot_command() {
    let table = [
        (SIGTERM, "reboot"),
        (SIGUSR1, "halt"),
        (SIGUSR2, "poweroff"),
        (SIGINT, "reboot"),
        (SIGPWR, "poweroff"),
        (37, "halt"),     // SIGRTMIN+3
        (38, "poweroff"), // SIGRTMIN+4
        (39, "reboot"),   // SIGRTMIN+5
    ];
    for (signo, cmd) in table {
        let mut ns = Pid1::start(&common::keel_bin(), &[]);
        ns.signal(signo);
        let ended_by = ns.wait_end(5 * SECOND);
        let log = ns.log();
        assert_eq!(ended_by, Some(ending_signal(cmd)), "signal {signo}; log:\n{log}");
        assert!(log.contains(&format!("keel: {cmd} requested (signal {signo} ")), "signal {signo}; log:\n{log}");
        assert!(log.contains(&format!("keel: {cmd}\n")), "signal {signo}; log:\n{log}");
    }
}

#[test]
fn poweroff_as_reboot_restarts_and_halt_stays_halt() {
    // Firecracker's x86 VMM ends only on a guest reboot: keel.poweroff=reboot.
    let mut ns = Pid1::start(&common::keel_bin(), &["keel.poweroff=reboot"]);
    ns.signal(SIGUSR2);
    let ended_by = ns.wait_end(5 * SECOND);
    let log = ns.log();
    assert_eq!(ended_by, Some(SIGHUP), "reboot(2) RESTART, not POWER_OFF; log:\n{log}");
    assert!(log.contains("keel: poweroff requested (signal 12 "), "log:\n{log}");
    let said = log.find("keel: poweroff as reboot (keel.poweroff=reboot)\n");
    assert!(said.is_some_and(|at| log[at..].contains("keel: reboot\n")), "log:\n{log}");
    let mut ns = Pid1::start(&common::keel_bin(), &["keel.poweroff=reboot"]);
    ns.signal(SIGUSR1);
    assert_eq!(ns.wait_end(5 * SECOND), Some(SIGINT), "log:\n{}", ns.log());
    assert!(!ns.log().contains("as reboot"), "log:\n{}", ns.log());
    // The default: a poweroff is a poweroff.
    let mut ns = Pid1::start(&common::keel_bin(), &["keel.poweroff=poweroff"]);
    ns.signal(SIGUSR2);
    assert_eq!(ns.wait_end(5 * SECOND), Some(SIGINT), "log:\n{}", ns.log());
}

#[test]
fn signals_outside_the_table_do_not_stop_pid1() {
    let mut ns = Pid1::start(&common::keel_bin(), &[]);
    ns.signal(1); // SIGHUP: not a power request
    ns.signal(28); // SIGWINCH
    std::thread::sleep(Duration::from_millis(200));
    assert!(ns.is_running(), "log:\n{}", ns.log());
    ns.signal(SIGUSR2);
    assert_eq!(ns.wait_end(5 * SECOND), Some(SIGINT));
}

#[test]
fn thousand_double_forked_orphans_leave_no_zombie() {
    let mut ns = Pid1::start(&common::keel_bin(), &[]);
    // Each `( … & )` subshell exits at once, so its child is adopted by PID 1: some exit
    // before the reparenting (adopted as zombies), some after.
    ns.sh("i=0; while [ $i -lt 1000 ]; do ( if [ $((i % 2)) = 0 ]; then exit 3; else sleep 0.05; fi & ); i=$((i+1)); done");
    let until = Instant::now() + 20 * SECOND;
    while !ns.children().is_empty() {
        assert!(Instant::now() < until, "children left: {:?}", ns.children());
        std::thread::sleep(Duration::from_millis(20));
    }
    // The console has an orphan's own line when none was shown in the last second, and
    // else one `reaped N more orphans` line a second (src/log/orphans.rs): the last ones
    // are counted up to a second after they were reaped.
    let counts = |log: &str| {
        let shown = log.matches("keel: reaped pid ").count();
        let summarized: usize = log
            .lines()
            .filter_map(|l| l.split_once("keel: reaped ")?.1.split_once(" more orphans"))
            .map(|(n, _)| n.parse::<usize>().expect("a count"))
            .sum();
        (shown, summarized)
    };
    let until = Instant::now() + 3 * SECOND;
    let (log, shown, summarized) = loop {
        let log = ns.log();
        let (shown, summarized) = counts(&log);
        if shown + summarized >= 1000 || Instant::now() > until {
            break (log, shown, summarized);
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(shown + summarized >= 1000, "only {shown} + {summarized} reaped; log:\n{log}");
    assert!(summarized > 0 && shown < 100, "a flood is summarized: {shown} lines of their own; log:\n{log}");
    assert!(log.contains("(exit 3)"), "exit codes are reported");
    ns.signal(SIGUSR2);
    assert_eq!(ns.wait_end(5 * SECOND), Some(SIGINT));
}

#[test]
fn the_sequence_ends_as_soon_as_nothing_is_left() {
    let mut ns = Pid1::start(&common::keel_bin(), &["keel.shutdown_timeout=30"]);
    // A well-behaved orphan: dies on SIGTERM.
    ns.sh("(exec sleep 60) &");
    ns.wait_adopted("sleep", 0);
    assert_eq!(ns.children().len(), 1);
    let asked = Instant::now();
    ns.signal(SIGTERM);
    assert_eq!(ns.wait_end(10 * SECOND), Some(SIGHUP));
    assert!(asked.elapsed() < 5 * SECOND, "took {:?} with a 30 s deadline", asked.elapsed());
    let log = ns.log();
    assert!(log.contains("(signal 15)"), "the orphan got SIGTERM; log:\n{log}");
    assert!(!log.contains("SIGKILL"), "log:\n{log}");
}

#[test]
fn a_process_ignoring_sigterm_is_killed_at_the_deadline() {
    let mut ns = Pid1::start(&common::keel_bin(), &["keel.shutdown_timeout=1"]);
    ns.sh("(trap '' TERM; exec sleep 60) &");
    ns.wait_adopted("sleep", SIGTERM);
    let asked = Instant::now();
    ns.signal(SIGUSR2);
    assert_eq!(ns.wait_end(10 * SECOND), Some(SIGINT));
    let took = asked.elapsed();
    let log = ns.log();
    assert!(took >= SECOND, "ended after {took:?}, before the 1 s deadline; log:\n{log}");
    assert!(took < 4 * SECOND, "ended after {took:?}; log:\n{log}");
    assert!(log.contains("deadline passed: sending SIGKILL"), "log:\n{log}");
    assert!(log.contains("(signal 9)"), "log:\n{log}");
}

#[test]
fn a_second_request_is_logged_and_only_halt_upgrades() {
    // halt, then reboot: stays halt (SIGINT), and says so.
    let mut ns = Pid1::start(&common::keel_bin(), &["keel.shutdown_timeout=2"]);
    ns.sh("(trap '' TERM; exec sleep 60) &");
    ns.wait_adopted("sleep", SIGTERM);
    ns.signal(SIGUSR1);
    ns.wait_for("halt requested", SECOND);
    ns.signal(SIGTERM);
    ns.wait_for("during halt: already under way", SECOND);
    assert!(ns.log().contains("reboot requested (signal 15 from pid"), "log:\n{}", ns.log());
    assert_eq!(ns.wait_end(10 * SECOND), Some(SIGINT));
    assert!(ns.log().contains("keel: halt\n"), "log:\n{}", ns.log());
    assert_eq!(ns.log().matches("sending SIGTERM").count(), 1, "the sequence never restarts");

    // halt, then poweroff: upgraded.
    let mut ns = Pid1::start(&common::keel_bin(), &["keel.shutdown_timeout=2"]);
    ns.sh("(trap '' TERM; exec sleep 60) &");
    ns.wait_adopted("sleep", SIGTERM);
    ns.signal(SIGUSR1);
    ns.wait_for("halt requested", SECOND);
    ns.signal(SIGUSR2);
    ns.wait_for("during shutdown: now poweroff", SECOND);
    assert!(ns.log().contains("poweroff requested (signal 12 from pid"), "log:\n{}", ns.log());
    assert_eq!(ns.wait_end(10 * SECOND), Some(SIGINT));
    assert!(ns.log().contains("keel: poweroff\n"), "log:\n{}", ns.log());
}

#[test]
fn a_panic_waits_for_the_policy_and_pid1_does_not_exit_before() {
    let mut ns = Pid1::start(&common::keel_test_bin(), &["keel.test_panic", "keel.panic=reboot:2"]);
    ns.wait_for("keel: panic: keel.test_panic at src/", SECOND);
    ns.wait_for("reboot in 2 s", SECOND);
    std::thread::sleep(SECOND);
    assert!(ns.is_running(), "PID 1 must wait 2 s before rebooting; log:\n{}", ns.log());
    assert_eq!(ns.wait_end(10 * SECOND), Some(SIGHUP));
    assert!(ns.started.elapsed() >= 2 * SECOND);

    let mut ns = Pid1::start(&common::keel_test_bin(), &["keel.test_panic", "keel.panic=poweroff"]);
    assert_eq!(ns.wait_end(5 * SECOND), Some(SIGINT), "log:\n{}", ns.log());
}

#[test]
fn cmdline_problems_are_warnings_not_fatal() {
    let mut ns = Pid1::start(&common::keel_bin(), &["keel.nonsense=1", "keel.shutdown_timeout=soon", "keel.panic=explode"]);
    let log = ns.log();
    assert!(log.contains("warning: unknown key keel.nonsense ignored"), "log:\n{log}");
    assert!(log.contains("warning: keel.shutdown_timeout=soon is not whole seconds; ignored"), "log:\n{log}");
    assert!(log.contains("warning: keel.panic=explode is not"), "log:\n{log}");
    // keel.test_panic is only honoured by test builds.
    ns.signal(SIGUSR2);
    assert_eq!(ns.wait_end(5 * SECOND), Some(SIGINT));
}

#[test]
fn release_build_ignores_the_test_panic_trigger() {
    let mut ns = Pid1::start(&common::keel_bin(), &["keel.test_panic"]);
    assert!(ns.log().contains("unknown key keel.test_panic"), "log:\n{}", ns.log());
    std::thread::sleep(Duration::from_millis(100));
    assert!(ns.is_running());
    assert!(!ns.log().contains("panic:"));
}
