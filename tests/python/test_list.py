"""Issue item 5, listings: ListObjects v1 and ListObjectsV2 (prefix, delimiter/CommonPrefixes,
marker, continuation-token, start-after, max-keys, encoding-type=url, fetch-owner, KeyCount,
IsTruncated) in UTF-8 binary key order, and ListObjectVersions with a delimiter."""

from urllib.parse import unquote_plus

import pytest

from support.checksums import md5_etag
from support.s3raw import assert_s3_error
from support.util import empty_and_delete, expect_error, unique_name

KEYS = [
    "a", "a/b", "a/b/c", "a/c", "a+b", "a b", "a%b", "a-", "ab", "A", "Z", "_", "b/x", "b/y/z",
    "é", "中文", "😀", "\uff5e", "~tilde", "z", "x&y<z>'\"",
]
# UTF-8 byte order (differs from UTF-16 order for U+FF5E vs U+1F600).
ORDER = sorted(KEYS, key=lambda k: k.encode())


@pytest.fixture(scope="module")
def lb(s3):
    name = unique_name("list")
    s3.create_bucket(Bucket=name)
    for k in KEYS:
        s3.put_object(Bucket=name, Key=k, Body=k.encode())
    yield name
    empty_and_delete(s3, name)


def v1_pages(s3, bucket, **kw):
    pages, marker = [], None
    while True:
        page = s3.list_objects(Bucket=bucket, **kw, **({"Marker": marker} if marker else {}))
        pages.append(page)
        if not page["IsTruncated"]:
            return pages
        if kw.get("Delimiter"):
            assert page.get("NextMarker"), "NextMarker must be returned when a delimiter is given"
        marker = page.get("NextMarker") or page["Contents"][-1]["Key"]
        assert len(pages) < 100


def v2_pages(s3, bucket, **kw):
    pages, token = [], None
    while True:
        page = s3.list_objects_v2(Bucket=bucket, **kw, **({"ContinuationToken": token} if token else {}))
        if token:
            assert page["ContinuationToken"] == token
        pages.append(page)
        assert page["KeyCount"] == len(page.get("Contents", [])) + len(page.get("CommonPrefixes", []))
        if not page["IsTruncated"]:
            assert "NextContinuationToken" not in page
            return pages
        token = page["NextContinuationToken"]
        assert len(pages) < 100


def entries(pages):
    """Keys and common prefixes in the order the server returned them, page after page."""
    out = []
    for p in pages:
        merged = [(o["Key"], "key") for o in p.get("Contents", [])] + [
            (c["Prefix"], "prefix") for c in p.get("CommonPrefixes", [])
        ]
        out += sorted(merged, key=lambda e: e[0].encode())
    return out


def test_v2_lists_every_key_in_utf8_binary_order(s3, lb):
    page = s3.list_objects_v2(Bucket=lb)
    assert [o["Key"] for o in page["Contents"]] == ORDER
    assert page["KeyCount"] == len(KEYS) and page["IsTruncated"] is False
    assert page["MaxKeys"] == 1000
    for o in page["Contents"]:
        assert o["Size"] == len(o["Key"].encode()) and o["ETag"] == md5_etag(o["Key"].encode())
        assert "Owner" not in o  # V2 only returns owners with fetch-owner=true
    owned = s3.list_objects_v2(Bucket=lb, FetchOwner=True)["Contents"]
    v1_owners = [o["Owner"]["ID"] for o in s3.list_objects(Bucket=lb)["Contents"]]
    assert [o["Owner"]["ID"] for o in owned] == v1_owners and all(v1_owners)


def test_v1_lists_every_key_in_utf8_binary_order(s3, lb):
    page = s3.list_objects(Bucket=lb)
    assert [o["Key"] for o in page["Contents"]] == ORDER
    assert page["IsTruncated"] is False
    assert all(o["Owner"]["ID"] for o in page["Contents"])


def test_v1_marker_pagination(s3, lb):
    pages = v1_pages(s3, lb, MaxKeys=4)
    assert [len(p["Contents"]) for p in pages[:-1]] == [4] * (len(pages) - 1)
    assert [k for k, _ in entries(pages)] == ORDER
    tail = s3.list_objects(Bucket=lb, Marker="a/c")
    assert [o["Key"] for o in tail["Contents"]] == [k for k in ORDER if k.encode() > b"a/c"]
    assert tail["Marker"] == "a/c"


def test_v2_continuation_token_pagination(s3, lb):
    pages = v2_pages(s3, lb, MaxKeys=3)
    assert len(pages) == -(-len(KEYS) // 3)
    assert all(p["MaxKeys"] == 3 for p in pages)
    assert [k for k, _ in entries(pages)] == ORDER


def test_v2_start_after(s3, lb):
    page = s3.list_objects_v2(Bucket=lb, StartAfter="a/c")
    assert page["StartAfter"] == "a/c"
    assert [o["Key"] for o in page["Contents"]] == [k for k in ORDER if k.encode() > b"a/c"]
    page = s3.list_objects_v2(Bucket=lb, StartAfter="b/")  # not itself a key
    assert [o["Key"] for o in page["Contents"]] == [k for k in ORDER if k.encode() > b"b/"]


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_prefix(s3, lb, version):
    lister = s3.list_objects if version == "v1" else s3.list_objects_v2
    page = lister(Bucket=lb, Prefix="a/")
    assert page["Prefix"] == "a/"
    assert [o["Key"] for o in page["Contents"]] == ["a/b", "a/b/c", "a/c"]
    assert "Contents" not in lister(Bucket=lb, Prefix="nothing-here")


@pytest.mark.parametrize("version", ["v1", "v2"])
@pytest.mark.parametrize(
    "prefix,keys,prefixes",
    [
        ("", [k for k in ORDER if "/" not in k], ["a/", "b/"]),
        ("a/", ["a/b", "a/c"], ["a/b/"]),
        ("b/", ["b/x"], ["b/y/"]),
    ],
)
def test_delimiter_rolls_up_common_prefixes(s3, lb, version, prefix, keys, prefixes):
    lister = s3.list_objects if version == "v1" else s3.list_objects_v2
    page = lister(Bucket=lb, Prefix=prefix, Delimiter="/")
    assert page["Delimiter"] == "/"
    assert [o["Key"] for o in page.get("Contents", [])] == keys
    assert [c["Prefix"] for c in page.get("CommonPrefixes", [])] == prefixes
    if version == "v2":
        assert page["KeyCount"] == len(keys) + len(prefixes)


def _expected_rollup():
    out = {}
    for k in ORDER:
        if "/" in k:
            out.setdefault(k.split("/")[0] + "/", "prefix")
        else:
            out[k] = "key"
    return sorted(out.items(), key=lambda e: e[0].encode())


@pytest.mark.parametrize("max_keys", [1, 2, 5])
def test_common_prefixes_count_towards_max_keys(s3, lb, max_keys):
    expected = _expected_rollup()
    pages2 = v2_pages(s3, lb, Delimiter="/", MaxKeys=max_keys)
    assert all(p["KeyCount"] <= max_keys for p in pages2)
    assert entries(pages2) == expected
    pages1 = v1_pages(s3, lb, Delimiter="/", MaxKeys=max_keys)
    assert all(len(p.get("Contents", [])) + len(p.get("CommonPrefixes", [])) <= max_keys for p in pages1)
    assert entries(pages1) == expected


def test_fetch_owner(s3, lb):
    owner_id = s3.list_buckets()["Owner"]["ID"]
    page = s3.list_objects_v2(Bucket=lb, FetchOwner=True, MaxKeys=2)
    assert [o["Owner"]["ID"] for o in page["Contents"]] == [owner_id, owner_id]


@pytest.mark.parametrize("version", ["1", "2"])
def test_encoding_type_url(raw, lb, version):
    q = [("encoding-type", "url"), ("prefix", "a")]
    if version == "2":
        q.append(("list-type", "2"))
    r = raw.request("GET", f"/{lb}", query=q)
    assert r.status == 200, r
    root = r.xml()
    assert root.findtext("EncodingType") == "url"
    raw_keys = [c.findtext("Key") for c in root.findall("Contents")]
    assert all(k.isascii() and " " not in k for k in raw_keys), raw_keys
    assert [unquote_plus(k) for k in raw_keys] == [k for k in ORDER if k.startswith("a")]
    assert unquote_plus(root.findtext("Prefix")) == "a"


def test_without_encoding_type_keys_are_plain_xml_text(raw, lb):
    r = raw.request("GET", f"/{lb}", query=[("list-type", "2")])
    assert r.status == 200, r
    assert [c.findtext("Key") for c in r.xml().findall("Contents")] == ORDER


def test_list_empty_bucket(s3, bucket):
    page = s3.list_objects_v2(Bucket=bucket)
    assert page["KeyCount"] == 0 and page["IsTruncated"] is False and "Contents" not in page
    assert s3.list_objects(Bucket=bucket)["IsTruncated"] is False


def test_invalid_continuation_token_is_invalid_argument(s3, raw, lb):
    expect_error(400, "InvalidArgument", s3.list_objects_v2, Bucket=lb, ContinuationToken="not-a-token")
    r = raw.request("GET", f"/{lb}", query=[("list-type", "2"), ("continuation-token", "not-a-token")])
    assert_s3_error(r, 400, "InvalidArgument")


def test_list_object_versions_with_delimiter(s3, lb):
    page = s3.list_object_versions(Bucket=lb, Prefix="a/", Delimiter="/")
    assert [v["Key"] for v in page["Versions"]] == ["a/b", "a/c"]
    assert all(v["VersionId"] == "null" and v["IsLatest"] for v in page["Versions"])
    assert [c["Prefix"] for c in page["CommonPrefixes"]] == ["a/b/"]
    assert [v["Key"] for v in s3.list_object_versions(Bucket=lb)["Versions"]] == ORDER
