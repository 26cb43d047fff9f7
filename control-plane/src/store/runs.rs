//! Runs of job definitions: by an admin, on a schedule, as a follow-up.
//!
//! Every run goes through [`Store::queue_run`] inside the transaction that
//! decides it, so an execution is queued exactly when its cause is recorded:
//! a schedule's mark moves with the execution it fires (and the execution's id
//! is the definition and the fire time, so replicas racing for one fire time
//! queue it once), and a follow-up is queued in the transaction that ends its
//! parent, so a parent's end is never recorded without what it starts.

use std::collections::BTreeMap;

use super::definition::{Ended, Misfire, MAX_CHAIN_DEPTH, MAX_CHAIN_EXECUTIONS};
use super::{
    audit, now_ms, random_token, Definition, DefinitionInput, DefinitionRef, Job, Outcome, Phase,
    Refusal, Rows, Store,
};

/// What started an execution.
struct Cause<'a> {
    by: &'a str,
    parent: Option<&'a str>,
    depth: u32,
    /// How many executions its follow-ups may still start, all told.
    budget: u32,
    /// The id to give it (a schedule's fire time); a fresh one when none.
    id: Option<String>,
}

impl Store {
    /// Load a definition: a new version when it differs from the latest (the
    /// same definition again changes nothing). Returns the version and
    /// whether it is new.
    pub fn load(&self, by: &str, input: DefinitionInput) -> Outcome<(Definition, bool)> {
        let input = input.normalized();
        let problems = input.problems();
        if !problems.is_empty() {
            return Err(Refusal::Invalid(problems.join("; ")));
        }
        self.tx(|rows| {
            let latest = rows.definition(&input.name, None)?;
            if let Some(latest) = latest.as_ref().filter(|l| l.input == input) {
                return Ok((latest.clone(), false));
            }
            let definition = Definition {
                version: latest.map_or(1, |l| l.version + 1),
                input: input.clone(),
                created_at_ms: now_ms(),
                created_by: by.to_string(),
            };
            if !rows.put_definition(&definition)? {
                return Err(Refusal::Conflict(format!(
                    "job {} was changed at the same time: load it again",
                    input.name
                )));
            }
            let detail = serde_json::json!({"version": definition.version});
            audit(rows, by, "job.load", &input.name, detail)?;
            Ok((definition, true))
        })
    }

    /// The latest version of every definition.
    pub fn definitions(&self) -> Outcome<Vec<Definition>> {
        self.tx(|rows| rows.definitions())
    }

    /// A definition's version, the latest when none is given.
    pub fn definition(&self, name: &str, version: Option<u64>) -> Outcome<Option<Definition>> {
        self.tx(|rows| rows.definition(name, version))
    }

    /// Run the latest version of a definition with these options (checked
    /// against it first); the execution's id.
    pub fn run(&self, by: &str, name: &str, options: &BTreeMap<String, String>) -> Outcome<String> {
        let cause = Cause {
            by,
            parent: None,
            depth: 0,
            budget: MAX_CHAIN_EXECUTIONS,
            id: None,
        };
        self.tx(|rows| {
            Self::queue_run(rows, name, options, cause, now_ms())?.ok_or_else(|| {
                Refusal::Conflict("the execution id made was taken: run it again".into())
            })
        })
    }

    /// Queue an execution of `name`'s latest version; none if its id exists
    /// (another replica fired the same schedule time).
    fn queue_run(
        rows: &mut dyn Rows,
        name: &str,
        given: &BTreeMap<String, String>,
        cause: Cause,
        now: u64,
    ) -> Outcome<Option<String>> {
        let definition = rows
            .definition(name, None)?
            .ok_or_else(|| Refusal::NotFound(format!("no job {name}")))?;
        let input = &definition.input;
        let options = input.values(given).map_err(Refusal::Invalid)?;
        let id = cause
            .id
            .unwrap_or_else(|| format!("{name}.{}", &random_token()[..12]));
        let mut job = Job::queued(&id, input.spec_for(&id, &options), cause.by, now);
        job.tags = input.tags.clone();
        job.definition = Some(DefinitionRef {
            name: name.to_string(),
            version: definition.version,
        });
        job.parent = cause.parent.map(str::to_string);
        job.depth = cause.depth;
        job.chain_budget = cause.budget;
        job.secure_options = input
            .options
            .iter()
            .filter(|d| d.secure)
            .map(|d| d.name.clone())
            .collect();
        if !rows.insert(&mut job)? {
            return Ok(None);
        }
        // A secure option's value is kept out of the audit log.
        let shown: BTreeMap<&String, &str> = options
            .iter()
            .map(|(k, v)| {
                let secure = input.options.iter().any(|d| &d.name == k && d.secure);
                (k, if secure { "(secure)" } else { v.as_str() })
            })
            .collect();
        let detail = serde_json::json!({
            "job": name,
            "version": definition.version,
            "options": shown,
            "parent": cause.parent,
        });
        audit(rows, cause.by, "job.run", &id, detail)?;
        Ok(Some(id))
    }

    /// Start the follow-ups of a definition's execution that just ended (in
    /// the transaction that ends it), noting in `job.follow_ups` what each did.
    pub(super) fn ended(rows: &mut dyn Rows, job: &mut Job, now: u64) -> Outcome<()> {
        let Some(at) = job.definition.clone() else {
            return Ok(());
        };
        let Some(definition) = rows.definition(&at.name, Some(at.version))? else {
            return Ok(());
        };
        let empty = BTreeMap::new();
        let data = job.completion.as_ref().map_or(&empty, |c| &c.data);
        let options: BTreeMap<String, String> = job
            .spec
            .get("options")
            .and_then(|o| serde_json::from_value(o.clone()).ok())
            .unwrap_or_default();
        let status = match job.phase {
            Phase::Done => job.status(),
            _ => "failed",
        };
        let ended = Ended {
            id: &job.id,
            job: &at.name,
            status,
            data,
            options: &options,
        };
        let mut notes = Vec::new();
        // The follow-ups this end starts, with their options.
        let mut starting = Vec::new();
        for follow_up in &definition.input.follow_ups {
            let run = &follow_up.run;
            let given = match ended.starts(follow_up) {
                Ok(false) => continue,
                Ok(true) => follow_up
                    .options
                    .iter()
                    .map(|(k, v)| ended.expand(v).map(|v| (k.clone(), v)))
                    .collect::<Result<BTreeMap<_, _>, _>>(),
                Err(e) => Err(e),
            };
            match given {
                Ok(given) if job.depth < MAX_CHAIN_DEPTH => starting.push((run, given)),
                Ok(_) => notes.push(format!(
                    "{run}: not started: the chain of follow-ups is {MAX_CHAIN_DEPTH} deep"
                )),
                Err(e) => notes.push(format!("{run}: not started: {e}")),
            }
        }
        // The chain's budget, shared among the follow-ups started: however
        // they branch, one run starts at most MAX_CHAIN_EXECUTIONS in all.
        let started = starting.len().min(job.chain_budget as usize) as u32;
        let share = (job.chain_budget - started)
            .checked_div(started)
            .unwrap_or(0);
        for (n, (run, given)) in starting.into_iter().enumerate() {
            if n as u32 >= started {
                notes.push(format!(
                    "{run}: not started: the chain has started the {MAX_CHAIN_EXECUTIONS} \
                     executions one run may"
                ));
                continue;
            }
            let cause = Cause {
                by: "follow-up",
                parent: Some(&job.id),
                depth: job.depth + 1,
                budget: share,
                id: None,
            };
            match Self::queue_run(rows, run, &given, cause, now) {
                Ok(Some(id)) => notes.push(id),
                Ok(None) => notes.push(format!("{run}: not started: the id made was taken")),
                Err(Refusal::Invalid(why) | Refusal::NotFound(why)) => {
                    notes.push(format!("{run}: not started: {why}"))
                }
                Err(other) => return Err(other),
            }
        }
        job.follow_ups = notes;
        Ok(())
    }

    /// Queue what schedules have due: at most one execution per definition and
    /// fire time, whichever replicas tick. Returns the executions queued.
    pub fn fire_schedules(&self) -> Outcome<Vec<String>> {
        let now = now_ms();
        let listed = self.tx(|rows| rows.scheduled())?;
        let mut schedules = self.schedules.lock().unwrap_or_else(|e| e.into_inner());
        schedules.retain(|name, _| listed.iter().any(|(n, _)| n == name));
        let grace = self.timing.misfire_grace.as_millis() as u64;
        let mut queued = Vec::new();
        for (name, version) in listed {
            let known = schedules.get(&name).map(|due| due.definition.version);
            if known != Some(version) {
                // A version is never changed: read once, kept.
                let Some(definition) = self.definition(&name, Some(version))? else {
                    continue;
                };
                let schedule = definition.input.schedule.as_ref().expect("scheduled");
                let next_ms = schedule.next_fire(definition.created_at_ms);
                let definition = std::sync::Arc::new(definition);
                schedules.insert(
                    name.clone(),
                    Due {
                        definition,
                        next_ms,
                    },
                );
            }
            let due = schedules.get_mut(&name).expect("just made");
            if due.next_ms.is_none_or(|next| next > now) {
                continue;
            }
            let definition = due.definition.clone();
            let schedule = definition.input.schedule.as_ref().expect("scheduled");
            if let Some(fire) = schedule.last_fire(now) {
                let id = self.tx(|rows| Self::fire(rows, &definition, fire, now, grace))?;
                queued.extend(id);
            }
            due.next_ms = schedule.next_fire(now);
        }
        Ok(queued)
    }

    /// One schedule's fire time, under its mark's lock.
    fn fire(
        rows: &mut dyn Rows,
        definition: &Definition,
        fire: u64,
        now: u64,
        grace: u64,
    ) -> Outcome<Option<String>> {
        let name = &definition.input.name;
        let schedule = definition.input.schedule.as_ref().expect("scheduled");
        let (mark, skipping) = rows.schedule_mark(name, definition.created_at_ms)?;
        // Each fire time once, and never one from before this version was loaded.
        if fire <= mark || fire < definition.created_at_ms {
            return Ok(None);
        }
        let at = super::rfc3339(fire);
        let skip = |rows: &mut dyn Rows, why: &str, audited: bool| {
            rows.set_schedule_mark(name, fire, true)?;
            if audited {
                let detail = serde_json::json!({"fire_time": at, "why": why});
                audit(rows, "schedule", "schedule.skip", name, detail)?;
            }
            Ok(None)
        };
        if now.saturating_sub(fire) > grace && schedule.misfire == Misfire::Skip {
            return skip(rows, "missed (misfire: skip)", true);
        }
        if !schedule.overlap && rows.active(name)? {
            // Said once for a run of skipped fire times, not once a second.
            let why = "its last execution has not ended (overlap: false)";
            return skip(rows, why, !skipping);
        }
        rows.set_schedule_mark(name, fire, false)?;
        let cause = Cause {
            by: "schedule",
            parent: None,
            depth: 0,
            budget: MAX_CHAIN_EXECUTIONS,
            id: Some(format!("{name}.s{fire}")),
        };
        match Self::queue_run(rows, name, &schedule.options, cause, now) {
            Err(Refusal::Invalid(why)) => skip(rows, &why, true),
            other => other,
        }
    }
}

/// A scheduled definition's version, and its next fire time (none: never).
pub(super) struct Due {
    definition: std::sync::Arc<Definition>,
    next_ms: Option<u64>,
}
