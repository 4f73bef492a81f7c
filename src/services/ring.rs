//! A service's output ring: a fixed window of one shared byte array. A flooding service
//! overwrites its own oldest bytes (counted as dropped) and never blocks anyone.

/// Longest line echoed to the console at once; longer output is echoed in pieces.
pub const ECHO_MAX: usize = 160;

#[derive(Copy, Clone, Debug, Default)]
pub struct Ring {
    base: usize,
    cap: usize,
    /// Bytes ever written (the ring holds the last `cap` of them).
    written: u64,
    /// Bytes ever echoed or skipped by the echo.
    echoed: u64,
}

impl Ring {
    pub const fn new(base: usize, cap: usize) -> Ring {
        Ring { base, cap, written: 0, echoed: 0 }
    }

    /// Append `bytes`, overwriting the oldest when full.
    pub fn write(&mut self, storage: &mut [u8], bytes: &[u8]) {
        let Some(window) = storage.get_mut(self.base..self.base + self.cap).filter(|w| !w.is_empty()) else { return };
        // Only the last `cap` bytes can survive.
        let skip = bytes.len().saturating_sub(self.cap);
        self.written += skip as u64;
        let mut rest = bytes.get(skip..).unwrap_or_default();
        while !rest.is_empty() {
            let at = (self.written % self.cap as u64) as usize;
            let n = rest.len().min(self.cap - at);
            let (now, later) = rest.split_at(n);
            let Some(dst) = window.get_mut(at..at + n) else { return };
            dst.copy_from_slice(now);
            self.written += n as u64;
            rest = later;
        }
    }

    /// Bytes overwritten before anyone could read them.
    pub fn dropped(&self) -> u64 {
        self.written.saturating_sub(self.cap as u64)
    }

    pub fn written(&self) -> u64 {
        self.written
    }

    /// Copy the ring's content, oldest first, into `out`; returns the length.
    pub fn copy_out(&self, storage: &[u8], out: &mut [u8]) -> usize {
        let held = (self.written.min(self.cap as u64)) as usize;
        self.copy_range(storage, self.written - held as u64, out)
    }

    fn copy_range(&self, storage: &[u8], from: u64, out: &mut [u8]) -> usize {
        let len = ((self.written - from) as usize).min(out.len());
        for (i, slot) in out[..len].iter_mut().enumerate() {
            *slot = storage.get(self.base + ((from + i as u64) % self.cap as u64) as usize).copied().unwrap_or(0);
        }
        len
    }

    /// The next complete line (or a piece of ECHO_MAX bytes) not yet echoed, without its
    /// newline, copied into `out`. Output the ring lost before it was echoed is skipped.
    pub fn next_echo<'o>(&mut self, storage: &[u8], out: &'o mut [u8; ECHO_MAX]) -> Option<&'o [u8]> {
        if self.cap == 0 {
            return None;
        }
        let oldest = self.written.saturating_sub(self.cap as u64);
        self.echoed = self.echoed.max(oldest);
        let len = self.copy_range(storage, self.echoed, out);
        match memchr::memchr(b'\n', &out[..len]) {
            Some(nl) => {
                self.echoed += nl as u64 + 1;
                Some(&out[..nl])
            }
            None if len == ECHO_MAX => {
                self.echoed += len as u64;
                Some(&out[..len])
            }
            None => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_last_bytes_and_counts_the_dropped() {
        let mut storage = [0xa5u8; 16];
        let mut ring = Ring::new(4, 8);
        ring.write(&mut storage, b"abc");
        assert_eq!(ring.dropped(), 0);
        ring.write(&mut storage, b"defghij");
        assert_eq!(ring.dropped(), 2);
        let mut out = [0u8; 16];
        let n = ring.copy_out(&storage, &mut out);
        assert_eq!(&out[..n], b"cdefghij");
        // Its window only: the bytes around it are untouched.
        assert_eq!(&storage[..4], &[0xa5; 4]);
        assert_eq!(&storage[12..], &[0xa5; 4]);
        // A write larger than the ring keeps its tail.
        ring.write(&mut storage, b"0123456789ABCDEF");
        let n = ring.copy_out(&storage, &mut out);
        assert_eq!(&out[..n], b"89ABCDEF");
        assert_eq!(ring.dropped(), 26 - 8);
    }

    #[test]
    fn echoes_whole_lines_and_skips_what_was_lost() {
        let mut storage = [0u8; 64];
        let mut ring = Ring::new(0, 64);
        let mut buf = [0u8; ECHO_MAX];
        ring.write(&mut storage, b"one\ntw");
        assert_eq!(ring.next_echo(&storage, &mut buf), Some(&b"one"[..]));
        assert_eq!(ring.next_echo(&storage, &mut buf), None, "partial line waits");
        ring.write(&mut storage, b"o\n");
        assert_eq!(ring.next_echo(&storage, &mut buf), Some(&b"two"[..]));
        assert_eq!(ring.next_echo(&storage, &mut buf), None);

        let mut small = Ring::new(0, 8);
        small.write(&mut storage, b"aaaa\nbbbbbbbb\ncc\n");
        // Only the last 8 bytes ("bbbb\ncc\n") survived: the echo resumes at the oldest held.
        assert_eq!(small.next_echo(&storage, &mut buf), Some(&b"bbbb"[..]));
        assert_eq!(small.next_echo(&storage, &mut buf), Some(&b"cc"[..]));
    }

    #[test]
    fn very_long_lines_are_echoed_in_pieces() {
        let mut storage = [0u8; 512];
        let mut ring = Ring::new(0, 512);
        let mut buf = [0u8; ECHO_MAX];
        ring.write(&mut storage, &[b'x'; 200]);
        assert_eq!(ring.next_echo(&storage, &mut buf).map(|l| l.len()), Some(ECHO_MAX));
        assert_eq!(ring.next_echo(&storage, &mut buf), None);
    }
}
