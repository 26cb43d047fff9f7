//! Node dispatch over real OpenSSH servers: selection, strategies, failures,
//! supervision on the node, secrets, connection reuse.
//!
//! Each `Lab` starts its own `sshd` servers (Debian's openssh-server) on
//! loopback ports, with their own host keys and authorized_keys, as the user
//! the suite runs as; one test puts them in network namespaces with addresses
//! of their own. Steps run "remotely" on this same machine, so the tests can
//! look at what happened on a node through /proc and shared files.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use serde_json::{json, Value};

use crate::support::*;

const SSHD: &str = "/usr/sbin/sshd";

/// One OpenSSH server.
struct Sshd {
    address: String,
    port: u16,
    log: PathBuf,
    host_key: String,
    _daemon: Daemon,
}

/// Servers, a client key in a secrets directory, a known_hosts file.
pub struct Lab {
    pub dir: tempfile::TempDir,
    pub user: String,
    servers: Vec<Sshd>,
}

fn sh(script: &str) -> Output {
    let out = Command::new("sh").args(["-c", script]).output().unwrap();
    assert!(
        out.status.success(),
        "{script}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

impl Lab {
    /// `n` servers on loopback.
    pub fn new(n: usize) -> Lab {
        let lab = Lab::empty();
        lab.with_servers((0..n).map(|_| ("127.0.0.1".to_string(), None)).collect())
    }

    /// A lab of `n` servers, in an inventory of nodes `n1`..`nN`, one on each.
    pub fn numbered(n: usize) -> Lab {
        let lab = Lab::new(n);
        let names: Vec<String> = (1..=n).map(|i| format!("n{i}")).collect();
        let nodes: Vec<(&str, Value)> = (0..n).map(|i| (names[i].as_str(), lab.node(i))).collect();
        lab.inventory(&nodes);
        lab
    }

    fn empty() -> Lab {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::create_dir(d.join("secrets")).unwrap();
        let keygen = |path: &Path| {
            let out = Command::new("ssh-keygen")
                .args(["-q", "-t", "ed25519", "-N", ""])
                .arg("-f")
                .arg(path)
                .output()
                .unwrap();
            assert!(out.status.success());
        };
        keygen(&d.join("secrets/node_key"));
        std::fs::copy(d.join("secrets/node_key.pub"), d.join("authorized_keys")).unwrap();
        std::fs::remove_file(d.join("secrets/node_key.pub")).unwrap();
        std::fs::create_dir_all("/run/sshd").ok();
        let user = String::from_utf8(Command::new("id").arg("-un").output().unwrap().stdout)
            .unwrap()
            .trim()
            .to_string();
        Lab {
            dir,
            user,
            servers: Vec::new(),
        }
    }

    /// Start a server on each (address, network namespace).
    fn with_servers(mut self, at: Vec<(String, Option<String>)>) -> Lab {
        for (address, netns) in at {
            let i = self.servers.len();
            let d = self.dir.path().join(format!("sshd{i}"));
            std::fs::create_dir(&d).unwrap();
            let out = Command::new("ssh-keygen")
                .args(["-q", "-t", "ed25519", "-N", ""])
                .arg("-f")
                .arg(d.join("host_key"))
                .output()
                .unwrap();
            assert!(out.status.success());
            let port = if netns.is_some() { 22 } else { free_port() };
            let config = format!(
                "Port {port}\nListenAddress {address}\nHostKey {d}/host_key\n\
                 AuthorizedKeysFile {auth}\nPidFile {d}/pid\nStrictModes no\n\
                 PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\n\
                 LogLevel VERBOSE\nMaxSessions 50\nMaxStartups 100\n\
                 Subsystem sftp internal-sftp\n\
                 SetEnv TMPDIR={tmp} PATH={bin}:/usr/local/bin:/usr/bin:/bin\n",
                d = d.display(),
                tmp = self.node_tmp().display(),
                bin = self.fake_bin().display(),
                auth = self.dir.path().join("authorized_keys").display(),
            );
            std::fs::write(d.join("sshd_config"), config).unwrap();
            let log = d.join("log");
            let mut cmd = match &netns {
                Some(ns) => {
                    let mut c = Command::new("ip");
                    c.args(["netns", "exec", ns, SSHD]);
                    c
                }
                None => Command::new(SSHD),
            };
            cmd.args(["-D", "-E"])
                .arg(&log)
                .arg("-f")
                .arg(d.join("sshd_config"));
            let log_for_ready = log.clone();
            let daemon = start_daemon(&mut cmd, "sshd", || {
                std::fs::read_to_string(&log_for_ready)
                    .is_ok_and(|l| l.contains("Server listening"))
            });
            let host_key = std::fs::read_to_string(d.join("host_key.pub"))
                .unwrap()
                .split_whitespace()
                .take(2)
                .collect::<Vec<_>>()
                .join(" ");
            self.servers.push(Sshd {
                address,
                port,
                log,
                host_key,
                _daemon: daemon,
            });
        }
        let known: String = self
            .servers
            .iter()
            .map(|s| match s.port {
                22 => format!("{} {}\n", s.address, s.host_key),
                port => format!("[{}]:{port} {}\n", s.address, s.host_key),
            })
            .collect();
        std::fs::write(self.path("known_hosts"), known).unwrap();
        self
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// A directory first on the nodes' PATH: commands a test fakes.
    pub fn fake_bin(&self) -> PathBuf {
        let bin = self.path("fake-bin");
        std::fs::create_dir_all(&bin).unwrap();
        bin
    }

    /// The nodes' $TMPDIR, where each step's private directory goes.
    fn node_tmp(&self) -> PathBuf {
        let tmp = self.path("node-tmp");
        std::fs::create_dir_all(&tmp).unwrap();
        tmp
    }

    /// What steps left in the nodes' $TMPDIR.
    fn left_on_nodes(&self) -> Vec<PathBuf> {
        std::fs::read_dir(self.node_tmp())
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect()
    }

    /// A node on server `i`, reached with the lab's key.
    pub fn node(&self, i: usize) -> Value {
        let s = &self.servers[i];
        json!({
            "hostname": format!("{}:{}", s.address, s.port),
            "username": self.user,
            "ssh-key": "file:node_key",
        })
    }

    /// A node on server `i` for an ansible step: its python named, as its
    /// own attribute says.
    pub fn ansible_node(&self, i: usize) -> Value {
        let mut node = self.node(i);
        node["ansible_python_interpreter"] = "/usr/bin/python3".into();
        node
    }

    /// A play's `vars:` entry (indented for it) holding `vaulted: "vaulted-value"`
    /// encrypted with `password` (ansible-vault's own encrypt_string).
    pub fn vaulted_var(&self, password: &str) -> String {
        let password_file = self.path("vault-password");
        std::fs::write(&password_file, password).unwrap();
        let vaulted = Command::new(peer("ansible-vault"))
            .args(["encrypt_string", "--vault-password-file"])
            .arg(&password_file)
            .args(["vaulted-value", "--name", "vaulted"])
            .output()
            .unwrap();
        assert!(vaulted.status.success(), "{}", stderr(&vaulted));
        let vaulted = String::from_utf8(vaulted.stdout).unwrap();
        vaulted.lines().map(|l| format!("    {l}\n")).collect()
    }

    /// Write `nodes` (name → attributes) as a resource YAML file.
    pub fn inventory(&self, nodes: &[(&str, Value)]) -> PathBuf {
        let map: serde_json::Map<String, Value> = nodes
            .iter()
            .map(|(name, attrs)| (name.to_string(), attrs.clone()))
            .collect();
        // JSON is YAML: a resource YAML file with the same map.
        let path = self.path("nodes.yaml");
        std::fs::write(&path, Value::Object(map).to_string()).unwrap();
        path
    }

    /// `sortie --log-format json exec SPEC` with the lab's inventory,
    /// known_hosts and keys.
    pub fn command(&self, spec: Value) -> Command {
        let file = self.path("spec.json");
        std::fs::write(&file, spec.to_string()).unwrap();
        let mut cmd = sortie();
        cmd.args(["--log-format", "json", "exec"]).arg(&file);
        self.reach(&mut cmd);
        cmd
    }

    /// The lab's inventory, known_hosts and keys for `cmd`.
    pub fn reach(&self, cmd: &mut Command) {
        cmd.arg("--nodes")
            .arg(self.path("nodes.yaml"))
            .arg("--known-hosts")
            .arg(self.path("known_hosts"))
            .arg("--secrets-dir")
            .arg(self.path("secrets"));
    }

    /// `sortie poll` against `cp` with the lab's inventory, known_hosts and
    /// keys, its state in the lab's `state`.
    pub fn poll(&self, cp: &ControlPlane) -> Command {
        let mut cmd = cp.poll(&self.path("state"));
        self.reach(&mut cmd);
        cmd
    }

    pub fn exec(&self, spec: Value, code: u8, extra: &[&str]) -> (Vec<Value>, Output) {
        let out = run(self.command(spec).args(extra), code);
        (events(&out.stdout), out)
    }

    /// Authenticated connections server `i` has accepted.
    fn accepted(&self, i: usize) -> usize {
        self.logged(i, "Accepted publickey")
    }

    /// Connections made to server `i`, authenticated or not.
    fn connections(&self, i: usize) -> usize {
        self.logged(i, "Connection from")
    }

    fn logged(&self, i: usize, what: &str) -> usize {
        std::fs::read_to_string(&self.servers[i].log)
            .unwrap_or_default()
            .matches(what)
            .count()
    }
}

/// (step, node) of each step start, in log order.
fn starts(events: &[Value]) -> Vec<(u64, String)> {
    events
        .iter()
        .filter(|e| e["kind"] == "step_start")
        .map(|e| {
            (
                e["step"].as_u64().unwrap(),
                e["node"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// The status of each step end on each node, in log order.
fn ends(events: &[Value]) -> Vec<(u64, String, String)> {
    events
        .iter()
        .filter(|e| e["kind"] == "step_end")
        .map(|e| {
            (
                e["step"].as_u64().unwrap(),
                e["node"].as_str().unwrap().to_string(),
                e["status"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// The stdout a node printed.
/// The runner's own lines in the log (`system` events), one per line.
fn system_text(events: &[Value]) -> String {
    events
        .iter()
        .filter(|e| e["kind"] == "system")
        .filter_map(|e| e["text"].as_str())
        .collect::<Vec<_>>()
        .join("\n")
}

pub fn node_output(events: &[Value], node: &str) -> String {
    events
        .iter()
        .filter(|e| e["kind"] == "output" && e["node"] == node && e["stream"] == "stdout")
        .filter_map(|e| e["text"].as_str())
        .collect()
}

pub fn summary(out: &Output) -> Value {
    let err = stderr(out);
    let line = err
        .lines()
        .rfind(|l| l.starts_with('{'))
        .expect("a summary line");
    serde_json::from_str(line).unwrap()
}

fn pairs(list: &[(u64, &str)]) -> Vec<(u64, String)> {
    list.iter().map(|(s, n)| (*s, n.to_string())).collect()
}

#[test]
fn a_filter_selects_among_twenty_nodes_as_rundeck_does() {
    let dir = tempfile::tempdir().unwrap();
    let mut nodes = serde_json::Map::new();
    for i in 1..=20 {
        let role = ["web", "db", "cache", "queue"][i % 4];
        let env = if i % 3 == 0 { "prod" } else { "dev" };
        nodes.insert(
            format!("{role}{i:02}"),
            json!({
                "hostname": format!("{role}{i:02}.{env}.example.net"),
                "tags": format!("{role},{env}"),
                "osFamily": if i % 5 == 0 { "windows" } else { "unix" },
                "rack": format!("r{}", i % 2),
            }),
        );
    }
    let file = dir.path().join("nodes.json");
    std::fs::write(&file, Value::Object(nodes).to_string()).unwrap();
    let select = |args: &[&str]| -> Vec<String> {
        let out = run(
            sortie()
                .arg("nodes")
                .arg("--nodes")
                .arg(&file)
                .arg("--json")
                .args(args),
            0,
        );
        let map: Value = serde_json::from_slice(&out.stdout).unwrap();
        map.as_object().unwrap().keys().cloned().collect()
    };
    assert_eq!(select(&["--filter", "tags: web+prod"]), ["web12"]);
    assert_eq!(
        select(&["--filter", "name: db.*"]),
        ["db01", "db05", "db09", "db13", "db17"]
    );
    assert_eq!(
        select(&["--filter", "tags: cache !os-family: windows"]),
        ["cache02", "cache06", "cache14", "cache18"]
    );
    assert_eq!(
        select(&["--filter", "hostname: .*\\.prod\\..* rack: r1"]),
        ["db09", "queue03", "queue15"]
    );
    assert_eq!(
        select(&["--filter", "tags: queue", "--exclude-filter", "tags: dev"]),
        ["queue03", "queue15"]
    );
    // The runner's own node is always there; a bare word is a name.
    assert_eq!(select(&["--filter", "local"]), ["local"]);
    assert_eq!(select(&["--filter", "name: web01,db05"]), ["db05"]);
    // A text table on a terminal.
    let out = run(
        sortie()
            .arg("nodes")
            .arg("--nodes")
            .arg(&file)
            .args(["--filter", "db01"]),
        0,
    );
    let text = stdout(&out);
    assert!(text.starts_with("NAME"), "{text}");
    assert!(
        text.contains("db01.dev.example.net") && text.contains("db,dev"),
        "{text}"
    );
}

/// Rundeck's nodes that log in by password are listed, with a warning that
/// sortie cannot reach them so.
#[test]
fn a_node_that_logs_in_by_password_is_listed_with_a_warning() {
    let lab = Lab::empty();
    let file = lab.path("password.yaml");
    std::fs::write(
        &file,
        "pw-node:\n  hostname: 10.0.0.9\n  ssh-authentication: password\n  ssh-password-storage-path: keys/pw\nkey-node:\n  hostname: 10.0.0.8\n",
    )
    .unwrap();
    let out = run(sortie().arg("nodes").arg("--nodes").arg(&file), 0);
    assert!(stdout(&out).contains("pw-node") && stdout(&out).contains("key-node"));
    let err = stderr(&out);
    assert!(
        err.contains("node pw-node: ssh-authentication is password") && !err.contains("key-node"),
        "{err}"
    );
}

#[test]
fn a_broken_inventory_is_named_and_only_jobs_with_a_filter_fail() {
    let lab = Lab::empty();
    let bad = lab.path("bad.yaml");
    std::fs::write(&bad, "web1:\n  tags: {a: b}\n").unwrap();
    let out = run(sortie().arg("nodes").arg("--nodes").arg(&bad), 78);
    let err = stderr(&out);
    assert!(
        err.contains("bad.yaml") && err.contains("web1") && err.contains("tags"),
        "{err}"
    );
    let spec = lab.path("spec.json");
    for (filter, code) in [(None, 0), (Some("tags: web"), 1)] {
        let mut job = json!({"id": "inv", "steps": [{"exec": ["true"]}]});
        if let Some(f) = filter {
            job["nodes"] = json!({"filter": f});
        }
        std::fs::write(&spec, job.to_string()).unwrap();
        let out = run(
            sortie().arg("exec").arg(&spec).arg("--nodes").arg(&bad),
            code,
        );
        if code == 1 {
            assert!(
                stdout(&out).contains("the node inventory did not load"),
                "{}",
                stdout(&out)
            );
        }
    }
}

#[test]
fn node_first_step_first_and_parallel_order_steps_as_named() {
    let lab = Lab::numbered(3);
    let steps = json!([
        {"shell": "echo one on ${node.name}"},
        {"shell": "echo two on ${node.name}"},
    ]);
    let job = |strategy: &str| json!({"id": strategy, "strategy": strategy, "nodes": {"filter": "name: n.*"}, "steps": steps});
    let (events, _) = lab.exec(job("node-first"), 0, &[]);
    assert_eq!(
        starts(&events),
        pairs(&[
            (0, "n1"),
            (1, "n1"),
            (0, "n2"),
            (1, "n2"),
            (0, "n3"),
            (1, "n3")
        ])
    );
    assert_eq!(node_output(&events, "n2"), "one on n2\ntwo on n2\n");
    let (events, _) = lab.exec(job("step-first"), 0, &[]);
    assert_eq!(
        starts(&events),
        pairs(&[
            (0, "n1"),
            (0, "n2"),
            (0, "n3"),
            (1, "n1"),
            (1, "n2"),
            (1, "n3")
        ])
    );
    // A workflow step runs once, on the runner, between the node steps.
    let mut with_workflow = job("node-first");
    with_workflow["steps"] = json!([
        {"shell": "echo SORTIE:DATA:seen=${node.name}"},
        {"shell": "echo \"all: ${data.seen*}\"", "node_step": false},
        {"shell": "echo mine ${data.seen} theirs ${data.seen@n3}"},
    ]);
    let (events, out) = lab.exec(with_workflow, 0, &[]);
    assert_eq!(
        starts(&events),
        pairs(&[
            (0, "n1"),
            (0, "n2"),
            (0, "n3"),
            (1, "local"),
            (2, "n1"),
            (2, "n2"),
            (2, "n3")
        ])
    );
    assert!(node_output(&events, "local").contains("all: n1,n2,n3"));
    assert!(node_output(&events, "n2").ends_with("mine n2 theirs n3\n"));
    assert_eq!(summary(&out)["data"]["seen@n1"], "n1");
}

#[test]
fn parallel_runs_threadcount_nodes_at_once_and_no_more() {
    let lab = Lab::new(2);
    let board = lab.path("board");
    std::fs::create_dir(&board).unwrap();
    let nodes: Vec<(String, Value)> = (0..6).map(|i| (format!("p{i}"), lab.node(i % 2))).collect();
    let named: Vec<(&str, Value)> = nodes.iter().map(|(n, v)| (n.as_str(), v.clone())).collect();
    lab.inventory(&named);
    // Each step marks itself running on a board all nodes share (they are on
    // this machine), records how many it saw, and stays a while.
    let step = format!(
        "b={b}; touch $b/run.${{node.name}}; ls $b | grep -c '^run' >$b/seen.${{node.name}}; \
         sleep 1; rm $b/run.${{node.name}}",
        b = board.display()
    );
    let spec = json!({
        "id": "par", "strategy": "parallel",
        "nodes": {"filter": "name: p.*", "threadcount": "${option.threads}"},
        "options": {"threads": "3"},
        "steps": [{"shell": step}],
    });
    let (events, _) = lab.exec(spec, 0, &[]);
    let seen: Vec<u32> = (0..6)
        .map(|i| {
            std::fs::read_to_string(board.join(format!("seen.p{i}")))
                .unwrap()
                .trim()
                .parse()
                .unwrap()
        })
        .collect();
    assert!(
        seen.iter().all(|n| *n <= 3),
        "more than 3 at once: {seen:?}"
    );
    assert!(
        seen.iter().any(|n| *n > 1),
        "never more than one at once: {seen:?}"
    );
    assert_eq!(ends(&events).len(), 6);
    assert!(ends(&events).iter().all(|(_, _, s)| s == "succeeded"));
}

#[test]
fn keepgoing_goes_on_past_an_unreachable_and_a_failing_node() {
    let lab = Lab::new(1);
    let closed = free_port();
    lab.inventory(&[
        ("a-good", lab.node(0)),
        (
            "b-down",
            json!({"hostname": format!("127.0.0.1:{closed}"), "username": lab.user, "ssh-key": "file:node_key"}),
        ),
        ("c-fails", lab.node(0)),
        ("d-good", lab.node(0)),
    ]);
    let job = |strategy: &str, keepgoing: bool| {
        json!({
            "id": "kg", "strategy": strategy,
            "nodes": {"filter": ".*-.*", "keepgoing": keepgoing, "threadcount": 1},
            "steps": [
                {"shell": "echo first; [ ${node.name} != c-fails ]"},
                {"shell": "echo second"},
            ],
        })
    };
    let spec = |keepgoing: bool| job("node-first", keepgoing);
    let (events, out) = lab.exec(spec(true), 1, &[]);
    let ends = ends(&events);
    for good in ["a-good", "d-good"] {
        assert_eq!(node_output(&events, good), "first\nsecond\n");
    }
    assert!(ends.contains(&(0, "c-fails".into(), "failed".into())));
    assert!(!ends.iter().any(|(s, n, _)| *s == 1 && n == "c-fails"));
    let error = summary(&out)["error"].as_str().unwrap().to_string();
    assert!(
        error.contains("b-down") && error.contains("c-fails"),
        "{error}"
    );
    let down = events
        .iter()
        .find(|e| e["kind"] == "system" && e["text"].as_str().unwrap().contains("b-down"))
        .expect("the unreachable node is named");
    let reason = down["text"].as_str().unwrap();
    assert!(
        !reason.contains('\n') && reason.contains("refused"),
        "{reason}"
    );
    // Without keepgoing the first failed node ends the job: in parallel too,
    // no node starts after it (Rundeck's failOnAny).
    // The unreachable node stops it: nothing after it is connected to, not
    // even ahead of its turn.
    for strategy in ["node-first", "parallel"] {
        let before = lab.connections(0);
        let (events, _) = lab.exec(job(strategy, false), 1, &[]);
        assert_eq!(
            node_output(&events, "a-good"),
            "first\nsecond\n",
            "{strategy}"
        );
        assert_eq!(node_output(&events, "c-fails"), "", "{strategy}");
        assert_eq!(node_output(&events, "d-good"), "", "{strategy}");
        assert_eq!(lab.connections(0) - before, 1, "{strategy}: only a-good");
    }
}

/// A node that takes connections and never answers (ssh waits for its
/// banner), for as long as the listener is kept.
fn silent_node(lab: &Lab) -> (std::net::TcpListener, Value) {
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let node = json!({"hostname": format!("127.0.0.1:{port}"), "username": lab.user, "ssh-key": "file:node_key"});
    (silent, node)
}

/// Nodes whose connections open ahead, when the job stops before their turn:
/// the handshakes are given up at once, and the nodes are not reported.
#[test]
fn connections_opening_ahead_for_nodes_the_job_does_not_reach_are_given_up() {
    let lab = Lab::new(1);
    let (_silent, quiet) = silent_node(&lab);
    let mut nodes: Vec<(String, Value)> = (0..4)
        .map(|i| (format!("a-fails{i}"), lab.node(0)))
        .collect();
    nodes.extend((0..8).map(|i| (format!("b-silent{i}"), quiet.clone())));
    let named: Vec<(&str, Value)> = nodes.iter().map(|(n, v)| (n.as_str(), v.clone())).collect();
    lab.inventory(&named);
    // node-first: a-fails0 runs while b-silent0 opens ahead; parallel over 4:
    // the a-fails nodes run while four silent nodes open ahead.
    for (strategy, threads, filter) in [
        ("node-first", 1, "name: a-fails0|b-silent.*"),
        ("parallel", 4, ".*-.*"),
    ] {
        let spec = json!({"id": "ahead", "strategy": strategy,
            "nodes": {"filter": filter, "threadcount": threads},
            "steps": [{"shell": "sleep 0.3; exit 3"}]});
        let started = std::time::Instant::now();
        let (events, _) = lab.exec(spec, 1, &["--ssh-connect-timeout", "60s"]);
        let took = started.elapsed();
        let mut ran: Vec<String> = ends(&events).into_iter().map(|(_, n, _)| n).collect();
        ran.sort();
        assert_eq!(
            ran,
            ["a-fails0", "a-fails1", "a-fails2", "a-fails3"][..threads]
        );
        let said = system_text(&events);
        assert!(!said.contains("b-silent"), "{said}");
        // Not held until the connect timeout (60 s), nor by a wait for each
        // silent node's server to end (3 s each, one after another).
        assert!(took < Duration::from_secs(10), "{strategy}: {took:?}");
    }
}

/// A job whose timeout passes while a node's connection is being made waits
/// for no handshake (here one that would take the whole connect timeout): the
/// node's step is stopped with the job, not reported unreachable.
#[test]
fn a_job_s_timeout_stops_the_handshake_of_the_node_whose_turn_it_is() {
    let lab = Lab::new(1);
    let (_silent, quiet) = silent_node(&lab);
    lab.inventory(&[("quiet", quiet)]);
    let spec = json!({"id": "late", "timeout": "2s", "nodes": {"filter": "quiet"},
        "steps": [{"shell": "echo never"}]});
    let started = std::time::Instant::now();
    let (events, out) = lab.exec(spec, 1, &["--ssh-connect-timeout", "60s"]);
    let took = started.elapsed();
    assert!(took < Duration::from_secs(15), "held for {took:?}");
    assert_eq!(ends(&events), [(0, "quiet".into(), "timed_out".into())]);
    let summary: Value = serde_json::from_str(stderr(&out).lines().last().unwrap()).unwrap();
    assert_eq!(summary["status"], "timed_out", "{summary}");
}

/// A connection opened ahead is the node's only if it still stands at the
/// node's turn: one that failed then (the node was down) or that the node
/// closed while it waited is made again.
#[test]
fn a_connection_that_failed_or_dropped_ahead_of_its_turn_is_made_again() {
    let lab = Lab::numbered(3);
    // sortie's ssh: its first try at n2's server fails, as a node still down.
    let bin = lab.path("runner-bin");
    std::fs::create_dir(&bin).unwrap();
    let real = String::from_utf8(sh("command -v ssh").stdout).unwrap();
    let wrapper = format!(
        "#!/bin/sh\ncase \" $* \" in *\" -p {port} \"*) [ -e {mark} ] || {{ : >{mark}; \
         echo 'ssh: connect to host 127.0.0.1 port {port}: Connection refused' >&2; exit 255; }} ;; esac\n\
         exec {real} \"$@\"\n",
        port = lab.servers[1].port,
        mark = lab.path("refused-once").display(),
        real = real.trim(),
    );
    std::fs::write(bin.join("ssh"), wrapper).unwrap();
    sh(&format!("chmod 755 {}/ssh", bin.display()));
    let (at_n2, gate) = (lab.path("at-n2"), lab.path("gate"));
    let step = format!(
        "case ${{node.name}} in n1) sleep 0.5 ;; n2) touch {}; while [ ! -e {} ]; do sleep 0.05; done ;; esac; \
         echo ran on ${{node.name}}",
        at_n2.display(),
        gate.display()
    );
    let spec = json!({"id": "again", "nodes": {"filter": "name: n.*"}, "steps": [{"shell": step}]});
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
    let child = lab
        .command(spec)
        .env("PATH", path)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    wait_for("n2's step", Duration::from_secs(30), || at_n2.exists());
    // n3's connection, opened while n2 runs, is dropped by its node.
    wait_for("n3's connection", Duration::from_secs(20), || {
        lab.accepted(2) == 1
    });
    let daemon = std::fs::read_to_string(lab.path("sshd2/pid")).unwrap();
    wait_for("n3's session", Duration::from_secs(20), || {
        let sessions = children_of(daemon.trim());
        for pid in &sessions {
            let _ = Command::new("kill").arg(pid).status();
        }
        !sessions.is_empty()
    });
    std::fs::write(&gate, "").unwrap();
    let out = child.wait_with_output().unwrap();
    let events = events(&out.stdout);
    assert!(out.status.success(), "{}", system_text(&events));
    for node in ["n1", "n2", "n3"] {
        assert_eq!(node_output(&events, node), format!("ran on {node}\n"));
    }
    assert!(lab.path("refused-once").exists());
    assert_eq!((lab.accepted(1), lab.accepted(2)), (1, 2));
}

/// A node that took the whole connect timeout to fail ahead of its turn has
/// had its time: it is not tried again. A connection kept between a node's
/// steps that its node closed meanwhile is made again.
#[test]
fn a_timed_out_node_is_tried_once_and_a_connection_closed_between_steps_again() {
    let lab = Lab::new(2);
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    lab.inventory(&[
        ("a-first", lab.node(0)),
        (
            "b-silent",
            json!({"hostname": format!("127.0.0.1:{port}"), "username": lab.user, "ssh-key": "file:node_key"}),
        ),
    ]);
    let spec = json!({"id": "once", "nodes": {"filter": ".*-.*", "keepgoing": true},
        "steps": [{"shell": "sleep 0.2; echo ran"}]});
    let (events, _) = lab.exec(spec, 1, &["--ssh-connect-timeout", "1s"]);
    assert_eq!(node_output(&events, "a-first"), "ran\n");
    assert!(system_text(&events).contains("node b-silent:"));
    silent.set_nonblocking(true).unwrap();
    let tries = std::iter::from_fn(|| silent.accept().ok()).count();
    assert_eq!(tries, 1, "b-silent is connected to once");

    lab.inventory(&[("n1", lab.node(0)), ("n2", lab.node(1))]);
    let (at_n2, gate) = (lab.path("at-n2"), lab.path("gate"));
    let hold = format!(
        "[ ${{node.name}} = n1 ] || {{ touch {}; while [ ! -e {} ]; do sleep 0.05; done; }}; echo one",
        at_n2.display(),
        gate.display()
    );
    let spec = json!({"id": "kept", "strategy": "step-first", "nodes": {"filter": "n.*"},
        "steps": [{"shell": hold}, {"shell": "echo two"}]});
    let before = lab.accepted(0);
    let child = lab
        .command(spec)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // n1 ran its first step; while n2 runs its own, n1's node drops it.
    wait_for("n2's first step", Duration::from_secs(30), || {
        at_n2.exists()
    });
    let daemon = std::fs::read_to_string(lab.path("sshd0/pid")).unwrap();
    for pid in children_of(daemon.trim()) {
        let _ = Command::new("kill").arg(pid).status();
    }
    std::fs::write(&gate, "").unwrap();
    let out = child.wait_with_output().unwrap();
    let events = crate::support::events(&out.stdout);
    assert!(out.status.success(), "{}", system_text(&events));
    assert_eq!(node_output(&events, "n1"), "one\ntwo\n");
    assert!(system_text(&events).contains("n1: its connection was closed after its last step"));
    assert_eq!(lab.accepted(0) - before, 2);
}

/// The processes whose parent is `pid`, from /proc.
fn children_of(pid: &str) -> Vec<String> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| {
            let stat = std::fs::read_to_string(e.path().join("stat")).ok()?;
            // After the command's closing parenthesis: state, then the parent.
            let parent = stat.rsplit_once(") ")?.1.split(' ').nth(1)?;
            (parent == pid).then(|| e.file_name().to_string_lossy().into_owned())
        })
        .collect()
}

/// Node keys a killed shot left in its state dir are removed by the next.
#[test]
fn a_shot_removes_the_node_keys_a_killed_shot_left() {
    let dir = tempfile::tempdir().unwrap();
    let (spool, state) = (dir.path().join("spool"), dir.path().join("state"));
    std::fs::create_dir(&spool).unwrap();
    let left = state.join("ssh/0badc0de");
    std::fs::create_dir_all(&left).unwrap();
    std::fs::write(left.join("key-n1"), "a key\n").unwrap();
    run(&mut spool_poll(&spool, &state), 0);
    assert!(!left.exists());
    assert_eq!(std::fs::read_dir(state.join("ssh")).unwrap().count(), 0);
}

/// `ssh` is looked for when a node first needs it: without it on PATH, each
/// remote node fails with that reason and the runner's own node still runs.
#[test]
fn without_ssh_on_path_a_remote_node_fails_with_that_reason() {
    let lab = Lab::new(1);
    lab.inventory(&[("remote", lab.node(0))]);
    let bin = lab.path("bin");
    std::fs::create_dir(&bin).unwrap();
    std::os::unix::fs::symlink("/bin/sh", bin.join("sh")).unwrap();
    let spec = json!({
        "id": "nossh", "nodes": {"filter": "name: remote|local", "keepgoing": true},
        "steps": [{"shell": "echo here"}],
    });
    let mut cmd = lab.command(spec);
    let out = run(cmd.env("PATH", &bin), 1);
    let events = events(&out.stdout);
    assert_eq!(node_output(&events, "local"), "here\n");
    assert_eq!(node_output(&events, "remote"), "");
    let text = system_text(&events);
    assert!(
        text.contains("remote") && text.contains("no ssh program was found on PATH"),
        "{text}"
    );
}

#[test]
fn a_node_whose_host_key_does_not_match_is_refused() {
    let lab = Lab::new(2);
    // Node m2 claims server 1 but carries server 0's key.
    let mut wrong = lab.node(1);
    wrong["ssh-host-key"] = json!(lab.servers[0].host_key);
    let marker = lab.path("ran");
    lab.inventory(&[("m1", lab.node(0)), ("m2", wrong), ("m3", lab.node(1))]);
    std::fs::write(
        lab.path("known_hosts"),
        format!(
            "[127.0.0.1]:{} {}\n",
            lab.servers[0].port, lab.servers[0].host_key
        ),
    )
    .unwrap();
    let spec = json!({
        "id": "hk", "nodes": {"filter": "name: m.*", "keepgoing": true},
        "steps": [{"shell": format!("touch {}.${{node.name}}", marker.display())}],
    });
    let (events, _) = lab.exec(spec, 1, &[]);
    assert!(Path::new(&format!("{}.m1", marker.display())).exists());
    assert!(!Path::new(&format!("{}.m2", marker.display())).exists());
    let text: String = events
        .iter()
        .filter(|e| e["kind"] == "system")
        .filter_map(|e| e["text"].as_str())
        .collect::<Vec<_>>()
        .join("\n");
    // A key other than the one known, and a node not known at all, each said.
    let port = lab.servers[1].port;
    assert!(
        text.contains(&format!(
            "node m2: host key verification failed: the key [127.0.0.1]:{port} presented is not the one"
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "node m3: host key verification failed: [127.0.0.1]:{port} is not in known_hosts"
        )),
        "{text}"
    );
    assert!(!Path::new(&format!("{}.m3", marker.display())).exists());
    assert_eq!(
        lab.accepted(1),
        0,
        "no authentication happened on the impostor"
    );
}

fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        !stat
            .rsplit(')')
            .next()
            .unwrap_or("")
            .trim_start()
            .starts_with('Z')
    })
}

#[test]
fn a_step_that_ignores_sigterm_on_a_node_is_killed_after_the_grace() {
    let lab = Lab::numbered(1);
    let pids = lab.path("pids");
    let spec = json!({
        "id": "stubborn", "nodes": {"filter": "n1"},
        "steps": [{
            "shell": format!("trap '' TERM; sleep 300 & echo $$ $! >{}; wait; wait", pids.display()),
            "timeout": "2s",
        }],
    });
    let (events, _) = lab.exec(spec, 1, &["--kill-grace", "1s"]);
    assert!(ends(&events).contains(&(0, "n1".into(), "timed_out".into())));
    let pids: Vec<i32> = std::fs::read_to_string(&pids)
        .unwrap()
        .split_whitespace()
        .map(|p| p.parse().unwrap())
        .collect();
    assert_eq!(pids.len(), 2);
    // The node's watchdog sends SIGKILL one grace after the channel closed.
    wait_for(
        "the node's processes to be killed",
        Duration::from_secs(10),
        || pids.iter().all(|p| !alive(*p)),
    );
}

#[test]
fn a_secret_never_reaches_a_command_line_or_the_log() {
    let lab = Lab::numbered(1);
    let secret = "hunter2-very-secret-value";
    let started = lab.path("started");
    let release = lab.path("release");
    let spec = json!({
        "id": "sec", "nodes": {"filter": "n1"},
        "secrets": {"DB_PASSWORD": "env:DB"},
        "options": {"word": "${secrets.DB_PASSWORD}"},
        "steps": [
            {"shell": format!(
                "echo \"pw=$DB_PASSWORD\"; touch {s}; while [ ! -e {r} ]; do sleep 0.05; done",
                s = started.display(), r = release.display())},
            {"exec": ["printf", "%s\\n", "$DB_PASSWORD"]},
        ],
    });
    let child = lab
        .command(spec)
        .env("SORTIE_SECRET_DB", secret)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    wait_for("the step on the node", Duration::from_secs(30), || {
        started.exists()
    });
    // Every process of the machine: sortie, its ssh, sshd, the node's shells.
    let mut leaks = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        if let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) {
            if String::from_utf8_lossy(&cmdline).contains(secret) {
                leaks.push(entry.path());
            }
        }
    }
    std::fs::write(&release, "").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        leaks.is_empty(),
        "the secret is in the command line of {leaks:?}"
    );
    let log = String::from_utf8_lossy(&out.stdout);
    assert!(!log.contains(secret), "{log}");
    assert!(log.contains("pw=[SECRET]"), "{log}");
    assert!(!stderr(&out).contains(secret));
}

#[test]
fn one_connection_per_node_serves_every_step_of_a_job() {
    let lab = Lab::new(2);
    let names: Vec<String> = (0..12).map(|i| format!("r{i:02}")).collect();
    let nodes: Vec<(&str, Value)> = names
        .iter()
        .enumerate()
        .map(|(i, n)| (n.as_str(), lab.node(i % 2)))
        .collect();
    lab.inventory(&nodes);
    for (strategy, accepted) in [("node-first", 6), ("parallel", 12)] {
        let spec = json!({
            "id": strategy, "strategy": strategy,
            "nodes": {"filter": "name: r.*", "threadcount": 6},
            "steps": [
                {"exec": ["true"]}, {"shell": "sleep 0.2; echo two"},
                {"exec": ["true"], "node_step": false},
                {"shell": "echo after the workflow step"},
            ],
        });
        let (events, _) = lab.exec(spec, 0, &[]);
        // Steps in other threads end, the connections of the others stand.
        assert_eq!(ends(&events).len(), 12 * 3 + 1);
        assert!(ends(&events).iter().all(|(_, _, s)| s == "succeeded"));
        // Nothing of ssh's own reaches the steps' output.
        let noise: Vec<&Value> = events.iter().filter(|e| e["stream"] == "stderr").collect();
        assert!(noise.is_empty(), "{noise:?}");
        assert_eq!((lab.accepted(0), lab.accepted(1)), (accepted, accepted));
    }
    assert!(lab.left_on_nodes().is_empty(), "{:?}", lab.left_on_nodes());
}

#[test]
fn a_node_s_bad_key_fails_that_node_and_a_step_s_own_255_is_its_exit_code() {
    let lab = Lab::new(1);
    let mut bad = lab.node(0);
    bad["ssh-key"] = json!("file:no-such-key");
    // Names that make the same file name once cleaned up.
    lab.inventory(&[("a b", lab.node(0)), ("a_b", lab.node(0)), ("a-bad", bad)]);
    let spec = json!({
        "id": "keys", "nodes": {"filter": "name: a.b.*", "keepgoing": true},
        "steps": [{"shell": "echo on ${node.name}; exit 255", "errorhandler": {"shell": "echo code ${result.exit_code}"}}],
    });
    let (events, _) = lab.exec(spec, 1, &[]);
    for node in ["a b", "a_b"] {
        assert_eq!(node_output(&events, node), format!("on {node}\ncode 255\n"));
    }
    assert!(ends(&events).contains(&(0, "a b".into(), "failed".into())));
    let text = system_text(&events);
    assert!(
        text.contains("node a-bad: ssh key file:no-such-key"),
        "{text}"
    );
}

#[test]
fn a_step_s_own_ifs_is_its_own_and_a_nul_in_a_value_is_refused() {
    let lab = Lab::numbered(1);
    let spec = json!({
        "id": "odd", "nodes": {"filter": "n1"},
        "steps": [
            {"exec": ["printenv", "IFS"], "env": {"IFS": "st"}},
            // An argument that looks like sortie's own marks stays an argument.
            {"script": "[ \"$1\" = \"$(printf '\\001step\\001')\" ] && echo same $2", "args": ["\u{1}step\u{1}", "b"]},
            {"exec": ["true"], "env": {"Z": "a\u{0}b"}},
        ],
    });
    let (events, _) = lab.exec(spec, 1, &[]);
    // Its IFS did not split the server's run line: the step ran, with it.
    assert_eq!(node_output(&events, "n1"), "st\nsame b\n");
    let text = system_text(&events);
    assert!(
        text.contains("the variable \"Z\" holds a NUL byte"),
        "{text}"
    );
    assert!(ends(&events).contains(&(2, "n1".into(), "failed".into())));
}

#[test]
fn relative_paths_hold_and_an_inventory_fifo_does_not_hang() {
    let lab = Lab::numbered(1);
    std::fs::write(lab.path("ssh_config"), "ServerAliveInterval 30\n").unwrap();
    let spec = json!({"id": "rel", "nodes": {"filter": "n1"}, "steps": [{"exec": ["true"]}]});
    run(
        lab.command(spec).current_dir(lab.dir.path()).args([
            "--ssh-config",
            "ssh_config",
            "--known-hosts",
            "known_hosts",
        ]),
        0,
    );
    let fifo = lab.path("nodes.fifo");
    sh(&format!("mkfifo {}", fifo.display()));
    let out = run(sortie().arg("nodes").arg("--nodes").arg(&fifo), 78);
    assert!(
        stderr(&out).contains("not a regular file"),
        "{}",
        stderr(&out)
    );
}

/// A process a node step started outside its process group (`setsid`) is
/// killed when the job's connection to the node ends, and said.
#[test]
fn what_a_node_step_leaves_outside_its_group_goes_with_the_job() {
    let lab = Lab::numbered(1);
    let pid = lab.path("escaped");
    let spec = json!({"id": "escape", "nodes": {"filter": "n1"}, "steps": [
        {"shell": format!("setsid sleep 300 & echo $! > {}", pid.display())},
        {"shell": "echo second"},
    ]});
    let (events, _) = lab.exec(spec, 0, &[]);
    assert_eq!(node_output(&events, "n1"), "second\n");
    let pid: i32 = std::fs::read_to_string(&pid)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    wait_for(
        "the escaped process to end",
        Duration::from_secs(10),
        || !alive(pid),
    );
    let text = system_text(&events);
    assert!(
        text.contains("node n1: killed 1 process(es) the job's steps left running outside"),
        "{text}"
    );
}

/// A node's key is on disk only while its connection opens: while the job
/// runs on the first node, no key file is left for it, none for the second.
#[test]
fn the_next_node_connects_while_one_runs_and_keys_stay_only_while_they_are_read() {
    let lab = Lab::new(1);
    lab.inventory(&[
        ("k1", lab.node(0)),
        ("k2", lab.node(0)),
        ("k3", lab.node(0)),
    ]);
    let (marker, gate) = (lab.path("at-k1"), lab.path("gate"));
    let spec = json!({"id": "keys-late", "nodes": {"filter": "name: k.*"}, "steps": [{"shell": format!(
        "[ ${{node.name}} != k1 ] || {{ touch {}; while [ ! -e {} ]; do sleep 0.05; done; }}",
        marker.display(), gate.display()
    )}]});
    let tmp = lab.path("tmp");
    std::fs::create_dir(&tmp).unwrap();
    let keys = || -> Vec<PathBuf> {
        walk(&tmp)
            .into_iter()
            .filter(|p| {
                p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with("key-"))
            })
            .collect()
    };
    let mut child = lab.command(spec).env("TMPDIR", &tmp).spawn().unwrap();
    wait_for("the step on k1", Duration::from_secs(20), || {
        marker.exists()
    });
    // k1's step holds: k2's connection opens meanwhile, and no further one.
    wait_for(
        "k2's connection, opened ahead",
        Duration::from_secs(20),
        || lab.accepted(0) == 2,
    );
    // Its key goes once ssh has read it, while k1's step still runs.
    wait_for("no key on disk", Duration::from_secs(10), || {
        keys().is_empty()
    });
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(lab.accepted(0), 2, "only the next node is connected ahead");
    assert!(child.try_wait().unwrap().is_none(), "k1's step still runs");
    std::fs::write(&gate, "").unwrap();
    assert!(child.wait().unwrap().success());
    assert_eq!(lab.accepted(0), 3, "one connection for each node");
    assert!(keys().is_empty(), "{:?}", keys());
}

/// Every path under `dir`.
fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk(&path));
        }
        out.push(path);
    }
    out
}

/// ssh splits its known_hosts option at blanks and expands `%` in it and in
/// the key's path: a blank, a `%`, a quote or a backslash in them still
/// name the files they name.
#[test]
fn odd_characters_in_the_known_hosts_and_key_paths_reach_ssh_as_they_are() {
    let lab = Lab::numbered(1);
    let odd = lab.path("a b%d\"q\\");
    std::fs::create_dir(&odd).unwrap();
    std::fs::copy(lab.path("known_hosts"), odd.join("known_hosts")).unwrap();
    let tmp = lab.path("t m%p");
    std::fs::create_dir(&tmp).unwrap();
    let spec = json!({"id": "odd", "nodes": {"filter": "n1"}, "steps": [{"exec": ["echo", "in"]}]});
    let mut cmd = lab.command(spec);
    cmd.arg("--known-hosts")
        .arg(odd.join("known_hosts"))
        .env("TMPDIR", &tmp);
    let seen = events(&run(&mut cmd, 0).stdout);
    assert_eq!(node_output(&seen, "n1"), "in\n");
    // ssh would expand `${…}`, with no escape: such a path is refused, said.
    let dollar = lab.path("x${HOME}");
    std::fs::create_dir(&dollar).unwrap();
    std::fs::copy(lab.path("known_hosts"), dollar.join("known_hosts")).unwrap();
    let spec = json!({"id": "dollar", "nodes": {"filter": "n1"}, "steps": [{"exec": ["true"]}]});
    let mut cmd = lab.command(spec);
    cmd.arg("--known-hosts").arg(dollar.join("known_hosts"));
    let out = run(&mut cmd, 78);
    assert!(
        stderr(&out).contains("--known-hosts: ssh cannot be given the path"),
        "{}",
        stderr(&out)
    );
    let spec = json!({"id": "dollar", "nodes": {"filter": "n1"}, "steps": [{"exec": ["true"]}]});
    let text = system_text(&events(
        &run(lab.command(spec).env("TMPDIR", &dollar), 1).stdout,
    ));
    assert!(text.contains("ssh cannot be given the path"), "{text}");
}

#[test]
fn a_job_from_the_control_plane_reports_each_node_s_steps() {
    let lab = Lab::new(1);
    lab.inventory(&[("w1", lab.node(0)), ("w2", lab.node(0))]);
    let cp = ControlPlane::start();
    let id = cp.enqueue(json!({
        "id": "from-cp", "nodes": {"filter": "name: w.*"},
        "steps": [{"shell": "echo hi from ${node.name}; echo SORTIE:DATA:host=${node.name}"}],
    }));
    let state = lab.path("state");
    run(&mut lab.poll(&cp), 0);
    let job = cp.job(&id);
    assert_done(&job, "succeeded");
    let completion = job.completion.unwrap();
    let nodes: Vec<&str> = completion.steps.iter().map(|s| s.node.as_str()).collect();
    assert_eq!(nodes, ["w1", "w2"]);
    assert_eq!(completion.data["host@w2"], "w2");
    let events = events(&cp.log(&id));
    assert_eq!(
        node_output(&events, "w1"),
        "hi from w1\nSORTIE:DATA:host=w1\n"
    );
    // The control sockets and keys went with the job.
    let left: Vec<_> = std::fs::read_dir(state.join("ssh"))
        .map(|d| d.flatten().collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "{left:?}");
}

/// A network namespace with a veth link to this one, removed on drop.
struct Netns {
    name: String,
}

impl Netns {
    pub fn new(index: usize) -> Netns {
        let tag = format!("{}{}", std::process::id() % 100_000, index);
        let name = format!("sortie-{tag}");
        let (host, peer) = (format!("vh{tag}"), format!("vn{tag}"));
        let net = format!("10.{}.{}", 200 + index, std::process::id() % 250);
        sh(&format!(
            "ip netns add {name} && ip link add {host} type veth peer name {peer} netns {name} && \
             ip addr add {net}.1/24 dev {host} && ip link set {host} up && \
             ip -n {name} addr add {net}.2/24 dev {peer} && ip -n {name} link set {peer} up && \
             ip -n {name} link set lo up"
        ));
        Netns { name }
    }

    fn address(&self, index: usize) -> String {
        format!("10.{}.{}.2", 200 + index, std::process::id() % 250)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

#[test]
fn each_step_runs_on_the_node_it_names_in_its_own_network_namespace() {
    let spaces: Vec<Netns> = (0..2).map(Netns::new).collect();
    let lab = Lab::empty().with_servers(
        spaces
            .iter()
            .enumerate()
            .map(|(i, ns)| (ns.address(i), Some(ns.name.clone())))
            .collect(),
    );
    lab.inventory(&[("east", lab.node(0)), ("west", lab.node(1))]);
    let spec = json!({
        "id": "netns", "strategy": "parallel", "nodes": {"filter": "east west", "threadcount": 2},
        "steps": [{"shell": "readlink /proc/self/ns/net; ip -4 -o addr show scope global | awk '{print $4}'"}],
    });
    let (events, _) = lab.exec(spec, 0, &[]);
    for (i, (node, ns)) in ["east", "west"].iter().zip(&spaces).enumerate() {
        let inside = sh(&format!(
            "ip netns exec {} readlink /proc/self/ns/net",
            ns.name
        ));
        let expected = format!(
            "{}{}/24\n",
            String::from_utf8_lossy(&inside.stdout),
            ns.address(i)
        );
        assert_eq!(node_output(&events, node), expected);
    }
}
