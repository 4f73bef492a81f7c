//! How the root is found (issue "boot a real disk"): when keel is the init of an initramfs
//! and a root is named (`root=` on the kernel command line, or `[root] device`), keel finds
//! the device, checks it, mounts it and switches to it; on any root it then mounts the
//! configured `[mount.NAME]`s. Services wait for all of it. docs/root.md says it for users.
//! - `plan`: what to mount: the kernel's `root=`, `rootfstype=`, `rootflags=`, `ro`/`rw`,
//!   `rootwait`, `rootdelay=`, `init=`, `fsck.mode=` over the configuration's `[root]`;
//! - `wait`: the finder's timing (rootdelay, then the search up to its deadline);
//! - `find`: which block device a `UUID=`, `LABEL=`, `PARTUUID=` or `/dev/NAME` is
//!   (/sys/class/block, the superblocks and partition tables `probe` reads);
//! - `fsck`: what `fsck.TYPE`'s exit code means for the boot;
//! - `options`: mount options split into mount(2) flags and the filesystem's data;
//! - `initramfs`: whether `/` is the initramfs, and deleting it to free its RAM;
//! - `switch`: switch_root (move the API mounts, free the initramfs, exec init);
//! - `storage` (`Storage`): the stage PID 1's loop drives, with uevents for late devices,
//!   the fsck child, and the emergency path (the rescue services only);
//! - `say`: its console lines, from templates (small in the binary).

pub mod find;
pub mod fsck;
pub mod initramfs;
pub mod options;
pub mod plan;
#[cfg(all(not(test), feature = "rt"))]
mod storage;
#[cfg(all(not(test), feature = "rt"))]
mod switch;
pub mod wait;

#[cfg(all(not(test), feature = "rt"))]
pub use storage::{rescue, Storage};
