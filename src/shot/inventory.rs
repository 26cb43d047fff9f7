//! A shot's inventory report: at most every `--inventory-every`, what
//! discovery finds goes to the control plane with `PUT v1/inventory`, after
//! the shot's jobs and within its time. A report that fails is logged and
//! tried again by the next shot; it never fails the shot or its jobs. The
//! time of the last report that was taken is kept in the state dir.

use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use sortie_protocol::InventoryRequest;

use crate::control::Endpoint;
use crate::discover::{self, Config};

/// `--inventory-every` and the sources.
#[derive(Debug, Clone)]
pub struct Reporting {
    pub config: Config,
    pub every: Duration,
}

/// The largest report sent (the reference control plane takes bodies of up
/// to 8 MiB).
const MAX_REPORT: usize = 8 << 20;

/// The state dir's record of the last report taken (seconds since the epoch).
const MARK: &str = "inventory-reported";

/// The longest a report may keep retrying a control plane that does not take it.
const SEND_BUDGET: Duration = Duration::from_secs(10);

/// Report the inventory if it is due and the shot has the time.
pub fn report_if_due(
    reporting: &Reporting,
    endpoint: &Endpoint,
    state_dir: &Path,
    runner_id: &str,
    deadline: Option<Instant>,
) {
    let mark = state_dir.join(MARK);
    let now = SystemTime::now();
    // A mark that is not a time before now (garbage, a clock that ran ahead)
    // is no mark: the inventory is reported.
    let last = crate::state::files::read_regular(&mark, 64)
        .ok()
        .and_then(|t| String::from_utf8(t).ok()?.trim().parse::<u64>().ok())
        .and_then(|s| UNIX_EPOCH.checked_add(Duration::from_secs(s)))
        .filter(|l| *l <= now);
    if last.is_some_and(|l| now.duration_since(l).unwrap_or_default() < reporting.every) {
        tracing::debug!("the inventory is not due");
        return;
    }
    let mut config = reporting.config.clone();
    if let Some(deadline) = deadline {
        // Room to send it once found.
        let left = deadline.saturating_duration_since(Instant::now());
        let room = left.saturating_sub(Duration::from_secs(2));
        if room < Duration::from_secs(1) {
            tracing::info!("no time left in this shot for the inventory: a later shot reports it");
            return;
        }
        config.timeout = config.timeout.min(room);
        for source in &mut config.sources {
            source.timeout = source.timeout.map(|t| t.min(room));
        }
    }
    let found = discover::discover(&config, &mask);
    for source in &found.sources {
        if let Some(why) = &source.error {
            tracing::warn!("inventory source {}: {why}", source.name);
        }
    }
    let body = InventoryRequest {
        runner_id: runner_id.to_string(),
        nodes: match discover::resource_json(&found) {
            serde_json::Value::Object(map) => map.into_iter().collect(),
            _ => Default::default(),
        },
        sources: found
            .sources
            .iter()
            .filter_map(|s| serde_json::to_value(s).ok())
            .collect(),
    };
    let size = serde_json::to_vec(&body).map_or(0, |b| b.len());
    if size > MAX_REPORT {
        tracing::warn!(
            "the inventory is {} KiB, more than a control plane takes ({} KiB): not reported \
             (narrow the sources)",
            size >> 10,
            MAX_REPORT >> 10
        );
        return;
    }
    let until = Instant::now() + SEND_BUDGET;
    let sent = super::control_plane(endpoint, Some(deadline.map_or(until, |d| d.min(until))))
        .and_then(|cp| cp.put_inventory(&body).map_err(|e| anyhow::anyhow!("{e}")));
    match sent {
        Ok(true) => {
            let secs = now.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
            if let Err(e) =
                crate::state::files::write_durably(&mark, secs.to_string().as_bytes(), 0o600)
            {
                tracing::warn!("cannot record when the inventory was reported: {e}");
            }
            tracing::info!("reported the inventory: {} node(s)", body.nodes.len());
        }
        Ok(false) => tracing::debug!("this control plane takes no inventory"),
        Err(e) => tracing::warn!("the inventory was not reported (the next shot tries again): {e}"),
    }
}

/// `value` with every credential the runner knows masked (its token, keys,
/// a source's own credentials, registered as they are read).
pub fn mask(value: &str) -> String {
    crate::secrets::own::masker().mask_str(value).into_owned()
}
