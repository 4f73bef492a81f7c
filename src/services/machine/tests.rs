//! The state machine on its own: every state under every event, then the paths through it
//! (backoff, readiness, spawn failures, restarts, shutdown) step by step.

use super::*;
use crate::escalate::KILL_WAIT_MS;
use rustix::io::Errno;

const T0: Instant = Instant(7_000_000_000);
const PID: i32 = 42;
const TERM: u32 = 15;

fn at(ms: u64) -> Instant {
    T0.plus_millis(ms)
}

fn spec() -> Spec<'static> {
    crate::services::spec::example()
}

const RUNNING: Ctx = Ctx { deps: Deps::Ready, shutdown: None };

fn service(state: State) -> Service {
    Service { state, backoff: Backoff::new(&spec()), starts: 1 }
}

/// One step of `state` on `event` at `now`: the new state and the action.
fn step_at(state: State, event: Event, now: Instant, ctx: &Ctx) -> (State, Action) {
    let mut svc = service(state);
    let action = svc.step(&spec(), event, now, ctx);
    (svc.state, action)
}

// One of each state (both kinds of Failed), as the table below uses them. Deadlines lie
// ahead of NOW except the backoff's.
const WAITING: State = State::Waiting { blocked_said: false };
const STARTING: State = State::Starting { pid: PID, since: T0, deadline: Some(Instant(T0.0 + 1000 * 1_000_000)) };
const READY: State = State::Ready { pid: PID, since: T0 };
const STOPPING: State = State::Stopping { pid: PID, escalation: Escalation::begin(T0, 500), then_start: false };
const STOPPED: State = State::Stopped;
const EXITED: State = State::Exited(ExitStatus::Exited(0));
const BACKOFF: State = State::Backoff { until: Instant(T0.0 + 100 * 1_000_000) };
const FAILED: State = State::Failed { ending: None };
const ENDING: State = State::Failed { ending: Some(PID) };
const OFF: State = State::Off;
const ALL: [State; 10] = [WAITING, STARTING, READY, STOPPING, STOPPED, EXITED, BACKOFF, FAILED, ENDING, OFF];

/// `event` at 200 ms in every state, with the expected outcome of each, in ALL's order.
fn check(event: Event, ctx: &Ctx, expected: [(State, Action); 10]) {
    for (state, want) in ALL.into_iter().zip(expected) {
        assert_eq!(step_at(state, event, at(200), ctx), want, "{event:?} in {state:?}");
    }
}

use Action::{Kill, Nothing, Refuse, Spawn, Stop, Unwatch, Watch};

#[test]
fn every_state_on_poll() {
    check(
        Event::Poll,
        &RUNNING,
        [
            (WAITING, Spawn),
            (STARTING, Nothing),
            (READY, Nothing),
            (STOPPING, Nothing),
            (STOPPED, Nothing),
            (EXITED, Nothing),
            (BACKOFF, Spawn),
            (FAILED, Nothing),
            (ENDING, Nothing),
            (OFF, Nothing),
        ],
    );
}

#[test]
fn every_state_on_spawned() {
    let running = State::Ready { pid: 43, since: at(200) };
    check(
        Event::Spawned(43),
        &RUNNING,
        [
            (running, Watch),
            (STARTING, Nothing),
            (READY, Nothing),
            (STOPPING, Nothing),
            (STOPPED, Nothing),
            (EXITED, Nothing),
            (running, Watch),
            (FAILED, Nothing),
            (ENDING, Nothing),
            (OFF, Nothing),
        ],
    );
}

#[test]
fn every_state_on_spawn_failed() {
    check(
        Event::SpawnFailed(Errno::NOENT),
        &RUNNING,
        [
            (FAILED, Nothing),
            (STARTING, Nothing),
            (READY, Nothing),
            (STOPPING, Nothing),
            (STOPPED, Nothing),
            (EXITED, Nothing),
            (FAILED, Nothing),
            (FAILED, Nothing),
            (ENDING, Nothing),
            (OFF, Nothing),
        ],
    );
}

#[test]
fn every_state_on_exit() {
    // Ran 200 ms, less than stable_after: the first backoff, 100 ms.
    let backoff = State::Backoff { until: at(300) };
    check(
        Event::Exited(ExitStatus::Exited(1)),
        &RUNNING,
        [
            (WAITING, Nothing),
            (backoff, Nothing),
            (backoff, Nothing),
            (STOPPED, Nothing),
            (STOPPED, Nothing),
            (EXITED, Nothing),
            (BACKOFF, Nothing),
            (FAILED, Nothing),
            (FAILED, Nothing),
            (OFF, Nothing),
        ],
    );
}

#[test]
fn every_state_on_ready() {
    check(
        Event::Ready,
        &RUNNING,
        [
            (WAITING, Nothing),
            (READY, Unwatch),
            (READY, Nothing),
            (STOPPING, Nothing),
            (STOPPED, Nothing),
            (EXITED, Nothing),
            (BACKOFF, Nothing),
            (FAILED, Nothing),
            (ENDING, Nothing),
            (OFF, Nothing),
        ],
    );
}

#[test]
fn every_state_on_start() {
    let restarting = State::Stopping { pid: PID, escalation: Escalation::begin(T0, 500), then_start: true };
    let busy = Refuse(Refusal::StillEnding);
    check(
        Event::Control(Control::Start),
        &RUNNING,
        [
            (WAITING, Nothing),
            (STARTING, Nothing),
            (READY, Nothing),
            (restarting, Nothing),
            (WAITING, Nothing),
            (WAITING, Nothing),
            (WAITING, Nothing),
            (WAITING, Nothing),
            (ENDING, busy),
            (WAITING, Nothing),
        ],
    );
}

#[test]
fn every_state_on_stop() {
    let stopping = State::Stopping { pid: PID, escalation: Escalation::begin(at(200), 500), then_start: false };
    let stop = Stop { pid: PID, signal: TERM };
    check(
        Event::Control(Control::Stop),
        &RUNNING,
        [
            (STOPPED, Nothing),
            (stopping, stop),
            (stopping, stop),
            (STOPPING, Nothing),
            (STOPPED, Nothing),
            (STOPPED, Nothing),
            (STOPPED, Nothing),
            (STOPPED, Nothing),
            (ENDING, Refuse(Refusal::StillEnding)),
            (STOPPED, Nothing),
        ],
    );
}

#[test]
fn every_state_on_restart() {
    let restarting = State::Stopping { pid: PID, escalation: Escalation::begin(at(200), 500), then_start: true };
    let already = State::Stopping { pid: PID, escalation: Escalation::begin(T0, 500), then_start: true };
    let stop = Stop { pid: PID, signal: TERM };
    check(
        Event::Control(Control::Restart),
        &RUNNING,
        [
            (WAITING, Nothing),
            (restarting, stop),
            (restarting, stop),
            (already, Nothing),
            (WAITING, Nothing),
            (WAITING, Nothing),
            (WAITING, Nothing),
            (WAITING, Nothing),
            (ENDING, Refuse(Refusal::StillEnding)),
            (WAITING, Nothing),
        ],
    );
}

#[test]
fn every_state_refuses_control_during_shutdown() {
    let shutting_down = Ctx { deps: Deps::Ready, shutdown: Some(at(5000)) };
    for what in [Control::Start, Control::Stop, Control::Restart] {
        check(Event::Control(what), &shutting_down, ALL.map(|s| (s, Refuse(Refusal::ShuttingDown))));
    }
}

#[test]
fn every_state_on_shutdown() {
    // The deadline (400 ms) is nearer than the stop's grace (500 ms): it caps it.
    let capped = State::Stopping { pid: PID, escalation: Escalation::Grace { kill_at: at(400) }, then_start: false };
    check(
        Event::Shutdown(at(400)),
        &RUNNING,
        [
            (STOPPED, Nothing),
            (State::Starting { pid: PID, since: T0, deadline: None }, Nothing),
            (READY, Nothing),
            (capped, Nothing),
            (STOPPED, Nothing),
            (EXITED, Nothing),
            (STOPPED, Nothing),
            (FAILED, Nothing),
            (ENDING, Nothing),
            (OFF, Nothing),
        ],
    );
}

#[test]
fn every_state_on_dependents_down() {
    // Its grace would end at 700 ms; the global deadline, 400 ms, comes first.
    let stopping = State::Stopping { pid: PID, escalation: Escalation::Grace { kill_at: at(400) }, then_start: false };
    let stop = Stop { pid: PID, signal: TERM };
    check(
        Event::DependentsDown(at(400)),
        &RUNNING,
        [
            (WAITING, Nothing),
            (stopping, stop),
            (stopping, stop),
            (STOPPING, Nothing),
            (STOPPED, Nothing),
            (EXITED, Nothing),
            (BACKOFF, Nothing),
            (FAILED, Nothing),
            (ENDING, Nothing),
            (OFF, Nothing),
        ],
    );
}

#[test]
fn waiting_follows_its_dependencies() {
    let pending = Ctx { deps: Deps::Pending, shutdown: None };
    assert_eq!(step_at(WAITING, Event::Poll, T0, &pending), (WAITING, Nothing));
    let blocked = Ctx { deps: Deps::Blocked { name: "db", state: "failed" }, shutdown: None };
    let said = State::Waiting { blocked_said: true };
    assert_eq!(step_at(WAITING, Event::Poll, T0, &blocked), (said, Nothing), "said once");
    assert_eq!(step_at(said, Event::Poll, T0, &blocked), (said, Nothing));
    assert_eq!(step_at(said, Event::Poll, T0, &RUNNING), (said, Spawn), "unblocked: starts");
}

#[test]
fn readiness_by_fd_or_notify_has_a_deadline_and_a_oneshot_none() {
    for ready in [Readiness::Fd(3), Readiness::Notify] {
        let mut svc = service(WAITING);
        assert_eq!(svc.step(&Spec { ready, ..spec() }, Event::Spawned(7), T0, &RUNNING), Watch);
        assert_eq!(svc.state, State::Starting { pid: 7, since: T0, deadline: Some(at(1000)) });
        assert_eq!(svc.state.poll_at(), Some(at(1000)));
    }
    let mut svc = service(WAITING);
    svc.step(&Spec { oneshot: true, ..spec() }, Event::Spawned(7), T0, &RUNNING);
    assert_eq!(svc.state, State::Starting { pid: 7, since: T0, deadline: None });
    assert_eq!(svc.state.poll_at(), None);
}

#[test]
fn a_readiness_timeout_kills_and_fails() {
    let spec = Spec { ready: Readiness::Fd(3), ..spec() };
    let mut svc = service(WAITING);
    svc.step(&spec, Event::Spawned(PID), T0, &RUNNING);
    assert_eq!(svc.step(&spec, Event::Poll, at(999), &RUNNING), Nothing);
    assert_eq!(svc.step(&spec, Event::Poll, at(1000), &RUNNING), Kill { pid: PID });
    assert_eq!(svc.state, ENDING, "failed, its process still to be reaped");
    assert_eq!((svc.state.pid(), svc.state.poll_at()), (Some(PID), None));
    assert_eq!(svc.step(&spec, Event::Ready, at(1001), &RUNNING), Nothing, "too late");
    assert_eq!(svc.state, ENDING);
    svc.step(&spec, Event::Exited(ExitStatus::Signaled(9)), at(1002), &RUNNING);
    assert_eq!((svc.state, svc.state.pid()), (FAILED, None), "not restarted");
}

#[test]
fn a_stop_escalates_to_sigkill_after_its_grace() {
    let mut svc = service(READY);
    assert_eq!(svc.step(&spec(), Event::Control(Control::Stop), T0, &RUNNING), Stop { pid: PID, signal: TERM });
    assert_eq!(svc.state.poll_at(), Some(at(500)));
    assert_eq!(svc.step(&spec(), Event::Poll, at(499), &RUNNING), Nothing);
    assert_eq!(svc.step(&spec(), Event::Poll, at(500), &RUNNING), Kill { pid: PID });
    assert_eq!(svc.state.wire(), ServiceState::Stopping);
    assert_eq!(svc.state.poll_at(), Some(at(500 + KILL_WAIT_MS)));
    assert_eq!(svc.step(&spec(), Event::Poll, at(600), &RUNNING), Nothing, "SIGKILL once");
    // Stuck in the kernel: nothing more to send; its exit still ends the stop.
    assert_eq!(svc.step(&spec(), Event::Poll, at(500 + KILL_WAIT_MS), &RUNNING), Nothing);
    assert_eq!(svc.state.poll_at(), None);
    svc.step(&spec(), Event::Exited(ExitStatus::Signaled(9)), at(9000), &RUNNING);
    assert_eq!(svc.state, STOPPED);
}

/// Run `svc` (not yet spawned) for `ran_ms` and let it exit 1; returns the wait before the
/// restart it gets (None: it was given up on) and the time after.
fn crash(svc: &mut Service, spec: &Spec, now: Instant, ran_ms: u64) -> (Option<u64>, Instant) {
    assert_eq!(svc.step(spec, Event::Poll, now, &RUNNING), Spawn);
    svc.step(spec, Event::Spawned(PID), now, &RUNNING);
    let end = now.plus_millis(ran_ms);
    svc.step(spec, Event::Exited(ExitStatus::Exited(1)), end, &RUNNING);
    match svc.state {
        State::Backoff { until } => (Some(until.millis_since(end)), until),
        State::Failed { ending: None } => (None, end),
        other => panic!("after a crash: {other:?}"),
    }
}

#[test]
fn backoff_grows_caps_and_gives_up_through_the_steps() {
    let spec = spec();
    let mut svc = Service::new(&spec, true);
    let mut now = T0;
    let mut waits = Vec::new();
    for _ in 0..6 {
        let (wait, next) = crash(&mut svc, &spec, now, 50);
        waits.push(wait);
        now = next;
        if wait.is_some() {
            assert_eq!(svc.step(&spec, Event::Poll, now, &RUNNING), Spawn, "due at its time");
            svc.state = State::Waiting { blocked_said: false };
        }
    }
    assert_eq!(waits, [Some(100), Some(200), Some(400), Some(800), Some(1000), None], "max_failures = 6");
    assert_eq!(svc.step(&spec, Event::Poll, now.plus_millis(60_000), &RUNNING), Nothing, "left alone");
    assert_eq!(svc.restarts(), 5);
    // An explicit start gives it a fresh backoff.
    svc.step(&spec, Event::Control(Control::Start), now, &RUNNING);
    assert_eq!(crash(&mut svc, &spec, now, 50).0, Some(100));
}

#[test]
fn a_stable_run_resets_the_backoff() {
    let spec = spec();
    let mut svc = Service::new(&spec, true);
    let mut now = T0;
    let mut waits = Vec::new();
    for ran in [50, 50, 50, 10_000, 50, 50] {
        let (wait, until) = crash(&mut svc, &spec, now, ran);
        waits.push(wait.unwrap());
        assert_eq!(svc.step(&spec, Event::Poll, until, &RUNNING), Spawn);
        svc.state = State::Waiting { blocked_said: false };
        now = until;
    }
    // The stable run resets: its restart and the next quick failure wait the initial delay.
    assert_eq!(waits, [100, 200, 400, 100, 100, 200]);
}

#[test]
fn backoff_waits_for_its_time() {
    let svc = State::Backoff { until: at(100) };
    assert_eq!(step_at(svc, Event::Poll, at(99), &RUNNING), (svc, Nothing));
    assert_eq!(step_at(svc, Event::Poll, at(100), &RUNNING), (svc, Spawn));
    assert_eq!(svc.poll_at(), Some(at(100)));
}

#[test]
fn exec_failure_fails_or_retries_when_transient() {
    assert_eq!(step_at(WAITING, Event::SpawnFailed(Errno::NOENT), T0, &RUNNING), (FAILED, Nothing));
    assert_eq!(step_at(WAITING, Event::SpawnFailed(Errno::ACCESS), T0, &RUNNING), (FAILED, Nothing));
    // Out of processes or memory: again, with backoff.
    let spec = spec();
    let mut svc = Service::new(&spec, true);
    for (errno, wait) in [(Errno::AGAIN, 100), (Errno::NOMEM, 200), (Errno::AGAIN, 400)] {
        assert_eq!(svc.step(&spec, Event::Poll, T0, &RUNNING), Spawn);
        svc.step(&spec, Event::SpawnFailed(errno), T0, &RUNNING);
        assert_eq!(svc.state, State::Backoff { until: at(wait) });
        svc.state = WAITING;
    }
    assert_eq!(svc.starts, 0, "nothing ran");
}

#[test]
fn exits_follow_the_restart_policy_and_oneshots_succeed_once() {
    let ok = Event::Exited(ExitStatus::Exited(0));
    let bad = Event::Exited(ExitStatus::Signaled(11));
    let run = |spec: &Spec, event| {
        let mut svc = service(READY);
        svc.step(spec, event, at(50), &RUNNING);
        svc.state
    };
    let backoff = State::Backoff { until: at(150) };
    let never = Spec { restart: Restart::Never, ..spec() };
    let on_failure = Spec { restart: Restart::OnFailure, ..spec() };
    let oneshot = Spec { oneshot: true, ..spec() };
    assert_eq!(run(&spec(), ok), backoff);
    assert_eq!(run(&spec(), bad), backoff);
    assert_eq!(run(&on_failure, ok), State::Exited(ExitStatus::Exited(0)));
    assert_eq!(run(&on_failure, bad), backoff);
    assert_eq!(run(&never, ok), State::Exited(ExitStatus::Exited(0)));
    assert_eq!(run(&never, bad), FAILED);
    assert_eq!(run(&oneshot, ok), State::Exited(ExitStatus::Exited(0)), "done: not restarted");
    assert_eq!(run(&oneshot, bad), backoff, "a failed boot task is tried again");
    assert_eq!(run(&Spec { oneshot: true, restart: Restart::Never, ..spec() }, bad), FAILED);
}

#[test]
fn a_restart_starts_again_once_down_and_a_late_start_is_remembered() {
    let spec = spec();
    let mut svc = service(READY);
    svc.step(&spec, Event::Control(Control::Restart), T0, &RUNNING);
    svc.step(&spec, Event::Exited(ExitStatus::Exited(0)), at(10), &RUNNING);
    assert_eq!(svc.state, WAITING, "through its dependencies again");

    let mut svc = service(READY);
    svc.step(&spec, Event::Control(Control::Stop), T0, &RUNNING);
    assert_eq!(svc.step(&spec, Event::Control(Control::Start), at(1), &RUNNING), Nothing);
    svc.step(&spec, Event::Exited(ExitStatus::Exited(0)), at(10), &RUNNING);
    assert_eq!(svc.state, WAITING, "the start asked during the stop");

    let mut svc = service(READY);
    svc.step(&spec, Event::Control(Control::Restart), T0, &RUNNING);
    svc.step(&spec, Event::Control(Control::Stop), at(1), &RUNNING);
    svc.step(&spec, Event::Exited(ExitStatus::Exited(0)), at(10), &RUNNING);
    assert_eq!(svc.state, STOPPED, "the last request wins");
}

#[test]
fn nothing_restarts_once_the_shutdown_began() {
    let spec = spec();
    let shutting_down = Ctx { deps: Deps::Ready, shutdown: Some(at(5000)) };
    for state in [STARTING, READY] {
        assert_eq!(step_at(state, Event::Exited(ExitStatus::Exited(1)), at(10), &shutting_down), (STOPPED, Nothing));
    }
    // A restart under way becomes a stop.
    let mut svc = service(READY);
    svc.step(&spec, Event::Control(Control::Restart), T0, &RUNNING);
    svc.step(&spec, Event::Shutdown(at(5000)), at(1), &shutting_down);
    svc.step(&spec, Event::Exited(ExitStatus::Exited(0)), at(10), &shutting_down);
    assert_eq!(svc.state, STOPPED);
    // A starting service no longer times out: it is stopped in order instead.
    let mut svc = service(STARTING);
    svc.step(&spec, Event::Shutdown(at(5000)), at(1), &shutting_down);
    assert_eq!(svc.step(&spec, Event::Poll, at(2000), &shutting_down), Nothing);
    assert_eq!(svc.state.poll_at(), None);
}

#[test]
fn restarts_count_the_starts_after_the_first() {
    let spec = spec();
    let mut svc = Service::new(&spec, true);
    assert_eq!(svc.restarts(), 0);
    for n in 0..3 {
        svc.state = WAITING;
        svc.step(&spec, Event::Spawned(PID + n), T0, &RUNNING);
    }
    assert_eq!((svc.starts, svc.restarts()), (3, 2));
    assert_eq!(Service::new(&spec, false).state, OFF);
}

#[test]
fn wire_codes_and_pids() {
    let codes: Vec<u8> = ALL.iter().map(|s| s.wire().into()).collect();
    assert_eq!(codes, [0, 1, 2, 3, 4, 5, 6, 7, 7, 8]);
    let pids: Vec<Option<i32>> = ALL.iter().map(State::pid).collect();
    let p = Some(PID);
    assert_eq!(pids, [None, p, p, p, None, None, None, None, p, None]);
}
