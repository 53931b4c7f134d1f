//! Legacy SigV2 (`Authorization: AWS AKID:sig` and `?AWSAccessKeyId=..&Expires=..&Signature=..`),
//! still what boto3's `generate_presigned_url` produces by default. Pure functions; no I/O.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use hmac::{Hmac, Mac};
use http::HeaderMap;
use sha1::Sha1;

use super::router::Query;

/// Sub-resources and overrides that are part of the SigV2 canonical resource: the list botocore
/// signs (`HmacV1Auth.QSAOfInterest`), so that its SigV2 requests verify on every endpoint
/// Sluice serves.
const SIGNED_SUBRESOURCES: &[&str] = &[
    "accelerate",
    "acl",
    "analytics",
    "cors",
    "delete",
    "inventory",
    "lifecycle",
    "location",
    "logging",
    "metrics",
    "notification",
    "object-lock",
    "partNumber",
    "policy",
    "replication",
    "requestPayment",
    "response-cache-control",
    "response-content-disposition",
    "response-content-encoding",
    "response-content-language",
    "response-content-type",
    "response-expires",
    "restore",
    "select",
    "select-type",
    "storageClass",
    "tagging",
    "torrent",
    "uploadId",
    "uploads",
    "versionId",
    "versioning",
    "versions",
    "website",
];

fn header_text(headers: &HeaderMap, name: &str) -> String {
    headers
        .get_all(name)
        .iter()
        .map(|v| String::from_utf8_lossy(v.as_bytes()).trim().to_string())
        .collect::<Vec<_>>()
        .join(",")
}

/// The string a SigV2 signature covers. `date` is the Date header (header auth) or the Expires
/// parameter (query auth); `vhost_bucket` is set for virtual-hosted requests.
pub fn string_to_sign(
    method: &str,
    raw_path: &str,
    query: &Query,
    headers: &HeaderMap,
    date: &str,
    vhost_bucket: Option<&str>,
) -> String {
    let mut amz: Vec<(String, String)> = headers
        .keys()
        .map(|k| k.as_str())
        .filter(|k| k.starts_with("x-amz-"))
        .map(|k| (k.to_string(), header_text(headers, k)))
        .collect();
    amz.sort();
    amz.dedup();
    let mut out = format!(
        "{method}\n{}\n{}\n{date}\n",
        header_text(headers, "content-md5"),
        header_text(headers, "content-type")
    );
    for (k, v) in &amz {
        out.push_str(&format!("{k}:{v}\n"));
    }
    if let Some(b) = vhost_bucket {
        out.push('/');
        out.push_str(b);
    }
    out.push_str(if raw_path.is_empty() { "/" } else { raw_path });
    let mut subs: Vec<(&str, &str)> = query
        .iter()
        .filter(|(k, _)| SIGNED_SUBRESOURCES.contains(k))
        .collect();
    subs.sort();
    for (i, (k, v)) in subs.iter().enumerate() {
        out.push(if i == 0 { '?' } else { '&' });
        out.push_str(k);
        if !v.is_empty() {
            out.push('=');
            out.push_str(v);
        }
    }
    out
}

pub fn sign(secret: &str, string_to_sign: &str) -> String {
    let mut mac = Hmac::<Sha1>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key");
    mac.update(string_to_sign.as_bytes());
    B64.encode(mac.finalize().into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    // The GET example of the AWS SigV2 documentation.
    #[test]
    fn aws_documentation_example() {
        let mut headers = HeaderMap::new();
        headers.insert("date", "Tue, 27 Mar 2007 19:36:42 +0000".parse().unwrap());
        let sts = string_to_sign(
            "GET",
            "/photos/puppy.jpg",
            &Query::default(),
            &headers,
            "Tue, 27 Mar 2007 19:36:42 +0000",
            Some("awsexamplebucket1"),
        );
        assert_eq!(
            sts,
            "GET\n\n\nTue, 27 Mar 2007 19:36:42 +0000\n/awsexamplebucket1/photos/puppy.jpg"
        );
        assert_eq!(
            sign("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", &sts),
            "qgk2+6Sv9/oM7G3qLEjTH1a1l1g="
        );
    }
}
