//! Capturing a step's output: bytes → masking stream → line splitter → event,
//! and `SORTIE:DATA:` / `RUNDECK:DATA:` lines into the job's result data.
//!
//! Output is masked before it is cut into lines, so a secret split across two
//! reads is still caught. A data line is taken only whole: the pieces of a line
//! longer than an event (or flushed early because the step paused mid-line) are
//! joined first, and a data line longer than a data value may be is refused with
//! a warning, never silently cut.

use std::time::Duration;

use crate::exec::{self, Stream};
use crate::jobs::result_data::{self, DataSet, MAX_VALUE};
use crate::output::lines::LineSplitter;
use crate::output::{Event, Level, SharedLog};
use crate::secrets::mask::MaskStream;

/// Longest line in one output event; longer lines are sent in pieces.
const LINE_LIMIT: usize = 64 * 1024;
/// A partial line waits this long before it is sent anyway.
const PARTIAL_FLUSH: Duration = Duration::from_secs(1);
/// Longest data line accepted: the prefix, a key and the largest value.
const MAX_DATA_LINE: usize = MAX_VALUE + 256;

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
}

impl<'a, 'b, 'l> StepOutput<'a, 'b, 'l> {
    pub fn new(
        step: usize,
        node: &'a str,
        log: &'a SharedLog<'b, 'l>,
        data: &'a mut DataSet,
    ) -> StepOutput<'a, 'b, 'l> {
        let lane = |log: &SharedLog<'_, '_>| Lane {
            mask: log.mask_stream(),
            splitter: LineSplitter::new(LINE_LIMIT),
            at_line_start: true,
            data_line: None,
            data_too_long: false,
        };
        StepOutput {
            step,
            node,
            lanes: [lane(log), lane(log)],
            log,
            data,
            ts: crate::clock::now_rfc3339(),
        }
    }

    /// The end of the output: whatever is held back is emitted.
    pub fn finish(&mut self) {
        for stream in [Stream::Stdout, Stream::Stderr] {
            self.with_masked(stream, |m, out| m.finish(out));
            self.with_lines(stream, |s, emit| s.finish(emit));
            self.end_data_line(stream);
        }
    }

    /// One piece of a line (or a whole line) of masked output.
    fn piece(&mut self, stream: Stream, piece: &[u8]) {
        if stream == Stream::Stdout {
            self.gather_data(piece);
        }
        let mut log = self.log.lock();
        log.set_stamp(&self.ts);
        log.emit(Event::Output {
            step: self.step,
            node: self.node,
            stream,
            bytes: piece,
        });
        drop(log);
        self.lanes[stream as usize].at_line_start = piece.ends_with(b"\n");
    }

    fn gather_data(&mut self, piece: &[u8]) {
        let lane = &mut self.lanes[Stream::Stdout as usize];
        if lane.at_line_start && result_data::is_data_line(piece) {
            lane.data_line = Some(Vec::new());
            lane.data_too_long = false;
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
            let text = format!(
                "step {}: a result data line longer than {MAX_VALUE} bytes was refused",
                self.step
            );
            self.log.system(Level::Warn, &text);
            return;
        }
        if let Some((k, v)) = result_data::parse_line(&line) {
            if let Err(e) = self.data.insert(k, v) {
                let text = format!("step {}: {e:#}", self.step);
                self.log.system(Level::Warn, &text);
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
    }

    fn tick(&mut self) {
        for stream in [Stream::Stdout, Stream::Stderr] {
            self.with_lines(stream, |s, emit| s.flush_stale(PARTIAL_FLUSH, emit));
        }
        self.log.lock().tick();
    }

    fn aborted(&self) -> bool {
        self.log.failed()
    }
}
