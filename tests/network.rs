//! Real network components in the path: nginx terminating TLS (and checking client
//! certificates), tinyproxy as the HTTPS proxy; and the TLS refusals.

use std::fs;
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;

use sortie_control_plane::pki::Authority;

use crate::support::*;

/// nginx on a loopback port, terminating TLS and passing requests to the control plane.
fn nginx(dir: &Path, cp: &ControlPlane, client_ca: Option<&Path>) -> (Daemon, u16) {
    let port = free_port();
    let conf = dir.join("nginx.conf");
    fs::write(dir.join("server.pem"), &cp.pki.server.cert_pem).unwrap();
    fs::write(dir.join("server.key"), &cp.pki.server.key_pem).unwrap();
    fs::create_dir_all(dir.join("tmp")).unwrap();
    let d = dir.display();
    let mtls = match client_ca {
        Some(ca) => format!(
            "ssl_client_certificate {}; ssl_verify_client on;\n    error_page 495 496 =403 /no-client-certificate;\n    location = /no-client-certificate {{ return 403; }}",
            ca.display()
        ),
        None => String::new(),
    };
    fs::write(
        &conf,
        format!(
            r#"daemon off;
# One process: killed when the test ends, it leaves no worker behind.
master_process off;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log;
events {{ worker_connections 64; }}
http {{
  access_log {d}/access.log;
  client_body_temp_path {d}/tmp; proxy_temp_path {d}/tmp; fastcgi_temp_path {d}/tmp;
  uwsgi_temp_path {d}/tmp; scgi_temp_path {d}/tmp;
  server {{
    listen 127.0.0.1:{port} ssl;
    ssl_certificate {d}/server.pem;
    ssl_certificate_key {d}/server.key;
    client_max_body_size 64m;
    {mtls}
    location / {{
      proxy_pass https://{cp};
      proxy_ssl_verify on;
      proxy_ssl_trusted_certificate {ca};
      proxy_ssl_name localhost;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffering off;
      proxy_request_buffering off;
      proxy_read_timeout 120s;
    }}
  }}
}}
"#,
            cp = cp.server.addr(),
            ca = cp.pki.ca_file.display(),
        ),
    )
    .unwrap();
    let daemon = start_daemon(Command::new("nginx").arg("-c").arg(&conf), "nginx", || {
        TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    (daemon, port)
}

#[test]
fn a_shot_through_nginx_terminating_tls_and_checking_client_certificates() {
    let cp = ControlPlane::start();
    cp.enqueue(fixture_json("multi-step.json"));
    let dir = tempfile::tempdir().unwrap();
    let clients = Pki::new(dir.path(), "clients");
    let (_nginx, port) = nginx(dir.path(), &cp, Some(&clients.ca_file));
    let url = format!("https://127.0.0.1:{port}/");

    let out = run(
        cp.poll(&dir.path().join("s1")).arg("--server").arg(&url),
        code::REJECTED,
    );
    assert!(stderr(&out).contains("403"), "{}", stderr(&out));

    let (cert, key) = clients.client_files(dir.path(), "runner");
    run(
        cp.poll(&dir.path().join("s2"))
            .arg("--server")
            .arg(&url)
            .arg("--client-cert")
            .arg(&cert)
            .arg("--client-key")
            .arg(&key),
        code::OK,
    );
    let job = cp.job("multi-step");
    assert_done(&job, "succeeded");
    assert_eq!(
        job.completion.unwrap().log.sha256,
        sha256_hex(&cp.log("multi-step"))
    );
    let access = fs::read_to_string(dir.path().join("access.log")).unwrap();
    assert!(
        access.contains("POST /v1/claim") && access.contains("/complete"),
        "{access}"
    );
}

/// tinyproxy on a loopback port; returns it and its log file.
fn tinyproxy(dir: &Path) -> (Daemon, u16, std::path::PathBuf) {
    let port = free_port();
    let log = dir.join("tinyproxy.log");
    let conf = dir.join("tinyproxy.conf");
    fs::write(
        &conf,
        format!(
            "Port {port}\nListen 127.0.0.1\nTimeout 60\nMaxClients 20\nAllow 127.0.0.1\nLogLevel Connect\nLogFile \"{}\"\n",
            log.display()
        ),
    )
    .unwrap();
    let daemon = start_daemon(
        Command::new("tinyproxy").arg("-d").arg("-c").arg(&conf),
        "tinyproxy",
        || TcpStream::connect(("127.0.0.1", port)).is_ok(),
    );
    (daemon, port, log)
}

#[test]
fn https_proxy_is_used_no_proxy_is_honoured_and_a_dead_proxy_is_unreachable() {
    let cp = ControlPlane::start();
    let dir = tempfile::tempdir().unwrap();
    let (_proxy, port, log) = tinyproxy(dir.path());
    let proxy = format!("http://127.0.0.1:{port}");
    let cp_port = cp.port();

    cp.enqueue(fixture_json("hello.json"));
    run(
        cp.poll(&dir.path().join("s1")).env("HTTPS_PROXY", &proxy),
        code::OK,
    );
    assert_done(&cp.job("hello"), "succeeded");
    let connects = |log: &Path| {
        fs::read_to_string(log)
            .unwrap_or_default()
            .matches(&format!("CONNECT 127.0.0.1:{cp_port}"))
            .count()
    };
    let through = connects(&log);
    assert!(
        through >= 1,
        "{}",
        fs::read_to_string(&log).unwrap_or_default()
    );

    let mut spec = fixture_json("hello.json");
    spec["id"] = "direct".into();
    cp.enqueue(spec);
    run(
        cp.poll(&dir.path().join("s2"))
            .env("HTTPS_PROXY", &proxy)
            .env("NO_PROXY", "127.0.0.1"),
        code::OK,
    );
    assert_done(&cp.job("direct"), "succeeded");
    assert_eq!(connects(&log), through, "NO_PROXY bypasses the proxy");

    let dead = format!("http://127.0.0.1:{}", free_port());
    let out = run(
        cp.poll(&dir.path().join("s3"))
            .env("HTTPS_PROXY", &dead)
            .args(["--max-runtime", "3s", "--deadline-reserve", "1s"]),
        69,
    );
    assert!(stderr(&out).contains("unreachable"), "{}", stderr(&out));

    // A SOCKS proxy, or a value no proxy can be made of, is refused, never
    // skipped for a direct connection.
    let cases = [
        ("HTTPS_PROXY", format!("socks5://127.0.0.1:{port}"), "SOCKS"),
        ("all_proxy", format!("socks4://127.0.0.1:{port}"), "SOCKS"),
        (
            "https_proxy",
            format!("socks5h://127.0.0.1:{port}"),
            "SOCKS",
        ),
        (
            "HTTPS_PROXY",
            format!("sock5://127.0.0.1:{port}"),
            "not a proxy",
        ),
        ("HTTP_PROXY", "socks5://".to_string(), "not a proxy"),
    ];
    for (var, value, said) in cases {
        let out = run(
            cp.poll(&dir.path().join("s4")).env(var, &value),
            code::CONFIG,
        );
        assert!(
            stderr(&out).contains(said),
            "{var}={value}: {}",
            stderr(&out)
        );
        assert!(
            stderr(&out).contains(var),
            "{var}={value}: {}",
            stderr(&out)
        );
    }
}

#[test]
fn a_wrong_hostname_or_an_expired_certificate_is_refused_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Authority::generate("test CA").unwrap();
    let ca_file = dir.path().join("ca.pem");
    fs::write(&ca_file, ca.cert_pem()).unwrap();
    for (what, pair, expected) in [
        (
            "wrong name",
            ca.server(&["cp.example.com"]).unwrap(),
            "NotValidForName",
        ),
        (
            "expired",
            ca.expired_server(&["127.0.0.1"]).unwrap(),
            "Expired",
        ),
    ] {
        let cp = ControlPlane::with(Options {
            server_cert: Some(pair),
            ..Options::default()
        });
        cp.enqueue(fixture_json("hello.json"));
        let out = run(
            cp.poll(&dir.path().join("s"))
                .arg("--ca-file")
                .arg(&ca_file),
            code::CONFIG,
        );
        let err = stderr(&out);
        assert!(
            err.contains("is not accepted") && err.contains(expected),
            "{what}: {err}"
        );
        assert_eq!(
            err.lines().filter(|l| l.contains("ERROR")).count(),
            1,
            "{what}: one line: {err}"
        );
        assert_eq!(cp.job("hello").phase, sortie_control_plane::Phase::Queued);
    }
}

#[test]
fn an_http_step_presents_a_client_certificate_from_secrets_to_nginx() {
    let cp = ControlPlane::start();
    let dir = tempfile::tempdir().unwrap();
    let clients = Pki::new(dir.path(), "clients");
    let (_nginx, port) = nginx(dir.path(), &cp, Some(&clients.ca_file));
    let pair = clients.ca.client("api-caller").unwrap();
    let spec = dir.path().join("job.json");
    let step = |client: bool| {
        let mut http = serde_json::json!({
            "url": format!("https://127.0.0.1:{port}/openapi.json"),
            "ca_file": cp.pki.ca_file.display().to_string(),
            "capture": {"api": "/info/title", "status": "status"},
        });
        if client {
            http["client_cert"] = "${secret.TLS_CERT}".into();
            http["client_key"] = "${secret.TLS_KEY}".into();
        }
        let job = serde_json::json!({
            "id": "mtls", "secrets": {"TLS_CERT": "env:TLS_CERT", "TLS_KEY": "env:TLS_KEY"},
            "steps": [{"http": http}],
        });
        fs::write(&spec, job.to_string()).unwrap();
    };
    let exec = |code: u8| {
        run(
            sortie()
                .args(["--log-format", "json", "exec"])
                .arg(&spec)
                .env("SORTIE_SECRET_TLS_CERT", &pair.cert_pem)
                .env("SORTIE_SECRET_TLS_KEY", &pair.key_pem),
            code,
        )
    };
    step(true);
    let out = exec(code::OK);
    let summary = stderr(&out);
    assert!(summary.contains(r#""status":"200""#), "{summary}");
    assert!(
        summary
            .contains(r#""api":"sortie protocol v1 and the reference control plane's admin API""#),
        "{summary}"
    );
    let key_line = pair.key_pem.lines().nth(1).unwrap();
    assert!(!stdout(&out).contains(key_line) && !summary.contains(key_line));
    // Without it, nginx refuses the request.
    step(false);
    let out = exec(code::JOB_FAILED);
    assert!(stdout(&out).contains("HTTP 403"), "{}", stdout(&out));
    let access = fs::read_to_string(dir.path().join("access.log")).unwrap();
    assert!(access.contains("GET /openapi.json"), "{access}");
}
