//! Messages between members on loopback sockets: best-effort and reliable messages reach
//! every node of a sealed mesh, naming their sender; oversized bodies, unknown and gone
//! members are refused before anything is sent; a full queue drops and counts without
//! holding up membership; malformed message frames are counted and change nothing.

mod runtime_util;

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use runtime_util::{
    bound, builder, converged, hold_for, init_tracing, lo, mesh_of, sees, wait_for,
};
use swimring::runtime::{MessageError, UserMessage};
use swimring::wire::Key;
use swimring::{Mesh, MeshBuilder, State};
use tokio::io::AsyncWriteExt;

/// Everything one node's subscription received, in order.
type Inbox = Arc<Mutex<Vec<UserMessage>>>;

/// Subscribes to `mesh`'s messages and collects them until the subscription ends.
fn collect(mesh: &Mesh) -> Inbox {
    let inbox = Inbox::default();
    let mut messages = mesh.messages();
    let sink = Arc::clone(&inbox);
    tokio::spawn(async move {
        while let Some(m) = messages.recv().await {
            sink.lock().unwrap().push(m);
        }
    });
    inbox
}

fn has(inbox: &Inbox, from: &str, body: &[u8], reliable: bool) -> bool {
    let held = inbox.lock().unwrap();
    held.iter()
        .any(|m| m.from == from && m.bytes == body && m.reliable == reliable)
}

/// Sends a best-effort message until `inbox` holds it: a datagram may be lost, so it is sent
/// again every 100 ms, within the protocol's bound.
async fn deliver(from: &Mesh, to: &Mesh, inbox: &Inbox, body: &str) {
    let limit = bound(from.config(), 3);
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        from.send(to.name(), body.to_owned()).await.expect("sent");
        let resend = tokio::time::Instant::now() + Duration::from_millis(100);
        while tokio::time::Instant::now() < resend {
            if has(inbox, from.name(), body.as_bytes(), false) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{body} did not reach {} within {limit:?}",
            to.name()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn best_effort_and_reliable_messages_reach_every_node_sealed() {
    init_tracing();
    let sealed = |_, b: MeshBuilder| b.keys([Key::from_bytes([5; 32])]);
    let nodes = mesh_of("msg-a", 70, 3, sealed).await;
    let inboxes: Vec<Inbox> = nodes.iter().map(collect).collect();
    for from in &nodes {
        for (to, inbox) in nodes.iter().zip(&inboxes) {
            let body = format!("{}->{}", from.name(), to.name());
            deliver(from, to, inbox, &format!("best-effort {body}")).await;
            let reliable = format!("reliable {body}");
            from.send_reliable(to.name(), reliable.clone())
                .await
                .expect("accepted");
            // Accepted means queued: the subscriber has it, or is about to take it.
            let limit = bound(from.config(), 3);
            wait_for(&reliable, limit, || {
                has(inbox, from.name(), reliable.as_bytes(), true)
            })
            .await;
        }
    }
    for n in &nodes {
        let s = n.stats();
        assert!(s.messages_sent >= 6, "{}: {s:?}", n.name());
        assert!(s.messages_received >= 6, "{}: {s:?}", n.name());
        assert_eq!(s.messages_dropped + s.messages_malformed, 0, "{s:?}");
        assert_eq!(s.decrypt_failures, 0, "every message opened");
        assert_eq!(
            s.forwards_sent + s.forwards_served,
            0,
            "messages are not forwards"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_large_messages_are_refused_before_anything_is_sent() {
    init_tracing();
    // b accepts smaller reliable messages than a sends.
    let nodes = mesh_of("msg-b", 71, 2, |i, b| {
        let b = b.keys([Key::from_bytes([6; 32])]);
        b.max_reliable_message(if i == 0 { 8 << 10 } else { 1 << 10 })
    })
    .await;
    let (a, b) = (&nodes[0], &nodes[1]);
    let inbox = collect(b);
    let limit = a.max_message_len();
    let room = a.config().max_datagram;
    assert!(limit > 1000 && limit < room, "{limit} of {room}");
    let err = a.send(b.name(), vec![0; limit + 1]).await.unwrap_err();
    assert_eq!(
        err,
        MessageError::TooLarge {
            len: limit + 1,
            limit
        }
    );
    let err = a.send_reliable(b.name(), vec![0; (8 << 10) + 1]).await;
    assert_eq!(
        err.unwrap_err(),
        MessageError::TooLarge {
            len: (8 << 10) + 1,
            limit: 8 << 10
        }
    );
    assert_eq!(a.stats().messages_sent, 0, "nothing was sent");
    // The largest body fits its sealed datagram exactly and arrives.
    let full = vec![b'f'; limit];
    deliver(a, b, &inbox, std::str::from_utf8(&full).unwrap()).await;
    // b's own limit refuses what a's allows.
    let err = a
        .send_reliable(b.name(), vec![0; 2 << 10])
        .await
        .unwrap_err();
    assert_eq!(
        err,
        MessageError::TooLarge {
            len: 2 << 10,
            limit: 1 << 10
        }
    );
    assert_eq!(b.stats().messages_dropped, 1);
    assert!(!inbox.lock().unwrap().iter().any(|m| m.reliable));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_and_departed_members_are_refused() {
    init_tracing();
    let nodes = mesh_of("msg-c", 72, 3, |_, b| b).await;
    let (a, c) = (&nodes[0], &nodes[2]);
    let unknown = MessageError::UnknownMember {
        name: "nobody".into(),
    };
    assert_eq!(a.send("nobody", "x").await.unwrap_err(), unknown);
    assert_eq!(a.send_reliable("nobody", "x").await.unwrap_err(), unknown);
    let name = c.name().to_owned();
    c.leave(bound(a.config(), 3)).await.expect("c leaves");
    let limit = bound(a.config(), 3);
    wait_for("a sees c left", limit, || sees(a, &name, State::Left)).await;
    let gone = MessageError::NotLive {
        name: name.clone(),
        state: State::Left,
    };
    assert_eq!(a.send(&name, "x").await.unwrap_err(), gone);
    assert_eq!(a.send_reliable(&name, "x").await.unwrap_err(), gone);
    assert_eq!(a.stats().messages_sent, 0);
    // After a shutdown, nothing is sent.
    a.shutdown().await;
    let b = nodes[1].name();
    assert_eq!(a.send(b, "x").await.unwrap_err(), MessageError::Shutdown);
    assert_eq!(
        a.send_reliable(b, "x").await.unwrap_err(),
        MessageError::Shutdown
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_drops_and_counts_without_stalling_membership() {
    init_tracing();
    let nodes = mesh_of("msg-d", 73, 3, |_, b| b.message_queue(4)).await;
    let (a, b, c) = (&nodes[0], &nodes[1], &nodes[2]);
    // c reads no messages: a reliable sender is told so.
    let err = a.send_reliable(c.name(), "x").await.unwrap_err();
    assert_eq!(
        err,
        MessageError::NoSubscriber {
            member: c.name().into()
        }
    );
    // b subscribes and never reads: four wait in its queue, the rest are dropped.
    let unread = b.messages();
    for i in 0..4 {
        a.send_reliable(b.name(), format!("r{i}"))
            .await
            .expect("room");
    }
    for i in 4..20 {
        let err = a
            .send_reliable(b.name(), format!("r{i}"))
            .await
            .unwrap_err();
        assert_eq!(
            err,
            MessageError::Busy {
                member: b.name().into()
            }
        );
    }
    let s = b.stats();
    assert_eq!((s.messages_received, s.messages_dropped), (4, 16));
    // A flood of datagrams into the full queue: each is dropped and counted, and the
    // protocol loop keeps going (a newcomer joins, nobody is suspected).
    let flood = {
        let (a, to) = (a.clone(), b.name().to_owned());
        tokio::spawn(async move {
            for i in 0..3000 {
                a.send(&to, format!("d{i}")).await.expect("sent");
                tokio::task::yield_now().await;
            }
        })
    };
    let newcomer = builder("msg-d3", lo(73, 4), &[a.local_addr()])
        .start()
        .await
        .expect("mesh starts");
    let limit = bound(a.config(), 4);
    let mut all = nodes.clone();
    all.push(newcomer);
    wait_for("the newcomer joins during the flood", limit, || {
        converged(&all)
    })
    .await;
    flood.await.unwrap();
    wait_for("b counts dropped datagrams", limit, || {
        b.stats().messages_dropped > 16
    })
    .await;
    hold_for("everyone stays alive", Duration::from_millis(300), || {
        converged(&all)
    })
    .await;
    assert_eq!(
        b.stats().messages_received,
        4,
        "the queue held four all along"
    );
    drop(unread);
}

/// A raw datagram or stream frame: `SWRG`, version 1, label "", one frame with `tag` and a
/// body announcing a 3-byte string but holding garbage.
fn garbage(tag: u8) -> Vec<u8> {
    vec![
        b'S', b'W', b'R', b'G', 1, 0, 1, tag, 4, 0xfd, 0xff, 0xff, 0xff,
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_message_frames_are_counted_and_harmless() {
    init_tracing();
    let nodes = mesh_of("msg-e", 74, 2, |_, b| b).await;
    let (a, b) = (&nodes[0], &nodes[1]);
    let mut messages = b.messages();
    let before = b.stats();
    // Datagrams: a garbage body, a nameless sender, and a message wedged between frames.
    let nameless = swimring::wire::codec::encode_message(
        "",
        &swimring::wire::user::MessageDatagram {
            from: String::new(),
            body: Bytes::from_static(b"x"),
        },
    );
    let raw = tokio::net::UdpSocket::bind(lo(74, 9)).await.unwrap();
    for bytes in [
        &garbage(13)[..],
        &nameless[..],
        &nameless[..nameless.len() - 1],
    ] {
        raw.send_to(bytes, b.local_addr()).await.unwrap();
    }
    let limit = bound(a.config(), 2);
    wait_for("b counts three malformed datagrams", limit, || {
        b.stats().messages_malformed == 3
    })
    .await;
    // A reliable message frame that does not decode closes its connection, like any bad
    // forward frame.
    let mut s = tokio::net::TcpStream::connect(b.local_addr())
        .await
        .unwrap();
    let bad = garbage(14);
    s.write_all(&(bad.len() as u32).to_be_bytes())
        .await
        .unwrap();
    s.write_all(&bad).await.unwrap();
    wait_for("b counts the malformed stream frame", limit, || {
        b.stats().forwards_malformed == 1
    })
    .await;
    let after = b.stats();
    assert_eq!(after.messages_received, 0, "nothing reached the subscriber");
    assert_eq!(after.protocol.decode_errors, before.protocol.decode_errors);
    assert!(messages.try_recv().is_none());
    // Nothing changed: the mesh holds, and messages still arrive, also as a Stream.
    assert!(converged(&nodes));
    a.send_reliable(b.name(), "after").await.expect("accepted");
    let next =
        std::future::poll_fn(|cx| futures_core::Stream::poll_next(Pin::new(&mut messages), cx));
    let m = tokio::time::timeout(limit, next).await.unwrap().unwrap();
    assert_eq!(
        (m.from.as_str(), &m.bytes[..], m.reliable),
        (a.name(), &b"after"[..], true)
    );
}
