//! One node of the resource model: a name, string attributes and a set of tags.
//!
//! Why it is shaped so: Rundeck's `NodeEntryImpl` keeps *everything* in one string map — the
//! well-known fields (`hostname`, `username`, `osFamily`, …) are ordinary attributes under those
//! names, and even `nodename` and `tags` (as a sorted `", "` join) live there. Filters, ranking
//! and the data context all read that map. Here the name and the tag set are proper fields, the
//! well-known fields stay in [`Node::attributes`] under Rundeck's names, and
//! [`Node::attribute`] reproduces the Java map view (so `nodename` and `tags` can still be looked
//! up as attributes, as Rundeck filters and rank attributes allow).
//!
//! The SSH address helpers come in two kinds on purpose: [`Node::ssh_host`], [`Node::ssh_user`]
//! and [`Node::ssh_port`] reproduce Rundeck's `extract*` methods bug for bug (they are what a
//! Rundeck plugin or script would have seen), while [`Node::ssh_target`] is the correct parse that
//! sortie's own SSH client uses.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};

use anyhow::{bail, Context as _, Result};
use serde::{Deserialize, Serialize};

use crate::nodes::java;

/// Rundeck's attribute names for the well-known node fields (`NodeEntryImpl` constants).
pub mod attr {
    /// The node name, as an attribute (`nodename`). Not stored in [`super::Node::attributes`].
    pub const NODENAME: &str = "nodename";
    /// The tags, as an attribute: the sorted tags joined with `", "`. Not stored in
    /// [`super::Node::attributes`].
    pub const TAGS: &str = "tags";
    /// The address to connect to, possibly `user@host` or `host:port`.
    pub const HOSTNAME: &str = "hostname";
    /// The remote user name.
    pub const USERNAME: &str = "username";
    /// Free text.
    pub const DESCRIPTION: &str = "description";
    /// Operating system family, e.g. `unix` or `windows`.
    pub const OS_FAMILY: &str = "osFamily";
    /// Operating system name.
    pub const OS_NAME: &str = "osName";
    /// Operating system architecture.
    pub const OS_ARCH: &str = "osArch";
    /// Operating system version.
    pub const OS_VERSION: &str = "osVersion";
}

/// A node of the resource model.
///
/// `attributes` holds every attribute except the name and the tags, under Rundeck's names
/// (see [`attr`]). An entry named `nodename` or `tags` in `attributes` is ignored by every method
/// here; the parsers never create one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Node {
    /// The node name (Rundeck's `nodename`), the key of a node set.
    pub name: String,
    /// All other attributes, as strings.
    pub attributes: BTreeMap<String, String>,
    /// The tags. Rundeck keeps them in a hash set; the order here is only for determinism.
    pub tags: BTreeSet<String>,
}

/// Where to connect for SSH, parsed correctly from a node; see [`Node::ssh_target`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshTarget {
    /// The user: the `username` attribute, else a `user@` prefix of the hostname. `None` means
    /// the caller falls back to its project or framework default, as Rundeck does.
    pub user: Option<String>,
    /// The host name or address, without user, port or IPv6 brackets.
    pub host: String,
    /// The port from a `:port` suffix. `None` means the default (22).
    pub port: Option<u16>,
}

impl Node {
    /// A node with the given name and no attributes or tags.
    pub fn new(name: impl Into<String>) -> Node {
        Node {
            name: name.into(),
            attributes: BTreeMap::new(),
            tags: BTreeSet::new(),
        }
    }

    /// The runner's own node, described as Rundeck describes its server node.
    pub fn local(name: &str) -> Node {
        Node::new(name)
            .with("hostname", crate::os::hostname().unwrap_or_default())
            .with("osFamily", "unix")
            .with("osName", "Linux")
            .with("osArch", std::env::consts::ARCH)
            .with("description", "the runner's own node")
    }

    /// Builder: set one attribute.
    pub fn with(mut self, key: impl Into<String>, value: impl Into<String>) -> Node {
        self.attributes.insert(key.into(), value.into());
        self
    }

    #[cfg(test)]
    /// Builder: add tags.
    pub fn with_tags<I, S>(mut self, tags: I) -> Node
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.tags.extend(tags.into_iter().map(Into::into));
        self
    }

    /// The attribute as Rundeck's `getAttributes().get(key)` returns it: `nodename` is the name,
    /// `tags` is the tags sorted in Java order and joined with `", "` (absent when there are no
    /// tags), and anything else comes from [`Node::attributes`].
    pub fn attribute(&self, key: &str) -> Option<Cow<'_, str>> {
        match key {
            attr::NODENAME => Some(Cow::Borrowed(&self.name)),
            attr::TAGS => {
                (!self.tags.is_empty()).then(|| Cow::Owned(self.sorted_tags().join(", ")))
            }
            _ => self.attributes.get(key).map(|v| Cow::Borrowed(v.as_str())),
        }
    }

    /// The tags in Java `String` order (UTF-16), as `NodeEntryImpl.setTags` sorts them.
    pub fn sorted_tags(&self) -> Vec<&str> {
        let mut tags: Vec<&str> = self.tags.iter().map(String::as_str).collect();
        tags.sort_by(|a, b| java::compare_strings(a, b));
        tags
    }

    fn get(&self, key: &str) -> Option<&str> {
        self.attributes.get(key).map(String::as_str)
    }

    /// The raw `hostname` attribute, `user@` and `:port` included.
    pub fn hostname(&self) -> Option<&str> {
        self.get(attr::HOSTNAME)
    }

    /// The raw `username` attribute.
    pub fn username(&self) -> Option<&str> {
        self.get(attr::USERNAME)
    }

    /// The SSH destination parsed correctly, for sortie's own SSH client.
    ///
    /// Unlike Rundeck's `NodeEntryImpl.extractHostname()` it handles `user@host:22` (user `user`, host `host`, port 22),
    /// splits the user at the *last* `@`, accepts `[v6addr]:port` and a bare IPv6 address, and
    /// rejects a port that is not a number in 1..=65535 instead of keeping `host:garbage` as a
    /// host name. The user comes from the `username` attribute when it is not empty, else from a
    /// `user@` prefix, as in Rundeck.
    ///
    /// # Errors
    /// When the node has no non-blank `hostname`, or its port part is not a valid port.
    pub fn ssh_target(&self) -> Result<SshTarget> {
        let raw = self
            .hostname()
            .filter(|h| !h.trim().is_empty())
            .with_context(|| format!("node {:?} has no hostname", self.name))?
            .trim();
        let (prefix_user, rest) = match raw.rsplit_once('@') {
            Some((user, rest)) => ((!user.is_empty()).then_some(user), rest),
            None => (None, raw),
        };
        let (host, port) = if let Some(bracketed) = rest.strip_prefix('[') {
            let (host, after) = bracketed
                .split_once(']')
                .with_context(|| format!("node {:?}: hostname {raw:?}: unclosed '['", self.name))?;
            match after {
                "" => (host, None),
                _ => match after.strip_prefix(':') {
                    Some(port) => (host, Some(port)),
                    None => bail!(
                        "node {:?}: hostname {raw:?}: unexpected text after ']'",
                        self.name
                    ),
                },
            }
        } else {
            match rest.split_once(':') {
                // More than one colon: a bare IPv6 address, no port.
                Some((_, after)) if after.contains(':') => (rest, None),
                Some((host, port)) => (host, Some(port)),
                None => (rest, None),
            }
        };
        if host.is_empty() {
            bail!("node {:?}: hostname {raw:?} has no host part", self.name);
        }
        let port = match port {
            None => None,
            Some(p) => match p.parse::<u16>() {
                Ok(n) if n > 0 && p.bytes().all(|b| b.is_ascii_digit()) => Some(n),
                _ => bail!("node {:?}: hostname {raw:?}: invalid port {p:?}", self.name),
            },
        };
        let user = match self.username() {
            Some(u) if !u.is_empty() => Some(u.to_string()),
            _ => prefix_user.map(str::to_string),
        };
        Ok(SshTarget {
            user,
            host: host.to_string(),
            port,
        })
    }

    /// The `${node.*}` data context (Rundeck's `DataContextUtils.nodeData`), also the source of
    /// the `RD_NODE_*` environment variables.
    ///
    /// Always present (empty when unset): `name`, `hostname`, `os-name`, `os-version`,
    /// `os-arch`, `os-family`, `username`, `description`, and `tags` (joined with `,`; Rundeck
    /// joins a hash set in no particular order, this joins in sorted order). Then every other
    /// attribute under its own name, except the raw `nodename`, `osName`, `osVersion`, `osArch`
    /// and `osFamily`, and except any attribute whose name is already taken above (so an
    /// attribute literally called `name` or `os-family` never shows). So `${node.osFamily}` is
    /// unset while `${node.os-family}` works.
    pub fn data_context(&self) -> BTreeMap<String, String> {
        let mut data = BTreeMap::new();
        let mut fixed = |key: &str, value: Option<&str>| {
            data.insert(key.to_string(), value.unwrap_or_default().to_string());
        };
        fixed("name", Some(&self.name));
        fixed("hostname", self.get(attr::HOSTNAME));
        fixed("os-name", self.get(attr::OS_NAME));
        fixed("os-version", self.get(attr::OS_VERSION));
        fixed("os-arch", self.get(attr::OS_ARCH));
        fixed("os-family", self.get(attr::OS_FAMILY));
        fixed("username", self.get(attr::USERNAME));
        fixed("description", self.get(attr::DESCRIPTION));
        fixed("tags", Some(&self.sorted_tags().join(",")));
        const SKIPPED: [&str; 5] = [
            attr::NODENAME,
            attr::OS_NAME,
            attr::OS_VERSION,
            attr::OS_ARCH,
            attr::OS_FAMILY,
        ];
        for (key, value) in &self.attributes {
            if !SKIPPED.contains(&key.as_str()) && !data.contains_key(key) {
                data.insert(key.clone(), value.clone());
            }
        }
        data
    }

    /// This node as one entry of Rundeck's resource-json format (what `ResourceJsonFormatGenerator`
    /// writes per node): every attribute as a string, plus `nodename` and `tags` (the sorted
    /// tags joined with `", "`, empty when there are none). Parsing it back gives the same node.
    pub fn to_resource_json(&self) -> serde_json::Value {
        let mut map = serde_json::Map::new();
        for (key, value) in &self.attributes {
            map.insert(key.clone(), serde_json::Value::String(value.clone()));
        }
        map.insert(attr::NODENAME.into(), self.name.clone().into());
        map.insert(attr::TAGS.into(), self.sorted_tags().join(", ").into());
        serde_json::Value::Object(map)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(h: &str) -> Node {
        Node::new("n").with(attr::HOSTNAME, h)
    }

    #[test]
    fn explicit_username_wins() {
        let user = |node: Node| node.ssh_target().unwrap().user;
        let node = host("other@host").with(attr::USERNAME, "user");
        assert_eq!(user(node).as_deref(), Some("user"));
        // An empty username attribute counts as unset.
        let node = host("other@host").with(attr::USERNAME, "");
        assert_eq!(user(node).as_deref(), Some("other"));
    }

    #[test]
    fn no_hostname_means_nothing_extracted() {
        assert!(Node::new("n").ssh_target().is_err());
    }

    #[test]
    fn ssh_target_parses_user_at_host_port() {
        let t = host("user@host:22").ssh_target().unwrap();
        assert_eq!(
            t,
            SshTarget {
                user: Some("user".into()),
                host: "host".into(),
                port: Some(22)
            }
        );
        let t = host("deploy@10.0.0.1").ssh_target().unwrap();
        assert_eq!(
            (t.user.as_deref(), t.host.as_str(), t.port),
            (Some("deploy"), "10.0.0.1", None)
        );
        let t = host("[::1]:2222").ssh_target().unwrap();
        assert_eq!((t.host.as_str(), t.port), ("::1", Some(2222)));
        let t = host("fe80::1").ssh_target().unwrap();
        assert_eq!((t.host.as_str(), t.port), ("fe80::1", None));
        let t = host("a@b@host").ssh_target().unwrap();
        assert_eq!((t.user.as_deref(), t.host.as_str()), (Some("a@b"), "host"));
        let t = host("x@host:22")
            .with(attr::USERNAME, "explicit")
            .ssh_target()
            .unwrap();
        assert_eq!(t.user.as_deref(), Some("explicit"));
        for bad in [
            "host:garbage",
            "host:0",
            "host:70000",
            "host:",
            "user@:22",
            "[::1",
        ] {
            assert!(host(bad).ssh_target().is_err(), "{bad} should be rejected");
        }
    }

    #[test]
    fn attribute_view_synthesizes_nodename_and_tags() {
        let node = Node::new("web1").with_tags(["b", "a"]).with("rank", "3");
        assert_eq!(node.attribute("nodename").as_deref(), Some("web1"));
        assert_eq!(node.attribute("tags").as_deref(), Some("a, b"));
        assert_eq!(node.attribute("rank").as_deref(), Some("3"));
        assert_eq!(Node::new("x").attribute("tags"), None);
    }

    #[test]
    fn data_context_uses_rundeck_keys() {
        let node = Node::new("web1")
            .with(attr::HOSTNAME, "web1.example")
            .with(attr::OS_FAMILY, "unix")
            .with(attr::OS_NAME, "Linux")
            .with("ssh-port", "22")
            .with("name", "ignored")
            .with_tags(["web", "prod"]);
        let data = node.data_context();
        assert_eq!(data["name"], "web1");
        assert_eq!(data["hostname"], "web1.example");
        assert_eq!(data["os-family"], "unix");
        assert_eq!(data["os-name"], "Linux");
        assert_eq!(data["os-arch"], "");
        assert_eq!(data["os-version"], "");
        assert_eq!(data["username"], "");
        assert_eq!(data["description"], "");
        assert_eq!(data["tags"], "prod,web");
        assert_eq!(data["ssh-port"], "22");
        assert!(!data.contains_key("osFamily"));
        assert!(!data.contains_key("osName"));
        assert!(!data.contains_key("nodename"));
        assert_eq!(data.len(), 10);
    }

    #[test]
    fn resource_json_round_trip_shape() {
        let node = Node::new("web1")
            .with(attr::HOSTNAME, "h")
            .with("port", "22")
            .with_tags(["b", "a"]);
        assert_eq!(
            node.to_resource_json(),
            serde_json::json!({"nodename": "web1", "hostname": "h", "port": "22", "tags": "a, b"})
        );
    }
}
