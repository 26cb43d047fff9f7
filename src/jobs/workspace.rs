//! A job's private working directory.
//!
//! Each job gets a fresh directory (mode 0700 whatever the umask, made by tempfile) that is its
//! steps' working directory and holds its script files and result-data files. It
//! is removed when the job ends, unless `--keep-workspace` asks to keep it for
//! debugging, in which case its path is logged.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use anyhow::{Context, Result};

pub struct Workspace {
    dir: tempfile::TempDir,
    keep: bool,
}

impl Workspace {
    /// A new workspace named after the job, in `parent` (or the system's temp dir).
    pub fn create(parent: Option<&Path>, job_id: &str, keep: bool) -> Result<Workspace> {
        let prefix = format!("sortie-{job_id}-");
        let mut builder = tempfile::Builder::new();
        builder
            .prefix(&prefix)
            .permissions(std::fs::Permissions::from_mode(0o700));
        let dir = match parent {
            Some(parent) => builder.tempdir_in(parent),
            None => builder.tempdir(),
        }
        .context("creating the job's workspace")
        .map_err(crate::exit::Failure::io)?;
        Ok(Workspace { dir, keep })
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Remove the workspace, or keep it and say where it is.
    pub fn finish(self) {
        if self.keep {
            let path = self.dir.keep();
            tracing::info!(workspace = %path.display(), "workspace kept");
        }
    }
}
