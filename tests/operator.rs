//! What an operator meets: configuration mistakes that fail at once with a
//! hint, quiet shots, one line per job, the local history, readable output.

use std::io::{Read, Write};
use std::path::Path;
use std::process::Command;

use tempfile::TempDir;

use crate::support::*;

/// A network namespace whose resolver is a local server answering NXDOMAIN to
/// every question, so a name that does not exist can be tried without a query
/// leaving the machine (`ip netns exec` puts `/etc/netns/NAME/resolv.conf`
/// over `/etc/resolv.conf`).
struct NxdomainNs {
    name: String,
}

const NXDOMAIN_SERVER: &str = r#"
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", 53))
open(sys.argv[1], "w").close()
while True:
    q, peer = s.recvfrom(4096)
    if len(q) < 12:
        continue
    # The same id and question; QR, RD and RA set, RCODE 3 (NXDOMAIN), no records.
    s.sendto(q[:2] + bytes([0x81, 0x83]) + q[4:6] + bytes(6) + q[12:], peer)
"#;

impl NxdomainNs {
    fn new() -> NxdomainNs {
        let name = format!("sortie-dns-{}", std::process::id());
        let etc = Path::new("/etc/netns").join(&name);
        std::fs::create_dir_all(&etc).unwrap();
        std::fs::write(etc.join("resolv.conf"), "nameserver 127.0.0.1\n").unwrap();
        let status = Command::new("ip")
            .args(["netns", "add", &name])
            .status()
            .unwrap();
        assert!(status.success(), "ip netns add");
        NxdomainNs { name }
    }

    /// `sortie ARGS` in the namespace, once the NXDOMAIN server listens.
    fn sortie(&self, args: &[&str], ready: &Path) -> Command {
        let program = sortie().get_program().to_owned();
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.name, "sh", "-c"]);
        cmd.arg(
            "ip link set lo up; python3 -c \"$1\" \"$2\" & server=$!; i=0; \
             while [ ! -e \"$2\" ] && [ $i -lt 300 ]; do sleep 0.05; i=$((i+1)); done; \
             shift 2; \"$@\"; rc=$?; kill $server; exit $rc",
        );
        cmd.arg("sh")
            .arg(NXDOMAIN_SERVER)
            .arg(ready)
            .arg(program)
            .args(args);
        cmd.env_clear();
        for (k, v) in sortie().get_envs() {
            if let Some(v) = v {
                cmd.env(k, v);
            }
        }
        cmd
    }
}

impl Drop for NxdomainNs {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
        let _ = std::fs::remove_dir_all(Path::new("/etc/netns").join(&self.name));
    }
}

#[test]
fn a_host_name_that_does_not_resolve_fails_at_once_with_exit_78() {
    let ns = NxdomainNs::new();
    let dir = TempDir::new().unwrap();
    let state = dir.path().join("state");
    let out = run(
        &mut ns.sortie(
            &[
                "poll",
                "--server",
                "https://control-plane.example.invalid/",
                "--state-dir",
                state.to_str().unwrap(),
            ],
            &dir.path().join("dns-ready"),
        ),
        code::CONFIG,
    );
    let err = stderr(&out);
    assert!(err.contains("does not resolve"), "{err}");
    assert!(
        !err.contains("retrying"),
        "a lasting error is not retried: {err}"
    );
}

#[test]
fn plain_http_to_a_tls_port_says_use_https() {
    let cp = ControlPlane::start();
    let dir = TempDir::new().unwrap();
    let url = cp.url().replacen("https://", "http://", 1);
    let out = run(
        sortie()
            .args(["poll", "--server", &url, "--state-dir"])
            .arg(dir.path().join("state")),
        code::CONFIG,
    );
    let err = stderr(&out);
    assert!(err.contains("use https://"), "{err}");
    assert!(!err.contains("retrying"), "{err}");
}

#[test]
fn https_to_a_plain_http_port_says_the_server_does_not_speak_tls() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { return };
            let mut buf = [0u8; 1024];
            let _ = conn.read(&mut buf);
            let _ = conn.write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n");
        }
    });
    let dir = TempDir::new().unwrap();
    let out = run(
        sortie()
            .args(["poll", "--server"])
            .arg(format!("https://127.0.0.1:{port}/"))
            .arg("--state-dir")
            .arg(dir.path().join("state")),
        code::CONFIG,
    );
    let err = stderr(&out);
    assert!(err.contains("does not speak TLS"), "{err}");
    assert!(!err.contains("retrying"), "{err}");
}
