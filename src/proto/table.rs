//! The member table: what this node holds about every other member it knows, in name order,
//! with the alive-or-suspect members and the dead ones also listed in arrays for O(1) uniform
//! sampling (probe relays, gossip targets, push-pull and reconnect partners).
//!
//! Each record stores its own position in its array, so the arrays need no index of their
//! own: per member, a node holds one record and one pointer. That matters when one process
//! simulates thousands of nodes, each holding a record of every other.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use rand::Rng;

use super::event::Member;
use super::interner::Name;
use super::pool::sample;
use super::suspicion::Suspicion;
use crate::wire::State;

/// This node's record of one other member.
pub(crate) struct Record {
    /// Shared with every node of the same interner holding an equal record.
    member: Arc<Member>,
    /// When `member.state` last changed.
    changed: Instant,
    /// Boxed: only suspects carry one, and it would double every record's size.
    pub suspicion: Option<Box<Suspicion>>,
    /// Smoothed round-trip time of this node's direct probes of the member, in µs (0: not
    /// measured yet). A member that answers slowly gets twice that to answer, up to the end
    /// of the probe period, instead of being suspected for being slow.
    pub rtt_us: u32,
    /// Position in the array its state puts it in (unused while left).
    slot: u32,
}

impl Record {
    /// The member as this node sees it.
    pub fn member(&self) -> &Member {
        &self.member
    }

    /// When its state last changed.
    pub fn changed(&self) -> Instant {
        self.changed
    }
}

/// What a record held before [`Table::set`] replaced it.
pub(crate) struct Previous {
    pub state: State,
    pub changed: Instant,
    pub suspicion: Option<Box<Suspicion>>,
}

/// The arrays a state puts a member in.
#[derive(Clone, Copy, PartialEq, Eq)]
enum List {
    Live,
    Dead,
}

fn list_of(state: State) -> Option<List> {
    match state {
        State::Alive | State::Suspect => Some(List::Live),
        State::Dead => Some(List::Dead),
        State::Left => None,
    }
}

/// Records by name, and the live and dead members in operation-determined order.
#[derive(Default)]
pub(crate) struct Table {
    records: BTreeMap<Name, Record>,
    live: Vec<Name>,
    dead: Vec<Name>,
}

impl Table {
    /// The record of `name`.
    pub fn get(&self, name: &str) -> Option<&Record> {
        self.records.get(name)
    }

    /// The record of `name`, to change its suspicion or round-trip time (its member only
    /// changes through [`Table::set`], which keeps the arrays in step).
    pub fn get_mut(&mut self, name: &str) -> Option<&mut Record> {
        self.records.get_mut(name)
    }

    /// Members known, whatever their state.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// Every record, in name order.
    pub fn records(&self) -> &BTreeMap<Name, Record> {
        &self.records
    }

    /// Members alive or suspect.
    pub fn live(&self) -> &[Name] {
        &self.live
    }

    /// Up to `k` distinct live members chosen uniformly, skipping those `exclude` rejects.
    pub fn sample_live(
        &self,
        rng: &mut impl Rng,
        k: usize,
        exclude: impl FnMut(&str) -> bool,
    ) -> Vec<Name> {
        sample(&self.live, rng, k, exclude)
    }

    /// How many members are dead (not left): the reconnect candidates.
    pub fn dead_count(&self) -> usize {
        self.dead.len()
    }

    /// One dead (not left) member chosen uniformly.
    pub fn sample_dead(&self, rng: &mut impl Rng) -> Option<Name> {
        sample(&self.dead, rng, 1, |_| false).pop()
    }

    /// Makes `member`, changed at `now`, the record of `name`, moving it between the arrays
    /// as its state requires. Returns what the record held before, if it existed.
    pub fn set(&mut self, name: Name, member: Arc<Member>, now: Instant) -> Option<Previous> {
        let to = list_of(member.state);
        let (previous, from, slot) = match self.records.get_mut(&*name) {
            Some(rec) => {
                let previous = Previous {
                    state: rec.member.state,
                    changed: rec.changed,
                    suspicion: rec.suspicion.take(),
                };
                rec.member = member;
                rec.changed = now;
                let from = list_of(previous.state);
                (Some(previous), from, rec.slot)
            }
            None => {
                let rec = Record {
                    member,
                    changed: now,
                    suspicion: None,
                    rtt_us: 0,
                    slot: 0,
                };
                self.records.insert(name.clone(), rec);
                (None, None, 0)
            }
        };
        if from != to {
            if let Some(list) = from {
                self.detach(list, slot);
            }
            if let Some(list) = to {
                let array = self.array(list);
                array.push(name.clone());
                let slot = (array.len() - 1) as u32;
                self.records.get_mut(&*name).expect("just set").slot = slot;
            }
        }
        previous
    }

    /// Forgets `name`.
    pub fn remove(&mut self, name: &str) {
        if let Some(rec) = self.records.remove(name)
            && let Some(list) = list_of(rec.member.state)
        {
            self.detach(list, rec.slot);
        }
    }

    fn array(&mut self, list: List) -> &mut Vec<Name> {
        match list {
            List::Live => &mut self.live,
            List::Dead => &mut self.dead,
        }
    }

    /// Removes the entry at `slot` of an array in O(1): the last entry takes its place.
    fn detach(&mut self, list: List, slot: u32) {
        let array = self.array(list);
        array.swap_remove(slot as usize);
        if let Some(moved) = array.get(slot as usize).cloned() {
            self.records.get_mut(&*moved).expect("listed").slot = slot;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::interner::Interner;

    #[test]
    fn arrays_follow_each_state_change() {
        let names = Interner::default();
        let now = crate::test_epoch();
        let mut t = Table::default();
        let set = |t: &mut Table, name: &str, state: State| {
            let m = crate::test_member(name, state);
            t.set(names.name(name), names.member(&m), now)
        };
        for n in ["a", "b", "c"] {
            assert!(set(&mut t, n, State::Alive).is_none());
        }
        set(&mut t, "a", State::Dead);
        let prev = set(&mut t, "b", State::Suspect).expect("known");
        assert_eq!(prev.state, State::Alive);
        let live = |t: &Table| t.live().iter().map(|n| n.to_string()).collect::<Vec<_>>();
        assert_eq!(live(&t), ["c", "b"]);
        assert_eq!(&*t.dead[0], "a");
        set(&mut t, "a", State::Left);
        assert!(t.dead.is_empty());
        t.remove("c");
        assert_eq!(live(&t), ["b"]);
        assert_eq!(t.get("b").unwrap().slot, 0);
        set(&mut t, "a", State::Alive);
        assert_eq!(live(&t), ["b", "a"]);
        assert_eq!(t.get("a").unwrap().slot, 1);
        assert_eq!(t.len(), 2);
    }
}
