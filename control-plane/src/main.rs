//! `sortie-control-plane`: run the reference control plane, migrate state into
//! it, or administer a running one (runners, executions).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Parser;
use sortie_control_plane::{admin, Config, Database, Server, Timing, Tls};

/// The reference control plane for sortie protocol v1 (HTTPS only).
#[derive(Parser)]
#[command(version, args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    serve: Args,
}

#[derive(clap::Subcommand)]
enum Command {
    /// Bring the state of a journal-based control plane (0.1) into STATE_DIR's database.
    Migrate {
        /// The old control plane's state dir (journal.ndjson and logs/).
        #[arg(long, value_name = "DIR")]
        from_journal: PathBuf,
        /// The state dir whose database receives the jobs.
        #[arg(long, env = "SORTIE_CP_STATE")]
        state_dir: PathBuf,
        #[command(flatten)]
        database: DatabaseArgs,
    },
    /// Registered runners on a running control plane: add, list, rotate, revoke.
    Runner {
        #[command(subcommand)]
        command: admin::RunnerCommand,
        #[command(flatten)]
        remote: admin::Remote,
    },
    /// Executions on a running control plane: list, show, log, cancel.
    Exec {
        #[command(subcommand)]
        command: admin::ExecCommand,
        #[command(flatten)]
        remote: admin::Remote,
    },
}

#[derive(clap::Args)]
struct DatabaseArgs {
    /// PostgreSQL instead of the embedded SQLite: `postgres://USER@HOST:PORT/DB`
    /// or `host=… dbname=…`, without the password (several replicas may share it).
    #[arg(long, env = "SORTIE_CP_DATABASE", value_name = "URL")]
    database: Option<String>,
    /// File holding the PostgreSQL password (a password in the URL is refused:
    /// a command line is visible to every user of the host).
    #[arg(long, value_name = "FILE", requires = "database")]
    database_password_file: Option<PathBuf>,
    /// CA (PEM) of the PostgreSQL server's certificate: the connection is then
    /// TLS, required and checked. Needed for a server on another host.
    #[arg(long, value_name = "FILE", requires = "database")]
    database_ca_file: Option<PathBuf>,
}

impl DatabaseArgs {
    fn database(&self) -> Result<Database> {
        let Some(url) = &self.database else {
            return Ok(Database::Embedded);
        };
        let parsed: postgres::Config = url
            .parse()
            .context("--database is not a PostgreSQL connection string")?;
        if parsed.get_password().is_some() {
            anyhow::bail!(
                "--database holds a password: put it in --database-password-file instead \
                 (a command line is visible to every user of the host)"
            );
        }
        let password = self
            .database_password_file
            .as_ref()
            .map(token)
            .transpose()?;
        Ok(Database::Postgres {
            url: url.clone(),
            password,
            ca_file: self.database_ca_file.clone(),
        })
    }
}

#[derive(clap::Args)]
struct Args {
    /// Address to listen on (port 0: any free port).
    #[arg(long, default_value = "127.0.0.1:8443", env = "SORTIE_CP_LISTEN")]
    listen: SocketAddr,
    /// Directory for generated certificates and the embedded database
    /// (control-plane.db).
    #[arg(long, env = "SORTIE_CP_STATE", required = true)]
    state_dir: Option<PathBuf>,
    #[command(flatten)]
    database: DatabaseArgs,
    /// Server certificate chain (PEM); without it a CA and certificate are generated
    /// in STATE_DIR/tls/ and runners trust STATE_DIR/tls/ca.pem.
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// Server private key (PEM).
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Require client certificates issued by these CAs (PEM bundle).
    #[arg(long)]
    client_ca: Option<PathBuf>,
    /// File holding the bearer token runners must present (none: runner endpoints are open).
    #[arg(long)]
    runner_token_file: Option<PathBuf>,
    /// File holding the admin API's bearer token.
    #[arg(long, required = true)]
    admin_token_file: Option<PathBuf>,
    /// A claimed job not started within this returns to the queue.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    ack_window: Duration,
    /// Lease duration, renewed by each heartbeat.
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    lease: Duration,
    /// Heartbeat interval asked of runners, in seconds.
    #[arg(long, default_value_t = 10)]
    heartbeat_seconds: u64,
    /// Longest long poll granted (a claim's wait_seconds is cut to it); keep it
    /// under the idle timeout of any proxy in front.
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    max_wait: Duration,
    /// Another name the generated server certificate is for (repeatable), so a
    /// runner on another host can be tried without making certificates.
    #[arg(long = "tls-san", value_name = "NAME")]
    tls_san: Vec<String>,
    /// Finished jobs and their logs are removed this long after they end.
    #[arg(long, default_value = "30days", value_parser = humantime::parse_duration)]
    retain: Duration,
}

fn main() -> ExitCode {
    use std::io::IsTerminal;
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_max_level(tracing::Level::INFO)
        .init();
    let cli = Cli::parse();
    let result = match cli.command {
        Some(Command::Migrate {
            from_journal,
            state_dir,
            database,
        }) => database
            .database()
            .and_then(|db| migrate(&from_journal, &state_dir, &db)),
        Some(Command::Runner { command, remote }) => admin::runner(command, &remote),
        Some(Command::Exec { command, remote }) => admin::exec(command, &remote),
        None => run(cli.serve),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sortie-control-plane: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn migrate(from: &std::path::Path, state_dir: &std::path::Path, db: &Database) -> Result<()> {
    let store = db.open(state_dir, Timing::default())?;
    let done = sortie_control_plane::store::journal::import(&store, from)?;
    println!(
        "migrated {} jobs ({} log bytes) and {} inventories from {}; {} jobs were there already",
        done.jobs,
        done.log_bytes,
        done.inventories,
        from.display(),
        done.skipped
    );
    Ok(())
}

/// A credential from a file: its text without surrounding white space, which
/// must not be empty (an empty token would let anyone in).
fn token(path: &PathBuf) -> Result<String> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading token file {}", path.display()))?;
    let token = text.trim();
    if token.is_empty() {
        anyhow::bail!("{} is empty: a token is required", path.display());
    }
    Ok(token.to_string())
}

fn run(args: Args) -> Result<()> {
    let tls = match (args.tls_cert, args.tls_key) {
        (Some(cert), Some(key)) => Tls::Files { cert, key },
        _ => Tls::Generate {
            names: args.tls_san.clone(),
        },
    };
    let open = args.runner_token_file.is_none() && args.client_ca.is_none();
    let state_dir = args.state_dir.expect("clap requires --state-dir");
    let admin_token_file = args
        .admin_token_file
        .expect("clap requires --admin-token-file");
    let server = Server::start(Config {
        listen: args.listen,
        state_dir,
        database: args.database.database()?,
        tls,
        client_ca: args.client_ca,
        runner_token: args.runner_token_file.as_ref().map(token).transpose()?,
        admin_token: token(&admin_token_file)?,
        timing: Timing {
            ack_window: args.ack_window,
            lease: args.lease,
            heartbeat_seconds: args.heartbeat_seconds,
            max_wait: args.max_wait,
            retain: args.retain,
        },
    })?;
    if open {
        eprintln!(
            "sortie-control-plane: warning: no runner authentication (--runner-token-file or \
             --client-ca): anyone who reaches {} can claim jobs",
            server.addr()
        );
    }
    println!("listening on {}", server.url());
    server.run_until_signal()
}
