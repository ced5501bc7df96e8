//! Per-field overrides of a preset's timings, as the agent's `[protocol]` table and the
//! simulator's scenarios spell them: every field optional, durations in milliseconds.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::config::Config;

/// Timings to set on top of a preset. Unset fields keep the preset's value; the result must
/// still pass [`Config::validate`], which names any bad field.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Timings {
    /// [`Config::probe_interval`], ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probe_interval_ms: Option<u64>,
    /// [`Config::probe_timeout`], ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probe_timeout_ms: Option<u64>,
    /// [`Config::indirect_checks`] (SWIM's k).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub indirect_checks: Option<usize>,
    /// [`Config::gossip_interval`], ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gossip_interval_ms: Option<u64>,
    /// [`Config::gossip_nodes`] (fan-out).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gossip_nodes: Option<usize>,
    /// [`Config::suspicion_mult`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suspicion_mult: Option<u32>,
    /// [`Config::suspicion_max_timeout_mult`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suspicion_max_timeout_mult: Option<u32>,
    /// [`Config::suspicion_confirmations`] (Lifeguard's k).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suspicion_confirmations: Option<u32>,
    /// [`Config::retransmit_mult`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retransmit_mult: Option<u32>,
    /// [`Config::push_pull_interval`], ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub push_pull_interval_ms: Option<u64>,
    /// [`Config::reconnect_interval`], ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reconnect_interval_ms: Option<u64>,
    /// [`Config::stall_timeout`], ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stall_timeout_ms: Option<u64>,
    /// [`Config::crash_evidence`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crash_evidence: Option<bool>,
}

impl Timings {
    /// Writes every field that is set into `cfg`.
    pub fn apply(&self, cfg: &mut Config) {
        fn set<T: Copy>(field: &mut T, v: Option<T>) {
            if let Some(v) = v {
                *field = v;
            }
        }
        let ms = |v: Option<u64>| v.map(Duration::from_millis);
        set(&mut cfg.probe_interval, ms(self.probe_interval_ms));
        set(&mut cfg.probe_timeout, ms(self.probe_timeout_ms));
        set(&mut cfg.indirect_checks, self.indirect_checks);
        set(&mut cfg.gossip_interval, ms(self.gossip_interval_ms));
        set(&mut cfg.gossip_nodes, self.gossip_nodes);
        set(&mut cfg.suspicion_mult, self.suspicion_mult);
        set(
            &mut cfg.suspicion_max_timeout_mult,
            self.suspicion_max_timeout_mult,
        );
        set(
            &mut cfg.suspicion_confirmations,
            self.suspicion_confirmations,
        );
        set(&mut cfg.retransmit_mult, self.retransmit_mult);
        set(&mut cfg.push_pull_interval, ms(self.push_pull_interval_ms));
        set(&mut cfg.reconnect_interval, ms(self.reconnect_interval_ms));
        set(&mut cfg.stall_timeout, ms(self.stall_timeout_ms));
        set(&mut cfg.crash_evidence, self.crash_evidence);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_fields_override_and_the_rest_stays() {
        let t = Timings {
            suspicion_mult: Some(2),
            probe_interval_ms: Some(800),
            ..Timings::default()
        };
        let mut cfg = Config::lan();
        t.apply(&mut cfg);
        assert_eq!(cfg.suspicion_mult, 2);
        assert_eq!(cfg.probe_interval, Duration::from_millis(800));
        assert_eq!(cfg.gossip_nodes, Config::lan().gossip_nodes);
        let mut unchanged = Config::lan();
        Timings::default().apply(&mut unchanged);
        assert_eq!(unchanged, Config::lan());
    }
}
