//! A control plane in memory, for the unit tests of delivery, recovery and upload.
//!
//! It keeps one job's log and completion with the protocol's rules (416 past the
//! end, 412 on a checksum mismatch) and can be told to misbehave: forget the tail
//! of the log, refuse calls with a given error.

use std::sync::Mutex;

use sha2::{Digest, Sha256};
use sortie_protocol::{Action, ClaimRequest, ClaimedJob, Completion, Lease, LogTail};

use super::{Beat, ControlError, ControlPlane, JobRef, Result};

#[derive(Default)]
pub struct State {
    pub log: Vec<u8>,
    pub completion: Option<Completion>,
    pub failed: Option<String>,
    /// Uploads seen (offset, length).
    pub uploads: Vec<(u64, usize)>,
    /// Log tails that came with a completion (offset, length).
    pub tails: Vec<(u64, usize)>,
    /// Keep only this many log bytes at the next upload (the server lost the rest).
    pub forget_to: Option<usize>,
    /// Answer `complete` with this, until taken.
    pub complete_error: Option<ControlError>,
    /// Answer `fail` with this, until taken.
    pub fail_error: Option<ControlError>,
    /// Answer every upload with this, until taken.
    pub log_error: Option<ControlError>,
    /// Take nothing, ever: every upload is answered with 416 at offset 0.
    pub stuck: bool,
    /// Jobs given back.
    pub released: usize,
}

impl State {
    /// Store what `bytes` (the log from `offset`) adds; `false` past the end.
    fn append(&mut self, offset: u64, bytes: &[u8]) -> bool {
        let held = self.log.len() as u64;
        if offset > held {
            return false;
        }
        let new = &bytes[(held - offset).min(bytes.len() as u64) as usize..];
        self.log.extend_from_slice(new);
        true
    }
}

/// The job the tests deliver.
pub fn job() -> JobRef {
    JobRef {
        id: "j".into(),
        attempt: 1,
        lease_token: "t".into(),
        log_tail_bytes: 0,
        zstd_log: false,
    }
}

#[derive(Default)]
pub struct Memory {
    pub state: Mutex<State>,
}

impl Memory {
    pub fn with(f: impl FnOnce(&mut State)) -> Memory {
        let memory = Memory::default();
        f(&mut memory.state.lock().unwrap());
        memory
    }

    pub fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap()
    }
}

fn lease() -> Lease {
    Lease {
        token: "t".into(),
        expires_at: String::new(),
        heartbeat_seconds: 0,
    }
}

impl ControlPlane for Memory {
    fn claim(&self, _: &ClaimRequest) -> Result<Vec<ClaimedJob>> {
        Ok(Vec::new())
    }

    fn start(&self, _: &JobRef) -> Result<Lease> {
        Ok(lease())
    }

    fn heartbeat(&self, _: &JobRef, _: u64) -> Result<Beat> {
        Ok(Beat {
            lease: lease(),
            action: Action::Continue,
        })
    }

    fn put_log(&self, _: &JobRef, offset: u64, bytes: &[u8]) -> Result<u64> {
        let mut s = self.state();
        if let Some(e) = s.log_error.take() {
            return Err(e);
        }
        s.uploads.push((offset, bytes.len()));
        if s.stuck {
            return Err(ControlError::Resend(0));
        }
        if let Some(keep) = s.forget_to.take() {
            s.log.truncate(keep);
        }
        match s.append(offset, bytes) {
            true => Ok(s.log.len() as u64),
            false => Err(ControlError::Resend(s.log.len() as u64)),
        }
    }

    fn complete(&self, _: &JobRef, completion: &Completion, tail: Option<&LogTail>) -> Result<()> {
        let mut s = self.state();
        if let Some(e) = s.complete_error.take() {
            return Err(e);
        }
        if let Some(tail) = tail {
            s.tails.push((tail.offset, tail.data.len()));
            s.append(tail.offset, tail.data.as_bytes());
        }
        let sha = hex::encode(Sha256::digest(&s.log));
        if s.log.len() as u64 != completion.log.length || sha != completion.log.sha256 {
            return Err(ControlError::Resend(s.log.len() as u64));
        }
        s.completion = Some(completion.clone());
        Ok(())
    }

    fn release(&self, _: &JobRef) -> Result<()> {
        self.state().released += 1;
        Ok(())
    }

    fn fail(&self, _: &JobRef, reason: &str) -> Result<()> {
        let mut s = self.state();
        if let Some(e) = s.fail_error.take() {
            return Err(e);
        }
        s.failed = Some(reason.to_string());
        Ok(())
    }
}
