//! Store tests, each run on SQLite and on PostgreSQL (see [`crate::testing`]).

use std::time::Duration;

use chrono::Utc;
use serde_json::json;

use crate::{
    ApiKeyAllowList, ApiKeyCheck, NewApiKey, NewScript, ScriptUpdate, Secret, SecretsKey, SmtpTls,
    StoreError,
};

fn script(name: &str, body: &str) -> NewScript {
    NewScript {
        name: name.into(),
        description: String::new(),
        body: body.into(),
        retry_safe: false,
    }
}

fn object(value: serde_json::Value) -> serde_json::Map<String, serde_json::Value> {
    value.as_object().expect("a JSON object").clone()
}

fn new_key(name: &str) -> NewApiKey {
    NewApiKey {
        name: name.into(),
        allow_list: "127.0.0.1, ::1".parse().unwrap(),
        expires_at: None,
        scripts: None,
        file_runs: false,
    }
}

crate::both_dialects!(
    settings_start_at_defaults_and_keep_what_is_set,
    |store| async move {
        let s = store.settings().await.unwrap();
        assert!(!s.allow_cli_run, "Allow CLI Run must be off by default");
        assert_eq!(
            store.set_setting("allow-cli-run", "true").await.unwrap(),
            "true"
        );
        store.set_setting("smtp-tls", "TLS").await.unwrap();
        store
            .set_setting("cors-origins", "https://a.example,http://127.0.0.1:8080")
            .await
            .unwrap();
        let s = store.settings().await.unwrap();
        assert!(s.allow_cli_run);
        assert_eq!(s.smtp_tls, SmtpTls::Tls);
        assert_eq!(
            s.cors_origins,
            vec!["https://a.example", "http://127.0.0.1:8080"]
        );
        let v = store.get_setting("allow-cli-run").await.unwrap();
        assert!(!v.is_default);
        assert!(store.get_setting("smtp-port").await.unwrap().is_default);
        let listed = store.list_settings().await.unwrap();
        assert_eq!(listed.len(), crate::SETTINGS.len());
        store.reset_settings().await.unwrap();
        assert!(!store.settings().await.unwrap().allow_cli_run);
    }
);

crate::both_dialects!(
    settings_refuse_unknown_keys_and_bad_values,
    |store| async move {
        for (key, value) in [
            ("no-such", "1"),
            ("max-concurrent-jobs", "0"),
            ("smtp-port", "70000"),
            ("allow-cli-run", "maybe"),
        ] {
            match store.set_setting(key, value).await {
                Err(StoreError::Invalid(msg)) => assert!(msg.contains(key), "{msg}"),
                other => panic!("{key}={value} gave {other:?}"),
            }
        }
        assert!(store.get_setting("no-such").await.is_err());
    }
);

crate::both_dialects!(
    scripts_round_trip_and_match_names_case_insensitively,
    |store| async move {
        let created = store
            .create_script(NewScript {
                retry_safe: true,
                description: "nightly".into(),
                ..script("Nightly-Sync", "Log('a');")
            })
            .await
            .unwrap();
        assert!(created.retry_safe);
        assert_eq!(
            store.get_script(&created.id).await.unwrap().unwrap(),
            created
        );
        let by_name = store.script_by_name("NIGHTLY-sync").await.unwrap().unwrap();
        assert_eq!(by_name.id, created.id);
        assert_eq!(
            by_name.name, "Nightly-Sync",
            "the name keeps the case it was created with"
        );
        match store.create_script(script("nightly-SYNC", "x")).await {
            Err(StoreError::Conflict { kind: "script", .. }) => {}
            other => panic!("expected a conflict, got {other:?}"),
        }
        let updated = store
            .update_script(
                "nightly-sync",
                ScriptUpdate {
                    body: Some("Log('b');".into()),
                    retry_safe: Some(false),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        assert_eq!(updated.body, "Log('b');");
        assert_eq!(updated.description, "nightly");
        assert!(!updated.retry_safe);
        assert!(updated.updated_at >= created.updated_at);
        store.create_script(script("another", "")).await.unwrap();
        let names: Vec<String> = store
            .list_scripts()
            .await
            .unwrap()
            .into_iter()
            .map(|s| s.name)
            .collect();
        assert_eq!(names, vec!["another", "Nightly-Sync"]);
        match store
            .update_script(
                "another",
                ScriptUpdate {
                    name: Some("NIGHTLY-SYNC".into()),
                    ..Default::default()
                },
            )
            .await
        {
            Err(StoreError::Conflict { .. }) => {}
            other => panic!("renaming onto a taken name gave {other:?}"),
        }
        store.delete_script("Another").await.unwrap();
        assert!(matches!(
            store.delete_script("another").await,
            Err(StoreError::NotFound { .. })
        ));
        assert!(store.script_by_name("another").await.unwrap().is_none());
    }
);

crate::both_dialects!(put_script_creates_then_replaces, |store| async move {
    let (first, created) = store.put_script(script("Push", "1")).await.unwrap();
    assert!(created);
    let (second, created) = store.put_script(script("push", "2")).await.unwrap();
    assert!(!created);
    assert_eq!(first.id, second.id);
    assert_eq!(second.body, "2");
    assert_eq!(store.list_scripts().await.unwrap().len(), 1);
});

crate::both_dialects!(
    script_names_must_be_printable_and_short,
    |store| async move {
        for bad in ["", "  ", "a\nb", &"x".repeat(201)] {
            assert!(
                matches!(
                    store.create_script(script(bad, "")).await,
                    Err(StoreError::Invalid(_))
                ),
                "{bad:?}"
            );
        }
        store
            .create_script(script(&"é".repeat(200), ""))
            .await
            .unwrap();
    }
);

crate::both_dialects!(
    secrets_are_encrypted_listed_without_values_and_case_sensitive,
    |store| async move {
        let key = SecretsKey::generate();
        store
            .set_secret(&key, "SftpPass", &Secret::new("correct horse"))
            .await
            .unwrap();
        store
            .set_secret(&key, "sftppass", &Secret::new("other"))
            .await
            .unwrap();
        assert_eq!(
            store
                .get_secret(&key, "SftpPass")
                .await
                .unwrap()
                .unwrap()
                .expose(),
            "correct horse"
        );
        assert_eq!(
            store
                .get_secret(&key, "sftppass")
                .await
                .unwrap()
                .unwrap()
                .expose(),
            "other"
        );
        assert!(store.get_secret(&key, "SFTPPASS").await.unwrap().is_none());
        store
            .set_secret(&key, "SftpPass", &Secret::new("replaced"))
            .await
            .unwrap();
        assert_eq!(
            store
                .get_secret(&key, "SftpPass")
                .await
                .unwrap()
                .unwrap()
                .expose(),
            "replaced"
        );
        let names: Vec<String> = store
            .list_secrets()
            .await
            .unwrap()
            .into_iter()
            .map(|s| s.name)
            .collect();
        assert_eq!(names, vec!["SftpPass", "sftppass"]);
        let sealed: Vec<String> = sqlx::query_scalar("SELECT sealed FROM secrets")
            .fetch_all(store.pool())
            .await
            .unwrap();
        assert!(
            sealed
                .iter()
                .all(|s| !s.contains("replaced") && !s.contains("other"))
        );
        store.delete_secret("sftppass").await.unwrap();
        assert!(matches!(
            store.delete_secret("sftppass").await,
            Err(StoreError::NotFound { .. })
        ));
    }
);

crate::both_dialects!(
    secrets_under_another_key_fail_with_a_clear_error,
    |store| async move {
        let key = SecretsKey::generate();
        store
            .set_secret(&key, "a", &Secret::new("1"))
            .await
            .unwrap();
        let other = SecretsKey::generate();
        for err in [
            store.get_secret(&other, "a").await.unwrap_err(),
            store
                .set_secret(&other, "b", &Secret::new("2"))
                .await
                .unwrap_err(),
        ] {
            let text = err.to_string();
            assert!(matches!(err, StoreError::Crypto(_)), "{text}");
            assert!(
                text.contains("another key") && text.contains("AFT_SECRET_KEY"),
                "{text}"
            );
        }
    }
);

crate::both_dialects!(
    secret_values_cannot_be_swapped_between_names,
    |store| async move {
        let key = SecretsKey::generate();
        store
            .set_secret(&key, "a", &Secret::new("for a"))
            .await
            .unwrap();
        store
            .set_secret(&key, "b", &Secret::new("for b"))
            .await
            .unwrap();
        sqlx::query("UPDATE secrets SET sealed = (SELECT sealed FROM secrets WHERE name = 'a') WHERE name = 'b'")
        .execute(store.pool())
        .await
        .unwrap();
        assert!(matches!(
            store.get_secret(&key, "b").await,
            Err(StoreError::Crypto(_))
        ));
    }
);

crate::both_dialects!(
    api_keys_authenticate_by_hash_and_track_use,
    |store| async move {
        let (record, key) = store
            .create_api_key(NewApiKey {
                scripts: Some(vec!["Nightly".into()]),
                ..new_key("ci")
            })
            .await
            .unwrap();
        assert!(key.expose().starts_with(crate::API_KEY_PREFIX));
        assert!(key.expose().len() >= 43);
        assert!(key.expose().starts_with(&record.prefix));
        assert!(record.last_used_at.is_none());
        let stored: String = sqlx::query_scalar("SELECT key_hash FROM api_keys")
            .fetch_one(store.pool())
            .await
            .unwrap();
        assert_ne!(stored, key.expose());
        let ApiKeyCheck::Valid(found) = store.authenticate_api_key(key.expose()).await.unwrap()
        else {
            panic!("a fresh key must authenticate");
        };
        assert_eq!(found.id, record.id);
        assert!(found.may_start("NIGHTLY") && !found.may_start("other"));
        assert!(found.allow_list.allows("::ffff:127.0.0.1".parse().unwrap()));
        assert!(
            store
                .find_api_key("CI")
                .await
                .unwrap()
                .last_used_at
                .is_some()
        );
        assert_eq!(
            store.authenticate_api_key("aft_not-a-key").await.unwrap(),
            ApiKeyCheck::Unknown
        );
        assert!(matches!(
            store.create_api_key(new_key("Ci")).await,
            Err(StoreError::Conflict { .. })
        ));
    }
);

crate::both_dialects!(
    revoked_and_expired_api_keys_do_not_authenticate,
    |store| async move {
        let (_, revoked) = store.create_api_key(new_key("revoked")).await.unwrap();
        store.revoke_api_key("revoked").await.unwrap();
        assert!(matches!(
            store.authenticate_api_key(revoked.expose()).await.unwrap(),
            ApiKeyCheck::Revoked(_)
        ));
        let past = Utc::now() - chrono::TimeDelta::seconds(1);
        let (_, expired) = store
            .create_api_key(NewApiKey {
                expires_at: Some(past),
                ..new_key("expired")
            })
            .await
            .unwrap();
        assert!(matches!(
            store.authenticate_api_key(expired.expose()).await.unwrap(),
            ApiKeyCheck::Expired(_)
        ));
        let future = Utc::now() + chrono::TimeDelta::days(1);
        let (_, live) = store
            .create_api_key(NewApiKey {
                expires_at: Some(future),
                ..new_key("live")
            })
            .await
            .unwrap();
        assert!(matches!(
            store.authenticate_api_key(live.expose()).await.unwrap(),
            ApiKeyCheck::Valid(_)
        ));
        let listed: Vec<String> = store
            .list_api_keys()
            .await
            .unwrap()
            .into_iter()
            .map(|k| k.name)
            .collect();
        assert_eq!(listed, vec!["expired", "live", "revoked"]);
        store.delete_api_key("live").await.unwrap();
        assert_eq!(
            store.authenticate_api_key(live.expose()).await.unwrap(),
            ApiKeyCheck::Unknown
        );
    }
);

crate::both_dialects!(api_key_allow_list_survives_storage, |store| async move {
    let allow: ApiKeyAllowList = "10.0.0.0/8, fd00::/8, 192.168.1.7".parse().unwrap();
    let (record, _) = store
        .create_api_key(NewApiKey {
            allow_list: allow.clone(),
            ..new_key("k")
        })
        .await
        .unwrap();
    assert_eq!(record.allow_list, allow);
    assert!(record.allow_list.allows("10.9.8.7".parse().unwrap()));
    assert!(!record.allow_list.allows("192.168.1.8".parse().unwrap()));
});

crate::both_dialects!(
    racing_first_admin_setups_create_exactly_one_admin,
    |store| async move {
        let setups = (0..10).map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .create_first_admin(&format!("admin{i}"), &Secret::new("a-long-password"))
                    .await
            })
        });
        let mut created = 0;
        for setup in futures_join(setups).await {
            match setup.unwrap() {
                Ok(_) => created += 1,
                Err(StoreError::Refused(_)) => {}
                Err(e) => panic!("unexpected error: {e}"),
            }
        }
        assert_eq!(created, 1);
        assert_eq!(store.count_admins().await.unwrap(), 1);
    }
);

/// Await every task, in order.
async fn futures_join<T>(
    tasks: impl Iterator<Item = tokio::task::JoinHandle<T>>,
) -> Vec<Result<T, tokio::task::JoinError>> {
    let mut out = Vec::new();
    for task in tasks.collect::<Vec<_>>() {
        out.push(task.await);
    }
    out
}

crate::both_dialects!(
    admins_verify_passwords_and_reinit_removes_them,
    |store| async move {
        assert_eq!(store.count_admins().await.unwrap(), 0);
        store
            .create_admin("Alice", &Secret::new("s3cret-pass"))
            .await
            .unwrap();
        assert!(matches!(
            store
                .create_admin("alice", &Secret::new("another-pass"))
                .await,
            Err(StoreError::Conflict { .. })
        ));
        assert!(matches!(
            store.create_admin("bob", &Secret::new("short")).await,
            Err(StoreError::Invalid(_))
        ));
        assert_eq!(
            store
                .verify_admin("ALICE", "s3cret-pass")
                .await
                .unwrap()
                .unwrap()
                .username,
            "Alice"
        );
        assert!(
            store
                .verify_admin("alice", "wrong-pass")
                .await
                .unwrap()
                .is_none()
        );
        assert!(
            store
                .verify_admin("nobody", "s3cret-pass")
                .await
                .unwrap()
                .is_none()
        );
        let hash: String = sqlx::query_scalar("SELECT password_hash FROM admins")
            .fetch_one(store.pool())
            .await
            .unwrap();
        assert!(hash.starts_with("$argon2id$"), "{hash}");
        store
            .set_admin_password("alice", &Secret::new("new-password"))
            .await
            .unwrap();
        assert!(
            store
                .verify_admin("alice", "new-password")
                .await
                .unwrap()
                .is_some()
        );
        store.create_script(script("kept", "")).await.unwrap();
        let (token, _) = store
            .create_session("alice", Duration::from_secs(60))
            .await
            .unwrap();
        assert_eq!(store.delete_all_admins().await.unwrap(), 1);
        assert_eq!(store.count_admins().await.unwrap(), 0);
        assert!(store.session(token.expose()).await.unwrap().is_none());
        assert!(store.script_by_name("kept").await.unwrap().is_some());
    }
);

crate::both_dialects!(sessions_expire_and_can_be_ended, |store| async move {
    store
        .create_admin("ops", &Secret::new("password1"))
        .await
        .unwrap();
    let (token, expires) = store
        .create_session("OPS", Duration::from_secs(3600))
        .await
        .unwrap();
    let session = store.session(token.expose()).await.unwrap().unwrap();
    assert_eq!(session.username, "ops");
    assert_eq!(session.expires_at, expires);
    let stored: String = sqlx::query_scalar("SELECT token_hash FROM admin_sessions")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_ne!(stored, token.expose());
    let (stale, _) = store.create_session("ops", Duration::ZERO).await.unwrap();
    assert!(store.session(stale.expose()).await.unwrap().is_none());
    assert_eq!(store.purge_expired_sessions().await.unwrap(), 1);
    store.delete_session(token.expose()).await.unwrap();
    assert!(store.session(token.expose()).await.unwrap().is_none());
    assert!(matches!(
        store.create_session("ghost", Duration::from_secs(1)).await,
        Err(StoreError::NotFound { .. })
    ));
});

crate::both_dialects!(
    vfs_entries_round_trip_and_refuse_bad_type_names_and_nested_values,
    |store| async move {
        let settings = object(
            json!({"Host": "127.0.0.1:2222", "User": "u", "PassFromSecret": "sftp-pass", "HostKeySHA256": "SHA256:abc"}),
        );
        let entry = store
            .create_vfs_entry("Partner", "sftp", settings.clone())
            .await
            .unwrap();
        assert_eq!(entry.settings, settings);
        assert_eq!(
            store
                .vfs_entry_by_name("partner")
                .await
                .unwrap()
                .unwrap()
                .id,
            entry.id
        );
        assert!(matches!(
            store
                .create_vfs_entry("PARTNER", "ftp", Default::default())
                .await,
            Err(StoreError::Conflict { .. })
        ));
        // Which types and fields exist (and the refusal of clear-text credentials) is
        // aft_vfs::registry's check, made by the callers; the store keeps its own shape.
        for (kind, settings) in [
            ("S3", json!({})),
            ("", json!({})),
            ("s3; drop", json!({})),
            ("s3", json!({"Bucket": {"name": "b"}})),
            ("s3", json!({"Bucket": ["b"]})),
            ("s3", json!({"": "b"})),
        ] {
            let err = store
                .create_vfs_entry("bad", kind, object(settings.clone()))
                .await
                .unwrap_err();
            assert!(
                matches!(err, StoreError::Invalid(_)),
                "{kind:?} {settings}: {err}"
            );
        }
        let updated = store
        .update_vfs_entry("partner", "s3", object(json!({"Bucket": "b", "Region": "us-east-1", "Endpoint": "http://127.0.0.1:5000"})))
        .await
        .unwrap();
        assert_eq!(updated.kind, "s3");
        assert!(matches!(
            store
                .update_vfs_entry("partner", "s3", object(json!({"Bucket": {"x": 1}})))
                .await,
            Err(StoreError::Invalid(_))
        ));
        assert_eq!(store.list_vfs_entries().await.unwrap().len(), 1);
        store.delete_vfs_entry("PARTNER").await.unwrap();
        assert!(store.vfs_entry_by_name("partner").await.unwrap().is_none());
    }
);

/// docs/store.md's settings table has a row for every setting, with its default.
#[test]
fn every_setting_is_documented_with_its_default() {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/store.md"))
        .unwrap();
    for def in crate::settings::SETTINGS {
        let row = doc
            .lines()
            .find(|l| l.starts_with(&format!("| `{}` |", def.key)))
            .unwrap_or_else(|| panic!("docs/store.md has no row for the setting {}", def.key));
        let default = if def.default.is_empty() {
            "empty".to_string()
        } else {
            format!("`{}`", def.default)
        };
        assert!(
            row.split('|').nth(2).is_some_and(|c| c.trim() == default),
            "docs/store.md gives {} another default than {default}: {row}",
            def.key
        );
    }
}
