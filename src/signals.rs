//! What the runner has been told by signals: whether to stop, and which step's
//! process group a second signal must kill.
//!
//! The handler (in `os`, where the `unsafe` registration lives) only touches
//! these atomics, so reading them is safe anywhere; the shot, the executor and
//! the control-plane clients learn of a stop request from here.

use std::sync::atomic::{AtomicI32, AtomicUsize, Ordering};

/// How many SIGTERM/SIGINT sortie has received.
static SIGNALS: AtomicUsize = AtomicUsize::new(0);
/// The process groups of the steps running now (0: a free slot), for the second
/// signal. Steps on several nodes run at once; a fixed array needs no lock.
static RUNNING: [AtomicI32; 64] = [const { AtomicI32::new(0) }; 64];

/// Count a signal; returns how many came before it (async-signal-safe).
pub fn record() -> usize {
    SIGNALS.fetch_add(1, Ordering::SeqCst)
}

/// The groups of the steps running now, 0 in free slots (async-signal-safe).
pub fn running_groups() -> &'static [AtomicI32; 64] {
    &RUNNING
}

/// True once sortie has been asked to stop by a signal.
pub fn interrupted() -> bool {
    SIGNALS.load(Ordering::SeqCst) > 0
}

/// A step's process group runs now (for the second signal).
pub fn add_running_group(group: i32) {
    for slot in &RUNNING {
        if slot
            .compare_exchange(0, group, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok()
        {
            return;
        }
    }
}

/// A step's process group has ended.
pub fn remove_running_group(group: i32) {
    for slot in &RUNNING {
        let _ = slot.compare_exchange(group, 0, Ordering::SeqCst, Ordering::SeqCst);
    }
}
