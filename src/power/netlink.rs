//! Netlink messages and attributes, the generic-netlink header: checked views over
//! caller-owned bytes, smoltcp-style. `NlPacket::new_checked` validates `nlmsg_len` once,
//! and no getter panics after it; `messages` and `attrs` walk buffers and stop at the
//! first bad length (it cannot be trusted to find the next). Used by `nlctrl` (family
//! lookup) and `acpi` (events). Netlink is in host byte order; keel's targets (x86_64,
//! aarch64) are little-endian, which the test vectors assume.

use crate::log::Errno;
use linux_raw_sys::netlink as nl;
use rustix::io::Errno as E;

/// Byte offsets of the headers.
pub mod field {
    pub type Field = core::ops::Range<usize>;
    // struct nlmsghdr (16 bytes)
    pub const NLMSG_LEN: Field = 0..4;
    pub const NLMSG_TYPE: Field = 4..6;
    pub const NLMSG_FLAGS: Field = 6..8;
    pub const NLMSG_SEQ: Field = 8..12;
    pub const NLMSG_PID: Field = 12..16;
    // struct genlmsghdr (4 bytes), at the start of the netlink payload
    pub const GENL_CMD: usize = 0;
    pub const GENL_VERSION: usize = 1;
    pub const GENL_RESERVED: Field = 2..4;
    // struct nlattr (4 bytes), then the value, padded to 4
    pub const NLA_LEN: Field = 0..2;
    pub const NLA_TYPE: Field = 2..4;
    // NLMSG_ERROR payload: int error, then the request's header
    pub const ERROR_CODE: Field = 0..4;
}

pub const NLMSG_HDR_LEN: usize = core::mem::size_of::<nl::nlmsghdr>();
/// struct genlmsghdr (linux/genetlink.h; not in linux-raw-sys): cmd, version, reserved u16.
pub const GENL_HDR_LEN: usize = 4;
pub const NLA_HDR_LEN: usize = core::mem::size_of::<nl::nlattr>();
pub const NLMSG_NOOP: u16 = nl::NLMSG_NOOP as u16;
pub const NLMSG_ERROR: u16 = nl::NLMSG_ERROR as u16;
pub const NLMSG_DONE: u16 = nl::NLMSG_DONE as u16;
pub const NLM_F_REQUEST: u16 = nl::NLM_F_REQUEST as u16;
/// nlattr type bits without NLA_F_NESTED and NLA_F_NET_BYTEORDER.
const NLA_TYPE_MASK: u16 = nl::NLA_TYPE_MASK as u16;
const _: () = assert!(NLMSG_HDR_LEN == 16 && NLA_HDR_LEN == 4 && NLA_TYPE_MASK == 0x3fff);

/// What is wrong with a message, or what the kernel answered.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Error {
    /// Fewer bytes than a header needs, or than a length field claims.
    Truncated,
    /// A length field smaller than its own header.
    BadLength,
    /// NLMSG_ERROR with this errno (ENOENT: no such family, e.g. a kernel without ACPI).
    Kernel(i32),
    /// Not the message asked for (another type, family or command).
    Unexpected,
    /// A required attribute is absent.
    MissingAttr,
    /// The output buffer is smaller than `buffer_len()`.
    BufferTooSmall,
    /// A name too long for its field, or holding a NUL.
    BadName,
}

impl ufmt::uDisplay for Error {
    fn fmt<W: ufmt::uWrite + ?Sized>(&self, f: &mut ufmt::Formatter<'_, W>) -> Result<(), W::Error> {
        match *self {
            Error::Truncated => f.write_str("truncated message"),
            Error::BadLength => f.write_str("bad length field"),
            // Clamped: from_raw_os_error asserts 1..=4095, and the number is the message's.
            Error::Kernel(errno) => ufmt::uwrite!(f, "kernel answered {}", Errno(E::from_raw_os_error(errno.clamp(1, 4095)))),
            Error::Unexpected => f.write_str("unexpected message"),
            Error::MissingAttr => f.write_str("missing attribute"),
            Error::BufferTooSmall => f.write_str("buffer too small"),
            Error::BadName => f.write_str("bad name"),
        }
    }
}

pub(crate) const fn align4(len: usize) -> usize {
    (len + 3) & !3
}

/// The field's bytes, zeros where the buffer is short (a checked view never sees them).
fn array<const N: usize>(b: &[u8], at: field::Field) -> [u8; N] {
    b.get(at).and_then(|s| s.try_into().ok()).unwrap_or([0; N])
}

pub(crate) fn u16_at(b: &[u8], at: field::Field) -> u16 {
    u16::from_ne_bytes(array(b, at))
}

pub(crate) fn u32_at(b: &[u8], at: field::Field) -> u32 {
    u32::from_ne_bytes(array(b, at))
}

/// A C string in a fixed field: the bytes before the first NUL (all of them if none).
pub(crate) fn c_field(b: &[u8]) -> &[u8] {
    b.split(|&c| c == 0).next().unwrap_or_default()
}

/// A view of one netlink message. After `new_checked` no getter panics.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct NlPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> NlPacket<T> {
    /// A view whose getters may panic until `check_len` has passed: use `new_checked`.
    pub const fn new_unchecked(buffer: T) -> Self {
        NlPacket { buffer }
    }

    pub fn new_checked(buffer: T) -> Result<Self, Error> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    /// The header fits, and `nlmsg_len` covers the header and no more than the buffer.
    pub fn check_len(&self) -> Result<(), Error> {
        let have = self.buffer.as_ref().len();
        if have < NLMSG_HDR_LEN {
            return Err(Error::Truncated);
        }
        let len = self.msg_len() as usize;
        if len < NLMSG_HDR_LEN {
            Err(Error::BadLength)
        } else if len > have {
            Err(Error::Truncated)
        } else {
            Ok(())
        }
    }

    pub fn msg_len(&self) -> u32 {
        u32_at(self.buffer.as_ref(), field::NLMSG_LEN)
    }
    pub fn msg_type(&self) -> u16 {
        u16_at(self.buffer.as_ref(), field::NLMSG_TYPE)
    }
    pub fn flags(&self) -> u16 {
        u16_at(self.buffer.as_ref(), field::NLMSG_FLAGS)
    }
    pub fn seq(&self) -> u32 {
        u32_at(self.buffer.as_ref(), field::NLMSG_SEQ)
    }
    pub fn pid(&self) -> u32 {
        u32_at(self.buffer.as_ref(), field::NLMSG_PID)
    }

    /// The bytes after the header, up to `nlmsg_len`.
    pub fn payload(&self) -> &[u8] {
        self.buffer.as_ref().get(NLMSG_HDR_LEN..self.msg_len() as usize).unwrap_or_default()
    }

    /// For NLMSG_ERROR: the errno (positive; 0 is an acknowledgement).
    pub fn error_code(&self) -> Result<i32, Error> {
        let p = self.payload();
        if p.len() < 4 {
            return Err(Error::Truncated);
        }
        Ok((u32_at(p, field::ERROR_CODE) as i32).wrapping_neg())
    }
}

impl<'a> NlPacket<&'a [u8]> {
    /// For generic netlink: (cmd, version, attributes), borrowed for the buffer's lifetime.
    pub fn genl(&self) -> Result<(u8, u8, &'a [u8]), Error> {
        let p = self.buffer.get(NLMSG_HDR_LEN..self.msg_len() as usize).unwrap_or_default();
        match p {
            [cmd, version, _, _, attrs @ ..] => Ok((*cmd, *version, attrs)),
            _ => Err(Error::Truncated),
        }
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> NlPacket<T> {
    /// Write the 16-byte header (and a zeroed genl header if `genl` is Some((cmd, version))).
    /// The caller has checked the buffer holds `len` bytes.
    pub(crate) fn emit_header(&mut self, len: usize, msg_type: u16, flags: u16, seq: u32, genl: (u8, u8)) {
        let b = self.buffer.as_mut();
        b[field::NLMSG_LEN].copy_from_slice(&(len as u32).to_ne_bytes());
        b[field::NLMSG_TYPE].copy_from_slice(&msg_type.to_ne_bytes());
        b[field::NLMSG_FLAGS].copy_from_slice(&flags.to_ne_bytes());
        b[field::NLMSG_SEQ].copy_from_slice(&seq.to_ne_bytes());
        b[field::NLMSG_PID].copy_from_slice(&0u32.to_ne_bytes());
        let g = &mut b[NLMSG_HDR_LEN..];
        g[field::GENL_CMD] = genl.0;
        g[field::GENL_VERSION] = genl.1;
        g[field::GENL_RESERVED].fill(0);
    }
}

/// The messages in one buffer, each checked; the first bad one ends the walk (its length
/// cannot be trusted to find the next).
#[inline(never)] // smaller out of line (measured)
pub fn messages(buf: &[u8]) -> impl Iterator<Item = Result<NlPacket<&[u8]>, Error>> {
    let mut rest = buf;
    core::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        match NlPacket::new_checked(rest) {
            Err(e) => {
                rest = &[];
                Some(Err(e))
            }
            Ok(p) => {
                let len = p.msg_len() as usize;
                let msg = &rest[..len];
                rest = &rest[align4(len).min(rest.len())..];
                Some(Ok(NlPacket::new_unchecked(msg)))
            }
        }
    })
}

/// One attribute: its type (flags masked off) and value.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct NlAttr<'a> {
    pub kind: u16,
    pub value: &'a [u8],
}

/// The attributes in `buf` (4-byte aligned TLVs); the first bad one ends the walk.
pub fn attrs(buf: &[u8]) -> impl Iterator<Item = Result<NlAttr<'_>, Error>> {
    let mut rest = buf;
    core::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let checked = if rest.len() < NLA_HDR_LEN {
            Err(Error::Truncated)
        } else {
            match u16_at(rest, field::NLA_LEN) as usize {
                len if len < NLA_HDR_LEN => Err(Error::BadLength),
                len if len > rest.len() => Err(Error::Truncated),
                len => Ok(len),
            }
        };
        match checked {
            Err(e) => {
                rest = &[];
                Some(Err(e))
            }
            Ok(len) => {
                let attr = NlAttr { kind: u16_at(rest, field::NLA_TYPE) & NLA_TYPE_MASK, value: &rest[NLA_HDR_LEN..len] };
                rest = &rest[align4(len).min(rest.len())..];
                Some(Ok(attr))
            }
        }
    })
}

/// The first attribute of type `kind`, if any; a malformed list is an error.
pub fn find_attr(buf: &[u8], kind: u16) -> Result<Option<NlAttr<'_>>, Error> {
    for attr in attrs(buf) {
        let attr = attr?;
        if attr.kind == kind {
            return Ok(Some(attr));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attributes_align_and_mask_flags() {
        // len 5 (1 byte of value, 3 of padding), then a nested-flagged attribute.
        let buf = [5, 0, 1, 0, 0xaa, 0, 0, 0, 8, 0, 2, 0x80, 1, 2, 3, 4];
        let got: Vec<_> = attrs(&buf).collect();
        assert_eq!(got, [Ok(NlAttr { kind: 1, value: &[0xaa] }), Ok(NlAttr { kind: 2, value: &[1, 2, 3, 4] })]);
        // A last attribute without its padding is still read; trailing junk is an error.
        assert_eq!(attrs(&buf[..13]).count(), 2);
        assert_eq!(attrs(&[5, 0, 1, 0, 0xaa, 0, 0, 0, 1]).collect::<Vec<_>>()[1], Err(Error::Truncated));
        assert_eq!(attrs(&[0, 0, 1, 0]).collect::<Vec<_>>(), [Err(Error::BadLength)]);
        assert_eq!(find_attr(&buf, 3), Ok(None));
    }
}
