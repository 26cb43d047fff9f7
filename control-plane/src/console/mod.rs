//! The web console: executions, one execution's steps, data and live log,
//! and the runners, served by the control plane itself (same port, same TLS)
//! as HTML rendered on the server from templates compiled into the binary.
//!
//! An admin logs in with an admin token (the bootstrap token or a named
//! admin's), which the console keeps in a `Secure`, `HttpOnly`,
//! `SameSite=Strict` cookie scoped to `/console`; every request is checked
//! as the admin API checks a bearer token, so a revoked token ends the
//! session at once. Every form that changes something carries a CSRF token
//! (an HMAC of the session's token), and a strict Content-Security-Policy
//! allows only the console's own script and stylesheet. Pages work without
//! JavaScript; a small script only appends a running execution's log.

mod ansi;

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use hmac::{Hmac, KeyInit, Mac};
use minijinja::{context, Environment};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::api::definition_view;
use crate::api::{admin_name, store, Shared};
use crate::store::{rfc3339, Filter, Job, Phase, STATUSES};

/// The session cookie.
const COOKIE: &str = "sortie_console";

/// Lines of log a page shows at once (the rest: "Later lines", or live).
const PAGE_BYTES: u64 = 256 * 1024;

const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
                   connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// The console's routes, under `/console`.
pub fn router() -> Router<Shared> {
    Router::new()
        .route("/console", get(|| async { redirect("/console/") }))
        .route("/console/", get(executions))
        .route("/console/login", get(login_form).post(login))
        .route("/console/logout", post(logout))
        .route("/console/executions/{id}", get(execution))
        .route("/console/executions/{id}/log", get(execution_log))
        .route("/console/executions/{id}/cancel", post(cancel))
        .route("/console/runners", get(runners))
        .route("/console/jobs", get(jobs))
        .route("/console/jobs/{name}", get(job))
        .route("/console/jobs/{name}/run", post(run))
        .route("/console/static/{file}", get(asset))
        .layer(axum::middleware::map_response(secure_headers))
}

fn templates() -> &'static Environment<'static> {
    static ENV: std::sync::OnceLock<Environment<'static>> = std::sync::OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = Environment::new();
        for (name, text) in [
            ("base.html", include_str!("templates/base.html")),
            ("login.html", include_str!("templates/login.html")),
            ("executions.html", include_str!("templates/executions.html")),
            ("execution.html", include_str!("templates/execution.html")),
            ("runners.html", include_str!("templates/runners.html")),
            ("jobs.html", include_str!("templates/jobs.html")),
            ("job.html", include_str!("templates/job.html")),
        ] {
            env.add_template(name, text)
                .expect("the console's templates parse");
        }
        env
    })
}

fn render(name: &str, ctx: minijinja::Value) -> Response {
    match templates().get_template(name).and_then(|t| t.render(ctx)) {
        Ok(html) => ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], html).into_response(),
        Err(e) => {
            tracing::error!("console template {name}: {e:#}");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "the page could not be made",
            )
                .into_response()
        }
    }
}

async fn secure_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    for (name, value) in [
        ("content-security-policy", CSP),
        ("x-content-type-options", "nosniff"),
        ("referrer-policy", "no-referrer"),
        ("x-frame-options", "DENY"),
        ("cache-control", "no-store"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}

fn redirect(to: &str) -> Response {
    (StatusCode::SEE_OTHER, [(header::LOCATION, to.to_string())]).into_response()
}

/// The logged-in admin: their name, token and CSRF token.
struct Session {
    admin: String,
    csrf: String,
}

fn cookie_token(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.to_string())
        .filter(|v| !v.is_empty())
}

fn csrf_of(token: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(token.as_bytes()).expect("any key length");
    mac.update(b"sortie console csrf");
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The session of a request, checked as the admin API checks a token.
async fn session(api: &Shared, headers: &HeaderMap) -> Option<Session> {
    let token = cookie_token(headers)?;
    let mut as_bearer = HeaderMap::new();
    as_bearer.insert(
        header::AUTHORIZATION,
        HeaderValue::from_str(&format!("Bearer {token}")).ok()?,
    );
    let admin = admin_name(api, &as_bearer).await.ok()?;
    Some(Session {
        admin,
        csrf: csrf_of(&token),
    })
}

/// `application/x-www-form-urlencoded` fields (a repeated one: its last value).
fn form(body: &[u8]) -> BTreeMap<String, String> {
    fields(body).into_iter().collect()
}

/// `application/x-www-form-urlencoded` fields, in order, repeats kept.
fn fields(body: &[u8]) -> Vec<(String, String)> {
    fn decode(s: &str) -> String {
        let bytes = s.as_bytes();
        let mut out = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            match bytes[i] {
                b'+' => out.push(b' '),
                b'%' if i + 2 < bytes.len() => {
                    let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                    match u8::from_str_radix(hex, 16) {
                        Ok(b) => {
                            out.push(b);
                            i += 2;
                        }
                        Err(_) => out.push(b'%'),
                    }
                }
                b => out.push(b),
            }
            i += 1;
        }
        String::from_utf8_lossy(&out).into_owned()
    }
    String::from_utf8_lossy(body)
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .map(|(k, v)| (decode(k), decode(v)))
        .collect()
}

/// A mutation's session: logged in, and the form's CSRF token its own.
async fn mutation(api: &Shared, headers: &HeaderMap, body: &[u8]) -> Result<Session, Response> {
    let Some(session) = session(api, headers).await else {
        return Err((StatusCode::UNAUTHORIZED, "log in first").into_response());
    };
    let given = form(body).remove("csrf").unwrap_or_default();
    let expected = &session.csrf;
    let same = given.len() == expected.len()
        && given
            .bytes()
            .zip(expected.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0;
    if !same {
        return Err((
            StatusCode::FORBIDDEN,
            "the form's CSRF token is missing or wrong: reload the page",
        )
            .into_response());
    }
    Ok(session)
}

async fn login_form() -> Response {
    render("login.html", context! { error => None::<String> })
}

async fn login(State(api): State<Shared>, body: Bytes) -> Response {
    let token = form(&body)
        .remove("token")
        .unwrap_or_default()
        .trim()
        .to_string();
    let mut headers = HeaderMap::new();
    let valid = HeaderValue::from_str(&format!("Bearer {}", token.trim()))
        .ok()
        .filter(|_| !token.trim().is_empty() && !token.contains([';', ',', ' ']));
    if let Some(value) = valid {
        headers.insert(header::AUTHORIZATION, value);
        if admin_name(&api, &headers).await.is_ok() {
            let cookie = format!(
                "{COOKIE}={}; Path=/console; Secure; HttpOnly; SameSite=Strict",
                token.trim()
            );
            let mut response = redirect("/console/");
            if let Ok(value) = HeaderValue::from_str(&cookie) {
                response.headers_mut().insert(header::SET_COOKIE, value);
            }
            return response;
        }
    }
    let mut page = render(
        "login.html",
        context! { error => "That token is not accepted." },
    );
    *page.status_mut() = StatusCode::UNAUTHORIZED;
    page
}

async fn logout(State(api): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    if let Err(refused) = mutation(&api, &headers, &body).await {
        return refused;
    }
    let mut response = redirect("/console/login");
    response.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static(
            "sortie_console=; Path=/console; Secure; HttpOnly; SameSite=Strict; Max-Age=0",
        ),
    );
    response
}

/// A job as a page shows it.
#[derive(Serialize)]
struct Row {
    id: String,
    job: Option<String>,
    status: String,
    runner: Option<String>,
    queued: Option<String>,
    duration: Option<String>,
    started_by: Option<String>,
    terminal: bool,
}

fn row(job: &Job) -> Row {
    let created = job.created_at_ms;
    let duration = match (created, job.finished_at_ms) {
        (Some(a), Some(b)) if b >= a => Some(
            humantime::format_duration(std::time::Duration::from_secs((b - a) / 1000)).to_string(),
        ),
        _ => None,
    };
    Row {
        id: job.id.clone(),
        job: job.definition.as_ref().map(|d| d.name.clone()),
        status: job.status().to_string(),
        runner: job.runner_id.clone().or_else(|| job.ran_by.clone()),
        queued: created.map(rfc3339),
        duration,
        started_by: job.started_by.clone(),
        terminal: matches!(job.phase, Phase::Done | Phase::Failed),
    }
}

#[derive(Deserialize, Default)]
struct ListQuery {
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    job: Option<String>,
    #[serde(default)]
    runner: Option<String>,
}

async fn executions(
    State(api): State<Shared>,
    headers: HeaderMap,
    Query(q): Query<ListQuery>,
) -> Response {
    let Some(session) = session(&api, &headers).await else {
        return redirect("/console/login");
    };
    let blank = |v: Option<String>| v.filter(|s| !s.trim().is_empty());
    let filter = Filter {
        status: blank(q.status),
        job: blank(q.job),
        runner: blank(q.runner),
        since_ms: None,
    };
    let shown = (
        filter.status.clone(),
        filter.job.clone(),
        filter.runner.clone(),
    );
    let page = match store(&api, move |s| {
        let total = s.page(&filter, 0, 0)?.total;
        // The newest 100.
        s.page(&filter, 100, total.saturating_sub(100))
    })
    .await
    {
        Ok(page) => page,
        Err(refusal) => return refusal.into_response(),
    };
    let jobs: Vec<Row> = page.jobs.iter().rev().map(row).collect();
    render(
        "executions.html",
        context! {
            page => "executions", admin => session.admin, csrf => session.csrf,
            jobs => jobs, total => page.total, statuses => STATUSES,
            filter => context! { status => shown.0, job => shown.1, runner => shown.2 },
        },
    )
}

/// Log events from `from` as HTML, and where the next complete line starts.
fn log_html(bytes: &[u8], from: u64) -> (String, u64) {
    let end = bytes.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
    let mut html = String::new();
    for line in bytes[..end]
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
    {
        let event: serde_json::Value = serde_json::from_slice(line).unwrap_or_default();
        let text = shown(event["text"].as_str().unwrap_or(""));
        let text = text.as_ref();
        // What a runner wrote is data: a step is a number, or it is not shown.
        let step = event["step"]
            .as_u64()
            .map_or("?".to_string(), |n| n.to_string());
        match event["kind"].as_str() {
            Some("output") => {
                let class = if event["stream"] == "stderr" {
                    "err"
                } else {
                    "out"
                };
                // Line by line, as when each line was an event of its own: an
                // escape left open on one line ends with it.
                html.push_str(&format!("<span class=\"{class}\">"));
                for line in text.split_inclusive('\n') {
                    html.push_str(&ansi::to_html(line));
                }
                html.push_str("</span>");
            }
            Some("system") => html.push_str(&format!(
                "<span class=\"sys\">[{}] {}</span>\n",
                ansi::to_html(event["level"].as_str().unwrap_or("info")),
                ansi::to_html(text)
            )),
            Some("step_start") => html.push_str(&format!(
                "<span class=\"sys\">--- step {step} on {}</span>\n",
                ansi::to_html(event["node"].as_str().unwrap_or(""))
            )),
            Some("step_end") => html.push_str(&format!(
                "<span class=\"sys\">--- step {step} on {}: {}</span>\n",
                ansi::to_html(event["node"].as_str().unwrap_or("")),
                ansi::to_html(event["status"].as_str().unwrap_or(""))
            )),
            _ => {}
        }
    }
    (html, from + end as u64)
}

/// One page of a log from `from`: its HTML, and where the next page starts.
fn log_page(log: &[u8], from: u64) -> (String, u64) {
    let mut cut = (log.len() as u64).min(PAGE_BYTES) as usize;
    // A line longer than a page: the page is that line, whole (its text
    // is cut when shown), so the log always moves on.
    if !log[..cut].contains(&b'\n') {
        cut = log.iter().position(|b| *b == b'\n').map_or(cut, |i| i + 1);
    }
    log_html(&log[..cut], from)
}

/// The longest text one event shows.
const MAX_EVENT_TEXT: usize = 64 * 1024;

/// `text`, cut to [`MAX_EVENT_TEXT`] with a note of what is left out.
fn shown(text: &str) -> std::borrow::Cow<'_, str> {
    if text.len() <= MAX_EVENT_TEXT {
        return text.into();
    }
    let mut end = MAX_EVENT_TEXT;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} more bytes)\n", &text[..end], text.len() - end).into()
}

#[derive(Deserialize, Default)]
struct FromQuery {
    #[serde(default)]
    from: Option<u64>,
    #[serde(default)]
    offset: Option<u64>,
    /// The status the page shows: a change is news.
    #[serde(default)]
    status: Option<String>,
}

/// The longest a live log request waits for something new.
const LONG_POLL: std::time::Duration = std::time::Duration::from_secs(20);

/// How often a waiting request looks again.
const POLL_TICK: std::time::Duration = std::time::Duration::from_millis(250);

async fn load(api: &Shared, id: String, from: u64) -> Result<(Job, Vec<u8>), Response> {
    let found = store(api, move |s| {
        let job = s.job(&id)?;
        let log = match &job {
            Some(_) => s.log_window(&id, from, PAGE_BYTES as usize)?,
            None => Vec::new(),
        };
        Ok((job, log))
    })
    .await;
    match found {
        Ok((Some(job), log)) => Ok((job, log)),
        Ok((None, _)) => Err((StatusCode::NOT_FOUND, "no such execution").into_response()),
        Err(refusal) => Err(refusal.into_response()),
    }
}

async fn execution(
    State(api): State<Shared>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(q): Query<FromQuery>,
) -> Response {
    let Some(session) = session(&api, &headers).await else {
        return redirect("/console/login");
    };
    let from = q.from.unwrap_or(0);
    let (job, log) = match load(&api, id, from).await {
        Ok(found) => found,
        Err(refused) => return refused,
    };
    let (html, offset) = log_page(&log, from);
    let more = job.log_length > offset;
    let r = row(&job);
    let completion = job.completion.as_ref();
    render(
        "execution.html",
        context! {
            page => "executions", admin => session.admin, csrf => session.csrf,
            job => context! {
                id => r.id, job => r.job, status => r.status, runner => r.runner,
                started_by => r.started_by, terminal => r.terminal,
                error => completion.and_then(|c| c.error.clone()).or(job.reason.clone()),
                steps => completion.map(|c| c.steps.clone()).unwrap_or_default(),
                data => completion.map(|c| c.data.clone()).unwrap_or_default(),
                log => html, offset => offset, more => more,
            },
        },
    )
}

/// New log lines from `offset`, for the page's script: `{html, offset, status, done}`.
async fn execution_log(
    State(api): State<Shared>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(q): Query<FromQuery>,
) -> Response {
    if session(&api, &headers).await.is_none() {
        return (StatusCode::UNAUTHORIZED, "log in first").into_response();
    }
    // A long poll: answered as soon as there is a new line or a new status,
    // else after LONG_POLL with nothing new.
    let from = q.offset.unwrap_or(0);
    let known = q.status.unwrap_or_default();
    let until = tokio::time::Instant::now() + LONG_POLL;
    loop {
        let (job, log) = match load(&api, id.clone(), from).await {
            Ok(found) => found,
            Err(refused) => return refused,
        };
        let (html, offset) = log_page(&log, from);
        let done = matches!(job.phase, Phase::Done | Phase::Failed) && offset >= job.log_length;
        let news = !html.is_empty() || done || job.status() != known;
        if news || tokio::time::Instant::now() >= until {
            return axum::Json(serde_json::json!({
                "html": html, "offset": offset, "status": job.status(), "done": done,
            }))
            .into_response();
        }
        tokio::time::sleep(POLL_TICK).await;
    }
}

async fn cancel(
    State(api): State<Shared>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let session = match mutation(&api, &headers, &body).await {
        Ok(session) => session,
        Err(refused) => return refused,
    };
    let by = format!("admin:{}", session.admin);
    let target = id.clone();
    match store(&api, move |s| s.cancel(&by, &target)).await {
        Ok(()) => redirect(&format!("/console/executions/{}", encode(&id))),
        Err(refusal) => refusal.into_response(),
    }
}

async fn jobs(State(api): State<Shared>, headers: HeaderMap) -> Response {
    let Some(session) = session(&api, &headers).await else {
        return redirect("/console/login");
    };
    let views = match store(&api, |s| s.definitions()).await {
        Ok(all) => all.iter().map(definition_view).collect::<Vec<_>>(),
        Err(refusal) => return refusal.into_response(),
    };
    render(
        "jobs.html",
        context! { page => "jobs", admin => session.admin, csrf => session.csrf, definitions => views },
    )
}

/// A job definition's page: what it is, a form to run it, its history;
/// `error` says why a run was refused.
async fn job_page(api: &Shared, session: Session, name: String, error: Option<String>) -> Response {
    let wanted = name.clone();
    let found = store(api, move |s| {
        let definition = s.definition(&wanted, None)?;
        let filter = Filter {
            job: Some(wanted),
            ..Filter::default()
        };
        let total = s.page(&filter, 0, 0)?.total;
        Ok((definition, s.page(&filter, 20, total.saturating_sub(20))?))
    })
    .await;
    let (definition, history) = match found {
        Ok((Some(definition), history)) => (definition, history),
        Ok((None, _)) => return (StatusCode::NOT_FOUND, "no such job").into_response(),
        Err(refusal) => return refusal.into_response(),
    };
    let rows: Vec<Row> = history.jobs.iter().rev().map(row).collect();
    render(
        "job.html",
        context! {
            page => "jobs", admin => session.admin, csrf => session.csrf,
            d => definition_view(&definition), history => rows, error => error,
        },
    )
}

async fn job(State(api): State<Shared>, headers: HeaderMap, Path(name): Path<String>) -> Response {
    let Some(session) = session(&api, &headers).await else {
        return redirect("/console/login");
    };
    job_page(&api, session, name, None).await
}

/// Run a job with the form's options (`option.NAME` fields); the store
/// checks them against the definition as the admin API does.
async fn run(
    State(api): State<Shared>,
    headers: HeaderMap,
    Path(name): Path<String>,
    body: Bytes,
) -> Response {
    let session = match mutation(&api, &headers, &body).await {
        Ok(session) => session,
        Err(refused) => return refused,
    };
    // A multi-valued option's values (a select of several) joined with its delimiter.
    let mut given: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (k, v) in fields(&body) {
        if let (Some(name), false) = (k.strip_prefix("option."), v.is_empty()) {
            given.entry(name.to_string()).or_default().push(v);
        }
    }
    let by = format!("admin:{}", session.admin);
    let wanted = name.clone();
    let ran = store(&api, move |s| {
        let definition = s.definition(&wanted, None)?;
        let delimiter = |name: &str| {
            definition
                .iter()
                .flat_map(|d| &d.input.options)
                .find(|o| o.name == name)
                .and_then(|o| o.delimiter.clone())
                .unwrap_or_else(|| ",".into())
        };
        let options: BTreeMap<String, String> = given
            .into_iter()
            .map(|(name, values)| {
                let joined = values.join(&delimiter(&name));
                (name, joined)
            })
            .collect();
        s.run(&by, &wanted, &options)
    })
    .await;
    match ran {
        Ok(id) => {
            api.work.notify_waiters();
            redirect(&format!("/console/executions/{}", encode(&id)))
        }
        Err(refusal) => {
            let why = refusal_text(refusal);
            let mut page = job_page(&api, session, name, Some(why)).await;
            if page.status() == StatusCode::OK {
                *page.status_mut() = StatusCode::BAD_REQUEST;
            }
            page
        }
    }
}

/// What a refusal says, for a page.
fn refusal_text(refusal: crate::store::Refusal) -> String {
    use crate::store::Refusal;
    match refusal {
        Refusal::Invalid(why)
        | Refusal::NotFound(why)
        | Refusal::Forbidden(why)
        | Refusal::Conflict(why) => why,
        Refusal::Unavailable(_) => "the store is unavailable: try again".into(),
        _ => "refused".into(),
    }
}

/// `text` percent-encoded for a URL path segment.
fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            b => format!("%{b:02X}"),
        })
        .collect()
}

async fn runners(State(api): State<Shared>, headers: HeaderMap) -> Response {
    let Some(session) = session(&api, &headers).await else {
        return redirect("/console/login");
    };
    let found = store(&api, |s| Ok((s.runners()?, s.inventory()?))).await;
    let (runners, inventory) = match found {
        Ok(found) => found,
        Err(refusal) => return refusal.into_response(),
    };
    let stale_after = api.store.timing().stale_after;
    let rows: Vec<_> = runners
        .iter()
        .map(|r| {
            let mut view = crate::api::runner_view(r, None, stale_after);
            view["health"] = if view["stale"] == true {
                "stale"
            } else {
                "healthy"
            }
            .into();
            view["nodes"] = inventory
                .get(&r.name)
                .and_then(|i| i.nodes.as_object().map(|m| m.len()))
                .unwrap_or(0)
                .into();
            view
        })
        .collect();
    render(
        "runners.html",
        context! { page => "runners", admin => session.admin, csrf => session.csrf, runners => rows },
    )
}

async fn asset(Path(file): Path<String>) -> Response {
    let (body, kind) = match file.as_str() {
        "console.css" => (
            include_str!("static/console.css"),
            "text/css; charset=utf-8",
        ),
        "console.js" => (
            include_str!("static/console.js"),
            "text/javascript; charset=utf-8",
        ),
        "icon.svg" => (include_str!("static/icon.svg"), "image/svg+xml"),
        _ => return (StatusCode::NOT_FOUND, "no such file").into_response(),
    };
    ([(header::CONTENT_TYPE, kind)], body).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_runner_s_log_is_data_and_a_line_longer_than_a_page_does_not_stop_it() {
        let evil = b"{\"kind\":\"step_start\",\"step\":\"<meta http-equiv=refresh>\",\"node\":\"<i>n</i>\"}\n";
        let (html, _) = log_html(evil, 0);
        assert!(!html.contains("<meta") && !html.contains("<i>"), "{html}");
        let long = format!(
            "{{\"kind\":\"output\",\"text\":\"{}\"}}\n{{\"kind\":\"output\",\"text\":\"next\\n\"}}\n",
            "x".repeat(300_000)
        );
        let (html, offset) = log_page(long.as_bytes(), 0);
        assert!(
            offset > 300_000 && (offset as usize) < long.len(),
            "{offset}"
        );
        assert!(html.contains("more bytes)") && html.len() < 70_000);
        let (html, end) = log_page(&long.as_bytes()[offset as usize..], offset);
        assert!(html.contains("next") && end as usize == long.len());
        let f = fields(b"option.m=a&option.m=b");
        assert_eq!(f.len(), 2);
    }

    #[test]
    fn an_event_of_several_lines_shows_as_its_lines_would_one_by_one() {
        // An open colour, an unterminated OSC and an unfinished CSI end with their line.
        let lines = [
            "one \u{1b}[31mred\n",
            "plain\n",
            "two \u{1b}]0;title\n",
            "shown\n",
            "x \u{1b}[\n",
            "Xvisible\n",
        ];
        let event = |text: &str| {
            let e = serde_json::json!({"kind": "output", "stream": "stdout", "text": text});
            format!("{e}\n")
        };
        let one: String = event(&lines.concat());
        let (together, _) = log_html(one.as_bytes(), 0);
        let apart: String = lines.iter().map(|l| event(l)).collect();
        let (apart, _) = log_html(apart.as_bytes(), 0);
        for shown in ["plain", "shown", "Xvisible"] {
            assert!(together.contains(shown), "{together}");
        }
        assert_eq!(together, apart.replace("</span><span class=\"out\">", ""));
    }

    #[test]
    fn forms_decode_and_log_lines_render_escaped() {
        let f = form(b"csrf=ab%2Fc&token=a+b%zz");
        assert_eq!(f["csrf"], "ab/c");
        assert_eq!(f["token"], "a b%zz");
        let log = b"{\"kind\":\"output\",\"stream\":\"stdout\",\"text\":\"<script>x</script>\\n\"}\n{\"kind\":\"output\",\"text\":\"half";
        let (html, next) = log_html(log, 10);
        assert!(html.contains("&lt;script&gt;") && !html.contains("<script>"));
        assert_eq!(
            next,
            10 + log.iter().position(|b| *b == b'\n').unwrap() as u64 + 1
        );
        assert_ne!(csrf_of("a"), csrf_of("b"));
    }
}
