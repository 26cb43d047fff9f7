//! Name resolution for the agents.
//!
//! ureq resolves the host before every request, pooled connection or not, and
//! with a timeout it does so on a thread of its own: a shot's claim, start and
//! completion each started a thread and, for a name, asked the resolver again.
//! Here an address is taken as it is, with no lookup and no thread, and a
//! name's addresses are kept for a while by the agent that looked them up.

use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use ureq::config::Config;
use ureq::http::Uri;
use ureq::unversioned::resolver::{DefaultResolver, ResolvedSocketAddrs, Resolver};
use ureq::unversioned::transport::NextTimeout;

/// How long a name's addresses are used before it is looked up again: long
/// enough for the requests of a shot, short enough to follow a move.
const KEEP: Duration = Duration::from_secs(30);

/// An agent's resolver.
#[derive(Debug, Default)]
pub struct Resolve {
    /// The last name looked up (`host:port`), when, and its addresses.
    last: Mutex<Option<(String, Instant, ResolvedSocketAddrs)>>,
}

impl Resolver for Resolve {
    fn resolve(
        &self,
        uri: &Uri,
        config: &Config,
        timeout: NextTimeout,
    ) -> Result<ResolvedSocketAddrs, ureq::Error> {
        let port = uri.port_u16().or(match uri.scheme_str() {
            Some("https") => Some(443),
            Some("http") => Some(80),
            _ => None,
        });
        let (Some(host), Some(port)) = (uri.host(), port) else {
            return DefaultResolver::default().resolve(uri, config, timeout);
        };
        if let Ok(ip) = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
        {
            let mut addrs = self.empty();
            addrs.push(SocketAddr::new(ip, port));
            return Ok(addrs);
        }
        let name = format!("{host}:{port}");
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((kept, at, addrs)) = &*last {
            if *kept == name && at.elapsed() < KEEP {
                return Ok(addrs.clone());
            }
        }
        let addrs = DefaultResolver::default().resolve(uri, config, timeout)?;
        *last = Some((name, Instant::now(), addrs.clone()));
        Ok(addrs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolve(resolver: &Resolve, url: &str) -> Vec<SocketAddr> {
        let uri: Uri = url.parse().unwrap();
        let addrs = resolver
            .resolve(&uri, &Config::default(), NextTimeout::default())
            .unwrap();
        addrs.iter().copied().collect()
    }

    #[test]
    fn addresses_are_taken_as_they_are_and_names_are_kept() {
        let resolver = Resolve::default();
        assert_eq!(
            resolve(&resolver, "https://127.0.0.1:8443/v1/claim"),
            ["127.0.0.1:8443".parse::<SocketAddr>().unwrap()]
        );
        assert_eq!(
            resolve(&resolver, "https://[::1]/v1/claim"),
            ["[::1]:443".parse::<SocketAddr>().unwrap()]
        );
        assert!(resolver.last.lock().unwrap().is_none(), "no lookup");
        let first = resolve(&resolver, "http://localhost:8080/");
        assert!(first
            .iter()
            .all(|a| a.ip().is_loopback() && a.port() == 8080));
        let at = resolver.last.lock().unwrap().as_ref().unwrap().1;
        assert_eq!(resolve(&resolver, "http://localhost:8080/x"), first);
        assert_eq!(
            resolver.last.lock().unwrap().as_ref().unwrap().1,
            at,
            "kept"
        );
        resolve(&resolver, "http://localhost:9090/");
        assert_ne!(
            resolver.last.lock().unwrap().as_ref().unwrap().1,
            at,
            "another port is another name"
        );
    }
}
