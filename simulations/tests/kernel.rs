//! The engine's kernel model: a crashed process's host refuses its port (crash evidence), a
//! downed host says nothing, and a paused process's sockets hold what is sent to it until it
//! resumes. Every run is seeded; every wait is derived from the core's `bounds`.

use std::time::Duration;

use swimring::proto::{Config, Event, Stats, bounds};
use swimring::wire::State;
use swimring_sim::{
    ACCEPT_BACKLOG, Cluster, NodeId, RECV_BUFFER_DATAGRAMS, RunOptions, Scenario, run,
};

mod mesh_util;

use mesh_util::{converged, detection_bound, dissemination};

/// A converged mesh of `n` (see [`mesh_util::mesh`]).
fn mesh(n: usize, seed: u64, cfg: &Config) -> (Cluster, Vec<NodeId>) {
    let (mut c, ids) = mesh_util::mesh(n, seed, cfg);
    assert!(
        c.run_until(dissemination(cfg) * 3, |c| converged(c, &ids)),
        "the mesh did not converge"
    );
    (c, ids)
}

fn others(ids: &[NodeId], victim: NodeId) -> Vec<NodeId> {
    ids.iter().copied().filter(|&i| i != victim).collect()
}

fn dead_everywhere(c: &Cluster, observers: &[NodeId], victim: NodeId) -> bool {
    observers
        .iter()
        .all(|&o| c.state(o, victim) == Some(State::Dead))
}

/// One of the core's counters summed over `nodes`.
fn sum(c: &Cluster, nodes: &[NodeId], counter: impl Fn(&Stats) -> u64) -> u64 {
    nodes.iter().map(|&i| counter(&c.node(i).stats())).sum()
}

/// Every dead declaration about `victim`, by anyone, with its virtual time.
fn deaths_of(c: &Cluster, ids: &[NodeId], victim: NodeId) -> Vec<Duration> {
    let name = c.node(victim).local().name.clone();
    ids.iter()
        .flat_map(|&o| c.events(o))
        .filter(|e| matches!(&e.event, Event::Dead(m) if m.name == name))
        .map(|e| e.at)
        .collect()
}

const N: usize = 10;

#[test]
fn a_crashed_process_is_dead_on_its_hosts_refusals_within_the_crash_bound() {
    let cfg = Config::lan();
    let (mut c, ids) = mesh(N, 21, &cfg);
    let victim = ids[6];
    let survivors = others(&ids, victim);
    c.crash(victim);
    let bound = bounds(&cfg, N).crash_detect;
    assert!(
        c.run_until(bound, |c| dead_everywhere(c, &survivors, victim)),
        "not every survivor marked the crashed node dead within the crash bound {bound:?}"
    );
    let evidence = sum(&c, &survivors, |s| s.deaths_on_evidence);
    assert!(evidence >= 1, "no death on evidence");
    assert!(
        sum(&c, &survivors, |s| s.refusals_heard) >= 2,
        "two vantage points"
    );
    let k = c.engine_stats().kernel;
    assert!(k.refusals > 0 && k.reaches_delivered > 0, "{k:?}");
    assert!(
        survivors.iter().all(|&s| survivors
            .iter()
            .all(|&t| c.state(s, t) == Some(State::Alive))),
        "no survivor lost another"
    );
}

#[test]
fn without_crash_evidence_a_crash_dies_by_suspicion_alone() {
    let mut cfg = Config::lan();
    cfg.crash_evidence = false;
    let (mut c, ids) = mesh(N, 21, &cfg);
    let victim = ids[6];
    let survivors = others(&ids, victim);
    let crashed_at = c.elapsed();
    c.crash(victim);
    let bound = detection_bound(&cfg, N);
    assert!(
        c.run_until(bound, |c| dead_everywhere(c, &survivors, victim)),
        "not every survivor marked the crashed node dead within {bound:?}"
    );
    // The host still refused; the core, told to, paid no attention.
    assert!(c.engine_stats().kernel.refusals > 0);
    assert_eq!(sum(&c, &survivors, |s| s.refusals_heard), 0);
    assert_eq!(sum(&c, &survivors, |s| s.deaths_on_evidence), 0);
    // Silence alone cannot kill faster than a suspicion's minimum.
    let first = deaths_of(&c, &survivors, victim).into_iter().min().unwrap();
    let min = bounds(&cfg, N).min_suspicion;
    assert!(
        first - crashed_at >= min,
        "declared {:?} after the crash, under the minimum suspicion {min:?}",
        first - crashed_at
    );
}

#[test]
fn a_downed_host_gives_no_evidence_and_dies_by_suspicion() {
    let cfg = Config::lan();
    let (mut c, ids) = mesh(N, 22, &cfg);
    let victim = ids[3];
    let survivors = others(&ids, victim);
    let down_at = c.elapsed();
    c.host_down(victim);
    let bound = detection_bound(&cfg, N);
    assert!(
        c.run_until(bound, |c| dead_everywhere(c, &survivors, victim)),
        "not every survivor marked the downed host dead within {bound:?}"
    );
    let k = c.engine_stats().kernel;
    assert_eq!(k.refusals, 0, "a downed host refuses nothing");
    assert_eq!(sum(&c, &survivors, |s| s.refusals_heard), 0);
    assert_eq!(sum(&c, &survivors, |s| s.deaths_on_evidence), 0);
    assert_eq!(
        sum(&c, &survivors, |s| s.stalls_seen),
        0,
        "nor completes a handshake"
    );
    let first = deaths_of(&c, &survivors, victim).into_iter().min().unwrap();
    assert!(first - down_at >= bounds(&cfg, N).min_suspicion);
}

/// Pauses node 5 of an 8-node lan mesh for `pause`, then lets the mesh settle for as long as
/// any suspicion could still run; returns the cluster, the nodes and the victim.
fn pause_for(cfg: &Config, pause: Duration) -> (Cluster, Vec<NodeId>, NodeId) {
    let (mut c, ids) = mesh(8, 23, cfg);
    let victim = ids[5];
    c.pause(victim);
    c.run_for(pause);
    c.resume(victim);
    let b = bounds(cfg, 8);
    c.run_for(b.max_suspicion.max(cfg.stall_timeout) + dissemination(cfg));
    (c, ids, victim)
}

#[test]
fn a_five_second_pause_on_a_live_host_is_waited_out() {
    let cfg = Config::lan();
    let pause = Duration::from_secs(5);
    let b = bounds(&cfg, 8);
    assert!(
        pause < b.stall,
        "lan's stall bound {:?} covers 5 s",
        b.stall
    );
    assert!(
        pause > b.probe_failure + b.min_suspicion,
        "long enough to die of plain suspicion"
    );
    let (c, ids, victim) = pause_for(&cfg, pause);
    let observers = others(&ids, victim);
    assert!(
        sum(&c, &observers, |s| s.suspicions_raised) > 0,
        "the pause went unnoticed"
    );
    assert!(
        sum(&c, &observers, |s| s.stalls_seen) > 0,
        "no suspicion saw the live host"
    );
    assert_eq!(deaths_of(&c, &observers, victim), vec![], "a false death");
    assert!(c.node(victim).stats().refutations > 0, "it refuted");
    assert!(converged(&c, &ids), "the paused node is alive everywhere");
}

/// The control for the test above: the same pause without stall patience is a false death,
/// so the patience (a live host seen through a completed handshake) is what saved it.
#[test]
fn without_stall_patience_the_same_pause_is_a_false_death() {
    let mut cfg = Config::lan();
    cfg.stall_timeout = Duration::ZERO;
    let (c, ids, victim) = pause_for(&cfg, Duration::from_secs(5));
    assert!(!deaths_of(&c, &others(&ids, victim), victim).is_empty());
}

#[test]
fn a_paused_node_gets_its_datagrams_when_it_resumes() {
    let cfg = Config::lan();
    let (mut c, ids) = mesh(8, 24, &cfg);
    let victim = ids[2];
    c.pause(victim);
    let before = c.node(victim).stats().packets_in;
    c.run_for(Duration::from_secs(2));
    let k = c.engine_stats().kernel;
    assert!(k.queued_while_paused > 0, "nothing was sent to it");
    assert_eq!(k.delivered_after_pause, 0);
    assert_eq!(c.node(victim).stats().packets_in, before, "it sleeps");
    c.resume(victim);
    let k = c.engine_stats().kernel;
    assert!(k.delivered_after_pause > 0);
    assert_eq!(
        k.delivered_after_pause + k.dropped_stale_streams,
        k.queued_while_paused,
        "everything queued is handed over or, for a stale stream, dropped"
    );
    assert_eq!(k.dropped_buffer_full, 0, "2 s fits in the buffer");
    assert!(
        c.node(victim).stats().packets_in > before,
        "handed over at once"
    );
}

#[test]
fn a_long_pause_overflows_the_buffer_and_its_stale_streams_are_dropped() {
    let cfg = Config::lan();
    let (mut c, ids) = mesh(8, 24, &cfg);
    let victim = ids[2];
    c.pause(victim);
    c.run_for(Duration::from_secs(60));
    let k = c.engine_stats().kernel;
    assert!(k.dropped_buffer_full > 0, "60 s of traffic fit: {k:?}");
    assert!(
        k.queued_while_paused <= (RECV_BUFFER_DATAGRAMS + ACCEPT_BACKLOG) as u64,
        "the buffer held more than its bound: {k:?}"
    );
    c.resume(victim);
    let k = c.engine_stats().kernel;
    assert!(
        k.dropped_stale_streams > 0,
        "the suspicion's stream probes waited a minute: {k:?}"
    );
    assert_eq!(
        k.delivered_after_pause + k.dropped_stale_streams,
        k.queued_while_paused
    );
    // Declared dead meanwhile, it comes back.
    assert!(c.run_until(dissemination(&cfg) * 2, |c| converged(c, &ids)));
}

#[test]
fn host_down_and_the_evidence_timings_come_from_scenario_files() {
    let text = r#"
name = "kernel"
nodes = 8
duration_s = 40
preset = "local"
[timings]
crash_evidence = false
stall_timeout_ms = 4000
[[actions]]
do = "host-down"
at_s = 10
target = { count = 1 }
[[actions]]
do = "crash"
at_s = 12
target = { count = 1 }
"#;
    let s = Scenario::from_toml(text).unwrap();
    let cfg = s.config().unwrap();
    assert!(!cfg.crash_evidence);
    assert_eq!(cfg.stall_timeout, Duration::from_secs(4));
    let r = run(&s, &RunOptions::default()).unwrap();
    let sm = &r.summary;
    assert_eq!((sm.failures, sm.failures_not_fully_detected), (2, 0));
    assert!(sm.totals.kernel.refusals > 0, "the crashed host refused");
    assert_eq!(sm.totals.get("deaths_on_evidence"), 0, "evidence is off");
    let json = serde_json::to_value(sm).unwrap();
    assert!(
        json["totals"]["kernel"]["refusals"]
            .as_u64()
            .is_some_and(|n| n > 0)
    );
    for bad in [
        "name = \"x\"\nduration_s = 10\n[[actions]]\ndo = \"host-down\"\nat_s = 1\n",
        "name = \"x\"\nduration_s = 10\n[[actions]]\ndo = \"host-down\"\nat_s = 1\ntarget = {}\n",
        "name = \"x\"\nduration_s = 10\n[timings]\ncrash_evidense = true\n",
        "name = \"x\"\nduration_s = 10\n[timings]\nstall_timeout_ms = 7200000\n",
    ] {
        let e = Scenario::from_toml(bad).unwrap_err();
        assert!(!e.contains('\n') && !e.is_empty(), "{e}");
    }
    let b = Scenario::load("host-down", 8, 1).unwrap();
    assert_eq!(b.actions.len(), 1);
}
