//! `keelctl image`, black-box: the command line, the exit codes, where keel is looked for,
//! and that the same inputs give the same bytes twice (the archive itself is checked in
//! keelctl/src/image/; booting it, in tests/qemu/test_image.py). busybox-static's
//! /bin/busybox stands in for keel: a static binary of this machine.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const STATIC: &str = "/bin/busybox";

struct Dir(PathBuf);

static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

impl Dir {
    fn new(tag: &str) -> Dir {
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("keelctl-image-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Dir(dir)
    }
    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn run(bin: &Path, args: &[&str], dir: &Path, path_env: Option<&Path>) -> Output {
    let mut c = Command::new(bin);
    c.args(args).current_dir(dir);
    if let Some(p) = path_env {
        c.env("PATH", p);
    }
    // A copy of keelctl just written may still be open in a child another test thread has
    // forked and not yet exec'd (its copy of the descriptor closes at exec): ETXTBSY for a
    // moment. Try again then.
    for _ in 0..50 {
        match c.output() {
            Err(e) if e.raw_os_error() == Some(26) => std::thread::sleep(std::time::Duration::from_millis(20)),
            other => return other.expect("run keelctl"),
        }
    }
    c.output().expect("run keelctl")
}

fn keelctl(args: &[&str], dir: &Path) -> Output {
    run(Path::new(env!("CARGO_BIN_EXE_keelctl")), args, dir, None)
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

const CONFIG: &str = "[service.setup]\nargv = [\"/usr/bin/env\"]\noneshot = true\n[service.shell]\nargv = [\"/bin/sh\"]\ntty = \"/dev/console\"\n";

/// The names GNU cpio lists in an archive: an independent reader of what we write.
fn cpio_names(archive: &Path) -> Vec<String> {
    let out = Command::new("cpio")
        .args(["-it", "--quiet"])
        .stdin(std::fs::File::open(archive).unwrap())
        .output()
        .expect("cpio (apt-get install cpio)");
    assert!(out.status.success(), "cpio -it: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().lines().map(String::from).collect()
}

#[test]
fn same_inputs_same_bytes() {
    let d = Dir::new("twice");
    std::fs::write(d.path("c.toml"), CONFIG).unwrap();
    for compress in ["none", "gzip", "zstd"] {
        let mut outs = Vec::new();
        for n in 0..2 {
            let out = format!("{compress}-{n}.img");
            let mut args = vec!["image", "--keel", STATIC, "--config", "c.toml", "--compress", compress, "-o", &out];
            // busybox (2 MB more) where compression's cost is nothing: the debug build is slow.
            if compress == "none" {
                args.extend(["--busybox", STATIC]);
            }
            let o = keelctl(&args, &d.0);
            assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
            assert!(stderr(&o).starts_with(&format!("keelctl: {out} (")), "{}", stderr(&o));
            outs.push(std::fs::read(d.path(&out)).unwrap());
        }
        assert!(outs[0] == outs[1], "{compress}: two runs differ");
    }
    let names = cpio_names(&d.path("none-0.img"));
    for name in ["init", "sbin/poweroff", "etc/keel/keel.db", "dev/console", "bin/busybox", "bin/sh", "usr/bin/env"] {
        assert!(names.iter().any(|n| n == name), "{name} not in {names:?}");
    }
    let mut sorted = names.clone();
    sorted.sort_by(|a, b| a.split('/').cmp(b.split('/')));
    assert_eq!(names, sorted);
}

#[test]
fn keel_next_to_keelctl_then_on_path() {
    // A copy of keelctl with a `keel` beside it, and a PATH with another keel.
    let d = Dir::new("find-keel");
    std::fs::create_dir_all(d.path("bin")).unwrap();
    std::fs::create_dir_all(d.path("path")).unwrap();
    let keelctl_copy = d.path("bin/keelctl");
    std::fs::copy(env!("CARGO_BIN_EXE_keelctl"), &keelctl_copy).unwrap();
    std::fs::copy(STATIC, d.path("path/keel")).unwrap();
    let path_only = d.path("path");
    let o = run(&keelctl_copy, &["image", "-o", "a.img", "--compress", "none"], &d.0, Some(&path_only));
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    // Beside keelctl wins over PATH (-v says where /init came from).
    std::fs::copy(STATIC, d.path("bin/keel")).unwrap();
    let o = run(&keelctl_copy, &["image", "-v", "-o", "b.img"], &d.0, Some(&path_only));
    assert!(stderr(&o).contains(&format!("keelctl: /init: {}", d.path("bin/keel").display())), "{}", stderr(&o));
    std::fs::remove_file(d.path("bin/keel")).unwrap();
    let o = run(&keelctl_copy, &["image", "-v", "-o", "c.img"], &d.0, Some(&path_only));
    assert!(stderr(&o).contains(&format!("keelctl: /init: {}", d.path("path/keel").display())), "{}", stderr(&o));
    // Neither: the message says where it looked.
    let o = run(&keelctl_copy, &["image", "-o", "d.img"], &d.0, Some(Path::new("/nonexistent")));
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        stderr(&o),
        format!("keelctl: image: no keel binary next to keelctl ({}) or on PATH: give --keel PATH\n", d.path("bin/keel").display())
    );
    assert!(!d.path("d.img").exists());
}

#[test]
fn bad_configs_report_every_error_and_write_nothing() {
    let d = Dir::new("bad-config");
    std::fs::write(d.path("c.toml"), "[service.a]\nbogus = 1\n[service.b]\nargv = [\"/b\"]\nafter = [\"nope\"]\n").unwrap();
    let o = keelctl(&["image", "--keel", STATIC, "--config", "c.toml", "-o", "x.img"], &d.0);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        stderr(&o),
        "c.toml:2: bogus: unknown key \"bogus\"\nc.toml:3: service \"b\": unknown dependency \"nope\"\n"
    );
    assert!(!d.path("x.img").exists());
    // A program the host lacks.
    std::fs::write(d.path("c.toml"), "[service.a]\nargv = [\"/opt/nothing/here\"]\n").unwrap();
    let o = keelctl(&["image", "--keel", STATIC, "--config", "c.toml", "-o", "x.img"], &d.0);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(stderr(&o), "keelctl: image: service a: /opt/nothing/here is not on this host, nor given by --add or --busybox\n");
}

#[test]
fn usage_errors() {
    let d = Dir::new("usage");
    for (args, message) in [
        (&["image"][..], "image needs -o OUT"),
        (&["image", "-o", "x", "c.toml"], "image: unexpected argument c.toml (the config goes after --config)"),
        (&["image", "-o", "x", "--add", "nocolon"], "--add: expected HOST:/GUEST/PATH, got nocolon"),
        (&["image", "-o", "x", "--add", "a:relative"], "--add: expected HOST:/GUEST/PATH, got a:relative"),
        (&["image", "-o", "x", "--compress", "lz4"], "--compress: none, gzip or zstd, not lz4"),
        (&["image", "-o", "x", "--arch", "sparc"], "--arch: x86_64 or aarch64, not sparc"),
        (&["image", "-o", "x", "--json"], "--json does not go with image"),
        (&["image", "-o", "x", "--config"], "--config needs a value"),
    ] {
        let o = keelctl(args, &d.0);
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        assert!(stderr(&o).starts_with(&format!("keelctl: {message}\nusage: keelctl")), "{args:?}: {}", stderr(&o));
    }
}

#[test]
fn to_stdout() {
    let d = Dir::new("stdout");
    let o = keelctl(&["image", "--keel", STATIC, "-o", "-"], &d.0);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(&o.stdout[..6], b"070701");
    assert_eq!(o.stdout.len() % 512, 0);
    assert!(stderr(&o).contains("keelctl: warning: no --config: keel runs its built-in table"), "{}", stderr(&o));
}

#[test]
fn modules_for_needs_a_tree_and_a_known_class() {
    let d = Dir::new("modules-for");
    let o = keelctl(&["image", "--keel", STATIC, "--modules-for", "virtio", "-o", "x.img"], &d.0);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(stderr(&o), "keelctl: image: --modules-for virtio: give --modules-from DIR (a /lib/modules/RELEASE tree)\n");
    let tree = d.path("lib/modules/6.1.0-test");
    std::fs::create_dir_all(tree.join("kernel")).unwrap();
    let tree = tree.to_str().unwrap();
    let o = keelctl(&["image", "--keel", STATIC, "--modules-from", tree, "--modules", "", "--modules-for", "virtio,gpu", "-o", "x.img"], &d.0);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).starts_with("keelctl: image: --modules-for: no class gpu (one of virtio, nvme, mmc, usb, "), "{}", stderr(&o));
    assert!(!d.path("x.img").exists());
    // A known class the tree has nothing of: an image all the same.
    let o = keelctl(&["image", "--keel", STATIC, "--modules-from", tree, "--modules", "", "--modules-for", "nvme", "-o", "x.img", "-v"], &d.0);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stderr(&o).contains("keelctl: --modules-for nvme: 0 modules and their dependencies\n"), "{}", stderr(&o));
}
