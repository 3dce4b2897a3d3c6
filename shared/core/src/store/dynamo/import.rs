//! Bulk loads, and the reads that explain a refused create.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;

use super::*;
use crate::domain::{Creation, Grant, GrantId};
use crate::store::{Created, GrantStore, Idempotency, StoreError};

impl DynamoStore {
    /// Bulk-loads new requests (each with its first audit record and open slot) with
    /// `BatchWriteItem`: unconditional, for restoring exports and seeding benchmarks, never for
    /// the functions' own writes. Returns how many requests were written.
    pub async fn import(&self, creations: &[Creation]) -> Result<usize, StoreError> {
        use aws_sdk_dynamodb::types::{PutRequest, WriteRequest};
        let mut requests = Vec::with_capacity(creations.len() * 3);
        for creation in creations {
            let grant = creation.grant();
            let slot = HashMap::from([
                (
                    TableLayout::PARTITION_KEY.into(),
                    s(Self::open_slot_pk(grant)),
                ),
                (TableLayout::SORT_KEY.into(), s(OPEN_SK)),
                ("grant_id".into(), s(grant.id.as_str())),
            ]);
            for item in [
                self.grant_item(grant)?,
                self.audit_item(creation.audit())?,
                slot,
            ] {
                let put = PutRequest::builder()
                    .set_item(Some(item))
                    .build()
                    .map_err(build_error)?;
                requests.push(WriteRequest::builder().put_request(put).build());
            }
        }
        for chunk in requests.chunks(25) {
            let mut pending = chunk.to_vec();
            for attempt in 0..8_u64 {
                let out = self
                    .client
                    .batch_write_item()
                    .request_items(&self.table, pending)
                    .send()
                    .await
                    .map_err(sdk_error)?;
                pending = out
                    .unprocessed_items
                    .and_then(|mut u| u.remove(&self.table))
                    .unwrap_or_default();
                if pending.is_empty() {
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(20 << attempt)).await;
            }
            if !pending.is_empty() {
                return Err(StoreError::unavailable(
                    "the database kept refusing part of a batch",
                ));
            }
        }
        Ok(creations.len())
    }

    /// The refusal for a second open request, naming the open one.
    pub(super) async fn already_open(&self, grant: &Grant) -> StoreError {
        let item = match self.get_item(Self::open_slot_pk(grant), OPEN_SK).await {
            Ok(item) => item,
            Err(e) => return e,
        };
        match item.as_ref().and_then(|i| i.get("grant_id")) {
            Some(AttributeValue::S(id)) => match GrantId::parse(id.as_str()) {
                Ok(existing) => StoreError::AlreadyOpen { existing },
                Err(e) => StoreError::Corrupt {
                    key: Self::open_slot_pk(grant),
                    why: e.to_string(),
                },
            },
            // Released between the refusal and this read: the caller may simply retry.
            _ => StoreError::unavailable(
                "the open request for this target closed while this one was checked",
            ),
        }
    }

    pub(super) async fn replay(&self, idem: &Idempotency) -> Result<Created, StoreError> {
        let key = Self::idempotency_key(idem);
        let pk = match key.get(TableLayout::PARTITION_KEY) {
            Some(AttributeValue::S(pk)) => pk.clone(),
            _ => String::new(),
        };
        let corrupt_key = |why: &str| StoreError::Corrupt {
            key: pk.clone(),
            why: why.to_owned(),
        };
        let Some(item) = self.get_item(pk.clone(), IDEM_SK).await? else {
            // The key expired and was deleted between our write and this read: a retry wins.
            return Err(StoreError::unavailable(
                "the idempotency key changed while it was checked",
            ));
        };
        let text = |name: &str| match item.get(name) {
            Some(AttributeValue::S(v)) => Some(v.clone()),
            _ => None,
        };
        if text("fingerprint").as_deref() != Some(idem.fingerprint.as_str()) {
            return Err(StoreError::IdempotencyKeyReused {
                key: idem.key.as_str().to_owned(),
            });
        }
        let id = text("grant_id")
            .and_then(|v| GrantId::parse(v).ok())
            .ok_or_else(|| corrupt_key("it names no valid request"))?;
        match self.get(&id).await? {
            Some(grant) => Ok(Created::Replayed(grant)),
            None => Err(corrupt_key("the request it names does not exist")),
        }
    }
}
