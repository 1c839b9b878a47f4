//! HTTP for scripts: AFT!'s `HttpCli`/`HttpRes` (spec §4) on reqwest with rustls.
//!
//! TLS is verified against the public web roots by default; `CAFile(path)` adds a PEM
//! CA to trust and `InsecureSkipVerify()` turns verification off. A request that cannot be
//! made (DNS, refused, TLS, timeout, halt) gives a response whose `IsValid()` is false,
//! with the reason in `Error()` and in the job log.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use rquickjs::function::Opt;
use rquickjs::{Ctx, Function, Object, Value};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use serde::Deserialize;
use tokio::io::AsyncWriteExt;

use super::libutil::{bytes_arg, set_global, throw, uint8_array};
use super::prelude::LazyGlobals;
use crate::{HaltFlag, JobScope, LogLevel};

/// The timeout of a request whose script set none.
pub const DEFAULT_TIMEOUT_SECS: f64 = 60.0;

/// One request as the JS side describes it.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct HttpRequest {
    /// The verb (`GET`, `POST`, ...).
    pub method: String,
    /// The full URL.
    pub url: String,
    /// Seconds before the whole request (connect, send, read the body) gives up.
    pub timeout: f64,
    /// Request headers in order; repeated names are all sent.
    pub headers: Vec<(String, String)>,
    /// A PEM file of CA certificates to trust besides the public roots.
    pub ca_file: String,
    /// Accept any server certificate (tests, self-signed partners).
    pub insecure: bool,
    /// Send this file as the body.
    pub body_file: String,
    /// Write the response body to this file instead of keeping it in memory.
    pub save_to: String,
}

/// What came back.
#[derive(Debug, Clone, Default)]
pub struct HttpResponse {
    /// The status code.
    pub status: u16,
    /// Response headers, names lowercase, in order.
    pub headers: Vec<(String, String)>,
    /// The body (empty when it was saved to a file).
    pub body: Vec<u8>,
}

/// Why a request failed, for the log and `Error()`.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// The request could not be built (bad URL, bad header, unreadable CA or body file).
    #[error("{0}")]
    Request(String),
    /// Connecting, TLS, sending or reading failed.
    #[error("{method} {url} failed: {message}")]
    Transport {
        /// The verb.
        method: String,
        /// The URL.
        url: String,
        /// What went wrong, with reqwest's chain of causes.
        message: String,
    },
    /// The request ran past its timeout.
    #[error("{method} {url} timed out after {secs} s (raise it with .Timeout(seconds))")]
    Timeout {
        /// The verb.
        method: String,
        /// The URL.
        url: String,
        /// The timeout that passed.
        secs: f64,
    },
    /// The job was halted while the request ran.
    #[error("{method} {url} abandoned: the job was halted")]
    Halted {
        /// The verb.
        method: String,
        /// The URL.
        url: String,
    },
}

/// A rustls client config with the ring provider (never the process default, which may be
/// unset), the public web roots plus `ca_file`, or no verification at all.
pub fn tls_config(ca_file: &str, insecure: bool) -> Result<rustls::ClientConfig, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup failed: {e}"))?;
    if insecure {
        return Ok(builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(aft_vfs::tls::AcceptAnyCertificate::new(
                provider,
            )))
            .with_no_client_auth());
    }
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if !ca_file.is_empty() {
        let certs = CertificateDer::pem_file_iter(ca_file)
            .map_err(|e| format!("cannot read CA file {ca_file}: {e}"))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("CA file {ca_file} is not valid PEM: {e}"))?;
        if certs.is_empty() {
            return Err(format!("CA file {ca_file} holds no CERTIFICATE block"));
        }
        for cert in certs {
            roots
                .add(cert)
                .map_err(|e| format!("CA file {ca_file}: certificate refused: {e}"))?;
        }
    }
    Ok(builder.with_root_certificates(roots).with_no_client_auth())
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut msg = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !msg.contains(&text) {
            msg.push_str(": ");
            msg.push_str(&text);
        }
        source = s.source();
    }
    msg
}

async fn halted(halt: HaltFlag) {
    while !halt.is_raised() {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Make one request, honouring its timeout and the job's halt.
pub fn execute(
    rt: &tokio::runtime::Handle,
    halt: &HaltFlag,
    req: &HttpRequest,
    body: Option<Vec<u8>>,
) -> Result<HttpResponse, HttpError> {
    let method = req.method.to_ascii_uppercase();
    let secs = if req.timeout > 0.0 {
        req.timeout
    } else {
        DEFAULT_TIMEOUT_SECS
    };
    let transport = |e: reqwest::Error| {
        if e.is_timeout() {
            HttpError::Timeout {
                method: method.clone(),
                url: req.url.clone(),
                secs,
            }
        } else {
            HttpError::Transport {
                method: method.clone(),
                url: req.url.clone(),
                message: error_chain(&e),
            }
        }
    };
    let verb = reqwest::Method::from_bytes(method.as_bytes())
        .map_err(|_| HttpError::Request(format!("\"{method}\" is not an HTTP method")))?;
    let url = reqwest::Url::parse(&req.url)
        .map_err(|e| HttpError::Request(format!("bad URL \"{}\": {e}", req.url)))?;
    let tls = tls_config(&req.ca_file, req.insecure).map_err(HttpError::Request)?;
    let work = async {
        let client = reqwest::Client::builder()
            .use_preconfigured_tls(tls)
            .timeout(Duration::from_secs_f64(secs))
            .build()
            .map_err(transport)?;
        let mut builder = client.request(verb, url);
        for (k, v) in &req.headers {
            builder = builder.header(k.as_str(), v.as_str());
        }
        if !req.body_file.is_empty() {
            let data = tokio::fs::read(&req.body_file).await.map_err(|e| {
                HttpError::Request(format!("cannot read body file {}: {e}", req.body_file))
            })?;
            builder = builder.body(data);
        } else if let Some(b) = body {
            builder = builder.body(b);
        }
        let mut resp = builder.send().await.map_err(transport)?;
        let status = resp.status().as_u16();
        let headers = resp
            .headers()
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        let mut out = HttpResponse {
            status,
            headers,
            body: Vec::new(),
        };
        if req.save_to.is_empty() {
            out.body = resp.bytes().await.map_err(transport)?.to_vec();
        } else {
            let path = &req.save_to;
            let mut file = tokio::fs::File::create(path)
                .await
                .map_err(|e| HttpError::Request(format!("cannot create {path}: {e}")))?;
            let copied: Result<(), HttpError> = async {
                while let Some(chunk) = resp.chunk().await.map_err(transport)? {
                    file.write_all(&chunk)
                        .await
                        .map_err(|e| HttpError::Request(format!("cannot write {path}: {e}")))?;
                }
                file.flush()
                    .await
                    .map_err(|e| HttpError::Request(format!("cannot write {path}: {e}")))
            }
            .await;
            if let Err(e) = copied {
                drop(file);
                let _ = tokio::fs::remove_file(path).await;
                return Err(e);
            }
        }
        Ok(out)
    };
    rt.block_on(async {
        tokio::select! {
            r = work => r,
            _ = halted(halt.clone()) => Err(HttpError::Halted { method: method.clone(), url: req.url.clone() }),
        }
    })
}

/// Define `HttpCli` and `HttpRes` on first use.
pub(crate) fn register<'js>(scope: &JobScope, lazy: &mut LazyGlobals<'js>) {
    let scope = scope.clone();
    lazy.add(["HttpCli", "HttpRes"], move |ctx: &Ctx<'js>| {
        define(ctx, &scope)
    });
}

/// Define `HttpCli` and `HttpRes`: the natives and the prelude over them.
fn define<'js>(ctx: &Ctx<'js>, scope: &JobScope) -> rquickjs::Result<()> {
    let s = scope.clone();
    set_global(
        ctx,
        "__aft_http_do",
        Function::new(
            ctx.clone(),
            move |ctx: Ctx<'js>, req: String, body: Opt<Value<'js>>| {
                let mut req: HttpRequest = serde_json::from_str(&req)
                    .map_err(|e| throw(&ctx, "HttpCli", format!("bad request: {e}")))?;
                if req.url.is_empty() {
                    return Err(throw(
                        &ctx,
                        "HttpCli",
                        "no URL: call .Url(\"https://...\") first",
                    ));
                }
                req.method = req.method.to_ascii_uppercase();
                let body = match body.0 {
                    Some(v) if !v.is_undefined() && !v.is_null() => {
                        Some(bytes_arg(&ctx, "HttpCli.ReqBody", v)?)
                    }
                    _ => None,
                };
                let out = Object::new(ctx.clone())?;
                match execute(&s.tokio, &s.halt, &req, body) {
                    Ok(r) => {
                        out.set("valid", true)?;
                        out.set("status", r.status)?;
                        out.set("text", String::from_utf8_lossy(&r.body).into_owned())?;
                        out.set("body", uint8_array(&ctx, r.body)?)?;
                        let headers = rquickjs::Array::new(ctx.clone())?;
                        for (i, (k, v)) in r.headers.into_iter().enumerate() {
                            let pair = rquickjs::Array::new(ctx.clone())?;
                            pair.set(0, k)?;
                            pair.set(1, v)?;
                            headers.set(i, pair)?;
                        }
                        out.set("headers", headers)?;
                        out.set("error", "")?;
                    }
                    Err(e) => {
                        let msg = e.to_string();
                        s.log(LogLevel::Warn, &format!("HttpCli: {msg}"));
                        out.set("valid", false)?;
                        out.set("status", 0)?;
                        out.set("text", "")?;
                        out.set("body", uint8_array(&ctx, Vec::new())?)?;
                        out.set("headers", rquickjs::Array::new(ctx.clone())?)?;
                        out.set("error", msg)?;
                    }
                }
                Ok(out)
            },
        )?,
    )?;
    set_global(
        ctx,
        "__aft_basic",
        Function::new(ctx.clone(), |user: String, pass: String| {
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"))
        })?,
    )?;
    super::prelude::HTTP.eval::<()>(ctx)
}
