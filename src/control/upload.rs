//! Uploading a job's log from its outbox file, by offset.
//!
//! The runner never waits for the network: events are appended to the outbox
//! file (`state::outbox::JobLog`) and an uploader thread sends what is new, by
//! offset, when enough has gathered or a second has passed. The file is the
//! buffer, so memory stays flat however far the control plane falls behind, and
//! what was not delivered is still on disk for a later shot. The uploader trusts
//! only the control plane's `committed` answer: a 416 or a 412 moves it back to
//! where the server is, so no byte is skipped and none is stored twice.
//!
//! Once a range is sent, its writeback to disk is started, so the fsync at the
//! job's end does not wait for the whole log to be written.
//!
//! Over the network, the next chunk is read and hashed on a second thread while
//! the one before is compressed, sent and stored: the runner's work and the
//! control plane's overlap instead of adding up, for one chunk more in memory.
//!
//! When the control plane offered it (`JobRef::log_tail_bytes`), what is left
//! to send once the job has ended, if it is that small, is not uploaded but
//! handed back to go with the completion: a short job's one upload and its
//! completion become one request.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use sortie_protocol::{LogSummary, LogTail};

use crate::control::{ControlError, ControlPlane, JobRef};
use crate::os;
use crate::state::files;
use crate::state::outbox::LogProgress;

/// An upload starts once this much is waiting…
const UPLOAD_BYTES: u64 = 256 * 1024;
/// …or once anything has waited this long.
const UPLOAD_INTERVAL: Duration = Duration::from_secs(1);
/// Largest body of one upload.
const MAX_CHUNK: u64 = 1024 * 1024;
/// Largest read of a log kept in place (the spool), which is read back only
/// to be hashed: a buffer this size is all it needs.
const IN_PLACE_CHUNK: u64 = 64 * 1024;
/// Pauses before a failed read of the outbox is tried again: a disk or a
/// network filesystem may fail a read once and serve it the next time.
const READ_RETRIES: [Duration; 2] = [Duration::from_millis(10), Duration::from_millis(200)];
/// Answers that take less than was sent (a rewind, a refusal) tolerated in one range.
const STALLS: u32 = 8;

/// Send `file[from..to]` in chunks; returns the committed offset (at least `to`).
/// `on_read` sees every chunk read, with its offset (a chunk may be read again
/// when the control plane asks for bytes it lost).
pub fn send_range(
    cp: &dyn ControlPlane,
    job: &JobRef,
    file: &File,
    mut from: u64,
    to: u64,
    on_read: &mut (dyn FnMut(u64, &[u8]) + Send),
) -> Result<u64, ControlError> {
    let mut stalls = 0;
    let mut put = |offset: u64, bytes: &[u8]| {
        let committed = match cp.put_log(job, offset, bytes) {
            Ok(k) | Err(ControlError::Resend(k)) => k,
            Err(e) => return Err(e),
        };
        if committed < offset + bytes.len() as u64 {
            stalls += 1;
            if stalls >= STALLS {
                return Err(ControlError::Refused(format!(
                    "the control plane keeps refusing the log at offset {committed}"
                )));
            }
        }
        Ok(committed)
    };
    let in_place = cp.log_in_place(job).is_some();
    while from < to {
        let chunks = Chunks { file, from, to };
        from = if in_place {
            chunks.send_in_turn(IN_PLACE_CHUNK, on_read, &mut put)?
        } else if to - from <= MAX_CHUNK {
            // One chunk: nothing to read ahead (most uploads while a job runs).
            chunks.send_in_turn(MAX_CHUNK, on_read, &mut put)?
        } else {
            chunks.send_read_ahead(MAX_CHUNK, on_read, &mut put)?
        };
    }
    Ok(from)
}

/// `file[from..to]`, sent in order by chunks until the control plane's
/// `committed` answer is anything but the end of the chunk it was sent (a
/// rewind, or bytes it already held): the caller goes on from there.
struct Chunks<'f> {
    file: &'f File,
    from: u64,
    to: u64,
}

type Put<'p> = dyn FnMut(u64, &[u8]) -> Result<u64, ControlError> + 'p;

impl Chunks<'_> {
    fn read(&self, buf: &mut Vec<u8>, at: u64, chunk: u64) -> Result<(), ControlError> {
        buf.resize((self.to - at).min(chunk) as usize, 0);
        read_log(self.file, buf, at)
    }

    /// Read a chunk, send it, read the next: for a control plane that takes a
    /// chunk at once (the spool only checks the file's length).
    fn send_in_turn(
        &self,
        chunk: u64,
        on_read: &mut dyn FnMut(u64, &[u8]),
        put: &mut Put<'_>,
    ) -> Result<u64, ControlError> {
        let mut buf = Vec::new();
        let mut at = self.from;
        while at < self.to {
            self.read(&mut buf, at, chunk)?;
            on_read(at, &buf);
            let end = at + buf.len() as u64;
            at = put(at, &buf)?;
            if at != end {
                break;
            }
        }
        Ok(at)
    }

    /// Read (and hash) the next chunk on a thread of its own while this one is
    /// compressed, sent and taken in by the control plane: the two sides'
    /// work overlaps instead of adding up. At most two chunks are in memory.
    fn send_read_ahead(
        &self,
        chunk: u64,
        on_read: &mut (dyn FnMut(u64, &[u8]) + Send),
        put: &mut Put<'_>,
    ) -> Result<u64, ControlError> {
        let sent = thread::scope(|scope| {
            let (full, read) = mpsc::sync_channel::<Result<(u64, Vec<u8>), ControlError>>(0);
            let (give_back, spare) = mpsc::channel::<Vec<u8>>();
            let on_read = &mut *on_read;
            let reader = thread::Builder::new()
                .name("upload read-ahead".into())
                .spawn_scoped(scope, move || {
                    let mut at = self.from;
                    while at < self.to {
                        let mut buf = spare.try_recv().unwrap_or_default();
                        let next = self.read(&mut buf, at, chunk).map(|()| {
                            on_read(at, &buf);
                            (at, buf)
                        });
                        let failed = next.is_err();
                        // The sender stopped taking (a rewind, an error): so does this.
                        if full.send(next).is_err() || failed {
                            return;
                        }
                        at += chunk.min(self.to - at);
                    }
                });
            reader.ok()?;
            let mut at = self.from;
            for next in read {
                let (offset, buf) = match next {
                    Ok(next) => next,
                    Err(e) => return Some(Err(e)),
                };
                let end = offset + buf.len() as u64;
                at = match put(offset, &buf) {
                    Ok(committed) => committed,
                    Err(e) => return Some(Err(e)),
                };
                if at != end {
                    break;
                }
                let _ = give_back.send(buf);
            }
            Some(Ok(at))
        });
        // No thread to read ahead on: each chunk in turn.
        sent.unwrap_or_else(|| self.send_in_turn(chunk, on_read, put))
    }
}

/// The uploading end: a thread sending the outbox file as it grows.
pub struct Uploader {
    handle: JoinHandle<Result<Uploaded, ControlError>>,
}

/// What the uploader did with the whole log.
#[derive(Debug, Clone)]
pub struct Uploaded {
    pub summary: LogSummary,
    /// The last bytes, left for the completion to carry.
    pub tail: Option<LogTail>,
}

impl Uploader {
    pub fn spawn(
        cp: Arc<dyn ControlPlane>,
        job: JobRef,
        path: PathBuf,
        progress: Arc<LogProgress>,
    ) -> io::Result<Uploader> {
        let file = files::open_regular(&path)?;
        let handle = thread::Builder::new()
            .name(format!("upload {}", job.id))
            .spawn(move || upload_loop(&*cp, &job, &file, &progress))?;
        Ok(Uploader { handle })
    }

    /// Wait for everything written to be delivered (but the tail left for the
    /// completion); the log's length and checksum, or why not.
    pub fn join(self) -> Result<Uploaded, ControlError> {
        self.handle
            .join()
            .unwrap_or_else(|_| Err(ControlError::Refused("the log uploader panicked".into())))
    }
}

/// Length and checksum of `path[..length]`, read from the file.
pub fn summarize(path: &Path, length: u64) -> io::Result<LogSummary> {
    let file = files::open_regular(path)?;
    Checksum::new()
        .finish(&file, length)
        .map_err(|e| io::Error::other(e.to_string()))
}

/// The summary of an empty log.
pub fn empty_summary() -> LogSummary {
    LogSummary {
        length: 0,
        sha256: hex::encode(Sha256::new().finalize()),
    }
}

/// The summary of a log of `length` bytes that could not be read back: its
/// completion is recorded with it, and delivered once a later read sums it.
pub fn unsummed(length: u64) -> LogSummary {
    LogSummary {
        length,
        sha256: String::new(),
    }
}

/// Whether `summary` holds the log's checksum (see [`unsummed`]).
pub fn summed(summary: &LogSummary) -> bool {
    !summary.sha256.is_empty()
}

/// SHA-256 of the log, fed each byte once and in order however often it is read.
struct Checksum {
    hasher: Sha256,
    hashed: u64,
}

impl Checksum {
    fn new() -> Checksum {
        Checksum {
            hasher: Sha256::new(),
            hashed: 0,
        }
    }

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
            read_log(file, &mut buf[..n], self.hashed)?;
            let offset = self.hashed;
            self.feed(offset, &buf[..n]);
        }
        Ok(LogSummary {
            length,
            sha256: hex::encode(self.hasher.finalize()),
        })
    }
}

/// `file[at..at + buf.len()]`, tried again after a pause when the read fails
/// (a file shorter than asked for is not tried again: it will not grow back).
/// A read that keeps failing is the state dir's trouble, not the control
/// plane's.
fn read_log(file: &File, buf: &mut [u8], at: u64) -> Result<(), ControlError> {
    let mut pauses = READ_RETRIES.iter();
    loop {
        match file.read_exact_at(buf, at) {
            Ok(()) => return Ok(()),
            Err(e) => match pauses.next() {
                Some(pause) if e.kind() != io::ErrorKind::UnexpectedEof => {
                    tracing::warn!("reading the outbox log at byte {at}: {e}; trying again");
                    thread::sleep(*pause);
                }
                _ if e.kind() == io::ErrorKind::UnexpectedEof => {
                    return Err(ControlError::Io(anyhow::anyhow!(
                        "the outbox log ends before byte {}, which it was written to",
                        at + buf.len() as u64
                    )))
                }
                _ => {
                    return Err(ControlError::Io(anyhow::anyhow!(
                        "reading the outbox log at byte {at}: {e}"
                    )))
                }
            },
        }
    }
}

/// Upload as the file grows. The checksum is computed here, from the bytes as
/// they are read back for upload, which keeps hashing off the thread that reads
/// the job's output.
fn upload_loop(
    cp: &dyn ControlPlane,
    job: &JobRef,
    file: &File,
    progress: &LogProgress,
) -> Result<Uploaded, ControlError> {
    let mut last_upload = Instant::now();
    let mut sum = Checksum::new();
    loop {
        let (from, to, last) = match progress.wait_due(UPLOAD_BYTES, UPLOAD_INTERVAL, last_upload) {
            Ok(range) => range,
            Err(length) => {
                let summary = sum.finish(file, length)?;
                return Ok(Uploaded {
                    summary,
                    tail: None,
                });
            }
        };
        if last && to - from <= job.log_tail_bytes {
            if let Some(tail) = read_tail(file, from, to)? {
                sum.feed(from, tail.data.as_bytes());
                let summary = sum.finish(file, to)?;
                return Ok(Uploaded {
                    summary,
                    tail: Some(tail),
                });
            }
        }
        let committed = send_range(cp, job, file, from, to, &mut |o, b| sum.feed(o, b))?;
        // The job's log is made durable when it ends: what is written out
        // now, off the job's own thread, is not left for that fsync to wait on.
        os::start_writeback(file, from, to - from);
        last_upload = Instant::now();
        progress.set_committed(committed);
    }
}

/// `file[from..to]` as a log tail; `None` if it is not UTF-8 text (the log is
/// NDJSON, so it always is, unless the file was damaged: then it goes as bytes).
fn read_tail(file: &File, from: u64, to: u64) -> Result<Option<LogTail>, ControlError> {
    let mut buf = vec![0; (to - from) as usize];
    read_log(file, &mut buf, from)?;
    Ok(String::from_utf8(buf)
        .ok()
        .map(|data| LogTail { offset: from, data }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::memory::{job, Memory};

    fn sha(bytes: &[u8]) -> String {
        hex::encode(Sha256::digest(bytes))
    }

    /// An outbox log holding `bytes`, open for reading.
    fn log_of(bytes: &[u8]) -> (tempfile::TempDir, File) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        std::fs::write(&path, bytes).unwrap();
        let file = File::open(&path).unwrap();
        (dir, file)
    }

    #[test]
    fn a_range_is_resent_from_where_the_control_plane_says_it_is() {
        let bytes: Vec<u8> = (0..3_000_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let (_dir, file) = log_of(&bytes);
        let cp = Memory::default();
        let mut sum = Checksum::new();
        let held =
            send_range(&cp, &job(), &file, 0, 2_000_000, &mut |o, b| sum.feed(o, b)).unwrap();
        assert_eq!(held, 2_000_000);
        // The control plane loses its tail: the next range is refused with 416
        // and sent again from what it holds.
        cp.state().forget_to = Some(500_000);
        let held = send_range(&cp, &job(), &file, held, 3_000_000, &mut |o, b| {
            sum.feed(o, b)
        })
        .unwrap();
        assert_eq!(held, 3_000_000);
        assert_eq!(cp.state().log, bytes, "every byte, once, in order");
        let summary = sum.finish(&file, 3_000_000).unwrap();
        assert_eq!(summary.sha256, sha(&bytes), "each byte hashed once");
        let uploads = cp.state().uploads.clone();
        assert!(uploads.iter().any(|(o, _)| *o == 500_000), "{uploads:?}");
    }

    /// An upload that fails while the next chunk is already read ends the range
    /// (the reader ahead stops too); the next attempt sends it all, hashed once.
    #[test]
    fn a_failed_upload_stops_the_read_ahead_and_loses_nothing() {
        let bytes: Vec<u8> = (0..5_000_000u32).map(|i| (i * 13 % 241) as u8).collect();
        let (_dir, file) = log_of(&bytes);
        let cp = Memory::with(|s| {
            s.log_error = Some(ControlError::Unreachable(anyhow::anyhow!("gone")))
        });
        let mut sum = Checksum::new();
        let e = send_range(&cp, &job(), &file, 0, 5_000_000, &mut |o, b| sum.feed(o, b));
        assert!(matches!(e, Err(ControlError::Unreachable(_))));
        assert!(cp.state().log.is_empty());
        let held =
            send_range(&cp, &job(), &file, 0, 5_000_000, &mut |o, b| sum.feed(o, b)).unwrap();
        assert_eq!(held, 5_000_000);
        assert_eq!(cp.state().log, bytes);
        assert_eq!(sum.finish(&file, 5_000_000).unwrap().sha256, sha(&bytes));
    }

    #[test]
    fn a_control_plane_that_keeps_taking_less_is_given_up_on() {
        let (_dir, file) = log_of(b"0123456789");
        let cp = Memory::with(|s| s.stuck = true);
        let e = send_range(&cp, &job(), &file, 0, 10, &mut |_, _| {}).unwrap_err();
        assert!(matches!(e, ControlError::Refused(_)), "{e}");
        assert_eq!(cp.state().uploads.len(), STALLS as usize);
    }
}
