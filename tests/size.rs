//! The release binary is fully static (no interpreter, no dynamic section) and under 1 MiB,
//! and its .data holds no table.
mod common;

const PT_DYNAMIC: u32 = 2;
const PT_INTERP: u32 = 3;
const CEILING: u64 = 1024 * 1024;

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes(b[at..at + 2].try_into().unwrap())
}
fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}
fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}

/// Program header types of a little-endian ELF64 file.
fn segment_types(elf: &[u8]) -> Vec<u32> {
    assert_eq!(&elf[..4], b"\x7fELF", "not an ELF file");
    assert_eq!(elf[4], 2, "not ELF64");
    let (phoff, phentsize, phnum) = (u64_at(elf, 0x20) as usize, u16_at(elf, 0x36) as usize, u16_at(elf, 0x38) as usize);
    (0..phnum).map(|i| u32_at(elf, phoff + i * phentsize)).collect()
}

#[test]
fn release_binary_is_static_and_small() {
    let path = common::keel_bin();
    let elf = std::fs::read(&path).unwrap();
    let types = segment_types(&elf);
    assert!(!types.is_empty());
    assert!(!types.contains(&PT_INTERP), "has an ELF interpreter: not static");
    assert!(!types.contains(&PT_DYNAMIC), "has a dynamic section (DT_NEEDED possible): not static");
    assert_eq!(u16_at(&elf, 0x10), 2, "ET_EXEC: not a PIE needing relocation");
    assert_eq!(u16_at(&elf, 0x12), 62, "EM_X86_64");
    let size = elf.len() as u64;
    println!("{}: {size} bytes", path.display());
    assert!(size < CEILING, "{size} bytes is over 1 MiB");
}

/// Section sizes of a little-endian ELF64 file, by name.
fn section_sizes(elf: &[u8]) -> Vec<(String, u64)> {
    let (shoff, shentsize, shnum, shstrndx) =
        (u64_at(elf, 0x28) as usize, u16_at(elf, 0x3a) as usize, u16_at(elf, 0x3c) as usize, u16_at(elf, 0x3e) as usize);
    let header = |i: usize| shoff + i * shentsize;
    let names = u64_at(elf, header(shstrndx) + 0x18) as usize;
    (0..shnum)
        .map(|i| {
            let at = names + u32_at(elf, header(i)) as usize;
            let end = at + elf[at..].iter().position(|&b| b == 0).unwrap();
            (String::from_utf8_lossy(&elf[at..end]).into_owned(), u64_at(elf, header(i) + 0x20))
        })
        .collect()
}

/// A static whose initial value is not all zero bytes goes to .data and costs its whole size
/// in the file (and a resident page): PID 1's tables must start zeroed, in .bss (an empty
/// slice's pointer is not null: see services::table::Table::EMPTY).
#[test]
fn release_binary_has_no_table_in_data() {
    let elf = std::fs::read(common::keel_bin()).unwrap();
    let sections = section_sizes(&elf);
    let size = |name: &str| sections.iter().find(|(n, _)| n == name).map(|&(_, s)| s);
    assert!(size(".text").is_some_and(|s| s > 0), "no .text among {sections:?}");
    let data = size(".data").unwrap_or(0);
    println!(".data: {data} bytes, .bss: {:?}", size(".bss"));
    assert!(data <= 1024, ".data is {data} bytes: a table with a non-zero initial value?");
}

/// No panic site of PID 1 formats its message: core::fmt (3.5 KB with its Display impls)
/// stays out of the binary. Each of these is the text of a panic that formats (an index, a
/// slice range, an `assert_eq!`); `just panic-sites` names the line that brings one back.
#[test]
fn no_panic_message_is_formatted() {
    let elf = std::fs::read(common::keel_bin()).unwrap();
    for text in ["index out of bounds: the len is ", "range end index ", "out of range for slice of length", "assertion `left"] {
        let found = elf.windows(text.len()).any(|w| w == text.as_bytes());
        assert!(!found, "{text:?} is in the binary: a formatting panic site is back (just panic-sites)");
    }
}
