//! A device for the tests: the vectors' windows at their offsets, zeros elsewhere.

use core::cell::Cell;

use keel_proto::testutil::XorShift;

#[derive(Clone, Debug)]
pub struct Disk {
    pub size: u64,
    pub parts: Vec<(u64, Vec<u8>)>,
    reads: Cell<usize>,
}

impl Disk {
    pub fn new(size: u64, parts: &[(u64, &[u8])]) -> Disk {
        Disk { size, parts: parts.iter().map(|&(at, b)| (at, b.to_vec())).collect(), reads: Cell::new(0) }
    }

    /// pread: zeros where no vector is, short at the end of the device.
    pub fn read(&self, at: u64, buf: &mut [u8]) -> Result<usize, ()> {
        self.reads.set(self.reads.get() + 1);
        if at >= self.size {
            return Ok(0);
        }
        let n = buf.len().min((self.size - at).try_into().unwrap_or(usize::MAX));
        let buf = &mut buf[..n];
        buf.fill(0);
        for (off, data) in &self.parts {
            let start = at.max(*off);
            let end = (at + n as u64).min(off + data.len() as u64);
            if start < end {
                let (s, e) = ((start - at) as usize, (end - at) as usize);
                buf[s..e].copy_from_slice(&data[(start - off) as usize..(end - off) as usize]);
            }
        }
        Ok(n)
    }

    /// Flip one random bit of one vector.
    pub fn flip(&mut self, rng: &mut XorShift) {
        let i = rng.below(self.parts.len());
        let data = &mut self.parts[i].1;
        if !data.is_empty() {
            let at = rng.below(data.len());
            data[at] ^= 1 << rng.below(8);
        }
    }

    /// How many reads `f` made of this disk.
    pub fn count_reads(&self, f: impl FnOnce(&Disk)) -> usize {
        let before = self.reads.get();
        f(self);
        self.reads.get() - before
    }
}
