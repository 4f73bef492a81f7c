//! What a service is: the description PID 1's supervisor runs, borrowed from wherever the
//! table lives (a static table compiled in, or a compiled configuration read at boot); and
//! the same for the root file system (`Root`) and the mounts after it (`Mount`).

use core::ffi::CStr;

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Restart {
    Always,
    OnFailure,
    Never,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Readiness {
    /// Ready as soon as exec succeeds.
    Exec,
    /// sd_notify: a `READY=1` datagram on the socket named in `NOTIFY_SOCKET`.
    Notify,
    /// s6/nitro notification-fd: a newline written to this fd.
    Fd(u32),
}

/// A list of C strings packed one after the other, each with its NUL (`b"/bin/sh\0-c\0"`):
/// argv and env without an array of pointers to keep.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct CStrs<'a> {
    bytes: &'a [u8],
}

impl<'a> CStrs<'a> {
    /// The list in `bytes`, which must be empty or end with a NUL (None otherwise).
    pub const fn new(bytes: &'a [u8]) -> Option<CStrs<'a>> {
        match bytes {
            [] | [.., 0] => Some(CStrs { bytes }),
            _ => None,
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = &'a CStr> + Clone {
        let mut rest = self.bytes;
        core::iter::from_fn(move || {
            let s = CStr::from_bytes_until_nul(rest).ok()?;
            rest = rest.get(s.to_bytes_with_nul().len()..).unwrap_or_default();
            Some(s)
        })
    }

    pub fn first(&self) -> Option<&'a CStr> {
        self.iter().next()
    }

    pub fn len(&self) -> usize {
        self.bytes.iter().filter(|&&b| b == 0).count()
    }

    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }
}

#[derive(Copy, Clone, Debug)]
pub struct Spec<'a> {
    pub name: &'a str,
    pub argv: CStrs<'a>,
    pub env: CStrs<'a>,
    pub cwd: &'a CStr,
    pub uid: u32,
    pub gid: u32,
    /// A controlling terminal: the service gets a session and job control on it.
    pub tty: Option<&'a CStr>,
    /// Indices into the table: start after these are ready, stop before them.
    pub deps: &'a [u8],
    pub restart: Restart,
    /// A boot task: dependents wait until it has exited successfully.
    pub oneshot: bool,
    pub ready: Readiness,
    pub ready_timeout_ms: u64,
    pub stop_signal: u32,
    pub stop_grace_ms: u64,
    /// Bytes of output kept in the service's log ring.
    pub ring: usize,
    /// Echo output lines to the console as `name| line`.
    pub echo: bool,
    pub backoff_initial_ms: u64,
    pub backoff_max_ms: u64,
    /// A run this long resets the backoff and the failure count.
    pub stable_after_ms: u64,
    /// Quick failures in a row before the service is marked failed.
    pub max_failures: u32,
}

/// `[root]`: the root file system keel mounts and switches to when it runs from an
/// initramfs. The kernel command line's `root=`, `rootfstype=`, `rootflags=`, `ro`/`rw`,
/// `rootwait`, `rootdelay=`, `init=` and `fsck.mode=` win over each field (docs/root.md).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Root<'a> {
    /// A `root=` value (`values::Device`); empty: no root to switch to.
    pub device: &'a [u8],
    /// Filesystem types to try, comma-separated; empty: what the superblock says.
    pub fstype: &'a [u8],
    /// Mount options (`noatime,data=ordered`): flags keel knows, the rest to the filesystem.
    pub options: &'a [u8],
    pub read_only: bool,
    /// How long to wait for the device to appear; None: keel's default.
    pub wait_secs: Option<u32>,
    /// Seconds to wait before looking at all (`rootdelay=`).
    pub delay_secs: u32,
    /// What to run on the new root; empty: /sbin/init.
    pub init: &'a [u8],
    /// Check the root with `fsck.TYPE` (when the initramfs has it) before mounting it.
    pub fsck: bool,
    /// The services the emergency path runs (indices into the service table); None: the
    /// services with a terminal (the console shells).
    pub rescue: Option<&'a [u8]>,
}

impl Root<'static> {
    pub const NONE: Root<'static> = Root {
        device: b"",
        fstype: b"",
        options: b"",
        read_only: false,
        wait_secs: None,
        delay_secs: 0,
        init: b"",
        fsck: true,
        rescue: None,
    };
}

/// `[mount.NAME]`: a filesystem mounted after the root, in table order (fstab's job).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Mount<'a> {
    pub name: &'a str,
    /// A device (`values::Device`: `UUID=`, `LABEL=`, `PARTUUID=`, `/dev/NAME`, waited for)
    /// or anything else mount(2) takes as it is (`tmpfs`, a directory to bind).
    pub source: &'a [u8],
    /// An absolute path; the last directory is made if missing.
    pub target: &'a [u8],
    /// Empty: what the superblock says (devices only).
    pub fstype: &'a [u8],
    pub options: &'a [u8],
    /// A required mount that fails is the emergency path; an optional one only keeps the
    /// services that need it down.
    pub required: bool,
    /// How long to wait for the device.
    pub wait_secs: u32,
    /// The services that need it (`mounts = [...]`), indices into the service table.
    pub services: &'a [u8],
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packed_c_strings() {
        let list = CStrs::new(b"/bin/sh\0-c\0\0echo hi\0").unwrap();
        let items: Vec<&[u8]> = list.iter().map(|s| s.to_bytes()).collect();
        assert_eq!(items, [&b"/bin/sh"[..], b"-c", b"", b"echo hi"]);
        assert_eq!(list.len(), 4);
        assert_eq!(list.first(), Some(c"/bin/sh"));
        assert!(CStrs::new(b"").unwrap().is_empty());
        assert_eq!(CStrs::new(b"").unwrap().first(), None);
        assert_eq!(CStrs::new(b"no nul"), None);
    }
}
