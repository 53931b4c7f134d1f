"""GetObjectAttributes as boto3 calls it: only the attributes asked for, the ETag unquoted, the
checksum, and the parts of a multipart object page by page; its errors from a raw client."""

import base64
import hashlib

from support.s3raw import assert_s3_error
from support.util import expect_error

ALL = ["ETag", "Checksum", "ObjectParts", "StorageClass", "ObjectSize"]
MIB = 1024 * 1024


def test_single_part_object(s3, bucket):
    body = b"attributes of a small object"
    s3.put_object(Bucket=bucket, Key="small", Body=body, ChecksumAlgorithm="SHA256")
    r = s3.get_object_attributes(Bucket=bucket, Key="small", ObjectAttributes=ALL)
    assert r["ETag"] == hashlib.md5(body).hexdigest()  # unquoted, unlike HeadObject's
    assert r["ObjectSize"] == len(body)
    assert r["StorageClass"] == "STANDARD"
    assert r["Checksum"] == {
        "ChecksumSHA256": base64.b64encode(hashlib.sha256(body).digest()).decode(),
        "ChecksumType": "FULL_OBJECT",
    }
    assert "ObjectParts" not in r
    assert r["LastModified"] == s3.head_object(Bucket=bucket, Key="small")["LastModified"]
    assert "VersionId" not in r and "DeleteMarker" not in r


def test_only_what_was_asked_for(s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"12345")
    r = s3.get_object_attributes(Bucket=bucket, Key="k", ObjectAttributes=["ObjectSize"])
    assert r["ObjectSize"] == 5
    assert not {"ETag", "Checksum", "StorageClass", "ObjectParts"} & set(r)


def test_multipart_object_parts_and_paging(s3, bucket):
    sizes = [5 * MIB, 5 * MIB, 5 * MIB, 1234]
    up = s3.create_multipart_upload(Bucket=bucket, Key="mp", ChecksumAlgorithm="SHA256")
    done = []
    for n, size in enumerate(sizes, start=1):
        part = s3.upload_part(Bucket=bucket, Key="mp", UploadId=up["UploadId"], PartNumber=n,
                              Body=bytes([n]) * size, ChecksumAlgorithm="SHA256")
        done.append({"PartNumber": n, "ETag": part["ETag"], "ChecksumSHA256": part["ChecksumSHA256"]})
    s3.complete_multipart_upload(Bucket=bucket, Key="mp", UploadId=up["UploadId"],
                                 MultipartUpload={"Parts": done})
    r = s3.get_object_attributes(Bucket=bucket, Key="mp", ObjectAttributes=ALL)
    assert r["ETag"] == s3.head_object(Bucket=bucket, Key="mp")["ETag"].strip('"')
    assert r["ETag"].endswith("-4") and r["ObjectSize"] == sum(sizes)
    assert r["Checksum"]["ChecksumType"] == "COMPOSITE"
    assert r["Checksum"]["ChecksumSHA256"].endswith("-4")
    parts = r["ObjectParts"]
    assert parts["TotalPartsCount"] == 4 and parts["IsTruncated"] is False
    assert [(p["PartNumber"], p["Size"], p["ChecksumSHA256"]) for p in parts["Parts"]] == [
        (d["PartNumber"], size, d["ChecksumSHA256"]) for d, size in zip(done, sizes)
    ]
    page = s3.get_object_attributes(Bucket=bucket, Key="mp", ObjectAttributes=["ObjectParts"],
                                    MaxParts=2, PartNumberMarker=1)["ObjectParts"]
    assert page["IsTruncated"] is True and page["MaxParts"] == 2
    assert page["PartNumberMarker"] == 1 and page["NextPartNumberMarker"] == 3
    assert [p["PartNumber"] for p in page["Parts"]] == [2, 3]
    last = s3.get_object_attributes(Bucket=bucket, Key="mp", ObjectAttributes=["ObjectParts"],
                                    MaxParts=10, PartNumberMarker=3)["ObjectParts"]
    assert last["IsTruncated"] is False and "NextPartNumberMarker" not in last
    assert [(p["PartNumber"], p["Size"]) for p in last["Parts"]] == [(4, 1234)]


def test_errors(raw, s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    assert_s3_error(raw.request("GET", f"/{bucket}/k", query=[("attributes", "")]), 400, "InvalidArgument")
    r = raw.request("GET", f"/{bucket}/k", query=[("attributes", "")],
                    headers={"x-amz-object-attributes": "ETag,Colour"})
    assert_s3_error(r, 400, "InvalidArgument")
    r = raw.request("GET", f"/{bucket}/k", query=[("attributes", "")],
                    headers={"x-amz-object-attributes": "ObjectSize", "x-amz-max-parts": "many"})
    assert_s3_error(r, 400, "InvalidArgument")
    expect_error(404, "NoSuchKey", s3.get_object_attributes, Bucket=bucket, Key="absent",
                 ObjectAttributes=["ETag"])
    r = raw.request("PUT", f"/{bucket}/k", query=[("attributes", "")])
    assert_s3_error(r, 405, "MethodNotAllowed")
