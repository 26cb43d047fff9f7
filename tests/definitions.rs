//! Job definitions run by the real runner: options checked by the control
//! plane and given to the job, a result's data starting a follow-up — a
//! Rundeck job, run unchanged — with options taken from it.

use std::collections::BTreeMap;

use serde_json::json;

use crate::support::*;

#[test]
fn a_result_starts_a_rundeck_follow_up_with_options_from_its_data() {
    let cp = ControlPlane::start();
    let store = cp.server.store();
    let definition = |value: serde_json::Value| serde_json::from_value(value).unwrap();
    let repair = "- name: repair\n  options:\n  - name: service\n    required: true\n  \
                  - name: state\n  sequence:\n    commands:\n    \
                  - exec: echo repairing ${option.service} from ${option.state}\n";
    store
        .load(
            "admin:test",
            definition(json!({
                "name": "repair",
                "spec": {"rundeck": repair},
                "options": [{"name": "service", "required": true}, {"name": "state"}],
            })),
        )
        .unwrap();
    store
        .load(
            "admin:test",
            definition(json!({
                "name": "check",
                "spec": {"steps": [{"shell":
                    "echo checking ${option.service}${option.note}; echo SORTIE:DATA:state=degraded"}]},
                "options": [{"name": "service", "required": true,
                             "description": "shown to whoever runs it"},
                            {"name": "note", "description": "not given: blank"}],
                "follow_ups": [{
                    "on": "succeeded",
                    "if": "data.state == \"degraded\"",
                    "run": "repair",
                    "options": {"service": "${option.service}", "state": "${data.state}"},
                }],
            })),
        )
        .unwrap();
    let options: BTreeMap<String, String> =
        [("service".into(), "web; echo injected".into())].into();
    let check = store.run("admin:test", "check", &options).unwrap();

    let state = tempfile::tempdir().unwrap();
    run(&mut cp.poll(state.path()), code::OK);
    let checked = cp.job(&check);
    assert_done(&checked, "succeeded");
    assert_eq!(
        checked.completion.as_ref().unwrap().data["state"],
        "degraded"
    );
    let text = output_text(&events(&cp.log(&check)), "stdout");
    assert_eq!(
        text, "checking web; echo injected\nSORTIE:DATA:state=degraded\n",
        "the option's value is data, never code"
    );

    let repair_id = checked.follow_ups.first().expect("a follow-up").clone();
    run(&mut cp.poll(state.path()), code::OK);
    let repaired = cp.job(&repair_id);
    assert_done(&repaired, "succeeded");
    assert_eq!(repaired.parent.as_deref(), Some(check.as_str()));
    assert_eq!(repaired.definition.as_ref().unwrap().name, "repair");
    let text = output_text(&events(&cp.log(&repair_id)), "stdout");
    assert_eq!(text, "repairing web; echo injected from degraded\n");
}
