//! Result data: what steps report for later steps and follow-up workflows.
//!
//! A step reports data as `key=value` lines in the file `$SORTIE_OUTPUT`
//! (`key<<DELIM` … `DELIM` for multi-line values, as GitHub's `$GITHUB_OUTPUT`)
//! or as output lines `SORTIE:DATA:key=value` / `RUNDECK:DATA:key=value`. Sizes
//! are bounded so a runaway step cannot make the completion unsendable.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use anyhow::{bail, Result};

/// Largest value, in bytes.
pub const MAX_VALUE: usize = 64 * 1024;
/// Largest total of keys and values, in bytes.
pub const MAX_TOTAL: usize = 1024 * 1024;

/// The data a job has captured so far: the global data or one node's. The
/// sets of one job share one [`MAX_TOTAL`] (clones share it too).
#[derive(Debug, Default, Clone)]
pub struct DataSet {
    map: BTreeMap<String, String>,
    /// Keys of the map that are the job's context, not data a step reported
    /// (see [`DataSet::insert_context`]).
    context: std::collections::BTreeSet<String>,
    /// Bytes of keys and values in every set of the job.
    job_total: Arc<AtomicUsize>,
}

impl DataSet {
    /// An empty set counting against the same job total as `self`.
    pub fn sibling(&self) -> DataSet {
        DataSet {
            map: BTreeMap::new(),
            context: Default::default(),
            job_total: self.job_total.clone(),
        }
    }

    /// Everything later steps may refer to: data and context.
    pub fn map(&self) -> &BTreeMap<String, String> {
        &self.map
    }

    /// Whether `key` is of the job's context (see [`DataSet::insert_context`]).
    pub fn is_context(&self, key: &str) -> bool {
        self.context.contains(key)
    }

    /// The data steps reported (the context left out).
    pub fn into_map(self) -> BTreeMap<String, String> {
        let context = self.context;
        self.map
            .into_iter()
            .filter(|(k, _)| !context.contains(k))
            .collect()
    }

    /// Add or replace a value, within the limits.
    pub fn insert(&mut self, key: String, value: String) -> Result<()> {
        if !valid_key(&key) {
            bail!("result data key {key:?} must be 1 to 128 of [A-Za-z0-9_.-]");
        }
        self.context.remove(&key);
        self.put(key, value)
    }

    /// Add or replace a value of the job's context that steps may refer to
    /// but did not report: Rundeck's `exec.exitCode`, and `N:key` for what
    /// step N set. Not part of the job's result data.
    pub fn insert_context(&mut self, key: String, value: String) -> Result<()> {
        self.context.insert(key.clone());
        self.put(key, value)
    }

    fn put(&mut self, key: String, value: String) -> Result<()> {
        if value.len() > MAX_VALUE {
            bail!(
                "result data {key}: the value is {} bytes, over the limit of {MAX_VALUE}",
                value.len()
            );
        }
        let old = self.map.get(&key).map_or(0, |v| key.len() + v.len());
        let new = key.len() + value.len();
        let total = self.job_total.load(Ordering::Relaxed);
        if total.saturating_sub(old) + new > MAX_TOTAL {
            bail!("result data {key}: the job's data would exceed {MAX_TOTAL} bytes");
        }
        self.job_total.fetch_add(new, Ordering::Relaxed);
        self.job_total.fetch_sub(old.min(total), Ordering::Relaxed);
        self.map.insert(key, value);
        Ok(())
    }
}

/// A result data key: 1 to 128 of `[A-Za-z0-9_.-]`.
pub fn valid_key(key: &str) -> bool {
    (1..=128).contains(&key.len())
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.' || b == b'-')
}

/// Output line prefixes that carry result data.
const PREFIXES: [&str; 2] = ["SORTIE:DATA:", "RUNDECK:DATA:"];

/// Whether an output line (or its first piece) carries result data.
pub fn is_data_line(line: &[u8]) -> bool {
    PREFIXES.iter().any(|p| line.starts_with(p.as_bytes()))
}

/// `SORTIE:DATA:k=v` or `RUNDECK:DATA:k=v` on an output line.
pub fn parse_line(line: &[u8]) -> Option<(String, String)> {
    let line = std::str::from_utf8(line).ok()?;
    let line = line.strip_suffix('\n').unwrap_or(line);
    let line = line.strip_suffix('\r').unwrap_or(line);
    let rest = PREFIXES.iter().find_map(|p| line.strip_prefix(p))?;
    let (k, v) = rest.split_once('=')?;
    Some((k.trim().to_string(), v.to_string()))
}

/// The `$SORTIE_OUTPUT` file's `key=value` and `key<<DELIM` entries.
pub fn parse_file(bytes: &[u8]) -> Result<Vec<(String, String)>> {
    let Ok(text) = std::str::from_utf8(bytes) else {
        bail!("$SORTIE_OUTPUT is not UTF-8");
    };
    let mut out = Vec::new();
    let mut lines = text.lines().enumerate();
    while let Some((n, line)) = lines.next() {
        if line.trim().is_empty() {
            continue;
        }
        if let Some((key, delim)) = line.split_once("<<") {
            if !key.contains('=') {
                if delim.is_empty() {
                    bail!("$SORTIE_OUTPUT line {}: empty delimiter", n + 1);
                }
                let mut value: Vec<&str> = Vec::new();
                let mut closed = false;
                for (_, l) in lines.by_ref() {
                    if l == delim {
                        closed = true;
                        break;
                    }
                    value.push(l);
                }
                if !closed {
                    bail!("$SORTIE_OUTPUT line {}: no closing {delim:?}", n + 1);
                }
                out.push((key.trim().to_string(), value.join("\n")));
                continue;
            }
        }
        match line.split_once('=') {
            Some((k, v)) => out.push((k.trim().to_string(), v.to_string())),
            None => bail!(
                "$SORTIE_OUTPUT line {}: expected key=value or key<<DELIM",
                n + 1
            ),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_lines_carry_data() {
        assert_eq!(
            parse_line(b"SORTIE:DATA:a=b=c\n"),
            Some(("a".into(), "b=c".into()))
        );
        assert_eq!(
            parse_line(b"RUNDECK:DATA:k=v\r\n"),
            Some(("k".into(), "v".into()))
        );
        assert_eq!(parse_line(b"say SORTIE:DATA:a=b\n"), None);
    }

    #[test]
    fn the_output_file_takes_single_and_multi_line_values() {
        let got = parse_file(b"a=1\n\nmsg<<EOF\nline 1\nline=2\nEOF\nb= x \n").unwrap();
        assert_eq!(
            got,
            vec![
                ("a".into(), "1".into()),
                ("msg".into(), "line 1\nline=2".into()),
                ("b".into(), " x ".into())
            ]
        );
        assert!(parse_file(b"novalue\n").is_err());
        assert!(parse_file(b"m<<END\nnever closed\n").is_err());
    }

    #[test]
    fn limits_are_enforced() {
        let mut d = DataSet::default();
        assert!(d.insert("ok".into(), "v".into()).is_ok());
        assert!(d.insert("bad key".into(), "v".into()).is_err());
        assert!(d.insert("big".into(), "x".repeat(MAX_VALUE + 1)).is_err());
        for i in 0..15 {
            d.insert(format!("k{i}"), "x".repeat(MAX_VALUE)).unwrap();
        }
        assert!(d.insert("last".into(), "x".repeat(MAX_VALUE)).is_err());
    }
}
