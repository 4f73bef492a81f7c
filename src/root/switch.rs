//! switch_root, as util-linux's switch_root(8) does it: the new root's init is checked
//! first (nothing is touched if it is not there), /dev, /proc, /sys and /run move into the
//! new root (MS_MOVE; one the new root has no directory for is detached), the new root
//! moves onto `/` (chdir, MS_MOVE, chroot .), the initramfs is deleted through a
//! descriptor kept on it (`initramfs::remove_tree`), and init is exec'd as PID 1 with
//! keel's arguments and environment (the kernel's), an empty signal mask, and only fds 0-2
//! open.

use super::initramfs::{self, Freed};
use crate::log::say::{say, Part::{E, N, T}};
use crate::file::c_path;
use crate::sys::{self, Args};
use core::ffi::CStr;
use rustix::fs::{FileType, Mode, OFlags, ResolveFlags};
use rustix::io::Errno;
use rustix::mount::{mount_move, unmount, UnmountFlags};

/// The API filesystems keel mounted, moved along (their submounts with them).
const MOVED: [&CStr; 4] = [c"/dev", c"/proc", c"/sys", c"/run"];

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Failure {
    /// Nothing was changed: keel is still on the initramfs, the new root still mounted.
    Before(&'static str, Errno),
    /// `/` is the new root and the initramfs is gone: exec of init failed.
    Exec(Errno),
}

/// Switch to the filesystem mounted at `new_root` and exec `init` there. Returns only on
/// failure.
pub fn switch_root(new_root: &CStr, init: &CStr, args: &Args) -> Failure {
    if let Err(e) = check_init(new_root, init) {
        return Failure::Before("no executable init on the new root", e);
    }
    let old_root = match crate::sys::fd::open(c"/", OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty()) {
        Ok(fd) => fd,
        Err(e) => return Failure::Before("open /", e),
    };
    let old_dev = rustix::fs::fstat(&old_root).map_or(0, |st| st.st_dev);
    if let Err(e) = rustix::process::chdir(new_root) {
        return Failure::Before("chdir to the new root", e);
    }
    let mut path = [0u8; 64];
    let mut moved = [false; MOVED.len()];
    for (m, done) in MOVED.iter().zip(moved.iter_mut()) {
        let Some(target) = c_path(&[new_root.to_bytes(), m.to_bytes()], &mut path) else { continue };
        match mount_move(*m, target) {
            Ok(()) => *done = true,
            Err(e) => {
                say(b"root: % not moved to the new root (%): detached", &[T(m.to_bytes()), E(e)]);
                let _ = unmount(*m, UnmountFlags::DETACH);
            }
        }
    }
    if let Err(e) = mount_move(c".", c"/").and_then(|()| rustix::process::chroot(c".")) {
        // Put back what moved, so the emergency shell has its /dev and /proc.
        for (m, _) in MOVED.iter().zip(moved).filter(|(_, done)| *done) {
            if let Some(from) = c_path(&[new_root.to_bytes(), m.to_bytes()], &mut path) {
                let _ = mount_move(from, *m);
            }
        }
        let _ = rustix::process::chdir(c"/");
        return Failure::Before("move the new root onto /", e);
    }
    let _ = rustix::process::chdir(c"/");
    let mut freed = Freed::default();
    initramfs::remove_tree(&old_root, old_dev, 0, &mut freed);
    drop(old_root);
    let freed_line = [N(freed.entries.into()), N(freed.bytes >> 10), N(freed.kept.into()), T(init.to_bytes())];
    say(b"root: initramfs freed: % entries, % KiB (% left); exec %", &freed_line);
    Failure::Exec(exec_init(init, args))
}

/// `init` exists on the new root, resolved as if the new root were `/` (an absolute symlink
/// such as /sbin/init -> /lib/systemd/systemd points into it, not into the initramfs), and
/// is an executable file.
#[inline(never)] // smaller out of line (measured)
fn check_init(new_root: &CStr, init: &CStr) -> Result<(), Errno> {
    let root = crate::sys::fd::open(new_root, OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())?;
    let fd = crate::sys::fd::openat2(rustix::fd::AsFd::as_fd(&root), init, OFlags::PATH | OFlags::CLOEXEC, Mode::empty(), ResolveFlags::IN_ROOT)?;
    let st = rustix::fs::fstat(&fd)?;
    match FileType::from_raw_mode(st.st_mode) {
        FileType::RegularFile if st.st_mode & 0o111 != 0 => Ok(()),
        FileType::RegularFile => Err(Errno::ACCESS),
        _ => Err(Errno::NOEXEC),
    }
}

/// exec `init` as PID 1: argv[0] is its path, the rest is keel's (the kernel's words for
/// init); nothing of keel's blocked signals or descriptors beyond 0-2 goes along.
#[inline(never)] // smaller out of line (measured)
fn exec_init(init: &CStr, args: &Args) -> Errno {
    let mut argv = heapless::Vec::<*const u8, 32>::new();
    let _ = argv.push(init.as_ptr().cast());
    // keel's argv after argv[0], its NULL included (dropped if too many: the NULL stays).
    let rest = sys::argv_from(args, 1);
    for &arg in rest.iter().take(argv.capacity() - 2) {
        let _ = argv.push(arg);
    }
    if argv.last().is_some_and(|p| !p.is_null()) {
        let _ = argv.push(core::ptr::null());
    }
    let blocked = match sys::set_signal_mask_to(sys::SigSet(0)) {
        Ok(old) => old,
        Err(e) => return e,
    };
    let e = match sys::cloexec_from(3) {
        Ok(()) => sys::execve(init, &argv, sys::envp(args)),
        Err(e) => e,
    };
    // Still PID 1: its signals go back to the signalfd.
    let _ = sys::set_signal_mask_to(blocked);
    e
}
