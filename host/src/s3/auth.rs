//! Authentication step of the pipeline: a SigV4 Authorization header, a presigned URL or no
//! signature at all becomes a [`Principal`] plus the rule for verifying the body.

use chrono::Utc;
use http::HeaderMap;
use http::request::Parts;

use super::body::ChunkSigner;
use super::error::{ErrorCode, S3Error, S3Result};
use super::router::Query;
use super::sigv2;
use super::sigv4::{self, AuthorizationHeader, CanonicalInput, Credential, SigningKey};
use crate::auth::Principal;
use crate::auth::chain::AuthenticatorChain;
use crate::auth::iam::{Credential as IamCredential, Iam, Lookup};
use crate::auth::sts::SessionLookup;
use crate::plugins::PluginError;
use crate::plugins::bindings::types::RequestView;

/// Where secrets and identities come from: the IAM store first, then the authenticator chain.
#[derive(Clone, Copy)]
pub struct Sources<'a> {
    pub iam: &'a Iam,
    pub chain: &'a AuthenticatorChain,
}

/// What the host shows authenticator plugins of a request.
pub struct RequestFacts<'a> {
    pub bucket: Option<&'a str>,
    pub key: Option<&'a str>,
    pub source_ip: Option<std::net::IpAddr>,
    pub secure: bool,
}

/// How the request body must be checked.
pub enum Payload {
    /// Not covered by the signature (`UNSIGNED-PAYLOAD`, presigned, anonymous).
    Unsigned,
    /// Must hash to this SHA-256.
    Sha256([u8; 32]),
    /// `aws-chunked`: chunk signatures (when `signer`) and trailing headers (when `trailer`).
    Chunked {
        signer: Option<ChunkSigner>,
        trailer: bool,
    },
}

/// How the request proved who it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMethod {
    Header,
    Presigned,
    /// Vouched for by an authenticator plugin without an AWS signature (bearer token, proxy
    /// header).
    Plugin,
    Anonymous,
}

pub struct Authenticated {
    pub principal: Principal,
    pub payload: Payload,
    pub method: AuthMethod,
}

const MAX_SKEW_SECS: i64 = 15 * 60;
const MAX_PRESIGN_EXPIRES: i64 = 604_800;

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn signature_mismatch() -> S3Error {
    S3Error::new(
        ErrorCode::SignatureDoesNotMatch,
        "The request signature we calculated does not match the signature you provided. Check your key and signing method.",
    )
}

fn missing_date() -> S3Error {
    S3Error::new(
        ErrorCode::AccessDenied,
        "AWS authentication requires a valid Date or x-amz-date header",
    )
}

/// When a header-signed SigV4 request was signed, as the `YYYYMMDDTHHMMSSZ` timestamp its
/// string to sign holds: `x-amz-date`, or else the `Date` header (SigV4 takes either; botocore
/// sends only `Date` when the caller set one), reformatted.
fn signing_time(headers: &HeaderMap) -> S3Result<(String, chrono::DateTime<Utc>)> {
    if let Some(amz_date) = header(headers, "x-amz-date") {
        let when = sigv4::parse_amz_date(amz_date).ok_or_else(missing_date)?;
        return Ok((amz_date.to_string(), when));
    }
    let date = header(headers, "date").ok_or_else(missing_date)?;
    let when = parse_date_header(date).ok_or_else(missing_date)?;
    Ok((when.format("%Y%m%dT%H%M%SZ").to_string(), when))
}

/// A `Date` (or SigV2 `x-amz-date`) value: an HTTP date (`GMT`), or RFC 2822 with a numeric
/// zone, which botocore (`-0000`) and s3cmd (`+0000`) write. The leading weekday is redundant and
/// not checked against the date, as S3 does not check it (a wrong one would otherwise turn a
/// skewed date into an invalid one). A date before 1970 is not a valid request date.
fn parse_date_header(date: &str) -> Option<chrono::DateTime<Utc>> {
    let date = date.trim();
    let undated = match date.split_once(',') {
        Some((day, rest)) if day.len() == 3 && day.bytes().all(|b| b.is_ascii_alphabetic()) => {
            rest.trim_start()
        }
        _ => date,
    };
    chrono::DateTime::parse_from_rfc2822(undated)
        .ok()
        .map(|d| d.with_timezone(&Utc))
        // RFC 850 and asctime dates, which HTTP still allows.
        .or_else(|| {
            httpdate::parse_http_date(date)
                .ok()
                .map(chrono::DateTime::<Utc>::from)
        })
        .filter(|d| d.timestamp() >= 0)
}

/// Header-signed requests must be dated within 15 minutes of the server's clock.
fn check_skew(when: chrono::DateTime<Utc>, given: &str) -> S3Result<()> {
    let now = Utc::now();
    if (now - when).num_seconds().abs() > MAX_SKEW_SECS {
        return Err(S3Error::new(
            ErrorCode::RequestTimeTooSkewed,
            "The difference between the request time and the current time is too large.",
        )
        .with("RequestTime", given)
        .with("ServerTime", now.format("%Y-%m-%dT%H:%M:%SZ").to_string())
        .with("MaxAllowedSkewMilliseconds", "900000"));
    }
    Ok(())
}

fn query_error(message: &str) -> S3Error {
    S3Error::new(ErrorCode::AuthorizationQueryParametersError, message)
}

/// A failed authenticator call as the client sees it: 503 when it may pass, else AccessDenied.
pub fn plugin_failure(e: PluginError) -> S3Error {
    if e.is_transient() {
        tracing::warn!("{e}");
        S3Error::new(
            ErrorCode::ServiceUnavailable,
            "An authentication service is unavailable; please retry.",
        )
    } else {
        tracing::info!("{e}");
        S3Error::access_denied()
    }
}

/// Authenticates a request. `region` is the region signatures must be scoped to;
/// `vhost_bucket` is the bucket named by a virtual-hosted-style Host (SigV2 signs it).
pub async fn authenticate(
    parts: &Parts,
    query: &Query,
    sources: Sources<'_>,
    region: &str,
    vhost_bucket: Option<&str>,
    facts: &RequestFacts<'_>,
) -> S3Result<Authenticated> {
    let headers = &parts.headers;
    if let Some(auth) = header(headers, "authorization") {
        if auth.trim().is_empty() {
            return Err(S3Error::access_denied());
        }
        if ["X-Amz-Algorithm", "X-Amz-Signature", "Signature"]
            .iter()
            .any(|p| query.has(p))
        {
            return Err(S3Error::new(
                ErrorCode::InvalidArgument,
                "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, Signature query string parameter or the Authorization header should be specified",
            )
            .with("ArgumentName", "Authorization"));
        }
        if let Some(v2) = auth.strip_prefix("AWS ") {
            return authenticate_v2_header(parts, query, v2, sources, vhost_bucket).await;
        }
        if !auth.starts_with(sigv4::ALGORITHM) {
            if let Some(principal) = plugin_authenticate(parts, query, sources, facts).await? {
                return Ok(Authenticated {
                    principal,
                    payload: unsigned_payload(headers)?,
                    method: AuthMethod::Plugin,
                });
            }
            return Err(
                S3Error::new(ErrorCode::InvalidArgument, "Unsupported Authorization Type")
                    .with("ArgumentName", "Authorization")
                    .with("ArgumentValue", auth),
            );
        }
        return authenticate_header(parts, auth, sources, region).await;
    }
    if query.has("X-Amz-Signature") || query.has("X-Amz-Credential") || query.has("X-Amz-Algorithm")
    {
        return authenticate_presigned(parts, query, sources, region).await;
    }
    // Any SigV2 query parameter makes this a query-signed request (an incomplete one is refused,
    // never taken as anonymous).
    if query.has("Signature") || query.has("AWSAccessKeyId") {
        return authenticate_v2_query(parts, query, sources, vhost_bucket).await;
    }
    if let Some(principal) = plugin_authenticate(parts, query, sources, facts).await? {
        return Ok(Authenticated {
            principal,
            payload: unsigned_payload(headers)?,
            method: AuthMethod::Plugin,
        });
    }
    Ok(Authenticated {
        principal: Principal::Anonymous,
        payload: unsigned_payload(headers)?,
        method: AuthMethod::Anonymous,
    })
}

/// How the body of a request whose signature does not cover it (anonymous, presigned, SigV2,
/// plugin) is framed, from `x-amz-content-sha256`: botocore sends unsigned uploads over HTTPS
/// as aws-chunked with a trailing checksum (`STREAMING-UNSIGNED-PAYLOAD-TRAILER`) whoever
/// signs them, and a hex value is a digest the body must match. Chunk signatures need a SigV4
/// Authorization header to chain from, so a signed-chunk framing is refused here.
fn unsigned_payload(headers: &HeaderMap) -> S3Result<Payload> {
    let sha = header(headers, "x-amz-content-sha256").map(str::trim);
    // Framing not declared as such would be stored as the object's data.
    let aws_chunked = header(headers, "content-encoding").is_some_and(|e| {
        e.split(',')
            .any(|c| c.trim().eq_ignore_ascii_case("aws-chunked"))
    });
    if aws_chunked && !sha.is_some_and(|s| s.starts_with("STREAMING-")) {
        return Err(S3Error::new(
            ErrorCode::InvalidRequest,
            "An aws-chunked body needs x-amz-content-sha256 STREAMING-UNSIGNED-PAYLOAD-TRAILER",
        ));
    }
    match sha {
        None | Some(sigv4::UNSIGNED_PAYLOAD) => Ok(Payload::Unsigned),
        Some(sigv4::STREAMING_UNSIGNED_TRAILER) => Ok(Payload::Chunked {
            signer: None,
            trailer: true,
        }),
        Some(sigv4::STREAMING_SIGNED | sigv4::STREAMING_SIGNED_TRAILER) => Err(S3Error::new(
            ErrorCode::InvalidRequest,
            "Signed aws-chunked payloads need an AWS4-HMAC-SHA256 Authorization header",
        )),
        Some(hash) => digest_payload(hash),
    }
}

/// A body that must hash to the hex SHA-256 `hash` gives (`x-amz-content-sha256`).
fn digest_payload(hash: &str) -> S3Result<Payload> {
    hex::decode(hash)
        .ok()
        .and_then(|v| <[u8; 32]>::try_from(v).ok())
        .map(Payload::Sha256)
        .ok_or_else(|| {
            S3Error::new(
                ErrorCode::InvalidArgument,
                "x-amz-content-sha256 must be UNSIGNED-PAYLOAD, STREAMING-* or a SHA-256 hex digest",
            )
        })
}

/// The request as authenticator plugins see it.
pub fn request_view(parts: &Parts, query: &Query, facts: &RequestFacts<'_>) -> RequestView {
    RequestView {
        method: parts.method.as_str().to_string(),
        bucket: facts.bucket.map(String::from),
        key: facts.key.map(String::from),
        headers: parts
            .headers
            .iter()
            .map(|(n, v)| {
                (
                    n.as_str().to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        query: query
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        source_ip: facts.source_ip.map(|ip| ip.to_string()).unwrap_or_default(),
        secure: facts.secure,
    }
}

async fn plugin_authenticate(
    parts: &Parts,
    query: &Query,
    sources: Sources<'_>,
    facts: &RequestFacts<'_>,
) -> S3Result<Option<Principal>> {
    if sources.chain.is_empty() {
        return Ok(None);
    }
    let view = request_view(parts, query, facts);
    sources
        .chain
        .authenticate(&view)
        .await
        .map_err(plugin_failure)
}

fn check_scope(cred: &Credential, region: &str, malformed: ErrorCode) -> S3Result<()> {
    if cred.region != region {
        return Err(S3Error::new(
            malformed,
            format!(
                "The authorization header is malformed; the region '{}' is wrong; expecting '{region}'",
                cred.region
            ),
        )
        .with("Region", region));
    }
    if cred.service != "s3" {
        return Err(S3Error::new(
            malformed,
            format!(
                "The authorization header is malformed; incorrect service '{}'. This endpoint belongs to 's3'.",
                cred.service
            ),
        ));
    }
    Ok(())
}

fn unknown_key(access_key: &str) -> S3Error {
    S3Error::new(
        ErrorCode::InvalidAccessKeyId,
        "The AWS Access Key Id you provided does not exist in our records.",
    )
    .with("AWSAccessKeyId", access_key)
}

/// The secret and principal of an access key: the IAM store's, an STS session's (which must
/// come with its session `token`), else an authenticator's.
pub async fn lookup(
    sources: Sources<'_>,
    access_key: &str,
    token: Option<&str>,
) -> S3Result<IamCredential> {
    // Access keys are short and alphanumeric; anything else is unknown without asking the IAM
    // store or any plugin (and is never cached).
    if access_key.is_empty()
        || access_key.len() > 128
        || !access_key.bytes().all(|b| b.is_ascii_alphanumeric())
    {
        return Err(unknown_key(access_key));
    }
    match sources.iam.lookup(access_key).map_err(S3Error::internal)? {
        Lookup::Found(c) => return Ok(c),
        Lookup::Disabled => return Err(unknown_key(access_key)),
        Lookup::Unknown => {}
    }
    match sources
        .iam
        .session_lookup(access_key, token)
        .map_err(S3Error::internal)?
    {
        SessionLookup::Found { secret, principal } => {
            return Ok(IamCredential { secret, principal });
        }
        SessionLookup::Expired => {
            return Err(S3Error::new(
                ErrorCode::ExpiredToken,
                "The provided token has expired.",
            ));
        }
        SessionLookup::BadToken => {
            return Err(S3Error::new(
                ErrorCode::InvalidToken,
                "The provided token is malformed or otherwise invalid.",
            ));
        }
        SessionLookup::Unknown => {}
    }
    {
        match sources.chain.lookup(access_key).await {
            Ok(Some(c)) => Ok(IamCredential {
                secret: c.secret,
                principal: c.principal,
            }),
            Ok(None) => Err(unknown_key(access_key)),
            Err(e) => Err(plugin_failure(e)),
        }
    }
}

/// Verifies an STS query-API request (`AssumeRole`): SigV4 with service `sts`, the payload
/// hash computed from the form body rather than sent in a header.
pub async fn authenticate_sts(
    parts: &Parts,
    sources: Sources<'_>,
    region: &str,
    body_sha256: &str,
) -> S3Result<Principal> {
    let headers = &parts.headers;
    let auth = header(headers, "authorization").ok_or_else(|| {
        S3Error::new(
            ErrorCode::AccessDenied,
            "Request is missing Authentication Token",
        )
    })?;
    let parsed = AuthorizationHeader::parse(auth)?;
    let cred = &parsed.credential;
    if !parsed.signed_headers.iter().any(|h| h == "host") {
        return Err(S3Error::new(
            ErrorCode::AuthorizationHeaderMalformed,
            "The host header must be signed",
        ));
    }
    if cred.region != region || cred.service != "sts" {
        return Err(S3Error::new(
            ErrorCode::AuthorizationHeaderMalformed,
            format!(
                "Credential should be scoped to a valid region and the service 'sts', not '{}/{}'",
                cred.region, cred.service
            ),
        ));
    }
    let (amz_date, when) = signing_time(headers)?;
    let amz_date = amz_date.as_str();
    check_skew(when, amz_date)?;
    if !amz_date.starts_with(&cred.date) {
        return Err(signature_mismatch());
    }
    let scope = cred.scope();
    let (credential, _) =
        verify_header_signature(parts, &parsed, amz_date, &scope, sources, body_sha256).await?;
    Ok(credential.principal)
}

/// Looks up the signing key of a header-signed request and checks its signature and that every
/// `x-amz-*` header it carries is signed.
async fn verify_header_signature(
    parts: &Parts,
    parsed: &AuthorizationHeader,
    amz_date: &str,
    scope: &str,
    sources: Sources<'_>,
    payload_hash: &str,
) -> S3Result<(IamCredential, SigningKey)> {
    let headers = &parts.headers;
    let cred = &parsed.credential;
    let credential = lookup(
        sources,
        &cred.access_key,
        header(headers, "x-amz-security-token"),
    )
    .await?;
    let key = SigningKey::derive_cached(&credential.secret, cred);
    let input = CanonicalInput {
        method: parts.method.as_str(),
        raw_path: parts.uri.path(),
        raw_query: parts.uri.query().unwrap_or(""),
        headers,
        signed_headers: &parsed.signed_headers,
        payload_hash,
        presigned: false,
        latin1_headers: false,
    };
    if !sigv4::verify(&input, amz_date, scope, &key, &parsed.signature)? {
        return Err(signature_mismatch());
    }
    check_all_amz_signed(headers, &parsed.signed_headers)?;
    Ok((credential, key))
}

async fn authenticate_header(
    parts: &Parts,
    auth: &str,
    sources: Sources<'_>,
    region: &str,
) -> S3Result<Authenticated> {
    let headers = &parts.headers;
    let parsed = AuthorizationHeader::parse(auth)?;
    let cred = &parsed.credential;
    check_scope(cred, region, ErrorCode::AuthorizationHeaderMalformed)?;
    let (amz_date, when) = signing_time(headers)?;
    let amz_date = amz_date.as_str();
    check_skew(when, amz_date)?;
    // A scope dated another day than the request cannot have signed it.
    if !amz_date.starts_with(&cred.date) {
        return Err(S3Error::new(
            ErrorCode::AuthorizationHeaderMalformed,
            format!(
                "The authorization header is malformed; Invalid credential date. Date is not the same as X-Amz-Date: \"{}\".",
                &amz_date[..8.min(amz_date.len())]
            ),
        ));
    }
    if !parsed.signed_headers.iter().any(|h| h == "host") {
        return Err(S3Error::new(
            ErrorCode::AuthorizationHeaderMalformed,
            "The authorization header is malformed; the host header must be signed",
        ));
    }
    let content_sha = header(headers, "x-amz-content-sha256").ok_or_else(|| {
        S3Error::new(
            ErrorCode::InvalidRequest,
            "Missing required header for this request: x-amz-content-sha256",
        )
    })?;
    let scope = cred.scope();
    let (credential, key) =
        verify_header_signature(parts, &parsed, amz_date, &scope, sources, content_sha).await?;
    let payload = match content_sha {
        sigv4::UNSIGNED_PAYLOAD => Payload::Unsigned,
        sigv4::STREAMING_UNSIGNED_TRAILER => Payload::Chunked {
            signer: None,
            trailer: true,
        },
        sigv4::STREAMING_SIGNED | sigv4::STREAMING_SIGNED_TRAILER => Payload::Chunked {
            signer: Some(ChunkSigner {
                key,
                amz_date: amz_date.to_string(),
                scope,
                previous: parsed.signature.clone(),
            }),
            trailer: content_sha == sigv4::STREAMING_SIGNED_TRAILER,
        },
        hash => digest_payload(hash)?,
    };
    Ok(Authenticated {
        principal: credential.principal,
        payload,
        method: AuthMethod::Header,
    })
}

async fn authenticate_presigned(
    parts: &Parts,
    query: &Query,
    sources: Sources<'_>,
    region: &str,
) -> S3Result<Authenticated> {
    let get = |name: &str| {
        query.get(name).ok_or_else(|| {
            query_error(&format!(
                "Query-string authentication requires the {name} parameter"
            ))
        })
    };
    if get("X-Amz-Algorithm")? != sigv4::ALGORITHM {
        return Err(query_error(
            "X-Amz-Algorithm only supports \"AWS4-HMAC-SHA256\"",
        ));
    }
    let cred = Credential::parse(get("X-Amz-Credential")?).ok_or_else(|| {
        query_error("Error parsing the X-Amz-Credential parameter; the Credential is mal-formed; expecting \"<YOUR-AKID>/YYYYMMDD/REGION/SERVICE/aws4_request\".")
    })?;
    check_scope(&cred, region, ErrorCode::AuthorizationQueryParametersError)?;
    let amz_date = get("X-Amz-Date")?;
    let when = sigv4::parse_amz_date(amz_date).ok_or_else(|| {
        query_error("X-Amz-Date must be in the ISO8601 Long Format \"yyyyMMdd'T'HHmmss'Z'\"")
    })?;
    let expires: i64 = get("X-Amz-Expires")?
        .parse()
        .map_err(|_| query_error("X-Amz-Expires should be a number"))?;
    if expires < 0 {
        return Err(query_error("X-Amz-Expires must be non-negative"));
    }
    if expires > MAX_PRESIGN_EXPIRES {
        return Err(query_error(
            "X-Amz-Expires must be less than a week (in seconds) that is 604800",
        ));
    }
    let signed_headers: Vec<String> = get("X-Amz-SignedHeaders")?
        .split(';')
        .map(|h| h.to_ascii_lowercase())
        .collect();
    let signature = get("X-Amz-Signature")?.to_ascii_lowercase();
    if !amz_date.starts_with(&cred.date) {
        return Err(query_error(&format!(
            "Invalid credential date \"{}\". This date is not the same as X-Amz-Date: \"{}\".",
            cred.date,
            &amz_date[..8.min(amz_date.len())]
        )));
    }
    if !signed_headers.iter().any(|h| h == "host") {
        return Err(query_error(
            "Query-string authentication requires the host header to be signed",
        ));
    }
    let now = Utc::now();
    // Presigned URLs get no skew window: one dated in the future is not valid yet.
    if when > now {
        return Err(S3Error::new(
            ErrorCode::AccessDenied,
            "Request is not valid yet",
        ));
    }
    if now > when + chrono::Duration::seconds(expires) {
        return Err(S3Error::new(ErrorCode::AccessDenied, "Request has expired")
            .with("X-Amz-Expires", expires.to_string())
            .with(
                "Expires",
                (when + chrono::Duration::seconds(expires))
                    .format("%Y-%m-%dT%H:%M:%SZ")
                    .to_string(),
            )
            .with("ServerTime", now.format("%Y-%m-%dT%H:%M:%SZ").to_string()));
    }
    let credential = lookup(sources, &cred.access_key, query.get("X-Amz-Security-Token")).await?;
    let payload_hash = header(&parts.headers, "x-amz-content-sha256")
        .unwrap_or(sigv4::UNSIGNED_PAYLOAD)
        .to_string();
    let input = CanonicalInput {
        method: parts.method.as_str(),
        raw_path: parts.uri.path(),
        raw_query: parts.uri.query().unwrap_or(""),
        headers: &parts.headers,
        signed_headers: &signed_headers,
        payload_hash: &payload_hash,
        presigned: true,
        latin1_headers: false,
    };
    let key = SigningKey::derive_cached(&credential.secret, &cred);
    if !sigv4::verify(&input, amz_date, &cred.scope(), &key, &signature)? {
        return Err(signature_mismatch());
    }
    check_all_amz_signed(&parts.headers, &signed_headers)?;
    Ok(Authenticated {
        principal: credential.principal,
        payload: unsigned_payload(&parts.headers)?,
        method: AuthMethod::Presigned,
    })
}

async fn verify_v2(
    parts: &Parts,
    query: &Query,
    sources: Sources<'_>,
    access_key: &str,
    date_field: &str,
    signature: &str,
    vhost_bucket: Option<&str>,
) -> S3Result<Principal> {
    let token = header(&parts.headers, "x-amz-security-token")
        .or_else(|| query.get("x-amz-security-token"));
    let credential = lookup(sources, access_key, token).await?;
    let sts = sigv2::string_to_sign(
        parts.method.as_str(),
        parts.uri.path(),
        query,
        &parts.headers,
        date_field,
        vhost_bucket,
    );
    let expected = sigv2::sign(&credential.secret, &sts);
    if !sigv4::signatures_equal(&expected, signature) {
        tracing::debug!(string_to_sign = %sts, "SigV2 signature mismatch");
        return Err(signature_mismatch());
    }
    Ok(credential.principal)
}

async fn authenticate_v2_header(
    parts: &Parts,
    query: &Query,
    value: &str,
    sources: Sources<'_>,
    vhost_bucket: Option<&str>,
) -> S3Result<Authenticated> {
    let (access_key, signature) = value.trim().split_once(':').ok_or_else(|| {
        S3Error::new(
            ErrorCode::InvalidArgument,
            "AWS authorization header is invalid.  Expected AwsAccessKeyId:signature",
        )
    })?;
    let headers = &parts.headers;
    let (date_text, date_field) = match header(headers, "x-amz-date") {
        Some(d) => (d.to_string(), String::new()),
        None => {
            let d = header(headers, "date").unwrap_or("").to_string();
            (d.clone(), d)
        }
    };
    let when = parse_date_header(&date_text)
        .or_else(|| sigv4::parse_amz_date(&date_text))
        .ok_or_else(missing_date)?;
    check_skew(when, &date_text)?;
    let principal = verify_v2(
        parts,
        query,
        sources,
        access_key,
        &date_field,
        signature,
        vhost_bucket,
    )
    .await?;
    Ok(Authenticated {
        principal,
        payload: unsigned_payload(headers)?,
        method: AuthMethod::Header,
    })
}

async fn authenticate_v2_query(
    parts: &Parts,
    query: &Query,
    sources: Sources<'_>,
    vhost_bucket: Option<&str>,
) -> S3Result<Authenticated> {
    let (Some(access_key), Some(signature), Some(expires_text)) = (
        query.get("AWSAccessKeyId"),
        query.get("Signature"),
        query.get("Expires"),
    ) else {
        return Err(S3Error::new(
            ErrorCode::AccessDenied,
            "Query-string authentication requires the Signature, Expires and AWSAccessKeyId parameters",
        ));
    };
    let expires: i64 = expires_text.parse().map_err(|_| {
        S3Error::new(
            ErrorCode::AccessDenied,
            "Expires must be a number of seconds since the epoch",
        )
    })?;
    if Utc::now().timestamp() > expires {
        return Err(S3Error::new(ErrorCode::AccessDenied, "Request has expired"));
    }
    let principal = verify_v2(
        parts,
        query,
        sources,
        access_key,
        expires_text,
        signature,
        vhost_bucket,
    )
    .await?;
    Ok(Authenticated {
        principal,
        payload: unsigned_payload(&parts.headers)?,
        method: AuthMethod::Presigned,
    })
}

/// Every `x-amz-*` header a request carries must be covered by its signature (except the payload
/// hash, which S3 lets through unsigned), or anyone relaying it could add some.
fn check_all_amz_signed(headers: &HeaderMap, signed: &[String]) -> S3Result<()> {
    let unsigned: Vec<&str> = headers
        .keys()
        .map(|k| k.as_str())
        .filter(|k| {
            k.starts_with("x-amz-")
                && *k != "x-amz-content-sha256"
                && !signed.iter().any(|s| s == k)
        })
        .collect();
    if unsigned.is_empty() {
        return Ok(());
    }
    Err(S3Error::new(
        ErrorCode::AccessDenied,
        "There were headers present in the request which were not signed",
    )
    .with("HeadersNotSigned", unsigned.join(", ")))
}

#[cfg(test)]
mod tests {
    use super::parse_date_header;

    #[test]
    fn date_headers_in_the_forms_clients_write() {
        let want = parse_date_header("Thu, 03 Dec 2026 19:50:00 GMT").unwrap();
        assert_eq!(want.timestamp(), 1_796_327_400);
        // botocore's SigV4 Date, s3cmd's SigV2 x-amz-date, and another zone.
        for v in [
            "Thu, 03 Dec 2026 19:50:00 -0000",
            "Thu, 03 Dec 2026 19:50:00 +0000",
            " Thu, 03 Dec 2026 20:50:00 +0100 ",
        ] {
            assert_eq!(parse_date_header(v), Some(want), "{v}");
        }
        assert_eq!(parse_date_header("20261203T195000Z"), None);
        assert_eq!(parse_date_header("yesterday"), None);
    }

    /// The weekday is not checked (s3-tests dates "Tue, 07 Jul 2030", a Sunday, and expects a
    /// skew, not an invalid date); the weekday may be left out; before 1970 is no request date.
    #[test]
    fn weekday_is_not_checked_and_old_dates_are_invalid() {
        let sunday = parse_date_header("Sun, 07 Jul 2030 21:53:04 GMT").unwrap();
        assert_eq!(
            parse_date_header("Tue, 07 Jul 2030 21:53:04 GMT"),
            Some(sunday)
        );
        assert_eq!(parse_date_header("07 Jul 2030 21:53:04 GMT"), Some(sunday));
        assert!(parse_date_header("Tue, 07 Jul 9999 21:53:04 GMT").is_some());
        assert_eq!(parse_date_header("Tue, 07 Jul 1950 21:53:04 GMT"), None);
    }
}
