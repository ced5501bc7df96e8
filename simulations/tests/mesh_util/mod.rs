//! What the in-memory cluster tests share: a mesh joined through one seed, the convergence
//! check, and bounds derived from the configuration.
#![allow(dead_code)] // each test crate uses the part it needs

use std::time::Duration;

use swimring::proto::{Config, bounds};
use swimring::wire::State;
use swimring_sim::{Cluster, NodeId};

/// `n` nodes named `n0..`, all but the first joining through the first.
pub fn mesh(n: usize, seed: u64, cfg: &Config) -> (Cluster, Vec<NodeId>) {
    let mut c = Cluster::new(seed);
    let ids: Vec<NodeId> = (0..n)
        .map(|i| c.add_node(&format!("n{i}"), cfg.clone()))
        .collect();
    for &id in &ids[1..] {
        c.join(id, &[ids[0]]);
    }
    (c, ids)
}

/// Whether every node in `ids` sees every other alive.
pub fn converged(c: &Cluster, ids: &[NodeId]) -> bool {
    ids.iter()
        .all(|&o| ids.iter().all(|&t| c.state(o, t) == Some(State::Alive)))
}

/// Time for a rumour to reach everyone: a generous number of gossip rounds.
pub fn dissemination(cfg: &Config) -> Duration {
    cfg.gossip_interval * 20 + cfg.probe_interval * 2
}

/// Worst case for a silent member to be declared dead everywhere: the protocol's detection
/// bound, with every probe round stretched by the largest local-health multiplier.
pub fn detection_bound(cfg: &Config, n: usize) -> Duration {
    let b = bounds(cfg, n);
    b.detect + cfg.probe_interval * (n as u32) * (cfg.awareness_max_multiplier - 1)
}
