//! Integration tests: the real `sortie` binary against a real control plane over
//! real TLS (the reference control plane, run in-process), the spool, and `exec`.

mod fault_proxy;
mod support;
mod wire;

mod claims;
mod commands;
mod console;
mod definitions;
mod deploy;
mod exec;
mod execution;
mod faults;
mod hardening;
mod inventory;
mod lambda;
mod layering;
mod network;
mod nodes;
mod operator;
mod packages;
mod poll_tls;
mod resilience;
mod rundeck;
mod sandbox;
mod secrets;
mod signals;
mod spool;
mod step_kinds;
mod stores;
