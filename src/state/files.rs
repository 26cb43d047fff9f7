//! Creating and reading files without trusting what is already on disk.
//!
//! sortie may run as root in directories another user can write to (a spool on
//! a shared volume, a workspace whose steps run as `--run-as`, a state dir with
//! a careless umask). So every file it creates gets an explicit mode and is
//! created with `O_EXCL|O_NOFOLLOW` (a planted symlink or file makes the create
//! fail instead of being followed or truncated); every directory gets an
//! explicit mode and is checked to be a real directory; and every file it reads
//! that something else could have written is opened with `O_NOFOLLOW|O_NONBLOCK`
//! (no symlink, and a FIFO cannot block the shot), checked to be a regular file
//! and read only up to a size limit.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// Mode of the directories sortie keeps to itself.
pub const PRIVATE_DIR: u32 = 0o700;
/// Mode of the files sortie keeps to itself.
pub const PRIVATE_FILE: u32 = 0o600;

/// Create `path` (and missing parents) with `mode`, or accept it if it is already
/// a directory that is not a symlink and not writable by others.
pub fn ensure_dir(path: &Path, mode: u32) -> io::Result<()> {
    match fs::DirBuilder::new()
        .recursive(true)
        .mode(mode)
        .create(path)
    {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e),
    }
    let meta = fs::symlink_metadata(path)?;
    if !meta.file_type().is_dir() {
        return Err(io::Error::other(format!(
            "{} is not a directory (a symlink or a file is in its place)",
            path.display()
        )));
    }
    if meta.mode() & 0o002 != 0 && meta.mode() & 0o1000 == 0 {
        return Err(io::Error::other(format!(
            "{} is writable by every user: make it 0700 (or give another path)",
            path.display()
        )));
    }
    Ok(())
}

/// Create a new file with `mode`; fails if anything (a file, a symlink) is there.
pub fn create_new(path: &Path, mode: u32) -> io::Result<File> {
    let file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)?;
    // The umask may have taken bits away; the mode is what was asked, no more.
    file.set_permissions(fs::Permissions::from_mode(mode))?;
    Ok(file)
}

/// Remove whatever is at `path` (a file or a symlink, never followed), then create
/// a new file with `mode`.
pub fn replace(path: &Path, mode: u32) -> io::Result<File> {
    match fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    create_new(path, mode)
}

/// Open an existing regular file for reading, without following a symlink and
/// without blocking on a FIFO.
pub fn open_regular(path: &Path) -> io::Result<File> {
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| {
            if e.raw_os_error() == Some(libc::ELOOP) {
                io::Error::other(format!("{} is a symlink", path.display()))
            } else {
                e
            }
        })?;
    let kind = file.metadata()?.file_type();
    if !kind.is_file() {
        return Err(io::Error::other(format!(
            "{} is not a regular file",
            path.display()
        )));
    }
    Ok(file)
}

/// Read a regular file of at most `limit` bytes (see [`open_regular`]).
pub fn read_regular(path: &Path, limit: u64) -> io::Result<Vec<u8>> {
    let file = open_regular(path)?;
    let mut bytes = Vec::new();
    file.take(limit + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(io::Error::other(format!(
            "{} is larger than {limit} bytes",
            path.display()
        )));
    }
    Ok(bytes)
}

/// Write a file so that it is either whole or absent: a new temp file beside it,
/// fsync, rename over `path`, fsync the directory.
pub fn write_durably(path: &Path, bytes: &[u8], mode: u32) -> io::Result<()> {
    let dir = path
        .parent()
        .ok_or_else(|| io::Error::other("a file path has a directory"))?;
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let tmp = dir.join(format!(".{name}.tmp-{}", crate::ids::short()));
    let written = create_new(&tmp, mode).and_then(|mut file| {
        file.write_all(bytes)?;
        file.sync_all()?;
        fs::rename(&tmp, path)?;
        File::open(dir)?.sync_all()
    });
    if written.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    written
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn planted_symlinks_are_neither_followed_nor_truncated() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        fs::write(&victim, b"precious").unwrap();
        let planted = dir.path().join("planted");
        std::os::unix::fs::symlink(&victim, &planted).unwrap();
        assert!(create_new(&planted, PRIVATE_FILE).is_err());
        assert!(open_regular(&planted).is_err());
        replace(&planted, PRIVATE_FILE)
            .unwrap()
            .write_all(b"new")
            .unwrap();
        assert_eq!(fs::read(&victim).unwrap(), b"precious");
        assert_eq!(fs::read(&planted).unwrap(), b"new");
    }

    #[test]
    fn modes_are_explicit_whatever_the_umask() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f");
        create_new(&file, PRIVATE_FILE).unwrap();
        assert_eq!(fs::metadata(&file).unwrap().mode() & 0o777, 0o600);
        write_durably(&dir.path().join("d"), b"x", PRIVATE_FILE).unwrap();
        assert_eq!(
            fs::metadata(dir.path().join("d")).unwrap().mode() & 0o777,
            0o600
        );
    }

    #[test]
    fn fifos_and_large_files_are_refused_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        let status = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(status.success());
        let err = read_regular(&fifo, 10).unwrap_err().to_string();
        assert!(err.contains("not a regular file"), "{err}");
        let big = dir.path().join("big");
        fs::write(&big, vec![b'x'; 11]).unwrap();
        assert!(read_regular(&big, 10).is_err());
        assert_eq!(read_regular(&big, 11).unwrap().len(), 11);
    }

    #[test]
    fn a_world_writable_directory_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let open = dir.path().join("open");
        fs::create_dir(&open).unwrap();
        fs::set_permissions(&open, fs::Permissions::from_mode(0o777)).unwrap();
        assert!(ensure_dir(&open, PRIVATE_DIR).is_err());
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(dir.path(), &link).unwrap();
        assert!(ensure_dir(&link, PRIVATE_DIR).is_err());
        ensure_dir(&dir.path().join("a/b"), PRIVATE_DIR).unwrap();
        assert_eq!(
            fs::metadata(dir.path().join("a/b")).unwrap().mode() & 0o777,
            0o700
        );
    }
}
