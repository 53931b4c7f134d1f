//! `sluice admin ...`: runs IAM commands on a stopped server's data dir, or sends them to a
//! running server's admin API (SigV4-signed with `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`).

use std::time::SystemTime;

use aws_sigv4::http_request::{
    PayloadChecksumKind, PercentEncodingMode, SignableBody, SignableRequest, SigningSettings,
    UriPathNormalizationMode, sign,
};
use aws_sigv4::sign::v4;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};

use crate::auth::iam::AdminCommand;
use crate::config::Config;
use crate::node::Node;
use crate::s3::admin::IAM_PATH;

/// Runs `cmd` locally or against `endpoint`, returning the JSON to print.
pub async fn run(
    config: &Config,
    endpoint: Option<&str>,
    cmd: AdminCommand,
) -> anyhow::Result<serde_json::Value> {
    match endpoint {
        None => {
            let node = Node::open(config)?;
            Ok(node.iam.run(&cmd)?)
        }
        Some(url) => remote(config, url, "POST", IAM_PATH, serde_json::to_vec(&cmd)?).await,
    }
}

/// Runs a KMS command on a stopped server's data dir (loading its key provider) or against
/// `endpoint`.
pub async fn kms(
    config: &Config,
    endpoint: Option<&str>,
    cmd: crate::crypto::kms_admin::KmsCommand,
) -> anyhow::Result<serde_json::Value> {
    match endpoint {
        None => {
            let node = Node::open(config)?;
            let providers: Vec<_> = config
                .plugins
                .iter()
                .filter(|p| p.world == crate::plugins::World::KeyProvider)
                .cloned()
                .collect();
            let registry = crate::plugins::Registry::load(
                &providers,
                Some(node.db.clone()),
                Some(&node.master),
            )
            .await?;
            let keys = crate::crypto::KeyService::new(&node.master, registry);
            Ok(crate::crypto::kms_admin::run(&keys, &cmd).await?)
        }
        Some(url) => {
            remote(
                config,
                url,
                "POST",
                crate::s3::admin::KMS_PATH,
                serde_json::to_vec(&cmd)?,
            )
            .await
        }
    }
}

/// Runs a replication command on a stopped server's data dir or against `endpoint`.
pub async fn replication(
    config: &Config,
    endpoint: Option<&str>,
    cmd: crate::replication::admin::ReplicationCommand,
) -> anyhow::Result<serde_json::Value> {
    match endpoint {
        None => {
            let node = Node::open(config)?;
            let store = node.local_store(config)?;
            Ok(crate::replication::admin::run(config, &store, &node.iam, &cmd).await?)
        }
        Some(url) => {
            remote(
                config,
                url,
                "POST",
                crate::s3::admin::REPLICATION_PATH,
                serde_json::to_vec(&cmd)?,
            )
            .await
        }
    }
}

/// `sluice encrypt` / `sluice decrypt`: client-side envelope encryption of a file under a KMS
/// key, whose data key comes from the key provider (offline) or a running server's KMS API.
pub async fn envelope(
    config: &Config,
    endpoint: Option<&str>,
    encrypt: bool,
    input: &std::path::Path,
    output: &std::path::Path,
    key_id: Option<String>,
    context: Option<String>,
) -> anyhow::Result<()> {
    use crate::crypto::file_envelope as fe;
    use crate::crypto::kms_admin::KmsCommand;
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD as B64;
    let key_of = |v: &serde_json::Value| -> anyhow::Result<zeroize::Zeroizing<[u8; 32]>> {
        let raw = zeroize::Zeroizing::new(
            B64.decode(v["plaintext"].as_str().unwrap_or(""))
                .map_err(|_| anyhow::anyhow!("the KMS answer has no data key"))?,
        );
        let mut k = zeroize::Zeroizing::new([0u8; 32]);
        if raw.len() != 32 {
            anyhow::bail!("the KMS answer's data key is not 32 bytes");
        }
        k.copy_from_slice(&raw);
        Ok(k)
    };
    let result = if encrypt {
        let context: Vec<(String, String)> = match context {
            Some(text) => serde_json::from_str::<std::collections::BTreeMap<String, String>>(&text)
                .map_err(|e| anyhow::anyhow!("--context is not a JSON object of strings: {e}"))?
                .into_iter()
                .collect(),
            None => Vec::new(),
        };
        let answer = kms(
            config,
            endpoint,
            KmsCommand::GenerateDataKey {
                key_id,
                context: context.clone(),
            },
        )
        .await?;
        let key = key_of(&answer)?;
        let mut binding = [0u8; 16];
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut binding);
        let header = fe::EnvelopeHeader {
            key_id: answer["key_id"].as_str().unwrap_or("").to_string(),
            wrapped_key: answer["wrapped"].as_str().unwrap_or("").to_string(),
            context,
            binding: hex::encode(binding),
            nonce_prefix: String::new(),
            size: 0,
            segment_size: 0,
        };
        fe::encrypt(input, output, &key, header).await
    } else {
        let (header, offset) = fe::read_header(input).await?;
        let answer = kms(
            config,
            endpoint,
            KmsCommand::Decrypt {
                key_id: header.key_id.clone(),
                wrapped: header.wrapped_key.clone(),
                context: header.context.clone(),
            },
        )
        .await?;
        let key = key_of(&answer)?;
        fe::decrypt(input, output, &key, &header, offset).await
    };
    if let Err(e) = result {
        let _ = std::fs::remove_file(output);
        anyhow::bail!("{}: {e}", input.display());
    }
    Ok(())
}

/// Explains one decision locally (on a stopped server's data dir) or against `endpoint`.
pub async fn explain(
    config: &Config,
    endpoint: Option<&str>,
    input: &crate::policy::explain::ExplainInput,
) -> anyhow::Result<serde_json::Value> {
    match endpoint {
        None => {
            let node = Node::open(config)?;
            let store = node.local_store(config)?;
            let engine =
                crate::policy::PolicyEngine::open(config.policies_dir.as_deref(), &node.iam)?;
            crate::s3::bucket_policy::load_all(&store, &engine)
                .await
                .map_err(|e| anyhow::anyhow!("bucket policies: {}", e.message))?;
            crate::policy::explain::explain(&engine, &node.iam, &store, input)
                .await
                .map_err(|e| anyhow::anyhow!(e))
        }
        Some(url) => {
            remote(
                config,
                url,
                "POST",
                crate::s3::admin::EXPLAIN_PATH,
                serde_json::to_vec(input)?,
            )
            .await
        }
    }
}

/// Sends one SigV4-signed admin request to a running server and returns its JSON answer.
pub async fn remote(
    config: &Config,
    endpoint: &str,
    method: &str,
    path: &str,
    body: Vec<u8>,
) -> anyhow::Result<serde_json::Value> {
    let access_key = std::env::var("AWS_ACCESS_KEY_ID").map_err(|_| {
        anyhow::anyhow!("--endpoint needs AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY")
    })?;
    let secret_key = std::env::var("AWS_SECRET_ACCESS_KEY").map_err(|_| {
        anyhow::anyhow!("--endpoint needs AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY")
    })?;
    let region = std::env::var("AWS_REGION")
        .or_else(|_| std::env::var("AWS_DEFAULT_REGION"))
        .unwrap_or_else(|_| config.region.clone());
    let url = format!("{}{}", endpoint.trim_end_matches('/'), path);
    let mut req = http::Request::builder()
        .method(method)
        .uri(&url)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.clone())))?;
    let host = req
        .uri()
        .authority()
        .map(|a| a.to_string())
        .ok_or_else(|| anyhow::anyhow!("endpoint `{endpoint}` has no host"))?;
    req.headers_mut().insert("host", host.parse()?);

    let identity =
        aws_credential_types::Credentials::new(access_key, secret_key, None, None, "sluice-cli")
            .into();
    let mut settings = SigningSettings::default();
    settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
    settings.percent_encoding_mode = PercentEncodingMode::Single;
    settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(&region)
        .name("s3")
        .time(SystemTime::now())
        .settings(settings)
        .build()?
        .into();
    let headers: Vec<(String, String)> = req
        .headers()
        .iter()
        .filter_map(|(k, v)| Some((k.as_str().to_string(), v.to_str().ok()?.to_string())))
        .collect();
    let signable = SignableRequest::new(
        method,
        url.clone(),
        headers.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        SignableBody::Bytes(&body),
    )?;
    let (instructions, _) = sign(signable, &params)?.into_parts();
    instructions.apply_to_request_http1x(&mut req);

    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<Full<Bytes>>();
    let resp = client
        .request(req)
        .await
        .map_err(|e| anyhow::anyhow!("cannot reach `{endpoint}`: {e}"))?;
    let status = resp.status();
    let bytes = resp.into_body().collect().await?.to_bytes();
    let text = String::from_utf8_lossy(&bytes);
    if !status.is_success() {
        let code = between(&text, "<Code>", "</Code>").unwrap_or("Error");
        let message = between(&text, "<Message>", "</Message>").unwrap_or(&text);
        anyhow::bail!("{code} ({}): {message}", status.as_u16());
    }
    Ok(serde_json::from_slice(&bytes)?)
}

fn between<'a>(text: &'a str, open: &str, close: &str) -> Option<&'a str> {
    let start = text.find(open)? + open.len();
    let end = text[start..].find(close)? + start;
    Some(&text[start..end])
}
