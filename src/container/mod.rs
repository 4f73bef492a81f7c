//! Container mode, `keel [FLAGS] [--] PROGRAM [ARGS...]`: a drop-in for tini, catatonit and
//! dumb-init. PROGRAM runs as the one child, in its own process group and with the terminal
//! if keel had it; every signal keel can catch is forwarded to it; every orphan is reaped
//! (keel is a child subreaper when not PID 1); when the child exits, the processes left get
//! SIGTERM, `KEEL_GRACE` seconds, then SIGKILL, and keel exits with the child's code.
//!
//! The map, in the order a run goes through it:
//! - `args`: the command line and environment → `Options`; `wanted`: container mode or not;
//! - `run`: the system side: set-up, the child's start, the one loop (not in host tests);
//! - `signals`: where each signal goes (the child, its group and a job stop, or nowhere);
//! - `lifecycle`: the end of the child → TERM → grace → KILL (`crate::escalate`) → exit code;
//! - `descendants`: who is left after the child, when keel is not PID 1.
//!
//! Everything but `run` is pure and tested next to its code; tests/container.rs runs keel.

pub mod args;
pub mod descendants;
pub mod lifecycle;
#[cfg(all(not(test), feature = "rt"))]
mod run;
pub mod signals;

pub use args::wanted;
#[cfg(all(not(test), feature = "rt"))]
pub use run::{is_machine_init, run};
