//! The audit bucket: where the sweeper puts each closed period's records (OCSF JSON Lines,
//! gzip) and the signed checkpoint naming them, under S3 Object Lock, so the trail outlives
//! the table and an insider who can rewrite the table cannot rewrite what was already put.
//!
//! Every put is a create-only put (`If-None-Match: *`, which the bucket policy requires) with
//! its own retention date, encrypted (SSE-S3) and checksummed (SHA-256). A put that finds its
//! key taken reads what is there: the same records (a sweep whose checkpoint write was lost)
//! are reused, anything else is reported.

use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::{ByteStream, DateTime};
use aws_sdk_s3::types::{ChecksumAlgorithm, ObjectLockMode, ServerSideEncryption};
use base64::Engine as _;

use jit_core::clock::Timestamp;
use jit_http::startup::{StartupError, parsed, setting};

/// The bucket's settings, from the environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BucketSettings {
    /// The bucket's name (`JIT_AUDIT_BUCKET`).
    pub bucket: String,
    /// `COMPLIANCE` (nobody, not even the root user, shortens or removes it) or `GOVERNANCE`
    /// (for trials: a principal allowed `s3:BypassGovernanceRetention` can)
    /// (`JIT_AUDIT_LOCK_MODE`).
    pub mode: String,
    /// How long each object is kept, in days (`JIT_AUDIT_RETENTION_DAYS`).
    pub retention_days: i64,
}

impl BucketSettings {
    /// Reads the settings; `None` when no bucket is configured (a deployment without one keeps
    /// its checkpoints in the table only).
    pub fn from_env() -> Result<Option<Self>, StartupError> {
        let Some(bucket) = setting("JIT_AUDIT_BUCKET").filter(|b| !b.is_empty()) else {
            return Ok(None);
        };
        let mode = parsed("JIT_AUDIT_LOCK_MODE", |text| match text {
            "COMPLIANCE" | "GOVERNANCE" => Ok(text.to_owned()),
            _ => Err("must be COMPLIANCE or GOVERNANCE".to_owned()),
        })?
        .unwrap_or_else(|| "COMPLIANCE".to_owned());
        let retention_days = parsed("JIT_AUDIT_RETENTION_DAYS", |text| {
            text.parse::<i64>()
                .ok()
                .filter(|d| (1..=36_500).contains(d))
                .ok_or_else(|| "must be 1 to 36500 days".to_owned())
        })?
        .unwrap_or(400);
        Ok(Some(Self {
            bucket,
            mode,
            retention_days,
        }))
    }
}

/// What a create-only put found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Put {
    /// The object was written: this version.
    Written {
        /// Its version id.
        version_id: String,
    },
    /// The key was taken already; nothing was written.
    Taken,
}

/// The current version of an object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    /// Its bytes.
    pub bytes: Vec<u8>,
    /// Its version id.
    pub version_id: String,
}

/// The audit bucket, through S3.
#[derive(Debug, Clone)]
pub struct AuditBucket {
    client: aws_sdk_s3::Client,
    settings: BucketSettings,
}

/// An S3 client for `config`: path-style addressing when an endpoint is set
/// (`AWS_ENDPOINT_URL`: the emulator on loopback, which has no bucket subdomains).
pub fn s3_client(config: &aws_config::SdkConfig) -> aws_sdk_s3::Client {
    let path_style = config.endpoint_url().is_some();
    let s3 = aws_sdk_s3::config::Builder::from(config)
        .force_path_style(path_style)
        .build();
    aws_sdk_s3::Client::from_conf(s3)
}

fn s3_error<E: std::error::Error + 'static>(what: &str, e: SdkError<E>) -> String {
    format!("{what}: {}", DisplayErrorContext(e))
}

impl AuditBucket {
    /// The bucket `settings` names, through `client`.
    pub fn new(client: aws_sdk_s3::Client, settings: BucketSettings) -> Self {
        Self { client, settings }
    }

    /// The bucket's name.
    pub fn name(&self) -> &str {
        &self.settings.bucket
    }

    /// Puts `bytes` at `key` unless the key holds an object already, locked until
    /// `now + retention`.
    pub async fn put_new(
        &self,
        key: &str,
        bytes: Vec<u8>,
        content_type: &str,
        now: Timestamp,
    ) -> Result<Put, String> {
        let until = now.plus_secs(self.settings.retention_days.saturating_mul(86_400));
        let sha256 = base64::engine::general_purpose::STANDARD
            .encode(<sha2::Sha256 as sha2::Digest>::digest(&bytes));
        let mode = ObjectLockMode::from(self.settings.mode.as_str());
        let put = self
            .client
            .put_object()
            .bucket(&self.settings.bucket)
            .key(key)
            .if_none_match("*")
            .content_type(content_type)
            .server_side_encryption(ServerSideEncryption::Aes256)
            .checksum_algorithm(ChecksumAlgorithm::Sha256)
            .checksum_sha256(sha256)
            .object_lock_mode(mode)
            .object_lock_retain_until_date(DateTime::from_secs(until.unix_seconds()))
            .body(ByteStream::from(bytes));
        match put.send().await {
            Ok(out) => Ok(Put::Written {
                version_id: out.version_id.ok_or_else(|| {
                    format!(
                        "the bucket `{}` gave no version id for `{key}`: is versioning on?",
                        self.settings.bucket
                    )
                })?,
            }),
            Err(SdkError::ServiceError(e))
                if e.raw().status().as_u16() == 412
                    || e.err().code() == Some("PreconditionFailed") =>
            {
                Ok(Put::Taken)
            }
            Err(e) => Err(s3_error(&format!("putting `{key}`"), e)),
        }
    }

    /// The current version of `key`, if there is one.
    pub async fn current(&self, key: &str) -> Result<Option<Stored>, String> {
        let out = match self
            .client
            .get_object()
            .bucket(&self.settings.bucket)
            .key(key)
            .send()
            .await
        {
            Ok(out) => out,
            Err(SdkError::ServiceError(e)) if e.raw().status().as_u16() == 404 => return Ok(None),
            Err(e) => return Err(s3_error(&format!("reading `{key}`"), e)),
        };
        let version_id = out.version_id.clone().unwrap_or_default();
        let bytes = out
            .body
            .collect()
            .await
            .map_err(|e| format!("reading `{key}`: {e}"))?
            .into_bytes()
            .to_vec();
        Ok(Some(Stored { bytes, version_id }))
    }
}
