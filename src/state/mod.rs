//! The state dir: the lock that keeps shots apart, and the jobs in flight.
//!
//! Layout: `lock` (held for the whole shot, so an overlapping cron tick cannot
//! deliver the same outbox twice), `jobs/<id>/` (each job's outbox, see
//! [`outbox`]; a finished one is renamed into `cleared/` before it is removed),
//! `given-up/` (deliveries the control plane refused for good),
//! `groups/` (the steps' process groups running now, for the next shot to
//! stop when this one dies), `work/` (the jobs' private workspaces; with `--run-as`, it and the state dir
//! have an ACL that lets the steps' user pass, and no one else), `last-shot.json` and `history.jsonl`
//! (what the last shots did, for `sortie status`, see [`history`]). Everything is created private (0700
//! directories, 0600 files), whatever the umask.

pub mod files;
pub mod history;
pub mod outbox;
pub mod way;

use std::fs::{File, OpenOptions, TryLockError};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use crate::exit::{Cause, Failure};
use files::{PRIVATE_DIR, PRIVATE_FILE};
use outbox::JobDir;

/// A shot does not claim work when the state dir's filesystem has less room than
/// this: a job whose log cannot be written would have to be stopped.
pub const MIN_FREE: u64 = 16 * 1024 * 1024;

/// Where a finished job's entry goes to be removed (see [`JobDir::clear`]).
const CLEARED: &str = "cleared";

/// The state dir's path resolved, when no one but root and sortie's own user
/// may change the way to it (or the state dir itself): another user's
/// directory or link on it, or a directory every user or a group sortie is
/// not in may write, could send the next shot's lock, outboxes and history
/// elsewhere. What is missing of it is made here, a directory at a time, and
/// each is judged once made (another user may have made it first).
fn safe_way(root: &Path) -> Result<PathBuf> {
    let given = std::path::absolute(root)?;
    let (uid, groups) = (crate::os::uid(), crate::os::groups());
    for _ in 0..=given.components().count() {
        match way::walk_to_make(&given, &mut |step| way::ours(step, uid, &groups)) {
            Ok(root) => {
                // Sticky or not: any user could make sortie's directories
                // in it before sortie does.
                use std::os::unix::fs::MetadataExt;
                if std::fs::metadata(&root).is_ok_and(|m| m.mode() & 0o002 != 0) {
                    return Err(anyhow::anyhow!(
                        "{} may be written by every user: give a directory of sortie's own",
                        root.display()
                    ));
                }
                return Ok(root);
            }
            Err(way::Refused::Missing(dir)) => {
                use std::os::unix::fs::DirBuilderExt;
                match std::fs::DirBuilder::new().mode(PRIVATE_DIR).create(&dir) {
                    Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => {
                        return Err(anyhow::Error::new(e)
                            .context(format!("cannot create {}", dir.display())))
                    }
                    _ => {}
                }
            }
            Err(way::Refused::Why(why)) => return Err(anyhow::Error::msg(why)),
        }
    }
    Err(anyhow::anyhow!(
        "{}: its way keeps changing",
        given.display()
    ))
}

/// The ids of the jobs whose results wait in the state dir at `root` for a
/// later shot, read without the lock (for `sortie status`).
pub fn waiting(root: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(root.join("jobs")) else {
        return Vec::new();
    };
    let mut ids: Vec<String> = entries
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .filter_map(|e| JobDir::existing(e.path()).journal().ok().flatten())
        .map(|journal| journal.id)
        .collect();
    ids.sort();
    ids
}

/// Whether `step` is one the steps' `user` (with its file identity,
/// `as_user`, taken) may pass and could not use to send the way elsewhere:
/// a directory or link of its own, or a directory it may change that is not
/// sticky (a link in it could be swapped).
fn passable(
    user: &crate::os::User,
    as_user: &crate::os::FsIdentity,
    step: &way::Step<'_>,
) -> std::result::Result<(), String> {
    use std::os::unix::fs::MetadataExt;
    let (path, meta) = (step.path, step.meta);
    if meta.uid() == user.uid
        || (!meta.is_symlink() && meta.mode() & 0o1000 == 0 && as_user.may_change(path))
    {
        return Err(format!("{} may change {}", user.name, path.display()));
    }
    if !meta.is_symlink() && step.passed && std::fs::metadata(path.join(".")).is_err() {
        return Err(format!("{} cannot pass {}", user.name, path.display()));
    }
    Ok(())
}

pub struct StateDir {
    root: PathBuf,
    /// The state dir's path as given (before a trusted link was resolved).
    given: PathBuf,
    /// The lock file and the directory, locked until the shot ends; the OS
    /// releases them if sortie dies.
    _lock: (File, File),
}

/// Why the state dir cannot be used: its filesystem's trouble (read-only,
/// full, failing) is an I/O failure, anything else (a path that is not a
/// directory, permissions) a configuration error.
fn unusable(e: anyhow::Error) -> Failure {
    let errno = e
        .chain()
        .find_map(|c| c.downcast_ref::<std::io::Error>())
        .and_then(std::io::Error::raw_os_error);
    match errno {
        Some(libc::EROFS | libc::EIO | libc::ENOSPC | libc::EDQUOT) => Failure::io(e),
        _ => Failure::config(e),
    }
}

impl StateDir {
    /// Open the state dir and take its lock, waiting up to `wait` for another shot
    /// to release it (then failing with the "busy" exit code).
    pub fn open(root: &Path, wait: Duration) -> Result<StateDir> {
        let given = root;
        let root = safe_way(root)
            .with_context(|| format!("state dir {}", given.display()))
            .map_err(unusable)?;
        files::ensure_dir(&root, PRIVATE_DIR)
            .with_context(|| format!("state dir {}", root.display()))
            .map_err(unusable)?;
        let lock_path = root.join("lock");
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(PRIVATE_FILE)
            // A FIFO in its place must not hold the shot (nor a device).
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
            .open(&lock_path)
            .and_then(|lock| match lock.metadata()?.is_file() {
                true => Ok(lock),
                false => Err(std::io::Error::other("not a regular file")),
            })
            .with_context(|| format!("cannot open {}", lock_path.display()))
            .map_err(unusable)?;
        let dir = File::open(&root)
            .with_context(|| format!("cannot open {}", root.display()))
            .map_err(Failure::config)?;
        let until = Instant::now() + wait;
        // The file, as every sortie locks it, then the directory itself: a
        // lock file removed under a running shot (by an age-based cleaner:
        // it is the oldest file here) must not let the next shot in.
        for (held, path) in [(&lock, &lock_path), (&dir, &root)] {
            loop {
                match held.try_lock() {
                    Ok(()) => break,
                    Err(TryLockError::WouldBlock) if Instant::now() < until => {
                        std::thread::sleep(Duration::from_millis(50));
                    }
                    Err(TryLockError::WouldBlock) => {
                        return Err(Failure::new(
                            Cause::Busy,
                            anyhow::anyhow!(
                                "another shot is running with state dir {}; this one stops",
                                root.display()
                            ),
                        )
                        .into())
                    }
                    // A filesystem that locks no directory (NFS): the file's lock stands alone.
                    Err(TryLockError::Error(e)) if path == &root => {
                        tracing::debug!("locking {}: {e}", root.display());
                        break;
                    }
                    Err(TryLockError::Error(e)) => {
                        return Err(Failure::io(
                            anyhow::Error::new(e).context(format!("locking {}", path.display())),
                        )
                        .into())
                    }
                }
            }
        }
        // Young, for those cleaners.
        let _ = lock.set_modified(std::time::SystemTime::now());
        Ok(StateDir {
            root,
            given: given.to_path_buf(),
            _lock: (lock, dir),
        })
    }

    /// `name` in the state dir when it is a directory of sortie's own, not
    /// a link to one: what a shot finishes or removes there must be its own.
    fn own(&self, name: &str) -> Option<PathBuf> {
        use std::os::unix::fs::MetadataExt;
        let path = self.root.join(name);
        let meta = std::fs::symlink_metadata(&path).ok()?;
        (meta.is_dir() && meta.uid() == crate::os::uid()).then_some(path)
    }

    /// The state dir's path (its files beside the jobs: the history).
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// A new job's outbox, `jobs/<id>/`.
    pub fn job_dir(&self, id: &str) -> Result<JobDir> {
        JobDir::create(&self.root, id)
    }

    /// The outboxes left by earlier shots (jobs whose delivery did not finish).
    pub fn pending_jobs(&self) -> Vec<JobDir> {
        // Entries a killed shot was removing: finish the removal.
        if let Some(Ok(entries)) = self.own(CLEARED).map(std::fs::read_dir) {
            for entry in entries.flatten() {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
        let mut dirs: Vec<PathBuf> = self
            .own("jobs")
            .map(std::fs::read_dir)
            .and_then(Result::ok)
            .map(|entries| {
                entries
                    .flatten()
                    .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                    .map(|e| e.path())
                    .collect()
            })
            .unwrap_or_default();
        dirs.sort();
        dirs.into_iter().map(JobDir::existing).collect()
    }

    /// Remove the empty workspaces in `work/`: a job's workspace is made
    /// before its start is asked for, so a shot killed meanwhile leaves one
    /// (with the job's entry), and no shot owns it once the state dir's lock
    /// is held. A workspace with anything in it (kept with --keep-workspace)
    /// stays.
    pub fn remove_empty_workspaces(&self) {
        let Some(Ok(entries)) = self.own("work").map(std::fs::read_dir) else {
            return;
        };
        for entry in entries.flatten() {
            if entry.file_name().as_encoded_bytes().starts_with(b"sortie-") {
                // Fails, and so keeps it, unless it is an empty directory.
                let _ = std::fs::remove_dir(entry.path());
            }
        }
    }

    /// Remove what is left of the workspaces of the jobs in `dirs`: a shot that
    /// died while they ran left them, with whatever their steps wrote there
    /// (result files, secrets delivered as files).
    pub fn remove_workspaces_of(&self, dirs: &[JobDir]) {
        let Some(Ok(entries)) = self.own("work").map(std::fs::read_dir) else {
            return;
        };
        let ids: Vec<&str> = dirs
            .iter()
            .filter_map(|d| d.path().file_name()?.to_str())
            .collect();
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(rest) = name.to_str().and_then(|n| n.strip_prefix("sortie-")) else {
                continue;
            };
            // `sortie-ID-` and tempfile's six random characters: never
            // another job's whose id begins with this one's.
            let of = |id: &&str| {
                rest.strip_prefix(*id)
                    .and_then(|r| r.strip_prefix('-'))
                    .is_some_and(|r| r.len() == 6 && r.bytes().all(|b| b.is_ascii_alphanumeric()))
            };
            if ids.iter().any(of) {
                // Not followed if a link: the link goes, not what it names.
                if let Err(e) = std::fs::remove_dir_all(entry.path()) {
                    tracing::warn!("removing {}: {e}", entry.path().display());
                }
            }
        }
    }

    /// `groups/`: the steps' process groups running now, written down by
    /// exec's ledger.
    pub fn groups_dir(&self) -> PathBuf {
        self.root.join("groups")
    }

    /// `work/`, created: where job workspaces are made.
    pub fn work_dir(&self) -> Result<PathBuf> {
        let dir = self.root.join("work");
        files::ensure_dir(&dir, PRIVATE_DIR)
            .with_context(|| format!("cannot create {}", dir.display()))
            .map_err(Failure::io)?;
        Ok(dir)
    }

    /// `work/` for the workspaces of steps run as `user` (`--run-as`), with
    /// the state dir and `work/` made passable by that user alone (their ACL
    /// is set whole, see [`crate::os::acl`]): no other user can reach a
    /// workspace whose modes a job's steps loosened, nor change the state
    /// dir. `Err` says why the workspaces cannot be there (a directory on the
    /// way that is the user's or that it may not pass, a state dir that is not
    /// sortie's, a filesystem without ACLs): they then go to the system's
    /// temporary directory.
    pub fn work_dir_for(&self, user: &crate::os::User) -> std::result::Result<PathBuf, String> {
        // A process of the user may still hold a group it was removed from
        // (or was given by a set-group-id program): the way is judged with
        // those groups too.
        let mut user = user.clone();
        user.groups.extend(crate::os::groups_held(user.uid));
        user.groups.sort_unstable();
        user.groups.dedup();
        let user = &user;
        let identity = || {
            crate::os::FsIdentity::assume(user)
                .map_err(|e| format!("taking the file identity of {}: {e}", user.name))
        };
        // Nothing is changed unless the way to the state dir, as the operator
        // gave it, is sound for the user too and still leads where this shot
        // took its lock.
        let (root, work) = {
            let as_user = identity()?;
            let given = std::path::absolute(&self.given)
                .map_err(|e| format!("{}: {e}", self.given.display()))?;
            let root = way::walk(&given, false, &mut |step| passable(user, &as_user, step))?;
            if std::fs::canonicalize(&self.root).ok().as_ref() != Some(&root) {
                return Err(format!(
                    "{} no longer leads to {}",
                    given.display(),
                    self.root.display()
                ));
            }
            let work = root.join("work");
            (root, work)
        };
        // work/, if there, must be sortie's own directory (looked at as
        // sortie: the user cannot pass the state dir yet).
        if let Ok(meta) = std::fs::symlink_metadata(&work) {
            use std::os::unix::fs::MetadataExt;
            if !meta.is_dir() || meta.uid() != crate::os::uid() {
                return Err(format!("{} is not sortie's directory", work.display()));
            }
        }
        let give = |dir: &Path| {
            crate::os::acl::passage(dir, Some(user.uid))
                .map_err(|e| format!("cannot let {} pass {}: {e}", user.name, dir.display()))
        };
        give(&root)?;
        files::ensure_dir(&work, PRIVATE_DIR)
            .map_err(|e| format!("cannot create {}: {e}", work.display()))?;
        give(&work)?;
        let as_user = identity()?;
        way::walk(&work, true, &mut |step| passable(user, &as_user, step))
    }

    /// Take back the passage [`StateDir::work_dir_for`] gave a `--run-as`
    /// user, for a shot whose steps run as sortie's own user.
    pub fn close_passage(&self) {
        for dir in [self.root.clone(), self.root.join("work")] {
            if let Err(e) = crate::os::acl::passage(&dir, None) {
                tracing::debug!("{}: {e}", dir.display());
            }
        }
    }

    /// True the first time this is asked about `note` in this state dir (a marker
    /// file remembers it): for warnings an operator needs to read once, not daily.
    pub fn first_time(&self, note: &str) -> bool {
        let marker = self.root.join(format!("noted-{note}"));
        files::create_new(&marker, PRIVATE_FILE).is_ok()
    }

    /// Refuse new work when the filesystem is nearly full.
    pub fn check_room(&self) -> Result<()> {
        match crate::os::free_bytes(&self.root) {
            Some(free) if free < MIN_FREE => Err(Failure::io(anyhow::anyhow!(
                "the state dir {} has only {} KiB free (at least {} MiB needed): not claiming work",
                self.root.display(),
                free / 1024,
                MIN_FREE / 1024 / 1024
            ))
            .into()),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::os::has_acl;
    use std::os::unix::fs::{chown, lchown, PermissionsExt};

    #[test]
    fn a_lock_that_is_not_a_file_is_refused_at_once() {
        let top = tempfile::tempdir().unwrap();
        let root = top.path().join("state");
        std::fs::create_dir(&root).unwrap();
        let made = std::process::Command::new("mkfifo")
            .arg(root.join("lock"))
            .status()
            .unwrap();
        assert!(made.success());
        let error = StateDir::open(&root, Duration::ZERO)
            .err()
            .expect("refused");
        assert!(format!("{error:#}").contains("lock"), "{error:#}");
    }

    #[test]
    fn a_dead_job_s_workspace_goes_and_no_other_job_s() {
        let top = tempfile::tempdir().unwrap();
        let state = StateDir::open(&top.path().join("state"), Duration::ZERO).unwrap();
        let work = state.work_dir().unwrap();
        for name in [
            "sortie-a-Ab12Yz",
            "sortie-a-b-Cd34Wx",
            "sortie-ab-Ef56Vu",
            "sortie-a-toolong1",
        ] {
            std::fs::create_dir_all(work.join(name).join(".secrets")).unwrap();
            std::fs::write(work.join(name).join(".secrets/KEY"), "s3cret").unwrap();
        }
        let outside = top.path().join("outside");
        std::fs::create_dir(&outside).unwrap();
        std::os::unix::fs::symlink(&outside, work.join("sortie-a-Zz99Zz")).unwrap();
        state.remove_workspaces_of(&[JobDir::existing(state.root().join("jobs/a"))]);
        let mut left: Vec<String> = std::fs::read_dir(&work)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        assert_eq!(
            left,
            ["sortie-a-b-Cd34Wx", "sortie-a-toolong1", "sortie-ab-Ef56Vu"]
        );
        assert!(outside.exists(), "a link's target is not removed");
    }

    fn user() -> crate::os::User {
        crate::os::User {
            name: "steps".into(),
            uid: 54321,
            gid: 54321,
            groups: vec![54340],
            home: "/".into(),
        }
    }

    fn mode(path: &Path, mode: u32) {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    /// With a sound way, the state dir and work/ let the steps' user pass.
    #[test]
    fn the_workspaces_are_in_the_state_dir_on_a_sound_way() {
        if crate::os::uid() != 0 {
            return; // only root may take another user's identity
        }
        let top = tempfile::tempdir().unwrap();
        mode(top.path(), 0o755);
        let state = StateDir::open(&top.path().join("state"), Duration::ZERO).unwrap();
        let work = state.work_dir_for(&user()).unwrap();
        assert_eq!(work, top.path().canonicalize().unwrap().join("state/work"));
        assert!(has_acl(&work) && has_acl(state.root()));
        state.close_passage();
        assert!(!has_acl(&work) && !has_acl(state.root()));
    }

    /// A directory on the way that another user owns or a group sortie is
    /// not in may write, or another user's link there: that user could swap
    /// the state dir for another, so the state dir is refused, named, and
    /// nothing is made or changed where it leads.
    #[test]
    fn a_way_another_user_could_change_is_refused() {
        if crate::os::uid() != 0 {
            return; // only root may make files of other users
        }
        let top = tempfile::tempdir().unwrap();
        mode(top.path(), 0o755);
        let dir = |name: &str, m: u32| {
            let dir = top.path().join(name);
            std::fs::create_dir(&dir).unwrap();
            mode(&dir, m);
            dir
        };
        let victim = dir("victim", 0o700);
        let owned = dir("owned", 0o755);
        chown(&owned, Some(54321), None).unwrap();
        let shared = dir("shared", 0o775);
        chown(&shared, None, Some(54340)).unwrap();
        let linked = dir("linked", 0o755);
        std::os::unix::fs::symlink(&victim, linked.join("a")).unwrap();
        lchown(linked.join("a"), Some(54321), None).unwrap();
        // A root link to a link of the user's, which leads to a root directory.
        let deep = dir("deep", 0o700);
        std::os::unix::fs::symlink(&deep, linked.join("b")).unwrap();
        lchown(linked.join("b"), Some(54321), None).unwrap();
        std::os::unix::fs::symlink(linked.join("b"), top.path().join("chain")).unwrap();
        for (root, named) in [
            (owned.join("state"), owned.clone()),
            (shared.join("state"), shared.clone()),
            (linked.join("a/state"), linked.join("a")),
            (top.path().join("chain"), linked.join("b")),
        ] {
            let why = format!("{:#}", StateDir::open(&root, Duration::ZERO).err().unwrap());
            assert!(why.contains(&named.display().to_string()), "{why}");
        }
        for dir in [&victim, &deep, &owned, &shared] {
            assert_eq!(
                std::fs::read_dir(dir).unwrap().count(),
                0,
                "{}",
                dir.display()
            );
        }
        // Every user may change it, not sticky: refused too.
        let open = dir("open", 0o777);
        let why = format!(
            "{:#}",
            StateDir::open(&open.join("s"), Duration::ZERO)
                .err()
                .unwrap()
        );
        assert!(why.contains("every user"), "{why}");
        assert_eq!(std::fs::read_dir(&open).unwrap().count(), 0);
        // A group sortie is in, a sticky directory: opened, what was missing
        // made private.
        let ours = dir("ours", 0o775);
        let sticky = dir("sticky", 0o1777);
        assert!(
            StateDir::open(&sticky, Duration::ZERO).is_err(),
            "every user's"
        );
        for root in [ours.join("s"), sticky.join("new/s")] {
            let state = StateDir::open(&root, Duration::ZERO).unwrap();
            use std::os::unix::fs::MetadataExt;
            let made = std::fs::metadata(state.root()).unwrap();
            assert_eq!((made.uid(), made.mode() & 0o777), (0, 0o700));
        }
        assert_eq!(
            std::fs::metadata(sticky.join("new"))
                .unwrap()
                .permissions()
                .mode()
                & 0o777,
            0o700
        );
        // ... but in a sticky directory, another user's entry is theirs.
        let theirs = sticky.join("theirs");
        std::fs::create_dir(&theirs).unwrap();
        chown(&theirs, Some(54321), None).unwrap();
        assert!(StateDir::open(&theirs.join("s"), Duration::ZERO).is_err());
    }

    /// `cleared/`, `jobs/` or `work/` that is a link to another directory:
    /// nothing there is finished or removed.
    #[test]
    fn links_in_place_of_the_state_dir_s_own_directories_are_not_followed() {
        let top = tempfile::tempdir().unwrap();
        let victim = top.path().join("victim");
        for sub in ["a/x", "sortie-empty", "jobs-like/j1"] {
            std::fs::create_dir_all(victim.join(sub)).unwrap();
        }
        let state = StateDir::open(&top.path().join("state"), Duration::ZERO).unwrap();
        for name in [CLEARED, "jobs", "work"] {
            std::os::unix::fs::symlink(&victim, state.root().join(name)).unwrap();
        }
        assert!(state.pending_jobs().is_empty());
        state.remove_empty_workspaces();
        for sub in ["a/x", "sortie-empty", "jobs-like/j1"] {
            assert!(victim.join(sub).is_dir(), "{sub}");
        }
    }

    /// With the state dir sound for sortie, a directory on the way that the
    /// steps' user may change (a group both are in), or a `work/` that is
    /// not sortie's directory: the workspaces go elsewhere, and nothing is
    /// opened to the user.
    #[test]
    fn a_way_the_user_could_change_is_not_used() {
        if crate::os::uid() != 0 {
            return;
        }
        let top = tempfile::tempdir().unwrap();
        mode(top.path(), 0o755);
        let victim = top.path().join("victim");
        std::fs::create_dir(&victim).unwrap();
        mode(&victim, 0o700);
        let shared = top.path().join("shared");
        std::fs::create_dir(&shared).unwrap();
        chown(&shared, None, Some(0)).unwrap();
        mode(&shared, 0o775);
        let in_root_group = crate::os::User {
            groups: vec![0],
            ..user()
        };
        let state = StateDir::open(&shared.join("state"), Duration::ZERO).unwrap();
        let why = state.work_dir_for(&in_root_group).unwrap_err();
        assert!(why.contains(&shared.display().to_string()), "{why}");
        assert!(!has_acl(state.root()), "{why}");
        // work/ that is not a directory (a link to root's victim).
        let odd = top.path().join("odd");
        std::fs::create_dir_all(odd.join("state")).unwrap();
        mode(&odd, 0o755);
        mode(&odd.join("state"), 0o700);
        std::os::unix::fs::symlink(&victim, odd.join("state/work")).unwrap();
        let state = StateDir::open(&odd.join("state"), Duration::ZERO).unwrap();
        let why = state.work_dir_for(&user()).unwrap_err();
        assert!(why.contains("work"), "{why}");
        assert!(!has_acl(&victim) && !has_acl(state.root()), "{why}");
    }
}
