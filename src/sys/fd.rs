//! The syscalls that make a descriptor, with rustix's arguments. rustix's own end in its
//! OwnedFd::from_raw_fd, whose `fd != -1` assertion is the one use of core::fmt's
//! assert_failed in PID 1; `owned_fd` converts a checked non-negative int instead, where it
//! folds away. Each is rustix's syscall with the same flags (LARGEFILE included).

use super::{arch, owned_fd};
use core::ffi::CStr;
use linux_raw_sys::general as k;
use rustix::event::epoll;
use rustix::fd::{AsRawFd, BorrowedFd, OwnedFd};
use rustix::fs::{Mode, OFlags, ResolveFlags};
use rustix::io::Errno;
use rustix::net::{AddressFamily, Protocol, SocketFlags, SocketType};
use rustix::time::{TimerfdClockId, TimerfdFlags};

fn raw(fd: BorrowedFd<'_>) -> usize {
    fd.as_raw_fd() as isize as usize // AT_FDCWD is negative
}

/// rustix::fs::open.
pub fn open(path: &CStr, flags: OFlags, mode: Mode) -> Result<OwnedFd, Errno> {
    openat(rustix::fs::CWD, path, flags, mode)
}

/// rustix::fs::openat.
#[inline(never)]
pub fn openat(dir: BorrowedFd<'_>, path: &CStr, flags: OFlags, mode: Mode) -> Result<OwnedFd, Errno> {
    let flags = flags | OFlags::LARGEFILE;
    // SAFETY: the path is a live NUL-terminated string; the rest are plain ints.
    owned_fd(unsafe {
        arch::syscall4(k::__NR_openat as usize, raw(dir), path.as_ptr() as usize, flags.bits() as usize, mode.bits() as usize)
    })
}

/// rustix::fs::openat2 (LARGEFILE only without PATH, which openat2 refuses with it).
pub fn openat2(dir: BorrowedFd<'_>, path: &CStr, flags: OFlags, mode: Mode, resolve: ResolveFlags) -> Result<OwnedFd, Errno> {
    let flags = if flags.contains(OFlags::PATH) { flags } else { flags | OFlags::LARGEFILE };
    let how = k::open_how { flags: u64::from(flags.bits()), mode: u64::from(mode.bits()), resolve: resolve.bits() };
    let size = core::mem::size_of::<k::open_how>();
    // SAFETY: the path is a live NUL-terminated string, `how` a live open_how of `size` bytes.
    owned_fd(unsafe {
        arch::syscall4(k::__NR_openat2 as usize, raw(dir), path.as_ptr() as usize, &how as *const k::open_how as usize, size)
    })
}

/// rustix::net::socket_with.
#[inline(never)] // smaller out of line (`just size`)
pub fn socket_with(family: AddressFamily, kind: SocketType, flags: SocketFlags, protocol: Option<Protocol>) -> Result<OwnedFd, Errno> {
    let protocol = protocol.map_or(0, |p| p.as_raw().get());
    // SAFETY: socket takes no pointers.
    owned_fd(unsafe {
        arch::syscall3(k::__NR_socket as usize, family.as_raw() as usize, (kind.as_raw() | flags.bits()) as usize, protocol as usize)
    })
}

/// rustix::net::accept_with (no peer address asked).
pub fn accept_with(listener: BorrowedFd<'_>, flags: SocketFlags) -> Result<OwnedFd, Errno> {
    // SAFETY: null address and length pointers: the kernel writes no address.
    owned_fd(unsafe { arch::syscall4(k::__NR_accept4 as usize, raw(listener), 0, 0, flags.bits() as usize) })
}

/// rustix::event::epoll::create.
pub fn epoll_create(flags: epoll::CreateFlags) -> Result<OwnedFd, Errno> {
    // SAFETY: epoll_create1 takes no pointers.
    owned_fd(unsafe { arch::syscall1(k::__NR_epoll_create1 as usize, flags.bits() as usize) })
}

/// rustix::time::timerfd_create.
pub fn timerfd_create(clock: TimerfdClockId, flags: TimerfdFlags) -> Result<OwnedFd, Errno> {
    // SAFETY: timerfd_create takes no pointers.
    owned_fd(unsafe { arch::syscall2(k::__NR_timerfd_create as usize, clock as u32 as usize, flags.bits() as usize) })
}

/// rustix::io::fcntl_dupfd_cloexec.
pub fn fcntl_dupfd_cloexec(fd: BorrowedFd<'_>, min: i32) -> Result<OwnedFd, Errno> {
    // SAFETY: F_DUPFD_CLOEXEC takes an int, not a pointer.
    owned_fd(unsafe { arch::syscall3(k::__NR_fcntl as usize, raw(fd), k::F_DUPFD_CLOEXEC as usize, min as usize) })
}

/// `owned.as_fd()` without rustix's `fd != -1` assertion at each use (its OwnedFd has no
/// niche telling LLVM it never holds -1, so every as_fd checked and kept a panic call).
#[inline(always)]
pub fn borrow(owned: &OwnedFd) -> BorrowedFd<'_> {
    let raw = owned.as_raw_fd();
    // SAFETY: an OwnedFd never holds -1: rustix's from_raw_fd asserts it, owned_fd checks it.
    unsafe { core::hint::assert_unchecked(raw != -1) };
    rustix::fd::AsFd::as_fd(owned)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustix::fd::AsFd;

    #[test]
    fn each_makes_a_working_descriptor_and_errors_are_errnos() {
        let dir = open(c"/proc/self", OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty()).unwrap();
        let status = openat(dir.as_fd(), c"status", OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty()).unwrap();
        let mut buf = [0u8; 5];
        assert_eq!(rustix::io::read(&status, &mut buf), Ok(5));
        assert_eq!(&buf, b"Name:");
        assert_eq!(openat(dir.as_fd(), c"no-such", OFlags::RDONLY, Mode::empty()).err(), Some(Errno::NOENT));
        assert_eq!(open(c"/proc/self/status", OFlags::RDONLY | OFlags::DIRECTORY, Mode::empty()).err(), Some(Errno::NOTDIR));
        let fd = openat2(dir.as_fd(), c"/status", OFlags::PATH | OFlags::CLOEXEC, Mode::empty(), ResolveFlags::IN_ROOT);
        match fd {
            Ok(fd) => assert!(rustix::fs::fstat(&fd).is_ok()),
            Err(e) => assert_eq!(e, Errno::NOSYS, "openat2 before Linux 5.6"),
        }
        let flags = rustix::io::fcntl_getfd(&status).unwrap();
        assert!(flags.contains(rustix::io::FdFlags::CLOEXEC));

        assert_eq!(borrow(&status).as_raw_fd(), status.as_raw_fd());
        let dup = fcntl_dupfd_cloexec(borrow(&status), 100).unwrap();
        assert!(dup.as_raw_fd() >= 100);
        assert!(rustix::io::fcntl_getfd(&dup).unwrap().contains(rustix::io::FdFlags::CLOEXEC));

        let epoll = epoll_create(epoll::CreateFlags::CLOEXEC).unwrap();
        assert_eq!(epoll::wait(&epoll, &mut [epoll::Event { flags: epoll::EventFlags::empty(), data: epoll::EventData::new_u64(0) }; 1], Some(&rustix::time::Timespec { tv_sec: 0, tv_nsec: 0 })), Ok(0));
        let timer = timerfd_create(TimerfdClockId::Boottime, TimerfdFlags::CLOEXEC | TimerfdFlags::NONBLOCK).unwrap();
        assert_eq!(rustix::io::read(&timer, &mut [0u8; 8]), Err(Errno::AGAIN), "not armed, non-blocking");

        let listener = socket_with(AddressFamily::UNIX, SocketType::STREAM, SocketFlags::CLOEXEC | SocketFlags::NONBLOCK, None).unwrap();
        let path = format!("/tmp/keel-sys-fd-{}\0", std::process::id());
        let path = CStr::from_bytes_with_nul(path.as_bytes()).unwrap();
        let _ = rustix::fs::unlink(path);
        crate::sys::bind_unix(listener.as_fd(), path).unwrap();
        rustix::net::listen(&listener, 1).unwrap();
        assert_eq!(accept_with(listener.as_fd(), SocketFlags::CLOEXEC).err(), Some(Errno::AGAIN), "no one waiting");
        let client = socket_with(AddressFamily::UNIX, SocketType::STREAM, SocketFlags::CLOEXEC, None).unwrap();
        let addr = rustix::net::SocketAddrUnix::new(path).unwrap();
        rustix::net::connect(&client, &addr).unwrap();
        let peer = accept_with(listener.as_fd(), SocketFlags::CLOEXEC).unwrap();
        assert_eq!(rustix::io::write(&client, b"hi"), Ok(2));
        let mut got = [0u8; 2];
        assert_eq!(rustix::io::read(&peer, &mut got), Ok(2));
        assert_eq!(&got, b"hi");
        let _ = rustix::fs::unlink(path);
    }
}
