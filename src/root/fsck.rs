//! Checking the root before it is mounted, as initramfs-tools does: `fsck.TYPE -a DEVICE`
//! (`-f` too with `fsck.mode=force`) when the initramfs has the checker, in a child the
//! loop waits for, and its exit code read as fsck(8) defines it (a sum of bits):
//! - 0 clean, 1 errors fixed: go on;
//! - 2 or 3, fixed and "reboot needed": that is for a mounted filesystem, and the root is
//!   not mounted yet: go on (initramfs-tools does too);
//! - bit 4, errors left: the root is NOT mounted (not even read-only: a damaged root that
//!   boots hides the damage): the emergency path, to repair it by hand;
//! - 8 and above without bit 4 (operational error, usage, cancelled, library), a checker
//!   killed by a signal or one that cannot be run: nothing was found wrong, but nothing
//!   was checked either: go on with a warning (initramfs-tools does the same).

use crate::reaper::ExitStatus;

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Mount it; the text says what fsck did.
    Go(&'static str),
    /// Mount it, unchecked; the text says why.
    Unchecked(&'static str),
    /// Do not mount it.
    Stop(&'static str),
}

pub fn verdict(status: ExitStatus) -> Verdict {
    match status {
        ExitStatus::Exited(0) => Verdict::Go("clean"),
        ExitStatus::Exited(1) => Verdict::Go("errors fixed"),
        ExitStatus::Exited(2 | 3) => Verdict::Go("errors fixed (it asks for a reboot: the root was not mounted, so none is needed)"),
        ExitStatus::Exited(code) if code & 4 != 0 => Verdict::Stop("errors left uncorrected"),
        ExitStatus::Exited(_) => Verdict::Unchecked("it could not check"),
        ExitStatus::Signaled(_) => Verdict::Unchecked("it was killed"),
    }
}

/// Where the checker for `fstype` may be (`fsck.ext4` is e2fsck, as e2fsprogs installs it).
pub const DIRS: [&[u8]; 3] = [b"/sbin/", b"/usr/sbin/", b"/bin/"];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_as_initramfs_tools_reads_them() {
        use ExitStatus::*;
        for code in [0, 1, 2, 3] {
            assert!(matches!(verdict(Exited(code)), Verdict::Go(_)), "{code}");
        }
        for code in [4, 5, 6, 7, 12, 36, 132, 255] {
            assert!(matches!(verdict(Exited(code)), Verdict::Stop(_)), "{code}: bit 4 is errors left");
        }
        for code in [8, 16, 32, 128, 136] {
            assert!(matches!(verdict(Exited(code)), Verdict::Unchecked(_)), "{code}");
        }
        assert!(matches!(verdict(Signaled(9)), Verdict::Unchecked(_)));
    }
}
