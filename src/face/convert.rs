//! `sortie convert FILE`: the job specs a Rundeck job file becomes.
//!
//! Each job of the file, carried over, as JSON on stdout (an array when the
//! file holds several); what was not carried over, one line each, on stderr.
//! A job that cannot be carried over at all makes the command fail, with one
//! line per reason; the other jobs of its file are still printed. What a job carried over would refuse when it runs (what
//! `sortie exec --check` finds, whatever the options' values) is said too.

use anyhow::Result;

use crate::exit::{Code, Failure};
use crate::face::cli::ConvertArgs;
use crate::face::exec::read_job_file;
use crate::rundeck::{self, convert};

pub fn run(args: &ConvertArgs) -> Result<Code> {
    let name = args.file.display().to_string();
    let text = read_job_file(&args.file).map_err(Failure::config)?;
    let jobs = rundeck::parse(&name, &text).map_err(Failure::config)?;
    let several = jobs.len() > 1;
    let mut specs = Vec::new();
    let mut refused = Vec::new();
    for job in &jobs {
        match convert::convert(job) {
            Ok(converted) => {
                for note in &converted.notes {
                    eprintln!("not carried over: {note}");
                }
                for refusal in refusals(&converted.spec) {
                    eprintln!("{}: refused when it runs: {refusal}", job.name);
                }
                specs.push(converted.spec);
            }
            Err(lines) => refused.extend(lines),
        }
    }
    // Of a file of several jobs, those carried over are printed even when
    // others are not (Rundeck imports each job of a file on its own).
    if !specs.is_empty() {
        let out = if several {
            serde_json::Value::Array(specs)
        } else {
            specs.remove(0)
        };
        super::print(format_args!("{}\n", serde_json::to_string_pretty(&out)?))?;
    }
    if !refused.is_empty() {
        return Err(Failure::config(anyhow::anyhow!(
            "{name}: cannot run on a runner:\n{}",
            refused.join("\n")
        ))
        .into());
    }
    Ok(Code::OK)
}

/// What running `spec` would refuse before any step, whatever its options'
/// values: the checks of `sortie exec --check`.
fn refusals(spec: &serde_json::Value) -> Vec<String> {
    let local = crate::nodes::Node::local("local");
    match crate::jobs::spec::parse_strict(spec) {
        Ok(spec) => crate::jobs::runner::check(&spec, &Default::default(), &local)
            .err()
            .unwrap_or_default(),
        Err(e) => vec![format!("{e:#}")],
    }
}
