//! Rundeck's resource model (nodes) and node-filter language, for a runner that must accept an
//! operations team's existing Rundeck inventories and job filters unchanged.
//!
//! Why it exists: sortie runs Rundeck jobs without a Rundeck server, so it must read the same
//! resource files (YAML, XML, JSON), select the same nodes for the same filter string, order them
//! the same way and expose the same `${node.*}` values. "The same" means the behaviour of
//! Rundeck's Java source, quirks included; every quirk reproduced here is named in the doc of the
//! function that reproduces it, and every deliberate deviation says so.
//!
//! How it is shaped: one file per concept, in the order data flows.
//! - [`resource`] parses resource files into [`Node`]s and merges several sources.
//! - [`node`] is the node itself: attributes, tags, SSH address parts, data context.
//! - [`filter`] parses a filter string and selects nodes.
//! - [`rank`] orders the selected nodes for dispatch.
//! - [`java`] holds the few Java library behaviours the semantics depend on
//!   (`String.split`, `String.compareTo`, `Double.toString`), and compiles Java's regular
//!   expressions, which the jobs' option rules and log filters use too.
//!
//! `${…}` expansion is not done here: Rundeck expands option references in a filter before it
//! parses it, and so must the caller.

pub mod filter;
pub mod java;
pub mod node;
pub mod rank;
pub mod resource;
pub mod ssh;
#[cfg(test)]
mod tests;

pub use filter::Filter;
pub use node::Node;
pub use rank::{rank_ordered, RankOrder};
