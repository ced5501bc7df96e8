//! The protocol core in a deterministic in-memory mesh: convergence, failure detection,
//! Lifeguard's tolerance of a stalled node, graceful leave, and loss without false deaths.
//! Every bound below is derived from the configuration, with room to spare.

use std::time::Duration;

use swimring::proto::{Config, Event, bounds};
use swimring::wire::State;
use swimring_sim::{Cluster, NodeId};

mod mesh_util;

use mesh_util::{converged, detection_bound, dissemination, mesh};

fn all_agree(c: &Cluster, ids: &[NodeId], target: NodeId, state: State) -> bool {
    ids.iter()
        .filter(|&&o| o != target)
        .all(|&o| c.state(o, target) == Some(state))
}

#[test]
fn ten_nodes_converge_through_one_seed() {
    let cfg = Config::lan();
    let (mut c, ids) = mesh(10, 1, &cfg);
    assert!(
        c.run_until(dissemination(&cfg) * 3, |c| converged(c, &ids)),
        "views did not converge"
    );
    for &o in &ids {
        assert_eq!(c.node(o).members().count(), 10);
        let joined = c
            .events(o)
            .iter()
            .filter(|e| matches!(e.event, Event::Joined(_)));
        assert_eq!(joined.count(), 9, "each node saw each other join once");
    }
}

#[test]
fn crashed_node_is_declared_dead_by_every_survivor() {
    let cfg = Config::lan();
    let (mut c, ids) = mesh(10, 2, &cfg);
    assert!(c.run_until(dissemination(&cfg) * 3, |c| converged(c, &ids)));
    c.crash(ids[4]);
    let survivors: Vec<NodeId> = ids.iter().copied().filter(|&i| i != ids[4]).collect();
    let bound = detection_bound(&cfg, 10);
    assert!(
        c.run_until(bound, |c| all_agree(c, &survivors, ids[4], State::Dead)),
        "not every survivor marked n4 dead within {bound:?}"
    );
    for &s in &survivors {
        for &t in &survivors {
            assert_eq!(
                c.state(s, t),
                Some(State::Alive),
                "no survivor lost another"
            );
        }
    }
}

#[test]
fn paused_node_that_returns_in_time_refutes_and_never_dies() {
    let cfg = Config::lan();
    let (mut c, ids) = mesh(10, 3, &cfg);
    assert!(c.run_until(dissemination(&cfg) * 3, |c| converged(c, &ids)));
    let victim = ids[7];
    // Stay paused until someone suspects it, then a while longer, but wake well before the
    // smallest suspicion timeout, so the suspicion is still open.
    let min = bounds(&cfg, 10).min_suspicion;
    c.pause(victim);
    assert!(
        c.run_until(detection_bound(&cfg, 10), |c| {
            ids.iter()
                .any(|&o| c.state(o, victim) == Some(State::Suspect))
        }),
        "nobody noticed the stalled node"
    );
    c.run_for(min / 2);
    c.resume(victim);
    assert!(c.run_until(dissemination(&cfg) * 2, |c| converged(c, &ids)));
    assert!(
        c.node(victim).stats().refutations > 0,
        "it refuted the suspicion"
    );
    c.run_for(min * cfg.suspicion_max_timeout_mult);
    for &o in &ids {
        let dead = c
            .events(o)
            .iter()
            .any(|e| matches!(&e.event, Event::Dead(m) if m.name == c.node(victim).local().name));
        assert!(!dead, "node {o} declared the paused node dead");
        assert_eq!(c.state(o, victim), Some(State::Alive));
    }
}

#[test]
fn node_that_leaves_is_left_everywhere() {
    let cfg = Config::lan();
    let (mut c, ids) = mesh(10, 4, &cfg);
    assert!(c.run_until(dissemination(&cfg) * 3, |c| converged(c, &ids)));
    c.leave(ids[2]);
    assert!(c.run_until(cfg.gossip_interval * 20, |c| {
        c.node(ids[2]).leave_disseminated()
    }));
    c.crash(ids[2]);
    let others: Vec<NodeId> = ids.iter().copied().filter(|&i| i != ids[2]).collect();
    assert!(
        c.run_until(dissemination(&cfg), |c| all_agree(
            c,
            &others,
            ids[2],
            State::Left
        )),
        "leave did not reach everyone"
    );
    // It stays left: nobody turns a graceful leave into a death later.
    c.run_for(detection_bound(&cfg, 10));
    assert!(all_agree(&c, &others, ids[2], State::Left));
}

#[test]
fn ten_percent_loss_for_ten_minutes_declares_no_live_node_dead() {
    let cfg = Config::lan();
    let (mut c, ids) = mesh(10, 5, &cfg);
    assert!(c.run_until(dissemination(&cfg) * 3, |c| converged(c, &ids)));
    c.net.loss = 0.10;
    c.run_for(Duration::from_secs(600));
    for &o in &ids {
        let deaths: Vec<_> = c
            .events(o)
            .iter()
            .filter(|e| matches!(e.event, Event::Dead(_)))
            .collect();
        assert!(deaths.is_empty(), "node {o} declared {deaths:?}");
    }
    c.net.loss = 0.0;
    assert!(c.run_until(dissemination(&cfg), |c| converged(c, &ids)));
}

#[test]
fn restarted_node_replaces_its_previous_run_at_once() {
    let cfg = Config::lan();
    let (mut c, ids) = mesh(5, 6, &cfg);
    assert!(c.run_until(dissemination(&cfg) * 3, |c| converged(c, &ids)));
    let old_run = c.node(ids[3]).local().run;
    c.crash(ids[3]);
    c.restart(ids[3], &[ids[0]]);
    let new_run = c.node(ids[3]).local().run;
    assert!(new_run > old_run);
    // Well before any suspicion could time out, everyone holds the new run as alive.
    assert!(c.run_until(dissemination(&cfg), |c| {
        ids.iter().all(|&o| {
            c.view(o, ids[3])
                .is_some_and(|m| m.run == new_run && m.state == State::Alive)
        })
    }));
    for &o in &ids[..3] {
        assert!(
            c.events(o)
                .iter()
                .any(|e| matches!(&e.event, Event::Restarted(m) if m.run == new_run)),
            "node {o} reported the restart"
        );
    }
}

#[test]
fn partition_heals_by_itself() {
    let cfg = Config::local();
    let (mut c, ids) = mesh(8, 7, &cfg);
    assert!(c.run_until(dissemination(&cfg) * 3, |c| converged(c, &ids)));
    let (a, b) = ids.split_at(3);
    c.net.partition(a);
    let bound = detection_bound(&cfg, 8);
    assert!(c.run_until(bound, |c| {
        a.iter()
            .all(|&x| b.iter().all(|&y| c.state(x, y) == Some(State::Dead)))
            && b.iter()
                .all(|&y| a.iter().all(|&x| c.state(y, x) == Some(State::Dead)))
    }));
    c.net.heal();
    // Reconnect attempts to dead members rejoin the halves: a few reconnect rounds.
    assert!(
        c.run_until(cfg.reconnect_interval * 20 + dissemination(&cfg), |c| {
            converged(c, &ids)
        })
    );
}

#[test]
fn same_seed_same_trace() {
    let run = |seed| {
        let cfg = Config::local();
        let (mut c, ids) = mesh(6, seed, &cfg);
        c.net.loss = 0.05;
        c.run_for(Duration::from_secs(5));
        c.crash(ids[1]);
        c.run_for(Duration::from_secs(20));
        let trace: Vec<String> = ids
            .iter()
            .flat_map(|&i| {
                c.events(i)
                    .iter()
                    .map(|e| format!("{:?}{:?}", e.at, e.event))
            })
            .collect();
        (trace, c.processed())
    };
    assert_eq!(run(9), run(9));
    assert_ne!(run(9), run(10));
}

#[test]
fn a_node_whose_seed_is_down_retries_it_until_it_answers() {
    let cfg = Config::lan();
    let mut c = Cluster::new(5);
    let seed = c.add_node("seed", cfg.clone());
    let late = c.add_node("late", cfg.clone());
    c.crash(seed);
    c.join(late, &[seed]);
    c.run_for(cfg.probe_interval * 3);
    assert!(c.node(late).needs_seeds(), "nobody answered yet");
    // The seed comes back knowing no one: only the newcomer's retries can bring them
    // together, within the longest backoff (the reconnect interval) and one exchange.
    c.restart(seed, &[]);
    let ids = [seed, late];
    assert!(
        c.run_until(cfg.reconnect_interval + dissemination(&cfg), |c| converged(
            c, &ids
        )),
        "the newcomer never retried its seed"
    );
    assert!(!c.node(late).needs_seeds());
}

/// Task mode hands out runs as the runtime does (start milliseconds, each above the last), so
/// two owners at one epoch are ordered by run; without it every node is run 1, as before.
#[test]
fn task_mode_gives_every_run_its_own_start_time() {
    let cfg = Config::local();
    let mut plain = Cluster::new(1);
    let a = plain.add_node("a", cfg.clone());
    plain.add_node("b", cfg.clone());
    assert_eq!(
        [plain.node(0).local().run, plain.node(1).local().run],
        [1, 1]
    );
    plain.crash(a);
    plain.restart(a, &[1]);
    assert_eq!(plain.node(a).local().run, 2, "restarts count up");

    let mut tasks = Cluster::new(1);
    tasks.enable_tasks(4);
    let a = tasks.add_node("a", cfg.clone());
    tasks.add_node("b", cfg);
    assert_eq!(
        [tasks.node(0).local().run, tasks.node(1).local().run],
        [1, 2]
    );
    tasks.run_for(Duration::from_secs(3));
    tasks.crash(a);
    tasks.restart(a, &[1]);
    assert_eq!(
        tasks.node(a).local().run,
        3_001,
        "its start millisecond, from 1"
    );
}
