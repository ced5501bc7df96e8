//! Operating agents with the real binary: metrics and health over HTTP, monitor, join,
//! force-leave, tags, info, leave, a reload on SIGHUP, the control socket and its token,
//! truthful join logs, name conflicts, validation and generated docs.
#![allow(clippy::disallowed_methods)] // waits are bounded by wall-clock deadlines

mod cli_util;

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::process::Child;
use std::sync::mpsc;
use std::time::Duration;

use cli_util::{
    Agents, agent, exit_within, json, one_line_error, run, signal, spawn_logged, states, stdout_of,
    temp_dir, wait_for,
};

/// Generous for the `local` preset (200 ms probes, sub-second suspicion) on a loaded machine.
const BOUND: Duration = Duration::from_secs(60);

/// GET `url` with a real HTTP client: status and body (errors as status 0).
fn get(url: &str) -> (u16, String) {
    match ureq::get(url)
        .config()
        .http_status_as_error(false)
        .build()
        .call()
    {
        Ok(mut r) => (
            r.status().as_u16(),
            r.body_mut().read_to_string().unwrap_or_default(),
        ),
        Err(_) => (0, String::new()),
    }
}

/// The scrape parsed by a Prometheus text-format parser.
fn scrape(addr: &str) -> prometheus_parse::Scrape {
    let (code, body) = get(&format!("http://{addr}/metrics"));
    assert_eq!(code, 200, "{body}");
    let lines = body.lines().map(|l| Ok(l.to_owned()));
    prometheus_parse::Scrape::parse(lines).expect("the text format parses")
}

fn value(s: &prometheus_parse::Scrape, name: &str, label: Option<(&str, &str)>) -> Option<f64> {
    s.samples
        .iter()
        .find(|x| x.metric == name && label.is_none_or(|(k, v)| x.labels.get(k) == Some(v)))
        .map(|x| match x.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => v,
            _ => f64::NAN,
        })
}

#[test]
fn metrics_and_health_are_served_and_parse() {
    let (a, _) = agent("127.80.0.1", "m-a", &["--metrics", "127.80.0.1:9100"]);
    let (b, _) = agent(
        "127.80.0.2",
        "m-b",
        &["--seed", "127.80.0.1:7946", "--metrics", "127.80.0.2:9100"],
    );
    // A seed nobody answers at: not joined, so unhealthy.
    let (c, _) = agent(
        "127.80.0.3",
        "m-c",
        &["--seed", "127.80.0.9:7946", "--metrics", "127.80.0.3:9100"],
    );
    let mut agents = Agents(vec![a, b, c]);
    wait_for(
        "b's metrics show two alive and answered probes",
        BOUND,
        || {
            let (code, _) = get("http://127.80.0.2:9100/metrics");
            code == 200 && {
                let s = scrape("127.80.0.2:9100");
                value(&s, "swimring_members", Some(("state", "alive"))) == Some(2.0)
                    && value(&s, "swimring_probe_rtt_seconds_count", None).is_some_and(|n| n > 0.0)
            }
        },
    );
    let s = scrape("127.80.0.2:9100");
    // Every counter of MeshStats, under its own name.
    for c in [
        "probes_sent",
        "decrypt_failures",
        "replays_dropped",
        "deaths_declared",
        "suspicions_confirmed",
        "stream_bytes_out",
    ] {
        assert!(
            value(&s, &format!("swimring_{c}_total"), None).is_some(),
            "{c}"
        );
    }
    assert!(value(&s, "swimring_probes_sent_total", None).unwrap() > 0.0);
    assert_eq!(value(&s, "swimring_tasks_owned", None), Some(0.0));
    assert!(value(&s, "swimring_health_score", None).is_some());
    let ring = s
        .samples
        .iter()
        .find(|x| x.metric == "swimring_ring_info")
        .unwrap();
    let status = json(&["status", "--json", "--control", "127.80.0.2:7373"]).unwrap();
    wait_for("the ring info names the status checksum", BOUND, || {
        let s = scrape("127.80.0.2:9100");
        let r = s
            .samples
            .iter()
            .find(|x| x.metric == "swimring_ring_info")
            .unwrap();
        let now = json(&["status", "--json", "--control", "127.80.0.2:7373"]).unwrap();
        r.labels.get("checksum") == now["ring_checksum"].as_str()
    });
    assert!(ring.labels.get("checksum").is_some() && status["ring_checksum"].is_string());
    // Health: joined, alone by choice, and not joined.
    assert_eq!(get("http://127.80.0.2:9100/health").0, 200);
    assert_eq!(get("http://127.80.0.1:9100/health").0, 200);
    let (code, why) = get("http://127.80.0.3:9100/health");
    assert_eq!((code, why.trim()), (503, "no live peer: not joined"));
    // Later, cut off: b's only peer dies, and b is unready again though it had joined.
    agents.0[0].kill().unwrap();
    wait_for("b is unready once its only peer is dead", BOUND, || {
        get("http://127.80.0.2:9100/health")
            == (
                503,
                "no live peer: every peer is dead or gone (cut off?)\n".to_owned(),
            )
    });
}

#[test]
fn a_metrics_port_in_use_is_one_line_and_nothing_starts() {
    let taken = std::net::TcpListener::bind("127.80.1.1:0").unwrap();
    let port = taken.local_addr().unwrap().to_string();
    one_line_error(
        &[
            "agent",
            "--profile",
            "local",
            "--bind",
            "127.80.1.1:7946",
            "--control",
            "127.80.1.1:7373",
            "--metrics",
            &port,
        ],
        "cannot bind the metrics endpoint",
    );
    // Nothing was left listening on the control port.
    assert!(std::net::TcpStream::connect("127.80.1.1:7373").is_err());
}

/// Lines a `swimring monitor` child prints, as they come.
fn lines_of(child: &mut Child) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    let out = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for l in BufReader::new(out).lines().map_while(Result::ok) {
            if tx.send(l).is_err() {
                return;
            }
        }
    });
    rx
}

fn recv_until(
    rx: &mpsc::Receiver<String>,
    what: &str,
    mut cond: impl FnMut(&str) -> bool,
) -> String {
    let deadline = std::time::Instant::now() + BOUND;
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match rx.recv_timeout(left) {
            Ok(l) if cond(&l) => return l,
            Ok(_) => {}
            Err(_) => panic!("timed out waiting for {what}"),
        }
    }
}

#[test]
fn monitor_join_tags_info_force_leave_and_leave_on_running_agents() {
    let a_ctl = "127.80.2.1:7373";
    let (a, a_log) = agent("127.80.2.1", "o-a", &[]);
    let mut agents = Agents(vec![a]);
    wait_for("a answers", BOUND, || !states(a_ctl).is_empty());
    let (mut mon, _) = spawn_logged(&["monitor", "--json", "--logs", "info", "--control", a_ctl]);
    let lines = lines_of(&mut mon);
    agents.0.push(mon);
    // join at runtime: b starts alone, then is told to join a.
    let (b, _) = agent("127.80.2.2", "o-b", &["--meta", "role=web"]);
    agents.0.push(b);
    wait_for("b answers", BOUND, || !states("127.80.2.2:7373").is_empty());
    assert_eq!(
        stdout_of(&["join", "127.80.2.1:7946", "--control", "127.80.2.2:7373"]),
        "joined: 1 seeds answered"
    );
    // Both an event and (at info) the agent's log line about it, in either order.
    let (mut event, mut logged) = (false, false);
    recv_until(&lines, "a monitor event and log line for o-b", |l| {
        let about_b = l.contains("member_joined") && l.contains("o-b");
        event |= about_b && l.starts_with(r#"{"result":"event""#);
        logged |= about_b && l.starts_with(r#"{"result":"log""#);
        event && logged
    });

    // tags set and delete, seen by the other agent.
    let out = run(&[
        "tags",
        "set",
        "zone=eu",
        "tier=1",
        "--control",
        "127.80.2.2:7373",
    ]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "role=web\ntier=1\nzone=eu\n"
    );
    run(&["tags", "delete", "tier", "--control", "127.80.2.2:7373"]);
    wait_for("a sees b's tags", BOUND, || {
        json(&[
            "members",
            "--json",
            "--tag",
            "zone=eu",
            "--status",
            "alive",
            "--control",
            a_ctl,
        ])
        .is_some_and(|v| {
            let m = &v["members"];
            m.as_array().map(Vec::len) == Some(1)
                && m[0]["name"] == "o-b"
                && m[0]["tags"].get("tier").is_none()
        })
    });
    let none = json(&["members", "--json", "--status", "dead", "--control", a_ctl]).unwrap();
    assert_eq!(none["members"].as_array().unwrap().len(), 0);

    // info.
    let info = json(&["info", "--json", "--control", a_ctl]).unwrap();
    assert_eq!(info["name"], "o-a");
    assert_eq!(info["profile"], "local");
    assert_eq!(info["control"], a_ctl);
    assert_eq!(info["metrics"], serde_json::Value::Null);
    assert_eq!(info["version"], env!("CARGO_PKG_VERSION"));

    // force-leave: refused for a live or unknown member, then b dies and is forced out.
    one_line_error(
        &["force-leave", "o-b", "--control", a_ctl],
        "only a dead member",
    );
    one_line_error(
        &["force-leave", "nobody", "--control", a_ctl],
        "no member named \"nobody\"",
    );
    let b = &mut agents.0[2];
    signal(b, "KILL");
    let _ = b.wait();
    wait_for("a declares b dead", BOUND, || {
        states(a_ctl).contains(&("o-b".into(), "dead".into()))
    });
    let out = run(&["force-leave", "o-b", "--control", a_ctl]);
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "o-b: left");
    assert!(states(a_ctl).contains(&("o-b".into(), "left".into())));
    let out = run(&["force-leave", "o-b", "--prune", "--control", a_ctl]);
    assert!(out.status.success());
    assert!(!states(a_ctl).iter().any(|(n, _)| n == "o-b"));

    // leave: the same log lines as SIGINT, and the reply says whether it was disseminated.
    let out = run(&["leave", "--control", a_ctl]);
    assert!(
        String::from_utf8_lossy(&out.stdout).starts_with("left"),
        "{out:?}"
    );
    wait_for("a logs its leave", BOUND, || {
        a_log.has("leaving the mesh") && a_log.has(" left")
    });
    assert_eq!(
        exit_within(&mut agents.0[0], BOUND).map(|s| s.success()),
        Some(true)
    );
}

#[test]
fn bad_input_to_commands_is_one_line_and_changes_nothing() {
    let ctl = "127.80.3.1:7373";
    let (a, _) = agent("127.80.3.1", "b-a", &["--meta", "role=web"]);
    let _agents = Agents(vec![a]);
    wait_for("a answers", BOUND, || !states(ctl).is_empty());
    one_line_error(
        &["tags", "set", "novalue", "--control", ctl],
        "expected KEY=VALUE",
    );
    one_line_error(
        &["tags", "delete", "k=v", "--control", ctl],
        "invalid tag key",
    );
    one_line_error(
        &["members", "--status", "gone", "--control", ctl],
        "possible values: alive, suspect, dead, left",
    );
    one_line_error(
        &["monitor", "--logs", "loud", "--control", ctl],
        "possible values",
    );
    one_line_error(
        &["join", "127.0.0.1:noport", "--control", ctl],
        "cannot resolve seed",
    );
    one_line_error(
        &["agent", "--events", "yaml"],
        "possible values: human, json",
    );
    one_line_error(
        &["members", "--control", "localhost"],
        "expected HOST:PORT or unix:PATH",
    );
    let tags = json(&["members", "--json", "--control", ctl]).unwrap();
    assert_eq!(
        tags["members"][0]["tags"],
        serde_json::json!({"role": "web"})
    );
}

#[test]
fn a_wrong_key_is_named_and_not_counted_as_joined() {
    let (k1, k2) = (run(&["keygen"]).stdout, run(&["keygen"]).stdout);
    let dir = temp_dir("wrongkey");
    let (f1, f2) = (dir.join("k1"), dir.join("k2"));
    std::fs::write(&f1, &k1).unwrap();
    std::fs::write(&f2, &k2).unwrap();
    for f in [&f1, &f2] {
        std::fs::set_permissions(f, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let (a, _) = agent("127.80.4.1", "k-a", &["--key-file", f1.to_str().unwrap()]);
    let mut agents = Agents(vec![a]);
    wait_for("a answers", BOUND, || !states("127.80.4.1:7373").is_empty());
    let (b, b_log) = agent(
        "127.80.4.2",
        "k-b",
        &[
            "--seed",
            "127.80.4.1:7946",
            "--key-file",
            f2.to_str().unwrap(),
        ],
    );
    agents.0.push(b);
    wait_for("b says why it did not join", BOUND, || {
        b_log.has("wrong key or cluster label?")
    });
    assert!(!b_log.has("joined through the seeds"), "{}", b_log.text());
    assert!(b_log.has("no seed answered"), "{}", b_log.text());
    assert_eq!(states("127.80.4.2:7373").len(), 1);
}

#[test]
fn a_newcomer_with_a_live_members_name_exits_with_a_message() {
    let (a, _) = agent("127.80.5.1", "dup", &[]);
    let mut agents = Agents(vec![a]);
    wait_for("a answers", BOUND, || !states("127.80.5.1:7373").is_empty());
    let (b, b_log) = agent("127.80.5.2", "dup", &["--seed", "127.80.5.1:7946"]);
    agents.0.push(b);
    let status = exit_within(&mut agents.0[1], BOUND).expect("the newcomer exits");
    assert!(!status.success());
    wait_for("the newcomer says why", BOUND, || {
        b_log.has("belongs to a live member at 127.80.5.1:7946")
    });
    // The original keeps its name and its address.
    let m = json(&["members", "--json", "--control", "127.80.5.1:7373"]).unwrap();
    assert_eq!(m["members"][0]["addr"], "127.80.5.1:7946");
}

#[test]
fn sighup_reloads_tags_tasks_and_log_level_and_refuses_a_new_bind() {
    let dir = temp_dir("reload");
    let config = dir.join("agent.toml");
    let base = "profile = \"local\"\nname = \"r-a\"\nbind = \"127.80.6.1:7946\"\ncontrol = \"127.80.6.1:7373\"\n";
    std::fs::write(
        &config,
        format!("{base}tasks = [\"t1\"]\n[meta]\nrole = \"web\"\n"),
    )
    .unwrap();
    let (a, log) = spawn_logged(&["agent", "--config", config.to_str().unwrap()]);
    let mut agents = Agents(vec![a]);
    let ctl = "127.80.6.1:7373";
    wait_for("a answers", BOUND, || !states(ctl).is_empty());
    let tasks = |ctl: &str| -> Vec<String> {
        let v = json(&["tasks", "--json", "--control", ctl]).unwrap();
        let list = v["tasks"].as_array().cloned().unwrap_or_default();
        list.iter()
            .filter_map(|t| t["key"].as_str().map(str::to_owned))
            .collect()
    };
    wait_for("a owns t1", BOUND, || tasks(ctl) == ["t1"]);
    std::fs::write(
        &config,
        format!("{base}log_level = \"debug\"\ntasks = [\"t1\", \"t2\"]\n[meta]\nrole = \"db\"\n"),
    )
    .unwrap();
    signal(&agents.0[0], "HUP");
    wait_for("the reload is logged", BOUND, || {
        log.has("configuration reloaded")
    });
    let text = log.text();
    assert!(
        text.contains("tags") && text.contains("tasks") && text.contains("log_level"),
        "{text}"
    );
    let m = json(&["members", "--json", "--control", ctl]).unwrap();
    assert_eq!(m["members"][0]["tags"]["role"], "db");
    wait_for("a owns t1 and t2", BOUND, || tasks(ctl) == ["t1", "t2"]);
    // A new bind cannot apply live: refused, named, and the agent runs on as it was.
    let moved = base.replace("127.80.6.1:7946", "127.80.6.2:7946");
    std::fs::write(&config, format!("{moved}[meta]\nrole = \"x\"\n")).unwrap();
    signal(&agents.0[0], "HUP");
    wait_for("the refusal is logged", BOUND, || log.has("reload refused"));
    assert!(log.text().contains("bind"), "{}", log.text());
    let m = json(&["members", "--json", "--control", ctl]).unwrap();
    assert_eq!(m["members"][0]["tags"]["role"], "db");
    assert!(
        agents.0[0].try_wait().unwrap().is_none(),
        "the agent keeps running"
    );
}

#[test]
fn the_control_socket_is_private_and_tcp_beyond_loopback_needs_a_token() {
    let dir = temp_dir("control");
    let sock = dir.join("agent.sock");
    let unix = format!("unix:{}", sock.display());
    let (a, _) = spawn_logged(&[
        "agent",
        "--profile",
        "local",
        "--bind",
        "127.80.7.1:7946",
        "--control",
        &unix,
    ]);
    let mut agents = Agents(vec![a]);
    wait_for("the socket answers", BOUND, || !states(&unix).is_empty());
    let mode = std::fs::metadata(&sock).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    // A second agent on the same socket is refused; the first keeps it.
    one_line_error(
        &[
            "agent",
            "--profile",
            "local",
            "--bind",
            "127.80.7.2:7946",
            "--control",
            &unix,
        ],
        "another agent already serves",
    );
    assert!(!states(&unix).is_empty());
    // TCP beyond loopback without a token: refused before anything starts.
    one_line_error(
        &[
            "agent",
            "--profile",
            "local",
            "--bind",
            "127.80.7.3:7946",
            "--control",
            "0.0.0.0:17373",
        ],
        "without a token",
    );
    // A TCP endpoint with a token refuses requests without it; host names work.
    let token = dir.join("token");
    std::fs::write(&token, "a-token-of-sixteen-or-more\n").unwrap();
    std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o600)).unwrap();
    let t = token.to_str().unwrap();
    let (b, _) = spawn_logged(&[
        "agent",
        "--profile",
        "local",
        "--bind",
        "127.0.0.1:17946",
        "--control",
        "localhost:17373",
        "--control-token-file",
        t,
    ]);
    agents.0.push(b);
    let with = [
        "members",
        "--json",
        "--control",
        "localhost:17373",
        "--control-token-file",
        t,
    ];
    wait_for("the token opens the TCP endpoint", BOUND, || {
        json(&with).is_some()
    });
    one_line_error(&["members", "--control", "localhost:17373"], "unauthorized");
    // The agent removes its socket when it stops.
    signal(&agents.0[0], "TERM");
    assert!(exit_within(&mut agents.0[0], BOUND).is_some());
    assert!(!sock.exists());
}

/// The agent arguments of each deployment manifest, with the pod's variables filled in.
fn manifest_args() -> Vec<(String, Vec<String>)> {
    let root = env!("CARGO_MANIFEST_DIR");
    let unit = std::fs::read_to_string(format!("{root}/examples/deploy/swimring.service")).unwrap();
    let exec = unit
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .expect("an ExecStart");
    let systemd: Vec<String> = exec.split_whitespace().skip(1).map(str::to_owned).collect();
    let k8s = std::fs::read_to_string(format!("{root}/examples/deploy/statefulset.yaml")).unwrap();
    let args = k8s
        .lines()
        .find_map(|l| l.trim().strip_prefix("args: "))
        .expect("an args line");
    let pod: Vec<String> = serde_json::from_str::<Vec<String>>(args)
        .expect("args is a JSON flow list")
        .into_iter()
        .map(|a| {
            a.replace("$(POD_IP)", "127.80.8.1")
                .replace("$(POD_NAME)", "swimring-0")
        })
        .collect();
    vec![("systemd".into(), systemd), ("kubernetes".into(), pod)]
}

#[test]
fn every_example_config_and_manifest_validates() {
    let root = env!("CARGO_MANIFEST_DIR");
    let dir = temp_dir("validate");
    let key = dir.join("key");
    std::fs::write(&key, run(&["keygen"]).stdout).unwrap();
    let mut configs = 0;
    for entry in std::fs::read_dir(format!("{root}/examples/config")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            configs += 1;
            let out = cli_util::swimring()
                .args(["validate", "--config", path.to_str().unwrap()])
                .env("SWIMRING_KEY_FILE", &key)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}: {}",
                path.display(),
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
    assert!(configs >= 2, "examples/config holds the example configs");
    for (what, args) in manifest_args() {
        assert_eq!(args[0], "agent", "{what}");
        let mut cmd = cli_util::swimring();
        cmd.arg("validate")
            .args(&args[1..])
            .env("SWIMRING_KEY_FILE", &key);
        if what == "systemd" {
            // The unit's config file is examples/config/agent.toml, installed.
            let at = args.iter().position(|a| a == "--config").unwrap() + 1;
            assert_eq!(args[at], "/etc/swimring/agent.toml");
            let mut a = args[1..].to_vec();
            a[at - 1] = format!("{root}/examples/config/agent.toml");
            cmd = cli_util::swimring();
            cmd.arg("validate").args(&a).env("SWIMRING_KEY_FILE", &key);
        }
        let out = cmd.output().unwrap();
        assert!(
            out.status.success(),
            "{what}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let bad = dir.join("bad.toml");
    std::fs::write(
        &bad,
        "bind = \"127.0.0.1:7946\"\n[protocol]\nsuspicion_mult = 0\n",
    )
    .unwrap();
    one_line_error(
        &["validate", "--config", bad.to_str().unwrap()],
        "protocol:",
    );
    std::fs::write(&bad, "control = \"localhost\"\n").unwrap();
    one_line_error(&["validate", "--config", bad.to_str().unwrap()], "control:");
}

#[test]
fn completions_and_the_man_page_come_from_the_flags() {
    let bash = run(&["generate", "completions", "bash"]);
    let bash = String::from_utf8(bash.stdout).unwrap();
    assert!(bash.contains("force-leave") && bash.contains("--control-token-file"));
    let man = run(&["generate", "man"]);
    let man = String::from_utf8(man.stdout).unwrap();
    assert!(
        man.starts_with(".ie") || man.contains(".TH swimring"),
        "{}",
        &man[..200.min(man.len())]
    );
    one_line_error(&["generate", "completions", "tcsh"], "invalid value 'tcsh'");
}

#[test]
fn seed_retries_are_logged_with_their_backoff_and_a_bad_seed_is_reported() {
    // A seed that never resolves (its port is not a number: no lookup leaves this host) and
    // one that nobody answers at.
    let (a, log) = agent(
        "127.80.9.1",
        "s-a",
        &["--seed", "127.0.0.1:noport", "--seed", "127.80.9.2:7946"],
    );
    let _agents = Agents(vec![a]);
    wait_for("a retry is logged at INFO with its backoff", BOUND, || {
        log.has("retrying the seeds") && log.has("next_retry_in")
    });
    wait_for("the bad seed is reported, not dropped", BOUND, || {
        log.has("a seed does not resolve; still retrying it") && log.has("127.0.0.1:noport")
    });
}
