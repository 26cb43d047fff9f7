//! The admin API of job definitions and their runs, named admins, and the
//! audit log.

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Extension;
use serde::Deserialize;

use super::{answer, bad_request, body, json, store, Acting, Shared};
use crate::store::{now_ms, rfc3339, Definition, DefinitionInput};

/// The admin view of a definition version: times in RFC 3339, and when its
/// schedule fires next.
pub fn definition_view(definition: &Definition) -> serde_json::Value {
    let mut input = definition.input.clone();
    // A secure option's default and scheduled value are not shown.
    for def in input.options.iter_mut().filter(|d| d.secure) {
        if let Some(default) = def.default.as_mut() {
            *default = "(secure)".into();
        }
        if let Some(value) = input
            .schedule
            .as_mut()
            .and_then(|s| s.options.get_mut(&def.name))
        {
            *value = "(secure)".into();
        }
    }
    let mut view = serde_json::to_value(&input).unwrap_or_default();
    view["version"] = definition.version.into();
    view["created_at"] = rfc3339(definition.created_at_ms).into();
    view["created_by"] = definition.created_by.clone().into();
    if let Some(schedule) = &definition.input.schedule {
        view["next_fire"] = schedule.next_fire(now_ms()).map(rfc3339).into();
    }
    view
}

/// `POST /admin/definitions`: 201 with the new version, or 200 with the
/// latest one when it is the same definition.
pub async fn load_definition(
    State(api): State<Shared>,
    Extension(Acting(by)): Extension<Acting>,
    bytes: Bytes,
) -> Response {
    let input: DefinitionInput = match body(&bytes) {
        Ok(d) => d,
        Err(bad) => return bad.into_response(),
    };
    match store(&api, move |s| s.load(&by, input)).await {
        Ok((definition, new)) => {
            let status = if new {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            };
            json(status, &definition_view(&definition))
        }
        Err(refusal) => refusal.into_response(),
    }
}

pub async fn list_definitions(State(api): State<Shared>) -> Response {
    answer(store(&api, |s| s.definitions()).await.map(|all| {
        let views: Vec<_> = all.iter().map(definition_view).collect();
        serde_json::json!({ "definitions": views })
    }))
}

#[derive(Deserialize)]
pub struct VersionQuery {
    version: Option<String>,
}

pub async fn show_definition(
    State(api): State<Shared>,
    Path(name): Path<String>,
    Query(query): Query<VersionQuery>,
) -> Response {
    let version = match query.version.map(|v| v.parse::<u64>()) {
        None => None,
        Some(Ok(v)) => Some(v),
        Some(Err(_)) => return bad_request("version: a number"),
    };
    let wanted = name.clone();
    match store(&api, move |s| s.definition(&wanted, version)).await {
        Ok(Some(definition)) => json(StatusCode::OK, &definition_view(&definition)),
        Ok(None) => {
            let which = version.map(|v| format!(" version {v}")).unwrap_or_default();
            super::problem(
                StatusCode::NOT_FOUND,
                "not found",
                format!("no job {name}{which}"),
            )
        }
        Err(refusal) => refusal.into_response(),
    }
}

/// `POST /admin/definitions/NAME/run` body.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Run {
    #[serde(default)]
    options: BTreeMap<String, String>,
}

pub async fn run_definition(
    State(api): State<Shared>,
    Extension(Acting(by)): Extension<Acting>,
    Path(name): Path<String>,
    bytes: Bytes,
) -> Response {
    let req: Run = if bytes.is_empty() {
        Run::default()
    } else {
        match body(&bytes) {
            Ok(r) => r,
            Err(bad) => return bad.into_response(),
        }
    };
    match store(&api, move |s| s.run(&by, &name, &req.options)).await {
        Ok(id) => {
            api.work.notify_waiters();
            json(StatusCode::CREATED, &serde_json::json!({ "id": id }))
        }
        Err(refusal) => refusal.into_response(),
    }
}

/// `POST /admin/admins` body.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AddAdmin {
    name: String,
}

fn admin_view(admin: &crate::store::Admin) -> serde_json::Value {
    serde_json::json!({
        "name": admin.name,
        "created_at": rfc3339(admin.created_at_ms),
        "created_by": admin.created_by,
    })
}

pub async fn add_admin(
    State(api): State<Shared>,
    Extension(Acting(by)): Extension<Acting>,
    bytes: Bytes,
) -> Response {
    let req: AddAdmin = match body(&bytes) {
        Ok(r) => r,
        Err(bad) => return bad.into_response(),
    };
    match store(&api, move |s| s.add_admin(&by, &req.name)).await {
        Ok((admin, token)) => {
            let mut view = admin_view(&admin);
            view["token"] = token.into();
            json(StatusCode::CREATED, &view)
        }
        Err(refusal) => refusal.into_response(),
    }
}

pub async fn list_admins(State(api): State<Shared>) -> Response {
    answer(store(&api, |s| s.admins()).await.map(|admins| {
        let views: Vec<_> = admins.iter().map(admin_view).collect();
        serde_json::json!({ "admins": views })
    }))
}

pub async fn revoke_admin(
    State(api): State<Shared>,
    Extension(Acting(by)): Extension<Acting>,
    Path(name): Path<String>,
) -> Response {
    answer(
        store(&api, move |s| s.revoke_admin(&by, &name))
            .await
            .map(|()| serde_json::json!({})),
    )
}

#[derive(Deserialize)]
pub struct AuditQuery {
    limit: Option<String>,
}

/// `GET /admin/audit?limit=N`: the newest changes first (100 by default).
pub async fn audit_log(State(api): State<Shared>, Query(query): Query<AuditQuery>) -> Response {
    let limit = match query.limit.map(|l| l.parse::<u64>()) {
        None => 100,
        Some(Ok(l)) => l,
        Some(Err(_)) => return bad_request("limit: a number"),
    };
    answer(
        store(&api, move |s| s.audit_log(limit))
            .await
            .map(|entries| {
                let views: Vec<_> = entries
                    .iter()
                    .map(|e| {
                        serde_json::json!({
                            "at": rfc3339(e.at_ms),
                            "by": e.by,
                            "action": e.action,
                            "target": e.target,
                            "detail": e.detail,
                        })
                    })
                    .collect();
                serde_json::json!({ "entries": views })
            }),
    )
}
