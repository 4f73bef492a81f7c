//! The recent past, for debug clients: a fixed ring of records numbered by a sequence
//! number, so a client can ask "since N" and a slow one can tell how many it missed.
//! One journal holds log lines (keel's own and services'), another events (service state
//! changes, boot phases, power requests). Both live in statics (see `log`): everyone writes,
//! the debug server reads.

/// Bytes of text a record keeps; longer lines are cut (the console still has them whole).
pub const TEXT_MAX: usize = 120;

#[derive(Copy, Clone, Debug)]
pub struct Record {
    pub seq: u32,
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
    const EMPTY: Record = Record { seq: 0, boot_ns: 0, tag: 0, aux: 0, len: 0, text: [0; TEXT_MAX] };

    pub fn text(&self) -> &[u8] {
        &self.text[..self.len as usize]
    }

    /// An event's name and detail.
    pub fn name_detail(&self) -> (&[u8], &[u8]) {
        self.text().split_at((self.aux as usize).min(self.len as usize))
    }
}

pub struct Journal<const N: usize> {
    slots: [Record; N],
    next: u32,
}

impl<const N: usize> Journal<N> {
    pub const fn new() -> Self {
        Journal { slots: [Record::EMPTY; N], next: 0 }
    }

    /// Append a record made of `parts` (concatenated, cut at TEXT_MAX); returns its number.
    pub fn push(&mut self, boot_ns: u64, tag: u8, aux: u8, parts: &[&[u8]]) -> u32 {
        let seq = self.next;
        let slot = &mut self.slots[seq as usize % N];
        let mut len = 0;
        for part in parts {
            let n = part.len().min(TEXT_MAX - len);
            slot.text[len..len + n].copy_from_slice(&part[..n]);
            len += n;
        }
        slot.seq = seq;
        slot.boot_ns = boot_ns;
        slot.tag = tag;
        slot.aux = aux;
        slot.len = len as u8;
        self.next = seq.wrapping_add(1);
        seq
    }

    /// The number the next record will get.
    pub fn next_seq(&self) -> u32 {
        self.next
    }

    /// The oldest record still held.
    pub fn oldest(&self) -> u32 {
        self.next.saturating_sub(N as u32)
    }

    pub fn get(&self, seq: u32) -> Option<&Record> {
        let slot = &self.slots[seq as usize % N];
        (slot.seq == seq && seq < self.next).then_some(slot)
    }
}

/// The first record number of the last `tail` that match, between `oldest` and `next`.
pub fn tail_start(oldest: u32, next: u32, tail: u16, matches: impl Fn(u32) -> bool) -> u32 {
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
        assert_eq!(j.get(0).map(|r| r.seq), None);
        for i in 0..6u8 {
            assert_eq!(j.push(i as u64, LogSource::Keel.into(), 0xff, &[b"line ", &[b'0' + i]]), i as u32);
        }
        assert_eq!((j.oldest(), j.next_seq()), (2, 6));
        assert!(j.get(1).is_none(), "overwritten");
        assert_eq!(j.get(2).unwrap().text(), b"line 2");
        assert_eq!(j.get(5).unwrap().boot_ns, 5);
        assert!(j.get(6).is_none(), "not written yet");
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
