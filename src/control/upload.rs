//! A job's log in flight: written to the outbox file first, uploaded from there.
//!
//! The runner never waits for the network: events are appended to
//! `STATE/jobs/<id>/log.ndjson` and an uploader thread sends what is new, by
//! offset, when enough has gathered or a second has passed. The file is the
//! buffer, so memory stays flat however far the control plane falls behind, and
//! what was not delivered is still on disk for a later shot. The uploader trusts
//! only the control plane's `committed` answer: a 416 or a 412 moves it back to
//! where the server is, so no byte is skipped and none is stored twice.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use sortie_protocol::LogSummary;

use crate::control::{ControlError, ControlPlane, JobRef};
use crate::output::{Event, Sink};

/// Buffered event bytes written to the file at once.
const WRITE_BYTES: usize = 64 * 1024;
/// Buffered bytes wait at most this long before they reach the file.
const WRITE_INTERVAL: Duration = Duration::from_millis(200);
/// An upload starts once this much is waiting…
const UPLOAD_BYTES: u64 = 256 * 1024;
/// …or once anything has waited this long.
const UPLOAD_INTERVAL: Duration = Duration::from_secs(1);
/// Largest body of one upload.
const MAX_CHUNK: u64 = 1024 * 1024;
/// Answers that take less than was sent (a rewind, a refusal) tolerated in one range.
const STALLS: u32 = 8;

#[derive(Debug, Default)]
struct Progress {
    /// Bytes in the file.
    written: u64,
    /// Bytes the control plane holds.
    committed: u64,
    /// No more bytes will be written.
    closed: bool,
}

/// Progress shared between the writer, the uploader and the heartbeat.
#[derive(Debug, Default)]
pub struct Shared {
    progress: Mutex<Progress>,
    changed: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Progress> {
        self.progress.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Bytes the control plane has acknowledged.
    pub fn committed(&self) -> u64 {
        self.lock().committed
    }
}

/// The writing end: an event sink that appends to the outbox file.
pub struct JobLog {
    file: File,
    pending: Vec<u8>,
    length: u64,
    last_write: Instant,
    shared: Arc<Shared>,
}

impl JobLog {
    pub fn create(path: &Path) -> io::Result<JobLog> {
        let file = OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .open(path)?;
        Ok(JobLog {
            file,
            pending: Vec::with_capacity(WRITE_BYTES),
            length: 0,
            last_write: Instant::now(),
            shared: Arc::new(Shared::default()),
        })
    }

    pub fn shared(&self) -> Arc<Shared> {
        self.shared.clone()
    }

    fn write_pending(&mut self) -> io::Result<()> {
        if !self.pending.is_empty() {
            self.file.write_all(&self.pending)?;
            self.pending.clear();
            self.shared.lock().written = self.length;
            self.shared.changed.notify_all();
        }
        self.last_write = Instant::now();
        Ok(())
    }

    /// Write out what is buffered, sync the file, and tell the uploader no more is
    /// coming. Returns the log's length.
    pub fn finish(mut self) -> io::Result<u64> {
        self.write_pending()?;
        self.file.sync_data()?;
        self.shared.lock().closed = true;
        self.shared.changed.notify_all();
        Ok(self.length)
    }
}

impl Drop for JobLog {
    fn drop(&mut self) {
        // An abandoned log (error path) must not leave the uploader waiting forever.
        self.shared.lock().closed = true;
        self.shared.changed.notify_all();
    }
}

impl Sink for JobLog {
    fn write_event(&mut self, line: &[u8], _event: &Event<'_>) -> io::Result<()> {
        self.pending.extend_from_slice(line);
        self.length += line.len() as u64;
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

/// Send `file[from..to]` in chunks; returns the committed offset (at least `to`).
/// `on_read` sees every chunk read, with its offset (a chunk may be read again
/// when the control plane asks for bytes it lost).
pub fn send_range(
    cp: &dyn ControlPlane,
    job: &JobRef,
    file: &File,
    mut from: u64,
    to: u64,
    on_read: &mut dyn FnMut(u64, &[u8]),
) -> Result<u64, ControlError> {
    let mut stalls = 0;
    let mut buf = Vec::new();
    while from < to {
        let len = (to - from).min(MAX_CHUNK) as usize;
        buf.resize(len, 0);
        file.read_exact_at(&mut buf, from).map_err(|e| {
            ControlError::Unreachable(anyhow::anyhow!("reading the outbox log: {e}"))
        })?;
        on_read(from, &buf);
        let committed = match cp.put_log(job, from, &buf) {
            Ok(k) | Err(ControlError::Resend(k)) => k,
            Err(e) => return Err(e),
        };
        if committed < from + len as u64 {
            stalls += 1;
            if stalls >= STALLS {
                return Err(ControlError::Refused(format!(
                    "the control plane keeps refusing the log at offset {committed}"
                )));
            }
        }
        from = committed;
    }
    Ok(from)
}

/// The uploading end: a thread sending the outbox file as it grows.
pub struct Uploader {
    handle: JoinHandle<Result<LogSummary, ControlError>>,
}

impl Uploader {
    pub fn spawn(
        cp: Arc<dyn ControlPlane>,
        job: JobRef,
        path: PathBuf,
        shared: Arc<Shared>,
    ) -> io::Result<Uploader> {
        let file = File::open(&path)?;
        let handle = thread::Builder::new()
            .name(format!("upload {}", job.id))
            .spawn(move || upload_loop(&*cp, &job, &file, &shared))?;
        Ok(Uploader { handle })
    }

    /// Wait for everything written to be delivered; the log's length and checksum,
    /// or why not.
    pub fn join(self) -> Result<LogSummary, ControlError> {
        self.handle
            .join()
            .unwrap_or_else(|_| Err(ControlError::Refused("the log uploader panicked".into())))
    }
}

/// SHA-256 of the log, fed each byte once and in order however often it is read.
struct Checksum {
    hasher: Sha256,
    hashed: u64,
}

impl Checksum {
    fn feed(&mut self, offset: u64, bytes: &[u8]) {
        let end = offset + bytes.len() as u64;
        if offset <= self.hashed && self.hashed < end {
            self.hasher
                .update(&bytes[(self.hashed - offset) as usize..]);
            self.hashed = end;
        }
    }

    /// Hash what was never read for upload (bytes the control plane already held),
    /// then the summary of `file[..length]`.
    fn finish(mut self, file: &File, length: u64) -> Result<LogSummary, ControlError> {
        let mut buf = vec![0u8; 64 * 1024];
        while self.hashed < length {
            let n = ((length - self.hashed) as usize).min(buf.len());
            file.read_exact_at(&mut buf[..n], self.hashed)
                .map_err(|e| {
                    ControlError::Unreachable(anyhow::anyhow!("reading the outbox log: {e}"))
                })?;
            let offset = self.hashed;
            self.feed(offset, &buf[..n]);
        }
        Ok(LogSummary {
            length,
            sha256: hex::encode(self.hasher.finalize()),
        })
    }
}

/// Upload as the file grows. The checksum is computed here, from the bytes as
/// they are read back for upload, which keeps hashing off the thread that reads
/// the job's output.
fn upload_loop(
    cp: &dyn ControlPlane,
    job: &JobRef,
    file: &File,
    shared: &Shared,
) -> Result<LogSummary, ControlError> {
    let mut last_upload = Instant::now();
    let mut sum = Checksum {
        hasher: Sha256::new(),
        hashed: 0,
    };
    loop {
        let (from, to) = {
            let mut p = shared.lock();
            loop {
                let waiting = p.written.saturating_sub(p.committed);
                if p.closed && waiting == 0 {
                    let length = p.written;
                    drop(p);
                    return sum.finish(file, length);
                }
                let due = waiting >= UPLOAD_BYTES
                    || (waiting > 0 && (p.closed || last_upload.elapsed() >= UPLOAD_INTERVAL));
                if due {
                    break;
                }
                p = shared
                    .changed
                    .wait_timeout(p, Duration::from_millis(250))
                    .unwrap_or_else(|e| e.into_inner())
                    .0;
            }
            (p.committed, p.written)
        };
        let committed = send_range(cp, job, file, from, to, &mut |o, b| sum.feed(o, b))?;
        last_upload = Instant::now();
        shared.lock().committed = committed;
    }
}
