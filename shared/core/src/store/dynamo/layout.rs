//! How the adapter lays items out in the table: the table and its indexes, keys, and the
//! conversion of grants, audit records and ledger entries to items.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use serde::{Deserialize, Serialize};

use super::*;
use crate::clock::Timestamp;
use crate::domain::audit::AuditRecord;
use crate::domain::{Grant, GrantId, RevocationEntry, RoleArn, TargetRole};
use crate::store::Position;
use crate::store::{
    AppliedPolicy, Cursor, Idempotency, LedgerHead, StoreError, audit_sort_key, due_shard,
};

/// An item as the SDK holds it.
pub(super) type Item = HashMap<String, AttributeValue>;

/// One global secondary index: its name and key attributes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexLayout {
    /// The index name.
    pub name: &'static str,
    /// Its partition key attribute (a string).
    pub partition_key: &'static str,
    /// Its sort key attribute and whether that is a number (`N`) rather than a string (`S`).
    pub sort_key: (&'static str, bool),
}

/// The table's shape as this adapter uses it. `template.yaml` must declare the same; a test
/// compares the two.
#[derive(Debug, Clone, Copy)]
pub struct TableLayout;

impl TableLayout {
    /// The table's partition key (a string).
    pub const PARTITION_KEY: &'static str = "pk";
    /// The table's sort key (a string).
    pub const SORT_KEY: &'static str = "sk";
    /// The attribute DynamoDB's TTL deletes items by (idempotency keys).
    pub const TTL_ATTRIBUTE: &'static str = "expires_at";
    /// A person's requests, by creation time.
    pub const BY_REQUESTER: IndexLayout = IndexLayout {
        name: "by_requester",
        partition_key: "requester_key",
        sort_key: ("created_at", true),
    };
    /// What waits for reviewers per target (pending requests, grants whose extension waits),
    /// by creation time; sparse: only those items carry it.
    pub const PENDING_BY_TARGET: IndexLayout = IndexLayout {
        name: "pending_by_target",
        partition_key: "pending_target",
        sort_key: ("created_at", true),
    };
    /// Open grants by due time, write-sharded; sparse: only open items carry it.
    pub const DUE: IndexLayout = IndexLayout {
        name: "due",
        partition_key: "due_shard",
        sort_key: ("due_at", true),
    };
    /// Audit records per UTC day, by time, grant and sequence.
    pub const AUDIT_BY_DAY: IndexLayout = IndexLayout {
        name: "audit_by_day",
        partition_key: "audit_day",
        sort_key: ("audit_key", false),
    };
    /// Every index the adapter queries.
    pub const INDEXES: [IndexLayout; 4] = [
        Self::BY_REQUESTER,
        Self::PENDING_BY_TARGET,
        Self::DUE,
        Self::AUDIT_BY_DAY,
    ];
}

pub(super) const GRANT_SK: &str = "GRANT";
pub(super) const IDEM_SK: &str = "IDEM";
pub(super) const OPEN_SK: &str = "OPEN";
/// The partition of the revoked-roles registry: written only by transitions that add a ledger
/// entry (revocations, expiries with live sessions) and by reconciles, never by every write.
pub(super) const ROLES_PK: &str = "ROLES";

pub(super) fn role_sk(role: &RoleArn) -> String {
    format!("ROLE#{role}")
}

/// A revoked-roles registry item as stored.
#[derive(Debug, Deserialize)]
pub(super) struct RegistryItem {
    pub(super) role_arn: RoleArn,
    #[serde(default)]
    pub(super) revoker_role_arn: Option<RoleArn>,
    pub(super) version: u64,
    #[serde(default)]
    pub(super) applied_marker: Option<String>,
    #[serde(default)]
    pub(super) applied_version: Option<u64>,
}

impl RegistryItem {
    pub(super) fn head(self) -> LedgerHead {
        let applied = match (self.applied_marker, self.applied_version) {
            (Some(marker), Some(ledger_version)) => Some(AppliedPolicy {
                marker,
                ledger_version,
            }),
            _ => None,
        };
        LedgerHead {
            role: TargetRole {
                role_arn: self.role_arn,
                revoker_role_arn: self.revoker_role_arn,
            },
            version: self.version,
            applied,
        }
    }
}

pub(super) fn grant_pk(id: &GrantId) -> String {
    format!("GRANT#{id}")
}

pub(super) fn audit_sk(seq: u64) -> String {
    format!("AUDIT#{seq:010}")
}

pub(super) fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

pub(super) fn n(value: impl ToString) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

impl DynamoStore {
    pub(super) fn to_item<T: Serialize>(&self, value: &T, key: &str) -> Result<Item, StoreError> {
        serde_dynamo::to_item(value).map_err(|e| StoreError::Corrupt {
            key: key.to_owned(),
            why: e.to_string(),
        })
    }

    pub(super) fn grant_item(&self, grant: &Grant) -> Result<Item, StoreError> {
        let pk = grant_pk(&grant.id);
        let mut item = self.to_item(grant, &pk)?;
        item.insert(TableLayout::PARTITION_KEY.into(), s(pk));
        item.insert(TableLayout::SORT_KEY.into(), s(GRANT_SK));
        item.insert(
            TableLayout::BY_REQUESTER.partition_key.into(),
            s(format!("USER#{}", grant.requester)),
        );
        if grant.awaiting_review().is_some() {
            item.insert(
                TableLayout::PENDING_BY_TARGET.partition_key.into(),
                s(format!("TARGET#{}", grant.target)),
            );
        }
        if let Some(due) = grant.due_at() {
            item.insert(
                TableLayout::DUE.partition_key.into(),
                s(format!("DUE#{}", due_shard(&grant.id))),
            );
            item.insert(TableLayout::DUE.sort_key.0.into(), n(due.unix_seconds()));
        }
        Ok(item)
    }

    pub(super) fn audit_item(&self, record: &AuditRecord) -> Result<Item, StoreError> {
        let pk = grant_pk(&record.grant_id);
        let mut item = self.to_item(record, &pk)?;
        item.insert(TableLayout::PARTITION_KEY.into(), s(pk));
        item.insert(TableLayout::SORT_KEY.into(), s(audit_sk(record.seq)));
        item.insert(
            TableLayout::AUDIT_BY_DAY.partition_key.into(),
            s(format!("AUDIT#{}", record.at.utc_day())),
        );
        item.insert(
            TableLayout::AUDIT_BY_DAY.sort_key.0.into(),
            s(audit_sort_key(record)),
        );
        Ok(item)
    }

    pub(super) fn revocation_key(entry: &RevocationEntry) -> Item {
        HashMap::from([
            (
                TableLayout::PARTITION_KEY.into(),
                s(format!("ROLE#{}", entry.role_arn)),
            ),
            (
                TableLayout::SORT_KEY.into(),
                s(format!("REVOKED#{}", entry.grant_id)),
            ),
        ])
    }

    pub(super) fn open_slot_pk(grant: &Grant) -> String {
        format!("OPEN#{}#{}", grant.target, grant.requester)
    }

    pub(super) fn idempotency_key(idem: &Idempotency) -> Item {
        HashMap::from([
            (
                TableLayout::PARTITION_KEY.into(),
                s(format!("IDEM#{}#{}", idem.key.as_str(), idem.caller)),
            ),
            (TableLayout::SORT_KEY.into(), s(IDEM_SK)),
        ])
    }
}

/// The exclusive start key for a grant index, rebuilt from a cursor's position.
pub(super) fn grant_index_start(
    index: IndexLayout,
    partition: &str,
    sort: AttributeValue,
    id: &GrantId,
) -> Item {
    HashMap::from([
        (index.partition_key.to_owned(), s(partition)),
        (index.sort_key.0.to_owned(), sort),
        (TableLayout::PARTITION_KEY.to_owned(), s(grant_pk(id))),
        (TableLayout::SORT_KEY.to_owned(), s(GRANT_SK)),
    ])
}

pub(super) fn last_created(item: Option<Item>) -> Result<Option<Cursor>, StoreError> {
    item.map(|raw| {
        let g: Grant = serde_dynamo::from_item(raw.clone()).map_err(|e| corrupt(&raw, e))?;
        Ok(Cursor::encode(&Position::Created {
            at: g.created_at,
            id: g.id,
        }))
    })
    .transpose()
}

/// Splits an audit-index key back into time, grant and sequence.
pub(super) fn parse_audit_key(key: &str) -> Option<(Timestamp, GrantId, u64)> {
    let mut parts = key.splitn(3, '#');
    let at = parts.next()?.parse().ok()?;
    let id = GrantId::parse(parts.next()?).ok()?;
    let seq = parts.next()?.parse().ok()?;
    Some((Timestamp::from_unix_seconds(at), id, seq))
}

/// What a table stream record's keys and new image hold, read with the table's layout.
#[derive(Debug, Clone, PartialEq)]
pub enum StreamImage {
    /// A request or grant item.
    Grant(Box<Grant>),
    /// Some other item (an audit record, a ledger entry, a slot...).
    Other,
}

impl DynamoStore {
    /// Reads a stream record's `keys` and `new_image` (as the event carries them) with the
    /// table's layout: a request or grant, or another item. An image that claims to be a grant
    /// but cannot be read is `Corrupt`.
    pub fn stream_image(
        keys: &serde_dynamo::Item,
        new_image: &serde_dynamo::Item,
    ) -> Result<StreamImage, StoreError> {
        let sort_key = match keys.get(TableLayout::SORT_KEY) {
            Some(serde_dynamo::AttributeValue::S(sk)) => sk.as_str(),
            _ => "",
        };
        if sort_key != GRANT_SK {
            return Ok(StreamImage::Other);
        }
        serde_dynamo::from_item(new_image.clone())
            .map(|grant| StreamImage::Grant(Box::new(grant)))
            .map_err(|e| StoreError::Corrupt {
                key: format!("{:?}", keys.get(TableLayout::PARTITION_KEY)),
                why: e.to_string(),
            })
    }
}
