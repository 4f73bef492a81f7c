//! Console lines: `[    1.234567] keel: text`, formatted with ufmt into one stack buffer and
//! handed on whole, so lines from different paths never interleave. All of keel's
//! human-readable output goes through here, and each line is also kept as a record in the
//! `LOGS` journal for debug clients; events go to `EVENTS`. In PID 1 mode the console is
//! written without ever blocking (`console`), keel's lines are copied to the kernel log
//! too, and reaped orphans are summarized on the console (`orphans`). `pstore`: the previous
//! boot's logs and how it ended.

use crate::clock::{Instant, NANOS_PER_SEC};
use crate::log::journal::Journal;
use keel_proto::{EventKind, LogSource};
use crate::sys::TryLock;
use ufmt::uWrite;

pub mod console;
pub mod journal;
pub mod orphans;
pub mod pstore;
pub(crate) mod say;

/// Longest console line; longer text is cut (and marked with `...`).
pub const LINE_CAPACITY: usize = 240;

/// One console line being built.
pub struct Line {
    buf: heapless::Vec<u8, LINE_CAPACITY>,
    truncated: bool,
    /// Where the text after the stamp and `keel: ` starts.
    body: usize,
}

impl Line {
    pub const fn new() -> Self {
        Line { buf: heapless::Vec::new(), truncated: false, body: 0 }
    }

    pub fn push_bytes(&mut self, s: &[u8]) {
        // One byte stays free for the newline.
        let room = (LINE_CAPACITY - 1).saturating_sub(self.buf.len());
        let take = s.len().min(room);
        let _ = self.buf.extend_from_slice(&s[..take]);
        self.truncated |= take < s.len();
    }

    /// The finished line with its newline (and a `...` marker if it was cut). It takes the
    /// line: nothing can be pushed after the newline.
    /// ```compile_fail
    /// let mut line = keel::log::Line::new();
    /// let _ = line.finish();
    /// line.push_bytes(b"after the newline");
    /// ```
    pub fn finish(mut self) -> Finished {
        if self.truncated {
            self.buf.truncate(LINE_CAPACITY - 4);
            let _ = self.buf.extend_from_slice(b"...");
        }
        let _ = self.buf.push(b'\n');
        Finished(self.buf)
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.buf
    }

    /// The text after the stamp and `keel: `.
    fn body(&self) -> &[u8] {
        &self.buf[self.body.min(self.buf.len())..]
    }
}

/// A finished line: its bytes, newline included.
pub struct Finished(heapless::Vec<u8, LINE_CAPACITY>);

impl core::ops::Deref for Finished {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.0
    }
}

impl Default for Line {
    fn default() -> Self {
        Line::new()
    }
}

impl uWrite for Line {
    type Error = core::convert::Infallible;
    fn write_str(&mut self, s: &str) -> Result<(), Self::Error> {
        self.push_bytes(s.as_bytes());
        Ok(())
    }
}

/// `value` in decimal, right-aligned in `width` with `pad`.
pub fn push_padded(line: &mut Line, value: u64, width: usize, pad: u8) {
    // Right to left; u64::MAX has 20 digits.
    let mut digits = [pad; 20];
    let mut n = value;
    let mut start = digits.len();
    for slot in digits.iter_mut().rev() {
        *slot = b'0' + (n % 10) as u8;
        start -= 1;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    for _ in digits.len() - start..width {
        line.push_bytes(&[pad]);
    }
    line.push_bytes(digits.get(start..).unwrap_or_default());
}

/// `[    1.234567] ` as the kernel prints its own lines.
pub fn push_stamp(line: &mut Line, at: Instant) {
    line.push_bytes(b"[");
    push_padded(line, at.0 / NANOS_PER_SEC, 5, b' ');
    line.push_bytes(b".");
    push_padded(line, at.0 % NANOS_PER_SEC / 1000, 6, b'0');
    line.push_bytes(b"] ");
}

/// Start a console line: the boot-clock stamp and `keel: `. Not generic, so each `info!`
/// adds only its own formatting to the binary.
pub fn begin() -> Line {
    let mut line = Line::new();
    push_stamp(&mut line, Instant::now());
    line.push_bytes(b"keel: ");
    line.body = line.buf.len();
    line
}

/// Log lines kept for debug clients.
pub static LOGS: TryLock<Journal<48>> = TryLock::new(Journal::new());
/// Events kept for debug clients.
pub static EVENTS: TryLock<Journal<32>> = TryLock::new(Journal::new());

/// Finish a line: into the journal and the kernel log, and to the console.
pub fn emit(line: Line) {
    emit_as(line, false)
}

/// The same for a fatal error's line: the console takes it even while it drops others.
pub fn emit_urgent(line: Line) {
    emit_as(line, true)
}

fn emit_as(line: Line, urgent: bool) {
    keep(&line);
    console::kmsg(line.body());
    console::line(&line.finish(), urgent);
}

/// Into the journal only (the console gets a summary instead).
pub fn keep(line: &Line) {
    LOGS.with(|j| j.push(Instant::now().0, LogSource::Keel.into(), NO_SERVICE, &[line.body()]));
}

/// `aux` of a log record that is not a service's.
pub const NO_SERVICE: u8 = 0xff;

/// A line of a service's output: into the journal, and to the console as `name| text`
/// when the service echoes.
pub fn service_line(index: usize, name: &str, text: &[u8], echo: bool) {
    LOGS.with(|j| j.push(Instant::now().0, LogSource::Service.into(), index as u8, &[text]));
    if echo {
        let mut line = Line::new();
        push_stamp(&mut line, Instant::now());
        let _ = ufmt::uwrite!(line, "{}| {}", name, Bytes(text));
        console::line(&line.finish(), false);
    }
}

/// Record an event (the console already has its line); its number.
#[inline(never)]
pub fn event(kind: EventKind, name: &[u8], detail: &[u8]) -> Option<u64> {
    let name = &name[..name.len().min(32)];
    EVENTS.with(|j| j.push(Instant::now().0, kind.into(), name.len() as u8, &[name, detail]))
}

/// Write all of `bytes` to fd 2, blocking, giving up on errors: an ordinary program's
/// stderr (container mode, the applets). PID 1's lines go through `console` instead.
pub fn write_console(bytes: &[u8]) {
    write_all(crate::sys::stderr(), bytes)
}

/// Write all of `bytes` to `fd`, giving up at the first error (retrying EINTR).
pub fn write_all(fd: rustix::fd::BorrowedFd, mut bytes: &[u8]) {
    while !bytes.is_empty() {
        match rustix::io::write(fd, bytes) {
            Ok(0) => return,
            Ok(n) => bytes = bytes.get(n..).unwrap_or_default(),
            Err(rustix::io::Errno::INTR) => continue,
            Err(_) => return,
        }
    }
}

/// `info!("reaped pid {} ({})", pid, status)`: one console line, ufmt syntax.
#[macro_export]
macro_rules! info {
    ($($arg:tt)*) => {{
        let mut line = $crate::log::begin();
        let _ = ufmt::uwrite!(line, $($arg)*);
        $crate::log::emit(line)
    }};
}

/// `fatal!("epoll: {}", Errno(e))`: print the reason and act per `keel.panic=`; never returns.
#[macro_export]
macro_rules! fatal {
    ($($arg:tt)*) => {{
        let mut line = $crate::log::begin();
        line.push_bytes(b"fatal: ");
        let _ = ufmt::uwrite!(line, $($arg)*);
        $crate::fatal::die(line)
    }};
}

/// Bytes that may not be UTF-8 (paths, cmdline words), shown as-is.
pub struct Bytes<'a>(pub &'a [u8]);

impl ufmt::uDisplay for Bytes<'_> {
    fn fmt<W: uWrite + ?Sized>(&self, f: &mut ufmt::Formatter<'_, W>) -> Result<(), W::Error> {
        // Control bytes would corrupt the console line; show them as '?'.
        let mut chunk = [0u8; 64];
        for piece in self.0.chunks(chunk.len()) {
            for (dst, &b) in chunk.iter_mut().zip(piece) {
                *dst = if b < 0x20 || b == 0x7f { b'?' } else { b };
            }
            match core::str::from_utf8(&chunk[..piece.len()]) {
                Ok(s) => f.write_str(s)?,
                Err(_) => {
                    for &b in &chunk[..piece.len()] {
                        f.write_char(if b.is_ascii() { b as char } else { '?' })?;
                    }
                }
            }
        }
        Ok(())
    }
}

/// An errno shown by name where keel knows it, else by number.
pub struct Errno(pub rustix::io::Errno);

impl ufmt::uDisplay for Errno {
    fn fmt<W: uWrite + ?Sized>(&self, f: &mut ufmt::Formatter<'_, W>) -> Result<(), W::Error> {
        use rustix::io::Errno as E;
        let name = match self.0 {
            E::PERM => "EPERM",
            E::NOENT => "ENOENT",
            E::SRCH => "ESRCH",
            E::INTR => "EINTR",
            E::IO => "EIO",
            E::NOEXEC => "ENOEXEC",
            E::BADF => "EBADF",
            E::CHILD => "ECHILD",
            E::AGAIN => "EAGAIN",
            E::NOMEM => "ENOMEM",
            E::ACCESS => "EACCES",
            E::BUSY => "EBUSY",
            E::EXIST => "EEXIST",
            E::NOTDIR => "ENOTDIR",
            E::INVAL => "EINVAL",
            E::NOSPC => "ENOSPC",
            E::ROFS => "EROFS",
            E::NOSYS => "ENOSYS",
            _ => return ufmt::uwrite!(f, "errno {}", self.0.raw_os_error()),
        };
        f.write_str(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamp_pads_like_the_kernel() {
        let mut l = Line::new();
        push_stamp(&mut l, Instant(1_234_567_891));
        assert_eq!(l.as_bytes(), b"[    1.234567] ");
        let mut l = Line::new();
        push_stamp(&mut l, Instant(123_456 * NANOS_PER_SEC + 5_000));
        assert_eq!(l.as_bytes(), b"[123456.000005] ");
    }

    #[test]
    fn long_lines_are_cut_and_marked() {
        let mut l = Line::new();
        for _ in 0..100 {
            l.push_bytes(b"abcdef");
        }
        let out = l.finish();
        assert_eq!(out.len(), LINE_CAPACITY);
        // `finish` took the line: `l.push_bytes(..)` here would not compile.
        assert!(out.ends_with(b"...\n"));
    }

    #[test]
    fn control_bytes_are_not_sent_to_the_console() {
        let mut l = Line::new();
        ufmt::uwrite!(l, "{}", Bytes(b"a\x1b[2Jb\xffc")).unwrap();
        assert_eq!(l.as_bytes(), b"a?[2Jb?c");
    }
}
