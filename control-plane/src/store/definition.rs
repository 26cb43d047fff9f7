//! Job definitions: a job an admin loads once and runs many times, by hand, on
//! a schedule, or as the follow-up of another job's result.
//!
//! A definition is versioned: loading a changed one adds a version, and every
//! execution keeps the version it ran. Everything a definition says is checked
//! when it is loaded (its spec against job spec v1, its option rules, its cron
//! expression and time zone, its follow-up conditions), so a mistake is
//! reported to the admin who made it, not found at three in the morning by a
//! schedule. Options given to a run are checked against the definition before
//! the execution is queued, with the rules the runner applies again before any
//! step (Rundeck's: required, enforced allowed values, a regular expression
//! matching the whole value).
//!
//! Follow-up conditions and option templates are data, never code: a condition
//! is comparisons of `data.K`, `execution.status`, `execution.id` and
//! `option.K` with quoted strings, joined by `&&` and `||`; a template only
//! substitutes those values into text.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::valid_name;

/// How deep a chain of follow-ups may go: an execution started by a follow-up
/// of a follow-up … of a run is at depth N; one past this is not started.
pub const MAX_CHAIN_DEPTH: u32 = 10;

/// How many executions one run's follow-ups may start in all, however they
/// branch: a chain's budget, shared out among the follow-ups each end starts.
pub const MAX_CHAIN_EXECUTIONS: u32 = 100;

/// Follow-ups one definition may have.
pub const MAX_FOLLOW_UPS: usize = 16;

/// The longest option value (given, defaulted, or made by a template).
pub const MAX_OPTION_VALUE: usize = 64 * 1024;

/// The longest option regular expression.
const MAX_REGEX_TEXT: usize = 4096;

/// A definition as an admin writes it (`POST admin/definitions`, `job load`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DefinitionInput {
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub group: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// A job spec v1 without its `id` (each execution gets its own), or a
    /// Rundeck job carried as text (`{"rundeck": "…", "rundeck_job": "…"}`).
    pub spec: serde_json::Value,
    /// The options a run may be given (job spec v1's `option_defs`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<OptionDef>,
    /// The tags a runner must have been assigned to run it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// The execution's timeout (a duration such as "10m"), over the spec's own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<Schedule>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub follow_ups: Vec<FollowUp>,
}

/// A stored version of a definition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Definition {
    #[serde(flatten)]
    pub input: DefinitionInput,
    pub version: u64,
    pub created_at_ms: u64,
    /// Who loaded this version.
    pub created_by: String,
}

/// One option a run may be given (the fields of job spec v1's `option_defs`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OptionDef {
    pub name: String,
    #[serde(default, skip_serializing_if = "is_false")]
    pub required: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub enforced: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regex: Option<String>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub multivalued: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delimiter: Option<String>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub secure: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub value_exposed: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date_format: Option<String>,
    /// Shown to whoever runs the job.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
}

fn is_false(b: &bool) -> bool {
    !b
}

/// When a definition runs by itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Schedule {
    /// Five fields (minute …), six (second first) or seven (a year last);
    /// `@hourly` and the other aliases.
    pub cron: String,
    /// An IANA time zone such as "Europe/Paris" (default UTC): the cron's
    /// hours are that zone's, summer time included.
    #[serde(default = "utc")]
    pub timezone: String,
    /// A fire time missed by more than `--misfire-grace` (the control plane was down):
    /// `skip` it, or `run_once` for all that were missed.
    #[serde(default)]
    pub misfire: Misfire,
    /// Whether a fire time starts an execution while the last one still runs.
    #[serde(default)]
    pub overlap: bool,
    /// The options scheduled runs are given.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub options: BTreeMap<String, String>,
}

fn utc() -> String {
    "UTC".into()
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Misfire {
    #[default]
    Skip,
    RunOnce,
}

/// A job to start when an execution of this definition ends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FollowUp {
    /// Which ends start it.
    #[serde(default)]
    pub on: Trigger,
    /// A condition on the ended execution, such as `data.state == "degraded"`.
    #[serde(default, rename = "if", skip_serializing_if = "Option::is_none")]
    pub condition: Option<String>,
    /// The definition to run.
    pub run: String,
    /// Its options: text in which `${data.K}`, `${option.K}`,
    /// `${execution.status}`, `${execution.id}` and `${execution.job}` are
    /// the ended execution's.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub options: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Trigger {
    #[default]
    Succeeded,
    Failed,
    Any,
}

impl DefinitionInput {
    /// Every mistake in the definition, each naming its field.
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        if !valid_name(&self.name) {
            out.push(format!(
                "name: {:?} is not [A-Za-z0-9._-]{{1,64}} starting with no dot",
                self.name
            ));
        }
        out.extend(self.spec_problems());
        let mut seen = std::collections::BTreeSet::new();
        for (i, def) in self.options.iter().enumerate() {
            if !seen.insert(def.name.as_str()) {
                out.push(format!(
                    "options[{i}]: option {} is defined twice",
                    def.name
                ));
            }
            if let Err(e) = check_def(def) {
                out.push(format!("options[{i}] ({}): {e}", def.name));
            }
        }
        if let Some(t) = self.tags.iter().find(|t| t.is_empty() || t.len() > 128) {
            out.push(format!("tags: {t:?}: 1 to 128 characters"));
        }
        let timeout = self.timeout.as_deref().map(check_timeout);
        if let Some(Err(e)) = timeout {
            out.push(format!("timeout: {e}"));
        }
        if let Some(schedule) = &self.schedule {
            if let Err(e) = schedule.compile() {
                out.push(format!("schedule: {e}"));
            } else if schedule.next_fire(super::now_ms()).is_none() {
                out.push(format!("schedule: cron {:?} never fires", schedule.cron));
            }
            if let Err(e) = self.values(&schedule.options) {
                out.push(format!("schedule.options: {e}"));
            }
        }
        if self.follow_ups.len() > MAX_FOLLOW_UPS {
            out.push(format!("follow_ups: at most {MAX_FOLLOW_UPS}"));
        }
        for (i, f) in self.follow_ups.iter().enumerate() {
            if !valid_name(&f.run) {
                out.push(format!(
                    "follow_ups[{i}].run: {:?} is not a job name",
                    f.run
                ));
            }
            if let Some(Err(e)) = f.condition.as_deref().map(Condition::parse) {
                out.push(format!("follow_ups[{i}].if: {e}"));
            }
            let texts = f.condition.iter().chain(f.options.values());
            if let Some(secure) = texts.flat_map(|t| self.secure_references(t)).next() {
                out.push(format!(
                    "follow_ups[{i}]: option {secure} is secure: its value is not passed on \
                     (give the follow-up job its own secret reference)"
                ));
            }
        }
        out
    }

    /// The secure options `text` refers to (`option.K`, `${option.K}`).
    fn secure_references<'a>(&'a self, text: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.options
            .iter()
            .filter(|d| d.secure)
            .map(|d| d.name.as_str())
            .filter(move |name| {
                text.match_indices(&format!("option.{name}"))
                    .any(|(at, m)| {
                        let next = text[at + m.len()..].chars().next();
                        !next.is_some_and(|c| {
                            c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')
                        })
                    })
            })
    }

    /// The same definition with its tags in one order, once each (their
    /// order means nothing, so it does not make a new version).
    pub fn normalized(mut self) -> DefinitionInput {
        self.tags.sort();
        self.tags.dedup();
        self
    }

    fn spec_problems(&self) -> Vec<String> {
        let Some(spec) = self.spec.as_object() else {
            return vec!["spec: a job spec v1 object".into()];
        };
        if spec.contains_key("id") {
            return vec!["spec.id: each execution gets its own id; leave it out".into()];
        }
        // Options are the definition's own, so that its rules (secure above
        // all) are the ones the control plane applies.
        for field in ["options", "option_defs"] {
            if spec.contains_key(field) {
                return vec![format!(
                    "spec.{field}: a definition's options are its own `options` (values: \
                     run -o, schedule.options)"
                )];
            }
        }
        if spec.contains_key("rundeck") {
            // The runner that converts a Rundeck job checks it.
            return match spec.get("rundeck") {
                Some(serde_json::Value::String(_)) => Vec::new(),
                _ => vec!["spec.rundeck: the text of a Rundeck job file".into()],
            };
        }
        if spec
            .get("steps")
            .and_then(|s| s.as_array())
            .is_some_and(|s| s.is_empty())
        {
            return vec!["spec.steps: a job needs at least one step".into()];
        }
        let timeouts = timeout_problems(&self.spec);
        if !timeouts.is_empty() {
            return timeouts.into_iter().map(|p| format!("spec.{p}")).collect();
        }
        let mut probe = spec.clone();
        probe.insert("id".into(), "probe".into());
        probe.entry("spec_version").or_insert(1.into());
        sortie_protocol::schema::problems(&serde_json::Value::Object(probe))
            .into_iter()
            .map(|p| format!("spec: {p}"))
            .collect()
    }

    /// The options a run gets from `given`: each checked against its
    /// definition, defaults filled in. A secure option's value is never shown.
    pub fn values(
        &self,
        given: &BTreeMap<String, String>,
    ) -> Result<BTreeMap<String, String>, String> {
        if let Some(unknown) = given
            .keys()
            .find(|k| !self.options.iter().any(|d| &d.name == *k))
        {
            return Err(format!(
                "option {unknown:?} is not defined by job {}",
                self.name
            ));
        }
        let mut out = BTreeMap::new();
        for def in &self.options {
            let value = given.get(&def.name).or(def.default.as_ref());
            let value = value.map(String::as_str).unwrap_or("");
            check_value(def, value)?;
            if !value.is_empty() {
                out.insert(def.name.clone(), value.to_string());
            }
        }
        Ok(out)
    }

    /// The job spec of an execution with this id and these (checked) options.
    pub fn spec_for(&self, id: &str, options: &BTreeMap<String, String>) -> serde_json::Value {
        let mut spec = self.spec.clone();
        let object = spec.as_object_mut().expect("a checked spec is an object");
        object.insert("spec_version".into(), 1.into());
        object.insert("id".into(), id.into());
        object
            .entry("name")
            .or_insert_with(|| self.name.clone().into());
        if !self.group.is_empty() {
            let job = object.entry("job").or_insert_with(|| serde_json::json!({}));
            if let Some(job) = job.as_object_mut() {
                job.entry("group")
                    .or_insert_with(|| self.group.clone().into());
            }
        }
        if !options.is_empty() {
            object.insert("options".into(), serde_json::json!(options));
        }
        if !self.options.is_empty() && !object.contains_key("rundeck") {
            object.insert("option_defs".into(), self.option_defs());
        }
        if let Some(timeout) = &self.timeout {
            object.insert("timeout".into(), timeout.clone().into());
        }
        spec
    }
}

impl DefinitionInput {
    /// The options as job spec v1's `option_defs`: without the descriptions,
    /// which are for people here and which a v1 runner does not take.
    fn option_defs(&self) -> serde_json::Value {
        let defs = self.options.iter().map(|def| OptionDef {
            description: String::new(),
            ..def.clone()
        });
        serde_json::json!(defs.collect::<Vec<_>>())
    }
}

/// A timeout: a duration the runner takes (longer than zero, at most ten years).
pub fn check_timeout(text: &str) -> Result<(), String> {
    const TEN_YEARS: std::time::Duration = std::time::Duration::from_secs(3650 * 24 * 3600);
    match humantime::parse_duration(text) {
        Ok(d) if d.is_zero() => Err(format!("{text:?}: a timeout must be longer than zero")),
        Ok(d) if d > TEN_YEARS => Err(format!("{text:?}: a timeout is at most ten years")),
        Ok(_) => Ok(()),
        Err(_) => Err(format!(
            "{text:?} is not a duration such as \"90s\" or \"1h 30m\""
        )),
    }
}

/// What is wrong with the timeouts of a job spec: its own, each step's and
/// each error handler's (a Rundeck job's text is the runner's to check).
pub fn timeout_problems(spec: &serde_json::Value) -> Vec<String> {
    let mut out = Vec::new();
    let mut check = |at: String, value: &serde_json::Value| {
        if let Some(Err(e)) = value
            .get("timeout")
            .and_then(|t| t.as_str())
            .map(check_timeout)
        {
            out.push(format!("{at}timeout: {e}"));
        }
    };
    check(String::new(), spec);
    for (i, step) in spec["steps"].as_array().into_iter().flatten().enumerate() {
        check(format!("steps[{i}]."), step);
        check(format!("steps[{i}].errorhandler."), &step["errorhandler"]);
    }
    out
}

/// An option definition that can be checked at all: a regular expression
/// that compiles, a default that passes its own rules.
fn check_def(def: &OptionDef) -> Result<(), String> {
    if def.name.is_empty()
        || def.name.len() > 128
        || !def
            .name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
    {
        return Err("a name of [A-Za-z0-9_.-], 1 to 128 characters".into());
    }
    if let Some(pattern) = &def.regex {
        if pattern.len() > MAX_REGEX_TEXT {
            return Err(format!("regex: at most {MAX_REGEX_TEXT} bytes"));
        }
        whole(pattern).map_err(|e| format!("regex: {e}"))?;
    }
    // A secret reference, as job spec v1 has it: "provider:name", or
    // {"ref": "provider:name", "as": "env" | "file"}.
    let reference = |r: &serde_json::Value| r.as_str().is_some_and(|r| r.contains(':'));
    match &def.secret {
        None => {}
        Some(r) if reference(r) => {}
        Some(serde_json::Value::Object(o))
            if o.get("ref").is_some_and(reference)
                && o.keys().all(|k| k == "ref" || k == "as")
                && o.get("as").is_none_or(|a| a == "env" || a == "file") => {}
        Some(_) => return Err(
            "secret: a reference such as \"env:NAME\" or {\"ref\": …, \"as\": \"env\" | \"file\"}"
                .into(),
        ),
    }
    if let Some(default) = def.default.as_deref().filter(|d| !d.is_empty()) {
        check_value(def, default).map_err(|e| format!("default: {e}"))?;
    }
    Ok(())
}

fn whole(pattern: &str) -> Result<regex::Regex, regex::Error> {
    // On its own first: `a)|(?:.*` would otherwise close the wrapper's group
    // and match anything.
    regex::RegexBuilder::new(pattern)
        .size_limit(256 << 10)
        .build()?;
    regex::RegexBuilder::new(&format!(r"\A(?:{pattern})\z"))
        .size_limit(256 << 10)
        .build()
}

/// Rundeck's rules for one option value (each value of a multivalued one).
fn check_value(def: &OptionDef, value: &str) -> Result<(), String> {
    let name = &def.name;
    // A secure option's value never appears in an answer or the audit log.
    let shown = |v: &str| match def.secure {
        true => "(secure)".to_string(),
        false if v.chars().count() > 80 => format!("{:?}…", v.chars().take(80).collect::<String>()),
        false => format!("{v:?}"),
    };
    if value.is_empty() {
        return match def.required {
            true => Err(format!("option {name} is required and has no value")),
            false => Ok(()),
        };
    }
    if value.len() > MAX_OPTION_VALUE {
        return Err(format!(
            "option {name}: {} bytes, more than the {MAX_OPTION_VALUE} an option may have",
            value.len()
        ));
    }
    // As the runner checks it again: split on a given delimiter only, and an
    // enforced option without values takes any.
    let values: Vec<&str> = match (def.multivalued, def.delimiter.as_deref()) {
        (true, Some(d)) if !d.is_empty() => value.split(d).collect(),
        _ => vec![value],
    };
    for v in values {
        let allowed = def.values.is_empty() || def.values.iter().any(|a| a == v);
        if def.enforced && !allowed {
            return Err(format!(
                "option {name}: {} is not one of its allowed values",
                shown(v)
            ));
        }
        if let Some(pattern) = &def.regex {
            let re = whole(pattern).map_err(|e| format!("option {name}: regex: {e}"))?;
            if !re.is_match(v) {
                return Err(format!(
                    "option {name}: {} does not match {pattern:?}",
                    shown(v)
                ));
            }
        }
    }
    Ok(())
}

impl Schedule {
    /// The cron expression and time zone, ready to evaluate.
    pub fn compile(&self) -> Result<(croner::Cron, jiff::tz::TimeZone), String> {
        let cron: croner::Cron = self
            .cron
            .parse()
            .map_err(|e| format!("cron {:?}: {e}", self.cron))?;
        let zone = jiff::tz::TimeZone::get(&self.timezone)
            .map_err(|_| format!("timezone {:?} is not an IANA time zone", self.timezone))?;
        Ok((cron, zone))
    }

    /// The last fire time at or before `now_ms`, if any within a year.
    pub fn last_fire(&self, now_ms: u64) -> Option<u64> {
        let (cron, zone) = self.compile().ok()?;
        let now = jiff::Timestamp::from_millisecond(now_ms as i64)
            .ok()?
            .to_zoned(zone);
        let fire = cron.find_previous_occurrence(&now, true).ok()?;
        let ms = fire.timestamp().as_millisecond();
        (now_ms as i64 - ms < 366 * 24 * 3600 * 1000).then_some(ms as u64)
    }

    /// The fire times after `after_ms` up to `until_ms`, the first `max` of them.
    pub fn fires(&self, after_ms: u64, until_ms: u64, max: usize) -> Vec<u64> {
        let Ok((cron, zone)) = self.compile() else {
            return Vec::new();
        };
        let Ok(start) = jiff::Timestamp::from_millisecond(after_ms as i64) else {
            return Vec::new();
        };
        cron.iter_after(start.to_zoned(zone))
            .map(|fire| fire.timestamp().as_millisecond() as u64)
            .take_while(|ms| *ms <= until_ms)
            .take(max)
            .collect()
    }

    /// The next fire time after `now_ms`.
    pub fn next_fire(&self, now_ms: u64) -> Option<u64> {
        let (cron, zone) = self.compile().ok()?;
        let now = jiff::Timestamp::from_millisecond(now_ms as i64)
            .ok()?
            .to_zoned(zone);
        let fire = cron.find_next_occurrence(&now, false).ok()?;
        u64::try_from(fire.timestamp().as_millisecond()).ok()
    }
}

/// What a follow-up sees of the execution that ended.
pub struct Ended<'a> {
    pub id: &'a str,
    pub job: &'a str,
    /// `succeeded`, `failed`, `timed_out`, `cancelled`, `interrupted`, `lost`.
    pub status: &'a str,
    pub data: &'a BTreeMap<String, String>,
    pub options: &'a BTreeMap<String, String>,
}

impl Ended<'_> {
    /// The value a reference names (`data.K`, `option.K`, `execution.status`,
    /// `execution.id`, `execution.job`); none for an unknown reference.
    fn lookup(&self, reference: &str) -> Option<String> {
        if let Some(key) = reference.strip_prefix("data.") {
            return Some(self.data.get(key).cloned().unwrap_or_default());
        }
        if let Some(key) = reference.strip_prefix("option.") {
            return Some(self.options.get(key).cloned().unwrap_or_default());
        }
        match reference {
            "execution.status" => Some(self.status.to_string()),
            "execution.id" => Some(self.id.to_string()),
            "execution.job" => Some(self.job.to_string()),
            _ => None,
        }
    }

    /// `template` with each `${reference}` replaced by its value (as text,
    /// never evaluated); an unknown reference is an error.
    pub fn expand(&self, template: &str) -> Result<String, String> {
        let mut out = String::new();
        let mut rest = template;
        while let Some(at) = rest.find("${") {
            out.push_str(&rest[..at]);
            let after = &rest[at + 2..];
            let end = after
                .find('}')
                .ok_or_else(|| format!("{template:?}: an unclosed ${{"))?;
            let reference = &after[..end];
            let value = self
                .lookup(reference)
                .ok_or_else(|| format!("${{{reference}}} is none of data.K, option.K, execution.status, execution.id, execution.job"))?;
            out.push_str(&value);
            rest = &after[end + 1..];
            // Bounded as it grows: a template repeating a large value must
            // not take the server's memory before the value is checked.
            if out.len() > MAX_OPTION_VALUE {
                return Err(format!(
                    "{:?}…: more than the {MAX_OPTION_VALUE} bytes an option may have",
                    template.chars().take(40).collect::<String>()
                ));
            }
        }
        out.push_str(rest);
        Ok(out)
    }

    /// Whether this follow-up starts after this end.
    pub fn starts(&self, follow_up: &FollowUp) -> Result<bool, String> {
        let on = match follow_up.on {
            Trigger::Any => true,
            Trigger::Succeeded => self.status == "succeeded",
            Trigger::Failed => self.status != "succeeded",
        };
        match (&follow_up.condition, on) {
            (Some(text), true) => Ok(Condition::parse(text)?.holds(self)),
            (None, on) | (_, on @ false) => Ok(on),
        }
    }
}

/// A follow-up's condition: comparisons joined by `&&` (binding tighter) and `||`.
#[derive(Debug, PartialEq)]
pub struct Condition {
    /// Alternatives, each a conjunction of comparisons.
    any: Vec<Vec<Comparison>>,
}

#[derive(Debug, PartialEq)]
struct Comparison {
    left: Operand,
    equal: bool,
    right: Operand,
}

#[derive(Debug, PartialEq)]
enum Operand {
    Reference(String),
    Text(String),
}

#[derive(Debug, PartialEq)]
enum Token {
    Operand(Operand),
    Equal,
    NotEqual,
    And,
    Or,
}

fn tokens(text: &str) -> Result<Vec<Token>, String> {
    let mut out = Vec::new();
    let mut chars = text.char_indices().peekable();
    while let Some(&(at, c)) = chars.peek() {
        let two = text.get(at..at + 2).unwrap_or("");
        match c {
            _ if c.is_whitespace() => {
                chars.next();
            }
            '"' => {
                chars.next();
                let mut s = String::new();
                loop {
                    match chars.next() {
                        None => return Err(format!("an unclosed string at {at}")),
                        Some((_, '"')) => break,
                        Some((_, '\\')) => match chars.next() {
                            Some((_, e @ ('"' | '\\'))) => s.push(e),
                            _ => return Err("only \\\" and \\\\ are escapes".into()),
                        },
                        Some((_, other)) => s.push(other),
                    }
                }
                out.push(Token::Operand(Operand::Text(s)));
            }
            _ if ["==", "!=", "&&", "||"].contains(&two) => {
                out.push(match two {
                    "==" => Token::Equal,
                    "!=" => Token::NotEqual,
                    "&&" => Token::And,
                    _ => Token::Or,
                });
                chars.next();
                chars.next();
            }
            _ if c.is_ascii_alphanumeric() || c == '_' => {
                let mut word = String::new();
                while let Some(&(_, c)) = chars.peek() {
                    if !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')) {
                        break;
                    }
                    word.push(c);
                    chars.next();
                }
                out.push(Token::Operand(Operand::Reference(word)));
            }
            _ => return Err(format!("unexpected {c:?} at {at}")),
        }
    }
    Ok(out)
}

impl Condition {
    pub fn parse(text: &str) -> Result<Condition, String> {
        let known = Ended {
            id: "",
            job: "",
            status: "",
            data: &BTreeMap::new(),
            options: &BTreeMap::new(),
        };
        let mut any = vec![Vec::new()];
        let mut tokens = tokens(text)?.into_iter();
        loop {
            let (Some(Token::Operand(left)), Some(op), Some(Token::Operand(right))) =
                (tokens.next(), tokens.next(), tokens.next())
            else {
                return Err(format!(
                    "{text:?}: comparisons such as data.state == \"degraded\", joined by && and ||"
                ));
            };
            let equal = match op {
                Token::Equal => true,
                Token::NotEqual => false,
                _ => return Err(format!("{text:?}: == or != between two values")),
            };
            for side in [&left, &right] {
                if let Operand::Reference(r) = side {
                    if known.lookup(r).is_none() {
                        return Err(format!(
                            "{r}: none of data.K, option.K, execution.status, execution.id, \
                             execution.job (text is quoted)"
                        ));
                    }
                }
            }
            any.last_mut()
                .expect("one alternative at least")
                .push(Comparison { left, equal, right });
            match tokens.next() {
                None => return Ok(Condition { any }),
                Some(Token::And) => {}
                Some(Token::Or) => any.push(Vec::new()),
                Some(_) => return Err(format!("{text:?}: && or || between comparisons")),
            }
        }
    }

    pub fn holds(&self, ended: &Ended) -> bool {
        let value = |o: &Operand| match o {
            Operand::Text(t) => t.clone(),
            Operand::Reference(r) => ended.lookup(r).unwrap_or_default(),
        };
        self.any.iter().any(|all| {
            all.iter()
                .all(|c| (value(&c.left) == value(&c.right)) == c.equal)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(json: serde_json::Value) -> DefinitionInput {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn options_are_checked_with_rundecks_rules_and_defaults_filled_in() {
        let def = input(serde_json::json!({
            "name": "deploy",
            "spec": {"steps": [{"shell": "true"}]},
            "options": [
                {"name": "env", "required": true, "enforced": true, "values": ["prod", "stage"]},
                {"name": "version", "regex": "[0-9]+\\.[0-9]+", "default": "1.0"},
                {"name": "pin", "secure": true, "regex": "[0-9]{4}"},
            ]
        }));
        assert!(def.problems().is_empty(), "{:?}", def.problems());
        let given = |pairs: &[(&str, &str)]| {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<BTreeMap<_, _>>()
        };
        let ok = def.values(&given(&[("env", "prod")])).unwrap();
        assert_eq!(ok, given(&[("env", "prod"), ("version", "1.0")]));
        assert!(def
            .values(&given(&[]))
            .unwrap_err()
            .contains("env is required"));
        assert!(def
            .values(&given(&[("env", "dev")]))
            .unwrap_err()
            .contains("allowed values"));
        // The whole value must match, as Java's String.matches.
        assert!(def
            .values(&given(&[("env", "prod"), ("version", "1.0; rm")]))
            .is_err());
        assert!(def
            .values(&given(&[("env", "prod"), ("nope", "x")]))
            .unwrap_err()
            .contains("not defined"));
        let secure = def
            .values(&given(&[("env", "prod"), ("pin", "hunter2")]))
            .unwrap_err();
        assert!(!secure.contains("hunter2"), "{secure}");
    }

    #[test]
    fn a_definition_with_mistakes_names_each_field() {
        let def = input(serde_json::json!({
            "name": ".hidden",
            "spec": {"id": "x", "steps": []},
            "options": [{"name": "a", "regex": "("}, {"name": "a"}],
            "timeout": "soon",
            "schedule": {"cron": "61 * * * *", "timezone": "Mars/Olympus"},
            "follow_ups": [{"run": "b", "if": "rm -rf /"}],
        }));
        let secret = input(serde_json::json!({
            "name": "t",
            "spec": {"steps": [{"shell": "true"}]},
            "options": [{"name": "p", "secret": 5, "description": "for people"}],
        }));
        let problems = secret.problems().join("\n");
        assert!(problems.contains("options[0] (p): secret"), "{problems}");
        let problems = def.problems().join("\n");
        for field in [
            "name:",
            "spec.id",
            "options[0]",
            "options[1]",
            "timeout:",
            "schedule:",
            "follow_ups[0].if",
        ] {
            assert!(problems.contains(field), "{field} in {problems}");
        }
    }

    #[test]
    fn limits_and_loopholes_are_refused_at_load() {
        let problems = |value: serde_json::Value| input(value).problems().join("\n");
        let step = serde_json::json!([{"shell": "true", "timeout": "0s"}]);
        let p = problems(serde_json::json!({"name": "t", "spec": {"steps": step}}));
        assert!(p.contains("spec.steps[0].timeout"), "{p}");
        let p = problems(serde_json::json!({"name": "t", "timeout": "11y",
            "spec": {"steps": [{"shell": "true"}]}}));
        assert!(p.contains("at most ten years"), "{p}");
        // Options are the definition's own: the spec may not declare secure ones.
        let p = problems(
            serde_json::json!({"name": "t", "spec": {"steps": [{"shell": "true"}],
            "option_defs": [{"name": "pin", "secure": true}], "options": {"pin": "1"}}}),
        );
        assert!(p.contains("spec.option"), "{p}");
        // A pattern that would close the whole-value group.
        let p = problems(
            serde_json::json!({"name": "t", "spec": {"steps": [{"shell": "true"}]},
            "options": [{"name": "a", "regex": "[0-9]+)|(?:.*"}]}),
        );
        assert!(p.contains("options[0] (a): regex"), "{p}");
        // A secure option is not passed on by a follow-up.
        let p = problems(
            serde_json::json!({"name": "t", "spec": {"steps": [{"shell": "true"}]},
            "options": [{"name": "pin", "secure": true}],
            "follow_ups": [{"run": "u", "options": {"x": "${option.pin}"}}]}),
        );
        assert!(p.contains("option pin is secure"), "{p}");
    }

    /// Execution a.1 of job a, succeeded with this data and these options.
    fn succeeded<'a>(
        data: &'a BTreeMap<String, String>,
        options: &'a BTreeMap<String, String>,
    ) -> Ended<'a> {
        Ended {
            id: "a.1",
            job: "a",
            status: "succeeded",
            data,
            options,
        }
    }

    #[test]
    fn a_template_stops_growing_at_the_option_limit() {
        let data = [("big".to_string(), "x".repeat(60_000))].into();
        let options = BTreeMap::new();
        let ended = succeeded(&data, &options);
        let template = "${data.big}".repeat(30_000);
        let err = ended.expand(&template).unwrap_err();
        assert!(err.contains("more than the 65536 bytes"), "{err}");
        assert_eq!(ended.expand("${data.big}").unwrap().len(), 60_000);
    }

    #[test]
    fn a_schedule_fires_in_its_time_zone() {
        let s = Schedule {
            cron: "0 9 * * *".into(),
            timezone: "Europe/Paris".into(),
            misfire: Misfire::Skip,
            overlap: false,
            options: BTreeMap::new(),
        };
        // 2026-07-01T12:00:00Z: 09:00 in Paris (summer time) was 07:00 UTC.
        let noon = 1_782_907_200_000;
        assert_eq!(s.last_fire(noon), Some(noon - 5 * 3600 * 1000));
        assert_eq!(s.next_fire(noon), Some(noon + 19 * 3600 * 1000));
    }

    #[test]
    fn conditions_compare_values_and_never_run_them() {
        let data = [("state".to_string(), "degraded".to_string())].into();
        let options = BTreeMap::new();
        let ended = succeeded(&data, &options);
        let holds = |text: &str| Condition::parse(text).unwrap().holds(&ended);
        assert!(holds(r#"data.state == "degraded""#));
        assert!(!holds(r#"data.state != "degraded""#));
        assert!(holds(
            r#"data.state == "ok" || execution.status == "succeeded""#
        ));
        assert!(!holds(r#"data.state == "degraded" && data.missing == "x""#));
        assert!(holds(r#"data.missing == """#));
        for bad in [
            "data.state",
            "$(reboot) == x",
            "data.state = \"x\"",
            "x == \"y\"",
            "\"a\" == \"b\" &&",
        ] {
            assert!(Condition::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(
            ended
                .expand("${data.state} from ${execution.id}: $(not code) ${")
                .unwrap_err(),
            "\"${data.state} from ${execution.id}: $(not code) ${\": an unclosed ${"
        );
        assert_eq!(
            ended
                .expand("${data.state}/${execution.job}/$HOME")
                .unwrap(),
            "degraded/a/$HOME"
        );
    }
}
