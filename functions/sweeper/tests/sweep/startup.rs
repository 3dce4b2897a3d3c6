//! What the sweeper accepts as events and settings.

use super::*;

#[test]
fn each_event_source_deserializes_to_its_variant_and_anything_else_is_refused() {
    use jit_sweeper::SweeperEvent;
    assert!(matches!(
        serde_json::from_value(scheduled_event()).unwrap(),
        SweeperEvent::Schedule(_)
    ));
    let http = jit_local::anonymous_event("POST /grants/{id}/revoke", "/grants/x/revoke");
    assert!(matches!(
        serde_json::from_value(http).unwrap(),
        SweeperEvent::Http(_)
    ));
    for other in [
        json!({"Records": []}),
        json!({}),
        json!({"detail-type": "Scheduled Event"}),
    ] {
        assert!(
            serde_json::from_value::<SweeperEvent>(other.clone()).is_err(),
            "{other}"
        );
    }
}

#[test]
fn a_policy_budget_out_of_range_stops_the_function_naming_it() {
    for budget in ["50", "20000", "lots"] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_sweeper"))
            .env(
                "JIT_POLICY_DIR",
                jit_local::workspace_root().join("infra/policies"),
            )
            .env("TABLE_NAME", "unused")
            .env("JIT_REVOCATION_POLICY_BUDGET", budget)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{budget}");
        assert!(
            stderr.contains(&format!(
                "Error: JIT_REVOCATION_POLICY_BUDGET `{budget}` must be 200 to 10240"
            )),
            "{budget}: {stderr}"
        );
    }
}

#[test]
fn activity_windows_out_of_order_or_range_stop_the_function_naming_them() {
    let cases: &[(&[(&str, &str)], &str)] = &[
        (
            &[
                ("JIT_ACTIVITY_SETTLE_SECS", "900"),
                ("JIT_ACTIVITY_RECHECK_SECS", "900"),
            ],
            "Error: JIT_ACTIVITY_RECHECK_SECS `900` must be longer than JIT_ACTIVITY_SETTLE_SECS (900)",
        ),
        (
            &[
                ("JIT_ACTIVITY_SETTLE_SECS", "200"),
                ("JIT_ACTIVITY_LAG_SECS", "300"),
            ],
            "which must be longer than JIT_ACTIVITY_LAG_SECS (300)",
        ),
        (
            &[("JIT_ACTIVITY_CHECKPOINT_SECS", "30")],
            "Error: JIT_ACTIVITY_CHECKPOINT_SECS `30` must be 60 to 86400 seconds",
        ),
    ];
    for (settings, expected) in cases {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_sweeper"))
            .env(
                "JIT_POLICY_DIR",
                jit_local::workspace_root().join("infra/policies"),
            )
            .env("TABLE_NAME", "unused")
            .envs(settings.iter().copied())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{settings:?}");
        assert!(stderr.contains(expected), "{settings:?}: {stderr}");
    }
}
