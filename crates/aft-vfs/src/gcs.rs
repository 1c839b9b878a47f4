//! Google Cloud Storage (and fake-gcs-server) through opendal.
//!
//! Fields [AFT]: `Bucket`, `CredentialsFile` (a service-account JSON key);
//! [ours] `Endpoint` for an emulator such as fake-gcs-server, which takes no credentials
//! (and gets each upload in one request, buffered in memory: it has no multipart API).

use opendal::Operator;
use opendal::services::Gcs;

use crate::config::Fields;
use crate::object_store::{ObjectStoreVfs, StoreKind};
use crate::{VfsError, VfsResult};

/// Build a GCS backend from its connection fields.
pub fn from_fields(fields: &Fields<'_>) -> VfsResult<ObjectStoreVfs> {
    let bucket = fields.required("Bucket")?;
    let endpoint = fields.str("Endpoint");
    let credentials = fields.str("CredentialsFile");
    let mut builder = Gcs::default().bucket(&bucket).root("/");
    if let Some(endpoint) = &endpoint {
        builder = builder.endpoint(endpoint);
    }
    match (&credentials, &endpoint) {
        (Some(path), _) => {
            if !std::path::Path::new(path).is_file() {
                return Err(VfsError::Other(format!(
                    "GCS: CredentialsFile {path} does not exist or is not a file"
                )));
            }
            builder = builder
                .credential_path(path)
                .disable_config_load()
                .disable_vm_metadata();
        }
        // An emulator: anonymous, and never ask a metadata server for a token.
        (None, Some(_)) => {
            builder = builder
                .skip_signature()
                .disable_config_load()
                .disable_vm_metadata();
        }
        (None, None) => {}
    }
    let label = match &endpoint {
        Some(e) => format!("{}/{bucket}", e.trim_end_matches('/')),
        None => format!("gs://{bucket}"),
    };
    let op = Operator::new(builder)
        .map_err(|e| VfsError::Other(format!("GCS bucket {label}: invalid settings: {e}")))?;
    // A custom endpoint is an emulator or a proxy: neither is known to speak GCS's XML
    // multipart API, which opendal uses for files over one chunk.
    Ok(ObjectStoreVfs::new(op, StoreKind::Gcs, label)
        .with_single_request_uploads(endpoint.is_some()))
}
