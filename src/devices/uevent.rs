//! Kernel uevents as a NETLINK_KOBJECT_UEVENT socket joined to group 1 (the kernel's)
//! receives them. One datagram is one event (lib/kobject_uevent.c, alloc_uevent_skb):
//! `ACTION@DEVPATH\0` then every variable as `KEY=VALUE\0`; the kernel always adds ACTION,
//! DEVPATH, SUBSYSTEM and SEQNUM, buses and classes add MODALIAS, DEVNAME, DEVTYPE, DRIVER...
//! The variables are at most UEVENT_BUFFER_SIZE (2048) bytes.
//!
//! udevd re-broadcasts events, after its rules ran, on group 2 with a binary header that
//! starts with `libudev\0`; such a message is recognized (`Error::FromUdev`) and skipped.
//!
//! smoltcp's habits where they fit a text format: a checked view (`Packet`: `new_checked`
//! validates the whole message, so no getter can fail or panic afterwards) and a value
//! borrowed from it (`Uevent`, `parse` / `buffer_len` / `emit`). There are no fixed byte
//! ranges, so no `mod field`: the header ends at the first NUL.

use rustix::fd::{AsFd, BorrowedFd, OwnedFd};
use rustix::io::Errno;

/// The kernel's multicast group (udevd's is 2).
pub const GROUP_KERNEL: u32 = 1;
/// Enough for any event: the variables fit 2048 bytes, the header is the action and a
/// devpath (in practice under 256 bytes).
pub const MAX_MESSAGE: usize = 8192;
/// The start of every message libudev sends (struct monitor_netlink_header).
pub const UDEV_PREFIX: &[u8] = b"libudev\0";

/// What happened to the device (lib/kobject_uevent.c, kobject_actions[]).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Action {
    Add,
    Remove,
    Change,
    Move,
    Online,
    Offline,
    Bind,
    Unbind,
}

const ACTIONS: [(&[u8], Action); 8] = [
    (b"add", Action::Add),
    (b"remove", Action::Remove),
    (b"change", Action::Change),
    (b"move", Action::Move),
    (b"online", Action::Online),
    (b"offline", Action::Offline),
    (b"bind", Action::Bind),
    (b"unbind", Action::Unbind),
];

impl Action {
    pub fn parse(name: &[u8]) -> Option<Action> {
        ACTIONS.iter().find(|(n, _)| *n == name).map(|&(_, a)| a)
    }

    pub fn as_bytes(self) -> &'static [u8] {
        ACTIONS.iter().find(|(_, a)| *a == self).map_or(b"", |(n, _)| n)
    }
}

/// Why a datagram is not a kernel uevent.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Error {
    /// A message from udev (`libudev\0` header): not ours to act on.
    FromUdev,
    /// Empty, or the last field lacks its NUL.
    Truncated,
    /// No `@` in the header, or a devpath that is empty or does not start with `/`.
    BadHeader,
    /// An action the kernel does not send.
    UnknownAction,
    /// A variable that is empty, lacks `=`, or has an empty or non-printable key.
    BadVariable,
    /// ACTION= or DEVPATH= disagrees with the header.
    Inconsistent,
    /// The output buffer is smaller than `buffer_len()`.
    BufferTooSmall,
}

impl ufmt::uDisplay for Error {
    fn fmt<W: ufmt::uWrite + ?Sized>(&self, f: &mut ufmt::Formatter<'_, W>) -> Result<(), W::Error> {
        f.write_str(match self {
            Error::FromUdev => "from udev",
            Error::Truncated => "truncated",
            Error::BadHeader => "bad header",
            Error::UnknownAction => "unknown action",
            Error::BadVariable => "bad variable",
            Error::Inconsistent => "header and variables disagree",
            Error::BufferTooSmall => "buffer too small",
        })
    }
}

/// `KEY=VALUE` split at the first `=`; None unless the key is 1+ printable non-blank bytes.
fn split_variable(field: &[u8]) -> Option<(&[u8], &[u8])> {
    let eq = memchr::memchr(b'=', field)?;
    let (key, value) = (&field[..eq], &field[eq + 1..]);
    (!key.is_empty() && key.iter().all(|b| b.is_ascii_graphic())).then_some((key, value))
}

/// The NUL-terminated fields of `vars` (checked to end with a NUL), without their NULs.
fn fields(vars: &[u8]) -> impl Iterator<Item = &[u8]> {
    let body = vars.strip_suffix(b"\0").unwrap_or(vars);
    body.split(|&b| b == 0).filter(move |_| !vars.is_empty())
}

/// The first value of `key` among checked variables.
fn lookup<'a>(vars: &'a [u8], key: &[u8]) -> Option<&'a [u8]> {
    fields(vars).find_map(|f| split_variable(f).filter(|(k, _)| *k == key).map(|(_, v)| v))
}

/// A view of one uevent datagram. After `new_checked` no getter fails or panics.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// A view whose getters give empty or wrong answers until `check_len` has passed.
    pub const fn new_unchecked(buffer: T) -> Self {
        Packet { buffer }
    }

    pub fn new_checked(buffer: T) -> Result<Self, Error> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    /// The whole message is well formed: header, every variable, the final NUL, and
    /// ACTION= and DEVPATH= (when present) agree with the header.
    pub fn check_len(&self) -> Result<(), Error> {
        let b = self.buffer.as_ref();
        if b.starts_with(UDEV_PREFIX) {
            return Err(Error::FromUdev);
        }
        let nul = memchr::memchr(0, b).ok_or(Error::Truncated)?;
        let header = &b[..nul];
        let at = memchr::memchr(b'@', header).ok_or(Error::BadHeader)?;
        let (action, devpath) = (&header[..at], &header[at + 1..]);
        if devpath.len() < 2 || devpath[0] != b'/' {
            return Err(Error::BadHeader);
        }
        Action::parse(action).ok_or(Error::UnknownAction)?;
        let vars = &b[nul + 1..];
        if !vars.is_empty() && vars.last() != Some(&0) {
            return Err(Error::Truncated);
        }
        for field in fields(vars) {
            let (key, value) = split_variable(field).ok_or(Error::BadVariable)?;
            let disagrees = (key == b"ACTION" && value != action) || (key == b"DEVPATH" && value != devpath);
            if disagrees {
                return Err(Error::Inconsistent);
            }
        }
        Ok(())
    }

    fn header(&self) -> &[u8] {
        let b = self.buffer.as_ref();
        &b[..memchr::memchr(0, b).unwrap_or(0)]
    }

    fn at(&self) -> usize {
        memchr::memchr(b'@', self.header()).unwrap_or(0)
    }

    pub fn action_bytes(&self) -> &[u8] {
        &self.header()[..self.at()]
    }

    pub fn devpath(&self) -> &[u8] {
        self.header().get(self.at() + 1..).unwrap_or(b"")
    }

    /// The `KEY=VALUE\0` area after the header.
    pub fn variables(&self) -> &[u8] {
        let b = self.buffer.as_ref();
        b.get(self.header().len() + 1..).unwrap_or(b"")
    }
}

/// One kernel uevent, borrowed from the datagram.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Uevent<'a> {
    pub action: Action,
    /// The device under /sys, e.g. `/devices/pci0000:00/0000:00:02.0`.
    pub devpath: &'a [u8],
    /// Every variable, `KEY=VALUE\0` each (checked by `Packet::check_len`).
    vars: &'a [u8],
}

impl<'a> Uevent<'a> {
    pub fn parse(packet: &Packet<&'a [u8]>) -> Result<Uevent<'a>, Error> {
        packet.check_len()?;
        let b: &'a [u8] = packet.buffer;
        let nul = memchr::memchr(0, b).ok_or(Error::Truncated)?;
        let at = memchr::memchr(b'@', &b[..nul]).ok_or(Error::BadHeader)?;
        let action = Action::parse(&b[..at]).ok_or(Error::UnknownAction)?;
        Ok(Uevent { action, devpath: &b[at + 1..nul], vars: &b[nul + 1..] })
    }

    /// Check and parse a received datagram in one step.
    pub fn from_bytes(bytes: &'a [u8]) -> Result<Uevent<'a>, Error> {
        Uevent::parse(&Packet::new_checked(bytes)?)
    }

    /// The value of a variable (the first, should a key repeat).
    pub fn get(&self, key: &[u8]) -> Option<&'a [u8]> {
        lookup(self.vars, key)
    }

    /// Every variable as (key, value), in the kernel's order.
    pub fn variables(&self) -> impl Iterator<Item = (&'a [u8], &'a [u8])> {
        fields(self.vars).filter_map(split_variable)
    }

    pub fn subsystem(&self) -> Option<&'a [u8]> {
        self.get(b"SUBSYSTEM")
    }
    pub fn modalias(&self) -> Option<&'a [u8]> {
        self.get(b"MODALIAS")
    }
    /// The node under /dev (devtmpfs has made it by the time the event is sent).
    pub fn devname(&self) -> Option<&'a [u8]> {
        self.get(b"DEVNAME")
    }
    pub fn devtype(&self) -> Option<&'a [u8]> {
        self.get(b"DEVTYPE")
    }
    pub fn driver(&self) -> Option<&'a [u8]> {
        self.get(b"DRIVER")
    }
    /// The kernel's event counter (also /sys/kernel/uevent_seqnum): a gap means events lost.
    pub fn seqnum(&self) -> Option<u64> {
        let digits = self.get(b"SEQNUM")?;
        if digits.is_empty() || digits.len() > 20 {
            return None;
        }
        let mut n = 0u64;
        for &d in digits {
            if !d.is_ascii_digit() {
                return None;
            }
            n = n.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
        }
        Some(n)
    }

    /// Bytes `emit` writes.
    pub fn buffer_len(&self) -> usize {
        self.action.as_bytes().len() + 1 + self.devpath.len() + 1 + self.vars.len()
    }

    /// Write the datagram the kernel would send; returns its length.
    pub fn emit(&self, out: &mut [u8]) -> Result<usize, Error> {
        let len = self.buffer_len();
        let out = out.get_mut(..len).ok_or(Error::BufferTooSmall)?;
        let action = self.action.as_bytes();
        let (a, rest) = out.split_at_mut(action.len());
        a.copy_from_slice(action);
        rest[0] = b'@';
        let (d, rest) = rest[1..].split_at_mut(self.devpath.len());
        d.copy_from_slice(self.devpath);
        rest[0] = 0;
        rest[1..].copy_from_slice(self.vars);
        Ok(len)
    }
}

/// What one `UeventSocket::recv` gave.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Received<'b> {
    /// One datagram from the kernel (not yet parsed).
    Message(&'b [u8]),
    /// Nothing more to read now.
    Drained,
    /// Sent by a process, not the kernel (any root process may send to group 1): dropped.
    NotFromKernel,
    /// Longer than the buffer: dropped.
    TooLong,
    /// The socket's receive buffer overflowed (ENOBUFS) and events were lost: walk
    /// /sys again (`coldplug`) to catch up.
    Overrun,
}

/// A NETLINK_KOBJECT_UEVENT socket bound to the kernel's group: close-on-exec and
/// non-blocking, for PID 1's event loop to watch (`as_fd`) and drain (`recv`).
pub struct UeventSocket {
    fd: OwnedFd,
}

impl AsFd for UeventSocket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        crate::sys::fd::borrow(&self.fd)
    }
}

impl UeventSocket {
    /// Open and bind it, asking for `receive_buffer` bytes of socket buffer (module loads
    /// at boot come in bursts): past the rmem_max sysctl with CAP_NET_ADMIN
    /// (SO_RCVBUFFORCE), else as much as rmem_max allows.
    pub fn open(receive_buffer: usize) -> Result<UeventSocket, Errno> {
        use crate::sys::fd::socket_with;
        use rustix::net::{bind, netlink, sockopt, AddressFamily, SocketFlags, SocketType};
        let fd = socket_with(
            AddressFamily::NETLINK,
            SocketType::RAW,
            SocketFlags::CLOEXEC | SocketFlags::NONBLOCK,
            Some(netlink::KOBJECT_UEVENT),
        )?;
        if sockopt::set_socket_recv_buffer_size_force(&fd, receive_buffer).is_err() {
            sockopt::set_socket_recv_buffer_size(&fd, receive_buffer)?;
        }
        // nl_groups is a bit mask: group N is bit N-1.
        bind(&fd, &netlink::SocketAddrNetlink::new(0, 1 << (GROUP_KERNEL - 1)))?;
        Ok(UeventSocket { fd })
    }

    /// Read one datagram into `buf` (`MAX_MESSAGE` bytes is enough). Never blocks.
    pub fn recv<'b>(&self, buf: &'b mut [u8]) -> Result<Received<'b>, Errno> {
        loop {
            let (len, sender) = match crate::sys::recv_netlink(crate::sys::fd::borrow(&self.fd), &mut *buf) {
                Ok(got) => got,
                Err(Errno::INTR) => continue,
                Err(Errno::AGAIN) => return Ok(Received::Drained),
                Err(Errno::NOBUFS) => return Ok(Received::Overrun),
                Err(e) => return Err(e),
            };
            let from_kernel = sender == Some(0);
            return Ok(if !from_kernel {
                Received::NotFromKernel
            } else if len > buf.len() {
                Received::TooLong
            } else {
                Received::Message(&buf[..len])
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Captured on the development VM (Linux 6.18) from a NETLINK_KOBJECT_UEVENT socket
    // bound to group 1, byte for byte. Real events: a tap device added, renamed, removed
    // (`ip tuntap add`, `ip link set name`, `ip tuntap del`) and a loop device detached.
    const TAP_ADD: &[u8] = b"add@/devices/virtual/net/keeltest0\0ACTION=add\0DEVPATH=/devices/virtual/net/keeltest0\0SUBSYSTEM=net\0INTERFACE=keeltest0\0IFINDEX=5\0SEQNUM=832\0";
    const TAP_MOVE: &[u8] = b"move@/devices/virtual/net/keeltest1\0ACTION=move\0DEVPATH=/devices/virtual/net/keeltest1\0SUBSYSTEM=net\0DEVPATH_OLD=/devices/virtual/net/keeltest0\0INTERFACE=keeltest1\0IFINDEX=5\0SEQNUM=835\0";
    const TAP_REMOVE: &[u8] = b"remove@/devices/virtual/net/keeltest1\0ACTION=remove\0DEVPATH=/devices/virtual/net/keeltest1\0SUBSYSTEM=net\0INTERFACE=keeltest1\0IFINDEX=5\0SEQNUM=838\0";
    const LOOP_CHANGE: &[u8] = b"change@/devices/virtual/block/loop7\0ACTION=change\0DEVPATH=/devices/virtual/block/loop7\0SUBSYSTEM=block\0DISK_MEDIA_CHANGE=1\0MAJOR=7\0MINOR=7\0DEVNAME=loop7\0DEVTYPE=disk\0DISKSEQ=13\0SEQNUM=841\0";
    // Synthetic events the kernel sent for `echo ACTION > /sys/.../uevent` (what coldplug
    // by uevent replay would see): a virtio PCI device and its virtio child with their
    // MODALIAS, a platform device with a UUID and argument, a tty bound.
    const PCI_ADD: &[u8] = b"add@/devices/pci0000:00/0000:00:02.0\0ACTION=add\0DEVPATH=/devices/pci0000:00/0000:00:02.0\0SUBSYSTEM=pci\0SYNTH_UUID=0\0DRIVER=virtio-pci\0PCI_CLASS=18000\0PCI_ID=1AF4:1042\0PCI_SUBSYS_ID=1AF4:1042\0PCI_SLOT_NAME=0000:00:02.0\0MODALIAS=pci:v00001AF4d00001042sv00001AF4sd00001042bc01sc80i00\0SEQNUM=823\0";
    const VIRTIO_ADD: &[u8] = b"add@/devices/pci0000:00/0000:00:02.0/virtio1\0ACTION=add\0DEVPATH=/devices/pci0000:00/0000:00:02.0/virtio1\0SUBSYSTEM=virtio\0SYNTH_UUID=0\0DRIVER=virtio_blk\0MODALIAS=virtio:d00000002v00001AF4\0SEQNUM=824\0";
    const PLATFORM_ADD: &[u8] = b"add@/devices/platform/serial8250\0ACTION=add\0DEVPATH=/devices/platform/serial8250\0SUBSYSTEM=platform\0SYNTH_UUID=3b2a5f4e-1d7c-4e7b-9a3e-0c9f1e6d2b10\0SYNTH_ARG_KEEL=1\0DRIVER=serial8250\0MODALIAS=platform:serial8250\0SEQNUM=827\0";
    const TTY_BIND: &[u8] = b"bind@/devices/pnp0/00:00/00:00:0/00:00:0.0/tty/ttyS0\0ACTION=bind\0DEVPATH=/devices/pnp0/00:00/00:00:0/00:00:0.0/tty/ttyS0\0SUBSYSTEM=tty\0SYNTH_UUID=0\0MAJOR=4\0MINOR=64\0DEVNAME=ttyS0\0SEQNUM=828\0";

    const ALL: [&[u8]; 8] = [TAP_ADD, TAP_MOVE, TAP_REMOVE, LOOP_CHANGE, PCI_ADD, VIRTIO_ADD, PLATFORM_ADD, TTY_BIND];

    /// What udevd sends on group 2, built from systemd's device-monitor.c (not captured:
    /// no udevd runs here): "libudev\0", magic 0xfeedcafe big-endian, header size 40,
    /// properties offset 40 and length, two hashes and a bloom filter, then the properties.
    fn udev_message() -> Vec<u8> {
        let props = b"ACTION=add\0DEVPATH=/devices/virtual/net/keeltest0\0SUBSYSTEM=net\0SEQNUM=832\0USEC_INITIALIZED=1234\0";
        let mut m = b"libudev\0".to_vec();
        m.extend_from_slice(&0xfeed_cafe_u32.to_be_bytes());
        for word in [40u32, 40, props.len() as u32, 0x1234_5678, 0, 0, 0] {
            m.extend_from_slice(&word.to_ne_bytes());
        }
        m.extend_from_slice(props);
        m
    }

    #[test]
    fn parses_captured_events() {
        let e = Uevent::from_bytes(TAP_ADD).unwrap();
        assert_eq!(e.action, Action::Add);
        assert_eq!(e.devpath, b"/devices/virtual/net/keeltest0");
        assert_eq!(e.subsystem(), Some(&b"net"[..]));
        assert_eq!(e.get(b"INTERFACE"), Some(&b"keeltest0"[..]));
        assert_eq!(e.seqnum(), Some(832));
        assert_eq!(e.modalias(), None);

        let e = Uevent::from_bytes(TAP_MOVE).unwrap();
        assert_eq!(e.action, Action::Move);
        assert_eq!(e.get(b"DEVPATH_OLD"), Some(&b"/devices/virtual/net/keeltest0"[..]));
        assert_eq!(Uevent::from_bytes(TAP_REMOVE).unwrap().action, Action::Remove);

        let e = Uevent::from_bytes(LOOP_CHANGE).unwrap();
        assert_eq!((e.action, e.devname(), e.devtype()), (Action::Change, Some(&b"loop7"[..]), Some(&b"disk"[..])));
        assert_eq!(e.get(b"DISK_MEDIA_CHANGE"), Some(&b"1"[..]));

        let e = Uevent::from_bytes(PCI_ADD).unwrap();
        assert_eq!(e.modalias(), Some(&b"pci:v00001AF4d00001042sv00001AF4sd00001042bc01sc80i00"[..]));
        assert_eq!(e.driver(), Some(&b"virtio-pci"[..]));
        assert_eq!(e.variables().count(), 11);
        assert_eq!(e.variables().next(), Some((&b"ACTION"[..], &b"add"[..])));
        assert_eq!(Uevent::from_bytes(VIRTIO_ADD).unwrap().modalias(), Some(&b"virtio:d00000002v00001AF4"[..]));
        let e = Uevent::from_bytes(PLATFORM_ADD).unwrap();
        assert_eq!(e.get(b"SYNTH_ARG_KEEL"), Some(&b"1"[..]));
        assert_eq!(e.modalias(), Some(&b"platform:serial8250"[..]));
        let e = Uevent::from_bytes(TTY_BIND).unwrap();
        assert_eq!((e.action, e.devname()), (Action::Bind, Some(&b"ttyS0"[..])));
    }

    #[test]
    fn the_view_agrees_with_the_value_and_emit_round_trips() {
        for msg in ALL {
            let p = Packet::new_checked(msg).unwrap();
            let e = Uevent::parse(&p).unwrap();
            assert_eq!(p.action_bytes(), e.action.as_bytes());
            assert_eq!(p.devpath(), e.devpath);
            assert_eq!(e.get(b"ACTION"), Some(e.action.as_bytes()));
            assert_eq!(e.get(b"DEVPATH"), Some(e.devpath));
            assert_eq!(e.buffer_len(), msg.len());
            let mut out = [0u8; MAX_MESSAGE];
            assert_eq!(e.emit(&mut out), Ok(msg.len()));
            assert_eq!(&out[..msg.len()], msg);
            assert_eq!(e.emit(&mut out[..msg.len() - 1]), Err(Error::BufferTooSmall));
        }
    }

    #[test]
    fn udev_messages_are_recognized_and_skipped() {
        assert_eq!(Uevent::from_bytes(&udev_message()), Err(Error::FromUdev));
        assert_eq!(Packet::new_checked(&b"libudev\0"[..]).unwrap_err(), Error::FromUdev);
    }

    #[test]
    fn bad_messages_are_errors() {
        use Error::*;
        let cases: &[(&[u8], Error)] = &[
            (b"", Truncated),
            (b"add@/devices/x", Truncated),
            (b"add /devices/x\0", BadHeader),
            (b"add@\0", BadHeader),
            (b"add@/\0", BadHeader),
            (b"add@devices/x\0", BadHeader),
            (b"@/devices/x\0", UnknownAction),
            (b"plug@/devices/x\0", UnknownAction),
            (b"ADD@/devices/x\0", UnknownAction),
            (b"add@/devices/x\0ACTION=add", Truncated),
            (b"add@/devices/x\0\0", BadVariable),
            (b"add@/devices/x\0ACTION=add\0\0", BadVariable),
            (b"add@/devices/x\0NOEQUALS\0", BadVariable),
            (b"add@/devices/x\0=value\0", BadVariable),
            (b"add@/devices/x\0BAD KEY=1\0", BadVariable),
            (b"add@/devices/x\0\xffKEY=1\0", BadVariable),
            (b"add@/devices/x\0ACTION=remove\0", Inconsistent),
            (b"add@/devices/x\0DEVPATH=/devices/y\0", Inconsistent),
        ];
        for &(msg, want) in cases {
            assert_eq!(Uevent::from_bytes(msg), Err(want), "{:?}", String::from_utf8_lossy(msg));
        }
        // Minimal but valid: no variables at all; a value may be empty or hold `=` and blanks.
        let e = Uevent::from_bytes(b"online@/devices/system/cpu/cpu1\0").unwrap();
        assert_eq!((e.action, e.subsystem(), e.seqnum()), (Action::Online, None, None));
        let e = Uevent::from_bytes(b"add@/d\0A=\0B=x=y z\0SEQNUM=18446744073709551616\0").unwrap();
        assert_eq!((e.get(b"A"), e.get(b"B"), e.seqnum()), (Some(&b""[..]), Some(&b"x=y z"[..]), None));
        assert_eq!(Uevent::from_bytes(b"add@/d\0SEQNUM=1x\0").unwrap().seqnum(), None);
        assert_eq!(Uevent::from_bytes(b"add@/d\0SEQNUM=18446744073709551615\0").unwrap().seqnum(), Some(u64::MAX));
    }

    #[test]
    fn every_action_names_itself() {
        for (name, action) in ACTIONS {
            assert_eq!(Action::parse(name), Some(action));
            assert_eq!(action.as_bytes(), name);
        }
    }

    use keel_proto::testutil::XorShift;

    #[test]
    fn random_and_mutated_input_never_panics() {
        let mut rng = XorShift(0x5eed_0fae_e7e7);
        let alphabet = b"add@/=\0AXSEQNUM\xff lib";
        let udev = udev_message();
        for round in 0..20000 {
            let mut msg = ALL[round % ALL.len()].to_vec();
            match round % 3 {
                0 => msg = (0..rng.below(64)).map(|_| alphabet[rng.below(alphabet.len())]).collect(),
                1 if round % 7 == 0 => msg = udev.clone(),
                _ => {}
            }
            for _ in 0..rng.below(4) {
                if msg.is_empty() {
                    break;
                }
                let at = rng.below(msg.len());
                match rng.below(3) {
                    0 => msg[at] = rng.next() as u8,
                    1 => msg[at] = alphabet[rng.below(alphabet.len())],
                    _ => msg.truncate(at),
                }
            }
            let packet = Packet::new_unchecked(&msg[..]);
            let _ = (packet.action_bytes(), packet.devpath(), packet.variables());
            if let Ok(e) = Uevent::from_bytes(&msg) {
                assert_eq!(e.buffer_len(), msg.len());
                assert!(e.variables().all(|(k, _)| !k.is_empty()));
                let _ = (e.subsystem(), e.modalias(), e.seqnum());
            }
        }
    }

    /// The socket opens on a kernel with netlink (every Linux), and an event this test
    /// causes arrives: writing `change` to a uevent file makes the kernel send one. Needs
    /// root and a writable /sys, as the tests have.
    #[test]
    fn socket_receives_a_kernel_event() {
        let socket = UeventSocket::open(1 << 20).expect("NETLINK_KOBJECT_UEVENT socket");
        let mut buf = [0u8; MAX_MESSAGE];
        while let Ok(Received::Message(_)) = socket.recv(&mut buf) {}
        // Any device: the first block device's uevent, as `udevadm trigger` would do.
        let dev = std::fs::read_dir("/sys/class/block").unwrap().flatten().next().expect("a block device").path();
        let uuid = "7c1e2d9a-0b3f-4c55-8e21-6d4f0a9b1c3e";
        std::fs::write(dev.join("uevent"), format!("change {uuid}")).unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        loop {
            match socket.recv(&mut buf).unwrap() {
                Received::Message(m) => {
                    let e = Uevent::from_bytes(m).unwrap();
                    if e.get(b"SYNTH_UUID") == Some(uuid.as_bytes()) {
                        assert_eq!(e.action, Action::Change);
                        assert_eq!(e.subsystem(), Some(&b"block"[..]));
                        return;
                    }
                }
                Received::Drained => std::thread::sleep(std::time::Duration::from_millis(10)),
                other => panic!("{other:?}"),
            }
            assert!(std::time::Instant::now() < deadline, "no uevent within 5 s");
        }
    }
}
