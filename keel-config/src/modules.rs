//! keel's own list of kernel modules: what PID 1 loads at every boot (src/boot/phases.rs,
//! before the config's `[system] modules` and `keel.modules=`) and what `keelctl image`
//! packs into every image. One list, so the two cannot drift apart.
//!
//! It covers Debian's kernel under QEMU: virtio disks and consoles, ext4 (crc32c is only a
//! soft dependency of ext4, so it is named), the ACPI power button and evdev (power keys),
//! and vsock. On aarch64 (QEMU virt, device tree, no ACPI) the power key is gpio-keys on the
//! PL061 (built into Debian's arm64 kernel, as `button` is): gpio_keys is on that list only,
//! so x86 never warns about it. A fixed list per architecture until modules are coldplugged
//! by modalias.

/// The list with one architecture's extras before vsock (the order PID 1 loads them in).
macro_rules! boot_modules {
    ($($extra:literal),*) => {
        &[
            b"virtio_pci",
            b"virtio_blk",
            b"virtio_console",
            b"crc32c_generic",
            b"ext4",
            b"button",
            b"evdev",
            $($extra,)*
            b"vmw_vsock_virtio_transport",
        ]
    };
}

pub static X86_64: &[&[u8]] = boot_modules!();
pub static AARCH64: &[&[u8]] = boot_modules!(b"gpio_keys");

/// The list of the architecture this is compiled for (PID 1's).
#[cfg(target_arch = "aarch64")]
pub static THIS_ARCH: &[&[u8]] = AARCH64;
#[cfg(not(target_arch = "aarch64"))]
pub static THIS_ARCH: &[&[u8]] = X86_64;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::values::valid_module_name;

    #[test]
    fn names_are_valid_and_distinct() {
        for list in [X86_64, AARCH64] {
            for (i, m) in list.iter().enumerate() {
                assert!(valid_module_name(m), "{:?}", core::str::from_utf8(m));
                assert!(!list[..i].contains(m), "{:?} twice", core::str::from_utf8(m));
            }
        }
        assert!(AARCH64.contains(&&b"gpio_keys"[..]) && !X86_64.contains(&&b"gpio_keys"[..]));
    }
}
