//! Reading small kernel files (/proc/cmdline, mountinfo) into caller-owned buffers.

use rustix::fs::{open, Mode, OFlags};
use rustix::io::Errno;

/// Read `path` into `buf` until EOF or the buffer is full; returns the length read.
pub fn read_into(path: &core::ffi::CStr, buf: &mut [u8]) -> Result<usize, Errno> {
    let fd = open(path, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty())?;
    let mut len = 0;
    while len < buf.len() {
        match rustix::io::read(&fd, &mut buf[len..]) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(Errno::INTR) => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(len)
}
