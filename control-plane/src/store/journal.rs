//! `sortie-control-plane migrate --from-journal DIR`: bring the state of the
//! journal-based control plane (0.1) into a store, so an upgrade loses nothing.
//!
//! That server kept `journal.ndjson` (one whole job record per change, the last
//! one winning, a torn last line possible after a crash) and `logs/<id>.ndjson`.
//! Jobs keep their ids, order, attempts, leases and logs; a job already in the
//! store is left alone, so the migration can be run again after an interruption.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use anyhow::{Context, Result};
use serde::Deserialize;

use super::{Job, Outcome, Phase, Rows, Store};

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
    for line in BufReader::new(file).lines() {
        let line = line.with_context(|| format!("reading {}", path.display()))?;
        // A torn last line (a crash mid-append) was never acknowledged: skip it.
        match serde_json::from_str::<Record>(&line) {
            Ok(Record::Job(job)) => match index.get(&job.id) {
                Some(&i) => jobs[i] = *job,
                None => {
                    index.insert(job.id.clone(), jobs.len());
                    jobs.push(*job);
                }
            },
            Ok(Record::Inventory { runner_id, nodes }) => {
                inventories.insert(runner_id, nodes);
            }
            Err(_) => continue,
        }
    }
    jobs.sort_by_key(|j| j.seq);
    let mut migrated = Migrated::default();
    for mut job in jobs {
        let log_path = dir.join("logs").join(format!("{}.ndjson", job.id));
        let mut log = Vec::new();
        if let Ok(mut f) = File::open(&log_path) {
            f.read_to_end(&mut log)
                .with_context(|| format!("reading {}", log_path.display()))?;
        }
        job.log_length = log.len() as u64;
        if matches!(job.phase, Phase::Done | Phase::Failed) && job.finished_at_ms.is_none() {
            // The journal did not record when; retention counts from the migration.
            job.finished_at_ms = Some(super::now_ms());
        }
        let added = store
            .tx(|rows| add(rows, &mut job, &log))
            .map_err(|r| anyhow::anyhow!("storing job {}: {r:?}", job.id))?;
        if added {
            migrated.jobs += 1;
            migrated.log_bytes += log.len() as u64;
        } else {
            migrated.skipped += 1;
        }
    }
    for (runner_id, nodes) in inventories {
        store
            .put_inventory(&runner_id, nodes)
            .map_err(|r| anyhow::anyhow!("storing the inventory of {runner_id}: {r:?}"))?;
        migrated.inventories += 1;
    }
    Ok(migrated)
}

fn add(rows: &mut dyn Rows, job: &mut Job, log: &[u8]) -> Outcome<bool> {
    if !rows.insert(job)? {
        return Ok(false);
    }
    if !log.is_empty() {
        rows.append_log(&job.id, 0, log)?;
    }
    Ok(true)
}
