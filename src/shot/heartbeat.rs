//! Heartbeats: keep a running job's lease and learn of its cancellation.
//!
//! They run on their own thread at the lease's interval (jittered, so a fleet
//! of runners started by the same cron minute does not beat in step) and never
//! depend on log traffic. A `cancel` answer sets the job's cancel flag. A
//! fenced answer (409/410) means the lease is gone: the job is stopped and
//! not completed, since another attempt may own it now (PROTOCOL.md). Beats
//! that fail until the lease's end has passed mean only that the control
//! plane was not heard: the job is stopped (interrupted), and its log and
//! completion are offered all the same. A control plane that recorded the
//! job lost meanwhile takes them from the lease's holder (the reference one
//! does, and answers that holder's next heartbeat with `cancel`); one that
//! fences them off has them dropped.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, SystemTime};

use sortie_protocol::{Action, Lease};

use crate::control::{ControlError, ControlPlane, JobRef};
use crate::ids;
use crate::state::outbox::LogProgress;

/// Why a running job must stop early.
#[derive(Debug, Default)]
pub struct JobFlags {
    /// The control plane asked for cancellation.
    pub cancel: AtomicBool,
    /// The lease ran out unheard: stop (the completion says interrupted).
    pub lease_lost: AtomicBool,
    /// The control plane fenced the job off: stop, and do not complete.
    pub fenced: AtomicBool,
}

impl JobFlags {
    pub fn should_stop(&self) -> bool {
        self.cancel.load(Ordering::Relaxed)
            || self.lease_lost.load(Ordering::Relaxed)
            || self.fenced.load(Ordering::Relaxed)
    }
}

/// When the lease runs out (unknown if the control plane gave no parsable time).
fn expiry(lease: &Lease) -> Option<SystemTime> {
    humantime::parse_rfc3339_weak(&lease.expires_at).ok()
}

pub struct Heartbeat {
    stop: Option<Sender<()>>,
    handle: Option<JoinHandle<()>>,
}

impl Heartbeat {
    /// Beat at the lease's interval (none at all when it is 0). When beats fail until
    /// the lease's expiry has passed, the lease is taken as lost.
    pub fn spawn(
        cp: Arc<dyn ControlPlane>,
        job: JobRef,
        lease: &Lease,
        log: Arc<LogProgress>,
        flags: Arc<JobFlags>,
    ) -> Heartbeat {
        let seconds = lease.heartbeat_seconds;
        let mut expires = expiry(lease);
        if seconds == 0 {
            return Heartbeat {
                stop: None,
                handle: None,
            };
        }
        let (tx, rx) = mpsc::channel::<()>();
        let handle = thread::spawn(move || loop {
            let interval = Duration::from_secs(seconds).mul_f64(0.8 + 0.2 * ids::unit_random());
            match rx.recv_timeout(interval) {
                Err(RecvTimeoutError::Timeout) => {}
                _ => return,
            }
            match cp.heartbeat(&job, log.committed()) {
                Ok(beat) => {
                    tracing::debug!(job = %job.id, expires_at = %beat.lease.expires_at, "lease renewed");
                    expires = expiry(&beat.lease);
                    if beat.action == Action::Cancel && !flags.cancel.swap(true, Ordering::Relaxed)
                    {
                        tracing::info!(job = %job.id, "the control plane cancelled the job");
                    }
                }
                Err(ControlError::Fenced(why)) => {
                    tracing::warn!(job = %job.id, "{why}: stopping the job without completing it");
                    flags.fenced.store(true, Ordering::Relaxed);
                    return;
                }
                Err(e) => {
                    tracing::warn!(job = %job.id, "heartbeat failed: {e}");
                    if expires.is_some_and(|t| SystemTime::now() >= t) {
                        tracing::warn!(job = %job.id, "the lease expired without renewal: stopping the job");
                        flags.lease_lost.store(true, Ordering::Relaxed);
                        return;
                    }
                }
            }
        });
        Heartbeat {
            stop: Some(tx),
            handle: Some(handle),
        }
    }

    pub fn stop(mut self) {
        drop(self.stop.take());
        if let Some(handle) = self.handle.take() {
            let _ = handle.join();
        }
    }
}
