//! OpenBao / HashiCorp Vault, KV version 2.
//!
//! Authentication by token file, AppRole (role id and secret id files) or
//! Kubernetes (the service account's token file). The token lives in memory for
//! the shot only, never on disk; when a read is refused with 403 the token is
//! obtained again once (a login-based token expired, or a token file rotated).

use std::path::Path;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use serde_json::{json, Value};

use super::BaoConfig;
use crate::net;
use crate::secret::Secret;

enum Auth {
    TokenFile(std::path::PathBuf),
    AppRole {
        mount: String,
        role_id: std::path::PathBuf,
        secret_id: std::path::PathBuf,
    },
    Kubernetes {
        mount: String,
        role: String,
        jwt: std::path::PathBuf,
    },
}

pub struct Client {
    agent: ureq::Agent,
    base: String,
    namespace: Option<String>,
    auth: Auth,
    token: Option<Secret>,
}

fn read_file(path: &Path, what: &str) -> Result<String> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the {what} file {}", path.display()))?;
    let text = text.trim();
    if text.is_empty() {
        bail!("the {what} file {} is empty", path.display());
    }
    super::own::register(&Secret::new(text.to_string()));
    Ok(text.to_string())
}

impl Client {
    pub fn new(config: &BaoConfig, timeout: Duration) -> Result<Client> {
        let addr = config.addr.as_deref().ok_or_else(|| {
            anyhow!("no OpenBao address: give --bao-addr (or BAO_ADDR / VAULT_ADDR)")
        })?;
        let base = net::base_url(addr, config.allow_insecure_http, "--bao-addr")?;
        let auth = if let Some(file) = &config.token_file {
            Auth::TokenFile(file.clone())
        } else if let (Some(role_id), Some(secret_id)) =
            (&config.role_id_file, &config.secret_id_file)
        {
            Auth::AppRole {
                mount: config.approle_mount.clone(),
                role_id: role_id.clone(),
                secret_id: secret_id.clone(),
            }
        } else if let Some(role) = &config.k8s_role {
            Auth::Kubernetes {
                mount: config.k8s_mount.clone(),
                role: role.clone(),
                jwt: config.k8s_token_file.clone(),
            }
        } else {
            bail!(
                "no OpenBao authentication configured: give --bao-token-file, \
                 --bao-role-id-file with --bao-secret-id-file, or --bao-k8s-role"
            );
        };
        Ok(Client {
            agent: net::agent(
                config.roots.as_ref(),
                config.identity.as_ref(),
                timeout,
                timeout,
            )?,
            base,
            namespace: config.namespace.clone(),
            auth,
            token: None,
        })
    }

    fn request(&self, method: &str, path: &str, body: Option<Value>) -> Result<(u16, Value)> {
        let url = format!("{}v1/{path}", self.base);
        let mut headers = vec![("content-type", "application/json")];
        if let Some(token) = &self.token {
            headers.push(("X-Vault-Token", token.expose()));
        }
        if let Some(ns) = &self.namespace {
            headers.push(("X-Vault-Namespace", ns));
        }
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let answer = net::request(&self.agent, method, &url, &headers, body.into_bytes())?;
        let (status, bytes) = (answer.status, answer.body);
        let value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Ok((status, value))
    }

    fn login(&mut self) -> Result<()> {
        self.token = None;
        let (mount, body) = match &self.auth {
            Auth::TokenFile(file) => {
                let token = Secret::new(read_file(file, "token")?);
                super::own::register(&token);
                self.token = Some(token);
                return Ok(());
            }
            Auth::AppRole {
                mount,
                role_id,
                secret_id,
            } => (
                mount.clone(),
                json!({ "role_id": read_file(role_id, "role id")?, "secret_id": read_file(secret_id, "secret id")? }),
            ),
            Auth::Kubernetes { mount, role, jwt } => (
                mount.clone(),
                json!({ "role": role, "jwt": read_file(jwt, "service account token")? }),
            ),
        };
        let path = format!("auth/{}/login", net::encode_segment(&mount));
        let (status, answer) = self.request("POST", &path, Some(body))?;
        if status != 200 {
            bail!(
                "login at auth/{mount} refused ({status}{})",
                errors(&answer)
            );
        }
        let token = answer["auth"]["client_token"]
            .as_str()
            .ok_or_else(|| anyhow!("login at auth/{mount} gave no token"))?;
        let token = Secret::new(token.to_string());
        super::own::register(&token);
        self.token = Some(token);
        Ok(())
    }

    /// Read `field` of the KV v2 secret at `mount`/`path`.
    pub fn read(&mut self, mount: &str, path: &str, field: &str) -> Result<Secret> {
        let url_path = format!(
            "{}/data/{}",
            net::encode_segment(mount),
            path.split('/')
                .map(net::encode_segment)
                .collect::<Vec<_>>()
                .join("/")
        );
        if self.token.is_none() {
            self.login()?;
        }
        let mut answer = self.request("GET", &url_path, None)?;
        if answer.0 == 403 {
            self.login()?;
            answer = self.request("GET", &url_path, None)?;
        }
        let (status, value) = answer;
        match status {
            200 => {}
            403 => bail!("permission denied reading {mount}/{path}"),
            404 => bail!("no secret at {mount}/{path}"),
            _ => bail!("reading {mount}/{path} failed ({status}{})", errors(&value)),
        }
        match &value["data"]["data"][field] {
            Value::Null => bail!("{mount}/{path} has no field {field:?}"),
            Value::String(s) => Ok(Secret::new(s.clone())),
            other => Ok(Secret::new(other.to_string())),
        }
    }
}

/// The `errors` list of an answer, as ": a; b" (never holds secret values).
fn errors(answer: &Value) -> String {
    match answer["errors"].as_array() {
        Some(list) if !list.is_empty() => {
            let texts: Vec<&str> = list.iter().filter_map(Value::as_str).collect();
            format!(": {}", texts.join("; "))
        }
        _ => String::new(),
    }
}
