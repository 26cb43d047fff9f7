//! The embedded backend: one SQLite file, `control-plane.db`, in the state dir.
//!
//! WAL with `synchronous=FULL`, so a commit is on disk before its answer leaves
//! and readers never wait for the writer. SQLite has one writer at a time, so
//! every transaction is `BEGIN IMMEDIATE` on the one connection: claims are
//! serialized exactly as the protocol needs, and no transaction ever has to be
//! retried for a lock it lost. A job is a row holding its whole record as JSON
//! beside the columns the queries select on; logs are rows of chunks by offset.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use anyhow::{bail, Context, Result};
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

use super::{
    chunk, Admin, AuditEntry, Backend, Chunk, Definition, Filter, Job, LogSink, Outcome, Page,
    Refusal, Reported, Rows, Runner,
};

/// The schema versions this binary knows, in order; each entry migrates from the one before.
const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE jobs (
    id TEXT PRIMARY KEY,
    seq INTEGER NOT NULL UNIQUE,
    phase TEXT NOT NULL,
    status TEXT NOT NULL,
    claim_id TEXT,
    lease_runner TEXT,
    expires_at_ms INTEGER,
    finished_at_ms INTEGER,
    record TEXT NOT NULL
);
CREATE INDEX jobs_queue ON jobs (phase, seq);
CREATE INDEX jobs_claim ON jobs (claim_id) WHERE claim_id IS NOT NULL;
CREATE INDEX jobs_expiry ON jobs (expires_at_ms) WHERE phase IN ('claimed', 'running');
CREATE INDEX jobs_status ON jobs (status, seq);
CREATE INDEX jobs_finished ON jobs (finished_at_ms) WHERE finished_at_ms IS NOT NULL;
CREATE TABLE log_chunks (
    job_id TEXT NOT NULL,
    at INTEGER NOT NULL,
    bytes BLOB NOT NULL,
    PRIMARY KEY (job_id, at)
);
CREATE TABLE inventory (
    runner_id TEXT PRIMARY KEY,
    nodes TEXT NOT NULL,
    reported_at_ms INTEGER NOT NULL
);
"#,
    super::RUNNERS_SCHEMA,
    super::DEFINITIONS_SCHEMA,
    super::INVENTORY_SOURCES_SCHEMA,
    super::LOG_ENCODING_SCHEMA,
];

pub struct Sqlite {
    conn: Mutex<Connection>,
    path: PathBuf,
    /// The database file and its WAL as opened (device, inode): a file removed
    /// or replaced under the server must not take acknowledged writes with it.
    files: Mutex<[Option<(u64, u64)>; 2]>,
}

/// (device, inode) of a file, if it exists.
fn identity(path: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

fn wal(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push("-wal");
    PathBuf::from(name)
}

impl Sqlite {
    /// Open (or create) `dir/control-plane.db` and bring its schema up to date.
    pub fn open(dir: &Path) -> Result<Sqlite> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let path = dir.join("control-plane.db");
        let conn = open(&path).with_context(|| format!("opening {}", path.display()))?;
        let files = [identity(&path), identity(&wal(&path))];
        Ok(Sqlite {
            conn: Mutex::new(conn),
            path,
            files: Mutex::new(files),
        })
    }

    /// After a commit: the files written are still the database's.
    fn still_there(&self) -> Outcome<()> {
        let mut files = self.files.lock().unwrap_or_else(|e| e.into_inner());
        let now = [identity(&self.path), identity(&wal(&self.path))];
        for (known, seen) in files.iter_mut().zip(now) {
            match (*known, seen) {
                (Some(k), Some(s)) if k == s => {}
                (None, Some(s)) => *known = Some(s),
                _ => {
                    return Err(Refusal::Unavailable(format!(
                        "{} or its WAL was removed or replaced while open: restart the \
                         control plane (what was written since is lost)",
                        self.path.display()
                    )))
                }
            }
        }
        Ok(())
    }
}

/// The database, private to the server's user (it holds lease tokens, specs and
/// logs; SQLite gives its WAL the same mode), in WAL mode, migrated.
fn open(path: &Path) -> Result<Connection> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    let mut conn = Connection::open(path)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    migrate(&mut conn)?;
    Ok(conn)
}

fn migrate(conn: &mut Connection) -> Result<()> {
    let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    let version = usize::try_from(version).unwrap_or(usize::MAX);
    if version > MIGRATIONS.len() {
        bail!(
            "the database is at schema version {version}, newer than this binary knows ({}): \
             run a newer sortie-control-plane",
            MIGRATIONS.len()
        );
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(version) {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Exclusive)?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", (i + 1) as i64)?;
        tx.commit()?;
    }
    Ok(())
}

impl Backend for Sqlite {
    fn transaction(&self, work: &mut dyn FnMut(&mut dyn Rows) -> Outcome<()>) -> Outcome<()> {
        let mut conn = self.conn.lock().unwrap_or_else(|e| e.into_inner());
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| Refusal::unavailable("beginning a transaction", e))?;
        work(&mut SqliteRows { tx: &tx })?;
        tx.commit()
            .map_err(|e| Refusal::unavailable("committing", e))?;
        self.still_there()
    }
}

struct SqliteRows<'a> {
    tx: &'a rusqlite::Transaction<'a>,
}

fn db(doing: &'static str) -> impl Fn(rusqlite::Error) -> Refusal {
    move |e| Refusal::unavailable(doing, e)
}

fn decode(record: String) -> Outcome<Job> {
    serde_json::from_str(&record).map_err(|e| Refusal::unavailable("reading a job record", e))
}

const SELECT: &str = "SELECT record FROM jobs";

impl SqliteRows<'_> {
    fn jobs(&self, sql: &str, params: impl rusqlite::Params) -> Outcome<Vec<Job>> {
        let mut stmt = self.tx.prepare_cached(sql).map_err(db("reading jobs"))?;
        let records = stmt
            .query_map(params, |r| r.get::<_, String>(0))
            .map_err(db("reading jobs"))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(db("reading jobs"))?;
        records.into_iter().map(decode).collect()
    }
}

/// The columns of a job row that come from its lease, and its record.
struct Columns<'a> {
    record: String,
    claim_id: Option<&'a str>,
    runner: Option<&'a str>,
    expires: Option<i64>,
}

fn columns(job: &Job) -> Outcome<Columns<'_>> {
    let record = serde_json::to_string(job).map_err(|e| Refusal::unavailable("encoding", e))?;
    let lease = job.lease.as_ref();
    Ok(Columns {
        record,
        claim_id: lease.map(|l| l.claim_id.as_str()),
        runner: lease.map(|l| l.runner.as_str()),
        expires: lease.map(|l| l.expires_at_ms as i64),
    })
}

impl Rows for SqliteRows<'_> {
    fn job(&mut self, id: &str) -> Outcome<Option<Job>> {
        let record: Option<String> = self
            .tx
            .prepare_cached("SELECT record FROM jobs WHERE id = ?1")
            .and_then(|mut s| s.query_row([id], |r| r.get(0)).optional())
            .map_err(db("reading a job"))?;
        record.map(decode).transpose()
    }

    fn insert(&mut self, job: &mut Job) -> Outcome<bool> {
        let exists: bool = self
            .tx
            .query_row(
                "SELECT EXISTS (SELECT 1 FROM jobs WHERE id = ?1)",
                [&job.id],
                |r| r.get(0),
            )
            .map_err(db("checking a job id"))?;
        if exists {
            return Ok(false);
        }
        let seq: i64 = self
            .tx
            .query_row("SELECT COALESCE(MAX(seq) + 1, 0) FROM jobs", [], |r| {
                r.get(0)
            })
            .map_err(db("numbering a job"))?;
        job.seq = seq as u64;
        self.update(job)?;
        Ok(true)
    }

    /// Write the job's row (inserted when new: `insert` numbers it first).
    fn update(&mut self, job: &Job) -> Outcome<()> {
        let Columns {
            record,
            claim_id,
            runner,
            expires,
        } = columns(job)?;
        self.tx
            .prepare_cached(
                "INSERT INTO jobs (id, seq, phase, status, claim_id, lease_runner, \
                 expires_at_ms, finished_at_ms, record, definition, ran_by, created_at_ms) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12) \
                 ON CONFLICT (id) DO UPDATE SET phase = ?3, status = ?4, claim_id = ?5, \
                 lease_runner = ?6, expires_at_ms = ?7, finished_at_ms = ?8, record = ?9, \
                 ran_by = ?11",
            )
            .and_then(|mut s| {
                s.execute(params![
                    job.id,
                    job.seq as i64,
                    job.phase.as_str(),
                    job.status(),
                    claim_id,
                    runner,
                    expires,
                    job.finished_at_ms.map(|t| t as i64),
                    record,
                    job.definition.as_ref().map(|d| d.name.as_str()),
                    job.ran_by,
                    job.created_at_ms.map(|t| t as i64),
                ])
            })
            .map_err(db("writing a job"))?;
        Ok(())
    }

    fn queued(&mut self, after_seq: Option<u64>, limit: usize) -> Outcome<Vec<Job>> {
        let after = after_seq.map_or(-1, |s| s as i64);
        self.jobs(
            "SELECT record FROM jobs WHERE phase = 'queued' AND seq > ?1 ORDER BY seq LIMIT ?2",
            params![after, limit as i64],
        )
    }

    fn claimed_by(&mut self, claim_id: &str, runner: &str) -> Outcome<Vec<Job>> {
        self.jobs(
            "SELECT record FROM jobs WHERE claim_id = ?1 AND lease_runner = ?2 \
             AND phase IN ('claimed', 'running') ORDER BY seq",
            params![claim_id, runner],
        )
    }

    fn expired(&mut self, now_ms: u64, limit: usize) -> Outcome<Vec<Job>> {
        self.jobs(
            "SELECT record FROM jobs WHERE phase IN ('claimed', 'running') \
             AND expires_at_ms <= ?1 ORDER BY expires_at_ms LIMIT ?2",
            params![now_ms as i64, limit as i64],
        )
    }

    fn append_log(&mut self, id: &str, at: u64, chunk: Chunk<'_>) -> Outcome<()> {
        self.tx
            .prepare_cached(
                "INSERT INTO log_chunks (job_id, at, bytes, encoding) VALUES (?1, ?2, ?3, ?4)",
            )
            .and_then(|mut s| s.execute(params![id, at as i64, chunk.stored(), chunk.encoding()]))
            .map_err(db("storing log bytes"))?;
        Ok(())
    }

    fn clear_log(&mut self, id: &str) -> Outcome<()> {
        self.tx
            .execute("DELETE FROM log_chunks WHERE job_id = ?1", [id])
            .map_err(db("clearing a log"))?;
        Ok(())
    }

    fn read_log(&mut self, id: &str, from: u64, sink: &mut LogSink<'_>) -> Outcome<()> {
        let mut stmt = self
            .tx
            .prepare_cached(
                "SELECT at, bytes, encoding FROM log_chunks WHERE job_id = ?1 AND at >= COALESCE( \
                 (SELECT MAX(at) FROM log_chunks WHERE job_id = ?1 AND at <= ?2), 0) ORDER BY at",
            )
            .map_err(db("reading a log"))?;
        let from = from.min(i64::MAX as u64) as i64;
        let mut rows = stmt.query(params![id, from]).map_err(db("reading a log"))?;
        while let Some(row) = rows.next().map_err(db("reading a log"))? {
            let at: i64 = row.get(0).map_err(db("reading a log"))?;
            let encoding: String = row.get(2).map_err(db("reading a log"))?;
            let stored = row.get_ref(1).map_err(db("reading a log"))?;
            let stored = stored
                .as_blob()
                .map_err(|e| Refusal::unavailable("reading a log", e))?;
            if !sink(at as u64, &chunk::load(&encoding, stored)?) {
                break;
            }
        }
        Ok(())
    }

    fn put_inventory(&mut self, runner_id: &str, reported: &Reported) -> Outcome<()> {
        self.tx
            .execute(
                "INSERT INTO inventory (runner_id, nodes, sources, reported_at_ms) \
                 VALUES (?1, ?2, ?3, ?4) ON CONFLICT (runner_id) \
                 DO UPDATE SET nodes = ?2, sources = ?3, reported_at_ms = ?4",
                params![
                    runner_id,
                    reported.nodes.to_string(),
                    reported.sources.to_string(),
                    reported.at_ms as i64
                ],
            )
            .map_err(db("storing an inventory"))?;
        Ok(())
    }

    fn inventory(&mut self) -> Outcome<BTreeMap<String, Reported>> {
        let mut stmt = self
            .tx
            .prepare_cached(
                "SELECT runner_id, nodes, sources, reported_at_ms FROM inventory ORDER BY runner_id",
            )
            .map_err(db("reading inventories"))?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, i64>(3)?,
                ))
            })
            .map_err(db("reading inventories"))?;
        let mut out = BTreeMap::new();
        for row in rows {
            let (runner, nodes, sources, at) = row.map_err(db("reading inventories"))?;
            out.insert(runner, super::reported(&nodes, &sources, at)?);
        }
        Ok(out)
    }

    fn page(&mut self, filter: &Filter, limit: u64, offset: u64) -> Outcome<Page> {
        let limit = limit.min(i64::MAX as u64) as i64;
        let offset = offset.min(i64::MAX as u64) as i64;
        let since = filter.since_ms.map(|t| t.min(i64::MAX as u64) as i64);
        const WHERE: &str = "WHERE (?1 IS NULL OR status = ?1 OR phase = ?1) \
             AND (?2 IS NULL OR definition = ?2) AND (?3 IS NULL OR ran_by = ?3) \
             AND (?4 IS NULL OR created_at_ms >= ?4)";
        let (status, job, runner) = (&filter.status, &filter.job, &filter.runner);
        let jobs = self.jobs(
            &format!("{SELECT} {WHERE} ORDER BY seq LIMIT ?5 OFFSET ?6"),
            params![status, job, runner, since, limit, offset],
        )?;
        let total = self
            .tx
            .query_row(
                &format!("SELECT COUNT(*) FROM jobs {WHERE}"),
                params![status, job, runner, since],
                |r| r.get::<_, i64>(0),
            )
            .map_err(db("counting jobs"))? as u64;
        Ok(Page { jobs, total })
    }

    fn prune(&mut self, before_ms: u64, limit: usize) -> Outcome<usize> {
        let ids: Vec<String> = {
            let mut stmt = self
                .tx
                .prepare_cached(
                    "SELECT id FROM jobs WHERE finished_at_ms IS NOT NULL AND finished_at_ms < ?1 \
                     ORDER BY finished_at_ms LIMIT ?2",
                )
                .map_err(db("finding expired jobs"))?;
            let ids = stmt
                .query_map(params![before_ms as i64, limit as i64], |r| r.get(0))
                .map_err(db("finding expired jobs"))?
                .collect::<Result<_, _>>()
                .map_err(db("finding expired jobs"))?;
            ids
        };
        for id in &ids {
            self.clear_log(id)?;
            self.tx
                .execute("DELETE FROM jobs WHERE id = ?1", [id])
                .map_err(db("removing a job"))?;
        }
        Ok(ids.len())
    }

    fn counts(&mut self) -> Outcome<Vec<(String, String, u64)>> {
        let mut stmt = self
            .tx
            .prepare_cached("SELECT phase, status, COUNT(*) FROM jobs GROUP BY phase, status")
            .map_err(db("counting jobs"))?;
        let rows = stmt
            .query_map([], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get::<_, i64>(2)? as u64))
            })
            .map_err(db("counting jobs"))?;
        rows.collect::<Result<_, _>>().map_err(db("counting jobs"))
    }

    fn runner(&mut self, name: &str) -> Outcome<Option<Runner>> {
        self.runner_where("name", name)
    }

    fn runner_by_hash(&mut self, hash: &str) -> Outcome<Option<Runner>> {
        match self.runner_where("token_hash", hash)? {
            Some(r) => Ok(Some(r)),
            None => self.runner_where("previous_hash", hash),
        }
    }

    fn put_runner(&mut self, runner: &Runner) -> Outcome<()> {
        let record =
            serde_json::to_string(runner).map_err(|e| Refusal::unavailable("encoding", e))?;
        self.tx
            .execute(
                "INSERT INTO runners (name, token_hash, previous_hash, record) \
                 VALUES (?1, ?2, ?3, ?4) ON CONFLICT (name) DO UPDATE SET \
                 token_hash = ?2, previous_hash = ?3, record = ?4",
                params![runner.name, runner.token_hash, runner.previous_hash, record],
            )
            .map_err(db("storing a runner"))?;
        Ok(())
    }

    fn delete_runner(&mut self, name: &str) -> Outcome<bool> {
        let n = self
            .tx
            .execute("DELETE FROM runners WHERE name = ?1", [name])
            .map_err(db("removing a runner"))?;
        Ok(n > 0)
    }

    fn runners(&mut self) -> Outcome<Vec<Runner>> {
        let mut stmt = self
            .tx
            .prepare_cached("SELECT record FROM runners ORDER BY name")
            .map_err(db("reading runners"))?;
        let records = stmt
            .query_map([], |r| r.get::<_, String>(0))
            .map_err(db("reading runners"))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(db("reading runners"))?;
        records.iter().map(|r| decode_runner(r)).collect()
    }

    fn setting_or(&mut self, key: &str, value: &str) -> Outcome<String> {
        self.tx
            .execute(
                "INSERT INTO settings (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO NOTHING",
                [key, value],
            )
            .map_err(db("storing a setting"))?;
        self.tx
            .query_row("SELECT value FROM settings WHERE key = ?1", [key], |r| {
                r.get(0)
            })
            .map_err(db("reading a setting"))
    }

    fn set_setting(&mut self, key: &str, value: &str) -> Outcome<()> {
        self.tx
            .execute(
                "INSERT INTO settings (key, value) VALUES (?1, ?2) \
                 ON CONFLICT (key) DO UPDATE SET value = ?2",
                [key, value],
            )
            .map_err(db("storing a setting"))?;
        Ok(())
    }

    fn definition(&mut self, name: &str, version: Option<u64>) -> Outcome<Option<Definition>> {
        let version = version.map(|v| v.min(i64::MAX as u64) as i64);
        Ok(self
            .records(
                "SELECT record FROM definitions WHERE name = ?1 AND (?2 IS NULL OR version = ?2) \
                 ORDER BY version DESC LIMIT 1",
                params![name, version],
            )?
            .pop())
    }

    fn put_definition(&mut self, definition: &Definition) -> Outcome<bool> {
        let record =
            serde_json::to_string(definition).map_err(|e| Refusal::unavailable("encoding", e))?;
        let n = self
            .tx
            .execute(
                "INSERT INTO definitions (name, version, scheduled, record) \
                 VALUES (?1, ?2, ?3, ?4) ON CONFLICT DO NOTHING",
                params![
                    definition.input.name,
                    definition.version as i64,
                    definition.input.schedule.is_some(),
                    record
                ],
            )
            .map_err(db("storing a definition"))?;
        Ok(n == 1)
    }

    fn definitions(&mut self) -> Outcome<Vec<Definition>> {
        self.records(
            "SELECT d.record FROM definitions d WHERE d.version = \
             (SELECT MAX(version) FROM definitions WHERE name = d.name) ORDER BY d.name",
            [],
        )
    }

    fn scheduled(&mut self) -> Outcome<Vec<(String, u64)>> {
        let mut stmt = self
            .tx
            .prepare_cached(
                "SELECT d.name, d.version FROM definitions d WHERE d.scheduled AND d.version = \
                 (SELECT MAX(version) FROM definitions WHERE name = d.name) ORDER BY d.name",
            )
            .map_err(db("reading schedules"))?;
        let rows = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get::<_, i64>(1)? as u64)))
            .map_err(db("reading schedules"))?;
        rows.collect::<Result<_, _>>()
            .map_err(db("reading schedules"))
    }

    fn schedule_mark(&mut self, name: &str, initial: u64) -> Outcome<(u64, bool)> {
        self.tx
            .execute(
                "INSERT INTO schedule_marks (name, fired_ms, skipping) VALUES (?1, ?2, FALSE) \
                 ON CONFLICT DO NOTHING",
                params![name, initial as i64],
            )
            .map_err(db("storing a schedule mark"))?;
        self.tx
            .query_row(
                "SELECT fired_ms, skipping FROM schedule_marks WHERE name = ?1",
                [name],
                |r| Ok((r.get::<_, i64>(0)? as u64, r.get(1)?)),
            )
            .map_err(db("reading a schedule mark"))
    }

    fn set_schedule_mark(&mut self, name: &str, fired_ms: u64, skipping: bool) -> Outcome<()> {
        self.tx
            .execute(
                "UPDATE schedule_marks SET fired_ms = ?2, skipping = ?3 WHERE name = ?1",
                params![name, fired_ms as i64, skipping],
            )
            .map_err(db("storing a schedule mark"))?;
        Ok(())
    }

    fn prune_audit(&mut self, before_ms: u64, limit: usize) -> Outcome<usize> {
        self.tx
            .execute(
                "DELETE FROM audit WHERE id IN (SELECT id FROM audit WHERE at_ms < ?1 \
                 ORDER BY at_ms LIMIT ?2)",
                params![before_ms.min(i64::MAX as u64) as i64, limit as i64],
            )
            .map_err(db("pruning the audit log"))
    }

    fn active(&mut self, definition: &str) -> Outcome<bool> {
        self.tx
            .query_row(
                "SELECT EXISTS (SELECT 1 FROM jobs WHERE definition = ?1 \
                 AND phase IN ('queued', 'claimed', 'running'))",
                [definition],
                |r| r.get(0),
            )
            .map_err(db("looking for running executions"))
    }

    fn admin_by_hash(&mut self, hash: &str) -> Outcome<Option<Admin>> {
        Ok(self
            .records("SELECT record FROM admins WHERE token_hash = ?1", [hash])?
            .pop())
    }

    fn put_admin(&mut self, admin: &Admin) -> Outcome<bool> {
        let record =
            serde_json::to_string(admin).map_err(|e| Refusal::unavailable("encoding", e))?;
        let n = self
            .tx
            .execute(
                "INSERT INTO admins (name, token_hash, record) VALUES (?1, ?2, ?3) \
                 ON CONFLICT DO NOTHING",
                params![admin.name, admin.token_hash, record],
            )
            .map_err(db("storing an admin"))?;
        Ok(n == 1)
    }

    fn delete_admin(&mut self, name: &str) -> Outcome<bool> {
        let n = self
            .tx
            .execute("DELETE FROM admins WHERE name = ?1", [name])
            .map_err(db("removing an admin"))?;
        Ok(n > 0)
    }

    fn admins(&mut self) -> Outcome<Vec<Admin>> {
        self.records("SELECT record FROM admins ORDER BY name", [])
    }

    fn audit(&mut self, entry: &AuditEntry) -> Outcome<()> {
        let record =
            serde_json::to_string(entry).map_err(|e| Refusal::unavailable("encoding", e))?;
        self.tx
            .execute(
                "INSERT INTO audit (id, at_ms, record) VALUES (?1, ?2, ?3)",
                params![super::audit_id(entry), entry.at_ms as i64, record],
            )
            .map_err(db("writing the audit log"))?;
        Ok(())
    }

    fn audit_log(&mut self, limit: u64) -> Outcome<Vec<AuditEntry>> {
        self.records(
            "SELECT record FROM audit ORDER BY at_ms DESC, rowid DESC LIMIT ?1",
            [limit.min(i64::MAX as u64) as i64],
        )
    }
}

impl SqliteRows<'_> {
    /// The `record` column of each row a query returns, decoded.
    fn records<T: serde::de::DeserializeOwned>(
        &self,
        sql: &str,
        params: impl rusqlite::Params,
    ) -> Outcome<Vec<T>> {
        let mut stmt = self.tx.prepare_cached(sql).map_err(db("reading records"))?;
        let records = stmt
            .query_map(params, |r| r.get::<_, String>(0))
            .map_err(db("reading records"))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(db("reading records"))?;
        records
            .iter()
            .map(|r| {
                serde_json::from_str(r).map_err(|e| Refusal::unavailable("reading a record", e))
            })
            .collect()
    }

    fn runner_where(&mut self, column: &str, value: &str) -> Outcome<Option<Runner>> {
        let record: Option<String> = self
            .tx
            .prepare_cached(&format!("SELECT record FROM runners WHERE {column} = ?1"))
            .and_then(|mut s| s.query_row([value], |r| r.get(0)).optional())
            .map_err(db("reading a runner"))?;
        record.as_deref().map(decode_runner).transpose()
    }
}

fn decode_runner(record: &str) -> Outcome<Runner> {
    serde_json::from_str(record).map_err(|e| Refusal::unavailable("reading a runner record", e))
}
