//! HTTP agents: one way to build them and one way to send a request, for the
//! control-plane client and the secret providers; `tls` checks their certificates.
//!
//! Each peer gets one ureq agent, built here with explicit timeouts, status codes
//! returned rather than turned into errors (so error bodies can be read), no
//! redirects, the given trust roots and client identity, and the proxy from
//! `HTTPS_PROXY`/`ALL_PROXY`/`NO_PROXY`. URLs follow one rule: https, or plain
//! http to a loopback address only, unless insecure http is explicitly allowed.

mod resolve;
pub mod tls;

use std::time::Duration;

use anyhow::{anyhow, bail, Result};
use ureq::Agent;

use tls::{Identity, Roots};

/// Build an agent.
pub fn agent(
    roots: Option<&Roots>,
    identity: Option<&Identity>,
    connect_timeout: Duration,
    request_timeout: Duration,
) -> Result<Agent> {
    agent_with(
        roots,
        identity,
        false,
        false,
        connect_timeout,
        request_timeout,
    )
}

/// Build an agent; `insecure`: one that does not check the server's
/// certificate (only for a step that says so, which the log repeats);
/// `direct`: one that never goes through a proxy.
pub fn agent_with(
    roots: Option<&Roots>,
    identity: Option<&Identity>,
    insecure: bool,
    direct: bool,
    connect_timeout: Duration,
    request_timeout: Duration,
) -> Result<Agent> {
    tls::install_provider();
    let mut tls_config = ureq::tls::TlsConfig::builder().disable_verification(insecure);
    if let Some(roots) = roots {
        tls_config = tls_config.root_certs(tls::ureq_roots(roots));
    }
    if let Some(identity) = identity {
        tls_config = tls_config.client_cert(Some(tls::ureq_identity(identity)?));
    }
    let proxy = if direct { None } else { env_proxy()? };
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
        .input_buffer_size(INPUT_BUFFER)
        .output_buffer_size(OUTPUT_BUFFER)
        .max_response_header_size(MAX_HEAD)
        .build();
    Ok(Agent::with_parts(
        config,
        ureq::unversioned::transport::DefaultConnector::default(),
        resolve::Resolve::default(),
    ))
}

/// The largest answer head taken (ureq's own default), and the largest
/// request head sent (URL and headers, a long token among them).
const MAX_HEAD: usize = 64 * 1024;

/// Each connection has four buffers (input and output, for the TCP stream
/// and for TLS over it), zeroed when first used. ureq's default, 128 KiB, made
/// half a megabyte of page faults, a tenth of an empty shot. The output buffer
/// holds a request's head, so it is [`MAX_HEAD`]; the input buffer a little
/// more, so that an answer with a larger head is refused as too large, not
/// taken for a closed connection.
const OUTPUT_BUFFER: usize = MAX_HEAD;
const INPUT_BUFFER: usize = MAX_HEAD + 4096;

/// The variables a proxy is taken from, in the order they are tried.
const PROXY_VARIABLES: [&str; 6] = [
    "ALL_PROXY",
    "all_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "HTTP_PROXY",
    "http_proxy",
];

/// The proxy the environment gives (NO_PROXY honoured). Every proxy variable
/// that is set must name an HTTP CONNECT proxy: ureq passes over a value it
/// cannot parse (a typo), and this build has no SOCKS client,
/// and either would mean a direct connection past the egress the variable
/// stands for.
fn env_proxy() -> Result<Option<ureq::Proxy>> {
    use ureq::ProxyProtocol::{Http, Https};
    for var in PROXY_VARIABLES {
        let Some(value) = std::env::var_os(var).filter(|v| !v.is_empty()) else {
            continue;
        };
        let value = value.to_string_lossy();
        let proxy = ureq::Proxy::new(&value).map_err(|e| {
            anyhow!("{var} is not a proxy sortie can use ({e}): give an HTTP CONNECT proxy (http://HOST:PORT or https://HOST:PORT), or unset it")
        })?;
        if !matches!(proxy.protocol(), Http | Https) {
            bail!(
                "{var} names a SOCKS proxy ({}:{}), which sortie does not speak: give an HTTP CONNECT proxy (http:// or https://), or unset it",
                proxy.host(),
                proxy.port()
            );
        }
    }
    Ok(ureq::Proxy::try_from_env())
}

/// Fetches files over HTTPS (Rundeck's `scripturl` steps): the URL rule of
/// the control plane's, its trust roots, bounded time and size.
#[derive(Clone)]
pub struct Fetcher {
    agent: Agent,
    allow_insecure_http: bool,
}

impl std::fmt::Debug for Fetcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fetcher").finish_non_exhaustive()
    }
}

impl Fetcher {
    pub fn new(roots: Option<&Roots>, allow_insecure_http: bool) -> Result<Fetcher> {
        Ok(Fetcher {
            agent: agent(
                roots,
                None,
                Duration::from_secs(10),
                Duration::from_secs(60),
            )?,
            allow_insecure_http,
        })
    }

    /// The body of a `200` answer to `GET url`; the error is one line.
    /// `url`'s body, fetched before `until` (the job's deadline) at the latest.
    pub fn get(
        &self,
        url: &str,
        until: Option<std::time::Instant>,
    ) -> std::result::Result<Vec<u8>, String> {
        base_url(url, self.allow_insecure_http, "the script URL").map_err(|e| format!("{e:#}"))?;
        let timeout = until.map(|u| u.saturating_duration_since(std::time::Instant::now()));
        if timeout.is_some_and(|t| t.is_zero()) {
            return Err(format!(
                "GET {url}: the job's time ran out before the script was fetched"
            ));
        }
        let answer = exchange(&self.agent, "GET", url, &[], Vec::new(), timeout)
            .map_err(|e| format!("GET {url}: {e}"))?;
        if answer.status != 200 {
            return Err(format!("GET {url}: HTTP {}", answer.status));
        }
        Ok(answer.body)
    }
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

/// Whether a URL's host is this machine (`localhost`, a loopback address).
pub fn is_loopback_url(url: &str) -> bool {
    url.split_once("://")
        .and_then(|(_, rest)| host_of(rest))
        .is_some_and(is_loopback)
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

/// Everything but RFC 3986's unreserved characters.
pub const NOT_UNRESERVED: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Percent-encode one path segment or form value (everything but unreserved characters).
pub fn encode_segment(segment: &str) -> String {
    percent_encoding::utf8_percent_encode(segment, NOT_UNRESERVED).to_string()
}

/// Largest answer body read from any peer.
const MAX_BODY: u64 = 16 * 1024 * 1024;

/// An answer: its status, `Retry-After` in seconds when given, its headers
/// and its body.
pub struct Answer {
    pub status: u16,
    pub retry_after: Option<Duration>,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// Why an exchange gave no answer.
pub enum Failed {
    /// Connecting, TLS, sending or receiving the head failed.
    Transport(ureq::Error),
    /// The head arrived but the body could not be read.
    Body(anyhow::Error),
    /// The body is larger than any answer may be (a peer outside its protocol).
    TooLarge,
    /// The request could not be built (a header value that is not one): it
    /// never will be.
    Request(String),
}

impl std::fmt::Display for Failed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failed::Transport(e) => write!(f, "{e}"),
            Failed::Body(e) => write!(f, "reading the answer: {e:#}"),
            Failed::TooLarge => write!(f, "the answer is larger than {MAX_BODY} bytes"),
            Failed::Request(why) => write!(f, "{why}"),
        }
    }
}

/// One request, the one way every peer is called: `headers` in order, the body
/// bounded, the status returned (not turned into an error). `timeout` replaces
/// the agent's request timeout for this call.
pub fn exchange(
    agent: &Agent,
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
    timeout: Option<Duration>,
) -> std::result::Result<Answer, Failed> {
    // What a request line and the headers ureq adds take, at most, besides
    // the URL and `headers`.
    const FIXED: usize = 1024;
    let head = FIXED
        + url.len()
        + headers
            .iter()
            .map(|(k, v)| k.len() + v.len() + 4)
            .sum::<usize>();
    if head > MAX_HEAD {
        return Err(Failed::Request(format!(
            "{method} {}: the request's URL and headers come to {head} bytes, more than the {MAX_HEAD} sortie sends",
            url.split('?').next().unwrap_or(url)
        )));
    }
    let mut req = ureq::http::Request::builder().method(method).uri(url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let req = req
        .body(body)
        .map_err(|e| Failed::Request(format!("building {method} {url}: {e}")))?;
    let mut call = agent.configure_request(req);
    if let Some(timeout) = timeout {
        call = call.timeout_global(Some(timeout));
    }
    let mut response = agent.run(call.build()).map_err(Failed::Transport)?;
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    let headers = response
        .headers()
        .iter()
        .map(|(k, v)| {
            (
                k.to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let body = response
        .body_mut()
        .with_config()
        .limit(MAX_BODY)
        .read_to_vec()
        .map_err(|e| match e {
            ureq::Error::BodyExceedsLimit(_) => Failed::TooLarge,
            e => Failed::Body(e.into()),
        })?;
    Ok(Answer {
        status,
        retry_after,
        headers,
        body,
    })
}

/// [`exchange`] for callers that only need an error message.
pub fn request(
    agent: &Agent,
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> Result<Answer> {
    exchange(agent, method, url, headers, body, None).map_err(|e| anyhow!("{method} {url}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, BufReader, Write};

    /// A loopback server answering each request with a header of `size` bytes;
    /// it sends back the size of the request head it read.
    fn server(size: usize) -> String {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let mut reader = BufReader::new(stream);
                let mut head = 0;
                let mut line = String::new();
                while reader.read_line(&mut line).unwrap_or(0) > 2 {
                    head += line.len();
                    line.clear();
                }
                let body = head.to_string();
                let answer = format!(
                    "HTTP/1.1 200 OK\r\nx-big: {}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    "h".repeat(size),
                    body.len()
                );
                let _ = reader.get_mut().write_all(answer.as_bytes());
            }
        });
        url
    }

    fn get(url: &str, header: usize) -> std::result::Result<Answer, Failed> {
        let agent = agent(None, None, Duration::from_secs(5), Duration::from_secs(5)).unwrap();
        let value = "t".repeat(header);
        exchange(
            &agent,
            "GET",
            url,
            &[("authorization", &value)],
            Vec::new(),
            None,
        )
    }

    #[test]
    fn heads_up_to_64_kib_pass_each_way_and_larger_ones_are_named() {
        // A 40 KiB answer head and a 40 KiB request head (a long token) pass.
        let answer = get(&server(40 * 1024), 40 * 1024).ok().unwrap();
        assert_eq!(answer.status, 200);
        let sent: usize = String::from_utf8(answer.body).unwrap().parse().unwrap();
        assert!(sent > 40 * 1024, "{sent}");
        // Past 64 KiB, an answer's head is refused as too large.
        let err = get(&server(70 * 1024), 10).err().unwrap().to_string();
        assert!(err.contains("too big"), "{err}");
        // A request head past 64 KiB is never sent, and says why.
        let err = get(&server(10), 70 * 1024).err().unwrap();
        assert!(matches!(err, Failed::Request(_)), "{err}");
        assert!(err.to_string().contains("more than the 65536"), "{err}");
    }
}
