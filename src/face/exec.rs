//! `sortie exec FILE`: run a job spec here, with no control plane.
//!
//! The same engine as a shot — the same spec rules, expansion, supervision and
//! log events — with the log rendered on the terminal instead of uploaded. It is
//! how job authors try a job before they enqueue it.

use std::io::Read;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context, Result};
use sortie_protocol::JobStatus;

use crate::control::spool::MAX_SPEC;
use crate::exec::StopReason;
use crate::exit::{Cause, Code, Failure};
use crate::face::cli::ExecArgs;
use crate::face::config;
use crate::jobs::runner::{self, Runtime};
use crate::jobs::spec as jobspec;
use crate::jobs::workspace::Workspace;
use crate::output::{printable, terminal::Terminal, EventLog};
use crate::state::files;

/// A job file's bytes (`-`: standard input), at most [`MAX_SPEC`].
pub fn read_job_file(path: &std::path::Path) -> Result<Vec<u8>> {
    let name = path.display().to_string();
    let mut text = Vec::new();
    let limit = MAX_SPEC + 1;
    if name == "-" {
        std::io::stdin()
            .take(limit)
            .read_to_end(&mut text)
            .context("reading standard input")?;
    } else {
        // A FIFO with no writer must not hang the open: O_NONBLOCK, then blocking reads.
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(path)
            .and_then(|f| {
                crate::os::set_blocking(&f)?;
                f.take(limit).read_to_end(&mut text)
            })
            .with_context(|| format!("cannot read {name}"))?;
    }
    if text.len() as u64 > MAX_SPEC {
        anyhow::bail!("{name} is larger than {MAX_SPEC} bytes: not a job");
    }
    Ok(text)
}

/// The spec to run: the file's job spec, or its Rundeck job to be carried
/// over; `-o` options on top.
/// `--check`: what the job's fields, options and steps would refuse, without
/// running it.
fn check(args: &ExecArgs, spec: &jobspec::JobSpec) -> Result<Code> {
    let globals = config::globals(args.run.globals.as_deref()).map_err(Failure::config)?;
    let local = crate::nodes::Node::local(args.nodes.node_name.trim());
    let name = args.file.display();
    let given = args.options.len();
    // Rundeck's option rules for what was given (secure options come at run time).
    let plain: Vec<_> = spec
        .option_defs
        .iter()
        .filter(|d| !d.secure)
        .cloned()
        .collect();
    let checked = crate::jobs::options::check(&plain, &spec.options)
        .map_err(|e| vec![e])
        .and_then(|_| crate::jobs::runner::check(spec, &globals, &local))
        .and_then(|_| script_urls(spec, args.allow_insecure_http));
    if let Err(problems) = checked {
        for problem in &problems {
            eprintln!("{name}: {}", printable(problem));
        }
        return Err(Failure::config(anyhow!("{name}: the job would not run")).into());
    }
    println!(
        "{name}: ok: job {}, {} step(s), {given} option(s) given",
        spec.id,
        spec.steps.len()
    );
    Ok(Code::OK)
}

/// The script URLs a run would refuse to fetch (plain http to another host),
/// as the fetch itself judges them; one that takes a value is judged when
/// the step runs.
fn script_urls(spec: &jobspec::JobSpec, allow_insecure_http: bool) -> Result<(), Vec<String>> {
    let problems: Vec<String> = spec
        .steps
        .iter()
        .enumerate()
        .filter_map(|(i, step)| match &step.kind {
            jobspec::StepKind::ScriptUrl { url, .. } if !url.contains("${") => {
                crate::net::base_url(url, allow_insecure_http, "the script URL")
                    .err()
                    .map(|e| format!("step {i}: {e:#}"))
            }
            _ => None,
        })
        .collect();
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems)
    }
}

/// `-o name=value` for an option the job neither defines nor refers to: a
/// typo, most likely; the job runs, and the warning says so.
fn warn_unused_options(args: &ExecArgs, value: &serde_json::Value, spec: &jobspec::JobSpec) {
    let text = value.to_string();
    for option in &args.options {
        let Some((name, _)) = option.split_once('=') else {
            continue;
        };
        let env = crate::jobs::expand::env_name(name);
        let used = spec.option_defs.iter().any(|d| d.name == name)
            || [
                format!("option.{name}"),
                format!("OPTION_{env}"),
                format!("secureOption.{name}"),
            ]
            .iter()
            .any(|form| mentions(&text, form));
        if !used {
            tracing::warn!("-o {name}: the job does not use an option of that name");
        }
    }
}

/// `form` in `text`, not as the start of a longer name (`option.who` is no
/// mention of `option.wh`).
fn mentions(text: &str, form: &str) -> bool {
    text.match_indices(form).any(|(at, _)| {
        !text[at + form.len()..]
            .starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    })
}

fn read_spec(args: &ExecArgs) -> Result<serde_json::Value> {
    let name = args.file.display().to_string();
    let text = read_job_file(&args.file)?;
    // A YAML spec in flow style (`{id: …}`) starts like JSON.
    let flow_yaml = !crate::rundeck::is_rundeck(&text)
        && sortie_protocol::json::from_slice(&text).is_err()
        && std::str::from_utf8(&text).is_ok_and(crate::jobs::spec_yaml::is_spec);
    let mut spec = if crate::rundeck::is_rundeck(&text) || flow_yaml {
        let text = String::from_utf8(text).map_err(|_| anyhow!("{name} is not UTF-8 text"))?;
        let mut wrapper = serde_json::json!({ "rundeck": text, "rundeck_file": name });
        if let Some(job) = &args.job {
            wrapper["rundeck_job"] = job.clone().into();
        }
        wrapper
    } else {
        sortie_protocol::json::from_slice(&text)
            .with_context(|| format!("{name} is not valid JSON"))?
    };
    for option in &args.options {
        let (k, v) = option
            .split_once('=')
            .filter(|(k, _)| !k.is_empty())
            .ok_or_else(|| {
                Failure::new(
                    Cause::Usage,
                    anyhow!("--option {option:?} is not NAME=VALUE"),
                )
            })?;
        let options = spec
            .as_object_mut()
            .ok_or_else(|| anyhow!("{name}: a job spec is a JSON object"))?
            .entry("options")
            .or_insert_with(|| serde_json::json!({}));
        options
            .as_object_mut()
            .ok_or_else(|| anyhow!("{name}: options must be an object"))?
            .insert(k.to_string(), v.into());
    }
    Ok(spec)
}

/// Where `sortie exec` keeps node keys and host keys: a directory of
/// its own in one directory of the user's, which the steps of every exec are
/// kept out of (the parent is what is protected). What an exec that was killed
/// left there is removed.
fn private_dir() -> Result<(std::path::PathBuf, tempfile::TempDir)> {
    use std::os::unix::fs::MetadataExt;
    let parent = std::env::temp_dir().join(format!("sortie-ssh-{}", crate::os::uid()));
    files::ensure_dir(&parent, files::PRIVATE_DIR)
        .with_context(|| format!("creating {}", parent.display()))?;
    let meta = std::fs::symlink_metadata(&parent)?;
    if meta.uid() != crate::os::uid() || meta.mode() & 0o077 != 0 {
        anyhow::bail!(
            "{} is not private to this user (owner {}, mode {:o}): remove it",
            parent.display(),
            meta.uid(),
            meta.mode() & 0o7777
        );
    }
    for entry in std::fs::read_dir(&parent)?.flatten() {
        let name = entry.file_name();
        let pid = name
            .to_string_lossy()
            .split('-')
            .next()
            .unwrap_or("")
            .to_string();
        if !pid.is_empty() && !std::path::Path::new("/proc").join(&pid).exists() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
    let private = tempfile::Builder::new()
        .prefix(&format!("{}-", std::process::id()))
        .tempdir_in(&parent)
        .context("creating a private directory for node connections")?;
    Ok((parent, private))
}

pub fn run(args: &ExecArgs, json: bool) -> Result<Code> {
    let value = read_spec(args).map_err(Failure::or_config)?;
    let spec = jobspec::parse_strict(&value)
        .with_context(|| format!("{}: invalid job", args.file.display()))
        .map_err(Failure::config)?;
    warn_unused_options(args, &value, &spec);
    // A secure option's value given with -o leaves the visible command line.
    let secure: Vec<&str> = args
        .options
        .iter()
        .filter_map(|o| o.split_once('='))
        .filter(|(name, _)| spec.option_defs.iter().any(|d| d.secure && d.name == *name))
        .map(|(_, value)| value)
        .collect();
    crate::os::scrub_arguments(&secure);
    if args.check {
        return check(args, &spec);
    }
    let providers = config::providers(
        &args.secrets,
        None,
        Vec::new(),
        args.allow_insecure_http,
        Duration::from_secs(30),
    )
    .map_err(Failure::config)?;
    let read_only: Vec<_> = [
        &args.secrets.bao_ca_file,
        &args.nodes.known_hosts,
        &args.nodes.ssh_config,
    ]
    .into_iter()
    .flatten()
    .cloned()
    .collect();
    let (parent, private) = private_dir().map_err(Failure::config)?;
    let own = [parent];
    let policy = config::policy(&args.run, &providers, &own, read_only).map_err(Failure::config)?;
    let nodes =
        config::nodes(&args.nodes, private.path().to_path_buf()).map_err(Failure::config)?;
    let globals = config::globals(args.run.globals.as_deref()).map_err(Failure::config)?;
    let roots = args
        .ca_file
        .as_deref()
        .map(crate::net::tls::Roots::load)
        .transpose()
        .map_err(Failure::config)?;
    let fetcher = crate::net::Fetcher::new(roots.as_ref(), args.allow_insecure_http)
        .map_err(Failure::config)?;
    let workspace =
        Workspace::create(None, &spec.id, args.run.keep_workspace).map_err(Failure::config)?;
    let stop = || crate::signals::interrupted().then_some(StopReason::Interrupted);
    let rt = Runtime {
        workspace: workspace.path(),
        deadline: spec.timeout.map(|t| Instant::now() + t),
        interrupt_at: None,
        stop: &stop,
        grace: args.run.kill_grace,
        providers: &providers,
        policy: &policy,
        nodes: &nodes,
        globals: &globals,
        fetch: &|url, until| fetcher.get(url, until),
        http: &crate::shot::http::send,
        plugins: &config::plugin_dirs(&args.run, None),
    };
    let mut terminal = Terminal::new(json, &nodes.local.name);
    let started = Instant::now();
    let report = runner::run(&spec, &rt, &mut EventLog::new(&mut terminal));
    workspace.finish();
    if let Some(why) = &report.log_failure {
        tracing::error!("the job's log could not be shown: {why}");
    }
    if json {
        let summary = serde_json::json!({
            "id": spec.id, "status": report.status, "exit_code": report.exit_code,
            "data": report.data, "error": report.error,
        });
        eprintln!("{summary}");
    } else {
        let _ = terminal.job_end(
            &spec.id,
            report.status,
            started.elapsed(),
            report.error.as_deref(),
            &report.data,
        );
    }
    Ok(match report.status {
        JobStatus::Succeeded => Code::OK,
        JobStatus::Interrupted => Cause::Interrupted.code(),
        _ => Code::JOB_FAILED,
    })
}
