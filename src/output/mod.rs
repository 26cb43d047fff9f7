//! The log pipeline: step output and runner notes become log format v1 events.
//!
//! Every byte that leaves sortie about a job passes through [`EventLog::emit`]:
//! events are numbered without gaps, encoded as one NDJSON line each and handed
//! to a [`Sink`] (the outbox file that is uploaded, or the terminal for `exec`).
//! This single road is where masking applies, so nothing can bypass it.
//!
//! A sink that fails (a full disk) fails once: the log keeps the first error,
//! writes nothing more, and the job runner, which asks [`EventLog::failed`]
//! after every event, stops the job and reports why.

pub mod echo;
pub mod encode;
pub mod lines;
pub mod terminal;

use std::io;
use std::sync::Arc;

use sortie_protocol::StepStatus;

pub use crate::exec::Stream;
use crate::secrets::mask::{MaskStream, Masker};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Info,
    Warn,
    Error,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Error => "error",
        }
    }
}

/// `text` with every control character escaped (`\n`, `\u{1b}`), for lines a
/// person reads: a newline or an escape sequence in a job's step name or in an
/// answer from the control plane must not forge lines or colours on a terminal.
pub fn printable(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.chars().any(char::is_control) {
        return text.into();
    }
    text.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect::<String>()
        .into()
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

/// Where encoded events go.
pub trait Sink {
    /// Take one event: `line` is its NDJSON encoding, newline included.
    fn write_event(&mut self, line: &[u8], event: &Event<'_>) -> io::Result<()>;
    /// The buffer of a sink that only appends the encoded events to one:
    /// [`EventLog`] then encodes each event at its end and calls
    /// [`Sink::appended`] instead of [`Sink::write_event`], so what a job logs
    /// is not copied once more on its way.
    fn buffer(&mut self) -> Option<&mut Vec<u8>> {
        None
    }
    /// An event was encoded at the end of [`Sink::buffer`].
    fn appended(&mut self) -> io::Result<()> {
        Ok(())
    }
    /// Called regularly while steps run, so time-based flushing needs no thread.
    fn tick(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Numbers, masks, encodes and forwards events.
pub struct EventLog<'s> {
    seq: u64,
    sink: &'s mut (dyn Sink + Send),
    line: Vec<u8>,
    masker: Arc<Masker>,
    /// The time stamp of output events: the time their bytes were read.
    ts: String,
    /// The first error of the sink; nothing is written after it.
    failure: Option<io::Error>,
    /// Output events may hold several lines (the reader offered `log_multiline`).
    multiline: bool,
}

impl<'s> EventLog<'s> {
    pub fn new(sink: &'s mut (dyn Sink + Send)) -> EventLog<'s> {
        EventLog {
            seq: 0,
            sink,
            line: Vec::with_capacity(1024),
            masker: crate::secrets::own::masker(),
            ts: crate::clock::now_rfc3339(),
            failure: None,
            multiline: false,
        }
    }

    /// Let output events hold several lines, up to
    /// [`sortie_protocol::MULTILINE_TEXT_BYTES`] (the log's reader offered
    /// `log_multiline`).
    pub fn set_multiline(&mut self, multiline: bool) {
        self.multiline = multiline;
    }

    /// Whether output events may hold several lines.
    pub fn multiline(&self) -> bool {
        self.multiline
    }

    /// The error that stopped the log, if the sink failed.
    pub fn failed(&self) -> Option<&io::Error> {
        self.failure.as_ref()
    }

    fn latch(&mut self, result: io::Result<()>) {
        if let Err(e) = result {
            self.failure.get_or_insert(e);
        }
    }

    /// Take the time for the output events that follow (called once per read, so
    /// the lines of one read share the moment they arrived).
    pub fn restamp(&mut self) {
        self.ts = crate::clock::now_rfc3339();
    }

    /// Output events stamped `ts` (the moment their bytes were read).
    pub fn set_stamp(&mut self, ts: &str) {
        self.ts.clear();
        self.ts.push_str(ts);
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
    pub fn emit(&mut self, event: Event<'_>) {
        if self.failure.is_some() {
            return;
        }
        let (name, text) = match &event {
            Event::StepStart { name, .. } => (name.map(|n| self.masker.mask_str(n)), None),
            Event::System { text, .. } => (None, Some(self.masker.mask_str(text))),
            _ => (None, None),
        };
        if !matches!(event, Event::Output { .. }) {
            self.restamp();
        }
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
        let written = match self.sink.buffer() {
            Some(buffer) => {
                encode::event(buffer, self.seq, &self.ts, &event);
                self.sink.appended()
            }
            None => {
                self.line.clear();
                encode::event(&mut self.line, self.seq, &self.ts, &event);
                self.sink.write_event(&self.line, &event)
            }
        };
        self.latch(written);
        self.seq += 1;
    }

    /// A `system` event.
    pub fn system(&mut self, level: Level, text: &str) {
        self.emit(Event::System { level, text })
    }

    /// Let the sink flush what has waited (called regularly while steps run).
    pub fn tick(&mut self) {
        if self.failure.is_none() {
            let ticked = self.sink.tick();
            self.latch(ticked);
        }
    }
}

/// The event log of a job whose steps may run on several nodes at once: each
/// event is written whole, in turn, under a lock.
pub struct SharedLog<'a, 's>(std::sync::Mutex<&'a mut EventLog<'s>>);

impl<'a, 's> SharedLog<'a, 's> {
    pub fn new(log: &'a mut EventLog<'s>) -> SharedLog<'a, 's> {
        SharedLog(std::sync::Mutex::new(log))
    }

    pub fn lock(&self) -> std::sync::MutexGuard<'_, &'a mut EventLog<'s>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn emit(&self, event: Event<'_>) {
        self.lock().emit(event);
    }

    pub fn system(&self, level: Level, text: &str) {
        self.lock().system(level, text);
    }

    pub fn failed(&self) -> bool {
        self.lock().failed().is_some()
    }

    pub fn mask_stream(&self) -> MaskStream {
        self.lock().mask_stream()
    }
}

/// A sink that keeps every event's NDJSON line (for tests here and elsewhere).
#[cfg(test)]
#[derive(Default)]
pub struct Collect(pub Vec<u8>);

#[cfg(test)]
impl Sink for Collect {
    fn write_event(&mut self, line: &[u8], _: &Event<'_>) -> io::Result<()> {
        self.0.extend_from_slice(line);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A sink that has events encoded straight into its buffer.
    #[derive(Default)]
    struct Buffered(Vec<u8>, usize);
    impl Sink for Buffered {
        fn write_event(&mut self, _: &[u8], _: &Event<'_>) -> io::Result<()> {
            unreachable!("events go into the buffer")
        }
        fn buffer(&mut self) -> Option<&mut Vec<u8>> {
            Some(&mut self.0)
        }
        fn appended(&mut self) -> io::Result<()> {
            self.1 += 1;
            Ok(())
        }
    }

    /// A sink that takes `room` events, then fails like a full disk.
    struct Full(usize);
    impl Sink for Full {
        fn write_event(&mut self, _: &[u8], _: &Event<'_>) -> io::Result<()> {
            match self.0.checked_sub(1) {
                Some(n) => {
                    self.0 = n;
                    Ok(())
                }
                None => Err(io::Error::from_raw_os_error(libc::ENOSPC)),
            }
        }
    }

    #[test]
    fn control_characters_are_escaped_for_people() {
        assert_eq!(printable("deploy web"), "deploy web");
        assert_eq!(printable("a\nb\u{1b}[31mc\r"), "a\\nb\\u{1b}[31mc\\r");
    }

    #[test]
    fn a_failing_sink_fails_once_and_takes_nothing_more() {
        let mut sink = Full(1);
        let mut log = EventLog::new(&mut sink);
        log.system(Level::Info, "fits");
        assert!(log.failed().is_none());
        log.system(Level::Info, "does not fit");
        log.system(Level::Info, "not even tried");
        let e = log.failed().unwrap();
        assert_eq!(e.raw_os_error(), Some(libc::ENOSPC));
    }

    #[test]
    fn events_are_numbered_ndjson_with_text_or_b64() {
        let out = |bytes| Event::Output {
            step: 0,
            node: "local",
            stream: Stream::Stdout,
            bytes,
        };
        let events = |log: &mut EventLog| {
            log.emit(out(b"hello \"x\"\n"));
            log.emit(out(b"\xff\n"));
            log.system(Level::Warn, "late");
            assert!(log.failed().is_none());
        };
        let mut sink = Collect::default();
        events(&mut EventLog::new(&mut sink));
        // Encoded into a sink's own buffer, the same events, the same bytes
        // (but the time stamps).
        let mut buffered = Buffered::default();
        events(&mut EventLog::new(&mut buffered));
        assert_eq!(buffered.1, 3);
        let unstamped = |bytes: &[u8]| {
            let text = String::from_utf8(bytes.to_vec()).unwrap();
            text.lines()
                .map(|l| {
                    let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
                    v["ts"] = serde_json::Value::Null;
                    v
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(unstamped(&buffered.0), unstamped(&sink.0));
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
