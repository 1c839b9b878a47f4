//! Who may call which route: one table of every route with the least admin role it needs
//! and what the audit trail records of it. [`admit`] applies it to every authenticated
//! request (from the [`Caller`](crate::auth::Caller) extractor), so no handler checks a role
//! itself; a route missing from the table needs the `admin` role, and a unit test fails
//! until it is added.

use axum::extract::MatchedPath;
use axum::http::request::Parts;

use aft_store::{AuditKind, Role};

use crate::auth::Caller;
use crate::error::ApiError;
use crate::state::AppState;

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone, without credentials.
    Public,
    /// Admins with at least this role (and the local CLI; API keys by their own scopes).
    Role(Role),
}

/// What the audit trail records of a route's successful calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Audited {
    /// Nothing: a read, or a check that changes nothing.
    No,
    /// A change to the things of this kind: their state before and after.
    Change(AuditKind),
    /// A job queued or started.
    JobStart,
    /// A halt requested.
    JobHalt,
    /// A sign-in, successful or not.
    SignIn,
    /// A sign-out.
    SignOut,
    /// The first admin created.
    Setup,
    /// A changing route missing from [`ROUTES`]: who called it, and the answer's status.
    Other,
}

/// One route of the REST API.
#[derive(Debug, Clone, Copy)]
pub struct RouteRule {
    /// Lower-case HTTP method, as in the OpenAPI document.
    pub method: &'static str,
    /// The path template, as in the OpenAPI document.
    pub path: &'static str,
    /// Who may call it.
    pub access: Access,
    /// What is recorded.
    pub audit: Audited,
}

const fn rule(
    method: &'static str,
    path: &'static str,
    access: Access,
    audit: Audited,
) -> RouteRule {
    RouteRule {
        method,
        path,
        access,
        audit,
    }
}

use Access::Public;
use Audited::{Change, No};
const VIEWER: Access = Access::Role(Role::Viewer);
const OPERATOR: Access = Access::Role(Role::Operator);
const ADMIN: Access = Access::Role(Role::Admin);

/// Every route of the REST API. Viewers read jobs, logs, scripts, schedules, watchers, the
/// VFS Library and nodes; operators also run and halt jobs and edit scripts, schedules and
/// watchers; secrets, API keys, admins, settings, the VFS Library's entries and the audit
/// trail are the admin role's.
pub const ROUTES: &[RouteRule] = &[
    rule("get", "/v1/health", Public, No),
    rule("get", "/v1/ready", Public, No),
    rule("get", "/v1/setup", Public, No),
    rule("post", "/v1/setup", Public, Audited::Setup),
    rule("post", "/v1/session", Public, Audited::SignIn),
    rule("get", "/metrics", Public, No),
    rule("get", "/v1/session", VIEWER, No),
    rule("delete", "/v1/session", VIEWER, Audited::SignOut),
    // Every admin sets up their own two-factor sign-in.
    rule(
        "post",
        "/v1/session/two-factor",
        VIEWER,
        Change(AuditKind::Admin),
    ),
    rule(
        "put",
        "/v1/session/two-factor",
        VIEWER,
        Change(AuditKind::Admin),
    ),
    // Jobs.
    rule("get", "/v1/jobs", VIEWER, No),
    rule("post", "/v1/jobs", OPERATOR, Audited::JobStart),
    rule("get", "/v1/jobs/{id}", VIEWER, No),
    rule("delete", "/v1/jobs/{id}", OPERATOR, Audited::JobHalt),
    rule("get", "/v1/jobs/{id}/log", VIEWER, No),
    rule("get", "/v1/jobs/{id}/transfers", VIEWER, No),
    rule("post", "/v1/jobs/run", ADMIN, Audited::JobStart),
    // Scripts.
    rule("get", "/v1/scripts", VIEWER, No),
    rule("post", "/v1/scripts", OPERATOR, Change(AuditKind::Script)),
    rule("post", "/v1/scripts/check", VIEWER, No),
    rule("get", "/v1/scripts/{id}", VIEWER, No),
    rule(
        "put",
        "/v1/scripts/{id}",
        OPERATOR,
        Change(AuditKind::Script),
    ),
    rule(
        "delete",
        "/v1/scripts/{id}",
        OPERATOR,
        Change(AuditKind::Script),
    ),
    rule("get", "/v1/scripts/{id}/policy", VIEWER, No),
    rule("get", "/v1/scripts/{id}/used-by", VIEWER, No),
    rule("get", "/v1/scripts/{id}/versions", VIEWER, No),
    rule("get", "/v1/scripts/{id}/versions/{version}", VIEWER, No),
    rule(
        "post",
        "/v1/scripts/{id}/versions/{version}/restore",
        OPERATOR,
        Change(AuditKind::Script),
    ),
    rule("put", "/v1/scripts/{id}/policy", OPERATOR, Audited::Other),
    // Notifications of job outcomes.
    rule("get", "/v1/notifications", VIEWER, No),
    rule("post", "/v1/notifications/retry", OPERATOR, Audited::Other),
    rule(
        "post",
        "/v1/notifications/{id}/retry",
        OPERATOR,
        Audited::Other,
    ),
    // Schedules.
    rule("get", "/v1/schedules", VIEWER, No),
    rule(
        "post",
        "/v1/schedules",
        OPERATOR,
        Change(AuditKind::Schedule),
    ),
    rule("get", "/v1/schedules/{name}", VIEWER, No),
    rule(
        "put",
        "/v1/schedules/{name}",
        OPERATOR,
        Change(AuditKind::Schedule),
    ),
    rule(
        "delete",
        "/v1/schedules/{name}",
        OPERATOR,
        Change(AuditKind::Schedule),
    ),
    rule(
        "put",
        "/v1/schedules/{name}/enabled",
        OPERATOR,
        Change(AuditKind::Schedule),
    ),
    rule("get", "/v1/schedules/{name}/next", VIEWER, No),
    rule("get", "/v1/schedules/{name}/slots", VIEWER, No),
    // Watchers.
    rule("get", "/v1/watchers", VIEWER, No),
    rule("post", "/v1/watchers", OPERATOR, Change(AuditKind::Watcher)),
    rule("get", "/v1/watchers/{name}", VIEWER, No),
    rule(
        "delete",
        "/v1/watchers/{name}",
        OPERATOR,
        Change(AuditKind::Watcher),
    ),
    rule(
        "put",
        "/v1/watchers/{name}/enabled",
        OPERATOR,
        Change(AuditKind::Watcher),
    ),
    // The VFS Library: entries are the admin's (they decide where credentials are sent).
    rule("get", "/v1/vfs", VIEWER, No),
    rule("post", "/v1/vfs", ADMIN, Change(AuditKind::Vfs)),
    rule("get", "/v1/vfs/types", VIEWER, No),
    rule("get", "/v1/vfs/{name}", VIEWER, No),
    rule("put", "/v1/vfs/{name}", ADMIN, Change(AuditKind::Vfs)),
    rule("delete", "/v1/vfs/{name}", ADMIN, Change(AuditKind::Vfs)),
    rule("post", "/v1/vfs/{name}/test", OPERATOR, No),
    rule("get", "/v1/vfs/{name}/used-by", VIEWER, No),
    rule("get", "/v1/nodes", VIEWER, No),
    // The admin role's alone.
    rule("get", "/v1/secrets", ADMIN, No),
    rule("get", "/v1/secrets/{name}/used-by", ADMIN, No),
    rule(
        "put",
        "/v1/secrets/{name}",
        ADMIN,
        Change(AuditKind::Secret),
    ),
    rule(
        "delete",
        "/v1/secrets/{name}",
        ADMIN,
        Change(AuditKind::Secret),
    ),
    rule("get", "/v1/apikeys", ADMIN, No),
    rule("post", "/v1/apikeys", ADMIN, Change(AuditKind::ApiKey)),
    rule(
        "delete",
        "/v1/apikeys/{id}",
        ADMIN,
        Change(AuditKind::ApiKey),
    ),
    rule("get", "/v1/settings", ADMIN, No),
    rule(
        "put",
        "/v1/settings/{key}",
        ADMIN,
        Change(AuditKind::Setting),
    ),
    rule("get", "/v1/admins", ADMIN, No),
    rule("post", "/v1/admins", ADMIN, Change(AuditKind::Admin)),
    rule(
        "delete",
        "/v1/admins/{name}",
        ADMIN,
        Change(AuditKind::Admin),
    ),
    rule(
        "put",
        "/v1/admins/{name}/password",
        ADMIN,
        Change(AuditKind::Admin),
    ),
    rule(
        "put",
        "/v1/admins/{name}/role",
        ADMIN,
        Change(AuditKind::Admin),
    ),
    rule(
        "delete",
        "/v1/admins/{name}/two-factor",
        ADMIN,
        Change(AuditKind::Admin),
    ),
    rule("get", "/v1/audit", ADMIN, No),
    rule("get", "/v1/audit/verify", ADMIN, No),
];

/// The rule of `method` (any case) on the path template `path`.
pub fn route_rule(method: &str, path: &str) -> Option<&'static RouteRule> {
    ROUTES
        .iter()
        .find(|r| r.method.eq_ignore_ascii_case(method) && r.path == path)
}

/// The least role a route needs: the `admin` role for a route missing from the table.
pub fn required_role(method: &str, path: &str) -> Role {
    match route_rule(method, path).map(|r| r.access) {
        Some(Access::Role(role)) => role,
        Some(Access::Public) => Role::Viewer,
        None => Role::Admin,
    }
}

/// What is recorded of a route: for one missing from the table, a bare record of each
/// successful change (so a new route is never silently left out of the trail).
pub fn audited(method: &str, path: &str) -> Audited {
    match route_rule(method, path) {
        Some(r) => r.audit,
        None if ["get", "head", "options"]
            .iter()
            .any(|m| m.eq_ignore_ascii_case(method)) =>
        {
            Audited::No
        }
        None => Audited::Other,
    }
}

/// The role-refusal message (tests look for it to tell it from other 403s).
pub fn refusal(role: Role, method: &str, path: &str) -> String {
    format!(
        "the {role} role may not call {} {path}; ask an admin for a role that may",
        method.to_uppercase()
    )
}

/// Check the caller against the route table, and let the audit layer know who called and
/// what stood before the change. Called once the caller is authenticated.
pub async fn admit(parts: &Parts, state: &AppState, caller: &Caller) -> Result<(), ApiError> {
    let Some(path) = parts.extensions.get::<MatchedPath>().map(|p| p.as_str()) else {
        return Ok(());
    };
    let method = parts.method.as_str();
    let role = match caller {
        Caller::Admin { username } => {
            let account = match state.store.admin_account(username).await {
                Ok(account) => account,
                Err(aft_store::StoreError::NotFound { .. }) => {
                    return Err(ApiError::unauthorized("this admin no longer exists"));
                }
                Err(e) => return Err(e.into()),
            };
            let needed = required_role(method, path);
            if account.role < needed {
                return Err(ApiError::forbidden(refusal(account.role, method, path)));
            }
            // With the setting on, an admin without a second factor may only set one up.
            if !account.two_factor
                && !path.starts_with("/v1/session")
                && state.store.get_setting("require-two-factor").await?.value == "true"
            {
                return Err(ApiError::forbidden(
                    "two-factor sign-in is required: set it up first (POST /v1/session/two-factor, or the web UI)",
                ));
            }
            Some(account.role)
        }
        _ => None,
    };
    crate::audit::authenticated(parts, state, caller, role).await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_documented_route_has_exactly_one_rule_and_every_rule_a_route() {
        let api = crate::api::openapi();
        let mut documented = Vec::new();
        for (path, item) in &api.paths.paths {
            for (method, op) in [
                ("get", item.get.is_some()),
                ("put", item.put.is_some()),
                ("post", item.post.is_some()),
                ("delete", item.delete.is_some()),
                ("patch", item.patch.is_some()),
            ] {
                if op {
                    documented.push((method, path.clone()));
                }
            }
        }
        let missing: Vec<_> = documented
            .iter()
            .filter(|(m, p)| route_rule(m, p).is_none())
            .collect();
        assert!(
            missing.is_empty(),
            "routes without an entry in roles::ROUTES (add who may call them and what the audit trail records): {missing:?}"
        );
        for r in ROUTES {
            assert!(
                documented
                    .iter()
                    .any(|(m, p)| *m == r.method && *p == r.path),
                "roles::ROUTES has {} {}, which is not a documented route",
                r.method,
                r.path
            );
            assert_eq!(
                ROUTES
                    .iter()
                    .filter(|o| o.method == r.method && o.path == r.path)
                    .count(),
                1,
                "{} {} is listed twice",
                r.method,
                r.path
            );
        }
    }

    #[test]
    fn the_roles_are_what_the_issue_says() {
        // Operators run and halt jobs and edit scripts, schedules and watchers ...
        for (m, p) in [
            ("post", "/v1/jobs"),
            ("delete", "/v1/jobs/{id}"),
            ("put", "/v1/scripts/{id}"),
            ("post", "/v1/schedules"),
            ("post", "/v1/watchers"),
        ] {
            assert_eq!(required_role(m, p), Role::Operator, "{m} {p}");
        }
        // ... but touch no secrets, keys, admins or settings; viewers change nothing.
        for (m, p) in [
            ("get", "/v1/secrets"),
            ("post", "/v1/apikeys"),
            ("get", "/v1/admins"),
            ("put", "/v1/settings/{key}"),
            ("get", "/v1/audit"),
        ] {
            assert_eq!(required_role(m, p), Role::Admin, "{m} {p}");
        }
        for r in ROUTES {
            if r.access == VIEWER && !r.path.starts_with("/v1/session") {
                assert!(
                    matches!(r.audit, Audited::No | Audited::SignOut),
                    "viewers may call {} {}, which changes something",
                    r.method,
                    r.path
                );
            }
        }
        assert_eq!(required_role("post", "/v1/not-yet-listed"), Role::Admin);
    }
}
