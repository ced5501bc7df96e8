//! Runs a [`Scenario`] on a [`Cluster`] and gathers what it measured.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use swimring::placement::{PlacementConfig, build_ring, eligible};
use swimring::proto::Config;
use swimring::ring::Ring;

use crate::cluster::{Bug, Cluster, NodeId};
use crate::metrics::Spread;
use crate::progress::{Progress, Snapshot, wall_now};
use crate::scenario::{Action, Scenario, Start, Target};
use crate::summary::{
    Predicted, RunResult, Summary, Totals, converged_at, peak_rss_mib, ring_agreement_since,
    ring_checksum_of, tasks_moved_ratio,
};

const SECOND: f64 = 1e9;

fn ns(s: f64) -> u64 {
    (s * SECOND).round() as u64
}

/// Options that are not part of the scenario.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Show progress on stderr: a bar on a terminal, a line every few seconds otherwise.
    pub progress: bool,
    /// Keep every node's events in memory (tests).
    pub record_events: bool,
    /// A deliberately injected bug.
    pub bug: Bug,
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
        if matches!(
            a,
            Action::Crash { .. } | Action::HostDown { .. } | Action::Leave { .. }
        ) && self.ring_before.is_none()
        {
            self.ring_before = self.ring_of_a_view();
        }
        match a {
            Action::Crash { .. }
            | Action::HostDown { .. }
            | Action::Restart { .. }
            | Action::Pause { .. }
            | Action::Resume { .. }
            | Action::Leave { .. }
            | Action::UserEvent { .. }
            | Action::Join { .. } => self.act_on_nodes(at, a),
            Action::Churn {
                until_s,
                rate_per_s,
                downtime_s,
                leave_fraction,
                ..
            } => {
                self.mark("churn");
                self.schedule_churn(at, until_s, rate_per_s, downtime_s, leave_fraction);
            }
            Action::HealAll { .. } => {
                self.mark("heal-all");
                self.heal_all();
            }
            _ => self.act_on_network(a),
        }
    }

    /// Actions that stop, start or move nodes.
    fn act_on_nodes(&mut self, at: u64, a: Action) {
        match a {
            Action::Crash { target, .. } => {
                self.mark("crash");
                for n in self.pick(&target, self.running()) {
                    self.c.crash(n);
                }
            }
            Action::HostDown { target, .. } => {
                self.mark("host-down");
                for n in self.pick(&target, self.running()) {
                    self.c.host_down(n);
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
            Action::UserEvent {
                target,
                payload_bytes,
                ..
            } => {
                self.mark("user-event");
                for n in self.pick(&target, self.running()) {
                    // A refused event (too large) is in the summary as never delivered.
                    let _ = self.c.broadcast(n, "scenario", vec![b'e'; payload_bytes]);
                }
            }
            _ => unreachable!("act routes only node actions here"),
        }
    }

    /// Actions that change the network between nodes.
    fn act_on_network(&mut self, a: Action) {
        match a {
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
            _ => unreachable!("act routes only network actions here"),
        }
    }

    /// Churn as a Poisson process: one crash (or leave) at exponentially spaced times from
    /// `at` to `until_s`, each restarted after `downtime_s`.
    fn schedule_churn(
        &mut self,
        at: u64,
        until_s: f64,
        rate_per_s: f64,
        downtime_s: f64,
        leave_fraction: f64,
    ) {
        if rate_per_s <= 0.0 {
            return;
        }
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

    /// Every fault cleared: the network made whole, slow and paused nodes restored, churn
    /// stopped.
    fn heal_all(&mut self) {
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
        self.steps
            .retain(|_, s| !matches!(s, Step::ChurnTick { .. }));
    }

    /// A runner for `s` with its nodes created and their start scheduled (cold joins in the
    /// join window, or the whole view handed to every node).
    fn new(s: &Scenario, cfg: &Config, opts: &RunOptions) -> Runner {
        let mut c = Cluster::new(s.seed);
        c.set_recording(opts.record_events);
        c.set_sample_interval(Duration::from_secs_f64(s.sample_ms / 1e3));
        c.set_checking(s.check_invariants);
        c.set_bug(opts.bug);
        if s.tasks > 0 {
            c.enable_tasks(s.tasks);
        }
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
        r
    }

    /// Runs virtual time to the scenario's end, applying its steps as they fall due and
    /// checking `settle_within_s` once after the last fault. Returns whether it settled
    /// (`None` if the scenario asks nothing).
    fn drive(&mut self, s: &Scenario, progress: &mut Progress) -> Option<bool> {
        let end = ns(s.duration_s);
        let settle_from = ns(s.last_fault_s());
        let mut settled: Option<bool> = None;
        let chunk = ns(1.0);
        loop {
            let next_step = self
                .steps
                .first_key_value()
                .map(|(k, _)| k.0)
                .unwrap_or(u64::MAX);
            let now = self.c.elapsed().as_nanos() as u64;
            let target = next_step.min(end).min(now + chunk);
            self.c.run_to(target);
            progress.update(&self.snapshot(target));
            if target >= end {
                return settled;
            }
            while let Some(entry) = self.steps.first_entry() {
                if entry.key().0 > target {
                    break;
                }
                let step = entry.remove();
                self.apply(target, step);
            }
            if s.settle_within_s > 0.0 && settled.is_none() && target >= settle_from {
                let limit = Duration::from_secs_f64(s.settle_within_s);
                settled = Some(self.c.run_until(limit, |c| c.metrics.all_agree()));
            }
        }
    }

    /// What a progress report shows once virtual time has reached `target`.
    fn snapshot(&self, target: u64) -> Snapshot {
        Snapshot {
            virtual_s: target as f64 / SECOND,
            events: self.c.processed(),
            live: self.c.metrics.live(),
            agree: self
                .c
                .metrics
                .samples
                .last()
                .map_or(0.0, |x| x.agree_fraction),
        }
    }

    /// The core's counters summed over every node and every retired run, with the network's
    /// and the kernels'.
    fn totals(&self) -> Totals {
        let mut totals = self.retired.clone();
        for i in 0..self.c.len() {
            totals.add(&self.c.node(i).stats());
        }
        let es = self.c.engine_stats();
        totals.dropped = es.dropped;
        totals.duplicated = es.duplicated;
        totals.kernel = es.kernel;
        totals
    }

    /// Whether every running node builds the same ring at the end, and how many tasks moved
    /// from the ring before the first departure to the ring now.
    fn ring_outcome(&self) -> (bool, Option<f64>) {
        let placement = PlacementConfig::default();
        let checksums: Vec<u64> = self
            .running()
            .into_iter()
            .map(|i| ring_checksum_of(&placement, self.c.node(i).members()))
            .collect();
        let agree = checksums.windows(2).all(|w| w[0] == w[1]);
        let moved = match (&self.ring_before, &self.ring_of_a_view()) {
            (Some(b), Some(a)) => tasks_moved_ratio(b, a),
            _ => None,
        };
        (agree, moved)
    }

    /// The run's summary, once virtual time has reached the end.
    fn summary(&self, s: &Scenario, walls: (f64, f64), settled: Option<bool>) -> Summary {
        let (wall, setup_wall) = walls;
        let m = &self.c.metrics;
        let samples = &m.samples;
        let (rings_agree_at_end, moved_ratio) = self.ring_outcome();
        let converged_at_s = converged_at(samples);
        let last_fault_s = s.last_fault_s();
        let detections = m.detections();
        let (failures, undetected) = m.failure_counts();
        let (fp, fp_events) = m.false_positives();
        let node_s = (m.node_nanos as f64 / SECOND).max(1e-9);
        let es = self.c.engine_stats();
        Summary {
            scenario: s.name.clone(),
            nodes: s.nodes,
            seed: s.seed,
            preset: s.preset.clone(),
            sim_seconds: s.duration_s,
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
            ring_agreement_s: ring_agreement_since(samples, rings_agree_at_end),
            tasks_moved_ratio: moved_ratio,
            trace_hash: format!("{:016x}", m.trace_hash()),
            trace_events: m.trace_events,
            totals: self.totals(),
            predicted: Predicted::for_config(&self.cfg, s.nodes),
            violations: self.c.violations().to_vec(),
            settled,
            peak_rss_mib: peak_rss_mib(),
            user_events: self.c.user_event_reach(),
            handoff: (self.c.tasks()).map(|t| {
                t.ledger
                    .summary(ns(s.duration_s), |id| self.c.node(id).epoch())
            }),
        }
    }
}

/// Wall seconds since `t0`.
fn secs_since(t0: Instant) -> f64 {
    wall_now().duration_since(t0).as_secs_f64()
}

/// Runs `s` to its end.
pub fn run(s: &Scenario, opts: &RunOptions) -> Result<RunResult, String> {
    s.validate()?;
    let cfg = s.config()?;
    let mut progress = Progress::start(opts.progress, s.nodes, s.duration_s);
    let wall0 = wall_now();
    let mut r = Runner::new(s, &cfg, opts);
    let setup_wall = secs_since(wall0);
    for a in &s.actions {
        r.push(ns(a.at_s()), Step::Act(a.clone()));
    }
    let settled = r.drive(s, &mut progress);
    progress.finish();
    r.c.metrics.finish(ns(s.duration_s));
    let summary = r.summary(s, (secs_since(wall0), setup_wall), settled);
    Ok(RunResult {
        samples: r.c.metrics.samples.clone(),
        detections: r.c.metrics.detections(),
        summary,
        marks: r.marks,
    })
}
