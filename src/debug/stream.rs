//! Answers that go on, sent at the client's pace: service entries (Services), journal
//! records (Logs, Events) and kernel records (Dmesg). Each stops when the client's output
//! buffer is full (leaving room for replies) and goes on at the next pass; a record the
//! journal overwrote meanwhile is counted in a Lost message.

use super::client::Client;
use super::kmsg::{self, Kmsg};
use super::REPLY_ROOM;
use crate::log::journal::{Record, View};
use crate::log::{EVENTS, LOGS, NO_SERVICE};
use crate::services::spec;
use crate::services::supervisor::Supervisor;
use keel_proto::{EventKind, LogSource, Message, ReplyBody, Stream, MAX_BINARY_LEN};
use rustix::io::Errno;

/// A stream of journal records being sent: from `cursor` on, answering request `req`.
#[derive(Copy, Clone)]
pub struct Follow {
    pub req: u16,
    pub cursor: u64,
    pub follow: bool,
    /// Logs: only this service (NO_SERVICE: all).
    pub service: u8,
}

pub struct Dmesg {
    pub req: u16,
    pub kmsg: Kmsg,
    pub follow: bool,
    /// Records lost and not told yet.
    pub lost: u64,
}

/// Room before reading a kernel record: its Log frame, a Lost before it, and REPLY_ROOM.
pub(super) const RECORD_ROOM: usize = MAX_BINARY_LEN + 16 + REPLY_ROOM;

impl Client {
    /// Queue what every stream has, while there is room; true if one stopped for lack of it.
    pub fn stream_all(&mut self, services: &Supervisor) -> bool {
        self.stream_services(services) | self.stream_journals() | self.stream_dmesg() | self.stream_previous()
    }

    /// One ServiceEntry per service, then End.
    fn stream_services(&mut self, services: &Supervisor) -> bool {
        let Some((req, mut next)) = self.services else { return false };
        for (name, state, pid, restarts) in services.entries().skip(next as usize) {
            let entry = ReplyBody::ServiceEntry { name: name.as_bytes(), state, pid, restarts };
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
            let done = LOGS.with(|j| self.stream(&mut f, j.view(), log_message));
            self.logs = self.finish(f, done, &mut more);
        }
        if let Some(mut f) = self.events {
            let done = EVENTS.with(|j| self.stream(&mut f, j.view(), event_message));
            self.events = self.finish(f, done, &mut more);
        }
        more
    }

    /// Send records from `f.cursor` on; true when caught up.
    fn stream(&mut self, f: &mut Follow, journal: View, send: fn(&mut Client, &Record, u64) -> bool) -> bool {
        let oldest = journal.oldest();
        if f.cursor < oldest {
            // Overwritten before this client read them.
            if self.send_record(&Message::Lost { records: (oldest - f.cursor).min(u32::MAX.into()) as u32 }) {
                f.cursor = oldest;
            } else {
                return false;
            }
        }
        while f.cursor < journal.next {
            if let Some(record) = journal.get(f.cursor) {
                if matches(record, f.service) && !send(self, record, f.cursor) {
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

    /// Queue kernel records while there is room for the largest; true if it stopped for
    /// lack of it. Records the kernel dropped before we read them are told as Lost.
    #[inline(never)] // smaller out of line (`just size`)
    fn stream_dmesg(&mut self) -> bool {
        let Some(mut d) = self.dmesg.take() else { return false };
        let mut record = [0u8; kmsg::RECORD_MAX];
        loop {
            if self.room() < RECORD_ROOM {
                self.dmesg = Some(d);
                return true;
            }
            match rustix::io::read(crate::sys::fd::borrow(&d.kmsg.fd), &mut record) {
                Ok(n) => {
                    let (seq, boot_ns, text) = kmsg::parse(record.get_mut(..n).unwrap_or_default());
                    let (lost, wanted) = seq.map_or((0, true), |seq| d.kmsg.numbers.seen(seq));
                    d.lost += lost;
                    if wanted {
                        self.tell_lost(&mut d.lost);
                        let msg = Message::Log { boot_ns, source: LogSource::Kernel, stream: Stream::Out, service: b"", text: kmsg::fit(text) };
                        d.lost += !self.send_record(&msg) as u64;
                    }
                }
                // Too long for RECORD_MAX: the kernel skipped it.
                Err(Errno::INVAL) => d.lost += d.kmsg.numbers.skipped() as u64,
                // Overwritten while we read (the next record's number says how many), or a signal.
                Err(Errno::PIPE | Errno::INTR) => {}
                // Caught up (EAGAIN), or /dev/kmsg failed.
                Err(_) => {
                    self.tell_lost(&mut d.lost);
                    if d.follow {
                        self.dmesg = Some(d);
                    } else {
                        self.send_record(&Message::Reply { req: d.req, body: ReplyBody::End });
                    }
                    return false;
                }
            }
        }
    }

    fn tell_lost(&mut self, lost: &mut u64) {
        if *lost > 0 && self.send_record(&Message::Lost { records: (*lost).min(u32::MAX.into()) as u32 }) {
            *lost = 0;
        }
    }
}

pub fn matches(record: &Record, service: u8) -> bool {
    service == NO_SERVICE || (LogSource::from(record.tag) == LogSource::Service && record.aux == service)
}

fn log_message(client: &mut Client, record: &Record, _seq: u64) -> bool {
    let (source, service): (LogSource, &[u8]) = match LogSource::from(record.tag) {
        LogSource::Service => (LogSource::Service, spec::table().get(record.aux as usize).map_or(&b""[..], |s| s.name.as_bytes())),
        LogSource::Kernel => (LogSource::Kernel, b""),
        _ => (LogSource::Keel, b""),
    };
    // On a shared line, services that echo are on the console already.
    if client.shared && (source == LogSource::Keel || spec::table().get(record.aux as usize).is_some_and(|s| s.echo)) {
        return true;
    }
    client.send_record(&Message::Log { boot_ns: record.boot_ns, source, stream: Stream::Out, service, text: record.text() })
}

fn event_message(client: &mut Client, record: &Record, seq: u64) -> bool {
    let (name, detail) = record.name_detail();
    let kind = EventKind::from(record.tag);
    // Its low 32 bits (Journal::widen reads them back).
    client.send_record(&Message::Event { boot_ns: record.boot_ns, event_seq: seq as u32, kind, name, detail })
}
