//! CRC-32C (Castagnoli): polynomial 0x1edc6f41 reflected (0x82f63b78), a nibble at a time
//! from a 16-entry table, like `proto::crc`. ext4, erofs store the raw register after
//! `update(!0, ..)`; xfs and btrfs store the finished CRC (`crc32c`, the register inverted).

const POLY: u32 = 0x82f6_3b78;

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

/// The register after feeding `data` to `crc` (no inversion either side).
pub fn update(mut crc: u32, data: &[u8]) -> u32 {
    for &b in data {
        crc ^= u32::from(b);
        crc = (crc >> 4) ^ TABLE[(crc & 15) as usize];
        crc = (crc >> 4) ^ TABLE[(crc & 15) as usize];
    }
    crc
}

/// The CRC-32C of `data` (init and xorout 0xffffffff).
pub fn crc32c(data: &[u8]) -> u32 {
    !update(!0, data)
}

/// The raw register over `data` with the 4 bytes at `hole` taken as zero: the checksum
/// field of the structure it covers.
pub(crate) fn update_with_hole(crc: u32, data: &[u8], hole: usize) -> u32 {
    let (before, rest) = data.split_at(hole.min(data.len()));
    let zeros = [0u8; 4];
    let crc = update(update(crc, before), zeros.get(..rest.len().min(4)).unwrap_or(&[]));
    update(crc, rest.get(4..).unwrap_or(&[]))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The catalogue check value of CRC-32C, and RFC 3720 (iSCSI) B.4's vectors.
    #[test]
    fn known_values() {
        assert_eq!(crc32c(b"123456789"), 0xe306_9283);
        assert_eq!(crc32c(&[0u8; 32]), 0x8a91_36aa);
        assert_eq!(crc32c(&[0xffu8; 32]), 0x62a8_ab43);
        let ramp: Vec<u8> = (0..32).collect();
        assert_eq!(crc32c(&ramp), 0x46dd_794e);
    }

    #[test]
    fn hole_is_zeros() {
        let mut data: Vec<u8> = (0..40).collect();
        let with_hole = update_with_hole(!0, &data, 8);
        data[8..12].fill(0);
        assert_eq!(with_hole, update(!0, &data));
        assert_eq!(update_with_hole(!0, &data[..10], 8), update(!0, &[&data[..8], &[0, 0]].concat()));
    }
}
