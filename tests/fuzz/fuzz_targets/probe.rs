//! Block-device identification (src/probe): disks through `identify`, `read_partitions`
//! (512- and 4096-byte sectors) and `find_partition`, and the input as a `root=` value
//! through `Spec::parse`. No input may panic them; reads stay bounded; what they report is
//! consistent.
//!
//! The first byte chooses the disk: 0 (or any unknown layout), the input itself repeated
//! over 64 times its length; otherwise one of the real-image vectors (src/probe/vectors),
//! patched by the rest of the input in 4-byte steps (24-bit offset into the vectors'
//! bytes, then a byte to XOR), and with bit 0x80 set, its GPT CRCs recomputed afterwards,
//! so what lies behind them is fuzzed too (the filesystems' checksums are not verified).
#![no_main]

use core::cell::Cell;

use keel::probe::{self, btrfs, gpt, Id, Partition, Spec, WINDOW};
use keel_proto::crc::crc32;
use libfuzzer_sys::fuzz_target;

macro_rules! v {
    ($name:literal) => {
        &include_bytes!(concat!("../../../src/probe/vectors/", $name))[..]
    };
}

#[derive(Copy, Clone, PartialEq)]
enum Sum {
    None,
    Gpt(usize),
}

const MIB: u64 = 1 << 20;

/// (device size, checksum kind, the windows and their offsets), as the unit tests lay
/// them out.
fn layouts() -> [(u64, Sum, Vec<(u64, &'static [u8])>); 13] {
    [
        (8 * MIB, Sum::None, vec![(0, v!("ext4.sb"))]),
        (8 * MIB, Sum::None, vec![(0, v!("ext3.sb"))]),
        (300 * MIB, Sum::None, vec![(0, v!("xfs.sb"))]),
        (300 * MIB, Sum::None, vec![(0, v!("xfs4k.sb"))]),
        (128 * MIB, Sum::None, vec![(btrfs::OFFSET, v!("btrfs.sb"))]),
        (4096, Sum::None, vec![(0, v!("squashfs.sb"))]),
        (4096, Sum::None, vec![(0, v!("erofs-label.sb"))]),
        (1440 * 1024, Sum::None, vec![(0, v!("fat12.boot")), (9728, v!("fat12.root"))]),
        (16 * MIB, Sum::None, vec![(0, v!("fat16.boot")), (34816, v!("fat16.root"))]),
        (64 * MIB, Sum::None, vec![(0, v!("fat32.boot")), (16384, v!("fat32.fat")), (1_049_600, v!("fat32.root"))]),
        (64 * MIB, Sum::Gpt(512), vec![(0, v!("gpt.lba0-33"))]),
        (64 * MIB, Sum::Gpt(4096), vec![(0, v!("gpt-4k.lba0-5"))]),
        (
            64 * MIB,
            Sum::None,
            vec![
                (0, v!("mbr.lba0")),
                (26624 * 512, v!("mbr.lba26624")),
                (36864 * 512, v!("mbr.lba36864")),
                (55296 * 512, v!("mbr.lba55296")),
            ],
        ),
    ]
}

struct Disk<'a> {
    size: u64,
    parts: Vec<(u64, Vec<u8>)>,
    /// When not empty, the whole device: this repeated up to `size`.
    cyclic: &'a [u8],
    reads: Cell<u32>,
}

impl<'a> Disk<'a> {
    /// The input repeated: the btrfs window (64 KiB), GPT arrays and EBR chains beyond the
    /// input are reachable, and the device still ends.
    fn raw(data: &'a [u8]) -> Disk<'a> {
        Disk { size: data.len() as u64 * 64, parts: Vec::new(), cyclic: data, reads: Cell::new(0) }
    }

    fn read(&self, at: u64, buf: &mut [u8]) -> Result<usize, ()> {
        self.reads.set(self.reads.get() + 1);
        let n = buf.len().min(self.size.saturating_sub(at) as usize);
        let buf = &mut buf[..n];
        if !self.cyclic.is_empty() {
            let len = self.cyclic.len() as u64;
            for (i, b) in buf.iter_mut().enumerate() {
                *b = self.cyclic[((at + i as u64) % len) as usize];
            }
            return Ok(n);
        }
        buf.fill(0);
        for (off, data) in &self.parts {
            let (start, end) = (at.max(*off), (at + n as u64).min(off + data.len() as u64));
            if start < end {
                buf[(start - at) as usize..(end - at) as usize].copy_from_slice(&data[(start - off) as usize..(end - off) as usize]);
            }
        }
        Ok(n)
    }

    fn reads(&self) -> u32 {
        self.reads.replace(0)
    }
}

fn fix(sum: Sum, parts: &mut [(u64, Vec<u8>)]) {
    let b = &mut parts[0].1;
    match sum {
        Sum::None => {}
        Sum::Gpt(ss) => {
            let h = gpt::Header::new_unchecked(&b[ss..]);
            let start = (h.entries_lba() as usize).saturating_mul(ss).min(b.len());
            let len = (h.entry_count() as usize).saturating_mul(h.entry_size() as usize).min(b.len() - start);
            let c = crc32(&b[start..start + len]);
            b[ss + 88..ss + 92].copy_from_slice(&c.to_le_bytes());
            gpt::Header::new_unchecked(&mut b[ss..2 * ss]).fill_crc();
        }
    }
}

fn disk(data: &[u8]) -> Disk<'_> {
    let layouts = layouts();
    let Some((&sel, patch)) = data.split_first() else { return Disk::raw(&[0]) };
    let Some((size, sum, parts)) = layouts.into_iter().nth(usize::from(sel & 0x7f).wrapping_sub(1)) else {
        return Disk::raw(data);
    };
    let mut parts: Vec<(u64, Vec<u8>)> = parts.into_iter().map(|(at, b)| (at, b.to_vec())).collect();
    let total: usize = parts.iter().map(|p| p.1.len()).sum();
    for p in patch.chunks_exact(4) {
        let mut at = (usize::from(p[0]) | usize::from(p[1]) << 8 | usize::from(p[2]) << 16) % total;
        for (_, b) in parts.iter_mut() {
            if at < b.len() {
                b[at] ^= p[3];
                break;
            }
            at -= b.len();
        }
    }
    if sel & 0x80 != 0 {
        fix(sum, &mut parts);
    }
    Disk { size, parts, cyclic: &[], reads: Cell::new(0) }
}

fuzz_target!(|data: &[u8]| {
    if let Some(Spec::Uuid(t) | Spec::PartUuid { id: t, .. }) = Spec::parse(data) {
        assert!(matches!(t.len(), 9 | 11 | 36));
    }
    let disk = disk(data);
    let mut read = |at: u64, b: &mut [u8]| disk.read(at, b);
    let mut buf = [0u8; WINDOW];

    if let Ok(Some(found)) = probe::identify(&mut read, &mut buf) {
        assert!(found.label.len() <= 256);
        assert_eq!(probe::label(found.label), found.label);
        if let Some(id) = found.uuid {
            assert!(id.matches(id.text().as_bytes()));
        }
    }
    // Window 0 and btrfs's, each read at most twice (a short read at the device's end,
    // then the empty one).
    assert!(disk.reads() <= 2 * 2);

    for sector in [512, 4096] {
        let mut parts: heapless::Vec<Partition, 4> = heapless::Vec::new();
        let table = probe::read_partitions(&mut read, &mut buf, sector, &mut |p| {
            assert!(p.number >= 1);
            if let Id::MbrPart { part, .. } = p.id {
                assert_eq!(u32::from(part), p.number);
            }
            let _ = parts.push(*p);
            true
        });
        // GPT: LBA 0, 1, twice the array (1 MiB at most); MBR: the kernel's EBR bound.
        assert!(disk.reads() <= 30_000);
        if table.is_err() {
            assert!(parts.is_empty(), "a bad table reports nothing");
        }
        // Each partition is found again by its PARTUUID (the first with that text).
        for p in &parts {
            let text = p.id.text();
            let q = probe::find_partition(&mut read, &mut buf, sector, text.as_bytes(), 0).ok().flatten();
            let q = q.expect("found again");
            assert!(q.id.matches(text.as_bytes()) && q.number <= p.number);
            disk.reads();
        }
    }
});
