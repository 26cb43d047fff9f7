//! `--echo-output`: a job's own output also on sortie's stderr, each line
//! labelled with its job and step.
//!
//! Some platforms keep only what a process writes to stderr (a Kubernetes
//! pod's log, journald for a timer), and that is where people look first. The
//! job's log still goes to the control plane; the echo is a copy, already
//! masked (it is made from the events the log gets), one line per line of
//! output — text (`[job J step N stdout] …`, control characters escaped) or,
//! with `--log-format json`, one JSON object per line like sortie's own
//! diagnostics. A failure to write it never touches the job.

use std::collections::HashMap;
use std::io::{self, Write};

use super::{Event, Sink, Stream};

/// Longest line kept waiting for its newline; longer is written in pieces.
const MAX_PENDING: usize = 64 * 1024;

pub struct Echo<'a, S: Sink> {
    inner: &'a mut S,
    job: String,
    json: bool,
    /// Output not yet ended by a newline, per step, node and stream.
    pending: HashMap<(usize, String, Stream), Vec<u8>>,
}

impl<'a, S: Sink> Echo<'a, S> {
    pub fn new(inner: &'a mut S, job: &str, json: bool) -> Self {
        Echo {
            inner,
            job: job.to_string(),
            json,
            pending: HashMap::new(),
        }
    }

    fn line(&self, step: usize, node: &str, stream: Stream, bytes: &[u8]) {
        let text = String::from_utf8_lossy(bytes);
        let stream = match stream {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        };
        let out = if self.json {
            let line = serde_json::json!({
                "timestamp": crate::clock::now_rfc3339(),
                "level": "INFO",
                "fields": { "message": text, "job": self.job, "step": step, "node": node,
                            "stream": stream },
            });
            format!("{line}\n")
        } else {
            format!(
                "[job {} step {step} {stream}] {}\n",
                super::printable(&self.job),
                super::printable(&text)
            )
        };
        let _ = io::stderr().lock().write_all(out.as_bytes());
    }

    fn flush_step(&mut self, step: usize, node: &str) {
        for stream in [Stream::Stdout, Stream::Stderr] {
            if let Some(rest) = self.pending.remove(&(step, node.to_string(), stream)) {
                if !rest.is_empty() {
                    self.line(step, node, stream, &rest);
                }
            }
        }
    }
}

impl<S: Sink> Sink for Echo<'_, S> {
    fn write_event(&mut self, line: &[u8], event: &Event<'_>) -> io::Result<()> {
        self.inner.write_event(line, event)?;
        match event {
            Event::Output {
                step,
                node,
                stream,
                bytes,
            } => {
                let key = (*step, node.to_string(), *stream);
                let mut buffer = self.pending.remove(&key).unwrap_or_default();
                buffer.extend_from_slice(bytes);
                let mut start = 0;
                while let Some(end) = buffer[start..].iter().position(|b| *b == b'\n') {
                    self.line(*step, node, *stream, &buffer[start..start + end]);
                    start += end + 1;
                }
                buffer.drain(..start);
                if buffer.len() > MAX_PENDING {
                    self.line(*step, node, *stream, &buffer);
                    buffer.clear();
                }
                self.pending.insert(key, buffer);
            }
            Event::StepEnd { step, node, .. } => self.flush_step(*step, node),
            _ => {}
        }
        Ok(())
    }

    fn tick(&mut self) -> io::Result<()> {
        self.inner.tick()
    }
}
