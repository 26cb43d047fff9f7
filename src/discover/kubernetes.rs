//! Nodes from the Kubernetes API of the cluster a runner runs in: the
//! cluster's nodes and the pods of one namespace, read with the pod's service
//! account (its token and CA at their standard paths, each overridable).
//!
//! A cluster node is named as Kubernetes names it and reached at its
//! InternalIP; a pod is named `NAMESPACE/NAME` and reached at its pod IP.
//! Labels become `label:KEY` attributes; tags say `kubernetes`, `node` or
//! `pod`, and the node's readiness or the pod's phase.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::nodes::Node;

/// Where the pod's service account is mounted.
pub const SERVICE_ACCOUNT: &str = "/var/run/secrets/kubernetes.io/serviceaccount";

#[derive(Debug, Clone, Default)]
pub struct Kubernetes {
    /// The API server; none: `https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT`.
    pub api: Option<String>,
    /// None: the service account's `token`.
    pub token_file: Option<PathBuf>,
    /// None: the service account's `ca.crt`.
    pub ca_file: Option<PathBuf>,
    /// None: the service account's `namespace`.
    pub namespace: Option<String>,
    /// Leave out the cluster's nodes (a service account may not list them).
    pub no_nodes: bool,
    /// Leave out the namespace's pods.
    pub no_pods: bool,
}

impl Kubernetes {
    pub fn nodes(&self, until: Instant) -> Result<Vec<Node>, String> {
        let account = |file: &str| PathBuf::from(SERVICE_ACCOUNT).join(file);
        let api = match &self.api {
            Some(api) => api.trim_end_matches('/').to_string(),
            None => {
                let var = |k: &str| {
                    std::env::var(k)
                        .map_err(|_| format!("{k} is not set: not in a cluster? (give api)"))
                };
                let host = var("KUBERNETES_SERVICE_HOST")?;
                let port = var("KUBERNETES_SERVICE_PORT")?;
                match host.contains(':') {
                    true => format!("https://[{host}]:{port}"),
                    false => format!("https://{host}:{port}"),
                }
            }
        };
        crate::net::base_url(&format!("{api}/"), false, "api").map_err(|e| format!("{e:#}"))?;
        let token_file = self.token_file.clone().unwrap_or_else(|| account("token"));
        let token = crate::state::files::read_regular(&token_file, 1 << 20)
            .map_err(|e| format!("the service account token {}: {e}", token_file.display()))?;
        let token = crate::secret::Secret::new(String::from_utf8_lossy(&token).trim().to_string());
        crate::secrets::own::register(&token);
        let ca_file = self.ca_file.clone().unwrap_or_else(|| account("ca.crt"));
        let roots = crate::net::tls::Roots::load(&ca_file).map_err(|e| format!("{e:#}"))?;
        let namespace = match &self.namespace {
            Some(ns) => ns.clone(),
            None => std::fs::read_to_string(account("namespace"))
                .map(|s| s.trim().to_string())
                .map_err(|e| {
                    format!(
                        "no namespace given, and {}: {e}",
                        account("namespace").display()
                    )
                })?,
        };
        let left = until
            .saturating_duration_since(Instant::now())
            .max(Duration::from_millis(1));
        let agent =
            crate::net::agent(Some(&roots), None, left, left).map_err(|e| format!("{e:#}"))?;
        let bearer = format!("Bearer {}", token.expose());
        let get = |path: &str| -> Result<Value, String> {
            let url = format!("{api}{path}");
            let headers = [
                ("authorization", bearer.as_str()),
                ("accept", "application/json"),
            ];
            let answer = crate::net::request(&agent, "GET", &url, &headers, Vec::new())
                .map_err(|e| format!("{e:#}"))?;
            if answer.status != 200 {
                let why: Value = serde_json::from_slice(&answer.body).unwrap_or_default();
                let message = why["message"].as_str().unwrap_or("");
                return Err(format!("GET {path}: HTTP {} {message}", answer.status));
            }
            serde_json::from_slice(&answer.body).map_err(|e| format!("GET {path}: not JSON: {e}"))
        };
        let mut out = Vec::new();
        if !self.no_nodes {
            out.extend(cluster_nodes(&get("/api/v1/nodes")?));
        }
        if !self.no_pods {
            let path = format!(
                "/api/v1/namespaces/{}/pods",
                crate::net::encode_segment(&namespace)
            );
            out.extend(pods(&get(&path)?));
        }
        Ok(out)
    }
}

fn labels(node: &mut Node, item: &Value) {
    for (k, v) in item["metadata"]["labels"].as_object().into_iter().flatten() {
        if let Some(v) = v.as_str() {
            node.attributes.insert(format!("label:{k}"), v.to_string());
        }
    }
}

/// The nodes of a `NodeList`.
pub fn cluster_nodes(list: &Value) -> Vec<Node> {
    let items = list["items"].as_array().into_iter().flatten();
    items
        .filter_map(|item| {
            let name = item["metadata"]["name"].as_str()?;
            let mut node = Node::new(name);
            let addresses = item["status"]["addresses"].as_array().into_iter().flatten();
            let mut internal = None;
            for address in addresses {
                match (address["type"].as_str(), address["address"].as_str()) {
                    (Some("InternalIP"), Some(a)) if internal.is_none() => internal = Some(a),
                    _ => {}
                }
            }
            if let Some(ip) = internal {
                node = node.with("hostname", ip);
            }
            let info = &item["status"]["nodeInfo"];
            for (attr, key) in [
                ("osName", "osImage"),
                ("osArch", "architecture"),
                ("osVersion", "kernelVersion"),
                ("kubeletVersion", "kubeletVersion"),
                ("containerRuntime", "containerRuntimeVersion"),
            ] {
                if let Some(v) = info[key].as_str() {
                    node = node.with(attr, v);
                }
            }
            node = node.with(
                "osFamily",
                if info["operatingSystem"] == "windows" {
                    "windows"
                } else {
                    "unix"
                },
            );
            labels(&mut node, item);
            let ready = item["status"]["conditions"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|c| c["type"] == "Ready" && c["status"] == "True");
            node.tags.extend(
                [
                    "kubernetes",
                    "node",
                    if ready { "Ready" } else { "NotReady" },
                ]
                .map(String::from),
            );
            Some(node)
        })
        .collect()
}

/// The pods of a `PodList`.
pub fn pods(list: &Value) -> Vec<Node> {
    let items = list["items"].as_array().into_iter().flatten();
    items
        .filter_map(|item| {
            let name = item["metadata"]["name"].as_str()?;
            let namespace = item["metadata"]["namespace"].as_str().unwrap_or("default");
            let mut node = Node::new(format!("{namespace}/{name}"))
                .with("namespace", namespace)
                .with("pod", name)
                .with("osFamily", "unix");
            if let Some(ip) = item["status"]["podIP"].as_str() {
                node = node.with("hostname", ip);
            }
            if let Some(on) = item["spec"]["nodeName"].as_str() {
                node = node.with("kubernetesNode", on);
            }
            let phase = item["status"]["phase"].as_str().unwrap_or("Unknown");
            node = node.with("phase", phase);
            labels(&mut node, item);
            node.tags
                .extend(["kubernetes", "pod", phase].map(String::from));
            Some(node)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn cluster_nodes_and_pods_become_nodes_with_their_addresses_and_labels() {
        let nodes = cluster_nodes(&json!({"items": [{
            "metadata": {"name": "kind-worker", "labels": {"zone": "a"}},
            "status": {"addresses": [{"type": "Hostname", "address": "kind-worker"},
                                     {"type": "InternalIP", "address": "172.18.0.3"}],
                       "nodeInfo": {"osImage": "Debian", "architecture": "amd64", "operatingSystem": "linux"},
                       "conditions": [{"type": "Ready", "status": "True"}]}}]}));
        assert_eq!(nodes[0].attributes["hostname"], "172.18.0.3");
        assert_eq!(nodes[0].attributes["label:zone"], "a");
        assert!(nodes[0].tags.contains("Ready"));
        let pods = pods(&json!({"items": [{
            "metadata": {"name": "web-0", "namespace": "apps"},
            "spec": {"nodeName": "kind-worker"},
            "status": {"phase": "Running", "podIP": "10.244.1.5"}}]}));
        assert_eq!(pods[0].name, "apps/web-0");
        assert_eq!(pods[0].attributes["hostname"], "10.244.1.5");
        assert!(pods[0].tags.contains("Running"));
    }
}
