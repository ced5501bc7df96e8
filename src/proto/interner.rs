//! Shared copies of member names and member records.
//!
//! Every node holds a record for every other member, so a mesh of n nodes simulated in one
//! process holds n² records. Most of them are equal: once the mesh has converged, every
//! observer holds the same (name, address, run, incarnation, state, metadata) for a member.
//! An [`Interner`] keeps one copy of each distinct name and record, and the nodes that share
//! it hold reference-counted handles to those copies. A lone node (the tokio runtime's) gets a
//! private interner and gains only the cheap handles.

use std::borrow::Borrow;
use std::collections::HashSet;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::ops::Deref;
use std::sync::{Arc, Mutex, MutexGuard};

use super::event::Member;

/// A member's name: a pointer-sized handle to one shared copy. Compares, orders and hashes
/// as the `str` it holds, so maps keyed by it are looked up with `&str`.
#[derive(Clone)]
pub(crate) struct Name(Arc<String>);

impl Deref for Name {
    type Target = str;
    fn deref(&self) -> &str {
        self.0.as_str()
    }
}

impl Borrow<str> for Name {
    fn borrow(&self) -> &str {
        self
    }
}

impl PartialEq for Name {
    fn eq(&self, o: &Self) -> bool {
        **self == **o
    }
}
impl Eq for Name {}
impl PartialOrd for Name {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Name {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        (**self).cmp(&**o)
    }
}
impl Hash for Name {
    fn hash<H: Hasher>(&self, h: &mut H) {
        (**self).hash(h);
    }
}
impl fmt::Debug for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

/// Deduplicates names and member records across the [`Swim`](super::Swim) nodes of one
/// process. Cloning gives another handle to the same tables; pass one handle to every node
/// built with [`Swim::with_interner`](super::Swim::with_interner). Interning never changes
/// what a node does, only how much memory equal records take.
#[derive(Clone, Default)]
pub struct Interner {
    tables: Arc<Mutex<Tables>>,
}

impl fmt::Debug for Interner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = self.lock();
        f.debug_struct("Interner")
            .field("names", &t.names.set.len())
            .field("members", &t.members.set.len())
            .finish()
    }
}

#[derive(Default)]
struct Tables {
    names: Pruned<Name>,
    members: Pruned<Arc<Member>>,
}

/// A set whose entries nobody else holds any more are dropped whenever it has doubled since
/// the last sweep, so the sweeps cost O(1) per insertion.
struct Pruned<T> {
    set: HashSet<T>,
    sweep_at: usize,
}

impl<T> Default for Pruned<T> {
    fn default() -> Self {
        Pruned {
            set: HashSet::new(),
            sweep_at: MIN_SWEEP,
        }
    }
}

/// Below this many entries an interner never sweeps.
const MIN_SWEEP: usize = 1024;

impl<T: Eq + Hash + Clone> Pruned<T> {
    fn get<Q: Eq + Hash + ?Sized>(&self, key: &Q) -> Option<T>
    where
        T: Borrow<Q>,
    {
        self.set.get(key).cloned()
    }

    /// Inserts `v` (not present yet), first sweeping out the entries `shared` rejects if the
    /// set has doubled since the last sweep.
    fn insert(&mut self, v: T, shared: fn(&T) -> bool) -> T {
        if self.set.len() >= self.sweep_at {
            self.set.retain(shared);
            self.sweep_at = (2 * self.set.len()).max(MIN_SWEEP);
        }
        self.set.insert(v.clone());
        v
    }
}

impl Interner {
    fn lock(&self) -> MutexGuard<'_, Tables> {
        // The tables are consistent after every operation, so a panic elsewhere while the
        // lock was held leaves nothing to repair.
        self.tables.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The shared copy of `name`.
    pub(crate) fn name(&self, name: &str) -> Name {
        let mut t = self.lock();
        t.names.get(name).unwrap_or_else(|| {
            let n = Name(Arc::new(name.to_owned()));
            t.names.insert(n, |n| Arc::strong_count(&n.0) > 1)
        })
    }

    /// The shared copy of a record equal to `member` (copied only if there is none yet).
    pub(crate) fn member(&self, member: &Member) -> Arc<Member> {
        let mut t = self.lock();
        t.members.get(member).unwrap_or_else(|| {
            t.members
                .insert(Arc::new(member.clone()), |m| Arc::strong_count(m) > 1)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::State;

    fn member(name: &str, incarnation: u32) -> Member {
        Member {
            name: name.into(),
            addr: "127.0.0.1:1".parse().unwrap(),
            run: 1,
            incarnation,
            state: State::Alive,
            meta: Default::default(),
        }
    }

    #[test]
    fn equal_values_share_one_copy() {
        let i = Interner::default();
        let (a, b) = (i.name("n1"), i.name("n1"));
        assert!(Arc::ptr_eq(&a.0, &b.0));
        assert_eq!(&*a, "n1");
        let (x, y) = (i.member(&member("n1", 0)), i.member(&member("n1", 0)));
        assert!(Arc::ptr_eq(&x, &y));
        assert!(!Arc::ptr_eq(&x, &i.member(&member("n1", 1))));
    }

    #[test]
    fn copies_nobody_holds_are_swept() {
        let i = Interner::default();
        let kept = i.name("kept");
        for n in 0..10 * MIN_SWEEP {
            i.name(&format!("n{n}"));
        }
        assert!(i.lock().names.set.len() <= 2 * MIN_SWEEP);
        assert!(Arc::ptr_eq(&kept.0, &i.name("kept").0));
    }
}
