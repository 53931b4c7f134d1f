"""Issue item 7: SigV4 header auth, UNSIGNED-PAYLOAD, aws-chunked bodies (signed chunks and the
unsigned trailer boto3 sends), payload hash verification, clock skew and the auth error codes."""

import datetime as dt
import hashlib
from urllib.parse import urlparse

import botocore.httpchecksum
import pytest
import requests

from support import sigv4
from support.checksums import checksum_b64
from support.s3raw import assert_s3_error, from_requests as as_response
from support.server import s3_client
from support.sigv4 import encode_key_path
from support.util import content_for, expect_error, let_anyone_put

pytestmark = pytest.mark.auth


def record_sent_headers(client, op):
    sent = []
    client.meta.events.register(f"before-send.s3.{op}", lambda request, **_: sent.append(dict(request.headers)))
    return sent


def header(sent, name):
    for k, v in sent.items():
        if k.lower() == name.lower():
            return v.decode() if isinstance(v, bytes) else v
    return None


def test_signed_payload_round_trip(raw, s3, bucket):
    body = content_for("signed", 5000)
    r = raw.request("PUT", encode_key_path(bucket, "k"), body=body)
    assert r.status == 200, r
    assert r.header("etag") == '"' + hashlib.md5(body).hexdigest() + '"'
    g = raw.request("GET", encode_key_path(bucket, "k"))
    assert g.status == 200 and g.body == body


def test_unsigned_payload_raw(raw, s3, bucket):
    r = raw.request("PUT", encode_key_path(bucket, "u"), body=b"unsigned body", payload_hash=sigv4.UNSIGNED_PAYLOAD)
    assert r.status == 200, r
    assert s3.get_object(Bucket=bucket, Key="u")["Body"].read() == b"unsigned body"


def test_unsigned_payload_from_boto3(server, s3, bucket):
    client = server.client(payload_signing_enabled=False)
    sent = record_sent_headers(client, "PutObject")
    client.put_object(Bucket=bucket, Key="u2", Body=b"boto3 unsigned")
    assert header(sent[0], "x-amz-content-sha256") == "UNSIGNED-PAYLOAD"
    assert s3.get_object(Bucket=bucket, Key="u2")["Body"].read() == b"boto3 unsigned"


def test_payload_hash_mismatch_is_rejected(raw, s3, bucket):
    r = raw.request(
        "PUT", encode_key_path(bucket, "mm"), body=b"actual body",
        payload_hash=hashlib.sha256(b"another body").hexdigest(),
    )
    assert_s3_error(r, 400, "XAmzContentSHA256Mismatch")
    expect_error(404, "NoSuchKey", s3.get_object, Bucket=bucket, Key="mm")


def test_boto3_streaming_unsigned_trailer(server, s3, bucket, monkeypatch):
    """What boto3 >= 1.36 sends for put_object over TLS: aws-chunked, HTTP chunked transfer,
    STREAMING-UNSIGNED-PAYLOAD-TRAILER with a CRC32 trailer. botocore only does that for https
    endpoints, so make it believe this one is."""
    monkeypatch.setattr(botocore.httpchecksum, "urlparse", lambda u: urlparse(u)._replace(scheme="https"))
    client = server.client()
    sent = record_sent_headers(client, "PutObject")
    body = content_for("trailer", 300_000)
    client.put_object(Bucket=bucket, Key="t", Body=body)
    assert header(sent[0], "x-amz-content-sha256") == sigv4.STREAMING_UNSIGNED_TRAILER
    assert header(sent[0], "x-amz-trailer") == "x-amz-checksum-crc32"
    assert "aws-chunked" in header(sent[0], "content-encoding")
    monkeypatch.undo()
    got = s3.get_object(Bucket=bucket, Key="t", ChecksumMode="ENABLED")
    assert got["Body"].read() == body
    assert got["ChecksumCRC32"] == checksum_b64("CRC32", body)
    assert "aws-chunked" not in (got.get("ContentEncoding") or "")


def _trailer_put(raw, bucket, key, body, crc32_value, framing="content-length"):
    """PUT an aws-chunked body with an unsigned CRC32 trailer, framed by Content-Length or by
    HTTP chunked transfer encoding (as botocore does)."""
    encoded = sigv4.unsigned_trailer_chunks(body, 65536, "x-amz-checksum-crc32", crc32_value)
    headers = {
        "Content-Encoding": "aws-chunked",
        "x-amz-decoded-content-length": str(len(body)),
        "x-amz-trailer": "x-amz-checksum-crc32",
    }
    if framing == "content-length":
        headers["Content-Length"] = str(len(encoded))
        payload = encoded
    else:
        payload = iter([encoded[i : i + 10_000] for i in range(0, len(encoded), 10_000)])
    target, hdrs, _ = raw.build(
        "PUT", encode_key_path(bucket, key), headers=headers, payload_hash=sigv4.STREAMING_UNSIGNED_TRAILER
    )
    return raw.send("PUT", target, hdrs, payload)


@pytest.mark.parametrize("framing", ["content-length", "transfer-encoding"])
def test_raw_streaming_unsigned_trailer(raw, s3, bucket, framing):
    body = content_for("raw-trailer" + framing, 150_000)
    r = _trailer_put(raw, bucket, "rt", body, checksum_b64("CRC32", body), framing)
    assert r.status == 200, r
    got = s3.get_object(Bucket=bucket, Key="rt", ChecksumMode="ENABLED")
    assert got["Body"].read() == body
    assert got["ContentLength"] == len(body)
    assert got["ChecksumCRC32"] == checksum_b64("CRC32", body)


def test_streaming_trailer_with_wrong_checksum_is_bad_digest(raw, s3, bucket):
    r = _trailer_put(raw, bucket, "bad", b"trailer body that does not match", checksum_b64("CRC32", b"other"))
    assert_s3_error(r, 400, "BadDigest")
    expect_error(404, "NoSuchKey", s3.get_object, Bucket=bucket, Key="bad")


def test_anonymous_streaming_unsigned_trailer(server, s3, make_bucket):
    """boto3 without credentials frames uploads over HTTPS as aws-chunked with a trailing
    checksum: an anonymous write the bucket allows is decoded as a signed one is, and a
    signed-chunk framing, which needs a signature to chain from, is refused."""
    name = make_bucket()
    let_anyone_put(s3, name, "drop/")
    anon = server.raw(access_key="", secret_key="")
    body = content_for("anon-trailer", 100_000)
    encoded = sigv4.unsigned_trailer_chunks(body, 65536, "x-amz-checksum-crc32", checksum_b64("CRC32", body))
    headers = {
        "Content-Encoding": "aws-chunked",
        "Content-Length": str(len(encoded)),
        "x-amz-content-sha256": sigv4.STREAMING_UNSIGNED_TRAILER,
        "x-amz-decoded-content-length": str(len(body)),
        "x-amz-trailer": "x-amz-checksum-crc32",
    }
    target, hdrs, _ = anon.build("PUT", encode_key_path(name, "drop/t"), headers=headers, sign=False)
    r = anon.send("PUT", target, hdrs, encoded)
    assert r.status == 200, r
    got = s3.get_object(Bucket=name, Key="drop/t", ChecksumMode="ENABLED")
    assert got["Body"].read() == body
    assert got["ChecksumCRC32"] == checksum_b64("CRC32", body)
    headers["x-amz-content-sha256"] = sigv4.STREAMING_SIGNED
    target, hdrs, _ = anon.build("PUT", encode_key_path(name, "drop/s"), headers=headers, sign=False)
    assert_s3_error(anon.send("PUT", target, hdrs, encoded), 400, "InvalidRequest")
    expect_error(404, "NoSuchKey", s3.get_object, Bucket=name, Key="drop/s")
    # aws-chunked framing not declared by x-amz-content-sha256 is refused, not stored as data.
    del headers["x-amz-content-sha256"]
    target, hdrs, _ = anon.build("PUT", encode_key_path(name, "drop/u"), headers=headers, sign=False)
    assert_s3_error(anon.send("PUT", target, hdrs, encoded), 400, "InvalidRequest")
    expect_error(404, "NoSuchKey", s3.get_object, Bucket=name, Key="drop/u")


def _signed_chunked_put(raw, bucket, key, body, tamper=False):
    # Content-Length of the framed body must be known before signing: frame once with a dummy
    # signature of the right length, then sign for real.
    framed_len = len(sigv4.signed_chunks(body, 65536, sigv4.Signed({}, "0" * 64, b"k", "s", "d")))
    headers = {
        "Content-Encoding": "aws-chunked",
        "x-amz-decoded-content-length": str(len(body)),
        "Content-Length": str(framed_len),
    }
    target, hdrs, signed = raw.build(
        "PUT", encode_key_path(bucket, key), headers=headers, payload_hash=sigv4.STREAMING_SIGNED
    )
    encoded = sigv4.signed_chunks(body, 65536, signed, tamper=tamper)
    assert len(encoded) == framed_len
    return raw.send("PUT", target, hdrs, encoded)


def test_streaming_signed_chunks(raw, s3, bucket):
    body = content_for("signed-chunks", 200_000)
    r = _signed_chunked_put(raw, bucket, "sc", body)
    assert r.status == 200, r
    got = s3.get_object(Bucket=bucket, Key="sc")
    assert got["Body"].read() == body and got["ContentLength"] == len(body)


def test_streaming_signed_chunks_with_a_bad_chunk_signature(raw, s3, bucket):
    r = _signed_chunked_put(raw, bucket, "sc-bad", content_for("x", 100_000), tamper=True)
    assert_s3_error(r, 403, "SignatureDoesNotMatch")
    expect_error(404, "NoSuchKey", s3.get_object, Bucket=bucket, Key="sc-bad")


@pytest.mark.parametrize("minutes", [-20, 20, -60 * 24])
def test_clock_skew_over_15_minutes_is_rejected(raw, bucket, minutes):
    r = raw.request("GET", f"/{bucket}", amz_date=sigv4.amz_now(dt.timedelta(minutes=minutes)))
    assert_s3_error(r, 403, "RequestTimeTooSkewed")


@pytest.mark.parametrize("minutes", [-10, 10])
def test_clock_skew_within_15_minutes_is_accepted(raw, bucket, minutes):
    r = raw.request("GET", f"/{bucket}", amz_date=sigv4.amz_now(dt.timedelta(minutes=minutes)))
    assert r.status == 200, r


def test_boto3_request_dated_by_the_date_header_alone(server, bucket):
    # botocore signs with the Date header, and drops x-amz-date, when the caller set a Date.
    c = server.client()
    c.meta.events.register("before-sign.s3.PutObject", lambda request, **_: request.headers.__setitem__("Date", "x"))
    sent = record_sent_headers(c, "PutObject")
    c.put_object(Bucket=bucket, Key="dated", Body=b"dated by Date")
    assert header(sent[-1], "Date") and header(sent[-1], "X-Amz-Date") is None, sent[-1]
    assert c.get_object(Bucket=bucket, Key="dated")["Body"].read() == b"dated by Date"


@pytest.mark.parametrize("minutes", [-20, 20])
def test_date_header_skewed_over_15_minutes_is_rejected(raw, bucket, minutes):
    r = raw.request("GET", f"/{bucket}", date_header=True, amz_date=sigv4.amz_now(dt.timedelta(minutes=minutes)))
    assert_s3_error(r, 403, "RequestTimeTooSkewed")


def test_date_header_is_part_of_what_was_signed(raw, bucket):
    target, headers, _ = raw.build("GET", f"/{bucket}", date_header=True)
    assert raw.send("GET", target, headers).status == 200
    later = sigv4.amz_now(dt.timedelta(minutes=1))
    headers["Date"] = raw.build("GET", f"/{bucket}", date_header=True, amz_date=later)[1]["Date"]
    assert_s3_error(raw.send("GET", target, headers), 403, "SignatureDoesNotMatch")


def test_wrong_secret_is_signature_does_not_match(server, raw, bucket):
    bad = s3_client(server.endpoint, server.access_key, "W" * 40)
    expect_error(403, "SignatureDoesNotMatch", bad.list_objects_v2, Bucket=bucket)
    assert_s3_error(raw.request("GET", f"/{bucket}", secret_key="W" * 40), 403, "SignatureDoesNotMatch")


def test_tampered_signed_header_is_signature_does_not_match(raw, s3, bucket):
    target, hdrs, _ = raw.build("PUT", encode_key_path(bucket, "tamper"), body=b"x", headers={"x-amz-meta-a": "1"})
    hdrs["x-amz-meta-a"] = "2"
    assert_s3_error(raw.send("PUT", target, hdrs, b"x"), 403, "SignatureDoesNotMatch")
    expect_error(404, "NoSuchKey", s3.get_object, Bucket=bucket, Key="tamper")


def test_unknown_access_key_is_invalid_access_key_id(server, raw, bucket):
    unknown = s3_client(server.endpoint, "AKUNKNOWNUNKNOWN0000", server.secret_key)
    expect_error(403, "InvalidAccessKeyId", unknown.list_buckets)
    assert_s3_error(raw.request("GET", "/", access_key="AKUNKNOWNUNKNOWN0000"), 403, "InvalidAccessKeyId")


def test_wrong_region_in_scope_is_authorization_header_malformed(server, raw):
    assert_s3_error(raw.request("GET", "/", scope_region="eu-west-1"), 400, "AuthorizationHeaderMalformed")
    wrong = s3_client(server.endpoint, server.access_key, server.secret_key, region="eu-west-1")
    expect_error(400, "AuthorizationHeaderMalformed", wrong.list_buckets)


@pytest.mark.parametrize(
    "authorization",
    [
        "AWS4-HMAC-SHA256 Credential=garbage, SignedHeaders=host;x-amz-date, Signature=" + "0" * 64,
        "AWS4-HMAC-SHA256 Credential={ak}/20200101/us-east-1/s3, SignedHeaders=host, Signature=" + "0" * 64,
        "AWS4-HMAC-SHA256 Credential={ak}/{date}/us-east-1/s3/aws4_request, Signature=" + "0" * 64,
        # A scope dated another day than x-amz-date (AWS: "Invalid credential date").
        "AWS4-HMAC-SHA256 Credential={ak}/20200101/us-east-1/s3/aws4_request, "
        "SignedHeaders=host;x-amz-content-sha256;x-amz-date, Signature=" + "0" * 64,
    ],
    ids=["credential-garbage", "credential-short-scope", "no-signed-headers", "credential-other-day"],
)
def test_malformed_authorization_header(raw, authorization):
    amz_date = sigv4.amz_now()
    target, hdrs, _ = raw.build("GET", "/", sign=False)
    hdrs.update({
        "x-amz-date": amz_date,
        "x-amz-content-sha256": sigv4.EMPTY_SHA256,
        "Authorization": authorization.format(ak=raw.access_key, date=amz_date[:8]),
    })
    r = raw.send("GET", target, hdrs)
    assert_s3_error(r, 400, "AuthorizationHeaderMalformed")


def _sigv2_headers(server, secret, method="GET", path="/", amz_date=None):
    from botocore.auth import HmacV1Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    req = AWSRequest(method=method, url=server.endpoint + path)
    if amz_date:
        req.headers["x-amz-date"] = amz_date
    HmacV1Auth(Credentials(server.access_key, secret)).add_auth(req)
    return dict(req.headers)


@pytest.mark.parametrize(
    "amz_date, status, code",
    [
        # 07 Jul 2030 is a Sunday: the weekday is not checked, the date is skewed (s3-tests'
        # bad_date_after_today_aws2), as on S3.
        ("Tue, 07 Jul 2030 21:53:04 GMT", 403, "RequestTimeTooSkewed"),
        ("Tue, 07 Jul 2010 21:53:04 GMT", 403, "RequestTimeTooSkewed"),
        ("Tue, 07 Jul 1950 21:53:04 GMT", 403, "AccessDenied"),
        ("not a date", 403, "AccessDenied"),
    ],
    ids=["future-wrong-weekday", "past-wrong-weekday", "before-1970", "garbage"],
)
def test_sigv2_dates(server, amz_date, status, code):
    signed = _sigv2_headers(server, server.secret_key, amz_date=amz_date)
    r = requests.get(server.endpoint + "/", headers=signed, timeout=30)
    assert_s3_error(as_response(r), status, code)


def test_one_auth_mechanism_per_request(server, raw, bucket):
    """An Authorization header with query-string signature parameters is refused, and partial
    query-string parameters are a failed query signature, never an anonymous request."""
    target, hdrs, _ = raw.build("GET", f"/{bucket}", query={"X-Amz-Algorithm": "AWS4-HMAC-SHA256"})
    assert_s3_error(raw.send("GET", target, hdrs), 400, "InvalidArgument")
    anon = server.raw(access_key="", secret_key="")
    r = anon.request("GET", f"/{bucket}", query={"Signature": "abc", "Expires": "9999999999"}, sign=False)
    el = assert_s3_error(r, 403, "AccessDenied")
    assert "AWSAccessKeyId" in (el.findtext("Message") or "")
    r = anon.request("GET", f"/{bucket}", query={"X-Amz-Algorithm": "AWS4-HMAC-SHA256"}, sign=False)
    assert_s3_error(r, 400, "AuthorizationQueryParametersError")


def test_sigv2_header_auth_is_verified(server):
    ok = requests.get(server.endpoint + "/", headers=_sigv2_headers(server, server.secret_key), timeout=30)
    assert ok.status_code == 200, ok.text
    assert "ListAllMyBucketsResult" in ok.text
    bad = requests.get(server.endpoint + "/", headers=_sigv2_headers(server, "not-the-secret"), timeout=30)
    assert_s3_error(as_response(bad), 403, "SignatureDoesNotMatch")


def test_unsigned_amz_headers_are_refused(raw, s3, bucket):
    path = encode_key_path(bucket, "smuggle")
    target, headers, _ = raw.build("PUT", path, body=b"x")
    headers["x-amz-meta-injected"] = "yes"
    r = raw.send("PUT", target, headers, b"x")
    el = assert_s3_error(r, 403, "AccessDenied")
    assert "x-amz-meta-injected" in (el.findtext("HeadersNotSigned") or "")
    expect_error(404, None, s3.head_object, Bucket=bucket, Key="smuggle")


def test_empty_or_unknown_authorization_schemes(raw):
    r = raw.send("GET", "/", {"Host": raw.host, "Authorization": ""})
    assert_s3_error(r, 403, "AccessDenied")
    r = raw.send("GET", "/", {"Host": raw.host, "Authorization": "AWS4 HAHAHA"})
    assert_s3_error(r, 400, "InvalidArgument")


def test_anonymous_request_to_missing_bucket_is_no_such_bucket(raw):
    r = raw.request("GET", "/no-such-bucket-anywhere/k", sign=False)
    assert_s3_error(r, 404, "NoSuchBucket")


def test_expected_bucket_owner_mismatch_is_denied(s3, bucket):
    expect_error(403, "AccessDenied", s3.list_objects_v2, Bucket=bucket, ExpectedBucketOwner="1" * 64)
    s3.list_objects_v2(Bucket=bucket)


def test_authentication_comes_before_the_verdict_on_the_request(raw, bucket):
    """S3 checks who asks before what was asked: a badly signed request to an endpoint Sluice
    refuses gets SignatureDoesNotMatch; signed well, it gets the refusal."""
    doc = b"<VersioningConfiguration><Status>Enabled</Status></VersioningConfiguration>"
    bad = raw.request("PUT", f"/{bucket}", query={"versioning": ""}, body=doc, secret_key="W" * 40)
    assert_s3_error(bad, 403, "SignatureDoesNotMatch")
    good = raw.request("PUT", f"/{bucket}", query={"versioning": ""}, body=doc)
    assert_s3_error(good, 501, "NotImplemented")
    long_key = "k" * 1100
    assert_s3_error(raw.request("GET", f"/{bucket}/{long_key}", secret_key="W" * 40), 403, "SignatureDoesNotMatch")
    assert_s3_error(raw.request("GET", f"/{bucket}/{long_key}"), 400, "KeyTooLongError")
