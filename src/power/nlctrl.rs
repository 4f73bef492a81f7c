//! nlctrl, generic netlink's own family: resolving a family name (`acpi_event`) to its
//! id and multicast group ids with CTRL_CMD_GETFAMILY. The request is emitted into a
//! caller buffer (`GetFamily`), the answer parsed from one (`parse_family_reply`, `Family`).
//! Constants from linux/genetlink.h (linux-raw-sys does not have them).

use crate::power::netlink::{attrs, c_field, messages, u16_at, u32_at, align4, Error, NlPacket};
use crate::power::netlink::{GENL_HDR_LEN, NLA_HDR_LEN, NLMSG_DONE, NLMSG_ERROR, NLMSG_HDR_LEN, NLMSG_NOOP, NLM_F_REQUEST};
use crate::power::netlink::field;

pub const GENL_ID_CTRL: u16 = 0x10;
pub const CTRL_CMD_NEWFAMILY: u8 = 1;
pub const CTRL_CMD_GETFAMILY: u8 = 3;
pub const CTRL_ATTR_FAMILY_ID: u16 = 1;
pub const CTRL_ATTR_FAMILY_NAME: u16 = 2;
pub const CTRL_ATTR_MCAST_GROUPS: u16 = 7;
pub const CTRL_ATTR_MCAST_GRP_NAME: u16 = 1;
pub const CTRL_ATTR_MCAST_GRP_ID: u16 = 2;
/// GENL_NAMSIZ: family names are at most 15 bytes and a NUL.
pub const GENL_NAMSIZ: usize = 16;

/// CTRL_CMD_GETFAMILY for one family name, to nlctrl.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct GetFamily<'a> {
    pub name: &'a [u8],
    pub seq: u32,
}

impl GetFamily<'_> {
    pub fn buffer_len(&self) -> usize {
        NLMSG_HDR_LEN + GENL_HDR_LEN + align4(NLA_HDR_LEN + self.name.len() + 1)
    }

    /// Write exactly `buffer_len()` bytes at the start of `buf`; returns that length.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, Error> {
        if self.name.is_empty() || self.name.len() >= GENL_NAMSIZ || self.name.contains(&0) {
            return Err(Error::BadName);
        }
        let len = self.buffer_len();
        let buf = buf.get_mut(..len).ok_or(Error::BufferTooSmall)?;
        NlPacket::new_unchecked(&mut *buf).emit_header(len, GENL_ID_CTRL, NLM_F_REQUEST, self.seq, (CTRL_CMD_GETFAMILY, 1));
        let attr = &mut buf[NLMSG_HDR_LEN + GENL_HDR_LEN..];
        let attr_len = NLA_HDR_LEN + self.name.len() + 1;
        attr[field::NLA_LEN].copy_from_slice(&(attr_len as u16).to_ne_bytes());
        attr[field::NLA_TYPE].copy_from_slice(&CTRL_ATTR_FAMILY_NAME.to_ne_bytes());
        attr[NLA_HDR_LEN..NLA_HDR_LEN + self.name.len()].copy_from_slice(self.name);
        // The NUL and the padding.
        attr[NLA_HDR_LEN + self.name.len()..].fill(0);
        Ok(len)
    }
}

/// nlctrl's CTRL_CMD_NEWFAMILY answer: the family id and its multicast groups.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Family<'a> {
    pub id: u16,
    /// The CTRL_ATTR_MCAST_GROUPS value (nested), empty if the family has none.
    groups: &'a [u8],
}

impl<'a> Family<'a> {
    pub fn parse(msg: &NlPacket<&'a [u8]>) -> Result<Family<'a>, Error> {
        if msg.msg_type() != GENL_ID_CTRL {
            return Err(Error::Unexpected);
        }
        let (cmd, _, attributes) = msg.genl()?;
        if cmd != CTRL_CMD_NEWFAMILY {
            return Err(Error::Unexpected);
        }
        let mut id = None;
        let mut groups: &[u8] = &[];
        for attr in attrs(attributes) {
            let attr = attr?;
            match attr.kind {
                CTRL_ATTR_FAMILY_ID if attr.value.len() >= 2 => id = Some(u16_at(attr.value, 0..2)),
                CTRL_ATTR_FAMILY_ID => return Err(Error::Truncated),
                CTRL_ATTR_MCAST_GROUPS => groups = attr.value,
                _ => {}
            }
        }
        Ok(Family { id: id.ok_or(Error::MissingAttr)?, groups })
    }

    /// The id of the multicast group called `name`, if the family has it.
    pub fn group(&self, name: &[u8]) -> Result<Option<u32>, Error> {
        // An array: each element nested, its type the index; inside, name and id.
        for entry in attrs(self.groups) {
            let (mut grp_name, mut grp_id) = (None, None);
            for attr in attrs(entry?.value) {
                let attr = attr?;
                match attr.kind {
                    CTRL_ATTR_MCAST_GRP_NAME => grp_name = Some(c_field(attr.value)),
                    CTRL_ATTR_MCAST_GRP_ID if attr.value.len() >= 4 => grp_id = Some(u32_at(attr.value, 0..4)),
                    CTRL_ATTR_MCAST_GRP_ID => return Err(Error::Truncated),
                    _ => {}
                }
            }
            if let (Some(n), Some(id)) = (grp_name, grp_id) {
                if n == name {
                    return Ok(Some(id));
                }
            }
        }
        Ok(None)
    }
}

/// The answer to GetFamily `seq` in a received buffer: Ok(Some) with the family,
/// Err(Kernel(errno)) for an NLMSG_ERROR, Ok(None) if the buffer holds neither (messages
/// of other sequence numbers, acknowledgements, NLMSG_NOOP/DONE are passed over).
pub fn parse_family_reply(buf: &[u8], seq: u32) -> Result<Option<Family<'_>>, Error> {
    for msg in messages(buf) {
        let msg = msg?;
        if msg.seq() != seq {
            continue;
        }
        match msg.msg_type() {
            NLMSG_ERROR => match msg.error_code()? {
                0 => continue,
                errno => return Err(Error::Kernel(errno)),
            },
            NLMSG_NOOP | NLMSG_DONE => continue,
            _ => return Family::parse(&msg).map(Some),
        }
    }
    Ok(None)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::power::acpi::{ACPI_FAMILY, ACPI_GROUP};
    use crate::power::netlink::find_attr;

    /// CTRL_CMD_GETFAMILY "acpi_event", seq 7, as sent by a capture program on Linux 6.18.
    pub const GETFAMILY_ACPI: [u8; 36] = [
        0x24, 0x00, 0x00, 0x00, 0x10, 0x00, 0x01, 0x00, 0x07, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, //
        0x03, 0x01, 0x00, 0x00, 0x0f, 0x00, 0x02, 0x00, 0x61, 0x63, 0x70, 0x69, 0x5f, 0x65, 0x76, 0x65, //
        0x6e, 0x74, 0x00, 0x00,
    ];

    /// The kernel's answer (Linux 6.18, captured): family id 0x1a, version 1, hdrsize 0,
    /// maxattr 1, one multicast group "acpi_mc_group" with id 7.
    pub const REPLY_ACPI: [u8; 104] = [
        0x68, 0x00, 0x00, 0x00, 0x10, 0x00, 0x00, 0x00, 0x07, 0x00, 0x00, 0x00, 0xa9, 0x50, 0x00, 0x00, //
        0x01, 0x02, 0x00, 0x00, 0x0f, 0x00, 0x02, 0x00, 0x61, 0x63, 0x70, 0x69, 0x5f, 0x65, 0x76, 0x65, //
        0x6e, 0x74, 0x00, 0x00, 0x06, 0x00, 0x01, 0x00, 0x1a, 0x00, 0x00, 0x00, 0x08, 0x00, 0x03, 0x00, //
        0x01, 0x00, 0x00, 0x00, 0x08, 0x00, 0x04, 0x00, 0x00, 0x00, 0x00, 0x00, 0x08, 0x00, 0x05, 0x00, //
        0x01, 0x00, 0x00, 0x00, 0x24, 0x00, 0x07, 0x00, 0x20, 0x00, 0x01, 0x00, 0x08, 0x00, 0x02, 0x00, //
        0x07, 0x00, 0x00, 0x00, 0x12, 0x00, 0x01, 0x00, 0x61, 0x63, 0x70, 0x69, 0x5f, 0x6d, 0x63, 0x5f, //
        0x67, 0x72, 0x6f, 0x75, 0x70, 0x00, 0x00, 0x00,
    ];

    /// The answer for "nlctrl" itself (captured): id 0x10, with CTRL_ATTR_OPS (nested) and
    /// group "notify" id 0x10.
    pub const REPLY_NLCTRL: [u8; 136] = [
        0x88, 0x00, 0x00, 0x00, 0x10, 0x00, 0x00, 0x00, 0x07, 0x00, 0x00, 0x00, 0xa9, 0x50, 0x00, 0x00, //
        0x01, 0x02, 0x00, 0x00, 0x0b, 0x00, 0x02, 0x00, 0x6e, 0x6c, 0x63, 0x74, 0x72, 0x6c, 0x00, 0x00, //
        0x06, 0x00, 0x01, 0x00, 0x10, 0x00, 0x00, 0x00, 0x08, 0x00, 0x03, 0x00, 0x02, 0x00, 0x00, 0x00, //
        0x08, 0x00, 0x04, 0x00, 0x00, 0x00, 0x00, 0x00, 0x08, 0x00, 0x05, 0x00, 0x00, 0x00, 0x00, 0x00, //
        0x2c, 0x00, 0x06, 0x00, 0x14, 0x00, 0x01, 0x00, 0x08, 0x00, 0x01, 0x00, 0x03, 0x00, 0x00, 0x00, //
        0x08, 0x00, 0x02, 0x00, 0x0e, 0x00, 0x00, 0x00, 0x14, 0x00, 0x02, 0x00, 0x08, 0x00, 0x01, 0x00, //
        0x0a, 0x00, 0x00, 0x00, 0x08, 0x00, 0x02, 0x00, 0x0c, 0x00, 0x00, 0x00, 0x1c, 0x00, 0x07, 0x00, //
        0x18, 0x00, 0x01, 0x00, 0x08, 0x00, 0x02, 0x00, 0x10, 0x00, 0x00, 0x00, 0x0b, 0x00, 0x01, 0x00, //
        0x6e, 0x6f, 0x74, 0x69, 0x66, 0x79, 0x00, 0x00,
    ];

    /// The answer for an unknown family (captured): NLMSG_ERROR -2 (ENOENT) and the request.
    pub const REPLY_ENOENT: [u8; 60] = [
        0x3c, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x07, 0x00, 0x00, 0x00, 0xa9, 0x50, 0x00, 0x00, //
        0xfe, 0xff, 0xff, 0xff, 0x28, 0x00, 0x00, 0x00, 0x10, 0x00, 0x01, 0x00, 0x07, 0x00, 0x00, 0x00, //
        0x00, 0x00, 0x00, 0x00, 0x03, 0x01, 0x00, 0x00, 0x11, 0x00, 0x02, 0x00, 0x6e, 0x6f, 0x73, 0x75, //
        0x63, 0x68, 0x66, 0x61, 0x6d, 0x69, 0x6c, 0x79, 0x00, 0x00, 0x00, 0x00,
    ];

    #[test]
    fn emits_getfamily_like_the_real_request() {
        let req = GetFamily { name: ACPI_FAMILY, seq: 7 };
        assert_eq!(req.buffer_len(), 36);
        let mut buf = [0xa5u8; 48];
        assert_eq!(req.emit(&mut buf), Ok(36));
        assert_eq!(buf[..36], GETFAMILY_ACPI);
        assert!(buf[36..].iter().all(|&b| b == 0xa5));
        // Exactly buffer_len() is enough; one less is an error, not a panic.
        assert_eq!(req.emit(&mut [0xa5; 36]), Ok(36));
        assert_eq!(req.emit(&mut [0xa5; 35]), Err(Error::BufferTooSmall));
        assert_eq!(GetFamily { name: b"sixteen_bytes_xx", seq: 1 }.emit(&mut [0; 64]), Err(Error::BadName));
        assert_eq!(GetFamily { name: b"", seq: 1 }.emit(&mut [0; 64]), Err(Error::BadName));
        assert_eq!(GetFamily { name: b"a\0b", seq: 1 }.emit(&mut [0; 64]), Err(Error::BadName));
        // Our own request parses back.
        let msg = NlPacket::new_checked(&GETFAMILY_ACPI[..]).unwrap();
        assert_eq!((msg.msg_type(), msg.flags(), msg.seq(), msg.pid()), (GENL_ID_CTRL, NLM_F_REQUEST, 7, 0));
        let (cmd, _, a) = msg.genl().unwrap();
        assert_eq!(cmd, CTRL_CMD_GETFAMILY);
        assert_eq!(find_attr(a, CTRL_ATTR_FAMILY_NAME).unwrap().unwrap().value, b"acpi_event\0");
    }

    #[test]
    fn parses_real_getfamily_replies() {
        let family = parse_family_reply(&REPLY_ACPI, 7).unwrap().unwrap();
        assert_eq!(family.id, 0x1a);
        assert_eq!(family.group(ACPI_GROUP), Ok(Some(7)));
        assert_eq!(family.group(b"acpi_mc"), Ok(None));
        let nlctrl = parse_family_reply(&REPLY_NLCTRL, 7).unwrap().unwrap();
        assert_eq!(nlctrl.id, GENL_ID_CTRL);
        assert_eq!(nlctrl.group(b"notify"), Ok(Some(0x10)));
        assert_eq!(nlctrl.group(ACPI_GROUP), Ok(None));
        // Another sequence number: not our answer (yet).
        assert_eq!(parse_family_reply(&REPLY_ACPI, 8), Ok(None));
        assert_eq!(parse_family_reply(&[], 7), Ok(None));
    }

    #[test]
    fn kernel_errors_are_clear() {
        assert_eq!(parse_family_reply(&REPLY_ENOENT, 7).map(|f| f.map(|f| f.id)), Err(Error::Kernel(2)));
        let msg = NlPacket::new_checked(&REPLY_ENOENT[..]).unwrap();
        assert_eq!(msg.error_code(), Ok(2));
        // An acknowledgement (error 0) followed by the answer in the same buffer.
        let mut ack = REPLY_ENOENT[..36].to_vec();
        ack[0] = 36;
        ack[16..20].copy_from_slice(&0i32.to_ne_bytes());
        let mut buf = ack.clone();
        buf.extend_from_slice(&REPLY_ACPI);
        assert_eq!(parse_family_reply(&buf, 7).unwrap().unwrap().id, 0x1a);
        // An error message too short to hold its code.
        let mut short = REPLY_ENOENT[..18].to_vec();
        short[0] = 18;
        assert_eq!(parse_family_reply(&short, 7).map(|f| f.is_some()), Err(Error::Truncated));
    }

    #[test]
    fn corrupt_replies_are_errors() {
        let id = |buf: &[u8]| parse_family_reply(buf, 7).map(|f| f.map(|f| f.id));
        // nlmsg_len beyond the buffer, below the header, a buffer shorter than a header.
        assert_eq!(id(&REPLY_ACPI[..100]), Err(Error::Truncated));
        let mut bad = REPLY_ACPI;
        bad[0] = 15;
        assert_eq!(id(&bad), Err(Error::BadLength));
        assert_eq!(id(&REPLY_ACPI[..15]), Err(Error::Truncated));
        // Attribute length below its header, past the message, a lone partial header.
        let mut bad = REPLY_ACPI;
        bad[20] = 3;
        assert_eq!(id(&bad), Err(Error::BadLength));
        let mut bad = REPLY_ACPI;
        bad[20] = 0xff;
        assert_eq!(id(&bad), Err(Error::Truncated));
        // The group name claims more than its entry holds: the family parses, the group not.
        let mut bad = REPLY_ACPI;
        bad[84] = 0x20;
        assert_eq!(id(&bad), Ok(Some(0x1a)));
        assert_eq!(parse_family_reply(&bad, 7).unwrap().unwrap().group(ACPI_GROUP), Err(Error::Truncated));
        // No genl header; another command; no family id; a short family id.
        let mut bad = REPLY_ACPI[..16].to_vec();
        bad[0] = 16;
        assert_eq!(id(&bad), Err(Error::Truncated));
        let mut bad = REPLY_ACPI;
        bad[16] = CTRL_CMD_GETFAMILY;
        assert_eq!(id(&bad), Err(Error::Unexpected));
        let mut bad = REPLY_ACPI;
        bad[38] = 9; // CTRL_ATTR_FAMILY_ID becomes an unknown attribute
        assert_eq!(id(&bad), Err(Error::MissingAttr));
        let mut bad = REPLY_ACPI;
        bad[36] = 5; // FAMILY_ID of length 5: 1 byte of value
        assert_eq!(id(&bad), Err(Error::Truncated));
        // A group id shorter than 4 bytes.
        let mut bad = REPLY_ACPI;
        bad[76] = 6;
        assert_eq!(parse_family_reply(&bad, 7).unwrap().unwrap().group(ACPI_GROUP), Err(Error::Truncated));
    }
}
