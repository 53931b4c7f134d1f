//! Authorization cost: one decision of the policy engine with 10, 100 and 1000 policies in
//! force (half attached to users, half bucket-policy statements spread over buckets, plus the
//! shipped defaults), including building the principal, bucket and object entities and the
//! context, as every S3 request does. For comparison, the naive use of `cedar-policy`: every
//! policy in one set, UIDs parsed from strings, entities from JSON.
//!
//! Besides criterion's estimates it prints p50/p99 per decision (the table in bench/README.md).

use std::str::FromStr;
use std::time::{Duration, Instant};

use cedar_policy::{Authorizer, Context, Entities, EntityUid, PolicySet, Request};
use criterion::{Criterion, criterion_group};
use sluice::auth::Principal;
use sluice::policy::bucket_policy::{self, Directory};
use sluice::policy::entities::{BucketFacts, ObjectFacts, RequestContext};
use sluice::policy::{AccessRequest, BucketPolicySet, PolicyEngine, Resource, files};

struct Dir;
impl Directory for Dir {
    fn user_id(&self, name: &str) -> Option<String> {
        Some(format!("{name:0>64}"))
    }
    fn root_id(&self) -> Option<String> {
        None
    }
    fn role_exists(&self, _: &str) -> bool {
        false
    }
}

fn user_id(i: usize) -> String {
    format!("{:0>64}", format!("u{i}"))
}

/// An engine holding `n` policies: n/2 attached to users u0.., n/2 bucket-policy statements
/// over n/20 buckets b0.. (10 statements each), plus the shipped defaults.
fn engine(n: usize) -> (PolicyEngine, PolicySet) {
    let mut all = files::load_defaults().expect("defaults");
    let mut attached = Vec::new();
    for i in 0..n / 2 {
        let text = format!(
            "@id(\"p\") permit (principal == Sluice::User::\"{}\", action in [Sluice::Action::\"s3:GetObject\", Sluice::Action::\"s3:PutObject\"], resource in Sluice::Bucket::\"b{}\") when {{ resource.key like \"team{i}/*\" }};",
            user_id(i),
            i % 50
        );
        attached.extend(files::parse_text("bench", &format!("user/u{i}/p"), &text).expect("parse"));
    }
    let buckets = (n / 20).max(1);
    let mut bucket_sets = Vec::new();
    for b in 0..buckets {
        let statements: Vec<serde_json::Value> = (0..(n / 2) / buckets)
            .map(|s| {
                serde_json::json!({
                    "Sid": format!("S{s}"),
                    "Effect": if s % 5 == 0 { "Deny" } else { "Allow" },
                    "Principal": {"AWS": format!("arn:aws:iam::1:user/u{}", s * 7)},
                    "Action": ["s3:GetObject", "s3:ListBucket"],
                    "Resource": [format!("arn:aws:s3:::b{b}"), format!("arn:aws:s3:::b{b}/s{s}/*")],
                    "Condition": {"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}},
                })
            })
            .collect();
        if statements.is_empty() {
            continue;
        }
        let doc = serde_json::json!({"Version": "2012-10-17", "Statement": statements});
        let t =
            bucket_policy::translate(&format!("b{b}"), &doc.to_string(), &Dir).expect("translate");
        all.extend(t.policies.clone());
        bucket_sets.push((format!("b{b}"), t.policies));
    }
    all.extend(attached.iter().cloned());
    let e = PolicyEngine::new(files::load_defaults().expect("defaults"));
    e.replace_identity(attached, Default::default());
    for (b, policies) in bucket_sets {
        e.set_bucket_policies(
            &b,
            Some(BucketPolicySet {
                policies,
                restrict_public: false,
            }),
        );
    }
    let mut whole = PolicySet::new();
    for p in all {
        whole.add(p).expect("unique ids");
    }
    (e, whole)
}

/// One decision as a request makes it: entities and context built, then decided.
fn decide(e: &PolicyEngine, i: usize) -> bool {
    let principal = Principal::User {
        id: user_id(i),
        name: format!("u{i}"),
        access_key: "AK".into(),
    };
    let bucket = BucketFacts {
        name: format!("b{}", i % 50),
        owner: user_id(999_999),
        acl: Default::default(),
    };
    let object = ObjectFacts {
        key: format!("team{i}/report.csv"),
        ..ObjectFacts::default()
    };
    let mut context = RequestContext::new("sigv4-header");
    context.source_ip = Some("10.1.2.3".parse().expect("ip"));
    e.decide(&AccessRequest {
        principal: &principal,
        action: "s3:GetObject",
        resource: Resource::Object(&bucket, &object),
        context: &context,
    })
    .allowed
}

/// The naive way: all policies in one set, UIDs parsed, entities from JSON.
fn decide_naive(whole: &PolicySet, i: usize) -> bool {
    let uid = user_id(i);
    let entities = Entities::from_json_value(
        serde_json::json!([
            {"uid": {"type": "Sluice::User", "id": uid}, "attrs": {"id": uid, "name": format!("u{i}"),
              "kind": "iam", "plugin": "", "subject": uid, "grantees": [uid, "AuthenticatedUsers", "AllUsers"]}, "parents": []},
            {"uid": {"type": "Sluice::Bucket", "id": format!("b{}", i % 50)}, "attrs": {"name": format!("b{}", i % 50),
              "owner": user_id(999_999), "acl": {"read": [], "write": [], "read_acp": [], "write_acp": []}}, "parents": []},
            {"uid": {"type": "Sluice::Object", "id": format!("b{}/team{i}/report.csv", i % 50)}, "attrs": {
              "key": format!("team{i}/report.csv"), "bucket": {"__entity": {"type": "Sluice::Bucket", "id": format!("b{}", i % 50)}},
              "acl": {"read": [], "write": [], "read_acp": [], "write_acp": []}},
              "parents": [{"type": "Sluice::Bucket", "id": format!("b{}", i % 50)}]},
        ]),
        None,
    )
    .expect("entities");
    let request = Request::new(
        EntityUid::from_str(&format!("Sluice::User::\"{uid}\"")).expect("uid"),
        EntityUid::from_str("Sluice::Action::\"s3:GetObject\"").expect("uid"),
        EntityUid::from_str(&format!(
            "Sluice::Object::\"b{}/team{i}/report.csv\"",
            i % 50
        ))
        .expect("uid"),
        Context::from_json_value(
            serde_json::json!({"source_ip": {"__extn": {"fn": "ip", "arg": "10.1.2.3"}},
                "secure_transport": false, "now": 0, "auth_method": "sigv4-header"}),
            None,
        )
        .expect("context"),
        None,
    )
    .expect("request");
    Authorizer::new()
        .is_authorized(&request, whole, &entities)
        .decision()
        == cedar_policy::Decision::Allow
}

fn percentile(sorted: &[Duration], q: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * q).round() as usize].as_secs_f64() * 1e6
}

fn sample(n: usize, mut f: impl FnMut(usize) -> bool) -> (f64, f64) {
    for i in 0..n / 10 {
        std::hint::black_box(f(i));
    }
    let mut times = Vec::with_capacity(n);
    for i in 0..n {
        let t = Instant::now();
        std::hint::black_box(f(i));
        times.push(t.elapsed());
    }
    times.sort();
    (percentile(&times, 0.5), percentile(&times, 0.99))
}

fn percentiles() {
    println!("\n| policies | engine p50 µs | engine p99 µs | naive p50 µs | naive p99 µs |");
    println!("|---:|---:|---:|---:|---:|");
    for n in [10, 100, 1000] {
        let (e, whole) = engine(n);
        // The decisions agree (the slices are exact), and both outcomes occur.
        let users = (n / 2).max(1);
        let mut allowed = 0;
        for i in 0..200 {
            let a = decide(&e, i % users);
            assert_eq!(
                a,
                decide_naive(&whole, i % users),
                "decisions differ at {i}"
            );
            allowed += usize::from(a);
        }
        assert!(
            allowed > 0,
            "nothing allowed: the benchmark would measure only denials"
        );
        let (p50, p99) = sample(20_000, |i| decide(&e, i % users));
        let (n50, n99) = sample(if n >= 1000 { 2_000 } else { 10_000 }, |i| {
            decide_naive(&whole, i % users)
        });
        println!(
            "| {} | {p50:.2} | {p99:.2} | {n50:.2} | {n99:.2} |",
            e.policy_count()
        );
    }
    println!();
    for line in [
        "> One decision includes building the principal, bucket and object entities and the",
        "> context, as every S3 request does. The engine indexes policies by the principal or",
        "> bucket their scope names and, per kind of request (principal, bucket, action, resource",
        "> type), keeps the policies whose scope (action, principal and resource type, and the",
        "> principals a bucket-policy statement names) can match; only those are evaluated.",
        "> \"naive\" is the same decision with every policy in one Cedar set and entities from",
        "> JSON; both give the same answers (checked on 200 requests per size).",
    ] {
        println!("{line}");
    }
}

fn criterion_benches(c: &mut Criterion) {
    percentiles();
    let mut g = c.benchmark_group("policy");
    for n in [10, 100, 1000] {
        let (e, _) = engine(n);
        let users = (n / 2).max(1);
        let mut i = 0;
        g.bench_function(format!("decide_{n}"), |b| {
            b.iter(|| {
                i = (i + 1) % users;
                decide(&e, i)
            })
        });
    }
    g.finish();
}

criterion_group!(benches, criterion_benches);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
}
