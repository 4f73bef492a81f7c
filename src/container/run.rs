//! The system side of container mode: set-up, the child's start, the loop. Everything it
//! decides comes from the pure pieces: `args` (what to run), `signals` (where a signal
//! goes), `lifecycle` (the end), `descendants` (who is left).

use super::args::{apply_env, parse, Options, Parsed, Problem};
use super::descendants::for_each_descendant;
use super::lifecycle::{exec_failure_code, exit_code, Action, Lifecycle};
use super::signals::{self, Route, BLOCKED};
use crate::clock::Instant;
use crate::event::{EventLoop, Source, EVENTS_PER_WAIT};
use crate::log::Line;
use crate::log::say::Part::{self, E, I, T};
use crate::power::signals::Signals;
use crate::sys::{self, Args, SigSet};
use linux_raw_sys::general as k;
use rustix::io::Errno;
use rustix::process::{getpgrp, getpid, Pid};

const USAGE: &str = "usage: keel [-g] [-v] [-s] [-e CODE]... [-p SIGNAL] [--] PROGRAM [ARGS...]";
const HELP: &str = "\n\
    Run PROGRAM as the one child: forward signals to it, reap orphans, exit with its code.\n  \
    -g         signal the child's process group (or KEEL_KILL_PROCESS_GROUP=1)\n  \
    -e CODE    exit 0 when the child exits with CODE (repeatable; 128+N for signal N)\n  \
    -p SIGNAL  signal keel gets when its parent dies (e.g. SIGKILL)\n  \
    -v         log each reaped process\n  \
    -s         accepted for tini (keel always reaps orphans)\n\
    KEEL_GRACE=SECONDS: orphans' time between SIGTERM and SIGKILL when the child exits (5)\n";
/// Where execvp looks when PATH is unset (musl's default).
const DEFAULT_PATH: &[u8] = b"/usr/local/bin:/bin:/usr/bin";
const PATH_MAX: usize = 4096;

/// PID 1 of the machine rather than of a child PID namespace: the initial namespace has
/// a fixed inode (PROC_PID_INIT_INO); without /proc (early boot) assume the machine.
pub fn is_machine_init() -> bool {
    const PROC_PID_INIT_INO: u64 = 0xEFFF_FFFC;
    rustix::fs::stat(c"/proc/self/ns/pid").map_or(true, |st| st.st_ino as u64 == PROC_PID_INIT_INO)
}

pub fn run(args: Args) -> ! {
    let mut words = (1..args.len()).filter_map(|i| args.arg(i));
    let mut opts = match parse(&mut words) {
        Ok(Parsed::Run(opts)) => opts,
        Ok(Parsed::Help) => {
            write_stdout(USAGE.as_bytes());
            write_stdout(HELP.as_bytes());
            sys::exit(0)
        }
        Ok(Parsed::Version) => {
            write_stdout(concat!("keel ", env!("CARGO_PKG_VERSION"), "\n").as_bytes());
            sys::exit(0)
        }
        Err(p) => usage_error(p),
    };
    for var in args.env() {
        apply_env(&mut opts, var).unwrap_or_else(|p| usage_error(p));
    }
    let me = getpid();
    if let Some(signo) = opts.parent_death_signal {
        let signal = rustix::process::Signal::from_named_raw(signo as i32).ok_or(Errno::INVAL);
        signal
            .and_then(|s| rustix::process::set_parent_process_death_signal(Some(s)))
            .unwrap_or_else(|e| fail("PR_SET_PDEATHSIG", e));
    }
    // Orphans of our subtree come to us, not to the real init (any non-zero value sets it).
    if !me.is_init() {
        if let Err(e) = rustix::process::set_child_subreaper(Some(me)) {
            say(b"warning: cannot become a subreaper: %", &[E(e)]);
        }
    }
    // SIG_IGN would let the kernel reap the child before we learn its code; the child gets
    // it back. Signals are blocked before the fork so none is lost on the way (and a blocked
    // SIGTTOU lets keel set the terminal's group and write to it from the background).
    let chld_ignored = sys::set_signal_ignored(k::SIGCHLD, false).unwrap_or(false);
    let mask = sys::block_signals(BLOCKED).unwrap_or_else(|e| fail("sigprocmask", e));
    let signals = Signals { fd: sys::signalfd(BLOCKED).unwrap_or_else(|e| fail("signalfd", e)) };
    let events = EventLoop::new().unwrap_or_else(|e| fail("epoll", e));
    events.watch(crate::sys::fd::borrow(&signals.fd), Source::Signals).unwrap_or_else(|e| fail("epoll_ctl", e));
    let child = spawn(&args, &opts, mask, chld_ignored);
    // PROGRAM has been exec'd (or has failed): keel itself keeps no directory busy.
    let _ = rustix::process::chdir(c"/");
    #[cfg(feature = "test-hooks")]
    if args.env().any(|v| v == b"KEEL_TEST_FAULT=1") {
        sys::illegal_instruction()
    }
    let mut c = Container {
        child,
        target: if opts.group { -child } else { child },
        me: me.as_raw_nonzero().get(),
        opts,
        life: Lifecycle::new(opts.grace_secs),
        events,
        signals,
    };
    c.run()
}

struct Container {
    /// The child's pid, which is also its process group.
    child: i32,
    /// Where signals go: the child, or -pgid.
    target: i32,
    me: i32,
    opts: Options,
    life: Lifecycle,
    events: EventLoop,
    signals: Signals,
}

impl Container {
    fn run(&mut self) -> ! {
        let mut ready = heapless::Vec::<Source, EVENTS_PER_WAIT>::new();
        loop {
            let (child, verbose, success) = (self.child, self.opts.verbose, self.opts.success);
            let mut exited = None;
            let left = crate::reaper::reap_all(|pid, status| {
                if verbose {
                    let [how, n] = status.parts();
                    say(b"reaped pid % (% %)", &[I(pid.into()), how, n]);
                }
                if pid == child {
                    exited = Some(exit_code(status, &success));
                }
            });
            match exited {
                Some(code) => self.life.child_exited(code),
                None if self.life.code.is_none() => self.follow_a_stop(),
                None => {}
            }
            match self.life.step(Instant::now(), left) {
                Action::Wait => {}
                // SIGCONT: a stopped process would not act on SIGTERM.
                Action::TermRest => self.signal_rest(&[k::SIGTERM, k::SIGCONT]),
                Action::KillRest => self.signal_rest(&[k::SIGKILL]),
                Action::Exit(code) => {
                    // The terminal back to keel's group (tini leaves it to the dead child's).
                    hand_terminal(Pid::from_raw(self.child), Some(getpgrp()));
                    exit(code)
                }
            }
            self.events.arm(self.life.poll_at()).unwrap_or_else(|e| fail("timerfd", e));
            self.events.wait(&mut ready).unwrap_or_else(|e| fail("epoll_wait", e));
            if ready.contains(&Source::Signals) {
                self.forward();
            }
        }
    }

    /// Pass on every pending signal while the child lives.
    fn forward(&mut self) {
        while let Some(signal) = self.signals.next() {
            if self.life.code.is_some() {
                continue;
            }
            match signals::route(signal, self.me) {
                Route::Drop => {}
                Route::Child => {
                    let _ = sys::kill(self.target, signal.signo);
                }
                Route::StopJob => {
                    self.signal_job(signal.signo);
                    self.stop();
                }
                Route::ContinueJob => {
                    hand_terminal(Some(getpgrp()), Pid::from_raw(self.child));
                    self.signal_job(k::SIGCONT);
                }
            }
        }
    }

    /// The child's whole process group, or the child alone if it left the group.
    fn signal_job(&self, signo: u32) {
        if sys::kill(-self.child, signo).is_err() {
            let _ = sys::kill(self.child, signo);
        }
    }

    /// The child stopped on a terminal stop signal (Ctrl-Z reaches only its group, which has
    /// the terminal): its job stopped, so keel stops too, or the shell that started keel
    /// would wait forever with the terminal held by a stopped group. With a controlling
    /// terminal keel's whole group gets the signal first, as the terminal would have sent it
    /// before keel gave the child the terminal (in `sh -c 'keel -- vi'` the shell waits for
    /// sh, not keel); keel's own copy is then dropped as one it sent itself.
    fn follow_a_stop(&self) {
        use rustix::process::{waitid, WaitId, WaitIdOptions};
        let Some(pid) = Pid::from_raw(self.child) else { return };
        let stopped = waitid(WaitId::Pid(pid), WaitIdOptions::STOPPED | WaitIdOptions::NOHANG);
        let Some(signo) = stopped.ok().flatten().and_then(|s| s.stopping_signal()) else { return };
        if !signals::is_job_stop(signo as u32) || self.me == 1 {
            return;
        }
        if rustix::termios::tcgetpgrp(sys::stdin()).is_ok() {
            let _ = sys::kill(-getpgrp().as_raw_nonzero().get(), signo as u32);
        }
        self.stop();
    }

    /// SIGSTOP to keel itself (dumb-init's way); SIGCONT continues it. Not as PID 1: the
    /// kernel does not stop a namespace's init for a signal sent from inside, and nothing
    /// above it would take the terminal back.
    fn stop(&self) {
        if self.me != 1 {
            let _ = sys::kill(self.me, k::SIGSTOP);
        }
    }

    /// Signal every process left after the child: as PID 1 that is the whole namespace;
    /// as a subreaper only our own descendants.
    fn signal_rest(&self, signals: &[u32]) {
        let send = |pid| {
            for &signo in signals {
                let _ = sys::kill(pid, signo);
            }
        };
        if self.me == 1 {
            send(-1);
        } else {
            for_each_descendant(self.me, send);
        }
    }
}

/// Move the foreground of keel's terminal (stdin) from `from` to `to`, only if `from` has it:
/// a group keel never gave the terminal to keeps its own. Nothing when stdin is no terminal.
fn hand_terminal(from: Option<Pid>, to: Option<Pid>) {
    let stdin = sys::stdin();
    if let (Some(from), Some(to)) = (from, to) {
        if rustix::termios::tcgetpgrp(stdin) == Ok(from) {
            let _ = rustix::termios::tcsetpgrp(stdin, to);
        }
    }
}

/// Fork and exec PROGRAM; returns its pid. An exec failure comes back over a close-on-exec
/// pipe and is reported here; the child then exits 127 or 126, which the loop reaps.
fn spawn(args: &Args, opts: &Options, mask: SigSet, chld_ignored: bool) -> i32 {
    let setup = || crate::child::Failure { step: 0, errno: exec_child(args, opts, mask, chld_ignored) };
    let (pid, failure) = crate::child::spawn(setup, |f| exec_failure_code(f.errno)).unwrap_or_else(|e| fail("fork", e));
    // Also done in the child: whichever runs first, the group exists before we signal it.
    let _ = rustix::process::setpgid(Pid::from_raw(pid), Pid::from_raw(pid));
    if let Some(f) = failure {
        let name = args.arg(opts.program).unwrap_or(b"");
        say(b"exec %: %", &[T(name), describe(f.errno).map_or(E(f.errno), |text| T(text.as_bytes()))]);
    }
    pid
}

/// In the forked child: its own process group, the terminal, then what keel inherited, then
/// exec; returns only on failure.
fn exec_child(args: &Args, opts: &Options, mask: SigSet, chld_ignored: bool) -> Errno {
    // As tini: the child leads its own group and, if keel's group had the terminal, takes
    // it, as a shell gives it to a job; so the terminal's signals (Ctrl-C) reach the child
    // once, not keel too, and programs that check they lead their group are content. Done
    // here, not in keel, so a keel under a keel does not race its parent for the terminal.
    let keels_group = getpgrp();
    let _ = rustix::process::setpgid(None, None);
    hand_terminal(Some(keels_group), Some(getpid()));
    if chld_ignored {
        let _ = sys::set_signal_ignored(k::SIGCHLD, true);
    }
    let _ = sys::set_signal_mask_to(mask);
    exec(args, opts.program)
}

/// execvp with keel's environment: PROGRAM with a `/` as it is, else each PATH entry.
fn exec(args: &Args, first: usize) -> Errno {
    let (argv, envp) = (sys::argv_from(args, first), sys::envp(args));
    let name = args.arg(first).unwrap_or(b"");
    if name.is_empty() {
        return Errno::NOENT;
    }
    let mut buf = [0u8; PATH_MAX];
    if name.contains(&b'/') {
        return crate::file::c_path(&[name], &mut buf).map_or(Errno::NAMETOOLONG, |p| sys::execve(p, argv, envp));
    }
    let path = args.env().find_map(|v| v.strip_prefix(b"PATH=")).unwrap_or(DEFAULT_PATH);
    let mut error = Errno::NOENT;
    for dir in path.split(|&b| b == b':') {
        let dir: &[u8] = if dir.is_empty() { b"." } else { dir };
        let Some(candidate) = crate::file::c_path(&[dir, b"/", name], &mut buf) else { continue };
        match sys::execve(candidate, argv, envp) {
            // Found but not runnable: remembered, as execvp does, in case a later entry runs.
            Errno::ACCESS => error = Errno::ACCESS,
            Errno::NOENT | Errno::NOTDIR => {}
            e => return e,
        }
    }
    error
}

/// The usual words for the errors exec gives.
fn describe(e: Errno) -> Option<&'static str> {
    Some(match e {
        Errno::NOENT => "No such file or directory",
        Errno::ACCESS => "Permission denied",
        Errno::NOEXEC => "Exec format error",
        Errno::NOTDIR => "Not a directory",
        Errno::NAMETOOLONG => "File name too long",
        Errno::LOOP => "Too many levels of symbolic links",
        Errno::TXTBSY => "Text file busy",
        Errno::NOMEM => "Out of memory",
        Errno::TOOBIG => "Argument list too long",
        _ => return None,
    })
}

/// A bad command line or environment: usage on stderr, exit 1 (tini's and dumb-init's code).
fn usage_error(p: Problem<'_>) -> ! {
    let flag;
    let (template, arg): (&[u8], &[u8]) = match p {
        Problem::Unknown(a) => (b"unknown option %", a),
        // The letter is one of the flags that take a value (ASCII).
        Problem::MissingValue(letter) => (b"-% needs a value", { flag = [letter]; &flag }),
        Problem::BadCode(v) => (b"bad exit code % (0-255)", v),
        Problem::BadSignal(v) => (b"bad signal %", v),
        Problem::NoProgram => (b"no PROGRAM to run", b""),
        Problem::BadEnv(v) => (b"bad % (whole seconds)", v),
    };
    say(template, &[T(arg)]);
    let mut line = Line::new();
    line.push_bytes(USAGE.as_bytes());
    crate::log::write_console(&line.finish());
    sys::exit(1)
}

fn fail(what: &str, e: Errno) -> ! {
    say(b"%: %", &[T(what.as_bytes()), E(e)]);
    exit(1)
}

/// Exit with `code`, unless keel is the machine's own init (`init=/sbin/keel -- APP`):
/// that PID 1 must not exit (the kernel would panic), so the machine powers off instead.
fn exit(code: i32) -> ! {
    if getpid().is_init() && is_machine_init() {
        say(b"the program ended (%); powering off", &[I(code.into())]);
        rustix::fs::sync();
        crate::power::shutdown::power_off_now(crate::power::PowerCmd::PowerOff)
    }
    sys::exit(code)
}

/// One `keel: ` line on stderr (no timestamp: these share the terminal with PROGRAM).
/// `template` filled as `log::say` fills it.
fn say(template: &[u8], args: &[Part]) {
    let mut line = Line::new();
    line.push_bytes(b"keel: ");
    crate::log::say::fill(&mut line, template, args);
    crate::log::write_console(&line.finish());
}

fn write_stdout(bytes: &[u8]) {
    crate::log::write_all(sys::stdout(), bytes)
}
