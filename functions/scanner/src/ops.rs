//! A worker's operational endpoints, whatever its ingress: `GET /healthz` (the process
//! answers), `GET /readyz` (it takes work now: connected to its queue or broker and not
//! draining; `503` with the reason otherwise) and `GET /metrics` (Prometheus, see
//! [`crate::prom`], with the token). The webhook serves them beside its events; the SQS and
//! AMQP workers serve them when `HASHGATE_HTTP_LISTEN` is set, which Kubernetes' probes and
//! a Prometheus scrape need.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde_json::json;

use crate::app::DeployedApp;
use crate::prom::WorkerMetrics;
use crate::webhook::authorized;

/// Where the operational endpoints listen, and the token `/metrics` takes
/// (`HASHGATE_HTTP_LISTEN`, `HASHGATE_HTTP_TOKEN`).
#[derive(Clone)]
pub struct OpsConfig {
    pub listen: SocketAddr,
    pub token: String,
}

/// The token is a secret: never in a log line.
impl std::fmt::Debug for OpsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpsConfig")
            .field("listen", &self.listen)
            .field("token", &"<redacted>")
            .finish()
    }
}

/// Whether a worker takes work now, and if not, why. Starts not ready: a worker is ready
/// once its ingress says so (a first successful receive, a consumer on the queue).
#[derive(Debug)]
pub struct Readiness {
    draining: AtomicBool,
    not_ready: Mutex<Option<String>>,
}

impl Readiness {
    pub fn new(why_not_yet: &str) -> Readiness {
        Readiness {
            draining: AtomicBool::new(false),
            not_ready: Mutex::new(Some(why_not_yet.to_string())),
        }
    }

    pub fn ready(&self) {
        *self.not_ready.lock().expect("readiness lock") = None;
    }

    pub fn not_ready(&self, why: impl Into<String>) {
        *self.not_ready.lock().expect("readiness lock") = Some(why.into());
    }

    /// Stopping: never ready again.
    pub fn drain(&self) {
        self.draining.store(true, Ordering::SeqCst);
    }

    /// `Ok` when ready, or the reason it is not.
    pub fn state(&self) -> Result<(), String> {
        if self.draining.load(Ordering::SeqCst) {
            return Err("draining".into());
        }
        match &*self.not_ready.lock().expect("readiness lock") {
            None => Ok(()),
            Some(why) => Err(why.clone()),
        }
    }
}

/// What the endpoints read.
#[derive(Clone)]
pub struct Ops {
    pub app: Arc<DeployedApp>,
    pub metrics: Arc<WorkerMetrics>,
    pub readiness: Arc<Readiness>,
    token: Arc<str>,
}

impl Ops {
    /// Endpoints for `app`, whose scans are counted in `metrics` from now on.
    pub fn new(app: Arc<DeployedApp>, token: &str, readiness: Arc<Readiness>) -> Ops {
        let metrics = Arc::new(WorkerMetrics::new());
        app.observe(metrics.clone());
        Ops {
            app,
            metrics,
            readiness,
            token: token.into(),
        }
    }
}

pub fn answer(status: StatusCode, body: serde_json::Value) -> Response {
    (status, axum::Json(body)).into_response()
}

pub fn unauthorized() -> Response {
    let mut r = answer(
        StatusCode::UNAUTHORIZED,
        json!({"error": "missing or wrong token (Authorization: Bearer <HASHGATE_HTTP_TOKEN>)"}),
    );
    r.headers_mut()
        .insert(header::WWW_AUTHENTICATE, "Bearer".parse().expect("header"));
    r
}

pub fn unavailable(why: &str, retry_after_seconds: u32) -> Response {
    let mut r = answer(StatusCode::SERVICE_UNAVAILABLE, json!({"error": why}));
    r.headers_mut().insert(
        header::RETRY_AFTER,
        retry_after_seconds.to_string().parse().expect("header"),
    );
    r
}

/// `GET /metrics`: the filter's figures brought up to date, then everything rendered.
pub async fn metrics_response(
    app: &DeployedApp,
    metrics: &WorkerMetrics,
    headers: &HeaderMap,
    token: &str,
) -> Response {
    if !authorized(headers, token) {
        return unauthorized();
    }
    let now = app.now();
    let (version, age) = match app.filter_in_use().await {
        Some((built, version)) => (
            version,
            Duration::from_secs(now.duration_since(built).as_secs().max(0) as u64),
        ),
        None => (0, Duration::ZERO),
    };
    metrics.filter(version, age);
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        metrics.render(),
    )
        .into_response()
}

async fn metrics(State(ops): State<Ops>, headers: HeaderMap) -> Response {
    metrics_response(&ops.app, &ops.metrics, &headers, &ops.token).await
}

async fn ready(State(ops): State<Ops>) -> Response {
    match ops.readiness.state() {
        Ok(()) => answer(StatusCode::OK, json!({"ready": true})),
        Err(why) => unavailable(&why, 5),
    }
}

/// The SQS and AMQP workers' routes.
pub fn router(ops: Ops) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(ready))
        .route("/metrics", get(metrics))
        .with_state(ops)
}

/// Serve the endpoints in the background until the process ends.
pub async fn spawn(config: &OpsConfig, ops: Ops) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|e| anyhow::anyhow!("HASHGATE_HTTP_LISTEN={}: {e}", config.listen))?;
    tracing::info!(listen = %listener.local_addr()?, "health and metrics listening");
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, router(ops)).await {
            tracing::error!(error = %e, "the health and metrics endpoints stopped");
        }
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readiness_starts_not_ready_and_draining_wins() {
        let r = Readiness::new("connecting to the broker");
        assert_eq!(r.state(), Err("connecting to the broker".into()));
        r.ready();
        assert_eq!(r.state(), Ok(()));
        r.not_ready("AMQP connection lost: reset");
        assert_eq!(r.state(), Err("AMQP connection lost: reset".into()));
        r.ready();
        r.drain();
        assert_eq!(r.state(), Err("draining".into()));
        r.ready();
        assert_eq!(r.state(), Err("draining".into()));
    }
}
