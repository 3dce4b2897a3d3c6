//! What the stack creates on the emulator before the functions start: the table from the
//! template and the demo target roles from `targets.json`, with trust policies taken from
//! `infra/target-account.yaml` (and, in other accounts, that stack's revoker role).
// Indexing a JSON value or a template node by key or position returns Null when absent: it
// never panics.
#![allow(clippy::indexing_slicing)]

use std::collections::BTreeMap;

use jit_local::cfn::{Node, Template};
use serde_json::{Value, json};

use jit_core::policy::Rules;

/// The broker's account in the example configuration: targets without a revoker role live
/// here, so the emulator's default account is this one.
pub const BROKER_ACCOUNT: &str = jit_local::BROKER_ACCOUNT;

/// The roles the stack's functions stand for.
pub fn issuer_role() -> String {
    format!("arn:aws:iam::{BROKER_ACCOUNT}:role/jit-issuer")
}

/// The sweeper's role.
pub fn sweeper_role() -> String {
    format!("arn:aws:iam::{BROKER_ACCOUNT}:role/jit-sweeper")
}

/// A CloudFormation value as JSON, with references resolved from `refs`.
pub fn cfn_json(value: &Node, refs: &BTreeMap<&str, String>) -> Value {
    let refs = refs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), json!(v)))
        .collect();
    value.resolve(&refs)
}

/// The template's signing keys, by logical id: one per function.
pub const SIGNING_KEYS: [&str; 4] = [
    "IntakeSigningKey",
    "ApproverSigningKey",
    "IssuerSigningKey",
    "SweeperSigningKey",
];

/// Creates each function's signing key in the emulator's KMS as the template declares it
/// (ECC_NIST_P256, SIGN_VERIFY). Returns logical id → key id, what `!Ref` gives in AWS.
pub async fn create_signing_keys(
    config: &aws_config::SdkConfig,
) -> Result<BTreeMap<String, String>, String> {
    let kms = aws_sdk_kms::Client::new(config);
    let mut keys = BTreeMap::new();
    for name in SIGNING_KEYS {
        let key = kms
            .create_key()
            .key_spec(aws_sdk_kms::types::KeySpec::EccNistP256)
            .key_usage(aws_sdk_kms::types::KeyUsageType::SignVerify)
            .description(format!("jit-access {name}"))
            .send()
            .await
            .map_err(|e| aws_sdk_kms::error::DisplayErrorContext(e).to_string())?
            .key_metadata
            .ok_or("the emulator created a key without metadata")?;
        keys.insert(name.to_owned(), key.key_id);
    }
    Ok(keys)
}

/// Creates the audit bucket as the template declares it: versioned, Object Lock on with the
/// template's default mode and retention, encrypted, public access blocked.
pub async fn create_audit_bucket(config: &aws_config::SdkConfig, name: &str) -> Result<(), String> {
    use aws_sdk_s3::types::{
        DefaultRetention, ObjectLockConfiguration, ObjectLockEnabled, ObjectLockRetentionMode,
        ObjectLockRule, PublicAccessBlockConfiguration, ServerSideEncryption,
        ServerSideEncryptionByDefault, ServerSideEncryptionConfiguration, ServerSideEncryptionRule,
    };
    let template =
        jit_local::cfn::Template::load(&jit_local::workspace_root().join("template.yaml"))
            .map_err(|e| e.to_string())?;
    let mode = template
        .default_of("AuditLockMode")
        .unwrap_or_else(|| "COMPLIANCE".into());
    let days: i32 = template
        .default_of("AuditRetentionDays")
        .and_then(|d| d.parse().ok())
        .ok_or("the template's AuditRetentionDays has no numeric default")?;
    let s3 = jit_sweeper::s3_client(config);
    s3.create_bucket()
        .bucket(name)
        .object_lock_enabled_for_bucket(true)
        .send()
        .await
        .map_err(s3_error)?;
    let rule = ObjectLockRule::builder()
        .default_retention(
            DefaultRetention::builder()
                .mode(ObjectLockRetentionMode::from(mode.as_str()))
                .days(days)
                .build(),
        )
        .build();
    s3.put_object_lock_configuration()
        .bucket(name)
        .object_lock_configuration(
            ObjectLockConfiguration::builder()
                .object_lock_enabled(ObjectLockEnabled::Enabled)
                .rule(rule)
                .build(),
        )
        .send()
        .await
        .map_err(s3_error)?;
    let encryption = ServerSideEncryptionConfiguration::builder()
        .rules(
            ServerSideEncryptionRule::builder()
                .apply_server_side_encryption_by_default(
                    ServerSideEncryptionByDefault::builder()
                        .sse_algorithm(ServerSideEncryption::Aes256)
                        .build()
                        .map_err(|e| e.to_string())?,
                )
                .build(),
        )
        .build()
        .map_err(|e| e.to_string())?;
    s3.put_bucket_encryption()
        .bucket(name)
        .server_side_encryption_configuration(encryption)
        .send()
        .await
        .map_err(s3_error)?;
    s3.put_public_access_block()
        .bucket(name)
        .public_access_block_configuration(
            PublicAccessBlockConfiguration::builder()
                .block_public_acls(true)
                .block_public_policy(true)
                .ignore_public_acls(true)
                .restrict_public_buckets(true)
                .build(),
        )
        .send()
        .await
        .map_err(s3_error)?;
    Ok(())
}

fn s3_error(e: impl std::error::Error) -> String {
    aws_sdk_s3::error::DisplayErrorContext(e).to_string()
}

fn iam_error(e: impl std::error::Error + Send + Sync + 'static) -> String {
    aws_sdk_iam::error::DisplayErrorContext(e).to_string()
}

/// Creates every target role of `rules` in its account, trusted as `infra/target-account.yaml`
/// trusts it, and each other account's revoker role. Returns how many roles were made.
pub async fn create_roles(config: &aws_config::SdkConfig, rules: &Rules) -> Result<usize, String> {
    let doc = Template::workspace("infra/target-account.yaml").map_err(|e| e.to_string())?;
    let boundary_name = doc
        .default_of("BoundaryName")
        .unwrap_or_else(|| "jit-target-boundary".to_owned());
    let sts = aws_sdk_sts::Client::new(config);
    let broker_iam = aws_sdk_iam::Client::new(config);
    let mut made = 0;
    let mut accounts_made: Vec<String> = Vec::new();
    for target in rules.targets() {
        let account = target.account.as_str();
        let refs = BTreeMap::from([
            ("IssuerRoleArn", issuer_role()),
            ("SweeperRoleArn", sweeper_role()),
            ("AWS::Partition", "aws".to_owned()),
            ("AWS::AccountId", account.to_owned()),
            ("BoundaryName", boundary_name.clone()),
        ]);
        let iam = match &target.binding.revoker_role_arn {
            None => broker_iam.clone(),
            // The account's IAM as its revoker role sees it (the emulator puts calls made
            // with an assumed role's credentials in that role's account).
            Some(revoker) => {
                jit_sweeper::iam_as(config, &sts, revoker.as_str(), "jit-stack-setup")
                    .await?
                    .0
            }
        };
        // The account's revoker role and permissions boundary, once per account, as the
        // target-account stack makes them.
        if !accounts_made.contains(&account.to_owned()) {
            let setup = AccountSetup {
                iam: &iam,
                doc: &doc,
                refs: &refs,
            };
            if let Some(revoker) = &target.binding.revoker_role_arn {
                setup.create_revoker(revoker.as_str()).await?;
                made += 1;
            }
            setup.create_boundary(&boundary_name).await?;
            accounts_made.push(account.to_owned());
        }
        let name = target.binding.role_arn.name();
        let trust = &doc.properties("TargetRole")["AssumeRolePolicyDocument"];
        iam.create_role()
            .role_name(name)
            .path("/jit/")
            .permissions_boundary(format!("arn:aws:iam::{account}:policy/{boundary_name}"))
            .max_session_duration(i32::try_from(target.binding.max_session_secs).unwrap_or(3600))
            .assume_role_policy_document(cfn_json(trust, &refs).to_string())
            .send()
            .await
            .map_err(iam_error)?;
        made += 1;
    }
    for role in [issuer_role(), sweeper_role()] {
        let name = role.rsplit('/').next().unwrap_or_default();
        broker_iam
            .create_role()
            .role_name(name)
            .assume_role_policy_document(
                json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
                    "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]})
                .to_string(),
            )
            .send()
            .await
            .map_err(iam_error)?;
        made += 1;
    }
    Ok(made)
}

/// One account as the target-account stack sets it up: its IAM, the template, and the values
/// the template's references resolve to there.
struct AccountSetup<'a> {
    iam: &'a aws_sdk_iam::Client,
    doc: &'a Template,
    refs: &'a BTreeMap<&'a str, String>,
}

impl AccountSetup<'_> {
    /// The account's revoker role (`revoker`), with its trust and policies as the template
    /// declares them.
    async fn create_revoker(&self, revoker: &str) -> Result<(), String> {
        let (iam, doc, refs) = (self.iam, self.doc, self.refs);
        let props = doc.properties("RevokerRole");
        let name = revoker.rsplit('/').next().unwrap_or("jit-revoker");
        iam.create_role()
            .role_name(name)
            .assume_role_policy_document(
                cfn_json(&props["AssumeRolePolicyDocument"], refs).to_string(),
            )
            .send()
            .await
            .map_err(iam_error)?;
        for p in props["Policies"].as_sequence().into_iter().flatten() {
            iam.put_role_policy()
                .role_name(name)
                .policy_name(p["PolicyName"].as_str().unwrap_or("revoker"))
                .policy_document(cfn_json(&p["PolicyDocument"], refs).to_string())
                .send()
                .await
                .map_err(iam_error)?;
        }
        Ok(())
    }

    /// The account's permissions boundary `name`, as the template makes it.
    async fn create_boundary(&self, name: &str) -> Result<(), String> {
        let (iam, doc, refs) = (self.iam, self.doc, self.refs);
        let document = &doc.properties("TargetBoundary")["PolicyDocument"];
        let made = iam
            .create_policy()
            .policy_name(name)
            .policy_document(cfn_json(document, refs).to_string())
            .send()
            .await;
        // The emulator may keep managed policy names in one namespace for every account.
        match made {
            Err(e) => {
                let why = iam_error(e);
                if why.contains("EntityAlreadyExists") {
                    Ok(())
                } else {
                    Err(format!("creating the permissions boundary {name}: {why}"))
                }
            }
            Ok(_) => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trust_policies_resolve_their_references() {
        // A revoker role's trust policy as target-account.yaml writes it.
        let policy = "Version: '2012-10-17'\nStatement:\n  - Effect: Allow\n    Principal: {AWS: !Ref IssuerRoleArn}\n    Action: sts:AssumeRole\n    Resource: !Sub 'arn:${AWS::Partition}:iam::${AWS::AccountId}:role/jit/*'\n";
        let refs = BTreeMap::from([
            ("IssuerRoleArn", "arn:aws:iam::1:role/jit-issuer".to_owned()),
            ("AWS::Partition", "aws".to_owned()),
            ("AWS::AccountId", "222222222222".to_owned()),
        ]);
        let statement = json!({
            "Effect": "Allow",
            "Principal": {"AWS": "arn:aws:iam::1:role/jit-issuer"},
            "Action": "sts:AssumeRole",
            "Resource": "arn:aws:iam::222222222222:role/jit/*",
        });
        let resolved = cfn_json(&Node::parse(policy).unwrap(), &refs);
        assert_eq!(
            resolved,
            json!({"Version": "2012-10-17", "Statement": [statement]})
        );
    }
}
