//! The calls every operation is made of: a conditional put, one transaction, a consistent
//! read, and a query over one partition that follows DynamoDB's own pages.

use std::collections::HashMap;

use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem, Update};
use serde::de::DeserializeOwned;

use super::*;
use crate::domain::RevocationEntry;
use crate::store::StoreError;

impl DynamoStore {
    /// A transaction item that puts `item`, if `condition` (with its `#name` and `:value`
    /// placeholders) holds.
    pub(super) fn put(
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
    pub(super) fn bump_ledger(
        &self,
        entry: &RevocationEntry,
    ) -> Result<TransactWriteItem, StoreError> {
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
    pub(super) async fn transact(
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

    pub(super) async fn get_item(&self, pk: String, sk: &str) -> Result<Option<Item>, StoreError> {
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
    pub(super) async fn query_partition<T: DeserializeOwned>(
        &self,
        query: PartitionQuery,
        limit: u32,
    ) -> Result<(Vec<T>, Option<Item>), StoreError> {
        let (raw, last) = self.query_items(query, limit).await?;
        let items = raw
            .into_iter()
            .map(|raw| serde_dynamo::from_item(raw.clone()).map_err(|e| corrupt(&raw, e)))
            .collect::<Result<Vec<T>, _>>()?;
        Ok((items, last))
    }

    /// The raw items of a partition query, up to `limit`, and the last one when the limit was
    /// reached (where a next page would start).
    pub(super) async fn query_items(
        &self,
        query: PartitionQuery,
        limit: u32,
    ) -> Result<(Vec<Item>, Option<Item>), StoreError> {
        let mut items: Vec<Item> = Vec::new();
        let mut start = query.start;
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
            items.extend(out.items.unwrap_or_default());
            match out.last_evaluated_key {
                Some(lek) if (items.len() as u64) < u64::from(limit) => start = Some(lek),
                _ => break,
            }
        }
        let full = items.len() as u64 == u64::from(limit);
        let last = items.last().cloned().filter(|_| full);
        Ok((items, last))
    }
}

/// A query over one partition of the table or an index.
pub(super) struct PartitionQuery {
    pub(super) index: Option<&'static str>,
    pub(super) key: (&'static str, String),
    pub(super) range: Option<SortCondition>,
    pub(super) forward: bool,
    pub(super) start: Option<Item>,
}

/// A sort-key condition, written with `#rk` for the attribute and its own `:value` names.
pub(super) struct SortCondition {
    pub(super) attribute: &'static str,
    pub(super) condition: &'static str,
    pub(super) values: Vec<(&'static str, AttributeValue)>,
}

impl SortCondition {
    pub(super) fn new(
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
