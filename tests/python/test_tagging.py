"""Issue 4 item 3: object and bucket tagging (Put/Get/Delete, x-amz-tagging on PUT and
CreateMultipartUpload, the AWS limits and InvalidTag / NoSuchTagSet)."""

import pytest

from support.util import expect_error


def tagset(pairs):
    return {"TagSet": [{"Key": k, "Value": v} for k, v in pairs]}


def as_pairs(resp):
    return [(t["Key"], t["Value"]) for t in resp["TagSet"]]


def test_object_tagging_round_trip(s3, bucket):
    s3.put_object(Bucket=bucket, Key="o", Body=b"x")
    assert as_pairs(s3.get_object_tagging(Bucket=bucket, Key="o")) == []
    s3.put_object_tagging(Bucket=bucket, Key="o", Tagging=tagset([("team", "blue"), ("env", "")]))
    # Sorted by key, whatever order they were put in.
    assert as_pairs(s3.get_object_tagging(Bucket=bucket, Key="o")) == [("env", ""), ("team", "blue")]
    assert s3.get_object(Bucket=bucket, Key="o")["TagCount"] == 2
    s3.delete_object_tagging(Bucket=bucket, Key="o")
    assert as_pairs(s3.get_object_tagging(Bucket=bucket, Key="o")) == []
    assert "TagCount" not in s3.head_object(Bucket=bucket, Key="o")


def test_tagging_header_on_put_and_multipart(s3, bucket):
    s3.put_object(Bucket=bucket, Key="h", Body=b"x", Tagging="a=1&b=two%20words")
    assert as_pairs(s3.get_object_tagging(Bucket=bucket, Key="h")) == [("a", "1"), ("b", "two words")]
    mpu = s3.create_multipart_upload(Bucket=bucket, Key="m", Tagging="k=v")
    part = s3.upload_part(Bucket=bucket, Key="m", UploadId=mpu["UploadId"], PartNumber=1, Body=b"y")
    s3.complete_multipart_upload(
        Bucket=bucket, Key="m", UploadId=mpu["UploadId"],
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": part["ETag"]}]},
    )
    assert as_pairs(s3.get_object_tagging(Bucket=bucket, Key="m")) == [("k", "v")]


@pytest.mark.parametrize(
    "pairs",
    [
        [(f"k{i}", "v") for i in range(11)],
        [("k" * 129, "v")],
        [("k", "v" * 257)],
        [("dup", "1"), ("dup", "2")],
        [("aws:reserved", "x")],
    ],
    ids=["eleven-tags", "long-key", "long-value", "duplicate-key", "aws-prefix"],
)
def test_object_tag_limits_are_invalid_tag(s3, bucket, pairs):
    s3.put_object(Bucket=bucket, Key="o", Body=b"x")
    expect_error(400, "InvalidTag", s3.put_object_tagging, Bucket=bucket, Key="o", Tagging=tagset(pairs))


def test_object_tagging_on_missing_key_is_no_such_key(s3, bucket):
    expect_error(404, "NoSuchKey", s3.put_object_tagging, Bucket=bucket, Key="nope", Tagging=tagset([("a", "b")]))
    expect_error(404, "NoSuchKey", s3.get_object_tagging, Bucket=bucket, Key="nope")


def test_bucket_tagging_round_trip_and_limits(s3, bucket):
    expect_error(404, "NoSuchTagSet", s3.get_bucket_tagging, Bucket=bucket)
    fifty = [(f"k{i:02d}", "v") for i in range(50)]
    s3.put_bucket_tagging(Bucket=bucket, Tagging=tagset(fifty))
    assert as_pairs(s3.get_bucket_tagging(Bucket=bucket)) == fifty
    fifty_one = fifty + [("k50", "v")]
    expect_error(400, "InvalidTag", s3.put_bucket_tagging, Bucket=bucket, Tagging=tagset(fifty_one))
    s3.delete_bucket_tagging(Bucket=bucket)
    expect_error(404, "NoSuchTagSet", s3.get_bucket_tagging, Bucket=bucket)


def test_copy_tagging_directive(s3, bucket):
    s3.put_object(Bucket=bucket, Key="src", Body=b"x", Tagging="a=1")
    s3.copy_object(Bucket=bucket, Key="same", CopySource={"Bucket": bucket, "Key": "src"})
    assert as_pairs(s3.get_object_tagging(Bucket=bucket, Key="same")) == [("a", "1")]
    s3.copy_object(
        Bucket=bucket, Key="new", CopySource={"Bucket": bucket, "Key": "src"},
        TaggingDirective="REPLACE", Tagging="b=2",
    )
    assert as_pairs(s3.get_object_tagging(Bucket=bucket, Key="new")) == [("b", "2")]
