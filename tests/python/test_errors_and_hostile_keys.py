"""Issue item 9: S3 XML errors with Code/Message/Resource/RequestId, x-amz-request-id on every
response, HEAD errors without body, MalformedXML, KeyTooLongError, and hostile keys that must be
stored as plain names or refused, never touching anything outside the data dir."""

import os
from pathlib import Path

import pytest
import requests
from botocore.exceptions import ClientError

from support.checksums import md5_b64
from support.s3raw import assert_s3_error
from support.server import SluiceServer
from support.sigv4 import encode_key_path
from support.util import content_for, expect_error, list_all_keys, status_of, unique_name


# ---- error documents and request ids -----------------------------------------------------------

def test_no_such_key_error_document(raw, bucket):
    r = raw.request("GET", encode_key_path(bucket, "missing-key"))
    root = assert_s3_error(r, 404, "NoSuchKey")
    assert "xml" in (r.header("content-type") or ""), r
    assert root.findtext("Resource").endswith("missing-key"), root.findtext("Resource")


@pytest.mark.parametrize(
    "case",
    ["no-such-bucket", "anonymous", "bad-signature", "invalid-bucket-name", "not-empty", "range"],
)
def test_error_documents_are_complete(raw, s3, bucket, case):
    s3.put_object(Bucket=bucket, Key="k", Body=b"0123456789")
    if case == "no-such-bucket":
        r, status, code = raw.request("GET", f"/{unique_name('nb')}"), 404, "NoSuchBucket"
    elif case == "anonymous":
        r, status, code = raw.request("GET", f"/{bucket}", sign=False), 403, "AccessDenied"
    elif case == "bad-signature":
        r, status, code = raw.request("GET", f"/{bucket}", secret_key="Z" * 40), 403, "SignatureDoesNotMatch"
    elif case == "invalid-bucket-name":
        r, status, code = raw.request("PUT", "/Bad_Name"), 400, "InvalidBucketName"
    elif case == "not-empty":
        r, status, code = raw.request("DELETE", f"/{bucket}"), 409, "BucketNotEmpty"
    else:
        r = raw.request("GET", encode_key_path(bucket, "k"), headers={"Range": "bytes=50-60"})
        status, code = 416, "InvalidRange"
    assert_s3_error(r, status, code)


@pytest.mark.parametrize(
    "method,what",
    [
        ("GET", "service"), ("GET", "bucket"), ("PUT", "object"), ("GET", "object"), ("HEAD", "object"),
        ("DELETE", "object"), ("GET", "missing"), ("HEAD", "missing"), ("GET", "anonymous"),
    ],
)
def test_every_response_has_a_request_id(raw, s3, bucket, method, what):
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    path = {"service": "/", "bucket": f"/{bucket}", "object": encode_key_path(bucket, "k"),
            "missing": encode_key_path(bucket, "nope"), "anonymous": f"/{bucket}"}[what]
    r = raw.exchange(method, path, body=b"x" if method == "PUT" else b"", sign=what != "anonymous")
    assert r.header("x-amz-request-id"), r.raw_head


def test_request_ids_are_unique(raw, bucket):
    ids = {raw.request("GET", f"/{bucket}").header("x-amz-request-id") for _ in range(5)}
    assert len(ids) == 5, ids


def test_health_responses_have_a_request_id(server):
    assert requests.get(f"{server.endpoint}/_sluice/health/ready", timeout=5).headers.get("x-amz-request-id")


@pytest.mark.parametrize("what", ["missing-key", "missing-bucket", "anonymous", "bad-signature", "bad-range"])
def test_head_errors_have_no_body(raw, s3, bucket, what):
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    kw, path, status = {}, encode_key_path(bucket, "k"), 403
    if what == "missing-key":
        path, status = encode_key_path(bucket, "nope"), 404
    elif what == "missing-bucket":
        path, status = f"/{unique_name('nb')}", 404
    elif what == "anonymous":
        kw["sign"] = False
    elif what == "bad-signature":
        kw["secret_key"] = "Z" * 40
    else:
        kw["headers"] = {"Range": "bytes=100-200"}
        status = 416
    r = raw.exchange("HEAD", path, **kw)
    assert r.status == status, r
    assert r.body == b"", f"HEAD {status} carried a body: {r.body[:200]!r}"
    assert r.header("x-amz-request-id")


# ---- malformed requests ------------------------------------------------------------------------

@pytest.mark.parametrize(
    "body",
    [b"this is not xml", b"<Delete><Object><Key>k</Key>", b"<Delete></Delete>", b"<Foo><Object><Key>k</Key></Object></Foo>"],
    ids=["garbage", "truncated", "no-objects", "wrong-root"],
)
def test_malformed_delete_objects_xml(raw, s3, bucket, body):
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    r = raw.request("POST", f"/{bucket}", query=[("delete", "")], body=body, headers={"Content-MD5": md5_b64(body)})
    assert_s3_error(r, 400, "MalformedXML")
    assert s3.head_object(Bucket=bucket, Key="k")["ContentLength"] == 1


@pytest.mark.parametrize("body", [b"not xml at all", b"<CreateBucketConfiguration><LocationConstraint>"])
def test_malformed_create_bucket_xml(raw, s3, body):
    name = unique_name("mx")
    assert_s3_error(raw.request("PUT", f"/{name}", body=body), 400, "MalformedXML")
    assert name not in [b["Name"] for b in s3.list_buckets()["Buckets"]]


@pytest.mark.parametrize("key", ["a" * 1024, "é" * 512, "中" * 341], ids=["1024-ascii", "1024-2byte", "1023-3byte"])
def test_key_of_1024_bytes_is_accepted(s3, bucket, key):
    s3.put_object(Bucket=bucket, Key=key, Body=b"long")
    assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == b"long"
    assert list_all_keys(s3, bucket) == [key]


@pytest.mark.parametrize("key", ["a" * 1025, "é" * 513, "中" * 342], ids=["1025-ascii", "1026-2byte", "1026-3byte"])
def test_key_over_1024_bytes_is_key_too_long(s3, raw, bucket, key):
    expect_error(400, "KeyTooLongError", s3.put_object, Bucket=bucket, Key=key, Body=b"x")
    assert_s3_error(raw.request("PUT", encode_key_path(bucket, key), body=b"x"), 400, "KeyTooLongError")
    assert list_all_keys(s3, bucket) == []


# ---- hostile keys ------------------------------------------------------------------------------

HOSTILE_KEYS = [
    "../../etc/passwd",
    "a/../../b",
    "/abs",
    "a//b",
    "a/./b",
    "x\x00y",
    "nul\x00/../../escape",
    "..",
    ".",
    "../",
    "./x",
    "a/..",
    "/",
    "//",
    "trailing/",
    "\\..\\..\\windows",
    "%2e%2e/%2e%2e/etc/passwd",
    "dir/" + "../" * 12 + "tmp/sluice-escape",
]
# Keys that name the same path once normalised: stored, they must stay distinct objects.
ALIASES = ["a/b", "b", "etc/passwd", "abs", "x"]


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    outer = tmp_path_factory.mktemp("hostile")
    srv = SluiceServer(outer / "srv")
    try:
        srv.start()
    except RuntimeError as e:
        pytest.fail(str(e), pytrace=False)
    client = srv.client()
    name = unique_name("h")
    client.create_bucket(Bucket=name)
    yield srv, client, name, outer
    srv.stop()


def fs_snapshot(outer: Path, data_dir: Path) -> set[str]:
    """Every path under the test's temp dir except inside the data dir (logs only grow)."""
    out = set()
    for dirpath, dirnames, filenames in os.walk(outer):
        if Path(dirpath) == data_dir.parent and data_dir.name in dirnames:
            dirnames.remove(data_dir.name)
        for n in dirnames + filenames:
            out.add(os.path.join(dirpath, n))
    return out


def escape_targets(srv: SluiceServer, key: str) -> list[Path]:
    """Where a key used as a path would land, relative to the obvious bases."""
    clean = key.replace("\x00", "").replace("\\", "/")
    bases = [srv.data_dir, srv.data_dir / "objects", srv.root, Path("/")]
    out = []
    for b in bases:
        p = Path(os.path.normpath(os.path.join(str(b), clean.lstrip("/") if b == Path("/") else clean)))
        if p not in (Path("/"), b):
            out.append(p)
    return out


def body_for(key: str) -> bytes:
    return content_for("hostile:" + repr(key), 2048)


@pytest.mark.parametrize("key", HOSTILE_KEYS, ids=[repr(k) for k in HOSTILE_KEYS])
def test_hostile_key_is_a_plain_name_or_refused(hostile, key):
    srv, s3, bucket, outer = hostile
    passwd = os.stat("/etc/passwd")
    targets = [t for t in escape_targets(srv, key) if not t.exists()]
    before = fs_snapshot(outer, srv.data_dir)
    try:
        s3.put_object(Bucket=bucket, Key=key, Body=body_for(key))
        stored = True
    except ClientError as e:
        assert 400 <= status_of(e) < 500, f"hostile key {key!r} got {status_of(e)}: {e.response['Error']}"
        stored = False
    try:
        if stored:
            assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == body_for(key)
            assert s3.head_object(Bucket=bucket, Key=key)["ContentLength"] == 2048
            assert key in list_all_keys(s3, bucket), "stored key not listed byte-exact"
            assert key in list_all_keys(s3, bucket, Prefix=key)
        else:
            assert key not in list_all_keys(s3, bucket)
        assert fs_snapshot(outer, srv.data_dir) == before
        assert [t for t in targets if t.exists()] == [], "a file appeared where the key points"
        st = os.stat("/etc/passwd")
        assert (st.st_mtime_ns, st.st_size) == (passwd.st_mtime_ns, passwd.st_size)
        for _, dirs, files in os.walk(srv.data_dir):
            assert not {"passwd", "etc", "abs", "escape", "sluice-escape"} & set(dirs + files)
    finally:
        if stored:
            s3.delete_object(Bucket=bucket, Key=key)
            expect_error(404, "NoSuchKey", s3.get_object, Bucket=bucket, Key=key)


def test_hostile_keys_never_alias_each_other(hostile):
    srv, s3, bucket, _ = hostile
    stored = []
    for key in HOSTILE_KEYS + ALIASES:
        try:
            s3.put_object(Bucket=bucket, Key=key, Body=body_for(key))
            stored.append(key)
        except ClientError as e:
            assert 400 <= status_of(e) < 500, (key, e.response)
    try:
        assert set(ALIASES) <= set(stored)
        assert sorted(list_all_keys(s3, bucket), key=str.encode) == sorted(stored, key=str.encode)
        for key in stored:
            assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == body_for(key), key
    finally:
        for i in range(0, len(stored), 1000):
            s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": k} for k in stored[i:i + 1000]]})
