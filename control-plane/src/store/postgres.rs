//! The PostgreSQL backend, for teams that run several control-plane replicas on
//! one database.
//!
//! Replicas never hand out the same job: a claim takes queued rows with
//! `FOR UPDATE SKIP LOCKED`, so concurrent claims on different replicas pass
//! each other instead of waiting or colliding; every other call locks the one
//! row it changes (`FOR UPDATE`), so the fencing and log-offset rules (409,
//! 416, 412) are checked and applied inside one transaction. Lease expiry runs
//! on every replica: each takes the expired rows no other replica holds (SKIP
//! LOCKED again) and re-checks them under the lock. Migrations run under an
//! advisory lock, so replicas starting together migrate once.
//!
//! The connection is TLS (rustls) checked against `--database-ca-file`; only a
//! server on this machine (a Unix socket, loopback) may be reached without it.
//!
//! The store's calls are synchronous (they run on the server's blocking pool),
//! so this uses the `postgres` client with a small pool of connections; a
//! connection that broke is dropped, and the call answers 503 to be retried.

use std::collections::BTreeMap;
use std::sync::Mutex;

use anyhow::{bail, Context, Result};
use std::path::Path;

use postgres::{Client, NoTls, Row, Transaction};
use tokio_postgres_rustls::MakeRustlsConnect;

use super::{
    chunk, Admin, AuditEntry, Backend, Chunk, Definition, Filter, Job, LogSink, Outcome, Page,
    Refusal, Reported, Rows, Runner,
};

/// The schema versions this binary knows; each entry migrates from the one before.
const MIGRATIONS: &[&str] = &[
    r#"
CREATE SEQUENCE jobs_seq MINVALUE 0 START 0;
CREATE TABLE jobs (
    id TEXT PRIMARY KEY,
    seq BIGINT NOT NULL UNIQUE,
    phase TEXT NOT NULL,
    status TEXT NOT NULL,
    claim_id TEXT,
    lease_runner TEXT,
    expires_at_ms BIGINT,
    finished_at_ms BIGINT,
    record TEXT NOT NULL
);
CREATE INDEX jobs_queue ON jobs (seq) WHERE phase = 'queued';
CREATE INDEX jobs_claim ON jobs (claim_id) WHERE claim_id IS NOT NULL;
CREATE INDEX jobs_expiry ON jobs (expires_at_ms) WHERE phase IN ('claimed', 'running');
CREATE INDEX jobs_status ON jobs (status, seq);
CREATE INDEX jobs_finished ON jobs (finished_at_ms) WHERE finished_at_ms IS NOT NULL;
CREATE TABLE log_chunks (
    job_id TEXT NOT NULL,
    at BIGINT NOT NULL,
    bytes BYTEA NOT NULL,
    PRIMARY KEY (job_id, at)
);
CREATE TABLE inventory (
    runner_id TEXT PRIMARY KEY,
    nodes TEXT NOT NULL,
    reported_at_ms BIGINT NOT NULL
);
"#,
    super::RUNNERS_SCHEMA,
    super::DEFINITIONS_SCHEMA,
    super::INVENTORY_SOURCES_SCHEMA,
    super::LOG_ENCODING_SCHEMA,
];

/// The advisory lock key migrations run under ("sortie" in ASCII).
const MIGRATION_LOCK: i64 = 0x736f_7274_6965;

/// Connections kept open for reuse.
const POOL: usize = 16;

pub struct Postgres {
    config: postgres::Config,
    /// TLS to the server, checked against the CA given; none: a local server.
    tls: Option<MakeRustlsConnect>,
    idle: Mutex<Vec<Client>>,
}

/// Whether every host of `config` is on this machine (a Unix socket or loopback),
/// where the connection need not be encrypted.
fn local(config: &postgres::Config) -> bool {
    config.get_hosts().iter().all(|host| match host {
        postgres::config::Host::Unix(_) => true,
        postgres::config::Host::Tcp(name) => {
            name == "localhost"
                || name
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback())
        }
    })
}

impl Postgres {
    /// Connect with `url` (`postgres://user@host:port/db` or `host=… dbname=…`),
    /// with the password, if any, given apart from it, over TLS checked against
    /// `ca_file` (required for a server on another host); bring the schema up to
    /// date.
    pub fn open(url: &str, password: Option<&str>, ca_file: Option<&Path>) -> Result<Postgres> {
        let mut config: postgres::Config = url
            .parse()
            .context("--database is not a PostgreSQL connection string")?;
        if let Some(password) = password {
            config.password(password);
        }
        config.application_name("sortie-control-plane");
        let tls = match ca_file {
            Some(path) => {
                // With a CA, TLS is required: never a silent fall back to plain text.
                config.ssl_mode(postgres::config::SslMode::Require);
                Some(tls_to(path)?)
            }
            None if local(&config) => None,
            None => bail!(
                "--database names a server on another host: give --database-ca-file so \
                 the connection is encrypted and the server's certificate checked"
            ),
        };
        let db = Postgres {
            config,
            tls,
            idle: Mutex::new(Vec::new()),
        };
        let mut client = db.connect().context("connecting to PostgreSQL")?;
        migrate(&mut client)?;
        db.idle
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(client);
        Ok(db)
    }

    fn connect(&self) -> Result<Client, postgres::Error> {
        match &self.tls {
            Some(tls) => self.config.connect(tls.clone()),
            None => self.config.connect(NoTls),
        }
    }
}

/// A TLS connector trusting only the CAs in `path` (PEM).
fn tls_to(path: &Path) -> Result<MakeRustlsConnect> {
    use rustls::pki_types::{pem::PemObject, CertificateDer};
    let pem = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&pem) {
        roots
            .add(cert.with_context(|| format!("parsing {}", path.display()))?)
            .with_context(|| format!("adding a CA from {}", path.display()))?;
    }
    if roots.is_empty() {
        bail!("{} holds no certificate", path.display());
    }
    let config = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(MakeRustlsConnect::new(config))
}

fn migrate(client: &mut Client) -> Result<()> {
    client.execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK])?;
    let result = (|| -> Result<()> {
        client.batch_execute(
            "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL); \
             INSERT INTO schema_version SELECT 0 WHERE NOT EXISTS (SELECT 1 FROM schema_version)",
        )?;
        let version: i32 = client
            .query_one("SELECT version FROM schema_version", &[])?
            .get(0);
        let version = usize::try_from(version).unwrap_or(usize::MAX);
        if version > MIGRATIONS.len() {
            bail!(
                "the database is at schema version {version}, newer than this binary knows ({}): \
                 run a newer sortie-control-plane",
                MIGRATIONS.len()
            );
        }
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(version) {
            let mut tx = client.transaction()?;
            tx.batch_execute(sql)?;
            tx.execute(
                "UPDATE schema_version SET version = $1",
                &[&((i + 1) as i32)],
            )?;
            tx.commit()?;
        }
        Ok(())
    })();
    client.execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK])?;
    result.context("migrating the PostgreSQL schema")
}

impl Backend for Postgres {
    fn transaction(&self, work: &mut dyn FnMut(&mut dyn Rows) -> Outcome<()>) -> Outcome<()> {
        let idle = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let mut client = match idle {
            Some(client) if !client.is_closed() => client,
            _ => self
                .connect()
                .map_err(|e| Refusal::unavailable("connecting to PostgreSQL", e))?,
        };
        let outcome = (|| {
            let mut tx = client
                .transaction()
                .map_err(|e| Refusal::unavailable("beginning a transaction", e))?;
            work(&mut PgRows { tx: &mut tx })?;
            tx.commit()
                .map_err(|e| Refusal::unavailable("committing", e))
        })();
        if !client.is_closed() {
            let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
            if idle.len() < POOL {
                idle.push(client);
            }
        }
        outcome
    }
}

struct PgRows<'a, 'b> {
    tx: &'a mut Transaction<'b>,
}

fn db(doing: &'static str) -> impl Fn(postgres::Error) -> Refusal {
    move |e| Refusal::unavailable(doing, e)
}

fn decode(row: &Row) -> Outcome<Job> {
    let record: &str = row.get(0);
    serde_json::from_str(record).map_err(|e| Refusal::unavailable("reading a job record", e))
}

impl PgRows<'_, '_> {
    fn jobs(
        &mut self,
        sql: &str,
        params: &[&(dyn postgres::types::ToSql + Sync)],
    ) -> Outcome<Vec<Job>> {
        self.records(sql, params)
    }

    /// The `record` column of each row a query returns, decoded.
    fn records<T: serde::de::DeserializeOwned>(
        &mut self,
        sql: &str,
        params: &[&(dyn postgres::types::ToSql + Sync)],
    ) -> Outcome<Vec<T>> {
        let rows = self.tx.query(sql, params).map_err(db("reading records"))?;
        rows.iter()
            .map(|row| {
                serde_json::from_str(row.get::<_, &str>(0))
                    .map_err(|e| Refusal::unavailable("reading a record", e))
            })
            .collect()
    }
}

impl Rows for PgRows<'_, '_> {
    fn job(&mut self, id: &str) -> Outcome<Option<Job>> {
        let row = self
            .tx
            .query_opt("SELECT record FROM jobs WHERE id = $1 FOR UPDATE", &[&id])
            .map_err(db("reading a job"))?;
        row.as_ref().map(decode).transpose()
    }

    fn insert(&mut self, job: &mut Job) -> Outcome<bool> {
        let seq: i64 = self
            .tx
            .query_one("SELECT nextval('jobs_seq')", &[])
            .map_err(db("numbering a job"))?
            .get(0);
        job.seq = seq as u64;
        let record = serde_json::to_string(job).map_err(|e| Refusal::unavailable("encoding", e))?;
        let inserted = self
            .tx
            .execute(
                "INSERT INTO jobs (id, seq, phase, status, finished_at_ms, record, definition, \
                 created_at_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
                 ON CONFLICT (id) DO NOTHING",
                &[
                    &job.id,
                    &seq,
                    &job.phase.as_str(),
                    &job.status(),
                    &job.finished_at_ms.map(|t| t as i64),
                    &record,
                    &job.definition.as_ref().map(|d| d.name.as_str()),
                    &job.created_at_ms.map(|t| t as i64),
                ],
            )
            .map_err(db("inserting a job"))?;
        if inserted == 1 && job.lease.is_some() {
            // A job brought in with its lease (a migration): its lease columns too.
            self.update(job)?;
        }
        Ok(inserted == 1)
    }

    fn update(&mut self, job: &Job) -> Outcome<()> {
        let record = serde_json::to_string(job).map_err(|e| Refusal::unavailable("encoding", e))?;
        let lease = job.lease.as_ref();
        self.tx
            .execute(
                "UPDATE jobs SET phase = $2, status = $3, claim_id = $4, lease_runner = $5, \
                 expires_at_ms = $6, finished_at_ms = $7, record = $8, ran_by = $9 WHERE id = $1",
                &[
                    &job.id,
                    &job.phase.as_str(),
                    &job.status(),
                    &lease.map(|l| l.claim_id.as_str()),
                    &lease.map(|l| l.runner.as_str()),
                    &lease.map(|l| l.expires_at_ms as i64),
                    &job.finished_at_ms.map(|t| t as i64),
                    &record,
                    &job.ran_by,
                ],
            )
            .map_err(db("updating a job"))?;
        Ok(())
    }

    fn queued(&mut self, after_seq: Option<u64>, limit: usize) -> Outcome<Vec<Job>> {
        let after = after_seq.map_or(-1, |s| s as i64);
        self.jobs(
            "SELECT record FROM jobs WHERE phase = 'queued' AND seq > $1 ORDER BY seq LIMIT $2 \
             FOR UPDATE SKIP LOCKED",
            &[&after, &(limit as i64)],
        )
    }

    fn claimed_by(&mut self, claim_id: &str, runner: &str) -> Outcome<Vec<Job>> {
        self.jobs(
            "SELECT record FROM jobs WHERE claim_id = $1 AND lease_runner = $2 \
             AND phase IN ('claimed', 'running') ORDER BY seq",
            &[&claim_id, &runner],
        )
    }

    fn expired(&mut self, now_ms: u64, limit: usize) -> Outcome<Vec<Job>> {
        self.jobs(
            "SELECT record FROM jobs WHERE phase IN ('claimed', 'running') \
             AND expires_at_ms <= $1 ORDER BY expires_at_ms LIMIT $2 FOR UPDATE SKIP LOCKED",
            &[&(now_ms as i64), &(limit as i64)],
        )
    }

    fn append_log(&mut self, id: &str, at: u64, chunk: Chunk<'_>) -> Outcome<()> {
        self.tx
            .execute(
                "INSERT INTO log_chunks (job_id, at, bytes, encoding) VALUES ($1, $2, $3, $4)",
                &[&id, &(at as i64), &chunk.stored(), &chunk.encoding()],
            )
            .map_err(db("storing log bytes"))?;
        Ok(())
    }

    fn clear_log(&mut self, id: &str) -> Outcome<()> {
        self.tx
            .execute("DELETE FROM log_chunks WHERE job_id = $1", &[&id])
            .map_err(db("clearing a log"))?;
        Ok(())
    }

    fn read_log(&mut self, id: &str, from: u64, sink: &mut LogSink<'_>) -> Outcome<()> {
        let from = from.min(i64::MAX as u64) as i64;
        let rows = self
            .tx
            .query(
                "SELECT at, bytes, encoding FROM log_chunks WHERE job_id = $1 AND at >= COALESCE( \
                 (SELECT MAX(at) FROM log_chunks WHERE job_id = $1 AND at <= $2), 0) ORDER BY at",
                &[&id, &from],
            )
            .map_err(db("reading a log"))?;
        for row in &rows {
            let plain = chunk::load(row.get::<_, &str>(2), row.get::<_, &[u8]>(1))?;
            if !sink(row.get::<_, i64>(0) as u64, &plain) {
                break;
            }
        }
        Ok(())
    }

    fn put_inventory(&mut self, runner_id: &str, reported: &Reported) -> Outcome<()> {
        self.tx
            .execute(
                "INSERT INTO inventory (runner_id, nodes, sources, reported_at_ms) \
                 VALUES ($1, $2, $3, $4) ON CONFLICT (runner_id) \
                 DO UPDATE SET nodes = $2, sources = $3, reported_at_ms = $4",
                &[
                    &runner_id,
                    &reported.nodes.to_string(),
                    &reported.sources.to_string(),
                    &(reported.at_ms as i64),
                ],
            )
            .map_err(db("storing an inventory"))?;
        Ok(())
    }

    fn inventory(&mut self) -> Outcome<BTreeMap<String, Reported>> {
        let rows = self
            .tx
            .query(
                "SELECT runner_id, nodes, sources, reported_at_ms FROM inventory ORDER BY runner_id",
                &[],
            )
            .map_err(db("reading inventories"))?;
        let mut out = BTreeMap::new();
        for row in &rows {
            let reported = super::reported(row.get(1), row.get(2), row.get(3))?;
            out.insert(row.get::<_, String>(0), reported);
        }
        Ok(out)
    }

    fn page(&mut self, filter: &Filter, limit: u64, offset: u64) -> Outcome<Page> {
        let limit = limit.min(i64::MAX as u64) as i64;
        let offset = offset.min(i64::MAX as u64) as i64;
        let since = filter.since_ms.map(|t| t.min(i64::MAX as u64) as i64);
        const WHERE: &str = "WHERE ($1::TEXT IS NULL OR status = $1 OR phase = $1) \
             AND ($2::TEXT IS NULL OR definition = $2) AND ($3::TEXT IS NULL OR ran_by = $3) \
             AND ($4::BIGINT IS NULL OR created_at_ms >= $4)";
        let (status, job, runner) = (&filter.status, &filter.job, &filter.runner);
        let jobs = self.jobs(
            &format!("SELECT record FROM jobs {WHERE} ORDER BY seq LIMIT $5 OFFSET $6"),
            &[status, job, runner, &since, &limit, &offset],
        )?;
        let total: i64 = self
            .tx
            .query_one(
                &format!("SELECT COUNT(*) FROM jobs {WHERE}"),
                &[status, job, runner, &since],
            )
            .map_err(db("counting jobs"))?
            .get(0);
        Ok(Page {
            jobs,
            total: total as u64,
        })
    }

    fn prune(&mut self, before_ms: u64, limit: usize) -> Outcome<usize> {
        let rows = self
            .tx
            .query(
                "DELETE FROM jobs WHERE id IN (SELECT id FROM jobs WHERE finished_at_ms < $1 \
                 ORDER BY finished_at_ms LIMIT $2 FOR UPDATE SKIP LOCKED) RETURNING id",
                &[&(before_ms as i64), &(limit as i64)],
            )
            .map_err(db("removing expired jobs"))?;
        for row in &rows {
            self.clear_log(row.get::<_, &str>(0))?;
        }
        Ok(rows.len())
    }

    fn counts(&mut self) -> Outcome<Vec<(String, String, u64)>> {
        let rows = self
            .tx
            .query(
                "SELECT phase, status, COUNT(*) FROM jobs GROUP BY phase, status",
                &[],
            )
            .map_err(db("counting jobs"))?;
        Ok(rows
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get::<_, i64>(2) as u64))
            .collect())
    }

    fn runner(&mut self, name: &str) -> Outcome<Option<Runner>> {
        let row = self
            .tx
            .query_opt(
                "SELECT record FROM runners WHERE name = $1 FOR UPDATE",
                &[&name],
            )
            .map_err(db("reading a runner"))?;
        row.as_ref().map(decode_runner).transpose()
    }

    fn runner_by_hash(&mut self, hash: &str) -> Outcome<Option<Runner>> {
        let row = self
            .tx
            .query_opt(
                "SELECT record FROM runners WHERE token_hash = $1 OR previous_hash = $1",
                &[&hash],
            )
            .map_err(db("reading a runner"))?;
        row.as_ref().map(decode_runner).transpose()
    }

    fn put_runner(&mut self, runner: &Runner) -> Outcome<()> {
        let record =
            serde_json::to_string(runner).map_err(|e| Refusal::unavailable("encoding", e))?;
        self.tx
            .execute(
                "INSERT INTO runners (name, token_hash, previous_hash, record) \
                 VALUES ($1, $2, $3, $4) ON CONFLICT (name) DO UPDATE SET \
                 token_hash = $2, previous_hash = $3, record = $4",
                &[
                    &runner.name,
                    &runner.token_hash,
                    &runner.previous_hash,
                    &record,
                ],
            )
            .map_err(db("storing a runner"))?;
        Ok(())
    }

    fn delete_runner(&mut self, name: &str) -> Outcome<bool> {
        let n = self
            .tx
            .execute("DELETE FROM runners WHERE name = $1", &[&name])
            .map_err(db("removing a runner"))?;
        Ok(n > 0)
    }

    fn runners(&mut self) -> Outcome<Vec<Runner>> {
        let rows = self
            .tx
            .query("SELECT record FROM runners ORDER BY name", &[])
            .map_err(db("reading runners"))?;
        rows.iter().map(decode_runner).collect()
    }

    fn setting_or(&mut self, key: &str, value: &str) -> Outcome<String> {
        self.tx
            .execute(
                "INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING",
                &[&key, &value],
            )
            .map_err(db("storing a setting"))?;
        let row = self
            .tx
            .query_one("SELECT value FROM settings WHERE key = $1", &[&key])
            .map_err(db("reading a setting"))?;
        Ok(row.get(0))
    }

    fn set_setting(&mut self, key: &str, value: &str) -> Outcome<()> {
        self.tx
            .execute(
                "INSERT INTO settings (key, value) VALUES ($1, $2) \
                 ON CONFLICT (key) DO UPDATE SET value = $2",
                &[&key, &value],
            )
            .map_err(db("storing a setting"))?;
        Ok(())
    }

    fn definition(&mut self, name: &str, version: Option<u64>) -> Outcome<Option<Definition>> {
        let version = version.map(|v| v.min(i64::MAX as u64) as i64);
        Ok(self
            .records(
                "SELECT record FROM definitions WHERE name = $1 \
                 AND ($2::BIGINT IS NULL OR version = $2) ORDER BY version DESC LIMIT 1",
                &[&name, &version],
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
                 VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
                &[
                    &definition.input.name,
                    &(definition.version as i64),
                    &definition.input.schedule.is_some(),
                    &record,
                ],
            )
            .map_err(db("storing a definition"))?;
        Ok(n == 1)
    }

    fn definitions(&mut self) -> Outcome<Vec<Definition>> {
        self.records(
            "SELECT DISTINCT ON (name) record FROM definitions ORDER BY name, version DESC",
            &[],
        )
    }

    fn scheduled(&mut self) -> Outcome<Vec<(String, u64)>> {
        let rows = self
            .tx
            .query(
                "SELECT name, version FROM (SELECT DISTINCT ON (name) name, version, scheduled \
                 FROM definitions ORDER BY name, version DESC) latest WHERE scheduled",
                &[],
            )
            .map_err(db("reading schedules"))?;
        Ok(rows
            .iter()
            .map(|r| (r.get(0), r.get::<_, i64>(1) as u64))
            .collect())
    }

    fn schedule_mark(&mut self, name: &str, initial: u64) -> Outcome<(u64, bool)> {
        self.tx
            .execute(
                "INSERT INTO schedule_marks (name, fired_ms, skipping) VALUES ($1, $2, FALSE) \
                 ON CONFLICT DO NOTHING",
                &[&name, &(initial as i64)],
            )
            .map_err(db("storing a schedule mark"))?;
        let row = self
            .tx
            .query_one(
                "SELECT fired_ms, skipping FROM schedule_marks WHERE name = $1 FOR UPDATE",
                &[&name],
            )
            .map_err(db("reading a schedule mark"))?;
        Ok((row.get::<_, i64>(0) as u64, row.get(1)))
    }

    fn set_schedule_mark(&mut self, name: &str, fired_ms: u64, skipping: bool) -> Outcome<()> {
        self.tx
            .execute(
                "UPDATE schedule_marks SET fired_ms = $2, skipping = $3 WHERE name = $1",
                &[&name, &(fired_ms as i64), &skipping],
            )
            .map_err(db("storing a schedule mark"))?;
        Ok(())
    }

    fn prune_audit(&mut self, before_ms: u64, limit: usize) -> Outcome<usize> {
        let n = self
            .tx
            .execute(
                "DELETE FROM audit WHERE id IN (SELECT id FROM audit WHERE at_ms < $1 \
                 ORDER BY at_ms LIMIT $2 FOR UPDATE SKIP LOCKED)",
                &[&(before_ms.min(i64::MAX as u64) as i64), &(limit as i64)],
            )
            .map_err(db("pruning the audit log"))?;
        Ok(n as usize)
    }

    fn active(&mut self, definition: &str) -> Outcome<bool> {
        let row = self
            .tx
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM jobs WHERE definition = $1 \
                 AND phase IN ('queued', 'claimed', 'running'))",
                &[&definition],
            )
            .map_err(db("looking for running executions"))?;
        Ok(row.get(0))
    }

    fn admin_by_hash(&mut self, hash: &str) -> Outcome<Option<Admin>> {
        Ok(self
            .records("SELECT record FROM admins WHERE token_hash = $1", &[&hash])?
            .pop())
    }

    fn put_admin(&mut self, admin: &Admin) -> Outcome<bool> {
        let record =
            serde_json::to_string(admin).map_err(|e| Refusal::unavailable("encoding", e))?;
        let n = self
            .tx
            .execute(
                "INSERT INTO admins (name, token_hash, record) VALUES ($1, $2, $3) \
                 ON CONFLICT DO NOTHING",
                &[&admin.name, &admin.token_hash, &record],
            )
            .map_err(db("storing an admin"))?;
        Ok(n == 1)
    }

    fn delete_admin(&mut self, name: &str) -> Outcome<bool> {
        let n = self
            .tx
            .execute("DELETE FROM admins WHERE name = $1", &[&name])
            .map_err(db("removing an admin"))?;
        Ok(n > 0)
    }

    fn admins(&mut self) -> Outcome<Vec<Admin>> {
        self.records("SELECT record FROM admins ORDER BY name", &[])
    }

    fn audit(&mut self, entry: &AuditEntry) -> Outcome<()> {
        let record =
            serde_json::to_string(entry).map_err(|e| Refusal::unavailable("encoding", e))?;
        self.tx
            .execute(
                "INSERT INTO audit (id, at_ms, record) VALUES ($1, $2, $3)",
                &[&super::audit_id(entry), &(entry.at_ms as i64), &record],
            )
            .map_err(db("writing the audit log"))?;
        Ok(())
    }

    fn audit_log(&mut self, limit: u64) -> Outcome<Vec<AuditEntry>> {
        self.records(
            "SELECT record FROM audit ORDER BY at_ms DESC, id DESC LIMIT $1",
            &[&(limit.min(i64::MAX as u64) as i64)],
        )
    }
}

fn decode_runner(row: &Row) -> Outcome<Runner> {
    let record: &str = row.get(0);
    serde_json::from_str(record).map_err(|e| Refusal::unavailable("reading a runner record", e))
}
