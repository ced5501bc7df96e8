//! Output files: `summary.json`, CSV series, SVG plots.

use std::fmt::Write as _;
use std::path::Path;

use plotters::coord::Shift;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;

use crate::handoff::HandoffSummary;
use crate::metrics::Spread;
use crate::summary::{RunResult, Summary};

fn io(path: &Path, e: impl std::fmt::Display) -> String {
    format!("cannot write {}: {e}", path.display())
}

/// Writes a file, creating its directory.
pub fn write(path: &Path, text: &str) -> Result<(), String> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
    }
    std::fs::write(path, text).map_err(|e| io(path, e))
}

/// Writes every output of one run under `dir`; `plots` draws the SVGs too.
pub fn write_run(dir: &Path, r: &RunResult, plots: bool) -> Result<(), String> {
    let json = serde_json::to_string_pretty(&r.summary).map_err(|e| e.to_string())?;
    write(&dir.join("summary.json"), &(json + "\n"))?;
    let mut csv = String::from(
        "t_s,live,running,agreeing,agree_fraction,ring_agree,suspect_views,false_positive_events,packets,bytes\n",
    );
    for s in &r.samples {
        let _ = writeln!(
            csv,
            "{:.3},{},{},{},{:.6},{},{},{},{},{}",
            s.t_s,
            s.live,
            s.running,
            s.agreeing,
            s.agree_fraction,
            u8::from(s.ring_agree),
            s.suspect_views,
            s.false_positive_events,
            s.packets,
            s.bytes
        );
    }
    write(&dir.join("timeseries.csv"), &csv)?;
    let mut det = String::from("kind,seconds\n");
    for (kind, v) in [("first", &r.detections.0), ("all", &r.detections.1)] {
        for x in v {
            let _ = writeln!(det, "{kind},{x:.6}");
        }
    }
    write(&dir.join("detections.csv"), &det)?;
    if plots {
        convergence_svg(&dir.join("convergence.svg"), r)?;
        detection_cdf_svg(&dir.join("detection_cdf.svg"), r)?;
    }
    Ok(())
}

/// The detection line of the text summary: crash → first dead declaration and → the last
/// live observer's (p50/p99/max over the crashes), the dead declarations (how many on crash
/// evidence: the core's `deaths_on_evidence`) and the false positives.
pub fn detection_line(s: &Summary) -> String {
    let spread = |s: &Option<Spread>| match s {
        Some(s) => format!("p50 {:.3} s, p99 {:.3} s, max {:.3} s", s.p50, s.p99, s.max),
        None => "none".into(),
    };
    let crashes = match s.failures {
        0 => "0 crashed".to_string(),
        n => format!(
            "{n} crashed, {} not declared dead by all; first {}; all {}",
            s.failures_not_fully_detected,
            spread(&s.detection_first_s),
            spread(&s.detection_all_s)
        ),
    };
    format!(
        "detection: {crashes}; {} dead declarations ({} on evidence), {} false positives",
        s.dead_events,
        s.totals.get("deaths_on_evidence"),
        s.false_positives
    )
}

/// Task mode's line of the text summary: handoffs, overlap and gap (p50/p99/max), claims
/// that were for a moment below an earlier holder, and tasks a fencing store refuses the
/// owner of at the end.
pub fn handoff_line(h: &HandoffSummary) -> String {
    let spread = |s: &Option<Spread>| match s {
        Some(s) => format!(
            "{} (p50 {:.3} s, p99 {:.3} s, max {:.3} s)",
            s.count, s.p50, s.p99, s.max
        ),
        None => "none".into(),
    };
    let from = h
        .measured_from_s
        .map_or("never settled".into(), |t| format!("from {t:.1} s"));
    format!(
        "tasks: {} keys, {} handoffs {from}; overlaps {}; gaps {}; {} open at end; low claims {} ({} before settling); {} fenced out at the end",
        h.tasks,
        h.handoffs,
        spread(&h.overlap_s),
        spread(&h.gap_s),
        h.open_at_end,
        h.low_claims,
        h.low_claims_before_settled,
        h.fenced_out_at_end
    )
}

/// The fraction of running nodes that agree with the truth, against virtual time, with the
/// scenario's actions marked.
pub fn convergence_svg(path: &Path, r: &RunResult) -> Result<(), String> {
    let e = |x: &dyn std::fmt::Display| io(path, x);
    let root = SVGBackend::new(path, (900, 420)).into_drawing_area();
    root.fill(&WHITE).map_err(|x| e(&x))?;
    let end = r.summary.sim_seconds.max(1e-3);
    let title = format!(
        "{}: {} nodes, seed {} — fraction of running nodes agreeing",
        r.summary.scenario, r.summary.nodes, r.summary.seed
    );
    let mut chart = fraction_chart(
        &root,
        &title,
        end,
        ("virtual time (s)", "agreeing / running"),
    )
    .map_err(|x| e(&x))?;
    for (t, label) in &r.marks {
        chart
            .draw_series(LineSeries::new(
                vec![(*t, 0.0), (*t, 1.02)],
                RGBColor(200, 120, 0).stroke_width(1),
            ))
            .map_err(|x| e(&x))?;
        chart
            .draw_series(std::iter::once(Text::new(
                label.clone(),
                (*t, 0.08),
                ("sans-serif", 12).into_font().color(&RGBColor(160, 90, 0)),
            )))
            .map_err(|x| e(&x))?;
    }
    chart
        .draw_series(LineSeries::new(
            r.samples.iter().map(|s| (s.t_s, s.agree_fraction)),
            BLUE.stroke_width(2),
        ))
        .map_err(|x| e(&x))?
        .label("agreeing fraction")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], BLUE));
    if let Some(t) = r.summary.converged_at_s {
        chart
            .draw_series(std::iter::once(Circle::new((t, 1.0), 5, RED.filled())))
            .map_err(|x| e(&x))?
            .label(format!("converged at {t:.1} s"))
            .legend(|(x, y)| Circle::new((x + 8, y), 4, RED.filled()));
    }
    legend(&mut chart, SeriesLabelPosition::LowerRight).map_err(|x| e(&x))?;
    root.present().map_err(|x| e(&x))
}

/// The chart a plot in this module draws on: `title` above, x from 0 to `xmax`, y a
/// fraction from 0 to 1 (with a little headroom), and the two axes' descriptions.
fn fraction_chart<'a, DB: DrawingBackend>(
    root: &'a DrawingArea<DB, Shift>,
    title: &str,
    xmax: f64,
    (x_desc, y_desc): (&str, &str),
) -> Result<Chart<'a, DB>, DrawingAreaErrorKind<DB::ErrorType>> {
    let mut chart = ChartBuilder::on(root)
        .caption(title, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(48)
        .build_cartesian_2d(0.0..xmax, 0.0..1.02)?;
    chart
        .configure_mesh()
        .x_desc(x_desc)
        .y_desc(y_desc)
        .draw()?;
    Ok(chart)
}

/// A chart with linear f64 axes, as every plot of the simulator has.
pub(crate) type Chart<'a, DB> = ChartContext<'a, DB, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// The series labels in a box at `position`, the same style on every plot.
pub(crate) fn legend<'a, DB: DrawingBackend + 'a>(
    chart: &mut Chart<'a, DB>,
    position: SeriesLabelPosition,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    chart
        .configure_series_labels()
        .position(position)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
}

/// The empirical CDF of `v` as a step line.
fn cdf(v: &[f64]) -> Vec<(f64, f64)> {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let n = s.len() as f64;
    let mut out = Vec::with_capacity(2 * s.len() + 1);
    let mut prev = 0.0;
    for (i, x) in s.iter().enumerate() {
        out.push((*x, prev));
        prev = (i + 1) as f64 / n;
        out.push((*x, prev));
    }
    out
}

/// Empirical CDFs of crash-to-first and crash-to-all detection latency.
pub fn detection_cdf_svg(path: &Path, r: &RunResult) -> Result<(), String> {
    let e = |x: &dyn std::fmt::Display| io(path, x);
    let root = SVGBackend::new(path, (720, 420)).into_drawing_area();
    root.fill(&WHITE).map_err(|x| e(&x))?;
    let (first, all) = &r.detections;
    let xmax = first.iter().chain(all).copied().fold(1.0_f64, f64::max) * 1.05;
    let title = format!(
        "{}: detection latency CDF ({} crashes)",
        r.summary.scenario, r.summary.failures
    );
    let axes = ("seconds after the crash", "fraction of crashes");
    let mut chart = fraction_chart(&root, &title, xmax, axes).map_err(|x| e(&x))?;
    for (v, color, label) in [
        (first, BLUE, "first node declares dead"),
        (all, RED, "every live node declares dead"),
    ] {
        if v.is_empty() {
            continue;
        }
        chart
            .draw_series(LineSeries::new(cdf(v), color.stroke_width(2)))
            .map_err(|x| e(&x))?
            .label(label)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], color));
    }
    if first.is_empty() && all.is_empty() {
        chart
            .draw_series(std::iter::once(Text::new(
                "no crash was detected in this run",
                (xmax * 0.1, 0.5),
                ("sans-serif", 16),
            )))
            .map_err(|x| e(&x))?;
    } else {
        legend(&mut chart, SeriesLabelPosition::LowerRight).map_err(|x| e(&x))?;
    }
    root.present().map_err(|x| e(&x))
}
