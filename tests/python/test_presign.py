"""Issue item 7 (presigned URLs) and 11: boto3 generate_presigned_url and curl, expiry limits,
expired and tampered URLs."""

import datetime as dt
import subprocess
import time

import pytest
import requests

from support import sigv4
from support.s3raw import Response, assert_s3_error, from_requests as as_response, parse_xml
from support.sigv4 import encode_key_path
from support.util import content_for

pytestmark = pytest.mark.auth


def presigned(raw, method, bucket, key, expires, amz_date=None, access_key=None, extra_query=None):
    path = encode_key_path(bucket, key)
    qs = sigv4.presign_query(
        method, raw.host, path, access_key or raw.access_key, raw.secret_key, raw.region, expires,
        amz_date=amz_date, extra_query=extra_query,
    )
    return f"http://{raw.host}{path}?{qs}"


def test_boto3_presigned_get_and_head(s3, bucket):
    body = content_for("presign-get", 10_000)
    s3.put_object(Bucket=bucket, Key="dir/p.bin", Body=body)
    url = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "dir/p.bin"}, ExpiresIn=300)
    r = requests.get(url, timeout=30)
    assert r.status_code == 200, r.text
    assert r.content == body
    head_url = s3.generate_presigned_url("head_object", Params={"Bucket": bucket, "Key": "dir/p.bin"}, ExpiresIn=300)
    h = requests.head(head_url, timeout=30)
    assert h.status_code == 200 and h.headers["Content-Length"] == str(len(body))


def test_boto3_presigned_put(s3, bucket):
    url = s3.generate_presigned_url("put_object", Params={"Bucket": bucket, "Key": "up"}, ExpiresIn=300)
    r = requests.put(url, data=b"uploaded through a presigned URL", timeout=30)
    assert r.status_code == 200, r.text
    assert s3.get_object(Bucket=bucket, Key="up")["Body"].read() == b"uploaded through a presigned URL"


def test_presigned_get_with_response_overrides(s3, bucket):
    s3.put_object(Bucket=bucket, Key="o", Body=b"x", ContentType="text/plain")
    url = s3.generate_presigned_url(
        "get_object",
        Params={"Bucket": bucket, "Key": "o", "ResponseContentType": "application/json",
                "ResponseContentDisposition": "attachment; filename=o.json"},
        ExpiresIn=300,
    )
    r = requests.get(url, timeout=30)
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"] == "application/json"
    assert r.headers["Content-Disposition"] == "attachment; filename=o.json"


def test_curl_presigned_put_and_get(s3, bucket, tmp_path):
    src = tmp_path / "src.bin"
    src.write_bytes(content_for("curl", 300_000))
    put_url = s3.generate_presigned_url("put_object", Params={"Bucket": bucket, "Key": "curl.bin"}, ExpiresIn=300)
    put = subprocess.run(
        ["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "-T", str(src), put_url],
        capture_output=True, text=True, timeout=60,
    )
    assert put.stdout == "200", put
    get_url = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "curl.bin"}, ExpiresIn=300)
    out = tmp_path / "out.bin"
    get = subprocess.run(
        ["curl", "-sS", "-o", str(out), "-w", "%{http_code}", get_url], capture_output=True, text=True, timeout=60
    )
    assert get.stdout == "200", get
    assert out.read_bytes() == src.read_bytes()


def _assert_expired(resp: Response):
    root = assert_s3_error(resp, 403, "AccessDenied")
    assert "Request has expired" in root.findtext("Message"), root.findtext("Message")


def test_boto3_presigned_url_expires(s3, bucket):
    s3.put_object(Bucket=bucket, Key="e", Body=b"x")
    url = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "e"}, ExpiresIn=1)
    time.sleep(2.5)
    _assert_expired(as_response(requests.get(url, timeout=30)))


def test_curl_expired_presigned_url(raw, s3, bucket):
    s3.put_object(Bucket=bucket, Key="e", Body=b"x")
    url = presigned(raw, "GET", bucket, "e", 60, amz_date=sigv4.amz_now(-dt.timedelta(minutes=10)))
    cp = subprocess.run(["curl", "-sS", "-w", "\n%{http_code}", url], capture_output=True, timeout=60)
    body, _, code = cp.stdout.rpartition(b"\n")
    assert code == b"403", cp
    assert parse_xml(body).findtext("Code") == "AccessDenied"
    assert b"Request has expired" in body


def test_presigned_url_is_not_subject_to_clock_skew(raw, s3, bucket):
    """Signed two days ago, valid for a week: still good (skew applies to header auth only)."""
    s3.put_object(Bucket=bucket, Key="old", Body=b"still valid")
    url = presigned(raw, "GET", bucket, "old", 604800, amz_date=sigv4.amz_now(-dt.timedelta(days=2)))
    r = requests.get(url, timeout=30)
    assert r.status_code == 200 and r.content == b"still valid", r.text


@pytest.mark.parametrize("expires", [1, 604800])
def test_expires_bounds_accepted(raw, s3, bucket, expires):
    s3.put_object(Bucket=bucket, Key="b", Body=b"bounds")
    r = requests.get(presigned(raw, "GET", bucket, "b", expires), timeout=30)
    assert r.status_code == 200 and r.content == b"bounds", r.text


@pytest.mark.parametrize("expires", [604801, -1, 10**9])
def test_expires_out_of_range_is_rejected(raw, s3, bucket, expires):
    s3.put_object(Bucket=bucket, Key="b", Body=b"bounds")
    r = requests.get(presigned(raw, "GET", bucket, "b", expires), timeout=30)
    assert_s3_error(as_response(r), 400, "AuthorizationQueryParametersError")


def test_tampered_presigned_url(raw, s3, bucket):
    s3.put_object(Bucket=bucket, Key="a", Body=b"a")
    s3.put_object(Bucket=bucket, Key="b", Body=b"b")
    url = presigned(raw, "GET", bucket, "a", 300)
    sig = url.rsplit("X-Amz-Signature=", 1)[1][:64]
    flipped = url.replace(sig, ("0" if sig[0] != "0" else "1") + sig[1:])
    assert_s3_error(as_response(requests.get(flipped, timeout=30)), 403, "SignatureDoesNotMatch")
    other_key = url.replace(encode_key_path(bucket, "a") + "?", encode_key_path(bucket, "b") + "?")
    assert_s3_error(as_response(requests.get(other_key, timeout=30)), 403, "SignatureDoesNotMatch")
    as_put = requests.put(url, data=b"overwrite", timeout=30)
    assert_s3_error(as_response(as_put), 403, "SignatureDoesNotMatch")
    assert s3.get_object(Bucket=bucket, Key="a")["Body"].read() == b"a"


def test_presigned_with_unknown_key_is_invalid_access_key_id(raw, bucket):
    url = presigned(raw, "GET", bucket, "a", 300, access_key="AKUNKNOWNUNKNOWN0000")
    assert_s3_error(as_response(requests.get(url, timeout=30)), 403, "InvalidAccessKeyId")


def _default_config_client(server):
    """A boto3 client with botocore's default signer settings (no signature_version): its
    generate_presigned_url produces legacy SigV2 query strings."""
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=server.endpoint,
        aws_access_key_id=server.access_key,
        aws_secret_access_key=server.secret_key,
        region_name="us-east-1",
    )


def test_boto3_default_presign_sigv2_works_and_tampering_fails(server, s3, bucket):
    s3.put_object(Bucket=bucket, Key="v2 key+x", Body=b"legacy presign")
    client = _default_config_client(server)
    url = client.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "v2 key+x"}, ExpiresIn=60)
    assert "AWSAccessKeyId=" in url and "Signature=" in url, url
    r = requests.get(url, timeout=30)
    assert r.status_code == 200, r.text
    assert r.content == b"legacy presign"
    tampered = url.replace("v2%20key", "v2%20kez")
    bad = requests.get(tampered, timeout=30)
    assert_s3_error(as_response(bad), 403, "SignatureDoesNotMatch")


def test_sigv2_presign_expired_is_refused(server, s3, bucket):
    s3.put_object(Bucket=bucket, Key="old", Body=b"x")
    client = _default_config_client(server)
    url = client.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "old"}, ExpiresIn=1)
    time.sleep(2.5)
    r = requests.get(url, timeout=30)
    assert_s3_error(as_response(r), 403, "AccessDenied")
    assert "expired" in r.text


def test_presigned_url_dated_in_the_future_is_refused(raw, s3, bucket):
    """No skew window for presigned URLs: one not valid yet is refused."""
    s3.put_object(Bucket=bucket, Key="f", Body=b"future")
    url = presigned(raw, "GET", bucket, "f", 3600, amz_date=sigv4.amz_now(dt.timedelta(minutes=5)))
    root = assert_s3_error(as_response(requests.get(url, timeout=30)), 403, "AccessDenied")
    assert "not valid yet" in root.findtext("Message")
