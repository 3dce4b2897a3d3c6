//! The real `intake` binary refuses to start on a bad policy set and says where to look.

use std::process::Command;

#[test]
fn a_bad_policy_stops_the_function_at_start_up_naming_file_and_line() {
    let examples = jit_local::workspace_root().join("infra/policies");
    let dir = jit_local::target_dir().join(format!("bad-policies-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for file in ["schema.cedarschema", "targets.json", "access.cedar"] {
        std::fs::copy(examples.join(file), dir.join(file)).unwrap();
    }
    std::fs::write(
        dir.join("broken.cedar"),
        "// an approval rule\n\npermit (principal, action == Jit::Action::\"Approve\", resource)\nwhen { resource.teir == \"admin\" };\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_intake"))
        .env("JIT_POLICY_DIR", &dir)
        .env("TABLE_NAME", "unused")
        .output()
        .unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("policies: broken.cedar:4:"), "{stderr}");
    assert!(stderr.contains("teir"), "{stderr}");
}

#[test]
fn a_missing_policy_directory_is_named() {
    let out = Command::new(env!("CARGO_BIN_EXE_intake"))
        .env("JIT_POLICY_DIR", "/nonexistent/policies")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("cannot read `/nonexistent/policies"),
        "{stderr}"
    );
}

#[test]
fn a_ticket_pattern_that_does_not_compile_stops_the_function_naming_it() {
    let out = Command::new(env!("CARGO_BIN_EXE_intake"))
        .env(
            "JIT_POLICY_DIR",
            jit_local::workspace_root().join("infra/policies"),
        )
        .env("TABLE_NAME", "unused")
        .env("JIT_TICKET_PATTERN", "[A-Z+")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("Error: JIT_TICKET_PATTERN `[A-Z+` is not a valid pattern"),
        "{stderr}"
    );
}

#[test]
fn missing_or_unknown_signing_keys_stop_the_function_naming_them() {
    let policies = jit_local::workspace_root().join("infra/policies");
    let base = |command: &mut Command| {
        command
            .env("JIT_POLICY_DIR", &policies)
            .env("TABLE_NAME", "unused");
    };
    let mut missing = Command::new(env!("CARGO_BIN_EXE_intake"));
    base(&mut missing);
    let out = missing.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("JIT_KEY_INTAKE is not set"), "{stderr}");

    // Keys that do not exist in KMS (the emulator's): the public halves cannot be read.
    let emulator = jit_local::Emulator::shared().unwrap();
    let mut unknown = Command::new(env!("CARGO_BIN_EXE_intake"));
    base(&mut unknown);
    for name in [
        "JIT_KEY_INTAKE",
        "JIT_KEY_APPROVER",
        "JIT_KEY_ISSUER",
        "JIT_KEY_SWEEPER",
    ] {
        unknown.env(name, "11111111-2222-3333-4444-555555555555");
    }
    let out = unknown
        .env("AWS_ENDPOINT_URL", emulator.endpoint())
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", "us-east-1")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("the signing keys' public halves could not be read")
            && stderr.contains("NotFoundException"),
        "{stderr}"
    );
}
