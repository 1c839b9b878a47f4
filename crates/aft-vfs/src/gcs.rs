//! Google Cloud Storage (and fake-gcs-server) through opendal.
//!
//! Fields [AFT]: `Bucket`, `CredentialsFile` (a service-account JSON key);
//! [ours] `Endpoint` for an emulator such as fake-gcs-server, or for a private GCS endpoint;
//! [ours] `Streams` (parts of one big file moved at once, see `object_store/parallel.rs`).
//!
//! Uploads: real GCS (and an `Endpoint` with a `CredentialsFile`) gets opendal's multipart
//! writer (XML multipart API, 8 MiB parts). An `Endpoint` without credentials is taken for
//! an emulator: fake-gcs-server lacks the XML multipart API, so each file goes up as one
//! JSON-API media upload whose body is streamed, never buffered whole.
//!
//! A killed multipart upload leaves its parts on GCS (invisible, billed); with a
//! `CredentialsFile`, the next upload of the same key lists and aborts them first (see
//! `object_store/stale_uploads.rs`). A killed media upload leaves nothing: the object exists
//! only once its one request is complete.

use opendal::Operator;
use opendal::services::Gcs;

use crate::config::Fields;
use crate::object_store::{ObjectStoreVfs, StoreKind, StreamedTarget};
use crate::registry::{BackendInfo, FieldInfo, TypeInfo};
use crate::{VfsError, VfsResult};

/// The Google Cloud Storage backend in the registry.
pub const BACKEND: BackendInfo = BackendInfo {
    types: &[TypeInfo {
        name: "gcs",
        aliases: &[],
        label: "Google Cloud Storage",
        client: "GCSClient",
        defaults: &[],
    }],
    fields: &[
        FieldInfo::text("Bucket", "Bucket").required(),
        FieldInfo::file("CredentialsFile", "Credentials file")
            .placeholder("/etc/aft/gcs.json")
            .help("A service-account JSON key file on the aft machine."),
        FieldInfo::url("Endpoint", "Endpoint (emulators)"),
        crate::registry::TIMEOUT_FIELD,
        crate::registry::STREAMS_FIELD,
    ],
    one_of: &[],
    open: |f| Ok(std::sync::Arc::new(from_fields(f)?)),
};

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
    let vfs = ObjectStoreVfs::new(op, StoreKind::Gcs, label)
        .with_stall_timeout(fields.timeout()?)
        .with_streams(crate::object_store::streams(fields)?);
    match (&endpoint, &credentials) {
        // An emulator: anonymous, and no XML multipart API.
        (Some(endpoint), None) => vfs.with_streamed_uploads(StreamedTarget::GcsMedia {
            endpoint: endpoint.trim_end_matches('/').to_string(),
            bucket,
        }),
        (_, Some(path)) => Ok(vfs.with_gcs_stale_upload_sweep(endpoint.as_deref(), &bucket, path)),
        (None, None) => Ok(vfs),
    }
}
