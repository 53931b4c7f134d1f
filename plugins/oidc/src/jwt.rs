//! Compact JWS parsing and RS256 / ES256 verification against a JWKS.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use p256::ecdsa::signature::Verifier;
use rsa::traits::PublicKeyParts;
use serde::Deserialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

#[derive(Deserialize)]
pub struct Header {
    pub alg: String,
    #[serde(default)]
    pub kid: Option<String>,
}

pub struct Token {
    pub header: Header,
    pub claims: Value,
    signing_input: String,
    signature: Vec<u8>,
}

fn b64(part: &str) -> Result<Vec<u8>, String> {
    URL_SAFE_NO_PAD
        .decode(part.trim_end_matches('='))
        .map_err(|_| "token is not base64url".to_string())
}

impl Token {
    pub fn parse(token: &str) -> Result<Token, String> {
        if token.len() > 16 * 1024 {
            return Err("token too large".into());
        }
        let mut parts = token.split('.');
        let (Some(h), Some(c), Some(s), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err("token is not a compact JWS".into());
        };
        let header: Header =
            serde_json::from_slice(&b64(h)?).map_err(|_| "bad token header".to_string())?;
        let claims: Value =
            serde_json::from_slice(&b64(c)?).map_err(|_| "bad token claims".to_string())?;
        if !claims.is_object() {
            return Err("token claims are not an object".into());
        }
        Ok(Token {
            header,
            claims,
            signing_input: format!("{h}.{c}"),
            signature: b64(s)?,
        })
    }
}

enum Key {
    Rsa(rsa::RsaPublicKey),
    P256(p256::ecdsa::VerifyingKey),
}

struct Jwk {
    kid: Option<String>,
    key: Key,
}

pub struct KeySet {
    keys: Vec<Jwk>,
}

#[derive(Deserialize)]
struct RawSet {
    keys: Vec<Value>,
}

fn field(jwk: &Value, name: &str) -> Option<Vec<u8>> {
    b64(jwk.get(name)?.as_str()?).ok()
}

fn parse_key(jwk: &Value) -> Option<Key> {
    if jwk
        .get("use")
        .and_then(Value::as_str)
        .is_some_and(|u| u != "sig")
    {
        return None;
    }
    match jwk.get("kty")?.as_str()? {
        "RSA" => {
            let n = rsa::BigUint::from_bytes_be(&field(jwk, "n")?);
            let e = rsa::BigUint::from_bytes_be(&field(jwk, "e")?);
            let key = rsa::RsaPublicKey::new(n, e).ok()?;
            (key.size() >= 256).then_some(Key::Rsa(key))
        }
        "EC" if jwk.get("crv")?.as_str()? == "P-256" => {
            let x = field(jwk, "x")?;
            let y = field(jwk, "y")?;
            if x.len() != 32 || y.len() != 32 {
                return None;
            }
            let point = p256::EncodedPoint::from_affine_coordinates(
                p256::FieldBytes::from_slice(&x),
                p256::FieldBytes::from_slice(&y),
                false,
            );
            p256::ecdsa::VerifyingKey::from_encoded_point(&point)
                .ok()
                .map(Key::P256)
        }
        _ => None,
    }
}

impl KeySet {
    pub fn parse(text: &[u8]) -> Result<KeySet, String> {
        let raw: RawSet = serde_json::from_slice(text).map_err(|e| format!("bad JWKS: {e}"))?;
        let keys = raw
            .keys
            .iter()
            .filter_map(|jwk| {
                Some(Jwk {
                    kid: jwk.get("kid").and_then(Value::as_str).map(String::from),
                    key: parse_key(jwk)?,
                })
            })
            .collect();
        Ok(KeySet { keys })
    }

    pub fn has(&self, kid: Option<&str>) -> bool {
        match kid {
            Some(kid) => self.keys.iter().any(|k| k.kid.as_deref() == Some(kid)),
            None => !self.keys.is_empty(),
        }
    }

    /// Checks the token's signature with the key its header names (or, without a `kid`, any key
    /// of the right type).
    pub fn verify(&self, token: &Token) -> Result<(), String> {
        let candidates = self.keys.iter().filter(|k| match &token.header.kid {
            Some(kid) => k.kid.as_deref() == Some(kid.as_str()),
            None => true,
        });
        let message = token.signing_input.as_bytes();
        let mut tried = false;
        for jwk in candidates {
            let ok = match (&jwk.key, token.header.alg.as_str()) {
                (Key::Rsa(key), "RS256") => key
                    .verify(
                        rsa::Pkcs1v15Sign::new::<Sha256>(),
                        &Sha256::digest(message),
                        &token.signature,
                    )
                    .is_ok(),
                (Key::P256(key), "ES256") => p256::ecdsa::Signature::from_slice(&token.signature)
                    .is_ok_and(|sig| key.verify(message, &sig).is_ok()),
                _ => continue,
            };
            if ok {
                return Ok(());
            }
            if token.header.kid.is_some() {
                return Err("token signature is not valid".into());
            }
            // Without a kid, every key of the right type gets its chance.
            tried = true;
        }
        if tried {
            return Err("token signature is not valid".into());
        }
        match token.header.alg.as_str() {
            "RS256" | "ES256" => Err("no key in the JWKS matches the token".into()),
            other => Err(format!("token algorithm {other} is not accepted")),
        }
    }
}
