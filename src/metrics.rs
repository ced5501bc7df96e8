//! Prometheus metrics of a running [`Mesh`], for the agent's `/metrics` and for applications
//! that embed a mesh and export their own registry.
//!
//! [`MeshCollector`] reads the mesh's snapshot at each scrape (it never waits on the run
//! loop), so registering it costs nothing between scrapes. Every counter of
//! [`MeshStats::counters`](crate::MeshStats::counters) becomes `swimring_<name>_total` with
//! the counter's own help text; the gauges and the histogram are listed on
//! [`MeshCollector`].
//!
//! ```
//! # async fn demo(mesh: swimring::Mesh) {
//! let mut registry = prometheus_client::registry::Registry::default();
//! swimring::metrics::register(&mut registry, &mesh);
//! let mut text = String::new();
//! prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
//! # }
//! ```

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::Registry;

use crate::proto::RttHistogram;
use crate::runtime::Mesh;
use crate::wire::State;

/// Prefix of every metric name.
const PREFIX: &str = "swimring";

/// Every state a member may be in, so each has a series even at zero.
const STATES: [State; 4] = [State::Alive, State::Suspect, State::Dead, State::Left];

/// Reads a mesh's metrics at each scrape:
///
/// - `swimring_<counter>_total`: each counter of the core and the runtime (probes, suspicions
///   raised and confirmed, deaths declared, packets and bytes in and out per channel —
///   datagrams and streams —, decrypt failures, replays dropped, …);
/// - `swimring_members{state}`: members known, by state (this node included);
/// - `swimring_health_score`: Lifeguard's local health (0 is healthy);
/// - `swimring_tasks_owned`: tasks this node owns now;
/// - `swimring_probe_rtt_seconds`: histogram of answered probes' round trips;
/// - `swimring_ring_info{checksum}` and `swimring_build_info{version}`: always 1.
#[derive(Debug)]
pub struct MeshCollector {
    mesh: Mesh,
}

impl MeshCollector {
    /// A collector of `mesh`'s metrics (it holds a clone of the handle).
    pub fn new(mesh: Mesh) -> MeshCollector {
        MeshCollector { mesh }
    }
}

/// Registers `mesh`'s metrics in `registry` (see [`MeshCollector`] for the list).
pub fn register(registry: &mut Registry, mesh: &Mesh) {
    registry.register_collector(Box::new(MeshCollector::new(mesh.clone())));
}

fn name(n: &str) -> String {
    format!("{PREFIX}_{n}")
}

fn gauge(enc: &mut DescriptorEncoder, n: &str, help: &str, v: i64) -> std::fmt::Result {
    let (g, n) = (ConstGauge::new(v), name(n));
    g.encode(enc.encode_descriptor(&n, help, None, g.metric_type())?)
}

fn info(enc: &mut DescriptorEncoder, n: &str, help: &str, label: (&str, &str)) -> std::fmt::Result {
    let (i, n) = (Info::new([label]), name(n));
    i.encode(enc.encode_descriptor(&n, help, None, i.metric_type())?)
}

fn histogram(enc: &mut DescriptorEncoder, h: &RttHistogram) -> std::fmt::Result {
    let us = 1e-6;
    let buckets: Vec<(f64, u64)> = h
        .buckets()
        .map(|(bound, n)| (bound.map_or(f64::INFINITY, |b| b as f64 * us), n))
        .collect();
    let (n, help) = (
        name("probe_rtt_seconds"),
        "Round-trip times of answered probes.",
    );
    let mut m = enc.encode_descriptor(&n, help, None, MetricType::Histogram)?;
    m.encode_histogram::<NoLabelSet>(h.sum_us() as f64 * us, h.count(), &buckets, None)
}

fn to_i64(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

impl Collector for MeshCollector {
    fn encode(&self, mut enc: DescriptorEncoder) -> std::fmt::Result {
        let stats = self.mesh.stats();
        for c in stats.counters() {
            let (counter, n) = (ConstCounter::new(c.value), name(c.name));
            let m = enc.encode_descriptor(&n, c.help, None, counter.metric_type())?;
            counter.encode(m)?;
        }
        let members = self.mesh.members();
        let (n, help) = (
            name("members"),
            "Members known, by state (this node included).",
        );
        let mut m = enc.encode_descriptor(&n, help, None, MetricType::Gauge)?;
        for state in STATES {
            let n = members.iter().filter(|x| x.state == state).count();
            ConstGauge::new(to_i64(n)).encode(m.encode_family(&[("state", state.as_str())])?)?;
        }
        let health = "Lifeguard local health score (0 is healthy).";
        gauge(
            &mut enc,
            "health_score",
            health,
            stats.protocol.health_score.into(),
        )?;
        let owned = to_i64(self.mesh.owned_tasks().len());
        gauge(&mut enc, "tasks_owned", "Tasks this node owns now.", owned)?;
        histogram(&mut enc, &stats.protocol.probe_rtt)?;
        let sum = format!("{:016x}", self.mesh.ring_checksum());
        let ring = "Checksum of the ring tasks are placed on: equal on nodes that agree.";
        info(&mut enc, "ring", ring, ("checksum", &sum))?;
        let build = "This build of swimring.";
        info(
            &mut enc,
            "build",
            build,
            ("version", env!("CARGO_PKG_VERSION")),
        )
    }
}
