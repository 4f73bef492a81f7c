//! Container mode (`keel -- PROGRAM ARGS`), black-box: exit codes, exec failures, signal
//! forwarding (to the child or its group), orphan reaping as a subreaper and as PID 1 of a
//! PID namespace, the orphans' grace, what the child inherits, flags. Every wait is bounded.
mod common;

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

/// No test waits longer than this for anything.
const LIMIT: Duration = Duration::from_secs(20);

fn keel() -> Command {
    Command::new(common::keel_bin())
}

/// A fresh directory for one test, removed when dropped.
struct Scratch(PathBuf);

fn scratch(name: &str) -> Scratch {
    let dir = std::env::temp_dir().join(format!("keel-container-{}-{name}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    Scratch(dir)
}

impl std::ops::Deref for Scratch {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Run to the end (stdin empty), killing it if it outlives LIMIT.
fn output(cmd: &mut Command) -> Output {
    let child = cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    finish(child)
}

fn finish(child: Child) -> Output {
    let pid = child.id();
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || tx.send(child.wait_with_output()));
    match rx.recv_timeout(LIMIT) {
        Ok(out) => out.unwrap(),
        Err(_) => {
            kill_tree(pid);
            panic!("pid {pid} still running after {LIMIT:?}");
        }
    }
}

/// A started process that, with its descendants, is SIGKILLed if the test ends before it.
struct Spawned(Option<Child>);

fn start(cmd: &mut Command) -> Spawned {
    Spawned(Some(cmd.spawn().unwrap()))
}

impl Spawned {
    /// Hand the process over (to `finish`): no longer killed on drop.
    fn take(mut self) -> Child {
        self.0.take().unwrap()
    }
}

impl std::ops::Deref for Spawned {
    type Target = Child;
    fn deref(&self) -> &Child {
        self.0.as_ref().unwrap()
    }
}

impl std::ops::DerefMut for Spawned {
    fn deref_mut(&mut self) -> &mut Child {
        self.0.as_mut().unwrap()
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        if let Some(child) = self.0.as_mut() {
            // Only while not reaped: after that its pid may be someone else's.
            if let Ok(None) = child.try_wait() {
                kill_tree(child.id());
                let _ = child.wait();
            }
        }
    }
}

/// SIGKILL `pid` and every descendant (found first, so none is reparented away meanwhile).
fn kill_tree(pid: u32) {
    let mut all = vec![pid];
    let mut i = 0;
    while i < all.len() {
        all.extend(children_of(all[i]));
        i += 1;
    }
    let _ = Command::new("kill").arg("-9").args(all.iter().map(u32::to_string)).stderr(Stdio::null()).status();
}

fn code(out: &Output) -> i32 {
    out.status.code().unwrap_or_else(|| panic!("keel was killed: {:?}, stderr: {}", out.status, text(&out.stderr)))
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn wait(child: &mut Child) -> ExitStatus {
    let deadline = Instant::now() + LIMIT;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("pid {} still running after {LIMIT:?}", child.id());
        }
        thread::sleep(Duration::from_millis(10));
    }
}

/// Poll `what` until it holds, failing the test after LIMIT.
fn wait_until(description: &str, mut what: impl FnMut() -> bool) {
    let deadline = Instant::now() + LIMIT;
    while !what() {
        assert!(Instant::now() < deadline, "timed out waiting for {description}");
        thread::sleep(Duration::from_millis(10));
    }
}

fn signal(pid: u32, signo: i32) {
    let ok = Command::new("kill").arg(format!("-{signo}")).arg(pid.to_string()).status().unwrap().success();
    assert!(ok, "kill -{signo} {pid}");
}

fn lines(path: &Path) -> Vec<String> {
    fs::read_to_string(path).unwrap_or_default().lines().map(str::to_owned).collect()
}

/// (state, ppid, pgrp) from /proc/PID/stat, if the process exists.
fn stat(pid: u32) -> Option<(char, u32, u32)> {
    let s = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &s[s.rfind(')')? + 2..];
    let mut f = rest.split(' ');
    let state = f.next()?.chars().next()?;
    Some((state, f.next()?.parse().ok()?, f.next()?.parse().ok()?))
}

/// Alive: exists and is not a zombie.
fn alive(pid: u32) -> bool {
    stat(pid).is_some_and(|(state, _, _)| state != 'Z')
}

/// Processes whose parent is `pid` (the per-task `children` files are not in every kernel).
fn children_of(pid: u32) -> Vec<u32> {
    fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&p| stat(p).is_some_and(|(_, ppid, _)| ppid == pid))
        .collect()
}

fn pid_in(path: &Path) -> u32 {
    wait_until(&format!("a pid in {}", path.display()), || fs::read_to_string(path).is_ok_and(|s| s.ends_with('\n')));
    fs::read_to_string(path).unwrap().trim().parse().unwrap()
}

/// Whether unshare can make PID namespaces here (root, util-linux); else the test says so.
fn can_unshare() -> bool {
    let ok = Command::new("unshare")
        .args(["--pid", "--fork", "--mount-proc", "true"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        eprintln!("SKIPPED: `unshare --pid --fork --mount-proc` does not work here (needs root)");
    }
    ok
}

fn in_pid_namespace() -> Command {
    let mut cmd = Command::new("unshare");
    cmd.args(["--pid", "--fork", "--mount-proc", "--kill-child"]).arg(common::keel_bin());
    cmd
}

#[test]
fn exit_codes_pass_through() {
    for (args, want) in [
        (&["--", "sh", "-c", "exit 0"][..], 0),
        (&["--", "sh", "-c", "exit 3"], 3),
        (&["sh", "-c", "exit 4"], 4), // no `--`
        (&["-v", "-s", "--", "sh", "-c", "exit 5"], 5),
        (&["--", "sh", "-c", "kill -KILL $$"], 128 + 9),
        (&["--", "sh", "-c", "kill -TERM $$"], 128 + 15),
        (&["--", "sh", "-c", "kill -USR1 $$"], 128 + 10),
    ] {
        let out = output(keel().args(args));
        assert_eq!(code(&out), want, "keel {args:?}; stderr: {}", text(&out.stderr));
    }
}

#[test]
fn exec_failures_are_126_and_127_and_name_the_path() {
    let dir = scratch("exec");
    let plain = dir.join("not-executable");
    fs::write(&plain, "#!/bin/sh\nexit 0\n").unwrap();
    let plain = plain.to_str().unwrap();
    for (prog, want, words) in [
        ("/nonexistent/prog", 127, "No such file or directory"),
        ("keel-no-such-program", 127, "No such file or directory"),
        (plain, 126, "Permission denied"),
        ("/", 126, "Permission denied"),
    ] {
        let out = output(keel().args(["--", prog, "arg"]));
        let err = text(&out.stderr);
        assert_eq!(code(&out), want, "{prog}: {err}");
        assert!(err.contains(&format!("keel: exec {prog}: {words}")), "{prog}: {err}");
    }
}

#[test]
fn program_is_found_on_keels_path() {
    let dir = scratch("path");
    let script = dir.join("keel-test-script");
    fs::write(&script, "#!/bin/sh\necho \"ran with $1\"\nexit 6\n").unwrap();
    fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
    // A non-executable one earlier on PATH is skipped, as execvp does.
    let shadow = scratch("path-shadow");
    fs::write(shadow.join("keel-test-script"), "exit 1\n").unwrap();
    let path = format!("/nonexistent:{}:{}:/usr/bin:/bin", shadow.display(), dir.display());
    let out = output(keel().env("PATH", &path).args(["--", "keel-test-script", "x"]));
    assert_eq!(code(&out), 6, "stderr: {}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "ran with x\n");
    let out = output(keel().env("PATH", dir.to_str().unwrap()).args(["--", "keel-no-such-program"]));
    assert_eq!(code(&out), 127);
}

#[test]
fn exit_code_mapping() {
    for (args, want) in [
        (&["-e", "3", "--", "sh", "-c", "exit 3"][..], 0),
        (&["-e", "3", "--", "sh", "-c", "exit 4"], 4),
        (&["-e3", "-e", "143", "--", "sh", "-c", "kill -TERM $$"], 0),
        (&["-e", "4", "-e", "3", "sh", "-c", "exit 4"], 0),
        (&["-e", "0", "--", "sh", "-c", "exit 0"], 0),
    ] {
        let out = output(keel().args(args));
        assert_eq!(code(&out), want, "keel {args:?}; stderr: {}", text(&out.stderr));
    }
}

#[test]
fn flags_help_version_and_usage() {
    for args in [
        &["-x", "--", "true"][..],
        &["--"],
        &["-g"],
        &["-e", "256", "true"],
        &["-e"],
        &["-p", "NOPE", "true"],
        &["--frob", "true"],
    ] {
        let out = output(keel().args(args));
        assert_eq!(code(&out), 2, "keel {args:?}");
        assert!(text(&out.stderr).contains("usage: keel"), "keel {args:?}: {}", text(&out.stderr));
    }
    let out = output(keel().env("KEEL_GRACE", "soon").args(["--", "true"]));
    assert_eq!(code(&out), 2, "a bad KEEL_GRACE is reported, not ignored");
    assert!(text(&out.stderr).contains("KEEL_GRACE=soon"));

    let out = output(keel().arg("--help"));
    assert_eq!(code(&out), 0);
    assert!(text(&out.stdout).starts_with("usage: keel"), "{}", text(&out.stdout));
    let out = output(keel().arg("--version"));
    assert_eq!(code(&out), 0);
    assert_eq!(text(&out.stdout), format!("keel {}\n", env!("CARGO_PKG_VERSION")));

    // Not PID 1, no program: the general usage, as before container mode.
    for args in [&[][..], &["keel.shutdown_timeout=3"]] {
        let out = output(keel().args(args));
        assert_eq!(code(&out), 2);
        assert!(text(&out.stderr).contains("kernel's init"), "{}", text(&out.stderr));
    }
}

#[test]
fn parent_death_signal_is_accepted_and_works() {
    for sig in ["SIGKILL", "KILL", "9", "SIGTERM"] {
        let out = output(keel().args(["-p", sig, "--", "true"]));
        assert_eq!(code(&out), 0, "-p {sig}: {}", text(&out.stderr));
    }
    // keel's parent exits: keel gets SIGTERM, forwards it, the child dies, keel exits.
    let dir = scratch("pdeathsig");
    let pidfile = dir.join("child");
    let script = format!(
        "{keel} -p SIGTERM -- sh -c 'echo $$ > {f}.tmp; mv {f}.tmp {f}; exec sleep 30' & \
         while [ ! -s {f} ]; do sleep 0.02; done; exit 0",
        keel = common::keel_bin().display(),
        f = pidfile.display()
    );
    let out = output(Command::new("sh").arg("-c").arg(script));
    assert!(out.status.success());
    let child = pid_in(&pidfile);
    wait_until("the child to get the parent-death signal", || !alive(child));
}

fn io_error(e: rustix::io::Errno) -> std::io::Error {
    std::io::Error::from_raw_os_error(e.raw_os_error())
}

/// Start with `signals` at SIG_DFL: a shell that started the tests in the background gave
/// them SIGINT and SIGQUIT ignored, which keel rightly passes on, and sh cannot trap.
fn with_default(cmd: &mut Command, signals: Vec<i32>) -> &mut Command {
    // SAFETY: between fork and exec only async-signal-safe raw syscalls are made.
    unsafe {
        cmd.pre_exec(move || {
            for &signo in &signals {
                keel::sys::set_signal_ignored(signo as u32, false).map_err(io_error)?;
            }
            Ok(())
        })
    }
}

/// A child that records each signal (by number) it gets; TERM also ends it.
const TRAPS: &str = r#"out=$1; shift
for s in "$@"; do trap "echo $s >> $out" $s; done
trap "echo TERM >> $out; exit 0" TERM
echo ready >> $out
while :; do sleep 0.02; done"#;

#[test]
fn every_catchable_signal_is_forwarded() {
    let dir = scratch("forward");
    let out = dir.join("got");
    const SIGNALS: [(&str, i32); 20] = [
        ("HUP", 1), ("INT", 2), ("QUIT", 3), ("USR1", 10), ("USR2", 12), ("PIPE", 13), ("ALRM", 14),
        ("CONT", 18), ("TSTP", 20), ("URG", 23), ("XCPU", 24), ("XFSZ", 25), ("VTALRM", 26), ("PROF", 27),
        ("WINCH", 28), ("IO", 29), ("PWR", 30), ("RT 34", 34), ("RT 40", 40), ("RT 64", 64),
    ];
    let numbers: Vec<i32> = SIGNALS.iter().map(|s| s.1).collect();
    let mut cmd = keel();
    cmd.args(["--", "sh", "-c", TRAPS, "traps", out.to_str().unwrap()]).args(numbers.iter().map(i32::to_string));
    with_default(&mut cmd, numbers);
    let mut keel = start(cmd.stdin(Stdio::null()));
    let pid = keel.id();
    wait_until("the child's traps", || lines(&out).contains(&"ready".to_owned()));
    for (name, signo) in SIGNALS {
        signal(pid, signo);
        wait_until(&format!("SIG{name} ({signo}) at the child"), || lines(&out).contains(&signo.to_string()));
    }
    signal(pid, 15);
    let status = wait(&mut keel);
    assert_eq!(status.code(), Some(0), "the child ended on its TERM trap");
    assert_eq!(lines(&out).last().map(String::as_str), Some("TERM"));
}

/// The child traps USR1 and starts a grandchild that traps it too.
const FAMILY: &str = r#"out=$1
sh -c 'trap "echo grandchild >> $0; exit 0" USR1; echo $$ > $0.pid; while :; do sleep 0.02; done' "$out" &
trap "echo child >> $out" USR1
trap "exit 0" TERM
echo ready >> $out
while :; do sleep 0.02; done"#;

fn family(name: &str, setup: impl FnOnce(&mut Command)) -> (Spawned, Scratch, PathBuf, u32) {
    let dir = scratch(name);
    let out = dir.join("got");
    let mut cmd = keel();
    with_default(&mut cmd, vec![10, 15]);
    setup(&mut cmd);
    cmd.args(["sh", "-c", FAMILY, "family", out.to_str().unwrap()]);
    // (stderr: sh reports its `sleep`s killed by the group's USR1)
    let keel = start(cmd.stdin(Stdio::null()).stderr(Stdio::null()));
    wait_until("the child", || lines(&out).contains(&"ready".to_owned()));
    let grandchild = pid_in(&dir.join("got.pid"));
    (keel, dir, out, grandchild)
}

#[test]
fn process_group_forwarding() {
    for how in ["-g", "KEEL_KILL_PROCESS_GROUP=1"] {
        let (mut keel, _dir, out, grandchild) = family(&format!("group{}", how.len()), |cmd| {
            match how {
                "-g" => cmd.args(["-g", "--"]),
                _ => cmd.env("KEEL_KILL_PROCESS_GROUP", "1").arg("--"),
            };
        });
        let child = children_of(keel.id())[0];
        assert_eq!(stat(child).unwrap().2, child, "{how}: the child leads its own process group");
        signal(keel.id(), 10);
        wait_until(&format!("{how}: USR1 at the child and the grandchild"), || {
            let got = lines(&out);
            got.contains(&"child".to_owned()) && got.contains(&"grandchild".to_owned())
        });
        signal(keel.id(), 15);
        assert_eq!(wait(&mut keel).code(), Some(0), "{how}");
        assert!(!alive(grandchild));
    }
}

#[test]
fn without_g_only_the_child_is_signalled() {
    let (mut keel, _dir, out, grandchild) = family("no-group", |cmd| {
        cmd.env_remove("KEEL_KILL_PROCESS_GROUP");
    });
    let child = children_of(keel.id())[0];
    assert_eq!(stat(child).unwrap().2, stat(keel.id()).unwrap().2, "the child stays in keel's group");
    signal(keel.id(), 10);
    wait_until("USR1 at the child", || lines(&out).contains(&"child".to_owned()));
    thread::sleep(Duration::from_millis(300));
    assert!(!lines(&out).contains(&"grandchild".to_owned()), "the grandchild was signalled without -g");
    // The child exits; the grandchild, now an orphan, gets SIGTERM in the grace and dies.
    signal(keel.id(), 15);
    assert_eq!(wait(&mut keel).code(), Some(0));
    assert!(!alive(grandchild));
}

#[test]
fn orphans_are_reaped_by_a_subreaper() {
    let dir = scratch("subreaper");
    let pids = dir.join("orphans");
    let script = format!(
        "for i in 1 2 3; do (sleep 0.5 & echo $! >> {p}); done; echo done >> {p}; sleep 3; exit 0",
        p = pids.display()
    );
    let mut keel = start(keel().args(["-v", "--", "sh", "-c", &script]).stderr(Stdio::piped()).stdin(Stdio::null()));
    let me = keel.id();
    wait_until("three orphans", || lines(&pids).last().map(String::as_str) == Some("done"));
    let orphans: Vec<u32> = lines(&pids).iter().filter_map(|l| l.parse().ok()).collect();
    assert_eq!(orphans.len(), 3);
    for &orphan in &orphans {
        if let Some((_, ppid, _)) = stat(orphan) {
            assert_eq!(ppid, me, "orphan {orphan} was adopted by keel, not by init");
        }
    }
    wait_until("the orphans to be reaped", || orphans.iter().all(|&p| stat(p).is_none()));
    assert!(keel.try_wait().unwrap().is_none(), "keel still runs with its child");
    let zombies: Vec<u32> = children_of(me).into_iter().filter(|&p| stat(p).is_some_and(|s| s.0 == 'Z')).collect();
    assert!(zombies.is_empty(), "zombies under keel: {zombies:?}");
    let out = finish(keel.take());
    assert_eq!(code(&out), 0);
    let log = text(&out.stderr);
    for orphan in orphans {
        assert!(log.contains(&format!("reaped pid {orphan} (exit 0)")), "{orphan} not in: {log}");
    }
}

#[test]
fn orphans_are_reaped_as_pid1_of_a_pid_namespace() {
    if !can_unshare() {
        return;
    }
    let script = r#"(sleep 0.2 &); (sleep 0.2 &); sleep 1
zombies=0
for f in /proc/[0-9]*/stat; do
  read -r line < $f 2>/dev/null || continue
  case "${line##*) }" in Z*) zombies=$((zombies + 1));; esac
done
echo "pid1=$(cat /proc/1/comm) me=$$ zombies=$zombies"
exit 7"#;
    let out = output(in_pid_namespace().args(["-v", "--", "sh", "-c", script]));
    assert_eq!(code(&out), 7, "stderr: {}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "pid1=keel me=2 zombies=0\n");
    let log = text(&out.stderr);
    assert_eq!(log.matches("(exit 0)").count(), 2, "both orphans reaped: {log}");
    assert!(log.contains("reaped pid 2 (exit 7)"), "{log}");
}

#[test]
fn signals_reach_the_child_when_keel_is_pid1() {
    if !can_unshare() {
        return;
    }
    let dir = scratch("pid1-forward");
    let out = dir.join("got");
    let mut cmd = in_pid_namespace();
    cmd.args(["--", "sh", "-c", TRAPS, "traps", out.to_str().unwrap(), "1", "12"]);
    let mut ns = start(with_default(&mut cmd, vec![1, 12, 15]));
    wait_until("the child's traps", || lines(&out).contains(&"ready".to_owned()));
    // keel is unshare's child; from here it has an ordinary pid.
    let keel = children_of(ns.id())[0];
    assert_eq!(fs::read_to_string(format!("/proc/{keel}/comm")).unwrap(), "keel\n");
    for signo in [1, 12] {
        signal(keel, signo);
        wait_until(&format!("signal {signo} at the child"), || lines(&out).contains(&signo.to_string()));
    }
    signal(keel, 15);
    assert_eq!(wait(&mut ns).code(), Some(0));
}

/// `sh -c IGNORES_TERM_THEN_EXIT_3 sh FILE`: starts an orphan-to-be that ignores SIGTERM and
/// writes its pid to FILE, then exits 3 (only once the orphan ignores SIGTERM).
const IGNORES_TERM_THEN_EXIT_3: &str =
    r#"sh -c 'trap "" TERM; echo $$ > "$0"; exec sleep 30' "$1" & while [ ! -s "$1" ]; do sleep 0.02; done; exit 3"#;

#[test]
fn orphans_get_a_bounded_grace_as_pid1() {
    if !can_unshare() {
        return;
    }
    let dir = scratch("grace-pid1");
    let pidfile = dir.join("orphan");
    let started = Instant::now();
    let args = ["-v", "--", "sh", "-c", IGNORES_TERM_THEN_EXIT_3, "sh"];
    let out = output(in_pid_namespace().env("KEEL_GRACE", "1").args(args).arg(&pidfile));
    let took = started.elapsed();
    assert_eq!(code(&out), 3, "stderr: {}", text(&out.stderr));
    assert!(took >= Duration::from_millis(900) && took < Duration::from_secs(5), "took {took:?}");
    let orphan = pid_in(&pidfile); // its pid in the namespace
    assert!(text(&out.stderr).contains(&format!("reaped pid {orphan} (signal 9)")), "{}", text(&out.stderr));
}

#[test]
fn an_orphan_ignoring_sigterm_is_killed_after_the_grace() {
    let dir = scratch("grace-kill");
    let pidfile = dir.join("orphan");
    let started = Instant::now();
    let args = ["-v", "--", "sh", "-c", IGNORES_TERM_THEN_EXIT_3, "sh"];
    let out = output(keel().env("KEEL_GRACE", "1").args(args).arg(&pidfile));
    let took = started.elapsed();
    assert_eq!(code(&out), 3, "the child's code, after the grace");
    let orphan = pid_in(&pidfile);
    assert!(took >= Duration::from_millis(900), "keel did not wait for the orphan: {took:?}: {}", text(&out.stderr));
    assert!(took < Duration::from_secs(5), "took {took:?}");
    assert!(stat(orphan).is_none(), "orphan {orphan} left behind");
    assert!(text(&out.stderr).contains(&format!("reaped pid {orphan} (signal 9)")), "{}", text(&out.stderr));
}

#[test]
fn the_grace_ends_when_the_orphans_do_and_spares_other_processes() {
    let dir = scratch("grace-term");
    let (orphan_file, grandchild_file) = (dir.join("orphan"), dir.join("grandchild"));
    // An unrelated process: not keel's descendant, so keel must leave it alone.
    let mut bystander = start(Command::new("sleep").arg("30"));
    // The orphan is a shell waiting on its own child: SIGTERM must reach both.
    let script = format!(
        "sh -c 'sleep 30 & echo $! > {g}; wait' & echo $! > {o}; while [ ! -s {g} ]; do sleep 0.02; done; exit 0",
        g = grandchild_file.display(),
        o = orphan_file.display()
    );
    let started = Instant::now();
    let out = output(keel().env("KEEL_GRACE", "10").args(["-v", "--", "sh", "-c", &script]));
    let took = started.elapsed();
    assert_eq!(code(&out), 0, "stderr: {}", text(&out.stderr));
    assert!(took < Duration::from_secs(5), "SIGTERM should end them well within KEEL_GRACE=10: {took:?}");
    let (orphan, grandchild) = (pid_in(&orphan_file), pid_in(&grandchild_file));
    assert!(stat(orphan).is_none() && stat(grandchild).is_none(), "left behind");
    assert!(text(&out.stderr).contains(&format!("reaped pid {orphan} (signal 15)")), "{}", text(&out.stderr));
    assert!(bystander.try_wait().unwrap().is_none(), "keel signalled a process outside its subtree");
    bystander.kill().unwrap();
    bystander.wait().unwrap();
}

/// SigBlk and SigIgn of a process from its /proc/self/status.
fn masks(status: &str) -> Vec<String> {
    status.lines().filter(|l| l.starts_with("SigBlk") || l.starts_with("SigIgn")).map(str::to_owned).collect()
}

#[test]
fn the_child_inherits_keels_signal_mask_and_ignored_signals() {
    fn with_odd_signals(cmd: &mut Command) -> &mut Command {
        // SAFETY: between fork and exec only async-signal-safe raw syscalls are made.
        unsafe {
            cmd.pre_exec(|| {
                keel::sys::block_signals(keel::sys::SigSet(0).with(12)).map_err(io_error)?;
                for signo in [10, 17] {
                    keel::sys::set_signal_ignored(signo, true).map_err(io_error)?;
                }
                Ok(())
            })
        }
    }
    let direct = output(with_odd_signals(&mut Command::new("cat")).arg("/proc/self/status"));
    let under_keel = output(with_odd_signals(&mut keel()).args(["--", "cat", "/proc/self/status"]));
    assert_eq!(code(&under_keel), 0, "stderr: {}", text(&under_keel.stderr));
    let (direct, under_keel) = (masks(&text(&direct.stdout)), masks(&text(&under_keel.stdout)));
    assert_eq!(under_keel, direct);
    // The setup really took: USR2 (bit 11) blocked; USR1 (bit 9) and CHLD (bit 16) ignored.
    let bits = |line: &str| u64::from_str_radix(line.split_whitespace().nth(1).unwrap(), 16).unwrap();
    assert_eq!(bits(&direct[0]) & 1 << 11, 1 << 11, "{direct:?}");
    assert_eq!(bits(&direct[1]) & (1 << 9 | 1 << 16), 1 << 9 | 1 << 16, "{direct:?}");
    // With SIGCHLD ignored keel still learns its child's code.
    let out = output(with_odd_signals(&mut keel()).args(["--", "sh", "-c", "exit 5"]));
    assert_eq!(code(&out), 5);
}

#[test]
fn stdio_passes_through() {
    let mut cmd = keel();
    cmd.args(["--", "sh", "-c", "cat; echo err >&2"]);
    let mut keel = start(cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()));
    keel.stdin.take().unwrap().write_all(b"hello\nworld\n").unwrap(); // dropped: EOF
    let out = finish(keel.take());
    assert_eq!(code(&out), 0);
    assert_eq!(text(&out.stdout), "hello\nworld\n");
    assert_eq!(text(&out.stderr), "err\n");
}

#[test]
fn keel_words_as_pid1_still_mean_init_mode() {
    if !can_unshare() {
        return;
    }
    let mut ns = start(in_pid_namespace().arg("keel.shutdown_timeout=1").stdin(Stdio::null()).stderr(Stdio::piped()));
    let (tx, rx) = mpsc::channel();
    let stderr = ns.stderr.take().unwrap();
    thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    // Whatever else init mode prints, it says it is PID 1; container mode would fail or exit.
    let deadline = Instant::now() + LIMIT;
    let mut seen = Vec::new();
    while let Ok(line) = rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
        seen.push(line);
        if seen.last().unwrap().contains("starting as PID 1") {
            break;
        }
    }
    let _ = ns.kill(); // --kill-child takes keel with it
    wait(&mut ns);
    assert!(seen.last().is_some_and(|l| l.contains("starting as PID 1")), "{seen:?}");
}

