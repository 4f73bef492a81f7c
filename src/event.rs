//! The one event loop: epoll over every source, plus one timerfd armed to the nearest
//! deadline the state machines ask for. With no deadline the timer is disarmed, so an
//! idle PID 1 makes no wakeups at all.

use crate::clock::Instant;
use rustix::event::epoll;
use rustix::fd::{BorrowedFd, OwnedFd};
use rustix::io::Errno;
use crate::sys::fd::timerfd_create;
use rustix::time::{timerfd_settime, Itimerspec, TimerfdClockId, TimerfdFlags, TimerfdTimerFlags, Timespec};

/// Every input of the loop. The epoll token is `kind << 8 | index`.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Source {
    Signals,
    Timer,
    /// The ACPI event netlink socket.
    Acpi,
    /// An input device that reports KEY_POWER (index into the boot's list).
    PowerKey(u8),
    /// A service's stdout/stderr pipe (index into SERVICES).
    Output(u8),
    /// A service's notification-fd pipe.
    ReadyPipe(u8),
    /// A service's sd_notify socket.
    Notify(u8),
    /// A debug channel's listening socket (index into the server's listeners).
    DebugListener(u8),
    /// A debug client (index into the server's clients).
    DebugClient(u8),
    /// The /dev/kmsg a debug client follows (same index).
    Kmsg(u8),
    /// keel's console descriptor, watched for EPOLLOUT only while lines wait for it.
    Console,
    /// The kernel's uevent socket: devices as they come (the root finder; hotplug).
    Uevent,
}

impl Source {
    fn token(self) -> u64 {
        let (kind, index) = match self {
            Source::Signals => (0, 0),
            Source::Timer => (1, 0),
            Source::Acpi => (2, 0),
            Source::PowerKey(i) => (3, i),
            Source::Output(i) => (4, i),
            Source::ReadyPipe(i) => (5, i),
            Source::Notify(i) => (6, i),
            Source::DebugListener(i) => (7, i),
            Source::DebugClient(i) => (8, i),
            Source::Kmsg(i) => (9, i),
            Source::Console => (10, 0),
            Source::Uevent => (11, 0),
        };
        kind << 8 | index as u64
    }

    fn from_token(token: u64) -> Option<Source> {
        let index = (token & 0xff) as u8;
        Some(match token >> 8 {
            0 => Source::Signals,
            1 => Source::Timer,
            2 => Source::Acpi,
            3 => Source::PowerKey(index),
            4 => Source::Output(index),
            5 => Source::ReadyPipe(index),
            6 => Source::Notify(index),
            7 => Source::DebugListener(index),
            8 => Source::DebugClient(index),
            9 => Source::Kmsg(index),
            10 => Source::Console,
            11 => Source::Uevent,
            _ => return None,
        })
    }
}

/// Most events one wait returns; more stay pending for the next pass.
pub const EVENTS_PER_WAIT: usize = 8;

pub struct EventLoop {
    epoll: OwnedFd,
    timer: OwnedFd,
    armed: Option<Instant>,
}

impl EventLoop {
    pub fn new() -> Result<EventLoop, Errno> {
        let epoll = crate::sys::fd::epoll_create(epoll::CreateFlags::CLOEXEC)?;
        let timer = timerfd_create(TimerfdClockId::Boottime, TimerfdFlags::CLOEXEC | TimerfdFlags::NONBLOCK)?;
        let ev = EventLoop { epoll, timer, armed: None };
        ev.watch(crate::sys::fd::borrow(&ev.timer), Source::Timer)?;
        Ok(ev)
    }

    // The watch calls take a BorrowedFd (callers: sys::fd::borrow), not `impl AsFd`: one
    // copy each, and no `fd != -1` check inside for an &OwnedFd.
    pub fn watch(&self, fd: BorrowedFd<'_>, source: Source) -> Result<(), Errno> {
        epoll::add(crate::sys::fd::borrow(&self.epoll), fd, epoll::EventData::new_u64(source.token()), epoll::EventFlags::IN)
    }

    /// Watch `fd` edge-triggered: a wake only when new data arrives (for sources that are
    /// drained at the reader's pace, like /dev/kmsg for a slow client).
    pub fn watch_edge(&self, fd: BorrowedFd<'_>, source: Source) -> Result<(), Errno> {
        epoll::add(crate::sys::fd::borrow(&self.epoll), fd, epoll::EventData::new_u64(source.token()), epoll::EventFlags::IN | epoll::EventFlags::ET)
    }

    /// Watch `fd` for room to write only (level-triggered).
    pub fn watch_writable(&self, fd: BorrowedFd<'_>, source: Source) -> Result<(), Errno> {
        epoll::add(crate::sys::fd::borrow(&self.epoll), fd, epoll::EventData::new_u64(source.token()), epoll::EventFlags::OUT)
    }

    /// Change what `fd` is watched for: readable if `read`, writable if `write`.
    pub fn rewatch(&self, fd: BorrowedFd<'_>, source: Source, read: bool, write: bool) -> Result<(), Errno> {
        let mut flags = epoll::EventFlags::empty();
        flags.set(epoll::EventFlags::IN, read);
        flags.set(epoll::EventFlags::OUT, write);
        epoll::modify(crate::sys::fd::borrow(&self.epoll), fd, epoll::EventData::new_u64(source.token()), flags)
    }

    /// Wait for a device whose peer is gone (a lasting POLLHUP, level-triggered it would
    /// spin the loop) to come back: edge-triggered, readable or writable, so the loop wakes
    /// only when the device's state changes (a virtio-serial port's host side opens: the
    /// port turns writable).
    pub fn watch_comeback(&self, fd: BorrowedFd<'_>, source: Source) -> Result<(), Errno> {
        let flags = epoll::EventFlags::IN | epoll::EventFlags::OUT | epoll::EventFlags::ET;
        epoll::modify(crate::sys::fd::borrow(&self.epoll), fd, epoll::EventData::new_u64(source.token()), flags)
    }

    /// Stop watching `fd` (closing it does that too).
    pub fn unwatch(&self, fd: BorrowedFd<'_>) {
        let _ = epoll::delete(crate::sys::fd::borrow(&self.epoll), fd);
    }

    /// Arm the timer for `at` (absolute boot-clock time), or disarm it. Only touches the
    /// kernel when the deadline changes.
    pub fn arm(&mut self, at: Option<Instant>) -> Result<(), Errno> {
        if self.armed == at {
            return Ok(());
        }
        let zero = Timespec { tv_sec: 0, tv_nsec: 0 };
        // An it_value of zero disarms; a deadline of exactly 0 ns since boot is in the past anyway.
        let value = at.map_or(zero, |t| Instant(t.0.max(1)).to_timespec());
        timerfd_settime(crate::sys::fd::borrow(&self.timer), TimerfdTimerFlags::ABSTIME, &Itimerspec { it_interval: zero, it_value: value })?;
        self.armed = at;
        Ok(())
    }

    /// Block until at least one source is ready; push each ready source into `ready`.
    pub fn wait(&mut self, ready: &mut heapless::Vec<Source, EVENTS_PER_WAIT>) -> Result<(), Errno> {
        ready.clear();
        // Initialized events: rustix's split of an uninit buffer would bring core::fmt's panic.
        let mut events = [epoll::Event { flags: epoll::EventFlags::empty(), data: epoll::EventData::new_u64(0) }; EVENTS_PER_WAIT];
        let got = match epoll::wait(crate::sys::fd::borrow(&self.epoll), &mut events, None) {
            Ok(n) => events.get(..n).unwrap_or_default(),
            Err(Errno::INTR) => return Ok(()),
            Err(e) => return Err(e),
        };
        for event in got {
            let Some(source) = Source::from_token(event.data.u64()) else { continue };
            if source == Source::Timer {
                // Expired: clear the readiness; the next `arm` decides what comes next.
                let mut ticks = [0u8; 8];
                let _ = rustix::io::read(crate::sys::fd::borrow(&self.timer), &mut ticks);
                self.armed = None;
            }
            let _ = ready.push(source);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_unknown_tokens_are_ignored() {
        let all = [Source::Signals, Source::Timer, Source::Acpi, Source::PowerKey(3), Source::Output(0), Source::ReadyPipe(31), Source::Notify(255)];
        for s in all {
            assert_eq!(Source::from_token(s.token()), Some(s));
        }
        assert_eq!(Source::from_token(Source::Kmsg(1).token()), Some(Source::Kmsg(1)));
        assert_eq!(Source::from_token(Source::Console.token()), Some(Source::Console));
        assert_eq!(Source::from_token(Source::Uevent.token()), Some(Source::Uevent));
        assert_eq!(Source::from_token(12 << 8), None);
        assert_eq!(Source::from_token(u64::MAX), None);
    }
}
