//! Capturing a step's output: bytes → masking stream → line splitter → event,
//! and `SORTIE:DATA:` / `RUNDECK:DATA:` lines into the job's result data, with
//! Rundeck's `key-value-data` log filters and its log limit.
//!
//! Output is masked before it is cut into lines, so a secret split across two
//! reads is still caught. A data line is taken only whole: the pieces of a line
//! longer than an event (or flushed early because the step paused mid-line) are
//! joined first, and a data line longer than a data value may be is refused with
//! a warning, never silently cut.
//!
//! Where the log's reader offered `log_multiline`, the lines of one read of a
//! stream go out as one event (up to [`MULTILINE_TEXT_BYTES`]): with 100-byte
//! lines, the event's own fields had been half the log, and the cost of
//! writing, hashing and sending it. Everything else — masking, data lines,
//! the log limit's count of lines — still sees every line on its own.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::Context;
use regex_lite::Regex;

use crate::exec::{self, StopReason, Stream};
use crate::jobs::result_data::{self, DataSet, MAX_VALUE};
use crate::jobs::spec::{Limit, LogFilter, LogLimit};
use crate::nodes::java;
use crate::output::lines::LineSplitter;
use crate::output::{Event, Level, SharedLog};
use crate::secrets::mask::MaskStream;
use sortie_protocol::MULTILINE_TEXT_BYTES;

/// Longest line in one output event; longer lines are sent in pieces.
const LINE_LIMIT: usize = 64 * 1024;
/// A partial line waits this long before it is sent anyway.
const PARTIAL_FLUSH: Duration = Duration::from_secs(1);
/// Longest data line accepted: the prefix, a key and the largest value.
const MAX_DATA_LINE: usize = MAX_VALUE + 256;

/// Rundeck's `key-value-data` log filter: a line of output that matches its
/// regular expression becomes data (two groups: key and value; one group: the
/// value of the key `name`), the key's invalid characters replaced.
pub struct KeyValue {
    regex: Regex,
    /// Text every match contains: a line without it is not matched at all.
    required: Option<memchr::memmem::Finder<'static>>,
    name: Option<String>,
    invalid: Regex,
    replacement: String,
    /// Log what it captured (`logData`).
    pub log_data: bool,
}

impl KeyValue {
    const REGEX: &'static str = r"^RUNDECK:DATA:\s*([^\s]+?)\s*=\s*(.+)$";
    const INVALID: &'static str = r"\s|\$|\{|\}|\\";

    /// The filter, when `filter` is a `key-value-data` one.
    pub fn of(filter: &LogFilter) -> anyhow::Result<Option<KeyValue>> {
        if filter.kind != "key-value-data" {
            return Ok(None);
        }
        let yes = |k: &str| filter.config.get(k).is_some_and(|v| v == "true");
        let pattern = filter
            .config
            .get("regex")
            .map_or(Self::REGEX, String::as_str);
        // `matches()` (the whole line) unless `matchSubstrings` (`find()`).
        let regex = if yes("matchSubstrings") {
            java::regex(pattern)
        } else {
            java::whole_regex(pattern)
        }
        .context("key-value-data: regex")?;
        let invalid = filter
            .config
            .get("invalidKeyPattern")
            .map_or(Self::INVALID, String::as_str);
        let replacement = if yes("replaceFilteredResult") {
            filter
                .config
                .get("invalidCharactersReplacement")
                .cloned()
                .unwrap_or_default()
        } else {
            "_".into()
        };
        let required = java::required_text(pattern)
            .map(|text| memchr::memmem::Finder::new(text.as_bytes()).into_owned());
        Ok(Some(KeyValue {
            regex,
            required,
            name: filter.config.get("name").cloned(),
            invalid: java::regex(invalid).context("key-value-data: invalidKeyPattern")?,
            replacement,
            log_data: yes("logData"),
        }))
    }

    /// The key and value `line` (its newline removed) holds, if any.
    pub fn apply(&self, line: &str) -> Option<(String, String)> {
        // Most lines are not data: finding text rules most of them out, and a
        // match without its groups is the cheaper one.
        if self
            .required
            .as_ref()
            .is_some_and(|text| text.find(line.as_bytes()).is_none())
            || !self.regex.is_match(line)
        {
            return None;
        }
        let caps = self.regex.captures(line)?;
        let (key, value) = match (caps.get(1), caps.get(2)) {
            (Some(k), Some(v)) => (k.as_str().to_string(), v.as_str().to_string()),
            (Some(v), None) => (self.name.clone()?, v.as_str().to_string()),
            _ => return None,
        };
        let key = self
            .invalid
            .replace_all(&key, self.replacement.as_str())
            .into_owned();
        Some((key, value))
    }
}

/// Rundeck's log limit over a job's output: counted here, across steps and
/// nodes (a line is an output event that ends a line, or a piece of one).
pub struct LogBudget {
    limit: LogLimit,
    lines: AtomicU64,
    bytes: AtomicU64,
    per_node: Mutex<BTreeMap<String, u64>>,
    /// The limit was passed.
    pub reached: AtomicBool,
}

/// What to do with a piece of output.
enum Take {
    Emit,
    /// The limit was passed and the log is truncated (`first`: just now).
    Drop {
        first: bool,
    },
    /// The limit was passed and the job halts.
    Halt {
        first: bool,
    },
}

impl LogBudget {
    pub fn new(limit: LogLimit) -> LogBudget {
        LogBudget {
            limit,
            lines: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            per_node: Mutex::new(BTreeMap::new()),
            reached: AtomicBool::new(false),
        }
    }

    pub fn limit(&self) -> &LogLimit {
        &self.limit
    }

    fn take(&self, node: &str, piece: &[u8]) -> Take {
        let over = match self.limit.limit {
            Limit::Lines(max) => self.lines.fetch_add(1, Ordering::Relaxed) >= max,
            Limit::Bytes(max) => {
                self.bytes.fetch_add(piece.len() as u64, Ordering::Relaxed) + piece.len() as u64
                    > max
            }
            Limit::LinesPerNode(max) => {
                let mut counts = self.per_node.lock().unwrap_or_else(|e| e.into_inner());
                let n = counts.entry(node.to_string()).or_insert(0);
                *n += 1;
                *n > max
            }
        };
        if !over {
            return Take::Emit;
        }
        let first = !self.reached.swap(true, Ordering::Relaxed);
        if self.limit.truncate {
            Take::Drop { first }
        } else {
            Take::Halt { first }
        }
    }
}

/// One output stream's state.
struct Lane {
    mask: MaskStream,
    splitter: LineSplitter,
    /// The next piece starts a line.
    at_line_start: bool,
    /// A data line gathered from several pieces (`None`: not in one).
    data_line: Option<Vec<u8>>,
    /// The data line being gathered outgrew [`MAX_DATA_LINE`].
    data_too_long: bool,
    /// The line being gathered starts with a data prefix (not only for a filter).
    data_prefixed: bool,
}

/// The observer of one step's process.
pub struct StepOutput<'a, 'b, 'l> {
    step: usize,
    node: &'a str,
    log: &'a SharedLog<'b, 'l>,
    data: &'a mut DataSet,
    lanes: [Lane; 2],
    /// When the bytes being cut into events were read.
    ts: String,
    filters: &'a [KeyValue],
    /// When the filters stop: a slow pattern must not hold a step past its
    /// time, or sortie past a stop, while it works through output read before.
    filters_until: Option<Instant>,
    stop: &'a (dyn Fn() -> Option<StopReason> + Sync),
    /// The filters were stopped (and that was said once).
    filters_stopped: bool,
    budget: Option<&'a LogBudget>,
    /// The log limit halted the job.
    halted: bool,
    /// Output events may hold several lines.
    multiline: bool,
    /// Text of `batch_stream` not yet emitted (with `multiline`): whole pieces
    /// of the current read, emitted before anything else is logged.
    batch: Vec<u8>,
    batch_stream: Stream,
}

impl<'a, 'b, 'l> StepOutput<'a, 'b, 'l> {
    /// The step's result data, which its output lines feed (and, for a step
    /// sortie does itself, what it captures).
    pub fn data(&mut self) -> &mut DataSet {
        self.data
    }

    pub fn new(
        step: usize,
        node: &'a str,
        log: &'a SharedLog<'b, 'l>,
        data: &'a mut DataSet,
        filters: &'a [KeyValue],
        budget: Option<&'a LogBudget>,
    ) -> StepOutput<'a, 'b, 'l> {
        let lane = |log: &SharedLog<'_, '_>| Lane {
            mask: log.mask_stream(),
            splitter: LineSplitter::new(LINE_LIMIT),
            at_line_start: true,
            data_line: None,
            data_too_long: false,
            data_prefixed: false,
        };
        let multiline = log.lock().multiline();
        StepOutput {
            step,
            node,
            lanes: [lane(log), lane(log)],
            log,
            data,
            ts: crate::clock::now_rfc3339(),
            filters,
            filters_until: None,
            stop: &|| None,
            filters_stopped: false,
            budget,
            halted: false,
            multiline,
            batch: Vec::new(),
            batch_stream: Stream::Stdout,
        }
    }

    /// Stop applying the log filters once `until` passes or `stop` asks to:
    /// the output still goes to the log, only its data is no longer looked for.
    pub fn filters_until(
        mut self,
        until: Option<Instant>,
        stop: &'a (dyn Fn() -> Option<StopReason> + Sync),
    ) -> Self {
        self.filters_until = until;
        self.stop = stop;
        self
    }

    /// The log filters may still run; said once when they may not.
    fn filters_go_on(&mut self) -> bool {
        if self.filters_stopped {
            return false;
        }
        let late = self.filters_until.is_some_and(|t| Instant::now() >= t);
        if late || (self.stop)().is_some() {
            self.filters_stopped = true;
            let text = format!(
                "step {}: log filters were not applied to the output read after the step was stopped",
                self.step
            );
            self.note(Level::Warn, &text);
            return false;
        }
        true
    }

    /// The end of the output: whatever is held back is emitted.
    pub fn finish(&mut self) {
        for stream in [Stream::Stdout, Stream::Stderr] {
            self.with_masked(stream, |m, out| m.finish(out));
            self.with_lines(stream, |s, emit| s.finish(emit));
            self.end_data_line(stream);
        }
        self.flush_batch();
    }

    /// One piece of a line (or a whole line) of masked output.
    fn piece(&mut self, stream: Stream, piece: &[u8]) {
        if stream == Stream::Stdout {
            self.gather_data(piece);
        }
        self.lanes[stream as usize].at_line_start = piece.ends_with(b"\n");
        match self.budget.map_or(Take::Emit, |b| b.take(self.node, piece)) {
            Take::Emit => {}
            Take::Drop { first } => {
                if first {
                    self.note(
                        Level::Warn,
                        "the log limit was reached: further output is not logged",
                    );
                }
                return;
            }
            Take::Halt { first } => {
                if first {
                    self.note(Level::Error, "the log limit was reached: the job halts");
                }
                self.halted = true;
                return;
            }
        }
        if self.multiline {
            let fits = self.batch.is_empty()
                || (self.batch_stream == stream
                    && self.batch.len() + piece.len() <= MULTILINE_TEXT_BYTES);
            if !fits {
                self.flush_batch();
            }
            // Text joins text; bytes that are not UTF-8 keep an event of their own.
            if std::str::from_utf8(piece).is_ok() {
                self.batch_stream = stream;
                self.batch.extend_from_slice(piece);
                return;
            }
            self.flush_batch();
        }
        self.emit_output(stream, piece);
    }

    fn emit_output(&self, stream: Stream, bytes: &[u8]) {
        let mut log = self.log.lock();
        log.set_stamp(&self.ts);
        log.emit(Event::Output {
            step: self.step,
            node: self.node,
            stream,
            bytes,
        });
    }

    /// Emit the text held for one event, if any.
    fn flush_batch(&mut self) {
        if !self.batch.is_empty() {
            self.emit_output(self.batch_stream, &self.batch);
            self.batch.clear();
        }
    }

    /// A system event, after the output that came before it.
    fn note(&mut self, level: Level, text: &str) {
        self.flush_batch();
        self.log.system(level, text);
    }

    fn gather_data(&mut self, piece: &[u8]) {
        let lane = &mut self.lanes[Stream::Stdout as usize];
        if lane.at_line_start {
            lane.data_prefixed = result_data::is_data_line(piece);
            if lane.data_prefixed || !self.filters.is_empty() {
                lane.data_line = Some(Vec::new());
                lane.data_too_long = false;
            }
        }
        let Some(line) = lane.data_line.as_mut() else {
            return;
        };
        if line.len() + piece.len() > MAX_DATA_LINE {
            lane.data_too_long = true;
            line.clear();
        } else if !lane.data_too_long {
            line.extend_from_slice(piece);
        }
        if piece.ends_with(b"\n") {
            self.end_data_line(Stream::Stdout);
        }
    }

    fn end_data_line(&mut self, stream: Stream) {
        let lane = &mut self.lanes[stream as usize];
        let Some(line) = lane.data_line.take() else {
            return;
        };
        if lane.data_too_long {
            lane.data_too_long = false;
            if lane.data_prefixed {
                let text = format!(
                    "step {}: a result data line longer than {MAX_VALUE} bytes was refused",
                    self.step
                );
                self.note(Level::Warn, &text);
            }
            return;
        }
        let mut found: Vec<(String, String)> = result_data::parse_line(&line).into_iter().collect();
        if !self.filters.is_empty() && self.filters_go_on() {
            let text = String::from_utf8_lossy(&line);
            let text = text.strip_suffix('\n').unwrap_or(&text);
            let text = text.strip_suffix('\r').unwrap_or(text);
            for filter in self.filters {
                if let Some((k, v)) = filter.apply(text) {
                    if filter.log_data {
                        self.note(Level::Info, &format!("data: {k} = {v}"));
                    }
                    found.push((k, v));
                }
            }
        }
        for (k, v) in found {
            if let Err(e) = self.data.insert(k, v) {
                let text = format!("step {}: {e:#}", self.step);
                self.note(Level::Warn, &text);
            }
        }
    }

    fn with_lines(
        &mut self,
        stream: Stream,
        f: impl FnOnce(&mut LineSplitter, &mut dyn FnMut(&[u8])),
    ) {
        let slot = stream as usize;
        let mut splitter = std::mem::replace(&mut self.lanes[slot].splitter, LineSplitter::new(0));
        f(&mut splitter, &mut |piece| self.piece(stream, piece));
        self.lanes[slot].splitter = splitter;
    }

    /// Masked bytes of one stream, through its masking stream and line splitter.
    fn with_masked(
        &mut self,
        stream: Stream,
        f: impl FnOnce(&mut MaskStream, &mut dyn FnMut(&[u8])),
    ) {
        let slot = stream as usize;
        let mut mask = std::mem::replace(&mut self.lanes[slot].mask, self.log.mask_stream());
        f(&mut mask, &mut |masked| {
            self.with_lines(stream, |s, emit| s.push(masked, emit))
        });
        self.lanes[slot].mask = mask;
    }
}

impl exec::Observer for StepOutput<'_, '_, '_> {
    fn output(&mut self, stream: Stream, bytes: &[u8]) {
        self.ts = crate::clock::now_rfc3339();
        self.with_masked(stream, |m, out| m.push(bytes, out));
        self.flush_batch();
    }

    fn tick(&mut self) {
        for stream in [Stream::Stdout, Stream::Stderr] {
            self.with_lines(stream, |s, emit| s.flush_stale(PARTIAL_FLUSH, emit));
        }
        self.flush_batch();
        self.log.lock().tick();
    }

    fn aborted(&self) -> bool {
        self.halted || self.log.failed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exec::Observer;
    use crate::output::{Collect, EventLog};
    use crate::secret::Secret;
    use crate::secrets::mask::Masker;
    use std::sync::Arc;

    /// The events a step's output becomes, read back as JSON.
    fn events(
        multiline: bool,
        reads: &[(Stream, &[u8])],
        filters: &[KeyValue],
    ) -> Vec<serde_json::Value> {
        let mut sink = Collect::default();
        {
            let mut log = EventLog::new(&mut sink);
            let secret = Secret::new("hunter22".to_string());
            log.set_masker(Arc::new(Masker::new([("S", &secret)], 4).unwrap()));
            log.set_multiline(multiline);
            let shared = SharedLog::new(&mut log);
            let mut data = DataSet::default();
            let mut output = StepOutput::new(0, "local", &shared, &mut data, filters, None);
            for (stream, bytes) in reads {
                output.output(*stream, bytes);
            }
            output.finish();
        }
        sink.0
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .map(|l| serde_json::from_slice(l).unwrap())
            .collect()
    }

    #[test]
    fn log_filters_stop_with_the_step_and_the_output_goes_on() {
        let filter = LogFilter {
            kind: "key-value-data".into(),
            config: [("regex".to_string(), r"^K:(\w+)=(\w+)$".to_string())].into(),
        };
        let filters = [KeyValue::of(&filter).unwrap().unwrap()];
        let stopped = AtomicBool::new(false);
        let stop = || {
            stopped
                .load(Ordering::SeqCst)
                .then_some(StopReason::Cancelled)
        };
        let mut sink = Collect::default();
        let mut data = DataSet::default();
        {
            let mut log = EventLog::new(&mut sink);
            let shared = SharedLog::new(&mut log);
            let mut output = StepOutput::new(0, "local", &shared, &mut data, &filters, None)
                .filters_until(None, &stop);
            output.output(Stream::Stdout, b"K:a=1\n");
            stopped.store(true, Ordering::SeqCst);
            output.output(Stream::Stdout, b"K:b=2\nK:c=3\n");
            output.finish();
        }
        assert_eq!(data.map().get("a").map(String::as_str), Some("1"));
        assert_eq!(data.map().get("b"), None);
        let log = String::from_utf8(sink.0).unwrap();
        assert!(log.contains("K:c=3"), "{log}");
        assert_eq!(
            log.matches("log filters were not applied").count(),
            1,
            "{log}"
        );
        // A deadline that has passed stops them too.
        let mut sink = Collect::default();
        let mut data = DataSet::default();
        {
            let mut log = EventLog::new(&mut sink);
            let shared = SharedLog::new(&mut log);
            let mut output = StepOutput::new(0, "local", &shared, &mut data, &filters, None)
                .filters_until(Some(Instant::now()), &|| None);
            output.output(Stream::Stdout, b"K:a=1\n");
            output.finish();
        }
        assert_eq!(data.map().get("a"), None);
    }

    /// Each stream's bytes, joined from its events' `text` and `b64`.
    fn streams(events: &[serde_json::Value]) -> [Vec<u8>; 2] {
        let mut out = [Vec::new(), Vec::new()];
        for e in events.iter().filter(|e| e["kind"] == "output") {
            let slot = usize::from(e["stream"] == "stderr");
            match e["text"].as_str() {
                Some(t) => out[slot].extend_from_slice(t.as_bytes()),
                None => {
                    use base64::Engine;
                    let b64 = e["b64"].as_str().unwrap();
                    out[slot].extend(
                        base64::engine::general_purpose::STANDARD
                            .decode(b64)
                            .unwrap(),
                    );
                }
            }
        }
        out
    }

    #[test]
    fn with_multiline_the_lines_of_one_read_are_one_event_and_nothing_else_changes() {
        let big: Vec<u8> = b"0123456789abcdef\n".repeat(10_000); // 170,000 bytes: three events
        let reads: Vec<(Stream, &[u8])> = vec![
            (Stream::Stdout, b"one\ntwo hunter22\nthr"),
            (Stream::Stdout, b"ee\n"),
            (Stream::Stderr, b"oops\nagain\n"),
            (Stream::Stdout, b"ok\n\xff\xfe\nafter\n"),
            (Stream::Stdout, &big),
        ];
        let per_line = events(false, &reads, &[]);
        let batched = events(true, &reads, &[]);
        // The same bytes reach each stream, masked, whichever way they are cut.
        assert_eq!(streams(&per_line), streams(&batched));
        assert!(!String::from_utf8_lossy(&streams(&batched)[0]).contains("hunter22"));
        let texts: Vec<&str> = batched
            .iter()
            .filter(|e| e["kind"] == "output")
            .map(|e| e["text"].as_str().unwrap_or("<b64>"))
            .collect();
        assert_eq!(
            &texts[..6],
            [
                "one\ntwo [SECRET]\n",
                "three\n",
                "oops\nagain\n",
                "ok\n",
                "<b64>",
                "after\n"
            ]
        );
        assert_eq!(texts.len(), 9, "{texts:?}");
        for t in &texts {
            assert!(t.len() <= MULTILINE_TEXT_BYTES);
        }
        // Without the offer, one line per event, as log format v1 says.
        assert!(per_line
            .iter()
            .filter(|e| e["kind"] == "output")
            .all(|e| e["text"]
                .as_str()
                .is_none_or(|t| t.matches('\n').count() == 1)));
        assert_eq!(
            per_line.iter().filter(|e| e["kind"] == "output").count(),
            10_008
        );
    }

    #[test]
    fn with_multiline_a_note_about_a_line_comes_after_the_lines_before_it() {
        let filter = LogFilter {
            kind: "key-value-data".into(),
            config: [("logData".to_string(), "true".to_string())].into(),
        };
        let filters = [KeyValue::of(&filter).unwrap().unwrap()];
        let reads: Vec<(Stream, &[u8])> =
            vec![(Stream::Stdout, b"before\nRUNDECK:DATA:k=v\nafter\n")];
        let kinds = |events: &[serde_json::Value]| -> Vec<String> {
            events
                .iter()
                .map(|e| {
                    format!(
                        "{} {}",
                        e["kind"].as_str().unwrap(),
                        e["text"].as_str().unwrap()
                    )
                })
                .collect()
        };
        assert_eq!(
            kinds(&events(true, &reads, &filters)),
            [
                "output before\n",
                "system data: k = v",
                "output RUNDECK:DATA:k=v\nafter\n"
            ]
        );
        assert_eq!(
            kinds(&events(false, &reads, &filters)),
            [
                "output before\n",
                "system data: k = v",
                "output RUNDECK:DATA:k=v\n",
                "output after\n"
            ]
        );
    }
}
