//! Build-time validation of the service configuration: each bad file gives its error and
//! the line it is on (build.rs prints it as `error: PATH:LINE: message`).
use keel_config::compiler as config;

fn error_of(text: &str) -> (usize, String) {
    let e = config::compile(text).expect_err("this configuration must be refused");
    (e[0].line, e[0].message.clone())
}

fn services(text: &str) -> Vec<config::Service> {
    config::compile(text).unwrap().services
}

#[test]
fn the_default_configuration_is_valid() {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../src/config/default.toml")).unwrap();
    let services = services(&text);
    assert_eq!(services[0].name, "shell");
    assert_eq!(services[0].tty.as_deref(), Some("/dev/console"));
}

#[test]
fn the_test_configuration_is_valid() {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/services/services.toml")).unwrap();
    assert!(services(&text).len() > 10);
}

#[test]
fn unknown_dependency() {
    let (line, msg) = error_of("[service.a]\nargv = [\"/bin/a\"]\n\n[service.b]\nargv = [\"/bin/b\"]\nafter = [\"c\"]\n");
    assert_eq!(line, 4);
    assert!(msg.contains("unknown dependency \"c\""), "{msg}");
}

#[test]
fn dependency_cycle() {
    let text = "[service.a]\nargv = [\"/a\"]\nafter = [\"c\"]\n[service.b]\nargv = [\"/b\"]\nafter = [\"a\"]\n[service.c]\nargv = [\"/c\"]\nafter = [\"b\"]\n";
    let (line, msg) = error_of(text);
    assert_eq!(line, 1);
    assert_eq!(msg, "dependency cycle: a -> c -> b -> a");
    let (_, msg) = error_of("[service.a]\nargv = [\"/a\"]\nafter = [\"a\"]\n");
    assert!(msg.contains("depends on itself"), "{msg}");
}

#[test]
fn duplicate_name_and_key() {
    let (line, msg) = error_of("[service.a]\nargv = [\"/a\"]\n[service.a]\nargv = [\"/a\"]\n");
    assert_eq!((line, msg.as_str()), (3, "duplicate service \"a\" (first defined on line 1)"));
    let (line, msg) = error_of("[service.a]\nargv = [\"/a\"]\nargv = [\"/b\"]\n");
    assert_eq!(line, 3);
    assert!(msg.contains("duplicate key \"argv\""), "{msg}");
}

#[test]
fn capacity_exceeded() {
    let many: String = (0..=config::MAX_SERVICES).map(|i| format!("[service.s{i}]\nargv = [\"/x\"]\n")).collect();
    let (line, msg) = error_of(&many);
    assert_eq!(line, 2 * config::MAX_SERVICES + 1);
    assert!(msg.contains("capacity exceeded"), "{msg}");
    let args: Vec<String> = (0..=config::MAX_ARGS).map(|i| format!("\"a{i}\"")).collect();
    let (line, msg) = error_of(&format!("[service.a]\nargv = [{}]\n", args.join(", ")));
    assert_eq!(line, 2);
    assert!(msg.contains("capacity exceeded"), "{msg}");
}

#[test]
fn bad_values() {
    let cases = [
        ("restart = \"sometimes\"", "is not always, on-failure or never"),
        ("ready = \"fd:2\"", "fd:N (N from 3 to 9)"),
        ("stop_signal = \"BOGUS\"", "unknown signal"),
        ("stop_grace = \"5 hours\"", "bad duration"),
        ("log_ring = 12", "at least 256"),
        ("log_ring = 1000000", "at most 65536"),
        ("oneshot = \"yes\"", "expected true or false"),
        ("user = -1", "bad value"),
        ("cwd = \"relative\"", "not an absolute path"),
        ("env = [\"NOEQUALS\"]", "is not KEY=value"),
        ("colour = \"blue\"", "unknown key \"colour\""),
        ("argv = [\"/a\" \"/b\"]", "expected ','"),
        ("argv = [\"/a\"", "unterminated array"),
        ("argv = \"/a", "unterminated string"),
    ];
    for (bad, expect) in cases {
        let argv = if bad.starts_with("argv") { "" } else { "argv = [\"/bin/a\"]" };
        let (line, msg) = error_of(&format!("# comment\n[service.a]\n{argv}\n{bad}\n"));
        assert_eq!(line, 4, "{bad}: {msg}");
        assert!(msg.contains(expect), "{bad}: {msg}");
    }
}

#[test]
fn structure_errors() {
    assert_eq!(error_of("argv = [\"/a\"]\n"), (1, "key outside a table ([system], [debug], [root], [service.NAME] or [mount.NAME])".into()));
    assert_eq!(error_of("[service.a]\nargv = [\"/a\"]\n[other]\n").0, 3);
    assert_eq!(error_of("[service.a b]\n").0, 1);
    assert_eq!(error_of("[service.a]\njust words\n").0, 2);
    let (line, msg) = error_of("[service.a]\ncwd = \"/\"\n");
    assert_eq!(line, 1);
    assert!(msg.contains("has no argv"), "{msg}");
    assert!(error_of("[service.a]\nargv = [\"sh\"]\n").1.contains("not an absolute path"));
}

#[test]
fn comments_and_escapes() {
    let s = services("[service.a] # trailing\nargv = [\"/bin/sh\", \"-c\", \"echo \\\"#1\\\"\\n\"] # ok\n");
    assert_eq!(s[0].argv, ["/bin/sh", "-c", "echo \"#1\"\n"]);
}

const STORAGE: &str = r#"
[root]
device = "PARTUUID=a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d"
fstype = "ext4,xfs"
options = "noatime,data=ordered"
read_only = true
wait = "20s"
delay = "2s"
init = "/lib/systemd/systemd"
fsck = false
rescue = ["shell"]

[mount.boot]
source = "LABEL=KEEL-BOOT"
target = "/boot"
type = "vfat"
required = false
wait = "3s"

[mount.tmp]
source = "tmpfs"
target = "/tmp"
type = "tmpfs"
options = "mode=1777,nosuid"

[service.shell]
argv = ["/bin/sh"]
tty = "/dev/console"

[service.web]
argv = ["/bin/web"]
mounts = ["boot", "tmp"]
"#;

#[test]
fn root_and_mounts() {
    let c = config::compile(STORAGE).unwrap();
    let r = &c.root;
    assert_eq!(r.device.as_deref(), Some("PARTUUID=a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d"));
    assert_eq!((r.fstype.as_deref(), r.options.as_deref()), (Some("ext4,xfs"), Some("noatime,data=ordered")));
    assert_eq!((r.read_only, r.wait_secs, r.delay_secs, r.fsck), (true, Some(20), 2, false));
    assert_eq!((r.init.as_deref(), r.rescue.as_deref()), (Some("/lib/systemd/systemd"), Some(&["shell".to_string()][..])));
    let names: Vec<&str> = c.mounts.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, ["boot", "tmp"]);
    let boot = &c.mounts[0];
    assert_eq!((boot.source.as_str(), boot.target.as_str(), boot.fstype.as_deref()), ("LABEL=KEEL-BOOT", "/boot", Some("vfat")));
    assert_eq!((boot.required, boot.wait_secs), (false, 3));
    assert_eq!((c.mounts[1].required, c.mounts[1].wait_secs), (true, 10), "the defaults");
    assert_eq!(c.services[1].mounts, ["boot", "tmp"]);
    let none = config::compile("").unwrap();
    assert_eq!((none.root.device.as_ref(), none.root.fsck, none.mounts.len()), (None, true, 0));
}

#[test]
fn root_and_mount_errors() {
    for (text, line, expect) in [
        ("[root]\ndevice = \"UUID=1234\"\n", 2, "is not UUID=, LABEL=, PARTUUID= or an absolute path"),
        ("[root]\ndevice = \"sda1\"\n", 2, "device"),
        ("[root]\nfstype = \"ext4,,xfs\"\n", 2, "filesystem types"),
        ("[root]\ninit = \"sbin/init\"\n", 2, "not an absolute path"),
        ("[root]\nwait = \"1500ms\"\n", 2, "whole number of seconds"),
        ("[root]\nrescue = [\"nosuch\"]\n", 1, "unknown service \"nosuch\""),
        ("[root]\nfrob = 1\n", 2, "unknown key \"frob\" in [root]"),
        ("[mount.a]\ntarget = \"/a\"\n", 1, "needs a source and a target"),
        ("[mount.a]\nsource = \"tmpfs\"\ntarget = \"/a\"\n", 1, "is not a device: give its type"),
        ("[mount.a]\nsource = \"/srv/x\"\ntarget = \"/a\"\n", 1, "is not a device: give its type"),
        ("[mount.a]\nsource = \"LABEL=\"\n", 2, "is not UUID="),
        ("[mount.a]\nsource = \"/dev/vdb\"\ntarget = \"a\"\n", 3, "not an absolute path"),
        ("[mount.a]\nsource = \"/dev/vdb\"\ntarget = \"/a\"\ntype = \"ext4,xfs\"\n", 4, "not a filesystem type"),
        ("[mount.a b]\n", 1, "bad mount name"),
        ("[mount.a]\nsource = \"/dev/vdb\"\ntarget = \"/a\"\n[mount.a]\n", 4, "duplicate mount \"a\""),
        ("[service.s]\nargv = [\"/s\"]\nmounts = [\"data\"]\n", 1, "unknown mount \"data\""),
    ] {
        let (l, msg) = error_of(text);
        assert_eq!(l, line, "{text:?}: {msg}");
        assert!(msg.contains(expect), "{text:?}: {msg}");
    }
    // A device source needs no type: its superblock says.
    assert!(config::compile("[mount.a]\nsource = \"UUID=1A2B-3C4D\"\ntarget = \"/a\"\n").is_ok());
    let many: String = (0..17).map(|i| format!("[mount.m{i}]\nsource = \"/dev/vd{i}\"\ntarget = \"/m\"\n")).collect();
    assert!(error_of(&many).1.contains("more than 16 mounts"));
}

