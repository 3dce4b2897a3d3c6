//! Reading the table from a template: what it takes and what it refuses.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};

use jit_local::cfn::{Intrinsic, Template};
use jit_local::{TableDefinition, TableError};

/// Writes a template to a file of its own under the target directory.
fn template(body: &str) -> PathBuf {
    static N: AtomicU32 = AtomicU32::new(0);
    let dir = jit_local::target_dir().join("test-templates");
    std::fs::create_dir_all(&dir).unwrap();
    let name = format!(
        "t-{}-{}.yaml",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    );
    let path = dir.join(name);
    std::fs::write(&path, body).unwrap();
    path
}

#[test]
fn the_workspace_template_has_the_table() {
    let table = TableDefinition::from_workspace_template().unwrap();
    assert_eq!(table.hash.name, "pk");
    assert_eq!(table.indexes.len(), 4);
}

#[test]
fn intrinsic_functions_elsewhere_in_the_template_do_not_get_in_the_way() {
    let t = template(
        r#"
Conditions:
  Yes: !Equals [!Ref Flag, "true"]
Resources:
  GrantsTable:
    Type: AWS::DynamoDB::Table
    Properties:
      DeletionProtectionEnabled: !If [Yes, true, false]
      BillingMode: PAY_PER_REQUEST
      AttributeDefinitions:
        - {AttributeName: pk, AttributeType: S}
      KeySchema:
        - {AttributeName: pk, KeyType: HASH}
"#,
    );
    let table = TableDefinition::from_template(&t).unwrap();
    assert_eq!(table.range, None);
    assert!(table.indexes.is_empty());
    assert_eq!(table.stream_view, None);
}

#[test]
fn a_key_without_an_attribute_definition_is_refused_with_its_name() {
    let t = template(
        r#"
Resources:
  GrantsTable:
    Type: AWS::DynamoDB::Table
    Properties:
      AttributeDefinitions:
        - {AttributeName: pk, AttributeType: S}
      KeySchema:
        - {AttributeName: pk, KeyType: HASH}
        - {AttributeName: sk, KeyType: RANGE}
"#,
    );
    let err = TableDefinition::from_template(&t).unwrap_err();
    assert!(matches!(err, TableError::Definition(_)));
    assert_eq!(
        err.to_string(),
        "`GrantsTable` in the template: key `sk` has no AttributeDefinitions entry"
    );
}

#[test]
fn a_missing_table_or_file_is_refused_with_the_path() {
    let t = template("Resources: {}\n");
    let err = TableDefinition::from_template(&t).unwrap_err();
    assert!(
        err.to_string().contains("no resource `GrantsTable`"),
        "{err}"
    );
    let err =
        TableDefinition::from_template(std::path::Path::new("/nonexistent.yaml")).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("cannot read `/nonexistent.yaml`"),
        "{err}"
    );
}

fn workspace(path: &str) -> Template {
    Template::workspace(path).unwrap()
}

#[test]
fn the_broker_outputs_the_roles_the_target_account_stack_asks_for() {
    let broker = workspace("template.yaml");
    let target = workspace("infra/target-account.yaml");
    for (parameter, role) in [
        ("IssuerRoleArn", "IssuerFunctionRole.Arn"),
        ("SweeperRoleArn", "SweeperFunctionRole.Arn"),
    ] {
        assert!(
            target.parameters.contains_key(parameter),
            "{parameter} is a parameter of the target-account stack"
        );
        assert_eq!(
            broker.outputs[parameter]["Value"].as_intrinsic(),
            Some(&Intrinsic::GetAtt(role.to_owned())),
            "{parameter}"
        );
    }
}

#[test]
fn a_failing_sweep_unreconciled_roles_and_rejected_evidence_raise_alarms() {
    let broker = workspace("template.yaml");
    let errors = broker.properties("SweeperErrorsAlarm");
    assert_eq!(
        (errors["Namespace"].as_str(), errors["MetricName"].as_str()),
        (Some("AWS/Lambda"), Some("Errors"))
    );
    assert_eq!(
        errors["Dimensions"][0]["Value"].as_intrinsic(),
        Some(&Intrinsic::Ref("SweeperFunction".to_owned()))
    );
    let pending = broker.properties("RevocationsPendingAlarm");
    assert_eq!(
        (
            pending["Namespace"].as_str(),
            pending["MetricName"].as_str(),
            pending["TreatMissingData"].as_str()
        ),
        (Some("JitAccess"), Some("RolesPending"), Some("breaching"))
    );
    // The metric the issuer and approver emit when a grant's evidence does not verify (its
    // name is the one `jit-http` writes for a refused grant).
    let rejected = broker.properties("EvidenceRejectedAlarm");
    assert_eq!(
        (
            rejected["Namespace"].as_str(),
            rejected["MetricName"].as_str(),
            rejected["Threshold"].as_i64()
        ),
        (Some("JitAccess"), Some("EvidenceRejected"), Some(1))
    );
}
