//! The channels keel serves and their clients: listeners accept connections (unix, vsock),
//! a device channel is one client from the start; every loop pass moves each client's
//! output along (`pump`).

use super::channel;
use super::client::Client;
use super::{readable, victim, MAX_CLIENTS, MAX_LISTENERS};
use crate::clock::Instant;
use crate::event::{EventLoop, Source};
use crate::log::say::{say, Part::{E, N, T}};
use crate::power::PowerCmd;
use crate::services::supervisor::Supervisor;
use crate::sys::TryLock;
use keel_config::channel::{Channel, Kind};
use rustix::fd::OwnedFd;

struct Listener {
    fd: OwnedFd,
    writable: bool,
}

/// What the server may touch in the rest of PID 1 while answering.
pub struct Ctx<'a> {
    pub services: &'a mut Supervisor,
    /// Set by a Power request: the loop starts the power sequence.
    pub power: Option<PowerCmd>,
    pub ready: Instant,
    /// Which configuration runs (its path, or `built-in`), for Status.
    pub config: &'a [u8],
}

#[derive(Default)]
pub struct Server {
    listeners: heapless::Vec<Listener, MAX_LISTENERS>,
    /// Events of clients so far: the clock their idleness is measured by.
    tick: u64,
}

/// The clients' state, buffers included, in .bss (an empty heapless::Vec is all zeros):
/// memory is touched only as clients come, and it is never copied around with the server.
static CLIENTS: TryLock<heapless::Vec<Client, MAX_CLIENTS>> = TryLock::new(heapless::Vec::new());

/// Run `f` on the clients (None only if called from inside another `with_clients`).
fn with_clients<R>(f: impl FnOnce(&mut heapless::Vec<Client, MAX_CLIENTS>) -> R) -> Option<R> {
    CLIENTS.with(f)
}

fn position(clients: &[Client], slot: usize) -> Option<usize> {
    clients.iter().position(|c| c.slot as usize == slot)
}

/// The client at `at` has gone away (or failed): a socket is closed (which takes it out of
/// epoll too), a device waits for its peer to come back.
fn gone(clients: &mut heapless::Vec<Client, MAX_CLIENTS>, at: usize, events: &EventLoop) {
    match clients.get_mut(at) {
        Some(device) if device.device => device.hang_up(events),
        Some(_) => drop(clients.swap_remove(at)),
        None => {}
    }
}

/// Close the client stalled or idle longest (see `victim`), telling it why; its slot.
#[inline(never)] // smaller out of line (`just size`)
fn evict() -> Option<usize> {
    with_clients(|clients| {
        let at = victim(clients.iter().map(|c| (!c.device).then_some((!c.tx.is_empty(), c.active))))?;
        let client = clients.get_mut(at)?;
        let slot = client.slot as usize;
        client.evict();
        say(b"debug client % evicted: a new client needed the slot", &[N(slot as u64)]);
        clients.swap_remove(at);
        Some(slot)
    })
    .flatten()
}

impl Server {
    /// Open every channel in `specs`; problems are logged and the channel is skipped.
    pub fn open<'s>(specs: impl Iterator<Item = &'s [u8]>, events: &EventLoop) -> Server {
        let mut server = Server::default();
        for text in specs {
            let spec = match Channel::parse(text) {
                Ok(spec) => spec,
                Err(e) => {
                    say(b"debug channel %: %", &[T(text), T(e.text().as_bytes())]);
                    continue;
                }
            };
            if let Err(e) = server.open_one(&spec, events) {
                say(b"debug channel %: %", &[T(text), E(e)]);
            } else {
                let access = match spec.kind {
                    Kind::Device { shared: true, .. } => "shared line, output only",
                    _ if spec.writable => "read-write",
                    _ => "read-only",
                };
                say(b"debug channel % (%)", &[T(text), T(access.as_bytes())]);
            }
        }
        server
    }

    fn open_one(&mut self, spec: &Channel, events: &EventLoop) -> Result<(), rustix::io::Errno> {
        use rustix::io::Errno as E;
        if let Kind::Device { name, baud, shared } = spec.kind {
            let fd = channel::open_device(name, baud)?;
            let slot = self.free_slot().ok_or(E::MFILE)?;
            return self.add_client(slot, fd, spec.writable && !shared, shared, true, events);
        }
        let listener = channel::listen(&spec.kind)?;
        let index = self.listeners.len() as u8;
        events.watch(crate::sys::fd::borrow(&listener), Source::DebugListener(index))?;
        self.listeners.push(Listener { fd: listener, writable: spec.writable }).map_err(|_| E::MFILE)
    }

    fn free_slot(&self) -> Option<usize> {
        with_clients(|clients| (0..MAX_CLIENTS).find(|&slot| position(clients, slot).is_none())).flatten()
    }

    fn add_client(&mut self, slot: usize, fd: OwnedFd, writable: bool, shared: bool, device: bool, events: &EventLoop) -> Result<(), rustix::io::Errno> {
        // A shared line is never read (see the module comment): only its output is watched.
        if !shared {
            events.watch(crate::sys::fd::borrow(&fd), Source::DebugClient(slot as u8))?;
        }
        self.tick += 1;
        let client = Client::new(slot as u8, fd, writable, shared, device, self.tick);
        with_clients(|clients| clients.push(client).ok()).flatten().ok_or(rustix::io::Errno::MFILE)
    }

    /// A listener is readable: take every pending connection.
    pub fn accept(&mut self, index: usize, events: &EventLoop) {
        let Some(writable) = self.listeners.get(index).map(|l| l.writable) else { return };
        let flags = rustix::net::SocketFlags::CLOEXEC | rustix::net::SocketFlags::NONBLOCK;
        while let Some(Ok(fd)) = self.listeners.get(index).map(|l| crate::sys::fd::accept_with(rustix::fd::AsFd::as_fd(&l.fd), flags)) {
            // A new client always gets in (a stalled one must not lock debugging out).
            match self.free_slot().or_else(evict) {
                Some(slot) => {
                    if let Err(e) = self.add_client(slot, fd, writable, false, false, events) {
                        say(b"debug client: %", &[E(e)]);
                    }
                }
                None => say(b"debug client refused: % device channels", &[N(MAX_CLIENTS as u64)]),
            }
        }
    }

    /// A client's fd is ready: read its requests and answer them.
    pub fn on_client(&mut self, slot: usize, ctx: &mut Ctx, events: &EventLoop) {
        with_clients(|clients| {
            let Some(at) = position(clients, slot) else { return };
            let client = &mut clients[at];
            self.tick += 1;
            client.active = self.tick;
            let following_kmsg = client.dmesg.is_some();
            if !client.read_requests(ctx) {
                // Still hung up, or gone now.
                if !client.offline {
                    gone(clients, at, events);
                }
                return;
            }
            if client.offline {
                client.comes_back(events);
            }
            // A dmesg follow began: its /dev/kmsg joins the loop (it leaves when closed).
            if let (false, Some(d)) = (following_kmsg, &client.dmesg) {
                if d.follow {
                    let _ = events.watch_edge(crate::sys::fd::borrow(&d.kmsg.fd), Source::Kmsg(slot as u8));
                }
            }
        });
        self.pump_one(slot, ctx.services, events);
    }

    /// Send what the streams have new, and flush. Called on every loop pass.
    pub fn pump(&mut self, services: &Supervisor, events: &EventLoop) {
        for slot in 0..MAX_CLIENTS {
            self.pump_one(slot, services, events);
        }
    }

    #[inline(never)] // smaller out of line (`just size`)

    fn pump_one(&mut self, slot: usize, services: &Supervisor, events: &EventLoop) {
        with_clients(|clients| {
            let Some(at) = position(clients, slot) else { return };
            let client = &mut clients[at];
            if client.offline {
                return;
            }
            // Streams stop when the output buffer is full; "more" keeps the wake-ups coming
            // (through EPOLLOUT) until they are done.
            let more = client.stream_all(services);
            if client.flush().is_err() || client.failed {
                gone(clients, at, events);
                return;
            }
            // Writable: only while something is pending (no busy loop when idle); readable:
            // only while replies fit (the rest waits in the fd).
            let armed = (readable(client.room()) > 0, !client.tx.is_empty() || more);
            if armed != client.armed && !client.shared {
                client.armed = armed;
                let _ = events.rewatch(crate::sys::fd::borrow(&client.fd), Source::DebugClient(slot as u8), armed.0, armed.1);
            }
        });
    }

    /// A followed /dev/kmsg has news.
    pub fn on_kmsg(&mut self, slot: usize, services: &Supervisor, events: &EventLoop) {
        self.pump_one(slot, services, events);
    }
}
