//! A real mesh on loopback sockets: joining, crashing, leaving, restarting, event order.

mod runtime_util;

use std::time::Duration;

use runtime_util::*;
use swimring::{Event, Mesh, RecvError, State};

const N: usize = 5;

/// Five nodes on `127.77.block.1..=5`; all but the first join through the first.
async fn five(block: u8) -> Vec<Mesh> {
    init_tracing();
    let seed = start("n1", lo(block, 1), &[]).await;
    let seed_addr = seed.local_addr();
    let mut nodes = vec![seed];
    for i in 2..=N as u8 {
        nodes.push(start(&format!("n{i}"), lo(block, i), &[seed_addr]).await);
    }
    let limit = bound(nodes[0].config(), N);
    wait_for("five nodes converge", limit, || converged(&nodes)).await;
    nodes
}

#[tokio::test]
async fn five_nodes_join_through_one_seed_and_converge() {
    let nodes = five(1).await;
    for n in &nodes {
        assert_eq!(n.live_count(), N);
        assert_eq!(n.members().len(), N);
        assert_eq!(n.local().name, n.name());
        assert_eq!(n.local().addr, n.local_addr());
    }
    for n in &nodes {
        n.shutdown().await;
    }
}

#[tokio::test]
async fn crashed_node_is_declared_dead_on_evidence_by_every_survivor() {
    let nodes = five(2).await;
    let limit = bound(nodes[0].config(), N);
    let (crashed, survivors) = nodes.split_last().unwrap();
    // Shutdown without leave: peers hear nothing more, exactly as after a crash.
    crashed.shutdown().await;
    wait_for("every survivor marks n5 dead", limit, || {
        survivors.iter().all(|s| sees(s, "n5", State::Dead))
    })
    .await;
    // Loopback's kernel refuses n5's closed ports (ICMP port unreachable for datagrams, a
    // reset for streams): the death rests on that evidence, not on a suspicion timing out.
    let on_evidence: u64 = survivors
        .iter()
        .map(|s| s.stats().protocol.deaths_on_evidence)
        .sum();
    assert!(on_evidence >= 1, "no death was declared on evidence");
    #[cfg(target_os = "linux")]
    assert!(
        survivors.iter().any(|s| s.stats().icmp_unreachable >= 1),
        "no survivor heard ICMP port unreachable for n5"
    );
    for s in survivors {
        assert_eq!(s.live_count(), N - 1);
        s.shutdown().await;
    }
}

/// Each node holds a watch connection to the next member by name; a crash ends it at once,
/// and the watcher's report sends the core's next probe there. Probes are slowed to one every
/// 5 s here, so probing alone would usually take seconds to reach the crashed node: the
/// survivors' `watch_ends` show the watch heard it.
#[tokio::test]
async fn a_crash_ends_its_watch_connection_and_is_heard_at_once() {
    init_tracing();
    let slow =
        |b: swimring::MeshBuilder| b.configure(|c| c.probe_interval = Duration::from_secs(5));
    let seed = slow(builder("w1", lo(7, 1), &[])).start().await.unwrap();
    let seed_addr = seed.local_addr();
    let mut nodes = vec![seed];
    for i in 2..=4u8 {
        let b = slow(builder(&format!("w{i}"), lo(7, i), &[seed_addr]));
        nodes.push(b.start().await.unwrap());
    }
    let limit = bound(nodes[0].config(), 4);
    wait_for("four nodes converge", limit, || converged(&nodes)).await;
    wait_for("every node holds a watch", limit, || {
        nodes.iter().all(|n| n.stats().watches_taken >= 1)
    })
    .await;
    let (crashed, survivors) = nodes.split_last().unwrap();
    crashed.shutdown().await;
    wait_for("every survivor marks w4 dead", limit, || {
        survivors.iter().all(|s| sees(s, "w4", State::Dead))
    })
    .await;
    let ends: u64 = survivors.iter().map(|s| s.stats().watch_ends).sum();
    assert!(ends >= 1, "no survivor heard w4's watch connection end");
    for s in survivors {
        s.shutdown().await;
    }
}

#[tokio::test]
async fn leaving_node_is_marked_left_by_every_survivor() {
    let nodes = five(3).await;
    let limit = bound(nodes[0].config(), N);
    let (leaver, survivors) = nodes.split_last().unwrap();
    let disseminated = leaver.leave(limit).await.expect("leave");
    assert!(disseminated, "the leave was gossiped before the bound");
    wait_for("every survivor marks n5 left", limit, || {
        survivors.iter().all(|s| sees(s, "n5", State::Left))
    })
    .await;
    // The node is shut down: its operations now fail.
    assert!(matches!(
        leaver.set_meta(&b"x"[..]).await,
        Err(swimring::Error::Shutdown)
    ));
    for s in survivors {
        s.shutdown().await;
    }
}

#[tokio::test]
async fn restarted_node_is_accepted_as_the_new_run() {
    let mut nodes = five(4).await;
    let limit = bound(nodes[0].config(), N);
    let old = nodes.pop().unwrap();
    let (addr, old_run) = (old.local_addr(), old.local().run);
    old.shutdown().await;
    drop(old);
    // Same name, same address, a new process run: the run id grows with the clock.
    let new = start("n5", addr, &[nodes[0].local_addr()]).await;
    let new_run = new.local().run;
    assert!(new_run > old_run, "run {new_run} after {old_run}");
    wait_for("every node holds n5's new run alive", limit, || {
        nodes.iter().all(|s| {
            s.member("n5")
                .is_some_and(|m| m.run == new_run && m.state == State::Alive)
        })
    })
    .await;
    nodes.push(new);
    wait_for("mesh converges again", limit, || converged(&nodes)).await;
    for n in &nodes {
        n.shutdown().await;
    }
}

/// Collects what a subscriber has received so far without waiting.
fn drain(events: &mut swimring::Events, into: &mut Vec<Event>) {
    while let Ok(Some(e)) = events.try_recv() {
        into.push(e);
    }
}

#[tokio::test]
async fn events_follow_the_core_order_and_every_subscriber_sees_the_same() {
    init_tracing();
    let block = 5;
    let observer = start("n1", lo(block, 1), &[]).await;
    let mut a = observer.events();
    let mut b = observer.events();
    let limit = bound(observer.config(), N);
    let mut nodes = vec![observer];
    for i in 2..=N as u8 {
        let seed = nodes[0].local_addr();
        nodes.push(start(&format!("n{i}"), lo(block, i), &[seed]).await);
    }
    wait_for("converge", limit, || converged(&nodes)).await;
    let crashed = nodes.pop().unwrap();
    crashed.shutdown().await;
    wait_for("n1 marks n5 dead", limit, || {
        sees(&nodes[0], "n5", State::Dead)
    })
    .await;

    let (mut seen_a, mut seen_b) = (Vec::new(), Vec::new());
    // Every event the observer emitted is already in both subscriptions' buffers.
    drain(&mut a, &mut seen_a);
    drain(&mut b, &mut seen_b);
    assert_eq!(seen_a, seen_b, "two subscribers see identical sequences");

    let about_n5: Vec<&str> = seen_a
        .iter()
        .filter(|e| e.member().is_some_and(|m| m.name == "n5"))
        .map(|e| e.kind())
        .collect();
    let joined = about_n5.iter().position(|k| *k == "member_joined");
    let dead = about_n5.iter().position(|k| *k == "member_dead");
    assert!(
        matches!((joined, dead), (Some(j), Some(d)) if j < d),
        "Joined before Dead for the crashed node: {about_n5:?}"
    );
    assert_eq!(about_n5.last(), Some(&"member_dead"));
    for i in 2..=4 {
        let name = format!("n{i}");
        assert!(
            seen_a
                .iter()
                .any(|e| matches!(e, Event::Joined(m) if m.name == name)),
            "Joined for {name}"
        );
    }
    for n in &nodes {
        n.shutdown().await;
    }
    // After shutdown the subscription ends once drained.
    assert_eq!(a.recv().await, Err(RecvError::Closed));
}

#[tokio::test]
async fn a_slow_subscriber_is_told_how_many_events_it_missed() {
    init_tracing();
    let block = 6;
    let observer = swimring::Mesh::builder()
        .name("n1")
        .bind(lo(block, 1))
        .preset(swimring::Preset::Local)
        .event_capacity(2)
        .start()
        .await
        .unwrap();
    let mut slow = observer.events();
    let limit = bound(observer.config(), N);
    let mut nodes = vec![observer];
    for i in 2..=N as u8 {
        let seed = nodes[0].local_addr();
        nodes.push(start(&format!("n{i}"), lo(block, i), &[seed]).await);
    }
    wait_for("converge", limit, || converged(&nodes)).await;
    // Four joins into a buffer of two: the first recv reports the loss, then the newest.
    match slow.recv().await {
        Err(RecvError::Lagged(n)) => assert!(n >= 2, "lagged by {n}"),
        other => panic!("expected Lagged, got {other:?}"),
    }
    let mut rest = Vec::new();
    drain(&mut slow, &mut rest);
    assert_eq!(
        rest.len(),
        2,
        "the capacity's worth of newest events: {rest:?}"
    );
    for n in &nodes {
        n.shutdown().await;
    }
    tokio::time::timeout(Duration::from_secs(5), async {
        while slow.recv().await != Err(RecvError::Closed) {}
    })
    .await
    .expect("subscription closes after shutdown");
}
