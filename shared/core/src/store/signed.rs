//! The store every function writes through: signs each audit record and checkpoint with the
//! function's key before the inner store writes it. A record the key may not sign (the
//! function is not its author) is refused before anything is written.

use std::sync::Arc;

use super::{
    AppliedPolicy, Cause, Created, GrantStore, Idempotency, LedgerHead, Page, PageRequest,
    RoleLedger, StoreError,
};
use crate::audit::AuditRecord;
use crate::clock::Timestamp;
use crate::domain::{Change, Creation, Grant, GrantId, RevocationEntry, RoleArn, TargetId, UserId};
use crate::trust::{
    Checkpoint, GrantHead, RecordSignature, SignError, SigningKey, author_of, checkpoint_message,
    record_message,
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
    async fn create(
        &self,
        creation: &Creation,
        idempotency: Option<&Idempotency>,
    ) -> Result<Created, StoreError> {
        let signature = self.sign_record(creation.audit()).await?;
        let signed = creation.clone().with_signature(signature);
        self.inner.create(&signed, idempotency).await
    }

    async fn get(&self, id: &GrantId) -> Result<Option<Grant>, StoreError> {
        self.inner.get(id).await
    }

    async fn commit(&self, change: &Change) -> Result<(), StoreError> {
        let signature = self.sign_record(change.audit()).await?;
        let signed = change.clone().with_signature(signature);
        self.inner.commit(&signed).await
    }

    async fn evidence(
        &self,
        id: &GrantId,
    ) -> Result<Option<(Grant, Vec<AuditRecord>)>, StoreError> {
        self.inner.evidence(id).await
    }

    async fn heads(&self, ids: &[GrantId]) -> Result<Vec<GrantHead>, StoreError> {
        self.inner.heads(ids).await
    }

    async fn latest_checkpoint(&self) -> Result<Option<Checkpoint>, StoreError> {
        self.inner.latest_checkpoint().await
    }

    async fn checkpoints_between(
        &self,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<Checkpoint>, StoreError> {
        self.inner.checkpoints_between(from, to).await
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

    async fn list_by_requester(
        &self,
        requester: &UserId,
        page: &PageRequest,
    ) -> Result<Page<Grant>, StoreError> {
        self.inner.list_by_requester(requester, page).await
    }

    async fn list_pending_for_target(
        &self,
        target: &TargetId,
        page: &PageRequest,
    ) -> Result<Page<Grant>, StoreError> {
        self.inner.list_pending_for_target(target, page).await
    }

    async fn list_due(
        &self,
        before: Timestamp,
        page: &PageRequest,
    ) -> Result<Page<Grant>, StoreError> {
        self.inner.list_due(before, page).await
    }

    async fn audit_of_grant(
        &self,
        id: &GrantId,
        page: &PageRequest,
    ) -> Result<Page<AuditRecord>, StoreError> {
        self.inner.audit_of_grant(id, page).await
    }

    async fn audit_between(
        &self,
        from: Timestamp,
        to: Timestamp,
        page: &PageRequest,
    ) -> Result<Page<AuditRecord>, StoreError> {
        self.inner.audit_between(from, to, page).await
    }

    async fn revoked_roles(&self) -> Result<Vec<LedgerHead>, StoreError> {
        self.inner.revoked_roles().await
    }

    async fn role_ledger(&self, role: &RoleArn) -> Result<RoleLedger, StoreError> {
        self.inner.role_ledger(role).await
    }

    async fn remove_revocation(&self, entry: &RevocationEntry) -> Result<(), StoreError> {
        self.inner.remove_revocation(entry).await
    }

    async fn record_applied(
        &self,
        role: &RoleArn,
        applied: &AppliedPolicy,
    ) -> Result<(), StoreError> {
        self.inner.record_applied(role, applied).await
    }
}
