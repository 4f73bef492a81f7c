//! What configuration runs. At boot keel reads the compiled configuration at
//! `/etc/keel/keel.db` (`keel.config=PATH` moves it): the checked view of keel-config's
//! `db`, no text parsing. Missing: the built-in configuration runs (compiled into the binary
//! from src/config/default.toml, or `KEEL_CONFIG` at build time: a console shell). Corrupt,
//! truncated, of another format version or over a capacity: the console says exactly why,
//! and the built-in one runs instead, so a bad file never bricks a machine. Then the kernel
//! command line's `keel.*` keys (`cmdline`) override what the file sets.

pub mod cmdline;

#[cfg(all(not(test), feature = "rt"))]
use crate::log::say::{say, Part::{E, N, T}};
use core::ffi::CStr;
use keel_config::db::{self, Db};
use keel_config::spec::{Mount, Root};
#[cfg(all(not(test), feature = "rt"))]
use keel_config::spec::Spec;

/// Where the compiled configuration is looked for.
pub const DEFAULT_PATH: &CStr = c"/etc/keel/keel.db";

/// The built-in configuration, compiled by build.rs.
#[cfg_attr(not(all(not(test), feature = "rt")), allow(dead_code))]
static BUILTIN: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/builtin.db"));

/// The configuration that runs, and where it came from.
#[derive(Clone)]
pub struct Running {
    pub db: Db<'static>,
    /// The file it was read from; None: the built-in one.
    pub path: Option<heapless::Vec<u8, { cmdline::PATH_MAX }>>,
}

impl Running {
    /// What `keelctl status` and the Config event call it.
    pub fn name(&self) -> &[u8] {
        self.path.as_deref().unwrap_or(b"built-in")
    }
}

/// Why the file at the path did not run.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Refused {
    Unreadable(rustix::io::Errno),
    Invalid(db::Error),
}

/// Pick what runs: the file's bytes if they are a valid configuration, else the built-in.
/// Pure, so every case is tested.
pub fn choose(file: Result<&'static [u8], rustix::io::Errno>, builtin: &'static [u8]) -> (Option<Db<'static>>, Option<Refused>) {
    let refused = match file.map(Db::parse) {
        Ok(Ok(db)) => return (Some(db), None),
        Ok(Err(e)) => Refused::Invalid(e),
        Err(e) => Refused::Unreadable(e),
    };
    (Db::parse(builtin).ok(), Some(refused))
}

/// Read the configuration at `path` (it stays in memory for PID 1's life), fall back to the
/// built-in one, and say which runs. Called once.
#[cfg(all(not(test), feature = "rt"))]
#[inline(never)] // smaller out of line (measured)
pub fn load(path: &CStr) -> Running {
    let file = match crate::sys::config_file() {
        Some(buf) => crate::file::read_into(path, buf),
        None => Err(rustix::io::Errno::BUSY),
    };
    let (db, refused) = choose(file.map(|b| &*b), BUILTIN);
    let from_file = refused.is_none();
    let name = path.to_bytes();
    match refused {
        None => {}
        // No file is the usual case for an image built with the built-in table.
        Some(Refused::Unreadable(rustix::io::Errno::NOENT)) if path == DEFAULT_PATH => {}
        Some(Refused::Unreadable(e)) => say(b"config %: %; the built-in table runs", &[T(name), E(e)]),
        Some(Refused::Invalid(e)) => {
            let why = T(e.text().as_bytes());
            match e {
                db::Error::BadValue { service: Some(i), .. } => {
                    say(b"config %: service %: bad %; the built-in table runs instead", &[T(name), N(i.into()), why])
                }
                db::Error::Version(v) => say(b"config %: format version %, %; the built-in table runs instead", &[T(name), N(v.into()), why]),
                _ => say(b"config %: %; the built-in table runs instead", &[T(name), why]),
            }
        }
    }
    let db = db.unwrap_or_else(|| {
        // Only a broken build gets here: run nothing rather than stop.
        say(b"config: the built-in configuration is invalid; no services", &[]);
        Db::parse(EMPTY).unwrap_or_else(|_| crate::sys::unreachable_loop())
    });
    let count = N(db.service_count() as u64);
    if from_file {
        say(b"config %: % services", &[T(name), count]);
    } else {
        say(b"config: built-in, % services", &[count]);
    }
    let detail: &[u8] = if from_file { b"loaded" } else { b"built-in" };
    crate::log::event(keel_proto::EventKind::Config, name, detail);
    Running { db, path: from_file.then(|| heapless::Vec::from_slice(name).unwrap_or_default()) }
}

/// `[root]` and `[mount.NAME]` of the running configuration (src/root reads them), set once.
static STORAGE: crate::sys::TryLock<(Root<'static>, &'static [Mount<'static>])> = crate::sys::TryLock::new((Root::NONE, &[]));

pub fn root() -> Root<'static> {
    STORAGE.with(|s| s.0).unwrap_or(Root::NONE)
}

pub fn mounts() -> &'static [Mount<'static>] {
    STORAGE.with(|s| s.1).unwrap_or(&[])
}

/// Keep the running configuration's root and mounts table (decoded once).
#[cfg(all(not(test), feature = "rt"))]
#[inline(never)] // smaller out of line (measured)
pub fn keep_storage(db: &Db<'static>) {
    let mounts: &'static [Mount<'static>] = match crate::sys::mount_table() {
        Some(table) => {
            for m in db.mounts() {
                // Cannot fail: the configuration holds at most the table's capacity.
                let _ = table.push(m);
            }
            table
        }
        None => &[],
    };
    STORAGE.with(|s| *s = (db.root(), mounts));
}

/// The services of the running configuration as a table PID 1 keeps (decoded once).
#[cfg(all(not(test), feature = "rt"))]
pub fn service_table(db: &Db<'static>) -> &'static [Spec<'static>] {
    let Some(table) = crate::sys::service_table() else { return &[] };
    for spec in db.services() {
        // Cannot fail: the configuration holds at most the table's capacity.
        let _ = table.push(spec);
    }
    table
}

/// A configuration with nothing in it: the header, an empty system section and the CRC.
#[cfg(all(not(test), feature = "rt"))]
static EMPTY: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/empty.db"));

#[cfg(test)]
mod tests {
    use super::*;

    fn leak(bytes: Vec<u8>) -> &'static [u8] {
        Box::leak(bytes.into_boxed_slice())
    }

    fn compiled(text: &str) -> &'static [u8] {
        leak(keel_config::db::emit(&keel_config::compiler::compile(text).unwrap()))
    }

    #[test]
    fn the_file_runs_when_it_is_valid() {
        let file = compiled("[service.app]\nargv = [\"/app\"]\n");
        let (db, refused) = choose(Ok(file), BUILTIN);
        assert_eq!(refused, None);
        assert_eq!(db.unwrap().services().next().unwrap().name, "app");
    }

    #[test]
    fn anything_else_runs_the_builtin_and_says_why() {
        let builtin = Db::parse(BUILTIN).unwrap().service_count();
        let good = compiled("[service.app]\nargv = [\"/app\"]\n");
        let mut corrupt = good.to_vec();
        corrupt[20] ^= 1;
        let mut version = good.to_vec();
        version[8] = 9;
        let cases = [
            (Err(rustix::io::Errno::NOENT), Refused::Unreadable(rustix::io::Errno::NOENT)),
            (Ok(leak(corrupt)), Refused::Invalid(db::Error::BadChecksum)),
            (Ok(&good[..good.len() - 1]), Refused::Invalid(db::Error::Truncated)),
            (Ok(leak(version)), Refused::Invalid(db::Error::Version(9))),
            (Ok(&b"[service.app]\nargv = [\"/app\"]\n"[..]), Refused::Invalid(db::Error::BadMagic)),
        ];
        for (file, why) in cases {
            let (db, refused) = choose(file, BUILTIN);
            assert_eq!(refused, Some(why));
            assert_eq!(db.unwrap().service_count(), builtin, "{why:?}: the built-in table runs");
        }
    }

    #[test]
    fn the_builtin_configuration_is_valid() {
        let db = Db::parse(BUILTIN).expect("build.rs compiled it");
        assert!(db.services().any(|s| s.tty.is_some()), "a console shell");
    }
}
