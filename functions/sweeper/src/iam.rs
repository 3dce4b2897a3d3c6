//! The IAM port: put or delete a target role's revocation policy, in the broker's account or,
//! through that account's revoker role, in another.

use std::future::Future;
use std::sync::Arc;

use tokio::sync::OnceCell;

use aws_sdk_iam::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};

use jit_core::domain::{RoleArn, TargetRole};

/// Why a role's policy could not be changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot change the policy of `{role}`: {why}")]
pub struct PolicyError {
    /// The role.
    pub role: String,
    /// What went wrong.
    pub why: String,
}

/// Reads and changes one inline policy on target roles. The role comes from the grant as
/// recorded, never from the current targets file.
pub trait RolePolicies: Send + Sync {
    /// The inline policy `name` on `role` as IAM holds it now (URL-decoded), `None` when the
    /// role has no such policy or no longer exists.
    fn get(
        &self,
        role: &TargetRole,
        name: &str,
    ) -> impl Future<Output = Result<Option<String>, PolicyError>> + Send;

    /// Puts `document` as the inline policy `name` on `role`.
    fn put(
        &self,
        role: &TargetRole,
        name: &str,
        document: &str,
    ) -> impl Future<Output = Result<(), PolicyError>> + Send;

    /// Deletes the inline policy `name` from `role`; absent is fine.
    fn delete(
        &self,
        role: &TargetRole,
        name: &str,
    ) -> impl Future<Output = Result<(), PolicyError>> + Send;
}

/// The role name IAM's policy calls take: the ARN's last path segment.
pub fn role_name(arn: &RoleArn) -> &str {
    arn.name()
}

/// An IAM client with the credentials of `role` (assumed for 15 minutes as `session`), and the
/// ARN of the session STS gave. Everything that acts in a target account through its revoker
/// role goes through this: the sweeper, and the local stack's setup and demo.
pub async fn iam_as(
    config: &aws_config::SdkConfig,
    sts: &aws_sdk_sts::Client,
    role: &str,
    session: &str,
) -> Result<(aws_sdk_iam::Client, Option<String>), String> {
    let out = sts
        .assume_role()
        .role_arn(role)
        .role_session_name(session)
        .duration_seconds(900)
        .send()
        .await
        .map_err(|e| DisplayErrorContext(e).to_string())?;
    let assumed = out.assumed_role_user.as_ref().map(|u| u.arn.clone());
    let creds = out
        .credentials
        .ok_or_else(|| "STS gave no credentials".to_owned())?;
    let provider = aws_credential_types::Credentials::new(
        creds.access_key_id,
        creds.secret_access_key,
        Some(creds.session_token),
        None,
        "jit-revoker",
    );
    let config = aws_sdk_iam::config::Builder::from(config)
        .credentials_provider(provider)
        .build();
    Ok((aws_sdk_iam::Client::from_conf(config), assumed))
}

/// IAM through the SDK. A target with a revoker role is changed with that role's credentials
/// (assumed per call, so they never outlive their use).
///
/// IAM's policy calls address a role by name within the caller's account, so before any call
/// the account of the credentials in use must be the recorded role ARN's account: a target in
/// another account without a revoker role (or with a revoker role in yet another account) would
/// otherwise change a same-named role in the wrong account and read it back as done.
#[derive(Debug, Clone)]
pub struct IamPolicies {
    config: aws_config::SdkConfig,
    iam: aws_sdk_iam::Client,
    sts: aws_sdk_sts::Client,
    /// The broker's own account, from `sts:GetCallerIdentity` (which needs no permission),
    /// asked once.
    own_account: Arc<OnceCell<String>>,
}

impl IamPolicies {
    /// IAM and STS clients for the broker's own account, from `config`.
    pub fn new(config: &aws_config::SdkConfig) -> Self {
        Self {
            config: config.clone(),
            iam: aws_sdk_iam::Client::new(config),
            sts: aws_sdk_sts::Client::new(config),
            own_account: Arc::new(OnceCell::new()),
        }
    }

    /// The client that may change `role`, once its account is known to be the role's.
    async fn client_for(&self, role: &TargetRole) -> Result<aws_sdk_iam::Client, PolicyError> {
        let failed = |why: String| PolicyError {
            role: role.role_arn.to_string(),
            why,
        };
        let Some(wanted) = role.role_arn.account() else {
            return Err(failed(
                "the recorded role is not an IAM role ARN naming its account".to_owned(),
            ));
        };
        let Some(revoker) = &role.revoker_role_arn else {
            let own = self
                .own_account
                .get_or_try_init(|| async {
                    let out = self.sts.get_caller_identity().send().await.map_err(|e| {
                        failed(format!(
                            "asking STS which account the sweeper is in: {}",
                            DisplayErrorContext(e)
                        ))
                    })?;
                    out.account
                        .ok_or_else(|| failed("STS did not say the sweeper's account".to_owned()))
                })
                .await?;
            if own != wanted {
                return Err(failed(format!(
                    "the role is in account {wanted} and the grant recorded no revoker role \
                     there; the sweeper's own credentials are for account {own}, where a \
                     role of the same name would be changed instead (deploy \
                     infra/target-account.yaml with CreateRevoker=true in {wanted} and name \
                     its revoker role on the target)"
                )));
            }
            return Ok(self.iam.clone());
        };
        if revoker.account() != Some(wanted) {
            return Err(failed(format!(
                "the recorded revoker role `{revoker}` is not in the role's account {wanted}"
            )));
        }
        let (iam, assumed) = iam_as(&self.config, &self.sts, revoker.as_str(), "jit-sweeper")
            .await
            .map_err(|e| failed(format!("assuming revoker role `{revoker}`: {e}")))?;
        let assumed_account = assumed.as_deref().and_then(|arn| arn.split(':').nth(4));
        if assumed_account != Some(wanted) {
            return Err(failed(format!(
                "assuming `{revoker}` gave a session in account {} rather than {wanted}",
                assumed_account.unwrap_or("(unnamed)")
            )));
        }
        Ok(iam)
    }
}

fn iam_error<E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static>(
    role: &RoleArn,
    e: SdkError<E>,
) -> PolicyError {
    PolicyError {
        role: role.to_string(),
        why: DisplayErrorContext(e).to_string(),
    }
}

/// IAM returns policy documents URL-encoded (RFC 3986); a document that is already JSON is
/// returned as it is.
fn url_decoded(document: String) -> String {
    if document.trim_start().starts_with('{') {
        return document;
    }
    let bytes = document.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        let escaped = (b == b'%')
            .then(|| bytes.get(i + 1..i + 3))
            .flatten()
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match escaped {
            Some(v) => {
                out.push(v);
                i += 3;
            }
            None => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).unwrap_or(document)
}

impl RolePolicies for IamPolicies {
    async fn get(&self, role: &TargetRole, name: &str) -> Result<Option<String>, PolicyError> {
        let client = self.client_for(role).await?;
        match client
            .get_role_policy()
            .role_name(role_name(&role.role_arn))
            .policy_name(name)
            .send()
            .await
        {
            Ok(out) => Ok(Some(url_decoded(out.policy_document))),
            Err(SdkError::ServiceError(e)) if e.err().code() == Some("NoSuchEntity") => Ok(None),
            Err(e) => Err(iam_error(&role.role_arn, e)),
        }
    }

    async fn put(&self, role: &TargetRole, name: &str, document: &str) -> Result<(), PolicyError> {
        let client = self.client_for(role).await?;
        client
            .put_role_policy()
            .role_name(role_name(&role.role_arn))
            .policy_name(name)
            .policy_document(document)
            .send()
            .await
            .map_err(|e| iam_error(&role.role_arn, e))?;
        Ok(())
    }

    async fn delete(&self, role: &TargetRole, name: &str) -> Result<(), PolicyError> {
        let client = self.client_for(role).await?;
        match client
            .delete_role_policy()
            .role_name(role_name(&role.role_arn))
            .policy_name(name)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(SdkError::ServiceError(e)) if e.err().code() == Some("NoSuchEntity") => Ok(()),
            Err(e) => Err(iam_error(&role.role_arn, e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_are_url_decoded_as_iam_returns_them() {
        let json = r#"{"Version":"2012-10-17","Statement":[]}"#;
        assert_eq!(url_decoded(json.to_owned()), json);
        assert_eq!(
            url_decoded("%7B%22Version%22%3A%222012-10-17%22%2C%22Statement%22%3A%5B%5D%7D".into()),
            json
        );
        assert_eq!(url_decoded("%7Bbroken%2".into()), "{broken%2");
    }
}
