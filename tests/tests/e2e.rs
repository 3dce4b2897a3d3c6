//! The broker end to end: over HTTP against the local stack, with the real function binaries
//! behind the Runtime API, real tokens from the stack's OpenID provider, and the emulator.
// Tests may unwrap and index: a panic is how a test fails.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::time::Duration;

use jit_api::{CreateRequest, DurationInput, GrantView};
use jit_core::domain::audit::AuditRecord;
use jit_core::domain::{GrantId, GrantState};
use jit_core::trust::{AuditExport, ExportSummary, verify_export};
use jit_e2e::{Answer, Api, options, shared, start};
use jit_stack::Stack;
use serde_json::{Value, json};

#[path = "e2e/activity.rs"]
mod activity;
#[path = "e2e/archive.rs"]
mod archive;
#[path = "e2e/browser.rs"]
mod browser;
#[path = "e2e/bundle.rs"]
mod bundle;
#[path = "e2e/extend.rs"]
mod extend;
#[path = "e2e/faults.rs"]
mod faults;
#[path = "e2e/guardrails.rs"]
mod guardrails;
#[path = "e2e/iam.rs"]
mod iam;
#[path = "e2e/oncall.rs"]
mod oncall;
#[path = "e2e/races.rs"]
mod races;
#[path = "e2e/schedule.rs"]
mod schedule;
#[path = "e2e/schema.rs"]
mod schema;
#[path = "e2e/slack.rs"]
mod slack;

fn api(stack: &Stack) -> Api {
    // With the whole suite to run (no filter), the long scenarios start now.
    if std::env::args().skip(1).all(|a| a.starts_with('-')) {
        EXPIRY.start();
        activity::COVERAGE.start();
    }
    Api::new(&stack.api_url)
}

/// The request the tests make unless they say otherwise: `target` for `duration`, with a
/// reason and a ticket.
fn asking(target: &str, duration: &str) -> CreateRequest {
    CreateRequest {
        target: target.to_owned(),
        duration: DurationInput::Text(duration.to_owned()),
        reason: "end-to-end test of the broker".to_owned(),
        ticket: Some("INC-1".to_owned()),
        break_glass: false,
        starts_at: None,
    }
}

/// Makes `request` as `token`, through the typed client; the new request's id.
async fn ask(api: &Api, token: &str, request: CreateRequest) -> String {
    let made = api.as_user(token).create_request(&request).await;
    made.unwrap_or_else(|e| panic!("{}: {e}", request.target))
        .id
}

/// Asks for `target` as one the rules approve at once, and waits until it is ACTIVE.
async fn active(api: &Api, token: &str, target: &str, duration: &str) -> String {
    let id = ask(api, token, asking(target, duration)).await;
    let g = api
        .wait_for(&id, token, Duration::from_secs(30), |g| {
            g.state != GrantState::Pending
        })
        .await
        .unwrap();
    assert_eq!(g.state, GrantState::Active, "{g:?}");
    id
}

async fn state_of(api: &Api, id: &str, token: &str) -> GrantView {
    let read = api.as_user(token).get_request(id).await;
    read.unwrap_or_else(|e| panic!("{id}: {e}"))
}

/// Pulls credentials for grant `id` as `token`.
async fn pull(api: &Api, id: &str, token: &str) -> Answer {
    send(api, post(format!("/grants/{id}/credentials")), token, None).await
}

/// Revokes grant `id` as `token`.
async fn revoke(api: &Api, id: &str, token: &str) -> Answer {
    let reason = json!({"reason": "done with the investigation"});
    send(
        api,
        post(format!("/grants/{id}/revoke")),
        token,
        Some(reason),
    )
    .await
}

/// The `RequestRefused` line intake logged for `requester`'s refused request, waiting up to
/// five seconds for it (the local stack prefixes each line with the instance's name).
async fn refused_line(stack: &Stack, requester: &str) -> Value {
    let log_path = stack.state_dir.join("logs/intake.log");
    for _ in 0..50 {
        let log = std::fs::read_to_string(&log_path).unwrap_or_default();
        let line = log
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(&l[l.find('{')?..]).ok())
            .find(|l| l["requester"] == requester && l["RequestRefused"] == 1);
        if let Some(line) = line {
            return line;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no RequestRefused line for {requester} in intake's log")
}

fn post(path: String) -> (String, String) {
    ("POST".to_owned(), path)
}

async fn send(
    api: &Api,
    (method, path): (String, String),
    token: &str,
    body: Option<Value>,
) -> Answer {
    api.call(&method, &path, Some(token), body).await.unwrap()
}

/// Exports the window around now page by page, checks it offline as an auditor would, with
/// the public keys read from KMS (not the ones the export carries): every record's hash, link
/// and signature by its author, each grant's head, each signed checkpoint of a closed minute
/// against the records of that minute, and a checkpoint for every minute due one. Returns its
/// records.
async fn verified_export(
    stack: &Stack,
    api: &Api,
    auditor: &str,
) -> (Vec<AuditRecord>, ExportSummary) {
    let export = exported(api, auditor).await;
    assert_eq!(export.keys.len(), 4, "the four functions' public keys");
    assert!(
        export.records.iter().all(|r| r
            .signature
            .as_ref()
            .is_some_and(|s| s.key_id.starts_with("arn:aws:kms:"))),
        "every record is signed with a KMS key"
    );
    let pinned = stack.key_ring().await.unwrap();
    let mut carried = export.keys.clone();
    carried.sort_by(|a, b| a.key_id.cmp(&b.key_id));
    let mut read = pinned.public_keys();
    read.sort_by(|a, b| a.key_id.cmp(&b.key_id));
    assert_eq!(carried, read, "the export carries the keys KMS holds");
    let summary = verify_export(&export, Some(&pinned), now())
        .unwrap_or_else(|broken| panic!("the export does not verify: {broken}"));
    (export.records, summary)
}

fn now() -> jit_core::clock::Timestamp {
    jit_core::clock::Timestamp::from_unix_seconds(time::OffsetDateTime::now_utc().unix_timestamp())
}

/// Every page of `GET /audit` for the two hours around now, merged as `jit audit export` does
/// (the same client method).
async fn exported(api: &Api, auditor: &str) -> AuditExport {
    let fmt = |t: time::OffsetDateTime| {
        t.format(&time::format_description::well_known::Rfc3339)
            .unwrap()
    };
    let now = time::OffsetDateTime::now_utc();
    let from = fmt(now - time::Duration::hours(1));
    let to = fmt(now + time::Duration::hours(1));
    api.as_user(auditor).audit_export(&from, &to).await.unwrap()
}

#[tokio::test]
async fn an_auto_approved_request_gives_credentials_sts_accepts_and_a_console_link() {
    let stack = shared().unwrap();
    let api = api(stack);
    let alice = stack.token("alice-auto", &["sre"]);
    let id = active(&api, &alice, "prod-logs-ro", "30m").await;
    let c = pull(&api, &id, &alice).await;
    assert_eq!(c.status, 200, "{}", c.body);
    assert_eq!(c.body["Version"], 1);
    let sts = jit_stack::demo::session_client(&stack.aws, &c.read().unwrap());
    let arn = sts.get_caller_identity().send().await.unwrap().arn.unwrap();
    assert_eq!(
        arn,
        format!("arn:aws:sts::333333333333:assumed-role/prod-logs-ro/alice-auto@{id}")
    );
    let l = send(
        &api,
        post(format!("/grants/{id}/console")),
        &alice,
        Some(json!({"destination": "https://console.aws.amazon.com/logs/home"})),
    )
    .await;
    assert_eq!(l.status, 200, "{}", l.body);
    assert!(l.body["url"].as_str().unwrap().contains("SigninToken="));
    // Someone else cannot use it; the requester's grant shows the two sessions.
    let bob = stack.token("bob-auto", &["engineers"]);
    let other = pull(&api, &id, &bob).await;
    assert_eq!(other.status, 404, "{}", other.body);
    assert_eq!(state_of(&api, &id, &alice).await.sessions_issued, 2);
}

#[tokio::test]
async fn two_distinct_approvers_open_a_request_and_the_requester_cannot_approve_it() {
    let stack = shared().unwrap();
    let api = api(stack);
    let dan = stack.token("dan-two", &["dba"]);
    let lee = stack.token("lee-two", &["dba-leads"]);
    let sue = stack.token("sue-two", &["security"]);
    let id = ask(&api, &dan, asking("prod-db-admin", "1h")).await;
    let g = api.wait_looked_at(&id, &dan).await.unwrap();
    assert_eq!(
        (g.state, g.approvals_required),
        (GrantState::Pending, Some(2))
    );
    let review = |decision: &str| Some(json!({"decision": decision, "comment": "checked"}));
    let own = send(
        &api,
        post(format!("/requests/{id}/reviews")),
        &dan,
        review("approve"),
    )
    .await;
    assert_eq!(own.status, 403, "{}", own.body);
    let first = send(
        &api,
        post(format!("/requests/{id}/reviews")),
        &lee,
        review("approve"),
    )
    .await;
    assert_eq!(
        (first.status, first.body["state"].as_str()),
        (200, Some("PENDING")),
        "{}",
        first.body
    );
    let again = send(
        &api,
        post(format!("/requests/{id}/reviews")),
        &lee,
        review("approve"),
    )
    .await;
    assert_eq!(again.status, 409, "{}", again.body);
    let second = send(
        &api,
        post(format!("/requests/{id}/reviews")),
        &sue,
        review("approve"),
    )
    .await;
    assert_eq!(
        (second.status, second.body["state"].as_str()),
        (200, Some("ACTIVE")),
        "{}",
        second.body
    );
}

#[tokio::test]
async fn a_denied_request_gives_nothing() {
    let stack = shared().unwrap();
    let api = api(stack);
    let erin = stack.token("erin-deny", &["engineers"]);
    let sam = stack.token("sam-deny", &["sre"]);
    // Write access needs business hours or a review; on a weekend it is refused outright.
    let weekday = time::OffsetDateTime::now_utc()
        .weekday()
        .number_from_monday()
        <= 5;
    let hour = time::OffsetDateTime::now_utc().hour();
    let target = if weekday && (7..19).contains(&hour) {
        "prod-deploy"
    } else {
        "prod-logs-ro"
    };
    let id = ask(
        &api,
        &erin,
        CreateRequest {
            ticket: None,
            ..asking(target, "1h")
        },
    )
    .await;
    api.wait_looked_at(&id, &erin).await.unwrap();
    let d = send(
        &api,
        post(format!("/requests/{id}/reviews")),
        &sam,
        Some(json!({"decision": "deny", "comment": "use the read-only role"})),
    )
    .await;
    assert_eq!(
        (d.status, d.body["state"].as_str()),
        (200, Some("DENIED")),
        "{}",
        d.body
    );
    let c = pull(&api, &id, &erin).await;
    assert_eq!(c.status, 409, "{}", c.body);
    assert!(
        c.body["detail"].as_str().unwrap().contains("DENIED"),
        "{}",
        c.body
    );
}

#[tokio::test]
async fn revoking_cuts_the_live_session_through_the_roles_deny_policy() {
    let stack = shared().unwrap();
    let api = api(stack);
    let carol = stack.token("carol-revoke", &["sre"]);
    let id = active(&api, &carol, "prod-logs-ro", "1h").await;
    let c = pull(&api, &id, &carol).await;
    assert_eq!(c.status, 200, "{}", c.body);
    let r = revoke(&api, &id, &carol).await;
    assert_eq!(
        (r.status, r.body["live_sessions"].as_str()),
        (200, Some("cut")),
        "{}",
        r.body
    );
    // The role in the broker's account denies the grant's tagged sessions.
    let doc = jit_stack::demo::revocation_policy(stack, "prod-logs-ro")
        .await
        .unwrap();
    let denied = doc["Statement"][0]["Condition"]["StringEquals"]["aws:PrincipalTag/jit-grant"]
        .as_array()
        .unwrap()
        .clone();
    assert!(denied.contains(&json!(id)), "{doc}");
    // No more credentials, and a second revoke says why.
    let again = pull(&api, &id, &carol).await;
    assert_eq!(again.status, 409, "{}", again.body);
    let twice = revoke(&api, &id, &carol).await;
    assert_eq!(twice.status, 409, "{}", twice.body);
}

#[tokio::test]
async fn break_glass_opens_at_once_and_owes_a_review_someone_else_records() {
    let stack = shared().unwrap();
    let api = api(stack);
    let bob = stack.token("bob-glass", &["sre", "oncall"]);
    let sue = stack.token("sue-glass", &["security"]);
    let id = ask(
        &api,
        &bob,
        CreateRequest {
            break_glass: true,
            ..asking("break-glass-admin", "30m")
        },
    )
    .await;
    let g = api
        .wait_for(&id, &bob, Duration::from_secs(30), |g| {
            g.state != GrantState::Pending
        })
        .await
        .unwrap();
    assert_eq!(
        (g.state, g.review_owed),
        (GrantState::Active, true),
        "{g:?}"
    );
    let own = send(
        &api,
        post(format!("/grants/{id}/post-review")),
        &bob,
        Some(json!({})),
    )
    .await;
    assert_eq!(own.status, 403, "{}", own.body);
    let done = send(
        &api,
        post(format!("/grants/{id}/post-review")),
        &sue,
        Some(json!({"comment": "justified: the primary was down"})),
    )
    .await;
    assert_eq!(done.status, 200, "{}", done.body);
    assert!(!state_of(&api, &id, &bob).await.review_owed);
    let again = send(
        &api,
        post(format!("/grants/{id}/post-review")),
        &sue,
        Some(json!({})),
    )
    .await;
    assert_eq!(again.status, 409, "{}", again.body);
    // Someone the rules do not permit to break the glass is refused, with the reason.
    let erin = stack.token("erin-glass", &["engineers"]);
    let a = api
        .call(
            "POST",
            "/requests",
            Some(&erin),
            Some(
                json!({"target": "prod-deploy", "duration": "1h", "break_glass": true,
                "reason": "let me in, it is urgent", "ticket": "INC-9"}),
            ),
        )
        .await
        .unwrap();
    assert_eq!(a.status, 403, "{}", a.body);
}

#[tokio::test]
async fn the_audit_export_verifies_and_only_auditors_get_it() {
    let stack = shared().unwrap();
    let api = api(stack);
    let fay = stack.token("fay-audit", &["sre"]);
    let id = active(&api, &fay, "prod-logs-ro", "15m").await;
    let auditor = stack.token("ann-audit", &["security"]);
    let (records, _) = verified_export(stack, &api, &auditor).await;
    let grant = GrantId::parse(id.as_str()).unwrap();
    let mine: Vec<&AuditRecord> = records.iter().filter(|r| r.grant_id == grant).collect();
    assert_eq!(mine.len(), 2, "requested and auto-approved");
    let refused = api
        .call(
            "GET",
            "/audit?from=2026-01-01T00:00:00Z&to=2026-01-02T00:00:00Z",
            Some(&fay),
            None,
        )
        .await
        .unwrap();
    assert_eq!(refused.status, 403, "{}", refused.body);
}

#[tokio::test]
async fn the_gateway_refuses_bad_tokens_itself_and_never_invokes_the_function() {
    let stack = shared().unwrap();
    let api = api(stack);
    let intake = stack.function("intake").unwrap();
    let p = stack.provider();
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let kid = p.kid();
    let claims = |patch: Value| {
        let mut c = json!({"iss": p.issuer(), "aud": "jit-access", "sub": "mallory",
            "groups": ["security"], "iat": now, "exp": now + 600});
        for (k, v) in patch.as_object().cloned().unwrap_or_default() {
            c[k] = v;
        }
        c
    };
    // A key of our own, published nowhere.
    let rogue = jit_stack::Provider::load_or_create(
        &jit_local::target_dir().join("jit-e2e/rogue-key.der"),
        p.issuer(),
        "jit-access",
    )
    .unwrap();
    let good = p.sign(kid, &claims(json!({})));
    let mut tampered = good.clone();
    let payload_at = tampered.find('.').unwrap() + 1;
    tampered.insert(payload_at, 'A');
    let cases: Vec<(&str, Option<String>)> = vec![
        ("no token", None),
        ("not a JWT", Some("Bearer hello".into())),
        (
            "signed by another key",
            Some(format!("Bearer {}", rogue.sign(kid, &claims(json!({}))))),
        ),
        ("tampered payload", Some(format!("Bearer {tampered}"))),
        (
            "expired",
            Some(format!(
                "Bearer {}",
                p.sign(kid, &claims(json!({"exp": now - 1})))
            )),
        ),
        (
            "another audience",
            Some(format!(
                "Bearer {}",
                p.sign(kid, &claims(json!({"aud": "other"})))
            )),
        ),
        (
            "another issuer",
            Some(format!(
                "Bearer {}",
                p.sign(kid, &claims(json!({"iss": "https://idp.example"})))
            )),
        ),
        (
            "unsigned",
            Some(format!("Bearer {}", {
                jit_stack::oidc::unsigned(&json!({"alg": "none", "kid": kid}), &claims(json!({})))
            })),
        ),
    ];
    let before = intake.invocations();
    let http = reqwest::Client::new();
    for (what, auth) in cases {
        let mut request = http.get(format!(
            "{}/audit?from=2026-01-01T00:00:00Z&to=2026-01-02T00:00:00Z",
            stack.api_url
        ));
        if let Some(auth) = auth {
            request = request.header("authorization", auth);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status().as_u16(), 401, "{what}");
        let body: Value = serde_json::from_slice(&response.bytes().await.unwrap()).unwrap();
        assert_eq!(body, json!({"message": "Unauthorized"}), "{what}");
    }
    assert_eq!(
        intake.invocations(),
        before,
        "no refused request reached the function"
    );
    // A route the API does not have is API Gateway's 404, whatever the token.
    let a = api
        .call("DELETE", "/requests", Some(&good), None)
        .await
        .unwrap();
    assert_eq!(
        (a.status, a.body.clone()),
        (404, json!({"message": "Not Found"}))
    );
    // The genuine token passes.
    let ok = api
        .call("GET", "/requests?scope=mine", Some(&good), None)
        .await
        .unwrap();
    assert_eq!(ok.status, 200, "{}", ok.body);
}

#[tokio::test]
async fn past_a_routes_throttle_the_gateway_answers_429_and_the_client_waits_it_out() {
    let stack = shared().unwrap();
    let token = stack.token("throttled", &["sre"]);
    let patient = api(stack).as_user(&token);
    let impatient = patient.without_throttle_retries();
    // 120 at once on one route: more than its burst of 50.
    let answers =
        futures::future::join_all((0..120).map(|_| impatient.send("GET", "/targets", None, &[])))
            .await;
    let mut throttled = 0;
    for a in answers.into_iter().map(Result::unwrap) {
        match a.status {
            200 => {}
            429 => {
                assert_eq!(a.body, json!({"message": "Too Many Requests"}));
                throttled += 1;
            }
            other => panic!("{other}: {}", a.text),
        }
    }
    assert!(throttled > 0, "120 at once all passed a burst of 50");
    // The client every tool uses waits its 429s out: every one of another 120 gets through.
    let answers =
        futures::future::join_all((0..120).map(|_| patient.send("GET", "/targets", None, &[])))
            .await;
    let statuses: Vec<u16> = answers.into_iter().map(|a| a.unwrap().status).collect();
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
}

#[tokio::test]
async fn a_function_that_cannot_start_is_answered_as_api_gateway_would_with_nothing_leaked() {
    // The issuer gets a broken policy set: its process exits at start-up with the file and
    // line to fix, which must reach the logs and never the caller.
    let broken = jit_local::policy_dir(
        "jit-e2e/broken-policies",
        &["schema.cedarschema", "targets.json", "auto-approve.cedar"],
        (
            "access.cedar",
            "permit (principal, action, resource) when { nonsense };",
        ),
    )
    .unwrap();
    let mut opts = options("crash");
    opts.function_env.push((
        "issuer".into(),
        "JIT_POLICY_DIR".into(),
        broken.display().to_string(),
    ));
    let stack = start(opts).unwrap();
    let api = api(&stack);
    let gus = stack.token("gus-crash", &["sre"]);
    let id = active(&api, &gus, "prod-logs-ro", "30m").await;
    let c = pull(&api, &id, &gus).await;
    assert_eq!(
        (c.status, c.body.clone()),
        (500, json!({"message": "Internal Server Error"}))
    );
    // The answer can reach the caller before the failed start's output reaches the log file.
    let mut log = String::new();
    for _ in 0..50 {
        log = std::fs::read_to_string(stack.state_dir.join("logs/issuer.log")).unwrap_or_default();
        if log.contains("access.cedar") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        log.contains("access.cedar"),
        "the log names the file to fix: {log}"
    );
    // Nothing was recorded, and the other functions are unaffected.
    assert_eq!(state_of(&api, &id, &gus).await.sessions_issued, 0);
}

#[tokio::test]
async fn grants_expire_and_requests_time_out_on_the_sweep_schedule_in_real_time() {
    EXPIRY.join().await;
}

/// A scenario that waits minutes in real time, on a thread of its own from the first test that
/// asks for the API when the whole suite runs: its waiting then overlaps the other tests
/// instead of starting when a test thread comes free (two test threads ran the expiry
/// scenario last once, ending the suite about 100 s later). Run alone, it starts with its own
/// test, which joins it.
struct LongScenario {
    started: std::sync::Once,
    running: std::sync::Mutex<Option<std::thread::JoinHandle<()>>>,
    scenario: fn() -> std::pin::Pin<Box<dyn std::future::Future<Output = ()>>>,
}

impl LongScenario {
    const fn new(
        scenario: fn() -> std::pin::Pin<Box<dyn std::future::Future<Output = ()>>>,
    ) -> Self {
        Self {
            started: std::sync::Once::new(),
            running: std::sync::Mutex::new(None),
            scenario,
        }
    }

    fn start(&'static self) {
        self.started.call_once(|| {
            let running = std::thread::spawn(|| {
                let runtime = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                    .unwrap();
                runtime.block_on((self.scenario)());
            });
            *self
                .running
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(running);
        });
    }

    /// Waits for the scenario; its asserts ran on its own thread, so a failure there fails
    /// the calling test here.
    async fn join(&'static self) {
        self.start();
        let running = self
            .running
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take()
            .expect("a long scenario is joined once");
        let outcome = tokio::task::spawn_blocking(move || running.join())
            .await
            .unwrap();
        // Its panic message went to whichever test started it (whose output is dropped when
        // it passes): say it again here, where the failure is reported.
        if let Err(panic) = outcome {
            let message = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                .unwrap_or_else(|| "a panic without a message".to_owned());
            panic!("the long scenario failed: {message}");
        }
    }
}

/// Grants expiring and requests timing out, on a stack of their own that sweeps every 2 s.
static EXPIRY: LongScenario = LongScenario::new(|| Box::pin(expiry_scenario()));

async fn expiry_scenario() {
    // Five minutes is the shortest grant there is, so this test waits that long: a copy of the
    // example rules with a five-minute decision window, and a sweep every two seconds.
    let dir = jit_local::target_dir().join("jit-e2e/short-window-policies");
    std::fs::create_dir_all(&dir).unwrap();
    let src = jit_local::workspace_root().join("infra/policies");
    for f in ["schema.cedarschema", "access.cedar", "auto-approve.cedar"] {
        std::fs::copy(src.join(f), dir.join(f)).unwrap();
    }
    let mut targets: Value =
        serde_json::from_str(&std::fs::read_to_string(src.join("targets.json")).unwrap()).unwrap();
    for t in targets["targets"].as_array_mut().unwrap() {
        if t["id"] == "prod-logs-ro" {
            t["decision_window"] = json!("5m");
        }
    }
    std::fs::write(dir.join("targets.json"), targets.to_string()).unwrap();
    let mut opts = options("timing");
    opts.policy_dir = dir;
    opts.sweep_every = Some(Duration::from_secs(2));
    let stack = start(opts).unwrap();
    let api = api(&stack);
    let alice = stack.token("alice-timing", &["sre"]);
    let erin = stack.token("erin-timing", &["engineers"]);
    let granted = active(&api, &alice, "prod-logs-ro", "5m").await;
    // A session of at least 15 minutes outlives the 5-minute grant: expiry must cut it.
    let c = pull(&api, &granted, &alice).await;
    assert_eq!(c.status, 200, "{}", c.body);
    let waiting = ask(&api, &erin, asking("prod-logs-ro", "1h")).await;
    api.wait_looked_at(&waiting, &erin).await.unwrap();
    let expired = api
        .wait_for(&granted, &alice, Duration::from_secs(420), |g| {
            g.state != GrantState::Active
        })
        .await
        .unwrap();
    assert_eq!(expired.state, GrantState::Expired, "{expired:?}");
    let timed_out = api
        .wait_for(&waiting, &erin, Duration::from_secs(60), |g| {
            g.state != GrantState::Pending
        })
        .await
        .unwrap();
    assert_eq!(timed_out.state, GrantState::TimedOut, "{timed_out:?}");
    // The deny lands in the sweep that expires the grant, after its commit: within a sweep.
    let mut doc = None;
    for _ in 0..50 {
        if let Ok(found) = jit_stack::demo::revocation_policy(&stack, "prod-logs-ro").await {
            doc = Some(found);
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let doc = doc.expect("the expired grant's outliving session is denied within a sweep");
    let denied =
        doc["Statement"][0]["Condition"]["StringEquals"]["aws:PrincipalTag/jit-grant"].clone();
    assert!(
        denied.as_array().unwrap().contains(&json!(granted)),
        "{doc}"
    );
    let c = pull(&api, &granted, &alice).await;
    assert_eq!(c.status, 409, "{}", c.body);
    // Minute-long checkpoint periods: several closed during the wait, each signed by the
    // sweeper and matching the records of its minute.
    let ann = stack.token("ann-timing", &["security"]);
    let (_, summary) = verified_export(&stack, &api, &ann).await;
    assert!(summary.periods >= 3, "{summary:?}");
    // Each of those periods is in the audit bucket too, under lock.
    archive::the_bucket_holds_every_closed_period(
        &stack,
        &api,
        &ann,
        &["alice-timing", "erin-timing"],
    )
    .await;
}

#[tokio::test]
async fn a_request_the_rules_refuse_leaves_a_metric_and_a_log_line_not_a_write() {
    let stack = shared().unwrap();
    let api = api(stack);
    let dan = stack.token("dan-refused", &["dba"]);
    let asked =
        json!({"target": "prod-db-admin", "duration": "1h", "reason": "rotating credentials"});
    let refused = send(&api, post("/requests".to_owned()), &dan, Some(asked)).await;
    assert_eq!(refused.status, 403, "{}", refused.body);
    // Intake's log holds the refusal as one Embedded Metric Format line an auditor can query.
    let line = refused_line(stack, "dan-refused").await;
    assert_eq!(line["RequestRefused"], 1, "{line}");
    assert_eq!(line["Target"], "prod-db-admin", "{line}");
    assert_eq!(line["policies"], "admin-needs-a-ticket", "{line}");
    assert_eq!(line["duration_secs"], "3600", "{line}");
    assert_eq!(line["break_glass"], "false", "{line}");
    assert!(
        line["why"].as_str().unwrap().contains("needs a ticket"),
        "{line}"
    );
    let metric = &line["_aws"]["CloudWatchMetrics"][0];
    assert_eq!(metric["Namespace"], "JitAccess");
    assert_eq!(metric["Dimensions"], json!([["Target"]]));
    assert_eq!(metric["Metrics"][0]["Name"], "RequestRefused");
    // Nothing was written: dan has no request.
    let mine = api
        .call("GET", "/requests?scope=mine", Some(&dan), None)
        .await
        .unwrap();
    assert_eq!(mine.status, 200, "{}", mine.body);
    assert_eq!(mine.body["items"], json!([]), "{}", mine.body);
}
