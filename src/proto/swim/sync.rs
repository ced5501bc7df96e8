//! Full-state sync: joining through seeds, periodic push-pull, reconnecting to dead members,
//! merging a received state, and a view handed in out of band.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::Swim;
use crate::proto::error::ProtoError;
use crate::proto::event::{Event, Member};
use crate::wire::codec::{self, Frame};
use rand::Rng;

use crate::wire::{Alive, Left, Message, Ping, PushPull, State, Suspect, Update};

impl Swim {
    /// Starts a full-state exchange with each address (seeds or any member). Answers arrive
    /// through [`Swim::handle_stream`].
    ///
    /// Refused with [`ProtoError::Left`] once this node has left: joining again would undo
    /// the leave.
    pub fn join(&mut self, _now: Instant, addrs: &[SocketAddr]) -> Result<(), ProtoError> {
        if self.leaving {
            return Err(ProtoError::Left);
        }
        for &addr in addrs {
            if addr != self.me.addr {
                self.push_pull(addr, true);
            }
        }
        Ok(())
    }

    pub(super) fn full_state(&self, join: bool, reply: bool) -> Frame {
        codec::push_pull_frame(&self.me.name, join, reply, self.members())
    }

    pub(super) fn push_pull(&mut self, addr: SocketAddr, join: bool) {
        let frames = vec![self.stream_epoch(), self.full_state(join, true)];
        let payload = codec::encode_envelope(&self.cfg.label, frames);
        self.stream(addr, payload);
    }

    /// One attempt to reach a dead member, so a healed partition merges by itself. serf's
    /// rule: try with probability dead ÷ alive, so that the mesh as a whole makes about one
    /// attempt per dead member per interval rather than one per live member, while the side
    /// of a partition that lost most of the mesh tries every time. The attempt is a ping,
    /// which costs one datagram while the member stays gone; its ack starts a full-state
    /// exchange ([`Swim::revived`]).
    pub(super) fn reconnect(&mut self) {
        let dead = self.members.dead_count();
        if dead == 0 || self.rng.random_range(0..self.live_count()) >= dead {
            return;
        }
        let Some(name) = self.members.sample_dead(&mut self.rng) else {
            return;
        };
        let Some(addr) = self.member(&name).map(|m| m.addr) else {
            return;
        };
        let seq = self.next_seq();
        let ping = Ping {
            seq,
            target: name.to_string(),
        };
        self.send(addr, vec![Message::Ping(ping)]);
        self.stats.dead_pings_sent += 1;
        self.revive = Some((seq, addr));
    }

    /// A dead member answered the ping [`Swim::reconnect`] sent as `seq`: exchange full
    /// states with it, which brings each side the other's verdicts to refute. Returns
    /// whether the ack was that one.
    pub(super) fn revived(&mut self, seq: u32, from: Option<SocketAddr>) -> bool {
        let Some((_, addr)) = self.revive.take_if(|(s, a)| *s == seq && from == Some(*a)) else {
            return false;
        };
        self.push_pull(addr, false);
        true
    }

    /// memberlist's push-pull scaling: past 32 members, the interval grows with log2 n so the
    /// mesh-wide rate of full-state exchanges stays bounded.
    pub(super) fn push_pull_interval(&self) -> Duration {
        let n = self.live_count();
        if n <= 32 {
            return self.cfg.push_pull_interval;
        }
        let mult = ((n as f64).log2() - 32f64.log2()).ceil() + 1.0;
        self.cfg.push_pull_interval.mul_f64(mult)
    }

    /// Applies a full state, each record as the rumour it implies. Takes it by value: at
    /// thousands of members, copying each name and metadata again costs more than the merge.
    pub(super) fn merge(&mut self, now: Instant, pp: PushPull) {
        self.stats.states_merged += 1;
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
                    reach: None,
                }),
            };
            self.apply(now, u, &mut newcomers);
        }
    }

    /// Adds members known out of band, as if each had just joined: a saved view, or a
    /// simulator that starts from a converged mesh instead of replaying its cold start. Each
    /// new member is reported as [`Event::Joined`] and is alive with its given run,
    /// incarnation, address and metadata (its `state` is ignored); nothing is gossiped, since
    /// whoever supplies the view is expected to give it to every node. Members already known,
    /// this node itself, and any beyond [`Config::max_members`](crate::proto::Config::max_members) are skipped. They are probed
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
}
