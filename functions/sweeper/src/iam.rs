//! The IAM port: put or delete a target role's revocation policy, in the broker's account or,
//! through that account's revoker role, in another.

use std::future::Future;

use aws_sdk_iam::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};

use jit_core::domain::RoleArn;
use jit_core::policy::Target;

/// Why a role's policy could not be changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot change the policy of `{role}`: {why}")]
pub struct PolicyError {
    /// The role.
    pub role: String,
    /// What went wrong.
    pub why: String,
}

/// Changes one inline policy on target roles.
pub trait RolePolicies: Send + Sync {
    /// Puts `document` as the inline policy `name` on the target's role.
    fn put(
        &self,
        target: &Target,
        name: &str,
        document: &str,
    ) -> impl Future<Output = Result<(), PolicyError>> + Send;

    /// Deletes the inline policy `name` from the target's role; absent is fine.
    fn delete(
        &self,
        target: &Target,
        name: &str,
    ) -> impl Future<Output = Result<(), PolicyError>> + Send;
}

/// The role name IAM's policy calls take: the ARN's last path segment.
pub fn role_name(arn: &RoleArn) -> &str {
    arn.as_str().rsplit('/').next().unwrap_or(arn.as_str())
}

/// IAM through the SDK. A target with a revoker role is changed with that role's credentials
/// (assumed per call, so they never outlive their use).
#[derive(Debug, Clone)]
pub struct IamPolicies {
    config: aws_config::SdkConfig,
    iam: aws_sdk_iam::Client,
    sts: aws_sdk_sts::Client,
}

impl IamPolicies {
    /// IAM and STS clients for the broker's own account, from `config`.
    pub fn new(config: &aws_config::SdkConfig) -> Self {
        Self {
            config: config.clone(),
            iam: aws_sdk_iam::Client::new(config),
            sts: aws_sdk_sts::Client::new(config),
        }
    }

    /// With the IAM client and STS client given (so tests can count their calls).
    pub fn with_clients(
        config: &aws_config::SdkConfig,
        iam: aws_sdk_iam::Client,
        sts: aws_sdk_sts::Client,
    ) -> Self {
        Self {
            config: config.clone(),
            iam,
            sts,
        }
    }

    /// The client that may change `target`'s role.
    async fn client_for(&self, target: &Target) -> Result<aws_sdk_iam::Client, PolicyError> {
        let Some(revoker) = &target.revoker_role_arn else {
            return Ok(self.iam.clone());
        };
        let failed = |why: String| PolicyError {
            role: target.role_arn.to_string(),
            why,
        };
        let out = self
            .sts
            .assume_role()
            .role_arn(revoker.as_str())
            .role_session_name("jit-sweeper")
            .duration_seconds(900)
            .send()
            .await
            .map_err(|e| {
                failed(format!(
                    "assuming revoker role `{revoker}`: {}",
                    DisplayErrorContext(e)
                ))
            })?;
        let creds = out
            .credentials
            .ok_or_else(|| failed(format!("assuming `{revoker}` gave no credentials")))?;
        let provider = aws_credential_types::Credentials::new(
            creds.access_key_id,
            creds.secret_access_key,
            Some(creds.session_token),
            None,
            "jit-revoker",
        );
        let config = aws_sdk_iam::config::Builder::from(&self.config)
            .credentials_provider(provider)
            .build();
        Ok(aws_sdk_iam::Client::from_conf(config))
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

impl RolePolicies for IamPolicies {
    async fn put(&self, target: &Target, name: &str, document: &str) -> Result<(), PolicyError> {
        let client = self.client_for(target).await?;
        client
            .put_role_policy()
            .role_name(role_name(&target.role_arn))
            .policy_name(name)
            .policy_document(document)
            .send()
            .await
            .map_err(|e| iam_error(&target.role_arn, e))?;
        Ok(())
    }

    async fn delete(&self, target: &Target, name: &str) -> Result<(), PolicyError> {
        let client = self.client_for(target).await?;
        match client
            .delete_role_policy()
            .role_name(role_name(&target.role_arn))
            .policy_name(name)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(SdkError::ServiceError(e)) if e.err().code() == Some("NoSuchEntity") => Ok(()),
            Err(e) => Err(iam_error(&target.role_arn, e)),
        }
    }
}
