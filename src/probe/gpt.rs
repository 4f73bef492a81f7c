//! GPT: the header at LBA 1 (CRC32 over its `header_size` bytes with the CRC field zeroed)
//! and its entry array (CRC32 in the header). Little-endian; GUIDs mixed-endian (`Id::from_guid`).

use super::bytes::{array, le32, le64, Field};
use super::Error;
use keel_proto::crc;

pub const SIGNATURE: &[u8; 8] = b"EFI PART";
/// The header's fields end here (UEFI's minimum header size).
pub const HEADER_LEN: usize = 92;
pub const MIN_ENTRY_LEN: usize = 128;
/// Entry sizes are 128·2ⁿ; keel reads entries a window at a time.
pub const MAX_ENTRY_LEN: u32 = 4096;
/// The largest entry array keel reads (sgdisk and fdisk write 16 KiB).
pub const MAX_ARRAY: u64 = 1 << 20;

mod field {
    use super::Field;
    pub const SIGNATURE: Field = 0..8;
    pub const HEADER_SIZE: usize = 12;
    pub const HEADER_CRC: usize = 16;
    pub const MY_LBA: usize = 24;
    pub const FIRST_USABLE: usize = 40;
    pub const LAST_USABLE: usize = 48;
    pub const DISK_GUID: usize = 56;
    pub const ENTRIES_LBA: usize = 72;
    pub const ENTRY_COUNT: usize = 80;
    pub const ENTRY_SIZE: usize = 84;
    pub const ENTRIES_CRC: usize = 88;
    // Within an entry.
    pub const TYPE_GUID: usize = 0;
    pub const UNIQUE_GUID: usize = 16;
    pub const FIRST_LBA: usize = 32;
    pub const LAST_LBA: usize = 40;
}

/// A view of the header (the start of LBA 1). No getter panics.
#[derive(Copy, Clone, Debug)]
pub struct Header<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Header<T> {
    pub const fn new_unchecked(buffer: T) -> Self {
        Header { buffer }
    }

    pub fn new_checked(buffer: T) -> Result<Self, Error> {
        let h = Self::new_unchecked(buffer);
        h.check_len()?;
        Ok(h)
    }

    pub fn check_len(&self) -> Result<(), Error> {
        if self.buffer.as_ref().len() < HEADER_LEN {
            return Err(Error::Truncated);
        }
        Ok(())
    }

    fn b(&self) -> &[u8] {
        self.buffer.as_ref()
    }

    pub fn signature(&self) -> [u8; 8] {
        array(self.b(), field::SIGNATURE.start)
    }
    pub fn header_size(&self) -> u32 {
        le32(self.b(), field::HEADER_SIZE)
    }
    pub fn header_crc(&self) -> u32 {
        le32(self.b(), field::HEADER_CRC)
    }
    pub fn my_lba(&self) -> u64 {
        le64(self.b(), field::MY_LBA)
    }
    pub fn first_usable(&self) -> u64 {
        le64(self.b(), field::FIRST_USABLE)
    }
    pub fn last_usable(&self) -> u64 {
        le64(self.b(), field::LAST_USABLE)
    }
    /// As stored (mixed-endian).
    pub fn disk_guid(&self) -> [u8; 16] {
        array(self.b(), field::DISK_GUID)
    }
    pub fn entries_lba(&self) -> u64 {
        le64(self.b(), field::ENTRIES_LBA)
    }
    pub fn entry_count(&self) -> u32 {
        le32(self.b(), field::ENTRY_COUNT)
    }
    pub fn entry_size(&self) -> u32 {
        le32(self.b(), field::ENTRY_SIZE)
    }
    pub fn entries_crc(&self) -> u32 {
        le32(self.b(), field::ENTRIES_CRC)
    }

    /// The CRC32 of the first `header_size` bytes, the CRC field taken as zero. None when
    /// the buffer is shorter than that.
    pub fn crc_ok(&self) -> Option<bool> {
        let covered = self.b().get(..usize::try_from(self.header_size()).ok()?)?;
        let (before, rest) = covered.split_at(field::HEADER_CRC.min(covered.len()));
        let c = crc::update(crc::update(!0, before), &[0; 4]);
        Some(!crc::update(c, rest.get(4..).unwrap_or(&[])) == self.header_crc())
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Header<T> {
    /// Recompute the header CRC (for building test images).
    pub fn fill_crc(&mut self) {
        let len = self.header_size() as usize;
        let b = self.buffer.as_mut();
        if let Some(f) = b.get_mut(field::HEADER_CRC..field::HEADER_CRC + 4) {
            f.fill(0);
        }
        let c = crc::crc32(b.get(..len).unwrap_or(&[]));
        if let Some(f) = b.get_mut(field::HEADER_CRC..field::HEADER_CRC + 4) {
            f.copy_from_slice(&c.to_le_bytes());
        }
    }
}

/// A valid primary header: where the entries are and what they must sum to.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct HeaderRepr {
    /// As stored (mixed-endian).
    pub disk_guid: [u8; 16],
    pub first_usable: u64,
    pub last_usable: u64,
    pub entries_lba: u64,
    pub entry_count: u32,
    pub entry_size: u32,
    pub entries_crc: u32,
}

impl HeaderRepr {
    /// The kernel's `is_gpt_valid` for the primary header (less the checks that need the
    /// disk's size), with entries of 128·2ⁿ bytes up to `MAX_ENTRY_LEN` (the kernel takes
    /// only 128) and at most `MAX_ARRAY` bytes of them.
    pub fn parse<T: AsRef<[u8]>>(h: &Header<T>, sector_size: u32) -> Result<HeaderRepr, Error> {
        h.check_len()?;
        if &h.signature() != SIGNATURE {
            return Err(Error::BadMagic);
        }
        let size = h.header_size();
        if size < HEADER_LEN as u32 || size > sector_size {
            return Err(Error::Invalid);
        }
        match h.crc_ok() {
            None => return Err(Error::Truncated),
            Some(false) => return Err(Error::BadChecksum),
            Some(true) => {}
        }
        let entry_size = h.entry_size();
        if h.my_lba() != 1
            || h.first_usable() > h.last_usable()
            || h.entries_lba() < 2
            || entry_size < MIN_ENTRY_LEN as u32
            || !entry_size.is_power_of_two()
        {
            return Err(Error::Invalid);
        }
        if entry_size > MAX_ENTRY_LEN || u64::from(h.entry_count()) * u64::from(entry_size) > MAX_ARRAY {
            return Err(Error::Unsupported);
        }
        Ok(HeaderRepr {
            disk_guid: h.disk_guid(),
            first_usable: h.first_usable(),
            last_usable: h.last_usable(),
            entries_lba: h.entries_lba(),
            entry_count: h.entry_count(),
            entry_size,
            entries_crc: h.entries_crc(),
        })
    }

    pub fn array_len(&self) -> u64 {
        u64::from(self.entry_count) * u64::from(self.entry_size)
    }
}

/// A view of one entry (its first 128 bytes are the standard ones). No getter panics.
#[derive(Copy, Clone, Debug)]
pub struct Entry<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Entry<T> {
    pub const fn new_unchecked(buffer: T) -> Self {
        Entry { buffer }
    }

    pub fn new_checked(buffer: T) -> Result<Self, Error> {
        let e = Self::new_unchecked(buffer);
        if e.buffer.as_ref().len() < MIN_ENTRY_LEN {
            return Err(Error::Truncated);
        }
        Ok(e)
    }

    pub fn type_guid(&self) -> [u8; 16] {
        array(self.buffer.as_ref(), field::TYPE_GUID)
    }
    pub fn unique_guid(&self) -> [u8; 16] {
        array(self.buffer.as_ref(), field::UNIQUE_GUID)
    }
    pub fn first_lba(&self) -> u64 {
        le64(self.buffer.as_ref(), field::FIRST_LBA)
    }
    pub fn last_lba(&self) -> u64 {
        le64(self.buffer.as_ref(), field::LAST_LBA)
    }
}

/// A used entry.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct EntryRepr {
    /// Both as stored (mixed-endian).
    pub type_guid: [u8; 16],
    pub unique_guid: [u8; 16],
    pub first_lba: u64,
    pub last_lba: u64,
}

impl EntryRepr {
    /// None for what the kernel skips: an unused entry (zero type) or one that ends before
    /// it starts.
    pub fn parse<T: AsRef<[u8]>>(e: &Entry<T>) -> Option<EntryRepr> {
        let r = EntryRepr { type_guid: e.type_guid(), unique_guid: e.unique_guid(), first_lba: e.first_lba(), last_lba: e.last_lba() };
        (r.type_guid != [0; 16] && r.first_lba <= r.last_lba).then_some(r)
    }

    pub fn sectors(&self) -> u64 {
        (self.last_lba - self.first_lba).saturating_add(1)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub const GPT: &[u8] = include_bytes!("vectors/gpt.lba0-33");
    pub const GPT_4K: &[u8] = include_bytes!("vectors/gpt-4k.lba0-5");

    fn parse(b: &[u8], sector: u32) -> Result<HeaderRepr, Error> {
        HeaderRepr::parse(&Header::new_checked(b)?, sector)
    }

    /// Edit the 512-byte vector's header, then fix its CRC.
    pub fn edited(f: impl Fn(&mut [u8])) -> Vec<u8> {
        let mut disk = GPT.to_vec();
        f(&mut disk[512..1024]);
        Header::new_unchecked(&mut disk[512..1024]).fill_crc();
        disk
    }

    #[test]
    fn real_headers() {
        let h = parse(&GPT[512..1024], 512).unwrap();
        assert_eq!((h.entries_lba, h.entry_count, h.entry_size), (2, 128, 128));
        assert_eq!((h.first_usable, h.last_usable), (34, 131_038));
        assert_eq!(h.disk_guid[..4], [0x9d, 0x8c, 0x7b, 0x6a]);
        let h = parse(&GPT_4K[4096..8192], 4096).unwrap();
        assert_eq!((h.entries_lba, h.entry_count, h.entry_size), (2, 128, 128));
        assert_eq!(h.disk_guid[..4], [0x0e, 0x9d, 0x8c, 0x7b]);
    }

    #[test]
    fn header_crc_and_limits() {
        for at in [0x08, 0x38, 0x50, field::HEADER_CRC, 91] {
            let mut b = GPT[512..1024].to_vec();
            b[at] ^= 2;
            assert_eq!(parse(&b, 512), Err(Error::BadChecksum), "byte {at:#x}");
        }
        // Bytes past header_size are not covered.
        let mut b = GPT[512..1024].to_vec();
        b[92] ^= 2;
        assert!(parse(&b, 512).is_ok());
        let mut b = GPT[512..1024].to_vec();
        b[0] = b'e';
        assert_eq!(parse(&b, 512), Err(Error::BadMagic));
        let header = |f: &dyn Fn(&mut [u8])| parse(&edited(f)[512..1024], 512);
        let put32 = |b: &mut [u8], at: usize, v: u32| b[at..at + 4].copy_from_slice(&v.to_le_bytes());
        let put64 = |b: &mut [u8], at: usize, v: u64| b[at..at + 8].copy_from_slice(&v.to_le_bytes());
        assert!(header(&|_| {}).is_ok());
        assert_eq!(header(&|b| put32(b, field::HEADER_SIZE, 91)), Err(Error::Invalid));
        assert_eq!(header(&|b| put32(b, field::HEADER_SIZE, 513)), Err(Error::Invalid));
        assert_eq!(header(&|b| put32(b, field::HEADER_SIZE, u32::MAX)), Err(Error::Invalid));
        assert_eq!(header(&|b| put64(b, field::MY_LBA, 2)), Err(Error::Invalid));
        assert_eq!(header(&|b| put64(b, field::ENTRIES_LBA, 1)), Err(Error::Invalid));
        assert_eq!(header(&|b| put64(b, field::FIRST_USABLE, 200_000)), Err(Error::Invalid));
        for size in [0, 64, 129, 384] {
            assert_eq!(header(&|b| put32(b, field::ENTRY_SIZE, size)), Err(Error::Invalid), "entry size {size}");
        }
        assert_eq!(header(&|b| put32(b, field::ENTRY_SIZE, 8192)), Err(Error::Unsupported));
        assert_eq!(header(&|b| put32(b, field::ENTRY_COUNT, u32::MAX)), Err(Error::Unsupported));
        assert_eq!(header(&|b| put32(b, field::ENTRY_COUNT, 8193)), Err(Error::Unsupported));
        assert!(header(&|b| put32(b, field::ENTRY_COUNT, 8192)).is_ok());
        // header_size may be up to the sector size, but the buffer must hold it.
        assert_eq!(parse(&edited(|b| put32(b, field::HEADER_SIZE, 512))[512..1000], 512), Err(Error::Truncated));
        assert_eq!(parse(&GPT[512..512 + 91], 512), Err(Error::Truncated));
    }

    #[test]
    fn entries() {
        let e = |i: usize| EntryRepr::parse(&Entry::new_checked(&GPT[1024 + i * 128..][..128]).unwrap());
        let first = e(0).unwrap();
        assert_eq!((first.first_lba, first.sectors()), (2048, 16384));
        assert_eq!(first.type_guid[..4], [0x28, 0x73, 0x2a, 0xc1]);
        assert_eq!(e(2), None, "sgdisk put partition 4 in entry 3; entry 2 is unused");
        assert_eq!(e(3).map(|r| r.sectors()), Some(8192));
        let mut b = GPT[1024..1152].to_vec();
        b[field::LAST_LBA..field::LAST_LBA + 8].copy_from_slice(&2047u64.to_le_bytes());
        assert_eq!(EntryRepr::parse(&Entry::new_unchecked(&b[..])), None);
        b[field::LAST_LBA..field::LAST_LBA + 8].copy_from_slice(&u64::MAX.to_le_bytes());
        b[field::FIRST_LBA..field::FIRST_LBA + 8].fill(0);
        assert_eq!(EntryRepr::parse(&Entry::new_unchecked(&b[..])).map(|r| r.sectors()), Some(u64::MAX));
        assert!(Entry::new_checked(&b[..127]).is_err());
    }
}
