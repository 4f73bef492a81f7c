//! The debug protocol server (wire format: `keel_proto`, docs/protocol.md). Read in order:
//! - `server`: the channels keel serves, listeners (unix, vsock: several clients each) and
//!   devices (a UART, a virtio-console port: one peer, kept across its reconnections);
//!   accepting clients, evicting one when every slot is taken; the pass that moves every
//!   client's output along;
//! - `client`: one client session: its fixed buffers, reading requests and answering them;
//! - `stream`: answers of many parts, sent at the client's pace: service entries, journal
//!   records (logs, events) and kernel records;
//! - `channel`: opening channels (sockets, devices in raw mode);
//! - `kmsg`: reading and parsing /dev/kmsg; `rss`: keel's resident memory for Status;
//! - `previous`: the previous boot's logs (log::pstore), for Logs and Dmesg `previous`;
//! - this file: the rules the server keeps (room for replies, who is evicted).
//!
//! Every client has fixed buffers; a slow one loses records (counted, and told with a Lost
//! message), it never blocks PID 1; every reply arrives whole. Requests that change
//! something (start/stop/restart, power) are refused on read-only channels. A shared line
//! (kernel console) only carries output, in APC strings: its input belongs to whoever reads
//! the console (a shell), so keel does not read it.
//!
//! `server`, `client`, `stream` and `channel` drive the supervisor and the event loop: they
//! are PID 1 only. The rest is pure enough to be unit-tested on the host.

pub mod kmsg;
pub mod rss;

#[cfg(all(not(test), feature = "rt"))]
mod channel;
#[cfg(all(not(test), feature = "rt"))]
mod client;
#[cfg(all(not(test), feature = "rt"))]
mod previous;
#[cfg(all(not(test), feature = "rt"))]
mod server;
#[cfg(all(not(test), feature = "rt"))]
mod stream;

#[cfg(all(not(test), feature = "rt"))]
pub use server::{Ctx, Server};

pub const MAX_LISTENERS: usize = 4;
/// Clients of every channel together (a device channel is one).
pub const MAX_CLIENTS: usize = 4;

/// Room in a client's output buffer for the immediate reply to one request: the largest
/// (Status, with a configuration path of up to 128 bytes; an ErrorReply whose message is at
/// most 48 bytes) in binary form. Streams leave it free, and requests are read only while
/// their replies fit: a reply is never dropped.
pub const REPLY_ROOM: usize = 168;
/// The shortest request on the line: an 8-byte body, COBS-encoded, and its 0x00.
const MIN_REQUEST: usize = 10;

/// How many bytes of requests may be read with `room` bytes free for replies: no more
/// requests than replies that fit (one may end in these bytes with most of it read before).
pub fn readable(room: usize) -> usize {
    match room / REPLY_ROOM {
        0 => 0,
        n => (n - 1) * MIN_REQUEST + 1,
    }
}

/// Which client goes to let a new one in, of those that may (`Some((stalled, last_active))`:
/// a listener's, not a device's): the one stalled longest (output waiting that it does not
/// read), else the one idle longest.
pub fn victim(clients: impl Iterator<Item = Option<(bool, u64)>>) -> Option<usize> {
    let mut best = None;
    for (i, client) in clients.enumerate() {
        let Some((stalled, active)) = client else { continue };
        // Stalled first, then by age (a count of events never reaches 2^63).
        let key = active | (!stalled as u64) << 63;
        if best.is_none_or(|(k, _)| key < k) {
            best = Some((key, i));
        }
    }
    best.map(|(_, i)| i)
}

#[cfg(test)]
mod tests {
    use super::*;
    use keel_proto::{emit_binary, emit_message, ErrorCode, Message, ReplyBody, MAX_BINARY_LEN, MAX_BODY};

    fn binary_len(msg: &Message) -> usize {
        let (mut body, mut line) = ([0u8; MAX_BODY], [0u8; MAX_BINARY_LEN]);
        let len = emit_message(0xffff, msg, &mut body).unwrap();
        emit_binary(&body[..len], &mut line).unwrap()
    }

    #[test]
    fn the_largest_immediate_replies_fit_the_reply_room() {
        let status = ReplyBody::Status { uptime_ns: u64::MAX, ready_ns: u64::MAX, rss_kib: u32::MAX, services: 128, failed: 128, config: &[b'x'; 128] };
        let replies = [
            Message::Reply { req: 0xffff, body: status },
            Message::ErrorReply { req: 0xffff, code: ErrorCode::Unsupported, message: &[b'x'; 48] },
            Message::Hello { proto: keel_proto::PROTO, keel_version: env!("CARGO_PKG_VERSION").as_bytes(), features: u32::MAX },
        ];
        for msg in replies {
            assert!(binary_len(&msg) <= REPLY_ROOM, "{msg:?}: {}", binary_len(&msg));
        }
        assert!(binary_len(&replies[0]) > REPLY_ROOM - 4, "the room is not much larger than needed");
    }

    #[test]
    fn the_client_stalled_or_idle_longest_makes_room() {
        let pick = |c: &[Option<(bool, u64)>]| victim(c.iter().copied());
        assert_eq!(pick(&[Some((false, 5)), Some((false, 3)), Some((false, 9))]), Some(1), "idle longest");
        assert_eq!(pick(&[Some((false, 1)), Some((true, 7)), Some((true, 4))]), Some(2), "stalled first");
        assert_eq!(pick(&[None, Some((false, 8)), None]), Some(1), "devices stay");
        assert_eq!(pick(&[None, None]), None);
        assert_eq!(pick(&[]), None);
    }

    #[test]
    fn requests_read_never_outnumber_the_replies_that_fit() {
        // Frames a read of k bytes can complete: one begun in an earlier read, then one per
        // MIN_REQUEST bytes.
        let frames = |k: usize| if k == 0 { 0 } else { 1 + (k - 1) / MIN_REQUEST };
        for room in 0..4 * REPLY_ROOM * 20 {
            let k = readable(room);
            assert!(frames(k) * REPLY_ROOM <= room, "room {room}: {k} bytes");
            assert!(frames(k + MIN_REQUEST) * REPLY_ROOM > room, "room {room}: {k} is not the most");
        }
        assert_eq!(readable(REPLY_ROOM - 1), 0);
        assert_eq!(readable(REPLY_ROOM), 1);
    }
}
