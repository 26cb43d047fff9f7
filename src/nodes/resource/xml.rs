//! The `resourcexml` format, as Rundeck's `ResourceXMLParser` and `NodesXMLParser` read it.
//!
//! Why it is shaped so: the Java parser first collects "entities" keyed by name, then makes
//! nodes from them, and several behaviours follow from that two-step shape:
//! - only `node` elements directly under the root element are read (the root is normally
//!   `<project>`, but its name is not checked); a `node` without `name` is an error;
//! - every XML attribute of `<node>` is a property, and so is each child
//!   `<attribute name="k" value="v"/>` or `<attribute name="k">text</attribute>` (the value
//!   attribute wins over text; text is the element's own text, untrimmed; no value and no text
//!   gives `""`); child attributes are read after the XML attributes and override them;
//! - two `<node>` elements with the same name are *merged* into one entity, later properties
//!   overriding earlier ones;
//! - `tags` is split on `,` with Java `split` rules and each item trimmed, but empty items are
//!   kept (`"a,,b"` has the tag `""`);
//! - the properties `name` and `nodename` never become attributes (the node name is always the
//!   `name` XML attribute); everything else does, well-known fields included.
//!
//! A `<!DOCTYPE>` is accepted and never fetched: external DTDs are not loaded, as Rundeck
//! resolves its own DTD locally and does not validate.

use std::collections::{BTreeMap, HashMap};

use anyhow::{anyhow, Result};

use crate::nodes::java;
use crate::nodes::node::{attr, Node};

/// The nodes of an XML resource document, in first-definition order.
pub(super) fn parse(label: &str, text: &str) -> Result<Vec<Node>> {
    let options = roxmltree::ParsingOptions {
        allow_dtd: true,
        ..roxmltree::ParsingOptions::default()
    };
    let doc = roxmltree::Document::parse_with_options(text, options)
        .map_err(|e| anyhow!("{label}: invalid XML: {e}"))?;
    let line_of = |node: roxmltree::Node| doc.text_pos_at(node.range().start).row;
    let is_named = |node: &roxmltree::Node, name: &str| {
        node.is_element() && node.tag_name().name() == name && node.tag_name().namespace().is_none()
    };

    let mut order: Vec<String> = Vec::new();
    let mut entities: HashMap<String, BTreeMap<String, String>> = HashMap::new();
    let node_elements = doc
        .root_element()
        .children()
        .filter(|n| is_named(n, "node"));
    for (index, element) in node_elements.enumerate() {
        let name = element.attribute("name").ok_or_else(|| {
            anyhow!(
                "{label}: node #{} (line {}): missing required attribute \"name\"",
                index + 1,
                line_of(element)
            )
        })?;
        let properties = entities.entry(name.to_string()).or_insert_with(|| {
            order.push(name.to_string());
            BTreeMap::new()
        });
        for attribute in element.attributes() {
            properties.insert(attribute.name().to_string(), attribute.value().to_string());
        }
        for child in element.children().filter(|n| is_named(n, "attribute")) {
            let key = child.attribute("name").ok_or_else(|| {
                anyhow!(
                    "{label}: node {name:?}: <attribute> element without a \"name\" (line {})",
                    line_of(child)
                )
            })?;
            let value = match child.attribute("value") {
                Some(value) => value.to_string(),
                None => child.children().filter_map(|n| n.text()).collect(),
            };
            properties.insert(key.to_string(), value);
        }
    }

    Ok(order
        .into_iter()
        .map(|name| {
            let properties = entities.remove(&name).unwrap_or_default();
            let mut node = Node::new(name);
            for (key, value) in properties {
                match key.as_str() {
                    "name" | attr::NODENAME => {}
                    attr::TAGS => {
                        if !value.is_empty() {
                            node.tags = java::split(&value, ',')
                                .into_iter()
                                .map(|t| java::trim(t).to_string())
                                .collect();
                        }
                    }
                    _ => {
                        node.attributes.insert(key, value);
                    }
                }
            }
            node
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicate_nodes_are_merged() {
        let text = r#"<project>
            <node name="a" hostname="h1" osFamily="unix" tags="x"/>
            <node name="b"/>
            <node name="a" hostname="h2"><attribute name="extra" value="1"/></node>
        </project>"#;
        let nodes = parse("n.xml", text).unwrap();
        assert_eq!(nodes.len(), 2);
        let a = &nodes[0];
        assert_eq!(a.hostname(), Some("h2"));
        assert_eq!(a.attributes["osFamily"], "unix");
        assert_eq!(a.attributes["extra"], "1");
        assert_eq!(a.sorted_tags(), ["x"]);
    }

    #[test]
    fn attribute_elements_value_text_and_override() {
        let text = r#"<project><node name="n" hostname="xmlattr" type="Node">
            <attribute name="hostname" value="child"/>
            <attribute name="multi">  two
 lines </attribute>
            <attribute name="empty"/>
            <attribute name="both" value="v">text</attribute>
            <attribute name="nodename" value="ignored"/>
            <attribute name="name" value="ignored"/>
        </node></project>"#;
        let node = &parse("n.xml", text).unwrap()[0];
        assert_eq!(node.name, "n");
        assert_eq!(node.hostname(), Some("child"));
        assert_eq!(node.attributes["multi"], "  two\n lines ");
        assert_eq!(node.attributes["empty"], "");
        assert_eq!(node.attributes["both"], "v");
        assert_eq!(node.attributes["type"], "Node");
        assert!(!node.attributes.contains_key("name"));
        assert!(!node.attributes.contains_key("nodename"));
    }

    #[test]
    fn tags_trimmed_empty_items_kept() {
        let text =
            r#"<project><node name="n" tags=" a , b,,c,"/><node name="m" tags=""/></project>"#;
        let nodes = parse("n.xml", text).unwrap();
        assert_eq!(nodes[0].sorted_tags(), ["", "a", "b", "c"]);
        assert!(nodes[1].tags.is_empty());
    }

    #[test]
    fn only_direct_node_children_of_the_root() {
        let text = r#"<anything><setting name="s"/><group><node name="deep"/></group><node name="top"/></anything>"#;
        let nodes = parse("n.xml", text).unwrap();
        assert_eq!(nodes.len(), 1);
        assert_eq!(nodes[0].name, "top");
    }

    #[test]
    fn doctype_is_not_fetched() {
        let text = r#"<?xml version="1.0"?>
<!DOCTYPE project PUBLIC "-//DTO Labs Inc.//DTD Resources Document 1.0//EN" "project.dtd">
<project><node name="n" hostname="h"/></project>"#;
        assert_eq!(parse("n.xml", text).unwrap()[0].hostname(), Some("h"));
    }

    #[test]
    fn errors_name_file_node_and_line() {
        let err = parse(
            "n.xml",
            "<project>\n<node name=\"a\"/>\n<node hostname=\"h\"/>\n</project>",
        )
        .unwrap_err()
        .to_string();
        assert_eq!(
            err,
            "n.xml: node #2 (line 3): missing required attribute \"name\""
        );
        let err = parse(
            "n.xml",
            "<project><node name=\"a\">\n<attribute value=\"v\"/></node></project>",
        )
        .unwrap_err()
        .to_string();
        assert_eq!(
            err,
            "n.xml: node \"a\": <attribute> element without a \"name\" (line 2)"
        );
        let err = parse("n.xml", "<project><node name=\"a\"></project>")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("n.xml: invalid XML: "), "{err}");
    }
}
