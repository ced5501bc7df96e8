//! Codec and protocol-core throughput: encode and decode per message, datagrams handled per
//! second by one node holding a 1,000- and a 10,000-member view, and memory per member held.
//!
//! `cargo bench --bench wire` (add `-- --quick` for a fast pass).
#![allow(missing_docs, clippy::disallowed_methods)] // a bench takes one real instant as its epoch

use std::hint::black_box;
use std::net::SocketAddr;
use std::time::Instant;

use bytes::Bytes;
use criterion::{Criterion, Throughput};
use swimring::proto::{Config, Identity, Swim};
use swimring::wire::codec::{self, Limits, Transport};
use swimring::wire::{Ack, Alive, Member, Message, Ping, PushPull, State, Update};

fn addr(i: u32) -> SocketAddr {
    SocketAddr::from(([10, (i >> 16) as u8, (i >> 8) as u8, i as u8], 7946))
}

fn alive(i: u32) -> Message {
    Message::Update(Update::Alive(Alive {
        name: format!("node-{i:05}"),
        run: 1_700_000_000_000,
        incarnation: 3,
        addr: addr(i),
        meta: Bytes::from_static(b"\x01\x04role\x06worker"),
    }))
}

fn full_state(n: u32) -> Message {
    Message::PushPull(PushPull {
        from: "node-00001".into(),
        join: true,
        reply: false,
        members: members(n),
    })
}

fn limits() -> Limits {
    Limits {
        max_stream: 16 << 20,
        max_meta: 512,
        max_members: 100_000,
    }
}

fn node(now: Instant) -> Swim {
    let id = Identity {
        name: "node-00000".into(),
        addr: addr(0),
        run: 1,
        meta: Bytes::new(),
    };
    Swim::new(Config::lan(), id, 7, now).unwrap()
}

fn members(n: u32) -> Vec<Member> {
    (1..=n)
        .map(|i| Member {
            name: format!("node-{i:05}"),
            addr: addr(i),
            run: 1_700_000_000_000,
            incarnation: 3,
            state: State::Alive,
            meta: Bytes::new(),
        })
        .collect()
}

fn drain(s: &mut Swim) {
    while s.poll_transmit().is_some() {}
    while s.poll_event().is_some() {}
}

/// A node at address 0 that has learned `n` other members through one full-state exchange,
/// as a joining node does (with a join rumour queued for each).
fn node_with_view(n: u32, now: Instant) -> Swim {
    let mut s = node(now);
    let state = codec::encode_messages("", [&full_state(n)]);
    s.handle_stream(now, &state).unwrap();
    drain(&mut s);
    s
}

/// A node at address 0 holding `n` other members as a settled mesh does: every member
/// alive, no rumour left to send.
fn node_settled(view: &[Member], now: Instant) -> Swim {
    let mut s = node(now);
    s.assume_alive(now, view);
    drain(&mut s);
    s
}

fn codec_benches(c: &mut Criterion) {
    let mut g = c.benchmark_group("codec");
    let cases = [
        (
            "ping",
            Message::Ping(Ping {
                seq: 7,
                target: "node-00042".into(),
            }),
        ),
        ("ack", Message::Ack(Ack { seq: 7 })),
        ("alive", alive(42)),
        ("push_pull_100", full_state(100)),
    ];
    for (name, msg) in &cases {
        let bytes = codec::encode_messages("", [msg]);
        g.throughput(Throughput::Bytes(bytes.len() as u64));
        g.bench_function(format!("encode/{name}"), |b| {
            b.iter(|| codec::encode_messages("", [black_box(msg)]))
        });
        g.bench_function(format!("decode/{name}"), |b| {
            b.iter(|| codec::decode(black_box(&bytes), "", &limits(), Transport::Stream).unwrap())
        });
    }
    g.finish();
}

fn core_benches(c: &mut Criterion) {
    let now = Instant::now();
    for (n, mut node) in [
        (1_000, node_with_view(1_000, now)),
        (10_000, node_settled(&members(10_000), now)),
    ] {
        let mut g = c.benchmark_group(format!("core_{n}_members"));
        g.throughput(Throughput::Elements(1));
        // A probe for this node: decode, answer with an ack carrying piggybacked rumours.
        let ping = codec::encode_messages(
            "",
            [&Message::Ping(Ping {
                seq: 1,
                target: "node-00000".into(),
            })],
        );
        g.bench_function("handle_ping", |b| {
            b.iter(|| {
                node.handle_datagram(now, addr(5), black_box(&ping))
                    .unwrap();
                while let Some(t) = node.poll_transmit() {
                    black_box(t);
                }
            })
        });
        // Steady-state gossip: a full datagram of rumours this node already knows.
        let rumours: Vec<Message> = (1..=20).map(alive).collect();
        let gossip = codec::encode_messages("", &rumours);
        g.bench_function("handle_gossip_20_rumours", |b| {
            b.iter(|| {
                node.handle_datagram(now, addr(5), black_box(&gossip))
                    .unwrap()
            })
        });
        g.finish();
    }
}

fn rss_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

/// Resident memory per member, from /proc/self/statm around building a 10,000-member view:
/// once as a settled mesh holds it, once just after a join's full-state exchange, which also
/// queues a join rumour per member.
fn report_memory_per_member() {
    let n = 10_000;
    let now = Instant::now();
    // The input view is built first, so that only what the node holds is measured.
    let view = members(n);
    let before = rss_bytes();
    let settled = node_settled(&view, now);
    let after = rss_bytes();
    report("settled", settled.members().count(), n, before, after);
    let before = rss_bytes();
    let joined = node_with_view(n, now);
    let after = rss_bytes();
    report("just joined", joined.members().count(), n, before, after);
}

fn report(how: &str, held: usize, n: u32, before: Option<u64>, after: Option<u64>) {
    if let (Some(b), Some(a)) = (before, after) {
        println!(
            "memory, {how}: {held} members held, {:.0} bytes resident per member",
            a.saturating_sub(b) as f64 / f64::from(n)
        );
    }
}

fn main() {
    report_memory_per_member();
    let mut c = Criterion::default().configure_from_args();
    codec_benches(&mut c);
    core_benches(&mut c);
    c.final_summary();
}
