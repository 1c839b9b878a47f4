//! Two-factor sign-in through the real binary: an admin enrols over HTTPS (the test computes
//! codes from the enrolled secret, as an authenticator app does), sign-in then needs a code
//! or a one-time recovery code, `require-two-factor` confines admins without one to setting
//! it up, and `aft admin reset-2fa` turns it off.

mod support;

use reqwest::Method;
use serde_json::{Value, json};
use support::{Aft, Service, sign_in, text};
use totp_rs::{Algorithm, Builder, Secret};

/// The code an authenticator app shows now for `secret` (base32).
fn code_now(secret: &str) -> String {
    Builder::new()
        .with_algorithm(Algorithm::SHA1)
        .with_digits(6)
        .with_skew(1)
        .with_step_duration(30)
        .with_secret(Secret::try_from_base32(secret).unwrap())
        .build()
        .unwrap()
        .generate_current()
        .to_string()
}

async fn sign_in_with(
    service: &Service,
    user: &str,
    password: &str,
    code: Option<&str>,
) -> (u16, String, Value) {
    support::sign_in_with(
        &service.client(),
        &service.base(),
        &json!({"username": user, "password": password, "code": code}),
    )
    .await
}

async fn as_session(
    service: &Service,
    (cookie, csrf): (&str, &str),
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = service
        .client()
        .request(method, format!("{}{path}", service.base()))
        .header("Cookie", cookie)
        .header("X-CSRF-Token", csrf);
    if let Some(body) = body {
        req = req.json(&body);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

#[tokio::test]
async fn enrol_then_sign_in_with_a_code_or_a_recovery_code_and_reset_from_the_shell() {
    let aft = Aft::new();
    for user in ["ada", "bob"] {
        let out = aft.run_with_input(&["admin", "add", user], &format!("{user}-password"));
        assert!(out.status.success(), "{}", text(&out));
    }
    let service = aft.serve();
    let http = service.client();
    let (status, cookie, body) = sign_in(&http, &service.base(), "ada", "ada-password").await;
    assert_eq!(status, 200, "{body}");
    let csrf = body["csrfToken"].as_str().unwrap().to_string();
    let ada = (cookie.as_str(), csrf.as_str());

    // Enrolment: a secret and its QR code, confirmed with a code computed from it.
    let (status, enrolment) =
        as_session(&service, ada, Method::POST, "/v1/session/two-factor", None).await;
    assert_eq!(status, 200, "{enrolment}");
    let secret = enrolment["secret"].as_str().unwrap().to_string();
    assert!(
        enrolment["otpauthUrl"]
            .as_str()
            .unwrap()
            .starts_with(&format!(
                "otpauth://totp/aft:ada?secret={secret}&issuer=aft"
            ))
    );
    assert!(
        enrolment["qrCode"]
            .as_str()
            .unwrap()
            .starts_with("data:image/svg+xml;base64,")
    );
    let (status, refused) = as_session(
        &service,
        ada,
        Method::PUT,
        "/v1/session/two-factor",
        Some(json!({"code": "000000"})),
    )
    .await;
    assert_eq!(status, 400, "a wrong code does not turn it on: {refused}");
    let (status, enabled) = as_session(
        &service,
        ada,
        Method::PUT,
        "/v1/session/two-factor",
        Some(json!({"code": code_now(&secret)})),
    )
    .await;
    assert_eq!(status, 200, "{enabled}");
    let recovery: Vec<String> = enabled["recoveryCodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_string())
        .collect();
    assert_eq!(recovery.len(), 10);
    let list: Value = serde_json::from_str(&aft.ok(&["admin", "list", "--json"])).unwrap();
    assert_eq!(list[0]["twoFactor"], true);
    assert_eq!(list[1]["twoFactor"], false);

    // Sign-in: the password alone, or with a wrong code, is refused; the app's code works.
    let (status, _, body) = sign_in_with(&service, "ada", "ada-password", None).await;
    assert_eq!(status, 401);
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("two-factor code required"),
        "{body}"
    );
    let (status, _, _) = sign_in_with(&service, "ada", "ada-password", Some("123456")).await;
    assert_eq!(status, 401);
    let (status, _, body) =
        sign_in_with(&service, "ada", "ada-password", Some(&code_now(&secret))).await;
    assert_eq!(status, 200, "{body}");
    // A recovery code works once.
    let (status, _, _) = sign_in_with(&service, "ada", "ada-password", Some(&recovery[3])).await;
    assert_eq!(status, 200);
    let (status, _, _) = sign_in_with(&service, "ada", "ada-password", Some(&recovery[3])).await;
    assert_eq!(status, 401, "a recovery code is used up");
    // A code does not stand in for the password.
    let (status, _, _) =
        sign_in_with(&service, "ada", "wrong-password", Some(&code_now(&secret))).await;
    assert_eq!(status, 401);

    // The setting: bob, without a second factor, may only set one up.
    aft.ok(&["settings", "set", "require-two-factor", "true"]);
    let (status, bob_cookie, body) = sign_in_with(&service, "bob", "bob-password", None).await;
    assert_eq!(status, 200, "{body}");
    let bob_csrf = body["csrfToken"].as_str().unwrap().to_string();
    let bob = (bob_cookie.as_str(), bob_csrf.as_str());
    let (status, body) = as_session(&service, bob, Method::GET, "/v1/scripts", None).await;
    assert_eq!(status, 403, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("two-factor sign-in is required")
    );
    let (status, body) =
        as_session(&service, bob, Method::POST, "/v1/session/two-factor", None).await;
    assert_eq!(status, 200, "{body}");
    let bob_secret = body["secret"].as_str().unwrap().to_string();
    let (status, body) = as_session(
        &service,
        bob,
        Method::PUT,
        "/v1/session/two-factor",
        Some(json!({"code": code_now(&bob_secret)})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (status, _) = as_session(&service, bob, Method::GET, "/v1/scripts", None).await;
    assert_eq!(status, 200);

    // A lost phone: the shell turns it off; the password alone works again.
    aft.ok(&["settings", "set", "require-two-factor", "false"]);
    aft.ok(&["admin", "reset-2fa", "ada"]);
    let (status, _, body) = sign_in_with(&service, "ada", "ada-password", None).await;
    assert_eq!(status, 200, "{body}");

    // Every step is in the audit trail, without the secret or the codes.
    let trail = aft.ok(&["audit", "export", "--kind", "admin"]);
    assert!(
        !trail.contains(&secret) && !trail.contains(&recovery[0]),
        "{trail}"
    );
    let turned_on = trail
        .lines()
        .filter(|l| l.contains("\"twoFactor\":true") && l.contains("\"action\":\"admin.updated\""))
        .count();
    assert!(
        turned_on >= 3,
        "enrolments and the reset are recorded: {trail}"
    );
}
