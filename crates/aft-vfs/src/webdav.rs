//! WebDAV servers through opendal [ours].
//!
//! Fields: `Endpoint` (a URL such as `https://dav.example.com/remote.php/dav`) or `Host`
//! (`host[:port]`, reached over https), `User`, `Pass`, `PassFromSecret`.

use opendal::Operator;
use opendal::services::Webdav;

use crate::config::Fields;
use crate::object_store::{ObjectStoreVfs, StoreKind};
use crate::{VfsError, VfsResult};

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
    if let Some(pass) = &pass {
        builder = builder.password(pass);
    }
    let label = endpoint.trim_end_matches('/').to_string();
    let op = Operator::new(builder)
        .map_err(|e| VfsError::Other(format!("WebDAV {label}: invalid settings: {e}")))?;
    Ok(ObjectStoreVfs::new(op, StoreKind::WebDav, label))
}
