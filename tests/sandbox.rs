//! A step cannot read the runner's credentials (issue #10, item 2).
//!
//! A job's step tries every route to the runner's token and other secrets it was
//! not given — its environment, /proc of its parent (environ, cmdline, mem, fd/),
//! ptrace, the token file, the credentials directory, the state dir with its
//! lease tokens — and writes whatever it got to a file outside the job. The file
//! must hold none of them; the secret the job asked for still arrives. The same
//! job with `--sandbox off` does read the token file: the probe can see a leak.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::json;

use crate::support::*;

/// Reads everything it can reach and appends it to argv[1].
const PROBE: &str = r#"
import ctypes, os, sys
out = open(sys.argv[1], "a")
token_file, creds, state = sys.argv[2], sys.argv[3], sys.argv[4]
def note(route, data):
    out.write("== %s\n%s\n" % (route, data if isinstance(data, str) else data.decode("latin-1")))
    out.flush()
def attempt(route, f):
    try:
        note(route, f())
    except Exception as e:
        note(route, "DENIED %r" % (e,))
def read(path):
    with open(path, "rb") as f:
        return f.read(1 << 20)
ppid = os.getppid()
note("self environ", "\n".join("%s=%s" % kv for kv in os.environ.items()))
attempt("parent environ", lambda: read("/proc/%d/environ" % ppid))
attempt("parent cmdline", lambda: read("/proc/%d/cmdline" % ppid))
attempt("token file", lambda: read(token_file))
attempt("token file via cmdline", lambda: read(read("/proc/%d/cmdline" % ppid).split(b"\0")[
    read("/proc/%d/cmdline" % ppid).split(b"\0").index(b"--token-file") + 1].decode()))
for root in (creds, state):
    for d, _, files in os.walk(root):
        for name in files:
            attempt("file " + os.path.join(d, name), lambda p=os.path.join(d, name): read(p))
    attempt("list " + root, lambda r=root: "\n".join(os.listdir(r)))
def mem():
    got = []
    maps = read("/proc/%d/maps" % ppid).decode().splitlines()
    with open("/proc/%d/mem" % ppid, "rb") as m:
        for line in maps:
            span, perms = line.split()[:2]
            if "r" not in perms:
                continue
            a, b = (int(x, 16) for x in span.split("-"))
            try:
                m.seek(a)
                got.append(m.read(min(b - a, 64 << 20)))
            except OSError:
                pass
    return b"".join(got)
attempt("parent mem", mem)
def fds():
    got = []
    for fd in os.listdir("/proc/%d/fd" % ppid):
        try:
            f = os.open("/proc/%d/fd/%s" % (ppid, fd), os.O_RDONLY | os.O_NONBLOCK)
            try:
                if os.path.stat.S_ISREG(os.fstat(f).st_mode):
                    got.append(os.read(f, 1 << 20))
            finally:
                os.close(f)
        except OSError as e:
            got.append(repr(e).encode())
    return b"\n".join(got)
attempt("parent fds", fds)
libc = ctypes.CDLL(None, use_errno=True)
libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]
r = libc.ptrace(16, ppid, None, None)  # PTRACE_ATTACH
note("ptrace attach", "result %d errno %d" % (r, ctypes.get_errno()))
if r == 0:
    os.waitpid(ppid, 0x40000000)  # __WALL: the tracee has stopped
    libc.ptrace(17, ppid, None, None)  # PTRACE_DETACH
note("kill -0 parent", "result %d errno %d" % (libc.kill(ppid, 0), ctypes.get_errno()))
note("asked-for secret", os.environ.get("WANTED", "missing"))
"#;

const OTHER_SECRET: &str = "not-for-this-job-4c1a9e";
const WANTED_SECRET: &str = "given-to-this-job-77d0b3";

struct Setup {
    cp: ControlPlane,
    /// Holds the runner's files (state, credentials) apart from the probe's output.
    _runner: tempfile::TempDir,
    creds: PathBuf,
    state: PathBuf,
    token_file: PathBuf,
    ca_file: PathBuf,
    out_dir: tempfile::TempDir,
}

fn setup() -> Setup {
    let cp = ControlPlane::start();
    let runner = tempfile::tempdir().unwrap();
    let creds = runner.path().join("credentials");
    std::fs::create_dir(&creds).unwrap();
    // As systemd's LoadCredential= does: the token beside the jobs' secrets.
    let token_file = creds.join("token");
    std::fs::copy(&cp.token_file, &token_file).unwrap();
    std::fs::write(creds.join("wanted"), WANTED_SECRET).unwrap();
    let state = runner.path().join("state");
    let ca_file = runner.path().join("ca.pem");
    std::fs::copy(&cp.pki.ca_file, &ca_file).unwrap();
    let out_dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(out_dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    Setup {
        cp,
        _runner: runner,
        creds,
        state,
        token_file,
        ca_file,
        out_dir,
    }
}

impl Setup {
    fn out(&self) -> PathBuf {
        self.out_dir.path().join("probe.out")
    }

    fn enqueue(&self, id: &str) {
        std::fs::write(self.out_dir.path().join("probe.py"), PROBE).unwrap();
        self.cp.enqueue(json!({
            "id": id,
            "secrets": { "WANTED": "file:wanted" },
            "steps": [{ "exec": ["/usr/bin/python3",
                self.out_dir.path().join("probe.py").display().to_string(),
                self.out().display().to_string(),
                self.token_file.display().to_string(),
                self.creds.display().to_string(),
                self.state.display().to_string()] }]
        }));
    }

    /// `sortie poll` with the token in the credentials directory.
    fn poll(&self) -> Command {
        let mut cmd = sortie();
        cmd.arg("poll")
            .args(["--server", &self.cp.url()])
            .arg("--ca-file")
            .arg(&self.ca_file)
            .arg("--token-file")
            .arg(&self.token_file)
            .arg("--state-dir")
            .arg(&self.state)
            .args(["--runner-id", "sandboxed"])
            .env("CREDENTIALS_DIRECTORY", &self.creds)
            .env("SORTIE_SECRET_OTHER", OTHER_SECRET);
        cmd
    }

    fn probe_output(&self) -> String {
        std::fs::read_to_string(self.out()).expect("the probe ran and wrote its findings")
    }
}

fn token() -> &'static str {
    RUNNER_TOKEN
}

/// The probe ran every route, got no credential, and got the secret it asked for.
fn assert_nothing_leaked(s: &Setup, id: &str) {
    let found = s.probe_output();
    eprintln!("what the probe got:\n{found}");
    for route in [
        "== parent environ",
        "== token file",
        "== parent mem",
        "== parent fds",
        "== ptrace attach",
    ] {
        assert!(found.contains(route), "the probe tried {route}:\n{found}");
    }
    assert!(
        !found.contains(token()),
        "the token leaked to the step:\n{found}"
    );
    assert!(
        !found.contains(OTHER_SECRET),
        "a secret the job did not ask for leaked:\n{found}"
    );
    let lease =
        s.cp.job(id)
            .lease
            .expect("a finished job keeps its lease")
            .token;
    assert!(!found.contains(&lease), "the lease token leaked:\n{found}");
    assert!(
        found.contains(&format!("== asked-for secret\n{WANTED_SECRET}")),
        "the secret the job asked for arrives:\n{found}"
    );
    let log = String::from_utf8_lossy(&s.cp.log(id)).into_owned();
    assert!(
        !log.contains(token()),
        "the token reached the control plane"
    );
}

#[test]
fn a_step_running_as_root_reads_none_of_the_runner_s_credentials() {
    let s = setup();
    s.enqueue("probe-root");
    run(&mut s.poll(), code::OK);
    assert_done(&s.cp.job("probe-root"), "succeeded");
    assert_nothing_leaked(&s, "probe-root");
}

#[test]
fn a_step_of_an_unprivileged_runner_reads_none_of_its_credentials() {
    let s = setup();
    s.enqueue("probe-user");
    // The runner's own files belong to the unprivileged user it runs as.
    chown_all(s._runner.path(), 65534);
    let cmd = s.poll();
    let program = cmd.get_program().to_owned();
    let args: Vec<_> = cmd.get_args().map(|a| a.to_owned()).collect();
    let envs: Vec<_> = cmd
        .get_envs()
        .filter_map(|(k, v)| Some((k.to_owned(), v?.to_owned())))
        .collect();
    let mut setpriv = Command::new("setpriv");
    setpriv
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(program)
        .args(args)
        .env_clear()
        .envs(envs);
    run(&mut setpriv, code::OK);
    assert_done(&s.cp.job("probe-user"), "succeeded");
    assert_nothing_leaked(&s, "probe-user");
}

#[test]
fn a_step_run_as_another_user_reads_none_of_the_runner_s_credentials() {
    let s = setup();
    s.enqueue("probe-run-as");
    run(s.poll().args(["--run-as", "nobody"]), code::OK);
    assert_done(&s.cp.job("probe-run-as"), "succeeded");
    assert_nothing_leaked(&s, "probe-run-as");
    assert!(s.probe_output().contains("USER=nobody"));
}

/// Whether `uid`, outside any sandbox, can pass through to `dir`.
fn passes(uid: u32, dir: &Path) -> bool {
    Command::new("setpriv")
        .args([
            format!("--reuid={uid}"),
            format!("--regid={uid}"),
            "--clear-groups".into(),
        ])
        .args(["stat", "--"])
        .arg(dir.join("."))
        .output()
        .unwrap()
        .status
        .success()
}

/// `--run-as` workspaces are made in the state dir: the probe, run as that
/// user from there, still reads none of the runner's files, and the state dir
/// lets that user pass, and no one else.
#[test]
fn a_step_run_as_another_user_from_the_state_dir_reads_none_of_the_runner_s_credentials() {
    let s = setup();
    s.enqueue("probe-run-as-state");
    let out = run(s.poll().args(["--run-as", "nobody"]), code::OK);
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains("temporary directory"),
        "{out:?}"
    );
    assert_done(&s.cp.job("probe-run-as-state"), "succeeded");
    assert_nothing_leaked(&s, "probe-run-as-state");
    let work = s.state.join("work");
    assert!(passes(65534, &work));
    assert!(!passes(12345, &work), "another user passes");
    for dir in [&s.state, &work] {
        let mode = std::fs::metadata(dir).unwrap().permissions().mode();
        assert_eq!(mode & 0o707, 0o700, "{}", dir.display());
    }
}

/// A process of the steps' user that holds a group the user database does not
/// give that user (here root's, which may write a directory on the way to
/// the state dir) could change that directory: while one is alive, the
/// workspaces of `--run-as` jobs are not made in the state dir.
#[test]
fn a_group_a_process_of_the_run_as_user_still_holds_counts_on_the_way() {
    let r = RunAs::new();
    // root:root, 0775: sortie's group may write it, the user `nobody`'s may not.
    std::fs::set_permissions(r.runner.path(), std::fs::Permissions::from_mode(0o775)).unwrap();
    let job = |id: &str| json!({"id": id, "steps": [{"exec": ["true"]}]});
    r.cp.enqueue(job("held-before"));
    let said = String::from_utf8_lossy(&r.poll("auto").stderr).into_owned();
    assert!(!said.contains("temporary directory"), "{said}");
    assert_done(&r.cp.job("held-before"), "succeeded");

    let mut holder = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--groups=0", "--"])
        .args(["sleep", "60"])
        .spawn()
        .unwrap();
    let status = PathBuf::from(format!("/proc/{}/status", holder.id()));
    wait_for(
        "the holder to run as nobody",
        std::time::Duration::from_secs(10),
        || std::fs::read_to_string(&status).is_ok_and(|s| s.contains("Uid:\t65534")),
    );
    r.cp.enqueue(job("held-after"));
    let said = String::from_utf8_lossy(&r.poll("auto").stderr).into_owned();
    let _ = holder.kill();
    let _ = holder.wait();
    assert!(
        said.contains("nobody may change")
            && said.contains("made in the system's temporary directory"),
        "{said}"
    );
    assert_done(&r.cp.job("held-after"), "succeeded");
}

/// Jobs running at once as one `--run-as` user, each in its workspace in the
/// state dir: one learns where the other's is, and cannot read, list or enter
/// it, nor move its own workspace away. It can loosen the other's modes
/// (Landlock does not guard chmod), but no other user can pass to it.
#[test]
fn jobs_run_as_one_user_cannot_reach_each_other_s_workspaces() {
    let r = RunAs::new();
    std::fs::set_permissions(r.runner.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = r.workspaces.path();
    let wait = |file: &str| {
        format!(
            "i=0; while [ ! -e {out}/{file} ] && [ $i -lt 400 ]; do sleep 0.05; i=$((i+1)); done",
            out = out.display()
        )
    };
    let holder = format!(
        "printf '%s-%s\\n' held secret > held.txt && echo \"$SORTIE_WORKSPACE\" > {out}/holder && {wait}",
        out = out.display(),
        wait = wait("done")
    );
    let prober = format!(
        "{wait}; w=$(cat {out}/holder); echo \"at $w\"; cat \"$w/held.txt\"; echo \"cat=$?\"; \
         ls \"$w\" \"$(dirname \"$w\")\"; echo \"ls=$?\"; \
         mv \"$SORTIE_WORKSPACE\" \"$SORTIE_WORKSPACE.moved\"; echo \"mv=$?\"; \
         chmod 0777 \"$w\" && chmod 0644 \"$w/held.txt\"; echo \"chmod=$?\"; touch {out}/loosened",
        out = out.display(),
        wait = wait("holder")
    );
    for (id, script) in [("holder", holder), ("prober", prober)] {
        r.cp.enqueue(json!({"id": id, "steps": [{"exec": ["sh", "-c", script]}]}));
    }
    let state = r.runner.path().join("state");
    let shot =
        r.cp.poll(&state)
            .arg("--ca-file")
            .arg(r.runner.path().join("ca.pem"))
            .arg("--token-file")
            .arg(r.runner.path().join("token"))
            .args(["--run-as", "nobody", "--max-jobs", "2", "--parallel", "2"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
    // Once the prober has loosened the holder's modes, another user tries.
    let loosened = out.join("loosened");
    let until = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !loosened.exists() && std::time::Instant::now() < until {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let holder_dir = std::fs::read_to_string(out.join("holder")).unwrap();
    let other = Command::new("setpriv")
        .args([
            "--reuid=12345",
            "--regid=12345",
            "--clear-groups",
            "cat",
            "--",
        ])
        .arg(Path::new(holder_dir.trim()).join("held.txt"))
        .output()
        .unwrap();
    std::fs::write(out.join("done"), "").unwrap();
    let polled = shot.wait_with_output().unwrap();
    assert_eq!(polled.status.code(), Some(0), "{polled:?}");
    assert!(!other.status.success(), "another user read it: {other:?}");
    assert_done(&r.cp.job("holder"), "succeeded");
    assert_done(&r.cp.job("prober"), "succeeded");
    let log = r.log("prober");
    let at = format!("at {}/work/sortie-holder-", state.display());
    assert!(
        log.contains(&at),
        "the holder's workspace is in the state dir: {log}"
    );
    assert!(!log.contains("held-secret"), "{log}");
    for expected in ["cat=1", "ls=2", "mv=1", "chmod=0"] {
        assert!(log.contains(expected), "{expected}: {log}");
    }
}

/// A `--run-as` runner whose files are where the steps' user cannot pass
/// (0700), so that its workspaces go to a temporary directory of their own
/// (TMPDIR, world-writable and sticky like /tmp), beside the runner's files:
/// the domain lists the way to those files, not that directory, so a step can
/// rename its own workspace there, as it can in production's /tmp.
struct RunAs {
    cp: ControlPlane,
    runner: tempfile::TempDir,
    workspaces: tempfile::TempDir,
}

impl RunAs {
    fn new() -> RunAs {
        let cp = ControlPlane::start();
        let runner = tempfile::tempdir().unwrap();
        std::fs::set_permissions(runner.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
        std::fs::copy(&cp.token_file, runner.path().join("token")).unwrap();
        std::fs::copy(&cp.pki.ca_file, runner.path().join("ca.pem")).unwrap();
        let workspaces = tempfile::tempdir().unwrap();
        std::fs::set_permissions(workspaces.path(), std::fs::Permissions::from_mode(0o1777))
            .unwrap();
        RunAs {
            cp,
            runner,
            workspaces,
        }
    }

    /// A root-owned directory (0755, in a world-readable place) with a file.
    fn target(&self) -> PathBuf {
        let target = self.workspaces.path().join("target");
        std::fs::create_dir(&target).unwrap();
        std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::write(target.join("step-1.sh"), "root's own").unwrap();
        target
    }

    fn poll(&self, sandbox: &str) -> Output {
        let r = self.runner.path();
        run(
            // The runner's token and CA where its other files are (the later
            // option stands).
            self.cp
                .poll(&r.join("state"))
                .arg("--ca-file")
                .arg(r.join("ca.pem"))
                .arg("--token-file")
                .arg(r.join("token"))
                .args(["--run-as", "nobody", "--sandbox", sandbox])
                .env("TMPDIR", self.workspaces.path()),
            code::OK,
        )
    }

    fn log(&self, id: &str) -> String {
        String::from_utf8_lossy(&self.cp.log(id)).into_owned()
    }
}

/// What is in `dir`, by name.
fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

const SWAP: &str = "mv \"$SORTIE_WORKSPACE\" \"$SORTIE_WORKSPACE.old\" && ln -s \"$TARGET\" \"$SORTIE_WORKSPACE\" && echo swapped-it";

/// Under `--run-as` a step owns its workspace: it can move it away and leave
/// a symlink to another directory in its place. The job's retry must not be
/// confined for, nor make anything in, the link's target, with the sandbox or
/// without it.
#[test]
fn a_workspace_swapped_for_a_symlink_gives_its_retry_nothing() {
    let r = RunAs::new();
    let target = r.target();
    std::fs::write(target.join("secret.txt"), "root-owned-secret").unwrap();
    for sandbox in ["auto", "off"] {
        let id = format!("swap-{sandbox}");
        let marker = r.workspaces.path().join(&id);
        let script = format!(
            "cat secret.txt; if [ ! -e {marker} ]; then touch {marker}; {SWAP}; exit 1; fi",
            marker = marker.display()
        );
        r.cp.enqueue(json!({
            "id": id, "retry": {"count": 1},
            "steps": [{"exec": ["sh", "-c", script], "env": {"TARGET": target}}],
        }));
        let polled = r.poll(sandbox);
        let said = String::from_utf8_lossy(&polled.stderr);
        assert!(
            said.contains("made in the system's temporary directory"),
            "{said}"
        );
        let log = r.log(&id);
        assert!(log.contains("swapped-it"), "{sandbox}: {log}");
        assert_done(&r.cp.job(&id), "failed");
        assert!(
            log.contains("no longer the directory sortie made"),
            "{sandbox}: {log}"
        );
        assert!(!log.contains("root-owned-secret"), "{sandbox}: {log}");
        assert_eq!(names(&target), ["secret.txt", "step-1.sh"], "{sandbox}");
    }
}

/// The same swap within one attempt: the steps after it must not have sortie
/// (root) write their scripts, data files or anything else into the link's
/// target, nor replace what is there.
#[test]
fn a_workspace_swapped_mid_job_gives_later_steps_nothing() {
    let r = RunAs::new();
    let target = r.target();
    r.cp.enqueue(json!({
        "id": "midswap", "keepgoing": true,
        // The copy's path from an option: checked when the step runs.
        "options": {"dest": "copied"},
        "steps": [
            {"exec": ["sh", "-c", SWAP], "env": {"TARGET": target}},
            {"script": "echo second", "extension": ".sh"},
            {"exec": ["sh", "-c", "echo third > \"$SORTIE_WORKSPACE/tmp/planted\""]},
            {"copy": {"content": "fourth", "dest": "${option.dest}"}},
        ],
    }));
    r.poll("auto");
    let log = r.log("midswap");
    assert!(log.contains("swapped-it"), "{log}");
    assert_done(&r.cp.job("midswap"), "failed");
    assert_eq!(names(&target), ["step-1.sh"], "{log}");
    assert_eq!(
        std::fs::read_to_string(target.join("step-1.sh")).unwrap(),
        "root's own"
    );
}

/// `--run-as` holds with `--sandbox off` too: the steps run as that user,
/// not as root.
#[test]
fn run_as_holds_with_the_sandbox_off() {
    let r = RunAs::new();
    r.cp.enqueue(json!({"id": "who", "steps": [{"exec": ["id", "-u"]}]}));
    r.poll("off");
    assert_done(&r.cp.job("who"), "succeeded");
    let log = r.log("who");
    assert!(log.contains("\"text\":\"65534\\n\""), "{log}");
}

/// A script file that sortie reads itself (to expand its tokens) is read as
/// a step would read it: the runner's token is not one, even with `cat` for
/// its interpreter.
#[test]
fn a_script_file_is_read_within_the_steps_reach() {
    let s = setup();
    s.cp.enqueue(json!({
        "id": "scriptfile",
        "steps": [{"scriptfile": s.token_file, "expand_tokens": true, "interpreter": "cat"}],
    }));
    run(&mut s.poll(), code::OK);
    let log = String::from_utf8_lossy(&s.cp.log("scriptfile")).into_owned();
    assert!(!log.contains(token()), "{log}");
    assert!(log.contains("cannot read"), "{log}");
    assert_done(&s.cp.job("scriptfile"), "failed");
}

/// An HTTP step's CA file is read as a step would read it: naming the
/// runner's token tells nothing of it (not even that it is no certificate).
#[test]
fn an_http_step_s_ca_file_is_read_within_the_steps_reach() {
    let s = setup();
    s.cp.enqueue(json!({
        "id": "httpca",
        "steps": [{"http": {"url": "https://127.0.0.1:1/", "ca_file": s.token_file}}],
    }));
    run(&mut s.poll(), code::OK);
    let log = String::from_utf8_lossy(&s.cp.log("httpca")).into_owned();
    assert!(log.contains("ca_file: cannot read"), "{log}");
    assert!(!log.contains("certificate"), "{log}");
    assert_done(&s.cp.job("httpca"), "failed");
}

/// The control: without the sandbox, the probe reads the token file, so a leak
/// would be seen by the tests above.
#[test]
fn without_the_sandbox_the_probe_does_find_the_token() {
    let s = setup();
    s.enqueue("probe-off");
    run(s.poll().args(["--sandbox", "off"]), code::OK);
    let found = s.probe_output();
    assert!(
        found.contains(&format!("== token file\n{}", token())),
        "{found}"
    );
}

fn chown_all(root: &Path, uid: u32) {
    let status = Command::new("chown")
        .args(["-R", &format!("{uid}:{uid}")])
        .arg(root)
        .status()
        .unwrap();
    assert!(status.success());
}
