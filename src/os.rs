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
