//! End-to-end tests with aws-sdk-rust against the real `sluice` binary on a random loopback port.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aws_sdk_s3::Client;
use aws_sdk_s3::error::ProvideErrorMetadata;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{ChecksumAlgorithm, ChecksumMode, Delete, ObjectIdentifier};

const ROOT_AK: &str = "SDKTESTROOTKEY000001";
const ROOT_SK: &str = "sdk-test-root-secret-key-0000000000000001";

struct Server {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Server {
    fn start() -> Server {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let child = Command::new(env!("CARGO_BIN_EXE_sluice"))
            .arg("serve")
            .env("SLUICE_ADDRESS", format!("127.0.0.1:{port}"))
            .env("SLUICE_DATA_DIR", dir.path().join("data"))
            .env("SLUICE_MASTER_KEY_FILE", dir.path().join("master.key"))
            .env("SLUICE_ROOT_ACCESS_KEY", ROOT_AK)
            .env("SLUICE_ROOT_SECRET_KEY", ROOT_SK)
            .env("SLUICE_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start sluice");
        let server = Server {
            child,
            port,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "sluice did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        server
    }

    fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn client(&self, ak: &str, sk: &str) -> Client {
        let creds = aws_sdk_s3::config::Credentials::new(ak, sk, None, None, "test");
        let config = aws_sdk_s3::Config::builder()
            .behavior_version_latest()
            .region(aws_sdk_s3::config::Region::new("us-east-1"))
            .endpoint_url(self.endpoint())
            .credentials_provider(creds)
            .force_path_style(true)
            .build();
        Client::from_conf(config)
    }

    fn root(&self) -> Client {
        self.client(ROOT_AK, ROOT_SK)
    }

    /// Runs `sluice admin --endpoint ... ARGS` as root and parses its JSON.
    fn admin(&self, args: &[&str]) -> serde_json::Value {
        let out = Command::new(env!("CARGO_BIN_EXE_sluice"))
            .arg("admin")
            .arg("--endpoint")
            .arg(self.endpoint())
            .args(args)
            .env("AWS_ACCESS_KEY_ID", ROOT_AK)
            .env("AWS_SECRET_ACCESS_KEY", ROOT_SK)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "admin {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }
}

async fn body_of(resp: aws_sdk_s3::operation::get_object::GetObjectOutput) -> Vec<u8> {
    resp.body.collect().await.unwrap().into_bytes().to_vec()
}

#[tokio::test]
async fn bucket_lifecycle_and_errors() {
    let server = Server::start();
    let s3 = server.root();
    s3.create_bucket().bucket("life").send().await.unwrap();
    s3.head_bucket().bucket("life").send().await.unwrap();
    // us-east-1 keeps S3's legacy answer to re-creating a bucket its caller owns: 200.
    s3.create_bucket().bucket("life").send().await.unwrap();
    let bad = s3
        .create_bucket()
        .bucket("Bad_Name")
        .send()
        .await
        .unwrap_err();
    assert_eq!(bad.code(), Some("InvalidBucketName"));
    let names: Vec<String> = s3
        .list_buckets()
        .send()
        .await
        .unwrap()
        .buckets()
        .iter()
        .filter_map(|b| b.name().map(String::from))
        .collect();
    assert_eq!(names, vec!["life"]);
    s3.put_object()
        .bucket("life")
        .key("k")
        .body(ByteStream::from_static(b"x"))
        .send()
        .await
        .unwrap();
    let not_empty = s3.delete_bucket().bucket("life").send().await.unwrap_err();
    assert_eq!(not_empty.code(), Some("BucketNotEmpty"));
    s3.delete_object()
        .bucket("life")
        .key("k")
        .send()
        .await
        .unwrap();
    s3.delete_bucket().bucket("life").send().await.unwrap();
    let gone = s3.head_bucket().bucket("life").send().await.unwrap_err();
    assert_eq!(gone.raw_response().map(|r| r.status().as_u16()), Some(404));
}

#[tokio::test]
async fn objects_round_trip_with_metadata_checksums_and_ranges() {
    let server = Server::start();
    let s3 = server.root();
    s3.create_bucket().bucket("objs").send().await.unwrap();
    let data: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    for alg in [
        ChecksumAlgorithm::Crc32,
        ChecksumAlgorithm::Crc32C,
        ChecksumAlgorithm::Crc64Nvme,
        ChecksumAlgorithm::Sha1,
        ChecksumAlgorithm::Sha256,
    ] {
        let key = format!("data-{}", alg.as_str());
        s3.put_object()
            .bucket("objs")
            .key(&key)
            .content_type("application/x-test")
            .metadata("color", "blue")
            .checksum_algorithm(alg.clone())
            .body(ByteStream::from(data.clone()))
            .send()
            .await
            .unwrap();
        let got = s3
            .get_object()
            .bucket("objs")
            .key(&key)
            .checksum_mode(ChecksumMode::Enabled)
            .send()
            .await
            .unwrap();
        assert_eq!(got.content_type(), Some("application/x-test"));
        assert_eq!(
            got.metadata()
                .and_then(|m| m.get("color"))
                .map(String::as_str),
            Some("blue")
        );
        let has_checksum = got.checksum_crc32().is_some()
            || got.checksum_crc32_c().is_some()
            || got.checksum_crc64_nvme().is_some()
            || got.checksum_sha1().is_some()
            || got.checksum_sha256().is_some();
        assert!(has_checksum, "{key}: no checksum returned");
        assert_eq!(body_of(got).await, data);
    }
    let part = s3
        .get_object()
        .bucket("objs")
        .key("data-CRC32")
        .range("bytes=1000-1999")
        .send()
        .await
        .unwrap();
    assert_eq!(part.content_range(), Some("bytes 1000-1999/300000"));
    assert_eq!(body_of(part).await, data[1000..2000]);
    let tail = s3
        .get_object()
        .bucket("objs")
        .key("data-CRC32")
        .range("bytes=-10")
        .send()
        .await
        .unwrap();
    assert_eq!(body_of(tail).await, data[data.len() - 10..]);
    let bad = s3
        .get_object()
        .bucket("objs")
        .key("data-CRC32")
        .range("bytes=300000-")
        .send()
        .await
        .unwrap_err();
    assert_eq!(bad.code(), Some("InvalidRange"));
    let missing = s3
        .get_object()
        .bucket("objs")
        .key("nope")
        .send()
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Some("NoSuchKey"));
}

#[tokio::test]
async fn conditional_writes_and_reads() {
    let server = Server::start();
    let s3 = server.root();
    s3.create_bucket().bucket("cond").send().await.unwrap();
    let first = s3
        .put_object()
        .bucket("cond")
        .key("k")
        .if_none_match("*")
        .body(ByteStream::from_static(b"one"))
        .send()
        .await
        .unwrap();
    let etag = first.e_tag().unwrap().to_string();
    let second = s3
        .put_object()
        .bucket("cond")
        .key("k")
        .if_none_match("*")
        .body(ByteStream::from_static(b"two"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(second.code(), Some("PreconditionFailed"));
    let wrong = s3
        .put_object()
        .bucket("cond")
        .key("k")
        .if_match("\"0000\"")
        .body(ByteStream::from_static(b"two"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(wrong.code(), Some("PreconditionFailed"));
    s3.put_object()
        .bucket("cond")
        .key("k")
        .if_match(&etag)
        .body(ByteStream::from_static(b"two"))
        .send()
        .await
        .unwrap();
    let not_modified = s3
        .get_object()
        .bucket("cond")
        .key("k")
        .if_none_match("\"2fc7b73afd5a4e0e0b6e2e6e0fd0aa3e\"")
        .send()
        .await;
    // A different ETag does not match: the object is returned.
    assert!(not_modified.is_ok());
    let cur = s3
        .head_object()
        .bucket("cond")
        .key("k")
        .send()
        .await
        .unwrap();
    let err = s3
        .get_object()
        .bucket("cond")
        .key("k")
        .if_none_match(cur.e_tag().unwrap())
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.raw_response().map(|r| r.status().as_u16()), Some(304));
}

#[tokio::test]
async fn listing_paginates_in_binary_order_and_deletes_in_bulk() {
    let server = Server::start();
    let s3 = server.root();
    s3.create_bucket().bucket("list").send().await.unwrap();
    let mut keys: Vec<String> = (0..25)
        .map(|i| format!("dir{}/file{i:02}", i % 3))
        .collect();
    keys.push("top".into());
    keys.push("\u{e9}t\u{e9}".into());
    keys.push("Zed".into());
    for k in &keys {
        s3.put_object()
            .bucket("list")
            .key(k)
            .body(ByteStream::from_static(b"."))
            .send()
            .await
            .unwrap();
    }
    let mut seen = Vec::new();
    let mut pages = s3
        .list_objects_v2()
        .bucket("list")
        .max_keys(7)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.unwrap();
        assert!(page.key_count().unwrap_or(0) <= 7);
        seen.extend(
            page.contents()
                .iter()
                .filter_map(|o| o.key().map(String::from)),
        );
    }
    let mut expected = keys.clone();
    expected.sort();
    assert_eq!(seen, expected);
    let grouped = s3
        .list_objects_v2()
        .bucket("list")
        .delimiter("/")
        .send()
        .await
        .unwrap();
    let prefixes: Vec<&str> = grouped
        .common_prefixes()
        .iter()
        .filter_map(|p| p.prefix())
        .collect();
    assert_eq!(prefixes, vec!["dir0/", "dir1/", "dir2/"]);
    assert_eq!(grouped.contents().len(), 3);

    let ids: Vec<ObjectIdentifier> = keys
        .iter()
        .map(|k| ObjectIdentifier::builder().key(k).build().unwrap())
        .collect();
    let deleted = s3
        .delete_objects()
        .bucket("list")
        .delete(Delete::builder().set_objects(Some(ids)).build().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.deleted().len(), keys.len());
    let left = s3.list_objects_v2().bucket("list").send().await.unwrap();
    assert_eq!(left.key_count(), Some(0));
}

#[tokio::test]
async fn users_own_their_buckets_and_disabled_keys_stop_at_once() {
    let server = Server::start();
    let alice = server.admin(&["user", "create", "alice"]);
    let bob = server.admin(&["user", "create", "bob"]);
    let a = server.client(
        alice["access_key"].as_str().unwrap(),
        alice["secret_key"].as_str().unwrap(),
    );
    let b = server.client(
        bob["access_key"].as_str().unwrap(),
        bob["secret_key"].as_str().unwrap(),
    );
    a.create_bucket().bucket("alices").send().await.unwrap();
    a.put_object()
        .bucket("alices")
        .key("k")
        .body(ByteStream::from_static(b"mine"))
        .send()
        .await
        .unwrap();
    let denied = b
        .get_object()
        .bucket("alices")
        .key("k")
        .send()
        .await
        .unwrap_err();
    assert_eq!(denied.code(), Some("AccessDenied"));
    let taken = b.create_bucket().bucket("alices").send().await.unwrap_err();
    assert_eq!(taken.code(), Some("BucketAlreadyExists"));
    let listed = b.list_buckets().send().await.unwrap();
    assert!(listed.buckets().is_empty());
    // Root sees everything.
    let got = server
        .root()
        .get_object()
        .bucket("alices")
        .key("k")
        .send()
        .await
        .unwrap();
    assert_eq!(body_of(got).await, b"mine");

    server.admin(&["key", "disable", alice["access_key"].as_str().unwrap()]);
    let off = a.list_buckets().send().await.unwrap_err();
    assert_eq!(off.code(), Some("InvalidAccessKeyId"));
    let wrong = server.client(alice["access_key"].as_str().unwrap(), "not-the-secret");
    let bad = wrong.list_buckets().send().await.unwrap_err();
    assert_eq!(bad.code(), Some("InvalidAccessKeyId"));
    let bob_wrong = server.client(bob["access_key"].as_str().unwrap(), "not-the-secret");
    let bad = bob_wrong.list_buckets().send().await.unwrap_err();
    assert_eq!(bad.code(), Some("SignatureDoesNotMatch"));
}

#[tokio::test]
async fn large_body_streams_through() {
    let server = Server::start();
    let s3 = server.root();
    s3.create_bucket().bucket("big").send().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("blob");
    let data: Vec<u8> = (0..(24 * 1024 * 1024u32))
        .map(|i| (i.wrapping_mul(2654435761) >> 24) as u8)
        .collect();
    std::fs::write(&path, &data).unwrap();
    s3.put_object()
        .bucket("big")
        .key("blob")
        .body(ByteStream::from_path(&path).await.unwrap())
        .send()
        .await
        .unwrap();
    let got = s3
        .get_object()
        .bucket("big")
        .key("blob")
        .send()
        .await
        .unwrap();
    assert_eq!(got.content_length(), Some(data.len() as i64));
    assert!(body_of(got).await == data);
}

#[tokio::test]
async fn multipart_copy_tagging_and_cors_with_the_sdk() {
    use aws_sdk_s3::types::{
        CompletedMultipartUpload, CompletedPart, CorsConfiguration, CorsRule, Tag, Tagging,
    };
    let server = Server::start();
    let s3 = server.root();
    s3.create_bucket().bucket("mpu").send().await.unwrap();
    let part1: Vec<u8> = (0..5 * 1024 * 1024u32).map(|i| (i % 253) as u8).collect();
    let part2 = b"tail of the object".to_vec();
    let up = s3
        .create_multipart_upload()
        .bucket("mpu")
        .key("big")
        .send()
        .await
        .unwrap();
    let id = up.upload_id().unwrap();
    let mut done = Vec::new();
    for (n, data) in [(1, part1.clone()), (2, part2.clone())] {
        let r = s3
            .upload_part()
            .bucket("mpu")
            .key("big")
            .upload_id(id)
            .part_number(n)
            .body(ByteStream::from(data))
            .send()
            .await
            .unwrap();
        done.push(
            CompletedPart::builder()
                .part_number(n)
                .e_tag(r.e_tag().unwrap())
                .build(),
        );
    }
    let complete = s3
        .complete_multipart_upload()
        .bucket("mpu")
        .key("big")
        .upload_id(id)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .set_parts(Some(done))
                .build(),
        )
        .send()
        .await
        .unwrap();
    assert!(complete.e_tag().unwrap().ends_with("-2\""));
    let mut expected = part1.clone();
    expected.extend_from_slice(&part2);
    let got = s3
        .get_object()
        .bucket("mpu")
        .key("big")
        .send()
        .await
        .unwrap();
    assert!(body_of(got).await == expected);
    let second = s3
        .get_object()
        .bucket("mpu")
        .key("big")
        .part_number(2)
        .send()
        .await
        .unwrap();
    assert_eq!(second.parts_count(), Some(2));
    assert_eq!(body_of(second).await, part2);

    s3.copy_object()
        .bucket("mpu")
        .key("copy")
        .copy_source("mpu/big")
        .send()
        .await
        .unwrap();
    let copied = s3
        .get_object()
        .bucket("mpu")
        .key("copy")
        .send()
        .await
        .unwrap();
    assert!(body_of(copied).await == expected);

    s3.put_object_tagging()
        .bucket("mpu")
        .key("copy")
        .tagging(
            Tagging::builder()
                .tag_set(Tag::builder().key("k").value("v").build().unwrap())
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let tags = s3
        .get_object_tagging()
        .bucket("mpu")
        .key("copy")
        .send()
        .await
        .unwrap();
    assert_eq!(tags.tag_set().len(), 1);
    assert_eq!(tags.tag_set()[0].key(), "k");

    s3.put_bucket_cors()
        .bucket("mpu")
        .cors_configuration(
            CorsConfiguration::builder()
                .cors_rules(
                    CorsRule::builder()
                        .allowed_origins("https://app.test")
                        .allowed_methods("GET")
                        .build()
                        .unwrap(),
                )
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let cors = s3.get_bucket_cors().bucket("mpu").send().await.unwrap();
    assert_eq!(cors.cors_rules()[0].allowed_origins(), ["https://app.test"]);

    let aborted = s3
        .create_multipart_upload()
        .bucket("mpu")
        .key("gone")
        .send()
        .await
        .unwrap();
    s3.abort_multipart_upload()
        .bucket("mpu")
        .key("gone")
        .upload_id(aborted.upload_id().unwrap())
        .send()
        .await
        .unwrap();
    let listed = s3
        .list_multipart_uploads()
        .bucket("mpu")
        .send()
        .await
        .unwrap();
    assert!(listed.uploads().is_empty());
}

#[tokio::test]
async fn bucket_settings_with_the_sdk() {
    use aws_sdk_s3::types::{
        ObjectOwnership, OwnershipControls, OwnershipControlsRule, Payer,
        PublicAccessBlockConfiguration, RequestPaymentConfiguration,
    };
    let server = Server::start();
    let s3 = server.root();
    s3.create_bucket().bucket("settings").send().await.unwrap();
    let pab = s3
        .get_public_access_block()
        .bucket("settings")
        .send()
        .await
        .unwrap();
    assert_eq!(
        pab.public_access_block_configuration()
            .and_then(|c| c.block_public_acls()),
        Some(true)
    );
    s3.put_public_access_block()
        .bucket("settings")
        .public_access_block_configuration(
            PublicAccessBlockConfiguration::builder()
                .block_public_acls(false)
                .build(),
        )
        .send()
        .await
        .unwrap();
    let pab = s3
        .get_public_access_block()
        .bucket("settings")
        .send()
        .await
        .unwrap();
    assert_eq!(
        pab.public_access_block_configuration()
            .and_then(|c| c.block_public_acls()),
        Some(false)
    );
    s3.put_bucket_ownership_controls()
        .bucket("settings")
        .ownership_controls(
            OwnershipControls::builder()
                .rules(
                    OwnershipControlsRule::builder()
                        .object_ownership(ObjectOwnership::BucketOwnerPreferred)
                        .build()
                        .unwrap(),
                )
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let own = s3
        .get_bucket_ownership_controls()
        .bucket("settings")
        .send()
        .await
        .unwrap();
    assert_eq!(
        own.ownership_controls().unwrap().rules()[0].object_ownership(),
        &ObjectOwnership::BucketOwnerPreferred
    );
    s3.put_bucket_request_payment()
        .bucket("settings")
        .request_payment_configuration(
            RequestPaymentConfiguration::builder()
                .payer(Payer::Requester)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let pay = s3
        .get_bucket_request_payment()
        .bucket("settings")
        .send()
        .await
        .unwrap();
    assert_eq!(pay.payer(), Some(&Payer::Requester));
    lifecycle_with_the_sdk(&s3, "settings").await;
}

/// The SDK sends a lifecycle document with a checksum and reads the rules back as given.
async fn lifecycle_with_the_sdk(s3: &aws_sdk_s3::Client, bucket: &str) {
    use aws_sdk_s3::types::{
        BucketLifecycleConfiguration, ExpirationStatus, LifecycleExpiration, LifecycleRule,
        LifecycleRuleFilter,
    };
    let rule = LifecycleRule::builder()
        .id("logs")
        .status(ExpirationStatus::Enabled)
        .filter(LifecycleRuleFilter::builder().prefix("logs/").build())
        .expiration(LifecycleExpiration::builder().days(30).build())
        .build()
        .unwrap();
    s3.put_bucket_lifecycle_configuration()
        .bucket(bucket)
        .lifecycle_configuration(
            BucketLifecycleConfiguration::builder()
                .rules(rule)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let got = s3
        .get_bucket_lifecycle_configuration()
        .bucket(bucket)
        .send()
        .await
        .unwrap();
    let [rule] = got.rules() else {
        panic!("one rule expected: {got:?}");
    };
    assert_eq!(rule.id(), Some("logs"));
    assert_eq!(rule.status(), &ExpirationStatus::Enabled);
    assert_eq!(rule.filter().and_then(|f| f.prefix()), Some("logs/"));
    assert_eq!(rule.expiration().and_then(|e| e.days()), Some(30));
    s3.delete_bucket_lifecycle()
        .bucket(bucket)
        .send()
        .await
        .unwrap();
    let err = s3
        .get_bucket_lifecycle_configuration()
        .bucket(bucket)
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        err.into_service_error().meta().code(),
        Some("NoSuchLifecycleConfiguration")
    );
}

/// The Rust SDK sends each requested attribute as its own `x-amz-object-attributes` line (and
/// signs them as one comma-joined header).
#[tokio::test]
async fn object_attributes_through_the_rust_sdk() {
    use aws_sdk_s3::types::ObjectAttributes;
    let server = Server::start();
    let s3 = server.root();
    s3.create_bucket().bucket("attrs").send().await.unwrap();
    let body = b"attributes".to_vec();
    s3.put_object()
        .bucket("attrs")
        .key("k")
        .checksum_algorithm(ChecksumAlgorithm::Crc32C)
        .body(ByteStream::from(body.clone()))
        .send()
        .await
        .unwrap();
    let got = s3
        .get_object_attributes()
        .bucket("attrs")
        .key("k")
        .object_attributes(ObjectAttributes::ObjectSize)
        .object_attributes(ObjectAttributes::Etag)
        .object_attributes(ObjectAttributes::Checksum)
        .send()
        .await
        .unwrap();
    assert_eq!(got.object_size(), Some(body.len() as i64));
    let head = s3
        .head_object()
        .bucket("attrs")
        .key("k")
        .send()
        .await
        .unwrap();
    assert_eq!(got.e_tag(), head.e_tag().map(|e| e.trim_matches('"')));
    assert!(got.checksum().and_then(|c| c.checksum_crc32_c()).is_some());
    assert!(got.object_parts().is_none() && got.storage_class().is_none());
    assert_eq!(got.last_modified(), head.last_modified());
}
