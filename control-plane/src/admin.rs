//! The admin command line: `sortie-control-plane job …`, `run`, `exec …`,
//! `runner …`, `admin …` and `audit` talk to a running control plane over its
//! admin API, as curl would, with tables for people and `--json` for scripts.
//!
//! It is a blocking HTTPS client (ureq, rustls): one request per command, no
//! runtime to start. The admin token comes from a file, never the command line;
//! a runner's token is printed once, by the command that made it.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};

/// Where the control plane is and how to prove the caller is an admin.
#[derive(clap::Args)]
pub struct Remote {
    /// The control plane's URL.
    #[arg(
        long,
        global = true,
        env = "SORTIE_CP_URL",
        default_value = "https://127.0.0.1:8443/"
    )]
    server: String,
    /// File holding the admin token (required).
    #[arg(
        long,
        global = true,
        env = "SORTIE_CP_ADMIN_TOKEN_FILE",
        value_name = "FILE"
    )]
    admin_token_file: Option<PathBuf>,
    /// CA (PEM) for the server's certificate (default: the system's CAs).
    #[arg(long, global = true, env = "SORTIE_CP_CA_FILE", value_name = "FILE")]
    ca_file: Option<PathBuf>,
    /// Print the answers as JSON instead of tables.
    #[arg(long, global = true)]
    json: bool,
}

#[derive(clap::Subcommand)]
pub enum RunnerCommand {
    /// Register a runner; prints its token, once.
    Add {
        name: String,
        /// Tags it may claim jobs for (comma-separated, repeatable).
        #[arg(long, value_delimiter = ',')]
        tags: Vec<String>,
        /// RFC 3339 time its token stops working.
        #[arg(long)]
        expires: Option<String>,
    },
    /// Registered runners, with when they were last seen.
    List,
    /// A new token for a runner; prints it, once.
    Rotate {
        name: String,
        /// How long the old token keeps working (default 1h).
        #[arg(long)]
        grace: Option<String>,
    },
    /// Revoke a runner's token (effective on its next request).
    Revoke { name: String },
}

#[derive(clap::Subcommand)]
pub enum JobCommand {
    /// Load job definitions from JSON files: each that changed becomes a new
    /// version (a file may hold one definition or a list of them).
    Load {
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
    },
    /// Job definitions (their latest versions), with their next scheduled run.
    List,
    /// One job definition.
    Show {
        name: String,
        /// That version instead of the latest.
        #[arg(long)]
        version: Option<u64>,
    },
}

/// `run`: start a job definition.
#[derive(clap::Args)]
pub struct RunArgs {
    /// The job definition to run.
    job: String,
    /// An option's value (repeatable), checked against the job's definition.
    #[arg(short = 'o', long = "option", value_name = "NAME=VALUE")]
    options: Vec<String>,
    /// Print the log live until the execution ends, and exit with its result:
    /// 0 when it succeeded, 1 when it did not.
    #[arg(long)]
    follow: bool,
}

#[derive(clap::Subcommand)]
pub enum AdminCommand {
    /// Add an admin with a token of its own; prints the token, once.
    Add { name: String },
    /// Named admins.
    List,
    /// Revoke an admin's token (effective on its next request).
    Revoke { name: String },
}

#[derive(clap::Subcommand)]
pub enum ExecCommand {
    /// Executions in the order they were queued, the latest last.
    List {
        /// A phase (queued, claimed, running, done, failed) or a result
        /// (succeeded, timed_out, cancelled, interrupted, lost).
        #[arg(long)]
        status: Option<String>,
        /// Executions of this job definition.
        #[arg(long)]
        job: Option<String>,
        /// Executions this runner claimed.
        #[arg(long)]
        runner: Option<String>,
        /// Executions queued at or after this RFC 3339 time.
        #[arg(long)]
        since: Option<String>,
        /// At most this many (the latest).
        #[arg(long, default_value_t = 50)]
        limit: u64,
    },
    /// One execution.
    Show { id: String },
    /// An execution's log: its output as the job printed it (`--json`: the
    /// log events as stored).
    Log { id: String },
    /// Cancel an execution.
    Cancel { id: String },
}

struct Client {
    base: String,
    token: String,
    agent: ureq::Agent,
    json: bool,
}

impl Client {
    fn new(remote: &Remote) -> Result<Client> {
        use ureq::tls::{Certificate, RootCerts, TlsConfig};
        let _ = rustls::crypto::ring::default_provider().install_default();
        let ca = remote
            .ca_file
            .clone()
            .unwrap_or_else(|| PathBuf::from("/etc/ssl/certs/ca-certificates.crt"));
        let pem = std::fs::read(&ca).with_context(|| format!("reading {}", ca.display()))?;
        let roots: Vec<Certificate<'static>> = ureq::tls::parse_pem(&pem)
            .filter_map(|item| match item {
                Ok(ureq::tls::PemItem::Certificate(cert)) => Some(cert),
                _ => None,
            })
            .collect();
        if roots.is_empty() {
            bail!("{} holds no certificate", ca.display());
        }
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .tls_config(
                TlsConfig::builder()
                    .root_certs(RootCerts::Specific(Arc::new(roots)))
                    .build(),
            )
            .build()
            .into();
        let Some(file) = &remote.admin_token_file else {
            bail!("--admin-token-file (or SORTIE_CP_ADMIN_TOKEN_FILE) is required");
        };
        let token = std::fs::read_to_string(file)
            .with_context(|| format!("reading {}", file.display()))?
            .trim()
            .to_string();
        if token.is_empty() {
            bail!("{} is empty", file.display());
        }
        let mut base = remote.server.clone();
        if !base.ends_with('/') {
            base.push('/');
        }
        if !base.starts_with("https://") {
            bail!("--server must be an https:// URL");
        }
        Ok(Client {
            base,
            token,
            agent,
            json: remote.json,
        })
    }

    /// One call; the answer's bytes, or an error saying what the server said.
    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Result<Vec<u8>> {
        Ok(self.request(method, path, body)?.0)
    }

    /// One call; the answer's bytes and headers.
    fn request(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> Result<(Vec<u8>, ureq::http::HeaderMap)> {
        let request = ureq::http::Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base))
            .header("authorization", format!("Bearer {}", self.token))
            .header("content-type", "application/json");
        let answer = match body {
            Some(body) => self.agent.run(request.body(body.to_string())?),
            None => self.agent.run(request.body(())?),
        };
        let mut answer = answer.with_context(|| format!("reaching {}", self.base))?;
        let status = answer.status().as_u16();
        let bytes = answer
            .body_mut()
            .with_config()
            .limit(1 << 30)
            .read_to_vec()
            .context("reading the answer")?;
        if !(200..300).contains(&status) {
            let problem: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            let why = problem
                .get("detail")
                .or(problem.get("title"))
                .map_or("no detail".to_string(), cell);
            bail!("{method} {path}: {status}: {why}");
        }
        Ok((bytes, answer.headers().clone()))
    }

    fn value(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value> {
        let bytes = self.call(method, path, body)?;
        if bytes.is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_slice(&bytes).context("the answer is not JSON")
    }

    fn print(&self, value: &Value, human: impl FnOnce(&Value) -> String) {
        if self.json {
            println!("{}", terminal_json(&value.to_string()));
        } else {
            print!("{}", human(value));
        }
    }
}

/// A path segment, percent-encoded.
fn segment(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'.' | b'_' | b'-' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Rows as a table with a header, columns as wide as their widest cell.
fn table(header: &[&str], rows: Vec<Vec<String>>) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        padded.join("  ").trim_end().to_string() + "\n"
    };
    let mut out = line(header.iter().map(|h| h.to_string()).collect());
    for row in rows {
        out += &line(row);
    }
    out
}

/// Unicode's bidirectional controls (text that shows other than it reads)
/// and line separators (lines a terminal may not show as lines).
fn reorders(c: char) -> bool {
    matches!(
        c,
        '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{2028}'..='\u{202e}' | '\u{2066}'..='\u{2069}'
    )
}

/// Stored log bytes as they are for a file or a pipe (byte for byte, as their
/// checksum says), escaped for a terminal.
fn raw_for_stdout(bytes: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    use std::io::IsTerminal;
    match std::io::stdout().is_terminal() {
        true => terminal_json(&String::from_utf8_lossy(bytes))
            .into_bytes()
            .into(),
        false => bytes.into(),
    }
}

/// How much of `bytes` ends on a whole UTF-8 character: a character cut
/// short at the end waits for the bytes that complete it.
fn whole_chars(bytes: &[u8]) -> usize {
    let last = (bytes.len().saturating_sub(4)..bytes.len())
        .rev()
        .find(|&i| bytes[i] & 0xc0 != 0x80);
    match last {
        Some(i) if matches!(std::str::from_utf8(&bytes[i..]), Err(e) if e.error_len().is_none()) => {
            i
        }
        _ => bytes.len(),
    }
}

/// JSON for a terminal: characters that could drive or reorder it, which
/// serde_json leaves as they are (C1 controls, bidirectional ones), written
/// as `\u` escapes — still the same JSON.
fn terminal_json(text: &str) -> String {
    text.chars()
        .map(|c| match (c.is_control() && c != '\n') || reorders(c) {
            true => c
                .encode_utf16(&mut [0; 2])
                .iter()
                .map(|u| format!("\\u{u:04x}"))
                .collect(),
            false => c.to_string(),
        })
        .collect()
}

/// A JSON value as a table cell: strings bare, nothing as `-`, control
/// characters escaped (a value must not drive the terminal).
fn cell(value: &Value) -> String {
    let text = match value {
        Value::Null => "-".to_string(),
        Value::String(s) => s.clone(),
        Value::Array(items) => items.iter().map(cell).collect::<Vec<_>>().join(","),
        other => other.to_string(),
    };
    text.chars()
        .map(|c| match c.is_control() || reorders(c) {
            true => c.escape_default().to_string(),
            false => c.to_string(),
        })
        .collect()
}

pub fn runner(command: RunnerCommand, remote: &Remote) -> Result<()> {
    let client = Client::new(remote)?;
    match command {
        RunnerCommand::Add {
            name,
            tags,
            expires,
        } => {
            let body = json!({ "name": name, "tags": tags, "expires": expires });
            let made = client.value("POST", "admin/runners", Some(body))?;
            client.print(&made, |r| {
                format!(
                    "registered {} (tags: {})\ntoken: {}\nshown once: give it to that runner (its --token-file)\n",
                    cell(&r["name"]),
                    cell(&r["tags"]),
                    cell(&r["token"])
                )
            });
        }
        RunnerCommand::List => {
            let list = client.value("GET", "admin/runners", None)?;
            client.print(&list, |l| {
                let rows = l["runners"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|r| {
                        let state = match r["stale"].as_bool() {
                            Some(true) => "stale",
                            _ => "ok",
                        };
                        let mut row: Vec<String> =
                            ["name", "tags", "last_seen", "version", "expires"]
                                .iter()
                                .map(|k| cell(&r[*k]))
                                .collect();
                        row.insert(2, state.to_string());
                        row.insert(4, cell(&r["last_result"]["status"]));
                        row.push(cell(&r["inventory_at"]));
                        row
                    })
                    .collect();
                table(
                    &[
                        "NAME",
                        "TAGS",
                        "STATE",
                        "LAST SEEN",
                        "LAST RESULT",
                        "VERSION",
                        "EXPIRES",
                        "INVENTORY",
                    ],
                    rows,
                )
            });
        }
        RunnerCommand::Rotate { name, grace } => {
            let body = grace.map(|g| json!({ "grace": g }));
            let path = format!("admin/runners/{}/rotate", segment(&name));
            let rotated = client.value("POST", &path, body)?;
            client.print(&rotated, |r| {
                format!(
                    "new token for {}: {}\nthe old one works until {}\n",
                    cell(&r["name"]),
                    cell(&r["token"]),
                    cell(&r["previous_token_valid_until"])
                )
            });
        }
        RunnerCommand::Revoke { name } => {
            let path = format!("admin/runners/{}", segment(&name));
            let answer = client.value("DELETE", &path, None)?;
            client.print(&answer, |_| format!("revoked {name}\n"));
        }
    }
    Ok(())
}

pub fn exec(command: ExecCommand, remote: &Remote) -> Result<()> {
    let client = Client::new(remote)?;
    match command {
        ExecCommand::List {
            status,
            job,
            runner,
            since,
            limit,
        } => {
            // The latest `limit`: count first, then the page that ends there.
            let filter: String = [
                ("status", status),
                ("job", job),
                ("runner", runner),
                ("since", since),
            ]
            .into_iter()
            .filter_map(|(k, v)| v.map(|v| format!("{k}={}&", segment(&v))))
            .collect();
            let total = client.value("GET", &format!("admin/jobs?{filter}limit=0"), None)?["total"]
                .as_u64()
                .unwrap_or(0);
            let offset = total.saturating_sub(limit);
            let page = client.value(
                "GET",
                &format!("admin/jobs?{filter}limit={limit}&offset={offset}"),
                None,
            )?;
            client.print(&page, |p| {
                let rows = p["jobs"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|j| {
                        let status = match j["completion"]["status"].as_str() {
                            Some(s) => s.to_string(),
                            None => cell(&j["phase"]),
                        };
                        vec![
                            cell(&j["id"]),
                            status,
                            cell(&j["definition"]["name"]),
                            cell(&j["started_by"]),
                            cell(&j["ran_by"]),
                            cell(&j["attempt"]),
                            cell(&j["tags"]),
                            cell(&j["finished_at"]),
                        ]
                    })
                    .collect();
                table(
                    &[
                        "ID",
                        "STATUS",
                        "JOB",
                        "STARTED BY",
                        "RUNNER",
                        "ATTEMPT",
                        "TAGS",
                        "FINISHED",
                    ],
                    rows,
                )
            });
        }
        ExecCommand::Show { id } => {
            let job = client.value("GET", &format!("admin/jobs/{}", segment(&id)), None)?;
            client.print(&job, |j| {
                terminal_json(&serde_json::to_string_pretty(j).unwrap_or_default()) + "\n"
            });
        }
        ExecCommand::Log { id } => {
            read_log(&client, &id, false)?;
        }
        ExecCommand::Cancel { id } => {
            let answer =
                client.value("POST", &format!("admin/jobs/{}/cancel", segment(&id)), None)?;
            client.print(&answer, |_| format!("cancellation requested for {id}\n"));
        }
    }
    Ok(())
}

/// A log as a person reads it: the output's text, steps and system events
/// marked, control characters escaped (the output is the job's, not ours).
fn render(log: &[u8]) -> String {
    let mut out = String::new();
    for line in log.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
        let Ok(event) = serde_json::from_slice::<Value>(line) else {
            continue;
        };
        let safe = |s: &str| -> String {
            s.chars()
                .map(|c| {
                    if (c.is_control() && c != '\n' && c != '\t') || reorders(c) {
                        '?'
                    } else {
                        c
                    }
                })
                .collect()
        };
        match event["kind"].as_str() {
            Some("output") => match event["text"].as_str() {
                Some(text) => out += &safe(text),
                None => out += "[bytes that are not UTF-8]\n",
            },
            Some("step_start") => {
                out += &format!(
                    "── step {} {}on {}\n",
                    event["step"],
                    event["name"]
                        .as_str()
                        .map(|n| format!("{} ", safe(n)))
                        .unwrap_or_default(),
                    safe(event["node"].as_str().unwrap_or("?"))
                )
            }
            Some("step_end") => {
                out += &format!("── step {} {}\n", event["step"], cell(&event["status"]))
            }
            Some("system") => {
                out += &format!(
                    "[{}] {}\n",
                    cell(&event["level"]),
                    safe(event["text"].as_str().unwrap_or(""))
                )
            }
            _ => {}
        }
    }
    out
}

pub fn job(command: JobCommand, remote: &Remote) -> Result<()> {
    let client = Client::new(remote)?;
    match command {
        JobCommand::Load { files } => {
            for file in &files {
                for definition in definitions(file)? {
                    let loaded = client
                        .value("POST", "admin/definitions", Some(definition))
                        .with_context(|| format!("loading {}", file.display()))?;
                    client.print(&loaded, |d| {
                        format!(
                            "{} version {} ({})\n",
                            cell(&d["name"]),
                            cell(&d["version"]),
                            file.display()
                        )
                    });
                }
            }
        }
        JobCommand::List => {
            let list = client.value("GET", "admin/definitions", None)?;
            client.print(&list, |l| {
                let rows = l["definitions"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|d| {
                        vec![
                            cell(&d["name"]),
                            cell(&d["version"]),
                            cell(&d["group"]),
                            cell(&d["tags"]),
                            cell(&d["schedule"]["cron"]),
                            cell(&d["next_fire"]),
                            cell(&d["description"]),
                        ]
                    })
                    .collect();
                table(
                    &[
                        "NAME",
                        "VERSION",
                        "GROUP",
                        "TAGS",
                        "SCHEDULE",
                        "NEXT RUN",
                        "DESCRIPTION",
                    ],
                    rows,
                )
            });
        }
        JobCommand::Show { name, version } => {
            let query = version.map(|v| format!("?version={v}")).unwrap_or_default();
            let path = format!("admin/definitions/{}{query}", segment(&name));
            let definition = client.value("GET", &path, None)?;
            client.print(&definition, |d| {
                terminal_json(&serde_json::to_string_pretty(d).unwrap_or_default()) + "\n"
            });
        }
    }
    Ok(())
}

/// The definitions a file holds (one, or a list), each with its
/// `spec_file` — a Rundeck job export or a sortie YAML job, named relative to
/// the definition — read in as the `rundeck` text the runner converts.
fn definitions(file: &Path) -> Result<Vec<Value>> {
    let text = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    let value: Value = sortie_protocol::json::from_slice(&text).with_context(|| {
        format!(
            "{} is not a JSON job definition (a Rundeck or YAML job file is named by a \
             definition's spec_file)",
            file.display()
        )
    })?;
    let mut all = match value {
        Value::Array(list) => list,
        one => vec![one],
    };
    for definition in &mut all {
        let Some(object) = definition.as_object_mut() else {
            bail!("{}: a definition is a JSON object", file.display());
        };
        let Some(spec_file) = object.remove("spec_file") else {
            continue;
        };
        let Some(name) = spec_file.as_str() else {
            bail!("{}: spec_file is a path", file.display());
        };
        if object.contains_key("spec") {
            bail!("{}: give spec or spec_file, not both", file.display());
        }
        let job = spec_file_text(file, name)?;
        let mut spec = json!({ "rundeck": job, "rundeck_file": name });
        if let Some(wanted) = object.remove("rundeck_job") {
            spec["rundeck_job"] = wanted;
        }
        object.insert("spec".into(), spec);
    }
    Ok(all)
}

/// The largest job file a definition may name.
const MAX_SPEC_FILE: u64 = 4 << 20;

/// The text of a definition's `spec_file`: a regular file beside the
/// definition or below it (a definition from elsewhere must not copy the
/// operator's other files to the server), of a sane size, in UTF-8.
fn spec_file_text(definition: &Path, name: &str) -> Result<String> {
    let relative = Path::new(name);
    let inside = relative
        .components()
        .all(|c| matches!(c, std::path::Component::Normal(_)));
    if name.is_empty() || !inside {
        bail!(
            "{}: spec_file {name:?} must be a path below the definition's directory \
             (no /, .. or .)",
            definition.display()
        );
    }
    let base = definition.parent().unwrap_or(Path::new("."));
    let path = base.join(relative);
    // Where it really is: a directory link on the way (to /proc/self, to /etc)
    // must not lead out.
    let real = path
        .canonicalize()
        .with_context(|| format!("reading {}", path.display()))?;
    let inside = base.canonicalize().is_ok_and(|base| real.starts_with(base));
    if !inside {
        bail!(
            "{}: spec_file {name:?} leads out of the definition's directory (to {})",
            definition.display(),
            real.display()
        );
    }
    let mut open = std::fs::OpenOptions::new();
    // Not a FIFO's writer to wait for, nor a link out of the directory.
    use std::os::unix::fs::OpenOptionsExt;
    open.read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOFOLLOW);
    let read = || -> Result<String> {
        let file = open.open(&path)?;
        let meta = file.metadata()?;
        if !meta.is_file() {
            bail!("not a regular file");
        }
        if meta.len() > MAX_SPEC_FILE {
            bail!("{} bytes, more than {MAX_SPEC_FILE}", meta.len());
        }
        let mut text = String::new();
        std::io::Read::read_to_string(&mut std::io::Read::take(file, MAX_SPEC_FILE), &mut text)?;
        Ok(text)
    };
    read().with_context(|| {
        format!(
            "reading {} (spec_file of {})",
            path.display(),
            definition.display()
        )
    })
}

/// Start a job definition; with `--follow`, print its log until it ends.
/// The exit code: 0, or 1 when a followed execution did not succeed.
pub fn run(args: RunArgs, remote: &Remote) -> Result<u8> {
    let client = Client::new(remote)?;
    let mut options = BTreeMap::new();
    for pair in &args.options {
        let Some((k, v)) = pair.split_once('=') else {
            bail!("-o {pair:?}: NAME=VALUE");
        };
        options.insert(k.to_string(), v.to_string());
    }
    let path = format!("admin/definitions/{}/run", segment(&args.job));
    let started = client.value("POST", &path, Some(json!({ "options": options })))?;
    let id = started["id"].as_str().unwrap_or_default().to_string();
    if !args.follow {
        client.print(&started, |_| format!("{id}\n"));
        return Ok(0);
    }
    eprintln!("execution {id}");
    let status = read_log(&client, &id, true)?;
    eprintln!("execution {id}: {status}");
    Ok(if status == "succeeded" { 0 } else { 1 })
}

/// Print an execution's log, page by page; following it, as it grows until
/// the execution ends. Its status when the log was read.
fn read_log(client: &Client, id: &str, following: bool) -> Result<String> {
    let mut offset = 0;
    let mut pending = Vec::new();
    let mut out = std::io::stdout();
    loop {
        let path = format!("admin/jobs/{}/log?offset={offset}", segment(id));
        let (bytes, headers) = client.request("GET", &path, None)?;
        let status = headers
            .get("sortie-status")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        offset += bytes.len();
        let grew = !bytes.is_empty();
        pending.extend_from_slice(&bytes);
        if client.json {
            // Whole characters only: a page may end inside one.
            let rest = pending.split_off(whole_chars(&pending));
            out.write_all(&raw_for_stdout(&pending))?;
            pending = rest;
        } else if let Some(end) = pending.iter().rposition(|b| *b == b'\n') {
            // Whole events only: a page may end inside one.
            let rest = pending.split_off(end + 1);
            out.write_all(render(&pending).as_bytes())?;
            pending = rest;
        }
        out.flush()?;
        let running = matches!(status.as_str(), "queued" | "claimed" | "running");
        if !grew && (!running || !following) {
            match client.json {
                true => out.write_all(&raw_for_stdout(&pending))?,
                false => out.write_all(render(&pending).as_bytes())?,
            }
            return Ok(status);
        }
        if !grew {
            std::thread::sleep(Duration::from_millis(300));
        }
    }
}

pub fn admin(command: AdminCommand, remote: &Remote) -> Result<()> {
    let client = Client::new(remote)?;
    match command {
        AdminCommand::Add { name } => {
            let made = client.value("POST", "admin/admins", Some(json!({ "name": name })))?;
            client.print(&made, |a| {
                format!(
                    "added admin {}\ntoken: {}\nshown once: give it to that admin (their --admin-token-file)\n",
                    cell(&a["name"]),
                    cell(&a["token"])
                )
            });
        }
        AdminCommand::List => {
            let list = client.value("GET", "admin/admins", None)?;
            client.print(&list, |l| {
                let rows = l["admins"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|a| {
                        ["name", "created_at", "created_by"]
                            .iter()
                            .map(|k| cell(&a[*k]))
                            .collect()
                    })
                    .collect();
                table(&["NAME", "CREATED", "BY"], rows)
            });
        }
        AdminCommand::Revoke { name } => {
            let answer =
                client.value("DELETE", &format!("admin/admins/{}", segment(&name)), None)?;
            client.print(&answer, |_| format!("revoked admin {name}\n"));
        }
    }
    Ok(())
}

/// The newest changes first: who did what, when.
pub fn audit(limit: u64, remote: &Remote) -> Result<()> {
    let client = Client::new(remote)?;
    let log = client.value("GET", &format!("admin/audit?limit={limit}"), None)?;
    client.print(&log, |l| {
        let rows = l["entries"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|e| {
                let detail = match &e["detail"] {
                    Value::Null => "-".to_string(),
                    d => cell(&Value::String(d.to_string())),
                };
                let mut row: Vec<String> = ["at", "by", "action", "target"]
                    .iter()
                    .map(|k| cell(&e[*k]))
                    .collect();
                row.push(detail);
                row
            })
            .collect();
        table(&["AT", "BY", "ACTION", "TARGET", "DETAIL"], rows)
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A page cut inside a character keeps its first bytes back; anything
    /// else, invalid bytes too, goes out as it is.
    #[test]
    fn a_page_is_shown_up_to_its_last_whole_character() {
        let text = "a€b😀".as_bytes();
        let cuts: Vec<usize> = (0..=text.len()).map(|n| whole_chars(&text[..n])).collect();
        assert_eq!(cuts, [0, 1, 1, 1, 4, 5, 5, 5, 5, 9]);
        assert_eq!(whole_chars(b"\xff\xfe"), 2);
        assert_eq!(whole_chars(b"x\x80\x80\x80\x80"), 5);
        assert_eq!(whole_chars(b"\xe2\x82"), 0);
    }

    /// What a job printed may not drive or reorder the terminal, in tables,
    /// JSON or a followed log; the JSON stays the same JSON.
    #[test]
    fn control_and_bidirectional_characters_are_kept_off_the_terminal() {
        let value = json!({"data": {"k": "X\u{202e}Y\u{9b}Z\u{61c}\u{2028}"}, "n": 1});
        let pretty = terminal_json(&serde_json::to_string_pretty(&value).unwrap());
        assert!(pretty.is_ascii(), "{pretty}");
        assert_eq!(serde_json::from_str::<Value>(&pretty).unwrap(), value);
        let shown = cell(&value["data"]["k"]);
        assert!(
            !shown.chars().any(|c| c.is_control() || reorders(c)),
            "{shown}"
        );
        let event = json!({"kind": "output", "text": "a\u{202e}b\u{1b}[31m\n"});
        assert_eq!(render(format!("{event}\n").as_bytes()), "a?b?[31m\n");
    }
}
