//! `aft run` delegation (spec §2): when a service runs on this machine for the same data
//! directory, hand the script to it, stream its log back, and exit with the job's result.
//!
//! The script is posted with `Accept: text/event-stream`, so the answer is the job's log
//! and the job is tied to it: SIGINT, SIGTERM and SIGHUP send a halt request and wait for
//! the job's end, and should this process die without a word (kill -9), the service sees
//! the answer close and halts the job itself.

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::process::ExitCode;
use std::rc::Rc;

use aft_engine::JobSpec;
use aft_server::discovery::{LOCAL_TOKEN_HEADER, ServiceInfo};

use crate::client::{self, Trust};
use crate::cmd::run::{HALT_EXIT_WAIT, HaltSignals, RunMode};
use crate::global::{EXIT_FAILURE, GlobalArgs};

/// Run the script on the local service if one is running: `Some(exit code)`; `None` when
/// there is no service (the caller then runs the script in-process).
pub async fn delegate(
    global: &GlobalArgs,
    spec: &JobSpec,
    signals: &mut HaltSignals,
    mode: RunMode,
) -> Option<ExitCode> {
    let info = ServiceInfo::find_live(&global.data_dir())?;
    let failure = |message: String| {
        eprintln!("error: {message}");
        Some(ExitCode::from(EXIT_FAILURE))
    };
    let http = match client::client(&Trust {
        cacert: Some(info.cert_path.clone()),
        insecure: false,
    }) {
        Ok(http) => http,
        Err(e) => return failure(crate::cmd::error_line(&e)),
    };
    let body = serde_json::json!({"name": spec.name, "source": spec.source, "params": spec.params, "dryRun": mode.dry_run});
    // With --json, standard output is kept for the one JSON document.
    let print = move |event: &client::LogEvent| match event {
        client::LogEvent::Line { message, .. } if mode.json => eprintln!("{message}"),
        other => client::print_log_event(other),
    };
    let resp = match http
        .post(format!("{}/v1/jobs/run", info.url))
        .header(LOCAL_TOKEN_HEADER, &info.token)
        .header("Accept", "text/event-stream")
        .json(&body)
        .send()
        .await
    {
        Ok(resp) => resp,
        // The service is gone (its pid was reused, or it is stopping): run locally.
        Err(_) => return None,
    };
    let auth = (LOCAL_TOKEN_HEADER, info.token.as_str());
    // The job's id, once known: a signal needs it for the halt request.
    let job_id: Rc<RefCell<Option<String>>> = Rc::default();
    let mut follow: Pin<Box<dyn Future<Output = anyhow::Result<serde_json::Value>> + '_>> =
        match resp.status() {
            reqwest::StatusCode::OK => {
                let job_id = job_id.clone();
                Box::pin(async move {
                    let end = client::read_events(resp, |name, data| match name {
                        "queued" => {
                            *job_id.borrow_mut() = data["jobId"].as_str().map(str::to_string);
                            None
                        }
                        "line" => {
                            print(&client::line_event(&data));
                            None
                        }
                        "end" => Some(data),
                        _ => None,
                    })
                    .await?;
                    end.ok_or_else(|| {
                        anyhow::anyhow!(
                            "the service closed the job's log stream before the job ended"
                        )
                    })
                })
            }
            // A service of an older version answers with the queued job only.
            reqwest::StatusCode::ACCEPTED => {
                let queued: serde_json::Value = match resp.json().await {
                    Ok(v) => v,
                    Err(e) => return failure(format!("the service's answer is not JSON: {e}")),
                };
                let id = queued["jobId"].as_str().unwrap_or_default().to_string();
                *job_id.borrow_mut() = Some(id.clone());
                let (http, url) = (&http, info.url.as_str());
                Box::pin(async move { client::follow_log(http, url, &id, auth, print).await })
            }
            _ => {
                let text = client::error_text(resp).await;
                return failure(
                    text.split_once(": ")
                        .map_or(text.clone(), |(_, m)| m.to_string()),
                );
            }
        };

    let end = tokio::select! {
        end = &mut follow => end,
        name = signals.recv() => {
            eprintln!("{name} received: halting the job");
            let id = job_id.borrow().clone();
            let Some(id) = id else {
                // Not even queued as far as we know: dropping the answer halts the job.
                return Some(ExitCode::from(EXIT_FAILURE));
            };
            let halt = http
                .delete(format!("{}/v1/jobs/{id}", info.url))
                .header(auth.0, auth.1)
                .send();
            // Keep streaming until the job has stopped, but not for ever: leaving closes
            // the stream, which halts the job too.
            let stopped = tokio::time::timeout(HALT_EXIT_WAIT, async {
                if let Err(e) = halt.await {
                    eprintln!("error: cannot send the halt request: {e}");
                }
                follow.await
            });
            match stopped.await {
                Ok(end) => end,
                Err(_) => {
                    eprintln!("halted: the job did not stop in time; exiting anyway");
                    return Some(ExitCode::from(EXIT_FAILURE));
                }
            }
        }
    };
    if mode.json
        && let Ok(end) = &end
    {
        let id = job_id.borrow().clone().unwrap_or_default();
        let view: serde_json::Value = match http
            .get(format!("{}/v1/jobs/{id}", info.url))
            .header(auth.0, auth.1)
            .send()
            .await
        {
            Ok(resp) => resp.json().await.unwrap_or_default(),
            Err(_) => serde_json::Value::Null,
        };
        let doc = serde_json::json!({
            "jobId": id,
            "status": end["status"],
            "exitCode": view["exitCode"],
            "dryRun": view["dryRun"],
            "plan": view["plan"],
        });
        outln!("{doc}");
    }
    Some(match end {
        Ok(job) if client::succeeded(&job) => ExitCode::SUCCESS,
        Ok(_) => ExitCode::from(EXIT_FAILURE),
        Err(e) => {
            eprintln!("error: {}", crate::cmd::error_line(&e));
            ExitCode::from(EXIT_FAILURE)
        }
    })
}
