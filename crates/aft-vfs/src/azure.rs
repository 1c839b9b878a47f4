//! Azure Blob Storage (and Azurite) through opendal.
//!
//! Fields [AFT]: `Container`, `AccountName`, `AccountKey`, `AccountKeyFromSecret`,
//! `Endpoint` [ours: defaults to `https://ACCOUNT.blob.core.windows.net`; Azurite is
//! `http://127.0.0.1:10000/devstoreaccount1`]; [ours] `Streams` (parts of one big file moved
//! at once, see `object_store/parallel.rs`).

use aft_secret::Secret;
use opendal::Operator;
use opendal::services::Azblob;

use crate::config::Fields;
use crate::object_store::{ObjectStoreVfs, StoreKind};
use crate::registry::{BackendInfo, FieldInfo, TypeInfo};
use crate::{VfsError, VfsResult};

/// The Azure Blob backend in the registry.
pub const BACKEND: BackendInfo = BackendInfo {
    types: &[TypeInfo {
        name: "azure",
        aliases: &[],
        label: "Azure Blob",
        client: "AzureClient",
        defaults: &[],
    }],
    fields: &[
        FieldInfo::text("AccountName", "Account name").required(),
        FieldInfo::text("Container", "Container").required(),
        FieldInfo::credential("AccountKey", "Account key"),
        FieldInfo::secret("AccountKeyFromSecret", "Account key secret", "AccountKey"),
        FieldInfo::url("Endpoint", "Endpoint (Azurite, sovereign clouds)")
            .placeholder("https://ACCOUNT.blob.core.windows.net"),
        crate::registry::TIMEOUT_FIELD,
        crate::registry::STREAMS_FIELD,
    ],
    one_of: &[],
    open: |f| Ok(std::sync::Arc::new(from_fields(f)?)),
};

/// Build an Azure Blob backend from its connection fields.
pub fn from_fields(fields: &Fields<'_>) -> VfsResult<ObjectStoreVfs> {
    let container = fields.required("Container")?;
    let account = fields.required("AccountName")?;
    let key = fields.secret("AccountKey", "AccountKeyFromSecret")?;
    let endpoint = fields
        .str("Endpoint")
        .unwrap_or_else(|| format!("https://{account}.blob.core.windows.net"));
    let mut builder = Azblob::default()
        .container(&container)
        .account_name(&account)
        .endpoint(&endpoint)
        .root("/");
    if let Some(key) = key.as_ref().map(Secret::expose) {
        builder = builder.account_key(key);
    }
    let label = format!("{}/{container}", endpoint.trim_end_matches('/'));
    let op = Operator::new(builder)
        .map_err(|e| VfsError::Other(format!("Azure container {label}: invalid settings: {e}")))?;
    Ok(ObjectStoreVfs::new(op, StoreKind::Azure, label)
        .with_stall_timeout(fields.timeout()?)
        .with_streams(crate::object_store::streams(fields)?))
}
