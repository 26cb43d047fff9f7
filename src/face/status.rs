//! `sortie status`: what this runner did, read from its state dir alone.
//!
//! The questions an operator has at 9 am — did last night's shots run, did
//! their jobs succeed, is anything waiting to be delivered — answered on the
//! host, without the control plane. It reads the history and the outboxes
//! without taking the state dir's lock, so it works while a shot runs.

use std::time::Duration;

use anyhow::Result;
use sortie_protocol::exit as codes;

use super::cli::StatusArgs;
use super::config;
use crate::exit::{Code, Failure};
use crate::output::printable;
use crate::state::history::{self, Job, Shot};

pub fn run(args: &StatusArgs) -> Result<Code> {
    let root = config::state_dir(args.state_dir.as_ref()).map_err(Failure::config)?;
    if !root.is_dir() {
        return Err(Failure::config(anyhow::anyhow!(
            "{} is not a state dir (no shot has run with it)",
            root.display()
        ))
        .into());
    }
    // A state dir this user cannot read is said so, not shown as empty.
    std::fs::read_dir(&root)
        .map_err(|e| Failure::config(anyhow::anyhow!("{}: {e}", root.display())))?;
    let shot = history::last_shot(&root);
    let mut jobs = history::jobs(&root);
    jobs.drain(..jobs.len().saturating_sub(args.last));
    let pending = crate::state::waiting(&root);
    // A shot holds the lock (the file's, and the directory's) while it runs:
    // its jobs are running, not waiting.
    let running = [root.join("lock"), root.clone()].iter().any(|held| {
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(held)
            .is_ok_and(|f| f.try_lock_shared().is_err())
    });
    if args.json {
        let answer = serde_json::json!({
            "state_dir": root.display().to_string(), "last_shot": shot, "pending": pending,
            "shot_running": running, "jobs": jobs,
        });
        super::print(format_args!("{answer}\n"))?;
    } else {
        super::print(render(shot.as_ref(), &pending, running, &jobs))?;
    }
    Ok(Code::OK)
}

fn meaning(code: u8) -> &'static str {
    match code {
        codes::OK => "ok",
        codes::JOB_FAILED => "a job failed",
        codes::UNREACHABLE => "control plane unreachable",
        codes::BUSY => "another shot was running",
        codes::IO => "state dir I/O error",
        codes::LEFT_FOR_LATER => "results kept for a later shot",
        codes::PROTOCOL => "the control plane answered outside the protocol",
        codes::REJECTED => "credentials rejected",
        codes::CONFIG => "configuration error",
        codes::INTERRUPTED => "interrupted",
        _ => "see sortie(1), EXIT STATUS",
    }
}

/// `2026-11-28T11:03:51.123Z` as `2026-11-28 11:03:51`.
fn when(at: &str) -> String {
    at.get(..19).unwrap_or(at).replace('T', " ")
}

fn render(shot: Option<&Shot>, pending: &[String], running: bool, jobs: &[Job]) -> String {
    let mut out = String::new();
    match shot {
        Some(s) => {
            let work = match (s.jobs, s.recovered) {
                (0, 0) => "no work".to_string(),
                (n, 0) => format!("{n} job(s)"),
                (n, r) => format!("{n} job(s), {r} delivered from earlier shots"),
            };
            out.push_str(&format!(
                "last shot: {} UTC, {}, exit {} ({}), {}\n",
                when(&s.at),
                crate::clock::human(Duration::from_millis(s.duration_ms)),
                s.exit_code,
                meaning(s.exit_code),
                work
            ));
        }
        None => out.push_str("last shot: none recorded\n"),
    }
    match (running, pending.is_empty()) {
        (true, true) => out.push_str("a shot is running now\n"),
        (true, false) => out.push_str(&format!(
            "a shot is running now, with (or delivering for): {}\n",
            pending.join(", ")
        )),
        (false, false) => out.push_str(&format!(
            "waiting for delivery by the next shot: {}\n",
            pending.join(", ")
        )),
        (false, true) => {}
    }
    if jobs.is_empty() {
        out.push_str("no jobs recorded\n");
        return out;
    }
    let rows: Vec<[String; 7]> = jobs
        .iter()
        .map(|j| {
            [
                when(&j.at),
                printable(&j.id).into_owned(),
                j.status.clone(),
                j.exit_code.map_or("-".into(), |c| c.to_string()),
                crate::clock::human(Duration::from_millis(j.duration_ms)),
                format!("{}/{}", j.steps_failed, j.steps_ran),
                if j.delivered { "yes" } else { "kept" }.to_string(),
            ]
        })
        .collect();
    let head = [
        "finished (UTC)",
        "job",
        "status",
        "exit",
        "took",
        "failed/ran",
        "delivered",
    ];
    let widths: Vec<usize> = (0..head.len())
        .map(|i| {
            rows.iter()
                .map(|r| r[i].chars().count())
                .chain([head[i].len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |cells: Vec<&str>| {
        let mut l = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect::<Vec<_>>()
            .join("  ");
        l.truncate(l.trim_end().len());
        l.push('\n');
        l
    };
    out.push('\n');
    out.push_str(&line(head.to_vec()));
    for row in &rows {
        out.push_str(&line(row.iter().map(String::as_str).collect()));
    }
    out
}
