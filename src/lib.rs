//! keel: a minimal static PID 1. The map (start at src/main.rs):
//! - `pid1`: PID 1 mode, set-up and the one event loop (`event`); data flows one way:
//!   event → loop → state machine → action;
//! - `boot`: the boot sequence (static phase table, kernel modules);
//! - `config`: what configuration runs (the kernel command line's `keel.*` keys);
//! - `power`: where signals go, the power button, and what happens at shutdown;
//! - `services`: what a service is, and the supervisor that runs them;
//! - `reaper`: reaping every child and orphan; `escalate`: TERM → grace → KILL, for all;
//! - `debug`: the debug protocol server (wire format: the keel-proto crate);
//! - `container`: container mode (`keel -- PROGRAM`), tini-style;
//! - `devices`: the hardware that is there: uevents, modules.alias, the coldplug walk;
//! - `root`: how the root is found: from an initramfs, `root=` found, checked, mounted and
//!   switched to; then the configured mounts (services wait for them);
//! - `probe`: block-device identification for `root=` (filesystem UUIDs and labels,
//!   GPT/MBR PARTUUIDs), pure parsers over caller-owned bytes;
//! - `log`: console lines and the journals debug clients read; `log::pstore`: the previous
//!   boot (its logs from pstore, how it ended);
//! - `fatal`: the never-die path (panics and fatal errors, `keel.panic=`);
//! - `applets`: poweroff/reboot/halt; `child`: fork + exec with its error reported back;
//! - `file`: small kernel files read whole; `dir`: directory listings (getdents64 records);
//! - `sys`: the only unsafe code (raw syscalls, program start, per-architecture glue).
#![cfg_attr(not(test), no_std)]
#![deny(unsafe_code)]

pub mod applets;
pub mod boot;
#[cfg(all(not(test), feature = "rt"))]
pub mod child;
pub mod clock;
pub mod config;
pub mod container;
pub mod debug;
pub mod devices;
pub mod dir;
pub mod escalate;
pub mod event;
pub mod fatal;
pub mod file;
pub mod log;
#[cfg(all(not(test), feature = "rt"))]
pub mod pid1;
pub mod power;
pub mod probe;
pub mod reaper;
pub mod root;
pub mod services;
pub mod sys;
