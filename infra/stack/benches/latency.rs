//! Local latency from `POST /requests` to usable credentials for an auto-approved request,
//! over HTTP against the local stack, and where the time goes (the gateway's own share, each
//! function's invocations, the stream's delay).
//!
//! Then, on a second stack whose functions reach the emulator through the recording
//! pass-through, the AWS calls each function makes per flow, and what one KMS signature costs
//! on the emulator next to a local software key.
//!
//! `cargo bench -p jit-stack --bench latency` (`JIT_BENCH_FLOWS` sets how many, default 50).
// A benchmark may unwrap: a panic is how it reports a broken run.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod cost;

use std::time::{Duration, Instant};

use jit_stack::demo::Api;
use jit_stack::{LogSink, Stack, StackOptions};
use serde_json::json;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * (sorted.len() as f64)).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

/// One auto-approved request to usable credentials: (time to ACTIVE, total).
async fn flow(api: &Api, token: &str) -> (Duration, Duration) {
    let started = Instant::now();
    let a = api
        .call(
            "POST",
            "/requests",
            Some(token),
            Some(json!({"target": "prod-logs-ro",
            "duration": "30m", "reason": "measuring request to credentials", "ticket": "INC-1"})),
        )
        .await
        .unwrap();
    assert_eq!(a.status, 201, "{}", a.body);
    let id = a.body["id"].as_str().unwrap().to_owned();
    loop {
        let g = api
            .call("GET", &format!("/requests/{id}"), Some(token), None)
            .await
            .unwrap();
        if g.body["state"] == "ACTIVE" {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "{}", g.body);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let active = started.elapsed();
    let c = api
        .call(
            "POST",
            &format!("/grants/{id}/credentials"),
            Some(token),
            None,
        )
        .await
        .unwrap();
    assert_eq!(c.status, 200, "{}", c.body);
    (active, started.elapsed())
}

#[tokio::main]
async fn main() {
    let flows: usize = std::env::var("JIT_BENCH_FLOWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50);
    let state_dir = jit_local::target_dir().join("jit-bench");
    let stack = Stack::start(StackOptions {
        port: 0,
        logs: LogSink::Dir(state_dir.join("logs")),
        state_dir,
        // The flows poll every 10 ms, past the route throttle a real client stays under.
        throttle: false,
        ..StackOptions::default()
    })
    .await
    .unwrap();
    let api = Api::new(&stack.api_url);
    // Warm one instance of each function first, as a deployed function would be.
    flow(&api, &stack.token("warm-up", &["sre"])).await;
    stack.timings.take();
    let mut totals = Vec::new();
    let mut to_active = Vec::new();
    for i in 0..flows {
        let (active, total) = flow(&api, &stack.token(&format!("bench-{i}"), &["sre"])).await;
        to_active.push(active);
        totals.push(total);
    }
    totals.sort();
    to_active.sort();
    println!("request -> usable credentials, auto-approved, {flows} flows one after another:");
    println!(
        "  total      p50 {}  p95 {}  max {}",
        ms(percentile(&totals, 50.0)),
        ms(percentile(&totals, 95.0)),
        ms(percentile(&totals, 100.0))
    );
    println!(
        "  to ACTIVE  p50 {}  p95 {}  (the client polls every 10 ms)",
        ms(percentile(&to_active, 50.0)),
        ms(percentile(&to_active, 95.0))
    );
    println!("where the time goes:");
    for (what, mut took) in stack.timings.take() {
        took.sort();
        println!(
            "  {what:<20} n {:>4}  p50 {:>9}  p95 {:>9}",
            took.len(),
            ms(percentile(&took, 50.0)),
            ms(percentile(&took, 95.0))
        );
    }
    activity_latency(&stack, &api, flows).await;
    drop(stack);
    calls_per_flow().await;
}

/// An active grant of `who`'s on prod-logs-ro and an SDK configuration calling with its
/// session through the stack's AWS endpoint (the local CloudTrail).
async fn session_of(
    stack: &Stack,
    api: &Api,
    who: &str,
) -> (String, String, aws_config::SdkConfig) {
    let token = stack.token(who, &["sre"]);
    let id = ask(api, &token, "prod-logs-ro", "30m").await;
    api.wait_for(&id, &token, Duration::from_secs(30), |g| {
        g.state == jit_core::domain::GrantState::Active
    })
    .await
    .unwrap();
    let c = api
        .call(
            "POST",
            &format!("/grants/{id}/credentials"),
            Some(&token),
            None,
        )
        .await
        .unwrap();
    assert_eq!(c.status, 200, "{}", c.body);
    let config = jit_stack::demo::session_config(stack, &c.read().unwrap());
    (token, id, config)
}

/// From a call made with a grant's session to the event on the grant's activity page, and from
/// a call a revoking guardrail names to the grant REVOKED and its role's policy denying it.
async fn activity_latency(stack: &Stack, api: &Api, calls: usize) {
    let (token, id, config) = session_of(stack, api, "activity-bench").await;
    let dynamodb = aws_sdk_dynamodb::Client::new(&config);
    let mut visible = Vec::new();
    let mut next: Option<String> = None;
    for _ in 0..calls {
        dynamodb.list_tables().send().await.unwrap();
        let answered = Instant::now();
        loop {
            let page = api
                .as_user(&token)
                .request_activity(&id, 100, next.as_deref())
                .await
                .unwrap();
            if !page.items.is_empty() {
                next = page.next;
                break;
            }
            assert!(answered.elapsed() < Duration::from_secs(30));
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        visible.push(answered.elapsed());
    }
    visible.sort();
    println!(
        "activity: a call's answer -> the event on the grant's activity page, {calls} calls (the reader polls every 5 ms):"
    );
    println!(
        "  p50 {}  p95 {}  max {}",
        ms(percentile(&visible, 50.0)),
        ms(percentile(&visible, 95.0)),
        ms(percentile(&visible, 100.0))
    );
    const GUARDED: usize = 10;
    let (mut revoked, mut in_place) = (Vec::new(), Vec::new());
    for i in 0..GUARDED {
        let (token, id, config) = session_of(stack, api, &format!("guarded-{i}")).await;
        let _ = aws_sdk_iam::Client::new(&config)
            .delete_role_policy()
            .role_name("prod-logs-ro")
            .policy_name("jit-revocations")
            .send()
            .await;
        let answered = Instant::now();
        api.wait_for(&id, &token, Duration::from_secs(30), |g| {
            g.state == jit_core::domain::GrantState::Revoked
        })
        .await
        .unwrap();
        revoked.push(answered.elapsed());
        loop {
            let doc = jit_stack::demo::revocation_policy(stack, "prod-logs-ro")
                .await
                .unwrap_or_default();
            if doc.to_string().contains(&id) {
                break;
            }
            assert!(answered.elapsed() < Duration::from_secs(30));
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        in_place.push(answered.elapsed());
    }
    revoked.sort();
    in_place.sort();
    println!("guardrail: a forbidden call's answer (iam DeleteRolePolicy) -> {GUARDED} grants:");
    println!(
        "  REVOKED          p50 {}  p95 {}",
        ms(percentile(&revoked, 50.0)),
        ms(percentile(&revoked, 95.0))
    );
    println!(
        "  policy in place  p50 {}  p95 {}  (the role's revocation policy names the grant)",
        ms(percentile(&in_place, 50.0)),
        ms(percentile(&in_place, 95.0))
    );
}

const FUNCTIONS: [&str; 5] = ["intake", "approver", "issuer", "sweeper", "activity"];

fn snapshot(stack: &Stack) -> Vec<usize> {
    FUNCTIONS
        .iter()
        .map(|f| stack.aws_calls.of(f).len())
        .collect()
}

/// The calls each function made since `before`, per flow, next to the design's minimum.
fn print_calls(stack: &Stack, before: &[usize], flows: usize, what: &str, minimum: &str) {
    println!("AWS calls per flow: {what}; mean of {flows}:");
    for (function, skip) in FUNCTIONS.iter().zip(before) {
        let mut counts = std::collections::BTreeMap::<String, usize>::new();
        for call in stack.aws_calls.of(function).into_iter().skip(*skip) {
            *counts
                .entry(format!("{}:{}", call.service, call.operation))
                .or_default() += 1;
        }
        if counts.is_empty() {
            continue;
        }
        let line: Vec<String> = counts
            .iter()
            .map(|(op, n)| format!("{op} {:.2}", *n as f64 / flows as f64))
            .collect();
        println!("  {function:<9} {}", line.join(", "));
    }
    println!("  the design's minimum: {minimum}");
}

async fn ask(api: &Api, token: &str, target: &str, duration: &str) -> String {
    let a = api
        .call(
            "POST",
            "/requests",
            Some(token),
            Some(json!({"target": target,
            "duration": duration, "reason": "measuring the calls per flow", "ticket": "INC-1"})),
        )
        .await
        .unwrap();
    assert_eq!(a.status, 201, "{}", a.body);
    a.body["id"].as_str().unwrap().to_owned()
}

/// AWS calls per flow (auto-approved request to credentials, two approvers, revocation, a
/// sweep), per function, counted by the recording pass-through, each next to the design's
/// minimum; and one KMS `Sign` on the emulator against a software key.
async fn calls_per_flow() {
    const FLOWS: usize = 10;
    let state_dir = jit_local::target_dir().join("jit-bench-calls");
    let logs = state_dir.join("logs");
    let stack = Stack::start(StackOptions {
        port: 0,
        logs: LogSink::Dir(logs.clone()),
        state_dir,
        record_aws_calls: true,
        // No scheduled sweep in the count: its calls do not belong to the flow.
        sweep_every: Some(Duration::from_secs(3600)),
        ..StackOptions::default()
    })
    .await
    .unwrap();
    let api = Api::new(&stack.api_url);
    flow(&api, &stack.token("warm-up", &["sre"])).await;
    let before = snapshot(&stack);
    for i in 0..FLOWS {
        flow(&api, &stack.token(&format!("count-{i}"), &["sre"])).await;
    }
    print_calls(
        &stack,
        &before,
        FLOWS,
        "request, auto-approval, credentials (the requester polls its request with GET, one \
         GetItem each)",
        "intake 1 TransactWriteItems + 1 Sign; approver 1 TransactWriteItems + 1 Sign; issuer \
         1 Query + 1 AssumeRole + 1 TransactWriteItems + 1 Sign: one write and one signature \
         per audit record, one read of the evidence before issuing, one STS call",
    );

    // Two approvers on a target in another account.
    let before = snapshot(&stack);
    for i in 0..FLOWS {
        let dan = stack.token(&format!("dan-{i}"), &["dba"]);
        let id = ask(&api, &dan, "prod-db-admin", "30m").await;
        api.wait_for(&id, &dan, Duration::from_secs(30), |g| {
            g.approvals_required == Some(2)
        })
        .await
        .unwrap();
        for approver in [
            stack.token("lee", &["dba-leads"]),
            stack.token("sue", &["security"]),
        ] {
            let r = api
                .call(
                    "POST",
                    &format!("/requests/{id}/reviews"),
                    Some(&approver),
                    Some(json!({"decision": "approve"})),
                )
                .await
                .unwrap();
            assert_eq!(r.status, 200, "{}", r.body);
        }
        api.wait_for(&id, &dan, Duration::from_secs(30), |g| {
            g.state == jit_core::domain::GrantState::Active
        })
        .await
        .unwrap();
    }
    print_calls(
        &stack,
        &before,
        FLOWS,
        "request, two approvals (the requester polls its request with GET)",
        "intake 1 TransactWriteItems + 1 Sign; approver 2 Query (each review verifies the \
         chain) + 3 TransactWriteItems + 3 Sign (the rules' AWAITING_REVIEW, then each review)",
    );

    // Revocation of a grant with a live session (same account), then a sweep.
    let mut grants = Vec::new();
    for i in 0..FLOWS {
        let who = stack.token(&format!("rev-{i}"), &["sre"]);
        let id = ask(&api, &who, "prod-logs-ro", "30m").await;
        api.wait_for(&id, &who, Duration::from_secs(30), |g| {
            g.state == jit_core::domain::GrantState::Active
        })
        .await
        .unwrap();
        let c = api
            .call(
                "POST",
                &format!("/grants/{id}/credentials"),
                Some(&who),
                None,
            )
            .await
            .unwrap();
        assert_eq!(c.status, 200, "{}", c.body);
        grants.push((who, id));
    }
    let before = snapshot(&stack);
    for (who, id) in &grants {
        let r = api
            .call(
                "POST",
                &format!("/grants/{id}/revoke"),
                Some(who),
                Some(json!({"reason": "measuring revocation"})),
            )
            .await
            .unwrap();
        assert_eq!(r.status, 200, "{}", r.body);
    }
    print_calls(
        &stack,
        &before,
        FLOWS,
        "revoke with a live session",
        "sweeper 1 Query (evidence) + 1 TransactWriteItems + 1 Sign for the record and the \
         ledger entry, then the role's policy: 1 Query of the role's ledger + 1 PutRolePolicy \
         (+ its applied marker)",
    );
    let before = snapshot(&stack);
    stack.sweep().await.unwrap();
    print_calls(
        &stack,
        &before,
        1,
        "one scheduled sweep with nothing due",
        "sweeper: the due index per shard, the roles registry, each role's policy read back \
         for drift; the checkpoint of a closed period when one is owed",
    );

    // Activity: calls made with a grant's session, each a CloudTrail event.
    let (_, _, config) = session_of(&stack, &api, "activity-count").await;
    let dynamodb = aws_sdk_dynamodb::Client::new(&config);
    let before = snapshot(&stack);
    for _ in 0..FLOWS {
        dynamodb.list_tables().send().await.unwrap();
    }
    // Delivered after each call's answer: wait until all are in.
    for _ in 0..200 {
        let done = stack.aws_calls.of("activity").len() - before[4];
        if done >= 3 * FLOWS {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    print_calls(
        &stack,
        &before,
        FLOWS,
        "one CloudTrail event of a grant's session (a read; no guardrail fires)",
        "activity 1 GetItem (the grant) + 1 TransactWriteItems (the event and its shard's \
         count) + 1 Query (the grant's refused calls, for the guardrails)",
    );

    cost_model(&stack, &api, &logs).await;

    let kms = aws_sdk_kms::Client::new(&stack.aws);
    let key_id = stack.signing_keys["IntakeSigningKey"].clone();
    let kms_key = jit_core::trust::KmsKey::new(kms, jit_core::domain::Service::Intake, key_id);
    let local = jit_core::trust::LocalKey::generate(jit_core::domain::Service::Intake);
    let ring = jit_core::trust::KeyRing::new([local.public_key()]);
    let message = jit_core::trust::record_message(&"ab".repeat(32));
    let us = |d: Duration| format!("{:.0} µs", d.as_secs_f64() * 1e6);
    let time = |label: &str, took: &mut Vec<Duration>| {
        took.sort();
        println!(
            "  {label:<34} p50 {:>9}  p95 {:>9}",
            us(percentile(took, 50.0)),
            us(percentile(took, 95.0))
        );
    };
    use jit_core::trust::SigningKey;
    let (mut on_kms, mut on_local, mut verifying) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..200 {
        let t = Instant::now();
        kms_key
            .sign(jit_core::domain::Service::Intake, message.clone())
            .await
            .unwrap();
        on_kms.push(t.elapsed());
        let t = Instant::now();
        let sig = local.sign_as(&message);
        on_local.push(t.elapsed());
        let t = Instant::now();
        ring.verify(Some(&sig), jit_core::domain::Service::Intake, &message)
            .unwrap();
        verifying.push(t.elapsed());
    }
    println!("one signature, 200 each:");
    time("KMS Sign on the emulator", &mut on_kms);
    time("software P-256 key (no call)", &mut on_local);
    time("local verification", &mut verifying);
}

/// Waits, reading the table itself (not through the API, whose reads would be counted), until
/// grant `id` satisfies `done`.
async fn settled(
    store: &jit_core::store::DynamoStore,
    id: &str,
    done: impl Fn(&jit_core::domain::Grant) -> bool,
) {
    use jit_core::store::GrantStore;
    let id = jit_core::domain::GrantId::parse(id).unwrap();
    let until = Instant::now() + Duration::from_secs(30);
    loop {
        if store.get(&id).await.unwrap().is_some_and(|g| done(&g)) {
            return;
        }
        assert!(Instant::now() < until, "grant {id} never settled");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The cost model: what each flow used, counted on this stack, priced (`cost::PRICES`).
async fn cost_model(stack: &Stack, api: &Api, logs: &std::path::Path) {
    use jit_core::domain::GrantState;
    const FLOWS: usize = 10;
    let store =
        jit_core::store::DynamoStore::new(aws_sdk_dynamodb::Client::new(&stack.aws), &stack.table);
    let post = |path: String, token: String, body: Option<serde_json::Value>| async move {
        let a = api.call("POST", &path, Some(&token), body).await.unwrap();
        assert_eq!(a.status, 200, "{path}: {}", a.body);
    };

    // Auto-approved: request, the rules' approval, one credentials call.
    let meter = cost::Meter::start(stack, logs);
    for i in 0..FLOWS {
        let who = stack.token(&format!("cost-{i}"), &["sre"]);
        let id = ask(api, &who, "prod-logs-ro", "30m").await;
        settled(&store, &id, |g| g.state == GrantState::Active).await;
        post(format!("/grants/{id}/credentials"), who, None).await;
    }
    let auto = meter.finish(stack, logs, FLOWS, &[]).await;

    // One look at a request (what --wait does while a person decides).
    let who = stack.token("cost-poll", &["sre"]);
    let id = ask(api, &who, "prod-logs-ro", "30m").await;
    settled(&store, &id, |g| g.state == GrantState::Active).await;
    let meter = cost::Meter::start(stack, logs);
    for _ in 0..FLOWS {
        let a = api
            .call("GET", &format!("/requests/{id}"), Some(&who), None)
            .await
            .unwrap();
        assert_eq!(a.status, 200, "{}", a.body);
    }
    let poll = meter.finish(stack, logs, FLOWS, &[]).await;

    // Two approvers, then one credentials call.
    let meter = cost::Meter::start(stack, logs);
    for i in 0..FLOWS {
        let dan = stack.token(&format!("cost-dan-{i}"), &["dba"]);
        let id = ask(api, &dan, "prod-db-admin", "30m").await;
        settled(&store, &id, |g| g.approvals_required == Some(2)).await;
        for approver in [
            stack.token("lee", &["dba-leads"]),
            stack.token("sue", &["security"]),
        ] {
            let review = json!({"decision": "approve"});
            post(format!("/requests/{id}/reviews"), approver, Some(review)).await;
        }
        settled(&store, &id, |g| g.state == GrantState::Active).await;
        post(format!("/grants/{id}/credentials"), dan, None).await;
    }
    let two = meter.finish(stack, logs, FLOWS, &[]).await;

    // A scheduled sweep of a deployment with nothing due.
    stack.sweep().await.unwrap();
    let meter = cost::Meter::start(stack, logs);
    let started = Instant::now();
    stack.sweep().await.unwrap();
    let sweep = meter
        .finish(stack, logs, 1, &[("sweeper", started.elapsed())])
        .await;

    print!("{}", cost::report(&auto, &two, &poll, &sweep));
    print!("{}", cost::scale(&auto, &poll));
}
