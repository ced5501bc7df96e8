//! The simulated network: which packets arrive, how many times, and when.
//!
//! Every decision is O(1) per packet: partitions are group labels (not a table of cut links,
//! which would be O(n²) for a split of 10,000 nodes), bursty loss keeps one Gilbert–Elliott
//! state per receiving node, and latency is drawn from a distribution.

use std::collections::BTreeSet;
use std::time::Duration;

use rand::Rng;
use serde::{Deserialize, Serialize};

/// One-way delay of a packet.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Latency {
    /// Always the same.
    Fixed {
        /// Delay in milliseconds.
        ms: f64,
    },
    /// Uniform in `min_ms..=max_ms`.
    Uniform {
        /// Smallest delay, ms.
        min_ms: f64,
        /// Largest delay, ms.
        max_ms: f64,
    },
    /// Pareto (heavy tail): `scale_ms / U^(1/shape)`, capped at `cap_ms`.
    Pareto {
        /// Smallest delay (the distribution's scale), ms.
        scale_ms: f64,
        /// Tail index α: smaller is heavier (α ≤ 2 has infinite variance).
        shape: f64,
        /// Largest delay drawn, ms.
        cap_ms: f64,
    },
    /// Log-normal: `exp(N(ln median_ms, sigma))`, capped at `cap_ms`.
    LogNormal {
        /// Median delay, ms.
        median_ms: f64,
        /// Standard deviation of the log.
        sigma: f64,
        /// Largest delay drawn, ms.
        cap_ms: f64,
    },
}

impl Default for Latency {
    fn default() -> Self {
        Latency::Uniform {
            min_ms: 0.5,
            max_ms: 1.0,
        }
    }
}

impl Latency {
    /// Checks the parameters; the error says which one is wrong.
    pub fn validate(&self) -> Result<(), String> {
        let ok = match *self {
            Latency::Fixed { ms } => ms >= 0.0,
            Latency::Uniform { min_ms, max_ms } => min_ms >= 0.0 && max_ms >= min_ms,
            Latency::Pareto {
                scale_ms,
                shape,
                cap_ms,
            } => scale_ms > 0.0 && shape > 0.0 && cap_ms >= scale_ms,
            Latency::LogNormal {
                median_ms,
                sigma,
                cap_ms,
            } => median_ms > 0.0 && sigma >= 0.0 && cap_ms >= median_ms,
        };
        if ok && self.max_ms().is_finite() {
            Ok(())
        } else {
            Err(format!("latency parameters out of range: {self:?}"))
        }
    }

    fn max_ms(&self) -> f64 {
        match *self {
            Latency::Fixed { ms } => ms,
            Latency::Uniform { max_ms, .. } => max_ms,
            Latency::Pareto { cap_ms, .. } | Latency::LogNormal { cap_ms, .. } => cap_ms,
        }
    }

    /// One draw.
    pub fn sample(&self, rng: &mut impl Rng) -> Duration {
        let ms = match *self {
            Latency::Fixed { ms } => ms,
            Latency::Uniform { min_ms, max_ms } => min_ms + (max_ms - min_ms) * rng.random::<f64>(),
            Latency::Pareto {
                scale_ms,
                shape,
                cap_ms,
            } => {
                let u: f64 = 1.0 - rng.random::<f64>(); // (0, 1]
                (scale_ms / u.powf(1.0 / shape)).min(cap_ms)
            }
            Latency::LogNormal {
                median_ms,
                sigma,
                cap_ms,
            } => {
                // Box–Muller: one standard normal from two uniforms.
                let u1: f64 = 1.0 - rng.random::<f64>();
                let u2: f64 = rng.random::<f64>();
                let z = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
                (median_ms.ln() + sigma * z).exp().min(cap_ms)
            }
        };
        Duration::from_nanos((ms.max(0.0) * 1e6) as u64)
    }
}

/// Gilbert–Elliott bursty loss: a two-state Markov chain per receiving node, stepped once per
/// datagram, with a loss probability in each state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Burst {
    /// Chance per packet of moving from the good state to the bad one.
    pub p_good_to_bad: f64,
    /// Chance per packet of moving from the bad state back to the good one.
    pub p_bad_to_good: f64,
    /// Loss probability in the good state.
    #[serde(default)]
    pub loss_good: f64,
    /// Loss probability in the bad state.
    pub loss_bad: f64,
}

impl Burst {
    /// Long-run loss rate.
    pub fn mean_loss(&self) -> f64 {
        let pi_bad = self.p_good_to_bad / (self.p_good_to_bad + self.p_bad_to_good);
        pi_bad * self.loss_bad + (1.0 - pi_bad) * self.loss_good
    }
}

/// Fault model between simulated nodes. Streams (TCP) suffer no random loss, duplication or
/// reordering (TCP hides them) but are cut by partitions like datagrams.
#[derive(Debug, Clone)]
pub struct Network {
    /// Probability that a datagram is lost (independently of the others).
    pub loss: f64,
    /// Bursty loss, applied on top of `loss`.
    pub burst: Option<Burst>,
    /// Delay distribution.
    pub latency: Latency,
    /// Probability that a datagram is delivered twice (the copy with its own delay).
    pub duplicate: f64,
    /// Probability that a datagram is held back by an extra `reorder_delay`, so later ones
    /// overtake it.
    pub reorder: f64,
    /// Extra delay of a reordered datagram.
    pub reorder_delay: Duration,
    /// Partition group of each node (0 for all when whole).
    group: Vec<u32>,
    /// Directed group pairs `(from, to)` that carry nothing.
    blocked: BTreeSet<(u32, u32)>,
    /// Nodes cut off from everyone.
    isolated: Vec<bool>,
    /// Directed links `(from, to)` that carry nothing (for a handful of cuts).
    cut: BTreeSet<(usize, usize)>,
    /// Extra delay on every packet to or from a node (a slow machine or link).
    slow: Vec<Duration>,
    /// Gilbert–Elliott state per receiving node: `true` when bad.
    bad: Vec<bool>,
    any_partition: bool,
}

impl Default for Network {
    fn default() -> Self {
        Network {
            loss: 0.0,
            burst: None,
            latency: Latency::default(),
            duplicate: 0.0,
            reorder: 0.0,
            reorder_delay: Duration::from_millis(20),
            group: Vec::new(),
            blocked: BTreeSet::new(),
            isolated: Vec::new(),
            cut: BTreeSet::new(),
            slow: Vec::new(),
            bad: Vec::new(),
            any_partition: false,
        }
    }
}

/// What the network does with one packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fate {
    /// Lost.
    Dropped,
    /// Delivered once after the delay.
    Once(Duration),
    /// Delivered twice.
    Twice(Duration, Duration),
}

impl Network {
    /// Makes room for node slot `n` (called by the engine for each new slot).
    pub fn add_node(&mut self) {
        self.group.push(0);
        self.isolated.push(false);
        self.slow.push(Duration::ZERO);
        self.bad.push(false);
    }

    fn touch(&mut self) {
        self.any_partition =
            !self.blocked.is_empty() || !self.cut.is_empty() || self.isolated.iter().any(|&b| b);
    }

    /// Cuts the link between `a` and `b` in both directions.
    pub fn cut(&mut self, a: usize, b: usize) {
        self.cut.insert((a, b));
        self.cut.insert((b, a));
        self.touch();
    }

    /// Splits the mesh in two: `side` against everyone else, both directions.
    pub fn partition(&mut self, side: &[usize]) {
        for &n in side {
            self.group[n] = 1;
        }
        self.blocked.insert((0, 1));
        self.blocked.insert((1, 0));
        self.touch();
    }

    /// A one-way partition: packets from `side` to the rest are lost; the reverse direction
    /// still works (an asymmetric firewall or route).
    pub fn partition_one_way(&mut self, side: &[usize]) {
        for &n in side {
            self.group[n] = 1;
        }
        self.blocked.insert((1, 0));
        self.touch();
    }

    /// Cuts `n` off from every other node.
    pub fn isolate(&mut self, n: usize) {
        self.isolated[n] = true;
        self.touch();
    }

    /// Restores every cut, partition and isolated node (loss, latency and slowness stay).
    pub fn heal(&mut self) {
        self.cut.clear();
        self.blocked.clear();
        self.group.iter_mut().for_each(|g| *g = 0);
        self.isolated.iter_mut().for_each(|b| *b = false);
        self.any_partition = false;
    }

    /// Adds `extra` delay to every packet to or from `n` (zero to undo).
    pub fn set_slow(&mut self, n: usize, extra: Duration) {
        self.slow[n] = extra;
    }

    /// Whether `from` can reach `to` at all.
    pub fn connected(&self, from: usize, to: usize) -> bool {
        !self.any_partition
            || (!self.isolated[from]
                && !self.isolated[to]
                && !self.blocked.contains(&(self.group[from], self.group[to]))
                && !self.cut.contains(&(from, to)))
    }

    fn delay(&self, rng: &mut impl Rng, extra: Duration) -> Duration {
        let mut d = self.latency.sample(rng) + extra;
        if self.reorder > 0.0 && rng.random_bool(self.reorder.min(1.0)) {
            d += self.reorder_delay;
        }
        d
    }

    /// Decides the fate of one packet. `datagram` is false for streams.
    pub fn route(&mut self, rng: &mut impl Rng, from: usize, to: usize, datagram: bool) -> Fate {
        if !self.connected(from, to) {
            return Fate::Dropped;
        }
        let extra = self.slow[from] + self.slow[to];
        if !datagram {
            return Fate::Once(self.latency.sample(rng) + extra);
        }
        if self.loss > 0.0 && rng.random_bool(self.loss.min(1.0)) {
            return Fate::Dropped;
        }
        if let Some(b) = &self.burst {
            let bad = &mut self.bad[to];
            let flip = if *bad {
                b.p_bad_to_good
            } else {
                b.p_good_to_bad
            };
            if flip > 0.0 && rng.random_bool(flip.min(1.0)) {
                *bad = !*bad;
            }
            let p = if *bad { b.loss_bad } else { b.loss_good };
            if p > 0.0 && rng.random_bool(p.min(1.0)) {
                return Fate::Dropped;
            }
        }
        let first = self.delay(rng, extra);
        if self.duplicate > 0.0 && rng.random_bool(self.duplicate.min(1.0)) {
            let second = self.delay(rng, extra);
            return Fate::Twice(first, second);
        }
        Fate::Once(first)
    }
}
