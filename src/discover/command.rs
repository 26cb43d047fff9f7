//! Nodes from a program that prints a Rundeck resource model (JSON, YAML or
//! XML) on its stdout: for an inventory no built-in source knows. It runs
//! with the runner's environment, in its own process group, killed when its
//! time runs out.

use std::time::Instant;

use crate::exec::{self, Outcome, Supervision};
use crate::nodes::{resource, Node};

/// The most a program may print.
const MAX_OUTPUT: usize = 16 << 20;

/// Run `argv` to its end before `until`, with `extra` in its environment;
/// its stdout, or why there is none (with the last line it said on stderr).
pub fn output(argv: &[String], extra: &[(&str, &str)], until: Instant) -> Result<Vec<u8>, String> {
    let Some((program, args)) = argv.split_first() else {
        return Err("no program to run".into());
    };
    let cmd = exec::Command {
        program: program.into(),
        args: args.iter().map(Into::into).collect(),
        env: std::env::vars()
            .chain(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())))
            .collect(),
        cwd: std::env::current_dir().unwrap_or_else(|_| "/".into()),
        confinement: exec::Confinement::default(),
        stdin: exec::Input::Empty,
        owner: None,
    };
    let supervision = Supervision {
        until: Some(until),
        stop: &|| None,
        grace: std::time::Duration::from_secs(1),
    };
    let kept = exec::capture(&cmd, &supervision, MAX_OUTPUT);
    let said = String::from_utf8_lossy(&kept.stderr)
        .lines()
        .rfind(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim()
        .to_string();
    let with = |what: String| match said.as_str() {
        "" => what,
        said => format!("{what}: {said}"),
    };
    match kept.finished.outcome {
        _ if kept.over => Err(format!(
            "{program} printed more than {} MiB",
            MAX_OUTPUT >> 20
        )),
        Outcome::Exited(0) => Ok(kept.stdout),
        Outcome::Exited(code) => Err(with(format!("{program} exited with {code}"))),
        Outcome::Signaled(signal) => Err(with(format!("{program} was killed by signal {signal}"))),
        Outcome::Stopped(_) => Err(format!("{program} timed out")),
        Outcome::SpawnFailed(why) => Err(why),
    }
}

pub fn nodes(argv: &[String], until: Instant) -> Result<Vec<Node>, String> {
    let printed = output(argv, &[], until)?;
    let text = String::from_utf8(printed)
        .map_err(|_| format!("{} printed something that is not UTF-8", argv[0]))?;
    let format = resource::Format::sniff(&text);
    resource::parse_str(format, &argv[0], &text).map_err(|e| format!("{e:#}"))
}
