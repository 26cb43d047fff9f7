//! Running one process under supervision.
//!
//! The executor knows nothing of jobs, the network or the spool: it starts a
//! process in its own process group with stdin on /dev/null, hands its stdout
//! and stderr bytes to the caller as they arrive (read by the supervising
//! thread, which waits on both pipes and the process's end at once, so a slow
//! consumer makes the child wait instead of memory grow), and ends it the one
//! way every stop ends a step: SIGTERM to the group, a grace period, SIGKILL
//! to the group. After the leader exits it waits a short
//! while for the pipes to close; a grandchild still holding them is a leak, and
//! its group is killed.

use std::ffi::OsString;
use std::io::Read;
use std::os::fd::{AsFd, OwnedFd};
use std::path::PathBuf;
use std::process::{ChildStderr, ChildStdout, ExitStatus, Stdio};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

pub mod ledger;
pub mod sandbox;

use crate::os::{self, ProcessGroup, User};
use crate::signals;
use sandbox::Sandbox;

/// How often the supervisor wakes up when nothing arrives (stop checks, flushing).
pub const TICK: Duration = Duration::from_millis(100);
/// How long to wait for the pipes to close after the leader exits.
const LEAK_WAIT: Duration = Duration::from_millis(500);
/// Bytes read from a pipe at once.
const READ_SIZE: usize = 64 * 1024;
/// What a step's stdout pipe is asked to hold.
const PIPE_SIZE: usize = 1024 * 1024;

/// A process's output streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stream {
    Stdout,
    Stderr,
}

/// What a process is confined to (see [`sandbox`]).
#[derive(Debug, Clone, Default)]
pub struct Confinement {
    /// The Landlock domain it runs in.
    pub sandbox: Option<Arc<Sandbox>>,
    /// The user it runs as (sortie's own when `None`).
    pub user: Option<Arc<User>>,
    /// No confinement at all (`--sandbox off`): privileges may be gained (sudo).
    pub off: bool,
}

/// What to run.
#[derive(Debug, Clone)]
pub struct Command {
    pub program: OsString,
    pub args: Vec<OsString>,
    /// The whole environment of the process (nothing is inherited).
    pub env: Vec<(String, String)>,
    pub cwd: PathBuf,
    pub confinement: Confinement,
    pub stdin: Input,
    /// A variable of `env` (name, value) that marks the processes of one
    /// job: a leftover found when this command ends that carries another
    /// value of it belongs to a job still running beside this one (sortie's
    /// `--parallel`), and is left to that job.
    pub owner: Option<(String, String)>,
}

/// What a process reads on stdin.
#[derive(Debug, Clone, Default)]
pub enum Input {
    /// Nothing (`/dev/null`).
    #[default]
    Empty,
    /// These bytes, then the end of the input (a plugin's document).
    Closed(Vec<u8>),
}

/// Why the supervisor stopped a process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    TimedOut,
    Cancelled,
    /// sortie itself was asked to stop (a signal).
    Interrupted,
    /// The caller could not take the output any more (its log could not be written).
    Aborted,
}

/// How a process ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Exited(i32),
    Signaled(i32),
    Stopped(StopReason),
    /// The process never started (no such program, not executable, …).
    SpawnFailed(String),
}

#[derive(Debug)]
pub struct Finished {
    pub outcome: Outcome,
    /// A descendant kept the output pipes open after the leader exited.
    pub leaked: bool,
    /// Processes the step left behind (daemons, leaked descendants), killed at its end.
    pub leftovers: usize,
}

/// When and why to stop the process early.
pub struct Supervision<'a> {
    /// Stop as timed out at this instant.
    pub until: Option<Instant>,
    /// Polled on every tick: `Some` stops the process for that reason.
    pub stop: &'a dyn Fn() -> Option<StopReason>,
    /// Time between SIGTERM and SIGKILL.
    pub grace: Duration,
}

impl Supervision<'_> {
    /// Whether to stop now, and why: the observer cannot take more output, the
    /// time is up, or the caller says so.
    pub fn reason(&self, observer: &dyn Observer) -> Option<StopReason> {
        if observer.aborted() {
            Some(StopReason::Aborted)
        } else if self.until.is_some_and(|u| Instant::now() >= u) {
            Some(StopReason::TimedOut)
        } else {
            (self.stop)()
        }
    }
}

/// Read `pipe` to its end, handing each chunk to `send` as it arrives (until
/// `send` says the reader is gone).
pub fn read_chunks(mut pipe: impl Read, mut send: impl FnMut(Vec<u8>) -> bool) {
    let mut buf = vec![0u8; READ_SIZE];
    loop {
        match pipe.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                if !send(buf[..n].to_vec()) {
                    return;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => break,
        }
    }
}

/// A running process's stdout and stderr, and its end, waited on together
/// with poll(2) by the supervising thread itself: no thread per stream, no
/// hand-over between threads for each read, and every read goes to the
/// observer straight from one buffer. The observer is called between reads,
/// so a slow one makes the process wait on a full pipe instead of memory grow.
struct Streams {
    stdout: Option<ChildStdout>,
    stderr: Option<ChildStderr>,
    /// Readable when the process ends (`None` on a kernel without pidfd_open:
    /// the end is then looked for at each wake-up, and at growing intervals
    /// from 1 ms to a tick once the pipes are closed).
    exit: Option<OwnedFd>,
    /// How long to wait with nothing to wait on (no pidfd, both pipes closed).
    idle: Duration,
    /// Whether stdout's pipe was grown (once; see [`PIPE_SIZE`]).
    grown: bool,
}

impl Streams {
    fn new(stdout: ChildStdout, stderr: ChildStderr, pid: u32) -> Streams {
        for fd in [stdout.as_fd(), stderr.as_fd()] {
            // A blocking pipe would stall the loop: if it cannot be made
            // non-blocking, poll says when a read will not block anyway.
            let _ = os::set_nonblocking(fd, true);
        }
        Streams {
            stdout: Some(stdout),
            stderr: Some(stderr),
            exit: os::pidfd_open(pid).ok(),
            idle: Duration::from_millis(1),
            grown: false,
        }
    }

    /// Both pipes are at their end.
    fn closed(&self) -> bool {
        self.stdout.is_none() && self.stderr.is_none()
    }

    /// Wait at most `timeout` for output or (when `running`) the process's end,
    /// and hand what was read to `observer`. True when the process may have
    /// ended: the caller then asks.
    fn wait(
        &mut self,
        timeout: Duration,
        running: bool,
        buf: &mut [u8],
        observer: &mut dyn Observer,
    ) -> bool {
        let fds = [
            self.stdout.as_ref().map(AsFd::as_fd),
            self.stderr.as_ref().map(AsFd::as_fd),
            self.exit.as_ref().filter(|_| running).map(AsFd::as_fd),
        ];
        let timeout = if running && fds.iter().all(Option::is_none) {
            let idle = self.idle;
            self.idle = (idle * 2).min(TICK);
            timeout.min(idle)
        } else {
            timeout
        };
        let ready = match os::wait_readable(&fds, timeout) {
            Ok(ready) => ready,
            // poll(2) fails only on bad arguments or no memory: look at each
            // stream (reads do not block) rather than spin.
            Err(_) => {
                thread::sleep(timeout.min(Duration::from_millis(10)));
                u32::MAX
            }
        };
        if ready & 0b001 != 0 {
            match read_some(&mut self.stdout, Stream::Stdout, buf, observer) {
                None => self.stdout = None,
                Some(n) if n == buf.len() && !self.grown => self.grow_stdout(),
                Some(_) => {}
            }
        }
        if ready & 0b010 != 0
            && read_some(&mut self.stderr, Stream::Stderr, buf, observer).is_none()
        {
            self.stderr = None;
        }
        // Without a pidfd, any wake-up may be the end.
        running && (self.exit.is_none() || ready & 0b100 != 0)
    }

    /// A step whose stdout filled a whole read prints faster than sortie
    /// takes it: its pipe is asked for [`PIPE_SIZE`], so that it runs ahead
    /// by that much and either side wakes the other far less often. Only
    /// such steps take that much of their user's pipe quota; refused past
    /// the system's limits, which changes nothing but that.
    fn grow_stdout(&mut self) {
        self.grown = true;
        if let Some(pipe) = &self.stdout {
            let _ = os::grow_pipe(pipe.as_fd(), PIPE_SIZE);
        }
    }
}

/// One read of a ready pipe into `buf`, handed to `observer`: how much was
/// read, or `None` at its end (or on an error, which ends it too).
fn read_some(
    pipe: &mut Option<impl Read>,
    stream: Stream,
    buf: &mut [u8],
    observer: &mut dyn Observer,
) -> Option<usize> {
    let reader = pipe.as_mut()?;
    match reader.read(buf) {
        Ok(0) => None,
        Ok(n) => {
            observer.output(stream, &buf[..n]);
            Some(n)
        }
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::Interrupted
            ) =>
        {
            Some(0)
        }
        Err(_) => None,
    }
}

/// What the caller does with a running process's output.
pub trait Observer {
    /// Bytes read from the process, in order per stream.
    fn output(&mut self, stream: Stream, bytes: &[u8]);
    /// Called at least every [`TICK`] while the process runs (for time-based flushing).
    fn tick(&mut self);
    /// True when the output can no longer be taken: the process is stopped.
    fn aborted(&self) -> bool;
}

/// What [`capture`] kept of a process: its end, its stdout (stopped once
/// over the limit: `over`), the first 4 KiB of its stderr.
pub struct Captured {
    pub finished: Finished,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    pub over: bool,
}

/// Run `cmd` to its end keeping what it prints: at most `limit` bytes of
/// stdout (a process printing more is stopped), the start of its stderr (for
/// the one line that says why it failed).
pub fn capture(cmd: &Command, supervision: &Supervision<'_>, limit: usize) -> Captured {
    struct Keep {
        stdout: Vec<u8>,
        stderr: Vec<u8>,
        limit: usize,
    }
    impl Observer for Keep {
        fn output(&mut self, stream: Stream, bytes: &[u8]) {
            match stream {
                Stream::Stdout => self.stdout.extend_from_slice(bytes),
                Stream::Stderr if self.stderr.len() < 4096 => self.stderr.extend_from_slice(bytes),
                Stream::Stderr => {}
            }
        }
        fn tick(&mut self) {}
        fn aborted(&self) -> bool {
            self.stdout.len() > self.limit
        }
    }
    let mut keep = Keep {
        stdout: Vec::new(),
        stderr: Vec::new(),
        limit,
    };
    let finished = run(cmd, supervision, &mut keep);
    let over = keep.stdout.len() > limit;
    Captured {
        finished,
        stdout: keep.stdout,
        stderr: keep.stderr,
        over,
    }
}

/// Run `cmd` to its end, reporting its output to `observer` as it is read.
pub fn run(cmd: &Command, supervision: &Supervision<'_>, observer: &mut dyn Observer) -> Finished {
    use std::os::unix::process::CommandExt;
    // A stop asked for before the process starts (a signal while the job's
    // sandbox was built) starts nothing: a short step would run to its end.
    if let Some(reason) = supervision.reason(observer) {
        return Finished {
            outcome: Outcome::Stopped(reason),
            leaked: false,
            leftovers: 0,
        };
    }
    let mut command = std::process::Command::new(&cmd.program);
    command
        .args(&cmd.args)
        .env_clear()
        .envs(cmd.env.iter().map(|(k, v)| (k, v)))
        .current_dir(&cmd.cwd)
        .stdin(match cmd.stdin {
            Input::Empty => os::empty_stdin(),
            Input::Closed(_) => Stdio::piped(),
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    confine(&mut command, &cmd.confinement);
    let mut child = match os::spawn_kept(&mut command) {
        Ok(child) => child,
        Err(e) => {
            return Finished {
                outcome: Outcome::SpawnFailed(describe_spawn_error(cmd, &e)),
                leaked: false,
                leftovers: 0,
            }
        }
    };
    let group = ProcessGroup::led_by(child.id());
    signals::add_running_group(group.id());
    ledger::started(group);
    let pid = child.id();
    // Feed stdin, then close it.
    if let (Some(mut stdin), Input::Closed(bytes)) = (child.stdin.take(), &cmd.stdin) {
        let bytes = bytes.clone();
        thread::spawn(move || {
            use std::io::Write;
            let _ = stdin.write_all(&bytes);
        });
    }
    let mut streams = Streams::new(
        child.stdout.take().expect("stdout is piped"),
        child.stderr.take().expect("stderr is piped"),
        pid,
    );

    let mut buf = vec![0u8; READ_SIZE];
    // How the leader ended (`None`: it could not be waited for), and when.
    let mut status: Option<(Option<ExitStatus>, Instant)> = None;
    let mut stopped: Option<(StopReason, Instant)> = None;
    let mut killed = false;
    let mut leaked = false;
    let mut leftovers = 0;
    loop {
        let mut wait = TICK;
        if let (None, Some(until)) = (stopped, supervision.until) {
            wait = wait.min(until.saturating_duration_since(Instant::now()));
        }
        let ended = streams.wait(wait, status.is_none(), &mut buf, observer);
        if status.is_none() && ended {
            match child.try_wait() {
                Ok(Some(s)) => status = Some((Some(s), Instant::now())),
                Ok(None) => {}
                // Reaped by someone else (it has ended): its output is still
                // read to the end, as after any end.
                Err(_) => status = Some((None, Instant::now())),
            }
        }
        if let Some((_, exited_at)) = status {
            if streams.closed() {
                break;
            }
            if exited_at.elapsed() >= LEAK_WAIT {
                if !leaked {
                    // A descendant holds the pipes: kill what is left of the group, and
                    // what left the group (setsid) and was reparented to sortie.
                    leaked = true;
                    leftovers += kill_what_is_left(group, cmd);
                } else if exited_at.elapsed() >= LEAK_WAIT * 4 {
                    // Something beyond reach (not sortie's descendant) holds them: stop reading.
                    break;
                }
            }
        }
        if stopped.is_none() && status.is_none() {
            if let Some(reason) = supervision.reason(observer) {
                group.signal(os::SIGTERM);
                stopped = Some((reason, Instant::now()));
            }
        }
        if let Some((_, at)) = stopped {
            if !killed && status.is_none() && at.elapsed() >= supervision.grace {
                group.signal(os::SIGKILL);
                killed = true;
            }
        }
        observer.tick();
    }
    signals::remove_running_group(group.id());
    os::forget_child(pid);
    // The leader is reaped: any child sortie has now is something the step left running.
    leftovers += kill_what_is_left(group, cmd);
    ledger::ended(group);
    let outcome = match (stopped, status) {
        (Some((reason, _)), _) => Outcome::Stopped(reason),
        (None, Some((Some(s), _))) => exit_outcome(s),
        (None, _) => Outcome::SpawnFailed("the process could not be waited for".into()),
    };
    Finished {
        outcome,
        leaked,
        leftovers,
    }
}

/// Kill what is left of a step's group, and what left the group (setsid) and
/// was reparented to sortie; how many of those were still running (a child
/// that had ended by itself is only reaped).
fn kill_what_is_left(group: ProcessGroup, cmd: &Command) -> usize {
    let ended = os::ended_leftovers();
    group.signal(os::SIGKILL);
    let another_job_s = |pid: i32| {
        cmd.owner.as_ref().is_some_and(|(name, value)| {
            os::environ_value(pid, name).is_some_and(|theirs| theirs != *value)
        })
    };
    os::kill_leftovers(&another_job_s).saturating_sub(ended)
}

/// Apply the confinement in the child (see `os::setup_child`).
fn confine(command: &mut std::process::Command, confinement: &Confinement) {
    os::setup_child(
        command,
        os::ChildSetup {
            confine: !confinement.off,
            user: confinement.user.clone(),
            ruleset: confinement.sandbox.as_ref().map(|s| s.raw_fd()),
        },
    );
}

fn exit_outcome(status: ExitStatus) -> Outcome {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => Outcome::Exited(code),
        (None, Some(signal)) => Outcome::Signaled(signal),
        (None, None) => Outcome::Exited(-1),
    }
}

fn describe_spawn_error(cmd: &Command, e: &std::io::Error) -> String {
    let program = cmd.program.to_string_lossy();
    match e.kind() {
        std::io::ErrorKind::NotFound => format!("{program}: command not found"),
        std::io::ErrorKind::PermissionDenied => format!("{program}: permission denied"),
        _ => format!("{program}: cannot start: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// No time limit, no stop, a second's grace.
    fn patient() -> Supervision<'static> {
        fn never() -> Option<StopReason> {
            None
        }
        Supervision {
            until: None,
            stop: &never,
            grace: Duration::from_secs(1),
        }
    }

    fn shell(script: &str) -> Command {
        Command {
            program: "/bin/sh".into(),
            args: vec!["-c".into(), script.into()],
            env: vec![("PATH".into(), "/usr/bin:/bin".into())],
            cwd: std::env::temp_dir(),
            confinement: Confinement {
                off: true,
                ..Confinement::default()
            },
            stdin: Input::Empty,
            owner: None,
        }
    }

    /// Far more than a pipe holds, on both streams, then an exit code: every
    /// byte arrives, in order per stream, and the end is the process's own.
    #[test]
    fn every_byte_of_both_streams_arrives_and_then_the_end() {
        crate::testing::alone(
            "exec::tests::every_byte_of_both_streams_arrives_and_then_the_end",
            || {
                let script = "i=0; while [ $i -lt 2000 ]; do \
                          printf '%0999d\\n' $i; echo \"e$i\" >&2; i=$((i+1)); done; exit 3";
                let supervision = patient();
                let kept = capture(&shell(script), &supervision, usize::MAX);
                assert_eq!(kept.finished.outcome, Outcome::Exited(3));
                assert!(!kept.finished.leaked);
                let want: String = (0..2000).map(|i| format!("{i:0999}\n")).collect();
                assert_eq!(kept.stdout.len(), want.len());
                assert!(
                    kept.stdout == want.as_bytes(),
                    "stdout is whole and in order"
                );
                assert!(kept.stderr.starts_with(b"e0\ne1\ne2\n"));
            },
        );
    }

    /// A stop asked for before the process starts starts nothing.
    #[test]
    fn a_stop_asked_for_before_the_start_starts_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let mark = dir.path().join("ran");
        let supervision = Supervision {
            until: None,
            stop: &|| Some(StopReason::Interrupted),
            grace: Duration::from_secs(1),
        };
        let kept = capture(
            &shell(&format!("touch '{}'", mark.display())),
            &supervision,
            16,
        );
        assert_eq!(
            kept.finished.outcome,
            Outcome::Stopped(StopReason::Interrupted)
        );
        assert!(!mark.exists(), "the step ran");
    }

    /// A step that prints faster than its output is taken gets a 1 MiB pipe;
    /// one that prints little keeps the system's 64 KiB.
    #[test]
    fn only_a_step_that_fills_its_pipe_gets_a_larger_one() {
        crate::testing::alone(
            "exec::tests::only_a_step_that_fills_its_pipe_gets_a_larger_one",
            || {
                struct Slow(Vec<u8>);
                impl Observer for Slow {
                    fn output(&mut self, _: Stream, bytes: &[u8]) {
                        std::thread::sleep(Duration::from_millis(2));
                        self.0.extend_from_slice(bytes);
                    }
                    fn tick(&mut self) {}
                    fn aborted(&self) -> bool {
                        false
                    }
                }
                let size_after = |bytes: usize| {
                    let script = format!(
                        "python3 -c \"import fcntl, os; os.write(1, b'x' * {bytes}); \
                     os.write(1, b' %d' % fcntl.fcntl(1, 1032))\""
                    );
                    let supervision = patient();
                    let mut slow = Slow(Vec::new());
                    let finished = run(&shell(&script), &supervision, &mut slow);
                    assert_eq!(finished.outcome, Outcome::Exited(0));
                    assert_eq!(slow.0.iter().filter(|b| **b == b'x').count(), bytes);
                    let text = String::from_utf8_lossy(&slow.0[bytes..]).into_owned();
                    text.trim().parse::<usize>().unwrap()
                };
                assert_eq!(size_after(100), 64 * 1024);
                assert_eq!(size_after(4 << 20), PIPE_SIZE);
            },
        );
    }

    /// What a step leaves running is killed and counted; a child of it that
    /// had ended by itself is only reaped, not counted.
    #[test]
    fn only_what_was_left_running_counts_as_left_behind() {
        crate::testing::alone(
            "exec::tests::only_what_was_left_running_counts_as_left_behind",
            || {
                // As sortie is: what a step leaves behind is reparented to it.
                os::become_subreaper();
                let supervision = patient();
                // The child's parent becomes `sleep`, which never reaps it.
                let ended = capture(&shell("sh -c 'exit 0' & exec sleep 0.3"), &supervision, 64);
                assert_eq!(ended.finished.outcome, Outcome::Exited(0));
                assert_eq!(ended.finished.leftovers, 0);
                let running = capture(
                    &shell("(exec sleep 30 >/dev/null 2>&1 </dev/null) & exec sleep 0.3"),
                    &supervision,
                    64,
                );
                assert_eq!(running.finished.outcome, Outcome::Exited(0));
                assert_eq!(running.finished.leftovers, 1);
            },
        );
    }

    /// A process that never ends is stopped at its time limit, and one whose
    /// child keeps the pipes open after it ends is reported as leaking.
    #[test]
    fn a_time_limit_and_a_leak_are_seen_without_output() {
        crate::testing::alone(
            "exec::tests::a_time_limit_and_a_leak_are_seen_without_output",
            || {
                let supervision = Supervision {
                    until: Some(Instant::now() + Duration::from_millis(200)),
                    stop: &|| None,
                    grace: Duration::from_millis(200),
                };
                let kept = capture(&shell("trap '' TERM; sleep 30"), &supervision, 1024);
                assert_eq!(
                    kept.finished.outcome,
                    Outcome::Stopped(StopReason::TimedOut)
                );

                let supervision = patient();
                let kept = capture(&shell("sleep 30 & echo started"), &supervision, 1024);
                assert_eq!(kept.finished.outcome, Outcome::Exited(0));
                assert!(kept.finished.leaked, "the sleep held stdout");
                assert_eq!(kept.stdout, b"started\n");
            },
        );
    }
}
