//! The few calls into the OS that need `unsafe`, kept in one small module.

use std::os::fd::FromRawFd;

/// A process group, identified by its leader's pid. Signals go to the whole group,
/// so "signalled only the leader" cannot be written by mistake.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcessGroup(i32);

impl ProcessGroup {
    /// The group a child started with `process_group(0)` leads.
    pub fn led_by(pid: u32) -> ProcessGroup {
        ProcessGroup(pid as i32)
    }

    /// The group's id (its leader's pid).
    pub fn id(self) -> i32 {
        self.0
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

/// Exit status after a second signal (128 + SIGINT, as shells report an interrupt).
const INTERRUPTED_STATUS: i32 = sortie_protocol::exit::INTERRUPTED as i32;

extern "C" fn on_signal(_: libc::c_int) {
    // Only async-signal-safe calls here: atomics, kill(2), _exit(2).
    if crate::signals::record() >= 1 {
        let group = crate::signals::running_group();
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

/// Make sortie the reaper of every process its steps leave behind: a daemon that
/// double-forks is reparented to sortie instead of init, so it can still be found
/// and ended with its step.
pub fn become_subreaper() {
    // SAFETY: prctl with PR_SET_CHILD_SUBREAPER takes one integer argument.
    unsafe {
        libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
    }
}

/// The pids of sortie's child processes (every task's `children` file).
fn children() -> Vec<i32> {
    let mut pids = Vec::new();
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return pids;
    };
    for task in tasks.flatten() {
        if let Ok(text) = std::fs::read_to_string(task.path().join("children")) {
            pids.extend(
                text.split_whitespace()
                    .filter_map(|p| p.parse::<i32>().ok()),
            );
        }
    }
    pids
}

/// Kill and reap every child process sortie has now. Called when no step is
/// running, so each one is a leftover: a daemon a step started, reparented to
/// sortie as the subreaper. Returns how many there were.
pub fn kill_leftovers() -> usize {
    let mut killed = 0;
    // A killed daemon's own children are reparented to sortie in turn.
    for _ in 0..16 {
        let pids = children();
        if pids.is_empty() {
            break;
        }
        for &pid in &pids {
            // SAFETY: kill(2) on a pid that is our own child; no memory is shared.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
            }
        }
        for &pid in &pids {
            reap(pid);
        }
        killed += pids.len();
    }
    killed
}

/// Wait (briefly) for a killed child so it leaves no zombie.
fn reap(pid: i32) {
    for _ in 0..200 {
        // SAFETY: waitpid on our own child with WNOHANG; the status is discarded.
        let done = unsafe { libc::waitpid(pid, std::ptr::null_mut(), libc::WNOHANG) };
        if done != 0 {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

/// Make the kernel's OOM killer prefer the job over the runner that must report it:
/// sortie lowers its own score (when allowed), steps raise theirs.
pub fn protect_from_oom() {
    // Lowering needs CAP_SYS_RESOURCE; without it the write fails and nothing changes.
    let _ = std::fs::write("/proc/self/oom_score_adj", "-500");
}

/// Have the process `cmd` starts raise its own OOM score first.
pub fn expose_to_oom(cmd: &mut std::process::Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: the closure runs between fork and exec and only calls open, write and
    // close (async-signal-safe) on a static path, allocating nothing.
    unsafe {
        cmd.pre_exec(|| {
            let fd = libc::open(c"/proc/self/oom_score_adj".as_ptr(), libc::O_WRONLY);
            if fd >= 0 {
                libc::write(fd, b"500".as_ptr().cast(), 3);
                libc::close(fd);
            }
            Ok(())
        });
    }
}

/// stdin for a step: /dev/null, or where there is no /dev (an empty root), a pipe
/// whose writing end is closed at once: either way the first read is end of file.
pub fn empty_stdin() -> std::process::Stdio {
    if std::path::Path::new("/dev/null").exists() {
        return std::process::Stdio::null();
    }
    let mut fds = [0; 2];
    // SAFETY: pipe(2) fills two descriptors; the write end is closed right away and the
    // read end is owned by the returned Stdio.
    unsafe {
        if libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) != 0 {
            return std::process::Stdio::null();
        }
        libc::close(fds[1]);
        std::process::Stdio::from(std::os::fd::OwnedFd::from_raw_fd(fds[0]))
    }
}

/// The host's name, as the kernel knows it.
pub fn hostname() -> anyhow::Result<String> {
    use anyhow::Context;
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::env::var("HOSTNAME"))
        .context("reading /proc/sys/kernel/hostname")?;
    Ok(name.trim().to_string())
}

/// Bytes available to sortie on the filesystem holding `path` (None if unknown).
pub fn free_bytes(path: &std::path::Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    // SAFETY: statvfs fills the zeroed struct it is given; the path is a valid C string.
    unsafe {
        let mut st: libc::statvfs = std::mem::zeroed();
        if libc::statvfs(c.as_ptr(), &mut st) != 0 {
            return None;
        }
        Some(st.f_bavail as u64 * st.f_frsize as u64)
    }
}

/// Whether this process may create files in `dir` (access(2) with W_OK|X_OK).
pub fn writable(dir: &std::path::Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let Ok(c) = std::ffi::CString::new(dir.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: access reads a valid C string and touches no memory of ours.
    unsafe { libc::access(c.as_ptr(), libc::W_OK | libc::X_OK) == 0 }
}

/// True when sortie runs with effective uid 0.
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}
