"""Multipart uploads as AWS S3 does them: CreateMultipartUpload / UploadPart / UploadPartCopy /
CompleteMultipartUpload / AbortMultipartUpload / ListParts / ListMultipartUploads, multipart ETags,
composite and full-object checksums, GetObject/HeadObject partNumber, conditional completes,
a restart in the middle of an upload, no part files left behind, and `aws s3 cp` multipart."""

import base64
import functools
import hashlib
import http.client
import subprocess
import time
import zlib

import pytest

from support.checksums import checksum_b64, crc32c, crc64nvme, md5_etag
from support.server import base_env
from support.util import content_for, expect_error
from test_awscli import aws_executable, sha256_file, write_random_file

MIB = 1024 * 1024
PART = 5 * MIB  # the smallest part S3 accepts for every part but the last


@functools.lru_cache(maxsize=None)
def part_body(seed: str, size: int) -> bytes:
    return content_for(seed, size)


def multipart_etag(parts: list[bytes]) -> str:
    """"<hex md5 of the concatenated binary md5s of the parts>-<part count>"."""
    digest = hashlib.md5(b"".join(hashlib.md5(p).digest() for p in parts)).hexdigest()
    return f'"{digest}-{len(parts)}"'


def create(s3, bucket, key, **kw) -> str:
    return s3.create_multipart_upload(Bucket=bucket, Key=key, **kw)["UploadId"]


def upload_parts(s3, bucket, key, upload_id, bodies, first=1, **kw) -> list[dict]:
    """Upload bodies as parts first, first+1, ...; return the CompletedPart list."""
    done = []
    for number, body in enumerate(bodies, first):
        resp = s3.upload_part(Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=body, **kw)
        assert resp["ETag"] == md5_etag(body)
        done.append({"PartNumber": number, "ETag": resp["ETag"]})
    return done


def complete(s3, bucket, key, upload_id, parts, **kw):
    return s3.complete_multipart_upload(
        Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts}, **kw
    )


def multipart_object(s3, bucket, key, bodies) -> dict:
    upload_id = create(s3, bucket, key)
    return complete(s3, bucket, key, upload_id, upload_parts(s3, bucket, key, upload_id, bodies))


def upload_ids(s3, bucket, **kw) -> list[tuple[str, str]]:
    return [(u["Key"], u["UploadId"]) for u in s3.list_multipart_uploads(Bucket=bucket, **kw).get("Uploads", [])]


def abort_all(s3, bucket) -> None:
    for key, upload_id in upload_ids(s3, bucket):
        s3.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)


def three_parts(seed: str) -> list[bytes]:
    return [part_body(f"{seed}-1", PART), part_body(f"{seed}-2", PART), part_body(f"{seed}-3", MIB + 123)]


# -- CRC combination: checksums of multi-MiB bodies without a byte loop over all of them ---------

_CRC_PARAMS = {"CRC32": (0xEDB88320, 32), "CRC32C": (0x82F63B78, 32), "CRC64NVME": (0x9A6C9329AC4BC9B5, 64)}


def _multmodp(a: int, b: int, poly: int, width: int) -> int:
    """a * b modulo the (reflected) CRC polynomial, as in zlib's crc32_combine."""
    m, p = 1 << (width - 1), 0
    while True:
        if a & m:
            p ^= b
            if a & (m - 1) == 0:
                return p
        m >>= 1
        b = (b >> 1) ^ poly if b & 1 else b >> 1


def crc_combine(algorithm: str, crc1: int, crc2: int, len2: int) -> int:
    """CRC of A+B from crc(A), crc(B) and len(B) (reflected CRCs with all-ones init and xor-out)."""
    poly, width = _CRC_PARAMS[algorithm]
    xpow = 1 << (width - 2)  # x^1
    op = 1 << (width - 1)  # x^0
    n = 8 * len2
    while n:
        if n & 1:
            op = _multmodp(xpow, op, poly, width)
        xpow = _multmodp(xpow, xpow, poly, width)
        n >>= 1
    return _multmodp(op, crc1, poly, width) ^ crc2


_CRC_FUNCS = {"CRC32": lambda d: zlib.crc32(d) & 0xFFFFFFFF, "CRC32C": crc32c, "CRC64NVME": crc64nvme}
BLOCK = 64 * 1024


def crc_value(algorithm: str, data: bytes) -> int:
    """CRC of data, computed block-wise with a cache, so bodies of repeated blocks are cheap."""
    cache: dict[bytes, int] = {}
    crc = None
    for i in range(0, len(data), BLOCK):
        block = data[i : i + BLOCK]
        if block not in cache:
            cache[block] = _CRC_FUNCS[algorithm](block)
        crc = cache[block] if crc is None else crc_combine(algorithm, crc, cache[block], len(block))
    return _CRC_FUNCS[algorithm](b"") if crc is None else crc


def crc_b64(algorithm: str, data: bytes) -> str:
    width = _CRC_PARAMS[algorithm][1]
    return base64.b64encode(crc_value(algorithm, data).to_bytes(width // 8, "big")).decode()


for _alg in _CRC_PARAMS:  # the fast path must agree with the reference implementations
    _sample = content_for("crc-check", 3 * BLOCK + 17)
    assert crc_b64(_alg, _sample) == checksum_b64(_alg, _sample), _alg


def composite_b64(algorithm: str, parts: list[bytes]) -> str:
    """S3's COMPOSITE checksum: checksum of the concatenated raw part checksums, then -N."""
    raw = b"".join(base64.b64decode(crc_b64(algorithm, p)) for p in parts)
    return f"{checksum_b64(algorithm, raw)}-{len(parts)}"


# -- round trip and errors ----------------------------------------------------------------------


def test_round_trip_is_byte_exact_with_multipart_etag(s3, bucket):
    bodies = three_parts("round")
    key = "dir/multi.bin"
    upload_id = create(s3, bucket, key, ContentType="text/x-multi", Metadata={"origin": "mpu"})
    assert upload_id
    assert (key, upload_id) in upload_ids(s3, bucket)
    parts = upload_parts(s3, bucket, key, upload_id, bodies)
    done = complete(s3, bucket, key, upload_id, parts)
    expected_etag = multipart_etag(bodies)
    assert done["ETag"] == expected_etag
    assert done["Bucket"] == bucket and done["Key"] == key
    whole = b"".join(bodies)
    got = s3.get_object(Bucket=bucket, Key=key)
    assert got["ETag"] == expected_etag
    assert got["ContentLength"] == len(whole)
    assert got["ContentType"] == "text/x-multi" and got["Metadata"] == {"origin": "mpu"}
    assert hashlib.sha256(got["Body"].read()).digest() == hashlib.sha256(whole).digest()
    listed = s3.list_objects_v2(Bucket=bucket)["Contents"]
    assert [(o["Key"], o["Size"], o["ETag"]) for o in listed] == [(key, len(whole), expected_etag)]
    assert upload_ids(s3, bucket) == []


def test_single_small_part_is_a_valid_upload(s3, bucket):
    body = b"only part, smaller than 5 MiB"
    done = multipart_object(s3, bucket, "small", [body])
    assert done["ETag"] == multipart_etag([body])
    assert s3.get_object(Bucket=bucket, Key="small")["Body"].read() == body


def test_wrong_etag_or_missing_part_is_invalid_part(s3, bucket):
    bodies = [part_body("ip-1", PART), b"tail"]
    upload_id = create(s3, bucket, "k")
    parts = upload_parts(s3, bucket, "k", upload_id, bodies)
    wrong = [{"PartNumber": 1, "ETag": md5_etag(b"not this")}, parts[1]]
    expect_error(400, "InvalidPart", complete, s3, bucket, "k", upload_id, wrong)
    missing = [parts[0], {"PartNumber": 3, "ETag": md5_etag(b"never uploaded")}]
    expect_error(400, "InvalidPart", complete, s3, bucket, "k", upload_id, missing)
    expect_error(404, "NoSuchKey", s3.get_object, Bucket=bucket, Key="k")
    # The failed completes left the upload usable.
    assert complete(s3, bucket, "k", upload_id, parts)["ETag"] == multipart_etag(bodies)


def test_descending_part_order_is_invalid_part_order(s3, bucket):
    bodies = [part_body("order-1", PART), part_body("order-2", PART)]
    upload_id = create(s3, bucket, "k")
    parts = upload_parts(s3, bucket, "k", upload_id, bodies)
    expect_error(400, "InvalidPartOrder", complete, s3, bucket, "k", upload_id, parts[::-1])
    expect_error(404, "NoSuchKey", s3.get_object, Bucket=bucket, Key="k")
    abort_all(s3, bucket)


def test_part_number_listed_twice_is_invalid_part_order(s3, bucket):
    """The parts of a complete must be in ascending order: a number listed twice is not."""
    bodies = [part_body("twice-1", PART), b"tail"]
    upload_id = create(s3, bucket, "k")
    parts = upload_parts(s3, bucket, "k", upload_id, bodies)
    expect_error(400, "InvalidPartOrder", complete, s3, bucket, "k", upload_id, [parts[0], parts[0], parts[1]])
    expect_error(404, "NoSuchKey", s3.get_object, Bucket=bucket, Key="k")
    assert complete(s3, bucket, "k", upload_id, parts)["ETag"] == multipart_etag(bodies)


def test_small_non_last_part_is_entity_too_small(s3, bucket):
    bodies = [part_body("small-1", MIB), part_body("small-2", MIB)]
    upload_id = create(s3, bucket, "k")
    parts = upload_parts(s3, bucket, "k", upload_id, bodies)
    expect_error(400, "EntityTooSmall", complete, s3, bucket, "k", upload_id, parts)
    expect_error(404, "NoSuchKey", s3.get_object, Bucket=bucket, Key="k")
    abort_all(s3, bucket)


def send_without_length(raw, method, path, query):
    """A signed request with neither Content-Length nor Transfer-Encoding (http.client adds
    one in `request`, not with `putrequest`)."""
    target, headers, _ = raw.build(method, path, query=query, headers={"Connection": "close"})
    conn = http.client.HTTPConnection("127.0.0.1", raw.port, timeout=30)
    try:
        conn.putrequest(method, target, skip_host=True, skip_accept_encoding=True)
        for name, value in headers.items():
            conn.putheader(name, value)
        conn.endheaders()
        r = conn.getresponse()
        return r.status, r.read()
    finally:
        conn.close()


def test_body_of_unknown_length_is_missing_content_length(s3, raw, bucket):
    """PutObject and UploadPart refuse a body whose length is not given (411), as S3 does."""
    status, body = send_without_length(raw, "PUT", f"/{bucket}/unsized", None)
    assert status == 411 and b"<Code>MissingContentLength</Code>" in body, body
    expect_error(404, "NoSuchKey", s3.get_object, Bucket=bucket, Key="unsized")
    upload_id = create(s3, bucket, "unsized")
    status, body = send_without_length(raw, "PUT", f"/{bucket}/unsized", {"partNumber": "1", "uploadId": upload_id})
    assert status == 411 and b"<Code>MissingContentLength</Code>" in body, body
    assert s3.list_parts(Bucket=bucket, Key="unsized", UploadId=upload_id).get("Parts", []) == []
    s3.abort_multipart_upload(Bucket=bucket, Key="unsized", UploadId=upload_id)


def test_unknown_upload_id_is_no_such_upload(s3, bucket):
    bogus = "VXBsb2FkIElEIGZvciBub3RoaW5nIGF0IGFsbA"
    expect_error(404, "NoSuchUpload", s3.upload_part, Bucket=bucket, Key="k", UploadId=bogus, PartNumber=1, Body=b"x")
    expect_error(404, "NoSuchUpload", s3.list_parts, Bucket=bucket, Key="k", UploadId=bogus)
    expect_error(
        404, "NoSuchUpload", complete, s3, bucket, "k", bogus, [{"PartNumber": 1, "ETag": md5_etag(b"x")}]
    )
    expect_error(404, "NoSuchUpload", s3.abort_multipart_upload, Bucket=bucket, Key="k", UploadId=bogus)
    # An upload id is bound to its key.
    upload_id = create(s3, bucket, "real")
    expect_error(404, "NoSuchUpload", s3.list_parts, Bucket=bucket, Key="other", UploadId=upload_id)
    abort_all(s3, bucket)


def test_completing_twice_returns_the_same_etag(s3, bucket):
    bodies = [part_body("twice-1", PART), b"last"]
    upload_id = create(s3, bucket, "k")
    parts = upload_parts(s3, bucket, "k", upload_id, bodies)
    first = complete(s3, bucket, "k", upload_id, parts)
    second = complete(s3, bucket, "k", upload_id, parts)
    assert first["ETag"] == second["ETag"] == multipart_etag(bodies)
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"".join(bodies)


def test_abort_removes_the_upload(s3, bucket):
    upload_id = create(s3, bucket, "k")
    upload_parts(s3, bucket, "k", upload_id, [b"part one"])
    assert upload_ids(s3, bucket) == [("k", upload_id)]
    resp = s3.abort_multipart_upload(Bucket=bucket, Key="k", UploadId=upload_id)
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert upload_ids(s3, bucket) == []
    expect_error(
        404, "NoSuchUpload", s3.upload_part, Bucket=bucket, Key="k", UploadId=upload_id, PartNumber=2, Body=b"x"
    )
    expect_error(404, "NoSuchUpload", s3.list_parts, Bucket=bucket, Key="k", UploadId=upload_id)
    expect_error(
        404, "NoSuchUpload", complete, s3, bucket, "k", upload_id, [{"PartNumber": 1, "ETag": md5_etag(b"part one")}]
    )
    expect_error(404, "NoSuchKey", s3.get_object, Bucket=bucket, Key="k")


def test_uploading_a_part_number_again_keeps_the_last_one(s3, bucket):
    first, last = part_body("again-a", PART), part_body("again-b", PART)
    upload_id = create(s3, bucket, "k")
    old = upload_parts(s3, bucket, "k", upload_id, [first])
    new = upload_parts(s3, bucket, "k", upload_id, [last])
    tail = upload_parts(s3, bucket, "k", upload_id, [b"tail"], first=2)
    listed = s3.list_parts(Bucket=bucket, Key="k", UploadId=upload_id)["Parts"]
    assert [(p["PartNumber"], p["ETag"], p["Size"]) for p in listed] == [
        (1, md5_etag(last), PART), (2, md5_etag(b"tail"), 4)
    ]
    expect_error(400, "InvalidPart", complete, s3, bucket, "k", upload_id, old + tail)
    done = complete(s3, bucket, "k", upload_id, new + tail)
    assert done["ETag"] == multipart_etag([last, b"tail"])
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == last + b"tail"


def test_list_parts_pagination(s3, bucket):
    numbers = [1, 3, 4, 7, 10]
    upload_id = create(s3, bucket, "k")
    bodies = {n: f"part {n} ".encode() * n for n in numbers}
    for n in numbers:
        s3.upload_part(Bucket=bucket, Key="k", UploadId=upload_id, PartNumber=n, Body=bodies[n])
    full = s3.list_parts(Bucket=bucket, Key="k", UploadId=upload_id)
    assert full["Bucket"] == bucket and full["Key"] == "k" and full["UploadId"] == upload_id
    assert full["IsTruncated"] is False
    assert [(p["PartNumber"], p["ETag"], p["Size"]) for p in full["Parts"]] == [
        (n, md5_etag(bodies[n]), len(bodies[n])) for n in numbers
    ]
    assert all("LastModified" in p for p in full["Parts"])

    pages, marker = [], 0
    while True:
        page = s3.list_parts(Bucket=bucket, Key="k", UploadId=upload_id, MaxParts=2, PartNumberMarker=marker)
        assert page["MaxParts"] == 2 and page["PartNumberMarker"] == marker
        pages.append([p["PartNumber"] for p in page["Parts"]])
        if not page["IsTruncated"]:
            break
        assert page["NextPartNumberMarker"] == pages[-1][-1]
        marker = page["NextPartNumberMarker"]
    assert pages == [[1, 3], [4, 7], [10]]
    after = s3.list_parts(Bucket=bucket, Key="k", UploadId=upload_id, PartNumberMarker=4)
    assert [p["PartNumber"] for p in after["Parts"]] == [7, 10] and after["IsTruncated"] is False
    abort_all(s3, bucket)


def test_list_multipart_uploads_prefix_delimiter_and_pagination(s3, bucket):
    ids = {}
    for key in ["a/1", "a/2", "b/1", "c", "c#2"]:
        real = key.split("#")[0]
        ids[key] = create(s3, bucket, real)
        time.sleep(0.01)
    try:
        everything = s3.list_multipart_uploads(Bucket=bucket)
        uploads = everything["Uploads"]
        assert [u["Key"] for u in uploads] == ["a/1", "a/2", "b/1", "c", "c"]
        assert {u["UploadId"] for u in uploads} == set(ids.values())
        same_key = [u for u in uploads if u["Key"] == "c"]
        assert same_key[0]["Initiated"] <= same_key[1]["Initiated"]
        assert everything["IsTruncated"] is False

        prefixed = s3.list_multipart_uploads(Bucket=bucket, Prefix="a/")
        assert [(u["Key"], u["UploadId"]) for u in prefixed["Uploads"]] == [("a/1", ids["a/1"]), ("a/2", ids["a/2"])]
        assert prefixed["Prefix"] == "a/"

        grouped = s3.list_multipart_uploads(Bucket=bucket, Delimiter="/")
        assert [p["Prefix"] for p in grouped["CommonPrefixes"]] == ["a/", "b/"]
        assert [u["Key"] for u in grouped["Uploads"]] == ["c", "c"]
        assert grouped["Delimiter"] == "/"

        nested = s3.list_multipart_uploads(Bucket=bucket, Prefix="a/", Delimiter="/")
        assert "CommonPrefixes" not in nested and len(nested["Uploads"]) == 2

        # max-uploads pages, continued with key-marker + upload-id-marker (a page ends between the
        # two uploads of "c").
        seen, kw = [], {}
        while True:
            page = s3.list_multipart_uploads(Bucket=bucket, MaxUploads=2, **kw)
            assert page["MaxUploads"] == 2 and len(page.get("Uploads", [])) <= 2
            seen.append([(u["Key"], u["UploadId"]) for u in page.get("Uploads", [])])
            if not page["IsTruncated"]:
                break
            assert page["NextKeyMarker"] == seen[-1][-1][0]
            assert page["NextUploadIdMarker"] == seen[-1][-1][1]
            kw = {"KeyMarker": page["NextKeyMarker"], "UploadIdMarker": page["NextUploadIdMarker"]}
        assert seen == [[(u["Key"], u["UploadId"]) for u in uploads[i : i + 2]] for i in (0, 2, 4)]

        # key-marker alone skips every upload of that key.
        after_c = s3.list_multipart_uploads(Bucket=bucket, KeyMarker="b/1")
        assert [u["Key"] for u in after_c["Uploads"]] == ["c", "c"]
        assert "Uploads" not in s3.list_multipart_uploads(Bucket=bucket, KeyMarker="c")
    finally:
        abort_all(s3, bucket)


# -- checksums ----------------------------------------------------------------------------------


def test_composite_crc32_checksum(s3, bucket):
    bodies = [part_body("comp-1", PART), part_body("comp-2", PART), part_body("comp-3", 300_000)]
    created = s3.create_multipart_upload(Bucket=bucket, Key="k", ChecksumAlgorithm="CRC32")
    assert created["ChecksumAlgorithm"] == "CRC32"
    upload_id = created["UploadId"]
    parts = []
    for n, body in enumerate(bodies, 1):
        resp = s3.upload_part(
            Bucket=bucket, Key="k", UploadId=upload_id, PartNumber=n, Body=body, ChecksumAlgorithm="CRC32"
        )
        assert resp["ChecksumCRC32"] == crc_b64("CRC32", body)
        parts.append({"PartNumber": n, "ETag": resp["ETag"], "ChecksumCRC32": resp["ChecksumCRC32"]})
    listed = s3.list_parts(Bucket=bucket, Key="k", UploadId=upload_id)["Parts"]
    assert [p.get("ChecksumCRC32") for p in listed] == [p["ChecksumCRC32"] for p in parts]

    expected = composite_b64("CRC32", bodies)
    assert expected.endswith("-3")
    done = complete(s3, bucket, "k", upload_id, parts)
    assert done["ChecksumCRC32"] == expected
    assert done.get("ChecksumType") == "COMPOSITE"
    head = s3.head_object(Bucket=bucket, Key="k", ChecksumMode="ENABLED")
    assert head["ChecksumCRC32"] == expected
    assert head["ChecksumType"] == "COMPOSITE"
    assert head["ETag"] == multipart_etag(bodies)
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"".join(bodies)


def crc32_upload(s3, bucket, key, bodies) -> tuple[str, list[dict]]:
    """A COMPOSITE CRC32 upload; returns (id, parts with their ChecksumCRC32)."""
    upload_id = create(s3, bucket, key, ChecksumAlgorithm="CRC32")
    parts = []
    for n, body in enumerate(bodies, 1):
        resp = s3.upload_part(
            Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=n, Body=body, ChecksumAlgorithm="CRC32"
        )
        parts.append({"PartNumber": n, "ETag": resp["ETag"], "ChecksumCRC32": resp["ChecksumCRC32"]})
    return upload_id, parts


def test_whole_object_value_on_composite_complete_is_checked(s3, bucket):
    """The complete of a COMPOSITE upload may name the checksum of checksums, with or without
    its -N suffix; another value (a checksum of the whole body, say) is BadDigest."""
    bodies = [part_body("whole-1", PART), b"tail"]
    expected = composite_b64("CRC32", bodies)
    for given in (expected, expected.rsplit("-", 1)[0]):
        upload_id, parts = crc32_upload(s3, bucket, "k", bodies)
        done = complete(s3, bucket, "k", upload_id, parts, ChecksumCRC32=given)
        assert done["ChecksumCRC32"] == expected
    upload_id, parts = crc32_upload(s3, bucket, "k2", bodies)
    wrong = crc_b64("CRC32", b"".join(bodies))
    expect_error(400, "BadDigest", complete, s3, bucket, "k2", upload_id, parts, ChecksumCRC32=wrong)
    expect_error(404, None, s3.head_object, Bucket=bucket, Key="k2")
    abort_all(s3, bucket)


def test_missing_part_checksum_on_complete_is_invalid_request(s3, bucket):
    """An upload created with a checksum algorithm needs every part's checksum on complete."""
    upload_id, parts = crc32_upload(s3, bucket, "k", [part_body("nosum-1", PART), b"tail"])
    missing = [parts[0], {k: v for k, v in parts[1].items() if k != "ChecksumCRC32"}]
    expect_error(400, "InvalidRequest", complete, s3, bucket, "k", upload_id, missing)
    expect_error(404, None, s3.head_object, Bucket=bucket, Key="k")
    abort_all(s3, bucket)


def test_wrong_part_checksum_on_complete_is_rejected(s3, bucket):
    upload_id, parts = crc32_upload(s3, bucket, "k", [part_body("badsum-1", PART), b"tail"])
    parts[1]["ChecksumCRC32"] = checksum_b64("CRC32", b"other")
    expect_error(400, {"InvalidPart", "BadDigest"}, complete, s3, bucket, "k", upload_id, parts)
    expect_error(404, None, s3.head_object, Bucket=bucket, Key="k")
    abort_all(s3, bucket)


@pytest.mark.parametrize(
    "kw",
    [{"ChecksumAlgorithm": "SHA256", "ChecksumType": "FULL_OBJECT"}, {"ChecksumType": "FULL_OBJECT"}],
    ids=["full-object-sha256", "type-without-algorithm"],
)
def test_invalid_checksum_type_on_create_is_invalid_request(s3, bucket, kw):
    expect_error(400, "InvalidRequest", s3.create_multipart_upload, Bucket=bucket, Key="k", **kw)
    assert upload_ids(s3, bucket) == []


def full_object_upload(s3, bucket, key, algorithm) -> tuple[str, list[dict], bytes]:
    """A FULL_OBJECT upload of two parts with per-part checksums; returns (id, parts, body)."""
    # First part: one 64 KiB block repeated, so the reference CRC stays cheap in Python.
    bodies = [part_body(f"full-{algorithm}", BLOCK) * (PART // BLOCK), part_body(f"full2-{algorithm}", 200_003)]
    field = f"Checksum{algorithm}"
    created = s3.create_multipart_upload(
        Bucket=bucket, Key=key, ChecksumAlgorithm=algorithm, ChecksumType="FULL_OBJECT"
    )
    assert created["ChecksumAlgorithm"] == algorithm
    upload_id = created["UploadId"]
    parts = []
    for n, body in enumerate(bodies, 1):
        value = crc_b64(algorithm, body)
        resp = s3.upload_part(Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=n, Body=body, **{field: value})
        assert resp[field] == value
        parts.append({"PartNumber": n, "ETag": resp["ETag"], field: value})
    return upload_id, parts, b"".join(bodies)


@pytest.mark.parametrize("algorithm", ["CRC32C", "CRC64NVME"])
def test_full_object_checksum(s3, bucket, algorithm):
    upload_id, parts, whole = full_object_upload(s3, bucket, "k", algorithm)
    field = f"Checksum{algorithm}"
    expected = crc_b64(algorithm, whole)
    done = complete(s3, bucket, "k", upload_id, parts, ChecksumType="FULL_OBJECT", **{field: expected})
    assert done[field] == expected and "-" not in done[field]
    assert done.get("ChecksumType") == "FULL_OBJECT"
    head = s3.head_object(Bucket=bucket, Key="k", ChecksumMode="ENABLED")
    assert head[field] == expected
    assert head["ChecksumType"] == "FULL_OBJECT"
    got = s3.get_object(Bucket=bucket, Key="k", ChecksumMode="ENABLED")
    assert got[field] == expected
    assert got["Body"].read() == whole


def test_full_object_checksum_without_value_on_complete(s3, bucket):
    upload_id, parts, whole = full_object_upload(s3, bucket, "k", "CRC32C")
    done = complete(s3, bucket, "k", upload_id, parts)
    assert done["ChecksumCRC32C"] == crc_b64("CRC32C", whole)
    assert s3.head_object(Bucket=bucket, Key="k", ChecksumMode="ENABLED")["ChecksumCRC32C"] == crc_b64("CRC32C", whole)


def test_full_object_checksum_mismatch_on_complete_is_bad_digest(s3, bucket):
    upload_id, parts, whole = full_object_upload(s3, bucket, "k", "CRC32C")
    wrong = crc_b64("CRC32C", whole + b"!")
    expect_error(
        400, "BadDigest", complete, s3, bucket, "k", upload_id, parts, ChecksumType="FULL_OBJECT", ChecksumCRC32C=wrong
    )
    expect_error(404, None, s3.head_object, Bucket=bucket, Key="k")
    abort_all(s3, bucket)


def test_checksum_type_mismatch_on_complete_is_rejected(s3, bucket):
    """The checksum type given on complete must be the one the upload was created with (the API
    reference names BadDigest; S3 has also been seen answering InvalidRequest)."""
    upload_id, parts, _ = full_object_upload(s3, bucket, "k", "CRC32C")
    expect_error(
        400, {"BadDigest", "InvalidRequest"}, complete, s3, bucket, "k", upload_id, parts, ChecksumType="COMPOSITE"
    )
    expect_error(404, None, s3.head_object, Bucket=bucket, Key="k")
    abort_all(s3, bucket)


# -- conditional complete, partNumber reads -----------------------------------------------------


def test_if_none_match_star_on_complete(s3, bucket):
    s3.put_object(Bucket=bucket, Key="taken", Body=b"original")
    upload_id = create(s3, bucket, "taken")
    parts = upload_parts(s3, bucket, "taken", upload_id, [b"replacement"])
    expect_error(412, "PreconditionFailed", complete, s3, bucket, "taken", upload_id, parts, IfNoneMatch="*")
    assert s3.get_object(Bucket=bucket, Key="taken")["Body"].read() == b"original"

    upload_id = create(s3, bucket, "free")
    parts = upload_parts(s3, bucket, "free", upload_id, [b"new object"])
    assert complete(s3, bucket, "free", upload_id, parts, IfNoneMatch="*")["ETag"] == multipart_etag([b"new object"])
    assert s3.get_object(Bucket=bucket, Key="free")["Body"].read() == b"new object"
    abort_all(s3, bucket)


def test_get_and_head_with_part_number(s3, bucket):
    bodies = three_parts("partnum")
    multipart_object(s3, bucket, "k", bodies)
    total = sum(map(len, bodies))
    etag = multipart_etag(bodies)
    start = 0
    for n, body in enumerate(bodies, 1):
        end = start + len(body) - 1
        got = s3.get_object(Bucket=bucket, Key="k", PartNumber=n)
        assert got["ResponseMetadata"]["HTTPStatusCode"] == 206
        assert got["ContentRange"] == f"bytes {start}-{end}/{total}"
        assert got["ContentLength"] == len(body)
        assert got["PartsCount"] == 3
        assert got["ETag"] == etag
        assert got["Body"].read() == body
        head = s3.head_object(Bucket=bucket, Key="k", PartNumber=n)
        assert head["ResponseMetadata"]["HTTPStatusCode"] == 206
        assert head["ContentRange"] == f"bytes {start}-{end}/{total}"
        assert head["ContentLength"] == len(body) and head["PartsCount"] == 3
        start = end + 1
    expect_error(416, "InvalidPartNumber", s3.get_object, Bucket=bucket, Key="k", PartNumber=4)
    expect_error(416, None, s3.head_object, Bucket=bucket, Key="k", PartNumber=4)


# -- UploadPartCopy -----------------------------------------------------------------------------


def test_upload_part_copy_ranges(s3, bucket, make_bucket):
    src_bucket = make_bucket()
    source = part_body("copy-src", 12 * MIB + 5)
    s3.put_object(Bucket=src_bucket, Key="src/big object", Body=source)
    s3.put_object(Bucket=src_bucket, Key="small", Body=b"small whole source")
    upload_id = create(s3, bucket, "assembled")
    ranges = [(5 * MIB, 10 * MIB - 1), (0, 5 * MIB - 1), (7 * MIB, len(source) - 1)]
    parts, expected = [], []
    for n, (a, b) in enumerate(ranges, 1):
        resp = s3.upload_part_copy(
            Bucket=bucket, Key="assembled", UploadId=upload_id, PartNumber=n,
            CopySource={"Bucket": src_bucket, "Key": "src/big object"}, CopySourceRange=f"bytes={a}-{b}",
        )
        assert resp["CopyPartResult"]["ETag"] == md5_etag(source[a : b + 1])
        assert "LastModified" in resp["CopyPartResult"]
        parts.append({"PartNumber": n, "ETag": resp["CopyPartResult"]["ETag"]})
        expected.append(source[a : b + 1])
    whole = s3.upload_part_copy(
        Bucket=bucket, Key="assembled", UploadId=upload_id, PartNumber=4,
        CopySource={"Bucket": src_bucket, "Key": "small"},
    )
    parts.append({"PartNumber": 4, "ETag": whole["CopyPartResult"]["ETag"]})
    expected.append(b"small whole source")
    listed = s3.list_parts(Bucket=bucket, Key="assembled", UploadId=upload_id)["Parts"]
    assert [p["Size"] for p in listed] == [len(e) for e in expected]
    done = complete(s3, bucket, "assembled", upload_id, parts)
    assert done["ETag"] == multipart_etag(expected)
    got = s3.get_object(Bucket=bucket, Key="assembled")["Body"].read()
    assert hashlib.sha256(got).digest() == hashlib.sha256(b"".join(expected)).digest()


def test_upload_part_copy_conditions(s3, bucket):
    put = s3.put_object(Bucket=bucket, Key="src", Body=b"copy source")
    upload_id = create(s3, bucket, "dst")
    kw = dict(Bucket=bucket, Key="dst", UploadId=upload_id, PartNumber=1, CopySource={"Bucket": bucket, "Key": "src"})
    expect_error(412, "PreconditionFailed", s3.upload_part_copy, CopySourceIfMatch=md5_etag(b"other"), **kw)
    expect_error(412, "PreconditionFailed", s3.upload_part_copy, CopySourceIfNoneMatch=put["ETag"], **kw)
    assert "Parts" not in s3.list_parts(Bucket=bucket, Key="dst", UploadId=upload_id)
    ok = s3.upload_part_copy(CopySourceIfMatch=put["ETag"], **kw)
    assert ok["CopyPartResult"]["ETag"] == put["ETag"]
    abort_all(s3, bucket)


def test_upload_part_copy_of_out_of_range_bytes_is_invalid_range(s3, bucket):
    s3.put_object(Bucket=bucket, Key="src", Body=b"0123456789")
    upload_id = create(s3, bucket, "dst")
    expect_error(
        416, "InvalidRange", s3.upload_part_copy, Bucket=bucket, Key="dst", UploadId=upload_id, PartNumber=1,
        CopySource={"Bucket": bucket, "Key": "src"}, CopySourceRange="bytes=5-10",
    )
    abort_all(s3, bucket)


# -- restart, leftovers -------------------------------------------------------------------------


def body_files(srv) -> int:
    root = srv.data_dir / "objects"
    return sum(1 for p in root.rglob("*") if p.is_file()) if root.exists() else 0


def wait_for_body_files(srv, expected: int, timeout: float = 5.0) -> int:
    deadline = time.monotonic() + timeout
    while (n := body_files(srv)) != expected and time.monotonic() < deadline:
        time.sleep(0.1)
    return n


def test_restart_between_upload_part_and_complete(start_server):
    srv = start_server()
    c = srv.client()
    c.create_bucket(Bucket="mpu")
    bodies = [part_body("restart-1", PART), part_body("restart-2", 700_001)]
    upload_id = create(c, "mpu", "k")
    parts = upload_parts(c, "mpu", "k", upload_id, bodies)
    srv.stop()
    srv.start()
    c = srv.client()
    assert upload_ids(c, "mpu") == [("k", upload_id)]
    listed = c.list_parts(Bucket="mpu", Key="k", UploadId=upload_id)["Parts"]
    assert [(p["PartNumber"], p["ETag"]) for p in listed] == [(p["PartNumber"], p["ETag"]) for p in parts]
    assert complete(c, "mpu", "k", upload_id, parts)["ETag"] == multipart_etag(bodies)
    assert c.get_object(Bucket="mpu", Key="k")["Body"].read() == b"".join(bodies)
    assert wait_for_body_files(srv, 2) == 2


def test_no_part_files_left_behind(start_server):
    srv = start_server()
    c = srv.client()
    c.create_bucket(Bucket="mpu")
    assert body_files(srv) == 0

    bodies = [part_body("left-1", PART), part_body("left-2", PART), b"third, replaced below"]
    upload_id = create(c, "mpu", "done")
    parts = upload_parts(c, "mpu", "done", upload_id, bodies)
    parts[2] = upload_parts(c, "mpu", "done", upload_id, [b"third, final"], first=3)[0]  # replaces part 3
    upload_parts(c, "mpu", "done", upload_id, [b"uploaded but never completed"], first=4)
    upload_parts(c, "mpu", "done", upload_id, [b"also unused"], first=9)
    complete(c, "mpu", "done", upload_id, parts)
    assert wait_for_body_files(srv, 3) == 3, "one file per part of the completed object"
    assert c.get_object(Bucket="mpu", Key="done")["Body"].read() == b"".join(bodies[:2]) + b"third, final"

    aborted = create(c, "mpu", "aborted")
    upload_parts(c, "mpu", "aborted", aborted, [part_body("left-a", PART), b"more"])
    assert body_files(srv) == 5
    c.abort_multipart_upload(Bucket="mpu", Key="aborted", UploadId=aborted)
    assert wait_for_body_files(srv, 3) == 3, "aborted parts are removed"

    c.delete_object(Bucket="mpu", Key="done")
    assert wait_for_body_files(srv, 0) == 0, "deleting a multipart object removes its part files"


# -- aws-cli ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def aws_default(server, tmp_path_factory):
    """aws-cli with an isolated config that keeps the default multipart settings (8 MB threshold
    and chunk size)."""
    home = tmp_path_factory.mktemp("aws-mpu-home")
    env = {
        **base_env(),
        "HOME": str(home),
        "AWS_CONFIG_FILE": str(home / "config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(home / "credentials"),
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_PAGER": "",
    }
    (home / "credentials").write_text(
        f"[default]\naws_access_key_id = {server.access_key}\naws_secret_access_key = {server.secret_key}\n"
    )
    (home / "config").write_text(
        "[default]\nregion = us-east-1\ns3 =\n    addressing_style = path\n    signature_version = s3v4\n"
    )
    exe = aws_executable()

    def run(*args, timeout=300):
        cmd = [exe, *args, "--endpoint-url", server.endpoint]
        cp = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
        if cp.returncode != 0:
            raise AssertionError(f"{' '.join(args)} exited {cp.returncode}\n{cp.stdout}\n{cp.stderr}")
        return cp

    return run


def test_aws_cli_multipart_cp_round_trip(aws_default, s3, bucket, tmp_path):
    src, out = tmp_path / "forty.bin", tmp_path / "forty.out"
    sha, single_etag = write_random_file(src, 40 * MIB)
    try:
        aws_default("s3", "cp", str(src), f"s3://{bucket}/cli/forty.bin", "--only-show-errors")
        head = s3.head_object(Bucket=bucket, Key="cli/forty.bin")
        assert head["ContentLength"] == 40 * MIB
        assert head["ETag"] != single_etag and head["ETag"].endswith('-5"'), (
            f"expected a 5-part multipart ETag, got {head['ETag']}"
        )
        assert upload_ids(s3, bucket) == []
        aws_default("s3", "cp", f"s3://{bucket}/cli/forty.bin", str(out), "--only-show-errors")
        assert sha256_file(out) == sha
    finally:
        for p in (src, out):
            p.unlink(missing_ok=True)


def test_list_uploads_with_delimiter_pages_to_the_end(s3, bucket):
    """Each common prefix is reported once across pages: a paginator must terminate."""
    ids = [create(s3, bucket, k) for k in ("a/1", "a/2", "b/1", "c")]
    seen_prefixes, seen_keys = [], []
    kwargs = {"Bucket": bucket, "Delimiter": "/", "MaxUploads": 1}
    for _ in range(10):
        page = s3.list_multipart_uploads(**kwargs)
        seen_prefixes += [p["Prefix"] for p in page.get("CommonPrefixes", [])]
        seen_keys += [u["Key"] for u in page.get("Uploads", [])]
        if not page["IsTruncated"]:
            break
        kwargs["KeyMarker"] = page["NextKeyMarker"]
        kwargs["UploadIdMarker"] = page.get("NextUploadIdMarker", "")
    else:
        raise AssertionError("ListMultipartUploads never stopped paginating")
    assert seen_prefixes == ["a/", "b/"] and seen_keys == ["c"]
    for key, upload_id in zip(("a/1", "a/2", "b/1", "c"), ids):
        s3.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)


def test_upload_part_copy_needs_a_closed_range(s3, bucket):
    s3.put_object(Bucket=bucket, Key="src", Body=b"0123456789")
    upload_id = create(s3, bucket, "dst")
    src = {"Bucket": bucket, "Key": "src"}
    expect_error(400, "InvalidArgument", s3.upload_part_copy, Bucket=bucket, Key="dst", UploadId=upload_id,
                 PartNumber=1, CopySource=src, CopySourceRange="bytes=0-")
    expect_error(416, "InvalidRange", s3.upload_part_copy, Bucket=bucket, Key="dst", UploadId=upload_id,
                 PartNumber=1, CopySource=src, CopySourceRange="bytes=20-30")
    s3.abort_multipart_upload(Bucket=bucket, Key="dst", UploadId=upload_id)


def test_parts_count_only_for_multipart_objects(s3, bucket):
    s3.put_object(Bucket=bucket, Key="single", Body=b"x")
    head = s3.head_object(Bucket=bucket, Key="single", PartNumber=1)
    assert "PartsCount" not in head
    # A part and a range in one request are refused, as on S3.
    e = expect_error(400, "InvalidRequest", s3.get_object, Bucket=bucket, Key="single", PartNumber=1, Range="bytes=0-0")
    assert "Range header and partNumber" in e.response["Error"]["Message"]
