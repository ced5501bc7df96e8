//! User events with the real binary: `swimring event NAME PAYLOAD` through one agent is
//! printed as a `user_event` JSON line by every agent's `--events json`, the sender's own
//! included; bad events (no name, too large) end with one line on stderr and a non-zero
//! exit, and nothing is sent.
#![allow(clippy::disallowed_methods)] // waits are bounded by wall-clock deadlines

mod cli_util;

use std::io::{BufRead, BufReader};
use std::process::Child;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use cli_util::{Agents, json, one_line_error, run, states, stdout_of, wait_for};
use serde_json::Value;

/// Generous for the `local` preset on a loaded machine.
const BOUND: Duration = Duration::from_secs(60);

/// An agent named `name` on `ip` with `--events json`, control on `ip:7373`, and `extra`.
fn agent(ip: &str, name: &str, extra: &[&str]) -> Child {
    let args: Vec<&str> = ["--events", "json"]
        .into_iter()
        .chain(extra.iter().copied())
        .collect();
    cli_util::agent(ip, name, &args).0
}

/// The JSON lines `child` prints, read by a thread as they come.
fn json_lines(child: &mut Child) -> mpsc::Receiver<Value> {
    let (tx, rx) = mpsc::channel();
    let out = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for l in BufReader::new(out).lines().map_while(Result::ok) {
            let v = serde_json::from_str(&l).expect("--events json prints JSON lines");
            if tx.send(v).is_err() {
                return;
            }
        }
    });
    rx
}

/// The user events among the lines `rx` gives until `cond` holds of those seen, or the bound.
fn user_events_until(rx: &mpsc::Receiver<Value>, cond: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let deadline = Instant::now() + BOUND;
    let mut seen = Vec::new();
    while !cond(&seen) {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(v) if v["event"] == "user_event" => seen.push(v),
            Ok(_) => {}
            Err(_) => panic!("timed out; user events so far: {seen:?}"),
        }
    }
    seen
}

#[test]
fn an_event_sent_through_one_agent_is_printed_by_every_agent() {
    let (a_ctl, b_ctl) = ("127.80.10.1:7373", "127.80.10.2:7373");
    let mut a = agent("127.80.10.1", "e-a", &[]);
    let mut b = agent("127.80.10.2", "e-b", &["--seed", "127.80.10.1:7946"]);
    let (a_lines, b_lines) = (json_lines(&mut a), json_lines(&mut b));
    let _agents = Agents(vec![a, b]);
    wait_for("a and b see each other alive", BOUND, || {
        let alive = |ctl| states(ctl).iter().filter(|(_, s)| s == "alive").count() == 2;
        alive(a_ctl) && alive(b_ctl)
    });

    assert_eq!(
        stdout_of(&["event", "deploy", "v42", "--control", b_ctl]),
        "event deploy sent (seq 1)"
    );
    for (who, lines) in [("a", &a_lines), ("b, the sender", &b_lines)] {
        let got = user_events_until(lines, |s| !s.is_empty());
        let e = &got[0];
        assert_eq!(
            (&e["name"], &e["payload"], &e["from"], &e["seq"]),
            (
                &Value::from("deploy"),
                &Value::from("v42"),
                &Value::from("e-b"),
                &Value::from(1)
            ),
            "{who}: {e}"
        );
        assert!(e["ts"].as_f64().is_some() && e.get("payload_base64").is_none());
    }

    // Bad events: one line on stderr, a non-zero exit, nothing sent.
    one_line_error(&["event", "", "x", "--control", b_ctl], "needs a name");
    let big = "x".repeat(2000);
    one_line_error(&["event", "deploy", &big, "--control", b_ctl], "exceeds");
    one_line_error(
        &["event", &"n".repeat(65), "--control", b_ctl],
        "exceeds 64",
    );
    let status = json(&["status", "--json", "--control", b_ctl]).unwrap();
    assert_eq!(status["counters"]["user_events_sent"], 1, "{status}");
    // A second event, with no payload, is the next one a prints: the bad ones never came.
    let out = run(&["event", "restart", "--json", "--control", b_ctl]);
    let sent: Value = serde_json::from_slice(&out.stdout).expect("--json prints JSON");
    assert_eq!(
        (&sent["result"], &sent["seq"]),
        (&Value::from("user_event_sent"), &Value::from(2))
    );
    let next = user_events_until(&a_lines, |s| !s.is_empty());
    assert_eq!(
        (&next[0]["name"], &next[0]["payload"]),
        (&Value::from("restart"), &Value::from(""))
    );
}
