//! CRC-32/ISO-HDLC, the CRC of zlib, Ethernet and PNG: polynomial 0x04c11db7 reflected
//! (0xedb88320), init 0xffffffff, xorout 0xffffffff; check value `crc32(b"123456789")` =
//! 0xcbf43926. Computed a nibble at a time from a 16-entry table (64 bytes of rodata): a
//! frame is at most 1 KiB, so speed does not matter and size does.

const POLY: u32 = 0xedb8_8320;

/// `TABLE[i]`: the register after shifting the nibble `i` through the polynomial.
const TABLE: [u32; 16] = {
    let mut table = [0u32; 16];
    let mut i = 0;
    while i < 16 {
        let mut c = i as u32;
        let mut bit = 0;
        while bit < 4 {
            c = if c & 1 != 0 { (c >> 1) ^ POLY } else { c >> 1 };
            bit += 1;
        }
        table[i] = c;
        i += 1;
    }
    table
};

/// The CRC-32 of `data`.
pub fn crc32(data: &[u8]) -> u32 {
    !update(!0, data)
}

/// The register after feeding `data` to `crc`, no inversion either side: a CRC over pieces
/// is `!update(update(!0, a), b)` (GPT's entry array, read a window at a time).
#[inline(never)] // 7 callers in PID 1: smaller out of line (`just size`)
pub fn update(mut crc: u32, data: &[u8]) -> u32 {
    for &b in data {
        crc ^= u32::from(b);
        crc = (crc >> 4) ^ TABLE[(crc & 15) as usize];
        crc = (crc >> 4) ^ TABLE[(crc & 15) as usize];
    }
    crc
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Values from python3 `zlib.crc32` (an independent implementation).
    #[test]
    fn matches_zlib() {
        assert_eq!(crc32(b""), 0);
        assert_eq!(crc32(b"123456789"), 0xcbf4_3926);
        assert_eq!(crc32(b"a"), 0xe8b7_be43);
        assert_eq!(crc32(b"The quick brown fox jumps over the lazy dog"), 0x414f_a339);
        assert_eq!(crc32(&[0u8; 32]), 0x190a_55ad);
        assert_eq!(crc32(&[0xffu8; 32]), 0xff6c_ab0b);
        let ramp: Vec<u8> = (0..=255).collect();
        assert_eq!(crc32(&ramp), 0x2905_8c73);
    }

    #[test]
    fn in_pieces() {
        assert_eq!(!update(update(!0, b"1234"), b"56789"), 0xcbf4_3926);
    }

    #[test]
    fn table_is_the_reflected_polynomial() {
        // 8 = 0b1000: three plain shifts, then one with the polynomial.
        assert_eq!(TABLE[0], 0);
        assert_eq!(TABLE[8], POLY);
        assert_eq!(TABLE[1], 0x1db7_1064);
    }
}
