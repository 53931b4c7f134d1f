"""Issue item 5, conditional requests: If-Match / If-None-Match / If-Modified-Since /
If-Unmodified-Since on GET and HEAD (304 / 412), and conditional writes on PUT."""

import datetime as dt
from email.utils import format_datetime

import pytest

from support.checksums import md5_etag
from support.s3raw import assert_s3_error
from support.sigv4 import encode_key_path
from support.util import client_error, expect_error, status_of

DAY = dt.timedelta(days=1)


@pytest.fixture
def obj(s3, bucket):
    body = b"conditional body"
    s3.put_object(Bucket=bucket, Key="c", Body=body)
    head = s3.head_object(Bucket=bucket, Key="c")
    assert head["ETag"] == md5_etag(body)
    return {"bucket": bucket, "key": "c", "etag": head["ETag"], "mtime": head["LastModified"], "body": body}


def http_date(t: dt.datetime) -> str:
    return format_datetime(t.astimezone(dt.timezone.utc), usegmt=True)


def _get(s3, obj, **cond):
    return s3.get_object(Bucket=obj["bucket"], Key=obj["key"], **cond)


@pytest.mark.parametrize(
    "cond",
    [
        lambda o: {"IfMatch": o["etag"]},
        lambda o: {"IfNoneMatch": '"0123456789abcdef0123456789abcdef"'},
        lambda o: {"IfModifiedSince": o["mtime"] - DAY},
        lambda o: {"IfUnmodifiedSince": o["mtime"] + DAY},
        lambda o: {"IfUnmodifiedSince": o["mtime"]},
        # RFC 7232 precedence as S3 documents it: If-Match true wins over If-Unmodified-Since false.
        lambda o: {"IfMatch": o["etag"], "IfUnmodifiedSince": o["mtime"] - DAY},
    ],
    ids=["if-match", "if-none-match-other", "modified-since-yesterday", "unmodified-since-tomorrow",
         "unmodified-since-mtime", "if-match-beats-unmodified-since"],
)
def test_condition_that_holds_returns_the_object(s3, obj, cond):
    got = _get(s3, obj, **cond(obj))
    assert got["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert got["Body"].read() == obj["body"]


@pytest.mark.parametrize(
    "cond",
    [
        lambda o: {"IfNoneMatch": o["etag"]},
        lambda o: {"IfModifiedSince": o["mtime"]},
        # If-None-Match false wins over If-Modified-Since true: still 304.
        lambda o: {"IfNoneMatch": o["etag"], "IfModifiedSince": o["mtime"] - DAY},
    ],
    ids=["if-none-match", "modified-since-mtime", "if-none-match-beats-modified-since"],
)
def test_not_modified_is_304(s3, raw, obj, cond):
    kwargs = cond(obj)
    e = client_error(_get, s3, obj, **kwargs)
    assert status_of(e) == 304, e.response
    # The 304 has no body but still names the entity.
    headers = {
        {"IfNoneMatch": "If-None-Match", "IfModifiedSince": "If-Modified-Since"}[k]:
        (v if isinstance(v, str) else http_date(v))
        for k, v in kwargs.items()
    }
    for method in ("GET", "HEAD"):
        r = raw.exchange(method, encode_key_path(obj["bucket"], obj["key"]), headers=headers)
        assert r.status == 304, r
        assert r.body == b"", f"{method} 304 carried a body: {r.body[:100]!r}"
        assert r.header("etag") == obj["etag"], r


@pytest.mark.parametrize(
    "cond",
    [
        lambda o: {"IfMatch": '"0123456789abcdef0123456789abcdef"'},
        lambda o: {"IfUnmodifiedSince": o["mtime"] - DAY},
        lambda o: {"IfMatch": '"0123456789abcdef0123456789abcdef"', "IfModifiedSince": o["mtime"] - DAY},
    ],
    ids=["if-match-other", "unmodified-since-yesterday", "if-match-other-with-modified-since"],
)
def test_failed_precondition_is_412(s3, raw, obj, cond):
    kwargs = cond(obj)
    expect_error(412, "PreconditionFailed", _get, s3, obj, **kwargs)
    names = {"IfMatch": "If-Match", "IfUnmodifiedSince": "If-Unmodified-Since", "IfModifiedSince": "If-Modified-Since"}
    headers = {names[k]: (v if isinstance(v, str) else http_date(v)) for k, v in kwargs.items()}
    path = encode_key_path(obj["bucket"], obj["key"])
    assert_s3_error(raw.request("GET", path, headers=headers), 412, "PreconditionFailed")
    head = raw.exchange("HEAD", path, headers=headers)
    assert head.status == 412 and head.body == b"", head


def test_head_object_conditions(s3, obj):
    ok = s3.head_object(Bucket=obj["bucket"], Key=obj["key"], IfMatch=obj["etag"])
    assert ok["ETag"] == obj["etag"]
    assert status_of(client_error(s3.head_object, Bucket=obj["bucket"], Key=obj["key"], IfNoneMatch=obj["etag"])) == 304
    assert status_of(client_error(s3.head_object, Bucket=obj["bucket"], Key=obj["key"], IfMatch='"ffff"')) == 412


# ---- conditional writes --------------------------------------------------------------------

def test_put_if_none_match_star_creates_only_once(s3, bucket):
    first = s3.put_object(Bucket=bucket, Key="once", Body=b"first", IfNoneMatch="*")
    assert first["ETag"] == md5_etag(b"first")
    expect_error(412, "PreconditionFailed", s3.put_object, Bucket=bucket, Key="once", Body=b"second", IfNoneMatch="*")
    assert s3.get_object(Bucket=bucket, Key="once")["Body"].read() == b"first"


def test_put_if_match_is_compare_and_swap(s3, bucket):
    etag = s3.put_object(Bucket=bucket, Key="cas", Body=b"v1")["ETag"]
    etag2 = s3.put_object(Bucket=bucket, Key="cas", Body=b"v2", IfMatch=etag)["ETag"]
    assert etag2 == md5_etag(b"v2")
    # The old ETag is stale now.
    expect_error(412, "PreconditionFailed", s3.put_object, Bucket=bucket, Key="cas", Body=b"v3", IfMatch=etag)
    assert s3.get_object(Bucket=bucket, Key="cas")["Body"].read() == b"v2"


def test_put_if_match_on_missing_key_is_no_such_key(s3, bucket):
    expect_error(404, "NoSuchKey", s3.put_object, Bucket=bucket, Key="absent", Body=b"x", IfMatch=md5_etag(b"x"))
    expect_error(404, "NoSuchKey", s3.get_object, Bucket=bucket, Key="absent")


def test_copy_destination_conditions_answer_as_put_does(s3, bucket):
    """If-Match / If-None-Match on CopyObject test the destination as on PutObject: a missing
    destination fails If-Match as NoSuchKey, and a 412 names the condition that failed."""
    s3.put_object(Bucket=bucket, Key="src", Body=b"source")
    src = {"Bucket": bucket, "Key": "src"}
    expect_error(404, "NoSuchKey", s3.copy_object, Bucket=bucket, Key="absent", CopySource=src,
                 IfMatch=md5_etag(b"x"))
    expect_error(404, "NoSuchKey", s3.get_object, Bucket=bucket, Key="absent")
    first = s3.copy_object(Bucket=bucket, Key="dst", CopySource=src, IfNoneMatch="*")
    e = expect_error(412, "PreconditionFailed", s3.copy_object, Bucket=bucket, Key="dst", CopySource=src,
                     IfNoneMatch="*")
    assert e.response["Error"].get("Condition") == "If-None-Match", e.response["Error"]
    e = expect_error(412, "PreconditionFailed", s3.copy_object, Bucket=bucket, Key="dst", CopySource=src,
                     IfMatch=md5_etag(b"other"))
    assert e.response["Error"].get("Condition") == "If-Match", e.response["Error"]
    again = s3.copy_object(Bucket=bucket, Key="dst", CopySource=src,
                           IfMatch=first["CopyObjectResult"]["ETag"])
    assert again["CopyObjectResult"]["ETag"] == first["CopyObjectResult"]["ETag"]
