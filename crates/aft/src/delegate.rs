//! `aft run` delegation (spec §2): when a service runs on this machine for the same data
//! directory, hand the script to it, stream its log back, and exit with the job's result;
//! Ctrl-C halts the job.

use std::collections::BTreeMap;
use std::process::ExitCode;

use aft_server::discovery::{LOCAL_TOKEN_HEADER, ServiceInfo};

use crate::client::{self, Trust};
use crate::global::{EXIT_FAILURE, GlobalArgs};

/// Run the script on the local service if one is running: `Some(exit code)`; `None` when
/// there is no service (the caller then runs the script in-process).
pub fn delegate(
    global: &GlobalArgs,
    name: &str,
    source: &str,
    params: &BTreeMap<String, String>,
) -> Option<ExitCode> {
    let info = ServiceInfo::find_live(&global.data_dir())?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .ok()?;
    let body = serde_json::json!({"name": name, "source": source, "params": params});
    runtime.block_on(async move {
        let http = match client::client(&Trust { cacert: Some(info.cert_path.clone()), insecure: false }) {
            Ok(http) => http,
            Err(e) => {
                eprintln!("error: {e:#}");
                return Some(ExitCode::from(EXIT_FAILURE));
            }
        };
        let resp = match http
            .post(format!("{}/v1/jobs/run", info.url))
            .header(LOCAL_TOKEN_HEADER, &info.token)
            .json(&body)
            .send()
            .await
        {
            Ok(resp) => resp,
            // The service is gone (its pid was reused, or it is stopping): run locally.
            Err(_) => return None,
        };
        if resp.status() != reqwest::StatusCode::ACCEPTED {
            eprintln!("error: {}", client::error_text(resp).await.split_once(": ").map_or(String::new(), |(_, m)| m.to_string()));
            return Some(ExitCode::from(EXIT_FAILURE));
        }
        let queued: serde_json::Value = match resp.json().await {
            Ok(v) => v,
            Err(e) => {
                eprintln!("error: the service's answer is not JSON: {e}");
                return Some(ExitCode::from(EXIT_FAILURE));
            }
        };
        let job_id = queued["jobId"].as_str().unwrap_or_default().to_string();
        let auth = (LOCAL_TOKEN_HEADER, info.token.as_str());
        let follow = client::follow_log(&http, &info.url, &job_id, auth, client::print_log_event);
        tokio::pin!(follow);
        let end = tokio::select! {
            end = &mut follow => end,
            _ = tokio::signal::ctrl_c() => {
                // Halt the job, then keep streaming until it has stopped.
                let _ = http.delete(format!("{}/v1/jobs/{job_id}", info.url)).header(auth.0, auth.1).send().await;
                follow.await
            }
        };
        Some(match end {
            Ok(job) if client::succeeded(&job) => ExitCode::SUCCESS,
            Ok(_) => ExitCode::from(EXIT_FAILURE),
            Err(e) => {
                eprintln!("error: {e:#}");
                ExitCode::from(EXIT_FAILURE)
            }
        })
    })
}
