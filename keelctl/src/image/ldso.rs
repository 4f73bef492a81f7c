//! Shared libraries as the dynamic loader finds them, from the host's tree or a sysroot
//! (glibc's ld.so(8) order): DT_RPATH of the object and of the objects that loaded it (when
//! the object has no DT_RUNPATH), DT_RUNPATH, the ld.so.conf directories (what ldconfig puts
//! in ld.so.cache), then the default directories. `$ORIGIN` and `$PLATFORM` are expanded;
//! a candidate of another class or machine is passed over, as the loader does.
//! LD_LIBRARY_PATH is not read: the image must not depend on this shell's environment.
//!
//! Every object goes into the image at the path the guest's loader asks for (the
//! interpreter at its PT_INTERP path, a library at DIR/NAME of the directory it was found
//! in). The image has no ld.so.cache, so a library found only through an ld.so.conf
//! directory that is not a default one (/usr/local/lib) also gets a symlink in the
//! interpreter's own directory, which every loader searches.

use super::elf::{self, Elf};
use super::root::Root;
use super::Arch;
use std::collections::BTreeSet;

/// An ld.so.conf nests includes at most this deep (a loop is not followed for ever).
const MAX_INCLUDE_DEPTH: usize = 8;

/// One meaningful line of an ld.so.conf file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConfLine {
    Dir(String),
    /// `include PATTERN`: a glob, relative to the including file's directory if relative.
    Include(String),
}

/// ldconfig's grammar: `#` comments, `include PATTERN...`, `hwcap ...` (obsolete, ignored),
/// otherwise one directory per line (an old `DIR=TYPE` suffix is dropped).
pub fn parse_conf(text: &str) -> Vec<ConfLine> {
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let mut words = line.split_whitespace();
        match words.next() {
            Some("include") => out.extend(words.map(|p| ConfLine::Include(p.to_string()))),
            Some("hwcap") => {}
            _ => {
                let dir = line.split('=').next().unwrap_or("").trim_end_matches('/').trim();
                if !dir.is_empty() {
                    out.push(ConfLine::Dir(dir.to_string()));
                }
            }
        }
    }
    out
}

/// A glob's last component: `*`, `?`; everything else literal.
pub fn glob_match(pattern: &[u8], name: &[u8]) -> bool {
    match (pattern.split_first(), name.split_first()) {
        (None, None) => true,
        (Some((b'*', rest)), _) => glob_match(rest, name) || (!name.is_empty() && glob_match(pattern, &name[1..])),
        (Some((b'?', rest)), Some((_, tail))) => glob_match(rest, tail),
        (Some((p, rest)), Some((n, tail))) if p == n => glob_match(rest, tail),
        _ => false,
    }
}

/// The directories /etc/ld.so.conf names, includes followed, in order, each once.
pub fn conf_dirs(root: &Root) -> std::io::Result<Vec<String>> {
    let mut dirs = Vec::new();
    walk_conf(root, "/etc/ld.so.conf", 0, &mut dirs)?;
    Ok(dirs)
}

fn walk_conf(root: &Root, file: &str, depth: usize, dirs: &mut Vec<String>) -> std::io::Result<()> {
    let Some(text) = root.read_text(file)? else { return Ok(()) };
    let here = file.rsplit_once('/').map_or("", |(d, _)| d);
    for line in parse_conf(&text) {
        match line {
            ConfLine::Dir(d) => {
                if !dirs.contains(&d) {
                    dirs.push(d);
                }
            }
            ConfLine::Include(_) if depth >= MAX_INCLUDE_DEPTH => {}
            ConfLine::Include(pattern) => {
                let pattern = if pattern.starts_with('/') { pattern } else { format!("{here}/{pattern}") };
                let (dir, name) = pattern.rsplit_once('/').unwrap_or(("", &pattern));
                let dir = if dir.is_empty() { "/" } else { dir };
                let names: Vec<String> = if name.contains(['*', '?']) {
                    root.list(dir)?.into_iter().filter(|n| !n.starts_with('.') && glob_match(name.as_bytes(), n.as_bytes())).collect()
                } else {
                    vec![name.to_string()]
                };
                for n in names {
                    walk_conf(root, &format!("{}/{n}", dir.trim_end_matches('/')), depth + 1, dirs)?;
                }
            }
        }
    }
    Ok(())
}

/// The loader's own directories, searched last: glibc's for Debian's multiarch layout, the
/// lib64 of other distributions, then /lib and /usr/lib (musl's too).
pub fn default_dirs(arch: Arch) -> Vec<String> {
    let t = arch.triple();
    vec![format!("/lib/{t}"), format!("/usr/lib/{t}"), "/lib64".into(), "/usr/lib64".into(), "/lib".into(), "/usr/lib".into()]
}

/// Why the loader looks where it found a library (for the guest's sake: see the module doc).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Via {
    Interpreter,
    /// DT_RPATH, DT_RUNPATH or a path in DT_NEEDED.
    Path,
    Conf,
    Default,
}

/// One object a program needs, in the order the loader would load them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Object {
    /// Where it goes in the image: where the guest's loader will look.
    pub guest: String,
    /// Where it is read from.
    pub host: std::path::PathBuf,
    pub via: Via,
}

pub struct Resolver<'a> {
    pub root: &'a Root,
    pub arch: Arch,
    pub conf: Vec<String>,
    pub defaults: Vec<String>,
}

/// An object being loaded: its place and what it says.
struct Loaded {
    guest: String,
    elf: Elf,
    /// DT_RPATH directories of this object and those that loaded it, for its own lookups.
    rpath: Vec<String>,
}

impl<'a> Resolver<'a> {
    pub fn new(root: &'a Root, arch: Arch) -> std::io::Result<Resolver<'a>> {
        Ok(Resolver { root, arch, conf: conf_dirs(root)?, defaults: default_dirs(arch) })
    }

    /// Everything `program` (at `guest` in the image) needs at run time: its interpreter
    /// and every shared library, recursively. An error names the program and the library.
    pub fn needs(&self, guest: &str, program: &Elf) -> Result<Vec<Object>, String> {
        let mut out = Vec::new();
        if let Some(interp) = &program.interp {
            let found = self.root.find(interp).map_err(|e| format!("{guest}: {interp}: {e}"))?;
            let found = found.ok_or_else(|| format!("{guest}: its interpreter {} is missing", self.root.show(interp)))?;
            self.check(&found.host, program).map_err(|why| format!("{guest}: its interpreter {interp}: {why}"))?;
            out.push(Object { guest: interp.clone(), host: found.host, via: Via::Interpreter });
        }
        // Names the loader has (the interpreter counts under its file name, as glibc's does).
        let mut seen: BTreeSet<String> = program.interp.iter().filter_map(|i| i.rsplit('/').next()).map(String::from).collect();
        let mut queue = vec![Loaded { guest: guest.to_string(), rpath: own_rpath(program, guest, self.arch), elf: program.clone() }];
        let mut next = 0;
        while let Some(obj) = queue.get(next) {
            next += 1;
            let mut found_here = Vec::new();
            for name in &obj.elf.needed {
                if !seen.insert(name.clone()) {
                    continue;
                }
                let (lib_guest, host, via, elf) = self.find(name, obj, program).map_err(|why| {
                    if obj.guest == guest {
                        format!("{guest}: {why}")
                    } else {
                        format!("{guest}: {why} (needed by {})", obj.guest)
                    }
                })?;
                let mut rpath = if elf.runpath.is_empty() { own_rpath(&elf, &lib_guest, self.arch) } else { Vec::new() };
                rpath.extend(obj.rpath.iter().cloned());
                out.push(Object { guest: lib_guest.clone(), host, via });
                found_here.push(Loaded { guest: lib_guest, elf, rpath });
            }
            queue.extend(found_here);
        }
        Ok(out)
    }

    /// A library file must suit the program: same class and machine.
    fn check(&self, host: &std::path::Path, program: &Elf) -> Result<Elf, String> {
        let data = std::fs::read(host).map_err(|e| e.to_string())?;
        let e = elf::parse(&data)?;
        if e.class64 != program.class64 || e.machine != program.machine {
            return Err(format!("an ELF for {}{}", elf::machine_name(e.machine), if e.class64 { "" } else { " (32-bit)" }));
        }
        Ok(e)
    }

    fn find(&self, name: &str, obj: &Loaded, program: &Elf) -> Result<(String, std::path::PathBuf, Via, Elf), String> {
        if name.contains('/') {
            let path = if name.starts_with('/') { name.to_string() } else { return Err(format!("library {name}: a relative path")) };
            let found = self.root.find(&path).map_err(|e| e.to_string())?.ok_or_else(|| format!("library {name} is missing"))?;
            let e = self.check(&found.host, program).map_err(|why| format!("library {name}: {why}"))?;
            return Ok((path, found.host, Via::Path, e));
        }
        let runpath: Vec<String> = obj.elf.runpath.iter().filter_map(|d| expand(d, &obj.guest, self.arch)).collect();
        let rpath: &[String] = if obj.elf.runpath.is_empty() { &obj.rpath } else { &[] };
        let order = rpath
            .iter()
            .map(|d| (d, Via::Path))
            .chain(runpath.iter().map(|d| (d, Via::Path)))
            .chain(self.conf.iter().map(|d| (d, Via::Conf)))
            .chain(self.defaults.iter().map(|d| (d, Via::Default)));
        let mut passed = Vec::new();
        for (dir, via) in order {
            let path = format!("{}/{name}", dir.trim_end_matches('/'));
            let Some(found) = self.root.find(&path).map_err(|e| format!("{path}: {e}"))? else { continue };
            match self.check(&found.host, program) {
                Ok(e) => return Ok((path, found.host, via, e)),
                Err(why) => passed.push(format!("{path} ({why})")),
            }
        }
        let mut why = format!("library {name} not found");
        if !self.root.is_host() {
            why += &format!(" under {}", self.root.dir().display());
        }
        if !passed.is_empty() {
            why += &format!("; passed over: {}", passed.join(", "));
        }
        Err(why)
    }
}

/// An object's own DT_RPATH, expanded (it counts for its own lookups and those of what it
/// loads, unless it has a DT_RUNPATH).
fn own_rpath(e: &Elf, guest: &str, arch: Arch) -> Vec<String> {
    if !e.runpath.is_empty() {
        return Vec::new();
    }
    e.rpath.iter().filter_map(|d| expand(d, guest, arch)).collect()
}

/// `$ORIGIN` (the object's directory in the image), `$PLATFORM`; `$LIB` and other tokens
/// depend on the loader's build: such an entry is dropped. A relative entry is relative to
/// the loader's working directory, which the image cannot know: dropped too.
pub fn expand(dir: &str, object: &str, arch: Arch) -> Option<String> {
    let origin = object.rsplit_once('/').map_or("/", |(d, _)| if d.is_empty() { "/" } else { d });
    let mut out = dir.replace("${ORIGIN}", origin).replace("$ORIGIN", origin);
    out = out.replace("${PLATFORM}", arch.name()).replace("$PLATFORM", arch.name());
    if out.contains('$') || !out.starts_with('/') {
        return None;
    }
    Some(out.replace("//", "/"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::{test_arch, test_dir};

    #[test]
    fn conf_grammar() {
        let text = "# comment\n/usr/local/lib\n  /opt/lib/  # trailing\ninclude /etc/ld.so.conf.d/*.conf  other.conf\nhwcap 0 nosegneg\n/old=libc6\n\n";
        assert_eq!(
            parse_conf(text),
            [
                ConfLine::Dir("/usr/local/lib".into()),
                ConfLine::Dir("/opt/lib".into()),
                ConfLine::Include("/etc/ld.so.conf.d/*.conf".into()),
                ConfLine::Include("other.conf".into()),
                ConfLine::Dir("/old".into()),
            ]
        );
        assert!(glob_match(b"*.conf", b"libc.conf") && glob_match(b"a?c*", b"abc") && glob_match(b"*", b""));
        assert!(!glob_match(b"*.conf", b"libc.conf.bak") && !glob_match(b"?", b"") && !glob_match(b"a", b"b"));
    }

    #[test]
    fn includes_in_a_sysroot() {
        let dir = test_dir("ldconf");
        let w = |p: &str, t: &str| {
            let p = dir.join(p);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, t).unwrap();
        };
        w("etc/ld.so.conf", "include /etc/ld.so.conf.d/*.conf\n/after\ninclude nested/x.conf\n");
        w("etc/ld.so.conf.d/b.conf", "/b\n/a-again\n");
        w("etc/ld.so.conf.d/a.conf", "/a\n/a-again\n");
        w("etc/ld.so.conf.d/a.conf.disabled", "/never\n");
        w("etc/ld.so.conf.d/.hidden.conf", "/never-hidden\n");
        // Relative to the including file's directory; includes itself (a loop ends).
        w("etc/nested/x.conf", "/nested\ninclude x.conf\n");
        let dirs = conf_dirs(&Root::new(&dir)).unwrap();
        assert_eq!(dirs, ["/a", "/a-again", "/b", "/after", "/nested"]);
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(conf_dirs(&Root::new(&dir)).unwrap(), Vec::<String>::new(), "no ld.so.conf at all");
    }

    #[test]
    fn the_hosts_ld_so_conf() {
        // Debian: /etc/ld.so.conf includes ld.so.conf.d/*.conf, whose libc.conf names /usr/local/lib.
        let dirs = conf_dirs(&Root::host()).unwrap();
        assert!(dirs.contains(&"/usr/local/lib".to_string()), "{dirs:?}");
        assert!(dirs.contains(&format!("/lib/{}", test_arch().triple())), "{dirs:?}");
    }

    #[test]
    fn origin_and_platform() {
        let a = Arch::X86_64;
        assert_eq!(expand("$ORIGIN/../lib", "/opt/app/bin/app", a).as_deref(), Some("/opt/app/bin/../lib"));
        assert_eq!(expand("${ORIGIN}", "/app", a).as_deref(), Some("/"));
        assert_eq!(expand("/opt/$PLATFORM/lib", "/x", a).as_deref(), Some("/opt/x86_64/lib"));
        assert_eq!(expand("/usr/$LIB", "/x", a), None);
        assert_eq!(expand("lib", "/x", a), None);
    }

    /// What ldd(1) says the host's loader loads for a program: (name, path) pairs.
    fn ldd(program: &str) -> Vec<(String, String)> {
        let out = std::process::Command::new("ldd").arg(program).output().expect("ldd");
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .filter_map(|l| {
                let l = l.trim();
                let (name, rest) = l.split_once(" => ")?;
                Some((name.to_string(), rest.split(" (").next()?.to_string()))
            })
            .collect()
    }

    #[test]
    fn host_programs_resolve_as_ldd_says() {
        let root = Root::host();
        let arch = test_arch();
        let r = Resolver::new(&root, arch).unwrap();
        for program in ["/usr/bin/env", "/bin/sleep", "/usr/bin/python3"] {
            let e = elf::parse(&std::fs::read(program).unwrap()).unwrap();
            let objects = r.needs(program, &e).unwrap();
            assert_eq!(objects[0].guest, e.interp.clone().unwrap(), "{program}: the interpreter first");
            assert_eq!(objects[0].via, Via::Interpreter);
            let ours: BTreeSet<(String, String)> =
                objects[1..].iter().map(|o| (o.guest.rsplit('/').next().unwrap().to_string(), o.guest.clone())).collect();
            let theirs: BTreeSet<(String, String)> = ldd(program).into_iter().collect();
            assert_eq!(ours, theirs, "{program}");
            for o in &objects {
                assert_eq!(std::fs::canonicalize(&o.guest).unwrap(), std::fs::canonicalize(&o.host).unwrap());
            }
        }
    }

    /// The smallest ELF32 header object accepts: a shared object for machine `m` (3: i386).
    fn elf32_header(m: u8) -> Vec<u8> {
        let mut h = b"\x7fELF\x01\x01\x01".to_vec();
        h.resize(16, 0);
        h.extend_from_slice(&[3, 0, m, 0, 1, 0, 0, 0]); // e_type ET_DYN, e_machine, e_version
        h.extend_from_slice(&[0; 16]); // e_entry, e_phoff, e_shoff, e_flags
        h.extend_from_slice(&[52, 0, 32, 0, 0, 0, 40, 0, 0, 0, 0, 0]); // sizes and counts
        h
    }

    #[test]
    fn a_sysroot_with_runpath_origin_and_a_missing_library() {
        // Real host objects arranged in a sysroot: the program's DT_NEEDED are libc.so.6
        // and the loader; copy them where a sysroot's loader would look.
        let dir = test_dir("sysroot");
        let arch = test_arch();
        let env = std::fs::read("/usr/bin/env").unwrap();
        let e = elf::parse(&env).unwrap();
        let interp = e.interp.clone().unwrap();
        let put = |guest: &str, from: &str| {
            let p = dir.join(guest.trim_start_matches('/'));
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::copy(from, p).unwrap();
        };
        put("/usr/bin/env", "/usr/bin/env");
        put(&interp, &interp);
        let root = Root::new(&dir);
        let r = Resolver::new(&root, arch).unwrap();
        let err = r.needs("/usr/bin/env", &e).unwrap_err();
        assert_eq!(err, format!("/usr/bin/env: library libc.so.6 not found under {}", dir.display()));
        // Found through ld.so.conf (/opt/libs): and not through the host's libc.
        put("/opt/libs/libc.so.6", "/lib/x86_64-linux-gnu/libc.so.6");
        std::fs::create_dir_all(dir.join("etc")).unwrap();
        std::fs::write(dir.join("etc/ld.so.conf"), "/opt/libs\n").unwrap();
        let r = Resolver::new(&root, arch).unwrap();
        let objects = r.needs("/usr/bin/env", &e).unwrap();
        assert_eq!(objects.len(), 2);
        assert_eq!((objects[1].guest.as_str(), objects[1].via), ("/opt/libs/libc.so.6", Via::Conf));
        assert_eq!(objects[1].host, dir.join("opt/libs/libc.so.6"));
        // A 32-bit or foreign library of the same name first in the search order is passed over.
        std::fs::create_dir_all(dir.join("lib32")).unwrap();
        std::fs::write(dir.join("etc/ld.so.conf"), "/lib32\n/opt/libs\n").unwrap();
        std::fs::write(dir.join("lib32/libc.so.6"), elf32_header(3)).unwrap();
        let r = Resolver::new(&root, arch).unwrap();
        assert_eq!(r.needs("/usr/bin/env", &e).unwrap()[1].guest, "/opt/libs/libc.so.6");
        // Nowhere else: the error says what was passed over.
        std::fs::remove_file(dir.join("opt/libs/libc.so.6")).unwrap();
        let err = r.needs("/usr/bin/env", &e).unwrap_err();
        assert!(err.ends_with("; passed over: /lib32/libc.so.6 (an ELF for i386 (32-bit))"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
