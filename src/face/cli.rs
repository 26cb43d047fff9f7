//! The command line, as parsed: raw values only.
//!
//! Parsing never fails on anything but syntax, so `--help` and `--version` always
//! work; turning these values into checked settings (reading files, parsing
//! certificates, choosing a control plane) is `config`'s job. Every flag can also
//! come from a `SORTIE_*` environment variable. No secret is ever a flag value:
//! the token comes from `--token-file` or the `SORTIE_TOKEN` variable.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "sortie",
    version,
    long_version = concat!(env!("CARGO_PKG_VERSION"), " (", env!("SORTIE_BUILD"), ")"),
    args_override_self = true,
    about = "A single-shot automation runner: poll a control plane once, run the work, report, exit.",
    long_about = "sortie is a runner that reaches out to a control plane over HTTPS (or reads an \
embedded spool directory), claims the jobs meant for it, runs them locally, streams their \
output back and reports their results — then exits. Trigger it from cron, a systemd timer, a \
Kubernetes CronJob, a CI step or AWS Lambda.",
    after_help = "Exit codes: 0 ok, 1 job failed, 64 usage, 69 control plane unreachable, \
70 a bug in sortie, 73 state dir busy, 74 state dir I/O error (a full disk), 75 results left \
for a later shot, 76 the control plane answered outside the protocol, 77 credentials \
rejected, 78 configuration error, 130 interrupted. See sortie(1)."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,

    #[command(flatten)]
    pub global: GlobalArgs,
}

#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Format of sortie's own diagnostics on stderr (and of `exec`'s job log on stdout).
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text, env = "SORTIE_LOG_FORMAT")]
    pub log_format: LogFormat,

    /// More diagnostics (-v: debug, -vv: trace).
    #[arg(short, long, global = true, action = clap::ArgAction::Count, conflicts_with = "quiet")]
    pub verbose: u8,

    /// Only errors on stderr.
    #[arg(short, long, global = true)]
    pub quiet: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run one shot: claim work from the control plane, run it, report it, exit.
    Poll(Box<PollArgs>),
    /// Run a job spec file locally, without a control plane, and show its log.
    Exec(Box<ExecArgs>),
    /// Check configuration, certificates, the control plane and the state dir; claim nothing.
    Check(Box<CheckArgs>),
    /// Serve as an AWS Lambda custom runtime: each invocation is one shot (the default
    /// when started as `bootstrap` with AWS_LAMBDA_RUNTIME_API set).
    Lambda(Box<LambdaArgs>),
    /// Show the nodes a filter selects from the inventory (to try a filter before a job uses it).
    Nodes(Box<NodesArgs>),
    /// Print the inventory this runner sees, from its configured sources (what
    /// `poll --inventory-every` reports).
    Discover(Box<DiscoverArgs>),
    /// Print the job spec a Rundeck job (YAML or XML) becomes, what is not carried over, and what it would refuse when it runs.
    Convert(Box<ConvertArgs>),
    /// Manage a spool directory (the embedded control plane).
    #[command(subcommand)]
    Spool(SpoolCommand),
    /// Show the last shot and the last jobs this runner ran, from its state dir.
    Status(Box<StatusArgs>),
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// The runner's state dir (the default is poll's).
    #[arg(long, env = "SORTIE_STATE_DIR", value_name = "PATH")]
    pub state_dir: Option<PathBuf>,

    /// Jobs to show, newest last.
    #[arg(long, default_value_t = 20, value_name = "N")]
    pub last: usize,

    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct NodesArgs {
    /// Rundeck's node filter (`tags: web+prod`, `name: db.*`, `!hostname: test.*`).
    #[arg(long, default_value = ".*", value_name = "FILTER")]
    pub filter: String,

    /// A filter whose nodes are left out.
    #[arg(long, value_name = "FILTER")]
    pub exclude_filter: Option<String>,

    /// With both filters, a node matching both is left out (false: kept).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, value_name = "BOOL")]
    pub exclude_precedence: bool,

    /// Print Rundeck resource JSON instead of a table.
    #[arg(long)]
    pub json: bool,

    #[command(flatten)]
    pub nodes: NodeArgs,
}

#[derive(Debug, Args)]
pub struct DiscoverArgs {
    /// How to print it: Rundeck resource JSON or YAML, or a table.
    #[arg(long, value_enum, default_value_t = DiscoverFormat::Json)]
    pub format: DiscoverFormat,

    /// A tag of the runner's own node (repeatable; the variable takes a comma-separated list).
    #[arg(
        long = "tag",
        env = "SORTIE_TAGS",
        value_delimiter = ',',
        value_name = "TAG"
    )]
    pub tags: Vec<String>,

    #[command(flatten)]
    pub inventory: InventoryArgs,

    #[command(flatten)]
    pub nodes: NodeArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DiscoverFormat {
    Json,
    Yaml,
    Table,
}

/// Where the inventory comes from (`discover`, `poll`).
#[derive(Debug, Args)]
pub struct InventoryArgs {
    /// A YAML or JSON file naming the inventory's sources in priority order,
    /// each with its own timeout (sortie(1), INVENTORY) [default: the runner's
    /// own node and the --nodes files].
    #[arg(long, env = "SORTIE_INVENTORY_CONFIG", value_name = "PATH")]
    pub inventory_config: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ConvertArgs {
    /// A Rundeck job file (YAML or XML); - reads standard input.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
}

#[derive(Debug, Subcommand)]
pub enum SpoolCommand {
    /// Create a spool: PATH and its pending/, claimed/, done/ and failed/ directories.
    Init {
        /// Where the spool lives.
        #[arg(value_name = "PATH")]
        path: PathBuf,
        /// Offer the log format's multi-line extension: output events in done/*/log.ndjson
        /// may hold several lines each (a smaller log, written faster). Only for a spool whose
        /// reader takes them: it creates PATH/log-multiline.
        #[arg(long)]
        log_multiline: bool,
    },
}

/// How to reach the control plane, and who this runner is.
#[derive(Debug, Args)]
pub struct ConnectArgs {
    /// Control plane: https://HOST[:PORT]/PATH/, http:// to a loopback address, or dir:PATH
    /// for the embedded spool directory.
    #[arg(long, env = "SORTIE_SERVER", value_name = "URL")]
    pub server: Option<String>,

    /// File holding the bearer token, at most 32 KiB (the SORTIE_TOKEN variable is read otherwise).
    #[arg(long, env = "SORTIE_TOKEN_FILE", value_name = "PATH")]
    pub token_file: Option<PathBuf>,

    /// Read the bearer token from a secret provider instead: a reference such as
    /// aws-ssm:/sortie/token, aws-sm:ID#KEY, bao:PATH#KEY, file:NAME (resolved
    /// once, when sortie starts; on Lambda, once per cold start).
    #[arg(
        long,
        env = "SORTIE_TOKEN_FROM",
        value_name = "REF",
        conflicts_with = "token_file"
    )]
    pub token_from: Option<String>,

    /// This runner's id [default: the host name].
    #[arg(long, env = "SORTIE_RUNNER_ID", value_name = "ID")]
    pub runner_id: Option<String>,

    /// A tag this runner offers; jobs may require tags (repeatable; the variable takes a
    /// comma-separated list).
    #[arg(
        long = "tag",
        env = "SORTIE_TAGS",
        value_delimiter = ',',
        value_name = "TAG"
    )]
    pub tags: Vec<String>,

    /// PEM bundle of the CAs to trust for the control plane (replaces the built-in roots).
    #[arg(long, env = "SORTIE_CA_FILE", value_name = "PATH")]
    pub ca_file: Option<PathBuf>,

    /// PEM client certificate chain for mTLS.
    #[arg(
        long,
        env = "SORTIE_CLIENT_CERT",
        value_name = "PATH",
        requires = "client_key"
    )]
    pub client_cert: Option<PathBuf>,

    /// PEM private key of the client certificate.
    #[arg(
        long,
        env = "SORTIE_CLIENT_KEY",
        value_name = "PATH",
        requires = "client_cert"
    )]
    pub client_key: Option<PathBuf>,

    /// Allow plain http:// to a non-loopback address (the token travels in clear text).
    #[arg(long, env = "SORTIE_ALLOW_INSECURE_HTTP")]
    pub allow_insecure_http: bool,

    /// Directory for the lock, the job logs in flight and the workspaces
    /// [default: $STATE_DIRECTORY, else $XDG_STATE_HOME/sortie, else /var/lib/sortie as root,
    /// else ~/.local/state/sortie].
    #[arg(long, env = "SORTIE_STATE_DIR", value_name = "PATH")]
    pub state_dir: Option<PathBuf>,

    /// Time allowed to open a connection to the control plane.
    #[arg(long, env = "SORTIE_CONNECT_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub connect_timeout: Duration,

    /// Time allowed for one request to the control plane (a long poll adds its wait).
    #[arg(long, env = "SORTIE_REQUEST_TIMEOUT", default_value = "30s", value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub request_timeout: Duration,
}

/// How steps are run (`poll` and `exec`).
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Time a stopped step's processes get between SIGTERM and SIGKILL.
    #[arg(long, env = "SORTIE_KILL_GRACE", default_value = "10s", value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub kill_grace: Duration,

    /// Keep each job's workspace after the job, for debugging (its path is logged).
    #[arg(long, env = "SORTIE_KEEP_WORKSPACE")]
    pub keep_workspace: bool,

    /// Confine steps with Landlock to everything but the runner's own files (state dir,
    /// token, client key, secrets directories): auto (where the kernel has it), required,
    /// or off (also allows steps to gain privileges, e.g. with sudo).
    #[arg(long, env = "SORTIE_SANDBOX", value_enum, default_value_t = SandboxMode::Auto)]
    pub sandbox: SandboxMode,

    /// A further path steps may not touch (repeatable; the variable takes a comma-separated list).
    #[arg(
        long = "protect",
        env = "SORTIE_PROTECT",
        value_delimiter = ',',
        value_name = "PATH"
    )]
    pub protect: Vec<PathBuf>,

    /// Run steps as this user (name or uid) when sortie runs as root. With a
    /// state dir, their workspaces are in its work/, which that user alone is
    /// let through (an ACL on both); see sortie(1), SANDBOX.
    #[arg(long, env = "SORTIE_RUN_AS", value_name = "USER")]
    pub run_as: Option<String>,

    /// A file of NAME=VALUE lines: the values of ${globals.NAME} in jobs (Rundeck's
    /// project globals; `globals.NAME=` and `project.globals.NAME=` lines too).
    #[arg(long, env = "SORTIE_GLOBALS", value_name = "PATH")]
    pub globals: Option<PathBuf>,

    /// Where plugin steps' executables and manifests are looked for, in order
    /// (repeatable; the variable takes a comma-separated list) [default: `plugins`
    /// beside the state dir, then /usr/lib/sortie/plugins].
    #[arg(
        long = "plugin-dir",
        env = "SORTIE_PLUGIN_DIR",
        value_delimiter = ',',
        value_name = "DIR"
    )]
    pub plugin_dir: Vec<PathBuf>,
}

/// Which nodes this runner knows and how it reaches them (`poll`, `exec`, `nodes`).
#[derive(Debug, Args)]
pub struct NodeArgs {
    /// A Rundeck resource model (YAML, XML or JSON; a directory: each such file in
    /// it) with the nodes jobs may dispatch to (repeatable; the variable takes a
    /// comma-separated list).
    #[arg(
        long = "nodes",
        env = "SORTIE_NODES",
        value_delimiter = ',',
        value_name = "PATH"
    )]
    pub nodes: Vec<PathBuf>,

    /// The name of the runner's own node.
    #[arg(
        long,
        env = "SORTIE_NODE_NAME",
        default_value = "local",
        value_name = "NAME"
    )]
    pub node_name: String,

    /// known_hosts file with the host keys nodes must present (host keys are always
    /// checked; a node may also carry its key in an `ssh-host-key` attribute).
    #[arg(long, env = "SORTIE_KNOWN_HOSTS", value_name = "PATH")]
    pub known_hosts: Option<PathBuf>,

    /// An ssh_config for node connections [default: none, not even ~/.ssh/config].
    #[arg(long, env = "SORTIE_SSH_CONFIG", value_name = "PATH")]
    pub ssh_config: Option<PathBuf>,

    /// Time allowed to connect to a node.
    #[arg(long, env = "SORTIE_SSH_CONNECT_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub ssh_connect_timeout: Duration,

    /// Also offer the keys of the ssh-agent at $SSH_AUTH_SOCK.
    #[arg(long, env = "SORTIE_SSH_AGENT")]
    pub ssh_agent: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SandboxMode {
    Auto,
    Required,
    Off,
}

/// The prefix of the variables the `env:` provider may read.
pub const DEFAULT_ENV_PREFIX: &str = "SORTIE_SECRET_";

/// Where secrets come from (`poll` and `exec`). Jobs name secrets; only these
/// providers, configured on the runner, resolve them.
#[derive(Debug, Args)]
pub struct SecretArgs {
    /// Prefix of the variables `env:NAME` may read (`env:DB` reads PREFIXDB).
    #[arg(
        long,
        env = "SORTIE_SECRETS_ENV_PREFIX",
        default_value = DEFAULT_ENV_PREFIX,
        value_name = "PREFIX"
    )]
    pub secrets_env_prefix: String,

    /// Directory `file:NAME` reads from [default: $CREDENTIALS_DIRECTORY].
    #[arg(long, env = "SORTIE_SECRETS_DIR", value_name = "PATH")]
    pub secrets_dir: Option<PathBuf>,

    /// Command `cmd:NAME` runs with NAME as its argument (and on stdin); its output is the value.
    #[arg(long, env = "SORTIE_SECRETS_COMMAND", value_name = "PATH")]
    pub secrets_command: Option<PathBuf>,

    /// Time the secrets command may take.
    #[arg(long, env = "SORTIE_SECRETS_COMMAND_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub secrets_command_timeout: Duration,

    /// Shortest value accepted as a secret (shorter ones fail the job rather than mask the log).
    #[arg(long, env = "SORTIE_MASK_MIN_LENGTH", default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..), value_name = "N")]
    pub mask_min_length: u16,

    /// OpenBao/Vault address for `bao:` and `vault:` [default: $BAO_ADDR, else $VAULT_ADDR].
    #[arg(long, env = "SORTIE_BAO_ADDR", value_name = "URL")]
    pub bao_addr: Option<String>,

    /// File holding an OpenBao token.
    #[arg(long, env = "SORTIE_BAO_TOKEN_FILE", value_name = "PATH")]
    pub bao_token_file: Option<PathBuf>,

    /// File holding an AppRole role id (with --bao-secret-id-file).
    #[arg(
        long,
        env = "SORTIE_BAO_ROLE_ID_FILE",
        value_name = "PATH",
        requires = "bao_secret_id_file"
    )]
    pub bao_role_id_file: Option<PathBuf>,

    /// File holding an AppRole secret id.
    #[arg(
        long,
        env = "SORTIE_BAO_SECRET_ID_FILE",
        value_name = "PATH",
        requires = "bao_role_id_file"
    )]
    pub bao_secret_id_file: Option<PathBuf>,

    /// Mount of the AppRole auth method.
    #[arg(
        long,
        env = "SORTIE_BAO_APPROLE_MOUNT",
        default_value = "approle",
        value_name = "MOUNT"
    )]
    pub bao_approle_mount: String,

    /// Role for Kubernetes auth (logs in with the service account token).
    #[arg(long, env = "SORTIE_BAO_K8S_ROLE", value_name = "ROLE")]
    pub bao_k8s_role: Option<String>,

    /// Service account token for Kubernetes auth.
    #[arg(
        long,
        env = "SORTIE_BAO_K8S_TOKEN_FILE",
        default_value = "/var/run/secrets/kubernetes.io/serviceaccount/token",
        value_name = "PATH"
    )]
    pub bao_k8s_token_file: PathBuf,

    /// Mount of the Kubernetes auth method.
    #[arg(
        long,
        env = "SORTIE_BAO_K8S_MOUNT",
        default_value = "kubernetes",
        value_name = "MOUNT"
    )]
    pub bao_k8s_mount: String,

    /// OpenBao namespace (X-Vault-Namespace).
    #[arg(long, env = "SORTIE_BAO_NAMESPACE", value_name = "NAMESPACE")]
    pub bao_namespace: Option<String>,

    /// PEM bundle of the CAs to trust for OpenBao [default: the --ca-file of the control plane].
    #[arg(long, env = "SORTIE_BAO_CA_FILE", value_name = "PATH")]
    pub bao_ca_file: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    #[command(flatten)]
    pub connect: ConnectArgs,

    /// The providers `--token-from` may name.
    #[command(flatten)]
    pub secrets: SecretArgs,
}

#[derive(Debug, Args)]
pub struct PollArgs {
    #[command(flatten)]
    pub connect: ConnectArgs,

    #[command(flatten)]
    pub run: RunArgs,

    #[command(flatten)]
    pub secrets: SecretArgs,

    #[command(flatten)]
    pub nodes: NodeArgs,

    #[command(flatten)]
    pub inventory: InventoryArgs,

    /// Report the inventory (`PUT v1/inventory`) after the shot's jobs, at most
    /// this often (the last report's time is kept in the state dir; a failed
    /// report is tried again by the next shot).
    #[arg(long, env = "SORTIE_INVENTORY_EVERY", value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub inventory_every: Option<Duration>,

    /// Most jobs to take in this shot. A job is claimed only when it can start
    /// at once: with --parallel 1, one after the other.
    #[arg(long, env = "SORTIE_MAX_JOBS", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=1000), value_name = "N")]
    pub max_jobs: u32,

    /// Copy each job's output to stderr too, every line labelled with its job
    /// and step (JSON with --log-format json), for platforms whose log
    /// collection reads only stderr.
    #[arg(long, env = "SORTIE_ECHO_OUTPUT")]
    pub echo_output: bool,

    /// Jobs kept in the state dir's history for `sortie status` (0: none).
    #[arg(long, env = "SORTIE_HISTORY", default_value_t = 100, value_name = "N")]
    pub history: usize,

    /// Jobs run at once, each in its own workspace and process groups, with its
    /// own log and heartbeats.
    #[arg(long, env = "SORTIE_PARALLEL", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=64), value_name = "N")]
    pub parallel: u32,

    /// Long poll: let the control plane hold the claim this long for work to arrive.
    #[arg(long, env = "SORTIE_WAIT", default_value = "0s", value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub wait: Duration,

    /// Upper bound for the whole shot; jobs whose timeout cannot fit are not claimed.
    #[arg(long, env = "SORTIE_MAX_RUNTIME", value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub max_runtime: Option<Duration>,

    /// Exit 1 when a job fails (for CI steps); otherwise a job's failure is only reported.
    #[arg(long, env = "SORTIE_FAIL_ON_JOB_FAILURE")]
    pub fail_on_job_failure: bool,

    /// Time kept back from --max-runtime for delivering logs and results: a running job
    /// is stopped (and reported interrupted) this long before the shot's deadline.
    #[arg(long, env = "SORTIE_DEADLINE_RESERVE", default_value = "5s", value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub deadline_reserve: Duration,

    /// Wait this long for another shot to release the state dir (0: exit at once).
    #[arg(long, env = "SORTIE_LOCK_WAIT", default_value = "0s", value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub lock_wait: Duration,

    /// Also keep a copy of each job's log as DIR/<id>.ndjson (for CI artifacts).
    #[arg(long, env = "SORTIE_KEEP_LOGS", value_name = "DIR")]
    pub keep_logs: Option<PathBuf>,

    /// Longest time a shot spends delivering what earlier shots left, before claiming.
    #[arg(long, env = "SORTIE_DELIVERY_BUDGET", default_value = "60s", value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub delivery_budget: Duration,
}

#[derive(Debug, Args)]
pub struct ExecArgs {
    /// The job: a job spec (JSON, job spec v1) or a Rundeck job (YAML or XML, as
    /// Rundeck exports them); - reads standard input.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,

    /// Set an option: NAME=VALUE (repeatable; overrides the spec's own value).
    #[arg(short = 'o', long = "option", value_name = "NAME=VALUE")]
    pub options: Vec<String>,

    /// Check the job without running it: its fields (with a hint for a
    /// misspelt one), its options and what each step would refuse; exit 0 if
    /// it would run, 78 if not.
    #[arg(long)]
    pub check: bool,

    /// Of a Rundeck file with several jobs, the one to run (its name, group/name or uuid).
    #[arg(long, value_name = "JOB")]
    pub job: Option<String>,

    /// PEM bundle of the CAs to trust for scripturl steps [default: the built-in roots].
    #[arg(long, env = "SORTIE_CA_FILE", value_name = "PATH")]
    pub ca_file: Option<PathBuf>,

    #[command(flatten)]
    pub run: RunArgs,

    #[command(flatten)]
    pub secrets: SecretArgs,

    #[command(flatten)]
    pub nodes: NodeArgs,

    /// Allow plain http:// to a non-loopback secret store or scripturl host.
    #[arg(long, env = "SORTIE_ALLOW_INSECURE_HTTP")]
    pub allow_insecure_http: bool,
}

#[derive(Debug, Args)]
pub struct LambdaArgs {
    #[command(flatten)]
    pub poll: PollArgs,

    /// Tags an invocation's event may ask for instead of --tag (comma-separated).
    #[arg(
        long,
        env = "SORTIE_LAMBDA_ALLOWED_TAGS",
        value_delimiter = ',',
        value_name = "TAG"
    )]
    pub allowed_tags: Vec<String>,
}
