//! What the loopback throughput benchmarks share: two sealed nodes in one process, callers
//! kept busy for a few seconds, and the rate and latency percentiles they measured.
#![allow(clippy::disallowed_methods)] // a benchmark reads the clock
#![allow(dead_code)] // each benchmark uses the part it needs

use std::future::Future;
use std::time::{Duration, Instant};

use swimring::wire::Key;
use swimring::{Mesh, Preset};

/// A node with the `local` timings on an ephemeral loopback port, sealed with a fixed key,
/// joining through `seeds`.
pub async fn sealed_node(name: &str, seeds: &[String]) -> Mesh {
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

/// Seconds each row runs: `var` from the environment, else `default`.
pub fn secs_from_env(var: &str, default: f64) -> f64 {
    std::env::var(var)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

/// Keeps `workers` tasks calling `op` back to back for `secs`, worker `w` passing
/// `w, w + workers, w + 2 × workers, …`; returns calls per second and every call's latency,
/// sorted.
pub async fn busy<F, Fut>(workers: usize, secs: f64, op: F) -> (f64, Vec<Duration>)
where
    F: Fn(usize) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = ()> + Send,
{
    let start = Instant::now();
    let until = start + Duration::from_secs_f64(secs);
    let tasks: Vec<_> = (0..workers)
        .map(|w| {
            let op = op.clone();
            tokio::spawn(async move {
                let mut lat = Vec::new();
                let mut i = w;
                while Instant::now() < until {
                    let t = Instant::now();
                    op(i).await;
                    lat.push(t.elapsed());
                    i += workers;
                }
                lat
            })
        })
        .collect();
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.expect("a worker finishes"));
    }
    let rate = all.len() as f64 / start.elapsed().as_secs_f64();
    all.sort();
    (rate, all)
}

/// The `p` quantile of sorted latencies, in microseconds.
pub fn micros(sorted: &[Duration], p: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * p) as usize].as_secs_f64() * 1e6
}
