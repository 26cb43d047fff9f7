//! A fault-injecting TLS proxy between the runner and the control plane.
//!
//! The control plane has no fault code: the faults a runner must survive come
//! from here, a real TCP hop that can refuse a call, lose the answer after the
//! server committed, reset mid-answer, stall, or answer 5xx/429 per endpoint.
//! It also keeps every byte runners sent, to prove what never left a runner.

use std::collections::HashMap;
use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Deserialize;
use sortie_protocol::Committed;

use crate::wire::{serve, Reply, Request, Response};

/// The runner endpoints a fault can be attached to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Endpoint {
    Claim,
    Start,
    Heartbeat,
    Log,
    Complete,
    Fail,
    Inventory,
}

impl Endpoint {
    fn of(method: &str, path: &str) -> Option<Endpoint> {
        let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        Some(match (method, segments.as_slice()) {
            ("POST", ["v1", "claim"]) => Endpoint::Claim,
            ("POST", ["v1", "jobs", _, "start"]) => Endpoint::Start,
            ("POST", ["v1", "jobs", _, "heartbeat"]) => Endpoint::Heartbeat,
            ("PUT", ["v1", "jobs", _, "log"]) => Endpoint::Log,
            ("POST", ["v1", "jobs", _, "complete"]) => Endpoint::Complete,
            ("POST", ["v1", "jobs", _, "fail"]) => Endpoint::Fail,
            ("PUT", ["v1", "inventory"]) => Endpoint::Inventory,
            _ => return None,
        })
    }
}

/// How a call fails.
#[derive(Debug, Clone)]
pub enum FaultKind {
    /// Close the connection before forwarding anything.
    DropBefore,
    /// Forward (the server commits), then close without answering: the response is lost.
    DropAfterCommit,
    /// Forward, send half the response, then reset the connection.
    ResetAfterCommit,
    /// Answer this status without forwarding, with an optional `Retry-After`.
    Status {
        status: u16,
        retry_after: Option<u64>,
    },
    /// Answer nothing for this long, then close, without forwarding.
    Stall { millis: u64 },
    /// Answer `status` with `{"committed": committed}` without forwarding: a 416 to
    /// a log upload or a 412 to a completion, as if the server had lost bytes.
    Committed { status: u16, committed: u64 },
}

#[derive(Debug, Clone)]
pub struct Fault {
    pub endpoint: Endpoint,
    /// Which call from now on fails: 1 is the next one.
    pub nth: u64,
    /// How many consecutive calls fail from there.
    pub times: u64,
    pub kind: FaultKind,
}

#[derive(Default)]
struct Faults {
    calls: HashMap<Endpoint, u64>,
    /// (endpoint, first failing call number, last failing call number, kind)
    armed: Vec<(Endpoint, u64, u64, FaultKind)>,
}

struct Shared {
    upstream: String,
    agent: ureq::Agent,
    faults: Mutex<Faults>,
    received: Mutex<Vec<u8>>,
    /// Answer claims as a control plane that predates the protocol's extensions.
    hide_extensions: AtomicBool,
    /// Refuse bodies larger than this with 413, as a reverse proxy's limit does.
    body_limit: AtomicU64,
}

pub struct FaultProxy {
    url: String,
    shared: Arc<Shared>,
    stop: Arc<AtomicBool>,
}

impl FaultProxy {
    /// Listen on loopback with `tls`, forwarding to `upstream` (whose CA is `ca_pem`).
    pub fn start(tls: rustls::ServerConfig, upstream: &str, ca_pem: &[u8]) -> FaultProxy {
        use ureq::tls::{Certificate, RootCerts, TlsConfig};
        let roots = RootCerts::Specific(Arc::new(vec![Certificate::from_pem(ca_pem)
            .unwrap()
            .to_owned()]));
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .tls_config(TlsConfig::builder().root_certs(roots).build())
            .build()
            .into();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("https://{}/", listener.local_addr().unwrap());
        let shared = Arc::new(Shared {
            upstream: upstream.trim_end_matches('/').to_string(),
            agent,
            faults: Mutex::new(Faults::default()),
            received: Mutex::new(Vec::new()),
            hide_extensions: AtomicBool::new(false),
            body_limit: AtomicU64::new(u64::MAX),
        });
        let stop = Arc::new(AtomicBool::new(false));
        let handler_shared = shared.clone();
        let handler: Arc<crate::wire::Handler> = Arc::new(move |req| handler_shared.handle(req));
        let serve_stop = stop.clone();
        std::thread::spawn(move || serve(listener, Arc::new(tls), handler, serve_stop));
        FaultProxy { url, shared, stop }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// Arm a fault.
    pub fn inject(&self, fault: Fault) {
        let mut faults = self.shared.faults.lock().unwrap();
        let done = faults.calls.get(&fault.endpoint).copied().unwrap_or(0);
        let first = done + fault.nth;
        let last = first + fault.times.max(1) - 1;
        faults.armed.push((fault.endpoint, first, last, fault.kind));
    }

    /// From now on, take the extensions' offers (`log_tail_bytes`,
    /// `log_encodings`, `log_multiline`) out of claim answers, as a control plane that predates
    /// them would answer.
    pub fn hide_extensions(&self) {
        self.shared.hide_extensions.store(true, Ordering::Relaxed);
    }

    /// Refuse request bodies larger than `bytes` with 413 from now on.
    pub fn limit_bodies(&self, bytes: u64) {
        self.shared.body_limit.store(bytes, Ordering::Relaxed);
    }

    /// Disarm every fault.
    pub fn clear_faults(&self) {
        self.shared.faults.lock().unwrap().armed.clear();
    }

    /// Every byte runners sent to `/v1/` (request line, headers, body, decoded).
    pub fn received(&self) -> Vec<u8> {
        self.shared.received.lock().unwrap().clone()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = std::net::TcpStream::connect(
            self.url
                .trim_start_matches("https://")
                .trim_end_matches('/'),
        );
    }
}

impl Shared {
    fn fault_for(&self, endpoint: Endpoint) -> Option<FaultKind> {
        let mut faults = self.faults.lock().unwrap();
        let n = faults.calls.entry(endpoint).or_insert(0);
        *n += 1;
        let n = *n;
        faults
            .armed
            .iter()
            .find(|(e, first, last, _)| *e == endpoint && (*first..=*last).contains(&n))
            .map(|(_, _, _, kind)| kind.clone())
    }

    fn handle(&self, req: Request) -> Reply {
        if req.path.starts_with("/v1/") {
            let mut log = self.received.lock().unwrap();
            log.extend_from_slice(
                format!("{} {}?{}\n", req.method, req.path, req.query).as_bytes(),
            );
            let mut zstd = false;
            for (name, value) in &req.headers {
                log.extend_from_slice(format!("{name}: {value}\n").as_bytes());
                zstd |= name.eq_ignore_ascii_case("content-encoding") && value == "zstd";
            }
            // A compressed body is kept as what it says, so that a search of
            // these bytes (the leak canary) reads every byte that was sent.
            match zstd {
                true => log.extend_from_slice(
                    &zstd::stream::decode_all(req.body.as_slice()).expect("a zstd body decodes"),
                ),
                false => log.extend_from_slice(&req.body),
            }
            log.push(b'\n');
        }
        if req.body.len() as u64 > self.body_limit.load(Ordering::Relaxed) {
            return Reply::Respond(Response::problem(
                413,
                "payload too large",
                "a proxy's limit",
            ));
        }
        let fault = Endpoint::of(&req.method, &req.path).and_then(|e| self.fault_for(e));
        match fault {
            Some(FaultKind::DropBefore) => return Reply::Drop,
            Some(FaultKind::Stall { millis }) => {
                return Reply::Stall(Duration::from_millis(millis))
            }
            Some(FaultKind::Committed { status, committed }) => {
                return Reply::Respond(Response::json(status, &Committed { committed }))
            }
            Some(FaultKind::Status {
                status,
                retry_after,
            }) => {
                let mut r = Response::problem(status, "injected fault", "try again");
                if let Some(secs) = retry_after {
                    r.headers.push(("retry-after".into(), secs.to_string()));
                }
                return Reply::Respond(r);
            }
            _ => {}
        }
        let Some(mut response) = self.forward(&req) else {
            return Reply::Drop;
        };
        if self.hide_extensions.load(Ordering::Relaxed)
            && Endpoint::of(&req.method, &req.path) == Some(Endpoint::Claim)
            && response.status == 200
        {
            let mut answer: serde_json::Value = serde_json::from_slice(&response.body).unwrap();
            for job in answer["jobs"].as_array_mut().unwrap() {
                let job = job.as_object_mut().unwrap();
                job.remove("log_tail_bytes");
                job.remove("log_encodings");
                job.remove("log_multiline");
            }
            response.body = serde_json::to_vec(&answer).unwrap();
        }
        match fault {
            Some(FaultKind::DropAfterCommit) => Reply::Drop,
            Some(FaultKind::ResetAfterCommit) => Reply::Truncate(response),
            _ => Reply::Respond(response),
        }
    }

    /// The control plane's answer to `req`; none when it could not be reached.
    fn forward(&self, req: &Request) -> Option<Response> {
        let query = if req.query.is_empty() {
            String::new()
        } else {
            format!("?{}", req.query)
        };
        let mut builder = ureq::http::Request::builder()
            .method(req.method.as_str())
            .uri(format!("{}{}{query}", self.upstream, req.path));
        for (name, value) in &req.headers {
            let lower = name.to_ascii_lowercase();
            if !matches!(
                lower.as_str(),
                "host" | "content-length" | "connection" | "transfer-encoding"
            ) {
                builder = builder.header(name, value);
            }
        }
        let answer = if req.body.is_empty() {
            self.agent.run(builder.body(()).ok()?)
        } else {
            self.agent.run(builder.body(req.body.clone()).ok()?)
        };
        let mut answer = answer.ok()?;
        let status = answer.status().as_u16();
        let mut response = Response::json(status, &Committed { committed: 0 });
        response.headers.clear();
        for (name, value) in answer.headers() {
            match name.as_str() {
                "content-length" | "connection" | "transfer-encoding" => {}
                "content-type" => response.content_type = value.to_str().ok()?.to_string(),
                _ => response
                    .headers
                    .push((name.to_string(), value.to_str().ok()?.to_string())),
            }
        }
        response.body = answer
            .body_mut()
            .with_config()
            .limit(u64::MAX)
            .read_to_vec()
            .ok()?;
        Some(response)
    }
}
