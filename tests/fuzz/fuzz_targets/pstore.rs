//! pstore records (src/log/pstore.rs), whose bytes after a crash are anyone's guess: no input
//! may panic the header, line and record readers; every stream ends, and has as many lines
//! as the summary counted for it.
#![no_main]

use keel::log::pstore::{self, Cursor, Previous, ReadAt, LINE_MAX};
use libfuzzer_sys::fuzz_target;

struct Bytes(Vec<u8>);

impl ReadAt for Bytes {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> usize {
        let start = usize::try_from(offset).unwrap_or(usize::MAX).min(self.0.len());
        let n = (self.0.len() - start).min(buf.len());
        buf[..n].copy_from_slice(&self.0[start..start + n]);
        n
    }
}

fuzz_target!(|data: &[u8]| {
    for line in data.split(|&b| b == b'\n') {
        let _ = pstore::parse_header(line);
        let l = pstore::parse_line(line);
        assert!(l.text.len() <= line.len() && line.ends_with(l.text));
        let _ = (pstore::marker(l.text), pstore::kernel_end(l.text), l.is_keel());
    }
    // The first byte picks the records and the machine; each record is a u16 length and bytes.
    let Some((&pick, mut rest)) = data.split_first() else { return };
    let mut p: Previous<Bytes> = Previous::new();
    for (bit, name) in ["dmesg-ramoops-0", "dmesg-ramoops-1", "console-ramoops-0", "pmsg-ramoops-0", "dmesg-efi_pstore-12"].iter().enumerate() {
        if pick & (1 << bit) == 0 || rest.len() < 2 {
            continue;
        }
        let len = (usize::from(u16::from_le_bytes([rest[0], rest[1]]))).min(rest.len() - 2);
        p.add(name.as_bytes(), Bytes(rest[2..2 + len].to_vec()));
        rest = &rest[2 + len..];
    }
    p.finish(pick & 0x80 != 0);
    assert!(!p.detail.is_empty() && !p.ending.name().is_empty());
    for (keel, want) in [(false, p.lines[0]), (true, p.lines[1])] {
        let (mut c, mut buf, mut n) = (Cursor::default(), [0u8; LINE_MAX], 0u32);
        while let Some((_, text)) = p.next_of(keel, &mut c, &mut buf) {
            assert!(text.len() <= LINE_MAX);
            n += 1;
        }
        assert_eq!(n, want);
    }
});
