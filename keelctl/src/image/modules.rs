//! Kernel modules from a module tree (`/lib/modules/RELEASE` of the host, or of an unpacked
//! Debian package): the modules asked for, each with its dependency closure from its own
//! .modinfo `depends=` (a Debian package ships no modules.dep: its postinst runs depmod),
//! stored under the same relative paths, plus a modules.dep (depmod's format, those
//! modules only; keel loads dependencies first from it) and a modules.alias (their
//! .modinfo `alias=` lines, for coldplug by modalias).
//!
//! Modules are stored as shipped, unless they are compressed and the kernel was built
//! without CONFIG_MODULE_DECOMPRESS: then decompressed (`.ko`), since keel loads them with
//! finit_module(2) and such a kernel only takes plain ELF. With no kernel config to say, they
//! are decompressed (always safe).

use super::compress::{decompress_module, MODULE_SUFFIXES};
use super::elf;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::{Path, PathBuf};

#[derive(Debug)]
pub struct Tree {
    pub dir: PathBuf,
    pub release: String,
    /// Module name → its path relative to `dir` (the first found: updates/ first, as depmod).
    index: BTreeMap<String, String>,
    builtin: BTreeSet<String>,
}

/// A module's name from its file name (`crc32c-generic.ko.xz` → `crc32c_generic`).
pub fn module_name(file: &str) -> Option<String> {
    MODULE_SUFFIXES
        .iter()
        .rev()
        .find_map(|s| file.strip_suffix(s))
        .filter(|n| !n.is_empty())
        .map(|n| n.replace('-', "_"))
}

impl Tree {
    pub fn open(dir: &Path) -> Result<Tree, String> {
        let release = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .ok_or_else(|| format!("{}: not a module tree (give /lib/modules/RELEASE)", dir.display()))?;
        if !dir.join("kernel").is_dir() && !dir.join("modules.order").is_file() {
            return Err(format!("{}: not a module tree (no kernel/ nor modules.order; give /lib/modules/RELEASE)", dir.display()));
        }
        let mut index = BTreeMap::new();
        let updates = dir.join("updates");
        if updates.is_dir() {
            walk(dir, &updates, &mut index)?;
        }
        walk(dir, dir, &mut index)?;
        let builtin = match std::fs::read_to_string(dir.join("modules.builtin")) {
            Ok(text) => text.split_whitespace().filter_map(|l| module_name(l.rsplit('/').next()?)).collect(),
            Err(_) => BTreeSet::new(),
        };
        Ok(Tree { dir: dir.to_path_buf(), release, index, builtin })
    }

    /// Where the kernel's config may be, and whether it enables CONFIG_MODULE_DECOMPRESS.
    /// None: no config found.
    pub fn can_decompress(&self) -> Option<bool> {
        let rel = &self.release;
        // The tree's own root (the package's, or the host's /boot for /lib/modules/REL).
        let mut places = vec![self.dir.join("../../..").join(format!("boot/config-{rel}")), self.dir.join("build/.config")];
        places.push(PathBuf::from(format!("/boot/config-{rel}")));
        let running = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
        for path in places {
            if let Ok(text) = std::fs::read_to_string(&path) {
                return Some(text.lines().any(|l| l.trim() == "CONFIG_MODULE_DECOMPRESS=y"));
            }
        }
        if running.trim() == rel {
            if let Ok(gz) = std::fs::read("/proc/config.gz") {
                let mut text = String::new();
                if std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&gz[..]), &mut text).is_ok() {
                    return Some(text.lines().any(|l| l.trim() == "CONFIG_MODULE_DECOMPRESS=y"));
                }
            }
        }
        None
    }
}

/// Index `dir`'s module files, then its subdirectories', each sorted (symlinks not followed:
/// a tree's build/ and source/ point elsewhere).
fn walk(top: &Path, dir: &Path, index: &mut BTreeMap<String, String>) -> Result<(), String> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .filter_map(|e| e.ok())
        .filter_map(|e| Some((e.file_name().to_string_lossy().into_owned(), e.file_type().ok()?)))
        .collect();
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    for (name, kind) in &entries {
        if let (true, Some(module)) = (kind.is_file(), module_name(name)) {
            let rel = dir.join(name).strip_prefix(top).map(|p| p.to_string_lossy().into_owned()).unwrap_or_default();
            index.entry(module).or_insert(rel);
        }
    }
    for (name, kind) in &entries {
        if kind.is_dir() {
            walk(top, &dir.join(name), index)?;
        }
    }
    Ok(())
}

/// Hardware classes for `--modules-for` (docs/image.md): what each packs, as module names,
/// `dir/` for every module under kernel/dir/ of the tree, or `@class` for another class.
/// keel's coldplug then loads whichever of them the machine's devices match. Names a tree
/// lacks (built in, or not built) are passed over.
pub const CLASSES: &[(&str, &[&str])] = &[
    // drivers/virtio: the PCI and MMIO transports, input, balloon, mem.
    (
        "virtio",
        &["drivers/virtio/", "virtio_blk", "virtio_net", "virtio_console", "virtio_rng", "virtio_scsi", "vmw_vsock_virtio_transport", "virtiofs", "9pnet_virtio"],
    ),
    ("nvme", &["nvme"]),
    ("mmc", &["drivers/mmc/"]),
    // Host controllers; usbcore comes as their dependency.
    ("usb", &["drivers/usb/host/"]),
    ("usb-storage", &["@usb", "drivers/usb/storage/", "sd_mod"]),
    ("block", &["virtio_blk", "virtio_scsi", "ahci", "ata_piix", "sd_mod", "@nvme", "@mmc", "@usb-storage"]),
    // Keyboards and power keys (gpio-keys, PMIC keys in misc), USB and virtio ones.
    ("input", &["evdev", "drivers/input/keyboard/", "drivers/input/misc/", "virtio_input", "@usb", "usbhid", "hid_generic"]),
    ("net", &["drivers/net/ethernet/", "virtio_net"]),
    ("all", &[""]),
];

/// The modules of `class` in `tree` (`CLASSES`), sorted.
pub fn class(tree: &Tree, class: &str) -> Result<Vec<String>, String> {
    let mut names = BTreeSet::new();
    add_class(tree, class, &mut names, 0)?;
    Ok(names.into_iter().collect())
}

fn add_class(tree: &Tree, class: &str, names: &mut BTreeSet<String>, depth: usize) -> Result<(), String> {
    let Some((_, items)) = CLASSES.iter().find(|(c, _)| *c == class).filter(|_| depth < 4) else {
        let known: Vec<&str> = CLASSES.iter().map(|(c, _)| *c).collect();
        return Err(format!("--modules-for: no class {class} (one of {})", known.join(", ")));
    };
    for item in items.iter() {
        if let Some(other) = item.strip_prefix('@') {
            add_class(tree, other, names, depth + 1)?;
        } else if item.is_empty() || item.ends_with('/') {
            // Below kernel/ (or updates/, extra/...): the path after its first component.
            let under = |rel: &String| rel.split_once('/').is_some_and(|(_, path)| path.starts_with(item));
            names.extend(tree.index.iter().filter(|(_, rel)| under(rel)).map(|(name, _)| name.clone()));
        } else if tree.index.contains_key(&item.replace('-', "_")) {
            names.insert(item.replace('-', "_"));
        }
    }
    Ok(())
}

/// The `key=value` strings of a module's .modinfo section.
pub fn modinfo(elf_data: &[u8]) -> Result<Vec<(String, String)>, String> {
    let info = elf::section(elf_data, b".modinfo")?.ok_or("no .modinfo section")?;
    Ok(info
        .split(|&b| b == 0)
        .filter_map(|item| {
            let item = String::from_utf8_lossy(item);
            let (k, v) = item.split_once('=')?;
            Some((k.to_string(), v.to_string()))
        })
        .collect())
}

/// One module asked for, and by whom (for the warning when the tree lacks it).
pub struct Want {
    pub name: String,
    pub by: String,
}

struct Chosen {
    /// Its path in the archive, relative to lib/modules/RELEASE.
    rel: String,
    data: Vec<u8>,
    deps: Vec<String>,
    aliases: Vec<String>,
}

#[derive(Debug)]
pub struct Packed {
    /// Paths relative to lib/modules/RELEASE, and their bytes.
    pub files: Vec<(String, Vec<u8>)>,
    pub names: Vec<String>,
    pub warnings: Vec<String>,
    pub notes: Vec<String>,
}

/// The modules `wanted` asks for and everything they depend on, `omit` left out (its file
/// and line; lines of modules needing it still name it, so loading fails in the guest as
/// it would with the file missing).
pub fn pack(tree: &Tree, wanted: &[Want], omit: &[String], machine: u16) -> Result<Packed, String> {
    let mut warnings = Vec::new();
    let mut notes = Vec::new();
    let omit: BTreeSet<String> = omit.iter().map(|m| m.replace('-', "_")).collect();
    let decompress_ok = tree.can_decompress();
    let mut chosen: BTreeMap<String, Chosen> = BTreeMap::new();
    let mut order: Vec<String> = Vec::new();
    // Breadth first: what was asked for, then dependencies (None: nobody asked by name).
    let mut todo: VecDeque<(String, Option<String>)> = wanted.iter().map(|w| (w.name.replace('-', "_"), Some(w.by.clone()))).collect();
    let mut decompressed = 0;
    while let Some((name, by)) = todo.pop_front() {
        if chosen.contains_key(&name) || omit.contains(&name) {
            continue;
        }
        let Some(rel) = tree.index.get(&name) else {
            match by {
                _ if tree.builtin.contains(&name) => notes.push(format!("{name} is built into the kernel")),
                Some(by) => warnings.push(format!("no module {name} in {} (asked for by {by})", tree.dir.display())),
                None => return Err(format!("a module depends on {name}, which is not in {}", tree.dir.display())),
            }
            continue;
        };
        let path = tree.dir.join(rel);
        let raw = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let plain = decompress_module(rel, &raw)?;
        let e = elf::parse(&plain).map_err(|why| format!("{}: {why}", path.display()))?;
        if e.machine != machine {
            return Err(format!("{}: a module for {}, not {}", path.display(), elf::machine_name(e.machine), elf::machine_name(machine)));
        }
        let info = modinfo(&plain).map_err(|why| format!("{}: {why}", path.display()))?;
        let deps: Vec<String> = info
            .iter()
            .filter(|(k, _)| k == "depends")
            .flat_map(|(_, v)| v.split(','))
            .filter(|d| !d.is_empty())
            .map(|d| d.replace('-', "_"))
            .collect();
        let aliases = info.iter().filter(|(k, _)| k == "alias").map(|(_, v)| v.clone()).collect();
        let (rel, data) = if rel.ends_with(".ko") || decompress_ok == Some(true) {
            (rel.clone(), raw)
        } else {
            decompressed += 1;
            (rel[..rel.rfind(".ko").unwrap_or(rel.len()) + 3].to_string(), plain)
        };
        todo.extend(deps.iter().map(|d| (d.clone(), None)));
        order.push(name.clone());
        chosen.insert(name, Chosen { rel, data, deps, aliases });
    }
    if decompressed > 0 {
        notes.push(match decompress_ok {
            Some(_) => format!("{decompressed} compressed modules stored decompressed: the kernel has no CONFIG_MODULE_DECOMPRESS"),
            None => format!("{decompressed} compressed modules stored decompressed: no kernel config found for {}", tree.release),
        });
    }
    let path_of = |n: &str| -> String {
        chosen.get(n).map(|c| c.rel.clone()).or_else(|| tree.index.get(n).cloned()).unwrap_or_else(|| format!("{n}.ko"))
    };
    // depmod's modules.dep: "path: deps...", the dependencies ordered so that loading them
    // last to first (as modprobe does) loads each module after everything it needs.
    let closure = |name: &str| -> Vec<String> {
        fn visit(n: &str, chosen: &BTreeMap<String, Chosen>, seen: &mut BTreeSet<String>, out: &mut Vec<String>) {
            for d in chosen.get(n).map(|c| c.deps.as_slice()).unwrap_or(&[]) {
                if seen.insert(d.clone()) {
                    visit(d, chosen, seen, out);
                    out.push(d.clone());
                }
            }
        }
        let mut out = Vec::new();
        visit(name, &chosen, &mut BTreeSet::new(), &mut out);
        out.reverse();
        out
    };
    let mut dep_lines: Vec<String> = order
        .iter()
        .map(|n| {
            let deps: Vec<String> = closure(n).iter().map(|d| path_of(d)).collect();
            format!("{}: {}", chosen[n].rel, deps.join(" ")).trim_end().to_string()
        })
        .collect();
    dep_lines.sort();
    let mut alias = String::from("# Aliases extracted from modules themselves.\n");
    for (name, c) in &chosen {
        for a in &c.aliases {
            alias += &format!("alias {a} {name}\n");
        }
    }
    let mut names: Vec<String> = chosen.keys().cloned().collect();
    names.sort();
    let mut files: Vec<(String, Vec<u8>)> = chosen.into_values().map(|c| (c.rel, c.data)).collect();
    files.push(("modules.dep".into(), dep_lines.iter().map(|l| format!("{l}\n")).collect::<String>().into_bytes()));
    files.push(("modules.alias".into(), alias.into_bytes()));
    Ok(Packed { files, names, warnings, notes })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::image::test_dir;

    #[test]
    fn names_from_files() {
        assert_eq!(module_name("crc32c-generic.ko.xz").as_deref(), Some("crc32c_generic"));
        assert_eq!(module_name("ext4.ko").as_deref(), Some("ext4"));
        assert_eq!(module_name("virtio_pci.ko.zst").as_deref(), Some("virtio_pci"));
        assert_eq!(module_name("modules.dep"), None);
        assert_eq!(module_name(".ko"), None);
    }

    /// A relocatable ELF64 with only a .modinfo section (and the section-name table): what
    /// the builder reads of a module.
    pub(crate) fn fake_module(machine: u16, modinfo: &str) -> Vec<u8> {
        let shstrtab = b"\0.modinfo\0.shstrtab\0";
        let info = modinfo.replace('\n', "\0");
        let mut out = vec![0u8; 64];
        out[..8].copy_from_slice(b"\x7fELF\x02\x01\x01\0");
        out[16..18].copy_from_slice(&1u16.to_le_bytes()); // ET_REL
        out[18..20].copy_from_slice(&machine.to_le_bytes());
        out[20..24].copy_from_slice(&1u32.to_le_bytes());
        let info_off = out.len();
        out.extend_from_slice(info.as_bytes());
        let str_off = out.len();
        out.extend_from_slice(shstrtab);
        out.resize(out.len().next_multiple_of(8), 0);
        let shoff = out.len();
        let section = |name: u32, kind: u32, off: usize, size: usize| {
            let mut s = vec![0u8; 64];
            s[0..4].copy_from_slice(&name.to_le_bytes());
            s[4..8].copy_from_slice(&kind.to_le_bytes());
            s[24..32].copy_from_slice(&(off as u64).to_le_bytes());
            s[32..40].copy_from_slice(&(size as u64).to_le_bytes());
            s[48..56].copy_from_slice(&1u64.to_le_bytes());
            s
        };
        out.extend(vec![0u8; 64]);
        out.extend(section(1, 1, info_off, info.len()));
        out.extend(section(10, 3, str_off, shstrtab.len()));
        out[40..48].copy_from_slice(&(shoff as u64).to_le_bytes());
        out[52..54].copy_from_slice(&64u16.to_le_bytes()); // e_ehsize
        out[58..60].copy_from_slice(&64u16.to_le_bytes()); // e_shentsize
        out[60..62].copy_from_slice(&3u16.to_le_bytes()); // e_shnum
        out[62..64].copy_from_slice(&2u16.to_le_bytes()); // e_shstrndx
        out
    }

    /// A tree under a fresh root: (the root, its lib/modules/6.1.0-test).
    fn tree(files: &[(&str, Vec<u8>)], config: Option<&str>) -> (PathBuf, PathBuf) {
        let base = test_dir("modtree");
        let dir = base.join("lib/modules/6.1.0-test");
        for (path, data) in files {
            let p = dir.join(path);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, data).unwrap();
        }
        std::fs::write(dir.join("modules.builtin"), "kernel/drivers/input/misc/button.ko\n").unwrap();
        if let Some(c) = config {
            std::fs::create_dir_all(base.join("boot")).unwrap();
            std::fs::write(base.join("boot/config-6.1.0-test"), c).unwrap();
        }
        (base, dir)
    }

    fn want(names: &[&str]) -> Vec<Want> {
        names.iter().map(|n| Want { name: n.to_string(), by: "the test".into() }).collect()
    }

    fn text(p: &Packed, name: &str) -> String {
        String::from_utf8(p.files.iter().find(|f| f.0 == name).unwrap().1.clone()).unwrap()
    }

    #[test]
    fn closure_modules_dep_and_aliases() {
        let m = |deps: &str, extra: &str| fake_module(62, &format!("license=GPL\ndepends={deps}\n{extra}"));
        let (base, dir) = tree(
            &[
                ("kernel/fs/ext4/ext4.ko", m("mbcache,jbd2", "alias=fs-ext4\nalias=ext3")),
                ("kernel/fs/jbd2/jbd2.ko", m("", "")),
                ("kernel/fs/mbcache.ko", m("", "")),
                ("kernel/drivers/virtio/virtio_blk.ko", m("virtio_ring,virtio", "alias=virtio:d00000002v*")),
                ("kernel/drivers/virtio/virtio_ring.ko", m("", "")),
                ("kernel/drivers/virtio/virtio.ko", m("virtio_ring", "")),
                ("kernel/crypto/crc32c-generic.ko", m("", "alias=crypto-crc32c")),
                ("kernel/drivers/unused.ko", m("", "")),
                // updates/ wins over kernel/, as with depmod.
                ("updates/jbd2.ko", m("", "alias=updated")),
            ],
            None,
        );
        let t = Tree::open(&dir).unwrap();
        assert_eq!(t.release, "6.1.0-test");
        let p = pack(&t, &want(&["virtio_blk", "crc32c-generic", "ext4", "button", "nosuch"]), &[], 62).unwrap();
        assert_eq!(p.names, ["crc32c_generic", "ext4", "jbd2", "mbcache", "virtio", "virtio_blk", "virtio_ring"]);
        assert_eq!(
            text(&p, "modules.dep"),
            "kernel/crypto/crc32c-generic.ko:\n\
             kernel/drivers/virtio/virtio.ko: kernel/drivers/virtio/virtio_ring.ko\n\
             kernel/drivers/virtio/virtio_blk.ko: kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko\n\
             kernel/drivers/virtio/virtio_ring.ko:\n\
             kernel/fs/ext4/ext4.ko: updates/jbd2.ko kernel/fs/mbcache.ko\n\
             kernel/fs/mbcache.ko:\n\
             updates/jbd2.ko:\n"
        );
        assert_eq!(
            text(&p, "modules.alias"),
            "# Aliases extracted from modules themselves.\n\
             alias crypto-crc32c crc32c_generic\nalias fs-ext4 ext4\nalias ext3 ext4\nalias updated jbd2\n\
             alias virtio:d00000002v* virtio_blk\n"
        );
        assert_eq!(p.notes, ["button is built into the kernel"]);
        assert_eq!(p.warnings, [format!("no module nosuch in {} (asked for by the test)", dir.display())]);
        assert!(!p.files.iter().any(|f| f.0.contains("unused")));
        // Omitted: its file and line go, the lines needing it still name it.
        let p = pack(&t, &want(&["ext4"]), &["jbd2".into()], 62).unwrap();
        assert_eq!(p.names, ["ext4", "mbcache"]);
        assert!(text(&p, "modules.dep").contains("kernel/fs/ext4/ext4.ko: updates/jbd2.ko kernel/fs/mbcache.ko\n"));
        // The wrong machine, a dependency the tree lacks: errors.
        let e = pack(&t, &want(&["ext4"]), &[], 183).unwrap_err();
        assert!(e.ends_with("ext4.ko: a module for x86_64, not aarch64"), "{e}");
        std::fs::write(dir.join("kernel/fs/mbcache.ko"), m("gone", "")).unwrap();
        let e = pack(&t, &want(&["ext4"]), &[], 62).unwrap_err();
        assert_eq!(e, format!("a module depends on gone, which is not in {}", dir.display()));
        std::fs::remove_dir_all(base).unwrap();
    }

    #[test]
    fn classes_pick_modules_by_name_and_directory() {
        let m = |extra: &str| fake_module(62, &format!("depends=\n{extra}"));
        let (base, dir) = tree(
            &[
                ("kernel/drivers/virtio/virtio_pci.ko", m("alias=pci:v00001AF4d*sv*sd*bc*sc*i*")),
                ("kernel/drivers/virtio/virtio_input.ko", m("alias=virtio:d00000012v*")),
                ("kernel/drivers/net/virtio_net.ko", m("alias=virtio:d00000001v*")),
                ("kernel/drivers/net/ethernet/intel/e1000/e1000.ko", m("alias=pci:v00008086d0000100Esv*sd*bc*sc*i*")),
                ("kernel/drivers/usb/host/xhci-pci.ko", m("")),
                ("kernel/drivers/usb/storage/usb-storage.ko", m("")),
                ("kernel/drivers/scsi/sd_mod.ko", m("")),
                ("kernel/drivers/virtiofoo/other.ko", m("")),
                ("kernel/fs/ext4/ext4.ko", m("")),
            ],
            None,
        );
        let t = Tree::open(&dir).unwrap();
        assert_eq!(class(&t, "virtio").unwrap(), ["virtio_input", "virtio_net", "virtio_pci"]);
        assert_eq!(class(&t, "net").unwrap(), ["e1000", "virtio_net"]);
        // Classes in classes; names the tree lacks (nvme, mmc here) are passed over.
        assert_eq!(class(&t, "usb-storage").unwrap(), ["sd_mod", "usb_storage", "xhci_pci"]);
        assert_eq!(class(&t, "block").unwrap(), ["sd_mod", "usb_storage", "xhci_pci"]);
        assert_eq!(class(&t, "all").unwrap().len(), 9);
        let e = class(&t, "gpu").unwrap_err();
        assert!(e.starts_with("--modules-for: no class gpu (one of virtio, "), "{e}");
        // Packed, their aliases go into the image's modules.alias for coldplug.
        let names = class(&t, "virtio").unwrap();
        let wanted: Vec<Want> = names.into_iter().map(|name| Want { name, by: "--modules-for virtio".into() }).collect();
        let p = pack(&t, &wanted, &[], 62).unwrap();
        assert_eq!(
            text(&p, "modules.alias"),
            "# Aliases extracted from modules themselves.\n\
             alias virtio:d00000012v* virtio_input\nalias virtio:d00000001v* virtio_net\n\
             alias pci:v00001AF4d*sv*sd*bc*sc*i* virtio_pci\n"
        );
        std::fs::remove_dir_all(base).unwrap();
    }

    #[test]
    fn compressed_modules_by_the_kernel_config() {
        let plain = fake_module(62, "depends=\nalias=x");
        let gz = crate::image::compress::Compress::Gzip.apply(plain.clone());
        let zst = crate::image::compress::Compress::Zstd.apply(plain.clone());
        let files = [("kernel/a.ko.gz", gz.clone()), ("kernel/b.ko.zst", zst.clone())];
        let check = |config: Option<&str>, stored_plain: bool, note: &str| {
            let (base, dir) = tree(&files, config);
            let p = pack(&Tree::open(&dir).unwrap(), &want(&["a", "b"]), &[], 62).unwrap();
            let got: BTreeMap<&str, &[u8]> = p.files.iter().map(|(n, d)| (n.as_str(), d.as_slice())).collect();
            if stored_plain {
                assert_eq!((got["kernel/a.ko"], got["kernel/b.ko"]), (&plain[..], &plain[..]));
                assert_eq!(text(&p, "modules.dep"), "kernel/a.ko:\nkernel/b.ko:\n");
            } else {
                assert_eq!((got["kernel/a.ko.gz"], got["kernel/b.ko.zst"]), (&gz[..], &zst[..]));
                assert_eq!(text(&p, "modules.dep"), "kernel/a.ko.gz:\nkernel/b.ko.zst:\n");
            }
            assert_eq!(p.notes.join("; "), note);
            std::fs::remove_dir_all(base).unwrap();
        };
        check(Some("CONFIG_MODULES=y\nCONFIG_MODULE_DECOMPRESS=y\n"), false, "");
        check(
            Some("# CONFIG_MODULE_DECOMPRESS is not set\n"),
            true,
            "2 compressed modules stored decompressed: the kernel has no CONFIG_MODULE_DECOMPRESS",
        );
        check(None, true, "2 compressed modules stored decompressed: no kernel config found for 6.1.0-test");
    }

    #[test]
    fn not_a_tree() {
        let dir = test_dir("notatree");
        assert!(Tree::open(&dir).unwrap_err().contains("not a module tree"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
