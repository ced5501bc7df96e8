//! swimring: a group of processes that know, with no central coordinator, which of them are
//! alive, and agree on who owns which piece of work.
//!
//! # Layout
//!
//! - [`proto`]: the SWIM + Lifeguard membership protocol as a sans-IO state machine. It does
//!   no I/O, reads no clock and draws no OS randomness.
//! - [`wire`]: the messages and the codec (the only module that knows bincode), and
//!   [`wire::seal`], the authenticated-encryption envelope with its keyring and replay window.
//! - [`ring`]: consistent hashing with virtual nodes, bounded loads, and the task table.
//! - [`placement`]: which members own work and what the local node holds, as a pure
//!   function of a membership view; both drivers use it.
//! - [`runtime`]: the tokio driver and the [`Mesh`] handle an application embeds.
//! - `control` (feature `control`): the JSON-line control endpoint `swimring agent` serves
//!   to the CLI, and its client.
//! - `metrics` (feature `metrics`): a mesh's counters, gauges and probe RTT histogram for a
//!   Prometheus registry.
//!
//! # Features
//!
//! - `cli` (default): the `swimring` command line. It turns on `control` and `metrics`, and
//!   brings clap, toml, tracing-subscriber and axum (the agent's `/metrics` server).
//! - `control`: the `control` module (serde_json).
//! - `metrics`: the `metrics` module (prometheus-client).
//!
//! With `default-features = false` the crate is the library alone: membership, placement,
//! the runtime, the wire format and the ring, with none of those dependencies.
//!
//! # Quick start
//!
//! ```no_run
//! # async fn run() -> Result<(), swimring::Error> {
//! use swimring::{Mesh, Preset};
//!
//! let mesh = Mesh::builder()
//!     .bind("127.0.0.1:7946".parse().unwrap())
//!     .seeds(["127.0.0.1:7947"])
//!     .preset(Preset::Lan)
//!     .tasks(["job-1", "job-2"])
//!     .start()
//!     .await?;
//! println!("{} members, job-1 is on {:?}", mesh.members().len(), mesh.owner("job-1"));
//! # Ok(()) }
//! ```
//!
//! # The run-loop contract
//!
//! Both drivers of [`proto::Swim`] — [`runtime`] over sockets, and the simulator in
//! `simulations/` on virtual time — run the same loop, and no protocol rule is written twice:
//!
//! 1. Feed one input: `handle_datagram`, `handle_stream` (write back the reply it returns),
//!    `handle_timeout`, or an operation (`join`, `set_meta`, `leave`, `broadcast`). Time
//!    never goes backwards: each call's `now` is at least the previous one's.
//! 2. Drain `poll_transmit` until `None` (send each datagram, or make each stream exchange
//!    and hand its reply to `handle_stream`), then `poll_event` until `None`, then
//!    `poll_user_event` until `None` (each user event broadcast in the mesh, once, this
//!    node's own included). Only inputs queue any of them; polling changes nothing else.
//! 3. Sleep until `poll_timeout` (or the next input), then call `handle_timeout` with the
//!    current time. After `handle_timeout(now)`, `poll_timeout()` is later than `now`.
//!
//! `examples/sans_io.rs` follows this loop by hand over two in-memory nodes, from a join to
//! a crash declared dead (`cargo run --example sans_io`).
//!
//! Operations the protocol forbids are refused by the core with a
//! [`proto::ProtoError`] and change nothing (a node that left cannot join or change its
//! metadata; metadata is bounded by `max_meta`).

#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(feature = "control")]
#[cfg_attr(docsrs, doc(cfg(feature = "control")))]
pub mod control;
pub mod error;
#[cfg(feature = "metrics")]
#[cfg_attr(docsrs, doc(cfg(feature = "metrics")))]
pub mod metrics;
pub mod placement;
pub mod proto;
pub mod ring;
pub mod runtime;
pub mod wire;

pub use error::Error;
pub use placement::{FencingToken, OwnedTask};
pub use proto::{Config, Event, Member, Preset, UserEvent, UserEventError};
pub use runtime::{
    Events, Mesh, MeshBuilder, MeshStats, MessageError, Messages, PlacementConfig, RecvError,
    TaskChange, TaskChanges, UserEvents, UserMessage,
};
pub use wire::State;

/// One real instant, as the epoch of unit tests inside `proto`, which never reads a clock
/// itself (not even in its tests): the exception lives here, in one place.
#[cfg(test)]
#[allow(clippy::disallowed_methods)]
pub(crate) fn test_epoch() -> std::time::Instant {
    std::time::Instant::now()
}

/// A member record for unit tests: `name` in `state` at 127.0.0.1:1, run 1, incarnation 0,
/// no metadata.
#[cfg(test)]
pub(crate) fn test_member(name: &str, state: wire::State) -> wire::Member {
    wire::Member {
        name: name.into(),
        addr: "127.0.0.1:1".parse().expect("a socket address"),
        run: 1,
        incarnation: 0,
        state,
        meta: Default::default(),
    }
}
