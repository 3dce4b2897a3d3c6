//! Public keys and local verification, and software keys for tests and local tools.

use std::collections::BTreeMap;
use std::sync::Arc;

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_ASN1, ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair, ParsedPublicKey,
};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde::{Deserialize, Serialize};

use super::{RecordSignature, SignError, Signing, SigningKey};
use crate::domain::Service;

/// One function's public key, as exported for auditors.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublicKey {
    /// The function whose key it is.
    pub signer: Service,
    /// The key's id (the KMS key's ARN).
    pub key_id: String,
    /// The DER-encoded X.509 SubjectPublicKeyInfo, base64.
    pub spki: String,
}

/// Why a signature does not count.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureProblem {
    /// The record carries no signature.
    #[error("it is not signed")]
    Unsigned,
    /// The signature names a key that is not one of the functions' keys.
    #[error("it is signed with key `{key_id}`, which is not one of the functions' keys")]
    UnknownKey {
        /// The key named.
        key_id: String,
    },
    /// The signature claims one function but the key belongs to another.
    #[error("it claims the {claimed} function's signature but key `{key_id}` is the {owner}'s")]
    WrongOwner {
        /// The function the signature names.
        claimed: Service,
        /// The function the key belongs to.
        owner: Service,
        /// The key.
        key_id: String,
    },
    /// The signature does not match the message under the key.
    #[error("its signature does not verify under the {signer} function's key")]
    Invalid {
        /// The function whose key was tried.
        signer: Service,
    },
    /// The function that signed is not the one allowed to write it.
    #[error("it is signed by the {signer} function, but only the {author} function may write it")]
    WrongAuthor {
        /// Who signed.
        signer: Service,
        /// Who may write it.
        author: Service,
    },
}

/// A KMS key named by ARN or by bare id is the same key: KMS answers `Sign` with the ARN and
/// may answer `GetPublicKey` with either.
fn key_ref(id: &str) -> &str {
    match id.strip_prefix("arn:") {
        Some(rest) if rest.contains(":kms:") => id.rsplit('/').next().unwrap_or(id),
        _ => id,
    }
}

/// The functions' public keys: what verification trusts.
#[derive(Debug, Clone, Default)]
pub struct KeyRing {
    keys: BTreeMap<String, (PublicKey, Option<ParsedPublicKey>)>,
}

impl KeyRing {
    /// A ring of `keys`. A key whose bytes are not a P-256 public key is kept (so it is
    /// exported as found) but verifies nothing.
    pub fn new(keys: impl IntoIterator<Item = PublicKey>) -> Self {
        let keys = keys
            .into_iter()
            .map(|key| {
                let parsed = B64
                    .decode(&key.spki)
                    .ok()
                    .and_then(|der| ParsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, der).ok());
                (key_ref(&key.key_id).to_owned(), (key, parsed))
            })
            .collect();
        Self { keys }
    }

    /// The keys, for export.
    pub fn public_keys(&self) -> Vec<PublicKey> {
        self.keys.values().map(|(k, _)| k.clone()).collect()
    }

    /// Whether the ring holds no key at all.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Checks that `signature` is `author`'s, over `message`.
    pub fn verify(
        &self,
        signature: Option<&RecordSignature>,
        author: Service,
        message: &[u8],
    ) -> Result<(), SignatureProblem> {
        let signature = signature.ok_or(SignatureProblem::Unsigned)?;
        let (key, parsed) = self.keys.get(key_ref(&signature.key_id)).ok_or_else(|| {
            SignatureProblem::UnknownKey {
                key_id: signature.key_id.clone(),
            }
        })?;
        if key.signer != signature.signer {
            return Err(SignatureProblem::WrongOwner {
                claimed: signature.signer,
                owner: key.signer,
                key_id: key.key_id.clone(),
            });
        }
        let invalid = || SignatureProblem::Invalid { signer: key.signer };
        let der = B64.decode(&signature.value).map_err(|_| invalid())?;
        parsed
            .as_ref()
            .ok_or_else(invalid)?
            .verify_sig(message, &der)
            .map_err(|_| invalid())?;
        if key.signer != author {
            return Err(SignatureProblem::WrongAuthor {
                signer: key.signer,
                author,
            });
        }
        Ok(())
    }
}

/// A software P-256 key: for tests, benchmarks and tools. Deployed functions sign with KMS.
#[derive(Clone, Debug)]
pub struct LocalKey {
    signer: Service,
    key_id: String,
    pair: Arc<EcdsaKeyPair>,
}

impl LocalKey {
    /// A fresh key for `signer`.
    pub fn generate(signer: Service) -> Self {
        // Generating a P-256 key only fails if the system has no randomness at all.
        #[allow(clippy::expect_used, reason = "no randomness means no keys at all")]
        let pair = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_ASN1_SIGNING)
            .expect("the system provides randomness");
        let spki = pair.public_key().as_der().map(|d| d.as_ref().to_vec());
        let fingerprint = spki
            .map(|d| hex::encode(sha2_digest(&d).iter().take(8).copied().collect::<Vec<u8>>()))
            .unwrap_or_default();
        Self {
            signer,
            key_id: format!("local:{}:{fingerprint}", signer.as_str()),
            pair: Arc::new(pair),
        }
    }

    /// The function the key belongs to.
    pub fn signer(&self) -> Service {
        self.signer
    }

    /// Its public half.
    pub fn public_key(&self) -> PublicKey {
        let der = self
            .pair
            .public_key()
            .as_der()
            .map(|d| d.as_ref().to_vec())
            .unwrap_or_default();
        PublicKey {
            signer: self.signer,
            key_id: self.key_id.clone(),
            spki: B64.encode(der),
        }
    }

    /// Signs `message` as whoever `signer` says, without the author check: what someone who
    /// holds this key (and nothing else) can produce.
    pub fn sign_as(&self, message: &[u8]) -> RecordSignature {
        let value = self
            .pair
            .sign(&SystemRandom::new(), message)
            .map(|s| B64.encode(s.as_ref()))
            .unwrap_or_default();
        RecordSignature {
            signer: self.signer,
            key_id: self.key_id.clone(),
            value,
        }
    }
}

fn sha2_digest(bytes: &[u8]) -> Vec<u8> {
    use sha2::Digest;
    sha2::Sha256::digest(bytes).to_vec()
}

impl SigningKey for LocalKey {
    fn sign(&self, author: Service, message: Vec<u8>) -> Signing<'_> {
        Box::pin(async move {
            SignError::require_author(self.signer, author)?;
            Ok(self.sign_as(&message))
        })
    }
}

/// One software key per function, signing each record with its author's key: a test store
/// that plays every function at once.
#[derive(Debug, Clone)]
pub struct LocalKeys {
    keys: BTreeMap<Service, LocalKey>,
}

impl LocalKeys {
    /// Four fresh keys.
    pub fn generate() -> Self {
        Self {
            keys: Service::ALL
                .into_iter()
                .map(|s| (s, LocalKey::generate(s)))
                .collect(),
        }
    }

    /// The key of one function.
    pub fn key(&self, signer: Service) -> LocalKey {
        self.keys
            .get(&signer)
            .cloned()
            .unwrap_or_else(|| LocalKey::generate(signer))
    }

    /// The ring of all four public keys.
    pub fn ring(&self) -> KeyRing {
        KeyRing::new(self.keys.values().map(LocalKey::public_key))
    }
}

impl SigningKey for LocalKeys {
    fn sign(&self, author: Service, message: Vec<u8>) -> Signing<'_> {
        Box::pin(async move { Ok(self.key(author).sign_as(&message)) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trust::record_message;

    #[test]
    fn a_signature_verifies_only_under_its_authors_key_and_message() {
        let keys = LocalKeys::generate();
        let ring = keys.ring();
        let message = record_message(&"01".repeat(32));
        let sig = keys.key(Service::Approver).sign_as(&message);
        ring.verify(Some(&sig), Service::Approver, &message)
            .unwrap();

        let other = record_message(&"02".repeat(32));
        assert_eq!(
            ring.verify(Some(&sig), Service::Approver, &other),
            Err(SignatureProblem::Invalid {
                signer: Service::Approver
            })
        );
        assert_eq!(
            ring.verify(Some(&sig), Service::Issuer, &message),
            Err(SignatureProblem::WrongAuthor {
                signer: Service::Approver,
                author: Service::Issuer
            })
        );
        assert_eq!(
            ring.verify(None, Service::Approver, &message),
            Err(SignatureProblem::Unsigned)
        );

        // Relabelling intake's signature as the approver's does not make it one.
        let mut relabelled = keys.key(Service::Intake).sign_as(&message);
        relabelled.signer = Service::Approver;
        assert!(matches!(
            ring.verify(Some(&relabelled), Service::Approver, &message),
            Err(SignatureProblem::WrongOwner { .. })
        ));

        // A key from outside the ring counts for nothing, whatever it claims.
        let stranger = LocalKey::generate(Service::Approver).sign_as(&message);
        assert!(matches!(
            ring.verify(Some(&stranger), Service::Approver, &message),
            Err(SignatureProblem::UnknownKey { .. })
        ));
    }

    #[test]
    fn a_kms_key_named_by_id_in_the_ring_verifies_signatures_naming_its_arn() {
        let key = LocalKey::generate(Service::Issuer);
        let mut public = key.public_key();
        public.key_id = "1234abcd-12ab-34cd-56ef-1234567890ab".to_owned();
        let ring = KeyRing::new([public]);
        let message = record_message(&"03".repeat(32));
        let mut sig = key.sign_as(&message);
        sig.key_id = "arn:aws:kms:eu-west-1:111111111111:key/1234abcd-12ab-34cd-56ef-1234567890ab"
            .to_owned();
        ring.verify(Some(&sig), Service::Issuer, &message).unwrap();
        // An alias-like name that merely ends the same way is another key.
        sig.key_id = "local:issuer/1234abcd-12ab-34cd-56ef-1234567890ab".to_owned();
        assert!(ring.verify(Some(&sig), Service::Issuer, &message).is_err());
    }

    #[tokio::test]
    async fn a_functions_key_refuses_to_sign_for_another() {
        let intake = LocalKey::generate(Service::Intake);
        let refused = intake.sign(Service::Approver, b"m".to_vec()).await;
        assert_eq!(
            refused,
            Err(SignError::NotAuthor {
                holder: Service::Intake,
                needed: Service::Approver
            })
        );
    }
}
