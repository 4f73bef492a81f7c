//! Coldplug: the devices already there at boot. The kernel announced them before PID 1
//! could listen, so instead of replaying their uevents (udevadm trigger) keel reads what
//! a replay would carry: each device directory's `modalias` file under /sys/devices.
//!
//! The walk holds no heap and no path per level: a fixed stack of directory fds (each
//! level's position kept as the getdents cookie of the entry after the child being
//! walked, so one dirent buffer serves every level) and a bounded depth. Symlinks
//! (`subsystem`, `driver`, `device`, `firmware_node`...) are never followed, so every
//! device is seen once, under its real place in the tree. Entries are taken by the type
//! getdents gives, which sysfs always does.
//!
//! Modules loaded for these devices can make new devices (a virtio_pci device's virtio
//! children, an xhci controller's USB devices): those come as uevents (`hotplug`), or
//! from walking again.

use super::{ByteSet, SetError};
use core::ffi::CStr;
use rustix::fd::{AsFd, BorrowedFd, OwnedFd};
use rustix::fs::{FileType, Mode, OFlags};
use rustix::io::Errno;

pub const SYS_DEVICES: &CStr = c"/sys/devices";
/// Deepest directory walked below the root; deeper ones are counted and skipped (a PC's
/// deepest devices, USB behind hubs behind a PCI bridge, are about 12 down).
pub const MAX_DEPTH: usize = 32;
/// Most directories one walk opens: a bound on the work whatever the tree does (a PC has
/// 5 to 20 thousand under /sys/devices).
pub const MAX_DIRS: u32 = 1 << 18;
/// A sysfs attribute is at most a page.
pub const MAX_MODALIAS: usize = 4096;
/// Distinct modaliases matched in one pass over modules.alias, and their bytes: a page,
/// sysfs's bound for one (a cpu modalias is 500 to 1000 bytes, most others under 60: a q35
/// VM's 51 take 2.7 KiB; a laptop's 150 to 250 take two or three passes).
pub const MAX_DEVICES: usize = 256;
pub const MODALIAS_BYTES: usize = 4096;
const DIRENT_BUF: usize = 2048;

/// A modalias as read from sysfs, without its newline; None if empty or holding control
/// bytes.
pub fn modalias_text(raw: &[u8]) -> Option<&[u8]> {
    let text = raw.strip_suffix(b"\n").unwrap_or(raw);
    (!text.is_empty() && !text.iter().any(|b| b.is_ascii_control())).then_some(text)
}

/// The distinct modaliases of devices found, kmod-normalized (`alias::normalize`), in the
/// order found: one batch for a pass over modules.alias.
#[derive(Default)]
pub struct Modaliases {
    set: ByteSet<MODALIAS_BYTES>,
}

impl Modaliases {
    pub const fn new() -> Self {
        Modaliases { set: ByteSet::new() }
    }

    /// Add one `modalias` file's content: Ok(true) if new, Ok(false) if known, Invalid
    /// for one kmod would refuse to look up, Full past the capacity.
    pub fn insert(&mut self, raw: &[u8]) -> Result<bool, SetError> {
        self.set.insert(modalias_text(raw).ok_or(SetError::Invalid)?, true)
    }

    pub fn len(&self) -> usize {
        self.set.len()
    }

    pub fn is_empty(&self) -> bool {
        self.set.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &[u8]> + '_ {
        self.set.iter()
    }

    pub fn clear(&mut self) {
        self.set.clear();
    }
}

/// What a walk saw; every count past `modaliases` is something left out.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct WalkSummary {
    pub dirs: u32,
    pub modaliases: u32,
    /// Directories below `MAX_DEPTH` not walked (and 1 if `MAX_DIRS` ended the walk).
    pub too_deep: u32,
    /// Directories or files that could not be opened or read (a device going away).
    pub errors: u32,
}

struct Level {
    fd: OwnedFd,
    /// Where to go on after the child being walked: its getdents cookie and inode (0, 0:
    /// from the start).
    cookie: u64,
    ino: u64,
}

/// `name` in `at`, read-only: a directory (not through a symlink) or a file. One call for
/// the three places that open.
#[inline(never)]
fn open_at(at: BorrowedFd<'_>, name: &CStr, dir: bool) -> Result<OwnedFd, Errno> {
    let how = if dir { OFlags::DIRECTORY | OFlags::NOFOLLOW } else { OFlags::empty() };
    crate::sys::fd::openat(at, name, OFlags::RDONLY | OFlags::CLOEXEC | how, Mode::empty())
}

/// `name` in `dir` into `buf` (one read: sysfs gives an attribute whole); its length.
fn read_at(dir: BorrowedFd<'_>, name: &CStr, buf: &mut [u8]) -> Result<usize, Errno> {
    crate::boot::modules::read_retry(&open_at(dir, name, false)?, buf)
}

/// Walk `root` (normally `SYS_DEVICES`); `on_modalias(modalias)` for each device
/// directory with a readable, non-empty `modalias` file.
pub fn walk(root: &CStr, on_modalias: &mut dyn FnMut(&[u8])) -> WalkSummary {
    walk_bounded(root, MAX_DIRS, on_modalias)
}

/// `walk` that stops after `max_dirs` directories opened or passed over: whatever a file
/// system's getdents cookies do, it ends. Out of line: its 7 KiB of buffers are not on the
/// stack when the modules are loaded after it.
#[inline(never)]
fn walk_bounded(root: &CStr, max_dirs: u32, on_modalias: &mut dyn FnMut(&[u8])) -> WalkSummary {
    let mut summary = WalkSummary::default();
    let mut stack: heapless::Vec<Level, MAX_DEPTH> = heapless::Vec::new();
    match open_at(rustix::fs::CWD, root, true) {
        Ok(fd) => {
            summary.dirs = 1;
            let _ = stack.push(Level { fd, cookie: 0, ino: 0 });
        }
        Err(_) => summary.errors += 1,
    }
    let mut dirents = [0u8; DIRENT_BUF];
    let mut value = [0u8; MAX_MODALIAS];
    loop {
        let full = stack.is_full();
        let Some(top) = stack.last_mut() else { break };
        // Every pass opens, passes over or leaves a directory, so this bounds them all.
        if summary.dirs + summary.too_deep + summary.errors >= max_dirs {
            summary.too_deep += 1;
            break;
        }
        if top.cookie != 0 && rustix::fs::seek(&top.fd, rustix::fs::SeekFrom::Start(top.cookie)).is_err() {
            summary.errors += 1;
            stack.pop();
            continue;
        }
        // The next subdirectory, opened.
        let mut child = None;
        let mut entries = crate::dir::Dir::new(top.fd.as_fd(), &mut dirents);
        while let Some(entry) = entries.next() {
            let Ok(entry) = entry else {
                summary.errors += 1;
                break;
            };
            let name = entry.file_name();
            let bytes = name.to_bytes();
            match entry.file_type() {
                // A cookie shared by two names could bring back the child just walked.
                // `power` is every device's PM attributes (40% of the directories), never a
                // device: its name would clash with that group.
                FileType::Directory if matches!(bytes, b"." | b".." | b"power") || entry.ino() == top.ino => {}
                FileType::Directory if full => summary.too_deep += 1,
                FileType::Directory => {
                    (top.cookie, top.ino) = (entry.next_entry_cookie(), entry.ino());
                    child = Some(open_at(top.fd.as_fd(), name, true));
                    break;
                }
                FileType::RegularFile if bytes == b"modalias" => match read_at(top.fd.as_fd(), name, &mut value) {
                    Ok(len) => {
                        if let Some(text) = modalias_text(&value[..len.min(MAX_MODALIAS)]) {
                            summary.modaliases += 1;
                            on_modalias(text);
                        }
                    }
                    Err(_) => summary.errors += 1,
                },
                _ => {}
            }
        }
        match child {
            None => drop(stack.pop()),
            Some(Ok(fd)) => {
                summary.dirs += 1;
                let _ = stack.push(Level { fd, cookie: 0, ino: 0 });
            }
            Some(Err(_)) => summary.errors += 1,
        }
    }
    summary
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn modaliases_are_trimmed_normalized_and_deduped() {
        let mut m = Modaliases::new();
        assert_eq!(m.insert(b"virtio:d00000001v00001AF4\n"), Ok(true));
        assert_eq!(m.insert(b"virtio:d00000001v00001AF4"), Ok(false));
        assert_eq!(m.insert(b"platform:reg-dummy\n"), Ok(true));
        assert_eq!(m.insert(b"platform:reg_dummy\n"), Ok(false));
        for bad in [&b""[..], b"\n", b"a\nb\n", b"a\0b", b"acpi:]x", b"acpi:[x"] {
            assert_eq!(m.insert(bad), Err(SetError::Invalid), "{:?}", String::from_utf8_lossy(bad));
        }
        assert_eq!(m.iter().collect::<Vec<_>>(), [&b"virtio:d00000001v00001AF4"[..], b"platform:reg_dummy"]);
        let mut added = 2;
        while m.insert(format!("platform:dev{added}").as_bytes()) == Ok(true) {
            added += 1;
        }
        assert_eq!(m.len(), added);
        // Full means full: less room left than the next value takes.
        let used: usize = m.iter().map(|v| v.len() + 1).sum();
        assert!(used <= MODALIAS_BYTES && used + format!("platform:dev{added}").len() + 1 > MODALIAS_BYTES, "{used}");
        assert_eq!(m.insert(b"platform:one-more"), Err(SetError::Full));
    }

    /// How often each modalias is in a `modalias` file under `root`, as find(1) sees them
    /// (not under `power` directories).
    fn found_by_find(root: &str) -> BTreeMap<String, usize> {
        let args = [root, "-name", "power", "-prune", "-o", "-name", "modalias", "-type", "f", "-print"];
        let out = std::process::Command::new("find").args(args).output().unwrap();
        assert!(out.status.success());
        let mut found = BTreeMap::new();
        for file in String::from_utf8(out.stdout).unwrap().lines() {
            let Ok(text) = std::fs::read(file) else { continue };
            if let Some(text) = modalias_text(&text) {
                *found.entry(String::from_utf8(text.to_vec()).unwrap()).or_default() += 1;
            }
        }
        found
    }

    fn found_by_walk(root: &CStr) -> (BTreeMap<String, usize>, WalkSummary) {
        let mut seen = BTreeMap::new();
        let summary = walk(root, &mut |modalias| {
            *seen.entry(String::from_utf8(modalias.to_vec()).unwrap()).or_default() += 1;
        });
        assert_eq!(summary.modaliases as usize, seen.values().sum::<usize>());
        (seen, summary)
    }

    #[test]
    fn walks_this_machines_sys_devices_like_find() {
        let (walked, summary) = found_by_walk(SYS_DEVICES);
        let found = found_by_find("/sys/devices");
        assert!(found.len() >= 5, "{} modaliases under /sys/devices", found.len());
        // Each device once: as often as find names a file (links are not followed).
        assert_eq!(walked, found);
        assert_eq!(summary.too_deep, 0);
        assert!(summary.dirs > 50, "{summary:?}");
        // What the coldplug set compares with: `find ... | xargs cat | sort -u`.
        let mut set = Modaliases::new();
        walk(SYS_DEVICES, &mut |m| {
            let _ = set.insert(m);
        });
        assert_eq!(set.len(), found.len());
    }

    #[test]
    fn walks_a_made_tree_without_following_links_and_within_depth() {
        let root = std::env::temp_dir().join(format!("keel-coldplug-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let dev = root.join("pci0000:00/0000:00:02.0");
        std::fs::create_dir_all(dev.join("virtio1/block/vda")).unwrap();
        std::fs::write(dev.join("modalias"), "pci:v00001AF4d00001042\n").unwrap();
        std::fs::write(dev.join("virtio1/modalias"), "virtio:d00000002v00001AF4\n").unwrap();
        std::fs::write(dev.join("virtio1/block/vda/modalias"), "").unwrap();
        // A link back up would loop, and one across would report a device twice.
        std::os::unix::fs::symlink("../..", dev.join("virtio1/subsystem")).unwrap();
        std::os::unix::fs::symlink("../../0000:00:02.0", dev.join("virtio1/device")).unwrap();
        std::os::unix::fs::symlink("modalias", dev.join("virtio1/modalias-link")).unwrap();
        // A `power` directory is attributes, never a device.
        std::fs::create_dir_all(dev.join("power")).unwrap();
        std::fs::write(dev.join("power/modalias"), "platform:not-a-device\n").unwrap();
        // Many siblings, so directories are resumed across getdents buffers.
        for i in 0..200 {
            std::fs::create_dir_all(root.join(format!("platform/dev{i:03}"))).unwrap();
            std::fs::write(root.join(format!("platform/dev{i:03}/modalias")), format!("platform:dev{i:03}\n")).unwrap();
        }
        // Deeper than MAX_DEPTH: the part below is counted, not walked.
        let mut deep = root.join("deep");
        for _ in 0..MAX_DEPTH + 2 {
            deep = deep.join("d");
        }
        std::fs::create_dir_all(&deep).unwrap();
        std::fs::write(deep.join("modalias"), "platform:too-deep\n").unwrap();
        let c_root = std::ffi::CString::new(root.to_str().unwrap()).unwrap();
        let (walked, summary) = found_by_walk(&c_root);
        let mut want = found_by_find(root.to_str().unwrap());
        want.remove("platform:too-deep");
        // A bound on directories ends the walk early, and says so.
        let mut seen = 0;
        let bounded = walk_bounded(&c_root, 20, &mut |_| seen += 1);
        std::fs::remove_dir_all(&root).unwrap();
        assert_eq!(walked, want);
        assert_eq!(walked.len(), 202);
        assert_eq!(walked.get("virtio:d00000002v00001AF4"), Some(&1));
        assert_eq!(summary.too_deep, 1);
        assert_eq!(summary.modaliases, 202);
        assert_eq!(summary.errors, 0);
        assert_eq!((bounded.dirs, bounded.too_deep), (20, 1), "{bounded:?}");
        assert!(seen < 20);
        // A root that is not there: nothing walked, one error.
        let none = walk(c"/nonexistent-keel-root", &mut |_| panic!());
        assert_eq!((none.dirs, none.errors), (0, 1));
    }
}
