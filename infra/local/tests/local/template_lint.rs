//! `template.yaml` and `infra/target-account.yaml` pass cfn-lint (installed, pinned, by the
//! test itself).

use std::process::Command;

#[test]
fn the_templates_pass_cfn_lint() {
    for template in ["template.yaml", "infra/target-account.yaml"] {
        let template = jit_local::workspace_root().join(template);
        if let Err(report) = lint(&template) {
            panic!("{report}");
        }
    }
    // The check can fail: a template with an error, and one cfn-lint cannot read (exit 1,
    // which once counted as a pass), are both refused.
    let dir = jit_local::target_dir().join("lint-cases");
    std::fs::create_dir_all(&dir).unwrap();
    let broken = dir.join("broken.yaml");
    std::fs::write(
        &broken,
        "AWSTemplateFormatVersion: \"2010-09-09\"\nResources:\n  Q:\n    Type: AWS::SQS::Queue\n    Properties:\n      NoSuchProperty: 1\n",
    )
    .unwrap();
    let unreadable = dir.join("no-such-template.yaml");
    for template in [broken, unreadable] {
        let refused = lint(&template);
        assert!(refused.is_err(), "{} passed", template.display());
    }
}

/// cfn-lint's verdict on `template`: `Err` with its report unless it found nothing worse than
/// informational notes.
fn lint(template: &std::path::Path) -> Result<(), String> {
    let python = jit_local::ensure_venv("lint-venv", "infra/local/requirements-lint.txt").unwrap();
    let cfn_lint = python.with_file_name("cfn-lint");
    let out = Command::new(&cfn_lint)
        .args(["--regions", "us-east-1", "eu-west-1", "--"])
        .arg(template)
        .output()
        .unwrap();
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // Exit codes are bit flags: 2 errors, 4 warnings, 8 informational; 1 is cfn-lint itself
    // failing (a crash, a file it cannot read). Only 0 and informational notes pass.
    let code = out.status.code().unwrap_or(-1);
    if code == 0 || code == 8 {
        Ok(())
    } else {
        Err(format!(
            "cfn-lint exit {code} on {}:\n{report}",
            template.display()
        ))
    }
}
