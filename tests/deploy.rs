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

/// The unit files in a new directory, ready for systemd-analyze: ExecStart's
/// binary is the one under test (verify needs it to exist), the Documentation=
/// man page is on MANPATH, and with `drop_ins` the sortie.service.d/ examples
/// are in place as the .conf files an operator would install.
fn unit_dir(drop_ins: bool) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let systemd = repo().join("packaging/systemd");
    for name in ["sortie.service", "sortie.timer", "sortie-failure@.service"] {
        let text = fs::read_to_string(systemd.join(name)).unwrap();
        fs::write(
            dir.path().join(name),
            text.replace("/usr/bin/sortie", env!("CARGO_BIN_EXE_sortie")),
        )
        .unwrap();
    }
    if drop_ins {
        let conf_dir = dir.path().join("sortie.service.d");
        fs::create_dir(&conf_dir).unwrap();
        for entry in fs::read_dir(systemd.join("sortie.service.d")).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            let conf = name
                .strip_suffix(".conf.example")
                .unwrap_or_else(|| panic!("{name}: drop-ins are examples, none is enabled"));
            fs::copy(&path, conf_dir.join(format!("{conf}.conf"))).unwrap();
        }
    }
    let man = dir.path().join("man/man1");
    fs::create_dir_all(&man).unwrap();
    fs::copy(repo().join("man/sortie.1"), man.join("sortie.1")).unwrap();
    dir
}

fn verify_units(dir: &Path) {
    checked(
        Command::new("systemd-analyze")
            .current_dir(dir)
            .env("MANPATH", dir.join("man"))
            .args([
                "verify",
                "./sortie.service",
                "./sortie.timer",
                "./sortie-failure@.service",
            ]),
    );
}

#[test]
fn the_systemd_units_pass_systemd_analyze_verify() {
    let dir = unit_dir(false);
    verify_units(dir.path());
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
    let service = fs::read_to_string(repo().join("packaging/systemd/sortie.service")).unwrap();
    // Landlock's calls pass the unit's seccomp filter: this systemd's
    // @system-service may leave them out, and the unit must then name them.
    let group =
        checked(Command::new("systemd-analyze").args(["syscall-filter", "@system-service"]));
    let allowed: Vec<&str> = service
        .lines()
        .filter_map(|l| l.strip_prefix("SystemCallFilter="))
        .flat_map(str::split_whitespace)
        .collect();
    for call in [
        "landlock_create_ruleset",
        "landlock_add_rule",
        "landlock_restrict_self",
    ] {
        let in_group = group.lines().any(|l| l.trim() == call);
        assert!(
            in_group || allowed.contains(&call),
            "{call} is refused by sortie.service's SystemCallFilter="
        );
    }
    // TimeoutStartSec stays above --max-runtime.
    assert!(service.contains("--max-runtime 10min") && service.contains("TimeoutStartSec=11min"));
    // The failure hook is there to be chosen, not on by default.
    assert!(!service.contains("OnFailure="), "{service}");
    // DynamicUser= makes $STATE_DIRECTORY root's symlink into /var/lib/private,
    // which sortie follows (tests/operator.rs): the unit relies on it.
    assert!(
        service.contains("\nDynamicUser=yes\n") && service.contains("\nStateDirectory=sortie\n"),
        "{service}"
    );

    // The drop-in examples (host-admin, on-failure) installed: still valid units,
    // and the hook they name is the template shipped beside them.
    let dir = unit_dir(true);
    verify_units(dir.path());
    let on_failure =
        fs::read_to_string(dir.path().join("sortie.service.d/on-failure.conf")).unwrap();
    assert!(
        on_failure.contains("\nOnFailure=sortie-failure@%n.service\n"),
        "{on_failure}"
    );
    let host_admin =
        fs::read_to_string(dir.path().join("sortie.service.d/host-admin.conf")).unwrap();
    assert!(
        host_admin.contains("\nDynamicUser=no\n")
            && host_admin.contains("\nEnvironment=SORTIE_STATE_DIR=/var/lib/sortie\n")
            && host_admin.contains("\nReadWritePaths="),
        "{host_admin}"
    );
}

/// The timer fires every minute: an idle shot, run as the unit runs it, prints
/// nothing, and the unit keeps systemd's own per-run lines out of the journal.
#[test]
fn the_systemd_unit_is_quiet_when_idle() {
    let service = fs::read_to_string(repo().join("packaging/systemd/sortie.service")).unwrap();
    let exec_start = service
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .expect("ExecStart=");
    let mut words = exec_start.split_whitespace();
    assert_eq!(words.next(), Some("/usr/bin/sortie"));
    let args: Vec<&str> = words.collect();
    assert!(
        !args
            .iter()
            .any(|a| *a == "--verbose" || (a.starts_with("-v") && !a.starts_with("--"))),
        "no verbosity in the unit: {exec_start}"
    );
    assert!(
        service.contains("\nSyslogLevel=notice\n") && service.contains("\nLogLevelMax=notice\n"),
        "{service}"
    );
    let dir = tempfile::tempdir().unwrap();
    let spool = dir.path().join("spool");
    run(sortie().args(["spool", "init"]).arg(&spool), code::OK);
    let out = run(
        sortie()
            .args(args)
            .arg("--server")
            .arg(format!("dir:{}", spool.display()))
            .arg("--state-dir")
            .arg(dir.path().join("state")),
        code::OK,
    );
    assert_eq!(
        stderr(&out),
        "",
        "an idle shot under the unit prints nothing"
    );
    assert_eq!(stdout(&out), "");
}

#[test]
fn the_kubernetes_manifests_pass_kubernetes_validate_and_our_own_checks() {
    let dir = repo().join("packaging/kubernetes");
    let mut manifests = Vec::new();
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
        manifests.push(name);
    }
    // What kubernetes-validate does not check, checked with a YAML parser.
    let script = r#"
import sys, yaml
d = sys.argv[1]
manifests = sys.argv[2].split(",")
load = lambda name: yaml.safe_load(open(d + "/" + name))
k = load("kustomization.yaml")
# Everything is applied but the example secret, which would overwrite the real one.
assert "secret.yaml" in manifests and "secret.yaml" not in k["resources"], k["resources"]
assert sorted(k["resources"]) == sorted(m for m in manifests if m != "secret.yaml"), k["resources"]
objects = {m: load(m) for m in manifests}
kinds = {o["kind"]: o for o in objects.values()}
# One namespace, every object in it.
ns = kinds["Namespace"]["metadata"]["name"]
assert k["namespace"] == ns, k.get("namespace")
for m, o in objects.items():
    assert o["metadata"].get("namespace") in (None, ns), m
c = kinds["CronJob"]
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
assert spec["successfulJobsHistoryLimit"] >= 3 and spec["failedJobsHistoryLimit"] >= 5, spec
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
# A pinned image, pulled once per node.
image = container["image"]
last = image.rsplit("/", 1)[-1]
assert "@sha256:" in image or (":" in last and not last.endswith(":latest")), image
assert container["imagePullPolicy"] == "IfNotPresent", container.get("imagePullPolicy")
# The files sortie is told about are on the volumes they should be.
env = {e["name"]: e.get("value") for e in container["env"]}
mounts = {m["mountPath"].rstrip("/"): m for m in container["volumeMounts"]}
volumes = {v["name"]: v for v in pod["volumes"]}
def mount_of(path):
    holders = [p for p in mounts if path == p or path.startswith(p + "/")]
    assert holders, "nothing mounted at " + path
    return mounts[max(holders, key=len)]
# The state dir outlives the pod: on the claim, never an emptyDir.
pvc = kinds["PersistentVolumeClaim"]
assert pvc["spec"]["accessModes"] == ["ReadWriteOnce"], pvc["spec"]
state = volumes[mount_of(env["SORTIE_STATE_DIR"])["name"]]
assert state.get("persistentVolumeClaim", {}).get("claimName") == pvc["metadata"]["name"], state
assert not any("emptyDir" in v for v in volumes.values()), volumes
# The token file and the secrets dir are secrets, mounted read-only; the token's
# is the one secret.yaml shows how to create, and the pod does not start without it.
for var in ("SORTIE_TOKEN_FILE", "SORTIE_SECRETS_DIR"):
    mount = mount_of(env[var])
    assert mount.get("readOnly") is True, mount
    assert "secret" in volumes[mount["name"]], (var, volumes[mount["name"]])
token = volumes[mount_of(env["SORTIE_TOKEN_FILE"])["name"]]["secret"]
assert token["secretName"] == kinds["Secret"]["metadata"]["name"], token
assert not token.get("optional", False), token
print("ok")
"#;
    let out = checked(
        Command::new(peer("python"))
            .args(["-c", script])
            .arg(&dir)
            .arg(manifests.join(",")),
    );
    assert_eq!(out.trim(), "ok");
}

/// The tools image cannot be built here (its base comes from a registry): its
/// promises are checked in the file.
#[test]
fn the_tools_image_is_pinned_non_root_and_runs_sortie() {
    let text = fs::read_to_string(repo().join("packaging/container/Dockerfile.tools")).unwrap();
    let from = text
        .lines()
        .find_map(|l| l.strip_prefix("FROM "))
        .expect("FROM");
    assert!(from.contains(':') && !from.ends_with(":latest"), "{from}");
    for tool in ["ca-certificates", "openssh-client", "bash", "curl"] {
        assert!(
            text.contains(&format!(" {tool}")),
            "{tool} in the tools image"
        );
    }
    assert!(text.contains("\nCOPY sortie /usr/local/bin/sortie\n"));
    assert!(
        text.contains("\nUSER 65532:65532\n"),
        "the scratch image's user"
    );
    assert!(text.contains("\nENTRYPOINT [\"/usr/local/bin/sortie\"]\n"));
    let build = fs::read_to_string(repo().join("packaging/container/build.sh")).unwrap();
    assert!(
        build.contains("Dockerfile.tools"),
        "build.sh --tools builds it"
    );
}

#[test]
fn the_ci_examples_install_sortie_keep_the_state_dir_and_never_overlap() {
    let script = r#"
import sys, yaml
d = sys.argv[1]
gh = yaml.safe_load(open(d + "/github-workflow.yml"))
# Runs wait for each other; a running shot is never cancelled.
assert gh["concurrency"]["group"] and gh["concurrency"]["cancel-in-progress"] is False, gh["concurrency"]
(job,) = gh["jobs"].values()
steps = job["steps"]
index = lambda f: next(i for i, s in enumerate(steps) if f(s))
install = index(lambda s: "sha256sum -c" in s.get("run", "") or "cargo install" in s.get("run", ""))
shot = index(lambda s: "sortie poll" in s.get("run", ""))
restore = index(lambda s: s.get("uses", "").startswith("actions/cache/restore@"))
save = index(lambda s: s.get("uses", "").startswith("actions/cache/save@"))
assert install < shot and restore < shot < save, (install, restore, shot, save)
# Saved even when the shot fails (results left for later: exit 75).
assert steps[save]["if"] == "always()", steps[save]
state = steps[shot]["env"]["SORTIE_STATE_DIR"]
for i in (restore, save):
    paths = [p.strip() for p in steps[i]["with"]["path"].splitlines() if p.strip()]
    assert paths and all(p.startswith(state + "/") for p in paths), paths
    assert "SORTIE_RUNNER_ID" in steps[i]["with"]["key"], steps[i]["with"]
assert steps[restore]["with"]["key"] == steps[save]["with"]["key"]
assert "SORTIE_RUNNER_ID" in job["env"]
gl = yaml.safe_load(open(d + "/gitlab-ci.yml"))
(job,) = gl.values()
assert job["resource_group"], job
assert any("sha256sum -c" in line or "cargo install" in line for line in job["before_script"]), job["before_script"]
cache = job["cache"]
assert "$CI_RUNNER_ID" in cache["key"] and cache["when"] == "always", cache
state = job["variables"]["SORTIE_STATE_DIR"]
assert state.startswith("$CI_PROJECT_DIR/"), state
state = state[len("$CI_PROJECT_DIR/"):]
assert cache["paths"] and all(p.startswith(state + "/") for p in cache["paths"]), cache["paths"]
# The project dir, the state dir's parent, is made no one else's before the shot.
shot = next(i for i, line in enumerate(job["script"]) if line.startswith("sortie poll"))
assert 'chmod o-w "$CI_PROJECT_DIR"' in job["script"][:shot], job["script"]
print("ok")
"#;
    let out = checked(
        Command::new(peer("python"))
            .args(["-c", script])
            .arg(repo().join("packaging/ci")),
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
/// way users build it, without LTO) into its own target dir (a nested cargo must not wait on
/// the lock of the build that runs these tests).
fn static_binary() -> &'static Path {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| {
        let out = Command::new("sh")
            .arg(repo().join("packaging/build-static.sh"))
            .env("CARGO", env!("CARGO"))
            .env("CARGO_TARGET_DIR", repo().join("target/static"))
            .env("SORTIE_STATIC_PROFILE", "static-check")
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
    // musl, by Debian's compiler and std's source (tests/peers/commands.tsv
    // installs them) when rustup's musl target is not installed.
    assert!(
        binary
            .to_string_lossy()
            .contains("x86_64-unknown-linux-musl"),
        "not a musl build: {}",
        binary.display()
    );
    let out = Command::new("file").arg(binary).output().unwrap();
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("statically linked"),
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
    fs::copy(repo().join("LICENSE"), stage.join("LICENSE")).unwrap();
    fs::copy(
        repo().join("packaging/notices/sortie.txt"),
        stage.join("THIRD-PARTY-NOTICES"),
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
        "/state:rw,mode=0700,U",
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

    // Landlock confines
    // steps where the kernel has it; where a seccomp filter refuses its calls
    // (as systemd's @system-service does on systemd 252), `check` says that,
    // not that the kernel lacks it.
    let deny_landlock = dir.path().join("seccomp.json");
    fs::write(
        &deny_landlock,
        json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{
                "names": ["landlock_create_ruleset", "landlock_add_rule", "landlock_restrict_self"],
                "action": "SCMP_ACT_ERRNO",
                "errnoRet": 1
            }]
        })
        .to_string(),
    )
    .unwrap();
    let seccomp = format!("seccomp={}", deny_landlock.display());
    let unreachable = "https://127.0.0.1:9/";
    let check = |options: &[&str]| {
        let mut args = vec!["run", "--rm", "--user", "65532", "--network=none"];
        args.extend_from_slice(&["--tmpfs", "/state:rw,mode=0700,U"]);
        args.extend_from_slice(options);
        args.extend_from_slice(&[tag, "check", "--server", unreachable]);
        let out = podman(&args).output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(text.contains("ok: state dir"), "{options:?}: {text}");
        text
    };
    let seccomp_refuses = "warning: a seccomp filter refuses Landlock's system calls";
    let plain = check(&[]);
    assert!(!plain.contains(seccomp_refuses), "{plain}");
    let filtered = check(&["--security-opt", &seccomp]);
    assert!(filtered.contains(seccomp_refuses), "{filtered}");
    let _ = podman(&["rmi", "-f", tag]).output();
}
