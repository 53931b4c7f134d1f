//! CORS: Put/Get/DeleteBucketCors with AWS validation, preflight `OPTIONS` answered from the
//! bucket's rules (or the server-wide default), and `Access-Control-*` headers on matching
//! requests.

use axum::body::Body;
use http::{HeaderMap, Method, Response, StatusCode};
use serde::{Deserialize, Serialize};

use super::error::{ErrorCode, S3Error, S3Result};
use super::xml::{self, XmlWriter};
use super::{App, RequestCtx, empty_response, set_header, xml_response};

const CORS: &str = "cors";
const MAX_RULES: usize = 100;
const MAX_CORS_BODY: u64 = 64 * 1024;
const METHODS: &[&str] = &["GET", "PUT", "HEAD", "POST", "DELETE"];

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CorsRule {
    pub id: Option<String>,
    pub allowed_methods: Vec<String>,
    pub allowed_origins: Vec<String>,
    pub allowed_headers: Vec<String>,
    pub expose_headers: Vec<String>,
    pub max_age_seconds: Option<u64>,
}

#[derive(Debug, Deserialize)]
struct CorsDoc {
    #[serde(rename = "CORSRule", default)]
    rules: Vec<CorsRuleDoc>,
}

#[derive(Debug, Deserialize)]
struct CorsRuleDoc {
    #[serde(rename = "ID")]
    id: Option<String>,
    #[serde(rename = "AllowedMethod", default)]
    allowed_methods: Vec<String>,
    #[serde(rename = "AllowedOrigin", default)]
    allowed_origins: Vec<String>,
    #[serde(rename = "AllowedHeader", default)]
    allowed_headers: Vec<String>,
    #[serde(rename = "ExposeHeader", default)]
    expose_headers: Vec<String>,
    #[serde(rename = "MaxAgeSeconds")]
    max_age_seconds: Option<u64>,
}

/// `pattern` with at most one `*` matches `value` (case-sensitive for origins, as S3 does).
fn wildcard_match(pattern: &str, value: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == value,
        Some((prefix, suffix)) => {
            value.len() >= prefix.len() + suffix.len()
                && value.starts_with(prefix)
                && value.ends_with(suffix)
        }
    }
}

fn validate(rules: &[CorsRule]) -> S3Result<()> {
    if rules.is_empty() || rules.len() > MAX_RULES {
        return Err(S3Error::malformed_xml());
    }
    for r in rules {
        if r.allowed_methods.is_empty() || r.allowed_origins.is_empty() {
            return Err(S3Error::malformed_xml());
        }
        if let Some(m) = r
            .allowed_methods
            .iter()
            .find(|m| !METHODS.contains(&m.as_str()))
        {
            return Err(S3Error::new(
                ErrorCode::InvalidRequest,
                format!("Found unsupported HTTP method in CORS config. Unsupported method is {m}"),
            ));
        }
        if let Some(o) = r
            .allowed_origins
            .iter()
            .find(|o| o.matches('*').count() > 1)
        {
            return Err(S3Error::new(
                ErrorCode::InvalidRequest,
                format!("AllowedOrigin \"{o}\" can not have more than one wildcard."),
            ));
        }
        if let Some(h) = r
            .allowed_headers
            .iter()
            .find(|h| h.matches('*').count() > 1)
        {
            return Err(S3Error::new(
                ErrorCode::InvalidRequest,
                format!("AllowedHeader \"{h}\" can not have more than one wildcard."),
            ));
        }
        if r.id.as_ref().is_some_and(|id| id.len() > 255) {
            return Err(S3Error::malformed_xml());
        }
    }
    Ok(())
}

pub async fn put_bucket_cors(ctx: &mut RequestCtx<'_>, bucket: &str) -> S3Result<Response<Body>> {
    ctx.existing_bucket(bucket).await?;
    let body = ctx.read_small_body(MAX_CORS_BODY).await?;
    let doc: CorsDoc = xml::parse(&body, "CORSConfiguration")?;
    let rules: Vec<CorsRule> = doc
        .rules
        .into_iter()
        .map(|r| CorsRule {
            id: r.id,
            allowed_methods: r.allowed_methods,
            allowed_origins: r.allowed_origins,
            allowed_headers: r.allowed_headers,
            expose_headers: r.expose_headers,
            max_age_seconds: r.max_age_seconds,
        })
        .collect();
    validate(&rules)?;
    let stored = serde_json::to_vec(&rules).map_err(S3Error::internal)?;
    ctx.app
        .store
        .put_bucket_config(bucket, CORS, Some(stored))
        .await?;
    Ok(empty_response(StatusCode::OK))
}

async fn bucket_rules(app: &App, bucket: &str) -> S3Result<Option<Vec<CorsRule>>> {
    match app.store.bucket_config(bucket, CORS).await? {
        None => Ok(None),
        Some(v) => Ok(Some(serde_json::from_slice(&v).map_err(S3Error::internal)?)),
    }
}

pub async fn get_bucket_cors(ctx: &mut RequestCtx<'_>, bucket: &str) -> S3Result<Response<Body>> {
    ctx.existing_bucket(bucket).await?;
    let Some(rules) = bucket_rules(ctx.app, bucket).await? else {
        return Err(S3Error::new(
            ErrorCode::NoSuchCORSConfiguration,
            "The CORS configuration does not exist",
        )
        .with("BucketName", bucket));
    };
    let mut w = XmlWriter::new("CORSConfiguration");
    for r in &rules {
        w.open("CORSRule");
        w.opt("ID", r.id.as_deref());
        for h in &r.allowed_headers {
            w.elem("AllowedHeader", h);
        }
        for m in &r.allowed_methods {
            w.elem("AllowedMethod", m);
        }
        for o in &r.allowed_origins {
            w.elem("AllowedOrigin", o);
        }
        for h in &r.expose_headers {
            w.elem("ExposeHeader", h);
        }
        if let Some(age) = r.max_age_seconds {
            w.elem("MaxAgeSeconds", &age.to_string());
        }
        w.close("CORSRule");
    }
    Ok(xml_response(StatusCode::OK, w.finish("CORSConfiguration")))
}

pub async fn delete_bucket_cors(
    ctx: &mut RequestCtx<'_>,
    bucket: &str,
) -> S3Result<Response<Body>> {
    ctx.set_bucket_config(bucket, CORS, None).await?;
    Ok(empty_response(StatusCode::NO_CONTENT))
}

/// The rule the server-wide `cors_origins` setting stands for (browser consoles).
fn default_rule(app: &App) -> Option<CorsRule> {
    if app.config.cors_origins.is_empty() {
        return None;
    }
    Some(CorsRule {
        id: Some("sluice-default".into()),
        allowed_methods: METHODS.iter().map(|m| m.to_string()).collect(),
        allowed_origins: app.config.cors_origins.clone(),
        allowed_headers: vec!["*".into()],
        expose_headers: [
            "ETag",
            "x-amz-request-id",
            "x-amz-version-id",
            "x-amz-checksum-crc32",
            "x-amz-checksum-crc32c",
            "x-amz-checksum-crc64nvme",
            "x-amz-checksum-sha1",
            "x-amz-checksum-sha256",
            "Content-Range",
            "Content-Length",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect(),
        max_age_seconds: Some(3600),
    })
}

/// Rules that apply to a bucket: its own, else the server default.
async fn rules_for(app: &App, bucket: Option<&str>) -> S3Result<Vec<CorsRule>> {
    let own = match bucket {
        Some(b) => bucket_rules(app, b).await?,
        None => None,
    };
    Ok(own.unwrap_or_else(|| default_rule(app).into_iter().collect()))
}

fn find_rule<'r>(
    rules: &'r [CorsRule],
    origin: &str,
    method: &str,
    request_headers: &[String],
) -> Option<&'r CorsRule> {
    rules.iter().find(|r| {
        r.allowed_origins.iter().any(|o| wildcard_match(o, origin))
            && r.allowed_methods.iter().any(|m| m == method)
            && request_headers.iter().all(|h| {
                r.allowed_headers
                    .iter()
                    .any(|a| wildcard_match(&a.to_ascii_lowercase(), &h.to_ascii_lowercase()))
            })
    })
}

fn allow_origin(rule: &CorsRule, origin: &str) -> (String, bool) {
    if rule.allowed_origins.iter().any(|o| o == "*") {
        ("*".to_string(), false)
    } else {
        (origin.to_string(), true)
    }
}

/// Answers a preflight `OPTIONS` request (no authentication, as in S3).
pub async fn preflight(
    app: &App,
    bucket: Option<&str>,
    headers: &HeaderMap,
) -> S3Result<Response<Body>> {
    let get = |n: &str| headers.get(n).and_then(|v| v.to_str().ok());
    let (Some(origin), Some(method)) = (get("origin"), get("access-control-request-method")) else {
        return Err(S3Error::new(
            ErrorCode::BadRequest,
            "Insufficient information. Origin request header needed.",
        ));
    };
    if let Some(b) = bucket
        && app.store.bucket(b).await?.is_none()
    {
        return Err(S3Error::no_such_bucket(b));
    }
    let requested: Vec<String> = get("access-control-request-headers")
        .map(|h| {
            h.split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect()
        })
        .unwrap_or_default();
    let rules = rules_for(app, bucket).await?;
    let Some(rule) = find_rule(&rules, origin, method, &requested) else {
        return Err(S3Error::new(
            ErrorCode::AccessForbidden,
            "CORSResponse: This CORS request is not allowed. This is usually because the evalution of Origin, request method / Access-Control-Request-Method or Access-Control-Request-Headers are not whitelisted by the resource's CORS spec.",
        )
        .with("Method", method)
        .with("ResourceType", if bucket.is_some() { "BUCKET" } else { "SERVICE" }));
    };
    let mut r = empty_response(StatusCode::OK);
    write_headers(r.headers_mut(), rule, origin, &requested);
    Ok(r)
}

/// The `Access-Control-*` answer of a matching rule; `requested` are the headers a preflight
/// asked for.
fn write_headers(h: &mut HeaderMap, rule: &CorsRule, origin: &str, requested: &[String]) {
    let (allowed, credentials) = allow_origin(rule, origin);
    set_header(h, "access-control-allow-origin", &allowed);
    if credentials {
        set_header(h, "access-control-allow-credentials", "true");
    }
    set_header(
        h,
        "access-control-allow-methods",
        &rule.allowed_methods.join(", "),
    );
    if !requested.is_empty() {
        set_header(h, "access-control-allow-headers", &requested.join(", "));
    }
    if !rule.expose_headers.is_empty() {
        set_header(
            h,
            "access-control-expose-headers",
            &rule.expose_headers.join(", "),
        );
    }
    if let Some(age) = rule.max_age_seconds {
        set_header(h, "access-control-max-age", &age.to_string());
    }
    set_header(
        h,
        "vary",
        "Origin, Access-Control-Request-Headers, Access-Control-Request-Method",
    );
}

/// Adds `Access-Control-*` headers to the answer of a request that carries `Origin` and matches
/// a rule for its method (matched as sent, as S3 does).
pub async fn decorate(
    app: &App,
    bucket: Option<&str>,
    method: &Method,
    origin: &str,
    response: &mut Response<Body>,
) {
    let Ok(rules) = rules_for(app, bucket).await else {
        return;
    };
    if let Some(rule) = find_rule(&rules, origin, method.as_str(), &[]) {
        write_headers(response.headers_mut(), rule, origin, &[]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(origins: &[&str], methods: &[&str], headers: &[&str]) -> CorsRule {
        CorsRule {
            id: None,
            allowed_methods: methods.iter().map(|s| s.to_string()).collect(),
            allowed_origins: origins.iter().map(|s| s.to_string()).collect(),
            allowed_headers: headers.iter().map(|s| s.to_string()).collect(),
            expose_headers: vec![],
            max_age_seconds: None,
        }
    }

    #[test]
    fn rules_match_origin_method_and_headers() {
        let rules = vec![
            rule(&["https://*.example.com"], &["GET"], &["x-amz-*"]),
            rule(&["*"], &["PUT"], &["*"]),
        ];
        assert!(find_rule(&rules, "https://a.example.com", "GET", &[]).is_some());
        assert!(find_rule(&rules, "https://a.example.org", "GET", &[]).is_none());
        assert!(
            find_rule(
                &rules,
                "https://a.example.com",
                "GET",
                &["X-Amz-Date".into()]
            )
            .is_some()
        );
        assert!(
            find_rule(
                &rules,
                "https://a.example.com",
                "GET",
                &["content-type".into()]
            )
            .is_none()
        );
        assert!(find_rule(&rules, "http://x", "PUT", &["anything".into()]).is_some());
        assert!(find_rule(&rules, "http://x", "DELETE", &[]).is_none());
    }

    #[test]
    fn validation_follows_aws() {
        assert!(validate(&[rule(&["*"], &["GET"], &[])]).is_ok());
        assert!(validate(&[rule(&["*"], &["PATCH"], &[])]).is_err());
        assert!(validate(&[rule(&["a*b*"], &["GET"], &[])]).is_err());
        assert!(validate(&[rule(&[], &["GET"], &[])]).is_err());
        assert!(validate(&[]).is_err());
    }
}
