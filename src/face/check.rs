//! `sortie check`: is this runner ready? Claims nothing.
//!
//! It validates the configuration (every problem, one line each), confirms the
//! state dir is writable, and reaches the control plane with the configured
//! credentials. Protocol v1 has no ping, so authentication is proved with a
//! heartbeat for a job that does not exist: a fenced answer (409/410, or any
//! other refusal that is not 401/403) means the server heard us and let us in.

use std::time::Instant;

use anyhow::anyhow;

use crate::control::spool::SpoolControl;
use crate::control::Target;
use crate::control::{ControlError, JobRef};
use crate::exit::Code;
use crate::face::cli::CheckArgs;
use crate::face::config::{self, Connect};

/// Run every check; the exit code is that of the first problem found.
pub fn run(args: &CheckArgs) -> Code {
    let connect = match config::build_connect(&args.connect).and_then(|mut connect| {
        // The token a shot would use, from its provider when --token-from names one.
        config::resolve_token_from(&args.connect, &args.secrets, &mut connect)
            .map_err(|e| vec![e])?;
        Ok(connect)
    }) {
        Ok(connect) => connect,
        Err(problems) => {
            for problem in problems {
                eprintln!("sortie: check: {problem:#}");
            }
            return Code::CONFIG;
        }
    };
    println!(
        "ok: configuration (runner {:?}, tags {:?})",
        connect.runner_id, connect.tags
    );
    if let Some(roots) = &connect.endpoint.roots {
        println!("ok: CA file: {} certificate(s)", roots.certs.len());
    }
    if let Some(identity) = &connect.endpoint.identity {
        println!(
            "ok: client certificate and key match ({} in chain)",
            identity.chain.len()
        );
    }
    let mut code = Code::OK;
    match state_dir_writable(&connect) {
        Ok(what) => println!("ok: {what}"),
        Err(e) => {
            eprintln!("sortie: check: {e:#}");
            code = Code::CONFIG;
        }
    }
    match crate::os::landlock::abi() {
        0 => println!(
            "warning: {}: steps run with no_new_privs but are not kept out of the runner's \
             files (see sortie(1), SANDBOX)",
            crate::os::landlock::missing()
        ),
        abi => println!("ok: steps are sandboxed with Landlock (ABI {abi})"),
    }
    match reach(&connect) {
        Ok(what) => println!("ok: {what}"),
        Err(e) => {
            eprintln!("sortie: check: {e}");
            if code == Code::OK {
                code = e.cause().code();
            }
        }
    }
    code
}

/// The state dir can be written (or, when it does not exist yet, made by the
/// first shot); nothing is created.
fn state_dir_writable(connect: &Connect) -> anyhow::Result<String> {
    let dir = &connect.state_dir;
    let existing = dir
        .ancestors()
        .find(|a| a.exists())
        .ok_or_else(|| anyhow!("no part of {} exists", dir.display()))?;
    if !existing.is_dir() {
        return Err(anyhow!("{} is not a directory", existing.display()));
    }
    if !crate::os::writable(existing) {
        return Err(anyhow!(
            "state dir {}: {} is not writable",
            dir.display(),
            existing.display()
        ));
    }
    Ok(if existing == dir {
        format!("state dir {} is writable", dir.display())
    } else {
        format!(
            "state dir {} does not exist yet; the first shot creates it in {}",
            dir.display(),
            existing.display()
        )
    })
}

fn reach(connect: &Connect) -> Result<String, ControlError> {
    if let Target::Spool { root } = &connect.endpoint.target {
        return SpoolControl::check(root)
            .map(|()| format!("spool {} is usable", root.display()))
            .map_err(|e| {
                ControlError::Config(anyhow!("{e} (create the spool with `sortie spool init`)"))
            });
    }
    let deadline = Instant::now() + connect.endpoint.request_timeout;
    let cp = crate::control::open(
        &connect.endpoint,
        Some(deadline),
        crate::signals::interrupted,
    )?;
    match &connect.endpoint.target {
        Target::Spool { .. } => unreachable!("checked above"),
        Target::Http { base } => {
            let probe = JobRef {
                id: "sortie-check".into(),
                attempt: 0,
                lease_token: "sortie-check".into(),
                log_tail_bytes: 0,
                zstd_log: false,
            };
            match cp.heartbeat(&probe, 0) {
                Ok(_) | Err(ControlError::Fenced(_)) | Err(ControlError::Refused(_)) => Ok(
                    format!("control plane {base} reached and the credentials accepted"),
                ),
                Err(e) => Err(e),
            }
        }
    }
}
