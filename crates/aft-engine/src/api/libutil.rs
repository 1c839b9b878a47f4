//! Small helpers the script-library modules share to keep their JS bindings thin:
//! turning JS option objects into JSON, string-or-array arguments, bytes, and the
//! "log the reason and return false" convention.

use std::fmt::Display;

use rquickjs::{Ctx, Exception, Function, IntoJs, TypedArray, Value};

use crate::{JobScope, LogLevel};

/// A JS options object (or `undefined`) as a JSON map; anything else is a programming error.
pub(crate) fn options<'js>(
    ctx: &Ctx<'js>,
    func: &str,
    value: Option<Value<'js>>,
) -> rquickjs::Result<serde_json::Map<String, serde_json::Value>> {
    let Some(value) = value else {
        return Ok(Default::default());
    };
    if value.is_undefined() || value.is_null() {
        return Ok(Default::default());
    }
    if !value.is_object() || value.is_array() {
        return Err(Exception::throw_type(
            ctx,
            &format!("{func}: the options argument must be an object like {{Timeout: 30}}"),
        ));
    }
    let text = ctx
        .json_stringify(value)?
        .map(|s| s.to_string())
        .transpose()?
        .unwrap_or_else(|| "{}".to_string());
    match serde_json::from_str::<serde_json::Value>(&text) {
        Ok(serde_json::Value::Object(map)) => Ok(map),
        _ => Err(Exception::throw_type(
            ctx,
            &format!("{func}: the options argument must be a plain object"),
        )),
    }
}

/// A string option, if present and a string.
pub(crate) fn opt_str<'a>(
    map: &'a serde_json::Map<String, serde_json::Value>,
    key: &str,
) -> Option<&'a str> {
    map.get(key).and_then(|v| v.as_str())
}

/// A boolean option, false when absent.
pub(crate) fn opt_bool(map: &serde_json::Map<String, serde_json::Value>, key: &str) -> bool {
    map.get(key).and_then(|v| v.as_bool()).unwrap_or(false)
}

/// A number option.
pub(crate) fn opt_f64(map: &serde_json::Map<String, serde_json::Value>, key: &str) -> Option<f64> {
    map.get(key).and_then(|v| v.as_f64())
}

/// An argument that may be one string, an array of strings, or `""`/undefined for none.
pub(crate) fn string_list<'js>(
    ctx: &Ctx<'js>,
    func: &str,
    what: &str,
    value: Option<Value<'js>>,
) -> rquickjs::Result<Vec<String>> {
    let Some(value) = value else {
        return Ok(Vec::new());
    };
    if value.is_undefined() || value.is_null() {
        return Ok(Vec::new());
    }
    if let Some(s) = value.as_string() {
        let s = s.to_string()?;
        return Ok(if s.is_empty() { Vec::new() } else { vec![s] });
    }
    if let Some(arr) = value.as_array() {
        let mut out = Vec::with_capacity(arr.len());
        for item in arr.iter::<Value>() {
            let item = item?;
            match item.as_string() {
                Some(s) => out.push(s.to_string()?),
                None => {
                    return Err(Exception::throw_type(
                        ctx,
                        &format!("{func}: every {what} must be a string"),
                    ));
                }
            }
        }
        return Ok(out);
    }
    Err(Exception::throw_type(
        ctx,
        &format!("{func}: {what} must be a string or an array of strings"),
    ))
}

/// The bytes of a `Uint8Array`/`ArrayBuffer` argument, or the UTF-8 bytes of a string.
pub(crate) fn bytes_arg<'js>(
    ctx: &Ctx<'js>,
    func: &str,
    value: Value<'js>,
) -> rquickjs::Result<Vec<u8>> {
    if let Some(s) = value.as_string() {
        return Ok(s.to_string()?.into_bytes());
    }
    if let Ok(arr) = TypedArray::<u8>::from_value(value.clone()) {
        // SAFETY: the bytes are copied at once, before any JS can run and detach the buffer.
        if let Some(bytes) = unsafe { arr.as_bytes() } {
            return Ok(bytes.to_vec());
        }
    }
    if let Some(obj) = value.as_object()
        && let Some(buf) = obj.as_array_buffer()
    {
        // SAFETY: as above, copied before any JS runs.
        if let Some(bytes) = unsafe { buf.as_bytes() } {
            return Ok(bytes.to_vec());
        }
    }
    Err(Exception::throw_type(
        ctx,
        &format!("{func}: expected a string, a Uint8Array or an ArrayBuffer"),
    ))
}

/// A new `Uint8Array` holding `bytes`.
pub(crate) fn uint8_array<'js>(ctx: &Ctx<'js>, bytes: Vec<u8>) -> rquickjs::Result<Value<'js>> {
    Ok(TypedArray::<u8>::new(ctx.clone(), bytes)?.into_value())
}

/// A JSON value as a JS value.
pub(crate) fn to_js<'js>(
    ctx: &Ctx<'js>,
    value: &serde_json::Value,
) -> rquickjs::Result<Value<'js>> {
    ctx.json_parse(value.to_string())
}

/// The "transfer-like" convention: Ok gives the value, Err logs `func: reason` as a warning
/// and gives `fallback` (false, "" or null), so the script decides whether the job fails.
pub(crate) fn report<T, E: Display>(
    scope: &JobScope,
    func: &str,
    result: Result<T, E>,
    fallback: T,
) -> T {
    match result {
        Ok(v) => v,
        Err(e) => {
            scope.log(LogLevel::Warn, &format!("{func}: {e}"));
            fallback
        }
    }
}

/// Like [`report`], for functions that give a value or `null`.
pub(crate) fn report_nullable<'js, T: IntoJs<'js>, E: Display>(
    ctx: &Ctx<'js>,
    scope: &JobScope,
    func: &str,
    result: Result<T, E>,
) -> rquickjs::Result<Value<'js>> {
    match result {
        Ok(v) => v.into_js(ctx),
        Err(e) => {
            scope.log(LogLevel::Warn, &format!("{func}: {e}"));
            Ok(Value::new_null(ctx.clone()))
        }
    }
}

/// Throw a JS `Error` whose message starts with the function's name.
pub(crate) fn throw(ctx: &Ctx<'_>, func: &str, message: impl Display) -> rquickjs::Error {
    Exception::throw_message(ctx, &format!("{func}: {message}"))
}

/// Set a named native function as a global.
pub(crate) fn set_global<'js>(
    ctx: &Ctx<'js>,
    name: &str,
    func: Function<'js>,
) -> rquickjs::Result<()> {
    ctx.globals().set(name, func.with_name(name)?)
}

/// Resolve a `...FromSecret` option into the secret's value; a missing secret is an error
/// naming it (never the value).
pub(crate) fn secret_value(scope: &JobScope, name: &str) -> Result<String, String> {
    scope.host.secret(name).ok_or_else(|| {
        format!("secret \"{name}\" does not exist (names are case-sensitive); create it with `aft secret set {name}`")
    })
}
