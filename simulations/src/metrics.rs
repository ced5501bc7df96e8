//! What the simulator measures, maintained incrementally from the events the nodes report.
//!
//! Checking "every live node agrees" naively is O(n²) per check. Instead each observer keeps a
//! compact *digest* of its view — how many members it holds as live (alive or suspect) and an order-independent
//! hash (a wrapping sum of mixed `(slot, run)` pairs) of them — updated in O(1) per event, and
//! the ground truth keeps the same digest of the nodes that really are up. Agreement is then a
//! comparison of two integers per observer, done on a fixed virtual-time grid.

use std::collections::{BTreeMap, HashMap, HashSet};

use swimring::proto::Event;
use xxhash_rust::xxh3::Xxh3;

/// State of one member in one observer's view, one byte each.
const UNKNOWN: u8 = 0;
const ALIVE: u8 = 1;
const SUSPECT: u8 = 2;
const DEAD: u8 = 3;
const LEFT: u8 = 4;

/// splitmix64's finaliser: a fixed, well-mixed hash of a (slot, run) pair.
fn mix(slot: u32, run: u64) -> u64 {
    let mut z = (u64::from(slot) << 32 ^ run).wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Digest {
    count: u32,
    sum: u64,
}

impl Digest {
    fn add(&mut self, slot: u32, run: u64) {
        self.count += 1;
        self.sum = self.sum.wrapping_add(mix(slot, run));
    }
    fn remove(&mut self, slot: u32, run: u64) {
        self.count -= 1;
        self.sum = self.sum.wrapping_sub(mix(slot, run));
    }
}

struct View {
    digest: Digest,
    /// The same over slots alone: the set of names, which is all a ring (and so its checksum)
    /// depends on in the simulator (no tags, equal weights).
    ring: Digest,
    /// State of each slot in this view (dense: one byte per slot).
    state: Vec<u8>,
    /// Runs other than 1 this observer holds (restarts are rare, so this stays small).
    runs: HashMap<u32, u64>,
}

impl View {
    fn new(slot: u32, run: u64) -> View {
        let mut v = View {
            digest: Digest::default(),
            ring: Digest::default(),
            state: Vec::new(),
            runs: HashMap::new(),
        };
        v.digest.add(slot, run);
        v.ring.add(slot, 0);
        v
    }
    fn run_of(&self, slot: u32) -> u64 {
        self.runs.get(&slot).copied().unwrap_or(1)
    }
    fn set(&mut self, slot: u32, state: u8, run: u64) {
        let i = slot as usize;
        if self.state.len() <= i {
            self.state.resize(i + 1, UNKNOWN);
        }
        self.state[i] = state;
        if run == 1 {
            self.runs.remove(&slot);
        } else {
            self.runs.insert(slot, run);
        }
    }
    fn get(&self, slot: u32) -> u8 {
        self.state.get(slot as usize).copied().unwrap_or(UNKNOWN)
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Life {
    Running,
    Paused,
    Crashed,
    Left,
}

struct Truth {
    life: Life,
    run: u64,
}

/// One crash being detected.
struct Failure {
    slot: u32,
    run: u64,
    at: u64,
    first: Option<u64>,
    all: Option<u64>,
    /// Observers that have yet to declare it dead (a bitset over slots).
    pending: Vec<u64>,
    remaining: usize,
    open: bool,
}

/// A summary statistic over failures, in seconds.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Spread {
    /// Median.
    pub p50: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Largest.
    pub max: f64,
    /// How many values.
    pub count: usize,
}

impl Spread {
    /// Nearest-rank percentiles of `v` (None when empty).
    pub fn of(v: &[f64]) -> Option<Spread> {
        if v.is_empty() {
            return None;
        }
        let mut s = v.to_vec();
        s.sort_by(f64::total_cmp);
        let rank = |p: f64| s[(((p * s.len() as f64).ceil() as usize).max(1) - 1).min(s.len() - 1)];
        Some(Spread {
            p50: rank(0.50),
            p99: rank(0.99),
            max: s[s.len() - 1],
            count: s.len(),
        })
    }
}

/// One row of the time series.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct Sample {
    /// Virtual time, seconds.
    pub t_s: f64,
    /// Nodes up (running or paused).
    pub live: u32,
    /// Running nodes whose view matches the truth.
    pub agreeing: u32,
    /// Running nodes (those that can agree).
    pub running: u32,
    /// `agreeing / running`.
    pub agree_fraction: f64,
    /// Whether every running node would build the ring of the nodes really up (same live
    /// names), and so the same ring checksum.
    pub ring_agree: bool,
    /// (observer, member) pairs in state suspect, over all views.
    pub suspect_views: u64,
    /// Dead declarations about nodes that were up, so far.
    pub false_positive_events: u64,
    /// Datagrams sent so far.
    pub packets: u64,
    /// Datagram bytes sent so far.
    pub bytes: u64,
}

/// Everything measured during one run.
pub struct Metrics {
    sample_every: u64,
    next_sample: u64,
    truth: Vec<Truth>,
    truth_digest: Digest,
    /// The names of the nodes really up: the ring every view should arrive at.
    truth_ring: Digest,
    live_n: usize,
    views: Vec<View>,
    suspect_views: u64,
    failures: Vec<Failure>,
    open_failure: HashMap<u32, usize>,
    false_positives: HashSet<(u32, u64)>,
    false_positive_events: u64,
    dead_events: u64,
    /// Time series on the sample grid.
    pub samples: Vec<Sample>,
    /// Integral of live nodes over time, in node-nanoseconds (for per-node rates).
    pub node_nanos: u128,
    last_integral: u64,
    /// Datagrams sent.
    pub packets: u64,
    /// Datagram bytes sent.
    pub bytes: u64,
    /// Stream payloads sent.
    pub streams: u64,
    /// Stream bytes sent.
    pub stream_bytes: u64,
    trace: Xxh3,
    /// Events hashed into the trace.
    pub trace_events: u64,
    /// Map from member name to slot.
    pub slot_of: HashMap<String, u32>,
}

fn bit_set(v: &mut [u64], i: usize) -> bool {
    let (w, b) = (i / 64, 1u64 << (i % 64));
    let was = v[w] & b != 0;
    v[w] &= !b;
    was
}

impl Metrics {
    /// Sampling every `sample_every_ns` of virtual time.
    pub fn new(sample_every_ns: u64) -> Metrics {
        Metrics {
            sample_every: sample_every_ns.max(1),
            next_sample: 0,
            truth: Vec::new(),
            truth_digest: Digest::default(),
            truth_ring: Digest::default(),
            live_n: 0,
            views: Vec::new(),
            suspect_views: 0,
            failures: Vec::new(),
            open_failure: HashMap::new(),
            false_positives: HashSet::new(),
            false_positive_events: 0,
            dead_events: 0,
            samples: Vec::new(),
            node_nanos: 0,
            last_integral: 0,
            packets: 0,
            bytes: 0,
            streams: 0,
            stream_bytes: 0,
            trace: Xxh3::new(),
            trace_events: 0,
            slot_of: HashMap::new(),
        }
    }

    fn hash(&mut self, now: u64, a: u64, b: u64, c: u64) {
        self.trace_events += 1;
        self.trace.update(&now.to_le_bytes());
        self.trace.update(&a.to_le_bytes());
        self.trace.update(&b.to_le_bytes());
        self.trace.update(&c.to_le_bytes());
    }

    /// Records a driver action (crash, pause, …) in the trace.
    pub fn action(&mut self, now: u64, code: u64, slot: u32) {
        self.hash(now, 1 << 40 | code, u64::from(slot), 0);
    }

    /// The stable hash of everything traced so far.
    pub fn trace_hash(&self) -> u64 {
        self.trace.digest()
    }

    fn integrate(&mut self, now: u64) {
        self.node_nanos += u128::from(now - self.last_integral) * self.live_n as u128;
        self.last_integral = now;
    }

    /// The next grid instant at which [`Metrics::sample`] wants to run.
    pub fn next_sample(&self) -> u64 {
        self.next_sample
    }

    /// Takes the sample due at the grid instant.
    pub fn sample(&mut self) {
        let now = self.next_sample;
        self.integrate(now);
        let mut s = Sample {
            t_s: now as f64 / 1e9,
            suspect_views: self.suspect_views,
            false_positive_events: self.false_positive_events,
            packets: self.packets,
            bytes: self.bytes,
            ..Sample::default()
        };
        for (t, v) in self.truth.iter().zip(&self.views) {
            match t.life {
                Life::Running => {
                    s.live += 1;
                    s.running += 1;
                    if v.digest == self.truth_digest {
                        s.agreeing += 1;
                    }
                }
                Life::Paused => s.live += 1,
                _ => {}
            }
        }
        s.ring_agree = self
            .truth
            .iter()
            .zip(&self.views)
            .all(|(t, v)| t.life != Life::Running || v.ring == self.truth_ring);
        s.agree_fraction = if s.running == 0 {
            1.0
        } else {
            f64::from(s.agreeing) / f64::from(s.running)
        };
        self.samples.push(s);
        self.next_sample += self.sample_every;
    }

    /// Closes the books at `now` (for the node-time integral).
    pub fn finish(&mut self, now: u64) {
        self.integrate(now);
    }

    // ----- the ground truth ------------------------------------------------------------------

    /// A new node slot came up as run `run`.
    pub fn node_added(&mut self, now: u64, slot: u32, name: &str, run: u64) {
        self.integrate(now);
        self.slot_of.insert(name.to_owned(), slot);
        self.truth.push(Truth {
            life: Life::Running,
            run,
        });
        self.truth_digest.add(slot, run);
        self.truth_ring.add(slot, 0);
        self.live_n += 1;
        self.views.push(View::new(slot, run));
        self.action(now, 1, slot);
    }

    fn down(&mut self, now: u64, slot: u32, life: Life) {
        self.integrate(now);
        let t = &mut self.truth[slot as usize];
        if !matches!(t.life, Life::Running | Life::Paused) {
            return;
        }
        t.life = life;
        self.live_n -= 1;
        let run = t.run;
        self.truth_digest.remove(slot, run);
        self.truth_ring.remove(slot, 0);
        // It no longer observes: it drops out of every open detection.
        for f in self
            .failures
            .iter_mut()
            .filter(|f| f.open && f.all.is_none())
        {
            if bit_set(&mut f.pending, slot as usize) {
                f.remaining -= 1;
                if f.remaining == 0 {
                    f.all = Some(now - f.at);
                }
            }
        }
    }

    /// The node crashed: a failure to detect starts now.
    pub fn crashed(&mut self, now: u64, slot: u32) {
        self.down(now, slot, Life::Crashed);
        self.action(now, 2, slot);
        let run = self.truth[slot as usize].run;
        let mut pending = vec![0u64; self.truth.len().div_ceil(64)];
        let mut remaining = 0;
        for (i, t) in self.truth.iter().enumerate() {
            if matches!(t.life, Life::Running | Life::Paused) {
                pending[i / 64] |= 1 << (i % 64);
                remaining += 1;
            }
        }
        if let Some(&old) = self.open_failure.get(&slot) {
            self.failures[old].open = false;
        }
        self.open_failure.insert(slot, self.failures.len());
        self.failures.push(Failure {
            slot,
            run,
            at: now,
            first: None,
            all: (remaining == 0).then_some(0),
            pending,
            remaining,
            open: true,
        });
    }

    /// The node left gracefully (it is no longer expected in anyone's view).
    pub fn left(&mut self, now: u64, slot: u32) {
        self.down(now, slot, Life::Left);
        self.action(now, 3, slot);
    }

    /// The node stalled.
    pub fn paused(&mut self, now: u64, slot: u32) {
        if self.truth[slot as usize].life == Life::Running {
            self.truth[slot as usize].life = Life::Paused;
        }
        self.action(now, 4, slot);
    }

    /// The node carries on.
    pub fn resumed(&mut self, now: u64, slot: u32) {
        if self.truth[slot as usize].life == Life::Paused {
            self.truth[slot as usize].life = Life::Running;
        }
        self.action(now, 5, slot);
    }

    /// The slot came back as run `run`, knowing only itself.
    pub fn restarted(&mut self, now: u64, slot: u32, run: u64) {
        self.integrate(now);
        if let Some(i) = self.open_failure.remove(&slot) {
            self.failures[i].open = false;
        }
        let t = &mut self.truth[slot as usize];
        if matches!(t.life, Life::Running | Life::Paused) {
            self.truth_digest.remove(slot, t.run);
            self.truth_ring.remove(slot, 0);
        } else {
            self.live_n += 1;
        }
        t.life = Life::Running;
        t.run = run;
        self.truth_digest.add(slot, run);
        self.truth_ring.add(slot, 0);
        let old = std::mem::replace(&mut self.views[slot as usize], View::new(slot, run));
        let suspects = old.state.iter().filter(|&&s| s == SUSPECT).count() as u64;
        self.suspect_views -= suspects;
        self.action(now, 6, slot);
    }

    // ----- what nodes report -----------------------------------------------------------------

    /// Observer `obs` reported `event` at `now`.
    pub fn event(&mut self, now: u64, obs: u32, event: &Event) {
        let Some(m) = event.member() else {
            self.hash(now, u64::from(obs), 99, 0);
            return;
        };
        let Some(&slot) = self.slot_of.get(&m.name) else {
            return;
        };
        let kind = match event {
            Event::Joined(_) => 1,
            Event::Suspect(_) => 2,
            Event::Recovered(_) => 3,
            Event::Dead(_) => 4,
            Event::Left(_) => 5,
            Event::Updated(_) => 6,
            Event::Restarted(_) => 7,
            _ => 8,
        };
        self.hash(
            now,
            u64::from(obs) << 8 | kind,
            u64::from(slot) << 32 | u64::from(m.incarnation),
            m.run,
        );
        let v = &mut self.views[obs as usize];
        let before = v.get(slot);
        let old_run = v.run_of(slot);
        // Membership is the set of live members (alive or suspect): a suspect is still a
        // member (and still owns work) until declared dead.
        let was_counted = before == ALIVE || before == SUSPECT;
        if before == SUSPECT {
            self.suspect_views -= 1;
        }
        let after = match event {
            Event::Joined(_) | Event::Recovered(_) | Event::Restarted(_) | Event::Updated(_) => {
                ALIVE
            }
            Event::Suspect(_) => SUSPECT,
            Event::Dead(_) => DEAD,
            Event::Left(_) => LEFT,
            _ => before,
        };
        if was_counted {
            v.digest.remove(slot, old_run);
            v.ring.remove(slot, 0);
        }
        if after == ALIVE || after == SUSPECT {
            v.digest.add(slot, m.run);
            v.ring.add(slot, 0);
        }
        if after == SUSPECT {
            self.suspect_views += 1;
        }
        v.set(slot, after, m.run);

        if matches!(event, Event::Dead(_) | Event::Left(_)) {
            if matches!(event, Event::Dead(_)) {
                self.dead_events += 1;
                let t = &self.truth[slot as usize];
                if t.run == m.run && matches!(t.life, Life::Running | Life::Paused) {
                    self.false_positive_events += 1;
                    self.false_positives.insert((slot, m.run));
                }
            }
            if let Some(&i) = self.open_failure.get(&slot) {
                let f = &mut self.failures[i];
                if f.run == m.run {
                    f.first.get_or_insert(now - f.at);
                    if f.all.is_none() && bit_set(&mut f.pending, obs as usize) {
                        f.remaining -= 1;
                        if f.remaining == 0 {
                            f.all = Some(now - f.at);
                        }
                    }
                }
            }
        }
    }

    // ----- results ---------------------------------------------------------------------------

    /// Seconds from each crash to its first dead declaration, and to the last live observer's.
    pub fn detections(&self) -> (Vec<f64>, Vec<f64>) {
        let first = self
            .failures
            .iter()
            .filter_map(|f| f.first)
            .map(|d| d as f64 / 1e9)
            .collect();
        let all = self
            .failures
            .iter()
            .filter_map(|f| f.all)
            .map(|d| d as f64 / 1e9)
            .collect();
        (first, all)
    }

    /// Crashes observed, and how many were never detected by every live observer.
    pub fn failure_counts(&self) -> (usize, usize) {
        let undetected = self.failures.iter().filter(|f| f.all.is_none()).count();
        (self.failures.len(), undetected)
    }

    /// Distinct (node, run) pairs declared dead while up, and all such declarations.
    pub fn false_positives(&self) -> (usize, u64) {
        (self.false_positives.len(), self.false_positive_events)
    }

    /// Every dead declaration.
    pub fn dead_events(&self) -> u64 {
        self.dead_events
    }

    /// Whether running observer `obs` holds exactly the truth now.
    pub fn agrees(&self, obs: u32) -> bool {
        self.views[obs as usize].digest == self.truth_digest
    }

    /// Whether every running node holds exactly the truth now.
    pub fn all_agree(&self) -> bool {
        self.truth
            .iter()
            .zip(&self.views)
            .all(|(t, v)| t.life != Life::Running || v.digest == self.truth_digest)
    }

    /// Nodes currently up (running or paused).
    pub fn live(&self) -> usize {
        self.live_n
    }

    /// The slots of failures still waiting for every observer, with their crash times (for
    /// diagnostics).
    pub fn open_failures(&self) -> BTreeMap<u32, f64> {
        self.failures
            .iter()
            .filter(|f| f.open && f.all.is_none())
            .map(|f| (f.slot, f.at as f64 / 1e9))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spread_uses_nearest_rank() {
        let s = Spread::of(&[3.0, 1.0, 2.0, 4.0]).unwrap();
        assert_eq!((s.p50, s.p99, s.max, s.count), (2.0, 4.0, 4.0, 4));
        assert!(Spread::of(&[]).is_none());
    }

    #[test]
    fn digest_is_order_independent() {
        let mut a = Digest::default();
        let mut b = Digest::default();
        a.add(1, 1);
        a.add(2, 3);
        b.add(2, 3);
        b.add(1, 1);
        assert_eq!(a, b);
        b.remove(2, 3);
        b.add(2, 4);
        assert_ne!(a, b);
    }
}
