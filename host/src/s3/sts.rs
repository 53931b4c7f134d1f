//! The STS query API on the S3 endpoint (`POST /` with a form body, as AWS STS takes it):
//! `AssumeRoleWithWebIdentity` (the token goes through the authenticator chain) and
//! `AssumeRole` (SigV4-signed for service `sts` by an IAM user or a plugin principal). The role's
//! Cedar trust condition decides; the host mints the temporary credentials.

use axum::body::Body;
use http::request::Parts;
use http::{HeaderValue, Response, StatusCode};
use sha2::{Digest, Sha256};

use super::App;
use super::auth::{self, RequestFacts};
use super::body;
use super::error::{ErrorCode, S3Error};
use super::router::Query;
use super::xml::XmlWriter;
use crate::auth::Principal;
use crate::auth::sts::{MAX_DURATION, MIN_DURATION, Minted, role_name_from_arn};
use crate::plugins::bindings::types::RequestView;

const STS_NS: &str = "https://sts.amazonaws.com/doc/2011-06-15/";
const MAX_FORM: u64 = 64 * 1024;
/// Largest web identity token accepted (AWS: 20 000 characters).
const MAX_TOKEN: usize = 20_000;

/// An STS error: AWS code, HTTP status, message.
struct StsError {
    code: &'static str,
    status: StatusCode,
    message: String,
}

impl StsError {
    fn new(code: &'static str, status: StatusCode, message: impl Into<String>) -> StsError {
        StsError {
            code,
            status,
            message: message.into(),
        }
    }

    fn validation(message: impl Into<String>) -> StsError {
        StsError::new("ValidationError", StatusCode::BAD_REQUEST, message)
    }

    fn internal(e: impl std::fmt::Display) -> StsError {
        StsError::new(
            "InternalFailure",
            StatusCode::INTERNAL_SERVER_ERROR,
            e.to_string(),
        )
    }

    fn denied(message: impl Into<String>) -> StsError {
        StsError::new("AccessDenied", StatusCode::FORBIDDEN, message)
    }
}

impl From<S3Error> for StsError {
    fn from(e: S3Error) -> StsError {
        let code = match e.code {
            ErrorCode::SignatureDoesNotMatch => "SignatureDoesNotMatch",
            ErrorCode::InvalidAccessKeyId | ErrorCode::InvalidToken => {
                return StsError::new(
                    "InvalidClientTokenId",
                    StatusCode::FORBIDDEN,
                    "The security token included in the request is invalid.",
                );
            }
            ErrorCode::ExpiredToken => {
                return StsError::new(
                    "ExpiredToken",
                    StatusCode::FORBIDDEN,
                    "The security token included in the request is expired",
                );
            }
            ErrorCode::RequestTimeTooSkewed => "RequestExpired",
            ErrorCode::ServiceUnavailable => "ServiceUnavailable",
            ErrorCode::InternalError => "InternalFailure",
            ErrorCode::AuthorizationHeaderMalformed => "IncompleteSignature",
            _ => "AccessDenied",
        };
        StsError::new(code, e.code.status(), e.message)
    }
}

fn error_response(e: &StsError, request_id: &str) -> Response<Body> {
    let kind = if e.status.is_server_error() {
        "Receiver"
    } else {
        "Sender"
    };
    let mut w = XmlWriter::with_namespace("ErrorResponse", STS_NS);
    w.open("Error")
        .elem("Type", kind)
        .elem("Code", e.code)
        .elem("Message", &e.message)
        .close("Error")
        .elem("RequestId", request_id);
    xml(e.status, w.finish("ErrorResponse"))
}

fn xml(status: StatusCode, text: String) -> Response<Body> {
    let mut r = Response::new(Body::from(text));
    *r.status_mut() = status;
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("text/xml"),
    );
    r
}

/// Whether a request on the service root is an STS call.
pub fn is_sts_request(parts: &Parts, query: &Query) -> bool {
    parts.method == http::Method::POST
        && (query.has("Action")
            || parts
                .headers
                .get(http::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|c| c.starts_with("application/x-www-form-urlencoded")))
}

pub async fn handle(
    app: &App,
    parts: Parts,
    body: Body,
    query: Query,
    facts: &RequestFacts<'_>,
    request_id: &str,
) -> Response<Body> {
    match run(app, &parts, body, query, facts, request_id).await {
        Ok(r) => r,
        Err(e) => {
            tracing::info!(code = e.code, message = %e.message, "STS request failed");
            error_response(&e, request_id)
        }
    }
}

async fn run(
    app: &App,
    parts: &Parts,
    body: Body,
    query: Query,
    facts: &RequestFacts<'_>,
    request_id: &str,
) -> Result<Response<Body>, StsError> {
    let raw = body::read_to_limit(body::plain(body, None), MAX_FORM).await?;
    let body_sha256 = hex::encode(Sha256::digest(&raw));
    let text = std::str::from_utf8(&raw)
        .map_err(|_| StsError::validation("the request body is not UTF-8"))?;
    let form = Query::parse(text).map_err(|_| StsError::validation("malformed form body"))?;
    let param = |name: &str| form.get(name).or_else(|| query.get(name));
    let names: Vec<String> = form
        .iter()
        .chain(query.iter())
        .map(|(k, _)| k.to_string())
        .collect();
    let action = param("Action").unwrap_or("");
    match action {
        "AssumeRoleWithWebIdentity" => {
            assume_role_with_web_identity(app, &param, &names, facts, request_id).await
        }
        "AssumeRole" => {
            if !parts.headers.contains_key(http::header::AUTHORIZATION) {
                return Err(StsError::new(
                    "MissingAuthenticationToken",
                    StatusCode::FORBIDDEN,
                    "Request is missing Authentication Token",
                ));
            }
            let principal =
                auth::authenticate_sts(parts, app.sources(), &app.config.region, &body_sha256)
                    .await?;
            assume_role(app, &principal, &param, &names, request_id)
        }
        "" => Err(StsError::new(
            "MissingAction",
            StatusCode::BAD_REQUEST,
            "Missing Action",
        )),
        other => Err(StsError::new(
            "InvalidAction",
            StatusCode::BAD_REQUEST,
            format!("Could not find operation {other} for version 2011-06-15"),
        )),
    }
}

struct Common {
    role: crate::auth::sts::RoleRecord,
    session_name: String,
    duration: u64,
    external_id: Option<String>,
}

/// Parameters Sluice does not implement: refused rather than silently ignored (a session
/// policy that narrows a role must never be dropped).
const UNSUPPORTED: &[&str] = &[
    "Policy",
    "PolicyArns",
    "Tags",
    "TransitiveTagKeys",
    "SerialNumber",
    "TokenCode",
    "SourceIdentity",
    "ProvidedContexts",
];

fn common<'a>(
    app: &App,
    param: &impl Fn(&str) -> Option<&'a str>,
    names: &[String],
    action: &str,
) -> Result<Common, StsError> {
    if let Some(name) = names.iter().find(|n| {
        UNSUPPORTED
            .iter()
            .any(|u| *n == u || n.starts_with(&format!("{u}.")))
    }) {
        return Err(StsError::validation(format!(
            "The parameter {name} is not supported by this server"
        )));
    }
    let arn = param("RoleArn")
        .ok_or_else(|| StsError::validation("1 validation error detected: Value null at 'roleArn' failed to satisfy constraint: Member must not be null"))?;
    let session_name = param("RoleSessionName").ok_or_else(|| {
        StsError::validation("1 validation error detected: Value null at 'roleSessionName' failed to satisfy constraint: Member must not be null")
    })?;
    if session_name.len() < 2
        || session_name.len() > 64
        || !session_name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+=,.@_-".contains(c))
    {
        return Err(StsError::validation(
            "1 validation error detected: Value at 'roleSessionName' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\w+=,.@-]* and have length 2..64",
        ));
    }
    let duration = match param("DurationSeconds") {
        None => 3600,
        Some(d) => d
            .parse::<u64>()
            .ok()
            .filter(|d| (MIN_DURATION..=MAX_DURATION).contains(d))
            .ok_or_else(|| {
                StsError::validation(format!(
                    "1 validation error detected: Value '{d}' at 'durationSeconds' failed to satisfy constraint: Member must have value between {MIN_DURATION} and {MAX_DURATION}"
                ))
            })?,
    };
    let name = role_name_from_arn(arn)
        .ok_or_else(|| StsError::validation(format!("{arn} is not a valid role ARN")))?;
    let role = app
        .iam
        .find_role(name)
        .map_err(StsError::internal)?
        .ok_or_else(|| StsError::denied(format!("Not authorized to perform {action} on {arn}")))?;
    Ok(Common {
        role,
        session_name: session_name.to_string(),
        duration,
        external_id: param("ExternalId").map(String::from),
    })
}

fn trusted(c: &Common, principal: &Principal, action: &str) -> Result<(), StsError> {
    let allowed = crate::policy::trust::allows(
        &c.role.trust,
        principal,
        &c.role.name,
        action,
        c.external_id.as_deref(),
    )
    .map_err(|e| {
        tracing::warn!(role = %c.role.name, "trust condition cannot be evaluated: {e}");
        StsError::denied("Not authorized to assume this role")
    })?;
    if !allowed {
        return Err(StsError::denied(format!(
            "Not authorized to perform {action} on {}",
            c.role.arn()
        )));
    }
    Ok(())
}

fn mint(app: &App, c: &Common, source: &str) -> Result<Minted, StsError> {
    app.iam
        .mint_session(&c.role, &c.session_name, source, c.duration)
        .map_err(StsError::internal)
}

fn write_credentials(w: &mut XmlWriter, m: &Minted) {
    let expiration = chrono::DateTime::from_timestamp(m.expires as i64, 0)
        .unwrap_or_default()
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    w.open("Credentials")
        .elem("AccessKeyId", &m.access_key)
        .elem("SecretAccessKey", &m.secret_key)
        .elem("SessionToken", &m.session_token)
        .elem("Expiration", &expiration)
        .close("Credentials")
        .open("AssumedRoleUser")
        .elem("AssumedRoleId", &m.assumed_role_id())
        .elem("Arn", &m.assumed_role_arn())
        .close("AssumedRoleUser");
}

async fn assume_role_with_web_identity<'a>(
    app: &App,
    param: &impl Fn(&str) -> Option<&'a str>,
    names: &[String],
    facts: &RequestFacts<'_>,
    request_id: &str,
) -> Result<Response<Body>, StsError> {
    let token = param("WebIdentityToken").ok_or_else(|| {
        StsError::validation("1 validation error detected: Value null at 'webIdentityToken' failed to satisfy constraint: Member must not be null")
    })?;
    if token.len() < 4 || token.len() > MAX_TOKEN {
        return Err(StsError::validation(
            "webIdentityToken must have length 4..20000",
        ));
    }
    let view = RequestView {
        method: "STS".into(),
        bucket: None,
        key: None,
        headers: vec![("x-sluice-web-identity-token".to_string(), token.to_string())],
        query: vec![("Action".into(), "AssumeRoleWithWebIdentity".into())],
        source_ip: facts.source_ip.map(|ip| ip.to_string()).unwrap_or_default(),
        secure: facts.secure,
    };
    let principal = match app.chain.authenticate(&view).await {
        Ok(Some(p)) => p,
        Ok(None) => {
            return Err(StsError::new(
                "InvalidIdentityToken",
                StatusCode::BAD_REQUEST,
                "No authenticator accepts this web identity token",
            ));
        }
        Err(e) if e.is_transient() => {
            return Err(StsError::new(
                "IDPCommunicationError",
                StatusCode::BAD_REQUEST,
                "The identity provider could not be reached; retry",
            ));
        }
        Err(e) => {
            tracing::info!("web identity token refused: {e}");
            return Err(StsError::new(
                "InvalidIdentityToken",
                StatusCode::BAD_REQUEST,
                "The web identity token is not valid",
            ));
        }
    };
    // The role is looked up only after the token proved someone: no role enumeration without
    // a valid identity, and a missing role reads like a refused one.
    let c = common(app, param, names, "sts:AssumeRoleWithWebIdentity")?;
    trusted(&c, &principal, "sts:AssumeRoleWithWebIdentity")?;
    let (plugin, subject) = match &principal {
        Principal::External {
            plugin, subject, ..
        } => (plugin.clone(), subject.clone()),
        _ => (String::new(), String::new()),
    };
    let source = principal.id().unwrap_or_default().to_string();
    let minted = mint(app, &c, &source)?;
    tracing::info!(role = %c.role.name, session = %c.session_name, source = %source, "role assumed with web identity");
    let mut w = XmlWriter::with_namespace("AssumeRoleWithWebIdentityResponse", STS_NS);
    w.open("AssumeRoleWithWebIdentityResult");
    write_credentials(&mut w, &minted);
    w.elem("SubjectFromWebIdentityToken", &subject)
        .elem("Provider", &plugin)
        .elem("Audience", &plugin)
        .close("AssumeRoleWithWebIdentityResult")
        .open("ResponseMetadata")
        .elem("RequestId", request_id)
        .close("ResponseMetadata");
    Ok(xml(
        StatusCode::OK,
        w.finish("AssumeRoleWithWebIdentityResponse"),
    ))
}

fn assume_role<'a>(
    app: &App,
    principal: &Principal,
    param: &impl Fn(&str) -> Option<&'a str>,
    names: &[String],
    request_id: &str,
) -> Result<Response<Body>, StsError> {
    if matches!(principal, Principal::Root { .. } | Principal::Anonymous) {
        return Err(StsError::denied(
            "Roles may not be assumed by root credentials",
        ));
    }
    let c = common(app, param, names, "sts:AssumeRole")?;
    trusted(&c, principal, "sts:AssumeRole")?;
    let source = principal.id().unwrap_or_default().to_string();
    let minted = mint(app, &c, &source)?;
    tracing::info!(role = %c.role.name, session = %c.session_name, source = %source, "role assumed");
    let mut w = XmlWriter::with_namespace("AssumeRoleResponse", STS_NS);
    w.open("AssumeRoleResult");
    write_credentials(&mut w, &minted);
    w.close("AssumeRoleResult")
        .open("ResponseMetadata")
        .elem("RequestId", request_id)
        .close("ResponseMetadata");
    Ok(xml(StatusCode::OK, w.finish("AssumeRoleResponse")))
}
