//! sortie: a single-shot automation runner. See sortie(1).

mod app;
mod check;
mod cli;
mod clock;
mod config;
mod control;
mod delivery;
mod exec_local;
mod executor;
mod exit;
mod expand;
mod heartbeat;
mod ids;
mod jobspec;
mod lambda;
mod mask;
mod net;
mod os;
mod output;
mod recovery;
mod result_data;
mod retry;
mod runner;
mod secret;
mod secrets;
mod shot;
mod state;
mod tls;
mod upload;
mod workspace;

fn main() -> std::process::ExitCode {
    app::run()
}
