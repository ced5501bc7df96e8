//! The tuning sweep: a grid of timing parameters, each run on the same loss-and-slow-node
//! workload with three crashes, scored by detection time, false positives and bandwidth; the
//! Pareto front is the set of settings no other setting beats on all three.

use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;

use crate::output::{legend, write};
use crate::runner::{RunOptions, run};
use crate::scenario::Scenario;

/// One grid point and its scores.
#[derive(Debug, Clone)]
pub struct Point {
    /// Probe interval, ms (the probe timeout is half of it).
    pub probe_ms: u64,
    /// Suspicion multiplier.
    pub suspicion_mult: u32,
    /// Indirect checks.
    pub indirect: usize,
    /// Gossip fan-out.
    pub gossip_nodes: usize,
    /// Gossip interval, ms.
    pub gossip_ms: u64,
    /// Median crash-to-every-node detection, s (infinite if none completed).
    pub detection_s: f64,
    /// Dead declarations about up nodes.
    pub false_positives: u64,
    /// Bytes per node per second.
    pub bytes_per_node_s: f64,
    /// On the Pareto front.
    pub pareto: bool,
}

impl Point {
    /// The columns of `tune.csv`, in the order of [`Point::values`].
    const COLUMNS: [&'static str; 10] = [
        "probe_interval_ms",
        "probe_timeout_ms",
        "suspicion_mult",
        "indirect_checks",
        "gossip_nodes",
        "gossip_interval_ms",
        "detection_p50_s",
        "false_positive_events",
        "bytes_per_node_per_s",
        "pareto",
    ];

    /// The point's row of `tune.csv`, one value per [`Point::COLUMNS`].
    fn values(&self) -> [String; 10] {
        [
            self.probe_ms.to_string(),
            (self.probe_ms / 2).to_string(),
            self.suspicion_mult.to_string(),
            self.indirect.to_string(),
            self.gossip_nodes.to_string(),
            self.gossip_ms.to_string(),
            format!("{:.3}", self.detection_s),
            self.false_positives.to_string(),
            format!("{:.1}", self.bytes_per_node_s),
            self.pareto.to_string(),
        ]
    }
}

/// The grid: `quick` keeps it to a handful of points (tests).
pub fn grid(quick: bool) -> Vec<(u64, u32, usize, usize, u64)> {
    let probes: &[u64] = if quick {
        &[500, 1000]
    } else {
        &[500, 1000, 2000]
    };
    let mults: &[u32] = if quick { &[2, 4] } else { &[2, 4, 6] };
    let indirect: &[usize] = if quick { &[3] } else { &[1, 3] };
    let gossip: &[(usize, u64)] = if quick {
        &[(3, 200)]
    } else {
        &[(2, 200), (3, 200), (4, 100)]
    };
    let mut g = Vec::new();
    for &p in probes {
        for &m in mults {
            for &k in indirect {
                for &(gn, gi) in gossip {
                    g.push((p, m, k, gn, gi));
                }
            }
        }
    }
    g
}

/// Runs the grid on `nodes` nodes with `seed`.
pub fn tune(
    nodes: usize,
    seed: u64,
    quick: bool,
    mut report: impl FnMut(&Point),
) -> Result<Vec<Point>, String> {
    let mut points = Vec::new();
    for (p, m, k, gn, gi) in grid(quick) {
        let mut s = Scenario::builtin("tune", nodes, seed).expect("built-in");
        s.timings.probe_interval_ms = Some(p);
        s.timings.probe_timeout_ms = Some(p / 2);
        s.timings.suspicion_mult = Some(m);
        s.timings.indirect_checks = Some(k);
        s.timings.gossip_nodes = Some(gn);
        s.timings.gossip_interval_ms = Some(gi);
        let r = run(&s, &RunOptions::default())?;
        let pt = Point {
            probe_ms: p,
            suspicion_mult: m,
            indirect: k,
            gossip_nodes: gn,
            gossip_ms: gi,
            detection_s: r.summary.detection_all_s.map_or(f64::INFINITY, |d| d.p50),
            false_positives: r.summary.false_positive_events,
            bytes_per_node_s: r.summary.bytes_per_node_per_s,
            pareto: false,
        };
        report(&pt);
        points.push(pt);
    }
    mark_pareto(&mut points);
    Ok(points)
}

/// Marks the points no other point dominates (no worse on all three scores, better on one).
pub fn mark_pareto(points: &mut [Point]) {
    let key = |p: &Point| [p.detection_s, p.false_positives as f64, p.bytes_per_node_s];
    for i in 0..points.len() {
        let a = key(&points[i]);
        let dominated = points.iter().any(|q| {
            let b = key(q);
            b.iter().zip(&a).all(|(x, y)| x <= y) && b.iter().zip(&a).any(|(x, y)| x < y)
        });
        points[i].pareto = !dominated;
    }
}

/// Writes `tune.csv` and `tune.svg` under `dir`.
pub fn write_tune(dir: &Path, points: &[Point]) -> Result<(), String> {
    write(&dir.join("tune.csv"), &tune_csv(points))?;
    let path = dir.join("tune.svg");
    let e = |x: &dyn std::fmt::Display| format!("cannot write {}: {x}", path.display());
    let root = SVGBackend::new(&path, (1100, 460)).into_drawing_area();
    root.fill(&WHITE).map_err(|x| e(&x))?;
    let (left, right) = root.split_horizontally(550);
    let finite: Vec<&Point> = points
        .iter()
        .filter(|p| p.detection_s.is_finite())
        .collect();
    let false_positives = Panel {
        caption: "detection vs false positives",
        y_desc: "false positives (dead declarations about up nodes)",
        y: |p| p.false_positives as f64,
    };
    let bandwidth = Panel {
        caption: "detection vs bandwidth",
        y_desc: "bytes per node per second",
        y: |p| p.bytes_per_node_s,
    };
    draw_panel(&left, &finite, &false_positives).map_err(|x| e(&x))?;
    draw_panel(&right, &finite, &bandwidth).map_err(|x| e(&x))?;
    root.present().map_err(|x| e(&x))
}

/// One row per grid point, with whether it is on the Pareto front.
fn tune_csv(points: &[Point]) -> String {
    let mut csv = Point::COLUMNS.join(",") + "\n";
    for p in points {
        csv += &(p.values().join(",") + "\n");
    }
    csv
}

/// One scatter plot of `tune.svg`: detection time against the cost `y`.
struct Panel {
    caption: &'static str,
    y_desc: &'static str,
    y: fn(&Point) -> f64,
}

/// Draws `panel` for `points` on `area`, the Pareto front labelled with its settings.
fn draw_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    points: &[&Point],
    panel: &Panel,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    let y = panel.y;
    let xmax = points.iter().map(|p| p.detection_s).fold(1.0, f64::max) * 1.1;
    let ymax = points.iter().map(|p| y(p)).fold(1.0, f64::max) * 1.1;
    let mut chart = ChartBuilder::on(area)
        .caption(panel.caption, ("sans-serif", 16))
        .margin(10)
        .x_label_area_size(36)
        .y_label_area_size(56)
        .build_cartesian_2d(0.0..xmax, 0.0..ymax)?;
    chart
        .configure_mesh()
        .x_desc("median detection by every node (s)")
        .y_desc(panel.y_desc)
        .draw()?;
    chart
        .draw_series(
            points
                .iter()
                .filter(|p| !p.pareto)
                .map(|p| Circle::new((p.detection_s, y(p)), 3, BLUE.mix(0.5).filled())),
        )?
        .label("grid point")
        .legend(|(x, y)| Circle::new((x + 8, y), 3, BLUE.filled()));
    chart
        .draw_series(points.iter().filter(|p| p.pareto).map(|p| {
            EmptyElement::at((p.detection_s, y(p)))
                + Circle::new((0, 0), 5, RED.filled())
                + Text::new(
                    format!(
                        "{}ms m{} k{} g{}",
                        p.probe_ms, p.suspicion_mult, p.indirect, p.gossip_nodes
                    ),
                    (6, -4),
                    ("sans-serif", 10),
                )
        }))?
        .label("Pareto front")
        .legend(|(x, y)| Circle::new((x + 8, y), 5, RED.filled()));
    legend(&mut chart, SeriesLabelPosition::UpperRight)
}
