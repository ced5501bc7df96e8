//! Sweep mode, in the style of FoundationDB's simulation and TigerBeetle's VOPR: many seeds,
//! each a random network and fault schedule ([`Scenario::random`]), invariants checked after
//! every event, then everything heals and every running node's view must agree with the
//! truth within a bound. A failure names the exact command that replays it.

use crate::cluster::Bug;
use crate::runner::{RunOptions, run};
use crate::scenario::Scenario;
use crate::summary::RunResult;

/// One seed that failed.
#[derive(Debug, Clone)]
pub struct Failure {
    /// The seed.
    pub seed: u64,
    /// What went wrong.
    pub reason: String,
    /// The command that reproduces it.
    pub command: String,
}

/// The command line that replays the sweep run for `seed`.
pub fn command(seed: u64, nodes: usize, bug: Bug) -> String {
    let mut c = format!("cargo run --release -p swimring-sim -- --scenario sweep --seed {seed}");
    if nodes != 0 {
        c += &format!(" --nodes {nodes}");
    }
    if bug == Bug::DropOwnRefutation {
        c += " --bug drop-own-refutation";
    }
    c
}

/// Why a checked run failed, if it did.
pub fn verdict(r: &RunResult) -> Option<String> {
    if let Some(v) = r.summary.violations.first() {
        return Some(format!("invariant violated: {v}"));
    }
    if r.summary.settled == Some(false) {
        return Some(format!(
            "views did not agree within the bound after healing (final agreement {:.3})",
            r.summary.final_agree_fraction
        ));
    }
    None
}

/// Runs `count` seeds from `first_seed`. `nodes` of 0 lets each seed choose its mesh size.
/// Calls `report` after each seed with (seed, failure if any).
pub fn sweep(
    first_seed: u64,
    count: u64,
    nodes: usize,
    bug: Bug,
    mut report: impl FnMut(u64, Option<&Failure>),
) -> Result<Vec<Failure>, String> {
    let opts = RunOptions {
        bug,
        ..RunOptions::default()
    };
    let mut failures = Vec::new();
    for seed in first_seed..first_seed + count {
        let s = Scenario::random(nodes, seed);
        let r = run(&s, &opts)?;
        let failure = verdict(&r).map(|reason| Failure {
            seed,
            reason,
            command: command(seed, nodes, bug),
        });
        report(seed, failure.as_ref());
        failures.extend(failure);
    }
    Ok(failures)
}
