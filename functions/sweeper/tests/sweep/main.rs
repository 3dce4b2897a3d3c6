//! Revocation and sweeps against IAM, STS and DynamoDB on the emulator.
// Tests may unwrap and index: a panic is how a test fails.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod activity;
mod archive;
mod checkpoints;
mod races;
mod revoke;
mod startup;
mod sweeps;

use jit_test_support::Who;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use jit_core::clock::{Clock, ManualClock, SystemClock, Timestamp};
use jit_core::domain::audit::AuditAction;
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
    jit_core::delegate_grant_store_calls! { inner, jit_core::store::proceed;
        true create(creation: &Creation, idempotency: Option<&Idempotency>) -> Created;
        true create_bundle(creations: &[Creation]) -> Vec<jit_core::domain::Grant>;
        true commit(change: &Change) -> ();
        true put_checkpoint(checkpoint: &Checkpoint) -> ();
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

impl jit_core::store::ActivityStore for GatedStore {
    jit_core::delegate_activity_store!(inner);
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
        let jit_test_support::SignedTable {
            table, store, keys, ..
        } = jit_test_support::signed_table(label).await;
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
            let Some(revoker) = &target.binding.revoker_role_arn else {
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
                .role_name(jit_sweeper::role_name(&target.binding.role_arn))
                .path("/jit/")
                .assume_role_policy_document(r#"{"Version":"2012-10-17","Statement":[]}"#)
                .send()
                .await
                .unwrap();
        }
        let clock = Arc::new(ManualClock::at(SystemClock.now()));
        let gates = Arc::new(Gates::default());
        let store = GatedStore {
            inner: store,
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
                jit_test_support::auto_approve(),
                jit_test_support::by_approver(),
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
        policy_in(self.iam_of(&t.binding.role_arn), &t.binding.role_arn).await
    }

    async fn revoke(&self, who: Who<'_>, id: &GrantId, body: &str) -> (u16, Value) {
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
        archive: None,
    }
}

async fn revoke_with(
    sweeper: &Sweeper<GatedStore, Policies>,
    who: Who<'_>,
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

/// The grants a revocation policy denies.
fn denied(policy: Option<Value>) -> Vec<String> {
    policy.map(|p| denied_grants(&p)).unwrap_or_default()
}

fn sorted(ids: &[&GrantId]) -> Vec<String> {
    let mut ids: Vec<String> = ids.iter().map(|id| id.to_string()).collect();
    ids.sort();
    ids
}
