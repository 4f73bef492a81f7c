//! recvfrom on a netlink socket, giving only the sender's port id: rustix's recvfrom
//! decodes an address of any family (~250 bytes and three assertions) where keel wants
//! nl_pid alone.

use super::{arch, check};
use linux_raw_sys::general as k;
use rustix::fd::{AsRawFd, BorrowedFd};
use rustix::io::Errno;

use linux_raw_sys::net::{AF_NETLINK, MSG_TRUNC};

/// `struct sockaddr_nl` (linux/netlink.h): 12 bytes.
#[repr(C)]
#[derive(Default)]
struct SockaddrNl {
    family: u16,
    pad: u16,
    pid: u32,
    groups: u32,
}

/// One datagram into `buf` with MSG_TRUNC: its full length (more than `buf.len()` if it
/// was cut) and the sender's nl_pid, None when the kernel gave no netlink address.
pub fn recv_netlink(fd: BorrowedFd<'_>, buf: &mut [u8]) -> Result<(usize, Option<u32>), Errno> {
    let mut addr = SockaddrNl::default(); // family 0 (AF_UNSPEC) unless the kernel writes one
    let mut addr_len = core::mem::size_of::<SockaddrNl>() as u32;
    // SAFETY: the kernel writes at most `buf.len()` bytes into the live buffer, and at most
    // `addr_len` bytes of address into `addr`, storing the address's length in `addr_len`.
    let ret = unsafe {
        arch::syscall6(
            k::__NR_recvfrom as usize,
            fd.as_raw_fd() as usize,
            buf.as_mut_ptr() as usize,
            buf.len(),
            MSG_TRUNC as usize,
            &mut addr as *mut SockaddrNl as usize,
            &mut addr_len as *mut u32 as usize,
        )
    };
    let len = check(ret)?;
    let full = addr_len as usize >= core::mem::size_of::<SockaddrNl>();
    Ok((len, (full && u32::from(addr.family) == AF_NETLINK).then_some(addr.pid)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustix::fd::AsFd;
    use rustix::net::{netlink, AddressFamily, SocketFlags, SocketType};

    #[test]
    fn gives_the_length_and_the_kernel_as_sender() {
        // NETLINK_ROUTE (protocol 0) answers a request from the kernel (nl_pid 0); MSG_TRUNC gives
        // the full length even into a short buffer.
        let fd = crate::sys::fd::socket_with(AddressFamily::NETLINK, SocketType::RAW, SocketFlags::CLOEXEC, None).unwrap();
        // RTM_GETLINK dump: nlmsghdr (16 bytes) then struct ifinfomsg (16 bytes).
        let mut req = [0u8; 32];
        req[0..4].copy_from_slice(&32u32.to_ne_bytes());
        req[4..6].copy_from_slice(&18u16.to_ne_bytes()); // RTM_GETLINK
        req[6..8].copy_from_slice(&(0x1u16 | 0x300).to_ne_bytes()); // NLM_F_REQUEST | NLM_F_DUMP
        rustix::net::sendto(&fd, &req, rustix::net::SendFlags::empty(), &netlink::SocketAddrNetlink::new(0, 0)).unwrap();
        let mut short = [0u8; 4];
        let (len, sender) = recv_netlink(fd.as_fd(), &mut short).unwrap();
        assert!(len > short.len(), "MSG_TRUNC gives the datagram's length ({len})");
        assert_eq!(sender, Some(0));
    }

    #[test]
    fn errors_are_errnos() {
        let fd = crate::sys::fd::socket_with(AddressFamily::NETLINK, SocketType::RAW, SocketFlags::CLOEXEC | SocketFlags::NONBLOCK, None).unwrap();
        assert_eq!(recv_netlink(fd.as_fd(), &mut [0u8; 16]), Err(Errno::AGAIN));
    }
}
