//! Messages per second on loopback: two sealed nodes in one process, one sending 100-byte
//! messages to the other, whose application drains its queue as fast as it can. Not
//! criterion: throughput needs many sends in flight at once, so each run keeps `senders`
//! tasks busy for a few seconds and reports what arrived.
//!
//! Best effort: messages/s handed to the socket and received by the subscriber, and how many
//! were lost (the socket or the queue dropped them). Reliable: messages/s accepted, with the
//! latency of one `send_reliable` (until the peer has queued it).
//!
//! `cargo bench --bench messages` (`MESSAGES_BENCH_SECS=5` for longer runs).
#![allow(clippy::disallowed_methods)] // a benchmark reads the clock

use std::time::{Duration, Instant};

use bytes::Bytes;
use swimring::wire::Key;
use swimring::{Mesh, Preset};

async fn node(name: &str, seeds: &[String]) -> Mesh {
    Mesh::builder()
        .name(name)
        .bind("127.0.0.1:0".parse().unwrap())
        .preset(Preset::Local)
        .keys([Key::from_bytes([9; 32])])
        .seeds(seeds.iter().cloned())
        .start()
        .await
        .expect("node starts")
}

/// Runs `senders` tasks sending from `a` to `b` for `secs`; returns messages sent per
/// second and the sorted latencies of each send.
async fn run(
    a: &Mesh,
    to: &str,
    reliable: bool,
    senders: usize,
    secs: f64,
) -> (f64, Vec<Duration>) {
    let body = Bytes::from(vec![b'x'; 100]);
    let start = Instant::now();
    let until = start + Duration::from_secs_f64(secs);
    let tasks: Vec<_> = (0..senders)
        .map(|_| {
            let (mesh, to, body) = (a.clone(), to.to_owned(), body.clone());
            tokio::spawn(async move {
                let mut lat = Vec::new();
                while Instant::now() < until {
                    let t = Instant::now();
                    if reliable {
                        mesh.send_reliable(&to, body.clone())
                            .await
                            .expect("accepted");
                    } else {
                        mesh.send(&to, body.clone()).await.expect("sent");
                        // Gives the loop (and the receiver) a turn, as an application would.
                        tokio::task::yield_now().await;
                    }
                    lat.push(t.elapsed());
                }
                lat
            })
        })
        .collect();
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    let rate = all.len() as f64 / start.elapsed().as_secs_f64();
    all.sort();
    (rate, all)
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p) as usize]
}

#[tokio::main]
async fn main() {
    let secs: f64 = std::env::var("MESSAGES_BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3.0);
    let a = node("bench-a", &[]).await;
    let b = node("bench-b", &[a.local_addr().to_string()]).await;
    while a.live_count() < 2 || b.live_count() < 2 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut inbox = b.messages();
    tokio::spawn(async move { while inbox.recv().await.is_some() {} });
    run(&a, "bench-b", true, 8, 0.5).await; // warm up: connection open, caches hot
    println!("| kind | senders | sent/s | received/s | lost | p50 | p99 |");
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: |");
    for (reliable, senders) in [(false, 1), (false, 4), (true, 1), (true, 16), (true, 64)] {
        let before = (a.stats().messages_sent, b.stats().messages_received);
        let t = Instant::now();
        let (rate, lat) = run(&a, "bench-b", reliable, senders, secs).await;
        // Datagrams still in flight land within a few milliseconds on loopback.
        tokio::time::sleep(Duration::from_millis(200)).await;
        let sent = a.stats().messages_sent - before.0;
        let got = b.stats().messages_received - before.1;
        let elapsed = t.elapsed().as_secs_f64() - 0.2;
        println!(
            "| {} | {senders} | {rate:.0} | {:.0} | {:.2} % | {:.0} µs | {:.0} µs |",
            if reliable { "reliable" } else { "best effort" },
            got as f64 / elapsed,
            100.0 * sent.saturating_sub(got) as f64 / sent.max(1) as f64,
            pct(&lat, 0.5).as_secs_f64() * 1e6,
            pct(&lat, 0.99).as_secs_f64() * 1e6,
        );
    }
    let (sa, sb) = (a.stats(), b.stats());
    eprintln!(
        "sent {} received {} dropped {} send errors {}",
        sa.messages_sent, sb.messages_received, sb.messages_dropped, sa.send_errors
    );
    a.shutdown().await;
    b.shutdown().await;
}
