//! One fault at every AWS call of every handler, on the real binaries: a pass-through between
//! each function and the emulator makes the N-th call fail (500), throttle, hang past the
//! SDK's timeout, be carried out and lose its answer, or fail with the SDK's two retries of it
//! (an outage the function itself sees). For every (handler, position, fault):
//! the caller gets what it asked for or a retryable 503 (never a 500, never a wrong refusal);
//! every grant's stored state is what its signed chain says (no change without its record);
//! no credentials leave without a SESSION_ISSUED record; and a revocation is never forgotten:
//! once the next sweep has run, the role denies every revoked grant's sessions.

use std::collections::BTreeMap;
use std::time::Duration;

use jit_api::GrantView;
use jit_core::domain::{GrantId, GrantState};
use jit_core::store::{DynamoStore, GrantStore};
use jit_core::trust::{KeyRing, check_grant};
use jit_e2e::{Api, options, start};
use jit_stack::Stack;
use jit_stack::recorder::Fault;
use serde_json::{Value, json};

/// The handlers, each as the operation a caller performs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    /// `POST /requests` (intake).
    Create,
    /// `POST /bundles`: two targets in one write (intake).
    CreateBundle,
    /// Auto-approval from the table stream (approver).
    AutoApprove,
    /// `POST /requests/{id}/cancel` (intake).
    Cancel,
    /// `POST /requests/{id}/reviews` (approver).
    Review,
    /// `POST /grants/{id}/credentials` (issuer).
    Credentials,
    /// `POST /grants/{id}/revoke` (sweeper).
    Revoke,
    /// A scheduled sweep after a revocation (sweeper).
    Sweep,
}

impl Op {
    const ALL: [Self; 8] = [
        Self::Create,
        Self::CreateBundle,
        Self::AutoApprove,
        Self::Cancel,
        Self::Review,
        Self::Credentials,
        Self::Revoke,
        Self::Sweep,
    ];

    fn binary(self) -> &'static str {
        match self {
            Self::Create | Self::CreateBundle | Self::Cancel => "intake",
            Self::AutoApprove | Self::Review => "approver",
            Self::Credentials => "issuer",
            Self::Revoke | Self::Sweep => "sweeper",
        }
    }
}

/// A stack of its own with a recording (and fault-injecting) pass-through per function, the
/// table and the functions' keys to check grants against, and the calls tests make.
pub(super) struct Harness {
    stack: jit_e2e::Running,
    pub(super) api: Api,
    pub(super) store: DynamoStore,
    pub(super) ring: KeyRing,
    people: std::sync::atomic::AtomicUsize,
    /// Grants that were revoked and must be denied on their role.
    revoked: std::sync::Mutex<Vec<String>>,
}

/// What a case did: the HTTP status the caller saw (none for the stream and the schedule) and
/// the grant it worked on.
struct Outcome {
    status: Option<u16>,
    body: Value,
    grant: String,
}

impl Outcome {
    fn http(status: u16, body: Value, grant: String) -> Self {
        Self {
            status: Some(status),
            body,
            grant,
        }
    }
}

impl Harness {
    pub(super) async fn new(name: &str) -> Self {
        let mut o = options(name);
        o.record_aws_calls = true;
        // Sweeps only when a case asks for one.
        o.sweep_every = Some(Duration::from_secs(24 * 3600));
        // Coverage of ended grants' activity waits a day here: a sweep makes the same calls
        // each time, whatever the cases before it revoked (the activity suite covers it).
        // Checkpoints of active grants' activity likewise: past the longest grant, none.
        for (name, secs) in [
            ("JIT_ACTIVITY_SETTLE_SECS", "86000"),
            ("JIT_ACTIVITY_RECHECK_SECS", "86400"),
            ("JIT_ACTIVITY_CHECKPOINT_SECS", "86400"),
        ] {
            o.function_env
                .push(("sweeper".into(), name.into(), secs.into()));
        }
        let stack = start(o).unwrap();
        let api = Api::new(&stack.api_url);
        let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(&stack.aws), &stack.table);
        let ring = stack.key_ring().await.unwrap();
        Self {
            stack,
            api,
            store,
            ring,
            people: 0.into(),
            revoked: std::sync::Mutex::new(Vec::new()),
        }
    }

    pub(super) fn stack(&self) -> &Stack {
        &self.stack
    }

    /// A new requester (each has one open request per target at most) in `group`.
    pub(super) fn person(&self, group: &str) -> String {
        let n = self
            .people
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.stack().token(&format!("fault-{n}"), &[group])
    }

    pub(super) async fn call(
        &self,
        method: &str,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let a = self
            .api
            .call(method, path, Some(token), body)
            .await
            .unwrap();
        (a.status, a.body)
    }

    /// Asks for prod-logs-ro; with a ticket the rules approve it at once, without one it
    /// needs a reviewer.
    pub(super) async fn ask(&self, token: &str, ticket: bool) -> (u16, Value) {
        let mut body = json!({"target": "prod-logs-ro", "duration": "1h",
            "reason": "fault injection at every AWS call"});
        if ticket {
            body["ticket"] = json!("INC-9");
        }
        self.call("POST", "/requests", token, Some(body)).await
    }

    /// Waits until the grant is decided (the stream has run): its state.
    pub(super) async fn decided(&self, id: &str, token: &str) -> GrantView {
        self.api
            .wait_for(id, token, Duration::from_secs(60), |g| {
                g.state != GrantState::Pending || g.approvals_required.is_some()
            })
            .await
            .unwrap()
    }

    pub(super) async fn active(&self, token: &str) -> String {
        let (status, body) = self.ask(token, true).await;
        assert_eq!(status, 201, "{body}");
        let id = body["id"].as_str().unwrap().to_owned();
        let g = self.decided(&id, token).await;
        assert_eq!(g.state, GrantState::Active, "{g:?}");
        id
    }

    pub(super) async fn awaiting_review(&self, token: &str) -> String {
        let (status, body) = self.ask(token, false).await;
        assert_eq!(status, 201, "{body}");
        let id = body["id"].as_str().unwrap().to_owned();
        let g = self.decided(&id, token).await;
        assert_eq!(g.approvals_required, Some(1), "{g:?}");
        id
    }

    pub(super) async fn pull(&self, grant: &str, token: &str) -> (u16, Value) {
        let path = format!("/grants/{grant}/credentials");
        self.call("POST", &path, token, None).await
    }

    pub(super) async fn revoke(&self, grant: &str, token: &str) -> (u16, Value) {
        self.revoke_because(grant, token, "fault injection").await
    }

    pub(super) async fn revoke_because(
        &self,
        grant: &str,
        token: &str,
        reason: &str,
    ) -> (u16, Value) {
        let path = format!("/grants/{grant}/revoke");
        let reason = json!({ "reason": reason });
        self.call("POST", &path, token, Some(reason)).await
    }

    /// A new requester's active grant with a live session: (their token, the grant).
    pub(super) async fn in_use(&self) -> (String, String) {
        let me = self.person("sre");
        let grant = self.active(&me).await;
        let (status, body) = self.pull(&grant, &me).await;
        assert_eq!(status, 200, "{body}");
        (me, grant)
    }

    /// Grant `id` and its chain, after checking that the stored grant is what its signed
    /// chain says.
    pub(super) async fn verified(
        &self,
        id: &str,
    ) -> (
        jit_core::domain::Grant,
        Vec<jit_core::domain::audit::AuditRecord>,
    ) {
        let id = GrantId::parse(id).unwrap();
        let (grant, records) = self.store.evidence(&id).await.unwrap().unwrap();
        check_grant(&grant, &records, &self.ring).unwrap();
        (grant, records)
    }

    /// Sets up what `op` needs, arms `fault` (if any) at call `nth` of its function, runs it,
    /// and disarms; whether the fault was used, what came of it, and how many calls the
    /// function made from the arming on.
    async fn run(&self, op: Op, fault: Option<(usize, Fault)>) -> (bool, Outcome, usize) {
        let armed_at = std::cell::Cell::new(0);
        let arm = || {
            armed_at.set(self.stack().aws_calls.of(op.binary()).len());
            if let Some((nth, f)) = fault {
                self.stack().aws_calls.arm(op.binary(), nth, f);
            }
        };
        let outcome = match op {
            Op::Create => {
                let me = self.person("sre");
                arm();
                let (status, body) = self.ask(&me, true).await;
                let grant = body["id"].as_str().unwrap_or_default().to_owned();
                Outcome::http(status, body, grant)
            }
            Op::CreateBundle => {
                let me = self.person("sre");
                arm();
                let body = json!({"targets": ["prod-logs-ro", "prod-db-admin"], "duration": "1h",
                    "reason": "fault injection at every AWS call", "ticket": "INC-9"});
                let (status, body) = self.call("POST", "/bundles", &me, Some(body)).await;
                let grant = body["bundle"].as_str().unwrap_or_default().to_owned();
                Outcome::http(status, body, grant)
            }
            Op::AutoApprove => {
                let me = self.person("sre");
                arm();
                let (status, body) = self.ask(&me, true).await;
                assert_eq!(status, 201, "{body}");
                let grant = body["id"].as_str().unwrap().to_owned();
                // The stream retries a failed batch: the decision must still come.
                let g = self.decided(&grant, &me).await;
                Outcome {
                    status: None,
                    body: serde_json::to_value(&g).unwrap(),
                    grant,
                }
            }
            Op::Cancel => {
                let me = self.person("engineers");
                let grant = self.awaiting_review(&me).await;
                arm();
                let path = format!("/requests/{grant}/cancel");
                let (status, body) = self.call("POST", &path, &me, None).await;
                Outcome::http(status, body, grant)
            }
            Op::Review => {
                let me = self.person("engineers");
                let reviewer = self.person("sre");
                let grant = self.awaiting_review(&me).await;
                arm();
                let approve = json!({"decision": "approve"});
                let path = format!("/requests/{grant}/reviews");
                let (status, body) = self.call("POST", &path, &reviewer, Some(approve)).await;
                Outcome::http(status, body, grant)
            }
            Op::Credentials => {
                let me = self.person("sre");
                let grant = self.active(&me).await;
                arm();
                let (status, body) = self.pull(&grant, &me).await;
                Outcome::http(status, body, grant)
            }
            Op::Revoke => {
                let (me, grant) = self.in_use().await;
                arm();
                let (status, body) = self.revoke(&grant, &me).await;
                Outcome::http(status, body, grant)
            }
            Op::Sweep => {
                let (me, grant) = self.in_use().await;
                let (status, body) = self.revoke(&grant, &me).await;
                assert_eq!(status, 200, "{body}");
                // The sweep after it (drift checks, expiries, checkpoints) meets the fault.
                arm();
                let report = self.stack().sweep().await;
                Outcome {
                    status: None,
                    body: report.unwrap_or_else(|e| json!({"error": e.to_string()})),
                    grant,
                }
            }
        };
        let fired = self.stack().aws_calls.disarm();
        let calls = self.stack().aws_calls.of(op.binary()).len() - armed_at.get();
        (fired, outcome, calls)
    }

    /// The invariants every case must keep; a description of the first broken one.
    async fn check(&self, op: Op, outcome: &Outcome) -> Result<(), String> {
        if let Some(status) = outcome.status {
            let expected = match op {
                Op::Create | Op::CreateBundle => 201,
                _ => 200,
            };
            if status != expected && status != 503 {
                return Err(format!(
                    "answered {status} (neither {expected} nor a retryable 503): {}",
                    outcome.body
                ));
            }
        }
        // Every item of a bundle that was made holds to its own signed chain.
        if op == Op::CreateBundle {
            for item in outcome.body["items"].as_array().into_iter().flatten() {
                let id = GrantId::parse(item["id"].as_str().unwrap_or_default())
                    .map_err(|e| e.to_string())?;
                let (grant, records) = self
                    .store
                    .evidence(&id)
                    .await
                    .map_err(|e| e.to_string())?
                    .ok_or("an item answered is not stored")?;
                check_grant(&grant, &records, &self.ring)
                    .map_err(|e| format!("an item disagrees with its signed chain: {e}"))?;
            }
        }
        let Ok(id) = GrantId::parse(&outcome.grant) else {
            // A create answered 503 before any id was given: nothing may have been stored
            // for that caller but a complete request (checked by the export below).
            return Ok(());
        };
        let (grant, records) = self
            .store
            .evidence(&id)
            .await
            .map_err(|e| e.to_string())?
            .ok_or("the grant is gone")?;
        check_grant(&grant, &records, &self.ring)
            .map_err(|e| format!("the stored grant disagrees with its signed chain: {e}"))?;
        let issued = records
            .iter()
            .filter(|r| r.action.as_str() == "SESSION_ISSUED")
            .count();
        if issued < usize::try_from(grant.sessions_issued).unwrap_or(usize::MAX) {
            return Err(format!(
                "{} sessions counted, {issued} recorded",
                grant.sessions_issued
            ));
        }
        let state = grant.state.as_str();
        match (op, outcome.status) {
            (Op::Credentials, Some(200)) if issued == 0 => {
                return Err("credentials left without a SESSION_ISSUED record".into());
            }
            (Op::Credentials, Some(200)) => {
                let key = outcome.body["AccessKeyId"].as_str().unwrap_or_default();
                if key.is_empty() {
                    return Err(format!("200 without credentials: {}", outcome.body));
                }
            }
            (Op::AutoApprove, None) if state != "ACTIVE" => {
                return Err(format!("the stream never decided it: {state}"));
            }
            // (A new request's state moves on as soon as the stream decides it.)
            (Op::Cancel | Op::Review, Some(200))
                if outcome.body["state"].as_str() != Some(state) =>
            {
                return Err(format!(
                    "answered {} but the grant is {state}",
                    outcome.body["state"]
                ));
            }
            _ => {}
        }
        if state == "REVOKED" {
            self.revoked.lock().unwrap().push(outcome.grant.clone());
        }
        Ok(())
    }
}

/// How many calls `op` makes when nothing fails, once its function is warm: the fewest of
/// three runs, since a run the stack hands to a new instance (the approver's stream poll
/// holding the warm one) also counts that instance's background read of the four public keys.
async fn calls_of(h: &Harness, op: Op) -> usize {
    let (_, warm, _) = h.run(op, None).await;
    h.check(op, &warm).await.unwrap();
    let mut fewest = usize::MAX;
    for _ in 0..3 {
        let (_, outcome, calls) = h.run(op, None).await;
        h.check(op, &outcome).await.unwrap();
        fewest = fewest.min(calls);
    }
    fewest
}

#[tokio::test]
async fn one_fault_at_every_aws_call_of_every_handler_loses_nothing() {
    let h = Harness::new("faults").await;
    let mut ran = BTreeMap::new();
    let mut retryable = 0;
    let mut broken = Vec::new();
    let mut never_fired = Vec::new();
    for op in Op::ALL {
        let positions = calls_of(&h, op).await;
        assert!(positions > 0, "{op:?} made no AWS call");
        for nth in 1..=positions {
            for fault in Fault::ALL {
                let (mut fired, mut outcome, _) = h.run(op, Some((nth, fault))).await;
                // A sweep's work depends on what is due (a checkpoint, another case's expiry):
                // set it up once more. Every other handler makes the same calls each time.
                if !fired && op == Op::Sweep {
                    if let Err(e) = h.check(op, &outcome).await {
                        broken.push(format!("{op:?}, call {nth}, {fault:?} (unfired): {e}"));
                    }
                    (fired, outcome, _) = h.run(op, Some((nth, fault))).await;
                }
                assert!(
                    fired || op == Op::Sweep,
                    "{op:?}: call {nth} of {positions} never came"
                );
                if let Err(e) = h.check(op, &outcome).await {
                    broken.push(format!("{op:?}, call {nth}, {fault:?}: {e}"));
                }
                // A case whose fault never fired tested nothing: it is not counted as run.
                if !fired {
                    never_fired.push(format!("{op:?} call {nth} {fault:?}"));
                    continue;
                }
                *ran.entry(format!("{op:?}")).or_insert(0) += 1;
                if outcome.status == Some(503) {
                    retryable += 1;
                }
            }
        }
    }
    // Whatever a fault left for later, the next sweep finishes: every revoked grant is denied
    // on its role.
    let report = h.stack().sweep().await.unwrap();
    let doc = jit_stack::demo::revocation_policy(h.stack(), "prod-logs-ro")
        .await
        .unwrap()
        .to_string();
    for id in h.revoked.lock().unwrap().iter() {
        if !doc.contains(id.as_str()) && !doc.contains("aws:TokenIssueTime") {
            broken.push(format!(
                "revoked grant {id} is not denied after a sweep: {report}"
            ));
        }
    }
    let total: usize = ran.values().sum();
    eprintln!(
        "fault injection: {total} cases whose fault fired (handler × position × fault) {ran:?}; \
         {retryable} answered 503; {} never fired and are not counted: {never_fired:?}",
        never_fired.len()
    );
    assert!(
        ran.get("Sweep").is_some_and(|n| *n > 0),
        "no sweep case fired: {never_fired:?}"
    );
    assert!(broken.is_empty(), "{}", broken.join("\n"));
    // And the whole trail still verifies offline, as an auditor checks it.
    let sue = h.stack().token("sue-faults", &["security"]);
    super::verified_export(h.stack(), &h.api, &sue).await;
}

/// The functions read the public keys when first needed, not at init: an instance that starts
/// while KMS cannot give them still starts, and what needs them answers a retryable 503 with
/// nothing done (no review, no STS call, no session) until KMS answers again; then the same
/// instance goes on, without a restart.
#[tokio::test]
async fn public_keys_kms_cannot_give_are_a_503_with_nothing_done_until_it_can() {
    let h = Harness::new("keys-down").await;
    let asker = h.person("engineers");
    let pending = h.awaiting_review(&asker).await;
    let me = h.person("sre");
    let active = h.active(&me).await;
    let reviewer = h.person("sre");
    let review_path = format!("/requests/{pending}/reviews");
    let review = || {
        h.call(
            "POST",
            &review_path,
            &reviewer,
            Some(json!({"decision": "approve"})),
        )
    };
    let aws = &h.stack().aws_calls;
    let sts_calls = || {
        aws.of("issuer")
            .iter()
            .filter(|c| c.operation == "AssumeRole")
            .count()
    };

    for (binary, nothing_done) in [
        ("approver", "no review was recorded"),
        ("issuer", "no credentials were issued"),
    ] {
        // A new instance (the issuer never ran; the approver's is stopped) meets KMS down.
        let function = h.stack().function(binary).unwrap();
        function.stop();
        // Gone before the next call, so it starts a new one rather than meet a dying one.
        let until = std::time::Instant::now() + Duration::from_secs(10);
        while function.instances_running() > 0 {
            assert!(std::time::Instant::now() < until, "{binary} did not stop");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let started = function.instances_started();
        aws.arm_on(binary, "GetPublicKey", Fault::Down);
        let before = sts_calls();
        let (status, body) = match binary {
            "approver" => review().await,
            _ => h.pull(&active, &me).await,
        };
        assert_eq!(status, 503, "{binary}: {body}");
        let detail = body["detail"].as_str().unwrap_or_default();
        assert!(
            detail.contains("public keys could not be read")
                && detail.contains(nothing_done)
                && detail.ends_with("try again"),
            "{binary}: {detail}"
        );
        assert!(aws.disarm(), "{binary} never asked KMS for the keys");
        assert_eq!(
            sts_calls(),
            before,
            "{binary}: STS was called without evidence checked"
        );
        if binary == "approver" {
            let (grant, records) = h.verified(&pending).await;
            assert_eq!(grant.state, GrantState::Pending, "{records:?}");
        }
        let (grant, _) = h.verified(&active).await;
        assert_eq!(grant.sessions_issued, 0, "{binary}");

        // KMS is back: the same instance reads the keys and does the work.
        let (status, body) = match binary {
            "approver" => review().await,
            _ => h.pull(&active, &me).await,
        };
        assert_eq!(status, 200, "{binary}: {body}");
        assert_eq!(function.instances_started(), started + 1, "{binary}");
    }
    let (grant, _) = h.verified(&pending).await;
    assert_eq!(grant.state, GrantState::Active);
    let (grant, _) = h.verified(&active).await;
    assert_eq!(grant.sessions_issued, 1);
}
