//! The runner's HTTP stack for HTTP steps: what a step asks, sent with the
//! same client as the control plane's (net), so jobs need no network code.

use std::time::Duration;

use crate::jobs::http_step::{Answer, Failure, Request};

/// Send one request of an HTTP step: its URL allowed (https, or plain http
/// to loopback unless the step is insecure), its CA file's certificates as the trust roots.
pub fn send(req: &Request<'_>) -> Result<Answer, Failure> {
    let refused = |e: anyhow::Error| Failure::Refused(format!("{e:#}"));
    crate::net::base_url(req.url, req.insecure, "url").map_err(refused)?;
    let roots = req
        .ca
        .map(|(path, pem)| crate::net::tls::Roots::from_pem(pem, &format!("CA file {path}")))
        .transpose()
        .map_err(refused)?;
    let identity = req
        .client
        .map(|(cert, key)| {
            crate::net::tls::Identity::from_pem(
                cert.as_bytes(),
                key.as_bytes(),
                "client_cert",
                "client_key",
            )
        })
        .transpose()
        .map_err(refused)?;
    // This machine is reached directly, never through a proxy (a proxy would
    // see a plain http request, secrets and all).
    let direct = crate::net::is_loopback_url(req.url);
    let agent = crate::net::agent_with(
        roots.as_ref(),
        identity.as_ref(),
        req.insecure,
        direct,
        Duration::from_secs(10),
        Duration::from_secs(3600),
    )
    .map_err(refused)?;
    let headers: Vec<(&str, &str)> = req
        .headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let answer = crate::net::exchange(
        &agent,
        req.method,
        req.url,
        &headers,
        req.body.to_vec(),
        req.timeout,
    )
    .map_err(|e| match e {
        // A request that cannot be built never will be: not worth a retry.
        crate::net::Failed::Request(why) => Failure::Refused(why),
        e => Failure::Transport(e.to_string()),
    })?;
    Ok(Answer {
        status: answer.status,
        headers: answer.headers,
        body: answer.body,
    })
}
