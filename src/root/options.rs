//! Mount options as mount(8) splits them: the words that are mount(2) flags (`ro`,
//! `noatime`, `nodev`, `bind`...) become flags, the rest (`data=ordered`, `mode=1777`) go
//! to the filesystem as its data, comma-separated as given. Pure.

use linux_raw_sys::general as k;
use rustix::mount::MountFlags;

/// The flag words, one string (smaller than a table of slices), in the order of `BITS`.
const NAMES: &[u8] = b"ro rw nosuid suid nodev dev noexec exec sync async noatime atime nodiratime diratime \
    relatime norelatime strictatime dirsync lazytime bind rbind defaults";
/// Set on a word that clears its flag (`rw`, `exec`...).
const CLEAR: u32 = 1 << 31;
const BITS: [u32; 22] = [
    k::MS_RDONLY,
    k::MS_RDONLY | CLEAR,
    k::MS_NOSUID,
    k::MS_NOSUID | CLEAR,
    k::MS_NODEV,
    k::MS_NODEV | CLEAR,
    k::MS_NOEXEC,
    k::MS_NOEXEC | CLEAR,
    k::MS_SYNCHRONOUS,
    k::MS_SYNCHRONOUS | CLEAR,
    k::MS_NOATIME,
    k::MS_NOATIME | CLEAR,
    k::MS_NODIRATIME,
    k::MS_NODIRATIME | CLEAR,
    k::MS_RELATIME,
    k::MS_RELATIME | CLEAR,
    k::MS_STRICTATIME,
    k::MS_DIRSYNC,
    k::MS_LAZYTIME,
    k::MS_BIND,
    k::MS_BIND | k::MS_REC,
    0,
];

/// `options` split: the flags over `flags`, the filesystem's words into `data` (which the
/// caller NUL-terminates). None if `data` has no room.
pub fn split<const N: usize>(options: &[u8], mut flags: MountFlags, data: &mut heapless::Vec<u8, N>) -> Option<MountFlags> {
    for word in options.split(|&b| b == b',').filter(|w| !w.is_empty()) {
        let known = crate::config::cmdline::position(NAMES, word);
        match known.and_then(|i| BITS.get(i)) {
            Some(&bits) if bits & CLEAR != 0 => flags.remove(MountFlags::from_bits_retain(bits & !CLEAR)),
            Some(&bits) => flags.insert(MountFlags::from_bits_retain(bits)),
            None => {
                if !data.is_empty() {
                    data.push(b',').ok()?;
                }
                data.extend_from_slice(word).ok()?;
            }
        }
    }
    Some(flags)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split_all(options: &str) -> Option<(MountFlags, String)> {
        let mut data = heapless::Vec::<u8, 32>::new();
        let flags = split(options.as_bytes(), MountFlags::empty(), &mut data)?;
        Some((flags, String::from_utf8(data.to_vec()).unwrap()))
    }

    #[test]
    fn every_name_has_its_bits() {
        assert_eq!(NAMES.split(|&b| b == b' ').filter(|n| !n.is_empty()).count(), BITS.len());
    }

    #[test]
    fn flags_and_data_apart() {
        let (flags, data) = split_all("noatime,data=ordered,nodev,errors=remount-ro").unwrap();
        assert_eq!(flags, MountFlags::NOATIME | MountFlags::NODEV);
        assert_eq!(data, "data=ordered,errors=remount-ro");
        assert_eq!(split_all("").unwrap(), (MountFlags::empty(), String::new()));
        assert_eq!(split_all("defaults,,").unwrap(), (MountFlags::empty(), String::new()));
        assert_eq!(split_all("rbind").unwrap().0, MountFlags::BIND | MountFlags::REC);
        assert_eq!(split_all("mode=1777").unwrap(), (MountFlags::empty(), "mode=1777".into()));
    }

    #[test]
    fn later_words_win() {
        assert_eq!(split_all("ro,rw").unwrap().0, MountFlags::empty());
        assert_eq!(split_all("rw,ro").unwrap().0, MountFlags::RDONLY);
        let mut data = heapless::Vec::<u8, 8>::new();
        assert_eq!(split(b"rw,exec", MountFlags::RDONLY | MountFlags::NOEXEC, &mut data), Some(MountFlags::empty()));
    }

    #[test]
    fn data_that_does_not_fit_is_refused() {
        assert_eq!(split_all(&"x".repeat(33)), None);
        assert_eq!(split_all(&format!("{},y", "x".repeat(31))), None, "the comma does not fit");
    }
}
