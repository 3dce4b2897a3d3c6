//! The guardrails as IAM itself evaluates them (`jit_e2e::iam`, a real policy evaluator):
//! the revocation documents the sweeper derives, a target role's permissions boundary against
//! the broker's own resources, and what no function may ever do. Each document is also
//! mutated, statement by statement, and every mutant must change some answer here (or be
//! named as equivalent): a test that no mutant can fail proves nothing.

use std::collections::BTreeMap;

use jit_core::clock::Timestamp;
use jit_core::domain::{GrantId, RevocationEntry, RoleArn};
use jit_core::revocation::{INLINE_POLICY_LIMIT, RevocationPolicy, derive, policy_chars};
use jit_e2e::iam::{
    BROKER, Case, Decision, Expectation, broker_refs, evaluate, function_role, key_arn,
    mutation_report, workspace_template,
};
use serde_json::{Value, json};

/// The example's target account for the roles evaluated here.
const ACCOUNT: &str = "333333333333";

/// When the sweeper derives the documents.
const NOW: Timestamp = Timestamp::from_unix_seconds(1_800_000_000);

/// What a session does, in a spread of services: reads, writes, deletes, code changes, keys,
/// secrets.
fn sampled_actions() -> Vec<(&'static str, String)> {
    let a = ACCOUNT;
    vec![
        (
            "s3:GetObject",
            "arn:aws:s3:::prod-data/reports/q3.csv".into(),
        ),
        (
            "s3:PutObject",
            "arn:aws:s3:::prod-data/reports/q3.csv".into(),
        ),
        ("s3:DeleteBucket", "arn:aws:s3:::prod-data".into()),
        ("ec2:DescribeInstances", "*".into()),
        (
            "ec2:TerminateInstances",
            format!("arn:aws:ec2:us-east-1:{a}:instance/i-0abc"),
        ),
        (
            "dynamodb:Scan",
            format!("arn:aws:dynamodb:us-east-1:{a}:table/orders"),
        ),
        (
            "dynamodb:DeleteTable",
            format!("arn:aws:dynamodb:us-east-1:{a}:table/orders"),
        ),
        (
            "logs:FilterLogEvents",
            format!("arn:aws:logs:us-east-1:{a}:log-group:/app/api"),
        ),
        (
            "lambda:UpdateFunctionCode",
            format!("arn:aws:lambda:us-east-1:{a}:function:api"),
        ),
        (
            "kms:Decrypt",
            format!("arn:aws:kms:us-east-1:{a}:key/1234abcd-12ab-34cd-56ef-1234567890ab"),
        ),
        (
            "secretsmanager:GetSecretValue",
            format!("arn:aws:secretsmanager:us-east-1:{a}:secret:db-AbCdEf"),
        ),
        (
            "rds:DeleteDBInstance",
            format!("arn:aws:rds:us-east-1:{a}:db:prod"),
        ),
        ("cloudwatch:GetMetricData", "*".into()),
        (
            "sqs:SendMessage",
            format!("arn:aws:sqs:us-east-1:{a}:orders"),
        ),
    ]
}

fn managed(name: &str) -> Value {
    let path = jit_local::workspace_root().join("tests/iam/managed-policies.json");
    let all: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    all[name]["document"].clone()
}

/// The target account stack's permissions boundary, as `infra/target-account.yaml` makes it.
fn target_boundary_in(account: &str) -> Value {
    let doc = workspace_template("infra/target-account.yaml").unwrap();
    let refs = BTreeMap::from([
        ("AWS::Partition".to_owned(), json!("aws")),
        ("AWS::AccountId".to_owned(), json!(account)),
    ]);
    doc.properties("TargetBoundary")["PolicyDocument"].resolve(&refs)
}

fn grant(n: u32) -> GrantId {
    GrantId::parse(format!("0190c0de-0000-7000-8000-{n:012}")).unwrap()
}

fn entries(role: &str, grants: impl IntoIterator<Item = u32>) -> Vec<RevocationEntry> {
    grants
        .into_iter()
        .map(|n| RevocationEntry {
            role_arn: RoleArn::parse(role).unwrap(),
            revoker_role_arn: None,
            grant_id: grant(n),
            until: NOW.plus_secs(1800),
        })
        .collect()
}

/// A live session of `role` for grant `n`, issued `issued` seconds before `NOW`, calling
/// `action` on `resource` with the role's policies, its boundary and `revocations` on it.
fn session_case(
    role: &str,
    base: &Value,
    session_policy: Option<&Value>,
    n: u32,
    issued: i64,
    call: (&str, &str),
    revocations: Option<&Value>,
) -> Case {
    let mut case = session_case_in(ACCOUNT, role, base, n, issued, call, revocations);
    case.session_policy = session_policy.cloned();
    case
}

/// As [`session_case`], in `account`, with no session policy.
fn session_case_in(
    account: &str,
    role: &str,
    base: &Value,
    n: u32,
    issued: i64,
    (action, resource): (&str, &str),
    revocations: Option<&Value>,
) -> Case {
    let name = role.rsplit('/').next().unwrap();
    let mut case = Case::new(
        &format!(
            "arn:aws:sts::{account}:assumed-role/{name}/alice@{}",
            grant(n)
        ),
        action,
        resource,
        account,
    )
    .with("aws:PrincipalArn", role)
    .with("aws:PrincipalAccount", account)
    .with("aws:PrincipalTag/jit-grant", grant(n).as_str())
    .with("aws:PrincipalTag/jit-requester", "alice")
    .with("aws:SourceIdentity", "alice")
    .with("aws:TokenIssueTime", NOW.plus_secs(-issued).to_rfc3339())
    .with("aws:CurrentTime", NOW.plus_secs(5).to_rfc3339())
    .identity("managed", base);
    if let Some(doc) = revocations {
        case = case.identity("jit-revocations", doc);
    }
    case.boundary = Some(target_boundary_in(account));
    case
}

/// The sessions evaluated against one revocation document: a few of the revoked grants (one
/// minute old: every live revoked session is older than the cut-off) and other grants issued
/// a minute before, exactly at and a second after the cut-off.
fn sessions(policy: &RevocationPolicy, others: &[u32]) -> Vec<(u32, bool, i64)> {
    let revoked = match policy {
        RevocationPolicy::Precise { grants, .. } | RevocationPolicy::Fallback { grants, .. } => {
            numbers(grants)
        }
        RevocationPolicy::Absent => Vec::new(),
    };
    let mut out: Vec<(u32, bool, i64)> = revoked
        .iter()
        .take(3)
        .chain(revoked.last())
        .map(|n| (*n, true, 60))
        .collect();
    for n in others {
        for issued in [60, 0, -1] {
            out.push((*n, false, issued));
        }
    }
    out
}

/// What a role's sessions may do, with `document` as the role's revocation policy: each
/// sampled action, for each session, must be as it is without the document (`baseline`),
/// except that a revoked grant's sessions, and under the fallback every session issued before
/// the cut-off, are denied everything.
fn revocation_expectations(
    role: &str,
    base: &Value,
    session_policy: Option<&Value>,
    policy: &RevocationPolicy,
    others: &[u32],
    document: &Value,
    baseline: &[Decision],
) -> Vec<Expectation> {
    let fallback = matches!(policy, RevocationPolicy::Fallback { .. });
    let mut out = Vec::new();
    let mut i = 0;
    for (n, revoked, issued) in sessions(policy, others) {
        for (action, resource) in sampled_actions() {
            let case = session_case(
                role,
                base,
                session_policy,
                n,
                issued,
                (action, &resource),
                Some(document),
            );
            let cut = revoked || (fallback && issued > 0);
            out.push(Expectation {
                case,
                allowed: baseline[i].allowed() && !cut,
            });
            i += 1;
        }
    }
    out
}

/// What each session may do with no revocation policy on the role.
fn baseline(
    role: &str,
    base: &Value,
    session_policy: Option<&Value>,
    policy: &RevocationPolicy,
    others: &[u32],
) -> Vec<Decision> {
    let mut cases = Vec::new();
    for (n, _, issued) in sessions(policy, others) {
        for (action, resource) in sampled_actions() {
            cases.push(session_case(
                role,
                base,
                session_policy,
                n,
                issued,
                (action, &resource),
                None,
            ));
        }
    }
    evaluate(&cases).unwrap()
}

fn numbers(grants: &[GrantId]) -> Vec<u32> {
    grants
        .iter()
        .map(|g| g.as_str().rsplit('-').next().unwrap().parse().unwrap())
        .collect()
}

fn target(id: &str) -> Value {
    let path = jit_local::workspace_root().join("infra/policies/targets.json");
    let targets: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    targets["targets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == id)
        .cloned()
        .unwrap()
}

#[test]
fn the_revocation_documents_deny_exactly_the_revoked_sessions() {
    let admin_role = format!("arn:aws:iam::{ACCOUNT}:role/jit/break-glass-admin");
    let logs_role = format!("arn:aws:iam::{ACCOUNT}:role/jit/prod-logs-ro");
    // The precise form; the precise form as large as the budget allows; the fallback.
    let precise = derive(&entries(&admin_role, [1, 2, 3]), NOW, INLINE_POLICY_LIMIT);
    let mut n = 3;
    let at_limit = loop {
        let next = derive(&entries(&admin_role, 1..=n + 1), NOW, INLINE_POLICY_LIMIT);
        if matches!(next, RevocationPolicy::Fallback { .. }) {
            break derive(&entries(&admin_role, 1..=n), NOW, INLINE_POLICY_LIMIT);
        }
        n += 1;
    };
    let at_limit_chars = policy_chars(at_limit.document().unwrap());
    assert!(
        at_limit_chars <= INLINE_POLICY_LIMIT && at_limit_chars > INLINE_POLICY_LIMIT - 60,
        "{at_limit_chars}"
    );
    let fallback = derive(&entries(&admin_role, 1..=n + 1), NOW, INLINE_POLICY_LIMIT);
    assert!(matches!(fallback, RevocationPolicy::Fallback { .. }));
    let admin = managed("AdministratorAccess");
    // A read-only role narrowed by its session policy: what the session policy refuses stays
    // refused, what it allows is cut for the revoked grant only.
    let read_only = managed("ReadOnlyAccess");
    let logs_session = target("prod-logs-ro")["session_policy"].clone();
    let logs = derive(&entries(&logs_role, [7]), NOW, INLINE_POLICY_LIMIT);

    let forms: [(&str, &str, &Value, Option<&Value>, &RevocationPolicy); 4] = [
        ("precise (3 grants)", &admin_role, &admin, None, &precise),
        (
            "precise at the size limit",
            &admin_role,
            &admin,
            None,
            &at_limit,
        ),
        (
            "aws:TokenIssueTime fallback",
            &admin_role,
            &admin,
            None,
            &fallback,
        ),
        (
            "precise on a read-only role with its session policy",
            &logs_role,
            &read_only,
            Some(&logs_session),
            &logs,
        ),
    ];
    let mut evaluations = 0;
    for (label, role, base, session, policy) in forms {
        let others = [5000, 5001];
        let before = baseline(role, base, session, policy, &others);
        let allowed_before = before.iter().filter(|d| d.allowed()).count();
        assert!(
            allowed_before > 0,
            "{label}: the role can do nothing at all"
        );
        let document: Value = serde_json::from_str(policy.document().unwrap()).unwrap();
        let report = mutation_report(label, &document, &[], |doc| {
            revocation_expectations(role, base, session, policy, &others, doc, &before)
        })
        .unwrap();
        evaluations += before.len() * (2 + report.killed.len() + report.equivalent.len());
        println!("{report}");
        assert!(report.survived.is_empty(), "{report}");
        if label.starts_with("precise on a read-only") {
            assert!(
                allowed_before < before.len(),
                "the session policy narrows what the role may do"
            );
        }
    }
    println!(
        "revocation documents: about {evaluations} evaluations; {n} grants fit at {at_limit_chars} characters; the fallback cuts every session of the role issued before its cut-off (the other grants' too) and none issued at or after it"
    );
}

/// One call a session makes: action, resource, extra request context.
type Call = (&'static str, String, Vec<(&'static str, Value)>);

/// The broker's own account with `TargetsInBrokerAccount=true`: what a break-glass
/// administrator session there may do to the broker.
#[test]
fn a_break_glass_session_in_the_broker_account_can_touch_no_broker_resource() {
    let b = BROKER;
    let keys: BTreeMap<String, String> = [
        "IntakeSigningKey",
        "ApproverSigningKey",
        "IssuerSigningKey",
        "SweeperSigningKey",
    ]
    .iter()
    .enumerate()
    .map(|(n, k)| {
        (
            (*k).to_owned(),
            format!("1234abcd-12ab-34cd-56ef-00000000000{n}"),
        )
    })
    .collect();
    let refs = broker_refs("jit-access-GrantsTable-1A2B3C4D5E6F", &keys, true);
    let template = workspace_template("template.yaml").unwrap();
    let boundary_yaml = &template.properties("BrokerAccountTargetBoundary")["PolicyDocument"];
    let boundary = boundary_yaml.resolve(&refs);
    // Within a managed policy's 6,144 characters, with names as long as CloudFormation makes.
    let chars = policy_chars(&boundary.to_string());
    assert!(chars <= 6144, "the boundary is {chars} characters");
    // It denies what the target accounts' boundary denies...
    let target = target_boundary_in(BROKER);
    assert_eq!(boundary["Statement"][0], target["Statement"][0]);
    assert_eq!(boundary["Statement"][1], target["Statement"][1]);
    // ...and names every resource of the template (IAM roles and policies are denied whole).
    let named = boundary_yaml.to_json().to_string();
    let mut missing = Vec::new();
    for (name, resource) in &template.resources {
        let name = name.as_str();
        let kind = resource.kind.as_str();
        // A bus's or queue's policy is no resource of its own: changing it is an action on
        // the bus or queue, which is named.
        if kind.starts_with("AWS::IAM::")
            || kind == "AWS::Events::EventBusPolicy"
            || kind == "AWS::SQS::QueuePolicy"
            || kind == "AWS::S3::BucketPolicy"
            || name == "PoliciesLayer"
            || name == "HttpApi"
        {
            continue;
        }
        if !named.contains(name) {
            missing.push(format!("{name} ({kind})"));
        }
    }
    assert!(
        named.contains("layer:${AWS::StackName}-policies"),
        "the policies layer"
    );
    assert!(
        named.contains("/apis/${HttpApi}/*"),
        "the HTTP API and its authorizer"
    );
    assert!(
        missing.is_empty(),
        "the boundary does not name: {missing:?}"
    );

    let admin = managed("AdministratorAccess");
    let function = |f: &str| {
        refs[&format!("{f}Function.Arn")]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let key = |n: usize| key_arn(&format!("1234abcd-12ab-34cd-56ef-00000000000{n}"));
    let table = refs["GrantsTable.Arn"].as_str().unwrap().to_owned();
    let mut denied: Vec<Call> = Vec::new();
    for f in [
        "Intake", "Approver", "Slack", "Issuer", "Sweeper", "Activity",
    ] {
        for action in [
            "lambda:UpdateFunctionCode",
            "lambda:UpdateFunctionConfiguration",
            "lambda:InvokeFunction",
            "lambda:DeleteFunction",
            "lambda:AddPermission",
        ] {
            denied.push((action, function(f), vec![]));
        }
        denied.push((
            "lambda:PublishVersion",
            format!("{}:live", function(f)),
            vec![],
        ));
        denied.push((
            "lambda:UpdateEventSourceMapping",
            format!("arn:aws:lambda:us-east-1:{b}:event-source-mapping:a1b2c3d4-0000-4000-8000-000000000000"),
            vec![("lambda:FunctionArn", json!(function(f)))],
        ));
        // Log groups are named with and without the `:*` IAM sometimes adds.
        let group = format!(
            "arn:aws:logs:us-east-1:{b}:log-group:/aws/lambda/{}",
            refs[&format!("{f}Function")].as_str().unwrap()
        );
        denied.push(("logs:DeleteLogGroup", group.clone(), vec![]));
        denied.push(("logs:PutRetentionPolicy", format!("{group}:*"), vec![]));
    }
    denied.push((
        "lambda:PublishLayerVersion",
        format!("arn:aws:lambda:us-east-1:{b}:layer:jit-access-policies"),
        vec![],
    ));
    for action in [
        "dynamodb:DeleteItem",
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
    ] {
        denied.push((
            action,
            table.clone(),
            vec![("dynamodb:LeadingKeys", json!(["ROLE#x"]))],
        ));
    }
    denied.push(("dynamodb:UpdateTable", table.clone(), vec![]));
    let bucket = refs["AuditBucket.Arn"].as_str().unwrap().to_owned();
    for (action, resource) in [
        ("s3:GetObject", format!("{bucket}/checkpoints/v1/1.json")),
        ("s3:PutObject", format!("{bucket}/checkpoints/v1/2.json")),
        ("s3:PutObjectRetention", format!("{bucket}/audit/v1/x")),
        ("s3:PutBucketPolicy", bucket.clone()),
        ("s3:PutBucketVersioning", bucket.clone()),
    ] {
        denied.push((action, resource, vec![]));
    }
    denied.push(("dynamodb:Query", format!("{table}/index/due"), vec![]));
    for n in 0..4 {
        for action in [
            "kms:Sign",
            "kms:CreateGrant",
            "kms:DisableKey",
            "kms:PutKeyPolicy",
            "kms:TagResource",
            "kms:UpdateKeyDescription",
        ] {
            denied.push((action, key(n), vec![]));
        }
    }
    // The HTTP API and its JWT authorizer (`/apis/<id>`, `/apis/<id>/*`, checked above as
    // named) are not evaluated: the evaluator knows no resource types for API Gateway v2.
    let rule = refs["SweeperFunctionSweep.Arn"]
        .as_str()
        .unwrap()
        .to_owned();
    denied.push(("events:DisableRule", rule.clone(), vec![]));
    denied.push(("events:RemoveTargets", rule, vec![]));
    // The activity bus, its rule and dead letters: a session cannot feed, stop or empty them.
    let bus = refs["ActivityBus.Arn"].as_str().unwrap().to_owned();
    denied.push(("events:PutEvents", bus.clone(), vec![]));
    // Bus policies are changed by actions that take no resource.
    denied.push(("events:PutPermission", "*".to_owned(), vec![]));
    denied.push(("events:RemovePermission", "*".to_owned(), vec![]));
    denied.push(("events:DeleteEventBus", bus, vec![]));
    let activity_rule = refs["ActivityFunctionCloudTrail.Arn"]
        .as_str()
        .unwrap()
        .to_owned();
    denied.push(("events:DisableRule", activity_rule.clone(), vec![]));
    denied.push(("events:PutTargets", activity_rule, vec![]));
    denied.push((
        "sqs:PurgeQueue",
        refs["ActivityDeadLetters.Arn"].as_str().unwrap().to_owned(),
        vec![],
    ));
    for queue in ["ApproverDeadLetters", "SlackDeadLetters"] {
        denied.push((
            "sqs:PurgeQueue",
            refs[&format!("{queue}.Arn")].as_str().unwrap().to_owned(),
            vec![],
        ));
    }
    for alarm in [
        "SweeperErrorsAlarm",
        "RevocationsPendingAlarm",
        "EvidenceRejectedAlarm",
        "UnattributedActivityAlarm",
    ] {
        let arn = refs[&format!("{alarm}.Arn")].as_str().unwrap().to_owned();
        denied.push(("cloudwatch:DeleteAlarms", arn.clone(), vec![]));
        denied.push(("cloudwatch:DisableAlarmActions", arn, vec![]));
    }
    denied.push((
        "cloudformation:UpdateStack",
        refs["AWS::StackId"].as_str().unwrap().to_owned(),
        vec![],
    ));
    denied.push(("iam:PutRolePolicy", function_role("sweeper"), vec![]));
    denied.push((
        "iam:UpdateAssumeRolePolicy",
        function_role("issuer"),
        vec![],
    ));
    // What the session is for still works.
    let allowed: Vec<Call> = vec![
        (
            "s3:GetObject",
            "arn:aws:s3:::prod-data/q3.csv".into(),
            vec![],
        ),
        (
            "lambda:UpdateFunctionCode",
            format!("arn:aws:lambda:us-east-1:{b}:function:orders-api"),
            vec![],
        ),
        (
            "dynamodb:DeleteItem",
            format!("arn:aws:dynamodb:us-east-1:{b}:table/orders"),
            vec![],
        ),
        (
            "logs:FilterLogEvents",
            format!("arn:aws:logs:us-east-1:{b}:log-group:/aws/lambda/orders-api"),
            vec![],
        ),
        (
            "ec2:TerminateInstances",
            format!("arn:aws:ec2:us-east-1:{b}:instance/i-0abc"),
            vec![],
        ),
        (
            "events:DisableRule",
            format!("arn:aws:events:us-east-1:{b}:rule/orders-nightly"),
            vec![],
        ),
    ];
    let role = format!("arn:aws:iam::{b}:role/jit/break-glass-admin");
    let cases = |doc: &Value| -> Vec<Expectation> {
        denied
            .iter()
            .map(|c| (c, false))
            .chain(allowed.iter().map(|c| (c, true)))
            .map(|((action, resource, context), ok)| {
                let mut case = session_case_in(b, &role, &admin, 1, 60, (action, resource), None);
                case.boundary = Some(doc.clone());
                for (k, v) in context {
                    case = case.with(k, v.clone());
                }
                // A key answers only through its key policy, which lets the account's IAM
                // decide (and signs for its function alone).
                if let Some((name, _)) = keys.iter().find(|(_, id)| resource.ends_with(id.as_str()))
                {
                    case.resource_policy =
                        Some(template.properties(name)["KeyPolicy"].resolve(&refs));
                }
                Expectation { case, allowed: ok }
            })
            .collect()
    };
    let report = mutation_report(
        "the broker account's target boundary",
        &boundary,
        &[(
            "/apis/",
            "not evaluated: the evaluator knows no API Gateway v2 resource types (the boundary names the API, checked above)",
        )],
        cases,
    )
    .unwrap();
    println!("{report}");
    println!(
        "broker boundary: {chars} of 6,144 characters; {} broker actions denied and {} others allowed for a break-glass-admin session",
        denied.len(),
        allowed.len()
    );
    assert!(report.survived.is_empty(), "{report}");
}

/// A target account that forwards its activity: the boundary keeps every session to the
/// regions whose CloudTrail events are forwarded (switching region would hide its calls) and
/// lets no session touch the forwarding rule (its role and the trail are denied already).
#[test]
fn target_sessions_stay_where_their_activity_is_forwarded_and_cannot_stop_it() {
    let a = ACCOUNT;
    let doc = workspace_template("infra/target-account.yaml").unwrap();
    let refs = BTreeMap::from([
        ("AWS::Partition".to_owned(), json!("aws")),
        ("AWS::AccountId".to_owned(), json!(a)),
        (
            "ActivityRegions".to_owned(),
            json!(["us-east-1", "eu-west-1"]),
        ),
        ("Condition::ForwardsActivity".to_owned(), json!(true)),
    ]);
    let boundary = doc.properties("TargetBoundary")["PolicyDocument"].resolve(&refs);
    let role = format!("arn:aws:iam::{a}:role/jit/break-glass-admin");
    let admin = managed("AdministratorAccess");
    // (action, resource, region, allowed)
    let calls: Vec<(&str, String, &str, bool)> = vec![
        (
            "s3:GetObject",
            "arn:aws:s3:::prod-data/q3.csv".into(),
            "eu-west-1",
            true,
        ),
        (
            "s3:GetObject",
            "arn:aws:s3:::prod-data/q3.csv".into(),
            "us-east-1",
            true,
        ),
        (
            "s3:GetObject",
            "arn:aws:s3:::prod-data/q3.csv".into(),
            "ap-southeast-2",
            false,
        ),
        (
            "ec2:TerminateInstances",
            format!("arn:aws:ec2:eu-central-1:{a}:instance/i-0abc"),
            "eu-central-1",
            false,
        ),
        (
            "ec2:TerminateInstances",
            format!("arn:aws:ec2:eu-west-1:{a}:instance/i-0abc"),
            "eu-west-1",
            true,
        ),
        (
            "events:DisableRule",
            format!("arn:aws:events:eu-west-1:{a}:rule/jit-activity-forwarding"),
            "eu-west-1",
            false,
        ),
        (
            "events:RemoveTargets",
            format!("arn:aws:events:us-east-1:{a}:rule/jit-activity-forwarding"),
            "us-east-1",
            false,
        ),
        (
            "events:DeleteRule",
            format!("arn:aws:events:us-east-1:{a}:rule/jit-activity-forwarding"),
            "us-east-1",
            false,
        ),
        (
            "events:DisableRule",
            format!("arn:aws:events:eu-west-1:{a}:rule/orders-nightly"),
            "eu-west-1",
            true,
        ),
        (
            "iam:DeleteRole",
            format!("arn:aws:iam::{a}:role/jit-activity-forwarder"),
            "us-east-1",
            false,
        ),
        (
            "cloudtrail:StopLogging",
            format!("arn:aws:cloudtrail:us-east-1:{a}:trail/org-trail"),
            "us-east-1",
            false,
        ),
    ];
    let cases = |doc: &Value| -> Vec<Expectation> {
        calls
            .iter()
            .map(|(action, resource, region, allowed)| {
                let mut case = session_case_in(a, &role, &admin, 1, 60, (action, resource), None)
                    .with("aws:RequestedRegion", *region);
                case.boundary = Some(doc.clone());
                Expectation {
                    case,
                    allowed: *allowed,
                }
            })
            .collect()
    };
    let report = mutation_report("the forwarding target boundary", &boundary, &[], cases).unwrap();
    println!("{report}");
    assert!(report.survived.is_empty(), "{report}");
    // Without forwarding, the boundary neither limits regions nor names the rule.
    let plain = target_boundary_in(a).to_string();
    assert!(!plain.contains("RequestedRegion") && !plain.contains("jit-activity-forwarding"));
}
