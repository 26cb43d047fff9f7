//! Load on a control plane over its HTTPS API, for benches/control-plane.sh.
//!
//!   load URL CA_FILE ADMIN_TOKEN RUNNER_TOKEN RUNNERS JOBS
//!
//! Two phases, each on a queue of JOBS fresh jobs (queued through the admin
//! API by 8 threads, not timed): `claims` — RUNNERS threads claim one job at a
//! time until the queue is empty, without running them (claims/s: jobs handed
//! out per second); `jobs` — RUNNERS threads each claim, start, upload one log
//! chunk and complete with the log's checksum, as a runner does for a job
//! (jobs/s). Prints one JSON line per phase. Any answer other than the
//! protocol's expected ones ends the run with an error: a benchmark of a
//! server that loses or duplicates work measures nothing.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use serde_json::{json, Value};
use sha2::Digest;

struct Target {
    url: String,
    admin: String,
    runner: String,
    agent: ureq::Agent,
}

impl Target {
    fn call(&self, method: &str, path: &str, token: &str, body: Value) -> (u16, Value) {
        let request = ureq::http::Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.url))
            .header("authorization", format!("Bearer {token}"))
            .header("content-type", "application/json")
            .body(body.to_string())
            .unwrap();
        let mut answer = self.agent.run(request).expect("the server answers");
        let status = answer.status().as_u16();
        let text = answer.body_mut().read_to_string().unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    fn claim(&self, runner: &str, claim_id: &str) -> Option<Value> {
        let body = json!({ "claim_id": claim_id, "runner": { "id": runner }, "max_jobs": 1 });
        match self.call("POST", "v1/claim", &self.runner, body) {
            (200, answer) => Some(answer["jobs"][0].clone()),
            (204, _) => None,
            (status, answer) => panic!("claim: {status} {answer}"),
        }
    }

    /// A claimed job through start, one log chunk and complete.
    fn run(&self, job: &Value) {
        let id = job["id"].as_str().unwrap();
        let attempt = job["attempt"].as_u64().unwrap();
        let token = job["lease"]["token"].as_str().unwrap();
        let fence = json!({ "attempt": attempt, "lease_token": token });
        let (status, answer) =
            self.call("POST", &format!("v1/jobs/{id}/start"), &self.runner, fence);
        assert_eq!(status, 200, "start: {answer}");
        let log = format!(
            "{{\"seq\":0,\"ts\":\"2026-11-28T00:00:00Z\",\"kind\":\"output\",\"step\":0,\"node\":\"local\",\"stream\":\"stdout\",\"text\":\"{id}\\n\"}}\n"
        );
        let request = ureq::http::Request::builder()
            .method("PUT")
            .uri(format!(
                "{}v1/jobs/{id}/log?offset=0&attempt={attempt}",
                self.url
            ))
            .header("authorization", format!("Bearer {}", self.runner))
            .header(sortie_protocol::HEADER_LEASE_TOKEN, token)
            .body(log.clone())
            .unwrap();
        let mut answer = self.agent.run(request).expect("the server answers");
        assert_eq!(
            answer.status(),
            200,
            "log: {:?}",
            answer.body_mut().read_to_string()
        );
        let sha: String = sha2::Sha256::digest(log.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let completion = json!({
            "attempt": attempt, "lease_token": token, "status": "succeeded", "exit_code": 0,
            "started_at": "2026-11-28T00:00:00Z", "finished_at": "2026-11-28T00:00:01Z",
            "steps": [], "data": {}, "log": { "length": log.len(), "sha256": sha }
        });
        let (status, answer) = self.call(
            "POST",
            &format!("v1/jobs/{id}/complete"),
            &self.runner,
            completion,
        );
        assert_eq!(status, 200, "complete: {answer}");
    }
}

fn enqueue(target: &Arc<Target>, prefix: &str, jobs: usize) {
    let next = Arc::new(AtomicUsize::new(0));
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let (target, next, prefix) = (target.clone(), next.clone(), prefix.to_string());
            std::thread::spawn(move || loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= jobs {
                    break;
                }
                let spec = json!({ "spec": { "id": format!("{prefix}-{i}"), "steps": [{ "shell": "true" }] } });
                let (status, answer) = target.call("POST", "admin/jobs", &target.admin, spec);
                assert_eq!(status, 201, "enqueue: {answer}");
            })
        })
        .collect();
    threads.into_iter().for_each(|t| t.join().unwrap());
}

/// RUNNERS threads until the queue is empty; the jobs each thread got.
/// Runner and claim ids start with `prefix`, unique to the run: a claim id used
/// before would get its earlier answer again.
fn drain(target: &Arc<Target>, runners: usize, prefix: &str, run: bool) -> usize {
    let threads: Vec<_> = (0..runners)
        .map(|r| {
            let target = target.clone();
            let runner = format!("{prefix}-r{r}");
            std::thread::spawn(move || {
                let mut got = 0;
                for n in 0.. {
                    let Some(job) = target.claim(&runner, &format!("{runner}-{n}")) else {
                        break;
                    };
                    if run {
                        target.run(&job);
                    }
                    got += 1;
                }
                got
            })
        })
        .collect();
    threads.into_iter().map(|t| t.join().unwrap()).sum()
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let [url, ca, admin, runner, runners, jobs] = <[String; 6]>::try_from(args)
        .expect("load URL CA_FILE ADMIN_TOKEN RUNNER_TOKEN RUNNERS JOBS");
    let runners: usize = runners.parse().unwrap();
    let jobs: usize = jobs.parse().unwrap();
    let _ = rustls::crypto::ring::default_provider().install_default();
    use ureq::tls::{Certificate, RootCerts, TlsConfig};
    let pem = std::fs::read(&ca).unwrap();
    let roots = RootCerts::Specific(Arc::new(vec![Certificate::from_pem(&pem)
        .unwrap()
        .to_owned()]));
    let agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_idle_connections(1024)
        .max_idle_connections_per_host(1024)
        .tls_config(TlsConfig::builder().root_certs(roots).build())
        .build()
        .into();
    let token =
        |s: &str| std::fs::read_to_string(s).map_or(s.to_string(), |t| t.trim().to_string());
    let target = Arc::new(Target {
        url,
        admin: token(&admin),
        runner: token(&runner),
        agent,
    });
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    for (phase, run) in [("claims", false), ("jobs", true)] {
        let prefix = format!("{phase}-{stamp}");
        enqueue(&target, &prefix, jobs);
        let began = Instant::now();
        let done = drain(&target, runners, &prefix, run);
        let seconds = began.elapsed().as_secs_f64();
        assert_eq!(done, jobs, "{phase}: every job handed out once");
        println!(
            "{}",
            json!({ "phase": phase, "runners": runners, "jobs": jobs, "seconds": seconds, "per_second": jobs as f64 / seconds })
        );
    }
}
