//! Test support: certificates, a control plane on loopback, and running `sortie`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use serde_json::Value;
use sortie_control_plane::pki::{Authority, Pair};
use sortie_control_plane::{Config, Job, Phase, Server, Timing, Tls};
use tempfile::TempDir;

use crate::fault_proxy::{Fault, FaultProxy};

pub const RUNNER_TOKEN: &str = "runner-token-for-tests";
pub const ADMIN_TOKEN: &str = "admin-token-for-tests";

/// Exit codes, as sortie publishes them.
pub use sortie_protocol::exit as code;

pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(name)
}

pub fn fixture_json(name: &str) -> Value {
    serde_json::from_slice(&std::fs::read(fixture(name)).unwrap()).unwrap()
}

/// A CA, its server certificate for 127.0.0.1, and files for both.
pub struct Pki {
    pub ca: Authority,
    pub server: Pair,
    pub ca_file: PathBuf,
}

impl Pki {
    pub fn new(dir: &Path, name: &str) -> Pki {
        let ca = Authority::generate(&format!("{name} CA")).unwrap();
        let server = ca.server(&["localhost", "127.0.0.1"]).unwrap();
        let ca_file = dir.join(format!("{name}-ca.pem"));
        std::fs::write(&ca_file, ca.cert_pem()).unwrap();
        Pki {
            ca,
            server,
            ca_file,
        }
    }

    /// A client certificate and key written to files; returns (cert, key).
    pub fn client_files(&self, dir: &Path, cn: &str) -> (PathBuf, PathBuf) {
        let pair = self.ca.client(cn).unwrap();
        let cert = dir.join(format!("{cn}.pem"));
        let key = dir.join(format!("{cn}.key"));
        std::fs::write(&cert, pair.cert_pem).unwrap();
        std::fs::write(&key, pair.key_pem).unwrap();
        (cert, key)
    }
}

#[derive(Default)]
pub struct Options {
    /// Require client certificates from this CA file (runners then reach the
    /// control plane directly, without the fault proxy, which holds no client
    /// certificate).
    pub client_ca: Option<PathBuf>,
    pub timing: Option<Timing>,
    /// Serve this certificate instead of one for 127.0.0.1 from the control plane's CA.
    pub server_cert: Option<Pair>,
    /// `--one-line-events`: claims do not offer multi-line output events.
    pub one_line_events: bool,
}

/// The reference control plane on a loopback port, over TLS, with its own temp
/// dir, behind the fault proxy (which runners talk to).
pub struct ControlPlane {
    pub server: Server,
    proxy: Option<FaultProxy>,
    /// Holds the control plane's state and certificates until the test ends.
    _dir: TempDir,
    pub pki: Pki,
    pub token_file: PathBuf,
}

impl ControlPlane {
    pub fn start() -> ControlPlane {
        ControlPlane::with(Options::default())
    }

    pub fn with(options: Options) -> ControlPlane {
        let dir = TempDir::new().unwrap();
        let pki = Pki::new(dir.path(), "cp");
        let token_file = dir.path().join("token");
        std::fs::write(&token_file, format!("{RUNNER_TOKEN}\n")).unwrap();
        let pair = options
            .server_cert
            .clone()
            .unwrap_or_else(|| pki.server.clone());
        let direct = options.client_ca.is_some();
        let server = Server::start(Config {
            listen: "127.0.0.1:0".parse().unwrap(),
            state_dir: dir.path().join("state"),
            database: Default::default(),
            tls: Tls::Pem {
                cert: pair.cert_pem.clone(),
                key: pair.key_pem.clone(),
            },
            client_ca: options.client_ca,
            runner_token: Some(RUNNER_TOKEN.to_string()),
            admin_token: ADMIN_TOKEN.to_string(),
            timing: options.timing.unwrap_or_default(),
            log_multiline: !options.one_line_events,
        })
        .unwrap();
        let proxy = (!direct).then(|| {
            FaultProxy::start(
                server_tls(&pair),
                &server.url(),
                pki.ca.cert_pem().as_bytes(),
            )
        });
        ControlPlane {
            server,
            proxy,
            _dir: dir,
            pki,
            token_file,
        }
    }

    fn proxy(&self) -> &FaultProxy {
        self.proxy
            .as_ref()
            .expect("a control plane that requires client certificates has no fault proxy")
    }

    /// Arm a fault in the proxy between runners and the control plane.
    pub fn inject(&self, fault: Fault) {
        self.proxy().inject(fault);
    }

    pub fn clear_faults(&self) {
        self.proxy().clear_faults();
    }

    /// Answer claims as a control plane that predates the protocol's extensions.
    pub fn hide_extensions(&self) {
        self.proxy().hide_extensions();
    }

    /// Have the proxy refuse request bodies larger than `bytes` (413).
    pub fn limit_bodies(&self, bytes: u64) {
        self.proxy().limit_bodies(bytes);
    }

    /// Every byte runners sent to the control plane.
    pub fn received(&self) -> Vec<u8> {
        self.proxy().received()
    }

    /// The URL runners use: the proxy's, or the server's without one.
    pub fn url(&self) -> String {
        match &self.proxy {
            Some(proxy) => proxy.url().to_string(),
            None => self.server.url(),
        }
    }

    /// The port runners connect to.
    pub fn port(&self) -> u16 {
        let url = self.url();
        let port = url.trim_end_matches('/').rsplit(':').next().unwrap();
        port.parse().unwrap()
    }

    pub fn enqueue(&self, spec: Value) -> String {
        self.server
            .store()
            .enqueue("admin:test", spec, Vec::new(), None)
            .unwrap()
    }

    pub fn job(&self, id: &str) -> Job {
        self.server
            .store()
            .job(id)
            .unwrap()
            .expect("the job exists")
    }

    pub fn log(&self, id: &str) -> Vec<u8> {
        self.server.store().log_window(id, 0, usize::MAX).unwrap()
    }

    /// A `sortie poll` command with the server, CA, token and a fresh state dir.
    pub fn poll(&self, state: &Path) -> Command {
        let mut cmd = sortie();
        cmd.arg("poll")
            .arg("--server")
            .arg(self.url())
            .arg("--ca-file")
            .arg(&self.pki.ca_file)
            .arg("--token-file")
            .arg(&self.token_file)
            .arg("--state-dir")
            .arg(state)
            .arg("--runner-id")
            .arg("test-runner");
        cmd
    }
}

/// The `sortie` binary with a clean environment: no SORTIE_* or proxy variables.
pub fn sortie() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sortie"));
    cmd.env_clear();
    for key in ["PATH", "HOME", "LANG", "TMPDIR"] {
        if let Ok(v) = std::env::var(key) {
            cmd.env(key, v);
        }
    }
    cmd
}

/// A `sortie poll` of the spool at `spool` with its own state dir.
pub fn spool_poll(spool: &Path, state: &Path) -> Command {
    let mut cmd = sortie();
    cmd.arg("poll")
        .arg("--server")
        .arg(format!("dir:{}", spool.display()))
        .arg("--state-dir")
        .arg(state)
        .arg("--runner-id")
        .arg("spool-runner");
    cmd
}

/// Run a command; on an unexpected exit code, fail with everything needed to see why.
pub fn run(cmd: &mut Command, expected: u8) -> Output {
    let output = cmd.output().expect("sortie runs");
    if output.status.code() != Some(i32::from(expected)) {
        panic!(
            "expected exit {expected}, got {:?}\ncommand: {:?}\n--- stdout\n{}\n--- stderr\n{}",
            output.status.code(),
            cmd,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    output
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Parse an NDJSON log and check log format v1's framing: one event per line, seq without gaps.
pub fn events(log: &[u8]) -> Vec<Value> {
    assert!(
        log.is_empty() || log.ends_with(b"\n"),
        "the log ends with a newline"
    );
    let events: Vec<Value> = log
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice(l).expect("every log line is JSON"))
        .collect();
    for (i, e) in events.iter().enumerate() {
        assert_eq!(e["seq"], i as u64, "seq counts from 0 without gaps: {e}");
        assert!(e["ts"].as_str().is_some_and(|t| t.ends_with('Z')), "{e}");
    }
    events
}

/// The concatenated `text` of the output events of one stream.
pub fn output_text(events: &[Value], stream: &str) -> String {
    events
        .iter()
        .filter(|e| e["kind"] == "output" && e["stream"] == stream)
        .filter_map(|e| e["text"].as_str())
        .collect()
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Wait until `f` is true, failing after `limit` (readiness, not timing: `f` is polled).
pub fn wait_for(what: &str, limit: Duration, mut f: impl FnMut() -> bool) {
    let until = Instant::now() + limit;
    while !f() {
        assert!(Instant::now() < until, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The job is terminal with this completion status.
pub fn assert_done(job: &Job, status: &str) {
    assert_eq!(job.phase, Phase::Done, "job {} is {:?}", job.id, job.phase);
    let completion = job.completion.as_ref().unwrap();
    assert_eq!(completion.status.as_str(), status, "{completion:?}");
}

/// A program of the test peers installed by tests/peers/install.sh.
pub fn peer(name: &str) -> PathBuf {
    let peers = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-peers");
    let in_venv = peers.join("venv/bin").join(name);
    let in_cargo = peers.join("cargo/bin").join(name);
    let path = if in_venv.exists() {
        in_venv
    } else if in_cargo.exists() {
        in_cargo
    } else {
        peers.join(name)
    };
    assert!(
        path.exists(),
        "{} is missing: run `sh tests/peers/install.sh` first (README, \"Try it\")",
        path.display()
    );
    path
}

/// A port the OS says is free now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A child process killed when the test ends.
pub struct Daemon(pub std::process::Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Start a server and wait until `ready` answers true (polled, bounded).
pub fn start_daemon(cmd: &mut Command, what: &str, mut ready: impl FnMut() -> bool) -> Daemon {
    let daemon = Daemon(
        cmd.stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {what}: {e}")),
    );
    wait_for(what, Duration::from_secs(30), &mut ready);
    daemon
}

/// One HTTP call to a peer, returning status and JSON body.
pub fn http(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: Option<Value>,
) -> (u16, Value) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let mut req = ureq::http::Request::builder().method(method).uri(url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    match agent.run(req.body(body.into_bytes()).unwrap()) {
        Ok(mut response) => {
            let status = response.status().as_u16();
            let bytes = response.body_mut().read_to_vec().unwrap_or_default();
            (
                status,
                serde_json::from_slice(&bytes).unwrap_or(Value::Null),
            )
        }
        Err(_) => (0, Value::Null),
    }
}

/// A rustls server configuration for a certificate pair (for the suite's TLS peers).
pub fn server_tls(pair: &Pair) -> rustls::ServerConfig {
    use rustls::pki_types::{pem::PemObject, CertificateDer, PrivateKeyDer};
    let _ = rustls::crypto::ring::default_provider().install_default();
    let chain: Vec<CertificateDer<'static>> =
        CertificateDer::pem_slice_iter(pair.cert_pem.as_bytes())
            .collect::<Result<_, _>>()
            .unwrap();
    let key = PrivateKeyDer::from_pem_slice(pair.key_pem.as_bytes()).unwrap();
    rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap()
}

/// moto's AWS APIs on a loopback port (`env` for moto_server), set up by the
/// Python script `setup` (boto3; its first argument is the URL). The daemon,
/// the URL and what the script printed.
pub fn moto(env: &[(&str, &str)], setup: &str) -> (Daemon, String, Vec<u8>) {
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let daemon = start_daemon(
        Command::new(peer("moto_server"))
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .envs(env.iter().copied()),
        "the moto server",
        || http("GET", &format!("{url}/moto-api/"), &[], None).0 != 0,
    );
    let out = Command::new(peer("python"))
        .args(["-c", setup, &url])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (daemon, url, out.stdout)
}
