//! The runner's own credentials: taken out of the environment at start-up,
//! masked everywhere from then on.
//!
//! sortie's token, the values its `env:` provider serves, AWS keys and a Bao
//! token may reach it as environment variables. Left there, any process that
//! can read `/proc/PID/environ` sees them, and they would be one slip away from
//! a step's environment. So [`capture`] copies them here and scrubs them from
//! the environment (the values are overwritten where the kernel shows them)
//! before any thread starts; the code that needs one asks [`var`]. Every
//! credential sortie holds — these, the token and client key read from files,
//! Bao tokens it logs in for — is [`register`]ed, and [`masker`] masks them in
//! every byte that leaves the runner, like a job's own secrets.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::secret::Secret;
use crate::secrets::mask::{self, Masker};

/// Variables that are sortie's credentials, besides those with the env provider's prefix.
const CREDENTIALS: &[&str] = &[
    "SORTIE_TOKEN",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "BAO_TOKEN",
    "VAULT_TOKEN",
];

/// Values shorter than this are not masked (they would mask ordinary text).
pub const MIN_MASKED: usize = 4;

#[derive(Default)]
struct Own {
    vars: BTreeMap<String, Secret>,
    values: Vec<Secret>,
    masker: Option<Arc<Masker>>,
}

static OWN: Mutex<Option<Own>> = Mutex::new(None);

fn own() -> MutexGuard<'static, Option<Own>> {
    OWN.lock().unwrap_or_else(|e| e.into_inner())
}

/// Take sortie's credentials out of its environment. Call once, at start-up,
/// before any thread exists.
pub fn capture(env_prefix: &str) {
    let mut taken = Own::default();
    for (name, value) in std::env::vars_os() {
        let Some(name) = name.to_str() else { continue };
        let ours =
            CREDENTIALS.contains(&name) || (!env_prefix.is_empty() && name.starts_with(env_prefix));
        if !ours {
            continue;
        }
        if let Some(value) = value.to_str() {
            let secret = Secret::new(value.to_string());
            taken.values.push(secret.clone());
            taken.vars.insert(name.to_string(), secret);
        }
    }
    let names: Vec<String> = taken.vars.keys().cloned().collect();
    crate::os::scrub_env(&names);
    *own() = Some(taken);
    mask::set_runner_diagnostics(masker);
}

/// A credential variable as sortie found it at start-up.
pub fn var(name: &str) -> Option<Secret> {
    own().as_ref()?.vars.get(name).cloned()
}

/// Mask this credential from now on, in logs, uploads and diagnostics.
pub fn register(value: &Secret) {
    {
        let mut guard = own();
        let own = guard.get_or_insert_with(Own::default);
        if own.values.contains(value) {
            return;
        }
        own.values.push(value.clone());
        own.masker = None;
    }
    mask::set_runner_diagnostics(masker);
}

/// A masker for every credential registered so far.
pub fn masker() -> Arc<Masker> {
    let mut guard = own();
    let own = guard.get_or_insert_with(Own::default);
    if let Some(masker) = &own.masker {
        return masker.clone();
    }
    let masker = Arc::new(build(&own.values));
    own.masker = Some(masker.clone());
    masker
}

/// The credentials registered so far, to mask with a job's own secrets.
pub fn values() -> Vec<Secret> {
    own().as_ref().map(|o| o.values.clone()).unwrap_or_default()
}

/// Whether [`masker`] masks `value` (it is a credential long enough to be).
pub fn masks(value: &Secret) -> bool {
    value.expose().len() >= MIN_MASKED && own().as_ref().is_some_and(|o| o.values.contains(value))
}

fn build(values: &[Secret]) -> Masker {
    let long: Vec<(&str, &Secret)> = values
        .iter()
        .filter(|v| v.expose().len() >= MIN_MASKED)
        .map(|v| ("sortie", v))
        .collect();
    Masker::new(long, MIN_MASKED).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_credential_is_masked_in_diagnostics_whenever_it_was_registered() {
        let said = |text: &str| {
            String::from_utf8(mask::mask_diagnostic(text.as_bytes()).into_owned()).unwrap()
        };
        register(&Secret::new("first-credential-4f1c".to_string()));
        let out = said("token first-credential-4f1c rejected");
        assert!(!out.contains("first-credential"), "{out}");
        // Registered after the masker was built: the next diagnostic masks it too.
        register(&Secret::new("second-credential-9a2e".to_string()));
        let out = said("first-credential-4f1c then second-credential-9a2e");
        assert!(
            !out.contains("first-credential") && !out.contains("second-credential"),
            "{out}"
        );
    }
}
