//! What happens after a job ends (issue 20): a stored script's retry policy, its
//! notifications (and the global ones of the `notify-*` settings) and its chains.
//!
//! Nothing here runs inside the job runner. Every node runs two loops:
//! - the **settler** finds ended jobs whose follow-ups are not recorded (`settled = 0`) and
//!   records them in one store transaction ([`aft_store::Store::settle_job`]): a retry as a
//!   queued job that is not claimed before its delay has passed, the chained scripts' jobs,
//!   and the notifications in the outbox. One node wins each job, so nothing is made twice;
//!   a node dying half-way leaves the job for the next pass.
//! - the **notifier** takes due notifications from the outbox (with a lease, so a dead
//!   sender's ones are taken over) and delivers them: a webhook POST or a mail through the
//!   `smtp-*` settings. A failed attempt is tried again with a doubling wait; once its
//!   attempts are used up the notification is dead, listed until someone retries it.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use serde::{Deserialize, Serialize};
use tokio::sync::Semaphore;
use utoipa::ToSchema;

use aft_engine::JobHost;
use aft_store::{
    Job, JobParams, JobStatus, NewJob, NewNotification, Notification, Script, Settlement, Store,
    StoreError, StoreResult, StoredPolicy,
};

use crate::host::StoreJobHost;

/// How often each loop looks for work.
const POLL_EVERY: Duration = Duration::from_millis(250);
/// How long one delivery attempt may hold a notification before another node may take it.
const DELIVERY_LEASE: Duration = Duration::from_secs(120);
/// How long one webhook call or mail may take.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(30);
/// Deliveries one node makes at the same time.
const PARALLEL_DELIVERIES: usize = 8;
/// The longest wait between two attempts of a notification.
const MAX_NOTIFY_BACKOFF: Duration = Duration::from_secs(3600);

/// A stored script's retry policy, notifications and chains.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ScriptPolicy {
    /// Run the script again when a job of it fails; absent = never.
    pub retry: Option<RetryPolicy>,
    /// Tell someone how its jobs end; absent = only the global notifications.
    pub notify: Option<NotifyPolicy>,
    /// Scripts to start when its job ends; absent = none.
    pub chain: Option<ChainPolicy>,
}

/// When and how often a failed job runs again. Each attempt is a job of its own.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RetryPolicy {
    /// Runs in all, the first one included (1 = no retry), at most 100.
    pub attempts: u32,
    /// `exponential` (the wait doubles after each attempt; the default) or `fixed`.
    #[serde(default)]
    pub backoff: Backoff,
    /// Wait before the first retry, in milliseconds (default 1000).
    #[serde(default = "default_delay_ms")]
    pub delay_ms: u64,
    /// Longest wait, in milliseconds (default one hour).
    #[serde(default = "default_max_delay_ms")]
    pub max_delay_ms: u64,
    /// 0 to 1: up to this share of each wait is taken off at random, so jobs that failed
    /// together do not all retry at the same moment (default 0).
    #[serde(default)]
    pub jitter: f64,
    /// Which outcomes retry: `failed`, `interrupted` (default both).
    #[serde(default = "default_retry_on")]
    pub on: Vec<RetryOn>,
    /// Only a failure with one of these exit codes retries (empty = any code).
    #[serde(default)]
    pub exit_codes: Vec<i64>,
}

fn default_delay_ms() -> u64 {
    1000
}

fn default_max_delay_ms() -> u64 {
    3_600_000
}

fn default_retry_on() -> Vec<RetryOn> {
    vec![RetryOn::Failed, RetryOn::Interrupted]
}

/// How the wait between attempts grows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Backoff {
    /// The same wait every time.
    Fixed,
    /// The wait doubles after each attempt.
    #[default]
    Exponential,
}

/// An outcome that may retry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum RetryOn {
    /// The script threw or exited with a non-zero code.
    Failed,
    /// The node running it died or stopped.
    Interrupted,
}

/// Where a script's notifications go, and for which outcomes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NotifyPolicy {
    /// `failure`, `success`, `recovery` (the first success after a failure); default
    /// failure and recovery.
    #[serde(default = "default_events")]
    pub on: Vec<NotifyEvent>,
    /// URLs to POST to.
    #[serde(default)]
    pub webhooks: Vec<Webhook>,
    /// Addresses to mail to (through the `smtp-*` settings).
    #[serde(default)]
    pub emails: Vec<String>,
}

fn default_events() -> Vec<NotifyEvent> {
    vec![NotifyEvent::Failure, NotifyEvent::Recovery]
}

/// One webhook.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Webhook {
    /// `http://` or `https://` URL.
    pub url: String,
    /// Send Slack's `{"text": ...}` instead of aft's JSON.
    #[serde(default)]
    pub slack: bool,
}

/// What a job's end is, for notifications.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum NotifyEvent {
    /// Failed or interrupted, with no retry left.
    Failure,
    /// Succeeded.
    Success,
    /// Succeeded after the script's previous job failed.
    Recovery,
}

impl NotifyEvent {
    fn as_str(self) -> &'static str {
        match self {
            NotifyEvent::Failure => "failure",
            NotifyEvent::Success => "success",
            NotifyEvent::Recovery => "recovery",
        }
    }
}

/// Scripts to start when a job of this one ends (with its parameters and its `Result`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ChainPolicy {
    /// Started when it succeeds.
    #[serde(default)]
    pub on_success: Vec<String>,
    /// Started when it fails or is interrupted (after its last retry).
    #[serde(default)]
    pub on_failure: Vec<String>,
}

impl RetryPolicy {
    fn check(&self) -> Result<(), String> {
        if !(1..=100).contains(&self.attempts) {
            return Err("retry.attempts must be from 1 to 100".into());
        }
        if self.delay_ms > 86_400_000 || self.max_delay_ms > 86_400_000 {
            return Err(
                "retry.delayMs and retry.maxDelayMs must be at most 86400000 (a day)".into(),
            );
        }
        if !(0.0..=1.0).contains(&self.jitter) {
            return Err("retry.jitter must be from 0 to 1".into());
        }
        Ok(())
    }

    /// Whether a job that ended as `status` with `exit_code` is retried by this policy.
    fn retries(&self, status: JobStatus, exit_code: Option<i64>) -> bool {
        match status {
            JobStatus::Failed => {
                self.on.contains(&RetryOn::Failed)
                    && (self.exit_codes.is_empty()
                        || exit_code.is_some_and(|c| self.exit_codes.contains(&c)))
            }
            JobStatus::Interrupted => self.on.contains(&RetryOn::Interrupted),
            _ => false,
        }
    }

    /// The wait before retry number `n` (1 = the first retry), jitter applied.
    pub fn delay(&self, n: u32) -> Duration {
        let base = match self.backoff {
            Backoff::Fixed => self.delay_ms,
            Backoff::Exponential => self
                .delay_ms
                .saturating_mul(1u64.checked_shl(n.saturating_sub(1)).unwrap_or(u64::MAX)),
        };
        let capped = base.min(self.max_delay_ms) as f64;
        let taken = if self.jitter > 0.0 {
            capped * self.jitter * rand::thread_rng().r#gen::<f64>()
        } else {
            0.0
        };
        Duration::from_millis((capped - taken).max(0.0) as u64)
    }
}

impl NotifyPolicy {
    fn check(&self) -> Result<(), String> {
        for hook in &self.webhooks {
            check_webhook_url(&hook.url)?;
        }
        for address in &self.emails {
            check_address(address)?;
        }
        Ok(())
    }
}

fn check_webhook_url(url: &str) -> Result<(), String> {
    match reqwest::Url::parse(url) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => Ok(()),
        _ => Err(format!(
            "webhook URL {url:?} is not an http:// or https:// URL"
        )),
    }
}

fn check_address(address: &str) -> Result<(), String> {
    let ok = address
        .split_once('@')
        .is_some_and(|(user, host)| !user.is_empty() && !host.is_empty())
        && !address.chars().any(|c| c.is_whitespace() || c.is_control());
    if ok {
        Ok(())
    } else {
        Err(format!("{address:?} is not a mail address"))
    }
}

/// Wants `event` when subscribed to it; a recovery is a success too.
fn wants(on: &[NotifyEvent], event: NotifyEvent) -> bool {
    on.contains(&event) || (event == NotifyEvent::Recovery && on.contains(&NotifyEvent::Success))
}

fn parse_section<T: serde::de::DeserializeOwned>(
    what: &str,
    value: &Option<serde_json::Value>,
) -> StoreResult<Option<T>> {
    value
        .clone()
        .map(serde_json::from_value)
        .transpose()
        .map_err(|e| StoreError::Invalid(format!("stored {what} policy: {e}")))
}

/// The policy of script `script_id` (empty when none was set).
pub async fn load_policy(store: &Store, script_id: &str) -> StoreResult<ScriptPolicy> {
    let stored = store.script_policy(script_id).await?;
    Ok(ScriptPolicy {
        retry: parse_section("retry", &stored.retry)?,
        notify: parse_section("notify", &stored.notify)?,
        chain: parse_section("chain", &stored.chain)?,
    })
}

/// Check `policy` and store it as the policy of the script with this id or name. Chains
/// must name stored scripts (their names are kept as those scripts spell them) and may not
/// make a cycle: a script that, through chains, would start itself is refused (409).
pub async fn save_policy(
    store: &Store,
    id_or_name: &str,
    mut policy: ScriptPolicy,
) -> StoreResult<(Script, ScriptPolicy)> {
    let script = store.find_script(id_or_name).await?;
    if let Some(retry) = &policy.retry {
        retry.check().map_err(StoreError::Invalid)?;
    }
    if let Some(notify) = &policy.notify {
        notify.check().map_err(StoreError::Invalid)?;
    }
    let scripts = store.list_scripts().await?;
    let by_key: HashMap<String, &Script> =
        scripts.iter().map(|s| (s.name.to_lowercase(), s)).collect();
    if let Some(chain) = policy.chain.as_mut() {
        for list in [&mut chain.on_success, &mut chain.on_failure] {
            for name in list.iter_mut() {
                let Some(target) = by_key.get(&name.to_lowercase()) else {
                    return Err(StoreError::Invalid(format!(
                        "chain names script {name:?}, which is not stored"
                    )));
                };
                *name = target.name.clone();
            }
        }
    }
    // The chain graph by lower-cased name, with this script's new edges.
    let names: HashMap<String, String> = scripts
        .iter()
        .map(|s| (s.id.clone(), s.name.to_lowercase()))
        .collect();
    let mut edges: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (script_id, stored) in store.script_policies().await? {
        if script_id == script.id {
            continue;
        }
        let (Some(from), Ok(Some(chain))) = (
            names.get(&script_id),
            parse_section::<ChainPolicy>("chain", &stored.chain),
        ) else {
            continue;
        };
        edges.insert(from.clone(), chain_targets(&chain));
    }
    let me = script.name.to_lowercase();
    if let Some(chain) = &policy.chain {
        edges.insert(me.clone(), chain_targets(chain));
    }
    if let Some(cycle) = find_cycle(&edges, &me) {
        let shown: Vec<String> = cycle
            .iter()
            .map(|key| {
                by_key
                    .get(key)
                    .map(|s| s.name.clone())
                    .unwrap_or(key.clone())
            })
            .collect();
        return Err(StoreError::Refused(format!(
            "chain cycle: {} (a chain may not lead back to a script in it)",
            shown.join(" → ")
        )));
    }
    let section = |v: Option<serde_json::Value>| v.filter(|v| !v.is_null());
    let stored = StoredPolicy {
        retry: section(policy.retry.as_ref().map(|r| serde_json::json!(r))),
        notify: section(policy.notify.as_ref().map(|n| serde_json::json!(n))),
        chain: section(policy.chain.as_ref().map(|c| serde_json::json!(c))),
    };
    store.put_script_policy(&script.id, &stored).await?;
    Ok((script, policy))
}

fn chain_targets(chain: &ChainPolicy) -> Vec<String> {
    chain
        .on_success
        .iter()
        .chain(&chain.on_failure)
        .map(|n| n.to_lowercase())
        .collect()
}

/// A path `start → ... → start` through `edges`, if there is one.
fn find_cycle(edges: &BTreeMap<String, Vec<String>>, start: &str) -> Option<Vec<String>> {
    fn walk(
        edges: &BTreeMap<String, Vec<String>>,
        start: &str,
        path: &mut Vec<String>,
        seen: &mut std::collections::HashSet<String>,
    ) -> bool {
        let at = path.last().cloned().unwrap_or_default();
        for next in edges.get(&at).into_iter().flatten() {
            if next == start {
                path.push(next.clone());
                return true;
            }
            if seen.insert(next.clone()) {
                path.push(next.clone());
                if walk(edges, start, path, seen) {
                    return true;
                }
                path.pop();
            }
        }
        false
    }
    let mut path = vec![start.to_string()];
    let mut seen = std::collections::HashSet::new();
    walk(edges, start, &mut path, &mut seen).then_some(path)
}

/// The `notify-*` and `public-url` settings.
struct NotifySettings {
    on: Vec<NotifyEvent>,
    webhook: Option<Webhook>,
    emails: Vec<String>,
    attempts: i64,
    backoff: Duration,
    log_lines: i64,
    public_url: String,
}

async fn notify_settings(store: &Store, node_url: &str) -> StoreResult<NotifySettings> {
    let values: HashMap<&str, String> = store
        .list_settings()
        .await?
        .into_iter()
        .map(|s| (s.key, s.value))
        .collect();
    let get = |key: &str| values.get(key).cloned().unwrap_or_default();
    let num = |key: &str| get(key).parse::<i64>().unwrap_or(0);
    let mut on = Vec::new();
    for word in get("notify-on")
        .split(',')
        .map(str::trim)
        .filter(|w| !w.is_empty())
    {
        match word.to_ascii_lowercase().as_str() {
            "failure" => on.push(NotifyEvent::Failure),
            "success" => on.push(NotifyEvent::Success),
            "recovery" => on.push(NotifyEvent::Recovery),
            other => tracing::warn!(
                "setting notify-on: {other:?} is not failure, success or recovery; ignored"
            ),
        }
    }
    let url = get("notify-webhook");
    let public = get("public-url");
    Ok(NotifySettings {
        on,
        webhook: (!url.trim().is_empty()).then(|| Webhook {
            url: url.trim().to_string(),
            slack: get("notify-webhook-slack") == "true",
        }),
        emails: get("notify-email")
            .split([',', ';'])
            .map(str::trim)
            .filter(|a| !a.is_empty())
            .map(str::to_string)
            .collect(),
        attempts: num("notify-attempts").max(1),
        backoff: Duration::from_millis(num("notify-backoff-ms").max(1) as u64),
        log_lines: num("notify-log-lines").max(0),
        public_url: if public.trim().is_empty() {
            node_url.to_string()
        } else {
            public.trim().trim_end_matches('/').to_string()
        },
    })
}

/// Start this node's settler and notifier. `node_url` is this node's address, for job
/// links when the `public-url` setting is empty.
pub fn start(store: Store, host: StoreJobHost, node_url: String) {
    tokio::spawn(settle_loop(store.clone(), node_url));
    tokio::spawn(notify_loop(store, Arc::new(host)));
}

async fn settle_loop(store: Store, node_url: String) {
    let mut last_purge: Option<std::time::Instant> = None;
    loop {
        if last_purge.is_none_or(|at| at.elapsed() >= Duration::from_secs(3600)) {
            last_purge = Some(std::time::Instant::now());
            purge_old_notifications(&store).await;
        }
        let full = match store.unsettled_jobs(SETTLE_PAGE).await {
            Ok(jobs) => {
                let full = jobs.len() as i64 == SETTLE_PAGE;
                settle_page(&store, &jobs, &node_url).await;
                full
            }
            Err(e) => {
                tracing::warn!("cannot look for ended jobs: {e}");
                false
            }
        };
        // A full page means more are waiting: go on at once, so the settler keeps up with
        // a runner ending hundreds of jobs a second.
        if !full {
            tokio::time::sleep(POLL_EVERY).await;
        }
    }
}

/// Ended jobs the settler takes at a time.
const SETTLE_PAGE: i64 = 200;

/// What the settler read once for a page of jobs.
struct PageCache {
    settings: NotifySettings,
    dry_runs: std::collections::HashSet<String>,
    /// Script id → its policy.
    policies: HashMap<String, ScriptPolicy>,
    /// Script id → its last final outcome, as the page's settlements leave it.
    outcomes: HashMap<String, Option<JobStatus>>,
}

/// Record the follow-ups of a page of ended jobs: the settings, dry-run marks, policies and
/// last outcomes are read once for the page, and the settlements written in one
/// transaction (one by one if that fails, so one job's refusal holds no other back).
async fn settle_page(store: &Store, jobs: &[(Job, Option<String>)], node_url: &str) {
    if jobs.is_empty() {
        return;
    }
    let ids: Vec<String> = jobs.iter().map(|(job, _)| job.id.clone()).collect();
    let read = async {
        StoreResult::Ok(PageCache {
            settings: notify_settings(store, node_url).await?,
            dry_runs: store.dry_runs_among(&ids).await?,
            policies: HashMap::new(),
            outcomes: HashMap::new(),
        })
    };
    let mut cache = match read.await {
        Ok(cache) => cache,
        Err(e) => {
            tracing::warn!("cannot record what follows {} ended jobs: {e}", jobs.len());
            return;
        }
    };
    let mut settlements = Vec::with_capacity(jobs.len());
    for (job, watcher_id) in jobs {
        match settlement_of(store, job, watcher_id.is_some(), &mut cache).await {
            Ok(settlement) => settlements.push((job.id.clone(), settlement)),
            Err(e) => tracing::warn!("cannot record what follows job {}: {e}", job.id),
        }
    }
    if let Err(e) = store.settle_jobs(&settlements).await {
        tracing::debug!("settling a page of jobs at once failed, one by one now: {e}");
        for (id, settlement) in &settlements {
            if let Err(e) = store.settle_job(id, settlement).await {
                tracing::warn!("cannot record what follows job {id}: {e}");
            }
        }
    }
}

/// Delete delivered and dead notifications older than the `job-retention-days` setting.
async fn purge_old_notifications(store: &Store) {
    let days = match store.settings().await {
        Ok(settings) => settings.job_retention_days,
        Err(e) => {
            tracing::warn!("cannot read the settings to purge old notifications: {e}");
            return;
        }
    };
    let cutoff = aft_store::time_before(Duration::from_secs(u64::from(days) * 86_400));
    match store.purge_notifications_before(&cutoff).await {
        Ok(0) => {}
        Ok(purged) => tracing::info!(purged, "old notifications purged"),
        Err(e) => tracing::warn!("cannot purge old notifications: {e}"),
    }
}

/// The follow-ups of one ended job, to record with [`Store::settle_jobs`].
async fn settlement_of(
    store: &Store,
    job: &Job,
    watcher_run: bool,
    cache: &mut PageCache,
) -> StoreResult<Settlement> {
    // A dry run changes nothing: it neither retries, notifies nor chains (docs/dry-run.md).
    if cache.dry_runs.contains(&job.id) {
        return Ok(Settlement::default());
    }
    let settings = &cache.settings;
    let policy = match &job.script_id {
        Some(id) => match cache.policies.get(id) {
            Some(policy) => policy.clone(),
            None => {
                let policy = load_policy(store, id).await.unwrap_or_else(|e| {
                    tracing::warn!(
                        "script {id}: {e}; its jobs get no retry, notification or chain"
                    );
                    ScriptPolicy::default()
                });
                cache.policies.insert(id.clone(), policy.clone());
                policy
            }
        },
        None => ScriptPolicy::default(),
    };
    let mut settlement = Settlement::default();
    let retry = policy.retry.as_ref().filter(|r| {
        !watcher_run
            && job.script_id.is_some()
            && r.retries(job.status, job.exit_code)
            && job.retry_attempt < i64::from(r.attempts)
    });
    if let Some(retry) = retry {
        let delay = retry.delay(job.retry_attempt.max(1) as u32);
        let from = job
            .finished_at
            .as_deref()
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.with_timezone(&chrono::Utc))
            .unwrap_or_else(chrono::Utc::now);
        let not_before = from + chrono::Duration::from_std(delay).unwrap_or_default();
        settlement.jobs.push(NewJob {
            script_id: job.script_id.clone(),
            script_name: job.script_name.clone(),
            file_path: job.file_path.clone(),
            source: job.source.clone(),
            params: job.params.clone(),
            origin: "retry".into(),
            api_key_id: job.api_key_id.clone(),
            retry_safe: job.retry_safe,
            pinned_node: job.pinned_node.clone(),
            retry_of: Some(job.retry_of.clone().unwrap_or_else(|| job.id.clone())),
            retry_attempt: job.retry_attempt.max(1) + 1,
            not_before: Some(not_before.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)),
            chained_from: job.chained_from.clone(),
            // A retry is started by whoever started the first attempt.
            started_by: job.started_by.clone(),
        });
        return Ok(settlement);
    }

    let failed = matches!(job.status, JobStatus::Failed | JobStatus::Interrupted);
    let succeeded = job.status == JobStatus::Succeeded;
    let event = if succeeded {
        let before = match &job.script_id {
            Some(id) => match cache.outcomes.get(id) {
                Some(outcome) => *outcome,
                None => store.script_last_outcome(id).await?,
            },
            None => None,
        };
        Some(
            if matches!(before, Some(JobStatus::Failed | JobStatus::Interrupted)) {
                NotifyEvent::Recovery
            } else {
                NotifyEvent::Success
            },
        )
    } else if failed {
        Some(NotifyEvent::Failure)
    } else {
        None
    };
    if let (Some(id), true) = (&job.script_id, succeeded || failed) {
        settlement.outcome = Some((id.clone(), job.status));
        cache.outcomes.insert(id.clone(), Some(job.status));
    }

    if let (Some(chain), false) = (&policy.chain, watcher_run) {
        let targets = if succeeded {
            &chain.on_success
        } else if failed {
            &chain.on_failure
        } else {
            &Vec::new()
        };
        for name in targets {
            let Some(next) = store.script_by_name(name).await? else {
                tracing::warn!(
                    "job {}: chained script {name:?} is no longer stored",
                    job.id
                );
                continue;
            };
            settlement.jobs.push(NewJob {
                script_id: Some(next.id.clone()),
                script_name: Some(next.name.clone()),
                source: next.body.clone(),
                params: chain_params(&job.params, job.result.as_deref()),
                origin: "chain".into(),
                retry_safe: next.retry_safe,
                chained_from: Some(job.id.clone()),
                started_by: Some(format!(
                    "chain from {}",
                    job.script_name.as_deref().unwrap_or("a job")
                )),
                ..Default::default()
            });
        }
    }

    if let Some(event) = event {
        let mut webhooks: Vec<Webhook> = Vec::new();
        let mut emails: Vec<String> = Vec::new();
        if let Some(notify) = &policy.notify
            && wants(&notify.on, event)
        {
            webhooks.extend(notify.webhooks.iter().cloned());
            emails.extend(notify.emails.iter().cloned());
        }
        if wants(&settings.on, event) {
            webhooks.extend(settings.webhook.clone());
            emails.extend(settings.emails.iter().cloned());
        }
        webhooks.dedup();
        emails.sort();
        emails.dedup();
        if !webhooks.is_empty() || !emails.is_empty() {
            let message = Message::of(store, job, event, settings).await?;
            for hook in webhooks {
                settlement.notifications.push(NewNotification {
                    job_id: job.id.clone(),
                    script_name: job.script_name.clone(),
                    event: event.as_str().into(),
                    channel: "webhook".into(),
                    target: hook.url.clone(),
                    payload: if hook.slack {
                        serde_json::json!({ "text": message.text() })
                    } else {
                        message.json()
                    },
                });
            }
            for address in emails {
                settlement.notifications.push(NewNotification {
                    job_id: job.id.clone(),
                    script_name: job.script_name.clone(),
                    event: event.as_str().into(),
                    channel: "email".into(),
                    target: address,
                    payload: serde_json::json!({
                        "subject": message.subject(),
                        "body": message.text(),
                    }),
                });
            }
        }
    }
    Ok(settlement)
}

/// A chained job's parameters: the ending job's, and its `Result` when the script set one.
fn chain_params(params: &JobParams, result: Option<&str>) -> JobParams {
    let mut json = params.to_json();
    if let (Some(result), Some(map)) = (result, json.as_object_mut()) {
        map.insert("Result".into(), serde_json::Value::String(result.into()));
    }
    JobParams::from_json(json).unwrap_or_else(|_| params.clone())
}

/// What a notification says about a job.
struct Message {
    event: NotifyEvent,
    job: Job,
    script: String,
    url: String,
    log: Vec<String>,
}

impl Message {
    async fn of(
        store: &Store,
        job: &Job,
        event: NotifyEvent,
        settings: &NotifySettings,
    ) -> StoreResult<Message> {
        let last = store.last_job_log_line(&job.id).await?;
        let from = (last - settings.log_lines).max(0);
        let log = store
            .read_job_logs(&job.id, from, settings.log_lines)
            .await?
            .into_iter()
            .map(|l| l.message)
            .collect();
        Ok(Message {
            event,
            job: job.clone(),
            script: job
                .script_name
                .clone()
                .or(job.file_path.clone())
                .unwrap_or_else(|| "(script)".into()),
            url: format!("{}/#/jobs/{}", settings.public_url, job.id),
            log,
        })
    }

    fn subject(&self) -> String {
        let what = match self.event {
            NotifyEvent::Failure => format!("{}", self.job.status),
            NotifyEvent::Success => "succeeded".into(),
            NotifyEvent::Recovery => "recovered (succeeded after a failure)".into(),
        };
        format!("[aft] {} {what} (job {})", self.script, self.job.id)
    }

    fn text(&self) -> String {
        let mut text = self.subject();
        if let Some(error) = &self.job.error {
            text.push_str(&format!("\nerror: {error}"));
        }
        if self.job.retry_attempt > 1 {
            text.push_str(&format!("\nattempt: {}", self.job.retry_attempt));
        }
        text.push_str(&format!("\njob page: {}", self.url));
        if !self.log.is_empty() {
            text.push_str("\nlast log lines:\n");
            text.push_str(&self.log.join("\n"));
        }
        text
    }

    fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "event": self.event.as_str(),
            "script": self.script,
            "status": self.job.status.as_str(),
            "job": {
                "id": self.job.id,
                "status": self.job.status.as_str(),
                "exitCode": self.job.exit_code,
                "error": self.job.error,
                "params": self.job.params.to_json(),
                "result": self.job.result,
                "retryAttempt": self.job.retry_attempt,
                "retryOf": self.job.retry_of,
                "createdAt": self.job.created_at,
                "startedAt": self.job.started_at,
                "finishedAt": self.job.finished_at,
            },
            "url": self.url,
            "log": self.log,
            "text": self.text(),
        })
    }
}

async fn notify_loop(store: Store, host: Arc<StoreJobHost>) {
    let slots = Arc::new(Semaphore::new(PARALLEL_DELIVERIES));
    let http = reqwest::Client::builder()
        .timeout(DELIVERY_TIMEOUT)
        .build()
        .unwrap_or_default();
    loop {
        let Ok(permit) = slots.clone().acquire_owned().await else {
            return;
        };
        match store.claim_notification(DELIVERY_LEASE).await {
            Ok(Some(n)) => {
                let (store, host, http) = (store.clone(), host.clone(), http.clone());
                tokio::spawn(async move {
                    deliver_and_record(&store, &host, &http, n).await;
                    drop(permit);
                });
            }
            Ok(None) => {
                drop(permit);
                tokio::time::sleep(POLL_EVERY).await;
            }
            Err(e) => {
                drop(permit);
                tracing::warn!("cannot look for notifications to deliver: {e}");
                tokio::time::sleep(POLL_EVERY).await;
            }
        }
    }
}

async fn deliver_and_record(
    store: &Store,
    host: &Arc<StoreJobHost>,
    http: &reqwest::Client,
    n: Notification,
) {
    let outcome = match n.channel.as_str() {
        "webhook" => post_webhook(http, &n).await,
        "email" => send_mail(host.clone(), &n).await,
        other => Err(format!("unknown channel {other:?}")),
    };
    let recorded = match outcome {
        Ok(()) => store.notification_delivered(&n.id).await,
        Err(error) => {
            let (attempts, backoff) = match notify_settings(store, "").await {
                Ok(s) => (s.attempts, s.backoff),
                Err(_) => (5, Duration::from_secs(30)),
            };
            let retry_in = (n.attempts < attempts).then(|| {
                let factor = 1u32
                    .checked_shl((n.attempts.max(1) - 1) as u32)
                    .unwrap_or(u32::MAX);
                backoff.saturating_mul(factor).min(MAX_NOTIFY_BACKOFF)
            });
            if retry_in.is_none() {
                tracing::warn!(
                    "notification {} to {} is dead after {} attempts: {error}",
                    n.id,
                    n.target,
                    n.attempts
                );
            }
            store.notification_failed(&n.id, &error, retry_in).await
        }
    };
    if let Err(e) = recorded {
        tracing::warn!("cannot record the delivery of notification {}: {e}", n.id);
    }
}

async fn post_webhook(http: &reqwest::Client, n: &Notification) -> Result<(), String> {
    let response = http
        .post(&n.target)
        .json(&n.payload)
        .send()
        .await
        .map_err(|e| format!("POST {}: {}", n.target, error_chain(&e)))?;
    let status = response.status();
    if status.is_success() {
        Ok(())
    } else {
        Err(format!("POST {}: the server answered {status}", n.target))
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let more = s.to_string();
        if !text.contains(&more) {
            text.push_str(&format!(": {more}"));
        }
        source = s.source();
    }
    text
}

/// Mail through the `smtp-*` settings (the ones `SendMail` uses).
async fn send_mail(host: Arc<StoreJobHost>, n: &Notification) -> Result<(), String> {
    use aft_engine::api::mail::{Mail, SmtpServer, SmtpTls, send};
    let subject = n.payload["subject"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let body = n.payload["body"].as_str().unwrap_or_default().to_string();
    let to = n.target.clone();
    let rt = tokio::runtime::Handle::current();
    tokio::task::spawn_blocking(move || {
        // Settings and secrets are read through the job host, which blocks: this thread.
        let setting = |key: &str| host.setting(key).filter(|v| !v.is_empty());
        let Some(host_name) = setting("smtp-host") else {
            return Err("no SMTP server configured: set the setting smtp-host".to_string());
        };
        let tls = match setting("smtp-tls").as_deref() {
            Some("tls") => SmtpTls::Implicit,
            Some("none") => SmtpTls::None,
            _ => SmtpTls::StartTls,
        };
        let port = setting("smtp-port")
            .and_then(|p| p.parse::<u16>().ok())
            .unwrap_or(587);
        let password = match setting("smtp-password-secret") {
            Some(name) => Some(host.secret(&name).ok_or_else(|| {
                format!("the secret {name:?} (setting smtp-password-secret) cannot be read")
            })?),
            None => None,
        };
        let server = SmtpServer {
            host: host_name,
            port,
            tls,
            user: setting("smtp-user"),
            password,
            ca_file: setting("smtp-ca-file"),
            insecure: false,
            timeout: DELIVERY_TIMEOUT,
        };
        let mail = Mail {
            from: setting("smtp-from").unwrap_or_else(|| "aft@localhost".into()),
            to: vec![to],
            subject,
            body,
            ..Default::default()
        };
        send(&rt, &aft_engine::HaltFlag::new(), &server, &mail)
    })
    .await
    .map_err(|e| format!("the mail thread failed: {e}"))?
}

#[cfg(test)]
mod tests {
    use super::*;

    fn retry(backoff: Backoff, jitter: f64) -> RetryPolicy {
        RetryPolicy {
            attempts: 5,
            backoff,
            delay_ms: 100,
            max_delay_ms: 350,
            jitter,
            on: default_retry_on(),
            exit_codes: vec![],
        }
    }

    #[test]
    fn backoff_grows_to_its_cap_and_jitter_only_shortens() {
        let exp = retry(Backoff::Exponential, 0.0);
        let waits: Vec<u128> = (1..=4).map(|n| exp.delay(n).as_millis()).collect();
        assert_eq!(waits, vec![100, 200, 350, 350]);
        let fixed = retry(Backoff::Fixed, 0.0);
        assert_eq!(fixed.delay(3).as_millis(), 100);
        let jittered = retry(Backoff::Exponential, 0.5);
        for _ in 0..50 {
            let d = jittered.delay(2).as_millis();
            assert!((100..=200).contains(&d), "{d}");
        }
    }

    #[test]
    fn exit_codes_narrow_which_failures_retry() {
        let mut r = retry(Backoff::Fixed, 0.0);
        r.exit_codes = vec![3];
        assert!(r.retries(JobStatus::Failed, Some(3)));
        assert!(!r.retries(JobStatus::Failed, Some(1)));
        assert!(r.retries(JobStatus::Interrupted, None));
        assert!(!r.retries(JobStatus::Halted, None));
        r.on = vec![RetryOn::Failed];
        assert!(!r.retries(JobStatus::Interrupted, None));
    }

    #[test]
    fn cycles_are_found_with_their_path() {
        let mut edges = BTreeMap::new();
        edges.insert("a".to_string(), vec!["b".to_string()]);
        edges.insert("b".to_string(), vec!["c".to_string(), "d".to_string()]);
        edges.insert("d".to_string(), vec!["a".to_string()]);
        assert_eq!(
            find_cycle(&edges, "a"),
            Some(vec!["a".into(), "b".into(), "d".into(), "a".into()])
        );
        edges.insert("d".to_string(), vec![]);
        assert_eq!(find_cycle(&edges, "a"), None);
    }
}
