//! The ext2/3/4 superblock: 1024 bytes at byte 1024 of the device, little-endian. One parser
//! for the three; which one it is comes from the feature flags, as blkid decides it.

use super::bytes::{array, field, label, le32, Field};
use super::{Error, FsType};

/// Where the superblock starts on the device.
pub const OFFSET: usize = 1024;
pub const LEN: usize = 1024;
pub const MAGIC: u16 = 0xef53;

mod field {
    use super::Field;
    pub const LOG_BLOCK_SIZE: usize = 0x18;
    pub const MAGIC: Field = 0x38..0x3a;
    pub const FEATURE_COMPAT: usize = 0x5c;
    pub const FEATURE_INCOMPAT: usize = 0x60;
    pub const FEATURE_RO_COMPAT: usize = 0x64;
    pub const UUID: usize = 0x68;
    pub const VOLUME_NAME: Field = 0x78..0x88;
}

pub const COMPAT_HAS_JOURNAL: u32 = 0x4;
pub const INCOMPAT_JOURNAL_DEV: u32 = 0x8;
pub const RO_COMPAT_METADATA_CSUM: u32 = 0x400;
/// What ext2 understands (blkid's EXT2_FEATURE_*_SUPP): sparse_super, large_file,
/// btree_dir; filetype, meta_bg. ext3 adds the incompat `recover`.
const EXT2_RO_COMPAT: u32 = 0x7;
const EXT2_INCOMPAT: u32 = 0x12;
const EXT3_RO_COMPAT: u32 = EXT2_RO_COMPAT;
const EXT3_INCOMPAT: u32 = EXT2_INCOMPAT | 0x4;
/// The kernel's largest block, 64 KiB (1024 << 6).
const MAX_LOG_BLOCK_SIZE: u32 = 6;

/// A view of the superblock (the 1024 bytes from `OFFSET`). No getter panics.
#[derive(Copy, Clone, Debug)]
pub struct Superblock<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Superblock<T> {
    pub const fn new_unchecked(buffer: T) -> Self {
        Superblock { buffer }
    }

    pub fn new_checked(buffer: T) -> Result<Self, Error> {
        let sb = Self::new_unchecked(buffer);
        sb.check_len()?;
        Ok(sb)
    }

    pub fn check_len(&self) -> Result<(), Error> {
        if self.buffer.as_ref().len() < LEN {
            return Err(Error::Truncated);
        }
        Ok(())
    }

    fn b(&self) -> &[u8] {
        self.buffer.as_ref()
    }

    pub fn magic(&self) -> u16 {
        u16::from_le_bytes(array(self.b(), field::MAGIC.start))
    }

    pub fn log_block_size(&self) -> u32 {
        le32(self.b(), field::LOG_BLOCK_SIZE)
    }

    pub fn feature_compat(&self) -> u32 {
        le32(self.b(), field::FEATURE_COMPAT)
    }

    pub fn feature_incompat(&self) -> u32 {
        le32(self.b(), field::FEATURE_INCOMPAT)
    }

    pub fn feature_ro_compat(&self) -> u32 {
        le32(self.b(), field::FEATURE_RO_COMPAT)
    }

    pub fn uuid(&self) -> [u8; 16] {
        array(self.b(), field::UUID)
    }

    /// The raw 16-byte `s_volume_name`.
    pub fn volume_name(&self) -> &[u8] {
        field(self.b(), field::VOLUME_NAME)
    }
}

/// A valid ext2/3/4 superblock.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct ExtRepr<'a> {
    pub fs: FsType,
    pub uuid: [u8; 16],
    /// Trimmed as blkid does (`probe::label`).
    pub label: &'a [u8],
}

impl<'a> ExtRepr<'a> {
    pub fn parse(sb: &Superblock<&'a [u8]>) -> Result<ExtRepr<'a>, Error> {
        sb.check_len()?;
        if sb.magic() != MAGIC {
            return Err(Error::BadMagic);
        }
        let (compat, incompat, ro) = (sb.feature_compat(), sb.feature_incompat(), sb.feature_ro_compat());
        if sb.log_block_size() > MAX_LOG_BLOCK_SIZE {
            return Err(Error::Invalid);
        }
        if incompat & INCOMPAT_JOURNAL_DEV != 0 {
            return Err(Error::Unsupported);
        }
        let fs = if ro & !EXT3_RO_COMPAT != 0 || incompat & !EXT3_INCOMPAT != 0 {
            FsType::Ext4
        } else if compat & COMPAT_HAS_JOURNAL != 0 {
            FsType::Ext3
        } else if ro & !EXT2_RO_COMPAT == 0 && incompat & !EXT2_INCOMPAT == 0 {
            FsType::Ext2
        } else {
            // `recover` without a journal: blkid calls it nothing.
            return Err(Error::Invalid);
        };
        Ok(ExtRepr { fs, uuid: sb.uuid(), label: label(field(sb.buffer, field::VOLUME_NAME)) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXT4: &[u8] = include_bytes!("vectors/ext4.sb");
    const EXT3: &[u8] = include_bytes!("vectors/ext3.sb");
    const EXT2: &[u8] = include_bytes!("vectors/ext2.sb");

    fn sb(window: &[u8]) -> &[u8] {
        &window[OFFSET..OFFSET + LEN]
    }

    fn parse(sb: &[u8]) -> Result<ExtRepr<'_>, Error> {
        ExtRepr::parse(&Superblock::new_checked(sb)?)
    }

    /// blkid -p: vectors/README.md.
    #[test]
    fn real_superblocks() {
        let r = parse(sb(EXT4)).unwrap();
        assert_eq!(r.fs, FsType::Ext4);
        assert_eq!(r.label, b"keel-root");
        assert_eq!(r.uuid, *b"\x0e\x8b\x1c\x4a\x7f\x3d\x4b\x6e\x9a\x21\x5c\x3d\x2e\x1f\x0a\x9b");
        let r = parse(sb(EXT3)).unwrap();
        assert_eq!((r.fs, r.label), (FsType::Ext3, &b"old-ext3"[..]));
        assert_eq!(r.uuid[..4], [0x1b, 0x2c, 0x3d, 0x4e]);
        let r = parse(sb(EXT2)).unwrap();
        assert_eq!((r.fs, r.label), (FsType::Ext2, &b"plain"[..]));
        assert_eq!(r.uuid[15], 0x01);
    }

    /// The superblock's checksum is not verified (the kernel's mount does): a changed byte
    /// shows in what is read.
    #[test]
    fn the_checksum_is_not_verified() {
        let s = Superblock::new_checked(sb(EXT4)).unwrap();
        assert_ne!(s.feature_ro_compat() & RO_COMPAT_METADATA_CSUM, 0, "the vector has metadata_csum");
        let mut b = sb(EXT4).to_vec();
        b[field::UUID + 3] ^= 0x10;
        b[0x3fc] ^= 1;
        let r = parse(&b).unwrap();
        assert_eq!((r.fs, r.uuid[3], r.label), (FsType::Ext4, 0x4a ^ 0x10, &b"keel-root"[..]));
    }

    #[test]
    fn feature_flags_decide_the_type() {
        let with = |f: &dyn Fn(&mut [u8])| {
            let mut b = sb(EXT3).to_vec();
            f(&mut b);
            parse(&b).map(|r| r.fs)
        };
        let set = |b: &mut [u8], at: usize, v: u32| b[at..at + 4].copy_from_slice(&v.to_le_bytes());
        let compat = le32(sb(EXT3), field::FEATURE_COMPAT);
        let incompat = le32(sb(EXT3), field::FEATURE_INCOMPAT);
        assert_eq!(with(&|_| {}), Ok(FsType::Ext3));
        // extents (0x40) is ext4's.
        assert_eq!(with(&|b| set(b, field::FEATURE_INCOMPAT, incompat | 0x40)), Ok(FsType::Ext4));
        // huge_file (0x8) too.
        assert_eq!(with(&|b| set(b, field::FEATURE_RO_COMPAT, 0x8)), Ok(FsType::Ext4));
        assert_eq!(with(&|b| set(b, field::FEATURE_COMPAT, compat & !COMPAT_HAS_JOURNAL)), Ok(FsType::Ext2));
        // needs_recovery without a journal.
        assert_eq!(
            with(&|b| {
                set(b, field::FEATURE_COMPAT, compat & !COMPAT_HAS_JOURNAL);
                set(b, field::FEATURE_INCOMPAT, incompat | 0x4);
            }),
            Err(Error::Invalid)
        );
        assert_eq!(with(&|b| set(b, field::FEATURE_INCOMPAT, incompat | INCOMPAT_JOURNAL_DEV)), Err(Error::Unsupported));
        assert_eq!(with(&|b| set(b, field::LOG_BLOCK_SIZE, 7)), Err(Error::Invalid));
        // metadata_csum is ext4's (its checksum is not read).
        assert_eq!(with(&|b| set(b, field::FEATURE_RO_COMPAT, RO_COMPAT_METADATA_CSUM)), Ok(FsType::Ext4));
    }

    #[test]
    fn short_or_foreign_bytes() {
        assert_eq!(parse(&sb(EXT4)[..LEN - 1]).unwrap_err(), Error::Truncated);
        assert_eq!(parse(&[]).unwrap_err(), Error::Truncated);
        let mut b = sb(EXT2).to_vec();
        b[field::MAGIC.start] = 0x52;
        assert_eq!(parse(&b), Err(Error::BadMagic));
        assert_eq!(parse(&[0u8; LEN]), Err(Error::BadMagic));
    }
}
