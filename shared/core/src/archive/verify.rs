//! Verifying the audit bucket on its own, without the table or the broker: the chain of
//! checkpoint copies (each hashed, signed by the sweeper and linked to the one before), each
//! period object by the version id its checkpoint names (its SHA-256, and the count and digest
//! of the records it carries), and what the bucket's versions say happened since: a later
//! version or a delete marker at a key the sweeper writes once is reported, as is a gap in
//! the chain or an object no checkpoint names.
//!
//! The reading is the caller's ([`BucketReader`]): the CLI reads S3, the tests a map.

use std::collections::BTreeMap;
use std::future::Future;

use serde::Serialize;

use crate::clock::Timestamp;
use crate::trust::{Checkpoint, KeyRing, check_checkpoint};

use super::{CHECKPOINT_PREFIX, PERIOD_PREFIX, archived_digest, read_period_object, sha256_hex};

/// One version of a key, or a delete marker, as the bucket lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedVersion {
    /// The key.
    pub key: String,
    /// The version id.
    pub version_id: String,
    /// Whether it is a delete marker rather than an object.
    pub delete_marker: bool,
}

/// Reads the bucket.
pub trait BucketReader {
    /// Every version and delete marker under `prefix`, each key's newest first (as S3's
    /// `ListObjectVersions` gives them).
    fn versions(
        &self,
        prefix: &str,
    ) -> impl Future<Output = Result<Vec<ListedVersion>, String>> + Send;
    /// The bytes of one version; `None` when there is no such version.
    fn bytes(
        &self,
        key: &str,
        version_id: &str,
    ) -> impl Future<Output = Result<Option<Vec<u8>>, String>> + Send;
}

/// What the bucket holds, checked; `problems` lists everything that does not hold.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct BucketSummary {
    /// Checkpoint copies read.
    pub checkpoints: usize,
    /// The first checkpoint of the chain the bucket holds (1 unless the deployment had a
    /// trail before it had a bucket).
    pub first_seq: Option<u64>,
    /// The last.
    pub last_seq: Option<u64>,
    /// The first second the checkpoints cover.
    pub checkpointed_from: Option<Timestamp>,
    /// The second after the last they cover.
    pub checkpointed_until: Option<Timestamp>,
    /// Period objects read, each by the version its checkpoint names.
    pub periods: usize,
    /// Records those objects carry.
    pub records: u64,
    /// What does not hold: empty when the bucket verifies.
    pub problems: Vec<String>,
    /// Whether the caller also compared them with the table's ([`compare_with_table`]).
    pub compared_with_table: bool,
    /// The checkpoints read, in order, for [`compare_with_table`].
    #[serde(skip)]
    pub chain: Vec<Checkpoint>,
}

/// What does not hold between the bucket's checkpoints and the table's (those of the same
/// range, as `GET /audit` gives them): a checkpoint of the bucket missing from the table (deleted
/// there), or different (rewritten there, and re-signed by whoever holds the sweeper's key).
/// Table checkpoints after the bucket's last are not yet copied, and are not compared.
pub fn compare_with_table(bucket: &[Checkpoint], table: &[Checkpoint]) -> Vec<String> {
    let table: BTreeMap<u64, &Checkpoint> = table.iter().map(|c| (c.seq, c)).collect();
    let mut problems = Vec::new();
    for c in bucket {
        match table.get(&c.seq) {
            None => problems.push(format!(
                "checkpoint {} (the period {} to {}) is in the bucket but not in the table: it \
                 was deleted from the table",
                c.seq, c.period_start, c.period_end
            )),
            Some(t) if t.hash != c.hash => problems.push(format!(
                "checkpoint {} differs between the bucket and the table: the table's was \
                 rewritten",
                c.seq
            )),
            Some(_) => {}
        }
    }
    problems
}

/// Checks the bucket `reader` reads, signatures against `ring`.
pub async fn verify_bucket<R: BucketReader>(
    reader: &R,
    ring: &KeyRing,
) -> Result<BucketSummary, String> {
    let mut summary = BucketSummary::default();
    let copies = reader.versions(CHECKPOINT_PREFIX).await?;
    let mut checkpoints: Vec<Checkpoint> = Vec::new();
    for (key, versions) in by_key(&copies) {
        let Some(original) = once_written(key, &versions, &mut summary.problems) else {
            continue;
        };
        let Some(bytes) = reader.bytes(key, &original.version_id).await? else {
            summary
                .problems
                .push(format!("{key}: its listed version cannot be read"));
            continue;
        };
        match serde_json::from_slice::<Checkpoint>(&bytes) {
            Ok(c) if super::checkpoint_key(c.seq) == key => checkpoints.push(c),
            Ok(c) => summary.problems.push(format!(
                "{key} holds checkpoint {}: a copy was put at another checkpoint's key",
                c.seq
            )),
            Err(e) => summary
                .problems
                .push(format!("{key} is not a checkpoint: {e}")),
        }
    }
    checkpoints.sort_by_key(|c| c.seq);
    summary.checkpoints = checkpoints.len();
    summary.first_seq = checkpoints.first().map(|c| c.seq);
    summary.last_seq = checkpoints.last().map(|c| c.seq);
    summary.checkpointed_from = checkpoints.first().map(|c| c.period_start);
    summary.checkpointed_until = checkpoints.last().map(|c| c.period_end);

    let periods = reader.versions(PERIOD_PREFIX).await?;
    let period_versions = by_key(&periods);
    let mut prev: Option<&Checkpoint> = None;
    for checkpoint in &checkpoints {
        // A gap is reported once; the chain is checked again from the checkpoint after it.
        let linked = prev.filter(|p| p.seq.saturating_add(1) == checkpoint.seq);
        if let Some(p) = prev
            && linked.is_none()
        {
            summary.problems.push(format!(
                "checkpoints {} to {} are missing from the bucket",
                p.seq.saturating_add(1),
                checkpoint.seq.saturating_sub(1)
            ));
        }
        if let Err(broken) = check_checkpoint(checkpoint, linked, ring) {
            summary.problems.push(format!("in the bucket, {broken}"));
        }
        prev = Some(checkpoint);
        let Some(object) = &checkpoint.object else {
            summary.problems.push(format!(
                "checkpoint {} names no period object, yet only a sweeper with a bucket copies \
                 checkpoints to it",
                checkpoint.seq
            ));
            continue;
        };
        let here = format!("checkpoint {}'s object {}", checkpoint.seq, object.key);
        let expected = super::period_key(
            checkpoint.period_start,
            checkpoint.period_end.unix_seconds() - checkpoint.period_start.unix_seconds(),
        );
        if object.key != expected {
            summary
                .problems
                .push(format!("{here}: the period's key is {expected}"));
        }
        if let Some(versions) = period_versions.get(object.key.as_str()) {
            let newer = versions
                .iter()
                .take_while(|v| v.version_id != object.version_id)
                .count();
            if newer > 0 {
                let markers = versions
                    .iter()
                    .take(newer)
                    .filter(|v| v.delete_marker)
                    .count();
                summary.problems.push(format!(
                    "{here}: {newer} later version(s) at its key ({markers} of them delete \
                     markers): someone wrote or deleted where the sweeper writes once"
                ));
            }
        }
        let Some(bytes) = reader.bytes(&object.key, &object.version_id).await? else {
            summary.problems.push(format!(
                "{here}: version {} is not in the bucket",
                object.version_id
            ));
            continue;
        };
        if sha256_hex(&bytes) != object.sha256 {
            summary.problems.push(format!(
                "{here}: version {} does not have the SHA-256 the checkpoint names",
                object.version_id
            ));
            continue;
        }
        match read_period_object(&bytes) {
            Ok(records) => {
                let (count, digest) = archived_digest(&records);
                if (count, digest.as_str()) != (checkpoint.count, checkpoint.digest.as_str()) {
                    summary.problems.push(format!(
                        "{here}: it carries {count} records, not the {} the checkpoint counted \
                         and digested",
                        checkpoint.count
                    ));
                }
                summary.periods += 1;
                summary.records += count;
            }
            Err(e) => summary.problems.push(format!("{here}: {e}")),
        }
    }
    // Objects no checkpoint names, before the last one's period: the sweeper names each
    // object it puts (or reuses it) before it moves on, so nothing else belongs there.
    let named: std::collections::BTreeSet<&str> = checkpoints
        .iter()
        .filter_map(|c| c.object.as_ref().map(|o| o.key.as_str()))
        .collect();
    if let Some(last) = checkpoints.last() {
        // Keys sort as their periods do: the same prefix, then a fixed-width time.
        let last_key = super::period_key(
            last.period_start,
            last.period_end.unix_seconds() - last.period_start.unix_seconds(),
        );
        for key in period_versions.keys() {
            if !named.contains(key) && *key < last_key.as_str() {
                summary.problems.push(format!(
                    "{key}: a period object that no checkpoint in the bucket names"
                ));
            }
        }
    }
    summary.chain = checkpoints;
    Ok(summary)
}

/// The listing grouped by key, each key's versions in listing order (newest first).
fn by_key(listed: &[ListedVersion]) -> BTreeMap<&str, Vec<&ListedVersion>> {
    let mut keys: BTreeMap<&str, Vec<&ListedVersion>> = BTreeMap::new();
    for version in listed {
        keys.entry(version.key.as_str()).or_default().push(version);
    }
    keys
}

/// The one version the sweeper wrote at a key it writes once: its oldest. More than one
/// version, or a delete marker, is reported; a key with no object left is skipped.
fn once_written<'a>(
    key: &str,
    versions: &[&'a ListedVersion],
    problems: &mut Vec<String>,
) -> Option<&'a ListedVersion> {
    if versions.len() > 1 {
        let markers = versions.iter().filter(|v| v.delete_marker).count();
        problems.push(format!(
            "{key}: {} versions ({markers} delete markers) at a key the sweeper writes once",
            versions.len()
        ));
    }
    versions.iter().rev().find(|v| !v.delete_marker).copied()
}
