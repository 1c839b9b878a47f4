//! The web UI: the plain HTML/CSS/JavaScript of `web/app/`, embedded into the binary and
//! served at `/` with content types, revalidation caching and a strict
//! Content-Security-Policy. The UI talks to the service only through the public REST API.

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use rust_embed::RustEmbed;

use crate::error::ApiError;

/// The UI files; read from disk in debug builds (edit and reload), embedded in release.
#[derive(RustEmbed)]
#[folder = "../../web/app/"]
struct WebApp;

/// The Content-Security-Policy of every UI response: no inline scripts or styles, no
/// third-party origins, no framing.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/// The content type of a UI file, from its extension.
fn content_type(path: &str) -> &'static str {
    match path.rsplit_once('.').map(|(_, ext)| ext) {
        Some("html") => "text/html; charset=utf-8",
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("ico") => "image/x-icon",
        Some("json") => "application/json",
        Some("txt") => "text/plain; charset=utf-8",
        Some("woff2") => "font/woff2",
        _ => "application/octet-stream",
    }
}

/// Headers every UI response carries, found or not.
fn security_headers(headers: &mut HeaderMap) {
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    // The UI is only ever served over HTTPS: browsers should never try plain HTTP.
    headers.insert(
        header::STRICT_TRANSPORT_SECURITY,
        HeaderValue::from_static("max-age=31536000"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(
        "cross-origin-opener-policy",
        HeaderValue::from_static("same-origin"),
    );
}

/// Serve one UI file for `uri` (`/` is `index.html`); the router's fallback, so REST paths
/// that match no route get a JSON 404 instead.
pub async fn serve_asset(method: Method, uri: Uri, request_headers: HeaderMap) -> Response {
    let path = uri.path();
    if path == "/v1" || path.starts_with("/v1/") {
        return ApiError::not_found(format!(
            "no REST endpoint {method} {path}; see GET /v1/openapi.json"
        ))
        .into_response();
    }
    if method != Method::GET && method != Method::HEAD {
        let mut response = (
            StatusCode::METHOD_NOT_ALLOWED,
            "the web UI only answers GET\n",
        )
            .into_response();
        response
            .headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        security_headers(response.headers_mut());
        return response;
    }
    let name = match path.trim_start_matches('/') {
        "" => "index.html",
        other => other,
    };
    // Debug builds read from disk: never let a path climb out of web/app/.
    let traversal = name
        .split(['/', '\\'])
        .any(|part| part == ".." || part.is_empty());
    let found = if traversal { None } else { WebApp::get(name) };
    let Some(file) = found else {
        let mut response = (StatusCode::NOT_FOUND, format!("not found: {path}\n")).into_response();
        security_headers(response.headers_mut());
        return response;
    };
    let etag = format!("\"{}\"", hex::encode(&file.metadata.sha256_hash()[..16]));
    let mut headers = HeaderMap::new();
    security_headers(&mut headers);
    // File names carry no content hash, so browsers must revalidate; the ETag makes that
    // a cheap 304.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    if let Ok(value) = HeaderValue::from_str(&etag) {
        headers.insert(header::ETAG, value);
    }
    let not_modified = request_headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|tag| tag.trim() == etag));
    if not_modified {
        return (StatusCode::NOT_MODIFIED, headers).into_response();
    }
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(content_type(name)),
    );
    let body = if method == Method::HEAD {
        Body::empty()
    } else {
        Body::from(file.data.into_owned())
    };
    (StatusCode::OK, headers, body).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn index_is_served_at_root_with_the_strict_csp() {
        let response = serve_asset(Method::GET, Uri::from_static("/"), HeaderMap::new()).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(
            response.headers()[header::CONTENT_TYPE],
            "text/html; charset=utf-8"
        );
        assert_eq!(
            response.headers()[header::CONTENT_SECURITY_POLICY],
            CONTENT_SECURITY_POLICY
        );
        assert_eq!(response.headers()[header::X_FRAME_OPTIONS], "DENY");
    }

    #[tokio::test]
    async fn modules_get_a_javascript_type_and_revalidate_with_etag() {
        let response =
            serve_asset(Method::GET, Uri::from_static("/app.js"), HeaderMap::new()).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(
            response.headers()[header::CONTENT_TYPE],
            "text/javascript; charset=utf-8"
        );
        let etag = response.headers()[header::ETAG].clone();
        let mut conditional = HeaderMap::new();
        conditional.insert(header::IF_NONE_MATCH, etag);
        let again = serve_asset(Method::GET, Uri::from_static("/app.js"), conditional).await;
        assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
    }

    #[tokio::test]
    async fn unknown_rest_paths_get_a_json_404_not_the_ui() {
        let response =
            serve_asset(Method::GET, Uri::from_static("/v1/nope"), HeaderMap::new()).await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
        assert_eq!(response.headers()[header::CONTENT_TYPE], "application/json");
        let missing =
            serve_asset(Method::GET, Uri::from_static("/nope.js"), HeaderMap::new()).await;
        assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    }

    #[tokio::test]
    async fn paths_that_climb_out_of_the_ui_folder_are_not_found() {
        for path in [
            "/../Cargo.toml",
            "/pages/../../Cargo.toml",
            "/%2e%2e/Cargo.toml",
            "//etc/passwd",
        ] {
            let uri: Uri = path.parse().unwrap();
            let response = serve_asset(Method::GET, uri, HeaderMap::new()).await;
            assert_eq!(response.status(), StatusCode::NOT_FOUND, "{path}");
        }
    }

    #[test]
    fn every_ui_file_has_a_known_content_type() {
        for name in WebApp::iter() {
            assert_ne!(
                content_type(&name),
                "application/octet-stream",
                "{name} has no content type"
            );
        }
    }
}
