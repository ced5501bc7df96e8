//! `swimring agent`: one peer, its control endpoint, its events, and a graceful exit.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::json;
use swimring::control::{MeshHandler, member_info, serve};
use swimring::{Event, Mesh, RecvError, TaskChange};
use tokio::net::TcpListener;
use tokio::signal::unix::{SignalKind, signal};

use crate::settings::{AgentArgs, EventFormat};

/// Logs for people go to stderr, so stdout carries only JSON events when asked for.
pub fn init_logging(default: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("SWIMRING_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .try_init();
}

#[allow(clippy::disallowed_methods)] // the CLI stamps events with wall-clock time
fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

fn event_json(e: &Event) -> serde_json::Value {
    match e {
        Event::NameConflict {
            name,
            existing,
            claimant,
        } => json!({
            "ts": unix_now(), "event": e.kind(), "member": name,
            "existing": existing.to_string(), "claimant": claimant.to_string(),
        }),
        _ => {
            let m = e.member().map(member_info);
            json!({
                "ts": unix_now(),
                "event": e.kind(),
                "member": m.as_ref().map(|m| m.name.clone()),
                "addr": m.as_ref().map(|m| m.addr.clone()),
                "state": m.as_ref().map(|m| m.state.clone()),
                "incarnation": m.as_ref().map(|m| m.incarnation),
                "run": m.as_ref().map(|m| m.run),
                "tags": m.map(|m| m.tags),
            })
        }
    }
}

fn tasks_json(local: &str, c: &TaskChange) -> Vec<serde_json::Value> {
    let mut out = Vec::new();
    let checksum = format!("{:016x}", c.ring_checksum);
    for (kind, tasks) in [
        ("tasks_acquired", &c.acquired),
        ("tasks_released", &c.released),
    ] {
        if !tasks.is_empty() {
            out.push(json!({
                "ts": unix_now(), "event": kind, "member": local,
                "tasks": tasks, "ring_checksum": checksum,
            }));
        }
    }
    out
}

/// Prints one JSON line; a closed stdout (a pipe whose reader left) is not worth dying for.
fn emit(v: &serde_json::Value) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{v}");
    let _ = out.flush();
}

/// A key file others can read hands them the mesh: say so (the agent still starts).
fn warn_if_readable_by_others(path: &std::path::Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = std::fs::metadata(path)
        && meta.permissions().mode() & 0o077 != 0
    {
        tracing::warn!(file = %path.display(), "the key file is readable by other users: chmod 600 it");
    }
}

pub async fn run(args: AgentArgs) -> Result<(), String> {
    let s = args.resolve()?;
    init_logging("swimring=info");
    if let Some(path) = &s.key_file {
        warn_if_readable_by_others(path);
    }
    // Before the mesh starts: a SIGTERM that arrives as soon as peers can see this agent
    // must still mean a graceful leave, not the default instant death.
    let mut sigterm = signal(SignalKind::terminate()).map_err(|e| e.to_string())?;
    let mut sigint = signal(SignalKind::interrupt()).map_err(|e| e.to_string())?;
    let control = TcpListener::bind(s.control)
        .await
        .map_err(|e| format!("cannot bind the control endpoint {}: {e}", s.control))?;
    if !s.control.ip().is_loopback() {
        tracing::warn!(control = %s.control, "the control endpoint is reachable beyond this host and has no authentication");
    }
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
    // Subscribed before anything happens: the first events are the joins.
    let (mesh, mut events, mut tasks) = builder
        .start_subscribed()
        .await
        .map_err(|e| e.to_string())?;
    let handler = Arc::new(MeshHandler::new(mesh.clone(), s.leave_timeout));
    let stopped = handler.stopped();
    let server = tokio::spawn(serve(control, handler));
    tracing::info!(name = mesh.name(), gossip = %mesh.local_addr(), control = %s.control, tasks = s.tasks.len(), "agent running");
    let json = s.events == EventFormat::Json;
    let graceful = loop {
        tokio::select! {
            e = events.recv() => match e {
                Ok(e) if json => emit(&event_json(&e)),
                Ok(_) => {}
                Err(RecvError::Lagged(n)) => tracing::warn!(missed = n, "event output fell behind"),
                Err(RecvError::Closed) => break false,
            },
            c = tasks.recv() => match c {
                Ok(c) if json => tasks_json(mesh.name(), &c).iter().for_each(emit),
                Ok(c) => tracing::info!(acquired = ?c.acquired, released = ?c.released, "tasks changed"),
                Err(RecvError::Lagged(n)) => tracing::warn!(missed = n, "task output fell behind"),
                Err(RecvError::Closed) => break false,
            },
            _ = sigint.recv() => break true,
            _ = sigterm.recv() => break true,
            () = stopped.notified() => break false,
        }
    };
    if graceful {
        tracing::info!(timeout = ?s.leave_timeout, "leaving the mesh");
        match mesh.leave(s.leave_timeout).await {
            Ok(true) => tracing::info!("left"),
            Ok(false) => tracing::warn!("leave timed out before every peer was told"),
            Err(e) => tracing::warn!(error = %e, "leave failed"),
        }
    }
    server.abort();
    mesh.shutdown().await;
    Ok(())
}
