"""Replication between two real `sluice` servers (issue 8) through the shipped `s3-target`
plugin: SigV4 over wasi:http, multipart for large objects, metadata/tags/content headers and
checksums carried, encrypted objects re-encrypted by the destination, deletes, pause/resume,
a destination that is down for a while, kill -9 of the source, two-way replication with
last-writer-wins, replica markers honoured only from principals allowed s3:ReplicateObject,
and a hostile target that delays only its own queue."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone

import pytest
import requests

from support.plugins import DIST, FIXTURES, BlackHole, plugin_entry, plugin_server

S3_TARGET = DIST / "s3_target.wasm"
HOSTILE_TARGET = FIXTURES / "hostile_target.wasm"
MIB = 1024 * 1024


def target_config(dest, name="site-b", plugin="s3t", allowed=None, extra_targets=""):
    """A `[[plugins]]` s3-target entry and a `[[replication_targets]]` entry for `dest`."""
    hosts = allowed if allowed is not None else [f"127.0.0.1:{dest.port}"]
    return (plugin_entry(plugin, S3_TARGET, world="replication-target", allowed_hosts=hosts,
                         config={"part_size": 5 * MIB}, limits={"timeout_ms": 10000})
            + f'[[replication_targets]]\nname = "{name}"\nplugin = "{plugin}"\n'
              f'endpoint = "http://127.0.0.1:{dest.port}"\n' + extra_targets)


def site(start_server, dest, **kw):
    """A source server replicating to `dest` (signing as dest's root)."""
    src = plugin_server(start_server, target_config(dest, **kw))
    set_credentials(src, dest, kw.get("name", "site-b"))
    return src


def set_credentials(src, dest, name="site-b"):
    out = src.admin_json("replication", "credentials", name, "--access-key", dest.access_key,
                         "--secret-key", dest.secret_key)
    assert out == {"target": name, "access_key": dest.access_key}


def replicate(s3, bucket, dest_bucket, target="site-b", deletes=True, prefix=""):
    s3.put_bucket_replication(Bucket=bucket, ReplicationConfiguration={"Role": "", "Rules": [{
        "ID": "all", "Priority": 1, "Status": "Enabled", "Filter": {"Prefix": prefix},
        "DeleteMarkerReplication": {"Status": "Enabled" if deletes else "Disabled"},
        "Destination": {"Bucket": f"arn:sluice:replication::{target}:{dest_bucket}"}}]})


def one_way(start_server, bucket, **kw):
    """A destination with bucket `backup` and a source whose `bucket` replicates to it."""
    dest = start_server()
    d3 = dest.client()
    d3.create_bucket(Bucket="backup")
    src = site(start_server, dest, **kw)
    s3 = src.client()
    s3.create_bucket(Bucket=bucket)
    replicate(s3, bucket, "backup")
    return dest, d3, src, s3


def status(srv, bucket):
    return srv.admin_json("replication", "status", bucket)


def wait_drained(srv, bucket, timeout=90):
    deadline = time.time() + timeout
    st = None
    while time.time() < deadline:
        st = status(srv, bucket)
        if st["pending"] == 0:
            return st
        time.sleep(0.2)
    raise AssertionError(f"{bucket}: queue not drained: {st}")


@contextlib.contextmanager
def held(a, b, bucket):
    """Pauses `bucket`'s queue on both sites for the block, then resumes both and waits until
    both have drained: the writes in the block race each other as truly concurrent ones."""
    for srv in (a, b):
        srv.admin_json("replication", "pause", bucket)
    yield
    for srv in (a, b):
        srv.admin_json("replication", "resume", bucket)
    wait_drained(a, bucket)
    wait_drained(b, bucket)


def wait_for(pred, what, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if pred():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def body_of(s3, bucket, key):
    return s3.get_object(Bucket=bucket, Key=key)["Body"].read()


def exists(s3, bucket, key):
    try:
        s3.head_object(Bucket=bucket, Key=key)
        return True
    except s3.exceptions.ClientError as e:
        if e.response["ResponseMetadata"]["HTTPStatusCode"] == 404:
            return False
        raise


def put_many(s3, bucket, keys, size=1024, tag=b""):
    def put(k):
        body = hashlib.sha256(k.encode() + tag).digest() * (size // 32)
        s3.put_object(Bucket=bucket, Key=k, Body=body)
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(put, keys))


def multipart(s3, bucket, key, parts, **kw):
    up = s3.create_multipart_upload(Bucket=bucket, Key=key, **kw)
    done = []
    for i, data in enumerate(parts, 1):
        r = s3.upload_part(Bucket=bucket, Key=key, UploadId=up["UploadId"], PartNumber=i, Body=data)
        done.append({"PartNumber": i, "ETag": r["ETag"]})
    s3.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=up["UploadId"],
                                 MultipartUpload={"Parts": done})


@pytest.mark.slow
def test_one_way_1000_small_and_3_large_with_metadata(start_server):
    dest, d3, src, s3 = one_way(start_server, "photos")

    small = [f"small/{i:04d}" for i in range(1000)]
    put_many(s3, "photos", small)
    # Three large objects: a single 12 MiB PUT (sent as a multipart upload, 5 MiB parts), a
    # multipart upload on the source, and an SSE-S3 object with metadata, tags and headers.
    big = os.urandom(12 * MIB)
    s3.put_object(Bucket="photos", Key="large/plain.bin", Body=big)
    parts = [os.urandom(5 * MIB), os.urandom(5 * MIB), os.urandom(3 * MIB)]
    multipart(s3, "photos", "large/multipart.bin", parts, ContentType="video/mp4")
    enc = os.urandom(9 * MIB + 17)
    s3.put_object(Bucket="photos", Key="large/encrypted.bin", Body=enc,
                  ServerSideEncryption="AES256", ContentType="application/x-test",
                  ContentDisposition='attachment; filename="e.bin"', CacheControl="max-age=60",
                  ContentLanguage="fr", Metadata={"origin": "camera-7", "shot": "42"},
                  Tagging="album=holiday&year=2026")
    s3.put_object(Bucket="photos", Key="meta/small.txt", Body=b"hello", ContentType="text/plain",
                  ContentEncoding="identity", Metadata={"k": "v"}, Tagging="a=1",
                  ChecksumAlgorithm="SHA256")

    st = wait_drained(src, "photos", timeout=180)
    assert st["configured"] and not st["paused"] and st["last_error"] is None

    # Every small object arrived, byte for byte, marked REPLICA, with the source's time.
    listed = [o["Key"] for p in d3.get_paginator("list_objects_v2").paginate(Bucket="backup",
                                                                              Prefix="small/")
              for o in p.get("Contents", [])]
    assert listed == small
    for k in small[::97]:
        h_src = s3.head_object(Bucket="photos", Key=k)
        h_dst = d3.head_object(Bucket="backup", Key=k)
        assert h_src["ReplicationStatus"] == "COMPLETED"
        assert h_dst["ReplicationStatus"] == "REPLICA"
        assert h_dst["ETag"] == h_src["ETag"]
        assert h_dst["LastModified"] == h_src["LastModified"]
        assert body_of(d3, "backup", k) == body_of(s3, "photos", k)

    assert hashlib.sha256(body_of(d3, "backup", "large/plain.bin")).digest() == \
        hashlib.sha256(big).digest()
    got = d3.get_object(Bucket="backup", Key="large/multipart.bin")
    assert got["Body"].read() == b"".join(parts) and got["ContentType"] == "video/mp4"
    got = d3.get_object(Bucket="backup", Key="large/encrypted.bin")
    assert got["Body"].read() == enc
    # Encrypted at the source: encrypted at the destination under its own keys.
    assert got["ServerSideEncryption"] == "AES256"
    assert got["ContentType"] == "application/x-test"
    assert got["ContentDisposition"] == 'attachment; filename="e.bin"'
    assert got["CacheControl"] == "max-age=60" and got["ContentLanguage"] == "fr"
    assert got["Metadata"] == {"origin": "camera-7", "shot": "42"}
    tags = d3.get_object_tagging(Bucket="backup", Key="large/encrypted.bin")["TagSet"]
    assert sorted((t["Key"], t["Value"]) for t in tags) == [("album", "holiday"), ("year", "2026")]
    # The full-object checksum travelled with the single PUT and the destination checked it.
    h_src = s3.head_object(Bucket="photos", Key="meta/small.txt", ChecksumMode="ENABLED")
    h_dst = d3.head_object(Bucket="backup", Key="meta/small.txt", ChecksumMode="ENABLED")
    assert h_dst["ChecksumSHA256"] == h_src["ChecksumSHA256"]
    assert h_dst["ContentEncoding"] == "identity" and h_dst["Metadata"] == {"k": "v"}
    # A large object's full-object CRC survives the multipart upload to the destination, which
    # checked it on completion.
    for key in ("large/plain.bin", "large/encrypted.bin"):
        got = [srv.raw().request("HEAD", f"/{b}/{key}", headers={"x-amz-checksum-mode": "ENABLED"})
               for srv, b in ((src, "photos"), (dest, "backup"))]
        sums = [{k.lower(): v for k, v in r.headers.items()
                 if k.lower().startswith("x-amz-checksum-") and k.lower() != "x-amz-checksum-type"}
                for r in got]
        assert len(sums[0]) == 1 and sums[1] == sums[0], (key, sums)
        assert got[1].header("x-amz-checksum-type") == "FULL_OBJECT"

    # Metrics on the source count what was carried.
    text = requests.get(f"{src.endpoint}/_sluice/metrics", timeout=10).text
    metrics = {l.split()[0]: float(l.split()[1]) for l in text.splitlines()
               if l and not l.startswith("#")}
    assert metrics["sluice_replication_queue_depth"] == 0
    assert metrics["sluice_replication_completed_total"] >= 1004
    assert metrics["sluice_replication_bytes_total"] >= len(big) + len(enc) + sum(map(len, parts))
    assert metrics["sluice_replication_failed_total"] == 0

    # Deletes propagate when the rule says so.
    for k in small[:50]:
        s3.delete_object(Bucket="photos", Key=k)
    wait_drained(src, "photos")
    assert not exists(d3, "backup", small[0]) and not exists(d3, "backup", small[49])
    assert exists(d3, "backup", small[50])


def test_pause_resume_and_a_destination_that_was_down(start_server):
    dest, d3, src, s3 = one_way(start_server, "docs")

    src.admin_json("replication", "pause", "docs")
    put_many(s3, "docs", [f"p/{i}" for i in range(20)])
    time.sleep(1.5)
    st = status(src, "docs")
    assert st["paused"] and st["pending"] == 20
    assert not exists(d3, "backup", "p/0")
    assert s3.head_object(Bucket="docs", Key="p/0")["ReplicationStatus"] == "PENDING"
    assert src.admin_json("replication", "resume", "docs") == {"bucket": "docs", "paused": False}
    wait_drained(src, "docs")
    assert all(exists(d3, "backup", f"p/{i}") for i in range(20))

    # The destination goes away: tasks wait and retry; when it is back everything arrives.
    dest.stop()
    put_many(s3, "docs", [f"d/{i}" for i in range(30)])
    wait_for(lambda: status(src, "docs")["retrying"] > 0, "a failed delivery")
    st = status(src, "docs")
    assert st["pending"] == 30 and st["last_error"] and st["lag_seconds"] >= 0
    time.sleep(2)
    dest.start()
    wait_drained(src, "docs", timeout=120)
    for i in range(30):
        assert s3.head_object(Bucket="docs", Key=f"d/{i}")["ReplicationStatus"] == "COMPLETED"
        assert body_of(d3, "backup", f"d/{i}") == body_of(s3, "docs", f"d/{i}")

    # Status of a missing bucket is a clear error; only admins may pause.
    cp = src.admin("replication", "status", "nope", check=False)
    assert cp.returncode != 0 and "NoSuchBucket" in cp.stderr + cp.stdout
    user = src.admin_json("user", "create", "plain")
    cp = src.admin("replication", "pause", "docs", creds=(user["access_key"], user["secret_key"]),
                   check=False)
    assert cp.returncode != 0 and "AccessDenied" in cp.stderr + cp.stdout


def test_kill_9_of_the_source_mid_stream_loses_nothing_acknowledged(start_server):
    dest, d3, src, s3 = one_way(start_server, "logs")
    big = os.urandom(11 * MIB)
    s3.put_object(Bucket="logs", Key="big.bin", Body=big)
    keys = [f"k/{i:03d}" for i in range(300)]
    put_many(s3, "logs", keys, size=4096)
    src.kill()  # kill -9 while the workers are carrying the batch
    src.start()
    wait_drained(src, "logs", timeout=120)
    for k in keys:
        assert exists(d3, "backup", k), k
    assert body_of(d3, "backup", "big.bin") == big
    # No multipart upload the killed worker began is left completed twice or half visible.
    assert d3.list_objects_v2(Bucket="backup")["KeyCount"] == 301


@pytest.mark.slow
def test_two_way_replication_converges_and_never_loops(start_server):
    a = start_server(start=False)
    b = start_server(start=False)
    for me, other in ((a, b), (b, a)):
        cfg = me.root / "plugins.toml"
        cfg.write_text(target_config(other, name="peer"))
        me.args = ["--config", str(cfg)]
        me.start()
    set_credentials(a, b, "peer")
    set_credentials(b, a, "peer")
    a3, b3 = a.client(), b.client()
    for s3 in (a3, b3):
        s3.create_bucket(Bucket="shared")
    for s3 in (a3, b3):
        replicate(s3, "shared", "shared", target="peer")

    # 1000 small objects (500 written on each side) and 3 large ones.
    put_many(a3, "shared", [f"a/{i}" for i in range(500)], tag=b"a")
    put_many(b3, "shared", [f"b/{i}" for i in range(500)], tag=b"b")
    large = {"a/large-1": (a3, os.urandom(6 * MIB)), "a/large-2": (a3, os.urandom(11 * MIB)),
             "b/large-3": (b3, os.urandom(7 * MIB + 5))}
    for key, (s3, data) in large.items():
        s3.put_object(Bucket="shared", Key=key, Body=data)
    wait_drained(a, "shared", timeout=180)
    wait_drained(b, "shared", timeout=180)
    for s3, mine, theirs in ((a3, "a", "b"), (b3, "b", "a")):
        assert s3.head_object(Bucket="shared", Key=f"{mine}/0")["ReplicationStatus"] == "COMPLETED"
        assert s3.head_object(Bucket="shared", Key=f"{theirs}/0")["ReplicationStatus"] == "REPLICA"
        keys = [o["Key"] for p in s3.get_paginator("list_objects_v2").paginate(Bucket="shared")
                for o in p.get("Contents", [])]
        assert len(keys) == 1003
        for key, (_, data) in large.items():
            assert body_of(s3, "shared", key) == data
    a_small = body_of(a3, "shared", "b/499")
    assert a_small == body_of(b3, "shared", "b/499")
    # Replicas were not sent back: nothing is queued and no write bounced.
    time.sleep(1)
    assert status(a, "shared")["pending"] == 0 and status(b, "shared")["pending"] == 0

    # Concurrent writes of one key on both sides converge to the later one (last writer wins).
    with held(a, b, "shared"):
        b3.put_object(Bucket="shared", Key="conflict", Body=b"older, from b")
        time.sleep(0.05)
        a3.put_object(Bucket="shared", Key="conflict", Body=b"newer, from a")
        b3.delete_object(Bucket="shared", Key="a/1")  # an older delete racing nothing newer
    assert body_of(a3, "shared", "conflict") == b"newer, from a"
    assert body_of(b3, "shared", "conflict") == b"newer, from a"
    assert not exists(a3, "shared", "a/1") and not exists(b3, "shared", "a/1")
    # A delete made before a newer write on the other side does not remove that write.
    with held(a, b, "shared"):
        a3.delete_object(Bucket="shared", Key="b/2")
        time.sleep(0.05)
        b3.put_object(Bucket="shared", Key="b/2", Body=b"rewritten after the delete")
    assert body_of(a3, "shared", "b/2") == b"rewritten after the delete"
    assert body_of(b3, "shared", "b/2") == b"rewritten after the delete"
    # A write made before a delete on the other side, arriving after it, does not bring the key
    # back there (the delete leaves a tombstone): both sites end without it.
    with held(a, b, "shared"):
        b3.put_object(Bucket="shared", Key="b/3", Body=b"older than the delete")
        time.sleep(0.05)
        a3.delete_object(Bucket="shared", Key="b/3")
    assert not exists(a3, "shared", "b/3") and not exists(b3, "shared", "b/3")


def test_replica_markers_only_from_principals_allowed_replicate_object(start_server):
    dest = start_server()
    d3 = dest.client()
    d3.create_bucket(Bucket="backup")
    writer = dest.admin_json("user", "create", "writer")
    d3.put_bucket_policy(Bucket="backup", Policy=json.dumps({
        "Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::sluice:user/writer"},
            "Action": ["s3:PutObject", "s3:DeleteObject"], "Resource": "arn:aws:s3:::backup/*"}]}))
    marker = {"x-sluice-replica-source-time": "1000"}
    raw = dest.raw()
    # Root may replicate: the object keeps the source time and is a replica.
    r = raw.request("PUT", "/backup/by-root", headers=marker, body=b"r")
    assert r.status == 200, r
    h = d3.head_object(Bucket="backup", Key="by-root")
    assert h["ReplicationStatus"] == "REPLICA"
    assert h["LastModified"] == datetime(1970, 1, 1, 0, 0, 1, tzinfo=timezone.utc)
    # An older replica of the same key is refused with 412 (last writer wins).
    r = raw.request("PUT", "/backup/by-root", headers={"x-sluice-replica-source-time": "999"},
                    body=b"older")
    assert r.status == 412, r
    assert body_of(d3, "backup", "by-root") == b"r"
    # A writer without s3:ReplicateObject: the marker is ignored, the write is an ordinary one.
    w = raw.with_keys(writer["access_key"], writer["secret_key"])
    r = w.request("PUT", "/backup/by-writer", headers=marker, body=b"w")
    assert r.status == 200, r
    h = d3.head_object(Bucket="backup", Key="by-writer")
    assert "ReplicationStatus" not in h
    assert h["LastModified"].year >= 2026
    # ... and its delete with an old marker is an ordinary delete too.
    r = w.request("DELETE", "/backup/by-writer", headers=marker)
    assert r.status == 204, r
    assert not exists(d3, "backup", "by-writer")
    # Members of the IAM group "replication" may replicate into any bucket (default.cedar).
    dest.admin_json("group", "create", "replication")
    repl = dest.admin_json("user", "create", "replicator")
    dest.admin("group", "add-user", "replication", "replicator")
    r = raw.with_keys(repl["access_key"], repl["secret_key"]).request(
        "PUT", "/backup/by-replicator", headers={"x-sluice-replica-source-time": "2000"}, body=b"g")
    assert r.status == 200, r
    assert d3.head_object(Bucket="backup", Key="by-replicator")["ReplicationStatus"] == "REPLICA"
    # Garbage in the marker from a replicating principal is a clear 400, and so is a time more
    # than a day ahead (it would win every later write).
    for bad in ("soon", "-5", str(int(time.time() * 1000) + 2 * 86_400_000), "9" * 30):
        r = raw.request("PUT", "/backup/x", headers={"x-sluice-replica-source-time": bad},
                        body=b"")
        assert r.status == 400 and b"InvalidArgument" in r.body, (bad, r)
    # A local write over a replica stamped ahead of this clock is still newer than the replica,
    # so an older replica arriving later loses to it.
    now = int(time.time() * 1000)
    r = raw.request("PUT", "/backup/skew", headers={"x-sluice-replica-source-time":
                                                    str(now + 3_600_000)}, body=b"replica")
    assert r.status == 200, r
    d3.put_object(Bucket="backup", Key="skew", Body=b"local, after the replica")
    assert "ReplicationStatus" not in d3.head_object(Bucket="backup", Key="skew")
    r = raw.request("PUT", "/backup/skew", headers={"x-sluice-replica-source-time":
                                                    str(now + 1_800_000)}, body=b"late replica")
    assert r.status == 412, r
    assert body_of(d3, "backup", "skew") == b"local, after the replica"


@pytest.mark.parametrize("mode", ["loop", "trap", "hang"])
def test_a_hostile_target_only_delays_its_own_queue(start_server, mode):
    dest = start_server()
    d3 = dest.client()
    d3.create_bucket(Bucket="backup")
    hole = BlackHole()  # accepts connections and never answers: a target that hangs
    config = {"mode": "slow-http", "url": f"http://{hole.authority}/"} if mode == "hang" \
        else {"mode": mode}
    hostile = (plugin_entry("bad", HOSTILE_TARGET, world="replication-target", config=config,
                            limits={"timeout_ms": 1000}, allowed_hosts=[hole.authority])
               + '[[replication_targets]]\nname = "broken"\nplugin = "bad"\n'
                 'endpoint = "http://127.0.0.1:1"\nworkers = 1\n')
    src = plugin_server(start_server, target_config(dest) + hostile)
    set_credentials(src, dest)
    s3 = src.client()
    for b in ("fast", "slow"):
        s3.create_bucket(Bucket=b)
    replicate(s3, "slow", "anything", target="broken")
    replicate(s3, "fast", "backup")
    put_many(s3, "slow", [f"s/{i}" for i in range(20)])
    put_many(s3, "fast", [f"f/{i}" for i in range(100)])
    wait_drained(src, "fast", timeout=60)
    assert all(exists(d3, "backup", f"f/{i}") for i in range(100))
    wait_for(lambda: status(src, "slow")["retrying"] >= 1, "the hostile target to fail")
    assert status(src, "slow")["pending"] == 20
    assert src.client().head_object(Bucket="slow", Key="s/0")["ReplicationStatus"] == "PENDING"
    # The server is still healthy.
    assert requests.get(f"{src.endpoint}/_sluice/health/ready", timeout=5).status_code == 200
    hole.close()


def test_s3_target_reaches_only_its_allowed_hosts_and_credentials_are_sealed(start_server):
    # Deliveries are refused (not an allowed host): tasks wait.
    dest, d3, src, s3 = one_way(start_server, "bkt", allowed=["127.0.0.1:9"])
    s3.put_object(Bucket="bkt", Key="k", Body=b"x")
    wait_for(lambda: status(src, "bkt")["retrying"] > 0, "a refused delivery")
    assert not exists(d3, "backup", "k")
    # Credentials for an unknown target are refused; the secret is not in the data dir in clear.
    cp = src.admin("replication", "credentials", "nope", "--access-key", "AK",
                   "--secret-key", "SK", check=False)
    assert cp.returncode != 0 and "nope" in cp.stderr + cp.stdout
    src.stop()
    secret = dest.secret_key.encode()
    for root, _, files in os.walk(src.data_dir):
        for f in files:
            with open(os.path.join(root, f), "rb") as fh:
                assert secret not in fh.read(), f
    # Offline, on the data dir of the stopped server, with its config.
    out = src.cli("admin", "replication", "status", "bkt", endpoint=False)
    assert '"pending": 1' in out.stdout


def test_bad_target_entries_are_refused_at_start(start_server):
    dest = start_server()
    srv = plugin_server(start_server, target_config(dest) .replace(
        'endpoint = "http', 'workers = 0\nendpoint = "http'), start=False)
    srv.start(wait=False)
    assert srv.proc.wait(30) == 2
    assert "workers" in srv.stderr_text()


def test_a_v1_rule_replicates_deletes(start_server):
    """A V1 rule (Prefix at rule level, no Filter) replicates deletes, as S3 does."""
    dest = start_server()
    d3 = dest.client()
    d3.create_bucket(Bucket="backup")
    src = site(start_server, dest)
    s3 = src.client()
    s3.create_bucket(Bucket="v1rule")
    s3.put_bucket_replication(Bucket="v1rule", ReplicationConfiguration={"Role": "", "Rules": [
        {"ID": "v1", "Prefix": "", "Status": "Enabled",
         "Destination": {"Bucket": "arn:sluice:replication::site-b:backup"}}]})
    s3.put_object(Bucket="v1rule", Key="gone", Body=b"soon deleted")
    wait_drained(src, "v1rule")
    assert exists(d3, "backup", "gone")
    s3.delete_object(Bucket="v1rule", Key="gone")
    wait_drained(src, "v1rule")
    assert not exists(d3, "backup", "gone")


def test_rules_with_two_destinations_replicate_to_both(start_server):
    """As in S3, matching rules with different destinations each get the write; the object is
    COMPLETED only when every destination has it."""
    one, two = start_server(), start_server()
    for d in (one, two):
        d.client().create_bucket(Bucket="copy")
    second = (f'[[replication_targets]]\nname = "site-c"\nplugin = "s3t"\n'
              f'endpoint = "http://127.0.0.1:{two.port}"\n')
    src = plugin_server(start_server, target_config(one, allowed=[f"127.0.0.1:{one.port}",
                                                                  f"127.0.0.1:{two.port}"],
                                                    extra_targets=second))
    set_credentials(src, one, "site-b")
    set_credentials(src, two, "site-c")
    s3 = src.client()
    s3.create_bucket(Bucket="fan")
    src.admin_json("replication", "pause", "fan")
    s3.put_bucket_replication(Bucket="fan", ReplicationConfiguration={"Role": "", "Rules": [
        {"ID": f"to-{t}", "Priority": p, "Status": "Enabled", "Filter": {"Prefix": ""},
         "DeleteMarkerReplication": {"Status": "Enabled"},
         "Destination": {"Bucket": f"arn:sluice:replication::{t}:copy"}}
        for p, t in ((1, "site-b"), (2, "site-c"))]})
    s3.put_object(Bucket="fan", Key="k", Body=b"to both")
    assert status(src, "fan")["pending"] == 2
    src.admin_json("replication", "resume", "fan")
    wait_drained(src, "fan")
    assert s3.head_object(Bucket="fan", Key="k")["ReplicationStatus"] == "COMPLETED"
    for d in (one, two):
        assert body_of(d.client(), "copy", "k") == b"to both"
    s3.delete_object(Bucket="fan", Key="k")
    wait_drained(src, "fan")
    for d in (one, two):
        assert not exists(d.client(), "copy", "k")


def test_tasks_for_a_target_no_longer_configured_end_failed(start_server):
    # Deliveries are refused (not an allowed host): tasks wait.
    dest, d3, src, s3 = one_way(start_server, "orph", allowed=[])
    s3.put_object(Bucket="orph", Key="k", Body=b"x")
    assert s3.head_object(Bucket="orph", Key="k")["ReplicationStatus"] == "PENDING"
    src.stop()
    (src.root / "plugins.toml").write_text(
        plugin_entry("s3t", S3_TARGET, world="replication-target", allowed_hosts=[]))
    src.start()
    wait_for(lambda: s3.head_object(Bucket="orph", Key="k")["ReplicationStatus"] == "FAILED",
             "the orphaned task to fail")
    assert status(src, "orph")["pending"] == 0
