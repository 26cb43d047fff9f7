//! The few calls into the OS that need `unsafe`, kept in one small module.

/// A process group, identified by its leader's pid. Signals go to the whole group,
/// so "signalled only the leader" cannot be written by mistake.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcessGroup(i32);

impl ProcessGroup {
    /// The group a child started with `process_group(0)` leads.
    pub fn led_by(pid: u32) -> ProcessGroup {
        ProcessGroup(pid as i32)
    }

    /// Send `signal` to every process of the group (a group already gone is fine).
    pub fn signal(self, signal: i32) {
        if self.0 <= 0 {
            return;
        }
        // SAFETY: kill(2) with a negative pid addresses a process group; no memory is shared.
        unsafe {
            libc::kill(-self.0, signal);
        }
    }
}

pub use libc::{SIGKILL, SIGTERM};

use std::sync::atomic::{AtomicI32, AtomicUsize, Ordering};

/// How many SIGTERM/SIGINT sortie has received.
static SIGNALS: AtomicUsize = AtomicUsize::new(0);
/// The process group of the step running now (0: none), for the second signal.
static RUNNING_GROUP: AtomicI32 = AtomicI32::new(0);

/// Exit status after a second signal (128 + SIGINT, as shells report an interrupt).
pub const INTERRUPTED_STATUS: i32 = 130;

extern "C" fn on_signal(_: libc::c_int) {
    // Only async-signal-safe calls here: atomics, kill(2), _exit(2).
    if SIGNALS.fetch_add(1, Ordering::SeqCst) >= 1 {
        let group = RUNNING_GROUP.load(Ordering::SeqCst);
        // SAFETY: kill and _exit are async-signal-safe.
        unsafe {
            if group > 0 {
                libc::kill(-group, libc::SIGKILL);
            }
            libc::_exit(INTERRUPTED_STATUS);
        }
    }
}

/// Catch SIGTERM and SIGINT: the first asks for a graceful stop, the second kills
/// the running step's group and exits at once.
pub fn install_signal_handlers() {
    for signal in [libc::SIGTERM, libc::SIGINT] {
        // SAFETY: a zeroed sigaction with a handler of the right signature and an
        // empty mask is valid; the handler only does async-signal-safe work.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as usize;
            action.sa_flags = libc::SA_RESTART;
            libc::sigemptyset(&mut action.sa_mask);
            libc::sigaction(signal, &action, std::ptr::null_mut());
        }
    }
}

/// True once sortie has been asked to stop by a signal.
pub fn interrupted() -> bool {
    SIGNALS.load(Ordering::SeqCst) > 0
}

/// Record the group of the step that runs now (0 when none), for the second signal.
pub fn set_running_group(group: Option<ProcessGroup>) {
    RUNNING_GROUP.store(group.map_or(0, |g| g.0), Ordering::SeqCst);
}
