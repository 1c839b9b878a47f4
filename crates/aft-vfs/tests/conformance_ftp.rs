//! The FTP backend over plain FTP, through the shared conformance suite, against two real
//! servers: vsftpd (`ci/peers/vsftpd.sh`; no MLSD, so listings are parsed from LIST) and
//! pyftpdlib (`ci/peers/pyftpdlib.sh`; MLSD/MLST and MFMT).

use std::sync::Arc;

use aft_vfs::{Vfs, VfsError};

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: run the tests with ci/test.sh, which starts the FTP servers and exports it")
    })
}

/// vsftpd: LIST parsing, SIZE/MDTM for stat.
mod vsftpd_list {
    use super::*;

    pub(super) fn fields() -> serde_json::Value {
        serde_json::json!({
            "Host": env("AFT_TEST_FTP_ADDR"),
            "User": env("AFT_TEST_FTP_USER"),
            "PassFromSecret": "ftp-pass",
            "TLSMode": "TLS_MODE_NONE",
        })
    }

    pub(super) fn secrets(name: &str) -> Option<String> {
        (name == "ftp-pass").then(|| env("AFT_TEST_FTP_PASS"))
    }

    async fn ftp() -> Arc<dyn Vfs> {
        aft_vfs::open_backend("ftp", &fields(), &secrets).expect("FTP backend from fields")
    }

    aft_vfs::conformance_suite!(ftp);
}

/// pyftpdlib: MLSD listings, MLST stat, MFMT set_mtime.
mod pyftpdlib_mlsd {
    use super::*;

    async fn ftp() -> Arc<dyn Vfs> {
        let fields = serde_json::json!({
            "Host": env("AFT_TEST_FTP_MLSD_ADDR"),
            "User": env("AFT_TEST_FTP_MLSD_USER"),
            "Pass": env("AFT_TEST_FTP_MLSD_PASS"),
        });
        aft_vfs::open_backend("ftp", &fields, &|_| None).expect("FTP backend from fields")
    }

    aft_vfs::conformance_suite!(ftp);

    #[tokio::test]
    async fn mfmt_server_declares_set_mtime_once_connected() {
        let fields = serde_json::json!({
            "Host": env("AFT_TEST_FTP_MLSD_ADDR"),
            "User": env("AFT_TEST_FTP_MLSD_USER"),
            "Pass": env("AFT_TEST_FTP_MLSD_PASS"),
        });
        let cfg = aft_vfs::ftp::FtpConfig::from_fields(&aft_vfs::config::Fields::new(
            "ftp",
            &fields,
            &|_| None,
        ))
        .expect("config");
        let vfs = aft_vfs::ftp::FtpVfs::connect(cfg).await.expect("connect");
        assert!(
            vfs.capabilities().set_mtime,
            "pyftpdlib announces MFMT in FEAT"
        );
    }
}

#[tokio::test]
async fn wrong_password_is_an_auth_error_naming_the_server() {
    let mut fields = vsftpd_list::fields();
    fields.as_object_mut().unwrap().remove("PassFromSecret");
    fields["Pass"] = "not-the-password".into();
    let vfs = aft_vfs::open_backend("ftp", &fields, &|_| None).expect("backend");
    let err = vfs
        .stat("/")
        .await
        .and(vfs.stat("/x").await)
        .expect_err("wrong password");
    assert!(matches!(err, VfsError::Auth(_)), "{err:?}");
    assert!(err.to_string().contains(&env("AFT_TEST_FTP_ADDR")), "{err}");
}

#[tokio::test]
async fn partial_read_then_full_read_reuse_the_handle() {
    // A ranged read abandons its transfer half way; the next operations must still work.
    let vfs = aft_vfs::open_backend("ftp", &vsftpd_list::fields(), &vsftpd_list::secrets)
        .expect("backend");
    let dir = format!("/partial-{}", std::process::id());
    let path = format!("{dir}/f.bin");
    let data: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    vfs.mkdir_all(&dir).await.expect("mkdir");
    aft_vfs::write_all(&*vfs, &path, &data)
        .await
        .expect("write");
    for _ in 0..3 {
        let mut r = vfs.read(&path, 5, Some(7)).await.expect("ranged read");
        let mut buf = Vec::new();
        tokio::io::AsyncReadExt::read_to_end(&mut r, &mut buf)
            .await
            .expect("read");
        assert_eq!(buf, &data[5..12]);
    }
    assert_eq!(
        aft_vfs::read_all(&*vfs, &path).await.expect("full read"),
        data
    );
    vfs.remove_all(&dir).await.expect("cleanup");
}
