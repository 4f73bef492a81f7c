//! What a service is: a `Spec` (keel_config::spec) in the table the configuration gives.
//! Today the table is compiled into the binary by build.rs from src/config/default.toml
//! (or `KEEL_CONFIG`): zero parsing at boot.

pub use keel_config::spec::{CStrs, Readiness, Restart, Spec};

include!(concat!(env!("OUT_DIR"), "/services.rs"));

/// Where the supervisor's table comes from: any `&'static [Spec]` (tests build their own;
/// a table decoded at boot), or `Compiled`, the one above: a constant the optimizer sees
/// through, so a build pays only for the kinds of service its table has.
pub trait Specs: Copy {
    fn all(self) -> &'static [Spec<'static>];
}

impl Specs for &'static [Spec<'static>] {
    fn all(self) -> &'static [Spec<'static>] {
        self
    }
}

/// The table compiled into the binary (`SERVICES`).
#[derive(Copy, Clone, Debug)]
pub struct Compiled;

impl Specs for Compiled {
    #[inline(always)]
    fn all(self) -> &'static [Spec<'static>] {
        &SERVICES
    }
}

/// Index of the service called `name`.
pub fn find(name: &[u8]) -> Option<usize> {
    SERVICES.iter().position(|s| s.name.as_bytes() == name)
}
