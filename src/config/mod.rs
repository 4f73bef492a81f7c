//! What configuration runs: the service table compiled in (src/config/default.toml, or
//! `KEEL_CONFIG` at build time) and the kernel command line's `keel.*` keys (`cmdline`).

pub mod cmdline;
