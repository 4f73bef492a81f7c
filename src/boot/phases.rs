//! The boot sequence as a static, ordered table. Each phase is logged with its duration;
//! a failed non-fatal phase is logged and boot goes on, a failed fatal phase goes to the
//! panic policy (`fatal`). PID 1 mode runs it once, before the event loop.

use crate::clock::Instant;
use crate::config::cmdline::{self, Config, Problem};
use crate::log::{Bytes, Errno};
use crate::sys::Args;
use crate::{fatal, info};
use crate::power::acpi::{AcpiEvents, PowerKeys};
use rustix::io::Errno as E;
use rustix::mount::MountFlags;

/// What the phases produce for the rest of PID 1.
pub struct Boot {
    pub args: Args,
    pub config: Config,
    /// Whether keel runs the machine (and so its mounts), or only a PID namespace.
    pub owns_machine: bool,
    /// Sources for the event loop, opened by their phases.
    pub acpi: Option<AcpiEvents>,
    pub power_keys: PowerKeys,
}

/// Kernel modules loaded at boot (with their dependencies, from modules.dep), in order;
/// `keel.modules=` adds more. The list is keel-config's (`keel_config::modules`), which
/// `keelctl image` packs too: what it covers and why is said there.
pub static MODULES: &[&[u8]] = keel_config::modules::THIS_ARCH;

pub enum Outcome {
    Done,
    /// Nothing to do (already mounted, no key given, ...): the reason is logged.
    Skipped(&'static str),
}

pub struct Phase {
    pub name: &'static str,
    pub run: fn(&mut Boot) -> Result<Outcome, E>,
    /// A fatal failure goes to the panic policy; others are logged and boot goes on.
    pub fatal: bool,
    /// Only for the machine's init: in a PID namespace (a container, the tests) the host's
    /// hostname, network and kernel belong to someone else.
    pub machine: bool,
}

/// The boot sequence. Order matters: /proc before the command line is read, /dev before
/// the console is opened, modules before the power button listeners (button.ko sends the
/// ACPI events, evdev.ko makes the input devices).
pub static PHASES: &[Phase] = &[
    Phase { name: "mount /proc", run: |_| mount(&PROC), fatal: true, machine: false },
    Phase { name: "kernel command line", run: read_cmdline, fatal: false, machine: false },
    Phase { name: "mount /sys", run: |_| mount(&SYS), fatal: true, machine: false },
    Phase { name: "mount /dev", run: |_| mount(&DEV), fatal: true, machine: false },
    Phase { name: "console", run: |_| console(), fatal: false, machine: false },
    Phase { name: "mount /dev/pts", run: |_| mount(&DEV_PTS), fatal: false, machine: false },
    Phase { name: "mount /dev/shm", run: |_| mount(&DEV_SHM), fatal: false, machine: false },
    Phase { name: "mount /run", run: |_| mount(&RUN), fatal: false, machine: false },
    Phase { name: "mount /sys/fs/cgroup", run: |_| mount(&CGROUP), fatal: false, machine: false },
    Phase { name: "hostname", run: hostname, fatal: false, machine: true },
    Phase { name: "loopback up", run: |_| crate::sys::interface_up(c"lo").map(|()| Outcome::Done), fatal: false, machine: true },
    Phase { name: "kernel modules", run: modules, fatal: false, machine: true },
    Phase { name: "ACPI power button", run: acpi_listener, fatal: false, machine: true },
    Phase { name: "power keys", run: power_keys, fatal: false, machine: true },
];

/// Run every phase in order; then log the summary line.
pub fn run(boot: &mut Boot) {
    let started = Instant::now();
    for phase in PHASES {
        if phase.machine && !boot.owns_machine {
            info!("{}: skipped, not the machine's init", phase.name);
            continue;
        }
        let t0 = Instant::now();
        let result = (phase.run)(boot);
        let micros = Instant::now().0.saturating_sub(t0.0) / 1000;
        let outcome: &[u8] = match result {
            Ok(Outcome::Done) => {
                info!("{} ({} us)", phase.name, micros);
                b"done"
            }
            Ok(Outcome::Skipped(why)) => {
                info!("{}: skipped, {}", phase.name, why);
                b"skipped"
            }
            Err(e) if phase.fatal => fatal!("{} failed: {}", phase.name, Errno(e)),
            Err(e) => {
                info!("{} failed: {}; going on", phase.name, Errno(e));
                b"failed"
            }
        };
        crate::log::event(keel_proto::EventKind::BootPhase, phase.name.as_bytes(), outcome);
    }
    let now = Instant::now();
    info!("boot phases took {} us; {} ms since the kernel started", (now.0 - started.0) / 1000, now.0 / 1_000_000);
}

pub struct MountSpec {
    pub target: &'static core::ffi::CStr,
    pub fstype: &'static core::ffi::CStr,
    pub flags: MountFlags,
    pub data: &'static core::ffi::CStr,
}

const NOSUID_NODEV_NOEXEC: MountFlags = MountFlags::NOSUID.union(MountFlags::NODEV).union(MountFlags::NOEXEC);

pub static PROC: MountSpec = MountSpec { target: c"/proc", fstype: c"proc", flags: NOSUID_NODEV_NOEXEC, data: c"" };
pub static SYS: MountSpec = MountSpec { target: c"/sys", fstype: c"sysfs", flags: NOSUID_NODEV_NOEXEC, data: c"" };
pub static DEV: MountSpec = MountSpec { target: c"/dev", fstype: c"devtmpfs", flags: MountFlags::NOSUID, data: c"mode=0755" };
pub static DEV_PTS: MountSpec = MountSpec {
    target: c"/dev/pts",
    fstype: c"devpts",
    flags: MountFlags::NOSUID.union(MountFlags::NOEXEC),
    data: c"gid=5,mode=620,ptmxmode=666",
};
pub static DEV_SHM: MountSpec =
    MountSpec { target: c"/dev/shm", fstype: c"tmpfs", flags: MountFlags::NOSUID.union(MountFlags::NODEV), data: c"mode=1777" };
pub static RUN: MountSpec =
    MountSpec { target: c"/run", fstype: c"tmpfs", flags: MountFlags::NOSUID.union(MountFlags::NODEV), data: c"mode=0755" };
pub static CGROUP: MountSpec = MountSpec { target: c"/sys/fs/cgroup", fstype: c"cgroup2", flags: NOSUID_NODEV_NOEXEC, data: c"" };

/// Mount `spec`, creating the directory if needed; something already mounted there is fine.
fn mount(spec: &MountSpec) -> Result<Outcome, E> {
    match rustix::fs::mkdir(spec.target, rustix::fs::Mode::from_raw_mode(0o755)) {
        Ok(()) | Err(E::EXIST) => {}
        Err(e) => return Err(e),
    }
    if is_mount_point(spec.target)? {
        return Ok(Outcome::Skipped("already mounted"));
    }
    rustix::mount::mount(spec.fstype, spec.target, spec.fstype, spec.flags, spec.data)?;
    Ok(Outcome::Done)
}

/// A directory on another device than its parent is a mount point (works before /proc).
fn is_mount_point(path: &core::ffi::CStr) -> Result<bool, E> {
    let here = rustix::fs::stat(path)?;
    let mut parent_buf = [0u8; 64];
    let bytes = path.to_bytes();
    let cut = bytes.iter().rposition(|&b| b == b'/').unwrap_or(0).max(1);
    let parent_len = cut.min(parent_buf.len() - 1);
    parent_buf[..parent_len].copy_from_slice(&bytes[..parent_len]);
    let parent = core::ffi::CStr::from_bytes_until_nul(&parent_buf).map_err(|_| E::INVAL)?;
    Ok(rustix::fs::stat(parent)?.st_dev != here.st_dev)
}

/// fds 0-2 on /dev/console, unless the kernel already opened them (the usual case).
fn console() -> Result<Outcome, E> {
    if rustix::io::fcntl_getfd(crate::sys::stderr()).is_ok() {
        return Ok(Outcome::Skipped("the kernel opened it"));
    }
    let console = rustix::fs::open(c"/dev/console", rustix::fs::OFlags::RDWR | rustix::fs::OFlags::NOCTTY, rustix::fs::Mode::empty())?;
    rustix::stdio::dup2_stdin(&console)?;
    rustix::stdio::dup2_stdout(&console)?;
    rustix::stdio::dup2_stderr(&console)?;
    Ok(Outcome::Done)
}

/// `keel.*` words from /proc/cmdline, then argv and envp (where the kernel passes words it
/// does not know, and where tests in a PID namespace pass theirs). Problems are warnings.
fn read_cmdline(boot: &mut Boot) -> Result<Outcome, E> {
    let mut buf = [0u8; 4096];
    let read = crate::file::read_into(c"/proc/cmdline", &mut buf);
    let len = *read.as_ref().unwrap_or(&0);
    let config = &mut boot.config;
    let mut apply = |word: &[u8]| match config.apply(word) {
        Ok(()) => {}
        Err(Problem::UnknownKey(key)) => info!("warning: unknown key {} ignored", Bytes(key)),
        Err(Problem::BadValue { key, value, expected }) => {
            info!("warning: {}={} is not {}; ignored", Bytes(key), Bytes(value), expected)
        }
    };
    cmdline::words(&buf[..len]).for_each(&mut apply);
    let args = boot.args;
    (1..args.len()).filter_map(|i| args.arg(i)).for_each(&mut apply);
    args.env().for_each(&mut apply);
    fatal::set_policy(boot.config.panic);
    read.map(|_| Outcome::Done)
}

fn hostname(boot: &mut Boot) -> Result<Outcome, E> {
    match boot.config.hostname() {
        None => Ok(Outcome::Skipped("no keel.hostname=")),
        Some(name) => rustix::system::sethostname(name).map(|()| Outcome::Done),
    }
}

fn modules(boot: &mut Boot) -> Result<Outcome, E> {
    let uname = rustix::system::uname();
    let summary = crate::boot::modules::load(MODULES.iter().copied().chain(boot.config.extra_modules()), uname.release());
    info!("modules: {}", summary);
    Ok(Outcome::Done)
}

fn acpi_listener(boot: &mut Boot) -> Result<Outcome, E> {
    match AcpiEvents::open() {
        Ok(events) => {
            boot.acpi = Some(events);
            Ok(Outcome::Done)
        }
        Err(e) => {
            info!("ACPI events: {}", e);
            Ok(Outcome::Skipped("no ACPI event family"))
        }
    }
}

fn power_keys(boot: &mut Boot) -> Result<Outcome, E> {
    boot.power_keys = crate::power::acpi::open_power_keys();
    if boot.power_keys.is_empty() {
        return Ok(Outcome::Skipped("no input device reports KEY_POWER"));
    }
    Ok(Outcome::Done)
}
