//! The order in which selected nodes are dispatched, and the order of node sets.
//!
//! Why it exists: a Rundeck job with `rankAttribute`/`rankOrder` runs its nodes in the order of
//! `INodeEntryComparator.rankOrderedNodes`, and sequential jobs (deploy `db` before `web`) depend
//! on it. Node sets themselves are `TreeMap`s keyed by name, so every listing is in Java
//! `String.compareTo` order — UTF-16 code units, which differs from Rust's `str` order for names
//! outside the Basic Multilingual Plane.
//!
//! How it is shaped: one comparator function mirrors the Java one, and the sort is a stable merge
//! sort written here rather than `slice::sort_by`, because the Java comparator is not a total
//! order for some mixes of numeric and non-numeric values (`"9" < "10"` numerically,
//! `"10" < "5x" < "9"` as strings) and Rust's sort may panic on such a comparator. For any input
//! on which the comparator is consistent the result equals Java's stable sort.

use std::cmp::Ordering;

use crate::nodes::java;
use crate::nodes::node::Node;

/// `rankOrder`: ascending (Rundeck's default) or descending.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RankOrder {
    /// Lowest rank first.
    #[default]
    Ascending,
    /// The whole comparison reversed: highest rank first, and nodes without the rank attribute
    /// before nodes with it.
    Descending,
}

/// Compare two node names as Java's `String.compareTo` does (UTF-16 code units).
pub fn compare_names(a: &str, b: &str) -> Ordering {
    java::compare_strings(a, b)
}

/// `INodeEntryComparator.compare`.
///
/// The rank key is the attribute `rank_attribute` (looked up as Rundeck does, so `nodename`
/// works), or the node name when there is no rank attribute. When both nodes have a key and
/// both keys parse as a 64-bit integer (`Long.parseLong`: optional sign, ASCII digits) they
/// compare numerically; if that is a tie or either is not a number, they compare as strings.
/// A node with the key comes before a node without it. Remaining ties are broken by name.
pub fn compare_rank(a: &Node, b: &Node, rank_attribute: Option<&str>) -> Ordering {
    let (key_a, key_b) = match rank_attribute {
        Some(attribute) => (a.attribute(attribute), b.attribute(attribute)),
        None => (Some(a.name.as_str().into()), Some(b.name.as_str().into())),
    };
    let by_key = match (key_a.as_deref(), key_b.as_deref()) {
        (Some(x), Some(y)) => {
            let numeric = match (x.parse::<i64>(), y.parse::<i64>()) {
                (Ok(m), Ok(n)) => m.cmp(&n),
                _ => Ordering::Equal,
            };
            numeric.then_with(|| java::compare_strings(x, y))
        }
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => Ordering::Equal,
    };
    by_key.then_with(|| compare_names(&a.name, &b.name))
}

/// The nodes in dispatch order (`INodeEntryComparator.rankOrderedNodes`).
pub fn rank_ordered<'a, I>(
    nodes: I,
    rank_attribute: Option<&str>,
    order: RankOrder,
) -> Vec<&'a Node>
where
    I: IntoIterator<Item = &'a Node>,
{
    let mut nodes: Vec<&Node> = nodes.into_iter().collect();
    merge_sort(&mut nodes, &|a: &&Node, b: &&Node| {
        let ordering = compare_rank(a, b, rank_attribute);
        match order {
            RankOrder::Ascending => ordering,
            RankOrder::Descending => ordering.reverse(),
        }
    });
    nodes
}

/// Sort nodes by name in Java order, the order of a Rundeck node set.
pub fn sort_by_name(nodes: &mut [Node]) {
    nodes.sort_by(|a, b| compare_names(&a.name, &b.name));
}

/// A stable top-down merge sort that never panics, whatever the comparator does.
fn merge_sort<T: Copy>(items: &mut [T], cmp: &dyn Fn(&T, &T) -> Ordering) {
    if items.len() < 2 {
        return;
    }
    let mid = items.len() / 2;
    merge_sort(&mut items[..mid], cmp);
    merge_sort(&mut items[mid..], cmp);
    let (left, right) = items.split_at(mid);
    let mut merged = Vec::with_capacity(items.len());
    let (mut i, mut j) = (0, 0);
    while i < left.len() && j < right.len() {
        if cmp(&right[j], &left[i]) == Ordering::Less {
            merged.push(right[j]);
            j += 1;
        } else {
            merged.push(left[i]);
            i += 1;
        }
    }
    merged.extend_from_slice(&left[i..]);
    merged.extend_from_slice(&right[j..]);
    items.copy_from_slice(&merged);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(nodes: &[&Node]) -> Vec<String> {
        nodes.iter().map(|n| n.name.clone()).collect()
    }

    fn ranked(ranks: &[(&str, Option<&str>)]) -> Vec<Node> {
        ranks
            .iter()
            .map(|(name, rank)| {
                let node = Node::new(*name);
                match rank {
                    Some(r) => node.with("rank", *r),
                    None => node,
                }
            })
            .collect()
    }

    /// TestINodeEntryComparator.testCompareDefaultProperty / testCompareRankProperty.
    #[test]
    fn default_is_by_name_and_rank_attribute_orders() {
        let nodes = ranked(&[
            ("ghi", Some("123")),
            ("abc", Some("789")),
            ("def", Some("456")),
        ]);
        assert_eq!(
            names(&rank_ordered(&nodes, None, RankOrder::Ascending)),
            ["abc", "def", "ghi"]
        );
        assert_eq!(
            names(&rank_ordered(&nodes, Some("rank"), RankOrder::Ascending)),
            ["ghi", "def", "abc"]
        );
    }

    /// TestINodeEntryComparator.testCompareRankPropertyNumeric(2): numbers compare numerically,
    /// equal numbers as strings, missing ranks last.
    #[test]
    fn numeric_then_string_then_missing() {
        let nodes = ranked(&[
            ("mno", None),
            ("ghi", Some("131415")),
            ("def", Some("00456")),
            ("jkl", None),
            ("abc", Some("123")),
        ]);
        assert_eq!(
            names(&rank_ordered(&nodes, Some("rank"), RankOrder::Ascending)),
            ["abc", "def", "ghi", "jkl", "mno"]
        );
        let nodes = ranked(&[
            ("d", Some("456")),
            ("c", Some("0456")),
            ("b", Some("00456")),
            ("a", Some("123")),
        ]);
        assert_eq!(
            names(&rank_ordered(&nodes, Some("rank"), RankOrder::Ascending)),
            ["a", "b", "c", "d"]
        );
    }

    #[test]
    fn string_ranks_and_mixed() {
        let nodes = ranked(&[
            ("n1", Some("b")),
            ("n2", Some("a")),
            ("n3", Some("10")),
            ("n4", Some("9")),
        ]);
        // "10" vs "9": numeric; "9" vs "a": string ('9' < 'a'); "10" vs "a": string.
        assert_eq!(
            names(&rank_ordered(&nodes, Some("rank"), RankOrder::Ascending)),
            ["n4", "n3", "n2", "n1"]
        );
    }

    #[test]
    fn descending_reverses_everything() {
        let nodes = ranked(&[("a", Some("1")), ("b", Some("2")), ("c", None), ("d", None)]);
        assert_eq!(
            names(&rank_ordered(&nodes, Some("rank"), RankOrder::Descending)),
            ["d", "c", "b", "a"]
        );
        assert_eq!(
            names(&rank_ordered(&nodes, None, RankOrder::Descending)),
            ["d", "c", "b", "a"]
        );
    }

    #[test]
    fn numeric_node_names_without_rank_attribute() {
        let nodes = ranked(&[("10", None), ("9", None), ("web", None)]);
        assert_eq!(
            names(&rank_ordered(&nodes, None, RankOrder::Ascending)),
            ["9", "10", "web"]
        );
    }

    #[test]
    fn rank_by_nodename_attribute() {
        let nodes = ranked(&[("b", None), ("a", None)]);
        assert_eq!(
            names(&rank_ordered(
                &nodes,
                Some("nodename"),
                RankOrder::Ascending
            )),
            ["a", "b"]
        );
    }

    #[test]
    fn inconsistent_comparator_does_not_panic() {
        let nodes: Vec<Node> = (0..200)
            .map(|i| Node::new(format!("n{i}")).with("rank", ["9", "10", "5x"][i % 3]))
            .collect();
        assert_eq!(
            rank_ordered(&nodes, Some("rank"), RankOrder::Ascending).len(),
            200
        );
    }

    #[test]
    fn names_sort_in_utf16_order() {
        let mut nodes = vec![
            Node::new("\u{E000}"),
            Node::new("\u{1F600}"),
            Node::new("a"),
        ];
        sort_by_name(&mut nodes);
        let got: Vec<&str> = nodes.iter().map(|n| n.name.as_str()).collect();
        assert_eq!(got, ["a", "\u{1F600}", "\u{E000}"]);
    }
}
