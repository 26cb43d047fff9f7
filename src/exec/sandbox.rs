//! What a step is confined to: no new privileges, another user if asked, and a
//! Landlock domain that keeps it out of the runner's own files.
//!
//! Steps run as sortie's user (or `--run-as`), so without more they could read
//! the runner's token, its client key, the secrets directory and the state dir
//! (lease tokens, other jobs' logs). Landlock rules are an allow-list, so the
//! domain is built as the complement of the protected paths: every directory on
//! the way from `/` to a protected path may be listed, every other entry beside
//! that way is allowed in full, the protected paths get nothing — except what
//! must stay reachable inside them (the job's own workspace in the state dir).
//! A sandboxed process also cannot ptrace, or read `/proc/PID/mem|environ|fd`
//! of, a process outside its domain (sortie), and from ABI 6 cannot signal it.
//!
//! Limits (sortie(1), "SANDBOX"): entries created after the job starts directly
//! in a directory on the way to a protected path are not reachable (steps get
//! `TMPDIR` in their workspace); a protected directory reachable by another path
//! (a bind mount) is reachable there; the network is not restricted.

use std::fs::OpenOptions;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::{self, JoinHandle};

use crate::exec::Confinement;
use crate::os::landlock::{self, access};
use crate::os::User;

/// Whether steps are sandboxed with Landlock (`--sandbox`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Where the kernel has Landlock (with a note once where it has not).
    Auto,
    /// Always: a job fails rather than run unconfined.
    Required,
    /// Never, and no `no_new_privs` either (steps that must use sudo).
    Off,
}

/// How every step of a runner is confined, from its settings.
#[derive(Debug)]
pub struct Policy {
    pub mode: Mode,
    pub user: Option<Arc<User>>,
    paths: Arc<Paths>,
    /// Jobs' domains being built on threads of their own ([`Policy::prepare`]),
    /// each for the job it is named after: one per job running at once, at
    /// most [`MOST_AHEAD`].
    ahead: Mutex<Vec<Ahead>>,
}

/// Domains built ahead and not yet taken, at most: the oldest (a job that
/// did not start) goes first.
const MOST_AHEAD: usize = 64;

/// A job's domain being built ahead: the job it is for, the plan once made
/// (so that the job's thread can help add its rules), and the thread.
#[derive(Debug)]
struct Ahead {
    job: String,
    planned: Arc<OnceLock<Arc<Build>>>,
    thread: JoinHandle<io::Result<Option<Arc<Build>>>>,
}

/// What a policy keeps from its runner's own files.
#[derive(Debug)]
struct Paths {
    /// The runner's own files: state dir, token, client key, secrets directories.
    protected: Vec<PathBuf>,
    /// What steps may read and run but not change: the sortie binary, the CA
    /// bundle and client certificate, the secrets command.
    read_only: Vec<PathBuf>,
    /// What the domain guards, worked out at the first job (a shot without
    /// one does not list /dev): the protected paths with the raw devices the
    /// step's user could open, and the read-only paths it could change.
    guarded: OnceLock<(Vec<PathBuf>, Vec<PathBuf>)>,
}

impl Clone for Policy {
    /// The same policy, with nothing built ahead.
    fn clone(&self) -> Policy {
        Policy {
            mode: self.mode,
            user: self.user.clone(),
            paths: self.paths.clone(),
            ahead: Mutex::new(Vec::new()),
        }
    }
}

impl Policy {
    pub fn new(
        mode: Mode,
        protected: Vec<PathBuf>,
        read_only: Vec<PathBuf>,
        user: Option<Arc<User>>,
    ) -> Policy {
        Policy {
            mode,
            user,
            paths: Arc::new(Paths {
                protected,
                read_only,
                guarded: OnceLock::new(),
            }),
            ahead: Mutex::new(Vec::new()),
        }
    }

    /// Start building the domain of job `job` on a thread of its own, as soon
    /// as it is claimed: listing the directories on the way to the runner's
    /// files, rule by rule, then happens while the job is recorded and
    /// started (a sync and a round trip to the control plane) instead of
    /// after. Its workspace, made meanwhile, is added when it is taken.
    pub fn prepare(&self, job: &str) {
        if self.mode == Mode::Off {
            return;
        }
        let policy = self.clone();
        let planned = Arc::new(OnceLock::new());
        let shared = planned.clone();
        let thread = thread::Builder::new()
            .name("sandbox".into())
            .spawn(move || {
                let Some(build) = policy.plan()? else {
                    return Ok(None);
                };
                let build = Arc::new(build);
                let _ = shared.set(build.clone());
                build.add_rules();
                Ok(Some(build))
            });
        if let Ok(thread) = thread {
            let mut ahead = self.ahead();
            if ahead.len() >= MOST_AHEAD {
                ahead.remove(0);
            }
            ahead.push(Ahead {
                job: job.to_string(),
                planned,
                thread,
            });
        }
    }

    fn ahead(&self) -> std::sync::MutexGuard<'_, Vec<Ahead>> {
        self.ahead.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The confinement of job `job`'s steps, which may use `allowed` (its
    /// workspace) even inside a protected path: on the domain
    /// [`Policy::prepare`] built for it, or on one built now.
    pub fn confinement(&self, job: &str, allowed: &[PathBuf]) -> io::Result<Confinement> {
        let built = {
            let mut ahead = self.ahead();
            let found = ahead.iter().position(|a| a.job == job);
            found.map(|i| ahead.remove(i))
        };
        let sandbox = match built {
            Some(ahead) => ahead.finish()?,
            None => self.sandbox()?,
        };
        let sandbox = match sandbox {
            Some(mut sandbox) => {
                sandbox.allow(allowed)?;
                Some(Arc::new(sandbox))
            }
            None => None,
        };
        Ok(Confinement {
            sandbox,
            user: self.user.clone(),
            off: self.mode == Mode::Off,
        })
    }

    /// The domain without any job's workspace (`None`: no Landlock, or `--sandbox off`).
    fn sandbox(&self) -> io::Result<Option<Sandbox>> {
        let Some(build) = self.plan()? else {
            return Ok(None);
        };
        build.add_rules();
        build.finish().map(Some)
    }

    /// The rules of that domain, listed and not yet added.
    fn plan(&self) -> io::Result<Option<Build>> {
        if self.mode == Mode::Off {
            return Ok(None);
        }
        let (protected, read_only) = self.paths.guarded.get_or_init(|| self.guarded());
        match Build::plan(protected, read_only)? {
            None if self.mode == Mode::Required => Err(io::Error::other(format!(
                "--sandbox required was given, but {}",
                landlock::missing()
            ))),
            planned => Ok(planned),
        }
    }

    /// What a step's user could not change (or open) anyway needs no rule.
    fn guarded(&self) -> (Vec<PathBuf>, Vec<PathBuf>) {
        let (uid, groups, privileged) = match &self.user {
            Some(user) => (user.uid, user.groups.clone(), user.uid == 0),
            None => {
                let uid = crate::os::uid();
                let privileged = uid == 0 || crate::os::has_capabilities();
                (uid, crate::os::groups(), privileged)
            }
        };
        let mut protected = self.paths.protected.clone();
        protected.extend(
            raw_devices()
                .into_iter()
                .filter(|device| could_open(device, uid, &groups, privileged)),
        );
        let read_only = self
            .paths
            .read_only
            .iter()
            .filter(|path| could_change(path, uid, privileged))
            .cloned()
            .collect();
        (protected, read_only)
    }
}

impl Ahead {
    /// The domain, its last rules added by this thread beside the builder's
    /// (a job's thread that needs it has nothing else to do).
    fn finish(self) -> io::Result<Option<Sandbox>> {
        if let Some(build) = self.planned.get() {
            build.add_rules();
        }
        drop(self.planned);
        let built = self
            .thread
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("building the sandbox panicked")))?;
        match built.map(Arc::try_unwrap) {
            None => Ok(None),
            Some(Ok(build)) => build.finish().map(Some),
            Some(Err(_)) => Err(io::Error::other("the sandbox is still being built")),
        }
    }
}

/// Block devices, and the character devices of raw memory and ports: a step
/// running as root could read the runner's files through them.
fn raw_devices() -> Vec<PathBuf> {
    use std::os::unix::fs::FileTypeExt;
    let mut out: Vec<PathBuf> = ["/dev/mem", "/dev/kmem", "/dev/port"]
        .iter()
        .map(PathBuf::from)
        .collect();
    for dir in ["/dev", "/dev/mapper"] {
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            if entry.file_type().is_ok_and(|t| t.is_block_device()) {
                out.push(entry.path());
            }
        }
    }
    out
}

/// A Landlock ruleset, ready to be applied in a step's process.
#[derive(Debug)]
pub struct Sandbox {
    ruleset: OwnedFd,
    /// The kernel's Landlock ABI.
    pub abi: u32,
    /// How many rules it holds.
    pub rules: usize,
    /// The rights the domain handles.
    handled: u64,
    /// What it guards, canonical: [`Sandbox::allow`] must not open a way to them.
    protected: Vec<PathBuf>,
    read_only: Vec<PathBuf>,
}

/// A domain being built: its rules listed, then added by whichever thread
/// is free, a few at a time ([`Build::add_rules`]).
#[derive(Debug)]
struct Build {
    ruleset: OwnedFd,
    abi: u32,
    handled: u64,
    protected: Vec<PathBuf>,
    read_only: Vec<PathBuf>,
    /// (path, is a directory, rights)
    rules: Vec<(PathBuf, bool, u64)>,
    /// The first rule no thread has taken yet.
    next: AtomicUsize,
    /// Rules added so far.
    added: AtomicUsize,
    /// The first rule the kernel refused.
    failed: Mutex<Option<io::Error>>,
}

/// Rules a thread takes at a time: the directory they are in is opened once
/// for them.
const CHUNK: usize = 8;

impl Build {
    /// The rules of the domain that denies `protected` (and everything
    /// beneath), and lets `read_only` be read and run only. `None` when the
    /// kernel has no Landlock.
    fn plan(protected: &[PathBuf], read_only: &[PathBuf]) -> io::Result<Option<Build>> {
        let abi = landlock::abi();
        if abi == 0 {
            return Ok(None);
        }
        let handled = landlock::handled(abi);
        let scoped = if abi >= 6 { landlock::SCOPE_SIGNAL } else { 0 };
        let ruleset = landlock::create_ruleset(handled, scoped)?;
        let protected = canonical(protected);
        if protected.iter().any(|p| p.parent().is_none()) {
            return Err(io::Error::other("/ cannot be protected from steps"));
        }
        let mut plan = Plan::new(protected, canonical(read_only));
        plan.walk(Path::new("/"));
        Ok(Some(Build {
            ruleset,
            abi,
            handled,
            protected: plan.protected,
            read_only: plan.read_only,
            rules: plan.rules,
            next: AtomicUsize::new(0),
            added: AtomicUsize::new(0),
            failed: Mutex::new(None),
        }))
    }

    /// Add rules until none is left to take, or the runner is stopped (the
    /// job then starts no step). Between every few the CPU is given up: the
    /// domain is built beside a job's sync and its `start` round trip, and
    /// on a kernel without preemption a thread woken on this CPU (the
    /// job's, its sync done) would otherwise wait for the builder's whole
    /// time slice, a millisecond or more.
    fn add_rules(&self) {
        let count = self.rules.len();
        loop {
            let first = self.next.fetch_add(CHUNK, Ordering::Relaxed);
            if first >= count {
                return;
            }
            let chunk = &self.rules[first..(first + CHUNK).min(count)];
            if crate::signals::interrupted() {
                let stop = io::Error::new(io::ErrorKind::Interrupted, "the runner was stopped");
                return self.fail(stop);
            }
            let mut dir = None;
            for (path, is_dir, rights) in chunk {
                if let Err(e) = self.add_one(path, *is_dir, *rights, &mut dir) {
                    let kind = e.kind();
                    return self.fail(io::Error::new(kind, format!("{}: {e}", path.display())));
                }
            }
            thread::yield_now();
        }
    }

    /// The rule for `path`, as listed by the plan (`dir` keeps the
    /// directory last opened).
    fn add_one<'a>(
        &self,
        path: &'a Path,
        is_dir: bool,
        rights: u64,
        dir: &mut Option<(&'a Path, OwnedFd)>,
    ) -> io::Result<()> {
        let fd = match open_beside(path, dir) {
            Ok(fd) => fd,
            // Gone since it was listed, or out of the runner's own reach
            // (so out of its steps' as well): nothing to give.
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::NotFound
                        | io::ErrorKind::NotADirectory
                        | io::ErrorKind::PermissionDenied
                ) =>
            {
                return Ok(())
            }
            // Out of descriptors, memory: a rule left out would leave the
            // step without something ordinary, so the domain is not built.
            Err(e) => return Err(e),
        };
        let added = add_rule(&self.ruleset, self.handled, &fd, is_dir, rights).or_else(|e| {
            // Replaced by another kind of entry since it was listed: the
            // rule is for what is there now.
            let now = std::fs::File::from(fd.try_clone()?).metadata()?.is_dir();
            if now == is_dir {
                return Err(e);
            }
            add_rule(&self.ruleset, self.handled, &fd, now, rights)
        });
        if added.is_ok() {
            self.added.fetch_add(1, Ordering::Relaxed);
        }
        added
    }

    /// Stop every thread adding rules: the domain is not built, for `why`.
    fn fail(&self, why: io::Error) {
        self.failed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get_or_insert(why);
        self.next.store(self.rules.len(), Ordering::Relaxed);
    }

    /// The domain, once every rule was added.
    fn finish(self) -> io::Result<Sandbox> {
        if let Some(e) = self.failed.into_inner().unwrap_or_else(|e| e.into_inner()) {
            return Err(e);
        }
        Ok(Sandbox {
            ruleset: self.ruleset,
            abi: self.abi,
            rules: self.added.into_inner(),
            handled: self.handled,
            protected: self.protected,
            read_only: self.read_only,
        })
    }
}

impl Sandbox {
    /// Let the steps use `allowed` (a job's workspace) in full, even inside a
    /// protected path and when made after the domain was built — but no path
    /// on the way to what the domain guards, nor inside what it keeps read-only.
    ///
    /// Each path is opened without following a symlink in its place, and
    /// judged by the object opened: a step may rename its own workspace (under
    /// `--run-as`, when it is in the system's temporary directory) and leave a
    /// symlink there, which must not carry a later attempt's rule to its target.
    pub fn allow(&mut self, allowed: &[PathBuf]) -> io::Result<()> {
        use std::os::unix::fs::MetadataExt;
        for path in allowed {
            let fd = match open_path(path) {
                Ok(fd) => fd,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e),
            };
            let opened = std::fs::File::from(fd.try_clone()?).metadata()?;
            if opened.file_type().is_symlink() {
                return Err(io::Error::other(format!(
                    "{} is a symlink, no longer the directory sortie made",
                    path.display()
                )));
            }
            let real = path.canonicalize()?;
            let named = std::fs::metadata(&real)?;
            if (named.dev(), named.ino()) != (opened.dev(), opened.ino()) {
                return Err(io::Error::other(format!(
                    "{} was replaced while it was checked",
                    path.display()
                )));
            }
            if allowable(&self.protected, &self.read_only, &real) {
                self.add_rule(&fd, opened.is_dir(), u64::MAX)?;
            }
        }
        Ok(())
    }

    fn add_rule(&mut self, fd: &OwnedFd, is_dir: bool, rights: u64) -> io::Result<()> {
        add_rule(&self.ruleset, self.handled, fd, is_dir, rights)?;
        self.rules += 1;
        Ok(())
    }

    /// The descriptor the child applies (see `os::landlock::restrict_self`).
    pub fn raw_fd(&self) -> RawFd {
        self.ruleset.as_raw_fd()
    }
}

/// `rights` beneath `fd`, of those the domain (`handled`) handles that apply to it.
fn add_rule(
    ruleset: &OwnedFd,
    handled: u64,
    fd: &OwnedFd,
    is_dir: bool,
    rights: u64,
) -> io::Result<()> {
    // No step needs to make device nodes (a root step could reach the disk).
    let mut rights = rights & handled & !(access::MAKE_CHAR | access::MAKE_BLOCK);
    if !is_dir {
        rights &= access::FILE;
    }
    landlock::add_rule(ruleset, fd, rights)
}

/// Whether `path` (canonical) may be given in full: it is not on the way to
/// (nor one of) the `protected` and `read_only` paths, which would open them,
/// nor inside a read-only path.
fn allowable(protected: &[PathBuf], read_only: &[PathBuf], path: &Path) -> bool {
    !protected.iter().chain(read_only).any(|g| beneath(g, path))
        && !read_only.iter().any(|r| beneath(path, r))
}

/// Whether a step running as `uid` could change `path` by itself: write it,
/// change its mode, or put another file in its place through a directory on
/// the way. A privileged step could, and so could the owner, and anyone where
/// a group or others may write (the group bits are taken as anyone's: an ACL
/// grants through them). When in doubt (a path that cannot be read), it could.
///
/// What a step could not change needs no read-only rule of its own, and such
/// a rule is costly: it lists the path's whole directory, rule by rule (1,200
/// entries for a sortie installed in /usr/bin), for every job.
fn could_change(path: &Path, uid: u32, privileged: bool) -> bool {
    use std::os::unix::fs::MetadataExt;
    if privileged {
        return true;
    }
    let writable = |m: &std::fs::Metadata| m.uid() == uid || m.mode() & 0o022 != 0;
    let Ok(path) = path.canonicalize() else {
        return true;
    };
    let Ok(mut child) = std::fs::metadata(&path) else {
        return true;
    };
    if writable(&child) {
        return true;
    }
    for dir in path.ancestors().skip(1) {
        let Ok(meta) = std::fs::metadata(dir) else {
            return true;
        };
        // In a sticky directory only the owner of an entry, or of the
        // directory, may move the entry away.
        let sticky = meta.mode() & 0o1000 != 0 && meta.uid() != uid && child.uid() != uid;
        if writable(&meta) && !sticky {
            return true;
        }
        child = meta;
    }
    false
}

/// Whether a step running as `uid`, in `groups`, could open the device at
/// `path` by itself: a privileged step could, and so could its owner, anyone
/// when others may read or write it, a member of its group when the group
/// may, and anyone the device's ACL may name. When in doubt, it could. What a
/// step could not open needs no rule: a step that is not root cannot reach
/// the disks (`root:disk`, 0660) and so lists /dev for nothing.
fn could_open(path: &Path, uid: u32, groups: &[u32], privileged: bool) -> bool {
    use std::os::unix::fs::MetadataExt;
    if privileged {
        return true;
    }
    let Ok(meta) = std::fs::metadata(path) else {
        return true;
    };
    meta.uid() == uid
        || meta.mode() & 0o006 != 0
        || (meta.mode() & 0o060 != 0 && groups.contains(&meta.gid()))
        || crate::os::has_acl(path)
}

/// The existing paths among `paths`, with symlinks resolved.
fn canonical(paths: &[PathBuf]) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = paths.iter().filter_map(|p| p.canonicalize().ok()).collect();
    out.sort();
    out.dedup();
    out
}

fn open_path(path: &Path) -> io::Result<OwnedFd> {
    OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_PATH | libc::O_NOFOLLOW)
        .open(path)
        .map(OwnedFd::from)
}

/// `path` opened for a rule, relative to its directory: the rules come
/// directory by directory, so the directory is opened once for its entries and
/// each entry costs a lookup of one name, not of the whole path. `dir` keeps
/// the directory last opened.
fn open_beside<'a>(path: &'a Path, dir: &mut Option<(&'a Path, OwnedFd)>) -> io::Result<OwnedFd> {
    let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else {
        return open_path(path);
    };
    if dir.as_ref().map(|(open, _)| *open) != Some(parent) {
        *dir = Some((parent, open_path(parent)?));
    }
    let (_, parent_fd) = dir.as_ref().expect("the directory was opened above");
    crate::os::open_path_at(parent_fd, name)
}

/// The rules of the complement, before they are opened and added.
struct Plan {
    protected: Vec<PathBuf>,
    read_only: Vec<PathBuf>,
    /// (path, is a directory, rights)
    rules: Vec<(PathBuf, bool, u64)>,
    /// The guarded files that have other names (hard links): (device,
    /// inode, protected rather than read-only). A rule is for an inode, so
    /// one given to another name would reach the file by every name.
    linked: Vec<(u64, u64, bool)>,
}

impl Plan {
    fn new(protected: Vec<PathBuf>, read_only: Vec<PathBuf>) -> Plan {
        use std::os::unix::fs::MetadataExt;
        let linked = (protected.iter().map(|p| (p, true)))
            .chain(read_only.iter().map(|p| (p, false)))
            .filter_map(|(path, guarded)| {
                let meta = std::fs::symlink_metadata(path).ok()?;
                (meta.is_file() && meta.nlink() > 1).then(|| (meta.dev(), meta.ino(), guarded))
            })
            .collect();
        Plan {
            protected,
            read_only,
            rules: Vec::new(),
            linked,
        }
    }

    /// Whether `path`, listed with inode `ino`, is another name of a guarded
    /// file: `Some(true)` of a protected one, `Some(false)` of a read-only one.
    fn link_of(&self, path: &Path, ino: u64) -> Option<bool> {
        use std::os::unix::fs::MetadataExt;
        if !self.linked.iter().any(|(_, i, _)| *i == ino) {
            return None;
        }
        let meta = std::fs::symlink_metadata(path).ok()?;
        let found = self
            .linked
            .iter()
            .find(|(dev, i, _)| (*dev, *i) == (meta.dev(), meta.ino()));
        found.map(|(_, _, protected)| *protected)
    }

    /// `dir` leads to a protected path: it may be listed; each entry beside the way
    /// is allowed in full; the way itself is walked down; protected entries get nothing.
    fn walk(&mut self, dir: &Path) {
        self.rules.push((dir.to_path_buf(), true, access::READ_DIR));
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        use std::os::unix::fs::DirEntryExt;
        let mut entries: Vec<(PathBuf, std::fs::FileType, u64)> = entries
            .flatten()
            .filter_map(|e| Some((e.path(), e.file_type().ok()?, e.ino())))
            .collect();
        entries.sort_unstable_by(|a, b| a.0.as_os_str().cmp(b.0.as_os_str()));
        // A directory may be long: see `Build::add_rules`.
        thread::yield_now();
        for (path, kind, ino) in entries {
            if kind.is_symlink() {
                // Reached through its target's own rules, never through the link.
                continue;
            }
            let is = |p: &PathBuf| p.as_os_str() == path.as_os_str();
            let link = kind.is_file().then(|| self.link_of(&path, ino)).flatten();
            if self.protected.iter().any(is) || link == Some(true) {
                continue;
            } else if self.read_only.iter().any(is) || link == Some(false) {
                let rights = access::READ_FILE | access::EXECUTE | access::READ_DIR;
                self.rules.push((path, kind.is_dir(), rights));
            } else if self
                .protected
                .iter()
                .chain(&self.read_only)
                .any(|p| beneath(p, &path))
            {
                self.walk(&path);
            } else {
                self.rules.push((path, kind.is_dir(), u64::MAX));
            }
        }
    }
}

/// Whether `path` is `dir` or beneath it. Both are canonical (absolute, no
/// `.`, `..` or trailing `/`), so bytes say it: `Path::starts_with` goes
/// component by component, and the walk asks this of every entry it lists.
fn beneath(path: &Path, dir: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let (path, dir) = (path.as_os_str().as_bytes(), dir.as_os_str().as_bytes());
    path.starts_with(dir)
        && (path.len() == dir.len() || dir.ends_with(b"/") || path[dir.len()] == b'/')
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A domain built ahead, before the job's workspace exists, is used by
    /// the job it was built for, and only by it, with several built at once:
    /// a step confined for `b` can read `b` and not `a`.
    #[test]
    fn a_confinement_built_ahead_serves_its_own_workspace_only() {
        crate::testing::alone(
            "exec::sandbox::tests::a_confinement_built_ahead_serves_its_own_workspace_only",
            || {
                let root = tempfile::tempdir().unwrap();
                let r = root.path().canonicalize().unwrap();
                std::fs::create_dir_all(r.join("state/work")).unwrap();
                let policy = Policy::new(Mode::Auto, vec![r.join("state")], vec![], None);
                policy.prepare("a");
                policy.prepare("b");
                assert_eq!(policy.ahead().len(), 2);
                // The workspaces are made while the domains are built.
                let (a, b) = (r.join("state/work/a"), r.join("state/work/b"));
                for dir in [&a, &b] {
                    std::fs::create_dir_all(dir).unwrap();
                    std::fs::write(dir.join("f"), "x").unwrap();
                }
                let (a, b) = (std::slice::from_ref(&a), std::slice::from_ref(&b));
                let for_b = policy.confinement("b", b).unwrap();
                assert_eq!(policy.ahead().len(), 1, "a's is left for a");
                let ahead = policy.confinement("a", a).unwrap();
                assert!(policy.ahead().is_empty(), "taken by its job");
                // One built now is as good (their rule counts may differ by
                // what other tests make and remove beside the way meanwhile).
                let now = policy.confinement("a", a).unwrap();
                assert_eq!(ahead.sandbox.is_some(), now.sandbox.is_some());
                let (a, b) = (&a[0], &b[0]);
                if for_b.sandbox.is_none() {
                    return; // no Landlock here: nothing to run confined
                }
                let cat = |confinement: &Confinement, dir: &Path| {
                    let cmd = crate::exec::Command {
                        program: "/bin/cat".into(),
                        args: vec![dir.join("f").into()],
                        env: Vec::new(),
                        cwd: r.clone(),
                        confinement: confinement.clone(),
                        stdin: crate::exec::Input::Empty,
                        owner: None,
                    };
                    let supervision = crate::exec::Supervision {
                        until: None,
                        stop: &|| None,
                        grace: std::time::Duration::from_secs(1),
                    };
                    crate::exec::capture(&cmd, &supervision, 16).stdout
                };
                assert_eq!(cat(&for_b, b), b"x");
                assert_eq!(cat(&for_b, a), b"", "a is not b's");
                for a_s in [&ahead, &now] {
                    assert_eq!(cat(a_s, a), b"x");
                    assert_eq!(cat(a_s, b), b"", "b is not a's");
                }
            },
        );
    }

    /// Threads adding a domain's rules at once add each rule once, and all
    /// of them: the job's thread helps the builder finish.
    #[test]
    fn threads_adding_rules_together_add_each_once() {
        let root = tempfile::tempdir().unwrap();
        let r = root.path().canonicalize().unwrap();
        std::fs::create_dir(r.join("protected")).unwrap();
        for i in 0..300 {
            std::fs::write(r.join(format!("f{i}")), "x").unwrap();
        }
        let Some(build) = Build::plan(&[r.join("protected")], &[]).unwrap() else {
            return; // no Landlock here
        };
        let planned = build.rules.len();
        assert!(planned > 300, "{planned} rules");
        let build = Arc::new(build);
        let helpers: Vec<_> = (0..3)
            .map(|_| {
                let build = build.clone();
                thread::spawn(move || build.add_rules())
            })
            .collect();
        build.add_rules();
        for helper in helpers {
            helper.join().unwrap();
        }
        // Entries other tests remove beside the way meanwhile get no rule.
        let there = build
            .rules
            .iter()
            .filter(|(p, _, _)| p.symlink_metadata().is_ok());
        let there = there.count();
        let sandbox = Arc::try_unwrap(build).unwrap().finish().unwrap();
        assert!(
            there <= sandbox.rules && sandbox.rules <= planned,
            "{} rules added of {planned}, {there} of whose paths are there",
            sandbox.rules
        );
    }

    /// An entry that went away since it was listed gets no rule; one that
    /// became another kind of entry gets the rule for what it is now; one
    /// that cannot be opened for another reason (here a name too long, as
    /// when descriptors run out) fails the domain, naming it.
    #[test]
    fn entries_changed_since_the_listing_are_ruled_by_what_is_there() {
        let root = tempfile::tempdir().unwrap();
        let r = root.path().canonicalize().unwrap();
        for d in ["protected", "gone", "became-a-file"] {
            std::fs::create_dir(r.join(d)).unwrap();
        }
        let Some(build) = Build::plan(&[r.join("protected")], &[]).unwrap() else {
            return; // no Landlock here
        };
        let planned = build.rules.len();
        std::fs::remove_dir(r.join("gone")).unwrap();
        std::fs::remove_dir(r.join("became-a-file")).unwrap();
        std::fs::write(r.join("became-a-file"), "x").unwrap();
        build.add_rules();
        let sandbox = build.finish().expect("the domain is built");
        assert!(sandbox.rules < planned, "no rule for what is gone");

        let mut build = Build::plan(&[r.join("protected")], &[]).unwrap().unwrap();
        let long = r.join("x".repeat(300));
        build.rules.push((long.clone(), false, u64::MAX));
        build.add_rules();
        let err = build
            .finish()
            .expect_err("a rule that cannot be made fails it");
        assert!(
            err.to_string().contains(&long.display().to_string()),
            "{err}"
        );
    }

    /// Another name of a guarded file (a hard link beside the way) gets the
    /// file's own treatment: a rule is for the inode, whatever its name.
    #[test]
    fn a_hard_link_to_a_guarded_file_is_guarded_as_the_file() {
        let root = tempfile::tempdir().unwrap();
        let r = root.path().canonicalize().unwrap();
        std::fs::create_dir(r.join("protected")).unwrap();
        std::fs::write(r.join("protected/token"), "t").unwrap();
        std::fs::write(r.join("ca.pem"), "c").unwrap();
        std::fs::hard_link(r.join("protected/token"), r.join("token-link")).unwrap();
        std::fs::hard_link(r.join("ca.pem"), r.join("ca-link")).unwrap();
        std::fs::write(r.join("plain"), "p").unwrap();
        let mut plan = Plan::new(
            vec![r.join("protected"), r.join("protected/token")],
            vec![r.join("ca.pem")],
        );
        plan.walk(&r);
        let rule = |p: &str| {
            let found = plan.rules.iter().find(|(path, _, _)| *path == r.join(p));
            found.map(|(_, _, rights)| *rights)
        };
        assert_eq!(rule("token-link"), None);
        let read_only = access::READ_FILE | access::EXECUTE | access::READ_DIR;
        assert_eq!(rule("ca-link"), Some(read_only));
        assert_eq!(rule("plain"), Some(u64::MAX));
    }

    /// A workspace turned into a symlink (a step can rename its own) gives
    /// no rule to the link's target: the job's confinement fails instead.
    #[test]
    fn a_workspace_that_became_a_symlink_is_refused() {
        let root = tempfile::tempdir().unwrap();
        let r = root.path().canonicalize().unwrap();
        std::fs::create_dir_all(r.join("protected/sub")).unwrap();
        let workspace = r.join("workspace");
        std::os::unix::fs::symlink(r.join("protected/sub"), &workspace).unwrap();
        let policy = Policy::new(Mode::Auto, vec![r.join("protected")], vec![], None);
        if landlock::abi() == 0 {
            return; // no Landlock here: no domain to give a rule in
        }
        let err = policy
            .confinement("job", std::slice::from_ref(&workspace))
            .expect_err("a symlinked workspace is refused");
        assert!(err.to_string().contains("is a symlink"), "{err}");
        std::fs::remove_file(&workspace).unwrap();
        std::fs::create_dir(&workspace).unwrap();
        assert!(policy.confinement("job", &[workspace]).is_ok());
    }

    #[test]
    fn the_complement_lists_the_way_allows_the_rest_and_carves_the_workspace() {
        let root = tempfile::tempdir().unwrap();
        let r = root.path().canonicalize().unwrap();
        for d in [
            "state/work/job-1",
            "state/jobs",
            "other",
            "secrets",
            "state-old",
        ] {
            std::fs::create_dir_all(r.join(d)).unwrap();
        }
        std::fs::write(r.join("token"), "t").unwrap();
        std::fs::write(r.join("notes"), "n").unwrap();
        let (protected, read_only) = (
            vec![r.join("state"), r.join("token"), r.join("secrets")],
            vec![r.join("notes")],
        );
        let mut plan = Plan::new(protected.clone(), read_only.clone());
        plan.walk(&r);
        let rule = |p: &str| {
            plan.rules
                .iter()
                .find(|(path, _, _)| *path == r.join(p))
                .map(|(_, _, rights)| *rights)
        };
        assert_eq!(rule(""), Some(access::READ_DIR));
        assert_eq!(rule("other"), Some(u64::MAX));
        // A name that begins like a protected one is not beneath it.
        assert_eq!(rule("state-old"), Some(u64::MAX));
        assert_eq!(
            rule("notes"),
            Some(access::READ_FILE | access::EXECUTE | access::READ_DIR)
        );
        for denied in [
            "state",
            "token",
            "secrets",
            "state/jobs",
            "state/work",
            "state/work/job-1",
        ] {
            assert_eq!(rule(denied), None, "{denied} must get no rule");
        }

        // The workspace is carved out when the job takes the domain, inside a
        // protected path or, made after the walk (`late`), beside the way.
        // Nothing on the way to a guarded path, nor a read-only one, is given.
        std::fs::create_dir(r.join("late")).unwrap();
        for (path, given) in [
            ("state/work/job-1", true),
            ("late", true),
            ("state", false),
            ("", false),
            ("token", false),
            ("notes", false),
            ("notes/inside", false),
        ] {
            assert_eq!(
                allowable(&protected, &read_only, &r.join(path)),
                given,
                "{path}"
            );
        }
    }

    #[test]
    fn only_what_the_step_could_change_needs_a_read_only_rule() {
        use std::os::unix::fs::{chown, PermissionsExt};
        let set = |p: &Path, mode: u32| {
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap()
        };
        let root = tempfile::tempdir().unwrap();
        let r = root.path().canonicalize().unwrap();
        let (dir, file) = (r.join("bin"), r.join("bin/sortie"));
        std::fs::create_dir(&dir).unwrap();
        std::fs::write(&file, "x").unwrap();
        let me = crate::os::uid();
        // Another user's file in another user's directories (the test's own
        // user is the other one; 4242 is the step's).
        let step = if me == 4242 { 4243 } else { 4242 };
        set(&file, 0o755);
        set(&dir, 0o755);
        set(&r, 0o755);
        assert!(!could_change(&file, step, false));
        assert!(could_change(&file, step, true), "a privileged step could");
        set(&file, 0o775);
        assert!(could_change(&file, step, false), "group-writable");
        set(&file, 0o755);
        set(&dir, 0o777);
        assert!(
            could_change(&file, step, false),
            "replaceable in its directory"
        );
        set(&dir, 0o1777);
        assert!(
            !could_change(&file, step, false),
            "sticky: not another's entry"
        );
        set(&dir, 0o755);
        if me == 0 {
            chown(&file, Some(step), None).unwrap();
            assert!(could_change(&file, step, false), "its owner could");
            chown(&file, Some(0), None).unwrap();
            chown(&dir, Some(step), None).unwrap();
            assert!(
                could_change(&file, step, false),
                "the owner of its directory could"
            );
        }
        assert!(could_change(&r.join("missing"), step, false), "in doubt");
    }

    #[test]
    fn only_a_device_the_step_could_open_needs_a_rule() {
        use std::os::unix::fs::{chown, PermissionsExt};
        let root = tempfile::tempdir().unwrap();
        // A file stands for the device: only its owner, group and mode count.
        let disk = root.path().join("vda");
        std::fs::write(&disk, "").unwrap();
        let set = |mode: u32| {
            std::fs::set_permissions(&disk, std::fs::Permissions::from_mode(mode)).unwrap()
        };
        if crate::os::uid() != 0 {
            return; // the owner and group below need root to set
        }
        chown(&disk, Some(0), Some(6)).unwrap();
        set(0o660);
        let step = 4242;
        assert!(!could_open(&disk, step, &[4242], false));
        assert!(
            could_open(&disk, step, &[4242, 6], false),
            "a member of its group"
        );
        assert!(could_open(&disk, step, &[4242], true), "a privileged step");
        assert!(could_open(&disk, 0, &[0], true));
        set(0o664);
        assert!(
            could_open(&disk, step, &[4242], false),
            "others may read it"
        );
        set(0o660);
        chown(&disk, Some(step), None).unwrap();
        assert!(could_open(&disk, step, &[4242], false), "its owner");
        assert!(
            could_open(&root.path().join("gone"), step, &[], false),
            "in doubt"
        );
    }

    #[test]
    fn beneath_goes_by_whole_names() {
        let yes = [
            ("/a/b", "/a/b"),
            ("/a/b/c", "/a/b"),
            ("/a", "/"),
            ("/", "/"),
        ];
        for (path, dir) in yes {
            assert!(beneath(Path::new(path), Path::new(dir)), "{path} in {dir}");
        }
        let no = [("/a/bc", "/a/b"), ("/a", "/a/b"), ("/ab", "/a")];
        for (path, dir) in no {
            assert!(!beneath(Path::new(path), Path::new(dir)), "{path} in {dir}");
        }
    }
}
