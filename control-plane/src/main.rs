//! `sortie-control-plane`: run the reference control plane, migrate state into
//! it, or administer a running one (runners, executions).

use std::process::ExitCode;

use anyhow::Result;
use clap::Parser;
use sortie_control_plane::cli::{token, Args, Cli, Command};
use sortie_control_plane::{admin, Config, Database, Server, Timing, Tls};

fn main() -> ExitCode {
    use std::io::IsTerminal;
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_max_level(tracing::Level::INFO)
        .init();
    let cli = Cli::parse();
    // The server and `migrate` exit 1 when they fail; an admin command exits 2
    // when it could not do what was asked (as for a usage error), so that
    // `run --follow` can exit 1 for an execution that did not succeed.
    let failed = match cli.command {
        None | Some(Command::Migrate { .. }) => 1,
        Some(_) => 2,
    };
    let done = |r: Result<()>| r.map(|()| 0);
    let result = match cli.command {
        Some(Command::Migrate {
            from_journal,
            state_dir,
            database,
        }) => done(
            database
                .database()
                .and_then(|db| migrate(&from_journal, &state_dir, &db)),
        ),
        Some(Command::Job { command, remote }) => done(admin::job(command, &remote)),
        Some(Command::Run { args, remote }) => admin::run(args, &remote),
        Some(Command::Admin { command, remote }) => done(admin::admin(command, &remote)),
        Some(Command::Audit { limit, remote }) => done(admin::audit(limit, &remote)),
        Some(Command::Runner { command, remote }) => done(admin::runner(command, &remote)),
        Some(Command::Exec { command, remote }) => done(admin::exec(command, &remote)),
        None => done(run(cli.serve)),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("sortie-control-plane: {e:#}");
            ExitCode::from(failed)
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
            stale_after: args.stale_after,
            misfire_grace: args.misfire_grace,
            retain_audit: args.retain_audit,
        },
        log_multiline: !args.one_line_events,
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
