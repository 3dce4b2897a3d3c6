//! `jit audit verify --bucket`: the audit bucket verified straight from S3, without the table
//! or the broker (`jit_core::archive::verify_bucket` does the checking).
//!
//! Credentials come from the environment only (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
//! `AWS_SESSION_TOKEN`), as `jit exec <auditor target> -- jit audit verify --bucket …` or
//! `aws configure export-credentials --format env` set them: the CLI carries no credential
//! chain of its own.

use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
use jit_core::archive::{BucketSummary, S3Bucket, compare_with_table, verify_bucket};
use jit_core::clock::Timestamp;
use jit_core::trust::KeyRing;

use crate::api::{Api, Failure};

/// Where the bucket is, and how to reach it.
pub struct Location {
    /// The bucket's name (the stack's `AuditBucketName` output).
    pub bucket: String,
    /// An S3 endpoint other than AWS's (path-style addressing then).
    pub endpoint: Option<String>,
    /// The bucket's region.
    pub region: String,
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

/// The table's checkpoints of `[from, to)`, through `GET /audit` (every checkpoint of the
/// range comes with its first page), 31 days at a time.
async fn table_checkpoints(
    api: &Api,
    from: Timestamp,
    to: Timestamp,
) -> Result<Vec<jit_core::trust::Checkpoint>, Failure> {
    let mut out = Vec::new();
    let mut start = from;
    while start < to {
        let end = start.plus_secs(31 * 86_400).min(to);
        let (a, b) = (start.to_rfc3339(), end.to_rfc3339());
        let page = api.call(|api| api.audit_page(&a, &b, None)).await?;
        out.extend(page.checkpoints);
        start = end;
    }
    Ok(out)
}

/// Verifies the bucket at `location` with `ring`, and with `table` compares its checkpoints
/// with the table's; a bucket with problems is a failure that lists them all.
pub async fn verify(
    location: &Location,
    ring: &KeyRing,
    table: Option<&Api>,
) -> Result<BucketSummary, Failure> {
    let mut config = aws_sdk_s3::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(location.region.clone()))
        .credentials_provider(credentials()?);
    if let Some(endpoint) = &location.endpoint {
        config = config.endpoint_url(endpoint).force_path_style(true);
    }
    let reader = S3Bucket::new(
        aws_sdk_s3::Client::from_conf(config.build()),
        &location.bucket,
    );
    let mut summary = verify_bucket(&reader, ring)
        .await
        .map_err(Failure::Unreachable)?;
    if let (Some(api), Some(from), Some(to)) =
        (table, summary.checkpointed_from, summary.checkpointed_until)
    {
        let held = table_checkpoints(api, from, to).await?;
        summary
            .problems
            .extend(compare_with_table(&summary.chain, &held));
        summary.compared_with_table = true;
    }
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
