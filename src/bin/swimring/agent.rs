//! `swimring agent`: one peer, its control and metrics endpoints, its events, a reload on
//! SIGHUP and a graceful exit.

use std::sync::Arc;
use std::time::Instant;

use swimring::control::{
    AgentFacts, Auth, Endpoint, Listener, MeshHandler, event_json, leave_logged, serve,
    task_change_json, user_event_json,
};
use swimring::{Event, Events, Mesh, RecvError, TaskChanges, UserEvents};
use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio::sync::Notify;

use crate::handler::Handlers;
use crate::logging::{self, Logging};
use crate::reload;
use crate::settings::{AgentArgs, EventFormat, Settings};

/// Prints one JSON line; a closed stdout (a pipe whose reader left) is not worth dying for.
fn emit(v: &serde_json::Value) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{v}");
    let _ = out.flush();
}

/// A secret file others can read hands them the mesh or the agent: say so (it still starts).
pub fn warn_if_readable_by_others(path: &std::path::Path, what: &str) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = std::fs::metadata(path)
        && meta.permissions().mode() & 0o077 != 0
    {
        tracing::warn!(file = %path.display(), "the {what} file is readable by other users: chmod 600 it");
    }
}

/// The signals the agent answers, installed before the mesh starts: a SIGTERM that arrives
/// as soon as peers can see this agent must still mean a graceful leave, and a SIGHUP a
/// reload, not the default instant death.
struct Signals {
    term: Signal,
    int: Signal,
    hup: Signal,
}

impl Signals {
    fn install() -> Result<Signals, String> {
        let on = |k| signal(k).map_err(|e| format!("cannot install a signal handler: {e}"));
        Ok(Signals {
            term: on(SignalKind::terminate())?,
            int: on(SignalKind::interrupt())?,
            hup: on(SignalKind::hangup())?,
        })
    }
}

/// Why the agent's loop ended.
enum Outcome {
    /// A signal asked for a graceful leave.
    Leave,
    /// The mesh stopped (a `leave` request already left).
    Stopped,
    /// This agent's name belongs to a live member elsewhere.
    Conflict(String),
}

async fn start(s: &Settings) -> Result<(Mesh, Events, TaskChanges), String> {
    let mut builder = Mesh::builder()
        .bind(s.bind)
        .seeds(s.seeds.clone())
        .tags(&s.tags)
        .preset(s.preset)
        .configure(|c| s.protocol.apply(c))
        .label(s.cluster.clone())
        .tasks(s.tasks.clone())
        .placement(s.placement.clone())
        .keys(s.keys.clone())
        .allow_plaintext(s.insecure_plaintext);
    if let Some(name) = &s.name {
        builder = builder.name(name.clone());
    }
    if let Some(a) = s.advertise {
        builder = builder.advertise(a);
    }
    if let Some(wait) = s.join_wait {
        builder = builder.join_wait(wait);
    }
    // Subscribed before anything happens: the first events are the joins.
    builder.start_subscribed().await.map_err(|e| e.to_string())
}

#[allow(clippy::disallowed_methods)] // the agent's uptime starts from a real instant
pub async fn run(args: AgentArgs) -> Result<(), String> {
    let mut s = args.clone().resolve()?;
    let logging = logging::init(s.log_level);
    if let Some(path) = &s.key_file {
        warn_if_readable_by_others(path, "key");
    }
    let mut signals = Signals::install()?;
    let auth = s
        .control_token
        .as_deref()
        .map_or_else(Auth::none, Auth::token);
    let control = Listener::bind(&s.control, &auth)
        .await
        .map_err(|e| e.to_string())?;
    let metrics = match s.metrics {
        Some(addr) => Some(crate::http::bind(addr).await?),
        None => None,
    };
    let (mesh, events, tasks) = start(&s).await?;
    let user_events = mesh.user_events();
    let facts = AgentFacts {
        profile: format!("{:?}", s.preset).to_lowercase(),
        control: s.control.to_string(),
        metrics: s.metrics.map(|a| a.to_string()),
        started: Instant::now(),
    };
    let handler = MeshHandler::new(mesh.clone(), s.leave_timeout)
        .with_facts(facts)
        .with_logs(Arc::clone(&logging.tap));
    let stopped = handler.stopped();
    let server = tokio::spawn(serve(control, Arc::new(handler), auth));
    let http =
        metrics.map(|l| tokio::spawn(crate::http::serve(l, mesh.clone(), s.seeds.is_empty())));
    tracing::info!(name = mesh.name(), gossip = %mesh.local_addr(), control = %s.control,
        metrics = ?s.metrics, tasks = s.tasks.len(), "agent running");
    let feeds = (events, tasks, user_events, stopped);
    let outcome = watch(&mesh, feeds, &mut signals, (&args, &mut s, &logging)).await;
    if let Outcome::Leave = outcome {
        let _ = leave_logged(&mesh, s.leave_timeout).await;
    }
    server.abort();
    if let Some(h) = http {
        h.abort();
    }
    if let Endpoint::Unix(path) = &s.control {
        let _ = std::fs::remove_file(path);
    }
    mesh.shutdown().await;
    match outcome {
        Outcome::Conflict(message) => Err(message),
        Outcome::Leave | Outcome::Stopped => Ok(()),
    }
}

/// The refusal a newcomer gets when its name is a live member's elsewhere.
fn conflict(mesh: &Mesh, e: &Event) -> Option<String> {
    let Event::NameConflict {
        name,
        existing,
        claimant,
    } = e
    else {
        return None;
    };
    (name == mesh.name() && *claimant == mesh.advertise_addr()).then(|| {
        format!(
            "the name {name:?} belongs to a live member at {existing}: choose another --name (if that member is an earlier run of this agent on another address, start again once peers have declared it dead)"
        )
    })
}

/// Prints events, task changes and user events, answers signals, until the agent should
/// stop.
async fn watch(
    mesh: &Mesh,
    feeds: (Events, TaskChanges, UserEvents, Arc<Notify>),
    signals: &mut Signals,
    config: (&AgentArgs, &mut Settings, &Logging),
) -> Outcome {
    let (mut events, mut tasks, mut user_events, stopped) = feeds;
    let (args, settings, logging) = config;
    let mut handlers = Handlers::start(settings.handlers.clone(), mesh.name());
    loop {
        let json = settings.events == EventFormat::Json;
        let mut out = |v: &serde_json::Value| {
            if json {
                emit(v);
            }
            handlers.handle(v);
        };
        tokio::select! {
            e = events.recv() => match e {
                Ok(e) => {
                    if let Some(message) = conflict(mesh, &e) {
                        return Outcome::Conflict(message);
                    }
                    out(&event_json(&e));
                }
                Err(RecvError::Lagged(n)) => tracing::warn!(missed = n, "event output fell behind"),
                Err(RecvError::Closed) => return Outcome::Stopped,
            },
            c = tasks.recv() => match c {
                Ok(c) => {
                    if !json {
                        tracing::info!(acquired = ?c.acquired, released = ?c.released, "tasks changed");
                    }
                    task_change_json(mesh.name(), &c).iter().for_each(out);
                }
                Err(RecvError::Lagged(n)) => tracing::warn!(missed = n, "task output fell behind"),
                Err(RecvError::Closed) => return Outcome::Stopped,
            },
            Some(e) = user_events.recv() => {
                if !json {
                    tracing::info!(name = %e.name, from = %e.from, bytes = e.payload.len(), "user event");
                }
                out(&user_event_json(&e));
            },
            _ = signals.int.recv() => return Outcome::Leave,
            _ = signals.term.recv() => return Outcome::Leave,
            _ = signals.hup.recv() => reload::on_hangup(args, settings, mesh, logging).await,
            () = stopped.notified() => return Outcome::Stopped,
        }
    }
}
