//! No task before the join, on loopback sockets: a node started with a seed that answers
//! claims nothing until the seed's state has arrived, and one whose seed never answers
//! claims only once its join wait has passed.

mod runtime_util;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use runtime_util::{bound, builder, converged, init_tracing, lo, owned_keys, start, wait_for};
use swimring::{Event, Events, Mesh, TaskChange, TaskChanges};

fn task_keys() -> Vec<String> {
    (0..64).map(|i| format!("job-{i:02}")).collect()
}

/// The next task change, or a panic naming `what` once `limit` has passed.
async fn next_change(sub: &mut TaskChanges, limit: Duration, what: &str) -> TaskChange {
    match tokio::time::timeout(limit, sub.recv()).await {
        Ok(Ok(c)) => c,
        Ok(Err(e)) => panic!("{what}: subscription failed: {e}"),
        Err(_) => panic!("{what}: no task change within {limit:?}"),
    }
}

/// Every membership event already sent to `sub`.
fn held(sub: &mut Events) -> Vec<Event> {
    let mut out = Vec::new();
    while let Ok(Some(e)) = sub.try_recv() {
        out.push(e);
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_task_is_acquired_before_the_seed_has_joined() {
    init_tracing();
    let seed = start("cl-seed", lo(41, 1), &[]).await;
    seed.add_tasks(task_keys()).await.unwrap();
    let limit = bound(seed.config(), 2);
    // A node started without seeds claims at once: every task is the seed's.
    wait_for("the lone seed owns every task", limit, || {
        seed.owned_tasks().len() == task_keys().len()
    })
    .await;

    let (node, mut events, mut tasks) = builder("cl-node", lo(41, 2), &[seed.local_addr()])
        .tasks(task_keys())
        .start_subscribed()
        .await
        .unwrap();
    let first = next_change(&mut tasks, limit, "the joiner's first claim").await;
    // The loop sends an event before any placement it causes, so by the time the first
    // task change is received, the seed's arrival has been sent.
    let before: Vec<Event> = held(&mut events);
    assert!(
        before
            .iter()
            .any(|e| matches!(e, Event::Joined(m) if m.name == "cl-seed")),
        "tasks_acquired came before member_joined: {before:?}"
    );

    let nodes = [seed.clone(), node.clone()];
    wait_for("both converge", limit, || converged(&nodes)).await;
    wait_for("both rings agree", limit, || {
        seed.ring_checksum() == node.ring_checksum()
    })
    .await;
    // Its first claim was made on the ring holding the seed, so after the seed had joined
    // its view (a claim made alone would carry the one-member ring), and it took only its
    // share.
    assert_eq!(
        first.ring_checksum,
        seed.ring_checksum(),
        "the first claim was made before the seed joined"
    );
    let mine: BTreeSet<String> = owned_keys(&node).into_iter().collect();
    let claimed: BTreeSet<String> = first.acquired.into_iter().collect();
    assert!(
        claimed.is_subset(&mine),
        "claimed a task that is not its own"
    );
    assert!(claimed.len() < task_keys().len(), "claimed every task");
    node.shutdown().await;
    seed.shutdown().await;
}

/// A loopback address where nothing listens: bound once for a free port, then closed.
fn silent_seed(addr: SocketAddr) -> SocketAddr {
    let l = std::net::TcpListener::bind(addr).unwrap();
    l.local_addr().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[allow(clippy::disallowed_methods)] // the wait is measured on a real clock
async fn with_an_unreachable_seed_the_node_claims_only_after_its_join_wait() {
    init_tracing();
    let wait = Duration::from_millis(1500);
    let seed = silent_seed(lo(41, 10));
    let started = Instant::now();
    let (node, _events, mut tasks) = builder("cl-alone", lo(41, 11), &[seed])
        .tasks(task_keys())
        .join_wait(wait)
        .start_subscribed()
        .await
        .unwrap();
    let owned = owned_keys(&node);
    if started.elapsed() < wait {
        assert!(owned.is_empty(), "claimed before the wait: {owned:?}");
    }
    let limit = wait + bound(node.config(), 1);
    let first = next_change(&mut tasks, limit, "the claim after the wait").await;
    assert!(
        started.elapsed() >= wait,
        "claimed {:?} after the start, before the {wait:?} wait",
        started.elapsed()
    );
    assert_eq!(first.acquired, task_keys(), "alone, it claims every task");
    assert_eq!(owned_keys(&node), task_keys());
    node.shutdown().await;
}

#[tokio::test]
async fn a_node_alone_on_purpose_is_not_kept_waiting() {
    init_tracing();
    // A huge join wait changes nothing for a node without seeds.
    let node: Mesh = builder("cl-solo", lo(41, 20), &[])
        .tasks(task_keys())
        .join_wait(Duration::from_secs(3600))
        .start()
        .await
        .unwrap();
    let limit = bound(node.config(), 1);
    wait_for("the seedless node owns every task", limit, || {
        owned_keys(&node) == task_keys()
    })
    .await;
    node.shutdown().await;
}
