//! The console never blocks PID 1.
//!
//! A blocking write(2) to a console nobody reads (a USB gadget port with no host, a stalled
//! terminal server) never returns, and a slow one holds PID 1 for as long as its lines take
//! to cross (10,000 lines at 115200 baud: half a minute), deaf to the power button and its
//! own deadlines. So PID 1's lines go into a fixed ring and leave through a non-blocking
//! descriptor as fast as the console takes them; the loop watches that descriptor for
//! EPOLLOUT only while bytes wait (`watch`). A line that does not fit is dropped whole and
//! counted; more are refused until the ring has drained, and then the console gets one
//! `console: N lines dropped`. The LOGS journal and the kernel log keep every line whatever
//! the console does.
//!
//! Which descriptor. O_NONBLOCK belongs to the open file description, not to the fd: fds
//! 0-2 are one description, the one the kernel opened on /dev/console for init (or a pipe
//! or terminal a container runtime or test passed in, which its other holders use too).
//! Setting O_NONBLOCK there would hand EAGAIN to everyone sharing it, and a tty has no
//! per-call flag (MSG_DONTWAIT is for sockets; send(2) on a tty is ENOTSOCK). So keel opens
//! its own description of the same file through /proc/self/fd/2 (a tty: the same console;
//! a FIFO or pipe: the same pipe), non-blocking and close-on-exec; fd 2 stays as it was.
//! A socket gets send(MSG_DONTWAIT) on a dup; a regular file does not stall and is written
//! through a dup, blocking (a reopened file would have its own offset). Before /proc is
//! mounted (the machine's init, its first boot phase) lines wait in the ring. A line the
//! console takes only in part is finished by a later write, so under pressure another
//! writer's text (the kernel's, a shell's) can land inside it; a blocking write kept it whole.
//!
//! Container mode, the applets and PID 1 before `take_over` write to fd 2 directly, with
//! blocking writes: an ordinary program's stderr.
//!
//! The kernel log (`attach_kmsg`, a boot phase of the machine's init): every keel line is
//! also a /dev/kmsg record, `<31>keel: text` (daemon.debug), so a kmsg dump in pstore after
//! a crash holds keel's last lines. KERN_DEBUG is above the default console_loglevel (7:
//! levels 0-6 are printed), so the kernel does not print them on the console a second time;
//! with `debug`, `ignore_loglevel` or `loglevel=8` on the command line it does. Userspace
//! writes to /dev/kmsg are rate-limited by default (10 records per 5 s per open file; the
//! rest are dropped, and counted only when the file is closed), which loses most of a boot: keel,
//! being the machine's init, sets /proc/sys/kernel/printk_devkmsg to `on`, unless
//! `printk.devkmsg=` on the command line fixed it (then the kernel refuses and the
//! administrator's choice stands; `off` makes the phase fail). keel writes only its own
//! lines there (the console's, orphans summarized), not services' output.

use crate::clock::Instant;
use crate::event::{EventLoop, Source};
use crate::log::{Finished, LOGS};
use crate::sys::TryLock;
use keel_proto::LogSource;
use rustix::fd::{AsFd, BorrowedFd, OwnedFd};
use rustix::io::Errno;

/// Console bytes that may wait: ~1.4 s of a 115200-baud line, several boots' worth of lines.
pub const RING_BYTES: usize = 16 * 1024;
/// How long the last lines before reboot(2) may take to leave (a fatal error, power off).
pub const FLUSH_MS: u64 = 250;

/// Where ring bytes go: the console, or a fake in the tests.
pub trait Sink {
    fn write(&mut self, bytes: &[u8]) -> Result<usize, Errno>;
}

/// Whole lines waiting for the console, in a fixed ring.
pub struct Ring<const N: usize> {
    buf: [u8; N],
    start: usize,
    len: usize,
    /// Lines refused since the console last drained.
    dropped: u32,
}

impl<const N: usize> Ring<N> {
    pub const fn new() -> Self {
        Ring { buf: [0; N], start: 0, len: 0, dropped: 0 }
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Queue `line` whole, or drop and count it. After a drop every line is refused until
    /// the ring has drained, so the console shows whole lines, one gap and its notice.
    /// `urgent` (a fatal error's line) is taken whenever it fits.
    pub fn push(&mut self, line: &[u8], urgent: bool) -> bool {
        if (self.dropped > 0 && !urgent) || line.len() > N - self.len {
            self.dropped = self.dropped.saturating_add(1);
            return false;
        }
        // Byte by byte: lines are short, and the wrap needs no second copy.
        for &b in line {
            self.buf[(self.start + self.len) % N] = b;
            self.len += 1;
        }
        true
    }

    /// Write what `sink` takes now; once drained, say how many lines were dropped. Ok:
    /// nothing is left; Err(AGAIN): the sink is full; another error: it failed (the bytes
    /// stay: a console that takes nothing drops, and counts, what comes next).
    pub fn pump(&mut self, sink: &mut impl Sink) -> Result<(), Errno> {
        loop {
            if self.len == 0 {
                self.start = 0; // lines stay contiguous: one write each
                if self.dropped == 0 {
                    return Ok(());
                }
                let notice = dropped_notice(self.dropped);
                self.dropped = 0;
                if !self.push(&notice, true) {
                    return Ok(()); // a ring smaller than a line (tests only)
                }
            }
            let end = N.min(self.start + self.len);
            match sink.write(self.buf.get(self.start..end).unwrap_or_default()) {
                Ok(0) => return Err(Errno::AGAIN),
                Ok(n) => {
                    let n = n.min(end - self.start);
                    self.start = (self.start + n) % N;
                    self.len -= n;
                }
                Err(Errno::INTR) => {}
                Err(e) => return Err(e),
            }
        }
    }
}

impl<const N: usize> Default for Ring<N> {
    fn default() -> Self {
        Ring::new()
    }
}

fn dropped_notice(lines: u32) -> Finished {
    let mut line = crate::log::begin();
    crate::log::say::fill(&mut line, b"console: % lines dropped", &[crate::log::say::Part::N(lines.into())]);
    line.finish()
}

/// All zeros (the ring is 16 KiB): it lives in .bss. The descriptors are apart, in `FDS`.
struct Console {
    ring: Ring<RING_BYTES>,
    /// PID 1 took the console over; until then lines go to fd 2 as they are.
    taken: bool,
    /// The last write failed (not EAGAIN): not watched until a write works again.
    failed: bool,
    /// The descriptor is in the loop's epoll set, for EPOLLOUT.
    watched: bool,
    /// fd 2 is a socket: send(MSG_DONTWAIT) on a dup of it.
    socket: bool,
}

struct Fds {
    console: Option<OwnedFd>,
    kmsg: Option<OwnedFd>,
}

static CONSOLE: TryLock<Console> =
    TryLock::new(Console { ring: Ring::new(), taken: false, failed: false, watched: false, socket: false });
static FDS: TryLock<Fds> = TryLock::new(Fds { console: None, kmsg: None });

fn with<R>(f: impl FnOnce(&mut Console, &mut Fds) -> R) -> Option<R> {
    FDS.with(|fds| CONSOLE.with(|c| f(c, fds))).flatten()
}

/// PID 1 mode: from now on console lines go through the ring.
pub fn take_over() {
    with(|c, _| c.taken = true);
}

/// fd 2 has become another file (the console phase put /dev/console there): let go of
/// keel's descriptor of the old one, so the next line opens the new one.
pub fn reopen() {
    with(|c, fds| {
        fds.console = None;
        c.failed = false;
    });
}

/// One finished console line.
pub fn line(bytes: &[u8], urgent: bool) {
    let taken = with(|c, fds| {
        if c.taken {
            pump(c, fds); // room first, and the notice before this line
            c.ring.push(bytes, urgent);
            pump(c, fds);
        }
        c.taken
    });
    // Not PID 1: fd 2 as it is. Busy (a panic inside this module): the console misses the
    // line; the journal and the kernel log have it.
    if taken == Some(false) {
        crate::log::write_all(crate::sys::stderr(), bytes)
    }
}

/// The console can take more (EPOLLOUT).
pub fn on_writable() {
    with(pump);
}

/// Keep the console in the loop's epoll set exactly while bytes wait for it: no wakeups when
/// idle, none from a failed descriptor (a hung-up tty reports EPOLLHUP for good).
pub fn watch(events: &EventLoop) {
    with(|c, fds| {
        let Some(fd) = &fds.console else { return };
        let want = !c.ring.is_empty() && !c.failed;
        if want != c.watched {
            if want {
                c.watched = events.watch_writable(crate::sys::fd::borrow(fd), Source::Console).is_ok();
            } else {
                events.unwatch(crate::sys::fd::borrow(fd));
                c.watched = false;
            }
        }
    });
}

/// The last lines before reboot(2): write them within `ms`, waiting for the console if it
/// is slow; what it cannot take by then is lost (the kernel log has it).
pub fn flush(ms: u64) {
    let until = Instant::now().plus_millis(ms);
    loop {
        // Write what the console takes, then wait until it takes more (or time is up).
        let waited = with(|c, fds| {
            pump(c, fds);
            let left = until.0.saturating_sub(Instant::now().0);
            let Some(fd) = fds.console.as_ref().filter(|_| !c.ring.is_empty() && !c.failed && left > 0) else { return false };
            let mut ready = [rustix::event::PollFd::from_borrowed_fd(crate::sys::fd::borrow(fd), rustix::event::PollFlags::OUT)];
            rustix::event::poll(&mut ready, Some(&Instant(left).to_timespec())).is_ok_and(|n| n > 0)
        });
        if waited != Some(true) {
            return;
        }
    }
}

fn pump(c: &mut Console, fds: &mut Fds) {
    if !c.taken || c.ring.is_empty() {
        return;
    }
    if fds.console.is_none() {
        let Ok((fd, socket)) = open() else { return };
        fds.console = Some(fd);
        c.socket = socket;
    }
    let Some(fd) = &fds.console else { return };
    let mut sink = FdSink { fd: crate::sys::fd::borrow(fd), socket: c.socket };
    c.failed = matches!(c.ring.pump(&mut sink), Err(e) if e != Errno::AGAIN);
}

/// keel's own descriptor for what fd 2 is (see the module comment).
fn open() -> Result<(OwnedFd, bool), Errno> {
    use rustix::fs::{FileType, Mode, OFlags};
    let stderr = crate::sys::stderr();
    let kind = FileType::from_raw_mode(rustix::fs::fstat(stderr)?.st_mode);
    if matches!(kind, FileType::CharacterDevice | FileType::Fifo) {
        let flags = OFlags::WRONLY | OFlags::NOCTTY | OFlags::NONBLOCK | OFlags::CLOEXEC;
        match crate::sys::fd::open(c"/proc/self/fd/2", flags, Mode::empty()) {
            Ok(fd) => return Ok((fd, false)),
            // No /proc yet: the lines wait for the next try.
            Err(Errno::NOENT) => return Err(Errno::NOENT),
            Err(_) => {}
        }
    }
    Ok((crate::sys::fd::fcntl_dupfd_cloexec(stderr, 3)?, kind == FileType::Socket))
}

struct FdSink<'a> {
    fd: BorrowedFd<'a>,
    socket: bool,
}

impl Sink for FdSink<'_> {
    fn write(&mut self, bytes: &[u8]) -> Result<usize, Errno> {
        if self.socket {
            use rustix::net::SendFlags;
            rustix::net::send(self.fd, bytes, SendFlags::DONTWAIT | SendFlags::NOSIGNAL)
        } else {
            rustix::io::write(self.fd, bytes)
        }
    }
}

/// A keel line (its text after `keel: `) for the kernel log, once it is attached.
pub fn kmsg(body: &[u8]) {
    FDS.with(|fds| {
        if let Some(fd) = &fds.kmsg {
            write_kmsg(crate::sys::fd::borrow(fd), body)
        }
    });
}

/// Start copying keel's lines to /dev/kmsg (the machine's init only: a PID namespace shares
/// the host's kernel log). The lines logged before, as the journal keeps them, go first.
/// Ok(false): the rate limit could not be lifted (`printk.devkmsg=` on the command line).
pub fn attach_kmsg() -> Result<bool, Errno> {
    use crate::sys::fd::open;
    use rustix::fs::{Mode, OFlags};
    let unlimited = open(c"/proc/sys/kernel/printk_devkmsg", OFlags::WRONLY | OFlags::CLOEXEC, Mode::empty())
        .and_then(|fd| rustix::io::write(fd, b"on\n"))
        .is_ok();
    let fd = open(c"/dev/kmsg", OFlags::WRONLY | OFlags::CLOEXEC, Mode::empty())?;
    LOGS.with(|j| {
        for seq in j.oldest()..j.next_seq() {
            if let Some(r) = j.get(seq).filter(|r| r.tag == u8::from(LogSource::Keel)) {
                write_kmsg(fd.as_fd(), r.text());
            }
        }
    });
    FDS.with(|fds| fds.kmsg = Some(fd));
    Ok(unlimited)
}

/// One record per write(2) (writev counts as one): `<31>` is LOG_DAEMON | LOG_DEBUG.
#[inline(never)] // smaller out of line (`just size`)
fn write_kmsg(fd: BorrowedFd, body: &[u8]) {
    use rustix::io::IoSlice;
    let _ = rustix::io::writev(fd, &[IoSlice::new(b"<31>keel: "), IoSlice::new(body)]);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Takes `room` bytes, then answers EAGAIN (or `fail`).
    #[derive(Default)]
    struct Fake {
        out: Vec<u8>,
        room: usize,
        fail: Option<Errno>,
        calls: usize,
    }

    impl Sink for Fake {
        fn write(&mut self, bytes: &[u8]) -> Result<usize, Errno> {
            self.calls += 1;
            if let Some(e) = self.fail {
                return Err(e);
            }
            let n = bytes.len().min(self.room);
            if n == 0 {
                return Err(Errno::AGAIN);
            }
            self.room -= n;
            self.out.extend_from_slice(&bytes[..n]);
            Ok(n)
        }
    }

    fn text(out: &[u8]) -> String {
        String::from_utf8_lossy(out).into_owned()
    }

    /// `len` bytes: `c` repeated, then a newline.
    fn line(c: u8, len: usize) -> Vec<u8> {
        let mut l = vec![c; len - 1];
        l.push(b'\n');
        l
    }

    #[test]
    fn partial_writes_keep_the_rest_for_later() {
        let mut ring = Ring::<64>::new();
        let mut sink = Fake { room: 5, ..Fake::default() };
        assert!(ring.push(b"hello world\n", false));
        assert_eq!(ring.pump(&mut sink), Err(Errno::AGAIN));
        assert_eq!(sink.out, b"hello");
        sink.room = 100;
        assert_eq!(ring.pump(&mut sink), Ok(()));
        assert_eq!(sink.out, b"hello world\n");
        assert!(ring.is_empty());
    }

    #[test]
    fn lines_wrap_around_the_end_in_order() {
        let mut ring = Ring::<16>::new();
        let mut sink = Fake { room: 6, ..Fake::default() };
        assert!(ring.push(b"0123456789\n", false)); // 0..11
        assert_eq!(ring.pump(&mut sink), Err(Errno::AGAIN)); // 6 written, 6..11 left
        assert!(ring.push(b"abcdefghij\n", false)); // 11..16, then 0..6: exactly full
        assert!(!ring.push(b"\n", false));
        let calls = sink.calls;
        sink.room = 100;
        assert_eq!(ring.pump(&mut sink), Ok(()));
        assert_eq!(text(&sink.out), "0123456789\nabcdefghij\n");
        assert_eq!(sink.calls - calls, 2, "up to the end of the buffer, then from its start");
    }

    #[test]
    fn a_full_ring_drops_whole_lines_until_drained_then_says_how_many() {
        let mut ring = Ring::<128>::new();
        let mut sink = Fake::default(); // a stalled console
        let (a, b) = (line(b'a', 64), line(b'b', 64));
        assert!(ring.push(&a, false));
        assert!(ring.push(&b, false)); // full
        assert!(!ring.push(b"x\n", false));
        assert_eq!(ring.pump(&mut sink), Err(Errno::AGAIN));
        sink.room = 100; // room comes back, but the ring does not drain
        assert_eq!(ring.pump(&mut sink), Err(Errno::AGAIN));
        assert!(!ring.push(b"y\n", false), "refused until the ring has drained");
        sink.room = 1000;
        assert_eq!(ring.pump(&mut sink), Ok(()));
        let out = text(&sink.out);
        let (lines, notice) = out.split_at(128);
        assert_eq!(lines.as_bytes(), [a, b].concat());
        assert!(notice.starts_with('[') && notice.ends_with("] keel: console: 2 lines dropped\n"), "{notice}");
        // Counted once: the next line goes through, with no other notice.
        assert!(ring.push(b"z\n", false));
        assert_eq!(ring.pump(&mut sink), Ok(()));
        assert!(text(&sink.out).ends_with("dropped\nz\n"));
    }

    #[test]
    fn a_fatal_line_is_taken_while_others_are_refused() {
        let mut ring = Ring::<128>::new();
        let mut sink = Fake::default();
        assert!(ring.push(&line(b'a', 100), false));
        assert!(!ring.push(&line(b'b', 40), false));
        assert!(!ring.push(b"ok\n", false), "refused: the ring has not drained");
        assert!(ring.push(b"fatal: x\n", true), "urgent, and it fits");
        sink.room = 1000;
        assert_eq!(ring.pump(&mut sink), Ok(()));
        let out = text(&sink.out);
        assert_eq!(&out.as_bytes()[..109], [line(b'a', 100), b"fatal: x\n".to_vec()].concat());
        assert!(out[109..].ends_with("keel: console: 2 lines dropped\n"), "{out}");
    }

    #[test]
    fn a_failing_console_keeps_its_lines_and_the_count_exact() {
        let mut ring = Ring::<128>::new();
        let mut sink = Fake { fail: Some(Errno::IO), ..Fake::default() };
        assert!(ring.push(&line(b'k', 60), false));
        assert_eq!(ring.pump(&mut sink), Err(Errno::IO));
        assert!(ring.push(&line(b'l', 60), false));
        for _ in 0..10 {
            assert!(!ring.push(&line(b'x', 20), false));
        }
        sink.fail = None;
        sink.room = 1000;
        assert_eq!(ring.pump(&mut sink), Ok(()));
        let out = text(&sink.out);
        assert_eq!(&out.as_bytes()[..120], [line(b'k', 60), line(b'l', 60)].concat());
        assert!(out.ends_with("keel: console: 10 lines dropped\n"), "{out}");
    }

    #[test]
    fn a_zero_write_is_no_progress_not_a_loop() {
        struct Zero;
        impl Sink for Zero {
            fn write(&mut self, _: &[u8]) -> Result<usize, Errno> {
                Ok(0)
            }
        }
        let mut ring = Ring::<16>::new();
        ring.push(b"line\n", false);
        assert_eq!(ring.pump(&mut Zero), Err(Errno::AGAIN));
        assert!(!ring.is_empty());
    }
}
