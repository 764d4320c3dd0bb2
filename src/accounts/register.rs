//! `POST /auth/register`.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;

use crate::auth::AuthState;
use crate::auth::audit::{self, Event, RequestContext};
use crate::domain::password::Owner;
use crate::domain::{Email, Name, Role, User, Username};
use crate::error::{ApiError, FieldError, Result};
use crate::http::extract::ApiJson;
use crate::storage::{self, users};

/// The registration body. Unknown fields (`id`, `created_at`, `disabled`,
/// ...) are refused, so a client can set nothing the route does not name.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterBody {
    pub email: String,
    /// 3–50 of `[A-Za-z0-9_]`.
    #[schema(min_length = 3, max_length = 50, pattern = "^[A-Za-z0-9_]+$")]
    pub username: String,
    /// 1–100 characters.
    #[schema(min_length = 1, max_length = 100)]
    pub name: String,
    /// 12–128 characters (counted after NFKC normalization); not common,
    /// not guessable, not containing the username or email.
    #[schema(min_length = 12, max_length = 128)]
    pub password: String,
    /// Only a role of `auth.self_registration_roles` (default `user`;
    /// `admin` and `super_admin` never).
    #[schema(value_type = Option<SelfRegistrationRole>)]
    pub role: Option<String>,
}

/// The roles a client may ask for at registration, at most (the document's
/// enumeration of `RegisterBody.role`; the server's allowlist may be
/// narrower).
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SelfRegistrationRole {
    User,
    Editor,
}

impl std::fmt::Debug for RegisterBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegisterBody")
            .field("email", &self.email)
            .field("username", &self.username)
            .field("name", &self.name)
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
}

/// Validated registration input.
struct Valid {
    email: Email,
    username: Username,
    name: Name,
    password: crate::domain::Password,
    role: Role,
}

fn validate(state: &AuthState, body: &RegisterBody) -> Result<Valid> {
    let mut errors = Vec::new();
    let mut field = |name: &str, r: std::result::Result<(), &str>| {
        if let Err(message) = r {
            errors.push(FieldError::new(name, message));
        }
    };
    let email = Email::parse(&body.email);
    field("email", email.as_ref().map(|_| ()).map_err(|e| *e));
    let username = Username::parse(&body.username);
    field("username", username.as_ref().map(|_| ()).map_err(|e| *e));
    let name = Name::parse(&body.name);
    field("name", name.as_ref().map(|_| ()).map_err(|e| *e));
    let owner = Owner {
        username: &body.username,
        email: &body.email,
        name: &body.name,
    };
    let password = state.passwords.check(&body.password, owner);
    field("password", password.as_ref().map(|_| ()).map_err(|e| *e));
    let allowed = &state.settings.auth.self_registration_roles;
    let role = match body.role.as_deref() {
        None => Ok(Role::User),
        Some(text) => match text.parse::<Role>() {
            Ok(role) if allowed.contains(&role) => Ok(role),
            _ => Err("is not a role you can register with"),
        },
    };
    field("role", role.map(|_| ()));
    match (email, username, name, password, role) {
        (Ok(email), Ok(username), Ok(name), Ok(password), Ok(role)) if errors.is_empty() => {
            Ok(Valid {
                email,
                username,
                name,
                password,
                role,
            })
        }
        _ => Err(ApiError::Validation(errors)),
    }
}

/// Creates an account.
#[utoipa::path(post, path = "/auth/register", tag = "accounts",
    request_body = RegisterBody,
    responses(
        (status = 201, description = "Account created", body = User),
        (status = 409, description = "Email or username taken", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not JSON", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limited", body = crate::error::Problem, content_type = "application/problem+json"),
    ))]
#[tracing::instrument(skip_all)]
pub async fn register(
    State(state): State<AuthState>,
    ctx: RequestContext,
    ApiJson(body): ApiJson<RegisterBody>,
) -> Result<(StatusCode, Json<User>)> {
    let valid = validate(&state, &body)?;
    let pool = state.db.pool();
    let taken =
        |field: &str| ApiError::Conflict(format!("An account with this {field} already exists"));
    if let Some(field) = users::taken(pool, &valid.email.key(), &valid.username.key()).await? {
        return Err(taken(field));
    }
    let hash = state
        .hasher
        .hash(valid.password.expose().to_owned())
        .await?;
    let new = users::NewUser {
        email: valid.email.as_str(),
        email_key: &valid.email.key(),
        username: valid.username.as_str(),
        username_key: &valid.username.key(),
        name: valid.name.as_str(),
        role: valid.role,
        password_hash: &hash,
    };
    let user: User = match users::insert(pool, &new, storage::now_ms()).await {
        Ok(user) => user,
        // Lost a race with a concurrent registration of the same key: the
        // violated unique column says which.
        Err(e) => match users::taken_by(&e) {
            Some(field) => return Err(taken(field)),
            None => return Err(e.into()),
        },
    };
    audit::record(&state.db, Event::Register, &ctx, Some(&user.id), None).await?;
    Ok((StatusCode::CREATED, Json(user)))
}
