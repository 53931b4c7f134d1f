//! `oidc`: vouches for requests that carry an OpenID Connect ID token (a JWT signed with RS256 or
//! ES256), as `Authorization: Bearer <jwt>` or as the web identity token of an STS
//! `AssumeRoleWithWebIdentity` call.
//!
//! ```toml
//! [plugins.config]
//! issuer = "https://login.example.com"   # the `iss` claim must equal it; unset = inert
//! audience = ["sluice"]                  # required with issuer; `aud` must contain one
//! jwks_uri = "https://login.example.com/keys"  # fetched over wasi:http (allowed_hosts!) ...
//! # jwks = { keys = [ ... ] }            # ... or the JWKS inline
//! subject_claim = "sub"                  # default
//! groups_claim = "groups"                # default
//! name_claim = "preferred_username"      # default; falls back to the subject
//! leeway_seconds = 60                    # clock skew allowed on exp / nbf
//! jwks_cache_seconds = 3600              # how long a fetched JWKS is trusted
//! refetch_interval_seconds = 10          # unknown `kid`s refetch at most this often
//! verified_tokens = 1000                 # tokens kept verified per instance; 0 = none
//! ```
//!
//! A token whose `kid` is not in the cached JWKS makes the plugin fetch the JWKS again (at most
//! once per `refetch_interval_seconds`), so a key rotation at the issuer is picked up at once.
//!
//! A token that verified is kept (up to `verified_tokens` per instance, at most 10 000, tokens of
//! up to 4 KiB), so its next uses skip the signature check, which costs 0.9-2 ms in the guest:
//! its signature, issuer and audience cannot change, and `exp` and `nbf` are checked again on
//! every use. A kept token is checked in full again once the key set it was checked against is
//! no longer fresh (`jwks_cache_seconds` after that set was fetched) and whenever the instance
//! takes up another key set. Tokens that fail are never kept.

mod fetch;
mod jwt;

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::OnceLock;

use serde::Deserialize;
use serde_json::Value;

wit_bindgen::generate!({
    path: "../../wit",
    world: "authenticator",
});

use exports::sluice::plugin::authentication::Guest as Authentication;
use exports::sluice::plugin::plugin_info::Guest as PluginInfo;
use sluice::plugin::types::{Credential, Error, Principal, RequestView};
use sluice::plugin::{clock, config, kv, log};

#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    fn into_vec(self) -> Vec<String> {
        match self {
            OneOrMany::One(s) => vec![s],
            OneOrMany::Many(v) => v,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Settings {
    #[serde(default)]
    issuer: Option<String>,
    #[serde(default)]
    audience: Option<OneOrMany>,
    #[serde(default)]
    jwks_uri: Option<String>,
    #[serde(default)]
    jwks: Option<Value>,
    #[serde(default = "default_subject_claim")]
    subject_claim: String,
    #[serde(default = "default_groups_claim")]
    groups_claim: String,
    #[serde(default = "default_name_claim")]
    name_claim: String,
    #[serde(default = "default_leeway")]
    leeway_seconds: u64,
    #[serde(default = "default_cache")]
    jwks_cache_seconds: u64,
    #[serde(default = "default_refetch")]
    refetch_interval_seconds: u64,
    #[serde(default = "default_verified_tokens")]
    verified_tokens: usize,
}

fn default_verified_tokens() -> usize {
    1000
}

/// Bounds on the verified-token cache, so that it fits in an instance's memory (64 MiB by
/// default) whatever the tokens: at most this many entries, and no token longer than this kept.
const MAX_VERIFIED_TOKENS: usize = 10_000;
const MAX_KEPT_TOKEN_BYTES: usize = 4096;

fn default_refetch() -> u64 {
    10
}

fn default_subject_claim() -> String {
    "sub".into()
}
fn default_groups_claim() -> String {
    "groups".into()
}
fn default_name_claim() -> String {
    "preferred_username".into()
}
fn default_leeway() -> u64 {
    60
}
fn default_cache() -> u64 {
    3600
}

struct Parsed {
    settings: Settings,
    issuer: String,
    audience: Vec<String>,
    inline: Option<jwt::KeySet>,
}

fn settings() -> Result<Option<&'static Parsed>, String> {
    static SETTINGS: OnceLock<Result<Option<Parsed>, String>> = OnceLock::new();
    SETTINGS
        .get_or_init(|| {
            let mut s: Settings = serde_json::from_str(&config::get_all())
                .map_err(|e| format!("oidc config: {e}"))?;
            let Some(issuer) = s.issuer.take() else {
                return Ok(None);
            };
            if issuer.is_empty() {
                return Err("oidc config: issuer must not be empty".into());
            }
            let audience = s
                .audience
                .take()
                .map(OneOrMany::into_vec)
                .unwrap_or_default();
            if audience.is_empty() {
                return Err("oidc config: audience must name at least one audience".into());
            }
            let inline = match s.jwks.take() {
                Some(Value::String(text)) => Some(jwt::KeySet::parse(text.as_bytes())?),
                Some(value) => Some(jwt::KeySet::parse(value.to_string().as_bytes())?),
                None => None,
            };
            if inline.is_none() && s.jwks_uri.is_none() {
                return Err("oidc config: set jwks_uri or jwks".into());
            }
            if s.verified_tokens > MAX_VERIFIED_TOKENS {
                return Err(format!(
                    "oidc config: verified_tokens must be at most {MAX_VERIFIED_TOKENS}"
                ));
            }
            Ok(Some(Parsed {
                settings: s,
                issuer,
                audience,
                inline,
            }))
        })
        .as_ref()
        .map(Option::as_ref)
        .map_err(Clone::clone)
}

/// The settings of a configured plugin; without an `issuer` the plugin vouches for nobody.
fn configured() -> Result<&'static Parsed, Error> {
    settings()
        .map_err(Error::Internal)?
        .ok_or_else(|| Error::Internal("oidc is not configured".into()))
}

fn now_secs() -> u64 {
    clock::now_millis() / 1000
}

/// A fetched JWKS, kept in the instance and in the plugin's kv store (so that fresh instances
/// do not fetch again).
struct Cached {
    keys: jwt::KeySet,
    fetched_at: u64,
    /// SHA-256 of the JWKS document: the same set fetched again keeps the verified tokens.
    digest: [u8; 32],
}

fn digest(body: &[u8]) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    Sha256::digest(body).into()
}

thread_local! {
    static CACHE: RefCell<Option<Cached>> = const { RefCell::new(None) };
    static LAST_FETCH: RefCell<u64> = const { RefCell::new(0) };
}

const KV_JWKS: &str = "jwks";

fn load_from_kv() -> Option<Cached> {
    let raw = kv::get(KV_JWKS)?;
    if raw.len() < 8 {
        return None;
    }
    let (stamp, body) = raw.split_at(8);
    let fetched_at = u64::from_be_bytes(stamp.try_into().ok()?);
    let keys = jwt::KeySet::parse(body).ok()?;
    Some(Cached {
        keys,
        fetched_at,
        digest: digest(body),
    })
}

fn refresh(uri: &str, interval: u64) -> Result<(), Error> {
    let now = now_secs();
    let recent = LAST_FETCH.with(|l| {
        let last = *l.borrow();
        if last != 0 && now.saturating_sub(last) < interval {
            true
        } else {
            *l.borrow_mut() = now;
            false
        }
    });
    if recent {
        return Ok(());
    }
    let body = fetch::get(uri).map_err(|e| Error::Unavailable(format!("fetching JWKS: {e}")))?;
    let keys = jwt::KeySet::parse(&body).map_err(Error::Unavailable)?;
    let mut stored = now.to_be_bytes().to_vec();
    stored.extend_from_slice(&body);
    if let Err(e) = kv::set(KV_JWKS, &stored) {
        log::log(log::Level::Warn, &format!("oidc: cannot cache JWKS: {e}"));
    }
    set_keys(Some(Cached {
        keys,
        fetched_at: now,
        digest: digest(&body),
    }));
    Ok(())
}

/// Replaces the instance's key set. Tokens kept as verified were checked against the old one,
/// so unless the new one is the same document they are checked again (a key the issuer
/// withdrew stops its tokens at once; tokens with unknown kids, which make the plugin fetch
/// the set again, cannot flush the kept tokens while the set does not change).
fn set_keys(keys: Option<Cached>) {
    let changed = CACHE.with(|c| {
        let mut slot = c.borrow_mut();
        let changed = slot.as_ref().map(|c| c.digest) != keys.as_ref().map(|k| k.digest);
        *slot = keys;
        changed
    });
    if changed {
        VERIFIED.with(|v| v.borrow_mut().clear());
    }
}

/// Runs `f` on the current key set, fetching it first if there is none or it is stale.
fn with_keys<R>(
    f: impl Fn(&jwt::KeySet) -> Option<R>,
    kid: Option<&str>,
) -> Result<Option<R>, Error> {
    let parsed = configured()?;
    if let Some(inline) = &parsed.inline {
        return Ok(f(inline));
    }
    let Some(uri) = parsed.settings.jwks_uri.as_deref() else {
        return Ok(None);
    };
    let now = now_secs();
    let fresh = |c: &Cached| now.saturating_sub(c.fetched_at) < parsed.settings.jwks_cache_seconds;
    if CACHE.with(|c| c.borrow().as_ref().is_none_or(|c| !fresh(c))) {
        set_keys(load_from_kv().filter(|c| fresh(c)));
    }
    let interval = parsed.settings.refetch_interval_seconds;
    if CACHE.with(|c| c.borrow().is_none()) {
        refresh(uri, interval)?;
    }
    let known =
        |kid: Option<&str>| CACHE.with(|c| c.borrow().as_ref().is_some_and(|c| c.keys.has(kid)));
    if !known(kid) {
        // Another instance may have fetched a newer JWKS already.
        if let Some(stored) = load_from_kv() {
            let newer = CACHE.with(|c| {
                c.borrow()
                    .as_ref()
                    .is_none_or(|c| stored.fetched_at > c.fetched_at)
            });
            if newer {
                set_keys(Some(stored));
            }
        }
    }
    if !known(kid) {
        // A key the issuer rotated in since the last fetch.
        refresh(uri, interval)?;
    }
    Ok(CACHE.with(|c| c.borrow().as_ref().and_then(|c| f(&c.keys))))
}

fn claim_string(claims: &Value, name: &str) -> Option<String> {
    match claims.get(name)? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// A token that verified: who it names and the times checked on every use.
struct Verified {
    principal: Principal,
    exp: u64,
    nbf: Option<u64>,
    /// Unix seconds after which the token is verified afresh.
    until: u64,
}

thread_local! {
    static VERIFIED: RefCell<HashMap<String, Verified>> = RefCell::new(HashMap::new());
}

/// `exp` and `nbf` against `now`, with the configured leeway.
fn check_times(s: &Settings, now: u64, exp: u64, nbf: Option<u64>) -> Result<(), Error> {
    if now > exp.saturating_add(s.leeway_seconds) {
        return Err(Error::Denied("token has expired".into()));
    }
    if let Some(nbf) = nbf
        && nbf > now.saturating_add(s.leeway_seconds)
    {
        return Err(Error::Denied("token is not valid yet".into()));
    }
    Ok(())
}

/// The principal `token` names: from the verified-token cache when it is there (times checked
/// again), otherwise by verifying it in full, after which it is kept.
fn verify(token: &str) -> Result<Principal, Error> {
    let s = &configured()?.settings;
    let now = now_secs();
    if s.verified_tokens > 0 {
        // A kept token answers while its key set is fresh (its times checked again); one that
        // ran out or fails its times is dropped.
        let kept = VERIFIED.with(|v| {
            let mut v = v.borrow_mut();
            let e = v.get(token)?;
            let answer = (now < e.until)
                .then(|| check_times(s, now, e.exp, e.nbf).map(|()| e.principal.clone()));
            if !matches!(answer, Some(Ok(_))) {
                v.remove(token);
            }
            answer
        });
        if let Some(answer) = kept {
            return answer;
        }
    }
    let verified = verify_in_full(token, now)?;
    let principal = verified.principal.clone();
    if s.verified_tokens > 0 && token.len() <= MAX_KEPT_TOKEN_BYTES && now < verified.until {
        VERIFIED.with(|v| {
            let mut v = v.borrow_mut();
            if v.len() >= s.verified_tokens {
                // Full: first drop what has run out, then any one entry.
                v.retain(|_, e| now < e.until && check_times(s, now, e.exp, e.nbf).is_ok());
                if v.len() >= s.verified_tokens
                    && let Some(any) = v.keys().next().cloned()
                {
                    v.remove(&any);
                }
            }
            v.insert(token.to_string(), verified);
        });
    }
    Ok(principal)
}

fn verify_in_full(token: &str, now: u64) -> Result<Verified, Error> {
    let parsed = configured()?;
    let s = &parsed.settings;
    let unverified = jwt::Token::parse(token).map_err(Error::Invalid)?;
    let verified = with_keys(
        |keys| Some(keys.verify(&unverified)),
        unverified.header.kid.as_deref(),
    )?
    .unwrap_or_else(|| Err("no key to verify with".into()));
    verified.map_err(Error::Denied)?;
    let claims = &unverified.claims;
    if claim_string(claims, "iss").as_deref() != Some(parsed.issuer.as_str()) {
        return Err(Error::Denied("token issuer is not trusted".into()));
    }
    let audiences: Vec<String> = match claims.get("aud") {
        Some(Value::String(a)) => vec![a.clone()],
        Some(Value::Array(list)) => list
            .iter()
            .filter_map(|v| v.as_str().map(String::from))
            .collect(),
        _ => Vec::new(),
    };
    if !audiences.iter().any(|a| parsed.audience.contains(a)) {
        return Err(Error::Denied("token audience is not accepted".into()));
    }
    let exp = claims
        .get("exp")
        .and_then(Value::as_u64)
        .ok_or_else(|| Error::Denied("token has no exp claim".into()))?;
    let nbf = claims.get("nbf").and_then(Value::as_u64);
    check_times(s, now, exp, nbf)?;
    let subject = claim_string(claims, &s.subject_claim)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| Error::Denied(format!("token has no {} claim", s.subject_claim)))?;
    let groups = match claims.get(&s.groups_claim) {
        Some(Value::Array(list)) => list
            .iter()
            .filter_map(|v| v.as_str().map(String::from))
            .collect(),
        Some(Value::String(g)) => vec![g.clone()],
        _ => Vec::new(),
    };
    let mut attributes = vec![("iss".to_string(), parsed.issuer.clone())];
    if let Some(email) = claim_string(claims, "email") {
        attributes.push(("email".into(), email));
    }
    attributes.push(("exp".into(), exp.to_string()));
    Ok(Verified {
        principal: Principal {
            display_name: claim_string(claims, &s.name_claim).unwrap_or_else(|| subject.clone()),
            subject,
            groups,
            attributes,
        },
        exp,
        nbf,
        // No longer than the key set it was checked against is trusted.
        until: CACHE
            .with(|c| c.borrow().as_ref().map(|c| c.fetched_at))
            .filter(|_| parsed.inline.is_none())
            .unwrap_or(now)
            .saturating_add(s.jwks_cache_seconds),
    })
}

struct Oidc;

impl PluginInfo for Oidc {
    fn info() -> (String, String) {
        ("oidc".into(), env!("CARGO_PKG_VERSION").into())
    }

    fn health() -> Result<(), String> {
        if settings()?.is_none() {
            log::log(
                log::Level::Info,
                "oidc: no issuer configured; vouching for nobody",
            );
        }
        Ok(())
    }
}

impl Authentication for Oidc {
    fn lookup_credential(_access_key: String) -> Result<Option<Credential>, Error> {
        Ok(None)
    }

    fn authenticate(request: RequestView) -> Result<Option<Principal>, Error> {
        if settings().map_err(Error::Internal)?.is_none() {
            return Ok(None);
        }
        let header = |name: &str| {
            request
                .headers
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.as_str())
        };
        let token = if let Some(t) = header("x-sluice-web-identity-token") {
            t
        } else if let Some(t) = header("authorization").and_then(|a| {
            a.strip_prefix("Bearer ")
                .or_else(|| a.strip_prefix("bearer "))
        }) {
            t
        } else {
            return Ok(None);
        };
        verify(token.trim()).map(Some)
    }
}

export!(Oidc);
