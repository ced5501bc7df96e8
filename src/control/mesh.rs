//! The control endpoint over a running [`Mesh`]: what `swimring agent` serves.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{Notify, broadcast, mpsc};

use super::events::{event_json, task_change_json, unix_now};
use super::logtap::{LogTap, parse_level};
use super::{AgentInfo, Handler, LogLine, MemberInfo, Request, Response, StatusInfo};
use crate::error::Error;
use crate::proto::Member;
use crate::runtime::{Events, Mesh, RecvError, TaskChanges};
use crate::wire::{Key, KeyId};

/// Most owners one `owner` request may list.
const MAX_REPLICAS: usize = 1000;
/// Answers held for a slow monitor client before its stream waits.
const MONITOR_QUEUE: usize = 256;

/// What the agent knows about itself that the mesh does not: for `swimring info`.
#[derive(Debug, Clone)]
pub struct AgentFacts {
    /// Timing profile name.
    pub profile: String,
    /// The control endpoint, as given.
    pub control: String,
    /// The metrics endpoint, if served.
    pub metrics: Option<String>,
    /// When the agent started.
    pub started: Instant,
}

/// Answers control requests from a mesh's own view. A `leave` request leaves gracefully and
/// then wakes [`MeshHandler::stopped`], so the process can exit.
pub struct MeshHandler {
    mesh: Mesh,
    leave_timeout: Duration,
    stopped: Arc<Notify>,
    facts: Option<AgentFacts>,
    logs: Option<Arc<LogTap>>,
}

impl MeshHandler {
    /// A handler for `mesh`; a `leave` request waits at most `leave_timeout` for the leave to
    /// be gossiped.
    pub fn new(mesh: Mesh, leave_timeout: Duration) -> MeshHandler {
        MeshHandler {
            mesh,
            leave_timeout,
            stopped: Arc::new(Notify::new()),
            facts: None,
            logs: None,
        }
    }

    /// Answers `info` with these facts (without them, `info` is refused).
    pub fn with_facts(mut self, facts: AgentFacts) -> MeshHandler {
        self.facts = Some(facts);
        self
    }

    /// Streams log lines from `tap` to monitors that ask for them.
    pub fn with_logs(mut self, tap: Arc<LogTap>) -> MeshHandler {
        self.logs = Some(tap);
        self
    }

    /// Notified once a `leave` request has been served.
    pub fn stopped(&self) -> Arc<Notify> {
        Arc::clone(&self.stopped)
    }

    fn info(&self) -> Response {
        let Some(f) = &self.facts else {
            return error("this endpoint does not describe its agent");
        };
        let m = &self.mesh;
        Response::Info(Box::new(AgentInfo {
            name: m.name().to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            protocol_version: crate::wire::codec::VERSION,
            uptime_secs: f.started.elapsed().as_secs(),
            profile: f.profile.clone(),
            keys: m.keys().iter().map(KeyId::to_string).collect(),
            gossip: m.local_addr().to_string(),
            advertise: m.advertise_addr().to_string(),
            control: f.control.clone(),
            metrics: f.metrics.clone(),
        }))
    }

    async fn set_tags(&self, set: BTreeMap<String, String>, delete: Vec<String>) -> Response {
        if let Some(k) = set
            .keys()
            .chain(&delete)
            .find(|k| k.is_empty() || k.contains('='))
        {
            return error(&format!("invalid tag key {k:?}: not empty, no '='"));
        }
        let edit = move |tags: &mut BTreeMap<String, String>| {
            for k in &delete {
                tags.remove(k);
            }
            tags.extend(set);
        };
        match self.mesh.update_tags(edit).await {
            Ok(()) => Response::Tags {
                tags: self.mesh.local().tags(),
            },
            Err(e) => error(&e.to_string()),
        }
    }
}

fn error(message: &str) -> Response {
    Response::Error {
        message: message.to_owned(),
    }
}

/// Leaves gracefully and logs it the one way, whether a signal or `swimring leave` asked:
/// "leaving the mesh", then "left" or why not. Returns whether the leave was disseminated.
pub async fn leave_logged(mesh: &Mesh, timeout: Duration) -> Result<bool, Error> {
    tracing::info!(?timeout, "leaving the mesh");
    let r = mesh.leave(timeout).await;
    match &r {
        Ok(true) => tracing::info!("left"),
        Ok(false) => tracing::warn!("left, but the leave timed out before every peer was told"),
        Err(e) => tracing::warn!(error = %e, "leave failed"),
    }
    r
}

/// A member as the control endpoint shows it. Metadata that is not tags shows as none.
pub fn member_info(m: &Member) -> MemberInfo {
    MemberInfo {
        name: m.name.clone(),
        addr: m.addr.to_string(),
        state: m.state.as_str().to_owned(),
        incarnation: m.incarnation,
        run: m.run,
        tags: m.tags(),
    }
}

fn status(mesh: &Mesh) -> StatusInfo {
    let members = mesh.members();
    let mut by_state: BTreeMap<String, usize> = BTreeMap::new();
    for m in &members {
        *by_state.entry(m.state.as_str().to_owned()).or_default() += 1;
    }
    let st = mesh.stats();
    StatusInfo {
        member: member_info(&mesh.local()),
        health_score: st.protocol.health_score,
        ring_checksum: format!("{:016x}", mesh.ring_checksum()),
        members_by_state: by_state,
        counters: st
            .counters()
            .into_iter()
            .map(|c| (c.name.to_string(), c.value))
            .collect(),
    }
}

/// The key list after a key request, or why it was refused.
fn keys_after(mesh: &Mesh, done: Result<(), Error>) -> Response {
    match done {
        Ok(()) => Response::Keys {
            ids: mesh.keys().iter().map(KeyId::to_string).collect(),
        },
        Err(e) => error(&e.to_string()),
    }
}

impl Handler for MeshHandler {
    async fn handle(&self, req: Request) -> Response {
        match req {
            Request::Members => Response::Members {
                members: self.mesh.members().iter().map(member_info).collect(),
            },
            Request::Owner { key, replicas } => match self.mesh.is_task(key.as_str()).await {
                Ok(task) => Response::Owner {
                    owners: self.mesh.owners(&key, replicas.clamp(1, MAX_REPLICAS)),
                    key,
                    task,
                },
                Err(e) => Response::Error {
                    message: e.to_string(),
                },
            },
            Request::Status => Response::Status(Box::new(status(&self.mesh))),
            Request::Tasks { all: false } => Response::Tasks {
                tasks: self.mesh.owned_tasks(),
            },
            Request::Tasks { all: true } => Response::Balance(self.mesh.balance()),
            Request::Leave => match leave_logged(&self.mesh, self.leave_timeout).await {
                Ok(disseminated) => {
                    self.stopped.notify_one();
                    Response::Left { disseminated }
                }
                Err(e) => error(&e.to_string()),
            },
            Request::ListKeys => keys_after(&self.mesh, Ok(())),
            Request::InstallKey { key } => {
                let done = Key::from_base64(&key.0)
                    .map_err(Error::from)
                    .and_then(|k| self.mesh.install_key(k));
                keys_after(&self.mesh, done)
            }
            Request::UseKey { id } => {
                let done = id
                    .parse::<KeyId>()
                    .map_err(Error::from)
                    .and_then(|id| self.mesh.use_key(id));
                keys_after(&self.mesh, done)
            }
            Request::RemoveKey { id } => {
                let done = id
                    .parse::<KeyId>()
                    .map_err(Error::from)
                    .and_then(|id| self.mesh.remove_key(id));
                keys_after(&self.mesh, done)
            }
            Request::Join { seeds } if seeds.is_empty() => error("join needs at least one seed"),
            Request::Join { seeds } => match self.mesh.join(seeds).await {
                Ok(answered) => Response::Joined { answered },
                Err(e) => error(&e.to_string()),
            },
            Request::ForceLeave { name, prune } => {
                match self.mesh.force_leave(&name, prune).await {
                    Ok(m) => Response::ForcedLeave {
                        member: member_info(&m),
                        pruned: prune,
                    },
                    Err(e) => error(&e.to_string()),
                }
            }
            Request::SetTags { set, delete } => self.set_tags(set, delete).await,
            Request::Info => self.info(),
            Request::UserEvent { name, payload } => {
                match self.mesh.broadcast(name.clone(), payload).await {
                    Ok(seq) => Response::UserEventSent { name, seq },
                    Err(e) => error(&e.to_string()),
                }
            }
            Request::Monitor { .. } => error("monitor is a streaming request"),
        }
    }

    fn stream(&self, req: &Request) -> Option<mpsc::Receiver<Response>> {
        let Request::Monitor { logs } = req else {
            return None;
        };
        let (tx, rx) = mpsc::channel(MONITOR_QUEUE);
        let logs = match (logs.as_deref().map(parse_level), &self.logs) {
            (None, _) => None,
            (Some(Err(e)), _) => {
                let _ = tx.try_send(error(&e));
                return Some(rx);
            }
            (Some(Ok(_)), None) => {
                let _ = tx.try_send(error("this endpoint does not stream logs"));
                return Some(rx);
            }
            (Some(Ok(level)), Some(tap)) => Some(tap.subscribe(level)),
        };
        let feeds = (self.mesh.events(), self.mesh.task_changes(), logs);
        tokio::spawn(monitor(tx, feeds, self.mesh.name().to_owned()));
        Some(rx)
    }
}

type LogFeed = Option<(broadcast::Receiver<LogLine>, u8)>;

/// The next log line at the subscriber's level; never, without logs.
async fn next_log(logs: &mut LogFeed) -> LogLine {
    let Some((rx, threshold)) = logs else {
        return std::future::pending().await;
    };
    loop {
        match rx.recv().await {
            Ok(line) if LogTap::passes(&line, *threshold) => return line,
            Ok(_) => {}
            Err(broadcast::error::RecvError::Lagged(n)) => return lagged(n, "log lines"),
            Err(broadcast::error::RecvError::Closed) => return std::future::pending().await,
        }
    }
}

/// A warning line in the stream: the monitor read too slowly and missed `n` items.
fn lagged(n: u64, what: &str) -> LogLine {
    LogLine {
        ts_ms: (unix_now() * 1000.0) as u64,
        level: "warn".into(),
        message: format!("monitor fell behind: {n} {what} missed"),
    }
}

/// Forwards events, task changes and log lines to one monitor until it hangs up or the mesh
/// stops.
async fn monitor(tx: mpsc::Sender<Response>, feeds: (Events, TaskChanges, LogFeed), local: String) {
    let (mut events, mut tasks, mut logs) = feeds;
    loop {
        let answers = tokio::select! {
            () = tx.closed() => return,
            e = events.recv() => match e {
                Ok(e) => vec![Response::Event { event: event_json(&e) }],
                Err(RecvError::Lagged(n)) => vec![Response::Log(lagged(n, "events"))],
                Err(RecvError::Closed) => return,
            },
            c = tasks.recv() => match c {
                Ok(c) => task_change_json(&local, &c)
                    .into_iter()
                    .map(|event| Response::Event { event })
                    .collect(),
                Err(RecvError::Lagged(n)) => vec![Response::Log(lagged(n, "task changes"))],
                Err(RecvError::Closed) => return,
            },
            line = next_log(&mut logs) => vec![Response::Log(line)],
        };
        for a in answers {
            if tx.send(a).await.is_err() {
                return;
            }
        }
    }
}
