//! Node steps over the system's OpenSSH: one master connection per node per job,
//! and each step a supervised local `ssh` whose stdin carries the work.
//!
//! The runner turns "this step on that node" into a local process the executor
//! supervises like any other: `ssh -S CONTROL … -- HOST LOADER N…`. The
//! remote command line is a fixed loader and byte counts; everything else — a
//! small bootstrap, the step's environment (options, data, the secrets it asked
//! for), its script and its run line — travels on stdin, so no value and no
//! secret ever appears in a command line on the node or in sortie's own argv.
//! (`sh -s` cannot be used: a shell reads its script from a pipe in blocks, and
//! would swallow what follows the bootstrap; `head -c` reads exactly.) The
//! bootstrap writes the parts into a private directory, refuses to run a part
//! that arrived short, runs the step in a process group of its own (`setsid`,
//! else the shell's job control), and keeps
//! reading stdin: when the channel closes (the step timed out or was cancelled
//! and sortie stopped its `ssh`, or sortie died) it sends the group SIGTERM,
//! then SIGKILL after the grace, and removes the directory.
//!
//! Options sortie fixes: `BatchMode=yes`, `StrictHostKeyChecking=yes` against the
//! given known_hosts files only, `ConnectTimeout`, `ServerAliveInterval`, the
//! user's `~/.ssh/config` not read unless `--ssh-config` names one. The master
//! dies with sortie (`PR_SET_PDEATHSIG`), so a killed runner leaves no session.

use std::ffi::OsString;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::exec;
use crate::nodes::node::{Node, SshTarget};

/// How nodes are reached, from the runner's settings.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The `ssh` program, found on PATH.
    pub program: PathBuf,
    /// `--known-hosts`: the host keys nodes must present.
    pub known_hosts: Option<PathBuf>,
    /// `--ssh-config`: an ssh_config to read (none: not even the user's own).
    pub config: Option<PathBuf>,
    pub connect_timeout: Duration,
    /// Where each job's node keys, host keys and control sockets go, in a
    /// directory of its own: a place steps cannot reach (short: a socket path
    /// is at most 108 bytes).
    pub private_dir: PathBuf,
    /// Use `$SSH_AUTH_SOCK` (an ssh-agent) as well as the node's key.
    pub agent: bool,
}

/// Where a node is, checked: nothing in it may be taken by ssh as an option.
#[derive(Debug, Clone)]
pub struct Address {
    pub user: Option<String>,
    pub host: String,
    pub port: Option<u16>,
}

impl Address {
    /// The node's SSH address: its hostname (`user@host:port`), `username` and
    /// `ssh-port` attributes.
    pub fn of(node: &Node) -> Result<Address, String> {
        let SshTarget { user, host, port } = node.ssh_target().map_err(|e| format!("{e:#}"))?;
        let port = match node.attributes.get("ssh-port") {
            Some(p) => Some(
                p.trim()
                    .parse::<u16>()
                    .map_err(|_| format!("node {:?}: ssh-port {p:?} is not a port", node.name))?,
            ),
            None => port,
        };
        let safe = |s: &str| {
            !s.is_empty()
                && !s.starts_with('-')
                && !s.chars().any(|c| c.is_whitespace() || c.is_control())
        };
        if !safe(&host) {
            return Err(format!("node {:?}: host {host:?} is not usable", node.name));
        }
        if let Some(user) = user.as_deref().filter(|u| !safe(u)) {
            return Err(format!("node {:?}: user {user:?} is not usable", node.name));
        }
        Ok(Address { user, host, port })
    }
}

/// What one node needs beyond its address.
pub struct Credentials<'a> {
    /// The job's private directory (under [`Settings::private_dir`]).
    pub dir: &'a Path,
    /// The private key file (0600, in `dir`).
    pub key: Option<&'a Path>,
    /// A known_hosts file made from the node's `ssh-host-key` attribute.
    pub known_hosts: Option<&'a Path>,
}

/// A node's master connection for one job.
pub struct Connection {
    node: String,
    master: Child,
    args: Vec<OsString>,
    program: PathBuf,
    control: PathBuf,
}

impl Connection {
    /// Connect to `node` (authenticated, host key checked) and keep the
    /// connection for the job's steps. The error is one line, for the node's result.
    pub fn open(
        settings: &Settings,
        node: &str,
        address: &Address,
        credentials: &Credentials<'_>,
    ) -> Result<Connection, String> {
        let control = credentials
            .dir
            .join(format!("{:016x}", crate::ids::short_hash(node.as_bytes())));
        if control.as_os_str().len() > 100 {
            return Err(format!(
                "the control socket {} would be too long for a socket path",
                control.display()
            ));
        }
        let mut args: Vec<OsString> = vec!["-F".into()];
        args.push(
            settings
                .config
                .clone()
                .unwrap_or_else(|| "/dev/null".into())
                .into(),
        );
        let known_hosts: Vec<String> = settings
            .known_hosts
            .iter()
            .map(PathBuf::as_path)
            .chain(credentials.known_hosts)
            .map(|p| p.display().to_string())
            .collect();
        let known_hosts = if known_hosts.is_empty() {
            "/dev/null".to_string()
        } else {
            known_hosts.join(" ")
        };
        for option in [
            "BatchMode=yes".to_string(),
            "StrictHostKeyChecking=yes".to_string(),
            format!("UserKnownHostsFile={known_hosts}"),
            "GlobalKnownHostsFile=/dev/null".to_string(),
            format!(
                "ConnectTimeout={}",
                settings.connect_timeout.as_secs().max(1)
            ),
            "ServerAliveInterval=15".to_string(),
            "ServerAliveCountMax=3".to_string(),
            "LogLevel=ERROR".to_string(),
            format!("ControlPath={}", control.display()),
        ] {
            args.push("-o".into());
            args.push(option.into());
        }
        // Only the master authenticates: the steps' clients go through it.
        let mut identity: Vec<OsString> = Vec::new();
        if let Some(key) = credentials.key {
            identity.extend(["-o".into(), "IdentitiesOnly=yes".into(), "-i".into()]);
            identity.push(key.into());
        }
        if !settings.agent {
            args.extend(["-o".into(), "IdentityAgent=none".into()]);
        }
        if let Some(port) = address.port {
            args.extend(["-p".into(), port.to_string().into()]);
        }
        if let Some(user) = &address.user {
            args.extend(["-l".into(), user.into()]);
        }
        let mut master = Command::new(&settings.program);
        master
            .env_clear()
            .envs(ssh_env())
            .args(&args)
            .args(&identity)
            .args(["-M", "-N", "-o", "ControlPersist=no", "--"])
            .arg(&address.host)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let master = crate::os::spawn_bound_to_process(master)
            .map_err(|e| format!("cannot run {}: {e}", settings.program.display()))?;
        let mut connection = Connection {
            node: node.to_string(),
            master,
            args,
            program: settings.program.clone(),
            control,
        };
        let limit = settings.connect_timeout + Duration::from_secs(5);
        let ready = connection.wait_ready(limit, &address.host);
        // The master has read the key: steps go through it and need no key.
        if let Some(key) = credentials.key {
            let _ = std::fs::remove_file(key);
        }
        if let Err(e) = ready {
            connection.close(&address.host);
            return Err(e);
        }
        Ok(connection)
    }

    /// Until the master is up (it has made its control socket once
    /// authenticated), or why it is not.
    fn wait_ready(&mut self, limit: Duration, host: &str) -> Result<(), String> {
        use std::os::unix::fs::FileTypeExt;
        let until = Instant::now() + limit;
        loop {
            if std::fs::symlink_metadata(&self.control).is_ok_and(|m| m.file_type().is_socket()) {
                return Ok(());
            }
            if let Some(reason) = self.reason() {
                return Err(reason);
            }
            if Instant::now() >= until {
                return Err(format!("no connection to {host} within {limit:?}"));
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Whether the master connection still stands (`ssh -O check`).
    pub fn alive(&self, host: &str) -> bool {
        self.control("check", host)
    }

    /// Send the master a control command (`ssh -O check|exit`); whether it succeeded.
    fn control(&self, operation: &str, host: &str) -> bool {
        crate::os::run_kept(
            Command::new(&self.program)
                .args(&self.args)
                .args(["-O", operation, "--", host])
                .env_clear()
                .envs(ssh_env())
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null()),
        )
        .is_ok_and(|s| s.success())
    }

    /// The command that runs `step` on the node through this connection.
    pub fn command(&self, step: &RemoteStep, host: &str) -> exec::Command {
        let mut args = self.args.clone();
        args.extend(["-T".into(), "--".into(), host.into()]);
        let (payload, command) = step.payload();
        args.push(command.into());
        exec::Command {
            program: self.program.clone().into(),
            args,
            env: ssh_env(),
            cwd: std::env::temp_dir(),
            confinement: exec::Confinement::default(),
            stdin: exec::Input::Held(payload),
        }
    }

    /// Close the master connection.
    pub fn close(mut self, host: &str) {
        self.control("exit", host);
        let _ = self.master.kill();
        let _ = self.master.wait();
        crate::os::forget_child(self.master.id());
        let _ = std::fs::remove_file(&self.control);
        tracing::debug!(node = %self.node, "ssh connection closed");
    }
}

/// The environment of the local `ssh`: the runner's PATH, HOME and locale, and
/// the agent's socket; nothing else of the runner's.
fn ssh_env() -> Vec<(String, String)> {
    ["PATH", "HOME", "LANG", "USER", "LOGNAME", "SSH_AUTH_SOCK"]
        .iter()
        .filter_map(|k| std::env::var(k).ok().map(|v| (k.to_string(), v)))
        .collect()
}

/// A step for a node: its environment, its script, how to run it.
pub struct RemoteStep {
    pub env: Vec<(String, String)>,
    /// The file the step runs (a shell script, an inline script's body…).
    pub script: Vec<u8>,
    /// The command that runs it, in `sh` syntax, with `"$2"` for the file's
    /// path; every word that comes from the job is single-quoted. It runs in
    /// the directory the session starts in (the user's home), as Rundeck's
    /// steps do; only the script is kept in a private directory.
    pub run: String,
    /// Time between SIGTERM and SIGKILL when the step is stopped.
    pub grace: Duration,
}

/// The remote command: reads exactly `$1` bytes of stdin (the bootstrap) and
/// runs them; `$2` is the size of the script that follows, `$3` the grace in
/// seconds. Fixed text, quoted for any login shell (no `!`, no newline).
const LOADER: &str = r#"sh -c 'b=$(head -c "$1") && eval "$b"' sortie"#;

/// The bootstrap, after `r=RUN` (the step's exports and its `exec` line, one
/// quoted word). Few processes: a node may run many steps at once.
const BOOTSTRAP: &str = r#"
exec 3<&0
d=$(mktemp -d "${TMPDIR:-/tmp}/sortie.XXXXXX") || { echo "sortie: cannot create a directory on the node" >&2; exit 125; }
trap 'rm -rf "$d"' EXIT
printf '%s\n' "$r" >"$d/run" || exit 125
unset r
if [ "$2" -gt 0 ]; then
  head -c "$2" >"$d/step" && [ "$(wc -c <"$d/step")" -eq "$2" ] && chmod 700 "$d/step" || { echo "sortie: the step arrived incomplete" >&2; exit 125; }
fi
if command -v setsid >/dev/null 2>&1; then
  setsid sh -c '. "$1"' sortie "$d/run" "$d/step" </dev/null 3<&- &
else
  set -m 2>/dev/null
  sh -c '. "$1"' sortie "$d/run" "$d/step" </dev/null 3<&- &
fi
pid=$!
( while read -r _; do :; done <&3; kill -TERM -"$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null; sleep "$3"; kill -KILL -"$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null ) >/dev/null 2>&1 &
w=$!
# The channel may be gone by the end: nothing written to it may stop the cleanup.
trap '' PIPE
exec 2>/dev/null
wait "$pid"
rc=$?
kill "$w" 2>/dev/null
exit "$rc"
"#;

impl RemoteStep {
    /// Everything the node reads on stdin (the bootstrap with the step's
    /// environment and run line, then the script), and the remote command
    /// that reads it.
    pub fn payload(&self) -> (Vec<u8>, String) {
        let mut run = String::new();
        for (k, v) in self.env.iter().filter(|(k, _)| is_name(k)) {
            run.push_str(&format!("export {k}={}\n", quote(v)));
        }
        run.push_str(&format!("exec {}", self.run));
        let bootstrap = format!("r={}{BOOTSTRAP}", quote(&run));
        let command = format!(
            "{LOADER} {} {} {}",
            bootstrap.len(),
            self.script.len(),
            self.grace.as_secs().max(1)
        );
        let mut out = bootstrap.into_bytes();
        out.extend_from_slice(&self.script);
        (out, command)
    }
}

/// Whether `name` is a shell variable name (`[A-Za-z_][A-Za-z0-9_]*`).
pub fn is_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// `value` as one single-quoted shell word (every `'` written `'\''`).
pub fn quote(value: &str) -> String {
    format!("'{}'", value.replace('\'', r"'\''"))
}

/// Read what a finished child printed on stderr (bounded).
fn read_stderr(child: &mut Child) -> String {
    let mut text = String::new();
    if let Some(err) = child.stderr.as_mut() {
        let _ = err.take(4096).read_to_string(&mut text);
    }
    text.lines()
        .rfind(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim()
        .to_string()
}

impl Connection {
    /// Whether the master gave up, and its last error line.
    pub fn reason(&mut self) -> Option<String> {
        match self.master.try_wait() {
            Ok(Some(status)) => {
                let line = read_stderr(&mut self.master);
                Some(if line.is_empty() {
                    format!("ssh exited with {status}")
                } else {
                    line
                })
            }
            _ => None,
        }
    }
}
