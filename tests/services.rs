//! The supervisor, in a PID namespace, with the service table of tests/services/services.toml.
//! Each test enables only the services it needs (`keel.svc.NAME=off` for the rest).
mod common;

use common::ns::{Pid1, SIGINT};
use std::time::Duration;

const SECOND: Duration = Duration::from_secs(1);

/// Start keel with only `enabled` services on.
fn start(enabled: &[&str], extra: &[&str]) -> Pid1 {
    let config = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/services/services.toml")).unwrap();
    let off: Vec<String> = config
        .lines()
        .filter_map(|l| l.trim().strip_prefix("[service.")?.strip_suffix(']').map(str::to_string))
        .filter(|name| !enabled.contains(&name.as_str()))
        .map(|name| format!("keel.svc.{name}=off"))
        .collect();
    let mut args: Vec<&str> = off.iter().map(String::as_str).collect();
    args.extend_from_slice(extra);
    Pid1::start(&common::keel_services_bin(), &args)
}

/// Boot-clock seconds of each log line containing `text`.
fn stamps(log: &str, text: &str) -> Vec<f64> {
    log.lines()
        .filter(|l| l.contains(text))
        .filter_map(|l| l.strip_prefix('[')?.split(']').next()?.trim().parse().ok())
        .collect()
}

fn position(log: &str, text: &str) -> usize {
    log.find(text).unwrap_or_else(|| panic!("{text:?} not in log:\n{log}"))
}

fn power_off(mut ns: Pid1) -> String {
    ns.signal(12);
    assert_eq!(ns.wait_end(10 * SECOND), Some(SIGINT));
    ns.log()
}

#[test]
fn dependencies_start_in_topological_order_independent_ones_at_once() {
    let mut ns = start(&["prepare", "middle", "top", "side"], &[]);
    ns.wait_for("top| top-up", 5 * SECOND);
    let log = power_off(ns);
    // side does not wait for anyone; middle waits for the oneshot to exit 0; top for middle.
    assert!(position(&log, "svc side: started") < position(&log, "svc prepare: pid"), "log:\n{log}");
    assert!(position(&log, "svc prepare: starting -> exited") < position(&log, "svc middle: started"), "log:\n{log}");
    assert!(position(&log, "svc middle: waiting -> ready") < position(&log, "svc top: started"), "log:\n{log}");
}

#[test]
fn readiness_by_notification_fd() {
    let mut ns = start(&["fdready", "after-fd"], &[]);
    ns.wait_for("after-fd| after-fd-up", 5 * SECOND);
    let log = power_off(ns);
    let started = stamps(&log, "svc fdready: started")[0];
    let ready = stamps(&log, "svc fdready: starting -> ready")[0];
    assert!(ready - started >= 0.3, "ready after {:.3} s; log:\n{log}", ready - started);
    assert!(position(&log, "svc fdready: starting -> ready") < position(&log, "svc after-fd: started"));
}

#[test]
fn readiness_by_sd_notify() {
    let mut ns = start(&["notified", "after-notify"], &[]);
    ns.wait_for("after-notify| after-notify-up", 5 * SECOND);
    let log = power_off(ns);
    let started = stamps(&log, "svc notified: started")[0];
    let ready = stamps(&log, "svc notified: starting -> ready")[0];
    assert!(ready - started >= 0.3, "ready after {:.3} s; log:\n{log}", ready - started);
    assert!(position(&log, "svc notified: starting -> ready") < position(&log, "svc after-notify: started"));
}

#[test]
fn readiness_timeout_marks_the_service_failed() {
    let mut ns = start(&["silent"], &[]);
    ns.wait_for("svc silent: not ready after 500 ms: failed", 3 * SECOND);
    ns.wait_for("svc silent: starting -> failed", SECOND);
    power_off(ns);
}

#[test]
fn backoff_gaps_grow_then_cap_and_the_crash_loop_stops() {
    let mut ns = start(&["crasher"], &[]);
    ns.wait_for("6 quick failures in a row: not restarting", 10 * SECOND);
    std::thread::sleep(Duration::from_millis(600));
    let log = power_off(ns);
    let starts = stamps(&log, "svc crasher: started pid");
    assert_eq!(starts.len(), 6, "six runs, then no more; log:\n{log}");
    let gaps: Vec<f64> = starts.windows(2).map(|w| w[1] - w[0]).collect();
    for (gap, wait) in gaps.iter().zip([0.1, 0.2, 0.4, 0.4, 0.4]) {
        assert!(*gap >= wait && *gap < wait + 0.5, "gap {gap:.3} for a {wait} s backoff; gaps {gaps:?}");
    }
    assert!(log.contains("svc crasher: pid") && log.contains("-> failed"));
}

#[test]
fn a_stable_run_resets_the_backoff() {
    let mut ns = start(&["settles"], &[]);
    ns.wait_for("settles| run-6", 10 * SECOND);
    let log = power_off(ns);
    let waits: Vec<&str> = log.lines().filter_map(|l| l.split("svc settles: restart in ").nth(1)).collect();
    // runs 1, 2 quick; run 3 stable (1.2 s); runs 4, 5 quick again.
    assert_eq!(&waits[..5], ["100 ms", "200 ms", "100 ms", "100 ms", "200 ms"], "log:\n{log}");
}

#[test]
fn a_flooding_service_overwrites_its_ring_and_blocks_nobody() {
    let mut ns = start(&["flood", "ticker"], &[]);
    ns.wait_for("ticker| tick-10", 5 * SECOND);
    let ticks_before = ns.log().matches("ticker| tick-").count();
    std::thread::sleep(SECOND);
    let ticks_after = ns.log().matches("ticker| tick-").count();
    assert!(ticks_after >= ticks_before + 5, "the other service keeps going: {ticks_before} -> {ticks_after}");
    let asked = std::time::Instant::now();
    let log = power_off(ns);
    assert!(asked.elapsed() < 5 * SECOND, "PID 1 answers at once while flooded");
    let overwritten: u64 = log
        .lines()
        .find_map(|l| l.split("svc flood: ").nth(1)?.strip_suffix(" bytes of output overwritten in its ring")?.parse().ok())
        .unwrap_or_else(|| panic!("no overwrite count; log:\n{log}"));
    assert!(overwritten > 100_000, "{overwritten} bytes overwritten");
    assert!(!log.contains("flood| "), "echo = false");
}

#[test]
fn services_stop_in_reverse_dependency_order() {
    let mut ns = start(&["base", "mid", "leaf"], &[]);
    ns.wait_for("svc leaf: waiting -> ready", 5 * SECOND);
    let log = power_off(ns);
    let leaf = position(&log, "svc leaf: stopping -> stopped");
    let mid = position(&log, "svc mid: ready -> stopping");
    let mid_done = position(&log, "svc mid: stopping -> stopped");
    let base = position(&log, "svc base: ready -> stopping");
    assert!(leaf < mid && mid_done < base, "log:\n{log}");
    assert!(log.contains("leaf| leaf-stopping") && log.contains("base| base-stopping"));
    assert!(position(&log, "svc base: stopping -> stopped") < position(&log, "sending SIGTERM to all processes"));
    assert!(!log.contains("restart in"), "a service stopping at shutdown is not restarted");
}

#[test]
fn a_service_ignoring_its_stop_signal_is_killed_after_its_grace() {
    let mut ns = start(&["stubborn"], &[]);
    ns.wait_for("stubborn| stubborn-up", 5 * SECOND);
    let log = power_off(ns);
    let stopping = stamps(&log, "svc stubborn: ready -> stopping")[0];
    let killed = stamps(&log, "svc stubborn: still running after its grace: SIGKILL")[0];
    assert!(killed - stopping >= 0.5 && killed - stopping < 1.5, "{:.3} s; log:\n{log}", killed - stopping);
    assert!(log.contains("svc stubborn: pid") && log.contains("ended (signal 9)"), "log:\n{log}");
}

#[test]
fn exec_failure_names_the_path_and_errno() {
    let mut ns = start(&["missing"], &[]);
    ns.wait_for("svc missing: exec /nonexistent/keel-test-binary: ENOENT", 3 * SECOND);
    ns.wait_for("svc missing: waiting -> failed", SECOND);
    power_off(ns);
}

#[test]
fn single_mode_and_svc_off_keep_services_down() {
    let ns = start(&["side", "ticker"], &["keel.single"]);
    std::thread::sleep(Duration::from_millis(300));
    let log = power_off(ns);
    assert!(!log.contains("svc side: started") && !log.contains("svc ticker: started"), "log:\n{log}");
    assert!(log.contains("svc side: off (command line)"));
}
