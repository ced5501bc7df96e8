//! No task before the join: a node started with seeds claims nothing until it has joined
//! (merged a full state from a member), or until its join wait has passed.
//!
//! Without this gate a new node's first view holds only itself, so it would own every task
//! until its seed answered, while the real owners kept running them. Waiting costs a node
//! that joins nothing (it joins within one exchange); one that reaches no seed claims after
//! the wait, and says so, since a node alone must still do its work.

use std::time::{Duration, Instant};

/// Whether this node may claim tasks yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum JoinGate {
    /// Claims follow the view.
    Open,
    /// Nothing is claimed until the node joins or `until` passes.
    Closed {
        /// When the node claims even without having joined.
        until: Instant,
        /// The wait that was set, for the log.
        wait: Duration,
    },
}

impl JoinGate {
    /// Closed for `wait` from `now` on a node started with seeds; open on one without.
    pub(crate) fn new(seeded: bool, now: Instant, wait: Duration) -> JoinGate {
        if !seeded {
            return JoinGate::Open;
        }
        JoinGate::Closed {
            // A wait too long to add is a wait without end: the join opens the gate.
            until: now
                .checked_add(wait)
                .or_else(|| now.checked_add(Duration::from_secs(86_400 * 365)))
                .unwrap_or(now),
            wait,
        }
    }

    /// Whether claims follow the view.
    pub(crate) fn is_open(&self) -> bool {
        matches!(self, JoinGate::Open)
    }

    /// When the gate opens by itself, while it is closed.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        match self {
            JoinGate::Open => None,
            JoinGate::Closed { until, .. } => Some(*until),
        }
    }

    /// Opens the gate if the node has `joined` or the wait has passed at `now`, and logs why.
    /// Returns true only on the call that opened it.
    pub(crate) fn check(&mut self, now: Instant, joined: bool) -> bool {
        let JoinGate::Closed { until, wait } = *self else {
            return false;
        };
        if joined {
            tracing::info!("joined: claiming tasks");
        } else if now >= until {
            tracing::warn!(join_wait = ?wait,
                "claiming tasks without having joined: no member sent its state within the join wait, so another node may run the same tasks");
        } else {
            return false;
        }
        *self = JoinGate::Open;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_node_without_seeds_claims_at_once() {
        let g = JoinGate::new(false, crate::test_epoch(), Duration::from_secs(5));
        assert!(g.is_open() && g.deadline().is_none());
    }

    #[test]
    fn the_gate_opens_on_the_join_or_at_the_end_of_the_wait_and_only_once() {
        let t0 = crate::test_epoch();
        let wait = Duration::from_secs(5);
        let mut g = JoinGate::new(true, t0, wait);
        assert_eq!(g.deadline(), Some(t0 + wait));
        assert!(!g.check(t0 + Duration::from_secs(1), false));
        assert!(
            g.check(t0 + Duration::from_secs(1), true),
            "the join opens it"
        );
        assert!(g.is_open() && !g.check(t0 + wait, true));

        let mut g = JoinGate::new(true, t0, wait);
        assert!(!g.check(t0 + wait - Duration::from_millis(1), false));
        assert!(g.check(t0 + wait, false), "the wait's end opens it");
    }

    #[test]
    fn an_endless_wait_does_not_overflow() {
        let t0 = crate::test_epoch();
        let mut g = JoinGate::new(true, t0, Duration::MAX);
        assert!(g.deadline().is_some_and(|d| d > t0));
        assert!(g.check(t0, true));
    }
}
