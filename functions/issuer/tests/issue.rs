//! Issuance against STS and DynamoDB on the emulator, and a local federation stand-in.
// Tests may unwrap and index: a panic is how a test fails.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::BTreeMap;
use std::sync::Arc;

use jit_core::audit::AuditAction;
use jit_core::clock::{Clock, ManualClock, SystemClock, Timestamp};
use jit_core::domain::{Actor, Command, Grant, GrantId, GrantState, Reason, Service, UserId};
use jit_core::policy::{Isolation, Rules};
use jit_core::store::{DynamoStore, GrantStore, SignedStore};
use jit_core::trust::LocalKeys;
use jit_issuer::{
    BrokerError, HttpFederation, Issuer, IssuerConfig, SessionBroker, SessionCredentials,
    SessionRequest, StsBroker,
};
use jit_local::{CallCounter, Claims, FederationStandIn, TestTable};
use serde_json::{Value, json};

/// STS on the emulator, with a hook that runs just before the call (to race it).
struct Broker {
    sts: StsBroker,
    before: std::sync::Mutex<Option<Box<dyn FnOnce() + Send>>>,
    fail: std::sync::Mutex<Option<BrokerError>>,
}

impl SessionBroker for Broker {
    async fn assume(&self, request: &SessionRequest) -> Result<SessionCredentials, BrokerError> {
        let hook = self.before.lock().unwrap().take();
        if let Some(hook) = hook {
            hook();
        }
        if let Some(e) = self.fail.lock().unwrap().take() {
            return Err(e);
        }
        self.sts.assume(request).await
    }
}

/// The store the tests write through: each record signed by its author's key, as the four
/// functions would.
type Store = SignedStore<DynamoStore>;

struct Harness {
    issuer: Arc<Issuer<Store, Broker, HttpFederation>>,
    keys: LocalKeys,
    clock: Arc<ManualClock>,
    table: TestTable,
    sts_calls: CallCounter,
    federation: FederationStandIn,
}

use jit_test_support::Reply;

impl Harness {
    async fn new(label: &str) -> Self {
        let table = TestTable::create(label).await.unwrap();
        let emulator = jit_local::Emulator::shared().unwrap();
        let config = emulator.sdk_config().await;
        let sts_calls = CallCounter::new();
        let sts = aws_sdk_sts::Client::from_conf(
            aws_sdk_sts::config::Builder::from(&config)
                .interceptor(sts_calls.clone())
                .build(),
        );
        let federation = FederationStandIn::start().await.unwrap();
        // STS stamps expirations from the real clock, so the test clock starts there too.
        let clock = Arc::new(ManualClock::at(SystemClock.now()));
        let rules = Rules::load_dir(&jit_local::workspace_root().join("infra/policies")).unwrap();
        let keys = LocalKeys::generate();
        let issuer = Issuer {
            store: SignedStore::new(
                DynamoStore::new(table.client.clone(), &table.name),
                Arc::new(keys.clone()),
            ),
            rules: Arc::new(rules),
            clock: clock.clone(),
            broker: Broker {
                sts: StsBroker::new(sts),
                before: std::sync::Mutex::new(None),
                fail: std::sync::Mutex::new(None),
            },
            federation: HttpFederation::new(url::Url::parse(&federation.endpoint).unwrap())
                .unwrap(),
            config: IssuerConfig::default(),
            keys: Arc::new(keys.ring()),
        };
        Self {
            issuer: Arc::new(issuer),
            keys,
            clock,
            table,
            sts_calls,
            federation,
        }
    }

    fn now(&self) -> Timestamp {
        self.clock.now()
    }

    /// A request by `who`, decided by the rules to need review (pending).
    async fn pending(&self, who: &str, target: &str, duration: &str) -> Grant {
        let new =
            jit_test_support::request(&self.issuer.rules, who, &["engineers"], target, duration);
        jit_test_support::create(self.store(), new, self.now()).await
    }

    /// An active grant, as the approver would leave it.
    async fn active(&self, who: &str, target: &str, duration: &str) -> Grant {
        let g = self.pending(who, target, duration).await;
        self.apply(
            &g,
            Command::AutoApprove {
                policies: vec!["test".into()],
                policy_hash: "h".into(),
            },
            Actor::Service(Service::Approver),
        )
        .await
    }

    async fn apply(&self, g: &Grant, command: Command, actor: Actor) -> Grant {
        let change = g.apply(command, &actor, self.now()).unwrap();
        self.store().commit(&change).await.unwrap();
        change.grant().clone()
    }

    fn store(&self) -> &Store {
        &self.issuer.store
    }

    async fn grant(&self, id: &GrantId) -> Grant {
        self.store().get(id).await.unwrap().unwrap()
    }

    async fn audit_actions(&self, id: &GrantId) -> Vec<AuditAction> {
        jit_test_support::actions(self.store(), id).await
    }

    async fn call(
        &self,
        who: Option<(&str, &[&str])>,
        route: &str,
        id: &GrantId,
        body: Option<&str>,
    ) -> Reply {
        call_on(&self.issuer, who, route, id, body).await
    }

    /// Another issuer on the same table and clock, with `rules` and STS at `sts`.
    fn issuer_with(
        &self,
        rules: Rules,
        sts: aws_sdk_sts::Client,
    ) -> Issuer<Store, Broker, HttpFederation> {
        Issuer {
            store: self.issuer.store.clone(),
            rules: Arc::new(rules),
            clock: self.clock.clone(),
            broker: Broker {
                sts: StsBroker::new(sts),
                before: std::sync::Mutex::new(None),
                fail: std::sync::Mutex::new(None),
            },
            federation: HttpFederation::new(url::Url::parse(&self.federation.endpoint).unwrap())
                .unwrap(),
            config: IssuerConfig::default(),
            keys: Arc::clone(&self.issuer.keys),
        }
    }
}

async fn call_on(
    issuer: &Issuer<Store, Broker, HttpFederation>,
    who: Option<(&str, &[&str])>,
    route: &str,
    id: &GrantId,
    body: Option<&str>,
) -> Reply {
    {
        let claims = who.map(|(sub, groups)| Claims { sub, groups });
        let path = route
            .split_once(' ')
            .unwrap()
            .1
            .replace("{id}", id.as_str());
        let event = jit_local::http_api_event(claims, route, &path, body, &[]);
        let request = jit_http::into_request(serde_json::from_value(event).unwrap());
        let response = issuer.handle(request).await;
        let status = response.status().as_u16();
        let bytes: &[u8] = response.body().as_ref();
        Reply {
            status,
            body: serde_json::from_slice(bytes).unwrap_or(Value::Null),
        }
    }
}

impl Harness {
    /// DynamoDB and STS calls since the last check.
    fn calls(&self) -> BTreeMap<String, u64> {
        let mut all = self.table.calls.take();
        all.extend(self.sts_calls.take());
        all
    }

    /// The form fields of the last AssumeRole request STS received.
    fn last_assume_role(&self) -> BTreeMap<String, String> {
        let (_, body) = self
            .sts_calls
            .bodies()
            .into_iter()
            .rev()
            .find(|(op, _)| op == "STS.AssumeRole")
            .unwrap();
        url::form_urlencoded::parse(body.as_bytes())
            .into_owned()
            .collect()
    }
}

const CREDENTIALS: &str = "POST /grants/{id}/credentials";
const CONSOLE: &str = "POST /grants/{id}/console";
const ENGINEER: &[&str] = &["engineers"];

#[tokio::test]
async fn an_active_grant_gets_scoped_credentials_in_one_read_one_assume_role_one_write() {
    let h = Harness::new("creds").await;
    let g = h.active("alice", "prod-logs-ro", "30m").await;
    h.calls();
    let reply = h
        .call(Some(("alice", ENGINEER)), CREDENTIALS, &g.id, None)
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    // The one read is a query of the grant's partition: the grant and its chain, verified.
    assert_eq!(
        h.calls(),
        BTreeMap::from([
            ("DynamoDB.Query".to_owned(), 1),
            ("DynamoDB.TransactWriteItems".to_owned(), 1),
            ("STS.AssumeRole".to_owned(), 1),
        ])
    );
    let b = &reply.body;
    assert_eq!(b["Version"], 1);
    for key in ["AccessKeyId", "SecretAccessKey", "SessionToken"] {
        assert!(!b[key].as_str().unwrap().is_empty(), "{key}");
    }
    let expiration = Timestamp::parse_rfc3339(b["Expiration"].as_str().unwrap()).unwrap();
    let lasts = expiration.unix_seconds() - h.now().unix_seconds();
    assert!(
        (1790..=1810).contains(&lasts),
        "the grant's remaining 30 minutes, got {lasts}s"
    );

    let sent = h.last_assume_role();
    assert_eq!(
        sent["RoleArn"],
        "arn:aws:iam::333333333333:role/jit/prod-logs-ro"
    );
    assert_eq!(sent["RoleSessionName"], format!("alice@{}", g.id));
    assert_eq!(sent["SourceIdentity"], "alice");
    assert_eq!(sent["DurationSeconds"], "1800");
    assert_eq!(sent["Tags.member.1.Key"], "jit-grant");
    assert_eq!(sent["Tags.member.1.Value"], g.id.as_str());
    assert_eq!(sent["Tags.member.2.Key"], "jit-requester");
    assert_eq!(sent["Tags.member.2.Value"], "alice");
    assert_eq!(sent["TransitiveTagKeys.member.1"], "jit-grant");
    assert_eq!(sent["TransitiveTagKeys.member.2"], "jit-requester");
    let policy: Value = serde_json::from_str(&sent["Policy"]).unwrap();
    assert_eq!(policy["Version"], "2012-10-17");

    let stored = h.grant(&g.id).await;
    assert_eq!(
        (stored.sessions_issued, stored.sessions_valid_until),
        (1, Some(expiration))
    );
    assert_eq!(
        h.audit_actions(&g.id).await.last(),
        Some(&AuditAction::SessionIssued)
    );
}

#[tokio::test]
async fn session_length_is_clamped_to_sts_limits() {
    let h = Harness::new("clamp").await;
    // Two hours left: role chaining caps a session at one hour.
    let long = h.active("alice", "prod-deploy", "2h").await;
    assert_eq!(
        h.call(Some(("alice", ENGINEER)), CREDENTIALS, &long.id, None)
            .await
            .status,
        200
    );
    assert_eq!(h.last_assume_role()["DurationSeconds"], "3600");
    // Five minutes left: STS's minimum is fifteen, so the session outlives the grant and the
    // grant records that, for revocation to reach it.
    let short = h.active("bob", "prod-logs-ro", "5m").await;
    assert_eq!(
        h.call(Some(("bob", ENGINEER)), CREDENTIALS, &short.id, None)
            .await
            .status,
        200
    );
    assert_eq!(h.last_assume_role()["DurationSeconds"], "900");
    let stored = h.grant(&short.id).await;
    assert!(stored.sessions_valid_until.unwrap() > stored.ends_at.unwrap());
}

#[tokio::test]
async fn only_the_requester_of_an_active_unexpired_grant_gets_credentials() {
    let h = Harness::new("refusals").await;
    let active = h.active("alice", "prod-logs-ro", "1h").await;
    let pending = h.pending("alice", "prod-deploy", "1h").await;
    let denied = {
        let g = h.pending("carol", "prod-logs-ro", "1h").await;
        let g = h
            .apply(
                &g,
                Command::AwaitReview {
                    approvals_required: 1,
                    policy_hash: "h".into(),
                },
                Actor::Service(Service::Approver),
            )
            .await;
        h.apply(
            &g,
            Command::Review {
                decision: jit_core::domain::ReviewDecision::Deny,
                comment: None,
            },
            Actor::User(UserId::parse("sam").unwrap()),
        )
        .await
    };
    let revoked = {
        let g = h.active("dave", "prod-logs-ro", "1h").await;
        h.apply(
            &g,
            Command::Revoke {
                reason: Reason::parse("incident is over now").unwrap(),
            },
            Actor::User(UserId::parse("sam").unwrap()),
        )
        .await
    };
    let short = h.active("erin", "prod-logs-ro", "5m").await;
    h.calls();
    type Case<'a> = (Option<(&'a str, &'a [&'a str])>, &'a Grant, u16, String);
    let cases: Vec<Case> = vec![
        (
            Some(("bob", ENGINEER)),
            &active,
            404,
            "no grant with that id is visible to you".into(),
        ),
        (
            Some(("sam", &["sre"])),
            &active,
            403,
            "only the requester may use a grant".into(),
        ),
        (
            None,
            &active,
            401,
            "the request carries no verified identity".into(),
        ),
        (
            Some(("alice", ENGINEER)),
            &pending,
            409,
            format!(
                "cannot issue credentials for request `{}`: it is PENDING",
                pending.id
            ),
        ),
        (
            Some(("carol", ENGINEER)),
            &denied,
            409,
            format!(
                "cannot issue credentials for request `{}`: it is DENIED, which is final",
                denied.id
            ),
        ),
        (
            Some(("dave", ENGINEER)),
            &revoked,
            409,
            format!(
                "cannot issue credentials for request `{}`: it is REVOKED, which is final",
                revoked.id
            ),
        ),
    ];
    for (who, g, status, detail) in cases {
        let reply = h.call(who, CREDENTIALS, &g.id, None).await;
        assert_eq!(reply.status, status, "{who:?} {}: {}", g.state, reply.body);
        assert!(reply.detail().starts_with(&detail), "{}", reply.detail());
        assert!(reply.body.get("AccessKeyId").is_none());
    }
    // Bodies these routes do not take are refused, not ignored.
    let extra = h
        .call(
            Some(("alice", ENGINEER)),
            CREDENTIALS,
            &active.id,
            Some(r#"{"duration": 7200}"#),
        )
        .await;
    assert_eq!(extra.status, 400);
    assert!(
        extra.detail().contains("unknown field `duration`"),
        "{}",
        extra.detail()
    );
    let extra = h
        .call(
            Some(("alice", ENGINEER)),
            CONSOLE,
            &active.id,
            Some(r#"{"dest": "https://console.aws.amazon.com/"}"#),
        )
        .await;
    assert_eq!(extra.status, 400);
    // Past its end but not yet swept: refused before STS is asked.
    h.clock.advance(6 * 60);
    let late = h
        .call(Some(("erin", ENGINEER)), CREDENTIALS, &short.id, None)
        .await;
    assert_eq!(late.status, 409);
    assert!(
        late.detail().contains("its time ran out"),
        "{}",
        late.detail()
    );
    let calls = h.calls();
    assert!(!calls.contains_key("STS.AssumeRole"), "{calls:?}");
    assert!(
        !calls.contains_key("DynamoDB.TransactWriteItems"),
        "{calls:?}"
    );
}

#[tokio::test]
async fn a_revocation_between_assume_role_and_the_write_drops_the_credentials() {
    let h = Harness::new("race").await;
    let g = h.active("alice", "prod-logs-ro", "1h").await;
    let (now, grant, table) = (h.now(), g.clone(), h.table.name.clone());
    let keys = h.keys.clone();
    let config = jit_local::Emulator::shared().unwrap().sdk_config().await;
    let revoked = Arc::new(std::sync::Mutex::new(false));
    let flag = revoked.clone();
    *h.issuer.broker.before.lock().unwrap() = Some(Box::new(move || {
        // Revoke from another thread while the issuer waits on STS.
        std::thread::spawn(move || {
            tokio::runtime::Runtime::new().unwrap().block_on(async {
                // Its own client: the test's runtime is blocked while this runs.
                let store = SignedStore::new(
                    DynamoStore::new(aws_sdk_dynamodb::Client::new(&config), table),
                    Arc::new(keys),
                );
                let change = grant
                    .apply(
                        Command::Revoke {
                            reason: Reason::parse("stop right there please").unwrap(),
                        },
                        &Actor::User(UserId::parse("sam").unwrap()),
                        now,
                    )
                    .unwrap();
                store.commit(&change).await.unwrap();
            });
        })
        .join()
        .unwrap();
        *flag.lock().unwrap() = true;
    }));
    let reply = h
        .call(Some(("alice", ENGINEER)), CREDENTIALS, &g.id, None)
        .await;
    assert!(*revoked.lock().unwrap());
    assert_eq!(reply.status, 409, "{}", reply.body);
    assert!(
        reply.detail().contains("it is REVOKED"),
        "{}",
        reply.detail()
    );
    assert!(reply.body.get("AccessKeyId").is_none());
    let stored = h.grant(&g.id).await;
    assert_eq!(
        (stored.state, stored.sessions_issued),
        (GrantState::Revoked, 0)
    );
    assert!(
        !h.audit_actions(&g.id)
            .await
            .contains(&AuditAction::SessionIssued)
    );
}

/// An STS client for `endpoint`, retrying as the SDK does but without long back-offs.
async fn sts_at(endpoint: &str) -> aws_sdk_sts::Client {
    let config = jit_local::Emulator::shared().unwrap().sdk_config().await;
    aws_sdk_sts::Client::from_conf(
        aws_sdk_sts::config::Builder::from(&config)
            .endpoint_url(endpoint)
            .retry_config(
                aws_sdk_sts::config::retry::RetryConfig::standard()
                    .with_max_attempts(2)
                    .with_initial_backoff(std::time::Duration::from_millis(10)),
            )
            .build(),
    )
}

#[tokio::test]
async fn sts_errors_in_their_real_shape_say_what_to_fix_and_write_nothing() {
    let h = Harness::new("sts-fail").await;
    let g = h.active("alice", "prod-logs-ro", "1h").await;
    // STS's own error answers, from a loopback endpoint, through the real SDK client.
    let sts = jit_local::CannedEndpoint::start().await.unwrap();
    let rules = Rules::load_dir(&jit_local::workspace_root().join("infra/policies")).unwrap();
    let issuer = h.issuer_with(rules, sts_at(&sts.endpoint).await);
    let denied = "User: arn:aws:sts::123456789012:assumed-role/jit-issuer/issuer is not \
        authorized to perform: sts:TagSession on resource: \
        arn:aws:iam::333333333333:role/jit/prod-logs-ro";
    for (status, kind, code, message, expected, problem, says) in [
        (
            403,
            "Sender",
            "AccessDenied",
            denied,
            502,
            "sts-access-denied",
            "The role's trust policy must allow this function's role the actions sts:AssumeRole, sts:TagSession and sts:SetSourceIdentity",
        ),
        (
            503,
            "Receiver",
            "ServiceUnavailable",
            "Service Unavailable",
            503,
            "unavailable",
            "STS is unavailable (ServiceUnavailable: Service Unavailable); nothing was issued, try again",
        ),
        (
            500,
            "Receiver",
            "InternalFailure",
            "An internal error occurred",
            503,
            "unavailable",
            "STS is unavailable (InternalFailure: An internal error occurred)",
        ),
        (
            400,
            "Sender",
            "Throttling",
            "Rate exceeded",
            503,
            "unavailable",
            "STS is unavailable (Throttling: Rate exceeded)",
        ),
        (
            403,
            "Sender",
            "RegionDisabledException",
            "STS is not activated in this region for account:111111111111",
            502,
            "sts-refused",
            "STS refused: RegionDisabledException: STS is not activated",
        ),
    ] {
        sts.sts_error(status, kind, code, message);
        let reply = call_on(&issuer, Some(("alice", ENGINEER)), CREDENTIALS, &g.id, None).await;
        assert_eq!(reply.status, expected, "{code}: {}", reply.body);
        assert!(
            reply.body["type"].as_str().unwrap().ends_with(problem),
            "{code}: {}",
            reply.body
        );
        assert!(reply.detail().contains(says), "{code}: {}", reply.detail());
        assert_eq!(
            h.grant(&g.id).await.version,
            g.version,
            "{code}: nothing written"
        );
    }
    assert!(sts.requests() >= 5);
}

#[tokio::test]
async fn issuance_keeps_the_scope_recorded_with_the_grant_and_refuses_a_changed_target() {
    let h = Harness::new("bound").await;
    let g = h.active("alice", "prod-logs-ro", "1h").await;
    let recorded = g.session_policy.clone().unwrap();
    let dir = jit_local::workspace_root().join("infra/policies");
    let read = |n: &str| std::fs::read_to_string(dir.join(n)).unwrap();
    let rules_with = |edit: &dyn Fn(&mut Value)| {
        let mut file: Value = serde_json::from_str(&read("targets.json")).unwrap();
        edit(&mut file);
        Rules::from_sources(
            &read("schema.cedarschema"),
            vec![
                ("access.cedar".into(), read("access.cedar")),
                ("auto-approve.cedar".into(), read("auto-approve.cedar")),
            ],
            &file.to_string(),
        )
        .unwrap()
    };
    fn logs(file: &mut Value) -> &mut Value {
        file["targets"]
            .as_array_mut()
            .unwrap()
            .iter_mut()
            .find(|t| t["id"] == "prod-logs-ro")
            .unwrap()
    }
    let config = jit_local::Emulator::shared().unwrap().sdk_config().await;
    for (change, edit, says) in [
        (
            "session policy removed",
            Box::new(|f: &mut Value| {
                logs(f).as_object_mut().unwrap().remove("session_policy");
            }) as Box<dyn Fn(&mut Value)>,
            "target `prod-logs-ro`'s session policy changed since this grant was requested",
        ),
        (
            "session policy widened",
            Box::new(|f: &mut Value| {
                logs(f)["session_policy"]["Statement"][0]["Action"] = json!("*");
            }),
            "session policy changed",
        ),
        (
            "role changed",
            Box::new(|f: &mut Value| {
                logs(f)["role_arn"] = json!("arn:aws:iam::333333333333:role/jit/other");
            }),
            "target `prod-logs-ro` now names role `arn:aws:iam::333333333333:role/jit/other`",
        ),
        (
            "target removed",
            Box::new(|f: &mut Value| {
                f["targets"]
                    .as_array_mut()
                    .unwrap()
                    .retain(|t| t["id"] != "prod-logs-ro");
            }),
            "target `prod-logs-ro` is no longer declared",
        ),
    ] {
        let calls = CallCounter::new();
        let sts = aws_sdk_sts::Client::from_conf(
            aws_sdk_sts::config::Builder::from(&config)
                .interceptor(calls.clone())
                .build(),
        );
        let issuer = h.issuer_with(rules_with(&edit), sts);
        let reply = call_on(&issuer, Some(("alice", ENGINEER)), CREDENTIALS, &g.id, None).await;
        assert_eq!(reply.status, 409, "{change}: {}", reply.body);
        assert!(
            reply.body["type"]
                .as_str()
                .unwrap()
                .ends_with("target-changed"),
            "{change}"
        );
        assert!(
            reply.detail().contains(says) && reply.detail().ends_with("request access again"),
            "{change}: {}",
            reply.detail()
        );
        assert!(calls.take().is_empty(), "{change}: no STS call");
        assert_eq!(
            h.grant(&g.id).await.version,
            g.version,
            "{change}: nothing written"
        );
    }
    // Unchanged, the session carries exactly the scope recorded with the grant.
    let reply = h
        .call(Some(("alice", ENGINEER)), CREDENTIALS, &g.id, None)
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(h.last_assume_role()["Policy"], recorded);
}

#[tokio::test]
async fn a_target_the_deployment_does_not_isolate_from_the_broker_gets_no_credentials() {
    let h = Harness::new("isolation").await;
    let g = h.active("alice", "prod-logs-ro", "1h").await;
    let dir = jit_local::workspace_root().join("infra/policies");
    let config = jit_local::Emulator::shared().unwrap().sdk_config().await;
    // The broker now runs in the target's own account (333333333333): without the opt-in a
    // session there could change the broker, so nothing is issued; with it, it is.
    for (opted_in, status) in [(false, 409), (true, 200)] {
        let calls = CallCounter::new();
        let sts = aws_sdk_sts::Client::from_conf(
            aws_sdk_sts::config::Builder::from(&config)
                .interceptor(calls.clone())
                .build(),
        );
        let rules = Rules::load_dir(&dir).unwrap().with_isolation(Isolation {
            broker_account: Some("333333333333".into()),
            targets_in_broker_account: opted_in,
        });
        let issuer = h.issuer_with(rules, sts);
        let reply = call_on(&issuer, Some(("alice", ENGINEER)), CREDENTIALS, &g.id, None).await;
        assert_eq!(reply.status, status, "opted in: {opted_in}: {}", reply.body);
        if status == 409 {
            assert!(
                reply.body["type"]
                    .as_str()
                    .unwrap()
                    .ends_with("target-not-isolated")
            );
            assert!(
                reply.detail().starts_with(
                    "target `prod-logs-ro` (targets.json:4): its role is in the broker's own account 333333333333"
                ) && reply.detail().ends_with("no credentials were issued"),
                "{}",
                reply.detail()
            );
            assert!(calls.take().is_empty(), "no STS call");
            assert_eq!(h.grant(&g.id).await.version, g.version, "nothing written");
        }
    }
}

#[tokio::test]
async fn hostile_user_names_still_give_sessions_sts_accepts() {
    let h = Harness::new("names").await;
    let long = "x".repeat(200);
    for (i, user) in [
        "Jörg Müller",
        "auth0|5f7c8ec7c33c",
        "team/alice",
        "alice@example.com",
        long.as_str(),
        "日本語",
    ]
    .iter()
    .enumerate()
    {
        let target = ["prod-logs-ro", "prod-deploy"][i % 2];
        let g = h.active(user, target, "1h").await;
        let reply = h
            .call(Some((user, ENGINEER)), CREDENTIALS, &g.id, None)
            .await;
        assert_eq!(reply.status, 200, "{user}: {}", reply.body);
        let sent = h.last_assume_role();
        let name = &sent["RoleSessionName"];
        assert!(name.len() <= 64 && name.ends_with(g.id.as_str()), "{name}");
        assert!(
            name.chars()
                .all(|c| c.is_ascii_alphanumeric() || "_+=,.@-".contains(c)),
            "{name}"
        );
        let source = &sent["SourceIdentity"];
        assert!((2..=64).contains(&source.len()), "{source}");
    }
}

#[tokio::test]
async fn the_console_link_comes_from_the_federation_endpoint() {
    let h = Harness::new("console").await;
    let g = h.active("alice", "prod-logs-ro", "1h").await;
    let body = json!({"destination": "https://eu-west-1.console.aws.amazon.com/cloudwatch/home"})
        .to_string();
    let reply = h
        .call(Some(("alice", ENGINEER)), CONSOLE, &g.id, Some(&body))
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let link = url::Url::parse(reply.body["url"].as_str().unwrap()).unwrap();
    assert!(link.as_str().starts_with(&h.federation.endpoint));
    let q: BTreeMap<String, String> = link.query_pairs().into_owned().collect();
    assert_eq!(q["Action"], "login");
    assert_eq!(q["Issuer"], "jit-access");
    assert_eq!(
        q["Destination"],
        "https://eu-west-1.console.aws.amazon.com/cloudwatch/home"
    );
    assert_eq!(q["SigninToken"], "standin-token-1");
    let sessions = h.federation.log.sessions();
    assert_eq!(sessions.len(), 1);
    assert!(
        sessions[0]["sessionId"]
            .as_str()
            .unwrap()
            .starts_with("ASIA")
    );
    let records = jit_test_support::audit(h.store(), &g.id).await;
    let last = records.last().unwrap();
    assert_eq!(
        (last.action, last.detail["kind"].as_str()),
        (AuditAction::SessionIssued, "console")
    );

    // Only console destinations; nothing asked of STS for a bad one.
    h.calls();
    let evil = json!({"destination": "https://evil.example.com/phish"}).to_string();
    let reply = h
        .call(Some(("alice", ENGINEER)), CONSOLE, &g.id, Some(&evil))
        .await;
    assert_eq!(reply.status, 422);
    assert!(
        reply.detail().contains("is not an AWS console URL"),
        "{}",
        reply.detail()
    );
    assert!(h.calls().is_empty());

    // The federation endpoint failing: 502, and nothing recorded.
    *h.federation.fail_with.lock().unwrap() = Some(500);
    let before = h.grant(&g.id).await;
    let reply = h
        .call(Some(("alice", ENGINEER)), CONSOLE, &g.id, None)
        .await;
    assert_eq!(reply.status, 502);
    assert!(
        reply.detail().contains("federation endpoint failed"),
        "{}",
        reply.detail()
    );
    assert_eq!(h.grant(&g.id).await, before);
}

/// What someone who can write the table, or holds one function's key, might do to get
/// credentials without the approver's say-so; each is refused before STS is called.
#[tokio::test]
async fn a_grant_whose_evidence_does_not_verify_gets_no_credentials() {
    use jit_core::trust::{LocalKey, record_message};

    let h = Harness::new("forged").await;
    let raw = h.store().inner().clone();
    let auto_approve = |g: &Grant, now| {
        g.apply(
            Command::AutoApprove {
                policies: vec!["forged".into()],
                policy_hash: "h".into(),
            },
            &Actor::Service(Service::Approver),
            now,
        )
        .unwrap()
    };
    let put_grant = |grant: Grant| {
        let table = h.table.clone();
        async move {
            table
                .put_raw(&format!("GRANT#{}", grant.id), "GRANT", &grant)
                .await
                .unwrap();
        }
    };

    let mut cases: Vec<(&str, GrantId, &str)> = Vec::new();

    // 1. Intake's key (a compromised intake) signs the activation: a well-formed chain whose
    //    activating record is not the approver's.
    let g = h.pending("alice", "prod-logs-ro", "1h").await;
    let change = auto_approve(&g, h.now());
    let intake = h.keys.key(Service::Intake);
    let forged = intake.sign_as(&record_message(&change.audit().hash));
    raw.commit(&change.with_signature(forged)).await.unwrap();
    cases.push((
        "intake's key on an activation",
        g.id,
        "only the approver function",
    ));

    // 2. Someone with table access and no key at all appends an unsigned activation.
    let g = h.pending("bob", "prod-logs-ro", "1h").await;
    raw.commit(&auto_approve(&g, h.now())).await.unwrap();
    cases.push(("an unsigned activation", g.id, "not signed"));

    // 3. A key from outside the deployment, claiming to be the approver's.
    let g = h.pending("carol", "prod-logs-ro", "1h").await;
    let change = auto_approve(&g, h.now());
    let stranger = LocalKey::generate(Service::Approver);
    let forged = stranger.sign_as(&record_message(&change.audit().hash));
    raw.commit(&change.with_signature(forged)).await.unwrap();
    cases.push(("an outside key", g.id, "not one of the functions' keys"));

    // 4. A properly approved grant whose item is rewritten to last ten hours longer.
    let g = h.active("dave", "prod-logs-ro", "1h").await;
    let mut longer = h.grant(&g.id).await;
    longer.ends_at = longer.ends_at.map(|t| t.plus_secs(36_000));
    put_grant(longer).await;
    cases.push(("an extended end time", g.id, "end time"));

    // 5. A pending request's item set to ACTIVE with its chain left as it was.
    let g = h.pending("erin", "prod-logs-ro", "1h").await;
    let mut active = h.grant(&g.id).await;
    active.state = GrantState::Active;
    active.activated_at = Some(h.now());
    active.ends_at = Some(h.now().plus_secs(3600));
    put_grant(active).await;
    cases.push(("a state written directly", g.id, "state"));

    // 6. A properly approved grant moved to another role.
    let g = h.active("frank", "prod-logs-ro", "1h").await;
    let mut moved = h.grant(&g.id).await;
    moved.role_arn =
        jit_core::domain::RoleArn::parse("arn:aws:iam::333333333333:role/jit/prod-admin").unwrap();
    put_grant(moved).await;
    cases.push(("another role", g.id, "role"));

    for (case, id, says) in cases {
        let who = h.grant(&id).await.requester;
        let before = h.audit_actions(&id).await;
        h.calls();
        let reply = h
            .call(Some((who.as_str(), ENGINEER)), CREDENTIALS, &id, None)
            .await;
        assert_eq!(reply.status, 409, "{case}: {}", reply.body);
        assert!(
            reply.body["type"]
                .as_str()
                .unwrap()
                .ends_with("evidence-unverified"),
            "{case}: {}",
            reply.body
        );
        assert!(
            reply.detail().contains("failed verification") && reply.detail().contains(says),
            "{case}: {}",
            reply.detail()
        );
        assert!(reply.body.get("AccessKeyId").is_none(), "{case}");
        let calls = h.calls();
        assert!(!calls.contains_key("STS.AssumeRole"), "{case}: {calls:?}");
        assert_eq!(
            calls.get("DynamoDB.Query"),
            Some(&1),
            "{case}: one read, nothing written: {calls:?}"
        );
        assert_eq!(calls.values().sum::<u64>(), 1, "{case}: {calls:?}");
        assert_eq!(h.audit_actions(&id).await, before, "{case}");
    }

    // The same grant, signed by the approver, is served: the refusals above are the evidence's.
    let g = h.active("grace", "prod-logs-ro", "1h").await;
    let reply = h
        .call(Some(("grace", ENGINEER)), CREDENTIALS, &g.id, None)
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
}
