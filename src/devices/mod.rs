//! Loading drivers for the hardware that is there, without udev:
//! - `uevent`: devices as the kernel announces them on its uevent netlink socket, with
//!   their MODALIAS.

pub mod uevent;
