//! `/v1/settings`: the service's settings — list them with their values, set one.

use axum::Json;
use axum::extract::{Path, State};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use aft_store::SettingValue;

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
}

impl From<SettingValue> for SettingView {
    fn from(s: SettingValue) -> SettingView {
        SettingView {
            key: s.key.to_string(),
            value: s.value,
            is_default: s.is_default,
            description: aft_store::setting_def(s.key)
                .map(|d| d.description)
                .unwrap_or("")
                .to_string(),
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
                "description": description})
        );
    }
}
