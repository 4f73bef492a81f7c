//! Logs and Dmesg with `previous`: the previous boot (log::pstore), read from its records at
//! the client's pace: first the PreviousBoot event (how it ended), then its lines, then End.

use super::client::Client;
use super::kmsg;
use super::stream::RECORD_ROOM;
use crate::log::pstore::{Cursor, LINE_MAX, PREVIOUS};
use keel_proto::{EventKind, LogSource, Message, ReplyBody, Stream};

pub struct Previous {
    req: u16,
    /// keel's lines (Logs), else the kernel's (Dmesg).
    keel: bool,
    cursor: Cursor,
    /// Lines before the last `tail`.
    skip: u32,
    told: bool,
}

impl Previous {
    #[inline(never)] // one copy for Logs and Dmesg
    pub fn new(req: u16, keel: bool, tail: u16) -> Previous {
        let lines = PREVIOUS.with(|p| p.lines[keel as usize]).unwrap_or(0);
        Previous { req, keel, cursor: Cursor::default(), skip: lines.saturating_sub(tail.into()), told: false }
    }
}

impl Client {
    /// Queue the previous boot's stream while there is room; true if it stopped for lack of it.
    #[inline(never)] // smaller out of line (`just size`)
    pub fn stream_previous(&mut self) -> bool {
        let Some(mut s) = self.previous.take() else { return false };
        let mut buf = [0u8; LINE_MAX];
        let more = PREVIOUS.with(|p| loop {
            if self.room() < RECORD_ROOM {
                break true;
            }
            if !s.told {
                let (boot_ns, seq) = p.event;
                let name = p.ending.name().as_bytes();
                s.told = self.send_record(&Message::Event { boot_ns, event_seq: seq as u32, kind: EventKind::PreviousBoot, name, detail: &p.detail });
                continue;
            }
            let Some((boot_ns, text)) = p.next_of(s.keel, &mut s.cursor, &mut buf) else {
                break !self.send_record(&Message::Reply { req: s.req, body: ReplyBody::End });
            };
            if s.skip > 0 {
                s.skip -= 1;
                continue;
            }
            let source = if s.keel { LogSource::Keel } else { LogSource::Kernel };
            self.send_record(&Message::Log { boot_ns, source, stream: Stream::Out, service: b"", text: kmsg::fit(text) });
        });
        let more = more.unwrap_or(true);
        if more {
            self.previous = Some(s);
        }
        more
    }
}
