//! `sortie-control-plane migrate --from-journal DIR`: bring the state of the
//! journal-based control plane (0.1) into a store, so an upgrade loses nothing.
//!
//! That server kept `journal.ndjson` (one whole job record per change, the last
//! one winning, a torn last line possible after a crash) and `logs/<id>.ndjson`.
//! Jobs keep their ids, order, attempts, leases and logs; a job already in the
//! store is left alone, so the migration can be run again after an interruption.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek};
use std::path::Path;

use anyhow::{bail, Context, Result};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::{Chunk, Job, Outcome, Phase, Refusal, Rows, Store};

#[derive(Deserialize)]
#[serde(tag = "record", rename_all = "snake_case")]
enum Record {
    Job(Box<Job>),
    Inventory {
        runner_id: String,
        nodes: serde_json::Value,
    },
}

/// What a migration brought over.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Migrated {
    pub jobs: usize,
    pub skipped: usize,
    pub log_bytes: u64,
    pub inventories: usize,
}

/// Read the journal in `dir` and add what it holds to `store`.
pub fn import(store: &Store, dir: &Path) -> Result<Migrated> {
    let path = dir.join("journal.ndjson");
    let file = File::open(&path).with_context(|| format!("opening {}", path.display()))?;
    let mut jobs: Vec<Job> = Vec::new();
    let mut index = std::collections::HashMap::new();
    let mut inventories = std::collections::BTreeMap::new();
    let lines: Vec<String> = BufReader::new(file)
        .lines()
        .collect::<Result<_, _>>()
        .with_context(|| format!("reading {}", path.display()))?;
    let mut wrong = Vec::new();
    for (n, line) in lines.iter().enumerate() {
        let record = match serde_json::from_str::<Record>(line) {
            Ok(record) => record,
            // A torn last line (a crash mid-append) was never acknowledged: skip it.
            Err(_) if n + 1 == lines.len() => continue,
            Err(e) => {
                wrong.push(format!("line {}: {e}", n + 1));
                continue;
            }
        };
        match record {
            Record::Job(job) => {
                if let Err(why) = sound(&job) {
                    wrong.push(format!("line {}: {why}", n + 1));
                    continue;
                }
                match index.get(&job.id) {
                    Some(&i) => jobs[i] = *job,
                    None => {
                        index.insert(job.id.clone(), jobs.len());
                        jobs.push(*job);
                    }
                }
            }
            Record::Inventory { runner_id, nodes } => {
                inventories.insert(runner_id, nodes);
            }
        }
    }
    // All or nothing: a journal with a wrong line in the middle is not what the
    // old server wrote, and guessing could run a finished job again.
    if !wrong.is_empty() {
        let shown: Vec<&String> = wrong.iter().take(20).collect();
        bail!(
            "{} has {} record(s) that are not the old server's, nothing was migrated:\n{}",
            path.display(),
            wrong.len(),
            shown
                .iter()
                .map(|w| w.as_str())
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
    jobs.sort_by_key(|j| j.seq);
    let mut migrated = Migrated::default();
    for mut job in jobs {
        let log_path = dir.join("logs").join(format!("{}.ndjson", job.id));
        if matches!(job.phase, Phase::Done | Phase::Failed) && job.finished_at_ms.is_none() {
            // The journal did not record when; retention counts from the migration.
            job.finished_at_ms = Some(super::now_ms());
        }
        // Opened, and checked, before the store is: a log that blocks (a
        // FIFO) or never ends (a device) must not hold the store's lock.
        let mut log = open_log(&log_path)?;
        let added = store
            .tx(|rows| add(rows, &mut job, log.as_mut(), &log_path))
            .map_err(|r| anyhow::anyhow!("storing job {}: {r:?}", job.id))?;
        if added {
            migrated.jobs += 1;
            migrated.log_bytes += job.log_length;
        } else {
            migrated.skipped += 1;
        }
    }
    for (runner_id, nodes) in inventories {
        store
            .put_inventory(&runner_id, true, nodes, serde_json::json!([]))
            .map_err(|r| anyhow::anyhow!("storing the inventory of {runner_id}: {r:?}"))?;
        migrated.inventories += 1;
    }
    Ok(migrated)
}

/// A record the old server could have written: an id runners accept, times
/// RFC 3339 can write, an attempt from 1.
fn sound(job: &Job) -> Result<(), String> {
    if !sortie_protocol::valid_job_id(&job.id) {
        return Err(format!(
            "job id {:?} is not [A-Za-z0-9._-]{{1,128}}",
            job.id
        ));
    }
    if job.attempt == 0 {
        return Err(format!("job {}: attempt 0", job.id));
    }
    let times = [
        job.finished_at_ms,
        job.lease.as_ref().map(|l| l.claimed_at_ms),
        job.lease.as_ref().map(|l| l.expires_at_ms),
    ];
    if times.into_iter().flatten().any(|t| t > super::LATEST_MS) {
        return Err(format!("job {}: a time past the year 9999", job.id));
    }
    Ok(())
}

/// The size of the chunks a migrated log is stored in: what a page of the
/// log reads is then bounded by it, not by the log's size, and no log needs to
/// be held whole, here or later.
const CHUNK: usize = 1 << 20;

/// The log at `path`, opened for reading, and its length now (what is
/// migrated, should it grow meanwhile); none when there is none.
fn open_log(path: &Path) -> Result<Option<(File, u64)>> {
    use std::os::unix::fs::OpenOptionsExt;
    let file = match std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
    {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("opening {}", path.display())),
    };
    let meta = file
        .metadata()
        .with_context(|| format!("reading {}", path.display()))?;
    if !meta.is_file() {
        bail!(
            "{} is not a regular file (a FIFO, a device or a directory): move it aside and migrate again",
            path.display()
        );
    }
    Ok(Some((file, meta.len())))
}

/// Insert `job` with its `log` (none is an empty log) of the length given;
/// false when the store already holds it.
fn add(
    rows: &mut dyn Rows,
    job: &mut Job,
    log: Option<&mut (File, u64)>,
    log_path: &Path,
) -> Outcome<bool> {
    job.log_length = 0;
    job.log_hash = None;
    if !rows.insert(job)? {
        return Ok(false);
    }
    let reading = |e| Refusal::unavailable(&format!("reading {}", log_path.display()), e);
    let mut hasher = Sha256::new();
    if let Some((file, length)) = log {
        // From its start: the transaction may be a second try.
        file.rewind().map_err(reading)?;
        let mut rest = (&*file).take(*length);
        let mut buf = Vec::with_capacity(CHUNK);
        loop {
            buf.clear();
            let n = (&mut rest)
                .take(CHUNK as u64)
                .read_to_end(&mut buf)
                .map_err(reading)?;
            if n == 0 {
                break;
            }
            rows.append_log(&job.id, job.log_length, Chunk::Plain(&buf))?;
            hasher.update(&buf);
            job.log_length += n as u64;
        }
    }
    job.log_hash = Some(super::checksum::save(&hasher));
    rows.update(job)?;
    Ok(true)
}
