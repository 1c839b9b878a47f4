//! What went wrong in a script, with where: the message, `file:line:col` and the JS stack.

use rquickjs::{Ctx, Value};

/// A script error (a syntax error or an uncaught throw), located in the script's source.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message} at {file}:{line}:{column}")]
pub struct ScriptError {
    /// The error as JavaScript shows it, e.g. `TypeError: not a function`.
    pub message: String,
    /// The script's name (the file name given in [`crate::JobSpec::name`]).
    pub file: String,
    /// 1-based line of the innermost frame in the script, 0 when unknown.
    pub line: u32,
    /// 1-based column of that frame, 0 when unknown.
    pub column: u32,
    /// The JavaScript stack, one `at ...` frame a line (empty for a thrown non-Error).
    pub stack: String,
}

impl ScriptError {
    /// The error as the job log shows it: message and position, then the stack.
    pub fn to_log_text(&self) -> String {
        let mut text = self.to_string();
        let stack = self.stack.trim_end();
        if !stack.is_empty() {
            text.push('\n');
            text.push_str(stack);
        }
        text
    }

    /// Build from a caught JavaScript exception value.
    pub(crate) fn from_caught<'js>(ctx: &Ctx<'js>, file: &str, value: Value<'js>) -> Self {
        let (message, stack) = describe_exception(ctx, &value);
        let (line, column) = position_in_stack(&stack, file).unwrap_or((0, 0));
        ScriptError {
            message,
            file: file.to_string(),
            line,
            column,
            stack,
        }
    }
}

/// The `Name: message` text and the stack of a thrown value.
pub(crate) fn describe_exception<'js>(ctx: &Ctx<'js>, value: &Value<'js>) -> (String, String) {
    if let Some(obj) = value.as_object()
        && obj.is_error()
    {
        let name: Option<String> = obj.get("name").ok();
        let message: Option<String> = obj.get("message").ok();
        let stack: Option<String> = obj.get("stack").ok();
        let text = match (name.filter(|n| !n.is_empty()), message) {
            (Some(n), Some(m)) if !m.is_empty() => format!("{n}: {m}"),
            (Some(n), _) => n,
            (None, Some(m)) => m,
            (None, None) => "Error".to_string(),
        };
        return (text, without_host_frames(&stack.unwrap_or_default()));
    }
    let text = crate::api::job::display_value(ctx, value.clone());
    (format!("uncaught exception: {text}"), String::new())
}

/// The name QuickJS gives code evaluated without a file name: the host API's JavaScript
/// preludes (the `GetVFS`, `Log`, ... wrappers), never a user's script, which runs under its
/// own name.
const HOST_PRELUDE: &str = "eval_script";

/// The stack without the frames of the host preludes: `at GetVFS (eval_script:117:38)` says
/// nothing to the script's author and leaks the host's internals; the frame of the script's
/// own line that called it stays.
pub(crate) fn without_host_frames(stack: &str) -> String {
    let host = format!("{HOST_PRELUDE}:");
    stack
        .lines()
        .filter(|frame| !frame.contains(&host))
        .map(|frame| format!("{frame}\n"))
        .collect()
}

/// Line and column of the first stack frame that lies in `file` (QuickJS writes frames as
/// `    at fn (file:line:col)` or, for syntax errors, `    at file:line:col`).
pub(crate) fn position_in_stack(stack: &str, file: &str) -> Option<(u32, u32)> {
    let needle = format!("{file}:");
    stack.lines().find_map(|frame| {
        let start = frame.find(&needle)? + needle.len();
        let rest = &frame[start..];
        let (line, rest) = split_number(rest)?;
        let rest = rest.strip_prefix(':')?;
        let (column, _) = split_number(rest)?;
        Some((line, column))
    })
}

fn split_number(text: &str) -> Option<(u32, &str)> {
    let end = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let number = text[..end].parse().ok()?;
    Some((number, &text[end..]))
}

#[cfg(test)]
mod tests {
    use super::{position_in_stack, without_host_frames};

    #[test]
    fn host_prelude_frames_are_left_out_and_the_scripts_stay() {
        let stack = "    at GetVFS (eval_script:117:38)\n    at go (job.syncjs:2:10)\n    at <eval> (job.syncjs:5:1)\n";
        assert_eq!(
            without_host_frames(stack),
            "    at go (job.syncjs:2:10)\n    at <eval> (job.syncjs:5:1)\n"
        );
        assert_eq!(without_host_frames(""), "");
    }

    #[test]
    fn position_comes_from_the_first_frame_in_the_script() {
        let stack =
            "    at boom (native)\n    at f (job.syncjs:3:11)\n    at <eval> (job.syncjs:5:1)\n";
        assert_eq!(position_in_stack(stack, "job.syncjs"), Some((3, 11)));
        assert_eq!(
            position_in_stack("    at job.syncjs:2:7\n", "job.syncjs"),
            Some((2, 7))
        );
        assert_eq!(
            position_in_stack("    at other.js:2:7\n", "job.syncjs"),
            None
        );
    }
}
