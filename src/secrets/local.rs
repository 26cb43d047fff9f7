//! Providers local to the host: environment variables, a directory of files, a command.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};

use crate::secret::Secret;

/// `env:NAME` reads `<prefix>NAME`: only variables meant as secrets can be read.
pub fn env(prefix: &str, name: &str) -> Result<Secret> {
    let var = format!("{prefix}{name}");
    match super::own::var(&var) {
        Some(value) => Ok(value),
        None => bail!("{var} is not set (or not UTF-8)"),
    }
}

/// `file:NAME` reads a file of the secrets directory. The directory may hold symlinks
/// (a Kubernetes secret volume's `..data` layout), but nothing may lead out of it.
pub fn file(dir: Option<&Path>, name: &str, reserved: &[PathBuf]) -> Result<Secret> {
    let dir = dir.ok_or_else(|| {
        anyhow!("no secrets directory: give --secrets-dir or run with $CREDENTIALS_DIRECTORY")
    })?;
    if name.contains('/') || name.starts_with("..") || name.contains('\0') {
        bail!("{name:?} is not a file name inside the secrets directory");
    }
    let root = dir
        .canonicalize()
        .with_context(|| format!("secrets directory {}", dir.display()))?;
    let path = root
        .join(name)
        .canonicalize()
        .map_err(|e| anyhow!("no secret {name:?} in {}: {e}", dir.display()))?;
    if !path.starts_with(&root) {
        bail!(
            "{name:?} leads out of the secrets directory {}",
            dir.display()
        );
    }
    if reserved
        .iter()
        .any(|r| r.canonicalize().is_ok_and(|r| r == path))
    {
        bail!("{name:?} is one of sortie's own credentials, not a secret for jobs");
    }
    let bytes = std::fs::read(&path).map_err(|e| anyhow!("reading {name:?}: {e}"))?;
    String::from_utf8(bytes)
        .map(Secret::new)
        .map_err(|_| anyhow!("{name:?} is not UTF-8 text"))
}

/// `cmd:NAME` runs the configured command with NAME as its argument; its stdout is
/// the value. Its stderr is read and discarded: it may echo what it handles.
pub fn command(program: Option<&Path>, name: &str, timeout: Duration) -> Result<Secret> {
    let program = program.ok_or_else(|| anyhow!("no --secrets-command configured"))?;
    // Kept: a step of another job that ends meanwhile (--parallel) must not
    // take it for a leftover.
    let mut child = crate::os::spawn_kept(
        Command::new(program)
            .arg(name)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null()),
    )
    .map_err(|e| anyhow!("cannot run {}: {e}", program.display()))?;
    let pid = child.id();
    let value = answer(program, name, &mut child, timeout);
    crate::os::forget_child(pid);
    value
}

/// What the secrets command `child` printed for `name`, within `timeout`.
fn answer(
    program: &Path,
    name: &str,
    child: &mut std::process::Child,
    timeout: Duration,
) -> Result<Secret> {
    // The name on stdin too, for commands that prefer to read it.
    if let Some(mut stdin) = child.stdin.take() {
        let _ = writeln!(stdin, "{name}");
    }
    let stdout = child.stdout.take().expect("stdout is piped");
    let reader = std::thread::spawn(move || {
        let mut out = Vec::new();
        stdout.take(1024 * 1024).read_to_end(&mut out).map(|_| out)
    });
    let until = Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if Instant::now() >= until {
            let _ = child.kill();
            let _ = child.wait();
            bail!(
                "{} did not answer within {}",
                program.display(),
                humantime::format_duration(timeout)
            );
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let out = reader
        .join()
        .map_err(|_| anyhow!("reading the command's output failed"))??;
    if !status.success() {
        bail!("{} failed ({status})", program.display());
    }
    String::from_utf8(out)
        .map(Secret::new)
        .map_err(|_| anyhow!("{} printed something that is not UTF-8", program.display()))
}
