//! The agent's settings: flags, then environment variables, then a TOML config file, then
//! defaults — the first that gives a value wins.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Args, ValueEnum};
use serde::Deserialize;
use swimring::control::Endpoint;
use swimring::proto::Timings;
use swimring::ring::{BoundedLoad, LoadPolicy};
use swimring::wire::Key;

use crate::handler::Handler;
use swimring::{PlacementConfig, Preset};

use crate::keys::{parse_key_env, read_key_file};

/// How events are printed on stdout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EventFormat {
    /// Log lines for people (on stderr, with the rest of the log).
    Human,
    /// One JSON object per line on stdout.
    Json,
}

/// Timing preset names, as flags spell them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Profile {
    /// A LAN: a probe a second, failures detected in about half memberlist's time.
    Lan,
    /// memberlist's WAN timings.
    Wan,
    /// Fast timings for one machine.
    Local,
}

impl From<Profile> for Preset {
    fn from(p: Profile) -> Preset {
        match p {
            Profile::Lan => Preset::Lan,
            Profile::Wan => Preset::Wan,
            Profile::Local => Preset::Local,
        }
    }
}

pub fn parse_tag(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_owned(), v.to_owned())),
        _ => Err(format!("expected KEY=VALUE, got {s:?}")),
    }
}

/// `swimring agent` flags. Each also reads an environment variable; lists take commas there.
#[derive(Args, Debug, Default, Clone)]
pub struct AgentArgs {
    /// Unique member name [default: host name plus a random suffix].
    #[arg(long, env = "SWIMRING_NAME")]
    name: Option<String>,
    /// Address to bind gossip (UDP) and state sync (TCP) to [default: 0.0.0.0:7946].
    #[arg(long, env = "SWIMRING_BIND")]
    bind: Option<SocketAddr>,
    /// Address other members reach this one at, if not the bound one (NAT, containers).
    #[arg(long, env = "SWIMRING_ADVERTISE")]
    advertise: Option<SocketAddr>,
    /// A member to join through, HOST:PORT; DNS names are looked up at every attempt.
    #[arg(long = "seed", env = "SWIMRING_SEEDS", value_delimiter = ',')]
    seeds: Vec<String>,
    /// Metadata tag KEY=VALUE, repeatable (e.g. role=worker, weight=200).
    #[arg(long = "meta", env = "SWIMRING_META", value_delimiter = ',', value_parser = parse_tag)]
    meta: Vec<(String, String)>,
    /// Timing preset [default: lan].
    #[arg(long, env = "SWIMRING_PROFILE")]
    profile: Option<Profile>,
    /// Cluster label: meshes with different labels never merge [default: none].
    #[arg(long, env = "SWIMRING_CLUSTER")]
    cluster: Option<String>,
    /// Control endpoint the other subcommands talk to: unix:PATH, or HOST:PORT for TCP
    /// (beyond loopback only with --control-token-file) [default: a Unix socket,
    /// $XDG_RUNTIME_DIR/swimring.sock, /run/swimring.sock for root, else
    /// /tmp/swimring-UID.sock].
    #[arg(long, env = "SWIMRING_CONTROL")]
    control: Option<Endpoint>,
    /// A file holding the token TCP control requests must carry (needed beyond loopback).
    #[arg(long, env = "SWIMRING_CONTROL_TOKEN_FILE")]
    control_token_file: Option<PathBuf>,
    /// Serve Prometheus metrics at http://IP:PORT/metrics and a health check at /health
    /// [default: not served].
    #[arg(long, env = "SWIMRING_METRICS")]
    metrics: Option<SocketAddr>,
    /// Log level: error, warn, info, debug or trace (SWIMRING_LOG, a full filter, wins)
    /// [default: info].
    #[arg(long, env = "SWIMRING_LOG_LEVEL")]
    log_level: Option<LogLevel>,
    /// A task key this mesh places on its members, repeatable.
    #[arg(long = "task", env = "SWIMRING_TASKS", value_delimiter = ',')]
    tasks: Vec<String>,
    /// A file of task keys, one per line (blank lines and # comments skipped).
    #[arg(long, env = "SWIMRING_TASKS_FILE")]
    tasks_file: Option<PathBuf>,
    /// Only members carrying this tag KEY=VALUE own tasks; the others still take part in
    /// membership [default: every member may own tasks].
    #[arg(long, env = "SWIMRING_OWNER_TAG", value_parser = parse_tag)]
    owner_tag: Option<(String, String)>,
    /// Place tasks with bounded loads: no member owns more than C times its fair share
    /// (C >= 1.1; 1.25 is a good start), at the price of a few extra moves on each change
    /// [default: plain consistent hashing].
    #[arg(long, env = "SWIMRING_BOUNDED_LOAD")]
    bounded_load: Option<f64>,
    /// Virtual nodes per member of normal weight; every member must use the same
    /// [default: 512].
    #[arg(long, env = "SWIMRING_VNODES")]
    vnodes: Option<u32>,
    /// How to print events [default: human].
    #[arg(long, env = "SWIMRING_EVENTS")]
    events: Option<EventFormat>,
    /// Run CMD through `sh -c` for each event, with the event's JSON object (as --events json
    /// prints it) on standard input and SWIMRING_EVENT set to its kind; `KINDS=CMD` runs it
    /// only for those kinds (comma-separated, e.g. member_dead,member_left=./page.sh;
    /// user_event:NAME for the user events of that name).
    /// Repeatable; handlers run one at a time, in event order.
    #[arg(long = "handler", value_name = "[KINDS=]CMD")]
    handlers: Vec<String>,
    /// Seconds to spend telling others on SIGINT/SIGTERM before exiting [default: 5].
    #[arg(long, env = "SWIMRING_LEAVE_TIMEOUT")]
    leave_timeout: Option<f64>,
    /// Seconds a node started with seeds claims no task while it has not joined (received a
    /// member's full state); past it, it claims anyway and logs a warning [default: ten
    /// probe intervals (the longest seed retry wait) plus the stream timeout: 12.5 s on the lan
    /// profile, 3 s on local].
    #[arg(long, env = "SWIMRING_JOIN_WAIT")]
    join_wait: Option<f64>,
    /// A file of cluster keys, one base64 key per line, the first sealing what this agent
    /// sends (see `swimring keygen`). Instead, SWIMRING_KEY may hold comma-separated keys.
    #[arg(long, env = "SWIMRING_KEY_FILE")]
    key_file: Option<PathBuf>,
    /// Run without a key on an address beyond loopback: membership travels in the clear,
    /// and anyone who can reach the port can join or forge it.
    #[arg(long, env = "SWIMRING_INSECURE_PLAINTEXT")]
    insecure_plaintext: bool,
    /// A TOML file with any of the settings above (flags and environment win over it).
    #[arg(long, env = "SWIMRING_CONFIG")]
    config: Option<PathBuf>,
    /// SWIMRING_KEY, read here rather than as a flag so keys stay off command lines.
    #[arg(skip = std::env::var("SWIMRING_KEY").ok().filter(|v| !v.trim().is_empty()))]
    key_env: Option<String>,
}

/// The config file: the same settings, spelled in snake_case.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileSettings {
    name: Option<String>,
    bind: Option<SocketAddr>,
    advertise: Option<SocketAddr>,
    seeds: Option<Vec<String>>,
    meta: Option<BTreeMap<String, String>>,
    profile: Option<Profile>,
    cluster: Option<String>,
    control: Option<String>,
    control_token_file: Option<PathBuf>,
    metrics: Option<SocketAddr>,
    log_level: Option<LogLevel>,
    tasks: Option<Vec<String>>,
    tasks_file: Option<PathBuf>,
    owner_tag: Option<String>,
    bounded_load: Option<f64>,
    vnodes: Option<u32>,
    events: Option<EventFormat>,
    handlers: Option<Vec<String>>,
    leave_timeout: Option<f64>,
    join_wait: Option<f64>,
    key_file: Option<PathBuf>,
    insecure_plaintext: Option<bool>,
    /// The `[protocol]` table: single timings on top of the profile, for tuning.
    protocol: Option<Timings>,
}

/// Everything the agent runs with, resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    pub name: Option<String>,
    pub bind: SocketAddr,
    pub advertise: Option<SocketAddr>,
    pub seeds: Vec<String>,
    pub tags: BTreeMap<String, String>,
    pub preset: Preset,
    pub cluster: String,
    pub control: Endpoint,
    /// The control token, read from its file.
    pub control_token: Option<String>,
    pub metrics: Option<SocketAddr>,
    pub log_level: LogLevel,
    pub tasks: Vec<String>,
    pub placement: PlacementConfig,
    pub events: EventFormat,
    /// Programs run for events (`--handler`).
    pub handlers: Vec<Handler>,
    pub leave_timeout: Duration,
    /// How long claims wait for the join; `None` for the mesh's default.
    pub join_wait: Option<Duration>,
    /// Cluster keys, the primary first; none runs in the clear.
    pub keys: Vec<Key>,
    /// Where the keys came from, if from a file (its permissions are checked at start).
    pub key_file: Option<PathBuf>,
    pub insecure_plaintext: bool,
    pub protocol: Timings,
}

/// Log levels, as flags spell them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    /// Errors only.
    Error,
    /// Warnings and errors.
    Warn,
    /// What an operator follows: joins, deaths, leaves, task moves.
    Info,
    /// Every membership change and refused packet.
    Debug,
    /// Everything.
    Trace,
}

impl LogLevel {
    /// The level's name, as `tracing` filters spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Error => "error",
            LogLevel::Warn => "warn",
            LogLevel::Info => "info",
            LogLevel::Debug => "debug",
            LogLevel::Trace => "trace",
        }
    }
}

/// The control token: the file's content, trimmed; at least 16 characters.
fn read_token_file(path: &Path) -> Result<String, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read control token file {}: {e}", path.display()))?;
    let token = text.trim();
    if token.len() < 16 {
        return Err(format!(
            "control token file {} must hold a token of at least 16 characters",
            path.display()
        ));
    }
    Ok(token.to_owned())
}

/// The control endpoint (from the flag, else the file, else the default socket) and its
/// token, read from its file.
fn control_settings(
    (flag, file): (Option<Endpoint>, Option<String>),
    token_file: Option<PathBuf>,
) -> Result<(Endpoint, Option<String>), String> {
    let control = match (flag, file) {
        (Some(c), _) => c,
        (None, Some(text)) => text.parse().map_err(|e| format!("control: {e}"))?,
        (None, None) => Endpoint::default_socket(),
    };
    let token = token_file.map(|p| read_token_file(&p)).transpose()?;
    Ok((control, token))
}

/// A duration given in seconds; `what` names it in the error.
fn seconds(what: &str, value: f64) -> Result<Duration, String> {
    Duration::try_from_secs_f64(value)
        .map_err(|_| format!("invalid {what} {value}: must be seconds >= 0"))
}

fn non_empty<T>(v: Vec<T>) -> Option<Vec<T>> {
    (!v.is_empty()).then_some(v)
}

fn read_tasks_file(path: &Path) -> Result<Vec<String>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read tasks file {}: {e}", path.display()))?;
    Ok(text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_owned)
        .collect())
}

/// Reads and parses a config file, naming the file and line of any error.
fn read_config_file(path: &Path) -> Result<FileSettings, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read config file {}: {e}", path.display()))?;
    toml::from_str(&text).map_err(|e| {
        let line = e
            .span()
            .map_or(1, |r| text[..r.start].lines().count().max(1));
        let what = e.message().replace('\n', " ");
        format!(
            "invalid config file {} (line {line}): {what}",
            path.display()
        )
    })
}

/// How tasks are placed: the owner tag (the flag's, else the file's), bounded loads and
/// virtual nodes.
fn placement_settings(
    owner_tag: (Option<(String, String)>, Option<String>),
    bounded_load: Option<f64>,
    vnodes: Option<u32>,
) -> Result<PlacementConfig, String> {
    let mut placement = PlacementConfig::default();
    placement.filter = match owner_tag {
        (Some(tag), _) => Some(tag),
        (None, Some(text)) => Some(parse_tag(&text).map_err(|e| format!("owner_tag: {e}"))?),
        (None, None) => None,
    };
    if let Some(c) = bounded_load {
        let bounded = BoundedLoad::new(c).map_err(|e| format!("bounded load: {e}"))?;
        placement.policy = LoadPolicy::Bounded(bounded);
    }
    if let Some(v) = vnodes {
        placement.vnodes_per_member = v;
    }
    Ok(placement)
}

/// The keys and the file they came from: the flag, then SWIMRING_KEY_FILE (both through
/// clap), then SWIMRING_KEY, then the config file.
fn key_settings(
    flag: Option<PathBuf>,
    env: Option<String>,
    file: Option<PathBuf>,
) -> Result<(Vec<Key>, Option<PathBuf>), String> {
    let key_file = match (flag, &env) {
        (Some(path), _) => Some(path),
        (None, Some(_)) => None,
        (None, None) => file,
    };
    let keys = match (&key_file, env) {
        (Some(path), _) => read_key_file(path)?,
        (None, Some(env)) => parse_key_env(&env)?,
        (None, None) => Vec::new(),
    };
    Ok((keys, key_file))
}

impl AgentArgs {
    /// Applies the precedence: flags and environment (already merged by clap), then the
    /// config file, then defaults.
    pub fn resolve(self) -> Result<Settings, String> {
        let file = match &self.config {
            None => FileSettings::default(),
            Some(path) => read_config_file(path)?,
        };
        let tags = non_empty(self.meta)
            .map(|v| v.into_iter().collect())
            .or(file.meta)
            .unwrap_or_default();
        let mut tasks = non_empty(self.tasks).or(file.tasks).unwrap_or_default();
        if let Some(path) = self.tasks_file.or(file.tasks_file) {
            tasks.extend(read_tasks_file(&path)?);
        }
        tasks.sort();
        tasks.dedup();
        let placement = placement_settings(
            (self.owner_tag, file.owner_tag),
            self.bounded_load.or(file.bounded_load),
            self.vnodes.or(file.vnodes),
        )?;
        let handlers = non_empty(self.handlers)
            .or(file.handlers)
            .unwrap_or_default()
            .iter()
            .map(|h| Handler::parse(h))
            .collect::<Result<Vec<_>, _>>()?;
        let leave_timeout = self.leave_timeout.or(file.leave_timeout).unwrap_or(5.0);
        let leave_timeout = seconds("leave timeout", leave_timeout)?;
        let join_wait = self.join_wait.or(file.join_wait);
        let join_wait = join_wait.map(|s| seconds("join wait", s)).transpose()?;
        let (keys, key_file) = key_settings(self.key_file, self.key_env, file.key_file)?;
        let (control, control_token) = control_settings(
            (self.control, file.control),
            self.control_token_file.or(file.control_token_file),
        )?;
        Ok(Settings {
            keys,
            key_file,
            insecure_plaintext: self.insecure_plaintext || file.insecure_plaintext == Some(true),
            protocol: file.protocol.unwrap_or_default(),
            name: self.name.or(file.name),
            bind: self
                .bind
                .or(file.bind)
                .unwrap_or_else(|| "0.0.0.0:7946".parse().expect("valid literal")),
            advertise: self.advertise.or(file.advertise),
            seeds: non_empty(self.seeds).or(file.seeds).unwrap_or_default(),
            tags,
            preset: self.profile.or(file.profile).unwrap_or(Profile::Lan).into(),
            cluster: self.cluster.or(file.cluster).unwrap_or_default(),
            control,
            control_token,
            metrics: self.metrics.or(file.metrics),
            log_level: self.log_level.or(file.log_level).unwrap_or(LogLevel::Info),
            tasks,
            placement,
            events: self.events.or(file.events).unwrap_or(EventFormat::Human),
            handlers,
            leave_timeout,
            join_wait,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(name: &str, text: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("swimring-settings-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn flags_win_over_file_and_file_over_defaults() {
        let file = write(
            "a.toml",
            "name = \"from-file\"\ncluster = \"blue\"\nseeds = [\"s:1\"]\nprofile = \"local\"\n[meta]\nrole = \"worker\"\n",
        );
        let args = AgentArgs {
            name: Some("from-flag".into()),
            config: Some(file),
            ..Default::default()
        };
        let s = args.resolve().unwrap();
        assert_eq!(s.name.as_deref(), Some("from-flag"));
        assert_eq!(s.cluster, "blue");
        assert_eq!(s.seeds, ["s:1"]);
        assert_eq!(s.preset, Preset::Local);
        assert_eq!(s.tags["role"], "worker");
        assert_eq!(s.control, Endpoint::default_socket());
        assert_eq!(s.bind, "0.0.0.0:7946".parse().unwrap());
    }

    #[test]
    fn handlers_come_from_the_flags_or_the_file_and_bad_ones_are_refused() {
        let file = write(
            "h.toml",
            "handlers = [\"member_dead=./page.sh\", \"./all.sh\"]\n",
        );
        let from_file = AgentArgs {
            config: Some(file.clone()),
            ..Default::default()
        };
        let expect = ["member_dead=./page.sh", "./all.sh"].map(|h| Handler::parse(h).unwrap());
        assert_eq!(from_file.resolve().unwrap().handlers, expect);
        let from_flag = AgentArgs {
            config: Some(file),
            handlers: vec!["./flag.sh".into()],
            ..Default::default()
        };
        assert_eq!(
            from_flag.resolve().unwrap().handlers,
            [Handler::parse("./flag.sh").unwrap()]
        );
        let bad = AgentArgs {
            handlers: vec!["member_gone=./x".into()],
            ..Default::default()
        };
        assert!(bad.resolve().unwrap_err().contains("unknown event kind"));
    }

    #[test]
    fn keys_come_from_the_flag_then_the_environment_then_the_file() {
        let (a, b) = (Key::from_bytes([1; 32]), Key::from_bytes([2; 32]));
        let file_a = write("a.keys", &format!("{}\n", a.to_base64()));
        let config = write(
            "k.toml",
            &format!(
                "key_file = {:?}\ninsecure_plaintext = true\n",
                file_a.display().to_string()
            ),
        );
        let from_file = AgentArgs {
            config: Some(config.clone()),
            ..Default::default()
        }
        .resolve()
        .unwrap();
        assert_eq!(from_file.keys.first(), Some(&a));
        assert_eq!(from_file.keys.len(), 1);
        assert!(from_file.insecure_plaintext);
        let from_env = AgentArgs {
            config: Some(config.clone()),
            key_env: Some(b.to_base64()),
            ..Default::default()
        }
        .resolve()
        .unwrap();
        assert_eq!(from_env.keys.first(), Some(&b));
        assert_eq!(from_env.keys.len(), 1);
        let from_flag = AgentArgs {
            config: Some(config),
            key_env: Some(b.to_base64()),
            key_file: Some(file_a),
            ..Default::default()
        }
        .resolve()
        .unwrap();
        assert_eq!(from_flag.keys, [a]);
        let none = AgentArgs::default().resolve().unwrap();
        assert!(none.keys.is_empty() && !none.insecure_plaintext);
    }

    #[test]
    fn protocol_table_is_read_and_typos_are_refused() {
        let file = write(
            "p.toml",
            "profile = \"lan\"\n[protocol]\nsuspicion_mult = 2\nprobe_interval_ms = 800\n",
        );
        let s = AgentArgs {
            config: Some(file),
            ..Default::default()
        }
        .resolve()
        .unwrap();
        assert_eq!(s.protocol.suspicion_mult, Some(2));
        assert_eq!(s.protocol.probe_interval_ms, Some(800));
        let typo = write("q.toml", "[protocol]\nsuspicion_mul = 2\n");
        let err = AgentArgs {
            config: Some(typo),
            ..Default::default()
        }
        .resolve()
        .unwrap_err();
        assert!(err.contains("suspicion_mul"), "{err}");
    }

    #[test]
    fn join_wait_comes_from_the_flag_then_the_file_and_must_be_seconds() {
        let file = write("jw.toml", "join_wait = 2.5\n");
        let from_file = AgentArgs {
            config: Some(file.clone()),
            ..Default::default()
        };
        assert_eq!(
            from_file.resolve().unwrap().join_wait,
            Some(Duration::from_millis(2500))
        );
        let from_flag = AgentArgs {
            config: Some(file),
            join_wait: Some(0.0),
            ..Default::default()
        };
        assert_eq!(from_flag.resolve().unwrap().join_wait, Some(Duration::ZERO));
        assert_eq!(AgentArgs::default().resolve().unwrap().join_wait, None);
        for bad in [-1.0, f64::NAN] {
            let err = AgentArgs {
                join_wait: Some(bad),
                ..Default::default()
            }
            .resolve()
            .unwrap_err();
            assert!(err.starts_with("invalid join wait"), "{err}");
        }
    }

    #[test]
    fn tasks_come_from_flags_and_file_deduplicated() {
        let list = write("tasks.txt", "# work\nb\n\na\n");
        let args = AgentArgs {
            tasks: vec!["a".into(), "c".into()],
            tasks_file: Some(list),
            ..Default::default()
        };
        assert_eq!(args.resolve().unwrap().tasks, ["a", "b", "c"]);
    }

    #[test]
    fn bad_files_are_clear_errors() {
        let bad = write("bad.toml", "nmae = \"typo\"\n");
        let err = AgentArgs {
            config: Some(bad),
            ..Default::default()
        }
        .resolve()
        .unwrap_err();
        assert!(
            err.contains("invalid config file") && err.contains("nmae"),
            "{err}"
        );
        let missing = AgentArgs {
            config: Some("/nonexistent/swimring.toml".into()),
            ..Default::default()
        };
        assert!(
            missing
                .resolve()
                .unwrap_err()
                .contains("cannot read config file")
        );
        assert_eq!(
            parse_tag("novalue").unwrap_err(),
            "expected KEY=VALUE, got \"novalue\""
        );
    }

    #[test]
    fn placement_comes_from_flags_then_the_file_and_bad_values_are_refused() {
        let file = write(
            "pl.toml",
            "owner_tag = \"role=worker\"\nbounded_load = 1.5\nvnodes = 64\n",
        );
        let s = AgentArgs {
            config: Some(file.clone()),
            ..Default::default()
        }
        .resolve()
        .unwrap();
        assert_eq!(s.placement.filter, Some(("role".into(), "worker".into())));
        assert_eq!(
            s.placement.policy,
            LoadPolicy::Bounded(BoundedLoad::new(1.5).unwrap())
        );
        assert_eq!(s.placement.vnodes_per_member, 64);
        let s = AgentArgs {
            config: Some(file),
            owner_tag: Some(("zone".into(), "a".into())),
            ..Default::default()
        }
        .resolve()
        .unwrap();
        assert_eq!(s.placement.filter, Some(("zone".into(), "a".into())));
        assert_eq!(
            AgentArgs::default().resolve().unwrap().placement,
            PlacementConfig::default()
        );
        let err = AgentArgs {
            bounded_load: Some(0.5),
            ..Default::default()
        }
        .resolve()
        .unwrap_err();
        assert!(err.starts_with("bounded load:"), "{err}");
        let bad_tag = write("bt.toml", "owner_tag = \"worker\"\n");
        let err = AgentArgs {
            config: Some(bad_tag),
            ..Default::default()
        }
        .resolve()
        .unwrap_err();
        assert!(
            err.contains("owner_tag") && err.contains("KEY=VALUE"),
            "{err}"
        );
    }
}
