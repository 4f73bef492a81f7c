//! One service's state machine, pure (after nitro's `process_step` and smoltcp's sockets):
//! `Service::step(spec, event, now, ctx)` moves to the next state and says what to do; the
//! caller does it (fork, signal, epoll: services/supervisor.rs) and feeds the outcome back
//! as an event. Every state is listed under every event; what cannot happen is logged.

use super::backoff::{Backoff, Decision};
use super::spec::{Readiness, Restart, Spec};
use crate::clock::Instant;
use crate::escalate::{self, Escalation};
use crate::log::say::Part::{self, N, T};
use crate::reaper::ExitStatus;
use keel_proto::ServiceState;

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum State {
    /// For its dependencies; `blocked_said`: a dependency that will never be ready was named.
    Waiting { blocked_said: bool },
    /// Running, readiness pending (a oneshot: until it exits 0). No deadline for a oneshot,
    /// nor once the shutdown began.
    Starting { pid: i32, since: Instant, deadline: Option<Instant> },
    Ready { pid: i32, since: Instant },
    /// The stop signal was sent; `then_start`: start again once down (a restart).
    Stopping { pid: i32, escalation: Escalation, then_start: bool },
    Stopped,
    Exited(ExitStatus),
    Backoff { until: Instant },
    /// Given up on. `ending`: the process SIGKILLed on a readiness timeout, not reaped yet.
    Failed { ending: Option<i32> },
    /// Disabled on the command line.
    Off,
}

impl State {
    /// The state as the debug protocol numbers and names it.
    pub fn wire(&self) -> ServiceState {
        match self {
            State::Waiting { .. } => ServiceState::Waiting,
            State::Starting { .. } => ServiceState::Starting,
            State::Ready { .. } => ServiceState::Ready,
            State::Stopping { .. } => ServiceState::Stopping,
            State::Stopped => ServiceState::Stopped,
            State::Exited(_) => ServiceState::Exited,
            State::Backoff { .. } => ServiceState::Backoff,
            State::Failed { .. } => ServiceState::Failed,
            State::Off => ServiceState::Off,
        }
    }

    pub fn name(&self) -> &'static str {
        self.wire().name().unwrap_or("?")
    }

    /// The service's process, while there is one to reap.
    pub fn pid(&self) -> Option<i32> {
        match *self {
            State::Starting { pid, .. } | State::Ready { pid, .. } | State::Stopping { pid, .. } => Some(pid),
            State::Failed { ending } => ending,
            State::Waiting { .. } | State::Stopped | State::Exited(_) | State::Backoff { .. } | State::Off => None,
        }
    }

    /// When `step(Event::Poll)` is due even if nothing happens.
    pub fn poll_at(&self) -> Option<Instant> {
        match self {
            State::Starting { deadline, .. } => *deadline,
            State::Stopping { escalation, .. } => escalation.poll_at(),
            State::Backoff { until } => Some(*until),
            State::Waiting { .. } | State::Ready { .. } | State::Stopped | State::Exited(_) | State::Failed { .. } | State::Off => None,
        }
    }
}

/// What a debug client may ask of a service.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Control {
    Start,
    Stop,
    Restart,
}

impl Control {
    pub fn name(self) -> &'static str {
        match self {
            Control::Start => "start",
            Control::Stop => "stop",
            Control::Restart => "restart",
        }
    }
}

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Event {
    /// Time passed or another service changed: deadlines, and dependencies (`Ctx::deps`).
    Poll,
    /// The `Spawn` asked for: running as `pid`...
    Spawned(i32),
    /// ... or not: fork or the child's set-up failed with this errno.
    SpawnFailed(rustix::io::Errno),
    Exited(ExitStatus),
    /// A newline on the notification fd, or `READY=1` from sd_notify.
    Ready,
    Control(Control),
    /// The power sequence began: everything down by this deadline.
    Shutdown(Instant),
    /// At shutdown: nothing that depends on this service runs any more. Stop it, by this
    /// (global) deadline at the latest.
    DependentsDown(Instant),
}

/// What the caller must do after a step.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Action {
    Nothing,
    /// Start the process; the outcome comes back as `Spawned` or `SpawnFailed`.
    Spawn,
    /// Watch the new process's descriptors (output, notification fd).
    Watch,
    /// Readiness was seen: close the notification fd.
    Unwatch,
    /// Send `signal` then SIGCONT (so a stopped process can act on it) to the process group.
    Stop { pid: i32, signal: u32 },
    /// SIGKILL to the process group.
    Kill { pid: i32 },
    /// A control request that cannot be done now: the client is told why.
    Refuse(Refusal),
}

/// Why a control request cannot be done now.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    ShuttingDown,
    /// Killed on a readiness timeout and not reaped yet (a moment).
    StillEnding,
}

impl Refusal {
    pub fn text(self) -> &'static str {
        match self {
            Refusal::ShuttingDown => "shutting down",
            Refusal::StillEnding => "still ending: try again",
        }
    }
}

/// How a service's dependencies stand, as the table sees them.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Deps {
    Ready,
    Pending,
    /// This one will not become ready by itself (failed, off, exited non-zero).
    Blocked { name: &'static str, state: &'static str },
}

/// What a step needs to know of the rest of the table.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Ctx {
    /// Read on `Poll` only (the table computes it then).
    pub deps: Deps,
    /// The shutdown's global deadline, once it began.
    pub shutdown: Option<Instant>,
}

/// One service's runtime record (what `step` needs; descriptors live with the caller).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Service {
    pub state: State,
    pub backoff: Backoff,
    /// Processes started so far.
    pub starts: u32,
}

impl Service {
    pub const fn new(spec: &Spec, enabled: bool) -> Service {
        let state = if enabled { State::Waiting { blocked_said: false } } else { State::Off };
        Service { state, backoff: Backoff::new(spec), starts: 0 }
    }

    /// Starts after the first.
    pub fn restarts(&self) -> u32 {
        self.starts.saturating_sub(1)
    }

    /// Advance on `event`: the new state is set (and logged), the returned action is the
    /// caller's to do. Every state under every event: what cannot happen is logged.
    pub fn step(&mut self, spec: &Spec, event: Event, now: Instant, ctx: &Ctx) -> Action {
        use Action as A;
        use State as S;
        let mut action = A::Nothing;
        // None: the state stays as it is.
        let next = match event {
            Event::Poll => match self.state {
                S::Waiting { blocked_said } => match ctx.deps {
                    Deps::Ready => {
                        action = A::Spawn;
                        None
                    }
                    Deps::Pending => None,
                    Deps::Blocked { name, state: dep } => {
                        if !blocked_said {
                            say(spec.name, "blocked, dependency % is %", &[T(name.as_bytes()), T(dep.as_bytes())]);
                        }
                        Some(S::Waiting { blocked_said: true })
                    }
                },
                S::Starting { pid, deadline: Some(d), .. } if now >= d => {
                    say(spec.name, "not ready after % ms: failed", &[N(spec.ready_timeout_ms)]);
                    action = A::Kill { pid };
                    Some(S::Failed { ending: Some(pid) })
                }
                S::Stopping { pid, mut escalation, then_start } => {
                    // After SIGKILL nothing more can be done: its exit comes, or the
                    // shutdown goes on without it at its deadline.
                    if escalation.step(now, false) == escalate::Action::Kill {
                        say(spec.name, "still running after its grace: SIGKILL", &[]);
                        action = A::Kill { pid };
                    }
                    Some(S::Stopping { pid, escalation, then_start })
                }
                S::Backoff { until } => {
                    if now >= until {
                        action = A::Spawn;
                    }
                    None
                }
                S::Starting { .. } | S::Ready { .. } | S::Stopped | S::Exited(_) | S::Failed { .. } | S::Off => None,
            },

            Event::Spawned(pid) => match self.state {
                S::Waiting { .. } | S::Backoff { .. } => {
                    self.starts = self.starts.saturating_add(1);
                    say(spec.name, "started pid %", &[N(pid as u64)]);
                    action = A::Watch;
                    Some(match (spec.oneshot, spec.ready) {
                        // A boot task is "ready" when it exits with 0.
                        (true, _) => S::Starting { pid, since: now, deadline: None },
                        (false, Readiness::Exec) => S::Ready { pid, since: now },
                        (false, Readiness::Fd(_) | Readiness::Notify) => {
                            S::Starting { pid, since: now, deadline: Some(now.plus_millis(spec.ready_timeout_ms)) }
                        }
                    })
                }
                S::Starting { .. } | S::Ready { .. } | S::Stopping { .. } | S::Stopped | S::Exited(_) | S::Failed { .. } | S::Off => ignored(spec, "spawned", &self.state),
            },

            Event::SpawnFailed(errno) => match self.state {
                // Out of memory or processes is worth another try; a missing binary is not.
                S::Waiting { .. } | S::Backoff { .. } if errno == rustix::io::Errno::AGAIN || errno == rustix::io::Errno::NOMEM => {
                    Some(self.restart_after(spec, now, 0))
                }
                S::Waiting { .. } | S::Backoff { .. } => Some(S::Failed { ending: None }),
                S::Starting { .. } | S::Ready { .. } | S::Stopping { .. } | S::Stopped | S::Exited(_) | S::Failed { .. } | S::Off => ignored(spec, "spawn failure", &self.state),
            },

            Event::Exited(status) => match self.state {
                S::Starting { since, .. } | S::Ready { since, .. } => Some(self.after_exit(spec, status, since, now, ctx)),
                // A restart starts it again through its dependencies; not once shutting down.
                S::Stopping { then_start: true, .. } if ctx.shutdown.is_none() => Some(S::Waiting { blocked_said: false }),
                S::Stopping { .. } => Some(S::Stopped),
                S::Failed { ending: Some(_) } => Some(S::Failed { ending: None }),
                S::Waiting { .. } | S::Backoff { .. } | S::Stopped | S::Exited(_) | S::Failed { ending: None } | S::Off => ignored(spec, "exit", &self.state),
            },

            Event::Ready => match self.state {
                S::Starting { pid, since, .. } => {
                    say(spec.name, "ready after % ms", &[N(now.millis_since(since))]);
                    action = A::Unwatch;
                    Some(S::Ready { pid, since })
                }
                // Already ready, too late, or late news from an earlier run.
                S::Waiting { .. } | S::Ready { .. } | S::Stopping { .. } | S::Stopped | S::Exited(_) | S::Backoff { .. } | S::Failed { .. } | S::Off => None,
            },

            // Everything is going down: no debug client changes that.
            Event::Control(_) if ctx.shutdown.is_some() => {
                action = A::Refuse(Refusal::ShuttingDown);
                None
            }
            Event::Control(what) => match self.state {
                S::Starting { .. } | S::Ready { .. } if what == Control::Start => None,
                S::Starting { pid, .. } | S::Ready { pid, .. } => {
                    action = A::Stop { pid, signal: spec.stop_signal };
                    Some(S::Stopping { pid, escalation: Escalation::begin(now, spec.stop_grace_ms), then_start: what == Control::Restart })
                }
                // Remembered: what was asked last happens once it is down.
                S::Stopping { pid, escalation, .. } => Some(S::Stopping { pid, escalation, then_start: what != Control::Stop }),
                S::Failed { ending: Some(_) } => {
                    action = A::Refuse(Refusal::StillEnding);
                    None
                }
                // Not running: a stop is immediate; a start goes through the dependencies
                // with a fresh backoff (an explicit request overrides `keel.svc.NAME=off`).
                S::Waiting { .. } | S::Backoff { .. } | S::Stopped | S::Exited(_) | S::Failed { ending: None } | S::Off => {
                    if what == Control::Stop {
                        Some(S::Stopped)
                    } else {
                        self.backoff = Backoff::new(spec);
                        Some(S::Waiting { blocked_said: false })
                    }
                }
            },

            Event::Shutdown(deadline) => match self.state {
                S::Waiting { .. } | S::Backoff { .. } => Some(S::Stopped),
                // Readiness no longer matters: it stops once its dependents are down.
                S::Starting { pid, since, .. } => Some(S::Starting { pid, since, deadline: None }),
                S::Stopping { pid, escalation, .. } => Some(S::Stopping { pid, escalation: escalation.cap(deadline), then_start: false }),
                S::Ready { .. } | S::Stopped | S::Exited(_) | S::Failed { .. } | S::Off => None,
            },

            Event::DependentsDown(deadline) => match self.state {
                S::Starting { pid, .. } | S::Ready { pid, .. } => {
                    action = A::Stop { pid, signal: spec.stop_signal };
                    Some(S::Stopping { pid, escalation: Escalation::begin(now, spec.stop_grace_ms).cap(deadline), then_start: false })
                }
                // Already on its way down.
                S::Stopping { .. } | S::Failed { ending: Some(_) } => None,
                S::Waiting { .. } | S::Backoff { .. } | S::Stopped | S::Exited(_) | S::Failed { ending: None } | S::Off => ignored(spec, "dependents down", &self.state),
            },
        };
        if let Some(next) = next {
            self.set_state(spec, next);
        }
        action
    }

    /// The one place a state changes: the console line and the event for debug clients.
    fn set_state(&mut self, spec: &Spec, new: State) {
        let old = self.state;
        self.state = new;
        if old.name() != new.name() {
            say(spec.name, "% -> %", &[T(old.name().as_bytes()), T(new.name().as_bytes())]);
            crate::log::event(keel_proto::EventKind::ServiceState, spec.name.as_bytes(), new.name().as_bytes());
        }
    }

    fn after_exit(&mut self, spec: &Spec, status: ExitStatus, since: Instant, now: Instant, ctx: &Ctx) -> State {
        if ctx.shutdown.is_some() {
            return State::Stopped;
        }
        let success = status == ExitStatus::Exited(0);
        let restart = match spec.restart {
            _ if spec.oneshot && success => false,
            Restart::Always => true,
            Restart::OnFailure => !success,
            Restart::Never => false,
        };
        match (restart, success) {
            (true, _) => self.restart_after(spec, now, now.millis_since(since)),
            (false, true) => State::Exited(status),
            (false, false) => State::Failed { ending: None },
        }
    }

    fn restart_after(&mut self, spec: &Spec, now: Instant, ran_ms: u64) -> State {
        match self.backoff.after_run(spec, ran_ms) {
            Decision::RestartIn(ms) => {
                say(spec.name, "restart in % ms", &[N(ms)]);
                State::Backoff { until: now.plus_millis(ms) }
            }
            Decision::GiveUp => {
                say(spec.name, "% quick failures in a row: not restarting", &[N(spec.max_failures as u64)]);
                State::Failed { ending: None }
            }
        }
    }
}

/// A pair that cannot happen: said, and nothing changes.
#[inline(never)]
fn ignored(spec: &Spec, event: &str, state: &State) -> Option<State> {
    say(spec.name, "% while %: ignored", &[T(event.as_bytes()), T(state.name().as_bytes())]);
    None
}

/// `svc NAME: ` and `text` with each `%` filled from `args` (as `log::say` does), as one
/// console line: one call per line instead of an `info!` expansion at each of the
/// supervisor's many call sites.
#[inline(never)]
pub fn say(name: &str, text: &str, args: &[Part]) {
    let mut line = crate::log::begin();
    line.push_bytes(b"svc ");
    line.push_bytes(name.as_bytes());
    line.push_bytes(b": ");
    crate::log::say::fill(&mut line, text.as_bytes(), args);
    crate::log::emit(line)
}

#[cfg(test)]
mod tests;
