//! The compiled configuration: what `keelctl compile` writes (and build.rs embeds as the
//! built-in table) and PID 1 reads at boot, with no text parsing. A checked view in the
//! smoltcp habit: `Db::parse` checks the header, the checksum, every section and every
//! record before anything else reads it, so the getters cannot fail; nothing indexes before
//! a length check, and no input panics. Integers are little-endian.
//!
//! ```text
//! header   0..8   magic "KEELCFG\n"       8..10  format version (1)
//!          10..12 section count           12..16 total length (the whole file)
//! sections at 16, 12 bytes each: kind u16, zero u16, offset u32, length u32
//! the last 4 bytes: CRC-32 (zlib's) of everything before them
//!   1 strings   bytes that the refs below point into
//!   2 system    SYSTEM_LEN bytes (field offsets: `system` below)
//!   3 services  SERVICE_LEN bytes per service, in table order
//!   4 channels  one ref per debug channel spec
//!   5 modules   one ref per extra kernel module name
//!   6 root      ROOT_LEN bytes (`[root]`; absent: none)
//!   7 mounts    MOUNT_LEN bytes per `[mount.NAME]`, in table order
//! a ref: offset u32 and length u16 into the strings
//! ```
//! A file of another format version, with a bad checksum, a ref out of bounds or a value
//! the compiler would have refused is rejected whole, with the reason.

use crate::channel::Channel;
use crate::spec::{CStrs, Mount, Readiness, Restart, Root, Spec};
use crate::values::{self, PanicPolicy};
use keel_proto::PowerCmd;

pub const MAGIC: [u8; 8] = *b"KEELCFG\n";
pub const VERSION: u16 = 1;
pub const HEADER_LEN: usize = 16;
pub const CRC_LEN: usize = 4;
pub const SECTION_LEN: usize = 12;
pub const REF_LEN: usize = 6;

/// Capacities PID 1 holds; the compiler refuses more (keel_config::compiler).
pub const MAX_SERVICES: usize = 128;
pub const MAX_ARGS: usize = 16;
pub const MAX_ENV: usize = 16;
pub const MAX_DEPS: usize = 8;
pub const MAX_CHANNELS: usize = 4;
pub const MAX_MODULES: usize = 32;
pub const MAX_MOUNTS: usize = 16;
pub const MIN_RING: u32 = 256;
pub const MAX_RING: u32 = 65536;
/// All services' log rings together: the size of PID 1's ring pool.
pub const MAX_RING_TOTAL: usize = 512 * 1024;
/// The largest compiled file PID 1 reads.
pub const MAX_LEN: usize = 64 * 1024;

pub mod kind {
    pub const STRINGS: u16 = 1;
    pub const SYSTEM: u16 = 2;
    pub const SERVICES: u16 = 3;
    pub const CHANNELS: u16 = 4;
    pub const MODULES: u16 = 5;
    pub const ROOT: u16 = 6;
    pub const MOUNTS: u16 = 7;
}

/// Byte ranges of the header, the system record and a service record.
mod field {
    pub type Field = core::ops::Range<usize>;
    pub const MAGIC: Field = 0..8;
    pub const VERSION: Field = 8..10;
    pub const SECTIONS: Field = 10..12;
    pub const LENGTH: Field = 12..16;

    pub mod system {
        use super::Field;
        pub const SHUTDOWN_TIMEOUT_MS: Field = 0..4;
        pub const SYNC_TIMEOUT_MS: Field = 4..8;
        pub const PANIC_DELAY_S: Field = 8..12;
        pub const PANIC_ACTION: usize = 12;
        pub const FLAGS: usize = 13;
        pub const HOSTNAME: Field = 14..20;
        pub const WATCHDOG: Field = 20..26;
        pub const LEN: usize = 26;
    }

    pub mod service {
        use super::Field;
        pub const NAME: Field = 0..6;
        pub const ARGV: Field = 6..12;
        pub const ENV: Field = 12..18;
        pub const CWD: Field = 18..24;
        pub const TTY: Field = 24..30;
        pub const DEPS: Field = 30..36;
        pub const UID: Field = 36..40;
        pub const GID: Field = 40..44;
        pub const RESTART: usize = 44;
        pub const FLAGS: usize = 45;
        pub const READY: usize = 46;
        pub const READY_FD: usize = 47;
        pub const STOP_SIGNAL: usize = 48;
        pub const MAX_FAILURES: Field = 50..52;
        pub const READY_TIMEOUT_MS: Field = 52..56;
        pub const STOP_GRACE_MS: Field = 56..60;
        pub const RING: Field = 60..64;
        pub const BACKOFF_INITIAL_MS: Field = 64..68;
        pub const BACKOFF_MAX_MS: Field = 68..72;
        pub const STABLE_AFTER_MS: Field = 72..76;
        pub const LEN: usize = 76;
    }

    pub mod root {
        use super::Field;
        pub const DEVICE: Field = 0..6;
        pub const FSTYPE: Field = 6..12;
        pub const OPTIONS: Field = 12..18;
        pub const INIT: Field = 18..24;
        /// Service indices, one byte each.
        pub const RESCUE: Field = 24..30;
        pub const WAIT_S: Field = 30..34;
        pub const DELAY_S: Field = 34..38;
        pub const FLAGS: usize = 38;
        pub const LEN: usize = 39;
    }

    pub mod mount {
        use super::Field;
        pub const NAME: Field = 0..6;
        pub const SOURCE: Field = 6..12;
        pub const TARGET: Field = 12..18;
        pub const FSTYPE: Field = 18..24;
        pub const OPTIONS: Field = 24..30;
        /// The services that need it: indices, one byte each.
        pub const SERVICES: Field = 30..36;
        pub const WAIT_S: Field = 36..40;
        pub const FLAGS: usize = 40;
        pub const LEN: usize = 41;
    }
}
pub use field::mount::LEN as MOUNT_LEN;
pub use field::root::LEN as ROOT_LEN;
pub use field::service::LEN as SERVICE_LEN;
pub use field::system::LEN as SYSTEM_LEN;

const FLAG_ONESHOT: u8 = 1;
const FLAG_ECHO: u8 = 2;
const SYSTEM_POWEROFF_REBOOTS: u8 = 1;
const SYSTEM_COLDPLUG: u8 = 2;
const ROOT_READ_ONLY: u8 = 1;
const ROOT_NO_FSCK: u8 = 2;
/// `wait` was given (else WAIT_S is 0).
const ROOT_WAIT_SET: u8 = 4;
/// `rescue` was given (else RESCUE is empty).
const ROOT_RESCUE_SET: u8 = 8;
const MOUNT_REQUIRED: u8 = 1;

/// Why a compiled configuration was refused.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Error {
    /// Shorter than its header, its length field or a section says.
    Truncated,
    /// Longer than PID 1 reads (MAX_LEN), or than its length field says.
    TooLong,
    BadMagic,
    /// Another format version: compiled by another keelctl.
    Version(u16),
    BadChecksum,
    /// A section out of bounds, repeated, or of the wrong size.
    BadSection(u16),
    /// A ref outside the strings.
    BadRef,
    /// More of something than PID 1 holds.
    Capacity(&'static str),
    /// A value the compiler refuses (the field's name), in service `service` if any.
    BadValue { field: &'static str, service: Option<u16> },
    /// A value the compiler refuses in mount record `mount`.
    BadMount { field: &'static str, mount: u16 },
    /// The services' dependencies form a cycle.
    Cycle,
}

impl Error {
    /// What the console says, before the service (if any) is named.
    pub fn text(&self) -> &'static str {
        match self {
            Error::Truncated => "truncated",
            Error::TooLong => "longer than its header says, or than 64 KiB",
            Error::BadMagic => "not a compiled keel configuration (bad magic)",
            Error::Version(_) => "another format version (compile it with this keel's keelctl)",
            Error::BadChecksum => "bad checksum (corrupt)",
            Error::BadSection(_) => "bad section table",
            Error::BadRef => "a string reference out of bounds",
            Error::Capacity(what) => what,
            Error::BadValue { field, .. } | Error::BadMount { field, .. } => field,
            Error::Cycle => "dependency cycle",
        }
    }
}

/// The field's bytes; zeros where the record is short (a checked record never is).
fn array<const N: usize>(b: &[u8], at: field::Field) -> [u8; N] {
    b.get(at.start..).and_then(|s| s.first_chunk().copied()).unwrap_or([0; N])
}

fn u16_at(b: &[u8], at: field::Field) -> u16 {
    u16::from_le_bytes(array(b, at))
}

fn u32_at(b: &[u8], at: field::Field) -> u32 {
    u32::from_le_bytes(array(b, at))
}

fn byte_at(b: &[u8], at: usize) -> u8 {
    b.get(at).copied().unwrap_or(0)
}

/// Record `i` of a section of `N`-byte records.
fn record<const N: usize>(section: &[u8], i: usize) -> Option<&[u8; N]> {
    section.chunks_exact(N).nth(i)?.first_chunk()
}

/// A checked compiled configuration. Every getter returns what `parse` validated.
#[derive(Copy, Clone, Debug)]
pub struct Db<'a> {
    strings: &'a [u8],
    system: &'a [u8],
    services: &'a [u8],
    channels: &'a [u8],
    modules: &'a [u8],
    root: &'a [u8],
    mounts: &'a [u8],
}

/// `[system]` as compiled.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct System<'a> {
    pub shutdown_timeout_ms: u32,
    pub sync_timeout_ms: u32,
    pub panic: PanicPolicy,
    /// Empty: not set.
    pub hostname: &'a [u8],
    pub watchdog: Option<values::Watchdog<'a>>,
    pub poweroff_reboots: bool,
    pub coldplug: bool,
}

impl<'a> Db<'a> {
    pub fn parse(bytes: &'a [u8]) -> Result<Db<'a>, Error> {
        if bytes.len() > MAX_LEN {
            return Err(Error::TooLong);
        }
        if bytes.len() < HEADER_LEN + CRC_LEN {
            return Err(Error::Truncated);
        }
        if bytes[field::MAGIC] != MAGIC {
            return Err(Error::BadMagic);
        }
        let version = u16_at(bytes, field::VERSION);
        if version != VERSION {
            return Err(Error::Version(version));
        }
        let length = u32_at(bytes, field::LENGTH) as usize;
        if length > bytes.len() {
            return Err(Error::Truncated);
        }
        if length < bytes.len() {
            return Err(Error::TooLong);
        }
        let (sealed, crc) = bytes.split_at(bytes.len() - CRC_LEN);
        if keel_proto::crc::crc32(sealed) != u32_at(crc, 0..4) {
            return Err(Error::BadChecksum);
        }
        let count = u16_at(bytes, field::SECTIONS) as usize;
        let table = sealed.get(HEADER_LEN..HEADER_LEN + count * SECTION_LEN).ok_or(Error::Truncated)?;
        let mut found: [Option<&[u8]>; 8] = [None; 8];
        for entry in table.chunks_exact(SECTION_LEN) {
            let kind = u16_at(entry, 0..2);
            let (offset, len) = (u32_at(entry, 4..8) as usize, u32_at(entry, 8..12) as usize);
            let body = offset.checked_add(len).and_then(|end| sealed.get(offset..end)).ok_or(Error::BadSection(kind))?;
            match found.get_mut(kind as usize) {
                // Unknown kinds are refused too: the format version says what a file holds.
                Some(slot @ None) if kind != 0 => *slot = Some(body),
                _ => return Err(Error::BadSection(kind)),
            }
        }
        let db = Db {
            strings: found[kind::STRINGS as usize].unwrap_or(&[]),
            system: found[kind::SYSTEM as usize].ok_or(Error::BadSection(kind::SYSTEM))?,
            services: found[kind::SERVICES as usize].unwrap_or(&[]),
            channels: found[kind::CHANNELS as usize].unwrap_or(&[]),
            modules: found[kind::MODULES as usize].unwrap_or(&[]),
            root: found[kind::ROOT as usize].unwrap_or(&[]),
            mounts: found[kind::MOUNTS as usize].unwrap_or(&[]),
        };
        db.check()?;
        Ok(db)
    }

    fn check(&self) -> Result<(), Error> {
        if self.system.len() != SYSTEM_LEN {
            return Err(Error::BadSection(kind::SYSTEM));
        }
        self.system_checked()?;
        for (list, kind, max) in [(self.channels, kind::CHANNELS, MAX_CHANNELS), (self.modules, kind::MODULES, MAX_MODULES)] {
            if list.len() % REF_LEN != 0 {
                return Err(Error::BadSection(kind));
            }
            if list.len() / REF_LEN > max {
                return Err(Error::Capacity(if kind == kind::CHANNELS { "more than 4 debug channels" } else { "more than 32 modules" }));
            }
        }
        for r in self.channels.chunks_exact(REF_LEN) {
            Channel::parse(self.string(r)?).map_err(|_| Error::BadValue { field: "debug channel", service: None })?;
        }
        for r in self.modules.chunks_exact(REF_LEN) {
            if !values::valid_module_name(self.string(r)?) {
                return Err(Error::BadValue { field: "module name", service: None });
            }
        }
        if self.services.len() % SERVICE_LEN != 0 {
            return Err(Error::BadSection(kind::SERVICES));
        }
        let count = self.services.len() / SERVICE_LEN;
        if count > MAX_SERVICES {
            return Err(Error::Capacity("more than 128 services"));
        }
        let mut rings = 0usize;
        for i in 0..count {
            let spec = self.service_checked(i)?;
            rings += spec.ring;
            if self.services().take(i).any(|s| s.name == spec.name) {
                return Err(Error::BadValue { field: "duplicate service name", service: Some(i as u16) });
            }
        }
        if rings > MAX_RING_TOTAL {
            return Err(Error::Capacity("log rings over 512 KiB in all"));
        }
        self.check_acyclic(count)?;
        self.check_storage(count)
    }

    /// `[root]` (absent or ROOT_LEN bytes) and the mount records, against `services` services.
    fn check_storage(&self, services: usize) -> Result<(), Error> {
        if !self.root.is_empty() {
            if self.root.len() != ROOT_LEN {
                return Err(Error::BadSection(kind::ROOT));
            }
            self.root_checked(services)?;
        }
        if self.mounts.len() % MOUNT_LEN != 0 {
            return Err(Error::BadSection(kind::MOUNTS));
        }
        let count = self.mounts.len() / MOUNT_LEN;
        if count > MAX_MOUNTS {
            return Err(Error::Capacity("more than 16 mounts"));
        }
        for i in 0..count {
            let m = self.mount_checked(i, services)?;
            if self.mounts().take(i).any(|o| o.name == m.name) {
                return Err(Error::BadMount { field: "duplicate mount name", mount: i as u16 });
            }
        }
        Ok(())
    }

    fn root_checked(&self, services: usize) -> Result<Root<'a>, Error> {
        use field::root::*;
        // A whole record (a fixed-size view: its fields need no further length checks).
        let r: &[u8; LEN] = self.root.first_chunk().ok_or(Error::BadSection(kind::ROOT))?;
        let bad = |field| Error::BadValue { field, service: None };
        let device = self.string_in(r, DEVICE)?;
        if !device.is_empty() && crate::values::Device::parse(device).is_none() {
            return Err(bad("root device"));
        }
        let fstype = self.string_in(r, FSTYPE)?;
        if !fstype.is_empty() && !fstype.split(|&b| b == b',').all(values::valid_fstype) {
            return Err(bad("root fstype"));
        }
        let options = self.string_in(r, OPTIONS)?;
        let init = self.string_in(r, INIT)?;
        if options.contains(&0) || init.contains(&0) || !(init.is_empty() || init.starts_with(b"/")) {
            return Err(bad(if options.contains(&0) { "root options" } else { "root init" }));
        }
        let rescue = self.string_in(r, RESCUE)?;
        let flags = byte_at(r, FLAGS);
        let wait = u32_at(r, WAIT_S);
        if flags & !(ROOT_READ_ONLY | ROOT_NO_FSCK | ROOT_WAIT_SET | ROOT_RESCUE_SET) != 0
            || (flags & ROOT_WAIT_SET == 0 && wait != 0)
            || (flags & ROOT_RESCUE_SET == 0 && !rescue.is_empty())
        {
            return Err(bad("root flags"));
        }
        if rescue.iter().any(|&i| i as usize >= services) {
            return Err(bad("root rescue"));
        }
        Ok(Root {
            device,
            fstype,
            options,
            read_only: flags & ROOT_READ_ONLY != 0,
            wait_secs: (flags & ROOT_WAIT_SET != 0).then_some(wait),
            delay_secs: u32_at(r, DELAY_S),
            init,
            fsck: flags & ROOT_NO_FSCK == 0,
            rescue: (flags & ROOT_RESCUE_SET != 0).then_some(rescue),
        })
    }

    fn mount_checked(&self, i: usize, services: usize) -> Result<Mount<'a>, Error> {
        use field::mount::*;
        let r: &[u8; LEN] = record(self.mounts, i).ok_or(Error::BadSection(kind::MOUNTS))?;
        let bad = |field| Error::BadMount { field, mount: i as u16 };
        let name = self.string_in(r, NAME)?;
        if !values::valid_service_name(name) {
            return Err(bad("mount name"));
        }
        let name = core::str::from_utf8(name).map_err(|_| bad("mount name"))?;
        let (source, target) = (self.string_in(r, SOURCE)?, self.string_in(r, TARGET)?);
        let (fstype, options) = (self.string_in(r, FSTYPE)?, self.string_in(r, OPTIONS)?);
        if source.is_empty() || source.iter().any(|b| b.is_ascii_whitespace() || *b == 0) || (fstype.is_empty() && !values::names_device(source)) {
            return Err(bad("mount source"));
        }
        if !target.starts_with(b"/") || target.contains(&0) {
            return Err(bad("mount target"));
        }
        if !fstype.is_empty() && !values::valid_fstype(fstype) {
            return Err(bad("mount type"));
        }
        if options.contains(&0) {
            return Err(bad("mount options"));
        }
        let users = self.string_in(r, SERVICES)?;
        if users.iter().any(|&s| s as usize >= services) {
            return Err(bad("mount services"));
        }
        let flags = byte_at(r, FLAGS);
        if flags & !MOUNT_REQUIRED != 0 {
            return Err(bad("mount flags"));
        }
        Ok(Mount {
            name,
            source,
            target,
            fstype,
            options,
            required: flags & MOUNT_REQUIRED != 0,
            wait_secs: u32_at(r, WAIT_S),
            services: users,
        })
    }

    /// Every service can start: passes over the table mark those whose dependencies are all
    /// marked (one bit each: MAX_SERVICES is 128), until a pass marks none. A cycle's
    /// services are never marked.
    fn check_acyclic(&self, count: usize) -> Result<(), Error> {
        const _: () = assert!(MAX_SERVICES <= 128);
        let mut ready = 0u128;
        loop {
            let before = ready;
            for (i, spec) in self.services().enumerate() {
                if spec.deps.iter().all(|&d| ready >> d & 1 != 0) {
                    ready |= 1 << i;
                }
            }
            if ready == before {
                break;
            }
        }
        match ready.count_ones() as usize == count {
            true => Ok(()),
            false => Err(Error::Cycle),
        }
    }

    /// The string a record's ref field `f` points at.
    fn string_in(&self, record: &[u8], f: field::Field) -> Result<&'a [u8], Error> {
        self.string(record.get(f).unwrap_or_default())
    }

    fn string(&self, r: &[u8]) -> Result<&'a [u8], Error> {
        let (offset, len) = (u32_at(r, 0..4) as usize, u16_at(r, 4..6) as usize);
        offset.checked_add(len).and_then(|end| self.strings.get(offset..end)).ok_or(Error::BadRef)
    }

    fn system_checked(&self) -> Result<System<'a>, Error> {
        use field::system::*;
        let s: &[u8; LEN] = self.system.first_chunk().ok_or(Error::BadSection(kind::SYSTEM))?;
        let bad = |field| Error::BadValue { field, service: None };
        let action = PowerCmd::from_code(byte_at(s, PANIC_ACTION)).ok_or(bad("panic"))?;
        let panic = PanicPolicy { action, delay_secs: u32_at(s, PANIC_DELAY_S) };
        if action != PowerCmd::Reboot && panic.delay_secs != 0 {
            return Err(bad("panic"));
        }
        let hostname = self.string_in(s, HOSTNAME)?;
        if !hostname.is_empty() && !values::valid_hostname(hostname) {
            return Err(bad("hostname"));
        }
        let watchdog = match self.string_in(s, WATCHDOG)? {
            [] => None,
            text => Some(values::Watchdog::parse(text).ok_or(bad("watchdog"))?),
        };
        let flags = byte_at(s, FLAGS);
        if flags & !(SYSTEM_POWEROFF_REBOOTS | SYSTEM_COLDPLUG) != 0 {
            return Err(bad("system flags"));
        }
        let shutdown_timeout_ms = u32_at(s, SHUTDOWN_TIMEOUT_MS);
        let sync_timeout_ms = u32_at(s, SYNC_TIMEOUT_MS);
        Ok(System {
            shutdown_timeout_ms,
            sync_timeout_ms,
            panic,
            hostname,
            watchdog,
            poweroff_reboots: flags & SYSTEM_POWEROFF_REBOOTS != 0,
            coldplug: flags & SYSTEM_COLDPLUG != 0,
        })
    }

    fn service_checked(&self, i: usize) -> Result<Spec<'a>, Error> {
        use field::service::*;
        let r: &[u8; LEN] = record(self.services, i).ok_or(Error::BadSection(kind::SERVICES))?;
        let bad = |field| Error::BadValue { field, service: Some(i as u16) };
        let name = self.string_in(r, NAME)?;
        if !values::valid_service_name(name) {
            return Err(bad("service name"));
        }
        let name = core::str::from_utf8(name).map_err(|_| bad("service name"))?;
        let argv = CStrs::new(self.string_in(r, ARGV)?).ok_or(bad("argv"))?;
        if argv.len() > MAX_ARGS || !argv.first().is_some_and(|p| p.to_bytes().starts_with(b"/")) {
            return Err(bad("argv (argv[0] must be an absolute path)"));
        }
        let env = CStrs::new(self.string_in(r, ENV)?).ok_or(bad("env"))?;
        if env.len() > MAX_ENV || env.iter().any(|e| e.to_bytes().first().is_none_or(|&b| b == b'=') || !e.to_bytes().contains(&b'=')) {
            return Err(bad("env"));
        }
        let path = |f: field::Field, what| -> Result<Option<&'a core::ffi::CStr>, Error> {
            match self.string_in(r, f)? {
                [] => Ok(None),
                bytes => match core::ffi::CStr::from_bytes_with_nul(bytes) {
                    Ok(p) if p.to_bytes().starts_with(b"/") => Ok(Some(p)),
                    _ => Err(bad(what)),
                },
            }
        };
        let cwd = path(CWD, "cwd")?.ok_or(bad("cwd"))?;
        let tty = path(TTY, "tty")?;
        let deps = self.string_in(r, DEPS)?;
        let count = self.services.len() / LEN;
        if deps.len() > MAX_DEPS || deps.iter().any(|&d| d as usize >= count || d as usize == i) {
            return Err(bad("dependencies"));
        }
        let restart = match byte_at(r, RESTART) {
            0 => Restart::Always,
            1 => Restart::OnFailure,
            2 => Restart::Never,
            _ => return Err(bad("restart")),
        };
        let flags = byte_at(r, FLAGS);
        if flags & !(FLAG_ONESHOT | FLAG_ECHO) != 0 {
            return Err(bad("flags"));
        }
        let ready = match (byte_at(r, READY), byte_at(r, READY_FD)) {
            (0, 0) => Readiness::Exec,
            (1, 0) => Readiness::Notify,
            (2, fd @ 3..=9) => Readiness::Fd(fd as u32),
            _ => return Err(bad("ready")),
        };
        let stop_signal = byte_at(r, STOP_SIGNAL) as u32;
        if !(1..=31).contains(&stop_signal) {
            return Err(bad("stop_signal"));
        }
        let ring = u32_at(r, RING);
        if !(MIN_RING..=MAX_RING).contains(&ring) {
            return Err(bad("log_ring"));
        }
        let (backoff_initial_ms, backoff_max_ms) = (u32_at(r, BACKOFF_INITIAL_MS), u32_at(r, BACKOFF_MAX_MS));
        if backoff_initial_ms == 0 || backoff_max_ms < backoff_initial_ms {
            return Err(bad("backoff"));
        }
        Ok(Spec {
            name,
            argv,
            env,
            cwd,
            uid: u32_at(r, UID),
            gid: u32_at(r, GID),
            tty,
            deps,
            restart,
            oneshot: flags & FLAG_ONESHOT != 0,
            ready,
            ready_timeout_ms: u32_at(r, READY_TIMEOUT_MS) as u64,
            stop_signal,
            stop_grace_ms: u32_at(r, STOP_GRACE_MS) as u64,
            ring: ring as usize,
            echo: flags & FLAG_ECHO != 0,
            backoff_initial_ms: backoff_initial_ms as u64,
            backoff_max_ms: backoff_max_ms as u64,
            stable_after_ms: u32_at(r, STABLE_AFTER_MS) as u64,
            max_failures: u16_at(r, MAX_FAILURES) as u32,
        })
    }

    pub fn system(&self) -> System<'a> {
        const FALLBACK: System = System {
            shutdown_timeout_ms: 10_000,
            sync_timeout_ms: 30_000,
            panic: PanicPolicy::DEFAULT,
            hostname: b"",
            watchdog: None,
            poweroff_reboots: false,
            coldplug: true,
        };
        self.system_checked().unwrap_or(FALLBACK)
    }

    /// The services in table order (`parse` checked every one).
    pub fn services(&self) -> impl Iterator<Item = Spec<'a>> + '_ {
        (0..self.services.len() / SERVICE_LEN).filter_map(|i| self.service_checked(i).ok())
    }

    pub fn service_count(&self) -> usize {
        self.services.len() / SERVICE_LEN
    }

    pub fn channels(&self) -> impl Iterator<Item = &'a [u8]> + '_ {
        self.channels.chunks_exact(REF_LEN).filter_map(|r| self.string(r).ok())
    }

    pub fn modules(&self) -> impl Iterator<Item = &'a [u8]> + '_ {
        self.modules.chunks_exact(REF_LEN).filter_map(|r| self.string(r).ok())
    }

    /// `[root]` (`Root::NONE` when the file has none).
    pub fn root(&self) -> Root<'a> {
        self.root_checked(self.service_count()).unwrap_or(Root::NONE)
    }

    /// The mounts in table order (`parse` checked every one).
    pub fn mounts(&self) -> impl Iterator<Item = Mount<'a>> + '_ {
        (0..self.mounts.len() / MOUNT_LEN).filter_map(|i| self.mount_checked(i, self.service_count()).ok())
    }
}

/// The compiled form of a validated configuration (the host side of `Db::parse`).
#[cfg(feature = "compiler")]
pub fn emit(config: &crate::compiler::Config) -> Vec<u8> {
    use crate::compiler::{Ready, Restart as R};
    let mut strings = Vec::new();
    let mut put = |bytes: &[u8]| -> [u8; REF_LEN] {
        let offset = strings.len();
        strings.extend_from_slice(bytes);
        let mut r = [0u8; REF_LEN];
        r[..4].copy_from_slice(&(offset as u32).to_le_bytes());
        r[4..].copy_from_slice(&(bytes.len() as u16).to_le_bytes());
        r
    };
    let packed = |items: &[String]| items.iter().flat_map(|s| s.bytes().chain([0])).collect::<Vec<u8>>();
    let c_string = |s: &str| s.bytes().chain([0]).collect::<Vec<u8>>();

    let sys = &config.system;
    let mut system = vec![0u8; SYSTEM_LEN];
    {
        use field::system::*;
        system[SHUTDOWN_TIMEOUT_MS].copy_from_slice(&(sys.shutdown_timeout_ms as u32).to_le_bytes());
        system[SYNC_TIMEOUT_MS].copy_from_slice(&(sys.sync_timeout_ms as u32).to_le_bytes());
        system[PANIC_DELAY_S].copy_from_slice(&sys.panic.delay_secs.to_le_bytes());
        system[PANIC_ACTION] = sys.panic.action as u8;
        system[FLAGS] = if sys.poweroff_reboots { SYSTEM_POWEROFF_REBOOTS } else { 0 } | if sys.coldplug { SYSTEM_COLDPLUG } else { 0 };
        system[HOSTNAME].copy_from_slice(&put(sys.hostname.as_deref().unwrap_or("").as_bytes()));
        system[WATCHDOG].copy_from_slice(&put(sys.watchdog.as_deref().unwrap_or("").as_bytes()));
    }
    let mut services = Vec::new();
    for s in &config.services {
        use field::service::*;
        let mut r = vec![0u8; LEN];
        r[NAME].copy_from_slice(&put(s.name.as_bytes()));
        r[ARGV].copy_from_slice(&put(&packed(&s.argv)));
        r[ENV].copy_from_slice(&put(&packed(&s.env)));
        r[CWD].copy_from_slice(&put(&c_string(&s.cwd)));
        r[TTY].copy_from_slice(&put(&s.tty.as_deref().map(c_string).unwrap_or_default()));
        let deps: Vec<u8> =
            s.after.iter().filter_map(|d| config.services.iter().position(|o| &o.name == d)).map(|i| i as u8).collect();
        r[DEPS].copy_from_slice(&put(&deps));
        r[UID].copy_from_slice(&s.uid.to_le_bytes());
        r[GID].copy_from_slice(&s.gid.to_le_bytes());
        r[RESTART] = match s.restart {
            R::Always => 0,
            R::OnFailure => 1,
            R::Never => 2,
        };
        r[FLAGS] = if s.oneshot { FLAG_ONESHOT } else { 0 } | if s.echo { FLAG_ECHO } else { 0 };
        (r[READY], r[READY_FD]) = match s.ready {
            Ready::Exec => (0, 0),
            Ready::Notify => (1, 0),
            Ready::Fd(n) => (2, n as u8),
        };
        r[STOP_SIGNAL] = s.stop_signal as u8;
        r[MAX_FAILURES].copy_from_slice(&(s.max_failures as u16).to_le_bytes());
        for (f, v) in [
            (READY_TIMEOUT_MS, s.ready_timeout_ms),
            (STOP_GRACE_MS, s.stop_grace_ms),
            (RING, s.log_ring),
            (BACKOFF_INITIAL_MS, s.backoff_initial_ms),
            (BACKOFF_MAX_MS, s.backoff_max_ms),
            (STABLE_AFTER_MS, s.stable_after_ms),
        ] {
            r[f].copy_from_slice(&(v as u32).to_le_bytes());
        }
        services.extend_from_slice(&r);
    }
    let channels: Vec<u8> = config.debug_channels.iter().flat_map(|c| put(c.as_bytes())).collect();
    let modules: Vec<u8> = sys.modules.iter().flat_map(|m| put(m.as_bytes())).collect();
    let index = |name: &String| config.services.iter().position(|s| &s.name == name).map(|i| i as u8);
    let text = |s: &Option<String>| s.as_deref().unwrap_or("").as_bytes().to_vec();
    let mut root = vec![0u8; ROOT_LEN];
    {
        use field::root::*;
        let r = &config.root;
        root[DEVICE].copy_from_slice(&put(&text(&r.device)));
        root[FSTYPE].copy_from_slice(&put(&text(&r.fstype)));
        root[OPTIONS].copy_from_slice(&put(&text(&r.options)));
        root[INIT].copy_from_slice(&put(&text(&r.init)));
        let rescue: Vec<u8> = r.rescue.iter().flatten().filter_map(index).collect();
        root[RESCUE].copy_from_slice(&put(&rescue));
        root[WAIT_S].copy_from_slice(&r.wait_secs.unwrap_or(0).to_le_bytes());
        root[DELAY_S].copy_from_slice(&r.delay_secs.to_le_bytes());
        root[FLAGS] = if r.read_only { ROOT_READ_ONLY } else { 0 }
            | if r.fsck { 0 } else { ROOT_NO_FSCK }
            | if r.wait_secs.is_some() { ROOT_WAIT_SET } else { 0 }
            | if r.rescue.is_some() { ROOT_RESCUE_SET } else { 0 };
    }
    let mut mounts = Vec::new();
    for m in &config.mounts {
        use field::mount::*;
        let mut r = vec![0u8; MOUNT_LEN];
        r[NAME].copy_from_slice(&put(m.name.as_bytes()));
        r[SOURCE].copy_from_slice(&put(m.source.as_bytes()));
        r[TARGET].copy_from_slice(&put(m.target.as_bytes()));
        r[FSTYPE].copy_from_slice(&put(&text(&m.fstype)));
        r[OPTIONS].copy_from_slice(&put(&text(&m.options)));
        let users: Vec<u8> = config.services.iter().enumerate().filter(|(_, s)| s.mounts.contains(&m.name)).map(|(i, _)| i as u8).collect();
        r[SERVICES].copy_from_slice(&put(&users));
        r[WAIT_S].copy_from_slice(&m.wait_secs.to_le_bytes());
        r[FLAGS] = if m.required { MOUNT_REQUIRED } else { 0 };
        mounts.extend_from_slice(&r);
    }

    let sections = [
        (kind::STRINGS, strings),
        (kind::SYSTEM, system),
        (kind::SERVICES, services),
        (kind::CHANNELS, channels),
        (kind::MODULES, modules),
        (kind::ROOT, root),
        (kind::MOUNTS, mounts),
    ];
    let mut out = vec![0u8; HEADER_LEN + sections.len() * SECTION_LEN];
    out[field::MAGIC].copy_from_slice(&MAGIC);
    out[field::VERSION].copy_from_slice(&VERSION.to_le_bytes());
    out[field::SECTIONS].copy_from_slice(&(sections.len() as u16).to_le_bytes());
    for (n, (kind, body)) in sections.iter().enumerate() {
        let entry = HEADER_LEN + n * SECTION_LEN;
        let offset = out.len() as u32;
        out[entry..entry + 2].copy_from_slice(&kind.to_le_bytes());
        out[entry + 4..entry + 8].copy_from_slice(&offset.to_le_bytes());
        out[entry + 8..entry + 12].copy_from_slice(&(body.len() as u32).to_le_bytes());
        out.extend_from_slice(body);
    }
    let total = (out.len() + CRC_LEN) as u32;
    out[field::LENGTH].copy_from_slice(&total.to_le_bytes());
    let crc = keel_proto::crc::crc32(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

#[cfg(all(test, feature = "compiler"))]
mod tests {
    use super::*;
    use crate::compiler::compile;

    const TEXT: &str = r#"
[system]
hostname = "box-1"
modules = ["virtio_net", "9p"]
shutdown_timeout = "7s"
panic = "poweroff"
watchdog = "/dev/watchdog0:20"
poweroff = "reboot"
coldplug = false

[debug]
channels = ["hvc0:rw", "vsock:1024:ro"]

[root]
device = "LABEL=keel-root"
fstype = "ext4"
options = "noatime"
wait = "20s"
rescue = ["shell"]

[mount.data]
source = "UUID=0e8b1c4a-7f3d-4b6e-9a21-5c3d2e1f0a9b"
target = "/data"
required = false

[mount.tmp]
source = "tmpfs"
target = "/tmp"
type = "tmpfs"

[service.prepare]
argv = ["/bin/sh", "-c", "echo hi"]
oneshot = true

[service.web]
argv = ["/usr/bin/web", "--port", "80"]
env = ["HOME=/", "A=b=c"]
cwd = "/srv"
user = 33
group = 34
after = ["prepare"]
mounts = ["data", "tmp"]
ready = "fd:3"
restart = "on-failure"
stop_signal = "INT"
stop_grace = "2s"
log_ring = 8192
echo = false
max_failures = 3

[service.shell]
argv = ["/bin/sh"]
tty = "/dev/console"
ready = "notify"
"#;

    fn compiled(text: &str) -> Vec<u8> {
        emit(&compile(text).unwrap())
    }

    /// The CRC over everything before it, recomputed after a deliberate edit.
    fn reseal(bytes: &mut [u8]) {
        let at = bytes.len() - CRC_LEN;
        let crc = keel_proto::crc::crc32(&bytes[..at]);
        bytes[at..].copy_from_slice(&crc.to_le_bytes());
    }

    #[test]
    fn round_trip() {
        let bytes = compiled(TEXT);
        let db = Db::parse(&bytes).unwrap();
        let sys = db.system();
        assert_eq!(sys.hostname, b"box-1");
        assert_eq!((sys.shutdown_timeout_ms, sys.sync_timeout_ms), (7000, 30_000));
        assert_eq!(sys.panic, PanicPolicy { action: PowerCmd::PowerOff, delay_secs: 0 });
        assert_eq!(sys.watchdog, Some(values::Watchdog { device: b"watchdog0", timeout_secs: 20 }));
        assert!(sys.poweroff_reboots && !sys.coldplug);
        assert_eq!(db.modules().collect::<Vec<_>>(), [&b"virtio_net"[..], b"9p"]);
        assert_eq!(db.channels().collect::<Vec<_>>(), [&b"hvc0:rw"[..], b"vsock:1024:ro"]);
        let specs: Vec<Spec> = db.services().collect();
        assert_eq!(specs.len(), 3);
        let web = specs[1];
        assert_eq!(web.name, "web");
        let argv: Vec<&[u8]> = web.argv.iter().map(|a| a.to_bytes()).collect();
        assert_eq!(argv, [&b"/usr/bin/web"[..], b"--port", b"80"]);
        assert_eq!(web.env.iter().map(|e| e.to_bytes()).collect::<Vec<_>>(), [&b"HOME=/"[..], b"A=b=c"]);
        assert_eq!((web.cwd, web.uid, web.gid, web.tty), (c"/srv", 33, 34, None));
        assert_eq!((web.deps, web.restart, web.ready, web.oneshot, web.echo), (&[0u8][..], Restart::OnFailure, Readiness::Fd(3), false, false));
        assert_eq!((web.stop_signal, web.stop_grace_ms, web.ring, web.max_failures), (2, 2000, 8192, 3));
        assert_eq!((web.backoff_initial_ms, web.backoff_max_ms, web.stable_after_ms, web.ready_timeout_ms), (100, 30_000, 10_000, 10_000));
        assert!(specs[0].oneshot && specs[0].echo);
        assert_eq!((specs[2].tty, specs[2].ready), (Some(c"/dev/console"), Readiness::Notify));
        let root = db.root();
        assert_eq!((root.device, root.fstype, root.options, root.init), (&b"LABEL=keel-root"[..], &b"ext4"[..], &b"noatime"[..], &b""[..]));
        assert_eq!((root.read_only, root.wait_secs, root.delay_secs, root.fsck, root.rescue), (false, Some(20), 0, true, Some(&[2u8][..])));
        let mounts: Vec<Mount> = db.mounts().collect();
        assert_eq!(mounts.len(), 2);
        assert_eq!((mounts[0].name, mounts[0].source, mounts[0].target), ("data", &b"UUID=0e8b1c4a-7f3d-4b6e-9a21-5c3d2e1f0a9b"[..], &b"/data"[..]));
        assert_eq!((mounts[0].fstype, mounts[0].required, mounts[0].wait_secs, mounts[0].services), (&b""[..], false, 10, &[1u8][..]));
        assert_eq!((mounts[1].fstype, mounts[1].required, mounts[1].services), (&b"tmpfs"[..], true, &[1u8][..]));
    }

    #[test]
    fn deterministic() {
        assert_eq!(compiled(TEXT), compiled(TEXT));
    }

    #[test]
    fn header_errors() {
        let good = compiled(TEXT);
        assert_eq!(Db::parse(&good[..10]).err(), Some(Error::Truncated));
        assert_eq!(Db::parse(&good[..good.len() - 1]).err(), Some(Error::Truncated));
        let mut longer = good.clone();
        longer.push(0);
        assert_eq!(Db::parse(&longer).err(), Some(Error::TooLong));
        let mut magic = good.clone();
        magic[0] = b'k';
        reseal(&mut magic);
        assert_eq!(Db::parse(&magic).err(), Some(Error::BadMagic));
        let mut version = good.clone();
        version[8] = 2;
        reseal(&mut version);
        assert_eq!(Db::parse(&version).err(), Some(Error::Version(2)));
        assert_eq!(Db::parse(&vec![0u8; MAX_LEN + 1]).err(), Some(Error::TooLong));
    }

    #[test]
    fn every_flipped_bit_is_refused() {
        let good = compiled(TEXT);
        for byte in 0..good.len() {
            for bit in 0..8 {
                let mut bad = good.clone();
                bad[byte] ^= 1 << bit;
                assert!(Db::parse(&bad).is_err(), "byte {byte} bit {bit}");
            }
        }
    }

    #[test]
    fn sealed_but_invalid_contents_are_refused() {
        let good = compiled(TEXT);
        let db = Db::parse(&good).unwrap();
        let services_at = db.services.as_ptr() as usize - good.as_ptr() as usize;
        let edit = |at: usize, value: u8| {
            let mut bad = good.clone();
            bad[at] = value;
            reseal(&mut bad);
            Db::parse(&bad).err()
        };
        let web = services_at + SERVICE_LEN;
        let root_at = db.root.as_ptr() as usize - good.as_ptr() as usize;
        let mounts_at = db.mounts.as_ptr() as usize - good.as_ptr() as usize;
        assert_eq!(edit(root_at + field::root::FLAGS, 0x10), Some(Error::BadValue { field: "root flags", service: None }));
        // wait_secs without its flag: not the compiler's form.
        assert_eq!(edit(root_at + field::root::FLAGS, 0), Some(Error::BadValue { field: "root flags", service: None }));
        assert_eq!(edit(mounts_at + MOUNT_LEN + field::mount::FLAGS, 2), Some(Error::BadMount { field: "mount flags", mount: 1 }));
        // The tmpfs mount without its type (the length of its fstype ref set to 0).
        assert_eq!(edit(mounts_at + MOUNT_LEN + field::mount::FSTYPE.start + 4, 0), Some(Error::BadMount { field: "mount source", mount: 1 }));
        assert_eq!(edit(web + field::service::RESTART, 9), Some(Error::BadValue { field: "restart", service: Some(1) }));
        assert_eq!(edit(web + field::service::READY_FD, 2), Some(Error::BadValue { field: "ready", service: Some(1) }));
        assert_eq!(edit(web + field::service::STOP_SIGNAL, 0), Some(Error::BadValue { field: "stop_signal", service: Some(1) }));
        assert_eq!(edit(web + field::service::FLAGS, 0x80), Some(Error::BadValue { field: "flags", service: Some(1) }));
        // A string ref past the end of the strings.
        assert_eq!(edit(web + field::service::NAME.start + 3, 0x7f), Some(Error::BadRef));
        // prepare (0) depending on web (1), which depends on prepare: a cycle.
        let mut cycle = good.clone();
        let web_deps = Db::parse(&good).unwrap().services().nth(1).unwrap().deps;
        let at = web_deps.as_ptr() as usize - good.as_ptr() as usize;
        cycle[at] = 2; // web -> shell
        reseal(&mut cycle);
        assert!(Db::parse(&cycle).is_ok());
        cycle[at] = 1; // web -> web
        reseal(&mut cycle);
        assert_eq!(Db::parse(&cycle).err(), Some(Error::BadValue { field: "dependencies", service: Some(1) }));
    }

    /// A cycle the compiler would have refused, sealed: a waits for b, b for a; c is fine.
    #[test]
    fn dependency_cycles_are_refused() {
        let good = compiled("[service.a]\nargv = [\"/a\"]\nafter = [\"b\"]\n[service.b]\nargv = [\"/b\"]\nafter = [\"c\"]\n[service.c]\nargv = [\"/c\"]\n");
        let db = Db::parse(&good).unwrap();
        let b_deps = db.services().nth(1).unwrap().deps;
        assert_eq!(b_deps, [2]);
        let at = b_deps.as_ptr() as usize - good.as_ptr() as usize;
        let mut cycle = good.clone();
        cycle[at] = 0;
        reseal(&mut cycle);
        assert_eq!(Db::parse(&cycle).err(), Some(Error::Cycle));
    }

    #[test]
    fn capacities() {
        let many: String = (0..MAX_SERVICES).map(|i| format!("[service.s{i}]\nargv = [\"/x\"]\n")).collect();
        let bytes = compiled(&many);
        assert_eq!(Db::parse(&bytes).unwrap().service_count(), MAX_SERVICES);
        // One record more than PID 1 holds, sealed as if a compiler had written it.
        let config = compile(&many).unwrap();
        let mut more = config.clone();
        more.services.push(config.services[0].clone());
        more.services.last_mut().unwrap().name = "extra".into();
        assert_eq!(Db::parse(&emit(&more)).err(), Some(Error::Capacity("more than 128 services")));
    }

    /// Refs set by hand into the strings, sealed: what `check_storage` refuses in them.
    #[test]
    fn storage_strings_are_checked() {
        let good = compiled(TEXT);
        let db = Db::parse(&good).unwrap();
        let strings_at = db.strings.as_ptr() as usize - good.as_ptr() as usize;
        let find = |needle: &[u8]| strings_at + db.strings.windows(needle.len()).position(|w| w == needle).unwrap();
        let patch = |at: usize, bytes: &[u8]| {
            let mut bad = good.clone();
            bad[at..at + bytes.len()].copy_from_slice(bytes);
            reseal(&mut bad);
            Db::parse(&bad).err()
        };
        assert_eq!(patch(find(b"LABEL=keel-root") + 5, b" "), Some(Error::BadValue { field: "root device", service: None }));
        assert_eq!(patch(find(b"/data"), b"data/"), Some(Error::BadMount { field: "mount target", mount: 0 }));
        assert_eq!(patch(find(b"noatime"), b"no\0time"), Some(Error::BadValue { field: "root options", service: None }));
        // The tmpfs source turned into a bad device (a LABEL= with nothing after).
        assert_eq!(patch(find(b"tmpfs\x2f"), b"/t f"), Some(Error::BadMount { field: "mount source", mount: 1 }));
    }

    #[test]
    fn an_empty_configuration_is_valid() {
        let bytes = compiled("");
        let db = Db::parse(&bytes).unwrap();
        assert_eq!((db.service_count(), db.channels().count(), db.system().hostname), (0, 0, &b""[..]));
        let sys = db.system();
        assert!(sys.coldplug && !sys.poweroff_reboots && sys.watchdog.is_none(), "the defaults");
        assert_eq!((db.root(), db.mounts().count()), (Root::NONE, 0));
    }

    #[test]
    fn random_input_never_panics() {
        let good = compiled(TEXT);
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let mut bad = good.clone();
            for _ in 0..(x % 4 + 1) {
                let at = (x as usize >> 8) % bad.len();
                bad[at] = (x >> 32) as u8;
                x = x.rotate_left(17);
            }
            if x % 3 == 0 {
                reseal(&mut bad);
            }
            let _ = Db::parse(&bad).map(|db| db.services().count());
        }
    }
}
