//! The core's counters, and the one list of their names.
//!
//! Each counter is declared once, with its doc comment, by [`counters!`]: the struct field, its
//! name in `swimring status` and in metrics, and its help text all come from that one line,
//! so the control endpoint, the metrics exporter and the simulator never copy the names.

/// One counter as [`Stats::counters`] lists it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counter {
    /// snake_case name, the field's own: `probes_sent`.
    pub name: &'static str,
    /// What it counts: the field's doc comment.
    pub help: &'static str,
    /// Its value.
    pub value: u64,
}

/// Declares a struct of `u64` counters and its `counters()`, which lists them in declaration
/// order. Fields after the `;` are not counters (gauges, say), except one marked `nested`:
/// a struct with a `counters()` of its own, whose counters are listed first.
macro_rules! counters {
    (
        $(#[$meta:meta])*
        pub struct $ty:ident {
            $( nested $(#[$nmeta:meta])* pub $nested:ident: $nty:ty, )?
            $( #[doc = $help:literal] pub $name:ident: u64, )+
            ;
            $( $(#[$fmeta:meta])* pub $other:ident: $oty:ty, )*
        }
    ) => {
        $(#[$meta])*
        pub struct $ty {
            $( $(#[$nmeta])* pub $nested: $nty, )?
            $( #[doc = $help] pub $name: u64, )+
            $( $(#[$fmeta])* pub $other: $oty, )*
        }

        impl $ty {
            /// Every counter, in declaration order, with its name and help text.
            pub fn counters(&self) -> Vec<$crate::proto::Counter> {
                #[allow(unused_mut)]
                let mut all = Vec::new();
                $( all.extend(self.$nested.counters()); )?
                all.extend([$( $crate::proto::Counter {
                    name: stringify!($name),
                    help: $help.trim(),
                    value: self.$name,
                }, )+]);
                all
            }
        }
    };
}
pub(crate) use counters;

counters! {
    /// Counters kept by the core. All only grow; `health_score` is the one gauge.
    #[derive(Debug, Clone, Default, PartialEq, Eq)]
    #[non_exhaustive]
    pub struct Stats {
        /// Direct probes sent.
        pub probes_sent: u64,
        /// Indirect probe requests sent to relays.
        pub indirect_probes_sent: u64,
        /// Suspicions this node raised after a failed probe.
        pub suspicions_raised: u64,
        /// Suspicions about this node that it refuted.
        pub refutations: u64,
        /// Suspected members seen to recover.
        pub members_recovered: u64,
        /// Members this node declared dead when their suspicion timed out.
        pub deaths_declared: u64,
        /// Datagrams received.
        pub packets_in: u64,
        /// Datagrams sent.
        pub packets_out: u64,
        /// Datagram bytes received.
        pub bytes_in: u64,
        /// Datagram bytes sent.
        pub bytes_out: u64,
        /// Stream payloads received (requests and replies).
        pub streams_in: u64,
        /// Stream payloads sent (requests and replies).
        pub streams_out: u64,
        /// Stream payload bytes received (requests and replies).
        pub stream_bytes_in: u64,
        /// Stream payload bytes sent (requests and replies).
        pub stream_bytes_out: u64,
        /// Packets refused as malformed, foreign or out of bounds.
        pub decode_errors: u64,
        /// New members refused because a bound was reached.
        pub members_refused: u64,
        /// Independent confirmations of suspicions this node held, each shortening a timeout.
        pub suspicions_confirmed: u64,
        /// Full states from other members merged (a join's answer, a push-pull either way).
        pub states_merged: u64,
        /// Refusals (crash evidence) heard during this node's probes, its own or a relay's.
        pub refusals_heard: u64,
        /// Members declared dead at once on refusals seen from two vantage points.
        pub deaths_on_evidence: u64,
        /// Suspicions this node raised that carried a live host (patience for a stall).
        pub stalls_seen: u64,
        /// Pings sent to dead members, to notice a healed partition.
        pub dead_pings_sent: u64,
        /// User events this node broadcast.
        pub user_events_sent: u64,
        /// User events from other members delivered here, each once.
        pub user_events_received: u64,
        /// Copies of user events already delivered here (or from an origin's earlier run): dropped.
        pub user_events_duplicates: u64,
        /// User event frames that did not decode: dropped alone, the rest of their packet applied.
        pub user_events_malformed: u64,
        /// User events dropped from the full outgoing queue before they were sent their retransmit count (the most sent first).
        pub user_events_evicted: u64,
        /// User events refused because they came from an unknown origin while 1,024 unknown origins were remembered.
        pub user_events_refused: u64,
        ;
        /// Lifeguard local health score (0 healthy, up to the multiplier − 1).
        pub health_score: u32,
        /// Round-trip times of answered probes.
        pub probe_rtt: RttHistogram,
    }
}

/// Upper bounds, in microseconds, of [`RttHistogram`]'s buckets: from a loopback's quarter
/// millisecond to a WAN's second, about ×2.5 apart. Fixed, so every node's histograms add up.
pub const RTT_BUCKETS_US: [u64; 12] = [
    250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000,
];

/// Probe round-trip times in fixed buckets ([`RTT_BUCKETS_US`] and one for anything slower):
/// what a metrics exporter turns into a histogram, kept in the core because only it knows
/// when a probe was answered.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RttHistogram {
    /// Samples per bucket, not cumulative; the last counts samples above every bound.
    counts: [u64; RTT_BUCKETS_US.len() + 1],
    /// Sum of every sample, in microseconds.
    sum_us: u64,
}

impl RttHistogram {
    /// Counts one round trip.
    pub fn observe(&mut self, rtt: std::time::Duration) {
        let us = u64::try_from(rtt.as_micros()).unwrap_or(u64::MAX);
        let i = RTT_BUCKETS_US.partition_point(|&bound| bound < us);
        self.counts[i] += 1;
        self.sum_us = self.sum_us.saturating_add(us);
    }

    /// Each bucket's upper bound in microseconds (`None` for the last, unbounded one) and
    /// how many samples fell in it (not cumulative).
    pub fn buckets(&self) -> impl Iterator<Item = (Option<u64>, u64)> + '_ {
        let bounds = RTT_BUCKETS_US.iter().copied().map(Some).chain([None]);
        bounds.zip(self.counts.iter().copied())
    }

    /// Samples counted.
    pub fn count(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// Sum of every sample, in microseconds.
    pub fn sum_us(&self) -> u64 {
        self.sum_us
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_list_every_field_with_its_value_and_help() {
        let s = Stats {
            refutations: 3,
            ..Stats::default()
        };
        let list = s.counters();
        assert_eq!(list.len(), 28);
        let r = list.iter().find(|c| c.name == "refutations").unwrap();
        assert_eq!(
            (r.value, r.help),
            (3, "Suspicions about this node that it refuted.")
        );
        assert_eq!(list[0].name, "probes_sent");
    }

    #[test]
    fn rtt_samples_land_in_the_first_bucket_that_holds_them() {
        let mut h = RttHistogram::default();
        for us in [1, 250, 251, 2_000_000] {
            h.observe(std::time::Duration::from_micros(us));
        }
        let b: Vec<_> = h.buckets().collect();
        assert_eq!(b.len(), RTT_BUCKETS_US.len() + 1);
        assert_eq!(b[0], (Some(250), 2));
        assert_eq!(b[1], (Some(500), 1));
        assert_eq!(b.last(), Some(&(None, 1)));
        assert_eq!((h.count(), h.sum_us()), (4, 2_000_502));
    }
}
