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
            rows.set_setting(GENERATION, &random_token())?;
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
        Self::ended_again(rows, job, now, None)
    }

    /// [`Self::ended`] for an execution whose end was recorded before as
    /// `fired_for` (a lapsed job's `lost`): a follow-up that end started is
    /// not started again.
    pub(super) fn ended_again(
        rows: &mut dyn Rows,
        job: &mut Job,
        now: u64,
        fired_for: Option<&str>,
    ) -> Outcome<()> {
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
        let before = fired_for.map(|status| Ended {
            status,
            data: &empty,
            ..ended
        });
        for follow_up in &definition.input.follow_ups {
            let run = &follow_up.run;
            if let Some(before) = &before {
                if before.starts(follow_up) == Ok(true) {
                    notes.push(format!(
                        "{run}: not started again: it started when the execution was recorded {}",
                        before.status
                    ));
                    continue;
                }
            }
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
        let mut known = self.schedules.lock().unwrap_or_else(|e| e.into_inner());
        // The list of scheduled definitions is read again only when a
        // definition was loaded since (on any replica).
        let generation = self.tx(|rows| rows.setting_or(GENERATION, ""))?;
        if known.generation.as_deref() != Some(generation.as_str()) {
            let listed: BTreeMap<String, u64> =
                self.tx(|rows| rows.scheduled())?.into_iter().collect();
            known
                .due
                .retain(|name, due| listed.get(name) == Some(&due.definition.version));
            for (name, version) in listed {
                if known.due.contains_key(&name) {
                    continue;
                }
                let Some(definition) = self.definition(&name, Some(version))? else {
                    continue;
                };
                let schedule = definition.input.schedule.as_ref().expect("scheduled");
                let next_ms = schedule.next_fire(definition.created_at_ms);
                let definition = std::sync::Arc::new(definition);
                known.due.insert(
                    name,
                    Due {
                        definition,
                        next_ms,
                    },
                );
            }
            known.generation = Some(generation);
        }
        let grace = self.timing.misfire_grace.as_millis() as u64;
        let mut queued = Vec::new();
        for due in known.due.values_mut() {
            if due.next_ms.is_none_or(|next| next > now) {
                continue;
            }
            let definition = due.definition.clone();
            queued.extend(self.tx(|rows| Self::fire(rows, &definition, now, grace))?);
            let schedule = definition.input.schedule.as_ref().expect("scheduled");
            due.next_ms = schedule.next_fire(now);
        }
        Ok(queued)
    }

    /// A schedule's fire times up to `now`, under its mark's lock: each one
    /// within the grace queued (every second of an every-second cron, however
    /// late the tick), the ones missed before that skipped or run once.
    fn fire(
        rows: &mut dyn Rows,
        definition: &Definition,
        now: u64,
        grace: u64,
    ) -> Outcome<Vec<String>> {
        let name = &definition.input.name;
        let schedule = definition.input.schedule.as_ref().expect("scheduled");
        let (mark, skipping) = rows.schedule_mark(name, definition.created_at_ms)?;
        // Each fire time once, and none from before this version was loaded.
        let after = mark.max(definition.created_at_ms.saturating_sub(1));
        let late = now.saturating_sub(grace);
        let on_time = schedule.fires(after.max(late), now, MAX_FIRES);
        let missed = schedule
            .fires(after, late, 1)
            .first()
            .and_then(|_| schedule.last_fire(late))
            .filter(|at| *at > after);
        let Some(last) = on_time.last().copied().or(missed) else {
            return Ok(Vec::new());
        };
        let mut skipping = skipping;
        let mut queued = Vec::new();
        let mut times = Vec::new();
        match (missed, schedule.misfire) {
            (Some(at), Misfire::Skip) => {
                let detail = serde_json::json!({"fire_time": super::rfc3339(at),
                    "why": "missed (misfire: skip)"});
                audit(rows, "schedule", "schedule.skip", name, detail)?;
            }
            (Some(at), Misfire::RunOnce) => times.push(at),
            (None, _) => {}
        }
        times.extend(on_time);
        for fire in times {
            let why = if !schedule.overlap && rows.active(name)? {
                // Said once for a run of skipped fire times, not once a second.
                Some("its last execution has not ended (overlap: false)".to_string())
            } else {
                match Self::fire_one(rows, name, schedule, fire, now)? {
                    Fired::Queued(id) => {
                        queued.push(id);
                        skipping = false;
                        None
                    }
                    Fired::Already => None,
                    Fired::Not(why) => Some(why),
                }
            };
            if let Some(why) = why {
                if !skipping {
                    let detail = serde_json::json!({"fire_time": super::rfc3339(fire), "why": why});
                    audit(rows, "schedule", "schedule.skip", name, detail)?;
                }
                skipping = true;
            }
        }
        rows.set_schedule_mark(name, last, skipping)?;
        Ok(queued)
    }

    /// Queue one fire time's execution; why not, when it cannot be.
    fn fire_one(
        rows: &mut dyn Rows,
        name: &str,
        schedule: &super::definition::Schedule,
        fire: u64,
        now: u64,
    ) -> Outcome<Fired> {
        let id = format!("{name}.s{fire}");
        let cause = Cause {
            by: "schedule",
            parent: None,
            depth: 0,
            budget: MAX_CHAIN_EXECUTIONS,
            id: Some(id.clone()),
        };
        match Self::queue_run(rows, name, &schedule.options, cause, now) {
            Ok(Some(id)) => Ok(Fired::Queued(id)),
            Ok(None) => match rows.job(&id)?.and_then(|j| j.definition) {
                Some(at) if at.name == name => Ok(Fired::Already),
                _ => Ok(Fired::Not(format!("its id {id} is taken by another job"))),
            },
            Err(Refusal::Invalid(why)) => Ok(Fired::Not(why)),
            Err(other) => Err(other),
        }
    }
}

/// What became of one fire time.
enum Fired {
    Queued(String),
    /// Its execution exists already.
    Already,
    /// Why it could not be queued.
    Not(String),
}

/// The setting a load changes, so that replicas read the scheduled
/// definitions again.
const GENERATION: &str = "definitions_generation";

/// The most fire times one evaluation queues (an every-second cron after a
/// tick a minute late: 60).
const MAX_FIRES: usize = 1000;

/// What a replica knows of the schedules: the list as of a generation, and
/// when each is next due.
#[derive(Default)]
pub(super) struct Schedules {
    generation: Option<String>,
    due: BTreeMap<String, Due>,
}

/// A scheduled definition's version, and its next fire time (none: never).
struct Due {
    definition: std::sync::Arc<Definition>,
    next_ms: Option<u64>,
}
