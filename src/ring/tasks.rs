//! The task table: which registered task runs where, and what changed for this node.

use std::borrow::Borrow;
use std::collections::BTreeMap;

use super::bounded::{BoundedLoad, assign_indices};
use super::consistent::Ring;
use super::hash::key_hash;

/// How tasks are mapped onto the ring: plain consistent hashing, or with bounded loads.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum LoadPolicy {
    /// Plain consistent hashing: each task goes to its key's owner. Moves the fewest tasks on
    /// a membership change, but the busiest member can carry well above the mean.
    #[default]
    Consistent,
    /// Consistent hashing with bounded loads: no member holds more than its capacity (see
    /// [`BoundedLoad::capacity`]), at the price of a few extra moves on each change.
    Bounded(BoundedLoad),
}

/// What one change did to the local member's share of the work.
///
/// Only tasks that really changed hands appear: a task the local member kept through the
/// change is in neither list, so the caller can start and stop exactly what is needed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reassignment<K> {
    /// Tasks the local member now owns and did not before (start these), sorted.
    pub acquired: Vec<K>,
    /// Tasks the local member owned before and no longer does (stop these), sorted.
    pub released: Vec<K>,
}

impl<K> Default for Reassignment<K> {
    fn default() -> Self {
        Self {
            acquired: Vec::new(),
            released: Vec::new(),
        }
    }
}

impl<K> Reassignment<K> {
    /// True when the change did not affect the local member.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.acquired.is_empty() && self.released.is_empty()
    }
}

#[derive(Debug, Clone)]
struct Slot {
    /// Cached [`key_hash`] of the key, so ring changes do not rehash every key.
    hash: u64,
    /// Owning member index in the table's current ring.
    owner: Option<u32>,
}

/// Registered task keys, their current owners, and the local member's view of changes.
///
/// The assignment is a pure function of the ring's member set, the task set and the
/// load policy; the order in which tasks were added or views arrived does not matter, so
/// every node holding the same inputs agrees on every owner. Each mutating call returns a
/// [`Reassignment`] for the local member.
#[derive(Debug, Clone)]
pub struct TaskTable<K> {
    local: Box<str>,
    policy: LoadPolicy,
    ring: Ring,
    tasks: BTreeMap<K, Slot>,
}

impl<K> TaskTable<K>
where
    K: AsRef<[u8]> + Ord + Clone,
{
    /// An empty table for the member named `local`, with an empty ring (nothing is owned until
    /// the first [`update_ring`](TaskTable::update_ring)).
    pub fn new(local: impl Into<String>, policy: LoadPolicy) -> Self {
        Self {
            local: local.into().into_boxed_str(),
            policy,
            ring: Ring::default(),
            tasks: BTreeMap::new(),
        }
    }

    /// The member whose acquisitions and releases are reported.
    #[must_use]
    pub fn local(&self) -> &str {
        &self.local
    }

    /// The load policy in force.
    #[must_use]
    pub fn policy(&self) -> LoadPolicy {
        self.policy
    }

    /// The ring the current assignment was computed from.
    #[must_use]
    pub fn ring(&self) -> &Ring {
        &self.ring
    }

    /// Number of registered tasks.
    #[must_use]
    pub fn len(&self) -> usize {
        self.tasks.len()
    }

    /// True when no task is registered.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.tasks.is_empty()
    }

    /// True when `key` is registered.
    pub fn contains<Q>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        self.tasks.contains_key(key)
    }

    /// Owner of a registered task; `None` if it is not registered or nobody is eligible.
    pub fn owner<Q>(&self, key: &Q) -> Option<&str>
    where
        K: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        let owner = self.tasks.get(key)?.owner?;
        Some(self.ring.name_at(owner))
    }

    /// Tasks owned by `name`, in key order.
    pub fn owned_by<'a>(&'a self, name: &str) -> impl Iterator<Item = &'a K> + 'a {
        let index = self.ring.index_of(name);
        self.tasks
            .iter()
            .filter(move |(_, s)| index.is_some() && s.owner == index)
            .map(|(k, _)| k)
    }

    /// Every registered task with its owner, in key order.
    pub fn assignment(&self) -> impl Iterator<Item = (&K, Option<&str>)> + '_ {
        self.tasks
            .iter()
            .map(|(k, s)| (k, s.owner.map(|o| self.ring.name_at(o))))
    }

    /// Registers `key` and reports the local member's changes: the key itself if it lands
    /// here, and under bounded loads any task the new one pushed in or out. Registering a key
    /// that is already present changes nothing.
    pub fn insert(&mut self, key: K) -> Reassignment<K> {
        if self.tasks.contains_key(&key) {
            return Reassignment::default();
        }
        let hash = key_hash(key.as_ref());
        match self.policy {
            LoadPolicy::Consistent => {
                // Other tasks cannot move: only the new key needs an owner.
                let owner = self.ring.owner_index(hash);
                let mut change = Reassignment::default();
                if owner.is_some() && owner == self.ring.index_of(&self.local) {
                    change.acquired.push(key.clone());
                }
                self.tasks.insert(key, Slot { hash, owner });
                change
            }
            LoadPolicy::Bounded(_) => {
                self.tasks.insert(key, Slot { hash, owner: None });
                self.reassign(None, Reassignment::default())
            }
        }
    }

    /// Registers many keys with one recomputation, and reports the local member's net
    /// changes. Under bounded loads every insertion changes the capacities and so costs a full
    /// pass over the tasks; loading a batch this way pays that once.
    pub fn insert_all<I>(&mut self, keys: I) -> Reassignment<K>
    where
        I: IntoIterator<Item = K>,
    {
        match self.policy {
            LoadPolicy::Consistent => {
                let mut change = Reassignment::default();
                for key in keys {
                    change.acquired.extend(self.insert(key).acquired);
                }
                change.acquired.sort_unstable();
                change
            }
            LoadPolicy::Bounded(_) => {
                for key in keys {
                    let hash = key_hash(key.as_ref());
                    self.tasks.entry(key).or_insert(Slot { hash, owner: None });
                }
                self.reassign(None, Reassignment::default())
            }
        }
    }

    /// Unregisters `key`; reports it as released if the local member owned it, plus under
    /// bounded loads any task that moved because capacities shrank.
    pub fn remove<Q>(&mut self, key: &Q) -> Reassignment<K>
    where
        K: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        let Some((key, slot)) = self.tasks.remove_entry(key) else {
            return Reassignment::default();
        };
        let mut change = Reassignment::default();
        if slot.owner.is_some() && slot.owner == self.ring.index_of(&self.local) {
            change.released.push(key);
        }
        match self.policy {
            LoadPolicy::Consistent => change,
            LoadPolicy::Bounded(_) => self.reassign(None, change),
        }
    }

    /// Adopts a new membership view and reports what the local member acquired and released.
    pub fn update_ring(&mut self, ring: &Ring) -> Reassignment<K> {
        self.reassign(Some(ring), Reassignment::default())
    }

    /// Switches load policy (e.g. turning bounded loads on) and reports the local changes.
    pub fn set_policy(&mut self, policy: LoadPolicy) -> Reassignment<K> {
        self.policy = policy;
        self.reassign(None, Reassignment::default())
    }

    /// Recomputes every owner on `new_ring` (or the current ring), diffs against the current
    /// assignment for the local member, adds the result to `change`, and installs the new
    /// ring and owners.
    fn reassign(
        &mut self,
        new_ring: Option<&Ring>,
        mut change: Reassignment<K>,
    ) -> Reassignment<K> {
        let ring = new_ring.unwrap_or(&self.ring);
        let new_owners: Vec<Option<u32>> = match self.policy {
            LoadPolicy::Consistent => self
                .tasks
                .values()
                .map(|s| ring.owner_index(s.hash))
                .collect(),
            LoadPolicy::Bounded(load) => {
                let input: Vec<(u64, &[u8])> = self
                    .tasks
                    .iter()
                    .map(|(k, s)| (s.hash, k.as_ref()))
                    .collect();
                assign_indices(ring, load, &input)
            }
        };
        // Compare by "is it the local member" in each ring: member indices of the old and new
        // rings are unrelated.
        let old_local = self.ring.index_of(&self.local);
        let new_local = ring.index_of(&self.local);
        for ((key, slot), new) in self.tasks.iter_mut().zip(new_owners) {
            let was_local = slot.owner.is_some() && slot.owner == old_local;
            let is_local = new.is_some() && new == new_local;
            if is_local && !was_local {
                change.acquired.push(key.clone());
            } else if was_local && !is_local {
                change.released.push(key.clone());
            }
            slot.owner = new;
        }
        if let Some(ring) = new_ring {
            self.ring = ring.clone();
        }
        change.acquired.sort_unstable();
        change.released.sort_unstable();
        change
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ring::RingConfig;

    fn ring(names: &[&str]) -> Ring {
        Ring::new(RingConfig::default(), names.iter().map(|n| (*n, 100))).unwrap()
    }

    #[test]
    fn insert_and_remove_report_local_changes() {
        let r = ring(&["a", "b", "c"]);
        for policy in [
            LoadPolicy::Consistent,
            LoadPolicy::Bounded(BoundedLoad::default()),
        ] {
            let mut t: TaskTable<String> = TaskTable::new("a", policy);
            assert!(t.update_ring(&r).is_empty());
            let mut mine = std::collections::BTreeSet::new();
            for i in 0..200 {
                let ch = t.insert(format!("t{i}"));
                for k in &ch.acquired {
                    assert!(mine.insert(k.clone()), "acquired twice: {k}");
                }
                for k in &ch.released {
                    assert!(mine.remove(k), "released unowned: {k}");
                }
            }
            let owned: std::collections::BTreeSet<String> = t.owned_by("a").cloned().collect();
            assert_eq!(owned, mine);
            for i in 0..200 {
                let ch = t.remove(&format!("t{i}"));
                for k in &ch.acquired {
                    assert!(mine.insert(k.clone()));
                }
                for k in &ch.released {
                    assert!(mine.remove(k));
                }
            }
            assert!(mine.is_empty() && t.is_empty());
        }
    }

    #[test]
    fn leaving_the_ring_releases_everything() {
        let mut t: TaskTable<&str> = TaskTable::new("a", LoadPolicy::Consistent);
        t.update_ring(&ring(&["a"]));
        let keys = ["x", "y", "z"];
        for k in keys {
            assert_eq!(t.insert(k).acquired, vec![k]);
        }
        assert_eq!(t.insert("x"), Reassignment::default());
        let ch = t.update_ring(&ring(&["b"]));
        assert_eq!(ch.released, keys.to_vec());
        assert!(ch.acquired.is_empty());
        assert_eq!(t.owner("x"), Some("b"));
        assert_eq!(t.owned_by("a").count(), 0);
    }
}
