//! The simulated network: which packets arrive, and when.

use std::collections::BTreeSet;
use std::time::Duration;

use rand::Rng;

/// Fault model between simulated nodes. Streams (TCP) are not subject to random loss, which
/// TCP retransmits away, but are to cuts.
#[derive(Debug, Clone)]
pub struct Network {
    /// Probability that a datagram is lost.
    pub loss: f64,
    /// One-way delay before jitter.
    pub latency: Duration,
    /// Uniform extra delay in `0..=jitter`.
    pub jitter: Duration,
    /// Directed links `(from, to)` that carry nothing.
    cut: BTreeSet<(usize, usize)>,
    /// Nodes cut off from everyone.
    isolated: BTreeSet<usize>,
}

impl Default for Network {
    fn default() -> Self {
        Network {
            loss: 0.0,
            latency: Duration::from_micros(500),
            jitter: Duration::from_micros(500),
            cut: BTreeSet::new(),
            isolated: BTreeSet::new(),
        }
    }
}

impl Network {
    /// Cuts the link between `a` and `b` in both directions.
    pub fn cut(&mut self, a: usize, b: usize) {
        self.cut.insert((a, b));
        self.cut.insert((b, a));
    }

    /// Cuts every link between the two groups (a partition).
    pub fn partition(&mut self, left: &[usize], right: &[usize]) {
        for &a in left {
            for &b in right {
                self.cut(a, b);
            }
        }
    }

    /// Cuts `n` off from every other node.
    pub fn isolate(&mut self, n: usize) {
        self.isolated.insert(n);
    }

    /// Restores every cut and isolated link (loss and latency stay).
    pub fn heal(&mut self) {
        self.cut.clear();
        self.isolated.clear();
    }

    /// Whether `from` can reach `to` at all.
    pub fn connected(&self, from: usize, to: usize) -> bool {
        !self.isolated.contains(&from)
            && !self.isolated.contains(&to)
            && !self.cut.contains(&(from, to))
    }

    /// The delay of one packet, or `None` if it is lost.
    pub fn route(
        &self,
        rng: &mut impl Rng,
        from: usize,
        to: usize,
        lossy: bool,
    ) -> Option<Duration> {
        if !self.connected(from, to)
            || (lossy && self.loss > 0.0 && rng.random_bool(self.loss.min(1.0)))
        {
            return None;
        }
        let jitter = if self.jitter.is_zero() {
            Duration::ZERO
        } else {
            self.jitter.mul_f64(rng.random::<f64>())
        };
        Some(self.latency + jitter)
    }
}
