//! The HTTP surface: one axum router for Lambda (through `lambda_http`) and the local server.
//!
//! Public: `/healthz` and the page's three static files (`/`, `/app.js`, `/app.css`), which
//! carry no data — the page signs in against the user pool itself. Everything under `/api`
//! needs a valid access token of a `reviewer` or `admin` (401 without one, 403 with a
//! wrong role); `/api/audit/verify` needs `admin`. Every response says `no-store`, and the
//! page runs under a Content Security Policy that allows scripts from this origin only.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::rejection::JsonRejection;
use axum::extract::{ConnectInfo, FromRequestParts, Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, Request, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use hashgate_core::audit::ChainedEntry;
use hashgate_core::case::{CaseRecord, CaseStatus};
use hashgate_core::review::{
    CaseQuery, Checkpoints, Classification, Decision, Evidence, Identity, ReviewStore, Role,
};
use hashgate_core::Algorithm;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::auth::{AuthError, Authenticator};
use crate::service::{Rendered, Service, ServiceError};
use hashgate_core::followup::FollowupPorts;

const INDEX: &str = include_str!("../assets/index.html");
const APP_JS: &str = include_str!("../assets/app.js");
const APP_CSS: &str = include_str!("../assets/app.css");

/// Everything a request needs.
pub struct AppState<S, E, C, A> {
    pub service: Service<S, E, C, A>,
    pub auth: Authenticator,
    pub reveal_seconds: u32,
}

type Shared<S, E, C, A> = Arc<AppState<S, E, C, A>>;

/// An error as the API answers it: a status and `{"error": "…"}`.
pub struct ApiError {
    status: StatusCode,
    message: String,
}

impl ApiError {
    fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, Json(json!({ "error": self.message }))).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer error=\"invalid_token\""),
            );
        }
        response
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::UNAUTHORIZED);
        ApiError::new(status, e.to_string())
    }
}

impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> Self {
        let status = match &e {
            ServiceError::NotFound(_) => StatusCode::NOT_FOUND,
            ServiceError::Invalid(_) => StatusCode::BAD_REQUEST,
            ServiceError::Conflict(_) => StatusCode::CONFLICT,
            ServiceError::LimitReached { .. } => StatusCode::TOO_MANY_REQUESTS,
            ServiceError::Storage(_) | ServiceError::Restore(_) | ServiceError::Followup(_) => {
                tracing::error!(error = %e, "request failed");
                StatusCode::SERVICE_UNAVAILABLE
            }
        };
        ApiError::new(status, e.to_string())
    }
}

impl From<JsonRejection> for ApiError {
    fn from(e: JsonRejection) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, e.body_text())
    }
}

/// The address a request came from: the TCP peer locally, API Gateway's `sourceIp` in
/// Lambda.
pub struct ClientAddress(pub Option<String>);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddress {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _: &S,
    ) -> Result<Self, Self::Rejection> {
        if let Some(ConnectInfo(peer)) = parts.extensions.get::<ConnectInfo<SocketAddr>>() {
            return Ok(ClientAddress(Some(peer.ip().to_string())));
        }
        #[allow(unreachable_patterns)]
        let from_gateway = parts
            .extensions
            .get::<lambda_http::request::RequestContext>()
            .and_then(|ctx| match ctx {
                lambda_http::request::RequestContext::ApiGatewayV2(c) => c.http.source_ip.clone(),
                _ => None,
            });
        Ok(ClientAddress(from_gateway))
    }
}

/// A signed-in reviewer or administrator.
pub struct Reviewer(pub Identity);

/// A signed-in administrator.
pub struct Admin(pub Identity);

async fn identify<S, E, C, A>(
    parts: &axum::http::request::Parts,
    state: &Shared<S, E, C, A>,
    need: Role,
) -> Result<Identity, ApiError>
where
    S: ReviewStore,
    E: Evidence,
    C: Checkpoints,
    A: FollowupPorts,
{
    let header = parts
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let now = (state.service.clock)();
    let who = state.auth.authenticate(header, now).await?;
    if !who.role.allows(need) {
        return Err(AuthError::Forbidden {
            user: who.user,
            have: who.role.as_str(),
            need: need.as_str(),
        }
        .into());
    }
    Ok(who)
}

impl<S, E, C, A> FromRequestParts<Shared<S, E, C, A>> for Reviewer
where
    S: ReviewStore + 'static,
    E: Evidence + 'static,
    C: Checkpoints + 'static,
    A: FollowupPorts + 'static,
{
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &Shared<S, E, C, A>,
    ) -> Result<Self, Self::Rejection> {
        identify(parts, state, Role::Reviewer).await.map(Reviewer)
    }
}

impl<S, E, C, A> FromRequestParts<Shared<S, E, C, A>> for Admin
where
    S: ReviewStore + 'static,
    E: Evidence + 'static,
    C: Checkpoints + 'static,
    A: FollowupPorts + 'static,
{
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &Shared<S, E, C, A>,
    ) -> Result<Self, Self::Rejection> {
        identify(parts, state, Role::Admin).await.map(Admin)
    }
}

/// The router over any ports.
pub fn router<S, E, C, A>(state: Shared<S, E, C, A>) -> Router
where
    S: ReviewStore + 'static,
    E: Evidence + 'static,
    C: Checkpoints + 'static,
    A: FollowupPorts + 'static,
{
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/", get(index::<S, E, C, A>))
        .route(
            "/app.js",
            get(|| async { static_file("text/javascript; charset=utf-8", APP_JS) }),
        )
        .route(
            "/app.css",
            get(|| async { static_file("text/css; charset=utf-8", APP_CSS) }),
        )
        .route("/api/me", get(me::<S, E, C, A>))
        .route("/api/cases", get(list::<S, E, C, A>))
        .route("/api/cases/{id}", get(show::<S, E, C, A>))
        .route("/api/cases/{id}/preview", get(preview::<S, E, C, A>))
        .route("/api/cases/{id}/reveal", post(reveal::<S, E, C, A>))
        .route("/api/cases/{id}/decision", post(decision::<S, E, C, A>))
        .route(
            "/api/cases/{id}/followups",
            post(finish_followups::<S, E, C, A>),
        )
        .route("/api/audit/verify", get(verify::<S, E, C, A>))
        .route("/api/lists/confirmed", get(export_confirmed::<S, E, C, A>))
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "no such route") })
        .layer(middleware::from_fn(protective_headers))
        .with_state(state)
}

/// No response is cached anywhere; the page may load scripts from this origin only and talk
/// to this origin and the identity provider only.
async fn protective_headers(request: Request<Body>, next: Next) -> Response {
    let mut response = next.run(request).await;
    let h = response.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    response
}

fn static_file(content_type: &'static str, body: &'static str) -> Response {
    ([(header::CONTENT_TYPE, content_type)], body).into_response()
}

async fn index<S, E, C, A>(State(state): State<Shared<S, E, C, A>>) -> Response
where
    S: ReviewStore,
    E: Evidence,
    C: Checkpoints,
    A: FollowupPorts,
{
    let auth = state.auth.config();
    let page = INDEX
        .replace("{{CLIENT_ID}}", &html_attribute(&auth.client_id))
        .replace("{{IDP_ENDPOINT}}", &html_attribute(&auth.idp_endpoint))
        .replace("{{REGION}}", &html_attribute(&auth.region));
    let csp = format!(
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob:; \
         connect-src 'self' {}; form-action 'none'; frame-ancestors 'none'; base-uri 'none'",
        auth.idp_endpoint
    );
    let mut response = ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], page).into_response();
    if let Ok(v) = HeaderValue::from_str(&csp) {
        response
            .headers_mut()
            .insert(header::CONTENT_SECURITY_POLICY, v);
    }
    response
}

fn html_attribute(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('"', "&quot;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

async fn me<S, E, C, A>(
    State(state): State<Shared<S, E, C, A>>,
    Reviewer(who): Reviewer,
) -> Result<Json<Value>, ApiError>
where
    S: ReviewStore,
    E: Evidence,
    C: Checkpoints,
    A: FollowupPorts,
{
    let reveals = state.service.reveals_today(&who).await?;
    Ok(Json(json!({
        "user": who.user,
        "role": who.role,
        "reveal_limit": state.service.policy.reveal_daily_limit,
        "reveal_seconds": state.reveal_seconds,
        "reveals_today": reveals,
    })))
}

#[derive(Deserialize)]
struct ListParams {
    status: Option<String>,
    list: Option<String>,
    category: Option<String>,
    bucket: Option<String>,
    kind: Option<String>,
    cursor: Option<String>,
    limit: Option<usize>,
}

fn some(s: Option<String>) -> Option<String> {
    s.filter(|v| !v.trim().is_empty())
}

impl ListParams {
    fn query(self) -> Result<CaseQuery, ApiError> {
        let statuses = some(self.status)
            .map(|s| {
                s.split(',')
                    .map(|v| v.trim().parse::<CaseStatus>())
                    .collect::<Result<Vec<_>, _>>()
            })
            .transpose()
            .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, format!("status: {e}")))?
            .unwrap_or_default();
        let kind = some(self.kind)
            .map(|k| k.parse::<Algorithm>())
            .transpose()
            .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, format!("kind: {e}")))?;
        let limit = self.limit.unwrap_or(50);
        if limit == 0 || limit > CaseQuery::MAX_LIMIT {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                format!("limit: {limit} is not from 1 to {}", CaseQuery::MAX_LIMIT),
            ));
        }
        Ok(CaseQuery {
            statuses,
            list: some(self.list),
            category: some(self.category),
            bucket: some(self.bucket),
            kind,
            after: some(self.cursor),
            limit,
        })
    }
}

fn summary(c: &CaseRecord) -> Value {
    json!({
        "case_id": c.case_id,
        "status": c.status,
        "created_at": c.created_at,
        "uploaded_at": c.uploaded_at,
        "bucket": c.object.bucket,
        "key": c.object.key,
        "size": c.size,
        "matches": c.matches,
        "classification": c.classification,
    })
}

async fn list<S, E, C, A>(
    State(state): State<Shared<S, E, C, A>>,
    Reviewer(_): Reviewer,
    params: Result<Query<ListParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, ApiError>
where
    S: ReviewStore,
    E: Evidence,
    C: Checkpoints,
    A: FollowupPorts,
{
    let Query(params) =
        params.map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, e.body_text()))?;
    let page = state.service.list(&params.query()?).await?;
    Ok(Json(json!({
        "items": page.items.iter().map(summary).collect::<Vec<_>>(),
        "next_cursor": page.next,
    })))
}

fn detail(c: &CaseRecord, content_type: Option<&str>) -> Value {
    json!({
        "case_id": c.case_id,
        "status": c.status,
        "created_at": c.created_at,
        "uploaded_at": c.uploaded_at,
        "object": c.object,
        "size": c.size,
        "content_type": content_type,
        "digests": c.digests,
        "matches": c.matches,
        "quarantine": c.quarantine,
        "reviews": c.reviews,
        "classification": c.classification,
        "restored_to": c.restored_to,
        "followups": c.followups,
        "legal_hold": c.legal_hold,
    })
}

fn history(entries: &[ChainedEntry]) -> Value {
    json!(entries)
}

async fn show<S, E, C, A>(
    State(state): State<Shared<S, E, C, A>>,
    Reviewer(who): Reviewer,
    ClientAddress(address): ClientAddress,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError>
where
    S: ReviewStore,
    E: Evidence,
    C: Checkpoints,
    A: FollowupPorts,
{
    let view = state.service.view(&who, &id, address.as_deref()).await?;
    Ok(Json(json!({
        "case": detail(&view.case, view.content_type.as_deref()),
        "audit": history(&view.history),
    })))
}

fn image(png: Vec<u8>, extra: &[(&'static str, String)]) -> Response {
    let mut response = ([(header::CONTENT_TYPE, "image/png")], png).into_response();
    for (name, value) in extra {
        if let Ok(v) = HeaderValue::from_str(value) {
            response.headers_mut().insert(*name, v);
        }
    }
    response
}

async fn preview<S, E, C, A>(
    State(state): State<Shared<S, E, C, A>>,
    Reviewer(who): Reviewer,
    ClientAddress(address): ClientAddress,
    Path(id): Path<String>,
) -> Result<Response, ApiError>
where
    S: ReviewStore,
    E: Evidence,
    C: Checkpoints,
    A: FollowupPorts,
{
    Ok(
        match state.service.preview(&who, &id, address.as_deref()).await? {
            Rendered::Png(png) => image(png, &[]),
            Rendered::None(reason) => {
                Json(json!({ "preview": "none", "reason": reason })).into_response()
            }
        },
    )
}

#[derive(Deserialize)]
struct RevealBody {
    #[serde(default)]
    reason: String,
}

async fn reveal<S, E, C, A>(
    State(state): State<Shared<S, E, C, A>>,
    Reviewer(who): Reviewer,
    ClientAddress(address): ClientAddress,
    Path(id): Path<String>,
    body: Result<Json<RevealBody>, JsonRejection>,
) -> Result<Response, ApiError>
where
    S: ReviewStore,
    E: Evidence,
    C: Checkpoints,
    A: FollowupPorts,
{
    let Json(body) = body?;
    let revealed = state
        .service
        .reveal(&who, &id, &body.reason, address.as_deref())
        .await?;
    let Rendered::Png(png) = revealed.preview else {
        return Err(ApiError::new(StatusCode::BAD_REQUEST, "nothing to reveal"));
    };
    Ok(image(
        png,
        &[
            ("x-reveal-seconds", state.reveal_seconds.to_string()),
            (
                "x-reveals-remaining",
                revealed.limit.saturating_sub(revealed.used).to_string(),
            ),
        ],
    ))
}

#[derive(Deserialize)]
struct DecisionBody {
    decision: Decision,
    #[serde(default)]
    reason: String,
    #[serde(default)]
    classification: Option<Classification>,
}

async fn decision<S, E, C, A>(
    State(state): State<Shared<S, E, C, A>>,
    Reviewer(who): Reviewer,
    ClientAddress(address): ClientAddress,
    Path(id): Path<String>,
    body: Result<Json<DecisionBody>, JsonRejection>,
) -> Result<Json<Value>, ApiError>
where
    S: ReviewStore,
    E: Evidence,
    C: Checkpoints,
    A: FollowupPorts,
{
    let Json(body) = body?;
    let case = state
        .service
        .decide(
            &who,
            &id,
            body.decision,
            body.classification,
            &body.reason,
            address.as_deref(),
        )
        .await?;
    let audit = state
        .service
        .store
        .history(&case.case_id)
        .await
        .map_err(ServiceError::from)?;
    Ok(Json(
        json!({ "case": detail(&case, None), "audit": history(&audit) }),
    ))
}

/// An admin finishes what a decision left undone (a report package that could not be
/// written, say): `{"case": …, "done": ["report_package", …]}`.
async fn finish_followups<S, E, C, A>(
    State(state): State<Shared<S, E, C, A>>,
    Admin(who): Admin,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError>
where
    S: ReviewStore,
    E: Evidence,
    C: Checkpoints,
    A: FollowupPorts,
{
    let (case, done) = state.service.finish_followups(&who, &id).await?;
    let done: Vec<Value> = done
        .iter()
        .map(|d| json!({ "followup": d.followup, "detail": d.detail }))
        .collect();
    Ok(Json(json!({ "case": detail(&case, None), "done": done })))
}

async fn verify<S, E, C, A>(
    State(state): State<Shared<S, E, C, A>>,
    Admin(_): Admin,
) -> Result<Json<Value>, ApiError>
where
    S: ReviewStore,
    E: Evidence,
    C: Checkpoints,
    A: FollowupPorts,
{
    let v = state.service.verify().await?;
    Ok(Json(json!(v)))
}

/// Headers of a response, for tests.
pub fn header_value(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

#[derive(Deserialize)]
struct ExportParams {
    format: Option<String>,
    list: Option<String>,
}

/// (admin) The digests of every confirmed case as a hash list another provider imports
/// directly: CSV (default), VICS JSON or plain, as `hashgate lists export --confirmed` writes.
async fn export_confirmed<S, E, C, A>(
    State(state): State<Shared<S, E, C, A>>,
    Admin(_): Admin,
    params: Result<Query<ExportParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError>
where
    S: ReviewStore,
    E: Evidence,
    C: Checkpoints,
    A: FollowupPorts,
{
    use hashgate_core::lists::{write::write_list, ListFormat};
    let Query(params) =
        params.map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, e.body_text()))?;
    let format = match some(params.format) {
        None => ListFormat::Csv,
        Some(f) => f
            .parse::<ListFormat>()
            .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, format!("format: {e}")))?,
    };
    let list = some(params.list).unwrap_or_else(|| hashgate_core::share::DEFAULT_LIST.into());
    let confirmed = hashgate_core::share::confirmed_in(&state.service.store, &list)
        .await
        .map_err(|e| match e {
            hashgate_core::share::ShareError::Storage(s) => ApiError::from(ServiceError::from(s)),
            e @ hashgate_core::share::ShareError::ListName { .. } => {
                ApiError::new(StatusCode::BAD_REQUEST, e.to_string())
            }
            other => ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, other.to_string()),
        })?;
    let mut body = Vec::new();
    write_list(&mut body, format, confirmed.entries())
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    let (content_type, extension) = match format {
        ListFormat::Csv => ("text/csv; charset=utf-8", "csv"),
        ListFormat::Vics => ("application/json", "json"),
        ListFormat::Plain => ("text/plain; charset=utf-8", "txt"),
    };
    Ok((
        [
            (header::CONTENT_TYPE, content_type.to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!(
                    "attachment; filename=\"{}.{extension}\"",
                    list.chars()
                        .map(|c| if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                            c
                        } else {
                            '_'
                        })
                        .collect::<String>()
                ),
            ),
        ],
        body,
    )
        .into_response())
}
