//! The execution engine: supervision, process trees, output edge cases.
//!
//! Each test runs `sortie exec` on a spec written to a temp dir; after every stop
//! it checks through /proc that no process of the job is left and that the
//! workspace is gone.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use serde_json::{json, Value};

use crate::support::*;

struct Job {
    dir: tempfile::TempDir,
}

impl Job {
    fn new() -> Job {
        Job {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Run `spec` with `sortie --log-format json exec`, expecting `code`.
    fn exec(&self, spec: Value, code: u8, extra: &[&str]) -> (Vec<Value>, Output) {
        let file = self.path("spec.json");
        std::fs::write(&file, spec.to_string()).unwrap();
        let out = run(
            sortie()
                .args(["--log-format", "json", "exec"])
                .arg(&file)
                .args(extra),
            code,
        );
        (events(&out.stdout), out)
    }

    /// The pids a step wrote to `name`, one per line.
    fn pids(&self, name: &str) -> Vec<i32> {
        std::fs::read_to_string(self.path(name))
            .unwrap()
            .split_whitespace()
            .map(|p| p.parse().unwrap())
            .collect()
    }
}

fn alive(pid: i32) -> bool {
    // A zombie is not alive: it holds nothing but its exit status.
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat
            .rsplit(')')
            .next()
            .unwrap_or("")
            .trim_start()
            .starts_with('Z'),
        Err(_) => false,
    }
}

fn assert_gone(pids: &[i32]) {
    for pid in pids {
        assert!(!alive(*pid), "process {pid} of the job is still running");
    }
}

fn system_texts(events: &[Value]) -> String {
    events
        .iter()
        .filter(|e| e["kind"] == "system")
        .map(|e| format!("{}\n", e["text"].as_str().unwrap()))
        .collect()
}

fn step_end(events: &[Value], step: u64) -> &Value {
    events
        .iter()
        .find(|e| e["kind"] == "step_end" && e["step"] == step)
        .expect("a step_end event")
}

/// The workspace the step printed (`echo ws=$SORTIE_WORKSPACE`) no longer exists.
fn assert_workspace_removed(events: &[Value]) {
    let out = output_text(events, "stdout");
    let ws = out
        .lines()
        .find_map(|l| l.strip_prefix("ws="))
        .expect("the step printed its workspace");
    assert!(!Path::new(ws).exists(), "workspace {ws} is left behind");
}

#[test]
fn a_step_that_ignores_sigterm_is_killed_after_the_grace_period() {
    let job = Job::new();
    let pids = job.path("pids");
    let (events, _) = job.exec(
        json!({
            "id": "stubborn",
            "options": { "pids": pids.display().to_string() },
            "steps": [{
                "timeout": "1s",
                "shell": "trap '' TERM; echo ws=$SORTIE_WORKSPACE; sleep 600 & echo $$ $! > ${option.pids}; wait"
            }]
        }),
        code::JOB_FAILED,
        &["--kill-grace", "500ms"],
    );
    assert_eq!(step_end(&events, 0)["status"], "timed_out");
    assert!(
        system_texts(&events).contains("timed out after 1s"),
        "{}",
        system_texts(&events)
    );
    assert_gone(&job.pids("pids"));
    assert_workspace_removed(&events);
}

#[test]
fn a_daemon_that_double_forks_and_keeps_the_pipes_is_found_and_killed() {
    let job = Job::new();
    let pid = job.path("daemon.pid");
    let (events, _) = job.exec(
        json!({
            "id": "daemonizes",
            "options": { "pid": pid.display().to_string() },
            "steps": [{
                "shell": "echo ws=$SORTIE_WORKSPACE; (setsid sh -c 'echo $$ > ${option.pid}; exec sleep 600' &); while [ ! -s ${option.pid} ]; do sleep 0.01; done; echo parent done"
            }]
        }),
        code::OK,
        &[],
    );
    assert_eq!(step_end(&events, 0)["status"], "succeeded");
    assert!(output_text(&events, "stdout").contains("parent done"));
    let notes = system_texts(&events);
    assert!(notes.contains("kept its output open"), "{notes}");
    assert!(notes.contains("left running"), "{notes}");
    assert_gone(&job.pids("daemon.pid"));
    assert_workspace_removed(&events);
}

/// A chain of processes, each in a session of its own under the one before:
/// every one is killed when the step ends, not only those reparented to
/// sortie in a few rounds.
#[test]
fn a_chain_of_setsid_processes_left_by_a_step_is_killed_to_its_end() {
    let job = Job::new();
    let pids = job.path("chain.pids");
    let (events, _) = job.exec(
        json!({
            "id": "chain",
            "options": { "pids": pids.display().to_string() },
            "steps": [{
                "shell": "cat > chain.sh <<'EOF'\necho $$ >> ${option.pids}\nif [ \"$1\" -gt 0 ]; then setsid sh ./chain.sh $(($1 - 1)) & wait; else exec sleep 600; fi\nEOF\n: > ${option.pids}\n(setsid sh ./chain.sh 29 >/dev/null 2>&1 &)\nwhile [ \"$(wc -l < ${option.pids})\" -lt 30 ]; do sleep 0.01; done"
            }]
        }),
        code::OK,
        &[],
    );
    assert_eq!(step_end(&events, 0)["status"], "succeeded");
    let chain = job.pids("chain.pids");
    assert_eq!(chain.len(), 30);
    // SIGKILL is delivered at once, and a process is gone when it is taken.
    wait_for("the chain to end", Duration::from_secs(10), || {
        chain.iter().all(|p| !alive(*p))
    });
    assert!(
        system_texts(&events).contains("killed 30 process(es) it left running"),
        "{}",
        system_texts(&events)
    );
}

#[test]
fn a_background_process_that_lets_go_of_the_pipes_is_killed_with_its_step() {
    let job = Job::new();
    let pid = job.path("bg.pid");
    let (events, _) = job.exec(
        json!({
            "id": "background",
            "options": { "pid": pid.display().to_string() },
            "steps": [
                { "shell": "nohup sleep 600 >/dev/null 2>&1 & echo $! > ${option.pid}" },
                { "shell": "echo second step" }
            ]
        }),
        code::OK,
        &[],
    );
    assert_gone(&job.pids("bg.pid"));
    assert!(
        system_texts(&events).contains("left running"),
        "{}",
        system_texts(&events)
    );
    assert_eq!(output_text(&events, "stdout"), "second step\n");
}

#[test]
fn a_step_that_closes_its_output_is_still_waited_for() {
    let job = Job::new();
    let gate = job.path("gate");
    let (events, _) = job.exec(
        json!({
            "id": "closes",
            "options": { "gate": gate.display().to_string() },
            "steps": [{ "shell": "echo before; exec >&- 2>&-; touch ${option.gate}; sleep 0.3; exit 7" }]
        }),
        code::JOB_FAILED,
        &[],
    );
    assert!(gate.exists());
    assert_eq!(step_end(&events, 0)["exit_code"], 7);
    assert_eq!(output_text(&events, "stdout"), "before\n");
}

#[test]
fn a_100_mib_line_without_newline_arrives_whole_in_bounded_pieces() {
    let job = Job::new();
    let size = 100 * 1024 * 1024;
    let (events, _) = job.exec(
        json!({ "id": "longline", "steps": [{ "shell": format!("head -c {size} /dev/zero | tr '\\0' a") }] }),
        code::OK,
        &[],
    );
    let pieces: Vec<&str> = events
        .iter()
        .filter(|e| e["kind"] == "output")
        .map(|e| e["text"].as_str().unwrap())
        .collect();
    assert!(pieces.iter().all(|p| p.len() <= 64 * 1024));
    assert_eq!(pieces.iter().map(|p| p.len()).sum::<usize>(), size);
    assert!(pieces.iter().all(|p| p.bytes().all(|b| b == b'a')));
}

#[test]
fn invalid_utf8_goes_to_b64_and_ansi_escapes_stay_text() {
    let job = Job::new();
    let (events, _) = job.exec(
        json!({ "id": "bytes", "steps": [{ "shell": "printf '\\377\\376\\n\\033[31mred\\033[0m\\n'" }] }),
        code::OK,
        &[],
    );
    let outputs: Vec<&Value> = events.iter().filter(|e| e["kind"] == "output").collect();
    assert_eq!(outputs[0]["b64"], "//4K");
    assert!(outputs[0].get("text").is_none());
    assert_eq!(outputs[1]["text"], "\u{1b}[31mred\u{1b}[0m\n");
}

#[test]
fn a_missing_interpreter_is_not_an_exit_code() {
    let job = Job::new();
    let (events, _) = job.exec(
        json!({ "id": "nointerp", "steps": [{ "script": "print(1)", "interpreter": "no-such-interpreter -x" }] }),
        code::JOB_FAILED,
        &[],
    );
    let end = step_end(&events, 0);
    assert_eq!(end["status"], "failed");
    assert!(end.get("exit_code").is_none(), "{end}");
    assert!(
        system_texts(&events).contains("no-such-interpreter: command not found"),
        "{}",
        system_texts(&events)
    );
}

#[test]
fn scripts_with_crlf_line_endings_run() {
    let job = Job::new();
    let (events, _) = job.exec(
        json!({ "id": "crlf", "steps": [
            { "script": "#!/bin/sh\r\necho crlf ok\r\nexit 0\r\n" },
            { "script": "echo no shebang: $0\r\n", "extension": "sh" },
            { "script": "use strict;\r\nprint \"perl $ARGV[0]\\n\";\r\n", "interpreter": "perl", "args": ["arg"] }
        ] }),
        code::OK,
        &[],
    );
    let out = output_text(&events, "stdout");
    assert!(out.starts_with("crlf ok\nno shebang: "), "{out}");
    assert!(out.contains(".sh\n"), "the extension is honoured: {out}");
    assert!(out.ends_with("perl arg\n"), "{out}");
}

#[test]
fn the_job_timeout_spans_steps() {
    let job = Job::new();
    let pids = job.path("pids");
    let (events, out) = job.exec(
        json!({
            "id": "slow",
            "timeout": "1s",
            "options": { "pids": pids.display().to_string() },
            "steps": [
                { "shell": "echo ws=$SORTIE_WORKSPACE; echo $$ > ${option.pids}; exec sleep 600" },
                { "shell": "echo never" }
            ]
        }),
        code::JOB_FAILED,
        &[],
    );
    assert_eq!(step_end(&events, 0)["status"], "timed_out");
    assert!(!output_text(&events, "stdout").contains("never"));
    let summary: Value = serde_json::from_str(stderr(&out).lines().last().unwrap()).unwrap();
    assert_eq!(summary["status"], "timed_out");
    assert_gone(&job.pids("pids"));
    assert_workspace_removed(&events);
}

#[test]
fn keepgoing_runs_every_step_and_still_fails_the_job() {
    let job = Job::new();
    let (events, out) = job.exec(
        json!({ "id": "kg", "keepgoing": true, "steps": [
            { "shell": "exit 4" },
            { "shell": "echo still ran" },
            { "shell": "exit 5", "errorhandler": { "shell": "echo handled ${result.step} $SORTIE_RESULT_EXIT_CODE" } }
        ] }),
        code::JOB_FAILED,
        &[],
    );
    assert_eq!(output_text(&events, "stdout"), "still ran\nhandled 2 5\n");
    let summary: Value = serde_json::from_str(stderr(&out).lines().last().unwrap()).unwrap();
    // Step 0 failed without a handler; step 2's handler recovered it (keepgoing).
    assert_eq!(summary["status"], "failed");
    assert_eq!(summary["exit_code"], 4);
}

#[test]
fn the_environment_is_clean_and_carries_the_job() {
    let job = Job::new();
    let spec = json!({ "id": "env", "name": "Env check", "job": { "group": "ops" },
        "options": { "my.opt": "v1" }, "env": { "JOB_LEVEL": "j" },
        "steps": [
            { "shell": "echo SORTIE:DATA:k=v" },
            { "shell": "env | sort", "env": { "STEP_LEVEL": "s" } }
        ] });
    let file = job.path("spec.json");
    std::fs::write(&file, spec.to_string()).unwrap();
    let out = run(
        sortie()
            .args(["--log-format", "json", "exec"])
            .arg(&file)
            .env("SORTIE_TOKEN", "must-not-leak")
            .env("SOME_RUNNER_VAR", "must-not-leak"),
        code::OK,
    );
    let env = output_text(&events(&out.stdout), "stdout");
    assert!(!env.contains("must-not-leak"), "{env}");
    for expected in [
        "SORTIE_EXECID=env",
        "SORTIE_JOB_NAME=Env check",
        "SORTIE_JOB_GROUP=ops",
        "SORTIE_OPTION_MY_OPT=v1",
        "RD_OPTION_MY_OPT=v1",
        "SORTIE_DATA_K=v",
        "RD_DATA_K=v",
        "JOB_LEVEL=j",
        "STEP_LEVEL=s",
        "SORTIE_WORKSPACE=",
        "SORTIE_OUTPUT=",
        "PATH=",
    ] {
        assert!(
            env.lines().any(|l| l.starts_with(expected)),
            "{expected} in {env}"
        );
    }
}

#[test]
fn keep_workspace_keeps_it() {
    let job = Job::new();
    let (events, out) = job.exec(
        json!({ "id": "kept", "steps": [{ "shell": "echo ws=$SORTIE_WORKSPACE; echo data > file" }] }),
        code::OK,
        &["--keep-workspace"],
    );
    let ws = output_text(&events, "stdout")
        .lines()
        .find_map(|l| l.strip_prefix("ws=").map(String::from))
        .unwrap();
    assert!(Path::new(&ws).join("file").exists());
    assert!(stderr(&out).contains("workspace kept"), "{}", stderr(&out));
    std::fs::remove_dir_all(ws).unwrap();
}
