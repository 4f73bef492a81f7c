//! The storage stage of boot, driven by PID 1's loop: from an initramfs with a root named,
//! the root (found, checked, mounted, switched to: `switch`); otherwise the configured
//! mounts, in order. Services wait until it is over (`gate_open`). A failure is one console
//! line, then the emergency path: only the rescue services run (`rescue`).

use super::find::{self, Found};
use super::fsck::{self, Verdict};
use super::initramfs;
use super::options;
use super::plan::Plan;
use crate::log::say::{say, Part::{E, N, T}};
use super::switch::{switch_root, Failure};
use super::wait::{Tick, Wait};
use crate::clock::Instant;
use crate::config::cmdline::{Config, FsckMode};
use crate::devices::uevent::{Action, Uevent};
use crate::file::c_path;
use crate::probe::Spec;
use crate::reaper::ExitStatus;
use crate::config::{mounts, root};
use crate::services::spec::table;
use crate::sys::Args;
use core::ffi::CStr;
use keel_config::spec::Mount;
use rustix::io::Errno;
use rustix::mount::MountFlags;

/// Where the root is mounted before it becomes `/` (dracut's name).
const NEW_ROOT: &CStr = c"/sysroot";

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum Stage {
    /// Finding the root device (`found` once it is there).
    Root,
    /// The root device is found and checked: mount it and switch.
    RootReady,
    /// Finding mount i's device.
    Mount(usize),
    /// Over: the services may start.
    Open,
    /// Something required failed: only the rescue services run.
    Emergency,
}

pub struct Storage {
    stage: Stage,
    wait: Wait,
    /// From an initramfs, with a root named: what to mount.
    plan: Option<Plan>,
    /// The device found, for the stage to act on.
    found: Option<Found>,
    /// The root's fsck child (0: none).
    fsck_pid: i32,
    /// Mounts that failed: bit i.
    failed: u32,
}

impl Storage {
    /// The root from an initramfs, if one is named; else the mounts (only for the machine's
    /// init: in a PID namespace the mounts are the container runtime's).
    #[inline(never)] // smaller out of line (measured)
    pub fn new(config: &Config, owns_machine: bool, now: Instant) -> Storage {
        let mut s = Storage { stage: Stage::Open, wait: Wait::Over, plan: None, found: None, fsck_pid: 0, failed: 0 };
        if !owns_machine {
            return s;
        }
        match Plan::new(&config.root, &root()) {
            Some(plan) if initramfs::root_is_initramfs() => {
                say(b"root: % (waiting up to % s)", &[T(plan.device()), N(plan.wait_secs.into())]);
                s.wait = Wait::new(now, plan.delay_secs, plan.wait_secs);
                s.stage = Stage::Root;
                s.plan = Some(plan);
            }
            _ => s.next_mount(0, now),
        }
        s
    }

    /// Whether only the rescue services may ever run: the root phase ends in an exec of the
    /// new root's init or in the emergency path.
    pub fn rescue_only(&self) -> bool {
        self.plan.is_some()
    }

    pub fn gate_open(&self) -> bool {
        matches!(self.stage, Stage::Open | Stage::Emergency)
    }

    /// Whether a device is being waited for (the loop keeps the uevent socket open).
    pub fn wants_uevents(&self) -> bool {
        matches!(self.stage, Stage::Root | Stage::Mount(_))
    }

    pub fn poll_at(&self) -> Option<Instant> {
        self.wants_uevents().then(|| self.wait.at()).flatten()
    }

    /// Shutting down: nothing more is found or mounted (an fsck child gets the power
    /// sequence's SIGTERM like every process).
    pub fn cancel(&mut self) {
        self.stage = Stage::Open;
        self.wait = Wait::Over;
    }

    /// Once the gate has opened: whether service `i` may run. After an emergency from the
    /// root phase the supervisor was made with the rescue services only (`rescue_only`).
    #[inline(never)] // smaller out of line (measured)
    pub fn may_run(&self, i: usize) -> bool {
        match self.stage {
            Stage::Emergency => self.plan.is_some() || rescue(i),
            _ => !mounts().iter().enumerate().any(|(m, mount)| self.failed >> m & 1 != 0 && mount.services.contains(&(i as u8))),
        }
    }

    /// A kernel uevent: a block device added (or changed: media, a re-read partition table)
    /// is looked at while one is waited for.
    pub fn on_uevent(&mut self, event: &Uevent) {
        let (Some(name), true) = (event.devname(), matches!(event.action, Action::Add | Action::Change)) else { return };
        if !self.wait.searching() || self.found.is_some() || event.subsystem() != Some(b"block") {
            return;
        }
        self.found = self.spec().and_then(|spec| find::check(name, &spec));
    }

    /// Events were lost (the uevent socket overran): look at everything again.
    #[inline(never)] // smaller out of line (measured)
    pub fn on_overrun(&mut self) {
        if self.wait.searching() && self.found.is_none() {
            self.found = self.spec().and_then(|spec| find::scan(&spec));
        }
    }

    /// A child exited: the root's fsck? Returns whether it was.
    #[inline(never)] // smaller out of line (measured)
    pub fn on_exit(&mut self, pid: i32, status: ExitStatus) -> bool {
        if pid != self.fsck_pid || pid == 0 {
            return false;
        }
        self.fsck_pid = 0;
        if self.stage != Stage::RootReady {
            return true; // cancelled meanwhile
        }
        let name = self.found.as_ref().map_or(&b""[..], |f| &f.name[..]);
        let (how, code) = match status {
            ExitStatus::Exited(c) => (&b"exit "[..], c),
            ExitStatus::Signaled(n) => (&b"signal "[..], n),
        };
        let verdict = fsck::verdict(status);
        let (what, then): (&str, &[u8]) = match verdict {
            Verdict::Go(what) => (what, b""),
            Verdict::Unchecked(why) => (why, b": mounting it unchecked"),
            Verdict::Stop(why) => (why, b": not mounting it; repair it by hand"),
        };
        say(b"root: fsck /dev/%: % (%%)%", &[T(name), T(what.as_bytes()), T(how), N(code as u64), T(then)]);
        if let Verdict::Stop(_) = verdict {
            self.emergency();
        }
        true
    }

    /// Act on time and on what was found, until something must be waited for. Returns true
    /// once, when the gate opens (the caller stops the services `may_run` refuses).
    pub fn advance(&mut self, now: Instant, args: &Args) -> bool {
        let was_open = self.gate_open();
        // Each pass moves to a later stage or waits: bounded by the stages there are.
        for _ in 0..mounts().len() + 4 {
            if !self.step(now, args) {
                break;
            }
        }
        !was_open && self.gate_open()
    }

    /// One step; false when there is nothing to do until an event or a deadline.
    #[inline(never)] // smaller out of line (measured)
    fn step(&mut self, now: Instant, args: &Args) -> bool {
        match self.stage {
            Stage::Root if self.spec().is_none() => {
                let device = self.plan.as_ref().map_or(&b""[..], |p| p.device());
                say(b"root: root=% is not %", &[T(device), T(Spec::EXPECTED.as_bytes())]);
                self.emergency();
            }
            Stage::Root => match self.look(now) {
                Ok(Some(dev)) => self.root_found(dev),
                Ok(None) => return false,
                Err(()) => self.not_found(),
            },
            Stage::RootReady if self.fsck_pid != 0 => return false,
            Stage::RootReady => self.mount_root(args),
            Stage::Mount(i) => {
                let Some(mount) = mounts().get(i) else { return false };
                if !keel_config::values::names_device(mount.source) {
                    self.mount_one(i, mount, None, now);
                    return true;
                }
                match self.look(now) {
                    Ok(Some(dev)) => self.mount_one(i, mount, Some(dev), now),
                    Ok(None) => return false,
                    Err(()) => {
                        say(b"mount %: no device % after % s", &[T(mount.name.as_bytes()), T(mount.source), N(mount.wait_secs.into())]);
                        self.mount_failed(i, mount, now);
                    }
                }
            }
            Stage::Open | Stage::Emergency => return false,
        }
        true
    }

    /// What the stage looks for.
    fn spec(&self) -> Option<Spec<'_>> {
        match self.stage {
            Stage::Root => self.plan.as_ref().and_then(Plan::spec),
            Stage::Mount(i) => mounts().get(i).and_then(|m| Spec::parse(m.source)),
            _ => None,
        }
    }

    /// The device, once found (by a uevent, or by a scan when time says so); Err: the wait
    /// is over without it.
    #[inline(never)] // smaller out of line (measured)
    fn look(&mut self, now: Instant) -> Result<Option<Found>, ()> {
        if let Some(found) = self.found.take() {
            self.wait = Wait::Over;
            return Ok(Some(found));
        }
        let tick = self.wait.tick(now);
        let found = match tick {
            Tick::Nothing => return Ok(None),
            _ => self.spec().and_then(|spec| find::scan(&spec)),
        };
        match (found, tick) {
            (Some(found), _) => {
                self.wait = Wait::Over;
                Ok(Some(found))
            }
            (None, Tick::LastScan) => Err(()),
            (None, _) => Ok(None),
        }
    }

    fn not_found(&mut self) {
        let (device, secs) = self.plan.as_ref().map_or((&b""[..], 0), |p| (p.device(), p.wait_secs));
        say(b"root: no device % after % s", &[T(device), N(secs.into())]);
        self.emergency();
    }

    /// The root device is there: check it if the initramfs has the checker, then mount.
    #[inline(never)] // smaller out of line (measured)
    fn root_found(&mut self, dev: Found) {
        self.stage = Stage::RootReady;
        let Some(plan) = &self.plan else { return };
        let fstype = first_type(plan.fstype(), &dev);
        self.fsck_pid = match (plan.fsck, fstype) {
            (FsckMode::Skip, _) | (_, None) => 0,
            (mode, Some(fstype)) => fsck_start(fstype, &dev.name, mode == FsckMode::Force),
        };
        self.found = Some(dev);
    }

    #[inline(never)] // smaller out of line (measured)
    fn mount_root(&mut self, args: &Args) {
        let (Some(plan), Some(dev)) = (&self.plan, self.found.take()) else { return self.emergency() };
        let flags = if plan.read_only { MountFlags::RDONLY } else { MountFlags::empty() };
        let _ = rustix::fs::mkdir(NEW_ROOT, rustix::fs::Mode::from_raw_mode(0o755));
        if mount(b"", Some(&dev), NEW_ROOT.to_bytes(), plan.fstype(), plan.options(), flags).is_err() {
            return self.emergency();
        }
        let mut path = [0u8; 260];
        let Some(init) = c_path(&[plan.init()], &mut path) else { return self.emergency() };
        let (what, e, then): (&[u8], _, &[u8]) = match switch_root(NEW_ROOT, init, args) {
            Failure::Before(what, e) => {
                use rustix::mount::{unmount, UnmountFlags};
                let _ = unmount(NEW_ROOT, UnmountFlags::empty()).or_else(|_| unmount(NEW_ROOT, UnmountFlags::DETACH));
                (what.as_bytes(), e, b"; staying on the initramfs")
            }
            // The initramfs is gone: PID 1 stays, on the new root, with the rescue services.
            Failure::Exec(e) => (b"exec", e, b"; the initramfs is gone: keel stays PID 1 on the new root"),
        };
        say(b"root: switch_root: % %: %%", &[T(what), T(init.to_bytes()), E(e), T(then)]);
        self.emergency();
    }

    fn mount_one(&mut self, i: usize, m: &Mount, dev: Option<Found>, now: Instant) {
        // The last directory of the target is made if missing (on a read-only root it must be there).
        if let Some(target) = c_path(&[m.target], &mut [0u8; 256]) {
            let _ = rustix::fs::mkdir(target, rustix::fs::Mode::from_raw_mode(0o755));
        }
        match mount(m.source, dev.as_ref(), m.target, m.fstype, m.options, MountFlags::empty()) {
            Ok(()) => self.next_mount(i + 1, now),
            Err(()) => self.mount_failed(i, m, now),
        }
    }

    fn mount_failed(&mut self, i: usize, m: &Mount, now: Instant) {
        let then: &[u8] = if m.required { b": required" } else { b": optional: the services that need it stay down" };
        say(b"mount %%", &[T(m.name.as_bytes()), T(then)]);
        if m.required {
            return self.emergency();
        }
        self.failed |= 1 << i;
        self.next_mount(i + 1, now);
    }

    #[inline(never)] // smaller out of line (measured)
    fn next_mount(&mut self, i: usize, now: Instant) {
        self.stage = match mounts().get(i) {
            Some(m) => {
                self.wait = Wait::new(now, 0, m.wait_secs);
                Stage::Mount(i)
            }
            None => Stage::Open,
        };
    }

    fn emergency(&mut self) {
        self.stage = Stage::Emergency;
        self.wait = Wait::Over;
        self.found = None;
        let count = (0..table().len()).filter(|&i| rescue(i)).count();
        say(b"emergency: only the rescue services run (%)", &[N(count as u64)]);
    }
}

/// Whether service `i` is a rescue service: the configuration's `[root] rescue`, else the
/// services with a terminal (the console shells).
pub fn rescue(i: usize) -> bool {
    match root().rescue {
        Some(list) => list.contains(&(i as u8)),
        None => table().get(i).is_some_and(|s| s.tty.is_some()),
    }
}

/// The type to check: the first listed, else what the superblock says.
fn first_type<'a>(listed: &'a [u8], dev: &Found) -> Option<&'a [u8]> {
    match listed.split(|&b| b == b',').next().filter(|t| !t.is_empty()) {
        Some(t) => Some(t),
        None => dev.fs.map(|fs| fs.name().to_bytes()),
    }
}

/// Start `fsck.TYPE -a [-f] /dev/NAME` if the initramfs has it; its pid, 0 if not started.
#[inline(never)] // smaller out of line (measured)
fn fsck_start(fstype: &[u8], name: &[u8], force: bool) -> i32 {
    let mut path = [0u8; 64];
    let mut dev = [0u8; 48];
    let (Some(dev), Some(checker)) = (c_path(&[b"/dev/", name], &mut dev), find_checker(fstype, &mut path)) else { return 0 };
    let argv: [*const u8; 5] = [
        checker.as_ptr().cast(),
        c"-a".as_ptr().cast(),
        if force { c"-f".as_ptr().cast() } else { dev.as_ptr().cast() },
        if force { dev.as_ptr().cast() } else { core::ptr::null() },
        core::ptr::null(),
    ];
    let envp: [*const u8; 2] = [c"PATH=/sbin:/usr/sbin:/bin:/usr/bin".as_ptr().cast(), core::ptr::null()];
    match crate::sys::fork() {
        Ok(0) => {
            // A checker that cannot run exits as fsck does when it cannot check (8).
            if crate::sys::set_signal_mask_to(crate::sys::SigSet(0)).is_ok() {
                crate::sys::execve(checker, &argv, &envp);
            }
            crate::sys::exit(8)
        }
        Ok(pid) => {
            say(b"root: checking % with %", &[T(dev.to_bytes()), T(checker.to_bytes())]);
            pid
        }
        Err(e) => {
            say(b"root: fork for %: %: mounting it unchecked", &[T(checker.to_bytes()), E(e)]);
            0
        }
    }
}

/// `fsck.TYPE` in /sbin, /usr/sbin or /bin: an executable file.
fn find_checker<'b>(fstype: &[u8], buf: &'b mut [u8; 64]) -> Option<&'b CStr> {
    let dir = fsck::DIRS.iter().find(|dir| {
        let mut probe = [0u8; 64];
        c_path(&[dir, b"fsck.", fstype], &mut probe)
            .is_some_and(|p| rustix::fs::access(p, rustix::fs::Access::EXEC_OK).is_ok())
    })?;
    c_path(&[dir, b"fsck.", fstype], buf)
}

/// mount(2) the device found (/dev/NAME), else `source` as it is, on `target` as each of
/// `types` (comma list; empty: the type probe found), the options split into flags and
/// data. Says what it did.
#[inline(never)] // smaller out of line (measured)
fn mount(source: &[u8], dev: Option<&Found>, target: &[u8], types: &[u8], options: &[u8], flags: MountFlags) -> Result<(), ()> {
    let (mut src, mut dst) = ([0u8; 260], [0u8; 260]);
    let source = match dev {
        Some(dev) => c_path(&[b"/dev/", &dev.name], &mut src),
        None => c_path(&[source], &mut src),
    };
    let mut data = heapless::Vec::<u8, 256>::new();
    let flags = options::split(options, flags, &mut data);
    let (Some(source), Some(target), Some(flags), Ok(())) = (source, c_path(&[target], &mut dst), flags, data.push(0)) else {
        say(b"mount %: too long", &[T(target)]);
        return Err(());
    };
    let data = CStr::from_bytes_with_nul(&data).unwrap_or(c"");
    let probed = dev.and_then(|d| d.fs).map(|fs| fs.name().to_bytes());
    let Some(types) = Some(types).filter(|t| !t.is_empty()).or(probed) else {
        say(b"mount %: no filesystem keel recognises (ext2/3/4, xfs, btrfs, vfat, squashfs, erofs): name its type", &[T(source.to_bytes())]);
        return Err(());
    };
    let mut last = Errno::INVAL;
    for fstype in types.split(|&b| b == b',') {
        let mut name = [0u8; 40];
        let Some(fstype) = c_path(&[fstype], &mut name) else { continue };
        match rustix::mount::mount(source, target, fstype, flags, data) {
            Ok(()) => {
                let mode: &[u8] = if flags.contains(MountFlags::RDONLY) { b", ro)" } else { b", rw)" };
                say(b"mounted % on % (%%", &[T(source.to_bytes()), T(target.to_bytes()), T(fstype.to_bytes()), T(mode)]);
                return Ok(());
            }
            Err(e) => last = e,
        }
    }
    say(b"mount % on % (%): %", &[T(source.to_bytes()), T(target.to_bytes()), T(types), E(last)]);
    Err(())
}
