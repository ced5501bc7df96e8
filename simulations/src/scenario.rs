//! Scenarios: a mesh, a network, and a timeline of faults. Built-in ones by name, new ones
//! from TOML files (see docs/SIMULATOR.md for the format).

use serde::{Deserialize, Serialize};
use swimring::proto::{Config, Preset, Timings};

use crate::builtins::BUILTINS;
use crate::network::{Burst, Latency};

/// Which nodes an action applies to. Give one of `nodes`, `count` or `fraction`; random
/// choices come from the run's seed and never pick slot 0 (the seed node) unless listed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Target {
    /// Explicit slots.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nodes: Option<Vec<usize>>,
    /// This many, chosen at random among the eligible nodes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<usize>,
    /// This fraction (rounded up) of the eligible nodes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fraction: Option<f64>,
}

impl Target {
    /// `count` nodes chosen at random.
    pub fn count(n: usize) -> Target {
        Target {
            count: Some(n),
            ..Target::default()
        }
    }
    /// A fraction of the nodes chosen at random.
    pub fn fraction(f: f64) -> Target {
        Target {
            fraction: Some(f),
            ..Target::default()
        }
    }
    /// These slots.
    pub fn nodes(v: Vec<usize>) -> Target {
        Target {
            nodes: Some(v),
            ..Target::default()
        }
    }
    fn validate(&self) -> Result<(), String> {
        let given = [
            self.nodes.is_some(),
            self.count.is_some(),
            self.fraction.is_some(),
        ];
        if given.iter().filter(|&&b| b).count() != 1 {
            return Err("a target needs exactly one of `nodes`, `count` or `fraction`".into());
        }
        if let Some(f) = self.fraction
            && !(0.0..=1.0).contains(&f)
        {
            return Err(format!("target fraction {f} is not in 0..=1"));
        }
        Ok(())
    }
}

/// One step of a scenario's timeline, at `at_s` seconds of virtual time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "do", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Action {
    /// The targets' processes stop at once (no goodbye); their hosts stay up and refuse
    /// what is sent to them (crash evidence).
    Crash {
        /// When, in seconds.
        at_s: f64,
        /// Which running nodes.
        target: Target,
    },
    /// The targets' hosts go down: like `crash`, but nothing answers, not even a refusal.
    HostDown {
        /// When, in seconds.
        at_s: f64,
        /// Which running nodes.
        target: Target,
    },
    /// Crashed or left targets come back under the same name as a new run and join a random
    /// running node.
    Restart {
        /// When.
        at_s: f64,
        /// Which stopped nodes.
        target: Target,
    },
    /// The targets stall (a stopped process). Their kernels keep their sockets: datagrams
    /// wait in a bounded buffer, stream handshakes complete, and both are served on resume.
    Pause {
        /// When.
        at_s: f64,
        /// Which running nodes.
        target: Target,
        /// Resume them after this long (otherwise use `resume`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        for_s: Option<f64>,
    },
    /// Paused targets carry on.
    Resume {
        /// When.
        at_s: f64,
        /// Which paused nodes.
        target: Target,
    },
    /// The targets leave gracefully.
    Leave {
        /// When.
        at_s: f64,
        /// Which running nodes.
        target: Target,
    },
    /// `count` new nodes start and join a random running node.
    Join {
        /// When.
        at_s: f64,
        /// How many.
        count: usize,
    },
    /// Splits the mesh: `fraction` of the nodes on one side. `one_way` drops only packets
    /// from that side to the rest.
    Partition {
        /// When.
        at_s: f64,
        /// Share of the nodes cut off (at least one node).
        fraction: f64,
        /// Whether only one direction is cut.
        #[serde(default)]
        one_way: bool,
    },
    /// The targets are cut off from everyone.
    Isolate {
        /// When.
        at_s: f64,
        /// Which nodes.
        target: Target,
    },
    /// Every partition, isolation and cut ends.
    Heal {
        /// When.
        at_s: f64,
    },
    /// Changes the network's loss, duplication, reordering or latency from now on.
    Network {
        /// When.
        at_s: f64,
        /// New uniform loss.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        loss: Option<f64>,
        /// New bursty loss (Gilbert–Elliott); `clear_burst` removes it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        burst: Option<Burst>,
        /// Removes bursty loss.
        #[serde(default)]
        clear_burst: bool,
        /// New duplication probability.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        duplicate: Option<f64>,
        /// New reordering probability.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reorder: Option<f64>,
        /// New latency distribution.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        latency: Option<Latency>,
    },
    /// Every packet to or from the targets takes `extra_ms` longer (0 to undo).
    Slow {
        /// When.
        at_s: f64,
        /// Which nodes.
        target: Target,
        /// Extra one-way delay, ms.
        extra_ms: f64,
    },
    /// From `at_s` to `until_s`, nodes fail at `rate_per_s` (a Poisson process over the
    /// mesh): each crashes (or, with `leave_fraction`, leaves) and restarts `downtime_s`
    /// later as a new run.
    Churn {
        /// Start.
        at_s: f64,
        /// End.
        until_s: f64,
        /// Failures per second, mesh-wide.
        rate_per_s: f64,
        /// Time a failed node stays down.
        downtime_s: f64,
        /// Share of failures that are graceful leaves.
        #[serde(default)]
        leave_fraction: f64,
    },
    /// The targets each broadcast a user event (named `scenario`, with `payload_bytes`
    /// bytes); the summary's `user_events` says how far and how fast each spread.
    UserEvent {
        /// When.
        at_s: f64,
        /// Which running nodes.
        target: Target,
        /// The payload's size.
        #[serde(default)]
        payload_bytes: usize,
    },
    /// Ends every fault: heals the network, clears loss, duplication, reordering and
    /// slowness, and resumes paused nodes (the sweep's "now settle" step).
    HealAll {
        /// When.
        at_s: f64,
    },
}

impl Action {
    /// When the action happens, in seconds.
    pub fn at_s(&self) -> f64 {
        match *self {
            Action::Crash { at_s, .. }
            | Action::HostDown { at_s, .. }
            | Action::Restart { at_s, .. }
            | Action::Pause { at_s, .. }
            | Action::Resume { at_s, .. }
            | Action::Leave { at_s, .. }
            | Action::Join { at_s, .. }
            | Action::Partition { at_s, .. }
            | Action::Isolate { at_s, .. }
            | Action::Heal { at_s }
            | Action::Network { at_s, .. }
            | Action::Slow { at_s, .. }
            | Action::Churn { at_s, .. }
            | Action::UserEvent { at_s, .. }
            | Action::HealAll { at_s } => at_s,
        }
    }

    fn validate(&self) -> Result<(), String> {
        let p = |name: &str, v: Option<f64>| match v {
            Some(x) if !(0.0..=1.0).contains(&x) => {
                Err(format!("{name} {x} is not a probability in 0..=1"))
            }
            _ => Ok(()),
        };
        if !(self.at_s().is_finite() && self.at_s() >= 0.0) {
            return Err(format!("action time {} must be >= 0", self.at_s()));
        }
        match self {
            Action::Crash { target, .. }
            | Action::HostDown { target, .. }
            | Action::Restart { target, .. }
            | Action::Resume { target, .. }
            | Action::Leave { target, .. }
            | Action::UserEvent { target, .. }
            | Action::Isolate { target, .. } => target.validate(),
            Action::Pause { target, for_s, .. } => {
                if for_s.is_some_and(|f| f <= 0.0 || !f.is_finite()) {
                    return Err("pause `for_s` must be > 0".into());
                }
                target.validate()
            }
            Action::Slow {
                target, extra_ms, ..
            } => {
                if !(*extra_ms >= 0.0 && extra_ms.is_finite()) {
                    return Err("slow `extra_ms` must be >= 0".into());
                }
                target.validate()
            }
            Action::Partition { fraction, .. } => {
                if !(0.0 < *fraction && *fraction < 1.0) {
                    return Err(format!("partition fraction {fraction} is not in (0, 1)"));
                }
                Ok(())
            }
            Action::Network {
                loss,
                burst,
                duplicate,
                reorder,
                latency,
                ..
            } => {
                p("loss", *loss)?;
                p("duplicate", *duplicate)?;
                p("reorder", *reorder)?;
                if let Some(b) = burst {
                    validate_burst(b)?;
                }
                if let Some(l) = latency {
                    l.validate()?;
                }
                Ok(())
            }
            Action::Churn {
                at_s,
                until_s,
                rate_per_s,
                downtime_s,
                leave_fraction,
            } => {
                if until_s < at_s || *rate_per_s < 0.0 || *downtime_s < 0.0 {
                    return Err(
                        "churn needs until_s >= at_s, rate_per_s >= 0, downtime_s >= 0".into(),
                    );
                }
                if *rate_per_s > 1000.0 {
                    return Err("churn rate_per_s is at most 1000".into());
                }
                p("leave_fraction", Some(*leave_fraction))
            }
            Action::Join { .. } | Action::Heal { .. } | Action::HealAll { .. } => Ok(()),
        }
    }
}

fn validate_burst(b: &Burst) -> Result<(), String> {
    for (n, v) in [
        ("p_good_to_bad", b.p_good_to_bad),
        ("p_bad_to_good", b.p_bad_to_good),
        ("loss_good", b.loss_good),
        ("loss_bad", b.loss_bad),
    ] {
        if !(0.0..=1.0).contains(&v) {
            return Err(format!("burst {n} {v} is not a probability in 0..=1"));
        }
    }
    if b.p_good_to_bad + b.p_bad_to_good <= 0.0 {
        return Err("burst needs p_good_to_bad + p_bad_to_good > 0".into());
    }
    Ok(())
}

/// The network a scenario starts with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetSpec {
    /// Delay distribution.
    #[serde(default)]
    pub latency: Latency,
    /// Uniform datagram loss.
    #[serde(default)]
    pub loss: f64,
    /// Bursty loss on top.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub burst: Option<Burst>,
    /// Duplication probability.
    #[serde(default)]
    pub duplicate: f64,
    /// Reordering probability.
    #[serde(default)]
    pub reorder: f64,
    /// Extra delay of a reordered datagram, ms.
    #[serde(default = "default_reorder_ms")]
    pub reorder_delay_ms: f64,
}

fn default_reorder_ms() -> f64 {
    20.0
}

impl Default for NetSpec {
    fn default() -> Self {
        NetSpec {
            latency: Latency::default(),
            loss: 0.0,
            burst: None,
            duplicate: 0.0,
            reorder: 0.0,
            reorder_delay_ms: default_reorder_ms(),
        }
    }
}

/// How the mesh comes together at time 0.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Start {
    /// Every node but slot 0 joins slot 0 (a full-state exchange) at a random time in the
    /// join window.
    #[default]
    Cold,
    /// Every node starts knowing every other as alive, with no message sent: the view a cold
    /// start converges to, for studying a converged mesh at sizes where replaying the cold
    /// start would dominate the run.
    Converged,
}

/// A complete scenario.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Name, for the summary.
    pub name: String,
    /// Nodes at the start.
    #[serde(default = "default_nodes")]
    pub nodes: usize,
    /// Seed of every random choice.
    #[serde(default = "default_seed")]
    pub seed: u64,
    /// Virtual seconds to simulate.
    pub duration_s: f64,
    /// Timing preset: lan, wan or local.
    #[serde(default = "default_preset")]
    pub preset: String,
    /// Overrides on top of the preset.
    #[serde(default)]
    pub timings: Timings,
    /// Starting network.
    #[serde(default)]
    pub network: NetSpec,
    /// How the mesh comes together.
    #[serde(default)]
    pub start: Start,
    /// With a cold start, nodes join slot 0 at uniformly random times in `0..join_window_s`.
    #[serde(default = "default_join_window")]
    pub join_window_s: f64,
    /// Metrics sampling grid, ms.
    #[serde(default = "default_sample_ms")]
    pub sample_ms: f64,
    /// Check invariants after every event (small meshes).
    #[serde(default)]
    pub check_invariants: bool,
    /// After the last action, the run must reach full agreement within this many seconds or
    /// it fails (0: no such requirement).
    #[serde(default)]
    pub settle_within_s: f64,
    /// Task mode: every node places this many task keys with the library's `LocalTasks`,
    /// and the summary reports handoff overlap and gap (0: off).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub tasks: usize,
    /// The timeline.
    #[serde(default)]
    pub actions: Vec<Action>,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// Most task keys a scenario may place: every node holds every key.
const MAX_TASKS: usize = 100_000;

fn default_nodes() -> usize {
    100
}
fn default_seed() -> u64 {
    1
}
fn default_preset() -> String {
    "lan".into()
}
fn default_join_window() -> f64 {
    5.0
}
fn default_sample_ms() -> f64 {
    100.0
}

impl Scenario {
    pub(crate) fn base(name: &str, nodes: usize, seed: u64, duration_s: f64) -> Scenario {
        Scenario {
            name: name.into(),
            nodes,
            seed,
            duration_s,
            preset: default_preset(),
            timings: Timings::default(),
            network: NetSpec::default(),
            start: Start::Cold,
            join_window_s: default_join_window(),
            sample_ms: default_sample_ms(),
            check_invariants: false,
            settle_within_s: 0.0,
            tasks: 0,
            actions: Vec::new(),
        }
    }

    /// Parses a TOML scenario. The error is one line, with the position.
    pub fn from_toml(text: &str) -> Result<Scenario, String> {
        let s: Scenario = toml::from_str(text).map_err(|e| {
            let msg = e.message().replace('\n', " ");
            match e.span() {
                Some(sp) => {
                    let line = text[..sp.start.min(text.len())].matches('\n').count() + 1;
                    format!("line {line}: {msg}")
                }
                None => msg,
            }
        })?;
        s.validate()?;
        Ok(s)
    }

    /// Loads a built-in by name or a TOML file by path.
    pub fn load(name_or_path: &str, nodes: usize, seed: u64) -> Result<Scenario, String> {
        if name_or_path.ends_with(".toml") || name_or_path.contains('/') {
            let text = std::fs::read_to_string(name_or_path)
                .map_err(|e| format!("cannot read scenario file {name_or_path}: {e}"))?;
            return Scenario::from_toml(&text).map_err(|e| format!("{name_or_path}: {e}"));
        }
        Scenario::builtin(name_or_path, nodes, seed).ok_or_else(|| {
            let names: Vec<&str> = BUILTINS.iter().map(|b| b.0).collect();
            format!(
                "unknown scenario {name_or_path:?} (built-ins: {}; or a path to a .toml file)",
                names.join(", ")
            )
        })
    }

    /// Checks every field; the error names the bad one.
    pub fn validate(&self) -> Result<(), String> {
        if self.nodes == 0 || self.nodes > 60_000 {
            return Err(format!("nodes {} is not in 1..=60000", self.nodes));
        }
        if !(self.duration_s.is_finite() && self.duration_s > 0.0) {
            return Err(format!("duration_s {} must be > 0", self.duration_s));
        }
        if !(self.sample_ms.is_finite() && self.sample_ms >= 1.0) {
            return Err(format!("sample_ms {} must be >= 1", self.sample_ms));
        }
        if self.tasks > MAX_TASKS {
            return Err(format!("tasks {} is not in 0..={MAX_TASKS}", self.tasks));
        }
        if !(self.join_window_s.is_finite() && self.join_window_s >= 0.0) {
            return Err("join_window_s must be >= 0".into());
        }
        for (n, v) in [
            ("network.loss", self.network.loss),
            ("network.duplicate", self.network.duplicate),
            ("network.reorder", self.network.reorder),
        ] {
            if !(0.0..=1.0).contains(&v) {
                return Err(format!("{n} {v} is not a probability in 0..=1"));
            }
        }
        if let Some(b) = &self.network.burst {
            validate_burst(b)?;
        }
        self.network.latency.validate()?;
        if !(self.network.reorder_delay_ms >= 0.0 && self.network.reorder_delay_ms.is_finite()) {
            return Err("network.reorder_delay_ms must be >= 0".into());
        }
        for a in &self.actions {
            a.validate()?;
        }
        self.config().map(|_| ())
    }

    /// The protocol configuration: the preset with the overrides.
    pub fn config(&self) -> Result<Config, String> {
        let preset: Preset = self.preset.parse().map_err(|e| format!("{e}"))?;
        let mut c = preset.config();
        self.timings.apply(&mut c);
        c.validate().map_err(|e| e.to_string())?;
        Ok(c)
    }

    /// Time of the last action that changes anything (churn counts until it ends).
    pub fn last_fault_s(&self) -> f64 {
        self.actions
            .iter()
            .map(|a| match a {
                Action::Churn {
                    until_s,
                    downtime_s,
                    ..
                } => until_s + downtime_s,
                Action::Pause {
                    at_s,
                    for_s: Some(f),
                    ..
                } => at_s + f,
                a => a.at_s(),
            })
            .fold(0.0, f64::max)
    }
}
