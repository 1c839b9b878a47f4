//! Amazon S3 and S3-compatible servers (MinIO, moto, Ceph, ...) through opendal.
//!
//! Fields [AFT]: `Region`, `Bucket`, `APIKeyID`, `APIKeySecret`, `APIKeySecretFromSecret`,
//! `Endpoint` [ours: the URL of an S3-compatible server; requests are path-style],
//! `UseMetadataWhenListing` (fetch each listed file's full metadata, one request per file);
//! [ours] `Streams` (parts of one big file moved at once, see `object_store/parallel.rs`).

use opendal::Operator;
use opendal::services::S3;

use crate::config::Fields;
use crate::object_store::{ObjectStoreVfs, StoreKind};
use crate::registry::{BackendInfo, FieldInfo, TypeInfo};
use crate::{VfsError, VfsResult};

/// The S3 backend in the registry.
pub const BACKEND: BackendInfo = BackendInfo {
    types: &[TypeInfo {
        name: "s3",
        aliases: &[],
        label: "Amazon S3 / compatible",
        client: "S3Client",
        defaults: &[],
    }],
    fields: &[
        FieldInfo::text("Bucket", "Bucket").required(),
        FieldInfo::text("Region", "Region").placeholder(DEFAULT_REGION),
        FieldInfo::text("APIKeyID", "Access key id"),
        FieldInfo::credential("APIKeySecret", "Secret key"),
        FieldInfo::secret(
            "APIKeySecretFromSecret",
            "Secret key secret",
            "APIKeySecret",
        ),
        FieldInfo::url("Endpoint", "Endpoint (S3-compatible servers)")
            .placeholder("https://s3.example.com"),
        FieldInfo::bool("UseMetadataWhenListing", "Use metadata when listing"),
        crate::registry::TIMEOUT_FIELD,
        crate::registry::STREAMS_FIELD,
    ],
    one_of: &[],
    open: |f| Ok(std::sync::Arc::new(from_fields(f)?)),
};

/// Region used when the `Region` field is empty (also what most S3-compatible servers expect).
pub const DEFAULT_REGION: &str = "us-east-1";

/// Build an S3 backend from its connection fields.
pub fn from_fields(fields: &Fields<'_>) -> VfsResult<ObjectStoreVfs> {
    let bucket = fields.required("Bucket")?;
    let region = fields
        .str("Region")
        .unwrap_or_else(|| DEFAULT_REGION.to_string());
    let endpoint = fields.str("Endpoint");
    let key_id = fields.str("APIKeyID");
    let secret = fields.secret("APIKeySecret", "APIKeySecretFromSecret")?;
    let mut builder = S3::default().bucket(&bucket).region(&region).root("/");
    if let Some(endpoint) = &endpoint {
        builder = builder.endpoint(endpoint);
    }
    match (&key_id, &secret) {
        (Some(id), Some(secret)) => {
            // Explicit keys: never fall back to ~/.aws or the EC2 metadata service.
            builder = builder
                .access_key_id(id)
                .secret_access_key(secret.expose())
                .disable_config_load()
                .disable_ec2_metadata();
        }
        (None, None) => {}
        _ => {
            return Err(VfsError::Other(
                "S3: set both APIKeyID and APIKeySecret (or APIKeySecretFromSecret), or neither to use the environment's credentials".into(),
            ));
        }
    }
    let label = match &endpoint {
        Some(e) => format!("{}/{bucket}", e.trim_end_matches('/')),
        None => format!("s3://{bucket}"),
    };
    let op = Operator::new(builder)
        .map_err(|e| VfsError::Other(format!("S3 bucket {label}: invalid settings: {e}")))?;
    let mut vfs = ObjectStoreVfs::new(op, StoreKind::S3, label)
        .with_stall_timeout(fields.timeout()?)
        .with_streams(crate::object_store::streams(fields)?)
        .with_stat_when_listing(fields.bool("UseMetadataWhenListing"));
    if let (Some(id), Some(secret)) = (&key_id, &secret) {
        vfs =
            vfs.with_stale_upload_sweep(endpoint.as_deref(), &bucket, &region, id, secret.expose());
    }
    Ok(vfs)
}
