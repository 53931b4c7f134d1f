//! Plugin call overhead: the authenticator chain's cached lookup against an IAM-store lookup,
//! an uncached `lookup-credential` on a warm instance, `authenticate` with a JWT (ES256, RS256;
//! signature checked, and kept from an earlier use),
//! and a cold call (fresh `Store` + instantiation). Needs `make plugins` first.
//!
//! Besides criterion's estimates it prints p50/p99 per call over many single calls (the numbers
//! recorded in bench/README.md).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group};
use sluice::auth::chain::AuthenticatorChain;
use sluice::auth::iam::{AdminCommand, Iam};
use sluice::crypto::master_key::MasterKey;
use sluice::plugins::bindings::types::RequestView;
use sluice::plugins::{Failure, PluginLimits, PluginSpec, Registry, World};
use sluice::s3::auth::{Sources, lookup};

const PLUGIN_KEY: &str = "AKBENCHSTATICKEY01";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn spec(name: &str, file: &str, config: serde_json::Value, limits: PluginLimits) -> PluginSpec {
    PluginSpec {
        name: name.into(),
        world: World::Authenticator,
        path: repo().join("plugins/dist").join(file),
        config,
        limits,
        allowed_hosts: Vec::new(),
        failure: Failure::Closed,
    }
}

struct Setup {
    _dir: tempfile::TempDir,
    iam: Iam,
    iam_key: String,
    registry: Arc<Registry>,
    chain: Arc<AuthenticatorChain>,
    jwt_es256: RequestView,
    jwt_rs256: RequestView,
}

fn bearer(token: &str) -> RequestView {
    RequestView {
        method: "GET".into(),
        bucket: None,
        key: None,
        headers: vec![("authorization".into(), format!("Bearer {token}"))],
        query: Vec::new(),
        source_ip: "127.0.0.1".into(),
        secure: false,
    }
}

async fn setup() -> Setup {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = Arc::new(redb::Database::create(dir.path().join("meta.redb")).expect("redb"));
    let master = Arc::new(MasterKey::load_or_create(None, &dir.path().join("mk")).expect("key"));
    let iam = Iam::open(db.clone(), master, None).expect("iam");
    let user = iam
        .run(&AdminCommand::UserCreate {
            name: "bench".into(),
        })
        .expect("user");
    let iam_key = user["access_key"].as_str().expect("key").to_string();
    let fixtures = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("benches/fixtures");
    let jwks: serde_json::Value =
        serde_json::from_slice(&std::fs::read(fixtures.join("jwks.json")).expect("jwks"))
            .expect("jwks json");
    let tokens: serde_json::Value =
        serde_json::from_slice(&std::fs::read(fixtures.join("tokens.json")).expect("tokens"))
            .expect("tokens json");
    let specs = vec![
        spec(
            "keys",
            "static_keys.wasm",
            serde_json::json!({ "keys": [{
                "access_key": PLUGIN_KEY, "secret_key": "bench-secret-0001", "subject": "bench"
            }]}),
            PluginLimits::default(),
        ),
        spec(
            "idp",
            "oidc.wasm",
            serde_json::json!({
                "issuer": tokens["issuer"], "audience": tokens["audience"], "jwks": jwks,
            }),
            PluginLimits::default(),
        ),
        // The same, keeping no verified tokens: every call checks the signature.
        spec(
            "idp-full",
            "oidc.wasm",
            serde_json::json!({
                "issuer": tokens["issuer"], "audience": tokens["audience"], "jwks": jwks,
                "verified_tokens": 0,
            }),
            PluginLimits::default(),
        ),
        spec(
            "cold",
            "static_keys.wasm",
            serde_json::json!({ "keys": [] }),
            PluginLimits {
                recycle_after: 1,
                ..PluginLimits::default()
            },
        ),
    ];
    let registry = Registry::load(&specs, Some(db), None)
        .await
        .expect("plugins load");
    let chain = AuthenticatorChain::new(registry.clone());
    Setup {
        _dir: dir,
        iam,
        iam_key,
        registry,
        chain,
        jwt_es256: bearer(tokens["es256"].as_str().expect("es256")),
        jwt_rs256: bearer(tokens["rs256"].as_str().expect("rs256")),
    }
}

impl Setup {
    fn plugin(&self, name: &str) -> Arc<sluice::plugins::LoadedPlugin> {
        self.registry
            .slots
            .iter()
            .find(|s| s.spec.name == name)
            .expect("plugin")
            .current()
    }

    fn sources(&self) -> Sources<'_> {
        Sources {
            iam: &self.iam,
            chain: &self.chain,
        }
    }
}

fn percentile(sorted: &[Duration], q: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * q).round() as usize].as_secs_f64() * 1e6
}

async fn sample<F, Fut>(n: usize, mut f: F) -> (f64, f64)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = ()>,
{
    for _ in 0..n / 10 {
        f().await;
    }
    let mut times = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        f().await;
        times.push(t.elapsed());
    }
    times.sort();
    (percentile(&times, 0.5), percentile(&times, 0.99))
}

fn percentiles(rt: &tokio::runtime::Runtime, s: &Setup) {
    rt.block_on(async {
        let keys = s.plugin("keys");
        let idp = s.plugin("idp");
        let idp_full = s.plugin("idp-full");
        let cold = s.plugin("cold");
        let rows = [
            (
                "lookup, IAM-store key (redb + unseal)",
                sample(20_000, || async {
                    lookup(s.sources(), &s.iam_key, None).await.expect("iam");
                })
                .await,
            ),
            (
                "lookup, plugin key cached by the chain",
                sample(20_000, || async {
                    lookup(s.sources(), PLUGIN_KEY, None).await.expect("cached");
                })
                .await,
            ),
            (
                "lookup-credential on a warm instance (uncached)",
                sample(20_000, || async {
                    keys.lookup_credential(PLUGIN_KEY).await.expect("call");
                })
                .await,
            ),
            (
                "authenticate, bearer JWT ES256, signature checked",
                sample(2_000, || async {
                    idp_full.authenticate(&s.jwt_es256).await.expect("jwt");
                })
                .await,
            ),
            (
                "authenticate, bearer JWT RS256, signature checked",
                sample(2_000, || async {
                    idp_full.authenticate(&s.jwt_rs256).await.expect("jwt");
                })
                .await,
            ),
            (
                "authenticate, bearer JWT ES256, verified before (kept)",
                sample(20_000, || async {
                    idp.authenticate(&s.jwt_es256).await.expect("jwt");
                })
                .await,
            ),
            (
                "cold call: new Store + instantiate + call",
                sample(2_000, || async {
                    cold.lookup_credential("nobody").await.expect("cold");
                })
                .await,
            ),
        ];
        println!("\n| path | p50 µs | p99 µs |\n|---|---:|---:|");
        for (name, (p50, p99)) in rows {
            println!("| {name} | {p50:.2} | {p99:.2} |");
        }
        println!();
    });
}

fn criterion_benches(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let s = rt.block_on(setup());
    percentiles(&rt, &s);
    let keys = s.plugin("keys");
    let idp = s.plugin("idp");
    let cold = s.plugin("cold");
    let mut g = c.benchmark_group("plugins");
    g.bench_function("lookup_iam_key", |b| {
        b.to_async(&rt)
            .iter(|| async { lookup(s.sources(), &s.iam_key, None).await.expect("iam") })
    });
    g.bench_function("lookup_plugin_key_cached", |b| {
        b.to_async(&rt)
            .iter(|| async { lookup(s.sources(), PLUGIN_KEY, None).await.expect("cached") })
    });
    g.bench_function("lookup_credential_warm_uncached", |b| {
        b.to_async(&rt)
            .iter(|| async { keys.lookup_credential(PLUGIN_KEY).await.expect("call") })
    });
    g.bench_function("authenticate_jwt_es256_kept", |b| {
        b.to_async(&rt)
            .iter(|| async { idp.authenticate(&s.jwt_es256).await.expect("jwt") })
    });
    g.bench_function("instantiate_and_call", |b| {
        b.to_async(&rt)
            .iter(|| async { cold.lookup_credential("nobody").await.expect("cold") })
    });
    g.finish();
}

criterion_group!(benches, criterion_benches);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
}
