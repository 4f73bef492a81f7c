//! The one state machine for every service:
//! Waiting → Starting → Ready → Stopping → Stopped | Exited | Backoff | Failed (and Off,
//! disabled on the command line). Every change goes through `set_state`, which logs it.
//! The loop feeds it events (exits, output, readiness, time) and it acts: spawn, signal.

use super::backoff::{Backoff, Decision};
use super::ring::{Ring, ECHO_MAX};
use super::spawn::{spawn, SpawnError};
use super::spec::{Readiness, Restart, Spec, SERVICES};
use crate::clock::Instant;
use crate::event::{EventLoop, Source};
use crate::info;
use crate::log::{Bytes, Errno};
use crate::reaper::ExitStatus;
use keel_proto::ServiceState;
use rustix::fd::OwnedFd;

/// The runtime table holds exactly the services of the static one (keel-config/src/compiler.rs
/// refuses more than 128), so PID 1 carries no room it cannot use.
const MAX_SERVICES: usize = super::spec::SERVICE_COUNT;

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum State {
    Waiting,
    Starting { deadline: Option<Instant> },
    Ready,
    Stopping { kill_at: Instant, killed: bool },
    Stopped,
    Exited(ExitStatus),
    Backoff { until: Instant },
    Failed,
    Off,
}

impl State {
    /// The state as the debug protocol numbers and names it.
    pub fn wire(&self) -> ServiceState {
        match self {
            State::Waiting => ServiceState::Waiting,
            State::Starting { .. } => ServiceState::Starting,
            State::Ready => ServiceState::Ready,
            State::Stopping { .. } => ServiceState::Stopping,
            State::Stopped => ServiceState::Stopped,
            State::Exited(_) => ServiceState::Exited,
            State::Backoff { .. } => ServiceState::Backoff,
            State::Failed => ServiceState::Failed,
            State::Off => ServiceState::Off,
        }
    }

    pub fn name(&self) -> &'static str {
        self.wire().name().unwrap_or("?")
    }
}

struct Service {
    state: State,
    pid: i32,
    started: Instant,
    backoff: Backoff,
    output: Option<OwnedFd>,
    ready_pipe: Option<OwnedFd>,
    notify: Option<OwnedFd>,
    ring: Ring,
    /// Whether "blocked by a dependency" was already said.
    blocked_said: bool,
    /// Starts after the first.
    restarts: u32,
    /// Stopped on request, to be started again once down (a restart).
    then_start: bool,
}

/// What a debug client may ask of a service.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Control {
    Start,
    Stop,
    Restart,
}

pub struct Supervisor {
    services: heapless::Vec<Service, MAX_SERVICES>,
    /// All output rings, one window each (see `Ring`).
    rings: &'static mut [u8],
    /// Set once the power sequence asked everything to stop, with its global deadline.
    stopping: Option<Instant>,
}

impl Supervisor {
    /// `enabled(i)` says whether service i may run (`keel.svc.NAME=off`, `keel.single`).
    pub fn new(enabled: impl Fn(usize) -> bool) -> Supervisor {
        let mut services = heapless::Vec::new();
        let mut base = 0;
        for (i, spec) in SERVICES.iter().enumerate() {
            let state = if enabled(i) { State::Waiting } else { State::Off };
            let service = Service {
                state,
                pid: 0,
                started: Instant(0),
                backoff: Backoff::new(spec),
                output: None,
                ready_pipe: None,
                notify: None,
                ring: Ring::new(base, spec.ring),
                blocked_said: false,
                restarts: 0,
                then_start: false,
            };
            base += spec.ring;
            // Cannot fail: one slot per service.
            let _ = services.push(service);
        }
        for (i, s) in services.iter().enumerate() {
            if s.state == State::Off {
                info!("svc {}: off (command line)", SERVICES[i].name);
            }
        }
        Supervisor { services, rings: crate::sys::ring_storage(), stopping: None }
    }

    fn set_state(&mut self, i: usize, new: State) {
        let old = self.services[i].state;
        self.services[i].state = new;
        if old.name() != new.name() {
            info!("svc {}: {} -> {}", SERVICES[i].name, old.name(), new.name());
            crate::log::event(keel_proto::EventKind::ServiceState, SERVICES[i].name.as_bytes(), new.name().as_bytes());
        }
    }

    /// Act on time and on what changed: start, time out, stop. Called on every loop pass.
    pub fn poll(&mut self, now: Instant, events: &EventLoop) {
        // Starting one service can make another startable: repeat until nothing changes.
        for _ in 0..=SERVICES.len() {
            let mut changed = false;
            for i in 0..self.services.len() {
                changed |= self.poll_one(i, now, events);
            }
            if !changed {
                break;
            }
        }
    }

    fn poll_one(&mut self, i: usize, now: Instant, events: &EventLoop) -> bool {
        let spec = &SERVICES[i];
        let svc = &self.services[i];
        // A stop (on request or at shutdown) that outlived its grace.
        if let State::Stopping { kill_at, killed: false } = svc.state {
            if now >= kill_at {
                info!("svc {}: still running after its grace: SIGKILL", spec.name);
                signal_group(svc.pid, linux_raw_sys::general::SIGKILL);
                self.services[i].state = State::Stopping { kill_at, killed: true };
                return true;
            }
        }
        if let Some(deadline) = self.stopping {
            return self.poll_stop(i, now, deadline);
        }
        match svc.state {
            State::Waiting => match self.deps_state(i) {
                DepState::Ready => {
                    self.start(i, now, events);
                    true
                }
                DepState::Pending => false,
                DepState::Blocked(dep) => {
                    if !self.services[i].blocked_said {
                        self.services[i].blocked_said = true;
                        info!("svc {}: blocked, dependency {} is {}", spec.name, SERVICES[dep].name, self.services[dep].state.name());
                    }
                    false
                }
            },
            State::Backoff { until } if now >= until => {
                self.start(i, now, events);
                true
            }
            State::Starting { deadline: Some(d) } if now >= d => {
                info!("svc {}: not ready after {} ms: failed", spec.name, spec.ready_timeout_ms);
                signal_group(svc.pid, linux_raw_sys::general::SIGKILL);
                self.set_state(i, State::Failed);
                true
            }
            _ => false,
        }
    }

    /// During shutdown: services stop in reverse dependency order (a service stops once
    /// everything that depends on it is down), each with its own signal and grace.
    fn poll_stop(&mut self, i: usize, now: Instant, deadline: Instant) -> bool {
        let spec = &SERVICES[i];
        let svc = &self.services[i];
        match svc.state {
            State::Stopping { .. } => false,
            _ if svc.pid != 0 => {
                if !self.dependents_down(i) {
                    return false;
                }
                signal_group(svc.pid, spec.stop_signal);
                signal_group(svc.pid, linux_raw_sys::general::SIGCONT);
                let grace = now.plus_millis(spec.stop_grace_ms);
                self.set_state(i, State::Stopping { kill_at: if grace < deadline { grace } else { deadline }, killed: false });
                true
            }
            State::Waiting | State::Starting { .. } | State::Ready | State::Backoff { .. } => {
                self.set_state(i, State::Stopped);
                true
            }
            _ => false,
        }
    }

    fn start(&mut self, i: usize, now: Instant, events: &EventLoop) {
        let spec = &SERVICES[i];
        let mut env = heapless::Vec::<u8, 64>::new();
        let notify = if spec.ready == Readiness::Notify {
            match self.notify_socket(i, events, &mut env) {
                Ok(var) => Some(var),
                Err(e) => {
                    info!("svc {}: notify socket: {}", spec.name, Errno(e));
                    None
                }
            }
        } else {
            None
        };
        match spawn(spec, notify) {
            Ok(spawned) => {
                let svc = &mut self.services[i];
                if svc.started != Instant(0) {
                    svc.restarts += 1;
                }
                svc.pid = spawned.pid;
                svc.started = now;
                svc.blocked_said = false;
                if let Some(fd) = &spawned.output {
                    watch(events, fd, Source::Output(i as u8), spec.name);
                }
                if let Some(fd) = &spawned.ready_pipe {
                    watch(events, fd, Source::ReadyPipe(i as u8), spec.name);
                }
                svc.output = spawned.output;
                svc.ready_pipe = spawned.ready_pipe;
                info!("svc {}: started pid {}", spec.name, spawned.pid);
                let state = match (spec.oneshot, spec.ready) {
                    // A boot task is "ready" when it exits with 0.
                    (true, _) => State::Starting { deadline: None },
                    (false, Readiness::Exec) => State::Ready,
                    (false, _) => State::Starting { deadline: Some(now.plus_millis(spec.ready_timeout_ms)) },
                };
                self.set_state(i, state);
            }
            Err(SpawnError { step, errno }) => {
                info!("svc {}: {} {}: {}", spec.name, step.name(), Bytes(spec.argv.first().map_or(&b""[..], |p| p.to_bytes())), Errno(errno));
                // Out of memory or processes is worth another try; a missing binary is not.
                let transient = errno == rustix::io::Errno::AGAIN || errno == rustix::io::Errno::NOMEM;
                let next = if transient { self.restart_state(i, now, 0) } else { State::Failed };
                self.set_state(i, next);
            }
        }
    }

    /// The sd_notify socket of service i, `/run/keel/NAME.notify`, made once. A path, not an
    /// abstract name: those are shared by everyone in the network namespace (other keels).
    fn notify_socket<'e>(&mut self, i: usize, events: &EventLoop, env: &'e mut heapless::Vec<u8, 64>) -> Result<&'e core::ffi::CStr, rustix::io::Errno> {
        use rustix::net::{bind, socket_with, AddressFamily, SocketAddrUnix, SocketFlags, SocketType};
        let too_long = rustix::io::Errno::NAMETOOLONG;
        env.extend_from_slice(b"NOTIFY_SOCKET=/run/keel/").map_err(|_| too_long)?;
        env.extend_from_slice(SERVICES[i].name.as_bytes()).map_err(|_| too_long)?;
        env.extend_from_slice(b".notify\0").map_err(|_| too_long)?;
        let var = core::ffi::CStr::from_bytes_with_nul(env).map_err(|_| rustix::io::Errno::INVAL)?;
        if self.services[i].notify.is_none() {
            let path = &var.to_bytes_with_nul()[b"NOTIFY_SOCKET=".len()..];
            let path = core::ffi::CStr::from_bytes_with_nul(path).map_err(|_| rustix::io::Errno::INVAL)?;
            match rustix::fs::mkdir(c"/run/keel", rustix::fs::Mode::from_raw_mode(0o755)) {
                Ok(()) | Err(rustix::io::Errno::EXIST) => {}
                Err(e) => return Err(e),
            }
            let _ = rustix::fs::unlink(path);
            let sock = socket_with(AddressFamily::UNIX, SocketType::DGRAM, SocketFlags::CLOEXEC | SocketFlags::NONBLOCK, None)?;
            bind(&sock, &SocketAddrUnix::new(path)?)?;
            events.watch(&sock, Source::Notify(i as u8))?;
            self.services[i].notify = Some(sock);
        }
        Ok(var)
    }

    /// A child exited: if it was a service, decide what comes next. Returns whether it was.
    pub fn on_exit(&mut self, pid: i32, status: ExitStatus, now: Instant) -> bool {
        let Some(i) = self.services.iter().position(|s| s.pid == pid && pid != 0) else { return false };
        let spec = &SERVICES[i];
        self.services[i].pid = 0;
        // What it wrote just before exiting is still in the pipe: show it first.
        self.on_output(i);
        info!("svc {}: pid {} ended ({})", spec.name, pid, status);
        let dropped = self.services[i].ring.dropped();
        if dropped > 0 {
            info!("svc {}: {} bytes of output overwritten in its ring", spec.name, dropped);
        }
        let then_start = core::mem::take(&mut self.services[i].then_start);
        let next = match self.services[i].state {
            _ if self.stopping.is_some() => State::Stopped,
            State::Failed => State::Failed,
            // Stopped on request: a restart starts it again (through its dependencies).
            State::Stopping { .. } if then_start => State::Waiting,
            State::Stopping { .. } => State::Stopped,
            _ => self.after_exit(i, status, now),
        };
        self.set_state(i, next);
        true
    }

    fn after_exit(&mut self, i: usize, status: ExitStatus, now: Instant) -> State {
        let spec = &SERVICES[i];
        let success = status == ExitStatus::Exited(0);
        let restart = match spec.restart {
            _ if spec.oneshot && success => false,
            Restart::Always => true,
            Restart::OnFailure => !success,
            Restart::Never => false,
        };
        match (restart, success) {
            (true, _) => self.restart_state(i, now, now.millis_since(self.services[i].started)),
            (false, true) => State::Exited(status),
            (false, false) => State::Failed,
        }
    }

    fn restart_state(&mut self, i: usize, now: Instant, ran_ms: u64) -> State {
        let spec = &SERVICES[i];
        match self.services[i].backoff.after_run(spec, ran_ms) {
            Decision::RestartIn(ms) => {
                info!("svc {}: restart in {} ms", spec.name, ms);
                State::Backoff { until: now.plus_millis(ms) }
            }
            Decision::GiveUp => {
                info!("svc {}: {} quick failures in a row: not restarting", spec.name, spec.max_failures);
                State::Failed
            }
        }
    }

    /// Output is readable: into the ring, and echoed line by line. Bounded work per call,
    /// so a flooding service cannot starve the loop.
    pub fn on_output(&mut self, i: usize) {
        let Some(svc) = self.services.get_mut(i) else { return };
        let Some(fd) = &svc.output else { return };
        let mut buf = [0u8; 1024];
        for _ in 0..8 {
            match rustix::io::read(fd, &mut buf) {
                Ok(0) => {
                    svc.output = None; // EOF: closing also removes it from epoll
                    break;
                }
                Ok(n) => svc.ring.write(self.rings, &buf[..n]),
                Err(rustix::io::Errno::INTR) => continue,
                Err(_) => break,
            }
        }
        let mut line = [0u8; ECHO_MAX];
        while let Some(text) = svc.ring.next_echo(self.rings, &mut line) {
            crate::log::service_line(i, SERVICES[i].name, text, SERVICES[i].echo);
        }
    }

    /// The notification fd: a newline means ready.
    pub fn on_ready_pipe(&mut self, i: usize, now: Instant) {
        let Some(fd) = self.services.get(i).and_then(|s| s.ready_pipe.as_ref()) else { return };
        let mut buf = [0u8; 64];
        match rustix::io::read(fd, &mut buf) {
            Ok(0) => self.services[i].ready_pipe = None,
            Ok(n) if buf[..n].contains(&b'\n') => {
                self.services[i].ready_pipe = None;
                self.mark_ready(i, now);
            }
            _ => {}
        }
    }

    /// sd_notify datagrams: newline-separated assignments; `READY=1` means ready.
    pub fn on_notify(&mut self, i: usize, now: Instant) {
        let Some(fd) = self.services.get(i).and_then(|s| s.notify.as_ref()) else { return };
        let mut buf = [0u8; 512];
        let mut ready = false;
        while let Ok((n, _)) = rustix::net::recv(fd, &mut buf, rustix::net::RecvFlags::DONTWAIT) {
            ready |= buf[..n.min(buf.len())].split(|&b| b == b'\n').any(|l| l == b"READY=1");
        }
        if ready {
            self.mark_ready(i, now);
        }
    }

    fn mark_ready(&mut self, i: usize, now: Instant) {
        if let State::Starting { .. } = self.services[i].state {
            info!("svc {}: ready after {} ms", SERVICES[i].name, now.millis_since(self.services[i].started));
            self.set_state(i, State::Ready);
        }
    }

    /// A debug client's request. Refused during shutdown.
    pub fn control(&mut self, i: usize, what: Control, now: Instant) -> Result<(), &'static str> {
        if self.stopping.is_some() {
            return Err("shutting down");
        }
        let spec = SERVICES.get(i).ok_or("no such service")?;
        let svc = &mut self.services[i];
        info!("svc {}: {} requested", spec.name, match what { Control::Start => "start", Control::Stop => "stop", Control::Restart => "restart" });
        match (what, svc.pid != 0) {
            (Control::Start, true) => {}
            (Control::Stop | Control::Restart, true) => {
                svc.then_start = what == Control::Restart;
                if !matches!(svc.state, State::Stopping { .. }) {
                    signal_group(svc.pid, spec.stop_signal);
                    signal_group(svc.pid, linux_raw_sys::general::SIGCONT);
                    self.set_state(i, State::Stopping { kill_at: now.plus_millis(spec.stop_grace_ms), killed: false });
                }
            }
            (Control::Stop, false) => self.set_state(i, State::Stopped),
            (Control::Start | Control::Restart, false) => {
                svc.backoff = Backoff::new(spec);
                svc.blocked_said = false;
                self.set_state(i, State::Waiting);
            }
        }
        Ok(())
    }

    /// Each service's name, state, pid (0: none) and restart count.
    pub fn entries(&self) -> impl Iterator<Item = (&'static str, State, i32, u32)> + '_ {
        SERVICES.iter().zip(self.services.iter()).map(|(spec, s)| (spec.name, s.state, s.pid, s.restarts))
    }

    /// The power sequence starts: stop everything, in reverse dependency order, by `deadline`.
    pub fn begin_stop(&mut self, deadline: Instant) {
        self.stopping = Some(deadline);
    }

    /// No service process is left.
    pub fn all_down(&self) -> bool {
        self.services.iter().all(|s| s.pid == 0)
    }

    /// The nearest time a service needs attention.
    pub fn poll_at(&self) -> Option<Instant> {
        self.services
            .iter()
            .filter_map(|s| match s.state {
                State::Backoff { until } => Some(until),
                State::Starting { deadline } => deadline,
                State::Stopping { kill_at, killed: false } => Some(kill_at),
                _ => None,
            })
            .min()
    }

    fn deps_state(&self, i: usize) -> DepState {
        let mut pending = false;
        for d in SERVICES[i].deps.iter().map(|&d| d as usize) {
            match self.services[d].state {
                State::Ready => {}
                State::Exited(ExitStatus::Exited(0)) if SERVICES[d].oneshot => {}
                State::Failed | State::Off | State::Exited(_) => return DepState::Blocked(d),
                _ => pending = true,
            }
        }
        if pending { DepState::Pending } else { DepState::Ready }
    }

    fn dependents_down(&self, i: usize) -> bool {
        SERVICES.iter().zip(self.services.iter()).all(|(spec, svc)| svc.pid == 0 || !spec.deps.contains(&(i as u8)))
    }
}

enum DepState {
    Ready,
    Pending,
    Blocked(usize),
}

/// Services run in their own session, so their process group is their pid.
fn signal_group(pid: i32, signo: u32) {
    if pid > 0 {
        let _ = crate::sys::kill(-pid, signo);
    }
}

fn watch(events: &EventLoop, fd: &OwnedFd, source: Source, name: &str) {
    if let Err(e) = events.watch(fd, source) {
        info!("svc {}: cannot watch its descriptor: {}", name, Errno(e));
    }
}

/// Whether a service may run given `keel.svc.NAME=off` and `keel.single` (only the
/// services with a terminal: the console shells).
pub fn enabled(spec: &Spec, off: bool, single: bool) -> bool {
    !off && (!single || spec.tty.is_some())
}
