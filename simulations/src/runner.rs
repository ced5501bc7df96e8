//! Runs a [`Scenario`] on a [`Cluster`] and gathers what it measured.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use swimring::placement::{PlacementConfig, build_ring, eligible};
use swimring::proto::{Config, Member, Stats, bounds};
use swimring::ring::Ring;

use crate::cluster::{Bug, Cluster, NodeId};
use crate::metrics::{Sample, Spread};
use crate::scenario::{Action, Scenario, Start, Target};

const SECOND: f64 = 1e9;

fn ns(s: f64) -> u64 {
    (s * SECOND).round() as u64
}

/// Options that are not part of the scenario.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Print a progress line on stderr every few wall seconds.
    pub progress: bool,
    /// Keep every node's events in memory (tests).
    pub record_events: bool,
    /// A deliberately injected bug.
    pub bug: Bug,
}

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
/// own, under the names [`Stats::counters`] gives them, and the simulated network's.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Totals {
    /// Each of the core's counters ([`Stats::counters`]), summed.
    pub protocol: BTreeMap<&'static str, u64>,
    /// Datagrams the network lost.
    pub dropped: u64,
    /// Datagrams the network duplicated.
    pub duplicated: u64,
}

impl Totals {
    fn add(&mut self, s: &Stats) {
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

enum Step {
    Bootstrap(NodeId),
    Act(Action),
    Resume(Vec<NodeId>),
    Restart(Vec<NodeId>),
    ChurnTick {
        downtime_s: f64,
        leave_fraction: f64,
    },
}

struct Runner {
    c: Cluster,
    cfg: Config,
    rng: ChaCha8Rng,
    steps: BTreeMap<(u64, u64), Step>,
    seq: u64,
    retired: Totals,
    marks: Vec<(f64, String)>,
    /// A node's ring just before the first crash or leave: the baseline for task movement.
    ring_before: Option<Ring>,
}

/// Synthetic task keys over which movement is measured.
const MOVEMENT_TASKS: usize = 10_000;

/// Tasks that changed owner between two rings, divided by the minimum that had to: those
/// whose owner is no longer in the later ring. `None` if nothing had to move.
fn tasks_moved_ratio(before: &Ring, after: &Ring) -> Option<f64> {
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
fn ring_checksum_of<'a>(cfg: &PlacementConfig, members: impl Iterator<Item = &'a Member>) -> u64 {
    Ring::checksum_of(eligible(cfg, members).iter().map(|(n, w)| (n.as_str(), *w)))
}

impl Runner {
    fn push(&mut self, at: u64, step: Step) {
        self.steps.insert((at, self.seq), step);
        self.seq += 1;
    }

    fn running(&self) -> Vec<NodeId> {
        (0..self.c.len())
            .filter(|&i| self.c.is_running(i))
            .collect()
    }

    fn pick(&mut self, t: &Target, eligible: Vec<NodeId>) -> Vec<NodeId> {
        if let Some(v) = &t.nodes {
            return v.iter().copied().filter(|n| eligible.contains(n)).collect();
        }
        let mut pool: Vec<NodeId> = eligible.into_iter().filter(|&n| n != 0).collect();
        let k = match (t.count, t.fraction) {
            (Some(k), _) => k,
            (_, Some(f)) => (f * self.c.len() as f64).ceil() as usize,
            _ => 0,
        }
        .min(pool.len());
        for i in 0..k {
            let j = self.rng.random_range(i..pool.len());
            pool.swap(i, j);
        }
        pool.truncate(k);
        pool.sort_unstable();
        pool
    }

    fn seed_for(&mut self, me: NodeId) -> Vec<NodeId> {
        let run: Vec<NodeId> = self.running().into_iter().filter(|&n| n != me).collect();
        if run.is_empty() {
            return Vec::new();
        }
        vec![run[self.rng.random_range(0..run.len())]]
    }

    fn retire(&mut self, n: NodeId) {
        let s = self.c.node(n).stats();
        self.retired.add(&s);
    }

    fn restart(&mut self, n: NodeId) {
        self.retire(n);
        let seeds = self.seed_for(n);
        self.c.restart(n, &seeds);
    }

    fn mark(&mut self, what: &str) {
        let t = self.c.elapsed().as_secs_f64();
        let code = xxhash_rust::xxh3::xxh3_64(what.as_bytes()) & 0xFFFF;
        let now = self.c.elapsed().as_nanos() as u64;
        self.c.metrics.action(now, 100 + code, 0);
        if self.marks.len() < 64 {
            self.marks.push((t, what.to_owned()));
        }
    }

    fn apply(&mut self, at: u64, step: Step) {
        match step {
            Step::Bootstrap(n) => self.c.join(n, &[0]),
            Step::Resume(v) => v.into_iter().for_each(|n| self.c.resume(n)),
            Step::Restart(v) => {
                for n in v {
                    if !self.c.is_running(n) && !self.c.is_paused(n) {
                        self.restart(n);
                    }
                }
            }
            Step::ChurnTick {
                downtime_s,
                leave_fraction,
            } => {
                let v = self.pick(&Target::count(1), self.running());
                if let Some(&n) = v.first() {
                    if leave_fraction > 0.0 && self.rng.random_bool(leave_fraction) {
                        self.c.leave(n);
                        self.c.crash(n);
                    } else {
                        self.c.crash(n);
                    }
                    self.push(at + ns(downtime_s), Step::Restart(vec![n]));
                }
            }
            Step::Act(a) => self.act(at, a),
        }
    }

    /// The ring a running node would place work on now (its own view), if any node runs.
    fn ring_of_a_view(&self) -> Option<Ring> {
        let i = (0..self.c.len()).find(|&i| self.c.is_running(i))?;
        let cfg = PlacementConfig::default();
        Some(build_ring(&cfg, &eligible(&cfg, self.c.node(i).members())))
    }

    fn act(&mut self, at: u64, a: Action) {
        if matches!(a, Action::Crash { .. } | Action::Leave { .. }) && self.ring_before.is_none() {
            self.ring_before = self.ring_of_a_view();
        }
        match a {
            Action::Crash { target, .. } => {
                self.mark("crash");
                for n in self.pick(&target, self.running()) {
                    self.c.crash(n);
                }
            }
            Action::Restart { target, .. } => {
                self.mark("restart");
                let stopped = (0..self.c.len())
                    .filter(|&i| !self.c.is_running(i) && !self.c.is_paused(i))
                    .collect();
                for n in self.pick(&target, stopped) {
                    self.restart(n);
                }
            }
            Action::Pause { target, for_s, .. } => {
                self.mark("pause");
                let v = self.pick(&target, self.running());
                for &n in &v {
                    self.c.pause(n);
                }
                if let Some(f) = for_s {
                    self.push(at + ns(f), Step::Resume(v));
                }
            }
            Action::Resume { target, .. } => {
                self.mark("resume");
                let paused = (0..self.c.len()).filter(|&i| self.c.is_paused(i)).collect();
                for n in self.pick(&target, paused) {
                    self.c.resume(n);
                }
            }
            Action::Leave { target, .. } => {
                self.mark("leave");
                for n in self.pick(&target, self.running()) {
                    self.c.leave(n);
                }
            }
            Action::Join { count, .. } => {
                self.mark("join");
                for _ in 0..count {
                    let id = self.c.len();
                    let n = self.c.add_node(&format!("n{id}"), self.cfg.clone());
                    let seeds = self.seed_for(n);
                    self.c.join(n, &seeds);
                }
            }
            Action::Partition {
                fraction, one_way, ..
            } => {
                self.mark("partition");
                let all: Vec<NodeId> = (0..self.c.len()).collect();
                let k = ((fraction * all.len() as f64).round() as usize).clamp(1, all.len());
                let side = self.pick(&Target::count(k), all);
                if one_way {
                    self.c.net.partition_one_way(&side);
                } else {
                    self.c.net.partition(&side);
                }
            }
            Action::Isolate { target, .. } => {
                self.mark("isolate");
                let all = (0..self.c.len()).collect();
                for n in self.pick(&target, all) {
                    self.c.net.isolate(n);
                }
            }
            Action::Heal { .. } => {
                self.mark("heal");
                self.c.net.heal();
            }
            Action::Network {
                loss,
                burst,
                clear_burst,
                duplicate,
                reorder,
                latency,
                ..
            } => {
                self.mark("network");
                let net = &mut self.c.net;
                if let Some(v) = loss {
                    net.loss = v;
                }
                if clear_burst {
                    net.burst = None;
                }
                if let Some(b) = burst {
                    net.burst = Some(b);
                }
                if let Some(v) = duplicate {
                    net.duplicate = v;
                }
                if let Some(v) = reorder {
                    net.reorder = v;
                }
                if let Some(l) = latency {
                    net.latency = l;
                }
            }
            Action::Slow {
                target, extra_ms, ..
            } => {
                self.mark("slow");
                let all = (0..self.c.len()).collect();
                for n in self.pick(&target, all) {
                    self.c
                        .net
                        .set_slow(n, Duration::from_secs_f64(extra_ms / 1e3));
                }
            }
            Action::Churn {
                until_s,
                rate_per_s,
                downtime_s,
                leave_fraction,
                ..
            } => {
                self.mark("churn");
                if rate_per_s > 0.0 {
                    let mut t = at as f64 / SECOND;
                    loop {
                        let u: f64 = 1.0 - self.rng.random::<f64>();
                        t += -u.ln() / rate_per_s;
                        if t > until_s {
                            break;
                        }
                        self.push(
                            ns(t),
                            Step::ChurnTick {
                                downtime_s,
                                leave_fraction,
                            },
                        );
                    }
                }
            }
            Action::HealAll { .. } => {
                self.mark("heal-all");
                let net = &mut self.c.net;
                net.heal();
                net.loss = 0.0;
                net.burst = None;
                net.duplicate = 0.0;
                net.reorder = 0.0;
                for n in 0..self.c.len() {
                    self.c.net.set_slow(n, Duration::ZERO);
                    self.c.resume(n);
                }
                // Churn ends too.
                self.steps
                    .retain(|_, s| !matches!(s, Step::ChurnTick { .. }));
            }
        }
    }
}

/// Runs `s` to its end.
pub fn run(s: &Scenario, opts: &RunOptions) -> Result<RunResult, String> {
    s.validate()?;
    let cfg = s.config()?;
    #[allow(clippy::disallowed_methods)] // wall time only for wall_seconds and progress
    let wall0 = Instant::now();
    let mut c = Cluster::new(s.seed);
    c.set_recording(opts.record_events);
    c.set_sample_interval(Duration::from_secs_f64(s.sample_ms / 1e3));
    c.set_checking(s.check_invariants);
    c.set_bug(opts.bug);
    c.net.latency = s.network.latency.clone();
    c.net.loss = s.network.loss;
    c.net.burst = s.network.burst.clone();
    c.net.duplicate = s.network.duplicate;
    c.net.reorder = s.network.reorder;
    c.net.reorder_delay = Duration::from_secs_f64(s.network.reorder_delay_ms / 1e3);
    let mut r = Runner {
        c,
        cfg: cfg.clone(),
        rng: ChaCha8Rng::seed_from_u64(s.seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xA5A5),
        steps: BTreeMap::new(),
        seq: 0,
        retired: Totals::default(),
        marks: Vec::new(),
        ring_before: None,
    };
    for i in 0..s.nodes {
        r.c.add_node(&format!("n{i}"), cfg.clone());
    }
    match s.start {
        // Every node but the first joins it at a random time in the join window.
        Start::Cold => {
            let mut joins: Vec<(u64, NodeId)> = (1..s.nodes)
                .map(|i| (ns(r.rng.random::<f64>() * s.join_window_s), i))
                .collect();
            joins.sort_unstable();
            for (at, i) in joins {
                r.push(at, Step::Bootstrap(i));
            }
        }
        Start::Converged => r.c.introduce_all(),
    }
    let setup_wall = {
        #[allow(clippy::disallowed_methods)] // setup_wall_seconds only
        let w = Instant::now();
        w.duration_since(wall0).as_secs_f64()
    };
    for a in &s.actions {
        r.push(ns(a.at_s()), Step::Act(a.clone()));
    }
    let end = ns(s.duration_s);
    let settle_from = ns(s.last_fault_s());
    let mut settled: Option<bool> = None;
    #[allow(clippy::disallowed_methods)] // progress lines only
    let mut last_print = Instant::now();
    let chunk = ns(1.0);
    loop {
        let next_step = r
            .steps
            .first_key_value()
            .map(|(k, _)| k.0)
            .unwrap_or(u64::MAX);
        let now = r.c.elapsed().as_nanos() as u64;
        let target = next_step.min(end).min(now + chunk);
        r.c.run_to(target);
        if opts.progress {
            #[allow(clippy::disallowed_methods)] // progress lines only
            let wall = Instant::now();
            if wall.duration_since(last_print) >= Duration::from_secs(3) {
                last_print = wall;
                let el = wall.duration_since(wall0).as_secs_f64();
                eprintln!(
                    "[sim] {:.1}/{:.0} s virtual, {:.1} s wall, {} events ({:.0}/s), {} live, agree {:.3}",
                    target as f64 / SECOND,
                    s.duration_s,
                    el,
                    r.c.processed(),
                    r.c.processed() as f64 / el.max(1e-9),
                    r.c.metrics.live(),
                    r.c.metrics.samples.last().map_or(0.0, |x| x.agree_fraction),
                );
            }
        }
        if target >= end {
            break;
        }
        while let Some(entry) = r.steps.first_entry() {
            if entry.key().0 > target {
                break;
            }
            let step = entry.remove();
            r.apply(target, step);
        }
        if s.settle_within_s > 0.0 && settled.is_none() && target >= settle_from {
            let limit = Duration::from_secs_f64(s.settle_within_s);
            let ok = r.c.run_until(limit, |c| c.metrics.all_agree());
            settled = Some(ok);
        }
    }
    let end_s = s.duration_s;
    r.c.metrics.finish(end);
    let wall = {
        #[allow(clippy::disallowed_methods)] // wall_seconds only
        let w = Instant::now();
        w.duration_since(wall0).as_secs_f64()
    };
    let running: Vec<NodeId> = (0..r.c.len()).filter(|&i| r.c.is_running(i)).collect();
    let placement = PlacementConfig::default();
    let checksums: Vec<u64> = running
        .iter()
        .map(|&i| ring_checksum_of(&placement, r.c.node(i).members()))
        .collect();
    let rings_agree_at_end = checksums.windows(2).all(|w| w[0] == w[1]);
    let ring_after = r.ring_of_a_view();
    let moved_ratio = match (&r.ring_before, &ring_after) {
        (Some(b), Some(a)) => tasks_moved_ratio(b, a),
        _ => None,
    };
    let m = &r.c.metrics;
    let samples = m.samples.clone();
    let ring_agreement_s = rings_agree_at_end
        .then(|| {
            samples
                .iter()
                .rev()
                .take_while(|x| x.ring_agree)
                .last()
                .map(|x| x.t_s)
        })
        .flatten();
    let converged_at_s = {
        let mut t = None;
        for x in samples.iter().rev() {
            if x.agreeing == x.running {
                t = Some(x.t_s);
            } else {
                break;
            }
        }
        t
    };
    let last_fault_s = s.last_fault_s();
    let detections = m.detections();
    let (failures, undetected) = m.failure_counts();
    let (fp, fp_events) = m.false_positives();
    let node_s = (m.node_nanos as f64 / SECOND).max(1e-9);
    let mut totals = r.retired.clone();
    for i in 0..r.c.len() {
        totals.add(&r.c.node(i).stats());
    }
    let es = r.c.engine_stats();
    totals.dropped = es.dropped;
    totals.duplicated = es.duplicated;
    let summary = Summary {
        scenario: s.name.clone(),
        nodes: s.nodes,
        seed: s.seed,
        preset: s.preset.clone(),
        sim_seconds: end_s,
        wall_seconds: wall,
        setup_wall_seconds: setup_wall,
        events: es.processed,
        events_per_wall_s: es.processed as f64 / wall.max(1e-9),
        heap_pops: es.popped,
        converged_at_s,
        last_fault_s,
        converged_after_last_fault_s: converged_at_s.map(|t| (t - last_fault_s).max(0.0)),
        final_agree_fraction: samples.last().map_or(1.0, |x| x.agree_fraction),
        detection_first_s: Spread::of(&detections.0),
        detection_all_s: Spread::of(&detections.1),
        failures,
        failures_not_fully_detected: undetected,
        false_positives: fp,
        false_positive_events: fp_events,
        dead_events: m.dead_events(),
        bytes_per_node_per_s: m.bytes as f64 / node_s,
        stream_bytes_per_node_per_s: m.stream_bytes as f64 / node_s,
        packets_per_node_per_s: m.packets as f64 / node_s,
        ring_agreement_s,
        tasks_moved_ratio: moved_ratio,
        trace_hash: format!("{:016x}", m.trace_hash()),
        trace_events: m.trace_events,
        totals,
        predicted: Predicted::for_config(&cfg, s.nodes),
        violations: r.c.violations().to_vec(),
        settled,
        peak_rss_mib: peak_rss_mib(),
    };
    Ok(RunResult {
        summary,
        samples,
        detections,
        marks: r.marks,
    })
}
