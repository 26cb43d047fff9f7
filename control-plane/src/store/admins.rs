//! Admins with tokens of their own, and the audit log their changes go to.
//!
//! The token given with `--admin-token-file` acts as [`BOOTSTRAP_ADMIN`]; it
//! adds named admins, each with its own `sat_` token (kept, like a runner's,
//! only as a keyed hash) that can be revoked alone. Every change any of them
//! makes — and what schedules and follow-ups start — is recorded in the audit
//! log by the transaction that makes it.

use super::{
    audit, now_ms, random_token, valid_name, Admin, AuditEntry, Outcome, Refusal, Store,
    BOOTSTRAP_ADMIN,
};

/// The prefix of an admin's own token.
pub const ADMIN_TOKEN_PREFIX: &str = "sat_";

impl Store {
    /// Add an admin; its token, shown only now.
    pub fn add_admin(&self, by: &str, name: &str) -> Outcome<(Admin, String)> {
        // Not the bootstrap admin's name, nor one an audit reader could take for it.
        if !valid_name(name) || name.eq_ignore_ascii_case(BOOTSTRAP_ADMIN) {
            return Err(Refusal::Invalid(format!(
                "admin name {name:?} is not [A-Za-z0-9._-]{{1,64}} starting with no dot, \
                 or is {BOOTSTRAP_ADMIN:?}"
            )));
        }
        let token = format!("{ADMIN_TOKEN_PREFIX}{}{}", random_token(), random_token());
        let admin = Admin {
            name: name.to_string(),
            token_hash: self.token_hash(&token)?,
            created_at_ms: now_ms(),
            created_by: by.to_string(),
        };
        self.tx(|rows| match rows.put_admin(&admin)? {
            true => audit(rows, by, "admin.add", name, serde_json::Value::Null),
            false => Err(Refusal::Conflict(format!("admin {name} exists already"))),
        })?;
        Ok((admin, token))
    }

    /// Revoke an admin's token: it stops working with the next request.
    pub fn revoke_admin(&self, by: &str, name: &str) -> Outcome<()> {
        self.tx(|rows| match rows.delete_admin(name)? {
            true => audit(rows, by, "admin.revoke", name, serde_json::Value::Null),
            false => Err(Refusal::NotFound(format!("no admin {name}"))),
        })
    }

    pub fn admins(&self) -> Outcome<Vec<Admin>> {
        self.tx(|rows| rows.admins())
    }

    /// The admin this (`sat_`) token belongs to.
    pub fn authenticate_admin(&self, token: &str) -> Outcome<Option<Admin>> {
        if !token.starts_with(ADMIN_TOKEN_PREFIX) {
            return Ok(None);
        }
        let hash = self.token_hash(token)?;
        self.tx(|rows| rows.admin_by_hash(&hash))
    }

    /// The newest `limit` changes, newest first.
    pub fn audit_log(&self, limit: u64) -> Outcome<Vec<AuditEntry>> {
        self.tx(|rows| rows.audit_log(limit))
    }
}
