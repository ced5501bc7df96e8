//! Criterion benches for `swimring::ring`; figures go to the "Placement (ring)" section of
//! `docs/BENCHMARKS.md`.
//!
//! `cargo bench --bench ring -- --measurement-time 2 --warm-up-time 1`
#![allow(
    missing_docs,
    reason = "criterion_group! expands to an undocumented public function"
)]

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use swimring::ring::{
    BoundedLoad, DEFAULT_VNODES_PER_MEMBER, LoadPolicy, Ring, RingConfig, TaskTable,
    assign_bounded, key_hash,
};

fn names(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("node-{i:04}")).collect()
}

fn ring_of(names: &[String], config: RingConfig) -> Ring {
    Ring::new(config, names.iter().map(|n| (n.as_str(), 100))).unwrap()
}

/// Random pre-hashed keys, more of them than fit in L1 alongside the ring, so lookups are not
/// measured against a single hot path through the binary search.
fn hashes(count: usize) -> Vec<u64> {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    (0..count).map(|_| rng.random()).collect()
}

fn lookup(c: &mut Criterion) {
    let members = names(1000);
    let mut group = c.benchmark_group("ring_lookup_1000_members");
    let hs = hashes(4096);
    for vnodes in [64, 256, 512] {
        let ring = ring_of(
            &members,
            RingConfig {
                vnodes_per_member: vnodes,
            },
        );
        group.throughput(Throughput::Elements(hs.len() as u64));
        group.bench_with_input(
            BenchmarkId::new("owner_of_hash", vnodes),
            &ring,
            |b, ring| {
                b.iter(|| {
                    let mut acc = 0usize;
                    for &h in &hs {
                        acc += ring.owner_of_hash(black_box(h)).map_or(0, str::len);
                    }
                    acc
                });
            },
        );
    }
    let ring = ring_of(&members, RingConfig::default());
    let keys: Vec<String> = (0..4096).map(|i| format!("tenant-{i}/job")).collect();
    group.bench_function(
        BenchmarkId::new("owner_with_hashing", DEFAULT_VNODES_PER_MEMBER),
        |b| {
            b.iter(|| {
                let mut acc = 0usize;
                for k in &keys {
                    acc += ring.owner(black_box(k.as_bytes())).map_or(0, str::len);
                }
                acc
            });
        },
    );
    group.bench_function(
        BenchmarkId::new("owners_3", DEFAULT_VNODES_PER_MEMBER),
        |b| {
            b.iter(|| {
                let mut acc = 0usize;
                for &h in &hs {
                    acc += ring.owners_of_hash(black_box(h), 3).len();
                }
                acc
            });
        },
    );
    group.finish();
}

fn rebuild(c: &mut Criterion) {
    let mut group = c.benchmark_group("ring_rebuild_1000_members");
    group.sample_size(20);
    let members = names(1000);
    for vnodes in [64, 256, 512] {
        let config = RingConfig {
            vnodes_per_member: vnodes,
        };
        group.bench_with_input(BenchmarkId::from_parameter(vnodes), &config, |b, config| {
            b.iter(|| ring_of(black_box(&members), *config));
        });
    }
    group.finish();
}

fn bounded(c: &mut Criterion) {
    let mut group = c.benchmark_group("bounded_assign");
    group.sample_size(20);
    let ring = ring_of(&names(100), RingConfig::default());
    let tasks: Vec<String> = (0..10_000).map(|i| format!("task-{i}")).collect();
    group.throughput(Throughput::Elements(tasks.len() as u64));
    group.bench_function("10000_tasks_100_members_c1.25", |b| {
        b.iter(|| assign_bounded(&ring, BoundedLoad::default(), black_box(&tasks)).len());
    });
    group.bench_function("10000_tasks_100_members_plain", |b| {
        b.iter(|| {
            tasks
                .iter()
                .filter(|t| ring.owner_of_hash(key_hash(t.as_bytes())).is_some())
                .count()
        });
    });
    group.finish();
}

/// What a node pays per membership change: recompute 10,000 tasks and diff for itself.
fn task_table(c: &mut Criterion) {
    let mut group = c.benchmark_group("task_table_update_10000_tasks_100_members");
    group.sample_size(20);
    let members = names(100);
    let full = ring_of(&members, RingConfig::default());
    let less = ring_of(&members[1..], RingConfig::default());
    for (label, placement) in [
        ("consistent", LoadPolicy::Consistent),
        ("bounded_c1.25", LoadPolicy::Bounded(BoundedLoad::default())),
    ] {
        let mut table = TaskTable::new(members[5].clone(), placement);
        table.update_ring(&full);
        table.insert_all((0..10_000).map(|i| format!("task-{i}")));
        group.bench_function(label, |b| {
            b.iter(|| {
                let lost = table.update_ring(black_box(&less));
                let back = table.update_ring(black_box(&full));
                lost.acquired.len() + back.released.len()
            });
        });
    }
    group.finish();
}

criterion_group!(benches, lookup, rebuild, bounded, task_table);
criterion_main!(benches);
