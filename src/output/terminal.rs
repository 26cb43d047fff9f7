//! The job log on a terminal, for `sortie exec`.
//!
//! Text mode shows what a person wants to read: step headers and endings, the
//! step's own output as it was printed (its stderr on stderr), runner notes.
//! JSON mode prints the log format v1 lines themselves, for piping into tools.

use std::io::{self, Write};

use super::{Event, Sink, Stream};

pub struct Terminal {
    json: bool,
    out: io::Stdout,
    err: io::Stderr,
}

impl Terminal {
    pub fn new(json: bool) -> Terminal {
        Terminal {
            json,
            out: io::stdout(),
            err: io::stderr(),
        }
    }
}

impl Sink for Terminal {
    fn write_event(&mut self, line: &[u8], event: &Event<'_>) -> io::Result<()> {
        let mut out = self.out.lock();
        if self.json {
            return out.write_all(line);
        }
        match event {
            Event::StepStart {
                step,
                name,
                errorhandler,
                ..
            } => {
                let what = if *errorhandler {
                    "error handler of step"
                } else {
                    "step"
                };
                match name {
                    Some(name) => writeln!(out, "--- {what} {step}: {}", super::printable(name)),
                    None => writeln!(out, "--- {what} {step}"),
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
                status,
                exit_code,
                signal,
                duration_ms,
                ..
            } => {
                let how = match (exit_code, signal) {
                    (Some(code), _) => format!("exit {code}, "),
                    (None, Some(sig)) => format!("signal {sig}, "),
                    (None, None) => String::new(),
                };
                writeln!(
                    out,
                    "--- step {step} {} ({how}{duration_ms} ms)",
                    status.as_str()
                )
            }
            Event::System { level, text } => {
                writeln!(out, "--- {}: {}", level.as_str(), super::printable(text))
            }
        }
    }
}
