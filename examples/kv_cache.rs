//! A sharded in-memory key-value cache built on `Mesh::forward`.
//!
//! Four nodes run in this process on loopback. Each holds the entries of the keys it owns on
//! the ring, and any node accepts `get` and `put`: it forwards them to the key's owner
//! (Ringpop's "handle or forward"). Then one node is killed: once the survivors declare it
//! dead, its keys have new owners, which serve them. The entries it held are gone: this cache
//! keeps one copy, so a crash loses that node's share. (A real cache would also write to
//! `owners(key, 2)[1]`, or refill from its backing store; a miss here says so.)
//!
//! Run with `cargo run --example kv_cache`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use swimring::runtime::ForwardError;
use swimring::{Mesh, Preset, State};

/// A request is one byte of verb, then the value for a put: `g` or `p<value>`.
/// A reply is `+<value>` for a hit, `-` for a miss, `ok` for a stored put.
fn get_request() -> Bytes {
    Bytes::from_static(b"g")
}

fn put_request(value: &str) -> Bytes {
    Bytes::from(format!("p{value}"))
}

/// One cache node: its mesh handle and the entries it owns.
struct Node {
    mesh: Mesh,
    entries: Arc<Mutex<HashMap<Vec<u8>, Bytes>>>,
}

impl Node {
    /// Starts a node and its handler: every request that reaches it is for a key it owns
    /// (swimring refuses the others, naming the owner, and the caller follows).
    async fn start(name: &str, seeds: &[String]) -> Result<Node, swimring::Error> {
        let mesh = Mesh::builder()
            .name(name)
            .bind("127.0.0.1:0".parse().unwrap())
            .preset(Preset::Local)
            .seeds(seeds.iter().cloned())
            .start()
            .await?;
        let entries: Arc<Mutex<HashMap<Vec<u8>, Bytes>>> = Arc::default();
        let mut requests = mesh.serve_forwarded();
        let store = Arc::clone(&entries);
        tokio::spawn(async move {
            while let Some(req) = requests.recv().await {
                let mut store = store.lock().unwrap();
                let reply = match req.body().split_first() {
                    Some((b'p', value)) => {
                        store.insert(req.key().to_vec(), Bytes::copy_from_slice(value));
                        Bytes::from_static(b"ok")
                    }
                    _ => match store.get(req.key()) {
                        Some(v) => [&b"+"[..], v].concat().into(),
                        None => Bytes::from_static(b"-"),
                    },
                };
                drop(store);
                req.reply(reply);
            }
        });
        Ok(Node { mesh, entries })
    }

    async fn put(&self, key: &str, value: &str) -> Result<(), ForwardError> {
        self.mesh.forward(key, put_request(value)).await.map(drop)
    }

    async fn get(&self, key: &str) -> Result<Option<String>, ForwardError> {
        let reply = self.mesh.forward(key, get_request()).await?;
        Ok(reply
            .strip_prefix(b"+")
            .map(|v| String::from_utf8_lossy(v).into_owned()))
    }
}

/// Waits up to `limit` for `cond`, checking every 20 ms.
async fn wait_until(limit: Duration, cond: impl Fn() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + limit;
    while !cond() {
        if tokio::time::Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    true
}

/// Starts four nodes, the first everyone's seed, and waits until they agree on the ring.
async fn start_cluster() -> Result<Vec<Node>, Box<dyn std::error::Error>> {
    let first = Node::start("cache-0", &[]).await?;
    let seed = vec![first.mesh.local_addr().to_string()];
    let mut nodes = vec![first];
    for i in 1..4 {
        nodes.push(Node::start(&format!("cache-{i}"), &seed).await?);
    }
    if !wait_until(Duration::from_secs(10), || agreed(&nodes)).await {
        return Err("the nodes did not converge".into());
    }
    Ok(nodes)
}

/// Whether every node sees them all alive on one ring.
fn agreed(nodes: &[Node]) -> bool {
    let sum = nodes[0].mesh.ring_checksum();
    nodes
        .iter()
        .all(|n| n.mesh.live_count() == nodes.len() && n.mesh.ring_checksum() == sum)
}

/// Kills the owner of `keys[0]` without warning and waits until the survivors have declared
/// it dead and placed its keys again. Returns the keys it held.
async fn kill_an_owner(
    nodes: &mut Vec<Node>,
    keys: &[String],
) -> Result<Vec<String>, Box<dyn std::error::Error>> {
    let victim = nodes[0].mesh.owner(&keys[0]).ok_or("no owner")?;
    let at = nodes
        .iter()
        .position(|n| n.mesh.name() == victim)
        .ok_or("unknown owner")?;
    let held: Vec<String> = keys
        .iter()
        .filter(|k| nodes[0].mesh.owner(k).as_deref() == Some(victim.as_str()))
        .cloned()
        .collect();
    nodes.remove(at).mesh.shutdown().await;
    println!("killed {victim}, which held {} entries", held.len());
    // Dead in every survivor's view, and placed again: no ring names it any more.
    let gone = |nodes: &[Node]| {
        nodes.iter().all(|n| {
            n.mesh
                .member(&victim)
                .is_some_and(|m| m.state == State::Dead)
                && keys
                    .iter()
                    .all(|k| n.mesh.owner(k).as_deref() != Some(&victim))
        })
    };
    if !wait_until(Duration::from_secs(15), || gone(nodes) && agreed(nodes)).await {
        return Err("the survivors did not declare the victim dead".into());
    }
    println!("the survivors declared {victim} dead and agree on a new ring");
    Ok(held)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // 1. Four nodes on loopback.
    let mut nodes = start_cluster().await?;
    println!(
        "4 nodes agree on the ring {:016x}",
        nodes[0].mesh.ring_checksum()
    );

    // 2. Writes through one node, reads through another: each goes to the key's owner.
    let keys: Vec<String> = (0..12).map(|i| format!("user:{i}")).collect();
    for (i, key) in keys.iter().enumerate() {
        nodes[1].put(key, &format!("value-{i}")).await?;
    }
    for key in &keys {
        let owner = nodes[1].mesh.owner(key).unwrap_or_default();
        let value = nodes[2].get(key).await?;
        println!("get {key:<8} via cache-2 -> {value:?} (owner {owner})");
    }
    let held: Vec<usize> = nodes
        .iter()
        .map(|n| n.entries.lock().unwrap().len())
        .collect();
    println!("entries per node: {held:?}");

    // 3. Kill the owner of user:0.
    let lost = kill_an_owner(&mut nodes, &keys).await?;

    // 4. Every key has a live owner again. The victim's entries are misses on their new
    //    owners (one copy only); writing them again makes them hits.
    for key in &keys {
        let owner = nodes[0].mesh.owner(key).unwrap_or_default();
        let value = nodes[0].get(key).await?;
        let note = if lost.contains(key) {
            "  <- was on the killed node"
        } else {
            ""
        };
        println!("get {key:<8} -> {value:?} (owner {owner}){note}");
    }
    for key in &lost {
        nodes[1].put(key, "refilled").await?;
        let value = nodes[2].get(key).await?;
        println!("refill {key:<8} -> {value:?}");
        assert_eq!(value.as_deref(), Some("refilled"));
    }

    // 5. Leave gracefully.
    for n in &nodes {
        n.mesh.leave(Duration::from_secs(2)).await?;
    }
    println!("done");
    Ok(())
}
