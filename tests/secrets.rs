//! Secrets: local providers, delivery to steps, and the leak canary.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use base64::Engine;
use serde_json::json;

use crate::support::*;

const PW: &str = "Tr0ub4dor&3'x\"y$z/+=%";
const KEY: &str = "-----BEGIN TEST KEY-----\nMIIBOgIBAAJBAKj34GkxFhD90vcNLYLInFEX6Ppy1tPf9Cnzj4p4WGeKLs1Pt8Qu\nKUpRKfFLfRYC9AIKjbJTWit+CqvjWYzvQwECAwEAAQJAIJLixBy2qpFoS4DSmoEm\n-----END TEST KEY-----";

/// Every form of the canary secrets that must never leave sortie.
fn forbidden() -> Vec<String> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let url = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let mut forms = vec![
        PW.to_string(),
        b64.encode(PW),
        b64.encode(format!("{PW}\n")),
        url.encode(PW),
        "Tr0ub4dor%263%27x%22y%24z%2F%2B%3D%25".to_string(),
        serde_json::to_string(PW)
            .unwrap()
            .trim_matches('"')
            .to_string(),
        PW.replace('\'', "'\\''"),
        serde_json::to_string(KEY)
            .unwrap()
            .trim_matches('"')
            .to_string(),
    ];
    forms.extend(KEY.lines().map(String::from));
    forms
}

fn assert_no_leak(what: &str, bytes: &[u8]) {
    let text = String::from_utf8_lossy(bytes);
    for form in forbidden() {
        assert!(!text.contains(&form), "{what} holds {form:?}");
    }
}

#[test]
fn the_leak_canary_finds_no_secret_in_anything_that_leaves_the_runner() {
    let cp = ControlPlane::start();
    let dir = tempfile::tempdir().unwrap();
    let creds = dir.path().join("creds");
    fs::create_dir(&creds).unwrap();
    fs::write(creds.join("key.pem"), KEY).unwrap();
    let probe = dir.path().join("cmdlines");
    fs::create_dir(&probe).unwrap();
    let script = r#"
set -u
echo "plain: $PW"
echo "key: $KEY"
printf %s "${PW:0:7}"; sleep 1.3; printf '%s\n' "${PW:7}"
head -c 65533 /dev/zero | tr '\0' x; printf '%s\n' "$PW"
head -c 262141 /dev/zero | tr '\0' y; printf '%s\n' "$PW"
printf %s "$PW" | base64 -w0; echo
echo "$PW" | base64
printf 'ab%s' "$PW" | base64 -w0; echo
printf 'c%s' "$PW" | basenc --base64url -w0; echo
python3 -c 'import os,urllib.parse; print(urllib.parse.quote(os.environ["PW"], safe=""))'
python3 -c 'import os,json; print(json.dumps({"pw": os.environ["PW"], "key": os.environ["KEY"]}))'
echo "$KEY" | while IFS= read -r l; do echo "> $l"; done
ls "/nonexistent/$PW" || true
set -x; : "$PW"; set +x
echo "SORTIE:DATA:leak=$PW"
echo "file=$PW" >> "$SORTIE_OUTPUT"
tr '\0' ' ' < /proc/$$/cmdline > "$SORTIE_OPTION_PROBE/script"
printf %s "$PW" | sha256sum
"#;
    cp.enqueue(json!({
        "id": "canary",
        "options": { "probe": probe.display().to_string() },
        "secrets": { "PW": "env:PW", "KEY": "file:key.pem" },
        "steps": [
            { "name": "leak", "script": script, "interpreter": "bash" },
            { "name": "expanded", "shell": "printf '%s\\n' ${secret.PW}; tr '\\0' ' ' < /proc/$$/cmdline > ${option.probe}/shell" },
            { "name": "fail", "shell": "echo \"failing with ${secret.PW}\" >&2; exit 3" }
        ]
    }));
    let out = run(
        cp.poll(&dir.path().join("state"))
            .arg("--secrets-dir")
            .arg(&creds)
            .arg("-vv")
            .env("SORTIE_SECRET_PW", PW),
        code::OK,
    );
    let job = cp.job("canary");
    assert_done(&job, "failed");
    let completion = job.completion.clone().unwrap();
    let log = cp.log("canary");
    let stdout = output_text(&events(&log), "stdout");
    // The step saw the real value…
    let digest = sha256_hex(PW.as_bytes());
    assert!(stdout.contains(&digest), "{stdout}");
    // …and nothing of it left the runner.
    assert!(stdout.matches("[SECRET]").count() >= 15, "{stdout}");
    assert_eq!(completion.data["leak"], "[SECRET]");
    assert_eq!(completion.data["file"], "[SECRET]");
    assert_no_leak("the stored log", &log);
    let received = cp.received();
    assert_no_leak("the bytes the control plane received", &received);
    assert!(
        String::from_utf8_lossy(&received).contains("content-encoding: zstd"),
        "the log went compressed, and was searched decoded"
    );
    assert_no_leak("sortie's stderr", &out.stderr);
    assert_no_leak(
        "the completion",
        serde_json::to_string(&completion).unwrap().as_bytes(),
    );
    // The shell's argv held a reference to the variable, not the value.
    let cmdline = fs::read_to_string(probe.join("shell")).unwrap();
    assert!(
        !cmdline.contains(PW) && cmdline.contains("${PW}"),
        "{cmdline}"
    );
    let cmdline = fs::read_to_string(probe.join("script")).unwrap();
    assert!(
        cmdline.starts_with("bash ") && !cmdline.contains(PW),
        "{cmdline}"
    );
}

fn exec_with(spec: serde_json::Value, dir: &Path, extra: &[&str]) -> std::process::Output {
    let file = dir.join("spec.json");
    fs::write(&file, spec.to_string()).unwrap();
    sortie()
        .args(["--log-format", "json", "exec"])
        .arg(&file)
        .args(extra)
        .output()
        .unwrap()
}

#[test]
fn env_reads_only_prefixed_variables() {
    let dir = tempfile::tempdir().unwrap();
    let spec = json!({ "id": "e", "secrets": { "HOME_SECRET": "env:HOME" }, "steps": [{ "shell": "true" }] });
    let out = exec_with(spec, dir.path(), &[]);
    assert_eq!(out.status.code(), Some(i32::from(code::JOB_FAILED)));
    let log = stdout(&out);
    assert!(
        log.contains("SORTIE_SECRET_HOME is not set") && log.contains("env:HOME"),
        "{log}"
    );
    assert!(log.contains("provider env"), "{log}");
}

#[test]
fn files_come_from_the_secrets_directory_and_cannot_leave_it() {
    let dir = tempfile::tempdir().unwrap();
    // The layout the kubelet writes: key -> ..data/key, ..data -> ..2026_timestamp
    let volume = dir.path().join("volume");
    let stamp = volume.join("..2026_11_27");
    fs::create_dir_all(&stamp).unwrap();
    fs::write(stamp.join("token"), "kube-token-value\n").unwrap();
    std::os::unix::fs::symlink("..2026_11_27", volume.join("..data")).unwrap();
    std::os::unix::fs::symlink("..data/token", volume.join("token")).unwrap();
    let outside = dir.path().join("outside");
    fs::write(&outside, "not-for-jobs").unwrap();
    std::os::unix::fs::symlink(&outside, volume.join("escape")).unwrap();

    let spec = json!({ "id": "f", "secrets": { "TOKEN": "file:token" },
        "steps": [{ "shell": "test \"$TOKEN\" = kube-token-value && echo token ok: $TOKEN" }] });
    let out = exec_with(
        spec,
        dir.path(),
        &["--secrets-dir", volume.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert!(
        stdout(&out).contains("token ok: [SECRET]"),
        "{}",
        stdout(&out)
    );

    for (reference, why) in [
        ("file:escape", "leads out"),
        ("file:../outside", "not a file name"),
        ("file:..data", "not a file name"),
    ] {
        let spec =
            json!({ "id": "f", "secrets": { "X": reference }, "steps": [{ "shell": "echo ran" }] });
        let out = exec_with(
            spec,
            dir.path(),
            &["--secrets-dir", volume.to_str().unwrap()],
        );
        assert_eq!(
            out.status.code(),
            Some(i32::from(code::JOB_FAILED)),
            "{reference}"
        );
        assert!(stdout(&out).contains(why), "{reference}: {}", stdout(&out));
        assert!(!stdout(&out).contains("not-for-jobs"));
        assert!(!stdout(&out).contains("\"ran"), "no step runs");
    }
}

/// `sortie exec` of `spec` (written in `dir`) with `creds` as the
/// credentials directory, succeeding: its steps' stdout, and its output.
fn exec_with_credentials(
    spec: serde_json::Value,
    dir: &Path,
    creds: &Path,
) -> (String, std::process::Output) {
    let file = dir.join("spec.json");
    fs::write(&file, spec.to_string()).unwrap();
    let out = run(
        sortie()
            .args(["--log-format", "json", "exec"])
            .arg(&file)
            .env("CREDENTIALS_DIRECTORY", creds),
        code::OK,
    );
    (output_text(&events(&out.stdout), "stdout"), out)
}

#[test]
fn credentials_directory_is_the_default_and_file_delivery_is_0600() {
    let dir = tempfile::tempdir().unwrap();
    let creds = dir.path().join("creds");
    fs::create_dir(&creds).unwrap();
    fs::write(creds.join("kubeconfig"), "apiVersion: v1\nkind: Config\n").unwrap();
    let spec = json!({ "id": "kc", "secrets": { "KUBECONFIG": { "ref": "file:kubeconfig", "as": "file" } },
        "steps": [{ "shell": "stat -c '%a %n' \"$KUBECONFIG\"; grep -c Config \"$KUBECONFIG\"" }] });
    let (text, _) = exec_with_credentials(spec, dir.path(), &creds);
    let mut lines = text.lines();
    let (mode, path) = lines.next().unwrap().split_once(' ').unwrap();
    assert_eq!(mode, "600");
    assert!(path.contains("/.secrets/KUBECONFIG"), "{path}");
    assert_eq!(lines.next(), Some("1"));
    assert!(
        !Path::new(path).exists(),
        "the secret file goes with the workspace"
    );
}

/// A retry of a job with a file-delivered secret gets its file again (its
/// first attempt's is still there).
#[test]
fn a_retried_job_gets_its_secret_file_again() {
    let dir = tempfile::tempdir().unwrap();
    let creds = dir.path().join("creds");
    fs::create_dir(&creds).unwrap();
    fs::write(creds.join("kubeconfig"), "kind: Config\n").unwrap();
    let spec = json!({ "id": "again", "retry": {"count": 1},
        "secrets": { "KUBECONFIG": { "ref": "file:kubeconfig", "as": "file" } },
        "steps": [{ "shell": "grep -c Config \"$KUBECONFIG\" && [ \"$SORTIE_JOB_RETRYATTEMPT\" = 1 ]" }] });
    let (text, out) = exec_with_credentials(spec, dir.path(), &creds);
    assert_eq!(text, "1\n1\n", "{}", stderr(&out));
}

#[test]
fn a_command_provides_secrets_and_its_stderr_is_not_kept() {
    let dir = tempfile::tempdir().unwrap();
    let cmd = dir.path().join("provider.sh");
    fs::write(&cmd, "#!/bin/sh\necho \"resolving $1 with value-of-$1\" >&2\n[ \"$1\" = db ] || exit 9\necho \"value-of-$1\"\n").unwrap();
    fs::set_permissions(&cmd, fs::Permissions::from_mode(0o755)).unwrap();
    let spec =
        json!({ "id": "c", "secrets": { "DB": "cmd:db" }, "steps": [{ "shell": "echo got $DB" }] });
    let out = exec_with(
        spec,
        dir.path(),
        &["--secrets-command", cmd.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).contains("got [SECRET]"));
    assert!(!stdout(&out).contains("value-of-db") && !stderr(&out).contains("value-of-db"));

    let spec =
        json!({ "id": "c", "secrets": { "X": "cmd:other" }, "steps": [{ "shell": "echo ran" }] });
    let out = exec_with(
        spec,
        dir.path(),
        &["--secrets-command", cmd.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(i32::from(code::JOB_FAILED)));
    assert!(
        stdout(&out).contains("cmd:other") && stdout(&out).contains("failed"),
        "{}",
        stdout(&out)
    );
    assert!(!stdout(&out).contains("value-of"), "{}", stdout(&out));
}

#[test]
fn a_too_short_secret_is_refused_rather_than_masking_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let spec =
        json!({ "id": "s", "secrets": { "TINY": "env:TINY" }, "steps": [{ "shell": "echo ran" }] });
    let file = dir.path().join("spec.json");
    fs::write(&file, spec.to_string()).unwrap();
    let out = run(
        sortie()
            .args(["--log-format", "json", "exec"])
            .arg(&file)
            .env("SORTIE_SECRET_TINY", "ab"),
        code::JOB_FAILED,
    );
    assert!(stdout(&out).contains("shorter than 4"), "{}", stdout(&out));
    assert!(!stdout(&out).contains("\"ran"));
    // A value the runner's own masker holds (it is long enough for that one)
    // is still held to the runner's minimum for a job's secrets.
    let out = run(
        sortie()
            .args(["--log-format", "json", "exec", "--mask-min-length", "10"])
            .arg(&file)
            .env("SORTIE_SECRET_TINY", "abcdef"),
        code::JOB_FAILED,
    );
    assert!(stdout(&out).contains("shorter than 10"), "{}", stdout(&out));
    assert!(!stdout(&out).contains("\"ran"));
}

#[test]
fn a_secret_cannot_be_put_into_argv() {
    let dir = tempfile::tempdir().unwrap();
    let spec = json!({ "id": "a", "secrets": { "PW": "env:PW" }, "steps": [{ "exec": ["echo", "${secret.PW}"] }] });
    let file = dir.path().join("spec.json");
    fs::write(&file, spec.to_string()).unwrap();
    let out = run(
        sortie()
            .args(["--log-format", "json", "exec"])
            .arg(&file)
            .env("SORTIE_SECRET_PW", PW),
        code::JOB_FAILED,
    );
    assert!(
        stdout(&out).contains("cannot be put into a command's arguments"),
        "{}",
        stdout(&out)
    );
    assert_no_leak("exec's output", &out.stdout);
}

#[test]
fn the_runners_own_token_is_not_a_secret_for_jobs_even_in_the_credentials_directory() {
    let cp = ControlPlane::start();
    let dir = tempfile::tempdir().unwrap();
    // systemd's layout: the token is a credential beside the jobs' secrets.
    let creds = dir.path().join("creds");
    fs::create_dir(&creds).unwrap();
    fs::copy(&cp.token_file, creds.join("token")).unwrap();
    cp.enqueue(json!({ "id": "grab", "secrets": { "T": "file:token" }, "steps": [{ "shell": "echo $T" }] }));
    run(
        cp.poll(&dir.path().join("state"))
            .arg("--token-file")
            .arg(creds.join("token"))
            .env("CREDENTIALS_DIRECTORY", &creds),
        code::OK,
    );
    let job = cp.job("grab");
    assert_done(&job, "failed");
    let error = job.completion.unwrap().error.unwrap();
    assert!(error.contains("sortie's own credentials"), "{error}");
    // The token reached the control plane only as the Authorization header, never in a log.
    assert!(!String::from_utf8_lossy(&cp.log("grab")).contains(RUNNER_TOKEN));
}
