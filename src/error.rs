//! One error type for every handler and layer, rendered as RFC 9457
//! problem details (`application/problem+json`).
//!
//! Expected failures carry messages that are safe to show. Unexpected ones
//! (`Internal`) are logged with their whole cause chain under the request id
//! and answer only "An internal error occurred".
//!
//! Every problem body names the request it answers: the request-id layer
//! (`http::request_id`) runs each request inside [`with_request_id`], and
//! [`Problem::new`] reads the id from there. This module sits at the bottom
//! of the crate and imports nothing of it, so every layer may return an
//! [`ApiError`]; how database errors map onto it lives in `storage`.

use std::future::Future;

use axum::Json;
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};
use serde::Serialize;

tokio::task_local! {
    static REQUEST_ID: HeaderValue;
}

/// Runs `fut` as the serving of the request `id`: problems rendered and
/// errors logged inside it carry that id.
pub async fn with_request_id<F: Future>(id: HeaderValue, fut: F) -> F::Output {
    REQUEST_ID.scope(id, fut).await
}

/// The id of the request this task is serving, if any.
pub fn current_request_id() -> Option<String> {
    REQUEST_ID
        .try_with(|v| v.to_str().map(str::to_owned).ok())
        .ok()
        .flatten()
}

/// The media type of every error body except the token endpoint's.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// `Result` with [`ApiError`] as the default error.
pub type Result<T, E = ApiError> = std::result::Result<T, E>;

/// One invalid field of a request.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// Everything that can go wrong in a request.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("validation failed")]
    Validation(Vec<FieldError>),
    /// 401; `invalid_token` when a token was presented and refused.
    #[error("unauthorized")]
    Unauthorized { invalid_token: bool },
    #[error("forbidden")]
    Forbidden,
    /// 403 with a reason the caller may know.
    #[error("{0}")]
    Denied(String),
    /// 403: the caller's role must have a second factor and has none; the
    /// token is good only for enrolling one.
    #[error("mfa enrolment required")]
    MfaEnrolmentRequired,
    #[error("not found")]
    NotFound,
    #[error("{0}")]
    Conflict(String),
    #[error("payload too large")]
    PayloadTooLarge,
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("too many requests")]
    TooManyRequests { retry_after: u64 },
    /// 503 for a dependency that is down or a pool that is full.
    #[error("{0}")]
    Unavailable(String),
    #[error("request timed out")]
    Timeout,
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

/// The problem-details body.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Problem {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub title: String,
    pub status: u16,
    pub detail: String,
    pub request_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errors: Option<Vec<FieldError>>,
}

impl Problem {
    /// A problem for `status` with the status's own title.
    pub fn new(status: StatusCode, detail: impl Into<String>) -> Self {
        Self {
            kind: "about:blank",
            title: status.canonical_reason().unwrap_or("Error").to_owned(),
            status: status.as_u16(),
            detail: detail.into(),
            request_id: current_request_id().unwrap_or_default(),
            errors: None,
        }
    }

    /// The generic text for a status that carries nothing more specific.
    pub fn for_status(status: StatusCode) -> Self {
        let detail = match status.as_u16() {
            404 => "No resource at this path",
            405 => "This method is not allowed on this resource",
            408 => "The request was not received in time",
            413 => "The request body is too large",
            415 => "Unsupported content type",
            429 => "Too many requests",
            s if s >= 500 => INTERNAL,
            _ => "The request could not be processed",
        };
        Self::new(status, detail)
    }
}

const INTERNAL: &str = "An internal error occurred";

/// The problem `type` of [`ApiError::MfaEnrolmentRequired`].
pub const MFA_ENROLMENT_REQUIRED: &str = "urn:palisade:problem:mfa_enrolment_required";

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = (status, Json(self)).into_response();
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        response
    }
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Validation(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Unauthorized { .. } => StatusCode::UNAUTHORIZED,
            Self::Forbidden | Self::Denied(_) | Self::MfaEnrolmentRequired => StatusCode::FORBIDDEN,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Unavailable(_) | Self::Timeout => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let mut problem = Problem::for_status(status);
        match &self {
            Self::BadRequest(m)
            | Self::Conflict(m)
            | Self::UnsupportedMediaType(m)
            | Self::Unavailable(m)
            | Self::Denied(m) => {
                problem.detail.clone_from(m);
            }
            Self::Validation(errors) => {
                problem.detail = "The request has invalid fields".into();
                problem.errors = Some(errors.clone());
            }
            Self::Unauthorized { .. } => problem.detail = "Missing or invalid credentials".into(),
            Self::Forbidden => problem.detail = "Your role does not allow this".into(),
            Self::MfaEnrolmentRequired => {
                problem.kind = MFA_ENROLMENT_REQUIRED;
                problem.title = "mfa_enrolment_required".into();
                problem.detail = "Your role requires a second factor: enrol one at POST /mfa/totp, then log in again".into();
            }
            Self::TooManyRequests { retry_after } => {
                problem.detail = format!("Rate limit exceeded; retry in {retry_after} s");
            }
            Self::Timeout => problem.detail = "The request took too long".into(),
            Self::Internal(cause) => {
                tracing::error!(error = ?cause, "internal error");
            }
            Self::NotFound | Self::PayloadTooLarge => {}
        }
        let mut response = problem.into_response();
        let headers = response.headers_mut();
        match self {
            Self::Unauthorized { invalid_token } => {
                let value = if invalid_token {
                    "Bearer error=\"invalid_token\""
                } else {
                    "Bearer"
                };
                headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(value));
            }
            Self::TooManyRequests { retry_after } => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
            }
            Self::Timeout => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            }
            _ => {}
        }
        response
    }
}
