//! The processes left after the child: as a subreaper keel signals only its own descendants,
//! found through the parent links in /proc/PID/stat (the per-task `children` files need
//! CONFIG_PROC_CHILDREN, which not every kernel has); nothing else on the host is touched.

use crate::config::cmdline::parse_u32;

/// `/proc/PID/stat` → the parent pid. The name in parentheses may hold spaces and `)`, so
/// the fields are counted from the last `)`.
pub fn parse_ppid(stat: &[u8]) -> Option<i32> {
    let rest = &stat[memchr::memrchr(b')', stat)? + 1..];
    let mut fields = rest.split(|&b| b == b' ').filter(|f| !f.is_empty());
    fields.next()?; // state
    parse_u32(fields.next()?).map(|p| p as i32)
}

#[cfg(all(not(test), feature = "rt"))]
pub use rt::for_each_descendant;

#[cfg(all(not(test), feature = "rt"))]
mod rt {
    use super::*;
    use crate::log::Line;
    use rustix::fd::AsFd;

    /// Every process whose parent chain reaches `me`.
    pub fn for_each_descendant(me: i32, mut f: impl FnMut(i32)) {
        use crate::sys::fd::open;
        use rustix::fs::{Mode, OFlags};
        // A /proc of another PID namespace would name other processes by our pids.
        if stat_of(None).and_then(|s| parse_u32(s.split(|&b| b == b' ').next()?)) != Some(me as u32) {
            return;
        }
        let Ok(dir) = open(c"/proc", OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty()) else {
            return;
        };
        let mut buf = [0u8; 2048];
        let mut entries = crate::dir::Dir::new(dir.as_fd(), &mut buf);
        while let Some(Ok(entry)) = entries.next() {
            let Some(pid) = parse_u32(entry.file_name().to_bytes()) else { continue };
            let mut at = pid as i32;
            // Bounded: a chain read while processes exit and are reparented may not end at 1.
            for _ in 0..256 {
                match stat_of(Some(at)).as_deref().and_then(parse_ppid) {
                    Some(parent) if parent == me => {
                        f(pid as i32);
                        break;
                    }
                    Some(parent) if parent > 1 => at = parent,
                    _ => break,
                }
            }
        }
    }

    /// The start of /proc/PID/stat (or /proc/self/stat): enough for pid, name, state, ppid.
    fn stat_of(pid: Option<i32>) -> Option<heapless::Vec<u8, 256>> {
        let mut path = Line::new();
        match pid {
            Some(pid) => ufmt::uwrite!(path, "/proc/{}/stat\0", pid).ok()?,
            None => path.push_bytes(b"/proc/self/stat\0"),
        }
        let path = core::ffi::CStr::from_bytes_with_nul(path.as_bytes()).ok()?;
        let mut stat = heapless::Vec::<u8, 256>::new();
        stat.resize_default(256).ok()?;
        let len = crate::file::read_into(path, &mut stat).ok()?.len();
        stat.truncate(len);
        Some(stat)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_and_stat() {
        let mut buf = [0xa5u8; 16];
        assert_eq!(crate::file::c_path(&[b"/bin", b"/", b"sh"], &mut buf).unwrap().to_bytes(), b"/bin/sh");
        assert_eq!(crate::file::c_path(&[b"0123456789", b"/", b"abcd"], &mut buf).unwrap().to_bytes(), b"0123456789/abcd");
        assert!(crate::file::c_path(&[b"0123456789", b"/", b"abcde"], &mut buf).is_none(), "no room for the NUL");
        assert_eq!(parse_ppid(b"42 (sh) S 7 42 42 0 -1"), Some(7));
        assert_eq!(parse_ppid(b"42 (a) b) (c) R 1234 42"), Some(1234));
        assert_eq!(parse_ppid(b"42 (sh"), None);
        assert_eq!(parse_ppid(b"42 (sh) S"), None);
    }
}
