//! Routing: protocol v1 endpoints for runners and the admin API.
//!
//! Runner endpoints are under `/v1/`, admin endpoints under `/admin/`; each side
//! has its own bearer token. Handlers parse bodies strictly (a key given twice is
//! refused), run the store's rules on the blocking pool (a database call may
//! wait on a disk), and map every refusal to one status code. A claim that finds
//! no work waits on a notification, not on a thread, so hundreds of runners can
//! hold long polls on one process.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, Path, Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::Router;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sortie_protocol::{
    Action, ClaimRequest, ClaimResponse, Committed, CompleteRequest, FailRequest, Fence,
    HeartbeatRequest, HeartbeatResponse, InventoryRequest, LeaseResponse, HEADER_LEASE_TOKEN,
    LOG_ENCODING_ZSTD,
};
use tokio::sync::{watch, Notify};

use crate::store::{Filter, Job, Outcome, Refusal, Store, Upload, STATUSES};

mod definitions;
pub(crate) use definitions::definition_view;
use definitions::{
    add_admin, audit_log, list_admins, list_definitions, load_definition, revoke_admin,
    run_definition, show_definition,
};

/// Largest request body accepted (a runner's log chunks are at most 1 MiB).
pub const MAX_BODY: usize = 8 * 1024 * 1024;

/// Request bodies over this size wait for one of [`LARGE_BODIES`] permits, so
/// many large uploads at once cannot exhaust the server's memory.
const LARGE: u64 = 256 * 1024;
const LARGE_BODIES: usize = 16;

pub struct Api {
    pub store: Arc<Store>,
    runner_token: Option<String>,
    admin_token: String,
    /// Notified when work is queued or returns to the queue (wakes long polls).
    pub work: Notify,
    /// Becomes true when the server is stopping: long polls answer at once.
    stopping: watch::Receiver<bool>,
    /// Permits for large request bodies (see [`LARGE_BODIES`]).
    large: tokio::sync::Semaphore,
    pub metrics: crate::metrics::Metrics,
}

impl Api {
    pub fn new(
        store: Arc<Store>,
        runner_token: Option<String>,
        admin_token: String,
        stopping: watch::Receiver<bool>,
    ) -> Api {
        Api {
            store,
            runner_token,
            admin_token,
            work: Notify::new(),
            stopping,
            large: tokio::sync::Semaphore::new(LARGE_BODIES),
            metrics: Default::default(),
        }
    }
}

pub(crate) type Shared = Arc<Api>;

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Auth {
    /// The runners' token (or none, when the server has no runner token).
    Runner,
    Admin,
    Public,
}

/// One route: the router is built from [`routes`], and the OpenAPI document is
/// checked against it, so neither can drift from the other.
pub struct Route {
    pub method: &'static str,
    pub path: &'static str,
    pub auth: Auth,
    handler: axum::routing::MethodRouter<Shared>,
}

/// Every route the server answers.
pub fn routes() -> Vec<Route> {
    fn route<H, T>(method: &'static str, path: &'static str, auth: Auth, handler: H) -> Route
    where
        H: axum::handler::Handler<T, Shared>,
        T: 'static,
    {
        let filter = axum::http::Method::from_bytes(method.as_bytes())
            .ok()
            .and_then(|m| axum::routing::MethodFilter::try_from(m).ok())
            .expect("a route's method is an HTTP method");
        Route {
            method,
            path,
            auth,
            handler: axum::routing::on(filter, handler),
        }
    }
    use Auth::{Admin, Public, Runner};
    vec![
        route("POST", "/v1/claim", Runner, claim),
        route("POST", "/v1/jobs/{id}/start", Runner, start),
        route("POST", "/v1/jobs/{id}/heartbeat", Runner, heartbeat),
        route("PUT", "/v1/jobs/{id}/log", Runner, append_log),
        route("POST", "/v1/jobs/{id}/complete", Runner, complete),
        route("POST", "/v1/jobs/{id}/fail", Runner, fail),
        route("PUT", "/v1/inventory", Runner, put_inventory),
        route("POST", "/admin/jobs", Admin, enqueue),
        route("GET", "/admin/jobs", Admin, list_jobs),
        route("GET", "/admin/jobs/{id}", Admin, show_job),
        route("GET", "/admin/jobs/{id}/log", Admin, job_log),
        route("POST", "/admin/jobs/{id}/cancel", Admin, cancel),
        route("GET", "/admin/inventory", Admin, inventory),
        route("POST", "/admin/runners", Admin, register_runner),
        route("GET", "/admin/runners", Admin, list_runners),
        route("DELETE", "/admin/runners/{name}", Admin, revoke_runner),
        route("POST", "/admin/runners/{name}/rotate", Admin, rotate_runner),
        route("POST", "/admin/definitions", Admin, load_definition),
        route("GET", "/admin/definitions", Admin, list_definitions),
        route("GET", "/admin/definitions/{name}", Admin, show_definition),
        route(
            "POST",
            "/admin/definitions/{name}/run",
            Admin,
            run_definition,
        ),
        route("POST", "/admin/admins", Admin, add_admin),
        route("GET", "/admin/admins", Admin, list_admins),
        route("DELETE", "/admin/admins/{name}", Admin, revoke_admin),
        route("GET", "/admin/audit", Admin, audit_log),
        route("GET", "/metrics", Admin, metrics),
        route("GET", "/openapi.json", Public, openapi),
    ]
}

/// The OpenAPI 3.1 document of protocol v1 and the admin API.
pub const OPENAPI: &str = include_str!("../../protocol/schema/openapi.json");

async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI).into_response()
}

/// Every route, with authentication, the body limit and the access log.
pub fn router(api: Shared) -> Router {
    let mut groups = [Router::new(), Router::new(), Router::new()];
    for r in routes() {
        let group = &mut groups[r.auth as usize];
        *group = std::mem::take(group).route(r.path, r.handler);
    }
    let [runner, admin, public] = groups;
    runner
        .route_layer(middleware::from_fn_with_state(api.clone(), runner_auth))
        .merge(admin.route_layer(middleware::from_fn_with_state(api.clone(), admin_auth)))
        .merge(public)
        .merge(crate::console::router())
        .fallback(|req: Request| async move {
            problem(
                StatusCode::NOT_FOUND,
                "not found",
                req.uri().path().to_string(),
            )
        })
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(middleware::from_fn_with_state(api.clone(), large_bodies))
        .layer(middleware::from_fn(problem_bodies))
        .layer(middleware::from_fn(unread_bodies))
        .layer(middleware::from_fn_with_state(api.clone(), access_log))
        .with_state(api)
}

/// A request with a large body waits for a permit before its body is read.
async fn large_bodies(State(api): State<Shared>, req: Request, next: Next) -> Response {
    let size = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    // Without a length (HTTP/2, chunked) the size is unknown: take a permit too,
    // unless the method has no body.
    let bodiless = matches!(req.method().as_str(), "GET" | "HEAD");
    if bodiless || size.is_some_and(|n| n <= LARGE) {
        return next.run(req).await;
    }
    match api.large.acquire().await {
        Ok(_permit) => next.run(req).await,
        Err(_) => StatusCode::SERVICE_UNAVAILABLE.into_response(),
    }
}

/// Answers the framework writes itself (a malformed path or query, a method a
/// route does not have, a body over the limit) say what is wrong in the same
/// `application/problem+json` as every other refusal.
async fn problem_bodies(req: Request, next: Next) -> Response {
    let response = next.run(req).await;
    let status = response.status();
    let plain = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_none_or(|t| t.as_bytes().starts_with(b"text/plain"));
    if !(status.is_client_error() && plain) {
        return response;
    }
    let (parts, body) = response.into_parts();
    let body = axum::body::to_bytes(body, 64 * 1024)
        .await
        .unwrap_or_default();
    let detail = String::from_utf8_lossy(&body).trim().to_string();
    let title = status
        .canonical_reason()
        .unwrap_or("refused")
        .to_lowercase();
    let mut answer = problem(status, &title, detail);
    if let Some(allow) = parts.headers.get(header::ALLOW) {
        answer.headers_mut().insert(header::ALLOW, allow.clone());
    }
    answer
}

/// An `application/problem+json` answer (RFC 9457).
pub fn problem(status: StatusCode, title: &str, detail: impl Into<String>) -> Response {
    let body = sortie_protocol::Problem {
        kind: None,
        title: Some(title.to_string()),
        status: Some(status.as_u16()),
        detail: Some(detail.into()),
    };
    let mut response = (status, axum::Json(body)).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/problem+json"),
    );
    response
}

fn json(status: StatusCode, value: &impl Serialize) -> Response {
    (status, axum::Json(value)).into_response()
}

fn bad_request(detail: impl Into<String>) -> Response {
    problem(StatusCode::BAD_REQUEST, "bad request", detail)
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        match self {
            Refusal::Gone => problem(StatusCode::GONE, "gone", "no such job"),
            Refusal::Conflict(why) => problem(StatusCode::CONFLICT, "conflict", why),
            Refusal::Invalid(why) => bad_request(why),
            Refusal::TooLarge(why) => problem(StatusCode::PAYLOAD_TOO_LARGE, "too large", why),
            Refusal::NotFound(why) => problem(StatusCode::NOT_FOUND, "not found", why),
            Refusal::Forbidden(why) => problem(StatusCode::FORBIDDEN, "forbidden", why),
            Refusal::OffsetPastEnd(committed) => {
                json(StatusCode::RANGE_NOT_SATISFIABLE, &Committed { committed })
            }
            Refusal::LogMismatch(committed) => {
                json(StatusCode::PRECONDITION_FAILED, &Committed { committed })
            }
            Refusal::Unavailable(why) => {
                tracing::error!("store: {why}");
                let mut r = problem(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "unavailable",
                    "the control plane cannot reach its database; try again",
                );
                r.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
                r
            }
        }
    }
}

/// A request body as `T`, strictly: a key given twice is refused, not silently the last one.
fn body<T: DeserializeOwned>(bytes: &[u8]) -> Outcome<T> {
    sortie_protocol::json::from_slice(bytes)
        .and_then(serde_json::from_value::<T>)
        .map_err(|e| Refusal::Invalid(format!("invalid JSON body: {e}")))
}

/// Run a store call on the blocking pool.
pub(crate) async fn store<T: Send + 'static>(
    api: &Shared,
    call: impl FnOnce(&Store) -> Outcome<T> + Send + 'static,
) -> Outcome<T> {
    let store = api.store.clone();
    tokio::task::spawn_blocking(move || call(&store))
        .await
        .unwrap_or_else(|e| Err(Refusal::unavailable("a store call", e)))
}

fn answer<T: Serialize>(outcome: Outcome<T>) -> Response {
    match outcome {
        Ok(value) => json(StatusCode::OK, &value),
        Err(refusal) => refusal.into_response(),
    }
}

// --- authentication and the access log ---------------------------------------------

/// The runner a request comes from, when it presented a registered runner's
/// own token (not the shared one).
#[derive(Clone)]
struct Registered(crate::store::Caller);

/// A runner's request passes with a registered runner's token (its identity and
/// tags then come from the registration) or with the shared runner token.
async fn runner_auth(State(api): State<Shared>, mut req: Request, next: Next) -> Response {
    if let Some(token) = bearer(req.headers()).map(str::to_string) {
        match store(&api, move |s| s.authenticate(&token)).await {
            Ok(Some(caller)) => {
                req.extensions_mut().insert(Registered(caller));
                return next.run(req).await;
            }
            Ok(None) => {
                // A runner token that is not (or no longer) good is refused,
                // even where runner endpoints are otherwise open.
                // (The shared token may look like a runner's own.)
                let shared = api.runner_token.is_some()
                    && refused(req.headers(), api.runner_token.as_deref()).is_none();
                if bearer(req.headers()).is_some_and(|t| t.starts_with("srt_")) && !shared {
                    return not_accepted();
                }
            }
            Err(refusal) => return refusal.into_response(),
        }
    }
    match refused(req.headers(), api.runner_token.as_deref()) {
        None => next.run(req).await,
        Some(refusal) => refusal,
    }
}

/// An error answer to an HTTP/1.x request with a body may have been sent
/// before the body was read (a refused token, an unknown route, a body over
/// the limit). The server then closes the connection once the answer is out,
/// the body perhaps still coming, so the answer says so: a client that kept
/// the connection for its next request would have that request cut off
/// ("peer disconnected"). Errors are rare on the runners' path; a new
/// connection after one costs little.
async fn unread_bodies(req: Request, next: Next) -> Response {
    let with_body = req.version() < axum::http::Version::HTTP_2
        && (req.headers().contains_key(header::TRANSFER_ENCODING)
            || req
                .headers()
                .get(header::CONTENT_LENGTH)
                .is_some_and(|n| n.as_bytes() != b"0"));
    let mut answer = next.run(req).await;
    if with_body && (answer.status().is_client_error() || answer.status().is_server_error()) {
        answer
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    answer
}

/// The bearer token of a request, if it has one (the scheme is case-insensitive,
/// RFC 9110; an empty token is none).
fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
        .filter(|token| !token.is_empty())
}

/// The admin a request acts as (`admin:NAME`), for the audit log.
#[derive(Clone)]
struct Acting(String);

/// An admin request passes with the bootstrap admin token (acting as
/// [`crate::store::BOOTSTRAP_ADMIN`]) or a named admin's own token.
async fn admin_auth(State(api): State<Shared>, mut req: Request, next: Next) -> Response {
    let name = match admin_name(&api, req.headers()).await {
        Ok(name) => name,
        Err(refusal) => return refusal,
    };
    req.extensions_mut().insert(Acting(format!("admin:{name}")));
    next.run(req).await
}

/// The admin whose bearer token `headers` carry (a named admin's `sat_`
/// token, or the bootstrap token), or the answer refusing them.
pub(crate) async fn admin_name(api: &Shared, headers: &HeaderMap) -> Result<String, Response> {
    let named = bearer(headers)
        .filter(|t| t.starts_with(crate::store::ADMIN_TOKEN_PREFIX))
        .map(str::to_string);
    match named {
        Some(token) => match store(api, move |s| s.authenticate_admin(&token)).await {
            Ok(Some(admin)) => Ok(admin.name),
            // The bootstrap token itself may look like a named admin's.
            Ok(None) => match refused(headers, Some(&api.admin_token)) {
                None => Ok(crate::store::BOOTSTRAP_ADMIN.to_string()),
                Some(refusal) => Err(refusal),
            },
            Err(refusal) => Err(refusal.into_response()),
        },
        None => match refused(headers, Some(&api.admin_token)) {
            None => Ok(crate::store::BOOTSTRAP_ADMIN.to_string()),
            Some(refusal) => Err(refusal),
        },
    }
}

/// The answer to a request without the `expected` bearer token, if it lacks it.
fn refused(headers: &HeaderMap, expected: Option<&str>) -> Option<Response> {
    let expected = expected?;
    match bearer(headers) {
        None => Some(unauthorized("Bearer", "a bearer token is required")),
        Some(token)
            if !expected.is_empty() && constant_time_eq(token.as_bytes(), expected.as_bytes()) =>
        {
            None
        }
        Some(_) => Some(not_accepted()),
    }
}

/// A token that is not (or no longer) good — unknown, revoked, expired,
/// rotated out — is 401 with RFC 6750's `invalid_token`; 403 is kept for a
/// caller the token identifies but who may not do what it asks.
fn not_accepted() -> Response {
    unauthorized(
        "Bearer error=\"invalid_token\"",
        "the token is not accepted",
    )
}

fn unauthorized(challenge: &'static str, detail: &str) -> Response {
    let mut answer = problem(StatusCode::UNAUTHORIZED, "unauthorized", detail);
    answer.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static(challenge),
    );
    answer
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// One structured line per request: method, path, status, time, and the runner's
/// `Sortie-Request-Id` (printable ASCII only, at most 64 characters); and the
/// request's latency in the metrics, by route.
async fn access_log(State(api): State<Shared>, req: Request, next: Next) -> Response {
    let began = Instant::now();
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let route = req
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map_or("unmatched", |m| m.as_str())
        .to_string();
    let request_id: String = req
        .headers()
        .get(sortie_protocol::HEADER_REQUEST_ID)
        .map(|v| {
            v.as_bytes()
                .iter()
                .filter(|b| b.is_ascii_graphic())
                .take(64)
                .map(|&b| b as char)
                .collect()
        })
        .unwrap_or_else(|| "-".into());
    let response = next.run(req).await;
    let status = response.status().as_u16();
    // Labels from a closed set only: a client's made-up method or path must not
    // grow the metrics.
    let known = ["GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH"];
    let label = known
        .into_iter()
        .find(|m| *m == method.as_str())
        .unwrap_or("other");
    api.metrics
        .request(label, &route, status, began.elapsed().as_secs_f64());
    tracing::info!(
        target: "access",
        method = %method,
        path = %path.escape_debug(),
        status,
        ms = began.elapsed().as_millis() as u64,
        request_id = %request_id,
    );
    response
}

// --- protocol v1 -----------------------------------------------------------------------

async fn claim(
    State(api): State<Shared>,
    registered: Option<axum::Extension<Registered>>,
    bytes: Bytes,
) -> Response {
    let registered = registered.map(|r| Arc::new(r.0 .0));
    let req: ClaimRequest = match body(&bytes) {
        Ok(req) => req,
        Err(bad) => return bad.into_response(),
    };
    if req.max_jobs == 0 {
        return bad_request("max_jobs must be at least 1");
    }
    let wait = Duration::from_secs(req.wait_seconds).min(api.store.timing().max_wait);
    let until = tokio::time::Instant::now() + wait;
    let req = Arc::new(req);
    let mut stopping = api.stopping.clone();
    loop {
        // Listen before looking, so work queued in between is not missed.
        let notified = api.work.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let (asked, by) = (req.clone(), registered.clone());
        match store(&api, move |s| s.claim_as(&asked, by.as_deref())).await {
            Ok(jobs) if !jobs.is_empty() => {
                api.metrics.claimed(jobs.len());
                return json(StatusCode::OK, &ClaimResponse { jobs });
            }
            Ok(_) => {}
            Err(refusal) => return refusal.into_response(),
        }
        let now = tokio::time::Instant::now();
        if now >= until || *stopping.borrow() {
            return StatusCode::NO_CONTENT.into_response();
        }
        // Wake at least every second: another replica may have queued work.
        let nap = (until - now).min(Duration::from_secs(1));
        tokio::select! {
            _ = notified => {}
            _ = tokio::time::sleep(nap) => {}
            _ = stopping.changed() => {}
        }
    }
}

async fn start(State(api): State<Shared>, Path(id): Path<String>, bytes: Bytes) -> Response {
    let fence: Fence = match body(&bytes) {
        Ok(f) => f,
        Err(bad) => return bad.into_response(),
    };
    answer(
        store(&api, move |s| s.start(&id, &fence))
            .await
            .map(|lease| LeaseResponse { lease }),
    )
}

async fn heartbeat(State(api): State<Shared>, Path(id): Path<String>, bytes: Bytes) -> Response {
    let req: HeartbeatRequest = match body(&bytes) {
        Ok(r) => r,
        Err(bad) => return bad.into_response(),
    };
    answer(
        store(&api, move |s| s.heartbeat(&id, &req))
            .await
            .map(|(lease, cancel)| HeartbeatResponse {
                lease,
                action: if cancel {
                    Action::Cancel
                } else {
                    Action::Continue
                },
            }),
    )
}

#[derive(Deserialize)]
struct LogQuery {
    offset: Option<String>,
    attempt: Option<String>,
}

async fn append_log(
    State(api): State<Shared>,
    Path(id): Path<String>,
    Query(query): Query<LogQuery>,
    headers: HeaderMap,
    bytes: Bytes,
) -> Response {
    let number = |v: Option<String>| v.and_then(|v| v.parse::<u64>().ok());
    let (Some(offset), Some(attempt)) = (number(query.offset), number(query.attempt)) else {
        return bad_request("offset and attempt are required");
    };
    let token = headers
        .get(HEADER_LEASE_TOKEN)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let zstd = match zstd_body(&headers) {
        Ok(zstd) => zstd,
        Err(why) => {
            return problem(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported content encoding",
                why,
            )
        }
    };
    answer(
        store(&api, move |s| {
            let upload = match zstd {
                true => Upload::Zstd {
                    frame: bytes.into(),
                    limit: MAX_BODY,
                },
                false => Upload::Plain(bytes.into()),
            };
            s.append_log(&id, attempt, &token, offset, &upload)
        })
        .await
        .map(|committed| Committed { committed }),
    )
}

/// Whether a `PUT log` body is zstd: the codings its `Content-Encoding`
/// headers list (case-insensitive, `identity` aside) must be none, or `zstd`
/// alone.
fn zstd_body(headers: &HeaderMap) -> Result<bool, String> {
    let mut codings = Vec::new();
    for value in headers.get_all(header::CONTENT_ENCODING) {
        let value = value
            .to_str()
            .map_err(|_| "a Content-Encoding that is not text".to_string())?;
        codings.extend(
            value
                .split(',')
                .map(|c| c.trim().to_ascii_lowercase())
                .filter(|c| !c.is_empty() && c != "identity"),
        );
    }
    match codings.as_slice() {
        [] => Ok(false),
        [one] if one == LOG_ENCODING_ZSTD => Ok(true),
        _ => Err(format!(
            "a log body may be sent as it is or as {LOG_ENCODING_ZSTD} alone, not as {}",
            codings.join(", ")
        )),
    }
}

async fn complete(State(api): State<Shared>, Path(id): Path<String>, bytes: Bytes) -> Response {
    let req: CompleteRequest = match body(&bytes) {
        Ok(r) => r,
        Err(bad) => return bad.into_response(),
    };
    answer(
        store(&api, move |s| s.complete(&id, &req))
            .await
            .map(|()| serde_json::json!({})),
    )
}

async fn fail(State(api): State<Shared>, Path(id): Path<String>, bytes: Bytes) -> Response {
    let req: FailRequest = match body(&bytes) {
        Ok(r) => r,
        Err(bad) => return bad.into_response(),
    };
    let fence = Fence {
        attempt: req.attempt,
        lease_token: req.lease_token,
    };
    answer(
        store(&api, move |s| s.fail(&id, &fence, &req.reason))
            .await
            .map(|()| serde_json::json!({})),
    )
}

async fn put_inventory(
    State(api): State<Shared>,
    registered: Option<axum::Extension<Registered>>,
    bytes: Bytes,
) -> Response {
    let mut req: InventoryRequest = match body(&bytes) {
        Ok(r) => r,
        Err(bad) => return bad.into_response(),
    };
    // A registered runner reports its own nodes, whatever id it gives.
    let proven = registered.is_some();
    if let Some(axum::Extension(Registered(caller))) = registered {
        req.runner_id = caller.runner.name;
    }
    let nodes = serde_json::to_value(&req.nodes).unwrap_or_default();
    let sources = serde_json::Value::Array(req.sources.clone());
    answer(
        store(&api, move |s| {
            s.put_inventory(&req.runner_id, proven, nodes, sources)
        })
        .await
        .map(|()| serde_json::json!({})),
    )
}

// --- the admin API ----------------------------------------------------------------------

/// `POST /admin/jobs` body (a misspelt `runer_id` would send the job to any runner).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Enqueue {
    spec: serde_json::Value,
    #[serde(default)]
    tags: Vec<String>,
    #[serde(default)]
    runner_id: Option<String>,
}

async fn enqueue(
    State(api): State<Shared>,
    axum::Extension(Acting(by)): axum::Extension<Acting>,
    bytes: Bytes,
) -> Response {
    let req: Enqueue = match body(&bytes) {
        Ok(r) => r,
        Err(bad) => return bad.into_response(),
    };
    // A spec an admin wrote: a field job spec v1 does not have is a mistake to
    // report now, not a surprise when it runs. (A Rundeck job's text is checked
    // by the runner that converts it.)
    if req.spec["steps"].as_array().is_some_and(|s| s.is_empty()) {
        return bad_request("steps: a job needs at least one step");
    }
    let mut problems = match req.spec.get("rundeck") {
        Some(_) => Vec::new(),
        None => sortie_protocol::schema::problems(&req.spec),
    };
    problems.extend(crate::store::definition::timeout_problems(&req.spec));
    if !problems.is_empty() {
        return bad_request(problems.join("; "));
    }
    match store(&api, move |s| {
        s.enqueue(&by, req.spec, req.tags, req.runner_id)
    })
    .await
    {
        Ok(id) => {
            api.work.notify_waiters();
            json(StatusCode::CREATED, &serde_json::json!({ "id": id }))
        }
        Err(refusal) => refusal.into_response(),
    }
}

#[derive(Deserialize)]
struct ListQuery {
    status: Option<String>,
    job: Option<String>,
    runner: Option<String>,
    since: Option<String>,
    limit: Option<String>,
    offset: Option<String>,
}

/// `GET /admin/jobs`: `?status=` a phase (queued, claimed, running, done, failed)
/// or a completion status (succeeded, timed_out, …); `job=` the definition it
/// runs, `runner=` the runner that claimed it, `since=` queued at or after an
/// RFC 3339 time; `limit`, `offset`.
async fn list_jobs(State(api): State<Shared>, Query(query): Query<ListQuery>) -> Response {
    if let Some(s) = query.status.as_deref().filter(|s| !STATUSES.contains(s)) {
        return bad_request(format!("status: {s:?} is none of {}", STATUSES.join(", ")));
    }
    let since_ms = match query.since.as_deref() {
        None => None,
        Some(t) => match crate::store::parse_rfc3339_ms(t) {
            Some(ms) => Some(ms),
            None => return bad_request(format!("since: {t:?} is not an RFC 3339 time")),
        },
    };
    let filter = Filter {
        status: query.status,
        job: query.job,
        runner: query.runner,
        since_ms,
    };
    let number = |name: &str, value: Option<String>, default: u64| {
        value.map_or(Ok(default), |v| {
            v.parse::<u64>()
                .map_err(|_| Refusal::Invalid(format!("{name}: a number")))
        })
    };
    let (limit, offset) = match (
        number("limit", query.limit, u64::MAX),
        number("offset", query.offset, 0),
    ) {
        (Ok(limit), Ok(offset)) => (limit, offset),
        (Err(bad), _) | (_, Err(bad)) => return bad.into_response(),
    };
    answer(
        store(&api, move |s| s.page(&filter, limit, offset))
            .await
            .map(|page| {
                let jobs: Vec<serde_json::Value> = page.jobs.iter().map(job_view).collect();
                serde_json::json!({ "jobs": jobs, "total": page.total })
            }),
    )
}

async fn show_job(State(api): State<Shared>, Path(id): Path<String>) -> Response {
    let wanted = id.clone();
    match store(&api, move |s| s.job(&wanted)).await {
        Ok(Some(job)) => json(StatusCode::OK, &job_view(&job)),
        Ok(None) => problem(StatusCode::NOT_FOUND, "not found", format!("no job {id}")),
        Err(refusal) => refusal.into_response(),
    }
}

#[derive(Deserialize)]
struct LogFrom {
    offset: Option<String>,
}

/// Most bytes of log one `GET /admin/jobs/ID/log` answers with (and the
/// rest of the line they end in): a long log is read page by page, never
/// gathered whole in the control plane's memory.
pub const LOG_PAGE: usize = 8 * 1024 * 1024;

/// `GET /admin/jobs/ID/log?offset=N`: the stored log from byte N, a page of
/// it (`LOG_PAGE`, ending at a line's end), with the execution's status in
/// `Sortie-Status` — what a client following a log live needs from one
/// request. An empty answer means there is no more for now.
async fn job_log(
    State(api): State<Shared>,
    Path(id): Path<String>,
    Query(from): Query<LogFrom>,
) -> Response {
    let offset = match from.offset.map(|o| o.parse::<u64>()) {
        None => 0,
        Some(Ok(o)) => o,
        Some(Err(_)) => return bad_request("offset: a number"),
    };
    let wanted = id.clone();
    let found = store(&api, move |s| {
        Ok(match s.job(&wanted)? {
            Some(job) => Some((job.status(), s.log_window(&wanted, offset, LOG_PAGE)?)),
            None => None,
        })
    })
    .await;
    match found {
        Ok(Some((status, log))) => (
            [
                (header::CONTENT_TYPE, "application/x-ndjson"),
                (header::HeaderName::from_static("sortie-status"), status),
            ],
            Body::from(log),
        )
            .into_response(),
        Ok(None) => problem(StatusCode::NOT_FOUND, "not found", format!("no job {id}")),
        Err(refusal) => refusal.into_response(),
    }
}

async fn cancel(
    State(api): State<Shared>,
    axum::Extension(Acting(by)): axum::Extension<Acting>,
    Path(id): Path<String>,
) -> Response {
    match store(&api, move |s| s.cancel(&by, &id)).await {
        Ok(()) => json(StatusCode::OK, &serde_json::json!({})),
        Err(Refusal::Gone) => problem(StatusCode::NOT_FOUND, "not found", "no such job"),
        Err(refusal) => refusal.into_response(),
    }
}

async fn inventory(State(api): State<Shared>) -> Response {
    answer(store(&api, |s| s.inventory()).await.map(|all| {
        all.into_iter()
            .map(|(runner, r)| {
                let view = serde_json::json!({
                    "reported_at": crate::store::rfc3339(r.at_ms), "nodes": r.nodes, "sources": r.sources,
                });
                (runner, view)
            })
            .collect::<std::collections::BTreeMap<_, _>>()
    }))
}

/// `POST /admin/runners` body.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Register {
    name: String,
    #[serde(default)]
    tags: Vec<String>,
    /// RFC 3339: the token stops working then.
    #[serde(default)]
    expires: Option<String>,
}

/// `POST /admin/runners/NAME/rotate` body (optional).
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Rotate {
    /// How long the old token keeps working (a duration, default 1h).
    #[serde(default)]
    grace: Option<String>,
}

fn rfc3339_ms(text: &str) -> Outcome<u64> {
    crate::store::parse_rfc3339_ms(text)
        .ok_or_else(|| Refusal::Invalid(format!("expires: {text:?} is not an RFC 3339 time")))
}

/// The admin view of a runner: never its token hashes (the token itself only
/// in the answer that made it); times in RFC 3339; `stale` when it has not
/// claimed (or, new, been registered) for `stale_after`.
pub(crate) fn runner_view(
    runner: &crate::store::Runner,
    token: Option<&str>,
    stale_after: Duration,
) -> serde_json::Value {
    use crate::store::rfc3339;
    let seen = runner.last_seen_ms.unwrap_or(runner.created_at_ms);
    let stale = crate::store::now_ms().saturating_sub(seen) > stale_after.as_millis() as u64;
    let mut view = serde_json::json!({
        "stale": stale,
        "name": runner.name,
        "tags": runner.tags,
        "created_at": rfc3339(runner.created_at_ms),
        "expires": runner.expires_at_ms.map(rfc3339),
        "last_seen": runner.last_seen_ms.map(rfc3339),
        "version": runner.version,
    });
    if let Some(token) = token {
        view["token"] = token.into();
    }
    if let Some(until) = runner.previous_until_ms {
        view["previous_token_valid_until"] = rfc3339(until).into();
    }
    if let Some(last) = &runner.last_result {
        view["last_result"] = serde_json::json!({
            "job": last.job,
            "status": last.status,
            "at": rfc3339(last.at_ms),
        });
    }
    if let Some(at) = runner.inventory_at_ms {
        view["inventory_at"] = rfc3339(at).into();
    }
    view
}

async fn register_runner(
    State(api): State<Shared>,
    axum::Extension(Acting(by)): axum::Extension<Acting>,
    bytes: Bytes,
) -> Response {
    let req: Register = match body(&bytes) {
        Ok(r) => r,
        Err(bad) => return bad.into_response(),
    };
    let expires = match req.expires.as_deref().map(rfc3339_ms).transpose() {
        Ok(at) => at,
        Err(bad) => return bad.into_response(),
    };
    match store(&api, move |s| s.register(&by, &req.name, req.tags, expires)).await {
        Ok((runner, token)) => json(
            StatusCode::CREATED,
            &runner_view(&runner, Some(&token), api.store.timing().stale_after),
        ),
        Err(refusal) => refusal.into_response(),
    }
}

async fn list_runners(State(api): State<Shared>) -> Response {
    answer(store(&api, |s| s.runners()).await.map(|runners| {
        let stale_after = api.store.timing().stale_after;
        let views: Vec<_> = runners
            .iter()
            .map(|r| runner_view(r, None, stale_after))
            .collect();
        serde_json::json!({ "runners": views })
    }))
}

async fn revoke_runner(
    State(api): State<Shared>,
    axum::Extension(Acting(by)): axum::Extension<Acting>,
    Path(name): Path<String>,
) -> Response {
    match store(&api, move |s| s.revoke(&by, &name)).await {
        Ok(()) => json(StatusCode::OK, &serde_json::json!({})),
        Err(Refusal::Gone) => problem(StatusCode::NOT_FOUND, "not found", "no such runner"),
        Err(refusal) => refusal.into_response(),
    }
}

async fn rotate_runner(
    State(api): State<Shared>,
    axum::Extension(Acting(by)): axum::Extension<Acting>,
    Path(name): Path<String>,
    bytes: Bytes,
) -> Response {
    let req: Rotate = if bytes.is_empty() {
        Rotate::default()
    } else {
        match body(&bytes) {
            Ok(r) => r,
            Err(bad) => return bad.into_response(),
        }
    };
    let grace = match req.grace.as_deref().map(humantime::parse_duration) {
        None => Duration::from_secs(3600),
        Some(Ok(d)) if d <= Duration::from_secs(30 * 24 * 3600) => d,
        Some(_) => return bad_request("grace: a duration up to 30days, such as \"10m\""),
    };
    match store(&api, move |s| s.rotate(&by, &name, grace)).await {
        Ok((runner, token)) => json(
            StatusCode::OK,
            &runner_view(&runner, Some(&token), api.store.timing().stale_after),
        ),
        Err(Refusal::Gone) => problem(StatusCode::NOT_FOUND, "not found", "no such runner"),
        Err(refusal) => refusal.into_response(),
    }
}

async fn metrics(State(api): State<Shared>) -> Response {
    match store(&api, |s| s.counts()).await {
        Ok(counts) => (
            [(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            api.metrics.render(&counts),
        )
            .into_response(),
        Err(refusal) => refusal.into_response(),
    }
}

/// The admin view of a job: its record, without the lease token or a secure
/// option's value, times in RFC 3339.
pub fn job_view(job: &Job) -> serde_json::Value {
    let mut view = serde_json::to_value(job).unwrap_or_default();
    if let Some(record) = view.as_object_mut() {
        record.remove("log_hash");
    }
    // Secure: the definition's secure options, and those the spec itself says are.
    let declared = job.spec["option_defs"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|d| d["secure"] == true)
        .filter_map(|d| d["name"].as_str());
    let secure: Vec<&str> = job
        .secure_options
        .iter()
        .map(String::as_str)
        .chain(declared)
        .collect();
    let secure: Vec<String> = secure.into_iter().map(str::to_string).collect();
    if let Some(options) = view["spec"]["options"].as_object_mut() {
        for (name, value) in options.iter_mut() {
            if secure.contains(name) {
                *value = "(secure)".into();
            }
        }
    }
    for def in view["spec"]["option_defs"]
        .as_array_mut()
        .into_iter()
        .flatten()
    {
        let name = def["name"].as_str().unwrap_or_default().to_string();
        if let (true, Some(default)) = (secure.contains(&name), def.get_mut("default")) {
            *default = "(secure)".into();
        }
    }
    if let Some(obj) = view.as_object_mut() {
        obj.remove("secure_options");
    }
    if let Some(obj) = view.as_object_mut() {
        for (ms, at) in [
            ("finished_at_ms", "finished_at"),
            ("created_at_ms", "created_at"),
        ] {
            if let Some(n) = obj.remove(ms).and_then(|v| v.as_u64()) {
                obj.insert(at.into(), crate::store::rfc3339(n).into());
            }
        }
    }
    if let Some(lease) = view.get_mut("lease").and_then(|l| l.as_object_mut()) {
        // The lease token is the runner's capability; the admin view does not show it.
        lease.remove("token");
        for (ms, at) in [
            ("claimed_at_ms", "claimed_at"),
            ("expires_at_ms", "expires_at"),
        ] {
            if let Some(n) = lease.remove(ms).and_then(|v| v.as_u64()) {
                lease.insert(at.into(), crate::store::rfc3339(n).into());
            }
        }
    }
    view
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_log_body_s_encoding_is_read_as_http_says() {
        let with = |values: &[&str]| {
            let mut headers = HeaderMap::new();
            for v in values {
                headers.append(header::CONTENT_ENCODING, HeaderValue::from_str(v).unwrap());
            }
            zstd_body(&headers)
        };
        assert_eq!(with(&[]), Ok(false));
        assert_eq!(with(&["identity"]), Ok(false));
        assert_eq!(with(&["zstd"]), Ok(true));
        assert_eq!(with(&["ZSTD"]), Ok(true));
        assert_eq!(with(&[" zstd , identity"]), Ok(true));
        // Two codings, in one header or in two, are two: refused, never half read.
        assert!(with(&["zstd", "gzip"]).is_err());
        assert!(with(&["zstd, zstd"]).is_err());
        assert!(with(&["gzip"]).unwrap_err().contains("gzip"));
    }

    /// A secure option's value is in the spec runners claim, never in what an
    /// admin reads: the definition's secure options, and those the spec says are.
    #[test]
    fn secure_option_values_are_not_shown() {
        let spec = serde_json::json!({
            "id": "j", "steps": [{"shell": "true"}],
            "options": {"pin": "1234", "token": "s3cret", "who": "world"},
            "option_defs": [{"name": "pin", "secure": true, "default": "9911"}, {"name": "who"}],
        });
        let mut job = Job::queued("j", spec, "admin:test", 0);
        job.secure_options = vec!["token".into()];
        let view = job_view(&job);
        assert_eq!(
            view["spec"]["options"],
            serde_json::json!({"pin": "(secure)", "token": "(secure)", "who": "world"})
        );
        let text = view.to_string();
        assert!(
            !["1234", "s3cret", "9911"].iter().any(|v| text.contains(v)),
            "{text}"
        );
        assert!(view.get("secure_options").is_none());

        let input: crate::store::DefinitionInput = serde_json::from_value(serde_json::json!({
            "name": "d", "spec": {"steps": [{"shell": "true"}]},
            "options": [{"name": "pin", "secure": true, "default": "1234"}],
            "schedule": {"cron": "@daily", "options": {"pin": "5678"}},
        }))
        .unwrap();
        let definition = crate::store::Definition {
            input,
            version: 1,
            created_at_ms: 0,
            created_by: "admin:test".into(),
        };
        let view = definitions::definition_view(&definition).to_string();
        assert!(!view.contains("1234") && !view.contains("5678"), "{view}");
    }

    /// The OpenAPI document lists exactly the routes the router is built from,
    /// each with the token it requires.
    #[test]
    fn the_openapi_document_is_the_router() {
        let doc: serde_json::Value = serde_json::from_str(OPENAPI).unwrap();
        assert_eq!(doc["openapi"], "3.1.0");
        let mut documented = Vec::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, operation) in item.as_object().unwrap() {
                let scheme = operation["security"][0]
                    .as_object()
                    .and_then(|s| s.keys().next().cloned());
                documented.push((method.to_uppercase(), path.clone(), scheme));
            }
        }
        let mut served: Vec<_> = routes()
            .into_iter()
            .map(|r| {
                let scheme = match r.auth {
                    Auth::Runner => Some("runnerToken".to_string()),
                    Auth::Admin => Some("adminToken".to_string()),
                    Auth::Public => None,
                };
                (r.method.to_string(), r.path.to_string(), scheme)
            })
            .collect();
        documented.sort();
        served.sort();
        assert_eq!(documented, served);
    }
}
