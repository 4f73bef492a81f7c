//! poweroff / reboot / halt by argv[0], run inside a PID namespace whose PID 1 is keel
//! (never on the host: they signal PID 1).
mod common;

use common::ns::{Pid1, SIGHUP, SIGINT};
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

/// A `name` → keel symlink in a directory of its own (tests run in parallel), removed with
/// the returned guard.
struct Applet(#[allow(dead_code)] common::TempDir, PathBuf);

impl std::ops::Deref for Applet {
    type Target = std::path::Path;
    fn deref(&self) -> &std::path::Path {
        &self.1
    }
}

fn applet(name: &str) -> Applet {
    let dir = common::TempDir::new("applets");
    let link = dir.join(name);
    std::os::unix::fs::symlink(common::keel_bin(), &link).unwrap();
    Applet(dir, link)
}

#[test]
fn applets_ask_pid1_by_signal() {
    for (name, ends_with) in [("poweroff", SIGINT), ("reboot", SIGHUP), ("halt", SIGINT)] {
        let mut ns = Pid1::start(&common::keel_bin(), &[]);
        let out = ns.run(&applet(name), &[]);
        // The applet may be caught by the SIGTERM to all processes it just asked for.
        assert!(out.status.success() || out.status.signal() == Some(15), "{name}: {:?}", out);
        assert_eq!(ns.wait_end(Duration::from_secs(5)), Some(ends_with), "{name}; log:\n{}", ns.log());
        assert!(ns.log().contains(&format!("keel: {name} requested")), "{name}; log:\n{}", ns.log());
    }
}

#[test]
fn force_calls_reboot2_without_asking_pid1() {
    let mut ns = Pid1::start(&common::keel_bin(), &[]);
    let _ = ns.run(&applet("reboot"), &["-f", "-n"]);
    assert_eq!(ns.wait_end(Duration::from_secs(5)), Some(SIGHUP));
    assert!(!ns.log().contains("requested"), "PID 1 was not asked; log:\n{}", ns.log());
}

#[test]
fn delay_waits_before_asking() {
    let mut ns = Pid1::start(&common::keel_bin(), &[]);
    let started = std::time::Instant::now();
    let out = ns.run(&applet("halt"), &["-d", "1"]);
    assert!(out.status.success() || out.status.signal() == Some(15), "{out:?}");
    assert!(started.elapsed() >= Duration::from_secs(1));
    assert_eq!(ns.wait_end(Duration::from_secs(5)), Some(SIGINT));
}

#[test]
fn bad_flags_and_unknown_names_print_usage_and_exit_2() {
    let out = Command::new(&*applet("poweroff")).arg("-x").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("usage: poweroff"));

    let out = Command::new(&*applet("frobnicate")).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("frobnicate: unknown program name"), "{err}");

    // keel itself, not PID 1, no arguments: says what it is.
    let out = Command::new(common::keel_bin()).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("a minimal PID 1"));
}
