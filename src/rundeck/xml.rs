//! Job XML → a map tree, the way Rundeck's `XmlParserUtil.toObject` sees it.
//!
//! Rundeck never walks the XML DOM when importing jobs: it parses with
//! Groovy's `XmlParser` and flattens each element into a map in which
//! attributes and child elements are both plain keys (so `<option
//! name='x'><description>…</description></option>` and an attribute
//! `description='…'` mean the same), repeated children become a list, an
//! element holding only text becomes that string, and an empty element
//! becomes `''`. All values stay strings (`analyze=false`). This module
//! reproduces that flattening so that [`crate::rundeck::xml_codec`] can apply the
//! codec's conversions unchanged.
//!
//! Text rules of Groovy 4's `XmlParser` (Rundeck 5): text between two tags
//! is kept exactly as written when it contains anything but whitespace, and
//! dropped when it is whitespace only; comments are skipped but do not split
//! the text around them. Older Rundeck (Groovy 2) trimmed every text.
//! A `DOCTYPE` is refused, as the hardened parser Rundeck uses refuses it.

use crate::rundeck::value::{java_trim, Node, Value};

/// Why an XML file could not be read.
#[derive(Debug)]
pub(crate) struct XmlError {
    pub message: String,
    pub line: usize,
}

/// The attribute Groovy uses for an element's text when it also has attributes.
pub(crate) const TEXT_KEY: &str = "<text>";

/// Parses `text` and returns the root element's name and its `job` children,
/// each flattened into a map.
pub(crate) fn load_jobs(text: &str) -> Result<Vec<Node>, XmlError> {
    let opts = roxmltree::ParsingOptions {
        allow_dtd: false,
        // A job is a few hundred nodes; the limit bounds the tree's memory.
        nodes_limit: 400_000,
        ..roxmltree::ParsingOptions::default()
    };
    let doc = roxmltree::Document::parse_with_options(text, opts).map_err(|e| XmlError {
        message: format!("invalid XML: {e}"),
        line: e.pos().row as usize,
    })?;
    check_depth(&doc)?;
    let root = doc.root_element();
    if root.tag_name().name() != "joblist" {
        return Err(XmlError {
            message: format!(
                "document root tag was not 'joblist': '{}'",
                root.tag_name().name()
            ),
            line: line_of(&doc, root),
        });
    }
    let reader = Reader { doc: &doc };
    let jobs: Vec<Node> = root
        .children()
        .filter(|c| c.is_element() && c.tag_name().name() == "job")
        .map(|c| reader.to_object(c))
        .collect();
    if jobs.is_empty() {
        return Err(XmlError {
            message: "no 'job' element was found".into(),
            line: line_of(&doc, root),
        });
    }
    Ok(jobs)
}

/// Elements nest at most this deep: a job is a handful of levels, and the
/// reader (and the maps it builds) recurse once per level.
const MAX_DEPTH: usize = 64;

/// Refuse a document nested deeper than [`MAX_DEPTH`], before anything recurses.
fn check_depth(doc: &roxmltree::Document) -> Result<(), XmlError> {
    // Node ids are the document order, so a parent's depth is known before its children's.
    let mut depth = vec![0usize; doc.descendants().count() + 1];
    for node in doc.descendants() {
        let d = node.parent().map_or(0, |p| depth[p.id().get_usize()] + 1);
        depth[node.id().get_usize()] = d;
        if d > MAX_DEPTH {
            return Err(XmlError {
                message: format!("elements nest more than {MAX_DEPTH} deep"),
                line: line_of(doc, node),
            });
        }
    }
    Ok(())
}

fn line_of(doc: &roxmltree::Document, n: roxmltree::Node) -> usize {
    doc.text_pos_at(n.range().start).row as usize
}

/// A child of an element as Groovy's XmlParser keeps it.
enum Child<'a, 'input> {
    Text(String),
    Element(roxmltree::Node<'a, 'input>),
}

struct Reader<'a, 'input> {
    doc: &'a roxmltree::Document<'input>,
}

impl<'a, 'input> Reader<'a, 'input> {
    /// The children list of `XmlParser`: text runs between tags (comments
    /// skipped), whitespace-only runs dropped, other runs kept verbatim.
    fn children(&self, el: roxmltree::Node<'a, 'input>) -> Vec<Child<'a, 'input>> {
        let mut out = Vec::new();
        let mut run = String::new();
        for c in el.children() {
            if c.is_text() {
                run.push_str(c.text().unwrap_or(""));
            } else if c.is_element() {
                flush(&mut run, &mut out);
                out.push(Child::Element(c));
            }
        }
        flush(&mut run, &mut out);
        out
    }

    /// Groovy `Node.text()`: the text of all descendants, concatenated.
    fn text(&self, el: roxmltree::Node<'a, 'input>) -> String {
        let mut s = String::new();
        for c in self.children(el) {
            match c {
                Child::Text(t) => s.push_str(&t),
                Child::Element(e) => s.push_str(&self.text(e)),
            }
        }
        s
    }

    /// `XmlParserUtil.toObject(node, false)`.
    fn to_object(&self, el: roxmltree::Node<'a, 'input>) -> Node {
        let line = line_of(self.doc, el);
        let children = self.children(el);
        if el.attribute("data") == Some("true") && children.len() == 1 {
            if let Child::Element(only) = &children[0] {
                return self.to_data_value(*only);
            }
        }
        let mut map = Node::new(Value::Map(Vec::new()), line);
        let text = self.text(el);
        if !text.is_empty() {
            map.put(TEXT_KEY, Node::str(text.clone(), line));
        }
        for a in el.attributes() {
            map.put(a.name(), Node::str(a.value(), line));
        }
        let mut saw_elements = false;
        for c in &children {
            let Child::Element(ch) = c else { continue };
            saw_elements = true;
            let mut name = ch.tag_name().name().to_string();
            let mut obj = self.to_object(*ch);
            if name == "element" {
                if let Some(n) = ch.attribute("name") {
                    name = n.to_string();
                    obj.remove("name");
                }
            }
            let entries = map.map_mut().expect("built as a map");
            match entries.iter_mut().find(|(k, _)| *k == name) {
                None => entries.push((name, obj)),
                Some((_, slot)) => match &mut slot.v {
                    Value::List(l) => l.push(obj),
                    _ => {
                        let prev = std::mem::replace(slot, Node::new(Value::Null, line));
                        *slot = Node::new(Value::List(vec![prev, obj]), line);
                    }
                },
            }
        }
        let len = map.map().map_or(0, Vec::len);
        if len == 1 && map.contains_key(TEXT_KEY) {
            return Node::str(text, line);
        }
        if len == 0 {
            return Node::str("", line);
        }
        if saw_elements {
            map.remove(TEXT_KEY);
        }
        map
    }

    /// `XmlParserUtil.toDataValue`: the generic `<map>/<list>/<set>/<value>` form.
    fn to_data_value(&self, el: roxmltree::Node<'a, 'input>) -> Node {
        let line = line_of(self.doc, el);
        let elements = || el.children().filter(|c| c.is_element());
        match el.tag_name().name() {
            "map" => {
                let mut m = Node::new(Value::Map(Vec::new()), line);
                for e in elements() {
                    if let Some(k) = e.attribute("key").filter(|k| !k.is_empty()) {
                        m.put(k, self.to_data_value(e));
                    }
                }
                m
            }
            "list" | "set" => Node::new(
                Value::List(elements().map(|e| self.to_data_value(e)).collect()),
                line,
            ),
            "value" => {
                let kids = self.children(el);
                match kids.as_slice() {
                    [Child::Text(t)] => Node::str(t.clone(), line),
                    [Child::Element(e)] => Node::str(self.text(*e), line),
                    _ => Node::new(Value::Null, line),
                }
            }
            _ => Node::new(Value::Null, line),
        }
    }
}

fn flush(run: &mut String, out: &mut Vec<Child>) {
    if !run.is_empty() {
        if !java_trim(run).is_empty() {
            out.push(Child::Text(std::mem::take(run)));
        } else {
            run.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(xml: &str) -> Node {
        load_jobs(xml).unwrap().remove(0)
    }

    #[test]
    fn attributes_and_children_merge() {
        let j = job(
            "<joblist><job><a x='1'><y>2</y></a><b>t</b><b>u</b><c/><d>  </d>\
                     <e k='v'>text</e></job></joblist>",
        );
        let a = j.get("a").unwrap();
        assert_eq!(a.get("x").unwrap().as_str(), Some("1"));
        assert_eq!(a.get("y").unwrap().as_str(), Some("2"));
        assert_eq!(j.get("b").unwrap().list().unwrap().len(), 2);
        assert_eq!(j.get("c").unwrap().as_str(), Some(""));
        assert_eq!(j.get("d").unwrap().as_str(), Some(""));
        let e = j.get("e").unwrap();
        assert_eq!(e.get(TEXT_KEY).unwrap().as_str(), Some("text"));
        assert_eq!(e.get("k").unwrap().as_str(), Some("v"));
    }

    #[test]
    fn text_kept_verbatim_and_comments_skipped() {
        let j = job(
            "<joblist><job><s>\n  a <!-- c --> b\n</s><t><![CDATA[x\r\ny ]]></t></job></joblist>",
        );
        assert_eq!(j.get("s").unwrap().as_str(), Some("\n  a  b\n"));
        assert_eq!(j.get("t").unwrap().as_str(), Some("x\ny "));
    }

    #[test]
    fn data_structures() {
        let j = job(
            "<joblist><job><configuration data='true'><map><value key='a'>b</value>\
                     <list key='c'><value>d</value></list></map></configuration></job></joblist>",
        );
        let c = j.get("configuration").unwrap();
        assert_eq!(c.get("a").unwrap().as_str(), Some("b"));
        assert_eq!(c.get("c").unwrap().list().unwrap()[0].as_str(), Some("d"));
    }

    #[test]
    fn deep_nesting_is_refused_before_anything_recurses() {
        let deep = format!(
            "<joblist><job><name>deep</name>{}{}</job></joblist>",
            "<a>".repeat(100_000),
            "</a>".repeat(100_000)
        );
        let e = load_jobs(&deep).unwrap_err();
        assert!(e.message.contains("nest more than 64"), "{}", e.message);
        let fine = format!(
            "<joblist><job><name>ok</name>{}{}</job></joblist>",
            "<a>".repeat(20),
            "</a>".repeat(20)
        );
        load_jobs(&fine).unwrap();
    }

    #[test]
    fn root_and_doctype_checks() {
        assert!(load_jobs("<jobs><job/></jobs>")
            .unwrap_err()
            .message
            .contains("joblist"));
        assert!(load_jobs("<joblist></joblist>")
            .unwrap_err()
            .message
            .contains("'job'"));
        assert!(load_jobs("<!DOCTYPE joblist><joblist><job/></joblist>").is_err());
    }
}
