//! Extractors whose every rejection is a problem-details response: JSON
//! bodies (415 for another content type, 400 for malformed JSON, 422 with
//! the field for a body of the wrong shape or with an unknown field) and
//! query strings (422).

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use bytes::Bytes;
use http::header;
use serde::de::DeserializeOwned;

use crate::error::{ApiError, FieldError};

/// A JSON request body.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiJson<T>(pub T);

fn is_json(content_type: &str) -> bool {
    let essence = content_type.split(';').next().unwrap_or_default().trim();
    essence.eq_ignore_ascii_case("application/json")
        || essence.rsplit_once('+').is_some_and(|(kind, suffix)| {
            kind.starts_with("application/") && suffix.eq_ignore_ascii_case("json")
        })
}

/// Turns a serde error into a field error, naming the field by its path.
fn field_error<E: std::fmt::Display>(err: serde_path_to_error::Error<E>) -> FieldError {
    let path = err.path().to_string();
    let field = if path == "." { String::new() } else { path };
    let message = err.inner().to_string();
    // Drop serde's position suffix. The message may quote the client's
    // own value back to it (`invalid type: string "x"`); that is never
    // logged and never anyone else's data.
    let message = message
        .split(" at line ")
        .next()
        .unwrap_or_default()
        .to_owned();
    FieldError::new(field, message)
}

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(is_json);
        if !json {
            return Err(ApiError::UnsupportedMediaType(
                "Expected a body with Content-Type: application/json".into(),
            ));
        }
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|_| ApiError::PayloadTooLarge)?;
        parse_json(&bytes).map(ApiJson)
    }
}

/// Parses JSON, telling malformed input (400) from a wrong shape (422).
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        if e.inner().is_data() {
            ApiError::Validation(vec![field_error(e)])
        } else {
            ApiError::BadRequest("The body is not valid JSON".into())
        }
    })?;
    de.end()
        .map_err(|_| ApiError::BadRequest("The body is not valid JSON".into()))?;
    Ok(value)
}

/// A query string.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or_default();
        let de = serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
        serde_path_to_error::deserialize(de)
            .map(ApiQuery)
            .map_err(|e| ApiError::Validation(vec![field_error(e)]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_media_types_are_recognised() {
        assert!(is_json("application/json"));
        assert!(is_json("Application/JSON; charset=utf-8"));
        assert!(is_json("application/merge-patch+json"));
        assert!(!is_json("text/plain"));
        assert!(!is_json("application/x-www-form-urlencoded"));
        assert!(!is_json("text/json+xml"));
    }
}
