//! Log format v1: one event per NDJSON line.
//!
//! The runner writes these lines with a hand-written encoder (it is the hottest
//! code of a job that prints a lot); this type is the format as a reader sees
//! it — the control plane, tests, and the property test that holds the encoder
//! to it.

use serde::{Deserialize, Serialize};

use crate::StepStatus;

/// One event of a job's log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogEvent {
    /// Counts from 0 without gaps.
    pub seq: u64,
    /// RFC 3339, UTC.
    pub ts: String,
    #[serde(flatten)]
    pub kind: EventKind,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum EventKind {
    StepStart {
        step: usize,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
        node: String,
        /// The run of a step's error handler (an optional field of sortie's).
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        errorhandler: bool,
    },
    Output {
        step: usize,
        node: String,
        stream: OutputStream,
        /// One line with its newline, or a piece of one (UTF-8 text)…
        #[serde(default, skip_serializing_if = "Option::is_none")]
        text: Option<String>,
        /// …or, for bytes that are not UTF-8, their standard base64.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        b64: Option<String>,
    },
    StepEnd {
        step: usize,
        node: String,
        status: StepStatus,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        exit_code: Option<i32>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        signal: Option<i32>,
        duration_ms: u64,
    },
    System {
        level: SystemLevel,
        text: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutputStream {
    Stdout,
    Stderr,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SystemLevel {
    Info,
    Warn,
    Error,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_protocol_s_examples_read_as_events() {
        let lines = [
            r#"{"seq":0,"ts":"t","kind":"step_start","step":0,"name":"restart","node":"local"}"#,
            r#"{"seq":1,"ts":"t","kind":"output","step":0,"node":"local","stream":"stdout","text":"hello\n"}"#,
            r#"{"seq":2,"ts":"t","kind":"output","step":0,"node":"local","stream":"stderr","b64":"/w=="}"#,
            r#"{"seq":3,"ts":"t","kind":"step_end","step":0,"node":"local","status":"succeeded","exit_code":0,"duration_ms":5}"#,
            r#"{"seq":4,"ts":"t","kind":"system","level":"warn","text":"step 1 timed out after 5m"}"#,
        ];
        for (i, line) in lines.iter().enumerate() {
            let event: LogEvent = serde_json::from_str(line).unwrap();
            assert_eq!(event.seq, i as u64);
            let back = serde_json::to_value(&event).unwrap();
            assert_eq!(
                back,
                serde_json::from_str::<serde_json::Value>(line).unwrap()
            );
        }
    }
}
