"""Issue item 5, buckets: ListBuckets, CreateBucket (naming rules, configuration, conflicts),
HeadBucket, DeleteBucket, GetBucketLocation."""

import pytest

from support.s3raw import assert_s3_error
from support.util import empty_and_delete, expect_error, unique_name

EMPTY_CONFIG = (
    b'<CreateBucketConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
    b"</CreateBucketConfiguration>"
)


def test_create_list_head_delete_bucket(s3):
    name = unique_name("b")
    resp = s3.create_bucket(Bucket=name)
    try:
        assert resp["ResponseMetadata"]["HTTPStatusCode"] == 200
        assert resp["Location"] == f"/{name}"
        listed = s3.list_buckets()
        assert listed["Owner"]["ID"], listed["Owner"]
        entry = [b for b in listed["Buckets"] if b["Name"] == name]
        assert len(entry) == 1, listed["Buckets"]
        assert entry[0]["CreationDate"] is not None
        assert s3.head_bucket(Bucket=name)["ResponseMetadata"]["HTTPStatusCode"] == 200
        assert s3.delete_bucket(Bucket=name)["ResponseMetadata"]["HTTPStatusCode"] == 204
    finally:
        empty_and_delete(s3, name)
    assert name not in [b["Name"] for b in s3.list_buckets()["Buckets"]]
    expect_error(404, None, s3.head_bucket, Bucket=name)


def test_list_buckets_is_sorted_by_name(s3, make_bucket):
    names = {make_bucket(name=unique_name(p)) for p in ("zz", "aa", "mm")}
    listed = [b["Name"] for b in s3.list_buckets()["Buckets"]]
    assert listed == sorted(listed)
    assert names <= set(listed)


def test_create_bucket_with_empty_configuration(raw, s3):
    name = unique_name("b")
    try:
        r = raw.request("PUT", f"/{name}", body=EMPTY_CONFIG)
        assert r.status == 200, r
        assert s3.head_bucket(Bucket=name)["ResponseMetadata"]["HTTPStatusCode"] == 200
    finally:
        empty_and_delete(s3, name)


def test_get_bucket_location_in_us_east_1_is_empty(s3, raw, bucket):
    assert s3.get_bucket_location(Bucket=bucket).get("LocationConstraint") is None
    r = raw.request("GET", f"/{bucket}", query=[("location", "")])
    assert r.status == 200, r
    root = r.xml()
    assert root.tag == "LocationConstraint" and not (root.text or "").strip(), r


def test_location_constraint_on_a_regional_server(start_server):
    srv = start_server(region="eu-west-1")
    c = srv.client()
    name = unique_name("b")
    c.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    assert c.get_bucket_location(Bucket=name)["LocationConstraint"] == "eu-west-1"
    assert name in [b["Name"] for b in c.list_buckets()["Buckets"]]


INVALID_NAMES = [
    "ab",
    "a" * 64,
    "Upper-case",
    "under_score",
    "-leading-hyphen",
    "trailing-hyphen-",
    ".leading-dot",
    "trailing-dot.",
    "double..dot",
    "192.168.5.4",
    "xn--punycode",
    "sthree-reserved",
    "name-s3alias",
    "name--ol-s3",
    "name.mrap",
    "name--x-s3",
    "name--table-s3",
    "_sluice",
]


@pytest.mark.parametrize("name", INVALID_NAMES)
def test_invalid_bucket_name_is_rejected(raw, s3, name):
    r = raw.request("PUT", f"/{name}")
    assert_s3_error(r, 400, "InvalidBucketName")
    assert name not in [b["Name"] for b in s3.list_buckets()["Buckets"]]


@pytest.mark.parametrize("name", ["abc", "a" * 63, "my.bucket-1", "1-numeric-start", "a.b.c"])
def test_valid_edge_bucket_names_are_accepted(raw, s3, name):
    try:
        r = raw.request("PUT", f"/{name}")
        assert r.status == 200, r
        assert name in [b["Name"] for b in s3.list_buckets()["Buckets"]]
    finally:
        empty_and_delete(s3, name)


def test_recreating_own_bucket_in_us_east_1_answers_200_and_keeps_its_objects(s3, bucket):
    # S3's legacy answer in us-east-1 (the default region): 200, nothing in the bucket lost.
    s3.put_object(Bucket=bucket, Key="kept", Body=b"still here")
    r = s3.create_bucket(Bucket=bucket)
    assert r["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert r["Location"] == f"/{bucket}"
    assert s3.get_object(Bucket=bucket, Key="kept")["Body"].read() == b"still here"
    assert [b["Name"] for b in s3.list_buckets()["Buckets"]].count(bucket) == 1


def test_recreating_own_bucket_in_us_east_1_resets_its_acl(s3, bucket):
    s3.put_bucket_ownership_controls(
        Bucket=bucket, OwnershipControls={"Rules": [{"ObjectOwnership": "ObjectWriter"}]}
    )
    s3.put_bucket_acl(Bucket=bucket, ACL="log-delivery-write")
    assert len(s3.get_bucket_acl(Bucket=bucket)["Grants"]) == 3
    s3.create_bucket(Bucket=bucket)
    grants = s3.get_bucket_acl(Bucket=bucket)["Grants"]
    assert [g["Permission"] for g in grants] == ["FULL_CONTROL"], grants


def test_recreating_own_bucket_elsewhere_is_bucket_already_owned_by_you(start_server):
    c = start_server(region="eu-west-1").client()
    name = unique_name("b")
    cfg = {"LocationConstraint": "eu-west-1"}
    c.create_bucket(Bucket=name, CreateBucketConfiguration=cfg)
    expect_error(409, "BucketAlreadyOwnedByYou", c.create_bucket, Bucket=name, CreateBucketConfiguration=cfg)


def test_creating_a_bucket_another_user_owns_is_bucket_already_exists(server, make_user, make_bucket):
    alice, bob = make_user("alice"), make_user("bob")
    name = make_bucket(client=server.client(alice["access_key"], alice["secret_key"]))
    bob_s3 = server.client(bob["access_key"], bob["secret_key"])
    expect_error(409, "BucketAlreadyExists", bob_s3.create_bucket, Bucket=name)


def test_head_missing_bucket_is_404_without_body(raw):
    r = raw.exchange("HEAD", f"/{unique_name('missing')}")
    assert r.status == 404, r
    assert r.body == b"", f"HEAD error carried a body: {r.body[:200]!r}"
    assert r.header("x-amz-request-id")


def test_delete_non_empty_bucket_is_bucket_not_empty(s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    expect_error(409, "BucketNotEmpty", s3.delete_bucket, Bucket=bucket)
    assert s3.head_object(Bucket=bucket, Key="k")["ContentLength"] == 1
    s3.delete_object(Bucket=bucket, Key="k")
    assert s3.delete_bucket(Bucket=bucket)["ResponseMetadata"]["HTTPStatusCode"] == 204


def test_operations_on_a_missing_bucket_are_no_such_bucket(s3):
    name = unique_name("missing")
    expect_error(404, "NoSuchBucket", s3.delete_bucket, Bucket=name)
    expect_error(404, "NoSuchBucket", s3.list_objects_v2, Bucket=name)
    expect_error(404, "NoSuchBucket", s3.list_objects, Bucket=name)
    expect_error(404, "NoSuchBucket", s3.put_object, Bucket=name, Key="k", Body=b"x")
    expect_error(404, "NoSuchBucket", s3.get_object, Bucket=name, Key="k")
    expect_error(404, "NoSuchBucket", s3.get_bucket_location, Bucket=name)

