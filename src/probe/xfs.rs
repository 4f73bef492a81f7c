//! The XFS superblock: sector 0 of the device, big-endian. The geometry checks are blkid's
//! (a magic alone is not trusted); version 5 adds a crc32c of the whole sector.

use super::bytes::{array, be16, be32, be64, byte, field, label, le32, Field};
use super::{crc32c, Error};

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
    /// Little-endian, unlike every other field.
    pub const CRC: usize = 224;
}

const VERSION_5: u16 = 5;

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
    pub fn crc(&self) -> u32 {
        le32(self.b(), field::CRC)
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

    /// Version 5: the crc32c of the sector, its own field taken as zero. None when the
    /// buffer does not hold the whole sector.
    pub fn crc_ok(&self) -> Option<bool> {
        let sector = self.b().get(..usize::from(self.sector_size()))?;
        Some(!crc32c::update_with_hole(!0, sector, field::CRC) == self.crc())
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Superblock<T> {
    /// Recompute the version 5 CRC (for building test images).
    pub fn fill_crc(&mut self) {
        let len = usize::from(self.sector_size());
        let b = self.buffer.as_mut();
        let crc = !crc32c::update_with_hole(!0, b.get(..len).unwrap_or(&[]), field::CRC);
        if let Some(f) = b.get_mut(field::CRC..field::CRC + 4) {
            f.copy_from_slice(&crc.to_le_bytes());
        }
    }
}

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct XfsRepr<'a> {
    pub uuid: [u8; 16],
    pub label: &'a [u8],
}

impl<'a> XfsRepr<'a> {
    /// Magic, geometry, then (version 5) the CRC. A version 5 sector longer than the buffer
    /// is `Unsupported` (identify's window is 4 KiB; real sectors are 512 or 4096).
    pub fn parse(sb: &Superblock<&'a [u8]>) -> Result<XfsRepr<'a>, Error> {
        sb.check_len()?;
        if &sb.magic() != MAGIC {
            return Err(Error::BadMagic);
        }
        if !sb.geometry_ok() {
            return Err(Error::Invalid);
        }
        if sb.version() == VERSION_5 {
            match sb.crc_ok() {
                None => return Err(Error::Unsupported),
                Some(false) => return Err(Error::BadChecksum),
                Some(true) => {}
            }
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
        Superblock::new_unchecked(&mut b[..]).fill_crc();
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

    #[test]
    fn the_crc_covers_the_whole_sector() {
        for (v, at) in [(XFS, 0usize), (XFS, 108), (XFS, 511), (XFS, field::CRC), (XFS_4K, 4095), (XFS_4K, 2000)] {
            let mut b = v.to_vec();
            b[at] ^= 1;
            let want = if at < 4 { Error::BadMagic } else { Error::BadChecksum };
            assert_eq!(parse(&b), Err(want), "byte {at}");
        }
        // Past the 512-byte sector is not covered.
        let mut b = XFS.to_vec();
        b[512] ^= 1;
        assert!(parse(&b).is_ok());
        assert_eq!(parse(&XFS_4K[..4095]), Err(Error::Unsupported));
        assert_eq!(parse(&XFS[..511]), Err(Error::Truncated));
    }

    #[test]
    fn geometry_is_checked_before_the_crc() {
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
