//! A set of member names with O(1) insert, remove and uniform random choice, for choosing
//! probe relays, gossip targets and push-pull partners without scanning the member table.
//! Its order depends only on the sequence of operations, never on hashing, so runs repeat.

use std::collections::HashMap;

use rand::Rng;

use super::interner::Name;

/// Names with O(1) membership, removal and random sampling.
#[derive(Debug, Default, Clone)]
pub struct Pool {
    names: Vec<Name>,
    /// Position of each name in `names` (`u32`: a mesh is far below 4 billion members, and
    /// every node holds one entry per member).
    index: HashMap<Name, u32>,
}

impl Pool {
    /// Adds `name`; no effect if present.
    pub fn insert(&mut self, name: &Name) {
        if !self.index.contains_key(&**name) {
            self.index.insert(name.clone(), self.names.len() as u32);
            self.names.push(name.clone());
        }
    }

    /// Removes `name`; no effect if absent.
    pub fn remove(&mut self, name: &str) {
        if let Some(i) = self.index.remove(name) {
            let i = i as usize;
            self.names.swap_remove(i);
            if let Some(moved) = self.names.get(i) {
                *self.index.get_mut(&**moved).expect("indexed") = i as u32;
            }
        }
    }

    /// Number of names.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// The names, in the pool's (operation-determined) order.
    pub fn as_slice(&self) -> &[Name] {
        &self.names
    }

    /// Up to `k` distinct names chosen uniformly, skipping those `exclude` rejects.
    pub fn sample(
        &self,
        rng: &mut impl Rng,
        k: usize,
        mut exclude: impl FnMut(&str) -> bool,
    ) -> Vec<Name> {
        let n = self.names.len();
        let mut out: Vec<Name> = Vec::with_capacity(k);
        if k == 0 || n == 0 {
            return out;
        }
        // Rejection sampling is O(k) for the usual k << n; a bounded number of tries falls
        // back to one partial shuffle of indices when most names are excluded.
        for _ in 0..(4 * k + 8) {
            let name = &self.names[rng.random_range(0..n)];
            if !exclude(name) && !out.contains(name) {
                out.push(name.clone());
                if out.len() == k {
                    return out;
                }
            }
        }
        let mut idx: Vec<usize> = (0..n).collect();
        for i in 0..n {
            let j = rng.random_range(i..n);
            idx.swap(i, j);
            let name = &self.names[idx[i]];
            if !exclude(name) && !out.contains(name) {
                out.push(name.clone());
                if out.len() == k {
                    break;
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    use crate::proto::interner::Interner;

    #[test]
    fn insert_remove_sample() {
        let names = Interner::default();
        let mut p = Pool::default();
        for n in ["a", "b", "c", "d"] {
            p.insert(&names.name(n));
        }
        p.insert(&names.name("a"));
        assert_eq!(p.len(), 4);
        p.remove("b");
        p.remove("zz");
        assert_eq!(p.len(), 3);
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let s = p.sample(&mut rng, 5, |n| n == "c");
        let mut sorted: Vec<&str> = s.iter().map(|n| &**n).collect();
        sorted.sort();
        assert_eq!(sorted, vec!["a", "d"]);
        assert!(p.sample(&mut rng, 2, |_| true).is_empty());
    }
}
