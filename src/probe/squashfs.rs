//! The squashfs superblock at byte 0, little-endian ("hsqs"). It has no UUID and no label:
//! blkid reports only the version.

use super::bytes::{array, le16};
use super::Error;

pub const MAGIC: &[u8; 4] = b"hsqs";
pub const LEN: usize = 96;

mod field {
    pub const MAGIC: usize = 0;
    pub const MAJOR: usize = 28;
    pub const MINOR: usize = 30;
}

/// A view of the superblock. No getter panics.
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

    pub fn magic(&self) -> [u8; 4] {
        array(self.buffer.as_ref(), field::MAGIC)
    }
    pub fn major(&self) -> u16 {
        le16(self.buffer.as_ref(), field::MAJOR)
    }
    pub fn minor(&self) -> u16 {
        le16(self.buffer.as_ref(), field::MINOR)
    }
}

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct SquashfsRepr {
    pub major: u16,
    pub minor: u16,
}

impl SquashfsRepr {
    /// Version 4 or later, as blkid's `squashfs` (3.x is its `squashfs3`, which Linux
    /// cannot mount: `Unsupported`).
    pub fn parse<T: AsRef<[u8]>>(sb: &Superblock<T>) -> Result<SquashfsRepr, Error> {
        sb.check_len()?;
        if &sb.magic() != MAGIC {
            return Err(Error::BadMagic);
        }
        if sb.major() < 4 {
            return Err(Error::Unsupported);
        }
        Ok(SquashfsRepr { major: sb.major(), minor: sb.minor() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SQUASHFS: &[u8] = include_bytes!("vectors/squashfs.sb");

    fn parse(b: &[u8]) -> Result<SquashfsRepr, Error> {
        SquashfsRepr::parse(&Superblock::new_checked(b)?)
    }

    #[test]
    fn real_superblock() {
        // blkid -p: VERSION="4.0".
        assert_eq!(parse(SQUASHFS), Ok(SquashfsRepr { major: 4, minor: 0 }));
        let mut b = SQUASHFS.to_vec();
        b[field::MAJOR] = 3;
        assert_eq!(parse(&b), Err(Error::Unsupported));
        b[0] = b'H';
        assert_eq!(parse(&b), Err(Error::BadMagic));
        assert_eq!(parse(&SQUASHFS[..LEN - 1]), Err(Error::Truncated));
    }
}
