//! The cost of encryption: datagrams sealed and opened per second (the envelope alone, and
//! with encoding or decoding), against encoding and decoding the same packet in the clear, and the cost of refusing a forged packet (what a
//! flood of junk naming a real key id costs the receiver). Prints bytes per datagram with and
//! without the envelope.
//!
//! `cargo bench --bench seal` (add `-- --quick` for a fast pass).
#![allow(missing_docs)]

use std::hint::black_box;

use bytes::Bytes;
use criterion::{Criterion, Throughput};
use swimring::wire::codec::{self, Limits, Transport};
use swimring::wire::seal::{self, Key, Keyring, NONCE_LEN, Origin, SEAL_OVERHEAD};
use swimring::wire::{Alive, Message, Ping, Update};

fn limits() -> Limits {
    Limits {
        max_stream: 1 << 20,
        max_meta: 512,
        max_members: 1000,
    }
}

/// A probe, and a datagram filled with rumours up to the LAN budget less the envelope.
fn packets() -> [(&'static str, Vec<Message>); 2] {
    let ping = vec![Message::Ping(Ping {
        seq: 7,
        target: "node-00042".into(),
    })];
    let mut gossip = Vec::new();
    let budget = 1400 - SEAL_OVERHEAD;
    for i in 0.. {
        let m = Message::Update(Update::Alive(Alive {
            name: format!("node-{i:05}"),
            run: 1_700_000_000_000,
            incarnation: 3,
            addr: ([10, 0, (i >> 8) as u8, i as u8], 7946).into(),
            meta: Bytes::from_static(b"\x01\x04role\x06worker"),
        }));
        gossip.push(m);
        if codec::encode_messages("", &gossip).len() > budget {
            gossip.pop();
            break;
        }
    }
    [("ping", ping), ("gossip_full", gossip)]
}

fn main() {
    let key = Key::from_bytes([7; 32]);
    let ring = Keyring::new([key.clone()]).unwrap();
    let origin = Origin {
        instance: 1,
        counter: 1,
    };
    let t = Transport::Datagram;
    for (name, msgs) in packets() {
        let plain = codec::encode_messages("", &msgs);
        println!(
            "bytes per datagram: {name}: {} plain, {} sealed (+{SEAL_OVERHEAD})",
            plain.len(),
            plain.len() + SEAL_OVERHEAD
        );
    }
    let mut c = Criterion::default().configure_from_args();
    let mut g = c.benchmark_group("seal");
    g.throughput(Throughput::Elements(1));
    for (name, msgs) in packets() {
        let plain = codec::encode_messages("", &msgs);
        let sealed = seal::seal(&key, "", t, origin, [3; NONCE_LEN], &plain);
        let mut forged = sealed.clone();
        let last = forged.len() - 1;
        forged[last] ^= 1;
        g.bench_function(format!("encode_plain/{name}"), |b| {
            b.iter(|| codec::encode_messages("", black_box(&msgs)))
        });
        g.bench_function(format!("encode_sealed/{name}"), |b| {
            b.iter(|| {
                let p = codec::encode_messages("", black_box(&msgs));
                seal::seal(&key, "", t, origin, [3; NONCE_LEN], &p)
            })
        });
        g.bench_function(format!("decode_plain/{name}"), |b| {
            b.iter(|| codec::decode(black_box(&plain), "", &limits(), t).unwrap())
        });
        g.bench_function(format!("decode_sealed/{name}"), |b| {
            b.iter(|| {
                let o = seal::open(&ring, "", t, black_box(&sealed)).unwrap();
                codec::decode(&o.packet, "", &limits(), t).unwrap()
            })
        });
        g.bench_function(format!("seal_only/{name}"), |b| {
            b.iter(|| seal::seal(&key, "", t, origin, [3; NONCE_LEN], black_box(&plain)))
        });
        g.bench_function(format!("open_only/{name}"), |b| {
            b.iter(|| seal::open(&ring, "", t, black_box(&sealed)).unwrap())
        });
        g.bench_function(format!("refuse_forged/{name}"), |b| {
            b.iter(|| seal::open(&ring, "", t, black_box(&forged)).unwrap_err())
        });
    }
    g.finish();
    c.final_summary();
}
