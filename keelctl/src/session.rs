//! One conversation with keel over a `transport` channel: frames out (numbered from 0),
//! frames in (deframed by `keel_proto`, in binary or shared-line form), with what the
//! protocol says a client must notice: sequence gaps (lost frames), Lost records, console
//! text on a shared line, frames it cannot use.

use crate::transport::{self, Input, Writer};
use keel_proto::{
    emit_apc, emit_binary, emit_message, ApcSplitter, BinaryDeframer, Message, Piece, SeqGaps, Stats, MAX_APC_LEN,
    MAX_BINARY_LEN, MAX_BODY, PROTO,
};
use std::io::{self, Write};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

/// The frame a message arrived in, copied out of the deframer.
pub struct InFrame {
    pub seq: u16,
    pub msg_type: u8,
    pub payload: Vec<u8>,
}

impl InFrame {
    pub fn message(&self) -> Result<Message<'_>, keel_proto::Error> {
        Message::parse(self.msg_type, &self.payload)
    }
}

/// Why no frame came.
pub enum Stop {
    Timeout,
    Closed(Option<io::Error>),
    Signal(u32),
    Quit,
}

/// What becomes of console text on a shared line.
#[derive(Copy, Clone, PartialEq, Eq)]
pub enum TextMode {
    /// Dropped (one-shot requests: their output stays parseable).
    Drop,
    /// Whole lines, `\r` removed, written as lines (or JSON `text` objects).
    Lines,
    /// Byte for byte, at once (the console: prompts have no newline).
    Raw,
}

enum Deframer {
    Binary(Box<BinaryDeframer<MAX_BODY>>),
    Apc(Box<ApcSplitter<MAX_BODY>>),
}

/// Host → init message types: on a shared line the guest's tty may echo our own frames.
fn is_host_type(t: u8) -> bool {
    (0x40..=0x7f).contains(&t)
}

pub struct Session {
    writer: Writer,
    rx: Receiver<Input>,
    deframer: Deframer,
    /// Input not yet deframed.
    chunk: Vec<u8>,
    pos: usize,
    /// The next frame number to send.
    seq: u16,
    gaps: SeqGaps,
    stats: Stats,
    /// `on /dev/ttyS1`: for messages.
    pub place: String,
    pub verbose: bool,
    pub json: bool,
    pub text_mode: TextMode,
    /// Lines end in `\r\n` (the local terminal is raw).
    pub crlf: bool,
    partial_line: Vec<u8>,
    /// Something could not be written to stdout.
    pub stdout_failed: Option<io::Error>,
}

impl Session {
    pub fn new(writer: Writer, rx: Receiver<Input>, shared: bool, place: String) -> Session {
        let deframer = if shared {
            Deframer::Apc(Box::new(ApcSplitter::new()))
        } else {
            Deframer::Binary(Box::new(BinaryDeframer::new()))
        };
        Session {
            writer,
            rx,
            deframer,
            chunk: Vec::new(),
            pos: 0,
            seq: 0,
            gaps: SeqGaps::new(),
            stats: Stats::default(),
            place,
            verbose: false,
            json: false,
            text_mode: TextMode::Drop,
            crlf: false,
            partial_line: Vec::new(),
            stdout_failed: None,
        }
    }

    /// A note on stderr.
    pub fn warn(&self, msg: &str) {
        let end = if self.crlf { "\r\n" } else { "\n" };
        let _ = write!(io::stderr(), "keelctl: {msg}{end}");
    }

    /// A note on stderr with `--verbose`.
    pub fn note(&self, msg: &str) {
        if self.verbose {
            self.warn(msg);
        }
    }

    /// One line on stdout.
    pub fn print(&mut self, line: &str) {
        let end = if self.crlf { "\r\n" } else { "\n" };
        let mut out = io::stdout().lock();
        if let Err(e) = write!(out, "{line}{end}").and_then(|_| out.flush()) {
            self.stdout_failed.get_or_insert(e);
        }
    }

    /// Text already laid out in lines (each ending in `\n`).
    pub fn print_block(&mut self, block: &str) {
        for line in block.lines() {
            self.print(line);
        }
    }

    fn print_raw(&mut self, bytes: &[u8]) {
        let mut out = io::stdout().lock();
        if let Err(e) = out.write_all(bytes).and_then(|_| out.flush()) {
            self.stdout_failed.get_or_insert(e);
        }
    }

    /// Send `msg` in the next frame (a single write); returns its frame number.
    pub fn send(&mut self, msg: &Message) -> io::Result<u16> {
        let mut body = [0u8; MAX_BODY];
        let len = emit_message(self.seq, msg, &mut body).map_err(|e| io::Error::other(format!("{e:?}")))?;
        let mut wire = vec![0u8; 1 + MAX_BINARY_LEN.max(MAX_APC_LEN)];
        let n = match self.deframer {
            // A lone 0x00 first ends whatever noise came before (docs/protocol.md).
            Deframer::Binary(_) => {
                let start = usize::from(self.seq == 0);
                emit_binary(&body[..len], &mut wire[start..]).map(|n| start + n)
            }
            Deframer::Apc(_) => emit_apc(&body[..len], &mut wire),
        }
        .map_err(|e| io::Error::other(format!("{e:?}")))?;
        transport::write_all(&self.writer, &wire[..n])?;
        let seq = self.seq;
        self.seq = self.seq.wrapping_add(1);
        Ok(seq)
    }

    /// Send ClientHello and wait for keel's Hello, sending ClientHello again a third and
    /// two thirds of the way through `timeout` (a damaged frame is never answered).
    /// Returns keel's version.
    /// keel's version and its Hello's `features`.
    pub fn hello(&mut self, timeout: Duration) -> Result<(Vec<u8>, u32), Stop> {
        let client = format!("keelctl {}", crate::cli::VERSION);
        let hello = Message::ClientHello { proto: PROTO, client: client.as_bytes() };
        let start = Instant::now();
        let mut tries = 0u32;
        loop {
            if tries < 3 {
                self.send(&hello).map_err(|e| Stop::Closed(Some(e)))?;
                tries += 1;
            }
            let until = start + timeout.mul_f64(f64::from(tries) / 3.0);
            loop {
                let frame = match self.recv(Some(until)) {
                    Ok(f) => f,
                    Err(Stop::Timeout) if Instant::now() < start + timeout => break,
                    Err(e) => return Err(e),
                };
                match frame.message() {
                    Ok(Message::Hello { proto, keel_version, features }) => {
                        if proto != PROTO {
                            self.note(&format!("keel speaks protocol {proto}, keelctl {PROTO}"));
                        }
                        self.note(&format!(
                            "connected to keel {} on {} (protocol {proto}, features {features:#x})",
                            String::from_utf8_lossy(keel_version),
                            self.place
                        ));
                        return Ok((keel_version.to_vec(), features));
                    }
                    Ok(m) => {
                        self.common(&m);
                    }
                    Err(e) => self.skip(&frame, e),
                }
            }
        }
    }

    /// What every loop does with a message it has no use for: Lost is reported, the rest
    /// is a note with --verbose.
    pub fn common(&mut self, m: &Message) {
        match *m {
            Message::Lost { records } => {
                self.warn(&format!("{records} record{} lost", if records == 1 { "" } else { "s" }))
            }
            Message::Hello { .. } => {}
            ref other => self.note(&format!("skipping an unexpected {}", kind(other))),
        }
    }

    /// A frame whose message could not be parsed.
    pub fn skip(&self, frame: &InFrame, e: keel_proto::Error) {
        match e {
            keel_proto::Error::UnknownType(t) => self.note(&format!("skipping a message of unknown type {t:#04x}")),
            keel_proto::Error::UnknownReply(k) => self.note(&format!("skipping a reply of unknown kind {k}")),
            e => self.note(&format!("skipping a bad message of type {:#04x} ({e:?})", frame.msg_type)),
        }
    }

    /// The next frame from keel, until `deadline` (None: no limit). Text on a shared line
    /// is handled on the way (`text_mode`).
    pub fn recv(&mut self, deadline: Option<Instant>) -> Result<InFrame, Stop> {
        loop {
            while self.pos < self.chunk.len() {
                let mut input = &self.chunk[self.pos..];
                let before = input.len();
                let mut text = None;
                let frame = match &mut self.deframer {
                    Deframer::Binary(d) => d.next(&mut input).map(|f| InFrame {
                        seq: f.seq,
                        msg_type: f.msg_type,
                        payload: f.payload.to_vec(),
                    }),
                    Deframer::Apc(d) => match d.next(&mut input) {
                        Some(Piece::Frame(f)) => {
                            Some(InFrame { seq: f.seq, msg_type: f.msg_type, payload: f.payload.to_vec() })
                        }
                        Some(Piece::Text(t)) => {
                            text = Some(t.to_vec());
                            None
                        }
                        None => None,
                    },
                };
                self.pos += before - input.len();
                self.check_stats();
                if let Some(t) = text {
                    self.text(&t);
                }
                let Some(frame) = frame else { continue };
                if is_host_type(frame.msg_type) {
                    continue; // our own frame, echoed by the line
                }
                let lost = self.gaps.observe(frame.seq);
                if lost > 0 {
                    self.warn(&format!("{lost} frame{} lost", if lost == 1 { "" } else { "s" }));
                }
                return Ok(frame);
            }
            let input = match deadline {
                None => self.rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
                Some(d) => self.rx.recv_timeout(d.saturating_duration_since(Instant::now())),
            };
            match input {
                Ok(Input::Data(data)) => {
                    self.chunk = data;
                    self.pos = 0;
                }
                Ok(Input::Closed(e)) => return Err(Stop::Closed(e)),
                Ok(Input::Signal(n)) => return Err(Stop::Signal(n)),
                Ok(Input::Quit) => return Err(Stop::Quit),
                Err(RecvTimeoutError::Timeout) => return Err(Stop::Timeout),
                Err(RecvTimeoutError::Disconnected) => return Err(Stop::Closed(None)),
            }
        }
    }

    /// Notes for frames the deframer dropped since the last look.
    fn check_stats(&mut self) {
        let (now, was) = match &self.deframer {
            Deframer::Binary(d) => (d.stats(), self.stats),
            Deframer::Apc(d) => (d.stats(), self.stats),
        };
        if now == was {
            return;
        }
        self.stats = now;
        for (n, one, many) in [
            (now.bad_crc.wrapping_sub(was.bad_crc), "frame with a bad CRC", "frames with a bad CRC"),
            (now.bad_version.wrapping_sub(was.bad_version), "frame of another version", "frames of another version"),
            (now.oversized.wrapping_sub(was.oversized), "oversized frame", "oversized frames"),
            (now.malformed.wrapping_sub(was.malformed), "malformed frame", "malformed frames"),
        ] {
            if n > 0 {
                self.note(&format!("dropped {n} {}", if n == 1 { one } else { many }));
            }
        }
    }

    fn text(&mut self, t: &[u8]) {
        match self.text_mode {
            TextMode::Drop => {}
            TextMode::Raw => self.print_raw(t),
            TextMode::Lines => {
                self.partial_line.extend_from_slice(t);
                while let Some(nl) = self.partial_line.iter().position(|&b| b == b'\n') {
                    let line: Vec<u8> = self.partial_line.drain(..=nl).collect();
                    self.text_line(&line);
                }
            }
        }
    }

    fn text_line(&mut self, line: &[u8]) {
        let line: Vec<u8> = line.iter().copied().filter(|&b| b != b'\r' && b != b'\n').collect();
        if self.json {
            let j = crate::output::text_json(&line);
            self.print(&j);
        } else {
            let s = crate::output::clean(&line);
            self.print(&s);
        }
    }

    /// Text left without its newline (at the end), as a line.
    pub fn flush_text(&mut self) {
        if self.text_mode == TextMode::Lines && !self.partial_line.is_empty() {
            let line = std::mem::take(&mut self.partial_line);
            self.text_line(&line);
        }
    }
}

/// A message's name, for notes.
pub fn kind(m: &Message) -> &'static str {
    match m {
        Message::Hello { .. } => "Hello",
        Message::Log { .. } => "Log",
        Message::Event { .. } => "Event",
        Message::Reply { .. } => "Reply",
        Message::ErrorReply { .. } => "ErrorReply",
        Message::Lost { .. } => "Lost",
        _ => "request",
    }
}
