//! Real resource files (tests/data/nodes), one test per file. The expected facts were written
//! by reading the files, not by printing what the parser returns.

use std::fs;

use crate::nodes::{rank_ordered, RankOrder};

use super::util::{corpus, data_dir, find, names};

#[test]
fn every_corpus_file_parses() {
    let dir = data_dir().join("nodes");
    let mut count = 0;
    for entry in fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let bytes = fs::read(&path).unwrap();
        let parsed =
            crate::nodes::resource::parse(&path, &bytes).unwrap_or_else(|e| panic!("{e:#}"));
        assert!(!parsed.is_empty(), "{}", path.display());
        count += 1;
    }
    assert_eq!(count, 8);
    let loaded = crate::nodes::resource::load(&[dir]);
    assert!(loaded.errors.is_empty(), "{:?}", loaded.errors);
    assert_eq!(loaded.nodes.len(), 2 + 3 + 8 + 3 + 5 + 2 + 1 + 2);
}

#[test]
fn example_stand_yml() {
    let nodes = corpus("rundeck-example-stand__nodes.yml");
    assert_eq!(names(&nodes), ["Debian", "FreeBSD"]);
    let debian = find(&nodes, "Debian");
    assert_eq!(debian.hostname(), Some("debian"));
    assert_eq!(debian.username(), Some("vagrant"));
    assert_eq!(debian.attributes["description"], "Debian sample host");
    assert!(debian.tags.is_empty());
    assert_eq!(find(&nodes, "FreeBSD").hostname(), Some("freebsd"));
}

#[test]
fn playground_yaml() {
    let nodes = corpus("rundeck-playground__nodes.yaml");
    assert_eq!(names(&nodes), ["fpm", "web_1", "web_2"]);
    let web = find(&nodes, "web_2");
    assert_eq!(web.hostname(), Some("web_2"));
    assert_eq!(web.sorted_tags(), ["web"]);
    assert_eq!(find(&nodes, "fpm").sorted_tags(), ["fpm"]);
    assert_eq!(web.ssh_target().unwrap().user, None);
}

#[test]
fn jsch_node_yaml() {
    let nodes = corpus("rundeck__jsch-node.yaml");
    assert_eq!(nodes.len(), 8);
    let node = find(&nodes, "ssh-node");
    assert_eq!(node.hostname(), Some("ssh-node"));
    assert_eq!(node.username(), Some("rundeck"));
    assert_eq!(node.attributes["osFamily"], "unix");
    assert_eq!(node.attributes["description"], "SSH Node for Rundeck");
    assert_eq!(
        node.sorted_tags(),
        ["auth-method-key", "envvars", "executor-test", "ssh-node"]
    );
    // A YAML boolean, stored as its Java string.
    assert_eq!(node.attributes["ssh-send-env"], "true");
    assert_eq!(
        node.attributes["ssh-key-storage-path"],
        "keys/project/core-jsch-executor-test/ssh-node.key"
    );
    assert_eq!(node.attributes["node-executor"], "jsch-ssh");
    let agent = find(&nodes, "ssh-agent-node");
    assert_eq!(agent.attributes["local-ssh-agent"], "true");
    assert!(!agent.attributes.contains_key("ssh-send-env"));
    let option = find(&nodes, "ssh-node-option-passphrase");
    assert_eq!(
        option.attributes["ssh-key-passphrase-option"],
        "option.sshKeyPassphrase"
    );
    assert!(option.tags.contains("option-test"));
    // The data context of a node as a script would see it.
    let data = node.data_context();
    assert_eq!(data["os-family"], "unix");
    assert_eq!(
        data["tags"],
        "auth-method-key,envvars,executor-test,ssh-node"
    );
    assert_eq!(data["ssh-authentication"], "privateKey");
    assert!(!data.contains_key("osFamily"));
}

#[test]
fn test_dispatch_nodes_xml() {
    let nodes = corpus("rundeck__test-dispatch-nodes.xml");
    assert_eq!(names(&nodes), ["cheat", "homestar", "strongbad"]);
    let homestar = find(&nodes, "homestar");
    assert_eq!(homestar.hostname(), Some("homestar"));
    assert_eq!(homestar.username(), Some("username1"));
    assert_eq!(homestar.sorted_tags(), ["boring", "priority1"]);
    assert_eq!(homestar.attributes["osArch"], "arm");
    assert_eq!(homestar.attributes["type"], "Node");
    assert_eq!(
        homestar.attributes["description"],
        "this is the testnode1 node"
    );
    // hostname="the@cheat": the user comes from the hostname.
    let cheat = find(&nodes, "cheat");
    assert_eq!(cheat.hostname(), Some("the@cheat"));
    let target = cheat.ssh_target().unwrap();
    assert_eq!(target.user.as_deref(), Some("the"));
    assert_eq!(target.host, "cheat");
    assert_eq!(find(&nodes, "strongbad").attributes["osName"], "Mac OS Xzz");
    assert_eq!(
        find(&nodes, "strongbad").sorted_tags(),
        ["elf", "priority1"]
    );
}

#[test]
fn test_nodes4_xml() {
    let nodes = corpus("rundeck__test-nodes4.xml");
    assert_eq!(nodes.len(), 5);
    let n1 = find(&nodes, "testnode1");
    assert_eq!(n1.hostname(), Some("host1.local"));
    assert_eq!(n1.username(), Some("username1"));
    assert_eq!(n1.attributes["type"], "SubNode");
    assert_eq!(n1.attributes["editUrl"], "TestEditUrl1");
    assert_eq!(n1.attributes["rank"], "50");
    assert_eq!(n1.sorted_tags(), ["boring", "priority1"]);
    assert_eq!(
        find(&nodes, "testnode2").attributes["remoteUrl"],
        "TestRemoteUrl2"
    );
    assert!(!find(&nodes, "testnode2")
        .attributes
        .contains_key("colorRank"));
    // Ranked by the numeric `rank` attribute, and by `colorRank` with missing values last.
    let by_rank = rank_ordered(&nodes, Some("rank"), RankOrder::Ascending);
    assert_eq!(
        names(by_rank),
        [
            "testnode5",
            "testnode4",
            "testnode3",
            "testnode2",
            "testnode1"
        ]
    );
    let by_color = rank_ordered(&nodes, Some("colorRank"), RankOrder::Ascending);
    assert_eq!(
        names(by_color),
        [
            "testnode1",
            "testnode3",
            "testnode5",
            "testnode2",
            "testnode4"
        ]
    );
    let by_color = rank_ordered(&nodes, Some("colorRank"), RankOrder::Descending);
    assert_eq!(
        names(by_color),
        [
            "testnode4",
            "testnode2",
            "testnode5",
            "testnode3",
            "testnode1"
        ]
    );
}

#[test]
fn test_resource_json() {
    let nodes = corpus("rundeck__test-resource.json");
    assert_eq!(names(&nodes), ["test-node", "test-node2"]);
    let node = find(&nodes, "test-node");
    assert_eq!(node.hostname(), Some("http://localhost:4443"));
    assert_eq!(node.username(), Some("rundeck"));
    assert_eq!(node.attributes["customIdx"], "01");
    assert_eq!(node.attributes["customEnv"], "test");
    assert_eq!(node.sorted_tags(), ["test", "testBoth"]);
    assert_eq!(find(&nodes, "test-node2").username(), Some("rundeck1"));
    assert_eq!(
        find(&nodes, "test-node2").sorted_tags(),
        ["test2", "testBoth"]
    );
}

#[test]
fn test_resources2_xml() {
    let nodes = corpus("rundeck__test-resources2.xml");
    assert_eq!(names(&nodes), ["node1"]);
    let node = &nodes[0];
    assert_eq!(node.hostname(), Some("hostname1"));
    assert_eq!(node.username(), Some("username1"));
    assert_eq!(node.attributes["osName"], "osName1");
    assert_eq!(node.attributes["description"], "description1");
    assert_eq!(node.sorted_tags(), ["tag1", "tag2"]);
    assert_eq!(node.attributes["testattribute"], "testvalue");
    assert_eq!(node.attributes["testattribute2"], "test value2");
    assert_eq!(node.attributes["testattribute3"], "test value3");
    assert_eq!(node.attributes["editUrl"], "EditURL");
}

#[test]
fn as_code_resources_yaml() {
    let nodes = corpus("rundeck_as_code__resources.yaml");
    assert_eq!(names(&nodes), ["node01", "node02"]);
    let node = find(&nodes, "node01");
    assert_eq!(node.hostname(), Some("10.0.0.1"));
    assert_eq!(node.username(), Some("rundeck"));
    assert_eq!(node.attributes["osArch"], "amd64");
    assert_eq!(
        node.attributes["ssh-key-storage-path"],
        "keys/project/project/rundeck"
    );
    assert!(!node.attributes.contains_key("nodename"));
    assert_eq!(find(&nodes, "node02").hostname(), Some("10.0.0.2"));
    let target = node.ssh_target().unwrap();
    assert_eq!(
        (target.user.as_deref(), target.host.as_str(), target.port),
        (Some("rundeck"), "10.0.0.1", None)
    );
}
