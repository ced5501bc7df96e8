//! Forwarded requests per second and their latency on loopback: two sealed nodes in one
//! process, every request sent by one to keys the other owns, answered by an echo handler.
//! Not criterion: throughput needs many requests in flight at once, so each run keeps
//! `concurrency` callers busy for a few seconds and reports requests/s, p50 and p99.
//!
//! `cargo bench --bench forward` (`FORWARD_BENCH_SECS=5` for longer runs).
mod loopback;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use loopback::{busy, micros, sealed_node, secs_from_env};
use swimring::Mesh;

/// Runs `concurrency` callers on `from` for `secs`, each forwarding 100 bytes to the keys in
/// turn; returns requests/s and sorted latencies.
async fn run(
    from: &Mesh,
    keys: &Arc<Vec<String>>,
    concurrency: usize,
    secs: f64,
) -> (f64, Vec<Duration>) {
    let body = Bytes::from(vec![b'x'; 100]);
    let (mesh, keys) = (from.clone(), Arc::clone(keys));
    busy(concurrency, secs, move |i| {
        let (mesh, keys, body) = (mesh.clone(), Arc::clone(&keys), body.clone());
        async move {
            mesh.forward(&keys[i % keys.len()], body)
                .await
                .expect("a reply");
        }
    })
    .await
}

#[tokio::main]
async fn main() {
    let secs = secs_from_env("FORWARD_BENCH_SECS", 3.0);
    let a = sealed_node("bench-a", &[]).await;
    let b = sealed_node("bench-b", &[a.local_addr().to_string()]).await;
    while a.ring_checksum() != b.ring_checksum() || a.live_count() < 2 || b.live_count() < 2 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut queue = b.serve_forwarded();
    tokio::spawn(async move {
        while let Some(req) = queue.recv().await {
            let body = req.body().clone();
            req.reply(body);
        }
    });
    let keys: Arc<Vec<String>> = Arc::new(
        (0..)
            .map(|i| format!("key-{i}"))
            .filter(|k| a.owner(k).as_deref() == Some("bench-b"))
            .take(256)
            .collect(),
    );
    run(&a, &keys, 8, 0.5).await; // warm up: connection open, caches hot
    println!("| callers in flight | requests/s | p50 | p99 | vs Ringpop 20k–40k/s |");
    println!("| ---: | ---: | ---: | ---: | ---: |");
    for concurrency in [1, 16, 64, 256] {
        let (rate, lat) = run(&a, &keys, concurrency, secs).await;
        println!(
            "| {concurrency} | {rate:.0} | {:.0} µs | {:.0} µs | {:.2}–{:.2}× |",
            micros(&lat, 0.5),
            micros(&lat, 0.99),
            rate / 40_000.0,
            rate / 20_000.0,
        );
    }
    let (sa, sb) = (a.stats(), b.stats());
    eprintln!(
        "sent {} served {} failed {}",
        sa.forwards_sent, sb.forwards_served, sa.forwards_failed
    );
    a.shutdown().await;
    b.shutdown().await;
}
