//! One test per protocol rule, with nodes wired by hand: no network, and time only as the
//! argument the core is given.
#![allow(clippy::disallowed_methods)] // a test takes one real instant as its virtual epoch

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;

use swimring::proto::{
    Channel, Config, Event, Identity, Member, ProtoError, Swim, Transmit, suspicion_min_timeout,
};
use swimring::wire::codec::{self, Transport};
use swimring::wire::{
    Ack, Alive, Dead, DecodeError, Left, Message, Ping, PingReq, Reach, Reached, State, Suspect,
    Update,
};

fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

fn node(name: &str, port: u16, now: Instant) -> Swim {
    node_with(Config::lan(), name, port, now)
}

fn node_with(cfg: Config, name: &str, port: u16, now: Instant) -> Swim {
    let id = Identity {
        name: name.into(),
        addr: addr(port),
        run: 1,
        meta: Bytes::new(),
    };
    Swim::new(cfg, id, port as u64, now).unwrap()
}

fn alive(name: &str, port: u16, run: u64, inc: u32) -> Update {
    Update::Alive(Alive {
        name: name.into(),
        run,
        incarnation: inc,
        addr: addr(port),
        meta: Bytes::new(),
    })
}

fn suspect(name: &str, run: u64, inc: u32, from: &str) -> Update {
    Update::Suspect(Suspect {
        name: name.into(),
        run,
        incarnation: inc,
        from: from.into(),
        reach: None,
    })
}

fn dead(name: &str, run: u64, inc: u32) -> Update {
    Update::Dead(Dead {
        name: name.into(),
        run,
        incarnation: inc,
        from: "x".into(),
    })
}

fn packet(updates: &[Update]) -> Bytes {
    let msgs: Vec<Message> = updates.iter().cloned().map(Message::Update).collect();
    codec::encode_messages("", &msgs)
}

fn feed(s: &mut Swim, now: Instant, updates: &[Update]) {
    s.handle_datagram(now, addr(9), &packet(updates)).unwrap();
}

fn events(s: &mut Swim) -> Vec<Event> {
    std::iter::from_fn(|| s.poll_event()).collect()
}

fn state(s: &Swim, name: &str) -> Option<(State, u32)> {
    s.member(name).map(|m| (m.state, m.incarnation))
}

/// The messages of one datagram `s` sent.
fn decode_datagram(t: &Transmit) -> Vec<Message> {
    let limits = codec::Limits {
        max_stream: 1 << 20,
        max_meta: 512,
        max_members: 1000,
    };
    codec::decode(&t.payload, "", &limits, Transport::Datagram)
        .unwrap()
        .messages
}

/// Answers the ping `seq` as if from `from`.
fn ack(s: &mut Swim, now: Instant, from: SocketAddr, seq: u32) {
    let ack = codec::encode_messages("", &[Message::Ack(Ack { seq })]);
    s.handle_datagram(now, from, &ack).unwrap();
}

/// Every datagram `s` sends from now on, decoded, with its destination.
fn sent(s: &mut Swim) -> Vec<(SocketAddr, Message)> {
    std::iter::from_fn(|| s.poll_transmit())
        .filter(|t| t.channel == Channel::Datagram)
        .flat_map(|t| decode_datagram(&t).into_iter().map(move |m| (t.to, m)))
        .collect()
}

/// Every rumour `s` sends from now on, decoded.
fn sent_updates(s: &mut Swim) -> Vec<Update> {
    sent(s)
        .into_iter()
        .filter_map(|(_, m)| match m {
            Message::Update(u) => Some(u),
            _ => None,
        })
        .collect()
}

/// Runs `s`'s timers (nobody answers) until `found` picks something out of what it sends,
/// or `limit` of virtual time passes. Returns the time and the find.
fn run_until<T>(
    s: &mut Swim,
    start: Instant,
    limit: Duration,
    mut found: impl FnMut(&[(SocketAddr, Message)]) -> Option<T>,
) -> (Instant, T) {
    let mut now = start;
    loop {
        if let Some(t) = found(&sent(s)) {
            return (now, t);
        }
        now = s.poll_timeout();
        assert!(now - start <= limit, "nothing found within {limit:?}");
        s.handle_timeout(now);
    }
}

/// The first ping in `msgs`, if any.
fn first_ping(msgs: &[(SocketAddr, Message)]) -> Option<Ping> {
    msgs.iter().find_map(|(_, m)| match m {
        Message::Ping(p) => Some(p.clone()),
        _ => None,
    })
}

#[test]
fn higher_incarnation_wins_and_lower_is_ignored() {
    let now = Instant::now();
    let mut s = node("a", 1, now);
    feed(&mut s, now, &[alive("b", 2, 1, 5)]);
    feed(&mut s, now, &[suspect("b", 1, 4, "c")]);
    assert_eq!(
        state(&s, "b"),
        Some((State::Alive, 5)),
        "stale suspicion ignored"
    );
    feed(&mut s, now, &[suspect("b", 1, 5, "c")]);
    assert_eq!(state(&s, "b"), Some((State::Suspect, 5)));
    feed(&mut s, now, &[alive("b", 2, 1, 5)]);
    assert_eq!(
        state(&s, "b"),
        Some((State::Suspect, 5)),
        "same incarnation cannot refute"
    );
    feed(&mut s, now, &[alive("b", 2, 1, 6)]);
    assert_eq!(state(&s, "b"), Some((State::Alive, 6)));
    feed(&mut s, now, &[dead("b", 1, 5)]);
    assert_eq!(
        state(&s, "b"),
        Some((State::Alive, 6)),
        "stale death ignored"
    );
    let kinds: Vec<&str> = events(&mut s).iter().map(Event::kind).collect();
    assert_eq!(
        kinds,
        ["member_joined", "member_suspect", "member_recovered"]
    );
}

#[test]
fn suspicion_about_self_is_refuted_with_a_higher_incarnation() {
    let now = Instant::now();
    let mut s = node("a", 1, now);
    feed(&mut s, now, &[alive("b", 2, 1, 0)]);
    sent_updates(&mut s);
    feed(&mut s, now, &[suspect("a", 1, 3, "b")]);
    assert_eq!(s.local().incarnation, 4);
    assert_eq!(s.local().state, State::Alive);
    assert_eq!(s.stats().refutations, 1);
    assert_eq!(
        s.stats().health_score,
        1,
        "Lifeguard: being suspected lowers local health"
    );
    s.handle_timeout(s.poll_timeout());
    s.handle_timeout(s.poll_timeout());
    let refutation = alive("a", 1, 1, 4);
    assert!(
        sent_updates(&mut s).contains(&refutation),
        "the refutation is gossiped"
    );
    // A death rumour is refuted the same way; one about a previous run is not ours to refute.
    feed(&mut s, now, &[dead("a", 1, 4)]);
    assert_eq!(s.local().incarnation, 5);
    feed(&mut s, now, &[dead("a", 0, 9)]);
    assert_eq!(s.local().incarnation, 5);
}

/// Runs `s`'s next timer, answers every ping it sent with an ack (everyone is alive), and
/// returns the time and the stream payloads it asked to send.
fn step_answering_pings(s: &mut Swim) -> (Instant, Vec<Transmit>) {
    let now = s.poll_timeout();
    s.handle_timeout(now);
    let (datagrams, streams): (Vec<Transmit>, Vec<Transmit>) =
        std::iter::from_fn(|| s.poll_transmit()).partition(|t| t.channel == Channel::Datagram);
    for t in datagrams {
        for m in decode_datagram(&t) {
            if let Message::Ping(p) = m {
                ack(s, now, t.to, p.seq);
            }
        }
    }
    (now, streams)
}

/// Declares `n2` suspect on a node of a 10-member mesh, with `accusers` independent
/// confirmations, and returns how long until the node declares it dead.
fn time_to_death(accusers: &[&str]) -> Duration {
    let start = Instant::now();
    let mut s = node("a", 1, start);
    let others: Vec<Update> = (2..11).map(|i| alive(&format!("n{i}"), i, 1, 0)).collect();
    feed(&mut s, start, &others);
    for from in accusers {
        feed(&mut s, start, &[suspect("n2", 1, 0, from)]);
    }
    let mut now = start;
    while s.member("n2").unwrap().state != State::Dead {
        // Every ping is answered, so this node's own probes confirm nothing: only the
        // accusers fed above count.
        now = step_answering_pings(&mut s).0;
        assert!(
            now - start < Duration::from_secs(120),
            "never declared dead"
        );
    }
    now - start
}

#[test]
fn lifeguard_suspicion_timeout_shrinks_with_confirmations() {
    let lone = time_to_death(&["n3"]);
    let two = time_to_death(&["n3", "n4"]);
    let three = time_to_death(&["n3", "n4", "n5"]);
    let cfg = Config::lan();
    let min = suspicion_min_timeout(cfg.suspicion_mult, 10, cfg.probe_interval);
    assert!(lone > two && two > three, "{lone:?} {two:?} {three:?}");
    let repeated = time_to_death(&["n3", "n3", "n3"]);
    assert_eq!(
        repeated, lone,
        "one accuser repeating itself confirms nothing"
    );
    assert!(
        lone >= min * (cfg.suspicion_max_timeout_mult - 1),
        "a lone accuser waits near the maximum: {lone:?}"
    );
    assert!(
        three < min + Duration::from_secs(2),
        "k confirmations reach the minimum"
    );
}

#[test]
fn restart_under_the_same_name_replaces_the_old_run_at_once() {
    let now = Instant::now();
    let mut s = node("a", 1, now);
    feed(&mut s, now, &[alive("b", 2, 1, 7)]);
    feed(&mut s, now, &[alive("b", 2, 2, 0)]);
    let b = s.member("b").unwrap();
    assert_eq!((b.run, b.incarnation, b.state), (2, 0, State::Alive));
    // Rumours about the old run, however fresh their incarnation, touch nothing.
    feed(
        &mut s,
        now,
        &[
            dead("b", 1, 99),
            suspect("b", 1, 99, "c"),
            alive("b", 2, 1, 99),
        ],
    );
    let b = s.member("b").unwrap();
    assert_eq!((b.run, b.incarnation, b.state), (2, 0, State::Alive));
    let kinds: Vec<&str> = events(&mut s).iter().map(Event::kind).collect();
    assert_eq!(kinds, ["member_joined", "member_restarted"]);
}

#[test]
fn leave_is_not_death() {
    let now = Instant::now();
    let mut s = node("a", 1, now);
    feed(&mut s, now, &[alive("b", 2, 1, 0)]);
    let left = Update::Left(Left {
        name: "b".into(),
        run: 1,
        incarnation: 1,
    });
    feed(&mut s, now, &[left]);
    assert_eq!(state(&s, "b"), Some((State::Left, 1)));
    feed(&mut s, now, &[dead("b", 1, 1), suspect("b", 1, 1, "c")]);
    assert_eq!(state(&s, "b"), Some((State::Left, 1)));
    let kinds: Vec<&str> = events(&mut s).iter().map(Event::kind).collect();
    assert_eq!(kinds, ["member_joined", "member_left"]);

    // The leaving side: its own record says left, and it gossips that.
    let mut b = node("b", 2, now);
    feed(&mut b, now, &[alive("a", 1, 1, 0)]);
    sent_updates(&mut b);
    b.leave(now);
    assert_eq!(b.local().state, State::Left);
    assert!(!b.leave_disseminated());
    while !b.leave_disseminated() {
        let t = b.poll_timeout();
        b.handle_timeout(t);
        sent_updates(&mut b);
    }
}

#[test]
fn a_node_that_left_refuses_to_join_or_change_its_metadata() {
    let now = Instant::now();
    let mut b = node("b", 2, now);
    b.leave(now);
    let before = b.local().clone();
    assert_eq!(b.join(now, &[addr(1)]), Err(ProtoError::Left));
    assert_eq!(
        b.set_meta(now, Bytes::from_static(b"x")),
        Err(ProtoError::Left)
    );
    assert_eq!(*b.local(), before, "refusals change nothing");
    assert!(b.poll_transmit().is_none(), "and send nothing");
}

#[test]
fn metadata_over_max_meta_is_refused_with_its_size_and_the_limit() {
    let now = Instant::now();
    let mut a = node("a", 1, now);
    let limit = a.config().max_meta;
    let err = a.set_meta(now, vec![0u8; limit + 1].into()).unwrap_err();
    assert_eq!(
        err,
        ProtoError::MetaTooLarge {
            len: limit + 1,
            limit
        }
    );
    assert_eq!(a.local().incarnation, 0);
    let id = Identity {
        name: "big".into(),
        addr: addr(3),
        run: 1,
        meta: vec![0u8; limit + 1].into(),
    };
    let err = Swim::new(Config::lan(), id, 3, now).err().unwrap();
    assert!(matches!(err, ProtoError::MetaTooLarge { .. }), "{err}");
}

#[test]
fn packets_from_another_cluster_change_nothing() {
    let now = Instant::now();
    let mut s = node("a", 1, now);
    let foreign = codec::encode_messages("other", &[Message::Update(alive("b", 2, 1, 0))]);
    let err = s.handle_datagram(now, addr(2), &foreign).unwrap_err();
    assert!(matches!(err, DecodeError::LabelMismatch { .. }));
    assert!(s.member("b").is_none());
    assert_eq!(s.stats().decode_errors, 1);
    assert!(events(&mut s).is_empty());
}

#[test]
fn a_malformed_packet_is_refused_whole() {
    let now = Instant::now();
    let mut s = node("a", 1, now);
    let mut bytes = packet(&[alive("b", 2, 1, 0)]).to_vec();
    // Claim one more frame than the packet carries.
    let count_at = codec::envelope_overhead("", 1) - 1;
    bytes[count_at] += 1;
    assert!(s.handle_datagram(now, addr(2), &bytes).is_err());
    assert!(
        s.member("b").is_none(),
        "the valid first frame was not applied"
    );
}

#[test]
fn new_members_per_packet_are_bounded() {
    let now = Instant::now();
    let mut s = node("a", 1, now);
    let many: Vec<Update> = (0..100)
        .map(|i| alive(&format!("m{i}"), 100 + i, 1, 0))
        .collect();
    let msgs: Vec<Message> = many.into_iter().map(Message::Update).collect();
    let bytes = codec::encode_messages("", &msgs);
    s.handle_datagram(now, addr(2), &bytes).unwrap();
    let limit = Config::lan().max_new_members_per_packet;
    assert_eq!(s.members().count(), 1 + limit);
    assert_eq!(s.stats().members_refused, (100 - limit) as u64);
}

#[test]
fn an_assumed_view_is_reported_but_not_gossiped() {
    let now = Instant::now();
    let mut s = node("a", 1, now);
    let member = |name: &str, port: u16, incarnation: u32, state: State| Member {
        name: name.into(),
        addr: addr(port),
        run: 1,
        incarnation,
        state,
        meta: Bytes::new(),
    };
    let view = [
        s.local().clone(),
        member("b", 2, 2, State::Alive),
        member("c", 3, 5, State::Suspect),
    ];
    s.assume_alive(now, &view);
    // Known members are skipped, whatever the view says about them.
    s.assume_alive(now, &[member("b", 2, 9, State::Dead)]);
    assert_eq!(state(&s, "a"), Some((State::Alive, 0)));
    assert_eq!(state(&s, "b"), Some((State::Alive, 2)));
    assert_eq!(state(&s, "c"), Some((State::Alive, 5)));
    let joined: Vec<String> = events(&mut s)
        .into_iter()
        .map(|e| match e {
            Event::Joined(m) => m.name,
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    assert_eq!(joined, ["b", "c"]);
    // Probes go out (and, unanswered here, raise suspicions), but no alive rumour: every
    // node is assumed to hold the same view.
    let mut t = now;
    while t < now + Duration::from_secs(3) {
        s.handle_timeout(t);
        let sent = sent_updates(&mut s);
        assert!(
            !sent.iter().any(|u| matches!(u, Update::Alive(_))),
            "{sent:?}"
        );
        t = s.poll_timeout();
    }
    assert!(s.stats().probes_sent > 0);
}

#[test]
fn a_probe_to_a_suspect_carries_the_suspicion() {
    let now = Instant::now();
    let mut s = node("a", 1, now);
    feed(&mut s, now, &[alive("b", 2, 1, 0), suspect("b", 1, 0, "c")]);
    let limits = codec::Limits {
        max_stream: 1 << 20,
        max_meta: 512,
        max_members: 10,
    };
    let mut first_ping: Option<Vec<Message>> = None;
    while first_ping.is_none() && s.stats().probes_sent == 0 {
        let t = s.poll_timeout();
        s.handle_timeout(t);
        while let Some(tx) = s.poll_transmit() {
            let env = codec::decode(&tx.payload, "", &limits, Transport::Datagram).unwrap();
            if env.messages.iter().any(|m| matches!(m, Message::Ping(_))) {
                first_ping = Some(env.messages);
            }
        }
    }
    let msgs = first_ping.expect("the probe was sent as a datagram");
    let saw_buddy = matches!(&msgs[0], Message::Update(Update::Suspect(x)) if x.name == "b");
    assert!(saw_buddy, "the ping to a suspect starts with its suspicion");
}

#[test]
fn an_unanswered_probe_fails_after_twice_the_probe_timeout_and_tells_the_suspect() {
    let start = Instant::now();
    let mut s = node("a", 1, start);
    feed(&mut s, start, &[alive("b", 2, 1, 0)]);
    let (pinged, _) = run_until(&mut s, start, Duration::from_secs(5), first_ping);
    // Nobody answers, not b and not the relays: the suspicion comes at 2 × probe_timeout,
    // before the probe period ends, and goes straight to b as well as into gossip.
    let (at, to) = run_until(&mut s, pinged, Duration::from_secs(5), |msgs| {
        msgs.iter().find_map(|(to, m)| match m {
            Message::Update(Update::Suspect(x)) if x.name == "b" && x.from == "a" => Some(*to),
            _ => None,
        })
    });
    let cfg = Config::lan();
    assert_eq!(at - pinged, cfg.probe_timeout * 2);
    assert!(at - pinged < cfg.probe_interval);
    assert_eq!(to, addr(2), "the suspect hears of it at once");
    assert_eq!(state(&s, "b"), Some((State::Suspect, 0)));
}

#[test]
fn a_refutation_answers_the_accuser_directly() {
    let now = Instant::now();
    let mut s = node("a", 1, now);
    feed(&mut s, now, &[alive("c", 3, 1, 0)]);
    sent(&mut s);
    feed(&mut s, now, &[suspect("a", 1, 0, "c")]);
    let answered = sent(&mut s).into_iter().any(|(to, m)| {
        to == addr(3)
            && matches!(m, Message::Update(Update::Alive(x)) if x.name == "a" && x.incarnation == 1)
    });
    assert!(
        answered,
        "the accuser gets the refutation without waiting for gossip"
    );
    // Another member still holds the refuted suspicion (gossip never brought it the
    // refutation) and probes with it: it is answered with the current incarnation too.
    feed(&mut s, now, &[alive("d", 4, 1, 0)]);
    sent(&mut s);
    feed(&mut s, now, &[suspect("a", 1, 0, "d")]);
    assert_eq!(s.local().incarnation, 1, "nothing new to refute");
    let corrected = sent(&mut s).into_iter().any(|(to, m)| {
        to == addr(4)
            && matches!(m, Message::Update(Update::Alive(x)) if x.name == "a" && x.incarnation == 1)
    });
    assert!(
        corrected,
        "an outdated accuser is told the current incarnation"
    );
}

#[test]
fn a_member_that_hears_a_suspicion_probes_the_suspect_next() {
    let start = Instant::now();
    let mut s = node("a", 1, start);
    let others: Vec<Update> = (2..30).map(|i| alive(&format!("n{i}"), i, 1, 0)).collect();
    feed(&mut s, start, &others);
    // Let the round robin start, then hear that n17 is suspected by someone else.
    let (t, first) = run_until(&mut s, start, Duration::from_secs(5), first_ping);
    let suspect_name = if first.target == "n17" { "n18" } else { "n17" };
    feed(&mut s, t, &[suspect(suspect_name, 1, 0, "n2")]);
    let (_, next) = run_until(&mut s, t, Duration::from_secs(5), first_ping);
    assert_eq!(
        next.target, suspect_name,
        "the next probe goes to the suspect, out of turn"
    );
}

#[test]
fn a_member_measured_to_answer_slowly_gets_twice_its_round_trip() {
    let start = Instant::now();
    let mut s = node("a", 1, start);
    feed(&mut s, start, &[alive("b", 2, 1, 0)]);
    let cfg = Config::lan();
    let slow = cfg.probe_timeout * 2 + Duration::from_millis(100);
    assert!(slow * 2 > cfg.probe_timeout * 2 && slow < cfg.probe_interval);
    let ack_after = |s: &mut Swim, pinged: Instant, seq: u32| {
        // Run the timers up to the ack's arrival (nobody else answers), then deliver it.
        while s.poll_timeout() <= pinged + slow {
            let t = s.poll_timeout();
            s.handle_timeout(t);
            sent(s);
        }
        ack(s, pinged + slow, addr(2), seq);
    };

    // Unknown round trip: the probe fails at 2 × probe_timeout, before the slow ack comes.
    let (pinged, ping) = run_until(&mut s, start, Duration::from_secs(5), first_ping);
    ack_after(&mut s, pinged, ping.seq);
    assert_eq!(state(&s, "b"), Some((State::Suspect, 0)));
    // b refutes; the late ack measured it, so the next probe waits for it.
    feed(&mut s, pinged + slow, &[alive("b", 2, 1, 1)]);
    let (pinged, ping) = run_until(&mut s, pinged + slow, Duration::from_secs(5), first_ping);
    ack_after(&mut s, pinged, ping.seq);
    assert_eq!(
        state(&s, "b"),
        Some((State::Alive, 1)),
        "not suspected again"
    );
}

/// How many reconnect attempts a node of `alive` live members that knows `dead` dead ones
/// makes in 50 reconnect intervals: each is a ping to a dead member, answered here, so it
/// is followed by a full-state exchange, which is what is counted.
fn reconnects(alive: u16, dead: u16) -> usize {
    let start = Instant::now();
    let mut s = node("a", 1, start);
    let live: Vec<Update> = (2..alive + 1).map(alive_update).collect();
    feed(&mut s, start, &live);
    let gone: Vec<u16> = (1000..1000 + dead).collect();
    for &i in &gone {
        feed(
            &mut s,
            start,
            &[alive_update(i), self::dead(&format!("n{i}"), 1, 0)],
        );
    }
    let end = start + Config::lan().reconnect_interval * 50;
    let mut attempts = 0;
    loop {
        let (now, streams) = step_answering_pings(&mut s);
        if now > end {
            return attempts;
        }
        attempts += streams
            .iter()
            .filter(|t| gone.iter().any(|&i| t.to == addr(i)))
            .count();
    }
}

fn alive_update(i: u16) -> Update {
    alive(&format!("n{i}"), i, 1, 0)
}

#[test]
fn reconnects_to_the_dead_scale_with_the_dead_to_alive_ratio() {
    // One dead among 40: about one attempt in 40 intervals, not one every interval (serf's
    // rule, so a large mesh does not flood a dead host with full states).
    let few = reconnects(40, 1);
    assert!(
        few <= 10,
        "{few} attempts in 50 intervals for 1 dead among 40"
    );
    // The small side of a partition, most of the mesh dead to it: an attempt every interval.
    let many = reconnects(3, 10);
    assert!(
        many >= 45,
        "{many} attempts in 50 intervals for 10 dead among 3"
    );
}

#[test]
fn a_live_members_name_claimed_from_another_address_waits_until_it_is_dead() {
    let now = Instant::now();
    let mut s = node("a", 1, now);
    feed(&mut s, now, &[alive("b", 2, 1, 0)]);
    // A newer run at another address: refused while the holder lives, and reported.
    feed(&mut s, now, &[alive("b", 3, 2, 0)]);
    assert_eq!(s.member("b").unwrap().addr, addr(2));
    let e = events(&mut s);
    assert!(
        matches!(&e[1], Event::NameConflict { name, existing, claimant }
            if name == "b" && *existing == addr(2) && *claimant == addr(3)),
        "{e:?}"
    );
    // Once the holder is dead, the claim is a rejoin.
    feed(&mut s, now, &[dead("b", 1, 0), alive("b", 3, 2, 0)]);
    assert_eq!(s.member("b").unwrap().addr, addr(3));
    let kinds: Vec<&str> = events(&mut s).iter().map(Event::kind).collect();
    assert_eq!(kinds, ["member_dead", "member_joined"]);
}

#[test]
fn a_newcomer_told_its_name_is_alive_elsewhere_reports_the_conflict() {
    let now = Instant::now();
    let mut newcomer = node("b", 3, now);
    // The holder's record (an older run, at another address) arrives in a full state.
    feed(&mut newcomer, now, &[alive("b", 2, 0, 4)]);
    let e = events(&mut newcomer);
    assert!(
        matches!(&e[..], [Event::NameConflict { name, existing, claimant }]
            if name == "b" && *existing == addr(2) && *claimant == addr(3)),
        "{e:?}"
    );
    // A rumour about an earlier run at this very address is not a conflict.
    feed(&mut newcomer, now, &[alive("b", 3, 0, 9)]);
    assert!(events(&mut newcomer).is_empty());
}

#[test]
fn force_leave_marks_only_a_dead_member_left_and_prune_forgets_it() {
    use swimring::proto::ForceLeaveError;
    let now = Instant::now();
    let mut s = node("a", 1, now);
    feed(&mut s, now, &[alive("b", 2, 1, 0), alive("c", 3, 1, 0)]);
    assert!(matches!(
        s.force_leave(now, "b", false),
        Err(ForceLeaveError::Live { .. })
    ));
    assert!(matches!(
        s.force_leave(now, "zz", false),
        Err(ForceLeaveError::Unknown(_))
    ));
    assert_eq!(s.force_leave(now, "a", true), Err(ForceLeaveError::Local));
    assert_eq!(state(&s, "b"), Some((State::Alive, 0)));
    feed(&mut s, now, &[dead("b", 1, 0)]);
    sent_updates(&mut s);
    let b = s.force_leave(now, "b", false).unwrap();
    assert_eq!(b.state, State::Left);
    assert_eq!(state(&s, "b"), Some((State::Left, 0)));
    // The left is gossiped, so peers stop reconnecting to it too.
    run_until(&mut s, now, Duration::from_secs(10), |msgs| {
        msgs.iter()
            .any(|(_, m)| matches!(m, Message::Update(Update::Left(l)) if l.name == "b"))
            .then_some(())
    });
    s.force_leave(now, "b", true).unwrap();
    assert_eq!(s.member("b"), None);
    let kinds: Vec<&str> = events(&mut s).iter().map(Event::kind).collect();
    assert_eq!(
        kinds,
        [
            "member_joined",
            "member_joined",
            "member_dead",
            "member_left"
        ]
    );
}

/// A node `a` of five with its first probe sent: the time, and the ping.
fn probing(cfg: Config) -> (Swim, Instant, Ping) {
    let start = Instant::now();
    let mut s = node_with(cfg, "a", 1, start);
    let others: Vec<Update> = (2..6).map(alive_update).collect();
    feed(&mut s, start, &others);
    let (now, ping) = run_until(&mut s, start, Duration::from_secs(5), first_ping);
    (s, now, ping)
}

fn addr_of(s: &Swim, name: &str) -> SocketAddr {
    s.member(name).unwrap().addr
}

/// The ping-reqs in `msgs`, with the relay each went to.
fn ping_reqs(msgs: &[(SocketAddr, Message)]) -> Vec<(SocketAddr, PingReq)> {
    msgs.iter()
        .filter_map(|(to, m)| match m {
            Message::PingReq(r) => Some((*to, r.clone())),
            _ => None,
        })
        .collect()
}

fn reached(s: &mut Swim, now: Instant, relay: SocketAddr, seq: u32, reach: Reach) {
    let msg = codec::encode_messages("", &[Message::Reached(Reached { seq, reach })]);
    s.handle_datagram(now, relay, &msg).unwrap();
}

#[test]
fn refusals_seen_by_the_prober_and_a_relay_declare_the_target_dead_at_once() {
    let (mut s, now, ping) = probing(Config::lan());
    let target = addr_of(&s, &ping.target);
    s.handle_reach(now, target, Reach::Refused);
    // One refusal: the relays are asked at once, not after the ack's wait.
    let reqs = ping_reqs(&sent(&mut s));
    assert!(!reqs.is_empty(), "the prober asks relays for a second view");
    assert!(
        s.member(&ping.target).unwrap().state.is_live(),
        "one is not enough"
    );
    let (relay, req) = &reqs[0];
    reached(&mut s, now, *relay, req.seq, Reach::Refused);
    assert_eq!(s.member(&ping.target).unwrap().state, State::Dead);
    assert_eq!(s.stats().deaths_on_evidence, 1);
    assert_eq!(s.stats().refusals_heard, 2);
}

#[test]
fn the_same_vantage_point_twice_is_one_piece_of_evidence() {
    let (mut s, now, ping) = probing(Config::lan());
    let target = addr_of(&s, &ping.target);
    s.handle_reach(now, target, Reach::Refused);
    s.handle_reach(now, target, Reach::Refused);
    let reqs = ping_reqs(&sent(&mut s));
    let (relay, req) = &reqs[0];
    reached(&mut s, now, *relay, req.seq, Reach::Refused);
    reached(&mut s, now, *relay, req.seq, Reach::Refused);
    assert_eq!(s.stats().deaths_on_evidence, 1, "prober plus one relay");
    // Reports for another probe's seq, or about an address not probed, change nothing.
    let (mut s, now, ping) = probing(Config::lan());
    s.handle_reach(now, addr(4321), Reach::Refused);
    reached(&mut s, now, addr(3), 0xdead, Reach::Refused);
    assert!(s.member(&ping.target).unwrap().state.is_live());
    assert_eq!(s.stats().refusals_heard, 0);
}

/// A live member whose port refused something sent outside a probe is probed at once, if no
/// probe is in flight, ahead of its turn; with crash evidence off the refusal changes nothing.
#[test]
fn a_refusal_outside_a_probe_makes_that_member_the_next_probe_at_once() {
    for evidence in [true, false] {
        let mut cfg = Config::lan();
        cfg.crash_evidence = evidence;
        let (mut s, now, ping) = probing(cfg);
        let target = addr_of(&s, &ping.target);
        let ack = codec::encode_messages("", &[Message::Ack(Ack { seq: ping.seq })]);
        s.handle_datagram(now, target, &ack).unwrap();
        let _ = sent(&mut s);
        // The member probed last in the round: without the refusal, the furthest away.
        let other = (2..6)
            .map(|i| format!("n{i}"))
            .find(|n| *n != ping.target)
            .unwrap();
        let refusing = addr_of(&s, &other);
        s.handle_reach(now, refusing, Reach::Refused);
        if !evidence {
            assert!(
                s.poll_timeout() > now,
                "evidence off: the probe stays on its schedule"
            );
            continue;
        }
        assert_eq!(s.poll_timeout(), now, "the next probe is due at once");
        s.handle_timeout(now);
        let ping = first_ping(&sent(&mut s)).expect("a probe starts");
        assert_eq!(ping.target, other, "the refusing member is probed first");
        // A refusal while that probe is in flight is its own evidence.
        s.handle_reach(now, refusing, Reach::Refused);
        assert_eq!(s.stats().refusals_heard, 1);
    }
}

/// Runs `s` (nobody answers) until `name` is dead; returns when it became suspect and when
/// it died.
fn suspect_then_dead(s: &mut Swim, from: Instant, name: &str) -> (Instant, Instant) {
    let mut now = from;
    let mut suspected = None;
    while s.member(name).unwrap().state != State::Dead {
        if suspected.is_none() && s.member(name).unwrap().state == State::Suspect {
            suspected = Some(now);
        }
        let _ = sent(s);
        now = s.poll_timeout();
        assert!(now - from < Duration::from_secs(120), "never declared dead");
        s.handle_timeout(now);
    }
    (suspected.expect("suspected first"), now)
}

#[test]
fn one_refusal_alone_only_shortens_the_suspicion_to_its_minimum() {
    let cfg = Config::lan();
    let (mut s, now, ping) = probing(cfg.clone());
    s.handle_reach(now, addr_of(&s, &ping.target), Reach::Refused);
    let (suspected, died) = suspect_then_dead(&mut s, now, &ping.target);
    let min = suspicion_min_timeout(cfg.suspicion_mult, 5, cfg.probe_interval);
    assert_eq!(s.stats().deaths_on_evidence, 0);
    // `suspected` is sampled at timer steps, so it is no later than the real start.
    assert!(died - suspected <= min, "{:?} > {min:?}", died - suspected);
    assert!(
        min < min * cfg.suspicion_max_timeout_mult,
        "a lone accuser would wait longer"
    );
}

#[test]
fn a_host_seen_up_holds_its_suspicion_for_the_stall_timeout_despite_confirmations() {
    let cfg = Config::lan();
    let (mut s, now, ping) = probing(cfg.clone());
    s.handle_reach(now, addr_of(&s, &ping.target), Reach::HostUp);
    let (at, rumour) = run_until(&mut s, now, Duration::from_secs(5), |msgs| {
        msgs.iter().find_map(|(_, m)| match m {
            Message::Update(Update::Suspect(x)) if x.from == "a" => Some(x.clone()),
            _ => None,
        })
    });
    assert_eq!(
        rumour.reach,
        Some(Reach::HostUp),
        "the suspicion carries the live host"
    );
    assert_eq!(s.stats().stalls_seen, 1);
    // Two more accusers would bring Lifeguard's timeout to its minimum.
    feed(
        &mut s,
        at,
        &[
            suspect(&ping.target, 1, 0, "n3"),
            suspect(&ping.target, 1, 0, "n4"),
        ],
    );
    let (_, died) = suspect_then_dead(&mut s, at, &ping.target);
    assert!(died - at >= cfg.stall_timeout, "{:?}", died - at);
}

#[test]
fn a_suspicion_passed_on_keeps_the_news_of_a_live_host() {
    let start = Instant::now();
    let mut s = node("a", 1, start);
    feed(&mut s, start, &(2..6).map(alive_update).collect::<Vec<_>>());
    let mut up = suspect("n2", 1, 0, "n3");
    if let Update::Suspect(x) = &mut up {
        x.reach = Some(Reach::HostUp);
    }
    feed(&mut s, start, &[up]);
    let _ = sent(&mut s);
    feed(&mut s, start, &[suspect("n2", 1, 0, "n4")]);
    let rumours = run_until(&mut s, start, Duration::from_secs(5), |msgs| {
        let found: Vec<Suspect> = msgs
            .iter()
            .filter_map(|(_, m)| match m {
                Message::Update(Update::Suspect(x)) if x.from == "n4" => Some(x.clone()),
                _ => None,
            })
            .collect();
        (!found.is_empty()).then_some(found)
    })
    .1;
    assert!(rumours.iter().all(|x| x.reach == Some(Reach::HostUp)));
}

#[test]
fn with_crash_evidence_off_refusals_change_nothing() {
    let mut cfg = Config::lan();
    cfg.crash_evidence = false;
    let (mut s, now, ping) = probing(cfg);
    s.handle_reach(now, addr_of(&s, &ping.target), Reach::Refused);
    assert!(
        ping_reqs(&sent(&mut s)).is_empty(),
        "no early indirect probe"
    );
    reached(&mut s, now, addr(3), ping.seq, Reach::Refused);
    assert_eq!(s.stats().refusals_heard, 0);
    assert!(s.member(&ping.target).unwrap().state.is_live());
}

#[test]
fn a_relay_tells_the_prober_once_what_its_driver_saw_of_the_target() {
    let start = Instant::now();
    let mut r = node("r", 3, start);
    feed(&mut r, start, &[alive_update(1), alive_update(2)]);
    let req = PingReq {
        seq: 77,
        target: "n2".into(),
        addr: addr(2),
    };
    let msg = codec::encode_messages("", &[Message::PingReq(req)]);
    r.handle_datagram(start, addr(1), &msg).unwrap();
    let streams: Vec<Transmit> = std::iter::from_fn(|| r.poll_transmit())
        .filter(|t| t.channel == Channel::Stream)
        .collect();
    assert_eq!(
        streams.len(),
        1,
        "the relay tries the target's stream port too"
    );
    assert_eq!(streams[0].to, addr(2));
    r.handle_reach(start, addr(2), Reach::Refused);
    r.handle_reach(start, addr(2), Reach::Refused);
    let told: Vec<(SocketAddr, Reached)> = sent(&mut r)
        .into_iter()
        .filter_map(|(to, m)| match m {
            Message::Reached(x) => Some((to, x)),
            _ => None,
        })
        .collect();
    let expect = Reached {
        seq: 77,
        reach: Reach::Refused,
    };
    assert_eq!(told, vec![(addr(1), expect)]);
}

#[test]
fn a_dead_member_that_answers_a_ping_gets_a_full_state_exchange() {
    let start = Instant::now();
    let mut s = node("a", 1, start);
    feed(&mut s, start, &[alive_update(2), alive_update(3)]);
    feed(&mut s, start, &[dead("n3", 1, 0)]);
    // One live peer, one dead: the dead one is pinged every reconnect interval.
    let (at, ping) = run_until(&mut s, start, Duration::from_secs(5), |msgs| {
        msgs.iter().find_map(|(to, m)| match m {
            Message::Ping(p) if *to == addr(3) => Some(p.clone()),
            _ => None,
        })
    });
    assert_eq!(ping.target, "n3");
    assert!(s.stats().dead_pings_sent >= 1);
    ack(&mut s, at, addr(3), ping.seq);
    let streams: Vec<Transmit> = std::iter::from_fn(|| s.poll_transmit())
        .filter(|t| t.channel == Channel::Stream)
        .collect();
    assert_eq!(streams.len(), 1);
    assert_eq!(streams[0].to, addr(3), "its answer starts the merge");
}
