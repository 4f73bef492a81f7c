//! The boot sequence: the static phase table (`phases`: mounts, console, command line,
//! hostname, loopback, modules, power button listeners) and kernel module loading (`modules`).

pub mod modules;
#[cfg(all(not(test), feature = "rt"))]
mod phases;
#[cfg(all(not(test), feature = "rt"))]
pub use phases::*;
