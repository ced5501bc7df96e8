//! `swimring-sim`: run a scenario, a determinism check, a bug-hunting sweep or a tuning grid.
//! Every flag is documented in docs/SIMULATOR.md.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, ValueEnum};
use swimring_sim::{
    Action, BUILTINS, Bug, Latency, RunOptions, Scenario, Start, output, run, sweep, tune,
};

#[derive(Debug, Clone, Copy, ValueEnum)]
enum BugArg {
    None,
    DropOwnRefutation,
}

/// Deterministic simulator of swimring meshes on virtual time.
#[derive(Debug, Parser)]
#[command(name = "swimring-sim", version)]
struct Cli {
    /// Built-in scenario name (see --list) or path to a TOML scenario file.
    #[arg(long, default_value = "cold-start")]
    scenario: String,
    /// Nodes at the start (overrides the scenario).
    #[arg(long)]
    nodes: Option<usize>,
    /// Seed of every random choice (overrides the scenario).
    #[arg(long)]
    seed: Option<u64>,
    /// Output directory.
    #[arg(long, default_value = "sim-out")]
    out: PathBuf,
    /// Virtual seconds to simulate (overrides the scenario).
    #[arg(long)]
    duration_s: Option<f64>,
    /// Timing preset: lan, wan or local.
    #[arg(long)]
    preset: Option<String>,
    /// Probe interval, ms.
    #[arg(long)]
    probe_interval_ms: Option<u64>,
    /// Probe timeout, ms.
    #[arg(long)]
    probe_timeout_ms: Option<u64>,
    /// Suspicion multiplier.
    #[arg(long)]
    suspicion_mult: Option<u32>,
    /// Indirect checks per failed probe.
    #[arg(long)]
    indirect_checks: Option<usize>,
    /// Gossip fan-out.
    #[arg(long)]
    gossip_nodes: Option<usize>,
    /// Gossip interval, ms.
    #[arg(long)]
    gossip_interval_ms: Option<u64>,
    /// Use crash evidence (hosts refusing a crashed process's port): true or false.
    #[arg(long, value_name = "BOOL")]
    crash_evidence: Option<bool>,
    /// Stall patience once a silent member's host is known up, ms.
    #[arg(long)]
    stall_timeout_ms: Option<u64>,
    /// Length of every pause in the scenario, seconds: each resumes this long after it
    /// began (e.g. `pause-one`'s stall). An error if the scenario has no pause.
    #[arg(long)]
    pause_s: Option<f64>,
    /// Uniform datagram loss at the start, 0..=1.
    #[arg(long)]
    loss: Option<f64>,
    /// Latency: fixed:MS | uniform:MIN:MAX | pareto:SCALE:SHAPE:CAP | lognormal:MEDIAN:SIGMA:CAP.
    #[arg(long)]
    latency: Option<String>,
    /// Duplication probability at the start.
    #[arg(long)]
    duplicate: Option<f64>,
    /// Reordering probability at the start.
    #[arg(long)]
    reorder: Option<f64>,
    /// How the mesh starts: cold (every node joins one seed) or converged (every node
    /// starts knowing all the others).
    #[arg(long, value_enum)]
    start: Option<Start>,
    /// Join window, seconds: nodes join the seed at random times in it.
    #[arg(long)]
    join_window_s: Option<f64>,
    /// Metrics sampling grid, ms.
    #[arg(long)]
    sample_ms: Option<f64>,
    /// Task mode: every node places N task keys; the summary reports handoff overlap and gap.
    #[arg(long, value_name = "N")]
    tasks: Option<usize>,
    /// Check protocol invariants after every event.
    #[arg(long)]
    check_invariants: bool,
    /// Run twice and fail if the trace hashes differ.
    #[arg(long)]
    check_determinism: bool,
    /// Sweep mode: this many seeds from --seed (default 1), randomized faults and invariants.
    #[arg(long, value_name = "N")]
    sweep: Option<u64>,
    /// Tuning sweep over a grid of timing parameters (on the `tune` workload).
    #[arg(long)]
    tune: bool,
    /// With --tune: a small grid.
    #[arg(long)]
    quick: bool,
    /// Inject a deliberate bug (for proving the sweep finds bugs).
    #[arg(long, value_enum, default_value = "none")]
    bug: BugArg,
    /// Skip the SVG plots.
    #[arg(long)]
    no_plots: bool,
    /// No progress lines on stderr.
    #[arg(long)]
    quiet: bool,
    /// List the built-in scenarios and exit.
    #[arg(long)]
    list: bool,
    /// Print the resolved scenario as TOML and exit (a starting point for a new file).
    #[arg(long)]
    print_scenario: bool,
}

fn parse_latency(s: &str) -> Result<Latency, String> {
    let parts: Vec<&str> = s.split(':').collect();
    let nums: Result<Vec<f64>, _> = parts[1..].iter().map(|p| p.parse::<f64>()).collect();
    let nums = nums.map_err(|_| format!("--latency {s:?}: parameters must be numbers"))?;
    let l = match (parts[0], nums.as_slice()) {
        ("fixed", &[ms]) => Latency::Fixed { ms },
        ("uniform", &[min_ms, max_ms]) => Latency::Uniform { min_ms, max_ms },
        ("pareto", &[scale_ms, shape, cap_ms]) => Latency::Pareto {
            scale_ms,
            shape,
            cap_ms,
        },
        ("lognormal", &[median_ms, sigma, cap_ms]) => Latency::LogNormal {
            median_ms,
            sigma,
            cap_ms,
        },
        _ => {
            return Err(format!(
                "--latency {s:?}: expected fixed:MS, uniform:MIN:MAX, pareto:SCALE:SHAPE:CAP or lognormal:MEDIAN:SIGMA:CAP"
            ));
        }
    };
    l.validate().map_err(|e| format!("--latency: {e}"))?;
    Ok(l)
}

fn bug(cli: &Cli) -> Bug {
    match cli.bug {
        BugArg::None => Bug::None,
        BugArg::DropOwnRefutation => Bug::DropOwnRefutation,
    }
}

fn scenario(cli: &Cli) -> Result<Scenario, String> {
    let default_nodes = if cli.scenario == "sweep" { 0 } else { 100 };
    let mut s = Scenario::load(
        &cli.scenario,
        cli.nodes.unwrap_or(default_nodes),
        cli.seed.unwrap_or(1),
    )?;
    if let Some(n) = cli.nodes {
        s.nodes = n;
    }
    if let Some(v) = cli.seed {
        s.seed = v;
    }
    if let Some(v) = cli.duration_s {
        s.duration_s = v;
    }
    if let Some(v) = &cli.preset {
        s.preset = v.clone();
    }
    let t = &mut s.timings;
    t.probe_interval_ms = cli.probe_interval_ms.or(t.probe_interval_ms);
    t.probe_timeout_ms = cli.probe_timeout_ms.or(t.probe_timeout_ms);
    t.suspicion_mult = cli.suspicion_mult.or(t.suspicion_mult);
    t.indirect_checks = cli.indirect_checks.or(t.indirect_checks);
    t.gossip_nodes = cli.gossip_nodes.or(t.gossip_nodes);
    t.gossip_interval_ms = cli.gossip_interval_ms.or(t.gossip_interval_ms);
    t.crash_evidence = cli.crash_evidence.or(t.crash_evidence);
    t.stall_timeout_ms = cli.stall_timeout_ms.or(t.stall_timeout_ms);
    if let Some(v) = cli.pause_s {
        let mut pauses = 0;
        for a in &mut s.actions {
            if let Action::Pause { for_s, .. } = a {
                *for_s = Some(v);
                pauses += 1;
            }
        }
        if pauses == 0 {
            return Err(format!("--pause-s: scenario {} has no pause", s.name));
        }
    }
    if let Some(v) = cli.loss {
        s.network.loss = v;
    }
    if let Some(v) = &cli.latency {
        s.network.latency = parse_latency(v)?;
    }
    if let Some(v) = cli.duplicate {
        s.network.duplicate = v;
    }
    if let Some(v) = cli.reorder {
        s.network.reorder = v;
    }
    if let Some(v) = cli.start {
        s.start = v;
    }
    if let Some(v) = cli.join_window_s {
        s.join_window_s = v;
    }
    if let Some(v) = cli.sample_ms {
        s.sample_ms = v;
    }
    if let Some(v) = cli.tasks {
        s.tasks = v;
    }
    s.check_invariants |= cli.check_invariants;
    s.validate()?;
    Ok(s)
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            use clap::error::ErrorKind;
            if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
                let _ = e.print();
                return ExitCode::SUCCESS;
            }
            let text = e.to_string();
            let line = text.lines().next().unwrap_or("bad arguments");
            eprintln!("{line} (see --help)");
            return ExitCode::from(2);
        }
    };
    match real_main(&cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", e.replace('\n', " "));
            ExitCode::from(2)
        }
    }
}

fn real_main(cli: &Cli) -> Result<ExitCode, String> {
    if cli.list {
        for (name, what) in BUILTINS {
            println!("{name:16} {what}");
        }
        return Ok(ExitCode::SUCCESS);
    }
    if let Some(n) = cli.sweep {
        return sweep_seeds(cli, n);
    }
    if cli.tune {
        return tune_grid(cli);
    }
    let s = scenario(cli)?;
    if cli.print_scenario {
        print!("{}", toml::to_string(&s).map_err(|e| e.to_string())?);
        return Ok(ExitCode::SUCCESS);
    }
    run_one(cli, &s)
}

/// `--sweep N`: N seeds of the random scenario, each checked by the sweep's verdict.
fn sweep_seeds(cli: &Cli, n: u64) -> Result<ExitCode, String> {
    let first = cli.seed.unwrap_or(1);
    let nodes = cli.nodes.unwrap_or(0);
    let failures = sweep::sweep(first, n, nodes, bug(cli), |seed, f| {
        if let Some(f) = f {
            eprintln!("FAIL seed {seed}: {}", f.reason);
            eprintln!("  reproduce: {}", f.command);
        } else if !cli.quiet {
            eprintln!("ok   seed {seed}");
        }
    })?;
    println!("sweep: {} seeds, {} failed", n, failures.len());
    Ok(exit_code(failures.is_empty()))
}

/// `--tune`: the timing grid, written as `tune.csv` and `tune.svg`.
fn tune_grid(cli: &Cli) -> Result<ExitCode, String> {
    let nodes = cli.nodes.unwrap_or(50);
    let seed = cli.seed.unwrap_or(1);
    let points = tune::tune(nodes, seed, cli.quick, |p| {
        if !cli.quiet {
            eprintln!(
                "probe {}ms mult {} k {} gossip {}x{}ms: detection {:.2}s, fp {}, {:.0} B/node/s",
                p.probe_ms,
                p.suspicion_mult,
                p.indirect,
                p.gossip_nodes,
                p.gossip_ms,
                p.detection_s,
                p.false_positives,
                p.bytes_per_node_s
            );
        }
    })?;
    tune::write_tune(&cli.out, &points)?;
    let front = points.iter().filter(|p| p.pareto).count();
    println!(
        "tune: {} points, {} on the Pareto front; wrote {}",
        points.len(),
        front,
        cli.out.join("tune.csv").display()
    );
    Ok(ExitCode::SUCCESS)
}

/// One scenario: run, written out, judged, and with `--check-determinism` run again.
fn run_one(cli: &Cli, s: &Scenario) -> Result<ExitCode, String> {
    let opts = RunOptions {
        progress: !cli.quiet,
        record_events: false,
        bug: bug(cli),
    };
    let r = run(s, &opts)?;
    output::write_run(&cli.out, &r, !cli.no_plots)?;
    let sm = &r.summary;
    println!(
        "{}: {} nodes, seed {}, {:.0} s virtual in {:.2} s wall ({:.2} s setup, {:.0} events/s); converged at {}; trace {}",
        sm.scenario,
        sm.nodes,
        sm.seed,
        sm.sim_seconds,
        sm.wall_seconds,
        sm.setup_wall_seconds,
        sm.events_per_wall_s,
        sm.converged_at_s
            .map_or("never".to_string(), |t| format!("{t:.1} s")),
        sm.trace_hash
    );
    println!("{}", output::detection_line(sm));
    if let Some(h) = &sm.handoff {
        println!("{}", output::handoff_line(h));
    }
    let mut ok = true;
    if let Some(why) = sweep::verdict(&r) {
        eprintln!("FAIL: {why}");
        eprintln!(
            "  reproduce: {}",
            sweep::command(s.seed, cli.nodes.unwrap_or(0), bug(cli))
        );
        ok = false;
    }
    if cli.check_determinism {
        let again = run(s, &opts)?;
        if again.summary.trace_hash == sm.trace_hash {
            println!("determinism: ok, both runs gave trace {}", sm.trace_hash);
        } else {
            eprintln!(
                "determinism: FAILED, trace {} then {}",
                sm.trace_hash, again.summary.trace_hash
            );
            ok = false;
        }
    }
    Ok(exit_code(ok))
}

/// Success when `ok`, failure otherwise.
fn exit_code(ok: bool) -> ExitCode {
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
