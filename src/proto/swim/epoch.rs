//! The placement epoch: a Lamport clock of ownership changes that fencing tokens are made of.
//!
//! A node that gains tasks advances its epoch and claims them at the new value; every node
//! keeps the highest epoch it hears. So when a task passes from one owner to the next, the
//! next owner, which has heard from the mesh since the first owner claimed, claims it at a
//! higher epoch. The epoch starts at the node's run (a start time in milliseconds), so a mesh
//! restarted as a whole still claims above everything its previous runs claimed.
//!
//! A rise travels like a rumour: piggybacked on the next datagrams, as many as a rumour's
//! retransmit limit, and on every full-state exchange, which repairs whatever gossip missed.
//! An idle mesh whose epoch does not move sends no epoch at all.

use super::Swim;
use crate::wire::codec::{self, Frame};
use crate::wire::{Epoch, Message};

impl Swim {
    /// The highest placement epoch this node has claimed at or heard of.
    #[must_use]
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// Advances the epoch `steps` past everything heard so far and returns it: call it when
    /// this node gains or loses tasks (placement decides by how much), and hold them at the
    /// value returned.
    pub fn advance_epoch(&mut self, steps: u64) -> u64 {
        self.epoch = self.epoch.saturating_add(steps);
        self.epoch_sends = self.retransmit_limit();
        self.epoch
    }

    /// Keeps `epoch` if it is higher than this node's, and passes the rise on.
    pub(super) fn observe_epoch(&mut self, epoch: u64) {
        if epoch > self.epoch {
            self.epoch = epoch;
            self.epoch_sends = self.retransmit_limit();
        }
    }

    /// The epoch frame for the next datagram, while a rise is still being passed on.
    pub(super) fn datagram_epoch(&mut self) -> Option<Frame> {
        self.epoch_sends = self.epoch_sends.checked_sub(1)?;
        Some(self.stream_epoch())
    }

    /// The epoch frame every stream payload carries.
    pub(super) fn stream_epoch(&self) -> Frame {
        codec::encode_frame(&Message::Epoch(Epoch { epoch: self.epoch }))
    }
}
