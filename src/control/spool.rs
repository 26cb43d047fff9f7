//! The embedded control plane: a spool directory (`--server dir:PATH`).
//!
//! It needs no server: jobs are files in `pending/`, claimed by an atomic rename
//! into `claimed/` (so runners sharing a filesystem never take the same job), and
//! results land in `done/<id>/` as `log.ndjson` and `result.json`. It serves
//! single hosts, shared volumes and one-way (air-gapped) transfers.
//!
//! Others write to a spool (that is its point), so nothing in it is trusted: a
//! job file is read only if it is a regular file of at most [`MAX_SPEC`] bytes
//! (a FIFO, a symlink to `/dev/zero`, a directory or a huge file goes to
//! `failed/` with its reason), and sortie's own files are created without
//! following anything planted in their place. What sortie writes for the job's
//! submitter — logs, results, `.error` notes — is group-readable (0640, in 0750
//! directories); nothing is world-accessible.
//!
//! A spool whose reader takes output events of several lines (the
//! `log_multiline` extension of the log format) says so with a file named
//! [`MULTILINE`] in its root (`sortie spool init --log-multiline`); without
//! it, `log.ndjson` has one line per event, as log format v1 says.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use sortie_protocol::{Action, ClaimRequest, ClaimedJob, Completion, Lease, LogTail};

use super::{Beat, ControlError, ControlPlane, JobRef, Result};
use crate::state::files;

/// Largest job file read from `pending/`.
pub const MAX_SPEC: u64 = 16 * 1024 * 1024;
/// Mode of the directories sortie creates in a spool.
const SPOOL_DIR: u32 = 0o750;
/// Mode of the files sortie writes in a spool.
const SPOOL_FILE: u32 = 0o640;
/// The directories of a spool.
const DIRS: [&str; 4] = ["pending", "claimed", "done", "failed"];

/// The file whose presence offers the `log_multiline` extension.
const MULTILINE: &str = "log-multiline";

/// The spool's fixed lease token: the rename is the lease.
const TOKEN: &str = "spool";

pub struct SpoolControl {
    root: PathBuf,
    /// `pending/` as last listed, oldest first, not yet tried: a shot that
    /// claims job after job lists the directory again only when these are
    /// gone (20,000 waiting files made each claim a listing).
    listed: std::sync::Mutex<std::collections::VecDeque<String>>,
    /// The spool offers the `log_multiline` extension.
    multiline: bool,
}

fn io_error(what: String, e: io::Error) -> ControlError {
    ControlError::Io(anyhow::anyhow!("spool: {what}: {e}"))
}

fn lease() -> Lease {
    Lease {
        token: TOKEN.to_string(),
        expires_at: String::new(),
        heartbeat_seconds: 0,
    }
}

impl SpoolControl {
    /// Open the spool at `root`, which must exist (a typo must not become a new,
    /// empty spool); its directories are created if they are missing.
    pub fn open(root: &Path) -> Result<SpoolControl> {
        match fs::metadata(root) {
            Ok(meta) if meta.is_dir() => {}
            Ok(_) => {
                return Err(ControlError::Config(anyhow::anyhow!(
                    "the spool {} is not a directory",
                    root.display()
                )))
            }
            Err(e) => {
                return Err(ControlError::Config(anyhow::anyhow!(
                    "no spool at {}: {e} (create it with `sortie spool init {}`)",
                    root.display(),
                    root.display()
                )))
            }
        }
        for sub in DIRS {
            let dir = root.join(sub);
            files::ensure_dir(&dir, SPOOL_DIR)
                .map_err(|e| io_error(format!("creating {}", dir.display()), e))?;
        }
        Ok(SpoolControl {
            root: root.to_path_buf(),
            listed: Default::default(),
            multiline: fs::symlink_metadata(root.join(MULTILINE)).is_ok(),
        })
    }

    /// Create a spool's directories (`sortie spool init`); with `multiline`,
    /// the file that offers the `log_multiline` extension too.
    pub fn init(root: &Path, multiline: bool) -> io::Result<()> {
        fs::DirBuilder::new().recursive(true).create(root)?;
        DIRS.iter()
            .try_for_each(|sub| files::ensure_dir(&root.join(sub), SPOOL_DIR))?;
        // Whatever already stands at the name offers it (see `open`).
        match multiline.then(|| files::create_new(&root.join(MULTILINE), SPOOL_FILE)) {
            Some(Err(e)) if e.kind() != io::ErrorKind::AlreadyExists => Err(e),
            _ => Ok(()),
        }
    }

    /// Whether the spool can be used, without changing anything (`sortie check`).
    pub fn check(root: &Path) -> std::result::Result<(), String> {
        for sub in DIRS {
            let dir = root.join(sub);
            match fs::symlink_metadata(&dir) {
                Ok(meta) if meta.is_dir() => {}
                Ok(_) => return Err(format!("{} is not a directory", dir.display())),
                Err(e) => return Err(format!("{}: {e}", dir.display())),
            }
        }
        Ok(())
    }

    fn claimed_path(&self, id: &str) -> PathBuf {
        self.root.join("claimed").join(format!("{id}.json"))
    }

    fn done_dir(&self, id: &str) -> PathBuf {
        self.root.join("done").join(id)
    }

    /// Move a claimed file to `failed/` with a `.error` file beside it (under a
    /// new name when something already stands at its own).
    fn reject(&self, claimed: &Path, name: &str, reason: &str) -> Result<()> {
        let failed_dir = self.root.join("failed");
        let taken = |n: &str| fs::symlink_metadata(failed_dir.join(n)).is_ok();
        let target = if taken(name) || taken(&format!("{name}.error")) {
            format!("{name}.{}", crate::ids::short())
        } else {
            name.to_string()
        };
        let note = failed_dir.join(format!("{target}.error"));
        files::replace(&note, SPOOL_FILE)
            .and_then(|mut f| io::Write::write_all(&mut f, format!("{reason}\n").as_bytes()))
            .map_err(|e| io_error(format!("writing {}", note.display()), e))?;
        fs::rename(claimed, failed_dir.join(&target))
            .map_err(|e| io_error(format!("moving {} to failed/", claimed.display()), e))?;
        tracing::warn!(file = %target.escape_debug(), "moved to failed/: {}", reason.escape_debug());
        Ok(())
    }

    /// A claimed Rundeck job file (`NAME.yaml`, `.yml`, `.xml`) as the spec
    /// `{"id": NAME, "rundeck": TEXT}` the runner carries over, kept where a
    /// claimed job spec is kept (`claimed/NAME.json`).
    fn wrap_rundeck(
        &self,
        claimed: &Path,
        stem: &str,
        text: Vec<u8>,
    ) -> std::result::Result<serde_json::Value, String> {
        let text = String::from_utf8(text).map_err(|_| "not UTF-8 text".to_string())?;
        let file = claimed
            .file_name()
            .map(|n| n.to_string_lossy().into_owned());
        let spec = serde_json::json!({ "id": stem, "rundeck": text, "rundeck_file": file });
        if !sortie_protocol::valid_job_id(stem) {
            return Err(format!(
                "{stem:?} is not a job id ([A-Za-z0-9._-]{{1,128}})"
            ));
        }
        let path = self.claimed_path(stem);
        let body = serde_json::to_vec(&spec).expect("a spec serializes");
        files::create_new(&path, SPOOL_FILE)
            .and_then(|mut f| io::Write::write_all(&mut f, &body))
            .map_err(|e| format!("claimed/{stem}.json: {e} (another job file has this id?)"))?;
        let _ = fs::remove_file(claimed);
        Ok(spec)
    }

    /// The job files of `pending/`, oldest first by name (spool writers name
    /// files so that order means something).
    fn list_pending(&self) -> Result<Vec<String>> {
        let pending = self.root.join("pending");
        let mut names: Vec<String> = fs::read_dir(&pending)
            .map_err(|e| io_error(format!("listing {}", pending.display()), e))?
            .filter_map(|entry| entry.ok())
            .map(|entry| entry.file_name().to_string_lossy().into_owned())
            .filter(|name| {
                [".json", ".yaml", ".yml", ".xml"]
                    .iter()
                    .any(|ext| name.ends_with(ext))
                    && !name.starts_with('.')
            })
            .collect();
        names.sort();
        Ok(names)
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
        let (stem, rundeck) = match name.rsplit_once('.') {
            Some((stem, "yaml" | "yml" | "xml")) => (stem, true),
            _ => (name.strip_suffix(".json").unwrap_or(name), false),
        };
        let text = match files::read_regular(&to, MAX_SPEC) {
            Ok(text) => text,
            Err(e) => {
                self.reject(&to, name, &format!("cannot be read as a job file: {e}"))?;
                return Ok(None);
            }
        };
        // Before a Rundeck file is wrapped (which replaces it in claimed/).
        if self.done_dir(stem).exists() {
            self.reject(
                &to,
                name,
                &format!("done/{stem}/ exists already: job ids must be unique"),
            )?;
            return Ok(None);
        }
        let spec = if rundeck {
            match self.wrap_rundeck(&to, stem, text) {
                Ok(spec) => spec,
                Err(reason) => {
                    self.reject(&to, name, &reason)?;
                    return Ok(None);
                }
            }
        } else {
            match sortie_protocol::json::from_slice(&text) {
                Ok(v) => v,
                Err(e) => {
                    self.reject(&to, name, &format!("not valid JSON: {e}"))?;
                    return Ok(None);
                }
            }
        };
        let problem = match sortie_protocol::SpecHeader::of(&spec) {
            Err(e) => Some(e),
            Ok(header) if header.id != stem => Some(format!(
                "the spec's id {:?} must equal the file name's {stem:?}",
                header.id
            )),
            Ok(_) => None,
        };
        if let Some(reason) = problem {
            self.reject(&to, name, &reason)?;
            return Ok(None);
        }
        Ok(Some(ClaimedJob {
            id: stem.to_string(),
            attempt: 1,
            lease: lease(),
            spec,
            log_tail_bytes: 0,
            log_encodings: Vec::new(),
            log_multiline: self.multiline,
        }))
    }
}

impl ControlPlane for SpoolControl {
    fn claim(&self, request: &ClaimRequest) -> Result<Vec<ClaimedJob>> {
        let mut listed = self.listed.lock().unwrap_or_else(|e| e.into_inner());
        let mut jobs = Vec::new();
        let mut fresh = false;
        while jobs.len() < request.max_jobs as usize {
            let Some(name) = listed.pop_front() else {
                // Out of names: list pending/ again, at most once per claim.
                if fresh {
                    break;
                }
                *listed = self.list_pending()?.into();
                fresh = true;
                continue;
            };
            // One entry that cannot be taken does not hold up the others.
            match self.take(&name) {
                Ok(Some(job)) => jobs.push(job),
                Ok(None) => {}
                Err(e) => tracing::error!(file = %name.escape_debug(), "skipped: {e}"),
            }
        }
        Ok(jobs)
    }

    fn start(&self, job: &JobRef) -> Result<Lease> {
        let dir = self.done_dir(&job.id);
        files::ensure_dir(&dir, SPOOL_DIR)
            .map_err(|e| io_error(format!("creating {}", dir.display()), e))?;
        let log = dir.join("log.ndjson");
        files::replace(&log, SPOOL_FILE)
            .map_err(|e| io_error(format!("creating {}", log.display()), e))?;
        Ok(lease())
    }

    fn heartbeat(&self, _job: &JobRef, _log_length: u64) -> Result<Beat> {
        Ok(Beat {
            lease: lease(),
            action: Action::Continue,
        })
    }

    fn hand_written(&self) -> bool {
        true
    }

    fn log_in_place(&self, job: &JobRef) -> Option<PathBuf> {
        Some(self.done_dir(&job.id).join("log.ndjson"))
    }

    /// The runner writes the log in place ([`Self::log_in_place`]): confirm that the
    /// file holds these bytes.
    fn put_log(&self, job: &JobRef, offset: u64, bytes: &[u8]) -> Result<u64> {
        let path = self.done_dir(&job.id).join("log.ndjson");
        let have = fs::symlink_metadata(&path)
            .map_err(|e| io_error(format!("reading {}", path.display()), e))?
            .len();
        let end = offset + bytes.len() as u64;
        if have < end {
            return Err(ControlError::Resend(have));
        }
        Ok(end)
    }

    fn complete(&self, job: &JobRef, completion: &Completion, _: Option<&LogTail>) -> Result<()> {
        let dir = self.done_dir(&job.id);
        let log = dir.join("log.ndjson");
        let synced = files::open_regular(&log).and_then(|f| f.sync_all());
        synced.map_err(|e| io_error(format!("syncing {}", log.display()), e))?;
        let result = dir.join("result.json");
        let mut body = serde_json::to_vec_pretty(completion).expect("completion serializes");
        body.push(b'\n');
        files::write_durably(&result, &body, SPOOL_FILE)
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
