//! The HTTPS client of `aft start`, `aft run` delegation and friends: TLS trust, JSON
//! requests, and following a job's log as server-sent events.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, anyhow, bail};

/// How to trust the service's certificate.
#[derive(Debug, Clone, Default)]
pub struct Trust {
    /// Extra PEM certificate to trust (`--cacert`, or the local service's own).
    pub cacert: Option<PathBuf>,
    /// Accept any certificate (`--insecure`, like `curl -k`).
    pub insecure: bool,
}

/// Whether `host` (`H:P` or `H`) names this machine.
pub fn is_local_host(host: &str) -> bool {
    let name = host.rsplit_once(':').map_or(host, |(h, port)| {
        if port.chars().all(|c| c.is_ascii_digit()) {
            h
        } else {
            host
        }
    });
    let name = name.trim_start_matches('[').trim_end_matches(']');
    name == "localhost"
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// An HTTPS client trusting the public roots plus `trust`.
pub fn client(trust: &Trust) -> anyhow::Result<reqwest::Client> {
    let mut builder = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .pool_idle_timeout(Duration::from_secs(30));
    if trust.insecure {
        builder = builder.danger_accept_invalid_certs(true);
    } else if let Some(path) = &trust.cacert {
        builder = builder.add_root_certificate(load_cert(path)?);
    }
    builder.build().context("cannot build the HTTPS client")
}

fn load_cert(path: &Path) -> anyhow::Result<reqwest::Certificate> {
    let pem = std::fs::read(path)
        .with_context(|| format!("cannot read certificate {}", path.display()))?;
    reqwest::Certificate::from_pem(&pem)
        .with_context(|| format!("{} is not a PEM certificate", path.display()))
}

/// The `error` field of an error answer, or the raw body.
pub async fn error_text(resp: reqwest::Response) -> String {
    let status = resp.status();
    let body = resp.text().await.unwrap_or_default();
    let message = serde_json::from_str::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(str::to_string))
        .unwrap_or(body);
    format!("{status}: {message}")
}

/// Explain a connection failure with what to try.
pub fn connect_error(url: &str, e: reqwest::Error) -> anyhow::Error {
    let mut text = format!("cannot reach the aft service at {url}: {e}");
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        text.push_str(&format!(": {s}"));
        source = s.source();
    }
    if text.contains("certificate") || text.contains("UnknownIssuer") {
        text.push_str(" (pass the service's certificate with --cacert FILE, or --insecure to skip verification)");
    } else {
        text.push_str(" (is 'aft serve' running there? check --host)");
    }
    anyhow!(text)
}

/// One event of a followed log.
pub enum LogEvent {
    /// A log line: level and message.
    Line { level: String, message: String },
    /// The job ended (its final JSON is what `follow_log` returns).
    End,
}

/// Follow `GET {base}/v1/jobs/{id}/log?follow=true` and call `on_event` for each event
/// until the `end` event, which is returned.
pub async fn follow_log(
    http: &reqwest::Client,
    base: &str,
    id: &str,
    auth: (&str, &str),
    mut on_event: impl FnMut(&LogEvent),
) -> anyhow::Result<serde_json::Value> {
    let url = format!("{base}/v1/jobs/{id}/log?follow=true");
    let resp = http
        .get(&url)
        .header(auth.0, auth.1)
        .header("Accept", "text/event-stream")
        .send()
        .await
        .map_err(|e| connect_error(base, e))?;
    if !resp.status().is_success() {
        bail!("cannot follow job {id}: {}", error_text(resp).await);
    }
    let end = read_events(resp, |name, data| {
        if name == "end" {
            on_event(&LogEvent::End);
            return Some(data);
        }
        if name == "line" {
            on_event(&line_event(&data));
        }
        None
    })
    .await?;
    end.ok_or_else(|| anyhow!("the service closed the log stream of job {id} before the job ended"))
}

/// The [`LogEvent::Line`] of a `line` event's data.
pub fn line_event(data: &serde_json::Value) -> LogEvent {
    LogEvent::Line {
        level: data["level"].as_str().unwrap_or("info").to_string(),
        message: data["message"].as_str().unwrap_or_default().to_string(),
    }
}

/// Read the server-sent events of `resp`, calling `on_event(name, data as JSON)` for each
/// until it returns `Some`, which is returned; `None` when the stream ends first.
pub async fn read_events<T>(
    mut resp: reqwest::Response,
    mut on_event: impl FnMut(&str, serde_json::Value) -> Option<T>,
) -> anyhow::Result<Option<T>> {
    let mut buffer = String::new();
    let mut event_name = String::new();
    let mut data = String::new();
    while let Some(chunk) = resp.chunk().await.context("the log stream broke off")? {
        buffer.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(newline) = buffer.find('\n') {
            let line: String = buffer.drain(..=newline).collect();
            let line = line.trim_end_matches(['\n', '\r']);
            if line.is_empty() {
                if !data.is_empty() {
                    let value: serde_json::Value = serde_json::from_str(&data).unwrap_or_default();
                    let name = if event_name.is_empty() {
                        "message"
                    } else {
                        &event_name
                    };
                    if let Some(done) = on_event(name, value) {
                        return Ok(Some(done));
                    }
                }
                event_name.clear();
                data.clear();
            } else if let Some(name) = line.strip_prefix("event:") {
                event_name = name.trim().to_string();
            } else if let Some(d) = line.strip_prefix("data:") {
                if !data.is_empty() {
                    data.push('\n');
                }
                data.push_str(d.strip_prefix(' ').unwrap_or(d));
            }
        }
    }
    Ok(None)
}

/// Print a followed log line the way `aft run` prints locally.
pub fn print_log_event(event: &LogEvent) {
    if let LogEvent::Line { level, message } = event {
        match level.as_str() {
            "error" | "warn" => eprintln!("{message}"),
            _ => outln!("{message}"),
        }
    }
}

/// Whether a job's final JSON says it succeeded.
pub fn succeeded(job: &serde_json::Value) -> bool {
    job["status"].as_str() == Some("succeeded")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_hosts_are_recognised() {
        assert!(is_local_host("127.0.0.1:44399"));
        assert!(is_local_host("localhost:1"));
        assert!(is_local_host("[::1]:44399"));
        assert!(is_local_host("127.0.0.2"));
        assert!(!is_local_host("10.0.0.1:44399"));
        assert!(!is_local_host("example.com:44399"));
    }
}
