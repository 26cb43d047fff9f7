//! The steps' process groups a shot runs, each written down while it runs
//! (`STATE/groups/PGID`, holding the boot and the leader's start time), so
//! that the next shot stops what a killed shot left running: the steps of a
//! job reported `lost` must not go on beside the job's next attempt.
//!
//! A group is stopped only while its leader is the process written down (the
//! same boot, the same start time): a pid, and so a group's id, is not given
//! to another process while that one lives. A group whose leader has ended
//! is left alone, and so are processes that left their group.
//! The state dir's lock keeps shots apart, so every entry a shot finds at its
//! start was left by one that died.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use std::fs::{DirBuilder, File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};

use crate::os::{self, ProcessGroup};

/// Where this shot writes its groups down; `None` (`sortie exec`, which has
/// no state dir): nowhere.
static DIR: Mutex<Option<PathBuf>> = Mutex::new(None);

fn dir() -> Option<PathBuf> {
    DIR.lock().unwrap_or_else(|e| e.into_inner()).clone()
}

/// Write the steps' groups down in `dir` from now on: a directory in the
/// state dir, made private.
pub fn keep_in(dir: &Path) -> std::io::Result<()> {
    match DirBuilder::new().mode(0o700).create(dir) {
        Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => return Err(e),
        _ => {}
    }
    own_dir(dir)?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    *DIR.lock().unwrap_or_else(|e| e.into_inner()) = Some(dir.to_path_buf());
    Ok(())
}

/// `dir` must be a directory of sortie's own, not a link to one: entries
/// are removed from it, and what they name is signalled.
fn own_dir(dir: &Path) -> std::io::Result<()> {
    let meta = std::fs::symlink_metadata(dir)?;
    if !meta.is_dir() || meta.uid() != os::uid() {
        return Err(std::io::Error::other("not a directory of sortie's own"));
    }
    Ok(())
}

/// The group led by `pid` has started. A failure is only a debug line: the
/// step runs as well without it.
pub(super) fn started(group: ProcessGroup) {
    let (Some(dir), Some((start, session))) = (dir(), os::start_and_session(group.id())) else {
        return;
    };
    let entry = format!("{} {start} {session}\n", os::boot_id());
    let path = dir.join(group.id().to_string());
    let written = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&path)
        .and_then(|mut f| f.write_all(entry.as_bytes()));
    if let Err(e) = written {
        tracing::warn!(
            "{}: {e}; if this shot dies, the next will not stop this step",
            path.display()
        );
    }
}

/// The group has ended (its leader reaped, what was left killed).
pub(super) fn ended(group: ProcessGroup) {
    if let Some(dir) = dir() {
        let _ = std::fs::remove_file(dir.join(group.id().to_string()));
    }
}

/// Stop the groups an earlier shot wrote down in `dir` and left running:
/// SIGTERM, up to `grace` for them to end, SIGKILL. Returns how many there
/// were; every entry is removed.
pub fn stop_left(dir: &Path, grace: Duration) -> usize {
    match own_dir(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return 0,
        Err(e) => {
            tracing::warn!("{}: {e}; left alone", dir.display());
            return 0;
        }
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    // Entries others could have written are cleared, and nothing signalled.
    let trusted = std::fs::symlink_metadata(dir).is_ok_and(|m| m.mode() & 0o022 == 0);
    if !trusted {
        tracing::warn!(
            "{}: others may write there; its entries are removed, no group is stopped",
            dir.display()
        );
    }
    let mut found = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        let group = entry
            .file_name()
            .to_str()
            .and_then(|name| name.parse::<i32>().ok())
            .filter(|id| *id > 1)
            .map(|id| ProcessGroup::led_by(id as u32));
        let written = read_entry(&path);
        if let (true, Some(group), Some(written)) = (trusted, group, written) {
            if leads(group, &written) {
                group.signal(os::SIGTERM);
                found.push((group, path));
                continue;
            }
        }
        let _ = std::fs::remove_file(&path);
    }
    if found.is_empty() {
        return 0;
    }
    let until = Instant::now() + grace;
    while found.iter().any(|(g, _)| g.exists()) && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(50));
    }
    for (group, path) in &found {
        group.signal(os::SIGKILL);
        let _ = std::fs::remove_file(path);
    }
    found.len()
}

/// An entry's text: a few bytes of a regular file of sortie's own (a link
/// in its place is not followed).
fn read_entry(path: &Path) -> Option<String> {
    let file: File = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
        .ok()?;
    let meta = file.metadata().ok()?;
    if !meta.is_file() || meta.uid() != os::uid() || meta.nlink() != 1 || meta.mode() & 0o077 != 0 {
        return None;
    }
    let mut text = String::new();
    file.take(64).read_to_string(&mut text).ok()?;
    Some(text)
}

/// Whether `group` is still the step's written down (`"BOOT START
/// SESSION"`): on this boot, led by the process written down, or, once that
/// process has ended, made of processes of its session started since (a
/// group's id is not given to another process while the group has members,
/// and a process that took the id after the group ended is not of the dead
/// shot's session).
fn leads(group: ProcessGroup, written: &str) -> bool {
    let mut fields = written.split_whitespace();
    let (Some(boot), Some(start), Some(session)) = (
        fields.next(),
        fields.next().and_then(|s| s.parse::<u64>().ok()),
        fields.next().and_then(|s| s.parse::<i32>().ok()),
    ) else {
        return false;
    };
    if boot != os::boot_id() || boot.is_empty() {
        return false;
    }
    match os::start_and_session(group.id()) {
        Some((now, _)) => now == start,
        None => {
            let members = os::group_members(group.id());
            let pids: Vec<i32> = members.iter().map(|m| m.pid).collect();
            tracing::debug!(group = group.id(), ?pids, "its first process has ended");
            !members.is_empty()
                && members
                    .iter()
                    .all(|m| m.start >= start && m.session == session)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spawn(script: &str) -> std::process::Child {
        use std::os::unix::process::CommandExt;
        std::process::Command::new("sh")
            .args(["-c", script])
            .process_group(0)
            .spawn()
            .unwrap()
    }

    fn write_down(dir: &Path, group: ProcessGroup) {
        *DIR.lock().unwrap() = Some(dir.to_path_buf());
        started(group);
        *DIR.lock().unwrap() = None;
    }

    /// An entry as sortie writes one (0600), with `text`.
    fn write_entry(path: &Path, text: &str) {
        std::fs::write(path, text).unwrap();
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
    }

    /// A group written down and still led by its process is stopped, the
    /// processes it started too; an entry whose leader is another process
    /// (another start time) or gone stops nothing; every entry goes.
    #[test]
    fn a_group_left_running_is_stopped_and_no_other() {
        let dir = tempfile::tempdir().unwrap();
        let mut left = spawn("sleep 600 & sleep 600; wait");
        let group = ProcessGroup::led_by(left.id());
        write_down(dir.path(), group);
        let mut other = spawn("sleep 600");
        let other_group = ProcessGroup::led_by(other.id());
        let session = os::start_and_session(other.id() as i32).unwrap().1;
        let another_start = format!("{} 1 {session}\n", os::boot_id());
        write_entry(&dir.path().join(other.id().to_string()), &another_start);
        std::fs::write(dir.path().join("999999999"), "x 1\n").unwrap();
        // Reaped as init reaps an orphan, while it is being stopped.
        let reaper = std::thread::spawn(move || left.wait().unwrap());
        assert_eq!(stop_left(dir.path(), Duration::from_secs(30)), 1);
        reaper.join().unwrap();
        let gone = Instant::now() + Duration::from_secs(5);
        while group.exists() && Instant::now() < gone {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(!group.exists(), "the group's other sleep is gone too");
        assert!(other_group.exists());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        other.kill().unwrap();
        other.wait().unwrap();
    }

    /// Once its leader has ended, a group of processes started since is
    /// still the step's, and stopped.
    #[test]
    fn a_group_whose_leader_ended_is_stopped() {
        let dir = tempfile::tempdir().unwrap();
        let mut leader = spawn("sleep 600 >/dev/null 2>&1 &");
        let group = ProcessGroup::led_by(leader.id());
        write_down(dir.path(), group);
        leader.wait().unwrap();
        assert!(group.exists(), "the leader's sleep is left");
        assert_eq!(stop_left(dir.path(), Duration::from_secs(30)), 1);
        let gone = Instant::now() + Duration::from_secs(10);
        while os::group_members(group.id()).iter().any(|m| !zombie(m.pid)) && Instant::now() < gone
        {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(os::group_members(group.id()).iter().all(|m| zombie(m.pid)));
    }

    /// A group without its leader whose processes are of another session
    /// than the one written down: another process took the id after the
    /// step's group ended. It is not stopped.
    #[test]
    fn a_group_of_another_session_is_not_stopped() {
        let dir = tempfile::tempdir().unwrap();
        let mut leader = spawn("sleep 600 >/dev/null 2>&1 &");
        let group = ProcessGroup::led_by(leader.id());
        let (start, session) = os::start_and_session(group.id()).unwrap();
        let other = format!("{} {start} {}\n", os::boot_id(), session + 1);
        write_entry(&dir.path().join(group.id().to_string()), &other);
        leader.wait().unwrap();
        assert_eq!(stop_left(dir.path(), Duration::from_secs(1)), 0);
        assert!(os::group_members(group.id()).iter().any(|m| !zombie(m.pid)));
        group.signal(os::SIGKILL);
    }

    fn zombie(pid: i32) -> bool {
        std::fs::read_to_string(format!("/proc/{pid}/stat")).map_or(true, |s| {
            s.rsplit_once(')').unwrap().1.trim_start().starts_with('Z')
        })
    }

    /// `groups/` as a link to another directory, or an entry that is not
    /// sortie's own file: nothing is removed there, nothing signalled.
    #[test]
    fn what_is_not_sortie_s_own_is_left_alone() {
        let top = tempfile::tempdir().unwrap();
        let victim = top.path().join("victim");
        std::fs::create_dir(&victim).unwrap();
        let mut other = spawn("sleep 600");
        let (start, session) = os::start_and_session(other.id() as i32).unwrap();
        let entry = format!("{} {start} {session}\n", os::boot_id());
        let named = victim.join(other.id().to_string());
        write_entry(&named, &entry);
        std::fs::write(victim.join("file"), "kept").unwrap();
        let groups = top.path().join("groups");
        std::os::unix::fs::symlink(&victim, &groups).unwrap();
        assert_eq!(stop_left(&groups, Duration::from_secs(1)), 0);
        assert_eq!(std::fs::read_dir(&victim).unwrap().count(), 2);
        assert!(keep_in(&groups).is_err());
        // An entry that is a link to a file that names the process.
        std::fs::remove_file(&groups).unwrap();
        std::fs::create_dir(&groups).unwrap();
        std::os::unix::fs::symlink(
            victim.join(other.id().to_string()),
            groups.join(other.id().to_string()),
        )
        .unwrap();
        assert_eq!(stop_left(&groups, Duration::from_secs(1)), 0);
        // A hard link to it (a file of sortie's own that someone else could
        // have linked there).
        let in_groups = groups.join(other.id().to_string());
        std::fs::hard_link(&named, &in_groups).unwrap();
        assert_eq!(stop_left(&groups, Duration::from_secs(1)), 0);
        // The file itself, in a groups/ that others may write: removed.
        std::fs::copy(&named, &in_groups).unwrap();
        std::fs::set_permissions(&groups, std::fs::Permissions::from_mode(0o777)).unwrap();
        assert_eq!(stop_left(&groups, Duration::from_secs(1)), 0);
        assert_eq!(std::fs::read_dir(&groups).unwrap().count(), 0);
        assert!(ProcessGroup::led_by(other.id()).exists());
        // The same entry, trusted: the process is stopped.
        std::fs::copy(&named, &in_groups).unwrap();
        std::fs::set_permissions(&groups, std::fs::Permissions::from_mode(0o700)).unwrap();
        let reaper = std::thread::spawn(move || other.wait().unwrap());
        assert_eq!(stop_left(&groups, Duration::from_secs(30)), 1);
        reaper.join().unwrap();
    }

    /// A leader that ignores SIGTERM is killed after the grace.
    #[test]
    fn a_group_that_ignores_sigterm_is_killed_after_the_grace() {
        let dir = tempfile::tempdir().unwrap();
        let mut left = spawn("trap '' TERM; sleep 600 & wait");
        std::thread::sleep(Duration::from_millis(100));
        write_down(dir.path(), ProcessGroup::led_by(left.id()));
        let reaper = std::thread::spawn(move || left.wait().unwrap());
        let begun = Instant::now();
        assert_eq!(stop_left(dir.path(), Duration::from_millis(300)), 1);
        assert!(begun.elapsed() >= Duration::from_millis(300));
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(reaper.join().unwrap().signal(), Some(os::SIGKILL));
    }
}
