//! `jit-stack --demo`: the main job, walked over HTTP against the running stack, one line a
//! step. Every step checks what a person would check; the first that fails ends the walk.
// Indexing a JSON or YAML value by key or position returns Null when absent: it never panics.
#![allow(clippy::indexing_slicing)]

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use jit_core::domain::GrantId;
use jit_core::domain::audit::{AuditRecord, verify};

use crate::Stack;

/// An HTTP client for the stack's API, as the demo people.
#[derive(Debug, Clone)]
pub struct Api {
    base: String,
    http: reqwest::Client,
}

/// One answer: status and JSON body (`Null` when the body is not JSON).
#[derive(Debug, Clone)]
pub struct Answer {
    /// The HTTP status.
    pub status: u16,
    /// The body as JSON.
    pub body: Value,
}

impl Api {
    /// A client for the API at `base`.
    pub fn new(base: &str) -> Self {
        Self {
            base: base.trim_end_matches('/').to_owned(),
            http: reqwest::Client::new(),
        }
    }

    /// Sends `method path` with `token` (if any) and a JSON `body` (if any).
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Result<Answer, String> {
        let method = reqwest::Method::from_bytes(method.as_bytes()).map_err(|e| e.to_string())?;
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(token) = token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        if let Some(body) = body {
            request = request
                .header("content-type", "application/json")
                .body(body.to_string());
        }
        let response = request.send().await.map_err(|e| format!("{path}: {e}"))?;
        let status = response.status().as_u16();
        let bytes = response.bytes().await.map_err(|e| e.to_string())?;
        Ok(Answer {
            status,
            body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        })
    }

    /// Reads a request until `done` holds for it, for up to `within`.
    pub async fn wait_for(
        &self,
        id: &str,
        token: &str,
        within: Duration,
        done: impl Fn(&Value) -> bool,
    ) -> Result<Value, String> {
        let until = Instant::now() + within;
        loop {
            let a = self
                .call("GET", &format!("/requests/{id}"), Some(token), None)
                .await?;
            if a.status == 200 && done(&a.body) {
                return Ok(a.body);
            }
            if Instant::now() > until {
                return Err(format!(
                    "request {id} did not get there in {within:?}: {}",
                    a.body
                ));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

fn expect(answer: &Answer, status: u16, what: &str) -> Result<(), String> {
    if answer.status == status {
        Ok(())
    } else {
        Err(format!(
            "{what}: expected {status}, got {} {}",
            answer.status, answer.body
        ))
    }
}

/// Walks the main job; prints one line a step to `say`.
pub async fn run(stack: &Stack, say: &mut dyn FnMut(&str)) -> Result<(), String> {
    let api = Api::new(&stack.api_url);
    let alice = stack.token("alice", &["engineers", "sre"]);
    let dan = stack.token("dan", &["dba"]);
    let lee = stack.token("lee", &["dba-leads"]);
    let sue = stack.token("sue", &["security"]);
    let started = time::OffsetDateTime::now_utc();

    // 1. A request the rules approve at once.
    let a = api
        .call(
            "POST",
            "/requests",
            Some(&alice),
            Some(json!({"target": "prod-logs-ro", "duration": "30m",
                "reason": "checking error rates after the deploy", "ticket": "INC-1042"})),
        )
        .await?;
    expect(&a, 201, "alice's request")?;
    let id = a.body["id"].as_str().unwrap_or_default().to_owned();
    say(&format!(
        "1. alice asked for prod-logs-ro for 30m with ticket INC-1042: request {id}, PENDING"
    ));
    let g = api
        .wait_for(&id, &alice, Duration::from_secs(20), |g| {
            g["state"] != "PENDING"
        })
        .await?;
    if g["state"] != "ACTIVE" {
        return Err(format!("the rules should have approved it: {g}"));
    }
    say(&format!(
        "2. the approver's rules approved it from the table stream: ACTIVE until {}",
        g["ends_at"].as_str().unwrap_or("?")
    ));

    // 2. Credentials, as credential_process wants them, used against the emulator.
    let c = api
        .call(
            "POST",
            &format!("/grants/{id}/credentials"),
            Some(&alice),
            None,
        )
        .await?;
    expect(&c, 200, "credentials")?;
    if c.body["Version"] != 1 {
        return Err(format!("not credential_process JSON: {}", c.body));
    }
    say(&format!(
        "3. credential_process JSON: Version 1, key {}, expires {}",
        c.body["AccessKeyId"].as_str().unwrap_or("?"),
        c.body["Expiration"].as_str().unwrap_or("?")
    ));
    let sts = session_client(&stack.aws, &c.body);
    let me = sts
        .get_caller_identity()
        .send()
        .await
        .map_err(|e| aws_sdk_sts::error::DisplayErrorContext(e).to_string())?;
    let arn = me.arn.unwrap_or_default();
    if !arn.contains(":assumed-role/prod-logs-ro/") || !arn.ends_with(&id) {
        return Err(format!("sts get-caller-identity answered {arn}"));
    }
    say(&format!(
        "4. with those credentials, sts get-caller-identity answers {arn}"
    ));

    // 3. A console sign-in link.
    let l = api
        .call(
            "POST",
            &format!("/grants/{id}/console"),
            Some(&alice),
            Some(json!({"destination": "https://console.aws.amazon.com/cloudwatch/home"})),
        )
        .await?;
    expect(&l, 200, "console link")?;
    let url = l.body["url"].as_str().unwrap_or_default();
    if !url.contains("Action=login") || !url.contains("SigninToken=") {
        return Err(format!("not a sign-in link: {url}"));
    }
    say(
        "5. a console sign-in link came from the federation endpoint (Action=login with a SigninToken)",
    );

    // 4. A request that needs two approvals.
    let d = api
        .call(
            "POST",
            "/requests",
            Some(&dan),
            Some(json!({"target": "prod-db-admin", "duration": "1h",
                "reason": "rotate the replication user's password", "ticket": "CHG-77"})),
        )
        .await?;
    expect(&d, 201, "dan's request")?;
    let db = d.body["id"].as_str().unwrap_or_default().to_owned();
    let g = api
        .wait_for(&db, &dan, Duration::from_secs(20), |g| {
            !g["approvals_required"].is_null()
        })
        .await?;
    say(&format!(
        "6. dan asked for prod-db-admin: {} approvals needed",
        g["approvals_required"]
    ));
    for (who, token) in [("lee", &lee), ("sue", &sue)] {
        let r = api
            .call(
                "POST",
                &format!("/requests/{db}/reviews"),
                Some(token),
                Some(json!({"decision": "approve", "comment": "change CHG-77 is scheduled"})),
            )
            .await?;
        expect(&r, 200, &format!("{who}'s approval"))?;
    }
    let g = api
        .wait_for(&db, &dan, Duration::from_secs(5), |g| {
            g["state"] == "ACTIVE"
        })
        .await?;
    say(&format!(
        "7. lee and sue approved: {}",
        g["state"].as_str().unwrap_or("?")
    ));
    let c = api
        .call(
            "POST",
            &format!("/grants/{db}/credentials"),
            Some(&dan),
            None,
        )
        .await?;
    expect(&c, 200, "dan's credentials")?;

    // 5. Revocation that reaches the live session.
    let r = api
        .call(
            "POST",
            &format!("/grants/{db}/revoke"),
            Some(&sue),
            Some(json!({"reason": "the change window closed early"})),
        )
        .await?;
    expect(&r, 200, "revoke")?;
    if r.body["live_sessions"] != "cut" {
        return Err(format!("the live session should be cut: {}", r.body));
    }
    say("8. sue revoked dan's grant: REVOKED, live sessions cut");
    let policy = revocation_policy(stack, "prod-db-admin").await?;
    let denied =
        policy["Statement"][0]["Condition"]["StringEquals"]["aws:PrincipalTag/jit-grant"].clone();
    if !denied
        .as_array()
        .is_some_and(|l| l.iter().any(|g| g == db.as_str()))
    {
        return Err(format!(
            "the role's deny policy does not name the grant: {policy}"
        ));
    }
    say(&format!(
        "9. role prod-db-admin (account 222222222222) carries jit-revocations denying sessions tagged jit-grant={db}"
    ));

    // 6. The audit trail, exported and verified.
    let from = started - time::Duration::minutes(1);
    let to = time::OffsetDateTime::now_utc() + time::Duration::minutes(1);
    let fmt = |t: time::OffsetDateTime| {
        t.format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default()
    };
    let e = api
        .call(
            "GET",
            &format!("/audit?from={}&to={}&limit=100", fmt(from), fmt(to)),
            Some(&sue),
            None,
        )
        .await?;
    expect(&e, 200, "audit export")?;
    let records: Vec<AuditRecord> = e.body["records"]
        .as_array()
        .map(|l| {
            l.iter()
                .filter_map(|r| serde_json::from_value(r.clone()).ok())
                .collect()
        })
        .unwrap_or_default();
    say(&format!(
        "10. sue exported the audit trail: {} records",
        records.len()
    ));
    let mut grants = 0;
    for grant in [&id, &db] {
        let grant_id = GrantId::parse(grant.as_str()).map_err(|e| e.to_string())?;
        let mut chain: Vec<AuditRecord> = records
            .iter()
            .filter(|r| r.grant_id == grant_id)
            .cloned()
            .collect();
        chain.sort_by_key(|r| r.seq);
        verify(&grant_id, &chain)
            .map_err(|e| format!("the chain of {grant} does not verify: {e}"))?;
        grants += 1;
    }
    say(&format!(
        "11. every record's hash and link verified for both grants ({grants} chains)"
    ));
    Ok(())
}

/// An STS client that signs with the session in `credentials` (`credential_process` JSON).
pub fn session_client(aws: &aws_config::SdkConfig, credentials: &Value) -> aws_sdk_sts::Client {
    let field = |name: &str| credentials[name].as_str().unwrap_or_default().to_owned();
    aws_sdk_sts::Client::from_conf(
        aws_sdk_sts::config::Builder::from(aws)
            .credentials_provider(aws_credential_types::Credentials::new(
                field("AccessKeyId"),
                field("SecretAccessKey"),
                Some(field("SessionToken")),
                None,
                "jit-session",
            ))
            .build(),
    )
}

/// The revocation policy on the role of `target` (as the example's `targets.json` declares
/// it), read through its revoker role when it names one, or in the broker's account.
pub async fn revocation_policy(stack: &Stack, target: &str) -> Result<Value, String> {
    let rules =
        jit_core::policy::Rules::load_dir(&jit_local::workspace_root().join("infra/policies"))
            .map_err(|e| e.to_string())?;
    let declared = jit_core::domain::TargetId::parse(target)
        .ok()
        .and_then(|id| rules.target(&id).cloned())
        .ok_or_else(|| format!("no target `{target}`"))?;
    let role = declared
        .role_arn
        .as_str()
        .rsplit('/')
        .next()
        .unwrap_or_default();
    let revoker = declared.revoker_role_arn.as_ref().map(|r| r.as_str());
    let iam = match revoker {
        None => aws_sdk_iam::Client::new(&stack.aws),
        Some(revoker) => {
            let sts = aws_sdk_sts::Client::new(&stack.aws);
            jit_sweeper::iam_as(&stack.aws, &sts, revoker, "jit-demo")
                .await?
                .0
        }
    };
    let doc = iam
        .get_role_policy()
        .role_name(role)
        .policy_name("jit-revocations")
        .send()
        .await
        .map_err(|e| aws_sdk_iam::error::DisplayErrorContext(e).to_string())?
        .policy_document;
    // IAM returns the document URL-encoded.
    let decoded = url::form_urlencoded::parse(format!("d={}", doc.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or(doc);
    serde_json::from_str(&decoded).map_err(|e| e.to_string())
}
