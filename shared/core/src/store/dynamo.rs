//! The DynamoDB adapter: one table, every write one conditional `TransactWriteItems`.
//!
//! | item | pk | sk | index attributes |
//! |---|---|---|---|
//! | request/grant | `GRANT#<id>` | `GRANT` | `requester_key`+`created_at`; `pending_target`+`created_at` while pending; `due_shard`+`due_at` while open |
//! | audit record | `GRANT#<id>` | `AUDIT#<seq, 10 digits>` | `audit_day`+`audit_key` |
//! | revocation | `ROLE#<role ARN>` | `REVOKED#<grant id>` | |
//! | idempotency | `IDEM#<key>#<caller>` | `IDEM` | `expires_at` is the table's TTL attribute |
//! | open slot | `OPEN#<target>#<requester>` | `OPEN` | held while the requester's grant for the target is open |
//! | revoked role | `ROLES` | `ROLE#<role ARN>` | ledger `version` (bumped with every entry), revoker, and the `applied_marker`/`applied_version` of the policy last put |

use std::collections::HashMap;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{AttributeValue, Delete, Put, TransactWriteItem, Update};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::cursor::Position;
use super::{
    AppliedPolicy, Cause, Created, Cursor, DUE_SHARDS, GrantStore, Idempotency, LedgerHead, Page,
    PageRequest, RoleLedger, StoreError, audit_sort_key, days_between, due_shard,
};
use crate::audit::AuditRecord;
use crate::clock::Timestamp;
use crate::domain::{
    Change, Creation, Grant, GrantId, GrantState, RevocationEntry, RoleArn, TargetId, TargetRole,
    UserId,
};

type Item = HashMap<String, AttributeValue>;

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
    /// Pending requests per target, by creation time; sparse: only pending items carry it.
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

const GRANT_SK: &str = "GRANT";
const IDEM_SK: &str = "IDEM";
const OPEN_SK: &str = "OPEN";
/// The partition of the revoked-roles registry: written only by transitions that add a ledger
/// entry (revocations, expiries with live sessions) and by reconciles, never by every write.
const ROLES_PK: &str = "ROLES";

fn role_sk(role: &RoleArn) -> String {
    format!("ROLE#{role}")
}

/// A revoked-roles registry item as stored.
#[derive(Debug, Deserialize)]
struct RegistryItem {
    role_arn: RoleArn,
    #[serde(default)]
    revoker_role_arn: Option<RoleArn>,
    version: u64,
    #[serde(default)]
    applied_marker: Option<String>,
    #[serde(default)]
    applied_version: Option<u64>,
}

impl RegistryItem {
    fn head(self) -> LedgerHead {
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

fn grant_pk(id: &GrantId) -> String {
    format!("GRANT#{id}")
}

fn audit_sk(seq: u64) -> String {
    format!("AUDIT#{seq:010}")
}

fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

fn n(value: impl ToString) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

/// The grants, audit trail and revocation ledger in one DynamoDB table.
#[derive(Debug, Clone)]
pub struct DynamoStore {
    client: Client,
    table: String,
}

impl DynamoStore {
    /// A store over `table`, using `client` (built once per Lambda instance).
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    fn to_item<T: Serialize>(&self, value: &T, key: &str) -> Result<Item, StoreError> {
        serde_dynamo::to_item(value).map_err(|e| StoreError::Corrupt {
            key: key.to_owned(),
            why: e.to_string(),
        })
    }

    fn grant_item(&self, grant: &Grant) -> Result<Item, StoreError> {
        let pk = grant_pk(&grant.id);
        let mut item = self.to_item(grant, &pk)?;
        item.insert(TableLayout::PARTITION_KEY.into(), s(pk));
        item.insert(TableLayout::SORT_KEY.into(), s(GRANT_SK));
        item.insert(
            TableLayout::BY_REQUESTER.partition_key.into(),
            s(format!("USER#{}", grant.requester)),
        );
        if grant.state == GrantState::Pending {
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

    fn audit_item(&self, record: &AuditRecord) -> Result<Item, StoreError> {
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

    fn revocation_key(entry: &RevocationEntry) -> Item {
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

    fn open_slot_pk(grant: &Grant) -> String {
        format!("OPEN#{}#{}", grant.target, grant.requester)
    }

    fn idempotency_key(idem: &Idempotency) -> Item {
        HashMap::from([
            (
                TableLayout::PARTITION_KEY.into(),
                s(format!("IDEM#{}#{}", idem.key.as_str(), idem.caller)),
            ),
            (TableLayout::SORT_KEY.into(), s(IDEM_SK)),
        ])
    }

    /// A transaction item that puts `item`, if `condition` (with its `#name` and `:value`
    /// placeholders) holds.
    fn put(
        &self,
        item: Item,
        condition: Option<&str>,
        names: &[(&str, &str)],
        values: &[(&str, AttributeValue)],
    ) -> Result<TransactWriteItem, StoreError> {
        let names: HashMap<String, String> = names
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let values: Item = values
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect();
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .set_condition_expression(condition.map(str::to_owned))
            .set_expression_attribute_names((!names.is_empty()).then_some(names))
            .set_expression_attribute_values((!values.is_empty()).then_some(values))
            .build()
            .map_err(build_error)?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    /// A transaction item that bumps the version of `entry`'s role in the registry (creating
    /// its item on the first entry), so a reconcile that read the ledger before this entry
    /// cannot record its policy as current.
    fn bump_ledger(&self, entry: &RevocationEntry) -> Result<TransactWriteItem, StoreError> {
        let mut expression = "ADD #version :one SET role_arn = :role".to_owned();
        let mut update = Update::builder()
            .table_name(&self.table)
            .key(TableLayout::PARTITION_KEY, s(ROLES_PK))
            .key(TableLayout::SORT_KEY, s(role_sk(&entry.role_arn)))
            .expression_attribute_names("#version", "version")
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":role", s(entry.role_arn.as_str()));
        match &entry.revoker_role_arn {
            Some(revoker) => {
                expression.push_str(", revoker_role_arn = :revoker");
                update = update.expression_attribute_values(":revoker", s(revoker.as_str()));
            }
            None => expression.push_str(" REMOVE revoker_role_arn"),
        }
        let update = update
            .update_expression(expression)
            .build()
            .map_err(build_error)?;
        Ok(TransactWriteItem::builder().update(update).build())
    }

    /// Runs one transaction; on cancellation, the code of each item's refusal (`None` where
    /// that item was fine).
    async fn transact(
        &self,
        items: Vec<TransactWriteItem>,
    ) -> Result<Result<(), Vec<Option<String>>>, StoreError> {
        match self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await
        {
            Ok(_) => Ok(Ok(())),
            Err(SdkError::ServiceError(e))
                if matches!(
                    e.err(),
                    TransactWriteItemsError::TransactionCanceledException(_)
                ) =>
            {
                let reasons = match e.err() {
                    TransactWriteItemsError::TransactionCanceledException(c) => c
                        .cancellation_reasons()
                        .iter()
                        .map(|r| r.code().filter(|c| *c != "None").map(str::to_owned))
                        .collect(),
                    _ => Vec::new(),
                };
                Ok(Err(reasons))
            }
            Err(e) => Err(sdk_error(e)),
        }
    }

    async fn get_item(&self, pk: String, sk: &str) -> Result<Option<Item>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(TableLayout::PARTITION_KEY, s(pk))
            .key(TableLayout::SORT_KEY, s(sk))
            .consistent_read(true)
            .send()
            .await
            .map_err(sdk_error)?;
        Ok(out.item)
    }

    /// Queries one partition, following DynamoDB's own pages until `limit` items are in hand.
    async fn query_partition<T: DeserializeOwned>(
        &self,
        query: PartitionQuery,
        limit: u32,
    ) -> Result<(Vec<T>, Option<Item>), StoreError> {
        let mut items = Vec::new();
        let mut start = query.start;
        let mut last_item = None;
        loop {
            let remaining = limit.saturating_sub(u32::try_from(items.len()).unwrap_or(u32::MAX));
            let mut names = HashMap::from([("#pk".to_owned(), query.key.0.to_owned())]);
            let mut values = HashMap::from([(":pk".to_owned(), s(query.key.1.clone()))]);
            let mut condition = "#pk = :pk".to_owned();
            if let Some(range) = &query.range {
                names.insert("#rk".into(), range.attribute.to_owned());
                values.extend(
                    range
                        .values
                        .iter()
                        .map(|(k, v)| ((*k).to_owned(), v.clone())),
                );
                condition.push_str(" AND ");
                condition.push_str(range.condition);
            }
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .set_index_name(query.index.map(str::to_owned))
                .key_condition_expression(condition)
                .set_expression_attribute_names(Some(names))
                .set_expression_attribute_values(Some(values))
                .scan_index_forward(query.forward)
                .consistent_read(query.index.is_none())
                .limit(i32::try_from(remaining).unwrap_or(i32::MAX))
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(sdk_error)?;
            for raw in out.items.unwrap_or_default() {
                let value = serde_dynamo::from_item(raw.clone()).map_err(|e| corrupt(&raw, e))?;
                items.push(value);
                last_item = Some(raw);
            }
            match out.last_evaluated_key {
                Some(lek) if (items.len() as u64) < u64::from(limit) => start = Some(lek),
                _ => break,
            }
        }
        let full = items.len() as u64 == u64::from(limit);
        Ok((items, last_item.filter(|_| full)))
    }
}

/// A query over one partition of the table or an index.
struct PartitionQuery {
    index: Option<&'static str>,
    key: (&'static str, String),
    range: Option<SortCondition>,
    forward: bool,
    start: Option<Item>,
}

/// A sort-key condition, written with `#rk` for the attribute and its own `:value` names.
struct SortCondition {
    attribute: &'static str,
    condition: &'static str,
    values: Vec<(&'static str, AttributeValue)>,
}

impl SortCondition {
    fn new(
        attribute: &'static str,
        condition: &'static str,
        values: Vec<(&'static str, AttributeValue)>,
    ) -> Option<Self> {
        Some(Self {
            attribute,
            condition,
            values,
        })
    }
}

/// Error codes DynamoDB answers for passing conditions: load, throttling, its own faults.
const TRANSIENT_CODES: [&str; 7] = [
    "ProvisionedThroughputExceededException",
    "ThrottlingException",
    "RequestLimitExceeded",
    "InternalServerError",
    "ServiceUnavailable",
    "TransactionInProgressException",
    "LimitExceededException",
];

/// An SDK error, classified: what retrying can fix (unreachable, timed out, throttled, a 5xx)
/// is `Unavailable`; anything else (access denied, no such table, a malformed request) is
/// `Refused`. The SDK error is kept as the source.
fn sdk_error<E>(e: SdkError<E, aws_sdk_dynamodb::config::http::HttpResponse>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let text = DisplayErrorContext(&e).to_string();
    let (code, transient) = match &e {
        SdkError::ServiceError(service) => {
            let code = service.err().code().map(str::to_owned);
            let status = service.raw().status().as_u16();
            let transient = status >= 500
                || code
                    .as_deref()
                    .is_some_and(|c| TRANSIENT_CODES.contains(&c));
            (code, transient)
        }
        SdkError::ConstructionFailure(_) => (None, false),
        _ => (None, true),
    };
    let cause = Cause::new(code.as_deref(), text, e);
    if transient {
        StoreError::Unavailable { cause }
    } else {
        StoreError::Refused { cause }
    }
}

/// A request this adapter could not even build: a bug, never worth a retry.
fn build_error(e: aws_sdk_dynamodb::error::BuildError) -> StoreError {
    StoreError::Refused {
        cause: Cause::new(None, e.to_string(), e),
    }
}

/// A cancelled transaction whose reasons are not the version checks this adapter expects.
fn cancelled(refusals: &[Option<String>]) -> StoreError {
    let passing = refusals.iter().flatten().all(|c| {
        c == "ThrottlingError" || c == "TransactionConflict" || c == "ConditionalCheckFailed"
    });
    let cause = Cause::message(format!("transaction cancelled: {refusals:?}"));
    if passing {
        StoreError::Unavailable { cause }
    } else {
        StoreError::Refused { cause }
    }
}

fn corrupt(item: &Item, e: serde_dynamo::Error) -> StoreError {
    let key = |k: &str| match item.get(k) {
        Some(AttributeValue::S(v)) => v.clone(),
        _ => "?".to_owned(),
    };
    StoreError::Corrupt {
        key: format!(
            "{}/{}",
            key(TableLayout::PARTITION_KEY),
            key(TableLayout::SORT_KEY)
        ),
        why: e.to_string(),
    }
}

/// The exclusive start key for a grant index, rebuilt from a cursor's position.
fn grant_index_start(
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

fn last_created(item: Option<Item>) -> Result<Option<Cursor>, StoreError> {
    item.map(|raw| {
        let g: Grant = serde_dynamo::from_item(raw.clone()).map_err(|e| corrupt(&raw, e))?;
        Ok(Cursor::encode(&Position::Created {
            at: g.created_at,
            id: g.id,
        }))
    })
    .transpose()
}

impl DynamoStore {
    /// One page of the grants in `partition` of an index sorted by creation time, oldest
    /// first when `forward`; the cursor holds a position, the key is rebuilt here.
    async fn list_by_creation(
        &self,
        index: IndexLayout,
        partition: String,
        forward: bool,
        page: &PageRequest,
    ) -> Result<Page<Grant>, StoreError> {
        let start = Position::created(page.cursor.as_ref())?
            .map(|(at, id)| grant_index_start(index, &partition, n(at.unix_seconds()), &id));
        let query = PartitionQuery {
            index: Some(index.name),
            key: (index.partition_key, partition),
            range: None,
            forward,
            start,
        };
        let (items, last) = self.query_partition(query, page.clamped_limit()).await?;
        Ok(Page {
            items,
            next: last_created(last)?,
        })
    }
}

impl GrantStore for DynamoStore {
    async fn create(
        &self,
        creation: &Creation,
        idempotency: Option<&Idempotency>,
    ) -> Result<Created, StoreError> {
        let grant = creation.grant();
        let mut items = vec![
            self.put(
                self.grant_item(grant)?,
                Some("attribute_not_exists(pk)"),
                &[],
                &[],
            )?,
            self.put(
                self.audit_item(creation.audit())?,
                Some("attribute_not_exists(pk)"),
                &[],
                &[],
            )?,
            self.put(
                HashMap::from([
                    (
                        TableLayout::PARTITION_KEY.into(),
                        s(Self::open_slot_pk(grant)),
                    ),
                    (TableLayout::SORT_KEY.into(), s(OPEN_SK)),
                    ("grant_id".into(), s(grant.id.as_str())),
                ]),
                Some("attribute_not_exists(pk)"),
                &[],
                &[],
            )?,
        ];
        if let Some(idem) = idempotency {
            let mut item = Self::idempotency_key(idem);
            item.insert("grant_id".into(), s(grant.id.as_str()));
            item.insert("fingerprint".into(), s(&idem.fingerprint));
            item.insert(
                TableLayout::TTL_ATTRIBUTE.into(),
                n(idem.expires_at.unix_seconds()),
            );
            // An expired key that TTL has not deleted yet (it can take days) is free again.
            items.push(self.put(
                item,
                Some("attribute_not_exists(pk) OR #expires <= :now"),
                &[("#expires", TableLayout::TTL_ATTRIBUTE)],
                &[(":now", n(idem.now.unix_seconds()))],
            )?);
        }
        let refusals = match self.transact(items).await? {
            Ok(()) => return Ok(Created::New(grant.clone())),
            Err(refusals) => refusals,
        };
        let refused = |i: usize| refusals.get(i).and_then(Option::as_deref);
        if let (Some(idem), Some("ConditionalCheckFailed")) = (idempotency, refused(3)) {
            return self.replay(idem).await;
        }
        if refused(0) == Some("ConditionalCheckFailed") {
            return Err(StoreError::AlreadyExists {
                id: grant.id.clone(),
            });
        }
        if refused(2) == Some("ConditionalCheckFailed") {
            return Err(self.already_open(grant).await);
        }
        Err(cancelled(&refusals))
    }

    async fn get(&self, id: &GrantId) -> Result<Option<Grant>, StoreError> {
        self.get_item(grant_pk(id), GRANT_SK)
            .await?
            .map(|raw| serde_dynamo::from_item(raw.clone()).map_err(|e| corrupt(&raw, e)))
            .transpose()
    }

    async fn commit(&self, change: &Change) -> Result<(), StoreError> {
        let grant = change.grant();
        let mut items = vec![
            self.put(
                self.grant_item(grant)?,
                Some("#version = :expected"),
                &[("#version", "version")],
                &[(":expected", n(change.expected_version()))],
            )?,
            self.put(
                self.audit_item(change.audit())?,
                Some("attribute_not_exists(pk)"),
                &[],
                &[],
            )?,
        ];
        if let Some(entry) = change.revocation() {
            let mut item = self.to_item(entry, "revocation")?;
            item.extend(Self::revocation_key(entry));
            items.push(self.put(item, None, &[], &[])?);
            items.push(self.bump_ledger(entry)?);
        }
        if change.closes() {
            // Release the requester's slot for the target, if this grant holds it.
            let delete = Delete::builder()
                .table_name(&self.table)
                .key(TableLayout::PARTITION_KEY, s(Self::open_slot_pk(grant)))
                .key(TableLayout::SORT_KEY, s(OPEN_SK))
                .condition_expression("attribute_not_exists(pk) OR grant_id = :id")
                .expression_attribute_values(":id", s(grant.id.as_str()))
                .build()
                .map_err(build_error)?;
            items.push(TransactWriteItem::builder().delete(delete).build());
        }
        match self.transact(items).await? {
            Ok(()) => Ok(()),
            // A stale version, a taken chain position, or a transaction racing ours on the same
            // grant: all mean someone else changed it first.
            Err(refusals)
                if refusals.iter().flatten().all(|code| {
                    code == "ConditionalCheckFailed" || code == "TransactionConflict"
                }) =>
            {
                Err(StoreError::Conflict {
                    id: grant.id.clone(),
                })
            }
            Err(refusals) => Err(cancelled(&refusals)),
        }
    }

    async fn list_by_requester(
        &self,
        requester: &UserId,
        page: &PageRequest,
    ) -> Result<Page<Grant>, StoreError> {
        let partition = format!("USER#{requester}");
        self.list_by_creation(TableLayout::BY_REQUESTER, partition, false, page)
            .await
    }

    async fn list_pending_for_target(
        &self,
        target: &TargetId,
        page: &PageRequest,
    ) -> Result<Page<Grant>, StoreError> {
        let partition = format!("TARGET#{target}");
        self.list_by_creation(TableLayout::PENDING_BY_TARGET, partition, true, page)
            .await
    }

    async fn list_due(
        &self,
        before: Timestamp,
        page: &PageRequest,
    ) -> Result<Page<Grant>, StoreError> {
        let index = TableLayout::DUE;
        let limit = page.clamped_limit();
        let resume = Position::due(page.cursor.as_ref())?;
        let first_shard = resume.as_ref().map_or(0, |(shard, _, _)| *shard);
        let mut items: Vec<Grant> = Vec::new();
        for shard in first_shard..DUE_SHARDS {
            let partition = format!("DUE#{shard}");
            let start = resume
                .as_ref()
                .filter(|(s, _, _)| *s == shard)
                .map(|(_, at, id)| grant_index_start(index, &partition, n(at.unix_seconds()), id));
            let query = PartitionQuery {
                index: Some(index.name),
                key: (index.partition_key, partition),
                range: SortCondition::new(
                    index.sort_key.0,
                    "#rk <= :before",
                    vec![(":before", n(before.unix_seconds()))],
                ),
                forward: true,
                start,
            };
            let want = limit.saturating_sub(u32::try_from(items.len()).unwrap_or(u32::MAX));
            let (found, _) = self.query_partition::<Grant>(query, want).await?;
            items.extend(found);
            if items.len() as u64 == u64::from(limit) {
                let next = items.last().and_then(|g| {
                    g.due_at().map(|at| {
                        Cursor::encode(&Position::Due {
                            shard,
                            at,
                            id: g.id.clone(),
                        })
                    })
                });
                return Ok(Page { items, next });
            }
        }
        Ok(Page { items, next: None })
    }

    async fn audit_of_grant(
        &self,
        id: &GrantId,
        page: &PageRequest,
    ) -> Result<Page<AuditRecord>, StoreError> {
        let after = Position::chain(page.cursor.as_ref())?;
        let pk = grant_pk(id);
        let start = after.map(|seq| {
            HashMap::from([
                (TableLayout::PARTITION_KEY.to_owned(), s(&pk)),
                (TableLayout::SORT_KEY.to_owned(), s(audit_sk(seq))),
            ])
        });
        let query = PartitionQuery {
            index: None,
            key: (TableLayout::PARTITION_KEY, pk),
            range: SortCondition::new(
                TableLayout::SORT_KEY,
                "begins_with(#rk, :prefix)",
                vec![(":prefix", s("AUDIT#"))],
            ),
            forward: true,
            start,
        };
        let (items, last) = self
            .query_partition::<AuditRecord>(query, page.clamped_limit())
            .await?;
        let next = last
            .and(items.last())
            .map(|r| Cursor::encode(&Position::Chain { seq: r.seq }));
        Ok(Page { items, next })
    }

    async fn audit_between(
        &self,
        from: Timestamp,
        to: Timestamp,
        page: &PageRequest,
    ) -> Result<Page<AuditRecord>, StoreError> {
        let index = TableLayout::AUDIT_BY_DAY;
        let limit = page.clamped_limit();
        let after = Position::audit(page.cursor.as_ref())?;
        let resume = match &after {
            Some(key) => Some(parse_audit_key(key).ok_or(StoreError::BadCursor)?),
            None => None,
        };
        let lo = format!("{:012}", from.unix_seconds().max(0));
        // `~` sorts after every digit and `#`, so this bound includes the whole last second.
        let hi = format!("{:012}~", to.unix_seconds().saturating_sub(1).max(0));
        let mut items: Vec<AuditRecord> = Vec::new();
        for day in days_between(from, to) {
            let day_name = day.utc_day();
            if resume
                .as_ref()
                .is_some_and(|(at, _, _)| at.utc_day() > day_name)
            {
                continue;
            }
            let partition = format!("AUDIT#{day_name}");
            let start = match (&after, &resume) {
                (Some(key), Some((at, id, seq))) if at.utc_day() == day_name => {
                    Some(HashMap::from([
                        (index.partition_key.to_owned(), s(&partition)),
                        (index.sort_key.0.to_owned(), s(key)),
                        (TableLayout::PARTITION_KEY.to_owned(), s(grant_pk(id))),
                        (TableLayout::SORT_KEY.to_owned(), s(audit_sk(*seq))),
                    ]))
                }
                _ => None,
            };
            let query = PartitionQuery {
                index: Some(index.name),
                key: (index.partition_key, partition),
                range: SortCondition::new(
                    index.sort_key.0,
                    "#rk BETWEEN :lo AND :hi",
                    vec![(":lo", s(&lo)), (":hi", s(&hi))],
                ),
                forward: true,
                start,
            };
            let want = limit.saturating_sub(u32::try_from(items.len()).unwrap_or(u32::MAX));
            let (found, _) = self.query_partition::<AuditRecord>(query, want).await?;
            items.extend(found);
            if items.len() as u64 == u64::from(limit) {
                let next = items.last().map(|r| {
                    Cursor::encode(&Position::Audit {
                        key: audit_sort_key(r),
                    })
                });
                return Ok(Page { items, next });
            }
        }
        Ok(Page { items, next: None })
    }

    async fn revoked_roles(&self) -> Result<Vec<LedgerHead>, StoreError> {
        let mut heads = Vec::new();
        let mut start = None;
        loop {
            let query = PartitionQuery {
                index: None,
                key: (TableLayout::PARTITION_KEY, ROLES_PK.to_owned()),
                range: None,
                forward: true,
                start: start.take(),
            };
            let (page, last): (Vec<RegistryItem>, _) =
                self.query_partition(query, PageRequest::MAX_LIMIT).await?;
            heads.extend(page.into_iter().map(RegistryItem::head));
            match (last, heads.last()) {
                (Some(_), Some(head)) => {
                    start = Some(HashMap::from([
                        (TableLayout::PARTITION_KEY.to_owned(), s(ROLES_PK)),
                        (
                            TableLayout::SORT_KEY.to_owned(),
                            s(role_sk(&head.role.role_arn)),
                        ),
                    ]));
                }
                _ => return Ok(heads),
            }
        }
    }

    async fn role_ledger(&self, role: &RoleArn) -> Result<RoleLedger, StoreError> {
        // The version first: a transaction it counts has fully committed, so the entries
        // queried next include every entry that version stands for.
        let head = self
            .get_item(ROLES_PK.to_owned(), &role_sk(role))
            .await?
            .map(|raw| {
                serde_dynamo::from_item::<_, RegistryItem>(raw.clone())
                    .map(RegistryItem::head)
                    .map_err(|e| corrupt(&raw, e))
            })
            .transpose()?;
        let mut entries = Vec::new();
        let mut start = None;
        loop {
            let query = PartitionQuery {
                index: None,
                key: (TableLayout::PARTITION_KEY, format!("ROLE#{role}")),
                range: SortCondition::new(
                    TableLayout::SORT_KEY,
                    "begins_with(#rk, :prefix)",
                    vec![(":prefix", s("REVOKED#"))],
                ),
                forward: true,
                start: start.take(),
            };
            let (page, last): (Vec<RevocationEntry>, _) =
                self.query_partition(query, PageRequest::MAX_LIMIT).await?;
            entries.extend(page);
            match (last, entries.last()) {
                (Some(_), Some(entry)) => start = Some(Self::revocation_key(entry)),
                _ => break,
            }
        }
        Ok(RoleLedger {
            version: head.as_ref().map_or(0, |h| h.version),
            applied: head.and_then(|h| h.applied),
            entries,
        })
    }

    async fn remove_revocation(&self, entry: &RevocationEntry) -> Result<(), StoreError> {
        let delete = Delete::builder()
            .table_name(&self.table)
            .set_key(Some(Self::revocation_key(entry)))
            .condition_expression("#until = :until")
            .expression_attribute_names("#until", "until")
            .expression_attribute_values(":until", n(entry.until.unix_seconds()))
            .build()
            .map_err(build_error)?;
        // One item, but through a transaction so a refused condition reads the same as
        // everywhere else; an entry changed since it was read simply stays.
        match self
            .transact(vec![TransactWriteItem::builder().delete(delete).build()])
            .await?
        {
            Ok(()) => Ok(()),
            Err(refusals)
                if refusals
                    .iter()
                    .flatten()
                    .all(|c| c == "ConditionalCheckFailed") =>
            {
                Ok(())
            }
            Err(refusals) => Err(cancelled(&refusals)),
        }
    }

    async fn record_applied(
        &self,
        role: &RoleArn,
        applied: &AppliedPolicy,
    ) -> Result<(), StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(TableLayout::PARTITION_KEY, s(ROLES_PK))
            .key(TableLayout::SORT_KEY, s(role_sk(role)))
            .update_expression("SET applied_marker = :marker, applied_version = :version")
            .condition_expression("#version = :version")
            .expression_attribute_names("#version", "version")
            .expression_attribute_values(":marker", s(applied.marker.as_str()))
            .expression_attribute_values(":version", n(applied.ledger_version))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(SdkError::ServiceError(e))
                if matches!(e.err(), UpdateItemError::ConditionalCheckFailedException(_)) =>
            {
                Err(StoreError::LedgerMoved { role: role.clone() })
            }
            Err(e) => Err(sdk_error(e)),
        }
    }
}

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
    async fn already_open(&self, grant: &Grant) -> StoreError {
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

    async fn replay(&self, idem: &Idempotency) -> Result<Created, StoreError> {
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

/// Splits an audit-index key back into time, grant and sequence.
fn parse_audit_key(key: &str) -> Option<(Timestamp, GrantId, u64)> {
    let mut parts = key.splitn(3, '#');
    let at = parts.next()?.parse().ok()?;
    let id = GrantId::parse(parts.next()?).ok()?;
    let seq = parts.next()?.parse().ok()?;
    Some((Timestamp::from_unix_seconds(at), id, seq))
}
