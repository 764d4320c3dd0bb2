//! Extractors whose every rejection is a problem-details response: JSON
//! bodies (415 for another content type, 400 for malformed JSON, 422 with
//! the field for a body of the wrong shape or with an unknown field) and
//! query strings (422).
//!
//! Both refuse text that a database cannot store, so that bad input is the
//! same 422 on SQLite and on PostgreSQL and never reaches a query: a NUL
//! character (U+0000), which PostgreSQL's `text` refuses and SQLite would
//! store. (Invalid UTF-8 and lone surrogates are already malformed JSON or
//! an invalid query, refused before this check.)

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

/// The message for text no database can store.
pub const NUL_MESSAGE: &str = "must not contain a NUL character (U+0000)";

/// Whether a JSON text has a `\u0000` escape inside a string: the only way
/// JSON can carry a NUL (a raw control character is malformed JSON). One
/// pass, no allocation; escapes are consumed in order, so `\\u0000` (an
/// escaped backslash, then the letters `u0000`) is not one.
fn json_has_nul(bytes: &[u8]) -> bool {
    let mut in_string = false;
    let mut i = 0;
    while i < bytes.len() {
        match (in_string, bytes[i]) {
            (false, b'"') => in_string = true,
            (true, b'"') => in_string = false,
            (true, b'\\') => {
                if bytes.get(i + 1) == Some(&b'u') && bytes.get(i + 2..i + 6) == Some(b"0000") {
                    return true;
                }
                i += 1;
            }
            _ => {}
        }
        i += 1;
    }
    false
}

/// The path of the first string (or key) holding a NUL, e.g. `name` or
/// `items[2].label`.
fn nul_path(value: &serde_json::Value, path: &str) -> Option<String> {
    use serde_json::Value;
    let join = |key: &str| {
        if path.is_empty() {
            key.to_owned()
        } else {
            format!("{path}.{key}")
        }
    };
    match value {
        Value::String(s) if s.contains('\0') => Some(path.to_owned()),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(i, v)| nul_path(v, &format!("{path}[{i}]"))),
        Value::Object(map) => map.iter().find_map(|(k, v)| {
            if k.contains('\0') {
                Some(join(""))
            } else {
                nul_path(v, &join(k))
            }
        }),
        _ => None,
    }
}

/// Parses a JSON object, telling malformed input (400) from a wrong shape
/// (422: anything but an object, or fields that do not fit) and refusing
/// a NUL anywhere in it (422, naming the field).
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    if json_has_nul(bytes) {
        // Rare: parse again only to name the field.
        let field = serde_json::from_slice::<serde_json::Value>(bytes)
            .map_err(|_| ApiError::BadRequest("The body is not valid JSON".into()))?;
        let field = nul_path(&field, "").unwrap_or_default();
        return Err(ApiError::Validation(vec![FieldError::new(
            field,
            NUL_MESSAGE,
        )]));
    }
    // Every body Palisade takes is an object. serde would also read a
    // struct from an array of its fields in order (`["New Name", null]`
    // as a profile patch), a shape no client means and no document says.
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        if serde_json::from_slice::<serde::de::IgnoredAny>(bytes).is_err() {
            return Err(ApiError::BadRequest("The body is not valid JSON".into()));
        }
        return Err(ApiError::Validation(vec![FieldError::new(
            "",
            "The body must be a JSON object",
        )]));
    }
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
        if let Some((key, _)) = form_urlencoded::parse(query.as_bytes())
            .find(|(k, v)| k.contains('\0') || v.contains('\0'))
        {
            let field = if key.contains('\0') { "" } else { &key };
            return Err(ApiError::Validation(vec![FieldError::new(
                field,
                NUL_MESSAGE,
            )]));
        }
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
    fn a_nul_escape_inside_a_string_is_found_and_named() {
        assert!(json_has_nul(br#"{"name": "a\u0000b"}"#));
        assert!(json_has_nul(br#"{"a\u0000": 1}"#));
        assert!(
            !json_has_nul(br#"{"name": "a\\u0000b"}"#),
            "an escaped backslash"
        );
        assert!(
            json_has_nul(br#"{"name": "\u00001"}"#),
            "a NUL then a digit"
        );
        assert!(!json_has_nul(br#"{"name": "a\u0001b", "n": 0}"#));
        let err =
            parse_json::<serde_json::Value>(br#"{"items": [{"label": "x\u0000"}]}"#).unwrap_err();
        let ApiError::Validation(errors) = err else {
            panic!("not a 422: {err:?}");
        };
        assert_eq!(errors[0].field, "items[0].label");
        assert_eq!(errors[0].message, NUL_MESSAGE);
    }

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
