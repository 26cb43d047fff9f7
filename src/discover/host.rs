//! The runner's own host as a node: what an operator needs to know of the
//! machine a runner is on, read from the kernel, never from a command.

use crate::nodes::Node;

/// The runner's node: its name and tags.
#[derive(Debug, Clone)]
pub struct Host {
    pub name: String,
    pub tags: Vec<String>,
}

impl Host {
    pub fn node(&self) -> Node {
        let read = |path: &str| {
            std::fs::read_to_string(path)
                .map(|s| s.trim().to_string())
                .unwrap_or_default()
        };
        // What a job sees of it, and what only an inventory needs.
        let mut node = Node::local(&self.name)
            .with("osVersion", read("/proc/sys/kernel/osrelease"))
            .with(
                "cpus",
                std::thread::available_parallelism()
                    .map_or(0, |n| n.get())
                    .to_string(),
            )
            .with("sortie-version", env!("CARGO_PKG_VERSION"));
        if let Some(distro) = os_release() {
            node = node.with("distribution", distro);
        }
        if let Some(kib) = mem_total_kib(&read("/proc/meminfo")) {
            node = node.with("memoryMiB", (kib / 1024).to_string());
        }
        let addresses = crate::os::addresses();
        if !addresses.is_empty() {
            node = node.with("addresses", addresses.join(","));
        }
        node.tags.extend(self.tags.iter().cloned());
        node.tags.insert("sortie-runner".into());
        node
    }
}

/// `PRETTY_NAME` of /etc/os-release.
fn os_release() -> Option<String> {
    let text = std::fs::read_to_string("/etc/os-release").ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("PRETTY_NAME="))
        .map(|v| v.trim_matches('"').to_string())
}

/// `MemTotal` of /proc/meminfo, in KiB.
fn mem_total_kib(meminfo: &str) -> Option<u64> {
    meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_host_node_says_what_the_machine_is() {
        let node = Host {
            name: "runner-1".into(),
            tags: vec!["eu".into()],
        }
        .node();
        assert_eq!(node.name, "runner-1");
        assert!(node.attributes["cpus"].parse::<u32>().unwrap() >= 1);
        assert!(!node.attributes["osVersion"].is_empty());
        assert!(node.tags.contains("eu") && node.tags.contains("sortie-runner"));
        assert_eq!(
            mem_total_kib("MemFree: 1 kB\nMemTotal:  2048 kB\n"),
            Some(2048)
        );
    }
}
