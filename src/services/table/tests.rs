//! The services together, with their own tables and a recording stand-in for fork and kill:
//! dependency order, blocking, the shutdown's reverse order and deadlines.

use super::*;
use crate::services::machine::Refusal;
use crate::services::spec::Restart;
use rustix::io::Errno;

const T0: Instant = Instant(7_000_000_000);
const TERM: u32 = 15;

fn at(ms: u64) -> Instant {
    T0.plus_millis(ms)
}

fn spec(name: &'static str, deps: &'static [u8]) -> Spec<'static> {
    Spec { name, deps, ..crate::services::spec::example() }
}

fn leak(specs: Vec<Spec<'static>>) -> &'static [Spec<'static>] {
    Box::leak(specs.into_boxed_slice())
}

/// Records what is asked; a spawn gets pid 100 + index, or fails with `fail`'s errno.
#[derive(Default)]
struct Record {
    done: Vec<(usize, Action)>,
    fail: Option<(usize, Errno)>,
}

impl Effects for Record {
    fn perform(&mut self, i: usize, action: Action) -> Option<Event> {
        self.done.push((i, action));
        match (action, self.fail) {
            (Action::Spawn, Some((f, errno))) if f == i => Some(Event::SpawnFailed(errno)),
            (Action::Spawn, _) => Some(Event::Spawned(100 + i as i32)),
            _ => None,
        }
    }
}

impl Record {
    /// What was asked since the last call, without the watches that follow each spawn and
    /// the steps that asked nothing.
    fn take(&mut self) -> Vec<(usize, Action)> {
        core::mem::take(&mut self.done).into_iter().filter(|(_, a)| !matches!(a, Action::Watch | Action::Nothing)).collect()
    }
}

fn names<const N: usize>(t: &Table<N>) -> Vec<(&'static str, &'static str)> {
    t.entries().map(|(spec, state, _)| (spec.name, state.name())).collect()
}

fn exit<const N: usize>(t: &mut Table<N>, fx: &mut Record, i: usize, code: i32, now: Instant) {
    assert_eq!(t.on_exit(100 + i as i32, ExitStatus::Exited(code), now, fx), Some(i));
    t.poll(now, fx);
}

/// prepare (oneshot) ← middle ← top, and side on its own.
fn chain() -> &'static [Spec<'static>] {
    leak(vec![Spec { oneshot: true, restart: Restart::Never, ..spec("prepare", &[]) }, spec("middle", &[0]), spec("top", &[1]), spec("side", &[])])
}

#[test]
fn dependencies_start_in_order_independent_ones_at_once() {
    let mut t: Table<8> = Table::new(chain(), |_, _| true);
    let mut fx = Record::default();
    t.poll(T0, &mut fx);
    assert_eq!(fx.take(), [(0, Action::Spawn), (3, Action::Spawn)]);
    assert_eq!(names(&t), [("prepare", "starting"), ("middle", "waiting"), ("top", "waiting"), ("side", "ready")]);
    assert_eq!(t.deps(1), Deps::Pending);
    // The oneshot's success lets middle start, and middle being ready lets top: one pass.
    exit(&mut t, &mut fx, 0, 0, at(200));
    assert_eq!(fx.take(), [(1, Action::Spawn), (2, Action::Spawn)]);
    assert_eq!(names(&t), [("prepare", "exited"), ("middle", "ready"), ("top", "ready"), ("side", "ready")]);
    t.poll(at(300), &mut fx);
    assert_eq!(fx.take(), [], "nothing more to do");
    assert_eq!(t.poll_at(), None);
}

#[test]
fn a_failed_oneshot_blocks_its_dependents_until_it_succeeds() {
    let mut t: Table<8> = Table::new(chain(), |_, _| true);
    let mut fx = Record::default();
    t.poll(T0, &mut fx);
    assert_eq!(fx.take(), [(0, Action::Spawn), (3, Action::Spawn)]);
    exit(&mut t, &mut fx, 0, 1, at(200));
    assert_eq!(t.deps(1), Deps::Blocked { name: "prepare", state: "failed" });
    assert_eq!(t.state(1), Some(State::Waiting { blocked_said: true }));
    assert_eq!(t.deps(2), Deps::Pending, "top waits for middle, which is not failed");
    assert_eq!(fx.take(), [], "neither started");
    // Started again by hand, it succeeds: the chain moves.
    assert_eq!(t.control(0, Control::Start, at(300), &mut fx), Ok(()));
    t.poll(at(300), &mut fx);
    exit(&mut t, &mut fx, 0, 0, at(400));
    assert_eq!(fx.take(), [(0, Action::Spawn), (1, Action::Spawn), (2, Action::Spawn)]);
    assert_eq!(t.state(2).map(|s| s.name()), Some("ready"));
}

#[test]
fn an_off_or_exited_dependency_blocks() {
    let specs = leak(vec![spec("db", &[]), spec("web", &[0]), Spec { restart: Restart::Never, ..spec("job", &[]) }, spec("report", &[2])]);
    let mut t: Table<8> = Table::new(specs, |i, _| i != 0);
    let mut fx = Record::default();
    t.poll(T0, &mut fx);
    assert_eq!(t.deps(1), Deps::Blocked { name: "db", state: "off" });
    assert_eq!(t.state(1), Some(State::Waiting { blocked_said: true }));
    assert_eq!(t.deps(3), Deps::Ready, "job is ready");
    assert_eq!(fx.take(), [(2, Action::Spawn), (3, Action::Spawn)]);
    exit(&mut t, &mut fx, 2, 0, at(10));
    // job is not a oneshot: having exited, even with 0, it will never be ready again.
    assert_eq!(t.deps(3), Deps::Blocked { name: "job", state: "exited" });
    assert_eq!(fx.take(), [], "report, already running, is left alone");
}

#[test]
fn a_dependency_outside_the_table_blocks() {
    let mut t: Table<8> = Table::new(leak(vec![spec("lost", &[7])]), |_, _| true);
    let mut fx = Record::default();
    t.poll(T0, &mut fx);
    assert_eq!(t.deps(0), Deps::Blocked { name: "?", state: "off" });
    assert_eq!(fx.take(), []);
}

#[test]
fn spawn_failures_fail_or_back_off() {
    let mut t: Table<8> = Table::new(leak(vec![spec("missing", &[])]), |_, _| true);
    let mut fx = Record { fail: Some((0, Errno::NOENT)), ..Record::default() };
    t.poll(T0, &mut fx);
    assert_eq!(t.state(0), Some(State::Failed { ending: None }));
    let mut t: Table<8> = Table::new(leak(vec![spec("busy", &[])]), |_, _| true);
    let mut fx = Record { fail: Some((0, Errno::AGAIN)), ..Record::default() };
    t.poll(T0, &mut fx);
    assert_eq!(t.state(0), Some(State::Backoff { until: at(100) }));
    assert_eq!(t.poll_at(), Some(at(100)));
    fx.fail = None;
    t.poll(at(100), &mut fx);
    assert_eq!(t.state(0).and_then(|s| s.pid()), Some(100));
    assert_eq!(fx.take(), [(0, Action::Spawn), (0, Action::Spawn)]);
}

/// base ← mid ← leaf, with graces of 10 s, 1 s and 0.5 s.
fn stack() -> &'static [Spec<'static>] {
    leak(vec![
        Spec { stop_grace_ms: 10_000, ..spec("base", &[]) },
        Spec { stop_grace_ms: 1000, stop_signal: 1, ..spec("mid", &[0]) },
        spec("leaf", &[1]),
        spec("idle", &[0]),
    ])
}

#[test]
fn shutdown_stops_in_reverse_dependency_order_each_with_its_grace_capped() {
    let mut t: Table<8> = Table::new(stack(), |i, _| i != 3);
    let mut fx = Record::default();
    t.poll(T0, &mut fx);
    assert_eq!(fx.take().len(), 3);
    // Everything must be down by 3 s.
    let deadline = at(3000);
    t.begin_stop(deadline, T0, &mut fx);
    t.poll(T0, &mut fx);
    assert_eq!(fx.take(), [(2, Action::Stop { pid: 102, signal: TERM })], "leaf first: nothing depends on it");
    assert_eq!(t.poll_at(), Some(at(500)));
    // leaf ignores it: SIGKILL after its grace.
    t.poll(at(500), &mut fx);
    assert_eq!(fx.take(), [(2, Action::Kill { pid: 102 })]);
    exit(&mut t, &mut fx, 2, 137, at(600));
    assert_eq!(fx.take(), [(1, Action::Stop { pid: 101, signal: 1 })], "then mid, with its own signal");
    assert_eq!(t.poll_at(), Some(at(1600)), "its own grace");
    exit(&mut t, &mut fx, 1, 0, at(700));
    assert_eq!(fx.take(), [(0, Action::Stop { pid: 100, signal: TERM })]);
    assert_eq!(t.poll_at(), Some(deadline), "a 10 s grace, cut at the global deadline");
    t.poll(at(2999), &mut fx);
    assert_eq!(fx.take(), []);
    t.poll(deadline, &mut fx);
    assert_eq!(fx.take(), [(0, Action::Kill { pid: 100 })], "SIGKILL at the cap");
    assert!(!t.all_down());
    exit(&mut t, &mut fx, 0, 137, at(3001));
    assert!(t.all_down());
    assert_eq!(names(&t), [("base", "stopped"), ("mid", "stopped"), ("leaf", "stopped"), ("idle", "off")]);
    assert_eq!(fx.take(), [], "nothing restarted");
}

#[test]
fn shutdown_stops_what_is_not_running_at_once_and_refuses_requests() {
    let specs = leak(vec![spec("run", &[]), spec("wait", &[2]), Spec { oneshot: true, ..spec("slow", &[]) }, spec("crash", &[])]);
    let mut t: Table<8> = Table::new(specs, |_, _| true);
    let mut fx = Record::default();
    t.poll(T0, &mut fx);
    exit(&mut t, &mut fx, 3, 1, at(10));
    assert_eq!(names(&t), [("run", "ready"), ("wait", "waiting"), ("slow", "starting"), ("crash", "backoff")]);
    fx.take();
    t.begin_stop(at(5000), at(20), &mut fx);
    assert_eq!(names(&t), [("run", "ready"), ("wait", "stopped"), ("slow", "starting"), ("crash", "stopped")]);
    assert_eq!(t.control(3, Control::Start, at(30), &mut fx), Err(Refusal::ShuttingDown.text()));
    assert_eq!(t.control(9, Control::Start, at(30), &mut fx), Err("no such service"));
    assert_eq!(fx.take(), [(3, Action::Refuse(Refusal::ShuttingDown))]);
    t.poll(at(30), &mut fx);
    assert_eq!(fx.take(), [(0, Action::Stop { pid: 100, signal: TERM }), (2, Action::Stop { pid: 102, signal: TERM })]);
}

#[test]
fn a_control_request_goes_through_the_table() {
    let mut t: Table<8> = Table::new(leak(vec![spec("side", &[])]), |_, _| true);
    let mut fx = Record::default();
    t.poll(T0, &mut fx);
    assert_eq!(t.control(0, Control::Restart, at(10), &mut fx), Ok(()));
    assert_eq!(fx.take(), [(0, Action::Spawn), (0, Action::Stop { pid: 100, signal: TERM })]);
    exit(&mut t, &mut fx, 0, 0, at(20));
    assert_eq!(fx.take(), [(0, Action::Spawn)], "started again");
    assert_eq!(t.entries().map(|(_, _, restarts)| restarts).next(), Some(1));
    assert_eq!(t.on_exit(555, ExitStatus::Exited(0), at(30), &mut fx), None, "not a service's");
}

#[test]
fn the_table_keeps_what_it_has_room_for() {
    let t: Table<2> = Table::new(leak(vec![spec("a", &[]), spec("b", &[]), spec("c", &[])]), |_, _| true);
    assert_eq!(t.specs().len(), 2);
    assert_eq!((t.find(b"b"), t.find(b"c")), (Some(1), None));
    assert_eq!(t.state(2), None);
}

#[test]
fn dependents_down_looks_at_processes() {
    let mut t: Table<8> = Table::new(stack(), |_, _| true);
    let mut fx = Record::default();
    assert!(t.dependents_down(0), "nothing runs yet");
    t.poll(T0, &mut fx);
    assert_eq!((t.dependents_down(0), t.dependents_down(1), t.dependents_down(2)), (false, false, true));
}
