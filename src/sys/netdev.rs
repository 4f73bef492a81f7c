//! Bringing a network interface up: SIOCGIFFLAGS / SIOCSIFFLAGS on a datagram socket.
//! A unix socket will do (the kernel passes unknown ioctls on to the device layer), and it
//! is cheaper to make than an inet one.

use super::{arch, check};
use linux_raw_sys::general as k;
use rustix::fd::AsRawFd;
use rustix::io::Errno;
use rustix::net::{AddressFamily, SocketFlags, SocketType};

const SIOCGIFFLAGS: usize = 0x8913;
const SIOCSIFFLAGS: usize = 0x8914;
const IFF_UP: i16 = 1;

/// `struct ifreq`: the name, then (for these ioctls) the flags; 40 bytes on 64-bit.
#[repr(C)]
struct IfReq {
    name: [u8; 16],
    flags: i16,
    _rest: [u8; 22],
}

/// Set IFF_UP on `name` (e.g. "lo").
pub fn interface_up(name: &core::ffi::CStr) -> Result<(), Errno> {
    let bytes = name.to_bytes();
    if bytes.len() >= 16 {
        return Err(Errno::NAMETOOLONG);
    }
    let sock = super::fd::socket_with(AddressFamily::UNIX, SocketType::DGRAM, SocketFlags::CLOEXEC, None)?;
    let mut req = IfReq { name: [0; 16], flags: 0, _rest: [0; 22] };
    req.name.get_mut(..bytes.len()).ok_or(Errno::NAMETOOLONG)?.copy_from_slice(bytes);
    let ioctl = |cmd: usize, req: &mut IfReq| {
        // SAFETY: both ioctls read and write one `struct ifreq`, which `req` is.
        check(unsafe { arch::syscall3(k::__NR_ioctl as usize, sock.as_raw_fd() as usize, cmd, req as *mut IfReq as usize) })
    };
    ioctl(SIOCGIFFLAGS, &mut req)?;
    if req.flags & IFF_UP == 0 {
        req.flags |= IFF_UP;
        ioctl(SIOCSIFFLAGS, &mut req)?;
    }
    Ok(())
}
