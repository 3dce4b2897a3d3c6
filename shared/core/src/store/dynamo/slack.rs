//! What approvals in Slack keep: one-time link codes (`SLACKCODE#<digest>`), links
//! (`SLACKLINK#<team>#<user>`) and the groups last seen on an authenticated call (`SEEN#<sub>`),
//! both signed by intake; seen interaction signatures (`SLACKREPLAY#<digest>`); and where each
//! request's message is (`SLACKMSG#<grant>`, the first item's for a request of several
//! targets), claimed before it is posted; and clicks handed to the web page
//! (`SLACKVIEW#<digest>`), opened once.

use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::delete_item::DeleteItemError;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::*;
use crate::clock::Timestamp;
use crate::domain::audit::RecordSignature;
use crate::domain::{GrantId, UserId};
use crate::slack::{Handoff, SeenGroups, SlackLink, SlackUser};
use crate::store::StoreError;

const ONE: &str = "ITEM";

/// Where a request's Slack message is, and the grant version it last showed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostedMessage {
    /// The channel.
    pub channel: String,
    /// The message's `ts`.
    pub ts: String,
    /// The grant version it shows.
    pub version: u64,
}

/// A signed value as stored: the value and intake's signature over its message.
#[derive(Debug, Clone)]
pub struct Signed<T> {
    /// The value.
    pub value: T,
    /// The signature, unverified: the reader checks it.
    pub signature: Option<RecordSignature>,
}

fn link_pk(user: &SlackUser) -> String {
    format!("SLACKLINK#{}#{}", user.team_id, user.user_id)
}

fn json_of(value: &impl Serialize) -> Result<AttributeValue, StoreError> {
    serde_json::to_string(value)
        .map(s)
        .map_err(|e| StoreError::Refused {
            cause: crate::cause::Cause::message(e.to_string()),
        })
}

fn text<'a>(item: &'a Item, name: &str) -> Option<&'a str> {
    match item.get(name) {
        Some(AttributeValue::S(v)) => Some(v.as_str()),
        _ => None,
    }
}

fn parsed<T: DeserializeOwned>(item: &Item, name: &str) -> Result<T, StoreError> {
    text(item, name)
        .and_then(|t| serde_json::from_str(t).ok())
        .ok_or_else(|| StoreError::Corrupt {
            key: text(item, TableLayout::PARTITION_KEY)
                .unwrap_or("?")
                .to_owned(),
            why: format!("`{name}` is missing or malformed"),
        })
}

fn is_condition_failure<E>(e: &SdkError<E, aws_sdk_dynamodb::config::http::HttpResponse>) -> bool
where
    E: aws_sdk_dynamodb::error::ProvideErrorMetadata,
{
    matches!(e, SdkError::ServiceError(s) if s.err().code() == Some("ConditionalCheckFailedException"))
}

impl DynamoStore {
    async fn put_plain(
        &self,
        pk: String,
        mut item: Item,
        condition: Option<&str>,
        values: Option<Item>,
    ) -> Result<bool, StoreError> {
        item.insert(TableLayout::PARTITION_KEY.into(), s(pk));
        item.insert(TableLayout::SORT_KEY.into(), s(ONE));
        match self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .set_condition_expression(condition.map(str::to_owned))
            .set_expression_attribute_values(values)
            .send()
            .await
        {
            Ok(_) => Ok(true),
            Err(e) if is_condition_failure::<PutItemError>(&e) => Ok(false),
            Err(e) => Err(sdk_error(e)),
        }
    }

    /// Keeps a one-time link code for `user`, by its digest, until `expires_at`.
    pub async fn put_link_code(
        &self,
        digest: &str,
        user: &SlackUser,
        expires_at: Timestamp,
    ) -> Result<(), StoreError> {
        self.put_once(format!("SLACKCODE#{digest}"), "slack", user, expires_at)
            .await
    }

    /// Keeps the one-time item `pk` holding `value` under `field` until `expires_at`, when
    /// there is none yet; [`Self::take_once`] takes it.
    async fn put_once(
        &self,
        pk: String,
        field: &str,
        value: &impl Serialize,
        expires_at: Timestamp,
    ) -> Result<(), StoreError> {
        let item = Item::from([
            (field.to_owned(), json_of(value)?),
            ("expires_at".into(), n(expires_at.unix_seconds())),
        ]);
        self.put_plain(pk, item, Some("attribute_not_exists(pk)"), None)
            .await
            .map(drop)
    }

    /// Takes the code with `digest`: it is deleted whatever happens next, so it serves once.
    /// `None` when there is no such code, or it expired before `now`.
    pub async fn take_link_code(
        &self,
        digest: &str,
        now: Timestamp,
    ) -> Result<Option<SlackUser>, StoreError> {
        let Some((item, expires)) = self.take_once(format!("SLACKCODE#{digest}")).await? else {
            return Ok(None);
        };
        if expires <= now {
            return Ok(None);
        }
        parsed(&item, "slack").map(Some)
    }

    /// Deletes the one-time item `pk`, returning what it held and when it expires: `None` when
    /// there is none (never made, or taken already).
    async fn take_once(&self, pk: String) -> Result<Option<(Item, Timestamp)>, StoreError> {
        let out = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key(TableLayout::PARTITION_KEY, s(pk))
            .key(TableLayout::SORT_KEY, s(ONE))
            .condition_expression("attribute_exists(pk)")
            .return_values(ReturnValue::AllOld)
            .send()
            .await;
        let item = match out {
            Ok(out) => out.attributes.unwrap_or_default(),
            Err(e) if is_condition_failure::<DeleteItemError>(&e) => return Ok(None),
            Err(e) => return Err(sdk_error(e)),
        };
        let expires = match item.get("expires_at") {
            Some(AttributeValue::N(v)) => v.parse::<i64>().unwrap_or(0),
            _ => 0,
        };
        Ok(Some((item, Timestamp::from_unix_seconds(expires))))
    }

    /// Keeps `handoff` under the digest of its token until `expires_at`.
    pub async fn put_handoff(
        &self,
        digest: &str,
        handoff: &Handoff,
        expires_at: Timestamp,
    ) -> Result<(), StoreError> {
        self.put_once(
            format!("SLACKVIEW#{digest}"),
            "handoff",
            handoff,
            expires_at,
        )
        .await
    }

    /// Takes the handoff with `digest`: it is deleted whatever happens next, so it is opened
    /// once. `None` when there is no such handoff (never made, or opened already); else the
    /// handoff and when it expires (the table's TTL may not have removed it yet).
    pub async fn take_handoff(
        &self,
        digest: &str,
    ) -> Result<Option<(Handoff, Timestamp)>, StoreError> {
        let Some((item, expires)) = self.take_once(format!("SLACKVIEW#{digest}")).await? else {
            return Ok(None);
        };
        Ok(Some((parsed(&item, "handoff")?, expires)))
    }

    /// Stores `link`, signed, replacing any earlier link of the Slack user.
    pub async fn put_link(
        &self,
        link: &SlackLink,
        signature: &RecordSignature,
    ) -> Result<(), StoreError> {
        let item = Item::from([
            ("link".into(), json_of(link)?),
            ("signature".into(), json_of(signature)?),
        ]);
        self.put_plain(link_pk(&link.slack), item, None, None)
            .await?;
        Ok(())
    }

    /// The link of `user`, if any, with its signature unverified.
    pub async fn link(&self, user: &SlackUser) -> Result<Option<Signed<SlackLink>>, StoreError> {
        let Some(item) = self.get_item(link_pk(user), ONE).await? else {
            return Ok(None);
        };
        Ok(Some(Signed {
            value: parsed(&item, "link")?,
            signature: parsed(&item, "signature").ok(),
        }))
    }

    /// Stores the groups seen on an authenticated call, signed, unless newer ones are stored.
    pub async fn put_seen(
        &self,
        seen: &SeenGroups,
        signature: &RecordSignature,
    ) -> Result<(), StoreError> {
        let item = Item::from([
            ("seen".into(), json_of(seen)?),
            ("signature".into(), json_of(signature)?),
            ("seen_at".into(), n(seen.at.unix_seconds())),
        ]);
        self.put_plain(
            format!("SEEN#{}", seen.sub),
            item,
            Some("attribute_not_exists(pk) OR seen_at <= :at"),
            Some(Item::from([(":at".into(), n(seen.at.unix_seconds()))])),
        )
        .await
        .map(drop)
    }

    /// The groups last seen for `sub`, with their signature unverified.
    pub async fn seen(&self, sub: &UserId) -> Result<Option<Signed<SeenGroups>>, StoreError> {
        let Some(item) = self.get_item(format!("SEEN#{sub}"), ONE).await? else {
            return Ok(None);
        };
        Ok(Some(Signed {
            value: parsed(&item, "seen")?,
            signature: parsed(&item, "signature").ok(),
        }))
    }

    /// Records that an interaction with `key` was handled; `false` when it already was (a
    /// replay). Kept until `expires_at`, past which Slack's timestamp check refuses it anyway.
    pub async fn claim_interaction(
        &self,
        key: &str,
        expires_at: Timestamp,
    ) -> Result<bool, StoreError> {
        let item = Item::from([("expires_at".into(), n(expires_at.unix_seconds()))]);
        self.put_plain(
            format!("SLACKREPLAY#{key}"),
            item,
            Some("attribute_not_exists(pk)"),
            None,
        )
        .await
    }

    /// Where `grant`'s message is, if posted.
    pub async fn posted_message(
        &self,
        grant: &GrantId,
    ) -> Result<Option<PostedMessage>, StoreError> {
        let Some(item) = self.get_item(format!("SLACKMSG#{grant}"), ONE).await? else {
            return Ok(None);
        };
        let version = match item.get("version") {
            Some(AttributeValue::N(v)) => v.parse().unwrap_or(0),
            _ => 0,
        };
        // Claimed, not yet posted: nothing to update.
        Ok(match (text(&item, "channel"), text(&item, "ts")) {
            (Some(channel), Some(ts)) => Some(PostedMessage {
                channel: channel.to_owned(),
                ts: ts.to_owned(),
                version,
            }),
            _ => None,
        })
    }

    /// Claims the posting of `grant`'s message for `hold_secs` from `now`: `false` while
    /// another invocation holds the claim or the message is posted. Items of a request of
    /// several targets sit on different stream shards, so two invocations may try at once; the
    /// claim makes it one message.
    pub async fn claim_message(
        &self,
        grant: &GrantId,
        now: Timestamp,
        hold_secs: i64,
    ) -> Result<bool, StoreError> {
        let item = Item::from([(
            "claimed_until".into(),
            n(now.plus_secs(hold_secs).unix_seconds()),
        )]);
        self.put_plain(
            format!("SLACKMSG#{grant}"),
            item,
            Some("attribute_not_exists(pk) OR (attribute_not_exists(ts) AND claimed_until < :now)"),
            Some(Item::from([(":now".into(), n(now.unix_seconds()))])),
        )
        .await
    }

    /// Gives up a claim whose posting failed, so the retry may claim it at once.
    pub async fn release_message(&self, grant: &GrantId) -> Result<(), StoreError> {
        let item = Item::from([("claimed_until".into(), n(0))]);
        self.put_plain(
            format!("SLACKMSG#{grant}"),
            item,
            Some("attribute_not_exists(ts)"),
            None,
        )
        .await
        .map(drop)
    }

    /// Records where `grant`'s message is and the version it shows, unless a later version
    /// is recorded; `false` then.
    pub async fn record_message(
        &self,
        grant: &GrantId,
        message: &PostedMessage,
    ) -> Result<bool, StoreError> {
        let item = Item::from([
            ("channel".into(), s(message.channel.clone())),
            ("ts".into(), s(message.ts.clone())),
            ("version".into(), n(message.version)),
        ]);
        self.put_plain(
            format!("SLACKMSG#{grant}"),
            item,
            Some("attribute_not_exists(ts) OR version <= :v"),
            Some(Item::from([(":v".into(), n(message.version))])),
        )
        .await
    }
}
