//! The log pipeline: step output and runner notes become log format v1 events.
//!
//! Every byte that leaves sortie about a job passes through [`EventLog::emit`]:
//! events are numbered without gaps, encoded as one NDJSON line each and handed
//! to a [`Sink`] (the outbox file that is uploaded, or the terminal for `exec`).
//! This single road is where masking applies, so nothing can bypass it.

pub mod lines;
pub mod terminal;

use std::io;
use std::sync::Arc;

use base64::Engine;
use serde::Serialize;
use sortie_protocol::StepStatus;

use crate::mask::{MaskStream, Masker};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Stream {
    Stdout,
    Stderr,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Info,
    Warn,
    Error,
}

/// A log event before it is numbered and stamped.
#[derive(Debug, Clone)]
pub enum Event<'a> {
    StepStart {
        step: usize,
        name: Option<&'a str>,
        node: &'a str,
        errorhandler: bool,
    },
    Output {
        step: usize,
        node: &'a str,
        stream: Stream,
        bytes: &'a [u8],
    },
    StepEnd {
        step: usize,
        node: &'a str,
        status: StepStatus,
        exit_code: Option<i32>,
        signal: Option<i32>,
        duration_ms: u64,
    },
    System {
        level: Level,
        text: &'a str,
    },
}

/// The wire form of an event (log format v1); absent fields are left out.
#[derive(Serialize)]
struct Wire<'a> {
    seq: u64,
    ts: String,
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    step: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    node: Option<&'a str>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    errorhandler: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    stream: Option<Stream>,
    #[serde(skip_serializing_if = "Option::is_none")]
    text: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    b64: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<StepStatus>,
    #[serde(skip_serializing_if = "Option::is_none")]
    exit_code: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    signal: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    duration_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    level: Option<Level>,
}

/// The wire form of `event`.
fn wire<'a>(seq: u64, event: &'a Event<'a>) -> Wire<'a> {
    let mut wire;
    match event {
        Event::StepStart {
            step,
            name,
            node,
            errorhandler,
        } => {
            wire = Wire::new(seq, "step_start");
            wire.step = Some(*step);
            wire.name = *name;
            wire.node = Some(node);
            wire.errorhandler = *errorhandler;
        }
        Event::Output {
            step,
            node,
            stream,
            bytes,
        } => {
            wire = Wire::new(seq, "output");
            wire.step = Some(*step);
            wire.node = Some(node);
            wire.stream = Some(*stream);
            match std::str::from_utf8(bytes) {
                Ok(text) => wire.text = Some(text),
                Err(_) => wire.b64 = Some(base64::engine::general_purpose::STANDARD.encode(bytes)),
            }
        }
        Event::StepEnd {
            step,
            node,
            status,
            exit_code,
            signal,
            duration_ms,
        } => {
            wire = Wire::new(seq, "step_end");
            wire.step = Some(*step);
            wire.node = Some(node);
            wire.status = Some(*status);
            wire.exit_code = *exit_code;
            wire.signal = *signal;
            wire.duration_ms = Some(*duration_ms);
        }
        Event::System { level, text } => {
            wire = Wire::new(seq, "system");
            wire.level = Some(*level);
            wire.text = Some(text);
        }
    }
    wire
}

impl<'a> Wire<'a> {
    fn new(seq: u64, kind: &'static str) -> Wire<'a> {
        Wire {
            seq,
            ts: crate::clock::now_rfc3339(),
            kind,
            step: None,
            name: None,
            node: None,
            errorhandler: false,
            stream: None,
            text: None,
            b64: None,
            status: None,
            exit_code: None,
            signal: None,
            duration_ms: None,
            level: None,
        }
    }
}

/// Where encoded events go.
pub trait Sink {
    /// Take one event: `line` is its NDJSON encoding, newline included.
    fn write_event(&mut self, line: &[u8], event: &Event<'_>) -> io::Result<()>;
    /// Called regularly while steps run, so time-based flushing needs no thread.
    fn tick(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Numbers, masks, encodes and forwards events.
pub struct EventLog<'s> {
    seq: u64,
    sink: &'s mut dyn Sink,
    line: Vec<u8>,
    masker: Arc<Masker>,
}

impl<'s> EventLog<'s> {
    pub fn new(sink: &'s mut dyn Sink) -> EventLog<'s> {
        EventLog {
            seq: 0,
            sink,
            line: Vec::with_capacity(1024),
            masker: Arc::new(Masker::default()),
        }
    }

    /// Mask these secrets from now on (set before any step runs).
    pub fn set_masker(&mut self, masker: Arc<Masker>) {
        self.masker = masker;
    }

    pub fn masker(&self) -> &Arc<Masker> {
        &self.masker
    }

    /// A masking stream for one output stream of a step: output bytes are masked
    /// there, before they are cut into events, so a value split across reads is
    /// still caught.
    pub fn mask_stream(&self) -> MaskStream {
        MaskStream::new(self.masker.clone())
    }

    /// Number, encode and hand on one event. Free text (step names, system notes) is
    /// masked here; output bytes arrive masked from a [`MaskStream`].
    pub fn emit(&mut self, event: Event<'_>) -> io::Result<()> {
        let masker = self.masker.clone();
        let (name, text) = match &event {
            Event::StepStart { name, .. } => (name.map(|n| masker.mask_str(n)), None),
            Event::System { text, .. } => (None, Some(masker.mask_str(text))),
            _ => (None, None),
        };
        let event = match event {
            Event::StepStart {
                step,
                node,
                errorhandler,
                ..
            } => Event::StepStart {
                step,
                name: name.as_deref(),
                node,
                errorhandler,
            },
            Event::System { level, .. } => Event::System {
                level,
                text: text.as_deref().unwrap_or_default(),
            },
            other => other,
        };
        self.line.clear();
        serde_json::to_writer(&mut self.line, &wire(self.seq, &event)).map_err(io::Error::other)?;
        self.line.push(b'\n');
        self.sink.write_event(&self.line, &event)?;
        self.seq += 1;
        Ok(())
    }

    /// A `system` event.
    pub fn system(&mut self, level: Level, text: &str) -> io::Result<()> {
        self.emit(Event::System { level, text })
    }

    pub fn tick(&mut self) -> io::Result<()> {
        self.sink.tick()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default)]
    struct Collect(Vec<u8>);
    impl Sink for Collect {
        fn write_event(&mut self, line: &[u8], _: &Event<'_>) -> io::Result<()> {
            self.0.extend_from_slice(line);
            Ok(())
        }
    }

    #[test]
    fn events_are_numbered_ndjson_with_text_or_b64() {
        let mut sink = Collect::default();
        let mut log = EventLog::new(&mut sink);
        let out = |bytes| Event::Output {
            step: 0,
            node: "local",
            stream: Stream::Stdout,
            bytes,
        };
        log.emit(out(b"hello \"x\"\n")).unwrap();
        log.emit(out(b"\xff\n")).unwrap();
        log.system(Level::Warn, "late").unwrap();
        let lines: Vec<serde_json::Value> = sink
            .0
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .map(|l| serde_json::from_slice(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[0]["seq"], 0);
        assert_eq!(lines[0]["text"], "hello \"x\"\n");
        assert_eq!(lines[1]["b64"], "/wo=");
        assert!(lines[1].get("text").is_none());
        assert_eq!(lines[2]["seq"], 2);
        assert_eq!(lines[2]["kind"], "system");
        assert_eq!(lines[2]["level"], "warn");
    }
}
