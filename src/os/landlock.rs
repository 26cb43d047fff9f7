//! Landlock, by its three system calls.
//!
//! The ruleset is built in sortie (open, add rules) and only *applied* in the
//! child between fork and exec, where nothing may allocate or take a lock: so
//! the child-side call is a bare `landlock_restrict_self` on a descriptor made
//! beforehand, which a wrapper crate's builder API does not offer. The rules and
//! which paths get them are decided in `exec::sandbox`.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// Access rights on files and directories, by ABI version (linux/landlock.h).
pub mod access {
    pub const EXECUTE: u64 = 1 << 0;
    pub const WRITE_FILE: u64 = 1 << 1;
    pub const READ_FILE: u64 = 1 << 2;
    pub const READ_DIR: u64 = 1 << 3;
    pub const MAKE_CHAR: u64 = 1 << 6;
    pub const MAKE_BLOCK: u64 = 1 << 11;
    /// ABI 1: every right up to MAKE_SYM.
    pub const ABI1: u64 = (1 << 13) - 1;
    pub const REFER: u64 = 1 << 13;
    pub const TRUNCATE: u64 = 1 << 14;
    pub const IOCTL_DEV: u64 = 1 << 15;
    /// The rights a rule on something that is not a directory may carry.
    pub const FILE: u64 = EXECUTE | WRITE_FILE | READ_FILE | TRUNCATE | IOCTL_DEV;
}

/// ABI 6: a sandboxed process cannot signal processes outside its domain.
pub const SCOPE_SIGNAL: u64 = 1 << 1;

#[repr(C)]
struct RulesetAttr {
    handled_access_fs: u64,
    handled_access_net: u64,
    scoped: u64,
}

#[repr(C, packed)]
struct PathBeneathAttr {
    allowed_access: u64,
    parent_fd: i32,
}

const CREATE_RULESET_VERSION: u32 = 1 << 0;
const RULE_PATH_BENEATH: u32 = 1;

/// The kernel's Landlock ABI version, 0 when Landlock is missing or disabled.
pub fn abi() -> u32 {
    version().unwrap_or(0)
}

/// The ABI version, or the error number of the call that asks for it.
fn version() -> Result<u32, Option<i32>> {
    // SAFETY: with a null attribute, size 0 and the version flag, the call only
    // returns the ABI version (or an error).
    let v = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<RulesetAttr>(),
            0usize,
            CREATE_RULESET_VERSION,
        )
    };
    match u32::try_from(v) {
        Ok(v) if v > 0 => Ok(v),
        _ => Err(std::io::Error::last_os_error().raw_os_error()),
    }
}

/// Why `abi()` is 0, for the operator: Landlock missing from the kernel, disabled
/// in it, or refused by a seccomp filter (systemd's `SystemCallFilter=@system-service`
/// leaves Landlock's calls out on systemd 252 and earlier), which calls for a
/// different fix.
pub fn missing() -> &'static str {
    match version() {
        Ok(_) => "Landlock is available",
        Err(Some(libc::ENOSYS)) => "this kernel has no Landlock (it needs Linux 5.13)",
        Err(Some(libc::EOPNOTSUPP)) => {
            "Landlock is disabled in this kernel (it is missing from the lsm= boot parameter)"
        }
        _ => {
            "a seccomp filter refuses Landlock's system calls (under systemd, \
             SystemCallFilter= must allow landlock_create_ruleset, landlock_add_rule and \
             landlock_restrict_self)"
        }
    }
}

/// The rights each ABI handles.
pub fn handled(abi: u32) -> u64 {
    let mut rights = access::ABI1;
    if abi >= 2 {
        rights |= access::REFER;
    }
    if abi >= 3 {
        rights |= access::TRUNCATE;
    }
    if abi >= 5 {
        rights |= access::IOCTL_DEV;
    }
    rights
}

/// A new ruleset handling `fs` rights (and `scoped` restrictions, ABI 6).
pub fn create_ruleset(fs: u64, scoped: u64) -> io::Result<OwnedFd> {
    let attr = RulesetAttr {
        handled_access_fs: fs,
        handled_access_net: 0,
        scoped,
    };
    // SAFETY: the attribute is a valid, fully initialised struct of the given size;
    // the kernel accepts a larger struct than it knows when the extra bytes are 0.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            &attr as *const RulesetAttr,
            std::mem::size_of::<RulesetAttr>(),
            0u32,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel returned a new descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// Allow `rights` on the file or directory `path` (an `O_PATH` descriptor) and
/// everything beneath it.
pub fn add_rule(ruleset: &OwnedFd, path: &OwnedFd, rights: u64) -> io::Result<()> {
    let attr = PathBeneathAttr {
        allowed_access: rights,
        parent_fd: path.as_raw_fd(),
    };
    // SAFETY: both descriptors are open; the attribute is a valid packed struct.
    let r = unsafe {
        libc::syscall(
            libc::SYS_landlock_add_rule,
            ruleset.as_raw_fd(),
            RULE_PATH_BENEATH,
            &attr as *const PathBeneathAttr,
            0u32,
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// In a child between fork and exec: no new privileges, then the ruleset.
/// Async-signal-safe: two system calls, no allocation.
pub fn restrict_self(ruleset: RawFd) -> io::Result<()> {
    // SAFETY: prctl and the raw system call take plain integers.
    unsafe {
        if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
            return Err(io::Error::last_os_error());
        }
        if libc::syscall(libc::SYS_landlock_restrict_self, ruleset, 0u32) != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// In a child between fork and exec: no new privileges only (no Landlock here).
pub fn no_new_privs() -> io::Result<()> {
    // SAFETY: prctl takes plain integers.
    if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
