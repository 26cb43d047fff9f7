//! Secrets: references named by the job, resolved only here, on the runner.
//!
//! A job spec names a secret by reference (`env:DB_PASS`, `file:kubeconfig`,
//! `bao:secret/app#password`, …); only sortie resolves it, from providers
//! configured on the runner, before any step runs. A provider that fails fails
//! the job with an error naming the reference and the provider, never a value.
//! Resolved values are [`Secret`]s: they reach steps as environment variables or
//! 0600 files in the workspace, are registered with the masker, and never appear
//! in argv, a log line or an upload.

pub mod aws;
mod bao;
mod local;
pub mod mask;
pub mod own;
mod sigv4;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{anyhow, bail, Result};

use crate::net::tls::{Identity, Roots};
use crate::secret::Secret;

/// How a resolved secret reaches the steps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// The environment variable named by the key holds the value.
    Env,
    /// A 0600 file in the workspace holds the value; the variable holds its path.
    File,
}

/// Where a secret comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reference {
    Env(String),
    File(String),
    Command(String),
    /// KV v2: mount, path under the mount, field.
    Bao {
        mount: String,
        path: String,
        field: String,
    },
    AwsSecretsManager {
        id: String,
        key: Option<String>,
    },
    AwsParameter(String),
}

impl Reference {
    /// Parse `provider:rest`.
    pub fn parse(text: &str) -> Result<Reference> {
        let (provider, rest) = text
            .split_once(':')
            .ok_or_else(|| anyhow!("{text:?} is not a reference such as \"env:NAME\""))?;
        if rest.is_empty() {
            bail!("{text:?} names no secret");
        }
        Ok(match provider {
            "env" => Reference::Env(rest.to_string()),
            "file" => Reference::File(rest.to_string()),
            "cmd" => Reference::Command(rest.to_string()),
            "bao" | "vault" => {
                let (path, field) = rest
                    .split_once('#')
                    .ok_or_else(|| anyhow!("{text:?} needs a field: {provider}:MOUNT/PATH#FIELD"))?;
                let (mount, path) = path
                    .trim_matches('/')
                    .split_once('/')
                    .ok_or_else(|| anyhow!("{text:?} needs a mount and a path: {provider}:MOUNT/PATH#FIELD"))?;
                if field.is_empty() || path.is_empty() || path.split('/').any(|s| s == ".." || s == ".") {
                    bail!("{text:?} is not {provider}:MOUNT/PATH#FIELD");
                }
                Reference::Bao {
                    mount: mount.to_string(),
                    path: path.to_string(),
                    field: field.to_string(),
                }
            }
            "aws-sm" => match rest.split_once('#') {
                Some((id, key)) if !key.is_empty() => Reference::AwsSecretsManager {
                    id: id.to_string(),
                    key: Some(key.to_string()),
                },
                Some(_) => bail!("{text:?}: empty JSON key after #"),
                None => Reference::AwsSecretsManager {
                    id: rest.to_string(),
                    key: None,
                },
            },
            "aws-ssm" => Reference::AwsParameter(rest.to_string()),
            other => bail!(
                "{text:?}: unknown secret provider {other:?} (env, file, cmd, bao, vault, aws-sm, aws-ssm)"
            ),
        })
    }

    /// The provider's name, for error messages.
    pub fn provider(&self) -> &'static str {
        match self {
            Reference::Env(_) => "env",
            Reference::File(_) => "file",
            Reference::Command(_) => "cmd",
            Reference::Bao { .. } => "bao",
            Reference::AwsSecretsManager { .. } => "aws-sm",
            Reference::AwsParameter(_) => "aws-ssm",
        }
    }
}

/// A secret as the job spec names it.
#[derive(Debug, Clone)]
pub struct Wanted {
    /// The text of the reference, as written.
    pub text: String,
    pub reference: Reference,
    pub delivery: Delivery,
}

/// OpenBao / Vault settings.
#[derive(Debug, Clone, Default)]
pub struct BaoConfig {
    pub addr: Option<String>,
    pub token_file: Option<PathBuf>,
    pub role_id_file: Option<PathBuf>,
    pub secret_id_file: Option<PathBuf>,
    pub approle_mount: String,
    pub k8s_role: Option<String>,
    pub k8s_token_file: PathBuf,
    pub k8s_mount: String,
    pub namespace: Option<String>,
    pub roots: Option<Roots>,
    pub identity: Option<Identity>,
    pub allow_insecure_http: bool,
}

/// Providers as configured on this runner.
#[derive(Debug, Clone)]
pub struct Providers {
    pub env_prefix: String,
    pub dir: Option<PathBuf>,
    /// sortie's own credential files (the token, the client key): never a job's secret,
    /// even when they sit in the secrets directory (systemd's credentials).
    pub reserved: Vec<PathBuf>,
    pub command: Option<PathBuf>,
    pub command_timeout: Duration,
    pub bao: BaoConfig,
    pub min_length: usize,
    pub request_timeout: Duration,
}

/// A resolved secret.
pub struct Resolved {
    pub key: String,
    pub value: Secret,
    pub delivery: Delivery,
}

/// Resolve every wanted secret, or fail naming the first that could not be.
pub fn resolve(wanted: &BTreeMap<String, Wanted>, providers: &Providers) -> Result<Vec<Resolved>> {
    let mut bao = None;
    let mut out = Vec::new();
    for (key, want) in wanted {
        let value = match &want.reference {
            Reference::Env(name) => local::env(&providers.env_prefix, name),
            Reference::File(name) => {
                local::file(providers.dir.as_deref(), name, &providers.reserved)
            }
            Reference::Command(name) => local::command(
                providers.command.as_deref(),
                name,
                providers.command_timeout,
            ),
            Reference::Bao { mount, path, field } => {
                if bao.is_none() {
                    bao = Some(bao::Client::new(&providers.bao, providers.request_timeout)?);
                }
                bao.as_mut().expect("just set").read(mount, path, field)
            }
            Reference::AwsSecretsManager { id, key } => {
                aws::secrets_manager(id, key.as_deref(), providers.request_timeout)
            }
            Reference::AwsParameter(name) => aws::parameter(name, providers.request_timeout),
        }
        .map_err(|e| {
            anyhow!(
                "secret {key} ({}, provider {}): {e:#}",
                want.text,
                want.reference.provider()
            )
        })?;
        let value = value.expose().trim_end_matches(['\n', '\r']).to_string();
        if value.is_empty() {
            bail!(
                "secret {key} ({}, provider {}): the value is empty",
                want.text,
                want.reference.provider()
            );
        }
        out.push(Resolved {
            key: key.clone(),
            value: Secret::new(value),
            delivery: want.delivery,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::Reference;

    #[test]
    fn references_parse_and_bad_ones_are_named() {
        assert_eq!(
            Reference::parse("env:DB").unwrap(),
            Reference::Env("DB".into())
        );
        assert_eq!(
            Reference::parse("vault:secret/app/db#password").unwrap(),
            Reference::Bao {
                mount: "secret".into(),
                path: "app/db".into(),
                field: "password".into()
            }
        );
        assert_eq!(
            Reference::parse("aws-sm:prod/db#user").unwrap(),
            Reference::AwsSecretsManager {
                id: "prod/db".into(),
                key: Some("user".into())
            }
        );
        for bad in [
            "nope",
            "env:",
            "magic:x",
            "bao:secret#f",
            "bao:secret/a",
            "bao:secret/../x#f",
        ] {
            assert!(Reference::parse(bad).is_err(), "{bad}");
        }
    }
}
