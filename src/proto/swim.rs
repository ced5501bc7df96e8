//! The SWIM + Lifeguard state machine.

use std::collections::{BTreeSet, VecDeque};
use std::net::SocketAddr;
use std::ops::Bound;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::awareness::Awareness;
use super::broadcast::{Broadcasts, retransmit_limit};
use super::config::{Config, ConfigError};
use super::event::{Channel, Event, Member, Transmit};
use super::interner::{Interner, Name};
use super::order::ProbeOrder;
use super::stats::Stats;
use super::suspicion::{Suspicion, min_timeout};
use super::table::{Record, Table};
use crate::wire::codec::{self, Frame, Limits, Transport};
use crate::wire::{
    Ack, Alive, Dead, DecodeError, Left, MAX_NAME_LEN, Message, Nack, Ping, PingReq, PushPull,
    State, Suspect, Update,
};

/// Who this node is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// Unique name, 1 to 64 bytes.
    pub name: String,
    /// The address other members reach this node at (its advertise address).
    pub addr: SocketAddr,
    /// This run of the process. Must grow across restarts under the same name (a start time
    /// in milliseconds does), so that peers replace the old run at once.
    pub run: u64,
    /// Initial metadata, at most [`Config::max_meta`] bytes.
    pub meta: Bytes,
}

/// The last failed probe, whose ack may still come: a late direct ack still measures the
/// target's round-trip time, so a slow member gets more patience from the next probe.
struct LateAck {
    seq: u32,
    target: Name,
    addr: SocketAddr,
    sent: Instant,
}

struct Probe {
    seq: u32,
    target: Name,
    addr: SocketAddr,
    sent: Instant,
    ack_deadline: Instant,
    /// When the probe fails if no ack came, directly or through the relays: the relays get
    /// as long as the direct ping had, and a slow target twice its round-trip time. The end
    /// of the probe period caps it too.
    give_up: Instant,
    indirect: bool,
    expected_nacks: u32,
    nacks: u32,
}

/// A ping-req this node is relaying.
struct Relay {
    seq: u32,
    origin: SocketAddr,
    origin_seq: u32,
    nack_at: Option<Instant>,
    expires: Instant,
}

/// Bound on ping-reqs relayed at once, so a flood cannot grow memory.
const MAX_RELAYS: usize = 1024;

/// One node's view of the mesh and the protocol that keeps it current.
///
/// The driver feeds it input through the `handle_*` methods and the operations (`join`,
/// `leave`, `set_meta`), then drains `poll_transmit`, `poll_event`, and calls
/// `handle_timeout` once `poll_timeout`'s instant has passed. It never reads a clock or the
/// OS's randomness: the same seed and inputs give the same outputs.
pub struct Swim {
    cfg: Config,
    limits: Limits,
    me: Member,
    leaving: bool,
    names: Interner,
    /// Every other member known, with the live and dead ones listed for sampling.
    members: Table,
    /// Dead and left members by the time they changed state, to forget them later.
    gone: BTreeSet<(Instant, Name)>,
    order: ProbeOrder,
    broadcasts: Broadcasts,
    awareness: Awareness,
    rng: ChaCha8Rng,
    seq: u32,
    probe: Option<Probe>,
    late: Option<LateAck>,
    relays: Vec<Relay>,
    suspicions: BTreeSet<(Instant, Name)>,
    next_probe: Instant,
    next_gossip: Instant,
    next_push_pull: Instant,
    next_reconnect: Instant,
    next_reap: Instant,
    out: VecDeque<Transmit>,
    events: VecDeque<Event>,
    stats: Stats,
}

impl Swim {
    /// A node that knows only itself. `seed` drives every random choice it makes.
    pub fn new(cfg: Config, id: Identity, seed: u64, now: Instant) -> Result<Swim, ConfigError> {
        Swim::with_interner(cfg, id, seed, now, Interner::default())
    }

    /// Like [`Swim::new`], sharing names and member records with the other nodes built with
    /// the same `interner`: for running many nodes in one process (a simulator), where each
    /// node would otherwise hold its own copy of every member.
    pub fn with_interner(
        cfg: Config,
        id: Identity,
        seed: u64,
        now: Instant,
        interner: Interner,
    ) -> Result<Swim, ConfigError> {
        cfg.validate()?;
        if id.name.is_empty() || id.name.len() > MAX_NAME_LEN {
            return Err(ConfigError {
                field: "name",
                reason: format!("must be 1 to {MAX_NAME_LEN} bytes"),
            });
        }
        check_meta(&cfg, &id.meta)?;
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        // Stagger the periodic tasks so nodes started together do not act in lockstep.
        let mut stagger = |d: Duration| now + d.mul_f64(rng.random::<f64>());
        let next_probe = stagger(cfg.probe_interval);
        let next_gossip = stagger(cfg.gossip_interval);
        let next_push_pull = stagger(cfg.push_pull_interval) + cfg.push_pull_interval / 2;
        let next_reconnect = stagger(cfg.reconnect_interval);
        Ok(Swim {
            limits: Limits {
                max_stream: cfg.max_stream,
                max_meta: cfg.max_meta,
                max_members: cfg.max_members,
            },
            me: Member {
                name: id.name,
                addr: id.addr,
                run: id.run,
                incarnation: 0,
                state: State::Alive,
                meta: id.meta,
            },
            leaving: false,
            names: interner,
            members: Table::default(),
            gone: BTreeSet::new(),
            order: ProbeOrder::default(),
            broadcasts: Broadcasts::default(),
            awareness: Awareness::new(cfg.awareness_max_multiplier),
            rng,
            seq: 0,
            probe: None,
            late: None,
            relays: Vec::new(),
            suspicions: BTreeSet::new(),
            next_probe,
            next_gossip,
            next_push_pull,
            next_reconnect,
            next_reap: now + cfg.probe_interval,
            out: VecDeque::new(),
            events: VecDeque::new(),
            stats: Stats::default(),
            cfg,
        })
    }

    // ----- queries -------------------------------------------------------------------------

    /// This node's own record.
    pub fn local(&self) -> &Member {
        &self.me
    }

    /// The configuration in force.
    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// A member by name (this node included).
    pub fn member(&self, name: &str) -> Option<&Member> {
        if name == self.me.name {
            return Some(&self.me);
        }
        self.members.get(name).map(Record::member)
    }

    /// Every member this node knows, itself included, in name order. Dead and left members
    /// are kept for [`Config::dead_retention`].
    pub fn members(&self) -> impl Iterator<Item = &Member> {
        let me = self.me.name.as_str();
        let before = self
            .members
            .records()
            .range::<str, _>((Bound::Unbounded, Bound::Excluded(me)));
        let after = self
            .members
            .records()
            .range::<str, _>((Bound::Excluded(me), Bound::Unbounded));
        before
            .map(|(_, r)| r.member())
            .chain(std::iter::once(&self.me))
            .chain(after.map(|(_, r)| r.member()))
    }

    /// Members alive or suspect, this node included (unless it has left).
    pub fn live_count(&self) -> usize {
        self.members.live().len() + usize::from(!self.leaving)
    }

    /// Counters, with the current local health score.
    pub fn stats(&self) -> Stats {
        Stats {
            health_score: self.awareness.score(),
            ..self.stats.clone()
        }
    }

    /// Whether this node's leave has been gossiped as widely as the protocol intends (or there
    /// is nobody left to tell): the driver may stop once this holds, or on its own timeout.
    pub fn leave_disseminated(&self) -> bool {
        self.leaving && (self.members.live().is_empty() || !self.broadcasts.contains(&self.me.name))
    }

    // ----- output --------------------------------------------------------------------------

    /// The next packet to send, if any. Call until `None` after every input.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        pop_and_trim(&mut self.out)
    }

    /// The next membership event, if any.
    pub fn poll_event(&mut self) -> Option<Event> {
        pop_and_trim(&mut self.events)
    }

    /// The instant at which [`Swim::handle_timeout`] should next be called.
    pub fn poll_timeout(&self) -> Instant {
        let mut t = self.next_gossip.min(self.next_reap);
        if !self.leaving {
            t = t
                .min(self.next_probe)
                .min(self.next_push_pull)
                .min(self.next_reconnect);
        }
        if let Some(p) = self.probe.as_ref() {
            t = t.min(if p.indirect {
                p.give_up
            } else {
                p.ack_deadline
            });
        }
        if let Some((at, _)) = self.suspicions.first() {
            t = t.min(*at);
        }
        for r in &self.relays {
            t = t.min(r.nack_at.unwrap_or(r.expires)).min(r.expires);
        }
        t
    }

    // ----- operations ----------------------------------------------------------------------

    /// Starts a full-state exchange with each address (seeds or any member). Answers arrive
    /// through [`Swim::handle_stream`].
    pub fn join(&mut self, _now: Instant, addrs: &[SocketAddr]) {
        for &addr in addrs {
            if addr != self.me.addr {
                self.push_pull(addr, true);
            }
        }
    }

    /// Publishes new metadata: raises the incarnation and gossips it.
    pub fn set_meta(&mut self, now: Instant, meta: Bytes) -> Result<(), ConfigError> {
        check_meta(&self.cfg, &meta)?;
        self.me.meta = meta;
        self.me.incarnation += 1;
        self.broadcast_alive_self(now);
        Ok(())
    }

    /// Leaves gracefully: others will see this node as left, not dead. The node stops probing
    /// but keeps gossiping; see [`Swim::leave_disseminated`].
    pub fn leave(&mut self, _now: Instant) {
        if self.leaving {
            return;
        }
        self.leaving = true;
        self.probe = None;
        self.me.incarnation += 1;
        self.me.state = State::Left;
        let left = Update::Left(Left {
            name: self.me.name.clone(),
            run: self.me.run,
            incarnation: self.me.incarnation,
        });
        self.queue(&left);
    }

    // ----- input ---------------------------------------------------------------------------

    /// A datagram arrived from `from`. A malformed or foreign one is counted and refused
    /// whole, changing nothing else.
    pub fn handle_datagram(
        &mut self,
        now: Instant,
        from: SocketAddr,
        bytes: &[u8],
    ) -> Result<(), DecodeError> {
        self.stats.packets_in += 1;
        self.stats.bytes_in += bytes.len() as u64;
        let env = self.decode(bytes, Transport::Datagram)?;
        let mut newcomers = self.cfg.max_new_members_per_packet;
        for msg in env.messages {
            match msg {
                Message::Ping(p) => {
                    if p.target == self.me.name {
                        self.send(from, vec![Message::Ack(Ack { seq: p.seq })]);
                    }
                }
                Message::Ack(a) => self.handle_ack(now, a.seq, Some(from)),
                Message::Nack(n) => {
                    if let Some(p) = self.probe.as_mut().filter(|p| p.seq == n.seq) {
                        p.nacks += 1;
                    }
                }
                Message::PingReq(r) => self.relay(now, from, r),
                Message::Update(u) => self.apply(now, u, &mut newcomers),
                // Full state only travels over streams.
                Message::PushPull(_) => {}
            }
        }
        Ok(())
    }

    /// A stream payload arrived: a request, or the reply to one this node sent. Returns the
    /// reply to write back, if the payload asks for one.
    pub fn handle_stream(
        &mut self,
        now: Instant,
        bytes: &[u8],
    ) -> Result<Option<Bytes>, DecodeError> {
        self.stats.streams_in += 1;
        self.stats.stream_bytes_in += bytes.len() as u64;
        let env = self.decode(bytes, Transport::Stream)?;
        let mut reply = Vec::new();
        let mut newcomers = usize::MAX;
        for msg in env.messages {
            match msg {
                Message::Ping(p) => {
                    if p.target == self.me.name {
                        reply.push(codec::encode_frame(&Message::Ack(Ack { seq: p.seq })));
                    }
                }
                Message::Ack(a) => self.handle_ack(now, a.seq, None),
                Message::PushPull(pp) => {
                    let wants_reply = pp.reply;
                    self.merge(now, pp);
                    if wants_reply {
                        reply.push(self.full_state(false, false));
                    }
                }
                Message::Update(u) => self.apply(now, u, &mut newcomers),
                Message::Nack(_) | Message::PingReq(_) => {}
            }
        }
        if reply.is_empty() {
            return Ok(None);
        }
        let reply = codec::encode_envelope(&self.cfg.label, reply);
        self.stats.streams_out += 1;
        self.stats.stream_bytes_out += reply.len() as u64;
        Ok(Some(reply))
    }

    /// Runs whatever is due at `now`: probes, timeouts, gossip, state exchange, reconnects.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self
            .probe
            .as_ref()
            .is_some_and(|p| !p.indirect && now >= p.ack_deadline)
        {
            self.probe_indirectly();
        }
        if self
            .probe
            .as_ref()
            .is_some_and(|p| p.indirect && now >= p.give_up)
        {
            self.finish_probe(now);
        }
        if !self.leaving && now >= self.next_probe {
            self.finish_probe(now);
            self.start_probe(now);
            self.next_probe = now + self.awareness.scale(self.cfg.probe_interval);
        }
        self.expire_relays(now);
        while let Some((at, name)) = self.suspicions.first().cloned() {
            if at > now {
                break;
            }
            self.suspicions.pop_first();
            self.suspicion_expired(now, &name);
        }
        if now >= self.next_gossip {
            self.gossip();
            self.next_gossip = now + self.cfg.gossip_interval;
        }
        if !self.leaving && now >= self.next_push_pull {
            let partner = self.members.sample_live(&mut self.rng, 1, |_| false).pop();
            if let Some(addr) = partner.and_then(|n| self.member(&n).map(|m| m.addr)) {
                self.push_pull(addr, false);
            }
            self.next_push_pull = now + self.push_pull_interval();
        }
        if !self.leaving && now >= self.next_reconnect {
            // serf's rule: try with probability dead ÷ alive, so that the mesh as a whole
            // makes about one attempt per dead member per interval rather than one per live
            // member, while the side of a partition that lost most of the mesh tries every time.
            let dead = self.members.dead_count();
            if dead > 0 && self.rng.random_range(0..self.live_count()) < dead {
                let partner = self.members.sample_dead(&mut self.rng);
                if let Some(addr) = partner.and_then(|n| self.member(&n).map(|m| m.addr)) {
                    self.push_pull(addr, false);
                }
            }
            self.next_reconnect = now + self.cfg.reconnect_interval;
        }
        if now >= self.next_reap {
            self.reap(now);
            self.next_reap = now + self.cfg.probe_interval;
        }
    }

    // ----- probing -------------------------------------------------------------------------

    fn next_seq(&mut self) -> u32 {
        self.seq = self.seq.wrapping_add(1);
        self.seq
    }

    fn start_probe(&mut self, now: Instant) {
        let members = &self.members;
        let Some(target) = self.order.next(&mut self.rng, members.live(), |n| {
            members.get(n).is_some_and(|r| r.member().state.is_live())
        }) else {
            return;
        };
        let seq = self.next_seq();
        let rec = self
            .members
            .get(&target)
            .expect("probe targets are members");
        let addr = rec.member().addr;
        let rtt = Duration::from_micros(rec.rtt_us.into());
        let mut msgs = Vec::with_capacity(2);
        // Lifeguard's buddy system: tell a suspect it is suspected, so it can refute at once.
        if rec.member().state == State::Suspect {
            msgs.push(Message::Update(Update::Suspect(Suspect {
                name: target.to_string(),
                run: rec.member().run,
                incarnation: rec.member().incarnation,
                from: self.me.name.clone(),
            })));
        }
        msgs.push(Message::Ping(Ping {
            seq,
            target: target.to_string(),
        }));
        self.send(addr, msgs);
        self.stats.probes_sent += 1;
        let wait = self.awareness.scale(self.cfg.probe_timeout);
        self.probe = Some(Probe {
            seq,
            target,
            addr,
            sent: now,
            ack_deadline: now + wait,
            give_up: now + (wait * 2).max(rtt * 2),
            indirect: false,
            expected_nacks: 0,
            nacks: 0,
        });
    }

    fn probe_indirectly(&mut self) {
        let Some(p) = self.probe.as_mut() else { return };
        p.indirect = true;
        let (seq, target, addr) = (p.seq, p.target.clone(), p.addr);
        let members = &self.members;
        let relays = self
            .members
            .sample_live(&mut self.rng, self.cfg.indirect_checks, |n| {
                n == &*target
                    || members
                        .get(n)
                        .is_none_or(|r| r.member().state != State::Alive)
            });
        for relay in &relays {
            let relay_addr = self.members.get(relay).expect("sampled").member().addr;
            let req = PingReq {
                seq,
                target: target.to_string(),
                addr,
            };
            self.send(relay_addr, vec![Message::PingReq(req)]);
            self.stats.indirect_probes_sent += 1;
        }
        if let Some(p) = self.probe.as_mut() {
            p.expected_nacks = relays.len() as u32;
        }
        if self.cfg.stream_fallback_probe {
            let ping = Message::Ping(Ping {
                seq,
                target: target.to_string(),
            });
            let payload = codec::encode_messages(&self.cfg.label, [&ping]);
            self.stream(addr, payload);
        }
    }

    /// An ack for `seq`; `direct` is the datagram's sender (none over a stream).
    fn handle_ack(&mut self, now: Instant, seq: u32, direct: Option<SocketAddr>) {
        if let Some(p) = self.probe.take_if(|p| p.seq == seq) {
            if direct == Some(p.addr) {
                self.sample_rtt(&p.target, now - p.sent);
            }
            self.awareness.apply(-1);
            return;
        }
        if let Some(l) = self
            .late
            .take_if(|l| l.seq == seq && direct == Some(l.addr))
        {
            self.sample_rtt(&l.target, now - l.sent);
            return;
        }
        if let Some(i) = self.relays.iter().position(|r| r.seq == seq) {
            let r = self.relays.swap_remove(i);
            self.send(r.origin, vec![Message::Ack(Ack { seq: r.origin_seq })]);
        }
    }

    /// Folds one round-trip sample into the member's smoothed RTT (weight 1/8, as TCP's).
    fn sample_rtt(&mut self, name: &str, rtt: Duration) {
        if let Some(rec) = self.members.get_mut(name) {
            let sample = u64::try_from(rtt.as_micros()).unwrap_or(u64::MAX);
            let old = u64::from(rec.rtt_us);
            let smoothed = if old == 0 {
                sample
            } else {
                (7 * old).saturating_add(sample) / 8
            };
            rec.rtt_us = u32::try_from(smoothed.max(1)).unwrap_or(u32::MAX);
        }
    }

    /// The probe failed (no ack by its give-up time or the end of the period): Lifeguard
    /// blames missing nacks on this node's own health, and the target becomes suspect.
    fn finish_probe(&mut self, now: Instant) {
        let Some(p) = self.probe.take() else { return };
        self.late = Some(LateAck {
            seq: p.seq,
            target: p.target.clone(),
            addr: p.addr,
            sent: p.sent,
        });
        let delta = if p.expected_nacks > 0 {
            (p.expected_nacks - p.nacks.min(p.expected_nacks)) as i32
        } else {
            1
        };
        self.awareness.apply(delta);
        let Some(rec) = self.members.get(&p.target) else {
            return;
        };
        // A failed probe of a member already suspected by others is an independent
        // confirmation (Lifeguard), which shortens its suspicion timeout.
        if rec.member().state.is_live() && rec.member().addr == p.addr {
            let s = Suspect {
                name: p.target.to_string(),
                run: rec.member().run,
                incarnation: rec.member().incarnation,
                from: self.me.name.clone(),
            };
            if rec.member().state == State::Alive {
                self.stats.suspicions_raised += 1;
                // Tell the suspect at once, not only through gossip: a live member then
                // refutes within a round trip, which keeps a short suspicion timeout safe.
                self.send(p.addr, vec![Message::Update(Update::Suspect(s.clone()))]);
            }
            self.apply(now, Update::Suspect(s), &mut 0);
        }
    }

    fn relay(&mut self, now: Instant, origin: SocketAddr, req: PingReq) {
        if self.relays.len() >= MAX_RELAYS {
            return;
        }
        let seq = self.next_seq();
        self.send(
            req.addr,
            vec![Message::Ping(Ping {
                seq,
                target: req.target,
            })],
        );
        self.relays.push(Relay {
            seq,
            origin,
            origin_seq: req.seq,
            nack_at: Some(now + self.cfg.probe_timeout.mul_f64(0.8)),
            expires: now + self.cfg.probe_interval,
        });
    }

    fn expire_relays(&mut self, now: Instant) {
        let mut nacks = Vec::new();
        self.relays.retain_mut(|r| {
            if r.nack_at.is_some_and(|t| now >= t) {
                r.nack_at = None;
                nacks.push((r.origin, r.origin_seq));
            }
            now < r.expires
        });
        for (origin, seq) in nacks {
            self.send(origin, vec![Message::Nack(Nack { seq })]);
        }
    }

    // ----- rumours -------------------------------------------------------------------------

    /// Applies one rumour. `newcomers` is how many unknown members may still be admitted from
    /// the packet being handled.
    fn apply(&mut self, now: Instant, u: Update, newcomers: &mut usize) {
        match u {
            Update::Alive(a) => self.apply_alive(now, a, newcomers),
            Update::Suspect(s) => self.apply_suspect(now, s),
            Update::Dead(d) => self.apply_dead(now, d),
            Update::Left(l) => self.apply_left(now, l),
        }
    }

    fn apply_alive(&mut self, now: Instant, a: Alive, newcomers: &mut usize) {
        if a.name == self.me.name {
            return self.alive_about_me(now, a);
        }
        let Some(rec) = self.members.get(a.name.as_str()) else {
            return self.admit(now, a, newcomers);
        };
        let m = rec.member();
        if a.run < m.run {
            return;
        }
        if a.run == m.run {
            if a.addr != m.addr && m.state.is_live() {
                self.events.push_back(Event::NameConflict {
                    name: a.name,
                    existing: m.addr,
                    claimant: a.addr,
                });
                return;
            }
            if a.incarnation <= m.incarnation {
                return;
            }
        }
        let old = m.state;
        let restarted = a.run > m.run;
        let updated = a.meta != m.meta || a.addr != m.addr;
        self.queue(&Update::Alive(a.clone()));
        let member = self.change(now, &alive_member(a));
        let event = match old {
            State::Dead | State::Left => Some(Event::Joined(member)),
            _ if restarted => Some(Event::Restarted(member)),
            State::Suspect => {
                self.stats.members_recovered += 1;
                Some(Event::Recovered(member))
            }
            State::Alive => updated.then_some(Event::Updated(member)),
        };
        self.events.extend(event);
    }

    fn admit(&mut self, now: Instant, a: Alive, newcomers: &mut usize) {
        if *newcomers == 0 || self.members.len() + 1 >= self.cfg.max_members {
            self.stats.members_refused += 1;
            return;
        }
        *newcomers -= 1;
        self.queue(&Update::Alive(a.clone()));
        let name = self.names.name(&a.name);
        self.order.insert(&mut self.rng, name);
        let member = self.change(now, &alive_member(a));
        self.events.push_back(Event::Joined(member));
    }

    /// Adds members known out of band, as if each had just joined: a saved view, or a
    /// simulator that starts from a converged mesh instead of replaying its cold start. Each
    /// new member is reported as [`Event::Joined`] and is alive with its given run,
    /// incarnation, address and metadata (its `state` is ignored); nothing is gossiped, since
    /// whoever supplies the view is expected to give it to every node. Members already known,
    /// this node itself, and any beyond [`Config::max_members`] are skipped. They are probed
    /// from the next round of the probe order on.
    pub fn assume_alive<'a>(
        &mut self,
        now: Instant,
        members: impl IntoIterator<Item = &'a Member>,
    ) {
        for m in members {
            if m.name == self.me.name || self.members.get(&m.name).is_some() {
                continue;
            }
            if self.members.len() + 1 >= self.cfg.max_members {
                self.stats.members_refused += 1;
                continue;
            }
            let member = if m.state == State::Alive {
                self.change(now, m)
            } else {
                self.change(
                    now,
                    &Member {
                        state: State::Alive,
                        ..m.clone()
                    },
                )
            };
            self.events.push_back(Event::Joined(member));
        }
    }

    fn alive_about_me(&mut self, now: Instant, a: Alive) {
        if self.leaving || a.run < self.me.run {
            // A rumour about a previous run of this node: peers learn the new run from its
            // own alive messages.
            return;
        }
        if a.run > self.me.run || a.addr != self.me.addr {
            self.events.push_back(Event::NameConflict {
                name: a.name,
                existing: self.me.addr,
                claimant: a.addr,
            });
            return;
        }
        if a.incarnation > self.me.incarnation
            || (a.incarnation == self.me.incarnation && a.meta != self.me.meta)
        {
            self.refute(now, a.incarnation);
        }
    }

    fn apply_suspect(&mut self, now: Instant, s: Suspect) {
        if s.name == self.me.name {
            if self.leaving || s.run != self.me.run {
                return;
            }
            if s.incarnation >= self.me.incarnation {
                self.refute(now, s.incarnation);
            }
            // Answer the accuser directly as well, even when its news is already outdated
            // (it probed with a suspicion this node has refuted): its timer is running, and
            // gossip alone may never bring it the refutation in time.
            if let Some(addr) = self.members.get(&s.from).map(|r| r.member().addr) {
                self.send(addr, vec![Message::Update(self.alive_self())]);
            }
            return;
        }
        let n = self.live_count();
        let Some(rec) = self.members.get_mut(s.name.as_str()) else {
            return;
        };
        if s.run != rec.member().run || s.incarnation < rec.member().incarnation {
            return;
        }
        match rec.member().state {
            State::Dead | State::Left => {}
            State::Suspect => {
                // The suspicion started when the member became suspect.
                let started = rec.changed();
                let Some(susp) = rec.suspicion.as_mut() else {
                    return;
                };
                let old = started + susp.timeout();
                if susp.confirm(&s.from) {
                    let new = started + susp.timeout();
                    let name = self.names.name(&s.name);
                    self.suspicions.remove(&(old, name.clone()));
                    self.suspicions.insert((new, name));
                    self.queue(&Update::Suspect(s));
                }
            }
            State::Alive => {
                let member = Member {
                    incarnation: s.incarnation,
                    state: State::Suspect,
                    ..rec.member().clone()
                };
                // Lifeguard: expect k confirmations, if that many others exist.
                let k = self.cfg.suspicion_confirmations;
                let expected = if n.saturating_sub(2) < k as usize {
                    0
                } else {
                    k
                };
                let min = min_timeout(self.cfg.suspicion_mult, n, self.cfg.probe_interval);
                let max = min * self.cfg.suspicion_max_timeout_mult;
                let susp = Box::new(Suspicion::new(&s.from, expected, min, max));
                let heard = s.from != self.me.name;
                self.queue(&Update::Suspect(s));
                let member = self.change(now, &member);
                let name = self.names.name(&member.name);
                self.suspicions.insert((now + susp.timeout(), name.clone()));
                self.members.get_mut(&name).expect("present").suspicion = Some(susp);
                if heard {
                    // Probe it next: a failure here is an independent confirmation.
                    self.order.probe_soon(&name);
                }
                self.events.push_back(Event::Suspect(member));
            }
        }
    }

    fn suspicion_expired(&mut self, now: Instant, name: &str) {
        let Some(rec) = self.members.get(name) else {
            return;
        };
        if rec.member().state != State::Suspect {
            return;
        }
        self.stats.deaths_declared += 1;
        let d = Dead {
            name: name.to_owned(),
            run: rec.member().run,
            incarnation: rec.member().incarnation,
            from: self.me.name.clone(),
        };
        self.apply_dead(now, d);
    }

    fn apply_dead(&mut self, now: Instant, d: Dead) {
        if d.name == self.me.name {
            if !self.leaving && d.run == self.me.run && d.incarnation >= self.me.incarnation {
                self.refute(now, d.incarnation);
            }
            return;
        }
        let Some(rec) = self.members.get(d.name.as_str()) else {
            return;
        };
        let m = rec.member();
        if d.run != m.run || d.incarnation < m.incarnation || !m.state.is_live() {
            return;
        }
        let member = Member {
            incarnation: d.incarnation,
            state: State::Dead,
            ..m.clone()
        };
        self.queue(&Update::Dead(d));
        let member = self.change(now, &member);
        self.events.push_back(Event::Dead(member));
    }

    fn apply_left(&mut self, now: Instant, l: Left) {
        if l.name == self.me.name {
            if !self.leaving && l.run == self.me.run && l.incarnation >= self.me.incarnation {
                self.refute(now, l.incarnation);
            }
            return;
        }
        let Some(rec) = self.members.get(l.name.as_str()) else {
            return;
        };
        let m = rec.member();
        if l.run != m.run || l.incarnation < m.incarnation || m.state == State::Left {
            return;
        }
        let member = Member {
            incarnation: l.incarnation,
            state: State::Left,
            ..m.clone()
        };
        self.queue(&Update::Left(l));
        let member = self.change(now, &member);
        self.events.push_back(Event::Left(member));
    }

    /// Someone claims this node is suspect, dead or left (or holds a newer record of it):
    /// answer with a higher incarnation. Lifeguard counts it against local health, since a
    /// node others cannot hear is likely the slow one.
    fn refute(&mut self, now: Instant, accused: u32) {
        self.me.incarnation = self.me.incarnation.max(accused) + 1;
        self.stats.refutations += 1;
        self.awareness.apply(1);
        self.broadcast_alive_self(now);
    }

    fn broadcast_alive_self(&mut self, _now: Instant) {
        let a = self.alive_self();
        self.queue(&a);
    }

    /// This node's own alive rumour, at its current incarnation.
    fn alive_self(&self) -> Update {
        Update::Alive(Alive {
            name: self.me.name.clone(),
            run: self.me.run,
            incarnation: self.me.incarnation,
            addr: self.me.addr,
            meta: self.me.meta.clone(),
        })
    }

    /// Sets the record of `m.name` to `m` (adding it if new), keeping the pools, timers and
    /// tombstones in step with its state. Returns a copy of the member for the event.
    fn change(&mut self, now: Instant, m: &Member) -> Member {
        let name = self.names.name(&m.name);
        let member = self.names.member(m);
        if let Some(previous) = self.members.set(name.clone(), Arc::clone(&member), now) {
            if let Some(s) = previous.suspicion {
                self.suspicions
                    .remove(&(previous.changed + s.timeout(), name.clone()));
            }
            if matches!(previous.state, State::Dead | State::Left) {
                self.gone.remove(&(previous.changed, name.clone()));
            }
        }
        if matches!(member.state, State::Dead | State::Left) {
            self.gone.insert((now, name));
        }
        (*member).clone()
    }

    /// Applies a full state, each record as the rumour it implies. Takes it by value: at
    /// thousands of members, copying each name and metadata again costs more than the merge.
    fn merge(&mut self, now: Instant, pp: PushPull) {
        let mut newcomers = usize::MAX;
        for m in pp.members {
            let u = match m.state {
                State::Alive => Update::Alive(Alive {
                    name: m.name,
                    run: m.run,
                    incarnation: m.incarnation,
                    addr: m.addr,
                    meta: m.meta,
                }),
                State::Left => Update::Left(Left {
                    name: m.name,
                    run: m.run,
                    incarnation: m.incarnation,
                }),
                // Another node's verdict of death is only grounds for suspicion here: the
                // member gets its chance to refute (memberlist does the same).
                State::Suspect | State::Dead => Update::Suspect(Suspect {
                    name: m.name,
                    run: m.run,
                    incarnation: m.incarnation,
                    from: pp.from.clone(),
                }),
            };
            self.apply(now, u, &mut newcomers);
        }
    }

    fn reap(&mut self, now: Instant) {
        while let Some((at, name)) = self.gone.first().cloned() {
            if at + self.cfg.dead_retention > now {
                break;
            }
            self.gone.pop_first();
            self.members.remove(&name);
        }
    }

    // ----- sending -------------------------------------------------------------------------

    fn decode(&mut self, bytes: &[u8], t: Transport) -> Result<codec::Envelope, DecodeError> {
        codec::decode(bytes, &self.cfg.label, &self.limits, t).inspect_err(|_| {
            self.stats.decode_errors += 1;
        })
    }

    fn queue(&mut self, u: &Update) {
        let frame = codec::encode_frame(&Message::Update(u.clone()));
        self.broadcasts.push(self.names.name(u.name()), frame);
    }

    fn retransmit_limit(&self) -> u32 {
        retransmit_limit(self.cfg.retransmit_mult, self.members.live().len() + 1)
    }

    /// Sends `msgs` in one datagram, filling the rest of it with rumours.
    fn send(&mut self, to: SocketAddr, msgs: Vec<Message>) {
        let mut frames: Vec<Frame> = msgs.iter().map(codec::encode_frame).collect();
        // Two bytes of slack: the frame count's varint may grow once rumours are added.
        let used = codec::envelope_len(&self.cfg.label, &frames) + 2;
        let limit = self.retransmit_limit();
        frames.extend(
            self.broadcasts
                .take(self.cfg.max_datagram.saturating_sub(used), limit),
        );
        self.datagram(to, frames);
    }

    fn datagram(&mut self, to: SocketAddr, frames: Vec<Frame>) {
        let payload = codec::encode_envelope(&self.cfg.label, frames);
        self.stats.packets_out += 1;
        self.stats.bytes_out += payload.len() as u64;
        self.out.push_back(Transmit {
            to,
            payload,
            channel: Channel::Datagram,
        });
    }

    fn stream(&mut self, to: SocketAddr, payload: Bytes) {
        self.stats.streams_out += 1;
        self.stats.stream_bytes_out += payload.len() as u64;
        self.out.push_back(Transmit {
            to,
            payload,
            channel: Channel::Stream,
        });
    }

    fn gossip(&mut self) {
        if self.broadcasts.len() == 0 {
            return;
        }
        let targets = self
            .members
            .sample_live(&mut self.rng, self.cfg.gossip_nodes, |_| false);
        let budget = self.cfg.max_datagram - codec::envelope_overhead(&self.cfg.label, 1000);
        for t in targets {
            let limit = self.retransmit_limit();
            let frames = self.broadcasts.take(budget, limit);
            if frames.is_empty() {
                break;
            }
            let addr = self.members.get(&t).expect("sampled").member().addr;
            self.datagram(addr, frames);
        }
    }

    fn full_state(&self, join: bool, reply: bool) -> Frame {
        codec::push_pull_frame(&self.me.name, join, reply, self.members())
    }

    fn push_pull(&mut self, addr: SocketAddr, join: bool) {
        let payload = codec::encode_envelope(&self.cfg.label, vec![self.full_state(join, true)]);
        self.stream(addr, payload);
    }

    /// memberlist's push-pull scaling: past 32 members, the interval grows with log2 n so the
    /// mesh-wide rate of full-state exchanges stays bounded.
    fn push_pull_interval(&self) -> Duration {
        let n = self.live_count();
        if n <= 32 {
            return self.cfg.push_pull_interval;
        }
        let mult = ((n as f64).log2() - 32f64.log2()).ceil() + 1.0;
        self.cfg.push_pull_interval.mul_f64(mult)
    }
}

fn check_meta(cfg: &Config, meta: &[u8]) -> Result<(), ConfigError> {
    if meta.len() > cfg.max_meta {
        return Err(ConfigError {
            field: "meta",
            reason: format!("{} bytes exceeds max_meta ({})", meta.len(), cfg.max_meta),
        });
    }
    Ok(())
}

/// The record an alive rumour describes.
fn alive_member(a: Alive) -> Member {
    Member {
        name: a.name,
        addr: a.addr,
        run: a.run,
        incarnation: a.incarnation,
        state: State::Alive,
        meta: a.meta,
    }
}

/// Pops the front of an output queue, releasing its buffer once a burst (a full-state merge
/// reports one event per new member) has been drained: otherwise every node would keep
/// room for a burst's worth of items for good, which across many nodes in one process
/// costs as much as the member tables.
fn pop_and_trim<T>(q: &mut VecDeque<T>) -> Option<T> {
    /// Items a queue keeps room for after it empties.
    const KEEP: usize = 16;
    let item = q.pop_front();
    if q.is_empty() && q.capacity() > 4 * KEEP {
        q.shrink_to(KEEP);
    }
    item
}
