//! `aft start -n NAME -a KEY [--params JSON] [--host H:P] [--wait]`: queue a stored script
//! on a service through `POST /v1/jobs`, as AFT! does, and print the job id.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};

use super::run_async;
use crate::client::{self, Trust};
use crate::global::GlobalArgs;

// Queue a stored script on a running service and print the job id.
#[derive(clap::Args, Debug)]
#[command(group(clap::ArgGroup::new("script").required(true).args(["name", "script_id"])))]
pub struct Args {
    /// Name of the stored script (case-insensitive)
    #[arg(short = 'n', long = "name", value_name = "NAME")]
    name: Option<String>,
    /// Id of the stored script (AFT! v3 form)
    #[arg(short = 's', long = "script-id", value_name = "ID")]
    script_id: Option<String>,
    /// API key (X-API-Key)
    #[arg(
        short = 'a',
        long = "apikey",
        env = "AFT_API_KEY",
        hide_env_values = true,
        value_name = "KEY"
    )]
    apikey: String,
    /// Parameters: a flat JSON object '{"dest":"/archive"}' (or v3 '[{"name":..,"value":..}]')
    #[arg(long, value_name = "JSON")]
    params: Option<String>,
    /// The service's address
    #[arg(long, default_value = "127.0.0.1:44399", value_name = "HOST:PORT")]
    host: String,
    /// Follow the job's log and exit 0 if it succeeds, 1 if not
    #[arg(long)]
    wait: bool,
    /// Queue it as a dry run: nothing is changed, and the job's log ends with its plan
    /// (shown by --wait; GET /v1/jobs/{id} and the web UI's job page have it too)
    #[arg(long)]
    dry_run: bool,
    /// Trust this PEM certificate for the service (default for a local host: the
    /// service's own certificate in the data directory)
    #[arg(long, value_name = "FILE")]
    cacert: Option<PathBuf>,
    /// Do not verify the service's certificate (like curl -k)
    #[arg(long, short = 'k')]
    insecure: bool,
}

/// Run `aft start ...`.
pub fn execute(global: &GlobalArgs, args: Args) -> ExitCode {
    let data_dir = global.data_dir();
    run_async(async move {
        let params = args.params.as_deref().map(super::params_arg).transpose()?;
        let host = args
            .host
            .trim_start_matches("https://")
            .trim_end_matches('/')
            .to_string();
        let mut trust = Trust {
            cacert: args.cacert.clone(),
            insecure: args.insecure,
        };
        if trust.cacert.is_none() && client::is_local_host(&host) {
            let local = aft_server::tls::default_cert_path(&data_dir);
            if local.exists() {
                trust.cacert = Some(local);
            }
        }
        let http = client::client(&trust)?;
        let base = format!("https://{host}");
        let mut body = serde_json::Map::new();
        if let Some(name) = &args.name {
            body.insert("scriptName".into(), name.clone().into());
        }
        if let Some(id) = &args.script_id {
            body.insert("scriptId".into(), id.clone().into());
        }
        if let Some(params) = params {
            body.insert("params".into(), params.to_json());
        }
        if args.dry_run {
            body.insert("dryRun".into(), true.into());
        }
        let resp = http
            .post(format!("{base}/v1/jobs"))
            .header("X-API-Key", &args.apikey)
            .json(&body)
            .send()
            .await
            .map_err(|e| client::connect_error(&base, e))?;
        if resp.status() != reqwest::StatusCode::ACCEPTED {
            bail!(
                "the service refused the job: {}",
                client::error_text(resp).await
            );
        }
        let queued: serde_json::Value = resp
            .json()
            .await
            .context("the service's answer is not JSON")?;
        let job_id = queued["jobId"]
            .as_str()
            .context("the service's answer has no jobId")?
            .to_string();
        outln!("{job_id}");
        if !args.wait {
            return Ok(());
        }
        let end = client::follow_log(
            &http,
            &base,
            &job_id,
            ("X-API-Key", &args.apikey),
            client::print_log_event,
        )
        .await?;
        if client::succeeded(&end) {
            Ok(())
        } else {
            Err(JobFailed(end).into())
        }
    })
}

/// A waited-for job that did not succeed (exit 1 with its status).
#[derive(Debug)]
pub struct JobFailed(pub serde_json::Value);

impl std::fmt::Display for JobFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let status = self.0["status"].as_str().unwrap_or("unknown");
        match self.0["error"].as_str() {
            Some(error) => write!(
                f,
                "job {} {status}: {error}",
                self.0["id"].as_str().unwrap_or("")
            ),
            None => write!(f, "job {} {status}", self.0["id"].as_str().unwrap_or("")),
        }
    }
}

impl std::error::Error for JobFailed {}
