//! [`JobParams`]: a job's parameters, with the one parser every way of starting a job uses
//! (`aft run -p`, `aft start --params`, `POST /v1/jobs`, schedules and watcher jobs), and the
//! form they are stored in.
//!
//! Parameters are what a script reads with `Param(name)`: names mapped to text. The JSON
//! given may be a flat object (`{"dest": "/archive", "days": 3}`) or AFT! v3's list of
//! `{"name": ..., "value": ...}`; numbers and booleans become their JSON text, `null` leaves
//! the parameter unset, and anything nested is refused with the name that holds it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize, Serializer};
use serde_json::Value;

/// Why JSON is not a valid set of job parameters.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ParamsError(String);

/// A job's parameters: names (case-sensitive) mapped to text values.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(try_from = "Value")]
pub struct JobParams(BTreeMap<String, String>);

const FLAT: &str = "params must be a flat JSON object such as {\"dest\": \"/archive\"} \
                    (or AFT! v3's [{\"name\": \"dest\", \"value\": \"/archive\"}])";

impl JobParams {
    /// Parameters from JSON text.
    pub fn parse(text: &str) -> Result<JobParams, ParamsError> {
        let value: Value = serde_json::from_str(text)
            .map_err(|e| ParamsError(format!("params are not valid JSON ({e}); {FLAT}")))?;
        JobParams::from_json(value)
    }

    /// Parameters from a JSON value; `null` is no parameters.
    pub fn from_json(value: Value) -> Result<JobParams, ParamsError> {
        let mut params = BTreeMap::new();
        match value {
            Value::Null => {}
            Value::Object(map) => {
                for (name, v) in map {
                    if let Some(text) = scalar(&name, v)? {
                        params.insert(name, text);
                    }
                }
            }
            Value::Array(items) => {
                for item in items {
                    // Only `name` and `value`: a misspelt `"valeu"` must not drop the value
                    // without a word.
                    let pair = item
                        .as_object()
                        .filter(|o| o.keys().all(|k| k == "name" || k == "value"));
                    let name = pair.and_then(|o| o.get("name")).and_then(Value::as_str);
                    let (Some(pair), Some(name)) = (pair, name) else {
                        return Err(ParamsError(format!(
                            "params list items must be {{\"name\": \"...\", \"value\": ...}}, got {item}"
                        )));
                    };
                    let value = pair.get("value").cloned().unwrap_or(Value::Null);
                    if let Some(text) = scalar(name, value)? {
                        params.insert(name.to_string(), text);
                    }
                }
            }
            _ => return Err(ParamsError(FLAT.to_string())),
        }
        Ok(JobParams(params))
    }

    /// The value of parameter `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    /// Set parameter `name`.
    pub fn insert(&mut self, name: impl Into<String>, value: impl Into<String>) {
        self.0.insert(name.into(), value.into());
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The parameters as a map, for the engine.
    pub fn into_map(self) -> BTreeMap<String, String> {
        self.0
    }

    /// The parameters as a flat JSON object of strings (the stored and the API form).
    pub fn to_json(&self) -> Value {
        Value::Object(
            self.0
                .iter()
                .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                .collect(),
        )
    }
}

impl From<BTreeMap<String, String>> for JobParams {
    fn from(map: BTreeMap<String, String>) -> JobParams {
        JobParams(map)
    }
}

impl TryFrom<Value> for JobParams {
    type Error = ParamsError;
    fn try_from(value: Value) -> Result<JobParams, ParamsError> {
        JobParams::from_json(value)
    }
}

impl Serialize for JobParams {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

/// One parameter's value as text; `None` for `null` (unset).
fn scalar(name: &str, value: Value) -> Result<Option<String>, ParamsError> {
    match value {
        Value::String(s) => Ok(Some(s)),
        Value::Number(n) => Ok(Some(n.to_string())),
        Value::Bool(b) => Ok(Some(b.to_string())),
        Value::Null => Ok(None),
        Value::Object(_) | Value::Array(_) => Err(ParamsError(format!(
            "params must be flat: the value of {name:?} is an object or array; give it as text"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn flat_objects_and_v3_lists_give_the_same_text_values() {
        let flat =
            JobParams::parse(r#"{"dest":"/a","n":3,"on":true,"x":1.5,"gone":null}"#).unwrap();
        assert_eq!(flat.get("dest"), Some("/a"));
        assert_eq!(flat.get("n"), Some("3"));
        assert_eq!(flat.get("on"), Some("true"));
        assert_eq!(flat.get("x"), Some("1.5"));
        assert_eq!(flat.get("gone"), None);
        let v3 = JobParams::parse(
            r#"[{"name":"dest","value":"/a"},{"name":"n","value":3},{"name":"on","value":true},{"name":"x","value":1.5},{"name":"gone"}]"#,
        )
        .unwrap();
        assert_eq!(flat, v3);
        assert_eq!(
            JobParams::from_json(Value::Null).unwrap(),
            JobParams::default()
        );
    }

    #[test]
    fn nested_values_and_other_shapes_are_refused_with_the_reason() {
        for (bad, says) in [
            (r#"{"a":{"b":1}}"#, "\"a\""),
            (r#"{"a":[1]}"#, "\"a\""),
            (r#"[{"name":"a","value":{"b":1}}]"#, "\"a\""),
            (r#"[{"value":1}]"#, "name"),
            (r#"[1]"#, "name"),
            (r#"[{"name":"a","valeu":1}]"#, "valeu"),
            ("42", "flat JSON object"),
            ("\"x\"", "flat JSON object"),
            ("{", "not valid JSON"),
        ] {
            let e = JobParams::parse(bad).unwrap_err().to_string();
            assert!(e.contains(says), "{bad}: {e}");
        }
    }

    #[test]
    fn serde_round_trip_keeps_the_stored_form() {
        let p: JobParams = serde_json::from_value(json!({"n": 3, "s": "x"})).unwrap();
        assert_eq!(
            serde_json::to_value(&p).unwrap(),
            json!({"n": "3", "s": "x"})
        );
        assert_eq!(p.to_json(), json!({"n": "3", "s": "x"}));
        assert!(serde_json::from_value::<JobParams>(json!({"n": {"deep": 1}})).is_err());
    }
}
