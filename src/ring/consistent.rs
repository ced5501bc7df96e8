//! The consistent-hash ring: members, their virtual nodes, and owner lookups.

use std::ops::ControlFlow;

use super::error::RingError;
use super::hash::{checksum_bytes, key_hash, vnode_points};
use super::points::{SortedPoints, bucket_of, bucket_sort};

/// Virtual nodes a member of weight [`NORMAL_WEIGHT`] gets by default.
///
/// Chosen from the measurements in `docs/BENCHMARKS.md` ("Placement (ring)"). A member's share
/// of the circle is a sum of `v` random arcs, so its spread shrinks like `1/sqrt(v)`, and the
/// busiest of 1,000 members sits about three standard deviations above the mean. Measured at
/// 1,000 members (peak/mean of the circle share, mean over 8 clusters): 256 vnodes give
/// ~1.22 with clusters up to 1.25, too close to the 1.25 target; 512 give ~1.16 (worst seen
/// 1.17). The cost of 512: 512k points (~6.5 MiB with the prefix index), a rebuild of about
/// 20 ms at 1,000 members (once per membership change), and an unchanged lookup of ~10–15 ns
/// thanks to the prefix index. Going to 1,024 would halve the variance again for twice the
/// memory and rebuild time; small clusters may lower it freely.
pub const DEFAULT_VNODES_PER_MEMBER: u32 = 512;

/// Upper bound on [`RingConfig::vnodes_per_member`]; beyond it balance no longer improves in
/// any way that matters while memory and rebuild time keep growing linearly.
pub const MAX_VNODES_PER_MEMBER: u32 = 4096;

/// The weight that earns a member exactly `vnodes_per_member` virtual nodes (a "normal share").
pub const NORMAL_WEIGHT: u32 = 100;

/// Largest accepted member weight (100× a normal share), so one member cannot blow up the ring.
pub const MAX_WEIGHT: u32 = 10_000;

/// Largest number of members (weight-0 ones included): member indices are stored as `u32`
/// beside every point to keep the ring compact.
pub const MAX_MEMBERS: usize = 1 << 22;

/// Largest total number of virtual nodes a ring may hold (about 50 MiB of points and index),
/// e.g. 8,192 members at the default vnode count.
pub const MAX_POINTS: u64 = 1 << 22;

/// Tuning of a [`Ring`].
///
/// Every node of a cluster must use the same configuration, or they will compute different
/// owners for the same member set; treat it as a deployment constant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RingConfig {
    /// Virtual nodes for a member of weight [`NORMAL_WEIGHT`]; must be in
    /// `1..=`[`MAX_VNODES_PER_MEMBER`]. More vnodes give a more even split of keys at the cost
    /// of memory, rebuild time and (slightly) lookup time.
    pub vnodes_per_member: u32,
}

impl Default for RingConfig {
    /// Uses [`DEFAULT_VNODES_PER_MEMBER`], the measured balance/cost sweet spot.
    fn default() -> Self {
        Self {
            vnodes_per_member: DEFAULT_VNODES_PER_MEMBER,
        }
    }
}

impl RingConfig {
    /// Checks the configuration, so that a bad value is reported where it was set rather than
    /// as a strange placement later.
    ///
    /// # Errors
    /// [`RingError::InvalidVnodes`] when `vnodes_per_member` is 0 or above
    /// [`MAX_VNODES_PER_MEMBER`].
    pub fn validate(&self) -> Result<(), RingError> {
        if (1..=MAX_VNODES_PER_MEMBER).contains(&self.vnodes_per_member) {
            Ok(())
        } else {
            Err(RingError::InvalidVnodes {
                got: self.vnodes_per_member,
                max: MAX_VNODES_PER_MEMBER,
            })
        }
    }

    /// Number of virtual nodes a member of `weight` gets: proportional to the weight (rounded
    /// to nearest), at least one for any positive weight so a lightly weighted member still
    /// owns something, and none for weight 0 so it owns nothing.
    #[must_use]
    pub fn vnodes_for_weight(&self, weight: u32) -> u64 {
        if weight == 0 {
            return 0;
        }
        let scaled = (u64::from(self.vnodes_per_member) * u64::from(weight)
            + u64::from(NORMAL_WEIGHT / 2))
            / u64::from(NORMAL_WEIGHT);
        scaled.max(1)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Member {
    name: Box<str>,
    weight: u32,
}

/// A consistent-hash ring with weighted virtual nodes.
///
/// Built from the members the caller deems eligible (typically alive and suspect members,
/// perhaps filtered by metadata). The ring is a pure function of the member *set*: input order
/// does not matter, so every node that sees the same view computes the same owners. Points are
/// kept in a sorted `Vec` with their owning member index beside them, plus a small index of
/// where each hash prefix starts, so a lookup is a binary search over a handful of points
/// (about 10–15 ns at 1,000 members instead of ~50 ns for a search of the whole array).
/// A key belongs to the first virtual node at or after its hash, wrapping
/// around ("clockwise").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ring {
    config: RingConfig,
    /// Sorted by name; indices into this are the `u32`s in `point_owner`.
    members: Vec<Member>,
    /// Sorted positions of every virtual node.
    points: Vec<u64>,
    /// `point_owner[i]` is the member index owning `points[i]`.
    point_owner: Vec<u32>,
    /// Prefix index over `points`: `bucket_start[b]` is the first point whose top
    /// `bucket_bits` bits are `>= b` (with one extra entry, `points.len()`, at the end). A
    /// lookup then binary-searches only the few points of one bucket instead of the whole
    /// array, which keeps it to one or two cache misses even when the points outgrow the
    /// caches. Derived from `points`, so it changes no result.
    bucket_start: Vec<u32>,
    bucket_bits: u32,
    /// Number of members with a positive weight (those that own part of the circle).
    eligible: usize,
    total_weight: u64,
    checksum: u64,
}

impl Default for Ring {
    /// An empty ring with the default configuration: it owns nothing, which is the right
    /// starting point before the first membership view arrives.
    fn default() -> Self {
        Self::build(RingConfig::default(), Vec::new())
    }
}

impl Ring {
    /// Builds a ring from `(name, weight)` pairs.
    ///
    /// Weight [`NORMAL_WEIGHT`] (100) earns a normal share, 200 twice that, 0 nothing (the
    /// member is still listed and still counts in the [`checksum`](Ring::checksum), so a
    /// draining member can be named without receiving work).
    ///
    /// # Errors
    /// [`RingError::InvalidVnodes`] for a bad config, [`RingError::DuplicateMember`] when a
    /// name repeats, [`RingError::WeightTooLarge`] above [`MAX_WEIGHT`], and
    /// [`RingError::TooManyPoints`] when the ring would exceed [`MAX_POINTS`].
    pub fn new<I, S>(config: RingConfig, members: I) -> Result<Self, RingError>
    where
        I: IntoIterator<Item = (S, u32)>,
        S: AsRef<str>,
    {
        config.validate()?;
        let mut list: Vec<Member> = members
            .into_iter()
            .map(|(name, weight)| Member {
                name: name.as_ref().into(),
                weight,
            })
            .collect();
        // Canonical order: everything below depends only on the set, never on input order.
        list.sort_unstable_by(|a, b| a.name.cmp(&b.name));
        if let Some(pair) = list.windows(2).find(|w| w[0].name == w[1].name) {
            return Err(RingError::DuplicateMember {
                name: pair[0].name.to_string(),
            });
        }
        if list.len() > MAX_MEMBERS {
            return Err(RingError::TooManyMembers {
                members: list.len(),
                max: MAX_MEMBERS,
            });
        }
        let mut points: u64 = 0;
        for m in &list {
            if m.weight > MAX_WEIGHT {
                return Err(RingError::WeightTooLarge {
                    name: m.name.to_string(),
                    weight: m.weight,
                    max: MAX_WEIGHT,
                });
            }
            points += config.vnodes_for_weight(m.weight);
        }
        if points > MAX_POINTS {
            return Err(RingError::TooManyPoints {
                points,
                max: MAX_POINTS,
            });
        }
        Ok(Self::build(config, list))
    }

    /// Builds from an already sorted, de-duplicated, validated member list.
    fn build(config: RingConfig, members: Vec<Member>) -> Self {
        let total: usize = members
            .iter()
            .map(|m| config.vnodes_for_weight(m.weight) as usize)
            .sum();
        let mut pairs: Vec<(u64, u32)> = Vec::with_capacity(total);
        let mut total_weight = 0u64;
        let mut eligible = 0usize;
        for (index, m) in members.iter().enumerate() {
            // `new` caps the member count at `MAX_MEMBERS`, so the index fits.
            let index = index as u32;
            let count = config.vnodes_for_weight(m.weight);
            let point = vnode_points(&m.name);
            for vnode in 0..count {
                // `count` is at most MAX_VNODES_PER_MEMBER * MAX_WEIGHT / 100, so it fits.
                pairs.push((point(vnode as u32), index));
            }
            if m.weight > 0 {
                eligible += 1;
            }
            total_weight += u64::from(m.weight);
        }
        let checksum = checksum_sorted(members.iter().map(|m| (&*m.name, m.weight)));
        let SortedPoints {
            bits: bucket_bits,
            bucket_start,
            points,
            owners: point_owner,
        } = bucket_sort(&pairs);
        Self {
            config,
            members,
            points,
            point_owner,
            bucket_start,
            bucket_bits,
            eligible,
            total_weight,
            checksum,
        }
    }

    /// The [`checksum`](Ring::checksum) a ring of these members would have, without
    /// building it: cheap enough to compare many views. Input order does not matter.
    #[must_use]
    pub fn checksum_of<I, S>(members: I) -> u64
    where
        I: IntoIterator<Item = (S, u32)>,
        S: AsRef<str>,
    {
        let mut list: Vec<(S, u32)> = members.into_iter().collect();
        list.sort_unstable_by(|a, b| a.0.as_ref().cmp(b.0.as_ref()));
        checksum_sorted(list.iter().map(|(n, w)| (n.as_ref(), *w)))
    }

    /// The configuration this ring was built with.
    #[must_use]
    pub fn config(&self) -> RingConfig {
        self.config
    }

    /// Number of members, including weight-0 ones, because they are part of the view.
    #[must_use]
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// True when the ring has no members at all (and so owns nothing).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// Number of members with a positive weight: the most distinct owners
    /// [`owners`](Ring::owners) can return.
    #[must_use]
    pub fn eligible_len(&self) -> usize {
        self.eligible
    }

    /// Total number of virtual nodes, the main driver of memory use and rebuild time.
    #[must_use]
    pub fn vnode_count(&self) -> usize {
        self.points.len()
    }

    /// Sum of all member weights: the denominator of each member's fair share.
    #[must_use]
    pub fn total_weight(&self) -> u64 {
        self.total_weight
    }

    /// Members and their weights, sorted by name (the canonical order, independent of the
    /// order they were given in).
    pub fn members(&self) -> impl ExactSizeIterator<Item = (&str, u32)> + '_ {
        self.members.iter().map(|m| (&*m.name, m.weight))
    }

    /// Weight of `name`, or `None` if it is not a member; lets callers check whether a view
    /// includes a node without scanning [`members`](Ring::members).
    #[must_use]
    pub fn weight(&self, name: &str) -> Option<u32> {
        self.index_of(name).map(|i| self.members[i as usize].weight)
    }

    /// Names this view of the membership.
    ///
    /// A fixed xxh3 hash of the sorted `(name, weight)` list, so two nodes can cheaply tell
    /// whether they place work from the same view: equal member sets and weights give equal
    /// checksums on every node and version; different ones differ except for a 2⁻⁶⁴-scale
    /// accident. The vnode configuration is not included because it must be the same
    /// cluster-wide anyway.
    #[must_use]
    pub fn checksum(&self) -> u64 {
        self.checksum
    }

    /// Owner of `key`, or `None` when no member has a positive weight.
    #[must_use]
    pub fn owner(&self, key: &[u8]) -> Option<&str> {
        self.owner_of_hash(key_hash(key))
    }

    /// Owner of a key already hashed with [`key_hash`]: the hot path for callers that route
    /// the same key repeatedly: one short binary search and no hashing.
    #[must_use]
    #[inline]
    pub fn owner_of_hash(&self, hash: u64) -> Option<&str> {
        self.owner_index(hash).map(|i| self.name_at(i))
    }

    /// Up to `n` distinct members in ring order starting at `key`'s owner: the replica set,
    /// and the order in which to fail over. Its length is `min(n, eligible_len())`.
    #[must_use]
    pub fn owners(&self, key: &[u8], n: usize) -> Vec<&str> {
        self.owners_of_hash(key_hash(key), n)
    }

    /// [`owners`](Ring::owners) for a pre-hashed key.
    #[must_use]
    pub fn owners_of_hash(&self, hash: u64, n: usize) -> Vec<&str> {
        let want = n.min(self.eligible);
        let mut out = Vec::with_capacity(want);
        if want == 0 {
            return out;
        }
        self.walk_distinct(hash, |m| {
            out.push(self.name_at(m));
            if out.len() == want {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        });
        out
    }

    /// First member in `key`'s ring order for which `skip` is false, e.g. to route new work
    /// away from suspect members without rebuilding the ring (which would move other keys).
    /// `skip` is called at most once per member. `None` if every eligible member is skipped.
    pub fn owner_skipping<F>(&self, key: &[u8], skip: F) -> Option<&str>
    where
        F: FnMut(&str) -> bool,
    {
        self.owner_of_hash_skipping(key_hash(key), skip)
    }

    /// [`owner_skipping`](Ring::owner_skipping) for a pre-hashed key.
    pub fn owner_of_hash_skipping<F>(&self, hash: u64, mut skip: F) -> Option<&str>
    where
        F: FnMut(&str) -> bool,
    {
        let mut found = None;
        self.walk_distinct(hash, |m| {
            let name = self.name_at(m);
            if skip(name) {
                ControlFlow::Continue(())
            } else {
                found = Some(name);
                ControlFlow::Break(())
            }
        });
        found
    }

    /// Fraction of the hash circle each member owns, in name order; weight-0 members get 0.
    ///
    /// This is the exact expected share of uniformly hashed keys, so balance can be judged
    /// without sampling keys (the balance report in `tests/ring_props.rs` uses it).
    #[must_use]
    pub fn ownership(&self) -> Vec<(&str, f64)> {
        let mut arcs = vec![0u128; self.members.len()];
        let len = self.points.len();
        if len == 1 {
            arcs[self.point_owner[0] as usize] = 1u128 << 64;
        } else {
            for i in 0..len {
                // Point i owns (points[i-1], points[i]], wrapping around for i = 0.
                let prev = self.points[(i + len - 1) % len];
                arcs[self.point_owner[i] as usize] += u128::from(self.points[i].wrapping_sub(prev));
            }
        }
        let full = (1u128 << 64) as f64;
        self.members
            .iter()
            .zip(arcs)
            .map(|(m, arc)| (&*m.name, arc as f64 / full))
            .collect()
    }

    // ---- crate-internal access used by bounded loads and the task table ----

    /// Index of `name` in the canonical member order.
    pub(crate) fn index_of(&self, name: &str) -> Option<u32> {
        self.members
            .binary_search_by(|m| (*m.name).cmp(name))
            .ok()
            .map(|i| i as u32)
    }

    pub(crate) fn name_at(&self, index: u32) -> &str {
        &self.members[index as usize].name
    }

    pub(crate) fn weight_at(&self, index: u32) -> u32 {
        self.members[index as usize].weight
    }

    /// Index of the first point at or after `hash`, wrapping to 0. Only valid when the ring
    /// has points.
    #[inline]
    pub(crate) fn slot(&self, hash: u64) -> usize {
        // Points before `lo` have a smaller prefix (so are < hash); points from `hi` on have
        // a larger one (so are > hash): the first point >= hash is in lo..=hi.
        let bucket = bucket_of(hash, self.bucket_bits);
        let lo = self.bucket_start[bucket] as usize;
        let hi = self.bucket_start[bucket + 1] as usize;
        let i = lo + self.points[lo..hi].partition_point(|&p| p < hash);
        if i == self.points.len() { 0 } else { i }
    }

    /// Owning member index of `hash`.
    #[inline]
    pub(crate) fn owner_index(&self, hash: u64) -> Option<u32> {
        if self.points.is_empty() {
            None
        } else {
            Some(self.point_owner[self.slot(hash)])
        }
    }

    /// Member index at point `slot`.
    #[inline]
    pub(crate) fn point_owner_at(&self, slot: usize) -> u32 {
        self.point_owner[slot]
    }

    /// Number of points, for wrapping walks.
    #[inline]
    pub(crate) fn point_len(&self) -> usize {
        self.points.len()
    }

    /// Calls `visit` with each distinct member in ring order from `hash`, until it breaks or
    /// every eligible member has been visited.
    fn walk_distinct<F>(&self, hash: u64, mut visit: F)
    where
        F: FnMut(u32) -> ControlFlow<()>,
    {
        const SMALL: usize = 16;
        let len = self.points.len();
        if len == 0 {
            return;
        }
        let start = self.slot(hash);
        // Few distinct owners are the common case (replica sets of 2–5): a linear scan of a
        // short list beats allocating a bitmap sized by the membership.
        let mut seen: Vec<u32> = Vec::new();
        let mut bitmap: Vec<u64> = Vec::new();
        let mut found = 0usize;
        for step in 0..len {
            let mut slot = start + step;
            if slot >= len {
                slot -= len;
            }
            let m = self.point_owner[slot];
            let new = if bitmap.is_empty() {
                if seen.contains(&m) {
                    false
                } else {
                    seen.push(m);
                    if seen.len() > SMALL {
                        bitmap = vec![0u64; self.members.len().div_ceil(64)];
                        for &s in &seen {
                            bitmap[s as usize / 64] |= 1 << (s % 64);
                        }
                    }
                    true
                }
            } else {
                let (word, bit) = (m as usize / 64, 1u64 << (m % 64));
                let new = bitmap[word] & bit == 0;
                bitmap[word] |= bit;
                new
            };
            if new {
                found += 1;
                if visit(m).is_break() || found == self.eligible {
                    return;
                }
            }
        }
    }
}

/// Checksum of a member list already in name order.
fn checksum_sorted<'a>(members: impl Iterator<Item = (&'a str, u32)>) -> u64 {
    let mut encoded = Vec::new();
    for (name, weight) in members {
        // Length-prefixed so ("ab", "c") and ("a", "bc") encode differently.
        encoded.extend_from_slice(&(name.len() as u64).to_le_bytes());
        encoded.extend_from_slice(name.as_bytes());
        encoded.extend_from_slice(&weight.to_le_bytes());
    }
    checksum_bytes(&encoded)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksum_of_matches_a_built_ring_in_any_order() {
        let members = [("b", 100), ("a", 200), ("c", 0)];
        let ring = Ring::new(RingConfig::default(), members).unwrap();
        assert_eq!(Ring::checksum_of(members), ring.checksum());
        assert_eq!(
            Ring::checksum_of([("c", 0), ("b", 100), ("a", 200)]),
            ring.checksum()
        );
        assert_ne!(Ring::checksum_of([("a", 200), ("b", 100)]), ring.checksum());
    }

    fn ring(members: &[(&str, u32)]) -> Ring {
        Ring::new(RingConfig::default(), members.iter().copied()).unwrap()
    }

    #[test]
    fn rejects_bad_config_and_duplicates() {
        let bad = RingConfig {
            vnodes_per_member: 0,
        };
        assert!(matches!(
            Ring::new(bad, [("a", 100)]),
            Err(RingError::InvalidVnodes { got: 0, .. })
        ));
        let too_many = RingConfig {
            vnodes_per_member: MAX_VNODES_PER_MEMBER + 1,
        };
        assert!(Ring::new(too_many, [("a", 100)]).is_err());
        assert_eq!(
            Ring::new(RingConfig::default(), [("b", 100), ("a", 1), ("b", 5)]),
            Err(RingError::DuplicateMember { name: "b".into() })
        );
        assert!(matches!(
            Ring::new(RingConfig::default(), [("a", MAX_WEIGHT + 1)]),
            Err(RingError::WeightTooLarge { .. })
        ));
        let big = RingConfig {
            vnodes_per_member: MAX_VNODES_PER_MEMBER,
        };
        let names: Vec<String> = (0..2000).map(|i| format!("m{i}")).collect();
        assert!(matches!(
            Ring::new(big, names.iter().map(|n| (n, 100))),
            Err(RingError::TooManyPoints { .. })
        ));
    }

    #[test]
    fn empty_and_zero_weight_rings_own_nothing() {
        let empty = Ring::default();
        assert!(empty.is_empty());
        assert_eq!(empty.owner(b"k"), None);
        assert!(empty.owners(b"k", 3).is_empty());
        let zero = ring(&[("a", 0), ("b", 0)]);
        assert_eq!(zero.len(), 2);
        assert_eq!(zero.owner(b"k"), None);
        assert_eq!(zero.owner_skipping(b"k", |_| false), None);
    }

    #[test]
    fn zero_weight_member_never_owns() {
        let r = ring(&[("a", 100), ("b", 0), ("c", 100)]);
        for i in 0..2000u32 {
            assert_ne!(r.owner(&i.to_le_bytes()), Some("b"));
        }
        assert_eq!(r.owners(b"x", 10).len(), 2);
    }

    #[test]
    fn weight_scales_share() {
        let r = ring(&[("light", 50), ("normal", 100), ("heavy", 200)]);
        let share: std::collections::HashMap<_, _> = r.ownership().into_iter().collect();
        assert!(share["heavy"] > share["normal"] && share["normal"] > share["light"]);
        let total: f64 = share.values().sum();
        assert!((total - 1.0).abs() < 1e-9, "shares sum to {total}");
    }

    #[test]
    fn single_point_owns_everything() {
        let cfg = RingConfig {
            vnodes_per_member: 1,
        };
        let r = Ring::new(cfg, [("solo", 100)]).unwrap();
        assert_eq!(r.vnode_count(), 1);
        assert_eq!(r.ownership(), vec![("solo", 1.0)]);
        assert_eq!(r.owner(b"anything"), Some("solo"));
    }

    #[test]
    fn owners_start_with_owner_and_skipping_follows_owners() {
        let names: Vec<String> = (0..40).map(|i| format!("node-{i}")).collect();
        let r = Ring::new(RingConfig::default(), names.iter().map(|n| (n, 100))).unwrap();
        for i in 0..500u32 {
            let key = i.to_be_bytes();
            let all = r.owners(&key, usize::MAX);
            assert_eq!(all.len(), 40);
            assert_eq!(Some(all[0]), r.owner(&key));
            let banned = [all[0], all[1]];
            assert_eq!(
                r.owner_skipping(&key, |n| banned.contains(&n)),
                Some(all[2])
            );
        }
    }

    #[test]
    fn bucketed_search_matches_plain_binary_search() {
        for (members, vnodes) in [(1usize, 1u32), (3, 1), (7, 5), (50, 64), (300, 256)] {
            let names: Vec<String> = (0..members).map(|i| format!("m{i}")).collect();
            let cfg = RingConfig {
                vnodes_per_member: vnodes,
            };
            let r = Ring::new(cfg, names.iter().map(|n| (n, 100))).unwrap();
            let pairs: Vec<(u64, u32)> = r
                .points
                .iter()
                .copied()
                .zip(r.point_owner.iter().copied())
                .collect();
            assert!(pairs.windows(2).all(|w| w[0] <= w[1]), "points not sorted");
            let mut probes: Vec<u64> = vec![0, 1, u64::MAX, u64::MAX - 1, 1 << 63];
            for &p in &r.points {
                probes.extend([p, p.wrapping_sub(1), p.wrapping_add(1)]);
            }
            probes.extend((0..2000u64).map(|i| i.wrapping_mul(0x9E37_79B9_7F4A_7C15)));
            for h in probes {
                let plain = r.points.partition_point(|&p| p < h);
                let plain = if plain == r.points.len() { 0 } else { plain };
                assert_eq!(r.slot(h), plain, "hash {h:#x}, {members} members");
            }
        }
    }

    #[test]
    fn wraps_past_the_last_point() {
        let r = ring(&[("a", 100), ("b", 100)]);
        let last = *r.points.last().unwrap();
        if last < u64::MAX {
            assert_eq!(r.owner_of_hash(last + 1), r.owner_of_hash(0));
            assert_eq!(r.owner_of_hash(u64::MAX), r.owner_of_hash(0));
        }
    }
}
