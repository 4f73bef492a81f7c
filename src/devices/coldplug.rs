//! Coldplug: the devices already there at boot. The kernel announced them before PID 1
//! could listen, so instead of replaying their uevents (udevadm trigger) keel reads what
//! a replay would carry: each device directory's `modalias` file under /sys/devices.
//!
//! The walk holds no heap and no path per level: a fixed stack of directory fds (each
//! level's position kept as the getdents cookie of the entry after the child being
//! walked, so one dirent buffer serves every level), a bounded depth, and one path buffer
//! for reporting. Symlinks (`subsystem`, `driver`, `device`, `firmware_node`...) are
//! never followed, so every device is seen once, under its real place in the tree.
//!
//! Modules loaded for these devices can make new devices (a virtio_pci device's virtio
//! children, an xhci controller's USB devices): those come as uevents (`uevent`), or
//! from walking again.

use super::alias::{self, AliasMatcher, FOUND_BYTES, MAX_FOUND};
use super::{ByteSet, SetError};
use core::ffi::CStr;
use core::mem::MaybeUninit;
use rustix::fd::{AsFd, BorrowedFd, OwnedFd};
use rustix::fs::{FileType, Mode, OFlags};
use rustix::io::Errno;

pub const SYS_DEVICES: &CStr = c"/sys/devices";
/// Deepest directory walked below the root; deeper ones are counted and skipped (a PC's
/// deepest devices, USB behind hubs behind a PCI bridge, are about 12 down).
pub const MAX_DEPTH: usize = 32;
/// Longest path below the root reported (sysfs device paths are rarely over 200 bytes).
pub const MAX_DEVPATH: usize = 512;
/// Most directories one walk opens: a bound on the work whatever the tree does (a PC has
/// 5 to 20 thousand under /sys/devices).
pub const MAX_DIRS: u32 = 1 << 18;
/// A sysfs attribute is at most a page.
pub const MAX_MODALIAS: usize = 4096;
/// Distinct modaliases kept, and their bytes (a cpu modalias is 500 to 1000 bytes, most
/// others under 60: a VM has about 50, a laptop 150 to 250).
pub const MAX_DEVICES: usize = 256;
pub const MODALIAS_BYTES: usize = 16 * 1024;
const DIRENT_BUF: usize = 2048;
const NAME_MAX: usize = 255;

/// The path of the directory being walked, below the root: `/pci0000:00/0000:00:02.0`.
pub struct DevPath<const N: usize = MAX_DEVPATH> {
    buf: heapless::Vec<u8, N>,
}

impl<const N: usize> Default for DevPath<N> {
    fn default() -> Self {
        DevPath { buf: heapless::Vec::new() }
    }
}

impl<const N: usize> DevPath<N> {
    /// Append `/name`; returns the length before (for `truncate`), None if it does not fit.
    pub fn push(&mut self, name: &[u8]) -> Option<usize> {
        let before = self.buf.len();
        if N - before < name.len() + 1 {
            return None;
        }
        let _ = self.buf.push(b'/');
        let _ = self.buf.extend_from_slice(name);
        Some(before)
    }

    pub fn truncate(&mut self, len: usize) {
        self.buf.truncate(len);
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.buf
    }
}

/// A modalias as read from sysfs, without its newline; None if empty or holding control
/// bytes.
pub fn modalias_text(raw: &[u8]) -> Option<&[u8]> {
    let text = raw.strip_suffix(b"\n").unwrap_or(raw);
    (!text.is_empty() && !text.iter().any(|b| b.is_ascii_control())).then_some(text)
}

/// The distinct modaliases of the devices found, kmod-normalized (`alias::normalize`), in
/// the order found.
#[derive(Default)]
pub struct Modaliases {
    set: ByteSet<MAX_DEVICES, MODALIAS_BYTES>,
}

impl Modaliases {
    pub const fn new() -> Self {
        Modaliases { set: ByteSet::new() }
    }

    /// Add one `modalias` file's content: Ok(true) if new, Ok(false) if known, Invalid
    /// for one kmod would refuse to look up, Full past the capacity.
    pub fn insert(&mut self, raw: &[u8]) -> Result<bool, SetError> {
        let text = modalias_text(raw).ok_or(SetError::Invalid)?;
        let mut buf = [0u8; MAX_MODALIAS];
        let normalized = alias::normalize(text, &mut buf).ok_or(SetError::Invalid)?;
        self.set.insert(normalized)
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
}

/// What a walk saw; every count past `modaliases` is something left out.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct WalkSummary {
    pub dirs: u32,
    pub modaliases: u32,
    /// Directories below `MAX_DEPTH` not walked (and 1 if `MAX_DIRS` ended the walk).
    pub too_deep: u32,
    /// Directories whose path exceeds `MAX_DEVPATH`, not walked.
    pub too_long: u32,
    /// Directories or files that could not be opened or read (a device going away).
    pub errors: u32,
}

struct Level {
    fd: OwnedFd,
    /// Where to go on after the child being walked: its getdents cookie and inode.
    resume: Option<(u64, u64)>,
    /// `DevPath` length before this level's name.
    path_len: usize,
}

fn open_dir(at: BorrowedFd<'_>, name: &CStr) -> Result<OwnedFd, Errno> {
    rustix::fs::openat(at, name, OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC, Mode::empty())
}

/// `name` in `dir` into `buf`, until EOF or the buffer is full; its length.
fn read_at(dir: BorrowedFd<'_>, name: &CStr, buf: &mut [u8]) -> Result<usize, Errno> {
    let fd = rustix::fs::openat(dir, name, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty())?;
    let mut len = 0;
    while len < buf.len() {
        match crate::boot::modules::read_retry(&fd, &mut buf[len..])? {
            0 => break,
            n => len += n,
        }
    }
    Ok(len)
}

/// What `name` in `dir` is; getdents says except on file systems that do not (DT_UNKNOWN).
fn type_of(dir: BorrowedFd<'_>, name: &CStr, listed: FileType) -> FileType {
    if listed != FileType::Unknown {
        return listed;
    }
    rustix::fs::statat(dir, name, rustix::fs::AtFlags::SYMLINK_NOFOLLOW)
        .map_or(FileType::Unknown, |st| FileType::from_raw_mode(st.st_mode))
}

/// Walk `root` (normally `SYS_DEVICES`); `on_modalias(devpath below root, modalias)` for
/// each device directory with a readable, non-empty `modalias` file.
pub fn walk(root: &CStr, on_modalias: &mut dyn FnMut(&[u8], &[u8])) -> WalkSummary {
    walk_bounded(root, MAX_DIRS, on_modalias)
}

/// `walk` that stops after `max_dirs` directories opened or passed over: whatever a file
/// system's getdents cookies do, it ends.
fn walk_bounded(root: &CStr, max_dirs: u32, on_modalias: &mut dyn FnMut(&[u8], &[u8])) -> WalkSummary {
    let mut summary = WalkSummary::default();
    let mut stack: heapless::Vec<Level, MAX_DEPTH> = heapless::Vec::new();
    match open_dir(rustix::fs::CWD, root) {
        Ok(fd) => {
            summary.dirs = 1;
            let _ = stack.push(Level { fd, resume: None, path_len: 0 });
        }
        Err(_) => summary.errors += 1,
    }
    let mut path: DevPath = DevPath::default();
    let mut dirents = [MaybeUninit::<u8>::uninit(); DIRENT_BUF];
    let mut value = [0u8; MAX_MODALIAS];
    let mut name_buf = [0u8; NAME_MAX + 1];
    while let Some(top) = stack.last_mut() {
        // Every pass opens, passes over or leaves a directory, so this bounds them all.
        if summary.dirs + summary.too_deep + summary.too_long + summary.errors >= max_dirs {
            summary.too_deep += 1;
            break;
        }
        let mut skip_ino = None;
        if let Some((cookie, ino)) = top.resume.take() {
            if rustix::fs::seek(&top.fd, rustix::fs::SeekFrom::Start(cookie)).is_err() {
                summary.errors += 1;
                let level = stack.pop();
                path.truncate(level.map_or(0, |l| l.path_len));
                continue;
            }
            skip_ino = Some(ino);
        }
        // The next subdirectory to walk: its name (as a C string in name_buf), cookie, inode.
        let mut child: Option<(usize, u64, u64)> = None;
        let mut entries = rustix::fs::RawDir::new(top.fd.as_fd(), &mut dirents);
        while let Some(entry) = entries.next() {
            let Ok(entry) = entry else {
                summary.errors += 1;
                break;
            };
            // A cookie shared by two names could bring back the child just walked.
            if skip_ino.take() == Some(entry.ino()) {
                continue;
            }
            let name = entry.file_name();
            let bytes = name.to_bytes();
            if bytes == b"." || bytes == b".." || bytes.len() > NAME_MAX {
                continue;
            }
            match type_of(top.fd.as_fd(), name, entry.file_type()) {
                FileType::Directory => {
                    name_buf[..bytes.len()].copy_from_slice(bytes);
                    name_buf[bytes.len()] = 0;
                    child = Some((bytes.len(), entry.next_entry_cookie(), entry.ino()));
                    break;
                }
                FileType::RegularFile if bytes == b"modalias" => match read_at(top.fd.as_fd(), name, &mut value) {
                    Ok(len) => {
                        if let Some(text) = modalias_text(&value[..len]) {
                            summary.modaliases += 1;
                            on_modalias(path.as_bytes(), text);
                        }
                    }
                    Err(_) => summary.errors += 1,
                },
                _ => {}
            }
        }
        let Some((len, cookie, ino)) = child else {
            let level = stack.pop();
            path.truncate(level.map_or(0, |l| l.path_len));
            continue;
        };
        top.resume = Some((cookie, ino));
        let name = CStr::from_bytes_with_nul(&name_buf[..=len]).unwrap_or(c"");
        if stack.is_full() {
            summary.too_deep += 1;
            continue;
        }
        let Some(path_len) = path.push(name.to_bytes()) else {
            summary.too_long += 1;
            continue;
        };
        let opened = stack.last().map(|parent| open_dir(parent.fd.as_fd(), name));
        match opened {
            Some(Ok(fd)) => {
                summary.dirs += 1;
                let _ = stack.push(Level { fd, resume: None, path_len });
            }
            _ => {
                summary.errors += 1;
                path.truncate(path_len);
            }
        }
    }
    summary
}

/// Every module the devices under `sys_devices` need, by `modules_dir`/modules.alias
/// (dir as for `modules::load`); `on_match(modalias, module)` once per module found.
pub struct Needed {
    pub walk: WalkSummary,
    /// Distinct modaliases found.
    pub devices: usize,
    /// Modaliases left out: more than `MAX_DEVICES` or `MODALIAS_BYTES`, or invalid.
    pub devices_left_out: u32,
    pub aliases: alias::Summary,
    pub modules: ByteSet<MAX_FOUND, FOUND_BYTES>,
}

pub fn needed_modules(sys_devices: &CStr, modules_dir: &[u8], on_match: &mut dyn FnMut(&[u8], &[u8])) -> Result<Needed, Errno> {
    let mut found = Modaliases::new();
    let mut left_out = 0;
    let walked = walk(sys_devices, &mut |_, modalias| {
        if found.insert(modalias).is_err() {
            left_out += 1;
        }
    });
    let mut refs: heapless::Vec<&[u8], MAX_DEVICES> = heapless::Vec::new();
    for m in found.iter() {
        let _ = refs.push(m);
    }
    let mut matcher = AliasMatcher::new(&refs);
    alias::match_file(modules_dir, &mut matcher, on_match)?;
    Ok(Needed { walk: walked, devices: found.len(), devices_left_out: left_out, aliases: matcher.summary, modules: matcher.into_modules() })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn builds_paths_within_capacity() {
        let mut p: DevPath<16> = DevPath::default();
        assert_eq!(p.push(b"pci0000:00"), Some(0));
        assert_eq!(p.as_bytes(), b"/pci0000:00");
        assert_eq!(p.push(b"0000"), Some(11));
        assert_eq!(p.as_bytes(), b"/pci0000:00/0000");
        // Full: nothing is cut, nothing changes.
        assert_eq!(p.push(b"x"), None);
        assert_eq!(p.as_bytes(), b"/pci0000:00/0000");
        p.truncate(11);
        assert_eq!(p.push(b"abc"), Some(11));
        assert_eq!(p.as_bytes(), b"/pci0000:00/abc");
        p.truncate(0);
        assert_eq!(p.as_bytes(), b"");
    }

    #[test]
    fn modaliases_are_trimmed_normalized_and_deduped() {
        let mut m = Modaliases::new();
        assert_eq!(m.insert(b"virtio:d00000001v00001AF4\n"), Ok(true));
        assert_eq!(m.insert(b"virtio:d00000001v00001AF4"), Ok(false));
        assert_eq!(m.insert(b"platform:reg-dummy\n"), Ok(true));
        assert_eq!(m.insert(b"platform:reg_dummy\n"), Ok(false));
        for bad in [&b""[..], b"\n", b"a\nb\n", b"a\0b", b"acpi:]x"] {
            assert_eq!(m.insert(bad), Err(SetError::Invalid), "{:?}", String::from_utf8_lossy(bad));
        }
        assert_eq!(m.iter().collect::<Vec<_>>(), [&b"virtio:d00000001v00001AF4"[..], b"platform:reg_dummy"]);
        for i in 0..MAX_DEVICES {
            let _ = m.insert(format!("platform:dev{i}").as_bytes());
        }
        assert_eq!(m.len(), MAX_DEVICES);
        assert_eq!(m.insert(b"platform:one-more"), Err(SetError::Full));
    }

    /// (devpath, modalias) of every `modalias` file under `root`, as find(1) sees them.
    fn found_by_find(root: &str) -> BTreeSet<(String, String)> {
        let out = std::process::Command::new("find").args([root, "-name", "modalias", "-type", "f"]).output().unwrap();
        assert!(out.status.success());
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .filter_map(|file| {
                let text = std::fs::read(file).ok()?;
                let text = modalias_text(&text)?;
                let dir = file.strip_prefix(root)?.strip_suffix("/modalias")?;
                Some((dir.to_string(), String::from_utf8(text.to_vec()).unwrap()))
            })
            .collect()
    }

    fn found_by_walk(root: &CStr) -> (BTreeSet<(String, String)>, WalkSummary) {
        let mut seen = BTreeSet::new();
        let mut count = 0;
        let summary = walk(root, &mut |path, modalias| {
            count += 1;
            seen.insert((String::from_utf8(path.to_vec()).unwrap(), String::from_utf8(modalias.to_vec()).unwrap()));
        });
        assert_eq!(count, seen.len(), "a device reported twice");
        (seen, summary)
    }

    #[test]
    fn walks_this_machines_sys_devices_like_find() {
        let (walked, summary) = found_by_walk(SYS_DEVICES);
        let found = found_by_find("/sys/devices");
        assert!(found.len() >= 5, "{} modalias files under /sys/devices", found.len());
        assert_eq!(walked, found);
        assert_eq!((summary.too_deep, summary.too_long), (0, 0));
        assert!(summary.dirs > 50, "{summary:?}");
        // What the coldplug set compares with: `find ... | xargs cat | sort -u`.
        let mut set = Modaliases::new();
        walk(SYS_DEVICES, &mut |_, m| {
            let _ = set.insert(m);
        });
        let distinct: BTreeSet<&str> = found.iter().map(|(_, m)| m.as_str()).collect();
        assert_eq!(set.len(), distinct.len());
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
        want.retain(|(_, m)| m != "platform:too-deep");
        // A bound on directories ends the walk early, and says so.
        let mut seen = 0;
        let bounded = walk_bounded(&c_root, 20, &mut |_, _| seen += 1);
        std::fs::remove_dir_all(&root).unwrap();
        assert_eq!(walked, want);
        assert_eq!(walked.len(), 202);
        assert!(walked.contains(&("/pci0000:00/0000:00:02.0/virtio1".into(), "virtio:d00000002v00001AF4".into())));
        assert_eq!(summary.too_deep, 1);
        assert_eq!(summary.modaliases, 202);
        assert_eq!(summary.errors, 0);
        assert_eq!((bounded.dirs, bounded.too_deep), (20, 1), "{bounded:?}");
        assert!(seen < 20);
        // A root that is not there: nothing walked, one error.
        let none = walk(c"/nonexistent-keel-root", &mut |_, _| panic!());
        assert_eq!((none.dirs, none.errors), (0, 1));
    }
}
