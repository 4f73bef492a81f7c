//! The builder end to end, without booting: what lands where, from the host's own programs
//! (Debian's /usr/bin/env, /bin/sleep and their glibc) and busybox-static, which also
//! stands in for keel (a static binary of this machine).

use super::*;
use crate::image::cpio::{Entry, S_IFLNK, S_IFMT, S_IFREG};
use keel_config::db::Db;

const BUSYBOX: &str = "/bin/busybox";

fn options(dir: &Path) -> Options {
    Options {
        output: dir.join("out.img"),
        config: None,
        modules_from: None,
        modules: None,
        modules_for: Vec::new(),
        omit_modules: Vec::new(),
        busybox: None,
        add: Vec::new(),
        sysroot: None,
        keel: Some(PathBuf::from(BUSYBOX)),
        arch: Some(test_arch()),
        compress: Compress::None,
        verbose: false,
    }
}

fn config(dir: &Path, text: &str) -> PathBuf {
    let path = dir.join("system.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// The archive the builder made (before compression).
fn archive(o: &Options) -> Result<(Archive, Report), Failure> {
    let mut b = Builder::new(o)?;
    b.run()?;
    Ok((b.archive, b.report))
}

fn error(o: &Options) -> String {
    match archive(o) {
        Err(Failure::Other(e)) => e,
        Err(Failure::Config(e)) => panic!("config errors: {e:?}"),
        Ok(_) => panic!("no error"),
    }
}

fn file<'a>(a: &'a Archive, path: &str) -> &'a Entry {
    a.get(path).unwrap_or_else(|| panic!("{path} is not in the image"))
}

fn is_file(e: &Entry) -> bool {
    e.mode & S_IFMT == S_IFREG
}

const SERVICES: &str = r#"
[service.setup]
argv = ["/usr/bin/env"]
env = ["MARK=ran"]
oneshot = true

[service.sleeper]
argv = ["/bin/sleep", "1000"]
after = ["setup"]
cwd = "/var/lib/sleeper"
"#;

#[test]
fn keel_config_and_the_base() {
    let dir = test_dir("image-base");
    let mut o = options(&dir);
    o.config = Some(config(&dir, SERVICES));
    let (a, report) = archive(&o).unwrap();
    assert_eq!(file(&a, "init").data, std::fs::read(BUSYBOX).unwrap());
    assert_eq!(file(&a, "init").mode, S_IFREG | 0o755);
    for applet in KEEL_APPLETS {
        let e = file(&a, &format!("sbin/{applet}"));
        assert_eq!((e.mode, e.data.as_slice()), (S_IFLNK | 0o777, &b"/init"[..]));
    }
    assert_eq!(file(&a, "dev/console").rdev, (5, 1));
    assert_eq!(file(&a, "dev/null").rdev, (1, 3));
    assert_eq!(file(&a, "root").mode & 0o7777, 0o700);
    assert_eq!(file(&a, "tmp").mode & 0o7777, 0o1777);
    for d in DIRS {
        assert!(file(&a, d).is_dir(), "{d}");
    }
    let db = &file(&a, CONFIG_PATH).data;
    let expected = keel_config::db::emit(&keel_config::compiler::compile(SERVICES).unwrap());
    assert_eq!(db, &expected);
    assert_eq!(Db::parse(db).unwrap().service_count(), 2);
    assert!(file(&a, "var/lib/sleeper").is_dir(), "a service's cwd is made");
    assert_eq!(report.summary[..2], [format!("keel for {}", test_arch().name()), "config with 2 services".into()]);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn programs_their_libraries_and_the_interpreter() {
    let dir = test_dir("image-programs");
    let mut o = options(&dir);
    o.config = Some(config(&dir, SERVICES));
    let (a, _) = archive(&o).unwrap();
    for program in ["/usr/bin/env", "/bin/sleep"] {
        let e = file(&a, program);
        assert!(is_file(e), "{program}: a regular file, whatever symlinks led to it");
        assert_eq!(e.data, std::fs::read(program).unwrap());
        let interp = elf::parse(&e.data).unwrap().interp.unwrap();
        assert_eq!(file(&a, &interp).data, std::fs::read(&interp).unwrap(), "{interp}");
    }
    let libc = format!("lib/{}/libc.so.6", test_arch().triple());
    assert_eq!(file(&a, &libc).data, std::fs::read(format!("/{libc}")).unwrap());
    // Not busybox's: there is none; and no ld.so.cache either.
    assert!(a.get("bin/busybox").is_none() && a.get("etc/ld.so.cache").is_none());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn busybox_provides_before_the_host() {
    let dir = test_dir("image-busybox");
    let mut o = options(&dir);
    o.busybox = Some(PathBuf::from(BUSYBOX));
    o.config = Some(config(&dir, &format!("{SERVICES}\n[service.shell]\nargv = [\"/bin/sh\"]\n")));
    let (a, report) = archive(&o).unwrap();
    assert_eq!(file(&a, "bin/busybox").data, std::fs::read(BUSYBOX).unwrap());
    // /bin/sh and /bin/sleep are busybox's applets, not the host's dash and coreutils.
    for applet in ["sh", "sleep", "mount"] {
        assert_eq!(file(&a, &format!("bin/{applet}")).data, b"busybox", "{applet}");
    }
    for keels in ["bin/poweroff", "bin/reboot", "bin/halt", "bin/init", "bin/linuxrc"] {
        assert!(a.get(keels).is_none(), "{keels}");
    }
    // /usr/bin/env is not a busybox path: the host's, with its libraries.
    assert!(is_file(file(&a, "usr/bin/env")));
    assert!(report.summary.iter().any(|s| s.starts_with("busybox with ")), "{:?}", report.summary);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn scripts_bring_their_interpreter() {
    let dir = test_dir("image-script");
    let script = dir.join("hello");
    std::fs::write(&script, "#!/bin/sh -e\necho hello\n").unwrap();
    let mut o = options(&dir);
    o.sysroot = None;
    // The script is --add'ed at its guest path; the service's argv[0] is the script, whose
    // interpreter comes from the host.
    o.add = vec![(script.clone(), "/usr/local/bin/hello".into())];
    o.config = Some(config(&dir, "[service.hello]\nargv = [\"/usr/local/bin/hello\"]\n[service.dash]\nargv = [\"/opt/run.sh\"]\n"));
    std::fs::create_dir_all(dir.join("opt")).unwrap();
    // A sysroot'd script: /opt/run.sh → #!/bin/sh, looked up in the same (host) root.
    let e = error(&o);
    assert_eq!(e, "service dash: /opt/run.sh is not on this host, nor given by --add or --busybox");
    o.config = Some(config(&dir, "[service.hello]\nargv = [\"/usr/local/bin/hello\"]\n"));
    let (a, _) = archive(&o).unwrap();
    assert_eq!(file(&a, "usr/local/bin/hello").data, b"#!/bin/sh -e\necho hello\n");
    // The host's /bin/sh is not pulled in for an --add'ed script (only services' argv[0]
    // are followed): the user gave that file, and says what else it needs.
    assert!(a.get("bin/sh").is_none());
    let o2 = Options { add: Vec::new(), ..o.clone() };
    std::fs::create_dir_all(dir.join("sys/usr/local/bin")).unwrap();
    std::fs::write(dir.join("sys/usr/local/bin/hello"), "#!/bin/sh\n").unwrap();
    let o2 = Options { sysroot: Some(dir.join("sys")), ..o2 };
    assert_eq!(error(&o2), format!("service hello: /bin/sh is not under {}, nor given by --add or --busybox", dir.join("sys").display()));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn added_files() {
    let dir = test_dir("image-add");
    let data = dir.join("motd");
    std::fs::write(&data, "hi\n").unwrap();
    std::fs::set_permissions(&data, std::os::unix::fs::PermissionsExt::from_mode(0o640)).unwrap();
    let mut o = options(&dir);
    // A data file with its mode, and a dynamic program that brings its libraries.
    o.add = vec![(data.clone(), "/etc/motd".into()), (PathBuf::from("/usr/bin/env"), "/opt/env".into())];
    let (a, report) = archive(&o).unwrap();
    assert_eq!((file(&a, "etc/motd").mode, file(&a, "etc/motd").data.as_slice()), (S_IFREG | 0o640, &b"hi\n"[..]));
    assert!(a.get(&format!("lib/{}/libc.so.6", test_arch().triple())).is_some());
    assert!(report.warnings.iter().any(|w| w.contains("no --config")), "{:?}", report.warnings);
    // keel's paths are keel's.
    for guest in ["/init", "/sbin/reboot"] {
        o.add = vec![(data.clone(), guest.into())];
        assert_eq!(error(&o), format!("--add {}:{guest}: {guest} is keel's", data.display()));
    }
    o.add = vec![(dir.clone(), "/x".into())];
    assert!(error(&o).ends_with(": not a regular file"));
    o.add = vec![(dir.join("nope"), "/x".into())];
    assert!(error(&o).contains("No such file"));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn keel_must_be_static_and_of_the_machine() {
    let dir = test_dir("image-keel");
    let mut o = options(&dir);
    o.keel = Some(PathBuf::from("/usr/bin/env"));
    let e = error(&o);
    assert!(e.starts_with("/usr/bin/env is dynamically linked (interpreter /"), "{e}");
    o.keel = Some(PathBuf::from(BUSYBOX));
    o.arch = Some(if test_arch() == Arch::X86_64 { Arch::Aarch64 } else { Arch::X86_64 });
    let e = error(&o);
    assert!(e.starts_with(&format!("{BUSYBOX} is not an {} ELF64 (it is for ", o.arch.unwrap().name())), "{e}");
    o.arch = Some(test_arch());
    o.keel = Some(dir.join("keel"));
    std::fs::write(dir.join("keel"), "#!/bin/sh\n").unwrap();
    assert!(error(&o).contains(&format!("is not an {} ELF64 (not an ELF file)", test_arch().name())));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn config_errors_are_all_reported() {
    let dir = test_dir("image-config");
    let mut o = options(&dir);
    let path = config(&dir, "[service.a]\nargv = [\"/bin/a\"]\nbogus = 1\n[service.b]\nafter = [\"zz\"]\n");
    o.config = Some(path.clone());
    let p = path.display();
    match archive(&o) {
        Err(Failure::Config(lines)) => assert_eq!(
            lines,
            [
                format!("{p}:3: bogus: unknown key \"bogus\""),
                format!("{p}:4: service \"b\" has no argv"),
                format!("{p}:4: service \"b\": unknown dependency \"zz\""),
            ]
        ),
        other => panic!("{:?}", other.err()),
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_missing_library_names_the_program_and_the_library() {
    let dir = test_dir("image-missing-lib");
    let sys = dir.join("sys");
    let env = std::fs::read("/usr/bin/env").unwrap();
    let interp = elf::parse(&env).unwrap().interp.unwrap();
    for (guest, host) in [("/usr/bin/env", "/usr/bin/env"), (interp.as_str(), interp.as_str())] {
        let p = sys.join(guest.trim_start_matches('/'));
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::copy(host, p).unwrap();
    }
    let mut o = options(&dir);
    o.sysroot = Some(sys.clone());
    o.config = Some(config(&dir, "[service.setup]\nargv = [\"/usr/bin/env\"]\n"));
    assert_eq!(error(&o), format!("service setup: /usr/bin/env: library libc.so.6 not found under {}", sys.display()));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn libraries_found_through_ld_so_conf_are_linked_where_the_loader_looks() {
    // A sysroot whose libc is only in an ld.so.conf directory (as /usr/local/lib would be).
    let dir = test_dir("image-ldconf");
    let sys = dir.join("sys");
    let env = std::fs::read("/usr/bin/env").unwrap();
    let interp = elf::parse(&env).unwrap().interp.unwrap();
    let t = test_arch().triple();
    let put = |guest: &str, host: &str| {
        let p = sys.join(guest.trim_start_matches('/'));
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::copy(host, p).unwrap();
    };
    put("/usr/bin/env", "/usr/bin/env");
    let real_interp = format!("/usr/lib/{t}/{}", interp.rsplit('/').next().unwrap());
    put(&real_interp, &interp);
    // PT_INTERP's path is a symlink to the real loader, as in Debian.
    let at = sys.join(interp.trim_start_matches('/'));
    std::fs::create_dir_all(at.parent().unwrap()).unwrap();
    std::os::unix::fs::symlink(&real_interp, at).unwrap();
    put("/opt/glibc/libc.so.6", &format!("/lib/{t}/libc.so.6"));
    std::fs::create_dir_all(sys.join("etc/ld.so.conf.d")).unwrap();
    std::fs::write(sys.join("etc/ld.so.conf"), "include ld.so.conf.d/*.conf\n").unwrap();
    std::fs::write(sys.join("etc/ld.so.conf.d/opt.conf"), "/opt/glibc\n").unwrap();
    let mut o = options(&dir);
    o.sysroot = Some(sys.clone());
    o.config = Some(config(&dir, "[service.setup]\nargv = [\"/usr/bin/env\"]\n"));
    let (a, _) = archive(&o).unwrap();
    assert!(is_file(file(&a, "opt/glibc/libc.so.6")));
    assert!(is_file(file(&a, &interp)), "the interpreter at its PT_INTERP path");
    let link = file(&a, &format!("usr/lib/{t}/libc.so.6"));
    assert_eq!((link.mode, link.data.as_slice()), (S_IFLNK | 0o777, &b"/opt/glibc/libc.so.6"[..]));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn modules_keels_list_and_the_configs() {
    let dir = test_dir("image-modules");
    let tree = dir.join("lib/modules/6.1.0-t");
    let m = machine_module;
    for (rel, deps) in [
        ("kernel/drivers/virtio/virtio_pci.ko", "virtio"),
        ("kernel/drivers/virtio/virtio.ko", ""),
        ("kernel/fs/ext4/ext4.ko", ""),
        ("kernel/net/9p/9pnet.ko", ""),
        ("kernel/fs/9p/9p.ko", "9pnet"),
    ] {
        let p = tree.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, m(deps)).unwrap();
    }
    let mut o = options(&dir);
    o.modules_from = Some(tree.clone());
    o.config = Some(config(&dir, "[system]\nmodules = [\"9p\", \"nosuch\"]\n"));
    let (a, report) = archive(&o).unwrap();
    let base = "lib/modules/6.1.0-t";
    for present in ["virtio_pci", "virtio", "ext4"] {
        assert!(a.paths().any(|p| p.starts_with(base) && p.ends_with(&format!("/{present}.ko"))), "{present}");
    }
    assert!(a.get(&format!("{base}/kernel/fs/9p/9p.ko")).is_some() && a.get(&format!("{base}/kernel/net/9p/9pnet.ko")).is_some());
    let dep = String::from_utf8(file(&a, &format!("{base}/modules.dep")).data.clone()).unwrap();
    assert!(dep.contains("kernel/fs/9p/9p.ko: kernel/net/9p/9pnet.ko\n"), "{dep}");
    let cfg = o.config.as_ref().unwrap().display();
    // keel's own list names modules this tree lacks (virtio_blk, ...): warned about too.
    assert!(report.warnings.contains(&format!("no module nosuch in {} (asked for by [system] modules in {cfg})", tree.display())));
    assert!(report.warnings.iter().any(|w| w.contains("virtio_blk") && w.ends_with("(asked for by keel's own list)")));
    // --modules replaces keel's list; a config naming modules needs a tree.
    o.modules = Some(vec!["ext4".into()]);
    let (a, _) = archive(&o).unwrap();
    assert!(a.get(&format!("{base}/kernel/drivers/virtio/virtio_pci.ko")).is_none());
    o.modules_from = None;
    assert_eq!(error(&o), "[system] modules names 9p, nosuch: give --modules-from DIR (a /lib/modules/RELEASE tree)");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A module for this host's machine with `depends=`.
fn machine_module(deps: &str) -> Vec<u8> {
    modules::tests::fake_module(test_arch().machine(), &format!("depends={deps}\nlicense=GPL"))
}

#[test]
fn deterministic_whatever_the_compression() {
    let dir = test_dir("image-determinism");
    let mut o = options(&dir);
    o.busybox = Some(PathBuf::from(BUSYBOX));
    o.config = Some(config(&dir, SERVICES));
    let (plain, _) = build(&o).unwrap();
    assert!(plain == build(&o).unwrap().0, "two builds differ");
    // Compression is a function of those bytes (compress.rs: the same output every time).
    o.busybox = None;
    let (small, _) = build(&o).unwrap();
    for c in [Compress::Gzip, Compress::Zstd] {
        o.compress = c;
        assert!(build(&o).unwrap().0 == c.apply(small.clone()), "{}", c.name());
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
