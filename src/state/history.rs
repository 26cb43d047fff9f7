//! The runner's own memory of what it did: the last shot, and the last jobs.
//!
//! An operator asks "what ran last night?" on the host, without the control
//! plane: `sortie status` reads this. `last-shot.json` is replaced by every
//! shot (so a year of idle minutes costs one small file); `history.jsonl`
//! gets one line per job a shot ran or delivered, and is cut back to the last
//! `keep` lines when it grows past twice that. Neither is synced: they are a
//! record for people, not part of what "nothing is lost" promises (the
//! journal is).

use std::fs::{self, OpenOptions};
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::files::{self, PRIVATE_FILE};

const LAST_SHOT: &str = "last-shot.json";
const HISTORY: &str = "history.jsonl";
/// The largest `last-shot.json` read back (a record is a few hundred bytes).
const LAST_SHOT_LIMIT: usize = 64 * 1024;

/// How a shot ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shot {
    pub at: String,
    pub duration_ms: u64,
    pub exit_code: u8,
    /// Jobs claimed and run.
    pub jobs: usize,
    /// Jobs of earlier shots delivered.
    pub recovered: usize,
}

/// How a job ended, as its shot saw it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Job {
    pub at: String,
    pub id: String,
    pub attempt: u64,
    pub status: String,
    pub exit_code: Option<i32>,
    pub duration_ms: u64,
    pub steps_ran: usize,
    pub steps_failed: usize,
    pub log_bytes: u64,
    /// The control plane has the result (false: kept for a later shot).
    pub delivered: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Replace the record of the last shot. Its own file is rewritten in place,
/// padded with spaces (JSON's own whitespace) to the length it had: replacing
/// it by a rename made ext4 write the new file back at once and evict the old
/// one, a twentieth of an empty shot. Anything else in its place (a symlink,
/// a FIFO, a hard link, another mode or owner) is replaced by a new file, as
/// before. Two shots at once (one that found the state dir busy records its
/// failure without the lock) write one after the other; a reader that meets
/// a half-written record (a crash mid-write, or `status` at that very
/// moment) sees none.
pub fn record_shot(root: &Path, shot: &Shot) -> std::io::Result<()> {
    let mut body = serde_json::to_vec(shot).expect("a shot serializes");
    let path = root.join(LAST_SHOT);
    let opened = OpenOptions::new()
        .write(true)
        .create(true)
        .mode(PRIVATE_FILE)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(&path);
    let file = match opened.and_then(|f| f.metadata().map(|m| (f, m))) {
        Ok((file, meta)) if own_record(&meta) => file,
        _ => return replace(root, &body),
    };
    // Released when the file is closed. The length is the one left by the
    // writer before, if any.
    file.lock()?;
    let old = usize::try_from(file.metadata()?.len()).unwrap_or(usize::MAX);
    if old > body.len() && old <= LAST_SHOT_LIMIT {
        body.resize(old, b' ');
    }
    file.write_all_at(&body, 0)?;
    if old > body.len() {
        file.set_len(body.len() as u64)?;
    }
    Ok(())
}

/// Whether `meta` is of the record sortie made: a regular file of its own,
/// 0600, with no other name.
fn own_record(meta: &fs::Metadata) -> bool {
    use std::os::unix::fs::MetadataExt;
    meta.is_file()
        && meta.nlink() == 1
        && meta.uid() == crate::os::uid()
        && meta.mode() & 0o7777 == PRIVATE_FILE
}

/// The record as a new file, renamed over whatever is in its place.
fn replace(root: &Path, body: &[u8]) -> std::io::Result<()> {
    let tmp = root.join(format!(".{LAST_SHOT}.{}.tmp", std::process::id()));
    let _ = fs::remove_file(&tmp);
    let replaced = files::create_new(&tmp, PRIVATE_FILE)
        .and_then(|mut f| f.write_all(body))
        .and_then(|()| fs::rename(&tmp, root.join(LAST_SHOT)));
    if replaced.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    replaced
}

/// Add a job to the history, keeping about the last `keep` (0: none).
pub fn record_job(root: &Path, job: &Job, keep: usize) -> std::io::Result<()> {
    if keep == 0 {
        return Ok(());
    }
    // Parallel jobs of a shot end at once: one appends or trims at a time.
    static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let path = root.join(HISTORY);
    let mut line = serde_json::to_vec(job).expect("a job serializes");
    line.push(b'\n');
    let mut file = OpenOptions::new()
        .create(true)
        .append(true)
        .mode(PRIVATE_FILE)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&path)?;
    file.write_all(&line)?;
    // Lines are counted, not parsed, and a file too short to hold more than
    // twice `keep` of them is not even read: this runs for every job.
    if file.metadata()?.len() <= (2 * keep * SHORTEST_LINE) as u64 {
        return Ok(());
    }
    drop(file);
    let mut body = Vec::new();
    files::open_regular(&path)?.read_to_end(&mut body)?;
    let ends: Vec<usize> = (0..body.len()).filter(|&i| body[i] == b'\n').collect();
    if ends.len() > 2 * keep {
        let kept = &body[ends[ends.len() - keep - 1] + 1..];
        let tmp = root.join(format!(".{HISTORY}.tmp"));
        let _ = fs::remove_file(&tmp);
        files::create_new(&tmp, PRIVATE_FILE).and_then(|mut f| f.write_all(kept))?;
        fs::rename(&tmp, &path)?;
    }
    Ok(())
}

/// Fewer bytes than any line of the history takes (its field names alone).
const SHORTEST_LINE: usize = 100;

/// The last shot, if one was recorded.
pub fn last_shot(root: &Path) -> Option<Shot> {
    let bytes = files::read_regular(&root.join(LAST_SHOT), LAST_SHOT_LIMIT as u64).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// The jobs recorded, oldest first (lines that do not read are skipped, not
/// the rest of the file with them).
pub fn jobs(root: &Path) -> Vec<Job> {
    let Ok(file) = files::open_regular(&root.join(HISTORY)) else {
        return Vec::new();
    };
    BufReader::new(file)
        .split(b'\n')
        .map_while(Result::ok)
        .filter_map(|line| serde_json::from_slice(&line).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(n: usize) -> Job {
        Job {
            at: "2026-11-28T00:00:00.000Z".into(),
            id: format!("j{n}"),
            attempt: 1,
            status: "succeeded".into(),
            exit_code: Some(0),
            duration_ms: 5,
            steps_ran: 1,
            steps_failed: 0,
            log_bytes: 10,
            delivered: true,
            error: None,
        }
    }

    #[test]
    fn the_last_shot_is_rewritten_in_place_whatever_was_there() {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        let dir = tempfile::tempdir().unwrap();
        let shot = |jobs, duration_ms| Shot {
            at: "2026-11-28T00:00:00.000Z".into(),
            duration_ms,
            exit_code: 0,
            jobs,
            recovered: 0,
        };
        let long = shot(usize::MAX, u64::MAX);
        record_shot(dir.path(), &long).unwrap();
        assert_eq!(last_shot(dir.path()), Some(long));
        let path = dir.path().join(LAST_SHOT);
        let inode = fs::metadata(&path).unwrap().ino();
        // A shorter record after a longer one: the tail is blank, not stale.
        record_shot(dir.path(), &shot(0, 1)).unwrap();
        assert_eq!(last_shot(dir.path()), Some(shot(0, 1)));
        assert_eq!(fs::metadata(&path).unwrap().ino(), inode);
        // A file grown past what is read back is cut to the record.
        fs::write(&path, vec![b'x'; 2 * LAST_SHOT_LIMIT]).unwrap();
        record_shot(dir.path(), &shot(2, 1)).unwrap();
        assert_eq!(last_shot(dir.path()), Some(shot(2, 1)));
        // Anything but its own file is replaced, never written through: a
        // symlink, a FIFO (which would block), a hard link, another mode.
        let elsewhere = dir.path().join("elsewhere");
        fs::write(&elsewhere, "someone else's").unwrap();
        let odd: [&dyn Fn(); 4] = [
            &|| std::os::unix::fs::symlink(&elsewhere, &path).unwrap(),
            &|| {
                let made = std::process::Command::new("mkfifo").arg(&path).status();
                assert!(made.unwrap().success());
            },
            &|| fs::hard_link(&elsewhere, &path).unwrap(),
            &|| {
                fs::write(&path, "{}").unwrap();
                fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
            },
        ];
        // A directory there cannot be replaced: the shot is not recorded, and
        // leaves nothing behind.
        fs::remove_file(&path).unwrap();
        fs::create_dir(&path).unwrap();
        assert!(record_shot(dir.path(), &shot(0, 1)).is_err());
        let left: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert_eq!(left.len(), 2, "{left:?}"); // the directory and `elsewhere`
        fs::remove_dir(&path).unwrap();
        fs::write(&path, "").unwrap();
        for (n, make) in odd.iter().enumerate() {
            fs::remove_file(&path).unwrap();
            make();
            record_shot(dir.path(), &shot(n, 1)).unwrap();
            assert_eq!(last_shot(dir.path()), Some(shot(n, 1)), "case {n}");
            let meta = fs::symlink_metadata(&path).unwrap();
            assert!(meta.is_file() && meta.nlink() == 1, "case {n}");
            assert_eq!(meta.mode() & 0o777, 0o600, "case {n}");
            assert_eq!(fs::read_to_string(&elsewhere).unwrap(), "someone else's");
        }
    }

    /// Two shots recording at once (one found the state dir busy) leave a
    /// whole record, one or the other, never a mix.
    #[test]
    fn writers_at_once_leave_a_whole_record() {
        let dir = tempfile::tempdir().unwrap();
        let shot = |jobs| Shot {
            at: "2026-11-28T00:00:00.000Z".into(),
            duration_ms: 1,
            exit_code: 0,
            jobs,
            recovered: 0,
        };
        for _ in 0..50 {
            std::thread::scope(|s| {
                s.spawn(|| record_shot(dir.path(), &shot(usize::MAX)).unwrap());
                s.spawn(|| record_shot(dir.path(), &shot(1)).unwrap());
            });
            let last = last_shot(dir.path()).expect("a whole record");
            assert!(last.jobs == usize::MAX || last.jobs == 1);
        }
    }

    /// A history too short to be read back cannot hold too many lines.
    #[test]
    fn no_line_is_shorter_than_the_shortest_line() {
        let empty = Job {
            at: String::new(),
            id: String::new(),
            attempt: 0,
            status: String::new(),
            exit_code: None,
            duration_ms: 0,
            steps_ran: 0,
            steps_failed: 0,
            log_bytes: 0,
            delivered: false,
            error: None,
        };
        assert!(serde_json::to_vec(&empty).unwrap().len() + 1 > SHORTEST_LINE);
    }

    #[test]
    fn the_history_keeps_the_last_jobs_and_the_last_shot() {
        let dir = tempfile::tempdir().unwrap();
        for n in 0..25 {
            record_job(dir.path(), &job(n), 10).unwrap();
        }
        let kept = jobs(dir.path());
        assert!(kept.len() >= 10 && kept.len() <= 20, "{}", kept.len());
        assert_eq!(kept.last().unwrap().id, "j24");
        let shot = Shot {
            at: "2026-11-28T00:00:00.000Z".into(),
            duration_ms: 3,
            exit_code: 0,
            jobs: 0,
            recovered: 0,
        };
        record_shot(dir.path(), &shot).unwrap();
        assert_eq!(last_shot(dir.path()), Some(shot));
        record_job(dir.path(), &job(99), 0).unwrap();
        assert_eq!(
            jobs(dir.path()).last().unwrap().id,
            "j24",
            "keep 0 records nothing"
        );
    }
}
