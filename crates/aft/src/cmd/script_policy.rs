//! `aft script policy|retry|notify|chain`: a stored script's retry policy, notifications
//! and chains (the same checks as `PUT /v1/scripts/{id}/policy`).

use aft_server::followups::{
    Backoff, ChainPolicy, NotifyEvent, NotifyPolicy, RetryOn, RetryPolicy, ScriptPolicy, Webhook,
    load_policy, save_policy,
};
use aft_store::Store;
use clap::Subcommand;

use super::{UsageError, print_json};

#[derive(Subcommand, Debug)]
pub enum PolicyCommand {
    /// Show script NAME's retry policy, notifications and chains
    Policy {
        /// Script name or id
        name: String,
        /// Print JSON (the body `PUT /v1/scripts/{id}/policy` takes)
        #[arg(long)]
        json: bool,
    },
    /// Set how script NAME's failed jobs run again (each attempt is a job of its own)
    Retry {
        /// Script name or id
        name: String,
        /// Runs in all, the first one included (1 = no retry)
        #[arg(long, required_unless_present = "off")]
        attempts: Option<u32>,
        /// How the wait grows: exponential (doubles) or fixed
        #[arg(long, value_parser = ["exponential", "fixed"], default_value = "exponential")]
        backoff: String,
        /// Wait before the first retry: 500ms, 10s, 5m, 1h
        #[arg(long, default_value = "1s", value_parser = parse_millis)]
        delay: u64,
        /// Longest wait
        #[arg(long, default_value = "1h", value_parser = parse_millis)]
        max_delay: u64,
        /// 0 to 1: up to this share of each wait is taken off at random
        #[arg(long, default_value_t = 0.0)]
        jitter: f64,
        /// Outcomes that retry, comma-separated: failed, interrupted
        #[arg(long, value_delimiter = ',', default_value = "failed,interrupted", value_parser = ["failed", "interrupted"])]
        on: Vec<String>,
        /// Only failures with these exit codes retry (comma-separated; default any)
        #[arg(long, value_delimiter = ',')]
        exit_codes: Vec<i64>,
        /// Remove the retry policy
        #[arg(long, conflicts_with = "attempts")]
        off: bool,
    },
    /// Set who hears how script NAME's jobs end
    Notify {
        /// Script name or id
        name: String,
        /// Events, comma-separated: failure, success, recovery (first success after a failure)
        #[arg(long, value_delimiter = ',', default_value = "failure,recovery", value_parser = ["failure", "success", "recovery"])]
        on: Vec<String>,
        /// A URL to POST aft's JSON to (repeat for more)
        #[arg(long)]
        webhook: Vec<String>,
        /// A URL to POST Slack's {"text": ...} to (repeat for more)
        #[arg(long)]
        slack_webhook: Vec<String>,
        /// An address to mail through the smtp-* settings (repeat for more)
        #[arg(long)]
        email: Vec<String>,
        /// Remove the script's notifications (the global ones still apply)
        #[arg(long, conflicts_with_all = ["webhook", "slack_webhook", "email"])]
        off: bool,
    },
    /// Set which scripts start when a job of script NAME ends (with its params and Result)
    Chain {
        /// Script name or id
        name: String,
        /// Start this script when the job succeeds (repeat for more)
        #[arg(long)]
        on_success: Vec<String>,
        /// Start this script when the job fails, after its last retry (repeat for more)
        #[arg(long)]
        on_failure: Vec<String>,
        /// Remove the chains
        #[arg(long, conflicts_with_all = ["on_success", "on_failure"])]
        off: bool,
    },
}

/// `500ms`, `10s`, `5m`, `1h` or a number of milliseconds.
fn parse_millis(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let digits = text.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let unit = &text[digits.len()..];
    let n: f64 = digits
        .parse()
        .map_err(|_| format!("{text:?} is not a duration like 500ms, 10s, 5m or 1h"))?;
    let factor = match unit {
        "" | "ms" => 1.0,
        "s" => 1000.0,
        "m" => 60_000.0,
        "h" => 3_600_000.0,
        _ => return Err(format!("{text:?}: the unit must be ms, s, m or h")),
    };
    if !(n.is_finite() && n >= 0.0) {
        return Err(format!("{text:?} is not a duration"));
    }
    Ok((n * factor) as u64)
}

/// How one command changes a script's policy.
type PolicyChange = Box<dyn FnOnce(&mut ScriptPolicy)>;

/// Run one of the policy commands.
pub async fn run(store: &Store, command: PolicyCommand) -> anyhow::Result<()> {
    let (name, change): (String, PolicyChange) = match command {
        PolicyCommand::Policy { name, json } => {
            let script = store.find_script(&name).await?;
            let policy = load_policy(store, &script.id).await?;
            if json {
                return print_json(&policy);
            }
            print_policy(&script.name, &policy);
            return Ok(());
        }
        PolicyCommand::Retry {
            name,
            attempts,
            backoff,
            delay,
            max_delay,
            jitter,
            on,
            exit_codes,
            off,
        } => {
            let retry = match (off, attempts) {
                (true, _) => None,
                (false, Some(attempts)) => Some(RetryPolicy {
                    attempts,
                    backoff: if backoff == "fixed" {
                        Backoff::Fixed
                    } else {
                        Backoff::Exponential
                    },
                    delay_ms: delay,
                    max_delay_ms: max_delay,
                    jitter,
                    on: on
                        .iter()
                        .map(|o| {
                            if o == "failed" {
                                RetryOn::Failed
                            } else {
                                RetryOn::Interrupted
                            }
                        })
                        .collect(),
                    exit_codes,
                }),
                (false, None) => {
                    return Err(UsageError("give --attempts N, or --off".into()).into());
                }
            };
            (name, Box::new(move |p| p.retry = retry))
        }
        PolicyCommand::Notify {
            name,
            on,
            webhook,
            slack_webhook,
            email,
            off,
        } => {
            if !off && webhook.is_empty() && slack_webhook.is_empty() && email.is_empty() {
                return Err(UsageError(
                    "give --webhook URL, --slack-webhook URL or --email ADDRESS (or --off)".into(),
                )
                .into());
            }
            let notify = (!off).then(|| NotifyPolicy {
                on: on
                    .iter()
                    .map(|e| match e.as_str() {
                        "success" => NotifyEvent::Success,
                        "recovery" => NotifyEvent::Recovery,
                        _ => NotifyEvent::Failure,
                    })
                    .collect(),
                webhooks: webhook
                    .into_iter()
                    .map(|url| Webhook { url, slack: false })
                    .chain(
                        slack_webhook
                            .into_iter()
                            .map(|url| Webhook { url, slack: true }),
                    )
                    .collect(),
                emails: email,
            });
            (name, Box::new(move |p| p.notify = notify))
        }
        PolicyCommand::Chain {
            name,
            on_success,
            on_failure,
            off,
        } => {
            if !off && on_success.is_empty() && on_failure.is_empty() {
                return Err(UsageError(
                    "give --on-success SCRIPT or --on-failure SCRIPT (or --off)".into(),
                )
                .into());
            }
            let chain = (!off).then_some(ChainPolicy {
                on_success,
                on_failure,
            });
            (name, Box::new(move |p| p.chain = chain))
        }
    };
    let script = store.find_script(&name).await?;
    let mut policy = load_policy(store, &script.id).await?;
    change(&mut policy);
    let (script, policy) = save_policy(store, &script.id, policy).await?;
    print_policy(&script.name, &policy);
    Ok(())
}

fn print_policy(name: &str, policy: &ScriptPolicy) {
    outln!("script:  {name}");
    match &policy.retry {
        Some(r) => outln!(
            "retry:   {} attempts in all, {} backoff from {} ms (at most {} ms, jitter {}), on {}{}",
            r.attempts,
            match r.backoff {
                Backoff::Fixed => "fixed",
                Backoff::Exponential => "exponential",
            },
            r.delay_ms,
            r.max_delay_ms,
            r.jitter,
            r.on.iter()
                .map(|o| match o {
                    RetryOn::Failed => "failed",
                    RetryOn::Interrupted => "interrupted",
                })
                .collect::<Vec<_>>()
                .join(","),
            if r.exit_codes.is_empty() {
                String::new()
            } else {
                format!(
                    " with exit codes {}",
                    r.exit_codes
                        .iter()
                        .map(i64::to_string)
                        .collect::<Vec<_>>()
                        .join(",")
                )
            }
        ),
        None => outln!("retry:   none"),
    }
    match &policy.notify {
        Some(n) => {
            let events: Vec<String> =
                n.on.iter()
                    .map(|e| serde_json::to_value(e).unwrap_or_default())
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect();
            let mut targets: Vec<String> = n
                .webhooks
                .iter()
                .map(|w| {
                    if w.slack {
                        format!("slack {}", w.url)
                    } else {
                        format!("webhook {}", w.url)
                    }
                })
                .collect();
            targets.extend(n.emails.iter().map(|e| format!("email {e}")));
            outln!("notify:  on {} to {}", events.join(","), targets.join(", "));
        }
        None => outln!("notify:  only the global settings (notify-*)"),
    }
    match &policy.chain {
        Some(c) => outln!(
            "chain:   on success {}; on failure {}",
            list_or_none(&c.on_success),
            list_or_none(&c.on_failure)
        ),
        None => outln!("chain:   none"),
    }
}

fn list_or_none(list: &[String]) -> String {
    if list.is_empty() {
        "none".into()
    } else {
        list.join(", ")
    }
}
