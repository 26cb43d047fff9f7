//! The reference control plane for sortie protocol v1.
//!
//! It is the worked example of the contract in `sortie-protocol(7)`: atomic claims
//! under concurrent runners, idempotent claim ids, an ack window with attempt
//! numbers, lease expiry, fencing, offset-addressed logs and idempotent completion
//! with a checksum. Users run it to try sortie; sortie's integration tests run it
//! in-process over real TLS. It is not part of the `sortie` binary.

pub mod api;
pub mod http;
pub mod pki;
pub mod store;

use std::fs;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use rustls::pki_types::{pem::PemObject, CertificateDer, PrivateKeyDer};

pub use api::{Endpoint, Fault, FaultKind};
pub use store::{Job, Phase, Store, Timing};

/// Where the server's certificate comes from.
pub enum Tls {
    /// PEM files: the certificate chain and its key.
    Files { cert: PathBuf, key: PathBuf },
    /// PEM text already in memory.
    Pem { cert: String, key: String },
    /// Generate a private CA and a loopback server certificate under `<state>/tls/`
    /// (kept across restarts); the CA is `<state>/tls/ca.pem`.
    Generate {
        /// Names besides the loopback ones (`--tls-san`).
        names: Vec<String>,
    },
}

pub struct Config {
    pub listen: SocketAddr,
    pub state_dir: PathBuf,
    pub tls: Tls,
    /// PEM bundle of CAs whose client certificates are required (mTLS); none: no client auth.
    pub client_ca: Option<PathBuf>,
    /// Bearer token runners must present; none: runner endpoints are open.
    pub runner_token: Option<String>,
    pub admin_token: String,
    pub timing: Timing,
    /// Allow `POST /admin/faults` (fault injection for tests).
    pub faults: bool,
    /// Keep every byte runners send, for `Server::received` (tests).
    pub record: bool,
}

/// A running control plane.
pub struct Server {
    addr: SocketAddr,
    api: Arc<api::Api>,
    stop: Arc<AtomicBool>,
}

impl Server {
    pub fn start(config: Config) -> Result<Server> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let store = Arc::new(Store::open(&config.state_dir, config.timing)?);
        let tls = Arc::new(server_tls(&config)?);
        let listener = TcpListener::bind(config.listen)
            .with_context(|| format!("binding {}", config.listen))?;
        let addr = listener.local_addr()?;
        let api = Arc::new(api::Api::new(
            store.clone(),
            config.runner_token,
            config.admin_token,
            config.faults,
            config.record,
        ));
        let stop = Arc::new(AtomicBool::new(false));
        let handler_api = api.clone();
        let handler: Arc<http::Handler> = Arc::new(move |req| handler_api.handle(req));
        let serve_stop = stop.clone();
        thread::spawn(move || http::serve(listener, tls, handler, serve_stop));
        let sweep_stop = stop.clone();
        thread::spawn(move || {
            while !sweep_stop.load(Ordering::Relaxed) {
                thread::sleep(Duration::from_millis(250));
                store.sweep();
            }
        });
        Ok(Server { addr, api, stop })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The base URL runners use: `https://127.0.0.1:PORT/`.
    pub fn url(&self) -> String {
        format!("https://{}/", self.addr)
    }

    pub fn store(&self) -> &Store {
        &self.api.store
    }

    /// Arm a fault on a runner endpoint (needs `Config::faults`).
    pub fn inject(&self, fault: Fault) {
        self.api.inject(fault);
    }

    /// Disarm every fault.
    pub fn clear_faults(&self) {
        self.api.clear_faults();
    }

    /// Every byte runners sent, when started with `Config::record`.
    pub fn received(&self) -> Vec<u8> {
        self.api.received()
    }

    /// Stop accepting connections.
    pub fn shutdown(&self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = TcpStream::connect(self.addr);
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn server_tls(config: &Config) -> Result<rustls::ServerConfig> {
    let (cert_pem, key_pem) = match &config.tls {
        Tls::Files { cert, key } => (read(cert)?, read(key)?),
        Tls::Pem { cert, key } => (cert.clone().into_bytes(), key.clone().into_bytes()),
        Tls::Generate { names } => generated(&config.state_dir.join("tls"), names)?,
    };
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<_, _>>()
        .context("parsing the server certificate")?;
    if chain.is_empty() {
        bail!("the server certificate file holds no certificate");
    }
    let key = PrivateKeyDer::from_pem_slice(&key_pem).context("parsing the server key")?;
    let builder = rustls::ServerConfig::builder();
    let builder = match &config.client_ca {
        Some(path) => {
            let mut roots = rustls::RootCertStore::empty();
            for cert in CertificateDer::pem_slice_iter(&read(path)?) {
                roots
                    .add(cert.context("parsing the client CA")?)
                    .context("adding the client CA")?;
            }
            let verifier = rustls::server::WebPkiClientVerifier::builder(Arc::new(roots))
                .build()
                .context("building the client verifier")?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    builder
        .with_single_cert(chain, key)
        .context("the server certificate and key do not match")
}

fn read(path: &Path) -> Result<Vec<u8>> {
    fs::read(path).with_context(|| format!("reading {}", path.display()))
}

/// Generate (once, and again when the names change) a CA and a server
/// certificate for the loopback names and `extra` in `dir`.
fn generated(dir: &Path, extra: &[String]) -> Result<(Vec<u8>, Vec<u8>)> {
    let cert_path = dir.join("server.pem");
    let key_path = dir.join("server.key");
    let mut names = vec!["localhost".to_string(), "127.0.0.1".into(), "::1".into()];
    names.extend(extra.iter().cloned());
    let listed = names.join("\n");
    let names_path = dir.join("names");
    let same_names = fs::read_to_string(&names_path).map_or(extra.is_empty(), |n| n == listed);
    if !cert_path.exists() || !key_path.exists() || !same_names {
        fs::create_dir_all(dir)?;
        // New names keep the CA (its key is kept beside it), so runners that
        // trust ca.pem keep trusting the control plane.
        const CA_NAME: &str = "sortie reference control plane CA";
        let ca_key = dir.join("ca.key");
        let ca = match fs::read_to_string(&ca_key) {
            Ok(pem) => pki::Authority::from_key_pem(CA_NAME, &pem)?,
            Err(_) => {
                let ca = pki::Authority::generate(CA_NAME)?;
                write_private(&ca_key, ca.key_pem().as_bytes())?;
                fs::write(dir.join("ca.pem"), ca.cert_pem())?;
                ca
            }
        };
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        let server = ca.server(&names)?;
        fs::write(&names_path, &listed)?;
        fs::write(&cert_path, &server.cert_pem)?;
        write_private(&key_path, server.key_pem.as_bytes())?;
    }
    Ok((read(&cert_path)?, read(&key_path)?))
}

fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(bytes)?;
    Ok(())
}
