//! The release binary is fully static (no interpreter, no dynamic section) and under 1 MiB.
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
