//! The S3 listener: accepts TCP connections (TCP_NODELAY on each), serves HTTP/1.1 with
//! hyper through axum, and shuts down gracefully on SIGINT/SIGTERM.

use std::sync::Arc;

use axum::serve::ListenerExt;

use crate::config::Config;
use crate::node::Node;
use crate::s3::{self, App, Metrics};

pub async fn serve(config: Config) -> anyhow::Result<()> {
    let node = Node::open(&config)?;
    if let Some(root) = node.iam.ensure_root()? {
        // Shown once, on the first start; never logged again.
        println!("Sluice root credentials (shown only this once; store them now):");
        println!("  access key: {}", root.access_key);
        println!("  secret key: {}", root.secret_key.as_str());
    }
    let store = node.local_store(&config)?;
    let listener = tokio::net::TcpListener::bind(config.address)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on `{}`: {e}", config.address))?;
    let local = listener.local_addr()?;
    tracing::info!(address = %local, data_dir = %config.data_dir.display(), region = %config.region, "sluice serving S3");
    let app = Arc::new(App {
        iam: node.iam.clone(),
        store: Arc::new(store),
        metrics: Metrics::default(),
        config,
    });
    let router = axum::Router::new().fallback(move |req: axum::extract::Request| {
        let app = app.clone();
        assert_send(s3::handle(app, req))
    });
    let listener = listener.tap_io(|tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::warn!(error = %e, "cannot set TCP_NODELAY");
        }
    });
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown_signal())
        .await?;
    drop(node);
    tracing::info!("sluice stopped");
    Ok(())
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
