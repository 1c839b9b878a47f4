//! SFTP host-key pins (SHA-256, MD5, SHA-1) and PuTTY `.ppk` login keys, against the real
//! OpenSSH sshd started by `ci/peers/sshd.sh` (it makes the `.ppk` files with puttygen and
//! prints the host key's fingerprints as `ssh-keygen -l` does).

mod support;

use std::sync::Arc;

use aft_vfs::{Vfs, VfsError};
use serde_json::{Value, json};

use support::env;

/// Fields for the test sshd with no credentials and no pins yet.
fn base_fields() -> serde_json::Map<String, Value> {
    let fields = json!({
        "Host": env("AFT_TEST_SFTP_ADDR"),
        "User": env("AFT_TEST_SFTP_USER"),
        "BaseDir": env("AFT_TEST_SFTP_HOME"),
    });
    fields.as_object().unwrap().clone()
}

/// Fields that log in with a key file only (no password to fall back on), host key pinned.
fn key_fields(key_file: &str, passphrase: Option<&str>) -> Value {
    let mut fields = base_fields();
    fields.insert("KeyFile".into(), json!(key_file));
    fields.insert(
        "HostKeySHA256".into(),
        json!(env("AFT_TEST_SFTP_HOSTKEY_SHA256")),
    );
    if let Some(pass) = passphrase {
        fields.insert("KeyFilePass".into(), json!(pass));
    }
    Value::Object(fields)
}

/// Fields that log in by password with the given pins (field name, value).
fn pinned_fields(pins: &[(&str, String)]) -> Value {
    let mut fields = base_fields();
    fields.insert("Pass".into(), json!(env("AFT_TEST_SFTP_PASS")));
    for (name, value) in pins {
        fields.insert((*name).into(), json!(value));
    }
    Value::Object(fields)
}

fn open(fields: &Value) -> Result<Arc<dyn Vfs>, VfsError> {
    aft_vfs::open_backend("sftp", fields, &|_| None)
}

/// Log in and prove the session works with a listing of the base folder.
async fn logs_in(fields: &Value) -> Result<(), VfsError> {
    let vfs = open(fields)?;
    vfs.connect().await?;
    vfs.stat("/").await?;
    vfs.close().await
}

#[tokio::test]
async fn ppk_v3_unencrypted_key_logs_in() {
    let key = env("AFT_TEST_SFTP_PPK");
    assert!(
        std::fs::read_to_string(&key)
            .unwrap()
            .starts_with("PuTTY-User-Key-File-3:"),
        "{key} is a PPK v3 file"
    );
    logs_in(&key_fields(&key, None))
        .await
        .expect("an unencrypted PPK v3 key logs in");
}

#[tokio::test]
async fn ppk_v2_unencrypted_key_logs_in() {
    let key = env("AFT_TEST_SFTP_PPK_V2");
    assert!(
        std::fs::read_to_string(&key)
            .unwrap()
            .starts_with("PuTTY-User-Key-File-2:"),
        "{key} is a PPK v2 file"
    );
    logs_in(&key_fields(&key, None))
        .await
        .expect("an unencrypted PPK v2 key logs in");
}

#[tokio::test]
async fn ppk_v3_ecdsa_key_logs_in() {
    logs_in(&key_fields(&env("AFT_TEST_SFTP_PPK_ECDSA"), None))
        .await
        .expect("an ECDSA P-256 PPK v3 key logs in");
}

#[tokio::test]
async fn ppk_key_given_as_text_logs_in() {
    let text = std::fs::read_to_string(env("AFT_TEST_SFTP_PPK")).unwrap();
    logs_in(&key_fields(&text, None))
        .await
        .expect("the PPK text itself in KeyFile logs in");
}

#[tokio::test]
async fn encrypted_ppk_v3_logs_in_with_its_passphrase() {
    let pass = env("AFT_TEST_SFTP_PPK_ENC_PASS");
    logs_in(&key_fields(&env("AFT_TEST_SFTP_PPK_ENC"), Some(&pass)))
        .await
        .expect("an encrypted PPK v3 (Argon2id) RSA key with its passphrase logs in");
}

#[tokio::test]
async fn encrypted_ppk_v2_logs_in_with_its_passphrase() {
    let pass = env("AFT_TEST_SFTP_PPK_ENC_PASS");
    logs_in(&key_fields(&env("AFT_TEST_SFTP_PPK_ENC_V2"), Some(&pass)))
        .await
        .expect("an encrypted PPK v2 RSA key with its passphrase logs in");
}

#[tokio::test]
async fn encrypted_ppk_with_wrong_passphrase_is_an_auth_error_naming_the_file() {
    for key in [
        env("AFT_TEST_SFTP_PPK_ENC"),
        env("AFT_TEST_SFTP_PPK_ENC_V2"),
    ] {
        let err = logs_in(&key_fields(&key, Some("not the passphrase")))
            .await
            .unwrap_err();
        assert!(matches!(err, VfsError::Auth(_)), "{err:?}");
        let message = err.to_string();
        assert!(message.contains(&key), "names the key file: {message}");
        assert!(
            message.contains("wrong passphrase") && message.contains("KeyFilePass"),
            "says what to check: {message}"
        );
        assert!(!err.is_transient(), "a wrong passphrase is not retried");
    }
}

#[tokio::test]
async fn encrypted_ppk_without_passphrase_asks_for_one() {
    let key = env("AFT_TEST_SFTP_PPK_ENC");
    let err = logs_in(&key_fields(&key, None)).await.unwrap_err();
    assert!(matches!(err, VfsError::Auth(_)), "{err:?}");
    let message = err.to_string();
    assert!(
        message.contains(&key) && message.contains("set KeyFilePass"),
        "{message}"
    );
}

#[tokio::test]
async fn right_md5_pin_is_accepted() {
    let md5 = env("AFT_TEST_SFTP_HOSTKEY_MD5");
    logs_in(&pinned_fields(&[("HostKeyMD5", md5.clone())]))
        .await
        .expect("the MD5 as ssh-keygen prints it");
    // Other tools print it upper case, without the prefix or without colons.
    let bare = md5.trim_start_matches("MD5:").to_uppercase();
    logs_in(&pinned_fields(&[("HostKeyMD5", bare.clone())]))
        .await
        .expect("upper-case MD5 without prefix");
    logs_in(&pinned_fields(&[("HostKeyMD5", bare.replace(':', ""))]))
        .await
        .expect("MD5 without colons");
}

#[tokio::test]
async fn right_sha1_pin_is_accepted() {
    let sha1 = env("AFT_TEST_SFTP_HOSTKEY_SHA1");
    logs_in(&pinned_fields(&[("HostKeySHA1", sha1.clone())]))
        .await
        .expect("the SHA-1 as ssh-keygen prints it");
    logs_in(&pinned_fields(&[(
        "HostKeySHA1",
        format!("{}=", sha1.trim_start_matches("SHA1:")),
    )]))
    .await
    .expect("padded base64 without prefix");
    // The same digest in hex, as some tools print it.
    let hex = sha1_hex(&sha1);
    logs_in(&pinned_fields(&[("HostKeySHA1", hex.clone())]))
        .await
        .expect("SHA-1 in hex");
    let with_colons: Vec<&str> = (0..hex.len()).step_by(2).map(|i| &hex[i..i + 2]).collect();
    logs_in(&pinned_fields(&[("HostKeySHA1", with_colons.join(":"))]))
        .await
        .expect("SHA-1 in hex with colons");
}

/// The hex form of an `SHA1:<base64>` fingerprint.
fn sha1_hex(fingerprint: &str) -> String {
    use base64::Engine as _;
    let bytes = base64::engine::general_purpose::STANDARD_NO_PAD
        .decode(fingerprint.trim_start_matches("SHA1:"))
        .unwrap();
    hex::encode(bytes)
}

#[tokio::test]
async fn all_three_right_pins_together_are_accepted() {
    logs_in(&pinned_fields(&[
        ("HostKeySHA256", env("AFT_TEST_SFTP_HOSTKEY_SHA256")),
        ("HostKeyMD5", env("AFT_TEST_SFTP_HOSTKEY_MD5")),
        ("HostKeySHA1", env("AFT_TEST_SFTP_HOSTKEY_SHA1")),
    ]))
    .await
    .expect("every pin matches");
}

#[tokio::test]
async fn wrong_md5_pin_is_refused_naming_both_fingerprints() {
    let sha256 = env("AFT_TEST_SFTP_HOSTKEY_SHA256");
    let md5 = env("AFT_TEST_SFTP_HOSTKEY_MD5");
    let wrong = "MD5:00:11:22:33:44:55:66:77:88:99:aa:bb:cc:dd:ee:ff";
    // The right SHA-256 does not outweigh a wrong MD5: every pin that is set must match.
    let err = logs_in(&pinned_fields(&[
        ("HostKeySHA256", sha256.clone()),
        ("HostKeyMD5", wrong.to_string()),
    ]))
    .await
    .unwrap_err();
    match &err {
        VfsError::HostKey {
            fingerprint,
            mismatch,
            ..
        } => {
            assert_eq!(fingerprint, &sha256);
            let mismatch = mismatch.as_deref().expect("names the failed pin");
            assert!(mismatch.contains("HostKeyMD5"), "{mismatch}");
            assert!(!mismatch.contains("HostKeySHA256"), "{mismatch}");
        }
        other => panic!("expected HostKey, got {other:?}"),
    }
    let message = err.to_string();
    for needle in [&sha256, &md5, wrong, "HostKeyMD5"] {
        assert!(message.contains(needle), "{needle} in: {message}");
    }
    assert!(!err.is_transient(), "a host key mismatch is not retried");
}

#[tokio::test]
async fn wrong_sha1_pin_is_refused_naming_it() {
    let sha1 = env("AFT_TEST_SFTP_HOSTKEY_SHA1");
    let err = logs_in(&pinned_fields(&[(
        "HostKeySHA1",
        "SHA1:AAAAAAAAAAAAAAAAAAAAAAAAAAA".to_string(),
    )]))
    .await
    .unwrap_err();
    let message = err.to_string();
    assert!(matches!(err, VfsError::HostKey { .. }), "{err:?}");
    assert!(
        message.contains("HostKeySHA1") && message.contains(&sha1),
        "{message}"
    );
    assert!(
        message.contains(&env("AFT_TEST_SFTP_HOSTKEY_SHA256")),
        "{message}"
    );
}

#[tokio::test]
async fn malformed_pin_is_refused_before_connecting() {
    let err = open(&pinned_fields(&[("HostKeyMD5", "MD5:12:34".to_string())]))
        .err()
        .expect("a 2-byte MD5 is refused");
    let message = err.to_string();
    assert!(
        message.contains("HostKeyMD5") && message.contains("MD5:12:34"),
        "{message}"
    );
}

#[tokio::test]
async fn unpinned_key_is_refused_without_a_mismatch() {
    let err = logs_in(&pinned_fields(&[])).await.unwrap_err();
    match &err {
        VfsError::HostKey {
            fingerprint,
            mismatch,
            ..
        } => {
            assert_eq!(fingerprint, &env("AFT_TEST_SFTP_HOSTKEY_SHA256"));
            assert_eq!(mismatch, &None);
        }
        other => panic!("expected HostKey, got {other:?}"),
    }
    assert!(
        err.to_string().contains("pin it with HostKeySHA256"),
        "{err}"
    );
}

/// An encrypted OpenSSH key that claims 4 billion bcrypt rounds (tests/corpus/openssh) is
/// refused at once, naming the file and the rounds, instead of holding the login for months.
#[tokio::test]
async fn openssh_key_with_huge_bcrypt_rounds_is_refused_fast() {
    let key = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/corpus/openssh/bad-bcrypt_rounds--4g-rounds.key");
    let key = key.to_str().unwrap();
    let started = std::time::Instant::now();
    let err = logs_in(&key_fields(key, Some("fuzz-pass")))
        .await
        .unwrap_err();
    assert!(
        started.elapsed() < std::time::Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );
    let message = err.to_string();
    assert!(message.contains(key), "names the key file: {message}");
    assert!(
        message.contains("4294967295 bcrypt rounds") && message.contains("limit of 1024"),
        "{message}"
    );
    assert!(!err.is_transient(), "{err:?}");
}
