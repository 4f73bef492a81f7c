//! The kernel command line: `keel.*` words from /proc/cmdline (and argv/envp, where the
//! kernel puts words it does not know), applied over what the configuration file sets, and the
//! kernel's own root words (`RootArgs`). Unknown keys and bad values are reported to the
//! caller, which warns and goes on: the command line is never fatal. The values' grammar is
//! keel-config's, the file's own.

// One grammar for the file and the command line (keel-config's values).
pub use keel_config::values::{parse_u32, parse_u64, position, PanicPolicy};
use keel_config::values::{valid_hostname, valid_module_name};

/// What the command line configures. Every key is documented in README.md.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// `keel.shutdown_timeout=SECONDS`: the single deadline of the power sequence.
    pub shutdown_timeout_secs: u32,
    /// `keel.sync_timeout=SECONDS`: the most the final flush (sync, unmount) may take while
    /// the disk makes progress.
    pub sync_timeout_secs: u32,
    /// `keel.panic=reboot[:SECONDS]|halt|poweroff`: what a fatal error does.
    pub panic: PanicPolicy,
    /// `keel.test_panic`: panic once the loop runs (only with the `test-hooks` feature).
    pub test_panic: bool,
    /// `keel.test_hang`: PID 1 sleeps for good once ready, so nothing pets the watchdog;
    /// `keel.test_hang_shutdown`: it does so in the power sequence (`test-hooks` only).
    pub test_hang: bool,
    pub test_hang_shutdown: bool,
    /// `keel.watchdog=DEVICE[:SECONDS]`: the hardware watchdog keel pets.
    pub watchdog: Option<Watchdog>,
    /// `keel.poweroff=reboot`: every poweroff ends with a reboot (Firecracker on x86 ends
    /// the VM only when the guest reboots).
    pub poweroff_reboots: bool,
    /// `keel.svc.NAME=off`: bit i set = service i may not run.
    pub services_off: u128,
    /// `keel.single`: only the console shells (services with a tty).
    pub single: bool,
    /// `keel.coldplug=off|on`: load the modules the devices' modaliases match, at boot
    /// and as devices come (src/devices).
    pub coldplug: bool,
    /// The text values, `key=value` each with a NUL after it, in the order given (the
    /// file's first): `hostname` (the last counts), `modules` (every one adds its list),
    /// `debug` (the last counts: the debug channels, instead of the configured ones).
    values: heapless::Vec<u8, VALUES_MAX>,
    /// `root=`, `rootfstype=`, `ro`... (plain kernel words).
    pub root: RootArgs,
}

/// Room for the text root words (`root=`, `rootfstype=`, `rootflags=`, `init=`) together.
pub const ROOT_TEXT_MAX: usize = 512;
/// `rootwait` without a number: the longest keel waits for the root device (docs/root.md).
pub const ROOTWAIT_SECS: u32 = 30;

/// The kernel's own words for the root file system, which it ignores when it runs an
/// initramfs's /init: keel (src/root/) acts on them then. `None`: not given (the
/// configuration's `[root]` decides).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RootArgs {
    /// The text words as given, `key=value` each with a NUL after it: `text(key)` finds the
    /// last. `root=` is kept as it is: src/root checks it (a bad value is the emergency
    /// path, not a warning, since it names what to boot).
    words: heapless::Vec<u8, ROOT_TEXT_MAX>,
    /// `ro` (true) or `rw` (false): the last one given.
    pub read_only: Option<bool>,
    /// `rootwait` (ROOTWAIT_SECS) or `rootwait=SECONDS`.
    pub wait_secs: Option<u32>,
    /// `rootdelay=SECONDS`.
    pub delay_secs: Option<u32>,
    /// `fsck.mode=` (systemd-fsck's words).
    pub fsck: Option<FsckMode>,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum FsckMode {
    /// Check when the initramfs has `fsck.TYPE` (the default).
    Auto,
    /// Check even a filesystem marked clean (`-f`).
    Force,
    Skip,
}

impl RootArgs {
    /// The value of the last `key=` given (`root`, `rootfstype`, `rootflags`, `init`).
    pub fn text(&self, key: &[u8]) -> Option<&[u8]> {
        all(&self.words, key).last()
    }

    /// One word outside the `keel.` namespace: ours if it is a root word, else Ok.
    fn apply<'a>(&mut self, key: &'a [u8], value: Option<&'a [u8]>) -> Result<(), Problem<'a>> {
        let bad = |expected| Problem::BadValue { key, value: value.unwrap_or(b""), expected };
        let Some(k) = position(b"root rootflags rootfstype init ro rw rootwait rootdelay fsck.mode", key) else { return Ok(()) };
        let number = value.map(parse_u32);
        match (k, value) {
            (0 | 1, Some(_)) => {}
            (2, Some(v)) if v.split(|&b| b == b',').all(keel_config::values::valid_fstype) => {}
            (2, _) => return Err(bad("filesystem types separated by commas")),
            (3, Some(v)) if v.starts_with(b"/") => {}
            (3, _) => return Err(bad("an absolute path")),
            (4 | 5, None) => self.read_only = Some(k == 4),
            (6, None) => self.wait_secs = Some(ROOTWAIT_SECS),
            (6 | 7, _) => {
                let secs = Some(number.flatten().ok_or(bad("whole seconds"))?);
                *if k == 6 { &mut self.wait_secs } else { &mut self.delay_secs } = secs;
            }
            (8, _) => {
                let mode = position(b"auto force skip", value.unwrap_or(b"")).ok_or(bad("auto, force or skip"))?;
                self.fsck = [FsckMode::Auto, FsckMode::Force, FsckMode::Skip].get(mode).copied();
            }
            _ => {}
        }
        if k > 3 || value.is_none() {
            return Ok(());
        }
        // A text word: kept whole, unquoted, for `text`.
        keep(self.words.as_mut_view(), key, value.unwrap_or(b"")).ok_or(bad("shorter (all root words: at most 512 bytes)"))
    }
}

/// The values of every `key=` in `words` (`key=value` entries, each ending in a NUL).
fn all<'a, 'k>(words: &'a [u8], key: &'k [u8]) -> impl Iterator<Item = &'a [u8]> + use<'a, 'k> {
    words.split(|&b| b == 0).filter_map(move |w| w.strip_prefix(key)?.strip_prefix(b"="))
}

/// Add `key=value` and its NUL to `words`; None if it does not fit (or holds a NUL).
fn keep(words: &mut heapless::vec::VecView<u8>, key: &[u8], value: &[u8]) -> Option<()> {
    let room = words.capacity() - words.len();
    if value.contains(&0) || room < key.len() + value.len() + 2 {
        return None;
    }
    for part in [key, b"=", value, b"\0"] {
        let _ = words.extend_from_slice(part);
    }
    Some(())
}

/// Room for `keel.config=` (a path and its NUL).
pub const PATH_MAX: usize = 128;

/// Room for the `keel.*` text values together: a host name (at most 64), debug channels
/// and a few dozen module names.
pub const VALUES_MAX: usize = 1024;

/// A hardware watchdog: the name under /dev and the timeout asked for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Watchdog {
    pub device: heapless::Vec<u8, 32>,
    pub timeout_secs: u32,
}

impl Watchdog {
    /// The grammar's value (from the command line or the `[system]` file), copied: the
    /// command line is read into a buffer that does not outlive boot.
    pub fn from_value(w: keel_config::values::Watchdog) -> Option<Watchdog> {
        Some(Watchdog { device: heapless::Vec::from_slice(w.device).ok()?, timeout_secs: w.timeout_secs })
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            shutdown_timeout_secs: 10,
            sync_timeout_secs: 30,
            panic: PanicPolicy::DEFAULT,
            test_panic: false,
            test_hang: false,
            test_hang_shutdown: false,
            watchdog: None,
            poweroff_reboots: false,
            services_off: 0,
            single: false,
            coldplug: true,
            values: heapless::Vec::new(),
            root: RootArgs::default(),
        }
    }
}

impl Config {
    /// What the configuration file sets, before the command line's words.
    pub fn from_file(db: &keel_config::db::Db) -> Config {
        let sys = db.system();
        let mut c = Config {
            shutdown_timeout_secs: sys.shutdown_timeout_ms / 1000,
            sync_timeout_secs: sys.sync_timeout_ms / 1000,
            panic: sys.panic,
            watchdog: sys.watchdog.and_then(Watchdog::from_value),
            poweroff_reboots: sys.poweroff_reboots,
            coldplug: sys.coldplug,
            ..Config::default()
        };
        // Fits: a host name of at most 64 bytes, and the file's modules are few (the
        // command line's are added after them, and refused when there is no room).
        if !sys.hostname.is_empty() {
            let _ = keep(c.values.as_mut_view(), b"hostname", sys.hostname);
        }
        for m in db.modules() {
            let _ = keep(c.values.as_mut_view(), b"modules", m);
        }
        c
    }

    /// `keel.config=PATH` among `words` (the last one wins), as a C string.
    pub fn config_path<'w>(words: impl Iterator<Item = &'w [u8]>, buf: &mut [u8; PATH_MAX]) -> Option<&core::ffi::CStr> {
        let path = words.filter_map(|w| w.strip_prefix(b"keel.config=")).map(unquote).last()?;
        (path.starts_with(b"/")).then(|| crate::file::c_path(&[path], buf)).flatten()
    }
}

/// Why a `keel.*` word was not applied.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Problem<'a> {
    UnknownKey(&'a [u8]),
    BadValue { key: &'a [u8], value: &'a [u8], expected: &'static str },
}

impl Config {
    /// Apply one command-line word. Words outside the `keel.` namespace are not ours: Ok.
    pub fn apply<'a>(&mut self, word: &'a [u8]) -> Result<(), Problem<'a>> {
        let (key, value) = match memchr::memchr(b'=', word) {
            Some(eq) => (word.get(..eq).unwrap_or_default(), word.get(eq + 1..).map(unquote)),
            None => (word, None),
        };
        let Some(name) = key.strip_prefix(b"keel.") else { return self.root.apply(key, value) };
        let bad = |expected| Problem::BadValue { key, value: value.unwrap_or(b""), expected };
        let seconds = || value.and_then(parse_u32).ok_or(bad("whole seconds"));
        // The test hooks last: without the feature they are unknown keys.
        let keys: &[u8] = b"shutdown_timeout sync_timeout panic config watchdog poweroff single debug hostname modules \
                            coldplug test_panic test_hang test_hang_shutdown";
        let known = if cfg!(feature = "test-hooks") { 14 } else { 11 };
        match position(keys, name).filter(|&k| k < known) {
            Some(0) => self.shutdown_timeout_secs = seconds()?,
            Some(1) => self.sync_timeout_secs = seconds()?,
            Some(2) => self.panic = value.and_then(PanicPolicy::parse).ok_or(bad(PanicPolicy::EXPECTED))?,
            // Read before everything else (`config_path`); checked here for the warning.
            Some(3) => {
                let path = value.filter(|p| p.starts_with(b"/")).ok_or(bad("an absolute path"))?;
                if path.len() >= PATH_MAX {
                    return Err(bad("a shorter path"));
                }
            }
            Some(4) => {
                let w = value.and_then(keel_config::values::Watchdog::parse).and_then(Watchdog::from_value);
                self.watchdog = Some(w.ok_or(bad("DEVICE[:SECONDS]"))?);
            }
            Some(5) => {
                let reboots = value.and_then(|v| position(b"poweroff reboot", v)).ok_or(bad("reboot or poweroff"))?;
                self.poweroff_reboots = reboots == 1;
            }
            Some(6) if value.is_none() => self.single = true,
            Some(7) => {
                let list = value.ok_or(bad("channels like ttyS1:rw,vsock:1024:ro"))?;
                if let Some(e) = list.split(|&b| b == b',').filter(|s| !s.is_empty()).find_map(|s| keel_config::channel::Channel::parse(s).err()) {
                    return Err(bad(e.text()));
                }
                keep(self.values.as_mut_view(), b"debug", list).ok_or(bad("a shorter list"))?;
            }
            Some(8) => {
                let name = value.filter(|v| valid_hostname(v)).ok_or(bad("a host name (letters, digits, '-', '.'; at most 64)"))?;
                keep(self.values.as_mut_view(), b"hostname", name).ok_or(bad("a shorter value"))?;
            }
            // Repeated keys add up, as modprobe's module lists do.
            Some(9) => {
                let list = value.filter(|v| v.split(|&b| b == b',').all(valid_module_name));
                let list = list.ok_or(bad("module names separated by commas"))?;
                keep(self.values.as_mut_view(), b"modules", list).ok_or(bad("a shorter list"))?;
            }
            Some(10) => self.coldplug = value.and_then(|v| position(b"off on", v)).ok_or(bad("off or on"))? == 1,
            Some(11) => self.test_panic = true,
            Some(12) => self.test_hang = true,
            Some(13) => self.test_hang_shutdown = true,
            _ => {
                let service = name.strip_prefix(b"svc.").and_then(crate::services::spec::find);
                let Some(i) = service else { return Err(Problem::UnknownKey(key)) };
                let bit = 1u128.checked_shl(i as u32).unwrap_or(0);
                match value.and_then(|v| position(b"on off", v)) {
                    Some(off) if off == 1 => self.services_off |= bit,
                    Some(_) => self.services_off &= !bit,
                    None => return Err(bad("off or on")),
                }
            }
        }
        Ok(())
    }
}

impl Config {
    pub fn hostname(&self) -> Option<&[u8]> {
        all(&self.values, b"hostname").last()
    }

    /// The debug channels: `keel.debug=` if given (even empty: none), else `configured`.
    pub fn debug_channels<'a>(&'a self, configured: impl Iterator<Item = &'a [u8]>) -> impl Iterator<Item = &'a [u8]> {
        let given = all(&self.values, b"debug").last();
        let listed = given.map(|d| d.split(|&b| b == b',').filter(|s| !s.is_empty()));
        listed.into_iter().flatten().chain(configured.filter(move |_| given.is_none()))
    }

    /// The file's modules, then those of every `keel.modules=`.
    pub fn extra_modules(&self) -> impl Iterator<Item = &[u8]> {
        all(&self.values, b"modules").flat_map(|list| list.split(|&b| b == b',')).filter(|m| !m.is_empty())
    }
}


fn unquote(v: &[u8]) -> &[u8] {
    match v {
        [b'"', inner @ .., b'"'] => inner,
        _ => v,
    }
}

/// Split a command line into words: whitespace separates, double quotes group.
pub fn words(line: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = line;
    core::iter::from_fn(move || {
        let start = rest.iter().position(|b| !b.is_ascii_whitespace() && *b != 0)?;
        rest = &rest[start..];
        let mut quoted = false;
        let end = rest
            .iter()
            .position(|&b| {
                if b == b'"' {
                    quoted = !quoted;
                }
                !quoted && (b.is_ascii_whitespace() || b == 0)
            })
            .unwrap_or(rest.len());
        let (word, tail) = rest.split_at(end);
        rest = tail;
        Some(word)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::power::PowerCmd;
    use crate::services::spec::{example, Spec};

    fn parse(line: &str) -> (Config, Vec<String>) {
        let mut c = Config::default();
        let mut problems = Vec::new();
        for w in words(line.as_bytes()) {
            if let Err(p) = c.apply(w) {
                problems.push(format!("{p:?}"));
            }
        }
        (c, problems)
    }

    #[test]
    fn defaults() {
        let (c, p) = parse("BOOT_IMAGE=/vmlinuz root=/dev/vda ro quiet");
        assert_eq!(Config { root: RootArgs::default(), ..c.clone() }, Config::default(), "only root words set");
        assert!(p.is_empty());
        assert_eq!(c.shutdown_timeout_secs, 10);
        assert_eq!(c.sync_timeout_secs, 30);
        assert_eq!(c.panic, PanicPolicy { action: PowerCmd::Reboot, delay_secs: 10 });
    }

    #[test]
    fn good_values() {
        let (c, p) = parse("console=ttyS0 keel.shutdown_timeout=3 keel.panic=reboot:0\n");
        assert!(p.is_empty(), "{p:?}");
        assert_eq!(c.shutdown_timeout_secs, 3);
        assert_eq!(c.panic, PanicPolicy { action: PowerCmd::Reboot, delay_secs: 0 });
        assert_eq!(parse("keel.panic=halt").0.panic, PanicPolicy { action: PowerCmd::Halt, delay_secs: 0 });
        assert_eq!(parse("keel.panic=poweroff").0.panic.action, PowerCmd::PowerOff);
        assert_eq!(parse("keel.panic=reboot").0.panic.delay_secs, 10);
        assert_eq!(parse("keel.shutdown_timeout=\"7\"").0.shutdown_timeout_secs, 7);
        assert_eq!(parse("keel.sync_timeout=120").0.sync_timeout_secs, 120);
        assert_eq!(parse("keel.sync_timeout=0").0.sync_timeout_secs, 0);
    }

    #[test]
    fn bad_values_warn_and_keep_the_default() {
        for bad in [
            "keel.shutdown_timeout=",
            "keel.shutdown_timeout",
            "keel.shutdown_timeout=-1",
            "keel.shutdown_timeout=1.5",
            "keel.shutdown_timeout=99999999999",
            "keel.shutdown_timeout=4294967296",
            "keel.sync_timeout=5s",
            "keel.sync_timeout",
            "keel.panic=explode",
            "keel.panic=reboot:",
            "keel.panic=reboot:x",
            "keel.panic=halt:5",
            "keel.panic",
        ] {
            let (c, p) = parse(bad);
            assert_eq!(c, Config::default(), "{bad}");
            assert_eq!(p.len(), 1, "{bad}");
            assert!(p[0].starts_with("BadValue"), "{bad}: {p:?}");
        }
    }

    #[test]
    fn unknown_keys_are_reported_with_their_name() {
        let mut c = Config::default();
        assert_eq!(c.apply(b"keel.frobnicate=1"), Err(Problem::UnknownKey(b"keel.frobnicate")));
        assert_eq!(c.apply(b"keel."), Err(Problem::UnknownKey(b"keel.")));
        assert_eq!(c.apply(b"keelx=1"), Ok(()));
        #[cfg(not(feature = "test-hooks"))]
        assert_eq!(c.apply(b"keel.test_panic"), Err(Problem::UnknownKey(b"keel.test_panic")));
    }

    #[test]
    fn words_split_on_space_and_respect_quotes() {
        let w: Vec<&[u8]> = words(b"  a  b=\"x y\"\tc\n\0").collect();
        assert_eq!(w, [&b"a"[..], b"b=\"x y\"", b"c"]);
        assert_eq!(words(b"").count(), 0);
        assert_eq!(words(b"\"unterminated quote").count(), 1);
    }

    #[test]
    fn hostname_and_modules() {
        let (c, p) = parse("keel.hostname=box-1.lan keel.modules=virtio_net,9p keel.modules=fuse");
        assert!(p.is_empty(), "{p:?}");
        assert_eq!(c.hostname(), Some(&b"box-1.lan"[..]));
        let mods: Vec<&[u8]> = c.extra_modules().collect();
        assert_eq!(mods, [&b"virtio_net"[..], b"9p", b"fuse"]);
        assert_eq!(Config::default().hostname(), None);
        assert_eq!(Config::default().extra_modules().count(), 0);
        for bad in ["keel.hostname=", "keel.hostname=a/b", "keel.modules=a,,b", "keel.modules=../x", "keel.modules="] {
            let (c, p) = parse(bad);
            assert_eq!(c, Config::default(), "{bad}");
            assert_eq!(p.len(), 1, "{bad}");
        }
        let long = format!("keel.hostname={}", "a".repeat(65));
        assert_eq!(parse(&long).1.len(), 1);
    }

    #[test]
    fn services_can_be_switched_off_by_name() {
        static TABLE: std::sync::OnceLock<Vec<crate::services::spec::Spec<'static>>> = std::sync::OnceLock::new();
        let table = TABLE.get_or_init(|| vec![Spec { name: "db", ..example() }, Spec { name: "shell", ..example() }]);
        crate::services::spec::set_table(table);
        let i = crate::services::spec::find(b"shell").unwrap();
        assert_eq!(i, 1);
        let (c, p) = parse("keel.svc.shell=off");
        assert!(p.is_empty(), "{p:?}");
        assert_eq!(c.services_off, 1 << i);
        assert_eq!(parse("keel.svc.shell=off keel.svc.shell=on").0.services_off, 0);
        assert_eq!(parse("keel.svc.nosuch=off").1, ["UnknownKey([107, 101, 101, 108, 46, 115, 118, 99, 46, 110, 111, 115, 117, 99, 104])"]);
        assert_eq!(parse("keel.svc.shell=maybe").1.len(), 1);
        assert!(parse("keel.single").0.single);
        assert_eq!(parse("keel.single=1").1.len(), 1);
    }

    #[test]
    fn debug_channels() {
        let (c, p) = parse("keel.debug=ttyS1:115200:rw,vsock:1024");
        assert!(p.is_empty(), "{p:?}");
        let configured = || [&b"hvc0"[..]].into_iter();
        let ch: Vec<&[u8]> = c.debug_channels(configured()).collect();
        assert_eq!(ch, [&b"ttyS1:115200:rw"[..], b"vsock:1024"], "the command line replaces the file's");
        assert_eq!(parse("keel.debug=").0.debug_channels(configured()).count(), 0, "empty: none");
        let (c, p) = parse("keel.debug=ttyS1:fast");
        assert_eq!(c, Config::default());
        assert_eq!(p.len(), 1);
        let default = Config::default();
        assert_eq!(default.debug_channels(configured()).collect::<Vec<_>>(), [&b"hvc0"[..]], "else the file's");
    }

    #[test]
    fn watchdog_and_poweroff() {
        let (c, p) = parse("keel.watchdog=watchdog0:3 keel.poweroff=reboot");
        assert!(p.is_empty(), "{p:?}");
        let w = c.watchdog.unwrap();
        assert_eq!((&w.device[..], w.timeout_secs), (&b"watchdog0"[..], 3));
        assert!(c.poweroff_reboots);
        let w = parse("keel.watchdog=/dev/watchdog1").0.watchdog.unwrap();
        assert_eq!((&w.device[..], w.timeout_secs), (&b"watchdog1"[..], 30), "the grammar's default");
        assert!(!parse("keel.poweroff=reboot keel.poweroff=poweroff").0.poweroff_reboots, "the last word counts");
        assert!(Config::default().coldplug && !parse("keel.coldplug=off").0.coldplug);
        for bad in ["keel.watchdog", "keel.watchdog=", "keel.watchdog=watchdog0:1", "keel.watchdog=../x", "keel.poweroff", "keel.poweroff=halt",
                    "keel.coldplug", "keel.coldplug=no"] {
            let (c, p) = parse(bad);
            assert_eq!(c, Config::default(), "{bad}");
            assert_eq!(p.len(), 1, "{bad}");
            assert!(p[0].starts_with("BadValue"), "{bad}: {p:?}");
        }
    }

    #[test]
    fn test_hooks_exist_only_in_test_builds() {
        let (c, p) = parse("keel.test_hang keel.test_hang_shutdown");
        if cfg!(feature = "test-hooks") {
            assert!(p.is_empty() && c.test_hang && c.test_hang_shutdown, "{p:?}");
        } else {
            assert_eq!(p.len(), 2, "{p:?}");
            assert_eq!(c, Config::default());
        }
    }

    #[test]
    fn the_file_sets_the_defaults_and_the_command_line_wins() {
        let text = "[system]\nhostname = \"box\"\nmodules = [\"9p\"]\nshutdown_timeout = \"7s\"\nsync_timeout = \"5s\"\n\
                    panic = \"halt\"\nwatchdog = \"watchdog1:20\"\npoweroff = \"reboot\"\ncoldplug = false\n";
        let bytes = keel_config::db::emit(&keel_config::compiler::compile(text).unwrap());
        let db = keel_config::db::Db::parse(&bytes).unwrap();
        let mut c = Config::from_file(&db);
        assert_eq!((c.hostname(), c.shutdown_timeout_secs, c.sync_timeout_secs), (Some(&b"box"[..]), 7, 5));
        assert_eq!(c.panic, PanicPolicy { action: PowerCmd::Halt, delay_secs: 0 });
        assert_eq!(c.watchdog.as_ref().map(|w| (&w.device[..], w.timeout_secs)), Some((&b"watchdog1"[..], 20)));
        assert!(c.poweroff_reboots && !c.coldplug);
        for word in ["keel.shutdown_timeout=3", "keel.hostname=other", "keel.modules=fuse", "keel.poweroff=poweroff", "keel.coldplug=on"] {
            c.apply(word.as_bytes()).unwrap();
        }
        assert_eq!((c.shutdown_timeout_secs, c.hostname(), c.poweroff_reboots), (3, Some(&b"other"[..]), false));
        assert!(c.coldplug);
        assert_eq!(c.extra_modules().collect::<Vec<_>>(), [&b"9p"[..], b"fuse"], "module lists add up");
    }

    #[test]
    fn root_words() {
        let (c, p) = parse("root=PARTUUID=5eed1234-02 rootfstype=ext4,xfs rootflags=noatime ro rootwait rootdelay=2 init=/lib/systemd/systemd fsck.mode=force");
        assert!(p.is_empty(), "{p:?}");
        let r = &c.root;
        assert_eq!(r.text(b"root"), Some(&b"PARTUUID=5eed1234-02"[..]));
        assert_eq!((r.text(b"rootfstype"), r.text(b"rootflags")), (Some(&b"ext4,xfs"[..]), Some(&b"noatime"[..])));
        assert_eq!((r.read_only, r.wait_secs, r.delay_secs), (Some(true), Some(ROOTWAIT_SECS), Some(2)));
        assert_eq!((r.text(b"init"), r.fsck), (Some(&b"/lib/systemd/systemd"[..]), Some(FsckMode::Force)));
        assert_eq!((r.text(b"ro"), r.text(b"roo")), (None, None));
        // The last of ro/rw wins; rootwait takes a number; a bad root= is kept for src/root.
        let (c, p) = parse("ro rw rootwait=7 root=sda1 fsck.mode=skip");
        assert!(p.is_empty(), "{p:?}");
        assert_eq!((c.root.read_only, c.root.wait_secs, c.root.fsck), (Some(false), Some(7), Some(FsckMode::Skip)));
        assert_eq!(c.root.text(b"root"), Some(&b"sda1"[..]));
        assert_eq!(parse("root=\"LABEL=my root\"").0.root.text(b"root"), Some(&b"LABEL=my root"[..]));
        assert_eq!(parse("root=/dev/vda root=/dev/vdb").0.root.text(b"root"), Some(&b"/dev/vdb"[..]), "the last wins");
        // Not root words: left alone.
        assert_eq!(parse("rootx=1 ro=1 rootwaitx BOOT_IMAGE=/vmlinuz").0, Config::default());
        for bad in ["rootwait=x", "rootdelay=-1", "rootdelay", "init=sbin/init", "init", "rootfstype=ext4,,xfs", "rootfstype=a/b", "rootfstype", "fsck.mode=maybe"] {
            let (c, p) = parse(bad);
            assert_eq!(c, Config::default(), "{bad}");
            assert_eq!(p.len(), 1, "{bad}: {p:?}");
        }
        assert_eq!(parse(&format!("root=/dev/{}", "x".repeat(520))).1.len(), 1, "too long");
        assert_eq!(parse(&format!("root=/dev/{}", "x".repeat(490))).1.len(), 0);
    }

    #[test]
    fn numbers() {
        assert_eq!(parse_u32(b"0"), Some(0));
        assert_eq!(parse_u32(b"4294967295"), Some(u32::MAX));
        assert_eq!(parse_u32(b"4294967296"), None);
        assert_eq!(parse_u32(b""), None);
        assert_eq!(parse_u32(b"+1"), None);
    }
}
