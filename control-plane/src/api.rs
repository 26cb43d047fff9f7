//! Routing: protocol v1 endpoints for runners, the admin API, and fault injection.
//!
//! Runner endpoints are under `/v1/`, admin endpoints under `/admin/`; each side has
//! its own bearer token. Faults (enabled with `--faults`) let tests make any
//! endpoint's Nth call fail in a chosen way, after or before the state change.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Deserialize;
use sortie_protocol::{
    Action, ClaimRequest, ClaimResponse, Committed, CompleteRequest, FailRequest, Fence,
    HeartbeatRequest, HeartbeatResponse, InventoryRequest, LeaseResponse, HEADER_LEASE_TOKEN,
};

use crate::http::{Reply, Request, Response};
use crate::store::{Refusal, Store};

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

/// How a call fails.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FaultKind {
    /// Close the connection before doing anything.
    DropBefore,
    /// Do the work (commit), then close without answering: the response is lost.
    DropAfterCommit,
    /// Do the work, send half the response, then reset the connection.
    ResetAfterCommit,
    /// Answer this status without doing the work, with an optional `Retry-After`.
    Status {
        status: u16,
        #[serde(default)]
        retry_after: Option<u64>,
    },
    /// Answer nothing for this long, then close, without doing the work.
    Stall { millis: u64 },
    /// Answer `status` with `{"committed": committed}` without doing the work: a 416 to
    /// a log upload or a 412 to a completion, as if the server had lost bytes.
    Committed { status: u16, committed: u64 },
}

#[derive(Debug, Clone, Deserialize)]
pub struct Fault {
    pub endpoint: Endpoint,
    /// Which call from now on fails: 1 is the next one.
    #[serde(default = "one")]
    pub nth: u64,
    /// How many consecutive calls fail from there.
    #[serde(default = "one")]
    pub times: u64,
    #[serde(flatten)]
    pub kind: FaultKind,
}

fn one() -> u64 {
    1
}

#[derive(Default)]
struct Faults {
    calls: HashMap<Endpoint, u64>,
    /// (endpoint, first failing call number, last failing call number, kind)
    armed: Vec<(Endpoint, u64, u64, FaultKind)>,
}

pub struct Api {
    pub store: Arc<Store>,
    runner_token: Option<String>,
    admin_token: String,
    faults_enabled: bool,
    faults: Mutex<Faults>,
    /// Every byte of every runner request (target, headers, body), when recording.
    received: Option<Mutex<Vec<u8>>>,
}

impl Api {
    pub fn new(
        store: Arc<Store>,
        runner_token: Option<String>,
        admin_token: String,
        faults_enabled: bool,
        record: bool,
    ) -> Api {
        Api {
            store,
            runner_token,
            admin_token,
            faults_enabled,
            faults: Mutex::new(Faults::default()),
            received: record.then(|| Mutex::new(Vec::new())),
        }
    }

    /// Every byte runners sent (when recording): for proving what never left a runner.
    pub fn received(&self) -> Vec<u8> {
        self.received
            .as_ref()
            .map(|r| r.lock().unwrap_or_else(|e| e.into_inner()).clone())
            .unwrap_or_default()
    }

    /// Arm a fault (also reachable as `POST /admin/faults`).
    pub fn inject(&self, fault: Fault) {
        let mut faults = self.faults.lock().unwrap_or_else(|e| e.into_inner());
        let done = faults.calls.get(&fault.endpoint).copied().unwrap_or(0);
        let first = done + fault.nth;
        let last = first + fault.times.max(1) - 1;
        faults.armed.push((fault.endpoint, first, last, fault.kind));
    }

    /// Disarm every fault.
    pub fn clear_faults(&self) {
        self.faults
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .armed
            .clear();
    }

    fn fault_for(&self, endpoint: Endpoint) -> Option<FaultKind> {
        let mut faults = self.faults.lock().unwrap_or_else(|e| e.into_inner());
        let n = faults.calls.entry(endpoint).or_insert(0);
        *n += 1;
        let n = *n;
        faults
            .armed
            .iter()
            .find(|(e, first, last, _)| *e == endpoint && (*first..=*last).contains(&n))
            .map(|(_, _, _, kind)| kind.clone())
    }

    pub fn handle(&self, req: Request) -> Reply {
        let path = req.path.trim_end_matches('/').to_string();
        let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        match segments.first() {
            Some(&"v1") => {
                if let Some(received) = &self.received {
                    let mut log = received.lock().unwrap_or_else(|e| e.into_inner());
                    log.extend_from_slice(
                        format!("{} {}?{}\n", req.method, req.path, req.query).as_bytes(),
                    );
                    for (name, value) in &req.headers {
                        log.extend_from_slice(format!("{name}: {value}\n").as_bytes());
                    }
                    log.extend_from_slice(&req.body);
                    log.push(b'\n');
                }
                if let Err(r) = check_bearer(&req, self.runner_token.as_deref()) {
                    return Reply::Respond(r);
                }
                self.runner(&req, &segments[1..])
            }
            Some(&"admin") => {
                if let Err(r) = check_bearer(&req, Some(&self.admin_token)) {
                    return Reply::Respond(r);
                }
                Reply::Respond(self.admin(&req, &segments[1..]))
            }
            _ => Reply::Respond(Response::problem(404, "not found", req.path.clone())),
        }
    }

    fn runner(&self, req: &Request, segments: &[&str]) -> Reply {
        let endpoint = match (req.method.as_str(), segments) {
            ("POST", ["claim"]) => Endpoint::Claim,
            ("POST", ["jobs", _, "start"]) => Endpoint::Start,
            ("POST", ["jobs", _, "heartbeat"]) => Endpoint::Heartbeat,
            ("PUT", ["jobs", _, "log"]) => Endpoint::Log,
            ("POST", ["jobs", _, "complete"]) => Endpoint::Complete,
            ("POST", ["jobs", _, "fail"]) => Endpoint::Fail,
            ("PUT", ["inventory"]) => Endpoint::Inventory,
            _ => return Reply::Respond(Response::problem(404, "not found", req.path.clone())),
        };
        let job_id = segments.get(1).copied().unwrap_or("");
        let fault = if self.faults_enabled {
            self.fault_for(endpoint)
        } else {
            None
        };
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
                    r.headers.push(("retry-after", secs.to_string()));
                }
                return Reply::Respond(r);
            }
            _ => {}
        }
        let response = self.runner_call(endpoint, job_id, req);
        match fault {
            Some(FaultKind::DropAfterCommit) => Reply::Drop,
            Some(FaultKind::ResetAfterCommit) => Reply::Truncate(response),
            _ => Reply::Respond(response),
        }
    }

    fn runner_call(&self, endpoint: Endpoint, id: &str, req: &Request) -> Response {
        let store = &self.store;
        match endpoint {
            Endpoint::Claim => with_body(req, |body: ClaimRequest| {
                if body.max_jobs == 0 {
                    return Response::problem(400, "bad request", "max_jobs must be at least 1");
                }
                let jobs = store.claim(&body);
                if jobs.is_empty() {
                    Response::empty(204)
                } else {
                    Response::json(200, &ClaimResponse { jobs })
                }
            }),
            Endpoint::Start => with_body(req, |body: Fence| {
                outcome(store.start(id, &body).map(|lease| LeaseResponse { lease }))
            }),
            Endpoint::Heartbeat => with_body(req, |body: HeartbeatRequest| {
                outcome(store.heartbeat(id, &body).map(|(lease, cancel)| {
                    let action = if cancel {
                        Action::Cancel
                    } else {
                        Action::Continue
                    };
                    HeartbeatResponse { lease, action }
                }))
            }),
            Endpoint::Log => {
                let offset = req
                    .query_param("offset")
                    .and_then(|v| v.parse::<u64>().ok());
                let attempt = req
                    .query_param("attempt")
                    .and_then(|v| v.parse::<u64>().ok());
                let (Some(offset), Some(attempt)) = (offset, attempt) else {
                    return Response::problem(
                        400,
                        "bad request",
                        "offset and attempt are required",
                    );
                };
                let token = req.header(HEADER_LEASE_TOKEN).unwrap_or("");
                outcome(
                    store
                        .append_log(id, attempt, token, offset, &req.body)
                        .map(|committed| Committed { committed }),
                )
            }
            Endpoint::Complete => with_body(req, |body: CompleteRequest| {
                outcome(store.complete(id, &body).map(|_| serde_json::json!({})))
            }),
            Endpoint::Fail => with_body(req, |body: FailRequest| {
                let fence = Fence {
                    attempt: body.attempt,
                    lease_token: body.lease_token.clone(),
                };
                outcome(
                    store
                        .fail(id, &fence, &body.reason)
                        .map(|_| serde_json::json!({})),
                )
            }),
            Endpoint::Inventory => with_body(req, |body: InventoryRequest| {
                let nodes = serde_json::to_value(&body.nodes).unwrap_or_default();
                store.put_inventory(&body.runner_id, nodes);
                Response::json(200, &serde_json::json!({}))
            }),
        }
    }

    fn admin(&self, req: &Request, segments: &[&str]) -> Response {
        let store = &self.store;
        match (req.method.as_str(), segments) {
            ("POST", ["jobs"]) => with_body(req, |body: Enqueue| {
                // A spec an admin wrote: a field job spec v1 does not have is a
                // mistake to report now, not a surprise when it runs.
                // (A Rundeck job's text is checked by the runner that converts it.)
                let unknown = match body.spec.get("rundeck") {
                    Some(_) => Vec::new(),
                    None => sortie_protocol::schema::unknown(&body.spec),
                };
                if !unknown.is_empty() {
                    return Response::problem(400, "bad request", unknown.join("; "));
                }
                if body.spec["steps"].as_array().is_some_and(|s| s.is_empty()) {
                    return Response::problem(
                        400,
                        "bad request",
                        "steps: a job needs at least one step",
                    );
                }
                match store.enqueue(body.spec, body.tags, body.runner_id) {
                    Ok(id) => Response::json(201, &serde_json::json!({ "id": id })),
                    Err(refusal) => refused(refusal),
                }
            }),
            ("GET", ["jobs"]) => {
                // `?status=` a phase (queued, claimed, running, done, failed) or a
                // completion status (succeeded, timed_out, …); `limit`, `offset`.
                let status = req.query_param("status");
                const STATUSES: &[&str] = &[
                    "queued",
                    "claimed",
                    "running",
                    "done",
                    "failed",
                    "succeeded",
                    "timed_out",
                    "cancelled",
                    "interrupted",
                    "lost",
                ];
                if let Some(s) = status.filter(|s| !STATUSES.contains(s)) {
                    return Response::problem(
                        400,
                        "bad request",
                        format!("status: {s:?} is none of {}", STATUSES.join(", ")),
                    );
                }
                let number = |name: &str, default: usize| {
                    req.query_param(name).map_or(Ok(default), |v| {
                        v.parse::<usize>().map_err(|_| name.to_string())
                    })
                };
                let (limit, offset) = match (number("limit", usize::MAX), number("offset", 0)) {
                    (Ok(l), Ok(o)) => (l, o),
                    (Err(name), _) | (_, Err(name)) => {
                        return Response::problem(400, "bad request", format!("{name}: a number"))
                    }
                };
                let all = store.jobs();
                let matching: Vec<&crate::store::Job> = all
                    .iter()
                    .filter(|job| {
                        status.is_none_or(|s| {
                            serde_json::to_value(job.phase).is_ok_and(|p| p == s)
                                || job
                                    .completion
                                    .as_ref()
                                    .is_some_and(|c| c.status.as_str() == s)
                        })
                    })
                    .collect();
                let total = matching.len();
                let jobs: Vec<serde_json::Value> = matching
                    .into_iter()
                    .skip(offset)
                    .take(limit)
                    .map(job_view)
                    .collect();
                Response::json(200, &serde_json::json!({ "jobs": jobs, "total": total }))
            }
            ("GET", ["jobs", id]) => match store.job(id) {
                Some(job) => Response::json(200, &job_view(&job)),
                None => Response::problem(404, "not found", format!("no job {id}")),
            },
            ("GET", ["jobs", id, "log"]) => match store.job(id) {
                Some(_) => Response::bytes(200, "application/x-ndjson", store.log(id)),
                None => Response::problem(404, "not found", format!("no job {id}")),
            },
            ("POST", ["jobs", id, "cancel"]) => match store.cancel(id) {
                Ok(()) => Response::json(200, &serde_json::json!({})),
                Err(refusal) => refused(refusal),
            },
            ("GET", ["inventory"]) => Response::json(200, &store.inventory()),
            ("POST", ["faults"]) if self.faults_enabled => with_body(req, |fault: Fault| {
                self.inject(fault);
                Response::json(200, &serde_json::json!({}))
            }),
            _ => Response::problem(404, "not found", req.path.clone()),
        }
    }
}

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

/// The admin view of a job: its record plus the stored log's length.
pub fn job_view(job: &crate::store::Job) -> serde_json::Value {
    let mut view = serde_json::to_value(job).unwrap_or_default();
    view["log_length"] = job.log_length.into();
    if let Some(lease) = view.get_mut("lease") {
        // The lease token is the runner's capability; the admin view does not show it.
        if let Some(obj) = lease.as_object_mut() {
            obj.remove("token");
            // One time format in every answer: RFC 3339.
            for (ms, at) in [
                ("claimed_at_ms", "claimed_at"),
                ("expires_at_ms", "expires_at"),
            ] {
                if let Some(n) = obj.remove(ms).and_then(|v| v.as_u64()) {
                    let t = std::time::UNIX_EPOCH + std::time::Duration::from_millis(n);
                    obj.insert(
                        at.into(),
                        humantime::format_rfc3339_millis(t).to_string().into(),
                    );
                }
            }
        }
    }
    view
}

fn with_body<T: serde::de::DeserializeOwned>(
    req: &Request,
    f: impl FnOnce(T) -> Response,
) -> Response {
    // Strict JSON: a key given twice is refused, not silently the last one.
    let body = sortie_protocol::json::from_slice(&req.body).and_then(serde_json::from_value::<T>);
    match body {
        Ok(body) => f(body),
        Err(e) => Response::problem(400, "bad request", format!("invalid JSON body: {e}")),
    }
}

fn outcome<T: serde::Serialize>(result: Result<T, Refusal>) -> Response {
    match result {
        Ok(value) => Response::json(200, &value),
        Err(refusal) => refused(refusal),
    }
}

fn refused(refusal: Refusal) -> Response {
    match refusal {
        Refusal::Gone => Response::problem(410, "gone", "no such job"),
        Refusal::Conflict(why) => Response::problem(409, "conflict", why),
        Refusal::Invalid(why) => Response::problem(400, "bad request", why),
        Refusal::OffsetPastEnd(committed) => Response::json(416, &Committed { committed }),
        Refusal::LogMismatch(committed) => Response::json(412, &Committed { committed }),
    }
}

fn check_bearer(req: &Request, expected: Option<&str>) -> Result<(), Response> {
    let Some(expected) = expected else {
        return Ok(());
    };
    let given = req
        .header("authorization")
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    match given {
        None => Err(Response::problem(
            401,
            "unauthorized",
            "a bearer token is required",
        )),
        Some(token) if constant_time_eq(token.as_bytes(), expected.as_bytes()) => Ok(()),
        Some(_) => Err(Response::problem(
            403,
            "forbidden",
            "the token is not accepted",
        )),
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
