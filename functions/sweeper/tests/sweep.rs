//! Revocation and sweeps against IAM, STS and DynamoDB on the emulator.
// Tests may unwrap and index: a panic is how a test fails.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use jit_core::audit::AuditAction;
use jit_core::clock::{Clock, ManualClock, SystemClock, Timestamp};
use jit_core::domain::{
    Actor, Change, Command, Creation, Grant, GrantId, GrantState, RoleArn, Service, SessionKind,
    TargetId, TargetRole,
};
use jit_core::policy::Rules;
use jit_core::store::{
    AppliedPolicy, Created, DynamoStore, GrantStore, Idempotency, PageRequest, SignedStore,
    StoreError,
};
use jit_core::trust::{
    AuditExport, Checkpoint, ExportBreak, LocalKey, LocalKeys, record_message, verify_export,
};
use jit_local::{Claims, TestTable};
use jit_sweeper::{IamPolicies, PolicyError, RolePolicies, Sweeper, SweeperConfig};
use serde_json::{Value, json};
use tokio::sync::oneshot;

/// Gates that hold the next call of one kind until the test releases it, so a test can put
/// two reconciles in the order a race would.
#[derive(Default)]
struct Gates(Mutex<Vec<Gate>>);

/// One armed gate: the kind of call it holds, who to tell it arrived, what lets it go.
type Gate = (&'static str, oneshot::Sender<()>, oneshot::Receiver<()>);

impl Gates {
    /// Holds the next `kind` call: `entered` fires when it arrives, sending on `release` lets
    /// it go on.
    fn arm(&self, kind: &'static str) -> (oneshot::Receiver<()>, oneshot::Sender<()>) {
        let (entered_tx, entered) = oneshot::channel();
        let (release, release_rx) = oneshot::channel();
        self.0.lock().unwrap().push((kind, entered_tx, release_rx));
        (entered, release)
    }

    async fn pass(&self, kind: &'static str) {
        let gate = {
            let mut gates = self.0.lock().unwrap();
            let at = gates.iter().position(|(k, _, _)| *k == kind);
            at.map(|i| gates.remove(i))
        };
        if let Some((_, entered, release)) = gate {
            entered.send(()).unwrap();
            release.await.unwrap();
        }
    }
}

/// IAM on the emulator, with a switch that makes one role's calls fail and gates that hold a
/// put or delete.
struct Policies {
    iam: IamPolicies,
    broken_role: Mutex<Option<String>>,
    gates: Arc<Gates>,
}

impl RolePolicies for Policies {
    async fn get(&self, role: &TargetRole, name: &str) -> Result<Option<String>, PolicyError> {
        self.check(role)?;
        self.iam.get(role, name).await
    }
    async fn put(&self, role: &TargetRole, name: &str, document: &str) -> Result<(), PolicyError> {
        self.check(role)?;
        self.gates.pass("iam-write").await;
        self.iam.put(role, name, document).await
    }
    async fn delete(&self, role: &TargetRole, name: &str) -> Result<(), PolicyError> {
        self.check(role)?;
        self.gates.pass("iam-write").await;
        self.iam.delete(role, name).await
    }
}

impl Policies {
    fn check(&self, role: &TargetRole) -> Result<(), PolicyError> {
        let name = jit_sweeper::role_name(&role.role_arn);
        if let Some(broken) = self.broken_role.lock().unwrap().as_deref()
            && name.starts_with(&format!("{broken}-"))
        {
            return Err(PolicyError {
                role: role.role_arn.to_string(),
                why: "injected failure".into(),
            });
        }
        Ok(())
    }
}

/// DynamoDB on the emulator, with a gate that holds the write of the applied marker (a slow
/// digest write).
#[derive(Clone)]
struct GatedStore {
    inner: SignedStore<DynamoStore>,
    gates: Arc<Gates>,
    /// The four functions' keys the records are signed with.
    keys: LocalKeys,
    table: TestTable,
}

impl GrantStore for GatedStore {
    jit_core::delegate_grant_store_reads!(inner);

    async fn create(
        &self,
        creation: &Creation,
        idempotency: Option<&Idempotency>,
    ) -> Result<Created, StoreError> {
        self.inner.create(creation, idempotency).await
    }
    async fn commit(&self, change: &Change) -> Result<(), StoreError> {
        self.inner.commit(change).await
    }
    async fn put_checkpoint(&self, checkpoint: &Checkpoint) -> Result<(), StoreError> {
        self.inner.put_checkpoint(checkpoint).await
    }
    async fn record_applied(
        &self,
        role: &RoleArn,
        applied: &AppliedPolicy,
    ) -> Result<(), StoreError> {
        self.gates.pass("record-applied").await;
        self.inner.record_applied(role, applied).await
    }
}

struct Harness {
    sweeper: Sweeper<GatedStore, Policies>,
    clock: Arc<ManualClock>,
    /// IAM in the broker's account, and in each target account through its revoker role.
    iam: aws_sdk_iam::Client,
    accounts: BTreeMap<String, aws_sdk_iam::Client>,
    suffix: String,
    gates: Arc<Gates>,
    config: aws_config::SdkConfig,
    targets: String,
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
        let rules = rules_from(&targets);
        let iam = aws_sdk_iam::Client::new(&config);
        let sts = aws_sdk_sts::Client::new(&config);
        // Each target account's IAM, as its revoker role sees it.
        let mut accounts = BTreeMap::new();
        for target in rules.targets() {
            let Some(revoker) = &target.revoker_role_arn else {
                continue;
            };
            if accounts.contains_key(&target.account) {
                continue;
            }
            let (iam, _) = jit_sweeper::iam_as(&config, &sts, revoker.as_str(), "test-setup")
                .await
                .unwrap();
            accounts.insert(target.account.clone(), iam);
        }
        for target in rules.targets() {
            accounts[&target.account]
                .create_role()
                .role_name(jit_sweeper::role_name(&target.role_arn))
                .path("/jit/")
                .assume_role_policy_document(r#"{"Version":"2012-10-17","Statement":[]}"#)
                .send()
                .await
                .unwrap();
        }
        let clock = Arc::new(ManualClock::at(SystemClock.now()));
        let gates = Arc::new(Gates::default());
        let keys = LocalKeys::generate();
        let store = GatedStore {
            inner: SignedStore::new(
                DynamoStore::new(table.client.clone(), &table.name),
                Arc::new(keys.clone()),
            ),
            gates: gates.clone(),
            keys,
            table: table.clone(),
        };
        let sweeper = sweeper_with(store, rules, clock.clone(), &config, &gates, budget);
        Self {
            sweeper,
            clock,
            iam,
            accounts,
            suffix,
            gates,
            config,
            targets,
        }
    }

    /// Another sweeper on the same table, IAM and clock, with the targets file edited.
    fn with_targets(&self, edit: impl Fn(&str) -> String) -> Sweeper<GatedStore, Policies> {
        sweeper_with(
            self.sweeper.store.clone(),
            rules_from(&edit(&self.targets)),
            self.clock.clone(),
            &self.config,
            &self.gates,
            self.sweeper.config.policy_budget,
        )
    }

    fn now(&self) -> Timestamp {
        self.clock.now()
    }

    fn store(&self) -> &SignedStore<DynamoStore> {
        &self.sweeper.store.inner
    }

    async fn pending(&self, who: &str, target: &str, duration: &str) -> Grant {
        self.pending_under(&self.sweeper.rules, who, target, duration)
            .await
    }

    /// A pending request made under `rules` (an edited targets file).
    async fn pending_under(&self, rules: &Rules, who: &str, target: &str, duration: &str) -> Grant {
        let mut new = jit_test_support::request(rules, who, &["engineers"], target, duration);
        // These tests time requests out after half an hour, whatever the target says.
        new.decision_window_secs = 1800;
        jit_test_support::create(self.store(), new, self.now()).await
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
        self.activated_with_session(&g, session_secs).await
    }

    /// `g` activated, with one session handed out that lasts `session_secs`.
    async fn activated_with_session(&self, g: &Grant, session_secs: i64) -> Grant {
        let g = self
            .apply(
                g,
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
        jit_test_support::actions(self.store(), id).await
    }

    /// Makes a `/jit/` role named `name` in the broker's own account.
    async fn jit_role_in_broker_account(&self, name: &str) {
        self.iam
            .create_role()
            .role_name(name)
            .path("/jit/")
            .assume_role_policy_document(r#"{"Version":"2012-10-17","Statement":[]}"#)
            .send()
            .await
            .unwrap();
    }

    /// IAM in the account of `role`.
    fn iam_of(&self, role: &RoleArn) -> &aws_sdk_iam::Client {
        &self.accounts[role.account().unwrap()]
    }

    /// The revocation policy on a target's role, if any.
    async fn policy(&self, target: &str) -> Option<Value> {
        let t = self
            .sweeper
            .rules
            .target(&TargetId::parse(target).unwrap())
            .unwrap();
        policy_in(self.iam_of(&t.role_arn), &t.role_arn).await
    }

    async fn revoke(&self, who: Option<(&str, &[&str])>, id: &GrantId, body: &str) -> (u16, Value) {
        revoke_with(&self.sweeper, who, id, body).await
    }

    /// The revocation policy on the role of a grant as recorded.
    async fn policy_of(&self, g: &Grant) -> Option<Value> {
        policy_in(self.iam_of(&g.role_arn), &g.role_arn).await
    }

    async fn sweep(&self) -> Value {
        self.try_sweep().await.unwrap()
    }

    /// The scheduled sweep, as Lambda invokes it: `Err` fails the invocation.
    async fn try_sweep(&self) -> Result<Value, String> {
        invoke(&self.sweeper, scheduled_event()).await
    }
}

/// The revocation policy on `role` as `iam` (that account's IAM) holds it, if any.
async fn policy_in(iam: &aws_sdk_iam::Client, role: &RoleArn) -> Option<Value> {
    let out = iam
        .get_role_policy()
        .role_name(jit_sweeper::role_name(role))
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

/// Invokes `sweeper` with `event` as the runtime would: deserialized into its event type, the
/// answer serialized back; `Err` is the failed invocation's message.
async fn invoke(sweeper: &Sweeper<GatedStore, Policies>, event: Value) -> Result<Value, String> {
    let event: jit_sweeper::SweeperEvent = serde_json::from_value(event).unwrap();
    sweeper
        .handle_event(event, Instant::now() + Duration::from_secs(60))
        .await
        .map(|out| serde_json::to_value(out).unwrap())
        .map_err(|e| e.to_string())
}

fn scheduled_event() -> Value {
    json!({"version": "0", "id": "53dc4d37", "detail-type": "Scheduled Event", "source": "aws.events",
        "account": "123456789012", "time": "2027-01-13T10:00:00Z", "region": "eu-west-1",
        "resources": ["arn:aws:events:eu-west-1:123456789012:rule/jit-sweep"], "detail": {}})
}

fn rules_from(targets: &str) -> Rules {
    let dir = jit_local::workspace_root().join("infra/policies");
    let read = |n: &str| std::fs::read_to_string(dir.join(n)).unwrap();
    Rules::from_sources(
        &read("schema.cedarschema"),
        vec![
            ("access.cedar".into(), read("access.cedar")),
            ("auto-approve.cedar".into(), read("auto-approve.cedar")),
        ],
        targets,
    )
    .unwrap()
}

fn sweeper_with(
    store: GatedStore,
    rules: Rules,
    clock: Arc<ManualClock>,
    config: &aws_config::SdkConfig,
    gates: &Arc<Gates>,
    budget: usize,
) -> Sweeper<GatedStore, Policies> {
    Sweeper {
        store,
        rules: Arc::new(rules),
        clock,
        policies: Policies {
            iam: IamPolicies::new(config),
            broken_role: Mutex::new(None),
            gates: gates.clone(),
        },
        config: SweeperConfig {
            policy_budget: budget,
            deadline_margin: Duration::ZERO,
            page_size: 3,
            ..SweeperConfig::default()
        },
    }
}

async fn revoke_with(
    sweeper: &Sweeper<GatedStore, Policies>,
    who: Option<(&str, &[&str])>,
    id: &GrantId,
    body: &str,
) -> (u16, Value) {
    let claims = who.map(|(sub, groups)| Claims { sub, groups });
    let path = format!("/grants/{id}/revoke");
    let event =
        jit_local::http_api_event(claims, "POST /grants/{id}/revoke", &path, Some(body), &[]);
    let out = invoke(sweeper, event).await.unwrap();
    let status = out["statusCode"].as_u64().unwrap() as u16;
    (
        status,
        serde_json::from_str(out["body"].as_str().unwrap()).unwrap_or(Value::Null),
    )
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
    // A role of the same name in the broker's own account, as one StackSet deploying the
    // target stack everywhere would make.
    let name = format!("prod-db-admin-{}", h.suffix);
    h.jit_role_in_broker_account(&name).await;
    let g = h.with_session("dan", "prod-db-admin", "1h", 1800).await;
    assert_eq!(h.revoke(Some(("sam", SRE)), &g.id, &reason()).await.0, 200);
    let policy = h.policy("prod-db-admin").await.unwrap();
    assert_eq!(denied_grants(&policy), [g.id.to_string()]);
    // Not in the broker's own account.
    let own = h
        .iam
        .get_role_policy()
        .role_name(&name)
        .policy_name("jit-revocations")
        .send()
        .await;
    assert!(own.is_err(), "{own:?}");
}

#[tokio::test]
async fn a_role_the_sweeper_cannot_reach_in_its_own_account_is_pending_never_cut() {
    let h = Harness::new("wrong-account", 10_240).await;
    // The target names a role in account 444444444444 with no revoker role, and a role of
    // that name exists in the broker's account. IAM addresses roles by name in the caller's
    // account, so changing it with the sweeper's own credentials would put the deny on the
    // broker account's role, read it back as done, and leave the real sessions live. (A
    // revoker role in yet another account is refused when the targets file loads, and again
    // by the sweeper before it assumes one.)
    let name = format!("prod-logs-ro-{}", h.suffix);
    h.jit_role_in_broker_account(&name).await;
    let edited = h.with_targets(|targets| {
        let mut file: Value = serde_json::from_str(targets).unwrap();
        for t in file["targets"].as_array_mut().unwrap() {
            if t["id"] == "prod-logs-ro" {
                t["role_arn"] = json!(format!("arn:aws:iam::444444444444:role/jit/{name}"));
                t["account"] = json!("444444444444");
                t.as_object_mut().unwrap().remove("revoker_role_arn");
            }
        }
        file.to_string()
    });
    let g = h
        .pending_under(&edited.rules, "alice", "prod-logs-ro", "1h")
        .await;
    let g = h.activated_with_session(&g, 1800).await;
    assert_eq!(g.role_arn.account(), Some("444444444444"));
    let (status, body) = revoke_with(&edited, Some(("sam", SRE)), &g.id, &reason()).await;
    assert_eq!(
        (status, body["live_sessions"].as_str()),
        (200, Some("pending")),
        "{body}"
    );
    assert_eq!(h.grant(&g.id).await.state, GrantState::Revoked);
    // Nothing landed on the broker account's role of the same name.
    let own = RoleArn::parse(format!("arn:aws:iam::111111111111:role/jit/{name}")).unwrap();
    assert!(policy_in(&h.iam, &own).await.is_none());
    // Every sweep fails its invocation (the alarm) and says why, until it can be reached.
    let err = invoke(&edited, scheduled_event()).await.unwrap_err();
    assert!(
        err.contains("444444444444") && err.contains("the grant recorded no revoker role there"),
        "{err}"
    );
    assert!(policy_in(&h.iam, &own).await.is_none());
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
    // The sweep that cannot reconcile a role fails its invocation, so Lambda's error metric
    // and the template's alarm fire.
    let err = h.try_sweep().await.unwrap_err();
    assert!(
        err.starts_with("sweep incomplete: 1 role(s) left unreconciled, 1 failure(s)")
            && err.contains("injected failure"),
        "{err}"
    );
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
    // Carol's active grant has a live session the cut-off will deny too; Dave has none yet,
    // and Erin's is on another role.
    let carol = h.with_session("carol", "prod-logs-ro", "1h", 1800).await;
    let dave = {
        let g = h.pending("dave", "prod-logs-ro", "1h").await;
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
    let erin = h.with_session("erin", "prod-deploy", "1h", 1800).await;
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
    for g in [&a, &b, &carol] {
        assert_eq!(
            h.actions(&g.id).await.last(),
            Some(&AuditAction::RevocationFallback),
            "{}",
            g.requester
        );
    }
    // Carol is told what it means for her: her older sessions are cut, new ones are not.
    let records = h
        .store()
        .audit_of_grant(&carol.id, &PageRequest::first(50))
        .await
        .unwrap()
        .items;
    let note = records.last().unwrap();
    assert_eq!(
        (
            note.to,
            note.detail
                .get("sessions_issued_before")
                .map(String::as_str),
            note.detail.get("effect").map(String::as_str)
        ),
        (
            GrantState::Active,
            Some(h.now().to_string().as_str()),
            Some("live sessions issued before the cut-off are denied; new credentials are not")
        )
    );
    for g in [&dave, &erin] {
        assert!(
            !h.actions(&g.id)
                .await
                .contains(&AuditAction::RevocationFallback),
            "{} has no session the cut-off denies",
            g.requester
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

#[test]
fn each_event_source_deserializes_to_its_variant_and_anything_else_is_refused() {
    use jit_sweeper::SweeperEvent;
    assert!(matches!(
        serde_json::from_value(scheduled_event()).unwrap(),
        SweeperEvent::Schedule(_)
    ));
    let http = jit_local::http_api_event(
        None,
        "POST /grants/{id}/revoke",
        "/grants/x/revoke",
        None,
        &[],
    );
    assert!(matches!(
        serde_json::from_value(http).unwrap(),
        SweeperEvent::Http(_)
    ));
    for other in [
        json!({"Records": []}),
        json!({}),
        json!({"detail-type": "Scheduled Event"}),
    ] {
        assert!(
            serde_json::from_value::<SweeperEvent>(other.clone()).is_err(),
            "{other}"
        );
    }
}

/// The grants a revocation policy denies.
fn denied(policy: Option<Value>) -> Vec<String> {
    policy.map(|p| denied_grants(&p)).unwrap_or_default()
}

fn sorted(ids: &[&GrantId]) -> Vec<String> {
    let mut ids: Vec<String> = ids.iter().map(|id| id.to_string()).collect();
    ids.sort();
    ids
}

#[tokio::test]
async fn two_revokes_racing_on_one_role_both_end_denied() {
    // Revoke A reads the ledger {A} and its PutRolePolicy is slow; revoke B reads {A, B},
    // puts its document, and its write of the applied marker is slow. A's stale document
    // then lands last in IAM. Without ordering, IAM kept {A} while the marker claimed {A, B},
    // and no sweep ever looked again.
    let h = Harness::new("race-revokes", 10_240).await;
    let a = h.with_session("alice", "prod-logs-ro", "1h", 1800).await;
    let b = h.with_session("bob", "prod-logs-ro", "1h", 1800).await;
    let why = reason();
    let (a_in_iam, release_a) = h.gates.arm("iam-write");
    let revoke_a = h.revoke(Some(("sam", SRE)), &a.id, &why);
    let choreography = async {
        a_in_iam.await.unwrap();
        let (b_recording, release_b) = h.gates.arm("record-applied");
        let revoke_b = h.revoke(Some(("sam", SRE)), &b.id, &why);
        let steer = async {
            b_recording.await.unwrap();
            assert_eq!(
                denied(h.policy("prod-logs-ro").await),
                sorted(&[&a.id, &b.id]),
                "B's document is in IAM"
            );
            // A's stale put lands now, then B's marker write.
            release_a.send(()).unwrap();
            tokio::time::sleep(Duration::from_millis(300)).await;
            release_b.send(()).unwrap();
        };
        tokio::join!(revoke_b, steer).0
    };
    let ((status_a, body_a), (status_b, body_b)) = tokio::join!(revoke_a, choreography);
    assert_eq!((status_a, status_b), (200, 200), "{body_a} {body_b}");
    assert_eq!(
        (
            body_a["live_sessions"].as_str(),
            body_b["live_sessions"].as_str()
        ),
        (Some("cut"), Some("cut"))
    );
    assert_eq!(
        denied(h.policy("prod-logs-ro").await),
        sorted(&[&a.id, &b.id]),
        "every revoked grant is denied once both answered"
    );
    let report = h.sweep().await;
    assert_eq!(report["policies_changed"], 0, "{report}");
    assert_eq!(
        denied(h.policy("prod-logs-ro").await),
        sorted(&[&a.id, &b.id])
    );
}

#[tokio::test]
async fn a_sweep_that_read_the_ledger_before_a_revoke_cannot_undo_it() {
    // An earlier revocation's session lapses, so the sweep derives "no policy" and deletes
    // it, slowly; meanwhile a new revoke puts its deny. The sweep's delete lands last.
    let h = Harness::new("race-sweep", 10_240).await;
    let old = h.with_session("olga", "prod-logs-ro", "1h", 900).await;
    assert_eq!(
        h.revoke(Some(("sam", SRE)), &old.id, &reason()).await.0,
        200
    );
    h.clock.advance(901);
    let fresh = h.with_session("alice", "prod-logs-ro", "1h", 1800).await;
    let (sweep_in_iam, release_sweep) = h.gates.arm("iam-write");
    let sweep = h.try_sweep();
    let choreography = async {
        sweep_in_iam.await.unwrap();
        let answer = h.revoke(Some(("sam", SRE)), &fresh.id, &reason()).await;
        assert_eq!(denied(h.policy("prod-logs-ro").await), sorted(&[&fresh.id]));
        release_sweep.send(()).unwrap();
        answer
    };
    let (report, (status, body)) = tokio::join!(sweep, choreography);
    let report = report.unwrap();
    assert_eq!(
        (status, body["live_sessions"].as_str()),
        (200, Some("cut")),
        "{body}"
    );
    assert_eq!(
        report["failures"].as_array().map(Vec::len),
        Some(0),
        "{report}"
    );
    assert_eq!(
        denied(h.policy("prod-logs-ro").await),
        sorted(&[&fresh.id]),
        "the sweep re-derived after losing and put the deny back"
    );
}

#[tokio::test]
async fn a_policy_removed_or_edited_out_of_band_is_restored_by_the_next_sweep() {
    let h = Harness::new("drift", 10_240).await;
    let g = h.with_session("alice", "prod-logs-ro", "1h", 1800).await;
    assert_eq!(h.revoke(Some(("sam", SRE)), &g.id, &reason()).await.0, 200);
    let wanted = h.policy("prod-logs-ro").await.unwrap();
    let role = jit_sweeper::role_name(&g.role_arn).to_owned();
    let iam = h.iam_of(&g.role_arn);
    let loosened = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Deny",
        "Action": "s3:DeleteBucket", "Resource": "*"}]});
    let recreate = || async {
        iam.delete_role_policy()
            .role_name(&role)
            .policy_name("jit-revocations")
            .send()
            .await
            .unwrap();
        iam.delete_role().role_name(&role).send().await.unwrap();
        iam.create_role()
            .role_name(&role)
            .path("/jit/")
            .assume_role_policy_document(r#"{"Version":"2012-10-17","Statement":[]}"#)
            .send()
            .await
            .unwrap();
    };
    for (how, found) in [
        ("deleted", "no revocation policy on the role"),
        ("edited", "a different revocation policy on the role"),
        ("role recreated", "no revocation policy on the role"),
    ] {
        match how {
            "deleted" => {
                iam.delete_role_policy()
                    .role_name(&role)
                    .policy_name("jit-revocations")
                    .send()
                    .await
                    .unwrap();
            }
            "edited" => {
                iam.put_role_policy()
                    .role_name(&role)
                    .policy_name("jit-revocations")
                    .policy_document(loosened.to_string())
                    .send()
                    .await
                    .unwrap();
            }
            _ => recreate().await,
        }
        let report = h.sweep().await;
        assert_eq!(
            (
                report["repaired"].as_u64(),
                report["policies_changed"].as_u64()
            ),
            (Some(1), Some(1)),
            "{how}: {report}"
        );
        assert_eq!(h.policy("prod-logs-ro").await.unwrap(), wanted, "{how}");
        let records = h
            .store()
            .audit_of_grant(&g.id, &PageRequest::first(50))
            .await
            .unwrap()
            .items;
        let note = records.last().unwrap();
        assert_eq!(
            (note.action, note.detail.get("found").map(String::as_str)),
            (AuditAction::RevocationRepaired, Some(found)),
            "{how}"
        );
        // Once in place again, a sweep finds nothing to repair.
        let again = h.sweep().await;
        assert_eq!(again["repaired"], 0, "{how}: {again}");
    }
}

#[tokio::test]
async fn revocation_follows_the_role_recorded_on_the_grant_not_the_targets_file() {
    let h = Harness::new("moved", 10_240).await;
    let moved = h.with_session("alice", "prod-logs-ro", "1h", 1800).await;
    let removed = h.with_session("dan", "prod-db-admin", "1h", 1800).await;
    // The targets file now points prod-logs-ro at another role, and no longer declares
    // prod-db-admin (whose role lives in another account, reached through its revoker role).
    let edited = h.with_targets(|targets| {
        let mut file: Value = serde_json::from_str(targets).unwrap();
        let list = file["targets"].as_array_mut().unwrap();
        list.retain(|t| t["id"] != "prod-db-admin");
        for t in list.iter_mut() {
            if t["id"] == "prod-logs-ro" {
                t["role_arn"] = json!("arn:aws:iam::333333333333:role/jit/some-other-role");
            }
        }
        file.to_string()
    });
    let (status, body) = revoke_with(&edited, Some(("sam", SRE)), &moved.id, &reason()).await;
    assert_eq!(
        (status, body["live_sessions"].as_str()),
        (200, Some("cut")),
        "{body}"
    );
    assert_eq!(denied(h.policy_of(&moved).await), sorted(&[&moved.id]));
    // The removed target's grant: revoked by its requester, cut through the recorded revoker.
    let (status, body) =
        revoke_with(&edited, Some(("dan", &["dba"])), &removed.id, &reason()).await;
    assert_eq!(
        (status, body["live_sessions"].as_str()),
        (200, Some("cut")),
        "{body}"
    );
    assert_eq!(denied(h.policy_of(&removed).await), sorted(&[&removed.id]));
    // The sweep walks every role with ledger entries, declared or not: it repairs the
    // removed target's role when its policy goes missing.
    h.iam_of(&removed.role_arn)
        .delete_role_policy()
        .role_name(jit_sweeper::role_name(&removed.role_arn))
        .policy_name("jit-revocations")
        .send()
        .await
        .unwrap();
    let report = invoke(&edited, scheduled_event()).await.unwrap();
    assert_eq!(report["repaired"], 1, "{report}");
    assert_eq!(denied(h.policy_of(&removed).await), sorted(&[&removed.id]));
}

#[test]
fn a_policy_budget_out_of_range_stops_the_function_naming_it() {
    for budget in ["50", "20000", "lots"] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_sweeper"))
            .env(
                "JIT_POLICY_DIR",
                jit_local::workspace_root().join("infra/policies"),
            )
            .env("TABLE_NAME", "unused")
            .env("JIT_REVOCATION_POLICY_BUDGET", budget)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{budget}");
        assert!(
            stderr.contains(&format!(
                "Error: JIT_REVOCATION_POLICY_BUDGET `{budget}` must be 200 to 10240"
            )),
            "{budget}: {stderr}"
        );
    }
}

/// The export an auditor would get for `[from, to)`, read from the table.
async fn export_of(h: &Harness, from: Timestamp, to: Timestamp) -> AuditExport {
    let store = h.store();
    let mut records = Vec::new();
    let mut cursor = None;
    loop {
        let page = store
            .audit_between(
                from,
                to,
                &PageRequest {
                    limit: 100,
                    cursor: cursor.take(),
                },
            )
            .await
            .unwrap();
        records.extend(page.items);
        match page.next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    let mut ids: Vec<GrantId> = records.iter().map(|r| r.grant_id.clone()).collect();
    ids.sort();
    ids.dedup();
    AuditExport {
        from: Some(from),
        to: Some(to),
        keys: h.sweeper.store.keys.ring().public_keys(),
        heads: store.heads(&ids).await.unwrap(),
        checkpoints: store.checkpoints_between(from, to).await.unwrap(),
        records,
        checkpoint_period: Some(SweeperConfig::default().checkpoint_period),
        exported_at: Some(h.now()),
    }
}

#[tokio::test]
async fn checkpoints_let_an_offline_check_catch_edits_drops_forgeries_and_deleted_grants() {
    let h = Harness::new("checkpoints", 10_240).await;
    let hour = 3600;
    let start = Timestamp::from_unix_seconds((h.now().unix_seconds() / hour + 1) * hour);
    let end = start.plus_secs(hour);
    h.clock.set(start.plus_secs(10));
    // The first sweep starts the chain with the latest closed period: the hour before last,
    // since the last one closes five minutes past `start`. Nothing of the current one yet.
    assert_eq!(h.sweep().await["checkpoints"], 1);
    let first = h.sweeper.store.latest_checkpoint().await.unwrap().unwrap();
    assert_eq!(
        (first.seq, first.period_start, first.period_end),
        (1, start.plus_secs(-2 * hour), start.plus_secs(-hour))
    );
    assert_eq!(h.sweep().await["checkpoints"], 0);

    h.pending("alice", "prod-logs-ro", "1h").await;
    let bob = h.with_session("bob", "prod-logs-ro", "1h", 900).await;
    h.clock.advance(60);
    let (status, body) = h
        .revoke(
            Some(("sam", SRE)),
            &bob.id,
            r#"{"reason":"done with it, thanks"}"#,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let carol = h.pending("carol", "prod-db-admin", "1h").await;

    // Past the end and the grace: the next sweep signs the hour before `start`, then the
    // period's own checkpoint.
    h.clock.set(end.plus_secs(301));
    assert_eq!(h.sweep().await["checkpoints"], 2);
    // One checkpoint per period: the next sweep has nothing new to sign.
    assert_eq!(h.sweep().await["checkpoints"], 0);

    let export = export_of(&h, start, end).await;
    assert_eq!(export.checkpoints.len(), 1);
    assert_eq!(export.checkpoints[0].count, 1 + 4 + 1);
    let summary = verify_export(&export, None, h.now()).unwrap();
    assert_eq!(
        (summary.grants, summary.records, summary.periods),
        (3, 6, 1)
    );
    // The keys an auditor pinned beforehand verify it just as well.
    verify_export(&export, Some(&h.sweeper.store.keys.ring()), h.now()).unwrap();

    // One byte edited in the exported text.
    let text = serde_json::to_string(&export).unwrap();
    let edited = text.replacen("done with it, thanks", "done with it, thankz", 1);
    assert_ne!(edited, text);
    let edited: AuditExport = serde_json::from_str(&edited).unwrap();
    let broken = verify_export(&edited, None, h.now()).unwrap_err();
    assert!(
        matches!(&broken, ExportBreak::Record { grant_id, seq: 4, problem } if grant_id == &bob.id && problem.contains("altered")),
        "{broken}"
    );

    // One record dropped from the middle of a chain.
    let mut dropped = export.clone();
    dropped
        .records
        .retain(|r| !(r.grant_id == bob.id && r.seq == 2));
    let broken = verify_export(&dropped, None, h.now()).unwrap_err();
    assert!(
        matches!(&broken, ExportBreak::Record { seq: 3, problem, .. } if problem.contains("record 2 is missing")),
        "{broken}"
    );

    // A record rewritten and signed with a key that is not one of the functions'.
    let mut forged = export.clone();
    let stranger = LocalKey::generate(Service::Sweeper);
    let record = forged
        .records
        .iter_mut()
        .find(|r| r.grant_id == bob.id && r.seq == 4)
        .unwrap();
    record
        .detail
        .insert("reason".to_owned(), "routine".to_owned());
    record.hash = record.compute_hash();
    record.signature = Some(stranger.sign_as(&record_message(&record.hash)));
    let broken = verify_export(&forged, None, h.now()).unwrap_err();
    assert!(
        matches!(&broken, ExportBreak::Record { seq: 4, problem, .. } if problem.contains("not one of the functions' keys")),
        "{broken}"
    );

    // A whole grant deleted from the table with its chain, as an insider could: the export
    // of the closed period no longer matches what the sweeper signed.
    let table = &h.sweeper.store.table;
    let delete = |pk: String, sk: String| {
        table
            .client
            .delete_item()
            .table_name(&table.name)
            .key("pk", aws_sdk_dynamodb::types::AttributeValue::S(pk))
            .key("sk", aws_sdk_dynamodb::types::AttributeValue::S(sk))
            .send()
    };
    for sk in ["GRANT", "AUDIT#0000000001"] {
        delete(format!("GRANT#{}", carol.id), sk.to_owned())
            .await
            .unwrap();
    }
    let export = export_of(&h, start, end).await;
    assert!(export.records.iter().all(|r| r.grant_id != carol.id));
    let broken = verify_export(&export, None, h.now()).unwrap_err();
    assert_eq!(
        broken,
        ExportBreak::Period {
            seq: 3,
            start,
            end,
            signed: 6,
            found: 5,
            digest: String::new(),
        }
    );
    assert!(
        broken.to_string().contains("held 6 audit records"),
        "{broken}"
    );

    // The period's checkpoint deleted too: once it was due to be signed, the export says
    // it is missing rather than checking nothing.
    delete(
        "CHECKPOINTS".to_owned(),
        format!("PERIOD#{:012}", start.unix_seconds()),
    )
    .await
    .unwrap();
    h.clock.set(end.plus_secs(300 + 120));
    let export = export_of(&h, start, end).await;
    assert!(export.checkpoints.is_empty());
    let broken = verify_export(&export, None, h.now()).unwrap_err();
    assert_eq!(broken, ExportBreak::NoCheckpoints { start, end });
    assert!(broken.to_string().contains("has no checkpoint"), "{broken}");
}

#[tokio::test]
async fn a_revoke_cuts_sessions_until_the_signed_expiry_whatever_the_item_claims() {
    let h = Harness::new("revoke-lowered", 10_240).await;
    let g = h.with_session("alice", "prod-logs-ro", "1h", 3600).await;
    let signed_expiry = h.grant(&g.id).await.sessions_valid_until.unwrap();
    // Someone with table access claims the session ends in a minute, hoping the revocation
    // lapses (and its deny is pruned) while the session still works.
    let mut lowered = h.grant(&g.id).await;
    lowered.sessions_valid_until = Some(h.now().plus_secs(60));
    h.sweeper
        .store
        .table
        .put_raw(&format!("GRANT#{}", g.id), "GRANT", &lowered)
        .await
        .unwrap();

    let (status, body) = h.revoke(Some(("sam", SRE)), &g.id, &reason()).await;
    assert_eq!(status, 200, "{body}");
    let ledger = h.store().role_ledger(&g.role_arn).await.unwrap();
    let entry = ledger.entries.iter().find(|e| e.grant_id == g.id).unwrap();
    assert_eq!(entry.until, signed_expiry);
    // Past the claimed minute the grant is still denied, and stays so until the real expiry.
    h.clock.advance(600);
    h.sweep().await;
    assert_eq!(
        denied_grants(&h.policy("prod-logs-ro").await.unwrap()),
        [g.id.to_string()]
    );
}
