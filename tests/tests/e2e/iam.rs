//! Least privilege, as IAM itself evaluates it (`jit_e2e::iam`), against what the real
//! binaries do: a stack whose functions reach the emulator through a recording pass-through
//! runs every flow; then each AWS call each function made (and each call a revoker role made
//! for the sweeper) is evaluated against the statements `template.yaml` gives that function,
//! with their conditions, and against the resource's own policy (a target role's trust policy
//! from `infra/target-account.yaml`, a signing key's key policy): all must be allowed. A table
//! written by hand of what each function may and may not do (every item kind by action, every
//! key, roles outside the listed accounts or the `/jit/` path, roles without the boundary) must
//! be decided as written; the target trust policy must refuse the requester, another role, a
//! target session (chaining) and sessions without the tags or source identity. Every action the
//! template grants must be one a function was seen to call, but for the few paths named below.
//! Finally each document is mutated and every mutant must fail some case, or be named
//! equivalent.
//!
//! The request context of each evaluated call is built from the recorded call itself (the
//! tags and source identity the issuer sent to STS, each item of a `TransactWriteItems` with
//! its key, the index a query used), never written by hand.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use jit_e2e::iam::{
    BROKER, Case, Expectation, FUNCTIONS, KEY_ADMINISTRATOR, MutationReport, TARGET_ACCOUNTS,
    broker_refs, evaluate, function_policy, function_role, function_session, key_arn,
    mutation_report, mutation_report_of, workspace_template,
};
use serde_json::{Value, json};

use super::{api, ask, asking, pull, revoke, send, state_of};
use jit_core::domain::GrantState;
use jit_e2e::{options, start};
use jit_stack::recorder::AwsCall;

/// Actions the template grants that no end-to-end flow can make a function call, and why.
const UNREACHED: [(&str, &str, &str); 4] = [
    (
        "approver",
        "dynamodb:GetItem",
        "re-reads a request after losing a write race to another review",
    ),
    (
        "issuer",
        "dynamodb:GetItem",
        "re-reads a grant after losing a write race to another function",
    ),
    (
        "sweeper",
        "iam:DeleteRolePolicy",
        "removes a role's revocation policy once every revoked session has lapsed (15 minutes at least)",
    ),
    (
        "sweeper",
        "s3:GetObject",
        "reads back what is at a taken key in the audit bucket: from the second closed period on (the expiry scenario reaches it)",
    ),
];

/// Mutants no request can tell from the original, and why.
const EQUIVALENT: [(&str, &str); 2] = [
    (
        "ForAllValues:StringLike -> ForAnyValue:StringLike",
        "dynamodb:LeadingKeys holds exactly one key per item request: all and any agree",
    ),
    (
        "ForAllValues:StringEquals -> ForAnyValue:StringEquals",
        "dynamodb:LeadingKeys holds exactly one key per item request: all and any agree",
    ),
];

/// What each function may do to each kind of item, as the design intends (written by hand;
/// the template must agree): function, action, the partition-key prefixes allowed.
const ITEM_ACCESS: [(&str, &str, &[&str]); 26] = [
    (
        "intake",
        "dynamodb:GetItem",
        &["GRANT#", "OPEN#", "IDEM#", "ACTIVITY#", "SEEN#"],
    ),
    (
        "intake",
        "dynamodb:BatchGetItem",
        &["GRANT#", "OPEN#", "IDEM#"],
    ),
    (
        "intake",
        "dynamodb:Query",
        &["GRANT#", "CHECKPOINTS", "ACTIVITY#", "UNATTRIBUTED#"],
    ),
    (
        "intake",
        "dynamodb:PutItem",
        &["GRANT#", "OPEN#", "IDEM#", "SLACKLINK#", "SEEN#"],
    ),
    (
        "intake",
        "dynamodb:DeleteItem",
        &["OPEN#", "SLACKCODE#", "SLACKVIEW#"],
    ),
    ("approver", "dynamodb:GetItem", &["GRANT#"]),
    ("approver", "dynamodb:Query", &["GRANT#"]),
    ("approver", "dynamodb:PutItem", &["GRANT#"]),
    ("approver", "dynamodb:DeleteItem", &["OPEN#"]),
    // Reviews from Slack as the approver's; links and seen groups read, never written.
    (
        "slack",
        "dynamodb:GetItem",
        &["GRANT#", "SLACKLINK#", "SEEN#", "SLACKMSG#"],
    ),
    ("slack", "dynamodb:Query", &["GRANT#"]),
    (
        "slack",
        "dynamodb:PutItem",
        &[
            "GRANT#",
            "SLACKCODE#",
            "SLACKREPLAY#",
            "SLACKMSG#",
            "SLACKVIEW#",
        ],
    ),
    ("slack", "dynamodb:DeleteItem", &["OPEN#"]),
    ("issuer", "dynamodb:GetItem", &["GRANT#"]),
    ("issuer", "dynamodb:Query", &["GRANT#"]),
    ("issuer", "dynamodb:PutItem", &["GRANT#"]),
    (
        "sweeper",
        "dynamodb:GetItem",
        &["GRANT#", "ROLE#", "ROLES", "CHECKPOINTS", "ACTIVITY#"],
    ),
    (
        "sweeper",
        "dynamodb:Query",
        &["GRANT#", "ROLE#", "ROLES", "CHECKPOINTS", "ACTIVITY#"],
    ),
    (
        "sweeper",
        "dynamodb:PutItem",
        &["GRANT#", "ROLE#", "CHECKPOINTS"],
    ),
    ("sweeper", "dynamodb:UpdateItem", &["ROLES"]),
    ("sweeper", "dynamodb:DeleteItem", &["OPEN#", "ROLE#"]),
    // Reads grants; writes activity and nothing else.
    ("activity", "dynamodb:GetItem", &["GRANT#"]),
    (
        "activity",
        "dynamodb:Query",
        &["ACTIVITY#", "UNATTRIBUTED#"],
    ),
    (
        "activity",
        "dynamodb:PutItem",
        &["ACTIVITY#", "UNATTRIBUTED#"],
    ),
    (
        "activity",
        "dynamodb:UpdateItem",
        &["ACTIVITY#", "UNATTRIBUTED#"],
    ),
    ("activity", "dynamodb:DeleteItem", &[]),
];

/// Every kind of item in the table, by the start of its partition key.
const ITEM_KINDS: [&str; 14] = [
    "GRANT#",
    "OPEN#",
    "IDEM#",
    "ROLE#",
    "ROLES",
    "CHECKPOINTS",
    "ACTIVITY#",
    "UNATTRIBUTED#",
    "SLACKCODE#",
    "SLACKLINK#",
    "SEEN#",
    "SLACKREPLAY#",
    "SLACKMSG#",
    "SLACKVIEW#",
];

fn s(v: &Value) -> String {
    v.as_str().unwrap_or_default().to_owned()
}

/// The documents evaluated: each function's identity policy, the target trust policy, the
/// revoker role's policy and trust, and the signing keys' policies.
struct Documents {
    functions: BTreeMap<&'static str, Value>,
    /// Each function's ARN, by the names a caller invokes it with (logical id and ARN).
    function_arns: BTreeMap<String, String>,
    target_trust: BTreeMap<String, Value>,
    revoker_policy: BTreeMap<String, Value>,
    revoker_trust: BTreeMap<String, Value>,
    key_policies: BTreeMap<String, Value>,
    /// The audit bucket's policy.
    bucket_policy: Value,
}

fn documents(refs: &BTreeMap<String, Value>, keys: &BTreeMap<String, String>) -> Documents {
    let template = workspace_template("template.yaml").unwrap();
    let target = workspace_template("infra/target-account.yaml").unwrap();
    let functions = FUNCTIONS
        .iter()
        .map(|f| (*f, function_policy(&template, f, refs)))
        .collect();
    let mut function_arns = BTreeMap::new();
    for f in FUNCTIONS {
        let logical = format!("{}{}Function", f[..1].to_uppercase(), &f[1..]);
        let arn = s(&refs[&format!("{logical}.Arn")]);
        function_arns.insert(logical, arn.clone());
        function_arns.insert(arn.clone(), arn);
    }
    let mut target_trust = BTreeMap::new();
    let mut revoker_policy = BTreeMap::new();
    let mut revoker_trust = BTreeMap::new();
    for account in TARGET_ACCOUNTS.iter().chain([&BROKER]) {
        let target_refs = BTreeMap::from([
            ("AWS::Partition".to_owned(), json!("aws")),
            ("AWS::AccountId".to_owned(), json!(account)),
            ("IssuerRoleArn".to_owned(), json!(function_role("issuer"))),
            ("SweeperRoleArn".to_owned(), json!(function_role("sweeper"))),
            ("BoundaryName".to_owned(), json!("jit-target-boundary")),
        ]);
        let r = |name: &str, field: &str| target.properties(name)[field].resolve(&target_refs);
        target_trust.insert(
            (*account).to_owned(),
            r("TargetRole", "AssumeRolePolicyDocument"),
        );
        revoker_trust.insert(
            (*account).to_owned(),
            r("RevokerRole", "AssumeRolePolicyDocument"),
        );
        revoker_policy.insert(
            (*account).to_owned(),
            r("RevokerRole", "Policies")[0]["PolicyDocument"].clone(),
        );
    }
    let key_policies = keys
        .iter()
        .map(|(name, id)| {
            (
                id.clone(),
                template.properties(name)["KeyPolicy"].resolve(refs),
            )
        })
        .collect();
    let bucket_policy = template.properties("AuditBucketPolicy")["PolicyDocument"].resolve(refs);
    Documents {
        bucket_policy,
        functions,
        function_arns,
        target_trust,
        revoker_policy,
        revoker_trust,
        key_policies,
    }
}

/// A call made with `function`'s own credentials, as IAM sees it.
fn own_call(function: &str, action: &str, resource: &str, account: &str) -> Case {
    Case::new(&function_session(function), action, resource, account)
        .with("aws:PrincipalArn", function_role(function))
        .with("aws:PrincipalAccount", BROKER)
        .with("aws:ResourceAccount", account)
}

/// A call on an object of the audit bucket, over TLS as deployed (the local stack's loopback
/// is plain HTTP), with the bucket's policy.
fn object_call(function: &str, action: &str, object: &str, docs: &Documents) -> Case {
    let mut case = own_call(function, action, object, BROKER)
        .with("aws:SecureTransport", "true")
        .identity("template", &docs.functions[function]);
    case.resource_policy = Some(docs.bucket_policy.clone());
    case
}

/// The ARN IAM authorizes a call on the secret `name` against: Secrets Manager adds a hyphen
/// and six random characters to the name.
fn secret_arn(name: &str) -> String {
    if name.starts_with("arn:") {
        return name.to_owned();
    }
    format!("arn:aws:secretsmanager:us-east-1:{BROKER}:secret:{name}-Ab12Cd")
}

fn table_arn(table: &str) -> String {
    format!("arn:aws:dynamodb:us-east-1:{BROKER}:table/{table}")
}

/// The authorization requests one recorded call makes, with the principal's identity policy
/// and the resource's policy attached. `None` for calls IAM does not authorize.
///
/// `assumed` is the account of the role the function assumed last: the sweeper assumes a
/// revoker role right before each IAM call it makes with that role's credentials.
fn requests(
    call: &AwsCall,
    function: &str,
    table: &str,
    docs: &Documents,
    assumed: Option<&str>,
) -> Vec<Case> {
    let r = &call.request;
    let identity = &docs.functions[function];
    let item = |action: &str, key: &Value| {
        own_call(function, action, &table_arn(table), BROKER)
            .with("dynamodb:LeadingKeys", json!([s(&key["pk"]["S"])]))
            .identity("template", identity)
    };
    match (call.service.as_str(), call.operation.as_str()) {
        ("dynamodb", "GetItem") => vec![item("dynamodb:GetItem", &r["Key"])],
        ("dynamodb", "Query") => match r["IndexName"].as_str() {
            Some(index) => vec![
                own_call(
                    function,
                    "dynamodb:Query",
                    &format!("{}/index/{index}", table_arn(table)),
                    BROKER,
                )
                .identity("template", identity),
            ],
            None => vec![
                own_call(function, "dynamodb:Query", &table_arn(table), BROKER)
                    .with(
                        "dynamodb:LeadingKeys",
                        json!([s(&r["ExpressionAttributeValues"][":pk"]["S"])]),
                    )
                    .identity("template", identity),
            ],
        },
        ("dynamodb", "BatchGetItem") => r["RequestItems"]
            .as_object()
            .into_iter()
            .flat_map(|t| t.values())
            .flat_map(|t| t["Keys"].as_array().cloned().unwrap_or_default())
            .map(|k| item("dynamodb:BatchGetItem", &k))
            .collect(),
        ("dynamodb", "TransactWriteItems") => r["TransactItems"]
            .as_array()
            .unwrap()
            .iter()
            .map(|entry| {
                let (kind, body) = entry.as_object().unwrap().iter().next().unwrap();
                let (action, key) = match kind.as_str() {
                    "Put" => ("dynamodb:PutItem", &body["Item"]),
                    "Update" => ("dynamodb:UpdateItem", &body["Key"]),
                    "Delete" => ("dynamodb:DeleteItem", &body["Key"]),
                    "ConditionCheck" => ("dynamodb:ConditionCheckItem", &body["Key"]),
                    other => panic!("a transaction item of kind {other}"),
                };
                item(action, key)
            })
            .collect(),
        ("dynamodb", op @ ("PutItem" | "UpdateItem" | "DeleteItem")) => {
            let key = if op == "PutItem" {
                &r["Item"]
            } else {
                &r["Key"]
            };
            vec![item(&format!("dynamodb:{op}"), key)]
        }
        ("kms", op @ ("Sign" | "GetPublicKey")) => {
            let id = s(&r["KeyId"]);
            let id = id.rsplit('/').next().unwrap_or(&id).to_owned();
            let mut case = own_call(function, &format!("kms:{op}"), &key_arn(&id), BROKER)
                .identity("template", identity);
            case.resource_policy = docs.key_policies.get(&id).cloned();
            assert!(
                case.resource_policy.is_some(),
                "{function} used an unknown key {id}"
            );
            vec![case]
        }
        ("sts", "AssumeRole") => {
            let role = s(&r["RoleArn"]);
            let account = role.split(':').nth(4).unwrap_or_default().to_owned();
            let mut tags = Vec::new();
            let mut case = own_call(function, "sts:AssumeRole", &role, &account)
                .identity("template", identity)
                .with("sts:RoleSessionName", s(&r["RoleSessionName"]));
            for n in 1.. {
                let Some(key) = r.get(format!("Tags.member.{n}.Key")) else {
                    break;
                };
                let value = &r[format!("Tags.member.{n}.Value")];
                case = case.with(&format!("aws:RequestTag/{}", s(key)), s(value));
                tags.push(s(key));
            }
            if !tags.is_empty() {
                case = case.with("aws:TagKeys", json!(tags));
            }
            if let Some(id) = r.get("SourceIdentity") {
                case = case.with("sts:SourceIdentity", s(id));
            }
            let trust = if role.ends_with(":role/jit-revoker") {
                &docs.revoker_trust
            } else {
                &docs.target_trust
            };
            case.resource_policy = trust.get(&account).cloned();
            // `AssumeRole` with tags and a source identity is also authorized as
            // `sts:TagSession` and `sts:SetSourceIdentity`.
            let mut out = vec![case.clone()];
            if !tags.is_empty() {
                let mut c = case.clone();
                c.action = "sts:TagSession".into();
                out.push(c);
            }
            if r.get("SourceIdentity").is_some() {
                let mut c = case;
                c.action = "sts:SetSourceIdentity".into();
                out.push(c);
            }
            out
        }
        // Needs no permission: IAM cannot deny it.
        ("sts", "GetCallerIdentity") => Vec::new(),
        ("secretsmanager", "GetSecretValue") => {
            let id = s(&r["SecretId"]);
            vec![
                own_call(
                    function,
                    "secretsmanager:GetSecretValue",
                    &secret_arn(&id),
                    BROKER,
                )
                .identity("template", identity),
            ]
        }
        ("s3", op @ ("PutObject" | "GetObject")) => {
            let headers = &r["Headers"];
            let object = format!("arn:aws:s3:::{}/{}", s(&r["Bucket"]), s(&r["Key"]));
            let mut case = object_call(function, &format!("s3:{op}"), &object, docs);
            for (header, key) in [
                ("if-none-match", "s3:if-none-match"),
                (
                    "x-amz-server-side-encryption",
                    "s3:x-amz-server-side-encryption",
                ),
                ("x-amz-object-lock-mode", "s3:object-lock-mode"),
            ] {
                if let Some(v) = headers.get(header) {
                    case = case.with(key, s(v));
                }
            }
            // A put with a retention date is authorized as `s3:PutObjectRetention` too.
            let mut out = vec![case.clone()];
            if headers.get("x-amz-object-lock-retain-until-date").is_some() {
                case.action = "s3:PutObjectRetention".into();
                out.push(case);
            }
            out
        }
        ("lambda", "Invoke") => {
            let name = s(&r["FunctionName"]);
            let arn = docs
                .function_arns
                .get(&name)
                .unwrap_or_else(|| panic!("{function} invoked an unknown function {name}"));
            vec![
                own_call(function, "lambda:InvokeFunction", arn, BROKER)
                    .identity("template", identity),
            ]
        }
        ("iam", op) => {
            // The sweeper's own credentials change roles in the broker's account; a revoker
            // role's, roles in its own. The example's target roles all carry the boundary.
            let account = if call.access_key == "testing" {
                BROKER.to_owned()
            } else {
                assumed.unwrap_or_default().to_owned()
            };
            let role = format!("arn:aws:iam::{account}:role/jit/{}", s(&r["RoleName"]));
            let (principal, principal_arn, policy) = if account == BROKER {
                (
                    function_session(function),
                    function_role(function),
                    identity.clone(),
                )
            } else {
                (
                    format!("arn:aws:sts::{account}:assumed-role/jit-revoker/jit-sweeper"),
                    format!("arn:aws:iam::{account}:role/jit-revoker"),
                    docs.revoker_policy[&account].clone(),
                )
            };
            let mut case = Case::new(&principal, &format!("iam:{op}"), &role, &account)
                .with("aws:PrincipalArn", principal_arn)
                .with("aws:PrincipalAccount", account.as_str())
                .with("aws:ResourceAccount", account.as_str())
                .identity("policy", &policy);
            if op != "GetRolePolicy" {
                case = case.with(
                    "iam:PermissionsBoundary",
                    format!("arn:aws:iam::{account}:policy/jit-target-boundary"),
                );
            }
            vec![case]
        }
        (service, op) => panic!("an unexpected call {service}:{op}"),
    }
}

/// Indexes each function may query, as the design intends.
const INDEX_ACCESS: [(&str, &[&str]); 6] = [
    (
        "intake",
        &["by_requester", "pending_by_target", "audit_by_day"],
    ),
    ("approver", &[]),
    ("slack", &[]),
    ("issuer", &[]),
    ("sweeper", &["due", "audit_by_day"]),
    ("activity", &[]),
];

/// Every index of the table.
const INDEXES: [&str; 4] = ["by_requester", "pending_by_target", "due", "audit_by_day"];

/// A labelled expectation.
type Spec = (String, Expectation);

fn expect(label: String, case: Case, allowed: bool) -> Spec {
    (label, Expectation { case, allowed })
}

/// The hand-written table of what each function may do, in the example deployment.
fn spec(table: &str, docs: &Documents, keys: &BTreeMap<String, String>) -> Vec<Spec> {
    let mut out = Vec::new();
    let actions = [
        "dynamodb:GetItem",
        "dynamodb:BatchGetItem",
        "dynamodb:Query",
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
        "dynamodb:DeleteItem",
        "dynamodb:ConditionCheckItem",
    ];
    for f in FUNCTIONS {
        let identity = &docs.functions[f];
        for action in actions {
            let allowed: &[&str] = ITEM_ACCESS
                .iter()
                .find(|(g, a, _)| *g == f && *a == action)
                .map_or(&[], |(_, _, kinds)| kinds);
            for kind in ITEM_KINDS {
                let key = if kind.ends_with('#') {
                    format!("{kind}x")
                } else {
                    kind.to_owned()
                };
                let case = own_call(f, action, &table_arn(table), BROKER)
                    .with("dynamodb:LeadingKeys", json!([key]))
                    .identity("template", identity);
                out.push(expect(
                    format!("{f} {action} on {kind}"),
                    case,
                    allowed.contains(&kind),
                ));
            }
        }
        let indexes = INDEX_ACCESS.iter().find(|(g, _)| *g == f).unwrap().1;
        for index in INDEXES {
            let case = own_call(
                f,
                "dynamodb:Query",
                &format!("{}/index/{index}", table_arn(table)),
                BROKER,
            )
            .identity("template", identity);
            out.push(expect(
                format!("{f} queries index {index}"),
                case,
                indexes.contains(&index),
            ));
        }
        let case = own_call(f, "dynamodb:DeleteTable", &table_arn(table), BROKER)
            .identity("template", identity);
        out.push(expect(format!("{f} deletes the table"), case, false));
        // Its own key signs; no other function's does; every public key may be read by the
        // functions that verify evidence (not the sweeper, which verifies nothing).
        for (name, id) in keys {
            // The Slack function records reviews, the approver's records, with its key.
            let own = name.to_lowercase().starts_with(f)
                || (f == "slack" && name == "ApproverSigningKey");
            // The sweeper verifies nothing; the activity function signs and verifies nothing.
            let verifies = f != "sweeper" && f != "activity";
            for (action, allowed) in [("kms:Sign", own), ("kms:GetPublicKey", verifies)] {
                let mut case =
                    own_call(f, action, &key_arn(id), BROKER).identity("template", identity);
                case.resource_policy = Some(docs.key_policies[id].clone());
                out.push(expect(format!("{f} {action} with {name}"), case, allowed));
            }
            // Whatever an account administrator's IAM policy allows, nobody else signs.
            let mut admin = Case::new(
                &format!("arn:aws:sts::{BROKER}:assumed-role/Admin/someone"),
                "kms:Sign",
                &key_arn(id),
                BROKER,
            )
            .with(
                "aws:PrincipalArn",
                format!("arn:aws:iam::{BROKER}:role/Admin"),
            )
            .with("aws:PrincipalAccount", BROKER)
            .identity(
                "admin",
                &json!({"Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}),
            );
            admin.resource_policy = Some(docs.key_policies[id].clone());
            out.push(expect(
                format!("an administrator signs with {name}"),
                admin.clone(),
                false,
            ));
            // Only the key administrator changes the key's policy, disables or deletes it,
            // or grants its use; not the account's administrators, not the functions.
            let key_admin_session =
                format!("arn:aws:sts::{BROKER}:assumed-role/jit-key-admin/someone");
            for action in [
                "kms:PutKeyPolicy",
                "kms:ScheduleKeyDeletion",
                "kms:DisableKey",
                "kms:CreateGrant",
            ] {
                let mut by_admin = admin.clone();
                by_admin.action = action.into();
                out.push(expect(
                    format!("an administrator {action} on {name}"),
                    by_admin.clone(),
                    false,
                ));
                let mut by_key_admin = by_admin;
                by_key_admin.principal = key_admin_session.clone();
                by_key_admin
                    .context
                    .insert("aws:PrincipalArn".into(), json!(KEY_ADMINISTRATOR));
                out.push(expect(
                    format!("the key administrator {action} on {name}"),
                    by_key_admin,
                    true,
                ));
                let mut by_function =
                    own_call(f, action, &key_arn(id), BROKER).identity("template", identity);
                by_function.resource_policy = Some(docs.key_policies[id].clone());
                out.push(expect(
                    format!("{f} {action} on {name}"),
                    by_function,
                    false,
                ));
            }
        }
    }
    // Only the activity function invokes a function, and only the sweeper (a guardrail's
    // revocation); no function invokes itself or any other.
    for f in FUNCTIONS {
        for g in FUNCTIONS {
            let logical = format!("{}{}Function", g[..1].to_uppercase(), &g[1..]);
            let case = own_call(
                f,
                "lambda:InvokeFunction",
                &docs.function_arns[&logical],
                BROKER,
            )
            .identity("template", &docs.functions[f]);
            out.push(expect(
                format!("{f} invokes {g}"),
                case,
                (f, g) == ("activity", "sweeper"),
            ));
        }
    }
    // Only the approver reads the PagerDuty token, only the Slack function the Slack app's two
    // secrets; no other secret is read, and nobody changes one.
    for f in FUNCTIONS {
        let identity = &docs.functions[f];
        for (secret, action, allowed) in [
            (
                "jit/pagerduty-token",
                "secretsmanager:GetSecretValue",
                f == "approver",
            ),
            (
                "jit/slack-signing-secret",
                "secretsmanager:GetSecretValue",
                f == "slack",
            ),
            (
                "jit/slack-bot-token",
                "secretsmanager:GetSecretValue",
                f == "slack",
            ),
            (
                "jit/slack-bot-token",
                "secretsmanager:PutSecretValue",
                false,
            ),
            (
                "jit/pagerduty-token-old",
                "secretsmanager:GetSecretValue",
                false,
            ),
            ("jit/slack-signing", "secretsmanager:GetSecretValue", false),
            (
                "jit/pagerduty-token",
                "secretsmanager:PutSecretValue",
                false,
            ),
            (
                "jit/pagerduty-token",
                "secretsmanager:DescribeSecret",
                false,
            ),
        ] {
            let case =
                own_call(f, action, &secret_arn(secret), BROKER).identity("template", identity);
            out.push(expect(format!("{f} {action} on {secret}"), case, allowed));
        }
    }
    out.extend(assume_role_spec(docs));
    out.extend(bucket_spec(docs));
    out
}

/// The audit bucket: only the sweeper writes, only new keys, encrypted, over TLS; nobody
/// deletes or changes the bucket's lock, versioning or policy, the account's administrators
/// included, but the key administrator, who changes only the bucket's settings.
fn bucket_spec(docs: &Documents) -> Vec<Spec> {
    let bucket = format!("arn:aws:s3:::{}", jit_stack::AUDIT_BUCKET);
    let object = format!("{bucket}/audit/v1/dt=2026-12-06/hour=14/period.ocsf.jsonl.gz");
    let put = |f: &str| {
        object_call(f, "s3:PutObject", &object, docs)
            .with("s3:if-none-match", "*")
            .with("s3:x-amz-server-side-encryption", "AES256")
    };
    let mut out = Vec::new();
    for f in FUNCTIONS {
        out.push(expect(
            format!("{f} puts a new period object"),
            put(f),
            f == "sweeper",
        ));
        out.push(expect(
            format!("{f} reads a period object"),
            object_call(f, "s3:GetObject", &object, docs),
            f == "sweeper",
        ));
        for action in [
            "s3:DeleteObject",
            "s3:DeleteObjectVersion",
            "s3:BypassGovernanceRetention",
        ] {
            out.push(expect(
                format!("{f} {action}"),
                object_call(f, action, &object, docs),
                false,
            ));
        }
    }
    let mut overwrite = put("sweeper");
    overwrite.context.remove("s3:if-none-match");
    out.push(expect(
        "the sweeper overwrites an object".into(),
        overwrite,
        false,
    ));
    let mut plain = put("sweeper");
    plain.context.remove("s3:x-amz-server-side-encryption");
    out.push(expect("the sweeper puts unencrypted".into(), plain, false));
    let insecure = put("sweeper").with("aws:SecureTransport", "false");
    out.push(expect(
        "the sweeper puts over plain HTTP".into(),
        insecure,
        false,
    ));
    let admin_policy = json!({"Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]});
    let as_role = |role: &str, action: &str, resource: &str| {
        let mut case = Case::new(
            &format!("arn:aws:sts::{BROKER}:assumed-role/{role}/someone"),
            action,
            resource,
            BROKER,
        )
        .with(
            "aws:PrincipalArn",
            format!("arn:aws:iam::{BROKER}:role/{role}"),
        )
        .with("aws:PrincipalAccount", BROKER)
        .with("aws:ResourceAccount", BROKER)
        .with("aws:SecureTransport", "true")
        .identity("admin", &admin_policy);
        case.resource_policy = Some(docs.bucket_policy.clone());
        case
    };
    out.push(expect(
        "an administrator reads a period object".into(),
        as_role("Admin", "s3:GetObject", &object),
        true,
    ));
    for action in [
        "s3:PutObject",
        "s3:DeleteObjectVersion",
        "s3:PutObjectRetention",
    ] {
        let case = as_role("Admin", action, &object)
            .with("s3:if-none-match", "*")
            .with("s3:x-amz-server-side-encryption", "AES256");
        out.push(expect(
            format!("an administrator {action} on a period object"),
            case,
            false,
        ));
    }
    let key_admin = KEY_ADMINISTRATOR.rsplit('/').next().unwrap_or_default();
    for action in [
        "s3:PutBucketPolicy",
        "s3:PutBucketVersioning",
        "s3:PutBucketObjectLockConfiguration",
    ] {
        out.push(expect(
            format!("an administrator {action}"),
            as_role("Admin", action, &bucket),
            false,
        ));
        out.push(expect(
            format!("the key administrator {action}"),
            as_role(key_admin, action, &bucket),
            true,
        ));
    }
    out.push(expect(
        "the key administrator deletes the bucket".into(),
        as_role(key_admin, "s3:DeleteBucket", &bucket),
        false,
    ));
    out
}

/// An `AssumeRole` as the issuer makes it: the grant and requester tags, a source identity.
fn issuer_assumes(
    role: &str,
    principal: (&str, &str),
    identity: &Value,
    trust: Option<&Value>,
) -> Case {
    let account = role.split(':').nth(4).unwrap().to_owned();
    let mut case = Case::new(principal.0, "sts:AssumeRole", role, &account)
        .with("aws:PrincipalArn", principal.1)
        .with(
            "aws:PrincipalAccount",
            principal.1.split(':').nth(4).unwrap(),
        )
        .with("aws:ResourceAccount", account.as_str())
        .with(
            "aws:RequestTag/jit-grant",
            "0190c0de-0000-7000-8000-000000000001",
        )
        .with("aws:RequestTag/jit-requester", "alice")
        .with("aws:TagKeys", json!(["jit-grant", "jit-requester"]))
        .with("sts:SourceIdentity", "alice")
        .with(
            "sts:RoleSessionName",
            "alice@0190c0de-0000-7000-8000-000000000001",
        )
        .identity("identity", identity);
    case.resource_policy = trust.cloned();
    case
}

/// Who may assume which role: targets only by the issuer, with tags and a source identity;
/// revoker roles only by the sweeper; nothing in unlisted accounts or off the `/jit/` path.
fn assume_role_spec(docs: &Documents) -> Vec<Spec> {
    let issuer = (function_session("issuer"), function_role("issuer"));
    let sweeper = (function_session("sweeper"), function_role("sweeper"));
    let anything = json!({"Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]});
    let target = "arn:aws:iam::333333333333:role/jit/prod-logs-ro";
    let trust = docs.target_trust.get("333333333333");
    let i = (issuer.0.as_str(), issuer.1.as_str());
    let mut out = vec![
        expect(
            "the issuer assumes a target role with its tags and source identity".into(),
            issuer_assumes(target, i, &docs.functions["issuer"], trust),
            true,
        ),
        expect(
            "the issuer assumes a role off the /jit/ path".into(),
            issuer_assumes(
                "arn:aws:iam::333333333333:role/admin",
                i,
                &docs.functions["issuer"],
                trust,
            ),
            false,
        ),
        expect(
            "the issuer assumes a /jit/ role in an account not listed".into(),
            issuer_assumes(
                "arn:aws:iam::444444444444:role/jit/prod",
                i,
                &docs.functions["issuer"],
                trust,
            ),
            false,
        ),
        expect(
            "the issuer assumes a /jit/ role in the broker's own account".into(),
            issuer_assumes(
                &format!("arn:aws:iam::{BROKER}:role/jit/prod"),
                i,
                &docs.functions["issuer"],
                trust,
            ),
            false,
        ),
    ];
    // The trust policy itself, whatever the caller's own policies allow.
    for (who, principal, principal_arn) in [
        (
            "the requester",
            format!("arn:aws:iam::{BROKER}:user/alice"),
            format!("arn:aws:iam::{BROKER}:user/alice"),
        ),
        ("the sweeper", sweeper.0.clone(), sweeper.1.clone()),
        (
            "a session of the target role itself (chaining)",
            "arn:aws:sts::333333333333:assumed-role/prod-logs-ro/alice@g".to_owned(),
            target.to_owned(),
        ),
    ] {
        out.push(expect(
            format!("{who} assumes a target role"),
            issuer_assumes(target, (&principal, &principal_arn), &anything, trust),
            false,
        ));
    }
    let mut untagged = issuer_assumes(target, i, &docs.functions["issuer"], trust);
    untagged.context.remove("aws:RequestTag/jit-grant");
    untagged
        .context
        .insert("aws:TagKeys".into(), json!(["jit-requester"]));
    out.push(expect(
        "the issuer assumes a target role without the grant tag".into(),
        untagged,
        false,
    ));
    let mut no_requester = issuer_assumes(target, i, &docs.functions["issuer"], trust);
    no_requester.context.remove("aws:RequestTag/jit-requester");
    no_requester
        .context
        .insert("aws:TagKeys".into(), json!(["jit-grant"]));
    out.push(expect(
        "the issuer assumes a target role without the requester tag".into(),
        no_requester,
        false,
    ));
    let mut anonymous = issuer_assumes(target, i, &docs.functions["issuer"], trust);
    anonymous.context.remove("sts:SourceIdentity");
    out.push(expect(
        "the issuer assumes a target role without a source identity".into(),
        anonymous,
        false,
    ));
    let mut extra = issuer_assumes(target, i, &docs.functions["issuer"], trust);
    extra.action = "sts:TagSession".into();
    extra
        .context
        .insert("aws:RequestTag/team".into(), json!("x"));
    extra.context.insert(
        "aws:TagKeys".into(),
        json!(["jit-grant", "jit-requester", "team"]),
    );
    out.push(expect(
        "the issuer tags a session with a key of its own".into(),
        extra,
        false,
    ));
    let mut no_tag_session = issuer_assumes(target, i, &docs.functions["issuer"], trust);
    no_tag_session.action = "sts:TagSession".into();
    no_tag_session.context.remove("aws:RequestTag/jit-grant");
    no_tag_session
        .context
        .insert("aws:TagKeys".into(), json!(["jit-requester"]));
    out.push(expect(
        "the issuer tags a session without the grant tag".into(),
        no_tag_session,
        false,
    ));
    let mut no_source = issuer_assumes(target, i, &docs.functions["issuer"], trust);
    no_source.action = "sts:SetSourceIdentity".into();
    no_source.context.remove("sts:SourceIdentity");
    out.push(expect(
        "the issuer sets no source identity".into(),
        no_source,
        false,
    ));
    for (action, ok) in [("sts:TagSession", true), ("sts:SetSourceIdentity", true)] {
        let mut c = issuer_assumes(target, i, &docs.functions["issuer"], trust);
        c.action = action.into();
        out.push(expect(
            format!("the issuer {action} on a target role"),
            c,
            ok,
        ));
    }
    for f in ["intake", "approver", "sweeper"] {
        let p = (function_session(f), function_role(f));
        out.push(expect(
            format!("{f} assumes a target role"),
            issuer_assumes(target, (&p.0, &p.1), &docs.functions[f], trust),
            false,
        ));
    }
    // Revoker roles: only the sweeper, only in listed accounts.
    for (who, p, account, allowed) in [
        ("the sweeper", &sweeper, "222222222222", true),
        ("the sweeper", &sweeper, "444444444444", false),
        ("the issuer", &issuer, "222222222222", false),
    ] {
        let role = format!("arn:aws:iam::{account}:role/jit-revoker");
        let mut case = Case::new(&p.0, "sts:AssumeRole", &role, account)
            .with("aws:PrincipalArn", p.1.as_str())
            .with("aws:PrincipalAccount", BROKER)
            .with("aws:ResourceAccount", account)
            .identity(
                "identity",
                &docs.functions[if who == "the sweeper" {
                    "sweeper"
                } else {
                    "issuer"
                }],
            );
        case.resource_policy = docs
            .revoker_trust
            .get(account)
            .cloned()
            .or_else(|| docs.revoker_trust.get("222222222222").cloned());
        out.push(expect(
            format!("{who} assumes the revoker role of {account}"),
            case,
            allowed,
        ));
    }
    // What a revoker role may change: the revocation policy of bounded /jit/ roles.
    let account = "222222222222";
    let revoker = &docs.revoker_policy[account];
    for (action, role, boundary, allowed) in [
        (
            "iam:PutRolePolicy",
            "jit/prod-db-admin",
            Some("jit-target-boundary"),
            true,
        ),
        (
            "iam:DeleteRolePolicy",
            "jit/prod-db-admin",
            Some("jit-target-boundary"),
            true,
        ),
        (
            "iam:PutRolePolicy",
            "jit/prod-db-admin",
            Some("other-boundary"),
            false,
        ),
        ("iam:PutRolePolicy", "jit/prod-db-admin", None, false),
        (
            "iam:PutRolePolicy",
            "admin",
            Some("jit-target-boundary"),
            false,
        ),
        ("iam:GetRolePolicy", "jit/prod-db-admin", None, true),
        (
            "iam:AttachRolePolicy",
            "jit/prod-db-admin",
            Some("jit-target-boundary"),
            false,
        ),
    ] {
        let role = format!("arn:aws:iam::{account}:role/{role}");
        let mut case = Case::new(
            &format!("arn:aws:sts::{account}:assumed-role/jit-revoker/jit-sweeper"),
            action,
            &role,
            account,
        )
        .with(
            "aws:PrincipalArn",
            format!("arn:aws:iam::{account}:role/jit-revoker"),
        )
        .with("aws:PrincipalAccount", account)
        .identity("policy", revoker);
        if let Some(b) = boundary {
            case = case.with(
                "iam:PermissionsBoundary",
                format!("arn:aws:iam::{account}:policy/{b}"),
            );
        }
        out.push(expect(
            format!("a revoker role {action} on {role} (boundary {boundary:?})"),
            case,
            allowed,
        ));
    }
    // The sweeper's own credentials change no role in the broker's account (no targets there).
    let mut own = own_call(
        "sweeper",
        "iam:PutRolePolicy",
        &format!("arn:aws:iam::{BROKER}:role/jit/prod"),
        BROKER,
    )
    .with(
        "iam:PermissionsBoundary",
        format!("arn:aws:iam::{BROKER}:policy/jit-target-boundary"),
    )
    .identity("template", &docs.functions["sweeper"]);
    own.resource_policy = None;
    out.push(expect(
        "the sweeper changes a role in the broker's account".into(),
        own,
        false,
    ));
    out
}

/// Every case in `specs` that holds `original` as a policy, with `mutant` in its place.
fn substituted(specs: &[Spec], original: &Value, mutant: &Value) -> Vec<Expectation> {
    specs
        .iter()
        .filter_map(|(_, e)| {
            let mut case = e.case.clone();
            let mut hit = false;
            for (_, policy) in &mut case.identity {
                if policy == original {
                    *policy = mutant.clone();
                    hit = true;
                }
            }
            if case.resource_policy.as_ref() == Some(original) {
                case.resource_policy = Some(mutant.clone());
                hit = true;
            }
            hit.then(|| Expectation {
                case,
                allowed: e.allowed,
            })
        })
        .collect()
}

/// Evaluates `specs` and fails naming every case decided otherwise than expected.
fn assert_decided_as_expected(specs: &[Spec]) {
    let cases: Vec<Case> = specs.iter().map(|(_, e)| e.case.clone()).collect();
    let decisions = evaluate(&cases).unwrap();
    let wrong: Vec<String> = specs
        .iter()
        .zip(&decisions)
        .filter(|((_, e), d)| d.allowed() != e.allowed)
        .map(|((label, e), d)| {
            format!(
                "{label}: {d:?}, expected {}",
                if e.allowed { "allowed" } else { "denied" }
            )
        })
        .collect();
    assert!(
        wrong.is_empty(),
        "{} wrong:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
}

/// The evaluation of the calls recorded on a running stack, the table of what each function
/// may do, and the mutants of every document.
fn evaluate_least_privilege(stack: &jit_stack::Stack) {
    let keys = &stack.signing_keys;
    let table = jit_stack::TABLE;
    let refs = broker_refs(table, keys, false);
    let docs = documents(&refs, keys);
    let mut specs: Vec<Spec> = Vec::new();
    let mut seen = BTreeSet::new();
    let mut report = Vec::new();
    for function in FUNCTIONS {
        let calls = stack.aws_calls.of(function);
        assert!(!calls.is_empty(), "{function} made no AWS call");
        let mut used = BTreeSet::new();
        let mut assumed: Option<String> = None;
        for call in &calls {
            let cases = requests(call, function, table, &docs, assumed.as_deref());
            if call.operation == "AssumeRole" {
                assumed = s(&call.request["RoleArn"])
                    .split(':')
                    .nth(4)
                    .map(str::to_owned);
            }
            for case in cases {
                used.insert(case.action.clone());
                // One case for each distinct request.
                let key = format!(
                    "{} {} {} {:?}",
                    case.principal, case.action, case.resource, case.context
                );
                if seen.insert(key) {
                    specs.push(expect(
                        format!(
                            "{function} as recorded: {} on {}",
                            case.action, case.resource
                        ),
                        case,
                        true,
                    ));
                }
            }
        }
        let granted: BTreeSet<String> = docs.functions[function]["Statement"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|st| st["Effect"] == "Allow")
            .flat_map(|st| match &st["Action"] {
                Value::Array(a) => a.iter().map(s).collect::<Vec<_>>(),
                one => vec![s(one)],
            })
            .collect();
        for action in &granted {
            let unreached = UNREACHED
                .iter()
                .any(|(f, a, _)| *f == function && a == action);
            assert!(
                used.contains(action) || unreached,
                "the template grants {function} `{action}`, which it never called"
            );
        }
        report.push(format!(
            "{function}: {}",
            used.into_iter().collect::<Vec<_>>().join(", ")
        ));
    }
    let recorded = specs.len();
    specs.extend(spec(table, &docs, keys));
    assert_decided_as_expected(&specs);
    println!("AWS actions each function called:\n{}", report.join("\n"));
    println!(
        "IAM evaluation: {recorded} distinct recorded requests allowed, {} cases of the hand-written table decided as written",
        specs.len() - recorded
    );

    // The same template in the variants the parameters allow: targets in the broker's
    // account (the sweeper's own statements), and the broker's account listed by mistake in
    // TargetAccountIds without the opt-in (the issuer still may not assume roles there).
    let issuer_session = function_session("issuer");
    let issuer_role = function_role("issuer");
    let opted = documents(&broker_refs(table, keys, true), keys);
    let mut listed_refs = broker_refs(table, keys, false);
    listed_refs.insert(
        "TargetAccountIds".into(),
        json!([TARGET_ACCOUNTS[0], TARGET_ACCOUNTS[1], BROKER]),
    );
    let listed = documents(&listed_refs, keys);
    let broker_role = format!("arn:aws:iam::{BROKER}:role/jit/prod");
    let own_put = |docs: &Documents, boundary: &str| {
        own_call("sweeper", "iam:PutRolePolicy", &broker_role, BROKER)
            .with(
                "iam:PermissionsBoundary",
                format!("arn:aws:iam::{BROKER}:policy/{boundary}"),
            )
            .identity("template", &docs.functions["sweeper"])
    };
    let variants = vec![
        expect(
            "opted in: the sweeper changes a bounded role in the broker's account".into(),
            own_put(&opted, "jit-target-boundary"),
            true,
        ),
        expect(
            "opted in: the sweeper changes an unbounded role in the broker's account".into(),
            own_put(&opted, "other"),
            false,
        ),
        expect(
            "opted in: the sweeper reads a target role's policy in the broker's account".into(),
            own_call("sweeper", "iam:GetRolePolicy", &broker_role, BROKER)
                .identity("template", &opted.functions["sweeper"]),
            true,
        ),
        expect(
            "opted in: the sweeper reads a policy of a role off the /jit/ path".into(),
            own_call(
                "sweeper",
                "iam:GetRolePolicy",
                &format!("arn:aws:iam::{BROKER}:role/admin"),
                BROKER,
            )
            .identity("template", &opted.functions["sweeper"]),
            false,
        ),
        expect(
            "opted in: the sweeper changes a bounded role off the /jit/ path".into(),
            own_call(
                "sweeper",
                "iam:PutRolePolicy",
                &format!("arn:aws:iam::{BROKER}:role/admin"),
                BROKER,
            )
            .with(
                "iam:PermissionsBoundary",
                format!("arn:aws:iam::{BROKER}:policy/jit-target-boundary"),
            )
            .identity("template", &opted.functions["sweeper"]),
            false,
        ),
        expect(
            "broker account listed, not opted in: the issuer assumes a role in an unlisted account"
                .into(),
            issuer_assumes(
                "arn:aws:iam::444444444444:role/jit/prod",
                (&issuer_session, &issuer_role),
                &listed.functions["issuer"],
                // An account outside the list whose role trusts the issuer anyway.
                listed.target_trust.get("333333333333"),
            ),
            false,
        ),
        expect(
            "broker account listed, not opted in: the issuer assumes a role there".into(),
            issuer_assumes(
                &broker_role,
                (&issuer_session, &issuer_role),
                &listed.functions["issuer"],
                None,
            ),
            false,
        ),
        expect(
            "broker account listed, not opted in: the issuer still assumes other targets".into(),
            issuer_assumes(
                "arn:aws:iam::333333333333:role/jit/prod-logs-ro",
                (&issuer_session, &issuer_role),
                &listed.functions["issuer"],
                listed.target_trust.get("333333333333"),
            ),
            true,
        ),
    ];
    assert_decided_as_expected(&variants);

    // Mutants of every document, against every case that uses it.
    let mut reports: Vec<MutationReport> = Vec::new();
    let mut documents_to_mutate: Vec<(String, Value, &[Spec])> = Vec::new();
    for f in FUNCTIONS {
        documents_to_mutate.push((
            format!("{f}'s statements"),
            docs.functions[f].clone(),
            &specs,
        ));
    }
    // The variants: only the statements the parameter adds or changes.
    for (label, doc, sids) in [
        (
            "the issuer's statements, broker account listed",
            &listed.functions["issuer"],
            &[
                "NoTargetsInTheBrokerAccount",
                "AssumeTargetRolesInListedAccounts",
            ][..],
        ),
        (
            "the sweeper's statements, opted in",
            &opted.functions["sweeper"],
            &[
                "RevocationPolicyOnBoundedTargetRoles",
                "ReadRevocationPolicies",
            ][..],
        ),
    ] {
        let r = mutation_report_of(label, doc, Some(sids), &EQUIVALENT, |mutant| {
            substituted(&variants, doc, mutant)
        })
        .unwrap();
        println!("{r}");
        reports.push(r);
    }
    documents_to_mutate.push((
        "the target role's trust policy".into(),
        docs.target_trust["333333333333"].clone(),
        &specs,
    ));
    documents_to_mutate.push((
        "the revoker role's policy".into(),
        docs.revoker_policy["222222222222"].clone(),
        &specs,
    ));
    documents_to_mutate.push((
        "the revoker role's trust policy".into(),
        docs.revoker_trust["222222222222"].clone(),
        &specs,
    ));
    let (name, id) = keys.iter().next().unwrap();
    documents_to_mutate.push((
        format!("{name}'s key policy"),
        docs.key_policies[id].clone(),
        &specs,
    ));
    for (label, doc, cases) in documents_to_mutate {
        let r = mutation_report(&label, &doc, &EQUIVALENT, |mutant| {
            substituted(cases, &doc, mutant)
        })
        .unwrap();
        println!("{r}");
        reports.push(r);
    }
    let survived: Vec<String> = reports
        .iter()
        .flat_map(|r| r.survived.iter().map(move |s| format!("{}: {s}", r.label)))
        .collect();
    let killed: usize = reports.iter().map(|r| r.killed.len()).sum();
    let equivalent: usize = reports.iter().map(|r| r.equivalent.len()).sum();
    println!(
        "template mutants: {killed} killed, {equivalent} equivalent, {} survived",
        survived.len()
    );
    assert!(
        survived.is_empty(),
        "mutants no case kills:\n{}",
        survived.join("\n")
    );
}

#[tokio::test]
async fn each_function_is_granted_exactly_the_aws_calls_its_binary_makes() {
    let mut opts = options("iam");
    opts.record_aws_calls = true;
    opts.sweep_every = Some(Duration::from_secs(2));
    let running = start(opts).unwrap();
    let stack: &jit_stack::Stack = &running;
    let api = api(stack);
    let alice = stack.token("alice-iam", &["sre"]);
    let sam = stack.token("sam-iam", &["sre"]);
    let erin = stack.token("erin-iam", &["engineers"]);
    let dan = stack.token("dan-iam", &["dba"]);
    let lee = stack.token("lee-iam", &["dba-leads"]);
    let sue = stack.token("sue-iam", &["security"]);

    // Auto-approval, credentials, a console link, and a revocation on the broker's account.
    let id = ask(&api, &alice, asking("prod-logs-ro", "15m")).await;
    api.wait_for(&id, &alice, Duration::from_secs(30), |g| {
        g.state == GrantState::Active
    })
    .await
    .unwrap();
    assert_eq!(pull(&api, &id, &alice).await.status, 200);
    let console = send(
        &api,
        ("POST".into(), format!("/grants/{id}/console")),
        &alice,
        None,
    )
    .await;
    assert_eq!(console.status, 200, "{}", console.body);
    assert_eq!(revoke(&api, &id, &sam).await.status, 200);

    // Two reviews open a cross-account grant; its revocation goes through the revoker role.
    let db = ask(&api, &dan, asking("prod-db-admin", "1h")).await;
    api.wait_looked_at(&db, &dan).await.unwrap();
    for reviewer in [&lee, &sue] {
        let path = format!("/requests/{db}/reviews");
        let r = send(
            &api,
            ("POST".into(), path),
            reviewer,
            Some(json!({"decision": "approve"})),
        )
        .await;
        assert_eq!(r.status, 200, "{}", r.body);
    }
    assert_eq!(pull(&api, &db, &dan).await.status, 200);
    assert_eq!(revoke(&api, &db, &sue).await.status, 200);

    // A denial, a cancel, the lists, and an audit export.
    let denied = ask(&api, &erin, asking("prod-logs-ro", "1h")).await;
    api.wait_looked_at(&denied, &erin).await.unwrap();
    let r = send(
        &api,
        ("POST".into(), format!("/requests/{denied}/reviews")),
        &sam,
        Some(json!({"decision": "deny", "comment": "not now"})),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let cancelled = ask(&api, &erin, asking("prod-logs-ro", "1h")).await;
    let r = send(
        &api,
        ("POST".into(), format!("/requests/{cancelled}/cancel")),
        &erin,
        None,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        state_of(&api, &cancelled, &erin).await.state,
        GrantState::Cancelled
    );
    for scope in ["mine", "reviewable"] {
        let listed = api.as_user(&sam).list_requests(scope, None, 20, None).await;
        listed.unwrap_or_else(|e| panic!("{scope}: {e}"));
    }
    // On call: the approver reads the PagerDuty token from Secrets Manager to ask who is on
    // call, and opens read-only access at once for the SRE on call.
    stack
        .pagerduty()
        .set_roster(vec![jit_local::RosterEntry::permanent(
            "POSCAR1", "PSRE001", 1,
        )]);
    let oscar = stack.token("oscar-iam", &["sre"]);
    let mut on_call = asking("prod-logs-ro", "15m");
    on_call.ticket = None;
    let id = ask(&api, &oscar, on_call).await;
    let g = api
        .wait_for(&id, &oscar, Duration::from_secs(30), |g| {
            g.state != GrantState::Pending
        })
        .await
        .unwrap();
    assert_eq!(g.state, GrantState::Active, "{g:?}");
    // Approvals in Slack: a link made with a one-time code (intake redeems it and signs the
    // link and the groups it saw), the request's message posted and updated from the stream,
    // and a click that denies it (the Slack function reads its two secrets, verifies the link
    // and groups, records the review with the approver's key and frees the slot).
    let slack = stack.slack();
    let code = stack.slack_link_code("U0SAMIAM").await.unwrap();
    api.as_user(&sam).link_slack(&code).await.unwrap();
    let mut waits = asking("prod-logs-ro", "1h");
    waits.ticket = None;
    let waiting = ask(&api, &erin, waits).await;
    api.wait_looked_at(&waiting, &erin).await.unwrap();
    let click = slack.click("U0SAMIAM", &slack.team_id, "jit_deny", &waiting);
    let (status, answer) =
        jit_local::slack::post_form(&format!("{}/slack/interactions", stack.api_url), &click)
            .await
            .unwrap();
    assert!(status == 200 && answer.contains("You denied"), "{answer}");
    let until = std::time::Instant::now() + Duration::from_secs(30);
    while !slack
        .message_about(&waiting)
        .is_some_and(|m| m.buttons().is_empty() && m.updates > 0)
    {
        assert!(
            std::time::Instant::now() < until,
            "{:?}",
            slack.message_about(&waiting)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // A click on a target that needs a fresh sign-in is handed to the web page (the Slack
    // function keeps the handoff), and intake opens it once for the person signed in after.
    let mut admin = asking("break-glass-admin", "30m");
    admin.reason = "IAM suite: a click handed to the web page".into();
    let fresh = ask(&api, &sam, admin).await;
    api.wait_looked_at(&fresh, &sam).await.unwrap();
    let click = slack.click("U0SAMIAM", &slack.team_id, "jit_approve", &fresh);
    let (_, answer) =
        jit_local::slack::post_form(&format!("{}/slack/interactions", stack.api_url), &click)
            .await
            .unwrap();
    let token = answer
        .split("#/slack/")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .unwrap_or_else(|| panic!("{answer}"))
        .to_owned();
    let sam_again = stack.token("sam-iam", &["sre"]);
    let opened = api.as_user(&sam_again).open_slack_handoff(&token).await;
    assert_eq!(opened.unwrap().request_id, fresh);
    api.as_user(&sam).cancel(&fresh).await.unwrap();
    // A grant's session at work: its calls become the grant's activity, shown on its page; a
    // call a revoking guardrail names is handed to the sweeper, which judges it again and
    // revokes.
    let ada = stack.token("ada-iam", &["sre"]);
    let busy = ask(&api, &ada, asking("prod-logs-ro", "15m")).await;
    api.wait_for(&busy, &ada, Duration::from_secs(30), |g| {
        g.state == GrantState::Active
    })
    .await
    .unwrap();
    let c = pull(&api, &busy, &ada).await;
    assert_eq!(c.status, 200, "{}", c.body);
    let session = jit_stack::demo::session_config(stack, &c.read().unwrap());
    aws_sdk_dynamodb::Client::new(&session)
        .list_tables()
        .send()
        .await
        .unwrap();
    let _ = aws_sdk_iam::Client::new(&session)
        .delete_role_policy()
        .role_name("prod-logs-ro")
        .policy_name("jit-revocations")
        .send()
        .await;
    api.wait_for(&busy, &ada, Duration::from_secs(30), |g| {
        g.state == GrantState::Revoked
    })
    .await
    .unwrap();
    let shown = api.as_user(&ada).request_activity(&busy, 10, None).await;
    assert!(!shown.unwrap().items.is_empty());

    // A grant's trail for its page: one query on the grant's partition.
    let trail = api.as_user(&erin).request_trail(&cancelled).await;
    trail.unwrap_or_else(|e| panic!("the trail of {cancelled}: {e}"));
    super::verified_export(stack, &api, &sue).await;

    // A closed minute gets its signed checkpoint from a sweep.
    let checkpointed = |calls: &[AwsCall]| {
        calls.iter().any(|c| {
            c.operation == "TransactWriteItems" && c.request.to_string().contains("\"CHECKPOINTS\"")
        })
    };
    for _ in 0..100 {
        if checkpointed(&stack.aws_calls.of("sweeper")) {
            break;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    assert!(
        checkpointed(&stack.aws_calls.of("sweeper")),
        "no checkpoint was written"
    );

    evaluate_least_privilege(stack);
}
