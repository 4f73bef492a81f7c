//! The erofs superblock: 128 bytes at byte 1024, little-endian. With `sb_chksum` its crc32c
//! covers byte 1024 to the end of the first block, the checksum field taken as zero.

use super::bytes::{array, byte, field, label, le32, Field};
use super::{crc32c, Error};

/// Where the superblock starts on the device.
pub const OFFSET: usize = 1024;
pub const LEN: usize = 128;
pub const MAGIC: u32 = 0xe0f5_e1e2;
pub const FEATURE_COMPAT_SB_CHKSUM: u32 = 1;

mod field {
    use super::Field;
    pub const MAGIC: usize = 0;
    pub const CHECKSUM: usize = 4;
    pub const FEATURE_COMPAT: usize = 8;
    pub const BLKSZBITS: usize = 12;
    pub const UUID: usize = 48;
    pub const VOLUME_NAME: Field = 64..80;
}

/// A view of the bytes from `OFFSET` (the superblock and, for the checksum, the rest of the
/// first block). No getter panics.
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

    pub fn magic(&self) -> u32 {
        le32(self.b(), field::MAGIC)
    }
    pub fn checksum(&self) -> u32 {
        le32(self.b(), field::CHECKSUM)
    }
    pub fn feature_compat(&self) -> u32 {
        le32(self.b(), field::FEATURE_COMPAT)
    }
    pub fn block_bits(&self) -> u8 {
        byte(self.b(), field::BLKSZBITS)
    }
    pub fn uuid(&self) -> [u8; 16] {
        array(self.b(), field::UUID)
    }
    pub fn volume_name(&self) -> &[u8] {
        field(self.b(), field::VOLUME_NAME)
    }

    /// Bytes the checksum covers: block size less the 1024 before the superblock. None when
    /// that is shorter than the superblock (blkid then finds nothing either).
    pub fn checksum_len(&self) -> Option<usize> {
        let block = 1usize.checked_shl(u32::from(self.block_bits()))?;
        block.checked_sub(OFFSET).filter(|&n| n >= LEN)
    }

    /// None when the buffer is shorter than `checksum_len`.
    pub fn checksum_ok(&self) -> Option<bool> {
        let covered = self.b().get(..self.checksum_len()?)?;
        Some(crc32c::update_with_hole(!0, covered, field::CHECKSUM) == self.checksum())
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Superblock<T> {
    /// Recompute the checksum (for building test images).
    pub fn fill_checksum(&mut self) {
        let len = self.checksum_len().unwrap_or(0);
        let b = self.buffer.as_mut();
        let crc = crc32c::update_with_hole(!0, b.get(..len).unwrap_or(&[]), field::CHECKSUM);
        if let Some(f) = b.get_mut(field::CHECKSUM..field::CHECKSUM + 4) {
            f.copy_from_slice(&crc.to_le_bytes());
        }
    }
}

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct ErofsRepr<'a> {
    pub uuid: [u8; 16],
    pub label: &'a [u8],
}

impl<'a> ErofsRepr<'a> {
    /// Magic, a block of 512..4096 bytes (blkid's limit; the kernel's 512 minimum), then
    /// the checksum when the feature says there is one.
    pub fn parse(sb: &Superblock<&'a [u8]>) -> Result<ErofsRepr<'a>, Error> {
        sb.check_len()?;
        if sb.magic() != MAGIC {
            return Err(Error::BadMagic);
        }
        if !(9..=12).contains(&sb.block_bits()) {
            return Err(Error::Invalid);
        }
        if sb.feature_compat() & FEATURE_COMPAT_SB_CHKSUM != 0 {
            if sb.checksum_len().is_none() {
                return Err(Error::Invalid);
            }
            match sb.checksum_ok() {
                None => return Err(Error::Truncated),
                Some(false) => return Err(Error::BadChecksum),
                Some(true) => {}
            }
        }
        Ok(ErofsRepr { uuid: sb.uuid(), label: label(field(sb.buffer, field::VOLUME_NAME)) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EROFS: &[u8] = include_bytes!("vectors/erofs.sb");
    const EROFS_LABEL: &[u8] = include_bytes!("vectors/erofs-label.sb");

    fn parse(b: &[u8]) -> Result<ErofsRepr<'_>, Error> {
        ErofsRepr::parse(&Superblock::new_checked(b)?)
    }

    #[test]
    fn real_superblocks() {
        let s = Superblock::new_checked(&EROFS[OFFSET..]).unwrap();
        assert_ne!(s.feature_compat() & FEATURE_COMPAT_SB_CHKSUM, 0, "mkfs.erofs sets sb_chksum");
        let r = parse(&EROFS[OFFSET..]).unwrap();
        assert_eq!(r.uuid, *b"\x5f\x60\x71\x82\x93\xa4\x4b\x5c\x86\xd7\xe8\xf9\x0a\x1b\x2c\x3d");
        assert_eq!(r.label, b"");
        // Checksum recomputed by make-vectors.sh's own crc32c (Python).
        let r = parse(&EROFS_LABEL[OFFSET..]).unwrap();
        assert_eq!(r.label, b"keel-erofs");
        assert_eq!(r.uuid[0], 0x5f);
    }

    #[test]
    fn checks() {
        for at in [4, 48, 79, 3071] {
            let mut b = EROFS[OFFSET..].to_vec();
            b[at] ^= 4;
            assert_eq!(parse(&b), Err(Error::BadChecksum), "byte {at}");
        }
        assert_eq!(parse(&EROFS[OFFSET..4095]), Err(Error::Truncated));
        assert_eq!(parse(&EROFS[OFFSET..OFFSET + LEN - 1]), Err(Error::Truncated));
        let mut b = EROFS[OFFSET..].to_vec();
        b[0] ^= 1;
        assert_eq!(parse(&b), Err(Error::BadMagic));
        for bits in [0, 8, 13, 255] {
            let mut b = EROFS[OFFSET..].to_vec();
            b[field::BLKSZBITS] = bits;
            assert_eq!(parse(&b), Err(Error::Invalid), "blkszbits {bits}");
        }
        // A 1 KiB block leaves nothing to checksum after the 1024-byte gap.
        let mut b = EROFS[OFFSET..].to_vec();
        b[field::BLKSZBITS] = 10;
        assert_eq!(parse(&b), Err(Error::Invalid));
        // Without the feature, no checksum is needed.
        b[field::FEATURE_COMPAT] &= !1;
        assert_eq!(parse(&b).map(|r| r.uuid[0]), Ok(0x5f));
        // A 2 KiB block: the checksum covers 1024 bytes only.
        let mut b = EROFS[OFFSET..].to_vec();
        b[field::BLKSZBITS] = 11;
        Superblock::new_unchecked(&mut b[..]).fill_checksum();
        b[1500] ^= 1;
        assert!(parse(&b).is_ok());
        b[1000] ^= 1;
        assert_eq!(parse(&b), Err(Error::BadChecksum));
    }
}
