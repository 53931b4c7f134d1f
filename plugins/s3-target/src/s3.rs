//! The S3 requests a replication target makes, path-style and signed with SigV4.

use std::time::SystemTime;

use aws_sigv4::http_request::{
    PayloadChecksumKind, PercentEncodingMode, SignableBody, SignableRequest, SigningSettings,
    UriPathNormalizationMode, sign,
};
use aws_sigv4::sign::v4;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use sha2::{Digest, Sha256};

use crate::exports::sluice::plugin::replication::{ObjectInfo, TargetInfo};
use crate::http::{self, Response};
use crate::sluice::plugin::types::Error;

/// S3's URI encoding: everything but unreserved characters; `/` kept in paths.
const QUERY: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');
const PATH: &AsciiSet = &QUERY.remove(b'/');

/// The replica marker another Sluice honours from principals allowed `s3:ReplicateObject`.
pub const REPLICA_HEADER: &str = "x-sluice-replica-source-time";

/// Standard headers carried over as they are.
const CONTENT_HEADERS: [&str; 6] = [
    "content-type",
    "content-encoding",
    "content-disposition",
    "content-language",
    "cache-control",
    "expires",
];

pub struct Destination<'a> {
    target: &'a TargetInfo,
    https: bool,
    authority: String,
    /// Path prefix of the endpoint (usually empty).
    base: String,
}

pub struct Upload {
    path: String,
    id: String,
}

fn query_encode(s: &str) -> String {
    utf8_percent_encode(s, QUERY).to_string()
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn xml_unescape(s: &str) -> String {
    s.replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// The text of the first `<name>` element (S3 answers here are flat enough for this).
fn element(xml: &str, name: &str) -> Option<String> {
    let open = format!("<{name}>");
    let start = xml.find(&open)? + open.len();
    let end = xml[start..].find(&format!("</{name}>"))? + start;
    Some(xml_unescape(&xml[start..end]))
}

/// S3 error codes that say "try again later" whatever their status.
const TRANSIENT_CODES: [&str; 7] = [
    "RequestTimeout",
    "RequestTimeTooSkewed",
    "OperationAborted",
    "SlowDown",
    "InternalError",
    "ServiceUnavailable",
    "NoSuchUpload",
];

/// What a failed answer means for the queue: timeouts, throttling, 5xx and transient S3 codes
/// are worth retrying; 403 is a refusal (FAILED) unless the request went unsigned because the
/// target has no credentials yet (then it waits for them); other 4xx are requests the
/// destination will never take (FAILED).
fn failure(what: &str, r: &Response, signed: bool) -> Error {
    let code = element(&r.text(), "Code").unwrap_or_default();
    let msg = format!("{what}: HTTP {} {code}", r.status);
    if TRANSIENT_CODES.contains(&code.as_str()) {
        return Error::Unavailable(msg);
    }
    match r.status {
        403 if !signed => Error::Unavailable(format!(
            "{msg} (no credentials are set for this target: sluice admin replication credentials)"
        )),
        403 => Error::Denied(msg),
        408 | 429 | 500..=599 => Error::Unavailable(msg),
        _ => Error::Invalid(msg),
    }
}

/// Metadata, tags, content headers and the encryption request of a new object.
pub fn object_headers(object: &ObjectInfo, encrypt: Option<&str>) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (name, value) in &object.headers {
        if CONTENT_HEADERS.contains(&name.as_str()) {
            out.push((name.clone(), value.clone()));
        }
    }
    for (name, value) in &object.user_metadata {
        out.push((format!("x-amz-meta-{name}"), value.clone()));
    }
    if !object.tags.is_empty() {
        let tagging: Vec<String> = object
            .tags
            .iter()
            .map(|(k, v)| format!("{}={}", query_encode(k), query_encode(v)))
            .collect();
        out.push(("x-amz-tagging".into(), tagging.join("&")));
    }
    if object.encrypted
        && let Some(mode) = encrypt
    {
        out.push(("x-amz-server-side-encryption".into(), mode.to_string()));
    }
    out
}

impl<'a> Destination<'a> {
    pub fn new(target: &'a TargetInfo) -> Result<Self, Error> {
        let (https, rest) = match target.endpoint.split_once("://") {
            Some(("https", rest)) => (true, rest),
            Some(("http", rest)) => (false, rest),
            _ => {
                return Err(Error::Internal(format!(
                    "endpoint `{}` is not an http(s) URL",
                    target.endpoint
                )));
            }
        };
        let (authority, base) = match rest.find('/') {
            Some(i) => (&rest[..i], rest[i..].trim_end_matches('/')),
            None => (rest, ""),
        };
        if authority.is_empty() {
            return Err(Error::Internal(format!(
                "endpoint `{}` has no host",
                target.endpoint
            )));
        }
        Ok(Destination {
            target,
            https,
            authority: authority.to_string(),
            base: base.to_string(),
        })
    }

    /// Requests are signed once the target has credentials, and go unsigned until then.
    fn signed(&self) -> bool {
        !self.target.access_key.is_empty()
    }

    fn failure(&self, what: &str, r: &Response) -> Error {
        failure(what, r, self.signed())
    }

    fn object_path(&self, bucket: &str, key: &str) -> String {
        format!(
            "{}/{}/{}",
            self.base,
            utf8_percent_encode(bucket, PATH),
            utf8_percent_encode(key, PATH)
        )
    }

    /// Signs (when the target has credentials) and sends one request.
    fn request(
        &self,
        method: &str,
        path_and_query: &str,
        mut headers: Vec<(String, String)>,
        body: &[u8],
    ) -> Result<Response, Error> {
        headers.push(("content-length".into(), body.len().to_string()));
        if self.signed() {
            self.sign(method, path_and_query, &mut headers, body)?;
        }
        http::send(
            method,
            self.https,
            &self.authority,
            path_and_query,
            &headers,
            body,
        )
        .map_err(|e| Error::Unavailable(format!("{} {method}: {}", self.target.endpoint, e.0)))
    }

    fn sign(
        &self,
        method: &str,
        path_and_query: &str,
        headers: &mut Vec<(String, String)>,
        body: &[u8],
    ) -> Result<(), Error> {
        let internal = |e: &dyn std::fmt::Display| Error::Internal(format!("signing: {e}"));
        let identity = aws_credential_types::Credentials::new(
            &self.target.access_key,
            &self.target.secret_key,
            None,
            None,
            "sluice-s3-target",
        )
        .into();
        let mut settings = SigningSettings::default();
        settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
        settings.percent_encoding_mode = PercentEncodingMode::Single;
        settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(&self.target.region)
            .name("s3")
            .time(SystemTime::now())
            .settings(settings)
            .build()
            .map_err(|e| internal(&e))?
            .into();
        let scheme = if self.https { "https" } else { "http" };
        let url = format!("{scheme}://{}{path_and_query}", self.authority);
        let mut signed: Vec<(&str, &str)> = headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        signed.push(("host", self.authority.as_str()));
        let digest = hex::encode(Sha256::digest(body));
        let signable = SignableRequest::new(
            method,
            url,
            signed.into_iter(),
            SignableBody::Precomputed(digest),
        )
        .map_err(|e| internal(&e))?;
        let (instructions, _) = sign(signable, &params)
            .map_err(|e| internal(&e))?
            .into_parts();
        for (name, value) in instructions.headers() {
            headers.push((name.to_string(), value.to_string()));
        }
        Ok(())
    }

    pub fn put_object(
        &self,
        bucket: &str,
        key: &str,
        mut headers: Vec<(String, String)>,
        body: &[u8],
        source_time: u64,
    ) -> Result<(), Error> {
        headers.push((REPLICA_HEADER.into(), source_time.to_string()));
        let r = self.request("PUT", &self.object_path(bucket, key), headers, body)?;
        match r.status {
            200..=299 | 412 => Ok(()),
            _ => Err(self.failure("PutObject", &r)),
        }
    }

    pub fn create_upload(
        &self,
        bucket: &str,
        key: &str,
        headers: Vec<(String, String)>,
    ) -> Result<Upload, Error> {
        let path = self.object_path(bucket, key);
        let r = self.request("POST", &format!("{path}?uploads="), headers, b"")?;
        if r.status != 200 {
            return Err(self.failure("CreateMultipartUpload", &r));
        }
        let id = element(&r.text(), "UploadId").ok_or_else(|| {
            Error::Unavailable("CreateMultipartUpload answered without an UploadId".into())
        })?;
        Ok(Upload { path, id })
    }

    /// Uploads one part; its ETag as the destination gave it.
    pub fn upload_part(&self, upload: &Upload, number: u32, body: &[u8]) -> Result<String, Error> {
        let query = format!(
            "{}?partNumber={number}&uploadId={}",
            upload.path,
            query_encode(&upload.id)
        );
        let r = self.request("PUT", &query, Vec::new(), body)?;
        if r.status != 200 {
            return Err(self.failure("UploadPart", &r));
        }
        r.header("etag")
            .ok_or_else(|| Error::Unavailable("UploadPart answered without an ETag".into()))
    }

    pub fn complete_upload(
        &self,
        upload: &Upload,
        etags: &[String],
        source_time: u64,
        checksum: Option<&(String, String)>,
    ) -> Result<(), Error> {
        let mut xml = String::from("<CompleteMultipartUpload>");
        for (i, etag) in etags.iter().enumerate() {
            xml.push_str(&format!(
                "<Part><PartNumber>{}</PartNumber><ETag>{}</ETag></Part>",
                i + 1,
                xml_escape(etag)
            ));
        }
        xml.push_str("</CompleteMultipartUpload>");
        let query = format!("{}?uploadId={}", upload.path, query_encode(&upload.id));
        let mut headers = vec![
            ("content-type".to_string(), "application/xml".to_string()),
            (REPLICA_HEADER.to_string(), source_time.to_string()),
        ];
        if let Some((alg, value)) = checksum {
            headers.push((format!("x-amz-checksum-{alg}"), value.clone()));
            headers.push(("x-amz-checksum-type".into(), "FULL_OBJECT".into()));
        }
        let r = self.request("POST", &query, headers, xml.as_bytes())?;
        // S3 may answer 200 and put the error in the body.
        if r.status == 200 && !r.text().contains("<Error>") {
            return Ok(());
        }
        if r.status == 412 {
            // The destination holds something newer: done, and its parts are not needed.
            self.abort_upload(upload);
            return Ok(());
        }
        Err(self.failure("CompleteMultipartUpload", &r))
    }

    /// Best effort: a failed upload's parts would otherwise wait for the destination's cleanup.
    pub fn abort_upload(&self, upload: &Upload) {
        let query = format!("{}?uploadId={}", upload.path, query_encode(&upload.id));
        let _ = self.request("DELETE", &query, Vec::new(), b"");
    }

    pub fn delete_object(&self, bucket: &str, key: &str, deleted_at: u64) -> Result<(), Error> {
        let headers = vec![(REPLICA_HEADER.to_string(), deleted_at.to_string())];
        let r = self.request("DELETE", &self.object_path(bucket, key), headers, b"")?;
        match r.status {
            200..=299 | 404 | 412 => Ok(()),
            _ => Err(self.failure("DeleteObject", &r)),
        }
    }
}
