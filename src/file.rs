//! Reading small kernel files (/proc/cmdline, mountinfo) into caller-owned buffers.

use crate::sys::fd::open;
use rustix::fs::{Mode, OFlags};
use rustix::io::Errno;

/// Read `path` into `buf` until EOF or the buffer is full; returns the bytes read (checked
/// here once, so callers need no index that could panic).
pub fn read_into<'b>(path: &core::ffi::CStr, buf: &'b mut [u8]) -> Result<&'b mut [u8], Errno> {
    let fd = open(path, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty())?;
    let mut len = 0;
    while len < buf.len() {
        match rustix::io::read(crate::sys::fd::borrow(&fd), &mut buf[len..]) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(Errno::INTR) => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(buf.get_mut(..len).unwrap_or_default())
}

/// `parts` joined into `buf` as a C string; None if it does not fit or holds a NUL.
pub fn c_path<'b>(parts: &[&[u8]], buf: &'b mut [u8]) -> Option<&'b core::ffi::CStr> {
    let mut len = 0;
    for part in parts {
        buf.get_mut(len..len + part.len())?.copy_from_slice(part);
        len += part.len();
    }
    *buf.get_mut(len)? = 0;
    core::ffi::CStr::from_bytes_with_nul(&buf[..=len]).ok()
}
