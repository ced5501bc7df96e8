//! The SWIM + Lifeguard state machine: the node's state, its inputs and outputs. Each concern
//! lives in a submodule: [`probe`], [`gossip`] (dissemination), [`apply`] (rumours about
//! others), [`sync`] (full-state exchange), [`local`] (this node's own record), [`admin`]
//! (an operator's word about other members), [`epoch`] (the clock fencing tokens come
//! from), [`evidence`] (what the driver learned about a probed member's host) and [`user`]
//! (user events).

mod admin;
mod apply;
mod epoch;
mod evidence;
mod gossip;
mod local;
mod probe;
mod sync;
mod user;

use std::collections::{BTreeSet, VecDeque};
use std::net::SocketAddr;
use std::ops::Bound;
use std::time::{Duration, Instant};

use bytes::Bytes;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::awareness::Awareness;
use super::broadcast::Broadcasts;
use super::config::{Config, ConfigError};
use super::error::{ProtoError, check_meta};
use super::event::{Event, Member, Transmit};
use super::interner::{Interner, Name};
use super::order::ProbeOrder;
use super::stats::Stats;
use super::table::{Record, Table};
use super::user_events::UserEventState;
use crate::wire::codec::{self, Limits, Transport};
use crate::wire::user::UserEvent;
use crate::wire::{Ack, DecodeError, MAX_NAME_LEN, Message, State};
use probe::{LateAck, Probe, Relay};

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
    /// User events waiting to be disseminated, and what was delivered (see [`user`]).
    user_events: UserEventState,
    awareness: Awareness,
    rng: ChaCha8Rng,
    seq: u32,
    probe: Option<Probe>,
    late: Option<LateAck>,
    /// The last ping to a dead member (its seq and address): an answer means the member is
    /// back (a healed partition), and a full-state exchange merges the two views.
    revive: Option<(u32, SocketAddr)>,
    /// A live member's address that refused a datagram or stream outside any probe: probed
    /// next (see [`Swim::handle_reach`]).
    refused: Option<SocketAddr>,
    relays: Vec<Relay>,
    suspicions: BTreeSet<(Instant, Name)>,
    next_probe: Instant,
    next_gossip: Instant,
    next_push_pull: Instant,
    next_reconnect: Instant,
    next_reap: Instant,
    /// See [`epoch`]: the placement epoch, and how many more datagrams carry its last rise.
    epoch: u64,
    epoch_sends: u32,
    out: VecDeque<Transmit>,
    events: VecDeque<Event>,
    delivered: VecDeque<UserEvent>,
    stats: Stats,
}

impl Swim {
    /// A node that knows only itself. `seed` drives every random choice it makes.
    pub fn new(cfg: Config, id: Identity, seed: u64, now: Instant) -> Result<Swim, ProtoError> {
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
    ) -> Result<Swim, ProtoError> {
        cfg.validate()?;
        if id.name.is_empty() || id.name.len() > MAX_NAME_LEN {
            return Err(ConfigError {
                field: "name",
                reason: format!("must be 1 to {MAX_NAME_LEN} bytes"),
            }
            .into());
        }
        check_meta(cfg.max_meta, &id.meta)?;
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
            user_events: user::user_event_state(cfg.max_datagram, &cfg.label),
            awareness: Awareness::new(cfg.awareness_max_multiplier),
            rng,
            seq: 0,
            probe: None,
            late: None,
            revive: None,
            refused: None,
            relays: Vec::new(),
            suspicions: BTreeSet::new(),
            next_probe,
            next_gossip,
            next_push_pull,
            next_reconnect,
            next_reap: now + cfg.probe_interval,
            epoch: id.run,
            epoch_sends: 0,
            out: VecDeque::new(),
            events: VecDeque::new(),
            delivered: VecDeque::new(),
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

    /// Whether this node should still retry its seeds ([`SeedRetry`](super::SeedRetry)): it
    /// is alive and knows no other live member.
    pub fn needs_seeds(&self) -> bool {
        super::seeds_needed(self.me.state, self.live_count())
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
        self.leaving
            && (self.members.live().is_empty() || !self.broadcasts.contains(self.me.name.as_str()))
    }

    // ----- output --------------------------------------------------------------------------

    /// The next packet to send, if any. Call until `None` after every input: every
    /// `handle_*` call and operation may queue packets, and nothing else does.
    #[must_use]
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        pop_and_trim(&mut self.out)
    }

    /// The next membership event, if any, in the order the changes were applied. Call until
    /// `None` after every input, like [`Swim::poll_transmit`].
    #[must_use]
    pub fn poll_event(&mut self) -> Option<Event> {
        pop_and_trim(&mut self.events)
    }

    /// The instant at which [`Swim::handle_timeout`] should next be called. Any input may
    /// move it, so ask again after each. After `handle_timeout(now)` it is later than `now`:
    /// the core advances every timer that was due, so a driver never spins.
    #[must_use]
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
                Message::Reached(r) => self.handle_reached(now, from, r),
                Message::Update(u) => self.apply(now, u, &mut newcomers),
                Message::Epoch(e) => self.observe_epoch(e.epoch),
                Message::UserEvent(e) => self.take_user_event(now, e),
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
                Message::Epoch(e) => self.observe_epoch(e.epoch),
                // User events travel in datagrams only.
                Message::Nack(_)
                | Message::PingReq(_)
                | Message::Reached(_)
                | Message::UserEvent(_) => {}
            }
        }
        if reply.is_empty() {
            return Ok(None);
        }
        reply.insert(0, self.stream_epoch());
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
            self.reconnect();
            self.next_reconnect = now + self.cfg.reconnect_interval;
        }
        if now >= self.next_reap {
            self.reap(now);
            self.next_reap = now + self.cfg.probe_interval;
        }
        debug_assert!(
            self.poll_timeout() > now,
            "a timer due at {now:?} was not advanced"
        );
    }

    // ----- probing -------------------------------------------------------------------------

    // ----- rumours -------------------------------------------------------------------------

    // ----- sending -------------------------------------------------------------------------

    fn decode(&mut self, bytes: &[u8], t: Transport) -> Result<codec::Envelope, DecodeError> {
        let env = codec::decode(bytes, &self.cfg.label, &self.limits, t).inspect_err(|_| {
            self.stats.decode_errors += 1;
        })?;
        self.stats.user_events_malformed += env.malformed_user_events as u64;
        Ok(env)
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
