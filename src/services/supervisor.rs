//! The supervisor's runtime: the pure table of state machines (table.rs, machine.rs) plus
//! what they cannot do themselves: fork/exec (spawn.rs), epoll, signals, and reading each
//! service's output, notification fd and sd_notify socket. Outcomes go back as events.

use super::machine::{say, Action, Event};
use crate::log::say::Part::{E, N, T};
use super::ring::{Ring, ECHO_MAX};
use super::spawn::{spawn, SpawnError};
use super::spec::{Readiness, Spec};
use super::table::{Effects, Table};
use crate::clock::Instant;
use crate::event::{EventLoop, Source};
use crate::reaper::ExitStatus;
use keel_proto::ServiceState;
use rustix::fd::OwnedFd;

pub use super::machine::{Control, State};

/// Room for exactly the services of the compiled table (keel-config refuses more than 128),
/// so PID 1 carries no slot it cannot use.
const MAX_SERVICES: usize = keel_config::db::MAX_SERVICES;

/// A service's descriptors and output ring.
pub struct Io {
    output: Option<OwnedFd>,
    ready_pipe: Option<OwnedFd>,
    notify: Option<OwnedFd>,
    ring: Ring,
}

/// The supervisor's tables, in .bss (`sys::supervisor_storage`): 128 services' records
/// built on the stack and moved into place would cost PID 1 ~30 KiB of stack pages that
/// stay resident for good; in .bss only the pages of the services there are get touched.
/// All zero bytes as `EMPTY`, so it stays in .bss (see `Table::specs`).
pub struct Tables {
    table: Table<MAX_SERVICES>,
    io: heapless::Vec<Io, MAX_SERVICES>,
}

impl Tables {
    pub const EMPTY: Tables = Tables { table: Table::EMPTY, io: heapless::Vec::new() };
}

pub struct Supervisor {
    specs: &'static [Spec<'static>],
    table: &'static mut Table<MAX_SERVICES>,
    io: &'static mut heapless::Vec<Io, MAX_SERVICES>,
    /// All output rings, one window each (see `Ring`).
    rings: &'static mut [u8],
}

impl Supervisor {
    /// `enabled(i, spec)` says whether service i may run (`keel.svc.NAME=off`, `keel.single`).
    /// PID 1 has one supervisor, made once.
    pub fn new(specs: &'static [Spec<'static>], enabled: impl Fn(usize, &Spec) -> bool) -> Supervisor {
        let Some(tables) = crate::sys::supervisor_storage() else { crate::log::say::die(b"services: a second supervisor", &[]) };
        tables.table.set(specs, enabled);
        let specs = tables.table.specs();
        let mut base = 0;
        tables.io.clear();
        for spec in specs {
            // Cannot fail: the table kept as many as there is room for.
            let _ = tables.io.push(Io { output: None, ready_pipe: None, notify: None, ring: Ring::new(base, spec.ring) });
            base += spec.ring;
        }
        Supervisor { specs, table: &mut tables.table, io: &mut tables.io, rings: crate::sys::ring_storage() }
    }

    /// Act on time and on what changed. Called on every loop pass.
    pub fn poll(&mut self, now: Instant, events: &EventLoop) {
        self.table.poll(now, &mut Runtime { specs: self.specs, io: &mut *self.io, events: Some(events) });
    }

    /// A child exited: if it was a service, decide what comes next. Returns whether it was.
    pub fn on_exit(&mut self, pid: i32, status: ExitStatus, now: Instant) -> bool {
        let Some(i) = self.table.find_pid(pid) else { return false };
        let Some(spec) = self.table.specs().get(i) else { return false };
        // What it wrote just before exiting is still in the pipe: show it first.
        self.on_output(i);
        let (how, n) = match status {
            ExitStatus::Exited(code) => ("exit", code),
            ExitStatus::Signaled(signo) => ("signal", signo),
        };
        say(spec.name, "pid % ended (% %)", &[N(pid as u64), T(how.as_bytes()), N(n as u64)]);
        let dropped = self.io.get(i).map_or(0, |s| s.ring.dropped());
        if dropped > 0 {
            say(spec.name, "% bytes of output overwritten in its ring", &[N(dropped)]);
        }
        self.table.on_exit(pid, status, now, &mut Runtime { specs: self.specs, io: &mut *self.io, events: None });
        true
    }

    /// Output is readable: into the ring, and echoed line by line. Bounded work per call,
    /// so a flooding service cannot starve the loop.
    pub fn on_output(&mut self, i: usize) {
        let (Some(io), Some(spec)) = (self.io.get_mut(i), self.table.specs().get(i)) else { return };
        // The spec says which descriptors a service has (spawn.rs): checked first, so a
        // compiled table without such services carries no code for them.
        if spec.tty.is_some() {
            return;
        }
        let Some(fd) = &io.output else { return };
        let mut buf = [0u8; 1024];
        for _ in 0..8 {
            match rustix::io::read(crate::sys::fd::borrow(fd), &mut buf) {
                Ok(0) => {
                    io.output = None; // EOF: closing also removes it from epoll
                    break;
                }
                Ok(n) => io.ring.write(self.rings, buf.get(..n).unwrap_or_default()),
                Err(rustix::io::Errno::INTR) => continue,
                Err(_) => break,
            }
        }
        let mut line = [0u8; ECHO_MAX];
        while let Some(text) = io.ring.next_echo(self.rings, &mut line) {
            crate::log::service_line(i, spec.name, text, spec.echo);
        }
    }

    /// The notification fd: a newline means ready.
    pub fn on_ready_pipe(&mut self, i: usize, now: Instant) {
        let (Some(io), Some(spec)) = (self.io.get_mut(i), self.table.specs().get(i)) else { return };
        if !matches!(spec.ready, Readiness::Fd(_)) {
            return;
        }
        let Some(fd) = &io.ready_pipe else { return };
        let mut buf = [0u8; 64];
        match rustix::io::read(fd, &mut buf) {
            Ok(0) => io.ready_pipe = None,
            Ok(n) if buf.get(..n).unwrap_or_default().contains(&b'\n') => self.ready(i, now),
            _ => {}
        }
    }

    /// sd_notify datagrams: newline-separated assignments; `READY=1` means ready.
    pub fn on_notify(&mut self, i: usize, now: Instant) {
        if self.table.specs().get(i).is_none_or(|spec| spec.ready != Readiness::Notify) {
            return;
        }
        let Some(fd) = self.io.get(i).and_then(|s| s.notify.as_ref()) else { return };
        let mut buf = [0u8; 512];
        let mut ready = false;
        while let Ok((n, _)) = rustix::net::recv(fd, &mut buf, rustix::net::RecvFlags::DONTWAIT) {
            ready |= buf[..n.min(buf.len())].split(|&b| b == b'\n').any(|l| l == b"READY=1");
        }
        if ready {
            self.ready(i, now);
        }
    }

    fn ready(&mut self, i: usize, now: Instant) {
        self.table.handle(i, Event::Ready, now, &mut Runtime { specs: self.specs, io: &mut *self.io, events: None });
    }

    /// A debug client's request. Refused during shutdown.
    pub fn control(&mut self, i: usize, what: Control, now: Instant) -> Result<(), &'static str> {
        self.table.control(i, what, now, &mut Runtime { specs: self.specs, io: &mut *self.io, events: None })
    }

    /// Each service's name, state, pid (0: none) and restart count, as debug clients see them.
    pub fn entries(&self) -> impl Iterator<Item = (&'static str, ServiceState, i32, u32)> + '_ {
        self.table.entries().map(|(spec, state, restarts)| (spec.name, state.wire(), state.pid().unwrap_or(0), restarts))
    }

    /// The power sequence starts: stop everything, in reverse dependency order, by `deadline`.
    pub fn begin_stop(&mut self, deadline: Instant) {
        self.table.begin_stop(deadline, Instant::now(), &mut Runtime { specs: self.specs, io: &mut *self.io, events: None });
    }

    /// No service process is left.
    pub fn all_down(&self) -> bool {
        self.table.all_down()
    }

    /// The nearest time a service needs attention.
    pub fn poll_at(&self) -> Option<Instant> {
        self.table.poll_at()
    }
}

/// Does what the state machines ask, with the services' descriptors.
struct Runtime<'a> {
    specs: &'static [Spec<'static>],
    io: &'a mut heapless::Vec<Io, MAX_SERVICES>,
    /// Only a poll may spawn: elsewhere a start waits for the next pass (they come at once).
    events: Option<&'a EventLoop>,
}

impl Effects for Runtime<'_> {
    fn perform(&mut self, i: usize, action: Action) -> Option<Event> {
        let (Some(spec), Some(io)) = (self.specs.get(i), self.io.get_mut(i)) else { return None };
        match action {
            Action::Spawn => {
                let events = self.events?;
                let mut env = heapless::Vec::<u8, 64>::new();
                let notify = match spec.ready {
                    Readiness::Notify => match notify_socket(io, i, spec, events, &mut env) {
                        Ok(var) => Some(var),
                        Err(e) => {
                            say(spec.name, "notify socket: %", &[E(e)]);
                            None
                        }
                    },
                    Readiness::Exec | Readiness::Fd(_) => None,
                };
                match spawn(spec, notify) {
                    Ok(spawned) => {
                        io.output = spawned.output;
                        io.ready_pipe = spawned.ready_pipe;
                        Some(Event::Spawned(spawned.pid))
                    }
                    Err(SpawnError { step, errno }) => {
                        let program = spec.argv.first().map_or(&b""[..], |p| p.to_bytes());
                        say(spec.name, "% %: %", &[T(step.name().as_bytes()), T(program), E(errno)]);
                        Some(Event::SpawnFailed(errno))
                    }
                }
            }
            Action::Watch => {
                let events = self.events?;
                let watch = |fd: &Option<OwnedFd>, source| {
                    if let Some(Err(e)) = fd.as_ref().map(|fd| events.watch(crate::sys::fd::borrow(fd), source)) {
                        say(spec.name, "cannot watch its descriptor: %", &[E(e)]);
                    }
                };
                // What spawn made for this kind of service (see on_output).
                if spec.tty.is_none() {
                    watch(&io.output, Source::Output(i as u8));
                }
                if let Readiness::Fd(_) = spec.ready {
                    watch(&io.ready_pipe, Source::ReadyPipe(i as u8));
                }
                None
            }
            Action::Unwatch => {
                io.ready_pipe = None;
                None
            }
            Action::Stop { pid, signal } => {
                signal_group(pid, signal);
                signal_group(pid, linux_raw_sys::general::SIGCONT);
                None
            }
            Action::Kill { pid } => {
                signal_group(pid, linux_raw_sys::general::SIGKILL);
                None
            }
            Action::Nothing | Action::Refuse(_) => None,
        }
    }
}

/// The sd_notify socket of service i, `/run/keel/NAME.notify`, made once. A path, not an
/// abstract name: those are shared by everyone in the network namespace (other keels).
fn notify_socket<'e>(io: &mut Io, i: usize, spec: &Spec, events: &EventLoop, env: &'e mut heapless::Vec<u8, 64>) -> Result<&'e core::ffi::CStr, rustix::io::Errno> {
    use rustix::fd::AsFd;
    use crate::sys::fd::socket_with;
    use rustix::net::{AddressFamily, SocketFlags, SocketType};
    let too_long = rustix::io::Errno::NAMETOOLONG;
    env.extend_from_slice(b"NOTIFY_SOCKET=/run/keel/").map_err(|_| too_long)?;
    env.extend_from_slice(spec.name.as_bytes()).map_err(|_| too_long)?;
    env.extend_from_slice(b".notify\0").map_err(|_| too_long)?;
    let var = core::ffi::CStr::from_bytes_with_nul(env).map_err(|_| rustix::io::Errno::INVAL)?;
    if io.notify.is_none() {
        let path = var.to_bytes_with_nul().get(b"NOTIFY_SOCKET=".len()..).unwrap_or_default();
        let path = core::ffi::CStr::from_bytes_with_nul(path).map_err(|_| rustix::io::Errno::INVAL)?;
        match rustix::fs::mkdir(c"/run/keel", rustix::fs::Mode::from_raw_mode(0o755)) {
            Ok(()) | Err(rustix::io::Errno::EXIST) => {}
            Err(e) => return Err(e),
        }
        let _ = rustix::fs::unlink(path);
        let sock = socket_with(AddressFamily::UNIX, SocketType::DGRAM, SocketFlags::CLOEXEC | SocketFlags::NONBLOCK, None)?;
        crate::sys::bind_unix(sock.as_fd(), path)?;
        events.watch(crate::sys::fd::borrow(&sock), Source::Notify(i as u8))?;
        io.notify = Some(sock);
    }
    Ok(var)
}

/// Services run in their own session, so their process group is their pid.
fn signal_group(pid: i32, signo: u32) {
    if pid > 0 {
        let _ = crate::sys::kill(-pid, signo);
    }
}

/// Whether a service may run given `keel.svc.NAME=off` and `keel.single` (only the
/// services with a terminal: the console shells).
pub fn enabled(spec: &Spec, off: bool, single: bool) -> bool {
    !off && (!single || spec.tty.is_some())
}
