//! PID 1 mode: set up, then the one loop, forever. Data flows one way:
//! event (event.rs) → this loop → state machine (shutdown.rs; services later) → action.

use crate::clock::Instant;
use crate::cmdline::{self, Config, Problem};
use crate::event::{EventLoop, Source, EVENTS_PER_WAIT};
use crate::log::{Bytes, Errno};
use crate::power::PowerCmd;
use crate::shutdown::{self, Action, Shutdown};
use crate::signals::{request_for, Request, Signals};
use crate::sys::{Args, SignalInfo};
use crate::{fatal, info, reaper};

pub struct Init {
    config: Config,
    events: EventLoop,
    signals: Signals,
    /// Whether keel runs the machine (and so its mounts), or only a PID namespace.
    owns_mounts: bool,
    shutdown: Option<Shutdown>,
}

pub fn run(args: Args) -> ! {
    fatal::enter_pid1(Config::default().panic);
    ensure_stdio();
    info!("version {} starting as PID 1", env!("CARGO_PKG_VERSION"));
    let config = load_config(&args);
    fatal::set_policy(config.panic);
    // Ctrl-alt-del becomes SIGINT to us instead of an instant reboot. Only the machine's
    // init may do this: in a child PID namespace the kernel answers EINVAL.
    let owns_mounts = match rustix::system::reboot(rustix::system::RebootCommand::CadOff) {
        Ok(()) => true,
        Err(e) => {
            info!("not the machine's init ({}): reboot(2) will end this PID namespace", Errno(e));
            false
        }
    };
    let signals = Signals::open().unwrap_or_else(|e| fatal!("signalfd: {}", Errno(e)));
    let events = EventLoop::new().unwrap_or_else(|e| fatal!("epoll: {}", Errno(e)));
    if let Err(e) = events.watch(&signals.fd, Source::Signals) {
        fatal!("epoll_ctl(signalfd): {}", Errno(e));
    }
    let mut init = Init { config, events, signals, owns_mounts, shutdown: None };
    info!("ready");
    if cfg!(feature = "test-hooks") && init.config.test_panic {
        panic!("keel.test_panic");
    }
    init.run()
}

impl Init {
    fn run(&mut self) -> ! {
        let mut ready = heapless::Vec::<Source, EVENTS_PER_WAIT>::new();
        loop {
            // A PID 1 that cannot wait for events cannot do its job: the panic policy decides.
            if let Err(e) = self.events.arm(self.poll_at()) {
                fatal!("timerfd: {}", Errno(e));
            }
            if let Err(e) = self.events.wait(&mut ready) {
                fatal!("epoll_wait: {}", Errno(e));
            }
            for &source in ready.iter() {
                match source {
                    Source::Signals => self.on_signals(),
                    // Deadlines are checked by advance() on every pass.
                    Source::Timer => {}
                }
            }
            self.advance();
        }
    }

    /// The nearest deadline any state machine has.
    fn poll_at(&self) -> Option<Instant> {
        self.shutdown.as_ref().and_then(Shutdown::poll_at)
    }

    fn on_signals(&mut self) {
        while let Some(signal) = self.signals.next() {
            match request_for(signal.signo) {
                // Reaping happens on every pass of advance().
                Some(Request::Reap) => {}
                Some(Request::Power(cmd)) => self.on_power_request(cmd, signal),
                None => info!("ignoring signal {} from pid {}", signal.signo, signal.sender),
            }
        }
    }

    fn on_power_request(&mut self, cmd: PowerCmd, by: SignalInfo) {
        let Some(sd) = self.shutdown.as_mut() else {
            info!("{} requested (signal {} from pid {})", cmd, by.signo, by.sender);
            self.shutdown = Some(Shutdown::begin(cmd, Instant::now(), self.config.shutdown_timeout_secs));
            return;
        };
        match sd.request(cmd) {
            Some(now) => info!("{} requested (signal {}) during shutdown: now {}", cmd, by.signo, now),
            None => info!("{} requested (signal {}) during {}: already under way", cmd, by.signo, sd.cmd),
        }
    }

    /// Reap, then let the state machines act on what changed.
    fn advance(&mut self) {
        let mut children_left = reap();
        let Some(sd) = self.shutdown.as_mut() else { return };
        loop {
            match sd.step(Instant::now(), children_left) {
                Action::TermAll => shutdown::term_all(),
                Action::KillAll => shutdown::kill_all(),
                Action::Finish => shutdown::finish(sd, self.owns_mounts),
                Action::Wait => return,
            }
            children_left = reap();
        }
    }
}

fn reap() -> bool {
    reaper::reap_all(|pid, status| info!("reaped pid {} ({})", pid, status))
}

/// The kernel command line, then argv and envp (where the kernel passes words it does
/// not know, and where tests in a PID namespace pass theirs).
fn load_config(args: &Args) -> Config {
    let mut config = Config::default();
    let mut buf = [0u8; 4096];
    let len = match crate::file::read_into(c"/proc/cmdline", &mut buf) {
        Ok(len) => len,
        Err(e) => {
            info!("cannot read /proc/cmdline ({}): using defaults", Errno(e));
            0
        }
    };
    let mut apply = |word: &[u8]| match config.apply(word) {
        Ok(()) => {}
        Err(Problem::UnknownKey(key)) => info!("warning: unknown key {} ignored", Bytes(key)),
        Err(Problem::BadValue { key, value, expected }) => {
            info!("warning: {}={} is not {}; ignored", Bytes(key), Bytes(value), expected)
        }
    };
    cmdline::words(&buf[..len]).for_each(&mut apply);
    (1..args.len()).filter_map(|i| args.arg(i)).for_each(&mut apply);
    args.env().for_each(&mut apply);
    config
}

/// The kernel opens /dev/console as fds 0-2 for init, unless the initramfs lacks the node:
/// then keel tries itself, so its messages go somewhere.
fn ensure_stdio() {
    use rustix::fs::{open, Mode, OFlags};
    if rustix::io::fcntl_getfd(crate::sys::stderr()).is_ok() {
        return;
    }
    if let Ok(console) = open(c"/dev/console", OFlags::RDWR | OFlags::NOCTTY, Mode::empty()) {
        let _ = rustix::stdio::dup2_stdin(&console);
        let _ = rustix::stdio::dup2_stdout(&console);
        let _ = rustix::stdio::dup2_stderr(&console);
    }
}
