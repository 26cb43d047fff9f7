//! The outbox: everything a shot keeps about one job in flight, in one place.
//!
//! A claimed job gets `STATE/jobs/<id>/`, owned by a [`JobDir`] from the moment
//! the job is recorded until the control plane has its log and completion:
//!
//! - `journal.json`, written durably before `start` is sent: a later shot can
//!   finish what this one leaves;
//! - `starting`, created before `start` is sent: a job without it was claimed
//!   but never started, and is given back;
//! - `started`, created once `start` succeeded and before the first step: a job
//!   without it never ran a step, so it is failed or given back, never `lost`;
//! - `log.ndjson`, the job's log, appended by [`JobLog`] and uploaded from here
//!   (the file is the buffer, so memory stays flat when the control plane is slow);
//! - `completion.json`, written durably the moment the job ends, before anything
//!   is sent: a finished job is never reported lost, whatever the network does.
//!   It is made empty with the journal entry, so that the directory is synced
//!   once per job: the completion is written into it and synced alone. Empty,
//!   or cut short by a crash while it was written, it is no completion.
//!
//! A delivery the control plane refuses for good moves the directory to
//! `STATE/given-up/` with the reason beside it, so nothing is retried forever and
//! nothing is silently deleted.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use sortie_protocol::Completion;

use super::files::{self, PRIVATE_DIR, PRIVATE_FILE};
use crate::exit::Failure;
use crate::output::{Event, Sink};

const JOURNAL: &str = "journal.json";
const PREPARING: &str = "preparing";
const STARTING: &str = "starting";
const STARTED: &str = "started";
const START_FAILED: &str = "start-failed";
const LOG: &str = "log.ndjson";
const COMPLETION: &str = "completion.json";

/// Room kept on disk for a job's completion from the moment it is recorded
/// (the most result data a job may have, 1 MiB, and thousands of steps'
/// results fit): a job that fills the filesystem must not leave its own
/// outcome unwritable.
const COMPLETION_RESERVE: u64 = 2 * 1024 * 1024;

/// Largest journal entry or completion read back (a completion holds at most
/// 1 MiB of data and the steps' results).
const MAX_RECORD: u64 = 64 * 1024 * 1024;

/// Version of the journal entry's format; newer versions read older entries.
/// 2: `completion.json` is made empty with the entry (an older sortie would
/// take the empty file for a damaged completion).
pub const JOURNAL_FORMAT: u32 = 2;

/// What a shot records about a job before starting it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Journal {
    /// The entry's format ([`JOURNAL_FORMAT`]); entries without one are format 1.
    #[serde(default = "first_format")]
    pub format: u32,
    pub id: String,
    pub attempt: u64,
    pub lease_token: String,
    /// The control plane the job came from (`--server` as given).
    pub server: String,
    /// Where its log is written (the outbox file, or the spool's own file).
    pub log: PathBuf,
    pub started_at: String,
}

fn first_format() -> u32 {
    1
}

/// A job's directory in the state dir.
#[derive(Debug)]
pub struct JobDir {
    path: PathBuf,
}

impl JobDir {
    /// Create `jobs/<id>/` under the state dir `root` (private).
    pub(super) fn create(root: &Path, id: &str) -> Result<JobDir> {
        let path = root.join("jobs").join(id);
        files::ensure_dir(&path, PRIVATE_DIR)
            .with_context(|| format!("cannot create {}", path.display()))
            .map_err(Failure::io)?;
        Ok(JobDir { path })
    }

    /// A directory an earlier shot left.
    pub(super) fn existing(path: PathBuf) -> JobDir {
        JobDir { path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Where the log goes when the control plane does not keep it in place.
    pub fn log_path(&self) -> PathBuf {
        self.path.join(LOG)
    }

    /// Record the job durably, before it is started, with the empty file its
    /// completion will be written into (made first: the entry's directory
    /// sync makes both last).
    pub fn record(&self, journal: &Journal) -> Result<()> {
        // Job ids are the control plane's: another attempt of this job, or
        // another control plane's job of the same id, may have left its
        // entry here for a later shot. It is not overwritten.
        if fs::symlink_metadata(self.path.join(JOURNAL)).is_ok() {
            anyhow::bail!(
                "{} holds an entry an earlier shot left (another attempt, or another control plane's job of this id), not yet delivered",
                self.path.display()
            );
        }
        let completion = self.path.join(COMPLETION);
        match files::create_new(&completion, PRIVATE_FILE) {
            Ok(file) => {
                // Where the filesystem cannot, the room is taken when written.
                if let Err(e) = crate::os::reserve(&file, COMPLETION_RESERVE) {
                    tracing::debug!("reserving room for {}: {e}", completion.display());
                }
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => {
                return Err(Failure::io(
                    anyhow::Error::new(e)
                        .context(format!("cannot create {}", completion.display())),
                )
                .into())
            }
        }
        let body = serde_json::to_vec_pretty(journal).expect("a journal entry serializes");
        self.write(JOURNAL, &body)
    }

    /// The journal entry, `None` when the shot died before it was written.
    pub fn journal(&self) -> Result<Option<Journal>> {
        let Some(bytes) = self.read(JOURNAL)? else {
            return Ok(None);
        };
        let journal: Journal = serde_json::from_slice(&bytes).with_context(|| {
            format!(
                "{} is not a journal entry",
                self.path.join(JOURNAL).display()
            )
        })?;
        if journal.format > JOURNAL_FORMAT {
            anyhow::bail!(
                "{} was written by a newer sortie (journal format {}); upgrade this one",
                self.path.join(JOURNAL).display(),
                journal.format
            );
        }
        Ok(Some(journal))
    }

    /// Note that `start` is about to be sent.
    /// Note that this shot has begun reading the job's spec: a shot that dies
    /// from here to the start died on this job (a crash, memory), which the
    /// next shot must not hand out again.
    pub fn mark_preparing(&self) -> Result<()> {
        self.marker(PREPARING)
    }

    /// Whether a shot began reading the job's spec.
    pub fn preparing(&self) -> bool {
        fs::symlink_metadata(self.path.join(PREPARING)).is_ok()
    }

    pub fn mark_starting(&self) -> Result<()> {
        self.marker(STARTING)
    }

    /// Whether `start` may have been sent.
    pub fn starting(&self) -> bool {
        fs::symlink_metadata(self.path.join(STARTING)).is_ok()
    }

    /// Note that `start` succeeded: from now on steps may run.
    pub fn mark_started(&self) -> Result<()> {
        self.marker(STARTED)
    }

    /// A marker file. Not synced: it only has to survive sortie dying, not the
    /// machine (a power cut that loses one makes a later shot more careful).
    fn marker(&self, name: &str) -> Result<()> {
        files::replace(&self.path.join(name), PRIVATE_FILE)
            .with_context(|| format!("cannot write {}", self.path.join(name).display()))
            .map_err(Failure::io)?;
        Ok(())
    }

    /// Whether `start` succeeded (a step may have run).
    pub fn started(&self) -> bool {
        fs::symlink_metadata(self.path.join(STARTED)).is_ok()
    }

    /// Note why `start` could not be confirmed, for the shot that reports it.
    pub fn record_start_failure(&self, reason: &str) -> Result<()> {
        self.write(START_FAILED, reason.as_bytes())
    }

    /// Why `start` could not be confirmed, when a shot said so.
    pub fn start_failure(&self) -> Option<String> {
        self.read(START_FAILED)
            .ok()
            .flatten()
            .map(|b| String::from_utf8_lossy(&b).into_owned())
    }

    /// Record the job's outcome durably, before it is sent: into the file
    /// made with the journal entry (a file sync, no directory sync), or, for
    /// an entry an older sortie made, as a new file.
    pub fn record_completion(&self, completion: &Completion) -> Result<()> {
        let body = serde_json::to_vec(completion).expect("a completion serializes");
        let path = self.path.join(COMPLETION);
        // Not truncated first: that would give back the room reserved with
        // the entry, which a job that filled the disk needs here.
        let opened = OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
            .open(&path);
        let written = match opened {
            Ok(mut file) => {
                let written = file
                    .write_all(&body)
                    .and_then(|()| file.set_len(body.len() as u64))
                    .and_then(|()| file.sync_data());
                if written.is_err() {
                    // Not left torn: a later shot would take it for a completion
                    // a crash cut short.
                    let _ = file.set_len(0);
                }
                written
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => return self.write(COMPLETION, &body),
            Err(e) => Err(e),
        };
        written
            .with_context(|| format!("cannot write {}", path.display()))
            .map_err(|e| Failure::io(e).into())
    }

    /// The recorded outcome, if the job finished. The empty file made with
    /// the journal entry is none, and so is one a crash cut short while it
    /// was written: it was never synced, so never sent.
    pub fn completion(&self) -> Result<Option<Completion>> {
        let Some(bytes) = self.read(COMPLETION)? else {
            return Ok(None);
        };
        if bytes.is_empty() {
            return Ok(None);
        }
        match serde_json::from_slice(&bytes) {
            Ok(completion) => Ok(Some(completion)),
            Err(e) => {
                tracing::warn!(
                    "{} was cut short while it was written ({e}): the job has no completion",
                    self.path.join(COMPLETION).display()
                );
                Ok(None)
            }
        }
    }

    /// The control plane has everything, or the job is another attempt's now.
    /// The entry leaves `jobs/` in one step (a rename into `cleared/`) before
    /// its files are removed: a shot killed while removing them leaves no half
    /// entry (a completion without its journal) for the next shot to find.
    pub fn clear(self) {
        if let Some(cleared) = self
            .path
            .parent()
            .and_then(Path::parent)
            .map(|r| r.join(super::CLEARED))
        {
            let name = self.path.file_name().unwrap_or_default().to_string_lossy();
            let gone = cleared.join(format!("{name}-{}", crate::ids::short()));
            if files::ensure_dir(&cleared, PRIVATE_DIR).is_ok()
                && fs::rename(&self.path, &gone).is_ok()
            {
                let _ = fs::remove_dir_all(gone);
                return;
            }
        }
        let _ = fs::remove_dir_all(&self.path);
    }

    /// The control plane refused the delivery for good: keep the files in
    /// `STATE/given-up/` with the reason, so an operator can see what was not delivered.
    pub fn give_up(self, reason: &str) -> PathBuf {
        let root = self.path.parent().and_then(Path::parent);
        let name = self.path.file_name().unwrap_or_default().to_string_lossy();
        let Some(root) = root else {
            return self.path;
        };
        let kept = root
            .join("given-up")
            .join(format!("{name}-{}", crate::ids::short()));
        let moved = files::ensure_dir(&root.join("given-up"), PRIVATE_DIR)
            .and_then(|_| fs::rename(&self.path, &kept))
            .and_then(|_| {
                files::write_durably(&kept.join("reason"), reason.as_bytes(), PRIVATE_FILE)
            });
        match moved {
            Ok(()) => kept,
            Err(e) => {
                tracing::error!("cannot move {} aside: {e}", self.path.display());
                self.path
            }
        }
    }

    fn write(&self, name: &str, bytes: &[u8]) -> Result<()> {
        let path = self.path.join(name);
        files::write_durably(&path, bytes, PRIVATE_FILE)
            .with_context(|| format!("cannot write {}", path.display()))
            .map_err(|e| Failure::io(e).into())
    }

    fn read(&self, name: &str) -> Result<Option<Vec<u8>>> {
        let path = self.path.join(name);
        match files::read_regular(&path, MAX_RECORD) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
        }
    }
}

/// Buffered event bytes written to the file at once.
const WRITE_BYTES: usize = 64 * 1024;
/// Buffered bytes wait at most this long before they reach the file.
const WRITE_INTERVAL: Duration = Duration::from_millis(200);

#[derive(Debug, Default)]
struct Progress {
    /// Bytes in the file.
    written: u64,
    /// Bytes the control plane holds.
    committed: u64,
    /// No more bytes will be written.
    closed: bool,
}

/// How far a log has been written and delivered, shared between the writer, the
/// uploader and the heartbeat.
#[derive(Debug, Default)]
pub struct LogProgress {
    progress: Mutex<Progress>,
    changed: Condvar,
}

impl LogProgress {
    fn lock(&self) -> MutexGuard<'_, Progress> {
        self.progress.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Bytes the control plane has acknowledged.
    pub fn committed(&self) -> u64 {
        self.lock().committed
    }

    /// Record what the control plane acknowledged.
    pub fn set_committed(&self, committed: u64) {
        self.lock().committed = committed;
    }

    /// Wait until bytes are due for upload: at least `batch` waiting, or any waiting
    /// once `interval` has passed since `last` (or the log is closed). Returns the
    /// range to send and whether it is the last (the log is closed), or the log's
    /// length when it is closed and all of it is delivered.
    pub fn wait_due(
        &self,
        batch: u64,
        interval: Duration,
        last: Instant,
    ) -> Result<(u64, u64, bool), u64> {
        let mut p = self.lock();
        loop {
            let waiting = p.written.saturating_sub(p.committed);
            if p.closed && waiting == 0 {
                return Err(p.written);
            }
            if waiting >= batch || (waiting > 0 && (p.closed || last.elapsed() >= interval)) {
                return Ok((p.committed, p.written, p.closed));
            }
            p = self
                .changed
                .wait_timeout(p, Duration::from_millis(250))
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    fn wrote(&self, written: u64) {
        self.lock().written = written;
        self.changed.notify_all();
    }

    fn close(&self) {
        self.lock().closed = true;
        self.changed.notify_all();
    }
}

/// The writing end of a job's log: an event sink that appends to its file.
///
/// A write that fails (a full disk) cuts the file back to its last whole event,
/// so the log stays NDJSON with `seq` whole, and reports the error; the caller
/// stops the job. Nothing after that point is written.
pub struct JobLog {
    file: File,
    path: PathBuf,
    pending: Vec<u8>,
    /// Bytes whole in the file.
    on_disk: u64,
    last_write: Instant,
    progress: Arc<LogProgress>,
    failed: bool,
}

impl JobLog {
    /// Start the log at `path`: a new file, or the empty one a spool made for it.
    pub fn create(path: &Path) -> io::Result<JobLog> {
        let file = OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .mode(PRIVATE_FILE)
            .custom_flags(libc::O_NOFOLLOW)
            .open(path)?;
        Ok(JobLog {
            file,
            path: path.to_path_buf(),
            pending: Vec::with_capacity(WRITE_BYTES),
            on_disk: 0,
            last_write: Instant::now(),
            progress: Arc::new(LogProgress::default()),
            failed: false,
        })
    }

    pub fn progress(&self) -> Arc<LogProgress> {
        self.progress.clone()
    }

    fn write_pending(&mut self) -> io::Result<()> {
        self.last_write = Instant::now();
        if self.pending.is_empty() {
            return Ok(());
        }
        if self.failed {
            self.pending.clear();
            return Err(io::Error::other("the log could not be written before"));
        }
        if let Err(e) = self.file.write_all(&self.pending) {
            // A part of an event may have reached the file: cut it back.
            self.failed = true;
            self.pending.clear();
            let _ = self.file.set_len(self.on_disk);
            let _ = self.file.seek(SeekFrom::Start(self.on_disk));
            return Err(io::Error::new(
                e.kind(),
                format!("writing {}: {e}", self.path.display()),
            ));
        }
        self.on_disk += self.pending.len() as u64;
        self.pending.clear();
        self.progress.wrote(self.on_disk);
        Ok(())
    }

    /// Write out what is buffered, sync the file, and tell the uploader no more is
    /// coming. Returns the log's length (what the file holds whole), and the error
    /// that cut it short, if any.
    pub fn finish(mut self) -> (u64, Option<io::Error>) {
        let mut error = self.write_pending().err();
        if let Err(e) = self.file.sync_data() {
            error.get_or_insert(e);
        }
        self.progress.close();
        (self.on_disk, error)
    }
}

impl Drop for JobLog {
    fn drop(&mut self) {
        // An abandoned log (error path) must not leave the uploader waiting forever.
        self.progress.close();
    }
}

impl Sink for JobLog {
    fn write_event(&mut self, line: &[u8], _event: &Event<'_>) -> io::Result<()> {
        self.pending.extend_from_slice(line);
        self.appended()
    }

    fn buffer(&mut self) -> Option<&mut Vec<u8>> {
        Some(&mut self.pending)
    }

    fn appended(&mut self) -> io::Result<()> {
        if self.pending.len() >= WRITE_BYTES {
            self.write_pending()?;
        }
        Ok(())
    }

    fn tick(&mut self) -> io::Result<()> {
        if self.last_write.elapsed() >= WRITE_INTERVAL {
            self.write_pending()?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::StateDir;

    #[test]
    fn the_completion_goes_into_the_file_made_with_the_journal_entry() {
        let tmp = tempfile::tempdir().unwrap();
        let state = StateDir::open(tmp.path(), Duration::ZERO).unwrap();
        let dir = state.job_dir("j").unwrap();
        dir.record(&Journal {
            format: JOURNAL_FORMAT,
            id: "j".into(),
            attempt: 1,
            lease_token: "t".into(),
            server: "https://cp/".into(),
            log: dir.log_path(),
            started_at: "2026-11-29T00:00:00Z".into(),
        })
        .unwrap();
        let path = dir.path().join(COMPLETION);
        assert_eq!(fs::read(&path).unwrap(), b"", "made empty with the entry");
        // An entry is never overwritten by another job of the same id.
        let again = dir.journal().unwrap().unwrap();
        let err = dir.record(&again).unwrap_err().to_string();
        assert!(err.contains("earlier shot left"), "{err}");
        assert_eq!(dir.completion().unwrap(), None);
        let completion = Completion {
            status: sortie_protocol::JobStatus::Succeeded,
            exit_code: Some(0),
            started_at: "a".into(),
            finished_at: "b".into(),
            steps: Vec::new(),
            data: Default::default(),
            log: sortie_protocol::LogSummary {
                length: 3,
                sha256: "ab".repeat(32),
            },
            error: None,
        };
        dir.record_completion(&completion).unwrap();
        assert_eq!(dir.completion().unwrap(), Some(completion.clone()));
        // Cut short by a crash while it was written: no completion, and the
        // next one written replaces it whole.
        let whole = fs::read(&path).unwrap();
        fs::write(&path, &whole[..whole.len() / 2]).unwrap();
        assert_eq!(dir.completion().unwrap(), None);
        dir.record_completion(&completion).unwrap();
        assert_eq!(fs::read(&path).unwrap(), whole);
        // An entry an older sortie made has no such file: it is made whole.
        fs::remove_file(&path).unwrap();
        dir.record_completion(&completion).unwrap();
        assert_eq!(dir.completion().unwrap(), Some(completion));
    }
}
