//! What a service is: a `Spec` (keel_config::spec) in the table the configuration gives.
//! Today the table is compiled into the binary by build.rs from src/config/default.toml
//! (or `KEEL_CONFIG`): zero parsing at boot.

pub use keel_config::spec::{CStrs, Readiness, Restart, Spec};

include!(concat!(env!("OUT_DIR"), "/services.rs"));

/// Index of the service called `name`.
pub fn find(name: &[u8]) -> Option<usize> {
    SERVICES.iter().position(|s| s.name.as_bytes() == name)
}
