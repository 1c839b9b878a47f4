//! The REST API (spec §3): routes, and the OpenAPI document generated from them.

pub mod admins;
pub mod apikeys;
pub mod audit;
pub mod dry_run_types;
pub mod followups;
pub mod jobs;
pub mod nodes;
pub mod schedules;
pub mod scripts;
pub mod secrets;
pub mod session;
pub mod settings;
pub mod two_factor;
pub mod vfs;
pub mod vfs_test;
pub mod vfs_types;
pub mod watchers;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use utoipa::OpenApi;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, SecurityScheme};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::ApiResult;
use crate::state::AppState;

/// The OpenAPI document's fixed parts; paths come from the routes.
#[derive(OpenApi)]
#[openapi(
    info(title = "aft REST API", description = "Queue and follow jobs, administer scripts, secrets, API keys, settings and the VFS Library."),
    modifiers(&SecuritySchemes)
)]
struct ApiDoc;

struct SecuritySchemes;

impl utoipa::Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "apiKey",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("X-API-Key"))),
        );
        components.add_security_scheme(
            "session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::new("aft_session"))),
        );
        components.add_security_scheme(
            "localToken",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new(
                crate::discovery::LOCAL_TOKEN_HEADER,
            ))),
        );
    }
}

/// Operations anyone may call, without a credential.
const PUBLIC_OPERATIONS: &[(&str, &str)] = &[
    ("get", "/v1/health"),
    ("get", "/v1/ready"),
    ("get", "/v1/setup"),
    ("post", "/v1/setup"),
    ("post", "/v1/session"),
    ("get", "/metrics"),
];

/// Operations an API key may call (the job routes); the other authenticated ones are an
/// admin's (a session or the local CLI token).
const API_KEY_OPERATIONS: &[(&str, &str)] = &[
    ("post", "/v1/jobs"),
    ("get", "/v1/jobs"),
    ("get", "/v1/jobs/{id}"),
    ("delete", "/v1/jobs/{id}"),
    ("get", "/v1/jobs/{id}/log"),
    ("get", "/v1/jobs/{id}/transfers"),
];

/// Describe in the document what every route shares instead of repeating it on each: the
/// credentials an operation takes (`security`), the refusals of authentication (401, 403,
/// 429 with `Retry-After`) and of a malformed request (400; 413 and 415 for a body), each
/// with the `ErrorBody` every error answer has. A status a route documents itself is kept.
fn describe_auth(api: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::path::ParameterIn;
    use utoipa::openapi::security::SecurityRequirement;
    use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder};

    let error = |description: &str| {
        RefOr::T(
            ResponseBuilder::new()
                .description(description)
                .content(
                    "application/json",
                    ContentBuilder::new()
                        .schema(Some(Ref::from_schema_name("ErrorBody")))
                        .build(),
                )
                .build(),
        )
    };
    for (path, item) in api.paths.paths.iter_mut() {
        let shared_parameters = item.parameters.clone().unwrap_or_default();
        for (method, operation) in [
            ("get", &mut item.get),
            ("put", &mut item.put),
            ("post", &mut item.post),
            ("delete", &mut item.delete),
            ("patch", &mut item.patch),
        ] {
            let Some(operation) = operation.as_mut() else {
                continue;
            };
            let responses = &mut operation.responses.responses;
            let mut add = |status: &str, description: &str| {
                responses
                    .entry(status.to_string())
                    .or_insert_with(|| error(description));
            };
            let parameters = operation
                .parameters
                .iter()
                .flatten()
                .chain(&shared_parameters);
            let mut has_parameters = false;
            for p in parameters {
                if matches!(p.parameter_in, ParameterIn::Path | ParameterIn::Query) {
                    has_parameters = true;
                }
            }
            if operation.request_body.is_some() {
                add("400", "the body is not the JSON this operation takes");
                add("413", "the body is larger than the limit");
                add("415", "the body is not sent as application/json");
            } else if has_parameters {
                add("400", "a path segment or query value cannot be read");
            }
            if PUBLIC_OPERATIONS.contains(&(method, path.as_str())) {
                continue;
            }
            add("401", "no credentials, or unknown, expired or revoked ones");
            add(
                "403",
                "the credentials may not do this (an API key on an admin route, an address outside the key's allow-list, a session without X-CSRF-Token)",
            );
            add(
                "429",
                "too many failed authentications of this kind from this address (see Retry-After)",
            );
            let schemes: &[&str] = if API_KEY_OPERATIONS.contains(&(method, path.as_str())) {
                &["apiKey", "session", "localToken"]
            } else {
                &["session", "localToken"]
            };
            operation.security = Some(
                schemes
                    .iter()
                    .map(|scheme| SecurityRequirement::new(*scheme, Vec::<String>::new()))
                    .collect(),
            );
        }
    }
}

/// Every route with its OpenAPI description, not yet bound to state.
fn documented_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(jobs::create_job, jobs::list_jobs))
        .routes(routes!(jobs::get_job, jobs::halt_job))
        .routes(routes!(jobs::run_source))
        .routes(routes!(jobs::job_log))
        .routes(routes!(jobs::job_transfers))
        .routes(routes!(session::health))
        .routes(routes!(session::ready))
        .routes(routes!(session::setup_state, session::setup))
        .routes(routes!(admins::list_admins, admins::create_admin))
        .routes(routes!(admins::delete_admin))
        .routes(routes!(admins::set_admin_password))
        .routes(routes!(admins::set_admin_role))
        .routes(routes!(audit::list_audit))
        .routes(routes!(audit::verify_audit))
        .routes(routes!(
            two_factor::begin_two_factor,
            two_factor::confirm_two_factor
        ))
        .routes(routes!(two_factor::reset_two_factor))
        .routes(routes!(
            session::current_session,
            session::sign_in,
            session::sign_out
        ))
        .routes(routes!(scripts::list_scripts, scripts::create_script))
        .routes(routes!(scripts::check_script))
        .routes(routes!(followups::get_policy, followups::put_policy))
        .routes(routes!(followups::list_notifications))
        .routes(routes!(followups::retry_dead))
        .routes(routes!(followups::retry_one))
        .routes(routes!(
            scripts::get_script,
            scripts::update_script,
            scripts::delete_script
        ))
        .routes(routes!(scripts::script_used_by))
        .routes(routes!(scripts::list_script_versions))
        .routes(routes!(scripts::get_script_version))
        .routes(routes!(scripts::restore_script_version))
        .routes(routes!(settings::list_settings))
        .routes(routes!(settings::set_setting))
        .routes(routes!(secrets::list_secrets))
        .routes(routes!(secrets::set_secret, secrets::delete_secret))
        .routes(routes!(secrets::secret_used_by))
        .routes(routes!(apikeys::list_api_keys, apikeys::create_api_key))
        .routes(routes!(apikeys::revoke_api_key))
        .routes(routes!(vfs::list_vfs, vfs::create_vfs))
        .routes(routes!(vfs::get_vfs, vfs::update_vfs, vfs::delete_vfs))
        .routes(routes!(vfs::vfs_used_by))
        .routes(routes!(vfs_test::test_vfs))
        .routes(routes!(vfs_types::list_vfs_types))
        .routes(routes!(nodes::list_nodes))
        .routes(routes!(
            schedules::list_schedules,
            schedules::create_schedule
        ))
        .routes(routes!(
            schedules::get_schedule,
            schedules::update_schedule,
            schedules::delete_schedule
        ))
        .routes(routes!(schedules::set_schedule_enabled))
        .routes(routes!(schedules::next_fires))
        .routes(routes!(schedules::list_slots))
        .routes(routes!(watchers::list_watchers, watchers::create_watcher))
        .routes(routes!(watchers::get_watcher, watchers::delete_watcher))
        .routes(routes!(watchers::set_watcher_enabled))
        .routes(routes!(metrics))
}

/// A request's `params` as [`JobParams`]: the one parser every way of starting a job uses;
/// absent is none.
pub(crate) fn job_params(params: Option<serde_json::Value>) -> ApiResult<aft_store::JobParams> {
    aft_store::JobParams::from_json(params.unwrap_or_default())
        .map_err(|e| crate::error::ApiError::bad_request(e.to_string()))
}

/// The OpenAPI document of every route (what `GET /v1/openapi.json` serves).
pub fn openapi() -> utoipa::openapi::OpenApi {
    let (_, mut api) = documented_routes().split_for_parts();
    describe_auth(&mut api);
    api
}

/// The whole REST API bound to `state`.
pub fn router(state: AppState) -> Router {
    let (router, mut api) = documented_routes().split_for_parts();
    describe_auth(&mut api);
    // Kept as its JSON text (some 140 KiB): the document itself holds about 2 MiB of heap
    // for the life of the service.
    let api = axum::body::Bytes::from(
        serde_json::to_vec(&api).expect("the OpenAPI document is plain JSON data"),
    );
    router
        // Every documented route: who may call it and what the audit trail records.
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::audit::layer,
        ))
        .route(
            "/v1/openapi.json",
            axum::routing::get(move || {
                let api = api.clone();
                async move { ([(header::CONTENT_TYPE, "application/json")], api) }
            }),
        )
        .fallback(crate::web_assets::serve_asset)
        // After the routes and the fallback, so both are covered; the drain is outermost
        // so it also holds back answers the JSON layer rewrote.
        .layer(axum::middleware::from_fn(crate::refusals::json_errors))
        .layer(axum::middleware::from_fn(api_headers))
        .layer(axum::middleware::from_fn(
            crate::refusals::drain_request_body,
        ))
        // Outermost: preflights are answered before anything else, and refusals carry the
        // CORS headers too, so a browser app can read why it was refused.
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::cors::cors,
        ))
        .with_state(state)
}

/// Headers of every REST answer, refusals included: no content sniffing, and no caching
/// (answers carry job logs, new API keys, session tokens).
async fn api_headers(request: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let api = crate::refusals::is_api(request.uri().path());
    let mut response = next.run(request).await;
    if api {
        let headers = response.headers_mut();
        headers.insert(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        );
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

/// Prometheus metrics: jobs by status, queue depth, run times (no authentication: counts
/// only, nothing secret).
#[utoipa::path(get, path = "/metrics", tag = "service", responses((status = 200, description = "Prometheus text format", body = String, content_type = "text/plain")))]
pub async fn metrics(State(state): State<AppState>) -> ApiResult<impl IntoResponse> {
    let text = state
        .metrics
        .render(&state.store, state.runner.running_count())
        .await?;
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text))
}
