//! The seed's per-user rate-limited sample: `POST /ai/generate`, limited
//! to 10 an hour per verified user by default (policy `ai`). It does cheap,
//! deterministic work: a stand-in for an expensive model call.

use axum::Json;
use serde::{Deserialize, Serialize};

use crate::auth::api_key::{AiGenerate, Scoped};
use crate::error::{ApiError, FieldError, Result};
use crate::http::extract::ApiJson;

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GenerateBody {
    /// 1–2000 characters.
    pub prompt: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct GenerateOutput {
    pub output: String,
}

/// Echoes a summary of the prompt.
#[utoipa::path(post, path = "/ai/generate", tag = "samples", security(("bearer" = []), ("oauth2" = [])),
    request_body = GenerateBody,
    responses(
        (status = 200, description = "Generated", body = GenerateOutput),
        (status = 401, description = "No valid token", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid prompt", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limited", body = crate::error::Problem, content_type = "application/problem+json"),
    ))]
pub async fn generate(
    caller: Scoped<AiGenerate>,
    ApiJson(body): ApiJson<GenerateBody>,
) -> Result<Json<GenerateOutput>> {
    let chars = body.prompt.chars().count();
    if !(1..=2000).contains(&chars) {
        return Err(ApiError::Validation(vec![FieldError::new(
            "prompt",
            "must be 1 to 2000 characters",
        )]));
    }
    let words = body.prompt.split_whitespace().count();
    Ok(Json(GenerateOutput {
        output: format!(
            "Hello {}: your prompt has {words} words and {chars} characters.",
            caller.user.username
        ),
    }))
}
