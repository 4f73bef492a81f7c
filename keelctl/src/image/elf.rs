//! What the image builder needs from an ELF file, read with the `object` crate (it checks
//! every offset and size): the class and machine, the interpreter (PT_INTERP), the dynamic
//! section's DT_NEEDED, DT_RUNPATH and DT_RPATH (found through the program headers, as the
//! loader finds them), and a section's bytes by name (a kernel module's .modinfo).

use object::elf;
use object::read::elf::{Dyn, FileHeader, ProgramHeader, SectionHeader};
use object::Endianness;

pub const MAGIC: &[u8] = b"\x7fELF";

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Elf {
    pub class64: bool,
    pub machine: u16,
    /// e_type: ET_EXEC 2, ET_DYN 3 (shared objects and PIE), ET_REL 1 (kernel modules).
    pub kind: u16,
    pub interp: Option<String>,
    pub needed: Vec<String>,
    pub runpath: Vec<String>,
    pub rpath: Vec<String>,
}

impl Elf {
    /// Needs a loader: an interpreter or shared libraries.
    pub fn is_dynamic(&self) -> bool {
        self.interp.is_some() || !self.needed.is_empty()
    }
}

/// A name for an e_machine, for messages.
pub fn machine_name(machine: u16) -> String {
    match elf::Machine(machine) {
        elf::EM_X86_64 => "x86_64".into(),
        elf::EM_AARCH64 => "aarch64".into(),
        elf::EM_386 => "i386".into(),
        elf::EM_ARM => "arm".into(),
        elf::EM_RISCV => "riscv".into(),
        _ => format!("e_machine {machine}"),
    }
}

pub fn is_elf(data: &[u8]) -> bool {
    data.starts_with(MAGIC)
}

fn class64(data: &[u8]) -> Result<bool, String> {
    match data.get(4) {
        _ if !is_elf(data) => Err("not an ELF file".into()),
        Some(&c) if c == elf::ELFCLASS64.0 => Ok(true),
        Some(&c) if c == elf::ELFCLASS32.0 => Ok(false),
        _ => Err("an ELF file of an unknown class".into()),
    }
}

pub fn parse(data: &[u8]) -> Result<Elf, String> {
    if class64(data)? {
        parse_as::<elf::FileHeader64<Endianness>>(data, true)
    } else {
        parse_as::<elf::FileHeader32<Endianness>>(data, false)
    }
}

fn bad(e: object::Error) -> String {
    format!("bad ELF file: {e}")
}

fn parse_as<H: FileHeader<Endian = Endianness>>(data: &[u8], class64: bool) -> Result<Elf, String> {
    let h = H::parse(data).map_err(bad)?;
    let endian = h.endian().map_err(bad)?;
    let phdrs = h.program_headers(endian, data).map_err(bad)?;
    let mut out = Elf {
        class64,
        machine: h.e_machine(endian).0,
        kind: h.e_type(endian).0,
        interp: None,
        needed: Vec::new(),
        runpath: Vec::new(),
        rpath: Vec::new(),
    };
    for ph in phdrs {
        if let Some(interp) = ph.interpreter(endian, data).map_err(bad)? {
            out.interp = Some(text(interp)?);
        }
    }
    let Some(dynamic) = phdrs.iter().find_map(|ph| ph.dynamic(endian, data).transpose()).transpose().map_err(bad)? else {
        return Ok(out);
    };
    let tag = |d: &H::Dyn| d.d_tag(endian).0 as u32;
    let entries: Vec<(u32, u64)> = dynamic
        .iter()
        .map(|d| (tag(d), d.d_val(endian).into()))
        .take_while(|&(t, _)| t != elf::DT_NULL.0 as u32)
        .collect();
    let value = |t: elf::DynamicTag| entries.iter().find(|e| e.0 == t.0 as u32).map(|e| e.1);
    let (Some(strtab), Some(strsz)) = (value(elf::DT_STRTAB), value(elf::DT_STRSZ)) else {
        return if entries.iter().any(|e| e.0 == elf::DT_NEEDED.0 as u32) {
            Err("bad ELF file: DT_NEEDED without a string table".into())
        } else {
            Ok(out)
        };
    };
    // DT_STRTAB is an address: the loaded segment that holds it gives the bytes.
    let strings = phdrs
        .iter()
        .filter(|ph| ph.p_type(endian) == elf::PT_LOAD)
        .find_map(|ph| ph.data_range(endian, data, strtab, strsz).ok().flatten())
        .ok_or("bad ELF file: the dynamic string table is outside every loaded segment")?;
    let string = |offset: u64| -> Result<String, String> {
        let tail = usize::try_from(offset).ok().and_then(|o| strings.get(o..)).ok_or("bad ELF file: a dynamic string out of bounds")?;
        let end = tail.iter().position(|&b| b == 0).ok_or("bad ELF file: an unterminated dynamic string")?;
        text(&tail[..end])
    };
    for &(t, v) in &entries {
        if t == elf::DT_NEEDED.0 as u32 {
            out.needed.push(string(v)?);
        } else if t == elf::DT_RUNPATH.0 as u32 {
            out.runpath.extend(string(v)?.split(':').filter(|d| !d.is_empty()).map(String::from));
        } else if t == elf::DT_RPATH.0 as u32 {
            out.rpath.extend(string(v)?.split(':').filter(|d| !d.is_empty()).map(String::from));
        }
    }
    Ok(out)
}

fn text(bytes: &[u8]) -> Result<String, String> {
    String::from_utf8(bytes.to_vec()).map_err(|_| format!("bad ELF file: a name that is not UTF-8: {:?}", String::from_utf8_lossy(bytes)))
}

/// The bytes of the section called `name`, if there is one.
pub fn section<'a>(data: &'a [u8], name: &[u8]) -> Result<Option<&'a [u8]>, String> {
    fn find<'a, H: FileHeader<Endian = Endianness>>(data: &'a [u8], name: &[u8]) -> Result<Option<&'a [u8]>, String> {
        let h = H::parse(data).map_err(bad)?;
        let endian = h.endian().map_err(bad)?;
        let sections = h.sections(endian, data).map_err(bad)?;
        match sections.section_by_name(endian, name) {
            None => Ok(None),
            Some((_, s)) => s.data(endian, data).map(Some).map_err(bad),
        }
    }
    if class64(data)? {
        find::<elf::FileHeader64<Endianness>>(data, name)
    } else {
        find::<elf::FileHeader32<Endianness>>(data, name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host_machine() -> u16 {
        crate::image::test_arch().machine()
    }

    #[test]
    fn a_dynamic_host_program() {
        // Debian's coreutils: PIE, the glibc loader, libc.so.6.
        let data = std::fs::read("/usr/bin/env").expect("/usr/bin/env");
        let e = parse(&data).unwrap();
        assert!(e.class64);
        assert_eq!(e.machine, host_machine());
        assert_eq!(e.kind, elf::ET_DYN.0);
        let interp = e.interp.clone().unwrap();
        assert!(interp.starts_with('/') && interp.contains("ld-linux"), "{interp}");
        assert!(e.needed.contains(&"libc.so.6".to_string()), "{:?}", e.needed);
        assert!(e.is_dynamic());
    }

    #[test]
    fn a_shared_library_and_a_static_program() {
        // A shared object: no interpreter, but libraries (glibc's libc.so.6 has both: it runs).
        let libm = std::fs::read("/lib/x86_64-linux-gnu/libm.so.6").or_else(|_| std::fs::read("/lib/aarch64-linux-gnu/libm.so.6")).unwrap();
        let e = parse(&libm).unwrap();
        assert_eq!(e.kind, elf::ET_DYN.0);
        assert_eq!(e.interp, None);
        assert!(e.needed.iter().any(|n| n == "libc.so.6") && e.needed.iter().any(|n| n.starts_with("ld-linux")), "{:?}", e.needed);
        // busybox-static: neither.
        let busybox = std::fs::read("/bin/busybox").expect("/bin/busybox: apt-get install busybox-static");
        let e = parse(&busybox).unwrap();
        assert_eq!((e.is_dynamic(), e.interp, e.needed.len()), (false, None, 0));
    }

    #[test]
    fn sections_by_name() {
        let data = std::fs::read("/usr/bin/env").unwrap();
        let interp = section(&data, b".interp").unwrap().unwrap();
        assert_eq!(interp.strip_suffix(b"\0").unwrap(), parse(&data).unwrap().interp.unwrap().as_bytes());
        assert_eq!(section(&data, b".no-such").unwrap(), None);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let data = std::fs::read("/usr/bin/env").unwrap();
        assert_eq!(parse(b"#!/bin/sh\n"), Err("not an ELF file".into()));
        assert!(parse(b"\x7fELF\x03").is_err());
        // Every truncation of a real file: an error or a smaller answer, never a panic.
        for len in (0..4096).chain([data.len() / 2, data.len() - 1]) {
            let _ = parse(&data[..len.min(data.len())]);
            let _ = section(&data[..len.min(data.len())], b".modinfo");
        }
        // Flipped bytes in the headers.
        let mut rng = 0x9e3779b97f4a7c15u64;
        for _ in 0..2000 {
            let mut d = data[..8192.min(data.len())].to_vec();
            for _ in 0..4 {
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                let i = (rng as usize) % d.len();
                d[i] = (rng >> 32) as u8;
            }
            let _ = parse(&d);
        }
    }
}
