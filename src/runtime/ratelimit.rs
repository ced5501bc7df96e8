//! Warnings that may repeat on every packet, logged at a bounded rate.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::clock::now;

/// Lets one warning through per `every`, and counts what it held back meanwhile, so a flood
/// of bad packets costs one log line per interval and still says how many there were.
#[derive(Debug)]
pub(crate) struct RateLimit {
    every: Duration,
    state: Mutex<(Option<Instant>, u64)>,
}

impl RateLimit {
    pub(crate) const fn new(every: Duration) -> RateLimit {
        RateLimit {
            every,
            state: Mutex::new((None, 0)),
        }
    }

    /// `Some(n)` when a warning may be logged now, `n` being how many were held back since
    /// the last one; `None` (counting this one) otherwise.
    pub(crate) fn allow(&self) -> Option<u64> {
        let at = now();
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        match s.0 {
            Some(last) if at.saturating_duration_since(last) < self.every => {
                s.1 += 1;
                None
            }
            _ => {
                let held = s.1;
                *s = (Some(at), 0);
                Some(held)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_warning_per_interval_and_the_rest_counted() {
        let r = RateLimit::new(Duration::from_secs(3600));
        assert_eq!(r.allow(), Some(0));
        assert_eq!(r.allow(), None);
        assert_eq!(r.allow(), None);
        let r = RateLimit::new(Duration::ZERO);
        assert_eq!(r.allow(), Some(0));
        assert_eq!(r.allow(), Some(0));
    }
}
