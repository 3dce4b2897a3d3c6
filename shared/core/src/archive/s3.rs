//! [`BucketReader`] through S3: `ListObjectVersions` and `GetObject` by version id.

use aws_sdk_s3::error::{DisplayErrorContext, SdkError};

use super::{BucketReader, ListedVersion};

/// The audit bucket, read through S3.
#[derive(Debug, Clone)]
pub struct S3Bucket {
    client: aws_sdk_s3::Client,
    bucket: String,
}

fn failed<E: std::error::Error + 'static>(what: &str, e: SdkError<E>) -> String {
    format!("{what}: {}", DisplayErrorContext(e))
}

impl S3Bucket {
    /// The bucket named `bucket`, through `client`.
    pub fn new(client: aws_sdk_s3::Client, bucket: &str) -> Self {
        Self {
            client,
            bucket: bucket.to_owned(),
        }
    }
}

impl BucketReader for S3Bucket {
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
