//! The state dir: the lock that keeps shots apart, and the jobs in flight.
//!
//! Layout: `lock` (held for the whole shot, so an overlapping cron tick cannot
//! deliver the same outbox twice), `jobs/<id>/` (the journal entry written before
//! the job starts, the log being uploaded and the completion being sent; removed
//! once the control plane has both), `work/` (the jobs' private workspaces).

use std::fs::{self, File, OpenOptions, TryLockError};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use crate::exit::{Cause, Failure};

pub struct StateDir {
    root: PathBuf,
    /// Held until the shot ends; the OS releases it if sortie dies.
    _lock: File,
}

fn private_dir(path: &Path) -> Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
        .with_context(|| format!("cannot create state directory {}", path.display()))
}

impl StateDir {
    /// Open the state dir and take its lock, waiting up to `wait` for another shot
    /// to release it (then failing with the "busy" exit code).
    pub fn open(root: &Path, wait: Duration) -> Result<StateDir> {
        private_dir(root).map_err(Failure::config)?;
        let lock_path = root.join("lock");
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(&lock_path)
            .with_context(|| format!("cannot open {}", lock_path.display()))
            .map_err(Failure::config)?;
        let until = Instant::now() + wait;
        loop {
            match lock.try_lock() {
                Ok(()) => break,
                Err(TryLockError::WouldBlock) if Instant::now() < until => {
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err(TryLockError::WouldBlock) => {
                    return Err(Failure::new(
                        Cause::Busy,
                        anyhow::anyhow!(
                            "another shot is running with state dir {}; this one stops",
                            root.display()
                        ),
                    )
                    .into())
                }
                Err(TryLockError::Error(e)) => {
                    return Err(
                        anyhow::Error::new(e).context(format!("locking {}", lock_path.display()))
                    )
                }
            }
        }
        Ok(StateDir {
            root: root.to_path_buf(),
            _lock: lock,
        })
    }

    /// `jobs/<id>/`, created.
    pub fn job_dir(&self, id: &str) -> Result<PathBuf> {
        let dir = self.root.join("jobs").join(id);
        private_dir(&dir).map_err(Failure::io)?;
        Ok(dir)
    }

    /// The job dirs left by earlier shots (jobs whose delivery did not finish).
    pub fn pending_jobs(&self) -> Vec<PathBuf> {
        let mut dirs: Vec<PathBuf> = std::fs::read_dir(self.root.join("jobs"))
            .map(|entries| {
                entries
                    .flatten()
                    .map(|e| e.path())
                    .filter(|p| p.is_dir())
                    .collect()
            })
            .unwrap_or_default();
        dirs.sort();
        dirs
    }

    /// `work/`, created: where job workspaces are made.
    pub fn work_dir(&self) -> Result<PathBuf> {
        let dir = self.root.join("work");
        private_dir(&dir).map_err(Failure::io)?;
        Ok(dir)
    }
}

/// Write a file so that it is either whole or absent: temp file, fsync, rename, fsync dir.
pub fn write_durably(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().context("a file path has a directory")?;
    let tmp = path.with_extension("tmp");
    let write = || -> std::io::Result<()> {
        let mut file = OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .mode(0o600)
            .open(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        fs::rename(&tmp, path)?;
        File::open(dir)?.sync_all()
    };
    write()
        .with_context(|| format!("cannot write {}", path.display()))
        .map_err(|e| Failure::io(e).into())
}

/// What a shot records about a job before starting it, so that a later shot can
/// finish its delivery, or report it lost, if this one dies.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Journal {
    pub id: String,
    pub attempt: u64,
    pub lease_token: String,
    /// The control plane the job came from (`--server` as given).
    pub server: String,
    /// Where its log is written (the outbox file, or the spool's own file).
    pub log: PathBuf,
    pub started_at: String,
}

impl Journal {
    pub fn write(&self, dir: &Path) -> Result<()> {
        let body = serde_json::to_vec_pretty(self).expect("a journal entry serializes");
        write_durably(&dir.join("journal.json"), &body)
    }

    pub fn read(dir: &Path) -> Result<Journal> {
        let path = dir.join("journal.json");
        let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        serde_json::from_slice(&bytes)
            .with_context(|| format!("{} is not a journal entry", path.display()))
    }
}
