//! The recent past, for debug clients: a fixed ring of records numbered by a sequence
//! number, so a client can ask "since N" and a slow one can tell how many it missed.
//! Numbers are u64: they never wrap (2^64 records at a billion a second take 584 years).
//! One journal holds log lines (keel's own and services'), another events (service state
//! changes, boot phases, power requests). Both live in statics (see `log`): everyone writes,
//! the debug server reads.

/// Bytes of text a record keeps; longer lines are cut (the console still has them whole).
pub const TEXT_MAX: usize = 120;

#[derive(Copy, Clone, Debug)]
pub struct Record {
    pub boot_ns: u64,
    /// Log: the source (keel_proto::LogSource); event: the kind (keel_proto::EventKind).
    pub tag: u8,
    /// Log: the service index (0xff: none); event: how many bytes of `text` are the name.
    pub aux: u8,
    len: u8,
    text: [u8; TEXT_MAX],
}

impl Record {
    // All zeros, so the journals sit in .bss and cost nothing until written.
    const EMPTY: Record = Record { boot_ns: 0, tag: 0, aux: 0, len: 0, text: [0; TEXT_MAX] };

    pub fn text(&self) -> &[u8] {
        self.text.get(..self.len as usize).unwrap_or_default()
    }

    /// An event's name and detail.
    pub fn name_detail(&self) -> (&[u8], &[u8]) {
        let text = self.text();
        text.split_at((self.aux as usize).min(text.len()))
    }
}

pub struct Journal<const N: usize> {
    slots: [Record; N],
    next: u64,
}

impl<const N: usize> Journal<N> {
    pub const fn new() -> Self {
        Journal { slots: [Record::EMPTY; N], next: 0 }
    }

    /// A journal whose next record gets number `next` (tests: a long life in an instant).
    #[cfg(test)]
    pub const fn starting_at(next: u64) -> Self {
        Journal { slots: [Record::EMPTY; N], next }
    }

    /// Append a record made of `parts` (concatenated, cut at TEXT_MAX); returns its number.
    pub fn push(&mut self, boot_ns: u64, tag: u8, aux: u8, parts: &[&[u8]]) -> u64 {
        let seq = self.next;
        let slot = &mut self.slots[(seq % N as u64) as usize];
        let mut len = 0;
        for part in parts {
            let n = part.len().min(TEXT_MAX - len);
            slot.text[len..len + n].copy_from_slice(&part[..n]);
            len += n;
        }
        slot.boot_ns = boot_ns;
        slot.tag = tag;
        slot.aux = aux;
        slot.len = len as u8;
        self.next = seq + 1;
        seq
    }

    /// The journal for readers: one copy of their code for journals of any size.
    pub fn view(&self) -> View<'_> {
        View { slots: &self.slots, next: self.next }
    }

    /// The number the next record will get.
    pub fn next_seq(&self) -> u64 {
        self.next
    }

    pub fn oldest(&self) -> u64 {
        self.view().oldest()
    }

    pub fn get(&self, seq: u64) -> Option<&Record> {
        self.view().get(seq)
    }

    pub fn widen(&self, low: u32) -> u64 {
        self.view().widen(low)
    }
}

/// A journal's records, its capacity out of the type.
#[derive(Copy, Clone)]
pub struct View<'a> {
    slots: &'a [Record],
    pub next: u64,
}

impl<'a> View<'a> {
    /// The oldest record still held.
    pub fn oldest(&self) -> u64 {
        self.next.saturating_sub(self.slots.len() as u64)
    }

    /// Record `seq`, if still held (the last N records are, each in its own slot).
    pub fn get(&self, seq: u64) -> Option<&'a Record> {
        let slot = self.slots.get((seq % self.slots.len().max(1) as u64) as usize)?;
        (self.oldest()..self.next).contains(&seq).then_some(slot)
    }

    /// The record number whose low 32 bits are `low` (numbers travel in 32 bits: Event,
    /// Events): serial-number arithmetic (RFC 1982) around the next number, the nearest one
    /// at most 2^31 before it, else after it. Below 2^31 records, `low` itself.
    pub fn widen(&self, low: u32) -> u64 {
        let back = u64::from((self.next as u32).wrapping_sub(low));
        if back <= 1 << 31 && back <= self.next {
            self.next - back
        } else {
            self.next + u64::from(low.wrapping_sub(self.next as u32))
        }
    }
}

/// The first record number of the last `tail` that match, between `oldest` and `next`.
pub fn tail_start(oldest: u64, next: u64, tail: u16, matches: impl Fn(u64) -> bool) -> u64 {
    let mut start = next;
    let mut found = 0;
    while start > oldest && found < tail {
        start -= 1;
        found += matches(start) as u16;
    }
    start
}

impl<const N: usize> Default for Journal<N> {
    fn default() -> Self {
        Journal::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use keel_proto::{EventKind, LogSource};

    #[test]
    fn keeps_the_last_n_by_number() {
        let mut j = Journal::<4>::new();
        assert!(j.get(0).is_none());
        for i in 0..6u8 {
            assert_eq!(j.push(i as u64, LogSource::Keel.into(), 0xff, &[b"line ", &[b'0' + i]]), i as u64);
        }
        assert_eq!((j.oldest(), j.next_seq()), (2, 6));
        assert!(j.get(1).is_none(), "overwritten");
        assert_eq!(j.get(2).unwrap().text(), b"line 2");
        assert_eq!(j.get(5).unwrap().boot_ns, 5);
        assert!(j.get(6).is_none(), "not written yet");
    }

    #[test]
    fn numbers_go_on_past_2_pow_32() {
        // 2^32 records (a flooding service makes that in hours): numbering goes on.
        let mut j = Journal::<4>::starting_at((1 << 32) - 2);
        let seqs: Vec<u64> = (0..6u8).map(|i| j.push(0, LogSource::Keel.into(), 0xff, &[&[b'0' + i]])).collect();
        assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1), "numbers keep growing: {seqs:?}");
        assert_eq!(j.oldest(), seqs[2]);
        assert_eq!(j.next_seq(), seqs[5] + 1);
        for (i, &seq) in seqs.iter().enumerate() {
            let held = j.get(seq).map(|r| r.text()[0]);
            assert_eq!(held, (i >= 2).then_some(b'0' + i as u8), "record {seq}");
        }
        assert!(j.get(seqs[5] + 1).is_none() && j.get(seqs[1] & 0xffff_ffff).is_none());
        // A follower that read up to the last record before 2^32 goes on after it.
        assert_eq!(tail_start(j.oldest(), j.next_seq(), 2, |_| true), seqs[4]);
    }

    #[test]
    fn numbers_on_the_wire_are_read_around_the_next_one() {
        let at = |next: u64, low: u32| Journal::<4>::starting_at(next).widen(low);
        // Young journal: the number itself, before or after the next one.
        assert_eq!(at(100, 0), 0);
        assert_eq!(at(100, 42), 42);
        assert_eq!(at(100, 105), 105, "a number not reached yet");
        assert_eq!(at(100, 3_000_000_000), 3_000_000_000, "far ahead: still ahead");
        // Past 2^32: low bits name the nearest number.
        let next = (5 << 32) + 10;
        assert_eq!(at(next, 10), next);
        assert_eq!(at(next, 3), next - 7);
        assert_eq!(at(next, u32::MAX), (5 << 32) - 1, "just before the wrap of the low bits");
        assert_eq!(at(next, 20), next + 10, "just ahead");
        assert_eq!(at(next, 10u32.wrapping_sub(1 << 31)), next - (1 << 31), "2^31 back is back");
        assert_eq!(at(next, 11u32.wrapping_sub(1 << 31)), next - (1 << 31) + 1);
        assert_eq!(at(next, 9u32.wrapping_sub(1 << 31)), next + (1 << 31) - 1, "further back is ahead");
        // What an event carries round-trips, within 2^31 of the next number.
        for seq in [next - (1 << 31), (5 << 32) - 1, 5 << 32, next - 31, next - 1, next, next + 5] {
            assert_eq!(at(next, seq as u32), seq, "{seq}");
        }
    }

    #[test]
    fn tail_counts_back_matching_records() {
        assert_eq!(tail_start(0, 10, 3, |_| true), 7);
        assert_eq!(tail_start(5, 10, 100, |_| true), 5, "not before the oldest held");
        assert_eq!(tail_start(0, 10, 2, |s| s % 3 == 0), 6, "records 6 and 9 match");
        assert_eq!(tail_start(0, 0, 5, |_| true), 0);
        assert_eq!(tail_start(0, 10, 0, |_| true), 10);
    }

    #[test]
    fn long_text_is_cut_and_events_split_name_and_detail() {
        let mut j = Journal::<2>::new();
        let long = [b'x'; 300];
        let seq = j.push(0, LogSource::Keel.into(), 0xff, &[&long]);
        assert_eq!(j.get(seq).unwrap().text().len(), TEXT_MAX);
        let seq = j.push(7, EventKind::ServiceState.into(), 5, &[b"shell", b"ready"]);
        assert_eq!(j.get(seq).unwrap().name_detail(), (&b"shell"[..], &b"ready"[..]));
    }
}
