//! Forwarding to the owner on loopback sockets: requests reach the owner from any node,
//! refusals name the owner and are followed, the hop limit stops a loop, no handler and full
//! queues are refused, oversized and malformed frames change nothing, and under a kill and a
//! rolling restart of every node each request gets exactly one answer: a reply, or an error
//! saying whether it may have run.

mod runtime_util;

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use runtime_util::{bound, builder, converged, init_tracing, mesh_of, wait_for};
use swimring::runtime::{ForwardError, ForwardedRequests};
use swimring::wire::Key;
use swimring::{Mesh, MeshBuilder, PlacementConfig, State};
use tokio::io::AsyncWriteExt;

/// How many times each request body was served, on any node.
type Served = Arc<Mutex<HashMap<Bytes, u32>>>;

/// Serves `mesh`'s forwarded requests until its queue ends: records each body in `served`
/// and replies `name|body`.
fn echo(mesh: &Mesh, served: &Served) {
    spawn_echo(
        mesh.name().to_owned(),
        mesh.serve_forwarded(),
        Arc::clone(served),
    );
}

fn spawn_echo(name: String, mut queue: ForwardedRequests, served: Served) {
    tokio::spawn(async move {
        while let Some(req) = queue.recv().await {
            *served
                .lock()
                .unwrap()
                .entry(req.body().clone())
                .or_default() += 1;
            let reply = format!("{name}|{}", String::from_utf8_lossy(req.body()));
            req.reply(reply);
        }
    });
}

/// Whether every node sees every other alive on the same ring.
fn agreed(nodes: &[Mesh]) -> bool {
    converged(nodes)
        && nodes
            .iter()
            .all(|n| n.ring_checksum() == nodes[0].ring_checksum())
}

/// [`mesh_of`] nodes that each also have a ring, so every one can place a key.
async fn placed_mesh(
    prefix: &str,
    block: u8,
    n: usize,
    edit: impl Fn(usize, MeshBuilder) -> MeshBuilder,
) -> Vec<Mesh> {
    let nodes = mesh_of(prefix, block, n, edit).await;
    let limit = bound(nodes[0].config(), n);
    wait_for("every node has a ring", limit, || {
        nodes.iter().all(|n| n.owner("k").is_some())
    })
    .await;
    nodes
}

fn key_for(i: usize) -> String {
    format!("key-{i}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_reach_the_owner_from_every_node_sealed() {
    init_tracing();
    let sealed = |_, b: MeshBuilder| b.keys([Key::from_bytes([7; 32])]);
    let nodes = placed_mesh("fw-a", 60, 3, sealed).await;
    let limit = bound(nodes[0].config(), 3);
    wait_for("the nodes agree on the ring", limit, || agreed(&nodes)).await;
    let served = Served::default();
    nodes.iter().for_each(|n| echo(n, &served));
    for caller in &nodes {
        for i in 0..40 {
            let key = key_for(i);
            let body = format!("{}-{i}", caller.name());
            let reply = caller.forward(&key, body.clone()).await.expect("a reply");
            let owner = caller.owner(&key).unwrap();
            assert_eq!(reply, Bytes::from(format!("{owner}|{body}")), "{key}");
        }
    }
    let total: u32 = served.lock().unwrap().values().sum();
    assert_eq!(total, 120, "each request served once");
    for n in &nodes {
        let s = n.stats();
        assert!(s.forwards_sent > 0, "{}: some keys are remote", n.name());
        assert_eq!(
            s.forwards_refused + s.forwards_failed + s.forwards_malformed,
            0
        );
        assert_eq!(s.decrypt_failures, 0, "every forward frame opened");
    }
    // Requests for keys the caller owns never touched the network.
    let sent: u64 = nodes.iter().map(|n| n.stats().forwards_sent).sum();
    let served_total: u64 = nodes.iter().map(|n| n.stats().forwards_served).sum();
    assert_eq!(served_total, 120);
    assert!(sent < 120, "local keys are served locally ({sent} sent)");
}

/// A node tagged `own=<tag>`, placing work only on members tagged `own=<owns>`: nodes built
/// this way disagree on owners on purpose.
fn owns(b: MeshBuilder, tag: &str, owns: &str) -> MeshBuilder {
    let tags = BTreeMap::from([("own".to_owned(), tag.to_owned())]);
    let mut placement = PlacementConfig::default();
    placement.filter = Some(("own".into(), owns.into()));
    b.tags(&tags).placement(placement)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_non_owner_refuses_with_the_owner_and_the_caller_follows_it() {
    init_tracing();
    // a thinks b owns everything, b thinks c does, and c agrees.
    let views = [("a", "b"), ("b", "c"), ("c", "c")];
    let nodes = placed_mesh("fw-b", 61, 3, |i, b| owns(b, views[i].0, views[i].1)).await;
    let served = Served::default();
    nodes.iter().for_each(|n| echo(n, &served));
    let (a, b, c) = (&nodes[0], &nodes[1], &nodes[2]);
    assert_eq!(a.owner("k").as_deref(), Some(b.name()));
    let reply = a.forward("k", "hello").await.expect("c serves it");
    assert_eq!(reply, Bytes::from(format!("{}|hello", c.name())));
    assert_eq!(b.stats().forwards_refused, 1, "b refused, naming c");
    assert_eq!(b.stats().forwards_served, 0);
    assert_eq!(c.stats().forwards_served, 1);
    assert_eq!(a.stats().forwards_sent, 2, "one to b, then the retry to c");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hop_limit_stops_a_loop() {
    init_tracing();
    // b names c, c names b: a request bounces between them until its hops run out.
    let views = [("a", "b"), ("b", "c"), ("c", "b")];
    let nodes = placed_mesh("fw-c", 62, 3, |i, b| {
        owns(b, views[i].0, views[i].1).forward_hop_limit(5)
    })
    .await;
    let served = Served::default();
    nodes.iter().for_each(|n| echo(n, &served));
    let err = nodes[0].forward("k", "loop").await.unwrap_err();
    assert_eq!(err, ForwardError::HopLimit { limit: 5 });
    assert!(!err.may_have_run());
    let refused: u64 = nodes.iter().map(|n| n.stats().forwards_refused).sum();
    assert_eq!(refused, 5, "five nodes visited, each refused");
    assert!(served.lock().unwrap().is_empty(), "no handler ran it");
    assert_eq!(nodes[0].stats().forwards_failed, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_handler_a_full_queue_and_a_dropped_request_are_told_apart() {
    init_tracing();
    let nodes = placed_mesh("fw-d", 63, 2, |_, b| b.forward_queue(1)).await;
    let limit = bound(nodes[0].config(), 2);
    wait_for("the nodes agree on the ring", limit, || agreed(&nodes)).await;
    let (a, b) = (nodes[0].clone(), nodes[1].clone());
    let key = (0..)
        .map(key_for)
        .find(|k| b.owner(k).as_deref() == Some(b.name()))
        .unwrap();
    let err = a.forward(&key, "x").await.unwrap_err();
    assert_eq!(
        err,
        ForwardError::NoHandler {
            node: b.name().into()
        }
    );
    // A handler that never reads: the first request waits in its queue, the second finds it full.
    let queue = b.serve_forwarded();
    let first = tokio::spawn({
        let (a, key) = (a.clone(), key.clone());
        async move { a.forward(&key, "first").await }
    });
    wait_for("b queued the first request", limit, || {
        b.stats().forwards_served == 1
    })
    .await;
    let err = a.forward(&key, "second").await.unwrap_err();
    assert_eq!(
        err,
        ForwardError::Busy {
            node: b.name().into()
        }
    );
    assert_eq!(b.stats().forwards_busy, 1);
    // Unregistering drops the queued request: its caller hears it may have run.
    drop(queue);
    let err = first.await.unwrap().unwrap_err();
    assert_eq!(
        err,
        ForwardError::Dropped {
            node: b.name().into()
        }
    );
    assert!(err.may_have_run());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_and_malformed_frames_are_refused_and_change_nothing() {
    init_tracing();
    // b accepts smaller bodies than a sends.
    let nodes = placed_mesh("fw-e", 64, 2, |i, b| {
        b.forward_max_payload(if i == 0 { 64 << 10 } else { 16 << 10 })
    })
    .await;
    let limit = bound(nodes[0].config(), 2);
    wait_for("the nodes agree on the ring", limit, || agreed(&nodes)).await;
    let (a, b) = (&nodes[0], &nodes[1]);
    let served = Served::default();
    nodes.iter().for_each(|n| echo(n, &served));
    let key = (0..)
        .map(key_for)
        .find(|k| b.owner(k).as_deref() == Some(b.name()))
        .unwrap();
    let huge = vec![b'x'; (64 << 10) + 1];
    let err = a.forward(&key, huge).await.unwrap_err();
    assert_eq!(
        err,
        ForwardError::TooLarge {
            len: (64 << 10) + 1,
            limit: 64 << 10
        }
    );
    assert_eq!(a.stats().forwards_sent, 0, "refused before sending");
    let err = a.forward(&key, vec![b'y'; 20 << 10]).await.unwrap_err();
    assert_eq!(
        err,
        ForwardError::TooLarge {
            len: 20 << 10,
            limit: 16 << 10
        },
        "b's limit"
    );
    assert_eq!(b.stats().forwards_refused, 1);
    assert!(served.lock().unwrap().is_empty());

    // A forward frame whose body is garbage, then an announced length past max_stream.
    let mut garbage = b"SWRG\x01\x00\x01\x0b\x03".to_vec();
    garbage.extend_from_slice(&[0xff; 3]);
    let mut s = tokio::net::TcpStream::connect(b.local_addr())
        .await
        .unwrap();
    s.write_all(&(garbage.len() as u32).to_be_bytes())
        .await
        .unwrap();
    s.write_all(&garbage).await.unwrap();
    wait_for("b counts the malformed frame", limit, || {
        b.stats().forwards_malformed == 1
    })
    .await;
    let mut first = codec_request(&key);
    let mut s = tokio::net::TcpStream::connect(b.local_addr())
        .await
        .unwrap();
    s.write_all(&(first.len() as u32).to_be_bytes())
        .await
        .unwrap();
    s.write_all(&first).await.unwrap();
    first.clear();
    s.write_all(&u32::MAX.to_be_bytes()).await.unwrap();
    wait_for("b counts the oversized frame", limit, || {
        b.stats().forwards_malformed == 2
    })
    .await;
    // Nothing changed: the mesh and forwarding still work.
    let reply = a.forward(&key, "after").await.expect("a reply");
    assert_eq!(reply, Bytes::from(format!("{}|after", b.name())));
    assert!(agreed(&nodes));
}

/// A well-formed plain forward request for `key`.
fn codec_request(key: &str) -> Vec<u8> {
    use swimring::wire::codec::encode_forward;
    use swimring::wire::forward::{ForwardFrame, ForwardRequest};
    let req = ForwardRequest {
        id: 1,
        hops: 0,
        key: Bytes::copy_from_slice(key.as_bytes()),
        body: Bytes::from_static(b"raw"),
    };
    encode_forward("", &ForwardFrame::Request(req)).to_vec()
}

/// What callers saw, for the accounting at the end of a churn test.
#[derive(Default)]
struct Tally {
    issued: AtomicU64,
    replied: AtomicU64,
    /// Errors that guarantee no handler ran the request.
    refused: AtomicU64,
    /// Errors that say the request may have run.
    uncertain: AtomicU64,
    /// Bodies of requests answered with a refusal: none may have been served.
    refused_bodies: Mutex<Vec<Bytes>>,
}

/// Forwards requests with unique bodies through whichever node `pick` gives, until `stop`;
/// every reply must name the body it answers.
fn load(
    id: usize,
    pick: impl Fn(usize) -> Option<Mesh> + Send + 'static,
    stop: Arc<AtomicBool>,
    tally: Arc<Tally>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut n = 0usize;
        while !stop.load(Ordering::Relaxed) {
            n += 1;
            let Some(caller) = pick(n) else {
                tokio::task::yield_now().await;
                continue;
            };
            let body = Bytes::from(format!("c{id}-{n}"));
            tally.issued.fetch_add(1, Ordering::Relaxed);
            match caller.forward(key_for(n % 64), body.clone()).await {
                Ok(reply) => {
                    assert!(reply.ends_with(&body), "reply {reply:?} to {body:?}");
                    tally.replied.fetch_add(1, Ordering::Relaxed);
                }
                Err(e) if e.may_have_run() => {
                    tally.uncertain.fetch_add(1, Ordering::Relaxed);
                }
                Err(_) => {
                    tally.refused.fetch_add(1, Ordering::Relaxed);
                    tally.refused_bodies.lock().unwrap().push(body);
                }
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    })
}

/// Every request got exactly one answer, none was served twice, and none refused was served.
fn account(tally: &Tally, served: &Served) {
    let issued = tally.issued.load(Ordering::Relaxed);
    let replied = tally.replied.load(Ordering::Relaxed);
    let refused = tally.refused.load(Ordering::Relaxed);
    let uncertain = tally.uncertain.load(Ordering::Relaxed);
    eprintln!("issued {issued}: replied {replied}, refused {refused}, may have run {uncertain}");
    assert_eq!(
        issued,
        replied + refused + uncertain,
        "one answer per request"
    );
    assert!(replied > 0);
    let served = served.lock().unwrap();
    assert!(served.values().all(|&n| n == 1), "no request served twice");
    for body in tally.refused_bodies.lock().unwrap().iter() {
        assert!(
            !served.contains_key(body),
            "{body:?} was refused yet served"
        );
    }
    assert!(served.len() as u64 >= replied, "every reply was served");
}

/// Whether every key forwards with a reply from each of `nodes`.
async fn all_keys_answer(nodes: &[Mesh]) -> bool {
    for n in nodes {
        for i in 0..64 {
            let probe = format!("probe-{}-{i}", n.name());
            if n.forward(key_for(i), probe).await.is_err() {
                return false;
            }
        }
    }
    true
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_an_owner_loses_no_request_and_its_keys_move() {
    init_tracing();
    let nodes = placed_mesh("fw-f", 65, 4, |_, b| b).await;
    let served = Served::default();
    nodes.iter().for_each(|n| echo(n, &served));
    let (stop, tally) = (Arc::new(AtomicBool::new(false)), Arc::new(Tally::default()));
    let survivors: Vec<Mesh> = nodes[..3].to_vec();
    let loads: Vec<_> = (0..3)
        .map(|i| {
            let s = survivors.clone();
            load(
                i,
                move |n| Some(s[n % 3].clone()),
                Arc::clone(&stop),
                Arc::clone(&tally),
            )
        })
        .collect();
    let limit = bound(nodes[0].config(), 4);
    let before = tally.replied.load(Ordering::Relaxed);
    wait_for("requests flow", limit, || {
        tally.replied.load(Ordering::Relaxed) > before + 50
    })
    .await;
    let victim = nodes[3].clone();
    victim.shutdown().await;
    wait_for("the survivors see the victim dead", limit, || {
        survivors.iter().all(|s| {
            s.member(victim.name())
                .is_some_and(|m| m.state == State::Dead)
        })
    })
    .await;
    wait_for(
        "the survivors placed the victim's keys again",
        limit,
        || {
            agreed(&survivors)
                && survivors
                    .iter()
                    .all(|s| (0..64).all(|i| s.owner(key_for(i)).as_deref() != Some(victim.name())))
        },
    )
    .await;
    let after = tally.replied.load(Ordering::Relaxed);
    wait_for("requests flow again", limit, || {
        tally.replied.load(Ordering::Relaxed) > after + 50
    })
    .await;
    assert!(
        all_keys_answer(&survivors).await,
        "every key has a live owner serving it"
    );
    stop.store(true, Ordering::Relaxed);
    for l in loads {
        l.await.unwrap();
    }
    account(&tally, &served);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolling_restart_of_every_node_loses_no_request() {
    init_tracing();
    let nodes = placed_mesh("fw-g", 66, 3, |_, b| b).await;
    let addrs: Vec<SocketAddr> = nodes.iter().map(Mesh::local_addr).collect();
    let served = Served::default();
    nodes.iter().for_each(|n| echo(n, &served));
    let live: Arc<Mutex<Vec<Option<Mesh>>>> =
        Arc::new(Mutex::new(nodes.iter().cloned().map(Some).collect()));
    let (stop, tally) = (Arc::new(AtomicBool::new(false)), Arc::new(Tally::default()));
    let loads: Vec<_> = (0..3)
        .map(|i| {
            let live = Arc::clone(&live);
            let pick = move |n: usize| live.lock().unwrap()[n % 3].clone();
            load(i, pick, Arc::clone(&stop), Arc::clone(&tally))
        })
        .collect();
    drop(nodes);
    let limit = bound(&swimring::Preset::Local.config(), 3);
    for i in 0..3 {
        let node = live.lock().unwrap()[i].take().unwrap();
        let name = node.name().to_owned();
        node.leave(Duration::from_secs(2)).await.unwrap();
        drop(node);
        let seed = addrs[(i + 1) % 3];
        let back = builder(&name, addrs[i], &[seed])
            .start()
            .await
            .expect("restarts");
        echo(&back, &served);
        live.lock().unwrap()[i] = Some(back);
        let all = || {
            live.lock()
                .unwrap()
                .iter()
                .flatten()
                .cloned()
                .collect::<Vec<_>>()
        };
        wait_for("the mesh agrees after the restart", limit, || {
            let all = all();
            all.len() == 3 && agreed(&all)
        })
        .await;
        let now = tally.replied.load(Ordering::Relaxed);
        wait_for("requests flow", limit, || {
            tally.replied.load(Ordering::Relaxed) > now + 30
        })
        .await;
    }
    stop.store(true, Ordering::Relaxed);
    for l in loads {
        l.await.unwrap();
    }
    account(&tally, &served);
}
