//! PID 1 mode: set up, then the one loop, forever. Data flows one way:
//! event (event.rs) → this loop → state machine (shutdown.rs, services/supervisor.rs,
//! debug/) → action.

use crate::power::evdev::PowerKeys;
use crate::boot::{self, Boot};
use crate::clock::Instant;
use crate::config::cmdline::Config;
use crate::debug;
use crate::devices::hotplug;
use crate::devices::uevent::{Received, Uevent, UeventSocket, MAX_MESSAGE};
use crate::event::{EventLoop, Source, EVENTS_PER_WAIT};
use crate::log::orphans::Orphans;
use crate::log::console;
use crate::power::PowerCmd;
use crate::power::flush::{FlushChild, Megabytes};
use crate::power::shutdown::{self, Action, End, Facts, Reply, Shutdown};
use crate::power::signals::{request_for, Request, Signals};
use crate::power::watchdog::Watchdog;
use crate::root::{self, Storage};
use crate::sys::{Args, SignalInfo};
use crate::services::spec;
use crate::services::supervisor::{self, Control, Supervisor};
use crate::log::say::{die, say, Part::{E, I, N, T}};
use crate::{fatal, info, reaper};

pub struct Init {
    boot: Boot,
    events: EventLoop,
    signals: Signals,
    services: Supervisor,
    debug: debug::Server,
    shutdown: Option<Shutdown>,
    /// The flush child, once the power sequence has started it.
    flush: Option<FlushChild>,
    orphans: Orphans,
    ready: Instant,
    /// The root and the mounts (src/root/): services start once it is over.
    storage: Storage,
    /// The kernel's uevents, while something waits for devices, and for good with hotplug.
    uevents: Option<UeventSocket>,
    /// Devices that come get their modules, power keys are watched (src/devices/hotplug.rs).
    hotplug: bool,
}

pub fn run(args: Args) -> ! {
    // Before any descriptor is opened: fds 0-2 the kernel left closed get a stand-in.
    let no_console = boot::reserve_stdio();
    fatal::enter_pid1(Config::default().panic);
    // From the first line on, the console never blocks PID 1.
    console::take_over();
    say(concat!("version ", env!("CARGO_PKG_VERSION"), " starting as PID 1").as_bytes(), &[]);
    // First, so that no request is lost while booting: blocked signals wait in the signalfd.
    let signals = Signals::open().unwrap_or_else(|e| die(b"signalfd: %", &[E(e)]));
    // Ctrl-alt-del becomes SIGINT to us instead of an instant reboot. Only the machine's
    // init may do this: in a child PID namespace the kernel answers EINVAL.
    let owns_machine = match rustix::system::reboot(rustix::system::RebootCommand::CadOff) {
        Ok(()) => true,
        Err(e) => {
            say(b"not the machine's init (%): running a PID namespace", &[E(e)]);
            false
        }
    };
    let mut boot = Boot { args, config: Config::default(), running: None, owns_machine, no_console, acpi: None, power_keys: PowerKeys::default(), watchdog: None, uevents: None };
    boot::run(&mut boot);
    let events = EventLoop::new().unwrap_or_else(|e| die(b"epoll: %", &[E(e)]));
    if let Err(e) = events.watch(crate::sys::fd::borrow(&signals.fd), Source::Signals) {
        die(b"epoll_ctl(signalfd): %", &[E(e)]);
    }
    // The power button is "re-armed" by construction: these sources stay in the loop for
    // good, so a press during shutdown is read and logged like any other request.
    if let Some(acpi) = &boot.acpi {
        if let Err(e) = events.watch(rustix::fd::AsFd::as_fd(acpi), Source::Acpi) {
            say(b"ACPI events not watched: %", &[E(e)]);
        }
    }
    for (i, fd) in boot.power_keys.fds().enumerate() {
        if let Err(e) = events.watch(fd, Source::PowerKey(i as u8)) {
            say(b"power key % not watched: %", &[N(i as u64), E(e)]);
        }
    }
    let config = &boot.config;
    let storage = Storage::new(config, boot.owns_machine, Instant::now());
    // From an initramfs with a root named, only the emergency path ever starts services.
    let rescue_only = storage.rescue_only();
    let services = Supervisor::new(spec::table(), |i, spec| {
        let off = config.services_off & 1u128.checked_shl(i as u32).unwrap_or(0) != 0;
        supervisor::enabled(spec, off, config.single) && (!rescue_only || root::rescue(i))
    });
    // Open before the first look at the devices, so none added meanwhile is missed (the
    // coldplug phase opened it before its walk, for hotplug).
    let hotplug = boot.uevents.is_some();
    let opened = boot.uevents.take().map(Ok).or_else(|| storage.wants_uevents().then(|| UeventSocket::open(1 << 20)));
    let uevents = match opened {
        Some(Ok(socket)) if events.watch(rustix::fd::AsFd::as_fd(&socket), Source::Uevent).is_ok() => Some(socket),
        Some(_) => {
            say(b"uevents: not watched: only devices there now and at the deadline are found", &[]);
            None
        }
        None => None,
    };
    let configured = boot.running.as_ref().map(|r| r.db.channels());
    let debug = debug::Server::open(boot.config.debug_channels(configured.into_iter().flatten()), &events);
    let mut init = Init {
        boot,
        events,
        signals,
        services,
        debug,
        shutdown: None,
        flush: None,
        orphans: Orphans::new(),
        ready: Instant::now(),
        storage,
        uevents,
        hotplug,
    };
    say(b"ready", &[]);
    if cfg!(feature = "test-hooks") && init.boot.config.test_panic {
        panic!("keel.test_panic");
    }
    if cfg!(feature = "test-hooks") && init.boot.config.test_hang {
        say(b"keel.test_hang: sleeping for good", &[]);
        crate::sys::unreachable_loop();
    }
    init.run()
}

impl Init {
    fn run(&mut self) -> ! {
        let mut ready = heapless::Vec::<Source, EVENTS_PER_WAIT>::new();
        // Start what can start before waiting for the first event.
        self.advance();
        loop {
            console::watch(&self.events);
            // A PID 1 that cannot wait for events cannot do its job: the panic policy decides.
            if let Err(e) = self.events.arm(self.poll_at()) {
                die(b"timerfd: %", &[E(e)]);
            }
            if let Err(e) = self.events.wait(&mut ready) {
                die(b"epoll_wait: %", &[E(e)]);
            }
            for &source in ready.iter() {
                let now = Instant::now();
                match source {
                    Source::Signals => self.on_signals(),
                    // Deadlines are checked by advance() on every pass.
                    Source::Timer => {}
                    Source::Acpi => self.on_acpi(),
                    Source::PowerKey(_) => self.on_power_keys(),
                    Source::Output(i) => self.services.on_output(i as usize),
                    Source::ReadyPipe(i) => self.services.on_ready_pipe(i as usize, now),
                    Source::Notify(i) => self.services.on_notify(i as usize, now),
                    Source::DebugListener(i) => self.debug.accept(i as usize, &self.events),
                    Source::DebugClient(i) => self.on_debug_client(i as usize),
                    Source::Kmsg(i) => self.debug.on_kmsg(i as usize, &self.services, &self.events),
                    Source::Console => console::on_writable(),
                    Source::Uevent => self.on_uevents(),
                }
            }
            self.advance();
        }
    }

    /// The nearest deadline any state machine has.
    fn poll_at(&self) -> Option<Instant> {
        let shutdown = self.shutdown.as_ref().and_then(Shutdown::poll_at);
        let watchdog = self.boot.watchdog.as_ref().and_then(Watchdog::poll_at);
        let storage = self.storage.poll_at();
        [shutdown, self.services.poll_at(), watchdog, self.orphans.due(), storage].into_iter().flatten().min()
    }

    /// Every uevent queued (a bounded number per wakeup), to whoever waits for devices:
    /// the root finder and the mounts, and hotplug (the modules of the burst's devices
    /// loaded at its end, in one pass).
    fn on_uevents(&mut self) {
        let mut batch = crate::devices::coldplug::Modaliases::new();
        if self.read_uevents(&mut batch) {
            self.storage.on_overrun();
            if self.hotplug {
                hotplug::on_overrun(&mut self.boot.power_keys, &self.events);
            }
        } else if !batch.is_empty() {
            hotplug::load_batch(&mut batch);
        }
    }

    /// `on_uevents`' reading, its 8 KiB buffer in a frame of its own (gone when the batch
    /// is loaded): whether events were lost.
    #[inline(never)]
    fn read_uevents(&mut self, batch: &mut crate::devices::coldplug::Modaliases) -> bool {
        let Some(socket) = &self.uevents else { return false };
        let mut buf = [0u8; MAX_MESSAGE];
        let mut overrun = false;
        for _ in 0..hotplug::PER_WAKEUP {
            match socket.recv(&mut buf) {
                Ok(Received::Message(bytes)) => {
                    if let Ok(event) = Uevent::from_bytes(bytes) {
                        self.storage.on_uevent(&event);
                        if self.hotplug {
                            hotplug::on_uevent(&event, batch, &mut self.boot.power_keys, &self.events);
                        }
                    }
                }
                Ok(Received::Overrun) => overrun = true,
                Ok(Received::NotFromKernel | Received::TooLong) => {}
                Ok(Received::Drained) | Err(_) => break,
            }
        }
        overrun
    }

    fn on_signals(&mut self) {
        while let Some(signal) = self.signals.next() {
            match request_for(signal.signo) {
                // Reaping happens on every pass of advance().
                Some(Request::Reap) => {}
                Some(Request::Power(cmd)) => self.on_power_request(cmd, Origin::Signal(signal)),
                None => say(b"ignoring signal % from pid %", &[N(signal.signo.into()), I(signal.sender.into())]),
            }
        }
    }

    fn on_debug_client(&mut self, slot: usize) {
        let config = self.boot.running.as_ref().map_or(&b"built-in"[..], |r| r.name());
        let mut ctx = debug::Ctx { services: &mut self.services, power: None, ready: self.ready, config };
        self.debug.on_client(slot, &mut ctx, &self.events);
        if let Some(cmd) = ctx.power {
            self.on_power_request(cmd, Origin::Debug);
        }
    }

    fn on_acpi(&mut self) {
        let mut presses = 0;
        if let Some(acpi) = &self.boot.acpi {
            acpi.read_events(|| presses += 1);
        }
        for _ in 0..presses {
            self.on_power_request(PowerCmd::PowerOff, Origin::AcpiButton);
        }
    }

    fn on_power_keys(&mut self) {
        let mut presses = 0;
        self.boot.power_keys.read_all(|| presses += 1);
        for _ in 0..presses {
            self.on_power_request(PowerCmd::PowerOff, Origin::PowerKey);
        }
    }

    fn on_power_request(&mut self, cmd: PowerCmd, by: Origin) {
        crate::log::event(keel_proto::EventKind::PowerRequest, cmd.name().as_bytes(), by.name().as_bytes());
        // Formatted once for the lines below, each one template.
        let mut origin = crate::log::Line::new();
        match by {
            Origin::Signal(s) => crate::log::say::fill(&mut origin, b"signal % from pid %", &[N(s.signo.into()), I(s.sender.into())]),
            _ => origin.push_bytes(by.name().as_bytes()),
        }
        let (cmd_name, by) = (T(cmd.name().as_bytes()), T(origin.as_bytes()));
        let Some(sd) = self.shutdown.as_mut() else {
            say(b"% requested (%)", &[cmd_name, by]);
            let config = &self.boot.config;
            let now = Instant::now();
            let sd = Shutdown::begin(cmd, now, config.shutdown_timeout_secs, config.sync_timeout_secs);
            if let Some(w) = self.boot.watchdog.as_mut() {
                w.bound_shutdown(now, sd.ends_by());
            }
            self.storage.cancel();
            if cfg!(feature = "test-hooks") && config.test_hang_shutdown {
                say(b"keel.test_hang_shutdown: sleeping for good", &[]);
                crate::sys::unreachable_loop();
            }
            self.services.begin_stop(sd.deadline);
            self.shutdown = Some(sd);
            return;
        };
        match sd.request(cmd, Instant::now()) {
            Reply::Upgraded => say(b"% requested (%) during shutdown: now %", &[cmd_name, by, T(sd.cmd.name().as_bytes())]),
            Reply::Now => say(b"% requested (%) during the flush: % now", &[cmd_name, by, T(sd.cmd.name().as_bytes())]),
            Reply::UnderWay => say(b"% requested (%) during %: already under way", &[cmd_name, by, T(sd.cmd.name().as_bytes())]),
        }
    }

    /// Reap, then let the state machines act on what changed.
    fn advance(&mut self) {
        let mut children_left = reap(&mut self.services, &mut self.flush, &mut self.storage, &mut self.orphans);
        let now = Instant::now();
        self.orphans.tick(Some(now));
        if let Some(w) = self.boot.watchdog.as_mut() {
            w.poll(now);
        }
        if self.shutdown.is_none() && self.storage.advance(now, &self.boot.args) {
            // The storage stage is over: services start, but not those it keeps down.
            for i in (0..spec::table().len()).filter(|&i| !self.storage.may_run(i)) {
                let _ = self.services.control(i, Control::Stop, now);
            }
        }
        if !self.storage.wants_uevents() && !self.hotplug {
            self.uevents = None;
        }
        if self.storage.gate_open() || self.shutdown.is_some() {
            self.services.poll(now, &self.events);
        }
        self.debug.pump(&self.services, &self.events);
        let Some(sd) = self.shutdown.as_mut() else { return };
        loop {
            // Only the flush needs /proc/meminfo and the child's steps.
            let (flushed, stepped, pending_kib) = match self.flush.as_mut() {
                Some(f) => (f.exited, f.poll(), crate::power::meminfo::read_pending_kib()),
                None => (false, false, None),
            };
            let facts = Facts { now: Instant::now(), children_left, services_down: self.services.all_down(), flushed, stepped, pending_kib };
            match sd.step(facts) {
                Action::TermAll => shutdown::term_all(),
                Action::KillAll => shutdown::kill_all(),
                Action::StartFlush => {
                    say(b"processes done after % ms; syncing", &[N(Instant::now().millis_since(sd.started))]);
                    self.flush = Some(FlushChild::start(self.boot.owns_machine));
                }
                Action::Report(kib) => info!("syncing: {} to go", Megabytes(Some(kib))),
                Action::PowerOff(end) => {
                    if let (Some(f), false) = (&self.flush, end == End::Flushed) {
                        f.abandon(end.reason(), pending_kib);
                    }
                    self.orphans.tick(None);
                    let cmd = crate::power::final_command(sd.cmd, self.boot.config.poweroff_reboots);
                    if cmd != sd.cmd {
                        say(b"poweroff as reboot (keel.poweroff=reboot)", &[]);
                    }
                    // The power sequence's end, not a fatal error's: the next boot tells them apart.
                    crate::log::pstore::mark_clean(cmd);
                    shutdown::power_off_now(cmd)
                }
                Action::Wait => return,
            }
            children_left = reap(&mut self.services, &mut self.flush, &mut self.storage, &mut self.orphans);
        }
    }

}


/// Who asked for a power command.
#[derive(Copy, Clone)]
enum Origin {
    Signal(SignalInfo),
    AcpiButton,
    PowerKey,
    Debug,
}

impl Origin {
    fn name(&self) -> &'static str {
        match self {
            Origin::Signal(_) => "signal",
            Origin::AcpiButton => "ACPI power button",
            Origin::PowerKey => "power key",
            Origin::Debug => "debug client",
        }
    }
}

/// Every exited child goes to the supervisor, or is the flush child or the root's fsck; the
/// rest are orphans (src/log/orphans.rs: every one in the journal, summarized on the console).
fn reap(services: &mut Supervisor, flush: &mut Option<FlushChild>, storage: &mut Storage, orphans: &mut Orphans) -> bool {
    reaper::reap_all(|pid, status| {
        let now = Instant::now();
        match flush {
            Some(f) if f.pid == pid => f.exited = true,
            _ if storage.on_exit(pid, status) => {}
            _ if services.on_exit(pid, status, now) => {}
            _ => orphans.reaped(pid, status, now),
        }
    })
}
