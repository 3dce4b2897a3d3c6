//! The store every function writes through: signs each audit record and checkpoint with the
//! function's key before the inner store writes it. A record the key may not sign (the
//! function is not its author) is refused before anything is written.

use std::sync::Arc;

use super::{AppliedPolicy, Created, GrantStore, Idempotency, StoreError};
use crate::cause::Cause;
use crate::domain::audit::{AuditRecord, RecordSignature};
use crate::domain::{Change, Creation, Grant, RoleArn};
use crate::trust::{
    Checkpoint, SignError, SigningKey, author_of, checkpoint_message, record_message,
};

/// Wraps a store so that everything it appends to the trail is signed by `key`.
#[derive(Debug, Clone)]
pub struct SignedStore<S> {
    inner: S,
    key: Arc<dyn SigningKey>,
}

impl<S> SignedStore<S> {
    /// Signs with `key` what `inner` stores.
    pub fn new(inner: S, key: Arc<dyn SigningKey>) -> Self {
        Self { inner, key }
    }

    /// The key it signs with.
    pub fn key(&self) -> &Arc<dyn SigningKey> {
        &self.key
    }

    /// The store underneath, which writes without signing.
    pub fn inner(&self) -> &S {
        &self.inner
    }

    async fn sign_record(&self, record: &AuditRecord) -> Result<RecordSignature, StoreError> {
        self.key
            .sign(author_of(record.action), record_message(&record.hash))
            .await
            .map_err(sign_error)
    }
}

fn sign_error(e: SignError) -> StoreError {
    match e {
        SignError::Unavailable(cause) => StoreError::Unavailable { cause },
        SignError::Refused(cause) => StoreError::Refused { cause },
        not_author @ SignError::NotAuthor { .. } => StoreError::Refused {
            cause: Cause::message(not_author.to_string()),
        },
    }
}

impl<S: GrantStore> GrantStore for SignedStore<S> {
    crate::delegate_grant_store_reads!(inner);

    async fn create(
        &self,
        creation: &Creation,
        idempotency: Option<&Idempotency>,
    ) -> Result<Created, StoreError> {
        let signature = self.sign_record(creation.audit()).await?;
        let signed = creation.clone().with_signature(signature);
        self.inner.create(&signed, idempotency).await
    }

    async fn create_bundle(&self, creations: &[Creation]) -> Result<Vec<Grant>, StoreError> {
        let mut signed = Vec::with_capacity(creations.len());
        for creation in creations {
            let signature = self.sign_record(creation.audit()).await?;
            signed.push(creation.clone().with_signature(signature));
        }
        self.inner.create_bundle(&signed).await
    }

    async fn commit(&self, change: &Change) -> Result<(), StoreError> {
        let signature = self.sign_record(change.audit()).await?;
        let signed = change.clone().with_signature(signature);
        self.inner.commit(&signed).await
    }

    async fn put_checkpoint(&self, checkpoint: &Checkpoint) -> Result<(), StoreError> {
        let signature = self
            .key
            .sign(
                crate::domain::Service::Sweeper,
                checkpoint_message(&checkpoint.hash),
            )
            .await
            .map_err(sign_error)?;
        let mut signed = checkpoint.clone();
        signed.signature = Some(signature);
        self.inner.put_checkpoint(&signed).await
    }

    async fn record_applied(
        &self,
        role: &RoleArn,
        applied: &AppliedPolicy,
    ) -> Result<(), StoreError> {
        self.inner.record_applied(role, applied).await
    }
}

/// Activity is not signed (it is CloudTrail's, as delivered; the signed record covering it is
/// the sweeper's): every call passes through.
impl<S: super::ActivityStore> super::ActivityStore for SignedStore<S> {
    crate::delegate_activity_store!(inner);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::Timestamp;
    use crate::domain::{
        Actor, Command, Grant, GrantDuration, GrantId, NewRequest, Reason, Service, TargetId,
        UserId,
    };
    use crate::store::MemoryStore;
    use crate::trust::{LocalKey, LocalKeys, check_grant};

    fn creation() -> Creation {
        let rules = crate::policy::Rules::load_dir(
            &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../infra/policies"),
        )
        .unwrap();
        let target = rules
            .target(&TargetId::parse("prod-logs-ro").unwrap())
            .unwrap();
        let now = Timestamp::from_unix_seconds(1_800_000_000);
        let request = NewRequest {
            requester: UserId::parse("alice").unwrap(),
            requester_groups: vec![],
            target: target.id.clone(),
            binding: target.binding(),
            duration: GrantDuration::parse("1h").unwrap(),
            reason: Reason::parse("investigating an incident").unwrap(),
            ticket: None,
            break_glass: false,
            decision_window_secs: 600,
            starts_at: None,
            bundle: None,
            policy_hash: "h".into(),
        };
        Grant::open(GrantId::generate(now), request, now)
    }

    fn auto_approve(grant: &Grant) -> Change {
        grant
            .apply(
                Command::AutoApprove {
                    policies: vec!["p".into()],
                    policy_hash: "h".into(),
                    on_call: Default::default(),
                },
                &Actor::Service(Service::Approver),
                grant.created_at,
            )
            .unwrap()
    }

    #[tokio::test]
    async fn a_function_cannot_write_a_record_it_does_not_author_and_nothing_is_stored() {
        let intake = SignedStore::new(
            MemoryStore::new(),
            Arc::new(LocalKey::generate(Service::Intake)),
        );
        let created = creation();
        intake.create(&created, None).await.unwrap();
        let refused = intake.commit(&auto_approve(created.grant())).await;
        assert!(
            matches!(&refused, Err(StoreError::Refused { cause }) if cause.to_string().contains("the intake function may not sign for the approver function")),
            "{refused:?}"
        );
        let (grant, records) = intake.evidence(&created.grant().id).await.unwrap().unwrap();
        assert_eq!(
            (grant.state, records.len()),
            (crate::domain::GrantState::Pending, 1)
        );
    }

    #[tokio::test]
    async fn what_the_authors_sign_verifies_as_evidence() {
        let keys = LocalKeys::generate();
        let store = SignedStore::new(MemoryStore::new(), Arc::new(keys.clone()));
        let created = creation();
        store.create(&created, None).await.unwrap();
        store.commit(&auto_approve(created.grant())).await.unwrap();
        let (grant, records) = store.evidence(&created.grant().id).await.unwrap().unwrap();
        check_grant(&grant, &records, &keys.ring()).unwrap();
        // The same records under another deployment's keys are not evidence.
        assert!(check_grant(&grant, &records, &LocalKeys::generate().ring()).is_err());
    }
}
