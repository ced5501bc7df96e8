//! How long the protocol takes, derived from its configuration: the one source of the
//! detection and convergence bounds that tests, the demo, the netns harness and the
//! simulator's predictions use.
//!
//! These are the protocol's own worst cases on a healthy mesh, with no slack. A caller that
//! bounds a wait (a test on a loaded machine) multiplies them by its own margin; they are
//! never a speed claim.

use std::time::Duration;

use super::broadcast::retransmit_limit;
use super::config::Config;
use super::suspicion::min_timeout;

/// Protocol times for a mesh of `n` members; see [`bounds`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Bounds {
    /// A probe of a silent member fails this long after it is sent: twice the probe timeout
    /// (the direct ping's wait, then as long again for the relays), or the period's end.
    pub probe_failure: Duration,
    /// Lifeguard's minimum suspicion timeout: `mult × max(1, log10 n) × probe_interval`.
    pub min_suspicion: Duration,
    /// The timeout a lone suspicion starts at (confirmations only shorten it).
    pub max_suspicion: Duration,
    /// Time for a rumour to be sent its full retransmit count.
    pub spread: Duration,
    /// After a member stops answering, every member marks it dead within: a full probe
    /// round (the worst case before someone probes it), one probe, the maximum suspicion
    /// and the rumour's spread.
    pub detect: Duration,
    /// After a process crashes on a live host, every member marks it dead within: a full
    /// probe round, one probe (its refusals come within the direct ping's wait, from the
    /// prober and a relay), and the spread of the verdict. Only when
    /// [`Config::crash_evidence`] is on and the host's kernel answers.
    pub crash_detect: Duration,
    /// The longest stall a member on a live host survives: a probe sent as the stall begins
    /// fails `probe_failure` later, and the suspicion it raises lasts at least
    /// [`Config::stall_timeout`]. The member must be back and refute (a round trip) by then.
    pub stall: Duration,
    /// A member that joins through a live seed is known to everyone within one push-pull
    /// period (which repairs any lost rumour), the spread of its alive, and one probe.
    pub join: Duration,
    /// After a partition heals, the sides merge within one reconnect interval (in a split in
    /// two, the side no larger than the other counts at least as many dead as live members,
    /// so each of its nodes pings a dead member every interval), the ping's ack and the
    /// push-pull it starts (two probe timeouts), and the spread of the refutations there and
    /// back.
    pub heal: Duration,
}

/// The protocol's times for `cfg` in a mesh of `n` members.
pub fn bounds(cfg: &Config, n: usize) -> Bounds {
    let min_suspicion = min_timeout(cfg.suspicion_mult, n, cfg.probe_interval);
    let max_suspicion = min_suspicion * cfg.suspicion_max_timeout_mult;
    let spread = cfg.gossip_interval * retransmit_limit(cfg.retransmit_mult, n);
    let round = cfg.probe_interval * u32::try_from(n).unwrap_or(u32::MAX);
    let probe_failure = (cfg.probe_timeout * 2).min(cfg.probe_interval);
    Bounds {
        probe_failure,
        min_suspicion,
        max_suspicion,
        spread,
        detect: round + cfg.probe_interval + max_suspicion + spread,
        crash_detect: round + probe_failure + spread,
        stall: probe_failure + cfg.stall_timeout,
        join: cfg.push_pull_interval + spread + cfg.probe_interval,
        heal: cfg.reconnect_interval + cfg.probe_timeout * 2 + spread * 2,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_follow_the_timings() {
        let cfg = Config::lan();
        let small = bounds(&cfg, 8);
        let large = bounds(&cfg, 1000);
        assert_eq!(small.min_suspicion, cfg.probe_interval * cfg.suspicion_mult);
        assert_eq!(
            small.max_suspicion,
            small.min_suspicion * cfg.suspicion_max_timeout_mult
        );
        assert!(
            large.min_suspicion > small.min_suspicion,
            "grows with log n"
        );
        assert!(large.detect > small.detect && large.spread > small.spread);
        assert!(small.detect > small.max_suspicion + small.probe_failure);
        assert!(small.crash_detect < small.detect, "evidence beats silence");
        assert!(
            small.stall > Duration::from_secs(5),
            "lan survives a 5 s stall"
        );
    }

    /// The stall each preset tolerates, as docs/PROTOCOL.md's table gives it.
    #[test]
    fn each_preset_tolerates_the_documented_stall() {
        let stall = |cfg: Config| bounds(&cfg, 8).stall;
        assert_eq!(stall(Config::lan()), Duration::from_millis(6_500));
        assert_eq!(stall(Config::wan()), Duration::from_secs(35));
        assert_eq!(stall(Config::local()), Duration::from_millis(3_200));
    }
}
