//! keel's debug protocol, the wire format only (docs/protocol.md is the spec): no transport,
//! no server. Everything works on caller-owned byte slices and fixed buffers, never panics
//! on any input, and is shared by PID 1 and the host tool.
//!
//! - `crc`: CRC-32/ISO-HDLC (the zlib one), nibble table.
//! - `frame`: the frame body `version | seq | type | payload | crc` (`Frame` view,
//!   `FrameRepr` value), `emit_message`, `SeqGaps` (lost frames from sequence numbers).
//! - `cobs`: the binary form, COBS + a 0x00 delimiter (`emit_binary`).
//! - `apc`: the shared-line form, `ESC _ k` base64 `ESC \` (`emit_apc`).
//! - `deframe`: streaming decoders for both forms (`BinaryDeframer`, `ApcSplitter`).
//! - `msg`: the messages (`Message`, `ReplyBody`) inside a frame's payload.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

pub mod apc;
pub mod cobs;
pub mod crc;
pub mod deframe;
pub mod frame;
pub mod msg;

pub use apc::{apc_len, emit_apc, MAX_APC_LEN};
pub use cobs::{binary_len, emit_binary, MAX_BINARY_LEN};
pub use deframe::{ApcSplitter, BinaryDeframer, Piece, Stats};
pub use frame::{emit_message, parse_body, Frame, FrameRepr, SeqGaps};
pub use msg::{ErrorCode, EventKind, LogSource, Message, PowerCmd, ReplyBody, ServiceState, Stream};

/// The frame format version (the first byte of every body). A body with another version is
/// dropped and counted by the deframers.
pub const VERSION: u8 = 1;
/// The message-set version carried in both Hello messages.
pub const PROTO: u8 = 1;
/// version, seq (2), type.
pub const HEADER_LEN: usize = 4;
pub const CRC_LEN: usize = 4;
/// Header and CRC: the smallest body.
pub const OVERHEAD: usize = HEADER_LEN + CRC_LEN;
/// The largest frame body; longer input is dropped as oversized.
pub const MAX_BODY: usize = 1024;
pub const MAX_PAYLOAD: usize = MAX_BODY - OVERHEAD;
/// The longest service name in a message.
pub const MAX_NAME: usize = 32;

/// What is wrong with a frame or message, or why one cannot be written.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Error {
    /// Fewer bytes than a header, field or length prefix needs.
    Truncated,
    /// A body longer than `MAX_BODY` (or than a deframer's buffer), a payload longer than
    /// `MAX_PAYLOAD`.
    Oversized,
    /// A frame of another format version.
    BadVersion(u8),
    /// The CRC does not match.
    BadCrc,
    /// Bad COBS or base64, a bool other than 0 or 1, a service name over `MAX_NAME`.
    Malformed,
    /// A message type keel does not know (answered with `ErrorCode::UnknownType`).
    UnknownType(u8),
    /// A Reply whose body kind is unknown.
    UnknownReply(u8),
    /// The output buffer is smaller than the encoded length.
    BufferTooSmall,
}

/// `$name::from(u8)` and `u8::from($name)`, with `Unknown(u8)` for codes not listed (smoltcp's
/// `enum_with_unknown!`): a new code from a newer peer never makes a parser fail or panic.
macro_rules! enum_with_unknown {
    ($(#[$attr:meta])* pub enum $name:ident { $($(#[$vattr:meta])* $variant:ident = $value:literal,)+ }) => {
        $(#[$attr])*
        #[derive(Copy, Clone, Debug, PartialEq, Eq)]
        pub enum $name {
            $($(#[$vattr])* $variant,)+
            Unknown(u8),
        }
        impl From<u8> for $name {
            fn from(v: u8) -> Self {
                match v {
                    $($value => $name::$variant,)+
                    other => $name::Unknown(other),
                }
            }
        }
        impl From<$name> for u8 {
            fn from(v: $name) -> u8 {
                match v {
                    $($name::$variant => $value,)+
                    $name::Unknown(other) => other,
                }
            }
        }
    };
}
pub(crate) use enum_with_unknown;

#[cfg(feature = "testutil")]
extern crate std;
/// Deterministic random input and hex vectors for tests (this crate's and its users').
#[cfg(any(test, feature = "testutil"))]
pub mod testutil;

#[cfg(test)]
pub(crate) mod testing {
    pub use crate::testutil::{hex, XorShift};
}
