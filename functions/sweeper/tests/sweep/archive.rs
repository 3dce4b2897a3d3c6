//! The audit bucket, on the emulator's S3: a closed period's object before its checkpoint, a
//! failed put that leaves the period open, and a put whose checkpoint was lost found and
//! reused, not written twice.

use aws_sdk_dynamodb::types::AttributeValue;
use jit_core::archive::{checkpoint_key, read_period_object, sha256_hex};
use jit_sweeper::{AuditBucket, BucketSettings, s3_client};

use super::*;

async fn bucket_with_lock(config: &aws_config::SdkConfig, name: &str) {
    let s3 = s3_client(config);
    s3.create_bucket()
        .bucket(name)
        .object_lock_enabled_for_bucket(true)
        .send()
        .await
        .unwrap();
}

fn archive(config: &aws_config::SdkConfig, bucket: &str) -> AuditBucket {
    AuditBucket::new(
        s3_client(config),
        BucketSettings {
            bucket: bucket.to_owned(),
            mode: "COMPLIANCE".to_owned(),
            retention_days: 400,
        },
    )
}

async fn versions_at(s3: &aws_sdk_s3::Client, bucket: &str, key: &str) -> usize {
    let listed = s3
        .list_object_versions()
        .bucket(bucket)
        .prefix(key)
        .send()
        .await
        .unwrap();
    listed.versions().len() + listed.delete_markers().len()
}

#[tokio::test]
async fn a_period_goes_to_the_bucket_before_its_checkpoint_a_failed_put_waits_and_a_lost_checkpoint_reuses_the_object()
 {
    let mut h = Harness::new("archive", 10_240).await;
    let bucket = format!("jit-audit-{}", h.suffix.to_lowercase());
    bucket_with_lock(&h.config, &bucket).await;
    let s3 = s3_client(&h.config);
    let hour = 3600;
    let start = Timestamp::from_unix_seconds((h.now().unix_seconds() / hour + 1) * hour);
    h.clock.set(start.plus_secs(10));
    h.sweeper.archive = Some(archive(&h.config, &bucket));
    // The chain's first checkpoint names its (empty) period's object, and is copied.
    assert_eq!(h.sweep().await["checkpoints"], 1);
    let first = h.sweeper.store.latest_checkpoint().await.unwrap().unwrap();
    let object = first
        .object
        .clone()
        .expect("the checkpoint names its object");
    let got = s3
        .get_object()
        .bucket(&bucket)
        .key(&object.key)
        .version_id(&object.version_id)
        .send()
        .await
        .unwrap();
    let bytes = got.body.collect().await.unwrap().into_bytes().to_vec();
    assert_eq!(sha256_hex(&bytes), object.sha256);
    assert!(read_period_object(&bytes).unwrap().is_empty());
    assert_eq!(versions_at(&s3, &bucket, &checkpoint_key(1)).await, 1);

    // A grant in the current hour.
    h.pending("alice", "prod-logs-ro", "1h").await;
    h.clock.set(start.plus_secs(hour + 301));

    // The bucket unreachable (gone, here): the sweep fails and signs nothing; the period
    // stays open.
    h.sweeper.archive = Some(archive(&h.config, &format!("{bucket}-gone")));
    let failed = h.try_sweep().await;
    assert!(
        failed.as_ref().is_err_and(|e| e.contains("audit bucket")),
        "{failed:?}"
    );
    let latest = h.sweeper.store.latest_checkpoint().await.unwrap().unwrap();
    assert_eq!(latest.seq, first.seq, "no checkpoint without its object");

    // Back: the next sweep puts the object, then the checkpoints of both closed periods.
    h.sweeper.archive = Some(archive(&h.config, &bucket));
    assert_eq!(h.sweep().await["checkpoints"], 2);
    let third = h.sweeper.store.latest_checkpoint().await.unwrap().unwrap();
    assert!(third.count >= 1, "alice's request: {third:?}");
    let put = third.object.clone().unwrap();

    // The table loses that checkpoint (a write lost after the object was put): the next sweep
    // finds the object, checks it holds the same records and reuses its version.
    let table = &h.sweeper.store.table;
    table
        .client
        .delete_item()
        .table_name(&table.name)
        .key("pk", AttributeValue::S("CHECKPOINTS".into()))
        .key(
            "sk",
            AttributeValue::S(format!("PERIOD#{:012}", third.period_start.unix_seconds())),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(h.sweep().await["checkpoints"], 1);
    let again = h.sweeper.store.latest_checkpoint().await.unwrap().unwrap();
    assert_eq!(
        again.object.as_ref(),
        Some(&put),
        "the same version, reused"
    );
    assert_eq!(again.hash, third.hash);
    assert_eq!(versions_at(&s3, &bucket, &put.key).await, 1, "written once");
    assert_eq!(
        versions_at(&s3, &bucket, &checkpoint_key(third.seq)).await,
        1
    );
}
