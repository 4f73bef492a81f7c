//! Where keel runs, and freeing the initramfs once the new root is `/`. An initramfs is
//! the kernel's rootfs: ramfs when `root=` is given, tmpfs otherwise (init/do_mounts.c).
//! Its files are RAM until they are deleted, and nothing else will ever delete them, so
//! switch_root deletes them all first, as util-linux's switch_root(8) does: depth first,
//! never into another filesystem (a directory whose st_dev differs is a mount point and
//! is left alone), never following a symlink.

use rustix::fd::{AsFd, OwnedFd};
use rustix::fs::{AtFlags, FileType, Mode, OFlags};

/// Whether `/` is the initramfs (ramfs or tmpfs).
pub fn root_is_initramfs() -> bool {
    use linux_raw_sys::general::{RAMFS_MAGIC, TMPFS_MAGIC};
    rustix::fs::statfs(c"/").is_ok_and(|s| matches!(s.f_type as u32, RAMFS_MAGIC | TMPFS_MAGIC))
}

/// Directories deeper than this are left (an initramfs is 6 or 7 deep, in lib/modules).
pub const MAX_DEPTH: u32 = 32;

/// What to do with one entry of the tree being deleted.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Removal {
    Unlink,
    /// A directory of the same filesystem: empty it, then remove it.
    Descend,
    /// Another filesystem's (a mount point), or too deep: left as it is.
    Keep,
}

pub fn removal(kind: FileType, dev: u64, root_dev: u64, depth: u32) -> Removal {
    match kind {
        _ if dev != root_dev => Removal::Keep,
        FileType::Directory if depth < MAX_DEPTH => Removal::Descend,
        FileType::Directory => Removal::Keep,
        _ => Removal::Unlink,
    }
}

/// What deleting gave back.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct Freed {
    /// Files, links and directories removed.
    pub entries: u32,
    /// Bytes of the regular files among them.
    pub bytes: u64,
    /// Entries left: mount points, too deep, or that would not go.
    pub kept: u32,
}

/// Delete everything below `dir` (itself stays), for a tree on device `root_dev`.
pub fn remove_tree(dir: &OwnedFd, root_dev: u64, depth: u32, freed: &mut Freed) {
    let mut dirents = [0u8; 1024];
    let mut entries = crate::dir::Dir::new(dir.as_fd(), &mut dirents);
    while let Some(entry) = entries.next() {
        let Ok(entry) = entry else {
            freed.kept += 1;
            break;
        };
        let name = entry.file_name();
        if name.to_bytes() == b"." || name.to_bytes() == b".." {
            continue;
        }
        let Ok(st) = rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) else {
            freed.kept += 1;
            continue;
        };
        let kind = FileType::from_raw_mode(st.st_mode);
        let removed = match removal(kind, st.st_dev, root_dev, depth) {
            Removal::Keep => false,
            Removal::Unlink => rustix::fs::unlinkat(dir, name, AtFlags::empty()).is_ok(),
            Removal::Descend => {
                let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
                if let Ok(sub) = crate::sys::fd::openat(dir.as_fd(), name, flags, Mode::empty()) {
                    remove_tree(&sub, root_dev, depth + 1, freed);
                }
                rustix::fs::unlinkat(dir, name, AtFlags::REMOVEDIR).is_ok()
            }
        };
        if !removed {
            freed.kept += 1;
            continue;
        }
        freed.entries += 1;
        if kind == FileType::RegularFile {
            freed.bytes += st.st_size as u64;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decisions() {
        use FileType::*;
        assert_eq!(removal(RegularFile, 1, 1, 0), Removal::Unlink);
        assert_eq!(removal(Symlink, 1, 1, 0), Removal::Unlink, "a link is removed, never followed");
        assert_eq!(removal(CharacterDevice, 1, 1, 3), Removal::Unlink);
        assert_eq!(removal(Directory, 1, 1, 0), Removal::Descend);
        assert_eq!(removal(Directory, 2, 1, 0), Removal::Keep, "a mount point: another filesystem");
        assert_eq!(removal(RegularFile, 2, 1, 0), Removal::Keep);
        assert_eq!(removal(Directory, 1, 1, MAX_DEPTH), Removal::Keep);
    }

    fn tree(base: &std::path::Path) {
        use std::fs;
        fs::create_dir_all(base.join("lib/modules/6.1/kernel/drivers/block")).unwrap();
        fs::write(base.join("lib/modules/6.1/kernel/drivers/block/virtio_blk.ko"), [7u8; 3000]).unwrap();
        fs::write(base.join("init"), b"#!keel").unwrap();
        fs::create_dir(base.join("proc")).unwrap();
        std::os::unix::fs::symlink("/outside", base.join("bin")).unwrap();
        std::os::unix::fs::symlink(base.join("lib"), base.join("loop")).unwrap();
    }

    fn open(path: &std::path::Path) -> OwnedFd {
        let path = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
        crate::sys::fd::open(path.as_c_str(), OFlags::RDONLY | OFlags::DIRECTORY, Mode::empty()).unwrap()
    }

    #[test]
    fn everything_below_goes_and_links_are_not_followed() {
        let outside = tempdir("outside");
        std::fs::write(outside.join("keep"), b"x").unwrap();
        let base = tempdir("tree");
        tree(&base);
        std::os::unix::fs::symlink(&outside, base.join("out")).unwrap();
        let dir = open(&base);
        let dev = rustix::fs::fstat(&dir).unwrap().st_dev;
        let mut freed = Freed::default();
        remove_tree(&dir, dev, 0, &mut freed);
        assert_eq!(std::fs::read_dir(&base).unwrap().count(), 0);
        // lib, modules, 6.1, kernel, drivers, block, virtio_blk.ko, init, proc, bin, loop, out
        assert_eq!(freed, Freed { entries: 12, bytes: 3006, kept: 0 });
        assert!(outside.join("keep").exists(), "a symlink's target is not touched");
        let _ = std::fs::remove_dir_all(&base);
        let _ = std::fs::remove_dir_all(&outside);
    }

    #[test]
    fn another_device_is_kept() {
        let base = tempdir("other-dev");
        tree(&base);
        let dir = open(&base);
        let dev = rustix::fs::fstat(&dir).unwrap().st_dev;
        let mut freed = Freed::default();
        // Seen from a tree on another device, every entry here is a mount point's.
        remove_tree(&dir, dev + 1, 0, &mut freed);
        assert_eq!((freed.entries, freed.kept), (0, 5));
        assert!(base.join("lib/modules/6.1/kernel/drivers/block/virtio_blk.ko").exists());
        let _ = std::fs::remove_dir_all(&base);
    }

    fn tempdir(what: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("keel-initramfs-{what}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }
}
