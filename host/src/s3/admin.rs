//! `/_sluice/...`: health, metrics and the admin API. The admin API takes SigV4-signed requests
//! (signed payload) from root and answers JSON; its commands are the CLI's.

use std::sync::atomic::Ordering;

use axum::body::Body;
use http::{HeaderValue, Method, Request, Response, StatusCode};
use serde_json::json;

use super::auth::{Authenticated, Payload, RequestFacts, authenticate};
use super::error::{ErrorCode, S3Error, S3Result};
use super::router::Query;
use super::{App, body, error_response};
use crate::auth::Principal;
use crate::auth::iam::{AdminCommand, IamError};
use crate::policy::Resource;

pub const VERSION: &str = env!("CARGO_PKG_VERSION");
/// Path of the IAM command endpoint.
pub const IAM_PATH: &str = "/_sluice/admin/v1/iam";
const MAX_ADMIN_BODY: u64 = 64 * 1024;
/// Path of `sluice policy explain --endpoint`.
pub const EXPLAIN_PATH: &str = "/_sluice/admin/v1/policy/explain";
/// Path of the KMS command endpoint (`sluice kms --endpoint`).
pub const KMS_PATH: &str = "/_sluice/admin/v1/kms";
/// Path of the replication command endpoint (`sluice admin replication --endpoint`).
pub const REPLICATION_PATH: &str = "/_sluice/admin/v1/replication";
/// Path of the loaded-plugins listing.
pub const PLUGINS_PATH: &str = "/_sluice/admin/plugins";

fn json_response(status: StatusCode, value: &serde_json::Value) -> Response<Body> {
    let mut r = Response::new(Body::from(value.to_string()));
    *r.status_mut() = status;
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

pub async fn handle(app: &App, req: Request<Body>, request_id: &str) -> Response<Body> {
    let path = req.uri().path().to_string();
    let head = req.method() == Method::HEAD;
    match (req.method().clone(), path.as_str()) {
        (Method::GET | Method::HEAD, "/_sluice/health/live") => json_response(
            StatusCode::OK,
            &json!({ "status": "live", "version": VERSION }),
        ),
        (Method::GET | Method::HEAD, "/_sluice/health/ready") => json_response(
            StatusCode::OK,
            &json!({ "status": "ready", "version": VERSION }),
        ),
        (Method::GET, "/_sluice/metrics") => metrics(app).await,
        (_, PLUGINS_PATH) => match plugins(app, req).await {
            Ok(r) => r,
            Err(e) => error_response(&e, &path, request_id, head),
        },
        (_, EXPLAIN_PATH) => match explain(app, req).await {
            Ok(r) => r,
            Err(e) => error_response(&e, &path, request_id, head),
        },
        (_, KMS_PATH) => match kms_command(app, req).await {
            Ok(r) => r,
            Err(e) => error_response(&e, &path, request_id, head),
        },
        (_, REPLICATION_PATH) => match replication_command(app, req).await {
            Ok(r) => r,
            Err(e) => error_response(&e, &path, request_id, head),
        },
        (_, IAM_PATH) => match iam_command(app, req).await {
            Ok(r) => r,
            Err(e) => error_response(&e, &path, request_id, head),
        },
        _ => error_response(
            &S3Error::new(ErrorCode::NoSuchKey, "No such Sluice endpoint"),
            &path,
            request_id,
            head,
        ),
    }
}

async fn metrics(app: &App) -> Response<Body> {
    let m = &app.metrics;
    let mut text = format!(
        "# TYPE sluice_requests_total counter\nsluice_requests_total {}\n\
         # TYPE sluice_request_errors_total counter\nsluice_request_errors_total {}\n\
         # TYPE sluice_bytes_received_total counter\nsluice_bytes_received_total {}\n\
         # TYPE sluice_bytes_sent_total counter\nsluice_bytes_sent_total {}\n\
         # TYPE sluice_lifecycle_objects_expired_total counter\n\
         sluice_lifecycle_objects_expired_total {}\n\
         # TYPE sluice_lifecycle_uploads_aborted_total counter\n\
         sluice_lifecycle_uploads_aborted_total {}\n",
        m.requests.load(Ordering::Relaxed),
        m.errors.load(Ordering::Relaxed),
        m.bytes_in.load(Ordering::Relaxed),
        m.bytes_out.load(Ordering::Relaxed),
        m.lifecycle.objects_expired.load(Ordering::Relaxed),
        m.lifecycle.uploads_aborted.load(Ordering::Relaxed),
    );
    if !app.config.replication_targets.is_empty() {
        let r = &m.replication;
        let backlog = app
            .store
            .replication_backlog(None)
            .await
            .unwrap_or_default();
        let lag = backlog
            .lag_seconds(crate::store::precise_now_ms())
            .unwrap_or(0.0);
        text.push_str(&format!(
            "# TYPE sluice_replication_queue_depth gauge\nsluice_replication_queue_depth {}\n\
             # TYPE sluice_replication_retrying gauge\nsluice_replication_retrying {}\n\
             # TYPE sluice_replication_lag_seconds gauge\nsluice_replication_lag_seconds {lag:.3}\n\
             # TYPE sluice_replication_completed_total counter\nsluice_replication_completed_total {}\n\
             # TYPE sluice_replication_failed_total counter\nsluice_replication_failed_total {}\n\
             # TYPE sluice_replication_retries_total counter\nsluice_replication_retries_total {}\n\
             # TYPE sluice_replication_bytes_total counter\nsluice_replication_bytes_total {}\n",
            backlog.tasks,
            backlog.retrying,
            r.completed.load(Ordering::Relaxed),
            r.failed.load(Ordering::Relaxed),
            r.retries.load(Ordering::Relaxed),
            r.bytes.load(Ordering::Relaxed),
        ));
    }
    let mut r = Response::new(Body::from(text));
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4"),
    );
    r
}

fn iam_error(e: IamError) -> S3Error {
    match e {
        IamError::NoSuchUser(_)
        | IamError::NoSuchKey(_)
        | IamError::NoSuchRole(_)
        | IamError::NoSuchGroup(_)
        | IamError::NoSuchPolicy(_) => S3Error::new(ErrorCode::NoSuchEntity, e.to_string()),
        IamError::UserExists(_) | IamError::Exists(_) => {
            S3Error::new(ErrorCode::EntityAlreadyExists, e.to_string())
        }
        IamError::InvalidName(_) | IamError::Invalid(_) => S3Error::invalid_argument(e.to_string()),
        IamError::Meta(_) | IamError::Seal(_) => S3Error::internal(e),
    }
}

/// Authenticates an admin request (any signed principal; anonymous is refused).
async fn authenticated(app: &App, parts: &http::request::Parts) -> S3Result<Authenticated> {
    let query = Query::parse(parts.uri.query().unwrap_or(""))?;
    let facts = RequestFacts {
        bucket: None,
        key: None,
        source_ip: None,
        secure: false,
    };
    let authn = authenticate(
        parts,
        &query,
        app.sources(),
        &app.config.region,
        None,
        &facts,
    )
    .await?;
    if matches!(authn.principal, Principal::Anonymous) {
        return Err(S3Error::access_denied());
    }
    Ok(authn)
}

/// Authorizes `action` (a Cedar `iam` action on the node): root, or a principal the policies
/// (and the authorizer plugins) allow it.
async fn authorize_admin(
    app: &App,
    parts: &http::request::Parts,
    authn: &Authenticated,
    action: &str,
) -> S3Result<()> {
    authorize_admin_on(app, parts, authn, action, Resource::Node).await
}

/// Authorizes an admin `action` on `resource` (the node, or a KMS key).
async fn authorize_admin_on(
    app: &App,
    parts: &http::request::Parts,
    authn: &Authenticated,
    action: &str,
    resource: Resource<'_>,
) -> S3Result<()> {
    let conn = parts.extensions.get::<crate::server::ConnInfo>();
    let caller = super::access::Caller {
        principal: &authn.principal,
        method: authn.method,
        source_ip: conn.map(|i| i.peer.ip()),
        secure: conn.is_some_and(|i| i.tls),
        headers: &parts.headers,
        query: None,
    };
    let context = caller.context(None);
    super::access::decide(app, &authn.principal, action, resource, &context).await
}

/// `GET /_sluice/admin/plugins`: loaded plugins with version, counters and call times.
async fn plugins(app: &App, req: Request<Body>) -> S3Result<Response<Body>> {
    if req.method() != Method::GET {
        return Err(S3Error::new(
            ErrorCode::MethodNotAllowed,
            "The plugin listing takes GET",
        ));
    }
    let (parts, _) = req.into_parts();
    let authn = authenticated(app, &parts).await?;
    authorize_admin(app, &parts, &authn, "sluice:ListPlugins").await?;
    Ok(json_response(StatusCode::OK, &app.plugins.describe()))
}

/// A POST to the admin API: its parts, who signed it, and its body (whose hash was checked
/// against the signature). Commands name their action in the body, so the body is read before
/// the decision; nothing runs until both pass.
async fn signed_post(
    app: &App,
    req: Request<Body>,
) -> S3Result<(http::request::Parts, Authenticated, bytes::Bytes)> {
    if req.method() != Method::POST {
        return Err(S3Error::new(
            ErrorCode::MethodNotAllowed,
            "The admin API takes POST",
        ));
    }
    let (parts, body) = req.into_parts();
    let authn = authenticated(app, &parts).await?;
    let expected = match authn.payload {
        Payload::Sha256(h) => h,
        _ => {
            return Err(S3Error::new(
                ErrorCode::AccessDenied,
                "The admin API requires a signed payload",
            ));
        }
    };
    let bytes = body::read_to_limit(body::plain(body, Some(expected)), MAX_ADMIN_BODY).await?;
    Ok((parts, authn, bytes))
}

/// `POST .../policy/explain`: one decision with its deciding policies.
async fn explain(app: &App, req: Request<Body>) -> S3Result<Response<Body>> {
    let (parts, authn, bytes) = signed_post(app, req).await?;
    authorize_admin(app, &parts, &authn, "iam:ListPolicies").await?;
    let input: crate::policy::explain::ExplainInput = serde_json::from_slice(&bytes)
        .map_err(|e| S3Error::invalid_argument(format!("bad explain request: {e}")))?;
    let value = crate::policy::explain::explain(&app.policy, &app.iam, app.store.as_ref(), &input)
        .await
        .map_err(S3Error::invalid_argument)?;
    Ok(json_response(StatusCode::OK, &value))
}

/// `POST .../kms`: one key-provider admin command, decided as its `kms` action on the key (or on
/// the node for create and list).
async fn kms_command(app: &App, req: Request<Body>) -> S3Result<Response<Body>> {
    let (parts, authn, bytes) = signed_post(app, req).await?;
    let cmd: crate::crypto::kms_admin::KmsCommand = serde_json::from_slice(&bytes)
        .map_err(|e| S3Error::invalid_argument(format!("bad kms command: {e}")))?;
    let hands_out_keys = matches!(
        cmd,
        crate::crypto::kms_admin::KmsCommand::GenerateDataKey { .. }
            | crate::crypto::kms_admin::KmsCommand::Decrypt { .. }
    );
    if hands_out_keys {
        require_secure(
            app,
            &parts,
            "Data keys are only handed out over a secure connection.",
        )?;
    }
    let resource = match cmd.key_id() {
        Some(k) => Resource::Key(k),
        None => Resource::Node,
    };
    authorize_admin_on(app, &parts, &authn, cmd.action(), resource).await?;
    tracing::info!(command = ?cmd, "kms command");
    let value = crate::crypto::kms_admin::run(&app.keys, &cmd)
        .await
        .map_err(|e| match e {
            crate::crypto::KeyError::Kms { code, message } if code == "KMS.ValidationException" => {
                S3Error::invalid_argument(message)
            }
            other => other.into(),
        })?;
    Ok(json_response(StatusCode::OK, &value))
}

/// Refuses a request that carries a secret over plain HTTP from off the machine.
fn require_secure(app: &App, parts: &http::request::Parts, message: &str) -> S3Result<()> {
    let conn = parts.extensions.get::<crate::server::ConnInfo>();
    if super::secret_transport_ok(
        conn.is_some_and(|i| i.tls),
        conn.map(|i| i.peer.ip()),
        app.config.allow_insecure_secrets,
    ) {
        Ok(())
    } else {
        Err(S3Error::new(ErrorCode::InvalidRequest, message.to_string()))
    }
}

async fn replication_command(app: &App, req: Request<Body>) -> S3Result<Response<Body>> {
    use crate::replication::admin::{ReplicationAdminError as E, ReplicationCommand};
    let (parts, authn, bytes) = signed_post(app, req).await?;
    let cmd: ReplicationCommand = serde_json::from_slice(&bytes)
        .map_err(|e| S3Error::invalid_argument(format!("bad replication command: {e}")))?;
    if matches!(cmd, ReplicationCommand::Credentials { .. }) {
        require_secure(
            app,
            &parts,
            "Credentials are only accepted over a secure connection.",
        )?;
    }
    authorize_admin(app, &parts, &authn, cmd.action()).await?;
    // The command itself may carry a secret: log only what it is.
    tracing::info!(action = cmd.action(), "replication command");
    let value = crate::replication::admin::run(&app.config, app.store.as_ref(), &app.iam, &cmd)
        .await
        .map_err(|e| match e {
            E::NoSuchBucket(b) => S3Error::no_such_bucket(&b),
            E::NoSuchTarget(_) => S3Error::invalid_argument(e.to_string()),
            E::Store(e) => e.into(),
            E::Iam(e) => iam_error(e),
        })?;
    Ok(json_response(StatusCode::OK, &value))
}

async fn iam_command(app: &App, req: Request<Body>) -> S3Result<Response<Body>> {
    let (parts, authn, bytes) = signed_post(app, req).await?;
    let cmd: AdminCommand = serde_json::from_slice(&bytes)
        .map_err(|e| S3Error::invalid_argument(format!("bad admin command: {e}")))?;
    authorize_admin(app, &parts, &authn, cmd.action()).await?;
    tracing::info!(command = ?cmd, "admin command");
    let value = app.iam.run(&cmd).map_err(iam_error)?;
    if cmd.changes_identity()
        && let Err(e) = app.policy.refresh_identity(&app.iam)
    {
        tracing::error!("attached policies not reloaded: {e}");
    }
    Ok(json_response(StatusCode::OK, &value))
}
