//! Coldplug and hotplug as PID 1 runs them (docs/devices.md). One uevent socket, opened by
//! the boot's coldplug phase before its walk of /sys/devices (so no device added meanwhile
//! is missed) and kept for good; the loop (src/pid1.rs, `on_uevents`) reads it a bounded
//! number of events per wakeup and gives each to the root finder (src/root) and to
//! `on_uevent`. The modaliases of one burst (as of the walk) are matched in one pass over
//! modules.alias, a page of them at most.
//! Events lost to an overrun (ENOBUFS) are made up for by walking /sys again.

use super::alias::{self, AliasMatcher, Found};
use super::coldplug::{self, Modaliases, SYS_DEVICES};
use super::SetError;
use super::uevent::{Action, Uevent, UeventSocket};
use crate::boot::modules::{self, Summary};
use crate::event::{EventLoop, Source};
use crate::log::say::{say, Part::{E, N, T}};
use crate::power::evdev::{PowerKeys, MAX_INPUT_SCAN};

/// Uevents read per wakeup of the loop: a burst (a module's devices) is taken in parts,
/// the rest wait in the socket for the next pass.
pub const PER_WAKEUP: usize = 32;
/// Socket buffer asked for: a module load at boot sends a few hundred events.
const RECEIVE_BUFFER: usize = 1 << 20;

/// The socket for the loop, opened before the walk; None (said on the console) if the
/// kernel refuses it: devices added later then get no driver.
pub fn open() -> Option<UeventSocket> {
    UeventSocket::open(RECEIVE_BUFFER).map_err(|e| say(b"uevents: not watched (%): devices added later get no driver", &[E(e)])).ok()
}

/// The boot's pass (and an overrun's): every device's modalias under /sys/devices, the
/// modules they match loaded, a batch (a page of modaliases) at a time.
pub fn coldplug() {
    let mut dir_buf = [0u8; modules::PATH_CAPACITY];
    let dir = modules::dir(&mut dir_buf);
    // A root without modules of its own (the initramfs loaded them): no walk for nothing.
    if !exists(&[dir, b"/modules.alias"]) {
        return say(b"coldplug: no modules.alias in %", &[T(dir)]);
    }
    let mut batch = Modaliases::new();
    let mut total = Summary::default();
    let (mut devices, mut left_out) = (0u32, 0u32);
    let walked = coldplug::walk(SYS_DEVICES, &mut |m| match gather(&mut batch, m, &mut total) {
        Ok(new) => devices += u32::from(new),
        Err(_) => left_out += 1,
    });
    total.add(load_batch(&mut batch));
    let left_out = left_out + walked.too_deep + walked.errors;
    let mut line = crate::log::begin();
    crate::log::say::fill(&mut line, b"coldplug: % devices in % directories, % left out; modules: ", &[N(devices.into()), N(walked.dirs.into()), N(left_out.into())]);
    total.fill(&mut line);
    crate::log::emit(line);
}

/// `modalias` into `batch`; a full batch's modules are loaded first (their summary added
/// to `total`), so any number of devices fits. Ok(true) if new to the batch.
pub fn gather(batch: &mut Modaliases, modalias: &[u8], total: &mut Summary) -> Result<bool, SetError> {
    match batch.insert(modalias) {
        Err(SetError::Full) => {
            total.add(load_batch(batch));
            batch.insert(modalias)
        }
        other => other,
    }
}

/// The modules `batch` matches in modules.alias and not loaded yet, loaded; the batch is
/// empty again. Out of line, and its match in a frame of its own, so the stack is never
/// the matcher's and `modules::load`'s at once.
#[inline(never)]
pub fn load_batch(batch: &mut Modaliases) -> Summary {
    let mut dir_buf = [0u8; modules::PATH_CAPACITY];
    let dir = modules::dir(&mut dir_buf);
    let mut found = Found::new();
    let mut summary = Summary::default();
    // None: no modules.alias (a root without modules); nothing to load.
    if let Some(left_out) = matched(dir, batch.iter(), &mut found) {
        summary = modules::load(dir, &mut found.iter().filter(|m| !modules::in_sys_module(m)), c"/proc/cmdline");
        summary.failed += left_out as u16;
    }
    batch.clear();
    summary
}

/// One pass over `dir`/modules.alias for `devices`, the modules into `found`: how many
/// modules and devices the matcher had no room for (they count as failed; bad lines, which
/// depmod does not write, are passed over). None: there is no modules.alias.
#[inline(never)]
fn matched<'d>(dir: &[u8], devices: impl Iterator<Item = &'d [u8]>, found: &mut Found) -> Option<u32> {
    let mut matcher = AliasMatcher::new(devices, found);
    alias::match_file(dir, &mut matcher).ok()?;
    Some(matcher.summary.left_out + matcher.summary.devices_left_out)
}

/// One uevent, beyond the root finder's look: a device added with a MODALIAS and no driver
/// bound goes into `batch` (loaded once the burst is read: `load_batch`); an event device
/// may be a power key; a disk or partition is logged.
#[inline(never)]
pub fn on_uevent(event: &Uevent, batch: &mut Modaliases, keys: &mut PowerKeys, events: &EventLoop) {
    if event.action != Action::Add {
        return;
    }
    if let Some(m) = event.modalias() {
        if !has_driver(event.devpath) {
            let _ = gather(batch, m, &mut Summary::default());
        }
    }
    match (event.subsystem(), event.devname()) {
        (Some(b"input"), Some(name)) => {
            if let Some(n) = name.strip_prefix(b"input/event").and_then(crate::config::cmdline::parse_u32) {
                add_key(keys, n, events);
            }
        }
        (Some(b"block"), Some(name)) => say(b"% /dev/% added", &[T(event.devtype().unwrap_or(b"block")), T(name)]),
        _ => {}
    }
}

/// Events were lost: walk /sys again, as at boot, and look for power keys again.
pub fn on_overrun(keys: &mut PowerKeys, events: &EventLoop) {
    say(b"uevents: some were lost; looking at every device again", &[]);
    coldplug();
    for n in 0..MAX_INPUT_SCAN {
        add_key(keys, n, events);
    }
}

/// /dev/input/eventN into the loop if it is a power key (and a new one).
fn add_key(keys: &mut PowerKeys, n: u32, events: &EventLoop) {
    if keys.add(n) {
        let i = keys.len() - 1;
        if let Some(Err(e)) = keys.fds().last().map(|fd| events.watch(fd, Source::PowerKey(i as u8))) {
            say(b"power key % not watched: %", &[N(i as u64), E(e)]);
        }
    }
}

/// A driver is bound to the device at `devpath` (/sys`devpath`/driver is there).
fn has_driver(devpath: &[u8]) -> bool {
    exists(&[b"/sys", devpath, b"/driver"])
}

/// The path made of `parts` is there.
fn exists(parts: &[&[u8]]) -> bool {
    let mut buf = [0u8; modules::PATH_CAPACITY];
    crate::file::c_path(parts, &mut buf).is_some_and(|p| rustix::fs::access(p, rustix::fs::Access::EXISTS).is_ok())
}
