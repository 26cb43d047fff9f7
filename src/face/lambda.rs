//! sortie as an AWS Lambda custom runtime: each invocation is one shot.
//!
//! Deployed as the `bootstrap` of a custom runtime, sortie asks the Runtime API
//! for the next invocation, runs one shot whose deadline is the invocation's
//! (`Lambda-Runtime-Deadline-Ms`, less the delivery reserve), and answers with a
//! JSON summary of the shot, or an error when the shot could not do its work. A
//! configuration error is reported once, to `/runtime/init/error`, and ends the
//! process. Settings come from the function's environment (`SORTIE_*`); an event
//! may lower `max_jobs` and pick tags among those `SORTIE_LAMBDA_ALLOWED_TAGS` allows.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, bail, Context, Result};
use serde::Deserialize;
use serde_json::json;

use crate::exit::{self, Cause, Code, Failure};
use crate::face::cli::LambdaArgs;
use crate::face::config;
use crate::net;
use crate::shot;
use crate::shot::Settings;

const API_VERSION: &str = "2018-06-01";

/// The command line to parse: as `bootstrap` under Lambda, `sortie lambda`.
pub fn arguments() -> Vec<std::ffi::OsString> {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let started_as_bootstrap = args
        .first()
        .and_then(|a| std::path::Path::new(a).file_name())
        .is_some_and(|name| name == "bootstrap");
    if started_as_bootstrap
        && args.len() == 1
        && std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_some()
    {
        return vec!["sortie".into(), "lambda".into()];
    }
    args
}

/// What an event may change, within limits.
#[derive(Debug, Default, Deserialize)]
struct Event {
    #[serde(default)]
    max_jobs: Option<u32>,
    #[serde(default)]
    tags: Option<Vec<String>>,
}

struct Runtime {
    agent: ureq::Agent,
    base: String,
}

impl Runtime {
    fn new() -> Result<Runtime> {
        let api = std::env::var("AWS_LAMBDA_RUNTIME_API")
            .map_err(|_| anyhow!("AWS_LAMBDA_RUNTIME_API is not set: not running under Lambda"))?;
        // The Runtime API is local: no proxy, no TLS, and `next` may wait for hours.
        let agent = ureq::Agent::config_builder()
            .proxy(None)
            .http_status_as_error(false)
            .timeout_global(None)
            .build()
            .into();
        Ok(Runtime {
            agent,
            base: format!("http://{api}/{API_VERSION}/runtime"),
        })
    }

    fn post(&self, path: &str, error_type: Option<&str>, body: &serde_json::Value) -> Result<()> {
        let mut headers = vec![("content-type", "application/json")];
        if let Some(kind) = error_type {
            headers.push(("Lambda-Runtime-Function-Error-Type", kind));
        }
        let url = format!("{}/{path}", self.base);
        let answer = net::request(&self.agent, "POST", &url, &headers, body.to_string().into())?;
        if !(200..300).contains(&answer.status) {
            bail!("POST {path}: {}", answer.status);
        }
        Ok(())
    }
}

fn error_body(kind: &str, error: &anyhow::Error) -> serde_json::Value {
    json!({ "errorType": kind, "errorMessage": format!("{error:#}") })
}

/// Serve invocations until the environment is torn down.
pub fn run(args: &LambdaArgs, json: bool) -> Result<Code> {
    let runtime = Runtime::new().map_err(Failure::config)?;
    let base = match config::poll(&args.poll, json) {
        Ok(cfg) => cfg,
        Err(e) => {
            let kind = "Runtime.ConfigurationError";
            runtime.post("init/error", Some(kind), &error_body(kind, &e))?;
            return Err(Failure::config(e).into());
        }
    };
    loop {
        let mut response = runtime
            .agent
            .get(format!("{}/invocation/next", runtime.base))
            .call()
            .context("waiting for the next invocation")?;
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let request_id = header("Lambda-Runtime-Aws-Request-Id")
            .ok_or_else(|| anyhow!("the invocation has no request id"))?;
        let deadline_ms = header("Lambda-Runtime-Deadline-Ms").and_then(|v| v.parse::<u64>().ok());
        if let Some(trace) = header("Lambda-Runtime-Trace-Id") {
            // The X-Ray convention: the trace id of the invocation in the environment.
            std::env::set_var("_X_AMZN_TRACE_ID", trace);
        }
        let body = response.body_mut().read_to_vec().unwrap_or_default();
        let answer = invoke(&base, args, &body, deadline_ms);
        match answer {
            Ok(summary) => runtime.post(
                &format!("invocation/{request_id}/response"),
                None,
                &serde_json::to_value(&summary)?,
            )?,
            Err(e) => {
                let kind = format!("Sortie.Exit{}", exit::code_of(&e).0);
                tracing::error!("{e:#}");
                runtime.post(
                    &format!("invocation/{request_id}/error"),
                    Some(&kind),
                    &error_body(&kind, &e),
                )?;
            }
        }
    }
}

/// One invocation: one shot, bounded by the invocation's deadline.
fn invoke(
    base: &Settings,
    args: &LambdaArgs,
    event: &[u8],
    deadline_ms: Option<u64>,
) -> Result<shot::Summary> {
    let event: Event = if event.iter().all(u8::is_ascii_whitespace) {
        Event::default()
    } else {
        serde_json::from_slice(event)
            .map_err(|e| Failure::new(Cause::Usage, anyhow!("the event is not valid: {e}")))?
    };
    let mut cfg = base.clone();
    if let Some(max_jobs) = event.max_jobs {
        cfg.max_jobs = max_jobs.clamp(1, base.max_jobs);
        cfg.parallel = cfg.parallel.min(cfg.max_jobs);
    }
    if let Some(tags) = event.tags {
        if let Some(bad) = tags.iter().find(|t| !args.allowed_tags.contains(t)) {
            return Err(Failure::new(
                Cause::Usage,
                anyhow!("the event asks for tag {bad:?}, which SORTIE_LAMBDA_ALLOWED_TAGS does not allow"),
            )
            .into());
        }
        cfg.tags = tags;
    }
    if let Some(ms) = deadline_ms {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let left = Duration::from_millis(ms).saturating_sub(now);
        cfg.max_runtime = Some(cfg.max_runtime.map_or(left, |m| m.min(left)));
    }
    shot::run(&cfg)
}
