//! Probing: the direct ping, the indirect ping-req through relays and the stream fallback,
//! acks and nacks, round-trip times, and the failed probe that raises a suspicion.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::Swim;
use crate::proto::interner::Name;
use crate::wire::codec;
use crate::wire::{Ack, Message, Nack, Ping, PingReq, Reach, State, Suspect, Update};

/// The last failed probe, whose ack may still come: a late direct ack still measures the
/// target's round-trip time, so a slow member gets more patience from the next probe.
pub(super) struct LateAck {
    pub(super) seq: u32,
    pub(super) target: Name,
    pub(super) addr: SocketAddr,
    pub(super) sent: Instant,
}

pub(super) struct Probe {
    pub(super) seq: u32,
    pub(super) target: Name,
    pub(super) addr: SocketAddr,
    pub(super) sent: Instant,
    pub(super) ack_deadline: Instant,
    /// When the probe fails if no ack came, directly or through the relays: the relays get
    /// as long as the direct ping had, and a slow target twice its round-trip time. The end
    /// of the probe period caps it too.
    pub(super) give_up: Instant,
    pub(super) indirect: bool,
    pub(super) expected_nacks: u32,
    pub(super) nacks: u32,
    /// Vantage points (this node's address, or a relay's) that saw the target's port
    /// refused: see [`evidence`](super::evidence).
    pub(super) refused_by: Vec<SocketAddr>,
    /// Whether a stream handshake with the target completed, here or at a relay.
    pub(super) host_up: bool,
}

impl Probe {
    /// What the probe learned about the target's host, for the suspicion it raises: a live
    /// host outweighs a refusal (see `Suspicion::timeout`).
    pub(super) fn reach(&self) -> Option<Reach> {
        if self.host_up {
            Some(Reach::HostUp)
        } else if self.refused_by.is_empty() {
            None
        } else {
            Some(Reach::Refused)
        }
    }
}

/// A ping-req this node is relaying.
pub(super) struct Relay {
    pub(super) seq: u32,
    /// The target's address, which the driver's reports name.
    pub(super) target: SocketAddr,
    /// What this relay already told the origin about the target, so it tells each once.
    pub(super) told: Vec<Reach>,
    pub(super) origin: SocketAddr,
    pub(super) origin_seq: u32,
    pub(super) nack_at: Option<Instant>,
    pub(super) expires: Instant,
}

/// Bound on ping-reqs relayed at once, so a flood cannot grow memory.
pub(super) const MAX_RELAYS: usize = 1024;

impl Swim {
    pub(super) fn next_seq(&mut self) -> u32 {
        self.seq = self.seq.wrapping_add(1);
        self.seq
    }

    pub(super) fn start_probe(&mut self, now: Instant) {
        self.probe_refused_soon();
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
                reach: None,
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
            refused_by: Vec::new(),
            host_up: false,
        });
    }

    pub(super) fn probe_indirectly(&mut self) {
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
        self.stream_probe(seq, &target, addr);
    }

    /// memberlist's TCP fallback: the same ping over a stream, whose answer (or the
    /// driver's word on how the connection went: refused, or a live host) comes back too.
    fn stream_probe(&mut self, seq: u32, target: &str, addr: SocketAddr) {
        if self.cfg.stream_fallback_probe {
            let ping = Message::Ping(Ping {
                seq,
                target: target.to_owned(),
            });
            let payload = codec::encode_messages(&self.cfg.label, [&ping]);
            self.stream(addr, payload);
        }
    }

    /// An ack for `seq`; `direct` is the datagram's sender (none over a stream).
    pub(super) fn handle_ack(&mut self, now: Instant, seq: u32, direct: Option<SocketAddr>) {
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
        if self.revived(seq, direct) {
            return;
        }
        if let Some(i) = self.relays.iter().position(|r| r.seq == seq) {
            let r = self.relays.swap_remove(i);
            self.send(r.origin, vec![Message::Ack(Ack { seq: r.origin_seq })]);
        }
    }

    /// Folds one round-trip sample into the member's smoothed RTT (weight 1/8, as TCP's).
    pub(super) fn sample_rtt(&mut self, name: &str, rtt: Duration) {
        self.stats.probe_rtt.observe(rtt);
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
    pub(super) fn finish_probe(&mut self, now: Instant) {
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
                reach: p.reach(),
            };
            if rec.member().state == State::Alive {
                self.stats.suspicions_raised += 1;
                self.stats.stalls_seen += u64::from(p.host_up);
                // Tell the suspect at once, not only through gossip: a live member then
                // refutes within a round trip, which keeps a short suspicion timeout safe.
                self.send(p.addr, vec![Message::Update(Update::Suspect(s.clone()))]);
            }
            self.apply(now, Update::Suspect(s), &mut 0);
        }
    }

    pub(super) fn relay(&mut self, now: Instant, origin: SocketAddr, req: PingReq) {
        if self.relays.len() >= MAX_RELAYS {
            return;
        }
        let seq = self.next_seq();
        self.send(
            req.addr,
            vec![Message::Ping(Ping {
                seq,
                target: req.target.clone(),
            })],
        );
        // A second vantage point on the target's host: the prober's evidence alone is not
        // enough to declare it dead.
        self.stream_probe(seq, &req.target, req.addr);
        self.relays.push(Relay {
            seq,
            target: req.addr,
            told: Vec::new(),
            origin,
            origin_seq: req.seq,
            nack_at: Some(now + self.cfg.probe_timeout.mul_f64(0.8)),
            expires: now + self.cfg.probe_interval,
        });
    }

    pub(super) fn expire_relays(&mut self, now: Instant) {
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
}
