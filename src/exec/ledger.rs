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
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};

use crate::os::{self, ProcessGroup};

/// Where this shot writes its groups down; `None` (`sortie exec`, which has
/// no state dir): nowhere.
static DIR: Mutex<Option<PathBuf>> = Mutex::new(None);

fn dir() -> Option<PathBuf> {
    DIR.lock().unwrap_or_else(|e| e.into_inner()).clone()
}

/// Write the steps' groups down in `dir` from now on: a directory in the
/// state dir, made private (the state dir is sortie's alone, so a plain
/// check that it is a directory is enough).
pub fn keep_in(dir: &Path) -> std::io::Result<()> {
    match DirBuilder::new().mode(0o700).create(dir) {
        Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => return Err(e),
        _ => {}
    }
    if !std::fs::symlink_metadata(dir)?.is_dir() {
        return Err(std::io::Error::other("not a directory"));
    }
    *DIR.lock().unwrap_or_else(|e| e.into_inner()) = Some(dir.to_path_buf());
    Ok(())
}

/// The group led by `pid` has started. A failure is only a debug line: the
/// step runs as well without it.
pub(super) fn started(group: ProcessGroup) {
    let (Some(dir), Some(start)) = (dir(), os::start_time(group.id())) else {
        return;
    };
    let entry = format!("{} {start}\n", os::boot_id());
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
        tracing::debug!("{}: {e}", path.display());
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
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
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
        if let (Some(group), Some(written)) = (group, written) {
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

/// An entry's text (a few bytes; a link in its place is not followed).
fn read_entry(path: &Path) -> Option<String> {
    let file: File = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
        .ok()?;
    let mut text = String::new();
    file.take(64).read_to_string(&mut text).ok()?;
    Some(text)
}

/// Whether `group`'s leader is the process written down (`"BOOT START"`).
fn leads(group: ProcessGroup, written: &str) -> bool {
    let mut fields = written.split_whitespace();
    let (Some(boot), Some(start)) = (fields.next(), fields.next()) else {
        return false;
    };
    boot == os::boot_id()
        && !boot.is_empty()
        && os::start_time(group.id()).is_some_and(|now| now.to_string() == start)
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
        std::fs::write(
            dir.path().join(other.id().to_string()),
            format!("{} 1\n", os::boot_id()),
        )
        .unwrap();
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
