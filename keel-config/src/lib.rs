//! keel's configuration, shared by PID 1 and the host.
//! - `spec`: what a service is (the table PID 1 runs; no parsing at boot), and the root and
//!   the mounts after it (`Root`, `Mount`);
//! - `values`: the grammar of every other value a user sets (panic policy, names, numbers,
//!   signals, `root=` devices, filesystem types), shared the same way;
//! - `channel`: the grammar of a debug channel (`ttyS1:115200:rw`, `vsock:1024:ro`), used by
//!   the compiler and by PID 1 for `keel.debug=` on the kernel command line.
//! - `db`: the compiled form PID 1 reads at boot (a checked view; `emit` on the host);
//! - `modules`: keel's own list of kernel modules (PID 1 loads it, `keelctl image` packs it);
//! - `compiler` (feature `compiler`, std): the text format in, validated tables out; used by
//!   keel's build.rs, keelctl and the tests. Every error names the line.
#![cfg_attr(not(any(test, feature = "compiler")), no_std)]
#![forbid(unsafe_code)]

pub mod channel;
#[cfg(feature = "compiler")]
pub mod compiler;
pub mod db;
pub mod modules;
pub mod spec;
pub mod values;
