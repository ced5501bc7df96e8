//! Every fault the simulator models shows its effect in the outputs, runs are deterministic,
//! and the sweep catches a deliberately injected bug. Small meshes, so the suite stays fast in
//! debug builds; every assertion compares against a fault-free baseline or a hard fact.

use swimring_sim::{
    Action, Bug, Burst, Latency, RunOptions, RunResult, Scenario, Start, Target, output, run, sweep,
};

const N: usize = 16;

fn base(name: &str, duration_s: f64) -> Scenario {
    let mut s = Scenario::builtin("cold-start", N, 7).unwrap();
    s.name = name.into();
    s.preset = "local".into();
    s.join_window_s = 1.0;
    s.duration_s = duration_s;
    s
}

fn go(s: &Scenario) -> RunResult {
    run(s, &RunOptions::default()).expect("valid scenario")
}

fn net(at_s: f64) -> Action {
    Action::Network {
        at_s,
        loss: None,
        burst: None,
        clear_burst: false,
        duplicate: None,
        reorder: None,
        latency: None,
    }
}

#[test]
fn same_seed_same_trace_hash_and_different_seed_differs() {
    let mut s = Scenario::builtin("kill-one", N, 3).unwrap();
    s.preset = "local".into();
    s.duration_s = 40.0;
    s.network.loss = 0.05;
    let a = go(&s);
    let b = go(&s);
    assert_eq!(a.summary.trace_hash, b.summary.trace_hash);
    assert_eq!(a.summary.events, b.summary.events);
    s.seed = 4;
    assert_ne!(go(&s).summary.trace_hash, a.summary.trace_hash);
}

#[test]
fn a_converged_start_agrees_from_the_start_and_still_detects_a_crash() {
    let mut s = Scenario::builtin("kill-one", N, 5).unwrap();
    s.preset = "local".into();
    s.start = Start::Converged;
    s.duration_s = 80.0;
    let r = go(&s);
    let before_crash: Vec<_> = r.samples.iter().take_while(|x| x.t_s < 60.0).collect();
    assert!(!before_crash.is_empty());
    assert!(
        before_crash.iter().all(|x| x.agree_fraction == 1.0),
        "every node agrees from the first sample"
    );
    assert!(r.summary.detection_all_s.is_some_and(|d| d.count == 1));
    assert_eq!(r.summary.false_positives, 0);
    assert!(r.summary.converged_at_s.is_some());
}

#[test]
fn cold_start_converges_through_one_seed_and_writes_outputs() {
    let r = go(&base("cold", 20.0));
    let t = r.summary.converged_at_s.expect("converged");
    assert!(t < 10.0, "converged at {t}");
    assert_eq!(r.summary.false_positives, 0);
    assert!(r.summary.bytes_per_node_per_s > 0.0 && r.summary.packets_per_node_per_s > 0.0);
    // Rings agree once views do; nobody left, so no task had to move.
    assert!(r.summary.ring_agreement_s.is_some_and(|x| x <= t));
    assert_eq!(r.summary.tasks_moved_ratio, None);
    let dir = std::env::temp_dir().join(format!("swimring-sim-test-{}", std::process::id()));
    output::write_run(&dir, &r, true).unwrap();
    for f in [
        "summary.json",
        "timeseries.csv",
        "detections.csv",
        "convergence.svg",
        "detection_cdf.svg",
    ] {
        let text = std::fs::read_to_string(dir.join(f)).unwrap();
        assert!(text.lines().count() >= 1, "{f} is empty");
    }
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("summary.json")).unwrap()).unwrap();
    for k in [
        "nodes",
        "seed",
        "sim_seconds",
        "wall_seconds",
        "converged_at_s",
        "detection_first_s",
        "detection_all_s",
        "false_positives",
        "bytes_per_node_per_s",
        "packets_per_node_per_s",
        "ring_agreement_s",
        "tasks_moved_ratio",
        "trace_hash",
    ] {
        assert!(json.get(k).is_some(), "summary.json lacks {k}");
    }
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn crash_is_detected_by_all_and_reconverges() {
    let mut s = base("crash", 40.0);
    s.actions = vec![Action::Crash {
        at_s: 10.0,
        target: Target::count(2),
    }];
    // Crash evidence ends it within a few probe timeouts: sample often enough to see the
    // views disagree before they converge again.
    s.sample_ms = 10.0;
    let r = go(&s);
    let sm = &r.summary;
    assert_eq!(sm.failures, 2);
    assert_eq!(sm.failures_not_fully_detected, 0);
    let first = sm.detection_first_s.unwrap();
    let all = sm.detection_all_s.unwrap();
    assert!(first.p50 <= all.p50 && all.max <= sm.predicted.first_detection_slow_s + 10.0);
    assert!(sm.converged_at_s.is_some_and(|t| t > 10.0));
    assert_eq!(sm.false_positives, 0);
    // Rings agree again once views do, and only the dead nodes' tasks moved.
    let ring = sm.ring_agreement_s.expect("rings agree at the end");
    assert!(
        ring > 10.0 && ring <= sm.converged_at_s.unwrap() + 1e-9,
        "{ring} {sm:?}"
    );
    assert_eq!(sm.tasks_moved_ratio, Some(1.0));
}

#[test]
fn a_lasting_partition_leaves_rings_in_disagreement() {
    let mut s = base("split", 60.0);
    s.actions = vec![Action::Partition {
        at_s: 10.0,
        fraction: 0.5,
        one_way: false,
    }];
    let r = go(&s);
    assert_eq!(r.summary.ring_agreement_s, None, "two halves, two rings");
    assert!(r.samples.last().is_some_and(|x| !x.ring_agree));
}

#[test]
fn loss_raises_indirect_probes_and_suspicions() {
    let clean = go(&base("clean", 60.0));
    let mut s = base("lossy", 60.0);
    s.network.loss = 0.3;
    let lossy = go(&s);
    let (c, l) = (&clean.summary.totals, &lossy.summary.totals);
    assert!(l.dropped > 0 && c.dropped == 0);
    assert!(
        l.get("indirect_probes_sent") > 10 * c.get("indirect_probes_sent").max(1),
        "{l:?} vs {c:?}"
    );
    assert!(
        l.get("streams_out") > c.get("streams_out"),
        "stream fallback probes"
    );
    assert!(l.get("suspicions_raised") >= c.get("suspicions_raised"));
}

#[test]
fn bursty_loss_drops_packets_in_runs() {
    let mut s = base("burst", 60.0);
    s.network.burst = Some(Burst {
        p_good_to_bad: 0.05,
        p_bad_to_good: 0.1,
        loss_good: 0.0,
        loss_bad: 1.0,
    });
    let r = go(&s);
    assert!(r.summary.totals.dropped > 0);
    assert!(r.summary.totals.get("indirect_probes_sent") > 0);
    assert!(r.summary.converged_at_s.is_some() || r.summary.final_agree_fraction > 0.5);
}

#[test]
fn partition_yields_deaths_then_heals() {
    let mut s = base("split", 90.0);
    s.actions = vec![
        Action::Partition {
            at_s: 10.0,
            fraction: 0.5,
            one_way: false,
        },
        Action::Heal { at_s: 40.0 },
    ];
    let r = go(&s);
    assert!(r.summary.false_positives >= N / 2, "deaths across the cut");
    let mid = r.samples.iter().find(|x| x.t_s >= 39.0).unwrap();
    assert_eq!(mid.agreeing, 0, "nobody agrees with the truth while split");
    let t = r.summary.converged_at_s.expect("healed");
    assert!(t > 40.0);
}

#[test]
fn one_way_partition_and_isolation_yield_deaths_then_heal() {
    for a in [
        Action::Partition {
            at_s: 10.0,
            fraction: 0.25,
            one_way: true,
        },
        Action::Isolate {
            at_s: 10.0,
            target: Target::count(1),
        },
    ] {
        let mut s = base("cut", 90.0);
        s.actions = vec![a.clone(), Action::Heal { at_s: 40.0 }];
        let r = go(&s);
        assert!(r.summary.false_positives > 0, "{a:?} killed nobody");
        assert!(
            r.summary.converged_at_s.is_some_and(|t| t > 40.0),
            "{a:?} did not heal"
        );
    }
}

#[test]
fn short_pause_yields_suspicion_then_refutation() {
    let mut s = base("pause", 30.0);
    s.actions = vec![Action::Pause {
        at_s: 10.0,
        target: Target::count(1),
        for_s: Some(0.8),
    }];
    let r = go(&s);
    let sm = &r.summary;
    assert!(sm.totals.get("suspicions_raised") > 0, "{:?}", sm.totals);
    assert!(sm.totals.get("refutations") > 0);
    assert_eq!(sm.false_positives, 0);
    assert!(r.samples.iter().any(|x| x.suspect_views > 0));
    assert!(sm.converged_at_s.is_some());
}

#[test]
fn long_pause_is_a_false_positive_then_rejoins() {
    let mut s = base("long-pause", 60.0);
    s.actions = vec![Action::Pause {
        at_s: 10.0,
        target: Target::count(1),
        for_s: Some(20.0),
    }];
    let r = go(&s);
    assert!(
        r.summary.false_positives == 1,
        "{}",
        r.summary.false_positives
    );
    assert!(r.summary.converged_at_s.is_some_and(|t| t > 30.0));
}

#[test]
fn duplication_reordering_and_heavy_tails_do_not_break_convergence() {
    let mut s = base("dup", 40.0);
    s.network.duplicate = 0.3;
    s.network.reorder = 0.3;
    s.network.latency = Latency::Pareto {
        scale_ms: 0.5,
        shape: 1.2,
        cap_ms: 200.0,
    };
    s.actions = vec![Action::Crash {
        at_s: 10.0,
        target: Target::count(1),
    }];
    let r = go(&s);
    assert!(r.summary.totals.duplicated > 0);
    assert!(r.summary.converged_at_s.is_some());
    assert_eq!(r.summary.false_positives, 0);
    assert_eq!(r.summary.failures_not_fully_detected, 0);
    let mut s2 = s.clone();
    s2.network.latency = Latency::LogNormal {
        median_ms: 1.0,
        sigma: 1.0,
        cap_ms: 200.0,
    };
    assert!(go(&s2).summary.converged_at_s.is_some());
}

#[test]
fn slow_node_is_suspected_but_not_killed() {
    let mut s = base("slow", 60.0);
    s.actions = vec![Action::Slow {
        at_s: 10.0,
        target: Target::count(1),
        extra_ms: 80.0,
    }];
    let r = go(&s);
    let clean = go(&base("clean", 60.0));
    assert!(
        r.summary.totals.get("indirect_probes_sent")
            > clean.summary.totals.get("indirect_probes_sent")
    );
    assert_eq!(r.summary.false_positives, 0);
}

#[test]
fn restart_join_leave_and_churn_reconverge() {
    let mut s = base("nodes", 80.0);
    s.actions = vec![
        Action::Crash {
            at_s: 5.0,
            target: Target::nodes(vec![3]),
        },
        Action::Restart {
            at_s: 8.0,
            target: Target::nodes(vec![3]),
        },
        Action::Join {
            at_s: 10.0,
            count: 2,
        },
        Action::Leave {
            at_s: 12.0,
            target: Target::count(1),
        },
        Action::Churn {
            at_s: 15.0,
            until_s: 30.0,
            rate_per_s: 0.5,
            downtime_s: 3.0,
            leave_fraction: 0.3,
        },
    ];
    let r = go(&s);
    assert!(r.summary.failures >= 2, "the crash and churn failures");
    assert!(r.summary.converged_at_s.is_some_and(|t| t > 15.0));
    assert!(r.samples.last().unwrap().live as usize >= N);
}

#[test]
fn network_action_changes_loss_mid_run() {
    let mut s = base("mid", 40.0);
    let mut a = net(20.0);
    if let Action::Network { loss, .. } = &mut a {
        *loss = Some(0.5);
    }
    s.actions = vec![a];
    let r = go(&s);
    assert!(r.summary.totals.dropped > 0);
    let before = r.samples.iter().find(|x| x.t_s >= 19.9).unwrap().packets;
    assert!(before > 0);
}

#[test]
fn sweep_passes_on_the_real_protocol() {
    let failures = sweep::sweep(1, 6, 0, Bug::None, |_, _| {}).unwrap();
    assert!(failures.is_empty(), "{failures:?}");
}

#[test]
fn sweep_catches_an_injected_refutation_bug_and_names_the_command() {
    let failures = sweep::sweep(1, 6, 0, Bug::DropOwnRefutation, |_, _| {}).unwrap();
    assert!(!failures.is_empty(), "the sweep missed the bug");
    let f = &failures[0];
    assert!(
        f.command
            .contains(&format!("--scenario sweep --seed {}", f.seed))
    );
    assert!(f.command.contains("--bug drop-own-refutation"));
    // The command replays exactly that failure.
    let s = Scenario::load("sweep", 0, f.seed).unwrap();
    let opts = RunOptions {
        bug: Bug::DropOwnRefutation,
        ..RunOptions::default()
    };
    assert!(sweep::verdict(&run(&s, &opts).unwrap()).is_some());
}

#[test]
fn toml_scenarios_parse_and_bad_ones_fail_with_one_line() {
    let text = r#"
name = "custom"
nodes = 8
duration_s = 20
preset = "local"
[network]
loss = 0.05
latency = { kind = "log-normal", median_ms = 1.0, sigma = 0.5, cap_ms = 100.0 }
[[actions]]
do = "crash"
at_s = 5
target = { count = 1 }
[[actions]]
do = "partition"
at_s = 8
fraction = 0.25
one_way = true
[[actions]]
do = "heal"
at_s = 12
"#;
    let s = Scenario::from_toml(text).unwrap();
    assert_eq!(s.actions.len(), 3);
    assert!(go(&s).summary.failures == 1);
    for bad in [
        "name = \"x\"\nduration_s = 10\nnodes = \"a\"\n",
        "name = \"x\"\nduration_s = 10\nbogus = 1\n",
        "name = \"x\"\nduration_s = -1\n",
        "name = \"x\"\nduration_s = 10\n[network]\nloss = 2.0\n",
        "name = \"x\"\nduration_s = 10\n[[actions]]\ndo = \"crash\"\nat_s = 1\ntarget = {}\n",
        "name = \"x\"\nduration_s = 10\ntimings = { probe_interval_ms = 100, probe_timeout_ms = 200 }\n",
    ] {
        let e = Scenario::from_toml(bad).unwrap_err();
        assert!(!e.contains('\n') && !e.is_empty(), "{e}");
    }
    assert!(Scenario::load("no-such", 4, 1).is_err());
    for (name, _) in swimring_sim::BUILTINS {
        Scenario::load(name, 10, 1).unwrap().validate().unwrap();
    }
}

#[test]
fn task_mode_is_off_by_default_and_measures_a_crash_deterministically() {
    let mut s = Scenario::builtin("kill-one", N, 3).unwrap();
    s.preset = "local".into();
    s.duration_s = 75.0;
    let off = go(&s);
    assert!(
        off.summary.handoff.is_none(),
        "no task mode, no handoff report"
    );
    s.tasks = 64;
    let on = go(&s);
    let again = go(&s);
    assert_eq!(on.summary.trace_hash, again.summary.trace_hash);
    let h = on.summary.handoff.expect("task mode reports handoffs");
    assert!(
        h.measured_from_s.is_some_and(|t| t < 60.0),
        "settled before the crash"
    );
    assert!(h.handoffs > 0, "the crashed node's tasks passed on");
    let gaps = h
        .gap_s
        .expect("a crash leaves its tasks unowned until it is declared");
    let detect = swimring::proto::bounds(&s.config().unwrap(), N).detect;
    let bound = detect + swimring_sim::PLACEMENT_DELAY;
    assert!(gaps.max <= bound.as_secs_f64(), "{gaps:?} beyond {bound:?}");
    assert!(h.overlap_s.is_none() && h.open_at_end == 0);
    assert_eq!((h.low_claims, h.fenced_out_at_end), (0, 0));
}
