//! The job log on a terminal, for `sortie exec`.
//!
//! Text mode shows what a person wants to read: step headers and endings, the
//! step's own output as it was printed (its stderr on stderr), runner notes.
//! JSON mode prints the log format v1 lines themselves, for piping into tools.
//! Steps on other nodes than the runner's own are named in their headers, and
//! each line they print starts with the node's name, its control characters
//! escaped, so that nodes running at once stay readable.
//!
//! On a terminal (and unless `NO_COLOR` is set) sortie's own lines are
//! coloured by outcome and a step's stderr is shown in yellow; the words say
//! the same without colour. Durations are written as a person reads them, an
//! error handler's ending is named as the handler's, and the job's last line
//! says how it ended, in how long. A step silent for a few seconds gets a line
//! that counts its time on an interactive terminal (replaced as it counts,
//! and cleared before the step's next output).

use std::collections::HashSet;
use std::io::{self, IsTerminal, Write};
use std::time::{Duration, Instant};

use sortie_protocol::{JobStatus, StepStatus};

use super::{Event, Level, Sink, Stream};

pub struct Terminal {
    json: bool,
    /// The runner's own node: its steps are shown as they are.
    local: String,
    /// The nodes (and streams) whose last output ended mid-line.
    mid_line: HashSet<(String, Stream)>,
    /// The steps (on their nodes) whose error handler is running.
    handling: HashSet<(usize, String)>,
    /// Colours on stdout, and on stderr.
    colour: (bool, bool),
    /// stdout is a terminal: the elapsed-time line may be drawn.
    interactive: bool,
    /// The step running (its label, when it started) and when it last printed.
    running: Option<(String, Instant)>,
    last_output: Instant,
    /// The elapsed-time line is on the screen (and when it was drawn).
    indicator: Option<Instant>,
    out: io::Stdout,
    err: io::Stderr,
}

const RED: &str = "\x1b[31m";
const GREEN: &str = "\x1b[32m";
const YELLOW: &str = "\x1b[33m";
const DIM: &str = "\x1b[2m";
const RESET: &str = "\x1b[0m";

/// Colour for a stream when it is a terminal and `NO_COLOR` is not set
/// (<https://no-color.org>), nor `TERM=dumb`.
fn colour_for(stream: &impl IsTerminal) -> bool {
    stream.is_terminal()
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
        && std::env::var("TERM").map_or(true, |t| t != "dumb")
}

fn step_colour(status: StepStatus) -> &'static str {
    match status {
        StepStatus::Succeeded => GREEN,
        StepStatus::Failed | StepStatus::TimedOut => RED,
        StepStatus::Cancelled | StepStatus::Interrupted | StepStatus::Skipped => YELLOW,
    }
}

impl Terminal {
    pub fn new(json: bool, local: &str) -> Terminal {
        Terminal {
            json,
            local: local.to_string(),
            mid_line: HashSet::new(),
            handling: HashSet::new(),
            colour: (colour_for(&io::stdout()), colour_for(&io::stderr())),
            interactive: io::stdout().is_terminal() && !json,
            running: None,
            last_output: Instant::now(),
            indicator: None,
            out: io::stdout(),
            err: io::stderr(),
        }
    }

    /// Take the elapsed-time line off the screen before anything is written.
    fn clear_indicator(&mut self) -> io::Result<()> {
        if self.indicator.take().is_some() {
            let mut out = self.out.lock();
            out.write_all(b"\r\x1b[K")?;
            out.flush()?;
        }
        Ok(())
    }

    /// `text` in `colour` when stdout takes colours.
    fn paint(&self, colour: &str, text: &str) -> String {
        if self.colour.0 {
            format!("{colour}{text}{RESET}")
        } else {
            text.to_string()
        }
    }

    /// The job's last lines: how it ended, in how long, why, and its data.
    pub fn job_end(
        &mut self,
        id: &str,
        status: JobStatus,
        elapsed: Duration,
        error: Option<&str>,
        data: &std::collections::BTreeMap<String, String>,
    ) -> io::Result<()> {
        let colour = match status {
            JobStatus::Succeeded => GREEN,
            JobStatus::Cancelled | JobStatus::Interrupted => YELLOW,
            _ => RED,
        };
        let head = self.paint(
            colour,
            &format!(
                "--- job {} {status} in {}",
                super::printable(id),
                crate::clock::human(elapsed)
            ),
        );
        let mut out = self.out.lock();
        writeln!(out, "{head}")?;
        if let Some(error) = error {
            writeln!(out, "--- {}", super::printable(error))?;
        }
        for (k, v) in data {
            writeln!(out, "data: {k}={}", super::printable(v))?;
        }
        out.flush()
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

/// A step silent this long gets the elapsed-time line.
const SILENT: Duration = Duration::from_secs(3);

impl Sink for Terminal {
    fn tick(&mut self) -> io::Result<()> {
        let Some((label, since)) = self.running.as_ref().filter(|_| self.interactive) else {
            return Ok(());
        };
        let now = Instant::now();
        let due = self
            .indicator
            .is_none_or(|drawn| now.duration_since(drawn) >= Duration::from_secs(1));
        if now.duration_since(self.last_output) < SILENT || !due {
            return Ok(());
        }
        let line = format!(
            "\r\x1b[K… {label} running for {}",
            crate::clock::human(Duration::from_secs(now.duration_since(*since).as_secs()))
        );
        let line = self.paint(DIM, &line);
        let mut out = self.out.lock();
        out.write_all(line.as_bytes())?;
        out.flush()?;
        self.indicator = Some(now);
        Ok(())
    }

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
        self.clear_indicator()?;
        self.last_output = Instant::now();
        match event {
            Event::StepStart { step, node, .. } => {
                self.running = Some((format!("step {step}{}", self.on(node)), Instant::now()));
            }
            Event::StepEnd { .. } => self.running = None,
            _ => {}
        }
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
                    self.handling.insert((*step, node.to_string()));
                    "error handler of step"
                } else {
                    "step"
                };
                let line = match name {
                    Some(name) => format!("--- {what} {step}{on}: {}", super::printable(name)),
                    None => format!("--- {what} {step}{on}"),
                };
                writeln!(out, "{}", self.paint(DIM, &line))
            }
            Event::Output { stream, bytes, .. } => match stream {
                Stream::Stdout => out.write_all(bytes),
                Stream::Stderr => {
                    out.flush()?;
                    let mut err = self.err.lock();
                    if self.colour.1 {
                        err.write_all(YELLOW.as_bytes())?;
                        err.write_all(bytes)?;
                        err.write_all(RESET.as_bytes())
                    } else {
                        err.write_all(bytes)
                    }
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
                let what = if self.handling.remove(&(*step, node.to_string())) {
                    "error handler of step"
                } else {
                    "step"
                };
                let line = format!(
                    "--- {what} {step}{} {} ({how}{})",
                    self.on(node),
                    status.as_str(),
                    crate::clock::human(Duration::from_millis(*duration_ms))
                );
                writeln!(out, "{}", self.paint(step_colour(*status), &line))
            }
            Event::System { level, text } => {
                let line = format!("--- {}: {}", level.as_str(), super::printable(text));
                let colour = match level {
                    Level::Info => DIM,
                    Level::Warn => YELLOW,
                    Level::Error => RED,
                };
                writeln!(out, "{}", self.paint(colour, &line))
            }
        }
    }
}
