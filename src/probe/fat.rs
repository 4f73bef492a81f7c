//! FAT12/16/32 (mount type "vfat"): the boot sector at byte 0, little-endian and unaligned.
//! `FatRepr::parse` checks it as blkid does. The label is the boot sector's: blkid prefers
//! the root directory's volume-label entry, which keel does not read (mkfs.vfat writes both
//! the same; Windows relabels only the directory entry, so there blkid and keel differ).

use super::bytes::{array, byte, field, le16, le32, Field};
use super::Error;

pub const LEN: usize = 512;
pub const NO_NAME: &[u8; 11] = b"NO NAME    ";

mod field {
    use super::Field;
    pub const SECTOR_SIZE: usize = 0x0b;
    pub const CLUSTER_SECTORS: usize = 0x0d;
    pub const RESERVED: usize = 0x0e;
    pub const FATS: usize = 0x10;
    pub const DIR_ENTRIES: usize = 0x11;
    pub const SECTORS16: usize = 0x13;
    pub const MEDIA: usize = 0x15;
    pub const FAT_LENGTH: usize = 0x16;
    pub const TOTAL_SECTORS: usize = 0x20;
    pub const FAT32_LENGTH: usize = 0x24;
    pub const SERIAL: usize = 0x27;
    pub const LABEL: usize = 0x2b;
    pub const MAGIC: Field = 0x36..0x3e;
    pub const FAT32_SERIAL: usize = 0x43;
    pub const FAT32_LABEL: usize = 0x47;
    pub const FAT32_MAGIC: Field = 0x52..0x5a;
    pub const SIGNATURE: Field = 0x1fe..0x200;
}

const FAT12_MAX: u64 = 0xff4;
const FAT16_MAX: u64 = 0xfff4;
const FAT32_MAX: u64 = 0x0fff_fff6;
const DIR_ENTRY: usize = 32;

/// A view of the boot sector. No getter panics.
#[derive(Copy, Clone, Debug)]
pub struct BootSector<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> BootSector<T> {
    pub const fn new_unchecked(buffer: T) -> Self {
        BootSector { buffer }
    }

    pub fn new_checked(buffer: T) -> Result<Self, Error> {
        let bs = Self::new_unchecked(buffer);
        bs.check_len()?;
        Ok(bs)
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

    pub fn sector_size(&self) -> u16 {
        le16(self.b(), field::SECTOR_SIZE)
    }
    pub fn cluster_sectors(&self) -> u8 {
        byte(self.b(), field::CLUSTER_SECTORS)
    }
    pub fn reserved(&self) -> u16 {
        le16(self.b(), field::RESERVED)
    }
    pub fn fats(&self) -> u8 {
        byte(self.b(), field::FATS)
    }
    pub fn dir_entries(&self) -> u16 {
        le16(self.b(), field::DIR_ENTRIES)
    }
    pub fn media(&self) -> u8 {
        byte(self.b(), field::MEDIA)
    }
    pub fn sectors(&self) -> u32 {
        match le16(self.b(), field::SECTORS16) {
            0 => le32(self.b(), field::TOTAL_SECTORS),
            n => u32::from(n),
        }
    }
    /// FAT12/16's sectors per FAT; 0 on FAT32.
    pub fn fat16_length(&self) -> u16 {
        le16(self.b(), field::FAT_LENGTH)
    }
    pub fn fat32_length(&self) -> u32 {
        le32(self.b(), field::FAT32_LENGTH)
    }
    pub fn signature_ok(&self) -> bool {
        field(self.b(), field::SIGNATURE) == [0x55, 0xaa]
    }

    /// One of blkid's magic strings (then the BPB checks alone decide), else only the
    /// 0x55AA signature, and not the pseudo boot sector OS/2 puts on JFS and HPFS.
    pub fn magic_ok(&self) -> bool {
        let at36 = field(self.b(), field::MAGIC);
        let at52 = field(self.b(), field::FAT32_MAGIC);
        let strong = [&b"MSDOS"[..], b"FAT16   ", b"FAT12   ", b"FAT     "].iter().any(|m| at36.starts_with(m))
            || [&b"MSWIN"[..], b"FAT32   "].iter().any(|m| at52.starts_with(m));
        strong || (self.signature_ok() && at36 != b"JFS     " && at36 != b"HPFS    ")
    }
}

/// A valid boot sector: the volume's identity.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct FatRepr {
    /// The volume serial number (little-endian on disk); 0 means none.
    pub serial: u32,
    /// The boot sector's label field, raw.
    pub label: [u8; 11],
    pub fat32: bool,
}

impl FatRepr {
    /// blkid's `fat_valid_superblock`: at least one FAT and one reserved sector, a FAT
    /// media byte, power-of-two cluster and sector sizes (512..4096), and a cluster count
    /// the FAT type can address.
    pub fn parse<T: AsRef<[u8]>>(bs: &BootSector<T>) -> Result<FatRepr, Error> {
        bs.check_len()?;
        if !bs.magic_ok() {
            return Err(Error::BadMagic);
        }
        let sector = u32::from(bs.sector_size());
        let cluster = u32::from(bs.cluster_sectors());
        let media = bs.media();
        if bs.fats() == 0
            || bs.reserved() == 0
            || !(media >= 0xf8 || media == 0xf0)
            || !cluster.is_power_of_two()
            || !sector.is_power_of_two()
            || !(512..=4096).contains(&sector)
        {
            return Err(Error::Invalid);
        }
        let fat32 = bs.fat16_length() == 0;
        let fat_length = if fat32 { bs.fat32_length() } else { u32::from(bs.fat16_length()) };
        if fat_length == 0 {
            return Err(Error::Invalid);
        }
        let fat_sectors = u64::from(fat_length) * u64::from(bs.fats());
        let dir_sectors = (u64::from(bs.dir_entries()) * DIR_ENTRY as u64).div_ceil(u64::from(sector));
        let overhead = u64::from(bs.reserved()) + fat_sectors + dir_sectors;
        let clusters = u64::from(bs.sectors()).checked_sub(overhead).ok_or(Error::Invalid)? / u64::from(cluster);
        let max = match () {
            _ if fat32 => FAT32_MAX,
            _ if clusters > FAT12_MAX => FAT16_MAX,
            _ => FAT12_MAX,
        };
        if clusters > max {
            return Err(Error::Invalid);
        }
        let (serial_at, label_at) = if fat32 { (field::FAT32_SERIAL, field::FAT32_LABEL) } else { (field::SERIAL, field::LABEL) };
        let b = bs.buffer.as_ref();
        Ok(FatRepr { serial: le32(b, serial_at), label: array(b, label_at), fat32 })
    }

    /// The label, raw (11 bytes: trim with `probe::label`); "NO NAME" is none, as blkid.
    pub fn label(&self) -> Option<&[u8; 11]> {
        Some(&self.label).filter(|l| *l != NO_NAME)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FAT12: &[u8] = include_bytes!("vectors/fat12.boot");
    const FAT16: &[u8] = include_bytes!("vectors/fat16.boot");
    const FAT32: &[u8] = include_bytes!("vectors/fat32.boot");
    const FAT32_4K: &[u8] = include_bytes!("vectors/fat32-4k.boot");

    fn parse(b: &[u8]) -> Result<FatRepr, Error> {
        FatRepr::parse(&BootSector::new_checked(b)?)
    }

    #[test]
    fn real_boot_sectors() {
        let r = parse(FAT12).unwrap();
        assert_eq!((r.serial, &r.label, r.fat32), (0x1a2b_3c4d, b"KEEL-FAT12 ", false));
        let r = parse(FAT16).unwrap();
        assert_eq!((r.serial, &r.label, r.fat32), (0x2b3c_4d5e, b"KEEL-FAT16 ", false));
        let r = parse(FAT32).unwrap();
        assert_eq!((r.serial, &r.label, r.fat32), (0x3c4d_5e6f, b"KEEL-ESP   ", true));
        let r = parse(FAT32_4K).unwrap();
        assert_eq!((r.serial, r.fat32), (0x4d5e_6f70, true));
    }

    #[test]
    fn bpb_checks() {
        let edit = |at: usize, v: &[u8]| {
            let mut b = FAT16[..LEN].to_vec();
            b[at..at + v.len()].copy_from_slice(v);
            parse(&b)
        };
        assert!(edit(0, &[0]).is_ok());
        assert_eq!(edit(field::FATS, &[0]), Err(Error::Invalid));
        assert_eq!(edit(field::RESERVED, &[0, 0]), Err(Error::Invalid));
        assert_eq!(edit(field::MEDIA, &[0x12]), Err(Error::Invalid));
        assert_eq!(edit(field::CLUSTER_SECTORS, &[3]), Err(Error::Invalid));
        assert_eq!(edit(field::CLUSTER_SECTORS, &[0]), Err(Error::Invalid));
        assert_eq!(edit(field::SECTOR_SIZE, &[0, 0x20]), Err(Error::Invalid));
        assert_eq!(edit(field::SECTOR_SIZE, &[0x2c, 0x01]), Err(Error::Invalid));
        // More FAT than disk, and more clusters than FAT16 can count.
        assert_eq!(edit(field::FAT_LENGTH, &[0xff, 0xff]), Err(Error::Invalid));
        assert_eq!(edit(field::SECTORS16, &[0, 0]), Err(Error::Invalid));
        let mut b = FAT16[..LEN].to_vec();
        b[field::SECTORS16..field::SECTORS16 + 2].fill(0);
        b[field::TOTAL_SECTORS..field::TOTAL_SECTORS + 4].copy_from_slice(&0x0100_0000u32.to_le_bytes());
        assert_eq!(parse(&b), Err(Error::Invalid));
        // FAT32 with no FAT length at all.
        let mut b = FAT32[..LEN].to_vec();
        b[field::FAT32_LENGTH..field::FAT32_LENGTH + 4].fill(0);
        assert_eq!(parse(&b), Err(Error::Invalid));
        assert_eq!(parse(&FAT16[..LEN - 1]), Err(Error::Truncated));
    }

    #[test]
    fn magic() {
        // Without its "FAT16   " string the sector still counts by its 0x55AA signature.
        let mut b = FAT16[..LEN].to_vec();
        b[field::MAGIC].copy_from_slice(b"        ");
        assert!(parse(&b).is_ok());
        b[field::MAGIC].copy_from_slice(b"HPFS    ");
        assert_eq!(parse(&b), Err(Error::BadMagic));
        b[field::MAGIC].copy_from_slice(b"        ");
        b[0x1fe] = 0;
        assert_eq!(parse(&b), Err(Error::BadMagic));
        b[field::MAGIC].copy_from_slice(b"MSDOS5.0");
        assert!(parse(&b).is_ok());
        assert_eq!(parse(&[0u8; LEN]), Err(Error::BadMagic));
    }

    #[test]
    fn label_choice() {
        let r = parse(FAT16).unwrap();
        assert_eq!(r.label(), Some(b"KEEL-FAT16 "));
        let r = FatRepr { label: *NO_NAME, ..r };
        assert_eq!(r.label(), None);
    }
}
