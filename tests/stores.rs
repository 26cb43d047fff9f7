//! Secret stores that run as servers: a real OpenBao dev server and moto's AWS APIs.

use std::fs;
use std::path::Path;
use std::process::Command;

use serde_json::{json, Value};

use crate::support::*;

const ROOT: &str = "root-token-for-tests";
const DB_PASSWORD: &str = "bao-db-password-123";

struct Bao {
    _daemon: Daemon,
    addr: String,
}

impl Bao {
    fn start() -> Bao {
        let port = free_port();
        let addr = format!("http://127.0.0.1:{port}");
        let health = format!("{addr}/v1/sys/health");
        let daemon = start_daemon(
            Command::new(peer("bao")).args([
                "server",
                "-dev",
                "-dev-no-store-token",
                &format!("-dev-root-token-id={ROOT}"),
                &format!("-dev-listen-address=127.0.0.1:{port}"),
            ]),
            "the OpenBao dev server",
            || http("GET", &health, &[], None).0 == 200,
        );
        let bao = Bao {
            _daemon: daemon,
            addr,
        };
        bao.call(
            "POST",
            "secret/data/app/db",
            json!({ "data": { "password": DB_PASSWORD, "user": "app" } }),
        );
        bao.call(
            "POST",
            "secret/data/other/x",
            json!({ "data": { "f": "not-for-app-1234" } }),
        );
        bao.call(
            "PUT",
            "sys/policies/acl/app-read",
            json!({ "policy": "path \"secret/data/app/*\" { capabilities = [\"read\"] }" }),
        );
        bao
    }

    fn call(&self, method: &str, path: &str, body: Value) -> Value {
        let (status, answer) = http(
            method,
            &format!("{}/v1/{path}", self.addr),
            &[("X-Vault-Token", ROOT)],
            Some(body),
        );
        assert!(
            (200..300).contains(&status),
            "{method} {path}: {status} {answer}"
        );
        answer
    }

    /// A token that may read secret/app/* only.
    fn app_token(&self) -> String {
        let answer = self.call(
            "POST",
            "auth/token/create",
            json!({ "policies": ["app-read"] }),
        );
        answer["auth"]["client_token"].as_str().unwrap().to_string()
    }

    /// AppRole role id and secret id for the app-read policy.
    fn approle(&self) -> (String, String) {
        self.call("POST", "sys/auth/approle", json!({ "type": "approle" }));
        self.call(
            "POST",
            "auth/approle/role/app",
            json!({ "token_policies": ["app-read"], "token_ttl": "1m" }),
        );
        let role = self.call("GET", "auth/approle/role/app/role-id", Value::Null);
        let secret = self.call("POST", "auth/approle/role/app/secret-id", json!({}));
        (
            role["data"]["role_id"].as_str().unwrap().to_string(),
            secret["data"]["secret_id"].as_str().unwrap().to_string(),
        )
    }
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    fs::write(&path, text).unwrap();
    path.display().to_string()
}

/// `sortie exec` of a one-step job that checks `$VALUE` against the expected digest.
fn exec_secret(
    dir: &Path,
    reference: &str,
    expected: &str,
    flags: &[&str],
    env: &[(&str, &str)],
) -> std::process::Output {
    let spec = json!({
        "id": "store",
        "secrets": { "VALUE": reference },
        "steps": [{ "shell": format!("test \"$(printf %s \"$VALUE\" | sha256sum | cut -c1-64)\" = {} && echo value ok: $VALUE", sha256_hex(expected.as_bytes())) }]
    });
    let file = dir.join("spec.json");
    fs::write(&file, spec.to_string()).unwrap();
    let mut cmd = sortie();
    cmd.args(["--log-format", "json", "exec"])
        .arg(&file)
        .args(flags);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

#[test]
fn openbao_token_and_approle_logins_read_kv2_and_refusals_are_clear() {
    let bao = Bao::start();
    let dir = tempfile::tempdir().unwrap();
    let token = write(dir.path(), "token", &bao.app_token());
    let with_token = ["--bao-addr", &bao.addr, "--bao-token-file", &token];

    let out = exec_secret(
        dir.path(),
        "bao:secret/app/db#password",
        DB_PASSWORD,
        &with_token,
        &[],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert!(
        stdout(&out).contains("value ok: [SECRET]"),
        "{}",
        stdout(&out)
    );
    assert!(!stdout(&out).contains(DB_PASSWORD));

    let (role_id, secret_id) = bao.approle();
    let role = write(dir.path(), "role-id", &role_id);
    let secret = write(dir.path(), "secret-id", &secret_id);
    let out = exec_secret(
        dir.path(),
        "vault:secret/app/db#password",
        DB_PASSWORD,
        &[
            "--bao-addr",
            &bao.addr,
            "--bao-role-id-file",
            &role,
            "--bao-secret-id-file",
            &secret,
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));

    for (reference, why) in [
        (
            "bao:secret/other/x#f",
            "permission denied reading secret/other/x",
        ),
        (
            "bao:secret/app/missing#password",
            "no secret at secret/app/missing",
        ),
        ("bao:secret/app/db#nope", "has no field \\\"nope\\\""),
    ] {
        let out = exec_secret(dir.path(), reference, "x", &with_token, &[]);
        assert_eq!(
            out.status.code(),
            Some(i32::from(code::JOB_FAILED)),
            "{reference}"
        );
        let log = stdout(&out);
        assert!(
            log.contains(why) && log.contains(reference) && log.contains("provider bao"),
            "{reference}: {log}"
        );
        assert!(!log.contains("not-for-app-1234") && !log.contains(DB_PASSWORD));
        assert!(!log.contains("value ok"));
    }

    let wrong = write(dir.path(), "wrong", "s.not-a-token");
    let out = exec_secret(
        dir.path(),
        "bao:secret/app/db#password",
        DB_PASSWORD,
        &["--bao-addr", &bao.addr, "--bao-token-file", &wrong],
        &[],
    );
    assert_eq!(out.status.code(), Some(i32::from(code::JOB_FAILED)));
    assert!(
        stdout(&out).contains("permission denied"),
        "{}",
        stdout(&out)
    );
}

struct Moto {
    _daemon: Daemon,
    url: String,
    access_key: String,
    secret_key: String,
    role: String,
}

const MOTO_SETUP: &str = r#"
import json, sys, boto3
url = sys.argv[1]
common = dict(endpoint_url=url, region_name="eu-west-1")
iam = boto3.client("iam", aws_access_key_id="setup", aws_secret_access_key="setup", **common)
iam.create_user(UserName="runner")
key = iam.create_access_key(UserName="runner")["AccessKey"]
iam.put_user_policy(UserName="runner", PolicyName="read", PolicyDocument=json.dumps({
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": ["secretsmanager:*", "ssm:*"], "Resource": "*"}]}))
iam.create_role(RoleName="irsa", AssumeRolePolicyDocument=json.dumps({
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"Federated": "oidc"}, "Action": "sts:AssumeRoleWithWebIdentity"}]}))
iam.put_role_policy(RoleName="irsa", PolicyName="read", PolicyDocument=json.dumps({
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": ["secretsmanager:GetSecretValue"], "Resource": "*"}]}))
creds = dict(aws_access_key_id=key["AccessKeyId"], aws_secret_access_key=key["SecretAccessKey"], **common)
boto3.client("secretsmanager", **creds).create_secret(
    Name="prod/db", SecretString=json.dumps({"user": "app", "password": "aws-db-password-1"}))
boto3.client("ssm", **creds).put_parameter(Name="/app/token", Value="ssm-token-value-9", Type="SecureString")
print(json.dumps({"id": key["AccessKeyId"], "secret": key["SecretAccessKey"],
                  "role": "arn:aws:iam::123456789012:role/irsa"}))
"#;

impl Moto {
    fn start() -> Moto {
        // Seven setup calls, then the IRSA check's unsigned STS call (moto answers
        // 500 to an unsigned call once it checks signatures; AWS does not).
        let (daemon, url, printed) = moto(&[("INITIAL_NO_AUTH_ACTION_COUNT", "8")], MOTO_SETUP);
        let keys: Value = serde_json::from_slice(&printed).unwrap();
        Moto {
            _daemon: daemon,
            url,
            access_key: keys["id"].as_str().unwrap().to_string(),
            secret_key: keys["secret"].as_str().unwrap().to_string(),
            role: keys["role"].as_str().unwrap().to_string(),
        }
    }
}

#[test]
fn aws_secrets_manager_and_ssm_are_read_with_sigv4_and_a_wrong_key_is_refused() {
    let moto = Moto::start();
    let dir = tempfile::tempdir().unwrap();
    let env = [
        ("AWS_ENDPOINT_URL", moto.url.as_str()),
        ("AWS_REGION", "eu-west-1"),
        ("AWS_ACCESS_KEY_ID", moto.access_key.as_str()),
        ("AWS_SECRET_ACCESS_KEY", moto.secret_key.as_str()),
    ];
    // EKS IRSA: no keys, a role and a web identity token exchanged with STS.
    let token = write(
        dir.path(),
        "web-identity",
        "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQ6b3BzOnNvcnRpZSJ9.c2ln",
    );
    let irsa = [
        ("AWS_ENDPOINT_URL", moto.url.as_str()),
        ("AWS_REGION", "eu-west-1"),
        ("AWS_ROLE_ARN", moto.role.as_str()),
        ("AWS_WEB_IDENTITY_TOKEN_FILE", token.as_str()),
    ];
    let out = exec_secret(
        dir.path(),
        "aws-sm:prod/db#password",
        "aws-db-password-1",
        &[],
        &irsa,
    );
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert!(
        stdout(&out).contains("value ok: [SECRET]"),
        "{}",
        stdout(&out)
    );

    let out = exec_secret(
        dir.path(),
        "aws-sm:prod/db#password",
        "aws-db-password-1",
        &[],
        &env,
    );
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert!(stdout(&out).contains("value ok: [SECRET]"));
    let out = exec_secret(
        dir.path(),
        "aws-ssm:/app/token",
        "ssm-token-value-9",
        &[],
        &env,
    );
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));

    let out = exec_secret(dir.path(), "aws-sm:prod/missing", "x", &[], &env);
    assert_eq!(out.status.code(), Some(i32::from(code::JOB_FAILED)));
    assert!(
        stdout(&out).contains("ResourceNotFoundException"),
        "{}",
        stdout(&out)
    );

    let mut wrong = env;
    wrong[3] = ("AWS_SECRET_ACCESS_KEY", "not-the-secret-key");
    let out = exec_secret(
        dir.path(),
        "aws-sm:prod/db#password",
        "aws-db-password-1",
        &[],
        &wrong,
    );
    assert_eq!(out.status.code(), Some(i32::from(code::JOB_FAILED)));
    let log = stdout(&out);
    assert!(
        log.contains("403") && log.contains("provider aws-sm"),
        "{log}"
    );
    assert!(!log.contains("aws-db-password-1") && !log.contains("not-the-secret-key"));

    // The runner's own token from SSM Parameter Store (as a Lambda function
    // reads it, instead of a token baked into its zip).
    let server = sortie_control_plane::Server::start(sortie_control_plane::Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        state_dir: dir.path().join("cp"),
        database: Default::default(),
        tls: sortie_control_plane::Tls::Generate { names: vec![] },
        client_ca: None,
        runner_token: Some("ssm-token-value-9".into()),
        admin_token: ADMIN_TOKEN.into(),
        log_multiline: true,
        timing: Default::default(),
    })
    .unwrap();
    server
        .store()
        .enqueue(
            "admin:test",
            json!({"id": "via-ssm", "steps": [{"shell": "true"}]}),
            vec![],
            None,
        )
        .unwrap();
    let out = sortie()
        .args([
            "poll",
            "--server",
            &server.url(),
            "--token-from",
            "aws-ssm:/app/token",
        ])
        .arg("--ca-file")
        .arg(dir.path().join("cp/tls/ca.pem"))
        .arg("--state-dir")
        .arg(dir.path().join("state"))
        .envs(env)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_done(
        &server.store().job("via-ssm").unwrap().unwrap(),
        "succeeded",
    );
    assert!(!stderr(&out).contains("ssm-token-value-9"));
}

/// A stand-in for the Kubernetes API's TokenReview endpoint, over TLS: it vouches for
/// the service account `ops/sortie`, as a cluster's API server would for its token.
fn token_review_api(
    dir: &Path,
) -> (
    String,
    String,
    std::sync::Arc<std::sync::atomic::AtomicBool>,
) {
    use crate::wire::{serve, Reply, Response};
    let ca = sortie_control_plane::pki::Authority::generate("cluster CA").unwrap();
    let tls = server_tls(&ca.server(&["127.0.0.1"]).unwrap());
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("https://{}", listener.local_addr().unwrap());
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let handler: std::sync::Arc<crate::wire::Handler> = std::sync::Arc::new(|req| {
        let body: Value = serde_json::from_slice(&req.body).unwrap_or(Value::Null);
        let authenticated = req.path.ends_with("/tokenreviews")
            && body["spec"]["token"]
                .as_str()
                .is_some_and(|t| t.starts_with("eyJ"));
        Reply::Respond(Response::json(
            201,
            &json!({
                "apiVersion": "authentication.k8s.io/v1",
                "kind": "TokenReview",
                "status": {
                    "authenticated": authenticated,
                    "user": { "username": "system:serviceaccount:ops:sortie", "uid": "5c1c8e4b",
                              "groups": ["system:serviceaccounts", "system:serviceaccounts:ops"] }
                }
            }),
        ))
    });
    let serve_stop = stop.clone();
    std::thread::spawn(move || serve(listener, std::sync::Arc::new(tls), handler, serve_stop));
    fs::write(dir.join("cluster-ca.pem"), ca.cert_pem()).unwrap();
    (url, ca.cert_pem(), stop)
}

/// base64url without padding, for a service account token's parts.
fn b64url(bytes: &[u8]) -> String {
    base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, bytes)
}

#[test]
fn openbao_kubernetes_auth_logs_in_with_the_service_account_token() {
    let bao = Bao::start();
    let dir = tempfile::tempdir().unwrap();
    let (api, ca_pem, _stop) = token_review_api(dir.path());
    bao.call(
        "POST",
        "sys/auth/kubernetes",
        json!({ "type": "kubernetes" }),
    );
    bao.call(
        "POST",
        "auth/kubernetes/config",
        json!({ "kubernetes_host": api, "kubernetes_ca_cert": ca_pem, "disable_local_ca_jwt": true }),
    );
    bao.call(
        "POST",
        "auth/kubernetes/role/runner",
        json!({ "bound_service_account_names": ["sortie"], "bound_service_account_namespaces": ["ops"],
                "token_policies": ["app-read"], "token_ttl": "1m" }),
    );
    let claims = json!({
        "iss": "kubernetes/serviceaccount",
        "sub": "system:serviceaccount:ops:sortie",
        "kubernetes.io/serviceaccount/namespace": "ops",
        "kubernetes.io/serviceaccount/service-account.name": "sortie",
        "kubernetes.io/serviceaccount/service-account.uid": "5c1c8e4b",
    });
    let jwt = format!(
        "{}.{}.{}",
        b64url(br#"{"alg":"RS256","kid":"test"}"#),
        b64url(claims.to_string().as_bytes()),
        b64url(b"signature-checked-by-the-token-review")
    );
    let token_file = write(dir.path(), "sa-token", &jwt);
    let out = exec_secret(
        dir.path(),
        "bao:secret/app/db#password",
        DB_PASSWORD,
        &[
            "--bao-addr",
            &bao.addr,
            "--bao-k8s-role",
            "runner",
            "--bao-k8s-token-file",
            &token_file,
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert!(
        stdout(&out).contains("value ok: [SECRET]"),
        "{}",
        stdout(&out)
    );
}
