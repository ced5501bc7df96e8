//! Event handlers, as serf's: `--handler [KINDS=]CMD` runs `CMD` through `sh -c` for each
//! event the agent sees (or only those of the listed kinds; `user_event:NAME` is a user event
//! of that name, as serf's `user:NAME`), with the event's JSON object, the same one
//! `--events json` prints, on its standard input.
//!
//! Handlers run one at a time, in the order of the events, from a bounded queue, so a slow
//! handler delays the next ones but never the protocol: when the queue is full the event is
//! not handed to the handlers, and the agent says how many were skipped. Each run is bounded
//! by [`RUN_LIMIT`]; what the program writes is logged, a non-zero exit as a warning.

use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use swimring::control::EVENT_KINDS as KINDS;
use tokio::io::AsyncWriteExt;
use tokio::process::Command;
use tokio::sync::mpsc;

/// Events waiting for the handlers; beyond this they are skipped and counted.
const QUEUE: usize = 256;

/// The longest one handler run may take before it is killed.
pub const RUN_LIMIT: Duration = Duration::from_secs(30);

/// One `--handler`: the program, and the kinds it runs for (none: every event).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handler {
    kinds: Vec<Kind>,
    command: String,
}

/// One entry of a handler's filter: an event kind, and for user events perhaps a name.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Kind {
    kind: String,
    name: Option<String>,
}

impl Kind {
    fn parse(s: &str) -> Kind {
        let (kind, name) = match s.split_once(':') {
            Some((kind, name)) => (kind, Some(name.to_owned())),
            None => (s, None),
        };
        Kind {
            kind: kind.to_owned(),
            name,
        }
    }

    fn matches(&self, event: &Value) -> bool {
        event["event"] == self.kind.as_str()
            && self
                .name
                .as_ref()
                .is_none_or(|n| event["name"] == n.as_str())
    }
}

impl Handler {
    /// Parses `[KIND[,KIND...]=]CMD`. The part before the first `=` is a filter only if it
    /// is a comma-separated list of names made of lowercase letters and `_`; otherwise (as in
    /// `FOO=bar ./run.sh`) the whole text is the command.
    pub fn parse(spec: &str) -> Result<Handler, String> {
        let (kinds, command) = match spec.split_once('=') {
            Some((filter, command)) if looks_like_filter(filter) => {
                let kinds: Vec<Kind> = filter.split(',').map(Kind::parse).collect();
                for k in &kinds {
                    if !KINDS.contains(&k.kind.as_str()) {
                        return Err(format!(
                            "unknown event kind {:?} in --handler {spec:?}; kinds: {}",
                            k.kind,
                            KINDS.join(", ")
                        ));
                    }
                    if k.name.is_some() && k.kind != "user_event" {
                        return Err(format!(
                            "only user_event takes a name (user_event:NAME) in --handler {spec:?}"
                        ));
                    }
                }
                (kinds, command)
            }
            _ => (Vec::new(), spec),
        };
        let command = command.trim();
        if command.is_empty() {
            return Err(format!("--handler {spec:?} names no command"));
        }
        Ok(Handler {
            kinds,
            command: command.to_owned(),
        })
    }

    fn wants(&self, event: &Value) -> bool {
        self.kinds.is_empty() || self.kinds.iter().any(|k| k.matches(event))
    }
}

/// Whether `s` reads as a filter: comma-separated kinds of lowercase letters and `_`, each
/// perhaps with `:NAME` (a user event's name, without spaces).
fn looks_like_filter(s: &str) -> bool {
    let kind = |k: &str| !k.is_empty() && k.bytes().all(|b| b.is_ascii_lowercase() || b == b'_');
    let name = |n: &str| !n.is_empty() && !n.contains(char::is_whitespace);
    !s.is_empty()
        && s.split(',').all(|k| match k.split_once(':') {
            Some((k, n)) => kind(k) && name(n),
            None => kind(k),
        })
}

/// The agent's side of the handlers: hands events to the task that runs them.
pub struct Handlers {
    queue: Option<mpsc::Sender<Value>>,
    skipped: u64,
}

impl Handlers {
    /// Starts the task that runs `handlers` for the agent called `agent` (none: nothing runs).
    pub fn start(handlers: Vec<Handler>, agent: &str) -> Handlers {
        if handlers.is_empty() {
            return Handlers {
                queue: None,
                skipped: 0,
            };
        }
        let (tx, rx) = mpsc::channel(QUEUE);
        tokio::spawn(run_all(handlers, agent.to_owned(), rx));
        Handlers {
            queue: Some(tx),
            skipped: 0,
        }
    }

    /// Hands one event (a JSON object with an `"event"` kind) to the handlers.
    pub fn handle(&mut self, event: &Value) {
        let Some(queue) = &self.queue else { return };
        if queue.try_send(event.clone()).is_err() {
            self.skipped += 1;
            tracing::warn!(
                skipped = self.skipped,
                "event handlers fell behind; this event was not handed to them"
            );
        }
    }
}

async fn run_all(handlers: Vec<Handler>, agent: String, mut rx: mpsc::Receiver<Value>) {
    while let Some(event) = rx.recv().await {
        let kind = event["event"].as_str().unwrap_or_default().to_owned();
        for h in handlers.iter().filter(|h| h.wants(&event)) {
            run_one(h, &agent, &kind, &event).await;
        }
    }
}

/// Runs one handler for one event and logs what happened.
async fn run_one(h: &Handler, agent: &str, kind: &str, event: &Value) {
    let child = Command::new("sh")
        .arg("-c")
        .arg(&h.command)
        .env("SWIMRING_EVENT", kind)
        .env("SWIMRING_NAME", agent)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(handler = %h.command, error = %e, "event handler could not start");
            return;
        }
    };
    if let Some(mut stdin) = child.stdin.take() {
        // A handler that does not read its input closes the pipe: that is its choice.
        let _ = stdin.write_all(format!("{event}\n").as_bytes()).await;
    }
    match tokio::time::timeout(RUN_LIMIT, child.wait_with_output()).await {
        Err(_) => tracing::warn!(handler = %h.command, event = kind, limit = ?RUN_LIMIT,
            "event handler killed: it ran past its limit"),
        Ok(Err(e)) => tracing::warn!(handler = %h.command, error = %e, "event handler failed"),
        Ok(Ok(out)) => {
            let text = |b: &[u8]| String::from_utf8_lossy(b).trim_end().to_owned();
            let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
            if out.status.success() {
                tracing::info!(handler = %h.command, event = kind, %stdout, %stderr,
                    "event handler ran");
            } else {
                tracing::warn!(handler = %h.command, event = kind, status = %out.status,
                    %stdout, %stderr, "event handler failed");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(kind: &str, name: &str) -> Value {
        serde_json::json!({"event": kind, "name": name})
    }

    #[test]
    fn a_filter_is_a_list_of_known_kinds_and_anything_else_is_the_command() {
        let h = Handler::parse("member_dead,member_left=/usr/local/bin/page ops").unwrap();
        assert!(h.wants(&event("member_dead", "")) && h.wants(&event("member_left", "")));
        assert!(!h.wants(&event("member_joined", "")));
        assert_eq!(h.command, "/usr/local/bin/page ops");
        let all = Handler::parse("LEVEL=3 ./notify.sh").unwrap();
        assert_eq!(
            all.command, "LEVEL=3 ./notify.sh",
            "an environment assignment, not a filter"
        );
        assert!(all.wants(&event("tasks_acquired", "")));
        let deploy = Handler::parse("user_event:deploy,member_dead=./on-deploy.sh").unwrap();
        assert!(deploy.wants(&event("user_event", "deploy")));
        assert!(!deploy.wants(&event("user_event", "restart")));
        assert!(
            Handler::parse("member_dead:x=./y").is_err(),
            "only user events have names"
        );
        let err = Handler::parse("member_died=./x").unwrap_err();
        assert!(err.contains("unknown event kind \"member_died\""), "{err}");
        assert!(Handler::parse("member_dead=").is_err());
        assert!(Handler::parse("  ").is_err());
    }
}
