//! The FTP backend over TLS, through the shared conformance suite: explicit FTPS (`AUTH TLS`)
//! on vsftpd (`ci/peers/vsftpd.sh`) and pyftpdlib (`ci/peers/pyftpdlib.sh`), implicit FTPS
//! on vsftpd (`ci/peers/vsftpd_implicit.sh`); certificates are checked against the test CA
//! given as `TLSCAFile`, and refused without it unless `TLSInsecure` is set.

use std::sync::Arc;

use aft_vfs::{Vfs, VfsError};

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: run the tests with ci/test.sh, which starts the FTP servers and exports it")
    })
}

fn vsftpd_fields(addr_var: &str, mode: &str) -> serde_json::Value {
    serde_json::json!({
        "Host": env(addr_var),
        "User": env("AFT_TEST_FTP_USER"),
        "Pass": env("AFT_TEST_FTP_PASS"),
        "TLSMode": mode,
        "TLSCAFile": env("AFT_TEST_FTP_CA"),
    })
}

/// Explicit TLS on vsftpd (LIST parsing; vsftpd requires TLS session reuse on data connections).
mod explicit_vsftpd {
    use super::*;

    async fn ftps() -> Arc<dyn Vfs> {
        let fields = vsftpd_fields("AFT_TEST_FTP_ADDR", "TLS_MODE_EXPLICIT");
        aft_vfs::open_backend("ftps", &fields, &|_| None).expect("FTPS backend")
    }

    aft_vfs::conformance_suite!(ftps);
}

/// Implicit TLS on vsftpd (TLS from the first byte, data connections protected).
mod implicit_vsftpd {
    use super::*;

    async fn ftps() -> Arc<dyn Vfs> {
        let fields = vsftpd_fields("AFT_TEST_FTPS_IMPLICIT_ADDR", "TLS_MODE_IMPLICIT");
        aft_vfs::open_backend("ftps", &fields, &|_| None).expect("FTPS backend")
    }

    aft_vfs::conformance_suite!(ftps);
}

/// Explicit TLS on pyftpdlib (MLSD over TLS).
mod explicit_pyftpdlib {
    use super::*;

    async fn ftps() -> Arc<dyn Vfs> {
        let fields = serde_json::json!({
            "Host": env("AFT_TEST_FTP_MLSD_ADDR"),
            "User": env("AFT_TEST_FTP_MLSD_USER"),
            "Pass": env("AFT_TEST_FTP_MLSD_PASS"),
            "TLSMode": "TLS_MODE_EXPLICIT",
            "TLSCAFile": env("AFT_TEST_FTP_CA"),
        });
        aft_vfs::open_backend("ftps", &fields, &|_| None).expect("FTPS backend")
    }

    aft_vfs::conformance_suite!(ftps);
}

#[tokio::test]
async fn untrusted_certificate_is_refused_with_a_hint() {
    let mut fields = vsftpd_fields("AFT_TEST_FTP_ADDR", "TLS_MODE_EXPLICIT");
    fields.as_object_mut().unwrap().remove("TLSCAFile");
    let vfs = aft_vfs::open_backend("ftps", &fields, &|_| None).expect("backend");
    let err = vfs
        .stat("/")
        .await
        .and(vfs.stat("/x").await)
        .expect_err("self-made CA is not trusted");
    let msg = err.to_string();
    assert!(
        msg.contains("TLSCAFile") && msg.contains("TLSInsecure"),
        "{msg}"
    );
    assert!(
        !err.is_transient(),
        "a certificate problem is not worth retrying: {err:?}"
    );
}

#[tokio::test]
async fn tls_insecure_accepts_an_untrusted_certificate_when_asked() {
    let mut fields = vsftpd_fields("AFT_TEST_FTPS_IMPLICIT_ADDR", "TLS_MODE_IMPLICIT");
    fields.as_object_mut().unwrap().remove("TLSCAFile");
    fields["TLSInsecure"] = true.into();
    let vfs = aft_vfs::open_backend("ftps", &fields, &|_| None).expect("backend");
    let root = vfs.stat("/").await.expect("insecure TLS connects");
    assert!(root.is_dir);
}

#[tokio::test]
async fn plain_ftp_to_an_implicit_tls_port_fails_as_a_connection_error() {
    let mut fields = vsftpd_fields("AFT_TEST_FTPS_IMPLICIT_ADDR", "TLS_MODE_NONE");
    fields.as_object_mut().unwrap().remove("TLSCAFile");
    let vfs = aft_vfs::open_backend("ftps", &fields, &|_| None).expect("backend");
    let err = vfs
        .stat("/x")
        .await
        .expect_err("the server speaks TLS first");
    assert!(
        matches!(err, VfsError::Connection { .. } | VfsError::Other(_)),
        "{err:?}"
    );
}
