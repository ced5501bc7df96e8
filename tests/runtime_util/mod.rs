//! Helpers shared by the runtime's loopback tests.
#![allow(dead_code)]

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use swimring::proto::bounds;
use swimring::{Config, Mesh, MeshBuilder, Preset, State};

#[path = "../wait/mod.rs"]
mod wait;
pub use wait::wait_for_async as wait_for;

/// Logs to the test's captured output; `RUST_LOG=swimring=debug` for more.
pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "swimring=info".into()),
        )
        .with_test_writer()
        .try_init();
}

/// Loopback address `127.77.block.host`, port 0: each test uses its own block, so tests
/// running in parallel never share an address.
pub fn lo(block: u8, host: u8) -> SocketAddr {
    SocketAddr::new(IpAddr::V4(Ipv4Addr::new(127, 77, block, host)), 0)
}

/// How long a membership change may take to reach every node of an `n`-node mesh: the
/// protocol's detection and join bounds ([`bounds`]) together, times 4 for a loaded 2-core
/// machine. It bounds a wait; it is not a speed claim.
pub fn bound(cfg: &Config, n: usize) -> Duration {
    let b = bounds(cfg, n);
    (b.detect + b.join) * 4
}

/// A builder for a node with fast timings on `addr`, joining through `seeds`.
pub fn builder(name: &str, addr: SocketAddr, seeds: &[SocketAddr]) -> MeshBuilder {
    Mesh::builder()
        .name(name)
        .bind(addr)
        .preset(Preset::Local)
        .seeds(seeds.iter().map(|s| s.to_string()))
}

/// A node with fast timings on `addr`, joining through `seeds`.
pub async fn start(name: &str, addr: SocketAddr, seeds: &[SocketAddr]) -> Mesh {
    builder(name, addr, seeds)
        .start()
        .await
        .expect("mesh starts")
}

/// Polls `cond` every 10 ms for `span`; panics naming `what` the first time it fails.
pub async fn hold_for(what: &str, span: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + span;
    while tokio::time::Instant::now() < deadline {
        assert!(cond(), "stopped holding: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Starts `n` nodes `{prefix}{i}` on block `block`, the first as everyone's seed, each
/// built by `edit`, and waits until they all see each other alive.
pub async fn mesh_of(
    prefix: &str,
    block: u8,
    n: usize,
    edit: impl Fn(usize, MeshBuilder) -> MeshBuilder,
) -> Vec<Mesh> {
    let mut nodes: Vec<Mesh> = Vec::new();
    for i in 0..n {
        let seeds: Vec<SocketAddr> = nodes.first().map(Mesh::local_addr).into_iter().collect();
        let b = builder(&format!("{prefix}{i}"), lo(block, i as u8 + 1), &seeds);
        nodes.push(edit(i, b).start().await.expect("mesh starts"));
    }
    let limit = bound(nodes[0].config(), n);
    wait_for("the nodes converge", limit, || converged(&nodes)).await;
    nodes
}

/// The keys of the tasks `node` owns now, sorted.
pub fn owned_keys(node: &Mesh) -> Vec<String> {
    node.owned_tasks().into_iter().map(|t| t.key).collect()
}

/// Whether `observer` holds `name` in `state`.
pub fn sees(observer: &Mesh, name: &str, state: State) -> bool {
    observer.member(name).is_some_and(|m| m.state == state)
}

/// Whether every mesh in `nodes` sees every other one alive.
pub fn converged(nodes: &[Mesh]) -> bool {
    nodes
        .iter()
        .all(|a| nodes.iter().all(|b| sees(a, b.name(), State::Alive)))
}
