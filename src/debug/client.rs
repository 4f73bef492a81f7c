//! One client session: its fixed buffers, the requests it sends and the answers it gets.

use super::server::Ctx;
use super::stream::{Dmesg, Follow};
use super::{kmsg, readable, rss, REPLY_ROOM};
use crate::clock::Instant;
use crate::event::{EventLoop, Source};
use crate::log::journal::tail_start;
use crate::log::{EVENTS, LOGS, NO_SERVICE};
use crate::services::supervisor::Control;
use keel_proto::{self as proto, ErrorCode, Message, ReplyBody, MAX_BODY};
use rustix::fd::OwnedFd;

/// Encoded bytes waiting for a client: one largest frame in either form.
pub const TX_CAP: usize = if proto::MAX_APC_LEN > proto::MAX_BINARY_LEN { proto::MAX_APC_LEN } else { proto::MAX_BINARY_LEN };

pub struct Client {
    /// The client's number in epoll tokens (Source::DebugClient).
    pub slot: u8,
    pub fd: OwnedFd,
    writable: bool,
    /// A shared line: output only, frames in APC strings.
    pub shared: bool,
    /// A device channel's one client (not a listener's: never evicted, never closed).
    pub device: bool,
    /// A device whose peer is gone (hung up): no session until it comes back.
    pub offline: bool,
    /// When the client last did something (a count of events, see `Server::tick`).
    pub active: u64,
    /// The frame number of its last request.
    last_req: u16,
    rx: proto::BinaryDeframer<MAX_BODY>,
    pub tx: heapless::Vec<u8, TX_CAP>,
    seq: u16,
    pub logs: Option<Follow>,
    pub events: Option<Follow>,
    pub dmesg: Option<Dmesg>,
    pub previous: Option<super::previous::Previous>,
    /// A Services answer under way: its request and the next entry.
    pub services: Option<(u16, u8)>,
    /// What epoll waits for: (readable, writable).
    pub armed: (bool, bool),
    /// A reply did not fit (REPLY_ROOM makes that impossible): the session is dropped.
    pub failed: bool,
}

impl Client {
    pub fn new(slot: u8, fd: OwnedFd, writable: bool, shared: bool, device: bool, active: u64) -> Client {
        let mut client = Client {
            slot,
            fd,
            writable,
            shared,
            device,
            offline: false,
            active,
            last_req: 0,
            rx: proto::BinaryDeframer::new(),
            tx: heapless::Vec::new(),
            seq: 0,
            logs: None,
            events: None,
            dmesg: None,
            previous: None,
            services: None,
            armed: (true, false),
            failed: false,
        };
        client.hello();
        if shared {
            // What the console does not show already: events, and services that do not echo.
            client.events = Some(Follow { req: 0, cursor: EVENTS.with(|j| j.next_seq()).unwrap_or(0), follow: true, service: NO_SERVICE });
            client.logs = Some(Follow { req: 0, cursor: LOGS.with(|j| j.next_seq()).unwrap_or(0), follow: true, service: NO_SERVICE });
        }
        client
    }

    /// Read what the client sent and answer each request; false when it has gone away.
    #[inline(never)] // smaller out of line (`just size`)
    pub fn read_requests(&mut self, ctx: &mut Ctx) -> bool {
        let mut buf = [0u8; 512];
        for _ in 0..4 {
            // No more requests than replies that fit; the rest waits in the fd.
            let want = readable(self.room()).min(buf.len());
            if want == 0 {
                return true;
            }
            match rustix::io::read(crate::sys::fd::borrow(&self.fd), &mut buf[..want]) {
                Ok(0) => return false,
                Ok(n) => {
                    let mut input = buf.get(..n).unwrap_or_default();
                    while let Some(frame) = self.rx.next(&mut input) {
                        // The frame borrows the deframer; answering needs all of `self`.
                        let (seq, msg_type, len) = (frame.seq, frame.msg_type, frame.payload.len());
                        self.last_req = seq;
                        let mut payload = [0u8; MAX_BODY];
                        let Some(copy) = payload.get_mut(..len) else { continue };
                        copy.copy_from_slice(frame.payload);
                        self.request(seq, msg_type, copy, ctx);
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
        let features = proto::msg::features::PREVIOUS_BOOT;
        let msg = Message::Hello { proto: proto::PROTO, keel_version: env!("CARGO_PKG_VERSION").as_bytes(), features };
        self.send(&msg);
    }

    /// Free bytes in the output buffer.
    pub fn room(&self) -> usize {
        TX_CAP - self.tx.len()
    }

    /// Encode `msg` into the output buffer if it fits with `keep` bytes to spare; false
    /// (and nothing queued) if not.
    fn queue(&mut self, msg: &Message, keep: usize) -> bool {
        let mut body = [0u8; MAX_BODY];
        let Ok(len) = proto::emit_message(self.seq, msg, &mut body) else { return false };
        let Some(body) = body.get(..len) else { return false };
        let mut frame = [0u8; TX_CAP];
        let encoded = if self.shared { proto::emit_apc(body, &mut frame) } else { proto::emit_binary(body, &mut frame) };
        match encoded {
            Ok(n) if n + keep <= self.room() && frame.get(..n).is_some_and(|f| self.tx.extend_from_slice(f).is_ok()) => {
                self.seq = self.seq.wrapping_add(1);
                true
            }
            _ => false,
        }
    }

    /// Queue a part of a stream, leaving room for the reply to a request.
    pub fn send_record(&mut self, msg: &Message) -> bool {
        self.queue(msg, REPLY_ROOM)
    }

    /// Queue an immediate reply: it always fits (see `readable`), else the session fails.
    #[inline(never)] // 9 callers: -240 bytes (`just size`)
    fn send(&mut self, msg: &Message) {
        self.failed |= !self.queue(msg, 0);
    }

    fn reply(&mut self, req: u16, body: ReplyBody) {
        self.send(&Message::Reply { req, body });
    }

    #[inline(never)] // smaller out of line (`just size`)

    fn error(&mut self, req: u16, code: ErrorCode, message: &str) {
        self.send(&Message::ErrorReply { req, code, message: message.as_bytes() });
    }

    #[inline(never)] // smaller out of line (`just size`)
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
                    failed += (state == keel_proto::ServiceState::Failed) as u16;
                }
                let status = ReplyBody::Status { uptime_ns: Instant::now().0, ready_ns: ctx.ready.0, rss_kib: rss::rss_kib(), services, failed, config: ctx.config };
                self.reply(req, status);
            }
            Message::Services => self.services = Some((req, 0)),
            Message::Start { name } => self.control(req, name, Control::Start, ctx),
            Message::Stop { name } => self.control(req, name, Control::Stop, ctx),
            Message::Restart { name } => self.control(req, name, Control::Restart, ctx),
            // The previous boot is over: no follow; only keel's lines were kept, no service's.
            Message::Logs { previous: true, service: b"", tail, .. } => self.previous = Some(super::previous::Previous::new(req, true, tail)),
            Message::Dmesg { previous: true, tail, .. } => self.previous = Some(super::previous::Previous::new(req, false, tail)),
            Message::Logs { previous: true, .. } => self.error(req, ErrorCode::Unsupported, "no service output of the previous boot"),
            Message::Logs { tail, follow, service, .. } => {
                let service = match service {
                    b"" => NO_SERVICE,
                    name => match crate::services::spec::find(name) {
                        Some(i) => i as u8,
                        None => return self.error(req, ErrorCode::NoSuchService, "no such service"),
                    },
                };
                let cursor = LOGS.with(|j| {
                    let j = j.view();
                    tail_start(j.oldest(), j.next, tail, |seq| j.get(seq).is_some_and(|r| super::stream::matches(r, service)))
                });
                let cursor = cursor.unwrap_or(0);
                self.logs = Some(Follow { req, cursor, follow, service });
            }
            Message::Events { since, follow } => {
                let cursor = EVENTS.with(|j| j.widen(since)).unwrap_or(0);
                self.events = Some(Follow { req, cursor, follow, service: NO_SERVICE });
            }
            Message::Dmesg { tail, follow, .. } => match kmsg::Kmsg::open(tail) {
                Ok(kmsg) => self.dmesg = Some(Dmesg { req, kmsg, follow, lost: 0 }),
                Err(e) => self.error(req, ErrorCode::Unsupported, kmsg::errno_text(e)),
            },
            Message::Power { cmd } => {
                ctx.power = Some(cmd);
                self.reply(req, ReplyBody::Ok);
            }
            Message::Cancel => {
                self.logs = None;
                self.events = None;
                self.dmesg = None;
                self.previous = None;
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

    /// A device's peer is gone (EOF or an error: a virtio-serial port's host side closed, a
    /// tty hung up): forget the session, and wait for the peer without busy-looping.
    pub fn hang_up(&mut self, events: &EventLoop) {
        // (A frame the old peer left half-sent ends at the new one's first 0x00.)
        self.tx.clear();
        self.seq = 0;
        (self.logs, self.events, self.dmesg, self.services, self.previous) = (None, None, None, None, None);
        self.failed = false;
        self.offline = true;
        let _ = events.watch_comeback(crate::sys::fd::borrow(&self.fd), Source::DebugClient(self.slot));
    }

    /// An offline device changed state: its peer may be back (then read(2) no longer says
    /// end of file). A new session starts with Hello, watched as usual again.
    pub fn comes_back(&mut self, events: &EventLoop) {
        self.offline = false;
        self.armed = (true, false);
        let _ = events.rewatch(crate::sys::fd::borrow(&self.fd), Source::DebugClient(self.slot), true, false);
        self.hello();
    }

    /// Make room for a new client: say why (after a 0x00 that ends a frame cut short, in
    /// place of output it did not take), as far as the peer takes it, before the
    /// connection is closed.
    pub fn evict(&mut self) {
        self.tx.clear();
        let _ = self.tx.push(0);
        self.error(self.last_req, ErrorCode::Evicted, "evicted: a new client needed the slot");
        let _ = self.flush();
    }

    /// Write what is queued; Err when the peer is gone.
    pub fn flush(&mut self) -> Result<(), ()> {
        while !self.tx.is_empty() {
            match rustix::io::write(crate::sys::fd::borrow(&self.fd), &self.tx) {
                Ok(0) => return Err(()),
                Ok(n) => {
                    // The rest to the front, byte by byte: copy_within's range check would
                    // bring core::fmt's panic machinery along.
                    let (len, n) = (self.tx.len(), n.min(self.tx.len()));
                    for i in n..len {
                        self.tx[i - n] = self.tx[i];
                    }
                    self.tx.truncate(len - n);
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
