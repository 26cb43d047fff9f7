//! Reads Rundeck job definitions, YAML and XML, into one typed model.
//!
//! Teams keep their Rundeck jobs as exports: a YAML list of jobs or an XML
//! `<joblist>`, sometimes in forms Rundeck has long deprecated but still
//! imports. To run such jobs unchanged, a reader must mean by every field
//! what Rundeck means, quirks included. So this crate follows Rundeck's own
//! import path rather than the documentation alone:
//!
//! 1. the file is loaded as Rundeck loads it (`yaml.rs`: SnakeYAML's YAML 1.1
//!    typing; `xml.rs`: Groovy `XmlParser` flattening, all values strings);
//! 2. XML gets the rewrites of `JobsXMLCodec` (`xml_codec.rs`), after which
//!    both formats are the same "canonical job map";
//! 3. that map becomes a [`Job`] as `ScheduledExecution.fromMap` and the
//!    step and option classes read it (`job.rs`, `options.rs`, `nodes.rs`,
//!    `workflow.rs`).
//!
//! Whatever the reader does not understand is kept as a path in
//! [`Job::unknown`], never dropped; readings that may surprise an author are
//! in [`Job::warnings`]. A file Rundeck would refuse is an error naming the
//! file, the job and the field ([`ParseError`]).
//!
//! ```text
//! let jobs = rundeck::parse(
//!     "hello.yaml",
//!     b"- name: hello\n  sequence:\n    commands:\n    - exec: echo hi\n",
//! ).unwrap();
//! assert_eq!(jobs[0].workflow.steps[0].kind_name(), "exec");
//! assert!(jobs[0].nodes.is_none()); // no filter: runs on the server
//! ```

mod ansible;
mod context;
pub mod convert;
mod duration;
mod error;
mod job;
pub mod model;
mod nodes;
mod options;
#[cfg(test)]
mod tests;
mod value;
mod workflow;
mod xml;
mod xml_codec;
mod yaml;

pub use error::ParseError;
#[cfg(test)]
pub use model::{ConfigValue, RankOrder, RetryCount, Step, StepKind};
pub use model::{Job, SourceFormat};

use value::Value;

/// Whether a job file is a Rundeck job (YAML or XML) rather than a sortie job
/// spec (a JSON object).
pub fn is_rundeck(bytes: &[u8]) -> bool {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    bytes
        .iter()
        .find(|b| !b.is_ascii_whitespace())
        .is_some_and(|b| *b != b'{')
}

/// The job of a Rundeck file named `wanted` (its name, group/name or uuid),
/// or its only job.
pub fn select(jobs: Vec<Job>, wanted: Option<&str>) -> anyhow::Result<Job> {
    // Named in errors: at most a few, the list of a huge file is not useful.
    let count = jobs.len();
    let mut names: Vec<String> = jobs.iter().take(10).map(Job::full_name).collect();
    if count > names.len() {
        names.push(format!("and {} more", count - names.len()));
    }
    let names = names.join(", ");
    match wanted {
        Some(w) => {
            let mut found: Vec<Job> = jobs
                .into_iter()
                .filter(|j| j.full_name() == w || j.name == w || j.uuid.as_deref() == Some(w))
                .collect();
            match found.len() {
                1 => Ok(found.remove(0)),
                0 => anyhow::bail!("no job {w:?} in the file (it holds: {names})"),
                n => anyhow::bail!(
                    "{n} jobs in the file answer to {w:?}: name one by group/name or uuid"
                ),
            }
        }
        None if count == 1 => Ok(jobs.into_iter().next().expect("one job")),
        None => anyhow::bail!("the file holds {count} jobs ({names}): choose one"),
    }
}

/// Parses a job file, telling YAML from XML by its content: a file whose
/// first non-blank character is `<` is XML, anything else YAML.
///
/// `name_for_errors` is only used in error messages.
pub fn parse(name_for_errors: &str, bytes: &[u8]) -> anyhow::Result<Vec<Job>> {
    let text = decode(name_for_errors, bytes)?;
    if looks_like_xml(text) {
        parse_xml(name_for_errors, bytes)
    } else {
        parse_yaml(name_for_errors, bytes)
    }
}

/// True when the content starts (after a BOM and blanks) with `<`, as
/// `<?xml …?>` and `<joblist>` do.
pub fn looks_like_xml(text: &str) -> bool {
    text.trim_start_matches('\u{feff}')
        .trim_start()
        .starts_with('<')
}

/// Parses a job YAML file: one document holding a list of job maps.
pub fn parse_yaml(name_for_errors: &str, bytes: &[u8]) -> anyhow::Result<Vec<Job>> {
    let text = decode(name_for_errors, bytes)?;
    let root = yaml::load(text.trim_start_matches('\u{feff}')).map_err(|e| ParseError {
        file: name_for_errors.to_string(),
        job_index: None,
        job_name: None,
        path: None,
        line: (e.line > 0).then_some(e.line),
        message: e.message,
    })?;
    let Value::List(items) = root.v else {
        return Err(file_error(
            name_for_errors,
            root.line,
            format!(
                "expected a list of jobs at the top level, found {}",
                root.v.kind()
            ),
        )
        .into());
    };
    let mut jobs = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let name = item.get("name").and_then(|n| n.to_jstring());
        let job = job::build_job(item, i, SourceFormat::Yaml, Vec::new())
            .map_err(|e| e.into_parse_error(name_for_errors, i, name))?;
        jobs.push(job);
    }
    Ok(jobs)
}

/// Parses a job XML file (`<joblist><job>…</job></joblist>`).
pub fn parse_xml(name_for_errors: &str, bytes: &[u8]) -> anyhow::Result<Vec<Job>> {
    let text = decode(name_for_errors, bytes)?;
    let raw_jobs = xml::load_jobs(text.trim_start_matches('\u{feff}'))
        .map_err(|e| file_error(name_for_errors, e.line, e.message))?;
    let mut jobs = Vec::with_capacity(raw_jobs.len());
    for (i, raw) in raw_jobs.into_iter().enumerate() {
        let name = raw.get("name").and_then(|n| n.to_jstring());
        let mut unknown = Vec::new();
        let build = xml_codec::to_job_map(raw, &format!("jobs[{i}]"), &mut unknown)
            .and_then(|map| job::build_job(&map, i, SourceFormat::Xml, unknown));
        jobs.push(build.map_err(|e| e.into_parse_error(name_for_errors, i, name))?);
    }
    Ok(jobs)
}

fn decode<'a>(name: &str, bytes: &'a [u8]) -> anyhow::Result<&'a str> {
    std::str::from_utf8(bytes).map_err(|e| {
        file_error(
            name,
            0,
            format!("not UTF-8 text (Rundeck reads job files as UTF-8): {e}"),
        )
        .into()
    })
}

fn file_error(file: &str, line: usize, message: String) -> ParseError {
    ParseError {
        file: file.to_string(),
        job_index: None,
        job_name: None,
        path: None,
        line: (line > 0).then_some(line),
        message,
    }
}
