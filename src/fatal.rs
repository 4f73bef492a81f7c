//! The "never die" guarantee. A panic or any fatal error prints its reason (and the panic
//! location) to the console, syncs, and acts per `keel.panic=` — PID 1 never exits, so the
//! kernel never says "Attempted to kill init". Outside PID 1 a fatal error just exits 101.

use crate::config::cmdline::PanicPolicy;
use crate::log::say::Part;
use crate::log::Line;
use crate::power::PowerCmd;
use core::sync::atomic::{AtomicBool, AtomicU32, Ordering::Relaxed};

// Both true at start, so they are in .data (resident anyway) rather than alone in a .bss page.
static OUTSIDE_PID1: AtomicBool = AtomicBool::new(true);
static ALIVE: AtomicBool = AtomicBool::new(true);
static ACTION: AtomicU32 = AtomicU32::new(PowerCmd::Reboot as u32);
static DELAY_SECS: AtomicU32 = AtomicU32::new(10);

/// Called once PID 1 mode is chosen: from here on we must not die.
pub fn enter_pid1(policy: PanicPolicy) {
    OUTSIDE_PID1.store(false, Relaxed);
    set_policy(policy);
}

pub fn set_policy(policy: PanicPolicy) {
    ACTION.store(policy.action as u32, Relaxed);
    DELAY_SECS.store(policy.delay_secs, Relaxed);
}

/// A fatal error (use the `fatal!` macro): print the line, then act.
pub fn die(reason: Line) -> ! {
    crate::log::emit_urgent(reason);
    // Bounded: a console nobody reads must not keep PID 1 from its panic policy.
    crate::log::console::flush(crate::log::console::FLUSH_MS);
    act()
}

/// The panic handler of the binary.
pub fn panic(info: &core::panic::PanicInfo) -> ! {
    let mut line = crate::log::begin();
    line.push_bytes(b"panic: ");
    // Messages with arguments are shown by their location only: formatting them would
    // pull all of core::fmt into the binary.
    line.push_bytes(info.message().as_str().unwrap_or("(formatted message)").as_bytes());
    if let Some(at) = info.location() {
        let _ = ufmt::uwrite!(line, " at {}:{}:{}", at.file(), at.line(), at.column());
    }
    die(line)
}

fn act() -> ! {
    if OUTSIDE_PID1.load(Relaxed) {
        crate::sys::exit(101);
    }
    // A fault while acting must not loop back here: go straight to the end.
    if !ALIVE.swap(false, Relaxed) {
        crate::sys::unreachable_loop();
    }
    rustix::fs::sync();
    let cmd = match ACTION.load(Relaxed) {
        x if x == PowerCmd::Halt as u32 => PowerCmd::Halt,
        x if x == PowerCmd::PowerOff as u32 => PowerCmd::PowerOff,
        _ => PowerCmd::Reboot,
    };
    let delay = DELAY_SECS.load(Relaxed);
    if delay > 0 {
        crate::log::say::say(b"% in % s (keel.panic=)", &[Part::T(cmd.name().as_bytes()), Part::N(delay.into())]);
        crate::clock::sleep_secs(delay);
        rustix::fs::sync();
    }
    crate::power::shutdown::power_off_now(cmd)
}
