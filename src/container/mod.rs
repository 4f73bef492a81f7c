//! Container mode, `keel [FLAGS] [--] PROGRAM [ARGS...]`: a drop-in for tini and catatonit.
//! PROGRAM runs as the one child (PATH searched like execvp, keel's environment, stdio, signal
//! mask and ignored signals); every catchable signal keel gets is forwarded to it (or to its
//! process group with -g); every orphan is reaped (keel is a child subreaper when not PID 1).
//! When the child exits, the orphans left get SIGTERM, `KEEL_GRACE` seconds, then SIGKILL;
//! keel then exits with the child's code (128+N if signal N killed it; 127/126 if it could
//! not be run). The parsing and the exit sequence are pure; `rt` does the system calls.

use crate::clock::Instant;
use crate::config::cmdline::parse_u32;
use crate::reaper::ExitStatus;
use crate::escalate::KILL_WAIT_MS;
use crate::sys::SigSet;
use linux_raw_sys::general as k;
use rustix::io::Errno;

/// Seconds orphans get between SIGTERM and SIGKILL once the child has exited (`KEEL_GRACE`).
pub const DEFAULT_GRACE_SECS: u32 = 5;

/// Signals keel must not forward: uncatchable, or sent by the kernel because keel itself
/// faulted, SIGCHLD (keel's own, for reaping), the terminal stops (left as inherited), and
/// 32/33, which libcs keep for themselves.
const NOT_FORWARDED: SigSet = SigSet(0)
    .with(k::SIGKILL)
    .with(k::SIGSTOP)
    .with(k::SIGFPE)
    .with(k::SIGILL)
    .with(k::SIGSEGV)
    .with(k::SIGBUS)
    .with(k::SIGABRT)
    .with(k::SIGTRAP)
    .with(k::SIGSYS)
    .with(k::SIGCHLD)
    .with(k::SIGTTIN)
    .with(k::SIGTTOU)
    .with(32)
    .with(33);

/// Every signal that goes on to the child.
pub const FORWARDED: SigSet = SigSet(!NOT_FORWARDED.0);

/// What keel blocks and reads from its signalfd.
pub const BLOCKED: SigSet = FORWARDED.with(k::SIGCHLD);

/// `-e CODE`: exit codes that become 0, one bit each.
#[derive(Copy, Clone, Default, Debug, PartialEq, Eq)]
pub struct ExitCodes([u64; 4]);

impl ExitCodes {
    pub fn insert(&mut self, code: u8) {
        self.0[code as usize / 64] |= 1 << (code % 64);
    }
    pub fn contains(&self, code: i32) -> bool {
        (0..256).contains(&code) && self.0[code as usize / 64] & 1 << (code % 64) != 0
    }
}

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Options {
    /// Where PROGRAM is in argv.
    pub program: usize,
    /// -g: signals go to the child's process group (the child then leads its own).
    pub group: bool,
    /// -v: log each reaped process.
    pub verbose: bool,
    /// -p SIGNAL: what keel gets when its parent dies.
    pub parent_death_signal: Option<u32>,
    pub success: ExitCodes,
    pub grace_secs: u32,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Parsed {
    Run(Options),
    Help,
    Version,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Problem<'a> {
    Unknown(&'a [u8]),
    MissingValue(u8),
    BadCode(&'a [u8]),
    BadSignal(&'a [u8]),
    NoProgram,
    BadEnv(&'a [u8]),
}

/// Parse argv[1..]: flags (grouped like `-gv`, values attached or next: `-e3`, `-e 3`), then
/// `--` or PROGRAM. Everything from PROGRAM on belongs to PROGRAM.
/// (`dyn`: one copy in the binary for its two callers, `wanted` and `run`.)
pub fn parse<'a>(words: &mut dyn Iterator<Item = &'a [u8]>) -> Result<Parsed, Problem<'a>> {
    let mut o = Options {
        program: 0,
        group: false,
        verbose: false,
        parent_death_signal: None,
        success: ExitCodes::default(),
        grace_secs: DEFAULT_GRACE_SECS,
    };
    let mut index = 0; // argv index of `word`
    while let Some(word) = words.next() {
        index += 1;
        match word {
            b"--" => {
                words.next().ok_or(Problem::NoProgram)?;
                o.program = index + 1;
                return Ok(Parsed::Run(o));
            }
            b"--help" | b"-h" => return Ok(Parsed::Help),
            b"--version" => return Ok(Parsed::Version),
            _ => {}
        }
        let Some(letters) = word.strip_prefix(b"-") else {
            o.program = index;
            return Ok(Parsed::Run(o));
        };
        if letters.is_empty() {
            return Err(Problem::Unknown(word));
        }
        for (i, &letter) in letters.iter().enumerate() {
            match letter {
                b's' => {} // tini's "subreaper": keel always is one
                b'g' => o.group = true,
                b'v' => o.verbose = true,
                b'e' | b'p' => {
                    let value = match &letters[i + 1..] {
                        [] => {
                            index += 1;
                            words.next().ok_or(Problem::MissingValue(letter))?
                        }
                        attached => attached,
                    };
                    if letter == b'e' {
                        let code = parse_u32(value).filter(|&c| c <= 255).ok_or(Problem::BadCode(value))?;
                        o.success.insert(code as u8);
                    } else {
                        o.parent_death_signal = Some(signal_number(value).ok_or(Problem::BadSignal(value))?);
                    }
                    break;
                }
                _ => return Err(Problem::Unknown(word)),
            }
        }
    }
    Err(Problem::NoProgram)
}

/// One `KEY=value` of keel's environment: `KEEL_KILL_PROCESS_GROUP` (set, not empty or 0)
/// is -g; `KEEL_GRACE=SECONDS` sets the orphans' grace.
pub fn apply_env<'a>(o: &mut Options, var: &'a [u8]) -> Result<(), Problem<'a>> {
    if let Some(value) = var.strip_prefix(b"KEEL_KILL_PROCESS_GROUP=") {
        o.group |= !matches!(value, b"" | b"0");
    } else if let Some(value) = var.strip_prefix(b"KEEL_GRACE=") {
        o.grace_secs = parse_u32(value).ok_or(Problem::BadEnv(var))?;
    }
    Ok(())
}

/// Signal names 1..=31 in order (the numbering x86_64 and aarch64 share); one string is
/// smaller than a table of slices.
const SIGNAL_NAMES: &[u8] = b"HUP INT QUIT ILL TRAP ABRT BUS FPE KILL USR1 SEGV USR2 PIPE ALRM TERM STKFLT \
    CHLD CONT STOP TSTP TTIN TTOU URG XCPU XFSZ VTALRM PROF WINCH IO PWR SYS";

/// `SIGKILL`, `KILL` or `9` (standard signals only: what PR_SET_PDEATHSIG users pass).
pub fn signal_number(s: &[u8]) -> Option<u32> {
    if let Some(n) = parse_u32(s) {
        return (1..=31).contains(&n).then_some(n);
    }
    let name = s.strip_prefix(b"SIG").unwrap_or(s);
    let mut names = SIGNAL_NAMES.split(|&b| b == b' ').filter(|n| !n.is_empty());
    names.position(|known| known == name).map(|i| i as u32 + 1)
}

/// Whether argv (after argv[0]) asks for container mode: any argument but a `keel.*` word.
/// The kernel hands the machine's init every command-line word it does not know (`single`,
/// `3`): that must not end the machine, so there only a valid command line whose PROGRAM is
/// a path counts (`init=/sbin/keel -- /bin/app`).
pub fn wanted<'a>(words: impl Iterator<Item = &'a [u8]> + Clone, machine_init: impl FnOnce() -> bool) -> bool {
    match words.clone().next() {
        None => false,
        Some(first) if first.starts_with(b"keel.") => false,
        Some(_) if !machine_init() => true,
        Some(_) => match parse(&mut words.clone()) {
            Ok(Parsed::Run(o)) => words.clone().nth(o.program - 1).is_some_and(|p| p.contains(&b'/')),
            _ => false,
        },
    }
}

/// The code keel exits with for the child's end: its exit code, or 128+N for signal N;
/// then `-e` maps to 0.
pub fn exit_code(status: ExitStatus, success: &ExitCodes) -> i32 {
    let code = match status {
        ExitStatus::Exited(code) => code & 0xff,
        ExitStatus::Signaled(signo) => 128 + signo,
    };
    if success.contains(code) {
        0
    } else {
        code
    }
}

/// The exit code for a failed exec, as shells have it: 127 not found, 126 found but not runnable.
pub fn exec_failure_code(e: Errno) -> i32 {
    if e == Errno::NOENT || e == Errno::NOTDIR {
        127
    } else {
        126
    }
}

/// `/proc/PID/stat` → the parent pid. The name in parentheses may hold spaces and `)`, so
/// the fields are counted from the last `)`.
pub fn parse_ppid(stat: &[u8]) -> Option<i32> {
    let rest = &stat[memchr::memrchr(b')', stat)? + 1..];
    let mut fields = rest.split(|&b| b == b' ').filter(|f| !f.is_empty());
    fields.next()?; // state
    parse_u32(fields.next()?).map(|p| p as i32)
}

/// The end of the child, in order: it exits → the others get SIGTERM (Grace) → at the
/// deadline SIGKILL (Kill) → exit once no child is left or after KILL_WAIT_MS.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Phase {
    Running,
    Grace { until: Instant },
    Kill { until: Instant },
}

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Action {
    Wait,
    /// SIGTERM (and SIGCONT) to every process left.
    TermRest,
    /// SIGKILL to every process left; repeated on each wake, for any forked meanwhile.
    KillRest,
    Exit(i32),
}

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Lifecycle {
    pub phase: Phase,
    /// The child's exit code, once it is reaped.
    pub code: Option<i32>,
    grace_ms: u64,
}

impl Lifecycle {
    pub fn new(grace_secs: u32) -> Lifecycle {
        Lifecycle { phase: Phase::Running, code: None, grace_ms: grace_secs as u64 * 1000 }
    }

    /// Only the first exit counts: the child's pid may be reused by a later orphan.
    pub fn child_exited(&mut self, code: i32) {
        self.code.get_or_insert(code);
    }

    /// One step per loop pass, after reaping.
    pub fn step(&mut self, now: Instant, children_left: bool) -> Action {
        let Some(code) = self.code else { return Action::Wait };
        let (phase, action) = match self.phase {
            phase if !children_left => (phase, Action::Exit(code)),
            Phase::Running => (Phase::Grace { until: now.plus_millis(self.grace_ms) }, Action::TermRest),
            Phase::Grace { until } if now >= until => {
                (Phase::Kill { until: now.plus_millis(KILL_WAIT_MS) }, Action::KillRest)
            }
            // Past this, what is left is stuck (uninterruptible sleep): keel does not wait forever.
            Phase::Kill { until } if now >= until => (self.phase, Action::Exit(code)),
            Phase::Kill { .. } => (self.phase, Action::KillRest),
            phase => (phase, Action::Wait),
        };
        self.phase = phase;
        action
    }

    pub fn poll_at(&self) -> Option<Instant> {
        match self.phase {
            Phase::Running => None,
            Phase::Grace { until } | Phase::Kill { until } => Some(until),
        }
    }
}

#[cfg(all(not(test), feature = "rt"))]
pub use rt::{is_machine_init, run};

/// The system side: setup, spawn, the loop.
#[cfg(all(not(test), feature = "rt"))]
mod rt {
    use super::*;
    use crate::event::{EventLoop, Source, EVENTS_PER_WAIT};
    use crate::log::{Bytes, Line};
    use crate::power::signals::Signals;
    use crate::sys::{self, Args};
    use rustix::fd::AsFd;
    use rustix::process::{getpid, Pid};

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
                say(|l| ufmt::uwrite!(l, "warning: cannot become a subreaper: {}", crate::log::Errno(e)).unwrap_or(()));
            }
        }
        // SIG_IGN would let the kernel reap the child before we learn its code; the child gets
        // it back. Signals are blocked before the fork so none is lost on the way.
        let chld_ignored = sys::set_signal_ignored(k::SIGCHLD, false).unwrap_or(false);
        let mask = sys::block_signals(BLOCKED).unwrap_or_else(|e| fail("sigprocmask", e));
        let signals = Signals { fd: sys::signalfd(BLOCKED).unwrap_or_else(|e| fail("signalfd", e)) };
        let events = EventLoop::new().unwrap_or_else(|e| fail("epoll", e));
        events.watch(&signals.fd, Source::Signals).unwrap_or_else(|e| fail("epoll_ctl", e));
        let child = spawn(&args, &opts, mask, chld_ignored);
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
                        say(|l| ufmt::uwrite!(l, "reaped pid {} ({})", pid, status).unwrap_or(()));
                    }
                    if pid == child {
                        exited = Some(exit_code(status, &success));
                    }
                });
                if let Some(code) = exited {
                    self.life.child_exited(code);
                }
                match self.life.step(Instant::now(), left) {
                    Action::Wait => {}
                    // SIGCONT: a stopped process would not act on SIGTERM.
                    Action::TermRest => self.signal_rest(&[k::SIGTERM, k::SIGCONT]),
                    Action::KillRest => self.signal_rest(&[k::SIGKILL]),
                    Action::Exit(code) => exit(code),
                }
                self.events.arm(self.life.poll_at()).unwrap_or_else(|e| fail("timerfd", e));
                self.events.wait(&mut ready).unwrap_or_else(|e| fail("epoll_wait", e));
                if ready.contains(&Source::Signals) {
                    self.forward();
                }
            }
        }

        /// Pass on every pending signal while the child lives. A signal keel sent itself
        /// (SIGPIPE from writing to a closed stderr) is not the child's business.
        fn forward(&mut self) {
            while let Some(signal) = self.signals.next() {
                if signal.signo == k::SIGCHLD || self.life.code.is_some() || signal.sender == self.me {
                    continue;
                }
                let _ = sys::kill(self.target, signal.signo);
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

    /// Fork and exec PROGRAM; returns its pid. An exec failure comes back over a close-on-exec
    /// pipe and is reported here; the child then exits 127 or 126, which the loop reaps.
    fn spawn(args: &Args, opts: &Options, mask: SigSet, chld_ignored: bool) -> i32 {
        let setup = || crate::child::Failure { step: 0, errno: exec_child(args, opts, mask, chld_ignored) };
        let (pid, failure) = crate::child::spawn(setup, |f| exec_failure_code(f.errno)).unwrap_or_else(|e| fail("fork", e));
        if opts.group {
            // Also done in the child: whichever runs first, the group exists before we signal it.
            let _ = rustix::process::setpgid(Pid::from_raw(pid), Pid::from_raw(pid));
        }
        if let Some(f) = failure {
            let name = args.arg(opts.program).unwrap_or(b"");
            say(|l| {
                let _ = ufmt::uwrite!(l, "exec {}: ", Bytes(name));
                match describe(f.errno) {
                    Some(text) => l.push_bytes(text.as_bytes()),
                    None => ufmt::uwrite!(l, "{}", crate::log::Errno(f.errno)).unwrap_or(()),
                }
            });
        }
        pid
    }

    /// In the forked child: restore what keel inherited, then exec; returns only on failure.
    fn exec_child(args: &Args, opts: &Options, mask: SigSet, chld_ignored: bool) -> Errno {
        if opts.group {
            // Own group; and the terminal, as a shell gives it to a job, if keel's group had
            // it. SIGTTOU is blocked (until the mask is restored) so a background group may.
            let stdin = sys::stdin();
            let keels_group = rustix::process::getpgrp().as_raw_nonzero().get();
            let had_terminal = sys::terminal_group(stdin, None) == Ok(keels_group);
            let _ = rustix::process::setpgid(None, None);
            if had_terminal {
                let _ = sys::block_signals(SigSet(0).with(k::SIGTTOU));
                let _ = sys::terminal_group(stdin, Some(getpid().as_raw_nonzero().get()));
            }
        }
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

    /// Every process whose parent chain reaches `me`, found through /proc/PID/stat (the
    /// per-task `children` files need CONFIG_PROC_CHILDREN, which not every kernel has).
    fn for_each_descendant(me: i32, mut f: impl FnMut(i32)) {
        use rustix::fs::{open, Mode, OFlags, RawDir};
        // A /proc of another PID namespace would name other processes by our pids.
        if stat_of(None).and_then(|s| parse_u32(s.split(|&b| b == b' ').next()?)) != Some(me as u32) {
            return;
        }
        let Ok(dir) = open(c"/proc", OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty()) else {
            return;
        };
        let mut buf = [core::mem::MaybeUninit::uninit(); 2048];
        let mut entries = RawDir::new(dir.as_fd(), &mut buf);
        while let Some(Ok(entry)) = entries.next() {
            let Some(pid) = parse_u32(entry.file_name().to_bytes()) else { continue };
            let mut at = pid as i32;
            // Bounded: a chain read while processes exit and are reparented may not end at 1.
            for _ in 0..256 {
                match stat_of(Some(at)).as_deref().and_then(parse_ppid) {
                    Some(parent) if parent == me => {
                        f(pid as i32);
                        break;
                    }
                    Some(parent) if parent > 1 => at = parent,
                    _ => break,
                }
            }
        }
    }

    /// The start of /proc/PID/stat (or /proc/self/stat): enough for pid, name, state, ppid.
    fn stat_of(pid: Option<i32>) -> Option<heapless::Vec<u8, 256>> {
        let mut path = Line::new();
        match pid {
            Some(pid) => ufmt::uwrite!(path, "/proc/{}/stat\0", pid).ok()?,
            None => path.push_bytes(b"/proc/self/stat\0"),
        }
        let path = core::ffi::CStr::from_bytes_with_nul(path.as_bytes()).ok()?;
        let mut stat = heapless::Vec::<u8, 256>::new();
        stat.resize_default(256).ok()?;
        let len = crate::file::read_into(path, &mut stat).ok()?;
        stat.truncate(len);
        Some(stat)
    }

    fn usage_error(p: Problem<'_>) -> ! {
        say(|l| match p {
            Problem::Unknown(a) => ufmt::uwrite!(l, "unknown option {}", Bytes(a)).unwrap_or(()),
            Problem::MissingValue(flag) => ufmt::uwrite!(l, "-{} needs a value", flag as char).unwrap_or(()),
            Problem::BadCode(v) => ufmt::uwrite!(l, "bad exit code {} (0-255)", Bytes(v)).unwrap_or(()),
            Problem::BadSignal(v) => ufmt::uwrite!(l, "bad signal {}", Bytes(v)).unwrap_or(()),
            Problem::NoProgram => l.push_bytes(b"no PROGRAM to run"),
            Problem::BadEnv(v) => ufmt::uwrite!(l, "bad {} (whole seconds)", Bytes(v)).unwrap_or(()),
        });
        let mut line = Line::new();
        line.push_bytes(USAGE.as_bytes());
        crate::log::write_console(&line.finish());
        sys::exit(2)
    }

    fn fail(what: &str, e: Errno) -> ! {
        say(|l| ufmt::uwrite!(l, "{}: {}", what, crate::log::Errno(e)).unwrap_or(()));
        exit(1)
    }

    /// Exit with `code`, unless keel is the machine's own init (`init=/sbin/keel -- APP`):
    /// that PID 1 must not exit (the kernel would panic), so the machine powers off instead.
    fn exit(code: i32) -> ! {
        if getpid().is_init() && is_machine_init() {
            say(|l| ufmt::uwrite!(l, "the program ended ({}); powering off", code).unwrap_or(()));
            rustix::fs::sync();
            crate::power::shutdown::power_off_now(crate::power::PowerCmd::PowerOff)
        }
        sys::exit(code)
    }

    /// One `keel: ` line on stderr (no timestamp: these share the terminal with PROGRAM).
    fn say(body: impl FnOnce(&mut Line)) {
        let mut line = Line::new();
        line.push_bytes(b"keel: ");
        body(&mut line);
        crate::log::write_console(&line.finish());
    }

    fn write_stdout(bytes: &[u8]) {
        crate::log::write_all(sys::stdout(), bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(args: &[&'static str]) -> Result<Parsed, Problem<'static>> {
        parse(&mut args.iter().map(|a| a.as_bytes()))
    }

    fn opts(args: &[&'static str]) -> Options {
        match run(args) {
            Ok(Parsed::Run(o)) => o,
            other => panic!("{args:?}: {other:?}"),
        }
    }

    #[test]
    fn program_index_after_flags_and_dashes() {
        assert_eq!(opts(&["true"]).program, 1);
        assert_eq!(opts(&["--", "true", "-x"]).program, 2);
        assert_eq!(opts(&["-g", "--", "true"]).program, 3);
        assert_eq!(opts(&["-e", "3", "sh", "-c", "x"]).program, 3);
        assert_eq!(opts(&["-e3", "-v", "--", "-dashed-prog"]).program, 4);
        // Flags after PROGRAM are PROGRAM's.
        let o = opts(&["sh", "-g"]);
        assert!(!o.group);
    }

    #[test]
    fn flags() {
        let o = opts(&["-gvs", "-e", "3", "-e143", "-p", "SIGKILL", "--", "x"]);
        assert!(o.group && o.verbose);
        assert!(o.success.contains(3) && o.success.contains(143) && !o.success.contains(0));
        assert_eq!(o.parent_death_signal, Some(9));
        assert_eq!(opts(&["-pTERM", "x"]).parent_death_signal, Some(15));
        assert_eq!(opts(&["-p", "1", "x"]).parent_death_signal, Some(1));
        assert_eq!(opts(&["-e", "255", "x"]).success.contains(255), true);
        let defaults = Options {
            program: 1,
            group: false,
            verbose: false,
            parent_death_signal: None,
            success: ExitCodes::default(),
            grace_secs: DEFAULT_GRACE_SECS,
        };
        assert_eq!(opts(&["x"]), defaults);
        assert_eq!(run(&["--help", "x"]), Ok(Parsed::Help));
        assert_eq!(run(&["-h"]), Ok(Parsed::Help));
        assert_eq!(run(&["-g", "--version"]), Ok(Parsed::Version));
    }

    #[test]
    fn bad_command_lines() {
        assert_eq!(run(&[]), Err(Problem::NoProgram));
        assert_eq!(run(&["--"]), Err(Problem::NoProgram));
        assert_eq!(run(&["-g"]), Err(Problem::NoProgram));
        assert_eq!(run(&["-x", "true"]), Err(Problem::Unknown(b"-x")));
        assert_eq!(run(&["-gx", "true"]), Err(Problem::Unknown(b"-gx")));
        assert_eq!(run(&["--frob", "true"]), Err(Problem::Unknown(b"--frob")));
        assert_eq!(run(&["-", "true"]), Err(Problem::Unknown(b"-")));
        assert_eq!(run(&["-e"]), Err(Problem::MissingValue(b'e')));
        assert_eq!(run(&["-e", "256", "x"]), Err(Problem::BadCode(b"256")));
        assert_eq!(run(&["-e", "-1", "x"]), Err(Problem::BadCode(b"-1")));
        assert_eq!(run(&["-p", "SIGNOPE", "x"]), Err(Problem::BadSignal(b"SIGNOPE")));
        assert_eq!(run(&["-p", "0", "x"]), Err(Problem::BadSignal(b"0")));
        assert_eq!(run(&["-p", "40", "x"]), Err(Problem::BadSignal(b"40")));
    }

    #[test]
    fn environment() {
        let mut o = opts(&["x"]);
        apply_env(&mut o, b"KEEL_KILL_PROCESS_GROUP=0").unwrap();
        apply_env(&mut o, b"KEEL_GRACE=2").unwrap();
        apply_env(&mut o, b"PATH=/bin").unwrap();
        assert!(!o.group);
        assert_eq!(o.grace_secs, 2);
        apply_env(&mut o, b"KEEL_KILL_PROCESS_GROUP=1").unwrap();
        assert!(o.group);
        assert_eq!(apply_env(&mut o, b"KEEL_GRACE=soon"), Err(Problem::BadEnv(b"KEEL_GRACE=soon")));
    }

    #[test]
    fn signal_names() {
        let known = [("SIGHUP", 1), ("INT", 2), ("SIGKILL", 9), ("USR1", 10), ("SIGTERM", 15), ("SIGCHLD", 17)];
        for (name, n) in known.into_iter().chain([("SIGWINCH", 28), ("SYS", 31), ("31", 31)]) {
            assert_eq!(signal_number(name.as_bytes()), Some(n), "{name}");
        }
        for name in ["", "SIG", "sigkill", "32", "SIGRTMIN", "KILLX"] {
            assert_eq!(signal_number(name.as_bytes()), None, "{name}");
        }
        // Whatever -p accepts, rustix can pass on.
        for n in 1..=31 {
            assert!(rustix::process::Signal::from_named_raw(n).is_some(), "signal {n}");
        }
    }

    #[test]
    fn the_forwarded_set() {
        let asked = [k::SIGHUP, k::SIGINT, k::SIGQUIT, k::SIGUSR1, k::SIGUSR2, k::SIGPIPE, k::SIGALRM, k::SIGTERM];
        for sig in asked.into_iter().chain([k::SIGCONT, k::SIGTSTP, k::SIGURG, k::SIGWINCH, k::SIGPWR, 34, 40, 64]) {
            assert!(FORWARDED.contains(sig), "signal {sig}");
        }
        let faults = [k::SIGFPE, k::SIGILL, k::SIGSEGV, k::SIGBUS, k::SIGABRT, k::SIGTRAP, k::SIGSYS];
        for sig in faults.into_iter().chain([k::SIGKILL, k::SIGSTOP, k::SIGCHLD, k::SIGTTIN, k::SIGTTOU, 32, 33]) {
            assert!(!FORWARDED.contains(sig), "signal {sig}");
        }
        assert!(BLOCKED.contains(k::SIGCHLD) && !BLOCKED.contains(k::SIGTTOU));
    }

    #[test]
    fn dispatch() {
        let w = |words: &[&'static str], machine: bool| wanted(words.iter().map(|w| w.as_bytes()), || machine);
        assert!(!w(&[], false));
        assert!(w(&["--", "true"], false));
        assert!(w(&["true"], false));
        assert!(w(&["-x"], false), "bad flags still get container mode's usage");
        assert!(!w(&["keel.shutdown_timeout=3"], false));
        assert!(!w(&["keel.x", "keel.y"], true));
        // The machine's init: only a valid command line with a path.
        assert!(!w(&["single"], true));
        assert!(!w(&["3"], true));
        assert!(!w(&["-b"], true));
        assert!(!w(&["--", "sh"], true));
        assert!(w(&["/bin/sh", "-c", "x"], true));
        assert!(w(&["-g", "--", "/app/run"], true));
    }

    #[test]
    fn exit_codes() {
        let mut success = ExitCodes::default();
        assert_eq!(exit_code(ExitStatus::Exited(3), &success), 3);
        assert_eq!(exit_code(ExitStatus::Signaled(15), &success), 143);
        success.insert(143);
        success.insert(3);
        assert_eq!(exit_code(ExitStatus::Exited(3), &success), 0);
        assert_eq!(exit_code(ExitStatus::Signaled(15), &success), 0);
        assert_eq!(exit_code(ExitStatus::Exited(4), &success), 4);
        assert!(!success.contains(-1) && !success.contains(256 + 3));
        assert_eq!(exec_failure_code(Errno::NOENT), 127);
        assert_eq!(exec_failure_code(Errno::NOTDIR), 127);
        assert_eq!(exec_failure_code(Errno::ACCESS), 126);
        assert_eq!(exec_failure_code(Errno::NOEXEC), 126);
    }

    #[test]
    fn paths_and_stat() {
        let mut buf = [0xa5u8; 16];
        assert_eq!(crate::file::c_path(&[b"/bin", b"/", b"sh"], &mut buf).unwrap().to_bytes(), b"/bin/sh");
        assert_eq!(crate::file::c_path(&[b"0123456789", b"/", b"abcd"], &mut buf).unwrap().to_bytes(), b"0123456789/abcd");
        assert!(crate::file::c_path(&[b"0123456789", b"/", b"abcde"], &mut buf).is_none(), "no room for the NUL");
        assert_eq!(parse_ppid(b"42 (sh) S 7 42 42 0 -1"), Some(7));
        assert_eq!(parse_ppid(b"42 (a) b) (c) R 1234 42"), Some(1234));
        assert_eq!(parse_ppid(b"42 (sh"), None);
        assert_eq!(parse_ppid(b"42 (sh) S"), None);
    }

    #[test]
    fn the_end_sequence() {
        let t = |s: u64| Instant(s * 1_000_000_000);
        let mut life = Lifecycle::new(5);
        assert_eq!(life.step(t(1), true), Action::Wait, "child running");
        assert_eq!(life.poll_at(), None, "no wakeups while the child runs");
        life.child_exited(3);
        life.child_exited(9); // a later orphan with the same pid
        assert_eq!(life.step(t(2), true), Action::TermRest);
        assert_eq!(life.poll_at(), Some(t(7)));
        assert_eq!(life.step(t(3), true), Action::Wait);
        assert_eq!(life.step(t(7), true), Action::KillRest);
        assert_eq!(life.step(t(7), true), Action::KillRest, "again on each wake");
        assert_eq!(life.step(t(8), true), Action::Exit(3), "after KILL_WAIT_MS keel gives up");

        let mut life = Lifecycle::new(5);
        life.child_exited(0);
        assert_eq!(life.step(t(1), false), Action::Exit(0), "no orphans: exit at once");

        let mut life = Lifecycle::new(5);
        life.child_exited(1);
        assert_eq!(life.step(t(1), true), Action::TermRest);
        assert_eq!(life.step(t(2), false), Action::Exit(1), "orphans gone within the grace");

        let mut life = Lifecycle::new(0);
        life.child_exited(1);
        assert_eq!(life.step(t(1), true), Action::TermRest);
        assert_eq!(life.step(t(1), true), Action::KillRest, "KEEL_GRACE=0: SIGKILL next");
    }
}
