//! Lifeguard's local health multiplier: a node that misses acks and nacks suspects itself
//! first, and stretches its own probe interval and timeout instead of accusing healthy peers.

use std::time::Duration;

/// Local health score in `0..max`. Zero is healthy.
#[derive(Debug, Clone)]
pub struct Awareness {
    score: u32,
    max: u32,
}

impl Awareness {
    /// A healthy node whose score may grow to `max - 1`.
    pub fn new(max: u32) -> Self {
        Awareness { score: 0, max }
    }

    /// Current score.
    pub fn score(&self) -> u32 {
        self.score
    }

    /// Moves the score by `delta`, clamped to `0..max`.
    pub fn apply(&mut self, delta: i32) {
        let s = (self.score as i64 + delta as i64).clamp(0, self.max as i64 - 1);
        self.score = s as u32;
    }

    /// `d × (score + 1)`.
    pub fn scale(&self, d: Duration) -> Duration {
        d * (self.score + 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn score_is_clamped_and_scales() {
        let mut a = Awareness::new(8);
        a.apply(-3);
        assert_eq!(a.score(), 0);
        a.apply(20);
        assert_eq!(a.score(), 7);
        assert_eq!(a.scale(Duration::from_secs(1)), Duration::from_secs(8));
        a.apply(-2);
        assert_eq!(a.scale(Duration::from_secs(1)), Duration::from_secs(6));
    }
}
