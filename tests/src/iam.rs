//! IAM's own evaluation for the tests: `@cloud-copilot/iam-simulate` (npm, pinned by
//! `tests/iam/package-lock.json`, installed under cargo's target directory on first use) decides
//! whole batches of authorization requests in one Node process. The emulator does not evaluate
//! IAM, so this is what shows a policy document denies and allows what it should: a wrong
//! condition key or operator changes its answers.
//!
//! The simulator is AGPL-3.0-or-later: a test tool only, never part of what deploys.
// Indexing a JSON or YAML value by key or position returns Null when absent: it never panics.
#![allow(clippy::indexing_slicing)]

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

pub use jit_local::cfn::{Node, Template};
use serde_json::{Map, Value, json};

/// What IAM decides for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Decision {
    /// An `Allow` applies and no `Deny` does.
    Allowed,
    /// A `Deny` applies.
    ExplicitlyDenied,
    /// Nothing allows it.
    ImplicitlyDenied,
}

impl Decision {
    /// Allowed, or denied either way.
    pub fn allowed(self) -> bool {
        self == Decision::Allowed
    }
}

/// One request and the policies that decide it.
#[derive(Debug, Clone, Default)]
pub struct Case {
    /// The caller: a role session (`arn:aws:sts::<account>:assumed-role/<role>/<session>`).
    pub principal: String,
    /// `service:Action`.
    pub action: String,
    /// The resource's ARN (`*` for actions that take none).
    pub resource: String,
    /// The resource's account.
    pub resource_account: String,
    /// Request context keys (`aws:PrincipalTag/jit-grant`, `dynamodb:LeadingKeys`, ...).
    pub context: BTreeMap<String, Value>,
    /// The principal's identity policies, by name.
    pub identity: Vec<(String, Value)>,
    /// The principal's permissions boundary.
    pub boundary: Option<Value>,
    /// The resource's policy (a trust policy, a key policy).
    pub resource_policy: Option<Value>,
    /// The session policy the session was created with.
    pub session_policy: Option<Value>,
}

impl Case {
    /// A case for `principal` calling `action` on `resource` in `account`.
    pub fn new(principal: &str, action: &str, resource: &str, account: &str) -> Self {
        Self {
            principal: principal.to_owned(),
            action: action.to_owned(),
            resource: resource.to_owned(),
            resource_account: account.to_owned(),
            ..Self::default()
        }
    }

    /// With one more context key.
    pub fn with(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.context.insert(key.to_owned(), value.into());
        self
    }

    /// With one more identity policy.
    pub fn identity(mut self, name: &str, policy: &Value) -> Self {
        self.identity.push((name.to_owned(), policy.clone()));
        self
    }

    fn simulation(&self) -> Value {
        let mut context = Map::new();
        for (k, v) in &self.context {
            let v = match v {
                Value::Array(items) => Value::Array(
                    items
                        .iter()
                        .map(|i| json!(i.as_str().map_or_else(|| i.to_string(), str::to_owned)))
                        .collect(),
                ),
                Value::String(s) => json!(s),
                other => json!(other.to_string()),
            };
            context.insert(k.clone(), v);
        }
        let mut sim = json!({
            "request": {
                "principal": self.principal,
                "action": self.action,
                "resource": {"resource": self.resource, "accountId": self.resource_account},
                "contextVariables": context,
            },
            "identityPolicies": self.identity.iter()
                .map(|(name, policy)| json!({"name": name, "policy": policy}))
                .collect::<Vec<_>>(),
        });
        if let Some(b) = &self.boundary {
            sim["permissionBoundaryPolicies"] = json!([{"name": "boundary", "policy": b}]);
        }
        if let Some(r) = &self.resource_policy {
            sim["resourcePolicy"] = r.clone();
        }
        if let Some(s) = &self.session_policy {
            sim["sessionPolicy"] = s.clone();
        }
        sim
    }
}

/// The folder the evaluator is installed in, installing it the first time.
fn installed() -> Result<&'static Path, String> {
    static DIR: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    DIR.get_or_init(install)
        .as_ref()
        .map(PathBuf::as_path)
        .map_err(Clone::clone)
}

fn install() -> Result<PathBuf, String> {
    jit_local::prerequisites::ensure_npm("iam-evaluator", "tests/iam", &["evaluate.mjs"])
}

/// Decides every case in one process. Any case the simulator cannot evaluate fails the batch.
pub fn evaluate(cases: &[Case]) -> Result<Vec<Decision>, String> {
    let dir = installed()?;
    let batch = Value::Array(cases.iter().map(Case::simulation).collect());
    let mut child = Command::new("node")
        .arg("evaluate.mjs")
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("node: {e}"))?;
    let input = batch.to_string();
    let mut stdin = child.stdin.take().ok_or("no stdin for node")?;
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let out = child.wait_with_output().map_err(|e| format!("node: {e}"))?;
    writer
        .join()
        .map_err(|_| "writing to node panicked".to_owned())?
        .map_err(|e| format!("writing to node: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "the evaluator failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let results: Vec<Value> =
        serde_json::from_slice(&out.stdout).map_err(|e| format!("the evaluator's answer: {e}"))?;
    if results.len() != cases.len() {
        return Err(format!("{} cases, {} answers", cases.len(), results.len()));
    }
    results
        .iter()
        .zip(cases)
        .map(|(r, case)| match r["result"].as_str() {
            Some("Allowed") => Ok(Decision::Allowed),
            Some("ExplicitlyDenied") => Ok(Decision::ExplicitlyDenied),
            Some("ImplicitlyDenied") => Ok(Decision::ImplicitlyDenied),
            _ => Err(format!(
                "{} on {} could not be evaluated: {}",
                case.action, case.resource, r["error"]
            )),
        })
        .collect()
}

/// A template of the workspace (`template.yaml`, `infra/target-account.yaml`).
pub fn workspace_template(path: &str) -> Result<Template, String> {
    Template::workspace(path).map_err(|e| e.to_string())
}

/// A function's identity policy as `template.yaml` declares it (its `Policies` statements),
/// resolved with `refs`.
pub fn function_policy(
    template: &Template,
    function: &str,
    refs: &BTreeMap<String, Value>,
) -> Value {
    let logical = format!("{}{}Function", function[..1].to_uppercase(), &function[1..]);
    let policies = &template.properties(&logical)["Policies"];
    let statements: Vec<Value> = policies
        .as_sequence()
        .into_iter()
        .flatten()
        .flat_map(|p| {
            p["Statement"]
                .resolve(refs)
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .collect();
    json!({"Version": "2012-10-17", "Statement": statements})
}

/// A case and what IAM must decide for it.
#[derive(Debug, Clone)]
pub struct Expectation {
    /// The request and its policies.
    pub case: Case,
    /// Whether it must be allowed.
    pub allowed: bool,
}

/// One small change to a policy document.
#[derive(Debug, Clone)]
pub struct Mutant {
    /// What was changed, e.g. `statement JitRevokedGrants: StringEquals -> StringNotEquals`.
    pub what: String,
    /// The changed document.
    pub document: Value,
    /// Why no request can tell it from the original, when that is so.
    pub equivalent: Option<&'static str>,
}

/// Operators a mutant may swap an operator for (its own qualifier kept).
fn alternatives(operator: &str) -> &'static [&'static str] {
    match operator {
        "StringEquals" => &["StringNotEquals", "StringLike"],
        "StringNotEquals" => &["StringEquals"],
        "StringLike" => &["StringNotLike", "StringEquals"],
        "StringNotLike" => &["StringLike"],
        "ArnEquals" => &["ArnNotEquals", "ArnLike"],
        "ArnNotEquals" => &["ArnEquals", "ArnNotLike"],
        "ArnLike" => &["ArnNotLike", "ArnEquals"],
        "ArnNotLike" => &["ArnLike"],
        "DateLessThan" => &["DateGreaterThan", "DateLessThanEquals"],
        "DateGreaterThan" => &["DateLessThan", "DateGreaterThanEquals"],
        "Bool" => &["Null"],
        _ => &[],
    }
}

fn has_wildcard(values: &Value) -> bool {
    let one = |v: &Value| v.as_str().is_some_and(|s| s.contains(['*', '?']));
    match values {
        Value::Array(items) => items.iter().any(one),
        other => one(other),
    }
}

fn statements(doc: &Value) -> Vec<Value> {
    match &doc["Statement"] {
        Value::Array(items) => items.clone(),
        Value::Null => Vec::new(),
        one => vec![one.clone()],
    }
}

fn with_statement(doc: &Value, index: usize, statement: Value) -> Value {
    let mut list = statements(doc);
    list[index] = statement;
    let mut out = doc.clone();
    out["Statement"] = Value::Array(list);
    out
}

fn each_entry(value: &Value) -> Vec<Value> {
    match value {
        Value::Array(items) => items.clone(),
        Value::Null => Vec::new(),
        one => vec![one.clone()],
    }
}

/// Every mutant of `doc`: for every statement, its Effect flipped; each condition operator
/// swapped for its opposite and near neighbours; each condition key renamed to one no request
/// carries, or dropped; each `Null` test inverted; each resource and principal replaced by one
/// that matches nothing here. A swap between an exact and a pattern operator whose values hold
/// no wildcard is marked equivalent (it cannot change an answer).
pub fn mutants(doc: &Value) -> Vec<Mutant> {
    let mut out = Vec::new();
    for (i, statement) in statements(doc).iter().enumerate() {
        let name = statement["Sid"]
            .as_str()
            .map_or_else(|| format!("#{i}"), str::to_owned);
        let mut push = |what: String, changed: Value, equivalent: Option<&'static str>| {
            out.push(Mutant {
                what: format!("statement {name}: {what}"),
                document: with_statement(doc, i, changed),
                equivalent,
            });
        };
        let mut flipped = statement.clone();
        flipped["Effect"] = json!(if statement["Effect"] == "Allow" {
            "Deny"
        } else {
            "Allow"
        });
        push("Effect flipped".into(), flipped, None);
        for field in ["Resource", "Principal"] {
            let entries: Vec<(Option<String>, Value)> = match &statement[field] {
                Value::Object(by_kind) => by_kind
                    .iter()
                    .flat_map(|(k, v)| each_entry(v).into_iter().map(move |e| (Some(k.clone()), e)))
                    .collect(),
                other => each_entry(other).into_iter().map(|e| (None, e)).collect(),
            };
            for (kind, entry) in &entries {
                let replacement = match (field, entry.as_str()) {
                    ("Principal", _) => json!("arn:aws:iam::999999999999:root"),
                    (_, Some("*")) => json!("arn:aws:s3:::jit-mutant"),
                    (_, Some(s)) if s.ends_with('*') => {
                        json!(format!("{}jit-mutant", &s[..s.len() - 1]))
                    }
                    (_, Some(s)) => json!(format!("{s}-jit-mutant")),
                    _ => continue,
                };
                let mut changed = statement.clone();
                let slot = match kind {
                    Some(k) => &mut changed[field][k],
                    None => &mut changed[field],
                };
                *slot = match slot.take() {
                    Value::Array(items) => Value::Array(
                        items
                            .into_iter()
                            .map(|e| if &e == entry { replacement.clone() } else { e })
                            .collect(),
                    ),
                    _ => replacement.clone(),
                };
                push(format!("{field} {entry} replaced"), changed, None);
            }
        }
        let Some(conditions) = statement["Condition"].as_object() else {
            continue;
        };
        for (operator, tests) in conditions {
            let (qualifier, base) = match operator.split_once(':') {
                Some((q, b)) => (format!("{q}:"), b.to_owned()),
                None => (String::new(), operator.clone()),
            };
            let mut swaps: Vec<String> = alternatives(&base)
                .iter()
                .map(|a| format!("{qualifier}{a}"))
                .collect();
            match qualifier.as_str() {
                "ForAllValues:" => swaps.push(format!("ForAnyValue:{base}")),
                "ForAnyValue:" => swaps.push(format!("ForAllValues:{base}")),
                _ => {}
            }
            for swap in swaps {
                let mut changed = statement.clone();
                let cond = changed["Condition"]
                    .as_object_mut()
                    .unwrap_or_else(|| unreachable!());
                let moved = cond.remove(operator).unwrap_or_default();
                cond.insert(swap.clone(), moved);
                let exact_for_pattern = [("Equals", "Like")].iter().any(|(e, l)| {
                    (base.ends_with(e) && swap.ends_with(&base.replace(e, l)))
                        || (base.ends_with(l) && swap.ends_with(&base.replace(l, e)))
                });
                let equivalent = (exact_for_pattern
                    && !tests
                        .as_object()
                        .into_iter()
                        .flatten()
                        .any(|(_, v)| has_wildcard(v)))
                .then_some("an exact and a pattern match agree on values without wildcards");
                push(format!("{operator} -> {swap}"), changed, equivalent);
            }
            for (key, values) in tests.as_object().into_iter().flatten() {
                let mut renamed = statement.clone();
                let block = &mut renamed["Condition"][operator];
                let v = block
                    .as_object_mut()
                    .and_then(|m| m.remove(key))
                    .unwrap_or_default();
                block["jit:mutant-key"] = v;
                push(format!("{operator} key {key} renamed"), renamed, None);
                let mut dropped = statement.clone();
                if let Some(m) = dropped["Condition"][operator].as_object_mut() {
                    m.remove(key);
                }
                if dropped["Condition"][operator]
                    .as_object()
                    .is_some_and(serde_json::Map::is_empty)
                    && let Some(m) = dropped["Condition"].as_object_mut()
                {
                    m.remove(operator);
                }
                if dropped["Condition"]
                    .as_object()
                    .is_some_and(serde_json::Map::is_empty)
                    && let Some(m) = dropped.as_object_mut()
                {
                    m.remove("Condition");
                }
                push(format!("{operator} key {key} dropped"), dropped, None);
                if base == "Null" {
                    let mut inverted = statement.clone();
                    inverted["Condition"][operator][key] =
                        json!(if values == "true" { "false" } else { "true" });
                    push(format!("Null {key} inverted"), inverted, None);
                }
            }
        }
    }
    out
}

/// How a document's mutants fared against its expectations.
#[derive(Debug, Clone)]
pub struct MutationReport {
    /// Which document.
    pub label: String,
    /// Mutants some expectation failed on.
    pub killed: Vec<String>,
    /// Mutants no request can tell from the original, with why.
    pub equivalent: Vec<String>,
    /// Mutants every expectation held on: a gap in the tests.
    pub survived: Vec<String>,
}

impl std::fmt::Display for MutationReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "{}: {} mutants killed, {} equivalent, {} survived",
            self.label,
            self.killed.len(),
            self.equivalent.len(),
            self.survived.len()
        )?;
        for e in &self.equivalent {
            writeln!(f, "  equivalent: {e}")?;
        }
        for s in &self.survived {
            writeln!(f, "  SURVIVED: {s}")?;
        }
        Ok(())
    }
}

/// Evaluates the expectations `with` builds for `doc` and for each of its mutants, all in one
/// batch. The original must meet every expectation; a mutant is killed when any fails.
/// `known_equivalent` names mutants (by a part of their description) that no request can
/// tell apart, with the reason.
pub fn mutation_report(
    label: &str,
    doc: &Value,
    known_equivalent: &[(&str, &'static str)],
    with: impl Fn(&Value) -> Vec<Expectation>,
) -> Result<MutationReport, String> {
    mutation_report_of(label, doc, None, known_equivalent, with)
}

/// As [`mutation_report`], mutating only the statements whose `Sid` is in `statements`
/// (all when `None`).
pub fn mutation_report_of(
    label: &str,
    doc: &Value,
    statements: Option<&[&str]>,
    known_equivalent: &[(&str, &'static str)],
    with: impl Fn(&Value) -> Vec<Expectation>,
) -> Result<MutationReport, String> {
    let original = with(doc);
    let all: Vec<Mutant> = mutants(doc)
        .into_iter()
        .filter(|m| {
            statements.is_none_or(|sids| {
                sids.iter()
                    .any(|sid| m.what.starts_with(&format!("statement {sid}:")))
            })
        })
        .collect();
    let sets: Vec<Vec<Expectation>> = all.iter().map(|m| with(&m.document)).collect();
    let cases: Vec<Case> = original
        .iter()
        .chain(sets.iter().flatten())
        .map(|e| e.case.clone())
        .collect();
    let decisions = evaluate(&cases)?;
    let (first, rest) = decisions.split_at(original.len());
    let broken: Vec<String> = original
        .iter()
        .zip(first)
        .filter(|(e, d)| d.allowed() != e.allowed)
        .map(|(e, d)| format!("{} on {}: {d:?}", e.case.action, e.case.resource))
        .collect();
    if !broken.is_empty() {
        return Err(format!(
            "{label} itself does not meet its expectations:\n{}",
            broken.join("\n")
        ));
    }
    let mut report = MutationReport {
        label: label.to_owned(),
        killed: Vec::new(),
        equivalent: Vec::new(),
        survived: Vec::new(),
    };
    let mut at = 0;
    for (mutant, set) in all.iter().zip(&sets) {
        let got = &rest[at..at + set.len()];
        at += set.len();
        let killed = set.iter().zip(got).any(|(e, d)| d.allowed() != e.allowed);
        let named = known_equivalent
            .iter()
            .find(|(part, _)| mutant.what.contains(part))
            .map(|(_, why)| *why);
        match (killed, mutant.equivalent.or(named)) {
            (true, _) => report.killed.push(mutant.what.clone()),
            (false, Some(why)) => report.equivalent.push(format!("{} ({why})", mutant.what)),
            (false, None) => report.survived.push(mutant.what.clone()),
        }
    }
    Ok(report)
}

/// The example broker's account.
pub const BROKER: &str = "111111111111";

/// The example's target accounts (`TargetAccountIds`).
pub const TARGET_ACCOUNTS: [&str; 2] = ["222222222222", "333333333333"];

/// The example's key administrator role (`KeyAdministratorRoleArn`).
pub const KEY_ADMINISTRATOR: &str = "arn:aws:iam::111111111111:role/jit-key-admin";

/// The four functions, as the template names them (`intake` → `IntakeFunction`).
pub const FUNCTIONS: [&str; 6] = [
    "intake", "approver", "slack", "issuer", "sweeper", "activity",
];

fn logical(function: &str) -> String {
    format!("{}{}", function[..1].to_uppercase(), &function[1..])
}

/// A function's role ARN in the example deployment.
pub fn function_role(function: &str) -> String {
    format!("arn:aws:iam::{BROKER}:role/jit-{function}")
}

/// A function's own session, as its calls reach AWS.
pub fn function_session(function: &str) -> String {
    format!("arn:aws:sts::{BROKER}:assumed-role/jit-{function}/{function}")
}

/// A signing key's ARN from its id.
pub fn key_arn(id: &str) -> String {
    format!("arn:aws:kms:us-east-1:{BROKER}:key/{id}")
}

/// What `template.yaml`'s references resolve to in the example broker account: the table and
/// `keys` (logical id → key id) as the local stack made them, function and role ARNs, the
/// example's target accounts; no organisation, no alarm topic, no targets in the broker's
/// account unless `targets_in_broker_account`.
pub fn broker_refs(
    table: &str,
    keys: &BTreeMap<String, String>,
    targets_in_broker_account: bool,
) -> BTreeMap<String, Value> {
    let mut refs = BTreeMap::from([
        ("AWS::Partition".to_owned(), json!("aws")),
        ("AWS::Region".to_owned(), json!("us-east-1")),
        ("AWS::AccountId".to_owned(), json!(BROKER)),
        ("AWS::URLSuffix".to_owned(), json!("amazonaws.com")),
        ("AWS::StackName".to_owned(), json!("jit-access")),
        (
            "AWS::StackId".to_owned(),
            json!(format!(
                "arn:aws:cloudformation:us-east-1:{BROKER}:stack/jit-access/6f1c2e70-0000-11ef-9000-0a1b2c3d4e5f"
            )),
        ),
        ("GrantsTable".to_owned(), json!(table)),
        (
            "GrantsTable.Arn".to_owned(),
            json!(format!("arn:aws:dynamodb:us-east-1:{BROKER}:table/{table}")),
        ),
        ("AuditBucket".to_owned(), json!(jit_stack::AUDIT_BUCKET)),
        (
            "AuditBucket.Arn".to_owned(),
            json!(format!("arn:aws:s3:::{}", jit_stack::AUDIT_BUCKET)),
        ),
        ("AuditLockMode".to_owned(), json!("COMPLIANCE")),
        ("AuditRetentionDays".to_owned(), json!("400")),
        ("TargetAccountIds".to_owned(), json!(TARGET_ACCOUNTS)),
        ("TargetOrgId".to_owned(), json!("")),
        (
            "PagerDutyTokenSecretName".to_owned(),
            json!("jit/pagerduty-token"),
        ),
        (
            "SlackSigningSecretName".to_owned(),
            json!("jit/slack-signing-secret"),
        ),
        (
            "SlackBotTokenSecretName".to_owned(),
            json!("jit/slack-bot-token"),
        ),
        (
            "TargetRoleBoundaryName".to_owned(),
            json!("jit-target-boundary"),
        ),
        (
            "KeyAdministratorRoleArn".to_owned(),
            json!(KEY_ADMINISTRATOR),
        ),
        ("HttpApi".to_owned(), json!("a1b2c3d4e5")),
        (
            "ApproverDeadLetters.Arn".to_owned(),
            json!(format!(
                "arn:aws:sqs:us-east-1:{BROKER}:jit-access-ApproverDeadLetters-Q1W2E3R4T5Y6"
            )),
        ),
        (
            "SlackDeadLetters.Arn".to_owned(),
            json!(format!(
                "arn:aws:sqs:us-east-1:{BROKER}:jit-access-SlackDeadLetters-Z9X8C7V6B5N4"
            )),
        ),
        (
            "ActivityBus.Arn".to_owned(),
            json!(format!(
                "arn:aws:events:us-east-1:{BROKER}:event-bus/jit-access-activity"
            )),
        ),
        (
            "ActivityFunctionCloudTrail.Arn".to_owned(),
            json!(format!(
                "arn:aws:events:us-east-1:{BROKER}:rule/jit-access-activity/jit-access-ActivityFunctionCloudTrail-B2C3D4E5F6A1"
            )),
        ),
        (
            "ActivityDeadLetters.Arn".to_owned(),
            json!(format!(
                "arn:aws:sqs:us-east-1:{BROKER}:jit-access-ActivityDeadLetters-P0O9I8U7Y6T5"
            )),
        ),
        (
            "SweeperFunctionSweep.Arn".to_owned(),
            json!(format!(
                "arn:aws:events:us-east-1:{BROKER}:rule/jit-access-SweeperFunctionSweep-A1B2C3D4E5F6"
            )),
        ),
        ("Condition::TrustsOrg".to_owned(), json!(false)),
        ("Condition::HasAlarmTopic".to_owned(), json!(false)),
        (
            "Condition::TargetsInBrokerAccount".to_owned(),
            json!(targets_in_broker_account),
        ),
    ]);
    for (name, id) in keys {
        refs.insert(format!("{name}.Arn"), json!(key_arn(id)));
        refs.insert(name.clone(), json!(id));
    }
    for alarm in [
        "SweeperErrorsAlarm",
        "RevocationsPendingAlarm",
        "EvidenceRejectedAlarm",
        "UnattributedActivityAlarm",
    ] {
        refs.insert(
            format!("{alarm}.Arn"),
            json!(format!(
                "arn:aws:cloudwatch:us-east-1:{BROKER}:alarm:jit-access-{alarm}-Z9Y8X7W6V5U4"
            )),
        );
    }
    for f in FUNCTIONS {
        let name = format!("jit-access-{}Function-AbCdEf123456", logical(f));
        refs.insert(format!("{}Function", logical(f)), json!(name));
        refs.insert(
            format!("{}Function.Arn", logical(f)),
            json!(format!("arn:aws:lambda:us-east-1:{BROKER}:function:{name}")),
        );
        refs.insert(
            format!("{}FunctionRole.Arn", logical(f)),
            json!(function_role(f)),
        );
        refs.insert(
            format!("{}LogGroup.Arn", logical(f)),
            json!(format!(
                "arn:aws:logs:us-east-1:{BROKER}:log-group:/aws/lambda/{name}:*"
            )),
        );
    }
    refs
}
