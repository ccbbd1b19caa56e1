//! Maps the SDK's errors into the crate's [`Error`].

use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};

use crate::error::Error;

/// Error codes that mean "try again later" rather than "this request is wrong".
const TRANSIENT_CODES: &[&str] = &[
    "ProvisionedThroughputExceededException",
    "RequestLimitExceeded",
    "ThrottlingException",
    "InternalServerError",
    "ServiceUnavailable",
    "LimitExceededException",
    "TransactionConflictException",
    // An MRSC global table: a write raced a conflicting one in another Region.
    "ReplicatedWriteConflictException",
];

/// Maps an SDK error that is not a conditional-check failure.
pub(crate) fn map_sdk_error<E>(err: SdkError<E, HttpResponse>, table: &str) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let code = err.code().map(str::to_owned);
    let message = match (&code, err.message(), &err) {
        (Some(code), Some(message), _) => format!("{code}: {message}"),
        (Some(code), None, _) => code.clone(),
        // Something answered, but not as DynamoDB would (a proxy, another server).
        (None, _, SdkError::ServiceError(e)) => format!(
            "unexpected HTTP {} response without a DynamoDB error code (is the endpoint DynamoDB?)",
            e.raw().status().as_u16()
        ),
        _ => describe(&err),
    };
    match &err {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            Error::StoreUnavailable {
                message,
                source: Some(Box::new(err)),
            }
        }
        SdkError::ServiceError(_) => match code.as_deref() {
            Some("ResourceNotFoundException") => Error::TableNotFound {
                table: table.to_owned(),
            },
            Some(code) if TRANSIENT_CODES.contains(&code) => Error::StoreUnavailable {
                message,
                source: Some(Box::new(err)),
            },
            _ => Error::StoreRejected {
                message,
                source: Some(Box::new(err)),
            },
        },
        _ => Error::StoreRejected {
            message,
            source: Some(Box::new(err)),
        },
    }
}

/// The error and its sources on one line: the SDK's top-level message alone
/// ("dispatch failure") does not say what failed.
fn describe(err: &dyn std::error::Error) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}
