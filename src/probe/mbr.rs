//! The MBR (and an extended partition's EBRs, the same layout): the disk signature at 440,
//! four 16-byte entries at 446, 0x55AA at 510. Sectors are the device's logical sectors.

use super::bytes::{byte, field, le32, Field};
use super::Error;

pub const LEN: usize = 512;
/// The GPT protective entry's type.
pub const TYPE_GPT: u8 = 0xee;

mod field {
    use super::Field;
    pub const DISK_SIGNATURE: usize = 440;
    pub const ENTRIES: usize = 446;
    pub const ENTRY_LEN: usize = 16;
    pub const SIGNATURE: Field = 510..512;
    // Within an entry.
    pub const BOOT: usize = 0;
    pub const TYPE: usize = 4;
    pub const START: usize = 8;
    pub const SECTORS: usize = 12;
}

/// One partition entry.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct MbrEntry {
    /// 0x80 active, 0 not.
    pub boot: u8,
    pub system: u8,
    /// First sector: from the disk's start for a primary entry; in an EBR, from the EBR
    /// (a logical partition) or from the extended partition (the next link).
    pub start: u32,
    pub sectors: u32,
}

impl MbrEntry {
    /// DOS (0x05), Windows LBA (0x0f) and Linux (0x85) extended partitions, as the kernel.
    pub fn is_extended(&self) -> bool {
        matches!(self.system, 0x05 | 0x0f | 0x85)
    }
}

/// A view of a 512-byte MBR or EBR. No getter panics.
#[derive(Copy, Clone, Debug)]
pub struct Mbr<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Mbr<T> {
    pub const fn new_unchecked(buffer: T) -> Self {
        Mbr { buffer }
    }

    pub fn new_checked(buffer: T) -> Result<Self, Error> {
        let m = Self::new_unchecked(buffer);
        m.check_len()?;
        Ok(m)
    }

    pub fn check_len(&self) -> Result<(), Error> {
        if self.buffer.as_ref().len() < LEN {
            return Err(Error::Truncated);
        }
        Ok(())
    }

    pub fn disk_signature(&self) -> u32 {
        le32(self.buffer.as_ref(), field::DISK_SIGNATURE)
    }

    pub fn signature_ok(&self) -> bool {
        field(self.buffer.as_ref(), field::SIGNATURE) == [0x55, 0xaa]
    }

    /// Entry `i` (0..4; others read as empty).
    pub fn entry(&self, i: usize) -> MbrEntry {
        if i >= 4 {
            return MbrEntry::default();
        }
        let b = self.buffer.as_ref();
        let at = field::ENTRIES + i * field::ENTRY_LEN;
        MbrEntry {
            boot: byte(b, at + field::BOOT),
            system: byte(b, at + field::TYPE),
            start: le32(b, at + field::START),
            sectors: le32(b, at + field::SECTORS),
        }
    }

    pub fn entries(&self) -> [MbrEntry; 4] {
        [self.entry(0), self.entry(1), self.entry(2), self.entry(3)]
    }
}

/// A disk's MBR that holds a partition table.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct MbrRepr {
    pub disk: u32,
    pub entries: [MbrEntry; 4],
}

impl MbrRepr {
    /// The signature (`BadMagic` without it) and the kernel's test that this is a table
    /// and not some boot sector: every boot indicator 0 or 0x80 (`Invalid`).
    pub fn parse<T: AsRef<[u8]>>(m: &Mbr<T>) -> Result<MbrRepr, Error> {
        m.check_len()?;
        if !m.signature_ok() {
            return Err(Error::BadMagic);
        }
        let entries = m.entries();
        if entries.iter().any(|e| e.boot != 0 && e.boot != 0x80) {
            return Err(Error::Invalid);
        }
        Ok(MbrRepr { disk: m.disk_signature(), entries })
    }

    /// Whether a GPT follows: an 0xEE entry (hybrid MBRs have others too).
    pub fn has_gpt_entry(&self) -> bool {
        self.entries.iter().any(|e| e.system == TYPE_GPT)
    }

    /// A valid protective MBR, the kernel's `is_pmbr_valid`: an 0xEE entry that starts at
    /// LBA 1, where the GPT header is.
    pub fn protective(&self) -> bool {
        self.entries.iter().any(|e| e.system == TYPE_GPT && e.start == 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MBR: &[u8] = include_bytes!("vectors/mbr.lba0");
    const PMBR: &[u8] = include_bytes!("vectors/gpt.lba0-33");

    fn parse(b: &[u8]) -> Result<MbrRepr, Error> {
        MbrRepr::parse(&Mbr::new_checked(b)?)
    }

    /// sfdisk's table (vectors/README.md).
    #[test]
    fn real_mbr() {
        let r = parse(MBR).unwrap();
        assert_eq!(r.disk, 0x5eed_1234);
        let e = |boot, system, start, sectors| MbrEntry { boot, system, start, sectors };
        assert_eq!(r.entries, [e(0x80, 0x83, 2048, 16384), e(0, 0x0c, 18432, 8192), e(0, 0x05, 26624, 81920), e(0, 0, 0, 0)]);
        assert!(r.entries[2].is_extended() && !r.entries[0].is_extended());
        assert!(!r.has_gpt_entry() && !r.protective());
    }

    #[test]
    fn protective_mbr_is_recognised() {
        let r = parse(&PMBR[..LEN]).unwrap();
        assert!(r.has_gpt_entry() && r.protective());
        assert_eq!((r.entries[0].system, r.entries[0].start), (TYPE_GPT, 1));
        // An 0xEE entry elsewhere is no protective MBR.
        let mut b = PMBR[..LEN].to_vec();
        b[446 + 8] = 2;
        let r = parse(&b).unwrap();
        assert!(r.has_gpt_entry() && !r.protective());
    }

    #[test]
    fn not_a_table() {
        let mut b = MBR.to_vec();
        b[446 + 16] = 0x12;
        assert_eq!(parse(&b), Err(Error::Invalid));
        let mut b = MBR.to_vec();
        b[511] = 0;
        assert_eq!(parse(&b), Err(Error::BadMagic));
        assert_eq!(parse(&MBR[..LEN - 1]), Err(Error::Truncated));
        assert_eq!(Mbr::new_unchecked(MBR).entry(4), MbrEntry::default());
    }
}
