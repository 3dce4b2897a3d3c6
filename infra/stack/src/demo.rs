//! `jit-stack --demo`: the main job, walked over HTTP against the running stack, one line a
//! step. Every step checks what a person would check; the first that fails ends the walk.

use std::time::{Duration, Instant};

use serde_json::Value;

use jit_api::{
    Answer, ApiError, Client, ConsoleRequest, CreateRequest, Credentials, DurationInput, GrantView,
    LiveSessions, ReviewRequest,
};
use jit_core::archive::{S3Bucket, verify_bucket};
use jit_core::domain::audit::{AuditRecord, verify};
use jit_core::domain::{GrantId, GrantState, ReviewDecision};
use jit_core::trust::KeyRing;

use crate::Stack;

/// The stack's API through the one typed client (`jit-api`), with the raw call the
/// end-to-end tests and benchmarks check refusals with, as any of the demo's people.
#[derive(Debug, Clone)]
pub struct Api {
    client: Client,
}

impl Api {
    /// A client for the API at `base`.
    pub fn new(base: &str) -> Self {
        Self {
            client: Client::new(base),
        }
    }

    /// The typed client, calling as `token`.
    pub fn as_user(&self, token: &str) -> Client {
        self.client.as_user(token)
    }

    /// Sends `method path` with `token` (if any) and a JSON `body` (if any), whatever the
    /// answer's status.
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Result<Answer, String> {
        let client = match token {
            Some(token) => self.client.as_user(token),
            None => self.client.clone(),
        };
        client
            .send(method, path, body.as_ref(), &[])
            .await
            .map_err(|e| format!("{path}: {e}"))
    }

    /// Reads request `id` as `token` until `done` holds for it, for up to `within`.
    pub async fn wait_for(
        &self,
        id: &str,
        token: &str,
        within: Duration,
        done: impl Fn(&GrantView) -> bool,
    ) -> Result<GrantView, String> {
        wait_until(&self.as_user(token), id, within, done).await
    }

    /// Waits (up to 30 s) until the approver's rules have looked at request `id`: it says how
    /// many approvals it needs. The request as it then reads.
    pub async fn wait_looked_at(&self, id: &str, token: &str) -> Result<GrantView, String> {
        self.wait_for(id, token, Duration::from_secs(30), |g| {
            g.approvals_required.is_some()
        })
        .await
    }
}

/// Reads request `id` as `client` until `done` holds for it, for up to `within`. A read that
/// may pass when tried again (unreachable, throttled, a server error such as an injected
/// fault) is read again and the last answer is in the error; any other refusal ends the wait
/// at once.
pub async fn wait_until(
    client: &Client,
    id: &str,
    within: Duration,
    done: impl Fn(&GrantView) -> bool,
) -> Result<GrantView, String> {
    let until = Instant::now() + within;
    loop {
        let last = match client.get_request(id).await {
            Ok(g) if done(&g) => return Ok(g),
            Ok(g) => format!("it is {}", g.state),
            Err(e @ ApiError::Unreachable { .. }) => e.to_string(),
            Err(e) if e.status().is_some_and(|s| s == 429 || s >= 500) => e.to_string(),
            Err(e) => return Err(format!("request {id}: {e}")),
        };
        if Instant::now() > until {
            return Err(format!(
                "request {id} did not get there in {within:?}: {last}"
            ));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// What failed, for the step `what`.
fn failed(what: &str) -> impl FnOnce(ApiError) -> String + '_ {
    move |e| format!("{what}: {e}")
}

/// The demo's people, each calling as themselves.
struct People {
    alice: Client,
    dan: Client,
    lee: Client,
    sue: Client,
}

/// A request with a ticket, for `target`.
fn ask(target: &str, duration: &str, reason: &str, ticket: &str) -> CreateRequest {
    CreateRequest {
        target: target.to_owned(),
        duration: DurationInput::Text(duration.to_owned()),
        reason: reason.to_owned(),
        ticket: Some(ticket.to_owned()),
        break_glass: false,
        starts_at: None,
    }
}

/// Walks the main job; prints one line a step to `say`.
pub async fn run(stack: &Stack, say: &mut dyn FnMut(&str)) -> Result<(), String> {
    let api = Client::new(&stack.api_url);
    let people = People {
        alice: api.as_user(stack.token("alice", &["engineers", "sre"])),
        dan: api.as_user(stack.token("dan", &["dba"])),
        lee: api.as_user(stack.token("lee", &["dba-leads"])),
        sue: api.as_user(stack.token("sue", &["security"])),
    };
    let started = time::OffsetDateTime::now_utc();
    let id = auto_approved(&people, say).await?;
    use_the_grant(stack, &people, &id, say).await?;
    let db = two_approvals(&people, say).await?;
    revoke_live_session(stack, &people, &db, say).await?;
    audit(stack, &people, started, [&id, &db], say).await?;
    on_call(stack, &api, say).await?;
    from_slack(stack, &api, say).await
}

/// Step 14: sam links his Slack user with a one-time code from `/jit link`, then approves
/// erin's request from the message the Slack function posted to the review channel.
async fn from_slack(stack: &Stack, api: &Client, say: &mut dyn FnMut(&str)) -> Result<(), String> {
    let slack = stack.slack();
    let team = slack.team_id.clone();
    slack.add_users([jit_local::SlackMember::member("U0SAM", &team)]);
    let interactions = format!("{}/slack/interactions", stack.api_url);
    let send = |signed: jit_local::SignedInteraction| {
        let url = interactions.clone();
        async move {
            let (status, body) = jit_local::slack::post_form(&url, &signed).await?;
            let answer: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
            match answer.get("text").and_then(serde_json::Value::as_str) {
                Some(text) if status == 200 => Ok(text.to_owned()),
                _ => Err(format!("the Slack function answered {status}: {body}")),
            }
        }
    };
    let said = send(slack.command("U0SAM", &team, "link")).await?;
    let code = said
        .split('`')
        .nth(1)
        .ok_or_else(|| format!("no code in: {said}"))?
        .to_owned();
    let sam = api.as_user(stack.token("sam", &["sre"]));
    sam.link_slack(&code).await.map_err(failed("sam's link"))?;
    let erin = api.as_user(stack.token("erin", &["engineers"]));
    let mut asked = ask(
        "prod-logs-ro",
        "1h",
        "checking a customer's failed payment",
        "-",
    );
    asked.ticket = None;
    let id = erin
        .create_request(&asked)
        .await
        .map_err(failed("erin's request"))?
        .id;
    let until = Instant::now() + Duration::from_secs(20);
    while slack
        .message_about(&id)
        .is_none_or(|m| m.buttons().is_empty())
    {
        if Instant::now() > until {
            return Err("no message with buttons was posted about erin's request".into());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let answer = send(slack.click("U0SAM", &team, "jit_approve", &id)).await?;
    let g = wait_until(&erin, &id, Duration::from_secs(10), |g| {
        g.state == GrantState::Active
    })
    .await?;
    say(&format!(
        "14. sam linked his Slack user with `/jit link` and `jit slack link`, then clicked \
         Approve on erin's request in #reviews; Slack told him: \"{answer}\" The request is {}, \
         its record names sam, via Slack (U0SAM).",
        g.state
    ));
    Ok(())
}

/// Step 13: the SRE on call (PagerDuty's stand-in has olive on call for the next 2 hours)
/// gets read-only access at once without a ticket, ending with her shift, and the decision's
/// record says what PagerDuty answered.
async fn on_call(stack: &Stack, api: &Client, say: &mut dyn FnMut(&str)) -> Result<(), String> {
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let shift_end = now + 2 * 3600;
    stack.pagerduty().set_roster(vec![
        jit_local::RosterEntry::permanent("POLIVE1", "PSRE001", 1)
            .between(Some(now - 3600), Some(shift_end)),
    ]);
    let olive = api.as_user(stack.token("olive", &["sre"]));
    let mut asked = ask(
        "prod-logs-ro",
        "4h",
        "paged: error rates up on checkout",
        "-",
    );
    asked.ticket = None;
    let id = olive
        .create_request(&asked)
        .await
        .map_err(failed("olive's request"))?
        .id;
    let g = wait_until(&olive, &id, Duration::from_secs(20), |g| {
        g.state != GrantState::Pending
    })
    .await?;
    if g.state != GrantState::Active {
        return Err(format!(
            "the on-call rule should have approved olive's request: it is {}",
            g.state
        ));
    }
    let trail = olive
        .request_trail(&id)
        .await
        .map_err(failed("olive's trail"))?;
    let said = trail
        .records
        .iter()
        .find_map(|r| r.record.detail.get("on_call").cloned())
        .unwrap_or_default();
    say(&format!(
        "13. olive, on call in PagerDuty (the stand-in), asked for prod-logs-ro for 4h without a \
         ticket: ACTIVE at once by on-call-sre-read-only, ending with her shift at {}; the \
         decision's record: {said}",
        g.ends_at.as_deref().unwrap_or("?")
    ));
    Ok(())
}

/// Steps 1-2: a request the rules approve at once, from the table stream.
async fn auto_approved(people: &People, say: &mut dyn FnMut(&str)) -> Result<String, String> {
    let asked = ask(
        "prod-logs-ro",
        "30m",
        "checking error rates after the deploy",
        "INC-1042",
    );
    let alice = &people.alice;
    let id = alice
        .create_request(&asked)
        .await
        .map_err(failed("alice's request"))?
        .id;
    say(&format!(
        "1. alice asked for prod-logs-ro for 30m with ticket INC-1042: request {id}, PENDING"
    ));
    let g = wait_until(alice, &id, Duration::from_secs(20), |g| {
        g.state != GrantState::Pending
    })
    .await?;
    if g.state != GrantState::Active {
        return Err(format!(
            "the rules should have approved it: it is {}",
            g.state
        ));
    }
    say(&format!(
        "2. the approver's rules approved it from the table stream: ACTIVE until {}",
        g.ends_at.as_deref().unwrap_or("?")
    ));
    Ok(id)
}

/// Steps 3-5: credentials as `credential_process` wants them, used against the emulator, and
/// a console sign-in link.
async fn use_the_grant(
    stack: &Stack,
    people: &People,
    id: &str,
    say: &mut dyn FnMut(&str),
) -> Result<(), String> {
    let alice = &people.alice;
    let c = alice.credentials(id).await.map_err(failed("credentials"))?;
    if c.version != 1 {
        return Err(format!(
            "not credential_process JSON: version {}",
            c.version
        ));
    }
    say(&format!(
        "3. credential_process JSON: Version 1, key {}, expires {}",
        c.access_key_id, c.expiration
    ));
    let me = session_client(&stack.aws, &c)
        .get_caller_identity()
        .send()
        .await
        .map_err(|e| aws_sdk_sts::error::DisplayErrorContext(e).to_string())?;
    let arn = me.arn.unwrap_or_default();
    if !arn.contains(":assumed-role/prod-logs-ro/") || !arn.ends_with(id) {
        return Err(format!("sts get-caller-identity answered {arn}"));
    }
    say(&format!(
        "4. with those credentials, sts get-caller-identity answers {arn}"
    ));
    seen_as_activity(stack, people, id, &c, say).await?;
    let to_cloudwatch = ConsoleRequest {
        destination: Some("https://console.aws.amazon.com/cloudwatch/home".to_owned()),
    };
    let link = alice
        .console(id, &to_cloudwatch)
        .await
        .map_err(failed("console link"))?;
    if !link.url.contains("Action=login") || !link.url.contains("SigninToken=") {
        return Err(format!("not a sign-in link: {}", link.url));
    }
    say(
        "5. a console sign-in link came from the federation endpoint (Action=login with a SigninToken)",
    );
    guardrail_revokes(stack, people, id, &c, say).await
}

/// Step 5, continued: the session tries something a revoking guardrail names; the sweeper
/// revokes the grant and the role's policy denies its sessions.
async fn guardrail_revokes(
    stack: &Stack,
    people: &People,
    id: &str,
    c: &Credentials,
    say: &mut dyn FnMut(&str),
) -> Result<(), String> {
    let _ = aws_sdk_iam::Client::new(&session_config(stack, c))
        .delete_role_policy()
        .role_name("prod-logs-ro")
        .policy_name("jit-revocations")
        .send()
        .await;
    let g = wait_until(&people.alice, id, Duration::from_secs(20), |g| {
        g.state != GrantState::Active
    })
    .await?;
    if g.state != GrantState::Revoked {
        return Err(format!(
            "the guardrail should have revoked it: it is {}",
            g.state
        ));
    }
    // The grant is REVOKED before the sweeper puts the role's policy in place: wait for it.
    let until = Instant::now() + Duration::from_secs(20);
    loop {
        match revocation_policy(stack, "prod-logs-ro").await {
            Ok(doc) if doc.to_string().contains(id) => break,
            _ if Instant::now() < until => tokio::time::sleep(Duration::from_millis(100)).await,
            Ok(doc) => {
                return Err(format!(
                    "prod-logs-ro's policy does not deny the grant: {doc}"
                ));
            }
            Err(e) => return Err(format!("prod-logs-ro's policy: {e}")),
        }
    }
    say(
        "   then the session tried iam delete-role-policy: guardrail revoke-on-iam-or-key-destruction had the sweeper revoke the grant (REVOKED), and prod-logs-ro's policy denies its sessions",
    );
    Ok(())
}

/// Step 4, continued: a call made with the grant's session through the stack's AWS endpoint
/// (the local CloudTrail) shows as the grant's activity.
async fn seen_as_activity(
    stack: &Stack,
    people: &People,
    id: &str,
    c: &Credentials,
    say: &mut dyn FnMut(&str),
) -> Result<(), String> {
    aws_sdk_dynamodb::Client::new(&session_config(stack, c))
        .list_tables()
        .send()
        .await
        .map_err(|e| aws_sdk_dynamodb::error::DisplayErrorContext(e).to_string())?;
    let until = Instant::now() + Duration::from_secs(20);
    loop {
        let page = people
            .alice
            .request_activity(id, 10, None)
            .await
            .map_err(failed("the grant's activity"))?;
        if let Some(seen) = page
            .items
            .iter()
            .find(|a| a.activity.action == "ListTables")
        {
            say(&format!(
                "   dynamodb list-tables with them shows as the grant's activity: {} {} {} at {} (CloudTrail event {})",
                seen.activity.region,
                seen.activity.service,
                seen.activity.action,
                seen.at,
                seen.activity.event_id
            ));
            return Ok(());
        }
        if Instant::now() > until {
            return Err("the call never showed as the grant's activity".into());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Steps 6-7: a request that needs two approvals, approved by lee and sue, then used.
async fn two_approvals(people: &People, say: &mut dyn FnMut(&str)) -> Result<String, String> {
    let asked = ask(
        "prod-db-admin",
        "1h",
        "rotate the replication user's password",
        "CHG-77",
    );
    let dan = &people.dan;
    let db = dan
        .create_request(&asked)
        .await
        .map_err(failed("dan's request"))?
        .id;
    let g = wait_until(dan, &db, Duration::from_secs(20), |g| {
        g.approvals_required.is_some()
    })
    .await?;
    let needs: Vec<String> = g
        .requirements
        .iter()
        .map(|r| format!("{} {}", r.approvals, r.name))
        .collect();
    say(&format!(
        "6. dan asked for prod-db-admin: {} approvals needed ({})",
        g.approvals_required.unwrap_or_default(),
        needs.join(" and ")
    ));
    let approve = ReviewRequest {
        decision: ReviewDecision::Approve,
        comment: Some("change CHG-77 is scheduled".to_owned()),
    };
    for (who, reviewer) in [("lee", &people.lee), ("sue", &people.sue)] {
        reviewer
            .review(&db, &approve)
            .await
            .map_err(failed(&format!("{who}'s approval")))?;
    }
    let g = wait_until(dan, &db, Duration::from_secs(5), |g| {
        g.state == GrantState::Active
    })
    .await?;
    say(&format!(
        "7. lee (dba-lead) and sue (security) approved: {}",
        g.state
    ));
    dan.credentials(&db)
        .await
        .map_err(failed("dan's credentials"))?;
    Ok(db)
}

/// Steps 8-9: revocation that reaches the live session, read back from the role.
async fn revoke_live_session(
    stack: &Stack,
    people: &People,
    db: &str,
    say: &mut dyn FnMut(&str),
) -> Result<(), String> {
    let revoked = people
        .sue
        .revoke(db, "the change window closed early")
        .await
        .map_err(failed("revoke"))?;
    if revoked.live_sessions != LiveSessions::Cut {
        return Err(format!(
            "the live session should be cut: {}",
            revoked.live_sessions.as_str()
        ));
    }
    say("8. sue revoked dan's grant: REVOKED, live sessions cut");
    let policy = revocation_policy(stack, "prod-db-admin").await?;
    let denied = policy
        .pointer("/Statement/0/Condition/StringEquals/aws:PrincipalTag~1jit-grant")
        .cloned()
        .unwrap_or_default();
    if !denied.as_array().is_some_and(|l| l.iter().any(|g| g == db)) {
        return Err(format!(
            "the role's deny policy does not name the grant: {policy}"
        ));
    }
    say(&format!(
        "9. role prod-db-admin (account 222222222222) carries jit-revocations denying sessions tagged jit-grant={db}"
    ));
    Ok(())
}

/// Steps 10-11: the audit trail, exported by an auditor and every chain verified.
async fn audit(
    stack: &Stack,
    people: &People,
    started: time::OffsetDateTime,
    grants: [&str; 2],
    say: &mut dyn FnMut(&str),
) -> Result<(), String> {
    let from = started - time::Duration::minutes(1);
    let to = time::OffsetDateTime::now_utc() + time::Duration::minutes(1);
    let fmt = |t: time::OffsetDateTime| {
        t.format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default()
    };
    let export = people
        .sue
        .audit_export(&fmt(from), &fmt(to))
        .await
        .map_err(failed("audit export"))?;
    let records = export.records;
    say(&format!(
        "10. sue exported the audit trail: {} records",
        records.len()
    ));
    for grant in grants {
        let grant_id = GrantId::parse(grant).map_err(|e| e.to_string())?;
        let mut chain: Vec<AuditRecord> = records
            .iter()
            .filter(|r| r.grant_id == grant_id)
            .cloned()
            .collect();
        chain.sort_by_key(|r| r.seq);
        verify(&grant_id, &chain)
            .map_err(|e| format!("the chain of {grant} does not verify: {e}"))?;
    }
    say(&format!(
        "11. every record's hash and link verified for both grants ({} chains)",
        grants.len()
    ));
    from_the_bucket(stack, KeyRing::new(export.keys), say).await
}

/// Step 12: the audit bucket verified from S3 alone, as `jit audit verify --bucket` does, once
/// the sweeper has put a checkpoint there (it closes a minute period every minute locally).
async fn from_the_bucket(
    stack: &Stack,
    ring: KeyRing,
    say: &mut dyn FnMut(&str),
) -> Result<(), String> {
    let bucket = S3Bucket::new(jit_sweeper::s3_client(&stack.aws), crate::AUDIT_BUCKET);
    let deadline = Instant::now() + Duration::from_secs(150);
    let summary = loop {
        let summary = verify_bucket(&bucket, &ring).await?;
        if !summary.problems.is_empty() {
            return Err(format!(
                "the audit bucket does not verify:\n  {}",
                summary.problems.join("\n  ")
            ));
        }
        if summary.periods > 0 || Instant::now() > deadline {
            break summary;
        }
        tokio::time::sleep(Duration::from_secs(5)).await;
    };
    if summary.periods == 0 {
        return Err("the sweeper put no period in the audit bucket within 150 s".to_owned());
    }
    say(&format!(
        "12. the audit bucket verified from S3 alone: checkpoints {} to {}, {} period objects \
         holding {} records, each by the version its signed checkpoint names",
        summary.first_seq.unwrap_or_default(),
        summary.last_seq.unwrap_or_default(),
        summary.periods,
        summary.records
    ));
    Ok(())
}

/// An STS client that signs with the session in `credentials`.
pub fn session_client(
    aws: &aws_config::SdkConfig,
    credentials: &Credentials,
) -> aws_sdk_sts::Client {
    aws_sdk_sts::Client::from_conf(
        aws_sdk_sts::config::Builder::from(aws)
            .credentials_provider(aws_credential_types::Credentials::new(
                credentials.access_key_id.clone(),
                credentials.secret_access_key.clone(),
                Some(credentials.session_token.clone()),
                None,
                "jit-session",
            ))
            .build(),
    )
}

/// An SDK configuration that calls as `credentials` through the stack's AWS endpoint (the
/// trail), as a person's `jit exec` does: every call shows as the grant's activity.
pub fn session_config(stack: &Stack, credentials: &Credentials) -> aws_config::SdkConfig {
    stack
        .aws
        .to_builder()
        .endpoint_url(&stack.aws_endpoint)
        .credentials_provider(
            aws_credential_types::provider::SharedCredentialsProvider::new(
                aws_credential_types::Credentials::new(
                    credentials.access_key_id.clone(),
                    credentials.secret_access_key.clone(),
                    Some(credentials.session_token.clone()),
                    None,
                    "jit-session",
                ),
            ),
        )
        .build()
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
    let role = declared.binding.role_arn.name();
    let revoker = declared
        .binding
        .revoker_role_arn
        .as_ref()
        .map(|r| r.as_str());
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
