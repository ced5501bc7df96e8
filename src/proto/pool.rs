//! Uniform random choice of a few members (probe relays, gossip targets, push-pull
//! partners) from an array of names, without scanning it. The result depends only on the
//! array's order and the RNG, never on hashing, so runs repeat.

use rand::Rng;

use super::interner::Name;

/// Up to `k` distinct names from `names` chosen uniformly, skipping those `exclude` rejects.
pub fn sample(
    names: &[Name],
    rng: &mut impl Rng,
    k: usize,
    mut exclude: impl FnMut(&str) -> bool,
) -> Vec<Name> {
    let n = names.len();
    let mut out: Vec<Name> = Vec::with_capacity(k);
    if k == 0 || n == 0 {
        return out;
    }
    // Rejection sampling is O(k) for the usual k << n; a bounded number of tries falls back
    // to one partial shuffle of indices when most names are excluded.
    for _ in 0..(4 * k + 8) {
        let name = &names[rng.random_range(0..n)];
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
        let name = &names[idx[i]];
        if !exclude(name) && !out.contains(name) {
            out.push(name.clone());
            if out.len() == k {
                break;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    use crate::proto::interner::Interner;

    #[test]
    fn samples_are_distinct_and_respect_exclusion() {
        let interner = Interner::default();
        let names: Vec<Name> = ["a", "c", "d"].iter().map(|n| interner.name(n)).collect();
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let s = sample(&names, &mut rng, 5, |n| n == "c");
        let mut sorted: Vec<&str> = s.iter().map(|n| &**n).collect();
        sorted.sort();
        assert_eq!(sorted, vec!["a", "d"]);
        assert!(sample(&names, &mut rng, 2, |_| true).is_empty());
    }
}
