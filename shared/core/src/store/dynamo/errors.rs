//! DynamoDB's errors, classified: what a retry can fix, and what only a fix of the deployment
//! can.

use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::AttributeValue;

use super::*;
use crate::cause::Cause;
use crate::store::StoreError;

/// Error codes DynamoDB answers for passing conditions: load, throttling, its own faults.
pub(super) const TRANSIENT_CODES: [&str; 7] = [
    "ProvisionedThroughputExceededException",
    "ThrottlingException",
    "RequestLimitExceeded",
    "InternalServerError",
    "ServiceUnavailable",
    "TransactionInProgressException",
    "LimitExceededException",
];

/// An SDK error, classified: what retrying can fix (unreachable, timed out, throttled, a 5xx)
/// is `Unavailable`; anything else (access denied, no such table, a malformed request) is
/// `Refused`. The SDK error is kept as the source.
pub(super) fn sdk_error<E>(
    e: SdkError<E, aws_sdk_dynamodb::config::http::HttpResponse>,
) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    match Cause::of_sdk_error(e, &TRANSIENT_CODES) {
        (cause, true) => StoreError::Unavailable { cause },
        (cause, false) => StoreError::Refused { cause },
    }
}

/// A request this adapter could not even build: a bug, never worth a retry.
pub(super) fn build_error(e: aws_sdk_dynamodb::error::BuildError) -> StoreError {
    StoreError::Refused {
        cause: Cause::new(None, e.to_string(), e),
    }
}

/// Whether a cancelled transaction failed only on its conditions (none throttled, none in
/// conflict): the items were not as the writer expected.
pub(super) fn only_conditions_failed(refusals: &[Option<String>]) -> bool {
    refusals
        .iter()
        .flatten()
        .all(|c| c == "ConditionalCheckFailed")
}

/// A cancelled transaction whose reasons are not the version checks this adapter expects.
pub(super) fn cancelled(refusals: &[Option<String>]) -> StoreError {
    let passing = refusals.iter().flatten().all(|c| {
        c == "ThrottlingError" || c == "TransactionConflict" || c == "ConditionalCheckFailed"
    });
    let cause = Cause::message(format!("transaction cancelled: {refusals:?}"));
    if passing {
        StoreError::Unavailable { cause }
    } else {
        StoreError::Refused { cause }
    }
}

pub(super) fn corrupt(item: &Item, e: serde_dynamo::Error) -> StoreError {
    let key = |k: &str| match item.get(k) {
        Some(AttributeValue::S(v)) => v.clone(),
        _ => "?".to_owned(),
    };
    StoreError::Corrupt {
        key: format!(
            "{}/{}",
            key(TableLayout::PARTITION_KEY),
            key(TableLayout::SORT_KEY)
        ),
        why: e.to_string(),
    }
}
