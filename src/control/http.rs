//! Protocol v1 over HTTPS: one ureq agent, built once, reused for every call of a shot.
//!
//! The agent is built in one place with explicit timeouts, `http_status_as_error`
//! off (error bodies are read, not lost), the configured trust roots and client
//! identity, and the proxy from `HTTPS_PROXY`/`NO_PROXY`. Every call retries
//! transient failures (network errors, 408, 429, 5xx) with jittered backoff,
//! honouring `Retry-After`, until the shot's deadline or the retry budget runs out.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::anyhow;
use sortie_protocol::{
    ClaimRequest, ClaimResponse, ClaimedJob, Committed, CompleteRequest, Completion, FailRequest,
    Fence, HeartbeatRequest, HeartbeatResponse, InventoryRequest, Lease, LeaseResponse, LogTail,
    Problem, HEADER_LEASE_TOKEN, HEADER_PROTOCOL, HEADER_REQUEST_ID, LOG_ENCODING_ZSTD,
    PROTOCOL_VERSION,
};
use ureq::Agent;

use super::retry::Backoff;
use super::{Beat, ControlError, ControlPlane, Endpoint, JobRef, Result};
use crate::ids;
use crate::net;
use crate::secret::Secret;

/// Longest time one call keeps retrying, even when the shot has more time.
const RETRY_BUDGET: Duration = Duration::from_secs(60);

pub struct HttpControl {
    agent: Agent,
    base: String,
    token: Option<Secret>,
    request_timeout: Duration,
    deadline: Option<Instant>,
    stopping: fn() -> bool,
    /// The control plane has answered this client: from then on a name that
    /// does not resolve or an answer that is not HTTP is a passing fault
    /// (DNS flapping mid-shot), retried like any other, not a configuration
    /// error.
    reached: std::sync::atomic::AtomicBool,
    /// A compressed log upload was refused (415 or 400): log bodies go as
    /// they are for the rest of the shot.
    plain_logs: std::sync::atomic::AtomicBool,
    /// The largest log body a proxy on the way took after refusing a larger
    /// one (413): later uploads are cut to it.
    log_body_limit: std::sync::atomic::AtomicUsize,
}

/// A log body refused as too large (413) is sent again in halves, down to this.
const MIN_LOG_BODY: usize = 4 * 1024;

/// What a request carries: its body, the body's media type and, when the body
/// is compressed, its `Content-Encoding`.
#[derive(Clone, Copy)]
struct Payload<'a> {
    bytes: &'a [u8],
    content_type: &'a str,
    encoding: Option<&'a str>,
}

/// Zstandard's level for log uploads: its fastest standard level, which keeps
/// compression well ahead of a job's output while a text log still shrinks
/// several times over (TLS and the control plane's storage then see that much
/// less). The static binary is built with zstd's "fast" strategy only
/// (packaging/build-static.sh), the one level 1 uses.
const LOG_ZSTD_LEVEL: i32 = 1;

/// A response whose status the caller interprets.
struct Reply {
    status: u16,
    body: Vec<u8>,
}

impl HttpControl {
    /// Build the client. `deadline` bounds every retry loop.
    pub fn new(
        connect: &Endpoint,
        base: &str,
        deadline: Option<Instant>,
        stopping: fn() -> bool,
    ) -> anyhow::Result<HttpControl> {
        let agent = net::agent(
            connect.roots.as_ref(),
            connect.identity.as_ref(),
            connect.connect_timeout,
            connect.request_timeout,
        )?;
        Ok(HttpControl {
            agent,
            base: base.to_string(),
            token: connect.token.clone(),
            request_timeout: connect.request_timeout,
            deadline,
            stopping,
            reached: std::sync::atomic::AtomicBool::new(false),
            plain_logs: std::sync::atomic::AtomicBool::new(false),
            log_body_limit: std::sync::atomic::AtomicUsize::new(usize::MAX),
        })
    }

    /// One log upload; `None` when it was refused as too large (413).
    fn put_log_once(&self, job: &JobRef, offset: u64, bytes: &[u8]) -> Result<Option<u64>> {
        let path = format!(
            "v1/jobs/{}/log?offset={offset}&attempt={}",
            net::encode_segment(&job.id),
            job.attempt
        );
        let plain = Payload {
            bytes,
            content_type: "application/x-ndjson",
            encoding: None,
        };
        let token = Some(job.lease_token.as_str());
        // A body that could not be compressed (no memory for the encoder)
        // goes as it is: the encoding is per request.
        let compressed = (job.zstd_log && !self.plain_logs.load(Ordering::Relaxed))
            .then(|| zstd::bulk::compress(bytes, LOG_ZSTD_LEVEL).ok())
            .flatten();
        let payload = compressed.as_deref().map_or(plain, |frame| Payload {
            bytes: frame,
            encoding: Some(LOG_ENCODING_ZSTD),
            ..plain
        });
        let mut reply = self.call("PUT", &path, payload, token, Duration::ZERO)?;
        if compressed.is_some() && matches!(reply.status, 400 | 415) {
            // The control plane offered the encoding, but it, or a proxy on
            // the way, does not take it: the same bytes as they are, and no
            // compressed body again.
            self.plain_logs.store(true, Ordering::Relaxed);
            reply = self.call("PUT", &path, plain, token, Duration::ZERO)?;
        }
        match reply.status {
            200 => Ok(Some(parse::<Committed>(&reply, "log upload")?.committed)),
            413 if bytes.len() > MIN_LOG_BODY => Ok(None),
            416 => Err(ControlError::Resend(
                parse::<Committed>(&reply, "log upload")?.committed,
            )),
            _ => Err(refusal(&reply, "log upload")),
        }
    }

    /// `bytes` from `offset` in pieces of `size`, while each is taken whole.
    fn put_log_pieces(&self, job: &JobRef, offset: u64, bytes: &[u8], size: usize) -> Result<u64> {
        let mut at = offset;
        for piece in bytes.chunks(size) {
            let committed = self.put_log(job, at, piece)?;
            if committed != at + piece.len() as u64 {
                return Ok(committed);
            }
            at = committed;
        }
        Ok(at)
    }

    /// One protocol call with retries. `extra` is added to `request_timeout` (long polls).
    fn call(
        &self,
        method: &str,
        path: &str,
        payload: Payload<'_>,
        lease_token: Option<&str>,
        extra: Duration,
    ) -> Result<Reply> {
        let url = format!("{}{}", self.base, path);
        let request_id = ids::uuid();
        let mut until = Instant::now() + RETRY_BUDGET;
        if let Some(deadline) = self.deadline {
            until = until.min(deadline);
        }
        let mut backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(10), until);
        loop {
            let auth = self
                .token
                .as_ref()
                .map(|t| format!("Bearer {}", t.expose()));
            let mut headers = vec![
                ("content-type", payload.content_type),
                ("accept", "application/json"),
                (HEADER_PROTOCOL, PROTOCOL_VERSION),
                (HEADER_REQUEST_ID, request_id.as_str()),
            ];
            if let Some(auth) = &auth {
                headers.push(("authorization", auth));
            }
            if let Some(lease) = lease_token {
                headers.push((HEADER_LEASE_TOKEN, lease));
            }
            if let Some(encoding) = payload.encoding {
                headers.push(("content-encoding", encoding));
            }
            // Never past the shot's deadline: the last call is clipped to what is left.
            let mut timeout = self.request_timeout + extra;
            if let Some(deadline) = self.deadline {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Err(ControlError::Unreachable(anyhow!(
                        "{method} {url}: the shot's time is up"
                    )));
                }
                timeout = timeout.min(left);
            }
            let timeout = Some(timeout);
            let outcome = net::exchange(
                &self.agent,
                method,
                &url,
                &headers,
                payload.bytes.to_vec(),
                timeout,
            );
            if outcome.is_ok() {
                self.reached.store(true, Ordering::Relaxed);
            }
            let (error, retry_after) = match outcome {
                Ok(answer) => match answer.status {
                    401 | 403 => {
                        return Err(ControlError::Rejected(format!(
                            "{} from {method} {url}{}",
                            answer.status,
                            detail(&answer.body)
                        )))
                    }
                    408 | 429 | 500 | 502 | 503 | 504 => (
                        anyhow!(
                            "{} from {method} {url}{}",
                            answer.status,
                            detail(&answer.body)
                        ),
                        answer.retry_after,
                    ),
                    status => {
                        return Ok(Reply {
                            status,
                            body: answer.body,
                        })
                    }
                },
                Err(net::Failed::TooLarge) => {
                    return Err(ControlError::Refused(format!(
                        "{method} {url}: {}",
                        net::Failed::TooLarge
                    )))
                }
                // Not a request the control plane can be sent, now or later.
                Err(net::Failed::Request(why)) => return Err(ControlError::Config(anyhow!(why))),
                Err(net::Failed::Transport(e)) => {
                    let reached = self.reached.load(Ordering::Relaxed);
                    if let Some(fatal) = lasting_failure(&e, &url, reached) {
                        return Err(fatal);
                    }
                    (anyhow!("{method} {url}: {e}"), None)
                }
                Err(e) => (anyhow!("{method} {url}: {e}"), None),
            };
            // Told to stop: one try per call, so the shot ends within its grace period;
            // what is not delivered stays in the state dir.
            let delay = if (self.stopping)() {
                None
            } else {
                backoff.next_delay(retry_after)
            };
            match delay {
                Some(delay) => {
                    tracing::warn!("{error:#}; retrying in {delay:.1?}");
                    std::thread::sleep(delay);
                }
                None => return Err(ControlError::Unreachable(error)),
            }
        }
    }

    fn post_json(
        &self,
        path: &str,
        body: &impl serde::Serialize,
        extra: Duration,
    ) -> Result<Reply> {
        let body = serde_json::to_vec(body).expect("protocol types serialize");
        let payload = Payload {
            bytes: &body,
            content_type: "application/json",
            encoding: None,
        };
        self.call("POST", path, payload, None, extra)
    }
}

fn job_path(job: &JobRef, action: &str) -> String {
    format!("v1/jobs/{}/{action}", net::encode_segment(&job.id))
}

/// Heartbeats at least this often and at most this rarely, whatever a control
/// plane says (0 would disable them, and with them the lease).
const HEARTBEAT_SECONDS: std::ops::RangeInclusive<u64> = 1..=600;

fn sane(mut lease: Lease) -> Lease {
    lease.heartbeat_seconds = lease
        .heartbeat_seconds
        .clamp(*HEARTBEAT_SECONDS.start(), *HEARTBEAT_SECONDS.end());
    lease
}

fn parse<T: serde::de::DeserializeOwned>(reply: &Reply, what: &str) -> Result<T> {
    serde_json::from_slice(&reply.body).map_err(|e| {
        ControlError::Refused(format!(
            "the control plane's answer to {what} is not valid: {e}"
        ))
    })
}

/// Map the statuses every job call shares: 409/410 fence, others refuse.
fn refusal(reply: &Reply, what: &str) -> ControlError {
    let why = format!("{} from {what}{}", reply.status, detail(&reply.body));
    match reply.status {
        409 | 410 => ControlError::Fenced(why),
        _ => ControlError::Refused(why),
    }
}

/// Longest detail of a control plane's error shown.
const MAX_DETAIL: usize = 512;

/// ": detail" from a problem+json body, or nothing. It reaches a terminal or a
/// log line: control characters are escaped and its length bounded.
fn detail(body: &[u8]) -> String {
    match serde_json::from_slice::<Problem>(body) {
        Ok(p) => p
            .detail
            .or(p.title)
            .map(|d| {
                let d: String = d.chars().take(MAX_DETAIL).collect();
                format!(": {}", d.escape_debug())
            })
            .unwrap_or_default(),
        Err(_) => String::new(),
    }
}

/// A failure that retrying cannot fix, so the shot ends at once with a hint
/// instead of a minute of retries: a host name that does not exist, a URL
/// whose scheme does not match what the port speaks (both only before the
/// control plane first answered; after, they are passing), an untrusted or invalid
/// server certificate (all configuration), or the server refusing our client
/// certificate. A resolver that is down ("temporary failure") is retried.
fn lasting_failure(error: &ureq::Error, url: &str, reached: bool) -> Option<ControlError> {
    if let Some(fatal) = wrong_address(error, url).filter(|_| !reached) {
        return Some(fatal);
    }
    let rustls_error = match error {
        ureq::Error::Rustls(e) => Some(e.clone()),
        ureq::Error::Io(io) => io
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<rustls::Error>())
            .cloned(),
        _ => None,
    }?;
    use rustls::AlertDescription as A;
    match &rustls_error {
        rustls::Error::InvalidCertificate(why) => Some(ControlError::Tls(anyhow!(
            "the certificate of {url} is not accepted: {why:?} (check --ca-file and the server name)"
        ))),
        rustls::Error::AlertReceived(
            A::CertificateRequired | A::BadCertificate | A::UnknownCA | A::AccessDenied
            | A::CertificateUnknown | A::CertificateExpired | A::CertificateRevoked,
        ) => Some(ControlError::Rejected(format!(
            "{url} refused the TLS client certificate ({rustls_error}); check --client-cert"
        ))),
        rustls::Error::InvalidMessage(_) => Some(ControlError::Config(anyhow!(
            "{url}: the server does not speak TLS ({rustls_error}); if it serves plain HTTP, check the port, or put TLS in front of it"
        ))),
        rustls::Error::AlertReceived(A::HandshakeFailure | A::ProtocolVersion)
        | rustls::Error::PeerIncompatible(_)
        | rustls::Error::NoCertificatesPresented => Some(ControlError::Tls(anyhow!(
            "TLS handshake with {url} failed: {rustls_error}"
        ))),
        _ => None,
    }
}

/// A name that does not resolve, or plain HTTP sent to a port that answers
/// with something else (a TLS server's alert does not parse as HTTP).
fn wrong_address(error: &ureq::Error, url: &str) -> Option<ControlError> {
    let host = url.split_once("://").map_or(url, |(_, rest)| {
        rest.split(['/', '?']).next().unwrap_or(rest)
    });
    match error {
        ureq::Error::HostNotFound => Some(ControlError::Config(anyhow!(
            "{url}: the host name in {host} does not resolve (check --server)"
        ))),
        // The resolver's own words (getaddrinfo's EAI_NONAME and EAI_NODATA);
        // "Temporary failure in name resolution" is left to the retries.
        ureq::Error::Io(e)
            if [
                "Name or service not known",
                "No address associated with hostname",
            ]
            .iter()
            .any(|m| e.to_string().contains(m)) =>
        {
            Some(ControlError::Config(anyhow!(
                "{url}: the host name in {host} does not resolve ({e}; check --server)"
            )))
        }
        ureq::Error::Protocol(e) if url.starts_with("http://") => Some(ControlError::Config(
            anyhow!("{url}: the answer is not HTTP ({e}): if the server speaks TLS, use https://"),
        )),
        _ => None,
    }
}

impl ControlPlane for HttpControl {
    fn claim(&self, request: &ClaimRequest) -> Result<Vec<ClaimedJob>> {
        let wait = Duration::from_secs(request.wait_seconds);
        let reply = self.post_json("v1/claim", request, wait)?;
        match reply.status {
            204 => Ok(Vec::new()),
            200 => {
                let answer: ClaimResponse = parse(&reply, "claim")?;
                if answer.jobs.len() > request.max_jobs as usize {
                    return Err(ControlError::Refused(format!(
                        "the control plane gave {} jobs for a claim of at most {}",
                        answer.jobs.len(),
                        request.max_jobs
                    )));
                }
                Ok(answer
                    .jobs
                    .into_iter()
                    .map(|mut job| {
                        job.lease = sane(job.lease);
                        job
                    })
                    .collect())
            }
            _ => Err(ControlError::Refused(format!(
                "{} from claim{}",
                reply.status,
                detail(&reply.body)
            ))),
        }
    }

    fn start(&self, job: &JobRef) -> Result<Lease> {
        let body = Fence {
            attempt: job.attempt,
            lease_token: job.lease_token.clone(),
        };
        let reply = self.post_json(&job_path(job, "start"), &body, Duration::ZERO)?;
        match reply.status {
            200 => Ok(sane(parse::<LeaseResponse>(&reply, "start")?.lease)),
            _ => Err(refusal(&reply, "start")),
        }
    }

    fn heartbeat(&self, job: &JobRef, log_length: u64) -> Result<Beat> {
        let body = HeartbeatRequest {
            attempt: job.attempt,
            lease_token: job.lease_token.clone(),
            log_length,
        };
        let reply = self.post_json(&job_path(job, "heartbeat"), &body, Duration::ZERO)?;
        match reply.status {
            200 => {
                let answer: HeartbeatResponse = parse(&reply, "heartbeat")?;
                Ok(Beat {
                    lease: sane(answer.lease),
                    action: answer.action,
                })
            }
            _ => Err(refusal(&reply, "heartbeat")),
        }
    }

    /// A proxy on the way may take smaller bodies than the control plane: a
    /// body it refuses as too large (413) goes again in halves, down to
    /// [`MIN_LOG_BODY`], and later uploads in pieces the size it took.
    fn put_log(&self, job: &JobRef, offset: u64, bytes: &[u8]) -> Result<u64> {
        let limit = self.log_body_limit.load(Ordering::Relaxed);
        if bytes.len() > limit {
            return self.put_log_pieces(job, offset, bytes, limit);
        }
        match self.put_log_once(job, offset, bytes)? {
            Some(committed) => Ok(committed),
            None => {
                let half = bytes.len().div_ceil(2);
                self.log_body_limit.fetch_min(half, Ordering::Relaxed);
                self.put_log_pieces(job, offset, bytes, half)
            }
        }
    }

    fn complete(
        &self,
        job: &JobRef,
        completion: &Completion,
        tail: Option<&LogTail>,
    ) -> Result<()> {
        let body = CompleteRequest {
            attempt: job.attempt,
            lease_token: job.lease_token.clone(),
            completion: completion.clone(),
            log_tail: tail.cloned(),
        };
        let reply = self.post_json(&job_path(job, "complete"), &body, Duration::ZERO)?;
        match (reply.status, tail) {
            (200, _) => Ok(()),
            (412, _) => Err(ControlError::Resend(
                parse::<Committed>(&reply, "complete")?.committed,
            )),
            // Too large for a proxy on the way with the log's tail: the tail
            // goes as an upload (in pieces it takes), the completion alone.
            (413, Some(tail)) => {
                self.put_log(job, tail.offset, tail.data.as_bytes())?;
                self.complete(job, completion, None)
            }
            _ => Err(refusal(&reply, "complete")),
        }
    }

    fn put_inventory(&self, inventory: &InventoryRequest) -> Result<bool> {
        let body = serde_json::to_vec(inventory).expect("protocol types serialize");
        let payload = Payload {
            bytes: &body,
            content_type: "application/json",
            encoding: None,
        };
        let reply = self.call("PUT", "v1/inventory", payload, None, Duration::ZERO)?;
        match reply.status {
            200 => Ok(true),
            _ => Err(refusal(&reply, "inventory")),
        }
    }

    fn fail(&self, job: &JobRef, reason: &str) -> Result<()> {
        let body = FailRequest {
            attempt: job.attempt,
            lease_token: job.lease_token.clone(),
            reason: reason.to_string(),
        };
        let reply = self.post_json(&job_path(job, "fail"), &body, Duration::ZERO)?;
        match reply.status {
            200 => Ok(()),
            _ => Err(refusal(&reply, "fail")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_that_does_not_resolve_ends_a_shot_only_before_the_first_answer() {
        let url = "https://cp.example.invalid/v1/claim";
        let at_start = lasting_failure(&ureq::Error::HostNotFound, url, false);
        assert!(
            matches!(at_start, Some(ControlError::Config(_))),
            "{at_start:?}"
        );
        // Mid-shot, after the control plane answered: DNS flapped; retried.
        assert!(lasting_failure(&ureq::Error::HostNotFound, url, true).is_none());
    }
}
