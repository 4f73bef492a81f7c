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
            Some(colon) => (value.get(..colon)?, Some(parse_u32(value.get(colon + 1..)?)?)),
            None => (value, None),
        };
        let action = match (position(b"reboot halt poweroff", name), delay) {
            (Some(0), _) => PowerCmd::Reboot,
            // A delay only makes sense before a reboot; halt and poweroff act at once.
            (Some(1), None) => PowerCmd::Halt,
            (Some(2), None) => PowerCmd::PowerOff,
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
            Some(colon) => (value.get(..colon)?, parse_u32(value.get(colon + 1..)?)?),
            None => (value, Self::DEFAULT_TIMEOUT_SECS),
        };
        let device = device.strip_prefix(b"/dev/").unwrap_or(device);
        let name_ok = !device.is_empty() && device.len() <= 32 && device.iter().all(|b| b.is_ascii_alphanumeric());
        (name_ok && (2..=3600).contains(&secs)).then_some(Watchdog { device, timeout_secs: secs })
    }
}

/// What a `root=` or a mount's `source` names (the kernel's forms): `UUID=` a filesystem
/// UUID (8-4-4-4-12) or a vfat serial (XXXX-XXXX), `LABEL=` (byte for byte, no `\x20`
/// escapes), `PARTUUID=` a GPT GUID or the MBR form `SSSSSSSS-PP` with the kernel's
/// optional `/PARTNROFF=N`, or an absolute path. PID 1's probe matches it against devices.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Device<'a> {
    Uuid(&'a [u8]),
    Label(&'a [u8]),
    /// With `/PARTNROFF=N`: the partition N numbers after (or before) the one named, on
    /// the same disk.
    PartUuid { id: &'a [u8], nr_offset: i32 },
    Path(&'a [u8]),
}

impl<'a> Device<'a> {
    pub const EXPECTED: &'static str = "UUID=, LABEL=, PARTUUID= or an absolute path";

    /// None for anything else, or an identifier of the wrong shape.
    pub fn parse(value: &'a [u8]) -> Option<Device<'a>> {
        if let Some(id) = value.strip_prefix(b"UUID=") {
            return (shaped(id, &[8, 13, 18, 23], 36) || shaped(id, &[4], 9)).then_some(Device::Uuid(id));
        }
        if let Some(rest) = value.strip_prefix(b"PARTUUID=") {
            let (id, nr_offset) = match rest.iter().position(|&c| c == b'/') {
                None => (rest, 0),
                Some(slash) => {
                    let (id, tail) = rest.split_at(slash);
                    (id, tail.strip_prefix(b"/PARTNROFF=").and_then(decimal)?)
                }
            };
            return (shaped(id, &[8, 13, 18, 23], 36) || shaped(id, &[8], 11)).then_some(Device::PartUuid { id, nr_offset });
        }
        if let Some(label) = value.strip_prefix(b"LABEL=") {
            return (!label.is_empty()).then_some(Device::Label(label));
        }
        value.starts_with(b"/").then_some(Device::Path(value))
    }
}

/// Whether a mount's `source` is a block device keel finds (and waits for): every form but
/// a path outside /dev (a directory to bind), and not a name such as `tmpfs`.
pub fn names_device(source: &[u8]) -> bool {
    match Device::parse(source) {
        Some(Device::Path(path)) => path.starts_with(b"/dev/"),
        found => found.is_some(),
    }
}

/// `len` bytes, dashes exactly at `dashes`, hex digits elsewhere.
pub fn shaped(text: &[u8], dashes: &[usize], len: usize) -> bool {
    text.len() == len
        && text.iter().enumerate().all(|(i, &c)| if dashes.contains(&i) { c == b'-' } else { c.is_ascii_hexdigit() })
}

/// The kernel's `%d`: an optional sign, then decimal digits, within i32.
fn decimal(text: &[u8]) -> Option<i32> {
    let (negative, digits) = match text {
        [b'-', rest @ ..] => (true, rest),
        [b'+', rest @ ..] => (false, rest),
        _ => (false, text),
    };
    if digits.is_empty() {
        return None;
    }
    let mut n: i32 = 0;
    for &c in digits {
        let d = i32::from(c.checked_sub(b'0').filter(|d| *d < 10)?);
        n = n.checked_mul(10)?.checked_add(if negative { -d } else { d })?;
    }
    Some(n)
}

/// A filesystem type as mount(2) takes it (`ext4`, `fuse.sshfs`, `9p`): letters, digits,
/// `_`, `.`, `-`; 1 to 32 bytes. A root's type may be a comma list (`ext4,xfs`), each tried.
pub fn valid_fstype(name: &[u8]) -> bool {
    !name.is_empty() && name.len() <= 32 && name.iter().all(|&b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
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
    position(SIGNAL_NAMES, s.strip_prefix(b"SIG").unwrap_or(s)).map(|i| i as u32 + 1)
}

/// Where `word` is among the space-separated `names`. One string is smaller than a match on
/// byte-string literals, which the compiler unrolls into a compare per byte.
#[inline(never)]
pub fn position(names: &[u8], word: &[u8]) -> Option<usize> {
    names.split(|&b| b == b' ').position(|n| n == word)
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
    fn devices() {
        let uuid = &b"0e8b1c4a-7f3d-4b6e-9a21-5c3d2e1f0a9b"[..];
        assert_eq!(Device::parse(b"UUID=0e8b1c4a-7f3d-4b6e-9a21-5c3d2e1f0a9b"), Some(Device::Uuid(uuid)));
        assert_eq!(Device::parse(b"UUID=1A2B-3C4D"), Some(Device::Uuid(b"1A2B-3C4D")));
        assert_eq!(Device::parse(b"PARTUUID=5eed1234-05"), Some(Device::PartUuid { id: b"5eed1234-05", nr_offset: 0 }));
        assert_eq!(
            Device::parse(b"PARTUUID=A1B2C3D4-E5F6-4A7B-8C9D-0E1F2A3B4C5D/PARTNROFF=-1"),
            Some(Device::PartUuid { id: b"A1B2C3D4-E5F6-4A7B-8C9D-0E1F2A3B4C5D", nr_offset: -1 })
        );
        assert_eq!(Device::parse(b"PARTUUID=5eed1234-05/PARTNROFF=2"), Some(Device::PartUuid { id: b"5eed1234-05", nr_offset: 2 }));
        assert_eq!(Device::parse(b"LABEL=keel root"), Some(Device::Label(b"keel root")));
        assert_eq!(Device::parse(b"/dev/vda1"), Some(Device::Path(b"/dev/vda1")));
        for bad in [
            &b"UUID=0e8b1c4a-7f3d-4b6e-9a21-5c3d2e1f0a9"[..],
            b"UUID=0e8b1c4a_7f3d-4b6e-9a21-5c3d2e1f0a9b",
            b"UUID=1A2B-3C4G",
            b"UUID=",
            b"PARTUUID=5eed1234-05/PARTNROFF=",
            b"PARTUUID=5eed1234-05/PARTNROFF=1x",
            b"PARTUUID=5eed1234-05/PARTNROFF=99999999999",
            b"PARTUUID=5eed1234-05/",
            b"PARTUUID=5eed1234-5",
            b"PARTUUID=1A2B-3C4D",
            b"LABEL=",
            b"sda1",
            b"",
        ] {
            assert_eq!(Device::parse(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
        assert!(names_device(b"/dev/vdb") && names_device(b"LABEL=x") && names_device(b"UUID=1A2B-3C4D"));
        assert!(!names_device(b"/srv/x") && !names_device(b"tmpfs") && !names_device(b"LABEL="));
        assert_eq!(decimal(b"-2147483648"), Some(i32::MIN));
        assert_eq!(decimal(b"2147483648"), None);
        assert_eq!(decimal(b"-"), None);
        assert!(valid_fstype(b"ext4") && valid_fstype(b"fuse.sshfs") && valid_fstype(b"9p"));
        assert!(!valid_fstype(b"") && !valid_fstype(b"ext4,xfs") && !valid_fstype(b"a b") && !valid_fstype(&[b'x'; 33]));
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
