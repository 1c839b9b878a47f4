//! Mail for scripts: AFT!'s `SendMail(from, to, subject, body, attachments)` on lettre
//! with rustls (spec §4).
//!
//! The server comes from the settings (`smtp-host`, `smtp-port`, `smtp-tls` =
//! `starttls|tls|none`, `smtp-user`, `smtp-password-secret`, `smtp-from`, and [ours]
//! `smtp-ca-file`), or from a named server's settings (`NAME.smtp-host`, ...) with
//! `{Server: "NAME"}`, and any of it can be given in the options. It returns true once the
//! server accepted the message, false (reason in the log) otherwise.

use std::path::Path;
use std::time::Duration;

use lettre::message::header::ContentType;
use lettre::message::{Attachment, Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use rquickjs::function::Opt;
use rquickjs::{Ctx, Function, Value};

use super::libutil::{
    opt_bool, opt_f64, opt_str, options, report, secret_value, set_global, string_list,
};
use crate::{HaltFlag, JobScope};

/// How long a mail delivery may take when the script sets no `Timeout`.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// How the connection to the SMTP server is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpTls {
    /// Plain connection, upgraded with STARTTLS (required): the usual port 587.
    StartTls,
    /// TLS from the first byte ("implicit", SMTPS): the usual port 465.
    Implicit,
    /// No TLS at all: only for a relay on the same machine or network.
    None,
}

impl SmtpTls {
    fn parse(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "starttls" | "explicit" => Ok(Self::StartTls),
            "tls" | "implicit" | "ssl" | "smtps" => Ok(Self::Implicit),
            "none" | "plain" | "off" => Ok(Self::None),
            other => Err(format!(
                "smtp-tls \"{other}\" is not one of starttls, tls, none"
            )),
        }
    }
}

/// Where and how to deliver.
#[derive(Debug, Clone)]
pub struct SmtpServer {
    /// Host name or address.
    pub host: String,
    /// Port.
    pub port: u16,
    /// Connection security.
    pub tls: SmtpTls,
    /// Login, if the server needs one.
    pub user: Option<String>,
    /// Password for `user`.
    pub password: Option<String>,
    /// A PEM CA to trust besides the public roots.
    pub ca_file: Option<String>,
    /// Accept any certificate.
    pub insecure: bool,
    /// Give up after this long.
    pub timeout: Duration,
}

/// One mail to send.
#[derive(Debug, Clone, Default)]
pub struct Mail {
    /// Sender (`Name <addr>` or `addr`).
    pub from: String,
    /// Recipients.
    pub to: Vec<String>,
    /// Copy recipients.
    pub cc: Vec<String>,
    /// Blind copy recipients.
    pub bcc: Vec<String>,
    /// Subject line.
    pub subject: String,
    /// Body text (or HTML with `html`).
    pub body: String,
    /// Whether `body` is HTML.
    pub html: bool,
    /// Files to attach.
    pub attachments: Vec<String>,
}

fn mailbox(what: &str, s: &str) -> Result<Mailbox, String> {
    s.trim()
        .parse::<Mailbox>()
        .map_err(|e| format!("{what} address \"{s}\" is not valid: {e}"))
}

fn content_type_for(path: &Path) -> ContentType {
    let ext = path
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    let mime = match ext.as_str() {
        "txt" | "log" => "text/plain",
        "csv" => "text/csv",
        "html" | "htm" => "text/html",
        "json" => "application/json",
        "xml" => "application/xml",
        "pdf" => "application/pdf",
        "zip" => "application/zip",
        "gz" => "application/gzip",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        _ => "application/octet-stream",
    };
    ContentType::parse(mime).unwrap_or(ContentType::TEXT_PLAIN)
}

/// Build the RFC 5322 message (attachments read from disk).
pub fn build_message(mail: &Mail) -> Result<Message, String> {
    if mail.to.is_empty() && mail.cc.is_empty() && mail.bcc.is_empty() {
        return Err("no recipient: give at least one address in `to`".into());
    }
    let mut builder = Message::builder()
        .from(mailbox("sender", &mail.from)?)
        .subject(&mail.subject);
    for to in &mail.to {
        builder = builder.to(mailbox("recipient", to)?);
    }
    for cc in &mail.cc {
        builder = builder.cc(mailbox("Cc", cc)?);
    }
    for bcc in &mail.bcc {
        builder = builder.bcc(mailbox("Bcc", bcc)?);
    }
    let body_type = if mail.html {
        ContentType::TEXT_HTML
    } else {
        ContentType::TEXT_PLAIN
    };
    let body = SinglePart::builder()
        .header(body_type)
        .body(mail.body.clone());
    let message = if mail.attachments.is_empty() {
        builder.singlepart(body)
    } else {
        let mut parts = MultiPart::mixed().singlepart(body);
        for path in &mail.attachments {
            let p = Path::new(path);
            let data =
                std::fs::read(p).map_err(|e| format!("cannot read attachment {path}: {e}"))?;
            let name = p
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| "attachment".into());
            parts = parts.singlepart(Attachment::new(name).body(data, content_type_for(p)));
        }
        builder.multipart(parts)
    };
    message.map_err(|e| format!("cannot build the message: {e}"))
}

async fn halted(halt: HaltFlag) {
    while !halt.is_raised() {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Deliver `mail` through `server`; blocks until the server accepted it, failed, the
/// timeout passed or the job was halted.
pub fn send(
    rt: &tokio::runtime::Handle,
    halt: &HaltFlag,
    server: &SmtpServer,
    mail: &Mail,
) -> Result<(), String> {
    let message = build_message(mail)?;
    let at = format!("{}:{}", server.host, server.port);
    let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&server.host)
        .port(server.port)
        .timeout(Some(server.timeout));
    if server.tls != SmtpTls::None {
        let mut params = TlsParameters::builder(server.host.clone())
            .dangerous_accept_invalid_certs(server.insecure);
        if let Some(ca) = &server.ca_file {
            let pem = std::fs::read(ca).map_err(|e| format!("cannot read CA file {ca}: {e}"))?;
            let cert = Certificate::from_pem(&pem)
                .map_err(|e| format!("CA file {ca} is not a PEM certificate: {e}"))?;
            params = params.add_root_certificate(cert);
        }
        let params = params
            .build_rustls()
            .map_err(|e| format!("TLS setup for {at} failed: {e}"))?;
        builder = builder.tls(match server.tls {
            SmtpTls::StartTls => Tls::Required(params),
            _ => Tls::Wrapper(params),
        });
    }
    if let Some(user) = &server.user {
        builder = builder.credentials(Credentials::new(
            user.clone(),
            server.password.clone().unwrap_or_default(),
        ));
    }
    let transport = builder.build();
    rt.block_on(async {
        tokio::select! {
            r = transport.send(message) => r.map(|_| ()).map_err(|e| {
                let mut msg = e.to_string();
                let mut source = std::error::Error::source(&e);
                while let Some(s) = source {
                    let text = s.to_string();
                    if !msg.contains(&text) {
                        msg.push_str(&format!(": {text}"));
                    }
                    source = s.source();
                }
                format!("mail not sent through SMTP server {at}: {msg}")
            }),
            _ = halted(halt.clone()) => Err(format!("mail not sent through {at}: the job was halted")),
        }
    })
}

/// The server for a call: options first, then the named server's settings, then the
/// default settings.
fn resolve_server(
    scope: &JobScope,
    o: &serde_json::Map<String, serde_json::Value>,
) -> Result<SmtpServer, String> {
    let prefix = opt_str(o, "Server")
        .map(|n| format!("{n}."))
        .unwrap_or_default();
    // A Host given in the options is a different server: none of the configured server's
    // settings (above all its credentials) apply to it.
    let use_settings = opt_str(o, "Host").is_none();
    let setting = |key: &str| {
        use_settings
            .then(|| scope.host.setting(&format!("{prefix}{key}")))
            .flatten()
            .filter(|v| !v.is_empty())
    };
    let host_opt = opt_str(o, "Host")
        .map(str::to_string)
        .or_else(|| setting("smtp-host"));
    let Some(host_opt) = host_opt else {
        return Err(format!(
            "no SMTP server configured: set the setting {prefix}smtp-host (and {prefix}smtp-port, {prefix}smtp-tls, {prefix}smtp-user, {prefix}smtp-password-secret) or pass {{Host: \"mail.example.com:587\"}}"
        ));
    };
    let (host, port_in_host) = match host_opt.rsplit_once(':') {
        Some((h, p)) if p.parse::<u16>().is_ok() => (h.to_string(), p.parse::<u16>().ok()),
        _ => (host_opt.clone(), None),
    };
    let tls = match opt_str(o, "TLS")
        .map(str::to_string)
        .or_else(|| setting("smtp-tls"))
    {
        Some(t) => SmtpTls::parse(&t)?,
        None => SmtpTls::StartTls,
    };
    let port =
        match opt_f64(o, "Port") {
            Some(p) => Some(p as u16),
            None => match setting("smtp-port") {
                Some(p) => Some(p.parse::<u16>().map_err(|_| {
                    format!("setting {prefix}smtp-port \"{p}\" is not a port number")
                })?),
                None => None,
            },
        }
        .or(port_in_host)
        .unwrap_or(match tls {
            SmtpTls::Implicit => 465,
            SmtpTls::StartTls => 587,
            SmtpTls::None => 25,
        });
    let user = opt_str(o, "User")
        .map(str::to_string)
        .or_else(|| setting("smtp-user"));
    let password = if let Some(p) = opt_str(o, "Password") {
        Some(p.to_string())
    } else if let Some(name) = opt_str(o, "PasswordFromSecret")
        .map(str::to_string)
        .or_else(|| setting("smtp-password-secret"))
    {
        Some(secret_value(scope, &name)?)
    } else {
        None
    };
    let timeout = match opt_f64(o, "Timeout") {
        Some(s) if s.is_finite() && s > 0.0 => Duration::from_secs_f64(s),
        _ => DEFAULT_TIMEOUT,
    };
    Ok(SmtpServer {
        host,
        port,
        tls,
        user,
        password,
        ca_file: opt_str(o, "CAFile")
            .map(str::to_string)
            .or_else(|| setting("smtp-ca-file")),
        insecure: opt_bool(o, "InsecureSkipVerify"),
        timeout,
    })
}

fn looks_like_html(body: &str) -> bool {
    let head: String = body
        .trim_start()
        .chars()
        .take(15)
        .collect::<String>()
        .to_ascii_lowercase();
    head.starts_with("<!doctype html") || head.starts_with("<html")
}

/// Split "a@x.com, b@y.com" lists into addresses.
fn split_addresses(list: Vec<String>) -> Vec<String> {
    list.iter()
        .flat_map(|s| s.split([',', ';']))
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

/// Register `SendMail`.
pub fn register<'js>(ctx: &Ctx<'js>, scope: &JobScope) -> rquickjs::Result<()> {
    let s = scope.clone();
    set_global(
        ctx,
        "SendMail",
        Function::new(
            ctx.clone(),
            move |ctx: Ctx<'js>,
                  from: String,
                  to: Value<'js>,
                  subject: String,
                  body: String,
                  attachments: Opt<Value<'js>>,
                  opts: Opt<Value<'js>>| {
                const F: &str = "SendMail";
                let to = split_addresses(string_list(&ctx, F, "recipient", Some(to))?);
                let attachments = string_list(&ctx, F, "attachment", attachments.0)?;
                let o = options(&ctx, F, opts.0)?;
                let list = |key: &str| -> rquickjs::Result<Vec<String>> {
                    let v = match o.get(key) {
                        Some(serde_json::Value::String(s)) => vec![s.clone()],
                        Some(serde_json::Value::Array(a)) => a
                            .iter()
                            .filter_map(|v| v.as_str().map(String::from))
                            .collect(),
                        _ => Vec::new(),
                    };
                    Ok(split_addresses(v))
                };
                let html = match o.get("Html").and_then(|v| v.as_bool()) {
                    Some(h) => h,
                    None => looks_like_html(&body),
                };
                let (cc, bcc) = (list("Cc")?, list("Bcc")?);
                let result = resolve_server(&s, &o).and_then(|server| {
                    let from = if from.is_empty() {
                        let key = opt_str(&o, "Server")
                            .map(|n| format!("{n}.smtp-from"))
                            .unwrap_or_else(|| "smtp-from".into());
                        s.host
                            .setting(&key)
                            .filter(|v| !v.is_empty())
                            .ok_or_else(|| {
                                format!("no sender: give `from` or set the setting {key}")
                            })?
                    } else {
                        from.clone()
                    };
                    let mail = Mail {
                        from,
                        to: to.clone(),
                        cc,
                        bcc,
                        subject: subject.clone(),
                        body: body.clone(),
                        html,
                        attachments,
                    };
                    send(&s.tokio, &s.halt, &server, &mail)
                });
                rquickjs::Result::Ok(report(&s, F, result.map(|_| true), false))
            },
        )?,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_has_every_recipient_and_the_attachment() {
        let d = tempfile::tempdir().unwrap();
        let a = d.path().join("report.csv");
        std::fs::write(&a, "id,name\n1,x\n").unwrap();
        let mail = Mail {
            from: "aft <aft@example.com>".into(),
            to: vec!["a@example.com".into(), "b@example.com".into()],
            subject: "Nightly".into(),
            body: "<html><b>done</b></html>".into(),
            html: true,
            attachments: vec![a.to_string_lossy().into_owned()],
            ..Default::default()
        };
        let text = String::from_utf8(build_message(&mail).unwrap().formatted()).unwrap();
        assert!(text.contains("To: a@example.com, b@example.com"), "{text}");
        assert!(text.contains("text/html"));
        assert!(text.contains("filename=\"report.csv\""));
    }

    #[test]
    fn bad_addresses_and_missing_attachments_are_named() {
        let mail = Mail {
            from: "not an address".into(),
            to: vec!["a@example.com".into()],
            ..Default::default()
        };
        assert!(build_message(&mail).unwrap_err().contains("not an address"));
        let mail = Mail {
            from: "x@example.com".into(),
            to: vec!["a@example.com".into()],
            attachments: vec!["/nonexistent/a.pdf".into()],
            ..Default::default()
        };
        assert!(
            build_message(&mail)
                .unwrap_err()
                .contains("/nonexistent/a.pdf")
        );
    }

    #[test]
    fn html_is_recognised_and_address_lists_split() {
        assert!(looks_like_html("  <!DOCTYPE html><p>x"));
        assert!(!looks_like_html("a < b"));
        assert_eq!(
            split_addresses(vec!["a@x.com; b@y.com,".into()]),
            vec!["a@x.com", "b@y.com"]
        );
    }
}
