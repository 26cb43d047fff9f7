//! A copy step: a file from the runner, or inline content, put on the node the
//! step runs on (the runner's own node too), whole or not at all.
//!
//! It runs as a node step like any other, by the same fixed `sh` script on every
//! node: the bytes go to a temporary file beside the destination, take their
//! mode there, and are renamed over it, so a reader of the destination sees the
//! old file or the new one, never half of one, and a failed copy leaves no
//! temporary file. To a node the bytes travel over the node's SSH connection
//! as a step's script does (on stdin, never in a command line); on the runner
//! they are a file in the job's workspace. The destination and mode are the
//! script's arguments, each one single-quoted word: a path from an option
//! cannot become code. A source file is read by a process confined like the
//! job's steps, so a copy can take nothing a step could not read.

use anyhow::{bail, Result};
use serde::Deserialize;

/// A copy step as a job spec writes it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Copy {
    /// The file to write on the node; ending in `/`, a directory the source's
    /// file name goes in.
    pub dest: String,
    /// The bytes to write, references expanded (secrets as their values).
    #[serde(default)]
    pub content: Option<String>,
    /// A file on the runner to copy.
    #[serde(default)]
    pub source: Option<String>,
    /// Octal permissions, `"0644"`: by default 0644, or 0600 when the content
    /// holds a secret.
    #[serde(default)]
    pub mode: Option<String>,
}

/// The most a copy puts on a node (it is held in memory on its way there).
pub const MAX_BYTES: u64 = 64 * 1024 * 1024;

/// `sh -c SCRIPT sortie SOURCE DEST MODE MAX [own]`: writes SOURCE's bytes
/// (at most MAX) to DEST; `own`: SOURCE is the step's own file, removed at
/// the end. A destination that exists must be a regular file (a link to
/// one is replaced, not followed): a device or a FIFO is never replaced.
pub const SCRIPT: &str = r#"set -u
s=$1 f=$2 m=$3 n=$4 o=${5:-} t=
cleanup() { [ -z "$t" ] || rm -f -- "$t"; [ -z "$o" ] || rm -f -- "$s"; }
trap cleanup EXIT
trap 'exit 143' HUP INT TERM
if [ -e "$f" ] && [ ! -f "$f" ]; then echo "sortie: $f exists and is not a regular file" >&2; exit 1; fi
d=$(dirname -- "$f")
if [ ! -d "$d" ]; then echo "sortie: no directory $d" >&2; exit 1; fi
t=$(mktemp -- "$d/.sortie-copy.XXXXXX") || exit 1
head -c "$((n + 1))" -- "$s" >"$t" || exit 1
if [ "$(wc -c <"$t")" -gt "$n" ]; then echo "sortie: $s holds more than $n bytes" >&2; exit 1; fi
chmod -- "$m" "$t" && mv -f -- "$t" "$f" && t= || exit 1
printf 'copied %s bytes to %s\n' "$(wc -c <"$f" | tr -d ' ')" "$f"
"#;

impl Copy {
    /// What can be checked before the job runs.
    pub fn check(&self) -> Result<()> {
        match (&self.content, &self.source) {
            (Some(_), Some(_)) => bail!("a copy has either content or source, not both"),
            (None, None) => bail!("a copy needs content or source"),
            (None, Some(s)) if s.is_empty() => bail!("source: empty path"),
            _ => {}
        }
        if self.dest.is_empty() || self.dest.contains('\0') {
            bail!("dest: needs a path");
        }
        if self.dest.ends_with('/') && self.source.is_none() {
            bail!("dest: a directory needs a source file, whose name the copy takes");
        }
        if let Some(mode) = &self.mode {
            mode_bits(mode)?;
        }
        Ok(())
    }

    /// The mode the file gets, as `chmod` takes it (`secret`: the bytes hold
    /// a secret's value).
    pub fn mode(&self, secret: bool) -> String {
        match &self.mode {
            Some(m) => format!("{:04o}", mode_bits(m).unwrap_or(0o600)),
            None if secret => "0600".into(),
            None => "0644".into(),
        }
    }
}

/// `"0644"` or `"644"`: permission bits, no more (no setuid, setgid or
/// sticky bit: a copy does not make programs that run as someone else).
fn mode_bits(text: &str) -> Result<u32> {
    let ok = (3..=4).contains(&text.len()) && text.bytes().all(|b| (b'0'..=b'7').contains(&b));
    match u32::from_str_radix(text, 8) {
        Ok(bits) if ok && bits <= 0o777 => Ok(bits),
        _ => bail!("mode: {text:?} is not permission bits such as \"0644\" (at most 0777)"),
    }
}

/// The destination, a directory given: with the source's file name; refused
/// when not absolute, or when either path holds a control character.
pub fn destination(dest: &str, source: Option<&str>) -> Result<String, String> {
    // A path is printed in the step's output, where a line break would start a
    // line of its own (a data line, say); no file worth copying has one.
    for (what, path) in [("dest", Some(dest)), ("source", source)] {
        if path.is_some_and(|p| p.chars().any(char::is_control)) {
            return Err(format!("{what} {path:?} holds a control character"));
        }
    }
    let path = match (dest.strip_suffix('/'), source) {
        (Some(dir), Some(source)) => {
            let name = std::path::Path::new(source)
                .file_name()
                .and_then(|n| n.to_str())
                .ok_or_else(|| format!("source {source:?} has no file name"))?;
            format!("{dir}/{name}")
        }
        _ => dest.to_string(),
    };
    if !path.starts_with('/') {
        return Err(format!(
            "dest {dest:?} is not an absolute path (on the runner a relative one would land in \
             the job's workspace, removed after it)"
        ));
    }
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn copy(v: serde_json::Value) -> Copy {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn a_copy_has_one_source_a_destination_and_an_octal_mode() {
        let bad = [
            json!({"dest": "/x"}),
            json!({"dest": "/x", "content": "a", "source": "/y"}),
            json!({"dest": "", "content": "a"}),
            json!({"dest": "/d/", "content": "a"}),
            json!({"dest": "/x", "content": "a", "mode": "rwx"}),
            json!({"dest": "/x", "content": "a", "mode": "0800"}),
            json!({"dest": "/x", "content": "a", "mode": "+x"}),
            json!({"dest": "/x", "content": "a", "mode": "07777"}),
            json!({"dest": "/x", "content": "a", "mode": "4755"}),
        ];
        for v in bad {
            assert!(copy(v.clone()).check().is_err(), "{v}");
        }
        let ok = copy(json!({"dest": "/x", "content": "a", "mode": "640"}));
        ok.check().unwrap();
        assert_eq!(ok.mode(true), "0640");
        let plain = copy(json!({"dest": "/x", "content": "a"}));
        assert_eq!(
            (plain.mode(false), plain.mode(true)),
            ("0644".into(), "0600".into())
        );
    }

    #[test]
    fn a_directory_destination_takes_the_source_s_name() {
        assert_eq!(
            destination("/srv/", Some("/etc/app.conf")).unwrap(),
            "/srv/app.conf"
        );
        assert_eq!(
            destination("/srv/a", Some("/etc/app.conf")).unwrap(),
            "/srv/a"
        );
        assert!(destination("/srv/", Some("/")).is_err());
        assert!(destination("srv/a", None).is_err());
        assert!(destination("srv/", Some("/etc/app.conf")).is_err());
        let broken = destination("/srv/a\nRUNDECK:DATA:v=6", None).unwrap_err();
        assert!(broken.contains("control character"), "{broken}");
        assert!(destination("/srv/", Some("/etc/a\rb")).is_err());
    }
}
