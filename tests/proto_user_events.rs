//! User events in the protocol core, with nodes wired by hand: delivered locally and once
//! however often a copy arrives, a restarted origin's new run delivered, every bound refused
//! with its own error and nothing queued, a fair share of the datagram under a flood of
//! membership rumours, and a malformed event frame dropped alone.
#![allow(clippy::disallowed_methods)] // a test takes one real instant as its virtual epoch

use std::net::SocketAddr;
use std::time::Instant;

use bytes::Bytes;
use swimring::proto::{
    Channel, Config, Identity, Swim, USER_EVENT_QUEUE, UserEvent, UserEventError,
};
use swimring::wire::codec::{self, Limits, Transport};
use swimring::wire::{Alive, Message, Update};

fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

fn node(name: &str, port: u16, now: Instant) -> Swim {
    let id = Identity {
        name: name.into(),
        addr: addr(port),
        run: 1,
        meta: Bytes::new(),
    };
    Swim::new(Config::lan(), id, u64::from(port), now).unwrap()
}

fn event(from: &str, run: u64, seq: u64) -> UserEvent {
    UserEvent {
        from: from.into(),
        run,
        seq,
        name: "deploy".into(),
        payload: Bytes::from(format!("{from}/{run}/{seq}")),
    }
}

fn alive(name: &str, port: u16) -> Message {
    Message::Update(Update::Alive(Alive {
        name: name.into(),
        run: 1,
        incarnation: 0,
        addr: addr(port),
        meta: Bytes::new(),
    }))
}

fn feed(s: &mut Swim, now: Instant, msgs: &[Message]) {
    s.handle_datagram(now, addr(9), &codec::encode_messages("", msgs))
        .unwrap();
}

fn delivered(s: &mut Swim) -> Vec<UserEvent> {
    std::iter::from_fn(|| s.poll_user_event()).collect()
}

fn limits() -> Limits {
    Limits {
        max_stream: 1 << 20,
        max_meta: 512,
        max_members: 100_000,
    }
}

/// The messages of every datagram `s` has queued.
fn datagrams(s: &mut Swim) -> Vec<Vec<Message>> {
    std::iter::from_fn(|| s.poll_transmit())
        .filter(|t| t.channel == Channel::Datagram)
        .map(|t| {
            codec::decode(&t.payload, "", &limits(), Transport::Datagram)
                .unwrap()
                .messages
        })
        .collect()
}

#[test]
fn the_origin_delivers_its_own_event_and_a_receiver_delivers_each_once() {
    let now = Instant::now();
    let mut a = node("a", 1, now);
    let seq = a
        .broadcast(now, "deploy", Bytes::from_static(b"v42"))
        .unwrap();
    assert_eq!(seq, 1);
    let own = delivered(&mut a);
    assert_eq!(own.len(), 1, "serf delivers to the origin too");
    assert_eq!((own[0].from.as_str(), own[0].seq), ("a", 1));
    assert_eq!(a.stats().user_events_sent, 1);
    // Its own event coming back is not delivered again.
    feed(&mut a, now, &[Message::UserEvent(own[0].clone())]);
    assert!(delivered(&mut a).is_empty());

    let mut b = node("b", 2, now);
    let e = Message::UserEvent(event("a", 1, 1));
    feed(&mut b, now, &[e.clone(), e.clone()]);
    feed(&mut b, now, std::slice::from_ref(&e));
    assert_eq!(delivered(&mut b), vec![event("a", 1, 1)]);
    feed(&mut b, now, &[Message::UserEvent(event("a", 1, 3)), e]);
    assert_eq!(
        delivered(&mut b),
        vec![event("a", 1, 3)],
        "out of order is fine"
    );
    let st = b.stats();
    assert_eq!((st.user_events_received, st.user_events_duplicates), (2, 3));
}

#[test]
fn a_restarted_origins_new_run_is_delivered_and_its_old_run_is_not() {
    let now = Instant::now();
    let mut b = node("b", 2, now);
    feed(&mut b, now, &[Message::UserEvent(event("a", 1, 1))]);
    feed(&mut b, now, &[Message::UserEvent(event("a", 2, 1))]);
    assert_eq!(delivered(&mut b), vec![event("a", 1, 1), event("a", 2, 1)]);
    // A late event of the old run could have been delivered already: it is not risked.
    feed(&mut b, now, &[Message::UserEvent(event("a", 1, 2))]);
    assert!(delivered(&mut b).is_empty());
    assert_eq!(b.stats().user_events_duplicates, 1);
}

#[test]
fn every_bound_is_refused_with_its_error_and_nothing_is_queued() {
    let now = Instant::now();
    let mut a = node("a", 1, now);
    let max = a.max_user_event_len();
    let room = a.config().max_datagram;
    assert!(max > 400 && max < room / 2, "{max} of {room}");
    let refuse = |a: &mut Swim, name: &str, len: usize| {
        a.broadcast(now, name, Bytes::from(vec![b'x'; len]))
            .unwrap_err()
    };
    assert_eq!(refuse(&mut a, "", 1), UserEventError::EmptyName);
    assert_eq!(
        refuse(&mut a, &"n".repeat(65), 0),
        UserEventError::NameTooLong { len: 65, limit: 64 }
    );
    assert_eq!(
        refuse(&mut a, "deploy", max - 5),
        UserEventError::TooLarge {
            len: max + 1,
            limit: max
        }
    );
    assert!(delivered(&mut a).is_empty());
    assert_eq!(a.stats().user_events_sent, 0);
    // The largest event is taken; the queue then fills, and is refused past its bound.
    a.broadcast(now, "deploy", Bytes::from(vec![b'x'; max - 6]))
        .unwrap();
    for i in 1..USER_EVENT_QUEUE {
        a.broadcast(now, "tick", Bytes::from(i.to_string()))
            .unwrap();
    }
    assert_eq!(
        refuse(&mut a, "tick", 1),
        UserEventError::QueueFull {
            limit: USER_EVENT_QUEUE
        }
    );
    assert_eq!(delivered(&mut a).len(), USER_EVENT_QUEUE);
    a.leave(now);
    assert_eq!(refuse(&mut a, "tick", 1), UserEventError::Left);
}

/// An event is sent its retransmit count, never twice in one datagram (the share is taken
/// first and what room is left after the membership rumours next: the same event must not
/// be picked again), and then leaves the queue.
#[test]
fn an_event_is_sent_its_retransmit_count_and_once_per_datagram() {
    let now = Instant::now();
    let mut a = node("a", 1, now);
    let (b, c) = (node("b", 2, now), node("c", 3, now));
    a.assume_alive(now, [b.local(), c.local()]);
    let _ = datagrams(&mut a);
    a.broadcast(now, "deploy", Bytes::from_static(b"v42"))
        .unwrap();
    let mut copies = Vec::new();
    let mut t = now;
    for _ in 0..20 {
        t += a.config().gossip_interval;
        a.handle_timeout(t);
        for msgs in datagrams(&mut a) {
            let n = msgs
                .iter()
                .filter(|m| matches!(m, Message::UserEvent(_)))
                .count();
            copies.push(n);
        }
    }
    assert!(copies.iter().all(|&n| n <= 1), "{copies:?}");
    // Three members: 4 × ceil(log10(3 + 1)) sends.
    assert_eq!(copies.iter().sum::<usize>(), 4, "{copies:?}");
}

/// memberlist#299: with a long queue of membership rumours, all newer than the event, a user
/// event still goes out in the very next datagram, the largest one included, and the
/// membership rumours still get the rest of it.
#[test]
fn a_user_event_goes_out_in_the_next_datagram_under_a_flood_of_rumours() {
    let now = Instant::now();
    let mut a = node("a", 1, now);
    let max = a.max_user_event_len();
    a.broadcast(now, "big", Bytes::from(vec![b'x'; max - 3]))
        .unwrap();
    // 1,200 newcomers, 60 a packet (the per-packet bound is 64): 1,200 alive rumours queued
    // behind the event, each newer than it.
    for p in 0..20u16 {
        let msgs: Vec<Message> = (0..60u16)
            .map(|i| alive(&format!("m{p}-{i}"), 2000 + p * 60 + i))
            .collect();
        feed(&mut a, now, &msgs);
    }
    assert_eq!(a.members().count(), 1201);
    let _ = delivered(&mut a);
    let _ = datagrams(&mut a);
    a.handle_timeout(now + a.config().gossip_interval * 2);
    let sent = datagrams(&mut a);
    let first = sent.first().expect("a gossip round sends datagrams");
    let events = first
        .iter()
        .filter(|m| matches!(m, Message::UserEvent(e) if e.name == "big"))
        .count();
    let rumours = first
        .iter()
        .filter(|m| matches!(m, Message::Update(_)))
        .count();
    assert_eq!(events, 1, "the event rides in the first datagram");
    assert!(rumours >= 10, "membership still has its share: {rumours}");
}

/// A malformed event costs only itself: the rumour beside it is applied, nothing is
/// delivered, and the frame is counted (not as a decode error: the packet was taken).
#[test]
fn a_malformed_event_frame_is_dropped_alone_and_counted() {
    let now = Instant::now();
    let mut b = node("b", 2, now);
    let good = codec::encode_messages("", [&alive("c", 3)]);
    // Header: magic, version, empty label, one frame; then the alive's frame.
    let (header, frame) = good.split_at(7);
    assert_eq!(header, b"SWRG\x01\x00\x01");
    let mut bytes = b"SWRG\x01\x00\x02".to_vec();
    bytes.extend_from_slice(&[16, 3, 0xfd, 0xff, 0xff]);
    bytes.extend_from_slice(frame);
    b.handle_datagram(now, addr(9), &bytes).unwrap();
    assert!(b.member("c").is_some(), "the rumour beside it was applied");
    assert!(delivered(&mut b).is_empty());
    let st = b.stats();
    assert_eq!((st.user_events_malformed, st.decode_errors), (1, 0));
}
