//! CORS for the REST API, from the setting `cors-origins`: a browser app served from a listed
//! origin may call the API with an API key. Cookies are never allowed cross-origin
//! (no `Access-Control-Allow-Credentials`), so an admin session cannot be used from another
//! site. The setting is read per request, so a change applies at once.

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::state::AppState;

/// Methods and request headers a listed origin may use.
const ALLOW_METHODS: &str = "GET, POST, PUT, DELETE";
const ALLOW_HEADERS: &str = "Content-Type, X-API-Key";
/// Response headers a listed origin's script may read.
const EXPOSE_HEADERS: &str = "Retry-After";
/// How long a browser may cache a preflight answer, in seconds.
const MAX_AGE: &str = "600";

/// Answer preflights of listed origins and mark their answers; requests without `Origin`,
/// or from other origins, pass untouched (the browser then withholds the answer).
pub async fn cors(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let Some(origin) = request.headers().get(header::ORIGIN).cloned() else {
        return next.run(request).await;
    };
    let allowed = match state.store.settings().await {
        Ok(settings) => allowed_value(&settings.cors_origins, &origin),
        Err(e) => {
            tracing::warn!("cannot read cors-origins: {e}");
            None
        }
    };
    let Some(allow_origin) = allowed else {
        return next.run(request).await;
    };
    let preflight = request.method() == Method::OPTIONS
        && request
            .headers()
            .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
    let mut response = if preflight {
        let mut response = StatusCode::NO_CONTENT.into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static(ALLOW_METHODS),
        );
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static(ALLOW_HEADERS),
        );
        headers.insert(
            header::ACCESS_CONTROL_MAX_AGE,
            HeaderValue::from_static(MAX_AGE),
        );
        response
    } else {
        next.run(request).await
    };
    mark(response.headers_mut(), allow_origin);
    response
}

/// The `Access-Control-Allow-Origin` value for `origin`, if `origins` lists it (or `*`).
fn allowed_value(origins: &[String], origin: &HeaderValue) -> Option<HeaderValue> {
    let text = origin.to_str().ok()?;
    if origins.iter().any(|o| o == "*") {
        return Some(HeaderValue::from_static("*"));
    }
    origins
        .iter()
        .any(|o| o.eq_ignore_ascii_case(text))
        .then(|| origin.clone())
}

fn mark(headers: &mut HeaderMap, allow_origin: HeaderValue) {
    headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, allow_origin);
    headers.insert(
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static(EXPOSE_HEADERS),
    );
    headers.append(header::VARY, HeaderValue::from_static("Origin"));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_listed_origins_or_a_star_are_allowed() {
        let listed = vec!["https://a.example".to_string()];
        let a = HeaderValue::from_static("https://a.example");
        let b = HeaderValue::from_static("https://b.example");
        assert_eq!(allowed_value(&listed, &a), Some(a.clone()));
        assert_eq!(allowed_value(&listed, &b), None);
        assert_eq!(allowed_value(&[], &a), None);
        assert_eq!(
            allowed_value(&["*".to_string()], &b),
            Some(HeaderValue::from_static("*"))
        );
    }
}
