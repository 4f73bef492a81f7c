//! Field readers that cannot panic: bytes outside the slice read as zero. Every view checks
//! its length in `new_checked`, so after that a getter never sees the zero fallback.

pub(crate) type Field = core::ops::Range<usize>;

pub(crate) fn array<const N: usize>(b: &[u8], at: usize) -> [u8; N] {
    b.get(at..).and_then(|s| s.get(..N)).and_then(|s| s.try_into().ok()).unwrap_or([0; N])
}

pub(crate) fn byte(b: &[u8], at: usize) -> u8 {
    b.get(at).copied().unwrap_or(0)
}

pub(crate) fn le16(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes(array(b, at))
}

pub(crate) fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(array(b, at))
}

pub(crate) fn le64(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(array(b, at))
}

pub(crate) fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes(array(b, at))
}

pub(crate) fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(array(b, at))
}

pub(crate) fn be64(b: &[u8], at: usize) -> u64 {
    u64::from_be_bytes(array(b, at))
}

pub(crate) fn field(b: &[u8], f: Field) -> &[u8] {
    b.get(f).unwrap_or(&[])
}

/// A label as blkid stores it: up to the first NUL, trailing whitespace (C's isspace)
/// removed. Leading spaces stay.
pub fn label(raw: &[u8]) -> &[u8] {
    let end = raw.iter().position(|&c| c == 0).unwrap_or(raw.len());
    let mut s = raw.get(..end).unwrap_or(&[]);
    while let [rest @ .., b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r'] = s {
        s = rest;
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn out_of_range_reads_zero() {
        let b = [1u8, 2, 3];
        assert_eq!(le16(&b, 1), 0x0302);
        assert_eq!(le16(&b, 2), 0);
        assert_eq!(be32(&b, 0), 0);
        assert_eq!(byte(&b, 3), 0);
        assert_eq!(le64(&b, usize::MAX), 0);
        assert_eq!(field(&b, 2..9), b"");
    }

    #[test]
    fn labels_end_at_nul_and_lose_trailing_space() {
        assert_eq!(label(b"keel-root\0\0\0\0\0\0\0"), b"keel-root");
        assert_eq!(label(b"KEEL-FAT12 "), b"KEEL-FAT12");
        assert_eq!(label(b"WIN LABEL  "), b"WIN LABEL");
        assert_eq!(label(b" a \t\r\n\0junk"), b" a");
        assert_eq!(label(b"\0keel"), b"");
        assert_eq!(label(b"    "), b"");
        assert_eq!(label(b"full-16-bytes-xx"), b"full-16-bytes-xx");
    }
}
