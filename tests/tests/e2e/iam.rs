//! Least privilege, checked against what the real binaries do: a stack whose functions reach
//! the emulator through a recording pass-through runs every flow, and each AWS call each
//! function made must be allowed by that function's statements in `template.yaml` (actions,
//! table or index, and the `dynamodb:LeadingKeys` the statement allows); and every action the
//! template grants a function must be one the function was seen to call, but for the few
//! paths named below that no end-to-end flow can reach.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde_json::{Value, json};
use serde_yaml::Value as Yaml;

use super::{api, ask, pull, revoke, send, state_of};
use jit_e2e::{options, start};
use jit_stack::recorder::AwsCall;

/// Actions the template grants that no end-to-end flow can make a function call, and why.
const UNREACHED: [(&str, &str, &str); 3] = [
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
];

/// One permission a call needed.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Need {
    action: String,
    resource: String,
    leading_key: Option<String>,
}

/// One template statement, with its references resolved the way they would be in the broker
/// account of the local stack.
#[derive(Debug)]
struct Statement {
    actions: Vec<String>,
    resources: Vec<String>,
    leading_keys: Option<Vec<String>>,
}

fn resolve(value: &Yaml, keys: &BTreeMap<String, String>) -> String {
    match value {
        Yaml::String(s) => s.clone(),
        Yaml::Tagged(t) => {
            let inner = t.value.as_str().unwrap_or_default();
            match t.tag.to_string().as_str() {
                "!GetAtt" if inner == "GrantsTable.Arn" => "table".to_owned(),
                "!GetAtt" => {
                    let logical = inner.trim_end_matches(".Arn");
                    format!("key:{}", keys.get(logical).cloned().unwrap_or_default())
                }
                "!Sub" => inner
                    .replace("${GrantsTable.Arn}/", "")
                    .replace("${GrantsTable.Arn}", "table")
                    .replace("${AWS::Partition}", "aws")
                    .replace("${AWS::AccountId}", "111111111111")
                    .replace("${TargetRoleBoundaryName}", "jit-target-boundary"),
                _ => inner.to_owned(),
            }
        }
        _ => String::new(),
    }
}

fn list(value: &Yaml, keys: &BTreeMap<String, String>) -> Vec<String> {
    match value {
        Yaml::Sequence(items) => items.iter().map(|i| resolve(i, keys)).collect(),
        other => vec![resolve(other, keys)],
    }
}

fn statements(function: &str, keys: &BTreeMap<String, String>) -> Vec<Statement> {
    let text = std::fs::read_to_string(jit_local::workspace_root().join("template.yaml")).unwrap();
    let doc: Yaml = serde_yaml::from_str(&text).unwrap();
    let logical = format!("{}{}Function", function[..1].to_uppercase(), &function[1..]);
    let policies = &doc["Resources"][logical.as_str()]["Properties"]["Policies"];
    let mut out = Vec::new();
    for policy in policies.as_sequence().unwrap() {
        for statement in policy["Statement"].as_sequence().unwrap() {
            // `!If [condition, statement, AWS::NoValue]`: the statement, when it applies.
            let statement = match statement {
                Yaml::Tagged(t) if t.tag == "!If" => t.value[1].clone(),
                other => other.clone(),
            };
            assert_eq!(statement["Effect"].as_str(), Some("Allow"));
            let leading_keys = statement["Condition"]
                .as_mapping()
                .into_iter()
                .flat_map(|m| m.values())
                .find_map(|c| c.get("dynamodb:LeadingKeys"))
                .map(|k| list(k, keys));
            out.push(Statement {
                actions: list(&statement["Action"], keys),
                resources: list(&statement["Resource"], keys),
                leading_keys,
            });
        }
    }
    out
}

/// `pattern` with `*` for any run of characters.
fn glob(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == text;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !text.starts_with(first) || !text.ends_with(last) || text.len() < first.len() + last.len() {
        return false;
    }
    let mut rest = &text[first.len()..text.len() - last.len()];
    for part in &parts[1..parts.len() - 1] {
        match rest.find(part) {
            Some(i) => rest = &rest[i + part.len()..],
            None => return false,
        }
    }
    true
}

fn s(v: &Value) -> String {
    v.as_str().unwrap_or_default().to_owned()
}

/// What IAM checks for one call a function made with its own credentials.
fn needs(call: &AwsCall, keys: &BTreeMap<String, String>) -> Vec<Need> {
    let r = &call.request;
    let need = |action: &str, resource: String, key: Option<String>| Need {
        action: action.to_owned(),
        resource,
        leading_key: key,
    };
    let pk = |item: &Value| Some(s(&item["pk"]["S"]));
    let key_of = |id: &str| {
        let id = id.rsplit('/').next().unwrap_or(id);
        format!(
            "key:{}",
            keys.values()
                .find(|k| k.as_str() == id)
                .cloned()
                .unwrap_or_default()
        )
    };
    match (call.service.as_str(), call.operation.as_str()) {
        ("dynamodb", "GetItem") => vec![need("dynamodb:GetItem", "table".into(), pk(&r["Key"]))],
        ("dynamodb", "Query") => match r["IndexName"].as_str() {
            Some(index) => vec![need("dynamodb:Query", format!("index/{index}"), None)],
            None => vec![need(
                "dynamodb:Query",
                "table".into(),
                Some(s(&r["ExpressionAttributeValues"][":pk"]["S"])),
            )],
        },
        ("dynamodb", "BatchGetItem") => r["RequestItems"]
            .as_object()
            .into_iter()
            .flat_map(|t| t.values())
            .flat_map(|t| t["Keys"].as_array().cloned().unwrap_or_default())
            .map(|k| need("dynamodb:BatchGetItem", "table".into(), pk(&k)))
            .collect(),
        ("dynamodb", "TransactWriteItems") => r["TransactItems"]
            .as_array()
            .unwrap()
            .iter()
            .map(|item| {
                let (kind, body) = item.as_object().unwrap().iter().next().unwrap();
                let (action, key) = match kind.as_str() {
                    "Put" => ("dynamodb:PutItem", &body["Item"]),
                    "Update" => ("dynamodb:UpdateItem", &body["Key"]),
                    "Delete" => ("dynamodb:DeleteItem", &body["Key"]),
                    other => panic!("a transaction item of kind {other}"),
                };
                need(action, "table".into(), pk(key))
            })
            .collect(),
        ("dynamodb", op @ ("PutItem" | "UpdateItem" | "DeleteItem")) => {
            let key = if op == "PutItem" {
                &r["Item"]
            } else {
                &r["Key"]
            };
            vec![need(&format!("dynamodb:{op}"), "table".into(), pk(key))]
        }
        ("kms", op @ ("Sign" | "GetPublicKey")) => {
            vec![need(&format!("kms:{op}"), key_of(&s(&r["KeyId"])), None)]
        }
        ("sts", "AssumeRole") => {
            let role = s(&r["RoleArn"]);
            let mut out = vec![need("sts:AssumeRole", role.clone(), None)];
            if r.get("Tags.member.1.Key").is_some() {
                out.push(need("sts:TagSession", role.clone(), None));
            }
            if r.get("SourceIdentity").is_some() {
                out.push(need("sts:SetSourceIdentity", role, None));
            }
            out
        }
        // Needs no permission: IAM cannot deny it.
        ("sts", "GetCallerIdentity") => Vec::new(),
        ("iam", op) => vec![need(
            &format!("iam:{op}"),
            format!("arn:aws:iam::111111111111:role/jit/{}", s(&r["RoleName"])),
            None,
        )],
        (service, op) => panic!("an unexpected call {service}:{op}"),
    }
}

fn allowed(need: &Need, statements: &[Statement]) -> bool {
    statements.iter().any(|st| {
        st.actions.iter().any(|a| a == &need.action)
            && st.resources.iter().any(|r| glob(r, &need.resource))
            && match (&st.leading_keys, &need.leading_key) {
                (None, _) => true,
                (Some(patterns), Some(key)) => patterns.iter().any(|p| glob(p, key)),
                (Some(_), None) => false,
            }
    })
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
    let id = ask(&api, &alice, "prod-logs-ro", "15m", json!({})).await;
    api.wait_for(&id, &alice, Duration::from_secs(30), |g| {
        g["state"] == "ACTIVE"
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
    let db = ask(&api, &dan, "prod-db-admin", "1h", json!({})).await;
    api.wait_for(&db, &dan, Duration::from_secs(30), |g| {
        !g["approvals_required"].is_null()
    })
    .await
    .unwrap();
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
    let denied = ask(&api, &erin, "prod-logs-ro", "1h", json!({})).await;
    api.wait_for(&denied, &erin, Duration::from_secs(30), |g| {
        !g["approvals_required"].is_null()
    })
    .await
    .unwrap();
    let r = send(
        &api,
        ("POST".into(), format!("/requests/{denied}/reviews")),
        &sam,
        Some(json!({"decision": "deny", "comment": "not now"})),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let cancelled = ask(&api, &erin, "prod-logs-ro", "1h", json!({})).await;
    let r = send(
        &api,
        ("POST".into(), format!("/requests/{cancelled}/cancel")),
        &erin,
        None,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        state_of(&api, &cancelled, &erin).await["state"],
        "CANCELLED"
    );
    for path in ["/requests?scope=mine", "/requests?scope=reviewable"] {
        let r = api.call("GET", path, Some(&sam), None).await.unwrap();
        assert_eq!(r.status, 200, "{path}: {}", r.body);
    }
    // A grant's trail for its page: one query on the grant's partition.
    let trail = format!("/requests/{cancelled}/audit");
    let r = api.call("GET", &trail, Some(&erin), None).await.unwrap();
    assert_eq!(r.status, 200, "{trail}: {}", r.body);
    super::verified_export(&api, &sue).await;

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

    let keys = &stack.signing_keys;
    let mut report = Vec::new();
    for function in ["intake", "approver", "issuer", "sweeper"] {
        let statements = statements(function, keys);
        let calls = stack.aws_calls.of(function);
        assert!(!calls.is_empty(), "{function} made no AWS call");
        let mut used = BTreeSet::new();
        for call in &calls {
            // Calls made with an assumed revoker role's credentials are that role's, which
            // `infra/target-account.yaml` grants; the sweeper's own grants cover the rest.
            if call.access_key != "testing" {
                continue;
            }
            for need in needs(call, keys) {
                assert!(
                    allowed(&need, &statements),
                    "{function} calls {need:?}, which its template statements do not allow"
                );
                used.insert(need.action.clone());
            }
        }
        let granted: BTreeSet<String> = statements
            .iter()
            .flat_map(|s| s.actions.iter().cloned())
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
    println!("AWS actions each function called:\n{}", report.join("\n"));
}
