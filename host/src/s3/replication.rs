//! Put/Get/DeleteBucketReplication: the AWS `ReplicationConfiguration` XML, translated to the
//! rules of `crate::replication` and checked against the configured targets.

use axum::body::Body;
use http::{Response, StatusCode};
use serde::Deserialize;

use super::error::{ErrorCode, S3Error, S3Result};
use super::tagging::TagDoc;
use super::xml::{self, XmlWriter};
use super::{RequestCtx, empty_response, xml_response};
use crate::replication::rules::RuleError;
use crate::replication::{Destination, ReplicationConfig, Rule, RuleFilter};

/// The bucket-config kind the rules are stored under.
pub const CONFIG: &str = crate::store::replication_queue::RULES_CONFIG;
const MAX_CONFIG_BODY: u64 = 2 * 1024 * 1024;
const ROOT: &str = "ReplicationConfiguration";

#[derive(Debug, Deserialize)]
struct ConfigDoc {
    #[serde(rename = "Role")]
    role: Option<String>,
    #[serde(rename = "Rule", default)]
    rules: Vec<RuleDoc>,
}

#[derive(Debug, Deserialize)]
struct RuleDoc {
    #[serde(rename = "ID")]
    id: Option<String>,
    #[serde(rename = "Priority")]
    priority: Option<i64>,
    #[serde(rename = "Status")]
    status: String,
    #[serde(rename = "Prefix")]
    prefix: Option<String>,
    #[serde(rename = "Filter")]
    filter: Option<FilterDoc>,
    #[serde(rename = "DeleteMarkerReplication")]
    delete_marker: Option<StatusDoc>,
    #[serde(rename = "DeleteReplication")]
    delete_replication: Option<StatusDoc>,
    #[serde(rename = "Destination")]
    destination: DestinationDoc,
}

#[derive(Debug, Default, Deserialize)]
struct FilterDoc {
    #[serde(rename = "Prefix")]
    prefix: Option<String>,
    #[serde(rename = "Tag")]
    tag: Option<TagDoc>,
    #[serde(rename = "And")]
    and: Option<AndDoc>,
}

#[derive(Debug, Deserialize)]
struct AndDoc {
    #[serde(rename = "Prefix")]
    prefix: Option<String>,
    #[serde(rename = "Tag", default)]
    tags: Vec<TagDoc>,
}

#[derive(Debug, Deserialize)]
struct StatusDoc {
    #[serde(rename = "Status")]
    status: String,
}

#[derive(Debug, Deserialize)]
struct DestinationDoc {
    #[serde(rename = "Bucket")]
    bucket: String,
}

fn enabled(status: &str) -> S3Result<bool> {
    match status.trim() {
        "Enabled" => Ok(true),
        "Disabled" => Ok(false),
        _ => Err(S3Error::malformed_xml()),
    }
}

fn rule_from(doc: RuleDoc) -> S3Result<Rule> {
    let filter_form = doc.filter.is_some();
    if filter_form && doc.prefix.is_some() {
        return Err(S3Error::malformed_xml());
    }
    let filter = match doc.filter {
        None => RuleFilter {
            prefix: doc.prefix.unwrap_or_default(),
            tags: Vec::new(),
        },
        Some(f) => {
            let given = [f.prefix.is_some(), f.tag.is_some(), f.and.is_some()];
            if given.iter().filter(|g| **g).count() > 1 {
                return Err(S3Error::malformed_xml());
            }
            match (f.prefix, f.tag, f.and) {
                (Some(p), _, _) => RuleFilter {
                    prefix: p,
                    tags: Vec::new(),
                },
                (_, Some(t), _) => RuleFilter {
                    prefix: String::new(),
                    tags: vec![(t.key, t.value)],
                },
                (_, _, Some(a)) => RuleFilter {
                    prefix: a.prefix.unwrap_or_default(),
                    tags: a.tags.into_iter().map(|t| (t.key, t.value)).collect(),
                },
                _ => RuleFilter::default(),
            }
        }
    };
    let replicate_deletes = match (&doc.delete_marker, &doc.delete_replication) {
        // As in S3: a V2 rule (with a Filter) must say; a V1 rule replicates deletes.
        (None, None) if filter_form => {
            return Err(S3Error::new(
                ErrorCode::InvalidRequest,
                "DeleteMarkerReplication must be specified for this version of Cross Region \
                 Replication configuration schema.",
            ));
        }
        (None, None) => true,
        (a, b) => {
            let a = a.as_ref().map(|s| enabled(&s.status)).transpose()?;
            let b = b.as_ref().map(|s| enabled(&s.status)).transpose()?;
            a.unwrap_or(false) || b.unwrap_or(false)
        }
    };
    let destination = Destination::parse(doc.destination.bucket.trim()).ok_or_else(|| {
        S3Error::invalid_argument(format!(
            "Invalid destination `{}`: write it arn:sluice:replication::TARGET:BUCKET",
            doc.destination.bucket.trim()
        ))
        .with("ArgumentName", "Destination")
    })?;
    Ok(Rule {
        id: doc
            .id
            .filter(|i| !i.is_empty())
            .unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string()),
        priority: doc.priority,
        enabled: enabled(&doc.status)?,
        filter,
        filter_form,
        replicate_deletes,
        destination,
    })
}

pub async fn put_bucket_replication(
    ctx: &mut RequestCtx<'_>,
    bucket: &str,
) -> S3Result<Response<Body>> {
    ctx.existing_bucket(bucket).await?;
    let body = ctx.read_small_body(MAX_CONFIG_BODY).await?;
    let doc: ConfigDoc = xml::parse(&body, ROOT)?;
    let config = ReplicationConfig {
        role: doc.role,
        rules: doc
            .rules
            .into_iter()
            .map(rule_from)
            .collect::<S3Result<Vec<_>>>()?,
    };
    let targets: Vec<String> = ctx
        .app
        .config
        .replication_targets
        .iter()
        .map(|t| t.name.clone())
        .collect();
    config.validate(&targets).map_err(|e| match e {
        RuleError::Malformed(m) => S3Error::new(ErrorCode::MalformedXML, m),
        RuleError::Invalid(m) => S3Error::invalid_argument(m),
        RuleError::Conflict(m) => S3Error::new(ErrorCode::InvalidRequest, m),
    })?;
    let raw = serde_json::to_vec(&config).map_err(S3Error::internal)?;
    ctx.set_bucket_config(bucket, CONFIG, Some(raw)).await?;
    Ok(empty_response(StatusCode::OK))
}

/// A bucket's replication rules, if it has any.
pub async fn bucket_rules(app: &super::App, bucket: &str) -> S3Result<Option<ReplicationConfig>> {
    super::json_bucket_config(app, bucket, CONFIG).await
}

pub async fn get_bucket_replication(
    ctx: &mut RequestCtx<'_>,
    bucket: &str,
) -> S3Result<Response<Body>> {
    ctx.existing_bucket(bucket).await?;
    let Some(config) = bucket_rules(ctx.app, bucket).await? else {
        return Err(S3Error::new(
            ErrorCode::ReplicationConfigurationNotFoundError,
            "The replication configuration was not found",
        )
        .with("BucketName", bucket));
    };
    let mut w = XmlWriter::new(ROOT);
    w.opt("Role", config.role.as_deref());
    for r in &config.rules {
        w.open("Rule").elem("ID", &r.id);
        if let Some(p) = r.priority {
            w.elem("Priority", &p.to_string());
        }
        if r.filter_form {
            w.open("Filter");
            match (r.filter.prefix.as_str(), r.filter.tags.as_slice()) {
                (p, []) => {
                    w.elem("Prefix", p);
                }
                ("", [(k, v)]) => {
                    w.open("Tag").elem("Key", k).elem("Value", v).close("Tag");
                }
                (p, tags) => {
                    w.open("And");
                    if !p.is_empty() {
                        w.elem("Prefix", p);
                    }
                    for (k, v) in tags {
                        w.open("Tag").elem("Key", k).elem("Value", v).close("Tag");
                    }
                    w.close("And");
                }
            }
            w.close("Filter");
        } else {
            w.elem("Prefix", &r.filter.prefix);
        }
        let status = |on: bool| if on { "Enabled" } else { "Disabled" };
        w.elem("Status", status(r.enabled));
        if r.filter_form {
            w.open("DeleteMarkerReplication")
                .elem("Status", status(r.replicate_deletes))
                .close("DeleteMarkerReplication");
        }
        w.open("Destination")
            .elem("Bucket", &r.destination.arn())
            .close("Destination")
            .close("Rule");
    }
    Ok(xml_response(StatusCode::OK, w.finish(ROOT)))
}

pub async fn delete_bucket_replication(
    ctx: &mut RequestCtx<'_>,
    bucket: &str,
) -> S3Result<Response<Body>> {
    ctx.set_bucket_config(bucket, CONFIG, None).await?;
    Ok(empty_response(StatusCode::NO_CONTENT))
}

/// The replica marker a replication target sends with its writes and deletes: the source's time
/// of the write or delete, in Unix milliseconds (see `wit/replication-target.wit`).
pub const REPLICA_HEADER: &str = "x-sluice-replica-source-time";

/// The source time of a replica write or delete: set when the request carries the replica
/// marker and its principal is allowed `action` (`s3:ReplicateObject` or `s3:ReplicateDelete`)
/// on the object. From anyone else the marker is ignored and the request is an ordinary one.
pub async fn replica_time(
    ctx: &RequestCtx<'_>,
    bucket: &str,
    key: &str,
    action: &str,
) -> S3Result<Option<i64>> {
    let Some(raw) = ctx.header(REPLICA_HEADER) else {
        return Ok(None);
    };
    let info = ctx.existing_bucket(bucket).await?;
    match super::access::authorize_object(ctx.app, &ctx.caller(), None, action, &info, key).await {
        Ok(()) => {}
        Err(e) if e.code == ErrorCode::AccessDenied => {
            tracing::debug!(bucket, key, action, "replica marker ignored: not allowed");
            return Ok(None);
        }
        Err(e) => return Err(e),
    }
    // A day of clock skew at most: a time far ahead would win every later write (and cannot
    // be shown as an HTTP date past year 9999).
    let latest = crate::store::precise_now_ms() + 86_400_000;
    match raw.trim().parse::<i64>() {
        Ok(t) if (0..=latest).contains(&t) => {
            tracing::debug!(bucket, key, source_time = t, "replica write");
            Ok(Some(t))
        }
        _ => Err(
            S3Error::invalid_argument(format!("{REPLICA_HEADER} must be Unix milliseconds"))
                .with("ArgumentName", REPLICA_HEADER),
        ),
    }
}
