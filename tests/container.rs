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

/// keel as PID 1 of a new PID namespace; the test fails loudly where that needs root.
fn in_pid_namespace() -> Command {
    common::ns::require_pid_namespaces();
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
        assert_eq!(code(&out), 1, "keel {args:?}: usage errors exit 1, as in tini and dumb-init");
        assert!(text(&out.stderr).contains("usage: keel"), "keel {args:?}: {}", text(&out.stderr));
    }
    let out = output(keel().env("KEEL_GRACE", "soon").args(["--", "true"]));
    assert_eq!(code(&out), 1, "a bad KEEL_GRACE is reported, not ignored");
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
    // The faults too, when another process sends them (`kill -SEGV` for a dump): keel must
    // pass them on, not die of them and leave its child running. TSTP, TTIN and TTOU stop
    // keel as well (job_control_*); 32 and 33 cannot be trapped by a libc shell (below).
    const SIGNALS: [(&str, i32); 26] = [
        ("HUP", 1), ("INT", 2), ("QUIT", 3), ("ILL", 4), ("TRAP", 5), ("ABRT", 6), ("BUS", 7), ("FPE", 8),
        ("USR1", 10), ("SEGV", 11), ("USR2", 12), ("PIPE", 13), ("ALRM", 14), ("CONT", 18), ("URG", 23),
        ("XCPU", 24), ("XFSZ", 25), ("VTALRM", 26), ("PROF", 27), ("WINCH", 28), ("IO", 29), ("PWR", 30),
        ("SYS", 31), ("RT 34", 34), ("RT 40", 40), ("RT 64", 64),
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
    assert_eq!(stat(child).unwrap().2, child, "the child leads its own group, -g or not (as in tini)");
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


#[test]
fn signals_32_and_33_are_forwarded_not_fatal_to_keel() {
    // No libc lets a program catch these (they are its own), so the child dies of them, as
    // it would have had the sender signalled it directly; keel, which has no libc, lives.
    for signo in [32, 33] {
        let mut cmd = keel();
        // (the test process has them ignored, which keel would rightly pass on)
        let mut keel = start(with_default(cmd.args(["--", "sleep", "30"]), vec![32, 33]).stdin(Stdio::null()));
        wait_until("sleep to run", || children_of(keel.id()).iter().any(|&c| comm(c) == "sleep"));
        signal(keel.id(), signo);
        assert_eq!(wait(&mut keel).code(), Some(128 + signo), "signal {signo}: the child's end, not keel's");
    }
}

fn comm(pid: u32) -> String {
    fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default().trim().to_owned()
}

fn state(pid: u32) -> char {
    stat(pid).map_or('?', |s| s.0)
}

/// `sh -c JOB FILE`: starts a grandchild in the child's process group, writes its pid to
/// FILE and waits for it.
const JOB: &str = r#"sleep 30 & echo $! > "$1.tmp"; mv "$1.tmp" "$1"; wait"#;

#[test]
fn job_control_signals_stop_the_childs_group_and_keel_and_sigcont_resumes_them() {
    for (name, signo) in [("TSTP", 20), ("TTIN", 21), ("TTOU", 22)] {
        let dir = scratch(&format!("stop-{name}"));
        let file = dir.join("grandchild");
        let mut cmd = keel();
        cmd.args(["--", "sh", "-c", JOB, "sh"]).arg(&file);
        let mut keel = start(with_default(&mut cmd, vec![18, 20, 21, 22]).stdin(Stdio::null()));
        let grandchild = pid_in(&file);
        let child = children_of(keel.id())[0];
        let all = [keel.id(), child, grandchild];
        signal(keel.id(), signo);
        wait_until(&format!("SIG{name}: keel, the child and the grandchild stopped"), || {
            all.iter().all(|&p| state(p) == 'T')
        });
        signal(keel.id(), 18);
        wait_until(&format!("SIG{name}, SIGCONT: all three running"), || all.iter().all(|&p| state(p) != 'T'));
        signal(keel.id(), 15);
        assert_eq!(wait(&mut keel).code(), Some(128 + 15), "SIG{name}");
        assert!(!alive(grandchild), "SIG{name}: the grandchild got the grace's SIGTERM");
    }
}

#[test]
fn as_pid1_keel_forwards_job_control_signals_but_never_stops() {
    let dir = scratch("stop-pid1");
    let file = dir.join("grandchild");
    let mut cmd = in_pid_namespace();
    cmd.args(["--", "sh", "-c", JOB, "sh"]).arg(&file);
    let mut ns = start(with_default(&mut cmd, vec![18, 20]).stdin(Stdio::null()));
    let _ = pid_in(&file); // its pid in the namespace: find the host's through the tree
    let keel = children_of(ns.id())[0];
    let child = children_of(keel)[0];
    let sleep = || children_of(child).into_iter().find(|&p| comm(p) == "sleep");
    wait_until("the grandchild", || sleep().is_some());
    let grandchild = sleep().unwrap();
    signal(keel, 20);
    wait_until("the child and the grandchild stopped", || state(child) == 'T' && state(grandchild) == 'T');
    thread::sleep(Duration::from_millis(200));
    assert_ne!(state(keel), 'T', "PID 1 stopped");
    signal(keel, 18);
    wait_until("both running", || state(child) != 'T' && state(grandchild) != 'T');
    signal(keel, 15);
    assert_eq!(wait(&mut ns).code(), Some(128 + 15));
}

#[test]
fn keel_keeps_no_directory_busy() {
    let dir = scratch("cwd");
    let mut keel = start(keel().current_dir(&*dir).args(["--", "sleep", "30"]).stdin(Stdio::null()));
    let cwd = |pid: u32| fs::read_link(format!("/proc/{pid}/cwd")).unwrap_or_default();
    wait_until("sleep to run", || children_of(keel.id()).iter().any(|&c| comm(c) == "sleep"));
    wait_until("keel to leave its start directory for /", || cwd(keel.id()) == Path::new("/"));
    let child = children_of(keel.id())[0];
    assert_eq!(cwd(child), dir.canonicalize().unwrap(), "the child starts where keel was started");
    signal(keel.id(), 15);
    assert_eq!(wait(&mut keel).code(), Some(128 + 15));
}

#[test]
fn a_fault_of_keels_own_stays_fatal_although_keel_blocks_sigill() {
    // KEEL_TEST_FAULT (test builds only): keel runs an invalid instruction once its child runs.
    let dir = scratch("fault");
    let file = dir.join("child");
    let mut cmd = Command::new(common::keel_test_bin());
    cmd.env("KEEL_TEST_FAULT", "1").args(["--", "sh", "-c", r#"echo $$ > "$1.tmp"; mv "$1.tmp" "$1"; exec sleep 30"#, "sh"]);
    // SAFETY: between fork and exec only a raw setrlimit is made.
    unsafe {
        cmd.pre_exec(|| {
            let none = rustix::process::Rlimit { current: Some(0), maximum: Some(0) };
            rustix::process::setrlimit(rustix::process::Resource::Core, none).map_err(io_error)
        });
    }
    let mut keel = start(cmd.arg(&file).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null()));
    let status = wait(&mut keel);
    let child = pid_in(&file);
    let _ = Command::new("kill").arg("-9").arg(child.to_string()).status();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(status.signal(), Some(4), "keel must die of its own SIGILL, not read it from its signalfd: {status:?}");
}

/// A pseudo-terminal. The test holds the master side and collects everything written to
/// the terminal; `start` runs a command as the leader of a new session whose controlling
/// terminal is the other side, as a terminal emulator (or `docker run -t`) starts a shell.
struct Pty {
    master: rustix::fd::OwnedFd,
    seen: std::sync::Arc<std::sync::Mutex<String>>,
}

impl Pty {
    fn start(cmd: &mut Command) -> (Pty, Spawned) {
        use rustix::pty::{grantpt, ioctl_tiocgptpeer, openpt, unlockpt, OpenptFlags};
        let flags = OpenptFlags::RDWR | OpenptFlags::NOCTTY | OpenptFlags::CLOEXEC;
        let master = openpt(flags).unwrap();
        grantpt(&master).unwrap();
        unlockpt(&master).unwrap();
        let terminal = ioctl_tiocgptpeer(&master, flags).unwrap();
        cmd.stdin(Stdio::from(terminal.try_clone().unwrap()));
        cmd.stdout(Stdio::from(terminal.try_clone().unwrap()));
        cmd.stderr(Stdio::from(terminal));
        // SAFETY: between fork and exec only raw setsid and ioctl calls are made.
        unsafe {
            cmd.pre_exec(|| {
                rustix::process::setsid().map_err(io_error)?;
                rustix::process::ioctl_tiocsctty(std::io::stdin()).map_err(io_error)
            });
        }
        let process = start(cmd); // and our copies of the terminal side are closed
        let seen = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let mut reader = fs::File::from(master.try_clone().unwrap());
        let sink = seen.clone();
        thread::spawn(move || {
            let mut buf = [0u8; 4096];
            // EIO once every process has closed the terminal side.
            while let Ok(n @ 1..) = std::io::Read::read(&mut reader, &mut buf) {
                sink.lock().unwrap().push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        (Pty { master, seen }, process)
    }

    /// Type on the terminal's keyboard.
    fn type_in(&self, keys: &str) {
        rustix::io::write(&self.master, keys.as_bytes()).unwrap();
    }

    fn wait_for(&self, text: &str) {
        let deadline = Instant::now() + LIMIT;
        while !self.seen.lock().unwrap().contains(text) {
            assert!(Instant::now() < deadline, "{text:?} never showed on the terminal:\n{}", self.seen.lock().unwrap());
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// The terminal's foreground process group.
    fn foreground(&self) -> u32 {
        rustix::termios::tcgetpgrp(&self.master).map_or(0, |p| p.as_raw_nonzero().get() as u32)
    }
}

#[test]
fn on_a_terminal_the_child_leads_its_group_and_has_the_foreground() {
    let dir = scratch("terminal");
    let got = dir.join("got");
    // The child counts each SIGINT it gets.
    let child = r#"trap 'echo INT >> "$1"' INT; trap 'exit 0' TERM; echo ready >> "$1"; while :; do sleep 0.02; done"#;
    // The session leader is a script, as on a terminal: keel runs in the script's group.
    let script = r#""$KEEL" -- sh -c "$CHILD" child "$GOT"; echo "keel exited $?"; exec sleep 30"#;
    let mut cmd = Command::new("sh");
    cmd.arg("-c").arg(script).env("KEEL", common::keel_bin()).env("CHILD", child).env("GOT", &got);
    let (pty, session) = Pty::start(with_default(&mut cmd, vec![2, 15]));
    wait_until("the child's traps", || lines(&got).contains(&"ready".to_owned()));
    let keel = children_of(session.id())[0];
    let child = children_of(keel)[0];
    assert_eq!(stat(child).unwrap().2, child, "the child leads its own process group (no -g)");
    assert_eq!(stat(keel).unwrap().2, session.id(), "keel stays in the script's group");
    assert_eq!(pty.foreground(), child, "the child's group has the terminal");

    pty.type_in("\x03"); // Ctrl-C: SIGINT to the foreground group, the child's, not keel's
    wait_until("SIGINT at the child", || lines(&got).contains(&"INT".to_owned()));
    thread::sleep(Duration::from_millis(300));
    assert_eq!(lines(&got).iter().filter(|l| *l == "INT").count(), 1, "the child got SIGINT once, not forwarded again");

    signal(keel, 15);
    pty.wait_for("keel exited 0");
    assert_eq!(pty.foreground(), session.id(), "keel gave the terminal back to its own group");
}

#[test]
fn ctrl_z_in_an_interactive_shell_stops_the_job_and_fg_resumes_it() {
    let mut cmd = Command::new("bash");
    cmd.args(["--norc", "--noprofile", "-i"]).env("PS1", "$ ").env("HISTFILE", "/dev/null").env("TERM", "dumb");
    let (pty, mut bash) = Pty::start(with_default(&mut cmd, vec![2, 18, 20]));
    pty.wait_for("$ ");
    pty.type_in(&format!("{} -- sleep 30\n", common::keel_bin().display()));
    let mut found = None;
    wait_until("keel and its sleep", || {
        found = children_of(bash.id())
            .into_iter()
            .filter(|&k| comm(k) == "keel")
            .find_map(|k| children_of(k).into_iter().find(|&c| comm(c) == "sleep").map(|c| (k, c)));
        found.is_some()
    });
    let (keel, sleep) = found.unwrap();
    wait_until("the child's group in the foreground", || pty.foreground() == sleep);

    pty.type_in("\x1a"); // Ctrl-Z
    wait_until("keel and its child stopped", || state(keel) == 'T' && state(sleep) == 'T');
    pty.wait_for("Stopped");
    wait_until("the terminal back with bash", || pty.foreground() == bash.id());

    pty.type_in("fg\n");
    wait_until("keel and its child running", || state(keel) != 'T' && state(sleep) != 'T');
    wait_until("the terminal with the child again", || pty.foreground() == sleep);

    pty.type_in("\x03"); // Ctrl-C ends sleep, and so keel, with 128+2
    wait_until("keel to end", || !alive(keel));
    pty.type_in("echo code=$?\n");
    pty.wait_for("code=130");
    pty.type_in("exit\n");
    assert!(wait(&mut bash).success());
}
