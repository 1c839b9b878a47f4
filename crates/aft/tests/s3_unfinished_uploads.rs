//! S3 (moto) through the binary: an upload into a folder aborts the unfinished multipart
//! upload of another key there that the server dates more than a day back, a killed run
//! whose key is never uploaded again, and says so in the job log. (The same key's is
//! aborted by its next upload: the fault matrix's kill cells. That an upload begun less
//! than a day ago, another job's still in progress, is left alone is tested in aft-vfs:
//! moto dates every upload 2010-11-10.)

mod support;

use support::{Aft, peer, text};

/// The body of an unsigned `GET` of `url` (moto answers unsigned listings).
async fn get_text(http: &reqwest::Client, url: &str) -> String {
    http.get(url).send().await.unwrap().text().await.unwrap()
}

/// The upload ids of the unfinished multipart uploads under `prefix`.
async fn unfinished(http: &reqwest::Client, bucket_url: &str, prefix: &str) -> Vec<String> {
    let xml = get_text(http, &format!("{bucket_url}?uploads&prefix={prefix}")).await;
    xml.split("<UploadId>")
        .skip(1)
        .filter_map(|s| s.split("</UploadId>").next())
        .map(str::to_string)
        .collect()
}

#[tokio::test]
async fn an_upload_aborts_another_keys_upload_abandoned_over_a_day_ago() {
    let bucket_url = format!(
        "{}/{}",
        peer("AFT_TEST_S3_ENDPOINT"),
        peer("AFT_TEST_S3_BUCKET")
    );
    let folder = format!("abandoned-{}", std::process::id());
    let _ = rustls::crypto::ring::default_provider().install_default();
    let http = reqwest::Client::new();
    let begun = http
        .post(format!("{bucket_url}/{folder}/other.bin?uploads"))
        .send()
        .await
        .unwrap();
    assert!(begun.status().is_success(), "{}", begun.status());
    assert_eq!(unfinished(&http, &bucket_url, &folder).await.len(), 1);
    // Anything else in another folder stays.
    let elsewhere = format!("{folder}-elsewhere");
    http.post(format!("{bucket_url}/{elsewhere}/other.bin?uploads"))
        .send()
        .await
        .unwrap();

    let aft = Aft::allowing_cli_run();
    let src = aft.write("report.csv", "id,total\n1,42\n");
    let q = |s: &str| serde_json::to_string(s).unwrap();
    let script = aft.write(
        "upload.syncjs",
        &format!(
            r#"var cli = new S3Client();
cli.Endpoint = {endpoint};
cli.Bucket = {bucket};
cli.Region = {region};
cli.APIKeyID = {key};
cli.APIKeySecret = {secret};
cli.Options.UploadPolicy = AlwaysOverwrite;
if (!cli.Connect()) {{ Log("cannot connect: " + cli.LastError()); Exit(1); }}
if (!cli.Upload({src}, {dir})) {{ Log("upload failed: " + cli.LastError()); Exit(1); }}
cli.Close();"#,
            endpoint = q(&peer("AFT_TEST_S3_ENDPOINT")),
            bucket = q(&peer("AFT_TEST_S3_BUCKET")),
            region = q(&peer("AFT_TEST_S3_REGION")),
            key = q(&peer("AFT_TEST_S3_KEY_ID")),
            secret = q(&peer("AFT_TEST_S3_SECRET")),
            src = q(&src),
            dir = q(&format!("/{folder}")),
        ),
    );
    let out = aft.run(&["run", "-f", &script]);
    assert!(out.status.success(), "{}", text(&out));
    // Objects are private to unsigned reads; the listing is not.
    let listed = get_text(
        &http,
        &format!("{bucket_url}?list-type=2&prefix={folder}/report.csv"),
    )
    .await;
    assert!(
        listed.contains(&format!("<Key>{folder}/report.csv</Key>"))
            && listed.contains("<Size>14</Size>"),
        "the file landed: {listed}"
    );
    let log = text(&out);
    assert_eq!(
        unfinished(&http, &bucket_url, &format!("{folder}/")).await,
        Vec::<String>::new(),
        "{log}"
    );
    assert!(
        log.contains(&format!(
            "aborted the abandoned multipart upload of {folder}/other.bin begun 2010-11-10"
        )),
        "{log}"
    );
    assert_eq!(unfinished(&http, &bucket_url, &elsewhere).await.len(), 1);
}
