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

mod loopback;

use std::time::{Duration, Instant};

use bytes::Bytes;
use loopback::{busy, micros, sealed_node, secs_from_env};
use swimring::Mesh;

/// Runs `senders` tasks sending 100 bytes from `a` to `to` for `secs`; returns messages sent
/// per second and the sorted latencies of each send.
async fn run(
    a: &Mesh,
    to: &str,
    reliable: bool,
    senders: usize,
    secs: f64,
) -> (f64, Vec<Duration>) {
    let body = Bytes::from(vec![b'x'; 100]);
    let (mesh, to) = (a.clone(), to.to_owned());
    busy(senders, secs, move |_| {
        let (mesh, to, body) = (mesh.clone(), to.clone(), body.clone());
        async move {
            if reliable {
                mesh.send_reliable(&to, body).await.expect("accepted");
            } else {
                mesh.send(&to, body).await.expect("sent");
                // Gives the loop (and the receiver) a turn, as an application would.
                tokio::task::yield_now().await;
            }
        }
    })
    .await
}

#[tokio::main]
async fn main() {
    let secs = secs_from_env("MESSAGES_BENCH_SECS", 3.0);
    let a = sealed_node("bench-a", &[]).await;
    let b = sealed_node("bench-b", &[a.local_addr().to_string()]).await;
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
            micros(&lat, 0.5),
            micros(&lat, 0.99),
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
