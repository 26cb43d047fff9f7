//! `sortie check`: is this runner ready? Claims nothing.
//!
//! It validates the configuration (every problem, one line each), confirms the
//! state dir is writable, and reaches the control plane with the configured
//! credentials. Protocol v1 has no ping, so authentication is proved with a
//! heartbeat for a job that does not exist: a fenced answer (409/410, or any
//! other refusal that is not 401/403) means the server heard us and let us in.

use std::time::Instant;

use anyhow::anyhow;

use crate::control::Target;
use crate::control::{ControlError, JobRef};
use crate::exit::Code;
use crate::face::cli::ConnectArgs;
use crate::face::config::{self, Connect};

/// Run every check; the exit code is that of the first problem found.
pub fn run(args: &ConnectArgs) -> Code {
    let connect = match config::build_connect(args) {
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
        Ok(()) => println!("ok: state dir {} is writable", connect.state_dir.display()),
        Err(e) => {
            eprintln!("sortie: check: {e:#}");
            code = Code::CONFIG;
        }
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

fn state_dir_writable(connect: &Connect) -> anyhow::Result<()> {
    let dir = &connect.state_dir;
    std::fs::create_dir_all(dir)
        .map_err(|e| anyhow!("cannot create state dir {}: {e}", dir.display()))?;
    tempfile::NamedTempFile::new_in(dir)
        .map(drop)
        .map_err(|e| anyhow!("state dir {} is not writable: {e}", dir.display()))
}

fn reach(connect: &Connect) -> Result<String, ControlError> {
    let deadline = Instant::now() + connect.endpoint.request_timeout;
    let cp = crate::control::open(
        &connect.endpoint,
        Some(deadline),
        crate::signals::interrupted,
    )?;
    match &connect.endpoint.target {
        Target::Spool { root } => Ok(format!("spool {} is usable", root.display())),
        Target::Http { base } => {
            let probe = JobRef {
                id: "sortie-check".into(),
                attempt: 0,
                lease_token: "sortie-check".into(),
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
