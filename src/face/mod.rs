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
