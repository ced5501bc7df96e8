//! Forwarded requests per second and their latency on loopback: two sealed nodes in one
//! process, every request sent by one to keys the other owns, answered by an echo handler.
//! Not criterion: throughput needs many requests in flight at once, so each run keeps
//! `concurrency` callers busy for a few seconds and reports requests/s, p50 and p99.
//!
//! `cargo bench --bench forward` (`FORWARD_BENCH_SECS=5` for longer runs).
#![allow(clippy::disallowed_methods)] // a benchmark reads the clock

use std::sync::Arc;
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

/// Runs `concurrency` callers on `from` for `secs`; returns requests/s and sorted latencies.
async fn run(
    from: &Mesh,
    keys: &Arc<Vec<String>>,
    concurrency: usize,
    secs: f64,
) -> (f64, Vec<Duration>) {
    let body = Bytes::from(vec![b'x'; 100]);
    let start = Instant::now();
    let until = start + Duration::from_secs_f64(secs);
    let callers: Vec<_> = (0..concurrency)
        .map(|c| {
            let (mesh, keys, body) = (from.clone(), Arc::clone(keys), body.clone());
            tokio::spawn(async move {
                let mut lat = Vec::new();
                let mut i = c;
                while Instant::now() < until {
                    let t = Instant::now();
                    mesh.forward(&keys[i % keys.len()], body.clone())
                        .await
                        .expect("a reply");
                    lat.push(t.elapsed());
                    i += concurrency;
                }
                lat
            })
        })
        .collect();
    let mut all = Vec::new();
    for c in callers {
        all.extend(c.await.unwrap());
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
    let secs: f64 = std::env::var("FORWARD_BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3.0);
    let a = node("bench-a", &[]).await;
    let b = node("bench-b", &[a.local_addr().to_string()]).await;
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
            pct(&lat, 0.5).as_secs_f64() * 1e6,
            pct(&lat, 0.99).as_secs_f64() * 1e6,
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
