//! The listeners: plain HTTP and/or HTTPS (rustls, HTTP/1.1 and HTTP/2 by ALPN, certificate
//! reloaded on SIGHUP). Every accepted socket gets TCP_NODELAY; every request carries the
//! peer address and whether it came over TLS. Shuts down gracefully on SIGINT/SIGTERM.

use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tower::ServiceExt;

use crate::config::Config;
use crate::node::Node;
use crate::s3::{self, App, Metrics};

/// How a request reached the server; inserted into every request's extensions.
#[derive(Debug, Clone, Copy)]
pub struct ConnInfo {
    pub peer: SocketAddr,
    pub tls: bool,
}

/// The TLS configuration in force; replaced on SIGHUP.
type TlsConfig = Arc<RwLock<Arc<rustls::ServerConfig>>>;

fn load_tls(config: &Config) -> anyhow::Result<Option<rustls::ServerConfig>> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let (Some(cert), Some(key)) = (&config.tls_cert, &config.tls_key) else {
        return Ok(None);
    };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| anyhow::anyhow!("tls_cert `{}`: {e}", cert.display()))?
        .collect::<Result<_, _>>()
        .map_err(|e| anyhow::anyhow!("tls_cert `{}`: {e}", cert.display()))?;
    if certs.is_empty() {
        anyhow::bail!("tls_cert `{}` holds no certificate", cert.display());
    }
    let key = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| anyhow::anyhow!("tls_key `{}`: {e}", key.display()))?;
    let mut server = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| anyhow::anyhow!("tls: {e}"))?
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .map_err(|e| anyhow::anyhow!("tls certificate and key do not fit: {e}"))?;
    server.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Some(server))
}

pub async fn serve(config: Config) -> anyhow::Result<()> {
    let node = Node::open(&config)?;
    if let Some(root) = node.iam.ensure_root()? {
        // Shown once, on the first start; never logged again.
        println!("Sluice root credentials (shown only this once; store them now):");
        println!("  access key: {}", root.access_key);
        println!("  secret key: {}", root.secret_key.as_str());
    }
    let tls: Option<TlsConfig> = load_tls(&config)?.map(|c| Arc::new(RwLock::new(Arc::new(c))));
    let store = node.local_store(&config)?;

    // Plain HTTP on `address` unless TLS takes it over; TLS on `tls_address`, else `address`.
    let mut listeners = Vec::new();
    match (&tls, config.tls_address) {
        (Some(_), Some(tls_addr)) => {
            listeners.push((bind(config.address).await?, false));
            listeners.push((bind(tls_addr).await?, true));
        }
        (Some(_), None) => listeners.push((bind(config.address).await?, true)),
        (None, _) => listeners.push((bind(config.address).await?, false)),
    }
    for (l, is_tls) in &listeners {
        tracing::info!(
            address = %l.local_addr()?,
            tls = is_tls,
            data_dir = %config.data_dir.display(),
            region = %config.region,
            "sluice serving S3"
        );
    }
    let max_header = config.max_header_bytes;
    let plugins =
        crate::plugins::Registry::load(&config.plugins, Some(node.db.clone()), Some(&node.master))
            .await?;
    plugins.spawn_reloader();
    let chain = crate::auth::chain::AuthenticatorChain::new(plugins.clone());
    let policy = Arc::new(crate::policy::PolicyEngine::open(
        config.policies_dir.as_deref(),
        &node.iam,
    )?);
    if let Some(dir) = &config.policies_dir {
        policy.spawn_reloader(dir.clone());
    }
    tracing::info!(policies = policy.policy_count(), "policies loaded");
    let keys = Arc::new(crate::crypto::KeyService::new(
        &node.master,
        plugins.clone(),
    ));
    keys.spawn_sweeper();
    let app = Arc::new(App {
        policy,
        keys,
        plugins,
        chain,
        iam: node.iam.clone(),
        store: Arc::new(store),
        metrics: Metrics::default(),
        config: config.clone(),
    });
    crate::replication::worker::spawn(app.clone());
    crate::lifecycle::spawn(app.clone());
    let n = s3::bucket_policy::load_all(app.store.as_ref(), &app.policy)
        .await
        .map_err(|e| anyhow::anyhow!("loading bucket policies: {}", e.message))?;
    tracing::info!(buckets = n, "bucket policies loaded");
    let router = axum::Router::new().fallback(move |req: axum::extract::Request| {
        let app = app.clone();
        assert_send(s3::handle(app, req))
    });

    if let Some(tls) = &tls {
        spawn_tls_reloader(config.clone(), tls.clone());
    }
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut loops = Vec::new();
    for (listener, is_tls) in listeners {
        let tls = if is_tls { tls.clone() } else { None };
        loops.push(tokio::spawn(accept_loop(
            listener,
            tls,
            router.clone(),
            stop_rx.clone(),
            max_header,
        )));
    }
    shutdown_signal().await;
    let _ = stop_tx.send(true);
    // Let requests in flight finish, within reason.
    let drain = async {
        for l in loops {
            if let Ok(graceful) = l.await {
                graceful.shutdown().await;
            }
        }
    };
    if tokio::time::timeout(Duration::from_secs(10), drain)
        .await
        .is_err()
    {
        tracing::warn!("connections still open after 10 s; closing them");
    }
    drop(node);
    tracing::info!("sluice stopped");
    Ok(())
}

async fn bind(addr: SocketAddr) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on `{addr}`: {e}"))
}

async fn accept_loop(
    listener: TcpListener,
    tls: Option<TlsConfig>,
    router: axum::Router,
    mut stop: watch::Receiver<bool>,
    max_header: usize,
) -> GracefulShutdown {
    let graceful = GracefulShutdown::new();
    loop {
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = stop.changed() => break,
        };
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::warn!(error = %e, "cannot set TCP_NODELAY");
        }
        let router = router.clone();
        let watcher: Watcher = graceful.watcher();
        let tls = tls.clone();
        tokio::spawn(async move {
            let info = ConnInfo {
                peer,
                tls: tls.is_some(),
            };
            let service = hyper::service::service_fn(move |mut req: http::Request<Incoming>| {
                req.extensions_mut().insert(info);
                router.clone().oneshot(req.map(axum::body::Body::new))
            });
            let mut builder = auto::Builder::new(TokioExecutor::new());
            builder.http1().max_buf_size(max_header.max(8192));
            if tls.is_none() {
                // Plain listeners speak HTTP/1.1 only; HTTP/2 is negotiated over TLS.
                builder = builder.http1_only();
            }
            match tls {
                Some(tls) => {
                    let cfg = match tls.read() {
                        Ok(c) => c.clone(),
                        Err(_) => return,
                    };
                    let acceptor = tokio_rustls::TlsAcceptor::from(cfg);
                    let stream =
                        match tokio::time::timeout(Duration::from_secs(30), acceptor.accept(tcp))
                            .await
                        {
                            Ok(Ok(s)) => s,
                            Ok(Err(e)) => {
                                tracing::debug!(%peer, error = %e, "TLS handshake failed");
                                return;
                            }
                            Err(_) => return,
                        };
                    let conn = builder.serve_connection(TokioIo::new(stream), service);
                    if let Err(e) = watcher.watch(conn.into_owned()).await {
                        tracing::debug!(%peer, error = %e, "connection ended with an error");
                    }
                }
                None => {
                    let conn = builder.serve_connection(TokioIo::new(tcp), service);
                    if let Err(e) = watcher.watch(conn.into_owned()).await {
                        tracing::debug!(%peer, error = %e, "connection ended with an error");
                    }
                }
            }
        });
    }
    graceful
}

/// Reloads the certificate and key on SIGHUP; a bad pair is logged and the old one kept.
fn spawn_tls_reloader(config: Config, tls: TlsConfig) {
    tokio::spawn(async move {
        let Ok(mut hup) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        else {
            return;
        };
        while hup.recv().await.is_some() {
            match load_tls(&config) {
                Ok(Some(new)) => {
                    if let Ok(mut slot) = tls.write() {
                        *slot = Arc::new(new);
                        tracing::info!("TLS certificate reloaded");
                    }
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::error!(error = %e, "TLS reload failed; keeping the old certificate")
                }
            }
        }
    });
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => {
            let _ = ctrl_c.await;
            return;
        }
    };
    tokio::select! {
        _ = ctrl_c => {},
        _ = term.recv() => {},
    }
}

fn assert_send<F: std::future::Future + Send>(f: F) -> F {
    f
}
