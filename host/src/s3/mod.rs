//! The S3 protocol: routing, SigV4, XML and errors, and the request pipeline that runs
//! route -> authenticate -> authorize -> operation. One file per operation family.

pub mod access;
pub mod acl;
pub mod admin;
pub mod attributes;
pub mod auth;
pub mod body;
pub mod bucket;
pub mod bucket_config;
pub mod bucket_policy;
pub mod copy;
pub mod cors;
pub mod delete;
pub mod encryption;
pub mod error;
pub mod get;
pub mod lifecycle;
pub mod list;
pub mod multipart;
pub mod post_object;
pub mod put;
pub mod replication;
pub mod router;
pub mod sigv2;
pub mod sigv4;
pub mod sts;
pub mod tagging;
pub mod unsupported_config;
pub mod xml;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::body::Body;
use http::request::Parts;
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode};
use tracing::Instrument;

use self::auth::{AuthMethod, Payload};
use self::body::TrailerSlot;
use self::error::{ErrorCode, S3Error, S3Result};
use self::router::{Endpoint, Query};
use crate::auth::Principal;
use crate::auth::chain::AuthenticatorChain;
use crate::auth::iam::Iam;
use crate::config::Config;
use crate::plugins::Registry;
use crate::store::{BodyStream, BucketInfo, Store};

/// Counters for `/_sluice/metrics`.
#[derive(Default)]
pub struct Metrics {
    pub requests: AtomicU64,
    pub errors: AtomicU64,
    pub bytes_in: AtomicU64,
    pub bytes_out: AtomicU64,
    pub replication: crate::replication::worker::ReplicationMetrics,
    pub lifecycle: crate::lifecycle::LifecycleMetrics,
}

/// Everything a request needs: configuration, identity and storage.
pub struct App {
    pub config: Config,
    pub store: Arc<dyn Store>,
    pub iam: Arc<Iam>,
    pub plugins: Arc<Registry>,
    pub chain: Arc<AuthenticatorChain>,
    pub policy: Arc<crate::policy::PolicyEngine>,
    pub keys: Arc<crate::crypto::KeyService>,
    pub metrics: Metrics,
}

impl App {
    /// Where credentials come from: the IAM store, then the authenticator plugins.
    pub fn sources(&self) -> auth::Sources<'_> {
        auth::Sources {
            iam: &self.iam,
            chain: &self.chain,
        }
    }
}

/// A bucket configuration document Sluice stores as JSON; one that does not parse fails the
/// request (an internal error) rather than being taken as absent.
pub async fn json_bucket_config<T: serde::de::DeserializeOwned>(
    app: &App,
    bucket: &str,
    kind: &str,
) -> S3Result<Option<T>> {
    match app.store.bucket_config(bucket, kind).await? {
        Some(raw) => serde_json::from_slice(&raw)
            .map(Some)
            .map_err(|e| S3Error::internal(format!("bucket {bucket} {kind} config: {e}"))),
        None => Ok(None),
    }
}

/// One request in flight, after authentication.
pub struct RequestCtx<'a> {
    pub app: &'a App,
    /// Scheme, host and addressing style the client used.
    pub origin: Origin,
    pub request_id: String,
    pub principal: Principal,
    pub auth_method: AuthMethod,
    pub parts: Parts,
    pub query: Query,
    payload: Option<Payload>,
    /// In a mutex only so that `&RequestCtx` is `Send` across awaits (`Body` is not `Sync`).
    body: std::sync::Mutex<Option<Body>>,
    /// Headers that arrived after an aws-chunked body.
    pub trailers: TrailerSlot,
    /// The addressed bucket as read when the request was authorized.
    bucket: Option<BucketInfo>,
}

impl RequestCtx<'_> {
    /// Who makes this request, for authorization decisions inside an operation.
    pub fn caller(&self) -> access::Caller<'_> {
        access::Caller {
            principal: &self.principal,
            method: self.auth_method,
            source_ip: self
                .parts
                .extensions
                .get::<crate::server::ConnInfo>()
                .map(|i| i.peer.ip()),
            secure: self.origin.secure,
            headers: &self.parts.headers,
            query: Some(&self.query),
        }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.parts.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn headers(&self) -> &HeaderMap {
        &self.parts.headers
    }

    /// A trailer of an aws-chunked body, once the body has been read.
    pub fn trailer(&self, name: &str) -> Option<String> {
        let trailers = self.trailers.lock().ok()?;
        trailers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    }

    fn is_aws_chunked(&self) -> bool {
        matches!(self.payload, Some(Payload::Chunked { .. }))
    }

    /// Length of the payload as the client declared it (decoded length for aws-chunked).
    pub fn declared_length(&self) -> S3Result<Option<u64>> {
        let name = if self.is_aws_chunked() {
            "x-amz-decoded-content-length"
        } else {
            "content-length"
        };
        match self.header(name) {
            None => Ok(None),
            Some(v) => v.trim().parse().map(Some).map_err(|_| {
                S3Error::invalid_argument(format!("{name} must be a non-negative integer"))
            }),
        }
    }

    /// The request body as a verified stream (signature, SHA-256, chunk signatures).
    pub fn take_body(&mut self) -> S3Result<BodyStream> {
        let body = self
            .body
            .get_mut()
            .ok()
            .and_then(Option::take)
            .unwrap_or_else(Body::empty);
        let decoded = if self.is_aws_chunked() {
            self.declared_length()?
        } else {
            None
        };
        Ok(match self.payload.take().unwrap_or(Payload::Unsigned) {
            Payload::Unsigned => body::plain(body, None),
            Payload::Sha256(hash) => body::plain(body, Some(hash)),
            Payload::Chunked { signer, trailer } => {
                body::aws_chunked(body, signer, trailer, decoded, self.trailers.clone())
            }
        })
    }

    /// Reads a small request document (XML), verified like any other body: its payload
    /// signature, then its Content-MD5 and any `x-amz-checksum-*` header or trailer.
    pub async fn read_small_body(&mut self, limit: u64) -> S3Result<bytes::Bytes> {
        self.read_document(limit, true).await
    }

    /// CompleteMultipartUpload's document. Its `x-amz-checksum-*` headers name the assembled
    /// object (checked against the parts), not this body, so only Content-MD5 is checked here.
    pub async fn read_complete_body(&mut self, limit: u64) -> S3Result<bytes::Bytes> {
        self.read_document(limit, false).await
    }

    async fn read_document(&mut self, limit: u64, checksums: bool) -> S3Result<bytes::Bytes> {
        let stream = self.take_body()?;
        let doc = body::read_to_limit(stream, limit).await?;
        put::verify_document(self, &doc, checksums)?;
        Ok(doc)
    }

    /// Sets (`Some`) or removes (`None`) a configuration document of an existing bucket.
    pub async fn set_bucket_config(
        &self,
        bucket: &str,
        kind: &str,
        value: Option<Vec<u8>>,
    ) -> S3Result<()> {
        self.existing_bucket(bucket).await?;
        Ok(self
            .app
            .store
            .put_bucket_config(bucket, kind, value)
            .await?)
    }

    /// The bucket and object the request names, both of which must exist.
    pub async fn existing_object(
        &self,
        bucket: &str,
        key: &str,
    ) -> S3Result<(BucketInfo, crate::store::ObjectMeta)> {
        let info = self.existing_bucket(bucket).await?;
        let meta = self
            .app
            .store
            .object(bucket, key)
            .await?
            .ok_or_else(|| S3Error::no_such_key(key))?;
        Ok((info, meta))
    }

    /// The owner and ACL of a new object the request writes in `bucket`, from its headers and
    /// the bucket's rules (see `acl::for_new_object`).
    pub async fn new_object_acl(&self, bucket: &BucketInfo) -> S3Result<acl::NewObjectAcl> {
        acl::for_new_object(
            self.app,
            self.headers(),
            bucket,
            self.principal.id().unwrap_or(""),
        )
        .await
    }

    /// The bucket the request names, which must exist. The addressed bucket is the one read
    /// to authorize the request (one store read less per request); another is read now.
    pub async fn existing_bucket(&self, name: &str) -> S3Result<BucketInfo> {
        if let Some(b) = &self.bucket
            && b.name == name
        {
            return Ok(b.clone());
        }
        self.app
            .store
            .bucket(name)
            .await?
            .ok_or_else(|| S3Error::no_such_bucket(name))
    }
}

/// How the request addressed the server, for URLs in answers (`Location`).
#[derive(Debug, Clone)]
pub struct Origin {
    pub secure: bool,
    pub host: String,
    /// The bucket came from the host name, so URLs leave it out of the path.
    pub virtual_host: bool,
}

impl Origin {
    /// The URL of an object as the client addressed this server.
    pub fn object_url(&self, bucket: &str, key: &str) -> String {
        let scheme = if self.secure { "https" } else { "http" };
        let key = sigv4::uri_encode(key.as_bytes(), true);
        if self.virtual_host {
            format!("{scheme}://{}/{key}", self.host)
        } else {
            format!("{scheme}://{}/{bucket}/{key}", self.host)
        }
    }
}

/// Builds an XML response.
pub fn xml_response(status: StatusCode, xml: String) -> Response<Body> {
    let mut r = Response::new(Body::from(xml));
    *r.status_mut() = status;
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/xml"),
    );
    r
}

pub fn empty_response(status: StatusCode) -> Response<Body> {
    let mut r = Response::new(Body::empty());
    *r.status_mut() = status;
    r
}

/// Header bytes as stored text: each byte becomes the char of the same code (ISO-8859-1), so any
/// value, UTF-8 or not, is kept byte-exact.
pub fn header_text(value: &HeaderValue) -> String {
    value.as_bytes().iter().map(|&b| b as char).collect()
}

/// Inserts a header whose value came from stored data (see [`header_text`]); values that are
/// not valid header bytes are skipped rather than failing the response.
pub fn set_header(headers: &mut HeaderMap, name: &str, value: &str) {
    let value = if value.is_ascii() {
        HeaderValue::from_str(value)
    } else if value.chars().all(|c| (c as u32) < 256) {
        HeaderValue::from_bytes(&value.chars().map(|c| c as u8).collect::<Vec<u8>>())
    } else {
        HeaderValue::from_bytes(value.as_bytes())
    };
    if let (Ok(n), Ok(v)) = (http::HeaderName::from_bytes(name.as_bytes()), value) {
        headers.insert(n, v);
    }
}

fn new_request_id() -> String {
    let mut raw = [0u8; 8];
    rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut raw);
    hex::encode_upper(raw)
}

pub fn error_response(e: &S3Error, resource: &str, request_id: &str, head: bool) -> Response<Body> {
    let mut r = if head {
        empty_response(e.code.status())
    } else {
        let mut w = xml::XmlWriter::bare("Error");
        w.elem("Code", e.code.as_str()).elem("Message", &e.message);
        for (name, value) in &e.details {
            w.elem(name, value);
        }
        w.elem("Resource", resource)
            .elem("RequestId", request_id)
            .elem("HostId", request_id);
        xml_response(e.code.status(), w.finish("Error"))
    };
    *r.status_mut() = e.code.status();
    r
}

/// Entry point for every request that reaches the S3 listener.
pub async fn handle(app: Arc<App>, req: Request<Body>) -> Response<Body> {
    let request_id = new_request_id();
    let span = tracing::info_span!("request", id = %request_id, method = %req.method(), path = %req.uri().path());
    async move {
        app.metrics.requests.fetch_add(1, Ordering::Relaxed);
        let head = req.method() == Method::HEAD;
        let resource = req.uri().path().to_string();
        let has_body = req.headers().contains_key(http::header::TRANSFER_ENCODING)
            || req
                .headers()
                .get(http::header::CONTENT_LENGTH)
                .is_some_and(|v| v.as_bytes() != b"0");
        // The host the client addressed (and signed), and whether its connection was secure,
        // are settled first: routing, signatures and CORS all depend on them.
        let (mut parts, body) = req.into_parts();
        let secure = forwarded(&app, &mut parts);
        // Requests from browsers get Access-Control-* headers when a CORS rule matches; a
        // request that names the method it stands for (as a preflight would) is matched on it.
        let cors_request = parts
            .headers
            .get(http::header::ORIGIN)
            .and_then(|v| v.to_str().ok())
            .filter(|_| parts.method != Method::OPTIONS)
            .map(|origin| {
                let host = parts
                    .headers
                    .get(http::header::HOST)
                    .and_then(|v| v.to_str().ok());
                let bucket = router::target(host, parts.uri.path(), &app.config.domains)
                    .ok()
                    .and_then(|t| t.bucket);
                let method = parts
                    .headers
                    .get("access-control-request-method")
                    .and_then(|v| Method::from_bytes(v.as_bytes()).ok())
                    .unwrap_or_else(|| parts.method.clone());
                (origin.to_string(), bucket, method)
            });
        let req = Request::from_parts(parts, body);
        let mut response = if resource.starts_with("/_sluice/") {
            admin::handle(&app, req, &request_id).await
        } else {
            let result = match secure {
                Ok(secure) => handle_s3(&app, req, &request_id, secure).await,
                Err(e) => Err(e),
            };
            match result {
                Ok(r) => r,
                Err(e) => {
                    tracing::info!(code = e.code.as_str(), message = %e.message, "request failed");
                    error_response(&e, &resource, &request_id, head)
                }
            }
        };
        if let Some((origin, bucket, method)) = &cors_request {
            cors::decorate(&app, bucket.as_deref(), method, origin, &mut response).await;
        }
        if response.status().is_client_error() || response.status().is_server_error() {
            app.metrics.errors.fetch_add(1, Ordering::Relaxed);
        }
        let refused = response.status().is_client_error() || response.status().is_server_error();
        let h = response.headers_mut();
        // A request refused before its body was read leaves that body on the connection: close
        // it rather than risk reading the rest of the body as the next request.
        if has_body && refused {
            h.insert(http::header::CONNECTION, HeaderValue::from_static("close"));
        }
        if let Ok(v) = HeaderValue::from_str(&request_id) {
            h.insert("x-amz-request-id", v.clone());
            h.insert("x-amz-id-2", v);
        }
        h.insert(http::header::SERVER, HeaderValue::from_static("Sluice"));
        response
    }
    .instrument(span)
    .await
}

/// Applies a trusted proxy's `X-Forwarded-Host` (the host the client signed) and tells whether
/// the client's connection was secure.
fn forwarded(app: &App, parts: &mut Parts) -> S3Result<bool> {
    let info = parts.extensions.get::<crate::server::ConnInfo>().copied();
    let tls = info.is_some_and(|i| i.tls);
    let trusted = info.is_some_and(|i| {
        app.config
            .trusted_proxies
            .iter()
            .any(|net| net.contains(i.peer.ip()))
    });
    // HTTP/2 carries the host in `:authority`; signatures and routing want it as `Host`.
    if !parts.headers.contains_key(http::header::HOST)
        && let Some(authority) = parts.uri.authority()
        && let Ok(v) = HeaderValue::from_str(authority.as_str())
    {
        parts.headers.insert(http::header::HOST, v);
    }
    // Chained proxies append: the first element is what the client used.
    let first = |headers: &HeaderMap, name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(',').next())
            .map(|v| v.trim().to_string())
    };
    let mut secure = tls;
    if trusted {
        if let Some(host) =
            first(&parts.headers, "x-forwarded-host").and_then(|h| HeaderValue::from_str(&h).ok())
        {
            parts.headers.insert(http::header::HOST, host);
        }
        if let Some(proto) = first(&parts.headers, "x-forwarded-proto") {
            secure = proto.eq_ignore_ascii_case("https");
        }
    }
    if carries_secret_insecurely(
        &parts.headers,
        secure,
        info.map(|i| i.peer.ip()),
        app.config.allow_insecure_secrets,
    ) {
        return Err(S3Error::new(
            ErrorCode::InvalidRequest,
            "Requests specifying Server Side Encryption with Customer provided keys must be made over a secure connection.",
        ));
    }
    Ok(secure)
}

/// SSE-C keys travel in headers: AWS refuses them over plain HTTP. Loopback peers (a local
/// proxy or test) and `allow_insecure_secrets` are the exceptions.
pub fn carries_secret_insecurely(
    headers: &HeaderMap,
    secure: bool,
    peer: Option<std::net::IpAddr>,
    allow_insecure: bool,
) -> bool {
    let has_key = headers
        .keys()
        .any(|k| k.as_str().contains("server-side-encryption-customer-key"));
    has_key && !secret_transport_ok(secure, peer, allow_insecure)
}

/// Whether a secret (an SSE-C key, a plaintext data key) may travel on this connection: TLS,
/// a loopback peer, or `allow_insecure_secrets`.
pub fn secret_transport_ok(
    secure: bool,
    peer: Option<std::net::IpAddr>,
    allow_insecure: bool,
) -> bool {
    secure || allow_insecure || peer.is_some_and(|p| p.is_loopback())
}

async fn handle_s3(
    app: &App,
    req: Request<Body>,
    request_id: &str,
    secure: bool,
) -> S3Result<Response<Body>> {
    let (parts, body) = req.into_parts();
    let query = Query::parse(parts.uri.query().unwrap_or(""))?;
    let host = parts
        .headers
        .get(http::header::HOST)
        .and_then(|v| v.to_str().ok())
        .or_else(|| parts.uri.host());
    let target = router::target(host, parts.uri.path(), &app.config.domains)?;
    if parts.method == Method::OPTIONS {
        return cors::preflight(app, target.bucket.as_deref(), &parts.headers).await;
    }
    let facts = auth::RequestFacts {
        bucket: target.bucket.as_deref(),
        key: target.key.as_deref(),
        source_ip: parts
            .extensions
            .get::<crate::server::ConnInfo>()
            .map(|i| i.peer.ip()),
        secure,
    };
    if target.bucket.is_none() && sts::is_sts_request(&parts, &query) {
        return Ok(sts::handle(app, parts, body, query, &facts, request_id).await);
    }
    let vhost_bucket = target.bucket.as_deref().filter(|_| target.virtual_host);
    let authenticate = || {
        auth::authenticate(
            &parts,
            &query,
            app.sources(),
            &app.config.region,
            vhost_bucket,
            &facts,
        )
    };
    let endpoint = match router::route(
        &parts.method,
        &target,
        &query,
        parts
            .headers
            .get("x-amz-copy-source")
            .map(|v| v.to_str().unwrap_or("\u{0}")),
    ) {
        Ok(endpoint) => endpoint,
        Err(refused) => {
            // S3 checks who asks before it judges what was asked: a badly signed request gets
            // its authentication error, not a verdict on the request it could not make.
            authenticate().await?;
            return Err(refused);
        }
    };
    if let Endpoint::PostObject { bucket } = &endpoint {
        // The form carries its own signed policy; it is checked once the fields are read.
        let content_type = parts
            .headers
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let host = parts
            .headers
            .get(http::header::HOST)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("localhost");
        let origin = Origin {
            secure,
            host: host.to_string(),
            virtual_host: target.virtual_host,
        };
        return post_object::post_object(app, bucket, content_type, body, &origin, facts.source_ip)
            .await;
    }
    let authn = authenticate().await?;
    let bucket_info = match endpoint.bucket() {
        Some(b) if !matches!(endpoint, Endpoint::CreateBucket { .. }) => {
            app.store.bucket(b).await?
        }
        _ => None,
    };
    let caller = access::Caller {
        principal: &authn.principal,
        method: authn.method,
        source_ip: facts.source_ip,
        secure,
        headers: &parts.headers,
        query: Some(&query),
    };
    access::authorize(app, &caller, &endpoint, bucket_info.as_ref()).await?;
    if let (Some(expected), Some(b)) = (
        parts
            .headers
            .get("x-amz-expected-bucket-owner")
            .and_then(|v| v.to_str().ok()),
        &bucket_info,
    ) && expected != b.owner_id
    {
        return Err(S3Error::access_denied());
    }
    // A copy also reads its source, which must be readable by the same principal, and whose
    // absence is told only to who may list its bucket, as for a GET.
    if let Endpoint::CopyObject { source, .. } | Endpoint::UploadPartCopy { source, .. } = &endpoint
    {
        let Some(src_bucket) = app.store.bucket(&source.bucket).await? else {
            return Err(S3Error::no_such_bucket(&source.bucket));
        };
        let key = &source.key;
        if let Err(e) =
            access::authorize_object(app, &caller, None, "s3:GetObject", &src_bucket, key).await
        {
            return Err(access::denied_read(app, &caller, &src_bucket, key, e).await);
        }
    }
    tracing::debug!(
        op = endpoint.name(),
        principal = authn.principal.display_name(),
        "authorized"
    );
    let origin = Origin {
        secure,
        host: parts
            .headers
            .get(http::header::HOST)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("localhost")
            .to_string(),
        virtual_host: target.virtual_host,
    };
    let mut ctx = RequestCtx {
        app,
        origin,
        request_id: request_id.to_string(),
        principal: authn.principal,
        auth_method: authn.method,
        parts,
        query,
        payload: Some(authn.payload),
        body: std::sync::Mutex::new(Some(body)),
        trailers: TrailerSlot::default(),
        bucket: bucket_info,
    };
    match endpoint {
        Endpoint::ListBuckets => bucket::list_buckets(&mut ctx).await,
        Endpoint::PutBucketPolicy { bucket } => bucket_policy::put(&mut ctx, &bucket).await,
        Endpoint::GetBucketAcl { bucket } => acl::get_bucket_acl(&mut ctx, &bucket).await,
        Endpoint::PutBucketAcl { bucket } => acl::put_bucket_acl(&mut ctx, &bucket).await,
        Endpoint::GetObjectAcl { bucket, key } => {
            acl::get_object_acl(&mut ctx, &bucket, &key).await
        }
        Endpoint::PutObjectAcl { bucket, key } => {
            acl::put_object_acl(&mut ctx, &bucket, &key).await
        }
        Endpoint::GetBucketPolicy { bucket } => bucket_policy::get(&mut ctx, &bucket).await,
        Endpoint::DeleteBucketPolicy { bucket } => bucket_policy::delete(&mut ctx, &bucket).await,
        Endpoint::GetBucketPolicyStatus { bucket } => {
            bucket_policy::status(&mut ctx, &bucket).await
        }
        Endpoint::CreateBucket { bucket } => bucket::create_bucket(&mut ctx, &bucket).await,
        Endpoint::HeadBucket { bucket } => bucket::head_bucket(&mut ctx, &bucket).await,
        Endpoint::DeleteBucket { bucket } => bucket::delete_bucket(&mut ctx, &bucket).await,
        Endpoint::GetBucketLocation { bucket } => {
            bucket::get_bucket_location(&mut ctx, &bucket).await
        }
        Endpoint::GetBucketVersioning { bucket } => {
            bucket::get_bucket_versioning(&mut ctx, &bucket).await
        }
        Endpoint::ListObjects { bucket } => list::list_objects_v1(&mut ctx, &bucket).await,
        Endpoint::ListObjectsV2 { bucket } => list::list_objects_v2(&mut ctx, &bucket).await,
        Endpoint::ListObjectVersions { bucket } => {
            list::list_object_versions(&mut ctx, &bucket).await
        }
        Endpoint::DeleteObjects { bucket } => delete::delete_objects(&mut ctx, &bucket).await,
        Endpoint::PutObject { bucket, key } => put::put_object(&mut ctx, &bucket, &key).await,
        Endpoint::GetObject { bucket, key } => {
            get::get_object(&mut ctx, &bucket, &key, false).await
        }
        Endpoint::HeadObject { bucket, key } => {
            get::get_object(&mut ctx, &bucket, &key, true).await
        }
        Endpoint::GetObjectAttributes { bucket, key } => {
            attributes::get_object_attributes(&mut ctx, &bucket, &key).await
        }
        Endpoint::DeleteObject { bucket, key } => {
            delete::delete_object(&mut ctx, &bucket, &key).await
        }
        Endpoint::CopyObject {
            bucket,
            key,
            source,
        } => copy::copy_object(&mut ctx, &bucket, &key, &source).await,
        Endpoint::CreateMultipartUpload { bucket, key } => {
            multipart::create_multipart_upload(&mut ctx, &bucket, &key).await
        }
        Endpoint::UploadPart { bucket, key } => {
            multipart::upload_part(&mut ctx, &bucket, &key).await
        }
        Endpoint::UploadPartCopy {
            bucket,
            key,
            source,
        } => multipart::upload_part_copy(&mut ctx, &bucket, &key, &source).await,
        Endpoint::CompleteMultipartUpload { bucket, key } => {
            multipart::complete_multipart_upload(&mut ctx, &bucket, &key).await
        }
        Endpoint::AbortMultipartUpload { bucket, key } => {
            multipart::abort_multipart_upload(&mut ctx, &bucket, &key).await
        }
        Endpoint::ListParts { bucket, key } => multipart::list_parts(&mut ctx, &bucket, &key).await,
        Endpoint::ListMultipartUploads { bucket } => {
            multipart::list_multipart_uploads(&mut ctx, &bucket).await
        }
        Endpoint::PutObjectTagging { bucket, key } => {
            tagging::put_object_tagging(&mut ctx, &bucket, &key).await
        }
        Endpoint::GetObjectTagging { bucket, key } => {
            tagging::get_object_tagging(&mut ctx, &bucket, &key).await
        }
        Endpoint::DeleteObjectTagging { bucket, key } => {
            tagging::delete_object_tagging(&mut ctx, &bucket, &key).await
        }
        Endpoint::PutBucketTagging { bucket } => {
            tagging::put_bucket_tagging(&mut ctx, &bucket).await
        }
        Endpoint::GetBucketTagging { bucket } => {
            tagging::get_bucket_tagging(&mut ctx, &bucket).await
        }
        Endpoint::DeleteBucketTagging { bucket } => {
            tagging::delete_bucket_tagging(&mut ctx, &bucket).await
        }
        Endpoint::PutBucketCors { bucket } => cors::put_bucket_cors(&mut ctx, &bucket).await,
        Endpoint::GetBucketCors { bucket } => cors::get_bucket_cors(&mut ctx, &bucket).await,
        Endpoint::DeleteBucketCors { bucket } => cors::delete_bucket_cors(&mut ctx, &bucket).await,
        Endpoint::PutBucketReplication { bucket } => {
            replication::put_bucket_replication(&mut ctx, &bucket).await
        }
        Endpoint::GetBucketReplication { bucket } => {
            replication::get_bucket_replication(&mut ctx, &bucket).await
        }
        Endpoint::DeleteBucketReplication { bucket } => {
            replication::delete_bucket_replication(&mut ctx, &bucket).await
        }
        Endpoint::PutBucketEncryption { bucket } => {
            encryption::put_bucket_encryption(&mut ctx, &bucket).await
        }
        Endpoint::GetBucketEncryption { bucket } => {
            encryption::get_bucket_encryption(&mut ctx, &bucket).await
        }
        Endpoint::DeleteBucketEncryption { bucket } => {
            encryption::delete_bucket_encryption(&mut ctx, &bucket).await
        }
        Endpoint::PutBucketOwnershipControls { bucket } => {
            bucket_config::put_ownership_controls(&mut ctx, &bucket).await
        }
        Endpoint::GetBucketOwnershipControls { bucket } => {
            bucket_config::get_ownership_controls(&mut ctx, &bucket).await
        }
        Endpoint::DeleteBucketOwnershipControls { bucket } => {
            bucket_config::delete_ownership_controls(&mut ctx, &bucket).await
        }
        Endpoint::PutPublicAccessBlock { bucket } => {
            bucket_config::put_public_access_block(&mut ctx, &bucket).await
        }
        Endpoint::GetPublicAccessBlock { bucket } => {
            bucket_config::get_public_access_block(&mut ctx, &bucket).await
        }
        Endpoint::DeletePublicAccessBlock { bucket } => {
            bucket_config::delete_public_access_block(&mut ctx, &bucket).await
        }
        Endpoint::PutBucketRequestPayment { bucket } => {
            bucket_config::put_request_payment(&mut ctx, &bucket).await
        }
        Endpoint::GetBucketRequestPayment { bucket } => {
            bucket_config::get_request_payment(&mut ctx, &bucket).await
        }
        Endpoint::GetUnsupportedConfig { bucket, config } => {
            unsupported_config::get_unsupported_config(&mut ctx, &bucket, config).await
        }
        Endpoint::PutBucketLifecycle { bucket } => {
            lifecycle::put_bucket_lifecycle(&mut ctx, &bucket).await
        }
        Endpoint::GetBucketLifecycle { bucket } => {
            lifecycle::get_bucket_lifecycle(&mut ctx, &bucket).await
        }
        Endpoint::DeleteBucketLifecycle { bucket } => {
            lifecycle::delete_bucket_lifecycle(&mut ctx, &bucket).await
        }
        Endpoint::DeleteBucketWebsite { bucket } => {
            unsupported_config::delete_unsupported_config(&mut ctx, &bucket).await
        }
        Endpoint::PostObject { .. } => Err(S3Error::internal("POST handled before dispatch")),
    }
}

/// Refuses a `versionId` other than `null` on a bucket that has never been versioned.
pub fn check_null_version(query: &Query) -> S3Result<()> {
    match query.get("versionId") {
        None | Some("null") => Ok(()),
        Some(_) => Err(
            S3Error::new(ErrorCode::InvalidArgument, "Invalid version id specified")
                .with("ArgumentName", "versionId"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sse_c_keys_need_a_secure_or_local_connection() {
        let mut h = HeaderMap::new();
        h.insert(
            "x-amz-server-side-encryption-customer-key",
            HeaderValue::from_static("a2V5"),
        );
        let remote: std::net::IpAddr = "192.0.2.7".parse().unwrap();
        let local: std::net::IpAddr = "127.0.0.1".parse().unwrap();
        assert!(carries_secret_insecurely(&h, false, Some(remote), false));
        assert!(!carries_secret_insecurely(&h, true, Some(remote), false));
        assert!(!carries_secret_insecurely(&h, false, Some(local), false));
        assert!(!carries_secret_insecurely(&h, false, Some(remote), true));
        assert!(!carries_secret_insecurely(
            &HeaderMap::new(),
            false,
            Some(remote),
            false
        ));
    }
}
