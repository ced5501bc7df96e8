//! Protocol timings and bounds, with presets and validation.

use std::str::FromStr;
use std::time::Duration;

use thiserror::Error;

use crate::wire::{MAX_LABEL_LEN, MAX_META_LEN};

/// A configuration field that is out of range. Nothing was started with it.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[error("invalid config field `{field}`: {reason}")]
pub struct ConfigError {
    /// The field's name, as spelled in [`Config`].
    pub field: &'static str,
    /// What is wrong with its value.
    pub reason: String,
}

/// Timings and bounds of the protocol. Start from a preset ([`Config::lan`], [`Config::wan`],
/// [`Config::local`]) and override fields; [`Config::validate`] names any bad one.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Config {
    /// Cluster label, carried in every packet: meshes with different labels never merge.
    pub label: String,
    /// Time between probes (before Lifeguard's local-health stretch).
    pub probe_interval: Duration,
    /// How long a direct ping waits for its ack before asking relays.
    pub probe_timeout: Duration,
    /// Relays asked to probe a silent target (SWIM's k).
    pub indirect_checks: usize,
    /// Time between gossip rounds.
    pub gossip_interval: Duration,
    /// Peers each gossip round sends to.
    pub gossip_nodes: usize,
    /// Suspicion timeout multiplier: the minimum timeout is
    /// `suspicion_mult × max(1, log10 n) × probe_interval`.
    pub suspicion_mult: u32,
    /// The suspicion timeout starts at this multiple of the minimum and shrinks with
    /// independent confirmations (Lifeguard).
    pub suspicion_max_timeout_mult: u32,
    /// Lifeguard's k: how many independent confirmations (other members whose own probes of
    /// the suspect failed) bring the timeout down from the maximum to the minimum. memberlist
    /// ties it to the multiplier (`suspicion_mult − 2`); here it is its own setting, so a
    /// short minimum can keep a long maximum for a lone accuser.
    pub suspicion_confirmations: u32,
    /// Each rumour is sent `retransmit_mult × ceil(log10(n + 1))` times.
    pub retransmit_mult: u32,
    /// Time between full-state exchanges with a random member (scaled up past 32 members).
    pub push_pull_interval: Duration,
    /// Time between attempts to reach a random dead member, so partitions heal by themselves:
    /// each attempt is one ping (made with probability dead ÷ live, serf's rule, so the mesh
    /// as a whole pings each dead member about once per interval), and an answer starts a
    /// full-state exchange that merges the two sides.
    pub reconnect_interval: Duration,
    /// How long dead and left members are remembered (for reconnects, and so stale rumours
    /// cannot resurrect them) before they are forgotten.
    pub dead_retention: Duration,
    /// Lifeguard's local health ceiling: the probe interval is stretched up to this factor.
    pub awareness_max_multiplier: u32,
    /// Also probe over a stream when a datagram probe goes unanswered (memberlist's TCP
    /// fallback), so a node behind a UDP-blocking firewall is not declared dead.
    pub stream_fallback_probe: bool,
    /// Use crash evidence: when the driver reports a probed member's port refused (TCP reset,
    /// ICMP port unreachable), and a relay of the indirect probe saw the same, the member is
    /// declared dead at once; one piece of evidence alone only shortens its suspicion to the
    /// minimum. Off, refusals are ignored and only silence counts (docs/SECURITY.md says
    /// what forged refusals could do).
    pub crash_evidence: bool,
    /// The shortest suspicion of a member whose host is known to be up (some prober's stream
    /// handshake with it completed) while the member itself is silent: a stopped process
    /// (GC, VM migration, SIGSTOP) keeps its sockets, so this is how long a stall may last
    /// before the member is declared dead. [`bounds`](crate::proto::bounds) gives the stall
    /// a preset tolerates. The price: a process hung for good on a live host is declared
    /// dead this late.
    pub stall_timeout: Duration,
    /// Largest datagram sent, in bytes; piggybacked rumours fill up to it.
    pub max_datagram: usize,
    /// Largest stream payload accepted, in bytes.
    pub max_stream: usize,
    /// Largest member metadata, in bytes.
    pub max_meta: usize,
    /// Most members held (alive, suspect, and remembered dead or left); more are refused.
    pub max_members: usize,
    /// Most previously unknown members accepted from one datagram.
    pub max_new_members_per_packet: usize,
}

/// A named starting point for [`Config`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Preset {
    /// A LAN: memberlist's probe and gossip rhythm, tuned to detect failures sooner.
    Lan,
    /// memberlist's WAN defaults: slower, more tolerant.
    Wan,
    /// Fast timings for loopback tests and demos.
    Local,
}

impl FromStr for Preset {
    type Err = ConfigError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "lan" => Ok(Preset::Lan),
            "wan" => Ok(Preset::Wan),
            "local" => Ok(Preset::Local),
            other => Err(ConfigError {
                field: "preset",
                reason: format!("unknown preset {other:?} (expected lan, wan or local)"),
            }),
        }
    }
}

impl Preset {
    /// The configuration this preset names.
    pub fn config(self) -> Config {
        match self {
            Preset::Lan => Config::lan(),
            Preset::Wan => Config::wan(),
            Preset::Local => Config::local(),
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config::lan()
    }
}

const fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

impl Config {
    /// One probe a second and memberlist's gossip, like memberlist's `DefaultLANConfig`, with
    /// evidence first and patience otherwise (docs/PROTOCOL.md, measured in
    /// docs/BENCHMARKS.md):
    /// - a crashed process on a live host is dead as soon as the prober and a relay both see
    ///   its port refused;
    /// - a silent member whose host still completes stream handshakes (a stalled process)
    ///   gets `stall_timeout` = 6 s of suspicion, so it survives a stall of about 6.5 s;
    /// - a silent host (gone, cut off) fails its probe after 2 × 250 ms, and its suspicion
    ///   lasts `1 × max(1, log10 n)` s once two other members confirm it, 6 × that for a
    ///   lone accuser;
    /// - a dead member is pinged every 200 ms mesh-wide, so a healed partition merges at once.
    pub fn lan() -> Config {
        Config {
            label: String::new(),
            probe_interval: ms(1000),
            probe_timeout: ms(250),
            indirect_checks: 3,
            gossip_interval: ms(200),
            gossip_nodes: 3,
            suspicion_mult: 1,
            suspicion_max_timeout_mult: 6,
            suspicion_confirmations: 2,
            retransmit_mult: 4,
            push_pull_interval: ms(30_000),
            reconnect_interval: ms(200),
            dead_retention: ms(3_600_000),
            awareness_max_multiplier: 8,
            stream_fallback_probe: true,
            crash_evidence: true,
            stall_timeout: ms(6_000),
            max_datagram: 1400,
            max_stream: 16 << 20,
            max_meta: MAX_META_LEN,
            max_members: 100_000,
            max_new_members_per_packet: 64,
        }
    }

    /// memberlist's `DefaultWANConfig` timings.
    pub fn wan() -> Config {
        Config {
            probe_interval: ms(5000),
            probe_timeout: ms(3000),
            gossip_interval: ms(500),
            gossip_nodes: 4,
            suspicion_mult: 6,
            suspicion_confirmations: 4,
            push_pull_interval: ms(60_000),
            reconnect_interval: ms(1_000),
            stall_timeout: ms(30_000),
            ..Config::lan()
        }
    }

    /// Fast timings for a mesh on one machine: tests and demos.
    pub fn local() -> Config {
        Config {
            probe_interval: ms(200),
            probe_timeout: ms(100),
            gossip_interval: ms(50),
            suspicion_mult: 3,
            suspicion_confirmations: 1,
            push_pull_interval: ms(5_000),
            reconnect_interval: ms(100),
            stall_timeout: ms(3_000),
            dead_retention: ms(600_000),
            ..Config::lan()
        }
    }

    /// Checks every field; the error names the first bad one.
    pub fn validate(&self) -> Result<(), ConfigError> {
        fn bad(field: &'static str, reason: impl Into<String>) -> Result<(), ConfigError> {
            Err(ConfigError {
                field,
                reason: reason.into(),
            })
        }
        let positive = [
            ("probe_interval", self.probe_interval),
            ("probe_timeout", self.probe_timeout),
            ("gossip_interval", self.gossip_interval),
            ("push_pull_interval", self.push_pull_interval),
            ("reconnect_interval", self.reconnect_interval),
        ];
        for (field, d) in positive {
            if d.is_zero() {
                return bad(field, "must be greater than zero");
            }
        }
        if self.stall_timeout > ms(3_600_000) {
            return bad("stall_timeout", "at most an hour");
        }
        if self.label.len() > MAX_LABEL_LEN {
            return bad("label", format!("longer than {MAX_LABEL_LEN} bytes"));
        }
        if self.probe_timeout >= self.probe_interval {
            return bad("probe_timeout", "must be shorter than probe_interval");
        }
        if self.indirect_checks > 16 {
            return bad("indirect_checks", "at most 16");
        }
        if !(1..=32).contains(&self.gossip_nodes) {
            return bad("gossip_nodes", "must be in 1..=32");
        }
        if !(1..=100).contains(&self.suspicion_mult) {
            return bad("suspicion_mult", "must be in 1..=100");
        }
        if !(1..=100).contains(&self.suspicion_max_timeout_mult) {
            return bad("suspicion_max_timeout_mult", "must be in 1..=100");
        }
        if self.suspicion_confirmations > 32 {
            return bad("suspicion_confirmations", "at most 32");
        }
        if !(1..=100).contains(&self.retransmit_mult) {
            return bad("retransmit_mult", "must be in 1..=100");
        }
        if !(1..=64).contains(&self.awareness_max_multiplier) {
            return bad("awareness_max_multiplier", "must be in 1..=64");
        }
        if !(512..=crate::wire::codec::MAX_DATAGRAM).contains(&self.max_datagram) {
            return bad("max_datagram", "must be in 512..=65507");
        }
        if !(64 << 10..=crate::wire::codec::MAX_STREAM).contains(&self.max_stream) {
            return bad("max_stream", "must be between 64 KiB and 64 MiB");
        }
        if self.max_meta > self.max_datagram / 2 {
            return bad("max_meta", "must be at most half of max_datagram");
        }
        if self.max_members < 2 {
            return bad("max_members", "must be at least 2");
        }
        if self.max_new_members_per_packet == 0 {
            return bad("max_new_members_per_packet", "must be at least 1");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_are_valid() {
        for p in ["lan", "wan", "local"] {
            p.parse::<Preset>().unwrap().config().validate().unwrap();
        }
        assert!("fast".parse::<Preset>().is_err());
    }

    #[test]
    fn errors_name_the_field() {
        let cfg = Config {
            probe_timeout: ms(2000),
            ..Config::lan()
        };
        assert_eq!(cfg.validate().unwrap_err().field, "probe_timeout");
        let cfg = Config {
            max_meta: 4000,
            ..Config::lan()
        };
        assert_eq!(cfg.validate().unwrap_err().field, "max_meta");
        let cfg = Config {
            gossip_interval: Duration::ZERO,
            ..Config::lan()
        };
        assert_eq!(cfg.validate().unwrap_err().field, "gossip_interval");
    }
}
