//! sortie: a single-shot automation runner. See sortie(1).
//!
//! The folders are the parts, in layers (README, "Layout"): `face` is the
//! command line (parse, configure, dispatch, exit codes); `shot` is one poll
//! cycle (recover, claim, run, deliver); `jobs` decides what a job's steps are
//! and how its status is reached; `exec` supervises one process; `output` turns
//! what happens into log events; `control` talks to control planes (HTTPS, the
//! spool) and uploads; `state` is the state dir, its lock, journal and outbox;
//! `nodes` reads Rundeck resource models, selects nodes by filter and reaches
//! them over SSH; `rundeck` reads Rundeck job definitions and carries them
//! over into job specs; `net` builds the HTTP agents and checks certificates;
//! `secrets` resolves and masks secrets; `os` holds the calls that need
//! `unsafe`. A lower layer never imports a higher one (a test reads the `use`
//! lines to keep it so).

#![deny(unsafe_code)]

mod clock;
mod control;
mod discover;
mod exec;
mod exit;
pub mod face;
mod ids;
mod jobs;
mod net;
mod nodes;
#[allow(unsafe_code)]
mod os;
mod output;
mod rundeck;
mod secret;
mod secrets;
mod shot;
mod signals;
mod state;
#[cfg(test)]
mod testing;
