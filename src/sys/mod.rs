//! The only module with `unsafe`: raw syscalls rustix does not offer (signalfd4,
//! rt_sigprocmask, fork, execve, exit_group, kill(-1), sigaction), program start
//! and the freestanding memory routines. Everything else in keel is safe code over these
//! wrappers and rustix.
//!
//! `fork` is crate-private and exists only in the PID 1 build, so a threaded program that
//! links the library cannot call it:
//! ```compile_fail
//! let _ = keel::sys::fork();
//! ```
#![allow(unsafe_code)]

#[cfg_attr(target_arch = "x86_64", path = "x86_64.rs")]
#[cfg_attr(target_arch = "aarch64", path = "aarch64.rs")]
mod arch;

pub mod fd;
mod netdev;
mod netlink;
#[cfg(all(not(test), feature = "rt"))]
mod start;
pub use netdev::interface_up;
pub use netlink::recv_netlink;
#[cfg(all(not(test), feature = "rt"))]
pub use start::Args;

use linux_raw_sys::general as k;
use rustix::fd::{BorrowedFd, FromRawFd, OwnedFd};
use rustix::io::Errno;

/// A kernel signal set (`sigset_t` as the kernel sees it: one bit per signal, 64 bits).
#[derive(Copy, Clone, Default, PartialEq, Eq, Debug)]
pub struct SigSet(pub u64);

impl SigSet {
    pub const fn with(self, signo: u32) -> Self {
        SigSet(self.0 | 1u64 << (signo - 1))
    }
    pub const fn contains(self, signo: u32) -> bool {
        signo >= 1 && signo <= 64 && self.0 & (1u64 << (signo - 1)) != 0
    }
}

fn check(ret: isize) -> Result<usize, Errno> {
    if (-4095..0).contains(&ret) {
        Err(Errno::from_raw_os_error(-ret as i32))
    } else {
        Ok(ret as usize)
    }
}

/// The console / standard error descriptor.
pub fn stderr() -> BorrowedFd<'static> {
    // SAFETY: fd 2 is only ever borrowed, never closed by keel; if it is not open the
    // write fails with EBADF, which callers ignore.
    unsafe { BorrowedFd::borrow_raw(2) }
}

/// Block `set` (SIG_BLOCK) and return the previous mask.
pub fn block_signals(set: SigSet) -> Result<SigSet, Errno> {
    set_signal_mask(k::SIG_BLOCK, set)
}

/// Replace the mask (SIG_SETMASK), e.g. in a child before exec.
pub fn set_signal_mask_to(set: SigSet) -> Result<SigSet, Errno> {
    set_signal_mask(k::SIG_SETMASK, set)
}

fn set_signal_mask(how: u32, set: SigSet) -> Result<SigSet, Errno> {
    let mut old = 0u64;
    // SAFETY: both pointers are to live u64s of the kernel's sigset size (8 bytes).
    let ret = unsafe {
        arch::syscall4(
            k::__NR_rt_sigprocmask as usize,
            how as usize,
            &set.0 as *const u64 as usize,
            &mut old as *mut u64 as usize,
            8,
        )
    };
    check(ret).map(|_| SigSet(old))
}

/// signalfd4(-1, set, SFD_CLOEXEC | SFD_NONBLOCK): rustix has no signalfd.
pub fn signalfd(set: SigSet) -> Result<OwnedFd, Errno> {
    let flags = k::O_CLOEXEC | k::O_NONBLOCK; // SFD_* share O_* values
    // SAFETY: the set pointer is a live u64 of the kernel's sigset size.
    let ret = unsafe {
        arch::syscall4(
            k::__NR_signalfd4 as usize,
            usize::MAX, // -1: a new fd
            &set.0 as *const u64 as usize,
            8,
            flags as usize,
        )
    };
    owned_fd(ret)
}

/// A syscall's new descriptor, owned. It is a non-negative int, which the conversion checks,
/// so OwnedFd::from_raw_fd's `fd != -1` assertion (core::fmt's assert_failed) folds away.
pub(crate) fn owned_fd(ret: isize) -> Result<OwnedFd, Errno> {
    let fd = i32::try_from(check(ret)?).map_err(|_| Errno::BADF)?;
    // SAFETY: on success the kernel returned a new descriptor that we now own.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// The fields keel reads from a `struct signalfd_siginfo` (128 bytes).
#[derive(Copy, Clone, Debug)]
pub struct SignalInfo {
    pub signo: u32,
    /// `si_code`: who sent it; 0 or less from a process (SI_USER, SI_QUEUE, SI_TKILL, ...),
    /// above 0 from the kernel (SI_KERNEL, or a fault's own code such as SEGV_MAPERR).
    pub code: i32,
    pub sender: i32,
}

impl SignalInfo {
    pub const WIRE_LEN: usize = 128;

    pub fn from_wire(bytes: &[u8; Self::WIRE_LEN]) -> Self {
        let word = |at: usize| u32::from_ne_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]);
        // ssi_signo at 0, ssi_code at 8, ssi_pid at 12 (linux/signalfd.h).
        SignalInfo { signo: word(0), code: word(8) as i32, sender: word(12) as i32 }
    }
}

/// clock_gettime(CLOCK_BOOTTIME) in nanoseconds, by the syscall itself: rustix's goes
/// through the vDSO, whose ELF lookup is ~1 KB of code (and panics on a malformed vDSO);
/// PID 1 reads the clock a few times per wakeup, where a syscall's cost does not matter.
#[inline(never)] // Instant::now is in 17 places: -688 bytes out of line
pub fn boottime_nanos() -> u64 {
    let [sec, nsec] = clock_gettime(7); // CLOCK_BOOTTIME
    (sec as u64).wrapping_mul(1_000_000_000).wrapping_add(nsec as u64)
}

/// Whole seconds of CLOCK_REALTIME (0 if negative), by the syscall as `boottime_nanos`.
pub fn realtime_secs() -> u64 {
    clock_gettime(0)[0].max(0) as u64 // CLOCK_REALTIME
}

/// struct timespec { tv_sec, tv_nsec } of `clock`: two 64-bit words on x86_64 and aarch64.
/// It cannot fail (a valid clock and buffer); zeros would read as "just booted" / 1970.
fn clock_gettime(clock: usize) -> [i64; 2] {
    let mut ts = [0i64; 2];
    // SAFETY: the pointer is to a live 16-byte timespec the kernel fills.
    let ret = unsafe { arch::syscall2(k::__NR_clock_gettime as usize, clock, ts.as_mut_ptr() as usize) };
    if check(ret).is_err() {
        return [0; 2];
    }
    ts
}

/// getdents64(fd, buf): the bytes of whole records written (at most `buf.len()`), 0 at the
/// end. rustix has it only inside RawDir; `crate::dir` reads the records.
pub fn getdents64(fd: BorrowedFd<'_>, buf: &mut [u8]) -> Result<usize, Errno> {
    use rustix::fd::AsRawFd;
    // SAFETY: the kernel writes at most `buf.len()` bytes into the live buffer.
    let ret = unsafe { arch::syscall3(k::__NR_getdents64 as usize, fd.as_raw_fd() as usize, buf.as_mut_ptr() as usize, buf.len()) };
    check(ret).map(|n| n.min(buf.len()))
}

/// kill(pid, sig) with any pid, -1 (every process but us and init) included.
pub fn kill(pid: i32, signo: u32) -> Result<(), Errno> {
    // SAFETY: kill takes no pointers.
    check(unsafe { arch::syscall2(k::__NR_kill as usize, pid as isize as usize, signo as usize) }).map(drop)
}

/// Terminate the process (all threads) with `code`.
pub fn exit(code: i32) -> ! {
    // SAFETY: exit_group takes no pointers and does not return.
    unsafe { arch::syscall1(k::__NR_exit_group as usize, code as isize as usize) };
    unreachable_loop()
}

/// dup3(fd, target, 0): `target` becomes a copy of `fd` without close-on-exec. Used in a
/// child before exec, where the numbers matter and nothing owns them.
pub fn dup_to(fd: BorrowedFd, target: i32) -> Result<(), Errno> {
    use rustix::fd::AsRawFd;
    if fd.as_raw_fd() == target {
        // dup3 refuses equal numbers; just make sure it survives exec.
        return rustix::io::fcntl_setfd(fd, rustix::io::FdFlags::empty());
    }
    // SAFETY: dup3 takes no pointers; `target` is replaced atomically, as the caller wants.
    let ret = unsafe { arch::syscall3(k::__NR_dup3 as usize, fd.as_raw_fd() as usize, target as usize, 0) };
    check(ret).map(drop)
}

/// close_range(first, ~0, CLOSE_RANGE_CLOEXEC): every descriptor from `first` on is closed
/// by the next exec (switch_root's init gets fds 0-2 only), none is closed now. rustix's
/// close_range is unsafe for the closing form; this one closes nothing.
pub fn cloexec_from(first: u32) -> Result<(), Errno> {
    const CLOSE_RANGE_CLOEXEC: usize = 1 << 2;
    // SAFETY: with CLOSE_RANGE_CLOEXEC the kernel only sets a flag on open descriptors: no
    // descriptor is closed, so no OwnedFd is invalidated; no pointers are passed.
    let ret = unsafe { arch::syscall3(k::__NR_close_range as usize, first as usize, u32::MAX as usize, CLOSE_RANGE_CLOEXEC) };
    check(ret).map(drop)
}

/// A `static` handed out once, as `&'static mut`: PID 1's tables that live as long as it
/// does, in .bss (pages nobody writes cost no memory). Later calls get None.
macro_rules! once_storage {
    ($(#[$meta:meta])* $vis:vis fn $name:ident() -> $ty:ty = $init:expr;) => {
        $(#[$meta])*
        $vis fn $name() -> Option<&'static mut $ty> {
            use core::sync::atomic::{AtomicBool, Ordering};
            static mut STORAGE: $ty = $init;
            // True at start, so the flag is in .data, whose page is resident anyway, and
            // not the only byte written in a .bss page next to some big table.
            static FREE: AtomicBool = AtomicBool::new(true);
            if !FREE.swap(false, Ordering::AcqRel) {
                return None;
            }
            // SAFETY: the swap above lets exactly one caller through, so this is the only
            // reference to STORAGE for the life of the process.
            Some(unsafe { &mut *core::ptr::addr_of_mut!(STORAGE) })
        }
    };
}

once_storage! {
    /// The services' output rings: one pool, a window per service (services::ring).
    pub fn ring_pool() -> [u8; keel_config::db::MAX_RING_TOTAL] = [0; keel_config::db::MAX_RING_TOTAL];
}

once_storage! {
    /// The compiled configuration read at boot (one byte more than the largest accepted, so
    /// a longer file is seen as such).
    pub fn config_file() -> [u8; keel_config::db::MAX_LEN + 1] = [0; keel_config::db::MAX_LEN + 1];
}

once_storage! {
    /// The service table of the configuration that runs, decoded once at boot.
    pub fn service_table() -> heapless::Vec<keel_config::spec::Spec<'static>, { keel_config::db::MAX_SERVICES }> = heapless::Vec::new();
}

once_storage! {
    /// The mounts table of the configuration that runs, decoded once at boot.
    pub fn mount_table() -> heapless::Vec<keel_config::spec::Mount<'static>, { keel_config::db::MAX_MOUNTS }> = heapless::Vec::new();
}

#[cfg(all(not(test), feature = "rt"))]
once_storage! {
    /// The supervisor's service records and descriptors (services::supervisor::Tables).
    pub fn supervisor_storage() -> crate::services::supervisor::Tables = crate::services::supervisor::Tables::EMPTY;
}

/// The services' output rings (see `ring_pool`); later calls get an empty slice.
pub fn ring_storage() -> &'static mut [u8] {
    match ring_pool() {
        Some(pool) => pool,
        None => &mut [],
    }
}

/// The end of every path that must not return.
pub fn unreachable_loop() -> ! {
    loop {
        let _ = rustix::thread::nanosleep(&rustix::time::Timespec { tv_sec: 86_400, tv_nsec: 0 });
    }
}

/// fork() via clone(SIGCHLD): Ok(0) in the child, Ok(pid) in the parent. Only for the
/// single-threaded PID 1 binary (the `rt` feature, crate-private): a std program that links
/// this library (keelctl, the tests) has threads, and a fork there is not safe to use.
#[cfg(all(not(test), feature = "rt"))]
pub(crate) fn fork() -> Result<i32, Errno> {
    // SAFETY: clone with only SIGCHLD and a NULL stack behaves as fork: the child gets a
    // copy-on-write copy of our address space and continues at the same point. keel is
    // single-threaded, so no lock can be held by another thread across the fork.
    let ret = unsafe { arch::clone_sigchld() };
    check(ret).map(|pid| pid as i32)
}

/// execve(path, argv, envp); returns only on failure.
pub fn execve(path: &core::ffi::CStr, argv: &[*const u8], envp: &[*const u8]) -> Errno {
    if argv.last().map_or(true, |p| !p.is_null()) || envp.last().map_or(true, |p| !p.is_null()) {
        return Errno::INVAL;
    }
    // SAFETY: `path` is NUL-terminated and both arrays are NULL-terminated (checked above);
    // the caller keeps the pointed-to strings alive across the call.
    let ret = unsafe {
        arch::syscall3(k::__NR_execve as usize, path.as_ptr() as usize, argv.as_ptr() as usize, envp.as_ptr() as usize)
    };
    check(ret).err().unwrap_or(Errno::INVAL)
}

/// C strings are measured by `CStr` (and rustix's vDSO lookup) through strlen.
#[cfg(all(not(test), feature = "rt"))]
#[no_mangle]
unsafe extern "C" fn strlen(s: *const u8) -> usize {
    let mut n = 0;
    // SAFETY: the caller passes a NUL-terminated string. Volatile keeps LLVM from compiling
    // this loop into a call to strlen itself.
    while core::ptr::read_volatile(s.add(n)) != 0 {
        n += 1;
    }
    n
}

/// Byte comparison for memcmp/bcmp, kept out of the `mem` modules so the loop is plain.
#[cfg(all(not(test), feature = "rt"))]
unsafe fn cmp_bytes(a: *const u8, b: *const u8, n: usize) -> i32 {
    let mut i = 0;
    while i < n {
        // SAFETY: the caller (memcmp/bcmp) guarantees n readable bytes at a and b. Volatile
        // keeps LLVM from compiling this loop back into a call to memcmp itself.
        let (x, y) = (core::ptr::read_volatile(a.add(i)), core::ptr::read_volatile(b.add(i)));
        if x != y {
            return x as i32 - y as i32;
        }
        i += 1;
    }
    0
}

/// setsockopt(fd, SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, &group, 4): join a netlink multicast
/// group by number (generic netlink group ids can exceed the 32 bits of `nl_groups`, so
/// binding with a mask is not enough). rustix has no such socket option.
pub fn netlink_add_membership(fd: BorrowedFd<'_>, group: u32) -> Result<(), Errno> {
    use rustix::fd::AsRawFd;
    // SAFETY: the option value points to a live u32 and its length (4) is passed with it;
    // the kernel only reads it. A bad fd is answered with EBADF/ENOTSOCK.
    let ret = unsafe {
        arch::syscall5(
            k::__NR_setsockopt as usize,
            fd.as_raw_fd() as usize,
            linux_raw_sys::net::SOL_NETLINK as usize,
            linux_raw_sys::netlink::NETLINK_ADD_MEMBERSHIP as usize,
            &group as *const u32 as usize,
            core::mem::size_of::<u32>(),
        )
    };
    check(ret).map(drop)
}

// Container mode (src/container/).

/// Set `signo` to SIG_IGN (`ignore`) or SIG_DFL; returns whether it was SIG_IGN before.
pub fn set_signal_ignored(signo: u32, ignore: bool) -> Result<bool, Errno> {
    // struct kernel_sigaction { handler, flags, restorer, mask }, alike on x86_64 and aarch64;
    // SIG_DFL is 0 and SIG_IGN is 1 (no restorer is needed without a handler).
    let new = [ignore as u64, 0, 0, 0];
    let mut old = [0u64; 4];
    // SAFETY: both pointers are to live 32-byte kernel_sigaction buffers; the mask is 8 bytes.
    let ret = unsafe {
        arch::syscall4(
            k::__NR_rt_sigaction as usize,
            signo as usize,
            new.as_ptr() as usize,
            old.as_mut_ptr() as usize,
            8,
        )
    };
    check(ret).map(|_| old[0] == 1)
}

/// An invalid instruction: a real fault of keel's own, for the test that it stays fatal
/// although container mode blocks SIGILL (`KEEL_TEST_FAULT=1`, test builds only).
#[cfg(feature = "test-hooks")]
pub fn illegal_instruction() -> ! {
    // SAFETY: the instruction only raises SIGILL, which the kernel delivers by force; nothing
    // after it runs.
    unsafe {
        #[cfg(target_arch = "x86_64")]
        core::arch::asm!("ud2", options(noreturn));
        #[cfg(target_arch = "aarch64")]
        core::arch::asm!("udf #0", options(noreturn));
    }
}

/// The watchdog ioctls keel uses (linux/watchdog.h).
#[derive(Copy, Clone)]
pub enum WatchdogRequest {
    KeepAlive = linux_raw_sys::ioctl::WDIOC_KEEPALIVE as isize,
    /// Reads the int, and writes back the timeout the driver chose.
    SetTimeout = linux_raw_sys::ioctl::WDIOC_SETTIMEOUT as isize,
    GetTimeout = linux_raw_sys::ioctl::WDIOC_GETTIMEOUT as isize,
}

/// One watchdog ioctl with its int argument; returns the int as the kernel left it. rustix
/// has no watchdog calls.
pub fn watchdog_ioctl(fd: BorrowedFd<'_>, request: WatchdogRequest, value: i32) -> Result<i32, Errno> {
    use rustix::fd::AsRawFd;
    let mut value = value;
    // SAFETY: each of the three requests reads and/or writes one int through the pointer,
    // which points to a live i32 for the call.
    let ret = unsafe {
        arch::syscall3(k::__NR_ioctl as usize, fd.as_raw_fd() as usize, request as usize, &mut value as *mut i32 as usize)
    };
    check(ret).map(|_| value)
}

/// argv from index `first` on, NULL included: a ready argv array for execve.
#[cfg(all(not(test), feature = "rt"))]
pub fn argv_from(args: &Args, first: usize) -> &'static [*const u8] {
    let first = first.min(args.len());
    // SAFETY: the kernel's argv array holds argc pointers and then a NULL, and lives for the
    // whole process; first <= argc keeps the slice inside it.
    unsafe { core::slice::from_raw_parts(args.argv_ptr().add(first), args.len() - first + 1) }
}

/// The environment as the kernel passed it, NULL included: a ready envp array for execve.
#[cfg(all(not(test), feature = "rt"))]
pub fn envp(args: &Args) -> &'static [*const u8] {
    let len = args.env().count();
    // SAFETY: `env()` walked exactly `len` non-NULL pointers to the NULL that ends the array,
    // which lives for the whole process.
    unsafe { core::slice::from_raw_parts(args.envp_ptr(), len + 1) }
}

/// Standard input, as `stderr()`.
pub fn stdin() -> BorrowedFd<'static> {
    // SAFETY: fd 0 is only ever borrowed, never closed by keel; if it is not open, calls on
    // it fail with EBADF.
    unsafe { BorrowedFd::borrow_raw(0) }
}

/// Standard output, as `stderr()`.
pub fn stdout() -> BorrowedFd<'static> {
    // SAFETY: as for `stdin()`, with fd 1.
    unsafe { BorrowedFd::borrow_raw(1) }
}

/// A value shared by the whole (single-threaded) program through a `static`: `with` lends it
/// out to one caller at a time and answers None to a nested or concurrent call instead of
/// aliasing it. Used for the log and event journals that every module writes to.
pub struct TryLock<T> {
    busy: core::sync::atomic::AtomicBool,
    value: core::cell::UnsafeCell<T>,
}

// SAFETY: access to `value` only happens inside `with`, which the atomic flag makes
// exclusive; T moves between threads only as a whole, hence T: Send.
unsafe impl<T: Send> Sync for TryLock<T> {}

impl<T> TryLock<T> {
    pub const fn new(value: T) -> Self {
        TryLock { busy: core::sync::atomic::AtomicBool::new(false), value: core::cell::UnsafeCell::new(value) }
    }

    pub fn with<R>(&self, f: impl FnOnce(&mut T) -> R) -> Option<R> {
        use core::sync::atomic::Ordering;
        if self.busy.compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed).is_err() {
            return None;
        }
        // SAFETY: the flag was false and is now ours: no other reference to `value` exists
        // until we clear it below.
        let result = f(unsafe { &mut *self.value.get() });
        self.busy.store(false, Ordering::Release);
        Some(result)
    }
}

/// bind(fd, path) for a unix socket. rustix's SocketAddrUnix::new carries a bounds check
/// whose panic brings core::fmt along.
pub fn bind_unix(fd: BorrowedFd<'_>, path: &core::ffi::CStr) -> Result<(), Errno> {
    use rustix::fd::AsRawFd;
    const AF_UNIX: u16 = 1;
    // struct sockaddr_un: family u16, then sun_path[108], the path with its NUL.
    let mut addr = [0u8; 110];
    let (family, sun_path) = addr.split_at_mut(2);
    family.copy_from_slice(&AF_UNIX.to_ne_bytes());
    let path = path.to_bytes_with_nul();
    sun_path.get_mut(..path.len()).ok_or(Errno::NAMETOOLONG)?.copy_from_slice(path);
    // SAFETY: bind reads the given length (at most the array's) of the live array.
    check(unsafe { arch::syscall3(k::__NR_bind as usize, fd.as_raw_fd() as usize, addr.as_ptr() as usize, 2 + path.len()) })
        .map(drop)
}

/// Put a tty in raw mode (cfmakeraw's flags), ignoring the modem lines (CLOCAL), at `baud`
/// if given. By the termios2 ioctls themselves (Linux 2.6.20 on): rustix's
/// tcgetattr/tcsetattr fall back to TCGETS for older kernels, and that path's speed table is
/// ~600 bytes. Ok(false): not a tty, left as it is.
pub fn tty_raw(fd: BorrowedFd<'_>, baud: Option<u32>) -> Result<bool, Errno> {
    const RATES: [u32; 31] = [
        0, 50, 75, 110, 134, 150, 200, 300, 600, 1200, 1800, 2400, 4800, 9600, 19200, 38400, 57600, 115_200, 230_400,
        460_800, 500_000, 576_000, 921_600, 1_000_000, 1_152_000, 1_500_000, 2_000_000, 2_500_000, 3_000_000, 3_500_000,
        4_000_000,
    ];
    use rustix::fd::AsRawFd;
    // _IOR/_IOW('T', 0x2A/0x2B, struct termios2), the same on x86_64 and aarch64.
    const TCGETS2: usize = 0x802c_542a;
    const TCSETS2: usize = 0x402c_542b;
    let mut t = k::termios2 { c_iflag: 0, c_oflag: 0, c_cflag: 0, c_lflag: 0, c_line: 0, c_cc: [0; 19], c_ispeed: 0, c_ospeed: 0 };
    let ioctl = |cmd: usize, t: &mut k::termios2| {
        // SAFETY: TCGETS2 fills, TCSETS2 reads, one struct termios2, which `t` is.
        check(unsafe { arch::syscall3(k::__NR_ioctl as usize, fd.as_raw_fd() as usize, cmd, t as *mut k::termios2 as usize) })
    };
    if ioctl(TCGETS2, &mut t).is_err() {
        return Ok(false);
    }
    t.c_iflag &= !(k::IGNBRK | k::BRKINT | k::PARMRK | k::ISTRIP | k::INLCR | k::IGNCR | k::ICRNL | k::IXON);
    t.c_oflag &= !k::OPOST;
    t.c_lflag &= !(k::ECHO | k::ECHONL | k::ICANON | k::ISIG | k::IEXTEN);
    t.c_cflag = (t.c_cflag & !(k::CSIZE | k::PARENB)) | k::CS8 | k::CLOCAL;
    t.c_cc[k::VMIN as usize] = 1;
    t.c_cc[k::VTIME as usize] = 0;
    if let Some(baud) = baud {
        // A standard rate by its B constant (B0..B38400 are 0..15, B57600..B4000000 are
        // 0x1001..0x100f), any other as BOTHER, as cfsetspeed does; input as output.
        let code = match RATES.iter().position(|&r| r == baud) {
            Some(i @ 0..=15) => i as u32,
            Some(i) => 0x1000 | (i as u32 - 15),
            None => k::BOTHER,
        };
        t.c_cflag = (t.c_cflag & !(k::CBAUD | k::CIBAUD)) | code | code << k::IBSHIFT;
        (t.c_ispeed, t.c_ospeed) = (baud, baud);
    }
    ioctl(TCSETS2, &mut t).map(|_| true)
}

/// A listening AF_VSOCK stream socket on `port` (any CID), non-blocking. rustix has the
/// address family but no vsock address type.
pub fn vsock_listen(port: u32) -> Result<OwnedFd, Errno> {
    use rustix::fd::AsRawFd;
    use rustix::net::{AddressFamily, SocketFlags, SocketType};
    // struct sockaddr_vm: family u16, reserved u16, port u32, cid u32, flags u8, zero [u8; 3].
    let mut addr = [0u8; 16];
    addr[..2].copy_from_slice(&(linux_raw_sys::net::AF_VSOCK as u16).to_ne_bytes());
    addr[4..8].copy_from_slice(&port.to_ne_bytes());
    addr[8..12].copy_from_slice(&u32::MAX.to_ne_bytes()); // VMADDR_CID_ANY
    let flags = SocketFlags::CLOEXEC | SocketFlags::NONBLOCK;
    let sock = fd::socket_with(AddressFamily::VSOCK, SocketType::STREAM, flags, None)?;
    // SAFETY: bind reads `addr.len()` bytes of the live array.
    check(unsafe { arch::syscall3(k::__NR_bind as usize, sock.as_raw_fd() as usize, addr.as_ptr() as usize, addr.len()) })?;
    rustix::net::listen(&sock, 4)?;
    Ok(sock)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustix::fd::AsFd;
    use rustix::termios::{tcgetattr, ControlModes, SpecialCodeIndex};

    /// A pseudo-terminal's other side, as the debug channel of a UART would be.
    fn pty() -> (OwnedFd, OwnedFd) {
        use rustix::pty::{grantpt, ioctl_tiocgptpeer, openpt, unlockpt, OpenptFlags};
        let flags = OpenptFlags::RDWR | OpenptFlags::NOCTTY | OpenptFlags::CLOEXEC;
        let master = openpt(flags).unwrap();
        grantpt(&master).unwrap();
        unlockpt(&master).unwrap();
        let tty = ioctl_tiocgptpeer(&master, flags).unwrap();
        (master, tty)
    }

    #[test]
    fn tty_raw_sets_what_cfmakeraw_clocal_and_the_speed_would() {
        let (_master, tty) = pty();
        let mut expected = tcgetattr(&tty).unwrap();
        assert!(expected.local_modes.contains(rustix::termios::LocalModes::ICANON), "a new pty is cooked");
        expected.make_raw();
        expected.control_modes |= ControlModes::CLOCAL;
        expected.set_speed(57_600).unwrap();
        assert_eq!(tty_raw(tty.as_fd(), Some(57_600)), Ok(true));
        let got = tcgetattr(&tty).unwrap();
        assert_eq!(got.input_modes, expected.input_modes);
        assert_eq!(got.output_modes, expected.output_modes);
        assert_eq!(got.local_modes, expected.local_modes);
        assert_eq!(got.control_modes, expected.control_modes);
        assert_eq!((got.special_codes[SpecialCodeIndex::VMIN], got.special_codes[SpecialCodeIndex::VTIME]), (1, 0));
        assert_eq!((got.input_speed(), got.output_speed()), (57_600, 57_600));
    }

    #[test]
    fn tty_raw_sets_any_rate_as_cfsetspeed_would() {
        let (_master, tty) = pty();
        for baud in [9600, 115_200, 4_000_000, 250_000] {
            let mut expected = tcgetattr(&tty).unwrap();
            expected.set_speed(baud).unwrap();
            assert_eq!(tty_raw(tty.as_fd(), Some(baud)), Ok(true));
            let got = tcgetattr(&tty).unwrap();
            assert_eq!(got.control_modes, expected.control_modes | ControlModes::CLOCAL, "{baud}");
            assert_eq!((got.input_speed(), got.output_speed()), (baud, baud));
        }
    }

    #[test]
    fn tty_raw_leaves_what_is_not_a_tty() {
        let (r, _w) = rustix::pipe::pipe().unwrap();
        assert_eq!(tty_raw(r.as_fd(), Some(115_200)), Ok(false));
    }
}
