//! SigV4 verification with S3's canonicalization: the path is URI-encoded once and never
//! normalized, the query is sorted by encoded name and value. Pure functions; no I/O.

use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};

use hmac::{Hmac, Mac};
use http::HeaderMap;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::error::{ErrorCode, S3Error, S3Result};

pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";
pub const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";
pub const STREAMING_SIGNED: &str = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD";
pub const STREAMING_SIGNED_TRAILER: &str = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER";
pub const STREAMING_UNSIGNED_TRAILER: &str = "STREAMING-UNSIGNED-PAYLOAD-TRAILER";
pub const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

type HmacSha256 = Hmac<Sha256>;

/// The parts of a credential scope: `AKID/20240101/us-east-1/s3/aws4_request`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credential {
    pub access_key: String,
    pub date: String,
    pub region: String,
    pub service: String,
}

impl Credential {
    pub fn parse(text: &str) -> Option<Credential> {
        let mut parts = text.rsplitn(5, '/');
        let terminator = parts.next()?;
        let service = parts.next()?;
        let region = parts.next()?;
        let date = parts.next()?;
        let access_key = parts.next()?;
        if terminator != "aws4_request"
            || access_key.is_empty()
            || date.len() != 8
            || !date.bytes().all(|b| b.is_ascii_digit())
        {
            return None;
        }
        Some(Credential {
            access_key: access_key.to_string(),
            date: date.to_string(),
            region: region.to_string(),
            service: service.to_string(),
        })
    }

    pub fn scope(&self) -> String {
        let mut scope =
            String::with_capacity(self.date.len() + self.region.len() + self.service.len() + 15);
        for part in [&self.date, &self.region, &self.service] {
            scope.push_str(part);
            scope.push('/');
        }
        scope.push_str("aws4_request");
        scope
    }
}

/// A parsed `Authorization: AWS4-HMAC-SHA256 ...` header.
#[derive(Debug, Clone)]
pub struct AuthorizationHeader {
    pub credential: Credential,
    pub signed_headers: Vec<String>,
    pub signature: String,
}

fn malformed(message: &str) -> S3Error {
    S3Error::new(ErrorCode::AuthorizationHeaderMalformed, message)
}

impl AuthorizationHeader {
    pub fn parse(value: &str) -> S3Result<AuthorizationHeader> {
        let rest = value
            .strip_prefix(ALGORITHM)
            .ok_or_else(|| malformed("The authorization header uses an unsupported algorithm"))?;
        let (mut credential, mut signed, mut signature) = (None, None, None);
        for part in rest.split(',') {
            let part = part.trim();
            if part.is_empty() {
                continue;
            }
            let (k, v) = part
                .split_once('=')
                .ok_or_else(|| malformed("The authorization header is malformed"))?;
            match k.trim() {
                "Credential" => credential = Some(v.trim()),
                "SignedHeaders" => signed = Some(v.trim()),
                "Signature" => signature = Some(v.trim()),
                _ => {}
            }
        }
        let credential = credential
            .and_then(Credential::parse)
            .ok_or_else(|| malformed("The authorization header is malformed; the Credential is mal-formed; expecting \"<YOUR-AKID>/YYYYMMDD/REGION/SERVICE/aws4_request\"."))?;
        let signed = signed.ok_or_else(|| {
            malformed("The authorization header is malformed; missing SignedHeaders")
        })?;
        let signature = signature
            .filter(|s| s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit()))
            .ok_or_else(|| {
                malformed("The authorization header is malformed; missing or bad Signature")
            })?;
        Ok(AuthorizationHeader {
            credential,
            signed_headers: signed.split(';').map(|h| h.to_ascii_lowercase()).collect(),
            signature: signature.to_ascii_lowercase(),
        })
    }
}

/// URI-encodes bytes the way SigV4 does: unreserved characters stay, everything else is `%XX`
/// (upper case); `/` stays only when `keep_slash`.
pub fn uri_encode(input: &[u8], keep_slash: bool) -> String {
    let mut out = String::with_capacity(input.len() * 3);
    for &b in input {
        if b.is_ascii_alphanumeric()
            || matches!(b, b'-' | b'.' | b'_' | b'~')
            || (keep_slash && b == b'/')
        {
            out.push(b as char);
        } else {
            const HEX: &[u8; 16] = b"0123456789ABCDEF";
            out.push('%');
            out.push(HEX[usize::from(b >> 4)] as char);
            out.push(HEX[usize::from(b & 15)] as char);
        }
    }
    out
}

/// Percent-decodes bytes (`+` stays `+`); invalid escapes are kept literally.
pub fn percent_decode(input: &str) -> Vec<u8> {
    percent_encoding::percent_decode_str(input).collect()
}

/// Canonical URI: the request path decoded once and encoded once, never normalized.
pub fn canonical_uri(raw_path: &str) -> String {
    let decoded = percent_decode(raw_path);
    if decoded.is_empty() {
        return "/".into();
    }
    uri_encode(&decoded, true)
}

/// Canonical query string from the raw query, leaving out `X-Amz-Signature` when presigned.
pub fn canonical_query(raw_query: &str, skip_signature: bool) -> String {
    let mut pairs: Vec<(String, String)> = raw_query
        .split('&')
        .filter(|p| !p.is_empty())
        .filter_map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            let k = uri_encode(&percent_decode(k), false);
            if skip_signature && k == "X-Amz-Signature" {
                return None;
            }
            Some((k, uri_encode(&percent_decode(v), false)))
        })
        .collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// Appends the canonical value of a header: all its values, trimmed, inner runs of spaces
/// collapsed, joined by commas. `false` when the request does not have it.
fn push_canonical_header_value(
    out: &mut String,
    headers: &HeaderMap,
    name: &str,
    latin1: bool,
) -> bool {
    let mut values = headers.get_all(name).iter().peekable();
    if values.peek().is_none() {
        return false;
    }
    let push_words = |out: &mut String, text: &str| {
        for (i, word) in text.split_whitespace().enumerate() {
            if i > 0 {
                out.push(' ');
            }
            out.push_str(word);
        }
    };
    for (i, v) in values.enumerate() {
        if i > 0 {
            out.push(',');
        }
        let bytes = v.as_bytes();
        match std::str::from_utf8(bytes) {
            // ASCII reads the same both ways.
            Ok(text) if bytes.is_ascii() => push_words(out, text),
            _ if latin1 => {
                let text: String = bytes.iter().map(|&b| b as char).collect();
                push_words(out, &text);
            }
            _ => push_words(out, &String::from_utf8_lossy(bytes)),
        }
    }
    true
}

pub struct CanonicalInput<'a> {
    pub method: &'a str,
    pub raw_path: &'a str,
    pub raw_query: &'a str,
    pub headers: &'a HeaderMap,
    pub signed_headers: &'a [String],
    pub payload_hash: &'a str,
    pub presigned: bool,
    /// Read non-ASCII header bytes as ISO-8859-1 (what Python's http.client sends for a str
    /// that botocore signed as UTF-8) instead of UTF-8.
    pub latin1_headers: bool,
}

pub fn canonical_request(input: &CanonicalInput<'_>) -> S3Result<String> {
    let mut out = String::with_capacity(512);
    out.push_str(input.method);
    out.push('\n');
    out.push_str(&canonical_uri(input.raw_path));
    out.push('\n');
    out.push_str(&canonical_query(input.raw_query, input.presigned));
    out.push('\n');
    for name in input.signed_headers {
        out.push_str(name);
        out.push(':');
        if !push_canonical_header_value(&mut out, input.headers, name, input.latin1_headers) {
            return Err(S3Error::new(
                ErrorCode::SignatureDoesNotMatch,
                format!(
                    "The request signature we calculated does not match the signature you provided: signed header `{name}` is missing"
                ),
            ));
        }
        out.push('\n');
    }
    out.push('\n');
    for (i, name) in input.signed_headers.iter().enumerate() {
        if i > 0 {
            out.push(';');
        }
        out.push_str(name);
    }
    out.push('\n');
    out.push_str(input.payload_hash);
    Ok(out)
}

pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

pub fn string_to_sign(amz_date: &str, scope: &str, canonical_request: &str) -> String {
    let mut out = String::with_capacity(ALGORITHM.len() + amz_date.len() + scope.len() + 67);
    for part in [ALGORITHM, amz_date, scope] {
        out.push_str(part);
        out.push('\n');
    }
    out.push_str(&sha256_hex(canonical_request.as_bytes()));
    out
}

fn hmac(key: &[u8], data: &[u8]) -> [u8; 32] {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(data);
    mac.finalize().into_bytes().into()
}

/// The derived signing key for a credential scope.
#[derive(Clone)]
pub struct SigningKey([u8; 32]);

/// Signing keys already derived, by secret and scope. A key holds for a whole day and deriving
/// one takes four HMACs, which every request would otherwise pay.
static DERIVED: LazyLock<Mutex<HashMap<String, SigningKey>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

/// [`DERIVED`] is emptied when it reaches this many keys (scopes are chosen by clients).
const DERIVED_LIMIT: usize = 4096;

impl SigningKey {
    /// [`SigningKey::derive`], remembering the key for the next request in the same scope.
    pub fn derive_cached(secret: &str, cred: &Credential) -> SigningKey {
        let mut id = String::with_capacity(
            secret.len() + cred.date.len() + cred.region.len() + cred.service.len() + 3,
        );
        for part in [secret, &cred.date, &cred.region] {
            id.push_str(part);
            id.push('\n');
        }
        id.push_str(&cred.service);
        let mut derived = crate::locks::lock(&DERIVED);
        if let Some(key) = derived.get(&id) {
            return key.clone();
        }
        let key = SigningKey::derive(secret, cred);
        if derived.len() >= DERIVED_LIMIT {
            derived.clear();
        }
        derived.insert(id, key.clone());
        key
    }

    pub fn derive(secret: &str, cred: &Credential) -> SigningKey {
        let k_date = hmac(format!("AWS4{secret}").as_bytes(), cred.date.as_bytes());
        let k_region = hmac(&k_date, cred.region.as_bytes());
        let k_service = hmac(&k_region, cred.service.as_bytes());
        SigningKey(hmac(&k_service, b"aws4_request"))
    }

    pub fn sign(&self, string_to_sign: &str) -> String {
        hex::encode(hmac(&self.0, string_to_sign.as_bytes()))
    }
}

/// Whether any of the signed headers carries non-ASCII bytes (so that two readings exist).
pub fn has_non_ascii(headers: &HeaderMap, signed: &[String]) -> bool {
    signed.iter().any(|name| {
        headers
            .get_all(name.as_str())
            .iter()
            .any(|v| !v.as_bytes().is_ascii())
    })
}

/// Computes the signature of a request under both readings of non-ASCII header bytes when there
/// are any, and compares each with `given` in constant time.
pub fn verify(
    input: &CanonicalInput<'_>,
    amz_date: &str,
    scope: &str,
    key: &SigningKey,
    given: &str,
) -> S3Result<bool> {
    for latin1 in [false, true] {
        // The second reading exists only for non-ASCII header bytes.
        if latin1 && !has_non_ascii(input.headers, input.signed_headers) {
            break;
        }
        let creq = canonical_request(&CanonicalInput {
            latin1_headers: latin1,
            ..*input
        })?;
        if signatures_equal(&key.sign(&string_to_sign(amz_date, scope, &creq)), given) {
            return Ok(true);
        }
        tracing::debug!(canonical_request = %creq, "signature mismatch");
    }
    Ok(false)
}

/// Compares hex signatures in constant time.
pub fn signatures_equal(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// Parses `x-amz-date` / `X-Amz-Date` (`YYYYMMDDTHHMMSSZ`).
pub fn parse_amz_date(s: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    // `YYYYMMDDTHHMMSSZ`, read by position (chrono's format parser was 1.5 % of a GET).
    let b = s.as_bytes();
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
        return None;
    }
    let num = |from: usize, to: usize| -> Option<u32> {
        b[from..to].iter().try_fold(0u32, |n, c| {
            c.is_ascii_digit().then(|| n * 10 + u32::from(c - b'0'))
        })
    };
    let date = chrono::NaiveDate::from_ymd_opt(num(0, 4)? as i32, num(4, 6)?, num(6, 8)?)?;
    let time = date.and_hms_opt(num(9, 11)?, num(11, 13)?, num(13, 15)?)?;
    Some(time.and_utc())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_values_are_trimmed_collapsed_and_joined() {
        let mut h = HeaderMap::new();
        h.append("x-amz-meta-a", "  one   two\tthree ".parse().unwrap());
        h.append("x-amz-meta-a", "four".parse().unwrap());
        h.insert(
            "x-amz-meta-b",
            http::HeaderValue::from_bytes(b"caf\xc3\xa9  x").unwrap(),
        );
        let value = |name: &str, latin1: bool| {
            let mut out = String::new();
            push_canonical_header_value(&mut out, &h, name, latin1).then_some(out)
        };
        assert_eq!(value("x-amz-meta-a", false).unwrap(), "one two three,four");
        assert_eq!(value("x-amz-meta-b", false).unwrap(), "caf\u{e9} x");
        assert_eq!(value("x-amz-meta-b", true).unwrap(), "caf\u{c3}\u{a9} x");
        assert_eq!(value("x-amz-meta-c", false), None);
        assert_eq!(uri_encode(b"a b/\xff~", false), "a%20b%2F%FF~");
    }

    #[test]
    fn amz_dates_parse_strictly() {
        let t = parse_amz_date("20261202T045901Z").unwrap();
        assert_eq!(t.to_rfc3339(), "2026-12-02T04:59:01+00:00");
        for bad in [
            "",
            "20261202T045901",
            "20261202 045901Z",
            "2026120XT045901Z",
            "20261302T045901Z",
            "20260230T045901Z",
            "20261202T245901Z",
            "20261202T046001Z",
            "+0261202T045901Z",
            "20261202T045901Z ",
            "2026-12-02T04:59:01Z",
        ] {
            assert_eq!(parse_amz_date(bad), None, "{bad}");
        }
    }

    #[test]
    fn path_is_encoded_once_and_not_normalized() {
        assert_eq!(canonical_uri("/b/a//b/./c/../d"), "/b/a//b/./c/../d");
        assert_eq!(canonical_uri("/b/a%20b"), "/b/a%20b");
        assert_eq!(canonical_uri("/b/a b!"), "/b/a%20b%21");
        assert_eq!(canonical_uri("/b/%E2%82%AC"), "/b/%E2%82%AC");
        assert_eq!(canonical_uri(""), "/");
    }

    #[test]
    fn query_is_sorted_and_encoded() {
        assert_eq!(
            canonical_query("prefix=a%2Fb&list-type=2&delimiter=%2F", false),
            "delimiter=%2F&list-type=2&prefix=a%2Fb"
        );
        assert_eq!(canonical_query("uploads", false), "uploads=");
        assert_eq!(
            canonical_query("X-Amz-Signature=abc&X-Amz-Date=1", true),
            "X-Amz-Date=1"
        );
    }

    // The GET-object example of the AWS SigV4 documentation for S3.
    #[test]
    fn aws_documentation_example() {
        let mut headers = HeaderMap::new();
        headers.insert("host", "examplebucket.s3.amazonaws.com".parse().unwrap());
        headers.insert("range", "bytes=0-9".parse().unwrap());
        headers.insert("x-amz-content-sha256", EMPTY_SHA256.parse().unwrap());
        headers.insert("x-amz-date", "20130524T000000Z".parse().unwrap());
        let signed: Vec<String> = ["host", "range", "x-amz-content-sha256", "x-amz-date"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let creq = canonical_request(&CanonicalInput {
            method: "GET",
            raw_path: "/test.txt",
            raw_query: "",
            headers: &headers,
            signed_headers: &signed,
            payload_hash: EMPTY_SHA256,
            presigned: false,
            latin1_headers: false,
        })
        .unwrap();
        let cred =
            Credential::parse("AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request").unwrap();
        let sts = string_to_sign("20130524T000000Z", &cred.scope(), &creq);
        let key = SigningKey::derive("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", &cred);
        assert_eq!(
            key.sign(&sts),
            "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
        );
        // A remembered key is the same key, and another secret or scope gets its own.
        let secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
        for _ in 0..2 {
            assert_eq!(SigningKey::derive_cached(secret, &cred).0, key.0);
        }
        let other_day =
            Credential::parse("AKIAIOSFODNN7EXAMPLE/20130525/us-east-1/s3/aws4_request").unwrap();
        for (secret, cred) in [(secret, &other_day), ("other-secret", &cred)] {
            let cached = SigningKey::derive_cached(secret, cred);
            assert_eq!(cached.0, SigningKey::derive(secret, cred).0);
            assert_ne!(cached.0, key.0);
        }
    }

    #[test]
    fn authorization_header_parses() {
        let h = AuthorizationHeader::parse("AWS4-HMAC-SHA256 Credential=AK/20130524/us-east-1/s3/aws4_request, SignedHeaders=host;x-amz-date, Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41").unwrap();
        assert_eq!(h.credential.access_key, "AK");
        assert_eq!(h.signed_headers, vec!["host", "x-amz-date"]);
        assert!(AuthorizationHeader::parse("AWS4-HMAC-SHA256 Credential=bad").is_err());
    }
}
