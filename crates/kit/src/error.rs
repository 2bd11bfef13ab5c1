//! The one error type of the HTTP surface and its mapping to the OpenAPI document's error body.

use crate::table::StoreError;
use http::StatusCode;

/// What a 5xx body says in place of the detail it keeps to the log.
pub const SEE_THE_LOG: &str = "The server's log has the detail under this response's x-request-id.";

/// An error a client sees: status, fixed snake_case code, human sentence.
///
/// Endpoint crates keep their own closed error enums and convert into this in one
/// `From` impl, so the HTTP mapping of every error lives in one place per crate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// Methods the route does answer, for 405's `allow` header.
    pub allow: Option<String>,
    /// What went wrong inside, for the request's log line only: a client is never
    /// shown a storage or host error's text.
    pub detail: Option<String>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            allow: None,
            detail: None,
        }
    }

    /// `self` with `detail` for the log line.
    pub fn with_detail(self, detail: impl std::fmt::Display) -> Self {
        Self {
            detail: Some(detail.to_string()),
            ..self
        }
    }

    pub fn not_found() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "No route matches this path.",
        )
    }

    pub fn method_not_allowed(allow: String) -> Self {
        Self {
            allow: Some(allow),
            ..Self::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "This route does not answer that method.",
            )
        }
    }

    pub fn invalid_body(detail: impl std::fmt::Display) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "invalid_body",
            format!("The request body is not valid: {detail}."),
        )
    }

    pub fn invalid_query(detail: impl std::fmt::Display) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "invalid_query",
            format!("The query string is not valid: {detail}."),
        )
    }

    pub fn payload_too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("The request body is larger than {limit} bytes."),
        )
    }

    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "This operation needs a valid `authorization: Bearer <token>` header.",
        )
    }

    pub fn admin_disabled() -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "admin_disabled",
            "Admin operations are disabled: no admin token is configured for this deployment.",
        )
    }

    /// A 500 whose body says only that, and points at the request id; `detail` goes
    /// to the request's log line.
    pub fn internal(detail: impl std::fmt::Display) -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            format!("Internal error. {SEE_THE_LOG}"),
        )
        .with_detail(detail)
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}: {}",
            self.status.as_u16(),
            self.code,
            self.message
        )
    }
}

impl std::error::Error for ApiError {}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::ConditionFailed => Self::new(
                StatusCode::CONFLICT,
                "conflict",
                "The item changed while this request was writing it; retry.",
            ),
            StoreError::Contention => Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "storage_contention",
                "The item is being changed by many requests at once; retry shortly.",
            ),
            StoreError::PartitionFull(_) => Self::new(
                StatusCode::INSUFFICIENT_STORAGE,
                "partition_full",
                format!(
                    "This write would take its partition (for movies: the year) past the {} bytes one partition may hold; nothing was written.",
                    crate::table::MAX_PARTITION_BYTES
                ),
            ),
            StoreError::ItemTooLarge(_) => Self::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "item_too_large",
                format!(
                    "This write would store an item larger than the {} bytes one item may take; nothing was written.",
                    crate::table::MAX_ITEM_BYTES
                ),
            ),
            StoreError::Unconfigured(why) => Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "storage_unconfigured",
                format!("The deployment's storage is not configured. {SEE_THE_LOG}"),
            )
            .with_detail(why),
            other => Self::new(
                StatusCode::BAD_GATEWAY,
                "storage_unavailable",
                format!("The storage backend failed. {SEE_THE_LOG}"),
            )
            .with_detail(other),
        }
    }
}
