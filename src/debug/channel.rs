//! Opening the channels of `keel.debug=` (keel_config::channel): listening sockets, and
//! devices put in raw mode.

use keel_config::channel::Kind;
use rustix::fd::OwnedFd;
use rustix::io::Errno;

/// A listening socket for a unix or vsock channel, non-blocking.
pub fn listen(kind: &Kind) -> Result<OwnedFd, Errno> {
    match *kind {
        Kind::Unix(path) => {
            use rustix::fd::AsFd;
            use crate::sys::fd::socket_with;
            use rustix::net::{listen, AddressFamily, SocketFlags, SocketType};
            let mut buf = [0u8; 112];
            let cpath = crate::file::c_path(&[path], &mut buf).ok_or(Errno::NAMETOOLONG)?;
            let _ = rustix::fs::unlink(cpath);
            let fd = socket_with(AddressFamily::UNIX, SocketType::STREAM, SocketFlags::CLOEXEC | SocketFlags::NONBLOCK, None)?;
            crate::sys::bind_unix(fd.as_fd(), cpath)?;
            listen(&fd, 4)?;
            Ok(fd)
        }
        Kind::Vsock(port) => crate::sys::vsock_listen(port),
        Kind::Device { .. } => Err(Errno::INVAL),
    }
}

/// Open a device channel: non-blocking; a UART goes raw at `baud`, and ignores the modem
/// lines (CLOCAL): a carrier that drops would hang the tty up for good.
#[inline(never)] // smaller out of line (`just size`)
pub fn open_device(name: &[u8], baud: Option<u32>) -> Result<OwnedFd, Errno> {
    use crate::sys::fd::open;
    use rustix::fs::{Mode, OFlags};
    let mut path = [0u8; 48];
    let cpath = crate::file::c_path(&[b"/dev/", name], &mut path).ok_or(Errno::NAMETOOLONG)?;
    let fd = open(cpath, OFlags::RDWR | OFlags::NOCTTY | OFlags::NONBLOCK | OFlags::CLOEXEC, Mode::empty())?;
    // Not a tty (a virtio port): nothing to set.
    crate::sys::tty_raw(rustix::fd::AsFd::as_fd(&fd), baud)?;
    Ok(fd)
}
