//! Property tests for `swimring::ring`, plus the ignored balance report behind the
//! "Placement (ring)" figures in `docs/BENCHMARKS.md`.
//!
//! Run the report with:
//! `cargo test --release --test ring_props -- --ignored --nocapture balance_report`

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use swimring::ring::{
    BoundedLoad, LoadPolicy, Reassignment, Ring, RingConfig, TaskTable, assign_bounded, key_hash,
};

/// Member sets: distinct lowercase names with weights, some of them 0.
fn members() -> impl Strategy<Value = BTreeMap<String, u32>> {
    prop::collection::btree_map("[a-z]{1,6}", prop_oneof![Just(0u32), 1u32..=300], 1..24)
}

/// Member sets of positive weight only, where every member owns part of the ring.
fn weighted_members(min: usize) -> impl Strategy<Value = BTreeMap<String, u32>> {
    prop::collection::btree_map("[a-z]{1,6}", 1u32..=300, min..24)
}

/// Small vnode counts exercise sparse rings; the default exercises the real configuration.
fn config() -> impl Strategy<Value = RingConfig> {
    prop_oneof![Just(RingConfig::default().vnodes_per_member), 1u32..48].prop_map(|v| RingConfig {
        vnodes_per_member: v,
    })
}

fn keys() -> impl Strategy<Value = Vec<Vec<u8>>> {
    prop::collection::vec(prop::collection::vec(any::<u8>(), 0..12), 1..150)
}

fn build(config: RingConfig, members: &BTreeMap<String, u32>) -> Ring {
    Ring::new(config, members.iter().map(|(n, w)| (n.as_str(), *w))).unwrap()
}

fn shuffled<T: Clone>(items: &[T], seed: u64) -> Vec<T> {
    let mut v = items.to_vec();
    v.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
    v
}

fn placement() -> impl Strategy<Value = LoadPolicy> {
    prop_oneof![
        Just(LoadPolicy::Consistent),
        (1.1f64..2.5).prop_map(|c| LoadPolicy::Bounded(BoundedLoad::new(c).unwrap())),
    ]
}

fn snapshot(t: &TaskTable<String>) -> BTreeMap<String, Option<String>> {
    t.assignment()
        .map(|(k, o)| (k.clone(), o.map(str::to_string)))
        .collect()
}

type Change<'a> = Box<dyn Fn(&mut TaskTable<String>) -> Reassignment<String> + 'a>;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn input_order_is_irrelevant(
        config in config(), members in members(), keys in keys(), seed in any::<u64>()
    ) {
        let list: Vec<(String, u32)> = members.clone().into_iter().collect();
        let a = Ring::new(config, list.iter().map(|(n, w)| (n, *w))).unwrap();
        let mixed = shuffled(&list, seed);
        let b = Ring::new(config, mixed.iter().map(|(n, w)| (n, *w))).unwrap();
        prop_assert_eq!(a.checksum(), b.checksum());
        prop_assert!(a.members().eq(b.members()));
        for k in &keys {
            prop_assert_eq!(a.owner(k), b.owner(k));
            prop_assert_eq!(a.owners(k, 5), b.owners(k, 5));
        }
        prop_assert_eq!(a, b);
    }

    #[test]
    fn duplicate_names_are_rejected(
        members in weighted_members(1), pick in any::<prop::sample::Index>()
    ) {
        let mut list: Vec<(String, u32)> = members.into_iter().collect();
        let dup = list[pick.index(list.len())].clone();
        list.push((dup.0, dup.1 + 1));
        let built = Ring::new(RingConfig::default(), list.iter().map(|(n, w)| (n, *w)));
        prop_assert!(built.is_err());
    }

    #[test]
    fn removing_a_member_moves_only_its_keys(
        config in config(), members in weighted_members(2),
        pick in any::<prop::sample::Index>(), keys in keys()
    ) {
        let before = build(config, &members);
        let gone = members.keys().nth(pick.index(members.len())).unwrap().clone();
        let mut rest = members.clone();
        rest.remove(&gone);
        let after = build(config, &rest);
        for k in &keys {
            let (old, new) = (before.owner(k).unwrap(), after.owner(k).unwrap());
            prop_assert_ne!(new, gone.as_str());
            if old != new {
                prop_assert_eq!(old, gone.as_str(), "a key not owned by the leaver moved");
            }
        }
    }

    #[test]
    fn adding_a_member_moves_keys_only_to_it(
        config in config(), members in members(), weight in 1u32..300, keys in keys()
    ) {
        let before = build(config, &members);
        let mut more = members.clone();
        more.insert("new-member".into(), weight);
        let after = build(config, &more);
        for k in &keys {
            let (old, new) = (before.owner(k), after.owner(k));
            if old != new {
                prop_assert_eq!(new, Some("new-member"), "a key moved to an old member");
            }
        }
    }

    #[test]
    fn owners_are_distinct_in_ring_order(
        config in config(), members in members(), keys in keys(), n in 0usize..30
    ) {
        let ring = build(config, &members);
        let eligible = members.values().filter(|w| **w > 0).count();
        prop_assert_eq!(ring.eligible_len(), eligible);
        for k in &keys {
            let owners = ring.owners(k, n);
            prop_assert_eq!(owners.len(), n.min(eligible));
            let distinct: BTreeSet<&str> = owners.iter().copied().collect();
            prop_assert_eq!(distinct.len(), owners.len());
            prop_assert!(owners.iter().all(|o| members[*o] > 0));
            if n > 0 {
                prop_assert_eq!(owners.first().copied(), ring.owner(k));
            }
            // A longer list extends a shorter one: failover order is stable.
            let longer = ring.owners(k, n + 3);
            prop_assert_eq!(&longer[..owners.len()], &owners[..]);
        }
    }

    #[test]
    fn skipping_picks_first_unskipped_owner(
        config in config(), members in members(), keys in keys(), mask in any::<u32>()
    ) {
        let ring = build(config, &members);
        let skipped: BTreeSet<&str> = members
            .keys()
            .enumerate()
            .filter(|(i, _)| mask & (1 << (i % 32)) != 0)
            .map(|(_, n)| n.as_str())
            .collect();
        for k in &keys {
            let expected = ring
                .owners(k, usize::MAX)
                .into_iter()
                .find(|o| !skipped.contains(o));
            let mut calls: BTreeMap<String, usize> = BTreeMap::new();
            let got = ring.owner_skipping(k, |n| {
                *calls.entry(n.to_string()).or_insert(0) += 1;
                skipped.contains(n)
            });
            prop_assert_eq!(got, expected);
            prop_assert!(calls.values().all(|c| *c == 1), "skip called twice for a member");
        }
    }

    #[test]
    fn checksums_match_exactly_when_member_sets_match(
        a in prop::collection::btree_map(
            prop::sample::select(vec!["a", "b", "c", "d"]), 0u32..3, 0..4),
        b in prop::collection::btree_map(
            prop::sample::select(vec!["a", "b", "c", "d"]), 0u32..3, 0..4),
    ) {
        let ra = Ring::new(RingConfig::default(), a.iter().map(|(n, w)| (*n, *w))).unwrap();
        let rb = Ring::new(RingConfig::default(), b.iter().map(|(n, w)| (*n, *w))).unwrap();
        prop_assert_eq!(a == b, ra.checksum() == rb.checksum());
        prop_assert_eq!(a == b, ra == rb);
    }

    #[test]
    fn bounded_loads_never_exceed_capacity(
        config in config(), members in members(), c in 1.1f64..3.0, tasks in 0usize..600,
        seed in any::<u64>()
    ) {
        let ring = build(config, &members);
        let load = BoundedLoad::new(c).unwrap();
        let keys: Vec<String> = (0..tasks).map(|i| format!("{seed}/{i}")).collect();
        let first = assign_bounded(&ring, load, &keys);
        let mixed = shuffled(&keys, seed);
        let again = assign_bounded(&ring, load, mixed.iter());
        prop_assert_eq!(&first, &again);
        if ring.eligible_len() > 0 {
            prop_assert_eq!(first.len(), keys.len());
        } else {
            prop_assert!(first.is_empty());
        }
        let mut count: BTreeMap<&str, usize> = BTreeMap::new();
        for owner in first.values() {
            *count.entry(owner).or_default() += 1;
        }
        for (name, weight) in ring.members() {
            let held = count.get(name).copied().unwrap_or(0);
            let cap = load.capacity(keys.len(), weight, ring.total_weight());
            prop_assert!(held <= cap, "{} holds {} > capacity {}", name, held, cap);
        }
    }

    #[test]
    fn reassignments_partition_the_moved_tasks(
        pool in prop::collection::btree_map("[a-f]{1,2}", 0u32..250, 1..12),
        before_mask in any::<u16>(), after_mask in any::<u16>(),
        placement in placement(), tasks in 0usize..200, seed in any::<u64>()
    ) {
        let pick = |mask: u16| -> BTreeMap<String, u32> {
            pool.iter()
                .enumerate()
                .filter(|(i, _)| mask & (1 << i) != 0)
                .map(|(_, (n, w))| (n.clone(), *w))
                .collect()
        };
        let before = build(RingConfig::default(), &pick(before_mask));
        let after = build(RingConfig::default(), &pick(after_mask));
        let keys: Vec<String> = (0..tasks).map(|i| format!("job-{seed}-{i}")).collect();
        let mut locals: Vec<String> = pool.keys().cloned().collect();
        locals.push("not-a-member".into());
        let mut tables: Vec<TaskTable<String>> = locals
            .iter()
            .map(|l| {
                let mut t = TaskTable::new(l.clone(), placement);
                t.update_ring(&before);
                for k in &keys {
                    t.insert(k.clone());
                }
                t
            })
            .collect();

        // A membership change, then a task added and a task removed: each must partition.
        let new_key = format!("job-{seed}-extra");
        let gone_key = keys.first().cloned().unwrap_or_else(|| "none".into());
        let changes: Vec<Change<'_>> = vec![
            Box::new(|t| t.update_ring(&after)),
            Box::new(|t| t.insert(new_key.clone())),
            Box::new(|t| t.remove(gone_key.as_str())),
        ];
        let mut prev = snapshot(&tables[0]);
        for change in &changes {
            let mut acquired: BTreeMap<String, String> = BTreeMap::new();
            let mut released: BTreeMap<String, String> = BTreeMap::new();
            for (table, local) in tables.iter_mut().zip(&locals) {
                let r = change(table);
                for k in r.acquired {
                    prop_assert!(acquired.insert(k, local.clone()).is_none(), "acquired twice");
                }
                for k in r.released {
                    prop_assert!(released.insert(k, local.clone()).is_none(), "released twice");
                }
            }
            let now = snapshot(&tables[0]);
            for t in &tables[1..] {
                prop_assert_eq!(&snapshot(t), &now, "tables disagree");
            }
            let all: BTreeSet<&String> = prev.keys().chain(now.keys()).collect();
            for k in all {
                let was = prev.get(k).cloned().flatten();
                let is = now.get(k).cloned().flatten();
                if was == is {
                    prop_assert!(!acquired.contains_key(k) && !released.contains_key(k));
                } else {
                    prop_assert_eq!(acquired.get(k), is.as_ref(), "acquirer of {}", k);
                    prop_assert_eq!(released.get(k), was.as_ref(), "releaser of {}", k);
                }
            }
            prev = now;
        }
    }

    #[test]
    fn task_table_depends_only_on_final_inputs(
        a in members(), b in members(), placement in placement(), tasks in 0usize..150,
        seed in any::<u64>()
    ) {
        let (ra, rb) = (build(RingConfig::default(), &a), build(RingConfig::default(), &b));
        let keys: Vec<String> = (0..tasks).map(|i| format!("t{seed}:{i}")).collect();
        // History 1: view a, tasks in one order plus a transient task, then view b.
        let mut one = TaskTable::new("x", placement);
        one.update_ring(&ra);
        one.insert("transient".to_string());
        for k in shuffled(&keys, seed) {
            one.insert(k);
        }
        one.remove("transient");
        one.update_ring(&rb);
        // History 2: tasks first in another order, as a batch, then view b directly.
        let mut two = TaskTable::new("y", placement);
        two.insert_all(shuffled(&keys, seed ^ 1));
        two.update_ring(&rb);
        prop_assert_eq!(snapshot(&one), snapshot(&two));
        // History 3: view b first, then the batch; a member of b reports exactly its share.
        let local = b.keys().next().unwrap().clone();
        let mut three = TaskTable::new(local.clone(), placement);
        three.update_ring(&rb);
        let got = three.insert_all(shuffled(&keys, seed ^ 2));
        prop_assert_eq!(snapshot(&three), snapshot(&two));
        prop_assert!(got.released.is_empty());
        let owned: Vec<String> = three.owned_by(&local).cloned().collect();
        prop_assert_eq!(got.acquired, owned);
        match placement {
            LoadPolicy::Consistent => {
                for (k, o) in one.assignment() {
                    prop_assert_eq!(o, rb.owner(k.as_bytes()));
                }
            }
            LoadPolicy::Bounded(load) => {
                let direct = assign_bounded(&rb, load, &keys);
                for (k, o) in one.assignment() {
                    prop_assert_eq!(o, direct.get(k).copied());
                }
            }
        }
    }

    #[test]
    fn owner_of_hash_matches_owner(config in config(), members in members(), keys in keys()) {
        let ring = build(config, &members);
        for k in &keys {
            prop_assert_eq!(ring.owner(k), ring.owner_of_hash(key_hash(k)));
        }
    }
}

// ---------------------------------------------------------------------------------------
// Balance report (ignored: it is a measurement, not a check).
// ---------------------------------------------------------------------------------------

fn uniform(config: RingConfig, n: usize) -> (Ring, Vec<String>) {
    let names: Vec<String> = (0..n).map(|i| format!("node-{i:04}")).collect();
    let ring = Ring::new(config, names.iter().map(|n| (n.as_str(), 100))).unwrap();
    (ring, names)
}

/// (peak / mean, min / mean) of a load vector.
fn spread(counts: impl Iterator<Item = f64>) -> (f64, f64) {
    let v: Vec<f64> = counts.collect();
    let mean = v.iter().sum::<f64>() / v.len() as f64;
    let max = v.iter().copied().fold(f64::MIN, f64::max);
    let min = v.iter().copied().fold(f64::MAX, f64::min);
    (max / mean, min / mean)
}

fn key_counts<'r>(ring: &'r Ring, hashes: &[u64]) -> BTreeMap<&'r str, usize> {
    let mut counts: BTreeMap<&str, usize> = ring.members().map(|(n, _)| (n, 0)).collect();
    for h in hashes {
        *counts.get_mut(ring.owner_of_hash(*h).unwrap()).unwrap() += 1;
    }
    counts
}

#[test]
#[ignore = "measurement report; run with --release --ignored --nocapture"]
fn balance_report() {
    const MEMBERS: usize = 1000;
    const KEYS: u64 = 1_000_000;
    const CLUSTERS: usize = 8;
    let hashes: Vec<u64> = (0..KEYS)
        .map(|i| key_hash(format!("key-{i}").as_bytes()))
        .collect();

    println!("\n### Balance at {MEMBERS} members (weight 100 each)");
    println!(
        "Arc share = exact fraction of the hash circle; {CLUSTERS} clusters with different \
         member names; keys = {KEYS} keys on the first cluster."
    );
    println!(
        "| vnodes/member | points | peak/mean arc (mean of {CLUSTERS}) | worst peak/mean arc | \
         min/mean arc (mean) | peak/mean ({KEYS} keys) |"
    );
    println!("|---:|---:|---:|---:|---:|---:|");
    for v in [16, 64, 128, 256, 512] {
        let config = RingConfig {
            vnodes_per_member: v,
        };
        let mut peaks = Vec::new();
        let mut mins = Vec::new();
        let mut key_peak = 0.0;
        let mut points = 0;
        for cluster in 0..CLUSTERS {
            let names: Vec<String> = (0..MEMBERS)
                .map(|i| format!("c{cluster}-node-{i:04}"))
                .collect();
            let ring = Ring::new(config, names.iter().map(|n| (n.as_str(), 100))).unwrap();
            let (peak, min) = spread(ring.ownership().into_iter().map(|(_, s)| s));
            peaks.push(peak);
            mins.push(min);
            if cluster == 0 {
                key_peak = spread(key_counts(&ring, &hashes).into_values().map(|c| c as f64)).0;
                points = ring.vnode_count();
            }
        }
        let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
        println!(
            "| {v} | {points} | {:.3} | {:.3} | {:.3} | {key_peak:.3} |",
            mean(&peaks),
            peaks.iter().copied().fold(0.0, f64::max),
            mean(&mins),
        );
    }

    let (ring, names) = uniform(RingConfig::default(), MEMBERS);
    println!(
        "\n### Keys moved on one member loss ({MEMBERS} members, default vnodes, {KEYS} keys)"
    );
    println!(
        "| member removed | keys moved | fraction | 1/n | leaver's arc share | moved only from leaver |"
    );
    println!("|---|---:|---:|---:|---:|---|");
    let shares: BTreeMap<&str, f64> = ring.ownership().into_iter().collect();
    let mut total = 0usize;
    let sample: Vec<&String> = names.iter().step_by(100).collect();
    for gone in &sample {
        let rest = Ring::new(
            RingConfig::default(),
            names
                .iter()
                .filter(|n| n != gone)
                .map(|n| (n.as_str(), 100)),
        )
        .unwrap();
        let mut moved = 0usize;
        let mut only_leaver = true;
        for h in &hashes {
            let (a, b) = (ring.owner_of_hash(*h), rest.owner_of_hash(*h));
            if a != b {
                moved += 1;
                only_leaver &= a == Some(gone.as_str());
            }
        }
        total += moved;
        println!(
            "| {gone} | {moved} | {:.5} | {:.5} | {:.5} | {only_leaver} |",
            moved as f64 / KEYS as f64,
            1.0 / MEMBERS as f64,
            shares[gone.as_str()]
        );
    }
    println!(
        "| mean of {} | {} | {:.5} | {:.5} | | |",
        sample.len(),
        total / sample.len(),
        total as f64 / sample.len() as f64 / KEYS as f64,
        1.0 / MEMBERS as f64
    );

    bounded_report(100, 10_000);
    bounded_report(1000, 10_000);
}

/// Peak/mean and movement of `tasks` tasks over `members` members, plain and bounded,
/// averaged over `CHANGES` single-member losses and joins. The least possible movement is what
/// the leaver held (loss) or what the joiner ends up with (join).
fn bounded_report(members: usize, tasks: usize) {
    const CHANGES: usize = 10;
    let keys: Vec<String> = (0..tasks).map(|i| format!("task-{i}")).collect();
    let (ring, names) = uniform(RingConfig::default(), members);
    let build = |list: Vec<&str>| {
        Ring::new(RingConfig::default(), list.into_iter().map(|n| (n, 100))).unwrap()
    };
    let leavers: Vec<(&str, Ring)> = names
        .iter()
        .step_by(members / CHANGES)
        .take(CHANGES)
        .map(|gone| {
            let rest = names.iter().map(String::as_str).filter(|n| n != gone);
            (gone.as_str(), build(rest.collect()))
        })
        .collect();
    let joiner_names: Vec<String> = (0..CHANGES).map(|i| format!("joiner-{i}")).collect();
    let joiners: Vec<(&str, Ring)> = joiner_names
        .iter()
        .map(|j| {
            let all = names.iter().map(String::as_str).chain([j.as_str()]);
            (j.as_str(), build(all.collect()))
        })
        .collect();

    println!(
        "\n### {tasks} tasks over {members} members (default vnodes; mean of {CHANGES} losses / joins)"
    );
    println!(
        "| placement | peak/mean | moved on 1 loss | leaver held (minimum) | moved on 1 join | joiner got (minimum) |"
    );
    println!("|---|---:|---:|---:|---:|---:|");
    let plain = |r: &Ring| -> BTreeMap<String, String> {
        keys.iter()
            .map(|k| (k.clone(), r.owner(k.as_bytes()).unwrap().to_string()))
            .collect()
    };
    let row = |label: &str, f: &dyn Fn(&Ring) -> BTreeMap<String, String>| {
        let base = f(&ring);
        let mut counts: BTreeMap<&str, usize> = names.iter().map(|n| (n.as_str(), 0)).collect();
        for o in base.values() {
            *counts.get_mut(o.as_str()).unwrap() += 1;
        }
        let (peak, _) = spread(counts.values().map(|c| *c as f64));
        let moved = |other: &BTreeMap<String, String>| {
            base.iter().filter(|(k, o)| other[*k] != **o).count()
        };
        let (mut lost_moved, mut lost_held, mut join_moved, mut join_got) = (0, 0, 0, 0);
        for (gone, r) in &leavers {
            lost_moved += moved(&f(r));
            lost_held += counts[gone];
        }
        for (joiner, r) in &joiners {
            let after = f(r);
            join_moved += moved(&after);
            join_got += after.values().filter(|o| o.as_str() == *joiner).count();
        }
        let mean = |x: usize| x as f64 / CHANGES as f64;
        println!(
            "| {label} | {peak:.3} | {:.1} | {:.1} | {:.1} | {:.1} |",
            mean(lost_moved),
            mean(lost_held),
            mean(join_moved),
            mean(join_got),
        );
    };
    row("consistent", &plain);
    for c in [1.1, 1.25, 1.5, 2.0] {
        let load = BoundedLoad::new(c).unwrap();
        let keys = &keys;
        let bounded = move |r: &Ring| -> BTreeMap<String, String> {
            assign_bounded(r, load, keys)
                .into_iter()
                .map(|(k, o)| (k.clone(), o.to_string()))
                .collect()
        };
        row(&format!("bounded c={c}"), &bounded);
    }
}
