//! What uses what: schedules and watchers run scripts by name, VFS Library entries name
//! secrets in their `...FromSecret` fields, settings name secrets (`smtp-password-secret`),
//! and scripts open VFS entries and secrets with `GetVFS("name")` / `GetSecret("name")`.
//! Deleting something in use is refused with the list of its users, unless forced; a
//! forced delete disables the schedules and watchers that would otherwise fail.
//!
//! Script references are found by scanning stored script bodies for a call with a literal
//! name; a name built at run time (`GetVFS(Param("target"))`) cannot be seen. Watchers
//! count as users of a VFS entry or secret when their script uses it or when one of their
//! params is its name.

use serde::Serialize;

use crate::util::name_key;
use crate::{Store, StoreError, StoreResult};

/// One thing that uses a script, secret or VFS entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UsedBy {
    /// `schedule`, `watcher`, `vfs`, `script` or `setting`.
    pub kind: String,
    /// Its name (a setting's key).
    pub name: String,
    /// For schedules and watchers: whether it is enabled.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// How it uses it (`runs it`, `PassFromSecret`, `GetVFS("partner")`, ...).
    pub how: String,
}

/// What a delete did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DeleteOutcome {
    /// The name of what was deleted.
    pub deleted: String,
    /// Everything that used it (left broken unless disabled).
    pub used_by: Vec<UsedBy>,
    /// Schedules and watchers the forced delete disabled (`kind/name`).
    pub disabled: Vec<String>,
    /// Watcher runs asked to halt because their watcher was disabled (job ids), so the
    /// caller can raise the halt flag at once on this node.
    #[serde(skip)]
    pub halted_jobs: Vec<String>,
}

/// What deleting the `kind` (`script`, `secret`, `VFS entry`) named `deleted` will report,
/// used by `used_by`; refused (`InUse`) while anything uses it, unless `force`.
fn delete_outcome(
    kind: &str,
    deleted: &str,
    used_by: Vec<UsedBy>,
    force: bool,
) -> StoreResult<DeleteOutcome> {
    if !used_by.is_empty() && !force {
        let users: Vec<String> = used_by
            .iter()
            .map(|u| format!("{} {}", u.kind, u.name))
            .collect();
        return Err(StoreError::InUse {
            message: format!(
                "{kind} {deleted} is used by {}; change those first, or delete anyway with force (which disables the schedules and watchers)",
                users.join(", ")
            ),
            used_by,
        });
    }
    Ok(DeleteOutcome {
        deleted: deleted.to_string(),
        used_by,
        ..DeleteOutcome::default()
    })
}

/// The literal first arguments of every `call(...)` in `source`: `GetVFS("a")`,
/// `GetVFS('b')`, `` GetVFS(`c`) ``. Calls with a computed argument are skipped.
pub fn literal_call_args(source: &str, call: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = source;
    while let Some(at) = rest.find(call) {
        // A longer identifier ending in `call` (`MyGetVFS`) is not the call.
        let before = rest[..at].chars().next_back();
        rest = &rest[at + call.len()..];
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '$') {
            continue;
        }
        let after = rest.trim_start();
        let Some(after) = after.strip_prefix('(') else {
            continue;
        };
        let after = after.trim_start();
        let Some(quote) = after
            .chars()
            .next()
            .filter(|c| matches!(c, '"' | '\'' | '`'))
        else {
            continue;
        };
        let inner = &after[1..];
        if let Some(end) = inner.find(quote) {
            out.push(inner[..end].to_string());
        }
    }
    out
}

impl Store {
    /// Schedules and watchers that run the script with this id or name.
    pub async fn script_used_by(&self, id_or_name: &str) -> StoreResult<Vec<UsedBy>> {
        let script = self.find_script(id_or_name).await?;
        self.script_name_used_by(&script.name).await
    }

    async fn script_name_used_by(&self, name: &str) -> StoreResult<Vec<UsedBy>> {
        let key = name_key(name);
        let mut out = Vec::new();
        for s in self.list_schedules().await? {
            if name_key(&s.script_name) == key {
                out.push(UsedBy {
                    kind: "schedule".into(),
                    name: s.name,
                    enabled: Some(s.enabled),
                    how: "runs it".into(),
                });
            }
        }
        for w in self.list_watcher_jobs().await? {
            if name_key(&w.script_name) == key {
                out.push(UsedBy {
                    kind: "watcher".into(),
                    name: w.name,
                    enabled: Some(w.enabled),
                    how: "runs it".into(),
                });
            }
        }
        Ok(out)
    }

    /// Scripts calling `call("name")` with this name (matched by `same`), and the watchers
    /// running those scripts or naming it in a param.
    async fn scripts_and_watchers_using(
        &self,
        call: &str,
        name: &str,
        same: impl Fn(&str, &str) -> bool,
    ) -> StoreResult<Vec<UsedBy>> {
        let mut out = Vec::new();
        let mut script_keys = Vec::new();
        for s in self.list_scripts().await? {
            if literal_call_args(&s.body, call)
                .iter()
                .any(|arg| same(arg, name))
            {
                script_keys.push(name_key(&s.name));
                out.push(UsedBy {
                    kind: "script".into(),
                    name: s.name,
                    enabled: None,
                    how: format!("{call}({name:?})"),
                });
            }
        }
        for w in self.list_watcher_jobs().await? {
            let how = if script_keys.contains(&name_key(&w.script_name)) {
                format!("runs script {}", w.script_name)
            } else if let Some((param, _)) = w
                .params
                .clone()
                .into_map()
                .into_iter()
                .find(|(_, v)| same(v, name))
            {
                format!("param {param}")
            } else {
                continue;
            };
            out.push(UsedBy {
                kind: "watcher".into(),
                name: w.name,
                enabled: Some(w.enabled),
                how,
            });
        }
        Ok(out)
    }

    /// VFS entries whose `...FromSecret` fields, settings whose `...-secret` keys, and
    /// scripts (and their watchers) whose `GetSecret("...")` name this secret.
    pub async fn secret_used_by(&self, name: &str) -> StoreResult<Vec<UsedBy>> {
        let mut out = Vec::new();
        for e in self.list_vfs_entries().await? {
            for (field, value) in &e.settings {
                if field.ends_with("FromSecret") && value.as_str() == Some(name) {
                    out.push(UsedBy {
                        kind: "vfs".into(),
                        name: e.name.clone(),
                        enabled: None,
                        how: field.clone(),
                    });
                }
            }
        }
        for s in self.list_settings().await? {
            if s.key.ends_with("-secret") && s.value == name {
                out.push(UsedBy {
                    kind: "setting".into(),
                    name: s.key.to_string(),
                    enabled: None,
                    how: "names it".into(),
                });
            }
        }
        // Secret names are case-sensitive.
        out.extend(
            self.scripts_and_watchers_using("GetSecret", name, |a, b| a == b)
                .await?,
        );
        Ok(out)
    }

    /// Scripts calling `GetVFS("name")` with this entry's name, and watchers running them
    /// or naming the entry in a param.
    pub async fn vfs_used_by(&self, id_or_name: &str) -> StoreResult<Vec<UsedBy>> {
        let entry = self.find_vfs_entry(id_or_name).await?;
        self.scripts_and_watchers_using("GetVFS", &entry.name, |a, b| name_key(a) == name_key(b))
            .await
    }

    /// Disable the enabled schedules and watchers of `used_by`, noting them in `outcome`.
    async fn disable_dependants(&self, outcome: &mut DeleteOutcome) -> StoreResult<()> {
        for u in outcome.used_by.clone() {
            if u.enabled != Some(true) {
                continue;
            }
            match u.kind.as_str() {
                "schedule" => {
                    self.set_schedule_enabled(&u.name, false).await?;
                }
                "watcher" => {
                    let (_, halted) = self.set_watcher_enabled(&u.name, false).await?;
                    outcome.halted_jobs.extend(halted);
                }
                _ => continue,
            }
            outcome.disabled.push(format!("{}/{}", u.kind, u.name));
        }
        Ok(())
    }

    /// Delete a script unless something runs it (`InUse`); with `force`, delete it anyway
    /// and disable the schedules and watchers that run it.
    pub async fn delete_script_checked(
        &self,
        id_or_name: &str,
        force: bool,
    ) -> StoreResult<DeleteOutcome> {
        let script = self.find_script(id_or_name).await?;
        let used_by = self.script_name_used_by(&script.name).await?;
        let mut outcome = delete_outcome("script", &script.name, used_by, force)?;
        self.disable_dependants(&mut outcome).await?;
        self.delete_script(&script.id).await?;
        Ok(outcome)
    }

    /// Delete a secret unless something names it (`InUse`); with `force`, delete it anyway
    /// and disable the watchers that use it.
    pub async fn delete_secret_checked(
        &self,
        name: &str,
        force: bool,
    ) -> StoreResult<DeleteOutcome> {
        let used_by = self.secret_used_by(name).await?;
        // Not found beats in use: the list only means something for a secret that exists.
        if !used_by.is_empty() && !self.list_secrets().await?.iter().any(|s| s.name == name) {
            return Err(StoreError::NotFound {
                kind: "secret",
                name: name.to_string(),
            });
        }
        let mut outcome = delete_outcome("secret", name, used_by, force)?;
        // Deleted first: a forced delete of a secret that is gone disables nothing.
        self.delete_secret(name).await?;
        self.disable_dependants(&mut outcome).await?;
        Ok(outcome)
    }

    /// Delete a VFS entry unless a script or watcher uses it (`InUse`); with `force`,
    /// delete it anyway and disable the watchers that use it.
    pub async fn delete_vfs_entry_checked(
        &self,
        id_or_name: &str,
        force: bool,
    ) -> StoreResult<DeleteOutcome> {
        let entry = self.find_vfs_entry(id_or_name).await?;
        let used_by = self.vfs_used_by(&entry.id).await?;
        let mut outcome = delete_outcome("VFS entry", &entry.name, used_by, force)?;
        self.disable_dependants(&mut outcome).await?;
        self.delete_vfs_entry(&entry.id).await?;
        Ok(outcome)
    }
}

#[cfg(test)]
mod tests {
    use super::literal_call_args;
    use crate::{
        JobParams, MisfirePolicy, NewJob, NewSchedule, NewScript, NewWatcherJob, OverlapPolicy,
        ScriptUpdate,
    };

    fn script(name: &str, body: &str) -> NewScript {
        NewScript {
            name: name.into(),
            description: String::new(),
            body: body.into(),
            retry_safe: false,
        }
    }

    crate::both_dialects!(
        versions_and_every_way_of_queuing_records_the_job_version,
        |store| async move {
            let s = store
                .create_script(script("Report", "Log(1);"))
                .await
                .unwrap();
            let body = |b: &str| ScriptUpdate {
                body: Some(b.into()),
                ..ScriptUpdate::default()
            };
            store
                .update_script("report", body("Log(2);"))
                .await
                .unwrap();
            // The same source again is no new version.
            store
                .update_script("report", body("Log(2);"))
                .await
                .unwrap();
            let versions = store.list_script_versions("REPORT").await.unwrap();
            let numbers: Vec<i64> = versions.iter().map(|v| v.version).collect();
            assert_eq!(numbers, [2, 1]);
            assert_eq!(store.current_script_version(&s.id).await.unwrap(), 2);

            // A job queued with the current source records version 2.
            let job = NewJob {
                script_id: Some(s.id.clone()),
                script_name: Some(s.name.clone()),
                source: "Log(2);".into(),
                origin: "api".into(),
                ..NewJob::default()
            };
            let queued = store.enqueue_job(&job).await.unwrap();
            assert_eq!(
                store.get_job(&queued.id).await.unwrap().script_version,
                Some(2)
            );

            let restored = store.restore_script_version("report", 1).await.unwrap();
            assert_eq!(restored.body, "Log(1);");
            assert_eq!(store.current_script_version(&s.id).await.unwrap(), 3);
            assert_eq!(
                store.script_version("report", 3).await.unwrap().body,
                "Log(1);"
            );
            assert!(store.script_version("report", 9).await.is_err());
            // An ad-hoc source matches no version.
            let adhoc = store
                .enqueue_job(&NewJob {
                    source: "Log('other');".into(),
                    ..job.clone()
                })
                .await
                .unwrap();
            assert_eq!(store.get_job(&adhoc.id).await.unwrap().script_version, None);

            // Every other way of queuing records the version its INSERT finds: a job this
            // process runs itself, a schedule's slot, a watcher's run and a settled job's
            // follow-up (retry or chain) — each now on the restored version 3.
            let version_of = |id: String| {
                let store = store.clone();
                async move { store.get_job(&id).await.unwrap().script_version }
            };
            let here = store
                .start_job_here(
                    &NewJob {
                        source: "Log(1);".into(),
                        ..job.clone()
                    },
                    "n1",
                    std::time::Duration::from_secs(30),
                )
                .await
                .unwrap();
            assert_eq!(version_of(here.id.clone()).await, Some(3));
            let nightly = store
                .create_schedule(NewSchedule {
                    name: "nightly".into(),
                    script_name: "report".into(),
                    cron: "0 2 * * *".into(),
                    time_zone: "UTC".into(),
                    params: JobParams::default(),
                    overlap: OverlapPolicy::Allow,
                    misfire: MisfirePolicy::Skip,
                    enabled: true,
                })
                .await
                .unwrap();
            let slot = store
                .decide_slot(
                    &nightly,
                    chrono::Utc::now(),
                    crate::SlotTiming::OnTime,
                    "n1",
                )
                .await
                .unwrap()
                .unwrap();
            assert_eq!(version_of(slot.job_id.unwrap()).await, Some(3));
            let watcher = store
                .create_watcher_job(NewWatcherJob {
                    name: "inbox".into(),
                    script_name: "report".into(),
                    params: JobParams::default(),
                })
                .await
                .unwrap();
            let run = store.start_watcher_run(&watcher.id).await.unwrap().unwrap();
            assert_eq!(version_of(run).await, Some(3));
            let settlement = crate::Settlement {
                jobs: vec![NewJob {
                    source: "Log(1);".into(),
                    retry_of: Some(here.id.clone()),
                    retry_attempt: 2,
                    ..job.clone()
                }],
                ..crate::Settlement::default()
            };
            assert!(store.settle_job(&here.id, &settlement).await.unwrap());
            let retry = store
                .list_jobs(&crate::JobFilter::default())
                .await
                .unwrap()
                .into_iter()
                .find(|j| j.retry_of.as_deref() == Some(here.id.as_str()))
                .unwrap();
            assert_eq!(retry.script_version, Some(3));
            // The old source stays version 2, for a job queued with it (an edit raced).
            assert_eq!(version_of(queued.id.clone()).await, Some(2));
            store.delete_schedule("nightly").await.unwrap();
            store.delete_watcher_job("inbox").await.unwrap();

            // Deleting the script removes its versions.
            store.delete_script_checked("report", false).await.unwrap();
            store.create_script(script("Report", "x")).await.unwrap();
            assert_eq!(store.list_script_versions("report").await.unwrap().len(), 1);
        }
    );

    crate::both_dialects!(used_by_refusals_and_forced_deletes, |store| async move {
        store
            .create_script(script(
                "mover",
                "var r = GetVFS('Partner'); GetSecret(\"tok\");",
            ))
            .await
            .unwrap();
        store
            .create_schedule(NewSchedule {
                name: "nightly".into(),
                script_name: "MOVER".into(),
                cron: "0 2 * * *".into(),
                time_zone: "UTC".into(),
                params: JobParams::default(),
                overlap: OverlapPolicy::Skip,
                misfire: MisfirePolicy::Skip,
                enabled: true,
            })
            .await
            .unwrap();
        store
            .create_script(script("other", "Log(1);"))
            .await
            .unwrap();
        let mut params = JobParams::default();
        params.insert("target", "partner");
        store
            .create_watcher_job(NewWatcherJob {
                name: "w".into(),
                script_name: "other".into(),
                params,
            })
            .await
            .unwrap();
        let settings = serde_json::json!({"Host": "h:22", "User": "u", "PassFromSecret": "pw"});
        store
            .create_vfs_entry("partner", "sftp", settings.as_object().unwrap().clone())
            .await
            .unwrap();

        let users = store.script_used_by("mover").await.unwrap();
        assert_eq!(users.len(), 1);
        assert_eq!(
            (users[0].kind.as_str(), users[0].name.as_str()),
            ("schedule", "nightly")
        );
        let users = store.vfs_used_by("partner").await.unwrap();
        let named: Vec<String> = users
            .iter()
            .map(|u| format!("{}/{}", u.kind, u.name))
            .collect();
        assert_eq!(named, ["script/mover", "watcher/w"]);
        let users = store.secret_used_by("pw").await.unwrap();
        assert_eq!(users[0].how, "PassFromSecret");
        let users = store.secret_used_by("tok").await.unwrap();
        assert_eq!(users[0].kind, "script");

        let refused = store
            .delete_script_checked("mover", false)
            .await
            .unwrap_err();
        assert!(
            matches!(refused, crate::StoreError::InUse { ref used_by, .. } if used_by.len() == 1)
        );
        assert!(store.find_script("mover").await.is_ok());
        let done = store
            .delete_vfs_entry_checked("partner", true)
            .await
            .unwrap();
        assert_eq!(done.disabled, ["watcher/w"]);
        assert!(!store.find_watcher_job("w").await.unwrap().enabled);
        let done = store.delete_script_checked("mover", true).await.unwrap();
        assert_eq!(done.disabled, ["schedule/nightly"]);
        assert!(!store.find_schedule("nightly").await.unwrap().enabled);
        // Not found beats in use.
        assert!(matches!(
            store.delete_secret_checked("nope", false).await,
            Err(crate::StoreError::NotFound { .. })
        ));
    });

    #[test]
    fn finds_literal_call_arguments_only() {
        let src = r#"var a = GetVFS("partner"); var b = GetVFS( 'other' );
            var c = GetVFS(Param("x")); var d = MyGetVFS("not"); var e = GetVFS(`tpl`);"#;
        assert_eq!(
            literal_call_args(src, "GetVFS"),
            vec!["partner", "other", "tpl"]
        );
        assert!(literal_call_args("GetVFS", "GetVFS").is_empty());
    }
}
