//! The store port on DynamoDB: every write one conditional `TransactWriteItems`, every read
//! consistent where the table allows.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{Delete, TransactWriteItem};

use super::*;
use crate::clock::Timestamp;
use crate::domain::audit::AuditRecord;
use crate::domain::{Change, Creation, Grant, GrantId, RevocationEntry, RoleArn, TargetId, UserId};
use crate::store::Position;
use crate::store::{
    AppliedPolicy, Created, Cursor, DUE_SHARDS, GrantStore, Idempotency, LedgerHead, Page,
    PageRequest, RoleLedger, StoreError, audit_sort_key, days_between,
};
use crate::trust::{Checkpoint, GrantHead};

impl DynamoStore {
    /// One page of the grants in `partition` of an index sorted by creation time, oldest
    /// first when `forward`; the cursor holds a position, the key is rebuilt here.
    pub(super) async fn list_by_creation(
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

/// The attribute on an audit record's item naming the call that wrote it (outside the record
/// and its hash): how a write whose answer was lost is told from another caller's.
const WRITE_ID: &str = "write_id";

impl DynamoStore {
    /// `record`'s item, marked with `write_id`.
    fn marked_audit_item(&self, record: &AuditRecord, write_id: &str) -> Result<Item, StoreError> {
        let mut item = self.audit_item(record)?;
        item.insert(WRITE_ID.into(), s(write_id));
        Ok(item)
    }

    /// Whether this very call's write of `record` is stored (a strongly consistent read of the
    /// record's position): how a transaction carried out but whose answer was lost, and which
    /// the SDK then sent again and saw refused, is told from one that lost a race. A
    /// transaction is all or nothing, so the record being there means the whole change is.
    /// The requester's open slot for the grant's target, naming the grant.
    fn open_slot_item(grant: &Grant) -> super::layout::Item {
        HashMap::from([
            (
                TableLayout::PARTITION_KEY.into(),
                s(Self::open_slot_pk(grant)),
            ),
            (TableLayout::SORT_KEY.into(), s(OPEN_SK)),
            ("grant_id".into(), s(grant.id.as_str())),
        ])
    }

    async fn landed(&self, record: &AuditRecord, write_id: &str) -> Result<bool, StoreError> {
        let stored = self
            .get_item(grant_pk(&record.grant_id), &audit_sk(record.seq))
            .await?;
        let field = |name: &str| {
            stored
                .as_ref()
                .and_then(|item| item.get(name))
                .and_then(|v| v.as_s().ok())
                .cloned()
        };
        Ok(field(WRITE_ID).as_deref() == Some(write_id)
            && field("hash").as_deref() == Some(record.hash.as_str()))
    }
}

impl GrantStore for DynamoStore {
    async fn create(
        &self,
        creation: &Creation,
        idempotency: Option<&Idempotency>,
    ) -> Result<Created, StoreError> {
        let grant = creation.grant();
        let write_id = uuid::Uuid::now_v7().to_string();
        let mut items = vec![
            self.put(
                self.grant_item(grant)?,
                Some("attribute_not_exists(pk)"),
                &[],
                &[],
            )?,
            self.put(
                self.marked_audit_item(creation.audit(), &write_id)?,
                Some("attribute_not_exists(pk)"),
                &[],
                &[],
            )?,
            self.put(
                Self::open_slot_item(grant),
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
            // This call's own write, whose answer was lost and which the SDK sent again.
            if self.landed(creation.audit(), &write_id).await? {
                return Ok(Created::New(grant.clone()));
            }
            return Err(StoreError::AlreadyExists {
                id: grant.id.clone(),
            });
        }
        if refused(2) == Some("ConditionalCheckFailed") {
            return Err(self.already_open(grant).await);
        }
        Err(cancelled(&refusals))
    }

    async fn create_bundle(&self, creations: &[Creation]) -> Result<Vec<Grant>, StoreError> {
        let write_id = uuid::Uuid::now_v7().to_string();
        // Three items an item: the grant, its first record, the requester's open slot for its
        // target (20 targets: 60 of the transaction's 100).
        let mut items = Vec::with_capacity(creations.len() * 3);
        for creation in creations {
            let grant = creation.grant();
            items.push(self.put(
                self.grant_item(grant)?,
                Some("attribute_not_exists(pk)"),
                &[],
                &[],
            )?);
            items.push(self.put(
                self.marked_audit_item(creation.audit(), &write_id)?,
                Some("attribute_not_exists(pk)"),
                &[],
                &[],
            )?);
            items.push(self.put(
                Self::open_slot_item(grant),
                Some("attribute_not_exists(pk)"),
                &[],
                &[],
            )?);
        }
        let made = || creations.iter().map(|c| c.grant().clone()).collect();
        let refusals = match self.transact(items).await? {
            Ok(()) => return Ok(made()),
            Err(refusals) => refusals,
        };
        let failed =
            |i: usize| refusals.get(i).and_then(Option::as_deref) == Some("ConditionalCheckFailed");
        for (n, creation) in creations.iter().enumerate() {
            if failed(n * 3) {
                // This call's own write, whose answer was lost and which the SDK sent again.
                if self.landed(creation.audit(), &write_id).await? {
                    return Ok(made());
                }
                return Err(StoreError::AlreadyExists {
                    id: creation.grant().id.clone(),
                });
            }
            if failed(n * 3 + 2) {
                return Err(self.already_open(creation.grant()).await);
            }
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
        let write_id = uuid::Uuid::now_v7().to_string();
        let mut items = vec![
            self.put(
                self.grant_item(grant)?,
                Some("#version = :expected"),
                &[("#version", "version")],
                &[(":expected", n(change.expected_version()))],
            )?,
            self.put(
                self.marked_audit_item(change.audit(), &write_id)?,
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
                // The write that "lost" may be this very one: carried out, its answer lost,
                // and sent again by the SDK's retry.
                if self.landed(change.audit(), &write_id).await? {
                    return Ok(());
                }
                Err(StoreError::Conflict {
                    id: grant.id.clone(),
                })
            }
            Err(refusals) => Err(cancelled(&refusals)),
        }
    }

    async fn evidence(
        &self,
        id: &GrantId,
    ) -> Result<Option<(Grant, Vec<AuditRecord>)>, StoreError> {
        self.read_evidence(id).await
    }

    async fn heads(&self, ids: &[GrantId]) -> Result<Vec<GrantHead>, StoreError> {
        self.read_heads(ids).await
    }

    async fn latest_checkpoint(&self) -> Result<Option<Checkpoint>, StoreError> {
        Ok(self.read_checkpoints(None).await?.pop())
    }

    async fn checkpoints_between(
        &self,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<Checkpoint>, StoreError> {
        self.read_checkpoints(Some((from, to))).await
    }

    async fn put_checkpoint(&self, checkpoint: &Checkpoint) -> Result<(), StoreError> {
        self.write_checkpoint(checkpoint).await
    }

    async fn pseudonym(&self, user: &UserId) -> Result<String, StoreError> {
        self.read_or_make_pseudonym(user).await
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
        let query_of = |shard: u32| {
            let partition = format!("DUE#{shard}");
            let start = resume
                .as_ref()
                .filter(|(s, _, _)| *s == shard)
                .map(|(_, at, id)| grant_index_start(index, &partition, n(at.unix_seconds()), id));
            PartitionQuery {
                index: Some(index.name),
                key: (index.partition_key, partition),
                range: SortCondition::new(
                    index.sort_key.0,
                    "#rk <= :before",
                    vec![(":before", n(before.unix_seconds()))],
                ),
                forward: true,
                start,
            }
        };
        // A full page ends at its last item, in the shard it came from.
        let full = |items: Vec<Grant>, shard: u32| {
            let next = items.last().and_then(|g| {
                g.due_at().map(|at| {
                    Cursor::encode(&Position::Due {
                        shard,
                        at,
                        id: g.id.clone(),
                    })
                })
            });
            Page { items, next }
        };
        let room = usize::try_from(limit).unwrap_or(usize::MAX);
        // The shard the page starts in, alone: in a backlog, most pages fill up there and no
        // other shard is read for nothing.
        let (mut items, _) = self
            .query_partition::<Grant>(query_of(first_shard), limit)
            .await?;
        items.truncate(room);
        if items.len() == room {
            return Ok(full(items, first_shard));
        }
        // Then every later shard at once (one round trip, not seven in a row), each asked for
        // what the page still lacks; their items are taken in shard order, so the page and its
        // cursor are what querying them one after another would give.
        let want = u32::try_from(room - items.len()).unwrap_or(limit);
        let rest = ((first_shard + 1)..DUE_SHARDS).map(|shard| {
            let query = query_of(shard);
            async move { (shard, self.query_partition::<Grant>(query, want).await) }
        });
        for (shard, found) in futures::future::join_all(rest).await {
            let (found, _) = found?;
            let left = room.saturating_sub(items.len());
            items.extend(found.into_iter().take(left));
            if items.len() == room {
                return Ok(full(items, shard));
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
        self.read_revoked_roles().await
    }

    async fn role_ledger(&self, role: &RoleArn) -> Result<RoleLedger, StoreError> {
        self.read_role_ledger(role).await
    }

    async fn remove_revocation(&self, entry: &RevocationEntry) -> Result<(), StoreError> {
        self.delete_revocation(entry).await
    }

    async fn record_applied(
        &self,
        role: &RoleArn,
        applied: &AppliedPolicy,
    ) -> Result<(), StoreError> {
        self.mark_applied(role, applied).await
    }
}
