//! The agent's HTTP endpoint: Prometheus metrics at `/metrics`, a health check at `/health`.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use prometheus_client::registry::Registry;
use swimring::Mesh;
use tokio::net::TcpListener;

/// The content type of the Prometheus text format.
const TEXT_FORMAT: &str = "text/plain; version=0.0.4; charset=utf-8";

struct Served {
    registry: Registry,
    mesh: Mesh,
    /// Started without seeds: alone by choice is healthy.
    alone_by_choice: bool,
}

/// Binds `addr` now, so a port in use is an error at start, not later.
pub async fn bind(addr: std::net::SocketAddr) -> Result<TcpListener, String> {
    TcpListener::bind(addr)
        .await
        .map_err(|e| format!("cannot bind the metrics endpoint {addr}: {e}"))
}

/// Serves until the task is aborted.
pub async fn serve(listener: TcpListener, mesh: Mesh, alone_by_choice: bool) {
    let mut registry = Registry::default();
    swimring::metrics::register(&mut registry, &mesh);
    let state = Arc::new(Served {
        registry,
        mesh,
        alone_by_choice,
    });
    let app = Router::new()
        .route("/metrics", get(metrics))
        .route("/health", get(health))
        .with_state(state);
    if let Err(e) = axum::serve(listener, app).await {
        tracing::warn!(error = %e, "the metrics endpoint stopped");
    }
}

async fn metrics(State(s): State<Arc<Served>>) -> impl IntoResponse {
    let mut text = String::new();
    match prometheus_client::encoding::prometheus_text::encode(&mut text, &s.registry) {
        Ok(()) => (StatusCode::OK, [(header::CONTENT_TYPE, TEXT_FORMAT)], text),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            [(header::CONTENT_TYPE, "text/plain")],
            format!("cannot encode the metrics: {e}\n"),
        ),
    }
}

/// 200 while the loop runs and the agent has a live peer (or runs alone by choice, without
/// seeds); 503 otherwise, with the reason: not joined yet, or cut off later (every peer it
/// knew is dead or gone, as on the small side of a partition). A readiness probe, not a
/// liveness one: restarting a cut-off agent would not bring its network back.
async fn health(State(s): State<Arc<Served>>) -> impl IntoResponse {
    let peers = s.mesh.live_count().saturating_sub(1);
    let (code, why) = if !s.mesh.is_running() {
        (StatusCode::SERVICE_UNAVAILABLE, "stopped".to_owned())
    } else if peers > 0 {
        (StatusCode::OK, format!("ok: {peers} live peers"))
    } else if s.alone_by_choice {
        (StatusCode::OK, "ok: alone (no seeds)".to_owned())
    } else if s.mesh.stats().protocol.states_merged == 0 {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "no live peer: not joined".to_owned(),
        )
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "no live peer: every peer is dead or gone (cut off?)".to_owned(),
        )
    };
    (code, format!("{why}\n"))
}
