//! What a run measured: the `summary.json` record, the theory it is compared with, and the
//! measures derived from a run's samples and rings.

use std::collections::BTreeMap;

use serde::Serialize;
use swimring::placement::{PlacementConfig, eligible};
use swimring::proto::{Config, Member, Stats, bounds};
use swimring::ring::Ring;

use crate::cluster::{KernelStats, UserEventReach};
use crate::handoff::HandoffSummary;
use crate::metrics::{Sample, Spread};

/// What SWIM's analysis and memberlist's formulas predict for this configuration.
#[derive(Debug, Clone, Serialize)]
pub struct Predicted {
    /// Expected time from a crash to the first probe of it that fails: SWIM's e/(e−1)
    /// protocol periods.
    pub first_suspicion_s: f64,
    /// memberlist's minimum suspicion timeout: mult × max(1, log10 n) × probe interval.
    pub suspicion_min_s: f64,
    /// The Lifeguard starting (maximum) timeout: `suspicion_max_timeout_mult` × the minimum.
    pub suspicion_max_s: f64,
    /// First detection if k confirmations arrive at once: first suspicion + minimum timeout.
    pub first_detection_fast_s: f64,
    /// First detection with a lone accuser: first suspicion + maximum timeout.
    pub first_detection_slow_s: f64,
}

impl Predicted {
    /// Predictions for `cfg` in a mesh of `n`.
    pub fn for_config(cfg: &Config, n: usize) -> Predicted {
        let e = std::f64::consts::E;
        let t = cfg.probe_interval.as_secs_f64();
        let b = bounds(cfg, n);
        let (min, max) = (b.min_suspicion.as_secs_f64(), b.max_suspicion.as_secs_f64());
        let first = e / (e - 1.0) * t;
        Predicted {
            first_suspicion_s: first,
            suspicion_min_s: min,
            suspicion_max_s: max,
            first_detection_fast_s: first + min,
            first_detection_slow_s: first + max,
        }
    }
}

/// Counters summed over every node (and every previous run of restarted nodes): the core's
/// own, under the names [`Stats::counters`] gives them, and the simulated network's and
/// kernels'.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Totals {
    /// Each of the core's counters ([`Stats::counters`]), summed.
    pub protocol: BTreeMap<&'static str, u64>,
    /// Datagrams the network lost.
    pub dropped: u64,
    /// Datagrams the network duplicated.
    pub duplicated: u64,
    /// What the simulated kernels did: refusals, completed handshakes, a paused node's
    /// buffered input.
    pub kernel: KernelStats,
}

impl Totals {
    pub(crate) fn add(&mut self, s: &Stats) {
        for c in s.counters() {
            *self.protocol.entry(c.name).or_default() += c.value;
        }
    }

    /// The sum of the core's counter `name` (0 for a name it does not have).
    pub fn get(&self, name: &str) -> u64 {
        self.protocol.get(name).copied().unwrap_or(0)
    }
}

/// The run's `summary.json`.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// Scenario name.
    pub scenario: String,
    /// Nodes at the start.
    pub nodes: usize,
    /// Seed.
    pub seed: u64,
    /// Timing preset.
    pub preset: String,
    /// Virtual seconds simulated.
    pub sim_seconds: f64,
    /// Wall-clock seconds the run took (not part of the trace).
    pub wall_seconds: f64,
    /// Of `wall_seconds`, those spent before virtual time started: creating the nodes and,
    /// with a converged start, handing each of them the whole view.
    pub setup_wall_seconds: f64,
    /// Inputs handed to nodes (timers, datagrams, streams).
    pub events: u64,
    /// `events / wall_seconds`.
    pub events_per_wall_s: f64,
    /// Heap entries popped, stale ones included.
    pub heap_pops: u64,
    /// Earliest grid time from which every running node agreed with the truth until the end
    /// (null if they did not agree at the end).
    pub converged_at_s: Option<f64>,
    /// Time of the last fault in the timeline.
    pub last_fault_s: f64,
    /// `converged_at_s − last_fault_s`, floored at 0.
    pub converged_after_last_fault_s: Option<f64>,
    /// Share of running nodes agreeing at the end.
    pub final_agree_fraction: f64,
    /// Crash to first dead declaration, over the crashes.
    pub detection_first_s: Option<Spread>,
    /// Crash to the last live observer's dead declaration.
    pub detection_all_s: Option<Spread>,
    /// Crashes in the run.
    pub failures: usize,
    /// Crashes not yet declared dead by every live observer at the end (or superseded by a
    /// restart first).
    pub failures_not_fully_detected: usize,
    /// Distinct up nodes (name, run) declared dead by anyone.
    pub false_positives: usize,
    /// Dead declarations about up nodes, all observers.
    pub false_positive_events: u64,
    /// All dead declarations.
    pub dead_events: u64,
    /// Datagram bytes sent per live node per virtual second.
    pub bytes_per_node_per_s: f64,
    /// Stream bytes (full-state exchanges, fallback probes) sent per live node per virtual
    /// second.
    pub stream_bytes_per_node_per_s: f64,
    /// Datagrams sent per live node per virtual second.
    pub packets_per_node_per_s: f64,
    /// From when on every running node would build the ring of the nodes really up (the same
    /// ring checksum), to the end; null if they disagree at the end. Sampled from digests of
    /// the live names, and checked with real ring checksums at the end.
    pub ring_agreement_s: Option<f64>,
    /// Over 10,000 synthetic tasks, tasks that changed owner from a node's ring before the
    /// first crash or leave to one at the end, divided by the minimum that had to move (the
    /// departed members' tasks); 1.0 is ideal. Null if no task had to move.
    pub tasks_moved_ratio: Option<f64>,
    /// xxh3 of the ordered trace of membership events and actions, with virtual times.
    pub trace_hash: String,
    /// Entries in the trace.
    pub trace_events: u64,
    /// Counters over all nodes.
    pub totals: Totals,
    /// Theory, for comparison.
    pub predicted: Predicted,
    /// Invariant violations (only when checked).
    pub violations: Vec<String>,
    /// Whether the scenario's `settle_within_s` requirement held (null if none).
    pub settled: Option<bool>,
    /// Peak resident memory of the process so far, MiB (Linux; not part of the trace).
    pub peak_rss_mib: Option<f64>,
    /// Only when user events were broadcast: how far and how fast they spread.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_events: Option<UserEventReach>,
    /// Task mode only: handoffs, their overlap and gap, and stale tokens.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub handoff: Option<HandoffSummary>,
}

/// Everything a run produced.
pub struct RunResult {
    /// The summary.
    pub summary: Summary,
    /// The time series.
    pub samples: Vec<Sample>,
    /// Crash-to-first and crash-to-all detection latencies, seconds.
    pub detections: (Vec<f64>, Vec<f64>),
    /// Action times, seconds, with a label (for plots).
    pub marks: Vec<(f64, String)>,
}

/// Peak RSS of this process, from /proc (Linux only).
pub fn peak_rss_mib() -> Option<f64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// Synthetic task keys over which movement is measured.
const MOVEMENT_TASKS: usize = 10_000;

/// Tasks that changed owner between two rings, divided by the minimum that had to: those
/// whose owner is no longer in the later ring. `None` if nothing had to move.
pub(crate) fn tasks_moved_ratio(before: &Ring, after: &Ring) -> Option<f64> {
    let (mut moved, mut minimum) = (0usize, 0usize);
    for i in 0..MOVEMENT_TASKS {
        let key = format!("task-{i}");
        let (a, b) = (before.owner(key.as_bytes()), after.owner(key.as_bytes()));
        moved += usize::from(a != b);
        minimum += usize::from(a.is_some_and(|a| after.weight(a).is_none()));
    }
    (minimum > 0).then(|| moved as f64 / minimum as f64)
}

/// The ring checksum a node holding `members` places work on, without building its points.
pub(crate) fn ring_checksum_of<'a>(
    cfg: &PlacementConfig,
    members: impl Iterator<Item = &'a Member>,
) -> u64 {
    Ring::checksum_of(eligible(cfg, members).iter().map(|(n, w)| (n.as_str(), *w)))
}

/// The earliest sample time from which every running node agreed with the truth until the
/// last sample; `None` if they did not agree at the end.
pub(crate) fn converged_at(samples: &[Sample]) -> Option<f64> {
    samples
        .iter()
        .rev()
        .take_while(|x| x.agreeing == x.running)
        .last()
        .map(|x| x.t_s)
}

/// The earliest sample time from which every running node's ring agreed until the end, if
/// the rings really agree at the end (`agree_at_end`, checked with real checksums).
pub(crate) fn ring_agreement_since(samples: &[Sample], agree_at_end: bool) -> Option<f64> {
    if !agree_at_end {
        return None;
    }
    samples
        .iter()
        .rev()
        .take_while(|x| x.ring_agree)
        .last()
        .map(|x| x.t_s)
}
