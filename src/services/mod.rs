//! Services: what a service is (`spec`, compiled from the configuration at build time),
//! one service's state machine (`machine`, pure), the services together (`table`, pure),
//! the runtime that forks, signals and reads for them (`supervisor`), how they start
//! (`spawn`), restart pacing (`backoff`) and their output rings (`ring`).

pub mod backoff;
pub mod machine;
pub mod ring;
pub mod spec;
#[cfg(all(not(test), feature = "rt"))]
pub mod spawn;
#[cfg(all(not(test), feature = "rt"))]
pub mod supervisor;
pub mod table;
