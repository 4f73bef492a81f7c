//! `read_partitions`: a disk's GPT or MBR through the caller's read callback and one
//! `WINDOW` buffer, each partition handed to a callback (nothing is kept). Reads: LBA 0, and
//! for GPT LBA 1 and the entry array twice (its CRC first, then the entries); for MBR each
//! EBR of an extended partition.

use super::fat::{BootSector, FatRepr};
use super::gpt::{self, EntryRepr, HeaderRepr};
use super::mbr::{self, Mbr, MbrEntry, MbrRepr};
use super::{read_full, Error, Id, ProbeError, WINDOW};
use keel_proto::crc;

/// One partition, numbered as the kernel numbers it (sda1 is 1).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Partition {
    pub number: u32,
    /// The PARTUUID.
    pub id: Id,
    /// In logical sectors of the table's `sector_size`.
    pub start: u64,
    pub sectors: u64,
    pub kind: PartKind,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum PartKind {
    /// The MBR type byte (0x05/0x0f/0x85: the extended container).
    Mbr(u8),
    /// The GPT partition type GUID, in printing order.
    Gpt([u8; 16]),
}

/// Which table a disk has.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Table {
    /// The disk GUID (blkid's PTUUID).
    Gpt(Id),
    /// The disk signature (blkid's PTUUID, `%08x`).
    Mbr(u32),
}

/// The most links in an EBR chain without a data partition (the kernel's).
const MAX_EMPTY_LINKS: u32 = 100;
/// The kernel's partition numbers stop below DISK_MAX_PARTS (256).
const MAX_NUMBER: u32 = 255;

/// Hand each partition of the disk to `each` (which returns false to stop), for a device
/// whose logical sector is `sector_size` bytes (a power of two, 512..64 KiB). Ok(None): no
/// table (no 0x55AA, boot indicators of a boot sector, a FAT boot sector). Err(Format) for
/// a table that is there but bad: a GPT (an 0xEE entry) with a bad protective MBR, header or
/// entry array is never read as an MBR, as in the kernel.
pub fn read_partitions<E, R, F>(
    read: &mut R,
    buf: &mut [u8; WINDOW],
    sector_size: u32,
    each: &mut F,
) -> Result<Option<Table>, ProbeError<E>>
where
    R: FnMut(u64, &mut [u8]) -> Result<usize, E>,
    F: FnMut(&Partition) -> bool,
{
    if !sector_size.is_power_of_two() || !(512..=65536).contains(&sector_size) {
        return Err(Error::Invalid.into());
    }
    let sector0 = buf.get_mut(..mbr::LEN).unwrap_or(&mut []);
    let n = read_full(read, 0, sector0).map_err(ProbeError::Io)?;
    let sector0 = buf.get(..n).unwrap_or(&[]);
    let Ok(mbr) = Mbr::new_checked(sector0).and_then(|m| MbrRepr::parse(&m)) else { return Ok(None) };
    if mbr.has_gpt_entry() {
        if !mbr.protective() {
            return Err(Error::Invalid.into());
        }
        return gpt_partitions(read, buf, sector_size, each).map(Some);
    }
    if BootSector::new_checked(sector0).and_then(|bs| FatRepr::parse(&bs)).is_ok() {
        return Ok(None);
    }
    mbr_partitions(read, buf, sector_size, &mbr, each).map_err(ProbeError::Io)?;
    Ok(Some(Table::Mbr(mbr.disk)))
}

/// The partition `spec_id` names (a PARTUUID's text, any case; the first with it), or with
/// `nr_offset` the one that many numbers away on the same disk (the kernel's `/PARTNROFF=`;
/// an offset to number 0, which the kernel takes as the whole disk, finds nothing).
pub fn find_partition<E, R>(
    read: &mut R,
    buf: &mut [u8; WINDOW],
    sector_size: u32,
    spec_id: &[u8],
    nr_offset: i32,
) -> Result<Option<Partition>, ProbeError<E>>
where
    R: FnMut(u64, &mut [u8]) -> Result<usize, E>,
{
    // Two passes with one closure type (one instance of the table code): the partition
    // named, then the one `nr_offset` from it.
    let (mut want, mut found) = (None::<u32>, None);
    for _ in 0..2 {
        found = None;
        let mut pick = |p: &Partition| {
            let hit = want.map_or_else(|| p.id.matches(spec_id), |n| p.number == n);
            found = hit.then_some(*p);
            !hit
        };
        read_partitions(read, buf, sector_size, &mut pick)?;
        match found {
            Some(p) if want.is_none() && nr_offset != 0 => want = Some(p.number.checked_add_signed(nr_offset).unwrap_or(0)),
            _ => break,
        }
    }
    Ok(found)
}

fn gpt_partitions<E, R, F>(read: &mut R, buf: &mut [u8; WINDOW], sector_size: u32, each: &mut F) -> Result<Table, ProbeError<E>>
where
    R: FnMut(u64, &mut [u8]) -> Result<usize, E>,
    F: FnMut(&Partition) -> bool,
{
    let ss = u64::from(sector_size);
    let n = read_full(read, ss, buf).map_err(ProbeError::Io)?;
    let header = HeaderRepr::parse(&gpt::Header::new_checked(buf.get(..n).unwrap_or(&[]))?, sector_size)?;
    let base = header.entries_lba.checked_mul(ss).ok_or(Error::Invalid)?;
    let total = header.array_len();
    base.checked_add(total).ok_or(Error::Invalid)?;

    // The CRC of the whole array first: nothing is reported from a bad one.
    let mut sum = !0u32;
    let mut done = 0u64;
    while done < total {
        let len = (total - done).min(WINDOW as u64) as usize;
        let chunk = buf.get_mut(..len).unwrap_or(&mut []);
        if read_full(read, base + done, chunk).map_err(ProbeError::Io)? < len {
            return Err(Error::Truncated.into());
        }
        sum = crc::update(sum, chunk);
        done += len as u64;
    }
    if !sum != header.entries_crc {
        return Err(Error::BadChecksum.into());
    }

    // Entry i is partition i + 1; a window holds whole entries (entry_size <= WINDOW).
    // Never 0 (parse checks 128 or more); max(1) lets chunks_exact's panic fold away.
    let size = (header.entry_size as usize).max(1);
    let per_window = (WINDOW / size).max(1) as u32;
    let mut index = 0u32;
    'windows: while index < header.entry_count {
        let count = per_window.min(header.entry_count - index);
        let len = count as usize * size;
        let chunk = buf.get_mut(..len).unwrap_or(&mut []);
        let at = base + u64::from(index) * u64::from(header.entry_size);
        if read_full(read, at, chunk).map_err(ProbeError::Io)? < len {
            return Err(Error::Truncated.into());
        }
        for raw in chunk.chunks_exact(size) {
            index += 1;
            let Some(e) = gpt::Entry::new_checked(raw).ok().and_then(|e| EntryRepr::parse(&e)) else { continue };
            let Id::Uuid(type_guid) = Id::from_guid(e.type_guid) else { continue };
            let p = Partition {
                number: index,
                id: Id::from_guid(e.unique_guid),
                start: e.first_lba,
                sectors: e.sectors(),
                kind: PartKind::Gpt(type_guid),
            };
            if !each(&p) {
                break 'windows;
            }
        }
    }
    Ok(Table::Gpt(Id::from_guid(header.disk_guid)))
}

/// The four primary entries (numbers 1-4; empty ones skipped), each extended one followed
/// by its logical partitions (5 on), in the kernel's order.
fn mbr_partitions<E, R, F>(read: &mut R, buf: &mut [u8; WINDOW], sector_size: u32, mbr: &MbrRepr, each: &mut F) -> Result<(), E>
where
    R: FnMut(u64, &mut [u8]) -> Result<usize, E>,
    F: FnMut(&Partition) -> bool,
{
    let mut next = 5;
    for (slot, e) in (1u32..).zip(mbr.entries.iter()) {
        if e.sectors == 0 {
            continue;
        }
        if !each(&primary(mbr.disk, slot, e)) {
            return Ok(());
        }
        if e.is_extended() && !logical_partitions(read, buf, sector_size, mbr.disk, e, &mut next, each)? {
            return Ok(());
        }
    }
    Ok(())
}

fn primary(disk: u32, number: u32, e: &MbrEntry) -> Partition {
    let part = number as u8;
    Partition { number, id: Id::MbrPart { disk, part }, start: e.start.into(), sectors: e.sectors.into(), kind: PartKind::Mbr(e.system) }
}

/// The kernel's `parse_extended`: in each EBR the data entries are logical partitions
/// (the third and fourth only if they fit inside this EBR's span and the extended
/// partition), then the first extended entry links to the next EBR. Returns false when
/// `each` asked to stop.
fn logical_partitions<E, R, F>(
    read: &mut R,
    buf: &mut [u8; WINDOW],
    sector_size: u32,
    disk: u32,
    extended: &MbrEntry,
    next: &mut u32,
    each: &mut F,
) -> Result<bool, E>
where
    R: FnMut(u64, &mut [u8]) -> Result<usize, E>,
    F: FnMut(&Partition) -> bool,
{
    let (first, first_size) = (u64::from(extended.start), u64::from(extended.sectors));
    let (mut this, mut this_size) = (first, first_size);
    let mut empty_links = 0;
    loop {
        empty_links += 1;
        if empty_links > MAX_EMPTY_LINKS || *next > MAX_NUMBER {
            return Ok(true);
        }
        let Some(at) = this.checked_mul(u64::from(sector_size)) else { return Ok(true) };
        let sector = buf.get_mut(..mbr::LEN).unwrap_or(&mut []);
        let n = read_full(read, at, sector)?;
        let Ok(ebr) = Mbr::new_checked(buf.get(..n).unwrap_or(&[])) else { return Ok(true) };
        if !ebr.signature_ok() {
            return Ok(true);
        }
        let entries = ebr.entries();
        for (i, e) in entries.iter().enumerate() {
            if e.sectors == 0 || e.is_extended() {
                continue;
            }
            let (offset, size) = (u64::from(e.start), u64::from(e.sectors));
            let start = this + offset;
            if i >= 2 && (offset + size > this_size || start < first || start + size > first + first_size) {
                continue;
            }
            let p = Partition { start, ..primary(disk, *next, e) };
            empty_links = 0;
            *next += 1;
            if !each(&p) {
                return Ok(false);
            }
            if *next > MAX_NUMBER {
                return Ok(true);
            }
        }
        let Some(link) = entries.iter().find(|e| e.sectors != 0 && e.is_extended()) else { return Ok(true) };
        this = first + u64::from(link.start);
        this_size = u64::from(link.sectors);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::gpt::tests::{edited, GPT, GPT_4K};
    use crate::probe::testdisk::Disk;

    const MIB: u64 = 1 << 20;

    fn list(disk: &Disk, sector_size: u32) -> Result<Option<(Table, Vec<Partition>)>, ProbeError<()>> {
        let mut buf = [0u8; WINDOW];
        let mut found = Vec::new();
        let table = read_partitions(&mut |at, b: &mut [u8]| disk.read(at, b), &mut buf, sector_size, &mut |p| {
            found.push(*p);
            true
        })?;
        Ok(table.map(|t| (t, found)))
    }

    fn text(id: Id) -> String {
        String::from_utf8(id.text().as_bytes().to_vec()).unwrap()
    }

    /// (number, PARTUUID, start, sectors, type) as text, the columns partx printed.
    fn rows(parts: &[Partition]) -> Vec<(u32, String, u64, u64, String)> {
        parts
            .iter()
            .map(|p| {
                let kind = match p.kind {
                    PartKind::Gpt(t) => text(Id::Uuid(t)),
                    PartKind::Mbr(t) => format!("{t:#x}"),
                };
                (p.number, text(p.id), p.start, p.sectors, kind)
            })
            .collect()
    }

    fn row(n: u32, id: &str, start: u64, sectors: u64, kind: &str) -> (u32, String, u64, u64, String) {
        (n, id.into(), start, sectors, kind.into())
    }

    fn gpt_disk(bytes: &[u8]) -> Disk {
        Disk::new(64 * MIB, &[(0, bytes)])
    }

    fn mbr_disk() -> Disk {
        let v = |lba: u64, b: &'static [u8]| (lba * 512, b);
        Disk::new(
            64 * MIB,
            &[
                v(0, include_bytes!("vectors/mbr.lba0")),
                v(26624, include_bytes!("vectors/mbr.lba26624")),
                v(36864, include_bytes!("vectors/mbr.lba36864")),
                v(55296, include_bytes!("vectors/mbr.lba55296")),
            ],
        )
    }

    /// partx (libblkid) on the same images: vectors/blkid.txt.
    #[test]
    fn gpt_as_partx_lists_it() {
        let (table, parts) = list(&gpt_disk(GPT), 512).unwrap().unwrap();
        let Table::Gpt(disk) = table else { panic!("{table:?}") };
        assert_eq!(text(disk), "6a7b8c9d-0e1f-4a2b-9c3d-4e5f60718293");
        assert_eq!(
            rows(&parts),
            [
                row(1, "11223344-5566-4778-899a-abbccddeeff0", 2048, 16384, "c12a7328-f81f-11d2-ba4b-00a0c93ec93b"),
                row(2, "a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d", 18432, 32768, "4f68bce3-e8cd-4db1-96e7-fbcaf984b709"),
                row(4, "deadbeef-0001-4002-8003-000000000004", 51200, 8192, "0fc63daf-8483-4772-8e79-3d69d8477de4"),
            ]
        );
    }

    /// fdisk -b 4096 -l (sectors of 4096 bytes).
    #[test]
    fn gpt_with_4k_sectors() {
        let (table, parts) = list(&gpt_disk(GPT_4K), 4096).unwrap().unwrap();
        assert_eq!(table, Table::Gpt(Id::Uuid(*b"\x7b\x8c\x9d\x0e\x1f\x2a\x4b\x3c\x8d\x4e\x5f\x60\x71\x82\x93\x04")));
        let linux = "0fc63daf-8483-4772-8e79-3d69d8477de4";
        assert_eq!(
            rows(&parts),
            [row(1, "22334455-6677-4889-9aab-bccddeeff001", 256, 2048, linux), row(2, "b2c3d4e5-f6a7-4b8c-9d0e-1f2a3b4c5d6e", 2304, 4096, linux)]
        );
        // Read with the wrong sector size, LBA 1 holds no header.
        assert_eq!(list(&gpt_disk(GPT_4K), 512), Err(ProbeError::Format(Error::BadMagic)));
        assert_eq!(list(&gpt_disk(GPT), 4096), Err(ProbeError::Format(Error::BadMagic)));
    }

    #[test]
    fn gpt_crcs_are_checked() {
        let mut bad_header = GPT.to_vec();
        bad_header[512 + 0x40] ^= 1;
        assert_eq!(list(&gpt_disk(&bad_header), 512), Err(ProbeError::Format(Error::BadChecksum)));
        let mut bad_entry = GPT.to_vec();
        bad_entry[1024 + 128 + 20] ^= 1;
        assert_eq!(list(&gpt_disk(&bad_entry), 512), Err(ProbeError::Format(Error::BadChecksum)));
        // Unused entries are covered too.
        let mut bad_tail = GPT.to_vec();
        bad_tail[17407] = 1;
        assert_eq!(list(&gpt_disk(&bad_tail), 512), Err(ProbeError::Format(Error::BadChecksum)));
        // The array must be there whole.
        assert_eq!(list(&Disk::new(17407, &[(0, GPT)]), 512), Err(ProbeError::Format(Error::Truncated)));
        // A 0xEE entry that does not start at LBA 1 is no protective MBR.
        let mut b = GPT.to_vec();
        b[446 + 8] = 2;
        assert_eq!(list(&gpt_disk(&b), 512), Err(ProbeError::Format(Error::Invalid)));
    }

    #[test]
    fn gpt_absurd_headers() {
        let put32 = |at: usize, v: u32| edited(move |h| h[at..at + 4].copy_from_slice(&v.to_le_bytes()));
        let put64 = |at: usize, v: u64| edited(move |h| h[at..at + 8].copy_from_slice(&v.to_le_bytes()));
        // Entries past the end of a u64 byte offset.
        assert_eq!(list(&gpt_disk(&put64(72, u64::MAX / 256)), 512), Err(ProbeError::Format(Error::Invalid)));
        // Entries beyond the disk.
        assert_eq!(list(&gpt_disk(&put64(72, 1 << 40)), 512), Err(ProbeError::Format(Error::Truncated)));
        assert_eq!(list(&gpt_disk(&put32(80, 1 << 20)), 512), Err(ProbeError::Format(Error::Unsupported)));
        // Fewer entries: the array CRC no longer matches.
        assert_eq!(list(&gpt_disk(&put32(80, 4)), 512), Err(ProbeError::Format(Error::BadChecksum)));
        // Four entries with their CRC: partition 4 is gone.
        let mut short = put32(80, 4);
        let c = crc::crc32(&short[1024..1024 + 4 * 128]);
        short[512 + 88..512 + 92].copy_from_slice(&c.to_le_bytes());
        gpt::Header::new_unchecked(&mut short[512..1024]).fill_crc();
        let (_, parts) = list(&gpt_disk(&short), 512).unwrap().unwrap();
        assert_eq!(parts.iter().map(|p| p.number).collect::<Vec<_>>(), [1, 2, 4]);
        // The same 16 KiB array read as 64 entries of 256 bytes (its CRC still holds): each
        // entry is the first 128 bytes of its 256, so only old entry 0 is a partition.
        let wide = edited(|h| {
            h[80..84].copy_from_slice(&64u32.to_le_bytes());
            h[84..88].copy_from_slice(&256u32.to_le_bytes());
        });
        let (_, parts) = list(&gpt_disk(&wide), 512).unwrap().unwrap();
        assert_eq!(rows(&parts)[..], [row(1, "11223344-5566-4778-899a-abbccddeeff0", 2048, 16384, "c12a7328-f81f-11d2-ba4b-00a0c93ec93b")]);
    }

    #[test]
    fn mbr_as_partx_lists_it() {
        let (table, parts) = list(&mbr_disk(), 512).unwrap().unwrap();
        assert_eq!(table, Table::Mbr(0x5eed_1234));
        assert_eq!(
            rows(&parts),
            [
                row(1, "5eed1234-01", 2048, 16384, "0x83"),
                row(2, "5eed1234-02", 18432, 8192, "0xc"),
                row(3, "5eed1234-03", 26624, 81920, "0x5"),
                row(5, "5eed1234-05", 28672, 8192, "0x83"),
                row(6, "5eed1234-06", 38912, 16384, "0x82"),
                row(7, "5eed1234-07", 57344, 4096, "0x83"),
            ]
        );
        // Without the EBRs (a truncated disk), only the primaries.
        let (_, parts) = list(&Disk::new(13 * MIB, &[(0, include_bytes!("vectors/mbr.lba0"))]), 512).unwrap().unwrap();
        assert_eq!(parts.iter().map(|p| p.number).collect::<Vec<_>>(), [1, 2, 3]);
    }

    #[test]
    fn ebr_chains_are_bounded() {
        // An EBR whose link points back at itself, with a logical partition each time.
        let mut ebr = include_bytes!("vectors/mbr.lba26624").to_vec();
        ebr[446 + 16 + 8..446 + 16 + 12].copy_from_slice(&0u32.to_le_bytes());
        let disk = Disk::new(64 * MIB, &[(0, include_bytes!("vectors/mbr.lba0")), (26624 * 512, &ebr)]);
        let (_, parts) = list(&disk, 512).unwrap().unwrap();
        assert_eq!(parts.len(), 3 + (MAX_NUMBER as usize - 4));
        assert_eq!(parts.last().map(|p| (p.number, text(p.id))), Some((255, "5eed1234-ff".into())));
        // Links only, no data partitions: 100 links, then stop.
        ebr[446..446 + 16].fill(0);
        let disk = Disk::new(64 * MIB, &[(0, include_bytes!("vectors/mbr.lba0")), (26624 * 512, &ebr)]);
        let reads = disk.count_reads(|d| assert_eq!(list(d, 512).unwrap().unwrap().1.len(), 3));
        assert_eq!(reads, 1 + MAX_EMPTY_LINKS as usize);
    }

    #[test]
    fn not_tables() {
        assert_eq!(list(&Disk::new(0, &[]), 512), Ok(None));
        assert_eq!(list(&Disk::new(MIB, &[]), 512), Ok(None));
        let fat = include_bytes!("vectors/fat16.boot");
        assert_eq!(list(&Disk::new(16 * MIB, &[(0, fat)]), 512), Ok(None));
        let mut b = include_bytes!("vectors/mbr.lba0").to_vec();
        b[446] = 1;
        assert_eq!(list(&Disk::new(MIB, &[(0, &b)]), 512), Ok(None));
        for ss in [0, 256, 1000, 1 << 17] {
            assert_eq!(list(&mbr_disk(), ss), Err(ProbeError::Format(Error::Invalid)));
        }
        let mut buf = [0u8; WINDOW];
        let r = read_partitions(&mut |_, _: &mut [u8]| Err::<usize, _>("eio"), &mut buf, 512, &mut |_| true);
        assert_eq!(r, Err(ProbeError::Io("eio")));
    }

    #[test]
    fn find_by_partuuid() {
        let find = |disk: &Disk, ss, id: &str, off| {
            let mut buf = [0u8; WINDOW];
            find_partition(&mut |at, b: &mut [u8]| disk.read(at, b), &mut buf, ss, id.as_bytes(), off).unwrap().map(|p| p.number)
        };
        let gpt = gpt_disk(GPT);
        assert_eq!(find(&gpt, 512, "A1B2C3D4-E5F6-4A7B-8C9D-0E1F2A3B4C5D", 0), Some(2));
        assert_eq!(find(&gpt, 512, "a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d", -1), Some(1));
        // Partition 3 does not exist.
        assert_eq!(find(&gpt, 512, "a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d", 1), None);
        assert_eq!(find(&gpt, 512, "a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d", 2), Some(4));
        assert_eq!(find(&gpt, 512, "11223344-5566-4778-899a-abbccddeeff0", i32::MIN), None);
        assert_eq!(find(&gpt, 512, "a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5e", 0), None);
        let mbr = mbr_disk();
        assert_eq!(find(&mbr, 512, "5eed1234-06", 0), Some(6));
        assert_eq!(find(&mbr, 512, "5EED1234-06", 1), Some(7));
        assert_eq!(find(&mbr, 512, "5eed1234-04", 0), None);
    }

    #[test]
    fn random_damage() {
        let mut rng = keel_proto::testutil::XorShift(0x6a7b_8c9d);
        let disks = [gpt_disk(GPT), gpt_disk(GPT_4K), mbr_disk()];
        for _ in 0..2000 {
            let i = rng.below(disks.len());
            let mut disk = disks[i].clone();
            for _ in 0..1 + rng.below(4) {
                disk.flip(&mut rng);
            }
            let ss = if i == 1 { 4096 } else { 512 };
            if let Ok(Some((_, parts))) = list(&disk, ss) {
                assert!(parts.iter().all(|p| (1..=8192).contains(&p.number)));
            }
        }
    }
}
