//! The HTTP webhook ingress (`HASHGATE_INGRESS=http`): what MinIO, Ceph RGW and SeaweedFS
//! push bucket notifications to.
//!
//! `POST /` (or `/events`) with the notification as the body, and the token as
//! `Authorization: Bearer <token>` (SeaweedFS's `bearer_token`), `Authorization: <token>`
//! (MinIO's `auth_token`) or HTTP basic authentication with the token as the password (Ceph,
//! whose push endpoint takes `http://hashgate:<token>@host:port/`), or in the path,
//! `POST /events/<token>` (Ceph RGW before Quincy, which takes no password in a plain-HTTP
//! endpoint). The answer:
//!
//! - `202` once the body is durably spooled (see [`crate::spool`]): it is scanned after a
//!   crash or restart if not before;
//! - `200` for a notification with nothing to scan (deletions, directories, test events);
//! - `400` with the reason for a body that cannot be parsed (the store should not retry);
//! - `401` without the token; `413` above 1 MiB (a store's notification is a few KiB);
//! - `503` while draining or when the spool holds `HASHGATE_SPOOL_MAX` bodies, so the store
//!   retries later.
//!
//! `GET /healthz` (the process is up) and `GET /readyz` (it takes events: not draining, the
//! spool writable) need no token; `GET /metrics` (Prometheus, see [`crate::prom`]) takes the
//! same token as the events.
//!
//! The spool is worked through by [`consume`], oldest first, a few at a time, with the same
//! handler, idempotency and case ids as the Lambda function and the SQS worker: a body is
//! removed only once every upload in it has a durable outcome, and retried with back-off
//! otherwise, until it is dead-lettered.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use base64::Engine as _;
use hashgate_core::event::{parse_body, Notice};
use serde_json::json;
use subtle::ConstantTimeEq;
use tokio::sync::Notify;

use crate::app::DeployedApp;
use crate::ops::{self, answer, unauthorized, unavailable};
use crate::prom::WorkerMetrics;
use crate::spool::{self, Failed, Spool};

/// The largest body taken: S3 caps a notification at 64 KiB; stores send a few KiB.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// The webhook's settings (`HASHGATE_HTTP_*`, `HASHGATE_SPOOL_*`).
#[derive(Clone)]
pub struct WebhookConfig {
    pub listen: SocketAddr,
    pub token: String,
    pub spool_dir: std::path::PathBuf,
    pub max_pending: usize,
    pub max_attempts: u32,
    pub concurrency: usize,
}

/// The token is a secret: never in a log line.
impl std::fmt::Debug for WebhookConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookConfig")
            .field("listen", &self.listen)
            .field("token", &"<redacted>")
            .field("spool_dir", &self.spool_dir)
            .field("max_pending", &self.max_pending)
            .field("max_attempts", &self.max_attempts)
            .field("concurrency", &self.concurrency)
            .finish()
    }
}

impl WebhookConfig {
    pub const DEFAULT_LISTEN: &'static str = "127.0.0.1:8087";
    pub const DEFAULT_MAX_PENDING: usize = 100_000;
    pub const DEFAULT_MAX_ATTEMPTS: u32 = 8;
    pub const DEFAULT_CONCURRENCY: usize = 4;
    /// A shorter token is refused: it is the only thing between the internet and the spool.
    pub const MIN_TOKEN_CHARS: usize = 16;
}

/// What the receiving side and the consumer share.
#[derive(Clone)]
pub struct Shared {
    app: Arc<DeployedApp>,
    metrics: Arc<WorkerMetrics>,
    spool: Arc<Spool>,
    token: Arc<str>,
    max_pending: usize,
    depth: Arc<AtomicUsize>,
    wake: Arc<Notify>,
    draining: Arc<AtomicBool>,
}

impl Shared {
    pub fn new(
        app: Arc<DeployedApp>,
        spool: Spool,
        config: &WebhookConfig,
    ) -> std::io::Result<Shared> {
        let depth = spool.pending()?.len();
        let metrics = Arc::new(WorkerMetrics::new());
        app.observe(metrics.clone());
        Ok(Shared {
            app,
            metrics,
            spool: Arc::new(spool),
            token: config.token.as_str().into(),
            max_pending: config.max_pending,
            depth: Arc::new(AtomicUsize::new(depth)),
            wake: Arc::new(Notify::new()),
            draining: Arc::new(AtomicBool::new(false)),
        })
    }

    /// Stop taking events; the consumer finishes what it holds and returns.
    pub fn drain(&self) {
        self.draining.store(true, Ordering::SeqCst);
        self.wake.notify_waiters();
    }
}

/// Whether `headers` carry `token`, in any of the three forms the stores send.
pub fn authorized(headers: &HeaderMap, token: &str) -> bool {
    let Some(value) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let value = value.trim();
    let offered: Vec<u8> = if let Some(rest) = strip_scheme(value, "Bearer") {
        rest.as_bytes().to_vec()
    } else if let Some(rest) = strip_scheme(value, "Basic") {
        let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(rest) else {
            return false;
        };
        // user:password; the user is not checked (stores name it as they like).
        match decoded.iter().position(|&b| b == b':') {
            Some(colon) => decoded[colon + 1..].to_vec(),
            None => return false,
        }
    } else {
        value.as_bytes().to_vec()
    };
    token_matches(&offered, token)
}

/// The one comparison of an offered token, whatever form it came in: whole, in constant time.
fn token_matches(offered: &[u8], token: &str) -> bool {
    offered.len() == token.len() && bool::from(offered.ct_eq(token.as_bytes()))
}

fn strip_scheme<'a>(value: &'a str, scheme: &str) -> Option<&'a str> {
    let (given, rest) = value.split_once(' ')?;
    given
        .eq_ignore_ascii_case(scheme)
        .then_some(rest.trim_start())
}

/// Whether the token in the path (`POST /events/<token>`) is `token`.
fn path_authorized(offered: &str, token: &str) -> bool {
    token_matches(offered.as_bytes(), token)
}

async fn receive(State(shared): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let ok = authorized(&headers, &shared.token);
    count(&shared, take(&shared, ok, body).await)
}

/// `POST /events/<token>`: for a store that cannot send a credential in plain HTTP (Ceph
/// RGW before Quincy refuses a topic whose endpoint holds a password unless RGW itself is
/// reached over HTTPS).
async fn receive_with_path_token(
    State(shared): State<Shared>,
    Path(offered): Path<String>,
    body: Bytes,
) -> Response {
    let ok = path_authorized(&offered, &shared.token);
    count(&shared, take(&shared, ok, body).await)
}

fn count(shared: &Shared, response: Response) -> Response {
    shared.metrics.received(match response.status() {
        StatusCode::ACCEPTED => "accepted",
        StatusCode::OK => "ignored",
        StatusCode::BAD_REQUEST => "refused",
        StatusCode::UNAUTHORIZED => "unauthorized",
        StatusCode::SERVICE_UNAVAILABLE => "unavailable",
        _ => "error",
    });
    response
}

async fn metrics(State(shared): State<Shared>, headers: HeaderMap) -> Response {
    ops::metrics_response(&shared.app, &shared.metrics, &headers, &shared.token).await
}

/// The answer to one body, `authorized` or not.
async fn take(shared: &Shared, authorized: bool, body: Bytes) -> Response {
    if !authorized {
        return unauthorized();
    }
    if shared.draining.load(Ordering::SeqCst) {
        return unavailable("draining: stopping", 5);
    }
    let Ok(text) = std::str::from_utf8(&body) else {
        return answer(
            StatusCode::BAD_REQUEST,
            json!({"error": "body: not UTF-8 text"}),
        );
    };
    let notices = match parse_body(text) {
        Ok(n) => n,
        Err(e) => {
            tracing::warn!(error = %e, "webhook body refused");
            return answer(StatusCode::BAD_REQUEST, json!({"error": e.to_string()}));
        }
    };
    let uploads = notices
        .iter()
        .filter(|n| matches!(n, Notice::Upload(_)))
        .count();
    if uploads == 0 {
        for n in &notices {
            if let Notice::Ignored { reason } = n {
                tracing::debug!(%reason, "event ignored");
            }
        }
        return answer(
            StatusCode::OK,
            json!({"accepted": 0, "ignored": notices.len()}),
        );
    }
    if shared.depth.load(Ordering::SeqCst) >= shared.max_pending {
        return unavailable("the spool is full: try again later", 5);
    }
    let spool = shared.spool.clone();
    let stored = tokio::task::spawn_blocking(move || spool.accept(&body)).await;
    match stored {
        Ok(Ok(entry)) => {
            shared.depth.fetch_add(1, Ordering::SeqCst);
            shared.wake.notify_one();
            answer(
                StatusCode::ACCEPTED,
                json!({"accepted": uploads, "id": entry.sequence.to_string()}),
            )
        }
        Ok(Err(e)) => {
            tracing::error!(error = %e, spool = %shared.spool.dir().display(), "cannot spool an event");
            answer(
                StatusCode::INTERNAL_SERVER_ERROR,
                json!({"error": format!("cannot store the event: {e}")}),
            )
        }
        Err(e) => answer(
            StatusCode::INTERNAL_SERVER_ERROR,
            json!({"error": format!("cannot store the event: {e}")}),
        ),
    }
}

async fn ready(State(shared): State<Shared>) -> Response {
    if shared.draining.load(Ordering::SeqCst) {
        return unavailable("draining", 5);
    }
    let pending = shared.spool.dir().join("pending");
    let writable = tokio::task::spawn_blocking(move || {
        std::fs::metadata(&pending).is_ok_and(|m| m.is_dir() && !m.permissions().readonly())
    })
    .await
    .unwrap_or(false);
    if !writable {
        return unavailable("the spool directory is not writable", 5);
    }
    answer(
        StatusCode::OK,
        json!({"ready": true, "pending": shared.depth.load(Ordering::SeqCst)}),
    )
}

/// The webhook's routes.
pub fn router(shared: Shared) -> Router {
    Router::new()
        .route("/", post(receive))
        .route("/events", post(receive))
        .route("/events/{token}", post(receive_with_path_token))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(ready))
        .route("/metrics", get(metrics))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(shared)
}

/// Work through the spool until drained: oldest first, `concurrency` at a time, each body
/// removed once everything in it is handled, retried with back-off otherwise.
pub async fn consume(shared: Shared, concurrency: usize, max_attempts: u32) {
    let app = shared.app.clone();
    let mut not_before: HashMap<u64, Instant> = HashMap::new();
    loop {
        if shared.draining.load(Ordering::SeqCst) {
            return;
        }
        app.refresh_filter(false).await;
        let spool = shared.spool.clone();
        let pending = match tokio::task::spawn_blocking(move || spool.pending()).await {
            Ok(Ok(p)) => p,
            Ok(Err(e)) => {
                tracing::error!(error = %e, "cannot list the spool; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
            Err(e) => {
                tracing::error!(error = %e, "spool listing task failed");
                continue;
            }
        };
        shared.depth.store(pending.len(), Ordering::SeqCst);
        let oldest = pending
            .first()
            .map_or(Duration::ZERO, |e| e.age(SystemTime::now()));
        shared.metrics.queue(
            pending.len(),
            oldest,
            shared.spool.dead_count().unwrap_or(0),
        );
        if !pending.is_empty() {
            tracing::debug!(
                pending = pending.len(),
                oldest_seconds = oldest.as_secs(),
                "spool"
            );
        }
        let now = Instant::now();
        let listed: std::collections::HashSet<u64> = pending.iter().map(|e| e.sequence).collect();
        not_before.retain(|seq, _| listed.contains(seq));
        let ready: Vec<spool::Entry> = pending
            .into_iter()
            .filter(|e| not_before.get(&e.sequence).is_none_or(|t| *t <= now))
            .collect();
        if ready.is_empty() {
            tokio::select! {
                _ = shared.wake.notified() => {}
                _ = tokio::time::sleep(Duration::from_millis(500)) => {}
            }
            continue;
        }
        // Work through this whole listing, `concurrency` at a time, before listing again:
        // one directory read per pass, not one per handful of events.
        let mut ready = ready.into_iter();
        let mut in_flight = tokio::task::JoinSet::new();
        loop {
            while in_flight.len() < concurrency.max(1) && !shared.draining.load(Ordering::SeqCst) {
                let Some(entry) = ready.next() else { break };
                let (app, spool) = (app.clone(), shared.spool.clone());
                in_flight.spawn(async move {
                    let outcome = handle(&app, &spool, &entry, max_attempts).await;
                    (entry.sequence, outcome)
                });
            }
            match in_flight.join_next().await {
                None => break,
                Some(Ok((sequence, Some(retry_at)))) => {
                    not_before.insert(sequence, retry_at);
                }
                // Removed from the spool (done, or dead-lettered).
                Some(Ok((_, None))) => {
                    let _ = shared
                        .depth
                        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |d| {
                            Some(d.saturating_sub(1))
                        });
                }
                Some(Err(e)) => tracing::error!(error = %e, "a spooled event's task failed"),
            }
        }
    }
}

/// Handle one spooled body. `Some(when)`: failed, try again then.
async fn handle(
    app: &DeployedApp,
    spool: &Spool,
    entry: &spool::Entry,
    max_attempts: u32,
) -> Option<Instant> {
    let body = match spool.read(entry) {
        Ok(b) => b,
        Err(e) => {
            tracing::error!(error = %e, path = %entry.path.display(), "cannot read a spooled event");
            return Some(Instant::now() + spool::backoff(entry.attempts));
        }
    };
    let (ok, reason, attempts_left) = match std::str::from_utf8(&body)
        .map_err(|e| e.to_string())
        .and_then(|text| parse_body(text).map_err(|e| e.to_string()))
    {
        // Accepted bodies parsed when they came in; one that no longer does was damaged on
        // disk, and retrying will not mend it.
        Err(e) => (false, format!("spooled body does not parse: {e}"), 1),
        Ok(notices) => {
            let ok = app.process_all(notices).await;
            (ok, "scan failed (see the log)".to_string(), max_attempts)
        }
    };
    if ok {
        if let Err(e) = spool.done(entry) {
            tracing::error!(error = %e, path = %entry.path.display(), "handled, but cannot remove it from the spool; it will be handled again");
        }
        return None;
    }
    match spool.failed(entry, attempts_left, &reason) {
        Ok(Failed::Retry(e)) => {
            let wait = spool::backoff(e.attempts);
            tracing::warn!(sequence = e.sequence, attempts = e.attempts, retry_in_seconds = wait.as_secs(), %reason, "spooled event failed; will retry");
            Some(Instant::now() + wait)
        }
        Ok(Failed::DeadLettered(path)) => {
            tracing::error!(path = %path.display(), %reason, "spooled event dead-lettered after its last attempt");
            None
        }
        Err(e) => {
            tracing::error!(error = %e, "cannot record a failed attempt in the spool");
            Some(Instant::now() + spool::backoff(entry.attempts))
        }
    }
}

/// Serve the webhook and work through its spool until `shutdown` resolves; then stop
/// taking events, finish the bodies in hand and return.
pub async fn run(
    app: Arc<DeployedApp>,
    config: WebhookConfig,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let spool = Spool::open(&config.spool_dir).map_err(|e| {
        anyhow::anyhow!(
            "HASHGATE_SPOOL_DIR={}: cannot open the spool: {e}",
            config.spool_dir.display()
        )
    })?;
    let shared = Shared::new(app, spool, &config)?;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|e| anyhow::anyhow!("HASHGATE_HTTP_LISTEN={}: {e}", config.listen))?;
    tracing::info!(
        listen = %listener.local_addr()?,
        spool = %config.spool_dir.display(),
        pending = shared.depth.load(Ordering::SeqCst),
        "webhook ingress listening"
    );
    let consumer = tokio::spawn(consume(
        shared.clone(),
        config.concurrency,
        config.max_attempts,
    ));
    let draining = shared.clone();
    axum::serve(listener, router(shared))
        .with_graceful_shutdown(async move {
            shutdown.await;
            tracing::info!("draining: no new events; finishing the ones in hand");
            draining.drain();
        })
        .await?;
    consumer.await?;
    tracing::info!("worker stopped");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, value.parse().unwrap());
        h
    }

    #[test]
    fn the_token_is_taken_in_each_stores_form_and_nothing_else() {
        let token = "0123456789abcdef-token";
        let basic = |user_pass: &str| {
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(user_pass)
            )
        };
        for good in [
            format!("Bearer {token}"),
            format!("bearer  {token}"),
            token.to_string(),
            basic(&format!("hashgate:{token}")),
            basic(&format!(":{token}")),
        ] {
            assert!(authorized(&with(&good), token), "{good}");
        }
        for bad in [
            "Bearer wrong".to_string(),
            format!("Bearer {token}x"),
            format!("Bearer {}", &token[1..]),
            basic(token),
            basic("hashgate:wrong"),
            "Basic !!!".to_string(),
            format!("Token {token}"),
            String::new(),
        ] {
            assert!(!authorized(&with(&bad), token), "{bad}");
        }
        assert!(!authorized(&HeaderMap::new(), token));
    }

    #[test]
    fn the_token_in_the_path_must_be_the_whole_token() {
        let token = "0123456789abcdef0123";
        assert!(path_authorized(token, token));
        for bad in [
            "",
            "0123456789abcdef012",
            "0123456789abcdef01234",
            "x123456789abcdef0123",
        ] {
            assert!(!path_authorized(bad, token), "{bad}");
        }
    }
}
