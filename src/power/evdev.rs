//! Power keys over evdev: any /dev/input/eventN whose key capabilities (the sysfs bitmap
//! /sys/class/input/eventN/device/capabilities/key) include KEY_POWER — button.ko's "Power
//! Button" device, gpio-keys on Arm boards, virtio-input, a keyboard — read as
//! `struct input_event`. Constants from linux/input-event-codes.h (not in linux-raw-sys).

use crate::log::say::{say, Part, Part::{N, T}};
use crate::power::netlink::{u16_at, u32_at};
use rustix::fd::{BorrowedFd, OwnedFd};
use rustix::io::Errno as E;

pub const EV_KEY: u16 = 1;
pub const KEY_POWER: u16 = 116;

/// One `struct input_event` as 64-bit kernels (x86_64, aarch64) write it: struct timeval
/// (16 bytes: two longs), u16 type at 16, u16 code at 18, i32 value at 20; 24 bytes.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct InputEvent {
    pub kind: u16,
    pub code: u16,
    pub value: i32,
}

impl InputEvent {
    pub const WIRE_LEN: usize = 24;

    /// None if fewer than WIRE_LEN bytes.
    pub fn parse(bytes: &[u8]) -> Option<InputEvent> {
        let b = bytes.get(..Self::WIRE_LEN)?;
        Some(InputEvent { kind: u16_at(b, 16..18), code: u16_at(b, 18..20), value: u32_at(b, 20..24) as i32 })
    }

    /// KEY_POWER pressed (1; 0 is the release, 2 autorepeat).
    pub fn is_power_press(&self) -> bool {
        self.kind == EV_KEY && self.code == KEY_POWER && self.value == 1
    }
}

/// Power presses in bytes read from an evdev device (whole events; a partial tail is ignored).
pub fn power_presses(buf: &[u8]) -> usize {
    buf.chunks_exact(InputEvent::WIRE_LEN).filter_map(InputEvent::parse).filter(InputEvent::is_power_press).count()
}

/// Why a capabilities bitmap was not understood.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum CapError {
    Empty,
    /// A word that is not 1 to 16 hex digits.
    BadWord,
    /// More words than any key bitmap has (KEY_MAX 0x2ff: 12 words of 64 bits).
    TooManyWords,
}

/// Most words keel accepts in a capabilities bitmap.
pub const MAX_CAP_WORDS: usize = 16;

/// Whether `bit` is set in a sysfs capabilities bitmap such as
/// /sys/class/input/event0/device/capabilities/key: hex words of 64 bits (the kernel's
/// `long` on keel's targets), most significant first, leading zero words left out, so
/// `10000000000000 0` is bit 116 (KEY_POWER).
pub fn has_bit(text: &[u8], bit: u16) -> Result<bool, CapError> {
    let mut words: heapless::Vec<u64, MAX_CAP_WORDS> = heapless::Vec::new();
    for word in text.split(|b| b.is_ascii_whitespace() || *b == 0).filter(|w| !w.is_empty()) {
        if word.len() > 16 {
            return Err(CapError::BadWord);
        }
        let mut value = 0u64;
        for &c in word {
            let digit = (c as char).to_digit(16).ok_or(CapError::BadWord)?;
            value = value << 4 | digit as u64;
        }
        words.push(value).map_err(|_| CapError::TooManyWords)?;
    }
    if words.is_empty() {
        return Err(CapError::Empty);
    }
    let from_right = bit as usize / 64;
    Ok(from_right < words.len() && words[words.len() - 1 - from_right] >> (bit % 64) & 1 == 1)
}

/// /dev/input/event0.. scanned for power keys (a fixed range; numbers are small).
pub const MAX_INPUT_SCAN: u32 = 32;
/// Most power-key devices kept open.
pub const MAX_POWER_KEYS: usize = 4;

/// The open evdev devices that have KEY_POWER: register each fd in the event loop (one
/// source for all is enough) and call `read_all` when any is readable. A device that goes
/// away is closed (its fd would report POLLHUP for ever); one that comes is `add`ed.
#[derive(Default)]
pub struct PowerKeys {
    /// Each device and its N in /dev/input/eventN.
    fds: heapless::Vec<(OwnedFd, u32), MAX_POWER_KEYS>,
}

/// `root` `prefix` N `suffix` as a C string in `buf`.
fn numbered<'b>(buf: &'b mut [u8; PATH_MAX], root: &[u8], prefix: &[u8], n: u32, suffix: &[u8]) -> Option<&'b core::ffi::CStr> {
    let mut line = crate::log::Line::new();
    line.push_bytes(prefix);
    crate::log::push_padded(&mut line, n as u64, 1, b'0');
    line.push_bytes(suffix);
    crate::file::c_path(&[root, line.as_bytes()], buf)
}

/// Room for the paths `numbered` builds (a test's root directory included).
const PATH_MAX: usize = 128;

/// Open (read-only, non-blocking, close-on-exec) every /dev/input/eventN whose
/// /sys/class/input/eventN/device/capabilities/key has KEY_POWER. Needs /sys, /dev
/// (devtmpfs) and evdev.ko; finding none is not an error.
pub fn open_power_keys() -> PowerKeys {
    open_power_keys_in(b"")
}

/// `open_power_keys` with /sys and /dev under `root` (tests give a directory of their own).
fn open_power_keys_in(root: &[u8]) -> PowerKeys {
    let mut keys = PowerKeys { fds: heapless::Vec::new() };
    keys.scan(root);
    keys
}

impl PowerKeys {
    pub fn is_empty(&self) -> bool {
        self.fds.is_empty()
    }

    pub fn len(&self) -> usize {
        self.fds.len()
    }

    pub fn fds(&self) -> impl Iterator<Item = BorrowedFd<'_>> {
        self.fds.iter().map(|(fd, _)| crate::sys::fd::borrow(fd))
    }

    /// /dev/input/eventN, just added (a uevent said so): opened if it has KEY_POWER and
    /// is not held already; then it is the last of `fds`, and this says so.
    pub fn add(&mut self, n: u32) -> bool {
        self.open(b"", n) == Ok(true)
    }

    fn scan(&mut self, root: &[u8]) {
        for n in 0..MAX_INPUT_SCAN {
            // Input devices are numbered densely at boot: the first gap is the end.
            if self.open(root, n) == Err(E::NOENT) {
                break;
            }
        }
    }

    /// Open eventN under `root` if it reports KEY_POWER and is not held already (an fd
    /// whose device is gone does not count): Ok(true) if opened. Err(NOENT): no such device.
    fn open(&mut self, root: &[u8], n: u32) -> Result<bool, E> {
        use crate::sys::fd::open;
        use rustix::fs::{Mode, OFlags};
        if let Some(i) = self.fds.iter().position(|&(_, m)| m == n) {
            if self.fds.get(i).is_some_and(|(fd, _)| !gone(crate::sys::fd::borrow(fd))) {
                return Ok(false);
            }
            self.fds.swap_remove(i);
        }
        let mut path_buf = [0u8; PATH_MAX];
        let mut caps = [0u8; 512];
        let path = numbered(&mut path_buf, root, b"/sys/class/input/event", n, b"/device/capabilities/key").ok_or(E::NAMETOOLONG)?;
        if has_bit(crate::file::read_into(path, &mut caps)?, KEY_POWER) != Ok(true) {
            return Ok(false);
        }
        let mut name = [0u8; 64];
        let name = match numbered(&mut path_buf, root, b"/sys/class/input/event", n, b"/device/name") {
            Some(p) => crate::file::read_into(p, &mut name).unwrap_or_default(),
            None => &mut [],
        };
        let name: &[u8] = name.strip_suffix(b"\n").unwrap_or(name);
        let dev = numbered(&mut path_buf, root, b"/dev/input/event", n, b"").ok_or(E::NAMETOOLONG)?;
        if self.fds.is_full() {
            say(b"more than % power keys; % is not watched", &[N(MAX_POWER_KEYS as u64), T(dev.to_bytes())]);
            return Ok(false);
        }
        match open(dev, OFlags::RDONLY | OFlags::NONBLOCK | OFlags::CLOEXEC, Mode::empty()) {
            Ok(fd) => {
                say(b"power key: % (%)", &[T(dev.to_bytes()), T(name)]);
                Ok(self.fds.push((fd, n)).is_ok())
            }
            Err(e) => {
                say(b"power key: cannot open % (%): %", &[T(dev.to_bytes()), T(name), Part::E(e)]);
                Ok(false)
            }
        }
    }

    /// Drain every device; `on_power` once per KEY_POWER press. Never blocks. Devices
    /// that went away are closed.
    pub fn read_all(&mut self, mut on_power: impl FnMut()) {
        self.fds.retain(|(fd, _)| read_power_key(crate::sys::fd::borrow(fd), &mut on_power));
    }
}

/// The evdev device behind `fd` is gone (unplugged): evdev then polls as hung up.
fn gone(fd: BorrowedFd<'_>) -> bool {
    use rustix::event::{poll, PollFd, PollFlags};
    let mut fds = [PollFd::new(&fd, PollFlags::IN)];
    poll(&mut fds, Some(&rustix::time::Timespec { tv_sec: 0, tv_nsec: 0 })).is_ok()
        && fds[0].revents().intersects(PollFlags::HUP | PollFlags::ERR)
}

/// Drain one non-blocking evdev fd; `on_power` once per KEY_POWER press. False if the
/// device went away (ENODEV).
pub fn read_power_key(fd: BorrowedFd<'_>, mut on_power: impl FnMut()) -> bool {
    let mut buf = [0u8; InputEvent::WIRE_LEN * 16];
    loop {
        match rustix::io::read(fd, &mut buf) {
            Ok(0) => return true,
            Ok(n) => (0..power_presses(&buf[..n.min(buf.len())])).for_each(|_| on_power()),
            Err(E::INTR) => continue,
            Err(E::NODEV) => return false,
            // EAGAIN: drained.
            Err(_) => return true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capability_bitmaps() {
        // button.ko's "Power Button": only KEY_POWER (bit 116 = word 1, bit 52).
        assert_eq!(has_bit(b"10000000000000 0\n", KEY_POWER), Ok(true));
        assert_eq!(has_bit(b"10000000000000 0\n", KEY_POWER - 1), Ok(false));
        assert_eq!(has_bit(b"10000000000000 0\n", KEY_POWER + 1), Ok(false));
        assert_eq!(has_bit(b"0\n", KEY_POWER), Ok(false));
        // A typical AT keyboard: 4 words, power included.
        let kbd = b"402000000 3803078f800d001 feffffdfffefffff fffffffffffffffe\n";
        assert_eq!(has_bit(kbd, KEY_POWER), Ok(true));
        assert_eq!(has_bit(kbd, 0), Ok(false));
        assert_eq!(has_bit(kbd, 1), Ok(true));
        // Sleep button only (KEY_SLEEP 142): no power.
        assert_eq!(has_bit(b"4000 0 0\n", KEY_POWER), Ok(false));
        assert_eq!(has_bit(b"4000 0 0\n", 142), Ok(true));
        // Bits past the words given are clear.
        assert_eq!(has_bit(b"1", 64), Ok(false));
        assert_eq!(has_bit(b"", KEY_POWER), Err(CapError::Empty));
        assert_eq!(has_bit(b" \n", KEY_POWER), Err(CapError::Empty));
        assert_eq!(has_bit(b"10000000000000000 0", KEY_POWER), Err(CapError::BadWord));
        assert_eq!(has_bit(b"xyz 0", KEY_POWER), Err(CapError::BadWord));
        assert_eq!(has_bit(b"-1 0", KEY_POWER), Err(CapError::BadWord));
        assert_eq!(has_bit("0 ".repeat(17).as_bytes(), KEY_POWER), Err(CapError::TooManyWords));
    }

    /// A 24-byte input_event: timeval 1.5 s, then type, code, value.
    fn input(kind: u16, code: u16, value: i32) -> Vec<u8> {
        let mut e = Vec::new();
        e.extend_from_slice(&1u64.to_ne_bytes());
        e.extend_from_slice(&500_000u64.to_ne_bytes());
        e.extend_from_slice(&kind.to_ne_bytes());
        e.extend_from_slice(&code.to_ne_bytes());
        e.extend_from_slice(&value.to_ne_bytes());
        e
    }

    #[test]
    fn input_events() {
        #[rustfmt::skip]
        let press: [u8; 24] = [
            1, 0, 0, 0, 0, 0, 0, 0, 0x20, 0xa1, 0x07, 0, 0, 0, 0, 0, // tv_sec 1, tv_usec 500000
            1, 0, 116, 0, 1, 0, 0, 0,                               // EV_KEY, KEY_POWER, 1
        ];
        assert_eq!(input(EV_KEY, KEY_POWER, 1), press);
        let e = InputEvent::parse(&press).unwrap();
        assert_eq!(e, InputEvent { kind: EV_KEY, code: KEY_POWER, value: 1 });
        assert!(e.is_power_press());
        assert_eq!(InputEvent::parse(&press[..23]), None);
        let mut buf = press.to_vec();
        buf.extend(input(0, 0, 0)); // EV_SYN
        buf.extend(input(EV_KEY, KEY_POWER, 0)); // release
        buf.extend(input(EV_KEY, KEY_POWER, 2)); // autorepeat
        buf.extend(input(EV_KEY, 115, 1)); // KEY_VOLUMEUP
        buf.extend(input(4, KEY_POWER, 1)); // EV_MSC with the same code
        buf.extend(input(EV_KEY, KEY_POWER, 1));
        assert_eq!(power_presses(&buf), 2);
        // A partial trailing event is not counted.
        buf.extend_from_slice(&press[..20]);
        assert_eq!(power_presses(&buf), 2);
        assert_eq!(power_presses(&[]), 0);
    }

    #[test]
    fn device_paths() {
        let mut buf = [0u8; PATH_MAX];
        assert_eq!(numbered(&mut buf, b"", b"/dev/input/event", 12, b"").unwrap().to_bytes(), b"/dev/input/event12");
        assert_eq!(numbered(&mut buf, b"/r", b"/dev/input/event", 0, b"/x").unwrap().to_bytes(), b"/r/dev/input/event0/x");
        assert!(numbered(&mut buf, &[b'a'; PATH_MAX], b"/e", 1, b"").is_none());
    }

    /// A fake /sys and /dev: event N's capabilities `caps` (None: no such device), and a
    /// device node (a plain file here) if `node`.
    fn tree(devices: &[(Option<&str>, bool)]) -> std::path::PathBuf {
        use std::sync::atomic::{AtomicU32, Ordering};
        static N: AtomicU32 = AtomicU32::new(0);
        let root = std::env::temp_dir().join(format!("keel-evdev-{}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed)));
        std::fs::create_dir_all(root.join("dev/input")).unwrap();
        for (n, (caps, node)) in devices.iter().enumerate() {
            let Some(caps) = caps else { continue };
            let dev = root.join(format!("sys/class/input/event{n}/device"));
            std::fs::create_dir_all(dev.join("capabilities")).unwrap();
            std::fs::write(dev.join("capabilities/key"), caps).unwrap();
            std::fs::write(dev.join("name"), format!("dev{n}\n")).unwrap();
            if *node {
                std::fs::write(root.join(format!("dev/input/event{n}")), b"").unwrap();
            }
        }
        root
    }

    fn opened(devices: &[(Option<&str>, bool)]) -> usize {
        let root = tree(devices);
        let mut keys = open_power_keys_in(root.as_os_str().as_encoded_bytes());
        keys.read_all(|| panic!("an empty file holds no press"));
        std::fs::remove_dir_all(&root).unwrap();
        keys.fds().count()
    }

    const POWER: &str = "10000000000000 0\n";
    const SLEEP: &str = "4000 0 0\n";

    #[test]
    fn power_keys_are_the_devices_with_key_power() {
        assert_eq!(opened(&[]), 0);
        assert_eq!(opened(&[(Some(POWER), true), (Some(SLEEP), true), (Some(POWER), true)]), 2);
        // A device without a node is skipped; unreadable capabilities too.
        assert_eq!(opened(&[(Some(POWER), false), (Some("zz\n"), true), (Some(POWER), true)]), 1);
        // The first missing number ends the scan.
        assert_eq!(opened(&[(Some(POWER), true), (None, false), (Some(POWER), true)]), 1);
        // At most MAX_POWER_KEYS are kept.
        assert_eq!(opened(&[(Some(POWER), true); MAX_POWER_KEYS + 2]), MAX_POWER_KEYS);
    }

    #[test]
    fn a_key_added_later_is_opened_once() {
        let root = tree(&[(Some(POWER), true), (Some(SLEEP), true), (Some(POWER), true)]);
        let r = root.as_os_str().as_encoded_bytes();
        let mut keys = PowerKeys::default();
        assert_eq!(keys.open(r, 2), Ok(true));
        assert_eq!(keys.open(r, 2), Ok(false), "held already (and not gone)");
        assert_eq!(keys.open(r, 1), Ok(false), "no KEY_POWER");
        assert_eq!(keys.open(r, 7), Err(E::NOENT));
        // The boot's scan then takes only the one not held.
        keys.scan(r);
        std::fs::remove_dir_all(&root).unwrap();
        assert_eq!(keys.len(), 2);
        let mut numbers: Vec<u32> = keys.fds.iter().map(|&(_, n)| n).collect();
        numbers.sort();
        assert_eq!(numbers, [0, 2]);
    }

    #[test]
    fn random_input_never_panics() {
        let mut rng = keel_proto::testutil::XorShift(0x9e37_79b9_7f4a_7c15);
        for _ in 0..20_000 {
            let buf: Vec<u8> = (0..rng.below(80)).map(|_| b"0123456789abcdefx \n\0"[rng.below(20)]).collect();
            let _ = has_bit(&buf, rng.below(800) as u16);
            let _ = power_presses(&buf);
        }
    }
}
