//! When a node retries its seeds: the one policy both drivers follow.
//!
//! A node whose join reached nobody (the seeds were down, unresolvable, or not started yet)
//! tries them again with exponential backoff, from one probe interval up to ten, for as long as it has no live peer and has not left. Once any member is alive
//! in its view, gossip and the reconnect rule take over and seeds are no longer special.

use std::time::Duration;

use super::config::Config;
use crate::wire::State;

/// The longest wait between seed attempts, in probe intervals (10 s on a LAN).
pub const MAX_PROBE_INTERVALS: u32 = 10;

/// The backoff between seed attempts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeedRetry {
    next: Duration,
    max: Duration,
}

impl SeedRetry {
    /// The policy for `cfg`: first wait one probe interval, then double up to
    /// ten of them ([`SeedRetry::longest`]).
    pub fn new(cfg: &Config) -> SeedRetry {
        SeedRetry {
            next: cfg.probe_interval,
            max: SeedRetry::longest(cfg),
        }
    }

    /// The longest wait between two attempts under `cfg`.
    pub fn longest(cfg: &Config) -> Duration {
        cfg.probe_interval.saturating_mul(MAX_PROBE_INTERVALS)
    }

    /// The wait the next [`SeedRetry::next_delay`] returns (for logs).
    pub fn upcoming(&self) -> Duration {
        self.next
    }

    /// How long to wait before the next attempt; each call doubles the wait after it, up to
    /// the maximum.
    pub fn next_delay(&mut self) -> Duration {
        let wait = self.next;
        self.next = self.next.saturating_mul(2).min(self.max);
        wait
    }
}

/// Whether a node in `state` that counts `live` members alive or suspect (itself included)
/// should still try its seeds: it is alive and knows no one else alive. A leaving node never
/// does, since joining again would undo the leave.
pub fn seeds_needed(state: State, live: usize) -> bool {
    state == State::Alive && live <= 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_one_probe_interval_to_ten() {
        let cfg = Config::lan();
        let mut r = SeedRetry::new(&cfg);
        let waits: Vec<Duration> = (0..12).map(|_| r.next_delay()).collect();
        assert_eq!(waits[0], cfg.probe_interval);
        assert_eq!(waits[1], cfg.probe_interval * 2);
        assert_eq!(r.upcoming(), r.next_delay());
        assert!(waits.windows(2).all(|w| w[1] >= w[0]));
        assert_eq!(
            *waits.last().unwrap(),
            cfg.probe_interval * MAX_PROBE_INTERVALS
        );
    }

    #[test]
    fn only_an_alive_node_with_no_live_peer_needs_its_seeds() {
        assert!(seeds_needed(State::Alive, 1));
        assert!(!seeds_needed(State::Alive, 2));
        assert!(!seeds_needed(State::Left, 1));
    }
}
