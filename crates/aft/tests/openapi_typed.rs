//! Every answer of the REST API is typed in the OpenAPI document the real binary serves:
//! a response with a body names a schema — a view type, a list of one, a string — never a
//! bare `{"type": "object"}` (what `body = serde_json::Value` produces) and never no
//! schema at all. Clients generated from the document, and the API fuzzer, depend on it.

mod support;

use std::collections::BTreeSet;

use reqwest::Method;
use serde_json::{Value, json};
use support::{Aft, call};

/// Why `schema` (a response body's schema) is not typed, if it is not. `$ref`s are
/// resolved in `components`; arrays must have typed items, compositions typed members, and
/// an object must declare its properties or the type of its values.
fn untyped(schema: &Value, components: &Value, seen: &mut BTreeSet<String>) -> Option<String> {
    if let Some(reference) = schema.get("$ref").and_then(Value::as_str) {
        let name = reference.trim_start_matches("#/components/schemas/");
        if !seen.insert(name.to_string()) {
            return None; // a recursive type: checked where it was first met
        }
        return match components.get(name) {
            Some(target) => untyped(target, components, seen).map(|why| format!("{name}: {why}")),
            None => Some(format!("{reference} is not in components.schemas")),
        };
    }
    for composition in ["allOf", "oneOf", "anyOf"] {
        if let Some(members) = schema.get(composition).and_then(Value::as_array) {
            if members.is_empty() {
                return Some(format!("an empty {composition}"));
            }
            return members
                .iter()
                .find_map(|member| untyped(member, components, seen));
        }
    }
    let types: Vec<&str> = match schema.get("type") {
        Some(Value::String(t)) => vec![t.as_str()],
        Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect(),
        _ => return Some(format!("no type, $ref or composition: {schema}")),
    };
    if types.contains(&"array") {
        return match schema.get("items") {
            Some(items) => untyped(items, components, seen).map(|why| format!("items: {why}")),
            None => Some("an array without items".into()),
        };
    }
    if types.contains(&"object") {
        let has_properties = schema
            .get("properties")
            .and_then(Value::as_object)
            .is_some_and(|p| !p.is_empty());
        let typed_values = schema
            .get("additionalProperties")
            .is_some_and(|a| a.is_object() && untyped(a, components, seen).is_none());
        if !has_properties && !typed_values {
            return Some(format!("a bare object: {schema}"));
        }
    }
    None
}

/// Every response of `api` with a body whose schema is missing or untyped, as
/// `METHOD PATH STATUS CONTENT-TYPE: why`; and how many responses with a body were checked.
fn untyped_responses(api: &Value) -> (Vec<String>, usize) {
    let components = &api["components"]["schemas"];
    let mut problems = Vec::new();
    let mut checked = 0;
    for (path, item) in api["paths"].as_object().expect("paths is an object") {
        for (method, operation) in item.as_object().expect("a path item is an object") {
            let Some(responses) = operation.get("responses").and_then(Value::as_object) else {
                continue;
            };
            for (status, response) in responses {
                // No `content`: no body (204, 202 without one), which is fine.
                let Some(content) = response.get("content").and_then(Value::as_object) else {
                    continue;
                };
                for (media_type, media) in content {
                    checked += 1;
                    let route = format!("{} {path} {status} {media_type}", method.to_uppercase());
                    match media.get("schema") {
                        None => problems.push(format!("{route}: no schema")),
                        Some(schema) => {
                            if let Some(why) = untyped(schema, components, &mut BTreeSet::new()) {
                                problems.push(format!("{route}: {why}"));
                            }
                        }
                    }
                }
            }
        }
    }
    (problems, checked)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_response_body_in_openapi_is_typed() {
    let aft = Aft::new();
    let svc = aft.serve();
    let (status, api) = call(
        &svc.client(),
        Method::GET,
        &format!("{}/v1/openapi.json", svc.base()),
        None,
        None,
    )
    .await;
    assert_eq!(status, 200, "GET /v1/openapi.json: {api}");
    let (problems, checked) = untyped_responses(&api);
    assert!(
        problems.is_empty(),
        "responses of /v1/openapi.json without a typed body (name a view type in \
         `responses(...)`, not serde_json::Value):\n{}",
        problems.join("\n")
    );
    // The walk really saw the answers: one per documented route at least, the resources
    // that once answered bare objects among them.
    assert!(
        checked > 60,
        "only {checked} responses with a body were checked"
    );
    for (path, method) in [
        ("/v1/scripts", "get"),
        ("/v1/apikeys", "post"),
        ("/v1/vfs/{name}/test", "post"),
        ("/v1/schedules/{name}/slots", "get"),
        ("/v1/watchers/{name}", "get"),
        ("/v1/nodes", "get"),
    ] {
        assert!(
            api["paths"][path][method]["responses"]["200"].is_object()
                || api["paths"][path][method]["responses"]["201"].is_object(),
            "{method} {path} has no 200/201 answer in /v1/openapi.json"
        );
    }
}

#[test]
fn bare_objects_and_missing_schemas_are_named() {
    let api = json!({
        "paths": {
            "/v1/bare": {"get": {"responses": {
                "200": {"content": {"application/json": {"schema": {"type": "object"}}}}}}},
            "/v1/none": {"post": {"responses": {
                "201": {"content": {"application/json": {}}}}}},
            "/v1/list": {"get": {"responses": {
                "200": {"content": {"application/json": {"schema":
                    {"type": "array", "items": {"$ref": "#/components/schemas/Bare"}}}}}}}},
            "/v1/fine": {"get": {"responses": {
                "200": {"content": {"application/json": {"schema":
                    {"type": "array", "items": {"$ref": "#/components/schemas/View"}}}}},
                "204": {"description": "no body"}}}},
        },
        "components": {"schemas": {
            "Bare": {"type": "object"},
            "View": {"type": "object", "properties": {"id": {"type": "string"}}},
        }},
    });
    let (problems, checked) = untyped_responses(&api);
    assert_eq!(checked, 4);
    let routes: Vec<&str> = problems
        .iter()
        .map(|p| p.split(':').next().unwrap())
        .collect();
    assert_eq!(
        routes,
        [
            "GET /v1/bare 200 application/json",
            "GET /v1/list 200 application/json",
            "POST /v1/none 201 application/json",
        ],
        "{problems:#?}"
    );
}
