//! `identify`: which filesystem a device holds, through the caller's read callback and one
//! `WINDOW` buffer. Reads: bytes 0..4096 (ext, xfs, squashfs, erofs, the FAT boot sector)
//! and 64 KiB..68 KiB (btrfs).

use core::ops::Range;

use super::fat::FatRepr;
use super::{btrfs, erofs, ext, fat, read_full, squashfs, xfs, FsType, Id, WINDOW};

/// A filesystem `identify` recognised.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Found<'b> {
    pub fs: FsType,
    /// None where the format has none (squashfs) or it is all zeros.
    pub uuid: Option<Id>,
    /// Trimmed as blkid does; empty when there is none. Borrowed from the caller's buffer.
    pub label: &'b [u8],
}

type Hit = (FsType, Option<Id>, Range<usize>);

/// The filesystem on the device `read` reads (`read(offset, buf)` returns the bytes read,
/// fewer at the end of the device), tried in the order ext2/3/4, xfs, squashfs, erofs, btrfs,
/// vfat (the weakest magic last). None when none of them is there and valid; Err only for
/// the caller's read errors.
pub fn identify<'b, E, R>(read: &mut R, buf: &'b mut [u8; WINDOW]) -> Result<Option<Found<'b>>, E>
where
    R: FnMut(u64, &mut [u8]) -> Result<usize, E>,
{
    let Some((fs, uuid, label)) = probe(read, buf)? else { return Ok(None) };
    // The label to the front of the buffer, where it stays valid for the caller.
    let len = label.len();
    for (to, from) in label.enumerate() {
        if let Some(c) = buf.get(from).copied() {
            if let Some(slot) = buf.get_mut(to) {
                *slot = c;
            }
        }
    }
    Ok(Some(Found { fs, uuid, label: buf.get(..len).unwrap_or(&[]) }))
}

fn probe<E, R>(read: &mut R, buf: &mut [u8; WINDOW]) -> Result<Option<Hit>, E>
where
    R: FnMut(u64, &mut [u8]) -> Result<usize, E>,
{
    let n = read_full(read, 0, buf)?;
    let window = buf.get(..n).unwrap_or(&[]);
    if let Some(hit) = first_window(window) {
        return Ok(Some(hit));
    }
    let fat = fat::BootSector::new_checked(window).and_then(|bs| FatRepr::parse(&bs)).ok();

    let n = read_full(read, btrfs::OFFSET, buf)?;
    let window = buf.get(..n).unwrap_or(&[]);
    if let Ok(r) = btrfs::Superblock::new_checked(window).and_then(|sb| btrfs::BtrfsRepr::parse(&sb)) {
        return Ok(Some((FsType::Btrfs, Id::uuid(r.uuid), within(window, r.label))));
    }

    let Some(fat) = fat else { return Ok(None) };
    let mut len = 0;
    if let (Some(label), Some(front)) = (fat.label(), buf.first_chunk_mut::<11>()) {
        *front = *label;
        len = super::label(label).len();
    }
    Ok(Some((FsType::Vfat, Id::fat_serial(fat.serial), 0..len)))
}

/// Everything the first 4 KiB decide.
fn first_window(w: &[u8]) -> Option<Hit> {
    let at = |inner: &[u8]| within(w, inner);
    let sb = w.get(ext::OFFSET..).unwrap_or(&[]);
    if let Ok(r) = ext::Superblock::new_checked(sb).and_then(|sb| ext::ExtRepr::parse(&sb)) {
        return Some((r.fs, Id::uuid(r.uuid), at(r.label)));
    }
    if let Ok(r) = xfs::Superblock::new_checked(w).and_then(|sb| xfs::XfsRepr::parse(&sb)) {
        return Some((FsType::Xfs, Id::uuid(r.uuid), at(r.label)));
    }
    if squashfs::Superblock::new_checked(w).and_then(|sb| squashfs::SquashfsRepr::parse(&sb)).is_ok() {
        return Some((FsType::Squashfs, None, 0..0));
    }
    let sb = w.get(erofs::OFFSET..).unwrap_or(&[]);
    if let Ok(r) = erofs::Superblock::new_checked(sb).and_then(|sb| erofs::ErofsRepr::parse(&sb)) {
        return Some((FsType::Erofs, Id::uuid(r.uuid), at(r.label)));
    }
    None
}

/// Where `inner`, a piece of `outer`, lies in it.
fn within(outer: &[u8], inner: &[u8]) -> Range<usize> {
    let start = (inner.as_ptr() as usize).wrapping_sub(outer.as_ptr() as usize);
    start..start.wrapping_add(inner.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::testdisk::Disk;

    macro_rules! vector {
        ($name:literal) => {
            &include_bytes!(concat!("vectors/", $name))[..]
        };
    }

    fn id(disk: &Disk) -> Option<(FsType, Option<String>, String)> {
        let mut buf = [0u8; WINDOW];
        let found = identify(&mut |at, b: &mut [u8]| disk.read(at, b), &mut buf).unwrap()?;
        let uuid = found.uuid.map(|u| String::from_utf8(u.text().as_bytes().to_vec()).unwrap());
        Some((found.fs, uuid, String::from_utf8_lossy(found.label).into_owned()))
    }

    fn expect(disk: &Disk, fs: FsType, uuid: Option<&str>, label: &str) {
        assert_eq!(id(disk), Some((fs, uuid.map(String::from), label.to_string())));
    }

    const MIB: u64 = 1 << 20;

    /// Every vector, as blkid -p printed it (vectors/blkid.txt).
    #[test]
    fn real_images_give_blkids_values() {
        use FsType::*;
        let one = |v: &[u8], size: u64| Disk::new(size, &[(0, v)]);
        expect(&one(vector!("ext4.sb"), 8 * MIB), Ext4, Some("0e8b1c4a-7f3d-4b6e-9a21-5c3d2e1f0a9b"), "keel-root");
        expect(&one(vector!("ext3.sb"), 8 * MIB), Ext3, Some("1b2c3d4e-5f60-4718-8293-a4b5c6d7e8f9"), "old-ext3");
        expect(&one(vector!("ext2.sb"), 4 * MIB), Ext2, Some("2c3d4e5f-6071-4829-93a4-b5c6d7e8f901"), "plain");
        expect(&one(vector!("xfs.sb"), 300 * MIB), Xfs, Some("3d4e5f60-7182-493a-a4b5-c6d7e8f90a1b"), "keel-xfs");
        expect(&one(vector!("xfs4k.sb"), 300 * MIB), Xfs, Some("3d4e5f60-7182-493a-a4b5-c6d7e8f90a1c"), "xfs-4k-sect");
        let btrfs = Disk::new(128 * MIB, &[(btrfs::OFFSET, vector!("btrfs.sb"))]);
        expect(&btrfs, Btrfs, Some("4e5f6071-8293-4a4b-b5c6-d7e8f90a1b2c"), "keel-btrfs");
        expect(&one(vector!("squashfs.sb"), 4096), Squashfs, None, "");
        expect(&one(vector!("erofs.sb"), 4096), Erofs, Some("5f607182-93a4-4b5c-86d7-e8f90a1b2c3d"), "");
        expect(&one(vector!("erofs-label.sb"), 4096), Erofs, Some("5f607182-93a4-4b5c-86d7-e8f90a1b2c3d"), "keel-erofs");
    }

    fn fat12() -> Disk {
        Disk::new(1440 * 1024, &[(0, vector!("fat12.boot")), (9728, vector!("fat12.root"))])
    }

    fn fat16() -> Disk {
        Disk::new(16 * MIB, &[(0, vector!("fat16.boot")), (34816, vector!("fat16.root"))])
    }

    fn fat32() -> Disk {
        Disk::new(64 * MIB, &[(0, vector!("fat32.boot")), (16384, vector!("fat32.fat")), (1_049_600, vector!("fat32.root"))])
    }

    #[test]
    fn vfat_as_blkid_reports_it() {
        use FsType::Vfat;
        expect(&fat12(), Vfat, Some("1A2B-3C4D"), "KEEL-FAT12");
        // The root-directory entry says "WIN LABEL", the boot sector "KEEL-FAT16": blkid's
        // LABEL is the entry's, keel's the boot sector's (it does not read the directory).
        expect(&fat16(), Vfat, Some("2B3C-4D5E"), "KEEL-FAT16");
        expect(&Disk::new(16 * MIB, &[(0, vector!("fat16-noid.boot"))]), Vfat, None, "");
        expect(&fat32(), Vfat, Some("3C4D-5E6F"), "KEEL-ESP");
        let fat32_4k = Disk::new(
            300_000 * 1024,
            &[(0, vector!("fat32-4k.boot")), (131_072, vector!("fat32-4k.fat")), (737_280, vector!("fat32-4k.root"))],
        );
        expect(&fat32_4k, Vfat, Some("4D5E-6F70"), "BIG-SECTOR");
    }

    #[test]
    fn vfat_label_sources() {
        use FsType::Vfat;
        // The boot sector's label; the root directory is never read (two windows only).
        let reads = fat16().count_reads(|d| expect(d, Vfat, Some("2B3C-4D5E"), "KEEL-FAT16"));
        assert_eq!(reads, 2);
        // "NO NAME" in the boot sector is no label, whatever the directory says.
        let mut boot = vector!("fat16.boot").to_vec();
        boot[0x2b..0x2b + 11].copy_from_slice(fat::NO_NAME);
        expect(&Disk::new(16 * MIB, &[(0, &boot), (34816, vector!("fat16.root"))]), Vfat, Some("2B3C-4D5E"), "");
        // FAT32's label field is at 0x47.
        let mut boot = vector!("fat32.boot").to_vec();
        boot[0x47..0x47 + 11].copy_from_slice(b"OTHER ESP  ");
        expect(&Disk::new(64 * MIB, &[(0, &boot)]), Vfat, Some("3C4D-5E6F"), "OTHER ESP");
    }

    #[test]
    fn nothing_there() {
        assert_eq!(id(&Disk::new(0, &[])), None);
        assert_eq!(id(&Disk::new(MIB, &[])), None);
        // Cut short: the superblock no longer fits.
        assert_eq!(id(&Disk::new(2047, &[(0, vector!("ext4.sb"))])), None);
        assert_eq!(id(&Disk::new(68 * 1024 - 1, &[(btrfs::OFFSET, vector!("btrfs.sb"))])), None);
        // Partition tables are not filesystems (their 0x55AA is not a FAT boot sector).
        assert_eq!(id(&Disk::new(64 * MIB, &[(0, vector!("gpt.lba0-33"))])), None);
        assert_eq!(id(&Disk::new(64 * MIB, &[(0, vector!("mbr.lba0"))])), None);
        let mut bad = vector!("ext4.sb").to_vec();
        bad[1024 + 0x38] ^= 1;
        assert_eq!(id(&Disk::new(8 * MIB, &[(0, &bad)])), None, "a damaged magic");
    }

    #[test]
    fn read_errors_are_the_callers() {
        let mut buf = [0u8; WINDOW];
        assert_eq!(identify(&mut |_, _: &mut [u8]| Err::<usize, _>(7), &mut buf), Err(7));
        // The btrfs window fails after the first one finds nothing.
        let mut calls = 0;
        let r = identify(
            &mut |at, b: &mut [u8]| {
                calls += 1;
                if at == 0 {
                    b.fill(0);
                    Ok(b.len())
                } else {
                    Err("eio")
                }
            },
            &mut buf,
        );
        assert_eq!((r, calls), (Err("eio"), 2));
        // Reads that return one byte at a time still fill the window.
        let disk = Disk::new(8 * MIB, &[(0, vector!("ext4.sb"))]);
        let found = identify(&mut |at, b: &mut [u8]| disk.read(at, &mut b[..1]), &mut buf).unwrap().unwrap();
        assert_eq!(found.label, b"keel-root");
    }

    /// Random damage to every vector never panics, and what is found keeps its invariants.
    #[test]
    fn random_damage() {
        let mut rng = keel_proto::testutil::XorShift(0x5eed_1234);
        let images = [
            fat16(),
            fat32(),
            Disk::new(8 * MIB, &[(0, vector!("ext4.sb"))]),
            Disk::new(8 * MIB, &[(0, vector!("ext3.sb"))]),
            Disk::new(MIB, &[(0, vector!("xfs.sb"))]),
            Disk::new(MIB, &[(0, vector!("erofs.sb"))]),
            Disk::new(MIB, &[(0, vector!("squashfs.sb"))]),
            Disk::new(MIB, &[(btrfs::OFFSET, vector!("btrfs.sb"))]),
        ];
        for _ in 0..3000 {
            let mut disk = images[rng.below(images.len())].clone();
            for _ in 0..1 + rng.below(8) {
                disk.flip(&mut rng);
            }
            if rng.below(4) == 0 {
                disk.size = rng.next() % (2 * MIB);
            }
            let mut buf = [0u8; WINDOW];
            if let Some(found) = identify(&mut |at, b: &mut [u8]| disk.read(at, b), &mut buf).unwrap() {
                assert!(found.label.len() <= 256);
                assert_eq!(crate::probe::label(found.label), found.label);
            }
        }
    }
}
