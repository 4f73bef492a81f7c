//! Block-device identification for `root=UUID=`, `LABEL=` and `PARTUUID=` without udev or
//! blkid: pure parsers over caller-owned bytes, no I/O and no allocation. The caller owns one
//! `WINDOW`-sized buffer and a read callback `FnMut(offset, &mut [u8]) -> Result<usize, E>`
//! (a short read means the end of the device); `identify` and `read_partitions` read only the
//! windows they need through it. Expected values are `blkid -p`'s (libblkid 2.38), from real
//! images: `vectors/README.md`.
//!
//! Filesystems (`identify`). Superblock checksums (ext4's metadata_csum, xfs v5, btrfs,
//! erofs's sb_chksum) are not verified, unlike blkid: the magic and the sanity checks below
//! decide, and the kernel's mount verifies the checksum (a corrupt superblock is then a mount
//! error rather than a device not found).
//! - ext2/3/4 (`ext`): superblock at 1024, magic 0xEF53 at +0x38, uuid +0x68, volume name
//!   +0x78 (16). Told apart by feature flags as blkid does: a feature outside ext3's set is
//!   ext4, else a journal (`has_journal`) is ext3, else ext2. A journal device (`jbd`) and
//!   the `test_fs` flag (blkid's ext4dev) are not told apart: jbd is `Unsupported`, ext4dev
//!   is ext4. blkid also asks the running kernel whether ext2 exists; keel does not.
//! - xfs (`xfs`): superblock at 0, big-endian, "XFSB"; uuid +32, fname +108 (12); blkid's
//!   geometry checks.
//! - btrfs (`btrfs`): the primary superblock at 64 KiB (4096 bytes), "_BHRfS_M" at +0x40,
//!   fsid +0x20, label +0x12B (256); +0x30 must be its own offset. The backup superblocks
//!   (64 MiB, 256 GiB) are not read: if the primary is bad, the kernel's mount would not use
//!   a backup either.
//! - vfat (`fat`): FAT12/16/32 boot sector at 0: blkid's magic strings at 0x36/0x52 or a
//!   0x55AA signature with blkid's BPB checks. UUID is the volume serial (0x27, FAT32
//!   0x43) shown `XXXX-XXXX` in upper case, like blkid; a zero serial is no UUID. Label: the
//!   boot sector's (0x2B, FAT32 0x47), "NO NAME" counts as none. blkid prefers the root
//!   directory's volume-label entry, which keel does not read: mkfs.vfat writes both the
//!   same, but a volume relabelled by Windows has only the entry changed, and there keel's
//!   LABEL is the old one. FAT32's FSINFO signatures are not checked (the kernel only warns
//!   about them).
//! - squashfs (`squashfs`): "hsqs" at 0, version 4 or later (3.x is `Unsupported`); no
//!   UUID or label, as blkid.
//! - erofs (`erofs`): superblock at 1024, magic 0xE0F5E1E2, uuid +48, volume name +64 (16),
//!   block size 512..4096.
//!
//! Partition tables (`read_partitions`, `find_partition`), the device's logical sector size
//! given by the caller (/sys/block/DEV/queue/logical_block_size):
//! - GPT (`gpt`): a protective MBR (an 0xEE entry starting at LBA 1, hybrids allowed), the
//!   primary header at LBA 1 with its CRC32, the entry array (entry size from the header,
//!   128·2ⁿ up to 4 KiB, at most `gpt::MAX_ARRAY` bytes) with its CRC32, entry i is
//!   partition i+1 as in the kernel. PARTUUID is the unique partition GUID, printed
//!   mixed-endian as the kernel does. The backup header is not read: with a bad primary,
//!   `read_partitions` fails (the kernel would fall back to the backup).
//! - MBR (`mbr`): disk signature at 440, four entries at 446, 0x55AA at 510; boot
//!   indicators other than 0/0x80 mean "not a table" (the kernel's rule), and so does a
//!   valid FAT boot sector (blkid's). PARTUUID `SSSSSSSS-PP`, PP the partition number in
//!   hex. Extended partitions (types 0x05, 0x0F, 0x85) are followed like the kernel's
//!   `parse_extended`: logical partitions numbered from 5, at most 100 links without a data
//!   partition, numbers up to 255. The extended container itself is reported with its
//!   table size (the kernel gives it 1-2 sectors).
//!
//! Text (`id`): `Id::text` gives blkid's and the kernel's forms; `Spec::parse` (keel-config's
//! `values::Device`, shared with the configuration compiler) reads a `root=` value
//! (`UUID=`, `LABEL=`, `PARTUUID=` with the kernel's optional `/PARTNROFF=N`, or a path);
//! `matches` and `Id::matches` compare case-insensitively, exactly (the kernel's
//! `PARTUUID=` also accepts a prefix; keel does not).

mod bytes;
pub mod btrfs;
pub mod erofs;
pub mod ext;
pub mod fat;
pub mod gpt;
pub mod id;
mod identify;
pub mod mbr;
pub mod squashfs;
mod table;
pub mod xfs;
#[cfg(test)]
mod testdisk;

pub use bytes::label;
pub use id::{matches, Id, IdText, Spec};
pub use identify::{identify, Found};
pub use table::{find_partition, read_partitions, PartKind, Partition, Table};

/// The caller's buffer: every read is at most this long.
pub const WINDOW: usize = 4096;

/// Why bytes are not a valid instance of a format.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Error {
    /// Shorter than the structure (or the checksummed region) needs.
    Truncated,
    /// Not this format.
    BadMagic,
    /// This format, but its checksum does not match.
    BadChecksum,
    /// This format, but a field is out of range.
    Invalid,
    /// Valid, but something keel does not handle (a journal device, a huge table, ...).
    Unsupported,
}

/// A partition-table failure: the caller's read, or a table that is there but bad.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum ProbeError<E> {
    Io(E),
    Format(Error),
}

impl<E> From<Error> for ProbeError<E> {
    fn from(e: Error) -> Self {
        ProbeError::Format(e)
    }
}

/// What `identify` found, as mount(2) names it.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum FsType {
    Ext2,
    Ext3,
    Ext4,
    Xfs,
    Btrfs,
    Vfat,
    Squashfs,
    Erofs,
}

impl FsType {
    /// The filesystem type argument of mount(2).
    pub fn name(self) -> &'static core::ffi::CStr {
        match self {
            FsType::Ext2 => c"ext2",
            FsType::Ext3 => c"ext3",
            FsType::Ext4 => c"ext4",
            FsType::Xfs => c"xfs",
            FsType::Btrfs => c"btrfs",
            FsType::Vfat => c"vfat",
            FsType::Squashfs => c"squashfs",
            FsType::Erofs => c"erofs",
        }
    }
}

/// Fill `buf` from byte `offset` of the device, over short reads; returns the bytes read
/// (fewer only at the end of the device, or where the offset would overflow).
pub(crate) fn read_full<E>(
    read: &mut impl FnMut(u64, &mut [u8]) -> Result<usize, E>,
    offset: u64,
    buf: &mut [u8],
) -> Result<usize, E> {
    let mut done = 0;
    while let Some(rest) = buf.get_mut(done..).filter(|r| !r.is_empty()) {
        let Some(at) = offset.checked_add(done as u64) else { break };
        let n = read(at, rest)?.min(rest.len());
        if n == 0 {
            break;
        }
        done += n;
    }
    Ok(done)
}
