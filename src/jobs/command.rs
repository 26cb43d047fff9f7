//! Building a step's process: its program and arguments, its scripts, its environment.
//!
//! References expand here (`expand`): into argv elements as values, into shell
//! scripts — a `shell` step, and the script of `sh -c SCRIPT` in an `exec` argv —
//! as variable references. The environment is clean: a few variables of the
//! runner's (never its credentials), the job's context under `SORTIE_*` and
//! Rundeck's `RD_*` names, the job's and the step's `env`, and the secrets the
//! job asked for.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use crate::exec;
use crate::jobs::copy_step;
use crate::jobs::expand::{self, env_name, Context, Mode, NAMESPACES, RUNDECK_NAMESPACES};
use crate::jobs::plugin;
use crate::jobs::reader::{self, Reader, SHELLS};
use crate::jobs::spec::{Dialect, JobSpec, Step, StepKind};
use crate::nodes::ssh::{self, RemoteStep};
use crate::secret::Secret;
use crate::state::files;

/// Variables of the runner's own environment that steps inherit; nothing else is.
const INHERITED: &[&str] = &[
    "PATH",
    "HOME",
    "LANG",
    "LANGUAGE",
    "LC_ALL",
    "LC_CTYPE",
    "LC_MESSAGES",
    "TZ",
    "USER",
    "LOGNAME",
    "SHELL",
    "TMPDIR",
];

/// The variables of the runner's environment that steps inherit.
fn inherited_env() -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = INHERITED
        .iter()
        .filter_map(|k| std::env::var(k).ok().map(|v| (k.to_string(), v)))
        .collect();
    if !env.iter().any(|(k, _)| k == "PATH") {
        env.push(("PATH".into(), "/usr/local/bin:/usr/bin:/bin".into()));
    }
    env
}

/// Why a data, flow or http step has no process.
const IN_PROCESS: &str = "a data, flow or http step runs in sortie itself, not as a process";

/// What a step's command is built from.
pub struct Builder<'a> {
    pub spec: &'a JobSpec,
    pub ctx: &'a Context,
    pub base_env: &'a [(String, String)],
    /// Secret variables (values, or paths of secret files).
    pub secret_env: &'a [(String, Secret)],
    /// The secrets' values (a node gets values, never a path on the runner).
    pub secret_values: &'a [(String, Secret)],
    pub workspace: &'a Path,
    pub confinement: &'a exec::Confinement,
    /// Fetches a `scripturl` step's script (HTTPS, bounded).
    pub fetch: &'a Fetch<'a>,
    /// When the job must be over (a fetch may not outlast it).
    pub until: Option<std::time::Instant>,
    /// Where plugin steps' executables are looked for, in order.
    pub plugins: &'a [PathBuf],
    /// Polled while sortie itself reads for a step (a copy's source): `Some`
    /// stops it (cancellation, a signal).
    pub stop: &'a (dyn Fn() -> Option<exec::StopReason> + Sync),
}

/// Fetches a `scripturl` step's script, before the instant given (the job's end).
pub type Fetch<'a> =
    dyn Fn(&str, Option<std::time::Instant>) -> Result<Vec<u8>, String> + Sync + 'a;

/// Largest script file sent to a node.
const MAX_SCRIPT: usize = 16 * 1024 * 1024;

/// Act on the workspace's files as the steps' user (`--run-as`), on this
/// thread, until dropped. That user owns the workspace, so its steps may have
/// replaced anything in it, the workspace itself too, with a symlink: sortie
/// then makes, reads and removes files there only as that user could.
pub fn as_step_user(confinement: &exec::Confinement) -> io::Result<Option<crate::os::FsIdentity>> {
    confinement
        .user
        .as_ref()
        .map(|user| crate::os::FsIdentity::assume(user))
        .transpose()
}

/// Hand `path` to the user the steps run as (never following a symlink).
pub fn give(path: &Path, confinement: &exec::Confinement) -> io::Result<()> {
    match &confinement.user {
        Some(user) => crate::os::chown(path, user.uid, user.gid),
        None => Ok(()),
    }
}

/// The base environment of a job's steps: the runner's few inherited variables,
/// `TMPDIR` in the workspace, and for `--run-as` that user's `HOME`, `USER`, `LOGNAME`.
pub fn base_env(workspace: &Path, confinement: &exec::Confinement) -> Vec<(String, String)> {
    let mut env: BTreeMap<String, String> = inherited_env().into_iter().collect();
    env.insert("TMPDIR".into(), workspace.join("tmp").display().to_string());
    if let Some(user) = &confinement.user {
        env.insert("HOME".into(), user.home.display().to_string());
        env.insert("USER".into(), user.name.clone());
        env.insert("LOGNAME".into(), user.name.clone());
    }
    env.into_iter().collect()
}

/// A script step's text, and how it runs.
struct Script<'s> {
    /// The text to write (or send); `None`: run the file at `path` as it is.
    body: Option<String>,
    /// The script file on the runner (a script file run in place).
    path: Option<PathBuf>,
    interpreter: Option<&'s [String]>,
    args: Vec<String>,
    extension: Option<&'s str>,
    quoted: bool,
}

impl Builder<'_> {
    fn expand(&self, text: &str, mode: Mode) -> Result<String, String> {
        expand::expand(text, self.ctx, mode).map_err(|e| format!("{e:#}"))
    }

    /// A script's arguments: each one value; Rundeck's `${unquotedoption.x}`
    /// alone in an argument gives one argument per word of the value.
    fn script_args(&self, args: &[String]) -> Result<Vec<String>, String> {
        let mut out = Vec::new();
        let shaped = expand::Shaped::new();
        for arg in args {
            let unquoted = arg
                .strip_prefix("${unquotedoption.")
                .and_then(|r| r.strip_suffix('}'))
                .filter(|_| self.spec.dialect == Dialect::Rundeck);
            let expanded = match unquoted {
                Some(name) => self.expand(&format!("${{option.{name}}}"), Mode::Raw)?,
                None => self.expand(arg, Mode::Raw)?,
            };
            // A value the script gets as `$1` reaches its arithmetic as a
            // token's does.
            if &expanded != arg {
                expand::check_argument(self.ctx, &shaped, &expanded)
                    .map_err(|e| format!("the script's argument {arg}: {e}"))?;
            }
            match unquoted {
                Some(_) => out.extend(expanded.split_whitespace().map(str::to_string)),
                None => out.push(expanded),
            }
        }
        Ok(out)
    }

    /// Rundeck's `@option.x@` tokens in a script's text, when the step has
    /// them expanded: as variable references in a shell script; refused in a
    /// script another interpreter reads (the value would be its code).
    fn tokens(&self, body: String, interpreter: Option<&[String]>) -> Result<String, String> {
        if !expand::has_at_token(&body) {
            return Ok(body);
        }
        if !runs_in_shell(&body, interpreter) {
            let (token, variable) = expand::first_at_token(&body).expect("it has one");
            return Err(format!(
                "the script has @…@ tokens ({token}), and the program that runs it is not a \
                 shell: a value there would be code; read it from the environment \
                 (${variable}) instead"
            ));
        }
        expand::expand_tokens(&body, self.ctx).map_err(|e| format!("{e:#}"))
    }

    /// The script of a `script`, `scriptfile` or `scripturl` step (`local`:
    /// a script file may run in place).
    fn script<'s>(&self, step: &'s Step, local: bool) -> Result<Option<Script<'s>>, String> {
        let rundeck = self.spec.dialect == Dialect::Rundeck;
        let (body, path, interpreter, args, extension) = match &step.kind {
            StepKind::Exec(_)
            | StepKind::Shell(_)
            | StepKind::Data(_)
            | StepKind::LogData
            | StepKind::Flow { .. }
            | StepKind::Http(_)
            | StepKind::Copy(_)
            | StepKind::Ansible(_)
            | StepKind::Plugin { .. } => return Ok(None),
            StepKind::Script {
                body,
                interpreter,
                args,
                extension,
            } => {
                let body = body.replace("\r\n", "\n");
                let body = if rundeck {
                    self.tokens(body, interpreter.as_deref())?
                } else {
                    body
                };
                (Some(body), None, interpreter, args, extension.as_deref())
            }
            StepKind::ScriptFile {
                path,
                interpreter,
                args,
            } => {
                let path = PathBuf::from(self.expand(path, Mode::Raw)?);
                if local && !step.expand_tokens {
                    (None, Some(path), interpreter, args, None)
                } else {
                    // Read as a step would read it: sortie's own reach is wider.
                    let until = step.timeout.map(|t| std::time::Instant::now() + t);
                    let body = self.read_confined(&path.to_string_lossy(), MAX_SCRIPT, until)?;
                    let body = String::from_utf8(body)
                        .map_err(|_| format!("the script {} is not UTF-8", path.display()))?;
                    let body = if step.expand_tokens {
                        self.tokens(body, interpreter.as_deref())?
                    } else {
                        body
                    };
                    (Some(body), None, interpreter, args, None)
                }
            }
            StepKind::ScriptUrl {
                url,
                interpreter,
                args,
            } => {
                let url = self.expand(url, Mode::Raw)?;
                let bytes = (self.fetch)(&url, self.until).map_err(|e| {
                    match self.until.filter(|u| std::time::Instant::now() >= *u) {
                        Some(_) => {
                            format!("{e} (the job's time ran out while its script was fetched)")
                        }
                        None => e,
                    }
                })?;
                let body = String::from_utf8(bytes)
                    .map_err(|_| format!("the script at {url} is not UTF-8"))?;
                let body = if step.expand_tokens {
                    self.tokens(body, interpreter.as_deref())?
                } else {
                    body
                };
                (Some(body), None, interpreter, args, None)
            }
        };
        Ok(Some(Script {
            body,
            path,
            interpreter: interpreter.as_deref(),
            args: self.script_args(args)?,
            extension,
            quoted: step.args_quoted,
        }))
    }

    /// What [`Builder::command`] and [`Builder::remote`] would refuse in the
    /// step's own text and arguments, found without running, fetching or
    /// writing anything (a script's file or URL is read when the step runs).
    pub fn check(&self, step: &Step) -> Result<(), String> {
        match &step.kind {
            StepKind::Exec(argv) => self.exec_words(argv).map(drop),
            StepKind::Shell(text) => self.expand(text, Mode::Shell).map(drop),
            StepKind::Script {
                body,
                interpreter,
                args,
                ..
            } => {
                if self.spec.dialect == Dialect::Rundeck {
                    self.tokens(body.replace("\r\n", "\n"), interpreter.as_deref())?;
                }
                self.script_args(args).map(drop)
            }
            StepKind::ScriptFile { path, args, .. }
            | StepKind::ScriptUrl {
                url: path, args, ..
            } => {
                self.expand(path, Mode::Raw)?;
                self.script_args(args).map(drop)
            }
            StepKind::Data(values) => values
                .values()
                .try_for_each(|v| self.expand(v, Mode::Raw).map(drop)),
            StepKind::Flow { message, .. } => message
                .iter()
                .try_for_each(|m| self.expand(m, Mode::Raw).map(drop)),
            StepKind::LogData => Ok(()),
            StepKind::Http(http) => std::iter::once(&http.url)
                .chain(http.headers.values())
                .chain(http.query.values())
                .chain(&http.body)
                .chain(&http.client_cert)
                .chain(&http.client_key)
                .try_for_each(|v| self.expand(v, Mode::Value).map(drop)),
            StepKind::Copy(copy) => {
                self.expand(&copy.dest, Mode::Raw)?;
                if let Some(source) = &copy.source {
                    self.expand(source, Mode::Raw)?;
                }
                // Paths that depend on no value are checked as the run will.
                let fixed = std::iter::once(&copy.dest)
                    .chain(&copy.source)
                    .all(|p| !expand::has_reference(p));
                if fixed {
                    self.copy_dest(copy)?;
                }
                copy.content
                    .iter()
                    .try_for_each(|c| self.expand(c, Mode::Value).map(drop))
            }
            StepKind::Ansible(ansible) => {
                if let Some(playbook) = &ansible.playbook {
                    self.expand(playbook, Mode::Raw)?;
                }
                ansible
                    .vars
                    .values()
                    .chain(&ansible.vault_password)
                    .try_for_each(|v| self.expand(v, Mode::Value).map(drop))
            }
            StepKind::Plugin { config, .. } => {
                let ctx = self.sending();
                plugin::expand_config(config, &|v| {
                    expand::expand(v, &ctx, Mode::Value).map_err(|e| format!("{e:#}"))
                })
                .map(drop)
            }
        }
    }

    /// A data step's values, or a flow step's message: text, the references
    /// in it replaced by their values (never code: no process runs it).
    pub fn text(&self, text: &str) -> Result<String, String> {
        self.expand(text, Mode::Raw)
    }

    /// The context what an HTTP step sends is expanded in ([`Mode::Value`]):
    /// `${secret.K}` is the value itself there (in a command it is a
    /// variable); sortie sends it, and the log masks it.
    pub fn sending(&self) -> Context {
        let mut ctx = self.ctx.clone();
        ctx.secrets = self
            .secret_values
            .iter()
            .map(|(key, value)| (key.clone(), value.expose().to_string()))
            .collect();
        ctx
    }

    /// The process for a step: expand references, write scripts, set the environment.
    /// (A data or flow step has none: [`IN_PROCESS`].)
    pub fn command(
        &self,
        index: usize,
        step: &Step,
        errorhandler: bool,
        output_file: &Path,
    ) -> Result<exec::Command, String> {
        if let StepKind::Plugin { name, config } = &step.kind {
            return self.plugin(index, step, name, config, output_file);
        }
        let (program, args): (OsString, Vec<OsString>) = match &step.kind {
            StepKind::Exec(argv) => {
                let argv: Vec<OsString> = self
                    .exec_words(argv)?
                    .into_iter()
                    .map(OsString::from)
                    .collect();
                (argv[0].clone(), argv[1..].to_vec())
            }
            StepKind::Shell(text) => {
                let text = self.expand(text, Mode::Shell)?;
                ("/bin/sh".into(), vec!["-c".into(), text.into()])
            }
            StepKind::Copy(copy) => {
                let (source, own, mode) = match &copy.source {
                    Some(source) => {
                        let source = self.expand(source, Mode::Raw)?;
                        let mode = copy.mode(private_file(&source));
                        (source, None, mode)
                    }
                    None => {
                        let suffix = if errorhandler { "-handler" } else { "" };
                        let path = self.workspace.join(format!(".copy-{index}{suffix}"));
                        let (bytes, mode) = self.copy_content(copy)?;
                        as_step_user(self.confinement)
                            .and_then(|_as_user| {
                                files::replace(&path, files::PRIVATE_FILE)?.write_all(&bytes)
                            })
                            .map_err(|e| format!("cannot write the content to copy: {e}"))?;
                        (path.display().to_string(), Some("own"), mode)
                    }
                };
                let dest = self.copy_dest(copy)?;
                let mut args: Vec<OsString> = ["-c", copy_step::SCRIPT, "sortie"]
                    .into_iter()
                    .map(OsString::from)
                    .collect();
                let max = copy_step::MAX_BYTES.to_string();
                args.extend([source, dest, mode, max].map(OsString::from));
                args.extend(own.map(OsString::from));
                ("/bin/sh".into(), args)
            }
            _ => {
                let script = self.script(step, true)?.ok_or(IN_PROCESS)?;
                let (path, has_shebang) = match (&script.body, script.path) {
                    (Some(body), _) => {
                        let suffix = if errorhandler { "-handler" } else { "" };
                        let ext = script.extension.unwrap_or("");
                        let dot = if ext.is_empty() || ext.starts_with('.') {
                            ""
                        } else {
                            "."
                        };
                        let path = self
                            .workspace
                            .join(format!("step-{index}{suffix}{dot}{ext}"));
                        as_step_user(self.confinement)
                            .and_then(|_as_user| write_script(&path, body))
                            .map_err(|e| format!("cannot write the script: {e}"))?;
                        (path, body.starts_with("#!"))
                    }
                    // A file run in place: its own #! line decides.
                    (None, Some(path)) => (path, true),
                    (None, None) => unreachable!("a script has a body or a path"),
                };
                let path = path.to_string_lossy().into_owned();
                let mut argv = script_argv(
                    &path,
                    script.interpreter,
                    has_shebang,
                    script.args,
                    script.quoted,
                )
                .into_iter()
                .map(OsString::from);
                let program = argv.next().expect("a program");
                (program, argv.collect())
            }
        };
        Ok(exec::Command {
            program,
            args,
            env: self.environment(step, Some(output_file)),
            cwd: self.workspace.to_path_buf(),
            confinement: self.confinement.clone(),
            stdin: exec::Input::Empty,
            owner: self.owner(),
        })
    }

    /// The same step for a node: its script, its environment (the job's context,
    /// the job's and step's `env`, the secrets' values) and how to run it. On a
    /// node, result data comes from `SORTIE:DATA:`/`RUNDECK:DATA:` lines.
    pub fn remote(&self, step: &Step, grace: std::time::Duration) -> Result<RemoteStep, String> {
        let quote_all = |words: Vec<String>| {
            words
                .iter()
                .map(|w| ssh::quote(w))
                .collect::<Vec<_>>()
                .join(" ")
        };
        let (script, run) = match &step.kind {
            StepKind::Exec(argv) => (Vec::new(), quote_all(self.exec_words(argv)?)),
            StepKind::Copy(copy) => {
                let (bytes, mode) = match &copy.source {
                    Some(source) => {
                        let source = self.expand(source, Mode::Raw)?;
                        let until = step.timeout.map(|t| std::time::Instant::now() + t);
                        let bytes =
                            self.read_confined(&source, copy_step::MAX_BYTES as usize, until)?;
                        (bytes, copy.mode(private_file(&source)))
                    }
                    None => self.copy_content(copy)?,
                };
                let run = format!(
                    "/bin/sh -c {} sortie \"$2\" {} {} {}",
                    ssh::quote(copy_step::SCRIPT),
                    ssh::quote(&self.copy_dest(copy)?),
                    ssh::quote(&mode),
                    copy_step::MAX_BYTES
                );
                return Ok(RemoteStep {
                    env: Vec::new(),
                    script: bytes,
                    run,
                    grace,
                });
            }
            StepKind::Shell(text) => (
                self.expand(text, Mode::Shell)?.into_bytes(),
                "sh \"$2\"".to_string(),
            ),
            _ => {
                let script = self.script(step, false)?.ok_or(IN_PROCESS)?;
                let body = script.body.unwrap_or_default();
                // Where the node's copy of the script goes: the run line's
                // `$2`, however deep the quoting it sits in. Random, so that
                // no argument of the job's can hold it.
                let placeholder = format!("\u{1}step-{}\u{1}", crate::ids::uuid());
                let argv = script_argv(
                    &placeholder,
                    script.interpreter,
                    body.starts_with("#!"),
                    script.args,
                    script.quoted,
                );
                let run = quote_all(argv).replace(&placeholder, "'\"$2\"'");
                (body.into_bytes(), run)
            }
        };
        let mut env = self.environment(step, None);
        env.retain(|(k, _)| !self.base_env.iter().any(|(b, _)| b == k));
        for (k, v) in self.secret_values {
            env.retain(|(e, _)| e != k);
            env.push((k.clone(), v.expose().to_string()));
        }
        // The node's shell reads `export NAME=…`: a name must be a name there.
        if let Some((bad, _)) = env.iter().find(|(k, _)| !ssh::is_name(k)) {
            return Err(format!(
                "the variable {bad:?} cannot be passed to a node: a name there is letters, digits and _"
            ));
        }
        // Nor can a value or an argument hold a NUL (the node's shell would
        // drop it, and run something else than was asked).
        if let Some((bad, _)) = env.iter().find(|(_, v)| v.contains('\0')) {
            return Err(format!(
                "the variable {bad:?} holds a NUL byte, which a node's environment cannot hold"
            ));
        }
        if run.contains('\0') {
            return Err(
                "an argument of the step holds a NUL byte, which a node's command line cannot hold"
                    .into(),
            );
        }
        Ok(RemoteStep {
            env,
            script,
            run,
            grace,
        })
    }

    /// A plugin step's process: the plugin found and its manifest checked,
    /// its configuration expanded and checked against the manifest, the
    /// document on stdin. Of the job's secrets, only those the configuration
    /// names reach it.
    fn plugin(
        &self,
        index: usize,
        step: &Step,
        name: &str,
        config: &serde_json::Value,
        output_file: &Path,
    ) -> Result<exec::Command, String> {
        let found = plugin::find(self.plugins, name)?;
        let named = plugin::secrets_named(config);
        let written = config.to_string();
        let ctx = self.sending();
        let config = plugin::expand_config(config, &|v| {
            expand::expand(v, &ctx, Mode::Value).map_err(|e| format!("{e:#}"))
        })?;
        if let Some(schema) = &found.manifest.config {
            let mut problems = Vec::new();
            plugin::check(schema, &config, "config", &mut problems);
            if !problems.is_empty() {
                return Err(format!(
                    "plugin {name:?} {}: {}",
                    found.manifest.version,
                    problems.join("; ")
                ));
            }
        }
        let secrets: BTreeMap<String, String> = ctx
            .secrets
            .iter()
            .filter(|(k, _)| named.contains(k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let options = self
            .ctx
            .options
            .iter()
            .filter(|(k, _)| !self.ctx.secure.contains(*k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let document = plugin::Document {
            plugin: &found,
            config,
            options,
            node: &self.ctx.node,
            job: &self.ctx.job,
            data: &self.ctx.data,
            secrets,
            step: index,
        };
        // The job's secret variables, but for those the configuration names.
        let unnamed: Vec<&String> = self
            .ctx
            .secrets
            .iter()
            .filter(|(k, _)| !named.contains(k))
            .map(|(_, var)| var)
            .collect();
        // Nor a secure option's value the configuration does not name.
        let hidden: Vec<String> = self
            .ctx
            .secure
            .iter()
            .filter(|n| !written.contains(&format!("option.{n}}}")))
            .flat_map(|n| {
                let n = env_name(n);
                [
                    format!("SORTIE_OPTION_{n}"),
                    format!("RD_OPTION_{n}"),
                    format!("RD_SECUREOPTION_{n}"),
                ]
            })
            .collect();
        let mut env = self.environment(step, Some(output_file));
        env.retain(|(k, _)| !unnamed.contains(&k) && !hidden.contains(k));
        env.extend(plugin::config_env(&document.config));
        Ok(exec::Command {
            program: found.program.clone().into_os_string(),
            args: Vec::new(),
            env,
            cwd: self.workspace.to_path_buf(),
            confinement: self.confinement.clone(),
            stdin: exec::Input::Closed(document.to_bytes()),
            owner: self.owner(),
        })
    }

    /// A value expanded as what sortie writes itself (a file a step reads):
    /// secrets as their values.
    pub fn value(&self, text: &str) -> Result<String, String> {
        expand::expand(text, &self.sending(), Mode::Value).map_err(|e| format!("{e:#}"))
    }

    /// A copy step's inline content, its references expanded as values
    /// (secrets included: the bytes go to a file, never to a command line),
    /// and its mode (private when it holds a secret's value).
    fn copy_content(&self, copy: &copy_step::Copy) -> Result<(Vec<u8>, String), String> {
        let text = self.value(copy.content.as_deref().unwrap_or(""))?;
        let mode = copy.mode(self.holds_secret(&text));
        let bytes = text.into_bytes();
        if bytes.len() as u64 > copy_step::MAX_BYTES {
            return Err(format!(
                "the content to copy is over {} MiB",
                copy_step::MAX_BYTES >> 20
            ));
        }
        Ok((bytes, mode))
    }

    /// Whether `text` holds the value of one of the job's secrets or secure options.
    fn holds_secret(&self, text: &str) -> bool {
        let secure = self
            .ctx
            .secure
            .iter()
            .filter_map(|n| self.ctx.options.get(n));
        self.secret_values
            .iter()
            .map(|(_, v)| v.expose())
            .chain(secure.map(String::as_str))
            .any(|v| !v.is_empty() && text.contains(v))
    }

    fn copy_dest(&self, copy: &copy_step::Copy) -> Result<String, String> {
        let source = match &copy.source {
            Some(s) => Some(self.expand(s, Mode::Raw)?),
            None => None,
        };
        copy_step::destination(&self.expand(&copy.dest, Mode::Raw)?, source.as_deref())
    }

    /// A file on the runner, at most `limit` bytes, read by `cat` confined as
    /// the job's steps are (their user, their sandbox): a copy's source or a
    /// script file takes nothing from the runner that a step could not read.
    pub fn read_confined(
        &self,
        path: &str,
        limit: usize,
        step_until: Option<std::time::Instant>,
    ) -> Result<Vec<u8>, String> {
        let cmd = exec::Command {
            program: "cat".into(),
            args: vec!["--".into(), path.into()],
            env: self.base_env.to_vec(),
            cwd: self.workspace.to_path_buf(),
            confinement: self.confinement.clone(),
            stdin: exec::Input::Empty,
            owner: self.owner(),
        };
        // A FIFO there would keep `cat` waiting: a read has a minute at most.
        let most = std::time::Instant::now() + std::time::Duration::from_secs(60);
        let supervision = exec::Supervision {
            until: [self.until, step_until, Some(most)]
                .into_iter()
                .flatten()
                .min(),
            stop: self.stop,
            grace: std::time::Duration::from_secs(1),
        };
        let read = exec::capture(&cmd, &supervision, limit);
        match read.finished.outcome {
            _ if read.over => Err(format!(
                "cannot read {path}: it is over {} MiB",
                limit >> 20
            )),
            exec::Outcome::Exited(0) => Ok(read.stdout),
            exec::Outcome::Stopped(_) => Err(format!(
                "cannot read {path}: stopped before it was read (the step's or the job's time \
                 ran out, or the job was stopped)"
            )),
            _ => {
                let why = String::from_utf8_lossy(&read.stderr);
                match why.trim().trim_start_matches("cat: ") {
                    "" => Err(format!("cannot read {path}")),
                    why => Err(format!("cannot read {why}")),
                }
            }
        }
    }

    /// An `exec` step's words, expanded by their roles: a value raw, a script
    /// for a shell with shell quoting, code for another interpreter only
    /// without references (a value there would become code).
    fn exec_words(&self, argv: &[String]) -> Result<Vec<String>, String> {
        let expand =
            |s: &str, mode| expand::expand(s, self.ctx, mode).map_err(|e| format!("{e:#}"));
        argv.iter()
            .zip(elements(argv))
            .map(|(a, role)| match role {
                Element::Value => expand(a, Mode::Raw),
                Element::Script => expand(a, Mode::Shell),
                Element::Code if expand::has_reference(a) => Err(format!(
                    "{a:?} is code for {} and holds a reference: a value there would be \
                     code; pass it as an argument or read it from the environment \
                     (SORTIE_OPTION_*)",
                    argv[0]
                )),
                Element::Code => Ok(a.clone()),
            })
            .collect()
    }

    /// What marks the processes of this job's steps (see `exec::Command::owner`).
    fn owner(&self) -> Option<(String, String)> {
        Some(("SORTIE_EXECID".into(), self.spec.id.clone()))
    }

    /// A step's environment on the runner: the job's context, `env`, the
    /// secrets' variables, and with `output_file` `SORTIE_OUTPUT`.
    pub fn environment(&self, step: &Step, output_file: Option<&Path>) -> Vec<(String, String)> {
        let mut env: BTreeMap<String, String> = self.base_env.iter().cloned().collect();
        let mut set = |k: String, v: &str| {
            env.insert(k, v.to_string());
        };
        let ctx = self.ctx;
        // sortie's names, and the same under Rundeck's.
        for (namespace, prefix) in NAMESPACES.iter().chain(RUNDECK_NAMESPACES) {
            for (k, v) in ctx.map(namespace).into_iter().flatten() {
                set(format!("{prefix}{}", env_name(k)), v);
            }
        }
        for name in &ctx.secure {
            if let Some(v) = ctx.options.get(name) {
                set(format!("RD_SECUREOPTION_{}", env_name(name)), v);
            }
        }
        set("SORTIE_EXECID".into(), &self.spec.id);
        if let Some(output_file) = output_file {
            set(
                "SORTIE_WORKSPACE".into(),
                &self.workspace.display().to_string(),
            );
            set("SORTIE_OUTPUT".into(), &output_file.display().to_string());
        }
        for (k, v) in self.spec.env.iter().chain(&step.env) {
            set(k.clone(), v);
        }
        for (k, v) in self.secret_env {
            set(k.clone(), v.expose());
        }
        env.into_iter().collect()
    }
}

/// Whether the file at `path` is private to its owner (not readable by
/// others): a copy of it is then private too.
fn private_file(path: &str) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.permissions().mode() & 0o004 == 0)
}

/// How each element of an `exec` argv takes references.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Element {
    /// A value: one argument, whatever it holds.
    Value,
    /// The script of a shell's `-c`: references become variable references.
    Script,
    /// Code for another interpreter (`python3 -c`, `perl -e`) or a remote command
    /// (`ssh HOST …`): a value there would be code, so a reference is refused.
    Code,
}

/// The role of each element of `argv`, from what the command that gets it
/// does with it ([`reader`], the analysis shell steps use): the script of a
/// shell that keeps sortie's environment, code for anything else that parses
/// it (an interpreter's program, a remote command, a shell without sortie's
/// environment), a value otherwise.
fn elements(argv: &[String]) -> Vec<Element> {
    (0..argv.len())
        .map(|i| match reader::word(&argv[..i], &argv[i]) {
            None => Element::Value,
            Some(Reader::Shell) => Element::Script,
            Some(_) => Element::Code,
        })
        .collect()
}

/// The words that run a script file: its interpreter (`${scriptfile}` in it
/// is the file; else the file follows it), or its #! line, or `/bin/sh`; then
/// its arguments — or, `quoted` (Rundeck's `interpreterArgsQuoted`), the file
/// and the arguments as one argument, each of them shell-quoted, for an
/// interpreter such as `sudo -u app bash -c`.
fn script_argv(
    path: &str,
    interpreter: Option<&[String]>,
    has_shebang: bool,
    args: Vec<String>,
    quoted: bool,
) -> Vec<String> {
    let mut argv: Vec<String> = match interpreter {
        Some(words) => words.to_vec(),
        // The kernel honours the #! line of an executable file.
        None if has_shebang => Vec::new(),
        None => vec!["/bin/sh".into()],
    };
    let mut placed = false;
    for word in argv.iter_mut().filter(|w| w.contains("${scriptfile}")) {
        *word = word.replace("${scriptfile}", path);
        placed = true;
    }
    if quoted && interpreter.is_some() {
        let mut words: Vec<String> = Vec::new();
        if !placed {
            words.push(ssh::quote(path));
        }
        words.extend(args.iter().map(|a| ssh::quote(a)));
        if !words.is_empty() {
            argv.push(words.join(" "));
        }
    } else {
        if !placed {
            argv.push(path.to_string());
        }
        argv.extend(args);
    }
    argv
}

/// Whether a shell runs this script: its interpreter names one (past wrappers
/// such as `sudo -u app`), or, without one, its #! line does or it has none.
fn runs_in_shell(body: &str, interpreter: Option<&[String]>) -> bool {
    let is_shell = |word: &str| SHELLS.contains(&word.rsplit('/').next().unwrap_or(word));
    match interpreter {
        Some(words) => words.iter().any(|w| is_shell(w)),
        None => match body.strip_prefix("#!") {
            None => true,
            Some(line) => {
                let mut words = line.lines().next().unwrap_or("").split_whitespace();
                let program = words.next().unwrap_or("");
                if program.rsplit('/').next() != Some("env") {
                    return is_shell(program);
                }
                // `#!/usr/bin/env bash`, `#!/usr/bin/env -S bash -e`, with
                // assignments; not `env -i` (the tokens' variables would be gone).
                words
                    .find(|w| !matches!(*w, "-S" | "--split-string") && !w.contains('='))
                    .is_some_and(is_shell)
            }
        },
    }
}

/// Write a secret to `.secrets/KEY` in the workspace, mode 0600; returns its path.
pub fn write_secret_file(workspace: &Path, key: &str, value: &Secret) -> io::Result<PathBuf> {
    let dir = workspace.join(".secrets");
    files::ensure_dir(&dir, files::PRIVATE_DIR)?;
    let path = dir.join(key);
    // A retry of the job finds the file its first attempt wrote.
    files::replace(&path, files::PRIVATE_FILE)?.write_all(value.expose().as_bytes())?;
    Ok(path)
}

/// Write an inline script, mode 0700, with CRLF line endings made LF.
fn write_script(path: &Path, body: &str) -> io::Result<()> {
    let body = body.replace("\r\n", "\n");
    let mut file = files::replace(path, 0o700)?;
    file.write_all(body.as_bytes())?;
    file.sync_all()
}

/// Create (or empty) a step's result data file, never following what is there.
pub fn fresh_output_file(path: &Path) -> io::Result<()> {
    files::replace(path, files::PRIVATE_FILE).map(drop)
}

/// Remove a step's file, whatever it became.
pub fn remove(path: &Path) {
    let _ = fs::remove_file(path);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_script_s_shell_is_found_on_its_first_line_through_env() {
        for body in [
            "echo",
            "#!/bin/sh\necho",
            "#! /bin/bash -e\n",
            "#!/usr/bin/env bash\n",
            "#!/usr/bin/env -S bash -eu\n",
            "#!/usr/bin/env LC_ALL=C dash\n",
        ] {
            assert!(runs_in_shell(body, None), "{body:?}");
        }
        for body in [
            "#!/usr/bin/python3\n",
            "#!/usr/bin/env python3\n",
            "#!/usr/bin/env -S perl -w\n",
            "#!/usr/bin/env -i bash\n",
            "#!/usr/bin/awk -f sh\n",
        ] {
            assert!(!runs_in_shell(body, None), "{body:?}");
        }
    }

    fn argv(words: &[&str]) -> Vec<String> {
        words.iter().map(|w| w.to_string()).collect()
    }

    /// The index of the shell script, and of each element that is code.
    fn roles(words: &[&str]) -> (Option<usize>, Vec<usize>) {
        let roles = elements(&argv(words));
        let at = |r: Element| {
            roles
                .iter()
                .enumerate()
                .filter(move |(_, e)| **e == r)
                .map(|(i, _)| i)
        };
        (at(Element::Script).next(), at(Element::Code).collect())
    }

    #[test]
    fn the_script_of_a_shell_s_dash_c_is_found_behind_wrappers_and_options() {
        let script = |words: &[&str]| roles(words).0;
        assert_eq!(script(&["sh", "-c", "x"]), Some(2));
        assert_eq!(script(&["/bin/bash", "-ec", "x", "a"]), Some(2));
        assert_eq!(script(&["bash", "-e", "-c", "x"]), Some(3));
        assert_eq!(script(&["bash", "--norc", "-c", "x"]), Some(3));
        assert_eq!(script(&["sh", "-o", "errexit", "-c", "x"]), Some(4));
        assert_eq!(script(&["bash", "+O", "extglob", "-c", "x"]), Some(4));
        assert_eq!(
            script(&["bash", "--rcfile", "/dev/null", "-c", "x"]),
            Some(4)
        );
        assert_eq!(script(&["sh", "+e", "-c", "x"]), Some(3));
        assert_eq!(script(&["bash", "-c", "--", "x"]), Some(3));
        assert_eq!(script(&["env", "A=1", "sh", "-c", "x"]), Some(4));
        assert_eq!(script(&["timeout", "10", "bash", "-c", "x"]), Some(4));
        assert_eq!(script(&["nice", "busybox", "sh", "-c", "x"]), Some(4));
        assert_eq!(script(&["su", "root", "-c", "x"]), Some(3));
        assert_eq!(script(&["sh", "script.sh", "-c"]), None);
        assert_eq!(script(&["echo", "-c", "x"]), None);
        assert_eq!(script(&["sh", "-c"]), None);
    }

    #[test]
    fn code_for_other_interpreters_and_remote_commands_is_found() {
        let code = |words: &[&str]| roles(words).1;
        assert_eq!(code(&["python3", "-c", "print(1)"]), vec![2]);
        assert_eq!(code(&["perl", "-e", "x", "arg"]), vec![2]);
        assert_eq!(code(&["awk", "-F", ":", "{print}", "f"]), vec![3]);
        assert_eq!(
            code(&["ssh", "-p", "22", "host", "uptime", "-a"]),
            vec![4, 5]
        );
        assert_eq!(code(&["grep", "-e", "x"]), Vec::<usize>::new());
    }
}
