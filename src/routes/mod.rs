//! The routes of the API and the assembled application. Each handler
//! carries its OpenAPI annotation and is registered through
//! `OpenApiRouter::routes`, so the document served at `/openapi.json` is
//! built from the router itself and cannot drift. [`router`] puts the
//! routes, the rate limiter and the hardened stack together.

pub mod ai;
pub mod data;
pub mod docs;
pub mod health;
pub mod metrics;
pub mod table;

use std::sync::Arc;

use axum::Router;
use axum::middleware::from_fn_with_state;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::accounts::{email, profile, register, sessions};
use crate::admin::{audit_log, users as admin_users};
use crate::error::ApiError;
use crate::http::{rate_limit, stack};
use crate::mfa;
use crate::state::AppState;
use crate::tokens::routes as tokens;

/// The whole application: every route, the rate limiter on every route and
/// on the 404 fallback, and the hardened stack around it all.
pub fn router(state: AppState) -> Router {
    let settings = Arc::clone(&state.settings);
    let (api, mut openapi) = api_with(settings.server.sample_routes).split_for_parts();
    docs::document_common_responses(&mut openapi);
    let mut app = api;
    if settings.server.docs {
        app = app.merge(docs::router(openapi));
    }
    if settings.metrics.token.is_some() {
        app = app.route("/metrics", axum::routing::get(metrics::with_token));
    }
    // Gateway mode: a path none of these routes has goes to the gateway,
    // which forwards it when a `gateway.routes` pattern matches (else 404).
    let mut app = match &state.gateway {
        Some(gateway) => app.fallback_service(
            axum::routing::any(crate::gateway::fallback).with_state(Arc::clone(gateway)),
        ),
        None => app.fallback(|| async { ApiError::NotFound }),
    }
    .layer(from_fn_with_state(
        Arc::clone(&state.limiter),
        rate_limit::layer,
    ));
    if settings.metrics.enabled() {
        // Outside the limiter, so its 429s are counted too.
        app = app.layer(axum::middleware::from_fn(crate::http::metrics::layer));
    }
    if let Some(gateway) = &state.gateway {
        // Outside both: they find a gateway request's pattern by it.
        app = app.layer(from_fn_with_state(
            Arc::clone(gateway),
            crate::gateway::label,
        ));
    }
    let app = app.with_state(state);
    stack::apply(app, &settings)
}

/// Every documented route.
pub fn api() -> OpenApiRouter<AppState> {
    api_with(true)
}

/// The documented routes, with or without the tutorials' samples
/// (`server.sample_routes`).
fn api_with(samples: bool) -> OpenApiRouter<AppState> {
    let api = OpenApiRouter::with_openapi(docs::ApiDoc::openapi())
        .routes(routes!(health::live))
        .routes(routes!(health::ready))
        .routes(routes!(register::register))
        .routes(routes!(tokens::token))
        .routes(routes!(tokens::login))
        .routes(routes!(tokens::login_mfa))
        .routes(routes!(tokens::revoke))
        .routes(routes!(tokens::logout))
        .routes(routes!(crate::tokens::discovery::jwks))
        .routes(routes!(crate::tokens::discovery::metadata))
        .routes(routes!(profile::get_profile, profile::patch_profile))
        .routes(routes!(profile::change_password))
        .routes(routes!(profile::delete_account))
        .routes(routes!(
            sessions::list_sessions,
            sessions::end_other_sessions
        ))
        .routes(routes!(sessions::end_session))
        .routes(routes!(email::request_verification))
        .routes(routes!(email::verify))
        .routes(routes!(email::request_reset))
        .routes(routes!(email::reset))
        .routes(routes!(mfa::enrol, mfa::remove))
        .routes(routes!(mfa::confirm))
        .routes(routes!(mfa::regenerate_codes))
        .routes(routes!(crate::api_keys::create, crate::api_keys::list))
        .routes(routes!(crate::api_keys::delete))
        .routes(routes!(admin_users::list_users))
        .routes(routes!(
            admin_users::get_user,
            admin_users::patch_user,
            admin_users::delete_user
        ))
        .routes(routes!(audit_log::audit_log));
    if samples {
        api.routes(routes!(data::get_data))
            .routes(routes!(ai::generate))
    } else {
        api
    }
}

/// `"METHOD /path"` of every route this server can have, as the
/// rate-limit route table names them.
pub fn route_keys() -> Vec<String> {
    route_keys_of(true)
}

/// `"METHOD /path"` of the routes `settings` mount.
pub fn mounted_route_keys(settings: &crate::settings::Settings) -> Vec<String> {
    route_keys_of(settings.server.sample_routes)
}

fn route_keys_of(samples: bool) -> Vec<String> {
    let (_, openapi) = api_with(samples).split_for_parts();
    let mut keys = Vec::new();
    for (path, item) in &openapi.paths.paths {
        let methods = [
            ("GET", item.get.is_some()),
            ("PUT", item.put.is_some()),
            ("POST", item.post.is_some()),
            ("DELETE", item.delete.is_some()),
            ("PATCH", item.patch.is_some()),
            ("HEAD", item.head.is_some()),
            ("OPTIONS", item.options.is_some()),
        ];
        for (method, present) in methods {
            if present {
                keys.push(format!("{method} {path}"));
            }
        }
    }
    keys.extend(docs::ROUTES.iter().map(|r| (*r).to_owned()));
    keys.push("GET /metrics".to_owned());
    keys
}
