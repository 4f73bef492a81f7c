//! The debug protocol server (wire format: `keel_proto`, docs/protocol.md). Read in order:
//! - `server`: the channels keel serves, listeners (unix, vsock: several clients each) and
//!   devices (a UART, a virtio-console port: one peer); accepting clients; the pass that
//!   moves every client's output along;
//! - `client`: one client session: its fixed buffers, reading requests and answering them;
//! - `stream`: answers that go on, sent at the client's pace: journal records (logs,
//!   events) and kernel records;
//! - `channel`: opening channels (sockets, devices in raw mode);
//! - `kmsg`: reading and parsing /dev/kmsg; `rss`: keel's resident memory for Status.
//!
//! Every client has fixed buffers; a slow one loses records (counted, and told with a Lost
//! message), it never blocks PID 1. Requests that change something (start/stop/restart,
//! power) are refused on read-only channels. A shared line (kernel console) only carries
//! output, in APC strings: its input belongs to whoever reads the console (a shell), so
//! keel does not read it.
//!
//! `server`, `client`, `stream` and `channel` drive the supervisor and the event loop: they
//! are PID 1 only. The rest is pure enough to be unit-tested on the host.

pub mod kmsg;
pub mod rss;

#[cfg(all(not(test), feature = "rt"))]
mod channel;
#[cfg(all(not(test), feature = "rt"))]
mod client;
#[cfg(all(not(test), feature = "rt"))]
mod server;
#[cfg(all(not(test), feature = "rt"))]
mod stream;

#[cfg(all(not(test), feature = "rt"))]
pub use server::{Ctx, Server};

pub const MAX_LISTENERS: usize = 4;
/// Clients of every channel together (a device channel is one).
pub const MAX_CLIENTS: usize = 4;
