//! The services together, pure: which events each one gets (time, its dependencies, the
//! shutdown's reverse order), from the spec table handed over at construction. What the
//! steps ask for is done by an `Effects` (the real one forks and signals: supervisor.rs;
//! tests record). At most `N` services; the compiler refuses more than 128.

use super::machine::{say, Action, Control, Ctx, Deps, Event, Service, State};
use crate::log::say::Part::T;
use super::spec::Spec;
use crate::clock::Instant;
use crate::reaper::ExitStatus;

/// Does what a step asks for. The outcome of a spawn comes back as the next event.
pub trait Effects {
    fn perform(&mut self, i: usize, action: Action) -> Option<Event>;
}

pub struct Table<const N: usize> {
    /// None before `set`: all zero bytes, so a `static` of it stays in .bss (an empty
    /// slice's pointer is not null, and would put the whole table in .data).
    specs: Option<&'static [Spec<'static>]>,
    services: heapless::Vec<Service, N>,
    /// The shutdown's global deadline, once it began.
    shutdown: Option<Instant>,
}

impl<const N: usize> Table<N> {
    /// No services: what `set` fills in place (PID 1's table lives in .bss, not on the stack).
    pub const EMPTY: Table<N> = Table { specs: None, services: heapless::Vec::new(), shutdown: None };

    /// `enabled(i, spec)` says whether service i may run (`keel.svc.NAME=off`, `keel.single`).
    pub fn new(specs: &'static [Spec<'static>], enabled: impl Fn(usize, &Spec) -> bool) -> Table<N> {
        let mut table = Table::EMPTY;
        table.set(specs, enabled);
        table
    }

    /// Start over with `specs`, in place (see `new`).
    pub fn set(&mut self, specs: &'static [Spec<'static>], enabled: impl Fn(usize, &Spec) -> bool) {
        if specs.len() > N {
            crate::log::say::say(b"services: room for the first % only", &[crate::log::say::Part::N(N as u64)]);
        }
        let specs = specs.get(..N).unwrap_or(specs);
        self.specs = Some(specs);
        self.services.clear();
        self.shutdown = None;
        for (i, spec) in specs.iter().enumerate() {
            let on = enabled(i, spec);
            if !on {
                say(spec.name, "off (command line)", &[]);
            }
            // Cannot fail: at most N.
            let _ = self.services.push(Service::new(spec, on));
        }
    }

    fn len(&self) -> usize {
        self.services.len()
    }

    /// The specs of the services there was room for (as many as `services`: see `set`).
    pub fn specs(&self) -> &'static [Spec<'static>] {
        self.specs.unwrap_or_default()
    }

    fn services(&self) -> &[Service] {
        &self.services
    }

    pub fn state(&self, i: usize) -> Option<State> {
        self.services().get(i).map(|s| s.state)
    }

    /// Each service's spec, state and restart count.
    pub fn entries(&self) -> impl Iterator<Item = (&'static Spec<'static>, State, u32)> + '_ {
        self.specs().iter().zip(self.services()).map(|(spec, s)| (spec, s.state, s.restarts()))
    }

    pub fn find(&self, name: &[u8]) -> Option<usize> {
        self.specs().iter().position(|s| s.name.as_bytes() == name)
    }

    /// The service whose process is `pid`.
    pub fn find_pid(&self, pid: i32) -> Option<usize> {
        self.services().iter().position(|s| s.state.pid() == Some(pid))
    }

    /// Give service i `event` and do what it asks; a spawn's outcome goes straight back
    /// (Spawn → Spawned → Watch). Returns the first action.
    pub fn handle(&mut self, i: usize, event: Event, now: Instant, fx: &mut impl Effects) -> Action {
        let Some(spec) = self.specs().get(i) else { return Action::Nothing };
        // Only a poll looks at the dependencies.
        let deps = if event == Event::Poll { self.deps(i) } else { Deps::Pending };
        let ctx = Ctx { deps, shutdown: self.shutdown };
        let Some(service) = self.services.get_mut(i) else { return Action::Nothing };
        let first = service.step(spec, event, now, &ctx);
        let mut action = first;
        for _ in 0..2 {
            match fx.perform(i, action) {
                Some(outcome) => action = service.step(spec, outcome, now, &ctx),
                None => break,
            }
        }
        first
    }

    /// Act on time and on what changed: start, time out, stop. Called on every loop pass.
    pub fn poll(&mut self, now: Instant, fx: &mut impl Effects) {
        // One service becoming ready (or down, at shutdown) can let another move: repeat
        // until nothing changes.
        for _ in 0..=self.len() {
            let mut changed = false;
            // What changes others (a start, a stop, an exit seen) comes with an action.
            for i in 0..self.len() {
                changed |= !matches!(self.handle(i, Event::Poll, now, fx), Action::Nothing);
                if let Some(deadline) = self.shutdown {
                    if self.services().get(i).is_some_and(|s| s.state.pid().is_some()) && self.dependents_down(i) {
                        changed |= !matches!(self.handle(i, Event::DependentsDown(deadline), now, fx), Action::Nothing);
                    }
                }
            }
            if !changed {
                break;
            }
        }
    }

    /// A child exited: if it was a service's, the service is told. Returns which service.
    pub fn on_exit(&mut self, pid: i32, status: ExitStatus, now: Instant, fx: &mut impl Effects) -> Option<usize> {
        let i = self.find_pid(pid)?;
        self.handle(i, Event::Exited(status), now, fx);
        Some(i)
    }

    /// A debug client's request.
    pub fn control(&mut self, i: usize, what: Control, now: Instant, fx: &mut impl Effects) -> Result<(), &'static str> {
        let spec = self.specs().get(i).ok_or("no such service")?;
        say(spec.name, "% requested", &[T(what.name().as_bytes())]);
        match self.handle(i, Event::Control(what), now, fx) {
            Action::Refuse(why) => Err(why.text()),
            _ => Ok(()),
        }
    }

    /// The power sequence starts: stop everything, in reverse dependency order, by `deadline`.
    pub fn begin_stop(&mut self, deadline: Instant, now: Instant, fx: &mut impl Effects) {
        self.shutdown = Some(deadline);
        for i in 0..self.len() {
            self.handle(i, Event::Shutdown(deadline), now, fx);
        }
    }

    /// No service process is left.
    pub fn all_down(&self) -> bool {
        self.services().iter().all(|s| s.state.pid().is_none())
    }

    /// The nearest time a service needs attention.
    pub fn poll_at(&self) -> Option<Instant> {
        self.services().iter().filter_map(|s| s.state.poll_at()).min()
    }

    /// Whether service i may start: each dependency ready (a oneshot: exited 0).
    pub fn deps(&self, i: usize) -> Deps {
        let mut pending = false;
        for &d in self.specs().get(i).map_or(&[][..], |s| s.deps) {
            let (Some(dep), Some(state)) = (self.specs().get(d as usize), self.state(d as usize)) else {
                return Deps::Blocked { name: "?", state: State::Off.name() };
            };
            match state {
                State::Ready { .. } => {}
                State::Exited(ExitStatus::Exited(0)) if dep.oneshot => {}
                State::Failed { .. } | State::Off | State::Exited(_) => return Deps::Blocked { name: dep.name, state: state.name() },
                State::Waiting { .. } | State::Starting { .. } | State::Stopping { .. } | State::Stopped | State::Backoff { .. } => {
                    pending = true
                }
            }
        }
        if pending {
            Deps::Pending
        } else {
            Deps::Ready
        }
    }

    /// Nothing that depends on service i has a process any more.
    pub fn dependents_down(&self, i: usize) -> bool {
        self.specs().iter().zip(self.services()).all(|(spec, s)| s.state.pid().is_none() || !spec.deps.contains(&(i as u8)))
    }
}

#[cfg(test)]
mod tests;
