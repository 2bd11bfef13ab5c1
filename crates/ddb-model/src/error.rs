//! DynamoDB's errors, as DynamoDB sends them: HTTP 400 (500 for internal errors) and
//! `{"__type": "<prefix>#<Name>", "message": "…"}`, with the prefixes real DynamoDB uses.

use serde_json::{json, Value};

/// Every error this endpoint answers with: a closed set, one per DynamoDB error type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Validation,
    Serialization,
    UnknownOperation,
    MissingAuthenticationToken,
    UnrecognizedClient,
    InvalidSignature,
    IncompleteSignature,
    ResourceNotFound,
    ResourceInUse,
    ConditionalCheckFailed,
    ItemCollectionSizeLimitExceeded,
    TransactionCanceled,
    TransactionConflict,
    TransactionInProgress,
    IdempotentParameterMismatch,
    LimitExceeded,
    ServiceUnavailable,
    Internal,
}

impl Kind {
    const ALL: [Kind; 18] = [
        Kind::Validation,
        Kind::Serialization,
        Kind::UnknownOperation,
        Kind::MissingAuthenticationToken,
        Kind::UnrecognizedClient,
        Kind::InvalidSignature,
        Kind::IncompleteSignature,
        Kind::ResourceNotFound,
        Kind::ResourceInUse,
        Kind::ConditionalCheckFailed,
        Kind::ItemCollectionSizeLimitExceeded,
        Kind::TransactionCanceled,
        Kind::TransactionConflict,
        Kind::TransactionInProgress,
        Kind::IdempotentParameterMismatch,
        Kind::LimitExceeded,
        Kind::ServiceUnavailable,
        Kind::Internal,
    ];

    /// The kind whose [`Kind::type_name`] is `name`.
    pub fn from_type_name(name: &str) -> Option<Kind> {
        Self::ALL.into_iter().find(|k| k.type_name() == name)
    }

    /// The `__type` DynamoDB sends.
    pub fn type_name(self) -> &'static str {
        match self {
            Kind::Validation => "com.amazon.coral.validate#ValidationException",
            Kind::Serialization => "com.amazon.coral.service#SerializationException",
            Kind::UnknownOperation => "com.amazon.coral.service#UnknownOperationException",
            Kind::MissingAuthenticationToken => {
                "com.amazon.coral.service#MissingAuthenticationTokenException"
            }
            Kind::UnrecognizedClient => "com.amazon.coral.service#UnrecognizedClientException",
            Kind::InvalidSignature => "com.amazon.coral.service#InvalidSignatureException",
            Kind::IncompleteSignature => "com.amazon.coral.service#IncompleteSignatureException",
            Kind::ResourceNotFound => "com.amazonaws.dynamodb.v20120810#ResourceNotFoundException",
            Kind::ResourceInUse => "com.amazonaws.dynamodb.v20120810#ResourceInUseException",
            Kind::ConditionalCheckFailed => {
                "com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException"
            }
            Kind::ItemCollectionSizeLimitExceeded => {
                "com.amazonaws.dynamodb.v20120810#ItemCollectionSizeLimitExceededException"
            }
            Kind::TransactionCanceled => {
                "com.amazonaws.dynamodb.v20120810#TransactionCanceledException"
            }
            Kind::TransactionConflict => {
                "com.amazonaws.dynamodb.v20120810#TransactionConflictException"
            }
            Kind::TransactionInProgress => {
                "com.amazonaws.dynamodb.v20120810#TransactionInProgressException"
            }
            Kind::IdempotentParameterMismatch => {
                "com.amazonaws.dynamodb.v20120810#IdempotentParameterMismatchException"
            }
            Kind::LimitExceeded => "com.amazonaws.dynamodb.v20120810#LimitExceededException",
            Kind::ServiceUnavailable => "com.amazonaws.dynamodb.v20120810#ServiceUnavailable",
            Kind::Internal => "com.amazonaws.dynamodb.v20120810#InternalServerError",
        }
    }

    pub fn status(self) -> u16 {
        match self {
            Kind::Internal => 500,
            Kind::ServiceUnavailable => 503,
            _ => 400,
        }
    }
}

/// One DynamoDB error.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{}: {message}", kind.type_name())]
pub struct DynamoError {
    pub kind: Kind,
    pub message: String,
    /// `Item` of a `ConditionalCheckFailedException` that asked for it.
    pub item: Option<Value>,
    /// `CancellationReasons` of a `TransactionCanceledException`, one per action.
    pub reasons: Option<Value>,
    /// What went wrong inside, for the request's log line only, never the body.
    pub detail: Option<String>,
}

impl DynamoError {
    pub fn new(kind: Kind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            item: None,
            reasons: None,
            detail: None,
        }
    }

    /// `InternalServerError`, its body generic; `detail` goes to the log line only.
    pub fn internal(detail: impl std::fmt::Display) -> Self {
        Self {
            detail: Some(detail.to_string()),
            ..Self::new(
                Kind::Internal,
                format!("Internal server error. {}", kit::SEE_THE_LOG),
            )
        }
    }

    pub fn validation(message: impl Into<String>) -> Self {
        Self::new(Kind::Validation, message)
    }

    /// DynamoDB's `ValidationException` for request parameter `name` left out.
    pub fn missing(name: &str) -> Self {
        Self::validation(format!(
            "The parameter '{name}' is required but was not present in the request"
        ))
    }

    pub fn serialization(message: impl Into<String>) -> Self {
        Self::new(Kind::Serialization, message)
    }

    /// The response body.
    pub fn body(&self) -> Value {
        let mut body = json!({"__type": self.kind.type_name(), "message": self.message});
        if let Some(item) = &self.item {
            body["Item"] = item.clone();
        }
        if let Some(reasons) = &self.reasons {
            body["CancellationReasons"] = reasons.clone();
        }
        body
    }
}

impl From<kit::table::StoreError> for DynamoError {
    fn from(e: kit::table::StoreError) -> Self {
        match e {
            kit::table::StoreError::ConditionFailed => DynamoError::new(
                Kind::ConditionalCheckFailed,
                "The conditional request failed",
            ),
            kit::table::StoreError::PartitionFull(_) => DynamoError::new(
                Kind::ItemCollectionSizeLimitExceeded,
                format!(
                    "Item collection size limit exceeded: the items of one partition key may take {} bytes here",
                    kit::table::MAX_PARTITION_BYTES
                ),
            ),
            kit::table::StoreError::ItemTooLarge(_) => {
                DynamoError::validation("Item size has exceeded the maximum allowed size")
            }
            kit::table::StoreError::Unconfigured(why) => DynamoError {
                detail: Some(why),
                ..DynamoError::new(
                    Kind::ServiceUnavailable,
                    format!(
                        "The deployment's storage is not configured. {}",
                        kit::SEE_THE_LOG
                    ),
                )
            },
            other => DynamoError::internal(other),
        }
    }
}
