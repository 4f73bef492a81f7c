//! The boot sequence: the static phase table (`phases`: mounts, console, command line,
//! clock floor, hostname, loopback, modules, watchdog, power button listeners), kernel module
//! loading (`modules`) and the clock floor's decision (`clock`).

pub mod clock;
pub mod modules;
#[cfg(all(not(test), feature = "rt"))]
mod phases;
#[cfg(all(not(test), feature = "rt"))]
pub use phases::*;
