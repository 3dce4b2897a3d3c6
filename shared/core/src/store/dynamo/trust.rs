//! What the trust checks read and write: a grant with its chain in one query, chain heads for
//! exports, and the signed checkpoints.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes};

use super::*;
use crate::clock::Timestamp;
use crate::domain::audit::{AuditRecord, ChainHead};
use crate::domain::{Grant, GrantId};
use crate::store::StoreError;
use crate::trust::{Checkpoint, GrantHead};

/// The partition of the checkpoints, one item per period (`PERIOD#<start>`).
const CHECKPOINTS_PK: &str = "CHECKPOINTS";
/// The partition of a person's pseudonym in the audit bucket (`PSEUDONYM#<user>`), one item.
const PSEUDONYM_PREFIX: &str = "PSEUDONYM#";
const PSEUDONYM_SK: &str = "PSEUDONYM";
/// The longest checkpoint period: a day.
const LONGEST_PERIOD_SECS: i64 = 86_400;

fn period_sk(start: Timestamp) -> String {
    format!("PERIOD#{:012}", start.unix_seconds().max(0))
}

impl DynamoStore {
    pub(super) async fn read_evidence(
        &self,
        id: &GrantId,
    ) -> Result<Option<(Grant, Vec<AuditRecord>)>, StoreError> {
        let query = PartitionQuery {
            index: None,
            key: (TableLayout::PARTITION_KEY, grant_pk(id)),
            range: None,
            forward: true,
            start: None,
        };
        // The grant's item sorts after its `AUDIT#` records.
        let (items, _) = self.query_items(query, u32::MAX).await?;
        let mut grant = None;
        let mut records = Vec::new();
        for raw in items {
            match raw.get(TableLayout::SORT_KEY) {
                Some(AttributeValue::S(sk)) if sk == GRANT_SK => {
                    grant = Some(
                        serde_dynamo::from_item::<_, Grant>(raw.clone())
                            .map_err(|e| corrupt(&raw, e))?,
                    );
                }
                Some(AttributeValue::S(sk)) if sk.starts_with("AUDIT#") => records.push(
                    serde_dynamo::from_item::<_, AuditRecord>(raw.clone())
                        .map_err(|e| corrupt(&raw, e))?,
                ),
                _ => {}
            }
        }
        Ok(grant.map(|g| (g, records)))
    }

    pub(super) async fn read_heads(&self, ids: &[GrantId]) -> Result<Vec<GrantHead>, StoreError> {
        #[derive(serde::Deserialize)]
        struct Head {
            id: GrantId,
            audit_head: ChainHead,
        }
        let mut heads = Vec::new();
        for chunk in ids.chunks(100) {
            let keys: Vec<Item> = chunk
                .iter()
                .map(|id| {
                    HashMap::from([
                        (TableLayout::PARTITION_KEY.to_owned(), s(grant_pk(id))),
                        (TableLayout::SORT_KEY.to_owned(), s(GRANT_SK)),
                    ])
                })
                .collect();
            let mut request = Some(
                KeysAndAttributes::builder()
                    .set_keys(Some(keys))
                    .projection_expression("id, audit_head")
                    .consistent_read(true)
                    .build()
                    .map_err(build_error)?,
            );
            let mut attempt = 0_u32;
            while let Some(wanted) = request.take() {
                let out = self
                    .client
                    .batch_get_item()
                    .request_items(&self.table, wanted)
                    .send()
                    .await
                    .map_err(sdk_error)?;
                for raw in out
                    .responses
                    .and_then(|mut r| r.remove(&self.table))
                    .unwrap_or_default()
                {
                    let h: Head =
                        serde_dynamo::from_item(raw.clone()).map_err(|e| corrupt(&raw, e))?;
                    heads.push(GrantHead {
                        grant_id: h.id,
                        head: h.audit_head,
                    });
                }
                request = out
                    .unprocessed_keys
                    .and_then(|mut u| u.remove(&self.table))
                    .filter(|k| !k.keys().is_empty());
                if request.is_some() {
                    attempt += 1;
                    if attempt > 8 {
                        return Err(StoreError::unavailable(
                            "DynamoDB kept leaving chain heads unprocessed",
                        ));
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(10 << attempt.min(6)))
                        .await;
                }
            }
        }
        heads.sort_by(|a, b| a.grant_id.cmp(&b.grant_id));
        Ok(heads)
    }

    pub(super) async fn read_checkpoints(
        &self,
        range: Option<(Timestamp, Timestamp)>,
    ) -> Result<Vec<Checkpoint>, StoreError> {
        let (condition, forward, limit) = match range {
            Some((from, to)) => (
                SortCondition::new(
                    TableLayout::SORT_KEY,
                    "#rk BETWEEN :lo AND :hi",
                    vec![
                        (":lo", s(period_sk(from.plus_secs(-LONGEST_PERIOD_SECS)))),
                        (":hi", s(period_sk(to.plus_secs(-1)))),
                    ],
                ),
                true,
                u32::MAX,
            ),
            None => (None, false, 1),
        };
        let query = PartitionQuery {
            index: None,
            key: (TableLayout::PARTITION_KEY, CHECKPOINTS_PK.to_owned()),
            range: condition,
            forward,
            start: None,
        };
        let (found, _) = self.query_partition::<Checkpoint>(query, limit).await?;
        Ok(match range {
            Some((from, to)) => found
                .into_iter()
                .filter(|c| c.period_start < to && c.period_end > from)
                .collect(),
            None => found,
        })
    }

    /// The pseudonym item of `user`, made if missing (two sweeps racing agree: the loser reads
    /// the winner's).
    pub(super) async fn read_or_make_pseudonym(
        &self,
        user: &crate::domain::UserId,
    ) -> Result<String, StoreError> {
        let pk = format!("{PSEUDONYM_PREFIX}{user}");
        let read = |raw: Item| -> Result<String, StoreError> {
            match raw.get("pseudonym") {
                Some(AttributeValue::S(p)) => Ok(p.clone()),
                _ => Err(StoreError::unavailable(format!(
                    "the pseudonym item of a person has no pseudonym (`{PSEUDONYM_PREFIX}…`)"
                ))),
            }
        };
        if let Some(raw) = self.get_item(pk.clone(), PSEUDONYM_SK).await? {
            return read(raw);
        }
        let made = crate::archive::new_pseudonym()
            .ok_or_else(|| StoreError::unavailable("no random source for a pseudonym"))?;
        let item: Item = HashMap::from([
            (TableLayout::PARTITION_KEY.to_owned(), s(pk.clone())),
            (TableLayout::SORT_KEY.to_owned(), s(PSEUDONYM_SK)),
            ("pseudonym".to_owned(), s(made.clone())),
        ]);
        let put = self.put(item, Some("attribute_not_exists(pk)"), &[], &[])?;
        match self.transact(vec![put]).await? {
            Ok(()) => Ok(made),
            Err(refusals) if only_conditions_failed(&refusals) => {
                match self.get_item(pk, PSEUDONYM_SK).await? {
                    Some(raw) => read(raw),
                    None => Err(StoreError::unavailable(
                        "a person's pseudonym was made and removed at once",
                    )),
                }
            }
            Err(refusals) => Err(cancelled(&refusals)),
        }
    }

    pub(super) async fn write_checkpoint(&self, checkpoint: &Checkpoint) -> Result<(), StoreError> {
        let mut item = self.to_item(checkpoint, CHECKPOINTS_PK)?;
        item.insert(TableLayout::PARTITION_KEY.into(), s(CHECKPOINTS_PK));
        item.insert(
            TableLayout::SORT_KEY.into(),
            s(period_sk(checkpoint.period_start)),
        );
        let put = self.put(item, Some("attribute_not_exists(pk)"), &[], &[])?;
        match self.transact(vec![put]).await? {
            Ok(()) => Ok(()),
            Err(refusals) if only_conditions_failed(&refusals) => {
                Err(StoreError::CheckpointTaken {
                    seq: checkpoint.seq,
                })
            }
            Err(refusals) => Err(cancelled(&refusals)),
        }
    }
}
