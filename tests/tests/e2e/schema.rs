//! Bad input from schemathesis (pinned in `tests/schemathesis/requirements.txt`, installed by
//! this test into a virtualenv): property-based requests from `openapi.yaml`, valid and
//! invalid, against a stack of its own, through the gateway and the real binaries. No 5xx, no
//! status the document does not list, every answer's content type and body valid against it.

use std::process::Command;

use jit_e2e::{options, start};

#[tokio::test]
async fn schemathesis_finds_no_server_error_and_no_answer_the_document_does_not_describe() {
    let python =
        jit_local::ensure_venv("schemathesis-venv", "tests/schemathesis/requirements.txt").unwrap();
    let schemathesis = python.with_file_name("schemathesis");
    let stack = start(options("schemathesis")).unwrap();
    // One caller who may ask (sre), approve non-admin targets, revoke and read the audit
    // (security), so generated calls reach the handlers' logic, not only their refusals.
    let token = stack.token("schemathesis", &["sre", "security"]);
    let root = jit_local::workspace_root();
    let report = jit_local::target_dir().join("schemathesis-report");
    let out = Command::new(&schemathesis)
        .current_dir(&root)
        .args([
            "run",
            "openapi.yaml",
            "--url",
            &stack.api_url,
            "--header",
            &format!("Authorization: Bearer {token}"),
            "--checks",
            "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance",
            // A fixed budget and seed: the same cases every run.
            "--max-examples",
            "50",
            "--seed",
            "20261128",
            "--generation-database",
            "none",
            "--no-color",
            "--report",
            "junit",
            "--report-dir",
        ])
        .arg(&report)
        .env("SCHEMATHESIS_HOOKS", "")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let summary = stdout.split("SUMMARY").nth(1).unwrap_or(&stdout).to_owned();
    eprintln!("schemathesis:{summary}");
    assert!(
        out.status.success(),
        "schemathesis found failures:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("Tested: 24"), "{stdout}");
    // Every operation that needs a token got past the authorizer. Slack's route takes no
    // token but Slack's signature, which schemathesis cannot make: each of its requests must
    // have been refused (401), and it alone.
    if let Some(warning) = stdout.split("Authentication failed").nth(1) {
        let listed = warning.split("\n\n").nth(1).unwrap_or_default();
        assert!(
            warning.starts_with(": 1 operation returned only 401/403")
                && listed.contains("401 Unauthorized (1 operation):")
                && listed.contains("- POST /slack/interactions"),
            "{stdout}"
        );
    }
}
