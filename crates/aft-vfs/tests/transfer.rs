//! Transfer logic on local↔local and local↔SFTP (the real sshd of `ci/peers/sshd.sh`):
//! every option, fault injection through a cutting TCP proxy, and SFTP login failures.

mod support;

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aft_vfs::local::LocalFs;
use aft_vfs::sftp::SftpFs;
use aft_vfs::transfer::{
    self, Outcome, RecordHash, TransferOptions, TransferOutcome, TransferPolicy, copy_file,
    copy_tree, download, sync, upload,
};
use aft_vfs::{Vfs, VfsError, read_all, write_all};
use chrono::{TimeZone, Utc};
use sha2::{Digest, Sha256};

/// Collects outcomes for assertions.
#[derive(Default, Clone)]
struct Outcomes(Arc<Mutex<Vec<TransferOutcome>>>);

impl Outcomes {
    fn sink(&self) -> impl Fn(&TransferOutcome) + Send + Sync + use<> {
        let inner = self.0.clone();
        move |o: &TransferOutcome| inner.lock().unwrap().push(o.clone())
    }
    fn all(&self) -> Vec<TransferOutcome> {
        self.0.lock().unwrap().clone()
    }
}

fn no_sink(_: &TransferOutcome) {}

fn data(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

fn tmp() -> (tempfile::TempDir, LocalFs, String) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_string_lossy().into_owned();
    (dir, LocalFs::new("/"), root)
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// The test sshd behind a proxy that cuts each connection after `after` bytes from the
/// client, and an SFTP backend through it (keep the proxy alive while it is used).
async fn cut_sftp(after: u64) -> (support::CutProxy, SftpFs) {
    let proxy =
        support::CutProxy::start(&support::env("AFT_TEST_SFTP_ADDR"), after, usize::MAX).await;
    let mut cfg = support::sftp_config();
    cfg.host = proxy.addr.clone();
    cfg.timeout_secs = 5;
    (proxy, SftpFs::new(cfg))
}

fn fast_retry() -> TransferOptions {
    TransferOptions {
        retry_backoff: Duration::from_millis(50),
        ..TransferOptions::default()
    }
}

/// A fresh folder on the test sshd, removed by the caller.
async fn remote_dir(sftp: &SftpFs) -> String {
    let dir = format!("/xfer-{:016x}", rand::random::<u64>());
    sftp.mkdir_all(&dir).await.unwrap();
    dir
}

#[tokio::test]
async fn glob_selects_matching_files_and_recursion_descends() {
    let (_t, fs, root) = tmp();
    for (p, d) in [
        ("in/a.csv", "a"),
        ("in/b.csv", "bb"),
        ("in/c.txt", "c"),
        ("in/sub/d.csv", "d"),
    ] {
        std::fs::create_dir_all(Path::new(&format!("{root}/{p}")).parent().unwrap()).unwrap();
        write_all(&fs, &format!("{root}/{p}"), d.as_bytes())
            .await
            .unwrap();
    }
    let opts = TransferOptions::default();
    let s = copy_tree(
        &fs,
        &format!("{root}/in/*.csv"),
        &fs,
        &format!("{root}/flat"),
        &opts,
        &no_sink,
    )
    .await
    .unwrap();
    assert_eq!((s.transferred, s.failed), (2, 0));
    assert_eq!(
        names(Path::new(&format!("{root}/flat"))),
        ["a.csv", "b.csv"]
    );

    let rec = TransferOptions {
        recursive: true,
        ..TransferOptions::default()
    };
    copy_tree(
        &fs,
        &format!("{root}/in/*.csv"),
        &fs,
        &format!("{root}/rec"),
        &rec,
        &no_sink,
    )
    .await
    .unwrap();
    assert_eq!(
        names(Path::new(&format!("{root}/rec"))),
        ["a.csv", "b.csv", "sub"]
    );
    assert_eq!(
        std::fs::read(format!("{root}/rec/sub/d.csv")).unwrap(),
        b"d"
    );

    let s = copy_tree(
        &fs,
        &format!("{root}/in/**/*.csv"),
        &fs,
        &format!("{root}/deep"),
        &opts,
        &no_sink,
    )
    .await
    .unwrap();
    assert_eq!(s.transferred, 3);
    assert!(Path::new(&format!("{root}/deep/sub/d.csv")).exists());
    assert!(!Path::new(&format!("{root}/deep/c.txt")).exists());
}

#[tokio::test]
async fn never_overwrite_is_the_default_and_skips_existing_targets() {
    let (_t, fs, root) = tmp();
    let (src, dst) = (format!("{root}/s.txt"), format!("{root}/d.txt"));
    write_all(&fs, &src, b"new").await.unwrap();
    write_all(&fs, &dst, b"old!").await.unwrap();
    let o = copy_file(&fs, &src, &fs, &dst, &TransferOptions::default(), &no_sink).await;
    assert!(matches!(o.outcome, Outcome::Skipped(_)), "{o:?}");
    assert_eq!(read_all(&fs, &dst).await.unwrap(), b"old!");
}

#[tokio::test]
async fn always_overwrite_replaces_and_reports_the_files_blake3() {
    let (_t, fs, root) = tmp();
    let (src, dst) = (format!("{root}/s.txt"), format!("{root}/d.txt"));
    write_all(&fs, &src, b"new content").await.unwrap();
    write_all(&fs, &dst, b"old").await.unwrap();
    let opts = TransferOptions {
        policy: TransferPolicy::AlwaysOverwrite,
        ..Default::default()
    };
    let o = copy_file(&fs, &src, &fs, &dst, &opts, &no_sink).await;
    assert_eq!(o.outcome, Outcome::Ok);
    assert_eq!(o.bytes, 11);
    assert_eq!(o.attempts, 1);
    assert_eq!(
        o.hash.as_ref().map(|d| d.hex.as_str()),
        Some(blake3::hash(b"new content").to_hex().as_str())
    );
    assert_eq!(read_all(&fs, &dst).await.unwrap(), b"new content");
    assert!(
        names(Path::new(&root))
            .iter()
            .all(|n| !n.contains("aft-tmp")),
        "temp left behind"
    );
}

#[tokio::test]
async fn big_file_is_hashed_beside_the_copy_in_the_records_algorithm() {
    // 9 MiB: over the size from which the hash is computed on a thread of its own.
    let (_t, fs, root) = tmp();
    let big = data(9 * 1024 * 1024 + 17, 5);
    let src = format!("{root}/big.bin");
    std::fs::write(&src, &big).unwrap();
    let sha256 = hex::encode(Sha256::digest(&big));
    let blake3 = blake3::hash(&big).to_hex().to_string();
    for (algo, want) in [(RecordHash::Blake3, blake3), (RecordHash::Sha256, sha256)] {
        let dst = format!("{root}/copy-{}.bin", algo.name());
        let opts = TransferOptions {
            record_hash: algo,
            ..Default::default()
        };
        let o = copy_file(&fs, &src, &fs, &dst, &opts, &no_sink).await;
        assert_eq!(o.outcome, Outcome::Ok, "{o:?}");
        let got = o.hash.expect("hashed");
        assert_eq!((got.algo, got.hex), (algo, want));
        assert!(std::fs::read(&dst).unwrap() == big);
    }
}

#[tokio::test]
async fn overwrite_if_diff_size_only_replaces_a_different_size() {
    let (_t, fs, root) = tmp();
    let (src, dst) = (format!("{root}/s"), format!("{root}/d"));
    let opts = TransferOptions {
        policy: TransferPolicy::OverwriteIfDiffSize,
        ..Default::default()
    };
    write_all(&fs, &src, b"abc").await.unwrap();
    write_all(&fs, &dst, b"xyz").await.unwrap();
    let o = copy_file(&fs, &src, &fs, &dst, &opts, &no_sink).await;
    assert!(matches!(o.outcome, Outcome::Skipped(_)));
    write_all(&fs, &dst, b"xy").await.unwrap();
    let o = copy_file(&fs, &src, &fs, &dst, &opts, &no_sink).await;
    assert_eq!(o.outcome, Outcome::Ok);
    assert_eq!(read_all(&fs, &dst).await.unwrap(), b"abc");
}

#[tokio::test]
async fn overwrite_if_newer_compares_modification_times() {
    let (_t, fs, root) = tmp();
    let (src, dst) = (format!("{root}/s"), format!("{root}/d"));
    let opts = TransferOptions {
        policy: TransferPolicy::OverwriteIfNewer,
        ..Default::default()
    };
    write_all(&fs, &src, b"source").await.unwrap();
    write_all(&fs, &dst, b"target").await.unwrap();
    fs.set_mtime(&src, Utc.with_ymd_and_hms(2020, 1, 1, 0, 0, 0).unwrap())
        .await
        .unwrap();
    fs.set_mtime(&dst, Utc.with_ymd_and_hms(2021, 1, 1, 0, 0, 0).unwrap())
        .await
        .unwrap();
    let o = copy_file(&fs, &src, &fs, &dst, &opts, &no_sink).await;
    assert!(
        matches!(o.outcome, Outcome::Skipped(_)),
        "older source must not replace: {o:?}"
    );
    fs.set_mtime(&src, Utc.with_ymd_and_hms(2022, 1, 1, 0, 0, 0).unwrap())
        .await
        .unwrap();
    let o = copy_file(&fs, &src, &fs, &dst, &opts, &no_sink).await;
    assert_eq!(o.outcome, Outcome::Ok);
    assert_eq!(read_all(&fs, &dst).await.unwrap(), b"source");
}

#[tokio::test]
async fn delete_source_and_adjust_time_apply_after_success() {
    let (_t, fs, root) = tmp();
    let (src, dst) = (format!("{root}/s"), format!("{root}/out/d"));
    std::fs::create_dir_all(format!("{root}/out")).unwrap();
    write_all(&fs, &src, b"move me").await.unwrap();
    let when = Utc.with_ymd_and_hms(2019, 5, 6, 7, 8, 9).unwrap();
    fs.set_mtime(&src, when).await.unwrap();
    let opts = TransferOptions {
        delete_source: true,
        adjust_time: true,
        ..Default::default()
    };
    let o = copy_file(&fs, &src, &fs, &dst, &opts, &no_sink).await;
    assert_eq!(o.outcome, Outcome::Ok);
    assert!(!Path::new(&src).exists(), "source must be deleted");
    assert_eq!(fs.stat(&dst).await.unwrap().mtime, Some(when));
}

#[tokio::test]
async fn versioned_transfer_keeps_the_newest_versions_in_ver_folder() {
    let (_t, fs, root) = tmp();
    let (src, dst) = (format!("{root}/s"), format!("{root}/d.txt"));
    let opts = TransferOptions {
        policy: TransferPolicy::AlwaysOverwrite,
        versioned: true,
        versions_to_keep: 2,
        ..Default::default()
    };
    for i in 0..5 {
        write_all(&fs, &src, format!("v{i}").as_bytes())
            .await
            .unwrap();
        let o = copy_file(&fs, &src, &fs, &dst, &opts, &no_sink).await;
        assert_eq!(o.outcome, Outcome::Ok);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(read_all(&fs, &dst).await.unwrap(), b"v4");
    let ver = Path::new(&root).join(transfer::VERSIONS_DIR);
    let kept = names(&ver);
    assert_eq!(kept.len(), 2, "{kept:?}");
    let contents: Vec<Vec<u8>> = kept
        .iter()
        .map(|n| std::fs::read(ver.join(n)).unwrap())
        .collect();
    assert_eq!(contents, [b"v2".to_vec(), b"v3".to_vec()]);
}

#[tokio::test]
async fn stop_on_transfer_error_stops_at_the_first_failure() {
    let (_t, fs, root) = tmp();
    for i in 0..5 {
        std::fs::create_dir_all(format!("{root}/in")).unwrap();
        write_all(&fs, &format!("{root}/in/f{i}"), b"x")
            .await
            .unwrap();
        // A folder where each file should land makes every file fail.
        std::fs::create_dir_all(format!("{root}/out/f{i}")).unwrap();
    }
    let base = TransferOptions {
        policy: TransferPolicy::AlwaysOverwrite,
        parallel: 1,
        ..fast_retry()
    };
    let go_on = copy_tree(
        &fs,
        &format!("{root}/in/*"),
        &fs,
        &format!("{root}/out"),
        &base,
        &no_sink,
    )
    .await
    .unwrap();
    assert_eq!(go_on.failed, 5);
    assert!(go_on.first_error.unwrap().contains("directory"));
    let stop = TransferOptions {
        stop_on_error: true,
        ..base
    };
    let stopped = copy_tree(
        &fs,
        &format!("{root}/in/*"),
        &fs,
        &format!("{root}/out"),
        &stop,
        &no_sink,
    )
    .await
    .unwrap();
    assert_eq!(stopped.failed, 1, "{stopped:?}");
}

#[tokio::test]
async fn sync_copies_changes_and_deletes_extraneous_files() {
    let (_t, fs, root) = tmp();
    std::fs::create_dir_all(format!("{root}/src/sub")).unwrap();
    std::fs::create_dir_all(format!("{root}/dst/gone_dir")).unwrap();
    std::fs::write(format!("{root}/src/a"), "a").unwrap();
    std::fs::write(format!("{root}/src/sub/b"), "b").unwrap();
    std::fs::write(format!("{root}/dst/old"), "old").unwrap();
    std::fs::write(format!("{root}/dst/gone_dir/x"), "x").unwrap();
    let (src, dst) = (format!("{root}/src"), format!("{root}/dst"));
    let out = Outcomes::default();
    let sink = out.sink();
    let s = sync(
        &fs,
        &src,
        &fs,
        &dst,
        &TransferOptions::default(),
        true,
        &sink,
    )
    .await
    .unwrap();
    assert_eq!((s.transferred, s.deleted), (2, 2), "{s:?}");
    assert_eq!(names(Path::new(&dst)), ["a", "sub"]);
    let again = sync(
        &fs,
        &src,
        &fs,
        &dst,
        &TransferOptions::default(),
        true,
        &no_sink,
    )
    .await
    .unwrap();
    assert_eq!(
        (again.transferred, again.skipped),
        (0, 2),
        "unchanged files are not copied again"
    );
    std::fs::write(format!("{root}/src/a"), "changed").unwrap();
    let third = sync(
        &fs,
        &src,
        &fs,
        &dst,
        &TransferOptions::default(),
        false,
        &no_sink,
    )
    .await
    .unwrap();
    assert_eq!(third.transferred, 1);
    assert_eq!(std::fs::read(format!("{dst}/a")).unwrap(), b"changed");
}

#[tokio::test]
async fn upload_and_download_over_sftp_round_trip_with_outcomes() {
    let sftp = support::sftp();
    let dir = remote_dir(&sftp).await;
    let (_t, _fs, root) = tmp();
    std::fs::create_dir_all(format!("{root}/up")).unwrap();
    let big = data(3 * 1024 * 1024 + 5, 7);
    std::fs::write(format!("{root}/up/big.bin"), &big).unwrap();
    std::fs::write(format!("{root}/up/small.txt"), "small").unwrap();
    let out = Outcomes::default();
    let sink = out.sink();
    let s = upload(
        &format!("{root}/up/*"),
        &sftp,
        &dir,
        &TransferOptions::default(),
        &sink,
    )
    .await
    .unwrap();
    assert_eq!((s.transferred, s.failed), (2, 0), "{s:?}");
    let big_o = out
        .all()
        .into_iter()
        .find(|o| o.source.ends_with("big.bin"))
        .unwrap();
    assert_eq!(
        big_o.hash.unwrap().hex,
        blake3::hash(&big).to_hex().as_str()
    );
    assert!(big_o.target.starts_with("sftp://"), "{}", big_o.target);
    let listed: Vec<String> = support::sftp_names(&sftp, &dir).await;
    assert_eq!(
        listed,
        ["big.bin", "small.txt"],
        "no temp names left on the server"
    );

    let s = download(
        &sftp,
        &format!("{dir}/*.bin"),
        &format!("{root}/down"),
        &TransferOptions::default(),
        &no_sink,
    )
    .await
    .unwrap();
    assert_eq!(s.transferred, 1);
    assert!(std::fs::read(format!("{root}/down/big.bin")).unwrap() == big);
    sftp.remove_all(&dir).await.unwrap();
}

#[tokio::test]
async fn otfe_encrypts_on_upload_and_decrypts_on_download() {
    let sftp = support::sftp();
    let dir = remote_dir(&sftp).await;
    let (_t, _fs, root) = tmp();
    let plain = data(200_000, 3);
    std::fs::write(format!("{root}/secret.dat"), &plain).unwrap();
    let opts = TransferOptions {
        otfe_key: Some([7u8; 32]),
        ..Default::default()
    };
    let s = upload(&format!("{root}/secret.dat"), &sftp, &dir, &opts, &no_sink)
        .await
        .unwrap();
    assert_eq!(s.transferred, 1, "{s:?}");
    let stored = read_all(&sftp, &format!("{dir}/secret.dat")).await.unwrap();
    assert_eq!(
        stored.len() as u64,
        aft_vfs::otfe::encrypted_len(plain.len() as u64)
    );
    assert!(stored != plain);
    let s = download(
        &sftp,
        &format!("{dir}/secret.dat"),
        &format!("{root}/back"),
        &opts,
        &no_sink,
    )
    .await
    .unwrap();
    assert_eq!(s.transferred, 1, "{s:?}");
    assert!(std::fs::read(format!("{root}/back/secret.dat")).unwrap() == plain);
    sftp.remove_all(&dir).await.unwrap();
}

#[tokio::test]
async fn cut_connection_is_retried_to_success_without_partial_file() {
    let base = support::sftp();
    let dir = remote_dir(&base).await;
    let proxy = support::CutProxy::start(&support::env("AFT_TEST_SFTP_ADDR"), 1_500_000, 1).await;
    let mut cfg = support::sftp_config();
    cfg.host = proxy.addr.clone();
    cfg.timeout_secs = 5;
    let sftp = SftpFs::new(cfg);
    let (_t, fs, root) = tmp();
    let big = data(4 * 1024 * 1024, 9);
    std::fs::write(format!("{root}/big.bin"), &big).unwrap();
    let o = copy_file(
        &fs,
        &format!("{root}/big.bin"),
        &sftp,
        &format!("{dir}/big.bin"),
        &fast_retry(),
        &no_sink,
    )
    .await;
    assert_eq!(o.outcome, Outcome::Ok, "{o:?}");
    assert!(
        o.attempts >= 2,
        "the first connection was cut, so it took a retry: {o:?}"
    );
    assert!(read_all(&base, &format!("{dir}/big.bin")).await.unwrap() == big);
    assert_eq!(support::sftp_names(&base, &dir).await, ["big.bin"]);
    base.remove_all(&dir).await.unwrap();
}

#[tokio::test]
async fn interrupted_upload_leaves_only_a_temp_and_the_next_run_resumes_it() {
    let base = support::sftp();
    let dir = remote_dir(&base).await;
    let (_proxy, cut) = cut_sftp(4_000_000).await;
    let (_t, fs, root) = tmp();
    let big = data(6 * 1024 * 1024, 11);
    let (src, dst) = (format!("{root}/big.bin"), format!("{dir}/big.bin"));
    std::fs::write(&src, &big).unwrap();
    let once = TransferOptions {
        retries: 0,
        ..fast_retry()
    };
    let o = copy_file(&fs, &src, &cut, &dst, &once, &no_sink).await;
    let Outcome::Failed(msg) = &o.outcome else {
        panic!("a cut connection must fail: {o:?}")
    };
    assert!(msg.contains("sftp://"), "the error names the server: {msg}");
    let left = support::sftp_names(&base, &dir).await;
    assert_eq!(left.len(), 1, "{left:?}");
    assert!(
        left[0].starts_with("big.bin.aft-tmp-"),
        "only a temp name, never the final one: {left:?}"
    );
    let partial = base.stat(&format!("{dir}/{}", left[0])).await.unwrap().size;
    assert!(
        partial > 0 && partial < big.len() as u64,
        "partial temp of {partial} bytes"
    );

    let o = copy_file(
        &fs,
        &src,
        &base,
        &dst,
        &TransferOptions::default(),
        &no_sink,
    )
    .await;
    assert_eq!(o.outcome, Outcome::Ok, "{o:?}");
    assert_eq!(
        o.hash.as_ref().map(|d| d.hex.as_str()),
        Some(blake3::hash(&big).to_hex().as_str()),
        "a resumed transfer's hash covers the kept part too"
    );
    assert!(
        read_all(&base, &dst).await.unwrap() == big,
        "resumed file differs"
    );
    assert_eq!(support::sftp_names(&base, &dir).await, ["big.bin"]);
    base.remove_all(&dir).await.unwrap();
}

#[tokio::test]
async fn resume_starts_again_when_the_kept_partial_does_not_match_the_source() {
    let base = support::sftp();
    let dir = remote_dir(&base).await;
    let (_proxy, cut) = cut_sftp(3_000_000).await;
    let (_t, fs, root) = tmp();
    let big = data(5 * 1024 * 1024, 23);
    let (src, dst) = (format!("{root}/big.bin"), format!("{dir}/big.bin"));
    std::fs::write(&src, &big).unwrap();
    let once = TransferOptions {
        retries: 0,
        ..fast_retry()
    };
    let o = copy_file(&fs, &src, &cut, &dst, &once, &no_sink).await;
    assert!(matches!(o.outcome, Outcome::Failed(_)), "{o:?}");
    let left = support::sftp_names(&base, &dir).await;
    assert_eq!(left.len(), 1, "{left:?}");
    let temp = format!("{dir}/{}", left[0]);

    // Damage the last byte the partial holds, as a torn write would.
    let mut partial = read_all(&base, &temp).await.unwrap();
    assert!(!partial.is_empty() && partial.len() < big.len());
    *partial.last_mut().unwrap() ^= 0xff;
    write_all(&base, &temp, &partial).await.unwrap();

    let o = copy_file(
        &fs,
        &src,
        &base,
        &dst,
        &TransferOptions::default(),
        &no_sink,
    )
    .await;
    assert_eq!(o.outcome, Outcome::Ok, "{o:?}");
    assert!(
        read_all(&base, &dst).await.unwrap() == big,
        "the damaged partial was resumed instead of replaced"
    );
    assert_eq!(support::sftp_names(&base, &dir).await, ["big.bin"]);
    base.remove_all(&dir).await.unwrap();
}

#[tokio::test]
async fn failed_upload_without_temp_name_removes_the_partial_file() {
    let base = support::sftp();
    let dir = remote_dir(&base).await;
    let (_proxy, cut) = cut_sftp(1_000_000).await;
    let (_t, fs, root) = tmp();
    std::fs::write(format!("{root}/f.bin"), data(3 * 1024 * 1024, 1)).unwrap();
    let opts = TransferOptions {
        temp_name: Some(false),
        retries: 1,
        ..fast_retry()
    };
    let o = copy_file(
        &fs,
        &format!("{root}/f.bin"),
        &cut,
        &format!("{dir}/f.bin"),
        &opts,
        &no_sink,
    )
    .await;
    assert!(matches!(o.outcome, Outcome::Failed(_)), "{o:?}");
    assert_eq!(o.attempts, 2);
    // The cleanup ran over the cut link too; what matters is what a reader sees now.
    let left = support::sftp_names(&base, &dir).await;
    assert!(
        left.is_empty() || base.stat(&format!("{dir}/f.bin")).await.is_err(),
        "partial file left: {left:?}"
    );
    base.remove_all(&dir).await.unwrap();
}

#[tokio::test]
async fn wrong_password_is_a_clear_auth_error() {
    let mut cfg = support::sftp_config();
    cfg.password = Some("definitely-wrong".into());
    let err = SftpFs::new(cfg).connect().await.unwrap_err();
    assert!(matches!(err, VfsError::Auth(_)), "{err:?}");
    assert!(err.to_string().contains("check User, Pass"), "{err}");
    assert!(!err.is_transient(), "a wrong password is not retried");
}

#[tokio::test]
async fn changed_host_key_is_refused_with_its_fingerprint() {
    let real = support::env("AFT_TEST_SFTP_HOSTKEY_SHA256");
    let mut cfg = support::sftp_config();
    cfg.host_key_sha256 = Some("SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU".into());
    let err = SftpFs::new(cfg.clone()).connect().await.unwrap_err();
    match &err {
        VfsError::HostKey { fingerprint, .. } => assert_eq!(fingerprint, &real),
        other => panic!("expected HostKey, got {other:?}"),
    }
    assert!(
        err.to_string().contains(&real),
        "the message tells the user what to pin: {err}"
    );
    cfg.host_key_sha256 = None;
    assert!(
        matches!(
            SftpFs::new(cfg.clone()).connect().await,
            Err(VfsError::HostKey { .. })
        ),
        "unpinned is refused"
    );
    cfg.accept_any_host_key = true;
    SftpFs::new(cfg)
        .connect()
        .await
        .expect("explicitly accepting any key connects");
}

#[tokio::test]
async fn key_auth_through_open_backend_fields() {
    let fields = serde_json::json!({
        "Host": support::env("AFT_TEST_SFTP_ADDR"),
        "User": support::env("AFT_TEST_SFTP_USER"),
        "KeyFile": support::env("AFT_TEST_SFTP_KEY"),
        "HostKeySHA256": support::env("AFT_TEST_SFTP_HOSTKEY_SHA256")
            .trim_start_matches("SHA256:"),
        "BaseDir": support::env("AFT_TEST_SFTP_HOME"),
    });
    let vfs = aft_vfs::open_backend("sftp", &fields, &|_| None).unwrap();
    let path = format!("/key-{:x}.txt", rand::random::<u64>());
    write_all(&*vfs, &path, b"by key").await.unwrap();
    assert_eq!(read_all(&*vfs, &path).await.unwrap(), b"by key");
    vfs.remove_file(&path).await.unwrap();

    let with_secret = serde_json::json!({
        "Host": support::env("AFT_TEST_SFTP_ADDR"), "User": "u", "PassFromSecret": "missing",
    });
    let err = aft_vfs::open_backend("sftp", &with_secret, &|_| None)
        .err()
        .expect("unknown secret is an error");
    assert!(err.to_string().contains("\"missing\""), "{err}");
}

#[tokio::test]
async fn encrypted_rsa_key_needs_its_passphrase() {
    let key = std::fs::read_to_string(support::env("AFT_TEST_SFTP_KEY_ENC")).unwrap();
    let mut cfg = support::sftp_config();
    cfg.password = None;
    cfg.private_key = Some(key.into());
    cfg.key_passphrase = Some(support::env("AFT_TEST_SFTP_KEY_ENC_PASS").into());
    SftpFs::new(cfg.clone())
        .connect()
        .await
        .expect("encrypted RSA key with its passphrase logs in");
    cfg.key_passphrase = Some("wrong passphrase".into());
    let err = SftpFs::new(cfg).connect().await.unwrap_err();
    assert!(matches!(err, VfsError::Auth(_)), "{err:?}");
    assert!(
        err.to_string().contains("KeyFilePass"),
        "the message says what to set: {err}"
    );
}

#[tokio::test]
async fn cancel_check_halts_a_multi_file_transfer() {
    let (_t, fs, root) = tmp();
    std::fs::create_dir_all(format!("{root}/in")).unwrap();
    for i in 0..20 {
        std::fs::write(format!("{root}/in/f{i:02}"), "x").unwrap();
    }
    let halted = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = halted.clone();
    let opts = TransferOptions {
        parallel: 1,
        cancel: Some(Arc::new(move || {
            flag.load(std::sync::atomic::Ordering::SeqCst)
        })),
        ..Default::default()
    };
    let out = Outcomes::default();
    let seen = out.clone();
    let sink = move |o: &TransferOutcome| {
        seen.0.lock().unwrap().push(o.clone());
        if seen.0.lock().unwrap().len() == 3 {
            halted.store(true, std::sync::atomic::Ordering::SeqCst);
        }
    };
    let err = copy_tree(
        &fs,
        &format!("{root}/in/*"),
        &fs,
        &format!("{root}/out"),
        &opts,
        &sink,
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("halt"), "{err}");
    let copied = names(Path::new(&format!("{root}/out"))).len();
    assert!(
        (3..20).contains(&copied),
        "stopped early: {copied} files copied"
    );
    assert_eq!(out.all().len(), copied);
}

#[tokio::test]
async fn copy_file_creates_missing_target_folders() {
    let sftp = support::sftp();
    let dir = remote_dir(&sftp).await;
    let (_t, fs, root) = tmp();
    std::fs::write(format!("{root}/one.txt"), "one").unwrap();
    let target = format!("{dir}/new/deeper/one.txt");
    let o = copy_file(
        &fs,
        &format!("{root}/one.txt"),
        &sftp,
        &target,
        &TransferOptions::default(),
        &no_sink,
    )
    .await;
    assert_eq!(o.outcome, Outcome::Ok, "{o:?}");
    assert_eq!(read_all(&sftp, &target).await.unwrap(), b"one");
    sftp.remove_all(&dir).await.unwrap();
}
