//! The debug protocol server (wire format: `keel_proto`, docs/protocol.md). Channels
//! (`channel`) are listeners (unix, vsock: several clients each) or devices (a UART, a
//! virtio-console port: one peer). Every client has fixed buffers; a slow one loses
//! records (counted, and told with a Lost message), it never blocks PID 1. Requests that
//! change something (start/stop/restart, power) are refused on read-only channels.
//! A shared line (kernel console) only carries output, in APC strings: its input belongs
//! to whoever reads the console (a shell), so keel does not read it.

pub use keel_config::channel;

use crate::clock::Instant;
use crate::event::{EventLoop, Source};
use crate::info;
use crate::log::journal::Record;
use crate::log::{Bytes, Errno, EVENTS, LOGS, NO_SERVICE};
use crate::power::PowerCmd;
use keel_proto::{self as proto, ErrorCode, EventKind, LogSource, Message, ReplyBody, Stream, MAX_BODY};
use crate::services::spec;
use crate::services::supervisor::{Control, Supervisor};
use crate::sys::TryLock;
use channel::{Channel, Kind};
use rustix::fd::OwnedFd;

pub const MAX_LISTENERS: usize = 4;
pub const MAX_CLIENTS: usize = 4;
/// Encoded bytes waiting for a client: one largest frame in either form.
const TX_CAP: usize = if proto::MAX_APC_LEN > proto::MAX_BINARY_LEN { proto::MAX_APC_LEN } else { proto::MAX_BINARY_LEN };
const _: () = assert!(TX_CAP >= proto::MAX_APC_LEN && TX_CAP >= proto::MAX_BINARY_LEN);

struct Listener {
    fd: OwnedFd,
    writable: bool,
}

/// A stream of journal records being sent: from `cursor` on, answering request `req`.
#[derive(Copy, Clone)]
struct Follow {
    req: u16,
    cursor: u32,
    follow: bool,
    /// Logs: only this service (NO_SERVICE: all).
    service: u8,
}

struct Dmesg {
    req: u16,
    fd: OwnedFd,
    /// Records still to skip to reach the requested tail.
    skip: u32,
    follow: bool,
}

struct Client {
    /// The client's number in epoll tokens (Source::DebugClient).
    slot: u8,
    fd: OwnedFd,
    writable: bool,
    /// A shared line: output only, frames in APC strings.
    shared: bool,
    rx: proto::BinaryDeframer<MAX_BODY>,
    tx: heapless::Vec<u8, TX_CAP>,
    seq: u16,
    logs: Option<Follow>,
    events: Option<Follow>,
    dmesg: Option<Dmesg>,
    /// Whether epoll also waits for the fd to be writable.
    out_armed: bool,
}

/// What the server may touch in the rest of PID 1 while answering.
pub struct Ctx<'a> {
    pub services: &'a mut Supervisor,
    /// Set by a Power request: the loop starts the power sequence.
    pub power: Option<PowerCmd>,
    pub ready: Instant,
}

#[derive(Default)]
pub struct Server {
    listeners: heapless::Vec<Listener, MAX_LISTENERS>,
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

impl Server {
    /// Open every channel in `specs`; problems are logged and the channel is skipped.
    pub fn open<'s>(specs: impl Iterator<Item = &'s [u8]>, events: &EventLoop) -> Server {
        let mut server = Server::default();
        for text in specs {
            let spec = match Channel::parse(text) {
                Ok(spec) => spec,
                Err(e) => {
                    info!("debug channel {}: {}", Bytes(text), e.text());
                    continue;
                }
            };
            if let Err(e) = server.open_one(&spec, events) {
                info!("debug channel {}: {}", Bytes(text), Errno(e));
            } else {
                let access = match spec.kind {
                    Kind::Device { shared: true, .. } => "shared line, output only",
                    _ if spec.writable => "read-write",
                    _ => "read-only",
                };
                info!("debug channel {} ({})", Bytes(text), access);
            }
        }
        server
    }

    fn open_one(&mut self, spec: &Channel, events: &EventLoop) -> Result<(), rustix::io::Errno> {
        use rustix::io::Errno as E;
        let listener = match spec.kind {
            Kind::Unix(path) => {
                use rustix::net::{bind, listen, socket_with, AddressFamily, SocketAddrUnix, SocketFlags, SocketType};
                let mut buf = [0u8; 112];
                let cpath = crate::file::c_path(&[path], &mut buf).ok_or(E::NAMETOOLONG)?;
                let _ = rustix::fs::unlink(cpath);
                let fd = socket_with(AddressFamily::UNIX, SocketType::STREAM, SocketFlags::CLOEXEC | SocketFlags::NONBLOCK, None)?;
                bind(&fd, &SocketAddrUnix::new(cpath)?)?;
                listen(&fd, 4)?;
                fd
            }
            Kind::Vsock(port) => crate::sys::vsock_listen(port)?,
            Kind::Device { name, baud, shared } => {
                let fd = open_device(name, baud)?;
                let slot = self.free_slot().ok_or(E::MFILE)?;
                return self.add_client(slot, fd, spec.writable && !shared, shared, events);
            }
        };
        let index = self.listeners.len() as u8;
        events.watch(&listener, Source::DebugListener(index))?;
        self.listeners.push(Listener { fd: listener, writable: spec.writable }).map_err(|_| E::MFILE)
    }

    fn free_slot(&self) -> Option<usize> {
        with_clients(|clients| (0..MAX_CLIENTS).find(|&slot| position(clients, slot).is_none())).flatten()
    }

    fn add_client(&mut self, slot: usize, fd: OwnedFd, writable: bool, shared: bool, events: &EventLoop) -> Result<(), rustix::io::Errno> {
        // A shared line is never read (see the module comment): only its output is watched.
        if !shared {
            events.watch(&fd, Source::DebugClient(slot as u8))?;
        }
        let mut client = Client {
            slot: slot as u8,
            fd,
            writable,
            shared,
            rx: proto::BinaryDeframer::new(),
            tx: heapless::Vec::new(),
            seq: 0,
            logs: None,
            events: None,
            dmesg: None,
            out_armed: false,
        };
        client.hello();
        if shared {
            // What the console does not show already: events, and services that do not echo.
            client.events = Some(Follow { req: 0, cursor: EVENTS.with(|j| j.next_seq()).unwrap_or(0), follow: true, service: NO_SERVICE });
            client.logs = Some(Follow { req: 0, cursor: LOGS.with(|j| j.next_seq()).unwrap_or(0), follow: true, service: NO_SERVICE });
        }
        with_clients(|clients| clients.push(client).ok()).flatten().ok_or(rustix::io::Errno::MFILE)
    }

    /// A listener is readable: take every pending connection.
    pub fn accept(&mut self, index: usize, events: &EventLoop) {
        let Some(writable) = self.listeners.get(index).map(|l| l.writable) else { return };
        let flags = rustix::net::SocketFlags::CLOEXEC | rustix::net::SocketFlags::NONBLOCK;
        while let Ok(fd) = rustix::net::accept_with(&self.listeners[index].fd, flags) {
            match self.free_slot() {
                Some(slot) => {
                    if let Err(e) = self.add_client(slot, fd, writable, false, events) {
                        info!("debug client: {}", Errno(e));
                    }
                }
                None => info!("debug client refused: {} clients already", MAX_CLIENTS),
            }
        }
    }

    /// A client's fd is ready: read its requests and answer them.
    pub fn on_client(&mut self, slot: usize, ctx: &mut Ctx, events: &EventLoop) {
        with_clients(|clients| {
            let Some(at) = position(clients, slot) else { return };
            let client = &mut clients[at];
            let following_kmsg = client.dmesg.is_some();
            if !client.read_requests(ctx) {
                // Dropping the fd also takes it out of epoll.
                clients.swap_remove(at);
                return;
            }
            // A dmesg follow began: its /dev/kmsg joins the loop (it leaves when closed).
            if let (false, Some(d)) = (following_kmsg, &client.dmesg) {
                if d.follow {
                    let _ = events.watch_edge(&d.fd, Source::Kmsg(slot as u8));
                }
            }
        });
        self.pump_one(slot, events);
    }

    /// Send what the followed journals have new, and flush. Called on every loop pass.
    pub fn pump(&mut self, events: &EventLoop) {
        for slot in 0..MAX_CLIENTS {
            self.pump_one(slot, events);
        }
    }

    fn pump_one(&mut self, slot: usize, events: &EventLoop) {
        with_clients(|clients| {
            let Some(at) = position(clients, slot) else { return };
            let client = &mut clients[at];
            // Both stop when the output buffer is full; "more" keeps the wake-ups coming
            // (through EPOLLOUT) until they are done.
            let more = client.stream_journals() | client.stream_dmesg();
            match client.flush() {
                Err(_) => {
                    clients.swap_remove(at);
                }
                Ok(()) => {
                    // Wait for room only while something is pending (no busy loop when idle).
                    let want = !client.tx.is_empty() || more;
                    if want != client.out_armed && !client.shared {
                        client.out_armed = want;
                        let _ = events.rewatch(&client.fd, Source::DebugClient(slot as u8), want);
                    }
                }
            }
        });
    }

    /// A followed /dev/kmsg has news.
    pub fn on_kmsg(&mut self, slot: usize, events: &EventLoop) {
        self.pump_one(slot, events);
    }
}

impl Client {
    /// Read what the client sent and answer each request; false when it has gone away.
    fn read_requests(&mut self, ctx: &mut Ctx) -> bool {
        let mut buf = [0u8; 512];
        for _ in 0..4 {
            match rustix::io::read(&self.fd, &mut buf) {
                Ok(0) => return false,
                Ok(n) => {
                    let mut input = &buf[..n];
                    while let Some(frame) = self.rx.next(&mut input) {
                        // The frame borrows the deframer; answering needs all of `self`.
                        let (seq, msg_type, len) = (frame.seq, frame.msg_type, frame.payload.len());
                        let mut payload = [0u8; MAX_BODY];
                        payload[..len].copy_from_slice(frame.payload);
                        self.request(seq, msg_type, &payload[..len], ctx);
                    }
                }
                Err(rustix::io::Errno::INTR) => continue,
                Err(rustix::io::Errno::AGAIN) => return true,
                Err(_) => return false,
            }
        }
        true
    }

    fn hello(&mut self) {
        let msg = Message::Hello { proto: proto::PROTO, keel_version: env!("CARGO_PKG_VERSION").as_bytes(), features: 0 };
        self.send(&msg);
    }

    /// Encode `msg` into the output buffer; false (and nothing queued) if it does not fit.
    fn send(&mut self, msg: &Message) -> bool {
        let mut body = [0u8; MAX_BODY];
        let Ok(len) = proto::emit_message(self.seq, msg, &mut body) else { return false };
        let mut frame = [0u8; TX_CAP];
        let encoded = if self.shared { proto::emit_apc(&body[..len], &mut frame) } else { proto::emit_binary(&body[..len], &mut frame) };
        let Ok(n) = encoded else { return false };
        if self.tx.extend_from_slice(&frame[..n]).is_err() {
            return false;
        }
        self.seq = self.seq.wrapping_add(1);
        true
    }

    fn reply(&mut self, req: u16, body: ReplyBody) {
        self.send(&Message::Reply { req, body });
    }

    fn error(&mut self, req: u16, code: ErrorCode, message: &str) {
        self.send(&Message::ErrorReply { req, code, message: message.as_bytes() });
    }

    fn request(&mut self, req: u16, msg_type: u8, payload: &[u8], ctx: &mut Ctx) {
        let msg = match Message::parse(msg_type, payload) {
            Ok(msg) => msg,
            Err(proto::Error::UnknownType(_)) => return self.error(req, ErrorCode::UnknownType, "unknown message type"),
            Err(_) => return self.error(req, ErrorCode::Malformed, "malformed message"),
        };
        if msg.is_mutating() && !self.writable {
            return self.error(req, ErrorCode::Denied, "read-only channel");
        }
        match msg {
            Message::ClientHello { .. } => self.hello(),
            Message::Ping { nonce } => self.reply(req, ReplyBody::Pong { nonce }),
            Message::Status => {
                let (mut services, mut failed) = (0u16, 0u16);
                for (_, state, _, _) in ctx.services.entries() {
                    services += 1;
                    failed += (state == proto::ServiceState::Failed) as u16;
                }
                let status = ReplyBody::Status { uptime_ns: Instant::now().0, ready_ns: ctx.ready.0, rss_kib: rss_kib(), services, failed };
                self.reply(req, status);
            }
            Message::Services => {
                for (name, state, pid, restarts) in ctx.services.entries() {
                    self.reply(req, ReplyBody::ServiceEntry { name: name.as_bytes(), state, pid, restarts });
                }
                self.reply(req, ReplyBody::End);
            }
            Message::Start { name } => self.control(req, name, Control::Start, ctx),
            Message::Stop { name } => self.control(req, name, Control::Stop, ctx),
            Message::Restart { name } => self.control(req, name, Control::Restart, ctx),
            Message::Logs { tail, follow, service } => {
                let service = match service {
                    b"" => NO_SERVICE,
                    name => match crate::services::spec::find(name) {
                        Some(i) => i as u8,
                        None => return self.error(req, ErrorCode::NoSuchService, "no such service"),
                    },
                };
                let cursor = LOGS.with(|j| tail_start(j.oldest(), j.next_seq(), tail, |seq| j.get(seq).is_some_and(|r| matches(r, service)))).unwrap_or(0);
                self.logs = Some(Follow { req, cursor, follow, service });
            }
            Message::Events { since, follow } => self.events = Some(Follow { req, cursor: since, follow, service: NO_SERVICE }),
            Message::Dmesg { tail, follow } => match open_kmsg(tail) {
                Ok((fd, skip)) => self.dmesg = Some(Dmesg { req, fd, skip, follow }),
                Err(e) => self.error(req, ErrorCode::Unsupported, errno_text(e)),
            },
            Message::Power { cmd } => {
                ctx.power = Some(cmd);
                self.reply(req, ReplyBody::Ok);
            }
            Message::Cancel => {
                self.logs = None;
                self.events = None;
                self.dmesg = None;
                self.reply(req, ReplyBody::Ok);
            }
            _ => self.error(req, ErrorCode::Unsupported, "not a request"),
        }
    }

    fn control(&mut self, req: u16, name: &[u8], what: Control, ctx: &mut Ctx) {
        let Some(i) = crate::services::spec::find(name) else {
            return self.error(req, ErrorCode::NoSuchService, "no such service");
        };
        match ctx.services.control(i, what, Instant::now()) {
            Ok(()) => self.reply(req, ReplyBody::Ok),
            Err(why) => self.error(req, ErrorCode::Busy, why),
        }
    }

    /// Queue journal records for the streams this client follows, while there is room;
    /// true if one stopped for lack of room.
    fn stream_journals(&mut self) -> bool {
        let mut more = false;
        if let Some(mut f) = self.logs {
            let done = LOGS.with(|j| self.stream(&mut f, j.oldest(), j.next_seq(), |seq| j.get(seq).copied(), log_message));
            more |= done == Some(false);
            self.logs = self.finish(f, done);
        }
        if let Some(mut f) = self.events {
            let done = EVENTS.with(|j| self.stream(&mut f, j.oldest(), j.next_seq(), |seq| j.get(seq).copied(), event_message));
            more |= done == Some(false);
            self.events = self.finish(f, done);
        }
        more
    }

    /// Send records from `f.cursor` to `next`; Some(true) when caught up.
    fn stream(
        &mut self,
        f: &mut Follow,
        oldest: u32,
        next: u32,
        get: impl Fn(u32) -> Option<Record>,
        send: fn(&mut Client, &Record, u32) -> bool,
    ) -> bool {
        if f.cursor < oldest {
            // Overwritten before this client read them.
            if self.send(&Message::Lost { records: oldest - f.cursor }) {
                f.cursor = oldest;
            } else {
                return false;
            }
        }
        while f.cursor < next {
            if let Some(record) = get(f.cursor) {
                if matches(&record, f.service) && !send(self, &record, f.cursor) {
                    return false;
                }
            }
            f.cursor += 1;
        }
        true
    }

    fn finish(&mut self, f: Follow, caught_up: Option<bool>) -> Option<Follow> {
        match caught_up {
            Some(true) if !f.follow => {
                self.reply(f.req, ReplyBody::End);
                None
            }
            _ => Some(f),
        }
    }

    /// Queue kernel records while there is room; true if it stopped for lack of room.
    fn stream_dmesg(&mut self) -> bool {
        let Some(mut d) = self.dmesg.take() else { return false };
        let mut record = [0u8; 1024];
        let mut more = false;
        loop {
            if self.tx.len() + 400 > TX_CAP {
                more = true; // room first; the next pass goes on
                break;
            }
            match rustix::io::read(&d.fd, &mut record) {
                Ok(n) if d.skip > 0 => {
                    let _ = n;
                    d.skip -= 1;
                }
                Ok(n) => {
                    let (boot_ns, text) = parse_kmsg(&record[..n]);
                    let msg = Message::Log { boot_ns, source: LogSource::Kernel, stream: Stream::Out, service: b"", text };
                    self.send(&msg);
                }
                Err(rustix::io::Errno::PIPE) => {
                    // Records were overwritten while we read: the kernel skips us ahead.
                    self.send(&Message::Lost { records: 1 });
                }
                Err(_) if !d.follow => {
                    self.reply(d.req, ReplyBody::End);
                    return false;
                }
                Err(_) => break,
            }
        }
        self.dmesg = Some(d);
        more
    }

    /// Write what is queued; Err when the peer is gone.
    fn flush(&mut self) -> Result<(), ()> {
        while !self.tx.is_empty() {
            match rustix::io::write(&self.fd, &self.tx) {
                Ok(0) => return Err(()),
                Ok(n) => {
                    let rest = self.tx.len() - n;
                    self.tx.copy_within(n.., 0);
                    self.tx.truncate(rest);
                }
                Err(rustix::io::Errno::INTR) => continue,
                Err(rustix::io::Errno::AGAIN) => return Ok(()),
                Err(_) if self.shared => {
                    // The console does not go away; drop what it could not take.
                    self.tx.clear();
                    return Ok(());
                }
                Err(_) => return Err(()),
            }
        }
        Ok(())
    }
}

fn matches(record: &Record, service: u8) -> bool {
    service == NO_SERVICE || (LogSource::from(record.tag) == LogSource::Service && record.aux == service)
}

fn log_message(client: &mut Client, record: &Record, _seq: u32) -> bool {
    let (source, service): (LogSource, &[u8]) = match LogSource::from(record.tag) {
        LogSource::Service => (LogSource::Service, spec::table().get(record.aux as usize).map_or(&b""[..], |s| s.name.as_bytes())),
        LogSource::Kernel => (LogSource::Kernel, b""),
        _ => (LogSource::Keel, b""),
    };
    // On a shared line, services that echo are on the console already.
    if client.shared && (source == LogSource::Keel || spec::table().get(record.aux as usize).is_some_and(|s| s.echo)) {
        return true;
    }
    client.send(&Message::Log { boot_ns: record.boot_ns, source, stream: Stream::Out, service, text: record.text() })
}

fn event_message(client: &mut Client, record: &Record, seq: u32) -> bool {
    let (name, detail) = record.name_detail();
    let kind = EventKind::from(record.tag);
    client.send(&Message::Event { boot_ns: record.boot_ns, event_seq: seq, kind, name, detail })
}

/// The first record number of the last `tail` that match, between `oldest` and `next`.
fn tail_start(oldest: u32, next: u32, tail: u16, matches: impl Fn(u32) -> bool) -> u32 {
    let mut start = next;
    let mut found = 0;
    while start > oldest && found < tail {
        start -= 1;
        found += matches(start) as u16;
    }
    start
}

/// Open /dev/kmsg (non-blocking) and count how many records to skip for the last `tail`.
fn open_kmsg(tail: u16) -> Result<(OwnedFd, u32), rustix::io::Errno> {
    use rustix::fs::{open, Mode, OFlags};
    let flags = OFlags::RDONLY | OFlags::NONBLOCK | OFlags::CLOEXEC;
    let counter = open(c"/dev/kmsg", flags, Mode::empty())?;
    let mut buf = [0u8; 1024];
    let mut total = 0u32;
    loop {
        match rustix::io::read(&counter, &mut buf) {
            Ok(_) => total += 1,
            Err(rustix::io::Errno::PIPE) => continue,
            Err(_) => break,
        }
    }
    Ok((open(c"/dev/kmsg", flags, Mode::empty())?, total.saturating_sub(tail as u32)))
}

/// `PRI,SEQ,USEC,FLAGS;text\n…`: the time in ns and the text (continuation lines dropped).
fn parse_kmsg(record: &[u8]) -> (u64, &[u8]) {
    let Some(semi) = memchr::memchr(b';', record) else { return (0, record) };
    let usec = record[..semi].split(|&b| b == b',').nth(2).and_then(crate::config::cmdline::parse_u64).unwrap_or(0);
    let text = &record[semi + 1..];
    let text = &text[..memchr::memchr(b'\n', text).unwrap_or(text.len())];
    (usec.saturating_mul(1000), text)
}

fn rss_kib() -> u32 {
    let mut buf = [0u8; 2048];
    let len = crate::file::read_into(c"/proc/self/status", &mut buf).unwrap_or(0);
    buf[..len]
        .split(|&b| b == b'\n')
        .find_map(|l| l.strip_prefix(b"VmRSS:"))
        .and_then(|v| crate::config::cmdline::parse_u32(v.trim_ascii().strip_suffix(b" kB")?))
        .unwrap_or(0)
}

fn errno_text(e: rustix::io::Errno) -> &'static str {
    match e {
        rustix::io::Errno::NOENT => "no /dev/kmsg",
        rustix::io::Errno::ACCESS | rustix::io::Errno::PERM => "/dev/kmsg: permission denied",
        _ => "/dev/kmsg cannot be read",
    }
}

/// Open a device channel: non-blocking; a UART goes raw at `baud`.
fn open_device(name: &[u8], baud: Option<u32>) -> Result<OwnedFd, rustix::io::Errno> {
    use rustix::fs::{open, Mode, OFlags};
    let mut path = [0u8; 48];
    let cpath = crate::file::c_path(&[b"/dev/", name], &mut path).ok_or(rustix::io::Errno::NAMETOOLONG)?;
    let fd = open(cpath, OFlags::RDWR | OFlags::NOCTTY | OFlags::NONBLOCK | OFlags::CLOEXEC, Mode::empty())?;
    if let Ok(mut termios) = rustix::termios::tcgetattr(&fd) {
        termios.make_raw();
        if let Some(baud) = baud {
            termios.set_speed(baud)?;
        }
        rustix::termios::tcsetattr(&fd, rustix::termios::OptionalActions::Now, &termios)?;
    }
    Ok(fd)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_counts_back_matching_records() {
        assert_eq!(tail_start(0, 10, 3, |_| true), 7);
        assert_eq!(tail_start(5, 10, 100, |_| true), 5, "not before the oldest held");
        assert_eq!(tail_start(0, 10, 2, |s| s % 3 == 0), 6, "records 6 and 9 match");
        assert_eq!(tail_start(0, 0, 5, |_| true), 0);
        assert_eq!(tail_start(0, 10, 0, |_| true), 10);
    }

    #[test]
    fn kmsg_records() {
        assert_eq!(parse_kmsg(b"6,339,5140900,-;NET: Registered protocol family 10\n"), (5_140_900_000, &b"NET: Registered protocol family 10"[..]));
        assert_eq!(parse_kmsg(b"4,1,2,-;line\n SUBSYSTEM=acpi\n"), (2000, &b"line"[..]));
        assert_eq!(parse_kmsg(b"garbage"), (0, &b"garbage"[..]));
        assert_eq!(parse_kmsg(b"x,y;t"), (0, &b"t"[..]));
    }
}
