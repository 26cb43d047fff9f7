//! The face: the command line, its checked settings, and the commands behind it.
//!
//! Everything a person or a trigger touches lives here: flags and variables
//! (`cli`), their validation into settings (`config`), the dispatch from a
//! command to its work with one mapping to exit codes (`app`), and the commands
//! that are not a shot: `check`, `exec`, `convert`, `nodes`, `status` and the
//! Lambda runtime.

pub mod app;
mod check;
pub mod cli;
mod config;
mod convert;
mod discover;
mod exec;
mod lambda;
mod nodes;
mod status;

/// Write a command's answer to standard output. A closed pipe (`sortie status
/// | head -1`) or a full disk is an I/O failure the command returns (exit 74);
/// `println!` would panic and abort.
fn print(text: impl std::fmt::Display) -> anyhow::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    write!(out, "{text}")
        .and_then(|()| out.flush())
        .map_err(|e| {
            crate::exit::Failure::io(anyhow::Error::new(e).context("writing to standard output"))
                .into()
        })
}
