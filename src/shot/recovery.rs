//! Recovery: finish what earlier shots left, before claiming anything new.
//!
//! A shot can die anywhere (a Lambda timeout, an eviction, `kill -9`). Each job it
//! started has a journal entry in the state dir, written durably before the job
//! started. A job with a completion on disk is delivered: its log from wherever
//! the control plane's copy ends, then the completion. A job without one was
//! running when its shot died: its log is cut back to its last whole line, a
//! `system` event says what happened, and it is completed as `lost`. A fenced
//! answer (the lease moved on) clears the entry without completing it.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;

use anyhow::{Context, Result};
use sha2::{Digest, Sha256};
use sortie_protocol::{Completion, JobStatus, LogSummary};

use crate::control::{ControlPlane, JobRef};
use crate::output::{encode, Event, Level};
use crate::shot::delivery::{self, JobEnd};
use crate::state::{Journal, StateDir};

/// What recovery did.
#[derive(Debug, Default)]
pub struct Outcome {
    pub delivered: usize,
    /// Jobs still in the state dir (undeliverable now, or for another control plane).
    pub left: usize,
}

/// Deliver every job earlier shots left for `server`.
pub fn run(cp: &dyn ControlPlane, state: &StateDir, server: &str) -> Result<Outcome> {
    let mut outcome = Outcome::default();
    for dir in state.pending_jobs() {
        let journal = match Journal::read(&dir) {
            Ok(journal) => journal,
            Err(_) if !dir.join("completion.json").exists() => {
                // The shot died before it wrote the entry, so before the job started.
                let _ = std::fs::remove_dir_all(&dir);
                continue;
            }
            Err(e) => {
                tracing::error!("{e:#}");
                outcome.left += 1;
                continue;
            }
        };
        if journal.server != server {
            tracing::warn!(job = %journal.id, "left for {}, not {server}", journal.server);
            outcome.left += 1;
            continue;
        }
        let job = JobRef {
            id: journal.id.clone(),
            attempt: journal.attempt,
            lease_token: journal.lease_token.clone(),
        };
        let completion = match std::fs::read(dir.join("completion.json")) {
            Ok(bytes) => serde_json::from_slice(&bytes).context("reading a completion")?,
            Err(_) => {
                tracing::warn!(job = %job.id, "the shot running it died; reporting it lost");
                lost(&journal)?
            }
        };
        match delivery::resume(cp, &job, &dir, &journal.log, &completion)? {
            JobEnd::Reported(status) => {
                tracing::info!(job = %job.id, %status, "reported for an earlier shot");
                outcome.delivered += 1;
            }
            JobEnd::Abandoned => {}
            JobEnd::LeftForLater => outcome.left += 1,
        }
    }
    Ok(outcome)
}

/// Close the log of a job whose shot died and build its `lost` completion.
fn lost(journal: &Journal) -> Result<Completion> {
    let path = &journal.log;
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .with_context(|| format!("opening {}", path.display()))?;
    let (whole, last_seq) = last_line(&mut file)?;
    // A line cut short by the crash is dropped: the log stays NDJSON.
    file.set_len(whole)?;
    file.seek(SeekFrom::End(0))?;
    let mut line = Vec::new();
    let text = "the runner stopped while this job ran; the log above is what it had written";
    let ts = crate::clock::now_rfc3339();
    let seq = last_seq.map_or(0, |s| s + 1);
    encode::event(
        &mut line,
        seq,
        &ts,
        &Event::System {
            level: Level::Error,
            text,
        },
    );
    file.write_all(&line)?;
    file.sync_all()?;
    Ok(Completion {
        status: JobStatus::Lost,
        exit_code: None,
        started_at: journal.started_at.clone(),
        finished_at: crate::clock::now_rfc3339(),
        steps: Vec::new(),
        data: BTreeMap::new(),
        log: summary(path)?,
        error: Some("the runner stopped while the job ran".into()),
    })
}

/// The length of the log's whole lines and the `seq` of the last one.
fn last_line(file: &mut File) -> Result<(u64, Option<u64>)> {
    let length = file.metadata()?.len();
    // A line is at most a few hundred KiB (64 KiB of text, escaped); read enough tail.
    let tail_len = length.min(4 * 1024 * 1024);
    file.seek(SeekFrom::Start(length - tail_len))?;
    let mut tail = Vec::with_capacity(tail_len as usize);
    file.take(tail_len).read_to_end(&mut tail)?;
    let Some(end) = tail.iter().rposition(|b| *b == b'\n') else {
        return Ok((length - tail_len, None));
    };
    let whole = length - tail_len + end as u64 + 1;
    let start = tail[..end]
        .iter()
        .rposition(|b| *b == b'\n')
        .map_or(0, |p| p + 1);
    let seq = serde_json::from_slice::<serde_json::Value>(&tail[start..end])
        .ok()
        .and_then(|v| v["seq"].as_u64());
    Ok((whole, seq))
}

fn summary(path: &Path) -> Result<LogSummary> {
    let mut file = File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut length = 0u64;
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        length += n as u64;
    }
    Ok(LogSummary {
        length,
        sha256: hex::encode(hasher.finalize()),
    })
}
