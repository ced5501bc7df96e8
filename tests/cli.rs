//! The real `swimring` binary: three agents on loopback, every inspection subcommand against
//! them, JSON that parses, and each error path exiting non-zero with one clear line.
#![allow(clippy::disallowed_methods)] // waits are bounded by wall-clock deadlines

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

mod cli_util;
use cli_util::{Agents, BIN, json, one_line_error, run, states, wait_for};

fn agent(ip: &str, seed: Option<&str>, extra: &[&str]) -> Child {
    let mut cmd = Command::new(BIN);
    cmd.args(["agent", "--profile", "local"])
        .args(["--name", &format!("agent-{ip}")])
        .args(["--bind", &format!("{ip}:7946")])
        .args(["--control", &format!("{ip}:7373")])
        .args(["--task", "alpha", "--task", "beta", "--task", "gamma"])
        .args(extra)
        .env_remove("SWIMRING_CONTROL")
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    if let Some(s) = seed {
        cmd.args(["--seed", s]);
    }
    cmd.spawn().expect("the binary runs")
}

#[test]
fn the_demo_converges_explains_its_balance_and_moves_only_the_dead_nodes_tasks() {
    let out = run(&["demo", "--nodes", "3", "--tasks", "12"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    for line in [
        "converged: every node sees 3 alive members",
        "12 tasks on 3 members; peak/mean",
        "with bounded loads (--bounded-load 1.25) no node would own more than 5",
        "every other task stayed put",
    ] {
        assert!(text.contains(line), "no {line:?} in:\n{text}");
    }
}

/// Generous for the `local` preset (200 ms probes, sub-second suspicion) on a loaded machine.
const BOUND: Duration = Duration::from_secs(60);

#[test]
fn three_agents_answer_every_subcommand() {
    let ips = ["127.79.0.1", "127.79.0.2", "127.79.0.3"];
    let seed = format!("{}:7946", ips[0]);
    let mut agents = Agents(vec![agent(ips[0], None, &["--meta", "role=worker"])]);
    for ip in &ips[1..] {
        agents.0.push(agent(ip, Some(&seed), &[]));
    }
    let controls: Vec<String> = ips.iter().map(|ip| format!("{ip}:7373")).collect();
    wait_for("three agents see three alive", BOUND, || {
        controls.iter().all(|c| {
            let s = states(c);
            s.len() == 3 && s.iter().all(|(_, st)| st == "alive")
        })
    });

    // members: a table for people, JSON with tags for scripts.
    let table = run(&["members", "--control", &controls[1]]);
    let table = String::from_utf8(table.stdout).unwrap();
    assert!(table.starts_with("NAME") && table.contains("agent-127.79.0.3"));
    let members = json(&["members", "--json", "--control", &controls[1]]).unwrap();
    let first = &members["members"][0];
    assert_eq!(first["name"], "agent-127.79.0.1");
    assert_eq!(first["tags"]["role"], "worker");

    // status: the same ring checksum everywhere once views agree. Placement is rebuilt a moment
    // after the view changes, so the owner check below waits for this first.
    wait_for("every agent reports the same ring checksum", BOUND, || {
        let sums: Vec<Value> = controls
            .iter()
            .map(|c| json(&["status", "--json", "--control", c]).unwrap()["ring_checksum"].clone())
            .collect();
        sums.iter().all(|s| *s == sums[0])
    });
    // owner: with equal rings every agent names the same owners, and replicas are distinct.
    let owners: Vec<Value> = controls
        .iter()
        .map(|c| {
            json(&[
                "owner",
                "alpha",
                "--replicas",
                "3",
                "--json",
                "--control",
                c,
            ])
            .unwrap()
        })
        .collect();
    assert!(owners.iter().all(|o| o["owners"] == owners[0]["owners"]));
    let list = owners[0]["owners"].as_array().unwrap();
    assert_eq!(list.len(), 3);
    assert!(list[0] != list[1] && list[1] != list[2] && list[0] != list[2]);
    assert_eq!(owners[0]["task"], true, "alpha is a registered task");
    // A key that is no task still gets its would-be owner, with a note saying so.
    let out = run(&["owner", "not-a-task", "--control", &controls[0]]);
    assert!(out.status.success());
    let note = String::from_utf8_lossy(&out.stderr);
    assert!(note.contains("not a registered task"), "{note}");
    let other = json(&["owner", "not-a-task", "--json", "--control", &controls[0]]).unwrap();
    assert_eq!(other["task"], false);

    // status: members by state, and the agents probe.
    let status = json(&["status", "--json", "--control", &controls[0]]).unwrap();
    assert_eq!(status["members_by_state"]["alive"], 3);
    assert_eq!(status["member"]["name"], "agent-127.79.0.1");
    wait_for("the agent probes its peers", BOUND, || {
        let s = json(&["status", "--json", "--control", &controls[0]]).unwrap();
        s["counters"]["probes_sent"].as_u64().unwrap() > 0
    });

    // tasks: each task owned exactly once across the agents.
    wait_for("each task has one owner", BOUND, || {
        let mut all: Vec<String> = controls
            .iter()
            .flat_map(|c| {
                json(&["tasks", "--json", "--control", c]).unwrap()["tasks"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|t| {
                        assert!(t["token"]["epoch"].is_u64(), "a task without a token: {t}");
                        t["key"].as_str().unwrap().to_owned()
                    })
                    .collect::<Vec<_>>()
            })
            .collect();
        all.sort();
        all == ["alpha", "beta", "gamma"]
    });
    // tasks --all: every member's count, summing to the three tasks, each weighed fairly.
    let balance = json(&["tasks", "--all", "--json", "--control", &controls[0]]).unwrap();
    let counts: Vec<u64> = balance["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            assert_eq!(m["weight"], 100, "{m}");
            m["tasks"].as_u64().unwrap()
        })
        .collect();
    assert_eq!(
        (counts.len(), counts.iter().sum::<u64>()),
        (3, 3),
        "{balance}"
    );
    let text = run(&["tasks", "--all", "--control", &controls[0]]);
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("3 tasks on 3 members; peak/mean"), "{text}");

    // leave: the agent exits 0 and the others see it left, not dead.
    let out = run(&["leave", "--control", &controls[2]]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let status = agents.0[2].wait().unwrap();
    assert!(status.success(), "the agent exits 0 after leaving");
    wait_for("the others see agent 3 left", BOUND, || {
        controls[..2].iter().all(|c| {
            states(c)
                .iter()
                .any(|(n, s)| n == "agent-127.79.0.3" && s == "left")
        })
    });
}

#[test]
fn only_members_with_the_owner_tag_own_tasks() {
    let owner = ["--owner-tag", "role=worker"];
    let mut agents = Agents(vec![agent(
        "127.79.4.1",
        None,
        &[owner[0], owner[1], "--bounded-load", "1.25"],
    )]);
    agents.0.push(agent(
        "127.79.4.2",
        Some("127.79.4.1:7946"),
        &[
            owner[0],
            owner[1],
            "--bounded-load",
            "1.25",
            "--meta",
            "role=worker",
        ],
    ));
    let controls = ["127.79.4.1:7373", "127.79.4.2:7373"];
    let tasks = |c: &str| -> Vec<String> {
        json(&["tasks", "--json", "--control", c])
            .map(|v| {
                v["tasks"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|t| t["key"].as_str().unwrap().to_owned())
                    .collect()
            })
            .unwrap_or_default()
    };
    // Both are members, but only the tagged one owns work, whatever the hashes say.
    wait_for("the tagged agent owns every task", BOUND, || {
        controls.iter().all(|c| states(c).len() == 2)
            && tasks(controls[1]) == ["alpha", "beta", "gamma"]
            && tasks(controls[0]).is_empty()
    });
}

#[test]
fn json_events_are_one_object_per_line() {
    let mut agents = Agents(vec![agent("127.79.1.1", None, &["--events", "json"])]);
    // Tasks of its own as well, so that once joined (it claims nothing before) it owns some
    // of them on the two-member ring, whatever the hashes of the shared three say.
    let own: Vec<String> = (0..16)
        .flat_map(|i| ["--task".into(), format!("own-{i}")])
        .collect();
    let mut extra = vec!["--events", "json"];
    extra.extend(own.iter().map(String::as_str));
    agents
        .0
        .push(agent("127.79.1.2", Some("127.79.1.1:7946"), &extra));
    wait_for("the second agent joins and claims its share", BOUND, || {
        states("127.79.1.1:7373").len() == 2
            && json(&["tasks", "--json", "--control", "127.79.1.2:7373"])
                .is_some_and(|v| v["tasks"].as_array().is_some_and(|t| !t.is_empty()))
    });
    // SIGTERM: graceful leave, exit 0, and the events it printed are JSON lines.
    let pid = agents.0[1].id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let child = agents.0.remove(1);
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "SIGTERM exits 0");
    let lines: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is a JSON object"))
        .collect();
    assert!(
        lines
            .iter()
            .all(|l| l["ts"].as_f64().is_some_and(|t| t > 1.6e9))
    );
    assert!(
        lines
            .iter()
            .any(|l| l["event"] == "member_joined" && l["member"] == "agent-127.79.1.1")
    );
    assert!(lines.iter().any(|l| l["event"] == "tasks_acquired"
        && l["tasks"].is_array()
        && l["token"]["run"].is_u64()));
    wait_for("the first agent sees the second left", BOUND, || {
        states("127.79.1.1:7373")
            .iter()
            .any(|(n, s)| n == "agent-127.79.1.2" && s == "left")
    });
}

#[test]
fn errors_are_one_line_and_non_zero() {
    one_line_error(&["agent", "--bogus"], "unexpected argument");
    one_line_error(&["agent", "--bind", "nowhere"], "invalid socket address");
    one_line_error(&["agent", "--meta", "novalue"], "expected KEY=VALUE");
    one_line_error(&["agent", "--profile", "fast"], "invalid value 'fast'");
    one_line_error(&["agent", "--bounded-load", "0.5"], "bounded load:");
    one_line_error(&["agent", "--owner-tag", "worker"], "expected KEY=VALUE");
    one_line_error(
        &["agent", "--config", "/nonexistent.toml"],
        "cannot read config file",
    );
    one_line_error(&["owner", "k", "--replicas", "0"], "--replicas");
    one_line_error(
        &["members", "--control", "127.79.2.1:1"],
        "cannot reach the agent's control endpoint",
    );
    // A port already in use: the second agent on the same address refuses to start.
    let _first = Agents(vec![agent("127.79.3.1", None, &[])]);
    wait_for("the first agent serves", BOUND, || {
        !states("127.79.3.1:7373").is_empty()
    });
    one_line_error(
        &[
            "agent",
            "--bind",
            "127.79.3.1:7946",
            "--control",
            "127.79.3.2:7373",
        ],
        "Address already in use",
    );
    one_line_error(
        &[
            "agent",
            "--bind",
            "127.79.3.2:7946",
            "--control",
            "127.79.3.1:7373",
        ],
        "cannot bind the control endpoint",
    );
    // A protocol override that breaks a bound names the field.
    let bad = std::env::temp_dir().join(format!("swimring-cli-{}.toml", std::process::id()));
    std::fs::write(&bad, "[protocol]\nprobe_timeout_ms = 5000\n").unwrap();
    one_line_error(
        &[
            "agent",
            "--bind",
            "127.79.3.4:7946",
            "--control",
            "127.79.3.4:7373",
            "--config",
            bad.to_str().unwrap(),
        ],
        "probe_timeout",
    );
    // Oversized metadata is refused before anything starts.
    let big = format!("blob={}", "x".repeat(600));
    one_line_error(
        &[
            "agent",
            "--bind",
            "127.79.3.3:7946",
            "--control",
            "127.79.3.3:7373",
            "--meta",
            &big,
        ],
        "metadata of",
    );
}

#[test]
fn a_plain_agent_beyond_loopback_refuses_to_start_unless_forced() {
    // A free port on every interface: 0.0.0.0 is beyond loopback and needs no privileges.
    let port = std::net::TcpListener::bind("0.0.0.0:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let bind = format!("0.0.0.0:{port}");
    let control = "127.79.4.1:7373";
    one_line_error(
        &["agent", "--bind", &bind, "--control", control],
        "--insecure-plaintext",
    );
    // Forced: it starts (advertising loopback so no route is needed) and serves.
    let forced = Command::new(BIN)
        .args(["agent", "--profile", "local", "--insecure-plaintext"])
        .args(["--bind", &bind, "--control", control])
        .args(["--advertise", &format!("127.0.0.1:{port}")])
        .env_remove("SWIMRING_CONTROL")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let _agents = Agents(vec![forced]);
    wait_for("the forced agent serves", BOUND, || {
        !states(control).is_empty()
    });
    let keys = json(&["keys", "list", "--json", "--control", control]).unwrap();
    assert_eq!(keys["ids"], serde_json::json!([]), "it runs without keys");
}

fn key_id(base64: &str) -> String {
    swimring::wire::Key::from_base64(base64)
        .unwrap()
        .id()
        .to_string()
}

fn ids(control: &str) -> Vec<String> {
    let v = json(&["keys", "list", "--json", "--control", control]).unwrap();
    serde_json::from_value(v["ids"].clone()).unwrap()
}

#[test]
fn keys_rotate_on_running_agents_without_losing_a_member() {
    let keygen = || {
        let out = run(&["keygen"]);
        assert!(out.status.success());
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    };
    let (old, new) = (keygen(), keygen());
    assert_ne!(old, new);
    assert_eq!(key_id(&old).len(), 8, "keygen prints a 32-byte base64 key");
    let dir = std::env::temp_dir().join(format!("swimring-cli-keys-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("cluster.keys");
    std::fs::write(&file, format!("# cluster key\n{old}\n")).unwrap();
    let file = file.to_str().unwrap();

    let ips = ["127.79.5.1", "127.79.5.2"];
    let mut agents = Agents(vec![agent(ips[0], None, &["--key-file", file])]);
    agents.0.push(agent(
        ips[1],
        Some("127.79.5.1:7946"),
        &["--key-file", file],
    ));
    let controls: Vec<String> = ips.iter().map(|ip| format!("{ip}:7373")).collect();
    let both_alive = || {
        controls.iter().all(|c| {
            let s = states(c);
            s.len() == 2 && s.iter().all(|(_, st)| st == "alive")
        })
    };
    wait_for("two keyed agents see each other", BOUND, both_alive);
    for c in &controls {
        assert_eq!(ids(c), [key_id(&old)], "the keys {c} holds");
    }

    // Install (one agent reads the key from stdin), use, remove: views hold at every step.
    let mut install = Command::new(BIN)
        .args(["keys", "install", "-", "--control", &controls[0]])
        .env_remove("SWIMRING_CONTROL")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    use std::io::Write as _;
    install
        .stdin
        .take()
        .unwrap()
        .write_all(new.as_bytes())
        .unwrap();
    assert!(install.wait().unwrap().success());
    assert!(
        run(&["keys", "install", &new, "--control", &controls[1]])
            .status
            .success()
    );
    let step = |args: &[&str]| {
        for c in &controls {
            let mut a = args.to_vec();
            a.extend(["--control", c.as_str()]);
            let out = run(&a);
            assert!(
                out.status.success(),
                "{args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        assert!(both_alive(), "a member was lost after {args:?}");
    };
    step(&["keys", "list"]);
    let new_id = key_id(&new);
    let old_id = key_id(&old);
    step(&["keys", "use", &new_id]);
    assert!(
        controls
            .iter()
            .all(|c| ids(c) == [new_id.clone(), old_id.clone()])
    );
    one_line_error(
        &["keys", "remove", &new_id, "--control", &controls[0]],
        "primary",
    );
    step(&["keys", "remove", &old_id]);
    assert!(controls.iter().all(|c| ids(c) == [new_id.clone()]));
    // Traffic on the new key alone opens everywhere: packets keep arriving, none fails.
    let counter = |c: &str, name: &str| {
        json(&["status", "--json", "--control", c]).unwrap()["counters"][name]
            .as_u64()
            .unwrap()
    };
    let before: Vec<u64> = controls.iter().map(|c| counter(c, "packets_in")).collect();
    wait_for("packets arrive on the new key alone", BOUND, || {
        controls
            .iter()
            .zip(&before)
            .all(|(c, b)| counter(c, "packets_in") > b + 10)
    });
    assert!(controls.iter().all(|c| counter(c, "decrypt_failures") == 0));
    assert!(both_alive());
    one_line_error(
        &["keys", "install", "bm90IGEga2V5", "--control", &controls[0]],
        "invalid key",
    );
}
