//! Node steps over the system's OpenSSH: one connection per node per job, whose
//! one session runs a small step server on the node.
//!
//! The node's `ssh` opens one session (and no control socket: a step running
//! as sortie's user could connect to one) whose remote command line is a fixed
//! loader and a byte count; the
//! loader reads the server from stdin and runs it. Each step then travels on
//! the same stdin — a header, its environment (options, data, the secrets it
//! asked for) and run line, its script — so no value and no secret ever
//! appears in a command line on the node or in sortie's own argv, and N steps
//! on a node cost one TCP connection, one authentication and one session.
//! (`sh -s` cannot be used: a shell reads its script from a pipe in blocks, and
//! would swallow what follows; `head -c` reads exactly.) The server keeps the
//! step's environment in memory and its script in a private directory,
//! refuses a part that arrived short, runs the step in a process group of its own with its output on the session's
//! stdout and stderr, and ends both with the step's random token (stdout's
//! with the exit code), which is how sortie knows where one step's output
//! ends. A `stop` line (the step timed out or was cancelled), or the end of
//! the channel (sortie or its connection is gone), sends the step's group
//! SIGTERM, then SIGKILL after the grace; the end of the channel also ends the
//! server, which removes its directory.
//!
//! Options sortie fixes: `BatchMode=yes`, `StrictHostKeyChecking=yes` against the
//! given known_hosts files only, `ConnectTimeout`, `ServerAliveInterval`, the
//! user's `~/.ssh/config` not read unless `--ssh-config` names one. The `ssh`
//! dies with sortie (`PR_SET_PDEATHSIG`), so a killed runner leaves no session.

use std::ffi::OsString;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender, SyncSender};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::exec::{self, Finished, Observer, Outcome, StopReason, Stream, Supervision, TICK};
use crate::nodes::node::{Node, SshTarget};

/// How nodes are reached, from the runner's settings.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The `ssh` program, looked for on PATH when a node first needs it.
    pub program: Program,
    /// `--known-hosts`: the host keys nodes must present.
    pub known_hosts: Option<PathBuf>,
    /// `--ssh-config`: an ssh_config to read (none: not even the user's own).
    pub config: Option<PathBuf>,
    pub connect_timeout: Duration,
    /// Where each job's node keys and host keys go, in a
    /// directory of its own: a place steps cannot reach.
    pub private_dir: PathBuf,
    /// Use `$SSH_AUTH_SOCK` (an ssh-agent) as well as the node's key.
    pub agent: bool,
}

/// Why a remote node cannot be reached when `ssh` is missing.
pub const NO_SSH: &str = "no ssh program was found on PATH: install OpenSSH's client";

/// The `ssh` program: a shot without a remote node does not search PATH.
#[derive(Debug, Clone, Default)]
pub struct Program(std::sync::OnceLock<Option<PathBuf>>);

impl Program {
    /// Where `ssh` is on PATH, if it is.
    pub fn found(&self) -> Option<&Path> {
        self.0.get_or_init(|| which::which("ssh").ok()).as_deref()
    }
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
    /// The private key file (0600, in `dir`).
    pub key: Option<&'a Path>,
    /// A known_hosts file made from the node's `ssh-host-key` attribute.
    pub known_hosts: Option<&'a Path>,
}

/// A node's connection for one job: its `ssh`, whose one session runs the
/// node's step server.
pub struct Connection {
    node: String,
    session: Mutex<Session>,
}

/// The node's `ssh` and its session's streams.
struct Session {
    ssh: Child,
    /// The server's stdin (steps, and `stop` lines), written on a thread of its
    /// own: a node that stops reading cannot hold a step past its deadline.
    stdin: Option<Sender<Vec<u8>>>,
    /// The session's stdout and stderr, read on two threads.
    rx: Receiver<Chunk>,
    eofs: u8,
    /// Bytes read after a step's end marker, by stream: the next step's.
    carry: [Vec<u8>; 2],
    /// The last of what ssh printed outside a step: why it gave up.
    tail: Vec<u8>,
    /// Why no step can run any more.
    broken: Option<String>,
}

enum Chunk {
    Bytes(Stream, Vec<u8>),
    Eof,
}

/// What the node's server prints first, once it runs.
const READY: &str = "sortie-server-ready\n";

/// How long a stopped step's node has, beyond the grace, to say the step
/// ended before the connection is closed under it.
const STOP_MARGIN: Duration = Duration::from_secs(5);
/// How long closing waits for the node's server to clean up and end.
const CLOSE_WAIT: Duration = Duration::from_secs(3);

impl Connection {
    /// Connect to `node` (authenticated, host key checked) and start the
    /// node's step server for the job's steps. The error is one line, for the
    /// node's result. Given up as soon as `unwanted` says so (a connection
    /// opened ahead for a node the job no longer reaches, or the job stopped).
    pub fn open(
        settings: &Settings,
        node: &str,
        address: &Address,
        credentials: &Credentials<'_>,
        unwanted: &dyn Fn() -> bool,
    ) -> Result<Connection, String> {
        let mut args: Vec<OsString> = vec!["-F".into()];
        args.push(
            settings
                .config
                .clone()
                .unwrap_or_else(|| "/dev/null".into())
                .into(),
        );
        let known_hosts = settings
            .known_hosts
            .iter()
            .map(PathBuf::as_path)
            .chain(credentials.known_hosts)
            .map(ssh_path)
            .collect::<Result<Vec<String>, String>>()?;
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
            // One session carries every step: no control socket, which a
            // step running as sortie's user could otherwise connect to.
            "ControlMaster=no".to_string(),
            "ControlPath=none".to_string(),
        ] {
            args.push("-o".into());
            args.push(option.into());
        }
        let mut identity: Vec<OsString> = Vec::new();
        if let Some(key) = credentials.key {
            // Not `-i`, which ssh checks before it expands `%%`.
            identity.extend(["-o".into(), "IdentitiesOnly=yes".into(), "-o".into()]);
            identity.push(format!("IdentityFile={}", ssh_path(key)?).into());
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
        let program = settings.program.found().ok_or_else(|| NO_SSH.to_string())?;
        let mut ssh = Command::new(program);
        ssh.env_clear()
            .envs(ssh_env())
            .args(&args)
            .args(&identity)
            .args(["-T", "--"])
            .arg(&address.host)
            .arg(format!("{LOADER} {}", SERVER.len()))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut ssh = crate::os::spawn_bound_to_process(ssh)
            .map_err(|e| format!("cannot run {}: {e}", program.display()))?;
        let (tx, rx) = mpsc::sync_channel(8);
        for (stream, pipe) in [
            (
                Stream::Stdout,
                ssh.stdout
                    .take()
                    .map(|p| Box::new(p) as Box<dyn Read + Send>),
            ),
            (
                Stream::Stderr,
                ssh.stderr
                    .take()
                    .map(|p| Box::new(p) as Box<dyn Read + Send>),
            ),
        ] {
            let tx = tx.clone();
            let pipe = pipe.expect("ssh's output is piped");
            std::thread::spawn(move || pump(pipe, stream, &tx));
        }
        // The server waits in the session's stdin until the session opens.
        let stdin = ssh.stdin.take().map(|mut input| {
            let (writer, parts) = mpsc::channel::<Vec<u8>>();
            let _ = writer.send(SERVER.as_bytes().to_vec());
            std::thread::spawn(move || {
                for part in parts {
                    if input.write_all(&part).and_then(|_| input.flush()).is_err() {
                        break;
                    }
                }
            });
            writer
        });
        let mut connection = Connection {
            node: node.to_string(),
            session: Mutex::new(Session {
                ssh,
                stdin,
                rx,
                eofs: 0,
                carry: Default::default(),
                tail: Vec::new(),
                broken: None,
            }),
        };
        let limit = settings.connect_timeout + Duration::from_secs(5);
        let ready = connection
            .wait_ready(limit, &address.host, unwanted)
            .map_err(|why| match why.as_str() {
                HOST_KEY_FAILED => host_key_reason(settings, credentials, address),
                _ => why,
            });
        // ssh has read the key: nothing else needs it.
        if let Some(key) = credentials.key {
            let _ = std::fs::remove_file(key);
        }
        if let Err(e) = ready {
            // No server runs there yet: nothing to wait for.
            connection.abandon();
            return Err(e);
        }
        Ok(connection)
    }

    /// Until the node's server says it is ready (the connection is up and
    /// authenticated, the session open), or why it is not. What the node's
    /// login scripts print before it is dropped.
    fn wait_ready(
        &mut self,
        limit: Duration,
        host: &str,
        unwanted: &dyn Fn() -> bool,
    ) -> Result<(), String> {
        let until = Instant::now() + limit;
        let session = self.session.get_mut().unwrap_or_else(|e| e.into_inner());
        let mut before = Vec::new();
        loop {
            if let Some(at) = memchr::memmem::find(&before, READY.as_bytes()) {
                session.carry[0] = before[at + READY.len()..].to_vec();
                return Ok(());
            }
            if session.eofs == 2 {
                // A login shell that refuses (nologin) says why on stdout.
                if session.tail.is_empty() {
                    session.tail = before;
                }
                return Err(match session.ended() {
                    // Authenticated, then nothing said (a shell like /bin/false).
                    Some(why) if why.starts_with("ssh exited with exit status: 1") => format!(
                        "the session ended before sortie's step server started ({why}): the \
                         node user's login shell refuses sessions or exited"
                    ),
                    Some(why) => why,
                    None => "the session ended".into(),
                });
            }
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(format!("no connection to {host} within {limit:?}"));
            }
            if unwanted() {
                return Err(format!("connecting to {host} was given up"));
            }
            match session.rx.recv_timeout(left.min(TICK)) {
                Ok(Chunk::Bytes(Stream::Stdout, bytes)) => {
                    before.extend_from_slice(&bytes);
                    let over = before.len().saturating_sub(64 * 1024);
                    before.drain(..over);
                }
                Ok(chunk) => session.keep(chunk),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => session.eofs = 2,
            }
        }
    }

    /// Run `step` on the node: its output to `observer` as it arrives, stopped
    /// (through the node's server: SIGTERM to its process group, SIGKILL
    /// after the grace) when `supervision` says so.
    pub fn run(
        &self,
        step: &RemoteStep,
        supervision: &Supervision<'_>,
        observer: &mut dyn Observer,
    ) -> Finished {
        let mut session = self.session.lock().unwrap_or_else(|e| e.into_inner());
        let finished = |outcome, leftovers| Finished {
            outcome,
            leaked: false,
            leftovers,
        };
        if let Some(why) = &session.broken {
            return finished(Outcome::SpawnFailed(why.clone()), 0);
        }
        let token = format!("sortie-{}", crate::ids::uuid());
        if !session.send(&step.request(&token)) {
            return finished(Outcome::SpawnFailed(session.lost(&self.node)), 0);
        }
        let mut ends = [
            EndMarker::new(&token, Stream::Stdout),
            EndMarker::new(&token, Stream::Stderr),
        ];
        for (i, end) in ends.iter_mut().enumerate() {
            let carried = std::mem::take(&mut session.carry[i]);
            end.feed(&carried, observer);
        }
        let mut stopped: Option<(StopReason, Instant)> = None;
        loop {
            if let [EndMarker { end: Some(_), .. }, EndMarker { end: Some(_), .. }] = &ends {
                break;
            }
            if session.eofs == 2 {
                break;
            }
            let mut wait = TICK;
            if let (None, Some(until)) = (stopped, supervision.until) {
                wait = wait.min(until.saturating_duration_since(Instant::now()));
            }
            match session.rx.recv_timeout(wait) {
                Ok(Chunk::Bytes(stream, bytes)) => ends[stream as usize].feed(&bytes, observer),
                Ok(Chunk::Eof) => session.eofs += 1,
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => session.eofs = 2,
            }
            if stopped.is_none() {
                if let Some(reason) = supervision.reason(observer) {
                    session.send(b"stop\n");
                    stopped = Some((reason, Instant::now()));
                }
            }
            if let Some((_, at)) = stopped {
                if at.elapsed() >= supervision.grace + STOP_MARGIN && session.broken.is_none() {
                    // The node does not answer: the connection goes, and the step with it.
                    session.broken = Some(format!(
                        "the connection to node {} was closed: a step on it did not stop",
                        self.node
                    ));
                    let _ = session.ssh.kill();
                }
            }
            observer.tick();
        }
        let [out, err] = ends;
        session.carry = [out.rest, err.rest];
        match (stopped, out.end) {
            // What a stopped step's group still held was being killed anyway.
            (Some((reason, _)), _) => finished(Outcome::Stopped(reason), 0),
            (None, Some(code)) if err.end.is_some() => finished(Outcome::Exited(code), out.left),
            _ => finished(Outcome::SpawnFailed(session.lost(&self.node)), 0),
        }
    }

    /// End the node's server (it removes its directory) and close the
    /// connection.
    /// How many processes the server killed as it ended: processes the
    /// job's steps left running outside their process groups.
    pub fn close(self) -> usize {
        let Connection { node, session } = self;
        let mut session = session.into_inner().unwrap_or_else(|e| e.into_inner());
        drop(session.stdin.take());
        let until = Instant::now() + CLOSE_WAIT;
        while session.eofs < 2 && Instant::now() < until {
            session.idle(Duration::from_millis(50));
        }
        let _ = session.ssh.kill();
        let _ = session.ssh.wait();
        crate::os::forget_child(session.ssh.id());
        tracing::debug!(node = %node, "ssh connection closed");
        swept(&session.tail)
    }

    /// End a connection no step used (or that never stood): its ssh is
    /// killed, with no wait for the node's server, which nothing ran through.
    pub fn abandon(self) {
        let mut session = self.session.into_inner().unwrap_or_else(|e| e.into_inner());
        drop(session.stdin.take());
        let _ = session.ssh.kill();
        let _ = session.ssh.wait();
        crate::os::forget_child(session.ssh.id());
    }

    /// Whether the session still stands: a connection that waited unused
    /// may have been closed by the node (an idle timeout) or the network.
    pub fn stands(&self) -> bool {
        let mut session = self.session.lock().unwrap_or_else(|e| e.into_inner());
        while let Ok(chunk) = session.rx.try_recv() {
            session.keep(chunk);
        }
        session.eofs < 2 && matches!(session.ssh.try_wait(), Ok(None))
    }

    /// The node's name.
    pub fn node(&self) -> &str {
        &self.node
    }
}

impl Session {
    /// Write to the node's server; false when the session is gone.
    fn send(&mut self, bytes: &[u8]) -> bool {
        let sent = self
            .stdin
            .as_ref()
            .is_some_and(|stdin| stdin.send(bytes.to_vec()).is_ok());
        if !sent {
            self.stdin = None;
        }
        sent
    }

    /// Wait up to `limit` for what the session prints outside a step (ssh's own
    /// messages), keeping its end.
    fn idle(&mut self, limit: Duration) {
        match self.rx.recv_timeout(limit) {
            Ok(chunk) => self.keep(chunk),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => self.eofs = 2,
        }
    }

    /// Take what the session printed outside a step: the end of stderr is kept.
    fn keep(&mut self, chunk: Chunk) {
        match chunk {
            Chunk::Bytes(Stream::Stderr, bytes) => {
                self.tail.extend_from_slice(&bytes);
                let over = self.tail.len().saturating_sub(4096);
                self.tail.drain(..over);
            }
            Chunk::Bytes(Stream::Stdout, _) => {}
            Chunk::Eof => self.eofs += 1,
        }
    }

    /// Whether ssh gave up, and its last error line.
    fn ended(&mut self) -> Option<String> {
        // Its pipes closed: it is ending, if it has not ended yet.
        let until = Instant::now() + Duration::from_secs(1);
        let status = loop {
            match self.ssh.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) if self.eofs == 2 && Instant::now() < until => {
                    std::thread::sleep(Duration::from_millis(5))
                }
                _ => return None,
            }
        };
        // What it printed last, read to the end of its pipes.
        let until = Instant::now() + Duration::from_secs(1);
        while self.eofs < 2 && Instant::now() < until {
            self.idle(Duration::from_millis(20));
        }
        let line = last_line(&self.tail);
        Some(if line.is_empty() {
            format!("ssh exited with {status}")
        } else {
            line
        })
    }

    /// The session ended under a step: the node's steps cannot run any more.
    fn lost(&mut self, node: &str) -> String {
        self.stdin = None;
        let why = self.broken.clone().unwrap_or_else(|| {
            let mut reason = self.ended().unwrap_or_else(|| "the session ended".into());
            if reason == "ssh exited with exit status: 255" {
                // ssh's stderr is the step's while it runs: its own words are there.
                reason.push_str(" (ssh's own message, if it gave one, ends the step's stderr)");
            }
            format!("the connection to node {node} failed during the step: {reason}")
        });
        self.broken = Some(why.clone());
        why
    }
}

/// The count of the server's last words on stderr, `sortie-swept N`.
fn swept(tail: &[u8]) -> usize {
    String::from_utf8_lossy(tail)
        .lines()
        .rev()
        .find_map(|l| l.trim().strip_prefix("sortie-swept ")?.parse().ok())
        .unwrap_or(0)
}

/// Read a pipe of the session into the channel, as it arrives.
fn pump(pipe: Box<dyn Read + Send>, stream: Stream, tx: &SyncSender<Chunk>) {
    exec::read_chunks(pipe, |bytes| tx.send(Chunk::Bytes(stream, bytes)).is_ok());
    let _ = tx.send(Chunk::Eof);
}

/// Finds where a step's output ends in a stream of the session: the server
/// prints the step's token there (and on stdout its exit code after it).
/// Everything before goes to the observer, held back only while it could be
/// the start of the token.
struct EndMarker {
    token: Vec<u8>,
    stream: Stream,
    held: Vec<u8>,
    /// Found: the exit code on stdout (0 on stderr).
    end: Option<i32>,
    /// How many processes the step left in its group, which the server killed
    /// (on stdout's marker, after the exit code).
    left: usize,
    /// What followed the marker's line.
    rest: Vec<u8>,
}

impl EndMarker {
    fn new(token: &str, stream: Stream) -> EndMarker {
        EndMarker {
            token: token.as_bytes().to_vec(),
            stream,
            held: Vec::new(),
            end: None,
            left: 0,
            rest: Vec::new(),
        }
    }

    fn feed(&mut self, bytes: &[u8], observer: &mut dyn Observer) {
        if self.end.is_some() {
            self.rest.extend_from_slice(bytes);
            return;
        }
        self.held.extend_from_slice(bytes);
        if let Some(at) = memchr::memmem::find(&self.held, &self.token) {
            let line = self.held[at + self.token.len()..].to_vec();
            if let Some(nl) = line.iter().position(|&b| b == b'\n') {
                if at > 0 {
                    observer.output(self.stream, &self.held[..at]);
                }
                let words = std::str::from_utf8(&line[..nl]).unwrap_or("");
                let mut words = words.split_whitespace().map(|w| w.parse().unwrap_or(0));
                self.end = Some(words.next().unwrap_or(0));
                self.left = words.next().unwrap_or(0).max(0) as usize;
                self.rest = line[nl + 1..].to_vec();
                self.held.clear();
            }
            // Else the marker's line is not all here yet: held.
            return;
        }
        // Keep the longest end of what is held that may begin the token.
        let keep = (1..self.token.len().min(self.held.len() + 1))
            .rev()
            .find(|&k| self.held.ends_with(&self.token[..k]))
            .unwrap_or(0);
        let out = self.held.len() - keep;
        if out > 0 {
            observer.output(self.stream, &self.held[..out]);
            self.held.drain(..out);
        }
    }
}

/// What ssh says of any host key trouble at `LogLevel=ERROR`.
const HOST_KEY_FAILED: &str = "Host key verification failed.";

/// Why ssh refused the node's host key: the known_hosts files sortie gave it
/// either hold another key for the node's name (a changed key, or another
/// host at that address) or none (`ssh-keygen -F` tells which).
fn host_key_reason(
    settings: &Settings,
    credentials: &Credentials<'_>,
    address: &Address,
) -> String {
    let name = match address.port {
        Some(port) if port != 22 => format!("[{}]:{port}", address.host),
        _ => address.host.clone(),
    };
    let keygen = settings
        .program
        .found()
        .and_then(Path::parent)
        .map(|dir| dir.join("ssh-keygen"))
        .filter(|p| p.exists())
        .unwrap_or_else(|| "ssh-keygen".into());
    let files: Vec<&Path> = settings
        .known_hosts
        .iter()
        .map(PathBuf::as_path)
        .chain(credentials.known_hosts)
        .collect();
    if files.is_empty() {
        return format!(
            "host key verification failed: no known_hosts was given (--known-hosts, or the \
             node's ssh-host-key), so {name} cannot be checked"
        );
    }
    let mut asked = false;
    let mut listed = false;
    for file in files {
        let found = Command::new(&keygen)
            .args(["-F", &name, "-f"])
            .arg(file)
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .output();
        if let Ok(out) = found {
            asked = true;
            listed |= out.status.success() && !out.stdout.is_empty();
        }
    }
    match (asked, listed) {
        (false, _) => HOST_KEY_FAILED.to_string(),
        (true, true) => format!(
            "host key verification failed: the key {name} presented is not the one known_hosts \
             holds for it (the node's key changed, or another host answers at that address)"
        ),
        (true, false) => format!(
            "host key verification failed: {name} is not in known_hosts (--known-hosts, or the \
             node's ssh-host-key)"
        ),
    }
}

/// `path` as one word of an ssh option naming a known_hosts or key file:
/// absolute (ssh expands a leading `~`), in double quotes (the option's value
/// is split at blanks) with `\` and `"` escaped, and `%` written `%%` (ssh
/// expands `%` tokens there). ssh also expands `${NAME}` there, with no way
/// to escape it, so a path holding `${` is refused, as is one with a control
/// character or bytes that are not UTF-8.
pub fn ssh_path(path: &Path) -> Result<String, String> {
    let absolute = std::path::absolute(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let text = absolute
        .to_str()
        .filter(|t| !t.contains("${") && !t.chars().any(char::is_control))
        .ok_or_else(|| {
            format!(
                "ssh cannot be given the path {:?}: it holds `${{`, a control character or \
                 bytes that are not UTF-8",
                absolute.display()
            )
        })?;
    let escaped = text
        .replace('\\', r"\\")
        .replace('"', r#"\""#)
        .replace('%', "%%");
    Ok(format!("\"{escaped}\""))
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

/// The remote command: reads exactly `$1` bytes of stdin (the server) and
/// runs them. Fixed text, quoted for any login shell (no `!`, no newline).
const LOADER: &str = r#"sh -c 'b=$(head -c "$1") && eval "$b"' sortie"#;

/// The node's step server. It says it is ready (on stdout, after whatever the
/// login scripts printed), then reads steps from stdin, each a header line
/// (`TOKEN SCRIPT-BYTES GRACE`), the run line (exports and an `exec`, ending
/// in ` #TOKEN`: one that arrived short is refused; a newline in a value is
/// written `'"$5"'`, so the line is read by the shell itself, with no process
/// started) and the script, which goes into a private directory made on first
/// use, followed by a line holding TOKEN (a script that arrived short leaves
/// none, and is refused: no `wc` needed; the file stays executable from one
/// step to the next, so `chmod` runs once). A step runs
/// in a subshell that evaluates the run line (it is never on disk) and execs
/// the step through `setsid` (`$4`), so that it leads a process group of its
/// own (without `setsid`, the shell's job control, if it has any). A watcher
/// reads the next line of stdin — `stop`, or the end of the channel when
/// sortie or its connection is gone — and then sends the group SIGTERM, and
/// SIGKILL after the grace. When the step ends, the watcher and what is left of
/// its group are killed (the watcher with SIGKILL: a SIGTERM that arrives while
/// it is being forked is caught by the server's trap, which it still has, and
/// lost), and TOKEN ends its stderr and its stdout (with the exit code and how
/// many live processes of the step's session were left, as `ps` counts them).
/// What left the group (`setsid`, a daemon's own session) but not the
/// environment it was given holds the server's mark there
/// (`SORTIE_STEP_SERVER`, the server's pid): when the server ends, on a node
/// with `/proc`, every such process is killed (up to five passes, while one
/// finds any: a process that forks as it is swept) and the count is its last
/// word on stderr, `sortie-swept N`. Once per node and job, not per step: a
/// step's `grep` would cost about as much as the step's own shell.
/// Caught signals are reset in the steps; an ignored one would not be. Few
/// processes: a node may run many steps at once.
const SERVER: &str = r#"
trap 'exit 125' HUP PIPE TERM
exec 3<&0
d=
sweep() {
  g=$1
  for _ in 1 2 3 4 5; do
    k=0
    for z in $(grep -lsxzF "SORTIE_STEP_SERVER=$$" /proc/[0-9]*/environ 2>/dev/null); do
      z=${z#/proc/}; z=${z%/environ}
      IFS= read -r y <"/proc/$z/stat" 2>/dev/null || continue
      set -- ${y##*) }
      [ "$3" = "$g" ] || { kill -KILL "$z" 2>/dev/null && k=$((k + 1)); }
    done
    [ "$k" -gt 0 ] || break
    l=$((${l:-0} + k))
  done
}
trap 'l=; sweep 0; [ -z "$l" ] || echo "sortie-swept $l" >&2; [ -z "$d" ] || rm -rf "$d"' EXIT
s=
if command -v setsid >/dev/null 2>&1; then s=setsid; else set -m 2>/dev/null; fi
n='
'
echo sortie-server-ready
while read -r t sl g; do
  case $t in sortie-*) ;; *) continue ;; esac
  IFS= read -r r || r=
  case $r in *" #$t") ;; *) echo "sortie: the step arrived incomplete" >&2; exit 125 ;; esac
  c=
  if [ "$sl" -gt 0 ]; then
    [ -n "$d" ] || d=$(mktemp -d "${TMPDIR:-/tmp}/sortie.XXXXXX") || { d=; c=125; }
    if [ -n "$c" ]; then
      head -c "$sl" >/dev/null
      IFS= read -r e
      echo "sortie: cannot create a directory on the node" >&2
    else
      head -c "$sl" >"$d/step" || { echo "sortie: the step could not be written to $d on the node (is its disk full?)" >&2; exit 125; }
      IFS= read -r e && [ "$e" = "$t" ] && { [ -x "$d/step" ] || chmod 700 "$d/step"; } || { echo "sortie: the step arrived incomplete" >&2; exit 125; }
    fi
  fi
  if [ -z "$c" ]; then
    ( SORTIE_STEP_SERVER=$$; export SORTIE_STEP_SERVER; set -- - "$d/step" "$r" "$s" "$n"; eval "$3" ) </dev/null 3<&- &
    p=$!
    ( read -r _ <&3; kill -TERM -"$p" 2>/dev/null || kill -TERM "$p" 2>/dev/null; sleep "$g"; kill -KILL -"$p" 2>/dev/null || kill -KILL "$p" 2>/dev/null ) >/dev/null 2>&1 </dev/null &
    w=$!
    wait "$p" 2>/dev/null
    c=$?
    kill -KILL "$w" 2>/dev/null
    wait "$w" 2>/dev/null
    if kill -0 -"$p" 2>/dev/null; then
      l=0
      for z in $(ps -o stat= -s "$p" 2>/dev/null); do case $z in Z*) ;; *) l=$((l + 1)) ;; esac; done
      kill -KILL -"$p" 2>/dev/null
    fi
  fi
  printf '%s\n' "$t" >&2
  printf '%s %s %s\n' "$t" "$c" "${l:-0}"
  l=
done
"#;

impl RemoteStep {
    /// What the node's server reads for this step: the header, the run line
    /// (the step's environment and command), the script and, after a script,
    /// the token again.
    pub fn request(&self, token: &str) -> Vec<u8> {
        let mut run = String::new();
        for (k, v) in self.env.iter().filter(|(k, _)| is_name(k)) {
            run.push_str(&format!("export {k}={}; ", quote(v)));
        }
        // `$4` quoted: the step's own IFS (an export above) must not split it.
        run.push_str(&format!("exec ${{4:+\"$4\"}} {} #{token}", self.run));
        // Every newline is inside single quotes (`run`'s words are quoted);
        // one that were not would become part of a word, never a command.
        let run = run.replace('\n', r#"'"$5"'"#);
        let mut out = format!(
            "{token} {} {}\n{run}\n",
            self.script.len(),
            self.grace.as_secs_f64().ceil().max(1.0) as u64
        )
        .into_bytes();
        if !self.script.is_empty() {
            out.extend_from_slice(&self.script);
            out.extend_from_slice(format!("{token}\n").as_bytes());
        }
        out
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

/// The last non-blank line of `bytes`, trimmed.
fn last_line(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes)
        .lines()
        .rfind(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, BufReader};

    /// Keeps what a step printed, by stream.
    #[derive(Default)]
    struct Kept(Vec<u8>, Vec<u8>);

    impl Observer for Kept {
        fn output(&mut self, stream: Stream, bytes: &[u8]) {
            match stream {
                Stream::Stdout => self.0.extend_from_slice(bytes),
                Stream::Stderr => self.1.extend_from_slice(bytes),
            }
        }
        fn tick(&mut self) {}
        fn aborted(&self) -> bool {
            false
        }
    }

    #[test]
    fn a_step_s_output_ends_at_its_token_however_the_bytes_are_split() {
        let token = "sortie-0123";
        let stream = b"no newline at the end: sortie-012 is not it; sortie-0123 7\nnext";
        for size in 1..stream.len() {
            let mut end = EndMarker::new(token, Stream::Stdout);
            let mut kept = Kept::default();
            for chunk in stream.chunks(size) {
                end.feed(chunk, &mut kept);
            }
            assert_eq!(
                String::from_utf8_lossy(&kept.0),
                "no newline at the end: sortie-012 is not it; ",
                "chunks of {size}"
            );
            assert_eq!(end.end, Some(7));
            assert_eq!(end.rest, b"next");
        }
        // Until the token comes, all but what may begin it is passed on.
        let mut end = EndMarker::new(token, Stream::Stderr);
        let mut kept = Kept::default();
        end.feed(b"abc sortie-01", &mut kept);
        assert_eq!((kept.1.as_slice(), end.end), (&b"abc "[..], None));
    }

    /// The server in a local shell, fed as ssh would feed it.
    struct Server {
        child: Child,
        out: BufReader<std::process::ChildStdout>,
        tmp: tempfile::TempDir,
    }

    impl Server {
        fn start() -> Server {
            Server::with(&[])
        }

        fn with(env: &[(&str, &str)]) -> Server {
            let tmp = tempfile::tempdir().unwrap();
            let mut child = Command::new("sh")
                .args(["-c", &format!("{LOADER} {}", SERVER.len())])
                .env("TMPDIR", tmp.path())
                .envs(env.iter().copied())
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            let mut stdin = child.stdin.take().unwrap();
            stdin.write_all(SERVER.as_bytes()).unwrap();
            child.stdin = Some(stdin);
            let mut out = BufReader::new(child.stdout.take().unwrap());
            let mut ready = String::new();
            out.read_line(&mut ready).unwrap();
            assert_eq!(ready, READY);
            Server { child, out, tmp }
        }

        fn send(&mut self, bytes: &[u8]) {
            self.child.stdin.as_mut().unwrap().write_all(bytes).unwrap();
        }

        /// Sends `short` and ends the channel: the server refuses the step
        /// as incomplete, and `made` (what the step would make) is not made.
        fn refuses_short(&mut self, short: &[u8], made: &std::path::Path) {
            self.send(short);
            drop(self.child.stdin.take());
            let mut stderr = String::new();
            let mut pipe = self.child.stderr.take().unwrap();
            std::io::Read::read_to_string(&mut pipe, &mut stderr).unwrap();
            assert_eq!(self.child.wait().unwrap().code(), Some(125));
            assert!(stderr.contains("the step arrived incomplete"), "{stderr}");
            assert!(!made.exists());
        }

        /// Stdout up to the token's line, and the exit code and leftover
        /// count on it.
        fn until(&mut self, token: &str) -> (String, i32, usize) {
            let mut text = String::new();
            loop {
                let mut line = String::new();
                assert!(self.out.read_line(&mut line).unwrap() > 0, "ended: {text}");
                if let Some(end) = line.strip_prefix(token) {
                    let words: Vec<&str> = end.split_whitespace().collect();
                    return (text, words[0].parse().unwrap(), words[1].parse().unwrap());
                }
                text.push_str(&line);
            }
        }
    }

    fn step(script: &str) -> RemoteStep {
        RemoteStep {
            env: vec![("GREETING".into(), "it's 'here' $HOME".into())],
            script: script.as_bytes().to_vec(),
            run: "sh \"$2\"".into(),
            grace: Duration::from_secs(1),
        }
    }

    #[test]
    fn the_node_s_server_runs_steps_in_turn_and_stops_one_on_a_stop_line() {
        let mut server = Server::start();
        server.send(&step("echo \"$GREETING\"; exit 3").request("sortie-a"));
        assert_eq!(
            server.until("sortie-a"),
            ("it's 'here' $HOME\n".into(), 3, 0)
        );
        // A stray stop line between steps is ignored.
        server.send(b"stop\n");
        let stubborn = step("trap '' TERM; echo started; sleep 30 & wait; wait");
        server.send(&stubborn.request("sortie-b"));
        let mut line = String::new();
        server.out.read_line(&mut line).unwrap();
        assert_eq!(line, "started\n");
        server.send(b"stop\n");
        // SIGTERM is ignored: SIGKILL after the grace.
        // (What its group still holds is being killed: sortie does not count it.)
        let (text, code, _) = server.until("sortie-b");
        assert_eq!((text.as_str(), code), ("", 128 + 9));
        server.send(&step("echo still here; sleep 60 &").request("sortie-c"));
        // What it left running is killed, and counted.
        assert_eq!(server.until("sortie-c"), ("still here\n".into(), 0, 1));
        // What left its process group stays for the job's later steps (its
        // own), and goes, by the mark in its environment, when the server
        // ends; one that keeps forking as it is swept is swept again.
        server.send(
            &step("setsid sleep 61 & a=$!; setsid sleep 62 & sleep 0.3; echo $a $!")
                .request("sortie-d"),
        );
        let (text, code, left) = server.until("sortie-d");
        assert_eq!((code, left), (0, 0), "{text}");
        let storm = "setsid sh -c 'while :; do sleep 100 & sleep 0.01; done' & sleep 0.3";
        server.send(&step(storm).request("sortie-e"));
        assert_eq!(server.until("sortie-e").1, 0);
        let ended = |pid: &str| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            stat.is_empty() || stat.rsplit(") ").next().is_some_and(|s| s.starts_with('Z'))
        };
        assert!(
            !text.split_whitespace().any(ended),
            "running until the end: {text}"
        );
        let mark = format!("SORTIE_STEP_SERVER={}", server.child.id());
        let marked = || {
            std::fs::read_dir("/proc")
                .unwrap()
                .flatten()
                .filter(|e| {
                    let pid = e.file_name().to_string_lossy().into_owned();
                    let environ = std::fs::read(e.path().join("environ")).unwrap_or_default();
                    !ended(&pid) && environ.split(|b| *b == 0).any(|v| v == mark.as_bytes())
                })
                .count()
        };
        drop(server.child.stdin.take());
        let mut stderr = String::new();
        let mut pipe = server.child.stderr.take().unwrap();
        std::io::Read::read_to_string(&mut pipe, &mut stderr).unwrap();
        assert!(server.child.wait().unwrap().success());
        let count = swept(stderr.as_bytes());
        assert!(count >= 4, "{count}: {stderr}");
        let until = Instant::now() + Duration::from_secs(5);
        while marked() > 0 && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert_eq!(marked(), 0, "marked processes left");
        assert!(text.split_whitespace().all(ended), "{text}");
        assert_eq!(std::fs::read_dir(server.tmp.path()).unwrap().count(), 0);
    }

    #[test]
    fn paths_reach_ssh_quoted_with_their_percent_signs_doubled() {
        let path = Path::new("/a b/%d\"q\\z");
        assert_eq!(ssh_path(path).unwrap(), r#""/a b/%%d\"q\\z""#);
        let relative = ssh_path(Path::new("known_hosts")).unwrap();
        assert!(relative.starts_with("\"/") && relative.ends_with("/known_hosts\""));
        for refused in ["/x${HOME}/k", "/x\ny"] {
            let error = ssh_path(Path::new(refused)).unwrap_err();
            assert!(error.contains("ssh cannot be given the path"), "{error}");
        }
    }

    #[test]
    fn a_node_without_a_temporary_directory_still_runs_exec_steps() {
        let mut server = Server::with(&[("TMPDIR", "/nonexistent")]);
        server.send(&step("echo \"$GREETING\"").request("sortie-a"));
        // No directory for the script: that step fails, the next runs.
        assert_eq!(server.until("sortie-a"), (String::new(), 125, 0));
        let exec = RemoteStep {
            script: Vec::new(),
            run: "printf '%s\\n' \"$GREETING\"".into(),
            ..step("")
        };
        server.send(&exec.request("sortie-b"));
        assert_eq!(
            server.until("sortie-b"),
            ("it's 'here' $HOME\n".into(), 0, 0)
        );
    }

    #[test]
    fn values_and_words_with_newlines_arrive_as_they_were() {
        let mut server = Server::start();
        let value = "one\n'two' \"$5\"\n\n$(touch x)\\\n";
        let exec = RemoteStep {
            // `n` is the server's own newline, `IFS` does not split the run
            // line: a step's variables change neither.
            env: vec![
                ("n".into(), "N".into()),
                ("IFS".into(), "st".into()),
                ("V".into(), value.into()),
            ],
            script: Vec::new(),
            run: format!("printf '%s|%s|\\n' \"$V\" {}", quote("a\nb")),
            grace: Duration::from_secs(1),
        };
        server.send(&exec.request("sortie-a"));
        let (text, code, _) = server.until("sortie-a");
        assert_eq!((text, code), (format!("{value}|a\nb|\n"), 0));
    }

    #[test]
    fn a_script_is_run_only_whole_and_stays_executable_between_steps() {
        let mut server = Server::start();
        // A step that takes the execute bit from its own file: the next one still runs.
        let first = RemoteStep {
            env: Vec::new(),
            script: b"#!/bin/sh\nchmod 600 \"$0\"; echo first\n".to_vec(),
            run: r#""$2""#.into(),
            grace: Duration::from_secs(1),
        };
        server.send(&first.request("sortie-a"));
        assert_eq!(server.until("sortie-a"), ("first\n".into(), 0, 0));
        let second = RemoteStep {
            script: b"#!/bin/sh\necho second\n".to_vec(),
            ..first
        };
        server.send(&second.request("sortie-b"));
        assert_eq!(server.until("sortie-b"), ("second\n".into(), 0, 0));
        // A script cut short is never run, though what arrived is a whole command.
        let made = server.tmp.path().join("made");
        let whole = format!("touch {}\necho more\n", quote(&made.display().to_string()));
        let mut short = RemoteStep {
            script: whole.into_bytes(),
            run: r#"sh "$2""#.into(),
            ..second
        }
        .request("sortie-c");
        short.truncate(short.len() - "sortie-c\n".len() - "echo more\n".len());
        server.refuses_short(&short, &made);
    }

    #[test]
    fn a_step_that_arrives_short_is_not_run() {
        let mut server = Server::start();
        let made = server.tmp.path().join("made");
        let mut short = RemoteStep {
            env: Vec::new(),
            script: Vec::new(),
            run: format!("touch {}", quote(&made.display().to_string())),
            grace: Duration::from_secs(1),
        }
        .request("sortie-a");
        // Cut inside the run line's token: what arrived is a whole command.
        short.truncate(short.len() - 3);
        server.refuses_short(&short, &made);
        assert_eq!(std::fs::read_dir(server.tmp.path()).unwrap().count(), 0);
    }
}
