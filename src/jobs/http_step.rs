//! HTTP steps: a request the runner makes itself, to the APIs only it can
//! reach (an internal service, a cloud's metadata, an appliance).
//!
//! No process runs: the request goes through the runner's own HTTP stack,
//! which the shot gives as [`Send`] (the same ureq/rustls client as the
//! control plane's: the proxy from the environment, https or plain http to
//! loopback only unless `insecure`), so a secret in a header or body never
//! sits on a command line; the answer's status, headers
//! and (bounded) body go to the step's output, where the job's masker covers
//! them. A 5xx answer or a failed connection is tried again, with backoff, as
//! often as `retries` says; an answer whose status is not expected fails the
//! step; `capture` takes values from the answer into result data.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _, Result};
use serde::Deserialize;

/// How much of an answer's body the log shows.
const SHOWN_BODY: usize = 64 * 1024;

/// The longest a backoff between tries waits.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// How long one try may take when neither the step nor the job has a timeout.
const DEFAULT_TRY: Duration = Duration::from_secs(60);

/// An HTTP step as the job spec gives it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Http {
    pub url: String,
    #[serde(default = "get")]
    pub method: String,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Query parameters, appended to the URL percent-encoded.
    #[serde(default)]
    pub query: BTreeMap<String, String>,
    /// A body as text (references replaced), or `json`.
    #[serde(default)]
    pub body: Option<String>,
    /// A JSON body: its strings' references replaced; sent as application/json.
    #[serde(default)]
    pub json: Option<serde_json::Value>,
    /// The statuses that succeed (default: any 2xx).
    #[serde(default)]
    pub expect: Vec<Expect>,
    /// Result data from the answer: `"/json/pointer"`, `"header:Name"` or `"status"`.
    #[serde(default)]
    pub capture: BTreeMap<String, String>,
    /// Tries after the first on a 5xx answer or a failed connection.
    #[serde(default)]
    pub retries: u32,
    /// CA certificates (PEM) the server's certificate must chain to, instead
    /// of the system's.
    #[serde(default)]
    pub ca_file: Option<String>,
    /// A client certificate chain (PEM text, usually `${secret.NAME}`), with
    /// `client_key`, presented to a server that asks for one.
    #[serde(default)]
    pub client_cert: Option<String>,
    /// The client certificate's private key (PEM text, usually `${secret.NAME}`).
    #[serde(default)]
    pub client_key: Option<String>,
    /// Do not check the server's certificate, and allow plain http to any
    /// host: said in the log every time.
    #[serde(default)]
    pub insecure: bool,
}

fn get() -> String {
    "GET".into()
}

/// A status that succeeds: one (`204`), or a class of them (`"3xx"`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum Expect {
    Status(u16),
    Class(String),
    /// Anything else, refused by [`Http::check`] with what it is.
    Other(serde_json::Value),
}

impl Expect {
    /// The statuses it stands for, if it is one of these forms.
    fn range(&self) -> Option<std::ops::RangeInclusive<u16>> {
        match self {
            Expect::Status(s) if (100..=599).contains(s) => Some(*s..=*s),
            Expect::Class(c) => match c.as_bytes() {
                [d @ b'1'..=b'5', b'x', b'x'] => {
                    let first = u16::from(d - b'0') * 100;
                    Some(first..=first + 99)
                }
                _ => None,
            },
            Expect::Status(_) | Expect::Other(_) => None,
        }
    }
}

impl std::fmt::Display for Expect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Expect::Status(s) => write!(f, "{s}"),
            Expect::Class(c) => write!(f, "{c}"),
            Expect::Other(v) => write!(f, "{v}"),
        }
    }
}

impl Http {
    /// Check what can be checked before any reference is replaced.
    pub fn check(&self) -> Result<()> {
        let method = self.method.to_ascii_uppercase();
        let known = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];
        if !known.contains(&method.as_str()) {
            bail!("method: {:?} is none of {}", self.method, known.join(", "));
        }
        if self.body.is_some() && self.json.is_some() {
            bail!("body and json: one or the other");
        }
        if let Some(bad) = self.expect.iter().find(|e| e.range().is_none()) {
            bail!("expect: {bad} is not an HTTP status (100 to 599) or class (\"1xx\" to \"5xx\")");
        }
        for (key, from) in &self.capture {
            if !crate::jobs::result_data::valid_key(key) {
                bail!("capture: {key:?} is not a data key ([A-Za-z0-9_.-])");
            }
            let known = from == "status" || from.starts_with("header:") || from.starts_with('/');
            if !known {
                bail!("capture.{key}: {from:?} is none of \"/json/pointer\", \"header:NAME\", \"status\"");
            }
        }
        if self.retries > 10 {
            bail!("retries: at most 10");
        }
        if self.client_cert.is_some() != self.client_key.is_some() {
            bail!("client_cert and client_key: both or neither");
        }
        Ok(())
    }
}

/// A request as the step makes it, its references replaced.
pub struct Request<'a> {
    pub method: &'a str,
    /// With the query, percent-encoded.
    pub url: &'a str,
    pub headers: &'a [(String, String)],
    pub body: &'a [u8],
    /// The CA file's name and its PEM text (read as the steps would read it).
    pub ca: Option<(&'a str, &'a [u8])>,
    /// The client certificate chain and key, PEM text.
    pub client: Option<(&'a str, &'a str)>,
    pub insecure: bool,
    /// The time left for this try.
    pub timeout: Option<Duration>,
}

/// An answer to a request.
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// Why a request got no answer.
pub enum Failure {
    /// It may not be made (a URL not allowed, a CA file that cannot be read).
    Refused(String),
    /// Connecting, TLS or the exchange failed: worth another try.
    Transport(String),
}

/// Sends a request: the runner's HTTP stack, given by the shot.
pub type Send<'a> = dyn Fn(&Request<'_>) -> std::result::Result<Answer, Failure> + Sync + 'a;

/// What became of an HTTP step.
pub enum Done {
    Succeeded,
    /// The request could not be made, or its answer is not what was expected.
    Failed(String),
    /// Its time ran out, or the job was told to stop (between tries).
    Stopped(crate::exec::StopReason),
}

/// Where an HTTP step writes: its output (masked by the job's log) and its data.
pub trait Sink {
    /// A line of the answer (status, headers, body) for the log.
    fn output(&mut self, text: &str);
    /// A note for the log (a retry, an insecure request).
    fn note(&mut self, text: &str);
    fn data(&mut self, key: &str, value: String) -> std::result::Result<(), String>;
}

/// Make the request: `value` replaces references (secrets included) in what
/// is sent; `ca` is the step's `ca_file` as read; `until` is when the step's
/// or the job's time runs out.
pub fn run(
    http: &Http,
    ca: Option<&[u8]>,
    value: &dyn Fn(&str) -> std::result::Result<String, String>,
    send: &Send<'_>,
    until: Option<Instant>,
    stop: &(dyn Fn() -> Option<crate::exec::StopReason> + Sync),
    sink: &mut dyn Sink,
) -> Done {
    match request(http, ca, value, send, until, stop, sink) {
        Ok(done) => done,
        Err(e) => Done::Failed(format!("{e:#}")),
    }
}

fn request(
    http: &Http,
    ca: Option<&[u8]>,
    value: &dyn Fn(&str) -> std::result::Result<String, String>,
    send: &Send<'_>,
    until: Option<Instant>,
    stop: &(dyn Fn() -> Option<crate::exec::StopReason> + Sync),
    sink: &mut dyn Sink,
) -> Result<Done> {
    use crate::exec::StopReason;
    use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
    /// Everything but RFC 3986's unreserved characters.
    const QUERY: &AsciiSet = &NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'.')
        .remove(b'_')
        .remove(b'~');
    let expand = |text: &str| value(text).map_err(anyhow::Error::msg);
    let mut url = expand(&http.url).context("url")?;
    for (i, (k, v)) in http.query.iter().enumerate() {
        let v = expand(v).with_context(|| format!("query.{k}"))?;
        url.push(if i == 0 && !url.contains('?') {
            '?'
        } else {
            '&'
        });
        url += &utf8_percent_encode(k, QUERY).to_string();
        url.push('=');
        url += &utf8_percent_encode(&v, QUERY).to_string();
    }
    let mut headers = Vec::new();
    for (k, v) in &http.headers {
        let v = expand(v).with_context(|| format!("headers.{k}"))?;
        headers.push((k.clone(), v));
    }
    let body = match (&http.body, &http.json) {
        (Some(text), _) => expand(text).context("body")?.into_bytes(),
        (None, Some(json)) => {
            let typed = headers
                .iter()
                .any(|(k, _)| k.eq_ignore_ascii_case("content-type"));
            if !typed {
                headers.push(("content-type".into(), "application/json".into()));
            }
            serde_json::to_vec(&expand_json(json, &expand).context("json")?)?
        }
        (None, None) => Vec::new(),
    };
    if http.insecure {
        sink.note("insecure: the server's certificate is not checked");
    }
    let client = match (&http.client_cert, &http.client_key) {
        (Some(cert), Some(key)) => Some((
            expand(cert).context("client_cert")?,
            expand(key).context("client_key")?,
        )),
        _ => None,
    };
    let method = http.method.to_ascii_uppercase();
    let mut backoff = Duration::from_secs(1);
    let mut attempt = 0;
    let left = || until.map(|u| u.saturating_duration_since(Instant::now()));
    loop {
        if let Some(reason) = stop() {
            return Ok(Done::Stopped(reason));
        }
        if left().is_some_and(|l| l.is_zero()) {
            return Ok(Done::Stopped(StopReason::TimedOut));
        }
        let retry = attempt < http.retries;
        let request = Request {
            method: &method,
            url: &url,
            headers: &headers,
            body: &body,
            ca: http.ca_file.as_deref().zip(ca),
            client: client.as_ref().map(|(c, k)| (c.as_str(), k.as_str())),
            insecure: http.insecure,
            timeout: Some(left().unwrap_or(DEFAULT_TRY)),
        };
        match send(&request) {
            Ok(answer) if answer.status >= 500 && retry => {
                let again = backoff.as_secs();
                sink.note(&format!(
                    "{method} {url}: HTTP {}; trying again in {again}s",
                    answer.status
                ));
            }
            Ok(answer) => return Ok(answered(http, &method, &url, answer, sink)),
            Err(Failure::Transport(e)) if retry => {
                let again = backoff.as_secs();
                sink.note(&format!("{method} {url}: {e}; trying again in {again}s"));
            }
            Err(Failure::Transport(_)) if left().is_some_and(|l| l.is_zero()) => {
                return Ok(Done::Stopped(StopReason::TimedOut));
            }
            Err(Failure::Transport(e) | Failure::Refused(e)) => bail!("{method} {url}: {e}"),
        }
        // The wait before the next try ends with the step's time, or a stop.
        let wake = Instant::now() + left().map_or(backoff, |l| backoff.min(l));
        while Instant::now() < wake && stop().is_none() {
            std::thread::sleep(Duration::from_millis(50).min(wake - Instant::now()));
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
        attempt += 1;
    }
}

/// A JSON body with the references in its strings replaced.
fn expand_json(
    value: &serde_json::Value,
    expand: &dyn Fn(&str) -> Result<String>,
) -> Result<serde_json::Value> {
    use serde_json::Value;
    Ok(match value {
        Value::String(s) => Value::String(expand(s)?),
        Value::Array(items) => Value::Array(
            items
                .iter()
                .map(|v| expand_json(v, expand))
                .collect::<Result<_>>()?,
        ),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| Ok((k.clone(), expand_json(v, expand)?)))
                .collect::<Result<_>>()?,
        ),
        other => other.clone(),
    })
}

/// What the log shows of a body: the first [`SHOWN_BODY`] bytes, cut at
/// whitespace (a secret cut in two would not be recognised to be masked).
fn shown_part(text: &str) -> &str {
    if text.len() <= SHOWN_BODY {
        return text;
    }
    let mut end = SHOWN_BODY;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let cut = text[..end].rfind(char::is_whitespace).unwrap_or(0);
    &text[..cut]
}

/// The answer into the log, checked, and its captures into data.
fn answered(http: &Http, method: &str, url: &str, answer: Answer, sink: &mut dyn Sink) -> Done {
    sink.output(&format!("{method} {url}: HTTP {}", answer.status));
    for (name, value) in &answer.headers {
        sink.output(&format!("< {name}: {value}"));
    }
    let text = String::from_utf8_lossy(&answer.body);
    let shown = shown_part(&text);
    if !shown.is_empty() {
        sink.output(shown.trim_end_matches('\n'));
    }
    if shown.len() < text.len() {
        sink.note(&format!(
            "the answer's body is {} bytes: the log shows the first {SHOWN_BODY}",
            answer.body.len()
        ));
    }
    let expected = if http.expect.is_empty() {
        (200..300).contains(&answer.status)
    } else {
        http.expect
            .iter()
            .any(|e| e.range().is_some_and(|r| r.contains(&answer.status)))
    };
    if !expected {
        let wanted = match http.expect.is_empty() {
            true => "2xx".to_string(),
            false => http
                .expect
                .iter()
                .map(Expect::to_string)
                .collect::<Vec<_>>()
                .join(", "),
        };
        return Done::Failed(format!(
            "{method} {url}: HTTP {}, expected {wanted}",
            answer.status
        ));
    }
    let json: Option<serde_json::Value> = serde_json::from_slice(&answer.body).ok();
    for (key, from) in &http.capture {
        let value = if from == "status" {
            Some(answer.status.to_string())
        } else if let Some(name) = from.strip_prefix("header:") {
            answer
                .headers
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.clone())
        } else {
            json.as_ref()
                .and_then(|j| j.pointer(from))
                .map(|v| match v {
                    serde_json::Value::String(s) => s.clone(),
                    other => other.to_string(),
                })
        };
        let Some(value) = value else {
            return Done::Failed(format!("capture {key}: {from} is not in the answer"));
        };
        if let Err(why) = sink.data(key, value) {
            return Done::Failed(format!("capture {key}: {why}"));
        }
    }
    Done::Succeeded
}

#[cfg(test)]
mod tests {
    use super::*;

    fn http(value: serde_json::Value) -> Result<Http> {
        let http: Http = serde_json::from_value(value)?;
        http.check()?;
        Ok(http)
    }

    #[test]
    fn the_log_shows_the_first_64_kib_cut_at_whitespace() {
        let small = "short answer";
        assert_eq!(shown_part(small), small);
        // Multi-byte characters: bytes are counted, never split.
        let text = "é ".repeat(SHOWN_BODY);
        let shown = shown_part(&text);
        assert!(shown.len() <= SHOWN_BODY && text.starts_with(shown));
        // A token (a secret, say) across the limit is left out whole.
        let text = format!("{} hunter2secretvalue", "x".repeat(SHOWN_BODY - 8));
        assert!(!shown_part(&text).contains("hunt"));
    }

    #[test]
    fn what_a_step_asks_is_checked_before_it_runs() {
        assert!(http(serde_json::json!({"url": "https://x/"})).is_ok());
        assert!(http(serde_json::json!({"url": "https://x/", "expect": [204, "3xx"]})).is_ok());
        for (bad, why) in [
            (
                serde_json::json!({"url": "https://x/", "method": "BREW"}),
                "method",
            ),
            (
                serde_json::json!({"url": "https://x/", "body": "a", "json": {}}),
                "one or the other",
            ),
            (
                serde_json::json!({"url": "https://x/", "expect": [99]}),
                "not an HTTP status",
            ),
            (
                serde_json::json!({"url": "https://x/", "expect": ["6xx"]}),
                "not an HTTP status",
            ),
            (
                serde_json::json!({"url": "https://x/", "expect": [[302]]}),
                "expect: [302] is not an HTTP status",
            ),
            (
                serde_json::json!({"url": "https://x/", "expect": [-1]}),
                "expect: -1 is not an HTTP status",
            ),
            (
                serde_json::json!({"url": "https://x/", "capture": {"k": "body"}}),
                "none of",
            ),
            (
                serde_json::json!({"url": "https://x/", "capture": {"k": ""}}),
                "none of",
            ),
            (
                serde_json::json!({"url": "https://x/", "capture": {"a b": "status"}}),
                "data key",
            ),
            (
                serde_json::json!({"url": "https://x/", "retries": 11}),
                "at most 10",
            ),
            (
                serde_json::json!({"url": "https://x/", "verify": false}),
                "unknown field",
            ),
        ] {
            let e = format!("{:#}", http(bad).unwrap_err());
            assert!(e.contains(why), "{e}");
        }
    }
}
