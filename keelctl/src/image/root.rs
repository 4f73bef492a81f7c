//! The tree programs and libraries come from: the host's `/`, or `--sysroot DIR`, where
//! every path is looked up as if DIR were `/` (a chroot's view): absolute symlinks start
//! again at DIR and `..` never climbs above it. Paths here are the guest's (`/usr/bin/env`).

use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// More symlinks than this on one path is a loop (the kernel's limit is 40).
const MAX_LINKS: usize = 40;

#[derive(Clone, Debug)]
pub struct Root {
    dir: PathBuf,
}

/// A regular file found in the root.
#[derive(Clone, Debug)]
pub struct Found {
    pub host: PathBuf,
}

impl Root {
    pub fn new(dir: &Path) -> Root {
        Root { dir: dir.to_path_buf() }
    }

    pub fn host() -> Root {
        Root::new(Path::new("/"))
    }

    /// The directory that is `/` here.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn is_host(&self) -> bool {
        self.dir == Path::new("/")
    }

    /// What a message calls a guest path: itself on the host, `DIR/path` in a sysroot.
    pub fn show(&self, guest: &str) -> String {
        if self.is_host() {
            guest.to_string()
        } else {
            self.host_path(guest).display().to_string()
        }
    }

    fn host_path(&self, guest: &str) -> PathBuf {
        self.dir.join(guest.trim_start_matches('/'))
    }

    /// Follow `guest` inside the root. `Ok(None)`: nothing there (or a loop, or a file where
    /// a directory should be).
    pub fn resolve(&self, guest: &str) -> io::Result<Option<String>> {
        let mut todo: Vec<String> = guest.split('/').rev().filter(|c| !c.is_empty()).map(String::from).collect();
        let mut done: Vec<String> = Vec::new();
        let mut links = 0;
        while let Some(c) = todo.pop() {
            match c.as_str() {
                "." => continue,
                ".." => {
                    done.pop();
                    continue;
                }
                _ => {}
            }
            done.push(c);
            let path = format!("/{}", done.join("/"));
            let meta = match std::fs::symlink_metadata(self.host_path(&path)) {
                Ok(m) => m,
                Err(e) if matches!(e.kind(), io::ErrorKind::NotFound | io::ErrorKind::NotADirectory) => return Ok(None),
                Err(e) => return Err(e),
            };
            if meta.file_type().is_symlink() {
                links += 1;
                if links > MAX_LINKS {
                    return Ok(None);
                }
                let target = std::fs::read_link(self.host_path(&path))?;
                let target = target.to_string_lossy();
                done.pop();
                if target.starts_with('/') {
                    done.clear();
                }
                todo.extend(target.split('/').rev().filter(|c| !c.is_empty()).map(String::from));
            } else if !meta.is_dir() && !todo.is_empty() {
                return Ok(None);
            }
        }
        Ok(Some(format!("/{}", done.join("/"))))
    }

    /// The regular file at `guest` (symlinks followed), if there is one.
    pub fn find(&self, guest: &str) -> io::Result<Option<Found>> {
        let Some(canonical) = self.resolve(guest)? else { return Ok(None) };
        let host = self.host_path(&canonical);
        match std::fs::metadata(&host) {
            Ok(m) if m.is_file() => Ok(Some(Found { host })),
            Ok(_) => Ok(None),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The entries of a directory (names only, sorted), empty if it is not there.
    pub fn list(&self, guest: &str) -> io::Result<Vec<String>> {
        let Some(canonical) = self.resolve(guest)? else { return Ok(Vec::new()) };
        let mut names = match std::fs::read_dir(self.host_path(&canonical)) {
            Ok(dir) => dir.filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().into_owned()).collect::<Vec<_>>(),
            Err(e) if matches!(e.kind(), io::ErrorKind::NotFound | io::ErrorKind::NotADirectory) => Vec::new(),
            Err(e) => return Err(e),
        };
        names.sort();
        Ok(names)
    }

    /// A file's text, if it is there.
    pub fn read_text(&self, guest: &str) -> io::Result<Option<String>> {
        match self.find(guest)? {
            None => Ok(None),
            Some(f) => Ok(Some(String::from_utf8_lossy(&std::fs::read(&f.host)?).into_owned())),
        }
    }
}

/// A host file's bytes and permission bits.
pub fn read_file(path: &Path) -> io::Result<(Vec<u8>, u32)> {
    let data = std::fs::read(path)?;
    let mode = std::fs::metadata(path)?.permissions().mode() & 0o7777;
    Ok((data, mode))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::test_dir;
    use std::os::unix::fs::symlink;

    #[test]
    fn symlinks_stay_inside_a_sysroot() {
        let dir = test_dir("root");
        std::fs::create_dir_all(dir.join("usr/lib/x86_64-linux-gnu")).unwrap();
        std::fs::write(dir.join("usr/lib/x86_64-linux-gnu/libc.so.6"), b"libc").unwrap();
        symlink("usr/lib", dir.join("lib")).unwrap();
        std::fs::create_dir_all(dir.join("usr/lib64")).unwrap();
        symlink("usr/lib64", dir.join("lib64")).unwrap();
        // Absolute, as Debian ships it: must mean DIR/lib/..., never the host's /lib.
        symlink("/lib/x86_64-linux-gnu/libc.so.6", dir.join("usr/lib64/ld.so")).unwrap();
        symlink("../../../../../../etc/passwd", dir.join("usr/lib/up")).unwrap();
        symlink("loop", dir.join("loop")).unwrap();
        let root = Root::new(&dir);
        assert_eq!(root.resolve("/lib64/ld.so").unwrap().as_deref(), Some("/usr/lib/x86_64-linux-gnu/libc.so.6"));
        let found = root.find("/lib64/ld.so").unwrap().unwrap();
        assert_eq!(found.host, dir.join("usr/lib/x86_64-linux-gnu/libc.so.6"));
        // `..` stops at the root: DIR/etc/passwd, not the host's.
        assert!(root.find("/lib/up").unwrap().is_none());
        std::fs::create_dir_all(dir.join("etc")).unwrap();
        std::fs::write(dir.join("etc/passwd"), b"mine").unwrap();
        assert_eq!(root.resolve("/lib/up").unwrap().as_deref(), Some("/etc/passwd"));
        assert_eq!(root.find("/lib/up").unwrap().unwrap().host, dir.join("etc/passwd"));
        assert!(root.resolve("/loop").unwrap().is_none());
        assert!(root.resolve("/lib/x86_64-linux-gnu/libc.so.6/x").unwrap().is_none(), "a file is not a directory");
        assert!(root.find("/usr/lib").unwrap().is_none(), "a directory is not a file");
        assert_eq!(root.list("/lib").unwrap(), ["up", "x86_64-linux-gnu"]);
        assert_eq!(root.show("/lib"), dir.join("lib").display().to_string());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_host_root() {
        let root = Root::host();
        let env = root.find("/usr/bin/env").unwrap().unwrap();
        assert_eq!(std::fs::canonicalize(&env.host).unwrap(), std::fs::canonicalize("/usr/bin/env").unwrap());
        let canonical = root.resolve("/usr/bin/env").unwrap().unwrap();
        assert_eq!(PathBuf::from(canonical), std::fs::canonicalize("/usr/bin/env").unwrap());
        let interp = root.resolve("/lib64/ld-linux-x86-64.so.2").unwrap();
        if std::env::consts::ARCH == "x86_64" {
            assert_eq!(PathBuf::from(interp.unwrap()), std::fs::canonicalize("/lib64/ld-linux-x86-64.so.2").unwrap());
        }
        assert_eq!(root.show("/bin/sh"), "/bin/sh");
    }
}
