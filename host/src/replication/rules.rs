//! Bucket replication rules as S3 defines them (`ReplicationConfiguration`), validated against the
//! configured targets. A destination is written `arn:sluice:replication::TARGET:BUCKET`.

use serde::{Deserialize, Serialize};

/// Most rules one bucket may have (as S3).
pub const MAX_RULES: usize = 1000;
const ARN_PREFIX: &str = "arn:sluice:replication::";

/// Where a rule sends matching writes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Destination {
    pub target: String,
    pub bucket: String,
}

impl Destination {
    /// Parses `arn:sluice:replication::TARGET:BUCKET`.
    pub fn parse(arn: &str) -> Option<Destination> {
        let rest = arn.strip_prefix(ARN_PREFIX)?;
        let (target, bucket) = rest.split_once(':')?;
        let name_ok = |s: &str| {
            !s.is_empty()
                && s.len() <= 63
                && s.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
        };
        (name_ok(target) && name_ok(bucket)).then(|| Destination {
            target: target.to_string(),
            bucket: bucket.to_string(),
        })
    }

    pub fn arn(&self) -> String {
        format!("{ARN_PREFIX}{}:{}", self.target, self.bucket)
    }
}

/// Which keys a rule applies to: all of `prefix` and every tag must match.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleFilter {
    #[serde(default)]
    pub prefix: String,
    #[serde(default)]
    pub tags: Vec<(String, String)>,
}

impl RuleFilter {
    pub fn matches(&self, key: &str, tags: &[(String, String)]) -> bool {
        key.starts_with(&self.prefix) && self.tags.iter().all(|t| tags.contains(t))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rule {
    pub id: String,
    /// Higher wins when several rules match (S3 V2 rules); `None` in V1 (prefix-only) rules.
    pub priority: Option<i64>,
    pub enabled: bool,
    pub filter: RuleFilter,
    /// Whether the rule used the V2 `<Filter>` form (kept to answer as it was given).
    #[serde(default)]
    pub filter_form: bool,
    /// Deletes (`DeleteMarkerReplication` / `DeleteReplication` Enabled) propagate.
    pub replicate_deletes: bool,
    pub destination: Destination,
}

/// A bucket's replication configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplicationConfig {
    /// Accepted and ignored (S3 needs an IAM role; Sluice's targets carry their credentials).
    #[serde(default)]
    pub role: Option<String>,
    pub rules: Vec<Rule>,
}

/// Why a configuration is refused, with the S3 error it answers.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuleError {
    /// `MalformedXML`: the document breaks S3's schema rules.
    #[error("{0}")]
    Malformed(String),
    /// `InvalidArgument`: a value is not acceptable (unknown target, bad destination).
    #[error("{0}")]
    Invalid(String),
    /// `InvalidRequest`: the rules contradict each other.
    #[error("{0}")]
    Conflict(String),
}

impl ReplicationConfig {
    /// Checks S3's rules and that every destination names a target in `targets`.
    pub fn validate(&self, targets: &[String]) -> Result<(), RuleError> {
        if self.rules.is_empty() {
            return Err(RuleError::Malformed(
                "a replication configuration needs at least one rule".into(),
            ));
        }
        if self.rules.len() > MAX_RULES {
            return Err(RuleError::Malformed(format!(
                "at most {MAX_RULES} rules are allowed"
            )));
        }
        let v2 = self.rules.iter().any(|r| r.filter_form);
        for (i, r) in self.rules.iter().enumerate() {
            if r.id.len() > 255 {
                return Err(RuleError::Invalid(
                    "a rule ID is at most 255 characters".into(),
                ));
            }
            if self.rules[..i].iter().any(|o| o.id == r.id) {
                return Err(RuleError::Conflict(format!(
                    "rule ID `{}` is used twice",
                    r.id
                )));
            }
            if v2 && r.priority.is_none() {
                return Err(RuleError::Malformed(
                    "rules with a Filter need a Priority".into(),
                ));
            }
            if let Some(p) = r.priority
                && self.rules[..i].iter().any(|o| o.priority == Some(p))
            {
                return Err(RuleError::Conflict(
                    "Found duplicate priority; priorities must be unique across rules".into(),
                ));
            }
            if !targets.contains(&r.destination.target) {
                return Err(RuleError::Invalid(format!(
                    "replication target `{}` is not configured on this server",
                    r.destination.target
                )));
            }
        }
        Ok(())
    }

    /// The rules that apply to a write of `key` with `tags`, one per destination, as S3 does
    /// with several destinations: for each, the enabled matching rule with the highest priority
    /// (the first one among equals). Ordered by priority, highest first.
    pub fn rules_for(&self, key: &str, tags: &[(String, String)]) -> Vec<&Rule> {
        let mut best: Vec<&Rule> = Vec::new();
        for r in self
            .rules
            .iter()
            .filter(|r| r.enabled && r.filter.matches(key, tags))
        {
            match best.iter_mut().find(|b| b.destination == r.destination) {
                Some(b) if b.priority.unwrap_or(0) < r.priority.unwrap_or(0) => *b = r,
                Some(_) => {}
                None => best.push(r),
            }
        }
        best.sort_by_key(|r| std::cmp::Reverse(r.priority.unwrap_or(0)));
        best
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(id: &str, prio: Option<i64>, prefix: &str, target: &str) -> Rule {
        Rule {
            id: id.into(),
            priority: prio,
            enabled: true,
            filter: RuleFilter {
                prefix: prefix.into(),
                tags: Vec::new(),
            },
            filter_form: prio.is_some(),
            replicate_deletes: false,
            destination: Destination {
                target: target.into(),
                bucket: "dst".into(),
            },
        }
    }

    #[test]
    fn destination_arns() {
        let d = Destination::parse("arn:sluice:replication::dr-site:photos").unwrap();
        assert_eq!(
            (d.target.as_str(), d.bucket.as_str()),
            ("dr-site", "photos")
        );
        assert_eq!(d.arn(), "arn:sluice:replication::dr-site:photos");
        for bad in [
            "arn:aws:s3:::photos",
            "arn:sluice:replication::dr",
            "arn:sluice:replication:::photos",
            "arn:sluice:replication::DR:photos",
            "arn:sluice:replication::dr:pho/tos",
        ] {
            assert!(Destination::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn validation_and_rule_choice() {
        let targets = vec!["dr".to_string()];
        let ok = ReplicationConfig {
            role: None,
            rules: vec![
                rule("a", Some(1), "", "dr"),
                rule("b", Some(5), "logs/", "dr"),
            ],
        };
        assert!(ok.validate(&targets).is_ok());
        let first = |cfg: &ReplicationConfig, key: &str| {
            cfg.rules_for(key, &[]).first().map(|r| r.id.clone())
        };
        assert_eq!(first(&ok, "logs/x").as_deref(), Some("b"));
        assert_eq!(first(&ok, "img/x").as_deref(), Some("a"));
        let mut dup = ok.clone();
        dup.rules[1].priority = Some(1);
        assert!(matches!(
            dup.validate(&targets),
            Err(RuleError::Conflict(_))
        ));
        let mut unknown = ok.clone();
        unknown.rules[0].destination.target = "elsewhere".into();
        assert!(matches!(
            unknown.validate(&targets),
            Err(RuleError::Invalid(_))
        ));
        let mut no_prio = ok.clone();
        no_prio.rules[0].priority = None;
        assert!(matches!(
            no_prio.validate(&targets),
            Err(RuleError::Malformed(_))
        ));
        let mut disabled = ok.clone();
        disabled.rules[1].enabled = false;
        assert_eq!(first(&disabled, "logs/x").as_deref(), Some("a"));
        let tagged = RuleFilter {
            prefix: "".into(),
            tags: vec![("k".into(), "v".into())],
        };
        assert!(tagged.matches("x", &[("k".into(), "v".into()), ("o".into(), "p".into())]));
        assert!(!tagged.matches("x", &[("k".into(), "w".into())]));
        assert!(ReplicationConfig::default().validate(&targets).is_err());
    }

    #[test]
    fn one_rule_per_destination() {
        let cfg = ReplicationConfig {
            role: None,
            rules: vec![
                rule("a", Some(1), "", "dr"),
                rule("b", Some(3), "logs/", "dr"),
                rule("c", Some(2), "", "far"),
            ],
        };
        let ids = |key: &str| -> Vec<String> {
            cfg.rules_for(key, &[])
                .iter()
                .map(|r| r.id.clone())
                .collect()
        };
        // The best rule for `dr` and the one for `far`, highest priority first.
        assert_eq!(ids("logs/x"), ["b", "c"]);
        assert_eq!(ids("img/x"), ["c", "a"]);
    }
}
