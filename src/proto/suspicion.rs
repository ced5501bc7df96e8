//! Lifeguard's dynamic suspicion timeout: it starts at its maximum and shrinks towards its
//! minimum as independent members confirm the suspicion, so a widely seen failure is declared
//! quickly while a lone (possibly unhealthy) accuser waits long enough to be refuted.
//!
//! Evidence from the suspect's host bends it (see [`Reach`]): a host seen up (a stalled
//! process) keeps the timeout at or above the stall patience; a refusal seen by one accuser
//! brings it to the minimum, and refusals seen by two accusers independently end it at once.

use std::collections::BTreeSet;
use std::time::Duration;

use crate::wire::Reach;

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

/// The timeouts a suspicion chooses between.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Lifeguard's minimum, reached with every expected confirmation.
    pub min: Duration,
    /// Lifeguard's maximum, for a lone accuser.
    pub max: Duration,
    /// The floor while the suspect's host is known to be up: the stall patience.
    pub stall: Duration,
}

/// Independent accusers whose refusals end a suspicion at once: the prober's own evidence
/// could be forged on its path alone.
pub const REFUSALS_FOR_DEATH: usize = 2;

/// An open suspicion about one member.
#[derive(Debug, Clone)]
pub struct Suspicion {
    accusers: BTreeSet<String>,
    expected: u32,
    limits: Limits,
    host_up: bool,
    /// Accusers that saw the suspect's port refused, up to [`REFUSALS_FOR_DEATH`].
    refused_by: Vec<String>,
}

impl Suspicion {
    /// A suspicion raised by `from`, with what its probe learned, expecting `expected`
    /// confirmations. It starts when the member became suspect, which the member's record
    /// keeps.
    pub fn new(from: &str, reach: Option<Reach>, expected: u32, limits: Limits) -> Self {
        let mut s = Suspicion {
            accusers: BTreeSet::from([from.to_owned()]),
            expected,
            limits,
            host_up: false,
            refused_by: Vec::new(),
        };
        s.learn(from, reach);
        s
    }

    /// Records an accuser and what it learned. Returns whether anything changed (and so the
    /// rumour is worth passing on).
    pub fn confirm(&mut self, from: &str, reach: Option<Reach>) -> bool {
        let learned = self.learn(from, reach);
        if self.accusers.len() as u32 > self.expected || self.accusers.contains(from) {
            return learned;
        }
        self.accusers.insert(from.to_owned());
        true
    }

    fn learn(&mut self, from: &str, reach: Option<Reach>) -> bool {
        match reach {
            Some(Reach::HostUp) if !self.host_up => {
                self.host_up = true;
                true
            }
            Some(Reach::Refused)
                if self.refused_by.len() < REFUSALS_FOR_DEATH
                    && !self.refused_by.iter().any(|r| r == from) =>
            {
                self.refused_by.push(from.to_owned());
                true
            }
            _ => false,
        }
    }

    /// Whether some accuser saw the suspect's host up.
    pub fn host_up(&self) -> bool {
        self.host_up
    }

    /// Confirmations beyond the first accuser.
    pub fn confirmations(&self) -> u32 {
        self.accusers.len() as u32 - 1
    }

    /// How long after it started the member is to be declared dead, given the
    /// confirmations and evidence so far: zero once two accusers saw the port refused; at
    /// least the stall patience if the host is up (a single refusal contradicting a live
    /// host buys nothing); the minimum after one refusal; else Lifeguard's timeout.
    pub fn timeout(&self) -> Duration {
        let Limits { min, max, stall } = self.limits;
        let lifeguard = timeout(min, max, self.confirmations(), self.expected);
        match self.refused_by.len() {
            n if n >= REFUSALS_FOR_DEATH => Duration::ZERO,
            _ if self.host_up => lifeguard.max(stall),
            1 => min,
            _ => lifeguard,
        }
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

    const LIMITS: Limits = Limits {
        min: Duration::from_secs(4),
        max: Duration::from_secs(24),
        stall: Duration::from_secs(10),
    };

    #[test]
    fn timeout_shrinks_with_each_independent_confirmation() {
        let (min, max) = (LIMITS.min, LIMITS.max);
        let mut s = Suspicion::new("a", None, 3, LIMITS);
        let mut last = s.timeout();
        assert_eq!(last, max);
        for accuser in ["b", "c", "d"] {
            assert!(s.confirm(accuser, None));
            assert!(s.timeout() < last, "a new accuser shortens the timeout");
            last = s.timeout();
        }
        assert_eq!(last, min, "k confirmations reach the minimum");
        assert!(!s.confirm("b", None), "the same accuser twice counts once");
        assert!(
            !s.confirm("e", None),
            "confirmations beyond k are not needed"
        );
        assert_eq!(s.timeout(), min);
    }

    #[test]
    fn a_live_host_keeps_the_stall_patience_through_confirmations() {
        let mut s = Suspicion::new("a", Some(Reach::HostUp), 3, LIMITS);
        for accuser in ["b", "c", "d"] {
            s.confirm(accuser, None);
        }
        assert_eq!(
            s.timeout(),
            LIMITS.stall,
            "floored, not Lifeguard's minimum"
        );
        assert!(s.confirm("e", Some(Reach::Refused)), "evidence is news");
        assert_eq!(
            s.timeout(),
            LIMITS.stall,
            "one refusal against a live host buys nothing"
        );
        assert!(s.confirm("f", Some(Reach::Refused)));
        assert_eq!(s.timeout(), Duration::ZERO, "two refusals end it");
    }

    #[test]
    fn one_refusal_shortens_two_from_the_same_accuser_count_once() {
        let mut s = Suspicion::new("a", Some(Reach::Refused), 3, LIMITS);
        assert_eq!(s.timeout(), LIMITS.min);
        assert!(!s.confirm("a", Some(Reach::Refused)));
        assert_eq!(s.timeout(), LIMITS.min);
        assert!(s.confirm("b", Some(Reach::Refused)));
        assert_eq!(s.timeout(), Duration::ZERO);
    }

    #[test]
    fn no_expected_confirmations_means_minimum() {
        let (min, max) = (Duration::from_secs(4), Duration::from_secs(24));
        assert_eq!(timeout(min, max, 0, 0), min);
    }
}
