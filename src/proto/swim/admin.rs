//! What an operator may do to other members' records (serf's `force-leave`).

use std::time::Instant;

use super::Swim;
use crate::proto::error::ForceLeaveError;
use crate::proto::event::Member;
use crate::wire::{Left, State};

impl Swim {
    /// Marks a failed member left on an operator's word, as serf's `force-leave` does: the
    /// left is gossiped, so every peer stops trying to reconnect to it and stops counting it as
    /// failed. With `prune`, this node also forgets the record at once (peers forget it when
    /// their [`Config::dead_retention`](crate::proto::Config::dead_retention) runs out). Only a dead or left member may be forced: a
    /// live one would refute it. Refused, changing nothing, for an unknown name or this node.
    pub fn force_leave(
        &mut self,
        now: Instant,
        name: &str,
        prune: bool,
    ) -> Result<Member, ForceLeaveError> {
        if name == self.me.name {
            return Err(ForceLeaveError::Local);
        }
        let Some(rec) = self.members.get(name) else {
            return Err(ForceLeaveError::Unknown(name.to_owned()));
        };
        let m = rec.member().clone();
        if m.state.is_live() {
            return Err(ForceLeaveError::Live {
                name: name.to_owned(),
                state: m.state,
            });
        }
        if m.state == State::Dead {
            let left = Left {
                name: m.name.clone(),
                run: m.run,
                incarnation: m.incarnation,
            };
            self.apply_left(now, left);
        }
        if prune {
            self.forget(name);
        }
        Ok(self.members.get(name).map_or(
            Member {
                state: State::Left,
                ..m
            },
            |r| r.member().clone(),
        ))
    }

    /// Drops a dead or left record and its tombstone entry.
    fn forget(&mut self, name: &str) {
        if let Some(rec) = self.members.get(name) {
            let key = (rec.changed(), self.names.name(name));
            self.gone.remove(&key);
            self.members.remove(name);
            self.forget_user_events(name);
        }
    }
}
