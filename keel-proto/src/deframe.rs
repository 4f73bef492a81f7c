//! Streaming decoders for both line forms, over a fixed body buffer of `N` bytes
//! (`MAX_BODY` for a normal reader). Feed them whatever a read returned, in chunks of any
//! size: `while let Some(x) = d.next(&mut chunk) { ... }` consumes the chunk and yields what
//! completes in it. Bad input is dropped and counted in `Stats`, never an error or a panic.

use super::apc::{sextet, ESC};
use super::cobs;
use super::frame::{parse_body, FrameRepr};
use super::Error;

/// What the deframers dropped and kept (each counter wraps).
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Good frames given to the caller.
    pub frames: u32,
    pub bad_crc: u32,
    /// A well-formed frame of another format version.
    pub bad_version: u32,
    /// More than the buffer holds (or `MAX_BODY`) before the end of the frame.
    pub oversized: u32,
    /// Bad COBS or base64, a body shorter than header and CRC.
    pub malformed: u32,
}

fn bump(counter: &mut u32) {
    *counter = counter.wrapping_add(1);
}

impl Stats {
    const ZERO: Stats = Stats { frames: 0, bad_crc: 0, bad_version: 0, oversized: 0, malformed: 0 };

    /// Count what `body` is; true if it is a good frame.
    fn count(&mut self, body: &[u8]) -> bool {
        let result = parse_body(body).map(|_| ());
        bump(match result {
            Ok(()) => &mut self.frames,
            Err(Error::BadCrc) => &mut self.bad_crc,
            Err(Error::BadVersion(_)) => &mut self.bad_version,
            Err(Error::Oversized) => &mut self.oversized,
            Err(_) => &mut self.malformed,
        });
        result.is_ok()
    }

    /// All frames seen, good or not.
    pub fn total(&self) -> u32 {
        self.frames
            .wrapping_add(self.bad_crc)
            .wrapping_add(self.bad_version)
            .wrapping_add(self.oversized)
            .wrapping_add(self.malformed)
    }
}

/// The binary form: COBS blocks ending at 0x00. Noise decodes as a bad frame (counted) and
/// the next 0x00 ends it; an empty frame (two 0x00 in a row) is ignored, so a sender may
/// start with a 0x00 to end any noise before it.
pub struct BinaryDeframer<const N: usize> {
    buf: [u8; N],
    len: usize,
    cobs: cobs::Decoder,
    /// Too long: drop everything up to the next 0x00.
    skip: bool,
    stats: Stats,
}

impl<const N: usize> Default for BinaryDeframer<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> BinaryDeframer<N> {
    pub const fn new() -> Self {
        BinaryDeframer { buf: [0; N], len: 0, cobs: cobs::Decoder::new(), skip: false, stats: Stats::ZERO }
    }

    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// Consume `input` up to the end of the next good frame and return it; None once all of
    /// `input` is consumed without completing one.
    pub fn next(&mut self, input: &mut &[u8]) -> Option<FrameRepr<'_>> {
        while let Some((&b, rest)) = input.split_first() {
            *input = rest;
            if let Some(len) = self.step(b) {
                return Some(FrameRepr::from_valid(self.buf.get(..len).unwrap_or_default()));
            }
        }
        None
    }

    /// One byte; the length of a good body when it ends one.
    fn step(&mut self, b: u8) -> Option<usize> {
        if b != 0 {
            if !self.skip {
                if let Some(x) = self.cobs.push(b) {
                    match self.buf.get_mut(self.len) {
                        Some(slot) => {
                            *slot = x;
                            self.len += 1;
                        }
                        None => {
                            bump(&mut self.stats.oversized);
                            self.skip = true;
                        }
                    }
                }
            }
            return None;
        }
        let idle = self.len == 0 && self.cobs == cobs::Decoder::new();
        let complete = self.cobs.end();
        let len = core::mem::take(&mut self.len);
        // An oversized frame was counted when it overflowed.
        if core::mem::take(&mut self.skip) || idle {
            return None;
        }
        if !complete {
            bump(&mut self.stats.malformed);
            return None;
        }
        self.stats.count(self.buf.get(..len).unwrap_or_default()).then_some(len)
    }
}

/// What the shared-line splitter yields: text (everything outside keel's APC strings,
/// byte for byte, in runs of any length) or a good frame.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Piece<'t, 'f> {
    Text(&'t [u8]),
    Frame(FrameRepr<'f>),
}

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum State {
    Text,
    /// After ESC in text.
    Esc,
    /// After `ESC _`.
    EscUnderscore,
    /// In the base64 of a frame.
    Apc,
    /// After ESC in a frame: `\` ends it.
    ApcEsc,
    /// Dropping a bad APC string up to the next ESC.
    Skip,
    /// After that ESC: `\` ends the dropped string, anything else is looked at afresh.
    SkipEsc,
}

/// `ESC _`: text the splitter held back and then found was not a frame.
const HELD: &[u8] = b"\x1b_";

/// The shared-line form: kernel text with `ESC _ k base64 ESC \` frames between it. A bare
/// ESC, or `ESC _` not followed by `k`, is text. A bad or oversized APC string is dropped
/// (counted) up to the next ESC, like a terminal hides it up to its terminator.
pub struct ApcSplitter<const N: usize> {
    buf: [u8; N],
    len: usize,
    state: State,
    /// Base64 decoding: the last sextets, how many of a group of 4, padding seen.
    bits: u32,
    sextets: u8,
    padded: bool,
    stats: Stats,
}

impl<const N: usize> Default for ApcSplitter<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> ApcSplitter<N> {
    pub const fn new() -> Self {
        ApcSplitter { buf: [0; N], len: 0, state: State::Text, bits: 0, sextets: 0, padded: false, stats: Stats::ZERO }
    }

    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// Consume `input` up to the end of the next text run or good frame and return it;
    /// None once all of `input` is consumed. An ESC at the end of `input` is held until the
    /// next call shows whether it starts a frame.
    pub fn next<'i>(&mut self, input: &mut &'i [u8]) -> Option<Piece<'i, '_>> {
        loop {
            if let State::Text | State::Skip = self.state {
                if input.is_empty() {
                    return None;
                }
                let at = memchr::memchr(ESC, input).unwrap_or(input.len());
                let (run, rest) = input.split_at(at);
                *input = rest;
                let text = self.state == State::Text;
                if let Some((_, rest)) = input.split_first() {
                    *input = rest;
                    self.state = if text { State::Esc } else { State::SkipEsc };
                }
                if text && !run.is_empty() {
                    return Some(Piece::Text(run));
                }
                continue;
            }
            let (&b, rest) = input.split_first()?;
            match self.state {
                State::Esc if b != b'_' => {
                    self.state = State::Text;
                    return Some(Piece::Text(&HELD[..1]));
                }
                State::Esc => self.state = State::EscUnderscore,
                State::EscUnderscore if b != b'k' => {
                    self.state = State::Text;
                    return Some(Piece::Text(HELD));
                }
                State::EscUnderscore => self.begin(),
                State::Apc => self.apc_byte(b),
                // Not a terminator: the frame is cut short; this ESC may start the next one.
                State::ApcEsc if b != b'\\' => {
                    bump(&mut self.stats.malformed);
                    self.state = State::Esc;
                    continue;
                }
                State::ApcEsc => {
                    *input = rest;
                    self.state = State::Text;
                    if let Some(len) = self.finish() {
                        return Some(Piece::Frame(FrameRepr::from_valid(&self.buf[..len])));
                    }
                    continue;
                }
                State::SkipEsc if b != b'\\' => {
                    self.state = State::Esc;
                    continue;
                }
                State::SkipEsc | State::Text | State::Skip => self.state = State::Text,
            }
            *input = rest;
        }
    }

    fn begin(&mut self) {
        self.state = State::Apc;
        self.len = 0;
        self.bits = 0;
        self.sextets = 0;
        self.padded = false;
    }

    fn apc_byte(&mut self, b: u8) {
        match (b, sextet(b)) {
            (ESC, _) => self.state = State::ApcEsc,
            (_, Some(v)) if !self.padded => {
                self.bits = self.bits << 6 | u32::from(v);
                self.sextets += 1;
                if self.sextets == 4 {
                    self.sextets = 0;
                    let bytes = self.bits.to_be_bytes();
                    if !self.put(&bytes[1..]) {
                        self.state = State::Skip;
                    }
                }
            }
            (b'=', _) => self.padded = true,
            _ => {
                bump(&mut self.stats.malformed);
                self.state = State::Skip;
            }
        }
    }

    /// Append decoded bytes; false (counted) if they do not fit.
    fn put(&mut self, bytes: &[u8]) -> bool {
        match self.buf.get_mut(self.len..self.len + bytes.len()) {
            Some(dst) => {
                dst.copy_from_slice(bytes);
                self.len += bytes.len();
                true
            }
            None => {
                bump(&mut self.stats.oversized);
                false
            }
        }
    }

    /// At `ESC \`: the last partial group, then the body; its length if it is good.
    fn finish(&mut self) -> Option<usize> {
        let tail = match self.sextets {
            0 => 0,
            2 => 1,
            3 => 2,
            _ => {
                bump(&mut self.stats.malformed);
                return None;
            }
        };
        let bytes = (self.bits << (6 * (4 - u32::from(self.sextets)))).to_be_bytes();
        if !self.put(&bytes[1..1 + tail]) {
            return None;
        }
        self.stats.count(&self.buf[..self.len]).then_some(self.len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{hex, XorShift};
    use crate::{emit_apc, emit_binary, emit_message, Message, ReplyBody, LogSource, Stream, MAX_BODY};

    // Frames generated independently (python3 struct, zlib.crc32, base64; docs/protocol.md).
    /// Ping { nonce: 0x12345678 }, seq 7.
    const PING_BIN: &str = "03 01 07 0a 41 78 56 34 12 4e c8 95 87 00";
    const PING_APC: &[u8] = b"\x1b_kAQcAQXhWNBJOyJWH\x1b\\";
    /// Reply { req: 8, Status { 12345678901, 512000000, 1234, 5, 1 } }, seq 21.
    const STATUS_BIN: &str = "03 01 15 03 04 08 07 03 35 1c dc df 02 01 01 01 04 80 84 1e 01 01 01 03 d2 04 01 02 05 02 01 05 5c 95 80 85 00";
    const STATUS_APC: &[u8] = b"\x1b_kARUABAgAAzUc3N8CAAAAAICEHgAAAADSBAAABQABAFyVgIU\x1b\\";
    /// Log { 1234567891, service, err, "sshd", "listening\n" }, seq 20.
    const LOG_BIN: &str =
        "03 01 14 06 02 d3 02 96 49 01 01 01 04 02 01 04 06 73 73 68 64 0a 0f 6c 69 73 74 65 6e 69 6e 67 0a 28 c0 e6 a0 00";
    const LOG_APC: &[u8] = b"\x1b_kARQAAtMClkkAAAAAAgEEAHNzaGQKAGxpc3RlbmluZwoowOag\x1b\\";
    /// ErrorReply { req: 9, NoSuchService, "no such service" }, seq 22.
    const ERROR_BIN: &str = "03 01 16 03 05 09 03 04 0f 14 6e 6f 20 73 75 63 68 20 73 65 72 76 69 63 65 0f ee de 34 00";
    const ERROR_APC: &[u8] = b"\x1b_kARYABQkABA8Abm8gc3VjaCBzZXJ2aWNlD+7eNA\x1b\\";

    fn ping() -> Message<'static> {
        Message::Ping { nonce: 0x1234_5678 }
    }
    fn status() -> Message<'static> {
        let body = ReplyBody::Status {
            uptime_ns: 12_345_678_901,
            ready_ns: 512_000_000,
            rss_kib: 1234,
            services: 5,
            failed: 1,
            config: b"",
        };
        Message::Reply { req: 8, body }
    }
    fn log() -> Message<'static> {
        Message::Log {
            boot_ns: 1_234_567_891,
            source: LogSource::Service,
            stream: Stream::Err,
            service: b"sshd",
            text: b"listening\n",
        }
    }
    fn error() -> Message<'static> {
        Message::ErrorReply { req: 9, code: crate::ErrorCode::NoSuchService, message: b"no such service" }
    }
    fn samples() -> [(u16, Message<'static>); 4] {
        [(7, ping()), (21, status()), (20, log()), (22, error())]
    }

    /// A good frame as seq, type and payload, owned.
    type Owned = (u16, u8, Vec<u8>);
    fn owned(f: &FrameRepr) -> Owned {
        (f.seq, f.msg_type, f.payload.to_vec())
    }

    fn body(seq: u16, m: &Message) -> Vec<u8> {
        let mut b = [0u8; MAX_BODY];
        let n = emit_message(seq, m, &mut b).unwrap();
        b[..n].to_vec()
    }
    fn binary(seq: u16, m: &Message) -> Vec<u8> {
        let mut out = [0xa5u8; crate::MAX_BINARY_LEN];
        let n = emit_binary(&body(seq, m), &mut out).unwrap();
        out[..n].to_vec()
    }
    fn apc(seq: u16, m: &Message) -> Vec<u8> {
        let mut out = [0xa5u8; crate::MAX_APC_LEN];
        let n = emit_apc(&body(seq, m), &mut out).unwrap();
        out[..n].to_vec()
    }

    /// Feed `chunks` to a binary deframer; the frames it gives and its stats.
    fn run_binary<const N: usize>(chunks: &[&[u8]]) -> (Vec<Owned>, Stats) {
        let mut d = BinaryDeframer::<N>::new();
        let mut got = Vec::new();
        for chunk in chunks {
            let mut rest = *chunk;
            while let Some(f) = d.next(&mut rest) {
                got.push(owned(&f));
            }
            assert!(rest.is_empty());
        }
        (got, d.stats())
    }

    #[derive(Clone, Debug, PartialEq, Eq)]
    enum Out {
        Text(Vec<u8>),
        Frame(Owned),
    }

    /// Feed `chunks` to an APC splitter; text runs merged, frames, stats.
    fn run_apc<const N: usize>(chunks: &[&[u8]]) -> (Vec<Out>, Stats) {
        let mut d = ApcSplitter::<N>::new();
        let mut got = Vec::new();
        for chunk in chunks {
            let mut rest = *chunk;
            while let Some(p) = d.next(&mut rest) {
                match p {
                    Piece::Text(t) => {
                        assert!(!t.is_empty());
                        match got.last_mut() {
                            Some(Out::Text(prev)) => prev.extend_from_slice(t),
                            _ => got.push(Out::Text(t.to_vec())),
                        }
                    }
                    Piece::Frame(f) => got.push(Out::Frame(owned(&f))),
                }
            }
            assert!(rest.is_empty());
        }
        (got, d.stats())
    }

    fn stats(frames: u32, bad_crc: u32, bad_version: u32, oversized: u32, malformed: u32) -> Stats {
        Stats { frames, bad_crc, bad_version, oversized, malformed }
    }

    #[test]
    fn emitters_match_the_vectors() {
        let [p, s, l, e] = samples().map(|(seq, m)| (binary(seq, &m), apc(seq, &m)));
        assert_eq!((p.0, p.1), (hex(PING_BIN), PING_APC.to_vec()));
        assert_eq!((s.0, s.1), (hex(STATUS_BIN), STATUS_APC.to_vec()));
        assert_eq!((l.0, l.1), (hex(LOG_BIN), LOG_APC.to_vec()));
        assert_eq!((e.0, e.1), (hex(ERROR_BIN), ERROR_APC.to_vec()));
        // The Status request, frame 8.
        assert_eq!(body(8, &Message::Status), hex("01 08 00 42 7d c9 39 0f"));
        assert_eq!(binary(8, &Message::Status), hex("03 01 08 06 42 7d c9 39 0f 00"));
        assert_eq!(apc(8, &Message::Status), b"\x1b_kAQgAQn3JOQ8\x1b\\");
    }

    #[test]
    fn binary_frames_decode() {
        let (got, st) = run_binary::<MAX_BODY>(&[&hex(PING_BIN)]);
        assert_eq!(got, [(7, 0x41, hex("78 56 34 12"))]);
        assert_eq!(st, stats(1, 0, 0, 0, 0));
        assert_eq!(parse_body(&body(7, &ping())).unwrap().message(), Ok(ping()));
        let (got, _) = run_binary::<MAX_BODY>(&[&hex(STATUS_BIN), &hex(LOG_BIN), &hex(ERROR_BIN)]);
        let msgs: Vec<_> = got.iter().map(|(_, t, p)| Message::parse(*t, p).unwrap()).collect();
        assert_eq!(msgs, [status(), log(), error()]);
        assert_eq!(got.iter().map(|f| f.0).collect::<Vec<_>>(), [21, 20, 22]);
    }

    /// All four frames back to back, split into two chunks at every byte boundary, and
    /// byte by byte.
    #[test]
    fn binary_split_at_every_boundary() {
        let stream: Vec<u8> = [PING_BIN, STATUS_BIN, LOG_BIN, ERROR_BIN].iter().flat_map(|h| hex(h)).collect();
        let (want, _) = run_binary::<MAX_BODY>(&[&stream]);
        assert_eq!(want.len(), 4);
        for at in 0..=stream.len() {
            let (got, st) = run_binary::<MAX_BODY>(&[&stream[..at], &stream[at..]]);
            assert_eq!(got, want, "split at {at}");
            assert_eq!(st, stats(4, 0, 0, 0, 0));
        }
        let bytes: Vec<&[u8]> = stream.chunks(1).collect();
        assert_eq!(run_binary::<MAX_BODY>(&bytes).0, want);
    }

    #[test]
    fn binary_resyncs_after_noise() {
        let ping = hex(PING_BIN);
        // Noise ending in 0x00 before a frame: dropped and counted, the frame comes out.
        let mut stream = b"\x12garbage\xff\xfe".to_vec();
        stream.push(0);
        stream.extend_from_slice(&ping);
        stream.extend_from_slice(b"\x05\x01\x02\x00");
        stream.extend_from_slice(&ping);
        let (got, st) = run_binary::<MAX_BODY>(&[&stream]);
        assert_eq!(got.len(), 2);
        assert_eq!(st.frames, 2);
        assert_eq!(st.total(), 4);
        // Empty frames (a lone 0x00, as a sender may send first) are not counted.
        let mut stream = vec![0, 0, 0];
        stream.extend_from_slice(&ping);
        stream.extend_from_slice(&[0, 0]);
        assert_eq!(run_binary::<MAX_BODY>(&[&stream]).1, stats(1, 0, 0, 0, 0));
        // A cut COBS block (code 0x0a, fewer bytes before the 0x00) is malformed.
        let mut cut = ping[..8].to_vec();
        cut.push(0);
        cut.extend_from_slice(&ping);
        assert_eq!(run_binary::<MAX_BODY>(&[&cut]).1, stats(1, 0, 0, 0, 1));
        // Noise without its own 0x00 merges into the next frame, which is lost.
        let mut merged = b"\x7f".to_vec();
        merged.extend_from_slice(&ping);
        merged.extend_from_slice(&ping);
        let (got, st) = run_binary::<MAX_BODY>(&[&merged]);
        assert_eq!((got.len(), st.total()), (1, 2));
    }

    #[test]
    fn binary_bad_crc_version_and_length() {
        let good = body(7, &ping());
        let enc = |b: &[u8]| {
            let mut out = vec![0; crate::MAX_BINARY_LEN];
            let n = emit_binary(b, &mut out).unwrap();
            out.truncate(n);
            out
        };
        let mut bad_crc = good.clone();
        bad_crc[5] ^= 0x40;
        let mut bad_version = good.clone();
        bad_version[0] = 2;
        let mut stream = enc(&bad_crc);
        stream.extend(enc(&good));
        stream.extend(enc(&bad_version));
        stream.extend(enc(&good[..7])); // shorter than header and CRC
        stream.extend(enc(&good));
        let (got, st) = run_binary::<MAX_BODY>(&[&stream]);
        assert_eq!(got.len(), 2);
        assert_eq!(st, stats(2, 1, 1, 0, 1));
    }

    #[test]
    fn binary_oversized_input() {
        let ping = hex(PING_BIN);
        // 3000 non-zero bytes with no delimiter: dropped, counted once, then back in sync.
        let mut stream = vec![0x42; 3000];
        stream.push(0);
        stream.extend_from_slice(&ping);
        let (got, st) = run_binary::<MAX_BODY>(&[&stream]);
        assert_eq!((got.len(), st), (1, stats(1, 0, 0, 1, 0)));
        // A small buffer: a 12-byte body fits in 12, the 32-byte Status reply does not.
        let mut stream = hex(STATUS_BIN);
        stream.extend_from_slice(&ping);
        let (got, st) = run_binary::<12>(&[&stream]);
        assert_eq!((got.len(), st), (1, stats(1, 0, 0, 1, 0)));
        assert_eq!(run_binary::<11>(&[&ping]).1, stats(0, 0, 0, 1, 0));
        // The largest body passes; a buffer over MAX_BODY does not let a longer one through.
        let big =
            Message::Log { boot_ns: 0, source: LogSource::Keel, stream: Stream::Out, service: b"", text: &[0x33; 1002] };
        assert_eq!(big.buffer_len(), crate::MAX_PAYLOAD);
        let (got, _) = run_binary::<MAX_BODY>(&[&binary(1, &big)]);
        assert_eq!(got[0].2.len(), crate::MAX_PAYLOAD);
        let mut long = vec![0x11; MAX_BODY + 1];
        long[0] = 1;
        let mut cobs = vec![0; 2000];
        let n = crate::cobs::encode(&long, &mut cobs).unwrap();
        cobs.truncate(n);
        cobs.push(0);
        assert_eq!(run_binary::<2048>(&[&cobs]).1, stats(0, 0, 0, 1, 0));
    }

    #[test]
    fn apc_frames_decode() {
        let (got, st) = run_apc::<MAX_BODY>(&[PING_APC]);
        assert_eq!(got, [Out::Frame((7, 0x41, hex("78 56 34 12")))]);
        assert_eq!(st, stats(1, 0, 0, 0, 0));
        // Padding is accepted: a 9-byte body is 12 characters; add two `=` anyway.
        let mut b64 = apc(3, &Message::Power { cmd: crate::PowerCmd::Reboot });
        let end = b64.len() - 2;
        b64.splice(end..end, *b"==");
        assert_eq!(run_apc::<MAX_BODY>(&[&b64]).1, stats(1, 0, 0, 0, 0));
        // No data after padding.
        b64.splice(end + 1..end + 1, *b"A");
        assert_eq!(run_apc::<MAX_BODY>(&[&b64]).1, stats(0, 0, 0, 0, 1));
    }

    /// Kernel text with frames between its lines, and ANSI colour sequences in it.
    fn console() -> (Vec<u8>, Vec<Out>) {
        let texts: [&[u8]; 4] = [
            b"[    0.000000] Linux version 6.1.0\r\n",
            b"[    0.912345] \x1b[31mata1: link down\x1b[0m\r\nlogin: ",
            b"\x1b_x not ours \x1b\\ \x1b\x1b",
            b"tail",
        ];
        let frames = [PING_APC, STATUS_APC, LOG_APC];
        let mut stream = Vec::new();
        let mut want = Vec::new();
        for (i, t) in texts.iter().enumerate() {
            stream.extend_from_slice(t);
            want.push(Out::Text(t.to_vec()));
            if let Some(f) = frames.get(i) {
                stream.extend_from_slice(f);
                let (seq, m) = &samples()[i];
                want.push(Out::Frame(owned(&parse_body(&body(*seq, m)).unwrap())));
            }
        }
        (stream, want)
    }

    #[test]
    fn interleaved_text_and_frames() {
        let (stream, want) = console();
        let (got, st) = run_apc::<MAX_BODY>(&[&stream]);
        assert_eq!(got, want);
        assert_eq!(st, stats(3, 0, 0, 0, 0));
        for at in 0..=stream.len() {
            let (got, st) = run_apc::<MAX_BODY>(&[&stream[..at], &stream[at..]]);
            assert_eq!(got, want, "split at {at}");
            assert_eq!(st.frames, 3);
        }
        let bytes: Vec<&[u8]> = stream.chunks(1).collect();
        assert_eq!(run_apc::<MAX_BODY>(&bytes).0, want);
    }

    #[test]
    fn bare_escapes_are_text() {
        for text in
            [&b"\x1b"[..], b"\x1b\x1b", b"a\x1bb", b"\x1b_", b"\x1b_x", b"\x1b[2J", b"\x1b\\", b"x\x1b_\x1b_\x1b"]
        {
            let (got, st) = run_apc::<MAX_BODY>(&[text, b"."]);
            let mut want = text.to_vec();
            want.push(b'.');
            assert_eq!(got, [Out::Text(want)], "{text:?}");
            assert_eq!(st, Stats::default());
        }
        // An ESC at the end of a read is held back until the next read tells.
        let mut d = ApcSplitter::<MAX_BODY>::new();
        let mut rest = &b"abc\x1b"[..];
        assert_eq!(d.next(&mut rest), Some(Piece::Text(b"abc")));
        assert_eq!(d.next(&mut rest), None);
        let mut rest = &PING_APC[1..];
        assert!(matches!(d.next(&mut rest), Some(Piece::Frame(f)) if f.seq == 7));
        assert_eq!(d.next(&mut rest), None);
    }

    #[test]
    fn apc_recovers_from_bad_strings() {
        let after = |bad: &[u8]| {
            let mut s = bad.to_vec();
            s.extend_from_slice(b"after\n");
            s.extend_from_slice(PING_APC);
            run_apc::<MAX_BODY>(&[&s])
        };
        let good = Out::Frame((7, 0x41, hex("78 56 34 12")));
        // A character outside base64: the string is dropped up to its terminator.
        let (got, st) = after(b"\x1b_kAQc!AQXhWNBJOyJWH\x1b\\");
        assert_eq!(got, [Out::Text(b"after\n".to_vec()), good.clone()]);
        assert_eq!(st, stats(1, 0, 0, 0, 1));
        // Text printed into the middle of a frame: lost up to the next ESC (as a terminal
        // hides it), and that ESC is seen afresh.
        let (got, st) = after(b"\x1b_kAQcAQX[ 1.0] oops\r\n");
        assert_eq!(got, std::slice::from_ref(&good));
        assert_eq!(st, stats(1, 0, 0, 0, 1));
        // A frame cut short by the start of the next one.
        let mut cut = b"\x1b_kAQcAQXh".to_vec();
        cut.extend_from_slice(PING_APC);
        assert_eq!(run_apc::<MAX_BODY>(&[&cut]), (vec![good.clone()], stats(1, 0, 0, 0, 1)));
        // One base64 character too many (a group of 1), a bad CRC, a 7-byte body.
        assert_eq!(after(b"\x1b_kAQcAQXhWNBJOyJWHA\x1b\\").1, stats(1, 0, 0, 0, 1));
        assert_eq!(after(b"\x1b_kAQcAQXhWNBJOyJWG\x1b\\").1, stats(1, 1, 0, 0, 0));
        assert_eq!(after(b"\x1b_kAQcAQXhWNB\x1b\\").1, stats(1, 0, 0, 0, 1));
        assert_eq!(after(b"\x1b_k\x1b\\").1, stats(1, 0, 0, 0, 1));
        // Another version.
        let mut v2 = body(7, &ping());
        v2[0] = 2;
        crate::Frame::new_unchecked(&mut v2[..]).fill_crc();
        let mut s = vec![0; 64];
        let n = emit_apc(&v2, &mut s).unwrap();
        assert_eq!(after(&s[..n]).1, stats(1, 0, 1, 0, 0));
    }

    #[test]
    fn apc_oversized() {
        let mut s = b"\x1b_k".to_vec();
        s.extend(std::iter::repeat_n(b'Q', 4000));
        s.extend_from_slice(b"\x1b\\after");
        s.extend_from_slice(PING_APC);
        let (got, st) = run_apc::<MAX_BODY>(&[&s]);
        assert_eq!(got[0], Out::Text(b"after".to_vec()));
        assert_eq!(st, stats(1, 0, 0, 1, 0));
        // A 12-byte buffer holds the Ping, an 11-byte one does not (in the last group).
        assert_eq!(run_apc::<12>(&[PING_APC]).1, stats(1, 0, 0, 0, 0));
        assert_eq!(run_apc::<11>(&[PING_APC]).1, stats(0, 0, 0, 1, 0));
        assert_eq!(run_apc::<10>(&[PING_APC]).1, stats(0, 0, 0, 1, 0));
        // The largest frame passes.
        let big =
            Message::Log { boot_ns: 0, source: LogSource::Keel, stream: Stream::Out, service: b"", text: &[0xcc; 1002] };
        let (got, st) = run_apc::<MAX_BODY>(&[&apc(9, &big)]);
        assert_eq!((got.len(), st.frames), (1, 1));
    }

    /// Random chunks of random, mutated and real streams: no panic, text passes through
    /// untouched wherever there is no ESC, frames that come out are good.
    #[test]
    fn random_input_never_panics() {
        let mut rng = XorShift(0x0bad_5eed_1234_5678);
        let (console, _) = console();
        let binary: Vec<u8> = [PING_BIN, STATUS_BIN, LOG_BIN, ERROR_BIN].iter().flat_map(|h| hex(h)).collect();
        let mut bin = BinaryDeframer::<64>::new();
        let mut split = ApcSplitter::<64>::new();
        let mut big_bin = BinaryDeframer::<MAX_BODY>::new();
        let mut big_split = ApcSplitter::<MAX_BODY>::new();
        for round in 0..6000 {
            let mut data = match round % 3 {
                0 => rng.junk(400),
                1 => console.clone(),
                _ => binary.clone(),
            };
            for _ in 0..rng.below(8) {
                if data.is_empty() {
                    break;
                }
                let at = rng.below(data.len());
                match rng.below(4) {
                    0 => data[at] = rng.next() as u8,
                    1 => data[at] = [0, 0x1b, b'_', b'k', b'\\', b'=', b'A'][rng.below(7)],
                    2 => data.truncate(at),
                    _ => data.insert(at, rng.next() as u8),
                }
            }
            let mut rest = &data[..];
            while !rest.is_empty() {
                let n = rng.below(rest.len() + 1).max(1);
                let (mut chunk, tail) = rest.split_at(n);
                rest = tail;
                let mut c2 = chunk;
                while let Some(f) = bin.next(&mut c2) {
                    assert!(f.buffer_len() <= 64);
                    let _ = f.message();
                }
                let mut c3 = chunk;
                while let Some(f) = big_bin.next(&mut c3) {
                    assert_eq!(parse_body(&body_of(&f)), Ok(f));
                }
                let mut c4 = chunk;
                while let Some(p) = big_split.next(&mut c4) {
                    if let Piece::Frame(f) = p {
                        let _ = f.message();
                    }
                }
                while let Some(p) = split.next(&mut chunk) {
                    match p {
                        Piece::Text(t) => assert!(!t.is_empty()),
                        Piece::Frame(f) => assert!(f.buffer_len() <= 64),
                    }
                }
            }
            // Without ESC everything is text, byte for byte, however it is cut.
            if !data.contains(&0x1b) {
                let cuts: Vec<&[u8]> = data.chunks(rng.below(50) + 1).collect();
                assert_eq!(
                    run_apc::<64>(&cuts).0,
                    if data.is_empty() { vec![] } else { vec![Out::Text(data.clone())] }
                );
            }
        }
        let st = big_bin.stats();
        assert!(st.frames > 0 && st.total() > st.frames, "{st:?}");
        assert!(big_split.stats().frames > 0);
    }

    fn body_of(f: &FrameRepr) -> Vec<u8> {
        let mut b = vec![0; f.buffer_len()];
        f.emit(&mut b).unwrap();
        b
    }
}
