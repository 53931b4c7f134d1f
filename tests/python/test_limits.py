"""Issue 4 item 8: limits from the config with AWS defaults; exceeding one gives the AWS error,
not a dropped connection. Small limits are configured so the tests stay fast."""

import http.client

from support.s3raw import assert_s3_error
from support.util import expect_error


def test_single_put_over_the_limit_is_entity_too_large(start_server):
    srv = start_server(extra_env={"SLUICE_MAX_PUT_SIZE": "1000"})
    s3 = srv.client()
    s3.create_bucket(Bucket="lim")
    s3.put_object(Bucket="lim", Key="ok", Body=b"x" * 1000)
    expect_error(400, "EntityTooLarge", s3.put_object, Bucket="lim", Key="big", Body=b"x" * 1001)
    expect_error(404, None, s3.head_object, Bucket="lim", Key="big")


def test_parts_and_assembled_size_limits(start_server):
    srv = start_server(extra_env={"SLUICE_MAX_PARTS": "3", "SLUICE_MAX_OBJECT_SIZE": "8"})
    s3 = srv.client()
    s3.create_bucket(Bucket="lim")
    up = s3.create_multipart_upload(Bucket="lim", Key="m")["UploadId"]
    expect_error(400, "InvalidArgument", s3.upload_part, Bucket="lim", Key="m", UploadId=up, PartNumber=4, Body=b"x")
    e1 = s3.upload_part(Bucket="lim", Key="m", UploadId=up, PartNumber=1, Body=b"12345")["ETag"]
    # One part of 5 bytes fits in the 8-byte object limit.
    s3.complete_multipart_upload(Bucket="lim", Key="m", UploadId=up,
                                 MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": e1}]})
    up = s3.create_multipart_upload(Bucket="lim", Key="n")["UploadId"]
    e1 = s3.upload_part(Bucket="lim", Key="n", UploadId=up, PartNumber=1, Body=b"123456789")["ETag"]
    expect_error(400, "EntityTooLarge", s3.complete_multipart_upload, Bucket="lim", Key="n", UploadId=up,
                 MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": e1}]})


def test_oversized_headers_get_an_http_answer(server):
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    conn.request("GET", "/", headers={"x-huge": "a" * (200 * 1024)})
    r = conn.getresponse()
    assert r.status in (400, 431), r.status
    conn.close()


def test_unknown_encryption_is_refused_and_nothing_is_stored(raw, bucket):
    r = raw.request("PUT", f"/{bucket}/enc", body=b"x", headers={"x-amz-server-side-encryption": "AES512"})
    assert_s3_error(r, 400, "InvalidArgument")
    assert raw.request("HEAD", f"/{bucket}/enc").status == 404
