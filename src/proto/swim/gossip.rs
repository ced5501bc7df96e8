//! Dissemination: queueing rumours, piggybacking them on every datagram, and the periodic
//! gossip round.

use std::net::SocketAddr;

use bytes::Bytes;

use super::Swim;
use crate::proto::broadcast::retransmit_limit;
use crate::proto::event::{Channel, Transmit};
use crate::wire::codec::{self, Frame};
use crate::wire::{Message, Update};

impl Swim {
    pub(super) fn queue(&mut self, u: &Update) {
        let frame = codec::encode_frame(&Message::Update(u.clone()));
        self.broadcasts.push(self.names.name(u.name()), frame);
    }

    pub(super) fn retransmit_limit(&self) -> u32 {
        retransmit_limit(self.cfg.retransmit_mult, self.members.live().len() + 1)
    }

    /// Sends `msgs` in one datagram, filling the rest of it with rumours (user events only
    /// if [`Swim::carries_events`]).
    pub(super) fn send(&mut self, to: SocketAddr, msgs: Vec<Message>) {
        let events = Swim::carries_events(&msgs);
        let mut frames: Vec<Frame> = self.datagram_epoch().into_iter().collect();
        frames.extend(msgs.iter().map(codec::encode_frame));
        // Two bytes of slack: the frame count's varint may grow once rumours are added.
        let used = codec::envelope_len(&self.cfg.label, &frames) + 2;
        let rumours = self.piggyback(self.cfg.max_datagram.saturating_sub(used), events);
        frames.extend(rumours);
        self.datagram(to, frames);
    }

    pub(super) fn datagram(&mut self, to: SocketAddr, frames: Vec<Frame>) {
        let payload = codec::encode_envelope(&self.cfg.label, frames);
        self.stats.packets_out += 1;
        self.stats.bytes_out += payload.len() as u64;
        self.out.push_back(Transmit {
            to,
            payload,
            channel: Channel::Datagram,
        });
    }

    pub(super) fn stream(&mut self, to: SocketAddr, payload: Bytes) {
        self.stats.streams_out += 1;
        self.stats.stream_bytes_out += payload.len() as u64;
        self.out.push_back(Transmit {
            to,
            payload,
            channel: Channel::Stream,
        });
    }

    pub(super) fn gossip(&mut self) {
        if self.broadcasts.is_empty() && self.user_events.queue.is_empty() {
            return;
        }
        let targets = self
            .members
            .sample_live(&mut self.rng, self.cfg.gossip_nodes, |_| false);
        // Room for a thousand frames' count and for the epoch frame, which may ride along.
        let budget = self.cfg.max_datagram
            - codec::envelope_overhead(&self.cfg.label, 1000)
            - codec::epoch_frame_len(self.epoch);
        for t in targets {
            // A suspect target gets membership rumours only: with user events alone waiting,
            // the next target may still get them.
            let events = self.holds_alive(&t);
            let rumours = self.piggyback(budget, events);
            if rumours.is_empty() {
                continue;
            }
            let mut frames: Vec<Frame> = self.datagram_epoch().into_iter().collect();
            frames.extend(rumours);
            let addr = self.members.get(&t).expect("sampled").member().addr;
            self.datagram(addr, frames);
        }
    }
}
