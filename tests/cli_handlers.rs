//! Event handlers with the real binary: `--handler [KINDS=]CMD` runs a program per event with
//! the event's JSON on stdin, only for the kinds it names, and a bad spec stops nothing but
//! the agent that was given it.
#![allow(clippy::disallowed_methods)] // waits are bounded by wall-clock deadlines

mod cli_util;

use std::path::Path;
use std::time::Duration;

use cli_util::{Agents, agent, one_line_error, signal, stdout_of, temp_dir, wait_for};
use serde_json::{Value, json};

/// Generous for the `local` preset (200 ms probes, sub-second suspicion) on a loaded machine.
const BOUND: Duration = Duration::from_secs(60);

/// The JSON objects a handler appended to `path`, one per line.
fn objects(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line a JSON object"))
        .collect()
}

fn has(objects: &[Value], event: &str, member: &str) -> bool {
    objects
        .iter()
        .any(|o| o["event"] == event && o["member"] == member)
}

#[test]
fn handlers_run_per_event_for_the_kinds_they_name() {
    let dir = temp_dir("handlers");
    let filtered = dir.join("filtered.jsonl");
    let every = dir.join("every.txt");
    let deploys = dir.join("deploys.jsonl");
    let deploy_cmd = format!("user_event:deploy=cat >> {}", deploys.display());
    let filtered_cmd = format!("member_joined,member_dead=cat >> {}", filtered.display());
    let every_cmd = format!(
        "echo \"$SWIMRING_EVENT $SWIMRING_NAME\" >> {}",
        every.display()
    );
    let (a, log) = agent(
        "127.81.1.1",
        "h-a",
        &[
            "--handler",
            &filtered_cmd,
            "--handler",
            &every_cmd,
            "--handler",
            "member_joined=exit 3",
            "--handler",
            &deploy_cmd,
            "--task",
            "t0",
        ],
    );
    let (b, _) = agent(
        "127.81.1.2",
        "h-b",
        &["--seed", "127.81.1.1:7946", "--task", "t1"],
    );
    let mut agents = Agents(vec![a, b]);
    wait_for("h-a's handler hears h-b join", BOUND, || {
        has(&objects(&filtered), "member_joined", "h-b")
    });
    // User events by name: h-b sends two, the filter takes one.
    for (name, payload) in [("restart", "now"), ("deploy", "v42")] {
        stdout_of(&["event", name, payload, "--control", "127.81.1.2:7373"]);
    }
    wait_for("both user events reach h-a's handlers", BOUND, || {
        let text = std::fs::read_to_string(&every).unwrap_or_default();
        text.matches("user_event h-a").count() == 2
    });
    let deployed = objects(&deploys);
    assert_eq!(deployed.len(), 1, "{deployed:?}");
    assert_eq!(
        (
            &deployed[0]["name"],
            &deployed[0]["payload"],
            &deployed[0]["from"]
        ),
        (&json!("deploy"), &json!("v42"), &json!("h-b"))
    );
    signal(&agents.0[1], "KILL");
    let _ = agents.0[1].wait();
    wait_for("h-a's handler hears h-b die", BOUND, || {
        has(&objects(&filtered), "member_dead", "h-b")
    });
    // Handlers run in turn for each event, so once the unfiltered one has seen a task change,
    // the filtered one has passed it by.
    wait_for("h-a's tasks changed too", BOUND, || {
        std::fs::read_to_string(&every)
            .unwrap_or_default()
            .contains("tasks_acquired h-a")
    });
    let seen = objects(&filtered);
    assert!(
        seen.iter()
            .all(|o| o["event"] == "member_joined" || o["event"] == "member_dead"),
        "the filtered handler ran only for its kinds: {seen:?}"
    );
    wait_for("the unfiltered handler saw the same events", BOUND, || {
        let text = std::fs::read_to_string(&every).unwrap_or_default();
        text.contains("member_joined h-a") && text.contains("member_dead h-a")
    });
    wait_for("a failing handler is logged", BOUND, || {
        log.has("event handler failed") && log.has("exit status: 3")
    });
}

#[test]
fn a_bad_handler_spec_is_one_line() {
    one_line_error(
        &[
            "agent",
            "--profile",
            "local",
            "--handler",
            "member_died=./x",
        ],
        "unknown event kind \"member_died\"",
    );
    one_line_error(
        &["agent", "--profile", "local", "--handler", "member_dead="],
        "names no command",
    );
}
