//! The revocation ledger on DynamoDB: the registry of revoked roles (`ROLES`), each role's
//! entries (`ROLE#<arn>` / `REVOKED#...`), pruning, and the applied marker ordered by the
//! ledger's version.

use std::collections::HashMap;

use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{Delete, TransactWriteItem};

use super::*;
use crate::domain::{RevocationEntry, RoleArn};
use crate::store::{AppliedPolicy, LedgerHead, PageRequest, RoleLedger, StoreError};

impl DynamoStore {
    pub(super) async fn read_revoked_roles(&self) -> Result<Vec<LedgerHead>, StoreError> {
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

    pub(super) async fn read_role_ledger(&self, role: &RoleArn) -> Result<RoleLedger, StoreError> {
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

    pub(super) async fn delete_revocation(
        &self,
        entry: &RevocationEntry,
    ) -> Result<(), StoreError> {
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
            Err(refusals) if only_conditions_failed(&refusals) => Ok(()),
            Err(refusals) => Err(cancelled(&refusals)),
        }
    }

    pub(super) async fn mark_applied(
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
