//! The store every function writes through: signs each audit record and checkpoint with the
//! function's key before the inner store writes it. A record the key may not sign (the
//! function is not its author) is refused before anything is written.

use std::sync::Arc;

use super::{AppliedPolicy, Cause, Created, GrantStore, Idempotency, StoreError};
use crate::audit::AuditRecord;
use crate::domain::{Change, Creation, RoleArn};
use crate::trust::{
    Checkpoint, RecordSignature, SignError, SigningKey, author_of, checkpoint_message,
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
