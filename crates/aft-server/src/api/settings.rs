//! `/v1/settings`: the service's settings — list them with their values, set one.

use axum::Json;
use axum::extract::{Path, State};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use aft_store::{SettingKind, SettingValue};

use crate::auth::AdminCaller;
use crate::error::{ApiJson, ApiResult, ErrorBody};
use crate::state::AppState;

/// A setting with its current value, as `GET /v1/settings` lists it.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SettingView {
    /// Kebab-case key (`max-concurrent-jobs`).
    pub key: String,
    /// Current value as text.
    pub value: String,
    /// True when no value was set and the default applies.
    pub is_default: bool,
    /// What the setting does ("" if undocumented).
    pub description: String,
    /// What values it takes, so a client can offer the right control: `boolean`,
    /// `integer` (with `min`, `max`), `choice` (one of `choices`), `secret` (the name of a
    /// stored secret, or empty), `originList`, `folderList`, `url` or `text`.
    pub kind: SettingKindView,
    /// The accepted values of a `choice` setting.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub choices: Option<Vec<String>>,
    /// The smallest value of an `integer` setting.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min: Option<i64>,
    /// The largest value of an `integer` setting.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max: Option<i64>,
}

/// The kind of value a setting takes, as the API names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub enum SettingKindView {
    /// `true` or `false`.
    Boolean,
    /// A whole number in `min..=max`.
    Integer,
    /// One of `choices`.
    Choice,
    /// The name of a stored secret (`GET /v1/secrets`), or empty for none.
    Secret,
    /// Comma-separated origins.
    OriginList,
    /// `;`-separated absolute folders.
    FolderList,
    /// An `http://` or `https://` URL, or empty for none.
    Url,
    /// Free text.
    Text,
}

impl From<SettingValue> for SettingView {
    fn from(s: SettingValue) -> SettingView {
        let def = aft_store::setting_def(s.key).ok();
        let (mut kind, mut choices, mut min, mut max) = (SettingKindView::Text, None, None, None);
        match def.map(|d| d.kind) {
            Some(SettingKind::Bool) => kind = SettingKindView::Boolean,
            Some(SettingKind::Int { min: lo, max: hi }) => {
                (kind, min, max) = (SettingKindView::Integer, Some(lo), Some(hi));
            }
            Some(SettingKind::SmtpTls) => {
                kind = SettingKindView::Choice;
                choices = Some(
                    [
                        aft_store::SmtpTls::Starttls,
                        aft_store::SmtpTls::Tls,
                        aft_store::SmtpTls::None,
                    ]
                    .iter()
                    .map(ToString::to_string)
                    .collect(),
                );
            }
            Some(SettingKind::OriginList) => kind = SettingKindView::OriginList,
            Some(SettingKind::FolderList) => kind = SettingKindView::FolderList,
            Some(SettingKind::Url) => kind = SettingKindView::Url,
            // Text settings named `*-secret` hold the name of a stored secret.
            Some(SettingKind::Text) if s.key.ends_with("-secret") => {
                kind = SettingKindView::Secret;
            }
            Some(SettingKind::Text) | None => {}
        }
        SettingView {
            key: s.key.to_string(),
            value: s.value,
            is_default: s.is_default,
            description: def.map(|d| d.description).unwrap_or("").to_string(),
            kind,
            choices,
            min,
            max,
        }
    }
}

/// A setting just changed: its key as given and its value as stored.
#[derive(Debug, Serialize, ToSchema)]
pub struct SettingChanged {
    /// The key as the request named it.
    pub key: String,
    /// The value as stored (normalized, e.g. `true` for `yes`).
    pub value: String,
}

/// A new value.
#[derive(Debug, Deserialize, ToSchema)]
pub struct ValueBody {
    /// The value as text.
    pub value: String,
}

/// Every setting with its value.
#[utoipa::path(get, path = "/v1/settings", tag = "settings", responses((status = 200, body = Vec<SettingView>)))]
pub async fn list_settings(
    State(state): State<AppState>,
    _a: AdminCaller,
) -> ApiResult<Json<Vec<SettingView>>> {
    let settings = state.store.list_settings().await?;
    Ok(Json(settings.into_iter().map(SettingView::from).collect()))
}

/// Set one setting (takes effect at once).
#[utoipa::path(put, path = "/v1/settings/{key}", tag = "settings", params(("key" = String, Path, description = "setting key, e.g. max-concurrent-jobs")),
    request_body = ValueBody, responses((status = 200, body = SettingChanged), (status = 400, body = ErrorBody)))]
pub async fn set_setting(
    State(state): State<AppState>,
    _a: AdminCaller,
    Path(key): Path<String>,
    ApiJson(b): ApiJson<ValueBody>,
) -> ApiResult<Json<SettingChanged>> {
    let value = state.store.set_setting(&key, &b.value).await?;
    Ok(Json(SettingChanged { key, value }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn setting_view_has_the_documented_fields() {
        let view = SettingView::from(SettingValue {
            key: "max-concurrent-jobs",
            value: "4".into(),
            is_default: true,
        });
        let description = aft_store::setting_def("max-concurrent-jobs")
            .unwrap()
            .description;
        assert_eq!(
            serde_json::to_value(view).unwrap(),
            serde_json::json!({"key": "max-concurrent-jobs", "value": "4", "isDefault": true,
                "description": description, "kind": "integer", "min": 1, "max": 1024})
        );
    }

    #[test]
    fn fixed_choices_and_secret_names_are_told_apart() {
        let view = |key| {
            serde_json::to_value(SettingView::from(SettingValue {
                key,
                value: String::new(),
                is_default: true,
            }))
            .unwrap()
        };
        assert_eq!(view("smtp-tls")["kind"], "choice");
        assert_eq!(
            view("smtp-tls")["choices"],
            serde_json::json!(["starttls", "tls", "none"])
        );
        assert_eq!(view("smtp-password-secret")["kind"], "secret");
        assert_eq!(view("local-fsync")["kind"], "boolean");
        assert_eq!(view("smtp-host")["kind"], "text");
        assert!(view("smtp-host").get("choices").is_none());
    }
}
