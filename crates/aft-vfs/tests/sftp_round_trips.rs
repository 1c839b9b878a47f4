//! What the SFTP backend does to save round trips must not change what it reports, against
//! the real OpenSSH sshd started by `ci/peers/sshd.sh`: the size checked after a write is
//! the server's after every write, a small read gets its whole file, and a folder taken as
//! existing from what the connection saw lately is made again when it is gone.

mod support;

use aft_vfs::{Vfs, WriteMode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A folder of its own below the server home, as a VFS path.
fn unique_dir(name: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_nanos();
    format!("/round-trips-{name}-{}-{nanos}", std::process::id())
}

/// The same path on the server's disk (the test sshd runs on this machine).
fn on_disk(vfs_path: &str) -> std::path::PathBuf {
    std::path::PathBuf::from(format!("{}{vfs_path}", support::env("AFT_TEST_SFTP_HOME")))
}

async fn put(fs: &dyn Vfs, path: &str, data: &[u8]) {
    let mut w = fs.write(path, WriteMode::Create).await.expect("open");
    w.write_all(data).await.expect("write");
    w.shutdown().await.expect("close");
}

async fn get(fs: &dyn Vfs, path: &str) -> Vec<u8> {
    let mut r = fs.read(path, 0, None).await.expect("open for reading");
    let mut out = Vec::new();
    r.read_to_end(&mut out).await.expect("read");
    out
}

#[tokio::test]
async fn the_size_seen_after_a_write_is_the_servers_after_every_write() {
    let fs = support::sftp();
    let dir = unique_dir("size");
    fs.mkdir_all(&dir).await.expect("mkdir");
    // Several full requests and a short last one, then an empty file (no last write).
    let data: Vec<u8> = (0..(3 * 65536 + 5)).map(|i| (i % 251) as u8).collect();
    for (name, body) in [("many.bin", &data[..]), ("empty.bin", &[][..])] {
        let path = format!("{dir}/{name}");
        put(&fs, &path, body).await;
        let seen = fs.stat(&path).await.expect("stat");
        assert_eq!(seen.size, body.len() as u64, "{name}: stat after the close");
        let disk = std::fs::metadata(on_disk(&path)).expect("on disk").len();
        assert_eq!(disk, body.len() as u64, "{name}: the file on the server");
        assert_eq!(get(&fs, &path).await, body, "{name}: read back");
    }
    // A second stat asks the server again and sees a change made meanwhile.
    let path = format!("{dir}/many.bin");
    std::fs::write(on_disk(&path), b"shorter").expect("change on the server");
    assert_eq!(fs.stat(&path).await.expect("stat").size, 7);
    fs.remove_all(&dir).await.expect("clean up");
    fs.close().await.expect("close");
}

#[tokio::test]
async fn a_small_read_gets_its_whole_file_and_a_folder_is_refused() {
    let fs = support::sftp();
    let dir = unique_dir("read");
    fs.mkdir_all(&dir).await.expect("mkdir");
    let body: Vec<u8> = (0..8192u32).map(|i| (i * 7 % 256) as u8).collect();
    std::fs::write(on_disk(&format!("{dir}/small.dat")), &body).expect("put on the server");
    assert_eq!(get(&fs, &format!("{dir}/small.dat")).await, body);
    assert!(
        fs.read(&dir, 0, None).await.is_err(),
        "reading a folder is an error"
    );
    assert!(matches!(
        fs.read(&format!("{dir}/missing"), 0, None).await,
        Err(aft_vfs::VfsError::NotFound(_))
    ));
    fs.remove_all(&dir).await.expect("clean up");
    fs.close().await.expect("close");
}

#[tokio::test]
async fn a_folder_removed_by_another_client_is_made_again() {
    let fs = support::sftp();
    let dir = format!("{}/sub", unique_dir("gone"));
    fs.mkdir_all(&dir).await.expect("mkdir");
    put(&fs, &format!("{dir}/a.txt"), b"first").await;
    // Another client removes the folder the connection has just seen.
    std::fs::remove_dir_all(on_disk(&dir)).expect("remove on the server");
    fs.mkdir_all(&dir).await.expect("mkdir again");
    put(&fs, &format!("{dir}/b.txt"), b"second").await;
    assert_eq!(get(&fs, &format!("{dir}/b.txt")).await, b"second");
    assert!(on_disk(&format!("{dir}/b.txt")).is_file());
    fs.remove_all(&aft_vfs::parent(&dir))
        .await
        .expect("clean up");
    fs.close().await.expect("close");
}
