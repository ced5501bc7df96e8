//! User events on loopback sockets: a broadcast reaches every node's `user_events()` once,
//! the origin's included, in a sealed mesh; an oversized or nameless event is refused
//! before anything is sent; a full subscription drops and counts; after a shutdown nothing
//! is sent.

mod runtime_util;

use std::pin::Pin;
use std::sync::{Arc, Mutex};

use runtime_util::{bound, hold_for, init_tracing, mesh_of, wait_for};
use swimring::proto::bounds;
use swimring::wire::Key;
use swimring::{Mesh, MeshBuilder, UserEvent, UserEventError};

/// Everything one node's subscription received, in order.
type Inbox = Arc<Mutex<Vec<UserEvent>>>;

fn collect(mesh: &Mesh) -> Inbox {
    let inbox = Inbox::default();
    let mut events = mesh.user_events();
    let sink = Arc::clone(&inbox);
    tokio::spawn(async move {
        while let Some(e) = events.recv().await {
            sink.lock().unwrap().push(e);
        }
    });
    inbox
}

/// How many times `inbox` holds the event `name` from `from`.
fn count(inbox: &Inbox, from: &str, name: &str) -> usize {
    let held = inbox.lock().unwrap();
    held.iter()
        .filter(|e| e.from == from && e.name == name)
        .count()
}

/// Twice the time a rumour is sent its full retransmit count: when every copy is gone.
fn spread(mesh: &Mesh, n: usize) -> std::time::Duration {
    bounds(mesh.config(), n).spread * 2
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broadcast_reaches_every_node_once_in_a_sealed_mesh() {
    init_tracing();
    let sealed = |_, b: MeshBuilder| b.keys([Key::from_bytes([8; 32])]);
    let nodes = mesh_of("ev-a", 80, 4, sealed).await;
    let inboxes: Vec<Inbox> = nodes.iter().map(collect).collect();
    let origin = &nodes[1];
    let seq = origin.broadcast("deploy", "v42").await.expect("accepted");
    assert_eq!(seq, 1);
    let limit = bound(origin.config(), 4);
    wait_for("every node delivers the event", limit, || {
        inboxes
            .iter()
            .all(|i| count(i, origin.name(), "deploy") == 1)
    })
    .await;
    let e = inboxes[3].lock().unwrap()[0].clone();
    assert_eq!((&e.payload[..], e.seq), (&b"v42"[..], 1));
    // Every copy still travelling is told apart: nothing is delivered twice.
    hold_for("each node holds it once", spread(origin, 4), || {
        inboxes
            .iter()
            .all(|i| count(i, origin.name(), "deploy") == 1)
    })
    .await;
    for (n, node) in nodes.iter().enumerate() {
        let s = node.stats();
        let (sent, received) = (s.protocol.user_events_sent, s.protocol.user_events_received);
        let mine = u64::from(n == 1);
        assert_eq!((sent, received), (mine, 1 - mine), "{}: {s:?}", node.name());
        assert_eq!(s.user_events_dropped + s.protocol.user_events_malformed, 0);
        assert_eq!(s.decrypt_failures, 0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_events_are_refused_before_anything_is_sent() {
    init_tracing();
    let nodes = mesh_of("ev-b", 81, 3, |_, b| b.keys([Key::from_bytes([9; 32])])).await;
    let inboxes: Vec<Inbox> = nodes.iter().map(collect).collect();
    let a = &nodes[0];
    let max = a.max_user_event_len();
    let room = a.config().max_datagram;
    assert!(max > 400 && max < room / 2, "{max} of {room}");
    let too_large = a.broadcast("deploy", vec![0; max - 5]).await.unwrap_err();
    assert_eq!(
        too_large,
        UserEventError::TooLarge {
            len: max + 1,
            limit: max
        }
    );
    assert_eq!(
        a.broadcast("", "x").await.unwrap_err(),
        UserEventError::EmptyName
    );
    let long = "n".repeat(65);
    assert_eq!(
        a.broadcast(long, "x").await.unwrap_err(),
        UserEventError::NameTooLong { len: 65, limit: 64 }
    );
    assert_eq!(a.stats().protocol.user_events_sent, 0, "nothing was sent");
    // The largest event is taken, and it is the only one anybody delivers.
    a.broadcast("deploy", vec![b'x'; max - 6])
        .await
        .expect("fits");
    let limit = bound(a.config(), 3);
    wait_for("every node delivers the largest event", limit, || {
        inboxes.iter().all(|i| count(i, a.name(), "deploy") == 1)
    })
    .await;
    hold_for("and nothing else", spread(a, 3), || {
        inboxes.iter().all(|i| i.lock().unwrap().len() == 1)
    })
    .await;
    a.shutdown().await;
    assert_eq!(
        a.broadcast("late", "x").await.unwrap_err(),
        UserEventError::Shutdown
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_subscription_drops_and_counts_and_the_stream_still_reads() {
    init_tracing();
    let nodes = mesh_of("ev-c", 82, 2, |_, b| b.user_event_queue(2)).await;
    let (a, b) = (&nodes[0], &nodes[1]);
    let mut unread = b.user_events();
    for i in 0..5 {
        a.broadcast("tick", format!("{i}")).await.expect("accepted");
    }
    let limit = bound(a.config(), 2);
    wait_for("b delivers five, keeps two and drops three", limit, || {
        let s = b.stats();
        s.protocol.user_events_received == 5 && s.user_events_dropped == 3
    })
    .await;
    // The two kept (the first two delivered: events carry no order) read as a Stream.
    let mut kept = Vec::new();
    for _ in 0..2 {
        let next =
            std::future::poll_fn(|cx| futures_core::Stream::poll_next(Pin::new(&mut unread), cx));
        let e = tokio::time::timeout(limit, next).await.unwrap().unwrap();
        assert_eq!((e.from.as_str(), e.name.as_str()), (a.name(), "tick"));
        kept.push(e.payload);
    }
    assert_ne!(kept[0], kept[1]);
    assert!(unread.try_recv().is_none());
    // a subscribes to nothing: its own five were dropped and counted too.
    assert_eq!(a.stats().user_events_dropped, 5);
}
