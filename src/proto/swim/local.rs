//! This node's own record: its metadata, its graceful leave, and its answer to rumours
//! about itself (refutation).

use std::time::Instant;

use bytes::Bytes;

use super::Swim;
use crate::proto::error::{ProtoError, check_meta};
use crate::proto::event::Event;
use crate::wire::{Alive, Left, State, Update};

impl Swim {
    /// Publishes new metadata: raises the incarnation and gossips it. Refused, changing
    /// nothing, when it is too large or this node has left.
    pub fn set_meta(&mut self, now: Instant, meta: Bytes) -> Result<(), ProtoError> {
        check_meta(self.cfg.max_meta, &meta)?;
        if self.leaving {
            return Err(ProtoError::Left);
        }
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

    pub(super) fn alive_about_me(&mut self, now: Instant, a: Alive) {
        if self.leaving {
            return;
        }
        if a.run < self.me.run && a.addr == self.me.addr {
            // A rumour about a previous run of this node: peers learn the new run from its
            // own alive messages.
            return;
        }
        // Another process holds this name, alive, at another address (an earlier run that
        // peers still think alive, or another node): peers keep it until it is dead or
        // left, so this node is told, as the holder is told of this one.
        if a.run != self.me.run || a.addr != self.me.addr {
            // An earlier run elsewhere is the holder peers keep, and this node the claimant;
            // a later one is the claimant peers refuse.
            let (existing, claimant) = if a.run < self.me.run {
                (a.addr, self.me.addr)
            } else {
                (self.me.addr, a.addr)
            };
            self.events.push_back(Event::NameConflict {
                name: a.name,
                existing,
                claimant,
            });
            return;
        }
        if a.incarnation > self.me.incarnation
            || (a.incarnation == self.me.incarnation && a.meta != self.me.meta)
        {
            self.refute(now, a.incarnation);
        }
    }

    /// A rumour says this node is suspect, dead or left at `incarnation`. Refutes it if it is
    /// about this run and not already outdated. Returns whether it concerned this run at all
    /// (a leaving node and rumours about earlier runs are left alone).
    pub(super) fn accused(&mut self, now: Instant, run: u64, incarnation: u32) -> bool {
        if self.leaving || run != self.me.run {
            return false;
        }
        if incarnation >= self.me.incarnation {
            self.refute(now, incarnation);
        }
        true
    }

    /// Someone claims this node is suspect, dead or left (or holds a newer record of it):
    /// answer with a higher incarnation. Lifeguard counts it against local health, since a
    /// node others cannot hear is likely the slow one.
    pub(super) fn refute(&mut self, now: Instant, accused: u32) {
        self.me.incarnation = self.me.incarnation.max(accused) + 1;
        self.stats.refutations += 1;
        self.awareness.apply(1);
        self.broadcast_alive_self(now);
    }

    pub(super) fn broadcast_alive_self(&mut self, _now: Instant) {
        let a = self.alive_self();
        self.queue(&a);
    }

    /// This node's own alive rumour, at its current incarnation.
    pub(super) fn alive_self(&self) -> Update {
        Update::Alive(Alive {
            name: self.me.name.clone(),
            run: self.me.run,
            incarnation: self.me.incarnation,
            addr: self.me.addr,
            meta: self.me.meta.clone(),
        })
    }
}
