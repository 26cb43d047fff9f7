//! HTTP agents: one way to build them, for the control plane and secret providers.
//!
//! Each peer gets one ureq agent, built here with explicit timeouts, status codes
//! returned rather than turned into errors (so error bodies can be read), no
//! redirects, the given trust roots and client identity, and the proxy from
//! `HTTPS_PROXY`/`ALL_PROXY`/`NO_PROXY`. URLs follow one rule: https, or plain
//! http to a loopback address only, unless insecure http is explicitly allowed.

use std::time::Duration;

use anyhow::{anyhow, bail, Result};
use ureq::Agent;

use crate::tls::{self, Identity, Roots};

/// Build an agent.
pub fn agent(
    roots: Option<&Roots>,
    identity: Option<&Identity>,
    connect_timeout: Duration,
    request_timeout: Duration,
) -> Result<Agent> {
    tls::install_provider();
    let mut tls_config = ureq::tls::TlsConfig::builder();
    if let Some(roots) = roots {
        tls_config = tls_config.root_certs(tls::ureq_roots(roots));
    }
    if let Some(identity) = identity {
        tls_config = tls_config.client_cert(Some(tls::ureq_identity(identity)?));
    }
    let proxy = ureq::Proxy::try_from_env();
    if let Some(p) = &proxy {
        tracing::debug!(proxy = %format!("{}:{}", p.host(), p.port()), "using a proxy from the environment");
    }
    let config = Agent::config_builder()
        .tls_config(tls_config.build())
        .proxy(proxy)
        .http_status_as_error(false)
        .user_agent(format!("sortie/{}", env!("CARGO_PKG_VERSION")))
        .timeout_connect(Some(connect_timeout))
        .timeout_global(Some(request_timeout))
        .max_redirects(0)
        .build();
    Ok(config.new_agent())
}

/// Check a base URL's scheme (`what` names the flag in errors); returns it with a
/// trailing slash.
pub fn base_url(url: &str, allow_insecure_http: bool, what: &str) -> Result<String> {
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| anyhow!("{what} {url:?} is not a URL (https://HOST/…)"))?;
    let host = host_of(rest).ok_or_else(|| anyhow!("{what} {url:?} has no host"))?;
    match scheme.to_ascii_lowercase().as_str() {
        "https" => {}
        "http" if is_loopback(host) || allow_insecure_http => {}
        "http" => bail!(
            "{what} {url:?}: plain http is only allowed to a loopback address; \
             use https, or --allow-insecure-http if credentials may travel in clear text"
        ),
        other => bail!("{what} {url:?}: unsupported scheme {other:?}"),
    }
    let mut base = url.to_string();
    if !base.ends_with('/') {
        base.push('/');
    }
    Ok(base)
}

/// The host of `host[:port][/path]`, without brackets for IPv6.
fn host_of(rest: &str) -> Option<&str> {
    let authority = rest.split(['/', '?', '#']).next()?;
    let authority = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = if let Some(v6) = authority.strip_prefix('[') {
        v6.split(']').next()?
    } else {
        authority.split(':').next()?
    };
    (!host.is_empty()).then_some(host)
}

fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Percent-encode one path segment (everything but unreserved characters).
pub fn encode_segment(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for b in segment.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Read a response body, bounded.
pub fn read_body(response: &mut ureq::http::Response<ureq::Body>) -> Result<Vec<u8>> {
    response
        .body_mut()
        .with_config()
        .limit(16 * 1024 * 1024)
        .read_to_vec()
        .map_err(|e| anyhow!("reading the answer: {e}"))
}
