//! The keel binary: one static executable, several programs chosen by argv[0].
//! - `init` / `keel` with arguments (`-- PROGRAM ARGS`), PID 1 or not: `keel::container`
//! - `init` / `keel` as PID 1 (or any name, when PID 1): `keel::pid1`
//! - `poweroff`, `reboot`, `halt`: `keel::applets`
//! Where things go: signals → `keel::signals`; reaping → `keel::reaper`; shutdown →
//! `keel::shutdown`; panics → `keel::fatal`; raw syscalls and start-up → `keel::sys`.
#![no_std]
#![no_main]

use keel::power::PowerCmd;
use keel::sys::Args;

/// Called by `keel::sys` start-up code (the `_start` symbol) with argv and envp.
#[allow(unsafe_code)] // SAFETY: the one entry symbol; `keel::sys::start` declares it with this signature.
#[no_mangle]
fn keel_main(args: Args) -> ! {
    let argv0 = args.arg(0).unwrap_or(b"keel");
    let name = argv0.rsplit(|&b| b == b'/').next().unwrap_or(argv0);
    let pid1 = rustix::process::getpid().is_init();
    let rest = (1..args.len()).filter_map(|i| args.arg(i));
    let known = name == b"keel" || name == b"init";
    // `keel.*` words (tests, the kernel's leftovers) are init mode's; so are stray kernel
    // words when keel is the machine's init (see `container::wanted`).
    if known && keel::container::wanted(rest.clone(), || pid1 && keel::container::is_machine_init()) {
        keel::container::run(args)
    }
    if pid1 {
        // Whatever we are called, PID 1 must never exit.
        keel::pid1::run(args)
    }
    match name {
        b"poweroff" => keel::applets::run(PowerCmd::PowerOff, rest),
        b"reboot" => keel::applets::run(PowerCmd::Reboot, rest),
        b"halt" => keel::applets::run(PowerCmd::Halt, rest),
        _ => usage(name),
    }
}

fn usage(name: &[u8]) -> ! {
    let known = name == b"keel" || name == b"init";
    let mut line = keel::log::Line::new();
    if !known {
        let _ = ufmt::uwrite!(line, "{}: unknown program name\n", keel::log::Bytes(name));
    }
    line.push_bytes(
        b"keel: a minimal PID 1 for Linux; run it as the kernel's init (init=/sbin/keel).\n\
          as a container init: keel [-g] [-v] [-e CODE] [-p SIGNAL] [--] PROGRAM [ARGS...]\n\
          as poweroff, reboot or halt (by argv[0]): [-f] [-n] [-d SECONDS]",
    );
    keel::log::write_console(&line.finish());
    keel::sys::exit(2)
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    keel::fatal::panic(info)
}
