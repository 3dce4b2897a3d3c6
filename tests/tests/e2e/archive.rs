//! The audit bucket, as the sweeper of a running stack fills it: every checkpoint in the table
//! that names a period object matches that object's version (its SHA-256, and the count and
//! digest of the records it carries, which are the table's records of that period) and its
//! copy in the bucket; the objects name people only by pseudonym; Object Lock refuses to
//! delete a locked version or shorten its retention.

use std::collections::BTreeSet;

use aws_sdk_s3::primitives::{ByteStream, DateTime};
use aws_sdk_s3::types::{ObjectLockMode, ObjectLockRetention, ObjectLockRetentionMode};
use jit_core::archive::{archived_digest, checkpoint_key, read_period_object, sha256_hex};
use jit_core::trust::Checkpoint;
use jit_stack::{AUDIT_BUCKET, Stack};

use super::{Api, exported};

fn s3(stack: &Stack) -> aws_sdk_s3::Client {
    let config = aws_sdk_s3::config::Builder::from(&stack.aws)
        .force_path_style(true)
        .build();
    aws_sdk_s3::Client::from_conf(config)
}

async fn bytes_of(s3: &aws_sdk_s3::Client, key: &str, version: Option<&str>) -> Vec<u8> {
    let out = s3
        .get_object()
        .bucket(AUDIT_BUCKET)
        .key(key)
        .set_version_id(version.map(str::to_owned))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{key}: {}", aws_sdk_s3::error::DisplayErrorContext(e)));
    out.body.collect().await.unwrap().into_bytes().to_vec()
}

/// Checks the bucket against the table's checkpoints of the two hours around now; `people`
/// are the subjects that took part, none of whom may appear in an object.
pub(super) async fn the_bucket_holds_every_closed_period(
    stack: &Stack,
    api: &Api,
    auditor: &str,
    people: &[&str],
) {
    let export = exported(api, auditor).await;
    let archived: Vec<&Checkpoint> = export
        .checkpoints
        .iter()
        .filter(|c| c.object.is_some())
        .collect();
    assert!(
        archived.len() >= 3 && archived.len() == export.checkpoints.len(),
        "every checkpoint names its period's object: {:?}",
        export.checkpoints
    );
    let s3 = s3(stack);
    let mut records_seen = 0;
    for checkpoint in &archived {
        let object = checkpoint.object.as_ref().unwrap();
        assert!(
            object.key.starts_with("audit/v1/dt=") && object.key.contains("/hour="),
            "{object:?}"
        );
        let bytes = bytes_of(&s3, &object.key, Some(&object.version_id)).await;
        assert_eq!(sha256_hex(&bytes), object.sha256, "{object:?}");
        let held = read_period_object(&bytes).unwrap();
        assert_eq!(
            archived_digest(&held),
            (checkpoint.count, checkpoint.digest.clone()),
            "{object:?}"
        );
        // The object's records are exactly the table's records of the period.
        let in_table: BTreeSet<(String, u64)> = export
            .records
            .iter()
            .filter(|r| checkpoint.period_start <= r.at && r.at < checkpoint.period_end)
            .map(|r| (r.grant_id.to_string(), r.seq))
            .collect();
        let in_object: BTreeSet<(String, u64)> = held
            .iter()
            .map(|r| (r.grant_id.to_string(), r.seq))
            .collect();
        assert_eq!(in_object, in_table, "{object:?}");
        records_seen += held.len();
        let text = String::from_utf8(jit_core::archive::gunzip(&bytes).unwrap()).unwrap();
        for person in people {
            assert!(
                !text.contains(person),
                "{person} is named in {}",
                object.key
            );
        }
        // Its copy in the bucket: the same checkpoint, signed.
        let mut copy = None;
        for _ in 0..20 {
            let listed = s3
                .list_objects_v2()
                .bucket(AUDIT_BUCKET)
                .prefix(checkpoint_key(checkpoint.seq))
                .send()
                .await
                .unwrap();
            if listed.key_count.unwrap_or(0) > 0 {
                let bytes = bytes_of(&s3, &checkpoint_key(checkpoint.seq), None).await;
                copy = Some(serde_json::from_slice::<Checkpoint>(&bytes).unwrap());
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        }
        let copy = copy.unwrap_or_else(|| panic!("checkpoint {} is in the bucket", checkpoint.seq));
        assert_eq!(copy.hash, checkpoint.hash);
        assert!(copy.signature.is_some());
    }
    assert!(records_seen > 0, "the periods held the scenario's records");

    // Each object is locked in compliance mode for the template's 400 days.
    let object = archived[0].object.as_ref().unwrap();
    let head = s3
        .head_object()
        .bucket(AUDIT_BUCKET)
        .key(&object.key)
        .version_id(&object.version_id)
        .send()
        .await
        .unwrap();
    assert_eq!(head.object_lock_mode, Some(ObjectLockMode::Compliance));
    let until = head.object_lock_retain_until_date.unwrap().secs();
    let days = (until - super::now().unix_seconds()) / 86_400;
    assert!((398..=400).contains(&days), "locked for {days} days");
    // Neither deleting the version nor shortening its retention is allowed.
    let deleted = s3
        .delete_object()
        .bucket(AUDIT_BUCKET)
        .key(&object.key)
        .version_id(&object.version_id)
        .send()
        .await;
    assert!(deleted.is_err(), "a locked version was deleted");
    let shorter = ObjectLockRetention::builder()
        .mode(ObjectLockRetentionMode::Compliance)
        .retain_until_date(DateTime::from_secs(super::now().unix_seconds() + 86_400))
        .build();
    let shortened = s3
        .put_object_retention()
        .bucket(AUDIT_BUCKET)
        .key(&object.key)
        .version_id(&object.version_id)
        .retention(shorter)
        .send()
        .await;
    assert!(shortened.is_err(), "a compliance retention was shortened");
    let still = bytes_of(&s3, &object.key, Some(&object.version_id)).await;
    assert_eq!(sha256_hex(&still), object.sha256);
    // A second write at a taken key, as the sweeper makes it, is refused (create-only).
    let again = s3
        .put_object()
        .bucket(AUDIT_BUCKET)
        .key(&object.key)
        .if_none_match("*")
        .body(ByteStream::from_static(b"rewritten"))
        .checksum_algorithm(aws_sdk_s3::types::ChecksumAlgorithm::Sha256)
        .send()
        .await;
    assert!(again.is_err(), "a create-only put replaced a period object");
}
