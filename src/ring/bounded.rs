//! Consistent hashing with bounded loads (Mirrokni, Thorup, Zadimoghaddam, 2018).
//!
//! Plain consistent hashing gives the busiest member of a large cluster noticeably more than
//! its share of a finite task set. With bounded loads each member has a capacity of
//! `ceil(c × tasks × weight / total_weight)` and a task goes to the first member clockwise
//! from its hash that still has room. The peak is then at most about `c` times the mean, and
//! one membership change still moves only a small expected number of tasks (growing like
//! `1/(c-1)²`, hence the lower bound on `c`).

use std::collections::BTreeMap;

use super::consistent::Ring;
use super::error::RingError;
use super::hash::key_hash;

/// Default load factor `c`: the busiest member carries at most ~25% more than its fair share.
pub const DEFAULT_LOAD_FACTOR: f64 = 1.25;

/// Smallest accepted `c`: tighter bounds make one membership change cascade through many
/// members, trading the stability that consistent hashing is for.
pub const MIN_LOAD_FACTOR: f64 = 1.1;

/// A validated bounded-load factor `c`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BoundedLoad {
    c: f64,
}

impl Default for BoundedLoad {
    /// `c =` [`DEFAULT_LOAD_FACTOR`].
    fn default() -> Self {
        Self {
            c: DEFAULT_LOAD_FACTOR,
        }
    }
}

impl BoundedLoad {
    /// Validates `c` so that every node rejects the same bad setting instead of computing a
    /// placement that may not terminate (c < 1) or that churns heavily (c close to 1).
    ///
    /// # Errors
    /// [`RingError::InvalidLoadFactor`] when `c` is not finite or below [`MIN_LOAD_FACTOR`].
    pub fn new(c: f64) -> Result<Self, RingError> {
        if c.is_finite() && c >= MIN_LOAD_FACTOR {
            Ok(Self { c })
        } else {
            Err(RingError::InvalidLoadFactor {
                got: c,
                min: MIN_LOAD_FACTOR,
            })
        }
    }

    /// The load factor `c`.
    #[must_use]
    pub fn factor(&self) -> f64 {
        self.c
    }

    /// Most tasks a member of `weight` may hold when `tasks` tasks are spread over members
    /// whose weights sum to `total_weight`: `ceil(c × tasks × weight / total_weight)`.
    ///
    /// Capacities of all members sum to at least `c × tasks ≥ tasks`, so every task finds a
    /// member with room. IEEE-754 arithmetic keeps the result identical on every node.
    #[must_use]
    pub fn capacity(&self, tasks: usize, weight: u32, total_weight: u64) -> usize {
        if weight == 0 || total_weight == 0 || tasks == 0 {
            return 0;
        }
        let share = self.c * tasks as f64 * f64::from(weight) / total_weight as f64;
        share.ceil() as usize
    }
}

/// Assigns each distinct task key to a member with bounded loads, returning task → owner.
///
/// Tasks are processed in a fixed order (by key hash, then key bytes), so the result depends
/// only on the ring's member set and the task set, never on input order. Empty when the ring
/// has no member of positive weight. Duplicate keys are counted once.
pub fn assign_bounded<'r, 'k, K, I>(
    ring: &'r Ring,
    load: BoundedLoad,
    tasks: I,
) -> BTreeMap<&'k K, &'r str>
where
    K: AsRef<[u8]> + Ord + ?Sized + 'k,
    I: IntoIterator<Item = &'k K>,
{
    let keys: Vec<&'k K> = {
        let mut v: Vec<&'k K> = tasks.into_iter().collect();
        v.sort_unstable();
        v.dedup();
        v
    };
    let input: Vec<(u64, &[u8])> = keys
        .iter()
        .map(|k| {
            let bytes = (*k).as_ref();
            (key_hash(bytes), bytes)
        })
        .collect();
    let slots = assign_indices(ring, load, &input);
    keys.into_iter()
        .zip(slots)
        .filter_map(|(k, m)| m.map(|m| (k, ring.name_at(m))))
        .collect()
}

/// Core of [`assign_bounded`]: `tasks` are `(hash, key bytes)` in any order; the result holds
/// the owning member index for each, aligned with the input.
pub(crate) fn assign_indices(
    ring: &Ring,
    load: BoundedLoad,
    tasks: &[(u64, &[u8])],
) -> Vec<Option<u32>> {
    let mut out = vec![None; tasks.len()];
    let points = ring.point_len();
    if points == 0 || tasks.is_empty() {
        return out;
    }
    let total_weight = ring.total_weight();
    let capacity: Vec<usize> = (0..ring.len())
        .map(|i| load.capacity(tasks.len(), ring.weight_at(i as u32), total_weight))
        .collect();
    let mut loads = vec![0usize; ring.len()];
    let mut order: Vec<usize> = (0..tasks.len()).collect();
    // Input index breaks ties between equal byte strings, which only a caller's exotic `Ord`
    // could produce; the task table passes keys in their `Ord` order, so it stays canonical.
    order.sort_unstable_by(|&a, &b| tasks[a].cmp(&tasks[b]).then(a.cmp(&b)));
    for task in order {
        let mut slot = ring.slot(tasks[task].0);
        let mut placed = false;
        // One lap suffices: capacities sum to at least c × tasks > tasks, so some member
        // (each has at least one point) still has room.
        for _ in 0..points {
            let m = ring.point_owner_at(slot);
            if loads[m as usize] < capacity[m as usize] {
                loads[m as usize] += 1;
                out[task] = Some(m);
                placed = true;
                break;
            }
            slot += 1;
            if slot == points {
                slot = 0;
            }
        }
        assert!(placed, "bounded-load capacities must cover every task");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ring::RingConfig;
    use std::collections::HashMap;

    #[test]
    fn validates_factor() {
        assert!(BoundedLoad::new(1.0).is_err());
        assert!(BoundedLoad::new(f64::NAN).is_err());
        assert!(BoundedLoad::new(f64::INFINITY).is_err());
        assert!(BoundedLoad::new(MIN_LOAD_FACTOR).is_ok());
        assert_eq!(BoundedLoad::default().factor(), DEFAULT_LOAD_FACTOR);
    }

    #[test]
    fn respects_capacity_and_weights() {
        let ring = Ring::new(
            RingConfig::default(),
            [("a", 100), ("b", 100), ("c", 300), ("d", 0)],
        )
        .unwrap();
        let load = BoundedLoad::new(1.1).unwrap();
        let keys: Vec<String> = (0..1000).map(|i| format!("task-{i}")).collect();
        let placed = assign_bounded(&ring, load, &keys);
        assert_eq!(placed.len(), keys.len());
        let mut count: HashMap<&str, usize> = HashMap::new();
        for owner in placed.values() {
            *count.entry(owner).or_default() += 1;
        }
        for (name, weight) in ring.members() {
            let cap = load.capacity(keys.len(), weight, ring.total_weight());
            let got = count.get(name).copied().unwrap_or(0);
            assert!(got <= cap, "{name} holds {got} > {cap}");
        }
        assert!(!count.contains_key("d"));
        assert!(count["c"] > count["a"]);
    }

    #[test]
    fn core_ignores_input_order() {
        // The public entry point canonicalises its input, so test the core directly: it must
        // impose its own processing order, or callers passing other orders would disagree.
        let names: Vec<String> = (0..7).map(|i| format!("n{i}")).collect();
        let ring = Ring::new(RingConfig::default(), names.iter().map(|n| (n, 100))).unwrap();
        let keys: Vec<String> = (0..300).map(|i| format!("k{i}")).collect();
        let input: Vec<(u64, &[u8])> = keys
            .iter()
            .map(|k| (key_hash(k.as_bytes()), k.as_bytes()))
            .collect();
        let load = BoundedLoad::new(1.1).unwrap();
        let forward = assign_indices(&ring, load, &input);
        let reversed_input: Vec<(u64, &[u8])> = input.iter().rev().copied().collect();
        let mut reversed = assign_indices(&ring, load, &reversed_input);
        reversed.reverse();
        assert_eq!(forward, reversed);
    }

    #[test]
    fn empty_ring_assigns_nothing() {
        let ring = Ring::default();
        let placed = assign_bounded(&ring, BoundedLoad::default(), ["x", "y"].iter());
        assert!(placed.is_empty());
    }
}
