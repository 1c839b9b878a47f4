//! WebDAV servers through opendal [ours].
//!
//! Fields: `Endpoint` (a URL such as `https://dav.example.com/remote.php/dav`) or `Host`
//! (`host[:port]`, reached over https), `User`, `Pass`, `PassFromSecret`.
//!
//! Uploads are one `PUT` whose body is streamed (chunked transfer encoding) rather than
//! opendal's, which holds the whole file in memory; everything else goes through opendal.

use aft_secret::Secret;
use base64::Engine as _;
use opendal::Operator;
use opendal::services::Webdav;
use reqwest::header::HeaderValue;

use crate::config::Fields;
use crate::object_store::{ObjectStoreVfs, StoreKind, StreamedTarget};
use crate::registry::{BackendInfo, FieldInfo, TypeInfo};
use crate::{VfsError, VfsResult};

/// The WebDAV backend in the registry.
pub const BACKEND: BackendInfo = BackendInfo {
    types: &[TypeInfo {
        name: "webdav",
        aliases: &[],
        label: "WebDAV",
        client: "WebDAVClient",
        defaults: &[],
    }],
    fields: &[
        FieldInfo::url("Endpoint", "URL").placeholder("https://dav.example.com/remote.php/webdav"),
        FieldInfo::address("Host", "Host")
            .placeholder("dav.example.com:443")
            .help("host[:port], reached over https; Endpoint wins when both are set.")
            .advanced(),
        FieldInfo::text("User", "User"),
        FieldInfo::credential("Pass", "Password"),
        FieldInfo::secret("PassFromSecret", "Password secret", "Pass"),
        crate::registry::TIMEOUT_FIELD,
    ],
    one_of: &["Endpoint", "Host"],
    open: |f| Ok(std::sync::Arc::new(from_fields(f)?)),
};

/// Build a WebDAV backend from its connection fields.
pub fn from_fields(fields: &Fields<'_>) -> VfsResult<ObjectStoreVfs> {
    let endpoint = match (fields.str("Endpoint"), fields.str("Host")) {
        (Some(url), _) => url,
        (None, Some(host)) if host.contains("://") => host,
        (None, Some(host)) => format!("https://{host}"),
        (None, None) => {
            return Err(VfsError::Other(
                "WebDAV: set Endpoint (a URL) or Host (host:port)".into(),
            ));
        }
    };
    let user = fields.str("User");
    let pass = fields.secret("Pass", "PassFromSecret")?;
    let mut builder = Webdav::default().endpoint(&endpoint).root("/");
    if let Some(user) = &user {
        builder = builder.username(user);
    }
    if let Some(pass) = pass.as_ref().map(Secret::expose) {
        builder = builder.password(pass);
    }
    let label = endpoint.trim_end_matches('/').to_string();
    let op = Operator::new(builder)
        .map_err(|e| VfsError::Other(format!("WebDAV {label}: invalid settings: {e}")))?;
    // The same basic auth opendal sends on its own requests.
    let authorization = match &user {
        Some(user) => {
            let token = base64::engine::general_purpose::STANDARD.encode(format!(
                "{user}:{}",
                pass.as_ref().map(Secret::expose).unwrap_or_default()
            ));
            let mut value = HeaderValue::from_str(&format!("Basic {token}")).map_err(|_| {
                VfsError::Other(format!(
                    "WebDAV {label}: the user name holds characters HTTP cannot carry"
                ))
            })?;
            value.set_sensitive(true);
            Some(value)
        }
        None => None,
    };
    ObjectStoreVfs::new(op, StoreKind::WebDav, label.clone())
        .with_stall_timeout(fields.timeout()?)
        .with_streamed_uploads(StreamedTarget::WebDavPut {
            endpoint: label,
            authorization,
        })
}
