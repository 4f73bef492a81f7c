//! The btrfs primary superblock: 4096 bytes at 64 KiB, little-endian. Its checksum (over
//! bytes 0x20..0x1000, stored at 0) is not verified: the kernel's mount does.

use super::bytes::{array, field, label, le64, Field};
use super::Error;

/// Where the primary superblock starts on the device; its `bytenr` says the same.
pub const OFFSET: u64 = 64 * 1024;
pub const LEN: usize = 4096;
pub const MAGIC: &[u8; 8] = b"_BHRfS_M";

mod field {
    use super::Field;
    pub const FSID: usize = 0x20;
    pub const BYTENR: usize = 0x30;
    pub const MAGIC: usize = 0x40;
    /// dev_item (at 0xc9) .uuid.
    pub const DEV_UUID: usize = 0x10b;
    pub const LABEL: Field = 0x12b..0x22b;
}

/// A view of the 4096-byte superblock. No getter panics.
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

    pub fn magic(&self) -> [u8; 8] {
        array(self.b(), field::MAGIC)
    }
    pub fn fsid(&self) -> [u8; 16] {
        array(self.b(), field::FSID)
    }
    pub fn bytenr(&self) -> u64 {
        le64(self.b(), field::BYTENR)
    }
    /// The device's own UUID (blkid's UUID_SUB).
    pub fn dev_uuid(&self) -> [u8; 16] {
        array(self.b(), field::DEV_UUID)
    }
    /// The raw 256-byte label.
    pub fn label_field(&self) -> &[u8] {
        field(self.b(), field::LABEL)
    }
}

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct BtrfsRepr<'a> {
    /// The filesystem's UUID (`fsid`), the one `UUID=` names.
    pub uuid: [u8; 16],
    pub dev_uuid: [u8; 16],
    pub label: &'a [u8],
}

impl<'a> BtrfsRepr<'a> {
    pub fn parse(sb: &Superblock<&'a [u8]>) -> Result<BtrfsRepr<'a>, Error> {
        sb.check_len()?;
        if &sb.magic() != MAGIC {
            return Err(Error::BadMagic);
        }
        if sb.bytenr() != OFFSET {
            return Err(Error::Invalid);
        }
        Ok(BtrfsRepr { uuid: sb.fsid(), dev_uuid: sb.dev_uuid(), label: label(field(sb.buffer, field::LABEL)) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BTRFS: &[u8] = include_bytes!("vectors/btrfs.sb");

    fn parse(b: &[u8]) -> Result<BtrfsRepr<'_>, Error> {
        BtrfsRepr::parse(&Superblock::new_checked(b)?)
    }

    #[test]
    fn real_superblock() {
        let r = parse(BTRFS).unwrap();
        assert_eq!(r.label, b"keel-btrfs");
        assert_eq!(r.uuid, *b"\x4e\x5f\x60\x71\x82\x93\x4a\x4b\xb5\xc6\xd7\xe8\xf9\x0a\x1b\x2c");
        // UUID_SUB="9dbe69cf-f508-4303-9fc2-e9c2501767e9" (random at mkfs).
        assert_eq!(r.dev_uuid[..4], [0x9d, 0xbe, 0x69, 0xcf]);
    }

    #[test]
    fn checks() {
        // The checksum is not verified: a changed label is read as it is.
        let mut b = BTRFS.to_vec();
        b[field::LABEL.start] = b'K';
        assert_eq!(parse(&b).map(|r| r.label), Ok(&b"Keel-btrfs"[..]));
        let mut b = BTRFS.to_vec();
        b[field::MAGIC] ^= 1;
        assert_eq!(parse(&b), Err(Error::BadMagic));
        let edit = |f: &dyn Fn(&mut [u8])| {
            let mut b = BTRFS.to_vec();
            f(&mut b);
            parse(&b).map(|r| r.label.len())
        };
        // A backup copy (at 64 MiB) read as the primary.
        assert_eq!(edit(&|b| b[field::BYTENR + 3] = 4), Err(Error::Invalid));
        // A label without a NUL: all 256 bytes.
        assert_eq!(edit(&|b| b[field::LABEL].fill(b'x')), Ok(256));
        assert_eq!(parse(&BTRFS[..LEN - 1]), Err(Error::Truncated));
    }
}
