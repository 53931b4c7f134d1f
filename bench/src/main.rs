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
    let resp = client.request(req).await?;
    let status = resp.status().as_u16();
    let mut body = resp.into_body();
    let mut n = 0u64;
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame?.into_data() {
            n += data.len() as u64;
        }
    }
    Ok((status, n))
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
    let client: HttpClient = Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(args.concurrency * 2)
        .build_http();

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
    let deadline = Instant::now() + Duration::from_secs_f64(args.seconds);
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..args.concurrency {
        let (args, client, payload) = (args.clone(), client.clone(), payload.clone());
        let (issued, bytes_moved, errors) = (issued.clone(), bytes_moved.clone(), errors.clone());
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
                    _ => ("GET", Bytes::new()),
                };
                let t0 = Instant::now();
                let result = match build_request(&args, &identity, method, &path, body) {
                    Ok(req) => send(&client, req).await,
                    Err(e) => Err(e),
                };
                match result {
                    Ok((200, got)) => {
                        latencies.push(t0.elapsed().as_secs_f64() * 1000.0);
                        let moved = if args.op == Op::Put {
                            args.size as u64
                        } else {
                            got
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
        "{{\"op\":\"{:?}\",\"size\":{},\"concurrency\":{},\"ops\":{},\"errors\":{},\"seconds\":{:.3},\"ops_per_sec\":{:.1},\"mb_per_sec\":{:.1},\"p50_ms\":{:.2},\"p99_ms\":{:.2}}}",
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
    );
    if errors.load(Ordering::Relaxed) > 0 {
        bail!("{} requests failed", errors.load(Ordering::Relaxed));
    }
    Ok(())
}
