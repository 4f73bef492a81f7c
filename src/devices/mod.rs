//! Loading drivers for the hardware that is there, without udev:
//! - `coldplug`: at boot, every device's `modalias` under /sys/devices;
//! - `alias`: modules.alias matched against those modaliases as kmod does (its glob
//!   patterns), streamed through one fixed buffer like modules.dep, giving each module once;
//! - `uevent`: later devices (hotplug) as the kernel announces them on its uevent
//!   netlink socket, with their MODALIAS;
//! - `hotplug`: what PID 1 does with them (modules, power keys, disks) and the boot's pass.
//!
//! The names found go to `modules::load` like any other list.

pub mod alias;
pub mod coldplug;
#[cfg(all(not(test), feature = "rt"))]
pub mod hotplug;
pub mod uevent;

/// Why a `ByteSet` did not take a value.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum SetError {
    /// No room left.
    Full,
    /// Not a modalias kmod would look up (`alias::normalize`).
    Invalid,
}

/// A set of short byte strings without NULs in one fixed arena (no heap): each value
/// followed by a NUL, at most `BYTES` bytes in all. Insertion order is kept; lookups are
/// linear (sets here hold tens). The code is shared by every capacity (`insert`).
pub struct ByteSet<const BYTES: usize> {
    bytes: heapless::Vec<u8, BYTES>,
}

impl<const BYTES: usize> Default for ByteSet<BYTES> {
    fn default() -> Self {
        ByteSet::new()
    }
}

impl<const BYTES: usize> ByteSet<BYTES> {
    pub const fn new() -> Self {
        ByteSet { bytes: heapless::Vec::new() }
    }

    pub fn len(&self) -> usize {
        self.iter().count()
    }

    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// The values, in insertion order (one iterator type whatever the capacity).
    pub fn iter(&self) -> impl Iterator<Item = &[u8]> + '_ {
        entries(&self.bytes)
    }

    pub fn clear(&mut self) {
        self.bytes.clear();
    }

    /// Add `value` unless it is there: Ok(true) if added (a NUL in it would make it two,
    /// an empty one none: callers give neither). With
    /// `normalize`, as `alias::normalize` makes it (Invalid if it refuses).
    pub fn insert(&mut self, value: &[u8], normalize: bool) -> Result<bool, SetError> {
        insert(self.bytes.as_mut_view(), value, normalize)
    }
}

fn entries(arena: &[u8]) -> impl Iterator<Item = &[u8]> {
    arena.split(|&b| b == 0).filter(|v| !v.is_empty())
}

/// `ByteSet::insert` for any capacity. The value is normalized where it is stored, so
/// no buffer of its size is needed; a value with no room is Full even if it is known.
#[inline(never)]
fn insert(bytes: &mut heapless::vec::VecView<u8>, value: &[u8], normalize: bool) -> Result<bool, SetError> {
    let start = bytes.len();
    if bytes.capacity() - start <= value.len() {
        return Err(SetError::Full);
    }
    let _ = bytes.extend_from_slice(value);
    // Never None (the value was just added); split_at_mut's panic would bring core::fmt.
    let Some((known, new)) = bytes.split_at_mut_checked(start) else { return Err(SetError::Full) };
    let added = if normalize && !alias::normalize(new) {
        Err(SetError::Invalid)
    } else {
        Ok(!known.split(|&b| b == 0).any(|v| v == new))
    };
    if added != Ok(true) {
        bytes.truncate(start);
    } else {
        let _ = bytes.push(0);
    }
    added
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_set_dedupes_and_keeps_order_within_capacity() {
        let mut s: ByteSet<12> = ByteSet::new();
        assert!(s.is_empty());
        assert_eq!(s.insert(b"ab", false), Ok(true));
        assert_eq!(s.insert(b"ab", false), Ok(false));
        assert_eq!(s.insert(b"cdef", false), Ok(true));
        assert_eq!(s.iter().collect::<Vec<_>>(), [&b"ab"[..], b"cdef"]);
        // 8 of 12 bytes used: 3 more and a NUL fit, 4 do not.
        assert_eq!(s.insert(b"wxyz", false), Err(SetError::Full));
        assert_eq!(s.insert(b"xyz", false), Ok(true));
        assert_eq!(s.insert(b"a", false), Err(SetError::Full));
        assert_eq!(s.len(), 3);
        let mut s: ByteSet<64> = ByteSet::new();
        // Normalized where stored: `a-b` and `a_b` are one value, a refused one leaves no trace.
        assert_eq!(s.insert(b"virtio-pci", true), Ok(true));
        assert_eq!(s.insert(b"virtio_pci", true), Ok(false));
        assert_eq!(s.insert(b"x]", true), Err(SetError::Invalid));
        assert_eq!(s.insert(b"v[a-b]-c", true), Ok(true));
        assert_eq!(s.iter().collect::<Vec<_>>(), [&b"virtio_pci"[..], b"v[a-b]_c"]);
    }
}
