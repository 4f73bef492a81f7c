//! `keelctl check` and `keelctl compile`, black-box: every kind of bad file gives its exact
//! message as `FILE:LINE: message` on stderr and exit 1; several errors are all reported,
//! in line order; a good file exits 0 silently and compiles to the bytes keel-config emits.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn keelctl(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_keelctl")).args(args).current_dir(dir).output().expect("run keelctl")
}

struct Dir(PathBuf);

static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

impl Dir {
    /// A fresh directory: tests run in parallel.
    fn new(tag: &str) -> Dir {
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("keelctl-check-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Dir(dir)
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `keelctl check c.toml` on `text`: (exit code, stderr).
fn check(text: &str) -> (i32, String) {
    let dir = Dir::new("one");
    std::fs::write(dir.0.join("c.toml"), text).unwrap();
    let out = keelctl(&["check", "c.toml"], &dir.0);
    assert_eq!(out.stdout, b"", "check prints nothing on stdout");
    (out.status.code().unwrap(), String::from_utf8(out.stderr).unwrap())
}

fn bad(text: &str, expected: &[&str]) {
    let (code, stderr) = check(text);
    let want: String = expected.iter().map(|e| format!("c.toml:{e}\n")).collect();
    assert_eq!((code, stderr.as_str()), (1, want.as_str()), "for:\n{text}");
}

#[test]
fn a_good_file_passes_silently() {
    let text = "[system]\nhostname = \"box\"\n[debug]\nchannels = [\"hvc0:rw\"]\n[service.a]\nargv = [\"/bin/a\"]\n";
    assert_eq!(check(text), (0, String::new()));
    assert_eq!(check(""), (0, String::new()), "an empty file is a system with no services");
}

#[test]
fn unknown_keys_and_tables() {
    bad("[service.a]\nargv = [\"/bin/a\"]\nfrobnicate = 1\n", &["3: frobnicate: unknown key \"frobnicate\""]);
    bad("[system]\nfoo = \"x\"\n", &["2: unknown key \"foo\" in [system]"]);
    bad("[debug]\nports = []\n", &["2: unknown key \"ports\" in [debug] (expected channels)"]);
    bad("[services.a]\n", &["1: unknown table [services.a] (expected [system], [debug], [root], [service.NAME] or [mount.NAME])"]);
    bad("argv = [\"/a\"]\n", &["1: key outside a table ([system], [debug], [root], [service.NAME] or [mount.NAME])"]);
}

#[test]
fn bad_values() {
    bad("[service.a]\nargv = [\"/bin/a\"]\nrestart = \"sometimes\"\n", &["3: restart: \"sometimes\" is not always, on-failure or never"]);
    bad("[service.a]\nargv = [\"/bin/a\"]\nstop_grace = \"5h\"\n", &["3: stop_grace: bad duration \"5h\" (use ms, s or m)"]);
    bad("[service.a]\nargv = \"/bin/a\"\n", &["2: argv: expected [\"an\", \"array\"]"]);
    bad("[service.a]\nargv = [\"a\"]\n", &["1: service \"a\": argv[0] \"a\" is not an absolute path"]);
    bad("[service.a]\nuser = 0\n", &["1: service \"a\" has no argv"]);
    bad("[service.a b]\n", &["1: bad service name \"a b\" (letters, digits, '-', '_'; at most 32)"]);
    bad(
        "[system]\nhostname = \"a b\"\nmodules = [\"../x\"]\npanic = \"explode\"\n[debug]\nchannels = [\"ttyS9:bogus\"]\n",
        &[
            "2: hostname: \"a b\" is not a host name (letters, digits, '-', '.'; at most 64)",
            "3: modules: \"../x\" is not a module name",
            "4: panic: \"explode\" is not reboot[:SECONDS], halt or poweroff",
            "6: channels: \"ttyS9:bogus\": options are a baud rate, ro, rw or shared",
        ],
    );
}

#[test]
fn duplicates() {
    bad("[service.a]\nargv = [\"/bin/a\"]\n[service.a]\nargv = [\"/bin/b\"]\n", &["3: duplicate service \"a\" (first defined on line 1)"]);
    bad("[service.a]\nargv = [\"/bin/a\"]\nargv = [\"/bin/b\"]\n", &["3: duplicate key \"argv\" (first on line 2)"]);
    bad("[system]\n[system]\n", &["2: duplicate table [system] (first defined on line 1)"]);
}

#[test]
fn dependencies() {
    bad("[service.a]\nargv = [\"/bin/a\"]\nafter = [\"b\"]\n", &["1: service \"a\": unknown dependency \"b\""]);
    bad("[service.a]\nargv = [\"/bin/a\"]\nafter = [\"a\"]\n", &["1: service \"a\" depends on itself", "1: dependency cycle: a -> a"]);
    bad(
        "[service.a]\nargv = [\"/bin/a\"]\nafter = [\"c\"]\n[service.b]\nargv = [\"/bin/b\"]\nafter = [\"a\"]\n\
         [service.c]\nargv = [\"/bin/c\"]\nafter = [\"b\"]\n",
        &["1: dependency cycle: a -> c -> b -> a"],
    );
}

#[test]
fn capacities() {
    let args: Vec<String> = (0..17).map(|i| format!("\"/{i}\"")).collect();
    bad(&format!("[service.a]\nargv = [{}]\n", args.join(", ")), &["2: argv: capacity exceeded: at most 16 items"]);
    let many: String = (0..129).map(|i| format!("[service.s{i}]\nargv = [\"/x\"]\nlog_ring = 256\n")).collect();
    bad(&many, &["385: capacity exceeded: more than 128 services"]);
    let rings: String = (0..9).map(|i| format!("[service.s{i}]\nargv = [\"/x\"]\nlog_ring = 65536\n")).collect();
    bad(&rings, &["25: capacity exceeded: log rings total 589824 bytes (at most 524288)"]);
    bad(&format!("[service.a]\nargv = [\"/{}\"]\n", "a".repeat(255)), &["2: argv: capacity exceeded: strings are at most 255 bytes"]);
    // Within every per-field capacity, too big for the file keel reads: no line of its own.
    let arg = format!("\"/{}\"", "a".repeat(254));
    let argv = vec![arg; 16].join(", ");
    let big: String = (0..20).map(|i| format!("[service.s{i}]\nargv = [{argv}]\nlog_ring = 256\n")).collect();
    let (code, stderr) = check(&big);
    assert_eq!(code, 1);
    assert!(
        stderr.starts_with("c.toml: capacity exceeded: the compiled form is ") && stderr.ends_with(" bytes, more than keel reads (65536 bytes)\n"),
        "{stderr}"
    );
}

#[test]
fn syntax() {
    bad("[service.a]\nargv = [\"/bin/a]\n", &["2: unterminated string"]);
    bad("[service.a]\nargv = [\"/bin/a\"]\ncwd = \"/tmp\n", &["3: unterminated string"]);
    bad("[service.a\nargv = [\"/a\"]\n", &["1: unterminated table header"]);
    bad("[service.a]\nargv = [\"/a\"\n", &["2: unterminated array"]);
    bad("[service.a]\nargv\n", &["2: expected key = value"]);
    bad("[service.a]\nargv = [\"/a\"]\ncwd = \"/a\\q\"\n", &["3: unknown escape \\q"]);
}

#[test]
fn every_error_in_line_order() {
    bad(
        "[system]\nhostname = \"ok\"\nbogus = 1\n[service.a]\nargv = [\"/bin/a\"]\nafter = [\"zz\"]\nready = \"maybe\"\n\
         [service.b]\nargv = [\"rel\"]\nargv = [\"/x\"]\nname = \"x\n",
        &[
            "3: unknown key \"bogus\" in [system]",
            "4: service \"a\": unknown dependency \"zz\"",
            "7: ready: \"maybe\" is not exec, notify or fd:N (N from 3 to 9)",
            "8: service \"b\": argv[0] \"rel\" is not an absolute path",
            "10: duplicate key \"argv\" (first on line 9)",
            "11: unterminated string",
        ],
    );
}

#[test]
fn unreadable_files_and_usage() {
    let dir = Dir::new("usage");
    let out = keelctl(&["check", "missing.toml"], &dir.0);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(String::from_utf8_lossy(&out.stderr), "keelctl: missing.toml: No such file or directory (os error 2)\n");
    std::fs::write(dir.0.join("latin1.toml"), b"[service.caf\xe9]\n").unwrap();
    let out = keelctl(&["check", "latin1.toml"], &dir.0);
    assert_eq!(String::from_utf8_lossy(&out.stderr), "keelctl: latin1.toml: not UTF-8 text (byte 12)\n");
    for (args, message) in [
        (&["check"][..], "keelctl: check needs a FILE\n"),
        (&["check", "a", "b"], "keelctl: check: unexpected argument b\n"),
        (&["check", "a", "-o", "x"], "keelctl: -o does not go with check\n"),
        (&["compile", "a"], "keelctl: compile needs -o OUT\n"),
        (&["check", "a", "--unix", "s"], "keelctl: --unix does not go with check\n"),
        (&["--unix", "s", "status", "--config", "c"], "keelctl: --config does not go with status\n"),
    ] {
        let out = keelctl(args, &dir.0);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.starts_with(message) && stderr.contains("usage: keelctl"), "{args:?}: {stderr}");
    }
}

#[test]
fn compile_writes_the_compiled_form() {
    let dir = Dir::new("compile");
    let text = "[system]\nhostname = \"box\"\nmodules = [\"9p\"]\n[service.a]\nargv = [\"/bin/a\", \"-x\"]\n[service.b]\nargv = [\"/bin/b\"]\nafter = [\"a\"]\n";
    std::fs::write(dir.0.join("c.toml"), text).unwrap();
    let out = keelctl(&["compile", "c.toml", "-o", "c.db"], &dir.0);
    assert_eq!((out.status.code(), out.stderr.as_slice()), (Some(0), &b""[..]));
    let bytes = std::fs::read(dir.0.join("c.db")).unwrap();
    let config = keel_config::compiler::compile(text).unwrap();
    assert_eq!(bytes, keel_config::db::emit(&config), "the bytes keel-config emits");
    let db = keel_config::db::Db::parse(&bytes).unwrap();
    assert_eq!(db.service_count(), 2);
    assert_eq!(db.system().hostname, b"box");
    // Deterministic, and to stdout with -o -.
    let again = keelctl(&["compile", "c.toml", "-o", "-"], &dir.0);
    assert_eq!(again.stdout, bytes);
    // A bad file writes nothing (and leaves an old OUT alone).
    std::fs::write(dir.0.join("bad.toml"), "[service.a]\n").unwrap();
    let out = keelctl(&["compile", "bad.toml", "-o", "c.db"], &dir.0);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(String::from_utf8_lossy(&out.stderr), "bad.toml:1: service \"a\" has no argv\n");
    assert_eq!(std::fs::read(dir.0.join("c.db")).unwrap(), bytes);
    let leftovers: Vec<_> = std::fs::read_dir(&dir.0).unwrap().filter_map(|e| e.ok()).map(|e| e.file_name()).collect();
    assert_eq!(leftovers.len(), 3, "no temporary files left: {leftovers:?}");
}
