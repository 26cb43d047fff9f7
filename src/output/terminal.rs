//! The job log on a terminal, for `sortie exec`.
//!
//! Text mode shows what a person wants to read: step headers and endings, the
//! step's own output as it was printed (its stderr on stderr), runner notes.
//! JSON mode prints the log format v1 lines themselves, for piping into tools.
//! Steps on other nodes than the runner's own are named in their headers, and
//! each line they print starts with the node's name, its control characters
//! escaped, so that nodes running at once stay readable.

use std::collections::HashSet;
use std::io::{self, Write};

use super::{Event, Sink, Stream};

pub struct Terminal {
    json: bool,
    /// The runner's own node: its steps are shown as they are.
    local: String,
    /// The nodes (and streams) whose last output ended mid-line.
    mid_line: HashSet<(String, Stream)>,
    out: io::Stdout,
    err: io::Stderr,
}

impl Terminal {
    pub fn new(json: bool, local: &str) -> Terminal {
        Terminal {
            json,
            local: local.to_string(),
            mid_line: HashSet::new(),
            out: io::stdout(),
            err: io::stderr(),
        }
    }

    fn on(&self, node: &str) -> String {
        if node == self.local {
            String::new()
        } else {
            format!(" on {}", super::printable(node))
        }
    }

    /// `bytes` with each line that starts in them prefixed with `node: `.
    fn prefixed(&mut self, node: &str, stream: Stream, bytes: &[u8]) -> Vec<u8> {
        let prefix = format!("{}: ", super::printable(node));
        let key = (node.to_string(), stream);
        let mut at_start = !self.mid_line.contains(&key);
        let mut out = Vec::with_capacity(bytes.len() + prefix.len());
        for line in bytes.split_inclusive(|b| *b == b'\n') {
            if at_start {
                out.extend_from_slice(prefix.as_bytes());
            }
            // Several nodes share the screen: none may move the cursor or
            // colour another's lines (a tab stays a tab).
            let (text, newline) = match line.strip_suffix(b"\n") {
                Some(text) => (text, true),
                None => (line, false),
            };
            for piece in String::from_utf8_lossy(text).split_inclusive('\t') {
                let (piece, tab) = match piece.strip_suffix('\t') {
                    Some(piece) => (piece, "\t"),
                    None => (piece, ""),
                };
                out.extend_from_slice(super::printable(piece).as_bytes());
                out.extend_from_slice(tab.as_bytes());
            }
            if newline {
                out.push(b'\n');
            }
            at_start = newline;
        }
        if at_start {
            self.mid_line.remove(&key);
        } else {
            self.mid_line.insert(key);
        }
        out
    }
}

impl Sink for Terminal {
    fn write_event(&mut self, line: &[u8], event: &Event<'_>) -> io::Result<()> {
        if self.json {
            return self.out.lock().write_all(line);
        }
        let relabeled;
        let event = match event {
            Event::Output {
                step,
                node,
                stream,
                bytes,
            } if *node != self.local => {
                relabeled = self.prefixed(node, *stream, bytes);
                &Event::Output {
                    step: *step,
                    node,
                    stream: *stream,
                    bytes: &relabeled,
                }
            }
            other => other,
        };
        let mut out = self.out.lock();
        match event {
            Event::StepStart {
                step,
                name,
                node,
                errorhandler,
            } => {
                let on = self.on(node);
                let what = if *errorhandler {
                    "error handler of step"
                } else {
                    "step"
                };
                match name {
                    Some(name) => {
                        writeln!(out, "--- {what} {step}{on}: {}", super::printable(name))
                    }
                    None => writeln!(out, "--- {what} {step}{on}"),
                }
            }
            Event::Output { stream, bytes, .. } => match stream {
                Stream::Stdout => out.write_all(bytes),
                Stream::Stderr => {
                    out.flush()?;
                    self.err.lock().write_all(bytes)
                }
            },
            Event::StepEnd {
                step,
                node,
                status,
                exit_code,
                signal,
                duration_ms,
            } => {
                let how = match (exit_code, signal) {
                    (Some(code), _) => format!("exit {code}, "),
                    (None, Some(sig)) => format!("signal {sig}, "),
                    (None, None) => String::new(),
                };
                writeln!(
                    out,
                    "--- step {step}{} {} ({how}{duration_ms} ms)",
                    self.on(node),
                    status.as_str()
                )
            }
            Event::System { level, text } => {
                writeln!(out, "--- {}: {}", level.as_str(), super::printable(text))
            }
        }
    }
}
