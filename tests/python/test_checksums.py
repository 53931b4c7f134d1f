"""Issue item 6: flexible checksums on PutObject are verified, stored and returned with
x-amz-checksum-mode: ENABLED."""

import pytest

from support.checksums import ALGORITHMS, checksum_b64
from support.sigv4 import encode_key_path
from support.util import content_for, expect_error

# botocore computes these itself; CRC32C and CRC64NVME need awscrt, so we pass the value.
SDK_COMPUTED = {"CRC32", "SHA1", "SHA256"}


def put_with_checksum(s3, bucket, key, body, algorithm, value=None):
    if value is None and algorithm in SDK_COMPUTED:
        return s3.put_object(Bucket=bucket, Key=key, Body=body, ChecksumAlgorithm=algorithm)
    value = value or checksum_b64(algorithm, body)
    return s3.put_object(Bucket=bucket, Key=key, Body=body, **{f"Checksum{algorithm}": value})


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_checksum_is_verified_stored_and_returned(s3, bucket, algorithm):
    body = content_for(algorithm, 40_000)
    expected = checksum_b64(algorithm, body)
    put = put_with_checksum(s3, bucket, "obj", body, algorithm)
    assert put[f"Checksum{algorithm}"] == expected
    head = s3.head_object(Bucket=bucket, Key="obj", ChecksumMode="ENABLED")
    assert head[f"Checksum{algorithm}"] == expected
    got = s3.get_object(Bucket=bucket, Key="obj", ChecksumMode="ENABLED")
    assert got[f"Checksum{algorithm}"] == expected
    assert got["Body"].read() == body


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_wrong_checksum_is_bad_digest_and_nothing_is_stored(s3, bucket, algorithm):
    body = content_for(algorithm, 10_000)
    wrong = checksum_b64(algorithm, body + b"!")
    expect_error(400, "BadDigest", put_with_checksum, s3, bucket, "bad", body, algorithm, wrong)
    expect_error(404, "NoSuchKey", s3.get_object, Bucket=bucket, Key="bad")


def test_wrong_checksum_does_not_replace_existing_object(s3, bucket):
    s3.put_object(Bucket=bucket, Key="keep", Body=b"original")
    wrong = checksum_b64("SHA256", b"something else")
    expect_error(400, "BadDigest", s3.put_object, Bucket=bucket, Key="keep", Body=b"new", ChecksumSHA256=wrong)
    assert s3.get_object(Bucket=bucket, Key="keep")["Body"].read() == b"original"


def test_checksum_is_only_returned_when_checksum_mode_is_enabled(s3, raw, bucket):
    body = b"checksum mode"
    s3.put_object(Bucket=bucket, Key="m", Body=body, ChecksumAlgorithm="SHA256")
    path = encode_key_path(bucket, "m")
    plain = raw.request("GET", path)
    assert plain.status == 200 and plain.body == body, plain
    assert not [h for h in plain.headers if h.lower().startswith("x-amz-checksum-")], dict(plain.headers)
    enabled = raw.request("GET", path, headers={"x-amz-checksum-mode": "ENABLED"})
    assert enabled.header("x-amz-checksum-sha256") == checksum_b64("SHA256", body), enabled
    head = raw.request("HEAD", path, headers={"x-amz-checksum-mode": "ENABLED"})
    assert head.header("x-amz-checksum-sha256") == checksum_b64("SHA256", body), head


def test_raw_put_with_checksum_header(raw, s3, bucket):
    body = b"raw checksum body"
    value = checksum_b64("CRC64NVME", body)
    r = raw.request("PUT", encode_key_path(bucket, "raw"), body=body, headers={"x-amz-checksum-crc64nvme": value})
    assert r.status == 200, r
    assert r.header("x-amz-checksum-crc64nvme") == value
    assert s3.head_object(Bucket=bucket, Key="raw", ChecksumMode="ENABLED")["ChecksumCRC64NVME"] == value
