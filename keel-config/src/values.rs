//! The grammar of the values a user sets, shared by the configuration compiler (the file) and
//! PID 1 (the same keys on the kernel command line, which override the file): one parser per
//! kind of value, so both accept exactly the same text.

use keel_proto::PowerCmd;

/// The kernel's HOST_NAME_MAX.
pub const HOSTNAME_MAX: usize = 64;
/// The longest module name keel accepts (the kernel's MODULE_NAME_LEN is 56 with its NUL).
pub const MODULE_NAME_MAX: usize = 55;

/// What a panic or fatal error does (`panic = "reboot:10"`, `keel.panic=halt`).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct PanicPolicy {
    pub action: PowerCmd,
    /// Seconds to wait before acting (lets a human read the console).
    pub delay_secs: u32,
}

impl PanicPolicy {
    pub const DEFAULT: PanicPolicy = PanicPolicy { action: PowerCmd::Reboot, delay_secs: 10 };

    /// `reboot[:SECONDS]`, `halt` or `poweroff`.
    pub fn parse(value: &[u8]) -> Option<PanicPolicy> {
        let (name, delay) = match value.iter().position(|&b| b == b':') {
            Some(colon) => (&value[..colon], Some(parse_u32(&value[colon + 1..])?)),
            None => (value, None),
        };
        let action = match name {
            b"reboot" => PowerCmd::Reboot,
            // A delay only makes sense before a reboot; halt and poweroff act at once.
            b"halt" if delay.is_none() => PowerCmd::Halt,
            b"poweroff" if delay.is_none() => PowerCmd::PowerOff,
            _ => return None,
        };
        let default_delay = if action == PowerCmd::Reboot { 10 } else { 0 };
        Some(PanicPolicy { action, delay_secs: delay.unwrap_or(default_delay) })
    }

    pub const EXPECTED: &'static str = "reboot[:SECONDS], halt or poweroff";
}

/// A hardware watchdog (`watchdog = "/dev/watchdog0:30"`, `keel.watchdog=watchdog0`): the
/// device (a bare name is under /dev) and its timeout in seconds (default 30).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Watchdog<'a> {
    /// The name under /dev (`watchdog0`).
    pub device: &'a [u8],
    pub timeout_secs: u32,
}

impl<'a> Watchdog<'a> {
    pub const DEFAULT_TIMEOUT_SECS: u32 = 30;
    pub const EXPECTED: &'static str = "DEVICE[:SECONDS], like watchdog0:30 (SECONDS from 2 to 3600)";

    /// `DEVICE[:SECONDS]`; DEVICE is `watchdogN` or `/dev/watchdogN` (a letter/digit name).
    pub fn parse(value: &'a [u8]) -> Option<Watchdog<'a>> {
        let (device, secs) = match value.iter().rposition(|&b| b == b':') {
            Some(colon) => (&value[..colon], parse_u32(&value[colon + 1..])?),
            None => (value, Self::DEFAULT_TIMEOUT_SECS),
        };
        let device = device.strip_prefix(b"/dev/").unwrap_or(device);
        let name_ok = !device.is_empty() && device.len() <= 32 && device.iter().all(|b| b.is_ascii_alphanumeric());
        (name_ok && (2..=3600).contains(&secs)).then_some(Watchdog { device, timeout_secs: secs })
    }
}

/// Letters, digits, `-` and `.`; 1 to 64 bytes.
pub fn valid_hostname(name: &[u8]) -> bool {
    !name.is_empty() && name.len() <= HOSTNAME_MAX && name.iter().all(|&b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
}

/// Letters, digits, `_` and `-` (modprobe treats them alike); 1 to 55 bytes.
pub fn valid_module_name(name: &[u8]) -> bool {
    !name.is_empty() && name.len() <= MODULE_NAME_MAX && name.iter().all(|&b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// A service name: letters, digits, `-`, `_`; 1 to 32 bytes.
pub fn valid_service_name(name: &[u8]) -> bool {
    !name.is_empty() && name.len() <= 32 && name.iter().all(|&b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// A decimal u32: digits only, no sign, no overflow.
pub fn parse_u32(s: &[u8]) -> Option<u32> {
    parse_u64(s)?.try_into().ok()
}

/// A decimal u64: digits only, no sign, no overflow.
pub fn parse_u64(s: &[u8]) -> Option<u64> {
    if s.is_empty() || s.len() > 20 {
        return None;
    }
    let mut n: u64 = 0;
    for &b in s {
        if !b.is_ascii_digit() {
            return None;
        }
        n = n.checked_mul(10)?.checked_add((b - b'0') as u64)?;
    }
    Some(n)
}

/// Signal names 1..=31 in order (the numbering x86_64 and aarch64 share); one string is
/// smaller than a table of slices.
const SIGNAL_NAMES: &[u8] = b"HUP INT QUIT ILL TRAP ABRT BUS FPE KILL USR1 SEGV USR2 PIPE ALRM TERM STKFLT \
    CHLD CONT STOP TSTP TTIN TTOU URG XCPU XFSZ VTALRM PROF WINCH IO PWR SYS";

/// `SIGKILL`, `KILL` or `9` (standard signals only).
pub fn signal_number(s: &[u8]) -> Option<u32> {
    if let Some(n) = parse_u32(s) {
        return (1..=31).contains(&n).then_some(n);
    }
    let name = s.strip_prefix(b"SIG").unwrap_or(s);
    let mut names = SIGNAL_NAMES.split(|&b| b == b' ').filter(|n| !n.is_empty());
    names.position(|known| known == name).map(|i| i as u32 + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn panic_policies() {
        let p = |s: &str| PanicPolicy::parse(s.as_bytes());
        assert_eq!(p("reboot"), Some(PanicPolicy::DEFAULT));
        assert_eq!(p("reboot:0"), Some(PanicPolicy { action: PowerCmd::Reboot, delay_secs: 0 }));
        assert_eq!(p("halt"), Some(PanicPolicy { action: PowerCmd::Halt, delay_secs: 0 }));
        assert_eq!(p("poweroff").map(|p| p.action), Some(PowerCmd::PowerOff));
        for bad in ["", "explode", "reboot:", "reboot:x", "halt:5", "reboot:-1", "reboot:99999999999"] {
            assert_eq!(p(bad), None, "{bad}");
        }
    }

    #[test]
    fn watchdogs() {
        fn w(s: &str) -> Option<Watchdog<'_>> {
            Watchdog::parse(s.as_bytes())
        }
        assert_eq!(w("watchdog0"), Some(Watchdog { device: b"watchdog0", timeout_secs: 30 }));
        assert_eq!(w("/dev/watchdog1:10"), Some(Watchdog { device: b"watchdog1", timeout_secs: 10 }));
        for bad in ["", ":10", "/dev/", "watchdog0:1", "watchdog0:3601", "watchdog0:x", "../x", "/dev/a/b", "watchdog0:"] {
            assert_eq!(w(bad), None, "{bad}");
        }
    }

    #[test]
    fn names() {
        assert!(valid_hostname(b"box-1.lan") && !valid_hostname(b"") && !valid_hostname(b"a/b"));
        assert!(!valid_hostname(&[b'a'; 65]) && valid_hostname(&[b'a'; 64]));
        assert!(valid_module_name(b"virtio_net") && valid_module_name(b"9p") && !valid_module_name(b"../x"));
        assert!(!valid_module_name(b"") && !valid_module_name(&[b'a'; 56]));
        assert!(valid_service_name(b"web-1_a") && !valid_service_name(b"a.b") && !valid_service_name(&[b'a'; 33]));
    }

    #[test]
    fn numbers_and_signals() {
        assert_eq!(parse_u32(b"4294967295"), Some(u32::MAX));
        assert_eq!(parse_u32(b"4294967296"), None);
        assert_eq!(parse_u32(b"+1"), None);
        assert_eq!(parse_u64(b""), None);
        let known = [("SIGHUP", 1), ("INT", 2), ("SIGKILL", 9), ("USR1", 10), ("SIGTERM", 15), ("SIGCHLD", 17)];
        for (name, n) in known.into_iter().chain([("SIGWINCH", 28), ("SYS", 31), ("31", 31), ("PWR", 30)]) {
            assert_eq!(signal_number(name.as_bytes()), Some(n), "{name}");
        }
        for name in ["", "SIG", "sigkill", "32", "0", "SIGRTMIN", "KILLX"] {
            assert_eq!(signal_number(name.as_bytes()), None, "{name}");
        }
    }
}
