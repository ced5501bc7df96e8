//! A deterministic discrete-event simulator for swimring's protocol core.
//!
//! It drives [`swimring::proto::Swim`] (the very code the tokio runtime drives) for many
//! nodes in one thread on virtual time: time jumps from one event to the next, and every
//! random choice, the network's included, comes from one seed. The same seed and the same
//! calls give the same trace.
//!
//! [`Cluster`] is the engine; [`Network`] is its fault model (loss, latency, cuts).

mod cluster;
mod network;

pub use cluster::{Cluster, NodeId, Observed};
pub use network::Network;
