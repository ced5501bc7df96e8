//! Cost of one idle node in a 50-node loopback mesh: CPU and resident memory, measured
//! from `/proc`. Ignored by default (it takes over a minute and 50 processes):
//!
//! ```text
//! cargo test --release --test runtime_bench -- --ignored --nocapture idle_node_cost
//! ```
//!
//! The test re-runs its own binary as 49 child processes, each one node (the hidden
//! `node_process` test, configured through environment variables), and hosts the 50th node
//! itself to see when the mesh has converged. It then samples one child's
//! `/proc/PID/stat` (user + system CPU ticks) at the start and end of a window, and its
//! `/proc/PID/status` (VmRSS, VmHWM) at the end. Knobs: `SWIMRING_BENCH_NODES` (50),
//! `SWIMRING_BENCH_SECS` (60), `SWIMRING_BENCH_PRESET` (`lan`).

mod runtime_util;

use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use runtime_util::*;
use swimring::{Mesh, Preset, State};

fn env_or<T: std::str::FromStr>(key: &str, default: T) -> T {
    std::env::var(key)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// One mesh node in a process of its own, alive until its stdin closes (the parent ends or
/// drops the pipe). Does nothing unless `SWIMRING_BENCH_NAME` is set.
#[test]
#[ignore = "a child process of idle_node_cost"]
fn node_process() {
    let Ok(name) = std::env::var("SWIMRING_BENCH_NAME") else {
        return;
    };
    let bind = std::env::var("SWIMRING_BENCH_BIND")
        .unwrap()
        .parse()
        .unwrap();
    let seed = std::env::var("SWIMRING_BENCH_SEED").unwrap();
    let preset: Preset = std::env::var("SWIMRING_BENCH_PRESET")
        .unwrap_or_else(|_| "lan".into())
        .parse()
        .unwrap();
    // A multi-thread runtime with two workers, as `#[tokio::main]` gives on this machine.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let mesh = Mesh::builder()
            .name(name)
            .bind(bind)
            .preset(preset)
            .seeds([seed])
            .start()
            .await
            .unwrap();
        // Block a helper thread on stdin: EOF means the parent is done.
        tokio::task::spawn_blocking(|| {
            let mut sink = [0u8; 64];
            while std::io::stdin().read(&mut sink).is_ok_and(|n| n > 0) {}
        })
        .await
        .unwrap();
        mesh.shutdown().await;
    });
}

/// CPU ticks (user + system) of process `pid`.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Fields after the command name, which is in parentheses and may contain spaces.
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the line; `rest` starts at field 3.
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

/// A `kB` line of `/proc/PID/status`.
fn status_kb(pid: u32, key: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

fn clock_ticks_per_second() -> u64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement: run by hand, see the file's docs"]
async fn idle_node_cost() {
    init_tracing();
    let nodes: u8 = env_or("SWIMRING_BENCH_NODES", 50);
    let secs: u64 = env_or("SWIMRING_BENCH_SECS", 60);
    let preset_name = std::env::var("SWIMRING_BENCH_PRESET").unwrap_or_else(|_| "lan".into());
    let preset: Preset = preset_name.parse().unwrap();
    // This process hosts the observer node, which every child uses as its seed.
    let observer = Mesh::builder()
        .name("observer")
        .bind(lo(200, 1))
        .preset(preset)
        .start()
        .await
        .unwrap();
    let seed = observer.local_addr().to_string();
    let exe = std::env::current_exe().unwrap();
    let mut children: Vec<Child> = (2..=nodes)
        .map(|i| {
            Command::new(&exe)
                .args(["--exact", "node_process", "--ignored", "--nocapture"])
                .env("SWIMRING_BENCH_NAME", format!("node-{i}"))
                .env("SWIMRING_BENCH_BIND", lo(200, i).to_string())
                .env("SWIMRING_BENCH_SEED", &seed)
                .env("SWIMRING_BENCH_PRESET", &preset_name)
                .stdin(Stdio::piped())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    let cfg = observer.config().clone();
    wait_for(
        "the observer sees every node alive",
        bound(&cfg, nodes as usize) * 2,
        || {
            observer
                .members()
                .iter()
                .filter(|m| m.state == State::Alive)
                .count()
                == nodes as usize
        },
    )
    .await;
    // Let the join rumours die out and the periodic tasks settle: idle means steady state.
    tokio::time::sleep(cfg.push_pull_interval.min(Duration::from_secs(10))).await;

    let measured = children[0].id();
    let all: Vec<u32> = children.iter().map(Child::id).collect();
    let before: Vec<u64> = all.iter().map(|&p| cpu_ticks(p)).collect();
    let start = tokio::time::Instant::now();
    tokio::time::sleep(Duration::from_secs(secs)).await;
    let window = start.elapsed().as_secs_f64();
    let after: Vec<u64> = all.iter().map(|&p| cpu_ticks(p)).collect();
    let hz = clock_ticks_per_second() as f64;
    let pct = |ticks: u64| 100.0 * ticks as f64 / hz / window;
    let own = pct(after[0] - before[0]);
    let mean = all
        .iter()
        .enumerate()
        .map(|(i, _)| pct(after[i] - before[i]))
        .sum::<f64>()
        / all.len() as f64;
    let rss = status_kb(measured, "VmRSS:");
    let hwm = status_kb(measured, "VmHWM:");
    let alive = observer
        .members()
        .iter()
        .filter(|m| m.state == State::Alive)
        .count();
    let st = observer.stats();
    println!(
        "nodes={nodes} preset={preset_name} window={window:.1}s alive_at_end={alive}\n\
         measured node (pid {measured}): cpu={own:.3}% of one core ({} ticks at {hz} Hz), \
         VmRSS={rss} kB, VmHWM={hwm} kB\n\
         mean over {} child nodes: cpu={mean:.3}% of one core\n\
         observer: decode_errors={} send_errors={} stream_failures={}",
        after[0] - before[0],
        all.len(),
        st.protocol.decode_errors,
        st.send_errors,
        st.stream_failures
    );
    for c in &mut children {
        drop(c.stdin.take()); // EOF: the child shuts its node down and exits
    }
    for c in &mut children {
        let _ = c.wait();
    }
    observer.shutdown().await;
}
