//! Loading drivers for the hardware that is there, without udev:
//! - `coldplug`: at boot, every device's `modalias` under /sys/devices;
//! - `alias`: modules.alias matched against those modaliases as kmod does (fnmatch(3)),
//!   streamed through one fixed buffer like modules.dep, giving each module once;
//! - `uevent`: later devices (hotplug) as the kernel announces them on its uevent
//!   netlink socket, with their MODALIAS.
//!
//! The names found go to `modules::load` like any other list.

pub mod alias;
pub mod coldplug;
pub mod uevent;

/// Why a `ByteSet` did not take a value.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum SetError {
    /// No room left, in entries or in bytes.
    Full,
    /// Not acceptable for this set (see where it is used).
    Invalid,
}

/// A set of short byte strings in one fixed arena (no heap): at most `N` values and
/// `BYTES` bytes in all. Insertion order is kept; lookups are linear (sets here hold tens).
pub struct ByteSet<const N: usize, const BYTES: usize> {
    bytes: heapless::Vec<u8, BYTES>,
    ends: heapless::Vec<usize, N>,
}

impl<const N: usize, const BYTES: usize> Default for ByteSet<N, BYTES> {
    fn default() -> Self {
        ByteSet::new()
    }
}

impl<const N: usize, const BYTES: usize> ByteSet<N, BYTES> {
    pub const fn new() -> Self {
        ByteSet { bytes: heapless::Vec::new(), ends: heapless::Vec::new() }
    }

    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &[u8]> + '_ {
        let starts = core::iter::once(0).chain(self.ends.iter().copied());
        starts.zip(self.ends.iter()).map(|(start, &end)| self.bytes.get(start..end).unwrap_or(b""))
    }

    /// Whether a value equal (by `same`) to `value` is in the set.
    pub fn contains_by(&self, value: &[u8], same: fn(&[u8], &[u8]) -> bool) -> bool {
        self.iter().any(|v| same(v, value))
    }

    /// Add `value` unless an equal one (by `same`) is there: Ok(true) if added.
    pub fn insert_by(&mut self, value: &[u8], same: fn(&[u8], &[u8]) -> bool) -> Result<bool, SetError> {
        if self.contains_by(value, same) {
            return Ok(false);
        }
        if self.ends.is_full() || self.bytes.capacity() - self.bytes.len() < value.len() {
            return Err(SetError::Full);
        }
        let _ = self.bytes.extend_from_slice(value);
        let _ = self.ends.push(self.bytes.len());
        Ok(true)
    }

    /// `insert_by` with byte equality.
    pub fn insert(&mut self, value: &[u8]) -> Result<bool, SetError> {
        self.insert_by(value, |a, b| a == b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_set_dedupes_and_keeps_order_within_capacity() {
        let mut s: ByteSet<3, 8> = ByteSet::new();
        assert!(s.is_empty());
        assert_eq!(s.insert(b"ab"), Ok(true));
        assert_eq!(s.insert(b""), Ok(true));
        assert_eq!(s.insert(b"ab"), Ok(false));
        assert_eq!(s.insert(b"cdefgh"), Ok(true));
        assert_eq!(s.iter().collect::<Vec<_>>(), [&b"ab"[..], b"", b"cdefgh"]);
        // Three entries already: a new value does not fit, a known one is still known.
        assert_eq!(s.insert(b"x"), Err(SetError::Full));
        assert_eq!(s.insert(b"cdefgh"), Ok(false));
        let mut s: ByteSet<8, 4> = ByteSet::new();
        assert_eq!(s.insert(b"abc"), Ok(true));
        assert_eq!(s.insert(b"de"), Err(SetError::Full));
        assert_eq!(s.insert(b"d"), Ok(true));
        assert_eq!(s.len(), 2);
        // A custom equality: `a-b` and `a_b` are one module.
        let mut s: ByteSet<4, 64> = ByteSet::new();
        assert_eq!(s.insert_by(b"virtio-pci", crate::boot::modules::names_equal), Ok(true));
        assert_eq!(s.insert_by(b"virtio_pci", crate::boot::modules::names_equal), Ok(false));
        assert!(s.contains_by(b"virtio_pci", crate::boot::modules::names_equal));
        assert!(!s.contains_by(b"virtio_pc", crate::boot::modules::names_equal));
    }
}
