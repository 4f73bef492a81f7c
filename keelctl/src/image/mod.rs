//! `keelctl image`: one bootable initramfs from the release binaries and one config file
//! (docs/image.md). What goes in, in order of precedence (a later source never replaces
//! an earlier one's path):
//!
//! 1. keel's own: `/init` (the keel binary: static, of the image's machine), its applet
//!    links `/sbin/{poweroff,reboot,halt}` → `/init`, the compiled config at
//!    `/etc/keel/keel.db` (`--config`), the base directories, `/dev/console` and
//!    `/dev/null` (so the kernel can open init's stdio before devtmpfs is mounted);
//! 2. `--add HOST:GUEST` files, mode kept;
//! 3. busybox (`--busybox`) and its applet links in /bin (never keel's names);
//! 4. the program each service names (argv[0], and a script's `#!` interpreter), from the
//!    host or `--sysroot`;
//! 5. what the dynamically linked ones among all these need: their ELF interpreter and
//!    shared libraries (ldso.rs);
//! 6. kernel modules from `--modules-from DIR`: keel's own list, the config's
//!    `[system] modules` and the classes `--modules-for` names, with their dependencies
//!    (modules.rs).
//!
//! The archive is deterministic (cpio.rs): the same inputs give the same bytes.

mod busybox;
pub mod compress;
mod cpio;
mod elf;
mod ldso;
mod modules;
mod root;

use compress::Compress;
use cpio::Archive;
use root::Root;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Where keel reads its compiled config (`keel.config=PATH` on the kernel command line
/// names another).
pub const CONFIG_PATH: &str = "/etc/keel/keel.db";
/// keel's names: busybox and `--add` never take them.
const KEEL_APPLETS: [&str; 3] = ["poweroff", "reboot", "halt"];
/// The base directories (and /root 0700, /tmp 1777): mount points keel uses and what a
/// shell expects.
const DIRS: [&str; 11] = ["bin", "dev", "etc", "lib", "mnt", "proc", "root", "run", "sbin", "sys", "tmp"];

/// The guest's architecture: what every ELF in the image must be for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arch {
    X86_64,
    Aarch64,
}

impl Arch {
    pub fn parse(s: &str) -> Option<Arch> {
        match s {
            "x86_64" => Some(Arch::X86_64),
            "aarch64" | "arm64" => Some(Arch::Aarch64),
            _ => None,
        }
    }

    /// This host's, if keel runs on it: the machine the kernel reports (uname -m), so an
    /// i686 keelctl on an x86_64 kernel means x86_64.
    pub fn host() -> Option<Arch> {
        Arch::parse(&rustix::system::uname().machine().to_string_lossy())
    }

    pub fn name(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86_64",
            Arch::Aarch64 => "aarch64",
        }
    }

    pub fn machine(self) -> u16 {
        match self {
            Arch::X86_64 => 62,
            Arch::Aarch64 => 183,
        }
    }

    /// Debian's multiarch directory name (/lib/x86_64-linux-gnu).
    pub fn triple(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86_64-linux-gnu",
            Arch::Aarch64 => "aarch64-linux-gnu",
        }
    }

    /// The modules keel itself loads at boot on this architecture (keel-config's list).
    pub fn keel_modules(self) -> Vec<String> {
        let list = match self {
            Arch::X86_64 => keel_config::modules::X86_64,
            Arch::Aarch64 => keel_config::modules::AARCH64,
        };
        list.iter().map(|m| String::from_utf8_lossy(m).into_owned()).collect()
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Options {
    pub output: PathBuf,
    pub config: Option<PathBuf>,
    pub modules_from: Option<PathBuf>,
    /// Instead of keel's own list (tests; the config's `[system] modules` still count).
    pub modules: Option<Vec<String>>,
    /// Hardware classes whose drivers are packed too (`modules::CLASSES`).
    pub modules_for: Vec<String>,
    pub omit_modules: Vec<String>,
    pub busybox: Option<PathBuf>,
    /// Host file, guest path.
    pub add: Vec<(PathBuf, String)>,
    pub sysroot: Option<PathBuf>,
    pub keel: Option<PathBuf>,
    /// None: this host's.
    pub arch: Option<Arch>,
    pub compress: Compress,
    pub verbose: bool,
}

/// What happened, for the closing line and the warnings.
#[derive(Default)]
pub struct Report {
    pub warnings: Vec<String>,
    pub notes: Vec<String>,
    /// "what: from where", for -v.
    pub packed: Vec<String>,
    pub summary: Vec<String>,
}

/// Why no image was made.
#[derive(Debug, PartialEq)]
pub enum Failure {
    /// `--config` has errors: every one, `FILE:LINE: message`.
    Config(Vec<String>),
    Other(String),
}

impl From<String> for Failure {
    fn from(s: String) -> Failure {
        Failure::Other(s)
    }
}

/// Build the image's bytes (compressed as asked).
pub fn build(o: &Options) -> Result<(Vec<u8>, Report), Failure> {
    let mut b = Builder::new(o)?;
    b.run()?;
    let data = o.compress.apply(b.archive.newc());
    Ok((data, b.report))
}

struct Builder<'a> {
    o: &'a Options,
    arch: Arch,
    root: Root,
    archive: Archive,
    report: Report,
    config: Option<keel_config::compiler::Config>,
    /// Dynamically linked ELFs in the image: guest path, the ELF, who asked (for messages).
    dynamic: Vec<(String, elf::Elf, String)>,
}

impl<'a> Builder<'a> {
    fn new(o: &'a Options) -> Result<Builder<'a>, String> {
        let arch = match o.arch.or_else(Arch::host) {
            Some(a) => a,
            None => {
                let machine = rustix::system::uname().machine().to_string_lossy().into_owned();
                return Err(format!("no keel for this host's machine ({machine}): give --arch x86_64 or aarch64"));
            }
        };
        let root = match &o.sysroot {
            Some(dir) if !dir.is_dir() => return Err(format!("--sysroot {}: not a directory", dir.display())),
            Some(dir) => Root::new(dir),
            None => Root::host(),
        };
        Ok(Builder { o, arch, root, archive: Archive::new(), report: Report::default(), config: None, dynamic: Vec::new() })
    }

    fn note(&mut self, what: String) {
        self.report.packed.push(what);
    }

    fn run(&mut self) -> Result<(), Failure> {
        self.base()?;
        self.keel()?;
        self.config()?;
        self.added()?;
        self.busybox()?;
        self.programs()?;
        self.libraries()?;
        self.modules()?;
        if self.config.is_none() && self.archive.get("bin/sh").is_none() {
            self.report.warnings.push(
                "no --config: keel runs its built-in table (by default a shell, /bin/sh), and the image has no /bin/sh (--busybox gives one)".into(),
            );
        }
        Ok(())
    }

    fn base(&mut self) -> Result<(), String> {
        for d in DIRS {
            let perm = match d {
                "root" => 0o700,
                "tmp" => 0o1777,
                _ => 0o755,
            };
            self.archive.dir(d, perm)?;
        }
        self.archive.chardev("dev/console", 5, 1, 0o600)?;
        self.archive.chardev("dev/null", 1, 3, 0o666)
    }

    /// The keel binary: --keel, else the `keel` next to this keelctl, else on PATH.
    fn keel_path(&self) -> Result<PathBuf, String> {
        if let Some(p) = &self.o.keel {
            return Ok(p.clone());
        }
        let beside = std::env::current_exe().ok().and_then(|exe| Some(exe.parent()?.join("keel")));
        if let Some(p) = beside.iter().find(|p| p.is_file()) {
            return Ok(p.clone());
        }
        let on_path = std::env::var_os("PATH")
            .map(|path| std::env::split_paths(&path).map(|d| d.join("keel")).find(|p| p.is_file()))
            .unwrap_or_default();
        on_path.ok_or_else(|| {
            let beside = beside.map_or(String::new(), |p| format!(" ({})", p.display()));
            format!("no keel binary next to keelctl{beside} or on PATH: give --keel PATH")
        })
    }

    fn keel(&mut self) -> Result<(), String> {
        let path = self.keel_path()?;
        let (data, _) = root::read_file(&path).map_err(|e| format!("--keel {}: {e}", path.display()))?;
        let e = self.check_machine(&path.display().to_string(), &data)?;
        if let Some(interp) = &e.interp {
            return Err(format!("{} is dynamically linked (interpreter {interp}): keel is a static binary", path.display()));
        }
        if !e.needed.is_empty() {
            return Err(format!("{} needs shared libraries ({}): keel is a static binary", path.display(), e.needed.join(", ")));
        }
        self.archive.file("init", data, 0o755)?;
        for applet in KEEL_APPLETS {
            self.archive.symlink(&format!("sbin/{applet}"), "/init")?;
        }
        self.note(format!("/init: {}", path.display()));
        self.report.summary.push(format!("keel for {}", self.arch.name()));
        Ok(())
    }

    /// An ELF for the image's machine, or an error saying what it is instead.
    fn check_machine(&self, what: &str, data: &[u8]) -> Result<elf::Elf, String> {
        let arch = self.arch.name();
        let e = elf::parse(data).map_err(|why| format!("{what} is not an {arch} ELF64 ({why})"))?;
        if e.machine != self.arch.machine() || !e.class64 {
            let class = if e.class64 { "" } else { ", 32-bit" };
            return Err(format!("{what} is not an {arch} ELF64 (it is for {}{class})", elf::machine_name(e.machine)));
        }
        Ok(e)
    }

    fn config(&mut self) -> Result<(), Failure> {
        let Some(path) = &self.o.config else { return Ok(()) };
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| format!("{shown}: {e}"))?;
        let config = keel_config::compiler::compile(&text)
            .map_err(|errors| Failure::Config(errors.iter().map(|e| e.at(&shown).to_string()).collect()))?;
        let db = crate::compile::emit_checked(&config).map_err(|why| format!("{shown}: {why}"))?;
        self.archive.file(CONFIG_PATH, db, 0o644)?;
        self.note(format!("{CONFIG_PATH}: {shown} compiled"));
        self.report.summary.push(format!("config with {} services", config.services.len()));
        self.config = Some(config);
        Ok(())
    }

    /// A path keel's own entries hold.
    fn keels(&self, guest: &str) -> bool {
        let g = guest.trim_matches('/');
        g == "init" || KEEL_APPLETS.iter().any(|a| g == format!("sbin/{a}")) || (self.config.is_some() && g == &CONFIG_PATH[1..])
    }

    fn added(&mut self) -> Result<(), String> {
        let o = self.o;
        for (host, guest) in &o.add {
            let what = format!("--add {}:{guest}", host.display());
            if !guest.starts_with('/') {
                return Err(format!("{what}: the guest path must be absolute"));
            }
            if self.keels(guest) {
                return Err(format!("{what}: {guest} is keel's"));
            }
            let meta = std::fs::metadata(host).map_err(|e| format!("{what}: {e}"))?;
            if !meta.is_file() {
                return Err(format!("{what}: not a regular file"));
            }
            let (data, mode) = root::read_file(host).map_err(|e| format!("{what}: {e}"))?;
            self.maybe_dynamic(guest, &data, &format!("--add {}", host.display()));
            self.archive.file(guest, data, mode).map_err(|e| format!("{what}: {e}"))?;
            self.note(format!("{guest}: {}", host.display()));
        }
        if !o.add.is_empty() {
            self.report.summary.push(format!("{} added files", o.add.len()));
        }
        Ok(())
    }

    /// Remember a dynamically linked ELF of the image's machine (its libraries come later).
    /// Anything else (data, a static program, another machine's ELF) is taken as it is.
    fn maybe_dynamic(&mut self, guest: &str, data: &[u8], who: &str) {
        if !elf::is_elf(data) {
            return;
        }
        match elf::parse(data) {
            Ok(e) if e.is_dynamic() && e.machine == self.arch.machine() => self.dynamic.push((guest.to_string(), e, who.to_string())),
            Ok(e) if e.is_dynamic() => self.report.warnings.push(format!(
                "{who}: {guest} is a dynamically linked {} program: its libraries are not added",
                elf::machine_name(e.machine)
            )),
            _ => {}
        }
    }

    fn busybox(&mut self) -> Result<(), String> {
        let Some(path) = self.o.busybox.clone() else { return Ok(()) };
        let what = format!("--busybox {}", path.display());
        let (data, _) = root::read_file(&path).map_err(|e| format!("{what}: {e}"))?;
        let e = self.check_machine(&path.display().to_string(), &data)?;
        let runs_here = Arch::host() == Some(self.arch) && !e.is_dynamic();
        let applets = busybox::applets(&path, &data, runs_here)?;
        if self.archive.get("bin/busybox").is_none() {
            self.maybe_dynamic("/bin/busybox", &data, &what);
            self.archive.file("bin/busybox", data, 0o755)?;
            self.note(format!("/bin/busybox: {}", path.display()));
        }
        let mut linked = 0;
        for applet in &applets {
            let link = format!("bin/{applet}");
            if self.archive.get(&link).is_none() {
                self.archive.symlink(&link, "busybox")?;
                linked += 1;
            }
        }
        self.report.summary.push(format!("busybox with {linked} applets"));
        Ok(())
    }

    /// Every service's argv[0] not already in the image, and a script's interpreter.
    fn programs(&mut self) -> Result<(), String> {
        let Some(config) = self.config.clone() else { return Ok(()) };
        let mut count = 0;
        for s in &config.services {
            if s.cwd != "/" && self.archive.get(&s.cwd).is_none() {
                self.archive.dir(&s.cwd, 0o755)?;
            }
            let Some(program) = s.argv.first() else { continue };
            let mut next = Some(program.clone());
            let mut hops = 0;
            while let Some(path) = next.take() {
                hops += 1;
                if self.archive.get(&path).is_some() || hops > 4 {
                    break;
                }
                let what = format!("service {}: {path}", s.name);
                let found = self.root.find(&path).map_err(|e| format!("{what}: {e}"))?;
                let Some(found) = found else {
                    let place = if self.root.is_host() { "on this host".to_string() } else { format!("under {}", self.root.dir().display()) };
                    return Err(format!("{what} is not {place}, nor given by --add or --busybox"));
                };
                let (data, mode) = root::read_file(&found.host).map_err(|e| format!("{what}: {e}"))?;
                if elf::is_elf(&data) {
                    let e = self.check_machine(&what, &data)?;
                    if e.is_dynamic() {
                        self.dynamic.push((path.clone(), e, format!("service {}", s.name)));
                    }
                } else if let Some(interp) = shebang(&data) {
                    next = Some(interp);
                } else {
                    self.report.warnings.push(format!("{what} is neither an ELF program nor a #! script"));
                }
                self.archive.file(&path, data, mode)?;
                self.note(format!("{path}: {} (service {})", found.host.display(), s.name));
                count += 1;
            }
        }
        if count > 0 {
            self.report.summary.push(format!("{count} programs"));
        }
        Ok(())
    }

    fn libraries(&mut self) -> Result<(), String> {
        if self.dynamic.is_empty() {
            return Ok(());
        }
        let root = self.root.clone();
        let resolver = ldso::Resolver::new(&root, self.arch).map_err(|e| format!("ld.so.conf: {e}"))?;
        let mut count = 0;
        let dynamic = std::mem::take(&mut self.dynamic);
        let mut linked = BTreeSet::new();
        for (guest, e, who) in &dynamic {
            let objects = resolver.needs(guest, e).map_err(|why| format!("{who}: {why}"))?;
            // The interpreter's own directory (in the root's terms): searched by every loader.
            let interp_dir = match &e.interp {
                Some(i) => self.root.resolve(i).ok().flatten().and_then(|c| c.rsplit_once('/').map(|(d, _)| d.to_string())),
                None => None,
            };
            for obj in objects {
                if self.archive.get(&obj.guest).is_none() {
                    let (data, mode) = root::read_file(&obj.host).map_err(|err| format!("{}: {err}", obj.host.display()))?;
                    self.archive.file(&obj.guest, data, mode)?;
                    self.note(format!("{}: {} (for {guest})", obj.guest, obj.host.display()));
                    count += 1;
                }
                let dir = obj.guest.rsplit_once('/').map_or("", |(d, _)| d);
                let searched = resolver.defaults.iter().any(|d| d == dir) || interp_dir.as_deref() == Some(dir);
                if obj.via == ldso::Via::Conf && !searched {
                    if let Some(idir) = &interp_dir {
                        let name = obj.guest.rsplit('/').next().unwrap_or_default();
                        let link = format!("{idir}/{name}");
                        if self.archive.get(&link).is_none() && linked.insert(link.clone()) {
                            self.archive.symlink(&link, &obj.guest)?;
                            self.note(format!("{link} -> {} (the image has no ld.so.cache)", obj.guest));
                        }
                    }
                }
            }
        }
        if count > 0 {
            self.report.summary.push(format!("{count} libraries"));
        }
        Ok(())
    }

    fn modules(&mut self) -> Result<(), String> {
        let config_modules = self.config.as_ref().map(|c| c.system.modules.clone()).unwrap_or_default();
        let Some(dir) = self.o.modules_from.clone() else {
            if let Some(class) = self.o.modules_for.first() {
                return Err(format!("--modules-for {class}: give --modules-from DIR (a /lib/modules/RELEASE tree)"));
            }
            if !config_modules.is_empty() {
                return Err(format!("[system] modules names {}: give --modules-from DIR (a /lib/modules/RELEASE tree)", config_modules.join(", ")));
            }
            self.report.notes.push("no --modules-from: no kernel modules in the image".into());
            return Ok(());
        };
        let tree = modules::Tree::open(&dir)?;
        // What is asked for, in order: keel's own list (or --modules), the config's, then
        // the classes' (coldplug loads what of them the hardware matches).
        let mut wanted: Vec<modules::Want> = match &self.o.modules {
            Some(list) => list.iter().map(|m| modules::Want { name: m.clone(), by: "--modules".into() }).collect(),
            None => self.arch.keel_modules().into_iter().map(|m| modules::Want { name: m, by: "keel's own list".into() }).collect(),
        };
        let by = format!("[system] modules in {}", self.o.config.as_deref().unwrap_or(Path::new("")).display());
        wanted.extend(config_modules.iter().map(|m| modules::Want { name: m.clone(), by: by.clone() }));
        for class in &self.o.modules_for {
            let names = modules::class(&tree, class)?;
            self.report.notes.push(format!("--modules-for {class}: {} modules and their dependencies", names.len()));
            wanted.extend(names.into_iter().map(|name| modules::Want { name, by: format!("--modules-for {class}") }));
        }
        let packed = modules::pack(&tree, &wanted, &self.o.omit_modules, self.arch.machine())?;
        let base = format!("lib/modules/{}", tree.release);
        for (rel, data) in packed.files {
            self.archive.file(&format!("{base}/{rel}"), data, 0o644)?;
        }
        self.note(format!("/{base}: {} modules from {}", packed.names.len(), dir.display()));
        self.report.warnings.extend(packed.warnings);
        self.report.notes.extend(packed.notes);
        self.report.summary.push(format!("{} modules for {}", packed.names.len(), tree.release));
        Ok(())
    }
}

/// A script's interpreter: the path after `#!`.
fn shebang(data: &[u8]) -> Option<String> {
    let rest = data.strip_prefix(b"#!")?;
    let line = &rest[..rest.iter().position(|&b| b == b'\n').unwrap_or(rest.len())];
    let line = String::from_utf8_lossy(line);
    let interp = line.split_whitespace().next()?;
    interp.starts_with('/').then(|| interp.to_string())
}

/// `keelctl image`: build, write OUT atomically (`-` is stdout), say what went in.
pub fn run(o: &Options) -> i32 {
    let (data, report) = match build(o) {
        Ok(r) => r,
        Err(Failure::Config(errors)) => {
            errors.iter().for_each(|e| eprintln!("{e}"));
            return 1;
        }
        Err(Failure::Other(e)) => {
            eprintln!("keelctl: image: {e}");
            return 1;
        }
    };
    for w in &report.warnings {
        eprintln!("keelctl: warning: {w}");
    }
    if o.verbose {
        for n in report.notes.iter().chain(&report.packed) {
            eprintln!("keelctl: {n}");
        }
    }
    if let Err(e) = crate::compile::write_out(&o.output, &data) {
        eprintln!("keelctl: image: {e}");
        return 1;
    }
    let compression = if o.compress == Compress::None { String::new() } else { format!(", {}", o.compress.name()) };
    eprintln!("keelctl: {} ({} bytes{compression}): {}", o.output.display(), data.len(), report.summary.join(", "));
    0
}

/// A fresh directory for one test: named for it, this process and a count (tests run in
/// parallel, and one may make several).
#[cfg(test)]
pub fn test_dir(tag: &str) -> PathBuf {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("keelctl-test-{tag}-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The architecture of this machine's own programs, which the tests pack.
#[cfg(test)]
pub fn test_arch() -> Arch {
    Arch::host().expect("the tests run on an x86_64 or aarch64 machine")
}

#[cfg(test)]
mod tests;
