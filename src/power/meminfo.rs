//! How much the page cache still has to write: `Dirty` + `Writeback` of /proc/meminfo, the
//! figure systemd-shutdown watches to tell a slow flush from a stuck one.

/// Why /proc/meminfo did not give the figure.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Error {
    /// No complete `Dirty:` or `Writeback:` line.
    Missing,
    /// A value that is not `DIGITS kB`, or too large.
    BadValue,
}

/// `Dirty` + `Writeback` in KiB. Only whole lines count: a read cut short mid-line cannot
/// pass a truncated number off as the value. The first of each name wins.
pub fn pending_kib(text: &[u8]) -> Result<u64, Error> {
    let (mut sum, mut seen, mut rest) = (0u64, 0u8, text);
    while let Some(nl) = memchr::memchr(b'\n', rest) {
        let line = &rest[..nl];
        rest = &rest[nl + 1..];
        // `Writeback:` with its colon: not `WritebackTmp:`.
        let (bit, value) = match (line.strip_prefix(b"Dirty:"), line.strip_prefix(b"Writeback:")) {
            (Some(v), _) => (1, v),
            (_, Some(v)) => (2, v),
            _ => continue,
        };
        if seen & bit == 0 {
            seen |= bit;
            sum = sum.checked_add(kib(value).ok_or(Error::BadValue)?).ok_or(Error::BadValue)?;
        }
    }
    if seen == 3 { Ok(sum) } else { Err(Error::Missing) }
}

/// `      345688 kB` → 345688.
fn kib(value: &[u8]) -> Option<u64> {
    keel_config::values::parse_u64(value.trim_ascii_start().strip_suffix(b" kB")?)
}

/// Read /proc/meminfo (the two lines are near the top: 2 KiB is plenty).
pub fn read_pending_kib() -> Option<u64> {
    let mut buf = [0u8; 2048];
    pending_kib(crate::file::read_into(c"/proc/meminfo", &mut buf).ok()?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A real /proc/meminfo (Linux 6.1, x86_64).
    const SAMPLE: &[u8] = include_bytes!("testdata/meminfo");

    #[test]
    fn dirty_plus_writeback_of_a_real_sample() {
        assert_eq!(pending_kib(SAMPLE), Ok(345_688));
        // WritebackTmp (later in the file) is another field, not Writeback.
        let text = String::from_utf8(SAMPLE.to_vec()).unwrap();
        let busy = text.replace("Writeback:             0 kB", "Writeback:          1024 kB");
        assert_eq!(pending_kib(busy.as_bytes()), Ok(345_688 + 1024));
        let tmp = text.replace("WritebackTmp:          0 kB", "WritebackTmp:         77 kB");
        assert_eq!(pending_kib(tmp.as_bytes()), Ok(345_688));
    }

    #[test]
    fn cut_short_or_malformed_is_an_error() {
        // Cut inside the Writeback number: that line is not whole, so it does not count.
        let at = SAMPLE.windows(10).position(|w| w == b"Writeback:").unwrap() + 20;
        assert_eq!(pending_kib(&SAMPLE[..at]), Err(Error::Missing));
        assert_eq!(pending_kib(b""), Err(Error::Missing));
        assert_eq!(pending_kib(b"Dirty: 5 kB\nWriteback: 7 kB"), Err(Error::Missing), "no newline after Writeback");
        assert_eq!(pending_kib(b"Dirty: 5 kB\nWriteback: 7 kB\n"), Ok(12));
        for bad in ["Dirty: 5\n", "Dirty: kB\n", "Dirty: -5 kB\n", "Dirty: 5 MB\n", "Dirty: 5x kB\n", "Dirty: 99999999999999999999 kB\n"] {
            assert_eq!(pending_kib(format!("{bad}Writeback: 1 kB\n").as_bytes()), Err(Error::BadValue), "{bad:?}");
        }
        let huge = format!("Dirty: {} kB\nWriteback: {} kB\n", u64::MAX / 2 + 1, u64::MAX / 2 + 1);
        assert_eq!(pending_kib(huge.as_bytes()), Err(Error::BadValue), "the sum overflows");
        assert_eq!(kib(b" 18446744073709551615 kB"), Some(u64::MAX));
        assert_eq!(kib(b" 18446744073709551616 kB"), None);
    }

    #[test]
    fn the_running_kernel_answers() {
        // Every Linux has these two lines; the host's figure is whatever it is, but it parses.
        assert!(read_pending_kib().is_some());
    }
}
