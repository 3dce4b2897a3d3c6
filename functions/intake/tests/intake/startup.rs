//! The real `intake` binary refuses to start on a bad policy set and says where to look.

use std::process::Command;

/// Runs the real `intake` binary with `env` added; what it wrote to stderr, once it has
/// failed to start.
fn failed_start(env: &[(&str, &str)]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_intake"))
        .envs(env.iter().copied())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "it started: {stderr}");
    stderr
}

/// The example policies' directory.
fn examples() -> String {
    let dir = jit_local::workspace_root().join("infra/policies");
    dir.to_str().unwrap().to_owned()
}

#[test]
fn a_bad_policy_stops_the_function_at_start_up_naming_file_and_line() {
    let dir = jit_local::policy_dir(
        &format!("bad-policies-{}", std::process::id()),
        &["schema.cedarschema", "targets.json", "access.cedar"],
        (
            "broken.cedar",
            "// an approval rule\n\npermit (principal, action == Jit::Action::\"Approve\", resource)\nwhen { resource.teir == \"admin\" };\n",
        ),
    )
    .unwrap();
    let stderr = failed_start(&[
        ("JIT_POLICY_DIR", dir.to_str().unwrap()),
        ("TABLE_NAME", "unused"),
    ]);
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(stderr.contains("policies: broken.cedar:4:"), "{stderr}");
    assert!(stderr.contains("teir"), "{stderr}");
}

#[test]
fn a_missing_policy_directory_is_named() {
    let stderr = failed_start(&[("JIT_POLICY_DIR", "/nonexistent/policies")]);
    assert!(
        stderr.contains("cannot read `/nonexistent/policies"),
        "{stderr}"
    );
}

#[test]
fn a_ticket_pattern_that_does_not_compile_stops_the_function_naming_it() {
    let stderr = failed_start(&[
        ("JIT_POLICY_DIR", &examples()),
        ("TABLE_NAME", "unused"),
        ("JIT_TICKET_PATTERN", "[A-Z+"),
    ]);
    assert!(
        stderr.contains("Error: JIT_TICKET_PATTERN `[A-Z+` is not a valid pattern"),
        "{stderr}"
    );
}

/// A key that is not named stops the function; one KMS does not know is found when the keys
/// are first needed (`errors.rs`), since init does not read them.
#[test]
fn missing_signing_keys_stop_the_function_naming_them() {
    let policies = examples();
    let stderr = failed_start(&[
        ("JIT_POLICY_DIR", policies.as_str()),
        ("TABLE_NAME", "unused"),
    ]);
    assert!(stderr.contains("JIT_KEY_INTAKE is not set"), "{stderr}");
}
