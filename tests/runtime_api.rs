//! The `Mesh` API on loopback sockets: seeds by name, start-up errors, metadata, hostile
//! input, and shutdown by drop.

mod runtime_util;

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use runtime_util::*;
use swimring::{Error, Event, Mesh, Preset, State};
use tokio::io::AsyncWriteExt;

#[tokio::test]
async fn a_seed_given_as_a_dns_name_works() {
    init_tracing();
    // `localhost` resolves to 127.0.0.1 (and perhaps ::1): the seed must listen there.
    let seed = start("dns-seed", "127.0.0.1:0".parse().unwrap(), &[]).await;
    let port = seed.local_addr().port();
    let node = Mesh::builder()
        .name("dns-joiner")
        .bind(lo(10, 2))
        .preset(Preset::Local)
        .seeds([format!("localhost:{port}")])
        .start()
        .await
        .unwrap();
    let limit = bound(node.config(), 2);
    wait_for("both see each other", limit, || {
        sees(&node, "dns-seed", State::Alive) && sees(&seed, "dns-joiner", State::Alive)
    })
    .await;
    // Joining again later by name reports the seed that answered.
    assert!(node.join([format!("localhost:{port}")]).await.unwrap() >= 1);
    node.shutdown().await;
    seed.shutdown().await;
}

#[tokio::test]
async fn an_unresolvable_seed_is_named_and_the_node_starts_alone() {
    init_tracing();
    let bad = "no-such-host.invalid:7946";
    let node = Mesh::builder()
        .name("alone")
        .bind(lo(11, 1))
        .preset(Preset::Local)
        .seeds([bad])
        .start()
        .await
        .expect("starts alone despite the bad seed");
    assert_eq!(node.live_count(), 1);
    assert_eq!(node.members().len(), 1);
    match node.join([bad]).await {
        Err(e @ Error::UnresolvableSeed { .. }) => {
            assert!(e.to_string().contains(bad), "error names the seed: {e}")
        }
        other => panic!("expected UnresolvableSeed, got {other:?}"),
    }
    // A seed without a port is refused the same way.
    assert!(matches!(
        node.join(["127.0.0.1"]).await,
        Err(Error::UnresolvableSeed { .. })
    ));
    node.shutdown().await;
}

#[tokio::test]
async fn a_node_that_reached_no_seed_keeps_retrying_until_one_comes_up() {
    init_tracing();
    // Reserve a port for the late seed, then free it.
    let late = {
        let probe = std::net::TcpListener::bind(lo(12, 1)).unwrap();
        probe.local_addr().unwrap()
    };
    let early = start("early", lo(12, 2), &[late]).await;
    assert_eq!(early.live_count(), 1, "nobody answered yet");
    let seed = start("late-seed", late, &[]).await;
    let limit = bound(early.config(), 2);
    wait_for("the retry reaches the late seed", limit, || {
        sees(&early, "late-seed", State::Alive) && sees(&seed, "early", State::Alive)
    })
    .await;
    early.shutdown().await;
    seed.shutdown().await;
}

#[tokio::test]
async fn start_up_errors_say_what_is_wrong() {
    init_tracing();
    let builder = || {
        Mesh::builder()
            .name("x")
            .bind(lo(13, 1))
            .preset(Preset::Local)
    };

    let err = builder()
        .configure(|c| c.probe_timeout = Duration::from_secs(5))
        .start()
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Config {
                field: "probe_timeout",
                ..
            }
        ),
        "{err}"
    );

    let err = builder().meta(vec![0u8; 600]).start().await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::MetaTooLarge {
                len: 600,
                limit: 512
            }
        ),
        "{err}"
    );

    let err = builder().name("").start().await.unwrap_err();
    assert!(matches!(err, Error::Config { field: "name", .. }), "{err}");

    let err = builder()
        .advertise("0.0.0.0:7946".parse().unwrap())
        .start()
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Config {
                field: "advertise",
                ..
            }
        ),
        "{err}"
    );

    let err = builder().label("l".repeat(65)).start().await.unwrap_err();
    assert!(matches!(err, Error::Config { field: "label", .. }), "{err}");

    let taken = builder().start().await.unwrap();
    let err = builder()
        .bind(taken.local_addr())
        .start()
        .await
        .unwrap_err();
    match &err {
        Error::Bind { addr, .. } => assert_eq!(*addr, taken.local_addr()),
        other => panic!("expected Bind, got {other:?}"),
    }
    assert!(err.to_string().contains(&taken.local_addr().to_string()));
    taken.shutdown().await;
}

#[tokio::test]
async fn an_unspecified_bind_advertises_the_route_to_the_seed() {
    init_tracing();
    let seed = start("route-seed", "127.0.0.1:0".parse().unwrap(), &[]).await;
    // Bound beyond loopback without a key: plaintext must be allowed explicitly.
    let node = Mesh::builder()
        .name("route-node")
        .bind("0.0.0.0:0".parse().unwrap())
        .preset(Preset::Local)
        .seeds([seed.local_addr().to_string()])
        .allow_plaintext(true)
        .start()
        .await
        .unwrap();
    let adv = node.advertise_addr();
    assert_eq!(adv.ip(), IpAddr::V4(Ipv4Addr::LOCALHOST));
    assert_eq!(adv.port(), node.local_addr().port());
    assert_eq!(node.local().addr, adv);
    node.shutdown().await;
    seed.shutdown().await;
}

#[tokio::test]
async fn metadata_and_tags_reach_peers_and_oversize_is_refused() {
    init_tracing();
    let a = start("meta-a", lo(14, 1), &[]).await;
    let tags = BTreeMap::from([("zone".to_owned(), "eu-1".to_owned())]);
    let b = Mesh::builder()
        .name("meta-b")
        .bind(lo(14, 2))
        .preset(Preset::Local)
        .tags([("zone", "eu-1")])
        .seeds([a.local_addr().to_string()])
        .start()
        .await
        .unwrap();
    let limit = bound(a.config(), 2);
    let tags_of = |m: &Mesh, name: &str| m.member(name).map(|m| m.tags());
    wait_for("a sees b's tags", limit, || {
        tags_of(&a, "meta-b") == Some(tags.clone())
    })
    .await;

    let mut events = a.events();
    b.update_tags(|t| {
        t.insert("role".into(), "api".into());
    })
    .await
    .unwrap();
    wait_for("a sees the new tag", limit, || {
        tags_of(&a, "meta-b").is_some_and(|t| t.get("role").map(String::as_str) == Some("api"))
    })
    .await;
    let updated = events.recv().await.unwrap();
    assert!(
        matches!(updated, Event::Updated(ref m) if m.name == "meta-b"),
        "{updated:?}"
    );

    let err = b.set_meta(vec![1u8; 513]).await.unwrap_err();
    assert!(matches!(err, Error::MetaTooLarge { limit: 512, .. }));
    assert!(err.to_string().contains("512"), "names the limit: {err}");
    let err = b
        .update_tags(|t| {
            t.insert("big".into(), "v".repeat(600));
        })
        .await
        .unwrap_err();
    assert!(matches!(err, Error::MetaTooLarge { .. }), "{err}");
    // Refused edits change nothing.
    assert_eq!(tags_of(&b, "meta-b").unwrap().len(), 2);

    a.set_meta(&b"raw"[..]).await.unwrap();
    assert!(matches!(
        a.update_tags(|_| {}).await,
        Err(Error::NotTags(_))
    ));
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test]
async fn hostile_input_is_counted_and_refused_without_harm() {
    init_tracing();
    let a = start("hostile-a", lo(15, 1), &[]).await;
    let target = a.local_addr();

    let udp = tokio::net::UdpSocket::bind(lo(15, 9)).await.unwrap();
    for junk in [
        &b""[..],
        b"garbage",
        &[0xff; 1500],
        b"SWRG\x01\xff\xff\xff\xff",
    ] {
        udp.send_to(junk, target).await.unwrap();
    }
    // A frame announcing 4 GiB is refused before anything is allocated.
    let mut s = tokio::net::TcpStream::connect(target).await.unwrap();
    s.write_all(&u32::MAX.to_be_bytes()).await.unwrap();
    // A well-framed payload of garbage is refused by the decoder.
    let mut s2 = tokio::net::TcpStream::connect(target).await.unwrap();
    s2.write_all(&7u32.to_be_bytes()).await.unwrap();
    s2.write_all(b"garbage").await.unwrap();
    // A truncated frame, then a hang-up.
    let mut s3 = tokio::net::TcpStream::connect(target).await.unwrap();
    s3.write_all(&100u32.to_be_bytes()).await.unwrap();
    s3.write_all(b"short").await.unwrap();
    drop(s3);

    let limit = bound(a.config(), 2);
    wait_for("the junk is counted", limit, || {
        let st = a.stats();
        // Four junk datagrams and one junk stream payload; two broken frames.
        st.protocol.decode_errors >= 5 && st.stream_failures >= 2
    })
    .await;
    drop((s, s2));

    // The node still works: a peer joins normally.
    let b = start("hostile-b", lo(15, 2), &[target]).await;
    wait_for("a peer still joins", limit, || {
        sees(&a, "hostile-b", State::Alive)
    })
    .await;
    assert_eq!(a.live_count(), 2);
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test]
async fn dropping_the_last_handle_stops_the_node_and_frees_its_port() {
    init_tracing();
    let a = start("dropped", lo(16, 1), &[]).await;
    let addr: SocketAddr = a.local_addr();
    let clone = a.clone();
    let mut events = a.events();
    drop(a);
    assert_eq!(clone.live_count(), 1, "a clone keeps the node running");
    drop(clone);
    let limit = bound(&swimring::Config::local(), 1);
    tokio::time::timeout(limit, async {
        while events.recv().await != Err(swimring::RecvError::Closed) {}
    })
    .await
    .expect("the loop ends when the last handle goes");
    // The sockets close with the loop: the address can be bound again.
    let mut again = None;
    wait_for("the address is free again", limit, || {
        again = std::net::TcpListener::bind(addr).ok();
        again.is_some()
    })
    .await;
}

#[tokio::test]
async fn ipv6_nodes_join_and_see_each_other() {
    init_tracing();
    let v6: SocketAddr = "[::1]:0".parse().unwrap();
    let a = start("v6-a", v6, &[]).await;
    // An IPv6 literal seed is written `[addr]:port`.
    let b = start("v6-b", v6, &[a.local_addr()]).await;
    assert!(a.local_addr().is_ipv6() && a.advertise_addr().is_ipv6());
    let limit = bound(a.config(), 2);
    wait_for("both see each other over IPv6", limit, || {
        sees(&a, "v6-b", State::Alive) && sees(&b, "v6-a", State::Alive)
    })
    .await;
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test]
async fn subscriptions_are_streams_that_end_at_shutdown() {
    use tokio_stream::StreamExt;
    init_tracing();
    let (node, mut events, mut changes) = builder("stream-a", lo(14, 30), &[])
        .tasks(["t1", "t2"])
        .start_subscribed()
        .await
        .unwrap();
    let limit = bound(node.config(), 1);
    let first = tokio::time::timeout(limit, changes.next())
        .await
        .expect("a change within the bound");
    let change = first
        .expect("the stream is open")
        .expect("nothing was missed");
    assert_eq!(change.acquired, ["t1", "t2"], "alone, it claims both");
    let peer = start("stream-b", lo(14, 31), &[node.local_addr()]).await;
    let joined = tokio::time::timeout(limit, async {
        while let Some(e) = events.next().await {
            if let Ok(Event::Joined(m)) = e {
                return Some(m.name);
            }
        }
        None
    })
    .await
    .expect("a join within the bound");
    assert_eq!(joined.as_deref(), Some("stream-b"));
    peer.shutdown().await;
    node.shutdown().await;
    let rest: Vec<_> = tokio::time::timeout(limit, changes.collect::<Vec<_>>())
        .await
        .expect("the stream ends once the mesh has shut down");
    assert!(rest.iter().all(Result::is_ok), "{rest:?}");
}
