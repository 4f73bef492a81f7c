//! Which block device a `Spec` names, without udev or blkid: /sys/class/block lists the
//! devices (their /dev/NAME nodes exist: devtmpfs makes them before the kernel announces
//! them), probe reads their superblocks (UUID=, LABEL=, and the type to mount) and, for
//! PARTUUID=, the parent disk's GPT or MBR: the parent is the directory above the
//! partition's in sysfs, the number is its `partition` attribute, the sector size the
//! disk's `queue/logical_block_size`.

use crate::file::{c_path, read_into};
use crate::probe::{self, FsType, Spec, WINDOW};
use rustix::fd::{AsFd, OwnedFd};
use rustix::fs::{Mode, OFlags};
use rustix::io::Errno;

/// Longest device name looked at (the kernel's disk names are at most 31 bytes).
pub const NAME_MAX: usize = 31;
pub type Name = heapless::Vec<u8, NAME_MAX>;

/// A device that matched, and the filesystem probe found on it (None: none it knows).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Found {
    pub name: Name,
    pub fs: Option<FsType>,
}

/// The first block device, in /sys/class/block's order, that `spec` names.
pub fn scan(spec: &Spec) -> Option<Found> {
    let dir = crate::sys::fd::open(c"/sys/class/block", OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty()).ok()?;
    let mut dirents = [0u8; 1024];
    let mut entries = crate::dir::Dir::new(dir.as_fd(), &mut dirents);
    while let Some(Ok(entry)) = entries.next() {
        if let Some(found) = check(entry.file_name().to_bytes(), spec) {
            return Some(found);
        }
    }
    None
}

/// Whether block device `name` is the one `spec` names.
pub fn check(name: &[u8], spec: &Spec) -> Option<Found> {
    if name.is_empty() || name.starts_with(b".") || name.contains(&b'/') {
        return None;
    }
    let name = Name::from_slice(name).ok()?;
    let mut buf = [0u8; WINDOW];
    match *spec {
        Spec::Path(path) if path.strip_prefix(b"/dev/") != Some(&name[..]) => return None,
        Spec::PartUuid { id, nr_offset } if !partition_is(&name, id, nr_offset, &mut buf) => return None,
        _ => {}
    }
    let dev = open_dev(&name).ok()?;
    let found = probe::identify(&mut reader(&dev), &mut buf).ok().flatten();
    if matches!(spec, Spec::Uuid(_) | Spec::Label(_)) && !found.is_some_and(|f| probe::matches(spec, &f)) {
        return None;
    }
    Some(Found { name, fs: found.map(|f| f.fs) })
}

/// Whether partition `name` is the one the PARTUUID (and offset) names on its disk.
#[inline(never)] // smaller out of line (measured)
fn partition_is(name: &[u8], id: &[u8], nr_offset: i32, buf: &mut [u8; WINDOW]) -> bool {
    let Some(number) = read_u32(&[b"/sys/class/block/", name, b"/partition"]) else { return false };
    let mut path = [0u8; 64];
    let mut link = [0u8; 256];
    let Some(at) = c_path(&[b"/sys/class/block/", name], &mut path) else { return false };
    let Ok(len) = rustix::fs::readlinkat_raw(rustix::fs::CWD, at, &mut link[..]) else { return false };
    let Some(disk) = link.get(..len).and_then(parent_disk) else { return false };
    let sector = read_u32(&[b"/sys/block/", disk, b"/queue/logical_block_size"]).unwrap_or(512);
    let Ok(fd) = open_dev(disk) else { return false };
    let found = probe::find_partition(&mut reader(&fd), buf, sector, id, nr_offset);
    matches!(found, Ok(Some(p)) if p.number == number)
}

/// The disk a partition's sysfs link ends in: `../../devices/.../block/vda/vda1` → `vda`.
pub fn parent_disk(link: &[u8]) -> Option<&[u8]> {
    let mut parts = link.rsplit(|&b| b == b'/');
    parts.next()?;
    parts.next().filter(|p| !p.is_empty() && *p != b".." && *p != b".")
}

/// `/dev/NAME` opened for reading (CD drives without a disc, and the like, fail here).
pub fn open_dev(name: &[u8]) -> Result<OwnedFd, Errno> {
    let mut path = [0u8; 48];
    let dev = c_path(&[b"/dev/", name], &mut path).ok_or(Errno::NAMETOOLONG)?;
    crate::sys::fd::open(dev, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty())
}

/// probe's read callback over a device: one closure type for every caller, so probe's
/// generic code is in the binary once.
fn reader(fd: &OwnedFd) -> impl FnMut(u64, &mut [u8]) -> Result<usize, Errno> + '_ {
    move |at, buf| rustix::io::pread(crate::sys::fd::borrow(fd), buf, at)
}

/// A small decimal sysfs attribute (`1\n`).
fn read_u32(parts: &[&[u8]]) -> Option<u32> {
    let (mut path, mut text) = ([0u8; 96], [0u8; 16]);
    let digits = read_into(c_path(parts, &mut path)?, &mut text).ok()?;
    crate::config::cmdline::parse_u32(digits.strip_suffix(b"\n").unwrap_or(digits))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_parent_is_the_directory_above() {
        assert_eq!(parent_disk(b"../../devices/pci0000:00/0000:00:02.0/virtio1/block/vda/vda1"), Some(&b"vda"[..]));
        assert_eq!(parent_disk(b"../../devices/pci0000:00/0000:00:04.0/nvme/nvme0/nvme0n1/nvme0n1p2"), Some(&b"nvme0n1"[..]));
        assert_eq!(parent_disk(b"vda1"), None);
        assert_eq!(parent_disk(b"/vda1"), None);
        assert_eq!(parent_disk(b"../vda1"), None);
        assert_eq!(parent_disk(b""), None);
    }

    #[test]
    fn names_that_are_not_devices_are_not_opened() {
        let spec = Spec::Label(b"x");
        for name in [&b""[..], b".", b"..", b"a/b", &[b'a'; 32]] {
            assert_eq!(check(name, &spec), None);
        }
        // A path names one device: others are not even opened.
        assert_eq!(check(b"nosuchdev", &Spec::Path(b"/dev/vda")), None);
    }
}
