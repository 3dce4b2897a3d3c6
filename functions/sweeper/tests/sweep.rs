//! Revocation and sweeps against IAM, STS and DynamoDB on the emulator.
// Tests may unwrap and index: a panic is how a test fails.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use jit_core::audit::AuditAction;
use jit_core::clock::{Clock, ManualClock, SystemClock, Timestamp};
use jit_core::domain::{
    Actor, Command, Grant, GrantDuration, GrantId, GrantState, GroupName, NewRequest, Reason,
    Service, SessionKind, TargetId, UserId,
};
use jit_core::policy::{Rules, Target};
use jit_core::store::{DynamoStore, GrantStore, PageRequest};
use jit_local::{Claims, TestTable};
use jit_sweeper::{IamPolicies, PolicyError, RolePolicies, Sweeper, SweeperConfig};
use serde_json::{Value, json};

/// IAM on the emulator, with a switch that makes one role's calls fail.
struct Policies {
    iam: IamPolicies,
    broken_role: Mutex<Option<String>>,
}

impl RolePolicies for Policies {
    async fn put(&self, target: &Target, name: &str, document: &str) -> Result<(), PolicyError> {
        self.check(target)?;
        self.iam.put(target, name, document).await
    }
    async fn delete(&self, target: &Target, name: &str) -> Result<(), PolicyError> {
        self.check(target)?;
        self.iam.delete(target, name).await
    }
}

impl Policies {
    fn check(&self, target: &Target) -> Result<(), PolicyError> {
        if self.broken_role.lock().unwrap().as_deref() == Some(target.id.as_str()) {
            return Err(PolicyError {
                role: target.role_arn.to_string(),
                why: "injected failure".into(),
            });
        }
        Ok(())
    }
}

struct Harness {
    sweeper: Sweeper<DynamoStore, Policies>,
    clock: Arc<ManualClock>,
    /// IAM in the broker's account, and in the target account through the revoker role.
    iam: aws_sdk_iam::Client,
    iam_other: aws_sdk_iam::Client,
    suffix: String,
}

const SRE: &[&str] = &["sre"];

impl Harness {
    async fn new(label: &str, budget: usize) -> Self {
        let table = TestTable::create(label).await.unwrap();
        let config = jit_local::Emulator::shared().unwrap().sdk_config().await;
        // Each test gets roles of its own: IAM is shared by the tests of this binary.
        let suffix = table.name.replace("jit-", "");
        let dir = jit_local::workspace_root().join("infra/policies");
        let read = |n: &str| std::fs::read_to_string(dir.join(n)).unwrap();
        let targets = read("targets.json")
            .replace(
                "role/jit/prod-logs-ro",
                &format!("role/jit/prod-logs-ro-{suffix}"),
            )
            .replace(
                "role/jit/prod-db-admin",
                &format!("role/jit/prod-db-admin-{suffix}"),
            )
            .replace(
                "role/jit/prod-deploy",
                &format!("role/jit/prod-deploy-{suffix}"),
            )
            .replace(
                "role/jit/break-glass-admin",
                &format!("role/jit/break-glass-admin-{suffix}"),
            );
        let rules = Rules::from_sources(
            &read("schema.cedarschema"),
            vec![
                ("access.cedar".into(), read("access.cedar")),
                ("auto-approve.cedar".into(), read("auto-approve.cedar")),
            ],
            &targets,
        )
        .unwrap();
        let iam = aws_sdk_iam::Client::new(&config);
        let sts = aws_sdk_sts::Client::new(&config);
        // The target account's IAM, as the revoker role sees it.
        let assumed = sts
            .assume_role()
            .role_arn("arn:aws:iam::222222222222:role/jit-revoker")
            .role_session_name("test-setup")
            .send()
            .await
            .unwrap()
            .credentials
            .unwrap();
        let other = aws_sdk_iam::config::Builder::from(&config)
            .credentials_provider(aws_credential_types::Credentials::new(
                assumed.access_key_id,
                assumed.secret_access_key,
                Some(assumed.session_token),
                None,
                "test",
            ))
            .build();
        let iam_other = aws_sdk_iam::Client::from_conf(other);
        for target in rules.targets() {
            let client = if target.account == "222222222222" {
                &iam_other
            } else {
                &iam
            };
            client
                .create_role()
                .role_name(jit_sweeper::role_name(&target.role_arn))
                .path("/jit/")
                .assume_role_policy_document(r#"{"Version":"2012-10-17","Statement":[]}"#)
                .send()
                .await
                .unwrap();
        }
        let clock = Arc::new(ManualClock::at(SystemClock.now()));
        let sweeper = Sweeper {
            store: DynamoStore::new(table.client.clone(), &table.name),
            rules: Arc::new(rules),
            clock: clock.clone(),
            policies: Policies {
                iam: IamPolicies::new(&config),
                broken_role: Mutex::new(None),
            },
            config: SweeperConfig {
                policy_budget: budget,
                deadline_margin: Duration::ZERO,
                page_size: 3,
                ..SweeperConfig::default()
            },
        };
        Self {
            sweeper,
            clock,
            iam,
            iam_other,
            suffix,
        }
    }

    fn now(&self) -> Timestamp {
        self.clock.now()
    }

    fn store(&self) -> &DynamoStore {
        &self.sweeper.store
    }

    async fn pending(&self, who: &str, target: &str, duration: &str) -> Grant {
        let now = self.now();
        let rules = &self.sweeper.rules;
        let target = TargetId::parse(target).unwrap();
        let t = rules.target(&target).unwrap();
        let new = NewRequest {
            requester: UserId::parse(who).unwrap(),
            requester_groups: vec![GroupName::parse("engineers").unwrap()],
            target: target.clone(),
            role_arn: t.role_arn.clone(),
            duration: GrantDuration::parse(duration).unwrap(),
            reason: Reason::parse("investigating INC-42 in production").unwrap(),
            ticket: None,
            break_glass: false,
            decision_window_secs: 1800,
            policy_hash: rules.hash().to_owned(),
        };
        let creation = Grant::open(GrantId::generate(now), new, now);
        self.store().create(&creation, None).await.unwrap();
        creation.grant().clone()
    }

    async fn apply(&self, g: &Grant, command: Command, actor: Actor) -> Grant {
        let change = g.apply(command, &actor, self.now()).unwrap();
        self.store().commit(&change).await.unwrap();
        change.grant().clone()
    }

    /// An active grant with one session handed out that lasts `session_secs`.
    async fn with_session(
        &self,
        who: &str,
        target: &str,
        duration: &str,
        session_secs: i64,
    ) -> Grant {
        let g = self.pending(who, target, duration).await;
        let g = self
            .apply(
                &g,
                Command::AutoApprove {
                    policies: vec!["t".into()],
                    policy_hash: "h".into(),
                },
                Actor::Service(Service::Approver),
            )
            .await;
        let expires_at = self.now().plus_secs(session_secs);
        self.apply(
            &g,
            Command::IssueSession {
                kind: SessionKind::Cli,
                expires_at,
            },
            Actor::User(g.requester.clone()),
        )
        .await
    }

    async fn grant(&self, id: &GrantId) -> Grant {
        self.store().get(id).await.unwrap().unwrap()
    }

    async fn actions(&self, id: &GrantId) -> Vec<AuditAction> {
        let records = self
            .store()
            .audit_of_grant(id, &PageRequest::first(50))
            .await
            .unwrap()
            .items;
        records.iter().map(|r| r.action).collect()
    }

    /// The revocation policy on a target's role, if any.
    async fn policy(&self, target: &str) -> Option<Value> {
        let t = self
            .sweeper
            .rules
            .target(&TargetId::parse(target).unwrap())
            .unwrap();
        let client = if t.account == "222222222222" {
            &self.iam_other
        } else {
            &self.iam
        };
        let out = client
            .get_role_policy()
            .role_name(jit_sweeper::role_name(&t.role_arn))
            .policy_name("jit-revocations")
            .send()
            .await
            .ok()?;
        let text = out.policy_document;
        let decoded = url::form_urlencoded::parse(format!("d={text}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
            .unwrap_or(text);
        Some(serde_json::from_str(&decoded).unwrap())
    }

    async fn revoke(&self, who: Option<(&str, &[&str])>, id: &GrantId, body: &str) -> (u16, Value) {
        let claims = who.map(|(sub, groups)| Claims { sub, groups });
        let path = format!("/grants/{id}/revoke");
        let event =
            jit_local::http_api_event(claims, "POST /grants/{id}/revoke", &path, Some(body), &[]);
        let out = self
            .sweeper
            .handle_event(event, Instant::now() + Duration::from_secs(60))
            .await
            .unwrap();
        let status = out["statusCode"].as_u64().unwrap() as u16;
        (
            status,
            serde_json::from_str(out["body"].as_str().unwrap()).unwrap_or(Value::Null),
        )
    }

    async fn sweep(&self) -> Value {
        let event = json!({"version": "0", "id": "53dc4d37", "detail-type": "Scheduled Event", "source": "aws.events",
            "account": "123456789012", "time": "2027-01-13T10:00:00Z", "region": "eu-west-1",
            "resources": ["arn:aws:events:eu-west-1:123456789012:rule/jit-sweep"], "detail": {}});
        self.sweeper
            .handle_event(event, Instant::now() + Duration::from_secs(60))
            .await
            .unwrap()
    }
}

fn reason() -> String {
    json!({"reason": "incident closed, access no longer needed"}).to_string()
}

fn denied_grants(policy: &Value) -> Vec<String> {
    let list = &policy["Statement"][0]["Condition"]["StringEquals"]["aws:PrincipalTag/jit-grant"];
    list.as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn revoking_cuts_the_live_sessions_through_the_roles_policy() {
    let h = Harness::new("revoke", 10_240).await;
    let g = h.with_session("alice", "prod-logs-ro", "1h", 1800).await;
    let other = h.with_session("bob", "prod-logs-ro", "1h", 1800).await;
    let (status, body) = h
        .revoke(Some(("alice", &["engineers"])), &g.id, &reason())
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (body["state"].as_str(), body["live_sessions"].as_str()),
        (Some("REVOKED"), Some("cut"))
    );
    let policy = h.policy("prod-logs-ro").await.unwrap();
    assert_eq!(
        policy,
        json!({"Version": "2012-10-17", "Statement": [{
            "Sid": "JitRevokedGrants", "Effect": "Deny", "Action": "*", "Resource": "*",
            "Condition": {"StringEquals": {"aws:PrincipalTag/jit-grant": [g.id.as_str()]}}
        }]})
    );
    // An SRE revokes the other: both are denied now, derived from the ledger.
    let (status, _) = h.revoke(Some(("sam", SRE)), &other.id, &reason()).await;
    assert_eq!(status, 200);
    let mut expected = vec![g.id.to_string(), other.id.to_string()];
    expected.sort();
    assert_eq!(
        denied_grants(&h.policy("prod-logs-ro").await.unwrap()),
        expected
    );
    assert!(h.actions(&g.id).await.contains(&AuditAction::Revoked));
    assert_eq!(h.grant(&g.id).await.state, GrantState::Revoked);
}

#[tokio::test]
async fn revocation_is_refused_to_the_wrong_people_and_states() {
    let h = Harness::new("revoke-refused", 10_240).await;
    let g = h.with_session("dan", "prod-db-admin", "1h", 1800).await;
    let pending = h.pending("erin", "prod-logs-ro", "1h").await;
    for (who, status, detail) in [
        (
            Some(("bob", &["engineers"][..])),
            404,
            "no grant with that id is visible to you",
        ),
        (
            Some(("lee", &["dba-leads"][..])),
            403,
            "no policy permits you to Revoke on target `prod-db-admin`",
        ),
        (None, 401, "the request carries no verified identity"),
    ] {
        let (s, body) = h.revoke(who, &g.id, &reason()).await;
        assert_eq!(s, status, "{who:?}: {body}");
        assert!(
            body["detail"].as_str().unwrap().starts_with(detail),
            "{body}"
        );
    }
    let (s, body) = h
        .revoke(Some(("dan", &["dba"])), &g.id, r#"{"reason": "short"}"#)
        .await;
    assert_eq!(
        (s, body["detail"].as_str()),
        (422, Some("reason must be at least 10 characters, got 5"))
    );
    let (s, _) = h
        .revoke(
            Some(("dan", &["dba"])),
            &g.id,
            r#"{"reason": "long enough reason", "force": 1}"#,
        )
        .await;
    assert_eq!(s, 400);
    let (s, body) = h
        .revoke(Some(("erin", &["engineers"])), &pending.id, &reason())
        .await;
    assert_eq!(s, 409);
    assert_eq!(
        body["detail"],
        format!("cannot revoke request `{}`: it is PENDING", pending.id)
    );
    assert_eq!(
        h.grant(&g.id).await.state,
        GrantState::Active,
        "nothing changed"
    );
    assert!(h.policy("prod-db-admin").await.is_none());
    // The requester may end it; a second time is refused.
    assert_eq!(
        h.revoke(Some(("dan", &["dba"])), &g.id, &reason()).await.0,
        200
    );
    let (s, body) = h.revoke(Some(("sam", SRE)), &g.id, &reason()).await;
    assert_eq!(s, 409);
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .ends_with("it is REVOKED, which is final")
    );
}

#[tokio::test]
async fn a_role_in_another_account_is_changed_through_its_revoker_role() {
    let h = Harness::new("cross", 10_240).await;
    let g = h.with_session("dan", "prod-db-admin", "1h", 1800).await;
    assert_eq!(h.revoke(Some(("sam", SRE)), &g.id, &reason()).await.0, 200);
    let policy = h.policy("prod-db-admin").await.unwrap();
    assert_eq!(denied_grants(&policy), [g.id.to_string()]);
    // Not in the broker's own account.
    let own = h
        .iam
        .get_role_policy()
        .role_name(format!("prod-db-admin-{}", h.suffix))
        .policy_name("jit-revocations")
        .send()
        .await;
    assert!(own.is_err());
}

#[tokio::test]
async fn the_sweep_expires_times_out_cuts_outliving_sessions_then_prunes() {
    let h = Harness::new("sweep", 10_240).await;
    let stale = h.pending("erin", "prod-deploy", "1h").await;
    let short = h.with_session("alice", "prod-logs-ro", "5m", 900).await;
    let plain = {
        let g = h.pending("bob", "prod-deploy", "5m").await;
        h.apply(
            &g,
            Command::AutoApprove {
                policies: vec!["t".into()],
                policy_hash: "h".into(),
            },
            Actor::Service(Service::Approver),
        )
        .await
    };
    let report = h.sweep().await;
    assert_eq!(
        (report["expired"].as_u64(), report["timed_out"].as_u64()),
        (Some(0), Some(0)),
        "{report}"
    );
    h.clock.advance(31 * 60);
    let report = h.sweep().await;
    assert_eq!(report["finished"], true, "{report}");
    assert_eq!(
        (report["expired"].as_u64(), report["timed_out"].as_u64()),
        (Some(2), Some(1)),
        "{report}"
    );
    assert_eq!(h.grant(&stale.id).await.state, GrantState::TimedOut);
    assert_eq!(h.grant(&short.id).await.state, GrantState::Expired);
    assert_eq!(h.grant(&plain.id).await.state, GrantState::Expired);
    // The short grant's session (900 s) was issued with 5 minutes left... and has lapsed too by
    // now; a grant whose session outlives the sweep is cut:
    let long = h.with_session("carol", "prod-logs-ro", "5m", 3600).await;
    h.clock.advance(6 * 60);
    let report = h.sweep().await;
    assert_eq!(report["expired"], 1, "{report}");
    assert_eq!(
        denied_grants(&h.policy("prod-logs-ro").await.unwrap()),
        [long.id.to_string()]
    );
    // A second sweep changes nothing.
    let again = h.sweep().await;
    assert_eq!(
        (
            again["expired"].as_u64(),
            again["policies_changed"].as_u64()
        ),
        (Some(0), Some(0)),
        "{again}"
    );
    // Once the session has lapsed, the entry is pruned and the policy removed.
    h.clock.advance(3600);
    let report = h.sweep().await;
    assert_eq!(
        (
            report["pruned"].as_u64(),
            report["policies_changed"].as_u64()
        ),
        (Some(1), Some(1)),
        "{report}"
    );
    assert!(h.policy("prod-logs-ro").await.is_none());
}

#[tokio::test]
async fn a_sweep_stopped_by_its_deadline_is_finished_by_the_next() {
    let h = Harness::new("deadline", 10_240).await;
    for i in 0..7 {
        h.pending(&format!("user{i}"), "prod-deploy", "1h").await;
    }
    h.clock.advance(31 * 60);
    let cut_short = h.sweeper.sweep(Instant::now()).await;
    assert!(!cut_short.finished);
    assert_eq!(cut_short.timed_out, 0);
    let report = h.sweep().await;
    assert_eq!(
        (report["timed_out"].as_u64(), report["finished"].as_bool()),
        (Some(7), Some(true)),
        "{report}"
    );
}

#[tokio::test]
async fn two_sweeps_at_once_settle_each_grant_once() {
    let h = Harness::new("twice", 10_240).await;
    for i in 0..9 {
        h.pending(&format!("user{i}"), "prod-deploy", "1h").await;
    }
    h.clock.advance(31 * 60);
    let deadline = Instant::now() + Duration::from_secs(60);
    let (a, b) = tokio::join!(h.sweeper.sweep(deadline), h.sweeper.sweep(deadline));
    assert_eq!(a.timed_out + b.timed_out, 9, "{a:?} {b:?}");
    assert!(
        a.failures.is_empty() && b.failures.is_empty(),
        "{a:?} {b:?}"
    );
}

#[tokio::test]
async fn iam_failing_on_one_role_leaves_the_others_and_the_next_sweep_repairs_it() {
    let h = Harness::new("iam-fail", 10_240).await;
    let logs = h.with_session("alice", "prod-logs-ro", "1h", 1800).await;
    let deploy = h.with_session("bob", "prod-deploy", "1h", 1800).await;
    *h.sweeper.policies.broken_role.lock().unwrap() = Some("prod-logs-ro".into());
    let (status, body) = h.revoke(Some(("sam", SRE)), &logs.id, &reason()).await;
    assert_eq!(
        (status, body["live_sessions"].as_str()),
        (200, Some("pending")),
        "{body}"
    );
    assert_eq!(
        h.grant(&logs.id).await.state,
        GrantState::Revoked,
        "the revocation stands"
    );
    assert_eq!(
        h.revoke(Some(("sam", SRE)), &deploy.id, &reason()).await.0,
        200
    );
    assert!(h.policy("prod-logs-ro").await.is_none());
    assert!(h.policy("prod-deploy").await.is_some());
    let report = h.sweep().await;
    assert_eq!(report["failures"].as_array().unwrap().len(), 1, "{report}");
    *h.sweeper.policies.broken_role.lock().unwrap() = None;
    let report = h.sweep().await;
    assert!(
        report["failures"].as_array().unwrap().is_empty(),
        "{report}"
    );
    assert_eq!(
        denied_grants(&h.policy("prod-logs-ro").await.unwrap()),
        [logs.id.to_string()]
    );
}

#[tokio::test]
async fn an_oversized_ledger_falls_back_to_a_cut_off_audits_it_and_returns() {
    // A budget that holds one grant id (210 characters) but not two (249).
    let h = Harness::new("fallback", 230).await;
    let a = h.with_session("alice", "prod-logs-ro", "1h", 600).await;
    let b = h.with_session("bob", "prod-logs-ro", "1h", 3000).await;
    assert_eq!(h.revoke(Some(("sam", SRE)), &a.id, &reason()).await.0, 200);
    assert_eq!(
        denied_grants(&h.policy("prod-logs-ro").await.unwrap()),
        [a.id.to_string()]
    );
    h.clock.advance(10);
    assert_eq!(h.revoke(Some(("sam", SRE)), &b.id, &reason()).await.0, 200);
    let policy = h.policy("prod-logs-ro").await.unwrap();
    let cutoff = policy["Statement"][0]["Condition"]["DateLessThan"]["aws:TokenIssueTime"].clone();
    assert_eq!(cutoff, json!(h.now().to_rfc3339()), "{policy}");
    for g in [&a, &b] {
        assert_eq!(
            h.actions(&g.id).await.last(),
            Some(&AuditAction::RevocationFallback)
        );
    }
    // The next sweep keeps the cut-off and audits nothing new (it only settles the other,
    // untouched roles, whose policies it records as absent).
    h.clock.advance(60);
    let report = h.sweep().await;
    assert_eq!(
        (
            report["fallbacks"].as_u64(),
            report["failures"].as_array().map(Vec::len)
        ),
        (Some(0), Some(0)),
        "{report}"
    );
    assert_eq!(h.policy("prod-logs-ro").await.unwrap(), policy);
    assert_eq!(
        h.actions(&a.id)
            .await
            .iter()
            .filter(|x| **x == AuditAction::RevocationFallback)
            .count(),
        1
    );
    // When a's session lapses, the ledger fits again: precise, and a's entry is pruned.
    h.clock.advance(600);
    let report = h.sweep().await;
    assert_eq!(
        (
            report["policies_changed"].as_u64(),
            report["pruned"].as_u64()
        ),
        (Some(1), Some(1)),
        "{report}"
    );
    assert_eq!(
        denied_grants(&h.policy("prod-logs-ro").await.unwrap()),
        [b.id.to_string()]
    );
}

#[tokio::test]
async fn unknown_events_are_errors() {
    let h = Harness::new("events", 10_240).await;
    let err = h
        .sweeper
        .handle_event(json!({"Records": []}), Instant::now())
        .await
        .unwrap_err();
    assert!(err.starts_with("unrecognised event"), "{err}");
}
