//! The boot sequence as a static, ordered table. Each phase is logged with its duration;
//! a failed non-fatal phase is logged and boot goes on, a failed fatal phase goes to the
//! panic policy (`fatal`). PID 1 mode runs it once, before the event loop.

use crate::clock::Instant;
use crate::config::cmdline::{self, Config, Problem};
use crate::log::say::{die, say, Part, Part::{N, T}};
use crate::sys::Args;
use crate::{fatal, info};
use crate::power::acpi::AcpiEvents;
use crate::power::evdev::PowerKeys;
use crate::power::watchdog::Watchdog;
use crate::devices::uevent::UeventSocket;
use rustix::io::Errno as E;
use rustix::mount::MountFlags;

/// What the phases produce for the rest of PID 1.
pub struct Boot {
    pub args: Args,
    pub config: Config,
    /// The configuration that runs (set by the configuration phase).
    pub running: Option<crate::config::Running>,
    /// Whether keel runs the machine (and so its mounts), or only a PID namespace.
    pub owns_machine: bool,
    /// The kernel left fds 0-2 closed (no /dev/console in the initramfs): `reserve_stdio`
    /// holds them until the console phase.
    pub no_console: bool,
    /// Sources for the event loop, opened by their phases.
    pub acpi: Option<AcpiEvents>,
    pub power_keys: PowerKeys,
    /// The hardware watchdog, petted by the loop.
    pub watchdog: Option<Watchdog>,
    /// The kernel's uevents, opened by the coldplug phase for hotplug (src/devices).
    pub uevents: Option<UeventSocket>,
}

/// Kernel modules loaded at boot (with their dependencies, from modules.dep), in order,
/// before coldplug adds what the devices match; `keel.modules=` adds more. The list is keel-config's (`keel_config::modules`), which
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
/// the console is opened, modules (keel's list, then coldplug's) before the power button
/// listeners (button.ko sends the ACPI events, evdev.ko makes the input devices).
pub static PHASES: &[Phase] = &[
    Phase { name: "mount /proc", run: |_| mount(&PROC), fatal: true, machine: false },
    Phase { name: "configuration", run: configuration, fatal: false, machine: false },
    Phase { name: "mount /sys", run: |_| mount(&SYS), fatal: true, machine: false },
    Phase { name: "mount /dev", run: |_| mount(&DEV), fatal: true, machine: false },
    Phase { name: "console", run: console, fatal: false, machine: false },
    Phase { name: "kernel log", run: |_| kernel_log(), fatal: false, machine: true },
    Phase { name: "mount /dev/pts", run: |_| mount(&DEV_PTS), fatal: false, machine: false },
    Phase { name: "mount /dev/shm", run: |_| mount(&DEV_SHM), fatal: false, machine: false },
    Phase { name: "mount /run", run: |_| mount(&RUN), fatal: false, machine: false },
    Phase { name: "mount /sys/fs/cgroup", run: |_| mount(&CGROUP), fatal: false, machine: false },
    Phase { name: "clock floor", run: clock_floor, fatal: false, machine: true },
    Phase { name: "hostname", run: hostname, fatal: false, machine: true },
    Phase { name: "loopback up", run: |_| crate::sys::interface_up(c"lo").map(|()| Outcome::Done), fatal: false, machine: true },
    Phase { name: "kernel modules", run: modules, fatal: false, machine: true },
    Phase { name: "coldplug", run: coldplug, fatal: false, machine: true },
    Phase { name: "watchdog", run: watchdog, fatal: false, machine: true },
    Phase { name: "pstore", run: |_| pstore(), fatal: false, machine: true },
    Phase { name: "ACPI power button", run: acpi_listener, fatal: false, machine: true },
    Phase { name: "power keys", run: power_keys, fatal: false, machine: true },
];

/// Run every phase in order; then log the summary line.
pub fn run(boot: &mut Boot) {
    let started = Instant::now();
    for phase in PHASES {
        if phase.machine && !boot.owns_machine {
            say(b"%: skipped, not the machine's init", &[T(phase.name.as_bytes())]);
            continue;
        }
        let t0 = Instant::now();
        let result = (phase.run)(boot);
        let micros = Instant::now().0.saturating_sub(t0.0) / 1000;
        let outcome: &[u8] = match result {
            Ok(Outcome::Done) => {
                say(b"% (% us)", &[T(phase.name.as_bytes()), N(micros)]);
                b"done"
            }
            Ok(Outcome::Skipped(why)) => {
                say(b"%: skipped, %", &[T(phase.name.as_bytes()), T(why.as_bytes())]);
                b"skipped"
            }
            Err(e) if phase.fatal => die(b"% failed: %", &[T(phase.name.as_bytes()), Part::E(e)]),
            Err(e) => {
                say(b"% failed: %; going on", &[T(phase.name.as_bytes()), Part::E(e)]);
                b"failed"
            }
        };
        crate::log::event(keel_proto::EventKind::BootPhase, phase.name.as_bytes(), outcome);
    }
    let now = Instant::now();
    say(b"boot phases took % us; % ms since the kernel started", &[N((now.0 - started.0) / 1000), N(now.0 / 1_000_000)]);
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
pub static PSTORE: MountSpec = MountSpec { target: c"/sys/fs/pstore", fstype: c"pstore", flags: NOSUID_NODEV_NOEXEC, data: c"" };

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
    let parent = crate::file::c_path(&[bytes.get(..cut).unwrap_or(b"/")], &mut parent_buf).ok_or(E::NAMETOOLONG)?;
    Ok(rustix::fs::stat(parent)?.st_dev != here.st_dev)
}

/// Take whichever of fds 0-2 the kernel left closed (it does when the initramfs has no
/// /dev/console), first thing, so that no descriptor opened later (the signalfd!) lands
/// there and is then replaced by the console phase. The stand-in is `/` read-only: it
/// exists before anything is mounted (/dev/null does not, before devtmpfs; /proc is not
/// mounted yet), reads and writes on it fail at once (EISDIR, EBADF) instead of blocking as
/// a pipe would, and it holds nothing open that matters. Returns whether any was closed.
pub fn reserve_stdio() -> bool {
    use rustix::fd::{AsRawFd, IntoRawFd};
    let mut reserved = false;
    // open(2) returns the lowest free number: this fills the holes in 0-2, in order.
    while let Ok(fd) = crate::sys::fd::open(c"/", rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::DIRECTORY, rustix::fs::Mode::empty()) {
        if fd.as_raw_fd() > 2 {
            break; // dropped: closed
        }
        let _ = fd.into_raw_fd(); // held for good, as fds 0-2
        reserved = true;
    }
    reserved
}

/// fds 0-2 on /dev/console (/dev/null if even devtmpfs has none), in place of the stand-ins
/// of `reserve_stdio`; nothing to do if the kernel opened the console (the usual case).
fn console(boot: &mut Boot) -> Result<Outcome, E> {
    if !boot.no_console {
        return Ok(Outcome::Skipped("the kernel opened it"));
    }
    use crate::sys::fd::open;
    use rustix::fs::{Mode, OFlags};
    let console = open(c"/dev/console", OFlags::RDWR | OFlags::NOCTTY, Mode::empty())
        .or_else(|_| open(c"/dev/null", OFlags::RDWR, Mode::empty()))?;
    rustix::stdio::dup2_stdin(&console)?;
    rustix::stdio::dup2_stdout(&console)?;
    rustix::stdio::dup2_stderr(&console)?;
    crate::log::console::reopen();
    Ok(Outcome::Done)
}

/// keel's lines into /dev/kmsg too, for dmesg and pstore (log::console).
fn kernel_log() -> Result<Outcome, E> {
    if !crate::log::console::attach_kmsg()? {
        say(b"kernel log: printk_devkmsg not set to on (printk.devkmsg= on the command line?)", &[]);
    }
    Ok(Outcome::Done)
}

/// The configuration that runs (src/config: the compiled file, else the built-in one), then
/// the `keel.*` words from /proc/cmdline, argv and envp over it (where the kernel passes words
/// it does not know, and where tests in a PID namespace pass theirs). Problems are warnings.
fn configuration(boot: &mut Boot) -> Result<Outcome, E> {
    let mut buf = [0u8; 4096];
    let read = crate::file::read_into(c"/proc/cmdline", &mut buf).map(|line| &*line);
    let args = boot.args;
    let line = *read.as_ref().unwrap_or(&&[][..]);
    let words = || {
        let argv = (1..args.len()).filter_map(move |i| args.arg(i)).chain(args.env());
        cmdline::words(line).chain(argv.map(|w| -> &[u8] { w }))
    };
    let mut path_buf = [0u8; cmdline::PATH_MAX];
    let path = Config::config_path(words(), &mut path_buf).unwrap_or(crate::config::DEFAULT_PATH);
    let running = crate::config::load(path);
    crate::services::spec::set_table(crate::config::service_table(&running.db));
    crate::config::keep_storage(&running.db);
    boot.config = Config::from_file(&running.db);
    boot.running = Some(running);
    let config = &mut boot.config;
    let mut apply = |word: &[u8]| match config.apply(word) {
        Ok(()) => {}
        Err(Problem::UnknownKey(key)) => say(b"warning: unknown key % ignored", &[T(key)]),
        Err(Problem::BadValue { key, value, expected }) => {
            say(b"warning: %=% is not %; ignored", &[T(key), T(value), T(expected.as_bytes())])
        }
    };
    words().for_each(&mut apply);
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
    let mut dir = [0u8; crate::boot::modules::PATH_CAPACITY];
    let dir = crate::boot::modules::dir(&mut dir);
    let summary = crate::boot::modules::load(dir, &mut MODULES.iter().copied().chain(boot.config.extra_modules()), c"/proc/cmdline");
    let mut line = crate::log::begin();
    line.push_bytes(b"modules: ");
    summary.fill(&mut line);
    crate::log::emit(line);
    Ok(Outcome::Done)
}

/// After keel's list (so virtio_pci's devices are there to be walked): the uevent socket
/// first, for the devices that come from now on, then the walk (src/devices).
fn coldplug(boot: &mut Boot) -> Result<Outcome, E> {
    if !boot.config.coldplug {
        return Ok(Outcome::Skipped("keel.coldplug=off"));
    }
    boot.uevents = crate::devices::hotplug::open();
    crate::devices::hotplug::coldplug();
    Ok(Outcome::Done)
}

/// A board without a real-time clock boots in 1970, and TLS then fails: a clock earlier
/// than keel's build is raised to it. A later clock is never moved back.
fn clock_floor(_: &mut Boot) -> Result<Outcome, E> {
    use rustix::time::{clock_settime, ClockId, Timespec};
    let now = crate::sys::realtime_secs();
    let Some(to) = crate::boot::clock::raised(now, crate::boot::clock::BUILD_TIME) else {
        return Ok(Outcome::Skipped("not before keel's build"));
    };
    clock_settime(ClockId::Realtime, Timespec { tv_sec: to as _, tv_nsec: 0 })?;
    say(b"clock % raised to keel's build time %", &[N(now), N(to)]);
    Ok(Outcome::Done)
}

/// The previous boot's records (log::pstore), after the modules: ramoops makes them as it
/// loads. Without pstore the ending is told all the same (`unknown`), and the phase fails.
fn pstore() -> Result<Outcome, E> {
    let mounted = mount(&PSTORE);
    crate::log::pstore::read_previous(mounted.is_ok());
    mounted.map(|_| Outcome::Done)
}

fn watchdog(boot: &mut Boot) -> Result<Outcome, E> {
    let Some(config) = &boot.config.watchdog else { return Ok(Outcome::Skipped("no keel.watchdog=")) };
    boot.watchdog = Some(Watchdog::open(config)?);
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
    boot.power_keys = crate::power::evdev::open_power_keys();
    if boot.power_keys.is_empty() {
        return Ok(Outcome::Skipped("no input device reports KEY_POWER"));
    }
    Ok(Outcome::Done)
}
