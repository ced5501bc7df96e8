//! The built-in scenarios by name, and the sweep's random scenario derived from a seed.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::network::{Burst, Latency};
use crate::scenario::{Action, Scenario, Target};

/// Seconds a built-in gives the mesh to converge before its first fault.
const WARM_S: f64 = 60.0;

/// Built-in scenario names, with one line each.
pub const BUILTINS: &[(&str, &str)] = &[
    (
        "cold-start",
        "every node joins through one seed; watch views converge",
    ),
    (
        "kill-one",
        "one node's process crashes once the mesh has converged (its host refuses)",
    ),
    (
        "kill-10pct",
        "a tenth of the nodes' processes crash at once (their hosts refuse)",
    ),
    (
        "host-down",
        "one node's host goes down once the mesh has converged (silence, no refusal)",
    ),
    (
        "partition-heal",
        "the mesh splits in half for 60 s, then heals",
    ),
    (
        "loss-sweep",
        "datagram loss steps 5%, 10%, 20%, 30%, then back to 0",
    ),
    (
        "slow-node",
        "one node's packets take 300 ms longer each way, with 5% loss",
    ),
    (
        "churn",
        "nodes crash and restart at 0.2/s (scaled with n) for 3 minutes",
    ),
    (
        "pause-one",
        "one node stalls for 1 s (--pause-s sets the stall; lan tolerates ~6.5 s)",
    ),
    ("isolate-one", "one node is cut off for 60 s, then heals"),
    (
        "one-way",
        "packets from a fifth of the nodes to the rest are lost for 60 s",
    ),
    (
        "bursty-loss",
        "Gilbert–Elliott bursty loss (mean ~10%) for 2 minutes",
    ),
    (
        "dup-reorder",
        "20% duplication and 20% reordering with heavy-tailed latency",
    ),
    ("join-leave", "new nodes join and others leave gracefully"),
    (
        "tune",
        "loss, a slow node and three crashes: the tuning sweep's workload",
    ),
    (
        "sweep",
        "a random fault schedule derived from the seed, then heal (see --sweep)",
    ),
];

/// A network change that sets the loss rate to `loss` at `at_s` and leaves the rest.
fn net_loss(at_s: f64, loss: f64) -> Action {
    Action::Network {
        at_s,
        loss: Some(loss),
        burst: None,
        clear_burst: false,
        duplicate: None,
        reorder: None,
        latency: None,
    }
}

impl Scenario {
    /// A built-in scenario for `nodes` nodes and `seed`.
    pub fn builtin(name: &str, nodes: usize, seed: u64) -> Option<Scenario> {
        if name == "sweep" {
            return Some(Scenario::random(nodes, seed));
        }
        let mut s = Scenario::base(name, nodes, seed, 180.0);
        let known = node_faults(&mut s) || network_faults(&mut s) || degraded(&mut s);
        known.then_some(s)
    }

    /// The sweep's scenario for `seed`: a small mesh on the `local` preset, a randomized
    /// network and a random fault schedule in 5–30 s, then everything heals at 35 s and all
    /// running nodes must agree within 60 s. `nodes` of 0 lets the seed choose (5–24).
    pub fn random(nodes: usize, seed: u64) -> Scenario {
        let mut r = ChaCha8Rng::seed_from_u64(seed ^ 0x5357_4545_5020_5345);
        let n = if nodes == 0 {
            r.random_range(5..25)
        } else {
            nodes
        };
        let mut s = Scenario::base("sweep", n, seed, 0.0);
        s.preset = "local".into();
        s.join_window_s = 1.0;
        s.check_invariants = true;
        random_network(&mut s, &mut r);
        let faults = r.random_range(1..6);
        for _ in 0..faults {
            let at_s = (r.random_range(5.0..30.0_f64) * 10.0).round() / 10.0;
            let fault = random_fault(&mut r, at_s);
            s.actions.push(fault);
        }
        s.actions.push(Action::HealAll { at_s: 35.0 });
        s.settle_within_s = 60.0;
        s.duration_s = 35.0 + s.settle_within_s;
        s
    }
}

/// The built-ins whose faults stop, pause, add or remove nodes; false if `s.name` is not one.
fn node_faults(s: &mut Scenario) -> bool {
    use Action::*;
    let nodes = s.nodes;
    match s.name.as_str() {
        "cold-start" => s.duration_s = 60.0,
        "kill-one" => {
            s.actions = vec![Crash {
                at_s: WARM_S,
                target: Target::count(1),
            }]
        }
        "host-down" => {
            s.actions = vec![HostDown {
                at_s: WARM_S,
                target: Target::count(1),
            }]
        }
        "kill-10pct" => {
            s.actions = vec![Crash {
                at_s: WARM_S,
                target: Target::fraction(0.1),
            }]
        }
        "churn" => {
            s.duration_s = 300.0;
            s.actions = vec![Churn {
                at_s: WARM_S,
                until_s: WARM_S + 180.0,
                rate_per_s: 0.2 * (nodes as f64 / 100.0).max(0.1),
                downtime_s: 20.0,
                leave_fraction: 0.0,
            }];
        }
        "pause-one" => {
            s.duration_s = 120.0;
            s.actions = vec![Pause {
                at_s: WARM_S,
                target: Target::count(1),
                for_s: Some(1.0),
            }];
        }
        "join-leave" => {
            s.duration_s = 150.0;
            let k = (nodes / 10).max(1);
            s.actions = vec![
                Join {
                    at_s: WARM_S,
                    count: k,
                },
                Leave {
                    at_s: WARM_S + 30.0,
                    target: Target::count(k),
                },
            ];
        }
        _ => return false,
    }
    true
}

/// The built-ins whose faults cut or lose packets; false if `s.name` is not one.
fn network_faults(s: &mut Scenario) -> bool {
    use Action::*;
    let heal = Heal {
        at_s: WARM_S + 60.0,
    };
    match s.name.as_str() {
        "partition-heal" => {
            s.duration_s = 240.0;
            s.actions = vec![
                Partition {
                    at_s: WARM_S,
                    fraction: 0.5,
                    one_way: false,
                },
                heal,
            ];
        }
        "loss-sweep" => {
            s.duration_s = 360.0;
            s.actions = [0.05, 0.10, 0.20, 0.30, 0.0]
                .iter()
                .enumerate()
                .map(|(i, &l)| net_loss(WARM_S + 60.0 * i as f64, l))
                .collect();
        }
        "isolate-one" => {
            s.actions = vec![
                Isolate {
                    at_s: WARM_S,
                    target: Target::count(1),
                },
                heal,
            ];
        }
        "one-way" => {
            s.actions = vec![
                Partition {
                    at_s: WARM_S,
                    fraction: 0.2,
                    one_way: true,
                },
                heal,
            ];
        }
        "bursty-loss" => {
            s.actions = vec![
                Network {
                    at_s: WARM_S,
                    loss: None,
                    burst: Some(Burst {
                        p_good_to_bad: 0.02,
                        p_bad_to_good: 0.2,
                        loss_good: 0.0,
                        loss_bad: 1.0,
                    }),
                    clear_burst: false,
                    duplicate: None,
                    reorder: None,
                    latency: None,
                },
                HealAll {
                    at_s: WARM_S + 120.0,
                },
            ];
        }
        _ => return false,
    }
    true
}

/// The built-ins where nodes stay up but slow, or the network misbehaves around crashes;
/// false if `s.name` is not one.
fn degraded(s: &mut Scenario) -> bool {
    use Action::*;
    let one = Target::count(1);
    match s.name.as_str() {
        "slow-node" => {
            s.actions = vec![
                net_loss(WARM_S, 0.05),
                Slow {
                    at_s: WARM_S,
                    target: one,
                    extra_ms: 300.0,
                },
            ];
        }
        "dup-reorder" => {
            s.network.latency = Latency::Pareto {
                scale_ms: 1.0,
                shape: 1.5,
                cap_ms: 300.0,
            };
            s.network.duplicate = 0.2;
            s.network.reorder = 0.2;
            s.duration_s = 120.0;
            s.actions = vec![Crash {
                at_s: WARM_S,
                target: one,
            }];
        }
        "tune" => {
            s.actions = vec![
                net_loss(30.0, 0.05),
                Slow {
                    at_s: 30.0,
                    target: one.clone(),
                    extra_ms: 250.0,
                },
            ];
            s.actions.extend([60.0, 90.0, 120.0].map(|at_s| Crash {
                at_s,
                target: one.clone(),
            }));
        }
        _ => return false,
    }
    true
}

/// The sweep's network: a random latency model, and loss, bursts, duplication and
/// reordering each present or not.
fn random_network(s: &mut Scenario, r: &mut ChaCha8Rng) {
    s.network.latency = match r.random_range(0..4) {
        0 => Latency::Fixed {
            ms: r.random_range(0.1..5.0),
        },
        1 => Latency::Uniform {
            min_ms: 0.2,
            max_ms: r.random_range(1.0..20.0),
        },
        2 => Latency::Pareto {
            scale_ms: 0.5,
            shape: r.random_range(1.1..3.0),
            cap_ms: 150.0,
        },
        _ => Latency::LogNormal {
            median_ms: 1.0,
            sigma: r.random_range(0.1..1.0),
            cap_ms: 150.0,
        },
    };
    s.network.loss = if r.random_bool(0.5) {
        r.random_range(0.0..0.15)
    } else {
        0.0
    };
    if r.random_bool(0.2) {
        s.network.burst = Some(Burst {
            p_good_to_bad: r.random_range(0.005..0.05),
            p_bad_to_good: r.random_range(0.1..0.5),
            loss_good: 0.0,
            loss_bad: r.random_range(0.5..1.0),
        });
    }
    s.network.duplicate = if r.random_bool(0.3) {
        r.random_range(0.0..0.2)
    } else {
        0.0
    };
    s.network.reorder = if r.random_bool(0.3) {
        r.random_range(0.0..0.3)
    } else {
        0.0
    };
}

/// One random fault of the sweep at `at_s`, on one node where it targets nodes.
fn random_fault(r: &mut ChaCha8Rng, at_s: f64) -> Action {
    use Action::*;
    let one = Target::count(1);
    match r.random_range(0..9) {
        0 => Crash { at_s, target: one },
        1 => Pause {
            at_s,
            target: one,
            for_s: Some(r.random_range(0.5..8.0)),
        },
        2 => Partition {
            at_s,
            fraction: r.random_range(0.1..0.5),
            one_way: r.random_bool(0.3),
        },
        3 => Isolate { at_s, target: one },
        4 => Leave { at_s, target: one },
        5 => Restart { at_s, target: one },
        6 => Join {
            at_s,
            count: r.random_range(1..4),
        },
        7 => Slow {
            at_s,
            target: one,
            extra_ms: r.random_range(20.0..400.0),
        },
        _ => Churn {
            at_s,
            until_s: at_s + r.random_range(1.0..5.0),
            rate_per_s: r.random_range(0.2..2.0),
            downtime_s: r.random_range(0.5..5.0),
            leave_fraction: 0.2,
        },
    }
}
