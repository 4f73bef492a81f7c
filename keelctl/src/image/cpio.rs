//! The newc ("070701") cpio archive the kernel unpacks as an initramfs, written
//! deterministically: every mtime 0, uid/gid 0, entries sorted by path component (parents
//! first), inodes numbered in that order, the whole padded to 512 bytes like cpio(1). The
//! same entries give the same bytes, whatever order they were added in.

use std::collections::BTreeMap;

pub const S_IFMT: u32 = 0o170000;
pub const S_IFDIR: u32 = 0o040000;
pub const S_IFREG: u32 = 0o100000;
pub const S_IFLNK: u32 = 0o120000;
pub const S_IFCHR: u32 = 0o020000;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// File type and permission bits.
    pub mode: u32,
    /// A file's bytes, a symlink's target; nothing for a directory or device.
    pub data: Vec<u8>,
    /// A device's major and minor.
    pub rdev: (u32, u32),
}

impl Entry {
    pub fn is_dir(&self) -> bool {
        self.mode & S_IFMT == S_IFDIR
    }
}

/// The sort key: the path's components, so `a/b` comes right after `a` and before `a-b`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Key(Vec<Vec<u8>>);

impl Key {
    fn of(path: &str) -> Key {
        Key(path.split('/').map(|c| c.as_bytes().to_vec()).collect())
    }
    fn path(&self) -> String {
        self.0.iter().map(|c| String::from_utf8_lossy(c)).collect::<Vec<_>>().join("/")
    }
}

/// Entries by guest path (stored without the leading slash).
#[derive(Default)]
pub struct Archive {
    entries: BTreeMap<Key, Entry>,
}

/// A path that cannot go into the archive: empty, `.`/`..` components, NUL, not UTF-8.
fn clean(path: &str) -> Result<String, String> {
    let trimmed = path.trim_matches('/');
    let ok = !trimmed.is_empty()
        && !trimmed.contains('\0')
        && trimmed.split('/').all(|c| !c.is_empty() && c != "." && c != "..");
    if ok {
        Ok(trimmed.to_string())
    } else {
        Err(format!("{path:?} is not a path in the image"))
    }
}

impl Archive {
    pub fn new() -> Archive {
        Archive::default()
    }

    /// Add one entry, and its missing parents as directories (0755). The same path twice is
    /// an error, unless both are directories (the first one's mode stays).
    pub fn add(&mut self, path: &str, entry: Entry) -> Result<(), String> {
        let path = clean(path)?;
        if let Some((parent, _)) = path.rsplit_once('/') {
            self.dir(parent, 0o755)?;
        }
        let key = Key::of(&path);
        match self.entries.get(&key) {
            Some(old) if old.is_dir() && entry.is_dir() => Ok(()),
            Some(_) => Err(format!("/{path} is added twice")),
            None => {
                self.entries.insert(key, entry);
                Ok(())
            }
        }
    }

    pub fn dir(&mut self, path: &str, perm: u32) -> Result<(), String> {
        self.add(path, Entry { mode: S_IFDIR | perm, data: Vec::new(), rdev: (0, 0) })
    }

    pub fn file(&mut self, path: &str, data: Vec<u8>, perm: u32) -> Result<(), String> {
        self.add(path, Entry { mode: S_IFREG | (perm & 0o7777), data, rdev: (0, 0) })
    }

    pub fn symlink(&mut self, path: &str, target: &str) -> Result<(), String> {
        self.add(path, Entry { mode: S_IFLNK | 0o777, data: target.as_bytes().to_vec(), rdev: (0, 0) })
    }

    pub fn chardev(&mut self, path: &str, major: u32, minor: u32, perm: u32) -> Result<(), String> {
        self.add(path, Entry { mode: S_IFCHR | perm, data: Vec::new(), rdev: (major, minor) })
    }

    /// What is at a guest path (`/bin/sh` or `bin/sh`).
    pub fn get(&self, path: &str) -> Option<&Entry> {
        self.entries.get(&Key::of(path.trim_matches('/')))
    }

    /// Every path, sorted as in the archive, without the leading slash.
    #[cfg(test)]
    pub fn paths(&self) -> impl Iterator<Item = String> + '_ {
        self.entries.keys().map(Key::path)
    }

    /// The archive's bytes, inodes numbered from 1.
    pub fn newc(&self) -> Vec<u8> {
        self.newc_from(1)
    }

    /// The archive with inodes numbered from `first_ino` (GNU cpio's `--reproducible`
    /// numbers from 0: the test vector compares that way).
    fn newc_from(&self, first_ino: u32) -> Vec<u8> {
        let mut out = Vec::new();
        for (n, (key, e)) in self.entries.iter().enumerate() {
            let nlink = if e.is_dir() { 2 } else { 1 };
            header(&mut out, first_ino + n as u32, &key.path(), e, nlink);
        }
        header(&mut out, 0, "TRAILER!!!", &Entry { mode: 0, data: Vec::new(), rdev: (0, 0) }, 1);
        out.resize(out.len().next_multiple_of(512), 0);
        out
    }
}

/// One entry: the 110-byte header of 13 hex fields, the name and its NUL, the data, each
/// padded to 4 bytes.
fn header(out: &mut Vec<u8>, ino: u32, name: &str, e: &Entry, nlink: u32) {
    let namesize = name.len() as u32 + 1;
    #[rustfmt::skip]
    let fields = [
        ino, e.mode, 0, 0, nlink, 0, e.data.len() as u32,
        0, 0, e.rdev.0, e.rdev.1, namesize, 0,
    ];
    out.extend_from_slice(b"070701");
    for f in fields {
        out.extend_from_slice(format!("{f:08X}").as_bytes());
    }
    out.extend_from_slice(name.as_bytes());
    out.push(0);
    out.resize(out.len().next_multiple_of(4), 0);
    out.extend_from_slice(&e.data);
    out.resize(out.len().next_multiple_of(4), 0);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// GNU cpio 2.13's archive of the same tree (mtimes set to 0):
    /// `printf 'bin\nbin/hello\nbin/hi\ndev\ndev/console\ninit\n' |
    ///  cpio -o -H newc -R 0:0 --reproducible`, where bin/hello is "hello\n" (0755), bin/hi a
    /// symlink to hello, dev/console c 5 1 (0600), init "ab" (0700).
    const GNU: &[u8] = include_bytes!("testdata/gnu-cpio.newc");

    fn sample() -> Archive {
        let mut a = Archive::new();
        // Out of order on purpose, and parents made implicitly.
        a.file("/init", b"ab".to_vec(), 0o700).unwrap();
        a.chardev("dev/console", 5, 1, 0o600).unwrap();
        a.symlink("/bin/hi", "hello").unwrap();
        a.file("bin/hello", b"hello\n".to_vec(), 0o755).unwrap();
        a
    }

    #[test]
    fn byte_exact_against_gnu_cpio() {
        assert_eq!(GNU.len(), 1024);
        assert_eq!(sample().newc_from(0), GNU);
        // Numbered from 1, only the inode fields differ.
        let ours = sample().newc();
        assert_eq!(ours.len(), GNU.len());
        let differ: Vec<usize> = (0..ours.len()).filter(|&i| ours[i] != GNU[i]).collect();
        assert!(!differ.is_empty());
        for &i in &differ {
            let entry_start = GNU[..=i].windows(6).rposition(|w| w == b"070701").unwrap();
            assert!((6..14).contains(&(i - entry_start)), "byte {i} is not in an inode field");
        }
    }

    #[test]
    fn sorted_by_component_and_numbered_in_order() {
        let mut a = Archive::new();
        for p in ["a-b", "a/c", "a.x", "b", "a"] {
            a.file(&format!("{p}/f"), Vec::new(), 0o644).unwrap();
        }
        let paths: Vec<String> = a.paths().collect();
        assert_eq!(paths, ["a", "a/c", "a/c/f", "a/f", "a-b", "a-b/f", "a.x", "a.x/f", "b", "b/f"]);
        let data = a.newc();
        let inos: Vec<u32> = data
            .windows(6)
            .enumerate()
            .filter(|(_, w)| *w == b"070701")
            .map(|(i, _)| u32::from_str_radix(std::str::from_utf8(&data[i + 6..i + 14]).unwrap(), 16).unwrap())
            .collect();
        assert_eq!(inos, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 0]);
    }

    #[test]
    fn refuses_twice_and_bad_paths() {
        let mut a = sample();
        assert_eq!(a.file("init", Vec::new(), 0o644), Err("/init is added twice".into()));
        assert_eq!(a.symlink("bin", "x"), Err("/bin is added twice".into()));
        assert!(a.dir("bin", 0o700).is_ok(), "a directory again is fine");
        assert_eq!(a.get("/bin").unwrap().mode, S_IFDIR | 0o755, "the first mode stays");
        for bad in ["", "/", "a/../b", "./a", "a//b", "a\0b"] {
            assert!(a.file(bad, Vec::new(), 0o644).is_err(), "{bad:?}");
        }
        // A file where a directory is needed.
        assert_eq!(a.file("init/x", Vec::new(), 0o644), Err("/init is added twice".into()));
    }
}
