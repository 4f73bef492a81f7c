//! The shared-line form of a frame: `ESC _ k`, the body in base64, `ESC \`. On a UART that
//! also carries the kernel's printk text, the frame is an APC string (ECMA-48 Application
//! Program Command): terminals swallow it, so a human on the console sees only the text,
//! and the base64 keeps every byte printable. Base64 is the standard alphabet (RFC 4648
//! section 4); the encoder writes no padding, the decoder (`deframe::ApcSplitter`) accepts it.

use super::{Error, MAX_BODY};

pub const ESC: u8 = 0x1b;
/// `ESC _ k`: APC, then `k` for keel.
pub const START: [u8; 3] = [ESC, b'_', b'k'];
/// `ESC \`: ST, the string terminator.
pub const END: [u8; 2] = [ESC, b'\\'];

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Base64 characters for `n` bytes, without padding.
pub const fn base64_len(n: usize) -> usize {
    (n * 4).div_ceil(3)
}

/// The exact length of `emit_apc` for a body of `body_len` bytes.
pub const fn apc_len(body_len: usize) -> usize {
    START.len() + base64_len(body_len) + END.len()
}

/// The longest shared-line form of a frame.
pub const MAX_APC_LEN: usize = apc_len(MAX_BODY);

/// The value of one base64 character, None for anything else (`=` included).
pub fn sextet(c: u8) -> Option<u8> {
    match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    }
}

/// A frame body in shared-line form. Returns the length written (`apc_len(body.len())`, at
/// most `MAX_APC_LEN`); a body over `MAX_BODY` is refused.
pub fn emit_apc(body: &[u8], out: &mut [u8]) -> Result<usize, Error> {
    if body.len() > MAX_BODY {
        return Err(Error::Oversized);
    }
    let len = apc_len(body.len());
    let out = out.get_mut(..len).ok_or(Error::BufferTooSmall)?;
    let (start, rest) = out.split_at_mut(START.len());
    start.copy_from_slice(&START);
    let (text, end) = rest.split_at_mut(len - START.len() - END.len());
    end.copy_from_slice(&END);
    // Each group of up to 3 bytes gives one character more than it has bytes.
    let mut chars = text.iter_mut();
    for group in body.chunks(3) {
        let mut bits = 0u32;
        for (i, &b) in group.iter().enumerate() {
            bits |= u32::from(b) << (16 - 8 * i);
        }
        for (i, c) in chars.by_ref().take(group.len() + 1).enumerate() {
            *c = ALPHABET[(bits >> (18 - 6 * i)) as usize & 63];
        }
    }
    Ok(len)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{hex, XorShift};

    fn apc(body: &[u8]) -> Vec<u8> {
        let mut out = vec![0xa5; apc_len(body.len()) + 4];
        let n = emit_apc(body, &mut out).unwrap();
        assert_eq!(n, apc_len(body.len()));
        assert!(out[n..].iter().all(|&b| b == 0xa5), "wrote past apc_len");
        assert_eq!(emit_apc(body, &mut vec![0; n]), Ok(n));
        assert_eq!(emit_apc(body, &mut vec![0; n - 1]), Err(Error::BufferTooSmall));
        out.truncate(n);
        out
    }

    #[test]
    fn rfc4648_vectors_without_padding() {
        assert_eq!(apc(b""), b"\x1b_k\x1b\\");
        assert_eq!(apc(b"f"), b"\x1b_kZg\x1b\\");
        assert_eq!(apc(b"fo"), b"\x1b_kZm8\x1b\\");
        assert_eq!(apc(b"foo"), b"\x1b_kZm9v\x1b\\");
        assert_eq!(apc(b"foob"), b"\x1b_kZm9vYg\x1b\\");
        assert_eq!(apc(b"fooba"), b"\x1b_kZm9vYmE\x1b\\");
        assert_eq!(apc(b"foobar"), b"\x1b_kZm9vYmFy\x1b\\");
        assert_eq!(apc(&hex("fb ff fe 00")), b"\x1b_k+//+AA\x1b\\");
    }

    #[test]
    fn alphabet_and_sextets_agree() {
        for (i, &c) in ALPHABET.iter().enumerate() {
            assert_eq!(sextet(c), Some(i as u8));
        }
        let valid = (0..=255u8).filter(|&c| sextet(c).is_some()).count();
        assert_eq!(valid, 64);
        assert_eq!(sextet(b'='), None);
        assert_eq!(sextet(ESC), None);
    }

    #[test]
    fn limits() {
        assert_eq!(MAX_APC_LEN, 3 + 1366 + 2);
        assert_eq!(apc(&[0xff; MAX_BODY]).len(), MAX_APC_LEN);
        assert_eq!(emit_apc(&[0; MAX_BODY + 1], &mut [0; 2000]), Err(Error::Oversized));
        let mut rng = XorShift(7);
        for _ in 0..500 {
            let body = rng.junk(64);
            let out = apc(&body);
            assert!(out[3..out.len() - 2].iter().all(|&c| sextet(c).is_some()));
        }
    }
}
