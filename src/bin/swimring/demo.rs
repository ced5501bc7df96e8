//! `swimring demo`: the whole idea in under a minute. A mesh of N nodes starts on loopback
//! in this process, shares a set of tasks, loses a node without warning, notices, and hands
//! exactly that node's tasks to the survivors.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use clap::Args;
use swimring::placement::{self, Balance, PlacementConfig};
use swimring::proto::bounds;
use swimring::ring::{BoundedLoad, LoadPolicy, NORMAL_WEIGHT, TaskTable};
use swimring::{Event, Mesh, Preset, State};
use tokio::time::Instant;

use crate::inspect::{balance_table, members_table};
use crate::logging;
use crate::settings::LogLevel;

/// `swimring demo` flags.
#[derive(Args)]
pub struct DemoArgs {
    /// Nodes in the demo mesh.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u16).range(3..=64))]
    nodes: u16,
    /// Tasks the mesh shares.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u16).range(1..=10_000))]
    tasks: u16,
}

fn say(start: Instant, what: impl std::fmt::Display) {
    println!("[{:>6.2}s] {what}", start.elapsed().as_secs_f64());
}

/// Polls `cond` until it holds, or fails naming `what` after `limit`.
async fn wait(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) -> Result<(), String> {
    let deadline = Instant::now() + limit;
    while !cond() {
        if Instant::now() >= deadline {
            return Err(format!("demo gave up after {limit:?} waiting until {what}"));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

fn owners(nodes: &[Mesh]) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for n in nodes {
        for t in n.owned_tasks() {
            out.entry(t.key).or_default().push(n.name().to_owned());
        }
    }
    out
}

fn settled(nodes: &[Mesh], tasks: usize) -> bool {
    let o = owners(nodes);
    let sum = nodes[0].ring_checksum();
    o.len() == tasks
        && o.values().all(|v| v.len() == 1)
        && nodes.iter().all(|n| n.ring_checksum() == sum)
}

/// Runs the demo: start, converge, kill one node, watch it be declared dead, check that
/// exactly its tasks moved, leave.
/// The demo's `i`th task.
fn task_key(i: usize) -> String {
    format!("task-{i:02}")
}

pub async fn run(args: DemoArgs) -> Result<(), String> {
    let _logging = logging::init(LogLevel::Warn);
    let n = usize::from(args.nodes);
    let keys: Vec<String> = (0..usize::from(args.tasks)).map(task_key).collect();
    let start = Instant::now();
    say(
        start,
        format!(
            "starting {n} nodes on 127.0.0.1 (preset `local`), sharing {} tasks",
            keys.len()
        ),
    );
    let mut nodes = start_nodes(n, &keys).await?;
    // Generous bounds from the protocol's own (detection and join), for a loaded machine.
    let b = bounds(nodes[0].config(), n);
    let limit = (b.detect + b.join) * 4;
    converge(start, &nodes, keys.len(), limit).await?;

    let victim = nodes.remove(n / 2);
    let name = victim.name().to_owned();
    let lost: BTreeSet<String> = victim.owned_tasks().into_iter().map(|t| t.key).collect();
    let mut changes: Vec<_> = nodes.iter().map(|m| m.task_changes()).collect();
    kill_and_watch(start, victim, &nodes, lost.len(), limit).await?;
    wait("the survivors own every task once", limit, || {
        settled(&nodes, keys.len())
    })
    .await?;
    let moved = collect_moves(&nodes, &mut changes)?;
    if moved != lost {
        return Err(format!(
            "expected exactly {name}'s {} tasks to move, {} moved",
            lost.len(),
            moved.len()
        ));
    }
    say(
        start,
        format!(
            "exactly {name}'s {} tasks moved; every other task stayed put",
            lost.len()
        ),
    );
    for node in &nodes {
        let _ = node.leave(Duration::from_secs(2)).await;
    }
    say(start, "survivors left gracefully; done");
    Ok(())
}

/// Starts `n` nodes on loopback, each sharing `keys`; every node after the first joins
/// through the first.
async fn start_nodes(n: usize, keys: &[String]) -> Result<Vec<Mesh>, String> {
    let mut nodes: Vec<Mesh> = Vec::with_capacity(n);
    for i in 0..n {
        let seeds: Vec<String> = nodes
            .first()
            .map(|s| s.local_addr().to_string())
            .into_iter()
            .collect();
        let node = Mesh::builder()
            .name(format!("node-{i}"))
            .bind("127.0.0.1:0".parse().expect("literal"))
            .preset(Preset::Local)
            .seeds(seeds)
            .tasks(keys.to_vec())
            .start()
            .await
            .map_err(|e| format!("node-{i} did not start: {e}"))?;
        nodes.push(node);
    }
    Ok(nodes)
}

/// Waits until every node sees every other alive and every task has one owner, then shows
/// the view, the share of tasks and the ring checksum.
async fn converge(
    start: Instant,
    nodes: &[Mesh],
    tasks: usize,
    limit: Duration,
) -> Result<(), String> {
    wait("every node sees every other", limit, || {
        nodes.iter().all(|a| {
            nodes
                .iter()
                .all(|b| a.member(b.name()).is_some_and(|m| m.state == State::Alive))
        })
    })
    .await?;
    wait("every task has one owner", limit, || settled(nodes, tasks)).await?;
    say(
        start,
        format!("converged: every node sees {} alive members", nodes.len()),
    );
    let view: Vec<_> = nodes[0]
        .members()
        .iter()
        .map(swimring::control::member_info)
        .collect();
    print!("{}", members_table(&view));
    explain_balance(&nodes[0].balance(), nodes);
    say(
        start,
        format!(
            "ring checksum {:016x} on every node",
            nodes[0].ring_checksum()
        ),
    );
    Ok(())
}

/// Shows how the tasks are spread, why few tasks per node spread unevenly, and what bounded
/// loads would give on the same members and tasks.
fn explain_balance(balance: &Balance, nodes: &[Mesh]) {
    print!("{}", balance_table(balance));
    let mean = balance.tasks as f64 / balance.members.len().max(1) as f64;
    let bounded = BoundedLoad::default();
    let cap = bounded.capacity(
        balance.tasks,
        NORMAL_WEIGHT,
        balance.members.len() as u64 * u64::from(NORMAL_WEIGHT),
    );
    println!(
        "  {mean:.0} tasks per node on average: whole tasks land unevenly (about ±{:.1} each),\n  \
         though each node's arc of the ring is within a few percent of a fair share",
        mean.sqrt()
    );
    let counts: Vec<String> = bounded_counts(nodes, balance.tasks, bounded)
        .iter()
        .map(usize::to_string)
        .collect();
    println!(
        "  with bounded loads (--bounded-load {}) no node would own more than {cap}: {} here",
        bounded.factor(),
        counts.join("/")
    );
}

/// Each member's task count, by name, if the same tasks were placed with bounded loads.
fn bounded_counts(nodes: &[Mesh], tasks: usize, bounded: BoundedLoad) -> Vec<usize> {
    let cfg = PlacementConfig::default();
    let members = nodes[0].members();
    let eligible = placement::eligible(&cfg, &members);
    let mut table = TaskTable::new("", LoadPolicy::Bounded(bounded));
    let _ = table.update_ring(&placement::build_ring(&cfg, &eligible));
    let _ = table.insert_all((0..tasks).map(task_key));
    eligible
        .iter()
        .map(|(name, _)| table.owned_by(name).count())
        .collect()
}

/// Stops `victim` without a word and narrates what the first survivor sees, as it sees it,
/// until every survivor has declared it dead.
async fn kill_and_watch(
    start: Instant,
    victim: Mesh,
    nodes: &[Mesh],
    owned: usize,
    limit: Duration,
) -> Result<(), String> {
    let name = victim.name().to_owned();
    let mut watch = nodes[0].events();
    say(
        start,
        format!("killing {name} without warning (it owned {owned} tasks)"),
    );
    let killed = Instant::now();
    victim.shutdown().await;
    let deadline = Instant::now() + limit;
    while !nodes
        .iter()
        .all(|m| m.member(&name).is_some_and(|m| m.state == State::Dead))
    {
        let e = tokio::time::timeout(Duration::from_millis(20), watch.recv()).await;
        if let Ok(Ok(Event::Suspect(m) | Event::Dead(m))) = &e
            && m.name == name
        {
            let t = killed.elapsed().as_secs_f64();
            let who = nodes[0].name();
            say(
                start,
                format!("{who} sees {name} as {} ({t:.2}s after the kill)", m.state),
            );
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "demo gave up after {limit:?} waiting for {name} to be declared dead"
            ));
        }
    }
    let t = killed.elapsed().as_secs_f64();
    say(
        start,
        format!("every survivor marks {name} dead ({t:.2}s after the kill)"),
    );
    Ok(())
}

/// What each survivor acquired since `changes` were subscribed, printed per node; a
/// survivor that released anything is an error (it should have kept all it had).
fn collect_moves(
    nodes: &[Mesh],
    changes: &mut [swimring::TaskChanges],
) -> Result<BTreeSet<String>, String> {
    let mut moved = BTreeSet::new();
    for (node, sub) in nodes.iter().zip(changes) {
        let mut got = Vec::new();
        while let Ok(Some(c)) = sub.try_recv() {
            got.extend(c.acquired);
            if !c.released.is_empty() {
                return Err(format!(
                    "{} released tasks it should have kept",
                    node.name()
                ));
            }
        }
        if !got.is_empty() {
            println!("  {} acquired {}", node.name(), got.join(" "));
        }
        moved.extend(got);
    }
    Ok(moved)
}
