//! The erofs superblock: 128 bytes at byte 1024, little-endian. Its checksum (`sb_chksum`:
//! a crc32c from byte 1024 to the end of the first block) is not verified: the kernel's
//! mount does.

use super::bytes::{array, byte, field, label, le32, Field};
use super::Error;

/// Where the superblock starts on the device.
pub const OFFSET: usize = 1024;
pub const LEN: usize = 128;
pub const MAGIC: u32 = 0xe0f5_e1e2;

mod field {
    use super::Field;
    pub const MAGIC: usize = 0;
    pub const BLKSZBITS: usize = 12;
    pub const UUID: usize = 48;
    pub const VOLUME_NAME: Field = 64..80;
}

/// A view of the superblock, from `OFFSET`. No getter panics.
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
    pub fn block_bits(&self) -> u8 {
        byte(self.b(), field::BLKSZBITS)
    }
    pub fn uuid(&self) -> [u8; 16] {
        array(self.b(), field::UUID)
    }
    pub fn volume_name(&self) -> &[u8] {
        field(self.b(), field::VOLUME_NAME)
    }
}

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct ErofsRepr<'a> {
    pub uuid: [u8; 16],
    pub label: &'a [u8],
}

impl<'a> ErofsRepr<'a> {
    /// Magic, then a block of 512..4096 bytes (blkid's limit; the kernel's 512 minimum).
    pub fn parse(sb: &Superblock<&'a [u8]>) -> Result<ErofsRepr<'a>, Error> {
        sb.check_len()?;
        if sb.magic() != MAGIC {
            return Err(Error::BadMagic);
        }
        if !(9..=12).contains(&sb.block_bits()) {
            return Err(Error::Invalid);
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
        let r = parse(&EROFS[OFFSET..]).unwrap();
        assert_eq!(r.uuid, *b"\x5f\x60\x71\x82\x93\xa4\x4b\x5c\x86\xd7\xe8\xf9\x0a\x1b\x2c\x3d");
        assert_eq!(r.label, b"");
        // Labelled by make-vectors.sh (its checksum recomputed there).
        let r = parse(&EROFS_LABEL[OFFSET..]).unwrap();
        assert_eq!(r.label, b"keel-erofs");
        assert_eq!(r.uuid[0], 0x5f);
    }

    #[test]
    fn checks() {
        // mkfs.erofs sets sb_chksum (feature_compat bit 0); it is not verified.
        assert_ne!(EROFS[OFFSET + 8] & 1, 0);
        let mut b = EROFS[OFFSET..].to_vec();
        b[48] ^= 4;
        b[4] ^= 1;
        assert_eq!(parse(&b).map(|r| r.uuid[0]), Ok(0x5f ^ 4));
        assert!(parse(&EROFS[OFFSET..OFFSET + LEN]).is_ok(), "the superblock alone is enough");
        assert_eq!(parse(&EROFS[OFFSET..OFFSET + LEN - 1]), Err(Error::Truncated));
        let mut b = EROFS[OFFSET..].to_vec();
        b[0] ^= 1;
        assert_eq!(parse(&b), Err(Error::BadMagic));
        for bits in [0, 8, 13, 255] {
            let mut b = EROFS[OFFSET..].to_vec();
            b[field::BLKSZBITS] = bits;
            assert_eq!(parse(&b), Err(Error::Invalid), "blkszbits {bits}");
        }
        for bits in [9, 10, 11, 12] {
            let mut b = EROFS[OFFSET..].to_vec();
            b[field::BLKSZBITS] = bits;
            assert!(parse(&b).is_ok(), "blkszbits {bits}");
        }
    }
}
