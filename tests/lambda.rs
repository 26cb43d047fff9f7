//! The Lambda custom runtime against the real AWS Lambda Runtime Interface Emulator.

use std::net::TcpStream;
use std::path::Path;
use std::process::Command;

use serde_json::{json, Value};

use crate::support::*;

struct Function {
    _rie: Daemon,
    port: u16,
}

impl Function {
    /// The emulator running sortie as `bootstrap`, with this environment.
    fn start(dir: &Path, timeout_seconds: u32, env: &[(&str, String)]) -> Function {
        let bootstrap = dir.join("bootstrap");
        std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_sortie"), &bootstrap).unwrap();
        let port = free_port();
        let mut cmd = Command::new(peer("aws-lambda-rie"));
        cmd.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("AWS_LAMBDA_FUNCTION_TIMEOUT", timeout_seconds.to_string())
            .args([
                "--runtime-interface-emulator-address",
                &format!("127.0.0.1:{port}"),
                "--runtime-api-address",
                &format!("127.0.0.1:{}", free_port()),
            ])
            .arg(&bootstrap);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let rie = start_daemon(&mut cmd, "the Lambda runtime interface emulator", || {
            TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        Function { _rie: rie, port }
    }

    fn invoke(&self, event: Value) -> (u16, Value) {
        http(
            "POST",
            &format!(
                "http://127.0.0.1:{}/2015-03-31/functions/function/invocations",
                self.port
            ),
            &[],
            Some(event),
        )
    }
}

fn runner_env(cp: &ControlPlane, dir: &Path) -> Vec<(&'static str, String)> {
    vec![
        ("SORTIE_SERVER", cp.url()),
        ("SORTIE_CA_FILE", cp.pki.ca_file.display().to_string()),
        ("SORTIE_TOKEN_FILE", cp.token_file.display().to_string()),
        ("SORTIE_RUNNER_ID", "lambda".to_string()),
        ("SORTIE_STATE_DIR", dir.join("state").display().to_string()),
        ("SORTIE_DEADLINE_RESERVE", "2s".to_string()),
        ("SORTIE_KILL_GRACE", "1s".to_string()),
        ("SORTIE_MAX_JOBS", "2".to_string()),
        ("SORTIE_LAMBDA_ALLOWED_TAGS", "lambda,eu".to_string()),
    ]
}

#[test]
fn each_invocation_is_one_shot_and_answers_with_its_summary() {
    let cp = ControlPlane::start();
    let dir = tempfile::tempdir().unwrap();
    let function = Function::start(dir.path(), 30, &runner_env(&cp, dir.path()));
    cp.enqueue(fixture_json("hello.json"));
    let (status, summary) = function.invoke(json!({}));
    assert_eq!(status, 200, "{summary}");
    assert_eq!(summary["exit_code"], 0, "{summary}");
    assert_eq!(summary["jobs"][0]["id"], "hello");
    assert_eq!(summary["jobs"][0]["outcome"], "succeeded");
    assert_done(&cp.job("hello"), "succeeded");

    // The next invocation is the next shot, in the same process; the event may pick
    // allowed tags, not others.
    cp.server
        .store()
        .enqueue(
            "admin:test",
            json!({"id": "eu-job", "steps": [{"shell": "true"}]}),
            vec!["eu".into()],
            None,
        )
        .unwrap();
    let (_, summary) = function.invoke(json!({ "tags": ["eu"], "max_jobs": 1 }));
    assert_eq!(summary["jobs"][0]["id"], "eu-job", "{summary}");
    let (status, error) = function.invoke(json!({ "tags": ["root"] }));
    assert_eq!(status, 200);
    assert!(
        error["errorMessage"]
            .as_str()
            .unwrap_or("")
            .contains("does not allow"),
        "{error}"
    );
    assert_eq!(error["errorType"], "Sortie.Exit64");
}

#[test]
fn a_job_longer_than_the_function_timeout_is_interrupted_before_the_deadline() {
    let cp = ControlPlane::start();
    let dir = tempfile::tempdir().unwrap();
    let function = Function::start(dir.path(), 8, &runner_env(&cp, dir.path()));
    cp.enqueue(json!({ "id": "too-long", "steps": [{ "shell": "echo started; exec sleep 600" }] }));
    let (status, summary) = function.invoke(json!({}));
    assert_eq!(status, 200, "{summary}");
    // Stopped by the deadline and reported: the shot did its work (no signal, no 130).
    assert_eq!(summary["exit_code"], 0, "{summary}");
    assert_eq!(summary["jobs"][0]["outcome"], "interrupted");
    let job = cp.job("too-long");
    assert_done(&job, "interrupted");
    assert!(output_text(&events(&cp.log("too-long")), "stdout").contains("started"));
}

#[test]
fn a_configuration_error_is_reported_as_an_init_error() {
    let dir = tempfile::tempdir().unwrap();
    let function = Function::start(
        dir.path(),
        10,
        &[
            ("SORTIE_SERVER", "ftp://nowhere/".to_string()),
            ("SORTIE_RUNNER_ID", "x".to_string()),
        ],
    );
    let (status, answer) = function.invoke(json!({}));
    // The emulator answers 502 once the runtime reported an init error and exited.
    assert_eq!(status, 502, "{answer}");
    assert_eq!(answer["errorType"], "Runtime.ConfigurationError");
    assert!(
        answer["errorMessage"]
            .as_str()
            .unwrap()
            .contains("unsupported scheme"),
        "{answer}"
    );
}

/// The function's settings read the runner's token from SSM Parameter Store,
/// with `--token-from` (tests/stores.rs runs that against moto); no token ships
/// in the zip.
#[test]
fn the_function_reads_its_token_from_ssm_not_from_its_zip() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("packaging/lambda");
    let function: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("function.json")).unwrap()).unwrap();
    let vars = function["Environment"]["Variables"].as_object().unwrap();
    assert!(vars["SORTIE_TOKEN_FROM"]
        .as_str()
        .unwrap()
        .starts_with("aws-ssm:"));
    assert!(!vars.contains_key("SORTIE_TOKEN_FILE") && !vars.contains_key("SORTIE_TOKEN"));
    let build = std::fs::read_to_string(dir.join("build.sh")).unwrap();
    assert!(
        !build.contains("token"),
        "build.sh puts no token in the zip"
    );
}
