//! Inventory discovery: `sortie discover` from every kind of source — the
//! runner's host, resource files, an OpenSSH client config, ansible-core's
//! `ansible-inventory`, EC2 (moto), the Kubernetes API (a NodeList and a
//! PodList in the API's v1 shape, served over TLS behind a bearer token) and
//! a command —, merged, with the sources that failed or ran out of time named;
//! and `sortie poll --inventory-every` reporting it to the control plane.

use std::path::Path;
use std::process::Command;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Instant;

use serde_json::{json, Value};

use crate::support::*;
use crate::wire::{serve, Reply, Response};

/// A stand-in Kubernetes API over TLS: the fixtures' NodeList and PodList (of
/// namespace `apps`) for the right bearer token, 401 otherwise. Its URL and CA file.
fn kubernetes_api(dir: &Path, token: &str) -> (String, std::path::PathBuf) {
    let ca = sortie_control_plane::pki::Authority::generate("cluster CA").unwrap();
    let tls = server_tls(&ca.server(&["127.0.0.1"]).unwrap());
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("https://{}", listener.local_addr().unwrap());
    let bearer = format!("Bearer {token}");
    let handler: Arc<crate::wire::Handler> = Arc::new(move |req: crate::wire::Request| {
        if req.header("authorization") != Some(bearer.as_str()) {
            return Reply::Respond(Response::json(
                401,
                &json!({"kind": "Status", "message": "Unauthorized"}),
            ));
        }
        let file = match req.path.as_str() {
            "/api/v1/nodes" => "kubernetes/nodes.json",
            "/api/v1/namespaces/apps/pods" => "kubernetes/pods.json",
            _ => return Reply::Respond(Response::json(404, &json!({"message": "not found"}))),
        };
        Reply::Respond(Response::json(200, &fixture_json(file)))
    });
    std::thread::spawn(move || {
        serve(
            listener,
            Arc::new(tls),
            handler,
            Arc::new(AtomicBool::new(false)),
        )
    });
    let ca_file = dir.join("cluster-ca.pem");
    std::fs::write(&ca_file, ca.cert_pem()).unwrap();
    (url, ca_file)
}

/// moto's EC2 with three instances: web-1 and web-2 (env=prod), batch (env=dev).
fn ec2() -> (Daemon, String) {
    let setup = r#"
import sys, boto3
ec2 = boto3.client("ec2", endpoint_url=sys.argv[1], region_name="eu-west-1",
                   aws_access_key_id="AKIDSETUP", aws_secret_access_key="setup")
# Two of an auto scaling group share their Name.
for name, env in [("web-1", "prod"), ("web-2", "prod"), ("batch", "dev"), ("asg", "prod"), ("asg", "prod")]:
    ec2.run_instances(ImageId="ami-12c6146b", MinCount=1, MaxCount=1, TagSpecifications=[{
        "ResourceType": "instance",
        "Tags": [{"Key": "Name", "Value": name}, {"Key": "env", "Value": env}]}])
"#;
    let (daemon, url, _) = moto(&[], setup);
    (daemon, url)
}

/// Every kind of source in one config, two commands that fail and one that
/// hangs; the AWS and PATH settings `sortie` needs. (dir, config, env)
struct Sources {
    dir: tempfile::TempDir,
    config: std::path::PathBuf,
    _moto: Daemon,
    moto_url: String,
}

const CLUSTER_TOKEN: &str = "cluster-token-5d9f2a7c";
const ANSIBLE_PASSWORD: &str = "ansible-password-71c3";

impl Sources {
    fn new() -> Sources {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let write = |name: &str, text: &str| {
            let path = d.join(name);
            std::fs::write(&path, text).unwrap();
            path
        };
        let files = write(
            "nodes.yaml",
            "db1:\n  hostname: 10.0.0.9\n  tags: db\nweb-1:\n  hostname: web-1.static\n  osFamily: unix\n",
        );
        let ssh = write(
            "ssh_config",
            "Host bastion\n  HostName 203.0.113.7\n  User ops\n  Port 2222\nHost *\n  User nobody\n",
        );
        let ansible = write(
            "hosts.ini",
            &format!(
                "[web]\napp1 ansible_host=10.1.0.1 ansible_user=deploy ansible_password={ANSIBLE_PASSWORD}\n"
            ),
        );
        let token = write("token", CLUSTER_TOKEN);
        let (api, ca) = kubernetes_api(d, CLUSTER_TOKEN);
        let (moto, moto_url) = ec2();
        let config = json!({
            "timeout": "20s",
            "sources": [
                {"host": {}},
                {"files": [files]},
                {"ssh_config": ssh},
                {"ansible": [ansible]},
                {"ec2": {"regions": ["eu-west-1"], "filters": {"tag:env": ["prod"]}}},
                {"kubernetes": {"api": api, "token_file": token, "ca_file": ca, "namespace": "apps"}},
                {"command": ["sh", "-c", "echo '{\"cmdb1\": {\"hostname\": \"cmdb.internal\", \"tags\": \"cmdb\"}}'"]},
                {"command": ["sh", "-c", "echo the CMDB is down >&2; exit 3"]},
                {"command": ["sleep", "30"], "timeout": "1s"},
                // An inventory that is not there is an error, not no hosts.
                {"ansible": ["/nonexistent/hosts"]},
            ],
        });
        // The config as YAML's JSON subset.
        let config_path = write("inventory.yaml", &config.to_string());
        Sources {
            dir,
            config: config_path,
            _moto: moto,
            moto_url,
        }
    }

    /// `sortie ARGS` with the sources' environment.
    fn sortie(&self, args: &[&str]) -> Command {
        let mut cmd = sortie();
        cmd.args(args)
            .arg("--inventory-config")
            .arg(&self.config)
            .args(["--node-name", "runner-1", "--tag", "eu"])
            .env(
                "PATH",
                format!(
                    "{}:{}",
                    peer("ansible-inventory").parent().unwrap().display(),
                    std::env::var("PATH").unwrap()
                ),
            )
            .env("AWS_ENDPOINT_URL", &self.moto_url)
            .env("AWS_REGION", "eu-west-1")
            .env("AWS_ACCESS_KEY_ID", "AKIDRUNNER")
            .env("AWS_SECRET_ACCESS_KEY", "runner-secret-key-4e1b")
            .env("ANSIBLE_HOME", self.dir.path().join("ansible-home"));
        cmd
    }
}

/// The nodes every source gave, as the tests expect them.
fn assert_every_source(nodes: &Value) {
    // Instances sharing a Name are each NAME-INSTANCEID.
    let (twins, names): (Vec<&str>, Vec<&str>) = nodes
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .partition(|n| n.starts_with("asg-i-"));
    assert_eq!(twins.len(), 2, "{nodes:#}");
    assert_eq!(
        names,
        [
            "app1",
            "apps/migrate-28811",
            "apps/web-7d4b9c-x2k8p",
            "bastion",
            "cmdb1",
            "db1",
            "runner-1",
            "web-1",
            "web-2",
            "worker-a",
            "worker-b",
        ],
        "{nodes:#}"
    );
    // The runner's own node.
    assert!(nodes["runner-1"]["tags"].as_str().unwrap().contains("eu"));
    assert!(
        nodes["runner-1"]["cpus"]
            .as_str()
            .unwrap()
            .parse::<u32>()
            .unwrap()
            >= 1
    );
    // A resource file comes before EC2: its hostname stays, EC2's goes beside it.
    assert_eq!(nodes["web-1"]["hostname"], "web-1.static");
    assert!(nodes["web-1"]["ec2.hostname"]
        .as_str()
        .unwrap()
        .starts_with("10."));
    assert!(nodes["web-1"]["instanceId"]
        .as_str()
        .unwrap()
        .starts_with("i-"));
    assert_eq!(nodes["web-2"]["tag:env"], "prod");
    // ssh_config, ansible, kubernetes, command.
    assert_eq!(nodes["bastion"]["hostname"], "203.0.113.7");
    assert_eq!(nodes["bastion"]["username"], "ops");
    assert_eq!(nodes["bastion"]["ssh-port"], "2222");
    assert_eq!(nodes["app1"]["hostname"], "10.1.0.1");
    assert_eq!(nodes["app1"]["username"], "deploy");
    assert_eq!(nodes["app1"]["tags"], "web");
    assert_eq!(nodes["worker-a"]["hostname"], "172.18.0.3");
    assert!(nodes["worker-b"]["tags"]
        .as_str()
        .unwrap()
        .contains("NotReady"));
    assert_eq!(nodes["apps/web-7d4b9c-x2k8p"]["hostname"], "10.244.1.17");
    assert_eq!(nodes["cmdb1"]["hostname"], "cmdb.internal");
}

#[test]
fn discover_merges_every_source_and_names_those_that_failed_or_hung() {
    let sources = Sources::new();
    let started = Instant::now();
    let out = run(&mut sources.sortie(&["discover"]), code::CONFIG);
    let nodes: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_every_source(&nodes);
    // The dev instance is filtered out; no credential leaves.
    assert!(nodes.get("batch").is_none());
    let text = stdout(&out) + &stderr(&out);
    for secret in [CLUSTER_TOKEN, ANSIBLE_PASSWORD, "runner-secret-key-4e1b"] {
        assert!(!text.contains(secret), "{secret} in {text}");
    }
    let err = stderr(&out);
    // The figures, for `cargo test -- --nocapture`.
    eprintln!(
        "sortie discover, 10 sources, in {:?}:\n{err}{}",
        started.elapsed(),
        stdout(&out)
    );
    assert!(
        err.contains("source command#2: failed: sh exited with 3: the CMDB is down"),
        "{err}"
    );
    assert!(
        err.contains("source command#3: failed: sleep timed out"),
        "{err}"
    );
    assert!(err.contains("source ec2: 4 node(s)"), "{err}");
    assert!(err.contains("source ansible#2: failed: "), "{err}");

    // The other formats say the same.
    let out = run(
        &mut sources.sortie(&["discover", "--format", "yaml"]),
        code::CONFIG,
    );
    assert!(
        stdout(&out).contains("\"bastion\":\n  \"hostname\": \"203.0.113.7\""),
        "{}",
        stdout(&out)
    );
    let out = run(
        &mut sources.sortie(&["discover", "--format", "table"]),
        code::CONFIG,
    );
    assert!(stdout(&out)
        .lines()
        .any(|l| l.starts_with("worker-a") && l.contains("172.18.0.3")));
}

#[test]
fn poll_reports_the_inventory_at_most_every_interval_and_a_failure_never_fails_the_shot() {
    let sources = Sources::new();
    let cp = ControlPlane::start();
    let state = sources.dir.path().join("state");
    let poll = |code: u8| {
        let mut cmd = sources.sortie(&["poll"]);
        let base = cp.poll(&state);
        cmd.args(base.get_args().skip(1))
            .args(["--inventory-every", "1h"]);
        run(&mut cmd, code)
    };
    poll(code::OK);
    let stored = cp.server.store().inventory().unwrap();
    let reported = &stored["test-runner"];
    assert_every_source(&reported.nodes);
    let failed: Vec<&str> = reported
        .sources
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s.get("error").is_some())
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(failed, ["command#2", "command#3", "ansible#2"]);
    // Not due again within the hour.
    let first = reported.at_ms;
    poll(code::OK);
    assert_eq!(
        cp.server.store().inventory().unwrap()["test-runner"].at_ms,
        first
    );

    // The admin API shows it with the time it was reported.
    let out = Command::new("curl")
        .args(["-sS", "--cacert"])
        .arg(&cp.pki.ca_file)
        .args(["-H", &format!("Authorization: Bearer {ADMIN_TOKEN}")])
        .arg(format!("{}admin/inventory", cp.server.url()))
        .output()
        .unwrap();
    let view: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        view["test-runner"]["reported_at"]
            .as_str()
            .unwrap()
            .ends_with('Z'),
        "{view}"
    );
    assert_eq!(view["test-runner"]["nodes"]["db1"]["hostname"], "10.0.0.9");

    // A control plane that refuses the report: the shot still succeeds, and
    // the next shot tries again (the mark was not moved).
    std::fs::remove_file(state.join("inventory-reported")).unwrap();
    cp.inject(crate::fault_proxy::Fault {
        endpoint: crate::fault_proxy::Endpoint::Inventory,
        nth: 1,
        times: 100,
        kind: crate::fault_proxy::FaultKind::Status {
            status: 500,
            retry_after: None,
        },
    });
    poll(code::OK);
    assert!(!state.join("inventory-reported").exists());
    cp.clear_faults();

    // A mark that is no time, or one in the future, is no mark; a FIFO is
    // not waited on: the shot reports.
    for mark in ["18446744073709551615", "99999999999", "fifo"] {
        let path = state.join("inventory-reported");
        let _ = std::fs::remove_file(&path);
        match mark {
            "fifo" => assert!(Command::new("mkfifo")
                .arg(&path)
                .status()
                .unwrap()
                .success()),
            text => std::fs::write(&path, text).unwrap(),
        }
        let before = cp.server.store().inventory().unwrap()["test-runner"].at_ms;
        poll(code::OK);
        let after = cp.server.store().inventory().unwrap()["test-runner"].at_ms;
        assert!(after > before, "{mark}: not reported again");
    }
}

#[test]
fn a_source_that_hangs_past_its_time_leaves_no_process_behind() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("inventory.yaml");
    std::fs::write(
        &config,
        "sources:\n  - command: [sleep, \"987.25\"]\n    timeout: 1s\n",
    )
    .unwrap();
    let out = run(
        sortie()
            .arg("discover")
            .arg("--inventory-config")
            .arg(&config),
        code::CONFIG,
    );
    assert!(stderr(&out).contains("sleep timed out"), "{}", stderr(&out));
    let left: Vec<_> = std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter(|e| std::fs::read(e.path().join("cmdline")).is_ok_and(|c| c == b"sleep\0987.25\0"))
        .collect();
    assert!(left.is_empty(), "left running: {left:?}");
}
