//! Errors that name the file, the job and the field.
//!
//! A job file is usually fixed by hand, so an error must point at the spot:
//! the file name given by the caller, the job's position and name, the field
//! path in the same notation as [`crate::rundeck::Job::unknown`], and a line when the
//! source tells one.

use std::fmt;

/// Why a job file was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// The name the caller gave the file.
    pub file: String,
    /// Position of the job in the file, from 0, when the error is inside a job.
    pub job_index: Option<usize>,
    /// The job's name, when known.
    pub job_name: Option<String>,
    /// Field path, e.g. `jobs[1].sequence.commands[0].jobref`.
    pub path: Option<String>,
    /// 1-based source line, when known.
    pub line: Option<usize>,
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if let Some(l) = self.line {
            write!(f, ":{l}")?;
        }
        if let Some(i) = self.job_index {
            write!(f, ": job {i}")?;
            if let Some(n) = &self.job_name {
                write!(f, " ({n:?})")?;
            }
        }
        if let Some(p) = &self.path {
            write!(f, ": {p}")?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for ParseError {}

/// An error inside one job, before the file and job are attached.
#[derive(Debug, Clone)]
pub(crate) struct FieldError {
    pub path: String,
    pub line: usize,
    pub message: String,
}

impl FieldError {
    pub fn new(path: impl Into<String>, line: usize, message: impl Into<String>) -> Self {
        FieldError {
            path: path.into(),
            line,
            message: message.into(),
        }
    }

    pub fn into_parse_error(self, file: &str, index: usize, name: Option<String>) -> ParseError {
        ParseError {
            file: file.to_string(),
            job_index: Some(index),
            job_name: name,
            path: Some(self.path),
            line: (self.line > 0).then_some(self.line),
            message: self.message,
        }
    }
}

pub(crate) type FieldResult<T> = Result<T, FieldError>;
