//! Running keel as PID 1 of a fresh PID namespace (`unshare --pid --fork --mount-proc`).
//! In a child PID namespace reboot(2) kills the namespace's init with SIGHUP (RESTART) or
//! SIGINT (POWER_OFF, HALT); unshare re-raises that signal, so the test sees it.

use std::io::Read;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const SIGHUP: i32 = 1;
pub const SIGINT: i32 = 2;

/// Tests that run keel as PID 1 of a new PID namespace need root (and util-linux's unshare).
/// Without them they fail, loudly and at once: a skipped test would pass and prove nothing.
pub fn require_pid_namespaces() {
    static CHECKED: std::sync::OnceLock<Result<(), String>> = std::sync::OnceLock::new();
    let result = CHECKED.get_or_init(|| {
        match Command::new("unshare").args(["--pid", "--fork", "--mount-proc", "true"]).output() {
            Ok(out) if out.status.success() => Ok(()),
            Ok(out) => Err(format!("{}: {}", out.status, String::from_utf8_lossy(&out.stderr).trim())),
            Err(e) => Err(format!("cannot run unshare: {e}")),
        }
    });
    if let Err(why) = result {
        panic!(
            "NEEDS ROOT: this test runs keel as PID 1 of a new PID namespace, and \
             `unshare --pid --fork --mount-proc true` failed here ({why}). Run the integration \
             tests as root (CI does), with util-linux installed."
        );
    }
}

pub struct Pid1 {
    unshare: Child,
    /// keel's pid as the host sees it.
    pub pid: i32,
    log: Arc<Mutex<String>>,
    pub started: Instant,
}

impl Pid1 {
    /// Start `bin` as PID 1 with `args` (keel.* words, as the kernel would pass them).
    pub fn start(bin: &Path, args: &[&str]) -> Pid1 {
        require_pid_namespaces();
        let mut unshare = Command::new("unshare")
            .args(["--pid", "--fork", "--mount-proc", "--kill-child"])
            .arg(bin)
            .args(args)
            // The default configuration's shell would take the host's /dev/console.
            .arg("keel.svc.shell=off")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("unshare (util-linux) runs");
        let log = Arc::new(Mutex::new(String::new()));
        for mut stream in [
            Box::new(unshare.stdout.take().unwrap()) as Box<dyn Read + Send>,
            Box::new(unshare.stderr.take().unwrap()),
        ] {
            let log = log.clone();
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                while let Ok(n) = stream.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    log.lock().unwrap().push_str(&String::from_utf8_lossy(&buf[..n]));
                }
            });
        }
        let started = Instant::now();
        let children = format!("/proc/{0}/task/{0}/children", unshare.id());
        let pid = loop {
            let text = std::fs::read_to_string(&children).unwrap_or_default();
            if let Some(pid) = text.split_whitespace().next() {
                break pid.parse().unwrap();
            }
            // PID 1 may already be gone (a test that makes it power off at once).
            if unshare.try_wait().unwrap().is_some() {
                break 0;
            }
            assert!(started.elapsed() < Duration::from_secs(5), "keel did not start under unshare");
            std::thread::sleep(Duration::from_millis(5));
        };
        let mut ns = Pid1 { unshare, pid, log, started };
        ns.wait_for("keel: ready", Duration::from_secs(5));
        ns
    }

    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Wait until the log contains `text`; panics with the log after `timeout`.
    pub fn wait_for(&mut self, text: &str, timeout: Duration) {
        let until = Instant::now() + timeout;
        while !self.log().contains(text) {
            if Instant::now() > until {
                panic!("timed out waiting for {text:?}; log:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    pub fn signal(&self, signo: i32) {
        let ok = Command::new("kill").arg(format!("-{signo}")).arg(self.pid.to_string()).status().unwrap().success();
        assert!(ok, "kill -{signo} {}", self.pid);
    }

    /// Run a shell command inside the namespace (as a child of nsenter, not of keel);
    /// whatever it leaves running in the background is adopted by keel.
    pub fn sh(&self, script: &str) {
        let status = Command::new("nsenter")
            .args(["-t", &self.pid.to_string(), "-p", "-m", "--", "sh", "-c", script])
            .status()
            .expect("nsenter runs");
        assert!(status.success(), "{script}: {status}");
    }

    /// Run a program inside the namespace and return its exit status.
    pub fn run(&self, program: &Path, args: &[&str]) -> std::process::Output {
        Command::new("nsenter")
            .args(["-t", &self.pid.to_string(), "-p", "-m", "--"])
            .arg(program)
            .args(args)
            .output()
            .expect("nsenter runs")
    }

    /// keel's children (host pids), from /proc.
    pub fn children(&self) -> Vec<i32> {
        std::fs::read_to_string(format!("/proc/{0}/task/{0}/children", self.pid))
            .unwrap_or_default()
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .collect()
    }

    /// Wait until keel has adopted a child running `comm` whose ignored-signal mask
    /// includes `ignored` (0 for any): the background job of `sh` has settled.
    pub fn wait_adopted(&self, comm: &str, ignored: i32) {
        let until = Instant::now() + Duration::from_secs(5);
        loop {
            let settled = self.children().iter().any(|pid| {
                let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
                let field = |name: &str| status.lines().find_map(|l| l.strip_prefix(name)).unwrap_or("").trim().to_string();
                let sig_ign = u64::from_str_radix(&field("SigIgn:"), 16).unwrap_or(0);
                field("Name:") == comm && (ignored == 0 || sig_ign & (1 << (ignored - 1)) != 0)
            });
            if settled {
                return;
            }
            assert!(Instant::now() < until, "no adopted {comm} child; children {:?}", self.children());
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Wait for keel (and so the namespace) to end; returns the signal that ended it.
    pub fn wait_end(&mut self, timeout: Duration) -> Option<i32> {
        let until = Instant::now() + timeout;
        loop {
            if let Some(status) = self.unshare.try_wait().unwrap() {
                std::thread::sleep(Duration::from_millis(20)); // let the log readers drain
                return status.signal();
            }
            if Instant::now() > until {
                panic!("PID 1 still running after {timeout:?}; log:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    pub fn is_running(&mut self) -> bool {
        self.unshare.try_wait().unwrap().is_none()
    }
}

impl Drop for Pid1 {
    fn drop(&mut self) {
        // --kill-child takes keel (and with it the namespace) down with unshare.
        let _ = self.unshare.kill();
        let _ = self.unshare.wait();
    }
}
