//! Debug channels as configured: `keel.debug=SPEC[,SPEC…]` on the command line, or the
//! `[debug] channels` of the service configuration. A SPEC is
//! - `unix:/PATH[:ro|rw]`: a unix stream socket, several clients (read-write by default);
//! - `vsock:PORT[:ro|rw]`: a vsock listener, several clients (read-only by default);
//! - `DEV[:BAUD][:ro|rw][:shared]`: a terminal or port under /dev (`ttyS1`, `ttyAMA0`,
//!   `hvc1`, `vport0p1`), one peer, read-write by default; a baud rate sets the UART raw at
//!   that speed; `shared` means the line also carries kernel text: frames go in APC strings.

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Kind<'a> {
    Unix(&'a [u8]),
    Vsock(u32),
    Device { name: &'a [u8], baud: Option<u32>, shared: bool },
}

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Channel<'a> {
    pub kind: Kind<'a>,
    /// Mutating requests (start/stop/restart, power) are allowed.
    pub writable: bool,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum ChannelError {
    Empty,
    BadPath,
    BadPort,
    BadDevice,
    BadOption,
}

impl ChannelError {
    pub fn text(self) -> &'static str {
        match self {
            ChannelError::Empty => "empty channel",
            ChannelError::BadPath => "unix: needs an absolute path",
            ChannelError::BadPort => "vsock: needs a port number",
            ChannelError::BadDevice => "not a device name under /dev",
            ChannelError::BadOption => "options are a baud rate, ro, rw or shared",
        }
    }
}

impl<'a> Channel<'a> {
    pub fn parse(spec: &'a [u8]) -> Result<Channel<'a>, ChannelError> {
        let mut parts = spec.split(|&b| b == b':');
        let head = parts.next().filter(|h| !h.is_empty()).ok_or(ChannelError::Empty)?;
        let (mut kind, mut writable) = match crate::values::position(b"unix vsock", head) {
            Some(0) => {
                // The path may not contain ':' (it ends at the options).
                let path = parts.next().filter(|p| p.starts_with(b"/") && p.len() < 100).ok_or(ChannelError::BadPath)?;
                (Kind::Unix(path), true)
            }
            Some(_) => {
                let port = parts.next().and_then(crate::values::parse_u32).ok_or(ChannelError::BadPort)?;
                (Kind::Vsock(port), false)
            }
            None if head.len() <= 32 && head.iter().all(|b| b.is_ascii_alphanumeric()) => {
                (Kind::Device { name: head, baud: None, shared: false }, true)
            }
            _ => return Err(ChannelError::BadDevice),
        };
        for option in parts {
            match (crate::values::position(b"ro rw shared", option), &mut kind) {
                (Some(i @ (0 | 1)), _) => writable = i == 1,
                (Some(_), Kind::Device { shared, .. }) => *shared = true,
                (None, Kind::Device { baud, .. }) if crate::values::parse_u32(option).is_some() => *baud = crate::values::parse_u32(option),
                _ => return Err(ChannelError::BadOption),
            }
        }
        Ok(Channel { kind, writable })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_form() {
        assert_eq!(Channel::parse(b"unix:/run/keel.sock"), Ok(Channel { kind: Kind::Unix(b"/run/keel.sock"), writable: true }));
        assert_eq!(Channel::parse(b"unix:/run/k:ro").unwrap().writable, false);
        assert_eq!(Channel::parse(b"vsock:1024"), Ok(Channel { kind: Kind::Vsock(1024), writable: false }));
        assert_eq!(Channel::parse(b"vsock:1024:rw").unwrap().writable, true);
        assert_eq!(
            Channel::parse(b"ttyS1:115200:rw"),
            Ok(Channel { kind: Kind::Device { name: b"ttyS1", baud: Some(115200), shared: false }, writable: true })
        );
        assert_eq!(
            Channel::parse(b"ttyS0:shared:ro"),
            Ok(Channel { kind: Kind::Device { name: b"ttyS0", baud: None, shared: true }, writable: false })
        );
        assert_eq!(Channel::parse(b"vport0p1").unwrap().kind, Kind::Device { name: b"vport0p1", baud: None, shared: false });
    }

    #[test]
    fn bad_specs() {
        for (bad, err) in [
            (&b""[..], ChannelError::Empty),
            (b":rw", ChannelError::Empty),
            (b"unix", ChannelError::BadPath),
            (b"unix:relative", ChannelError::BadPath),
            (b"vsock", ChannelError::BadPort),
            (b"vsock:x", ChannelError::BadPort),
            (b"../etc/passwd", ChannelError::BadDevice),
            (b"tty/S1", ChannelError::BadDevice),
            (b"ttyS1:fast", ChannelError::BadOption),
            (b"vsock:1:shared", ChannelError::BadOption),
            (b"unix:/a:9600", ChannelError::BadOption),
        ] {
            assert_eq!(Channel::parse(bad), Err(err), "{}", String::from_utf8_lossy(bad));
        }
    }
}
