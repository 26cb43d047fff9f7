//! Steps sortie does itself: data (result data from text) and flow (stop the
//! job here, succeeded or failed), through `sortie exec` and the control plane.

use serde_json::json;

use crate::support::*;

#[test]
fn a_data_step_sets_data_and_a_flow_step_stops_the_job() {
    let out = run(
        sortie()
            .arg("exec")
            .arg(fixture("steps/data-and-flow.yaml")),
        code::OK,
    );
    let text = stdout(&out) + &stderr(&out);
    assert!(text.contains("tagging v2.1"), "{text}");
    assert!(text.contains("tagged v2.1, nothing else to do"), "{text}");
    assert!(!text.contains("does not run"), "{text}");

    // Through the control plane: the data in the completion, a failing flow
    // step ending the job with its message even with keepgoing, later steps
    // not run on any node, and a value never run as code.
    let cp = ControlPlane::start();
    cp.enqueue(json!({
        "id": "flow-fails", "keepgoing": true,
        "options": {"who": "$(touch /tmp/sortie-flow-injected)"},
        "steps": [
            {"data": {"who": "${option.who}", "state": "degraded"}},
            {"shell": "echo state ${data.state}"},
            {"fail": "state is ${data.state}"},
            {"shell": "echo never"},
        ]
    }));
    let state = tempfile::tempdir().unwrap();
    run(&mut cp.poll(state.path()), code::OK);
    let job = cp.job("flow-fails");
    assert_done(&job, "failed");
    let completion = job.completion.unwrap();
    assert_eq!(completion.data["who"], "$(touch /tmp/sortie-flow-injected)");
    assert_eq!(completion.data["state"], "degraded");
    assert!(
        completion
            .error
            .as_deref()
            .unwrap_or("")
            .contains("state is degraded"),
        "{:?}",
        completion.error
    );
    let statuses: Vec<&str> = completion.steps.iter().map(|s| s.status.as_str()).collect();
    assert_eq!(
        statuses,
        ["succeeded", "succeeded", "failed", "skipped"],
        "the step after the flow step never ran"
    );
    let log = output_text(&events(&cp.log("flow-fails")), "stdout");
    assert_eq!(log, "state degraded\n");
    assert!(!std::path::Path::new("/tmp/sortie-flow-injected").exists());
}
