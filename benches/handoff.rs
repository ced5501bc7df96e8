//! Handoff windows on loopback: how long a task has two owners, or none, when its owner
//! crashes or a node joins. Five nodes in one process share 1,000 tasks; each round kills a
//! random node, then starts it again under its name (a new run), and times every task that
//! moved from the nodes' own `task_changes` subscriptions (one process, one clock).
//!
//! ```text
//! cargo bench --bench handoff                      # local preset, 10 rounds
//! SWIMRING_BENCH_PRESET=lan SWIMRING_BENCH_ROUNDS=5 cargo bench --bench handoff
//! ```
//!
//! - *gap after a crash*: from the kill to the first survivor's `acquired` for each of the dead
//!   node's tasks. No node owns the task meanwhile; it is the protocol's detection time plus
//!   the placement delay.
//! - *overlap at a join*: from the newcomer's `acquired` to the old owner's `released` for
//!   each task it took: both believe they own it meanwhile (fencing tokens are for this).
//!   When the old owner released first, the difference is a gap instead.

#![allow(clippy::disallowed_methods)] // a benchmark times the mesh with the wall clock

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use swimring::proto::bounds;
use swimring::{Mesh, Preset, TaskChange, TaskChanges};

const NODES: usize = 5;
const TASKS: usize = 1000;

fn env_or<T: std::str::FromStr>(key: &str, default: T) -> T {
    std::env::var(key)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Every task change any node reported, stamped when its subscriber received it.
type Log = Arc<Mutex<Vec<(Instant, String, TaskChange)>>>;

fn addr(i: usize) -> SocketAddr {
    SocketAddr::new(IpAddr::V4(Ipv4Addr::new(127, 78, 1, 1 + i as u8)), 0)
}

async fn start(i: usize, preset: Preset, seeds: &[SocketAddr], log: &Log) -> Mesh {
    let (mesh, _events, changes) = Mesh::builder()
        .name(format!("h{i}"))
        .bind(addr(i))
        .preset(preset)
        .seeds(seeds.iter().map(|s| s.to_string()))
        .tasks((0..TASKS).map(|t| format!("task-{t:04}")))
        .start_subscribed()
        .await
        .expect("mesh starts");
    record(mesh.name().to_owned(), changes, Arc::clone(log));
    mesh
}

fn record(name: String, mut changes: TaskChanges, log: Log) {
    tokio::spawn(async move {
        while let Ok(c) = changes.recv().await {
            log.lock().unwrap().push((Instant::now(), name.clone(), c));
        }
    });
}

/// Waits until every live node agrees on the ring and every task has exactly one owner.
async fn settle(nodes: &[Option<Mesh>], limit: Duration) {
    let deadline = Instant::now() + limit;
    loop {
        let live: Vec<&Mesh> = nodes.iter().flatten().collect();
        let owned: usize = live.iter().map(|n| n.owned_tasks().len()).sum();
        let sum = live[0].ring_checksum();
        if owned == TASKS
            && live
                .iter()
                .all(|n| n.ring_checksum() == sum && n.live_count() == live.len())
        {
            return;
        }
        assert!(Instant::now() < deadline, "the mesh did not settle");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The first time after `since` that `who` reported `kind` ("acquired" or "released") of
/// `task`.
fn first(
    log: &[(Instant, String, TaskChange)],
    since: Instant,
    who: Option<&str>,
    acquired: bool,
    task: &str,
) -> Option<Instant> {
    log.iter()
        .filter(|(at, name, _)| *at >= since && who.is_none_or(|w| w == name))
        .find(|(_, _, c)| {
            let list = if acquired { &c.acquired } else { &c.released };
            list.binary_search_by(|k| k.as_str().cmp(task)).is_ok()
        })
        .map(|(at, _, _)| *at)
}

fn percentiles(label: &str, mut ms: Vec<f64>) {
    if ms.is_empty() {
        println!("{label:28} none");
        return;
    }
    ms.sort_by(f64::total_cmp);
    let at = |q: f64| ms[((ms.len() - 1) as f64 * q).round() as usize];
    println!(
        "{label:28} n={:5}  p50 {:7.1} ms  p99 {:7.1} ms  max {:7.1} ms",
        ms.len(),
        at(0.5),
        at(0.99),
        ms[ms.len() - 1]
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let preset: Preset = env_or("SWIMRING_BENCH_PRESET", "local".to_owned())
        .parse()
        .expect("a preset: lan, wan or local");
    let rounds: usize = env_or("SWIMRING_BENCH_ROUNDS", 10);
    let log: Log = Arc::default();
    let mut nodes: Vec<Option<Mesh>> = Vec::new();
    for i in 0..NODES {
        let seeds: Vec<SocketAddr> = nodes
            .iter()
            .flatten()
            .map(Mesh::local_addr)
            .take(1)
            .collect();
        nodes.push(Some(start(i, preset, &seeds, &log).await));
    }
    let cfg = nodes[0].as_ref().unwrap().config().clone();
    let b = bounds(&cfg, NODES);
    let limit = (b.detect + b.join) * 4;
    settle(&nodes, limit).await;
    let (mut gaps, mut overlaps, mut join_gaps) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..rounds {
        // A crash: every task of the victim has no owner until a survivor acquires it.
        let v = 1 + round % (NODES - 1);
        let victim = nodes[v].take().unwrap();
        let lost = victim.owned_tasks();
        let killed = Instant::now();
        victim.shutdown().await;
        settle(&nodes, limit).await;
        let snapshot = log.lock().unwrap().clone();
        for t in &lost {
            let got = first(&snapshot, killed, None, true, &t.key).expect("a survivor took it");
            gaps.push((got - killed).as_secs_f64() * 1e3);
        }
        // A join: the victim comes back as a new run and takes tasks from their owners.
        let owners: BTreeMap<String, String> = nodes
            .iter()
            .flatten()
            .flat_map(|n| {
                n.owned_tasks()
                    .into_iter()
                    .map(|t| (t.key, n.name().to_owned()))
            })
            .collect();
        let joined = Instant::now();
        let seed = nodes[0].as_ref().unwrap().local_addr();
        nodes[v] = Some(start(v, preset, &[seed], &log).await);
        settle(&nodes, limit).await;
        let newcomer = format!("h{v}");
        let snapshot = log.lock().unwrap().clone();
        for (task, owner) in &owners {
            let Some(took) = first(&snapshot, joined, Some(&newcomer), true, task) else {
                continue;
            };
            let gave = first(&snapshot, joined, Some(owner), false, task)
                .expect("the old owner released it");
            if gave >= took {
                overlaps.push((gave - took).as_secs_f64() * 1e3);
            } else {
                join_gaps.push((took - gave).as_secs_f64() * 1e3);
            }
        }
    }
    println!(
        "preset {preset:?}, {NODES} nodes, {TASKS} tasks, {rounds} rounds (detection bound {:?})",
        b.detect
    );
    percentiles("gap after a crash", gaps);
    percentiles("overlap at a join", overlaps);
    percentiles("gap at a join", join_gaps);
    for n in nodes.iter().flatten() {
        n.shutdown().await;
    }
}
