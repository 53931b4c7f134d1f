//! `sluice-bench`: a concurrent, SigV4-signed S3 load generator. Runs one operation (PUT or GET
//! of objects of one size) at a fixed concurrency and prints one JSON line of results.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, bail};
use aws_sigv4::http_request::{
    PayloadChecksumKind, PercentEncodingMode, SignableBody, SignableRequest, SigningSettings,
    UriPathNormalizationMode, sign,
};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use bytes::Bytes;
use clap::{Parser, ValueEnum};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq)]
enum Op {
    CreateBucket,
    Put,
    Get,
    /// DELETE `obj-N` (one key per operation; use `--count` = `--keys` to delete each once)
    Delete,
    /// One ListObjectsV2 of the whole bucket (all pages of 1000) per operation
    List,
}

#[derive(Parser, Debug)]
#[command(about = "SigV4-signed S3 load generator")]
struct Args {
    #[arg(long)]
    endpoint: String,
    #[arg(long, env = "AWS_ACCESS_KEY_ID")]
    access_key: String,
    #[arg(long, env = "AWS_SECRET_ACCESS_KEY")]
    secret_key: String,
    #[arg(long, default_value = "us-east-1")]
    region: String,
    #[arg(long, default_value = "bench")]
    bucket: String,
    #[arg(long, value_enum)]
    op: Op,
    /// Object size in bytes
    #[arg(long, default_value_t = 4096)]
    size: usize,
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Stop after this many seconds...
    #[arg(long, default_value_t = 10.0)]
    seconds: f64,
    /// ...or after this many operations in total, whichever comes first
    #[arg(long, default_value_t = u64::MAX)]
    count: u64,
    /// Distinct keys written / read (`obj-0` .. `obj-N`)
    #[arg(long, default_value_t = 1000)]
    keys: u64,
    /// `x-amz-server-side-encryption` on PUTs (`AES256` or `aws:kms`)
    #[arg(long)]
    sse: Option<String>,
    /// For `list`: stop a listing once this many keys were seen (whole pages of 1000)
    #[arg(long, default_value_t = u64::MAX)]
    list_limit: u64,
}

type HttpClient = Client<HttpConnector, Full<Bytes>>;

fn build_request(
    args: &Args,
    identity: &Identity,
    method: &str,
    path: &str,
    body: Bytes,
) -> anyhow::Result<http::Request<Full<Bytes>>> {
    let url = format!("{}{}", args.endpoint.trim_end_matches('/'), path);
    let mut req = http::Request::builder()
        .method(method)
        .uri(&url)
        .header("content-length", body.len().to_string())
        .body(Full::new(body))?;
    if method == "PUT"
        && path.matches('/').count() > 1
        && let Some(sse) = &args.sse
    {
        req.headers_mut()
            .insert("x-amz-server-side-encryption", sse.parse()?);
    }
    let host = req
        .uri()
        .authority()
        .context("endpoint has no host")?
        .to_string();
    req.headers_mut().insert("host", host.parse()?);
    let headers: Vec<(String, String)> = req
        .headers()
        .iter()
        .filter_map(|(k, v)| Some((k.as_str().to_string(), v.to_str().ok()?.to_string())))
        .collect();
    let signable = SignableRequest::new(
        method,
        url.clone(),
        headers.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        SignableBody::UnsignedPayload,
    )?;
    let mut settings = SigningSettings::default();
    settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
    settings.percent_encoding_mode = PercentEncodingMode::Single;
    settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
    let params = v4::SigningParams::builder()
        .identity(identity)
        .region(&args.region)
        .name("s3")
        .time(SystemTime::now())
        .settings(settings)
        .build()?
        .into();
    let (instructions, _) = sign(signable, &params)?.into_parts();
    instructions.apply_to_request_http1x(&mut req);
    Ok(req)
}

async fn send(client: &HttpClient, req: http::Request<Full<Bytes>>) -> anyhow::Result<(u16, u64)> {
    let (status, n, _) = exchange(client, req, false).await?;
    Ok((status, n))
}

/// The status and byte count of an answer, and its body only when asked (listings).
async fn exchange(
    client: &HttpClient,
    req: http::Request<Full<Bytes>>,
    keep: bool,
) -> anyhow::Result<(u16, u64, Vec<u8>)> {
    let resp = client.request(req).await?;
    let status = resp.status().as_u16();
    let mut body = resp.into_body();
    let mut kept = Vec::new();
    let mut n = 0u64;
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame?.into_data() {
            n += data.len() as u64;
            if keep {
                kept.extend_from_slice(&data);
            }
        }
    }
    Ok((status, n, kept))
}

/// The text of the first `<name>` element of an S3 answer.
fn element<'a>(xml: &'a str, name: &str) -> Option<&'a str> {
    let open = format!("<{name}>");
    let start = xml.find(&open)? + open.len();
    let end = xml[start..].find(&format!("</{name}>"))? + start;
    Some(&xml[start..end])
}

/// Lists the whole bucket with ListObjectsV2, page by page; the status of the last page and
/// the number of keys seen.
async fn list_all(
    args: &Args,
    identity: &Identity,
    client: &HttpClient,
) -> anyhow::Result<(u16, u64)> {
    let mut token: Option<String> = None;
    let mut keys = 0u64;
    loop {
        let mut path = format!("/{}?list-type=2&max-keys=1000", args.bucket);
        if let Some(t) = &token {
            let enc: String = t
                .bytes()
                .map(|b| {
                    if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                        (b as char).to_string()
                    } else {
                        format!("%{b:02X}")
                    }
                })
                .collect();
            path.push_str(&format!("&continuation-token={enc}"));
        }
        let req = build_request(args, identity, "GET", &path, Bytes::new())?;
        let (status, _, body) = exchange(client, req, true).await?;
        if status != 200 {
            return Ok((status, keys));
        }
        let text = String::from_utf8_lossy(&body);
        keys += text.matches("<Key>").count() as u64;
        if keys >= args.list_limit {
            return Ok((200, keys));
        }
        match (
            element(&text, "IsTruncated"),
            element(&text, "NextContinuationToken"),
        ) {
            (Some("true"), Some(t)) => token = Some(t.replace("&amp;", "&")),
            _ => return Ok((200, keys)),
        }
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Arc::new(Args::parse());
    let identity: Identity = aws_credential_types::Credentials::new(
        &args.access_key,
        &args.secret_key,
        None,
        None,
        "bench",
    )
    .into();
    // As the SDKs do: small requests and answers go out at once, not after a delayed ACK.
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    let client: HttpClient = Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(args.concurrency * 2)
        .build(connector);

    if args.op == Op::CreateBucket {
        let req = build_request(
            &args,
            &identity,
            "PUT",
            &format!("/{}", args.bucket),
            Bytes::new(),
        )?;
        let (status, _) = send(&client, req).await?;
        if status != 200 && status != 409 {
            bail!("create bucket answered {status}");
        }
        return Ok(());
    }

    let payload = Bytes::from(
        (0..args.size)
            .map(|i| (i as u32).wrapping_mul(2654435761).to_be_bytes()[0])
            .collect::<Vec<u8>>(),
    );
    let issued = Arc::new(AtomicU64::new(0));
    let bytes_moved = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let items = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs_f64(args.seconds);
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..args.concurrency {
        let (args, client, payload) = (args.clone(), client.clone(), payload.clone());
        let (issued, bytes_moved, errors) = (issued.clone(), bytes_moved.clone(), errors.clone());
        let items = items.clone();
        let identity = identity.clone();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            loop {
                let n = issued.fetch_add(1, Ordering::Relaxed);
                if n >= args.count || Instant::now() >= deadline {
                    break;
                }
                let path = format!("/{}/obj-{}", args.bucket, n % args.keys);
                let (method, body) = match args.op {
                    Op::Put => ("PUT", payload.clone()),
                    Op::Delete => ("DELETE", Bytes::new()),
                    _ => ("GET", Bytes::new()),
                };
                let t0 = Instant::now();
                let result = if args.op == Op::List {
                    list_all(&args, &identity, &client).await
                } else {
                    match build_request(&args, &identity, method, &path, body) {
                        Ok(req) => send(&client, req).await,
                        Err(e) => Err(e),
                    }
                };
                match result {
                    Ok((200 | 204, got)) => {
                        latencies.push(t0.elapsed().as_secs_f64() * 1000.0);
                        // Object bytes for PUT and GET; a listing counts the keys it saw.
                        let moved = match args.op {
                            Op::Put => args.size as u64,
                            Op::Delete => 0,
                            Op::List => {
                                items.fetch_add(got, Ordering::Relaxed);
                                0
                            }
                            _ => got,
                        };
                        bytes_moved.fetch_add(moved, Ordering::Relaxed);
                    }
                    _ => {
                        errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            latencies
        }));
    }
    let mut latencies = Vec::new();
    for t in tasks {
        latencies.extend(t.await?);
    }
    let elapsed = start.elapsed().as_secs_f64();
    latencies.sort_by(|a, b| a.total_cmp(b));
    let ops = latencies.len() as f64;
    let moved = bytes_moved.load(Ordering::Relaxed) as f64;
    println!(
        "{{\"op\":\"{:?}\",\"size\":{},\"concurrency\":{},\"ops\":{},\"errors\":{},\"seconds\":{:.3},\"ops_per_sec\":{:.1},\"mb_per_sec\":{:.1},\"p50_ms\":{:.2},\"p99_ms\":{:.2},\"items\":{}}}",
        args.op,
        args.size,
        args.concurrency,
        latencies.len(),
        errors.load(Ordering::Relaxed),
        elapsed,
        ops / elapsed,
        moved / elapsed / 1_048_576.0,
        percentile(&latencies, 0.50),
        percentile(&latencies, 0.99),
        items.load(Ordering::Relaxed),
    );
    if errors.load(Ordering::Relaxed) > 0 {
        bail!("{} requests failed", errors.load(Ordering::Relaxed));
    }
    Ok(())
}
