//! A big file over several SFTP connections (`Streams` = 4) when one of them breaks, against
//! the real sshd of `ci/peers/sshd.sh` through a proxy that cuts every connection after a
//! share of the file: the transfer fails, leaves no final file (only its temp name at the
//! target), and the next run lands the file byte for byte, its SHA-256 the source's,
//! whatever the broken run left (an upload's temp written by several connections may have
//! gaps, which the resume's byte-for-byte check of the kept part must catch).

mod support;

use aft_vfs::local::LocalFs;
use aft_vfs::sftp::SftpFs;
use aft_vfs::transfer::{Outcome, TransferOptions, TransferOutcome, copy_file};
use aft_vfs::{Vfs, read_all};

/// 40 MiB and an odd end: past the 16 MiB from which streams are used.
const SIZE: usize = 40 * 1024 * 1024 + 4321;

/// Bytes each connection of an upload may carry before the proxy cuts it: an upload's first
/// connection carries the first 16 MiB alone and then its turns among four, so it passes
/// 20 MiB after the other streams joined, however early they join.
const UPLOAD_CUT_AFTER: u64 = 20 * 1024 * 1024;

/// The same for a download, whose streams join from its first request: four connections
/// carry the file's 40 MiB, so one of them passes 9 MiB however the turns fall (a cut at
/// 20 MiB missed when the others joined early and the first carried under 20).
const DOWNLOAD_CUT_AFTER: u64 = 9 * 1024 * 1024;

fn no_sink(_: &TransferOutcome) {}

fn streams(host: Option<&str>) -> SftpFs {
    let mut cfg = support::sftp_config();
    if let Some(host) = host {
        cfg.host = host.to_string();
    }
    cfg.streams = Some(4);
    cfg.timeout_secs = 5;
    SftpFs::new(cfg)
}

fn once() -> TransferOptions {
    TransferOptions {
        retries: 0,
        ..TransferOptions::default()
    }
}

fn local_names(dir: &std::path::Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[tokio::test]
async fn a_multi_stream_upload_cut_midway_is_landed_whole_by_the_next_run() {
    let base = support::sftp();
    let dir = format!("/streams-up-{:016x}", rand::random::<u64>());
    base.mkdir_all(&dir).await.unwrap();
    let proxy = support::CutProxy::start(
        &support::env("AFT_TEST_SFTP_ADDR"),
        UPLOAD_CUT_AFTER,
        usize::MAX,
    )
    .await;
    let cut = streams(Some(&proxy.addr));
    let local_dir = tempfile::tempdir().unwrap();
    let local = LocalFs::new("/");
    let data = support::xorshift_bytes(SIZE, 0x9E37_79B9_7F4A_7C15);
    let src = local_dir
        .path()
        .join("big.bin")
        .to_string_lossy()
        .into_owned();
    std::fs::write(&src, &data).unwrap();
    let dst = format!("{dir}/big.bin");

    let o = copy_file(&local, &src, &cut, &dst, &once(), &no_sink).await;
    assert!(matches!(o.outcome, Outcome::Failed(_)), "{o:?}");
    assert!(
        proxy.accepted.load(std::sync::atomic::Ordering::SeqCst) >= 2,
        "the upload used one connection only"
    );
    let left = support::sftp_names(&base, &dir).await;
    assert!(
        left.len() == 1 && left[0].starts_with("big.bin.aft-tmp-"),
        "only a temp name, never the final one: {left:?}"
    );

    let whole = streams(None);
    let o = copy_file(&local, &src, &whole, &dst, &once(), &no_sink).await;
    assert_eq!(o.outcome, Outcome::Ok, "{o:?}");
    assert_eq!(
        o.hash.as_ref().map(|d| d.hex.as_str()),
        Some(blake3::hash(&data).to_hex().as_str()),
        "the record's hash"
    );
    let landed = read_all(&base, &dst).await.unwrap();
    assert_eq!(landed.len(), SIZE);
    assert!(landed == data, "the landed file differs from the source");
    assert_eq!(support::sftp_names(&base, &dir).await, ["big.bin"]);
    base.remove_all(&dir).await.unwrap();
    whole.close().await.unwrap();
}

#[tokio::test]
async fn a_multi_stream_download_cut_midway_is_landed_whole_by_the_next_run() {
    let base = support::sftp();
    let dir = format!("/streams-down-{:016x}", rand::random::<u64>());
    base.mkdir_all(&dir).await.unwrap();
    let data = support::xorshift_bytes(SIZE, 0x9E37_79B9_7F4A_7C15);
    let src = format!("{dir}/big.bin");
    aft_vfs::write_all(&base, &src, &data).await.unwrap();
    let proxy = support::CutProxy::start(
        &support::env("AFT_TEST_SFTP_ADDR"),
        DOWNLOAD_CUT_AFTER,
        usize::MAX,
    )
    .await;
    let cut = streams(Some(&proxy.addr));
    let local_dir = tempfile::tempdir().unwrap();
    let local = LocalFs::new("/");
    let dst = local_dir
        .path()
        .join("big.bin")
        .to_string_lossy()
        .into_owned();

    let o = copy_file(&cut, &src, &local, &dst, &once(), &no_sink).await;
    assert!(matches!(o.outcome, Outcome::Failed(_)), "{o:?}");
    assert!(
        proxy.accepted.load(std::sync::atomic::Ordering::SeqCst) >= 2,
        "the download used one connection only"
    );
    assert!(
        !local_names(local_dir.path()).contains(&"big.bin".to_string()),
        "no final file after a failed download"
    );

    let whole = streams(None);
    let o = copy_file(&whole, &src, &local, &dst, &once(), &no_sink).await;
    assert_eq!(o.outcome, Outcome::Ok, "{o:?}");
    assert_eq!(
        o.hash.as_ref().map(|d| d.hex.as_str()),
        Some(blake3::hash(&data).to_hex().as_str()),
        "the record's hash"
    );
    assert!(
        std::fs::read(&dst).unwrap() == data,
        "the downloaded file differs from the source"
    );
    assert_eq!(local_names(local_dir.path()), ["big.bin"]);
    base.remove_all(&dir).await.unwrap();
    whole.close().await.unwrap();
}
