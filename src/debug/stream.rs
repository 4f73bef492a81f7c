//! Answers that go on, sent at the client's pace: service entries (Services), journal
//! records (Logs, Events) and kernel records (Dmesg). Each stops when the client's output
//! buffer is full (leaving room for replies) and goes on at the next pass; a record the
//! journal overwrote meanwhile is counted in a Lost message.

use super::client::{Client, TX_CAP};
use super::kmsg;
use crate::log::journal::Record;
use crate::log::{EVENTS, LOGS, NO_SERVICE};
use crate::services::spec::SERVICES;
use crate::services::supervisor::Supervisor;
use keel_proto::{EventKind, LogSource, Message, ReplyBody, Stream};
use rustix::fd::OwnedFd;

/// A stream of journal records being sent: from `cursor` on, answering request `req`.
#[derive(Copy, Clone)]
pub struct Follow {
    pub req: u16,
    pub cursor: u32,
    pub follow: bool,
    /// Logs: only this service (NO_SERVICE: all).
    pub service: u8,
}

pub struct Dmesg {
    pub req: u16,
    pub fd: OwnedFd,
    /// Records still to skip to reach the requested tail.
    pub skip: u32,
    pub follow: bool,
}

impl Client {
    /// Queue what every stream has, while there is room; true if one stopped for lack of it.
    pub fn stream_all(&mut self, services: &Supervisor) -> bool {
        self.stream_services(services) | self.stream_journals() | self.stream_dmesg()
    }

    /// One ServiceEntry per service, then End.
    fn stream_services(&mut self, services: &Supervisor) -> bool {
        let Some((req, mut next)) = self.services else { return false };
        for (name, state, pid, restarts) in services.entries().skip(next as usize) {
            let entry = ReplyBody::ServiceEntry { name: name.as_bytes(), state: state.wire(), pid, restarts };
            if !self.send_record(&Message::Reply { req, body: entry }) {
                self.services = Some((req, next));
                return true;
            }
            next += 1;
        }
        let done = self.send_record(&Message::Reply { req, body: ReplyBody::End });
        self.services = if done { None } else { Some((req, next)) };
        !done
    }

    /// Queue journal records for the streams this client follows, while there is room;
    /// true if one stopped for lack of room.
    fn stream_journals(&mut self) -> bool {
        let mut more = false;
        if let Some(mut f) = self.logs {
            let done = LOGS.with(|j| self.stream(&mut f, j.oldest(), j.next_seq(), |seq| j.get(seq).copied(), log_message));
            self.logs = self.finish(f, done, &mut more);
        }
        if let Some(mut f) = self.events {
            let done = EVENTS.with(|j| self.stream(&mut f, j.oldest(), j.next_seq(), |seq| j.get(seq).copied(), event_message));
            self.events = self.finish(f, done, &mut more);
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
            if self.send_record(&Message::Lost { records: oldest - f.cursor }) {
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

    /// After a stream's pass: End it if it is caught up and does not follow. Sets `more`
    /// if it has more to send.
    fn finish(&mut self, f: Follow, caught_up: Option<bool>, more: &mut bool) -> Option<Follow> {
        match caught_up {
            Some(true) if !f.follow && self.send_record(&Message::Reply { req: f.req, body: ReplyBody::End }) => None,
            Some(true) if f.follow => Some(f),
            _ => {
                *more = true;
                Some(f)
            }
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
                    let (boot_ns, text) = kmsg::parse(&record[..n]);
                    let msg = Message::Log { boot_ns, source: LogSource::Kernel, stream: Stream::Out, service: b"", text };
                    self.send_record(&msg);
                }
                Err(rustix::io::Errno::PIPE) => {
                    // Records were overwritten while we read: the kernel skips us ahead.
                    self.send_record(&Message::Lost { records: 1 });
                }
                Err(_) if !d.follow => {
                    self.send_record(&Message::Reply { req: d.req, body: ReplyBody::End });
                    return false;
                }
                Err(_) => break,
            }
        }
        self.dmesg = Some(d);
        more
    }
}

pub fn matches(record: &Record, service: u8) -> bool {
    service == NO_SERVICE || (LogSource::from(record.tag) == LogSource::Service && record.aux == service)
}

fn log_message(client: &mut Client, record: &Record, _seq: u32) -> bool {
    let (source, service): (LogSource, &[u8]) = match LogSource::from(record.tag) {
        LogSource::Service => (LogSource::Service, SERVICES.get(record.aux as usize).map_or(&b""[..], |s| s.name.as_bytes())),
        LogSource::Kernel => (LogSource::Kernel, b""),
        _ => (LogSource::Keel, b""),
    };
    // On a shared line, services that echo are on the console already.
    if client.shared && (source == LogSource::Keel || SERVICES.get(record.aux as usize).is_some_and(|s| s.echo)) {
        return true;
    }
    client.send_record(&Message::Log { boot_ns: record.boot_ns, source, stream: Stream::Out, service, text: record.text() })
}

fn event_message(client: &mut Client, record: &Record, seq: u32) -> bool {
    let (name, detail) = record.name_detail();
    let kind = EventKind::from(record.tag);
    client.send_record(&Message::Event { boot_ns: record.boot_ns, event_seq: seq, kind, name, detail })
}
