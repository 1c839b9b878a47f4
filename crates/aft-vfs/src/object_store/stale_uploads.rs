//! S3: unfinished multipart uploads that a killed run left behind.
//!
//! A run that ends normally aborts its own unfinished upload ([`super::upload`]); a process
//! killed mid-upload cannot. So before a new upload of a key starts, the multipart uploads
//! of that very key begun before it are listed (`ListMultipartUploads`) and aborted
//! (`AbortMultipartUpload`): their parts would otherwise stay, invisible and billed, until a
//! lifecycle rule removes them. opendal has neither call, so they are signed here with the
//! signer opendal itself uses (reqsign).

use reqsign_aws_v4::{RequestSigner, StaticCredentialProvider};
use reqsign_core::{Context, Signer};
use reqwest::Url;

/// Lists and aborts one bucket's unfinished multipart uploads.
pub(crate) struct StaleUploads {
    client: reqwest::Client,
    /// The bucket's URL, ending in `/` (path-style on an `Endpoint`, virtual-hosted on AWS).
    bucket_url: Url,
    signer: Signer<reqsign_aws_v4::Credential>,
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
    ) -> Option<Self> {
        let url = match endpoint {
            Some(e) => format!("{}/{bucket}/", e.trim_end_matches('/')),
            None => format!("https://{bucket}.s3.{region}.amazonaws.com/"),
        };
        let bucket_url = Url::parse(&url).ok()?;
        let client = reqwest::Client::builder()
            .connect_timeout(std::time::Duration::from_secs(30))
            .timeout(std::time::Duration::from_secs(60))
            .build()
            .ok()?;
        let signer = Signer::new(
            Context::new(),
            StaticCredentialProvider::new(key_id, secret),
            RequestSigner::new("s3", region),
        );
        Some(StaleUploads {
            client,
            bucket_url,
            signer,
        })
    }

    async fn send(&self, method: http::Method, url: Url) -> Result<String, String> {
        let mut parts = http::Request::builder()
            .method(method.clone())
            .uri(url.as_str())
            .header("x-amz-content-sha256", EMPTY_SHA256)
            .body(())
            .map_err(|e| e.to_string())?
            .into_parts()
            .0;
        self.signer
            .sign(&mut parts, None)
            .await
            .map_err(|e| format!("signing: {e}"))?;
        let mut req = self.client.request(method, url);
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

    /// The unfinished uploads of exactly `key`.
    pub(crate) async fn list(&self, key: &str) -> Result<Vec<Unfinished>, String> {
        let mut url = self.bucket_url.clone();
        url.query_pairs_mut()
            .append_pair("uploads", "")
            .append_pair("prefix", key);
        let body = self.send(http::Method::GET, url).await?;
        Ok(parse_uploads(&body)
            .into_iter()
            .filter(|u| u.key == key)
            .collect())
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
}
