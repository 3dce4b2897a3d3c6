//! Signing with a function's KMS key, and reading the functions' public keys once per start.

use aws_sdk_kms::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::{MessageType, SigningAlgorithmSpec};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;

use super::{KeyRing, PublicKey, PublicKeys, RecordSignature, SignError, Signing, SigningKey};
use crate::cause::Cause;
use crate::domain::Service;

/// KMS error codes that a retry can fix.
const TRANSIENT_CODES: [&str; 4] = [
    "ThrottlingException",
    "KMSInternalException",
    "DependencyTimeoutException",
    "LimitExceededException",
];

fn kms_error<E>(e: SdkError<E, aws_sdk_kms::config::http::HttpResponse>) -> SignError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    match Cause::of_sdk_error(e, &TRANSIENT_CODES) {
        (cause, true) => SignError::Unavailable(cause),
        (cause, false) => SignError::Refused(cause),
    }
}

/// A function's own KMS key (ECC_NIST_P256, SIGN_VERIFY).
#[derive(Debug, Clone)]
pub struct KmsKey {
    client: aws_sdk_kms::Client,
    signer: Service,
    key_id: String,
}

impl KmsKey {
    /// The key `key_id` (an ARN, id or alias), held by `signer`.
    pub fn new(client: aws_sdk_kms::Client, signer: Service, key_id: impl Into<String>) -> Self {
        Self {
            client,
            signer,
            key_id: key_id.into(),
        }
    }
}

impl SigningKey for KmsKey {
    fn sign(&self, author: Service, message: Vec<u8>) -> Signing<'_> {
        Box::pin(async move {
            SignError::require_author(self.signer, author)?;
            let out = self
                .client
                .sign()
                .key_id(&self.key_id)
                .message(Blob::new(message))
                .message_type(MessageType::Raw)
                .signing_algorithm(SigningAlgorithmSpec::EcdsaSha256)
                .send()
                .await
                .map_err(kms_error)?;
            let value = out
                .signature()
                .map(|b| B64.encode(b.as_ref()))
                .ok_or_else(|| {
                    SignError::Unavailable(Cause::message("KMS answered Sign without a signature"))
                })?;
            Ok(RecordSignature {
                signer: self.signer,
                key_id: out.key_id().unwrap_or(&self.key_id).to_owned(),
                value,
            })
        })
    }
}

/// Reads each function's public key (`GetPublicKey`, all at once) into a ring. Keys are named
/// by the ARN KMS answers with, which is what signatures carry.
pub async fn load_key_ring(
    client: &aws_sdk_kms::Client,
    keys: &[(Service, String)],
) -> Result<KeyRing, SignError> {
    let reads = keys.iter().map(|(signer, key_id)| async move {
        let out = client
            .get_public_key()
            .key_id(key_id)
            .send()
            .await
            .map_err(kms_error)?;
        let der = out.public_key().ok_or_else(|| {
            SignError::Refused(Cause::message(format!(
                "KMS gave no public key for `{key_id}`"
            )))
        })?;
        Ok::<_, SignError>(PublicKey {
            signer: *signer,
            key_id: out.key_id().unwrap_or(key_id).to_owned(),
            spki: B64.encode(der.as_ref()),
        })
    });
    let keys = futures::future::join_all(reads)
        .await
        .into_iter()
        .collect::<Result<Vec<_>, _>>()?;
    Ok(KeyRing::new(keys))
}

/// The functions' public keys, read from KMS (`GetPublicKey`, all at once) when first needed.
pub fn kms_public_keys(client: aws_sdk_kms::Client, keys: Vec<(Service, String)>) -> PublicKeys {
    let keys = std::sync::Arc::new(keys);
    PublicKeys::read_with(move || {
        let (client, keys) = (client.clone(), std::sync::Arc::clone(&keys));
        Box::pin(async move { load_key_ring(&client, &keys).await })
    })
}
