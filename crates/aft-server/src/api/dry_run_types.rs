//! The dry-run plan as the API shows it (`GET /v1/jobs/{id}` → `plan`): the same JSON as
//! `aft_vfs::dry_run::Plan`, typed for the OpenAPI document. A unit test keeps the two in
//! step.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// What one planned effect does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum PlanAction {
    /// A local file would be uploaded.
    Upload,
    /// A remote file would be downloaded.
    Download,
    /// A file would be copied between two remotes (or two local paths).
    Copy,
    /// A file would be written outside a transfer.
    Write,
    /// A transfer would be skipped by its overwrite policy.
    Skip,
    /// A transfer would fail.
    Fail,
    /// A file or folder (with everything in it) would be deleted.
    Delete,
    /// A file or folder would be renamed or moved.
    Rename,
    /// A folder would be made.
    Mkdir,
    /// An existing file's modification time would change.
    Touch,
}

/// One change the dry run would have made.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PlanEffect {
    /// What would happen.
    pub action: PlanAction,
    /// Where, with its backend (`sftp://u@h:22/in/a.csv`).
    pub target: String,
    /// Where the data or the old name comes from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// Bytes that would be written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes: Option<u64>,
    /// The target exists and would be replaced.
    #[serde(default)]
    pub overwrite: bool,
    /// The target is a folder.
    #[serde(default)]
    pub folder: bool,
    /// Why a transfer is skipped or would fail.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The modification time the target would get (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtime: Option<String>,
}

/// A call the dry run did not make.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PlanSkippedCall {
    /// The script call (`RunProgram`, `SendMail`, `HttpCli.POST`, `FsWatcher.Start`, ...).
    pub call: String,
    /// What it would have done.
    pub detail: String,
}

/// Counts of a plan's effects.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PlanSummary {
    /// Files that would be uploaded.
    pub uploaded: u64,
    /// Files that would be downloaded.
    pub downloaded: u64,
    /// Files that would be copied.
    pub copied: u64,
    /// Files that would be written outside transfers.
    pub written: u64,
    /// Of those, files that would replace an existing one.
    pub overwritten: u64,
    /// Transfers skipped by policy.
    pub skipped: u64,
    /// Transfers that would fail.
    pub failed: u64,
    /// Files and folders that would be deleted.
    pub deleted: u64,
    /// Files and folders that would be renamed.
    pub renamed: u64,
    /// Folders that would be made.
    pub made: u64,
    /// Modification times that would change.
    pub touched: u64,
    /// Bytes that would be written.
    pub bytes: u64,
    /// Calls not made.
    pub calls_skipped: u64,
}

/// What a dry run would have done.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Plan {
    /// Changes to files and folders, in the order they were met.
    pub effects: Vec<PlanEffect>,
    /// Calls not made because they act outside the file systems.
    pub skipped_calls: Vec<PlanSkippedCall>,
    /// Counts of the above.
    pub summary: PlanSummary,
}

#[cfg(test)]
mod tests {
    use aft_vfs::dry_run::{Action, Effect, Plan as VfsPlan};

    #[test]
    fn the_api_type_reads_every_field_of_the_engine_plan() {
        let plan = VfsPlan {
            effects: vec![Effect {
                action: Action::Upload,
                target: "sftp://u@h:22/in/a".into(),
                source: Some("file:///a".into()),
                bytes: Some(3),
                overwrite: true,
                folder: true,
                reason: Some("r".into()),
                mtime: Some(chrono::Utc::now()),
            }],
            ..VfsPlan::default()
        };
        let json = serde_json::to_string(&plan).unwrap();
        let typed: super::Plan = serde_json::from_str(&json).unwrap();
        assert_eq!(typed.effects[0].action, super::PlanAction::Upload);
        assert!(typed.effects[0].overwrite);
    }
}
