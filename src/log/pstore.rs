//! The previous boot: its logs from pstore, and how it ended.
//!
//! pstore (/sys/fs/pstore, mounted by the `pstore` boot phase) shows what a backend kept in
//! memory that survives a reset: ramoops (reserved RAM: `memmap=` and `ramoops.*` on the
//! command line, or a device-tree node; the module in `[system] modules`), efi_pstore (EFI
//! variables). One file a record: `dmesg-ramoops-0` is a kmsg dump, the kernel log's tail
//! taken on a panic, an oops, an emergency restart and, with `ramoops.max_reason=4`, every
//! reboot(2) (KMSG_DUMP_SHUTDOWN = 4 in Linux 6.1's kmsg_dump.h: PANIC 1, OOPS 2, EMERG 3);
//! it starts with `Panic#1 Part1` and holds `<PRI>[stamp] text` lines, keel's own among them
//! (`<31>... keel: ...`: console.rs copies keel's lines to /dev/kmsg). `console-*` is the
//! console's last output and `pmsg-*` what userspace wrote to /dev/pmsg0, both kept as they
//! are written, so a reset cannot lose them (Debian's kernel has neither:
//! CONFIG_PSTORE_CONSOLE and CONFIG_PSTORE_PMSG are off).
//!
//! Memory: nothing is copied. At boot keel opens each record and unlinks it at once: that
//! erases it (the ramoops zone or EFI variable is free for this boot's crash, and every
//! record the next boot finds is this boot's), while the open file keeps its text, in the
//! kernel's memory, for this whole boot. keel keeps the descriptors and a small summary
//! (`Previous`); debug clients' `--previous` requests read the files again, line by line.
//!
//! The ending (`decide`): a Panic record is a kernel panic, Emergency an emergency restart
//! (sysrq-b, softdog), then keel's marker (`keel: clean reboot`, written to the kernel log
//! and to pmsg as the power sequence ends: `mark_clean`) or a Shutdown record (reboot(2) by
//! someone else: a fatal error's panic policy, `reboot -f`) is a clean end, an Oops alone a
//! kernel oops the machine did not survive. No record, where a clean end would have left one
//! (shutdown dumps on, or pmsg): the machine lost power or was reset, by a hardware watchdog,
//! the reset button or the hypervisor; keel cannot tell those apart (a watchdog driver may
//! report its own reset, WDIOF_CARDRESET in bootstatus: QEMU's i6300esb does not, and keel
//! does not read it). No record and no way to leave one at a clean end: unknown.

use crate::power::PowerCmd;

/// Records kept open; more are erased unread (a boot leaves two or three: a panic's dump and
/// the emergency restart's, or one at reboot(2), and pmsg).
pub const MAX_RECORDS: usize = 8;
/// The longest line read at once: a kernel record's line fits (LOG_LINE_MAX, 992 bytes of
/// text, and its prefix); a longer one comes in pieces.
pub const LINE_MAX: usize = 1024;
const DETAIL_MAX: usize = 96;

/// What a record holds, by its file name.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Kind {
    Dmesg,
    Console,
    Pmsg,
}

/// `TYPE-BACKEND-ID` (`dmesg-ramoops-0`, `pmsg-ramoops-0`, `dmesg-efi_pstore-1734567890001`):
/// the types keel reads. Not compressed records the kernel could not decompress
/// (`….enc.z`), nor other types (mce, ftrace).
pub fn kind_of(name: &[u8]) -> Option<Kind> {
    const KINDS: [(&[u8], Kind); 3] = [(b"dmesg-", Kind::Dmesg), (b"console-", Kind::Console), (b"pmsg-", Kind::Pmsg)];
    let (_, kind) = KINDS.iter().find(|(prefix, _)| name.starts_with(prefix))?;
    (!name.ends_with(b".enc.z")).then_some(*kind)
}

/// Why a kmsg dump was taken (the kernel's kmsg_dump_reason_str, Linux 5.8 and later).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Reason {
    Panic,
    Oops,
    Emergency,
    Shutdown,
}

impl Reason {
    fn name(self) -> &'static str {
        match self {
            Reason::Panic => "Panic",
            Reason::Oops => "Oops",
            Reason::Emergency => "Emergency",
            Reason::Shutdown => "Shutdown",
        }
    }
}

/// A kmsg dump's first line, `Panic#1 Part1`: why it was taken (None: not a header, or a
/// reason keel does not know: the line is then read as a log line).
pub fn parse_header(line: &[u8]) -> Option<Reason> {
    const REASONS: [(&[u8], Reason); 4] =
        [(b"Panic#", Reason::Panic), (b"Oops#", Reason::Oops), (b"Emergency#", Reason::Emergency), (b"Shutdown#", Reason::Shutdown)];
    let (word, reason) = REASONS.iter().find(|(word, _)| line.starts_with(word))?;
    let rest = line.get(word.len()..).unwrap_or_default();
    memchr::memchr(b' ', rest).is_some_and(|space| rest[space..].starts_with(b" Part")).then_some(*reason)
}

/// A kernel log line: `<6>[    1.234567] text` in a dump, `[    1.234567] text` on the
/// console; either part may be missing (a line cut by the console's ring, ECC notes).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct KernelLine<'a> {
    /// The syslog priority, facility << 3 | level.
    pub pri: Option<u64>,
    pub ns: Option<u64>,
    pub text: &'a [u8],
}

pub fn parse_line(line: &[u8]) -> KernelLine<'_> {
    let (mut at, mut pri, mut ns) = (0, None, None);
    // `<PRI>`
    if line.first() == Some(&b'<') {
        let mut i = 1;
        let (p, n) = number(line, &mut i);
        if n > 0 && line.get(i) == Some(&b'>') {
            (pri, at) = (Some(p), i + 1);
        }
    }
    // `[%5lu.%06lu] `, as printk writes it.
    if line.get(at) == Some(&b'[') {
        let mut i = at + 1;
        while line.get(i) == Some(&b' ') {
            i += 1;
        }
        let (secs, n) = number(line, &mut i);
        let dot = line.get(i) == Some(&b'.');
        i += 1;
        let (us, m) = number(line, &mut i);
        if n > 0 && dot && m == 6 && line.get(i) == Some(&b']') {
            ns = Some(secs.saturating_mul(1_000_000_000).saturating_add(us * 1000));
            at = i + 1 + (line.get(i + 1) == Some(&b' ')) as usize;
        }
    }
    KernelLine { pri, ns, text: line.get(at..).unwrap_or_default() }
}

/// The digits of `line` from `at` on (at most 19: no overflow), and how many; `at` moves
/// past them.
fn number(line: &[u8], at: &mut usize) -> (u64, usize) {
    let (mut value, start) = (0u64, *at);
    while let Some(&d) = line.get(*at).filter(|d| d.is_ascii_digit() && *at - start < 19) {
        value = value * 10 + u64::from(d - b'0');
        *at += 1;
    }
    (value, *at - start)
}

impl KernelLine<'_> {
    /// One of keel's lines (daemon facility, `keel: `), as console.rs writes them.
    pub fn is_keel(&self) -> bool {
        self.pri.is_none_or(|p| p >> 3 == 3) && self.text.starts_with(b"keel: ")
    }
}

fn power_word(word: &[u8]) -> Option<PowerCmd> {
    [PowerCmd::Halt, PowerCmd::PowerOff, PowerCmd::Reboot].into_iter().find(|c| c.name().as_bytes() == word)
}

/// keel's clean-end marker (a keel line's text after `keel: `): `clean reboot`.
pub fn marker(body: &[u8]) -> Option<PowerCmd> {
    power_word(body.strip_prefix(b"clean ")?)
}

/// The kernel's last words before a reboot(2) (kernel/reboot.c, `reboot: ` its pr_fmt).
pub fn kernel_end(text: &[u8]) -> Option<PowerCmd> {
    const ENDS: [(&[u8], PowerCmd); 3] = [
        (b"reboot: Restarting system", PowerCmd::Reboot),
        (b"reboot: System halted", PowerCmd::Halt),
        (b"reboot: Power down", PowerCmd::PowerOff),
    ];
    ENDS.iter().find(|(words, _)| text.starts_with(words)).map(|&(_, cmd)| cmd)
}

/// How the previous boot ended. Unknown is 0: the summary starts in .bss.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Ending {
    Unknown,
    /// No record where a clean end leaves one: power loss, a reset.
    Lost,
    Oops,
    Emergency,
    Panic,
    /// reboot(2), which one not said.
    Shutdown,
    Halt,
    PowerOff,
    Reboot,
}

impl Ending {
    pub fn name(self) -> &'static str {
        match self {
            Ending::Unknown => "unknown",
            Ending::Lost => "power loss or reset",
            Ending::Oops => "kernel oops",
            Ending::Emergency => "emergency restart",
            Ending::Panic => "kernel panic",
            Ending::Shutdown => "shutdown",
            Ending::Halt => "halt",
            Ending::PowerOff => "poweroff",
            Ending::Reboot => "reboot",
        }
    }

    fn clean(cmd: Option<PowerCmd>) -> Ending {
        match cmd {
            None => Ending::Shutdown,
            Some(PowerCmd::Halt) => Ending::Halt,
            Some(PowerCmd::PowerOff) => Ending::PowerOff,
            Some(PowerCmd::Reboot) => Ending::Reboot,
        }
    }
}

/// What the records say. Record numbers are positions in `Previous`.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct Evidence {
    /// The first record of each reason (by `Reason as usize`).
    pub first: [Option<u8>; 4],
    /// keel's last line of the boot was its marker (and in which record).
    pub marker: Option<(PowerCmd, u8)>,
    /// The kernel's last `reboot: ` line.
    pub kernel_end: Option<PowerCmd>,
    /// A clean end leaves a record: ramoops dumps at shutdown (max_reason >= 4), or pmsg.
    pub clean_recorded: bool,
}

/// The ending, and the record that tells it.
pub fn decide(e: &Evidence) -> (Ending, Option<u8>) {
    let [panic, oops, emergency, shutdown] = e.first;
    if panic.is_some() {
        (Ending::Panic, panic)
    } else if emergency.is_some() {
        (Ending::Emergency, emergency)
    } else if let Some((cmd, at)) = e.marker {
        (Ending::clean(Some(cmd)), Some(at))
    } else if shutdown.is_some() {
        (Ending::clean(e.kernel_end), shutdown)
    } else if oops.is_some() {
        (Ending::Oops, oops)
    } else {
        (if e.clean_recorded { Ending::Lost } else { Ending::Unknown }, None)
    }
}

/// Where a record's bytes come from: its open file (PID 1), bytes (the tests).
pub trait ReadAt {
    /// Bytes at `offset` into `buf`; 0 at the end (or on an error).
    fn read_at(&self, buf: &mut [u8], offset: u64) -> usize;
}

impl ReadAt for rustix::fd::OwnedFd {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> usize {
        rustix::io::pread(crate::sys::fd::borrow(self), buf, offset).unwrap_or(0)
    }
}

pub struct Record<F> {
    file: F,
    kind: Kind,
    header: Option<Reason>,
    /// Its first line's time: records are read oldest first.
    first_ns: u64,
}

/// Where a reader of the records is: a record, an offset in it, and the times already read
/// (`min_ns`: a stamped line earlier than it was in an earlier record: two dumps of the same
/// boot overlap, a panic's and the emergency restart's after it almost wholly).
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct Cursor {
    record: u8,
    offset: u64,
    min_ns: u64,
    high_ns: u64,
}

/// Whose line it is.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Source {
    Kernel,
    /// keel's, in a dump.
    Keel,
    Pmsg,
}

/// A line read into the caller's buffer: its time (0: none) and where its text is.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Item {
    pub ns: u64,
    pub start: usize,
    pub end: usize,
    pub source: Source,
}

impl Item {
    /// The line in the buffer `next` filled (checked: indexing would bring core::fmt).
    fn text<'b>(&self, buf: &'b mut [u8], skip: usize) -> &'b mut [u8] {
        buf.get_mut(self.start + skip..self.end).unwrap_or_default()
    }
}

/// The previous boot: its records, and what they say.
pub struct Previous<F> {
    records: heapless::Vec<Record<F>, MAX_RECORDS>,
    pub ending: Ending,
    pub detail: heapless::Vec<u8, DETAIL_MAX>,
    /// Lines of the two streams: the kernel's (dmesg), keel's (logs).
    pub lines: [u32; 2],
    /// The PreviousBoot event: its time and number.
    pub event: (u64, u64),
}

/// The line at `offset`: its length and how far the next one is; None at the end.
fn read_line<F: ReadAt>(file: &F, offset: u64, buf: &mut [u8; LINE_MAX]) -> Option<(usize, u64)> {
    let n = file.read_at(buf, offset).min(LINE_MAX);
    if n == 0 {
        return None;
    }
    Some(match memchr::memchr(b'\n', &buf[..n]) {
        Some(i) => (i, i as u64 + 1),
        None => (n, n as u64),
    })
}

impl<F: ReadAt> Previous<F> {
    pub const fn new() -> Self {
        Previous { records: heapless::Vec::new(), ending: Ending::Unknown, detail: heapless::Vec::new(), lines: [0; 2], event: (0, 0) }
    }

    pub fn len(&self) -> usize {
        self.records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// Keep the record `name` (open as `file`): its header, and its first stamped line's
    /// time (in its first LINE_MAX bytes; pmsg has none).
    pub fn add(&mut self, name: &[u8], file: F) {
        let Some(kind) = kind_of(name) else { return };
        let mut buf = [0u8; LINE_MAX];
        let n = if kind == Kind::Pmsg { 0 } else { file.read_at(&mut buf, 0).min(LINE_MAX) };
        let (mut header, mut first_ns, mut at) = (None, u64::MAX, 0);
        while let Some(rest) = buf.get(at..n).filter(|r| !r.is_empty() && first_ns == u64::MAX) {
            let line = &rest[..memchr::memchr(b'\n', rest).unwrap_or(rest.len())];
            if at == 0 && kind == Kind::Dmesg {
                header = parse_header(line);
            }
            first_ns = parse_line(line).ns.unwrap_or(u64::MAX);
            at += line.len() + 1;
        }
        // No room: closed, erased unread.
        let _ = self.records.push(Record { file, kind, header, first_ns });
    }

    /// The next line of the records, oldest first: dumps (and the console, where there is
    /// no dump), each stamped line once; then pmsg.
    pub fn next(&self, c: &mut Cursor, buf: &mut [u8; LINE_MAX]) -> Option<Item> {
        let dumps = self.records.iter().any(|r| r.kind == Kind::Dmesg);
        loop {
            let r = self.records.get(c.record as usize)?;
            let read = if r.kind == Kind::Console && dumps { None } else { read_line(&r.file, c.offset, buf) };
            let Some((len, step)) = read else {
                (c.record, c.offset, c.min_ns) = (c.record + 1, 0, c.min_ns.max(c.high_ns));
                continue;
            };
            let first = c.offset == 0;
            c.offset += step;
            if r.kind == Kind::Pmsg {
                return Some(Item { ns: 0, start: 0, end: len, source: Source::Pmsg });
            }
            if first && r.header.is_some() {
                continue;
            }
            let line = parse_line(&buf[..len]);
            if let Some(ns) = line.ns {
                if ns < c.min_ns {
                    continue;
                }
                c.high_ns = c.high_ns.max(ns.saturating_add(1));
            }
            let source = if line.is_keel() { Source::Keel } else { Source::Kernel };
            return Some(Item { ns: line.ns.unwrap_or(0), start: len - line.text.len(), end: len, source });
        }
    }

    /// The next line of a stream: keel's lines (`keel`: their text after `keel: `), else the
    /// kernel's (all lines of the dumps, keel's included, as /dev/kmsg has them).
    pub fn next_of<'b>(&self, keel: bool, c: &mut Cursor, buf: &'b mut [u8; LINE_MAX]) -> Option<(u64, &'b mut [u8])> {
        loop {
            let item = self.next(c, buf)?;
            let skip = match (keel, item.source) {
                (false, Source::Pmsg) | (true, Source::Kernel) => continue,
                (true, Source::Keel) => 6,
                (true, Source::Pmsg) => 6 * item.text(buf, 0).starts_with(b"keel: ") as usize,
                (false, _) => 0,
            };
            return Some((item.ns, item.text(buf, skip)));
        }
    }

    /// Once every record is in: order them, count the lines, decide the ending.
    /// `clean_recorded`: a clean end would have left a record (dumps at shutdown, pmsg).
    #[inline(never)]
    pub fn finish(&mut self, clean_recorded: bool) {
        // Oldest first (a few records: insertion sort).
        for i in 1..self.records.len() {
            let mut j = i;
            while let Some([a, b]) = self.records.get_mut(j.wrapping_sub(1)..=j) {
                if a.first_ns <= b.first_ns {
                    break;
                }
                core::mem::swap(a, b);
                j -= 1;
            }
        }
        let mut e = Evidence { clean_recorded, ..Evidence::default() };
        for (i, r) in self.records.iter().enumerate() {
            if let Some(reason) = r.header {
                e.first.get_mut(reason as usize).map(|first| first.get_or_insert(i as u8));
            }
        }
        let (mut c, mut buf) = (Cursor::default(), [0u8; LINE_MAX]);
        while let Some(item) = self.next(&mut c, &mut buf) {
            let text = &*item.text(&mut buf, 0);
            self.lines[0] += (item.source != Source::Pmsg) as u32;
            if item.source == Source::Kernel {
                e.kernel_end = kernel_end(text).or(e.kernel_end);
                continue;
            }
            self.lines[1] += 1;
            let body = text.strip_prefix(b"keel: ").unwrap_or(text);
            // keel's last line decides, but for the one power_off_now writes after the marker.
            if power_word(body).is_none() {
                e.marker = marker(body).map(|cmd| (cmd, c.record));
            }
        }
        let (ending, at) = decide(&e);
        self.ending = ending;
        // The evidence in words: `Panic dump`, `keel's marker in pmsg`, `Shutdown dump, not
        // by keel's power sequence`.
        let record = at.and_then(|i| self.records.get(i as usize));
        let clean = ending as u8 >= Ending::Shutdown as u8;
        let parts: [&[u8]; 3] = match record.map(|r| (r.kind, r.header)) {
            Some((Kind::Pmsg, _)) => [b"keel's marker in pmsg", b"", b""],
            Some((_, Some(reason))) => {
                let marked = clean && e.marker.is_some();
                let by_whom: &[u8] = if !clean { b"" } else if marked { b", keel's marker in it" } else { b", not by keel's power sequence" };
                [reason.name().as_bytes(), b" dump", by_whom]
            }
            Some((_, None)) => [b"keel's marker in the console record", b"", b""],
            None if clean_recorded => [b"no record, though a clean end leaves one", b"", b""],
            None => [b"no record, and a clean end leaves none", b"", b""],
        };
        self.detail.clear();
        for part in parts {
            let _ = self.detail.extend_from_slice(part);
        }
    }
}

impl<F: ReadAt> Default for Previous<F> {
    fn default() -> Self {
        Previous::new()
    }
}

#[cfg(all(not(test), feature = "rt"))]
pub use rt::*;

#[cfg(all(not(test), feature = "rt"))]
mod rt {
    use super::*;
    use crate::log::say::Part::T;
    use crate::sys::TryLock;
    use rustix::fd::OwnedFd;
    use crate::sys::fd::{open, openat};
    use rustix::fs::{unlinkat, AtFlags, Mode, OFlags};

    /// The previous boot, read once by the `pstore` boot phase.
    pub static PREVIOUS: TryLock<Previous<OwnedFd>> = TryLock::new(Previous::new());
    /// /dev/pmsg0, for the marker (opened at boot: /dev may be gone when the marker is due).
    static PMSG: TryLock<Option<OwnedFd>> = TryLock::new(None);

    /// Read and erase the records of /sys/fs/pstore (`mounted`), decide the ending, log it
    /// and record its event. After the modules phase: ramoops makes its records then.
    #[inline(never)]
    pub fn read_previous(mounted: bool) {
        let flags = OFlags::RDONLY | OFlags::CLOEXEC;
        let pmsg = open(c"/dev/pmsg0", OFlags::WRONLY | OFlags::CLOEXEC, Mode::empty()).ok();
        let mut reason = [0u8; 8];
        let max_reason = crate::file::read_into(c"/sys/module/ramoops/parameters/max_reason", &mut reason);
        // `4\n` (KMSG_DUMP_SHUTDOWN), `-1\n`: the default, 2.
        let dumps_at_shutdown = matches!(max_reason.as_deref(), Ok([b'4'..=b'9', b'\n']));
        let clean_recorded = pmsg.is_some() || dumps_at_shutdown;
        PMSG.with(|fd| *fd = pmsg);
        PREVIOUS.with(|p| {
            let dir = if mounted { open(c"/sys/fs/pstore", flags | OFlags::DIRECTORY, Mode::empty()).ok() } else { None };
            if let Some(dir) = dir {
                let mut dirents = [0u8; 1024];
                            let mut entries = crate::dir::Dir::new(rustix::fd::AsFd::as_fd(&dir), &mut dirents);
                while let Some(Ok(entry)) = entries.next() {
                    let name = entry.file_name();
                    if kind_of(name.to_bytes()).is_none() {
                        continue;
                    }
                    if let Ok(fd) = openat(rustix::fd::AsFd::as_fd(&dir), name, flags, Mode::empty()) {
                        // Erased, its text still readable through `fd` (see the module comment).
                        let _ = unlinkat(&dir, name, AtFlags::empty());
                        p.add(name.to_bytes(), fd);
                    }
                }
            }
            p.finish(clean_recorded);
            crate::log::say::say(b"previous boot ended: % (%)", &[T(p.ending.name().as_bytes()), T(&p.detail)]);
            let seq = crate::log::event(keel_proto::EventKind::PreviousBoot, p.ending.name().as_bytes(), &p.detail);
            p.event = (crate::clock::Instant::now().0, seq.unwrap_or(0));
        });
    }

    /// The power sequence's last act before reboot(2): `keel: clean reboot` into the kernel
    /// log (a shutdown dump keeps it) and pmsg (kept however the machine goes down next).
    pub fn mark_clean(cmd: PowerCmd) {
        // By PowerCmd's codes.
        const MARKS: [&[u8]; 3] = [b"keel: clean halt\n", b"keel: clean poweroff\n", b"keel: clean reboot\n"];
        let text = MARKS.get(cmd as usize).copied().unwrap_or_default();
        crate::log::console::kmsg(text.get(6..text.len().saturating_sub(1)).unwrap_or_default());
        PMSG.with(|fd| fd.as_ref().map(|fd| rustix::io::write(crate::sys::fd::borrow(fd), text)));
    }
}

#[cfg(test)]
mod tests;
