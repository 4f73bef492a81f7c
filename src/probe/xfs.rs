//! The XFS superblock: sector 0 of the device, big-endian. The geometry checks are blkid's
//! (a magic alone is not trusted); version 5's crc32c of the sector is not verified (the
//! kernel's mount does).

use super::bytes::{array, be16, be32, be64, byte, field, label, Field};
use super::Error;

pub const MAGIC: &[u8; 4] = b"XFSB";
/// The fields keel reads end before this; the smallest sector is 512.
pub const MIN_LEN: usize = 512;

mod field {
    use super::Field;
    pub const MAGIC: Field = 0..4;
    pub const BLOCKSIZE: usize = 4;
    pub const DBLOCKS: usize = 8;
    pub const UUID: usize = 32;
    pub const REXTSIZE: usize = 80;
    pub const AGBLOCKS: usize = 84;
    pub const AGCOUNT: usize = 88;
    pub const VERSIONNUM: usize = 100;
    pub const SECTSIZE: usize = 102;
    pub const INODESIZE: usize = 104;
    pub const FNAME: Field = 108..120;
    pub const BLOCKLOG: usize = 120;
    pub const SECTLOG: usize = 121;
    pub const INODELOG: usize = 122;
    pub const INOPBLOG: usize = 123;
    pub const IMAX_PCT: usize = 127;
}

/// A view of the superblock sector. No getter panics.
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
        if self.buffer.as_ref().len() < MIN_LEN {
            return Err(Error::Truncated);
        }
        Ok(())
    }

    fn b(&self) -> &[u8] {
        self.buffer.as_ref()
    }

    pub fn magic(&self) -> [u8; 4] {
        array(self.b(), field::MAGIC.start)
    }
    pub fn block_size(&self) -> u32 {
        be32(self.b(), field::BLOCKSIZE)
    }
    pub fn data_blocks(&self) -> u64 {
        be64(self.b(), field::DBLOCKS)
    }
    pub fn uuid(&self) -> [u8; 16] {
        array(self.b(), field::UUID)
    }
    pub fn rt_extent_size(&self) -> u32 {
        be32(self.b(), field::REXTSIZE)
    }
    pub fn ag_blocks(&self) -> u32 {
        be32(self.b(), field::AGBLOCKS)
    }
    pub fn ag_count(&self) -> u32 {
        be32(self.b(), field::AGCOUNT)
    }
    pub fn version(&self) -> u16 {
        be16(self.b(), field::VERSIONNUM) & 0xf
    }
    pub fn sector_size(&self) -> u16 {
        be16(self.b(), field::SECTSIZE)
    }
    pub fn inode_size(&self) -> u16 {
        be16(self.b(), field::INODESIZE)
    }
    /// The raw 12-byte `sb_fname`.
    pub fn name(&self) -> &[u8] {
        field(self.b(), field::FNAME)
    }
    /// blkid's `xfs_verify_sb`: sizes and their logs agree, the data blocks fit the AGs.
    pub fn geometry_ok(&self) -> bool {
        let b = self.b();
        let (sect, sectlog) = (u32::from(self.sector_size()), byte(b, field::SECTLOG));
        let (block, blocklog) = (self.block_size(), byte(b, field::BLOCKLOG));
        let (inode, inodelog) = (u32::from(self.inode_size()), byte(b, field::INODELOG));
        let pow = |size: u32, log: u8, lo: u8, hi: u8| (lo..=hi).contains(&log) && size == 1 << log;
        let rt = u64::from(self.rt_extent_size()) * u64::from(block);
        let (ags, agblocks, dblocks) = (u64::from(self.ag_count()), u64::from(self.ag_blocks()), self.data_blocks());
        ags > 0
            && pow(sect, sectlog, 9, 15)
            && pow(block, blocklog, 9, 16)
            && pow(inode, inodelog, 8, 11)
            && i32::from(blocklog) - i32::from(inodelog) == i32::from(byte(b, field::INOPBLOG))
            && (4096..=1 << 30).contains(&rt)
            && byte(b, field::IMAX_PCT) <= 100
            && dblocks != 0
            && dblocks <= ags * agblocks
            && dblocks >= (ags - 1) * agblocks + 64
    }
}

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct XfsRepr<'a> {
    pub uuid: [u8; 16],
    pub label: &'a [u8],
}

impl<'a> XfsRepr<'a> {
    /// Magic, then geometry.
    pub fn parse(sb: &Superblock<&'a [u8]>) -> Result<XfsRepr<'a>, Error> {
        sb.check_len()?;
        if &sb.magic() != MAGIC {
            return Err(Error::BadMagic);
        }
        if !sb.geometry_ok() {
            return Err(Error::Invalid);
        }
        Ok(XfsRepr { uuid: sb.uuid(), label: label(field(sb.buffer, field::FNAME)) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const XFS: &[u8] = include_bytes!("vectors/xfs.sb");
    const XFS_4K: &[u8] = include_bytes!("vectors/xfs4k.sb");

    fn parse(b: &[u8]) -> Result<XfsRepr<'_>, Error> {
        XfsRepr::parse(&Superblock::new_checked(b)?)
    }

    fn edit(f: impl Fn(&mut [u8])) -> Vec<u8> {
        let mut b = XFS.to_vec();
        f(&mut b);
        b
    }

    #[test]
    fn real_superblocks() {
        let r = parse(XFS).unwrap();
        assert_eq!(r.label, b"keel-xfs");
        assert_eq!(r.uuid, *b"\x3d\x4e\x5f\x60\x71\x82\x49\x3a\xa4\xb5\xc6\xd7\xe8\xf9\x0a\x1b");
        let s = Superblock::new_checked(XFS_4K).unwrap();
        assert_eq!((s.version(), s.sector_size()), (5, 4096));
        let r = parse(XFS_4K).unwrap();
        assert_eq!(r.label, b"xfs-4k-sect");
        assert_eq!(r.uuid[15], 0x1c);
    }

    /// The version 5 CRC is not verified: a changed label is read as it is.
    #[test]
    fn magic_and_length_but_no_crc() {
        let mut b = XFS.to_vec();
        b[0] ^= 1;
        assert_eq!(parse(&b), Err(Error::BadMagic));
        let mut b = XFS_4K.to_vec();
        b[field::FNAME.start] = b'X';
        assert_eq!(parse(&b).map(|r| r.label), Ok(&b"Xfs-4k-sect"[..]));
        assert!(parse(&XFS_4K[..512]).is_ok(), "the fields are in the first 512 bytes");
        assert_eq!(parse(&XFS[..511]), Err(Error::Truncated));
    }

    #[test]
    fn geometry_is_checked() {
        assert!(parse(&edit(|_| {})).is_ok());
        let set16 = |b: &mut [u8], at: usize, v: u16| b[at..at + 2].copy_from_slice(&v.to_be_bytes());
        let set32 = |b: &mut [u8], at: usize, v: u32| b[at..at + 4].copy_from_slice(&v.to_be_bytes());
        type Edit<'a> = &'a dyn Fn(&mut [u8]);
        let bad: [Edit; 8] = [
            &|b| set32(b, field::AGCOUNT, 0),
            &|b| set16(b, field::SECTSIZE, 1024),
            &|b| set16(b, field::SECTSIZE, 0xffff),
            &|b| set32(b, field::BLOCKSIZE, 3000),
            &|b| b[field::INODELOG] = 12,
            &|b| b[field::IMAX_PCT] = 101,
            &|b| b[field::DBLOCKS..field::DBLOCKS + 8].fill(0xff),
            &|b| set32(b, field::REXTSIZE, 0),
        ];
        for (i, f) in bad.iter().enumerate() {
            assert_eq!(parse(&edit(f)), Err(Error::Invalid), "case {i}");
        }
    }
}
