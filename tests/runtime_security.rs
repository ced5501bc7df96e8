//! Encrypted meshes on loopback sockets: a wrong key, a replay, a plain node among sealed
//! ones, key rotation across five nodes, the plaintext rule, and a garbage flood.

mod runtime_util;

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use runtime_util::*;
use swimring::wire::codec::{self, Transport};
use swimring::wire::seal::{self, NONCE_LEN, Origin, SEAL_MAGIC, SEAL_VERSION};
use swimring::wire::{Alive, Key, Message, Ping, Update};
use swimring::{Error, Mesh, State};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn key(b: u8) -> Key {
    Key::from_bytes([b; 32])
}

fn alive(name: &str, addr: SocketAddr) -> Message {
    Update::Alive(Alive {
        name: name.into(),
        run: 1,
        incarnation: 1,
        addr,
        meta: Bytes::new(),
    })
    .into()
}

/// A datagram sealed with `key` from a made-up sender.
fn sealed(key: &Key, counter: u64, msgs: &[Message]) -> Vec<u8> {
    let packet = codec::encode_messages("", msgs);
    let origin = Origin {
        instance: 0x5eed,
        counter,
    };
    let nonce = [counter as u8; NONCE_LEN];
    seal::seal(key, "", Transport::Datagram, origin, nonce, &packet)
}

/// Resident memory of this process, from /proc/self/status.
fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("procfs");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS line")
}

#[tokio::test]
async fn a_node_with_a_wrong_key_cannot_join_and_its_packets_change_nothing() {
    init_tracing();
    let good = key(1);
    let a = builder("wk-a", lo(30, 1), &[])
        .keys([good.clone()])
        .start()
        .await
        .unwrap();
    let b = builder("wk-b", lo(30, 2), &[a.local_addr()])
        .keys([good])
        .start()
        .await
        .unwrap();
    let limit = bound(a.config(), 3);
    wait_for("a and b converge", limit, || {
        converged(&[a.clone(), b.clone()])
    })
    .await;

    let wrong = key(2);
    let c = builder("wk-c", lo(30, 3), &[a.local_addr()])
        .keys([wrong.clone()])
        .start()
        .await
        .unwrap();
    // A well-formed rumour sealed with the wrong key, and the same rumour in the clear.
    let udp = tokio::net::UdpSocket::bind(lo(30, 9)).await.unwrap();
    let rumour = [alive("intruder", lo(30, 9))];
    udp.send_to(&sealed(&wrong, 1, &rumour), a.local_addr())
        .await
        .unwrap();
    udp.send_to(&codec::encode_messages("", &rumour), a.local_addr())
        .await
        .unwrap();
    // c's join, at least one of its seed retries, and the two datagrams.
    wait_for("a counts the failures", limit, || {
        a.stats().decrypt_failures >= 4
    })
    .await;
    for m in [&a, &b] {
        assert_eq!(m.members().len(), 2, "{:?}", m.members());
        assert!(m.member("wk-c").is_none() && m.member("intruder").is_none());
    }
    assert_eq!(c.members().len(), 1, "c learned nothing");
    assert_eq!(
        a.stats().protocol.decode_errors,
        0,
        "nothing reached the core"
    );
    for m in [&a, &b, &c] {
        m.shutdown().await;
    }
}

#[tokio::test]
async fn a_replayed_datagram_or_stream_is_dropped_and_counted() {
    init_tracing();
    let k = key(3);
    let a = builder("replay-a", lo(31, 1), &[])
        .keys([k.clone()])
        .start()
        .await
        .unwrap();
    let udp = tokio::net::UdpSocket::bind(lo(31, 9)).await.unwrap();
    let ping = sealed(
        &k,
        1,
        &[Message::Ping(Ping {
            seq: 77,
            target: "replay-a".into(),
        })],
    );
    let limit = bound(a.config(), 2);
    udp.send_to(&ping, a.local_addr()).await.unwrap();
    // The first copy is answered with a sealed ack we can open.
    let mut buf = vec![0u8; 65_536];
    let (n, _) = tokio::time::timeout(limit, udp.recv_from(&mut buf))
        .await
        .expect("an ack within the bound")
        .unwrap();
    let ring = swimring::wire::Keyring::new([k]).unwrap();
    let ack = seal::open(&ring, "", Transport::Datagram, &buf[..n]).unwrap();
    let limits = codec::Limits {
        max_stream: 1 << 20,
        max_meta: 512,
        max_members: 10,
    };
    let env = codec::decode(&ack.packet, "", &limits, Transport::Datagram).unwrap();
    assert!(
        env.messages
            .contains(&Message::Ack(swimring::wire::Ack { seq: 77 }))
    );
    let handled = a.stats().protocol.packets_in;

    // The captured packet, sent again twice: both copies dropped before the core.
    udp.send_to(&ping, a.local_addr()).await.unwrap();
    udp.send_to(&ping, a.local_addr()).await.unwrap();
    wait_for("the replays are counted", limit, || {
        a.stats().replays_dropped == 2
    })
    .await;
    let st = a.stats();
    assert_eq!(st.protocol.packets_in, handled, "the core never saw them");
    assert_eq!(
        st.decrypt_failures, 0,
        "they did open: only the window refused them"
    );

    // The same over TCP: a sealed stream probe is answered once; its replay is not.
    let probe = codec::encode_messages(
        "",
        &[Message::Ping(Ping {
            seq: 78,
            target: "replay-a".into(),
        })],
    );
    let origin = Origin {
        instance: 0x5eed,
        counter: 1,
    };
    let key = ring.primary().unwrap();
    let stream = seal::seal(key, "", Transport::Stream, origin, [1; NONCE_LEN], &probe);
    let target = a.local_addr();
    let exchange = |payload: Vec<u8>| async move {
        let mut s = tokio::net::TcpStream::connect(target).await.unwrap();
        s.write_all(&(payload.len() as u32).to_be_bytes())
            .await
            .unwrap();
        s.write_all(&payload).await.unwrap();
        let mut reply = Vec::new();
        tokio::time::timeout(limit, s.read_to_end(&mut reply))
            .await
            .expect("the stream ends within the bound")
            .unwrap();
        reply
    };
    let first = exchange(stream.clone()).await;
    let opened = seal::open(&ring, "", Transport::Stream, &first[4..]).unwrap();
    let env = codec::decode(&opened.packet, "", &limits, Transport::Stream).unwrap();
    assert!(
        env.messages
            .contains(&Message::Ack(swimring::wire::Ack { seq: 78 }))
    );
    assert!(
        exchange(stream).await.is_empty(),
        "the replay gets no answer"
    );
    assert_eq!(a.stats().replays_dropped, 3);
    a.shutdown().await;
}

#[tokio::test]
async fn plain_and_sealed_nodes_never_merge() {
    init_tracing();
    let sealed_node = builder("mix-sealed", lo(32, 1), &[])
        .keys([key(4)])
        .start()
        .await
        .unwrap();
    let plain = start("mix-plain", lo(32, 2), &[sealed_node.local_addr()]).await;
    let limit = bound(plain.config(), 2);
    // The plain node's join reaches the sealed node and fails; the sealed node answers nothing.
    wait_for("the sealed node refuses the plain join", limit, || {
        sealed_node.stats().decrypt_failures >= 1
    })
    .await;
    // A sealed node joining a plain one fails the same way.
    let late = builder("mix-late", lo(32, 3), &[plain.local_addr()])
        .keys([key(4)])
        .start()
        .await
        .unwrap();
    wait_for("the plain node refuses the sealed join", limit, || {
        plain.stats().decrypt_failures >= 1
    })
    .await;
    for m in [&sealed_node, &plain, &late] {
        assert_eq!(
            m.members().len(),
            1,
            "{} merged: {:?}",
            m.name(),
            m.members()
        );
        m.shutdown().await;
    }
}

#[tokio::test]
async fn key_rotation_across_five_nodes_loses_no_member() {
    init_tracing();
    let (old, new) = (key(5), key(6));
    let mut nodes: Vec<Mesh> = Vec::new();
    for i in 0..5u8 {
        let seeds: Vec<SocketAddr> = nodes.first().map(Mesh::local_addr).into_iter().collect();
        let m = builder(&format!("rot-{i}"), lo(33, i + 1), &seeds)
            .keys([old.clone()])
            .start()
            .await
            .unwrap();
        nodes.push(m);
    }
    let cfg = nodes[0].config().clone();
    wait_for("five nodes converge", bound(&cfg, 5), || converged(&nodes)).await;
    // Long enough for every node to probe every other one twice: a node that could not open
    // its peers' packets would be suspected within it.
    let span = cfg.probe_interval * 5 * 2 + cfg.probe_timeout * 4;
    let steady = |nodes: &[Mesh]| {
        converged(nodes)
            && nodes.iter().all(|m| {
                let st = m.stats();
                st.decrypt_failures == 0 && st.protocol.suspicions_raised == 0
            })
    };

    for m in &nodes {
        m.install_key(new.clone()).unwrap();
    }
    assert!(nodes.iter().all(|m| m.keys() == [old.id(), new.id()]));
    hold_for("all alive after install", span, || steady(&nodes)).await;

    for m in &nodes {
        m.use_key(new.id()).unwrap();
        // Each step mid-way through the mesh: peers still on the old key open the new one.
        tokio::task::yield_now().await;
    }
    assert!(nodes.iter().all(|m| m.keys() == [new.id(), old.id()]));
    hold_for("all alive after use", span, || steady(&nodes)).await;

    for m in &nodes {
        assert!(matches!(
            m.remove_key(new.id()),
            Err(Error::Key(swimring::wire::KeyError::RemovePrimary(_)))
        ));
        m.remove_key(old.id()).unwrap();
    }
    assert!(nodes.iter().all(|m| m.keys() == [new.id()]));
    hold_for("all alive after remove", span, || steady(&nodes)).await;
    for m in &nodes {
        m.shutdown().await;
    }
}

#[tokio::test]
async fn a_plain_node_beyond_loopback_refuses_to_start_unless_forced() {
    init_tracing();
    let any: SocketAddr = "0.0.0.0:0".parse().unwrap();
    let err = builder("pt-any", any, &[]).start().await.unwrap_err();
    assert!(
        matches!(err, Error::Plaintext { addr } if addr == any),
        "{err}"
    );
    assert!(err.to_string().contains("--insecure-plaintext"), "{err}");
    // Advertising beyond loopback counts too, even if bound to loopback.
    let err = builder("pt-adv", lo(34, 1), &[])
        .advertise("192.0.2.7:7946".parse().unwrap())
        .start()
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Plaintext { .. }), "{err}");

    let here: SocketAddr = "127.0.0.1:7946".parse().unwrap();
    let keyed = builder("pt-keyed", any, &[])
        .advertise(here)
        .keys([key(7)])
        .start()
        .await
        .expect("a node with a key may bind anywhere");
    keyed.shutdown().await;
    let forced = builder("pt-forced", any, &[])
        .advertise(here)
        .allow_plaintext(true)
        .start()
        .await
        .expect("forced plaintext starts");
    assert!(forced.keys().is_empty());
    // A plain node cannot start using keys later.
    assert!(matches!(
        forced.install_key(key(7)),
        Err(Error::Key(swimring::wire::KeyError::Plaintext))
    ));
    forced.shutdown().await;
}

#[tokio::test]
async fn a_garbage_flood_leaves_membership_and_memory_steady() {
    init_tracing();
    let k = key(8);
    let mut nodes: Vec<Mesh> = Vec::new();
    for i in 0..3u8 {
        let seeds: Vec<SocketAddr> = nodes.first().map(Mesh::local_addr).into_iter().collect();
        let m = builder(&format!("flood-{i}"), lo(35, i + 1), &seeds)
            .keys([k.clone()])
            .start()
            .await
            .unwrap();
        nodes.push(m);
    }
    let cfg = nodes[0].config().clone();
    wait_for("three nodes converge", bound(&cfg, 3), || converged(&nodes)).await;
    let target = nodes[0].local_addr();
    let rss_before = rss_kib();

    // Four kinds of junk datagrams, from many source ports: random bytes; a sealed header naming the
    // mesh's real key id with a forged body (the most expensive to refuse: a full AEAD
    // pass); packets sealed with another key; and well-formed plain rumours.
    let id = k.id().to_string();
    let id_bytes: Vec<u8> = (0..4)
        .map(|i| u8::from_str_radix(&id[2 * i..2 * i + 2], 16).unwrap())
        .collect();
    let other = key(9);
    let flood_id = id_bytes.clone();
    // The attacker is another process: it floods from its own thread, so the nodes' runtime
    // thread spends its time refusing junk, not making it.
    const PACKETS: u64 = 8_000;
    let flood = std::thread::spawn(move || {
        let senders: Vec<std::net::UdpSocket> = (0..8u8)
            .map(|s| std::net::UdpSocket::bind(lo(35, 100 + s)).unwrap())
            .collect();
        let (per_tick, tick) = (40, Duration::from_millis(20));
        for sent in 0..PACKETS {
            if sent % per_tick == 0 {
                std::thread::sleep(tick);
            }
            let junk: Vec<u8> = match sent % 4 {
                0 => (0..1200).map(|_| rand::random::<u8>()).collect(),
                1 => {
                    let mut p = SEAL_MAGIC.to_vec();
                    p.push(SEAL_VERSION);
                    p.extend_from_slice(&flood_id);
                    p.extend((0..1300).map(|_| rand::random::<u8>()));
                    p
                }
                2 => sealed(&other, sent, &[alive(&format!("fake-{sent}"), target)]),
                _ => codec::encode_messages("", &[alive(&format!("fake-{sent}"), target)]).to_vec(),
            };
            let from = &senders[(sent % senders.len() as u64) as usize];
            // A full socket buffer is the flood working, not a test failure.
            let _ = from.send_to(&junk, target);
        }
    });
    // While it lasts no member is declared dead or dropped. A suspicion is allowed: on a
    // loaded 2-core machine a 100 ms probe timeout can lapse, and the protocol refutes it.
    while !flood.is_finished() {
        for m in &nodes {
            assert!(
                nodes.iter().all(|n| m
                    .member(n.name())
                    .is_some_and(|x| matches!(x.state, State::Alive | State::Suspect))),
                "{} declared a member dead during the flood: {:?}",
                m.name(),
                m.members()
            );
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    flood.join().expect("the flood thread");
    // Stream payloads too: 64 connections, each one frame of 64 KiB naming the real key id.
    const STREAMS: u64 = 64;
    for _ in 0..STREAMS {
        let mut frame = SEAL_MAGIC.to_vec();
        frame.push(SEAL_VERSION);
        frame.extend_from_slice(&id_bytes);
        frame.extend((0..64 << 10).map(|_| rand::random::<u8>()));
        let mut s = tokio::net::TcpStream::connect(target).await.unwrap();
        s.write_all(&(frame.len() as u32).to_be_bytes())
            .await
            .unwrap();
        s.write_all(&frame).await.unwrap();
        // The node hangs up without an answer once the frame failed to open.
        let mut answer = Vec::new();
        tokio::time::timeout(bound(&cfg, 3), s.read_to_end(&mut answer))
            .await
            .expect("the node closes the stream")
            .unwrap();
        assert!(answer.is_empty());
    }
    // Most of the datagrams arrived and were refused (loopback may drop some under load),
    // and every stream was.
    wait_for("the flood is counted", bound(&cfg, 3), || {
        nodes[0].stats().decrypt_failures >= PACKETS / 2 + STREAMS
    })
    .await;
    // Any suspicion is refuted, no fake member got in, and none is raised afterwards.
    wait_for("suspicions refuted", bound(&cfg, 3), || converged(&nodes)).await;
    let suspicions: Vec<u64> = nodes
        .iter()
        .map(|m| m.stats().protocol.suspicions_raised)
        .collect();
    let span = cfg.probe_interval * 3 * 2 + cfg.probe_timeout * 4;
    hold_for("membership steady after the flood", span, || {
        converged(&nodes)
            && nodes.iter().zip(&suspicions).all(|(m, &before)| {
                m.members().len() == 3 && m.stats().protocol.suspicions_raised == before
            })
    })
    .await;
    let st = nodes[0].stats();
    assert_eq!(st.protocol.decode_errors, 0, "no junk reached the core");
    let grown = rss_kib().saturating_sub(rss_before);
    assert!(grown < 32 * 1024, "resident memory grew by {grown} KiB");
    for m in &nodes {
        m.shutdown().await;
    }
}
