//! The way to a directory, walked as the kernel walks it: name by name from
//! `/`, every symlink read and its target walked the same (so a link reached
//! inside another link's target is seen too), `..` taken after the link
//! before it was resolved.
//!
//! Whoever may change a step on that way may send a later open of the path
//! elsewhere: a directory's owner and writers (but in a sticky directory,
//! where only an entry's owner may move it), and a link's owner. So each step
//! is judged before the path is used, by the caller, for the party it fears:
//! the state dir against every user but root and sortie's own ([`ours`]), a
//! `--run-as` user's way to its workspaces against that user
//! (`StateDir::work_dir_for`).

use std::fs::Metadata;
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};

/// The kernel's limit on the links one path may go through.
const MOST_LINKS: u32 = 40;

/// One step of a way: a directory, the last name, or a link on it.
pub struct Step<'a> {
    pub path: &'a Path,
    /// Not followed: a link's own.
    pub meta: &'a Metadata,
    /// Whether the walk goes into it (every directory but the last, and the
    /// last when the caller asked).
    pub passed: bool,
}

/// What judges each step: `Err` says why the way is refused.
pub type Judge<'a> = dyn FnMut(&Step<'_>) -> Result<(), String> + 'a;

/// `dir` (absolute) resolved, every step on the way judged, `/` first; the
/// last is passed when `last` is. Every step must exist.
pub fn walk(dir: &Path, last: bool, judge: &mut Judge<'_>) -> Result<PathBuf, String> {
    way(dir, last, false, &mut 0, judge).map_err(|refused| match refused {
        Refused::Why(why) => why,
        Refused::Missing(dir) => format!("cannot reach {}", dir.display()),
    })
}

/// As [`walk`], for a directory sortie is about to make with what is
/// missing of its way: `Err(Missing(dir))` names the first directory that is
/// not there yet (its way judged), for the caller to make and walk again, so
/// that what it makes, or finds made meanwhile, is judged too.
pub fn walk_to_make(dir: &Path, judge: &mut Judge<'_>) -> Result<PathBuf, Refused> {
    way(dir, true, true, &mut 0, judge)
}

/// Why [`walk_to_make`] did not reach its end.
#[derive(Debug)]
pub enum Refused {
    /// This directory is not there yet; its way is sound.
    Missing(PathBuf),
    Why(String),
}

impl From<String> for Refused {
    fn from(why: String) -> Refused {
        Refused::Why(why)
    }
}

/// A link's target: every step of it must exist.
fn walk_from(
    dir: &Path,
    last: bool,
    links: &mut u32,
    judge: &mut Judge<'_>,
) -> Result<PathBuf, Refused> {
    way(dir, last, false, links, judge).map_err(|refused| match refused {
        Refused::Missing(dir) => Refused::Why(format!("cannot reach {}", dir.display())),
        why => why,
    })
}

fn way(
    dir: &Path,
    last: bool,
    missing_ok: bool,
    links: &mut u32,
    judge: &mut Judge<'_>,
) -> Result<PathBuf, Refused> {
    let mut at = PathBuf::from("/");
    let top = std::fs::symlink_metadata(&at).map_err(|e| format!("/: {e}"))?;
    judge(&Step {
        path: &at,
        meta: &top,
        passed: true,
    })?;
    let mut components = dir.components().peekable();
    while let Some(component) = components.next() {
        let name = match component {
            Component::Normal(name) => name,
            Component::ParentDir => {
                at.pop();
                continue;
            }
            _ => continue,
        };
        let pass = last || components.peek().is_some();
        let next = at.join(name);
        let meta = match std::fs::symlink_metadata(&next) {
            Ok(meta) => meta,
            Err(e) if missing_ok && e.kind() == std::io::ErrorKind::NotFound => {
                if components.any(|c| c == Component::ParentDir) {
                    let why = format!("{}: `..` after a name not made yet", dir.display());
                    return Err(why.into());
                }
                return Err(Refused::Missing(next));
            }
            Err(e) => return Err(format!("cannot reach {}: {e}", next.display()).into()),
        };
        judge(&Step {
            path: &next,
            meta: &meta,
            passed: pass,
        })?;
        if meta.is_symlink() {
            *links += 1;
            let target = std::fs::read_link(&next)
                .ok()
                .filter(|_| *links <= MOST_LINKS)
                .ok_or_else(|| format!("{}: too many links", next.display()))?;
            at = walk_from(&at.join(target), pass, links, judge)?;
            continue;
        }
        at = next;
    }
    Ok(at)
}

/// Whether no one but root and sortie's own user (`uid`, in `groups`) may
/// change `step`: its owner is one of them, and, unless it is a link or a
/// sticky directory, neither every user, nor a group sortie is not in, nor a
/// user or group an ACL names may write it.
pub fn ours(step: &Step<'_>, uid: u32, groups: &[u32]) -> Result<(), String> {
    let (path, meta) = (step.path.display(), step.meta);
    if meta.uid() != 0 && meta.uid() != uid {
        return Err(format!(
            "{path} belongs to uid {}, who could put another directory in sortie's way",
            meta.uid()
        ));
    }
    if meta.is_symlink() || meta.mode() & 0o1000 != 0 || meta.mode() & 0o022 == 0 {
        return Ok(());
    }
    if meta.mode() & 0o002 != 0 {
        return Err(format!(
            "{path} may be changed by every user, who could put another directory in \
             sortie's way: make it 0755 (or sticky, 1777), or give another path"
        ));
    }
    if !groups.contains(&meta.gid()) {
        return Err(format!(
            "{path} may be changed by group {}, which sortie is not in",
            meta.gid()
        ));
    }
    if crate::os::has_acl(step.path) {
        return Err(format!("{path} may be changed by the users its ACL names"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolved(dir: &Path, last: bool) -> Result<PathBuf, String> {
        walk(dir, last, &mut |_| Ok(()))
    }

    /// Links are followed where they are, each one's target from the
    /// directory it is in, `..` after them as the kernel takes it.
    #[test]
    fn the_way_ends_where_the_kernel_s_does() {
        let top = tempfile::tempdir().unwrap();
        let top = top.path().canonicalize().unwrap();
        std::fs::create_dir_all(top.join("a/b/c")).unwrap();
        std::os::unix::fs::symlink("a/b", top.join("ab")).unwrap();
        std::os::unix::fs::symlink("../ab/c", top.join("a/up")).unwrap();
        for path in ["ab/c", "a/up", "a/up/..", "ab/../b/c/../c", "a/up/../../up"] {
            let path = top.join(path);
            let kernel = path.canonicalize().unwrap();
            assert_eq!(resolved(&path, true).unwrap(), kernel, "{}", path.display());
        }
        let missing = walk_to_make(&top.join("ab/new/deeper"), &mut |_| Ok(()));
        assert!(matches!(missing, Err(Refused::Missing(d)) if d == top.join("a/b/new")));
        let dotdot = walk_to_make(&top.join("ab/new/.."), &mut |_| Ok(()));
        assert!(matches!(dotdot, Err(Refused::Why(_))));
        assert!(resolved(&top.join("ab/new"), true).is_err());
    }

    /// A loop of links ends with an error, as the kernel's does.
    #[test]
    fn a_loop_of_links_is_refused() {
        let top = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink("y", top.path().join("x")).unwrap();
        std::os::unix::fs::symlink("x", top.path().join("y")).unwrap();
        let why = resolved(&top.path().join("x/z"), true).unwrap_err();
        assert!(why.contains("too many links"), "{why}");
    }

    /// Every step is judged, the link and its target's way too.
    #[test]
    fn every_step_is_judged() {
        let top = tempfile::tempdir().unwrap();
        let top = top.path().canonicalize().unwrap();
        std::fs::create_dir_all(top.join("a/b")).unwrap();
        std::os::unix::fs::symlink(top.join("a"), top.join("l")).unwrap();
        let mut seen = Vec::new();
        walk(&top.join("l/b"), false, &mut |step| {
            seen.push((step.path.to_path_buf(), step.passed));
            Ok(())
        })
        .unwrap();
        assert!(seen.contains(&(top.join("l"), true)));
        assert!(seen.contains(&(top.join("a"), true)));
        assert_eq!(seen.last(), Some(&(top.join("a/b"), false)));
        let why = walk(&top.join("l/b"), true, &mut |step| {
            if step.path == top.join("a") {
                return Err("refused".into());
            }
            Ok(())
        })
        .unwrap_err();
        assert_eq!(why, "refused");
    }
}
