//! `GET /v1/vfs/types`: aft-vfs's backend registry as JSON — every VFS type with its
//! fields — which the web UI's VFS form builds itself from.

use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

use aft_vfs::registry::{self, FieldKind, VfsType};

use crate::auth::AdminCaller;
use crate::error::{ApiResult, ErrorBody};

/// One VFS type (`sftp`, `ftps`, ...) and the fields an entry of it may set.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct VfsTypeView {
    /// The type name, as stored and as given to `aft vfs add --type`.
    #[serde(rename = "type")]
    pub name: String,
    /// A human label (`Amazon S3 / compatible`).
    pub label: String,
    /// The SyncJS class scripts create it with (`SftpClient`).
    pub client: String,
    /// Fields of which at least one must be set (empty: no such rule).
    pub one_of: Vec<String>,
    /// Its fields, in display order.
    pub fields: Vec<VfsFieldView>,
}

/// One field of a VFS type.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct VfsFieldView {
    /// The SyncJS field name (`Host`, `PassFromSecret`).
    pub name: String,
    /// A short human label.
    pub label: String,
    /// `text`, `address`, `url`, `file`, `number`, `bool`, `choice`, `secret` (the name of a
    /// secret) or `credential` (clear text: scripts only, refused in the VFS Library).
    pub kind: String,
    /// For `choice`: the allowed names (a value may also be its position, 0 for the first).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<String>,
    /// Whether an entry must set it.
    pub required: bool,
    /// What a new SyncJS client starts with, if anything: text, a number or true/false.
    #[schema(schema_with = any_value)]
    pub default: Option<serde_json::Value>,
    /// One line of help ("" if none).
    pub help: String,
    /// An example value ("" if none).
    pub placeholder: String,
    /// For `secret`: the field whose value the secret holds (`Pass`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret_for: Option<String>,
    /// Whether it is rarely needed (the web form shows it under "More fields").
    pub advanced: bool,
}

impl From<VfsType> for VfsTypeView {
    fn from(ty: VfsType) -> Self {
        VfsTypeView {
            name: ty.name().into(),
            label: ty.info.label.into(),
            client: ty.info.client.into(),
            one_of: ty.backend.one_of.iter().map(|s| s.to_string()).collect(),
            fields: ty
                .fields()
                .iter()
                .map(|f| VfsFieldView {
                    name: f.name.into(),
                    label: f.label.into(),
                    kind: f.kind.name().into(),
                    options: match f.kind {
                        FieldKind::Choice(options) => {
                            options.iter().map(|s| s.to_string()).collect()
                        }
                        _ => Vec::new(),
                    },
                    required: f.required,
                    default: ty.default_of(f).map(|d| d.to_json()),
                    help: f.help.into(),
                    placeholder: f.placeholder.into(),
                    secret_for: f.secret_for.map(str::to_string),
                    advanced: f.advanced,
                })
                .collect(),
        }
    }
}

/// Every VFS type with its fields, from the backend registry.
#[utoipa::path(get, path = "/v1/vfs/types", tag = "vfs",
    responses((status = 200, body = Vec<VfsTypeView>), (status = 401, body = ErrorBody)))]
pub async fn list_vfs_types(_a: AdminCaller) -> ApiResult<Json<Vec<VfsTypeView>>> {
    Ok(Json(registry::types().map(VfsTypeView::from).collect()))
}

/// The schema of a value of any JSON type (or null).
fn any_value() -> utoipa::openapi::schema::Object {
    utoipa::openapi::schema::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::SchemaType::AnyValue)
        .build()
}
