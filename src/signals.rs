//! What the runner has been told by signals: whether to stop, and which step's
//! process group a second signal must kill.
//!
//! The handler (in `os`, where the `unsafe` registration lives) only touches
//! these atomics, so reading them is safe anywhere; the shot, the executor and
//! the control-plane clients learn of a stop request from here.

use std::sync::atomic::{AtomicI32, AtomicUsize, Ordering};

/// How many SIGTERM/SIGINT sortie has received.
static SIGNALS: AtomicUsize = AtomicUsize::new(0);
/// The process group of the step running now (0: none), for the second signal.
static RUNNING_GROUP: AtomicI32 = AtomicI32::new(0);

/// Count a signal; returns how many came before it (async-signal-safe).
pub fn record() -> usize {
    SIGNALS.fetch_add(1, Ordering::SeqCst)
}

/// The group of the step running now, 0 when none (async-signal-safe).
pub fn running_group() -> i32 {
    RUNNING_GROUP.load(Ordering::SeqCst)
}

/// True once sortie has been asked to stop by a signal.
pub fn interrupted() -> bool {
    SIGNALS.load(Ordering::SeqCst) > 0
}

/// Record the process group id of the step that runs now (none when it ended), for
/// the second signal.
pub fn set_running_group(group: Option<i32>) {
    RUNNING_GROUP.store(group.unwrap_or(0), Ordering::SeqCst);
}
