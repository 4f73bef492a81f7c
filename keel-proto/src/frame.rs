//! The frame body, the same in both line forms:
//! `version:u8 | seq:u16 LE | type:u8 | payload | crc:u32 LE`, the CRC-32 over everything
//! before it. `Frame` is a checked view of a body; `FrameRepr` its value.

use super::crc::crc32;
use super::msg::Message;
use super::{Error, CRC_LEN, HEADER_LEN, MAX_BODY, MAX_PAYLOAD, OVERHEAD, VERSION};

mod field {
    pub type Field = core::ops::Range<usize>;
    pub const VERSION: usize = 0;
    pub const SEQ: Field = 1..3;
    pub const TYPE: usize = 3;
    pub const PAYLOAD: usize = 4;
}

/// The byte at `at`, 0 past the end.
fn byte(b: &[u8], at: usize) -> u8 {
    b.get(at).copied().unwrap_or(0)
}

/// Write `bytes` at `at` if they fit.
fn set(b: &mut [u8], at: usize, bytes: &[u8]) {
    if let Some(dst) = b.get_mut(at..at + bytes.len()) {
        dst.copy_from_slice(bytes);
    }
}

/// A view of one frame body. No getter or setter panics; after `new_checked` they read and
/// write the fields (before it, what a short buffer lacks reads as 0 and is not written).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Frame<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Frame<T> {
    /// A view whose fields mean something once `check_len` has passed: use `new_checked`.
    pub const fn new_unchecked(buffer: T) -> Self {
        Frame { buffer }
    }

    pub fn new_checked(buffer: T) -> Result<Self, Error> {
        let f = Self::new_unchecked(buffer);
        f.check_len()?;
        Ok(f)
    }

    /// Header and CRC fit, and the body is at most `MAX_BODY` long.
    pub fn check_len(&self) -> Result<(), Error> {
        match self.buffer.as_ref().len() {
            n if n < OVERHEAD => Err(Error::Truncated),
            n if n > MAX_BODY => Err(Error::Oversized),
            _ => Ok(()),
        }
    }

    pub fn into_inner(self) -> T {
        self.buffer
    }

    pub fn version(&self) -> u8 {
        byte(self.buffer.as_ref(), field::VERSION)
    }

    pub fn seq(&self) -> u16 {
        let b = self.buffer.as_ref();
        u16::from_le_bytes([byte(b, field::SEQ.start), byte(b, field::SEQ.start + 1)])
    }

    pub fn msg_type(&self) -> u8 {
        byte(self.buffer.as_ref(), field::TYPE)
    }

    pub fn payload(&self) -> &[u8] {
        let b = self.buffer.as_ref();
        b.get(field::PAYLOAD..b.len().saturating_sub(CRC_LEN)).unwrap_or_default()
    }

    /// The CRC stored in the frame.
    pub fn crc(&self) -> u32 {
        let b = self.buffer.as_ref();
        let at = b.len().saturating_sub(CRC_LEN);
        u32::from_le_bytes([byte(b, at), byte(b, at + 1), byte(b, at + 2), byte(b, at + 3)])
    }

    /// Whether the stored CRC is that of the bytes before it.
    pub fn verify_crc(&self) -> bool {
        let b = self.buffer.as_ref();
        b.len() >= CRC_LEN && crc32(b.get(..b.len() - CRC_LEN).unwrap_or_default()) == self.crc()
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Frame<T> {
    pub fn set_version(&mut self, v: u8) {
        set(self.buffer.as_mut(), field::VERSION, &[v]);
    }

    pub fn set_seq(&mut self, seq: u16) {
        set(self.buffer.as_mut(), field::SEQ.start, &seq.to_le_bytes());
    }

    pub fn set_msg_type(&mut self, t: u8) {
        set(self.buffer.as_mut(), field::TYPE, &[t]);
    }

    pub fn payload_mut(&mut self) -> &mut [u8] {
        let b = self.buffer.as_mut();
        let end = b.len().saturating_sub(CRC_LEN);
        b.get_mut(field::PAYLOAD..end).unwrap_or_default()
    }

    /// Compute and store the CRC; last, after every other field.
    pub fn fill_crc(&mut self) {
        let b = self.buffer.as_mut();
        if let Some((covered, stored)) = b.split_at_mut_checked(b.len().saturating_sub(CRC_LEN)) {
            if let Ok(stored) = <&mut [u8; CRC_LEN]>::try_from(stored) {
                *stored = crc32(covered).to_le_bytes();
            }
        }
    }
}

/// One well-formed frame: the right version and CRC, a payload not yet parsed.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct FrameRepr<'a> {
    pub seq: u16,
    pub msg_type: u8,
    pub payload: &'a [u8],
}

impl<'a> FrameRepr<'a> {
    /// Check length, version and CRC (in that order).
    pub fn parse(frame: &Frame<&'a [u8]>) -> Result<FrameRepr<'a>, Error> {
        frame.check_len()?;
        if frame.version() != VERSION {
            return Err(Error::BadVersion(frame.version()));
        }
        if !frame.verify_crc() {
            return Err(Error::BadCrc);
        }
        Ok(Self::from_valid(frame.buffer))
    }

    /// A body that has passed `parse` (the deframers keep only the length of it).
    pub(crate) fn from_valid(body: &'a [u8]) -> FrameRepr<'a> {
        let f = Frame::new_unchecked(body);
        let end = body.len().saturating_sub(CRC_LEN).max(field::PAYLOAD);
        FrameRepr { seq: f.seq(), msg_type: f.msg_type(), payload: body.get(field::PAYLOAD..end).unwrap_or(&[]) }
    }

    /// The message in the payload.
    pub fn message(&self) -> Result<Message<'a>, Error> {
        Message::parse(self.msg_type, self.payload)
    }

    pub fn buffer_len(&self) -> usize {
        OVERHEAD + self.payload.len()
    }

    /// Write the body (CRC included); returns `buffer_len()`.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, Error> {
        emit_with(self.seq, self.msg_type, self.payload.len(), buf, |p| {
            p.copy_from_slice(self.payload);
            Ok(())
        })
    }
}

/// Parse a whole body: what both deframers do with the bytes they collect.
pub fn parse_body(body: &[u8]) -> Result<FrameRepr<'_>, Error> {
    FrameRepr::parse(&Frame::new_checked(body)?)
}

/// Write the body of frame `seq` carrying `msg` into `buf`; returns its length
/// (`OVERHEAD + msg.buffer_len()`), ready for `emit_binary` or `emit_apc`.
pub fn emit_message(seq: u16, msg: &Message, buf: &mut [u8]) -> Result<usize, Error> {
    emit_with(seq, msg.msg_type(), msg.buffer_len(), buf, |p| msg.emit(p).map(|_| ()))
}

fn emit_with(
    seq: u16,
    msg_type: u8,
    payload_len: usize,
    buf: &mut [u8],
    payload: impl FnOnce(&mut [u8]) -> Result<(), Error>,
) -> Result<usize, Error> {
    if payload_len > MAX_PAYLOAD {
        return Err(Error::Oversized);
    }
    let len = HEADER_LEN + payload_len + CRC_LEN;
    let mut f = Frame::new_unchecked(buf.get_mut(..len).ok_or(Error::BufferTooSmall)?);
    f.set_version(VERSION);
    f.set_seq(seq);
    f.set_msg_type(msg_type);
    payload(f.payload_mut())?;
    f.fill_crc();
    Ok(len)
}

/// Lost frames, from the sequence numbers of the frames that arrive: each sender numbers
/// its frames 0, 1, 2, ... (wrapping at 65535), so a jump forward by n is n - 1 frames lost.
/// A jump backwards (or forwards by 32768 or more) is taken as the peer starting over and
/// counts nothing.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct SeqGaps {
    next: Option<u16>,
    /// Frames lost so far (saturating).
    pub lost: u32,
}

impl SeqGaps {
    pub const fn new() -> Self {
        SeqGaps { next: None, lost: 0 }
    }

    /// A frame `seq` arrived: returns how many were lost just before it.
    pub fn observe(&mut self, seq: u16) -> u16 {
        let gap = match self.next {
            Some(next) if seq.wrapping_sub(next) < 0x8000 => seq.wrapping_sub(next),
            _ => 0,
        };
        self.next = Some(seq.wrapping_add(1));
        self.lost = self.lost.saturating_add(u32::from(gap));
        gap
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{hex, XorShift};

    /// Ping { nonce: 0x12345678 } as frame 7; the CRC from python3 `zlib.crc32`.
    const PING: &str = "01 07 00 41 78 56 34 12 4e c8 95 87";

    #[test]
    fn parses_a_ping_body() {
        let body = hex(PING);
        let f = Frame::new_checked(&body[..]).unwrap();
        assert_eq!((f.version(), f.seq(), f.msg_type(), f.payload()), (1, 7, 0x41, &hex("78 56 34 12")[..]));
        assert_eq!(f.crc(), 0x8795_c84e);
        assert!(f.verify_crc());
        let r = parse_body(&body).unwrap();
        assert_eq!(r, FrameRepr { seq: 7, msg_type: 0x41, payload: &hex("78 56 34 12") });
        assert_eq!(r.message(), Ok(Message::Ping { nonce: 0x1234_5678 }));
    }

    #[test]
    fn emits_a_ping_body() {
        let mut buf = [0xa5u8; 16];
        assert_eq!(emit_message(7, &Message::Ping { nonce: 0x1234_5678 }, &mut buf), Ok(12));
        assert_eq!(buf[..12], hex(PING)[..]);
        assert!(buf[12..].iter().all(|&b| b == 0xa5));
        assert_eq!(emit_message(7, &Message::Ping { nonce: 0x1234_5678 }, &mut buf[..12]), Ok(12));
        assert_eq!(emit_message(7, &Message::Ping { nonce: 1 }, &mut buf[..11]), Err(Error::BufferTooSmall));
        let ping = hex(PING);
        let repr = parse_body(&ping).unwrap();
        let mut again = [0xa5u8; 12];
        assert_eq!(repr.emit(&mut again), Ok(repr.buffer_len()));
        assert_eq!(again[..], hex(PING)[..]);
    }

    #[test]
    fn bad_bodies() {
        let body = hex(PING);
        // Each single-bit flip anywhere is caught: by the version check or the CRC.
        for i in 0..body.len() * 8 {
            let mut bad = body.clone();
            bad[i / 8] ^= 1 << (i % 8);
            let want = if i < 8 { Error::BadVersion(bad[0]) } else { Error::BadCrc };
            assert_eq!(parse_body(&bad), Err(want), "bit {i}");
        }
        assert_eq!(parse_body(&body[..7]), Err(Error::Truncated));
        assert_eq!(parse_body(&[]), Err(Error::Truncated));
        assert_eq!(parse_body(&[1; MAX_BODY + 1]), Err(Error::Oversized));
        // An empty payload is a valid frame (Status has none).
        let mut buf = [0u8; 8];
        let empty = FrameRepr { seq: 0xffff, msg_type: 0x42, payload: &[] };
        assert_eq!(empty.emit(&mut buf), Ok(8));
        assert_eq!(parse_body(&buf), Ok(empty));
    }

    #[test]
    fn largest_payload() {
        let payload = [0x5a; MAX_PAYLOAD];
        let mut buf = [0u8; MAX_BODY];
        let r = FrameRepr { seq: 1, msg_type: 2, payload: &payload };
        assert_eq!(r.emit(&mut buf), Ok(MAX_BODY));
        assert_eq!(parse_body(&buf), Ok(r));
        let too_big = [0x5a; MAX_PAYLOAD + 1];
        let r = FrameRepr { seq: 1, msg_type: 2, payload: &too_big };
        assert_eq!(r.emit(&mut [0u8; 2048]), Err(Error::Oversized));
    }

    #[test]
    fn sequence_gaps() {
        let mut g = SeqGaps::new();
        assert_eq!(g.observe(5), 0); // the first frame seen
        assert_eq!(g.observe(6), 0);
        assert_eq!(g.observe(9), 2);
        assert_eq!(g.observe(10), 0);
        assert_eq!(g.lost, 2);
        // Wrapping: 65534, 65535, 0, 2
        let mut g = SeqGaps::new();
        for (seq, gap) in [(65534, 0), (65535, 0), (0, 0), (2, 1)] {
            assert_eq!(g.observe(seq), gap);
        }
        // The peer started over: nothing counted.
        assert_eq!(g.observe(0), 0);
        assert_eq!(g.lost, 1);
    }

    #[test]
    fn random_bodies_never_panic() {
        let mut rng = XorShift(0x1234_5678_9abc_def1);
        let mut hits = 0;
        for _ in 0..5000 {
            let mut body = rng.junk(40);
            if rng.below(2) == 0 && body.len() >= 8 {
                // Half of them with a good version and CRC, so the message parser runs.
                body[0] = VERSION;
                Frame::new_unchecked(&mut body[..]).fill_crc();
            }
            if let Ok(r) = parse_body(&body) {
                hits += 1;
                assert_eq!(r.buffer_len(), body.len());
                let _ = r.message();
            }
        }
        assert!(hits > 1000);
    }
}
