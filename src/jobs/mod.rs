//! Jobs: what a job's steps are, how references in them expand, where they
//! run, what data they capture, and how the job's status follows.
//!
//! This part knows nothing of where the log goes or of the control plane: the
//! shot and `exec` give it an event log and read its report.

pub mod ansible_step;
pub mod capture;
pub mod command;
pub mod copy_step;
pub mod dispatch;
pub mod expand;
pub mod http_step;
pub mod log_data;
pub mod options;
pub mod plugin;
pub mod reader;
pub mod result_data;
pub mod runner;
pub mod shell;
pub mod spec;
pub mod spec_yaml;
pub mod status;
pub mod workspace;
