//! Services: what a service is (`spec`, compiled from the configuration at build time),
//! the one state machine that runs them (`supervisor`), how they start (`spawn`), restart
//! pacing (`backoff`) and their output rings (`ring`).

pub mod backoff;
pub mod ring;
pub mod spec;
#[cfg(all(not(test), feature = "rt"))]
pub mod spawn;
#[cfg(all(not(test), feature = "rt"))]
pub mod supervisor;
