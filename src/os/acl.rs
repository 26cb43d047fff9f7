//! Letting one user, and no one else, pass through a directory, by a POSIX ACL.
//!
//! Steps run as another user (`--run-as`) have their workspaces in the state
//! dir, which is sortie's and closed to everyone else. Mode bits could only
//! open it to every user (0711), and then any local user could pass on to a
//! workspace whose modes a job's steps had loosened (Landlock does not guard
//! chmod). The directory's ACL is set whole instead: its owner's bits, one
//! entry `user:UID:--x`, and nothing for its group and others. An entry it
//! had before would come back to life under the mask that entry needs, so
//! none is kept, and the default ACL (what new entries inherit) goes too.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

const ACCESS: &std::ffi::CStr = c"system.posix_acl_access";
const DEFAULT: &std::ffi::CStr = c"system.posix_acl_default";
const VERSION: u32 = 2;
const USER_OBJ: u16 = 0x01;
const USER: u16 = 0x02;
const GROUP_OBJ: u16 = 0x04;
const GROUP: u16 = 0x08;
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

/// Let `uid` alone pass through the directory at `path` (search, not list),
/// which must be sortie's own; with `None`, take back the passage it gave
/// (an ACL of that shape is removed, the owner's bits stay). The directory is
/// opened without following a symlink in its place and changed through that
/// descriptor only. Fails with `Unsupported` where its filesystem has no
/// POSIX ACLs.
pub fn passage(path: &Path, uid: Option<u32>) -> io::Result<()> {
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
    let owner = ((meta.mode() >> 6) & 0o7) as u16;
    let Some(uid) = uid else {
        // Named entries, and only the passage's: sortie's own ACL.
        let given = read(&dir)?.is_some_and(|entries| {
            let named: Vec<&Entry> = entries
                .iter()
                .filter(|e| matches!(e.tag, USER | GROUP))
                .collect();
            !named.is_empty() && named.iter().all(|e| **e == passer(e.id))
        });
        if given {
            remove(&dir, ACCESS)?;
            dir.set_permissions(std::fs::Permissions::from_mode(meta.mode() & 0o700))?;
        }
        return Ok(());
    };
    let entry = |tag, perm| Entry {
        tag,
        id: UNDEFINED_ID,
        perm,
    };
    write(
        &dir,
        ACCESS,
        &[
            entry(USER_OBJ, owner),
            passer(uid),
            entry(GROUP_OBJ, 0),
            entry(MASK, SEARCH),
            entry(OTHER, 0),
        ],
    )?;
    remove(&dir, DEFAULT)
}

/// The entry that lets `uid` pass.
fn passer(uid: u32) -> Entry {
    Entry {
        tag: USER,
        id: uid,
        perm: SEARCH,
    }
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
    // SAFETY (both calls): fgetxattr on an open descriptor, a NUL-terminated
    // name, and a buffer of the length given (none, to ask for the size).
    let size =
        unsafe { libc::fgetxattr(dir.as_raw_fd(), ACCESS.as_ptr(), std::ptr::null_mut(), 0) };
    if size < 0 {
        let e = io::Error::last_os_error();
        return match e.raw_os_error() {
            Some(libc::ENODATA) => Ok(None),
            _ => Err(unsupported(e)),
        };
    }
    let mut buf = vec![0u8; size as usize];
    let n = unsafe {
        libc::fgetxattr(
            dir.as_raw_fd(),
            ACCESS.as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    if n < 0 {
        return Err(unsupported(io::Error::last_os_error()));
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

fn write(dir: &File, name: &std::ffi::CStr, entries: &[Entry]) -> io::Result<()> {
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
            name.as_ptr(),
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

/// Remove the ACL `name`; that there was none is fine.
fn remove(dir: &File, name: &std::ffi::CStr) -> io::Result<()> {
    // SAFETY: fremovexattr on an open descriptor and a NUL-terminated name.
    let rc = unsafe { libc::fremovexattr(dir.as_raw_fd(), name.as_ptr()) };
    if rc != 0 {
        let e = io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::ENODATA) {
            return Err(unsupported(e));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::os::{FsIdentity, User};

    fn user(uid: u32, groups: &[u32]) -> User {
        User {
            name: format!("u{uid}"),
            uid,
            gid: uid,
            groups: groups.to_vec(),
            home: "/".into(),
        }
    }

    fn passes(user: &User, dir: &Path) -> bool {
        let _as = FsIdentity::assume(user).unwrap();
        std::fs::metadata(dir.join(".")).is_ok()
    }

    /// A private directory (0700) in a place every user may pass, with `work/` in it.
    fn state() -> (tempfile::TempDir, std::path::PathBuf) {
        let top = tempfile::tempdir().unwrap();
        let dir = top.path().join("state");
        std::fs::create_dir(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
        std::fs::create_dir(dir.join("work")).unwrap();
        (top, dir)
    }

    /// One user may pass, no other; the directory stays unlistable to it; a
    /// second user replaces the first; `None` takes the passage back.
    #[test]
    fn one_user_passes_and_no_other() {
        if crate::os::uid() != 0 {
            return; // only root may take other users' identities
        }
        let (_top, dir) = state();
        let (one, two) = (user(54321, &[54321]), user(54322, &[54322]));
        let work = dir.join("work");
        assert!(!passes(&one, &work));
        passage(&dir, Some(one.uid)).unwrap();
        assert!(passes(&one, &work) && !passes(&two, &work));
        let listed = {
            let _as = FsIdentity::assume(&one).unwrap();
            std::fs::read_dir(&dir).is_ok()
        };
        assert!(!listed, "passing is not listing");
        let mode = std::fs::metadata(&dir).unwrap().permissions().mode() & 0o707;
        assert_eq!(mode, 0o700, "owner and others as they were");
        passage(&dir, Some(two.uid)).unwrap();
        assert!(
            passes(&two, &work) && !passes(&one, &work),
            "replaced, not added"
        );
        passage(&dir, None).unwrap();
        assert!(!passes(&two, &work));
        assert_eq!(read(&File::open(&dir).unwrap()).unwrap(), None);
        let mode = std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
    }

    /// Entries the directory had, masked off or inherited, do not come back
    /// to life, and what its new entries would inherit goes; an ACL that is
    /// not sortie's stays when the passage is taken back.
    #[test]
    fn no_other_entry_passes_with_the_user() {
        if crate::os::uid() != 0 {
            return;
        }
        let (_top, dir) = state();
        let file = File::open(&dir).unwrap();
        let entry = |tag, id, perm| Entry { tag, id, perm };
        let group = [
            entry(USER_OBJ, UNDEFINED_ID, 0o7),
            entry(GROUP_OBJ, UNDEFINED_ID, 0o5),
            entry(GROUP, 54330, 0o7),
            entry(MASK, UNDEFINED_ID, 0),
            entry(OTHER, UNDEFINED_ID, 0),
        ];
        write(&file, ACCESS, &group).unwrap();
        write(&file, DEFAULT, &group).unwrap();
        let member = user(54331, &[54330]);
        passage(&dir, Some(54321)).unwrap();
        assert!(!passes(&member, &dir.join("work")));
        std::fs::create_dir(dir.join("new")).unwrap();
        assert_eq!(read(&File::open(dir.join("new")).unwrap()).unwrap(), None);
        // Someone else's ACL is left alone.
        write(&file, ACCESS, &group).unwrap();
        passage(&dir, None).unwrap();
        assert_eq!(read(&file).unwrap().unwrap().len(), group.len());
    }

    /// A symlink in the directory's place is not followed: its target is
    /// not opened to anyone.
    #[test]
    fn a_symlink_in_its_place_is_refused() {
        if crate::os::uid() != 0 {
            return;
        }
        let (top, dir) = state();
        std::os::unix::fs::symlink(&dir, top.path().join("link")).unwrap();
        assert!(passage(&top.path().join("link"), Some(54321)).is_err());
        assert!(!passes(&user(54321, &[54321]), &dir.join("work")));
        assert_eq!(read(&File::open(&dir).unwrap()).unwrap(), None);
    }
}
