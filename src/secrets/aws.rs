//! AWS Secrets Manager and SSM Parameter Store, for runners on Lambda, EKS or
//! EC2, and EC2's DescribeInstances for inventory discovery: one credential
//! chain and one signer for every AWS call sortie makes.
//!
//! Credentials and region come from the standard variables (`AWS_ACCESS_KEY_ID`,
//! `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, `AWS_REGION`), as a Lambda
//! function gets them, or from `AWS_ROLE_ARN` and `AWS_WEB_IDENTITY_TOKEN_FILE`,
//! as an EKS pod with IRSA gets them (exchanged with STS); `AWS_ENDPOINT_URL_SECRETS_MANAGER`, `AWS_ENDPOINT_URL_SSM`
//! or `AWS_ENDPOINT_URL` point at another endpoint, and `AWS_CA_BUNDLE` adds
//! trust roots, as in the AWS tools.

use std::path::Path;
use std::time::{Duration, SystemTime};

use anyhow::{anyhow, bail, Result};
use serde_json::{json, Value};

use super::sigv4::{self, Credentials};
use crate::net;
use crate::net::tls::Roots;
use crate::secret::Secret;

fn env(name: &str) -> Option<String> {
    super::own::var(name)
        .map(|v| v.expose().to_string())
        .or_else(|| std::env::var(name).ok())
        .filter(|v| !v.is_empty())
}

/// Credentials from the environment: keys (Lambda, EC2, a CI job), or a web identity
/// token and a role (EKS IRSA), exchanged with STS for session credentials.
fn credentials(region: &str, timeout: Duration) -> Result<Credentials> {
    if let Some(access_key_id) = env("AWS_ACCESS_KEY_ID") {
        let secret = env("AWS_SECRET_ACCESS_KEY")
            .ok_or_else(|| anyhow!("no AWS credentials: AWS_SECRET_ACCESS_KEY is not set"))?;
        return Ok(Credentials {
            access_key_id,
            secret_access_key: Secret::new(secret),
            session_token: env("AWS_SESSION_TOKEN").map(Secret::new),
        });
    }
    match (env("AWS_ROLE_ARN"), env("AWS_WEB_IDENTITY_TOKEN_FILE")) {
        (Some(role), Some(token_file)) => {
            web_identity(&role, Path::new(&token_file), region, timeout)
        }
        _ => bail!(
            "no AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or \
             AWS_ROLE_ARN and AWS_WEB_IDENTITY_TOKEN_FILE (EKS IRSA)"
        ),
    }
}

/// STS AssumeRoleWithWebIdentity: an unsigned call that trades the web identity token
/// for session credentials of the role.
fn web_identity(
    role: &str,
    token_file: &Path,
    region: &str,
    timeout: Duration,
) -> Result<Credentials> {
    let token = std::fs::read_to_string(token_file)
        .map(|t| Secret::new(t.trim().to_string()))
        .map_err(|e| {
            anyhow!(
                "cannot read the web identity token {}: {e}",
                token_file.display()
            )
        })?;
    super::own::register(&token);
    let endpoint = env("AWS_ENDPOINT_URL_STS")
        .or_else(|| env("AWS_ENDPOINT_URL"))
        .unwrap_or_else(|| format!("https://sts.{region}.amazonaws.com"));
    let base = net::base_url(&endpoint, false, "AWS_ENDPOINT_URL_STS")?;
    let session =
        env("AWS_ROLE_SESSION_NAME").unwrap_or_else(|| format!("sortie-{}", std::process::id()));
    let form = [
        ("Action", "AssumeRoleWithWebIdentity"),
        ("Version", "2011-06-15"),
        ("RoleArn", role),
        ("RoleSessionName", &session),
        ("WebIdentityToken", token.expose()),
    ]
    .iter()
    .map(|(k, v)| format!("{k}={}", net::encode_segment(v)))
    .collect::<Vec<_>>()
    .join("&");
    let agent = net::agent(ca_bundle()?.as_ref(), None, timeout, timeout)?;
    let headers = [("content-type", "application/x-www-form-urlencoded")];
    let answer = net::request(&agent, "POST", &base, &headers, form.into_bytes())?;
    let (status, body) = (answer.status, answer.body);
    if status != 200 {
        bail!(
            "AssumeRoleWithWebIdentity for {role} refused ({status}: {})",
            error_code(&body)
        );
    }
    let text = String::from_utf8_lossy(&body);
    let tag = |name: &str| {
        let open = format!("<{name}>");
        let start = text.find(&open)? + open.len();
        let end = text[start..].find(&format!("</{name}>"))? + start;
        Some(text[start..end].to_string())
    };
    match (
        tag("AccessKeyId"),
        tag("SecretAccessKey"),
        tag("SessionToken"),
    ) {
        (Some(id), Some(secret), Some(session_token)) => {
            let (secret, session_token) = (Secret::new(secret), Secret::new(session_token));
            super::own::register(&secret);
            super::own::register(&session_token);
            Ok(Credentials {
                access_key_id: id,
                secret_access_key: secret,
                session_token: Some(session_token),
            })
        }
        _ => bail!("AssumeRoleWithWebIdentity for {role} gave no credentials"),
    }
}

/// Trust roots from `AWS_CA_BUNDLE`, as in the AWS tools.
fn ca_bundle() -> Result<Option<Roots>> {
    env("AWS_CA_BUNDLE")
        .map(|path| Roots::load(Path::new(&path)))
        .transpose()
}

/// One signed JSON call; the answer's body on 200.
fn call(
    service: &str,
    endpoint_var: &str,
    target: &str,
    body: Value,
    timeout: Duration,
) -> Result<Value> {
    let region = region()?;
    let headers = [
        ("content-type", "application/x-amz-json-1.1"),
        ("x-amz-target", target),
    ];
    let (status, bytes) = signed_post(
        service,
        endpoint_var,
        &region,
        &headers,
        body.to_string().into_bytes(),
        timeout,
    )?;
    if status == 200 {
        return serde_json::from_slice(&bytes).map_err(|e| anyhow!("the answer is not JSON: {e}"));
    }
    bail!("{target} refused ({status}: {})", error_code(&bytes))
}

/// The region: `AWS_REGION`, else `AWS_DEFAULT_REGION`.
fn region() -> Result<String> {
    env("AWS_REGION")
        .or_else(|| env("AWS_DEFAULT_REGION"))
        .ok_or_else(|| anyhow!("no AWS region: set AWS_REGION"))
}

/// A `POST /` to `service` in `region`, signed with the environment's
/// credentials; its status and body.
fn signed_post(
    service: &str,
    endpoint_var: &str,
    region: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
    timeout: Duration,
) -> Result<(u16, Vec<u8>)> {
    let endpoint = env(endpoint_var)
        .or_else(|| env("AWS_ENDPOINT_URL"))
        .unwrap_or_else(|| format!("https://{service}.{region}.amazonaws.com"));
    let base = net::base_url(&endpoint, false, endpoint_var)?;
    let host = base
        .split_once("://")
        .and_then(|(_, rest)| rest.split('/').next())
        .ok_or_else(|| anyhow!("{endpoint_var} {endpoint:?} has no host"))?
        .to_string();
    let agent = net::agent(ca_bundle()?.as_ref(), None, timeout, timeout)?;
    let amz_date: String = humantime::format_rfc3339_seconds(SystemTime::now())
        .to_string()
        .chars()
        .filter(|c| *c != '-' && *c != ':')
        .collect();
    let signed = sigv4::sign(
        &credentials(region, timeout)?,
        region,
        service,
        &host,
        &amz_date,
        headers,
        &body,
    );
    let all: Vec<(String, String)> = headers
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .chain(signed)
        .collect();
    let all: Vec<(&str, &str)> = all.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let answer = net::request(&agent, "POST", &base, &all, body)?;
    Ok((answer.status, answer.body))
}

/// EC2 `DescribeInstances` in `region` (the Query API, one page of up to
/// 1000 instances from `token` on), `filters` as EC2 takes them
/// (`tag:env` → values); the answer's XML. `AWS_ENDPOINT_URL_EC2` or
/// `AWS_ENDPOINT_URL` points at another endpoint.
pub fn describe_instances(
    region: &str,
    filters: &std::collections::BTreeMap<String, Vec<String>>,
    token: Option<&str>,
    timeout: Duration,
) -> Result<String> {
    let mut form = vec![
        ("Action".to_string(), "DescribeInstances".to_string()),
        ("Version".to_string(), "2016-11-15".to_string()),
        ("MaxResults".to_string(), "1000".to_string()),
    ];
    for (i, (name, values)) in filters.iter().enumerate() {
        form.push((format!("Filter.{}.Name", i + 1), name.clone()));
        for (j, value) in values.iter().enumerate() {
            form.push((format!("Filter.{}.Value.{}", i + 1, j + 1), value.clone()));
        }
    }
    if let Some(token) = token {
        form.push(("NextToken".to_string(), token.to_string()));
    }
    let body = form
        .iter()
        .map(|(k, v)| format!("{k}={}", net::encode_segment(v)))
        .collect::<Vec<_>>()
        .join("&");
    let headers = [(
        "content-type",
        "application/x-www-form-urlencoded; charset=utf-8",
    )];
    let (status, bytes) = signed_post(
        "ec2",
        "AWS_ENDPOINT_URL_EC2",
        region,
        &headers,
        body.into_bytes(),
        timeout,
    )?;
    if status != 200 {
        bail!(
            "DescribeInstances in {region} refused ({status}: {})",
            error_code(&bytes)
        );
    }
    String::from_utf8(bytes).map_err(|_| anyhow!("DescribeInstances answered no text"))
}

/// The region to use when a source names none.
pub fn default_region() -> Result<String> {
    region()
}

/// The error's code: `__type` of a JSON error, or `<Code>` of an XML one.
fn error_code(body: &[u8]) -> String {
    if let Ok(value) = serde_json::from_slice::<Value>(body) {
        if let Some(kind) = value["__type"].as_str() {
            return kind.rsplit('#').next().unwrap_or(kind).to_string();
        }
    }
    let text = String::from_utf8_lossy(body);
    match (text.find("<Code>"), text.find("</Code>")) {
        (Some(a), Some(b)) if b > a => text[a + 6..b].to_string(),
        _ => "no error code".to_string(),
    }
}

/// `aws-sm:NAME[#KEY]`: a secret's string, or one key of it when it holds JSON.
pub fn secrets_manager(id: &str, key: Option<&str>, timeout: Duration) -> Result<Secret> {
    let answer = call(
        "secretsmanager",
        "AWS_ENDPOINT_URL_SECRETS_MANAGER",
        "secretsmanager.GetSecretValue",
        json!({ "SecretId": id }),
        timeout,
    )?;
    let text = answer["SecretString"]
        .as_str()
        .ok_or_else(|| anyhow!("{id} has no SecretString"))?;
    let Some(key) = key else {
        return Ok(Secret::new(text.to_string()));
    };
    let parsed: Value = serde_json::from_str(text)
        .map_err(|_| anyhow!("{id} does not hold JSON, so it has no key {key:?}"))?;
    match &parsed[key] {
        Value::String(s) => Ok(Secret::new(s.clone())),
        Value::Null => bail!("{id} has no key {key:?}"),
        other => Ok(Secret::new(other.to_string())),
    }
}

/// `aws-ssm:/path`: a parameter, decrypted.
pub fn parameter(name: &str, timeout: Duration) -> Result<Secret> {
    let answer = call(
        "ssm",
        "AWS_ENDPOINT_URL_SSM",
        "AmazonSSM.GetParameter",
        json!({ "Name": name, "WithDecryption": true }),
        timeout,
    )?;
    answer["Parameter"]["Value"]
        .as_str()
        .map(|v| Secret::new(v.to_string()))
        .ok_or_else(|| anyhow!("{name} has no value"))
}
