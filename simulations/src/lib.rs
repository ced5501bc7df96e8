//! A deterministic discrete-event simulator for swimring's protocol core.
//!
//! It drives [`swimring::proto::Swim`] (the very code the tokio runtime drives) for many
//! nodes in one thread on virtual time: time jumps from one event to the next, and every
//! random choice, the network's included, comes from one seed. The same seed and the same
//! calls give the same trace.
//!
//! - [`Cluster`] is the engine (with a model of what each node's kernel answers: refusals
//!   from a crashed process's host, a paused process's buffered sockets), [`Network`] its
//!   fault model, [`metrics::Metrics`] what it measures (incrementally, from the nodes'
//!   events).
//! - [`Scenario`] is a timeline of faults (built-in by name, or TOML), [`run`] runs one.
//! - [`output`] writes `summary.json`, CSV series and SVG plots; [`sweep`] and [`tune`] run
//!   many scenarios.

mod builtins;
mod cluster;
mod handoff;
pub mod metrics;
mod network;
pub mod output;
mod progress;
mod runner;
mod scenario;
mod summary;
pub mod sweep;
mod tasks;
pub mod tune;

pub use builtins::BUILTINS;
pub use cluster::{
    ACCEPT_BACKLOG, Bug, Cluster, DeliveredEvent, EngineStats, KernelStats, NodeId, Observed,
    RECV_BUFFER_BYTES, RECV_BUFFER_DATAGRAMS, UserEventReach, addr_of,
};
pub use handoff::{FencedOut, HandoffSummary, Ledger, LowClaim, TaskChange};
pub use network::{Burst, Fate, Latency, Network};
pub use runner::{RunOptions, run};
pub use scenario::{Action, NetSpec, Scenario, Start, Target};
pub use summary::{Predicted, RunResult, Summary, Totals, peak_rss_mib};
pub use swimring::placement::PLACEMENT_DELAY;
pub use swimring::proto::Timings;
pub use tasks::Tasks;
