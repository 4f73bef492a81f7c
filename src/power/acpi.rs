//! The ACPI power button over generic netlink: the kernel's ACPI core
//! (drivers/acpi/event.c, built in whenever ACPI is on) registers the family `acpi_event`
//! with the multicast group `acpi_mc_group`; button.ko sends `button/power` events to it.
//! keel asks nlctrl for the family and group ids (`nlctrl`), joins the group and reads
//! events (`AcpiEvent`, parsed from and emitted into caller buffers, over the `netlink`
//! views). Nothing here trusts a length field it has not checked, and no input makes it
//! panic.

use crate::log::Errno;
use crate::log::say::{say, Part};
use crate::power::netlink::{c_field, find_attr, messages, u32_at, Error, NlPacket, GENL_HDR_LEN, NLA_HDR_LEN, NLMSG_HDR_LEN};
use crate::power::nlctrl::parse_family_reply;
#[cfg(test)]
use crate::power::nlctrl::GetFamily;
use rustix::fd::{AsFd, BorrowedFd, OwnedFd};
use rustix::io::Errno as E;

/// Byte offsets in struct acpi_genl_event (drivers/acpi/event.c): char device_class[20];
/// char bus_id[15]; one byte of padding (u32 alignment); u32 type at 36; u32 data at 40;
/// 44 bytes in all.
mod field {
    pub use crate::power::netlink::field::{Field, NLA_LEN, NLA_TYPE};
    pub const EVENT_CLASS: Field = 0..20;
    pub const EVENT_BUS_ID: Field = 20..35;
    pub const EVENT_TYPE: Field = 36..40;
    pub const EVENT_DATA: Field = 40..44;
}

pub const ACPI_FAMILY: &[u8] = b"acpi_event";
pub const ACPI_GROUP: &[u8] = b"acpi_mc_group";
pub const ACPI_GENL_VERSION: u8 = 1;
pub const ACPI_GENL_CMD_EVENT: u8 = 1;
pub const ACPI_GENL_ATTR_EVENT: u16 = 1;

/// One ACPI event (`struct acpi_genl_event`), e.g. `button/power LNXPWRBN:00 0x80 1`.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct AcpiEvent<'a> {
    /// Up to 20 bytes, without the NUL: `button/power`, `button/sleep`, `ac_adapter`, ...
    pub device_class: &'a [u8],
    /// Up to 15 bytes: `LNXPWRBN:00`, `PNP0C0C:00`, ...
    pub bus_id: &'a [u8],
    pub kind: u32,
    pub data: u32,
}

impl<'a> AcpiEvent<'a> {
    pub const WIRE_LEN: usize = 44;

    /// From a message of the `acpi_event` family `family`.
    pub fn parse(msg: &NlPacket<&'a [u8]>, family: u16) -> Result<AcpiEvent<'a>, Error> {
        if msg.msg_type() != family {
            return Err(Error::Unexpected);
        }
        let (cmd, _, attributes) = msg.genl()?;
        if cmd != ACPI_GENL_CMD_EVENT {
            return Err(Error::Unexpected);
        }
        let value = find_attr(attributes, ACPI_GENL_ATTR_EVENT)?.ok_or(Error::MissingAttr)?.value;
        if value.len() < Self::WIRE_LEN {
            return Err(Error::Truncated);
        }
        Ok(AcpiEvent {
            device_class: c_field(&value[field::EVENT_CLASS]),
            bus_id: c_field(&value[field::EVENT_BUS_ID]),
            kind: u32_at(value, field::EVENT_TYPE),
            data: u32_at(value, field::EVENT_DATA),
        })
    }

    /// The ACPI power button (button.ko names it `button/power`).
    pub fn is_power_button(&self) -> bool {
        self.device_class.starts_with(b"button/power")
    }

    pub fn buffer_len(&self) -> usize {
        NLMSG_HDR_LEN + GENL_HDR_LEN + NLA_HDR_LEN + Self::WIRE_LEN
    }

    /// The message the kernel multicasts for this event (acpi_bus_generate_netlink_event).
    pub fn emit(&self, family: u16, seq: u32, buf: &mut [u8]) -> Result<usize, Error> {
        let fits = |s: &[u8], field: field::Field| s.len() <= field.len() && !s.contains(&0);
        if !fits(self.device_class, field::EVENT_CLASS) || !fits(self.bus_id, field::EVENT_BUS_ID) {
            return Err(Error::BadName);
        }
        let len = self.buffer_len();
        let buf = buf.get_mut(..len).ok_or(Error::BufferTooSmall)?;
        NlPacket::new_unchecked(&mut *buf).emit_header(len, family, 0, seq, (ACPI_GENL_CMD_EVENT, ACPI_GENL_VERSION));
        let attr = &mut buf[NLMSG_HDR_LEN + GENL_HDR_LEN..];
        attr[field::NLA_LEN].copy_from_slice(&((NLA_HDR_LEN + Self::WIRE_LEN) as u16).to_ne_bytes());
        attr[field::NLA_TYPE].copy_from_slice(&ACPI_GENL_ATTR_EVENT.to_ne_bytes());
        let ev = &mut attr[NLA_HDR_LEN..];
        ev.fill(0);
        ev[..self.device_class.len()].copy_from_slice(self.device_class);
        ev[field::EVENT_BUS_ID.start..][..self.bus_id.len()].copy_from_slice(self.bus_id);
        ev[field::EVENT_TYPE].copy_from_slice(&self.kind.to_ne_bytes());
        ev[field::EVENT_DATA].copy_from_slice(&self.data.to_ne_bytes());
        Ok(len)
    }
}

/// Walk a received buffer of `acpi_event` messages: `on_event` for each event. Returns how
/// many messages were malformed or not events (skipped); a bad length ends the walk.
pub fn scan_events<'a>(buf: &'a [u8], family: u16, mut on_event: impl FnMut(&AcpiEvent<'a>)) -> usize {
    let mut skipped = 0;
    for msg in messages(buf) {
        match msg.and_then(|m| AcpiEvent::parse(&m, family)) {
            Ok(event) => on_event(&event),
            Err(_) => skipped += 1,
        }
    }
    skipped
}

/// Why the ACPI listener could not be set up.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum OpenError {
    /// A socket call failed.
    Sys(E),
    /// The family lookup failed: ENOENT means no `acpi_event` family (a kernel without ACPI,
    /// booted with acpi=off, or a device-tree machine).
    Lookup(Error),
    /// The family has no `acpi_mc_group`.
    NoGroup,
    /// nlctrl did not answer in time.
    Timeout,
}

impl From<E> for OpenError {
    fn from(e: E) -> Self {
        OpenError::Sys(e)
    }
}

impl ufmt::uDisplay for OpenError {
    fn fmt<W: ufmt::uWrite + ?Sized>(&self, f: &mut ufmt::Formatter<'_, W>) -> Result<(), W::Error> {
        match self {
            OpenError::Sys(e) => ufmt::uwrite!(f, "{}", Errno(*e)),
            OpenError::Lookup(e) => ufmt::uwrite!(f, "family lookup: {}", e),
            OpenError::NoGroup => f.write_str("no acpi_mc_group"),
            OpenError::Timeout => f.write_str("no answer from nlctrl"),
        }
    }
}

/// `GetFamily { name: ACPI_FAMILY, seq: GET_ACPI_FAMILY_SEQ }` as it emits it (a test
/// checks): sent as it is, so the emitter is not in PID 1.
const GET_ACPI_FAMILY_SEQ: u32 = 1;
const GET_ACPI_FAMILY: [u8; 36] = [
    36, 0, 0, 0, 0x10, 0, 1, 0, 1, 0, 0, 0, 0, 0, 0, 0, // nlmsghdr: nlctrl, NLM_F_REQUEST, seq 1
    3, 1, 0, 0, // genlmsghdr: CTRL_CMD_GETFAMILY, version 1
    15, 0, 2, 0, b'a', b'c', b'p', b'i', b'_', b'e', b'v', b'e', b'n', b't', 0, 0, // CTRL_ATTR_FAMILY_NAME
];

/// How long `AcpiEvents::open` waits for nlctrl (it answers at once; this is a bound).
const LOOKUP_TIMEOUT_MS: u64 = 1000;

/// A generic netlink socket joined to `acpi_mc_group`: register `as_fd()` in the event loop
/// and call `read_events` when it is readable.
pub struct AcpiEvents {
    fd: OwnedFd,
    family: u16,
}

impl AsFd for AcpiEvents {
    fn as_fd(&self) -> BorrowedFd<'_> {
        crate::sys::fd::borrow(&self.fd)
    }
}

impl AcpiEvents {
    /// Open the socket (close-on-exec, non-blocking), look up the family and group, join it.
    pub fn open() -> Result<AcpiEvents, OpenError> {
        use crate::sys::fd::socket_with;
        use rustix::net::{netlink, sendto, AddressFamily, SendFlags, SocketFlags, SocketType};
        let fd = socket_with(
            AddressFamily::NETLINK,
            SocketType::RAW,
            SocketFlags::CLOEXEC | SocketFlags::NONBLOCK,
            Some(netlink::GENERIC),
        )?;
        sendto(&fd, &GET_ACPI_FAMILY, SendFlags::empty(), &netlink::SocketAddrNetlink::new(0, 0))?;
        let (family, group) = await_family(&fd, GET_ACPI_FAMILY_SEQ)?;
        crate::sys::netlink_add_membership(fd.as_fd(), group)?;
        say(b"acpi: listening to acpi_event (family %, group %)", &[Part::N(family.into()), Part::N(group.into())]);
        Ok(AcpiEvents { fd, family })
    }

    pub fn family(&self) -> u16 {
        self.family
    }

    /// Drain the socket; `on_power` once per power-button event. Never blocks.
    #[inline(never)] // smaller out of line (measured)
    pub fn read_events(&self, mut on_power: impl FnMut()) {
        let mut buf = [0u8; 1024];
        loop {
            match rustix::net::recv(crate::sys::fd::borrow(&self.fd), &mut buf, rustix::net::RecvFlags::empty()) {
                Ok((n, _)) => {
                    let skipped = scan_events(&buf[..n.min(buf.len())], self.family, |event| {
                        if event.is_power_button() {
                            say(b"acpi: % % pressed", &[Part::T(event.device_class), Part::T(event.bus_id)]);
                            on_power();
                        }
                    });
                    if skipped > 0 {
                        say(b"acpi: skipped % malformed message(s)", &[Part::N(skipped as u64)]);
                    }
                }
                Err(E::INTR) => continue,
                Err(E::AGAIN) => return,
                // The receive queue overflowed: events were lost, the socket goes on.
                Err(E::NOBUFS) => say(b"acpi: events lost (receive queue full)", &[]),
                Err(e) => return say(b"acpi: recv: %", &[Part::E(e)]),
            }
        }
    }
}

fn await_family(fd: &OwnedFd, seq: u32) -> Result<(u16, u32), OpenError> {
    use rustix::event::{poll, PollFd, PollFlags, Timespec};
    let deadline = crate::clock::Instant::now().plus_millis(LOOKUP_TIMEOUT_MS);
    let mut buf = [0u8; 4096];
    loop {
        match rustix::net::recv(fd, &mut buf, rustix::net::RecvFlags::empty()) {
            Ok((n, _)) => {
                let Some(family) = parse_family_reply(&buf[..n.min(buf.len())], seq).map_err(OpenError::Lookup)? else {
                    continue;
                };
                let group = family.group(ACPI_GROUP).map_err(OpenError::Lookup)?.ok_or(OpenError::NoGroup)?;
                return Ok((family.id, group));
            }
            Err(E::INTR) => continue,
            Err(E::AGAIN) => {
                let now = crate::clock::Instant::now();
                if now >= deadline {
                    return Err(OpenError::Timeout);
                }
                let left = deadline.0 - now.0;
                let timeout = Timespec { tv_sec: (left / 1_000_000_000) as _, tv_nsec: (left % 1_000_000_000) as _ };
                match poll(&mut [PollFd::new(fd, PollFlags::IN)], Some(&timeout)) {
                    Ok(_) | Err(E::INTR) => continue,
                    Err(e) => return Err(OpenError::Sys(e)),
                }
            }
            Err(e) => return Err(OpenError::Sys(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::power::nlctrl::tests::{REPLY_ACPI, REPLY_ENOENT, REPLY_NLCTRL};
    use crate::power::netlink::attrs;
    use crate::power::nlctrl::{Family, GENL_ID_CTRL};

    #[test]
    fn the_family_request_is_what_getfamily_emits() {
        let mut buf = [0u8; 64];
        let len = GetFamily { name: ACPI_FAMILY, seq: GET_ACPI_FAMILY_SEQ }.emit(&mut buf).unwrap();
        assert_eq!(&buf[..len], &GET_ACPI_FAMILY[..]);
    }

    /// What acpi_bus_generate_netlink_event("button/power", "LNXPWRBN:00", 0x80, 1) sends
    /// for family 0x1a, seq 3, built field by field from drivers/acpi/event.c.
    #[rustfmt::skip]
    const POWER: [u8; 68] = [
        0x44, 0, 0, 0, 0x1a, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0, // nlmsghdr: len 68, family, flags 0, seq 3, pid 0
        1, 1, 0, 0,                                           // genlmsghdr: ACPI_GENL_CMD_EVENT, version 1
        48, 0, 1, 0,                                          // nlattr: len 4 + 44, ACPI_GENL_ATTR_EVENT
        b'b', b'u', b't', b't', b'o', b'n', b'/', b'p', b'o', b'w', b'e', b'r', 0, 0, 0, 0, 0, 0, 0, 0, // device_class[20]
        b'L', b'N', b'X', b'P', b'W', b'R', b'B', b'N', b':', b'0', b'0', 0, 0, 0, 0, // bus_id[15]
        0,                                                    // padding
        0x80, 0, 0, 0,                                        // type
        1, 0, 0, 0,                                           // data
    ];

    const AC: AcpiEvent<'static> = AcpiEvent { device_class: b"ac_adapter", bus_id: b"ACPI0003:00", kind: 0x80, data: 0 };

    fn emitted(event: &AcpiEvent, seq: u32) -> Vec<u8> {
        let mut buf = vec![0xa5; 80];
        let len = event.emit(0x1a, seq, &mut buf).unwrap();
        assert_eq!(len, 68);
        assert!(buf[68..].iter().all(|&b| b == 0xa5), "wrote past buffer_len");
        buf.truncate(len);
        buf
    }

    fn events(buf: &[u8]) -> (Vec<(Vec<u8>, bool)>, usize) {
        let mut seen = Vec::new();
        let skipped = scan_events(buf, 0x1a, |e| seen.push((e.device_class.to_vec(), e.is_power_button())));
        (seen, skipped)
    }

    #[test]
    fn power_button_event() {
        let msg = NlPacket::new_checked(&POWER[..]).unwrap();
        let event = AcpiEvent::parse(&msg, 0x1a).unwrap();
        assert_eq!(event, AcpiEvent { device_class: b"button/power", bus_id: b"LNXPWRBN:00", kind: 0x80, data: 1 });
        assert!(event.is_power_button());
        assert_eq!(emitted(&event, 3), POWER);
        // Another family's message, or another command, is not an ACPI event.
        assert_eq!(AcpiEvent::parse(&msg, 0x1b), Err(Error::Unexpected));
        let mut other = POWER;
        other[16] = 2;
        assert_eq!(AcpiEvent::parse(&NlPacket::new_checked(&other[..]).unwrap(), 0x1a), Err(Error::Unexpected));
    }

    #[test]
    fn other_events_are_not_power() {
        let bytes = emitted(&AC, 9);
        let event = AcpiEvent::parse(&NlPacket::new_checked(&bytes[..]).unwrap(), 0x1a).unwrap();
        assert_eq!(event, AC);
        assert!(!event.is_power_button());
        for class in [&b"button/sleep"[..], b"button/lid", b"button/powe", b"power"] {
            assert!(!AcpiEvent { device_class: class, ..AC }.is_power_button());
        }
        // Full-width fields with no NUL are read to their end.
        let full = AcpiEvent { device_class: b"button/power_xxxxxxx", bus_id: b"ABCDEFGHIJKLMNO", ..AC };
        let bytes = emitted(&full, 1);
        assert_eq!(AcpiEvent::parse(&NlPacket::new_checked(&bytes[..]).unwrap(), 0x1a), Ok(full));
        assert_eq!(AcpiEvent { device_class: &[b'x'; 21], ..AC }.emit(1, 1, &mut [0; 68]), Err(Error::BadName));
        assert_eq!(AC.emit(1, 1, &mut [0; 67]), Err(Error::BufferTooSmall));
    }

    #[test]
    fn several_messages_in_one_buffer() {
        let mut buf = POWER.to_vec();
        buf.extend_from_slice(&emitted(&AC, 4));
        buf.extend_from_slice(&POWER);
        let (seen, skipped) = events(&buf);
        assert_eq!(skipped, 0);
        assert_eq!(seen.iter().map(|(_, p)| *p).collect::<Vec<_>>(), [true, false, true]);
        assert_eq!(seen[1].0, b"ac_adapter");
        // A truncated last message is skipped, the ones before still count.
        let (seen, skipped) = events(&buf[..buf.len() - 1]);
        assert_eq!((seen.len(), skipped), (2, 1));
        // A short event attribute, a missing one, a bad attribute length: skipped.
        let corruptions: [fn(&mut Vec<u8>); 5] = [
            |m| m[20] = 47,  // 43 bytes of event
            |m| m[22] = 2,   // another attribute type
            |m| m[20] = 2,   // attribute length below its header
            |m| m[20] = 200, // attribute length past the message
            |m| m[0] = 19,   // 3 bytes of genl header; the next message would start mid-way
        ];
        for corrupt in corruptions {
            let mut first = POWER.to_vec();
            corrupt(&mut first);
            first.extend_from_slice(&POWER);
            let (seen, skipped) = events(&first);
            assert!(skipped >= 1, "{first:?}");
            assert!(seen.len() <= 1, "{first:?}");
        }
        // An oversized nlmsg_len hides nothing: the walk stops.
        let mut big = buf.clone();
        big[0] = 0xff;
        assert_eq!(events(&big), (vec![], 1));
    }

    #[test]
    fn open_errors_are_clear() {
        let mut l = crate::log::Line::new();
        ufmt::uwrite!(l, "{}", OpenError::Lookup(Error::Kernel(2))).unwrap();
        assert_eq!(l.as_bytes(), b"family lookup: kernel answered ENOENT");
    }

    /// then ENOENT, or no netlink at all, and the test only checks nothing panics).
    #[test]
    fn opens_and_joins_where_the_kernel_has_acpi() {
        match AcpiEvents::open() {
            Ok(acpi) => {
                assert!(acpi.family() >= GENL_ID_CTRL);
                let mut presses = 0;
                acpi.read_events(|| presses += 1); // non-blocking: returns at once
                assert_eq!(presses, 0);
            }
            Err(OpenError::Lookup(Error::Kernel(errno))) => assert_eq!(errno, 2),
            Err(e) => eprintln!("no generic netlink here: {e:?}"),
        }
    }

    use keel_proto::testutil::XorShift;

    /// Everything a decoder can be given, exercised once; also checks parse → emit → parse.
    fn decode_all(buf: &[u8]) {
        for msg in messages(buf).flatten() {
            assert!(msg.msg_len() as usize <= buf.len());
            if let Ok(event) = AcpiEvent::parse(&msg, 0x1a) {
                let mut out = [0xa5u8; 68];
                assert_eq!(event.emit(0x1a, msg.seq(), &mut out), Ok(68));
                let again = NlPacket::new_checked(&out[..]).unwrap();
                assert_eq!(AcpiEvent::parse(&again, 0x1a), Ok(event));
            }
            if let Ok(f) = Family::parse(&msg) {
                let _ = f.group(ACPI_GROUP);
            }
            let _ = msg.error_code();
        }
        if let Ok(Some(f)) = parse_family_reply(buf, 7) {
            let _ = f.group(ACPI_GROUP);
        }
        let _ = scan_events(buf, 0x1a, |e| {
            e.is_power_button();
        });
        let _ = attrs(buf).count();
    }

    #[test]
    fn random_and_mutated_input_never_panics() {
        let mut rng = XorShift(0x2545_f491_4f6c_dd1d);
        let mut seeds: Vec<Vec<u8>> = vec![REPLY_ACPI.to_vec(), REPLY_NLCTRL.to_vec(), REPLY_ENOENT.to_vec(), POWER.to_vec()];
        let mut two = POWER.to_vec();
        two.extend_from_slice(&emitted(&AC, 2));
        seeds.push(two);
        for round in 0..20_000 {
            let mut buf = if round % 4 == 0 {
                (0..rng.below(160)).map(|_| rng.next() as u8).collect()
            } else {
                seeds[rng.below(seeds.len())].clone()
            };
            for _ in 0..rng.below(6) {
                if buf.is_empty() {
                    break;
                }
                let at = rng.below(buf.len());
                match rng.below(4) {
                    0 => buf[at] = rng.next() as u8,
                    1 => buf[at] = [0, 1, 3, 4, 5, 16, 0x7f, 0xff][rng.below(8)],
                    2 => buf.truncate(at),
                    _ => buf.insert(at, rng.next() as u8),
                }
            }
            decode_all(&buf);
        }
    }
}
