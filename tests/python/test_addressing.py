"""Issue item 7: path-style and virtual-hosted-style addressing. The shared server runs with
SLUICE_DOMAINS=s3.localhost; requests go to 127.0.0.1 with a `Host: <bucket>.s3.localhost:PORT`
header and are SigV4-signed for that host."""

import pytest

from support.s3raw import assert_s3_error
from support.server import DOMAIN
from support.sigv4 import encode_key_path
from support.util import empty_and_delete, unique_name

pytestmark = pytest.mark.auth


def vhost(raw, bucket):
    return f"{bucket}.{DOMAIN}:{raw.port}"


def test_virtual_hosted_put_get_head_delete(raw, s3, bucket):
    host = vhost(raw, bucket)
    put = raw.request("PUT", "/dir/v.txt", host=host, body=b"virtual hosted", headers={"x-amz-meta-s": "v"})
    assert put.status == 200, put
    assert s3.get_object(Bucket=bucket, Key="dir/v.txt")["Body"].read() == b"virtual hosted"
    get = raw.request("GET", "/dir/v.txt", host=host)
    assert get.status == 200 and get.body == b"virtual hosted", get
    head = raw.request("HEAD", "/dir/v.txt", host=host)
    assert head.status == 200 and head.header("x-amz-meta-s") == "v", head
    assert raw.request("DELETE", "/dir/v.txt", host=host).status == 204
    assert s3.list_objects_v2(Bucket=bucket)["KeyCount"] == 0


def test_virtual_hosted_list_objects(raw, s3, bucket):
    for k in ("a/1", "a/2", "b"):
        s3.put_object(Bucket=bucket, Key=k, Body=b"x")
    r = raw.request("GET", "/", host=vhost(raw, bucket), query=[("list-type", "2"), ("prefix", "a/")])
    assert r.status == 200, r
    root = r.xml()
    assert root.tag == "ListBucketResult" and root.findtext("Name") == bucket
    assert [c.findtext("Key") for c in root.findall("Contents")] == ["a/1", "a/2"]


def test_virtual_hosted_bucket_with_dots(raw, s3, make_bucket):
    name = make_bucket(name=f"dotted.{unique_name('v')}.bucket")
    r = raw.request("PUT", "/k", host=vhost(raw, name), body=b"dots")
    assert r.status == 200, r
    assert s3.get_object(Bucket=name, Key="k")["Body"].read() == b"dots"


def test_bare_domain_is_the_service_endpoint(raw, bucket):
    r = raw.request("GET", "/", host=f"{DOMAIN}:{raw.port}")
    assert r.status == 200, r
    root = r.xml()
    assert root.tag == "ListAllMyBucketsResult"
    assert bucket in [b.findtext("Name") for b in root.iter("Bucket")]


def test_path_style_on_the_configured_domain(raw, s3, bucket):
    s3.put_object(Bucket=bucket, Key="p", Body=b"path style")
    r = raw.request("GET", encode_key_path(bucket, "p"), host=f"{DOMAIN}:{raw.port}")
    assert r.status == 200 and r.body == b"path style", r


def test_virtual_hosted_missing_bucket(raw):
    r = raw.request("GET", "/k", host=vhost(raw, unique_name("nobucket")))
    assert_s3_error(r, 404, "NoSuchBucket")


@pytest.mark.parametrize("style", ["path", "virtual"])
def test_create_bucket_in_either_style(raw, s3, style):
    name = unique_name("c")
    try:
        if style == "path":
            r = raw.request("PUT", f"/{name}", host=f"{DOMAIN}:{raw.port}")
        else:
            r = raw.request("PUT", "/", host=vhost(raw, name))
        assert r.status == 200, r
        assert s3.head_bucket(Bucket=name)["ResponseMetadata"]["HTTPStatusCode"] == 200
    finally:
        empty_and_delete(s3, name)
