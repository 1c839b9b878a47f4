//! S3 and GCS: unfinished multipart uploads that a killed run left behind.
//!
//! A run that ends normally aborts its own unfinished upload ([`super::upload`]); a process
//! killed mid-upload cannot. So before a new upload of a key starts, the multipart uploads
//! of that very key begun before it are listed (`ListMultipartUploads`) and aborted
//! (`AbortMultipartUpload`): their parts would otherwise stay, invisible and billed, until a
//! lifecycle rule removes them. opendal has neither call, so they are signed here with the
//! signer opendal itself uses (reqsign).
//!
//! GCS: opendal uploads big files with GCS's XML multipart API, which has the same two calls
//! (`GET /BUCKET?uploads`, `DELETE /BUCKET/KEY?uploadId=...`) in S3's XML, authorised with
//! the OAuth token of the `CredentialsFile`. (GCS's JSON-API resumable sessions, the other
//! way to send a big file, cannot be listed; opendal uses them only for conditional writes,
//! which aft does not make.)
//!
//! One listing per folder, not per file: the first upload into a folder lists that folder's
//! unfinished uploads (`prefix` + `delimiter`), and the uploads after it look their key up
//! in that answer for [`FOLDER_LISTING_TTL`], so 5,000 small files cost one listing, not
//! 5,000. The listing also hands out, once, the folder's unfinished uploads of other keys
//! begun more than [`LEFT_BEHIND_AFTER`] ago: a killed run whose key is never uploaded
//! again, which the same-key rule never reaches (as stale temp files are swept). A listing
//! the server cut short (`IsTruncated`) is not kept: each key is then listed on its own. A
//! listing the server refuses is not asked again for that folder until the listing would
//! have gone stale.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use reqsign_aws_v4::{RequestSigner, StaticCredentialProvider};
use reqsign_core::{Context, Signer};
use reqwest::Url;

use crate::transfer::LEFT_BEHIND_AFTER;

/// GCS's default endpoint and the scope opendal asks a GCS token for.
const GCS_ENDPOINT: &str = "https://storage.googleapis.com";
const GCS_SCOPE: &str = "https://www.googleapis.com/auth/devstorage.read_write";

/// How the requests are authorised.
enum Signing {
    /// AWS Signature V4 with explicit keys.
    Aws(Signer<reqsign_aws_v4::Credential>),
    /// A Google OAuth token from a credentials file.
    Google(Signer<reqsign_google::Credential>),
}

/// How long a folder's listing answers for the uploads into it: long enough for a batch of
/// files, short enough that an upload killed by another process meanwhile is still found.
const FOLDER_LISTING_TTL: Duration = Duration::from_secs(60);

/// How long one listing or abort may take in all: the sweep must never hold an upload up.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// Lists and aborts one bucket's unfinished multipart uploads.
pub(crate) struct StaleUploads {
    client: reqwest::Client,
    /// The bucket's URL, ending in `/` (path-style on an `Endpoint`, virtual-hosted on AWS).
    bucket_url: Url,
    signing: Signing,
    /// Folder prefix → when it was listed and what was unfinished in it then.
    folders: Mutex<HashMap<String, (Instant, Vec<Unfinished>)>>,
}

impl std::fmt::Debug for StaleUploads {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StaleUploads")
            .field("bucket_url", &self.bucket_url.as_str())
            .finish()
    }
}

/// One unfinished upload of a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Unfinished {
    pub key: String,
    pub upload_id: String,
    pub initiated: String,
}

impl StaleUploads {
    /// For the bucket `bucket` at `endpoint` (or AWS in `region`), with explicit keys.
    pub(crate) fn new(
        endpoint: Option<&str>,
        bucket: &str,
        region: &str,
        key_id: &str,
        secret: &str,
        client: reqwest::Client,
    ) -> Option<Self> {
        let url = match endpoint {
            Some(e) => format!("{}/{bucket}/", e.trim_end_matches('/')),
            None => format!("https://{bucket}.s3.{region}.amazonaws.com/"),
        };
        let signer = Signer::new(
            Context::new(),
            StaticCredentialProvider::new(key_id, secret),
            RequestSigner::new("s3", region),
        );
        Self::with(&url, Signing::Aws(signer), client)
    }

    /// For GCS bucket `bucket` at `endpoint` (or Google's), with the service-account (or
    /// other) credentials file at `credentials`; the token is fetched through `transport`,
    /// the operator's own.
    pub(crate) fn gcs(
        endpoint: Option<&str>,
        bucket: &str,
        credentials: &str,
        transport: opendal::HttpTransporter,
        client: reqwest::Client,
    ) -> Option<Self> {
        let url = format!(
            "{}/{bucket}/",
            endpoint.unwrap_or(GCS_ENDPOINT).trim_end_matches('/')
        );
        let ctx = Context::new()
            .with_file_read(reqsign_file_read_tokio::TokioFileRead)
            .with_http_send(transport);
        let signer = Signer::new(
            ctx,
            reqsign_google::FileCredentialProvider::new(credentials).with_scope(GCS_SCOPE),
            reqsign_google::RequestSigner::new("storage").with_scope(GCS_SCOPE),
        );
        Self::with(&url, Signing::Google(signer), client)
    }

    /// `client` is the process's shared one (see [`crate::stall::shared_client`]).
    fn with(bucket_url: &str, signing: Signing, client: reqwest::Client) -> Option<Self> {
        let bucket_url = Url::parse(bucket_url).ok()?;
        Some(StaleUploads {
            client,
            bucket_url,
            signing,
            folders: Mutex::new(HashMap::new()),
        })
    }

    async fn send(&self, method: http::Method, url: Url) -> Result<String, String> {
        let mut request = http::Request::builder()
            .method(method.clone())
            .uri(url.as_str());
        if matches!(self.signing, Signing::Aws(_)) {
            request = request.header("x-amz-content-sha256", EMPTY_SHA256);
        }
        let mut parts = request.body(()).map_err(|e| e.to_string())?.into_parts().0;
        match &self.signing {
            Signing::Aws(signer) => signer.sign(&mut parts, None).await,
            Signing::Google(signer) => signer.sign(&mut parts, None).await,
        }
        .map_err(|e| format!("signing: {e}"))?;
        if matches!(self.signing, Signing::Google(_)) {
            // As opendal does for GCS: the client sets Host for the HTTP version it speaks.
            parts.headers.remove(http::header::HOST);
        }
        let mut req = self.client.request(method, url).timeout(REQUEST_TIMEOUT);
        for (name, value) in &parts.headers {
            req = req.header(name, value);
        }
        let resp = req.send().await.map_err(|e| e.to_string())?;
        let status = resp.status();
        let body = resp.text().await.map_err(|e| e.to_string())?;
        if status.is_success() {
            Ok(body)
        } else {
            Err(format!(
                "{status}: {}",
                body.chars().take(300).collect::<String>()
            ))
        }
    }

    /// The unfinished uploads of exactly `key`, and those of its folder's other keys that
    /// are [abandoned], each handed out once: from the folder's listing while that is
    /// fresh, else from a new one. (A listing cut short is replaced by one of `key` alone,
    /// which finds no other key's.)
    pub(crate) async fn list(&self, key: &str) -> Result<Vec<Unfinished>, String> {
        let folder = &key[..key.rfind('/').map_or(0, |i| i + 1)];
        if let Some(found) = self.take_listed(folder, key) {
            return Ok(found);
        }
        let (uploads, truncated) = match self.list_prefix(folder, true).await {
            Ok(listed) => listed,
            Err(e) => {
                // A server without the call (s3s-fs answers 501) or a key without the right
                // to it (403) would refuse every file the same way: the folder goes
                // unswept until its listing would have gone stale, not asked again per file.
                self.folders
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(folder.to_string(), (Instant::now(), Vec::new()));
                return Err(e);
            }
        };
        if truncated {
            let (uploads, _) = self.list_prefix(key, false).await?;
            return Ok(uploads.into_iter().filter(|u| u.key == key).collect());
        }
        self.folders
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(folder.to_string(), (Instant::now(), uploads));
        Ok(self.take_listed(folder, key).unwrap_or_default())
    }

    /// `key`'s uploads and the abandoned ones from a fresh listing of `folder`, removed from
    /// it; `None` when there is no fresh listing.
    fn take_listed(&self, folder: &str, key: &str) -> Option<Vec<Unfinished>> {
        let mut folders = self.folders.lock().unwrap_or_else(|e| e.into_inner());
        let (listed_at, uploads) = folders.get_mut(folder)?;
        if listed_at.elapsed() > FOLDER_LISTING_TTL {
            folders.remove(folder);
            return None;
        }
        let (found, rest) = std::mem::take(uploads)
            .into_iter()
            .partition(|u| u.key == key || abandoned(u));
        *uploads = rest;
        Some(found)
    }

    /// The unfinished uploads under `prefix` (only its own level with `one_level`), and
    /// whether the server cut the answer short.
    async fn list_prefix(
        &self,
        prefix: &str,
        one_level: bool,
    ) -> Result<(Vec<Unfinished>, bool), String> {
        let mut url = self.bucket_url.clone();
        // The documented form names the bucket without a trailing slash (`/BUCKET?uploads`).
        let path = url.path().trim_end_matches('/').to_string();
        if !path.is_empty() {
            url.set_path(&path);
        }
        {
            let mut query = url.query_pairs_mut();
            query
                .append_pair("uploads", "")
                .append_pair("prefix", prefix);
            if one_level {
                query.append_pair("delimiter", "/");
            }
        }
        let body = self.send(http::Method::GET, url).await?;
        let truncated = element(&body, "IsTruncated").is_some_and(|t| t.trim() == "true");
        let mut uploads = parse_uploads(&body);
        if one_level {
            // Some servers (moto) ignore the delimiter and list subfolders' uploads too.
            uploads.retain(|u| {
                u.key
                    .strip_prefix(prefix)
                    .is_some_and(|rest| !rest.contains('/'))
            });
        }
        Ok((uploads, truncated))
    }

    /// Abort one upload (its parts are deleted).
    pub(crate) async fn abort(&self, u: &Unfinished) -> Result<(), String> {
        let mut url = self
            .bucket_url
            .join(&encode_key(&u.key))
            .map_err(|e| e.to_string())?;
        url.query_pairs_mut().append_pair("uploadId", &u.upload_id);
        self.send(http::Method::DELETE, url).await.map(|_| ())
    }
}

/// Whether `u` was begun more than [`LEFT_BEHIND_AFTER`] ago by the server's `Initiated`
/// (an upload without a readable one is not), the date S3's lifecycle rule
/// `AbortIncompleteMultipartUpload` and rclone's `cleanup` go by.
fn abandoned(u: &Unfinished) -> bool {
    chrono::DateTime::parse_from_rfc3339(u.initiated.trim()).is_ok_and(|at| {
        (chrono::Utc::now() - at.with_timezone(&chrono::Utc))
            .to_std()
            .is_ok_and(|age| age > LEFT_BEHIND_AFTER)
    })
}

/// SHA-256 of an empty body, which S3 wants in `x-amz-content-sha256`.
const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// A key as a URL path (each segment percent-encoded, `/` kept).
fn encode_key(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    for b in key.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b'/') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The `<Upload>` elements of a `ListMultipartUploadsResult`.
fn parse_uploads(xml: &str) -> Vec<Unfinished> {
    xml.split("<Upload>")
        .skip(1)
        .filter_map(|chunk| {
            let chunk = chunk.split("</Upload>").next()?;
            Some(Unfinished {
                key: unescape(element(chunk, "Key")?),
                upload_id: unescape(element(chunk, "UploadId")?),
                initiated: element(chunk, "Initiated").unwrap_or_default().to_string(),
            })
        })
        .collect()
}

fn element<'a>(xml: &'a str, name: &str) -> Option<&'a str> {
    let open = format!("<{name}>");
    let start = xml.find(&open)? + open.len();
    let end = xml[start..].find(&format!("</{name}>"))?;
    Some(&xml[start..start + end])
}

fn unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A bucket behind the discard port, where nothing listens: every request fails.
    fn unreachable_bucket() -> StaleUploads {
        let _ = rustls::crypto::ring::default_provider().install_default();
        StaleUploads::new(
            Some("http://127.0.0.1:9"),
            "b",
            "us-east-1",
            "k",
            "s",
            reqwest::Client::new(),
        )
        .expect("a valid bucket URL")
    }

    #[test]
    fn uploads_are_read_from_the_listing() {
        let xml = r#"<?xml version="1.0"?><ListMultipartUploadsResult><Bucket>b</Bucket>
            <Upload><Key>in/a&amp;b.bin</Key><UploadId>X1</UploadId><Initiated>2026-12-05T12:00:00Z</Initiated></Upload>
            <Upload><Key>in/c.bin</Key><UploadId>X2</UploadId></Upload></ListMultipartUploadsResult>"#;
        let got = parse_uploads(xml);
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].key, "in/a&b.bin");
        assert_eq!(got[0].upload_id, "X1");
        assert_eq!(got[1].initiated, "");
        assert_eq!(encode_key("in/a b+c.bin"), "in/a%20b%2Bc.bin");
    }

    #[tokio::test]
    async fn a_refused_listing_is_not_asked_again_for_each_file_of_the_folder() {
        let stale = unreachable_bucket();
        assert!(stale.list("in/a.bin").await.is_err());
        assert_eq!(
            stale.take_listed("in/", "in/b.bin"),
            Some(vec![]),
            "the next file of the folder sends no request"
        );
        assert_eq!(stale.take_listed("out/", "out/c.bin"), None);
    }

    #[test]
    fn a_folder_listing_hands_out_each_keys_uploads_once_while_fresh() {
        let stale = unreachable_bucket();
        let upload = |key: &str, id: &str| Unfinished {
            key: key.into(),
            upload_id: id.into(),
            initiated: String::new(),
        };
        assert_eq!(
            stale.take_listed("in/", "in/a.bin"),
            None,
            "nothing listed yet"
        );
        stale.folders.lock().unwrap().insert(
            "in/".into(),
            (
                Instant::now(),
                vec![
                    upload("in/a.bin", "1"),
                    upload("in/b.bin", "2"),
                    upload("in/a.bin", "3"),
                ],
            ),
        );
        let a = stale.take_listed("in/", "in/a.bin").unwrap();
        assert_eq!(
            a.iter().map(|u| u.upload_id.as_str()).collect::<Vec<_>>(),
            ["1", "3"]
        );
        assert_eq!(
            stale.take_listed("in/", "in/a.bin"),
            Some(vec![]),
            "handed out once"
        );
        assert_eq!(stale.take_listed("in/", "in/c.bin"), Some(vec![]));
        stale.folders.lock().unwrap().get_mut("in/").unwrap().0 =
            Instant::now() - FOLDER_LISTING_TTL - Duration::from_secs(1);
        assert_eq!(
            stale.take_listed("in/", "in/b.bin"),
            None,
            "a stale listing is dropped"
        );
    }

    #[test]
    fn a_folder_listing_also_hands_out_other_keys_uploads_begun_over_a_day_ago() {
        let stale = unreachable_bucket();
        let begun = |hours: i64| {
            (chrono::Utc::now() - chrono::Duration::hours(hours))
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
        };
        let upload = |key: &str, id: &str, initiated: String| Unfinished {
            key: key.into(),
            upload_id: id.into(),
            initiated,
        };
        stale.folders.lock().unwrap().insert(
            "in/".into(),
            (
                Instant::now(),
                vec![
                    upload("in/a.bin", "mine", begun(1)),
                    upload("in/old.bin", "abandoned", begun(25)),
                    upload("in/busy.bin", "recent", begun(23)),
                    upload("in/odd.bin", "no-time", "yesterday".into()),
                ],
            ),
        );
        let ids = |found: Option<Vec<Unfinished>>| {
            found
                .unwrap()
                .into_iter()
                .map(|u| u.upload_id)
                .collect::<Vec<_>>()
        };
        assert_eq!(
            ids(stale.take_listed("in/", "in/a.bin")),
            ["mine", "abandoned"]
        );
        assert!(
            ids(stale.take_listed("in/", "in/b.bin")).is_empty(),
            "handed out once; an upload begun 23 h ago or at an unreadable time is left alone"
        );
        assert_eq!(ids(stale.take_listed("in/", "in/busy.bin")), ["recent"]);
    }

    /// Against moto (`ci/peers/moto.sh`), which checks no signatures and dates every upload
    /// 2010-11-10: an unfinished upload of another key in the folder is found by the
    /// folder's listing and aborted, one in a subfolder is not.
    #[tokio::test]
    async fn an_abandoned_upload_of_another_key_is_listed_and_aborted_on_a_real_server() {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let env = |name: &str| {
            std::env::var(name).unwrap_or_else(|_| {
                panic!("{name} is not set: run the tests with ci/test.sh, which starts moto")
            })
        };
        let (endpoint, bucket) = (env("AFT_TEST_S3_ENDPOINT"), env("AFT_TEST_S3_BUCKET"));
        let client = reqwest::Client::new();
        let folder = format!("abandoned-{}/", std::process::id());
        let begin = |key: String| {
            let client = client.clone();
            let url = format!("{endpoint}/{bucket}/{key}?uploads");
            async move {
                let resp = client.post(&url).send().await.expect("moto answers");
                assert!(resp.status().is_success(), "{url}: {}", resp.status());
                element(&resp.text().await.unwrap(), "UploadId")
                    .expect("an upload id")
                    .to_string()
            }
        };
        let abandoned = begin(format!("{folder}old.bin")).await;
        let deeper = begin(format!("{folder}sub/deeper.bin")).await;
        let stale = StaleUploads::new(
            Some(&endpoint),
            &bucket,
            &env("AFT_TEST_S3_REGION"),
            &env("AFT_TEST_S3_KEY_ID"),
            &env("AFT_TEST_S3_SECRET"),
            client.clone(),
        )
        .expect("a valid bucket URL");
        let found = stale.list(&format!("{folder}new.bin")).await.unwrap();
        assert!(
            found.iter().all(|u| u.initiated.starts_with("2010-")),
            "moto dates uploads 2010-11-10, which this test relies on: {found:?}"
        );
        assert_eq!(
            found
                .iter()
                .map(|u| u.upload_id.as_str())
                .collect::<Vec<_>>(),
            [abandoned.as_str()]
        );
        stale.abort(&found[0]).await.unwrap();
        let (left, _) = stale.list_prefix(&folder, false).await.unwrap();
        assert_eq!(
            left.iter()
                .map(|u| u.upload_id.as_str())
                .collect::<Vec<_>>(),
            [deeper.as_str()],
            "the aborted upload is gone; the subfolder's is another folder's"
        );
        stale.abort(&left[0]).await.unwrap();
    }
}
