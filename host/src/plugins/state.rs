//! The data each plugin `Store` carries: WASI contexts (no filesystem, no sockets), the HTTP
//! gate, memory limits, call timing and what the host imports need (name, config, kv).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use wasmtime::component::ResourceTable;
use wasmtime::{StoreLimits, StoreLimitsBuilder};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpHooks, WasiHttpView};

use super::kv::PluginKv;

/// What every instance of one plugin shares.
pub struct PluginShared {
    pub name: String,
    /// The plugin's `config` table as JSON.
    pub config: serde_json::Value,
    pub kv: Option<PluginKv>,
    /// The plugin's own sealing key (derived from the node master key), for `sealing`.
    pub sealing: Option<crate::crypto::master_key::MasterKey>,
    /// Hosts (`name` or `name:port`) the plugin may reach with `wasi:http`.
    pub allowed_hosts: Vec<String>,
    /// Outgoing requests refused because the host was not allowed.
    pub denied_requests: AtomicU64,
}

/// Time spent inside a call, split into time in the guest and time in host functions (which
/// includes waiting on `wasi:http`). The epoch deadline only charges guest time.
#[derive(Default)]
pub struct CallTiming {
    pub started: Option<Instant>,
    pub host_since: Option<Instant>,
    pub host_total: Duration,
    pub cpu_budget: Duration,
    /// The call's wall-clock limit: a guest that keeps calling the host is stopped here even
    /// though it never yields to the timer.
    pub wall_budget: Duration,
    /// `kv` writes made in this call (bounded: each one is a durable commit).
    pub kv_writes: u32,
}

/// Most `kv` writes one call may make.
pub const MAX_KV_WRITES_PER_CALL: u32 = 16;

impl CallTiming {
    pub fn begin(&mut self, cpu_budget: Duration, wall_budget: Duration) {
        self.started = Some(Instant::now());
        self.host_since = None;
        self.host_total = Duration::ZERO;
        self.cpu_budget = cpu_budget;
        self.wall_budget = wall_budget;
        self.kv_writes = 0;
    }

    /// Wall-clock time since the call began.
    pub fn elapsed(&self) -> Duration {
        self.started.map(|s| s.elapsed()).unwrap_or_default()
    }

    /// Guest time used so far in this call.
    pub fn guest_time(&self) -> Duration {
        let Some(started) = self.started else {
            return Duration::ZERO;
        };
        let in_host = self.host_total + self.host_since.map(|s| s.elapsed()).unwrap_or_default();
        started.elapsed().saturating_sub(in_host)
    }
}

/// Lets a plugin send a request only to the hosts its config allows.
pub struct HttpGate {
    shared: Arc<PluginShared>,
}

impl HttpGate {
    /// Whether `uri` may be reached: an entry `host:port` allows exactly that port, a bare
    /// `host` only the scheme's default port (80 for http, 443 for https).
    pub fn allows(allowed: &[String], uri: &http::Uri) -> bool {
        let Some(authority) = uri.authority() else {
            return false;
        };
        if authority.as_str().contains('@') {
            return false;
        }
        let host = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']');
        let default_port = if uri.scheme() == Some(&http::uri::Scheme::HTTPS) {
            443
        } else {
            80
        };
        let port = authority.port_u16().unwrap_or(default_port);
        allowed.iter().any(|entry| {
            let entry = entry.trim();
            let (h, p) = match entry.rsplit_once(':') {
                Some((h, p)) if !h.contains(':') || h.ends_with(']') => (h, p.parse::<u16>().ok()),
                _ => (entry, Some(default_port)),
            };
            p == Some(port)
                && h.trim_start_matches('[')
                    .trim_end_matches(']')
                    .eq_ignore_ascii_case(host)
        })
    }
}

impl WasiHttpHooks for HttpGate {
    fn send_request(
        &mut self,
        request: http::Request<wasmtime_wasi_http::WasiBody>,
        options: Option<wasmtime_wasi_http::RequestOptions>,
        fut: Box<dyn Future<Output = Result<(), wasmtime_wasi_http::Error>> + Send>,
    ) -> Box<
        dyn Future<
                Output = Result<
                    (
                        http::Response<wasmtime_wasi_http::WasiBody>,
                        Box<dyn Future<Output = Result<(), wasmtime_wasi_http::Error>> + Send>,
                    ),
                    wasmtime_wasi_http::Error,
                >,
            > + Send,
    > {
        _ = fut;
        let allowed = Self::allows(&self.shared.allowed_hosts, request.uri());
        if !allowed {
            self.shared.denied_requests.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(
                plugin = %self.shared.name,
                uri = %request.uri(),
                "plugin tried to reach a host not in its allowed_hosts"
            );
            return Box::new(async { Err(wasmtime_wasi_http::Error::HttpRequestDenied) });
        }
        Box::new(async move {
            use http_body_util::BodyExt;
            let (response, io) = wasmtime_wasi_http::default_send_request(request, options).await?;
            Ok((
                response.map(BodyExt::boxed_unsync),
                Box::new(io) as Box<dyn Future<Output = _> + Send>,
            ))
        })
    }
}

/// The `T` of every plugin `Store<T>`.
pub struct PluginState {
    pub shared: Arc<PluginShared>,
    wasi: WasiCtx,
    http: WasiHttpCtx,
    pub table: ResourceTable,
    hooks: HttpGate,
    pub limits: StoreLimits,
    pub timing: CallTiming,
}

impl PluginState {
    pub fn new(shared: Arc<PluginShared>, memory_bytes: usize) -> PluginState {
        let mut table = ResourceTable::new();
        // Host-side resources (HTTP fields, streams) a plugin may hold at once.
        table.set_max_capacity(4096);
        let mut wasi = wasmtime_wasi::WasiCtxBuilder::new();
        // No preopened directories, no environment, no arguments, no sockets.
        wasi.allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .allow_blocking_current_thread(false);
        PluginState {
            hooks: HttpGate {
                shared: shared.clone(),
            },
            shared,
            wasi: wasi.build(),
            http: WasiHttpCtx::new(),
            table,
            limits: StoreLimitsBuilder::new()
                .memory_size(memory_bytes)
                .table_elements(100_000)
                .instances(64)
                .memories(2)
                .tables(64)
                .trap_on_grow_failure(true)
                .build(),
            timing: CallTiming::default(),
        }
    }
}

impl WasiView for PluginState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for PluginState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.hooks,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allowed_hosts_match_name_and_port() {
        let allowed = vec!["idp.example.com".to_string(), "127.0.0.1:8080".to_string()];
        let a = |s: &str| s.parse::<http::Uri>().unwrap();
        assert!(HttpGate::allows(
            &allowed,
            &a("https://idp.example.com/keys")
        ));
        assert!(HttpGate::allows(
            &allowed,
            &a("https://IDP.example.com:443/")
        ));
        assert!(HttpGate::allows(&allowed, &a("http://idp.example.com/")));
        // A bare host allows only the scheme's default port.
        assert!(!HttpGate::allows(
            &allowed,
            &a("http://idp.example.com:6379/")
        ));
        assert!(HttpGate::allows(&allowed, &a("http://127.0.0.1:8080/")));
        assert!(!HttpGate::allows(&allowed, &a("http://127.0.0.1:8081/")));
        assert!(!HttpGate::allows(&allowed, &a("http://127.0.0.1/")));
        assert!(!HttpGate::allows(&allowed, &a("https://evil.example.com/")));
        assert!(!HttpGate::allows(
            &allowed,
            &a("https://idp.example.com.evil.net/")
        ));
        assert!(!HttpGate::allows(
            &allowed,
            &a("https://x@idp.example.com/")
        ));
    }
}
