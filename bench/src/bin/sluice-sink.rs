//! `sluice-sink`: the loopback HTTP ceiling for `make bench-peers`. A bare hyper HTTP/1.1 server
//! that reads and discards every request body and answers GETs with `--get-size` bytes from
//! memory, so `sluice-bench` against it measures the client, the HTTP stack and loopback alone:
//! no signature check, no storage, no disk.

use std::convert::Infallible;
use std::net::SocketAddr;

use bytes::Bytes;
use clap::Parser;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

#[derive(Parser, Debug)]
#[command(about = "HTTP server that discards bodies (loopback throughput ceiling)")]
struct Args {
    /// Address to listen on
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// Bytes in the answer to every GET
    #[arg(long, default_value_t = 4096)]
    get_size: usize,
}

async fn answer(
    req: Request<Incoming>,
    get_body: Bytes,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let is_get = req.method() == Method::GET;
    let mut body = req.into_body();
    // Drain the upload frame by frame; nothing is kept.
    while let Some(frame) = body.frame().await {
        if frame.is_err() {
            break;
        }
    }
    let payload = if is_get { get_body } else { Bytes::new() };
    let mut resp = Response::new(Full::new(payload));
    resp.headers_mut()
        .insert("etag", hyper::header::HeaderValue::from_static("\"sink\""));
    Ok(resp)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let listener = TcpListener::bind(args.listen).await?;
    // The harness reads the chosen port from this line.
    println!("listening on {}", listener.local_addr()?);
    let get_body = Bytes::from(vec![0u8; args.get_size]);
    loop {
        let (stream, _) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        let get_body = get_body.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| answer(req, get_body.clone()));
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}
