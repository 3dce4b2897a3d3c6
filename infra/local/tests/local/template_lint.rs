//! `template.yaml` and `infra/target-account.yaml` pass cfn-lint (installed, pinned, by the
//! test itself).

use std::process::Command;

#[test]
fn the_templates_pass_cfn_lint() {
    for template in ["template.yaml", "infra/target-account.yaml"] {
        lint(template);
    }
}

fn lint(template: &str) {
    let python = jit_local::ensure_venv("lint-venv", "infra/local/requirements-lint.txt").unwrap();
    let template = jit_local::workspace_root().join(template);
    let cfn_lint = python.with_file_name("cfn-lint");
    let out = Command::new(&cfn_lint)
        .args(["--regions", "us-east-1", "eu-west-1", "--"])
        .arg(&template)
        .output()
        .unwrap();
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // Exit codes are bit flags: 2 errors, 4 warnings, 8 informational. Errors and warnings fail.
    let code = out.status.code().unwrap_or(-1);
    assert!(
        code >= 0 && code & 0b110 == 0,
        "cfn-lint exit {code}:\n{report}"
    );
}
