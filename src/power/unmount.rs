//! Unmounting at shutdown: /proc/self/mountinfo parsed without allocation, mounts taken
//! last-first (children are listed after their parents), each unmounted, else detached,
//! else remounted read-only.

use crate::log::say::{say, Part::{E, N, T}};

/// One parsed mountinfo line; borrowed from the caller's buffer.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct MountEntry<'a> {
    pub id: u32,
    pub parent: u32,
    /// Mount point as the kernel escaped it (space is `\040`); see `unescape`.
    pub mount_point: &'a [u8],
    pub fstype: &'a [u8],
}

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum ParseError {
    MissingField,
    BadNumber,
    NoSeparator,
}

impl<'a> MountEntry<'a> {
    /// `36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue`
    pub fn parse(line: &'a [u8]) -> Result<MountEntry<'a>, ParseError> {
        let mut fields = line.split(|&b| b == b' ').filter(|f| !f.is_empty());
        let mut next = || fields.next().ok_or(ParseError::MissingField);
        let id = crate::config::cmdline::parse_u32(next()?).ok_or(ParseError::BadNumber)?;
        let parent = crate::config::cmdline::parse_u32(next()?).ok_or(ParseError::BadNumber)?;
        let _dev = next()?;
        let _root = next()?;
        let mount_point = next()?;
        let _options = next()?;
        // Optional fields run until a lone "-".
        loop {
            match fields.next() {
                Some(b"-") => break,
                Some(_) => continue,
                None => return Err(ParseError::NoSeparator),
            }
        }
        let fstype = fields.next().ok_or(ParseError::MissingField)?;
        Ok(MountEntry { id, parent, mount_point, fstype })
    }
}

/// Undo the kernel's octal escapes (`\040` space, `\011` tab, `\012` newline, `\134` `\`)
/// into `out`, NUL-terminated for the syscall. None if it does not fit.
pub fn unescape<'o>(escaped: &[u8], out: &'o mut [u8]) -> Option<&'o core::ffi::CStr> {
    let mut n = 0;
    let mut i = 0;
    while i < escaped.len() {
        let octal = escaped.get(i + 1..i + 4).filter(|d| escaped[i] == b'\\' && d.iter().all(|c| (b'0'..=b'7').contains(c)));
        let byte = match octal {
            Some(d) => {
                i += 4;
                (d[0] - b'0').wrapping_mul(64).wrapping_add((d[1] - b'0') * 8).wrapping_add(d[2] - b'0')
            }
            None => {
                i += 1;
                escaped[i - 1]
            }
        };
        if byte == 0 {
            return None;
        }
        *out.get_mut(n)? = byte;
        n += 1;
    }
    *out.get_mut(n)? = 0;
    core::ffi::CStr::from_bytes_with_nul(&out[..=n]).ok()
}

/// The mounts in the order they are taken down: last listed first. Unparsable lines are
/// skipped (they are the kernel's, but we never trust input blindly).
pub fn unmount_order(mountinfo: &[u8]) -> impl Iterator<Item = MountEntry<'_>> {
    mountinfo.rsplit(|&b| b == b'\n').filter_map(|line| MountEntry::parse(line).ok())
}

/// mountinfo bytes read; mounts past that stay mounted (after the final sync).
const MOUNTINFO_BUF: usize = 32 * 1024;

/// Unmount everything, last-first, calling `before` with each mount point (as escaped in
/// mountinfo) as it is taken. mountinfo is read once, up front: /proc itself goes down on
/// the way. Never fails: each mount's outcome is logged.
pub fn unmount_all(mut before: impl FnMut(&[u8])) {
    let mut buf = [0u8; MOUNTINFO_BUF];
    let len = match read_mountinfo(&mut buf) {
        Ok(len) => len,
        Err(e) => return say(b"cannot read /proc/self/mountinfo (%); mounts left as they are", &[E(e)]),
    };
    for entry in unmount_order(buf.get(..len).unwrap_or_default()) {
        before(entry.mount_point);
        take_down(&entry);
    }
}

fn read_mountinfo(buf: &mut [u8]) -> Result<usize, rustix::io::Errno> {
    let room = buf.len();
    let read = crate::file::read_into(c"/proc/self/mountinfo", buf)?;
    if read.len() == room {
        say(b"more than % bytes of mountinfo: the first mounts listed stay mounted", &[N(MOUNTINFO_BUF as u64)]);
        // Keep whole lines only.
        return Ok(memchr::memrchr(b'\n', read).map_or(0, |nl| nl + 1));
    }
    Ok(read.len())
}

fn take_down(entry: &MountEntry) {
    use rustix::mount::{mount_remount, unmount, MountFlags, UnmountFlags};
    let mut path_buf = [0u8; 512];
    let Some(path) = unescape(entry.mount_point, &mut path_buf) else {
        return say(b"mount point too long or malformed: %", &[T(entry.mount_point)]);
    };
    let shown = T(path.to_bytes());
    let first = match unmount(path, UnmountFlags::empty()) {
        Ok(()) => return say(b"unmounted %", &[shown]),
        Err(e) => e,
    };
    // The root cannot be detached from under us: remount it read-only instead.
    if path.to_bytes() != b"/" && unmount(path, UnmountFlags::DETACH).is_ok() {
        return say(b"detached % (%)", &[shown, E(first)]);
    }
    match mount_remount(path, MountFlags::RDONLY, c"") {
        Ok(()) => say(b"remounted % read-only", &[shown]),
        Err(e) => say(b"cannot unmount % (%) nor remount it read-only (%)", &[shown, E(first), E(e)]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &[u8] = b"\
22 1 0:21 / / rw,relatime - rootfs rootfs rw\n\
23 22 0:22 / /proc rw,nosuid,nodev,noexec,relatime shared:2 - proc proc rw\n\
24 22 0:5 / /dev rw,nosuid shared:3 master:1 - devtmpfs devtmpfs rw,size=1k\n\
25 24 0:23 / /dev/pts rw,nosuid,noexec,relatime - devpts devpts rw,gid=5,mode=620\n\
30 22 254:1 / /mnt/my\\040disk rw,relatime - ext4 /dev/vda rw\n";

    #[test]
    fn parses_every_field_keel_uses() {
        let line = b"36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue";
        assert_eq!(
            MountEntry::parse(line),
            Ok(MountEntry { id: 36, parent: 35, mount_point: b"/mnt2", fstype: b"ext3" })
        );
        let no_optional = b"23 22 0:22 / /proc rw - proc proc rw";
        assert_eq!(MountEntry::parse(no_optional).unwrap().fstype, b"proc");
    }

    #[test]
    fn bad_lines_are_errors_not_panics() {
        assert_eq!(MountEntry::parse(b""), Err(ParseError::MissingField));
        assert_eq!(MountEntry::parse(b"x 1 0:1 / / rw - t s o"), Err(ParseError::BadNumber));
        assert_eq!(MountEntry::parse(b"1 1 0:1 / / rw shared:1 t s o"), Err(ParseError::NoSeparator));
        assert_eq!(MountEntry::parse(b"1 1 0:1 / / rw -"), Err(ParseError::MissingField));
        assert_eq!(MountEntry::parse(b"1 1 0:1 /"), Err(ParseError::MissingField));
    }

    #[test]
    fn unmount_order_is_reverse_mountinfo_order() {
        let order: Vec<&[u8]> = unmount_order(SAMPLE).map(|m| m.mount_point).collect();
        assert_eq!(order, [&b"/mnt/my\\040disk"[..], b"/dev/pts", b"/dev", b"/proc", b"/"]);
    }

    #[test]
    fn garbage_lines_are_skipped() {
        let text = b"garbage\n22 1 0:21 / / rw - rootfs rootfs rw\n\xff\xfe 1 2\n";
        let ids: Vec<u32> = unmount_order(text).map(|m| m.id).collect();
        assert_eq!(ids, [22]);
        assert_eq!(unmount_order(b"").count(), 0);
    }

    #[test]
    fn unescapes_octal() {
        let mut out = [0u8; 32];
        assert_eq!(unescape(b"/mnt/my\\040disk", &mut out).unwrap().to_bytes(), b"/mnt/my disk");
        assert_eq!(unescape(b"/a\\134b\\011c", &mut out).unwrap().to_bytes(), b"/a\\b\tc");
        // A lone or short backslash sequence stays literal.
        assert_eq!(unescape(b"/a\\9\\", &mut out).unwrap().to_bytes(), b"/a\\9\\");
        // Does not fit (needs room for the NUL), or would embed a NUL.
        assert_eq!(unescape(&[b'a'; 32], &mut out), None);
        assert_eq!(unescape(b"/x\\000", &mut out), None);
    }
}
