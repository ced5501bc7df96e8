//! Crash evidence and patience: what the driver learned about a probed member's host.
//!
//! A process that exits leaves its live host refusing its port; a stopped one keeps its
//! sockets, so the kernel still completes stream handshakes; a host that is gone answers
//! nothing. The driver reports the first two ([`Reach`]) for the addresses this node pings
//! or opens streams to. During a probe, refusals seen from two vantage points (this node and
//! a relay of the indirect probe, or two relays) declare the target dead at once; one alone
//! only shortens the suspicion the failed probe raises, and a live host lengthens it to the
//! stall patience (see `Suspicion::timeout`). A relay passes on what its own driver saw. A
//! refusal of anything else sent to a live member (gossip, an ack) makes it the next probe.

use std::net::SocketAddr;
use std::time::Instant;

use super::Swim;
use crate::proto::suspicion::REFUSALS_FOR_DEATH;
use crate::wire::{Dead, Message, Reach, Reached};

impl Swim {
    /// The driver learned something about `addr`'s host beyond the protocol's own answers:
    /// a stream connection to it was refused or completed, or a datagram to it drew ICMP
    /// port unreachable. A driver may report every connection it makes: a live host matters
    /// only to the probe or relay of that address, and a refusal anywhere else only brings
    /// the refusing member's probe forward.
    ///
    /// With [`Config::crash_evidence`](crate::proto::Config::crash_evidence) off, refusals
    /// are ignored.
    pub fn handle_reach(&mut self, now: Instant, addr: SocketAddr, reach: Reach) {
        if reach == Reach::Refused && !self.cfg.crash_evidence {
            return;
        }
        let mut reports = Vec::new();
        for r in self.relays.iter_mut().filter(|r| r.target == addr) {
            if !r.told.contains(&reach) {
                r.told.push(reach);
                reports.push((r.origin, r.origin_seq));
            }
        }
        for (origin, seq) in reports {
            self.send(origin, vec![Message::Reached(Reached { seq, reach })]);
        }
        if self.probe.as_ref().is_some_and(|p| p.addr == addr) {
            let me = self.me.addr;
            self.probe_evidence(now, me, reach);
        } else if reach == Reach::Refused {
            self.refused_unprobed(now, addr);
        }
    }

    /// `addr` refused something this node sent outside a probe (gossip, an ack, a stream):
    /// the member there may have crashed. Waiting for its turn in the probe order would
    /// leave the refusal unused, so it is probed next, and at once if no probe is in flight
    /// and this node is healthy (Lifeguard: an unhealthy node probes less). The probe still
    /// needs a second vantage point before anyone dies. One address waits at a time and is
    /// looked up only when the probe starts, so a flood of refusals (forged or not) costs
    /// at most one early probe per failed-probe time, and never a scan per report.
    fn refused_unprobed(&mut self, now: Instant, addr: SocketAddr) {
        if self.leaving || self.refused.is_some() {
            return;
        }
        self.refused = Some(addr);
        if self.probe.is_none() && self.awareness.score() == 0 {
            self.next_probe = self.next_probe.min(now);
        }
    }

    /// Queues the member that refused outside a probe, if it is still live, to be probed
    /// next.
    pub(super) fn probe_refused_soon(&mut self) {
        let Some(addr) = self.refused.take() else {
            return;
        };
        let name = self
            .members
            .records()
            .iter()
            .find(|(_, r)| r.member().addr == addr && r.member().state.is_live())
            .map(|(name, _)| name.clone());
        if let Some(name) = name {
            self.order.probe_soon(&name);
        }
    }

    /// A relay's report about the target of the probe whose ping-req had `seq`.
    pub(super) fn handle_reached(&mut self, now: Instant, relay: SocketAddr, r: Reached) {
        if r.reach == Reach::Refused && !self.cfg.crash_evidence {
            return;
        }
        if self.probe.as_ref().is_some_and(|p| p.seq == r.seq) {
            self.probe_evidence(now, relay, r.reach);
        }
    }

    /// Evidence about the current probe's target, seen from `vantage`.
    fn probe_evidence(&mut self, now: Instant, vantage: SocketAddr, reach: Reach) {
        let Some(p) = self.probe.as_mut() else { return };
        match reach {
            Reach::HostUp => p.host_up = true,
            Reach::Refused => {
                if p.refused_by.contains(&vantage) {
                    return;
                }
                p.refused_by.push(vantage);
                self.stats.refusals_heard += 1;
                if p.refused_by.len() >= REFUSALS_FOR_DEATH {
                    self.dead_on_evidence(now);
                } else if !p.indirect {
                    // No need to wait out the ack: ask the relays for their view now.
                    self.probe_indirectly();
                }
            }
        }
    }

    /// Two vantage points saw the target's port refused: it is dead now, without a
    /// suspicion. The probe got its answers, so this node's health is not blamed.
    fn dead_on_evidence(&mut self, now: Instant) {
        let Some(p) = self.probe.take() else { return };
        let Some(m) = self.members.get(&p.target).map(|r| r.member()) else {
            return;
        };
        if !m.state.is_live() || m.addr != p.addr {
            return;
        }
        self.stats.deaths_on_evidence += 1;
        let d = Dead {
            name: p.target.to_string(),
            run: m.run,
            incarnation: m.incarnation,
            from: self.me.name.clone(),
        };
        self.apply_dead(now, d);
    }
}
