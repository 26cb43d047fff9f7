//! Letting one user pass through a directory, by a POSIX ACL entry.
//!
//! Steps run as another user (`--run-as`) have their workspaces in the state
//! dir, which is sortie's and closed to everyone else. Mode bits could only
//! open it to every user (0711), and then any local user could pass on to a
//! workspace whose modes a job's steps had loosened (Landlock does not guard
//! chmod): an entry `user:UID:--x` opens the way to that user alone. The
//! entry is merged into what ACL the directory has; its mode bits for owner,
//! group and others stay as they were.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::Path;

const NAME: &std::ffi::CStr = c"system.posix_acl_access";
const VERSION: u32 = 2;
const USER_OBJ: u16 = 0x01;
const USER: u16 = 0x02;
const GROUP_OBJ: u16 = 0x04;
const MASK: u16 = 0x10;
const OTHER: u16 = 0x20;
const UNDEFINED_ID: u32 = u32::MAX;
const SEARCH: u16 = 0o1;

/// One ACL entry, as the kernel's xattr stores it: tag, permissions, id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Entry {
    tag: u16,
    id: u32,
    perm: u16,
}

/// Let `uid` pass through the directory at `path` (search, not list), which
/// must be sortie's own. The directory is opened without following a symlink
/// in its place, and changed through that descriptor only. Fails with
/// `Unsupported` where its filesystem has no POSIX ACLs.
pub fn let_pass(path: &Path, uid: u32) -> io::Result<()> {
    let dir = File::options()
        .read(true)
        .custom_flags(libc::O_DIRECTORY | libc::O_NOFOLLOW)
        .open(path)?;
    let meta = dir.metadata()?;
    if meta.uid() != super::uid() {
        return Err(io::Error::other(format!(
            "{} belongs to uid {}, not to sortie's user",
            path.display(),
            meta.uid()
        )));
    }
    let mut entries = match read(&dir)? {
        Some(entries) => entries,
        None => from_mode(meta.mode()),
    };
    entries.retain(|e| !(e.tag == USER && e.id == uid));
    entries.push(Entry {
        tag: USER,
        id: uid,
        perm: SEARCH,
    });
    // A named entry counts only as far as the mask lets it.
    let group = entries
        .iter()
        .find(|e| e.tag == GROUP_OBJ)
        .map_or(0, |e| e.perm);
    match entries.iter_mut().find(|e| e.tag == MASK) {
        Some(mask) => mask.perm |= SEARCH,
        None => entries.push(Entry {
            tag: MASK,
            id: UNDEFINED_ID,
            perm: group | SEARCH,
        }),
    }
    entries.sort();
    write(&dir, &entries)
}

/// The three entries equivalent to `mode`.
fn from_mode(mode: u32) -> Vec<Entry> {
    let perm = |shift: u32| ((mode >> shift) & 0o7) as u16;
    vec![
        Entry {
            tag: USER_OBJ,
            id: UNDEFINED_ID,
            perm: perm(6),
        },
        Entry {
            tag: GROUP_OBJ,
            id: UNDEFINED_ID,
            perm: perm(3),
        },
        Entry {
            tag: OTHER,
            id: UNDEFINED_ID,
            perm: perm(0),
        },
    ]
}

fn unsupported(e: io::Error) -> io::Error {
    if e.raw_os_error() == Some(libc::EOPNOTSUPP) {
        io::Error::new(
            io::ErrorKind::Unsupported,
            "its filesystem has no POSIX ACLs",
        )
    } else {
        e
    }
}

/// The directory's access ACL, `None` when it has none beyond its mode.
fn read(dir: &File) -> io::Result<Option<Vec<Entry>>> {
    let mut buf = vec![0u8; 4 + 8 * 64];
    // SAFETY: fgetxattr on an open descriptor, a NUL-terminated name, and a
    // buffer of the length given.
    let n = unsafe {
        libc::fgetxattr(
            dir.as_raw_fd(),
            NAME.as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    if n < 0 {
        let e = io::Error::last_os_error();
        return match e.raw_os_error() {
            Some(libc::ENODATA) => Ok(None),
            _ => Err(unsupported(e)),
        };
    }
    let buf = &buf[..n as usize];
    let version = buf
        .get(..4)
        .map(|v| u32::from_le_bytes(v.try_into().expect("4")));
    if version != Some(VERSION) || !(buf.len() - 4).is_multiple_of(8) {
        return Err(io::Error::other(
            "the directory's ACL is in an unknown format",
        ));
    }
    Ok(Some(
        buf[4..]
            .chunks_exact(8)
            .map(|e| Entry {
                tag: u16::from_le_bytes([e[0], e[1]]),
                perm: u16::from_le_bytes([e[2], e[3]]),
                id: u32::from_le_bytes([e[4], e[5], e[6], e[7]]),
            })
            .collect(),
    ))
}

fn write(dir: &File, entries: &[Entry]) -> io::Result<()> {
    let mut buf = VERSION.to_le_bytes().to_vec();
    for e in entries {
        buf.extend_from_slice(&e.tag.to_le_bytes());
        buf.extend_from_slice(&e.perm.to_le_bytes());
        buf.extend_from_slice(&e.id.to_le_bytes());
    }
    // SAFETY: fsetxattr on an open descriptor, a NUL-terminated name, and a
    // value of the length given.
    let rc = unsafe {
        libc::fsetxattr(
            dir.as_raw_fd(),
            NAME.as_ptr(),
            buf.as_ptr().cast(),
            buf.len(),
            0,
        )
    };
    if rc != 0 {
        return Err(unsupported(io::Error::last_os_error()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::os::{FsIdentity, User};
    use std::os::unix::fs::PermissionsExt;

    fn user(uid: u32) -> User {
        User {
            name: format!("u{uid}"),
            uid,
            gid: uid,
            groups: vec![uid],
            home: "/".into(),
        }
    }

    fn passes(uid: u32, dir: &Path) -> bool {
        let _as = FsIdentity::assume(&user(uid)).unwrap();
        std::fs::metadata(dir.join(".")).is_ok()
    }

    /// One user may pass, no other; the directory stays unlistable to it and
    /// its mode bits say what they said, for owner and others.
    #[test]
    fn one_user_passes_and_no_other() {
        if crate::os::uid() != 0 {
            return; // only root may take other users' identities
        }
        let top = tempfile::tempdir().unwrap();
        let dir = top.path().join("state");
        std::fs::create_dir(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
        std::fs::create_dir(dir.join("work")).unwrap();
        assert!(!passes(54321, &dir.join("work")));
        let_pass(&dir, 54321).unwrap();
        let_pass(&dir, 54321).unwrap(); // again: one entry, not two
        assert!(passes(54321, &dir.join("work")));
        assert!(!passes(54322, &dir.join("work")));
        let listed = {
            let _as = FsIdentity::assume(&user(54321)).unwrap();
            std::fs::read_dir(&dir).is_ok()
        };
        assert!(!listed, "passing is not listing");
        let mode = std::fs::metadata(&dir).unwrap().permissions().mode() & 0o707;
        assert_eq!(mode, 0o700, "owner and others as they were");
        let file = File::open(&dir).unwrap();
        let named: Vec<Entry> = read(&file)
            .unwrap()
            .unwrap()
            .into_iter()
            .filter(|e| e.tag == USER)
            .collect();
        assert_eq!(named.len(), 1, "{named:?}");
        // A second user joins the first: the ACL is merged, not replaced.
        let_pass(&dir, 54323).unwrap();
        assert!(passes(54321, &dir.join("work")) && passes(54323, &dir.join("work")));
    }

    /// A symlink in the directory's place is not followed: its target is
    /// not opened to anyone.
    #[test]
    fn a_symlink_in_its_place_is_refused() {
        if crate::os::uid() != 0 {
            return;
        }
        let top = tempfile::tempdir().unwrap();
        let target = top.path().join("target");
        std::fs::create_dir(&target).unwrap();
        std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o700)).unwrap();
        std::os::unix::fs::symlink(&target, top.path().join("work")).unwrap();
        assert!(let_pass(&top.path().join("work"), 54321).is_err());
        assert!(!passes(54321, &target));
        assert_eq!(read(&File::open(&target).unwrap()).unwrap(), None);
    }
}
