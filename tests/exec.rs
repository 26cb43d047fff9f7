//! `sortie exec FILE`: the engine on the terminal, no control plane.

use crate::support::*;

#[test]
fn each_fixture_runs_with_the_expected_outcome() {
    let out = run(sortie().arg("exec").arg(fixture("hello.json")), code::OK);
    assert!(
        stdout(&out).contains("hello from sortie\n"),
        "{}",
        stdout(&out)
    );
    assert!(
        stdout(&out).contains("--- job hello succeeded"),
        "{}",
        stdout(&out)
    );

    let out = run(
        sortie().arg("exec").arg(fixture("multi-step.json")),
        code::OK,
    );
    for line in [
        "data: count=3",
        "data: recovered=yes",
        "data: state=degraded",
    ] {
        assert!(stdout(&out).contains(line), "{line} in {}", stdout(&out));
    }

    let out = run(
        sortie().arg("exec").arg(fixture("failing.json")),
        code::JOB_FAILED,
    );
    assert!(stderr(&out).contains("about to fail"), "{}", stderr(&out));
    assert!(!stdout(&out).contains("must not run"), "{}", stdout(&out));
    assert!(
        stdout(&out).contains("--- job failing failed"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn json_mode_prints_log_format_v1() {
    let out = run(
        sortie()
            .args(["--log-format", "json", "exec"])
            .arg(fixture("multi-step.json")),
        code::OK,
    );
    let events = events(&out.stdout);
    assert_eq!(events.first().unwrap()["kind"], "step_start");
    assert_eq!(events.last().unwrap()["kind"], "step_end");
    let summary: serde_json::Value =
        serde_json::from_str(stderr(&out).lines().last().unwrap()).unwrap();
    assert_eq!(summary["data"]["count"], "3");
}

#[test]
fn hostile_option_values_arrive_byte_for_byte_and_execute_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let canary = dir.path().join("canary");
    let hostile = [
        format!("$(touch {})", canary.display()),
        format!("`touch {}`", canary.display()),
        format!("'; touch {}; '", canary.display()),
        format!("\"; touch {}; \"", canary.display()),
        format!("x\ntouch {}", canary.display()),
        format!("a | touch {} & b", canary.display()),
    ];
    for value in &hostile {
        let out_file = dir.path().join("out");
        let spec = serde_json::json!({
            "id": "hostile",
            "options": { "out": out_file.display().to_string() },
            "steps": [
                { "shell": "printf '%s' ${option.v} > ${option.out}" },
                { "exec": ["sh", "-c", "printf '%s' \"$1\" >> \"$2\"", "sh", "${option.v}", "${option.out}"] }
            ]
        });
        let file = dir.path().join("spec.json");
        std::fs::write(&file, spec.to_string()).unwrap();
        run(
            sortie()
                .arg("exec")
                .arg(&file)
                .arg("-o")
                .arg(format!("v={value}")),
            code::OK,
        );
        assert_eq!(
            std::fs::read_to_string(&out_file).unwrap(),
            format!("{value}{value}")
        );
        assert!(!canary.exists(), "{value:?} executed something");
    }
}

#[test]
fn an_unknown_reference_fails_the_step_before_it_runs() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("spec.json");
    let marker = dir.path().join("ran");
    std::fs::write(
        &file,
        serde_json::json!({
            "id": "unknown-ref",
            "steps": [{ "exec": ["touch", marker.display().to_string(), "${option.missing}"] }]
        })
        .to_string(),
    )
    .unwrap();
    let out = run(sortie().arg("exec").arg(&file), code::JOB_FAILED);
    assert!(stdout(&out).contains("option.missing"), "{}", stdout(&out));
    assert!(!marker.exists());
}

#[test]
fn usage_errors_exit_64_and_help_exits_0() {
    run(sortie().arg("--bogus"), code::USAGE);
    run(&mut sortie(), code::USAGE);
    let out = run(sortie().arg("--help"), code::OK);
    assert!(stdout(&out).contains("poll"));
    run(sortie().arg("--version"), code::OK);
}
