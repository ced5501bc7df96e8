//! User events in a deterministic in-memory mesh: an event broadcast by one node reaches
//! every node exactly once within the dissemination bound, with and without loss; a
//! restarted origin's new events are delivered although their numbers start again; events
//! from many origins all arrive; and a scenario's `user-event` action reports how far its
//! events spread, while a scenario without one reports nothing.

use std::collections::HashMap;
use std::time::Duration;

use swimring::proto::{Config, UserEvent, bounds};
use swimring_sim::{Action, Cluster, NodeId, RunOptions, Scenario, Target, run};

mod mesh_util;

use mesh_util::{converged, dissemination, mesh};

/// What identifies an event: origin, run and sequence number.
type Id = (String, u64, u64);

fn id(e: &UserEvent) -> Id {
    (e.from.clone(), e.run, e.seq)
}

/// How many times each node delivered the event `want`.
fn copies(c: &Cluster, ids: &[NodeId], want: &Id) -> Vec<usize> {
    ids.iter()
        .map(|&n| {
            c.user_events(n)
                .iter()
                .filter(|d| id(&d.event) == *want)
                .count()
        })
        .collect()
}

/// Every event delivered at most once, on every node.
fn no_duplicates(c: &Cluster, ids: &[NodeId]) {
    for &n in ids {
        let mut seen: HashMap<Id, usize> = HashMap::new();
        for d in c.user_events(n) {
            *seen.entry(id(&d.event)).or_default() += 1;
        }
        let twice: Vec<_> = seen.iter().filter(|&(_, &k)| k > 1).collect();
        assert!(twice.is_empty(), "node {n} delivered twice: {twice:?}");
    }
}

/// The bound an event must reach everyone in: twice the time a rumour takes to be sent its
/// full retransmit count (`Bounds::spread`), the protocol's own dissemination time.
fn spread_bound(cfg: &Config, n: usize) -> Duration {
    bounds(cfg, n).spread * 2
}

/// A converged mesh of `n` nodes on `cfg`, with `loss` on the network from then on.
fn converged_mesh(n: usize, seed: u64, cfg: &Config, loss: f64) -> (Cluster, Vec<NodeId>) {
    let (mut c, ids) = mesh(n, seed, cfg);
    assert!(
        c.run_until(dissemination(cfg) * 4, |c| converged(c, &ids)),
        "{n} nodes did not converge"
    );
    c.net.loss = loss;
    (c, ids)
}

fn every_node_delivers_once(loss: f64, seed: u64) {
    let cfg = Config::lan();
    let n = 50;
    let (mut c, ids) = converged_mesh(n, seed, &cfg, loss);
    let origin = ids[7];
    let seq = c.broadcast(origin, "deploy", "v42").expect("accepted");
    let me = c.node(origin).local();
    let want = (me.name.clone(), me.run, seq);
    assert_eq!(
        copies(&c, &ids, &want)[7],
        1,
        "the origin delivers its own at once"
    );
    let bound = spread_bound(&cfg, n);
    assert!(
        c.run_until(bound, |c| copies(c, &ids, &want).iter().all(|&k| k == 1)),
        "not every node delivered the event within {bound:?} at {loss} loss: {:?}",
        copies(&c, &ids, &want)
    );
    let got = &c.user_events(ids[30])[0].event;
    assert_eq!(
        (got.name.as_str(), &got.payload[..]),
        ("deploy", &b"v42"[..])
    );
    // Long after every copy has been retransmitted its full count: still once each.
    c.run_for(bound * 2);
    assert!(copies(&c, &ids, &want).iter().all(|&k| k == 1));
    no_duplicates(&c, &ids);
    let dups: u64 = ids
        .iter()
        .map(|&i| c.node(i).stats().user_events_duplicates)
        .sum();
    assert!(dups > 0, "copies arrived and were told apart");
}

#[test]
fn fifty_nodes_each_deliver_an_event_once_within_the_bound() {
    every_node_delivers_once(0.0, 11);
}

#[test]
fn fifty_nodes_each_deliver_an_event_once_at_ten_percent_loss() {
    every_node_delivers_once(0.10, 12);
}

#[test]
fn a_restarted_origins_events_are_delivered_although_their_numbers_start_again() {
    let cfg = Config::lan();
    let n = 20;
    let (mut c, ids) = converged_mesh(n, 13, &cfg, 0.0);
    let origin = ids[3];
    let bound = spread_bound(&cfg, n);
    let first = c.broadcast(origin, "gen", "one").unwrap();
    let old = (
        c.node(origin).local().name.clone(),
        c.node(origin).local().run,
        first,
    );
    let ok = c.run_until(bound, |c| copies(c, &ids, &old).iter().all(|&k| k == 1));
    assert!(ok, "the first run's event: {:?}", copies(&c, &ids, &old));
    c.crash(origin);
    c.restart(origin, &[ids[0]]);
    assert!(c.run_until(dissemination(&cfg) * 4, |c| converged(c, &ids)));
    let second = c.broadcast(origin, "gen", "two").unwrap();
    assert_eq!((first, second), (1, 1), "each run counts from 1");
    let new = (
        c.node(origin).local().name.clone(),
        c.node(origin).local().run,
        second,
    );
    assert_ne!(old, new);
    let others: Vec<NodeId> = ids.iter().copied().filter(|&i| i != origin).collect();
    assert!(
        c.run_until(bound, |c| copies(c, &others, &new).iter().all(|&k| k == 1)),
        "the new run's event was swallowed somewhere: {:?}",
        copies(&c, &others, &new)
    );
    c.run_for(bound);
    no_duplicates(&c, &ids);
}

#[test]
fn events_from_many_origins_all_arrive_once() {
    let cfg = Config::lan();
    let n = 30;
    let (mut c, ids) = converged_mesh(n, 14, &cfg, 0.05);
    let mut wanted = Vec::new();
    for round in 0..3 {
        for &o in ids.iter().step_by(3) {
            let seq = c.broadcast(o, "tick", format!("{round}")).unwrap();
            let me = c.node(o).local();
            wanted.push((me.name.clone(), me.run, seq));
        }
        c.run_for(cfg.gossip_interval);
    }
    let bound = spread_bound(&cfg, n) * 2;
    assert!(
        c.run_until(bound, |c| wanted
            .iter()
            .all(|w| copies(c, &ids, w).iter().all(|&k| k == 1))),
        "not every event reached every node within {bound:?}"
    );
    c.run_for(bound);
    no_duplicates(&c, &ids);
    assert!(ids.iter().all(|&i| c.user_events(i).len() == wanted.len()));
}

#[test]
fn a_scenario_reports_how_far_its_user_events_spread() {
    let mut s = Scenario::builtin("kill-one", 40, 15).unwrap();
    s.duration_s = 75.0;
    let quiet = run(&s, &RunOptions::default()).unwrap().summary;
    assert!(quiet.user_events.is_none(), "no event, no report");
    let text = r#"
        do = "user-event"
        at_s = 61.0
        payload_bytes = 300
        target = { count = 4 }
    "#;
    let action: Action = toml::from_str(text).expect("the action parses");
    assert!(matches!(
        &action,
        Action::UserEvent {
            target: Target { count: Some(4), .. },
            ..
        }
    ));
    s.actions.push(action);
    let r = run(&s, &RunOptions::default()).unwrap().summary;
    let reach = r.user_events.expect("a report");
    assert_eq!((reach.broadcast, reach.duplicates), (4, 0));
    // Broadcast a second after a crash, while every member still sends to the crashed one
    // and probes it: gossip with a bounded retransmit count reaches almost every node, not
    // certainly every one (this seed: 154 of 156 pairs).
    assert!(reach.delivered_fraction > 0.95, "{reach:?}");
    let all = reach
        .reach_all_s
        .expect("some event reached every running node");
    let cfg = Config::lan();
    assert!(all.max <= spread_bound(&cfg, 40).as_secs_f64(), "{all:?}");
}
