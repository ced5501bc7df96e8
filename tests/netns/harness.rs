//! Hosts in network namespaces, one agent per host, and the faults the tests inject.
//!
//! Layout of one cluster, all named from a unique id `swrt-<pid>-<seq>`:
//! - `<id>-br`: a namespace holding only a Linux bridge `br0` and one veth end `h<i>` per host;
//! - `<id>-h<i>`: host `i`, with `lo` up and `eth0` = `10.77.0.<i+1>/24`, the other veth end.
//!
//! Every interface lives inside a namespace this harness created, so nothing touches the root
//! namespace's links or routes, and two clusters (parallel test threads) never collide: each
//! has its own bridge, so both can use the same test subnet. Faults are nft rules inside the
//! hosts' namespaces (one table, `inet swrtfault`, replaced on each change and deleted to heal)
//! and signals to the agent processes. [`Cluster`]'s `Drop` kills every process and deletes
//! every namespace, also when a test panics; [`Cluster::new`] first removes leftovers of a
//! crashed run (namespaces whose creating process is gone).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, Write as _};
use std::net::Ipv4Addr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;
use swimring::proto::bounds;

#[path = "../wait/mod.rs"]
mod wait;
use swimring::{Config, Preset};
pub use wait::wait_until;

/// Every namespace this harness creates starts with this.
pub const PREFIX: &str = "swrt-";
/// Gossip port of every agent (each on its own address).
pub const PORT: u16 = 7946;
/// How often conditions are polled.
pub const POLL: Duration = Duration::from_millis(150);
/// Longest a single CLI query may take before it counts as failed (and is killed).
/// The control endpoint of every swimring agent, on its own namespace's loopback.
const NETNS_CONTROL: &str = "127.0.0.1:7373";

const QUERY_TIMEOUT: Duration = Duration::from_secs(5);
/// nft table holding the injected faults in a host's namespace.
const FAULT_TABLE: &str = "swrtfault";

static SEQ: AtomicU32 = AtomicU32::new(0);

/// Wall-clock now as unix seconds: the timebase of the agents' event timestamps.
pub fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock before 1970")
        .as_secs_f64()
}

/// Which agent runs on the hosts.
#[derive(Debug, Clone)]
pub enum Agent {
    /// The swimring daemon, with a preset.
    Swimring {
        /// The `swimring` binary.
        bin: PathBuf,
        /// `--profile` given to every agent.
        preset: Preset,
    },
    /// HashiCorp serf (default LAN profile): proves the harness and is the comparison baseline.
    Serf {
        /// The `serf` binary.
        bin: PathBuf,
    },
}

impl Agent {
    /// swimring with `preset`, unless `NETNS_AGENT=serf` asks for serf (to check the harness
    /// against a known implementation; serf always runs its LAN profile and has no tasks).
    pub fn from_env(preset: Preset) -> Agent {
        // Checked first, so that a run without root says so before anything else.
        require_root();
        match std::env::var("NETNS_AGENT").as_deref() {
            Ok("serf") => Agent::Serf {
                bin: which("serf").unwrap_or_else(|| {
                    panic!("NETNS_AGENT=serf but no `serf` on PATH (apt-get install -y serf)")
                }),
            },
            Ok("swimring") | Err(_) => Agent::Swimring {
                bin: swimring_bin(),
                preset,
            },
            Ok(other) => panic!("NETNS_AGENT={other:?}: expected swimring or serf"),
        }
    }

    /// Whether this is swimring (which has tasks, runs and a ring).
    pub fn is_swimring(&self) -> bool {
        matches!(self, Agent::Swimring { .. })
    }

    /// The protocol timings the agents run with, for deriving bounds.
    pub fn config(&self) -> Config {
        match self {
            Agent::Swimring { preset, .. } => preset.config(),
            Agent::Serf { .. } => {
                // serf's LAN profile is memberlist's DefaultLANConfig: our lan preset's rhythm
                // with memberlist's suspicion timings, and serf reconnects to failed members
                // every 30 s, not memberlist's 10 s.
                let mut c = Config::lan();
                c.probe_timeout = Duration::from_millis(500);
                c.suspicion_mult = 4;
                c.suspicion_confirmations = 2;
                c.reconnect_interval = Duration::from_secs(30);
                // memberlist has neither crash evidence nor stall patience.
                c.crash_evidence = false;
                c.stall_timeout = Duration::ZERO;
                c
            }
        }
    }
}

fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// The swimring binary: `SWIMRING_BIN` if set, else the one cargo built for this test.
fn swimring_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("SWIMRING_BIN") {
        return PathBuf::from(p);
    }
    match option_env!("CARGO_BIN_EXE_swimring") {
        Some(p) if Path::new(p).is_file() => PathBuf::from(p),
        Some(p) => panic!("the swimring binary {p} is missing: run `cargo build --bin swimring`"),
        None => panic!(
            "this crate has no `swimring` binary target (src/bin/swimring.rs); \
             set SWIMRING_BIN=/path/to/swimring or NETNS_AGENT=serf"
        ),
    }
}

/// Protocol-derived bounds. Each adds room for a loaded 2-core machine: a factor of 2 and 2 s.
#[derive(Debug, Clone)]
pub struct Bounds {
    /// The timings the agents run with.
    pub cfg: Config,
}

/// Multiplier for every bound: the agents share two cores with the test and each other.
const SLACK: u32 = 2;
const SLACK_FIXED: Duration = Duration::from_secs(2);

impl Bounds {
    /// Bounds for `agent`'s timings.
    pub fn new(agent: &Agent) -> Bounds {
        Bounds {
            cfg: agent.config(),
        }
    }

    /// [`swimring::proto::Bounds::probe_failure`], as is.
    pub fn probe_failure(&self) -> Duration {
        bounds(&self.cfg, 1).probe_failure
    }

    /// [`swimring::proto::Bounds::max_suspicion`], as is.
    pub fn max_suspicion(&self, n: usize) -> Duration {
        bounds(&self.cfg, n).max_suspicion
    }

    /// [`swimring::proto::Bounds::spread`], as is.
    pub fn spread(&self, n: usize) -> Duration {
        bounds(&self.cfg, n).spread
    }

    /// [`swimring::proto::Bounds::detect`], with room.
    pub fn detect(&self, n: usize) -> Duration {
        bounds(&self.cfg, n).detect * SLACK + SLACK_FIXED
    }

    /// A crashed process on a live host: [`swimring::proto::Bounds::crash_detect`] with room
    /// if the agents use crash evidence, else [`Bounds::detect`].
    pub fn crash(&self, n: usize) -> Duration {
        if self.cfg.crash_evidence {
            bounds(&self.cfg, n).crash_detect * SLACK + SLACK_FIXED
        } else {
            self.detect(n)
        }
    }

    /// The longest a suspicion raised about a silent member can last, as is: Lifeguard's
    /// maximum, or the stall patience if its host is known up.
    pub fn longest_suspicion(&self, n: usize) -> Duration {
        self.max_suspicion(n).max(self.cfg.stall_timeout)
    }

    /// [`swimring::proto::Bounds::join`], with room, plus process start-up.
    pub fn join(&self, n: usize) -> Duration {
        bounds(&self.cfg, n).join * SLACK + SLACK_FIXED + Duration::from_millis(100) * n as u32
    }

    /// [`swimring::proto::Bounds::heal`], with room.
    pub fn heal(&self, n: usize) -> Duration {
        bounds(&self.cfg, n).heal * SLACK + SLACK_FIXED
    }
}

/// A member as one agent sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct View {
    /// Member name.
    pub name: String,
    /// alive, suspect, dead or left (serf's failed is reported as dead, leaving as left).
    pub state: String,
    /// The member's run (swimring only).
    pub run: Option<u64>,
    /// The member's incarnation (swimring only).
    pub incarnation: Option<u64>,
}

/// One event from an agent's event log.
#[derive(Debug, Clone)]
pub struct Event {
    /// Index of the host that logged it.
    pub host: usize,
    /// Unix seconds.
    pub ts: f64,
    /// member_joined, member_suspect, member_dead, ... (serf's names are mapped onto these).
    pub event: String,
    /// The member it is about.
    pub member: String,
}

/// One host: a namespace, an address, and at most one agent process.
#[derive(Debug)]
pub struct Host {
    /// The agent's member name.
    pub name: String,
    /// The namespace.
    pub ns: String,
    /// The host's address on the test bridge.
    pub ip: Ipv4Addr,
    child: Option<Child>,
    paused: bool,
}

impl Host {
    /// The agent's gossip address.
    pub fn addr(&self) -> String {
        format!("{}:{}", self.ip, PORT)
    }

    /// Whether an agent process runs (possibly paused).
    pub fn running(&self) -> bool {
        self.child.is_some()
    }
}

/// A mesh of hosts, each running one agent. Dropping it removes everything it made.
pub struct Cluster {
    /// The agent on every host.
    pub agent: Agent,
    /// The task keys every swimring agent is given.
    pub tasks: Vec<String>,
    /// Bounds derived from the agents' timings.
    pub bounds: Bounds,
    /// The hosts.
    pub hosts: Vec<Host>,
    /// Logs, event files and the serf event handler.
    pub dir: PathBuf,
    id: String,
    namespaces: Vec<String>,
}

fn check(out: std::io::Result<std::process::Output>, what: &str) -> Result<String, String> {
    match out {
        Ok(o) if o.status.success() => Ok(String::from_utf8_lossy(&o.stdout).into_owned()),
        Ok(o) => Err(format!(
            "{what}: {}: {}",
            o.status,
            String::from_utf8_lossy(&o.stderr).trim()
        )),
        Err(e) => Err(format!("{what}: {e}")),
    }
}

/// Runs a command to completion; panics with its stderr if it fails.
fn must(args: &[&str]) -> String {
    let out = Command::new(args[0]).args(&args[1..]).output();
    check(out, &args.join(" ")).unwrap_or_else(|e| panic!("{e}"))
}

/// Runs a command, ignoring failure (cleanup of things that may be gone).
fn quiet(args: &[&str]) {
    let _ = Command::new(args[0])
        .args(&args[1..])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// Runs a command with `input` on stdin; panics with its stderr if it fails.
fn must_stdin(args: &[&str], input: &str) {
    let mut child = Command::new(args[0])
        .args(&args[1..])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{}: {e}", args.join(" ")));
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.as_bytes())
        .expect("write stdin");
    let out = child.wait_with_output();
    check(out, &format!("{} <<{input}", args.join(" "))).unwrap_or_else(|e| panic!("{e}"));
}

/// Runs a command, killing it after `timeout`.
fn run_timeout(cmd: &mut Command, timeout: Duration, what: &str) -> Result<String, String> {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("{what}: {e}"))?;
    // A query is a process run with a timeout, not a wait on the mesh: it polls its child
    // every 10 ms so a quick answer costs no more than it takes.
    let start = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(_)) => return check(child.wait_with_output(), what),
            Ok(None) if start.elapsed() > timeout => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("{what}: no answer within {timeout:?}"));
            }
            Ok(None) => thread::sleep(Duration::from_millis(10)),
            Err(e) => return Err(format!("{what}: {e}")),
        }
    }
}

/// Host `i`'s MAC address (fixed, so neighbours can be static).
fn mac(i: usize) -> String {
    let n = i + 1;
    format!("02:77:00:00:{:02x}:{:02x}", n >> 8, n & 0xff)
}

/// Fails the test unless it runs as root with `ip` and `nft`: these tests must never pass
/// by skipping.
pub fn require_root() {
    let status = fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    let euid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .expect("Uid line");
    assert_eq!(
        euid, "0",
        "the netns tests need root (network namespaces, veth, nft): run them as root, \
         e.g. via .ci/run, or `sudo -E cargo test --test netns -- --ignored --test-threads=1`"
    );
    for tool in ["ip", "nft"] {
        assert!(
            which(tool).is_some() || Path::new(&format!("/usr/sbin/{tool}")).is_file(),
            "`{tool}` is missing: apt-get install -y iproute2 nftables"
        );
    }
}

/// Deletes namespaces left by a run whose process is gone (a crash or a kill -9 of the test).
pub fn remove_stale() {
    let Ok(list) = check(
        Command::new("ip").args(["netns", "list"]).output(),
        "ip netns list",
    ) else {
        return;
    };
    for name in list.lines().filter_map(|l| l.split_whitespace().next()) {
        let Some(rest) = name.strip_prefix(PREFIX) else {
            continue;
        };
        let Some(pid) = rest.split('-').next().and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        if !Path::new(&format!("/proc/{pid}")).exists() {
            eprintln!("netns: removing stale namespace {name} (its run, pid {pid}, is gone)");
            kill_ns_processes(name);
            quiet(&["ip", "netns", "del", name]);
        }
    }
}

fn kill_ns_processes(ns: &str) {
    if let Ok(pids) = check(
        Command::new("ip").args(["netns", "pids", ns]).output(),
        "ip netns pids",
    ) {
        for pid in pids.split_whitespace() {
            quiet(&["kill", "-CONT", pid]);
            quiet(&["kill", "-KILL", pid]);
        }
    }
}

impl Cluster {
    /// Creates `n` hosts on a fresh bridge (no agents yet).
    pub fn new(agent: Agent, n: usize, tasks: Vec<String>) -> Cluster {
        assert!((1..=250).contains(&n), "between 1 and 250 hosts on one /24");
        require_root();
        remove_stale();
        let id = format!(
            "{PREFIX}{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::SeqCst)
        );
        let dir = std::env::temp_dir().join(&id);
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("create log dir");
        let bounds = Bounds::new(&agent);
        let mut c = Cluster {
            agent,
            tasks,
            bounds,
            hosts: Vec::new(),
            dir,
            id,
            namespaces: Vec::new(),
        };
        let br = format!("{}-br", c.id);
        must(&["ip", "netns", "add", &br]);
        c.namespaces.push(br.clone());
        must(&["ip", "-n", &br, "link", "set", "lo", "up"]);
        must(&["ip", "-n", &br, "link", "add", "br0", "type", "bridge"]);
        must(&["ip", "-n", &br, "link", "set", "br0", "up"]);
        for i in 0..n {
            let ns = format!("{}-h{i}", c.id);
            must(&["ip", "netns", "add", &ns]);
            c.namespaces.push(ns.clone());
            let ip = Ipv4Addr::new(10, 77, 0, (i + 1) as u8);
            let port = format!("h{i}");
            must(&[
                "ip", "-n", &br, "link", "add", &port, "type", "veth", "peer", "name", "eth0",
                "netns", &ns,
            ]);
            must(&["ip", "-n", &br, "link", "set", &port, "master", "br0", "up"]);
            must(&["ip", "-n", &ns, "link", "set", "lo", "up"]);
            must(&["ip", "-n", &ns, "link", "set", "eth0", "address", &mac(i)]);
            must(&[
                "ip",
                "-n",
                &ns,
                "addr",
                "add",
                &format!("{ip}/24"),
                "dev",
                "eth0",
            ]);
            must(&["ip", "-n", &ns, "link", "set", "eth0", "up"]);
            c.hosts.push(Host {
                name: format!("n{i}"),
                ns,
                ip,
                child: None,
                paused: false,
            });
        }
        // Static neighbours: the kernel's ARP table is shared by every namespace and holds at
        // most 1024 dynamic entries (gc_thresh3), which n × (n - 1) entries overflow (packets
        // are then dropped); permanent entries do not count against that limit.
        for i in 0..n {
            let mut batch = String::new();
            for (j, h) in c.hosts.iter().enumerate().filter(|(j, _)| *j != i) {
                let _ = writeln!(
                    batch,
                    "neigh replace {} lladdr {} dev eth0 nud permanent",
                    h.ip,
                    mac(j)
                );
            }
            must_stdin(&["ip", "-n", &c.hosts[i].ns, "-batch", "-"], &batch);
        }
        c
    }

    /// Creates `n` hosts, starts host 0, then all others seeded with it, and waits until
    /// every agent sees every other alive (within [`Bounds::join`]).
    pub fn start(agent: Agent, n: usize, tasks: Vec<String>) -> Cluster {
        let mut c = Cluster::new(agent, n, tasks);
        c.spawn(0, &[]);
        c.wait_ready(0);
        let seed = c.hosts[0].addr();
        for i in 1..n {
            c.spawn(i, std::slice::from_ref(&seed));
        }
        for i in 1..n {
            c.wait_ready(i);
        }
        let all: Vec<usize> = (0..n).collect();
        let took = c.wait_all_alive(&all, c.bounds.join(n));
        eprintln!("netns: {n} {} agents converged in {took:.2?}", c.kind());
        c
    }

    /// "swimring" or "serf".
    pub fn kind(&self) -> &'static str {
        if self.agent.is_swimring() {
            "swimring"
        } else {
            "serf"
        }
    }

    /// Indexes of all hosts.
    pub fn all(&self) -> Vec<usize> {
        (0..self.hosts.len()).collect()
    }

    /// Path of host `i`'s event log (one JSON object per line).
    /// The mesh's key file, made with `swimring keygen` the first time it is asked for.
    fn key_file(&self, bin: &Path) -> PathBuf {
        let path = self.dir.join("mesh.key");
        if !path.exists() {
            let out = Command::new(bin)
                .arg("keygen")
                .output()
                .expect("swimring keygen runs");
            assert!(out.status.success(), "swimring keygen failed");
            fs::write(&path, &out.stdout).expect("write the key file");
            fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).expect("chmod key");
        }
        path
    }

    pub fn events_path(&self, i: usize) -> PathBuf {
        self.dir.join(format!("{}.events", self.hosts[i].name))
    }

    fn log_path(&self, i: usize) -> PathBuf {
        self.dir.join(format!("{}.log", self.hosts[i].name))
    }

    /// Starts host `i`'s agent, seeded with `seeds` (gossip addresses).
    pub fn spawn(&mut self, i: usize, seeds: &[String]) {
        assert!(
            self.hosts[i].child.is_none(),
            "host {i} already runs an agent"
        );
        let append = |p: PathBuf| -> File {
            OpenOptions::new()
                .create(true)
                .append(true)
                .open(&p)
                .unwrap_or_else(|e| panic!("open {}: {e}", p.display()))
        };
        let log = append(self.log_path(i));
        let h = &self.hosts[i];
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &h.ns]);
        match &self.agent {
            Agent::Swimring { bin, preset } => {
                let profile = match preset {
                    Preset::Lan => "lan",
                    Preset::Wan => "wan",
                    Preset::Local => "local",
                };
                // Every agent shares one key: gossip between hosts is sealed, as in a real
                // deployment (plaintext is refused off loopback).
                let key = self.key_file(bin);
                // Each namespace has its own loopback, but all share one file system: TCP
                // on loopback keeps one control endpoint per host (the default Unix socket
                // would be one path for all).
                cmd.env("SWIMRING_CONTROL", NETNS_CONTROL);
                cmd.arg(bin).args([
                    "agent",
                    "--name",
                    &h.name,
                    "--bind",
                    &h.addr(),
                    "--profile",
                    profile,
                    "--events",
                    "json",
                    "--key-file",
                ]);
                cmd.arg(key);
                for s in seeds {
                    cmd.args(["--seed", s]);
                }
                for t in &self.tasks {
                    cmd.args(["--task", t]);
                }
                cmd.stdout(append(self.events_path(i)));
            }
            Agent::Serf { bin } => {
                cmd.arg(bin).args([
                    "agent",
                    "-node",
                    &h.name,
                    "-bind",
                    &h.addr(),
                    "-rpc-addr",
                    "127.0.0.1:7373",
                ]);
                for s in seeds {
                    cmd.args(["-join", s]);
                }
                cmd.stdout(Stdio::piped());
            }
        }
        let mut child = cmd
            .stdin(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn agent on host {i}: {e}"));
        if let Some(out) = child.stdout.take() {
            let events = append(self.events_path(i));
            let log = append(self.log_path(i));
            thread::spawn(move || stamp_serf_log(out, log, events));
        }
        // A child that dies at once (bad flag, port taken) is reported here, with its log.
        thread::sleep(Duration::from_millis(20));
        if let Ok(Some(status)) = child.try_wait() {
            panic!(
                "agent on host {i} exited at start ({status}):\n{}",
                self.log_tail(i, 30)
            );
        }
        let h = &mut self.hosts[i];
        h.child = Some(child);
        h.paused = false;
    }

    /// Waits until host `i`'s control endpoint answers.
    pub fn wait_ready(&mut self, i: usize) {
        let bound = Duration::from_secs(10);
        let mut last = String::new();
        let answered = wait::poll(bound, || {
            if let Some(status) = self.hosts[i]
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok()?)
            {
                panic!(
                    "agent on host {i} exited ({status}) before answering:\n{}",
                    self.log_tail(i, 30)
                );
            }
            self.members(i).map_err(|e| last = e).ok()
        });
        if answered.is_none() {
            panic!(
                "agent on host {i} did not answer within {bound:?}: {last}\n{}",
                self.log_tail(i, 30)
            );
        }
    }

    /// The last `n` lines of host `i`'s agent log.
    pub fn log_tail(&self, i: usize, n: usize) -> String {
        let text = fs::read_to_string(self.log_path(i)).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let from = lines.len().saturating_sub(n);
        lines[from..].join("\n")
    }

    fn cli(&self, i: usize, args: &[&str]) -> Result<Value, String> {
        let h = &self.hosts[i];
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &h.ns]);
        match &self.agent {
            Agent::Swimring { bin, .. } => cmd.env("SWIMRING_CONTROL", NETNS_CONTROL).arg(bin),
            Agent::Serf { bin } => cmd.arg(bin),
        };
        cmd.args(args);
        let what = format!("host {i}: {}", args.join(" "));
        let out = run_timeout(&mut cmd, QUERY_TIMEOUT, &what)?;
        serde_json::from_str(&out).map_err(|e| format!("{what}: bad JSON ({e}): {out}"))
    }

    /// Every member host `i`'s agent knows, as it sees them.
    pub fn members(&self, i: usize) -> Result<Vec<View>, String> {
        let v = match self.agent {
            Agent::Swimring { .. } => self.cli(i, &["members", "--json"])?,
            Agent::Serf { .. } => self.cli(i, &["members", "-format", "json"])?,
        };
        let list = v["members"]
            .as_array()
            .ok_or_else(|| format!("host {i}: no members list in {v}"))?;
        list.iter()
            .map(|m| {
                let name = m["name"].as_str().ok_or("member without name")?.to_owned();
                let state = m["state"]
                    .as_str()
                    .or_else(|| m["status"].as_str())
                    .ok_or("member without state")?;
                let state = match state {
                    "failed" => "dead",
                    "leaving" => "left",
                    s => s,
                }
                .to_owned();
                Ok(View {
                    name,
                    state,
                    run: m["run"].as_u64(),
                    incarnation: m["incarnation"].as_u64(),
                })
            })
            .collect()
    }

    /// Host `i`'s view as name → state.
    pub fn states(&self, i: usize) -> Result<BTreeMap<String, String>, String> {
        Ok(self
            .members(i)?
            .into_iter()
            .map(|v| (v.name, v.state))
            .collect())
    }

    /// The tasks host `i`'s agent owns now (swimring only).
    pub fn tasks_of(&self, i: usize) -> Result<Vec<String>, String> {
        let v = self.cli(i, &["tasks", "--json"])?;
        let list = v["tasks"]
            .as_array()
            .ok_or_else(|| format!("host {i}: no tasks list in {v}"))?;
        list.iter()
            .map(|t| {
                t["key"]
                    .as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| format!("host {i}: task entry {t} has no key"))
            })
            .collect()
    }

    /// Host `i`'s `status --json` (swimring only).
    pub fn status(&self, i: usize) -> Result<Value, String> {
        self.cli(i, &["status", "--json"])
    }

    /// Every event in host `i`'s log (lines that are not events are skipped).
    pub fn events(&self, i: usize) -> Vec<Event> {
        let text = fs::read_to_string(self.events_path(i)).unwrap_or_default();
        text.lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter_map(|v| {
                Some(Event {
                    host: i,
                    ts: v["ts"].as_f64()?,
                    event: v["event"].as_str()?.to_owned(),
                    member: v["member"].as_str().unwrap_or_default().to_owned(),
                })
            })
            .collect()
    }

    /// Events named `event` logged by any host at or after `since`.
    pub fn events_since(&self, event: &str, since: f64) -> Vec<Event> {
        self.all()
            .into_iter()
            .flat_map(|i| self.events(i))
            .filter(|e| e.event == event && e.ts >= since)
            .collect()
    }

    fn pid(&self, i: usize) -> String {
        self.hosts[i]
            .child
            .as_ref()
            .unwrap_or_else(|| panic!("host {i} runs no agent"))
            .id()
            .to_string()
    }

    /// `kill -9` host `i`'s agent.
    pub fn kill(&mut self, i: usize) {
        let h = &mut self.hosts[i];
        let mut child = h
            .child
            .take()
            .unwrap_or_else(|| panic!("host {i} runs no agent"));
        child.kill().expect("SIGKILL");
        child.wait().expect("reap");
        h.paused = false;
    }

    /// SIGSTOP host `i`'s agent.
    pub fn pause(&mut self, i: usize) {
        must(&["kill", "-STOP", &self.pid(i)]);
        self.hosts[i].paused = true;
    }

    /// SIGCONT host `i`'s agent.
    pub fn resume(&mut self, i: usize) {
        must(&["kill", "-CONT", &self.pid(i)]);
        self.hosts[i].paused = false;
    }

    /// SIGINT host `i`'s agent (a graceful leave, for swimring and serf alike) and waits up
    /// to `bound` for it to exit.
    pub fn stop(&mut self, i: usize, bound: Duration) -> ExitStatus {
        must(&["kill", "-INT", &self.pid(i)]);
        let mut child = self.hosts[i].child.take().expect("child");
        if let Some(status) = wait::poll(bound, || child.try_wait().expect("try_wait")) {
            return status;
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!(
            "agent on host {i} did not exit within {bound:?} of SIGINT:\n{}",
            self.log_tail(i, 30)
        );
    }

    /// Gossip addresses of up to `k` running hosts other than `i` (seeds for a restart).
    pub fn live_seeds(&self, i: usize, k: usize) -> Vec<String> {
        self.hosts
            .iter()
            .enumerate()
            .filter(|(j, h)| *j != i && h.running() && !h.paused)
            .take(k)
            .map(|(_, h)| h.addr())
            .collect()
    }

    /// Replaces host `i`'s fault rules with `rules` (nft chain bodies), or heals it if empty.
    fn set_rules(&self, i: usize, input: &[String], output: &[String]) {
        let ns = &self.hosts[i].ns;
        // Creating then deleting makes the delete succeed whether or not the table exists.
        let mut script = format!("table inet {FAULT_TABLE}\ndelete table inet {FAULT_TABLE}\n");
        if !input.is_empty() || !output.is_empty() {
            let _ = writeln!(script, "table inet {FAULT_TABLE} {{");
            let _ = writeln!(
                script,
                "  chain input {{ type filter hook input priority 0; policy accept;"
            );
            for r in input {
                let _ = writeln!(script, "    {r}");
            }
            let _ = writeln!(script, "  }}");
            let _ = writeln!(
                script,
                "  chain output {{ type filter hook output priority 0; policy accept;"
            );
            for r in output {
                let _ = writeln!(script, "    {r}");
            }
            let _ = writeln!(script, "  }}\n}}");
        }
        must_stdin(&["ip", "netns", "exec", ns, "nft", "-f", "-"], &script);
    }

    /// Cuts the hosts into `groups`: each host silently drops every packet arriving from hosts
    /// of other groups (UDP and TCP alike). Dropping on arrival, not on sending, is what a
    /// real partition looks like: a send blocked locally fails with EPERM, which memberlist
    /// (and so serf) rightly takes for its own fault and never suspects the peer over.
    /// Hosts in no group keep talking to everyone.
    pub fn partition(&self, groups: &[&[usize]]) {
        for (g, members) in groups.iter().enumerate() {
            let others: Vec<String> = groups
                .iter()
                .enumerate()
                .filter(|(h, _)| *h != g)
                .flat_map(|(_, m)| m.iter().map(|&j| self.hosts[j].ip.to_string()))
                .collect();
            if others.is_empty() {
                continue;
            }
            let set = others.join(", ");
            for &i in *members {
                self.set_rules(i, &[format!("ip saddr {{ {set} }} drop")], &[]);
            }
        }
    }

    /// Drops `percent`% of the packets each of `hosts` receives from the bridge, at random
    /// (loopback, where the control endpoint listens, is spared).
    pub fn loss(&self, hosts: &[usize], percent: u32) {
        for &i in hosts {
            self.set_rules(
                i,
                &[format!(
                    "iifname \"eth0\" numgen random mod 100 < {percent} drop"
                )],
                &[],
            );
        }
    }

    /// Host `i` drops every UDP datagram it receives from the bridge, as behind a firewall
    /// that passes only TCP: datagram probes of it fail, directly and through relays alike.
    pub fn block_udp_to(&self, i: usize) {
        self.set_rules(
            i,
            &["iifname \"eth0\" meta l4proto udp drop".to_owned()],
            &[],
        );
    }

    /// Host `i` drops every packet to and from the bridge, as a host that lost power or its
    /// cable: nothing it sends arrives, nothing sent to it is answered, not even refused.
    pub fn cut_off(&self, i: usize) {
        self.set_rules(
            i,
            &["iifname \"eth0\" drop".to_owned()],
            &["oifname \"eth0\" drop".to_owned()],
        );
    }

    /// Removes every injected network fault.
    pub fn heal(&self) {
        for i in self.all() {
            self.set_rules(i, &[], &[]);
        }
    }

    /// Waits until every host in `live` sees exactly the members of `live` alive; returns
    /// how long it took. Panics with the last disagreement after `bound`.
    pub fn wait_all_alive(&self, live: &[usize], bound: Duration) -> Duration {
        let names: BTreeSet<String> = live.iter().map(|&i| self.hosts[i].name.clone()).collect();
        wait_until(
            &format!("hosts {live:?} all see each other alive"),
            bound,
            || {
                for &i in live {
                    let st = self.states(i)?;
                    for n in &names {
                        match st.get(n).map(String::as_str) {
                            Some("alive") => {}
                            other => {
                                return Err(format!("host {i} sees {n} as {other:?}"));
                            }
                        }
                    }
                    if let Some((n, s)) = st
                        .iter()
                        .find(|(n, s)| s.as_str() == "alive" && !names.contains(*n))
                    {
                        return Err(format!("host {i} sees {n} as {s}, expected it gone"));
                    }
                }
                Ok(())
            },
        )
        .1
    }

    /// Waits until every host in `observers` sees each of `targets` in state `state`.
    pub fn wait_state(
        &self,
        observers: &[usize],
        targets: &[usize],
        state: &str,
        bound: Duration,
    ) -> Duration {
        wait_until(
            &format!("hosts {observers:?} see {targets:?} {state}"),
            bound,
            || {
                for &i in observers {
                    let st = self.states(i)?;
                    for &t in targets {
                        let n = &self.hosts[t].name;
                        if st.get(n).map(String::as_str) != Some(state) {
                            return Err(format!("host {i} sees {n} as {:?}", st.get(n)));
                        }
                    }
                }
                Ok(())
            },
        )
        .1
    }

    /// Whether every task has exactly one owner across `live`'s own views: the union of
    /// their `tasks` answers is all tasks, and no task is listed twice.
    pub fn tasks_once(&self, live: &[usize]) -> Result<(), String> {
        let mut owner: BTreeMap<String, usize> = BTreeMap::new();
        for &i in live {
            for t in self.tasks_of(i)? {
                if !self.tasks.contains(&t) {
                    return Err(format!("host {i} owns unknown task {t:?}"));
                }
                if let Some(j) = owner.insert(t.clone(), i) {
                    return Err(format!("task {t:?} owned by both host {j} and host {i}"));
                }
            }
        }
        let missing: Vec<&String> = self
            .tasks
            .iter()
            .filter(|t| !owner.contains_key(*t))
            .collect();
        if missing.is_empty() {
            Ok(())
        } else {
            Err(format!("tasks with no owner among {live:?}: {missing:?}"))
        }
    }

    /// Waits until [`Cluster::tasks_once`] holds for `live` on two polls in a row (a settled
    /// placement, not a passing moment). A no-op for serf, which has no tasks.
    pub fn wait_tasks_once(&self, live: &[usize], bound: Duration) {
        if !self.agent.is_swimring() {
            eprintln!("netns: serf has no tasks; task placement not checked");
            return;
        }
        let mut streak = 0;
        let (_, took) = wait_until(
            &format!("every task has exactly one owner among hosts {live:?}"),
            bound,
            || {
                self.tasks_once(live).inspect_err(|_| streak = 0)?;
                streak += 1;
                if streak >= 2 {
                    Ok(())
                } else {
                    Err("placement seen once; checking it holds".into())
                }
            },
        );
        eprintln!("netns: task placement settled on {live:?} in {took:.2?}");
    }
}

/// Copies serf's log to `log` and turns its member lines into timestamped JSON events.
///
/// serf's event handlers are coalesced (up to 3 s), so they would blur detection times; its
/// log lines are written the moment memberlist tells serf, and are stamped here on arrival.
fn stamp_serf_log(out: ChildStdout, mut log: File, mut events: File) {
    const MAP: [(&str, &str); 6] = [
        ("serf: EventMemberJoin: ", "member_joined"),
        ("serf: EventMemberFailed: ", "member_dead"),
        ("serf: EventMemberLeave: ", "member_left"),
        ("serf: EventMemberUpdate: ", "member_updated"),
        ("serf: EventMemberReap: ", "member_reaped"),
        ("memberlist: Suspect ", "member_suspect"),
    ];
    for line in BufReader::new(out).lines() {
        let Ok(line) = line else { break };
        let ts = unix_now();
        let _ = writeln!(log, "{line}");
        for (marker, event) in MAP {
            if let Some(rest) = line.split(marker).nth(1) {
                let member = rest.split_whitespace().next().unwrap_or_default();
                let ev = serde_json::json!({"ts": ts, "event": event, "member": member});
                let _ = writeln!(events, "{ev}");
            }
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for h in &mut self.hosts {
            if let Some(mut child) = h.child.take() {
                if h.paused {
                    quiet(&["kill", "-CONT", &child.id().to_string()]);
                }
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        for ns in self.namespaces.iter().rev() {
            kill_ns_processes(ns);
            quiet(&["ip", "netns", "del", ns]);
        }
        if thread::panicking() {
            eprintln!(
                "netns: test failed; agent logs and events kept in {}",
                self.dir.display()
            );
            for i in 0..self.hosts.len() {
                let tail = self.log_tail(i, 8);
                if !tail.is_empty() {
                    eprintln!("--- {} (last lines)\n{tail}", self.hosts[i].name);
                }
            }
        } else {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}
