//! Embedding swimring in a tokio application.
//!
//! Three peers start on loopback in this one process, find each other through the first,
//! print what they see, and then one leaves gracefully. Run with
//! `cargo run --example embed` (add `RUST_LOG=swimring=debug` for the protocol's logs).

use std::collections::BTreeMap;
use std::time::Duration;

use swimring::{Event, Mesh, Preset, RecvError};

#[tokio::main]
async fn main() -> Result<(), swimring::Error> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "swimring=info".into()),
        )
        .init();

    // The first peer binds a free loopback port; it is the seed the others are given.
    // `Preset::Local` has fast timings fit for one machine; real deployments use `Lan`.
    let alpha = Mesh::builder()
        .name("alpha")
        .bind("127.0.0.1:0".parse().unwrap())
        .preset(Preset::Local)
        .start()
        .await?;
    let seed = alpha.local_addr().to_string();
    println!("alpha listens on {seed}");

    // Subscribe before anyone joins: a subscription misses nothing after it is made.
    let mut events = alpha.events();

    // The other two join through alpha, each with a tag saying what it does.
    let mut others = Vec::new();
    for (name, role) in [("beta", "api"), ("gamma", "worker")] {
        let tags = BTreeMap::from([("role".to_owned(), role.to_owned())]);
        let mesh = Mesh::builder()
            .name(name)
            .bind("127.0.0.1:0".parse().unwrap())
            .preset(Preset::Local)
            .tags(&tags)
            .seeds([seed.clone()])
            .start()
            .await?;
        others.push(mesh);
    }

    // Wait (with a bound) until alpha has heard of both: one `Joined` event each.
    let mut joined = 0;
    while joined < 2 {
        match tokio::time::timeout(Duration::from_secs(10), events.recv()).await {
            Ok(Ok(Event::Joined(m))) => {
                println!("alpha: {} joined from {}", m.name, m.addr);
                joined += 1;
            }
            Ok(Ok(other)) => println!("alpha: {}", other.kind()),
            Ok(Err(RecvError::Lagged(n))) => println!("alpha: missed {n} events"),
            Ok(Err(RecvError::Closed)) | Err(_) => break,
        }
    }

    // Queries read a snapshot: they never wait on the network.
    println!("\nalpha's view:");
    for m in alpha.members() {
        let tags = swimring::wire::codec::decode_tags(&m.meta).unwrap_or_default();
        println!("  {:6} {:20} {:?} {:?}", m.name, m.addr, m.state, tags);
    }

    // gamma leaves gracefully: everyone marks it `Left` rather than `Dead`.
    let gamma = others.pop().expect("gamma started");
    let disseminated = gamma.leave(Duration::from_secs(5)).await?;
    println!("\ngamma left (leave fully gossiped: {disseminated})");
    loop {
        match tokio::time::timeout(Duration::from_secs(10), events.recv()).await {
            Ok(Ok(Event::Left(m))) => {
                println!("alpha: {} left", m.name);
                break;
            }
            Ok(Ok(other)) => println!("alpha: {}", other.kind()),
            Ok(Err(RecvError::Lagged(n))) => println!("alpha: missed {n} events"),
            Ok(Err(RecvError::Closed)) | Err(_) => break,
        }
    }

    let s = alpha.stats();
    println!(
        "\nalpha: {} live, {} probes sent, {} datagrams in / {} out",
        alpha.live_count(),
        s.protocol.probes_sent,
        s.protocol.packets_in,
        s.protocol.packets_out
    );

    // The rest leave too; `leave` also shuts the node down.
    for mesh in others {
        mesh.leave(Duration::from_secs(2)).await?;
    }
    alpha.leave(Duration::from_secs(2)).await?;
    Ok(())
}
