//! The REST JSON API: routes, authentication, body decoding. Handlers are thin: they decode,
//! authenticate, and run one workflow method on the blocking pool.
//!
//! Every failure, including malformed JSON, oversized bodies and unknown routes, is answered with
//! the JSON error shape of [`ApiError`].

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{
    ConnectInfo, DefaultBodyLimit, FromRequest, FromRequestParts, Path, Query, Request,
};
use axum::http::request::Parts;
use axum::http::{header, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};

use super::directory::Principal;
use super::error::{ApiError, ErrorKind};
use super::store::Status;
use super::workflow::{
    CreateBody, Decision, DisableBody, EnableBody, GateEventsBody, LockBody, Page, Service,
    UserBody,
};

/// Largest request body accepted.
pub(crate) const MAX_BODY: usize = 64 * 1024;

const OPENAPI: &str = include_str!("openapi.json");

/// Longest a request may take, body included; a client trickling its body is cut off here.
pub(crate) const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Failed authentications one source may make per [`AUTH_WINDOW`] before every attempt from it
/// is refused (429) until the window ends.
pub(crate) const AUTH_FAILURES: u32 = 10;
pub(crate) const AUTH_WINDOW: Duration = Duration::from_secs(60);
/// Sources remembered at most; when full, expired windows go first, then the source with the
/// fewest failures.
const AUTH_SOURCES: usize = 10_000;
/// Failed authentications audited per [`AUTH_WINDOW`] over all sources; more are only logged, so
/// an attacker with many addresses cannot flood the audit log.
const AUTH_AUDITS: u32 = 200;

/// Shared by all handlers.
#[derive(Debug, Clone)]
pub(crate) struct AppState {
    pub service: Arc<Service>,
    /// Woken after every step so queued notifications go out promptly.
    pub outbox: Arc<tokio::sync::Notify>,
    /// Failed authentications per source address (an IPv6 /64 counts as one source).
    pub auth_failures: Arc<Mutex<HashMap<IpAddr, (Instant, u32)>>>,
    /// Failed authentications audited in the current window, over all sources.
    pub auth_audits: Arc<Mutex<(Instant, u32)>>,
}

impl AppState {
    pub fn new(service: Arc<Service>, outbox: Arc<tokio::sync::Notify>) -> AppState {
        AppState {
            service,
            outbox,
            auth_failures: Arc::default(),
            auth_audits: Arc::new(Mutex::new((Instant::now(), 0))),
        }
    }

    /// Run `f` on the blocking pool (the store is synchronous).
    pub(super) async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Service, DateTime<Utc>) -> Result<T, ApiError> + Send + 'static,
    ) -> Result<T, ApiError> {
        let service = Arc::clone(&self.service);
        let out = tokio::task::spawn_blocking(move || f(&service, chrono::Utc::now()))
            .await
            .map_err(|_| ApiError::internal("the request worker stopped unexpectedly"))?;
        self.outbox.notify_one();
        out
    }
}

/// All routes.
pub(crate) fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/openapi.json", get(openapi))
        .route("/v1/keys", get(keys))
        .route("/v1/me", get(me))
        .route("/v1/requests", post(create).get(list))
        .route("/v1/requests/{id}", get(show))
        .route("/v1/requests/{id}/approve", post(approve))
        .route("/v1/requests/{id}/deny", post(deny))
        .route("/v1/requests/{id}/revoke", post(revoke))
        .route("/v1/requests/{id}/withdraw", post(withdraw))
        .route("/v1/requests/{id}/token", get(token))
        .route("/v1/revocations", get(revocations))
        .route("/v1/grants/{jti}/use", post(use_grant))
        .route("/v1/locks", post(set_lock).delete(clear_lock).get(locks))
        .route("/v1/policies/{file}", put(put_policy).delete(remove_policy))
        .route("/v1/users", post(add_user))
        .route("/v1/audit/events", post(gate_events))
        .route("/v1/control", get(control))
        .route("/v1/control/enable", post(enable_control))
        .route("/v1/control/disable", post(disable_control))
        .route("/v1/reviews", get(reviews))
        .route("/v1/reviews/{id}", get(show_review))
        .route("/v1/reviews/{id}/ack", post(ack_review))
        .merge(super::ui::router(state.clone()))
        .fallback(|| async {
            ApiError::not_found("no such endpoint; see GET /openapi.json for the API")
        })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                ErrorKind::NotAllowed,
                "method_not_allowed",
                "this endpoint does not accept that method; see GET /openapi.json",
            )
        })
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(axum::middleware::from_fn(guard))
        .with_state(state)
}

/// HEAD is answered only where it has no effect: a GET here may sign a token or write an audit
/// record, and HEAD would do the same without showing the result. Every request has a deadline.
async fn guard(req: Request, next: Next) -> Response {
    if req.method() == Method::HEAD && !matches!(req.uri().path(), "/healthz" | "/openapi.json") {
        return ApiError::new(
            ErrorKind::NotAllowed,
            "method_not_allowed",
            "HEAD is served only for /healthz and /openapi.json; use GET",
        )
        .into_response();
    }
    match tokio::time::timeout(REQUEST_TIMEOUT, next.run(req)).await {
        Ok(response) => response,
        Err(_) => {
            let mut response = ApiError::new(
                ErrorKind::Timeout,
                "request_timeout",
                format!(
                    "the request took over {} s (a slow body?); send it again",
                    REQUEST_TIMEOUT.as_secs()
                ),
            )
            .into_response();
            response.headers_mut().insert(
                header::CONNECTION,
                axum::http::HeaderValue::from_static("close"),
            );
            response
        }
    }
}

/// `{"status": "ok"}`, or 503 `{"status": "degraded", "error", "message", "since"}` while
/// actions are refused because the audit log cannot be written. Unauthenticated, so it names
/// no path: the operator log does.
async fn healthz(axum::extract::State(state): axum::extract::State<AppState>) -> Response {
    use super::workflow::Degraded;
    let (message, since) = match state.service.degraded() {
        None => return Json(json!({ "status": "ok" })).into_response(),
        Some(Degraded::AuditUnavailable(u)) => (
            format!(
                "the audit log cannot be written ({}), so every action is refused; the service \
                 resumes by itself once space is freed where the operator log says",
                u.reason
            ),
            Some(u.since),
        ),
        Some(Degraded::AbandonmentsOwed(n)) => (
            format!(
                "{n} abandoned actions are not yet recorded in the audit log, so every action \
                 is refused until they are"
            ),
            None,
        ),
    };
    let body = json!({
        "status": "degraded",
        "error": "audit_unavailable",
        "message": message,
        "since": since,
    });
    (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response()
}

async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI).into_response()
}

/// The token signing keys, without authentication: `jitsh login` shows their fingerprints to a
/// user who has no trust in this service yet, and they are public anyway.
async fn keys(axum::extract::State(state): axum::extract::State<AppState>) -> Json<Value> {
    let keys: Vec<Value> = state
        .service
        .public_keys()
        .iter()
        .map(|k| {
            json!({
                "kid": k.kid(),
                "sha256": k.fingerprint(),
                "public_key": k.to_file_text(),
            })
        })
        .collect();
    Json(json!({ "keys": keys }))
}

/// The authenticated caller.
#[derive(Debug)]
struct Caller(Principal);

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Caller, ApiError> {
        let source = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| source_key(addr.ip()));
        let now = Instant::now();
        if let Some(ip) = source {
            if state.failures(ip, now) >= AUTH_FAILURES {
                return Err(throttled());
            }
        }
        let credential = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(bearer);
        let service = Arc::clone(&state.service);
        let result = match credential {
            None => Err((
                "missing or malformed Authorization header",
                ApiError::unauthorized(),
            )),
            Some(credential) => {
                tokio::task::spawn_blocking(move || service.authenticate(&credential))
                    .await
                    .map_err(|_| ApiError::internal("the request worker stopped unexpectedly"))?
                    .map_err(|e| ("unknown credential", e))
            }
        };
        match result {
            Ok(who) => Ok(Caller(who)),
            Err((why, error)) => {
                state.auth_failed(source, why, now).await;
                Err(error)
            }
        }
    }
}

/// The credential of an `Authorization: Bearer ...` header; the scheme name is
/// case-insensitive (RFC 7235).
fn bearer(value: &str) -> Option<String> {
    let (scheme, credential) = value.trim().split_once(' ')?;
    let credential = credential.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !credential.is_empty() && !credential.contains(' '))
        .then(|| credential.to_owned())
}

/// The throttling key of an address: itself, or its /64 for IPv6 (one host usually holds a
/// whole /64, and could otherwise rotate through it).
pub(super) fn source_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
        v4 => v4,
    }
}

fn throttled() -> ApiError {
    ApiError::too_many(
        "too_many_failures",
        format!(
            "too many failed authentications from your address; wait {} s and check your credential",
            AUTH_WINDOW.as_secs()
        ),
    )
}

impl AppState {
    /// Failures counted for `ip` in its current window.
    pub(super) fn failures(&self, ip: IpAddr, now: Instant) -> u32 {
        self.auth_failures
            .lock()
            .ok()
            .and_then(|m| m.get(&ip).copied())
            .filter(|(start, _)| now.duration_since(*start) < AUTH_WINDOW)
            .map_or(0, |(_, n)| n)
    }

    /// Count a failed authentication and audit it (`auth.fail`; the one that reaches the limit
    /// says so). Later ones from the source, and any beyond [`AUTH_AUDITS`] a window overall, are
    /// only logged, so a flood cannot fill the audit log.
    pub(super) async fn auth_failed(
        &self,
        source: Option<IpAddr>,
        why: &'static str,
        now: Instant,
    ) {
        let count = match (source, self.auth_failures.lock()) {
            (Some(ip), Ok(mut map)) => {
                if map.len() >= AUTH_SOURCES && !map.contains_key(&ip) {
                    map.retain(|_, (start, _)| now.duration_since(*start) < AUTH_WINDOW);
                    // Never forget everyone at once: that would reset the heaviest guessers.
                    if map.len() >= AUTH_SOURCES {
                        let least = map.iter().min_by_key(|(_, (_, n))| *n).map(|(k, _)| *k);
                        if let Some(least) = least {
                            map.remove(&least);
                        }
                    }
                }
                let entry = map.entry(ip).or_insert((now, 0));
                if now.duration_since(entry.0) >= AUTH_WINDOW {
                    *entry = (now, 0);
                }
                entry.1 = entry.1.saturating_add(1);
                entry.1
            }
            _ => 0,
        };
        let shown = source.map_or_else(|| "unknown".to_owned(), |ip| ip.to_string());
        if count > AUTH_FAILURES {
            tracing::warn!(source = %shown, why, "authentication refused (throttled)");
            return;
        }
        let within_budget = self.auth_audits.lock().is_ok_and(|mut budget| {
            if now.duration_since(budget.0) >= AUTH_WINDOW {
                *budget = (now, 0);
            }
            budget.1 = budget.1.saturating_add(1);
            budget.1 <= AUTH_AUDITS
        });
        if !within_budget {
            tracing::warn!(source = %shown, why, "authentication failed (not audited: too many)");
            return;
        }
        let why = if count == AUTH_FAILURES {
            "limit reached: further attempts from this address are refused for a while"
        } else {
            why
        };
        let service = Arc::clone(&self.service);
        let audited = tokio::task::spawn_blocking(move || service.auth_failed(&shown, why)).await;
        if !matches!(audited, Ok(Ok(()))) {
            tracing::error!("a failed authentication could not be audited");
        }
    }
}

/// A JSON body; an empty body reads as `{}`.
#[derive(Debug)]
struct Body<T>(T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Body<T>, ApiError> {
        let bytes = raw_body(req, state).await?;
        let bytes: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) {
            b"{}"
        } else {
            &bytes
        };
        // Syntax first, then shape: a truncated body is malformed even if its start has the
        // wrong type.
        let value: Value = serde_json::from_slice(bytes).map_err(|e| {
            ApiError::bad_request(
                "malformed_json",
                format!("the request body is not valid JSON: {e}"),
            )
        })?;
        // A repeated key is ambiguous (parsers keep the first, the last, or both): refused.
        serde_json::from_slice::<NoDuplicateKeys>(bytes).map_err(|e| {
            ApiError::bad_request(
                "duplicate_key",
                format!("the request body is ambiguous: {e}"),
            )
        })?;
        T::deserialize(value).map(Body).map_err(|e| {
            ApiError::bad_request(
                "invalid_field",
                format!("the request body has a field of the wrong type or name: {e}"),
            )
        })
    }
}

/// Walks a JSON document and fails on the first object with a repeated key. Depth is bounded
/// by serde_json's recursion limit.
struct NoDuplicateKeys;

impl<'de> serde::Deserialize<'de> for NoDuplicateKeys {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(NoDuplicateKeys)
    }
}

impl<'de> serde::de::Visitor<'de> for NoDuplicateKeys {
    type Value = NoDuplicateKeys;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, _: bool) -> Result<Self, E> {
        Ok(self)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Self, E> {
        Ok(self)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Self, E> {
        Ok(self)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Self, E> {
        Ok(self)
    }
    fn visit_str<E>(self, _: &str) -> Result<Self, E> {
        Ok(self)
    }
    fn visit_unit<E>(self) -> Result<Self, E> {
        Ok(self)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self, A::Error> {
        while seq.next_element::<NoDuplicateKeys>()?.is_some() {}
        Ok(self)
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self, A::Error> {
        let mut seen = std::collections::HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            if !seen.insert(key.clone()) {
                return Err(serde::de::Error::custom(format!(
                    "key `{}` appears twice in one object",
                    crate::text::escape(&key)
                )));
            }
            map.next_value::<NoDuplicateKeys>()?;
        }
        Ok(self)
    }
}

async fn raw_body<S: Send + Sync>(req: Request, state: &S) -> Result<Bytes, ApiError> {
    Bytes::from_request(req, state).await.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                ErrorKind::TooLarge,
                "body_too_large",
                format!("the request body is over {} KiB", MAX_BODY / 1024),
            )
        } else {
            ApiError::bad_request("unreadable_body", "the request body could not be read")
        }
    })
}

/// Query string, with rejections in the JSON error shape.
#[derive(Debug)]
struct Q<T>(T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for Q<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Q<T>, ApiError> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(q)| Q(q))
            .map_err(|e| ApiError::bad_request("invalid_query", e.body_text()))
    }
}

async fn me(Caller(who): Caller) -> Json<Value> {
    Json(json!({ "name": who.name, "email": who.email, "memberships": who.memberships }))
}

async fn create(
    axum::extract::State(state): axum::extract::State<AppState>,
    Caller(who): Caller,
    Body(body): Body<CreateBody>,
) -> Result<Response, ApiError> {
    let out = state.run(move |s, now| s.create(&who, body, now)).await?;
    Ok((StatusCode::CREATED, Json(out)).into_response())
}

#[derive(Debug, Deserialize)]
struct ListQuery {
    status: Option<String>,
    #[serde(default)]
    mine: Option<String>,
    limit: Option<u32>,
    cursor: Option<String>,
}

async fn list(
    axum::extract::State(state): axum::extract::State<AppState>,
    Caller(who): Caller,
    Q(q): Q<ListQuery>,
) -> Result<Json<impl serde::Serialize>, ApiError> {
    let status = match q.status.as_deref() {
        None | Some("") | Some("all") => None,
        Some(s) => Some(Status::parse(s).ok_or_else(|| {
            ApiError::bad_request(
                "invalid_query",
                format!("`{}` is not a status; use pending, approved, denied, expired, revoked or withdrawn", crate::text::escape(s)),
            )
        })?),
    };
    let mine = matches!(q.mine.as_deref(), Some("true" | "1" | "yes"));
    let page = Page {
        limit: q.limit,
        cursor: q.cursor.filter(|c| !c.is_empty()),
    };
    state
        .run(move |s, now| s.list(&who, status, mine, page, now))
        .await
        .map(Json)
}

async fn show(
    axum::extract::State(state): axum::extract::State<AppState>,
    Caller(who): Caller,
    Path(id): Path<String>,
) -> Result<Json<impl serde::Serialize>, ApiError> {
    state
        .run(move |s, now| s.get(&who, &id, now))
        .await
        .map(Json)
}

async fn approve(
    axum::extract::State(state): axum::extract::State<AppState>,
    Caller(who): Caller,
    Path(id): Path<String>,
    Body(body): Body<Decision>,
) -> Result<Json<impl serde::Serialize>, ApiError> {
    state
        .run(move |s, now| s.approve(&who, &id, body, now))
        .await
        .map(Json)
}

async fn deny(
    axum::extract::State(state): axum::extract::State<AppState>,
    Caller(who): Caller,
    Path(id): Path<String>,
    Body(body): Body<Decision>,
) -> Result<Json<impl serde::Serialize>, ApiError> {
    state
        .run(move |s, now| s.deny(&who, &id, body, now))
        .await
        .map(Json)
}

async fn withdraw(
    axum::extract::State(state): axum::extract::State<AppState>,
    Caller(who): Caller,
    Path(id): Path<String>,
) -> Result<Json<impl serde::Serialize>, ApiError> {
    state
        .run(move |s, now| s.withdraw(&who, &id, now))
        .await
        .map(Json)
}

async fn revoke(
    axum::extract::State(state): axum::extract::State<AppState>,
    Caller(who): Caller,
    Path(id): Path<String>,
) -> Result<Json<impl serde::Serialize>, ApiError> {
    state
        .run(move |s, now| s.revoke(&who, &id, now))
        .await
        .map(Json)
}

async fn token(
    axum::extract::State(state): axum::extract::State<AppState>,
    Caller(who): Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let out = state.run(move |s, now| s.token(&who, &id, now)).await?;
    // Tokens are credentials: never cache them anywhere on the way.
    Ok(([(header::CACHE_CONTROL, "no-store")], Json(out)).into_response())
}

#[derive(Debug, Deserialize)]
struct SinceQuery {
    since: Option<String>,
}

async fn revocations(
    axum::extract::State(state): axum::extract::State<AppState>,
    Caller(_who): Caller,
    Q(q): Q<SinceQuery>,
) -> Result<Json<impl serde::Serialize>, ApiError> {
    let since = match q.since.as_deref() {
        None | Some("") => 0,
        Some(text) => match text.parse::<i64>() {
            Ok(n) => n,
            Err(_) => crate::rfc3339::parse(text)
                .map(|t| t.timestamp())
                .ok_or_else(|| {
                    ApiError::bad_request(
                        "invalid_query",
                        format!("`since` must be an RFC 3339 time or Unix seconds, not `{text}`"),
                    )
                })?,
        },
    };
    state
        .run(move |s, now| s.revocations(since, now))
        .await
        .map(Json)
}

async fn use_grant(
    axum::extract::State(state): axum::extract::State<AppState>,
    Caller(who): Caller,
    Path(jti): Path<String>,
) -> Result<Json<impl serde::Serialize>, ApiError> {
    state
        .run(move |s, now| s.use_grant(&who, &jti, now))
        .await
        .map(Json)
}

async fn set_lock(
    axum::extract::State(state): axum::extract::State<AppState>,
    Caller(who): Caller,
    Body(body): Body<LockBody>,
) -> Result<Response, ApiError> {
    let out = state.run(move |s, now| s.set_lock(&who, body, now)).await?;
    Ok((StatusCode::CREATED, Json(out)).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ScopeBody {
    scope: Option<String>,
}

#[derive(Debug, Deserialize)]
struct ScopeQuery {
    scope: Option<String>,
}

async fn clear_lock(
    axum::extract::State(state): axum::extract::State<AppState>,
    Caller(who): Caller,
    Q(q): Q<ScopeQuery>,
    Body(body): Body<ScopeBody>,
) -> Result<Json<impl serde::Serialize>, ApiError> {
    let scope = body.scope.or(q.scope).ok_or_else(|| {
        ApiError::bad_request("scope_required", "name the lock to clear with `scope`")
    })?;
    state
        .run(move |s, _| s.clear_lock(&who, &scope))
        .await
        .map(Json)
}

async fn control(
    axum::extract::State(state): axum::extract::State<AppState>,
    Caller(who): Caller,
) -> Result<Json<Value>, ApiError> {
    state.run(move |s, _| s.control_view(&who)).await.map(Json)
}

async fn enable_control(
    axum::extract::State(state): axum::extract::State<AppState>,
    Caller(who): Caller,
    Body(body): Body<EnableBody>,
) -> Result<Json<Value>, ApiError> {
    state
        .run(move |s, now| s.enable_control(&who, body, now))
        .await
        .map(Json)
}

async fn disable_control(
    axum::extract::State(state): axum::extract::State<AppState>,
    Caller(who): Caller,
    Body(body): Body<DisableBody>,
) -> Result<Json<Value>, ApiError> {
    state
        .run(move |s, now| s.disable_control(&who, body, now))
        .await
        .map(Json)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReviewQuery {
    /// `open` (the default) or `all`.
    status: Option<String>,
    limit: Option<u32>,
}

async fn reviews(
    axum::extract::State(state): axum::extract::State<AppState>,
    Caller(who): Caller,
    Q(q): Q<ReviewQuery>,
) -> Result<Json<Value>, ApiError> {
    let open_only = match q.status.as_deref() {
        None | Some("") | Some("open") => true,
        Some("all") => false,
        Some(other) => {
            return Err(ApiError::bad_request(
                "invalid_query",
                format!(
                    "`{}` is not a review status; use open or all",
                    crate::text::escape(other)
                ),
            ))
        }
    };
    state
        .run(move |s, _| s.list_reviews(&who, open_only, q.limit))
        .await
        .map(Json)
}

fn review_id(text: &str) -> Result<i64, ApiError> {
    text.parse::<i64>().ok().filter(|n| *n > 0).ok_or_else(|| {
        ApiError::not_found(format!(
            "no review `{}`; review ids are numbers (see GET /v1/reviews)",
            crate::text::escape(text)
        ))
    })
}

async fn show_review(
    axum::extract::State(state): axum::extract::State<AppState>,
    Caller(who): Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let id = review_id(&id)?;
    state
        .run(move |s, _| s.show_review(&who, id))
        .await
        .map(Json)
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct AckBody {
    comment: Option<String>,
}

async fn ack_review(
    axum::extract::State(state): axum::extract::State<AppState>,
    Caller(who): Caller,
    Path(id): Path<String>,
    Body(body): Body<AckBody>,
) -> Result<Json<Value>, ApiError> {
    let id = review_id(&id)?;
    state
        .run(move |s, now| s.ack_review(&who, id, body.comment, now))
        .await
        .map(Json)
}

async fn locks(
    axum::extract::State(state): axum::extract::State<AppState>,
    Caller(_who): Caller,
) -> Result<Json<impl serde::Serialize>, ApiError> {
    state.run(move |s, now| s.locks(now)).await.map(Json)
}

async fn put_policy(
    axum::extract::State(state): axum::extract::State<AppState>,
    Caller(who): Caller,
    Path(file): Path<String>,
    req: Request,
) -> Result<Json<impl serde::Serialize>, ApiError> {
    let bytes = raw_body(req, &()).await?;
    let text = String::from_utf8(bytes.to_vec()).map_err(|_| {
        ApiError::bad_request("invalid_encoding", "a policy file must be UTF-8 text")
    })?;
    state
        .run(move |s, _| s.put_policy(&who, &file, &text))
        .await
        .map(Json)
}

async fn remove_policy(
    axum::extract::State(state): axum::extract::State<AppState>,
    Caller(who): Caller,
    Path(id): Path<String>,
) -> Result<Json<impl serde::Serialize>, ApiError> {
    state
        .run(move |s, _| s.remove_policy(&who, &id))
        .await
        .map(Json)
}

async fn add_user(
    axum::extract::State(state): axum::extract::State<AppState>,
    Caller(who): Caller,
    Body(body): Body<UserBody>,
) -> Result<Response, ApiError> {
    let out = state.run(move |s, _| s.add_user(&who, body)).await?;
    Ok((
        StatusCode::CREATED,
        [(header::CACHE_CONTROL, "no-store")],
        Json(out),
    )
        .into_response())
}

async fn gate_events(
    axum::extract::State(state): axum::extract::State<AppState>,
    Caller(who): Caller,
    Body(body): Body<GateEventsBody>,
) -> Result<Json<impl serde::Serialize>, ApiError> {
    let out = state
        .run(move |s, now| s.gate_events(&who, body, now))
        .await?;
    if !out.duplicate {
        // The events are durable in the inbox; append them now rather than at the next sweep,
        // without holding the answer (one log sync per event makes a full batch take seconds).
        let service = Arc::clone(&state.service);
        tokio::task::spawn_blocking(move || {
            if let Err(e) = service.drain_audit() {
                tracing::warn!(error = %e, "gate events queued; appending them will be retried");
            }
        });
    }
    Ok(Json(out))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests")]
mod tests {
    use super::*;

    #[test]
    fn one_host_rotating_addresses_is_one_source() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff:1:2:3".parse().unwrap();
        let other: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(source_key(a), source_key(b));
        assert_ne!(source_key(a), source_key(other));
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        assert_eq!(source_key(mapped), "192.0.2.7".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn bearer_scheme_is_case_insensitive_and_nothing_else_is_a_credential() {
        for ok in [
            "Bearer jitsh_x",
            "bearer jitsh_x",
            "BEARER  jitsh_x ",
            "bEaReR jitsh_x",
        ] {
            assert_eq!(bearer(ok).as_deref(), Some("jitsh_x"), "{ok}");
        }
        for bad in [
            "Basic jitsh_x",
            "Bearer",
            "Bearer ",
            "jitsh_x",
            "Bearer a b",
            "Bearerjitsh_x",
        ] {
            assert_eq!(bearer(bad), None, "{bad}");
        }
    }
}

/// The HTTP status of each kind of service error: the one place errors get HTTP shapes.
pub fn status_of(kind: ErrorKind) -> StatusCode {
    match kind {
        ErrorKind::BadRequest => StatusCode::BAD_REQUEST,
        ErrorKind::Unauthenticated => StatusCode::UNAUTHORIZED,
        ErrorKind::Forbidden => StatusCode::FORBIDDEN,
        ErrorKind::NotFound => StatusCode::NOT_FOUND,
        ErrorKind::NotAllowed => StatusCode::METHOD_NOT_ALLOWED,
        ErrorKind::Timeout => StatusCode::REQUEST_TIMEOUT,
        ErrorKind::Conflict => StatusCode::CONFLICT,
        ErrorKind::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        ErrorKind::Policy => StatusCode::UNPROCESSABLE_ENTITY,
        ErrorKind::TooMany => StatusCode::TOO_MANY_REQUESTS,
        ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        ErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
    }
}

/// `{"error": CODE, "message": SENTENCE}` with the kind's status.
impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({ "error": self.code, "message": self.message });
        let mut response = (status_of(self.kind), Json(body)).into_response();
        if self.kind == ErrorKind::TooLarge {
            // The rest of the body was never read; the connection cannot carry another request.
            response.headers_mut().insert(
                header::CONNECTION,
                axum::http::HeaderValue::from_static("close"),
            );
        }
        response
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests")]
mod error_shape_tests {
    use super::*;

    #[tokio::test]
    async fn domain_errors_get_their_status_and_the_json_shape_here() {
        for (e, status) in [
            (ApiError::bad_request("invalid_x", "x"), 400),
            (ApiError::unauthorized(), 401),
            (ApiError::forbidden("not_global_admin", "x"), 403),
            (ApiError::not_found("x"), 404),
            (ApiError::conflict("already_decided", "x"), 409),
            (ApiError::policy("locked", "x"), 422),
            (ApiError::too_many("rate_limited", "x"), 429),
            (ApiError::internal("x"), 500),
            (ApiError::unavailable("store_unavailable", "x"), 503),
            (
                ApiError::new(ErrorKind::TooLarge, "body_too_large", "x"),
                413,
            ),
            (
                ApiError::new(ErrorKind::NotAllowed, "method_not_allowed", "x"),
                405,
            ),
            (
                ApiError::new(ErrorKind::Timeout, "request_timeout", "x"),
                408,
            ),
        ] {
            let (code, message) = (e.code, e.message.clone());
            let response = e.into_response();
            assert_eq!(response.status().as_u16(), status, "{code}");
            let closes = response.headers().get(header::CONNECTION).is_some();
            assert_eq!(closes, status == 413, "{code}");
            let body = axum::body::to_bytes(response.into_body(), 1 << 16)
                .await
                .unwrap();
            let body: Value = serde_json::from_slice(&body).unwrap();
            assert_eq!(body, json!({ "error": code, "message": message }));
        }
    }
}
