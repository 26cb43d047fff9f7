//! The embedded control plane: a spool directory (`--server dir:PATH`).
//!
//! It needs no server: jobs are files in `pending/`, claimed by an atomic rename
//! into `claimed/` (so runners sharing a filesystem never take the same job), and
//! results land in `done/<id>/` as `log.ndjson` and `result.json`. It serves
//! single hosts, shared volumes and one-way (air-gapped) transfers.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use sortie_protocol::{Action, ClaimRequest, ClaimedJob, Completion, Lease};

use super::{Beat, ControlError, ControlPlane, JobRef, Result};

/// The spool's fixed lease token: the rename is the lease.
const TOKEN: &str = "spool";

pub struct SpoolControl {
    root: PathBuf,
}

fn io_error(what: String, e: io::Error) -> ControlError {
    ControlError::Unreachable(anyhow::anyhow!("{what}: {e}"))
}

fn lease() -> Lease {
    Lease {
        token: TOKEN.to_string(),
        expires_at: String::new(),
        heartbeat_seconds: 0,
    }
}

impl SpoolControl {
    /// Open the spool, creating its directories if needed.
    pub fn open(root: &Path) -> Result<SpoolControl> {
        for sub in ["pending", "claimed", "done", "failed"] {
            let dir = root.join(sub);
            fs::create_dir_all(&dir)
                .map_err(|e| io_error(format!("creating {}", dir.display()), e))?;
        }
        Ok(SpoolControl {
            root: root.to_path_buf(),
        })
    }

    fn claimed_path(&self, id: &str) -> PathBuf {
        self.root.join("claimed").join(format!("{id}.json"))
    }

    fn done_dir(&self, id: &str) -> PathBuf {
        self.root.join("done").join(id)
    }

    /// Move a claimed file to `failed/` with a `.error` file beside it.
    fn reject(&self, claimed: &Path, name: &str, reason: &str) -> Result<()> {
        let failed = self.root.join("failed").join(name);
        let note = self.root.join("failed").join(format!("{name}.error"));
        fs::write(&note, format!("{reason}\n"))
            .map_err(|e| io_error(format!("writing {}", note.display()), e))?;
        fs::rename(claimed, &failed)
            .map_err(|e| io_error(format!("moving {} to failed/", claimed.display()), e))?;
        tracing::warn!(file = %name, "moved to failed/: {reason}");
        Ok(())
    }

    /// Take one pending file by renaming it into `claimed/`; `None` if another runner won.
    fn take(&self, name: &str) -> Result<Option<ClaimedJob>> {
        let from = self.root.join("pending").join(name);
        let to = self.root.join("claimed").join(name);
        match fs::rename(&from, &to) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_error(format!("claiming {}", from.display()), e)),
        }
        let stem = name.strip_suffix(".json").unwrap_or(name);
        let text = fs::read(&to).map_err(|e| io_error(format!("reading {}", to.display()), e))?;
        let spec: serde_json::Value = match serde_json::from_slice(&text) {
            Ok(v) => v,
            Err(e) => {
                self.reject(&to, name, &format!("not valid JSON: {e}"))?;
                return Ok(None);
            }
        };
        let id = spec.get("id").and_then(|v| v.as_str());
        if id != Some(stem) || !sortie_protocol::valid_job_id(stem) {
            let reason = match id {
                None => "the spec has no string \"id\"".to_string(),
                Some(id) => format!(
                    "the spec's id {id:?} must equal the file name's {stem:?} and match [A-Za-z0-9._-]{{1,128}}"
                ),
            };
            self.reject(&to, name, &reason)?;
            return Ok(None);
        }
        if self.done_dir(stem).exists() {
            self.reject(
                &to,
                name,
                &format!("done/{stem}/ exists already: job ids must be unique"),
            )?;
            return Ok(None);
        }
        Ok(Some(ClaimedJob {
            id: stem.to_string(),
            attempt: 1,
            lease: lease(),
            spec,
        }))
    }
}

impl ControlPlane for SpoolControl {
    fn claim(&self, request: &ClaimRequest) -> Result<Vec<ClaimedJob>> {
        let pending = self.root.join("pending");
        let mut names: Vec<String> = fs::read_dir(&pending)
            .map_err(|e| io_error(format!("listing {}", pending.display()), e))?
            .filter_map(|entry| entry.ok())
            .map(|entry| entry.file_name().to_string_lossy().into_owned())
            .filter(|name| name.ends_with(".json") && !name.starts_with('.'))
            .collect();
        // Oldest first by name: spool writers name files so that order means something.
        names.sort();
        let mut jobs = Vec::new();
        for name in names {
            if jobs.len() >= request.max_jobs as usize {
                break;
            }
            if let Some(job) = self.take(&name)? {
                jobs.push(job);
            }
        }
        Ok(jobs)
    }

    fn start(&self, job: &JobRef) -> Result<Lease> {
        let dir = self.done_dir(&job.id);
        fs::create_dir_all(&dir).map_err(|e| io_error(format!("creating {}", dir.display()), e))?;
        let log = dir.join("log.ndjson");
        File::create(&log).map_err(|e| io_error(format!("creating {}", log.display()), e))?;
        Ok(lease())
    }

    fn heartbeat(&self, _job: &JobRef, _log_length: u64) -> Result<Beat> {
        Ok(Beat {
            lease: lease(),
            action: Action::Continue,
        })
    }

    fn log_in_place(&self, job: &JobRef) -> Option<PathBuf> {
        Some(self.done_dir(&job.id).join("log.ndjson"))
    }

    /// The runner writes the log in place ([`Self::log_in_place`]): confirm that the
    /// file holds these bytes.
    fn put_log(&self, job: &JobRef, offset: u64, bytes: &[u8]) -> Result<u64> {
        let path = self.done_dir(&job.id).join("log.ndjson");
        let have = fs::metadata(&path)
            .map_err(|e| io_error(format!("reading {}", path.display()), e))?
            .len();
        let end = offset + bytes.len() as u64;
        if have < end {
            return Err(ControlError::Resend(have));
        }
        Ok(end)
    }

    fn complete(&self, job: &JobRef, completion: &Completion) -> Result<()> {
        let dir = self.done_dir(&job.id);
        let log = dir.join("log.ndjson");
        let synced = File::open(&log).and_then(|f| f.sync_all());
        synced.map_err(|e| io_error(format!("syncing {}", log.display()), e))?;
        let result = dir.join("result.json");
        let tmp = dir.join(".result.json.tmp");
        let body = serde_json::to_vec_pretty(completion).expect("completion serializes");
        let written = File::create(&tmp).and_then(|mut f| {
            f.write_all(&body)?;
            f.write_all(b"\n")?;
            f.sync_all()
        });
        written.map_err(|e| io_error(format!("writing {}", tmp.display()), e))?;
        fs::rename(&tmp, &result)
            .map_err(|e| io_error(format!("writing {}", result.display()), e))?;
        match fs::remove_file(self.claimed_path(&job.id)) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_error(format!("removing claimed/{}.json", job.id), e)),
        }
    }

    /// Put the file back into `pending/`: the spool has no ack window to do it.
    fn release(&self, job: &JobRef) -> Result<()> {
        let name = format!("{}.json", job.id);
        let back = self.root.join("pending").join(&name);
        fs::rename(self.claimed_path(&job.id), &back)
            .map_err(|e| io_error(format!("returning {name} to pending/"), e))
    }

    fn fail(&self, job: &JobRef, reason: &str) -> Result<()> {
        let name = format!("{}.json", job.id);
        self.reject(&self.claimed_path(&job.id), &name, reason)
    }
}
