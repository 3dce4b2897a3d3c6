//! Activity items: `ACTIVITY#<grant>#<shard>` partitions holding `EVENT#<time>#<event id>`
//! items and one `COUNT` item each; unattributed events under `UNATTRIBUTED#<day>#<shard>`.

use aws_sdk_dynamodb::types::{AttributeValue, TransactWriteItem, Update};
use futures::future::try_join_all;

use super::*;
use crate::activity::{Activity, UnattributedEvent};
use crate::clock::Timestamp;
use crate::domain::GrantId;
use crate::store::adapter::Position;
use crate::store::{
    ACTIVITY_CAP_PER_SHARD, ACTIVITY_SHARDS, ActivityCount, ActivityStore, Cursor, EVENT_PREFIX,
    Page, PageRequest, REFUSED_WINDOW_MINUTES, Recorded, StoreError, activity_shard,
    activity_sort_key, event_sort_key,
};

/// The sort key of a shard's count item (sorts before every `EVENT#`).
const COUNT_SK: &str = "COUNT";

/// How long a minute's refusal counter is kept (the table's TTL removes it after).
const REFUSED_KEPT_SECS: i64 = 86_400;

fn refused_pk(grant: &GrantId) -> String {
    format!("ACTIVITY#{grant}#REFUSED")
}

fn minute_sk(minute: i64) -> String {
    format!("MINUTE#{:012}", minute.max(0))
}

fn activity_pk(grant: &GrantId, shard: u32) -> String {
    format!("ACTIVITY#{grant}#{shard}")
}

fn unattributed_pk(day: &str, shard: u32) -> String {
    format!("UNATTRIBUTED#{day}#{shard}")
}

impl DynamoStore {
    /// Puts `item` under `pk` and the event's sort key unless it is there, counting it on the
    /// shard's count item (which, for a grant, must be under the cap) in the same transaction.
    async fn put_event(
        &self,
        pk: String,
        sk: String,
        mut item: Item,
        capped: bool,
    ) -> Result<Recorded, StoreError> {
        item.insert(TableLayout::PARTITION_KEY.into(), s(pk.clone()));
        item.insert(TableLayout::SORT_KEY.into(), s(sk));
        let put = self.put(item, Some("attribute_not_exists(pk)"), &[], &[])?;
        let count = self.count_item(&pk, "stored", capped)?;
        match self.transact(vec![put, count]).await? {
            Ok(()) => Ok(Recorded::Stored),
            Err(refusals) => match refusals.as_slice() {
                [Some(code), ..] if code == "ConditionalCheckFailed" => Ok(Recorded::AlreadyStored),
                [None, Some(code)] if code == "ConditionalCheckFailed" => {
                    let over = self.count_item(&pk, "over_cap", false)?;
                    match self.transact(vec![over]).await? {
                        Ok(()) => Ok(Recorded::OverCap),
                        Err(refusals) => Err(cancelled(&refusals)),
                    }
                }
                _ => Err(cancelled(&refusals)),
            },
        }
    }

    /// Adds one to `attribute` of `pk`'s count item; with `capped`, only while `stored` is
    /// under the cap.
    fn count_item(
        &self,
        pk: &str,
        attribute: &str,
        capped: bool,
    ) -> Result<TransactWriteItem, StoreError> {
        let mut update = Update::builder()
            .table_name(&self.table)
            .key(TableLayout::PARTITION_KEY, s(pk))
            .key(TableLayout::SORT_KEY, s(COUNT_SK))
            .update_expression("ADD #count :one")
            .expression_attribute_names("#count", attribute)
            .expression_attribute_values(":one", n(1));
        if capped {
            update = update
                .condition_expression("attribute_not_exists(#count) OR #count < :cap")
                .expression_attribute_values(":cap", n(ACTIVITY_CAP_PER_SHARD));
        }
        Ok(TransactWriteItem::builder()
            .update(update.build().map_err(build_error)?)
            .build())
    }

    /// Up to `limit` items after `after` from each of `pks`, merged by sort key: the page and
    /// the cursor a single ordered query would give.
    async fn merged_page<T: serde::de::DeserializeOwned>(
        &self,
        pks: Vec<String>,
        page: &PageRequest,
    ) -> Result<Page<T>, StoreError> {
        let after = Position::activity(page.cursor.as_ref())?;
        let limit = page.clamped_limit();
        let queries = pks.into_iter().map(|pk| {
            let after = after.clone().unwrap_or_else(|| EVENT_PREFIX.to_owned());
            async move {
                let query = PartitionQuery {
                    index: None,
                    key: (TableLayout::PARTITION_KEY, pk),
                    range: SortCondition::new(
                        TableLayout::SORT_KEY,
                        "#rk > :after",
                        vec![(":after", s(after))],
                    ),
                    forward: true,
                    start: None,
                };
                self.query_items(query, limit).await
            }
        });
        let mut found: Vec<(String, Item)> = Vec::new();
        for (items, _) in try_join_all(queries).await? {
            for item in items {
                if let Some(AttributeValue::S(sk)) = item.get(TableLayout::SORT_KEY) {
                    found.push((sk.clone(), item));
                }
            }
        }
        found.sort_by(|a, b| a.0.cmp(&b.0));
        found.truncate(limit as usize);
        let full = found.len() == limit as usize;
        let next = found
            .last()
            .filter(|_| full)
            .map(|(key, _)| Cursor::encode(&Position::Activity { key: key.clone() }));
        let items = found
            .into_iter()
            .map(|(_, raw)| serde_dynamo::from_item(raw.clone()).map_err(|e| corrupt(&raw, e)))
            .collect::<Result<Vec<T>, _>>()?;
        Ok(Page { items, next })
    }
}

impl ActivityStore for DynamoStore {
    async fn record_activity(
        &self,
        grant: &GrantId,
        activity: &Activity,
    ) -> Result<Recorded, StoreError> {
        let pk = activity_pk(grant, activity_shard(&activity.event_id));
        let item = self.to_item(activity, &pk)?;
        self.put_event(pk, activity_sort_key(activity), item, true)
            .await
    }

    async fn record_unattributed(&self, event: &UnattributedEvent) -> Result<Recorded, StoreError> {
        let day = event.activity.time.utc_day();
        let pk = unattributed_pk(&day, activity_shard(&event.activity.event_id));
        let item = self.to_item(event, &pk)?;
        self.put_event(pk, activity_sort_key(&event.activity), item, false)
            .await
    }

    async fn activity_of_grant(
        &self,
        grant: &GrantId,
        page: &PageRequest,
    ) -> Result<Page<Activity>, StoreError> {
        let pks = (0..ACTIVITY_SHARDS)
            .map(|shard| activity_pk(grant, shard))
            .collect();
        self.merged_page(pks, page).await
    }

    async fn activity_count(&self, grant: &GrantId) -> Result<ActivityCount, StoreError> {
        #[derive(serde::Deserialize)]
        struct Count {
            #[serde(default)]
            stored: u64,
            #[serde(default)]
            over_cap: u64,
        }
        let reads =
            (0..ACTIVITY_SHARDS).map(|shard| self.get_item(activity_pk(grant, shard), COUNT_SK));
        let mut total = ActivityCount::default();
        for raw in try_join_all(reads).await?.into_iter().flatten() {
            let c: Count = serde_dynamo::from_item(raw.clone()).map_err(|e| corrupt(&raw, e))?;
            total.stored += c.stored;
            total.over_cap += c.over_cap;
        }
        Ok(total)
    }

    async fn activity_event(
        &self,
        grant: &GrantId,
        time: Timestamp,
        event_id: &str,
    ) -> Result<Option<Activity>, StoreError> {
        let pk = activity_pk(grant, activity_shard(event_id));
        match self.get_item(pk, &event_sort_key(time, event_id)).await? {
            None => Ok(None),
            Some(raw) => serde_dynamo::from_item(raw.clone())
                .map(Some)
                .map_err(|e| corrupt(&raw, e)),
        }
    }

    async fn refused_recently(
        &self,
        grant: &GrantId,
        at: Timestamp,
        count_one: bool,
    ) -> Result<u32, StoreError> {
        let minute = at.unix_seconds().div_euclid(60);
        if count_one {
            self.client
                .update_item()
                .table_name(&self.table)
                .key(TableLayout::PARTITION_KEY, s(refused_pk(grant)))
                .key(TableLayout::SORT_KEY, s(minute_sk(minute)))
                .update_expression("ADD refused :one SET #ttl = :expires")
                .expression_attribute_names("#ttl", TableLayout::TTL_ATTRIBUTE)
                .expression_attribute_values(":one", n(1))
                .expression_attribute_values(":expires", n(minute * 60 + REFUSED_KEPT_SECS))
                .send()
                .await
                .map_err(sdk_error)?;
        }
        let query = PartitionQuery {
            index: None,
            key: (TableLayout::PARTITION_KEY, refused_pk(grant)),
            range: SortCondition::new(
                TableLayout::SORT_KEY,
                "#rk BETWEEN :from AND :to",
                vec![
                    (":from", s(minute_sk(minute - (REFUSED_WINDOW_MINUTES - 1)))),
                    (":to", s(minute_sk(minute))),
                ],
            ),
            forward: true,
            start: None,
        };
        #[derive(serde::Deserialize)]
        struct Minute {
            #[serde(default)]
            refused: u32,
        }
        let window = u32::try_from(REFUSED_WINDOW_MINUTES).unwrap_or(5);
        let (minutes, _) = self.query_partition::<Minute>(query, window).await?;
        Ok(minutes.iter().map(|m| m.refused).sum())
    }

    async fn unattributed_on(
        &self,
        day: &str,
        page: &PageRequest,
    ) -> Result<Page<UnattributedEvent>, StoreError> {
        let pks = (0..ACTIVITY_SHARDS)
            .map(|shard| unattributed_pk(day, shard))
            .collect();
        self.merged_page(pks, page).await
    }
}
