//! keel: a minimal static PID 1. The map (start at src/main.rs):
//! - `boot`: the boot sequence (static phase table);
//! - `pid1`: PID 1 mode, the one event loop (`event`) and its state machines;
//! - `signals`: where signals go (the signal → request table);
//! - `reaper`: reaping every child and orphan;
//! - `services`: what a service is, and the supervisor that runs them;
//! - `shutdown`: what happens at shutdown (one sequence, one deadline), `mounts` for unmounting;
//! - `fatal`: the never-die path (panics and fatal errors, `keel.panic=`);
//! - `container`: container mode (`keel -- PROGRAM`), tini-style;
//! - `cmdline`: `keel.*` keys; `log`: console lines; `applets`: poweroff/reboot/halt;
//! - `proto`: the debug protocol's wire format (frames, messages; docs/protocol.md);
//! - `sys`: the only unsafe code (raw syscalls, program start, per-architecture glue).
#![cfg_attr(not(test), no_std)]
#![deny(unsafe_code)]

pub mod acpi;
pub mod applets;
#[cfg(all(not(test), feature = "rt"))]
pub mod child;
#[cfg(all(not(test), feature = "rt"))]
pub mod boot;
pub mod clock;
pub mod cmdline;
pub mod container;
#[cfg(all(not(test), feature = "rt"))]
pub mod debug;
#[path = "debug/channel.rs"]
pub mod debug_channel;
pub mod devices;
pub mod event;
pub mod fatal;
pub mod file;
pub mod journal;
pub mod log;
pub mod modules;
pub mod mounts;
#[cfg(all(not(test), feature = "rt"))]
pub mod pid1;
pub mod power;
pub mod proto;
pub mod reaper;
pub mod services;
pub mod shutdown;
pub mod signals;
pub mod sys;
#[cfg(test)]
mod testutil;
