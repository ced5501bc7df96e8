//! Sorting virtual-node points and indexing them by hash prefix.
//!
//! Kept apart from the ring so the ring reads as "members, points, lookups" while the
//! performance work lives here: a lookup binary-searches only the few points sharing the
//! key's hash prefix, and a rebuild sorts points by distributing them into those same
//! prefix buckets.

/// Bits of prefix used to bucket `points` points: about one bucket per four points (at most
/// 2²⁰ buckets), so a bucket usually spans a single cache line of points.
fn bucket_bits(points: usize) -> u32 {
    let target = (points / 4).max(1);
    (usize::BITS - 1 - target.leading_zeros()).min(20)
}

/// Prefix bucket of `point` when using `bits` bits.
#[inline]
pub(crate) fn bucket_of(point: u64, bits: u32) -> usize {
    if bits == 0 {
        0
    } else {
        (point >> (64 - bits)) as usize
    }
}

/// Output of [`bucket_sort`].
pub(crate) struct SortedPoints {
    /// Prefix bits used by the index.
    pub(crate) bits: u32,
    /// `bucket_start[b]`: index of the first point with prefix `>= b`, plus a final `len`.
    pub(crate) bucket_start: Vec<u32>,
    /// Sorted points.
    pub(crate) points: Vec<u64>,
    /// Owning member index of each point.
    pub(crate) owners: Vec<u32>,
}

/// Sorts `(point, member index)` pairs into parallel arrays and builds the prefix index.
///
/// Points are uniform hashes, so a counting pass and a scatter pass leave buckets of about
/// four points; each pair is insertion-sorted into its bucket as it is scattered, while that
/// bucket's cache line is hot. This is several times faster than a comparison sort of the
/// whole array at 1,000 members. The order is the total order on `(point, member index)`, so
/// the result is canonical (a point collision is won by the lower-named member). A bucket
/// that grows past a few dozen points (only possible with adversarial names) stops being
/// insertion-sorted and is sorted once at the end, so the worst case stays O(n log n).
pub(crate) fn bucket_sort(pairs: &[(u64, u32)]) -> SortedPoints {
    const INSERTION_LIMIT: u32 = 32;
    let bits = bucket_bits(pairs.len());
    let buckets = 1usize << bits;
    // `MAX_POINTS` < 2³², so counts and indices fit in u32.
    let mut start = vec![0u32; buckets + 1];
    for &(point, _) in pairs {
        start[bucket_of(point, bits) + 1] += 1;
    }
    for b in 0..buckets {
        start[b + 1] += start[b];
    }
    let mut next = start.clone();
    let mut points = vec![0u64; pairs.len()];
    let mut owners = vec![0u32; pairs.len()];
    for &(point, owner) in pairs {
        let b = bucket_of(point, bits);
        let lo = start[b] as usize;
        let mut j = next[b] as usize;
        next[b] += 1;
        if next[b] - start[b] <= INSERTION_LIMIT {
            while j > lo && (points[j - 1], owners[j - 1]) > (point, owner) {
                points[j] = points[j - 1];
                owners[j] = owners[j - 1];
                j -= 1;
            }
        }
        points[j] = point;
        owners[j] = owner;
    }
    for b in 0..buckets {
        let (lo, hi) = (start[b] as usize, start[b + 1] as usize);
        if hi - lo > INSERTION_LIMIT as usize {
            let mut bucket: Vec<(u64, u32)> = points[lo..hi]
                .iter()
                .copied()
                .zip(owners[lo..hi].iter().copied())
                .collect();
            bucket.sort_unstable();
            for (i, (p, o)) in bucket.into_iter().enumerate() {
                points[lo + i] = p;
                owners[lo + i] = o;
            }
        }
    }
    SortedPoints {
        bits,
        bucket_start: start,
        points,
        owners,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_sort_handles_crowded_buckets() {
        // Many points sharing one prefix exercise the fallback past the insertion limit.
        let pairs: Vec<(u64, u32)> = (0..400u64)
            .map(|i| ((i * 7919) % 1000, (i % 5) as u32))
            .chain((0..400u64).map(|i| (i.wrapping_mul(0x9E37_79B9_7F4A_7C15), 9)))
            .collect();
        let sorted = bucket_sort(&pairs);
        let mut expected = pairs.clone();
        expected.sort_unstable();
        let got: Vec<(u64, u32)> = sorted.points.into_iter().zip(sorted.owners).collect();
        assert_eq!(got, expected);
    }
}
