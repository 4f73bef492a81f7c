//! The messages in a frame's payload. Integers are little-endian; `str` and `bytes` are a
//! u16 LE length and that many bytes (strings are UTF-8 by convention, never checked: they
//! are shown as bytes); a bool is one byte, 0 or 1. Fixed-size fields come first, then the
//! length-prefixed ones. A reader ignores bytes after the last field it knows: a message
//! may only grow by appending fields. Byte layouts and examples: docs/protocol.md.
//!
//! Type codes 0x01..=0x3f go from init to the host, 0x40..=0x7f from the host to init;
//! a code is never reused for another meaning.

use super::{enum_with_unknown, Error, MAX_NAME, MAX_PAYLOAD};

/// The type byte of each message.
pub mod types {
    // init → host
    pub const HELLO: u8 = 0x01;
    pub const LOG: u8 = 0x02;
    pub const EVENT: u8 = 0x03;
    pub const REPLY: u8 = 0x04;
    pub const ERROR_REPLY: u8 = 0x05;
    pub const LOST: u8 = 0x06;
    // host → init
    pub const CLIENT_HELLO: u8 = 0x40;
    pub const PING: u8 = 0x41;
    pub const STATUS: u8 = 0x42;
    pub const SERVICES: u8 = 0x43;
    pub const START: u8 = 0x44;
    pub const STOP: u8 = 0x45;
    pub const RESTART: u8 = 0x46;
    pub const LOGS: u8 = 0x47;
    pub const DMESG: u8 = 0x48;
    pub const EVENTS: u8 = 0x49;
    pub const POWER: u8 = 0x4a;
    pub const CANCEL: u8 = 0x4b;
}

/// Bits of Hello's `features`: what this keel serves beyond protocol 1's first message set.
/// A client checks a bit before it sends a request that needs it (an older keel ignores an
/// appended field it does not know, and would answer something else).
pub mod features {
    /// Logs and Dmesg take `previous` (the previous boot, from pstore; docs/protocol.md).
    pub const PREVIOUS_BOOT: u32 = 1;
}

/// The kind byte after `req` in a Reply.
pub mod reply_kinds {
    pub const OK: u8 = 0;
    pub const END: u8 = 1;
    pub const PONG: u8 = 2;
    pub const STATUS: u8 = 3;
    pub const SERVICE_ENTRY: u8 = 4;
}

enum_with_unknown! {
    /// Where a log record comes from.
    pub enum LogSource {
        Keel = 0,
        Kernel = 1,
        Service = 2,
    }
}

enum_with_unknown! {
    /// Which output of a service a log record was written to.
    pub enum Stream {
        Out = 0,
        Err = 1,
    }
}

enum_with_unknown! {
    pub enum EventKind {
        /// A service changed state; `name` is the service.
        ServiceState = 0,
        /// A boot phase began or ended; `name` is the phase.
        BootPhase = 1,
        /// A power request arrived (power button, signal, Power message).
        PowerRequest = 2,
        /// Which configuration runs: `name` is its path (or `built-in`), `detail` says why.
        Config = 3,
        /// How the previous boot ended (`name`: `reboot`, `kernel panic`, ...), `detail`
        /// the evidence (pstore records, keel's marker): src/log/pstore.rs.
        PreviousBoot = 4,
    }
}

enum_with_unknown! {
    /// Why a request failed (ErrorReply).
    pub enum ErrorCode {
        UnknownType = 1,
        Malformed = 2,
        /// A mutating request on a read-only channel.
        Denied = 3,
        NoSuchService = 4,
        Busy = 5,
        Unsupported = 6,
        /// keel closes this connection to let a new client in (every client slot taken).
        Evicted = 7,
    }
}

/// The ErrorReply code for a request that did not parse: 1 for an unknown type, else 2.
impl From<Error> for ErrorCode {
    fn from(e: Error) -> ErrorCode {
        match e {
            Error::UnknownType(_) => ErrorCode::UnknownType,
            _ => ErrorCode::Malformed,
        }
    }
}

/// The three ways a machine stops (the Power request; PID 1's own power requests too).
/// No `Unknown`: a Power request with another code is malformed.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum PowerCmd {
    Halt = 0,
    PowerOff = 1,
    Reboot = 2,
}

impl PowerCmd {
    pub const fn from_code(code: u8) -> Option<PowerCmd> {
        Some(match code {
            0 => PowerCmd::Halt,
            1 => PowerCmd::PowerOff,
            2 => PowerCmd::Reboot,
            _ => return None,
        })
    }

    pub const fn name(self) -> &'static str {
        match self {
            PowerCmd::Halt => "halt",
            PowerCmd::PowerOff => "poweroff",
            PowerCmd::Reboot => "reboot",
        }
    }

    /// A request arriving while `self` already runs: only halt → poweroff is an upgrade
    /// (a machine that is going down anyway may as well turn off). Anything else is kept
    /// as it is, so a second request never restarts or redirects the sequence.
    pub const fn upgraded_by(self, new: PowerCmd) -> Option<PowerCmd> {
        match (self, new) {
            (PowerCmd::Halt, PowerCmd::PowerOff) => Some(PowerCmd::PowerOff),
            _ => None,
        }
    }
}

#[cfg(feature = "ufmt")]
impl ufmt::uDisplay for PowerCmd {
    fn fmt<W: ufmt::uWrite + ?Sized>(&self, f: &mut ufmt::Formatter<'_, W>) -> Result<(), W::Error> {
        f.write_str(self.name())
    }
}

enum_with_unknown! {
    /// A service's state, as the supervisor names it (src/services/supervisor.rs).
    pub enum ServiceState {
        /// Waiting for its dependencies.
        Waiting = 0,
        /// Started, not ready yet (or a oneshot still running).
        Starting = 1,
        Ready = 2,
        /// Asked to stop; SIGKILL after its grace.
        Stopping = 3,
        Stopped = 4,
        /// Ended and not restarted (a finished oneshot, `restart = "never"`).
        Exited = 5,
        /// Waiting before a restart.
        Backoff = 6,
        /// Given up on (too many quick failures, exec failed, readiness timed out).
        Failed = 7,
        /// Disabled (`keel.svc.NAME=off`, `keel.single`).
        Off = 8,
    }
}

impl ServiceState {
    /// The lowercase name keel logs and keelctl shows (None for an unknown code).
    pub const fn name(self) -> Option<&'static str> {
        Some(match self {
            ServiceState::Waiting => "waiting",
            ServiceState::Starting => "starting",
            ServiceState::Ready => "ready",
            ServiceState::Stopping => "stopping",
            ServiceState::Stopped => "stopped",
            ServiceState::Exited => "exited",
            ServiceState::Backoff => "backoff",
            ServiceState::Failed => "failed",
            ServiceState::Off => "off",
            ServiceState::Unknown(_) => return None,
        })
    }
}

/// One message; strings and bytes borrow the payload.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Message<'a> {
    // init → host
    /// 0x01: the first frame init sends on a channel (and its answer to ClientHello).
    Hello { proto: u8, keel_version: &'a [u8], features: u32 },
    /// 0x02: one log record. `service` is empty unless `source` is `Service`.
    Log { boot_ns: u64, source: LogSource, stream: Stream, service: &'a [u8], text: &'a [u8] },
    /// 0x03: something happened; `event_seq` numbers events for `Events { since }` (the low
    /// 32 bits of keel's number; `since` is read by serial-number arithmetic).
    Event { boot_ns: u64, event_seq: u32, kind: EventKind, name: &'a [u8], detail: &'a [u8] },
    /// 0x04: an answer to the request frame `req`.
    Reply { req: u16, body: ReplyBody<'a> },
    /// 0x05: the request frame `req` failed.
    ErrorReply { req: u16, code: ErrorCode, message: &'a [u8] },
    /// 0x06: records dropped for this client because it read too slowly.
    Lost { records: u32 },
    // host → init
    /// 0x40: the host introduces itself.
    ClientHello { proto: u8, client: &'a [u8] },
    /// 0x41: answered with `ReplyBody::Pong` carrying the same nonce.
    Ping { nonce: u32 },
    /// 0x42: answered with `ReplyBody::Status`.
    Status,
    /// 0x43: answered with one `ReplyBody::ServiceEntry` per service, then `End`.
    Services,
    /// 0x44
    Start { name: &'a [u8] },
    /// 0x45
    Stop { name: &'a [u8] },
    /// 0x46
    Restart { name: &'a [u8] },
    /// 0x47: the last `tail` records (of `service`, or all if empty), then new ones if
    /// `follow`, until Cancel. `previous` (appended; absent is false): keel's lines of the
    /// previous boot instead, from pstore (Hello feature `PREVIOUS_BOOT`).
    Logs { tail: u16, follow: bool, service: &'a [u8], previous: bool },
    /// 0x48: the kernel log, likewise; `previous`: the previous boot's.
    Dmesg { tail: u16, follow: bool, previous: bool },
    /// 0x49: events numbered `since` and later, then new ones if `follow`.
    Events { since: u32, follow: bool },
    /// 0x4a
    Power { cmd: PowerCmd },
    /// 0x4b: stop following.
    Cancel,
}

/// What a Reply carries, after its kind byte.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum ReplyBody<'a> {
    /// 0: done (Start, Stop, Restart, Power, Cancel).
    Ok,
    /// 1: the last reply of a multi-reply answer (Services, Logs and Dmesg without follow).
    End,
    /// 2
    Pong { nonce: u32 },
    /// 3: times since boot, in ns (`ready_ns` 0: not ready yet); init's resident memory;
    /// the configuration that runs (its path, or `built-in`; appended in keel 0.1: empty
    /// from a keel that does not send it).
    Status { uptime_ns: u64, ready_ns: u64, rss_kib: u32, services: u16, failed: u16, config: &'a [u8] },
    /// 4: one service; `pid` 0 when not running.
    ServiceEntry { name: &'a [u8], state: ServiceState, pid: i32, restarts: u32 },
}

/// Reads fields off the front of a payload.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], Error> {
        if n > self.0.len() {
            return Err(Error::Truncated);
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }
    fn array<const N: usize>(&mut self) -> Result<[u8; N], Error> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }
    fn u8(&mut self) -> Result<u8, Error> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16, Error> {
        self.array().map(u16::from_le_bytes)
    }
    fn u32(&mut self) -> Result<u32, Error> {
        self.array().map(u32::from_le_bytes)
    }
    fn u64(&mut self) -> Result<u64, Error> {
        self.array().map(u64::from_le_bytes)
    }
    fn bool(&mut self) -> Result<bool, Error> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(Error::Malformed),
        }
    }
    /// An appended bool: absent (a sender that does not know it) is false.
    fn appended_bool(&mut self) -> Result<bool, Error> {
        if self.0.is_empty() { Ok(false) } else { self.bool() }
    }
    /// A u16 length, then that many bytes.
    fn bytes(&mut self) -> Result<&'a [u8], Error> {
        let n = self.u16()?;
        self.take(usize::from(n))
    }
    /// `bytes`, at most `MAX_NAME` long.
    fn name(&mut self) -> Result<&'a [u8], Error> {
        let name = self.bytes()?;
        if name.len() > MAX_NAME {
            return Err(Error::Malformed);
        }
        Ok(name)
    }
}

/// Writes fields, or only counts them (`buf` None): `buffer_len` and `emit` share one
/// description of each message, so they cannot disagree. The first error sticks.
struct Writer<'b> {
    buf: Option<&'b mut [u8]>,
    at: usize,
    err: Option<Error>,
}

impl Writer<'_> {
    fn put(&mut self, b: &[u8]) {
        if let Some(buf) = self.buf.as_deref_mut() {
            match buf.get_mut(self.at..self.at + b.len()) {
                Some(dst) => dst.copy_from_slice(b),
                None => {
                    self.err.get_or_insert(Error::BufferTooSmall);
                    self.buf = None;
                }
            }
        }
        self.at += b.len();
    }
    fn u8(&mut self, v: u8) {
        self.put(&[v]);
    }
    fn u16(&mut self, v: u16) {
        self.put(&v.to_le_bytes());
    }
    fn u32(&mut self, v: u32) {
        self.put(&v.to_le_bytes());
    }
    fn u64(&mut self, v: u64) {
        self.put(&v.to_le_bytes());
    }
    /// The length always fits: `emit` refuses payloads over `MAX_PAYLOAD` first.
    fn bytes(&mut self, b: &[u8]) {
        self.u16(b.len() as u16);
        self.put(b);
    }
    /// Written only when true: false is the form every reader knows.
    fn appended_bool(&mut self, v: bool) {
        if v {
            self.u8(1);
        }
    }
    fn name(&mut self, b: &[u8]) {
        if b.len() > MAX_NAME {
            self.err.get_or_insert(Error::Malformed);
        }
        self.bytes(b);
    }
}

impl<'a> Message<'a> {
    /// The message of type `msg_type` in `payload`. Unknown types are `UnknownType`,
    /// short payloads `Truncated`; bytes after the last field are ignored.
    pub fn parse(msg_type: u8, payload: &'a [u8]) -> Result<Message<'a>, Error> {
        use types::*;
        let r = &mut Reader(payload);
        // Struct fields are evaluated in the order written: the wire order.
        Ok(match msg_type {
            HELLO => Message::Hello { proto: r.u8()?, features: r.u32()?, keel_version: r.bytes()? },
            LOG => Message::Log {
                boot_ns: r.u64()?,
                source: r.u8()?.into(),
                stream: r.u8()?.into(),
                service: r.name()?,
                text: r.bytes()?,
            },
            EVENT => Message::Event {
                boot_ns: r.u64()?,
                event_seq: r.u32()?,
                kind: r.u8()?.into(),
                name: r.bytes()?,
                detail: r.bytes()?,
            },
            REPLY => Message::Reply { req: r.u16()?, body: ReplyBody::parse(r)? },
            ERROR_REPLY => Message::ErrorReply { req: r.u16()?, code: r.u8()?.into(), message: r.bytes()? },
            LOST => Message::Lost { records: r.u32()? },
            CLIENT_HELLO => Message::ClientHello { proto: r.u8()?, client: r.bytes()? },
            PING => Message::Ping { nonce: r.u32()? },
            STATUS => Message::Status,
            SERVICES => Message::Services,
            START => Message::Start { name: r.name()? },
            STOP => Message::Stop { name: r.name()? },
            RESTART => Message::Restart { name: r.name()? },
            LOGS => Message::Logs { tail: r.u16()?, follow: r.bool()?, service: r.name()?, previous: r.appended_bool()? },
            DMESG => Message::Dmesg { tail: r.u16()?, follow: r.bool()?, previous: r.appended_bool()? },
            EVENTS => Message::Events { since: r.u32()?, follow: r.bool()? },
            POWER => Message::Power { cmd: PowerCmd::from_code(r.u8()?).ok_or(Error::Malformed)? },
            CANCEL => Message::Cancel,
            other => return Err(Error::UnknownType(other)),
        })
    }

    pub fn msg_type(&self) -> u8 {
        use types::*;
        match self {
            Message::Hello { .. } => HELLO,
            Message::Log { .. } => LOG,
            Message::Event { .. } => EVENT,
            Message::Reply { .. } => REPLY,
            Message::ErrorReply { .. } => ERROR_REPLY,
            Message::Lost { .. } => LOST,
            Message::ClientHello { .. } => CLIENT_HELLO,
            Message::Ping { .. } => PING,
            Message::Status => STATUS,
            Message::Services => SERVICES,
            Message::Start { .. } => START,
            Message::Stop { .. } => STOP,
            Message::Restart { .. } => RESTART,
            Message::Logs { .. } => LOGS,
            Message::Dmesg { .. } => DMESG,
            Message::Events { .. } => EVENTS,
            Message::Power { .. } => POWER,
            Message::Cancel => CANCEL,
        }
    }

    /// A request that changes the system: refused (`ErrorCode::Denied`) on a read-only
    /// channel.
    pub fn is_mutating(&self) -> bool {
        matches!(self, Message::Start { .. } | Message::Stop { .. } | Message::Restart { .. } | Message::Power { .. })
    }

    fn write(&self, w: &mut Writer) {
        match *self {
            Message::Hello { proto, keel_version, features } => {
                w.u8(proto);
                w.u32(features);
                w.bytes(keel_version);
            }
            Message::Log { boot_ns, source, stream, service, text } => {
                w.u64(boot_ns);
                w.u8(source.into());
                w.u8(stream.into());
                w.name(service);
                w.bytes(text);
            }
            Message::Event { boot_ns, event_seq, kind, name, detail } => {
                w.u64(boot_ns);
                w.u32(event_seq);
                w.u8(kind.into());
                w.bytes(name);
                w.bytes(detail);
            }
            Message::Reply { req, body } => {
                w.u16(req);
                body.write(w);
            }
            Message::ErrorReply { req, code, message } => {
                w.u16(req);
                w.u8(code.into());
                w.bytes(message);
            }
            Message::Lost { records } => w.u32(records),
            Message::ClientHello { proto, client } => {
                w.u8(proto);
                w.bytes(client);
            }
            Message::Ping { nonce } => w.u32(nonce),
            Message::Status | Message::Services | Message::Cancel => {}
            Message::Start { name } | Message::Stop { name } | Message::Restart { name } => w.name(name),
            Message::Logs { tail, follow, service, previous } => {
                w.u16(tail);
                w.u8(follow.into());
                w.name(service);
                w.appended_bool(previous);
            }
            Message::Dmesg { tail, follow, previous } => {
                w.u16(tail);
                w.u8(follow.into());
                w.appended_bool(previous);
            }
            Message::Events { since, follow } => {
                w.u32(since);
                w.u8(follow.into());
            }
            Message::Power { cmd } => w.u8(cmd as u8),
        }
    }

    /// The payload length `emit` writes.
    pub fn buffer_len(&self) -> usize {
        let mut w = Writer { buf: None, at: 0, err: None };
        self.write(&mut w);
        w.at
    }

    /// Write the payload into the start of `buf`; returns `buffer_len()`. Errors: a buffer
    /// too small, a payload over `MAX_PAYLOAD` (`Oversized`), a name over `MAX_NAME`
    /// (`Malformed`).
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, Error> {
        if self.buffer_len() > MAX_PAYLOAD {
            return Err(Error::Oversized);
        }
        let mut w = Writer { buf: Some(buf), at: 0, err: None };
        self.write(&mut w);
        w.err.map_or(Ok(w.at), Err)
    }
}

impl<'a> ReplyBody<'a> {
    fn parse(r: &mut Reader<'a>) -> Result<ReplyBody<'a>, Error> {
        use reply_kinds::*;
        Ok(match r.u8()? {
            OK => ReplyBody::Ok,
            END => ReplyBody::End,
            PONG => ReplyBody::Pong { nonce: r.u32()? },
            STATUS => ReplyBody::Status {
                uptime_ns: r.u64()?,
                ready_ns: r.u64()?,
                rss_kib: r.u32()?,
                services: r.u16()?,
                failed: r.u16()?,
                config: if r.0.is_empty() { b"" } else { r.bytes()? },
            },
            SERVICE_ENTRY => {
                ReplyBody::ServiceEntry { state: r.u8()?.into(), pid: r.u32()? as i32, restarts: r.u32()?, name: r.name()? }
            }
            other => return Err(Error::UnknownReply(other)),
        })
    }

    fn write(&self, w: &mut Writer) {
        use reply_kinds::*;
        match *self {
            ReplyBody::Ok => w.u8(OK),
            ReplyBody::End => w.u8(END),
            ReplyBody::Pong { nonce } => {
                w.u8(PONG);
                w.u32(nonce);
            }
            ReplyBody::Status { uptime_ns, ready_ns, rss_kib, services, failed, config } => {
                w.u8(STATUS);
                w.u64(uptime_ns);
                w.u64(ready_ns);
                w.u32(rss_kib);
                w.u16(services);
                w.u16(failed);
                // Appended: absent (an older keel, or none to say) reads as empty.
                if !config.is_empty() {
                    w.bytes(config);
                }
            }
            ReplyBody::ServiceEntry { name, state, pid, restarts } => {
                w.u8(SERVICE_ENTRY);
                w.u8(state.into());
                w.u32(pid as u32);
                w.u32(restarts);
                w.name(name);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{hex, XorShift};

    /// One example of every message and reply kind: the value, its type and its payload
    /// (docs/protocol.md shows the same bytes; they were generated independently with
    /// python3 `struct.pack`).
    fn examples() -> Vec<(Message<'static>, u8, Vec<u8>)> {
        use Message as M;
        use ReplyBody as R;
        let ex: [(Message<'static>, u8, &str); 24] = [
            (M::Hello { proto: 1, keel_version: b"0.1.0", features: 0 }, 0x01, "01 00 00 00 00 05 00 30 2e 31 2e 30"),
            (
                M::Log {
                    boot_ns: 1_234_567_891,
                    source: LogSource::Service,
                    stream: Stream::Err,
                    service: b"sshd",
                    text: b"listening\n",
                },
                0x02,
                "d3 02 96 49 00 00 00 00 02 01 04 00 73 73 68 64 0a 00 6c 69 73 74 65 6e 69 6e 67 0a",
            ),
            (
                M::Event {
                    boot_ns: 2_000_000_000,
                    event_seq: 42,
                    kind: EventKind::ServiceState,
                    name: b"sshd",
                    detail: b"running",
                },
                0x03,
                "00 94 35 77 00 00 00 00 2a 00 00 00 00 04 00 73 73 68 64 07 00 72 75 6e 6e 69 6e 67",
            ),
            (M::Reply { req: 3, body: R::Ok }, 0x04, "03 00 00"),
            (M::Reply { req: 4, body: R::End }, 0x04, "04 00 01"),
            (M::Reply { req: 7, body: R::Pong { nonce: 0x1234_5678 } }, 0x04, "07 00 02 78 56 34 12"),
            (
                M::Reply {
                    req: 8,
                    body: R::Status {
                        uptime_ns: 12_345_678_901,
                        ready_ns: 512_000_000,
                        rss_kib: 1234,
                        services: 5,
                        failed: 1,
                        config: b"built-in",
                    },
                },
                0x04,
                "08 00 03 35 1c dc df 02 00 00 00 00 80 84 1e 00 00 00 00 d2 04 00 00 05 00 01 00 08 00 62 75 69 6c 74 2d 69 6e",
            ),
            (
                M::Reply { req: 5, body: R::ServiceEntry { name: b"sshd", state: ServiceState::Ready, pid: 317, restarts: 1 } },
                0x04,
                "05 00 04 02 3d 01 00 00 01 00 00 00 04 00 73 73 68 64",
            ),
            (
                M::ErrorReply { req: 9, code: ErrorCode::NoSuchService, message: b"no such service" },
                0x05,
                "09 00 04 0f 00 6e 6f 20 73 75 63 68 20 73 65 72 76 69 63 65",
            ),
            (M::Lost { records: 17 }, 0x06, "11 00 00 00"),
            (M::ClientHello { proto: 1, client: b"keelctl 0.1" }, 0x40, "01 0b 00 6b 65 65 6c 63 74 6c 20 30 2e 31"),
            (M::Ping { nonce: 0x1234_5678 }, 0x41, "78 56 34 12"),
            (M::Status, 0x42, ""),
            (M::Services, 0x43, ""),
            (M::Start { name: b"sshd" }, 0x44, "04 00 73 73 68 64"),
            (M::Stop { name: b"sshd" }, 0x45, "04 00 73 73 68 64"),
            (M::Restart { name: b"sshd" }, 0x46, "04 00 73 73 68 64"),
            (M::Logs { tail: 100, follow: true, service: b"sshd", previous: false }, 0x47, "64 00 01 04 00 73 73 68 64"),
            (M::Logs { tail: 20, follow: false, service: b"", previous: true }, 0x47, "14 00 00 00 00 01"),
            (M::Dmesg { tail: 50, follow: false, previous: false }, 0x48, "32 00 00"),
            (M::Dmesg { tail: 65535, follow: false, previous: true }, 0x48, "ff ff 00 01"),
            (M::Events { since: 40, follow: true }, 0x49, "28 00 00 00 01"),
            (M::Power { cmd: PowerCmd::PowerOff }, 0x4a, "01"),
            (M::Cancel, 0x4b, ""),
        ];
        ex.into_iter().map(|(m, t, h)| (m, t, hex(h))).collect()
    }

    fn emitted(m: &Message) -> Vec<u8> {
        let len = m.buffer_len();
        let mut buf = vec![0xa5; len + 8];
        assert_eq!(m.emit(&mut buf), Ok(len));
        assert!(buf[len..].iter().all(|&b| b == 0xa5), "{m:?} wrote past buffer_len");
        // Exactly buffer_len is enough; any shorter is an error, never a panic.
        assert_eq!(m.emit(&mut vec![0xa5; len]), Ok(len));
        for short in 0..len {
            assert_eq!(m.emit(&mut vec![0xa5; short]), Err(Error::BufferTooSmall), "{m:?} in {short}");
        }
        buf.truncate(len);
        buf
    }

    #[test]
    fn every_message_matches_its_vector() {
        for (m, t, payload) in examples() {
            assert_eq!(m.msg_type(), t, "{m:?}");
            assert_eq!(emitted(&m), payload, "{m:?}");
            assert_eq!(Message::parse(t, &payload), Ok(m));
        }
    }

    #[test]
    fn truncated_payloads_are_errors() {
        for (m, t, payload) in examples() {
            let appended = without_appended(m);
            for cut in 0..payload.len() {
                let parsed = Message::parse(t, &payload[..cut]);
                // An appended field may be absent altogether (an older peer): only whole.
                match appended {
                    Some((without, len)) if cut == payload.len() - len => assert_eq!(parsed, Ok(without), "{m:?} cut at {cut}"),
                    _ => assert_eq!(parsed, Err(Error::Truncated), "{m:?} cut at {cut}"),
                }
            }
        }
    }

    /// `m` as an older peer sends it, without its appended field, and that field's length
    /// (None: it has none, or it is absent already).
    fn without_appended(m: Message<'static>) -> Option<(Message<'static>, usize)> {
        match m {
            Message::Reply { req, body: ReplyBody::Status { uptime_ns, ready_ns, rss_kib, services, failed, config } } if !config.is_empty() => {
                let body = ReplyBody::Status { uptime_ns, ready_ns, rss_kib, services, failed, config: b"" };
                Some((Message::Reply { req, body }, 2 + config.len()))
            }
            Message::Logs { tail, follow, service, previous: true } => Some((Message::Logs { tail, follow, service, previous: false }, 1)),
            Message::Dmesg { tail, follow, previous: true } => Some((Message::Dmesg { tail, follow, previous: false }, 1)),
            _ => None,
        }
    }

    #[test]
    fn trailing_bytes_are_ignored() {
        // A newer peer may append fields; an older reader takes what it knows. (After a
        // message whose own appended field is absent, the next bytes would be that field.)
        let absent = |m: &Message| match *m {
            Message::Logs { previous, .. } | Message::Dmesg { previous, .. } => !previous,
            Message::Reply { body: ReplyBody::Status { config, .. }, .. } => config.is_empty(),
            _ => false,
        };
        for (m, t, mut payload) in examples().into_iter().filter(|(m, _, _)| !absent(m)) {
            payload.extend_from_slice(&[0xee, 0x01, 0x02]);
            assert_eq!(Message::parse(t, &payload), Ok(m));
        }
    }

    #[test]
    fn unknown_codes() {
        for t in (0..=255u8).filter(|t| !matches!(t, 0x01..=0x06 | 0x40..=0x4b)) {
            assert_eq!(Message::parse(t, &[0; 64]), Err(Error::UnknownType(t)));
        }
        assert_eq!(Message::parse(0x04, &hex("01 00 05")), Err(Error::UnknownReply(5)));
        // Unknown enumerated values parse, and come back the same.
        let unknown = hex("00 00 00 00 00 00 00 00 09 07 00 00 00 00");
        let m = Message::parse(0x02, &unknown).unwrap();
        assert_eq!(
            m,
            Message::Log {
                boot_ns: 0,
                source: LogSource::Unknown(9),
                stream: Stream::Unknown(7),
                service: b"",
                text: b""
            }
        );
        assert_eq!(emitted(&m), unknown);
        assert_eq!(Message::parse(0x4a, &[9]), Err(Error::Malformed), "no such power command");
        assert_eq!(
            Message::parse(0x05, &hex("00 00 63 00 00")).unwrap(),
            Message::ErrorReply { req: 0, code: ErrorCode::Unknown(0x63), message: b"" }
        );
        for v in 0..=255u8 {
            assert_eq!(u8::from(LogSource::from(v)), v);
            assert_eq!(u8::from(ErrorCode::from(v)), v);
            assert_eq!(u8::from(ServiceState::from(v)), v);
            assert_eq!(PowerCmd::from_code(v).map(|c| c as u8), (v < 3).then_some(v));
        }
    }

    #[test]
    fn a_status_without_the_appended_config_parses() {
        let old = hex("08 00 03 35 1c dc df 02 00 00 00 00 80 84 1e 00 00 00 00 d2 04 00 00 05 00 01 00");
        match Message::parse(0x04, &old) {
            Ok(Message::Reply { body: ReplyBody::Status { config, services: 5, .. }, .. }) => assert_eq!(config, b""),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn bad_fields() {
        // A bool of 2.
        assert_eq!(Message::parse(0x48, &hex("32 00 02")), Err(Error::Malformed));
        // The appended `previous` is a bool too, when present.
        assert_eq!(Message::parse(0x48, &hex("32 00 00 02")), Err(Error::Malformed));
        assert_eq!(Message::parse(0x47, &hex("32 00 00 00 00 07")), Err(Error::Malformed));
        // A service name of 33 bytes: refused both ways; 32 is fine.
        let mut p = vec![33, 0];
        p.extend([b'a'; 33]);
        assert_eq!(Message::parse(0x44, &p), Err(Error::Malformed));
        assert_eq!(Message::Start { name: &[b'a'; 33] }.emit(&mut [0; 64]), Err(Error::Malformed));
        assert_eq!(Message::parse(0x44, &p[..34]), Err(Error::Truncated));
        p[0] = 32;
        assert_eq!(Message::parse(0x44, &p), Ok(Message::Start { name: &[b'a'; 32] }));
        // A length prefix past the payload.
        assert_eq!(Message::parse(0x06 + 0x3a, &hex("01 ff ff 61")), Err(Error::Truncated));
        // Payloads over MAX_PAYLOAD are not written.
        let text = [b'x'; MAX_PAYLOAD];
        let log = |text| Message::Log { boot_ns: 0, source: LogSource::Keel, stream: Stream::Out, service: b"", text };
        assert_eq!(log(&text).emit(&mut [0; 2 * MAX_PAYLOAD]), Err(Error::Oversized));
        let fits = log(&text[..MAX_PAYLOAD - 14]);
        assert_eq!(fits.emit(&mut [0; MAX_PAYLOAD]), Ok(MAX_PAYLOAD));
    }

    #[test]
    fn parse_errors_map_to_error_codes() {
        let code = |t, p: &[u8]| ErrorCode::from(Message::parse(t, p).unwrap_err());
        assert_eq!(code(0x7f, &[]), ErrorCode::UnknownType);
        assert_eq!(u8::from(code(0x7f, &[])), 1);
        assert_eq!(code(0x41, &[1, 2]), ErrorCode::Malformed);
        assert_eq!(code(0x47, &[1, 0, 7, 0, 0]), ErrorCode::Malformed);
        assert_eq!(u8::from(code(0x44, &[])), 2);
    }

    #[test]
    fn mutating_requests() {
        let mutating: Vec<u8> = examples().iter().filter(|(m, _, _)| m.is_mutating()).map(|(_, t, _)| *t).collect();
        assert_eq!(mutating, [0x44, 0x45, 0x46, 0x4a]);
    }

    #[test]
    fn random_payloads_never_panic() {
        let mut rng = XorShift(0xdead_beef_cafe_f00d);
        let seeds = examples();
        let mut parsed = 0;
        for round in 0..30_000 {
            let (t, mut p) = if round % 3 == 0 {
                (rng.next() as u8 & 0x4f, rng.junk(48))
            } else {
                let (_, t, p) = &seeds[rng.below(seeds.len())];
                (*t, p.clone())
            };
            for _ in 0..rng.below(4) {
                if p.is_empty() {
                    break;
                }
                let at = rng.below(p.len());
                match rng.below(3) {
                    0 => p[at] = rng.next() as u8,
                    1 => p.truncate(at),
                    _ => p[at] = [0, 1, 2, 0x20, 0x21, 0xff][rng.below(6)],
                }
            }
            if let Ok(m) = Message::parse(t, &p) {
                parsed += 1;
                assert_eq!(m.msg_type(), t);
                assert!(m.buffer_len() <= p.len());
                let out = emitted(&m);
                assert_eq!(Message::parse(t, &out), Ok(m));
            }
        }
        assert!(parsed > 5000, "{parsed}");
    }
}
