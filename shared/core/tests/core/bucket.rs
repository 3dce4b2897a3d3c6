//! The audit bucket verified on its own (`verify_bucket`), over a bucket kept in memory as S3
//! keeps one: every version of every key, newest first. A bucket as the sweeper leaves it
//! verifies; each way an insider could change it afterwards is reported by name.

use std::collections::BTreeMap;
use std::sync::Mutex;

use crate::support::*;
use jit_core::archive::{
    BucketReader, ListedVersion, Subject, checkpoint_key, compare_with_table, period_object,
    verify_bucket,
};
use jit_core::domain::audit::AuditRecord;
use jit_core::domain::{Service, UserId};
use jit_core::trust::{ArchivedPeriod, Checkpoint, KeyRing, LocalKey, checkpoint_message};

/// A version: its id, and its bytes (none for a delete marker).
type Version = (String, Option<Vec<u8>>);

/// Each key's versions, newest first.
#[derive(Default)]
struct Bucket {
    keys: Mutex<BTreeMap<String, Vec<Version>>>,
    next: Mutex<u64>,
}

impl Bucket {
    fn put(&self, key: &str, bytes: Option<Vec<u8>>) -> String {
        let mut next = self.next.lock().unwrap();
        *next += 1;
        let id = format!("v{next}");
        let mut keys = self.keys.lock().unwrap();
        keys.entry(key.to_owned())
            .or_default()
            .insert(0, (id.clone(), bytes));
        id
    }
}

impl BucketReader for Bucket {
    async fn versions(&self, prefix: &str) -> Result<Vec<ListedVersion>, String> {
        let keys = self.keys.lock().unwrap();
        Ok(keys
            .iter()
            .filter(|(k, _)| k.starts_with(prefix))
            .flat_map(|(k, versions)| {
                versions.iter().map(|(id, bytes)| ListedVersion {
                    key: k.clone(),
                    version_id: id.clone(),
                    delete_marker: bytes.is_none(),
                })
            })
            .collect())
    }

    async fn bytes(&self, key: &str, version_id: &str) -> Result<Option<Vec<u8>>, String> {
        let keys = self.keys.lock().unwrap();
        Ok(keys
            .get(key)
            .and_then(|v| v.iter().find(|(id, _)| id == version_id))
            .and_then(|(_, bytes)| bytes.clone()))
    }
}

const HOUR: i64 = 3600;

/// Three closed hours from `T0`, the first holding one grant's records; the bucket as the
/// sweeper fills it (each period's object, then its signed checkpoint), and the checkpoints.
fn filled(key: &LocalKey) -> (Bucket, Vec<Checkpoint>) {
    let created = open("alice@example.com", "prod-logs-ro", T0);
    let mut records: Vec<AuditRecord> = vec![created.audit().clone()];
    let approved = created
        .grant()
        .apply(auto_approve(), &approver(), T0.plus_secs(1))
        .unwrap();
    records.push(approved.audit().clone());
    let grant = approved.grant();
    let subjects = BTreeMap::from([(
        grant.id.clone(),
        Subject {
            requester: grant.requester.clone(),
            target: grant.target.clone(),
            role_arn: grant.role_arn.clone(),
        },
    )]);
    let pseudonyms: BTreeMap<UserId, String> =
        BTreeMap::from([(user("alice@example.com"), "p-1".to_owned())]);
    let bucket = Bucket::default();
    let mut chain: Vec<Checkpoint> = Vec::new();
    for h in 0..3 {
        let (start, end) = (T0.plus_secs(h * HOUR), T0.plus_secs((h + 1) * HOUR));
        let held: Vec<AuditRecord> = records
            .iter()
            .filter(|r| start <= r.at && r.at < end)
            .cloned()
            .collect();
        let object = period_object(start, HOUR, &held, &subjects, &pseudonyms).unwrap();
        let version_id = bucket.put(&object.key, Some(object.bytes.clone()));
        let mut c = Checkpoint::next(chain.last(), start, end, &held).with_object(ArchivedPeriod {
            key: object.key,
            version_id,
            sha256: object.sha256,
        });
        c.signature = Some(key.sign_as(&checkpoint_message(&c.hash)));
        bucket.put(
            &checkpoint_key(c.seq),
            Some(serde_json::to_vec(&c).unwrap()),
        );
        chain.push(c);
    }
    (bucket, chain)
}

fn problems(bucket: &Bucket, ring: &KeyRing) -> Vec<String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    runtime
        .block_on(verify_bucket(bucket, ring))
        .unwrap()
        .problems
}

#[test]
fn a_bucket_as_the_sweeper_leaves_it_verifies() {
    let key = LocalKey::generate(Service::Sweeper);
    let (bucket, chain) = filled(&key);
    let ring = KeyRing::new([key.public_key()]);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let summary = runtime.block_on(verify_bucket(&bucket, &ring)).unwrap();
    assert_eq!(summary.problems, Vec::<String>::new());
    assert_eq!(
        (summary.checkpoints, summary.first_seq, summary.last_seq),
        (3, Some(1), Some(3))
    );
    assert_eq!((summary.periods, summary.records), (3, 2));
    assert_eq!(summary.checkpointed_from, Some(T0));
    assert_eq!(summary.checkpointed_until, Some(T0.plus_secs(3 * HOUR)));
    assert_eq!(chain.len(), 3);
}

#[test]
fn each_change_to_the_bucket_is_reported() {
    type Change = Box<dyn Fn(&Bucket, &[Checkpoint], &LocalKey)>;
    let first_object = |c: &[Checkpoint]| c[0].object.clone().unwrap();
    let cases: Vec<(&str, Change, &str)> = vec![
        (
            "a later version at a period's key",
            Box::new(move |b, c, _| {
                b.put(&first_object(c).key, Some(b"other records".to_vec()));
            }),
            "1 later version(s) at its key (0 of them delete markers)",
        ),
        (
            "a delete marker at a period's key",
            Box::new(move |b, c, _| {
                b.put(&first_object(c).key, None);
            }),
            "1 later version(s) at its key (1 of them delete markers)",
        ),
        (
            "the named version's bytes replaced",
            Box::new(move |b, c, _| {
                let object = first_object(c);
                let mut keys = b.keys.lock().unwrap();
                keys.get_mut(&object.key).unwrap()[0].1 = Some(b"forged".to_vec());
            }),
            "does not have the SHA-256 the checkpoint names",
        ),
        (
            "the named version gone",
            Box::new(move |b, c, _| {
                b.keys.lock().unwrap().remove(&first_object(c).key);
            }),
            "is not in the bucket",
        ),
        (
            "a checkpoint copy gone with all its versions",
            Box::new(|b, _, _| {
                b.keys.lock().unwrap().remove(&checkpoint_key(2));
            }),
            "checkpoints 2 to 2 are missing from the bucket",
        ),
        (
            "a checkpoint copy deleted (a delete marker)",
            Box::new(|b, _, _| {
                b.put(&checkpoint_key(3), None);
            }),
            "2 versions (1 delete markers) at a key the sweeper writes once",
        ),
        (
            "a checkpoint re-signed by another key",
            Box::new(|b, c, _| {
                let mut forged = c[1].clone();
                forged.signature = Some(
                    LocalKey::generate(Service::Sweeper).sign_as(&checkpoint_message(&forged.hash)),
                );
                b.put(
                    &checkpoint_key(2),
                    Some(serde_json::to_vec(&forged).unwrap()),
                );
            }),
            "2 versions (0 delete markers) at a key the sweeper writes once",
        ),
        (
            "a checkpoint's count edited",
            Box::new(|b, c, _| {
                let mut edited = c[0].clone();
                edited.count = 0;
                let mut keys = b.keys.lock().unwrap();
                keys.get_mut(&checkpoint_key(1)).unwrap()[0].1 =
                    Some(serde_json::to_vec(&edited).unwrap());
            }),
            "checkpoint 1: its contents do not hash to its hash",
        ),
        (
            "a checkpoint edited and re-signed with the sweeper's key",
            Box::new(|b, c, key| {
                let mut edited = c[0].clone();
                edited.count = 0;
                edited.hash = edited.compute_hash();
                edited.signature = Some(key.sign_as(&checkpoint_message(&edited.hash)));
                let mut keys = b.keys.lock().unwrap();
                keys.get_mut(&checkpoint_key(1)).unwrap()[0].1 =
                    Some(serde_json::to_vec(&edited).unwrap());
            }),
            "checkpoint 2: it does not follow checkpoint 1",
        ),
        (
            "an object no checkpoint names",
            Box::new(|b, _, _| {
                b.put(
                    "audit/v1/dt=2027-01-15/hour=08/2027-01-15T083000Z-3600s.ocsf.jsonl.gz",
                    Some(b"x".to_vec()),
                );
            }),
            "a period object that no checkpoint in the bucket names",
        ),
    ];
    for (name, change, expected) in cases {
        let key = LocalKey::generate(Service::Sweeper);
        let (bucket, chain) = filled(&key);
        change(&bucket, &chain, &key);
        let found = problems(&bucket, &KeyRing::new([key.public_key()]));
        assert!(
            found.iter().any(|p| p.contains(expected)),
            "{name}: expected a problem with `{expected}`, found {found:#?}"
        );
    }
}

#[test]
fn a_checkpoint_deleted_or_rewritten_in_the_table_is_caught_from_the_bucket() {
    let key = LocalKey::generate(Service::Sweeper);
    let (bucket, table) = filled(&key);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let summary = runtime
        .block_on(verify_bucket(&bucket, &KeyRing::new([key.public_key()])))
        .unwrap();
    assert_eq!(summary.chain, table);
    assert_eq!(
        compare_with_table(&summary.chain, &table),
        Vec::<String>::new()
    );
    // The table lost checkpoint 3 (an insider deleted it), and checkpoint 2 was rewritten.
    let mut edited: Vec<Checkpoint> = table[..2].to_vec();
    edited[1].digest = "0".repeat(64);
    edited[1].hash = edited[1].compute_hash();
    let found = compare_with_table(&summary.chain, &edited);
    assert_eq!(found.len(), 2, "{found:#?}");
    assert!(found[0].starts_with("checkpoint 2 differs between the bucket and the table"));
    assert!(found[1].starts_with("checkpoint 3 (the period"));
    assert!(
        found[1].ends_with("it was deleted from the table"),
        "{}",
        found[1]
    );
    // A table ahead of the bucket (a copy not yet put) is no problem.
    let mut ahead = table.clone();
    ahead.push(Checkpoint::next(
        table.last(),
        T0.plus_secs(3 * HOUR),
        T0.plus_secs(4 * HOUR),
        [],
    ));
    assert_eq!(
        compare_with_table(&summary.chain, &ahead),
        Vec::<String>::new()
    );
}
