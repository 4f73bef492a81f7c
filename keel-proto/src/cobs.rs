//! The binary form of a frame: the body COBS-encoded, then one 0x00 delimiter.
//!
//! COBS (Consistent Overhead Byte Stuffing, Cheshire & Baker 1999) removes every zero from
//! the data: it is cut into blocks of up to 254 non-zero bytes, each led by a code byte
//! `1 + its length`. A block with a code below 0xff stands for its bytes and a zero (the
//! zero after the last block is dropped); code 0xff stands for 254 bytes and no zero. So a
//! 0x00 on the line can only be a delimiter, a reader resynchronizes at the next one, and
//! the cost is at most one byte per 254 (plus one). The encoder here gives the same bytes as
//! Wikipedia's examples: data ending in a full 254-byte block gets no trailing `01`.

use super::{Error, MAX_BODY};

/// The most bytes `encode` writes for `n` bytes of data.
pub const fn max_encoded_len(n: usize) -> usize {
    n + 1 + n / 254
}

/// The longest binary form of a frame: `MAX_BODY` encoded, and the delimiter.
pub const MAX_BINARY_LEN: usize = max_encoded_len(MAX_BODY) + 1;

/// The blocks of `data`: runs of at most 254 non-zero bytes, each written as its code byte
/// and its bytes.
fn blocks(mut data: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut done = false;
    core::iter::from_fn(move || {
        if done {
            return None;
        }
        let max = data.len().min(254);
        let run = data[..max].iter().position(|&b| b == 0).unwrap_or(max);
        let block = &data[..run];
        if run == 254 {
            // A full block implies no zero; the data may end here.
            data = &data[254..];
            done = data.is_empty();
        } else if run < data.len() {
            // Skip the zero this block stands for: a block follows, even if empty.
            data = &data[run + 1..];
        } else {
            done = true;
        }
        Some(block)
    })
}

/// The exact length of `data` COBS-encoded (without the delimiter).
pub fn encoded_len(data: &[u8]) -> usize {
    blocks(data).map(|b| b.len() + 1).sum()
}

/// COBS-encode `data` into `out` (no delimiter); returns the length written, at most
/// `max_encoded_len(data.len())`.
pub fn encode(data: &[u8], out: &mut [u8]) -> Result<usize, Error> {
    let mut at = 0;
    for block in blocks(data) {
        let (code, rest) = out.get_mut(at..).and_then(|b| b.split_first_mut()).ok_or(Error::BufferTooSmall)?;
        *code = block.len() as u8 + 1;
        rest.get_mut(..block.len()).ok_or(Error::BufferTooSmall)?.copy_from_slice(block);
        at += 1 + block.len();
    }
    Ok(at)
}

/// The exact length of `emit_binary(body, ..)`.
pub fn binary_len(body: &[u8]) -> usize {
    encoded_len(body) + 1
}

/// A frame body in binary form: COBS, then 0x00. Returns the length written
/// (`binary_len(body)`, at most `MAX_BINARY_LEN`); a body over `MAX_BODY` is refused.
pub fn emit_binary(body: &[u8], out: &mut [u8]) -> Result<usize, Error> {
    if body.len() > MAX_BODY {
        return Err(Error::Oversized);
    }
    let n = encode(body, out)?;
    *out.get_mut(n).ok_or(Error::BufferTooSmall)? = 0;
    Ok(n + 1)
}

/// A streaming COBS decoder for the bytes between two delimiters: each non-zero input byte
/// gives at most one output byte.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct Decoder {
    /// Data bytes left in the current block; 0: the next byte is a code.
    left: u8,
    /// The current block stands for a zero after its bytes (its code was below 0xff).
    zero: bool,
}

impl Decoder {
    pub const fn new() -> Self {
        Decoder { left: 0, zero: false }
    }

    /// One encoded byte, never 0x00 (that is the delimiter: call `end`).
    pub fn push(&mut self, b: u8) -> Option<u8> {
        if self.left > 0 {
            self.left -= 1;
            return Some(b);
        }
        // A code byte: the previous block's zero is owed now that another block follows.
        let owed = self.zero;
        self.left = b.saturating_sub(1);
        self.zero = b != 0xff;
        owed.then_some(0)
    }

    /// At a delimiter: whether the last block was complete. Resets the decoder.
    pub fn end(&mut self) -> bool {
        let complete = self.left == 0;
        *self = Decoder::new();
        complete
    }
}

/// Decode one COBS block sequence (without its delimiter) into `out`; returns the length.
pub fn decode(src: &[u8], out: &mut [u8]) -> Result<usize, Error> {
    let mut d = Decoder::new();
    let mut n = 0;
    for &b in src {
        if b == 0 {
            return Err(Error::Malformed);
        }
        if let Some(x) = d.push(b) {
            *out.get_mut(n).ok_or(Error::BufferTooSmall)? = x;
            n += 1;
        }
    }
    if d.end() {
        Ok(n)
    } else {
        Err(Error::Malformed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{hex, XorShift};

    fn enc(data: &[u8]) -> Vec<u8> {
        let mut out = vec![0xa5; max_encoded_len(data.len()) + 8];
        let n = encode(data, &mut out).unwrap();
        assert_eq!(n, encoded_len(data));
        assert!(n <= max_encoded_len(data.len()));
        assert!(out[n..].iter().all(|&b| b == 0xa5), "wrote past the encoded length");
        // Exactly long enough is enough; one byte less is an error, not a panic.
        assert_eq!(encode(data, &mut vec![0xa5; n]), Ok(n));
        assert_eq!(encode(data, &mut vec![0xa5; n - 1]), Err(Error::BufferTooSmall));
        out.truncate(n);
        assert!(!out.contains(&0));
        let mut back = vec![0xa5; data.len()];
        assert_eq!(decode(&out, &mut back), Ok(data.len()));
        assert_eq!(back, data);
        out
    }

    /// The examples from Wikipedia's COBS article (without their delimiter).
    #[test]
    fn wikipedia_vectors() {
        assert_eq!(enc(&[]), [0x01]);
        assert_eq!(enc(&hex("00")), hex("01 01"));
        assert_eq!(enc(&hex("00 00")), hex("01 01 01"));
        assert_eq!(enc(&hex("00 11 00")), hex("01 02 11 01"));
        assert_eq!(enc(&hex("11 22 00 33")), hex("03 11 22 02 33"));
        assert_eq!(enc(&hex("11 22 33 44")), hex("05 11 22 33 44"));
        assert_eq!(enc(&hex("11 00 00 00")), hex("02 11 01 01 01"));
        // 01..fe: one full block, no trailing code.
        let ramp: Vec<u8> = (0x01..=0xfe).collect();
        let mut want = vec![0xff];
        want.extend_from_slice(&ramp);
        assert_eq!(enc(&ramp), want);
        // 00 01..fe
        let mut data = vec![0];
        data.extend_from_slice(&ramp);
        let mut want = vec![0x01, 0xff];
        want.extend_from_slice(&ramp);
        assert_eq!(enc(&data), want);
        // 01..ff: 254 bytes, then a block of one.
        let data: Vec<u8> = (0x01..=0xff).collect();
        let mut want = vec![0xff];
        want.extend_from_slice(&data[..254]);
        want.extend_from_slice(&[0x02, 0xff]);
        assert_eq!(enc(&data), want);
        // 02..ff 00
        let mut data: Vec<u8> = (0x02..=0xff).collect();
        data.push(0);
        let mut want = vec![0xff];
        want.extend_from_slice(&data[..254]);
        want.extend_from_slice(&[0x01, 0x01]);
        assert_eq!(enc(&data), want);
        // 03..ff 00 01
        let mut data: Vec<u8> = (0x03..=0xff).collect();
        data.extend_from_slice(&[0, 1]);
        let mut want = vec![0xfe];
        want.extend_from_slice(&data[..253]);
        want.extend_from_slice(&[0x02, 0x01]);
        assert_eq!(enc(&data), want);
    }

    #[test]
    fn edge_cases() {
        // All zeros: one code byte per zero, plus one.
        assert_eq!(enc(&[0; 5]), [1; 6]);
        assert_eq!(enc(&[0; 1024]).len(), 1025);
        // 254, 255, 508, 509 non-zero bytes.
        assert_eq!(enc(&[7; 254]).len(), 255);
        assert_eq!(enc(&[7; 255]).len(), 257);
        assert_eq!(enc(&[7; 508]).len(), 510);
        assert_eq!(enc(&[7; 509]), {
            let mut w = vec![0xff];
            w.extend([7; 254]);
            w.push(0xff);
            w.extend([7; 254]);
            w.extend([2, 7]);
            w
        });
        // The worst case is all non-zero.
        assert_eq!(enc(&[9; MAX_BODY]).len(), max_encoded_len(MAX_BODY));
        // 253 non-zero and a zero: one block of 254 (code fe) and an empty one.
        let mut data = vec![1; 253];
        data.push(0);
        assert_eq!(enc(&data).len(), 255);
    }

    #[test]
    fn decoder_rejects_bad_input() {
        let mut out = [0u8; 16];
        // A block longer than what follows it.
        assert_eq!(decode(&hex("05 11 22"), &mut out), Err(Error::Malformed));
        assert_eq!(decode(&hex("ff 11"), &mut out), Err(Error::Malformed));
        // A zero inside.
        assert_eq!(decode(&hex("02 11 00"), &mut out), Err(Error::Malformed));
        // Too small an output.
        assert_eq!(decode(&hex("05 11 22 33 44"), &mut out[..3]), Err(Error::BufferTooSmall));
        // A trailing 01 after a full block is accepted too (other encoders write it).
        let mut long = vec![0xff];
        long.extend([7; 254]);
        long.push(0x01);
        let mut out = [0u8; 300];
        assert_eq!(decode(&long, &mut out), Ok(254));
        assert_eq!(decode(&[], &mut out), Ok(0));
    }

    #[test]
    fn binary_form() {
        let body = hex("01 07 00 41 78 56 34 12");
        let mut out = [0xa5u8; 16];
        assert_eq!(binary_len(&body), 10);
        assert_eq!(emit_binary(&body, &mut out), Ok(10));
        assert_eq!(out[..10], hex("03 01 07 06 41 78 56 34 12 00")[..]);
        assert!(out[10..].iter().all(|&b| b == 0xa5));
        assert_eq!(emit_binary(&body, &mut out[..10]), Ok(10));
        assert_eq!(emit_binary(&body, &mut out[..9]), Err(Error::BufferTooSmall));
        assert_eq!(emit_binary(&[1; MAX_BODY + 1], &mut [0; 2048]), Err(Error::Oversized));
        let mut out = [0u8; MAX_BINARY_LEN];
        assert_eq!(emit_binary(&[1; MAX_BODY], &mut out), Ok(MAX_BINARY_LEN));
    }

    #[test]
    fn random_round_trips() {
        let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
        for _ in 0..3000 {
            let len = rng.below(700);
            // Mostly non-zero or mostly zero, to reach both long runs and many blocks.
            let zeros = rng.below(4);
            let data: Vec<u8> =
                (0..len).map(|_| if rng.below(256) < zeros * 8 { 0 } else { rng.next() as u8 | 1 }).collect();
            enc(&data);
            // Random bytes given to the decoder never panic it.
            let junk = rng.junk(300);
            let _ = decode(&junk, &mut [0u8; 300]);
            let _ = decode(&junk, &mut [0u8; 7]);
        }
    }
}
