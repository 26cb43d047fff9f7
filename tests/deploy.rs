//! Deployment targets, each checked by a real tool: systemd-analyze, kubernetes-
//! validate, an empty root, podman; and the committed man page by mandoc.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use serde_json::json;

use crate::support::*;

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Run a checker; it passes only with exit 0 and nothing on stderr (systemd-analyze
/// only warns about unknown keys).
fn checked(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("running {cmd:?}: {e}"));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && err.trim().is_empty(),
        "{cmd:?}: {:?}\n{err}",
        out.status
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn the_systemd_units_pass_systemd_analyze_verify() {
    let dir = tempfile::tempdir().unwrap();
    // verify needs ExecStart's binary and the Documentation= man page to exist.
    let service = fs::read_to_string(repo().join("packaging/systemd/sortie.service")).unwrap();
    fs::write(
        dir.path().join("sortie.service"),
        service.replace("/usr/bin/sortie", env!("CARGO_BIN_EXE_sortie")),
    )
    .unwrap();
    fs::copy(
        repo().join("packaging/systemd/sortie.timer"),
        dir.path().join("sortie.timer"),
    )
    .unwrap();
    let man = dir.path().join("man/man1");
    fs::create_dir_all(&man).unwrap();
    fs::copy(repo().join("man/sortie.1"), man.join("sortie.1")).unwrap();
    checked(
        Command::new("systemd-analyze")
            .current_dir(dir.path())
            .env("MANPATH", dir.path().join("man"))
            .args(["verify", "./sortie.service", "./sortie.timer"]),
    );
    let out = Command::new("systemd-analyze")
        .current_dir(dir.path())
        .args(["security", "--offline=true", "./sortie.service"])
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    let score: f64 = text
        .split("Overall exposure level for sortie.service: ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no exposure score in {text}"));
    eprintln!("systemd-analyze security: exposure {score}");
    assert!(score <= 2.0, "exposure {score}");
    // TimeoutStartSec stays above --max-runtime.
    assert!(service.contains("--max-runtime 10min") && service.contains("TimeoutStartSec=11min"));
}

#[test]
fn the_kubernetes_manifests_pass_kubernetes_validate_and_our_own_checks() {
    let dir = repo().join("packaging/kubernetes");
    let mut resources = Vec::new();
    for entry in fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name == "kustomization.yaml" {
            continue;
        }
        checked(
            Command::new(peer("kubernetes-validate"))
                .args(["--strict", "--quiet"])
                .arg(&path),
        );
        resources.push(name);
    }
    // What kubernetes-validate does not check, checked with a YAML parser.
    let script = r#"
import sys, yaml
d = sys.argv[1]
k = yaml.safe_load(open(d + "/kustomization.yaml"))
assert sorted(k["resources"]) == sorted(sys.argv[2].split(",")), k["resources"]
c = yaml.safe_load(open(d + "/cronjob.yaml"))
spec = c["spec"]
fields = spec["schedule"].split()
assert len(fields) == 5, spec["schedule"]
ranges = [(0, 59), (0, 23), (1, 31), (1, 12), (0, 7)]
for field, (lo, hi) in zip(fields, ranges):
    for part in field.split(","):
        base, _, step = part.partition("/")
        assert not step or step.isdigit(), part
        if base != "*":
            for n in base.split("-"):
                assert n.isdigit() and lo <= int(n) <= hi, part
assert spec["concurrencyPolicy"] == "Forbid"
job = spec["jobTemplate"]["spec"]
pod = job["template"]["spec"]
assert pod["restartPolicy"] in ("Never", "OnFailure") and pod["restartPolicy"] == "Never"
assert job["backoffLimit"] == 0
args = pod["containers"][0]["args"]
runtime = args[args.index("--max-runtime") + 1]
minutes = int(runtime.rstrip("m"))
assert job["activeDeadlineSeconds"] > minutes * 60, "activeDeadlineSeconds above --max-runtime"
assert pod["securityContext"]["runAsNonRoot"] is True
container = pod["containers"][0]
assert container["securityContext"]["readOnlyRootFilesystem"] is True
assert not any("TOKEN" in e["name"] and "value" in e and e["name"] != "SORTIE_TOKEN_FILE" for e in container["env"])
print("ok")
"#;
    let out = checked(
        Command::new(peer("python"))
            .args(["-c", script])
            .arg(&dir)
            .arg(resources.join(",")),
    );
    assert_eq!(out.trim(), "ok");
}

#[test]
fn the_man_page_passes_mandoc_lint() {
    checked(
        Command::new("mandoc")
            .args(["-T", "lint", "-W", "warning"])
            .arg(repo().join("man/sortie.1")),
    );
}

/// The static binary, built once per test run by packaging/build-static.sh (the
/// way users build it) into its own target dir (a nested cargo must not wait on
/// the lock of the build that runs these tests).
fn static_binary() -> &'static Path {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| {
        let out = Command::new("sh")
            .arg(repo().join("packaging/build-static.sh"))
            .env("CARGO", env!("CARGO"))
            .env("CARGO_TARGET_DIR", repo().join("target/static"))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "building the static binary: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
    })
}

#[test]
fn the_static_binary_completes_a_shot_over_tls_in_an_empty_root() {
    let binary = static_binary();
    let out = Command::new("file").arg(binary).output().unwrap();
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("static"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let size = fs::metadata(binary).unwrap().len();
    eprintln!("static binary: {size} bytes");

    let cp = ControlPlane::start();
    cp.enqueue(json!({ "id": "from-empty-root", "steps": [{ "exec": ["/sortie", "--version"] }] }));
    // The root holds the binary, a CA bundle, the token and the state dir: nothing else.
    let root = tempfile::tempdir().unwrap();
    fs::copy(binary, root.path().join("sortie")).unwrap();
    fs::copy(&cp.pki.ca_file, root.path().join("ca.pem")).unwrap();
    fs::copy(&cp.token_file, root.path().join("token")).unwrap();
    fs::create_dir(root.path().join("state")).unwrap();
    let out = run(
        Command::new("chroot").arg(root.path()).args([
            "/sortie",
            "poll",
            "--server",
            &cp.url(),
            "--ca-file",
            "/ca.pem",
            "--token-file",
            "/token",
            "--state-dir",
            "/state",
            "--runner-id",
            "empty-root",
        ]),
        code::OK,
    );
    let job = cp.job("from-empty-root");
    assert_done(&job, "succeeded");
    let stdout = output_text(&events(&cp.log("from-empty-root")), "stdout");
    assert!(stdout.starts_with("sortie "), "{stdout} {}", stderr(&out));
}

#[test]
fn the_scratch_image_builds_and_runs_a_shot_read_only_as_non_root() {
    let binary = static_binary();
    let dir = tempfile::tempdir().unwrap();
    let stage = dir.path().join("stage");
    fs::create_dir(&stage).unwrap();
    fs::copy(binary, stage.join("sortie")).unwrap();
    fs::copy(
        "/etc/ssl/certs/ca-certificates.crt",
        stage.join("ca-certificates.crt"),
    )
    .unwrap();
    let conf = dir.path().join("containers.conf");
    fs::write(
        &conf,
        "[containers]\ndefault_ulimits = []\n[engine]\ncgroup_manager = \"cgroupfs\"\n",
    )
    .unwrap();
    let storage = dir.path().join("storage");
    let podman = |args: &[&str]| {
        let mut cmd = Command::new("podman");
        cmd.env("CONTAINERS_CONF", &conf)
            .arg("--root")
            .arg(&storage)
            .arg("--runroot")
            .arg(dir.path().join("run"))
            .args(["--runtime", "runc", "--storage-driver", "vfs"])
            .args(args);
        cmd
    };
    let tag = "localhost/sortie:test";
    let file = repo().join("packaging/container/Dockerfile");
    let out = podman(&[
        "build",
        "-q",
        "-t",
        tag,
        "-f",
        file.to_str().unwrap(),
        stage.to_str().unwrap(),
    ])
    .output()
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let cp = ControlPlane::start();
    cp.enqueue(json!({ "id": "in-a-container", "steps": [{ "exec": ["/sortie", "--version"] }] }));
    let secrets = dir.path().join("secrets");
    fs::create_dir(&secrets).unwrap();
    fs::copy(&cp.pki.ca_file, secrets.join("ca.pem")).unwrap();
    fs::copy(&cp.token_file, secrets.join("token")).unwrap();
    let mount = format!("{}:/etc/sortie:ro", secrets.display());
    let out = podman(&[
        "run",
        "--rm",
        "--network=host",
        "--read-only",
        "--user",
        "65532",
        "--tmpfs",
        "/state:rw,mode=1777",
        "-v",
        &mount,
        tag,
        "poll",
        "--server",
        &cp.url(),
        "--ca-file",
        "/etc/sortie/ca.pem",
        "--token-file",
        "/etc/sortie/token",
        "--runner-id",
        "container",
    ])
    .output()
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_done(&cp.job("in-a-container"), "succeeded");
    let _ = podman(&["rmi", "-f", tag]).output();
}
