//! Nodes from EC2: the instances of the configured regions that match the
//! configured filters (`DescribeInstances`, every page), signed with the
//! runner's AWS credential chain (environment keys, or an EKS pod's web
//! identity) as its secret stores are.
//!
//! A node is named by its `Name` tag, else its instance id, and reached at
//! its private address (a runner lives inside the network); its EC2 facts
//! are attributes, each tag is `tag:KEY`, and its tags are `ec2`, the state
//! and the region.

use std::collections::BTreeMap;
use std::time::Instant;

use crate::nodes::Node;

/// The most pages read per region (1,000 instances each).
const MAX_PAGES: usize = 100;

#[derive(Debug, Clone, Default)]
pub struct Ec2 {
    /// None: the environment's region.
    pub regions: Vec<String>,
    pub filters: BTreeMap<String, Vec<String>>,
}

impl Ec2 {
    pub fn nodes(&self, until: Instant) -> Result<Vec<Node>, String> {
        let regions = match self.regions.is_empty() {
            true => vec![crate::secrets::aws::default_region().map_err(|e| format!("{e:#}"))?],
            false => self.regions.clone(),
        };
        let mut nodes = Vec::new();
        for region in &regions {
            let mut token: Option<String> = None;
            let mut pages = 0;
            loop {
                pages += 1;
                if pages > MAX_PAGES {
                    return Err(format!(
                        "{region}: more than {MAX_PAGES} pages of instances (narrow the filters)"
                    ));
                }
                let left = until.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Err("timed out".into());
                }
                let xml = crate::secrets::aws::describe_instances(
                    region,
                    &self.filters,
                    token.as_deref(),
                    left,
                )
                .map_err(|e| format!("{e:#}"))?;
                let (page, next) = parse(&xml, region)?;
                nodes.extend(page);
                match next {
                    Some(next) if token.as_deref() == Some(next.as_str()) => {
                        return Err(format!("{region}: the same page token twice ({next})"));
                    }
                    Some(next) => token = Some(next),
                    None => break,
                }
            }
        }
        Ok(unique_names(nodes))
    }
}

/// Instances that share a `Name` (an auto scaling group's do) are each
/// named `NAME-INSTANCEID`, so none hides another.
fn unique_names(mut nodes: Vec<Node>) -> Vec<Node> {
    let mut count: BTreeMap<String, usize> = BTreeMap::new();
    for node in &nodes {
        *count.entry(node.name.clone()).or_default() += 1;
    }
    for node in &mut nodes {
        if count[&node.name] > 1 {
            let id = node
                .attributes
                .get("instanceId")
                .cloned()
                .unwrap_or_default();
            node.name = format!("{}-{id}", node.name);
        }
    }
    nodes
}

/// The first child element of `node` called `name`.
fn child<'a, 'i>(node: roxmltree::Node<'a, 'i>, name: &str) -> Option<roxmltree::Node<'a, 'i>> {
    node.children()
        .find(|c| c.is_element() && c.tag_name().name() == name)
}

/// The instances of one `DescribeInstancesResponse`, and its `nextToken`.
pub fn parse(xml: &str, region: &str) -> Result<(Vec<Node>, Option<String>), String> {
    let doc = roxmltree::Document::parse(xml)
        .map_err(|e| format!("DescribeInstances answered XML that does not parse: {e}"))?;
    let root = doc.root_element();
    let text = |node: roxmltree::Node<'_, '_>, path: &[&str]| {
        let mut at = node;
        for name in path {
            at = child(at, name)?;
        }
        at.text()
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(str::to_string)
    };
    let mut nodes = Vec::new();
    let reservations = child(root, "reservationSet")
        .into_iter()
        .flat_map(|s| s.children());
    for reservation in reservations.filter(|r| r.is_element()) {
        let instances = child(reservation, "instancesSet")
            .into_iter()
            .flat_map(|s| s.children());
        for instance in instances.filter(|i| i.is_element()) {
            let Some(id) = text(instance, &["instanceId"]) else {
                continue;
            };
            let tags: BTreeMap<String, String> = child(instance, "tagSet")
                .into_iter()
                .flat_map(|s| s.children())
                .filter(|i| i.is_element())
                .filter_map(|i| Some((text(i, &["key"])?, text(i, &["value"]).unwrap_or_default())))
                .collect();
            let name = tags.get("Name").cloned().unwrap_or_else(|| id.clone());
            let mut node = Node::new(name)
                .with("instanceId", id.clone())
                .with("region", region);
            let address = text(instance, &["privateIpAddress"])
                .or_else(|| text(instance, &["privateDnsName"]))
                .or_else(|| text(instance, &["ipAddress"]));
            if let Some(address) = address {
                node = node.with("hostname", address);
            }
            for (attr, path) in [
                ("privateIpAddress", &["privateIpAddress"][..]),
                ("privateDnsName", &["privateDnsName"]),
                ("publicIpAddress", &["ipAddress"]),
                ("instanceType", &["instanceType"]),
                ("imageId", &["imageId"]),
                ("vpcId", &["vpcId"]),
                ("subnetId", &["subnetId"]),
                ("availabilityZone", &["placement", "availabilityZone"]),
                ("state", &["instanceState", "name"]),
                ("osArch", &["architecture"]),
            ] {
                if let Some(value) = text(instance, path) {
                    node = node.with(attr, value);
                }
            }
            let windows = text(instance, &["platform"]).is_some_and(|p| p == "windows");
            node = node.with("osFamily", if windows { "windows" } else { "unix" });
            for (k, v) in &tags {
                node = node.with(format!("tag:{k}"), v.clone());
            }
            node.tags.insert("ec2".into());
            node.tags.insert(region.to_string());
            if let Some(state) = node.attributes.get("state").cloned() {
                node.tags.insert(state);
            }
            nodes.push(node);
        }
    }
    Ok((nodes, text(root, &["nextToken"])))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instances_are_named_by_their_name_tag_and_reached_at_their_private_address() {
        let xml = r#"<DescribeInstancesResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15">
          <reservationSet><item><instancesSet>
            <item><instanceId>i-1</instanceId><privateIpAddress>10.0.0.7</privateIpAddress>
              <instanceState><code>16</code><name>running</name></instanceState>
              <placement><availabilityZone>eu-west-1a</availabilityZone></placement>
              <groupSet><item><groupId>sg-1</groupId></item></groupSet>
              <tagSet><item><key>Name</key><value>web-1</value></item>
                      <item><key>env</key><value>prod</value></item></tagSet></item>
            <item><instanceId>i-2</instanceId><platform>windows</platform></item>
          </instancesSet></item></reservationSet><nextToken>more</nextToken>
        </DescribeInstancesResponse>"#;
        let (nodes, next) = parse(xml, "eu-west-1").unwrap();
        assert_eq!(next.as_deref(), Some("more"));
        assert_eq!(nodes[0].name, "web-1");
        assert_eq!(nodes[0].attributes["hostname"], "10.0.0.7");
        assert_eq!(nodes[0].attributes["tag:env"], "prod");
        assert_eq!(nodes[0].attributes["availabilityZone"], "eu-west-1a");
        assert!(nodes[0].tags.contains("running") && nodes[0].tags.contains("ec2"));
        assert_eq!(nodes[1].name, "i-2");
        assert_eq!(nodes[1].attributes["osFamily"], "windows");
        assert!(parse("<not", "r").is_err());
        let twins = unique_names(vec![
            Node::new("asg").with("instanceId", "i-1"),
            Node::new("asg").with("instanceId", "i-2"),
            Node::new("solo").with("instanceId", "i-3"),
        ]);
        let names: Vec<&str> = twins.iter().map(|n| n.name.as_str()).collect();
        assert_eq!(names, ["asg-i-1", "asg-i-2", "solo"]);
    }
}
