//! The admin center: server-rendered HTML under `/ui` on the service's own listener, for
//! approvers and requesters. No script, nothing fetched from elsewhere; every page is sent with a
//! Content-Security-Policy that allows only this service's stylesheet.
//!
//! Sign-in takes the user's credential once and gives an opaque session cookie (HttpOnly,
//! SameSite=Strict, `Secure` under TLS, path `/ui`). Sessions live in memory only: a restart
//! signs everyone out. The session holds the user's name, never the credential, and the user is
//! looked up again on every request, so removing a user or changing their groups applies at once.
//! Every state change is a POST carrying the session's CSRF token in a hidden field, and a POST
//! whose `Origin` is another site is refused. Failed sign-ins count against the same per-address
//! throttle as the API's failed authentications and are audited the same way (`auth.fail`).
//!
//! Decisions go through the workflow functions the API uses; an approval or denial carries the
//! digest of the request as the page showed it, so a request changed since is not decided.

mod admin;
pub mod html;
mod player;
mod reviews;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use serde::Deserialize;
use serde_json::Value;

use super::directory::Principal;
use super::error::ApiError;
use super::http::{source_key, AppState, AUTH_FAILURES, AUTH_WINDOW};
use super::store::Status;
use super::workflow::{CreateBody, Decision, Page, RequestView, MAX_LIST};
use html::{csrf_field, h, page, request_details};

/// What the UI learns from `jitsh serve`'s settings.
#[derive(Debug, Clone, Default)]
pub(crate) struct Site {
    /// Marks the session cookie `Secure`.
    pub tls: bool,
    /// The state folder: the audit log (`STATE/audit`) and its key (`STATE/signing.pub`).
    pub state: Option<std::path::PathBuf>,
    /// The PostgreSQL store whose audit chain replaces the state folder's log.
    pub chain: Option<std::sync::Arc<super::postgres::PgStore>>,
}

/// A session ends this long after sign-in, whatever happens.
pub(crate) const SESSION_LIFETIME: Duration = Duration::from_secs(8 * 3600);
/// ... or after this long without a request.
pub(crate) const SESSION_IDLE: Duration = Duration::from_secs(30 * 60);
/// Sessions held at most; beyond, expired ones are dropped and then sign-ins are refused.
const MAX_SESSIONS: usize = 10_000;
const COOKIE: &str = "jitsh_ui";

#[derive(Debug)]
struct Session {
    user: String,
    csrf: String,
    created: Instant,
    seen: Instant,
}

/// Sessions by the SHA-256 of their cookie value (a memory dump shows no usable cookie).
#[derive(Debug, Default)]
struct Sessions(Mutex<HashMap<String, Session>>);

impl Sessions {
    fn open(&self, user: &str, now: Instant) -> Result<(String, String), ApiError> {
        let id = random_token()?;
        let csrf = random_token()?;
        let mut map = self
            .0
            .lock()
            .map_err(|_| ApiError::internal("session table unavailable"))?;
        if map.len() >= MAX_SESSIONS {
            map.retain(|_, s| live(s, now));
        }
        if map.len() >= MAX_SESSIONS {
            return Err(ApiError::too_many(
                "too_many_sessions",
                "too many people are signed in; try again later",
            ));
        }
        map.insert(
            hash(&id),
            Session {
                user: user.to_owned(),
                csrf: csrf.clone(),
                created: now,
                seen: now,
            },
        );
        Ok((id, csrf))
    }

    /// The user and CSRF token of a live session; touches it.
    fn get(&self, id: &str, now: Instant) -> Option<(String, String)> {
        let mut map = self.0.lock().ok()?;
        let key = hash(id);
        let session = map.get_mut(&key)?;
        if !live(session, now) {
            map.remove(&key);
            return None;
        }
        session.seen = now;
        Some((session.user.clone(), session.csrf.clone()))
    }

    fn close(&self, id: &str) {
        if let Ok(mut map) = self.0.lock() {
            map.remove(&hash(id));
        }
    }
}

fn live(s: &Session, now: Instant) -> bool {
    now.duration_since(s.created) < SESSION_LIFETIME && now.duration_since(s.seen) < SESSION_IDLE
}

fn hash(text: &str) -> String {
    ring::digest::digest(&ring::digest::SHA256, text.as_bytes())
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// 256 random bits, base64url.
fn random_token() -> Result<String, ApiError> {
    use base64::Engine as _;
    use ring::rand::SecureRandom as _;
    let mut buf = [0u8; 32];
    ring::rand::SystemRandom::new()
        .fill(&mut buf)
        .map_err(|_| ApiError::internal("no randomness available"))?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(buf))
}

/// Equal strings in time independent of where they differ.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

#[derive(Debug, Clone)]
pub(super) struct Ui {
    pub(super) app: AppState,
    sessions: Arc<Sessions>,
}

/// The UI's routes, to be merged into the service's router.
pub(crate) fn router<S>(app: AppState) -> Router<S> {
    Router::new()
        .route("/ui", get(home))
        .route("/ui/", get(home))
        .route("/ui/assets/style.css", get(style))
        .route("/ui/signin", get(signin_form).post(signin))
        .route("/ui/signout", post(signout))
        .route("/ui/approvals", get(approvals))
        .route("/ui/requests", get(requests).post(file_request))
        .route("/ui/requests/{id}/decide", post(decide))
        .route("/ui/requests/{id}/revoke", post(revoke))
        .route("/ui/requests/{id}/withdraw", post(withdraw))
        .route("/ui/audit", get(admin::audit))
        .route("/ui/policies", get(admin::policies))
        .route("/ui/locks", get(admin::locks))
        .route("/ui/users", get(admin::users))
        .route("/ui/reviews", get(reviews::reviews))
        .route("/ui/reviews/{id}/ack", post(reviews::ack))
        .route("/ui/sessions", get(player::sessions))
        .route("/ui/sessions/{id}", get(player::session))
        .route("/ui/sessions/{id}/cast", get(player::cast))
        .route("/ui/assets/asciinema-player.min.js", get(player::player_js))
        .route("/ui/assets/asciinema-player.css", get(player::player_css))
        .route("/ui/assets/asciinema-player.LICENSE", get(player::license))
        .route("/ui/assets/player.js", get(player::glue_js))
        .with_state(Ui {
            app,
            sessions: Arc::default(),
        })
}

/// What every handler needs from the request besides its body.
#[derive(Debug)]
pub(super) struct Ctx {
    source: Option<IpAddr>,
    tls: bool,
    pub(super) state: Option<std::path::PathBuf>,
    pub(super) chain: Option<std::sync::Arc<super::postgres::PgStore>>,
    cookie: Option<String>,
    /// False when the request says it comes from a page of another origin.
    same_origin: bool,
}

impl<S: Send + Sync> FromRequestParts<S> for Ctx {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Ctx, Self::Rejection> {
        let source = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(a)| source_key(a.ip()));
        let site = parts.extensions.get::<Site>().cloned().unwrap_or_default();
        Ok(Ctx {
            source,
            tls: site.tls,
            state: site.state,
            chain: site.chain,
            cookie: cookie(&parts.headers),
            same_origin: same_origin(&parts.headers),
        })
    }
}

/// The session cookie's value, if sent.
fn cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.trim().to_owned())
        .filter(|v| !v.is_empty() && v.len() <= 100)
}

/// An `Origin` header, when sent, must name this host (browsers send it on every POST).
fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return true;
    };
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    let origin = origin.to_str().ok().map(|o| {
        o.strip_prefix("https://")
            .or_else(|| o.strip_prefix("http://"))
            .unwrap_or("")
            .to_owned()
    });
    matches!((origin, host), (Some(o), Some(h)) if !o.is_empty() && o.eq_ignore_ascii_case(h))
}

/// The signed-in user of a request.
pub(super) struct Signed {
    pub(super) who: Principal,
    pub(super) csrf: String,
}

impl Ui {
    /// The session's user, if the cookie names a live session and the user still exists.
    pub(super) async fn signed(&self, ctx: &Ctx) -> Option<Signed> {
        let id = ctx.cookie.as_deref()?;
        let (user, csrf) = self.sessions.get(id, Instant::now())?;
        let service = Arc::clone(&self.app.service);
        let who = tokio::task::spawn_blocking(move || service.user(&user))
            .await
            .ok()?
            .ok()??;
        Some(Signed { who, csrf })
    }

    /// The signed-in user of a state change whose form carried the session's CSRF token.
    async fn changing(&self, ctx: &Ctx, csrf: Option<&str>) -> Result<Signed, Response> {
        if !ctx.same_origin {
            return Err(refused(
                StatusCode::FORBIDDEN,
                "This form was sent from another site, so nothing was changed.",
            ));
        }
        let Some(signed) = self.signed(ctx).await else {
            return Err(to_signin());
        };
        match csrf {
            Some(sent) if same(sent, &signed.csrf) => Ok(signed),
            _ => Err(refused(
                StatusCode::FORBIDDEN,
                "This form is out of date or did not come from this admin center, so nothing was changed. Reload the page and try again.",
            )),
        }
    }
}

/// Headers every UI answer carries: no script, no framing, nothing cached or leaked.
pub(super) fn secure(mut response: Response) -> Response {
    let headers = response.headers_mut();
    for (name, value) in [
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        // `same-origin`, not `no-referrer`: with no referrer browsers send `Origin: null` on forms.
        (header::REFERRER_POLICY, "same-origin"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::CACHE_CONTROL, "no-store"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}

pub(super) fn html(status: StatusCode, body: String) -> Response {
    secure(
        (
            status,
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            body,
        )
            .into_response(),
    )
}

fn redirect(to: &'static str) -> Response {
    secure((StatusCode::SEE_OTHER, [(header::LOCATION, to)]).into_response())
}

pub(super) fn to_signin() -> Response {
    redirect("/ui/signin")
}

fn refused(status: StatusCode, message: &str) -> Response {
    html(
        status,
        page(
            "Not done",
            None,
            Some(message),
            r#"<p><a href="/ui/">Back to the admin center</a></p>"#,
        ),
    )
}

/// A workflow error as a page: its sentence, and the way back.
pub(super) fn failed(signed: &Signed, e: &ApiError, back: &str) -> Response {
    html(
        super::http::status_of(e.kind),
        page(
            "Not done",
            Some((&signed.who, &signed.csrf)),
            Some(&e.message),
            &format!(r#"<p><a href="{}">Back</a></p>"#, h(back)),
        ),
    )
}

async fn style() -> Response {
    secure(
        (
            [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
            html::STYLE,
        )
            .into_response(),
    )
}

async fn home(State(ui): State<Ui>, ctx: Ctx) -> Response {
    match ui.signed(&ctx).await {
        Some(_) => redirect("/ui/approvals"),
        None => to_signin(),
    }
}

fn signin_page(notice: Option<&str>) -> String {
    page(
        "Sign in",
        None,
        notice,
        r#"<form method="post" action="/ui/signin" class="card">
<label for="credential">Credential</label>
<input type="password" id="credential" name="credential" autocomplete="current-password" required autofocus>
<p class="hint">The credential <code>jitsh user add</code> printed for you, the one <code>jitsh login</code> uses.</p>
<button type="submit">Sign in</button>
</form>"#,
    )
}

async fn signin_form(State(ui): State<Ui>, ctx: Ctx) -> Response {
    if ui.signed(&ctx).await.is_some() {
        return redirect("/ui/approvals");
    }
    html(StatusCode::OK, signin_page(None))
}

#[derive(Debug, Deserialize)]
struct SigninForm {
    credential: String,
}

async fn signin(
    State(ui): State<Ui>,
    ctx: Ctx,
    form: Result<Form<SigninForm>, axum::extract::rejection::FormRejection>,
) -> Response {
    if !ctx.same_origin {
        return refused(
            StatusCode::FORBIDDEN,
            "This sign-in was sent from another site.",
        );
    }
    let now = Instant::now();
    if let Some(ip) = ctx.source {
        if ui.app.failures(ip, now) >= AUTH_FAILURES {
            return html(
                StatusCode::TOO_MANY_REQUESTS,
                signin_page(Some(&format!(
                    "Too many failed sign-ins from your address; wait {} s and check your credential.",
                    AUTH_WINDOW.as_secs()
                ))),
            );
        }
    }
    let credential = form.map(|Form(f)| f.credential).unwrap_or_default();
    let credential = credential.trim().to_owned();
    let service = Arc::clone(&ui.app.service);
    let result = if credential.is_empty() || credential.len() > 512 {
        Err(ApiError::unauthorized())
    } else {
        tokio::task::spawn_blocking(move || service.authenticate(&credential))
            .await
            .unwrap_or_else(|_| Err(ApiError::internal("the sign-in worker stopped")))
    };
    let who = match result {
        Ok(who) => who,
        Err(e) if e.kind == super::error::ErrorKind::Unauthenticated => {
            ui.app
                .auth_failed(ctx.source, "web sign-in: unknown credential", now)
                .await;
            return html(
                StatusCode::UNAUTHORIZED,
                signin_page(Some(
                    "That credential is not known here. Check it and try again.",
                )),
            );
        }
        Err(e) => return refused(super::http::status_of(e.kind), &e.message),
    };
    // A new session id on every sign-in: a cookie planted before sign-in is worthless.
    if let Some(old) = &ctx.cookie {
        ui.sessions.close(old);
    }
    let (id, _) = match ui.sessions.open(&who.name, now) {
        Ok(s) => s,
        Err(e) => return refused(super::http::status_of(e.kind), &e.message),
    };
    let mut response = redirect("/ui/approvals");
    let cookie = format!(
        "{COOKIE}={id}; Path=/ui; HttpOnly; SameSite=Strict; Max-Age={}{}",
        SESSION_LIFETIME.as_secs(),
        if ctx.tls { "; Secure" } else { "" }
    );
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, v);
    }
    tracing::info!(user = %who.name, "web sign-in");
    response
}

#[derive(Debug, Deserialize)]
struct CsrfForm {
    csrf: Option<String>,
}

async fn signout(
    State(ui): State<Ui>,
    ctx: Ctx,
    form: Result<Form<CsrfForm>, axum::extract::rejection::FormRejection>,
) -> Response {
    let csrf = form.ok().and_then(|Form(f)| f.csrf);
    if let Err(r) = ui.changing(&ctx, csrf.as_deref()).await {
        return r;
    }
    if let Some(id) = &ctx.cookie {
        ui.sessions.close(id);
    }
    let mut response = redirect("/ui/signin");
    response.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static("jitsh_ui=; Path=/ui; HttpOnly; SameSite=Strict; Max-Age=0"),
    );
    response
}

/// Every request of `status` the user may see (up to [`MAX_LIST`]), newest first.
async fn listed(
    ui: &Ui,
    who: &Principal,
    status: Option<Status>,
    mine: bool,
) -> Result<Vec<Value>, ApiError> {
    let who = who.clone();
    let page = Page {
        limit: Some(MAX_LIST),
        cursor: None,
    };
    let out = ui
        .app
        .run(move |s, now| s.list(&who, status, mine, page, now))
        .await?;
    Ok(out.requests.iter().map(RequestView::to_value).collect())
}

fn approver_of(who: &Principal, r: &Value) -> bool {
    let approvers: Vec<String> = r
        .get("approvers")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    who.in_any(&approvers)
}

fn requester_is(who: &Principal, r: &Value) -> bool {
    r.get("requester")
        .and_then(Value::as_str)
        .is_some_and(|n| n.eq_ignore_ascii_case(&who.name))
}

async fn approvals(State(ui): State<Ui>, ctx: Ctx) -> Response {
    let Some(signed) = ui.signed(&ctx).await else {
        return to_signin();
    };
    let who = &signed.who;
    let pending = match listed(&ui, who, Some(Status::Pending), false).await {
        Ok(v) => v,
        Err(e) => return failed(&signed, &e, "/ui/"),
    };
    let approved = match listed(&ui, who, Some(Status::Approved), false).await {
        Ok(v) => v,
        Err(e) => return failed(&signed, &e, "/ui/"),
    };
    let mut body = String::from("<h2>Waiting for your decision</h2>");
    let decidable: Vec<&Value> = pending
        .iter()
        .filter(|r| !requester_is(who, r) && approver_of(who, r))
        .collect();
    if decidable.is_empty() {
        body.push_str("<p>Nothing is waiting for you.</p>");
    }
    for r in decidable {
        let Some(id) = html::id_of(r) else { continue };
        let digest = r.get("digest").and_then(Value::as_str).unwrap_or_default();
        body.push_str(&format!(
            r#"<section class="card" aria-labelledby="h-{id}"><h3 id="h-{id}">Request {id}</h3>{details}
<form method="post" action="/ui/requests/{id}/decide">{csrf}<input type="hidden" name="digest" value="{digest}">
<label for="c-{id}">Comment (required to deny)</label>
<textarea id="c-{id}" name="comment" rows="2" maxlength="2000"></textarea>
<button type="submit" name="action" value="approve">Approve</button>
<button type="submit" name="action" value="deny" class="secondary">Deny</button>
</form></section>"#,
            details = request_details(r),
            csrf = csrf_field(&signed.csrf),
            digest = h(digest),
        ));
    }
    body.push_str("<h2>Approved grants you may revoke</h2>");
    let revocable: Vec<&Value> = approved
        .iter()
        .filter(|r| {
            r.pointer("/grant/state").and_then(Value::as_str) == Some("live")
                && (approver_of(who, r) || who.is_global_admin())
        })
        .collect();
    if revocable.is_empty() {
        body.push_str("<p>No live grants.</p>");
    }
    for r in revocable {
        let Some(id) = html::id_of(r) else { continue };
        body.push_str(&format!(
            r#"<section class="card" aria-labelledby="g-{id}"><h3 id="g-{id}">Grant of request {id}</h3>{details}
<form method="post" action="/ui/requests/{id}/revoke">{csrf}<button type="submit">Revoke</button></form></section>"#,
            details = request_details(r),
            csrf = csrf_field(&signed.csrf),
        ));
    }
    html(
        StatusCode::OK,
        page("Approvals", Some((who, &signed.csrf)), None, &body),
    )
}

#[derive(Debug, Deserialize)]
struct DecideForm {
    csrf: Option<String>,
    action: Option<String>,
    comment: Option<String>,
    digest: Option<String>,
}

async fn decide(
    State(ui): State<Ui>,
    ctx: Ctx,
    Path(id): Path<String>,
    form: Result<Form<DecideForm>, axum::extract::rejection::FormRejection>,
) -> Response {
    let Ok(Form(form)) = form else {
        return refused(StatusCode::BAD_REQUEST, "The form could not be read.");
    };
    let signed = match ui.changing(&ctx, form.csrf.as_deref()).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    // Always bound to what the page showed: a form without the digest decides nothing.
    let Some(digest) = form.digest.filter(|d| !d.trim().is_empty()) else {
        return refused(
            StatusCode::BAD_REQUEST,
            "The request's digest is missing, so nothing was decided. Reload the page.",
        );
    };
    let decision = Decision {
        comment: form.comment,
        digest: Some(digest),
    };
    let who = signed.who.clone();
    let result = match form.action.as_deref() {
        Some("approve") => {
            ui.app
                .run(move |s, now| s.approve(&who, &id, decision, now))
                .await
        }
        Some("deny") => {
            ui.app
                .run(move |s, now| s.deny(&who, &id, decision, now))
                .await
        }
        _ => {
            return refused(
                StatusCode::BAD_REQUEST,
                "Choose Approve or Deny; nothing was decided.",
            )
        }
    };
    match result {
        Ok(_) => redirect("/ui/approvals"),
        Err(e) => failed(&signed, &e, "/ui/approvals"),
    }
}

async fn revoke(
    State(ui): State<Ui>,
    ctx: Ctx,
    Path(id): Path<String>,
    form: Result<Form<CsrfForm>, axum::extract::rejection::FormRejection>,
) -> Response {
    let csrf = form.ok().and_then(|Form(f)| f.csrf);
    let signed = match ui.changing(&ctx, csrf.as_deref()).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let who = signed.who.clone();
    match ui.app.run(move |s, now| s.revoke(&who, &id, now)).await {
        Ok(_) => redirect("/ui/approvals"),
        Err(e) => failed(&signed, &e, "/ui/approvals"),
    }
}

async fn withdraw(
    State(ui): State<Ui>,
    ctx: Ctx,
    Path(id): Path<String>,
    form: Result<Form<CsrfForm>, axum::extract::rejection::FormRejection>,
) -> Response {
    let csrf = form.ok().and_then(|Form(f)| f.csrf);
    let signed = match ui.changing(&ctx, csrf.as_deref()).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let who = signed.who.clone();
    match ui.app.run(move |s, now| s.withdraw(&who, &id, now)).await {
        Ok(_) => redirect("/ui/requests"),
        Err(e) => failed(&signed, &e, "/ui/requests"),
    }
}

/// Tasks and roles a user can pick: the names written in approval rules (globs are left to
/// typing, in the same field).
fn choices(ui: &Ui) -> Vec<String> {
    let Ok(set) = ui.app.service.policy_set() else {
        return Vec::new();
    };
    let mut out: Vec<String> = set
        .rules()
        .iter()
        .filter(|r| matches!(r.effect, crate::policy::Effect::Approval))
        .flat_map(|r| r.tasks.iter().cloned())
        .filter(|t| !t.contains(['*', '?', '[']))
        .collect();
    out.sort_by_key(|t| t.to_lowercase());
    out.dedup_by(|a, b| a.eq_ignore_ascii_case(b));
    out
}

async fn requests(State(ui): State<Ui>, ctx: Ctx) -> Response {
    let Some(signed) = ui.signed(&ctx).await else {
        return to_signin();
    };
    let mine = match listed(&ui, &signed.who, None, true).await {
        Ok(v) => v,
        Err(e) => return failed(&signed, &e, "/ui/"),
    };
    let options: String = choices(&ui)
        .iter()
        .map(|t| format!(r#"<option value="{0}">{0}</option>"#, h(t)))
        .collect();
    let mut body = format!(
        r#"<section class="card" aria-labelledby="new"><h2 id="new">New request</h2>
<form method="post" action="/ui/requests">{csrf}
<label for="task">Task or role</label>
<input type="text" id="task" name="task" list="tasks" required aria-describedby="task-hint">
<datalist id="tasks">{options}</datalist>
<p class="hint" id="task-hint">A cmdlet such as <code>Set-Mailbox</code>, or <code>role:NAME</code> for a role.</p>
<label for="params">Parameters (one <code>Name=Value</code> a line)</label>
<textarea id="params" name="params" rows="3"></textarea>
<label for="duration">Duration</label>
<input type="text" id="duration" name="duration" required placeholder="1h" aria-describedby="duration-hint">
<p class="hint" id="duration-hint">Such as <code>30m</code>, <code>1h</code>, <code>1h30m</code>.</p>
<label for="reason">Reason</label>
<textarea id="reason" name="reason" rows="2" required maxlength="2000"></textarea>
<label for="command">Exact command (optional)</label>
<input type="text" id="command" name="command">
<label for="uses">Uses (optional)</label>
<input type="number" id="uses" name="uses" min="1">
<label for="ticket">Ticket (optional)</label>
<input type="text" id="ticket" name="ticket">
<button type="submit">File request</button>
</form></section>
<h2>My requests</h2>"#,
        csrf = csrf_field(&signed.csrf),
    );
    if mine.is_empty() {
        body.push_str("<p>You have filed no requests.</p>");
    }
    for r in &mine {
        let Some(id) = html::id_of(r) else { continue };
        body.push_str(&format!(
            r#"<section class="card" aria-labelledby="m-{id}"><h3 id="m-{id}">Request {id}: {status}</h3>{details}"#,
            status = html::value(r.get("status")),
            details = request_details(r),
        ));
        if r.get("status").and_then(Value::as_str) == Some("pending") {
            body.push_str(&format!(
                r#"<form method="post" action="/ui/requests/{id}/withdraw">{}<button type="submit" class="secondary">Withdraw</button></form>"#,
                csrf_field(&signed.csrf)
            ));
        }
        body.push_str("</section>");
    }
    html(
        StatusCode::OK,
        page(
            "My requests",
            Some((&signed.who, &signed.csrf)),
            None,
            &body,
        ),
    )
}

#[derive(Debug, Deserialize)]
struct RequestForm {
    csrf: Option<String>,
    task: Option<String>,
    params: Option<String>,
    duration: Option<String>,
    reason: Option<String>,
    command: Option<String>,
    uses: Option<String>,
    ticket: Option<String>,
}

/// The form as the API's body; `Err` names the field a person must correct.
fn create_body(f: RequestForm) -> Result<CreateBody, String> {
    let given = |v: Option<String>| v.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty());
    let target = given(f.task).ok_or("Name a task or a role.")?;
    let (task, role) = match target.strip_prefix("role:") {
        Some(role) => (None, Some(role.trim().to_owned())),
        None => (Some(target), None),
    };
    let mut params = std::collections::BTreeMap::new();
    for line in f.params.unwrap_or_default().lines() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let (name, value) = line
            .split_once('=')
            .ok_or_else(|| format!("Parameter line `{line}` needs the form Name=Value."))?;
        let name = name.trim().trim_start_matches('-').to_owned();
        if name.is_empty()
            || params
                .insert(name.clone(), value.trim().to_owned())
                .is_some()
        {
            return Err(format!(
                "Parameter `{name}` is empty or given twice; give each once."
            ));
        }
    }
    let uses = given(f.uses)
        .map(|u| {
            u.parse::<u32>()
                .map_err(|_| "Uses must be a whole number.".to_owned())
        })
        .transpose()?;
    Ok(CreateBody {
        task,
        role,
        rule: None,
        reason: given(f.reason),
        duration: given(f.duration),
        params: (!params.is_empty()).then_some(params),
        ticket: given(f.ticket),
        command: given(f.command),
        uses,
    })
}

async fn file_request(
    State(ui): State<Ui>,
    ctx: Ctx,
    form: Result<Form<RequestForm>, axum::extract::rejection::FormRejection>,
) -> Response {
    let Ok(Form(form)) = form else {
        return refused(StatusCode::BAD_REQUEST, "The form could not be read.");
    };
    let signed = match ui.changing(&ctx, form.csrf.as_deref()).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let body = match create_body(form) {
        Ok(b) => b,
        Err(why) => {
            return failed(
                &signed,
                &ApiError::bad_request("invalid_form", why),
                "/ui/requests",
            )
        }
    };
    let who = signed.who.clone();
    match ui.app.run(move |s, now| s.create(&who, body, now)).await {
        Ok(_) => redirect("/ui/requests"),
        Err(e) => failed(&signed, &e, "/ui/requests"),
    }
}
