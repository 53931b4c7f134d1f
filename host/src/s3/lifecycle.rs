//! Put/Get/DeleteBucketLifecycleConfiguration: the AWS `LifecycleConfiguration` XML, checked
//! as S3 checks it and translated to the rules of `crate::lifecycle`, which the lifecycle sweep
//! applies; and the `x-amz-expiration` header that tells a client when an object expires.

use axum::body::Body;
use http::{HeaderMap, Response, StatusCode};
use rand::Rng;
use serde::Deserialize;
use serde::de::IgnoredAny;

use super::error::{ErrorCode, S3Error, S3Result};
use super::tagging::TagDoc;
use super::xml::{self, XmlWriter};
use super::{RequestCtx, empty_response, set_header, xml_response};
use crate::lifecycle::{
    CONFIG, Expiration, Filter, FilterForm, LifecycleConfig, MAX_RULES, NoncurrentExpiration, Rule,
};
use crate::store::ObjectMeta;

const MAX_CONFIG_BODY: u64 = 2 * 1024 * 1024;
const ROOT: &str = "LifecycleConfiguration";
const MAX_ID_LEN: usize = 255;
/// What `x-amz-expiration` escapes in a rule id (it is URL-encoded there, as in S3).
const RULE_ID_ESCAPED: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

#[derive(Debug, Deserialize)]
struct ConfigDoc {
    #[serde(rename = "Rule", default)]
    rules: Vec<RuleDoc>,
}

#[derive(Debug, Deserialize)]
struct RuleDoc {
    #[serde(rename = "ID")]
    id: Option<String>,
    #[serde(rename = "Status")]
    status: String,
    #[serde(rename = "Prefix")]
    prefix: Option<String>,
    #[serde(rename = "Filter")]
    filter: Option<FilterDoc>,
    #[serde(rename = "Expiration")]
    expiration: Option<ExpirationDoc>,
    #[serde(rename = "NoncurrentVersionExpiration")]
    noncurrent_expiration: Option<NoncurrentDoc>,
    #[serde(rename = "AbortIncompleteMultipartUpload")]
    abort_incomplete: Option<AbortDoc>,
    #[serde(rename = "Transition", default)]
    transitions: Vec<TransitionDoc>,
    #[serde(rename = "NoncurrentVersionTransition", default)]
    noncurrent_transitions: Vec<IgnoredAny>,
}

#[derive(Debug, Default, Deserialize)]
struct FilterDoc {
    #[serde(rename = "Prefix")]
    prefix: Option<String>,
    #[serde(rename = "Tag")]
    tag: Option<TagDoc>,
    #[serde(rename = "ObjectSizeGreaterThan")]
    size_greater_than: Option<u64>,
    #[serde(rename = "ObjectSizeLessThan")]
    size_less_than: Option<u64>,
    #[serde(rename = "And")]
    and: Option<AndDoc>,
}

#[derive(Debug, Deserialize)]
struct AndDoc {
    #[serde(rename = "Prefix")]
    prefix: Option<String>,
    #[serde(rename = "Tag", default)]
    tags: Vec<TagDoc>,
    #[serde(rename = "ObjectSizeGreaterThan")]
    size_greater_than: Option<u64>,
    #[serde(rename = "ObjectSizeLessThan")]
    size_less_than: Option<u64>,
}

/// Numbers are read signed so that zero and negative days answer `InvalidArgument`, as in S3,
/// rather than `MalformedXML`.
#[derive(Debug, Deserialize)]
struct ExpirationDoc {
    #[serde(rename = "Days")]
    days: Option<i64>,
    #[serde(rename = "Date")]
    date: Option<String>,
    #[serde(rename = "ExpiredObjectDeleteMarker")]
    expired_object_delete_marker: Option<bool>,
}

/// Read only to answer a malformed one as S3 does; a well-formed one is `NotImplemented`.
#[derive(Debug, Deserialize)]
struct TransitionDoc {
    #[serde(rename = "Days")]
    days: Option<i64>,
    #[serde(rename = "Date")]
    date: Option<String>,
}

#[derive(Debug, Deserialize)]
struct NoncurrentDoc {
    #[serde(rename = "NoncurrentDays")]
    days: Option<i64>,
    #[serde(rename = "NewerNoncurrentVersions")]
    newer_versions: Option<i64>,
}

#[derive(Debug, Deserialize)]
struct AbortDoc {
    #[serde(rename = "DaysAfterInitiation")]
    days: Option<i64>,
}

fn invalid_request(message: &str) -> S3Error {
    S3Error::new(ErrorCode::InvalidRequest, message)
}

/// A count of days that must be a positive integer (`what` names it in the message).
fn positive_days(n: i64, what: &str) -> S3Result<u32> {
    u32::try_from(n)
        .ok()
        .filter(|d| *d > 0)
        .ok_or_else(|| S3Error::invalid_argument(format!("'{what}' must be a positive integer")))
}

/// `YYYY-MM-DD`, digits where the letters are.
fn is_plain_date(text: &str) -> bool {
    let b = text.as_bytes();
    b.len() == 10
        && b.iter().enumerate().all(|(i, c)| {
            if i == 4 || i == 7 {
                *c == b'-'
            } else {
                c.is_ascii_digit()
            }
        })
}

/// A rule's `<Date>`: ISO 8601 (a date and time, or a date alone), at midnight UTC. One that is
/// not a date at all does not fit the schema (`MalformedXML`).
fn midnight_date(text: &str) -> S3Result<i64> {
    let text = text.trim();
    let at = match chrono::DateTime::parse_from_rfc3339(text) {
        Ok(t) => t.timestamp_millis(),
        // chrono's `%Y-%m-%d` also takes short and signed years (`24-12-31` is the year 24):
        // only the exact `YYYY-MM-DD` shape is a date alone.
        Err(_) if !is_plain_date(text) => return Err(S3Error::malformed_xml()),
        Err(_) => chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d")
            .map_err(|_| S3Error::malformed_xml())?
            .and_time(chrono::NaiveTime::MIN)
            .and_utc()
            .timestamp_millis(),
    };
    if at.rem_euclid(crate::lifecycle::DAY_MS) != 0 {
        return Err(S3Error::invalid_argument("'Date' must be at midnight GMT"));
    }
    Ok(at)
}

fn filter_from(rule_prefix: Option<String>, doc: Option<FilterDoc>) -> S3Result<Filter> {
    let bare = |form, prefix: String| Filter {
        form,
        prefix,
        tags: Vec::new(),
        size_greater_than: None,
        size_less_than: None,
    };
    let doc = match (rule_prefix, doc) {
        (Some(_), Some(_)) => return Err(S3Error::malformed_xml()),
        (Some(p), None) => return Ok(bare(FilterForm::RulePrefix, p)),
        (None, None) => return Ok(bare(FilterForm::Empty, String::new())),
        (None, Some(doc)) => doc,
    };
    let given = [
        doc.prefix.is_some(),
        doc.tag.is_some(),
        doc.size_greater_than.is_some(),
        doc.size_less_than.is_some(),
        doc.and.is_some(),
    ];
    if given.iter().filter(|g| **g).count() > 1 {
        return Err(S3Error::malformed_xml());
    }
    let mut filter = bare(FilterForm::Empty, String::new());
    if let Some(p) = doc.prefix {
        filter.form = FilterForm::Prefix;
        filter.prefix = p;
    } else if let Some(t) = doc.tag {
        filter.form = FilterForm::Tag;
        filter.tags = vec![(t.key, t.value)];
    } else if let Some(n) = doc.size_greater_than {
        filter.form = FilterForm::SizeGreaterThan;
        filter.size_greater_than = Some(n);
    } else if let Some(n) = doc.size_less_than {
        filter.form = FilterForm::SizeLessThan;
        filter.size_less_than = Some(n);
    } else if let Some(and) = doc.and {
        filter.form = FilterForm::And;
        filter.prefix = and.prefix.unwrap_or_default();
        filter.tags = and.tags.into_iter().map(|t| (t.key, t.value)).collect();
        filter.size_greater_than = and.size_greater_than;
        filter.size_less_than = and.size_less_than;
        let mut keys: Vec<&str> = filter.tags.iter().map(|(k, _)| k.as_str()).collect();
        keys.sort_unstable();
        if keys.windows(2).any(|w| w[0] == w[1]) {
            return Err(invalid_request("Duplicate Tag Keys are not allowed."));
        }
    }
    if let (Some(gt), Some(lt)) = (filter.size_greater_than, filter.size_less_than)
        && gt >= lt
    {
        return Err(S3Error::invalid_argument(
            "ObjectSizeGreaterThan must be less than ObjectSizeLessThan",
        ));
    }
    Ok(filter)
}

/// A rule id S3 would make up for a rule given without one.
fn generated_id() -> String {
    rand::thread_rng()
        .sample_iter(rand::distributions::Alphanumeric)
        .take(48)
        .map(char::from)
        .collect()
}

fn rule_from(doc: RuleDoc) -> S3Result<Rule> {
    let enabled = match doc.status.trim() {
        "Enabled" => true,
        "Disabled" => false,
        _ => return Err(S3Error::malformed_xml()),
    };
    let id = match doc.id {
        Some(id) if id.chars().count() > MAX_ID_LEN => {
            return Err(S3Error::invalid_argument(
                "ID length should not exceed allowed limit of 255",
            ));
        }
        Some(id) if !id.is_empty() => id,
        _ => generated_id(),
    };
    for t in &doc.transitions {
        match (t.days, &t.date) {
            (Some(days), None) if days < 0 => {
                return Err(S3Error::invalid_argument(
                    "'Days' in Transition action must be nonnegative",
                ));
            }
            (Some(_), None) => {}
            (None, Some(date)) => {
                midnight_date(date)?;
            }
            _ => return Err(S3Error::malformed_xml()),
        }
    }
    let filter = filter_from(doc.prefix, doc.filter)?;
    let expiration = match doc.expiration {
        None => None,
        Some(e) => Some(match (e.days, e.date, e.expired_object_delete_marker) {
            (Some(days), None, None) => {
                Expiration::Days(positive_days(days, "Days' for Expiration action")?)
            }
            (None, Some(date), None) => Expiration::Date(midnight_date(&date)?),
            (None, None, Some(marker)) => {
                if !filter.tags.is_empty() {
                    return Err(invalid_request(
                        "ExpiredObjectDeleteMarker cannot be specified with object tags",
                    ));
                }
                Expiration::ExpiredObjectDeleteMarker(marker)
            }
            _ => return Err(S3Error::malformed_xml()),
        }),
    };
    let noncurrent_expiration = match doc.noncurrent_expiration {
        None => None,
        Some(n) => Some(NoncurrentExpiration {
            days: positive_days(
                n.days.ok_or_else(S3Error::malformed_xml)?,
                "NoncurrentDays' for NoncurrentVersionExpiration action",
            )?,
            newer_versions: n
                .newer_versions
                .map(|v| positive_days(v, "NewerNoncurrentVersions"))
                .transpose()?,
        }),
    };
    let abort_incomplete_after_days = match doc.abort_incomplete {
        None => None,
        Some(a) => {
            // An upload has neither tags nor a size yet.
            if !filter.tags.is_empty() {
                return Err(invalid_request(
                    "AbortIncompleteMultipartUpload cannot be specified with object tags",
                ));
            }
            if filter.size_greater_than.is_some() || filter.size_less_than.is_some() {
                return Err(invalid_request(
                    "AbortIncompleteMultipartUpload cannot be specified with an object size \
                     filter",
                ));
            }
            Some(positive_days(
                a.days.ok_or_else(S3Error::malformed_xml)?,
                "DaysAfterInitiation' for AbortIncompleteMultipartUpload action",
            )?)
        }
    };
    let transitions = !doc.transitions.is_empty() || !doc.noncurrent_transitions.is_empty();
    if expiration.is_none()
        && noncurrent_expiration.is_none()
        && abort_incomplete_after_days.is_none()
        && !transitions
    {
        return Err(invalid_request(
            "At least one action needs to be specified in a rule",
        ));
    }
    // Checked last, so a rule that is wrong in other ways says so first, as S3 would.
    if transitions {
        return Err(S3Error::not_implemented(
            "lifecycle Transition (Sluice keeps every object in the storage class it was \
             written with)",
        ));
    }
    Ok(Rule {
        id,
        enabled,
        filter,
        expiration,
        abort_incomplete_after_days,
        noncurrent_expiration,
    })
}

/// Parses and checks a `LifecycleConfiguration` document.
pub fn parse_config(body: &[u8]) -> S3Result<LifecycleConfig> {
    let doc: ConfigDoc = xml::parse(body, ROOT)?;
    if doc.rules.is_empty() {
        return Err(S3Error::malformed_xml());
    }
    if doc.rules.len() > MAX_RULES {
        return Err(invalid_request(
            "The number of lifecycle rules must not exceed the allowed limit of 1000 rules",
        ));
    }
    let rules = doc
        .rules
        .into_iter()
        .map(rule_from)
        .collect::<S3Result<Vec<Rule>>>()?;
    let mut ids: Vec<&str> = rules.iter().map(|r| r.id.as_str()).collect();
    ids.sort_unstable();
    if ids.windows(2).any(|w| w[0] == w[1]) {
        return Err(S3Error::invalid_argument(
            "Rule ID must be unique. Found same ID for more than one rule",
        ));
    }
    Ok(LifecycleConfig { rules })
}

fn write_tag(w: &mut XmlWriter, (k, v): &(String, String)) {
    w.open("Tag").elem("Key", k).elem("Value", v).close("Tag");
}

fn write_filter(w: &mut XmlWriter, f: &Filter) {
    if f.form == FilterForm::RulePrefix {
        w.elem("Prefix", &f.prefix);
        return;
    }
    w.open("Filter");
    match f.form {
        FilterForm::RulePrefix | FilterForm::Empty => {}
        FilterForm::Prefix => {
            w.elem("Prefix", &f.prefix);
        }
        FilterForm::Tag => f.tags.iter().for_each(|t| write_tag(w, t)),
        FilterForm::SizeGreaterThan | FilterForm::SizeLessThan | FilterForm::And => {
            let and = f.form == FilterForm::And;
            if and {
                w.open("And");
                if !f.prefix.is_empty() {
                    w.elem("Prefix", &f.prefix);
                }
                f.tags.iter().for_each(|t| write_tag(w, t));
            }
            if let Some(n) = f.size_greater_than {
                w.open("ObjectSizeGreaterThan")
                    .number(n)
                    .close("ObjectSizeGreaterThan");
            }
            if let Some(n) = f.size_less_than {
                w.open("ObjectSizeLessThan")
                    .number(n)
                    .close("ObjectSizeLessThan");
            }
            if and {
                w.close("And");
            }
        }
    }
    w.close("Filter");
}

/// The configuration as S3 writes it.
pub fn render_config(config: &LifecycleConfig) -> String {
    let mut w = XmlWriter::new(ROOT);
    for rule in &config.rules {
        w.open("Rule").elem("ID", &rule.id);
        write_filter(&mut w, &rule.filter);
        w.elem("Status", if rule.enabled { "Enabled" } else { "Disabled" });
        match rule.expiration {
            None => {}
            Some(Expiration::Days(d)) => {
                w.open("Expiration")
                    .open("Days")
                    .number(d.into())
                    .close("Days")
                    .close("Expiration");
            }
            Some(Expiration::Date(at)) => {
                w.open("Expiration").time("Date", at).close("Expiration");
            }
            Some(Expiration::ExpiredObjectDeleteMarker(m)) => {
                w.open("Expiration")
                    .elem(
                        "ExpiredObjectDeleteMarker",
                        if m { "true" } else { "false" },
                    )
                    .close("Expiration");
            }
        }
        if let Some(n) = rule.noncurrent_expiration {
            w.open("NoncurrentVersionExpiration")
                .open("NoncurrentDays")
                .number(n.days.into())
                .close("NoncurrentDays");
            if let Some(v) = n.newer_versions {
                w.open("NewerNoncurrentVersions")
                    .number(v.into())
                    .close("NewerNoncurrentVersions");
            }
            w.close("NoncurrentVersionExpiration");
        }
        if let Some(d) = rule.abort_incomplete_after_days {
            w.open("AbortIncompleteMultipartUpload")
                .open("DaysAfterInitiation")
                .number(d.into())
                .close("DaysAfterInitiation")
                .close("AbortIncompleteMultipartUpload");
        }
        w.close("Rule");
    }
    w.finish(ROOT)
}

pub async fn put_bucket_lifecycle(
    ctx: &mut RequestCtx<'_>,
    bucket: &str,
) -> S3Result<Response<Body>> {
    ctx.existing_bucket(bucket).await?;
    let body = ctx.read_small_body(MAX_CONFIG_BODY).await?;
    let config = parse_config(&body)?;
    let stored = serde_json::to_vec(&config).map_err(S3Error::internal)?;
    ctx.app
        .store
        .put_bucket_config(bucket, CONFIG, Some(stored))
        .await?;
    Ok(empty_response(StatusCode::OK))
}

pub async fn get_bucket_lifecycle(
    ctx: &mut RequestCtx<'_>,
    bucket: &str,
) -> S3Result<Response<Body>> {
    ctx.existing_bucket(bucket).await?;
    let Some(config) = crate::lifecycle::config_of(ctx.app.store.as_ref(), bucket).await? else {
        return Err(S3Error::new(
            ErrorCode::NoSuchLifecycleConfiguration,
            "The lifecycle configuration does not exist",
        )
        .with("BucketName", bucket));
    };
    Ok(xml_response(StatusCode::OK, render_config(&config)))
}

/// DeleteBucketLifecycle: 204 whether or not the bucket had rules, as in S3.
pub async fn delete_bucket_lifecycle(
    ctx: &mut RequestCtx<'_>,
    bucket: &str,
) -> S3Result<Response<Body>> {
    ctx.set_bucket_config(bucket, CONFIG, None).await?;
    Ok(empty_response(StatusCode::NO_CONTENT))
}

/// Sets `x-amz-expiration` (`expiry-date="..."`, `rule-id="..."`) when a rule of the bucket
/// expires the object. The header only informs: rules that cannot be read are logged, and the
/// request (often a write already committed) answers without it.
pub async fn expiration_header(
    ctx: &RequestCtx<'_>,
    h: &mut HeaderMap,
    bucket: &str,
    key: &str,
    meta: &ObjectMeta,
) {
    let config = match crate::lifecycle::config_of(ctx.app.store.as_ref(), bucket).await {
        Ok(Some(config)) => config,
        Ok(None) => return,
        Err(e) => {
            tracing::error!(bucket, error = %e, "lifecycle rules unreadable");
            return;
        }
    };
    let day_ms = ctx.app.config.lifecycle_day_ms();
    if let Some((at, id)) =
        config.object_expiry(key, meta.size, &meta.tags, meta.write_time_ms(), day_ms)
    {
        let id = percent_encoding::utf8_percent_encode(id, RULE_ID_ESCAPED);
        set_header(
            h,
            "x-amz-expiration",
            &format!(
                "expiry-date=\"{}\", rule-id=\"{}\"",
                super::get::http_date(at),
                id
            ),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(rules: &str) -> Vec<u8> {
        format!("<LifecycleConfiguration>{rules}</LifecycleConfiguration>").into_bytes()
    }

    fn code(rules: &str) -> ErrorCode {
        match parse_config(&doc(rules)) {
            Ok(c) => panic!("accepted: {c:?}"),
            Err(e) => e.code,
        }
    }

    #[test]
    fn rules_round_trip_in_the_form_given() {
        let given = "<Rule><ID>a</ID><Filter><Prefix>logs/</Prefix></Filter><Status>Enabled</Status>\
             <Expiration><Days>7</Days></Expiration></Rule>\
             <Rule><ID>b</ID><Prefix>tmp/</Prefix><Status>Disabled</Status>\
             <AbortIncompleteMultipartUpload><DaysAfterInitiation>2</DaysAfterInitiation></AbortIncompleteMultipartUpload></Rule>\
             <Rule><ID>c</ID><Filter><And><Prefix>x/</Prefix><Tag><Key>k</Key><Value>v</Value></Tag>\
             <ObjectSizeGreaterThan>10</ObjectSizeGreaterThan></And></Filter><Status>Enabled</Status>\
             <Expiration><Date>2099-11-10T00:00:00Z</Date></Expiration></Rule>";
        let config = parse_config(&doc(given)).unwrap();
        let again = parse_config(render_config(&config).as_bytes()).unwrap();
        assert_eq!(config, again);
        assert_eq!(config.rules[1].filter.form, FilterForm::RulePrefix);
        assert_eq!(config.rules[2].filter.size_greater_than, Some(10));
        assert!(render_config(&config).contains("<Date>2099-11-10T00:00:00.000Z</Date>"));
    }

    #[test]
    fn bad_rules_get_the_errors_s3_gives() {
        let rule = |id: &str, body: &str| {
            format!(
                "<Rule><ID>{id}</ID><Filter><Prefix>p</Prefix></Filter><Status>Enabled</Status>{body}</Rule>"
            )
        };
        let days = |n: i64| format!("<Expiration><Days>{n}</Days></Expiration>");
        assert_eq!(code(""), ErrorCode::MalformedXML);
        assert_eq!(
            code(&rule(&"a".repeat(256), &days(1))),
            ErrorCode::InvalidArgument
        );
        assert_eq!(
            code(&format!("{}{}", rule("x", &days(1)), rule("x", &days(2)))),
            ErrorCode::InvalidArgument
        );
        assert_eq!(code(&rule("x", &days(0))), ErrorCode::InvalidArgument);
        assert_eq!(code(&rule("x", &days(-1))), ErrorCode::InvalidArgument);
        assert_eq!(
            code(&rule(
                "x",
                "<Expiration><Date>2099-11-10T12:00:00Z</Date></Expiration>"
            )),
            ErrorCode::InvalidArgument
        );
        assert_eq!(code(&rule("x", "")), ErrorCode::InvalidRequest);
        assert_eq!(
            code(&rule(
                "x",
                "<Expiration><Days>1</Days><Date>2099-11-10T00:00:00Z</Date></Expiration>"
            )),
            ErrorCode::MalformedXML
        );
        assert_eq!(
            code(
                "<Rule><ID>x</ID><Status>On</Status><Expiration><Days>1</Days></Expiration></Rule>"
            ),
            ErrorCode::MalformedXML
        );
        assert_eq!(
            code(
                "<Rule><ID>x</ID><Prefix>a</Prefix><Filter><Prefix>b</Prefix></Filter><Status>Enabled</Status><Expiration><Days>1</Days></Expiration></Rule>"
            ),
            ErrorCode::MalformedXML
        );
        assert_eq!(
            code(&rule(
                "x",
                "<Transition><Days>1</Days><StorageClass>GLACIER</StorageClass></Transition>"
            )),
            ErrorCode::NotImplemented
        );
        assert_eq!(
            code(
                "<Rule><ID>x</ID><Filter><Tag><Key>k</Key><Value>v</Value></Tag></Filter><Status>Enabled</Status>\
                  <AbortIncompleteMultipartUpload><DaysAfterInitiation>1</DaysAfterInitiation></AbortIncompleteMultipartUpload></Rule>"
            ),
            ErrorCode::InvalidRequest
        );
        assert_eq!(
            code(
                "<Rule><ID>x</ID><Filter><ObjectSizeGreaterThan>5</ObjectSizeGreaterThan></Filter>\
                 <Status>Enabled</Status><AbortIncompleteMultipartUpload><DaysAfterInitiation>1\
                 </DaysAfterInitiation></AbortIncompleteMultipartUpload></Rule>"
            ),
            ErrorCode::InvalidRequest
        );
        // A date that is no date does not fit the schema; a transition is checked before it is
        // refused, and a rule wrong in other ways says so first.
        for not_a_date in [
            "soon",
            "24-12-31",
            "+12345-01-01",
            "2099-1-10",
            " 2099-11-10x",
        ] {
            assert_eq!(
                code(&rule(
                    "x",
                    &format!("<Expiration><Date>{not_a_date}</Date></Expiration>")
                )),
                ErrorCode::MalformedXML,
                "{not_a_date}"
            );
        }
        assert_eq!(
            code(&rule(
                "x",
                "<Transition><Date>20220927</Date><StorageClass>GLACIER</StorageClass></Transition>"
            )),
            ErrorCode::MalformedXML
        );
        assert_eq!(
            code(&rule(
                "x",
                "<Transition><Days>1</Days><StorageClass>GLACIER</StorageClass></Transition>\
                 <Expiration><Days>0</Days></Expiration>"
            )),
            ErrorCode::InvalidArgument
        );
        let dated = parse_config(&doc(&rule(
            "x",
            "<Expiration><Date>2099-11-10</Date></Expiration>",
        )))
        .unwrap();
        assert_eq!(
            dated.rules[0].expiration,
            Some(Expiration::Date(4_097_952_000_000))
        );
        // A rule without an id gets one.
        let c = parse_config(&doc("<Rule><Filter><Prefix></Prefix></Filter><Status>Enabled</Status><Expiration><Days>1</Days></Expiration></Rule>")).unwrap();
        assert_eq!(c.rules[0].id.len(), 48);
    }
}
