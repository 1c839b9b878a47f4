//! `HttpCli` against an HTTPS server of the test's own (axum + rustls, rcgen certificates),
//! and `SendMail` against aiosmtpd (ci/peers/smtp.sh: plain, STARTTLS + AUTH, implicit TLS
//! + AUTH).

mod library_support;

use std::time::{Duration, Instant};

use aft_engine::MemoryHost;
use library_support::{https_server, js, peer_env, run};

#[test]
fn http_get_post_json_bytes_headers_and_every_verb_over_verified_tls() {
    let srv = https_server();
    let d = tempfile::tempdir().unwrap();
    let saved = d.path().join("saved.bin").to_string_lossy().into_owned();
    let ran = run(
        &format!(
            r#"
            const base = {base}, ca = {ca};
            const r = new HttpCli().Url(base + '/hello').CAFile(ca).Timeout(10).Get();
            check(r.IsValid() && r.StatusCode() === 200 && r.BodyAsString() === 'hello world', 'GET ' + r.Error());
            check(r.Header('X-Test') === 'yes' && r.Headers()['x-test'] === 'yes', 'response header');
            const p = new HttpCli().Url(base + '/echo').CAFile(ca).Header('X-Custom', 'abc').ReqBodyJSON({{a: 1}}).Post();
            check(p.StatusCode() === 201 && p.BodyAsJSON().a === 1, 'POST JSON');
            check(p.Header('x-seen-content-type') === 'application/json' && p.Header('x-seen-custom') === 'abc', 'request headers');
            const raw = new HttpCli().Url(base + '/echo').CAFile(ca).ReqBody('plain text').Post();
            check(raw.BodyAsString() === 'plain text', 'ReqBody');
            const j = new HttpCli().Url(base + '/json').CAFile(ca).Get().BodyAsJSON();
            check(j.name === 'aft' && j.n === 3, 'BodyAsJSON');
            const b = new HttpCli().Url(base + '/bytes').CAFile(ca).Get().BodyAsBytes();
            check(b instanceof Uint8Array && b.length === 256 && b[255] === 255, 'BodyAsBytes');
            const s = new HttpCli().Url(base + '/bytes').CAFile(ca).SaveBodyTo({saved}).Get();
            check(s.IsValid() && FileInfo({saved}).Size === 256, 'SaveBodyTo');
            for (const verb of ['PUT', 'PATCH', 'DELETE']) {{
                const m = new HttpCli().Url(base + '/method').CAFile(ca).Do(verb);
                check(m.BodyAsString() === verb, verb);
            }}
            check(new HttpCli().Url(base + '/method').CAFile(ca).Put().BodyAsString() === 'PUT', 'Put()');
            check(new HttpCli().Url(base + '/method').CAFile(ca).Patch().BodyAsString() === 'PATCH', 'Patch()');
            check(new HttpCli().Url(base + '/method').CAFile(ca).Delete().BodyAsString() === 'DELETE', 'Delete()');
            const h = new HttpCli().Url(base + '/method').CAFile(ca).Head();
            check(h.StatusCode() === 200 && h.Header('x-method') === 'HEAD' && h.BodyAsString() === '', 'HEAD');
            const nf = new HttpCli().Url(base + '/missing').CAFile(ca).Get();
            check(nf.IsValid() && nf.StatusCode() === 404, 'a 404 is still a valid response');
            check(new HttpCli().Url(base + '/auth').CAFile(ca).BasicAuth('user', 'pa55').Get().BodyAsString() === 'welcome', 'BasicAuth');
            "#,
            base = js(&srv.base),
            ca = js(&srv.ca_file),
            saved = js(&saved),
        ),
        MemoryHost::new(),
    );
    ran.assert_ok();
}

#[test]
fn http_refuses_an_untrusted_certificate_unless_told_and_times_out_cleanly() {
    let srv = https_server();
    let start = Instant::now();
    let ran = run(
        &format!(
            r#"
            const base = {base};
            const r = new HttpCli().Url(base + '/hello').Get();
            check(!r.IsValid() && r.StatusCode() === 0, 'untrusted certificate must fail');
            check(/certificate|UnknownIssuer/i.test(r.Error()), 'error names the certificate: ' + r.Error());
            check(new HttpCli().Url(base + '/hello').InsecureSkipVerify().Get().BodyAsString() === 'hello world', 'InsecureSkipVerify');
            const slow = new HttpCli().Url(base + '/slow').CAFile({ca}).Timeout(0.5).Get();
            check(!slow.IsValid() && slow.Error().includes('timed out'), 'timeout: ' + slow.Error());
            const refused = new HttpCli().Url('https://127.0.0.1:9/x').Timeout(5).Get();
            check(!refused.IsValid(), 'refused');
            let threw = false;
            try {{ new HttpCli().Get(); }} catch (e) {{ threw = String(e).includes('no URL'); }}
            check(threw, 'a request without a URL is a programming error');
            "#,
            base = js(&srv.base),
            ca = js(&srv.ca_file),
        ),
        MemoryHost::new(),
    );
    ran.assert_ok();
    assert!(
        start.elapsed() < Duration::from_secs(20),
        "{:?}",
        start.elapsed()
    );
    let w = ran.warnings().join("\n");
    assert!(w.contains("HttpCli: GET https://127.0.0.1"), "{w}");
}

/// The stored message whose text contains `marker`, waiting briefly for it to land.
fn stored_mail(marker: &str) -> String {
    let dir = peer_env("AFT_TEST_SMTP_DIR");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "eml") {
                let text = std::fs::read_to_string(&path).unwrap_or_default();
                if text.contains(marker) {
                    return text;
                }
            }
        }
        assert!(Instant::now() < deadline, "no mail with {marker} in {dir}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn marker(name: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{name}-{nanos}")
}

#[test]
fn sendmail_delivers_to_several_recipients_with_an_attachment() {
    let addr = peer_env("AFT_TEST_SMTP_ADDR");
    let d = tempfile::tempdir().unwrap();
    let report = d.path().join("report.csv");
    std::fs::write(&report, "id,amount\n1,10\n").unwrap();
    let subject = marker("nightly");
    run(
        &format!(
            "check(SendMail('aft <aft@example.com>', ['ops@example.com', 'audit@example.com'], {subject}, 'All files sent.', {att}, {{Host: {addr}, TLS: 'none'}}), 'SendMail');",
            subject = js(&subject),
            att = js(&report.to_string_lossy()),
            addr = js(&addr),
        ),
        MemoryHost::new(),
    )
    .assert_ok();
    let mail = stored_mail(&subject);
    assert!(
        mail.contains("X-Aft-Rcpt-To: ops@example.com,audit@example.com"),
        "{mail}"
    );
    assert!(mail.contains("X-Aft-Mail-From: aft@example.com"), "{mail}");
    assert!(mail.contains("All files sent."), "{mail}");
    assert!(mail.contains("filename=\"report.csv\""), "{mail}");
    let attachment = &mail[mail.find("filename=\"report.csv\"").unwrap()..];
    assert!(
        attachment.contains("id,amount") && attachment.contains("1,10"),
        "{mail}"
    );
}

#[test]
fn sendmail_uses_the_settings_with_starttls_auth_and_a_password_secret() {
    let addr = peer_env("AFT_TEST_SMTP_STARTTLS_ADDR");
    let (host, port) = addr.rsplit_once(':').unwrap();
    let host_settings = MemoryHost::new()
        .with_setting("smtp-host", host)
        .with_setting("smtp-port", port)
        .with_setting("smtp-tls", "starttls")
        .with_setting("smtp-user", &peer_env("AFT_TEST_SMTP_USER"))
        .with_setting("smtp-password-secret", "smtp-pass")
        .with_setting("smtp-ca-file", &peer_env("AFT_TEST_SMTP_CA"))
        .with_setting("smtp-from", "robot@example.com")
        .with_secret("smtp-pass", &peer_env("AFT_TEST_SMTP_PASS"));
    let subject = marker("starttls");
    let ran = run(
        &format!(
            "check(SendMail('', 'ops@example.com', {subject}, '<html><body><b>done</b></body></html>', ''), 'SendMail');",
            subject = js(&subject),
        ),
        host_settings,
    );
    ran.assert_ok();
    let mail = stored_mail(&subject);
    assert!(mail.contains("X-Aft-Listener: starttls"), "{mail}");
    assert!(mail.contains("X-Aft-Auth-User: aft"), "{mail}");
    assert!(
        mail.contains("X-Aft-Mail-From: robot@example.com"),
        "{mail}"
    );
    assert!(mail.contains("text/html"), "{mail}");
}

#[test]
fn sendmail_to_a_named_server_with_implicit_tls() {
    let addr = peer_env("AFT_TEST_SMTP_TLS_ADDR");
    let host = MemoryHost::new()
        .with_setting("partner.smtp-host", &addr)
        .with_setting("partner.smtp-tls", "tls")
        .with_setting("partner.smtp-user", &peer_env("AFT_TEST_SMTP_USER"))
        .with_setting("partner.smtp-password-secret", "partner-smtp")
        .with_setting("partner.smtp-ca-file", &peer_env("AFT_TEST_SMTP_CA"))
        .with_secret("partner-smtp", &peer_env("AFT_TEST_SMTP_PASS"));
    let subject = marker("implicit");
    run(
        &format!(
            "check(SendMail('aft@example.com', 'partner@example.com', {subject}, 'hi', '', {{Server: 'partner'}}), 'SendMail');",
            subject = js(&subject),
        ),
        host,
    )
    .assert_ok();
    let mail = stored_mail(&subject);
    assert!(mail.contains("X-Aft-Listener: tls"), "{mail}");
    assert!(mail.contains("X-Aft-Auth-User: aft"), "{mail}");
}

#[test]
fn sendmail_failures_return_false_with_the_reason() {
    let tls_addr = peer_env("AFT_TEST_SMTP_TLS_ADDR");
    let ca = peer_env("AFT_TEST_SMTP_CA");
    // A port nothing listens on: bind one, then free it.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let host = MemoryHost::new().with_secret("bad", "wrong-password");
    let start = Instant::now();
    let ran = run(
        &format!(
            r#"
            check(SendMail('a@example.com', 'b@example.com', 's', 'b', '', {{Host: {closed}, TLS: 'none', Timeout: 5}}) === false, 'unreachable');
            check(SendMail('a@example.com', 'b@example.com', 's', 'b', '', {{Host: {tls}, TLS: 'tls', Timeout: 5}}) === false, 'untrusted certificate');
            check(SendMail('a@example.com', 'b@example.com', 's', 'b', '', {{Host: {tls}, TLS: 'tls', CAFile: {ca}, User: 'aft', PasswordFromSecret: 'bad', Timeout: 5}}) === false, 'wrong password');
            check(SendMail('a@example.com', 'b@example.com', 's', 'b', '') === false, 'no server configured');
            check(SendMail('a@example.com', 'b@example.com', 's', 'b', '/no/such/file.pdf', {{Host: {closed}, TLS: 'none'}}) === false, 'missing attachment');
            "#,
            closed = js(&closed.to_string()),
            tls = js(&tls_addr),
            ca = js(&ca),
        ),
        host,
    );
    ran.assert_ok();
    assert!(
        start.elapsed() < Duration::from_secs(30),
        "{:?}",
        start.elapsed()
    );
    let w = ran.warnings();
    assert_eq!(w.len(), 5, "{w:#?}");
    assert!(
        w[0].contains(&closed.to_string()) && w[0].to_lowercase().contains("refused"),
        "{}",
        w[0]
    );
    assert!(w[1].to_lowercase().contains("certificate"), "{}", w[1]);
    assert!(
        w[2].contains("535") || w[2].to_lowercase().contains("auth"),
        "{}",
        w[2]
    );
    assert!(w[3].contains("smtp-host"), "{}", w[3]);
    assert!(w[4].contains("/no/such/file.pdf"), "{}", w[4]);
    assert!(
        !ran.log().contains("wrong-password"),
        "a password leaked into the log"
    );
}

#[test]
fn halting_the_job_abandons_a_running_http_request() {
    let srv = https_server();
    let halt = aft_engine::HaltFlag::new();
    let raiser = halt.clone();
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        raiser.raise();
    });
    let start = Instant::now();
    let ran = library_support::run_with(
        &format!(
            "new HttpCli().Url({}).CAFile({}).Timeout(60).Get(); Log('after');",
            js(&format!("{}/slow", srv.base)),
            js(&srv.ca_file)
        ),
        MemoryHost::new(),
        halt,
    );
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(ran.outcome, aft_engine::Outcome::Halted, "{}", ran.log());
    assert!(ran.log().contains("the job was halted"), "{}", ran.log());
}
