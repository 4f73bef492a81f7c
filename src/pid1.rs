//! PID 1 mode: set up, then the one loop, forever. Data flows one way:
//! event (event.rs) → this loop → state machine (shutdown.rs; services later) → action.

use crate::clock::Instant;
use crate::boot::{self, Boot};
use crate::cmdline::Config;
use crate::event::{EventLoop, Source, EVENTS_PER_WAIT};
use crate::log::Errno;
use crate::power::PowerCmd;
use crate::shutdown::{self, Action, Shutdown};
use crate::signals::{request_for, Request, Signals};
use crate::sys::{Args, SignalInfo};
use crate::{fatal, info, reaper};

pub struct Init {
    boot: Boot,
    events: EventLoop,
    signals: Signals,
    shutdown: Option<Shutdown>,
}

pub fn run(args: Args) -> ! {
    fatal::enter_pid1(Config::default().panic);
    info!("version {} starting as PID 1", env!("CARGO_PKG_VERSION"));
    // First, so that no request is lost while booting: blocked signals wait in the signalfd.
    let signals = Signals::open().unwrap_or_else(|e| fatal!("signalfd: {}", Errno(e)));
    // Ctrl-alt-del becomes SIGINT to us instead of an instant reboot. Only the machine's
    // init may do this: in a child PID namespace the kernel answers EINVAL.
    let owns_machine = match rustix::system::reboot(rustix::system::RebootCommand::CadOff) {
        Ok(()) => true,
        Err(e) => {
            info!("not the machine's init ({}): running a PID namespace", Errno(e));
            false
        }
    };
    let mut boot = Boot { args, config: Config::default(), owns_machine, acpi: None };
    boot::run(&mut boot);
    let events = EventLoop::new().unwrap_or_else(|e| fatal!("epoll: {}", Errno(e)));
    if let Err(e) = events.watch(&signals.fd, Source::Signals) {
        fatal!("epoll_ctl(signalfd): {}", Errno(e));
    }
    let mut init = Init { boot, events, signals, shutdown: None };
    info!("ready");
    if cfg!(feature = "test-hooks") && init.boot.config.test_panic {
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
            self.shutdown = Some(Shutdown::begin(cmd, Instant::now(), self.boot.config.shutdown_timeout_secs));
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
                Action::Finish => shutdown::finish(sd, self.boot.owns_machine),
                Action::Wait => return,
            }
            children_left = reap();
        }
    }
}

fn reap() -> bool {
    reaper::reap_all(|pid, status| info!("reaped pid {} ({})", pid, status))
}
