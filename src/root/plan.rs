//! What root to mount and how: the kernel command line's words over the configuration's
//! `[root]`, each on its own (a `root=` on the command line with the file's `fstype`).
//! Pure: `Plan::new` only merges (the texts are read from the command line's words and the
//! file's strings when asked for, not copied); the device text is checked where it is used,
//! so a bad `root=` is reported as what it is and leads to the emergency path.

use crate::config::cmdline::{FsckMode, RootArgs};
use crate::probe::Spec;
use keel_config::spec::Root;

/// Without `rootwait`, the wait for the root device: the kernel's own mount waits for the
/// drivers' device probing to end, which keel cannot see; an NVMe namespace or a USB disk
/// takes a second or two after its module loaded.
pub const NO_ROOTWAIT_SECS: u32 = 5;
pub const DEFAULT_INIT: &[u8] = b"/sbin/init";

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    /// The command line's root words (their texts win over the file's).
    args: RootArgs,
    file: Root<'static>,
    pub read_only: bool,
    pub wait_secs: u32,
    pub delay_secs: u32,
    pub fsck: FsckMode,
}

impl Plan {
    /// None: no root is named, on the command line or in the file.
    pub fn new(args: &RootArgs, file: &Root<'static>) -> Option<Plan> {
        let file_fsck = if file.fsck { FsckMode::Auto } else { FsckMode::Skip };
        let plan = Plan {
            args: args.clone(),
            file: *file,
            read_only: args.read_only.unwrap_or(file.read_only),
            wait_secs: args.wait_secs.or(file.wait_secs).unwrap_or(NO_ROOTWAIT_SECS),
            delay_secs: args.delay_secs.unwrap_or(file.delay_secs),
            fsck: args.fsck.unwrap_or(file_fsck),
        };
        (!plan.device().is_empty()).then_some(plan)
    }

    /// The command line's `key=`, else the file's text, else `default`.
    #[inline(never)] // smaller out of line (measured)
    fn text<'s>(&'s self, key: &[u8], file: &'s [u8], default: &'static [u8]) -> &'s [u8] {
        self.args.text(key).unwrap_or(if file.is_empty() { default } else { file })
    }

    /// The `root=` value (`spec` reads it).
    #[inline(never)] // smaller out of line (`just size`)
    pub fn device(&self) -> &[u8] {
        self.text(b"root", self.file.device, b"")
    }

    /// Types to try, comma-separated; empty: the one the superblock names.
    pub fn fstype(&self) -> &[u8] {
        self.text(b"rootfstype", self.file.fstype, b"")
    }

    pub fn options(&self) -> &[u8] {
        self.text(b"rootflags", self.file.options, b"")
    }

    pub fn init(&self) -> &[u8] {
        self.text(b"init", self.file.init, DEFAULT_INIT)
    }

    /// The device `root=` names; None for a value of no known form.
    pub fn spec(&self) -> Option<Spec<'_>> {
        Spec::parse(self.device())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::cmdline::Config;

    fn args(line: &str) -> RootArgs {
        let mut c = Config::default();
        for w in crate::config::cmdline::words(line.as_bytes()) {
            c.apply(w).unwrap();
        }
        c.root
    }

    #[test]
    fn nothing_named_no_plan() {
        assert_eq!(Plan::new(&args("ro quiet rootwait"), &Root::NONE), None);
    }

    #[test]
    fn defaults_for_a_bare_root() {
        let p = Plan::new(&args("root=/dev/vda1"), &Root::NONE).unwrap();
        assert_eq!(p.spec(), Some(Spec::Path(b"/dev/vda1")));
        assert_eq!((p.fstype(), p.options(), p.init()), (&b""[..], &b""[..], DEFAULT_INIT));
        assert_eq!((p.read_only, p.wait_secs, p.delay_secs, p.fsck), (false, NO_ROOTWAIT_SECS, 0, FsckMode::Auto));
        assert_eq!(Plan::new(&args("root=/dev/vda1 rootwait"), &Root::NONE).unwrap().wait_secs, 30);
    }

    #[test]
    fn the_command_line_wins_key_by_key() {
        let file = Root {
            device: b"LABEL=from-file",
            fstype: b"xfs",
            options: b"noatime",
            read_only: true,
            wait_secs: Some(12),
            delay_secs: 3,
            init: b"/bin/file-init",
            fsck: false,
            rescue: None,
        };
        let p = Plan::new(&args(""), &file).unwrap();
        assert_eq!((p.device(), p.fstype(), p.options(), p.init()), (&b"LABEL=from-file"[..], &b"xfs"[..], &b"noatime"[..], &b"/bin/file-init"[..]));
        assert_eq!((p.read_only, p.wait_secs, p.delay_secs, p.fsck), (true, 12, 3, FsckMode::Skip));
        let p = Plan::new(&args("root=UUID=1A2B-3C4D rw rootwait=4 init=/sbin/keel fsck.mode=force"), &file).unwrap();
        assert_eq!(p.spec(), Some(Spec::Uuid(b"1A2B-3C4D")));
        assert_eq!((p.fstype(), p.init()), (&b"xfs"[..], &b"/sbin/keel"[..]), "fstype from the file, init from the line");
        assert_eq!((p.read_only, p.wait_secs, p.delay_secs, p.fsck), (false, 4, 3, FsckMode::Force));
    }

    #[test]
    fn a_bad_root_is_a_plan_without_a_spec() {
        let p = Plan::new(&args("root=sda1"), &Root::NONE).unwrap();
        assert_eq!((p.device(), p.spec()), (&b"sda1"[..], None));
        assert_eq!(Plan::new(&args("root=UUID=xyz"), &Root::NONE).unwrap().spec(), None);
    }
}
