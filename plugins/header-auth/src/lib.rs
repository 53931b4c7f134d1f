//! `header-auth`: for deployments behind an authenticating proxy. A request that comes straight
//! from one of the configured proxy addresses and carries the identity header is vouched for as
//! that identity; the same header from anywhere else is ignored.
//!
//! ```toml
//! [plugins.config]
//! trusted_proxies = ["10.0.0.0/8"]     # addresses or CIDRs; empty = trust nobody
//! user_header = "x-forwarded-user"     # default
//! groups_header = "x-forwarded-groups" # default; comma-separated
//! email_header = "x-forwarded-email"   # default; passed on as attribute `email`
//! ```

use std::net::IpAddr;
use std::sync::OnceLock;

use serde::Deserialize;

wit_bindgen::generate!({
    path: "../../wit",
    world: "authenticator",
});

use exports::sluice::plugin::authentication::Guest as Authentication;
use exports::sluice::plugin::plugin_info::Guest as PluginInfo;
use sluice::plugin::config;
use sluice::plugin::types::{Credential, Error, Principal, RequestView};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Settings {
    #[serde(default)]
    trusted_proxies: Vec<String>,
    #[serde(default = "default_user_header")]
    user_header: String,
    #[serde(default = "default_groups_header")]
    groups_header: String,
    #[serde(default = "default_email_header")]
    email_header: String,
}

fn default_user_header() -> String {
    "x-forwarded-user".into()
}
fn default_groups_header() -> String {
    "x-forwarded-groups".into()
}
fn default_email_header() -> String {
    "x-forwarded-email".into()
}

struct Parsed {
    proxies: Vec<(IpAddr, u8)>,
    user_header: String,
    groups_header: String,
    email_header: String,
}

fn parse_net(text: &str) -> Option<(IpAddr, u8)> {
    let (addr, prefix) = match text.split_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (text, None),
    };
    let addr: IpAddr = addr.trim().parse().ok()?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let prefix = match prefix {
        Some(p) => p.trim().parse().ok().filter(|n| *n <= max)?,
        None => max,
    };
    Some((addr, prefix))
}

fn contains((net, prefix): (IpAddr, u8), ip: IpAddr) -> bool {
    let ip = match (net, ip) {
        (IpAddr::V4(_), IpAddr::V6(v6)) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        _ => ip,
    };
    match (net, ip) {
        (IpAddr::V4(n), IpAddr::V4(a)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            u32::from(n) & mask == u32::from(a) & mask
        }
        (IpAddr::V6(n), IpAddr::V6(a)) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            u128::from(n) & mask == u128::from(a) & mask
        }
        _ => false,
    }
}

fn settings() -> Result<&'static Parsed, String> {
    static SETTINGS: OnceLock<Result<Parsed, String>> = OnceLock::new();
    SETTINGS
        .get_or_init(|| {
            let s: Settings = serde_json::from_str(&config::get_all())
                .map_err(|e| format!("header-auth config: {e}"))?;
            let mut proxies = Vec::new();
            for p in &s.trusted_proxies {
                proxies.push(
                    parse_net(p)
                        .ok_or_else(|| format!("header-auth config: bad proxy address `{p}`"))?,
                );
            }
            Ok(Parsed {
                proxies,
                user_header: s.user_header.to_ascii_lowercase(),
                groups_header: s.groups_header.to_ascii_lowercase(),
                email_header: s.email_header.to_ascii_lowercase(),
            })
        })
        .as_ref()
        .map_err(Clone::clone)
}

/// The header's value; a header given twice is refused (a proxy that appends instead of
/// replacing would otherwise pass the client's own copy along).
fn header<'a>(request: &'a RequestView, name: &str) -> Result<Option<&'a str>, Error> {
    let mut values = request.headers.iter().filter(|(n, _)| n == name);
    let first = values.next().map(|(_, v)| v.as_str());
    if values.next().is_some() {
        return Err(Error::Invalid(format!("{name} given more than once")));
    }
    Ok(first)
}

struct HeaderAuth;

impl PluginInfo for HeaderAuth {
    fn info() -> (String, String) {
        ("header-auth".into(), env!("CARGO_PKG_VERSION").into())
    }

    fn health() -> Result<(), String> {
        settings().map(|_| ())
    }
}

impl Authentication for HeaderAuth {
    fn lookup_credential(_access_key: String) -> Result<Option<Credential>, Error> {
        Ok(None)
    }

    fn authenticate(request: RequestView) -> Result<Option<Principal>, Error> {
        let s = settings().map_err(Error::Internal)?;
        let Some(user) = header(&request, &s.user_header)? else {
            return Ok(None);
        };
        let Ok(peer) = request.source_ip.parse::<IpAddr>() else {
            return Ok(None);
        };
        if !s.proxies.iter().any(|net| contains(*net, peer)) {
            // The identity header from an untrusted peer proves nothing.
            return Ok(None);
        }
        let user = user.trim();
        if user.is_empty() || user.len() > 256 || user.chars().any(char::is_control) {
            return Err(Error::Invalid(format!("bad {} header", s.user_header)));
        }
        let groups = header(&request, &s.groups_header)?
            .map(|g| {
                g.split(',')
                    .map(str::trim)
                    .filter(|g| !g.is_empty())
                    .map(String::from)
                    .collect()
            })
            .unwrap_or_default();
        let mut attributes = Vec::new();
        if let Some(email) = header(&request, &s.email_header)? {
            attributes.push(("email".to_string(), email.trim().to_string()));
        }
        Ok(Some(Principal {
            subject: user.to_string(),
            display_name: user.to_string(),
            groups,
            attributes,
        }))
    }
}

export!(HeaderAuth);
