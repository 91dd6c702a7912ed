//! The REST JSON API: routes, authentication, body decoding. Handlers are thin: they decode,
//! authenticate, and run one workflow method on the blocking pool.
//!
//! Every failure, including malformed JSON, oversized bodies and unknown routes, is answered with
//! the JSON error shape of [`ApiError`].

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, FromRequest, FromRequestParts, Path, Query, Request};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};
use time::OffsetDateTime;

use super::directory::Principal;
use super::error::ApiError;
use super::store::Status;
use super::workflow::{CreateBody, GateEventsBody, LockBody, Service, UserBody};

/// Largest request body accepted.
pub const MAX_BODY: usize = 64 * 1024;

const OPENAPI: &str = include_str!("openapi.json");

/// Shared by all handlers.
#[derive(Debug, Clone)]
pub struct AppState {
    pub service: Arc<Service>,
    /// Woken after every step so queued notifications go out promptly.
    pub outbox: Arc<tokio::sync::Notify>,
}

impl AppState {
    /// Run `f` on the blocking pool (the store is synchronous).
    async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Service, OffsetDateTime) -> Result<T, ApiError> + Send + 'static,
    ) -> Result<T, ApiError> {
        let service = Arc::clone(&self.service);
        let out = tokio::task::spawn_blocking(move || f(&service, OffsetDateTime::now_utc()))
            .await
            .map_err(|_| ApiError::internal("the request worker stopped unexpectedly"))?;
        self.outbox.notify_one();
        out
    }
}

/// All routes.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route(
            "/healthz",
            get(|| async { Json(json!({ "status": "ok" })) }),
        )
        .route("/openapi.json", get(openapi))
        .route("/v1/keys", get(keys))
        .route("/v1/me", get(me))
        .route("/v1/requests", post(create).get(list))
        .route("/v1/requests/{id}", get(show))
        .route("/v1/requests/{id}/approve", post(approve))
        .route("/v1/requests/{id}/deny", post(deny))
        .route("/v1/requests/{id}/revoke", post(revoke))
        .route("/v1/requests/{id}/token", get(token))
        .route("/v1/revocations", get(revocations))
        .route("/v1/grants/{jti}/use", post(use_grant))
        .route("/v1/locks", post(set_lock).delete(clear_lock).get(locks))
        .route("/v1/policies/{file}", put(put_policy))
        .route("/v1/users", post(add_user))
        .route("/v1/audit/events", post(gate_events))
        .fallback(|| async {
            ApiError::not_found("no such endpoint; see GET /openapi.json for the API")
        })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "this endpoint does not accept that method; see GET /openapi.json",
            )
        })
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(state)
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
        let credential = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(|c| c.trim().to_owned())
            .filter(|c| !c.is_empty())
            .ok_or_else(ApiError::unauthorized)?;
        let service = Arc::clone(&state.service);
        tokio::task::spawn_blocking(move || service.authenticate(&credential))
            .await
            .map_err(|_| ApiError::internal("the request worker stopped unexpectedly"))?
            .map(Caller)
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
        T::deserialize(value).map(Body).map_err(|e| {
            ApiError::bad_request(
                "invalid_field",
                format!("the request body has a field of the wrong type or name: {e}"),
            )
        })
    }
}

async fn raw_body<S: Send + Sync>(req: Request, state: &S) -> Result<Bytes, ApiError> {
    Bytes::from_request(req, state).await.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
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
}

async fn list(
    axum::extract::State(state): axum::extract::State<AppState>,
    Caller(who): Caller,
    Q(q): Q<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    let status = match q.status.as_deref() {
        None | Some("") | Some("all") => None,
        Some(s) => Some(Status::parse(s).ok_or_else(|| {
            ApiError::bad_request(
                "invalid_query",
                format!("`{s}` is not a status; use pending, approved, denied, expired or revoked"),
            )
        })?),
    };
    let mine = matches!(q.mine.as_deref(), Some("true" | "1" | "yes"));
    state
        .run(move |s, now| s.list(&who, status, mine, now))
        .await
        .map(Json)
}

async fn show(
    axum::extract::State(state): axum::extract::State<AppState>,
    Caller(who): Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    state
        .run(move |s, now| s.get(&who, &id, now))
        .await
        .map(Json)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CommentBody {
    comment: Option<String>,
}

async fn approve(
    axum::extract::State(state): axum::extract::State<AppState>,
    Caller(who): Caller,
    Path(id): Path<String>,
    Body(body): Body<CommentBody>,
) -> Result<Json<Value>, ApiError> {
    state
        .run(move |s, now| s.approve(&who, &id, body.comment, now))
        .await
        .map(Json)
}

async fn deny(
    axum::extract::State(state): axum::extract::State<AppState>,
    Caller(who): Caller,
    Path(id): Path<String>,
    Body(body): Body<CommentBody>,
) -> Result<Json<Value>, ApiError> {
    state
        .run(move |s, now| s.deny(&who, &id, body.comment, now))
        .await
        .map(Json)
}

async fn revoke(
    axum::extract::State(state): axum::extract::State<AppState>,
    Caller(who): Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
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
) -> Result<Json<Value>, ApiError> {
    let since = match q.since.as_deref() {
        None | Some("") => 0,
        Some(text) => match text.parse::<i64>() {
            Ok(n) => n,
            Err(_) => OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
                .map(|t| t.unix_timestamp())
                .map_err(|_| {
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
) -> Result<Json<Value>, ApiError> {
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
) -> Result<Json<Value>, ApiError> {
    let scope = body.scope.or(q.scope).ok_or_else(|| {
        ApiError::bad_request("scope_required", "name the lock to clear with `scope`")
    })?;
    state
        .run(move |s, _| s.clear_lock(&who, &scope))
        .await
        .map(Json)
}

async fn locks(
    axum::extract::State(state): axum::extract::State<AppState>,
    Caller(_who): Caller,
) -> Result<Json<Value>, ApiError> {
    state.run(move |s, now| s.locks(now)).await.map(Json)
}

async fn put_policy(
    axum::extract::State(state): axum::extract::State<AppState>,
    Caller(who): Caller,
    Path(file): Path<String>,
    req: Request,
) -> Result<Json<Value>, ApiError> {
    let bytes = raw_body(req, &()).await?;
    let text = String::from_utf8(bytes.to_vec()).map_err(|_| {
        ApiError::bad_request("invalid_encoding", "a policy file must be UTF-8 text")
    })?;
    state
        .run(move |s, _| s.put_policy(&who, &file, &text))
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
) -> Result<Json<Value>, ApiError> {
    let out = state
        .run(move |s, now| s.gate_events(&who, body, now))
        .await?;
    if out["duplicate"] == Value::Bool(false) {
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
