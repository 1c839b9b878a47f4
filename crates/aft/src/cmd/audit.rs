//! `aft audit list|export|verify|prune`: read, export and check the audit trail.
//!
//! Commands that write the store record their changes through [`super::with_store`]
//! (`local` as the actor), so nothing here appends except `prune`'s checkpoint record.

use std::io::Write;
use std::process::ExitCode;

use aft_store::{AuditCut, AuditFilter, AuditRecord};
use chrono::{DateTime, Utc};
use clap::{Subcommand, ValueEnum};

use super::{UsageError, print_json, print_table, show_time, with_store};
use crate::global::GlobalArgs;

// Read and check the audit trail of every change.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    command: AuditCommand,
}

/// Which records (every filter given must hold).
#[derive(clap::Args, Debug, Clone, Default)]
struct Filters {
    /// Only this actor: an admin, an API key's name, or `local` (any case)
    #[arg(long)]
    actor: Option<String>,
    /// Only this kind: script, secret, vfs, apikey, schedule, watcher, setting, admin,
    /// session, job, audit
    #[arg(long)]
    kind: Option<String>,
    /// Only actions starting with this (`script.` or `session.failed`)
    #[arg(long)]
    action: Option<String>,
    /// Only this thing (a name or an id)
    #[arg(long)]
    target: Option<String>,
    /// Only records at or after this time (RFC 3339, e.g. 2026-01-31T00:00:00Z)
    #[arg(long, value_parser = parse_time)]
    since: Option<DateTime<Utc>>,
    /// Only records before this time (RFC 3339)
    #[arg(long, value_parser = parse_time)]
    until: Option<DateTime<Utc>>,
}

fn parse_time(text: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| format!("not an RFC 3339 time ({e}); e.g. 2026-01-31T00:00:00Z"))
}

impl Filters {
    fn filter(&self) -> AuditFilter {
        AuditFilter {
            actor: self.actor.clone(),
            kind: self.kind.clone(),
            action: self.action.clone(),
            target: self.target.clone(),
            since: self.since,
            until: self.until,
            ..AuditFilter::default()
        }
    }
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Format {
    /// One JSON object per line
    Jsonl,
    /// Comma-separated values with a header line
    Csv,
}

#[derive(Subcommand, Debug)]
enum AuditCommand {
    /// List records, newest first
    List {
        #[command(flatten)]
        filters: Filters,
        /// At most this many
        #[arg(long, default_value_t = 50)]
        limit: i64,
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// Write records in chain order to standard output (or --output FILE)
    Export {
        #[command(flatten)]
        filters: Filters,
        /// jsonl or csv
        #[arg(long, value_enum, default_value = "jsonl")]
        format: Format,
        /// Write to this file instead of standard output
        #[arg(long, value_name = "FILE")]
        output: Option<std::path::PathBuf>,
    },
    /// Check the chain: exit 1 and name each record that was edited or deleted
    Verify {
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// Remove records older than DAYS days, or all but the newest N, now (the service does
    /// it by the settings audit-retention-days and audit-retention-max-records); a
    /// checkpoint record keeps the chain verifiable
    Prune {
        /// Keep the records of the last DAYS days
        #[arg(
            long,
            value_name = "DAYS",
            required_unless_present = "keep",
            conflicts_with = "keep"
        )]
        older_than_days: Option<u32>,
        /// Keep the newest N records, the checkpoint record included
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
        keep: Option<u64>,
    },
}

/// Run `aft audit ...`.
pub fn execute(global: &GlobalArgs, args: Args) -> ExitCode {
    with_store(global, |store| async move {
        match args.command {
            AuditCommand::List {
                filters,
                limit,
                json,
            } => {
                if limit < 1 {
                    return Err(UsageError("--limit must be at least 1".into()).into());
                }
                let filter = AuditFilter {
                    limit: Some(limit),
                    newest_first: true,
                    ..filters.filter()
                };
                let records = store.list_audit(&filter).await?;
                if json {
                    print_json(&records)?;
                } else {
                    let rows: Vec<Vec<String>> = records
                        .iter()
                        .map(|r| {
                            vec![
                                r.seq.to_string(),
                                show_time(&r.at),
                                r.actor.clone(),
                                r.address.clone(),
                                r.action.clone(),
                                r.target.clone(),
                            ]
                        })
                        .collect();
                    print_table(
                        &["SEQ", "AT", "ACTOR", "ADDRESS", "ACTION", "TARGET"],
                        &rows,
                    );
                }
                Ok(())
            }
            AuditCommand::Export {
                filters,
                format,
                output,
            } => {
                let mut out: Box<dyn Write> = match &output {
                    Some(path) => Box::new(std::io::BufWriter::new(
                        std::fs::File::create(path)
                            .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?,
                    )),
                    None => Box::new(std::io::BufWriter::new(crate::global::Output)),
                };
                export(&store, &filters.filter(), format, &mut out).await?;
                out.flush()?;
                Ok(())
            }
            AuditCommand::Verify { json } => {
                let report = store.verify_audit().await?;
                if json {
                    print_json(&report)?;
                } else if report.problems.is_empty() {
                    outln!(
                        "audit trail intact: {} records, head {} {}",
                        report.records,
                        report.head_seq,
                        report.head_hash
                    );
                } else {
                    for p in &report.problems {
                        outln!("record {}: {}", p.seq, p.problem);
                    }
                }
                if report.problems.is_empty() {
                    Ok(())
                } else {
                    Err(anyhow::anyhow!(
                        "the audit trail was tampered with: {} problem(s), first at record {}",
                        report.problems.len(),
                        report.problems[0].seq
                    ))
                }
            }
            AuditCommand::Prune {
                older_than_days,
                keep,
            } => {
                let by = aft_server::audit::local_entry(String::new(), "audit", "", "audit prune");
                match (older_than_days, keep) {
                    (Some(days), _) => {
                        let cutoff = Utc::now() - chrono::Duration::days(i64::from(days));
                        let removed = store.prune_audit(AuditCut::OlderThan(cutoff), &by).await?;
                        outln!("{removed} audit records older than {days} days removed");
                    }
                    (None, Some(keep)) => {
                        let removed = store.prune_audit(AuditCut::BeyondNewest(keep), &by).await?;
                        outln!("{removed} audit records removed, the newest {keep} kept");
                    }
                    (None, None) => {
                        return Err(UsageError("give --older-than-days or --keep".into()).into());
                    }
                }
                Ok(())
            }
        }
    })
}

/// Write every record matching `filter` in chain order, a page at a time.
async fn export(
    store: &aft_store::Store,
    filter: &AuditFilter,
    format: Format,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let mut after = None;
    loop {
        let page = store
            .list_audit(&AuditFilter {
                after_seq: after,
                limit: Some(1000),
                newest_first: false,
                ..filter.clone()
            })
            .await?;
        match format {
            Format::Csv => {
                let mut w = csv::Writer::from_writer(Vec::new());
                if after.is_none() {
                    w.write_record(CSV_COLUMNS)?;
                }
                for r in &page {
                    w.write_record(csv_row(r))?;
                }
                out.write_all(&w.into_inner().map_err(|e| anyhow::anyhow!("{e}"))?)?;
            }
            Format::Jsonl => {
                for r in &page {
                    serde_json::to_writer(&mut *out, r)?;
                    out.write_all(b"\n")?;
                }
            }
        }
        let Some(last) = page.last() else { break };
        after = Some(last.seq);
    }
    Ok(())
}

const CSV_COLUMNS: [&str; 13] = [
    "seq",
    "at",
    "actor",
    "actorKind",
    "address",
    "action",
    "kind",
    "target",
    "before",
    "after",
    "detail",
    "prevHash",
    "hash",
];

fn csv_row(r: &AuditRecord) -> [String; 13] {
    let json =
        |v: &Option<serde_json::Value>| v.as_ref().map(|v| v.to_string()).unwrap_or_default();
    [
        r.seq.to_string(),
        r.at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        r.actor.clone(),
        r.actor_kind.clone(),
        r.address.clone(),
        r.action.clone(),
        r.kind.clone(),
        r.target.clone(),
        json(&r.before),
        json(&r.after),
        json(&r.detail),
        r.prev_hash.clone(),
        r.hash.clone(),
    ]
}

/// The subcommand words of this process (`admin create`): what a `local` record names as
/// its command. Option values are left out (a database URL may hold a password).
pub fn command_words() -> String {
    let mut words = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if arg == "--data" || arg == "--database" {
            args.next();
            continue;
        }
        if arg.starts_with('-') {
            continue;
        }
        words.push(arg);
        if words.len() == 2 {
            break;
        }
    }
    words.join(" ")
}
