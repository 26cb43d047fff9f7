//! From the command line to an exit code.
//!
//! Parse (a usage error exits 64; `--help` and `--version` always work), set up
//! diagnostics, hand off to the command, and print a fatal error once, with its
//! whole cause chain, mapped to its documented exit code.

use std::process::ExitCode;

use clap::Parser;
use tracing::Level;

use crate::control::spool::SpoolControl;
use crate::exit::{self, Code, Failure};
use crate::face::cli::DEFAULT_ENV_PREFIX;
use crate::face::cli::{Cli, Command, GlobalArgs, LogFormat, SpoolCommand};
use crate::face::{check, config, convert, discover, exec as exec_local, lambda, nodes, status};
use crate::secrets::own;
use crate::{os, shot};

pub fn run() -> ExitCode {
    let cli = match Cli::try_parse_from(lambda::arguments()) {
        Ok(cli) => cli,
        Err(e) if e.exit_code() != 0 && json_wanted() => {
            // journald and Kubernetes read every line as JSON, a usage error too.
            let line = serde_json::json!({
                "timestamp": crate::clock::now_rfc3339(),
                "level": "ERROR",
                "fields": { "message": e.to_string().trim_end() },
            });
            eprintln!("{line}");
            return ExitCode::from(Code::USAGE.0);
        }
        Err(e) => {
            let _ = e.print();
            let code = if e.exit_code() == 0 {
                Code::OK
            } else {
                Code::USAGE
            };
            return ExitCode::from(code.0);
        }
    };
    // Before any thread: sortie's credentials out of its environment, and its
    // memory and /proc entries closed to other processes of its user.
    let prefix = match &cli.command {
        Command::Poll(args) => &args.secrets.secrets_env_prefix,
        Command::Lambda(args) => &args.poll.secrets.secrets_env_prefix,
        Command::Exec(args) => &args.secrets.secrets_env_prefix,
        _ => DEFAULT_ENV_PREFIX,
    };
    own::capture(prefix);
    os::set_not_dumpable();
    init_diagnostics(&cli.global);
    let json = cli.global.log_format == LogFormat::Json;
    if matches!(
        cli.command,
        Command::Poll(_) | Command::Exec(_) | Command::Lambda(_)
    ) {
        // Steps run from here on: catch what they leave behind, and stop gracefully.
        os::become_subreaper();
        os::install_signal_handlers();
        os::protect_from_oom();
    }
    let result = match &cli.command {
        Command::Poll(args) => config::poll(args, json)
            .map_err(|e| Failure::config(e).into())
            .and_then(|cfg| shot::run(&cfg))
            .map(|summary| summary.exit_code),
        Command::Lambda(args) => lambda::run(args, json),
        Command::Exec(args) => exec_local::run(args, json),
        Command::Check(args) => Ok(check::run(args)),
        Command::Nodes(args) => nodes::run(args),
        Command::Discover(args) => discover::run(args),
        Command::Convert(args) => convert::run(args),
        Command::Status(args) => status::run(args),
        Command::Spool(SpoolCommand::Init {
            path,
            log_multiline,
        }) => SpoolControl::init(path, *log_multiline)
            .map_err(|e| {
                Failure::config(anyhow::anyhow!(
                    "creating the spool {}: {e}",
                    path.display()
                ))
                .into()
            })
            .and_then(|()| {
                super::print(format_args!("spool ready at {}\n", path.display()))?;
                Ok(Code::OK)
            }),
    };
    let code = match result {
        Ok(code) => code,
        Err(e) => {
            tracing::error!("{e:#}");
            exit::code_of(&e)
        }
    };
    ExitCode::from(code.0)
}

/// `--log-format json` (or SORTIE_LOG_FORMAT=json) on a command line clap
/// could not parse.
fn json_wanted() -> bool {
    let args: Vec<String> = std::env::args().collect();
    let flag = args
        .windows(2)
        .any(|w| w[0] == "--log-format" && w[1] == "json")
        || args.iter().any(|a| a == "--log-format=json");
    flag || std::env::var("SORTIE_LOG_FORMAT").is_ok_and(|v| v == "json")
}

fn init_diagnostics(global: &GlobalArgs) {
    let level = match (global.quiet, global.verbose) {
        (true, _) => Level::ERROR,
        (false, 0) => Level::INFO,
        (false, 1) => Level::DEBUG,
        (false, _) => Level::TRACE,
    };
    use std::io::IsTerminal;
    let builder = tracing_subscriber::fmt()
        .with_writer(|| crate::secrets::mask::MaskedStderr)
        .with_ansi(
            std::io::stderr().is_terminal()
                && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
                && std::env::var("TERM").map_or(true, |t| t != "dumb"),
        )
        .with_max_level(level)
        .with_target(false);
    match global.log_format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}
