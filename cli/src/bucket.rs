//! `jit audit verify --bucket`: the audit bucket verified straight from S3, without the table
//! or the broker (`jit_core::archive::verify_bucket` does the checking).
//!
//! Credentials come from the environment only (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
//! `AWS_SESSION_TOKEN`), as `jit exec <auditor target> -- jit audit verify --bucket …` or
//! `aws configure export-credentials --format env` set them: the CLI carries no credential
//! chain of its own.

use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_s3::error::{DisplayErrorContext, SdkError};
use jit_core::archive::{BucketReader, BucketSummary, ListedVersion, verify_bucket};
use jit_core::trust::KeyRing;

use crate::api::Failure;

/// Where the bucket is, and how to reach it.
pub struct Location {
    /// The bucket's name (the stack's `AuditBucketName` output).
    pub bucket: String,
    /// An S3 endpoint other than AWS's (path-style addressing then).
    pub endpoint: Option<String>,
    /// The bucket's region.
    pub region: String,
}

struct S3 {
    client: aws_sdk_s3::Client,
    bucket: String,
}

fn failed<E: std::error::Error + 'static>(what: &str, e: SdkError<E>) -> String {
    format!("{what}: {}", DisplayErrorContext(e))
}

impl BucketReader for S3 {
    async fn versions(&self, prefix: &str) -> Result<Vec<ListedVersion>, String> {
        let mut out = Vec::new();
        let (mut key_marker, mut version_marker) = (None::<String>, None::<String>);
        loop {
            let page = self
                .client
                .list_object_versions()
                .bucket(&self.bucket)
                .prefix(prefix)
                .set_key_marker(key_marker.take())
                .set_version_id_marker(version_marker.take())
                .send()
                .await
                .map_err(|e| failed(&format!("listing `{prefix}` in `{}`", self.bucket), e))?;
            // S3 lists a key's versions newest first, with its delete markers apart: merge
            // them back into one newest-first list per key by their times.
            let mut page_items: Vec<(String, i128, u32, ListedVersion)> = Vec::new();
            for v in page.versions() {
                let (Some(key), Some(id)) = (v.key(), v.version_id()) else {
                    continue;
                };
                let at = v.last_modified().map_or(0, |t| t.as_nanos());
                page_items.push((key.to_owned(), at, 1, listed(key, id, false)));
            }
            for m in page.delete_markers() {
                let (Some(key), Some(id)) = (m.key(), m.version_id()) else {
                    continue;
                };
                let at = m.last_modified().map_or(0, |t| t.as_nanos());
                page_items.push((key.to_owned(), at, 0, listed(key, id, true)));
            }
            // Stable: versions with the same time keep S3's order.
            page_items.sort_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)).then(a.2.cmp(&b.2)));
            out.extend(page_items.into_iter().map(|(_, _, _, v)| v));
            if page.is_truncated() != Some(true) {
                return Ok(out);
            }
            key_marker = page.next_key_marker().map(str::to_owned);
            version_marker = page.next_version_id_marker().map(str::to_owned);
            if key_marker.is_none() {
                return Ok(out);
            }
        }
    }

    async fn bytes(&self, key: &str, version_id: &str) -> Result<Option<Vec<u8>>, String> {
        let got = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .version_id(version_id)
            .send()
            .await;
        let out = match got {
            Ok(out) => out,
            Err(SdkError::ServiceError(e)) if matches!(e.raw().status().as_u16(), 404 | 405) => {
                return Ok(None);
            }
            Err(e) => return Err(failed(&format!("reading `{key}` ({version_id})"), e)),
        };
        let bytes = out
            .body
            .collect()
            .await
            .map_err(|e| format!("reading `{key}` ({version_id}): {e}"))?;
        Ok(Some(bytes.into_bytes().to_vec()))
    }
}

fn listed(key: &str, version_id: &str, delete_marker: bool) -> ListedVersion {
    ListedVersion {
        key: key.to_owned(),
        version_id: version_id.to_owned(),
        delete_marker,
    }
}

/// The environment's credentials, or how to provide them.
fn credentials() -> Result<Credentials, Failure> {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let (Some(id), Some(secret)) = (var("AWS_ACCESS_KEY_ID"), var("AWS_SECRET_ACCESS_KEY")) else {
        return Err(Failure::Usage(
            "reading the audit bucket needs AWS credentials in the environment \
             (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN), e.g. \
             `jit exec <auditor target> -- jit audit verify --bucket …`"
                .to_owned(),
        ));
    };
    Ok(Credentials::new(
        id,
        secret,
        var("AWS_SESSION_TOKEN"),
        None,
        "environment",
    ))
}

/// Verifies the bucket at `location` with `ring`; a bucket with problems is a failure that
/// lists them all.
pub async fn verify(location: &Location, ring: &KeyRing) -> Result<BucketSummary, Failure> {
    let mut config = aws_sdk_s3::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(location.region.clone()))
        .credentials_provider(credentials()?);
    if let Some(endpoint) = &location.endpoint {
        config = config.endpoint_url(endpoint).force_path_style(true);
    }
    let reader = S3 {
        client: aws_sdk_s3::Client::from_conf(config.build()),
        bucket: location.bucket.clone(),
    };
    let summary = verify_bucket(&reader, ring)
        .await
        .map_err(Failure::Unreachable)?;
    if summary.checkpoints == 0 {
        return Err(Failure::Tampered(format!(
            "the bucket `{}` holds no checkpoint: nothing was verified (a new deployment's \
             sweeper puts its first within minutes)",
            location.bucket
        )));
    }
    if !summary.problems.is_empty() {
        return Err(Failure::Tampered(format!(
            "the bucket `{}` does not verify:\n  {}",
            location.bucket,
            summary.problems.join("\n  ")
        )));
    }
    Ok(summary)
}
