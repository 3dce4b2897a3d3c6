//! Issuance against STS and DynamoDB on the emulator, and a local federation stand-in.
// Tests may unwrap and index: a panic is how a test fails.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod console;
mod credentials;
mod evidence;
mod sts;

use std::collections::BTreeMap;
use std::sync::Arc;

use jit_core::clock::{Clock, ManualClock, SystemClock, Timestamp};
use jit_core::domain::audit::AuditAction;
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
use jit_test_support::Who;

impl Harness {
    async fn new(label: &str) -> Self {
        let jit_test_support::SignedTable {
            table, store, keys, ..
        } = jit_test_support::signed_table(label).await;
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
        let issuer = Issuer {
            store,
            rules: Arc::new(rules),
            clock: clock.clone(),
            broker: Broker {
                sts: StsBroker::new(sts),
                before: std::sync::Mutex::new(None),
                fail: std::sync::Mutex::new(None),
            },
            federation: HttpFederation::new(url::Url::parse(&federation.endpoint).unwrap()),
            config: IssuerConfig::default(),
            keys: Arc::new(keys.ring().into()),
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
            jit_test_support::auto_approve(),
            jit_test_support::by_approver(),
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

    async fn call(&self, who: Who<'_>, route: &str, id: &GrantId, body: Option<&str>) -> Reply {
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
            federation: HttpFederation::new(url::Url::parse(&self.federation.endpoint).unwrap()),
            config: IssuerConfig::default(),
            keys: Arc::clone(&self.issuer.keys),
        }
    }
}

async fn call_on(
    issuer: &Issuer<Store, Broker, HttpFederation>,
    who: Who<'_>,
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
        Reply::of(&issuer.handle(request).await)
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
