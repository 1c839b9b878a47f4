//! The stored form of a job's log lines: numbered from the job's last stored line, each cut
//! to [`MAX_LINE_BYTES`], and at most the `job-log-max-lines` setting of them. One rule for
//! the service's runner and for the jobs a CLI command runs itself (`aft run`, `aft cp`).

use std::sync::atomic::{AtomicI64, Ordering};

use aft_engine::LogLevel;
use aft_store::{LogLine, now_text};

/// Longest log line kept, in bytes; longer ones are cut at a character boundary.
pub const MAX_LINE_BYTES: usize = 64 * 1024;

/// Numbers the log lines of one job and applies the line cap: past the cap one line says
/// so and the rest is dropped, so a script logging in a loop fills neither the memory nor
/// the database.
#[derive(Debug)]
pub struct LineNumbers {
    counter: AtomicI64,
    after_line: i64,
    cap: i64,
}

impl LineNumbers {
    /// Lines of a job whose log holds `after_line` lines already (0 for a new job), keeping
    /// at most `max_lines` more.
    pub fn new(after_line: i64, max_lines: u64) -> LineNumbers {
        LineNumbers {
            counter: AtomicI64::new(after_line),
            after_line,
            cap: after_line.saturating_add(i64::try_from(max_lines).unwrap_or(i64::MAX)),
        }
    }

    /// The next line as stored, or `None` once the cap was passed.
    pub fn next(&self, level: LogLevel, message: &str) -> Option<LogLine> {
        let n = self.counter.fetch_add(1, Ordering::SeqCst) + 1;
        let (level, message) = match n.cmp(&(self.cap.saturating_add(1))) {
            std::cmp::Ordering::Less => (level, clip(message)),
            std::cmp::Ordering::Equal => (
                LogLevel::Warn,
                format!(
                    "log truncated: this job wrote more than {} lines (the setting job-log-max-lines); the rest is not kept",
                    self.cap - self.after_line
                ),
            ),
            std::cmp::Ordering::Greater => return None,
        };
        Some(LogLine {
            line: n,
            at: now_text(),
            level: level_name(level).to_string(),
            message,
        })
    }
}

/// `message`, cut to [`MAX_LINE_BYTES`] with a note of how much was left out.
pub fn clip(message: &str) -> String {
    if message.len() <= MAX_LINE_BYTES {
        return message.to_string();
    }
    let mut end = MAX_LINE_BYTES;
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    format!(
        "{}… ({} more bytes not kept)",
        &message[..end],
        message.len() - end
    )
}

/// A level as the store names it (`debug`, `info`, `warn`, `error`).
pub fn level_name(level: LogLevel) -> &'static str {
    match level {
        LogLevel::Debug => "debug",
        LogLevel::Info => "info",
        LogLevel::Warn => "warn",
        LogLevel::Error => "error",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_past_the_cap_become_one_note_and_numbering_continues_a_stored_log() {
        let numbers = LineNumbers::new(5, 2);
        let lines: Vec<LogLine> = (0..6)
            .filter_map(|i| numbers.next(LogLevel::Info, &format!("l{i}")))
            .collect();
        let numbered: Vec<i64> = lines.iter().map(|l| l.line).collect();
        assert_eq!(numbered, [6, 7, 8]);
        assert_eq!(lines[1].message, "l1");
        assert_eq!(lines[2].level, "warn");
        assert!(
            lines[2]
                .message
                .starts_with("log truncated: this job wrote more than 2 lines"),
            "{}",
            lines[2].message
        );
    }

    #[test]
    fn a_long_line_is_cut_at_a_character_boundary() {
        let long = "é".repeat(MAX_LINE_BYTES);
        let cut = clip(&long);
        assert!(cut.len() < long.len());
        assert!(cut.ends_with(&format!(
            "({} more bytes not kept)",
            long.len() - MAX_LINE_BYTES
        )));
        assert_eq!(clip("short"), "short");
    }
}
