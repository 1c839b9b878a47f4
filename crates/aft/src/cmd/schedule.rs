//! `aft schedule add|update|list|next|history|enable|disable|delete`: cron schedules.

use std::process::ExitCode;

use aft_store::{MisfirePolicy, NewSchedule, OverlapPolicy, ScheduleUpdate};
use clap::Subcommand;

use super::{UsageError, print_json, print_table, show_time, with_store};
use crate::global::GlobalArgs;

// Manage schedules: cron expressions that queue stored scripts.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    command: ScheduleCommand,
}

#[derive(Subcommand, Debug)]
enum ScheduleCommand {
    /// Create schedule NAME that queues script S at each fire time of EXPR
    Add {
        /// Schedule name (unique, case-insensitive)
        name: String,
        /// The stored script to queue
        #[arg(long, short = 's')]
        script: String,
        /// Cron expression: 5 fields, 6 with seconds first, or @daily, @hourly, ...
        #[arg(long)]
        cron: String,
        /// IANA time zone the expression is read in
        #[arg(long, default_value = "UTC")]
        tz: String,
        /// Job parameters as a JSON object
        #[arg(long, default_value = "{}")]
        params: String,
        /// While the previous job still runs: skip the slot, queue it, or allow both
        #[arg(long, default_value = "skip", value_parser = ["skip", "queue", "allow"])]
        overlap: String,
        /// Slots missed while no service ran: skip them, or run the newest once
        #[arg(long, default_value = "skip", value_parser = ["skip", "run-once"])]
        misfire: String,
        /// Create it disabled
        #[arg(long)]
        disabled: bool,
    },
    /// Change schedule NAME; options left out keep their value. A new --cron or --tz starts
    /// from its first fire time after the edit
    Update {
        /// Schedule name or id
        name: String,
        /// The stored script to queue
        #[arg(long, short = 's')]
        script: Option<String>,
        /// Cron expression: 5 fields, 6 with seconds first, or @daily, @hourly, ...
        #[arg(long)]
        cron: Option<String>,
        /// IANA time zone the expression is read in
        #[arg(long)]
        tz: Option<String>,
        /// Job parameters as a JSON object (replaces the old ones)
        #[arg(long)]
        params: Option<String>,
        /// While the previous job still runs: skip the slot, queue it, or allow both
        #[arg(long, value_parser = ["skip", "queue", "allow"])]
        overlap: Option<String>,
        /// Slots missed while no service ran: skip them, or run the newest once
        #[arg(long, value_parser = ["skip", "run-once"])]
        misfire: Option<String>,
        /// Let it fire (from now on)
        #[arg(long, conflicts_with = "disable")]
        enable: bool,
        /// Stop it from firing
        #[arg(long)]
        disable: bool,
    },
    /// List schedules with their next fire time
    List {
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// Show the next fire times of schedule NAME, in its time zone
    Next {
        /// Schedule name or id
        name: String,
        /// How many
        #[arg(short = 'n', default_value_t = 10)]
        count: usize,
        /// Start from this RFC 3339 time instead of now (e.g. to preview a DST change)
        #[arg(long, value_name = "TIME")]
        from: Option<String>,
        /// Print JSON: [{"at": UTC time, "local": time in the schedule's zone}]
        #[arg(long)]
        json: bool,
    },
    /// Show the decided slots of schedule NAME, newest first
    History {
        /// Schedule name or id
        name: String,
        /// How many
        #[arg(short = 'n', default_value_t = 20)]
        count: i64,
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// Let schedule NAME fire again (from now on)
    Enable {
        /// Schedule name or id
        name: String,
    },
    /// Stop schedule NAME from firing
    Disable {
        /// Schedule name or id
        name: String,
    },
    /// Delete schedule NAME and its slot history
    Delete {
        /// Schedule name or id
        name: String,
    },
}

/// Run `aft schedule ...`.
pub fn execute(global: &GlobalArgs, args: Args) -> ExitCode {
    with_store(global, |store| async move {
        match args.command {
            ScheduleCommand::Add {
                name,
                script,
                cron,
                tz,
                params,
                overlap,
                misfire,
                disabled,
            } => {
                let params = super::params_arg(&params)?;
                let schedule = store
                    .create_schedule(NewSchedule {
                        name,
                        script_name: script,
                        cron,
                        time_zone: tz,
                        params,
                        overlap: OverlapPolicy::parse(&overlap)?,
                        misfire: MisfirePolicy::parse(&misfire)?,
                        enabled: !disabled,
                    })
                    .await?;
                outln!("schedule {} created ({})", schedule.name, schedule.id);
            }
            ScheduleCommand::Update {
                name,
                script,
                cron,
                tz,
                params,
                overlap,
                misfire,
                enable,
                disable,
            } => {
                let params = params.as_deref().map(super::params_arg).transpose()?;
                let update = ScheduleUpdate {
                    script_name: script,
                    cron,
                    time_zone: tz,
                    params,
                    overlap: overlap.as_deref().map(OverlapPolicy::parse).transpose()?,
                    misfire: misfire.as_deref().map(MisfirePolicy::parse).transpose()?,
                    enabled: match (enable, disable) {
                        (true, _) => Some(true),
                        (_, true) => Some(false),
                        _ => None,
                    },
                };
                // Slots of the old expression this edit decides are recorded as decided by
                // the CLI (their jobs run on whichever node claims them).
                let s = store.update_schedule(&name, update, "cli").await?;
                outln!(
                    "schedule {} updated: {} {} ({}), {}",
                    s.name,
                    s.cron,
                    s.time_zone,
                    s.script_name,
                    if s.enabled { "enabled" } else { "disabled" }
                );
            }
            ScheduleCommand::List { json } => {
                let schedules = store.list_schedules().await?;
                if json {
                    return print_json(&schedules);
                }
                let now = chrono::Utc::now();
                let rows: Vec<Vec<String>> = schedules
                    .iter()
                    .map(|s| {
                        let next = match (s.enabled, s.times()) {
                            (false, _) => "disabled".to_string(),
                            (true, Ok(times)) => times
                                .next_after(now)
                                .map(|t| show_time(&t))
                                .unwrap_or_else(|| "never".into()),
                            (true, Err(e)) => format!("invalid: {e}"),
                        };
                        vec![
                            s.name.clone(),
                            s.script_name.clone(),
                            s.cron.clone(),
                            s.time_zone.clone(),
                            s.overlap.as_str().to_string(),
                            s.misfire.as_str().to_string(),
                            next,
                        ]
                    })
                    .collect();
                print_table(
                    &[
                        "NAME",
                        "SCRIPT",
                        "CRON",
                        "TZ",
                        "OVERLAP",
                        "MISFIRE",
                        "NEXT (UTC)",
                    ],
                    &rows,
                );
            }
            ScheduleCommand::Next {
                name,
                count,
                from,
                json,
            } => {
                let from = match from {
                    Some(text) => chrono::DateTime::parse_from_rfc3339(&text)
                        .map_err(|e| {
                            UsageError(format!("--from {text:?} is not an RFC 3339 time: {e}"))
                        })?
                        .with_timezone(&chrono::Utc),
                    None => chrono::Utc::now(),
                };
                if count == 0 || count > 1000 {
                    return Err(UsageError("-n must be between 1 and 1000".into()).into());
                }
                let schedule = store.find_schedule(&name).await?;
                let times = schedule.times()?;
                if json {
                    let fires: Vec<serde_json::Value> = times
                        .next_n(from, count)
                        .into_iter()
                        .map(|t| {
                            serde_json::json!({
                                "at": t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                                "local": t.with_timezone(&times.time_zone()).to_rfc3339(),
                            })
                        })
                        .collect();
                    print_json(&fires)?;
                    return Ok(());
                }
                for t in times.next_n(from, count) {
                    outln!(
                        "{}  ({})",
                        t.with_timezone(&times.time_zone())
                            .format("%Y-%m-%d %H:%M:%S %:z"),
                        show_time(&t)
                    );
                }
            }
            ScheduleCommand::History { name, count, json } => {
                let schedule = store.find_schedule(&name).await?;
                let slots = store.list_slots(&schedule.id, count).await?;
                if json {
                    return print_json(&slots);
                }
                let rows: Vec<Vec<String>> = slots
                    .iter()
                    .map(|s| {
                        vec![
                            show_time(&s.slot_time),
                            s.status.as_str().to_string(),
                            s.job_id.clone().unwrap_or_default(),
                            s.detail.clone().unwrap_or_default(),
                        ]
                    })
                    .collect();
                print_table(&["SLOT", "STATUS", "JOB", "DETAIL"], &rows);
            }
            ScheduleCommand::Enable { name } => {
                let s = store.set_schedule_enabled(&name, true).await?;
                outln!("schedule {} enabled", s.name);
            }
            ScheduleCommand::Disable { name } => {
                let s = store.set_schedule_enabled(&name, false).await?;
                outln!("schedule {} disabled", s.name);
            }
            ScheduleCommand::Delete { name } => {
                store.delete_schedule(&name).await?;
                outln!("schedule {name} deleted");
            }
        }
        Ok(())
    })
}
