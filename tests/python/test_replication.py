"""Replication (issue 8): `[[replication_targets]]` in the config, Put/Get/DeleteBucketReplication
with the AWS XML (destinations written `arn:sluice:replication::TARGET:BUCKET`), and the durable
queue: a matching write is PENDING until the target plugin took its whole body, then COMPLETED;
tasks survive kill -9. The fixture target (tests/plugins/hostile-target) checks that the body it
streams has the object's size and refuses it otherwise."""

from __future__ import annotations

import hashlib
import time

import pytest

from support.plugins import FIXTURES, plugin_entry, plugin_server
from support.util import expect_error

TARGET_PLUGIN = FIXTURES / "hostile_target.wasm"

TARGETS = (
    '[[replication_targets]]\nname = "dr"\nplugin = "target"\nendpoint = "http://127.0.0.1:1"\n'
)


def replication_server(start_server, extra: str = TARGETS, start: bool = True, mode: str = "accept"):
    return plugin_server(start_server, plugin_entry("target", TARGET_PLUGIN, world="replication-target",
                                                    config={"mode": mode}),
                         extra, start=start)


def status(s3, bucket, key, **kw):
    return s3.head_object(Bucket=bucket, Key=key, **kw).get("ReplicationStatus")


def wait_status(s3, bucket, key, want, timeout=20, **kw):
    deadline = time.time() + timeout
    got = None
    while time.time() < deadline:
        got = status(s3, bucket, key, **kw)
        if got == want:
            return
        time.sleep(0.1)
    raise AssertionError(f"{key}: replication status {got}, expected {want}")


def rule(rid, prio, dest="arn:sluice:replication::dr:backup", **kw):
    r = {"ID": rid, "Priority": prio, "Status": "Enabled", "Filter": kw.pop("Filter", {"Prefix": ""}),
         "DeleteMarkerReplication": {"Status": kw.pop("deletes", "Disabled")},
         "Destination": {"Bucket": dest}}
    r.update(kw)
    return r


def test_put_get_delete_bucket_replication(start_server):
    srv = replication_server(start_server)
    s3 = srv.client()
    s3.create_bucket(Bucket="src-bucket")
    expect_error(404, "ReplicationConfigurationNotFoundError", s3.get_bucket_replication,
                 Bucket="src-bucket")
    config = {"Role": "arn:aws:iam::123456789012:role/ignored", "Rules": [
        rule("logs", 2, Filter={"Prefix": "logs/"}, deletes="Enabled"),
        rule("tagged", 1, Filter={"And": {"Prefix": "img/", "Tags": [{"Key": "k", "Value": "v"}]}}),
        rule("one-tag", 3, Filter={"Tag": {"Key": "t", "Value": "u"}}),
    ]}
    s3.put_bucket_replication(Bucket="src-bucket", ReplicationConfiguration=config)
    got = s3.get_bucket_replication(Bucket="src-bucket")["ReplicationConfiguration"]
    assert got["Role"] == config["Role"]
    rules = {r["ID"]: r for r in got["Rules"]}
    assert rules["logs"]["Filter"] == {"Prefix": "logs/"} and rules["logs"]["Priority"] == 2
    assert rules["logs"]["DeleteMarkerReplication"] == {"Status": "Enabled"}
    assert rules["tagged"]["Filter"]["And"] == {"Prefix": "img/", "Tags": [{"Key": "k", "Value": "v"}]}
    assert rules["one-tag"]["Filter"] == {"Tag": {"Key": "t", "Value": "u"}}
    assert rules["logs"]["Destination"]["Bucket"] == "arn:sluice:replication::dr:backup"
    # A V1 rule (prefix at rule level, no priority) is kept as given.
    s3.put_bucket_replication(Bucket="src-bucket", ReplicationConfiguration={"Role": "", "Rules": [
        {"ID": "v1", "Prefix": "a/", "Status": "Disabled",
         "Destination": {"Bucket": "arn:sluice:replication::dr:backup"}}]})
    v1 = s3.get_bucket_replication(Bucket="src-bucket")["ReplicationConfiguration"]["Rules"][0]
    assert v1["Prefix"] == "a/" and v1["Status"] == "Disabled"
    s3.delete_bucket_replication(Bucket="src-bucket")
    expect_error(404, "ReplicationConfigurationNotFoundError", s3.get_bucket_replication,
                 Bucket="src-bucket")


@pytest.mark.parametrize("rules, status, code", [
    ([rule("a", 1, dest="arn:aws:s3:::backup")], 400, "InvalidArgument"),
    ([rule("a", 1, dest="arn:sluice:replication::nowhere:backup")], 400, "InvalidArgument"),
    ([rule("a", 1), rule("b", 1)], 400, "InvalidRequest"),
    ([rule("a", 1), rule("a", 2)], 400, "InvalidRequest"),
    ([rule("a", 1, Status="Sometimes")], 400, "MalformedXML"),
    # A V2 rule (with a Filter) must say whether deletes are replicated, as in S3.
    ([{k: v for k, v in rule("a", 1).items() if k != "DeleteMarkerReplication"}], 400,
     "InvalidRequest"),
    ([], 400, "MalformedXML"),
])
def test_bad_replication_configurations_are_refused(start_server, rules, status, code):
    srv = replication_server(start_server)
    s3 = srv.client()
    s3.create_bucket(Bucket="src-bucket")
    expect_error(status, code, s3.put_bucket_replication, Bucket="src-bucket",
                 ReplicationConfiguration={"Role": "", "Rules": rules})
    expect_error(404, "ReplicationConfigurationNotFoundError", s3.get_bucket_replication,
                 Bucket="src-bucket")


def test_only_principals_allowed_put_replication_configuration_may_change_it(start_server):
    srv = replication_server(start_server)
    s3 = srv.client()
    s3.create_bucket(Bucket="src-bucket")
    other = srv.admin_json("user", "create", "other")
    o = srv.client(other["access_key"], other["secret_key"])
    expect_error(403, "AccessDenied", o.put_bucket_replication, Bucket="src-bucket",
                 ReplicationConfiguration={"Role": "", "Rules": [rule("a", 1)]})
    expect_error(403, "AccessDenied", o.get_bucket_replication, Bucket="src-bucket")


@pytest.mark.parametrize("targets, key", [
    ('[[replication_targets]]\nname = "dr"\nplugin = "missing"\nendpoint = "http://h:1"\n',
     "replication_targets[0].plugin"),
    ('[[replication_targets]]\nname = "DR"\nplugin = "target"\nendpoint = "http://h:1"\n',
     "replication_targets[0].name"),
    ('[[replication_targets]]\nname = "dr"\nplugin = "target"\nendpoint = "ftp://h"\n',
     "replication_targets[0].endpoint"),
    (TARGETS + TARGETS, "replication_targets[1].name"),
])
def test_bad_targets_stop_start_up(start_server, targets, key):
    srv = replication_server(start_server, targets, start=False)
    srv.start(wait=False)
    assert srv.proc.wait(timeout=30) != 0
    assert key in srv.stderr_text()


def replicated_bucket(srv, prefix="rep/"):
    s3 = srv.client()
    s3.create_bucket(Bucket="src-bucket")
    s3.put_bucket_replication(Bucket="src-bucket", ReplicationConfiguration={"Role": "", "Rules": [
        rule("all", 1, Filter={"Prefix": prefix}, deletes="Enabled")]})
    return s3


def test_matching_writes_are_queued_and_delivered(start_server):
    srv = replication_server(start_server)
    s3 = replicated_bucket(srv)
    big = hashlib.sha256(b"x").digest() * (3 * 1024 * 1024 // 32)
    s3.put_object(Bucket="src-bucket", Key="rep/plain", Body=b"hello")
    s3.put_object(Bucket="src-bucket", Key="rep/big-encrypted", Body=big, ServerSideEncryption="AES256")
    s3.put_object(Bucket="src-bucket", Key="other/k", Body=b"not replicated")
    ck = {"SSECustomerAlgorithm": "AES256", "SSECustomerKey": b"k" * 32}
    s3.put_object(Bucket="src-bucket", Key="rep/sse-c", Body=b"secret", **ck)
    wait_status(s3, "src-bucket", "rep/plain", "COMPLETED")
    # The fixture refuses a body whose length differs from the object's: the whole (decrypted)
    # body was streamed.
    wait_status(s3, "src-bucket", "rep/big-encrypted", "COMPLETED")
    assert status(s3, "src-bucket", "other/k") is None
    # SSE-C objects cannot be replicated: the host never holds their key.
    wait_status(s3, "src-bucket", "rep/sse-c", "FAILED", **ck)
    assert "SSE-C objects cannot be replicated" in srv.stderr_text()
    # A multipart upload is replicated once complete.
    up = s3.create_multipart_upload(Bucket="src-bucket", Key="rep/mp")
    p = s3.upload_part(Bucket="src-bucket", Key="rep/mp", UploadId=up["UploadId"], PartNumber=1, Body=b"m" * 100)
    s3.complete_multipart_upload(Bucket="src-bucket", Key="rep/mp", UploadId=up["UploadId"],
                                 MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": p["ETag"]}]})
    wait_status(s3, "src-bucket", "rep/mp", "COMPLETED")
    # A repeated completion (an SDK retry) answers the first one and changes nothing: a newer
    # object under the key stays.
    s3.put_object(Bucket="src-bucket", Key="rep/mp", Body=b"newer")
    again = s3.complete_multipart_upload(Bucket="src-bucket", Key="rep/mp", UploadId=up["UploadId"],
                                         MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": p["ETag"]}]})
    assert again["ETag"]
    assert s3.get_object(Bucket="src-bucket", Key="rep/mp")["Body"].read() == b"newer"
    wait_status(s3, "src-bucket", "rep/mp", "COMPLETED")


def test_queue_survives_kill_and_a_target_that_was_down(start_server):
    srv = replication_server(start_server, mode="unavailable")
    s3 = replicated_bucket(srv)
    for i in range(20):
        s3.put_object(Bucket="src-bucket", Key=f"rep/{i}", Body=f"v{i}".encode())
    time.sleep(1.5)  # several attempts fail: the target is down
    assert all(status(s3, "src-bucket", f"rep/{i}") == "PENDING" for i in range(20))
    assert "replication will be retried" in srv.stderr_text()
    srv.kill()  # kill -9: the acknowledged writes' tasks are in redb
    cfg = srv.root / "plugins.toml"
    assert '"mode" = "unavailable"' in cfg.read_text()
    cfg.write_text(cfg.read_text().replace('"mode" = "unavailable"', '"mode" = "accept"'))
    srv.start()
    s3 = srv.client()
    for i in range(20):
        wait_status(s3, "src-bucket", f"rep/{i}", "COMPLETED", timeout=90)
