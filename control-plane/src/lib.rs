//! The reference control plane for sortie protocol v1.
//!
//! It is the worked example of the contract in `sortie-protocol(7)`: atomic claims
//! under concurrent runners, idempotent claim ids, an ack window with attempt
//! numbers, lease expiry, fencing, offset-addressed logs and idempotent completion
//! with a checksum. An async server (axum on tokio, rustls) in front of a
//! transactional store (SQLite by default, PostgreSQL for several replicas).
//! Users run it as
//! `sortie-control-plane`; sortie's integration tests run it in-process over real
//! TLS. It is not part of the `sortie` binary, which stays synchronous.

pub mod admin;
pub mod api;
pub mod cli;
mod console;
pub mod metrics;
pub mod pki;
pub mod serve;
pub mod store;
mod tls;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use tokio::sync::watch;

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

/// Where the store lives.
#[derive(Clone, Default)]
pub enum Database {
    /// SQLite in `<state>/control-plane.db` (the embedded default).
    #[default]
    Embedded,
    /// PostgreSQL, shared by several replicas: a connection URL without its
    /// password, the password, and the CA of the server's certificate.
    Postgres {
        url: String,
        password: Option<String>,
        ca_file: Option<PathBuf>,
    },
}

impl Database {
    pub fn open(&self, state_dir: &std::path::Path, timing: Timing) -> Result<Store> {
        match self {
            Database::Embedded => Store::open(state_dir, timing),
            Database::Postgres {
                url,
                password,
                ca_file,
            } => Store::postgres(url, password.as_deref(), ca_file.as_deref(), timing),
        }
    }
}

pub struct Config {
    pub listen: SocketAddr,
    /// Generated certificates (and the SQLite database, when embedded).
    pub state_dir: PathBuf,
    pub database: Database,
    pub tls: Tls,
    /// PEM bundle of CAs whose client certificates are required (mTLS); none: no client auth.
    pub client_ca: Option<PathBuf>,
    /// Bearer token runners must present; none: runner endpoints are open.
    pub runner_token: Option<String>,
    pub admin_token: String,
    pub timing: Timing,
    /// Offer runners output events of several lines (`log_multiline`).
    pub log_multiline: bool,
}

/// How often leases are checked for expiry and retention applied.
const SWEEP: Duration = Duration::from_millis(250);

/// A running control plane, on its own tokio runtime.
pub struct Server {
    addr: SocketAddr,
    api: Arc<api::Api>,
    stop: watch::Sender<bool>,
    serving: Option<tokio::task::JoinHandle<()>>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl Server {
    pub fn start(config: Config) -> Result<Server> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        config.timing.check().map_err(anyhow::Error::msg)?;
        refuse_shared(&config.state_dir)?;
        let empty = |t: &str| t.trim().is_empty();
        if empty(&config.admin_token) || config.runner_token.as_deref().is_some_and(empty) {
            anyhow::bail!("an empty token would let anyone in: give a token");
        }
        let store = Arc::new(
            config
                .database
                .open(&config.state_dir, config.timing)?
                .offer_multiline(config.log_multiline),
        );
        let tls = Arc::new(tls::server_tls(&config)?);
        let listener = std::net::TcpListener::bind(config.listen)
            .with_context(|| format!("binding {}", config.listen))?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            // Store calls run here; the database serializes writers anyway, so
            // more threads would only wait (long polls hold no thread at all).
            .max_blocking_threads(16)
            .thread_name("sortie-cp")
            .enable_all()
            .build()
            .context("starting the async runtime")?;
        let (stop, stopping) = watch::channel(false);
        let api = Arc::new(api::Api::new(
            store,
            config.runner_token,
            config.admin_token,
            stopping.clone(),
        ));
        let app = api::router(api.clone());
        let serving = runtime.spawn({
            let mut stopping = stopping.clone();
            async move {
                let listener = match tokio::net::TcpListener::from_std(listener) {
                    Ok(l) => l,
                    Err(e) => return tracing::error!("listening: {e}"),
                };
                let stop = async move {
                    let _ = stopping.wait_for(|s| *s).await;
                };
                serve::serve(listener, tls, app, stop).await;
            }
        });
        runtime.spawn(sweeper(api.clone(), stopping));
        Ok(Server {
            addr,
            api,
            stop,
            serving: Some(serving),
            runtime: Some(runtime),
        })
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

    /// Serve until SIGTERM or SIGINT, then stop gracefully: no new connections,
    /// long polls answered, requests in flight finished (up to [`serve::DRAIN`]).
    pub fn run_until_signal(mut self) -> Result<()> {
        let runtime = self.runtime.take().expect("a started server has a runtime");
        runtime.block_on(async {
            use tokio::signal::unix::{signal, SignalKind};
            let mut term = signal(SignalKind::terminate()).context("handling SIGTERM")?;
            let mut int = signal(SignalKind::interrupt()).context("handling SIGINT")?;
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
            tracing::info!("stopping: finishing requests in flight");
            let _ = self.stop.send(true);
            if let Some(serving) = self.serving.take() {
                let _ = serving.await;
            }
            anyhow::Ok(())
        })
    }

    /// Stop accepting connections and end long polls.
    pub fn shutdown(&self) {
        let _ = self.stop.send(true);
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.shutdown();
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_timeout(Duration::from_secs(1));
        }
    }
}

/// A state dir others may write to could have its database or TLS key replaced
/// under the server: refused, as the runner refuses one.
fn refuse_shared(dir: &std::path::Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = std::fs::metadata(dir) {
        let mode = meta.permissions().mode();
        if mode & 0o002 != 0 {
            anyhow::bail!(
                "{} is writable by every user (mode {:o}): chmod o-w it",
                dir.display(),
                mode & 0o7777
            );
        }
        if mode & 0o020 != 0 {
            tracing::warn!(
                "{} is writable by its group (mode {:o})",
                dir.display(),
                mode & 0o7777
            );
        }
    }
    Ok(())
}

/// Expire ended leases (waking long polls when a job returns to the queue),
/// apply retention and fire what schedules have due, until the server stops.
async fn sweeper(api: Arc<api::Api>, mut stopping: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(SWEEP);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // Cron's finest unit is the second: schedules are looked at that often.
    let mut schedules_seen = tokio::time::Instant::now() - Duration::from_secs(1);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stopping.wait_for(|s| *s) => return,
        }
        let store = api.clone();
        match tokio::task::spawn_blocking(move || store.store.sweep()).await {
            Ok(Ok(swept)) => {
                api.metrics.swept(&swept);
                if swept.requeued > 0 {
                    api.work.notify_waiters();
                }
            }
            Ok(Err(refusal)) => tracing::warn!("sweeping leases: {refusal:?}"),
            Err(e) => tracing::warn!("sweeping leases: {e}"),
        }
        if schedules_seen.elapsed() < Duration::from_secs(1) {
            continue;
        }
        schedules_seen = tokio::time::Instant::now();
        let store = api.clone();
        match tokio::task::spawn_blocking(move || store.store.fire_schedules()).await {
            Ok(Ok(queued)) if !queued.is_empty() => {
                tracing::info!(executions = ?queued, "schedules fired");
                api.work.notify_waiters();
            }
            Ok(Ok(_)) => {}
            Ok(Err(refusal)) => tracing::warn!("firing schedules: {refusal:?}"),
            Err(e) => tracing::warn!("firing schedules: {e}"),
        }
    }
}
