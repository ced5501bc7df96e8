//! Helpers for tests that run the real `swimring` binary: processes killed however a test
//! ends, one-shot commands, their JSON, an agent's log as it grows, and bounded waits.
#![allow(dead_code)] // each test file uses its own subset

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;

#[path = "../wait/mod.rs"]
mod wait;
pub use wait::wait_for;

pub const BIN: &str = env!("CARGO_BIN_EXE_swimring");

/// Processes started by a test; killed when it ends, however it ends.
pub struct Agents(pub Vec<Child>);

impl Drop for Agents {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// The binary, with no control endpoint or log filter leaking in from the environment.
pub fn swimring() -> Command {
    let mut cmd = Command::new(BIN);
    cmd.env_remove("SWIMRING_CONTROL")
        .env_remove("SWIMRING_LOG")
        .env_remove("SWIMRING_KEY");
    cmd
}

pub fn run(args: &[&str]) -> Output {
    swimring().args(args).output().expect("the binary runs")
}

/// Runs `swimring ARGS`, which must succeed (else its stderr is the failure), and returns
/// its stdout, trimmed.
pub fn stdout_of(args: &[&str]) -> String {
    let out = run(args);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

pub fn json(args: &[&str]) -> Option<Value> {
    let out = run(args);
    out.status
        .success()
        .then(|| serde_json::from_slice(&out.stdout).expect("--json prints one JSON object"))
}

/// What a child wrote to stderr so far, read by a thread as it arrives.
#[derive(Clone, Default)]
pub struct Log(Arc<Mutex<String>>);

impl Log {
    /// Starts collecting `child`'s stderr (it must be piped).
    pub fn of(child: &mut Child) -> Log {
        let log = Log::default();
        let stderr = child.stderr.take().expect("stderr is piped");
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let mut s = sink.0.lock().unwrap();
                s.push_str(&line);
                s.push('\n');
            }
        });
        log
    }

    pub fn text(&self) -> String {
        self.0.lock().unwrap().clone()
    }

    pub fn has(&self, needle: &str) -> bool {
        self.0.lock().unwrap().contains(needle)
    }
}

/// Starts `swimring ARGS` with stdout piped and its stderr collected.
pub fn spawn_logged(args: &[&str]) -> (Child, Log) {
    let mut child = swimring()
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary runs");
    let log = Log::of(&mut child);
    (child, log)
}

/// `swimring agent` named `name` on `ip` with the `local` profile, gossip on `ip:7946`,
/// control on `ip:7373`, and `extra` flags.
pub fn agent(ip: &str, name: &str, extra: &[&str]) -> (Child, Log) {
    let (bind, control) = (format!("{ip}:7946"), format!("{ip}:7373"));
    let mut args = vec!["agent", "--profile", "local", "--name", name];
    args.extend(["--bind", &bind, "--control", &control]);
    args.extend(extra);
    spawn_logged(&args)
}

/// A fresh directory for `test`'s files, private to this test process.
pub fn temp_dir(test: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("swimring-{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Waits for `child` to exit, at most `limit`; its status if it did.
pub fn exit_within(child: &mut Child, limit: Duration) -> Option<std::process::ExitStatus> {
    wait::poll(limit, || {
        child.try_wait().expect("the child can be waited on")
    })
}

/// Sends a signal by name (`HUP`, `TERM`, `KILL`) with kill(1).
pub fn signal(child: &Child, name: &str) {
    let ok = Command::new("kill")
        .args([&format!("-{name}"), &child.id().to_string()])
        .status()
        .expect("kill runs")
        .success();
    assert!(ok, "kill -{name} failed");
}

/// Name and state of each member the agent at `control` knows.
pub fn states(control: &str) -> Vec<(String, String)> {
    json(&["members", "--json", "--control", control])
        .map(|v| {
            v["members"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| {
                    let name = m["name"].as_str().unwrap().to_owned();
                    (name, m["state"].as_str().unwrap().to_owned())
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Asserts `args` fail with exactly one stderr line containing `expect`.
pub fn one_line_error(args: &[&str], expect: &str) {
    let out = run(args);
    assert!(!out.status.success(), "{args:?} should fail");
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.lines().count(), 1, "one line for {args:?}: {err}");
    assert!(err.contains(expect), "{args:?}: {err}");
    assert!(!err.contains("panicked"), "{err}");
}
