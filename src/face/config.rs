//! Checked settings, built from the raw command line.
//!
//! Everything a shot needs is validated here, before any connection is made or any
//! job is claimed: the server URL and its scheme rules, the token, the CA bundle and
//! client identity, the state dir. A problem becomes a configuration error that
//! names the flag or file at fault; `check` reports every problem, one per line.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};

use crate::control::{Endpoint, Target};
use crate::net::tls::Identity;
use crate::net::tls::Roots;
use std::sync::Arc;

use crate::exec::sandbox::{Mode, Policy};
use crate::face::cli::{ConnectArgs, NodeArgs, PollArgs, RunArgs, SandboxMode, SecretArgs};
use crate::jobs::dispatch::Nodes;
use crate::nodes::{resource, ssh, Node};
use crate::secret::Secret;
use crate::secrets::own;
use crate::secrets::{BaoConfig, Providers};
use crate::shot;

/// Everything needed to talk to a control plane, and who this runner is.
#[derive(Debug, Clone)]
pub struct Connect {
    pub endpoint: Endpoint,
    pub runner_id: String,
    pub tags: Vec<String>,
    pub state_dir: PathBuf,
}

/// sortie's own credential files: never a job's secret, never readable by a step.
pub fn own_files(args: &ConnectArgs) -> Vec<PathBuf> {
    [&args.token_file, &args.client_key]
        .into_iter()
        .flatten()
        .cloned()
        .collect()
}

/// A shot's settings (`poll`, and each Lambda invocation); `json`: sortie's diagnostics are JSON lines (so is the
/// echo of job output).
pub fn poll(args: &PollArgs, json: bool) -> Result<shot::Settings> {
    let mut connect = build_connect(&args.connect).map_err(join)?;
    let providers = providers(
        &args.secrets,
        args.connect.ca_file.as_deref(),
        own_files(&args.connect),
        args.connect.allow_insecure_http,
        args.connect.request_timeout,
    )?;
    if let Some(reference) = &args.connect.token_from {
        connect.endpoint.token = Some(token_from(reference, &providers)?);
    }

    // What a step must not touch: the runner's credentials and state, and the
    // spool it serves; what it may only read: what decides whom the runner
    // trusts (its CA bundles, its client certificate).
    let mut own = own_files(&args.connect);
    own.push(connect.state_dir.clone());
    if let Target::Spool { root } = &connect.endpoint.target {
        own.push(root.clone());
    }
    let read_only: Vec<PathBuf> = [
        &args.connect.ca_file,
        &args.connect.client_cert,
        &args.secrets.bao_ca_file,
    ]
    .into_iter()
    .flatten()
    .cloned()
    .collect();
    let read_only = read_only
        .into_iter()
        .chain(args.nodes.known_hosts.clone())
        .chain(args.nodes.ssh_config.clone())
        .collect();
    let policy = policy(&args.run, &providers, &own, read_only)?;
    let nodes = nodes(&args.nodes, connect.state_dir.join("ssh"))?;
    let fetcher = crate::net::Fetcher::new(
        connect.endpoint.roots.as_ref(),
        args.connect.allow_insecure_http,
    )?;
    Ok(shot::Settings {
        nodes,
        globals: globals(args.run.globals.as_deref())?,
        plugins: plugin_dirs(&args.run, Some(&connect.state_dir)),
        inventory: match args.inventory_every {
            Some(every) => Some(crate::shot::inventory::Reporting {
                config: crate::face::discover::config(&args.inventory, &args.nodes, &connect.tags)?,
                every,
            }),
            None => None,
        },
        fetcher,
        endpoint: connect.endpoint,
        runner_id: connect.runner_id,
        tags: connect.tags,
        state_dir: connect.state_dir,
        providers,
        policy,
        kill_grace: args.run.kill_grace,
        keep_workspace: args.run.keep_workspace,
        max_jobs: args.max_jobs,
        history: args.history,
        echo_output: args.echo_output.then_some(json),
        parallel: args.parallel.min(args.max_jobs),
        wait: args.wait,
        max_runtime: args.max_runtime,
        fail_on_job_failure: args.fail_on_job_failure,
        deadline_reserve: args.deadline_reserve,
        lock_wait: args.lock_wait,
        delivery_budget: args.delivery_budget,
        keep_logs: args.keep_logs.clone(),
    })
}

/// The runner's globals (`--globals`): `NAME=VALUE` lines, `#` comments;
/// Rundeck's `globals.NAME` and `project.globals.NAME` keys are read as `NAME`.
pub fn globals(path: Option<&std::path::Path>) -> Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    let Some(path) = path else { return Ok(out) };
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read --globals {}", path.display()))?;
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with('!') {
            continue;
        }
        let (key, value) = line
            .split_once('=')
            .ok_or_else(|| anyhow!("--globals {}:{}: not NAME=VALUE", path.display(), n + 1))?;
        let key = key.trim();
        let key = key
            .strip_prefix("project.globals.")
            .or_else(|| key.strip_prefix("framework.globals."))
            .or_else(|| key.strip_prefix("globals."))
            .unwrap_or(key);
        if key.is_empty() || key.contains(char::is_whitespace) {
            bail!(
                "--globals {}:{}: {key:?} is not a name",
                path.display(),
                n + 1
            );
        }
        out.insert(key.to_string(), value.trim_start().to_string());
    }
    Ok(out)
}

/// The runner's nodes: its inventory, its own node, and how it reaches the
/// others. A source that does not load is logged and kept as a problem: jobs
/// with a node filter fail with it (a missing node would change what the
/// filter selects), other jobs run. `private_dir` holds each job's node keys
/// and host keys; it must be out of the steps' reach.
pub fn nodes(args: &NodeArgs, private_dir: PathBuf) -> Result<Nodes> {
    let loaded = resource::load(&args.nodes);
    let problems: Vec<String> = loaded.errors.iter().map(|e| format!("{e:#}")).collect();
    for problem in &problems {
        tracing::error!("--nodes: {problem}");
    }
    let name = args.node_name.trim();
    if name.is_empty() || name.chars().any(char::is_control) {
        bail!("--node-name {:?} must be a name", args.node_name);
    }
    // Absolute: ssh runs with another working directory than sortie's.
    let readable = |flag: &str, path: &Option<PathBuf>| -> Result<Option<PathBuf>> {
        path.as_ref()
            .map(|p| {
                std::fs::File::open(p)
                    .and_then(|_| std::fs::canonicalize(p))
                    .with_context(|| format!("cannot read {flag} {}", p.display()))
            })
            .transpose()
    };
    let known_hosts = readable("--known-hosts", &args.known_hosts)?;
    if let Some(path) = &known_hosts {
        ssh::ssh_path(path).map_err(|e| anyhow::anyhow!("--known-hosts: {e}"))?;
    }
    let config = readable("--ssh-config", &args.ssh_config)?;
    let ssh = ssh::Settings {
        program: ssh::Program::default(),
        known_hosts,
        config,
        connect_timeout: args.ssh_connect_timeout,
        private_dir,
        agent: args.ssh_agent,
    };
    Ok(Nodes {
        inventory: loaded.nodes,
        local: Node::local(name),
        ssh,
        problems,
    })
}

/// Where plugin steps are looked for: `--plugin-dir`, else `plugins` beside
/// the state dir (a runner's own plugins) and the system's directory.
pub fn plugin_dirs(run: &RunArgs, state_dir: Option<&Path>) -> Vec<PathBuf> {
    if !run.plugin_dir.is_empty() {
        // Absolute: a plugin runs in its job's workspace.
        return run
            .plugin_dir
            .iter()
            .map(|d| std::path::absolute(d).unwrap_or_else(|_| d.clone()))
            .collect();
    }
    let beside = state_dir
        .and_then(|d| std::path::absolute(d).ok())
        .and_then(|d| d.parent().map(|p| p.join("plugins")));
    beside
        .into_iter()
        .chain([PathBuf::from(crate::jobs::plugin::SYSTEM_DIR)])
        .collect()
}

/// How steps are confined: the runner's own files are `protected` (the state
/// dir, the token and client key, the secrets directories, the providers'
/// credential files, and `--protect`), `--run-as` resolved.
pub fn policy(
    run: &RunArgs,
    secrets: &Providers,
    own: &[PathBuf],
    mut read_only: Vec<PathBuf>,
) -> Result<Policy> {
    let mut protected: Vec<PathBuf> = own.to_vec();
    protected.extend(secrets.dir.iter().cloned());
    // sortie itself and its secrets command: steps may run them, not change them.
    read_only.extend(secrets.command.iter().cloned());
    read_only.extend(std::env::current_exe().ok());
    let bao = &secrets.bao;
    protected.extend(
        [&bao.token_file, &bao.role_id_file, &bao.secret_id_file]
            .into_iter()
            .flatten()
            .cloned(),
    );
    if bao.k8s_role.is_some() {
        protected.push(bao.k8s_token_file.clone());
    }
    if let Some(file) = std::env::var_os("AWS_WEB_IDENTITY_TOKEN_FILE").filter(|v| !v.is_empty()) {
        protected.push(PathBuf::from(file));
    }
    if let Some(dir) = std::env::var_os("CREDENTIALS_DIRECTORY").filter(|v| !v.is_empty()) {
        protected.push(PathBuf::from(dir));
    }
    protected.extend(run.protect.iter().cloned());
    let user = match &run.run_as {
        None => None,
        Some(_) if !crate::os::is_root() => {
            bail!("--run-as needs sortie to run as root")
        }
        Some(name) => Some(Arc::new(
            crate::os::lookup_user(name).with_context(|| format!("--run-as {name}"))?,
        )),
    };
    let mode = match run.sandbox {
        SandboxMode::Auto => Mode::Auto,
        SandboxMode::Required => Mode::Required,
        SandboxMode::Off => Mode::Off,
    };
    if mode == Mode::Required && crate::os::landlock::abi() == 0 {
        bail!("--sandbox required: {}", crate::os::landlock::missing());
    }
    Ok(Policy::new(mode, protected, read_only, user))
}

/// The secret providers configured on this runner. The OpenBao CA defaults to
/// the control plane's.
pub fn providers(
    args: &SecretArgs,
    default_ca: Option<&std::path::Path>,
    reserved: Vec<PathBuf>,
    allow_insecure_http: bool,
    request_timeout: Duration,
) -> Result<Providers> {
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let ca = args.bao_ca_file.as_deref().or(default_ca);
    Ok(Providers {
        env_prefix: args.secrets_env_prefix.clone(),
        dir: args
            .secrets_dir
            .clone()
            .or_else(|| env("CREDENTIALS_DIRECTORY").map(PathBuf::from)),
        reserved,
        command: args.secrets_command.clone(),
        command_timeout: args.secrets_command_timeout,
        min_length: usize::from(args.mask_min_length),
        request_timeout,
        bao: BaoConfig {
            addr: args
                .bao_addr
                .clone()
                .or_else(|| env("BAO_ADDR"))
                .or_else(|| env("VAULT_ADDR")),
            token_file: args.bao_token_file.clone(),
            role_id_file: args.bao_role_id_file.clone(),
            secret_id_file: args.bao_secret_id_file.clone(),
            approle_mount: args.bao_approle_mount.clone(),
            k8s_role: args.bao_k8s_role.clone(),
            k8s_token_file: args.bao_k8s_token_file.clone(),
            k8s_mount: args.bao_k8s_mount.clone(),
            namespace: args.bao_namespace.clone(),
            roots: ca.map(Roots::load).transpose()?,
            identity: None,
            allow_insecure_http,
        },
    })
}

/// Join several problems into one error, one per line.
pub fn join(problems: Vec<anyhow::Error>) -> anyhow::Error {
    let lines: Vec<String> = problems.iter().map(|e| format!("{e:#}")).collect();
    anyhow!("{}", lines.join("\n"))
}

/// Problems found while building settings, kept so that all of them can be reported.
#[derive(Default)]
struct Problems(Vec<anyhow::Error>);

impl Problems {
    fn keep<T>(&mut self, result: Result<T>) -> Option<T> {
        result.map_err(|e| self.0.push(e)).ok()
    }
}

/// Build the connection settings, collecting every problem rather than stopping at the first.
pub fn build_connect(args: &ConnectArgs) -> Result<Connect, Vec<anyhow::Error>> {
    let mut p = Problems::default();
    let target = p.keep(parse_target(
        args.server.as_deref(),
        args.allow_insecure_http,
    ));
    let token = p.keep(load_token(args));
    let roots = p.keep(args.ca_file.as_deref().map(Roots::load).transpose());
    let identity = p.keep(match (&args.client_cert, &args.client_key) {
        (Some(cert), Some(key)) => Identity::load(cert, key).map(|identity| {
            own::register(identity.key());
            Some(identity)
        }),
        _ => Ok(None),
    });
    let runner_id = p.keep(runner_id(args.runner_id.as_deref()));
    let state_dir = p.keep(state_dir(args.state_dir.as_ref()));
    let tags = p.keep(check_tags(&args.tags));
    match (target, token, roots, identity, runner_id, state_dir, tags) {
        (
            Some(target),
            Some(token),
            Some(roots),
            Some(identity),
            Some(runner_id),
            Some(state_dir),
            Some(tags),
        ) => Ok(Connect {
            endpoint: Endpoint {
                target,
                token,
                roots,
                identity,
                connect_timeout: args.connect_timeout,
                request_timeout: args.request_timeout,
            },
            runner_id,
            tags,
            state_dir,
        }),
        _ => Err(p.0),
    }
}

fn parse_target(server: Option<&str>, allow_insecure_http: bool) -> Result<Target> {
    let Some(server) = server.map(str::trim).filter(|s| !s.is_empty()) else {
        bail!("no control plane given: use --server URL or SORTIE_SERVER (https://…, or dir:PATH)");
    };
    if let Some(path) = server.strip_prefix("dir:") {
        if path.is_empty() {
            bail!("--server dir: needs a path, e.g. dir:/var/spool/sortie");
        }
        return Ok(Target::Spool {
            root: PathBuf::from(path),
        });
    }
    let base = crate::net::base_url(server, allow_insecure_http, "--server")?;
    Ok(Target::Http { base })
}

fn load_token(args: &ConnectArgs) -> Result<Option<Secret>> {
    let raw = match &args.token_file {
        Some(path) => Some(
            std::fs::read_to_string(path)
                .with_context(|| format!("cannot read --token-file {}", path.display()))?,
        ),
        None => own::var("SORTIE_TOKEN").map(|t| t.expose().to_string()),
    };
    let Some(raw) = raw else { return Ok(None) };
    let token = raw.trim();
    if token.is_empty() {
        bail!("the token is empty (check --token-file or SORTIE_TOKEN)");
    }
    sendable_token(token)?;
    let token = Secret::new(token.to_string());
    own::register(&token);
    Ok(Some(token))
}

/// `--token-from` for `sortie check`: the providers built from its own flags.
pub fn resolve_token_from(
    connect_args: &ConnectArgs,
    secrets: &SecretArgs,
    connect: &mut Connect,
) -> Result<()> {
    let Some(reference) = &connect_args.token_from else {
        return Ok(());
    };
    let providers = providers(
        secrets,
        connect_args.ca_file.as_deref(),
        own_files(connect_args),
        connect_args.allow_insecure_http,
        connect_args.request_timeout,
    )?;
    connect.endpoint.token = Some(token_from(reference, &providers)?);
    Ok(())
}

/// `--token-from REF`: the runner's own token from a secret provider (never in
/// a file baked into an image or a zip).
fn token_from(reference: &str, providers: &Providers) -> Result<Secret> {
    let wanted = crate::secrets::Wanted {
        text: reference.to_string(),
        reference: crate::secrets::Reference::parse(reference).context("--token-from")?,
        delivery: crate::secrets::Delivery::Env,
    };
    let resolved = crate::secrets::resolve(&[("TOKEN".to_string(), wanted)].into(), providers)
        .context("--token-from")?;
    let token = resolved
        .into_iter()
        .next()
        .expect("one secret resolved")
        .value;
    sendable_token(token.expose()).with_context(|| format!("--token-from {reference}"))?;
    own::register(&token);
    Ok(token)
}

/// The longest token sent: every request's head (at most 64 KiB, see
/// `net`) must hold it with a job's URL, whatever the job.
const MAX_TOKEN: usize = 32 * 1024;

/// Whether `token` can go in every request's `Authorization` header.
fn sendable_token(token: &str) -> Result<()> {
    if token
        .bytes()
        .any(|b| b.is_ascii_control() || b == b' ' || !b.is_ascii())
    {
        bail!("the token holds spaces, control characters or non-ASCII characters; it cannot be sent in a header");
    }
    if token.len() > MAX_TOKEN {
        bail!(
            "the token is {} bytes, more than the {MAX_TOKEN} sortie sends",
            token.len()
        );
    }
    Ok(())
}

fn runner_id(given: Option<&str>) -> Result<String> {
    let id = match given {
        Some(id) => id.to_string(),
        None => crate::os::hostname().context("cannot tell the host name; give --runner-id")?,
    };
    if id.is_empty() || id.len() > 253 || id.chars().any(|c| c.is_control() || c == ' ') {
        bail!("--runner-id {id:?} must be 1 to 253 characters without spaces");
    }
    Ok(id)
}

fn check_tags(tags: &[String]) -> Result<Vec<String>> {
    let tags: Vec<String> = tags
        .iter()
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty())
        .collect();
    if let Some(bad) = tags
        .iter()
        .find(|t| t.chars().any(|c| c.is_control() || c == ' '))
    {
        bail!("--tag {bad:?} must not hold spaces or control characters");
    }
    Ok(tags)
}

/// The state dir: the flag, else systemd's `$STATE_DIRECTORY`, else the XDG or system default.
pub fn state_dir(given: Option<&PathBuf>) -> Result<PathBuf> {
    if let Some(dir) = given {
        return Ok(dir.clone());
    }
    let env = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
    if let Some(dirs) = env("STATE_DIRECTORY") {
        // systemd passes a colon-separated list when several are configured.
        let first = dirs
            .to_string_lossy()
            .split(':')
            .next()
            .unwrap_or("")
            .to_string();
        return Ok(PathBuf::from(first));
    }
    if env("AWS_LAMBDA_RUNTIME_API").is_some() {
        // Under Lambda only /tmp is writable.
        return Ok(PathBuf::from("/tmp/sortie"));
    }
    if let Some(xdg) = env("XDG_STATE_HOME") {
        return Ok(PathBuf::from(xdg).join("sortie"));
    }
    if crate::os::is_root() {
        return Ok(PathBuf::from("/var/lib/sortie"));
    }
    let home = env("HOME").ok_or_else(|| anyhow!("no state dir: give --state-dir"))?;
    Ok(PathBuf::from(home).join(".local/state/sortie"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_http_is_for_loopback_only() {
        assert!(parse_target(Some("http://127.0.0.1:8080/"), false).is_ok());
        assert!(parse_target(Some("http://[::1]:8080"), false).is_ok());
        assert!(parse_target(Some("http://localhost/x"), false).is_ok());
        let err = parse_target(Some("http://cp.example.com/"), false).unwrap_err();
        assert!(format!("{err}").contains("loopback"));
        assert!(parse_target(Some("http://cp.example.com/"), true).is_ok());
        assert!(parse_target(Some("http://127.0.0.1.evil.com/"), false).is_err());
        assert!(parse_target(Some("ftp://x/"), false).is_err());
        assert!(parse_target(None, false).is_err());
    }

    #[test]
    fn base_url_gets_a_trailing_slash_and_spool_a_path() {
        match parse_target(Some("https://cp.example.com/sortie"), false).unwrap() {
            Target::Http { base } => assert_eq!(base, "https://cp.example.com/sortie/"),
            t => panic!("{t:?}"),
        }
        match parse_target(Some("dir:/var/spool/sortie"), false).unwrap() {
            Target::Spool { root } => assert_eq!(root, PathBuf::from("/var/spool/sortie")),
            t => panic!("{t:?}"),
        }
        assert!(parse_target(Some("dir:"), false).is_err());
    }
}
