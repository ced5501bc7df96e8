//! Lifeguard's dynamic suspicion timeout: it starts at its maximum and shrinks towards its
//! minimum as independent members confirm the suspicion, so a widely seen failure is declared
//! quickly while a lone (possibly unhealthy) accuser waits long enough to be refuted.

use std::collections::BTreeSet;
use std::time::Duration;

/// The minimum suspicion timeout for a mesh of `n` members (memberlist's formula):
/// `mult × max(1, log10 n) × probe_interval`.
pub fn min_timeout(mult: u32, n: usize, probe_interval: Duration) -> Duration {
    let scale = (n.max(1) as f64).log10().max(1.0);
    probe_interval.mul_f64(mult as f64 * scale)
}

/// The timeout after `confirmations` of `expected` independent confirmations:
/// `max − (max − min) × log(c + 1) / log(k + 1)`, never below `min`.
pub fn timeout(min: Duration, max: Duration, confirmations: u32, expected: u32) -> Duration {
    if expected == 0 {
        return min;
    }
    let frac = ((confirmations as f64) + 1.0).ln() / ((expected as f64) + 1.0).ln();
    let shrunk = max.as_secs_f64() - (max.as_secs_f64() - min.as_secs_f64()) * frac;
    Duration::from_secs_f64(shrunk.max(min.as_secs_f64()))
}

/// An open suspicion about one member.
#[derive(Debug, Clone)]
pub struct Suspicion {
    accusers: BTreeSet<String>,
    expected: u32,
    min: Duration,
    max: Duration,
}

impl Suspicion {
    /// A suspicion raised by `from`, expecting `expected` confirmations. It starts when the
    /// member became suspect, which the member's record keeps.
    pub fn new(from: &str, expected: u32, min: Duration, max: Duration) -> Self {
        Suspicion {
            accusers: BTreeSet::from([from.to_owned()]),
            expected,
            min,
            max,
        }
    }

    /// Records an accuser. Returns whether it is new (and so worth re-gossiping).
    pub fn confirm(&mut self, from: &str) -> bool {
        if self.accusers.len() as u32 > self.expected || self.accusers.contains(from) {
            return false;
        }
        self.accusers.insert(from.to_owned());
        true
    }

    /// Confirmations beyond the first accuser.
    pub fn confirmations(&self) -> u32 {
        self.accusers.len() as u32 - 1
    }

    /// How long after it started the member is to be declared dead, given the
    /// confirmations so far.
    pub fn timeout(&self) -> Duration {
        timeout(self.min, self.max, self.confirmations(), self.expected)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn min_timeout_follows_memberlist() {
        let p = Duration::from_secs(1);
        assert_eq!(min_timeout(4, 5, p), Duration::from_secs(4));
        assert_eq!(min_timeout(4, 100, p), Duration::from_secs(8));
        assert_eq!(min_timeout(4, 1000, p), Duration::from_secs(12));
    }

    #[test]
    fn timeout_shrinks_with_each_independent_confirmation() {
        let (min, max) = (Duration::from_secs(4), Duration::from_secs(24));
        let mut s = Suspicion::new("a", 3, min, max);
        let mut last = s.timeout();
        assert_eq!(last, max);
        for accuser in ["b", "c", "d"] {
            assert!(s.confirm(accuser));
            assert!(s.timeout() < last, "a new accuser shortens the timeout");
            last = s.timeout();
        }
        assert_eq!(last, min, "k confirmations reach the minimum");
        assert!(!s.confirm("b"), "the same accuser twice counts once");
        assert!(!s.confirm("e"), "confirmations beyond k are not needed");
        assert_eq!(s.timeout(), min);
    }

    #[test]
    fn no_expected_confirmations_means_minimum() {
        let (min, max) = (Duration::from_secs(4), Duration::from_secs(24));
        assert_eq!(timeout(min, max, 0, 0), min);
    }
}
