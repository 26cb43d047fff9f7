//! The few calls into the OS that need `unsafe`, kept in one small module.

pub mod acl;
pub mod landlock;

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

    /// Whether any process is still in the group (a zombie too).
    pub fn exists(self) -> bool {
        // SAFETY: kill(2) with signal 0 only checks; no memory is shared.
        self.0 > 0
            && (unsafe { libc::kill(-self.0, 0) } == 0
                || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM))
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

/// Whether stderr is a terminal, where the first Ctrl-C is answered.
static ON_TERMINAL: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

const STOPPING: &[u8] = b"sortie: stopping\xe2\x80\xa6 (Ctrl-C again to kill)\n";

extern "C" fn on_signal(_: libc::c_int) {
    // Only async-signal-safe calls here: atomics, write(2), kill(2), _exit(2).
    let earlier = crate::signals::record();
    if earlier == 0 && ON_TERMINAL.load(std::sync::atomic::Ordering::Relaxed) {
        // SAFETY: write is async-signal-safe; the buffer is static.
        unsafe {
            libc::write(2, STOPPING.as_ptr().cast(), STOPPING.len());
        }
    }
    if earlier >= 1 {
        for slot in crate::signals::running_groups() {
            let group = slot.load(std::sync::atomic::Ordering::SeqCst);
            if group > 0 {
                // SAFETY: kill is async-signal-safe.
                unsafe {
                    libc::kill(-group, libc::SIGKILL);
                }
            }
        }
        // SAFETY: _exit is async-signal-safe.
        unsafe { libc::_exit(INTERRUPTED_STATUS) };
    }
}

/// Catch SIGTERM and SIGINT: the first asks for a graceful stop, the second kills
/// the running step's group and exits at once. SIGCHLD goes back to its
/// default: left ignored by whatever started sortie, the kernel would reap
/// the steps itself, and their ends (exit codes) could not be read.
pub fn install_signal_handlers() {
    use std::io::IsTerminal;
    // SAFETY: setting a signal's disposition to its default shares no memory.
    unsafe {
        libc::signal(libc::SIGCHLD, libc::SIG_DFL);
    }
    ON_TERMINAL.store(
        std::io::stderr().is_terminal(),
        std::sync::atomic::Ordering::Relaxed,
    );
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

/// Children sortie runs on purpose (steps running now, ssh connections and
/// their control commands): never leftovers. Its lock is held while such a
/// child is spawned and while leftovers are picked, so that one thread never
/// takes another thread's new child for a leftover.
static KEPT: std::sync::Mutex<Vec<i32>> = std::sync::Mutex::new(Vec::new());

fn kept() -> std::sync::MutexGuard<'static, Vec<i32>> {
    KEPT.lock().unwrap_or_else(|e| e.into_inner())
}

/// Spawn `command` as a child sortie runs on purpose until [`forget_child`].
pub fn spawn_kept(command: &mut std::process::Command) -> std::io::Result<std::process::Child> {
    let mut kept = kept();
    let child = command.spawn()?;
    kept.push(child.id() as i32);
    Ok(child)
}

pub fn forget_child(pid: u32) {
    kept().retain(|p| *p != pid as i32);
}

/// Spawn `command` as a kept child that gets SIGTERM when sortie ends, so
/// that a killed runner leaves no ssh session behind. The kernel sends it
/// when the *thread* that forked the child ends, so the fork happens on a
/// thread that lives as long as the process, not on the caller's.
pub fn spawn_bound_to_process(
    mut command: std::process::Command,
) -> std::io::Result<std::process::Child> {
    use std::os::unix::process::CommandExt;
    use std::sync::mpsc;
    type Request = (
        std::process::Command,
        mpsc::Sender<std::io::Result<std::process::Child>>,
    );
    static SPAWNER: std::sync::OnceLock<std::sync::Mutex<mpsc::Sender<Request>>> =
        std::sync::OnceLock::new();
    // SAFETY: the closure makes one prctl call with plain integers.
    unsafe {
        command.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM, 0, 0, 0);
            Ok(())
        });
    }
    let spawner = SPAWNER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<Request>();
        std::thread::spawn(move || {
            for (mut command, answer) in rx {
                let _ = answer.send(spawn_kept(&mut command));
            }
        });
        std::sync::Mutex::new(tx)
    });
    let (answer, answered) = mpsc::channel();
    spawner
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .send((command, answer))
        .map_err(|_| std::io::Error::other("the spawner thread is gone"))?;
    answered
        .recv()
        .map_err(|_| std::io::Error::other("the spawner thread is gone"))?
}

/// The fields of `/proc/PID/stat` from the third on (the state, the
/// parent, the group, ...): they follow the command's closing parenthesis,
/// "pid (comm) S …", and the command may hold any byte.
fn stat_fields(pid: i32) -> Option<Vec<String>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = stat.rsplit_once(')')?;
    Some(rest.split_whitespace().map(str::to_owned).collect())
}

/// Whether process `pid` has ended and waits only to be reaped (a zombie).
fn ended(pid: i32) -> bool {
    stat_fields(pid).is_some_and(|fields| fields.first().is_some_and(|state| state == "Z"))
}

/// When process `pid` started, in clock ticks since the boot (with the
/// boot, what tells this process from a later one given the same pid), and
/// its session.
pub fn start_and_session(pid: i32) -> Option<(u64, i32)> {
    let fields = stat_fields(pid)?;
    Some((fields.get(19)?.parse().ok()?, fields.get(3)?.parse().ok()?))
}

/// A process of a group (see [`group_members`]).
pub struct Member {
    pub pid: i32,
    /// See [`start_and_session`].
    pub start: u64,
    pub session: i32,
}

/// The processes in group `pgid`, found in /proc.
pub fn group_members(pgid: i32) -> Vec<Member> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(|pid| {
            let fields = stat_fields(pid)?;
            let group: i32 = fields.get(2)?.parse().ok()?;
            let session: i32 = fields.get(3)?.parse().ok()?;
            let start: u64 = fields.get(19)?.parse().ok()?;
            (group == pgid).then_some(Member {
                pid,
                start,
                session,
            })
        })
        .collect()
}

/// This boot's id (`/proc/sys/kernel/random/boot_id`), read once.
pub fn boot_id() -> &'static str {
    static ID: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    ID.get_or_init(|| {
        std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
            .map(|id| id.trim().to_owned())
            .unwrap_or_default()
    })
}

/// How many of sortie's children, but those it keeps, have ended by
/// themselves and wait only to be reaped: asked before a step's group is
/// killed, they are what [`kill_leftovers`] will reap but that was not left
/// running.
pub fn ended_leftovers() -> usize {
    let kept = kept();
    children()
        .into_iter()
        .filter(|p| !kept.contains(p) && ended(*p))
        .count()
}

/// Kill and reap every child process sortie has now but those it keeps and
/// those `spare` says are not this caller's: each one is a leftover, a
/// daemon a step started, reparented to sortie as the subreaper. Their
/// descendants are killed with them, however deep (a chain of `setsid`s), and
/// reaped once reparented to sortie in turn. Returns how many there were.
pub fn kill_leftovers(spare: &dyn Fn(i32) -> bool) -> usize {
    // Descendants killed in one round are reaped as children in the next.
    let mut signalled = std::collections::HashSet::new();
    let mut killed = 0;
    // Round after round while any is left, so that a process that forks and
    // ends in a loop, a step ahead of each reading of /proc, is caught in
    // the end; bounded, so that the step's end is too.
    let until = std::time::Instant::now() + LEFTOVER_ROUNDS;
    loop {
        let pids: Vec<i32> = {
            let kept = kept();
            let pids: Vec<i32> = children()
                .into_iter()
                .filter(|p| !kept.contains(p) && (signalled.contains(p) || !spare(*p)))
                .collect();
            // Found while the tree is whole: a killed process's children are
            // reparented at once.
            if !pids.is_empty() {
                for (pid, start) in descendants(&pids) {
                    if kill_if_same(pid, start) && signalled.insert(pid) {
                        killed += 1;
                    }
                }
            }
            for &pid in &pids {
                // SAFETY: kill(2) on a pid that is our own child; no memory is shared.
                unsafe {
                    libc::kill(pid, libc::SIGKILL);
                }
                if signalled.insert(pid) {
                    killed += 1;
                }
            }
            pids
        };
        if pids.is_empty() {
            break;
        }
        // A killed child stays a zombie (its pid not reused) until reaped here.
        for &pid in &pids {
            reap(pid);
        }
        if std::time::Instant::now() >= until {
            break;
        }
    }
    killed
}

/// How long [`kill_leftovers`] goes on finding and killing leftovers.
const LEFTOVER_ROUNDS: std::time::Duration = std::time::Duration::from_secs(2);

/// The value of variable `name` in the environment process `pid` started
/// with, when it can be read and has one.
pub fn environ_value(pid: i32, name: &str) -> Option<String> {
    let environ = std::fs::read(format!("/proc/{pid}/environ")).ok()?;
    environ.split(|b| *b == 0).find_map(|entry| {
        let value = entry.strip_prefix(name.as_bytes())?.strip_prefix(b"=")?;
        Some(String::from_utf8_lossy(value).into_owned())
    })
}

/// Every descendant of `roots` (the roots left out), from one reading of
/// /proc, each with its start time (see [`start_and_session`]).
fn descendants(roots: &[i32]) -> Vec<(i32, u64)> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut by_parent: std::collections::HashMap<i32, Vec<(i32, u64)>> =
        std::collections::HashMap::new();
    for pid in entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
    {
        let Some(fields) = stat_fields(pid) else {
            continue;
        };
        if let (Some(Ok(parent)), Some(Ok(start))) = (
            fields.get(1).map(|p| p.parse::<i32>()),
            fields.get(19).map(|s| s.parse::<u64>()),
        ) {
            by_parent.entry(parent).or_default().push((pid, start));
        }
    }
    let mut seen: std::collections::HashSet<i32> = roots.iter().copied().collect();
    let mut found = Vec::new();
    let mut queue = roots.to_vec();
    while let Some(parent) = queue.pop() {
        for &(pid, start) in by_parent.get(&parent).into_iter().flatten() {
            if seen.insert(pid) {
                found.push((pid, start));
                queue.push(pid);
            }
        }
    }
    found
}

/// SIGKILL to process `pid` while it is still the one that started at
/// `start`: through a pidfd, so that a pid given to another process since
/// /proc was read is never signalled. Whether it was.
fn kill_if_same(pid: i32, start: u64) -> bool {
    use std::os::fd::AsRawFd;
    let Ok(pidfd) = pidfd_open(pid as u32) else {
        return false;
    };
    if ended(pid) || start_and_session(pid).is_none_or(|(now, _)| now != start) {
        return false;
    }
    // SAFETY: pidfd_send_signal on a descriptor we own, with no siginfo.
    let sent = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            libc::SIGKILL,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    sent == 0
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

/// Make sortie not dumpable: no core file, and its /proc entries (environ, mem,
/// fd/) belong to root, so another process of the same user cannot read them.
pub fn set_not_dumpable() {
    // SAFETY: prctl with PR_SET_DUMPABLE takes one integer argument.
    unsafe {
        libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0);
    }
}

/// Close the environment sortie started with to other eyes: the variables
/// `names` are removed, every other one is moved to memory of its own, and the
/// first environment block — what /proc/PID/environ shows, to a root process
/// too — is overwritten, so that no value (a token, a proxy's password) can be
/// read there. Call before any thread starts.
pub fn scrub_env(names: &[String]) {
    let kept: Vec<(std::ffi::OsString, std::ffi::OsString)> = std::env::vars_os()
        .filter(|(k, _)| !names.iter().any(|n| k == n.as_str()))
        .collect();
    // SAFETY: at start-up, before any other thread exists, `environ` is a valid
    // null-terminated array of valid C strings.
    let originals: Vec<(*mut libc::c_char, usize)> = unsafe {
        let mut out = Vec::new();
        let mut entry = libc_environ();
        while !(*entry).is_null() {
            out.push((*entry, std::ffi::CStr::from_ptr(*entry).to_bytes().len()));
            entry = entry.add(1);
        }
        out
    };
    for name in names {
        // SAFETY (edition 2021: safe to call, but not thread-safe): no other thread yet.
        std::env::remove_var(name);
    }
    for (k, v) in &kept {
        // setenv copies the variable into memory of its own.
        std::env::set_var(k, v);
    }
    for (text, len) in originals {
        // SAFETY: each original string is `len` bytes before its NUL; nothing points
        // to it any more (setenv replaced every entry), so overwriting it is sound.
        unsafe { std::ptr::write_bytes(text.cast::<u8>(), 0, len) };
    }
}

/// Overwrite `values` where they stand in sortie's command line, which
/// /proc/PID/cmdline (and `ps`) shows: a secure option given with
/// `-o name=value` must not stay readable there for the whole run. The
/// command line's memory is found from /proc/self/stat (`arg_start`,
/// `arg_end`); each value's bytes become `*`.
pub fn scrub_arguments(values: &[&str]) {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return;
    };
    // Fields after the command name (which may hold spaces): field 3 onwards.
    let Some((_, rest)) = stat.rsplit_once(')') else {
        return;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let (Some(start), Some(end)) = (
        fields.get(45).and_then(|f| f.parse::<usize>().ok()),
        fields.get(46).and_then(|f| f.parse::<usize>().ok()),
    ) else {
        return;
    };
    if start == 0 || end <= start {
        return;
    }
    // SAFETY: [arg_start, arg_end) is this process's own argument area, mapped
    // and writable for its whole life; std keeps pointers into it (env::args),
    // which will read the overwritten bytes, never freed memory.
    let area = unsafe { std::slice::from_raw_parts_mut(start as *mut u8, end - start) };
    for value in values.iter().filter(|v| !v.is_empty()) {
        let needle = value.as_bytes();
        let mut at = 0;
        while let Some(found) = area[at..].windows(needle.len()).position(|w| w == needle) {
            let from = at + found;
            area[from..from + needle.len()].fill(b'*');
            at = from + needle.len();
        }
    }
}

/// The process's `environ` pointer.
unsafe fn libc_environ() -> *mut *mut libc::c_char {
    extern "C" {
        static mut environ: *mut *mut libc::c_char;
    }
    // SAFETY: reading the libc global; the caller holds the single-thread promise.
    unsafe { environ }
}

/// A user steps run as (`--run-as`), resolved in sortie, applied in the child.
#[derive(Debug, Clone)]
pub struct User {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    pub groups: Vec<libc::gid_t>,
    pub home: std::path::PathBuf,
}

/// The calling thread's filesystem identity, a step user's until dropped
/// (setfsuid, setfsgid and the raw setgroups call act on this thread only):
/// files are then made, read, followed and removed as that user could, with
/// its groups and none of root's file capabilities. For a workspace the
/// step's user owns, where its steps may have left symlinks to what that user
/// must not reach. A thread started meanwhile would take this identity too:
/// none is.
#[derive(Debug)]
pub struct FsIdentity {
    uid: u32,
    gid: u32,
    groups: Vec<libc::gid_t>,
}

impl FsIdentity {
    /// Whether this identity may change the entries of the directory at
    /// `path` (create, rename, remove in it), as the kernel decides: modes,
    /// ACLs and groups. A symlink in its place is not followed.
    pub fn may_change(&self, path: &std::path::Path) -> bool {
        use std::os::unix::ffi::OsStrExt;
        let Ok(c) = std::ffi::CString::new(path.as_os_str().as_bytes()) else {
            return true;
        };
        // SAFETY: faccessat with a valid C string; AT_EACCESS checks with the
        // thread's own file identity (this one) rather than the real ids.
        let rc = unsafe {
            libc::faccessat(
                libc::AT_FDCWD,
                c.as_ptr(),
                libc::W_OK | libc::X_OK,
                libc::AT_EACCESS | libc::AT_SYMLINK_NOFOLLOW,
            )
        };
        rc == 0
    }

    pub fn assume(user: &User) -> std::io::Result<FsIdentity> {
        let groups = thread_groups()?;
        set_thread_groups(&user.groups)?;
        // SAFETY: setfsgid/setfsuid change the calling thread's credentials only;
        // each returns the previous id, and (with -1, never valid) the current one.
        let (old_gid, old_uid, now_uid, now_gid) = unsafe {
            let old_gid = libc::setfsgid(user.gid);
            let old_uid = libc::setfsuid(user.uid);
            (
                old_gid,
                old_uid,
                libc::setfsuid(u32::MAX),
                libc::setfsgid(u32::MAX),
            )
        };
        let previous = FsIdentity {
            uid: old_uid as u32,
            gid: old_gid as u32,
            groups,
        };
        if (now_uid as u32, now_gid as u32) != (user.uid, user.gid) {
            drop(previous);
            return Err(std::io::Error::other(format!(
                "cannot act on files as user {} (group {})",
                user.uid, user.gid
            )));
        }
        Ok(previous)
    }
}

impl Drop for FsIdentity {
    fn drop(&mut self) {
        // SAFETY: as above; back to the ids the thread had.
        unsafe {
            libc::setfsuid(self.uid);
            libc::setfsgid(self.gid);
        }
        let _ = set_thread_groups(&self.groups);
    }
}

/// The calling thread's supplementary groups.
fn thread_groups() -> std::io::Result<Vec<libc::gid_t>> {
    // SAFETY: getgroups with 0 counts them; then fills a buffer of that size.
    unsafe {
        let n = libc::getgroups(0, std::ptr::null_mut());
        let mut groups = vec![0; usize::try_from(n).map_err(|_| std::io::Error::last_os_error())?];
        let n = libc::getgroups(n, groups.as_mut_ptr());
        groups.truncate(usize::try_from(n).map_err(|_| std::io::Error::last_os_error())?);
        Ok(groups)
    }
}

/// Set the calling thread's supplementary groups, and no other thread's
/// (glibc's setgroups sets every thread's).
fn set_thread_groups(groups: &[libc::gid_t]) -> std::io::Result<()> {
    // SAFETY: the raw system call with a valid slice.
    let r = unsafe { libc::syscall(libc::SYS_setgroups, groups.len(), groups.as_ptr()) };
    if r != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// The name of the user sortie runs as (its number when the user database
/// has no entry).
pub fn user_name() -> Option<String> {
    // Looked up once (it reads the user database, and every job asks); the
    // entry only, not the group list (which may load NSS modules).
    static NAME: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let name = NAME.get_or_init(|| {
        let uid = uid();
        passwd(&uid.to_string()).map_or_else(|_| uid.to_string(), |p| p.name)
    });
    Some(name.clone())
}

/// Look a user up by name (or numeric id) in the system's user database,
/// with the groups it belongs to.
pub fn lookup_user(name: &str) -> std::io::Result<User> {
    use std::ffi::CString;
    let entry = passwd(name)?;
    let c_user = CString::new(entry.name.clone()).map_err(|_| not_found(name))?;
    let mut count: libc::c_int = 256;
    // A user in more groups than the list holds: getgrouplist says how many
    // (it may grow between two calls).
    for _ in 0..4 {
        let mut groups: Vec<libc::gid_t> = vec![0; count.max(1) as usize];
        count = groups.len() as libc::c_int;
        // SAFETY: `groups` holds `count` entries; getgrouplist writes at most
        // that many, and sets `count` to how many there are.
        let rc = unsafe {
            libc::getgrouplist(c_user.as_ptr(), entry.gid, groups.as_mut_ptr(), &mut count)
        };
        if rc >= 0 {
            groups.truncate(count.max(0) as usize);
            return Ok(User { groups, ..entry });
        }
    }
    Err(std::io::Error::other(format!(
        "the groups of {name:?} keep changing"
    )))
}

fn not_found(name: &str) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::NotFound, format!("no user {name:?}"))
}

/// A user's entry in the user database, by name or numeric id (no groups).
fn passwd(name: &str) -> std::io::Result<User> {
    use std::ffi::{CStr, CString};
    let c_name = CString::new(name).map_err(|_| not_found(name))?;
    let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
    let mut buf = vec![0u8; 16 * 1024];
    let mut result: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: all pointers are valid for the sizes given; the strings the entry
    // points to live in `buf`, which outlives their use below.
    let rc = unsafe {
        match name.parse::<u32>() {
            Ok(uid) => libc::getpwuid_r(
                uid,
                &mut pwd,
                buf.as_mut_ptr().cast(),
                buf.len(),
                &mut result,
            ),
            Err(_) => libc::getpwnam_r(
                c_name.as_ptr(),
                &mut pwd,
                buf.as_mut_ptr().cast(),
                buf.len(),
                &mut result,
            ),
        }
    };
    if rc != 0 {
        return Err(std::io::Error::from_raw_os_error(rc));
    }
    if result.is_null() {
        return Err(not_found(name));
    }
    // SAFETY: the entry was filled in; its strings are NUL-terminated in `buf`.
    let (user_name, home) = unsafe {
        (
            CStr::from_ptr(pwd.pw_name).to_string_lossy().into_owned(),
            CStr::from_ptr(pwd.pw_dir).to_string_lossy().into_owned(),
        )
    };
    Ok(User {
        name: user_name,
        uid: pwd.pw_uid,
        gid: pwd.pw_gid,
        groups: Vec::new(),
        home: home.into(),
    })
}

/// In a child between fork and exec: become `user` (groups, then gid, then uid).
/// Async-signal-safe: three system calls on data prepared beforehand.
pub fn become_user(user: &User) -> std::io::Result<()> {
    // SAFETY: the group list is a valid slice; the calls take plain integers.
    unsafe {
        if libc::setgroups(user.groups.len(), user.groups.as_ptr()) != 0
            || libc::setgid(user.gid) != 0
            || libc::setuid(user.uid) != 0
        {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

/// In a child between fork and exec: have every descriptor from 3 up closed at
/// exec, so nothing sortie inherited without close-on-exec reaches a step.
pub fn cloexec_from_3() {
    // SAFETY: close_range with CLOSE_RANGE_CLOEXEC only sets flags on descriptors.
    let r = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            3u32,
            u32::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        )
    };
    if r != 0 {
        // Kernels before 5.11: mark them one by one, up to a bound.
        for fd in 3..65536 {
            // SAFETY: fcntl on a descriptor that may not exist only returns an error.
            unsafe {
                libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC);
            }
        }
    }
}

/// What a step's process does between fork and exec.
pub struct ChildSetup {
    /// Confine it (`false`: `--sandbox off`, nothing but the user and the OOM score).
    pub confine: bool,
    pub user: Option<std::sync::Arc<User>>,
    /// A Landlock ruleset made beforehand.
    pub ruleset: Option<std::os::fd::RawFd>,
}

/// Between fork and exec, in the child `command` starts: become the user, have
/// every inherited descriptor from 3 up closed at exec, no new privileges and
/// the Landlock domain; then, the child being sortie's non-dumpable copy until
/// exec, make it dumpable (it is in the step's domain by now) so that it can
/// raise its own OOM score: the kernel should kill a step before the runner.
pub fn setup_child(command: &mut std::process::Command, setup: ChildSetup) {
    use std::os::unix::process::CommandExt;
    // SAFETY: the closure only makes system calls on data prepared beforehand
    // (async-signal-safe, no allocation, no lock).
    unsafe {
        command.pre_exec(move || {
            // --run-as holds with the sandbox off as well.
            if let Some(user) = &setup.user {
                become_user(user)?;
            }
            if setup.confine {
                cloexec_from_3();
                match setup.ruleset {
                    Some(fd) => landlock::restrict_self(fd)?,
                    None => landlock::no_new_privs()?,
                }
            }
            libc::prctl(libc::PR_SET_DUMPABLE, 1, 0, 0, 0);
            let fd = libc::open(c"/proc/self/oom_score_adj".as_ptr(), libc::O_WRONLY);
            if fd >= 0 {
                libc::write(fd, b"500".as_ptr().cast(), 3);
                libc::close(fd);
            }
            Ok(())
        });
    }
}

/// Give the memory freed so far back to the system. A step's process starts as a
/// copy of sortie's, so what glibc keeps mapped after parsing a large spec would
/// make every step of the job slower to start.
pub fn release_free_memory() {
    #[cfg(target_env = "gnu")]
    // SAFETY: malloc_trim only returns free heap pages; it takes the allocator's lock.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Start writing `file[offset..offset + len]` to disk without waiting for it,
/// so that the fsync that makes the file durable later finds little left to
/// write. Only a hint: a failure here is the fsync's to report.
pub fn start_writeback(file: &std::fs::File, offset: u64, len: u64) {
    use std::os::fd::AsRawFd;
    let (Ok(offset), Ok(len)) = (i64::try_from(offset), i64::try_from(len)) else {
        return;
    };
    // SAFETY: sync_file_range on a descriptor the file owns, with plain integers;
    // SYNC_FILE_RANGE_WRITE only queues writeback of the range's dirty pages.
    unsafe {
        libc::sync_file_range(file.as_raw_fd(), offset, len, libc::SYNC_FILE_RANGE_WRITE);
    }
}

/// `name` in the directory `dir`, opened `O_PATH|O_NOFOLLOW`: a handle
/// for naming it (a Landlock rule), not for reading it.
pub fn open_path_at(
    dir: &std::os::fd::OwnedFd,
    name: &std::ffi::OsStr,
) -> std::io::Result<std::os::fd::OwnedFd> {
    use std::os::fd::{AsRawFd, FromRawFd};
    use std::os::unix::ffi::OsStrExt;
    let name = std::ffi::CString::new(name.as_bytes())?;
    // SAFETY: openat with a descriptor `dir` owns and a NUL-terminated name.
    let fd = unsafe {
        libc::openat(
            dir.as_raw_fd(),
            name.as_ptr(),
            libc::O_PATH | libc::O_NOFOLLOW | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: a descriptor just opened, owned by nothing else.
    Ok(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) })
}

/// Make reads of `file` block again (it was opened with O_NONBLOCK so that opening
/// a FIFO with no writer could not hang).
pub fn set_blocking(file: &std::fs::File) -> std::io::Result<()> {
    use std::os::fd::AsFd;
    set_nonblocking(file.as_fd(), false)
}

/// Turn O_NONBLOCK on or off on `fd`.
pub fn set_nonblocking(fd: std::os::fd::BorrowedFd<'_>, on: bool) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    let fd = fd.as_raw_fd();
    // SAFETY: fcntl on a descriptor the caller holds, with plain integer flags.
    unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFL);
        let flags = if on {
            flags | libc::O_NONBLOCK
        } else {
            flags & !libc::O_NONBLOCK
        };
        if flags < 0 || libc::fcntl(fd, libc::F_SETFL, flags) < 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Ask for a pipe of `bytes` (the kernel rounds up, and refuses more than
/// `fs.pipe-max-size` to an unprivileged user); the size it has.
pub fn grow_pipe(fd: std::os::fd::BorrowedFd<'_>, bytes: usize) -> std::io::Result<usize> {
    use std::os::fd::AsRawFd;
    let bytes = libc::c_int::try_from(bytes).unwrap_or(libc::c_int::MAX);
    // SAFETY: fcntl on a descriptor the caller holds, with a plain integer.
    let size = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETPIPE_SZ, bytes) };
    if size < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(size as usize)
}

/// A descriptor that becomes readable when the process `pid` (a child not yet
/// reaped) ends: the end of a process can then be waited for beside its pipes.
pub fn pidfd_open(pid: u32) -> std::io::Result<std::os::fd::OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags, and returns a new descriptor.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: a descriptor just opened, owned by nothing else.
    Ok(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd as i32) })
}

/// Wait at most `timeout` for one of `fds` to be readable (or at its end, or in
/// error); a `None` slot is passed over. Bit `i` of the result is set when
/// `fds[i]` is; an interrupted wait returns 0. At most 32 slots.
pub fn wait_readable(
    fds: &[Option<std::os::fd::BorrowedFd<'_>>],
    timeout: std::time::Duration,
) -> std::io::Result<u32> {
    use std::os::fd::AsRawFd;
    assert!(fds.len() <= 32, "at most 32 descriptors");
    // A negative descriptor is one poll(2) passes over.
    let mut polled = [libc::pollfd {
        fd: -1,
        events: libc::POLLIN,
        revents: 0,
    }; 32];
    for (slot, fd) in polled.iter_mut().zip(fds) {
        slot.fd = fd.map_or(-1, |fd| fd.as_raw_fd());
    }
    // Rounded up: a wait of 0.4 ms must not become a busy loop of waits of 0 ms.
    let ms = timeout.as_micros().div_ceil(1000).min(i32::MAX as u128) as libc::c_int;
    // SAFETY: poll(2) on an array of pollfd that lives across the call.
    let n = unsafe { libc::poll(polled.as_mut_ptr(), fds.len() as libc::nfds_t, ms) };
    if n < 0 {
        let e = std::io::Error::last_os_error();
        return if e.kind() == std::io::ErrorKind::Interrupted {
            Ok(0)
        } else {
            Err(e)
        };
    }
    let mut ready = 0;
    for (i, slot) in polled[..fds.len()].iter().enumerate() {
        if slot.revents != 0 {
            ready |= 1 << i;
        }
    }
    Ok(ready)
}

/// Give `path` to `uid:gid` (a workspace and its files, for `--run-as`).
pub fn chown(path: &std::path::Path, uid: u32, gid: u32) -> std::io::Result<()> {
    std::os::unix::fs::lchown(path, Some(uid), Some(gid))
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
    // SAFETY: uname fills the zeroed struct it is given; `nodename` is then a
    // NUL-terminated string within it.
    let name = unsafe {
        let mut uts: libc::utsname = std::mem::zeroed();
        if libc::uname(&mut uts) != 0 {
            return Err(anyhow::Error::new(std::io::Error::last_os_error()).context("uname"));
        }
        std::ffi::CStr::from_ptr(uts.nodename.as_ptr())
            .to_string_lossy()
            .trim()
            .to_string()
    };
    Ok(name)
}

/// Allocate the first `bytes` of `file` on disk without changing its length
/// (`fallocate` with `FALLOC_FL_KEEP_SIZE`): writing there later needs no room.
pub fn reserve(file: &std::fs::File, bytes: u64) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    let length = libc::off_t::try_from(bytes).map_err(std::io::Error::other)?;
    // SAFETY: fallocate on an open descriptor; KEEP_SIZE changes no content.
    let r = unsafe { libc::fallocate(file.as_raw_fd(), libc::FALLOC_FL_KEEP_SIZE, 0, length) };
    if r == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
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

/// Whether sortie holds any effective capability (a user other than root can:
/// systemd's `AmbientCapabilities=`, file capabilities); true when the kernel
/// does not say.
pub fn has_capabilities() -> bool {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
        .is_none_or(|caps| caps != 0)
}

/// The groups sortie runs with: its effective group and its supplementary ones.
pub fn groups() -> Vec<u32> {
    // SAFETY: getgroups with size 0 only counts; getegid cannot fail.
    let (count, egid) = unsafe { (libc::getgroups(0, std::ptr::null_mut()), libc::getegid()) };
    let mut groups = vec![0 as libc::gid_t; count.max(0) as usize];
    // SAFETY: `groups` holds `count` entries, as many as getgroups may write.
    let got = unsafe { libc::getgroups(count.max(0), groups.as_mut_ptr()) };
    groups.truncate(got.max(0) as usize);
    groups.push(egid);
    groups
}

/// The groups held by the live processes that act as `uid` (as their real,
/// effective, saved or file user): what the user database lists for it now
/// may leave out a group such a process was started with. Read from /proc;
/// what cannot be read is left out.
pub fn groups_held(uid: u32) -> Vec<u32> {
    let mut held = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        if !entry
            .file_name()
            .as_encoded_bytes()
            .iter()
            .all(u8::is_ascii_digit)
        {
            continue;
        }
        if let Ok(status) = std::fs::read_to_string(entry.path().join("status")) {
            held.extend(status_groups(&status, uid));
        }
    }
    held.sort_unstable();
    held.dedup();
    held
}

/// The groups (`Gid:` and `Groups:`) in a /proc status of a process that
/// acts as `uid`; none for another user's.
fn status_groups(status: &str, uid: u32) -> Vec<u32> {
    let ids = |key: &str| -> Vec<u32> {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .map(|v| {
                v.split_whitespace()
                    .filter_map(|n| n.parse().ok())
                    .collect()
            })
            .unwrap_or_default()
    };
    if !ids("Uid:").contains(&uid) {
        return Vec::new();
    }
    let mut groups = ids("Gid:");
    groups.extend(ids("Groups:"));
    groups
}

/// Whether `path` carries an access ACL, whose entries its mode bits do not
/// all show; true when that cannot be told.
pub fn has_acl(path: &std::path::Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let Ok(c) = std::ffi::CString::new(path.as_os_str().as_bytes()) else {
        return true;
    };
    // SAFETY: getxattr with a valid C string, a NUL-terminated name, and no
    // buffer (size 0 only asks for the value's size).
    let rc = unsafe {
        libc::getxattr(
            c.as_ptr(),
            c"system.posix_acl_access".as_ptr(),
            std::ptr::null_mut(),
            0,
        )
    };
    let errno = std::io::Error::last_os_error().raw_os_error();
    rc >= 0 || !matches!(errno, Some(libc::ENODATA) | Some(libc::EOPNOTSUPP))
}

/// True when sortie runs with effective uid 0.
pub fn is_root() -> bool {
    uid() == 0
}

/// sortie's effective user id.
pub fn uid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// This host's addresses (IPv4 and IPv6, loopback and link-local left out),
/// as the kernel lists them.
pub fn addresses() -> Vec<String> {
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
    let mut list: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs fills `list` with a linked list freed below.
    if unsafe { libc::getifaddrs(&mut list) } != 0 {
        return Vec::new();
    }
    let mut out = Vec::new();
    let mut at = list;
    while !at.is_null() {
        // SAFETY: `at` is a node of the list getifaddrs gave, not yet freed.
        let entry = unsafe { &*at };
        at = entry.ifa_next;
        if entry.ifa_addr.is_null() {
            continue;
        }
        // SAFETY: ifa_addr points at a sockaddr whose family says its type.
        let ip = unsafe {
            match i32::from((*entry.ifa_addr).sa_family) {
                libc::AF_INET => {
                    let sin = &*(entry.ifa_addr as *const libc::sockaddr_in);
                    IpAddr::V4(Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr)))
                }
                libc::AF_INET6 => {
                    let sin6 = &*(entry.ifa_addr as *const libc::sockaddr_in6);
                    IpAddr::V6(Ipv6Addr::from(sin6.sin6_addr.s6_addr))
                }
                _ => continue,
            }
        };
        let link_local = match ip {
            IpAddr::V4(v4) => v4.is_link_local(),
            IpAddr::V6(v6) => (v6.segments()[0] & 0xffc0) == 0xfe80,
        };
        if !ip.is_loopback() && !link_local && !out.contains(&ip.to_string()) {
            out.push(ip.to_string());
        }
    }
    // SAFETY: the list from getifaddrs, freed once.
    unsafe { libc::freeifaddrs(list) };
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_groups_a_user_s_processes_hold_are_read_from_their_status() {
        let status = "Name:\tsleep\nUid:\t1000\t1000\t1000\t1000\nGid:\t1000\t1000\t1000\t27\nGroups:\t4 24 0 \n";
        let mut held = super::status_groups(status, 1000);
        held.sort_unstable();
        assert_eq!(held, [0, 4, 24, 27, 1000, 1000, 1000]);
        assert!(super::status_groups(status, 1001).is_empty());
        // A set-user-id process acting as the user counts too.
        let setuid = "Uid:\t1001\t1000\t1000\t1000\nGid:\t5\t5\t5\t5\nGroups:\n";
        assert_eq!(super::status_groups(setuid, 1000), [5, 5, 5, 5]);
        // This process's own groups are among those its user's processes hold.
        let held = super::groups_held(super::uid());
        for gid in super::groups() {
            assert!(held.contains(&gid), "{gid} in {held:?}");
        }
    }

    use super::*;

    /// As another user, on this thread only: root's own directory is closed
    /// to it, and open again once the identity is dropped.
    #[test]
    fn a_thread_acts_on_files_as_another_user_until_dropped() {
        if uid() != 0 {
            return; // only root may take another user's identity
        }
        let dir = tempfile::tempdir().unwrap();
        // Another thread (started before: a new thread takes its creator's
        // identity) keeps its own meanwhile.
        let (go, wait) = std::sync::mpsc::channel::<()>();
        let other = std::thread::spawn({
            let path = dir.path().join("b");
            move || wait.recv().map(|()| std::fs::write(path, "x"))
        });
        let nobody = User {
            name: "nobody".into(),
            uid: 65534,
            gid: 65534,
            groups: vec![65534],
            home: "/".into(),
        };
        let groups = thread_groups().unwrap();
        let as_nobody = FsIdentity::assume(&nobody).unwrap();
        assert_eq!(thread_groups().unwrap(), [65534]);
        let denied = std::fs::write(dir.path().join("a"), "x").unwrap_err();
        assert_eq!(denied.kind(), std::io::ErrorKind::PermissionDenied);
        go.send(()).unwrap();
        assert!(other.join().unwrap().unwrap().is_ok());
        drop(as_nobody);
        assert_eq!(thread_groups().unwrap(), groups);
        std::fs::write(dir.path().join("a"), "x").unwrap();
    }

    #[test]
    fn the_host_name_is_the_kernel_s() {
        let proc = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
        assert_eq!(hostname().unwrap(), proc.trim());
    }
    use std::os::fd::AsFd;
    use std::time::Duration;

    /// A pidfd says nothing while its process runs, and is readable once it ends.
    #[test]
    fn a_pidfd_is_readable_when_its_process_ends() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let pidfd = pidfd_open(child.id()).unwrap();
        assert_eq!(
            wait_readable(&[Some(pidfd.as_fd())], Duration::ZERO).unwrap(),
            0
        );
        child.kill().unwrap();
        assert_eq!(
            wait_readable(&[Some(pidfd.as_fd())], Duration::from_secs(30)).unwrap(),
            1
        );
        assert!(child.try_wait().unwrap().is_some(), "the end can be reaped");
    }

    /// Of several slots, those with something to read are the ones set.
    #[test]
    fn wait_readable_names_the_ready_descriptors() {
        use std::io::Write;
        let (a_read, _a_write) = std::io::pipe().unwrap();
        let (b_read, mut b_write) = std::io::pipe().unwrap();
        b_write.write_all(b"x").unwrap();
        let slots = [Some(a_read.as_fd()), None, Some(b_read.as_fd())];
        let ready = wait_readable(&slots, Duration::ZERO).unwrap();
        assert_eq!(ready, 0b100, "an empty slot is passed over");
        assert!(grow_pipe(b_read.as_fd(), 256 * 1024).unwrap() >= 256 * 1024);
    }
}
