//! Identifiers and their text: UUIDs as `8-4-4-4-12` lower case (GPT GUIDs converted from
//! their mixed-endian disk form), vfat serials as `XXXX-XXXX` upper case (blkid), MBR
//! partitions as `ssssssss-pp` (the kernel's PARTUUID). `Spec` is a `root=` value; matching
//! ignores case and allocates nothing.

use super::Found;

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Id {
    /// 16 bytes in the order they are printed.
    Uuid([u8; 16]),
    /// A vfat volume serial number.
    FatSerial(u32),
    /// An MBR partition: the disk signature and the partition number.
    MbrPart { disk: u32, part: u8 },
}

impl Id {
    /// A filesystem UUID; all zeros is none (blkid sets no UUID then).
    pub fn uuid(bytes: [u8; 16]) -> Option<Id> {
        (bytes != [0; 16]).then_some(Id::Uuid(bytes))
    }

    /// A vfat serial; zero is none (as blkid).
    pub fn fat_serial(serial: u32) -> Option<Id> {
        (serial != 0).then_some(Id::FatSerial(serial))
    }

    /// A GPT GUID as stored: the first three fields little-endian, the rest in order.
    pub fn from_guid(raw: [u8; 16]) -> Id {
        let mut b = raw;
        b.swap(0, 3);
        b.swap(1, 2);
        b.swap(4, 5);
        b.swap(6, 7);
        Id::Uuid(b)
    }

    pub fn text(&self) -> IdText {
        let mut t = IdText { buf: [0; 36], len: 0 };
        match *self {
            Id::Uuid(b) => {
                for (i, &byte) in b.iter().enumerate() {
                    if matches!(i, 4 | 6 | 8 | 10) {
                        t.push(b'-');
                    }
                    t.hex(byte, false);
                }
            }
            Id::FatSerial(s) => {
                for (i, byte) in s.to_be_bytes().into_iter().enumerate() {
                    if i == 2 {
                        t.push(b'-');
                    }
                    t.hex(byte, true);
                }
            }
            Id::MbrPart { disk, part } => {
                disk.to_be_bytes().into_iter().for_each(|byte| t.hex(byte, false));
                t.push(b'-');
                t.hex(part, false);
            }
        }
        t
    }

    /// Whether `text` is this identifier's text, in any case: its shape (the dashes where
    /// `text` puts them), then its hex digits as bytes (no text is made: `text` is for show).
    pub fn matches(&self, text: &[u8]) -> bool {
        let mut want = [0u8; 16];
        let (dashes, len): (&[usize], usize) = match *self {
            Id::Uuid(b) => {
                want = b;
                (&[8, 13, 18, 23], 36)
            }
            Id::FatSerial(s) => {
                want[..4].copy_from_slice(&s.to_be_bytes());
                (&[4], 9)
            }
            Id::MbrPart { disk, part } => {
                want[..4].copy_from_slice(&disk.to_be_bytes());
                want[4] = part;
                (&[8], 11)
            }
        };
        let mut got = [0u8; 16];
        let digits = text.iter().filter_map(|&c| char::from(c).to_digit(16));
        for (i, d) in digits.enumerate() {
            if let Some(b) = got.get_mut(i / 2) {
                *b = *b << 4 | d as u8;
            }
        }
        keel_config::values::shaped(text, dashes, len) && got == want
    }
}

/// An identifier's text, at most 36 bytes, ASCII.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct IdText {
    buf: [u8; 36],
    len: u8,
}

impl IdText {
    pub fn as_bytes(&self) -> &[u8] {
        self.buf.get(..usize::from(self.len)).unwrap_or(&[])
    }

    fn push(&mut self, c: u8) {
        if let Some(slot) = self.buf.get_mut(usize::from(self.len)) {
            *slot = c;
            self.len += 1;
        }
    }

    fn hex(&mut self, byte: u8, upper: bool) {
        let digits = if upper { b"0123456789ABCDEF" } else { b"0123456789abcdef" };
        self.push(digits[usize::from(byte >> 4)]);
        self.push(digits[usize::from(byte & 15)]);
    }
}

/// What `root=` names: the shared grammar (keel-config's `values::Device`, which the
/// configuration compiler checks `[root] device` and mount sources with).
pub use keel_config::values::Device as Spec;

/// Whether `identify`'s result is the filesystem a `UUID=` or `LABEL=` names.
pub fn matches(spec: &Spec, found: &Found) -> bool {
    match *spec {
        Spec::Uuid(text) => found.uuid.is_some_and(|id| id.matches(text)),
        Spec::Label(label) => found.label == label,
        Spec::PartUuid { .. } | Spec::Path(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::FsType;

    fn text(id: Id) -> String {
        String::from_utf8(id.text().as_bytes().to_vec()).unwrap()
    }

    #[test]
    fn text_forms() {
        let u = *b"\x0e\x8b\x1c\x4a\x7f\x3d\x4b\x6e\x9a\x21\x5c\x3d\x2e\x1f\x0a\x9b";
        assert_eq!(text(Id::Uuid(u)), "0e8b1c4a-7f3d-4b6e-9a21-5c3d2e1f0a9b");
        assert_eq!(text(Id::FatSerial(0x1a2b_3c4d)), "1A2B-3C4D");
        assert_eq!(text(Id::FatSerial(0xab)), "0000-00AB");
        assert_eq!(text(Id::MbrPart { disk: 0x5eed_1234, part: 5 }), "5eed1234-05");
        assert_eq!(text(Id::MbrPart { disk: 0xab, part: 0xfe }), "000000ab-fe");
        assert_eq!(Id::uuid([0; 16]), None);
        assert_eq!(Id::fat_serial(0), None);
    }

    /// Partition 2 of vectors/gpt.lba0-33 as stored (bytes 1152..1168), and partx's text.
    #[test]
    fn gpt_guids_are_mixed_endian() {
        let disk = include_bytes!("vectors/gpt.lba0-33");
        let raw: [u8; 16] = disk[1024 + 128 + 16..1024 + 128 + 32].try_into().unwrap();
        assert_eq!(raw[..4], [0xd4, 0xc3, 0xb2, 0xa1]);
        assert_eq!(text(Id::from_guid(raw)), "a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d");
    }

    #[test]
    fn matching_ignores_case_only() {
        let id = Id::from_guid(*b"\x44\x33\x22\x11\x66\x55\x78\x47\x89\x9a\xab\xbc\xcd\xde\xef\xf0");
        assert!(id.matches(b"11223344-5566-4778-899a-abbccddeeff0"));
        assert!(id.matches(b"11223344-5566-4778-899A-ABBCCDDEEFF0"));
        assert!(!id.matches(b"11223344-5566-4778-899a-abbccddeeff"));
        assert!(!id.matches(b"112233445566-4778-899a-abbccddeeff0-"));
        assert!(Id::FatSerial(0x2b3c_4d5e).matches(b"2b3c-4d5e"));
        assert!(Id::MbrPart { disk: 0x5eed_1234, part: 1 }.matches(b"5EED1234-01"));
        assert!(!Id::MbrPart { disk: 0x5eed_1234, part: 1 }.matches(b"5eed1234-1"));
    }

    #[test]
    fn specs_match_found_filesystems() {
        let found = Found { fs: FsType::Vfat, uuid: Id::fat_serial(0x1a2b_3c4d), label: b"KEEL-FAT12" };
        let m = |text: &[u8], found: &Found| matches(&Spec::parse(text).unwrap(), found);
        assert!(m(b"UUID=1a2b-3c4d", &found));
        assert!(!m(b"UUID=1a2b-3c4e", &found));
        assert!(m(b"LABEL=KEEL-FAT12", &found));
        assert!(!m(b"LABEL=keel-fat12", &found));
        assert!(!m(b"PARTUUID=1a2b3c4d-01", &found));
        let none = Found { fs: FsType::Squashfs, uuid: None, label: b"" };
        assert!(!m(b"UUID=0e8b1c4a-7f3d-4b6e-9a21-5c3d2e1f0a9b", &none));
    }
}
