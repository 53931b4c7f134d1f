"""CopyObject as AWS S3 does it: same and cross bucket, COPY / REPLACE metadata directives, copying
onto itself, x-amz-copy-source-if-* preconditions, URL-encoded source keys, missing sources,
multipart sources, and access control on the source bucket."""

import datetime as dt
import hashlib
from urllib.parse import quote

import pytest

from support.checksums import md5_etag
from support.s3raw import assert_s3_error
from support.sigv4 import encode_key_path
from support.util import content_for, expect_error, unique_name
from test_multipart import MIB, PART, multipart_etag, multipart_object, part_body

DAY = dt.timedelta(days=1)


@pytest.fixture
def src(s3, bucket):
    body = content_for("copy-source", 150_000)
    s3.put_object(
        Bucket=bucket, Key="src/object.bin", Body=body, ContentType="application/x-source",
        Metadata={"color": "blue", "owner": "copy-test"}, CacheControl="max-age=10",
        ContentDisposition='attachment; filename="s.bin"',
    )
    head = s3.head_object(Bucket=bucket, Key="src/object.bin")
    return {"bucket": bucket, "key": "src/object.bin", "body": body, "etag": head["ETag"],
            "mtime": head["LastModified"]}


def source_of(obj) -> dict:
    return {"Bucket": obj["bucket"], "Key": obj["key"]}


def assert_same_object(s3, bucket, key, obj):
    got = s3.get_object(Bucket=bucket, Key=key)
    assert got["Body"].read() == obj["body"]
    assert got["ETag"] == md5_etag(obj["body"])
    assert got["ContentLength"] == len(obj["body"])
    return got


def test_copy_within_a_bucket_copies_bytes_and_metadata(s3, src):
    resp = s3.copy_object(Bucket=src["bucket"], Key="dst/copy.bin", CopySource=source_of(src))
    result = resp["CopyObjectResult"]
    assert result["ETag"] == md5_etag(src["body"])
    age = dt.datetime.now(dt.timezone.utc) - result["LastModified"]
    assert dt.timedelta(seconds=-5) < age < dt.timedelta(minutes=5), result["LastModified"]
    got = assert_same_object(s3, src["bucket"], "dst/copy.bin", src)
    assert got["ContentType"] == "application/x-source"
    assert got["Metadata"] == {"color": "blue", "owner": "copy-test"}
    assert got["CacheControl"] == "max-age=10"
    assert got["ContentDisposition"] == 'attachment; filename="s.bin"'
    # The source is untouched.
    assert_same_object(s3, src["bucket"], src["key"], src)


def test_copy_across_buckets(s3, src, make_bucket):
    other = make_bucket()
    resp = s3.copy_object(Bucket=other, Key="copied", CopySource=source_of(src), MetadataDirective="COPY")
    assert resp["CopyObjectResult"]["ETag"] == md5_etag(src["body"])
    got = assert_same_object(s3, other, "copied", src)
    assert got["Metadata"] == {"color": "blue", "owner": "copy-test"}
    assert got["ContentType"] == "application/x-source"
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=other)["Contents"]] == ["copied"]


def test_copy_with_copy_directive_ignores_new_metadata(s3, src):
    s3.copy_object(
        Bucket=src["bucket"], Key="dst", CopySource=source_of(src), Metadata={"ignored": "yes"},
        ContentType="text/ignored",
    )
    got = s3.head_object(Bucket=src["bucket"], Key="dst")
    assert got["Metadata"] == {"color": "blue", "owner": "copy-test"}
    assert got["ContentType"] == "application/x-source"


def test_replace_directive_replaces_metadata_and_content_type(s3, src):
    s3.copy_object(
        Bucket=src["bucket"], Key="dst", CopySource=source_of(src), MetadataDirective="REPLACE",
        Metadata={"fresh": "value"}, ContentType="text/x-replaced",
    )
    got = assert_same_object(s3, src["bucket"], "dst", src)
    assert got["Metadata"] == {"fresh": "value"}
    assert got["ContentType"] == "text/x-replaced"
    assert "CacheControl" not in got and "ContentDisposition" not in got
    head = s3.head_object(Bucket=src["bucket"], Key=src["key"])
    assert head["Metadata"] == {"color": "blue", "owner": "copy-test"}
    assert head["ContentType"] == "application/x-source"


def test_copy_onto_itself_needs_replace(s3, src):
    e = expect_error(
        400, "InvalidRequest", s3.copy_object, Bucket=src["bucket"], Key=src["key"], CopySource=source_of(src)
    )
    assert e.response["Error"]["Message"]
    head = s3.head_object(Bucket=src["bucket"], Key=src["key"])
    assert head["Metadata"] == {"color": "blue", "owner": "copy-test"}

    resp = s3.copy_object(
        Bucket=src["bucket"], Key=src["key"], CopySource=source_of(src), MetadataDirective="REPLACE",
        Metadata={"updated": "in-place"}, ContentType="text/x-in-place",
    )
    assert resp["CopyObjectResult"]["ETag"] == src["etag"]
    got = assert_same_object(s3, src["bucket"], src["key"], src)
    assert got["Metadata"] == {"updated": "in-place"}
    assert got["ContentType"] == "text/x-in-place"


def test_copy_of_a_missing_source_key_is_no_such_key(s3, bucket):
    expect_error(
        404, "NoSuchKey", s3.copy_object, Bucket=bucket, Key="dst", CopySource={"Bucket": bucket, "Key": "nope"}
    )
    assert "Contents" not in s3.list_objects_v2(Bucket=bucket)


def test_copy_from_a_missing_source_bucket_is_no_such_bucket(s3, bucket):
    missing = unique_name("gone")
    expect_error(
        404, "NoSuchBucket", s3.copy_object, Bucket=bucket, Key="dst", CopySource={"Bucket": missing, "Key": "k"}
    )
    assert "Contents" not in s3.list_objects_v2(Bucket=bucket)


def test_copy_into_a_missing_destination_bucket_is_no_such_bucket(s3, src):
    expect_error(404, "NoSuchBucket", s3.copy_object, Bucket=unique_name("gone"), Key="dst", CopySource=source_of(src))


# -- x-amz-copy-source-if-* ---------------------------------------------------------------------

HOLDS = [
    lambda o: {"CopySourceIfMatch": o["etag"]},
    lambda o: {"CopySourceIfNoneMatch": md5_etag(b"some other content")},
    lambda o: {"CopySourceIfModifiedSince": o["mtime"] - DAY},
    lambda o: {"CopySourceIfUnmodifiedSince": o["mtime"] + DAY},
    lambda o: {"CopySourceIfUnmodifiedSince": o["mtime"]},
    # As S3 documents: if-match true and if-unmodified-since false -> the copy happens.
    lambda o: {"CopySourceIfMatch": o["etag"], "CopySourceIfUnmodifiedSince": o["mtime"] - DAY},
]
FAILS = [
    lambda o: {"CopySourceIfMatch": md5_etag(b"some other content")},
    lambda o: {"CopySourceIfNoneMatch": o["etag"]},
    lambda o: {"CopySourceIfModifiedSince": o["mtime"]},
    lambda o: {"CopySourceIfUnmodifiedSince": o["mtime"] - DAY},
    # As S3 documents: if-none-match false and if-modified-since true -> 412.
    lambda o: {"CopySourceIfNoneMatch": o["etag"], "CopySourceIfModifiedSince": o["mtime"] - DAY},
]


@pytest.mark.parametrize(
    "cond", HOLDS,
    ids=["if-match", "if-none-match-other", "modified-since-yesterday", "unmodified-since-tomorrow",
         "unmodified-since-mtime", "if-match-beats-unmodified-since"],
)
def test_copy_source_condition_that_holds_copies(s3, src, cond):
    resp = s3.copy_object(Bucket=src["bucket"], Key="dst", CopySource=source_of(src), **cond(src))
    assert resp["CopyObjectResult"]["ETag"] == md5_etag(src["body"])
    assert_same_object(s3, src["bucket"], "dst", src)


@pytest.mark.parametrize(
    "cond", FAILS,
    ids=["if-match-other", "if-none-match", "modified-since-mtime",
         "unmodified-since-yesterday", "if-none-match-beats-modified-since"],
)
def test_copy_source_condition_that_fails_is_412(s3, src, cond):
    expect_error(
        412, "PreconditionFailed", s3.copy_object,
        Bucket=src["bucket"], Key="dst", CopySource=source_of(src), **cond(src),
    )
    expect_error(404, None, s3.head_object, Bucket=src["bucket"], Key="dst")


def test_copy_source_condition_failure_is_a_complete_error_document(raw, src):
    r = raw.request(
        "PUT", encode_key_path(src["bucket"], "dst"),
        headers={"x-amz-copy-source": f"/{src['bucket']}/{quote(src['key'])}",
                 "x-amz-copy-source-if-match": md5_etag(b"other")},
    )
    assert_s3_error(r, 412, "PreconditionFailed")


# -- source key encoding ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "key",
    ["with space.txt", "plus+sign+key", "ünïcødé/日本語 ファイル", "deep/dir/a b+c/é.bin", "percent%41literal",
     "q?u&e=ry#frag"],
)
def test_copy_source_keys_are_url_decoded(s3, bucket, key):
    body = f"content of {key}".encode()
    s3.put_object(Bucket=bucket, Key=key, Body=body, Metadata={"k": "v"})
    s3.copy_object(Bucket=bucket, Key=key + ".copy", CopySource={"Bucket": bucket, "Key": key})
    got = s3.get_object(Bucket=bucket, Key=key + ".copy")
    assert got["Body"].read() == body and got["Metadata"] == {"k": "v"}
    assert sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]) == sorted([key, key + ".copy"])


@pytest.mark.parametrize(
    "header",
    [
        lambda b: f"/{b}/a%20dir/b%2Bc%2F%C3%A9.txt",  # leading slash, %2F for '/'
        lambda b: f"{b}/a%20dir/b%2Bc/%C3%A9.txt",  # no leading slash
    ],
    ids=["leading-slash", "no-leading-slash"],
)
def test_raw_copy_source_header_forms(raw, s3, bucket, header):
    key = "a dir/b+c/é.txt"
    s3.put_object(Bucket=bucket, Key=key, Body=b"raw header copy")
    r = raw.request("PUT", encode_key_path(bucket, "raw-copy"), headers={"x-amz-copy-source": header(bucket)})
    assert r.status == 200, r
    assert r.xml().tag == "CopyObjectResult" and r.xml().findtext("ETag") == md5_etag(b"raw header copy")
    assert s3.get_object(Bucket=bucket, Key="raw-copy")["Body"].read() == b"raw header copy"


# -- multipart sources, access control ----------------------------------------------------------


def test_copy_of_a_multipart_object_is_byte_exact(s3, bucket, make_bucket):
    bodies = [part_body("copy-mpu-1", PART), part_body("copy-mpu-2", MIB + 7)]
    done = multipart_object(s3, bucket, "mpu", bodies)
    assert done["ETag"] == multipart_etag(bodies)
    other = make_bucket()
    s3.copy_object(Bucket=other, Key="copy", CopySource={"Bucket": bucket, "Key": "mpu"})
    whole = b"".join(bodies)
    got = s3.get_object(Bucket=other, Key="copy")
    assert got["ContentLength"] == len(whole)
    assert hashlib.sha256(got["Body"].read()).digest() == hashlib.sha256(whole).digest()
    s3.copy_object(Bucket=bucket, Key="copy-same-bucket", CopySource={"Bucket": bucket, "Key": "mpu"})
    got = s3.get_object(Bucket=bucket, Key="copy-same-bucket", Range="bytes=5242870-5242889")
    assert got["Body"].read() == whole[5242870:5242890]


def test_copy_needs_access_to_the_source_bucket(server, s3, src, make_user, make_bucket):
    user = make_user("copier")
    client = server.client(user["access_key"], user["secret_key"])
    own = make_bucket(client=client)
    expect_error(403, "AccessDenied", client.copy_object, Bucket=own, Key="stolen", CopySource=source_of(src))
    assert "Contents" not in client.list_objects_v2(Bucket=own)
    # Nor may it copy its own object into a bucket it does not own.
    client.put_object(Bucket=own, Key="mine", Body=b"user data")
    expect_error(
        403, "AccessDenied", client.copy_object,
        Bucket=src["bucket"], Key="pushed", CopySource={"Bucket": own, "Key": "mine"},
    )
    expect_error(404, None, s3.head_object, Bucket=src["bucket"], Key="pushed")
    # Within its own bucket the copy works.
    client.copy_object(Bucket=own, Key="mine-too", CopySource={"Bucket": own, "Key": "mine"})
    assert client.get_object(Bucket=own, Key="mine-too")["Body"].read() == b"user data"
