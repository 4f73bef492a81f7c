//! The kernel's log, /dev/kmsg: one record per read(2), `PRI,SEQ,USEC,FLAGS;text\n` and
//! then its dictionary lines (` SUBSYSTEM=acpi\n`). The kernel escapes bytes of the text
//! that are not printable ASCII as `\xNN`. Records are numbered (SEQ): a gap between two
//! records read is records the ring overwrote first, counted in a Lost message.

use keel_proto::MAX_PAYLOAD;
use rustix::fd::OwnedFd;
use rustix::io::Errno;

/// The longest record a read may return: the kernel's PRINTK_MESSAGE_MAX (6.2 and later:
/// the kernel cuts longer ones). A longer one (6.1 allows more escaped text) makes read(2)
/// fail with EINVAL and is skipped by the kernel: counted as lost.
pub const RECORD_MAX: usize = 2048;
/// The most text a kernel Log message carries (its fixed fields take 14 bytes).
pub const TEXT_MAX: usize = MAX_PAYLOAD - 14;
/// Ends a text that was cut to TEXT_MAX: "…" (U+2026), which kmsg text (escaped ASCII)
/// never contains.
pub const CUT: &[u8] = "…".as_bytes();

/// A /dev/kmsg being read from the record numbered `start` on.
pub struct Kmsg {
    pub fd: OwnedFd,
    pub numbers: Numbers,
}

/// Which records are wanted and which were missed, by the kernel's record numbers.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Numbers {
    /// The first record wanted (the last `tail` when the request came).
    start: u64,
    /// The number the next record read should have.
    next: u64,
}

impl Numbers {
    pub fn new(start: u64) -> Numbers {
        Numbers { start, next: 0 }
    }

    /// Record `seq` was read: how many wanted records were missed before it, and whether
    /// it is wanted itself.
    pub fn seen(&mut self, seq: u64) -> (u64, bool) {
        let expected = self.next.max(self.start);
        self.next = seq.saturating_add(1);
        (seq.saturating_sub(expected), seq >= self.start)
    }

    /// A record was skipped unread (EINVAL): the one after the last read. Whether it was
    /// wanted (then it is lost).
    pub fn skipped(&mut self) -> bool {
        let wanted = self.next >= self.start;
        self.next = self.next.saturating_add(1);
        wanted
    }
}

impl Kmsg {
    /// Open /dev/kmsg (non-blocking) to read its last `tail` records, and what comes after.
    pub fn open(tail: u16) -> Result<Kmsg, Errno> {
        use crate::sys::fd::open;
        use rustix::fs::{Mode, OFlags};
        let flags = OFlags::RDONLY | OFlags::NONBLOCK | OFlags::CLOEXEC;
        // Read it all once to learn the newest record's number.
        let counter = open(c"/dev/kmsg", flags, Mode::empty())?;
        let mut buf = [0u8; RECORD_MAX];
        let mut end = 0;
        loop {
            match rustix::io::read(crate::sys::fd::borrow(&counter), &mut buf) {
                Ok(n) => end = parse(buf.get_mut(..n).unwrap_or_default()).0.map_or(end, |seq| seq + 1),
                Err(Errno::PIPE | Errno::INVAL | Errno::INTR) => continue,
                Err(_) => break,
            }
        }
        let fd = open(c"/dev/kmsg", flags, Mode::empty())?;
        Ok(Kmsg { fd, numbers: Numbers::new(end.saturating_sub(tail.into())) })
    }
}

/// `PRI,SEQ,USEC,FLAGS;text\n KEY=VALUE\n…`: the record's number, its time in ns and its
/// text with the dictionary lines (without the last newline). Anything else is all text.
pub fn parse(record: &mut [u8]) -> (Option<u64>, u64, &mut [u8]) {
    let Some(semi) = memchr::memchr(b';', record) else { return (None, 0, record) };
    let (head, text) = record.split_at_mut(semi + 1);
    let mut fields = head[..semi].split(|&b| b == b',').skip(1).map(crate::config::cmdline::parse_u64);
    let (seq, usec) = (fields.next().flatten(), fields.next().flatten().unwrap_or(0));
    let text = match text {
        [text @ .., b'\n'] => text,
        text => text,
    };
    (seq, usec.saturating_mul(1000), text)
}

/// `text` as a Log message carries it: whole if it fits, else cut to TEXT_MAX bytes that
/// end with CUT. Cuts in place (the record is not needed afterwards).
pub fn fit(text: &mut [u8]) -> &[u8] {
    if text.len() <= TEXT_MAX {
        return text;
    }
    let head = &mut text[..TEXT_MAX];
    head[TEXT_MAX - CUT.len()..].copy_from_slice(CUT);
    head
}

/// Why /dev/kmsg cannot be followed, for the ErrorReply.
pub fn errno_text(e: Errno) -> &'static str {
    match e {
        Errno::NOENT => "no /dev/kmsg",
        Errno::ACCESS | Errno::PERM => "/dev/kmsg: permission denied",
        _ => "/dev/kmsg cannot be read",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Records as this machine's /dev/kmsg gave them (kernel 6.18).
    const BANNER: &[u8] = b"5,0,0,-;Linux version 6.18.44-fc-v769 (builder@sandboxing) (gcc (GCC) 15.3.0, GNU ld (GNU Binutils) 2.46) #1 SMP PREEMPT_DYNAMIC @0\n";
    const WITH_DICT: &[u8] = b"6,191,307579,-;acpi PNP0A08:00: _OSC: OS supports [ExtendedConfig ASPM ClockPM Segments MSI HPX-Type3]\n SUBSYSTEM=acpi\n DEVICE=+acpi:PNP0A08:00\n";

    #[test]
    fn records_whole_with_their_dictionary() {
        let parsed = |r: &[u8]| {
            let mut r = r.to_vec();
            let (seq, ns, text) = parse(&mut r);
            (seq, ns, text.to_vec())
        };
        let (seq, ns, text) = parsed(BANNER);
        assert_eq!((seq, ns), (Some(0), 0));
        assert!(text.starts_with(b"Linux version 6.18.44") && text.ends_with(b"@0"), "{text:?}");
        let (seq, ns, text) = parsed(WITH_DICT);
        assert_eq!((seq, ns), (Some(191), 307_579_000));
        assert_eq!(text, b"acpi PNP0A08:00: _OSC: OS supports [ExtendedConfig ASPM ClockPM Segments MSI HPX-Type3]\n SUBSYSTEM=acpi\n DEVICE=+acpi:PNP0A08:00");
        assert_eq!(parsed(b"garbage"), (None, 0, b"garbage".to_vec()));
        assert_eq!(parsed(b"x,y;t"), (None, 0, b"t".to_vec()));
        assert_eq!(parsed(b"6,7,x,-;t\n\n"), (Some(7), 0, b"t\n".to_vec()));
    }

    #[test]
    fn long_text_is_cut_with_a_marker() {
        let mut short = *b"fits";
        assert_eq!(fit(&mut short), b"fits");
        let mut exact = [b'a'; TEXT_MAX];
        assert_eq!(fit(&mut exact), &[b'a'; TEXT_MAX][..]);
        let mut long = [b'b'; TEXT_MAX + 1];
        let cut = fit(&mut long);
        assert_eq!(cut.len(), TEXT_MAX);
        assert!(cut.ends_with(CUT) && cut[..TEXT_MAX - CUT.len()].iter().all(|&b| b == b'b'));
        // The largest text fits a Log message; one byte more does not.
        use keel_proto::{LogSource, Message, Stream};
        let log = |text| Message::Log { boot_ns: u64::MAX, source: LogSource::Kernel, stream: Stream::Out, service: b"", text };
        assert_eq!(log(&[b'x'; TEXT_MAX]).buffer_len(), MAX_PAYLOAD);
        assert!(log(&[b'x'; TEXT_MAX + 1]).emit(&mut [0; 2 * MAX_PAYLOAD]).is_err());
    }

    #[test]
    fn gaps_in_record_numbers_are_counted() {
        // The last 3 of records 0..10: from 7 on.
        let mut n = Numbers::new(7);
        assert_eq!(n.seen(0), (0, false), "before the tail: skipped, not lost");
        assert_eq!(n.seen(6), (0, false));
        assert_eq!(n.seen(7), (0, true));
        assert_eq!(n.seen(9), (1, true), "8 was overwritten before it was read");
        assert!(n.skipped(), "10 was too long to read: lost");
        assert_eq!(n.seen(11), (0, true));
        // The ring moved past the tail before the first read: those are lost too.
        let mut n = Numbers::new(100);
        assert_eq!(n.seen(104), (4, true));
        let mut n = Numbers::new(100);
        assert!(!n.skipped(), "the first record is long before the tail");
        assert_eq!(n.seen(101), (1, true), "…but then 100 was the one skipped");
        // Following from now on (tail 0): only new records.
        let mut n = Numbers::new(500);
        assert_eq!(n.seen(500), (0, true));
    }
}
