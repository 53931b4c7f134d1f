"""Issue item 8: `sluice admin` users and keys (JSON output, secrets shown only on create and
rotate), offline use on a stopped server's data dir, the data-dir lock, immediate effect of
key changes on a running server, and bucket ownership / anonymous access."""

import json
import re

import pytest
import requests
from botocore.exceptions import ClientError

from support.s3raw import assert_s3_error, from_requests
from support.sigv4 import encode_key_path
from support.util import expect_error, status_of, unique_name

pytestmark = pytest.mark.iam

HEX64 = re.compile(r"^[0-9a-f]{64}$")


def works(server, access_key, secret_key) -> bool:
    server.client(access_key, secret_key).list_buckets()
    return True


def assert_rejected(server, access_key, secret_key, code="InvalidAccessKeyId"):
    expect_error(403, code, server.client(access_key, secret_key).list_buckets)


def find_key_entries(listing, access_key):
    """Entries of a `key list` / `user show` JSON document that mention this access key."""
    found = []

    def walk(x):
        if isinstance(x, dict):
            if access_key in x.values():
                found.append(x)
            for v in x.values():
                walk(v)
        elif isinstance(x, list):
            for v in x:
                walk(v)

    walk(listing)
    return found


def test_user_create_prints_name_id_and_first_key(server, make_user):
    user = make_user("alice")
    assert set(user) >= {"name", "id", "access_key", "secret_key"}, user
    assert user["name"].startswith("alice-")
    assert HEX64.match(user["id"]), user["id"]
    assert len(user["secret_key"]) >= 30 and user["access_key"]
    assert works(server, user["access_key"], user["secret_key"])


def test_user_list_and_show_never_print_secrets(server, make_user):
    user = make_user("show")
    listed = server.admin_json("user", "list")
    assert isinstance(listed, list)
    entry = [u for u in listed if u.get("name") == user["name"]]
    assert entry and entry[0]["id"] == user["id"], listed
    show_cp = server.admin("user", "show", user["name"])
    shown = json.loads(show_cp.stdout)
    assert shown["name"] == user["name"] and shown["id"] == user["id"]
    assert find_key_entries(shown, user["access_key"]), shown
    for text in (show_cp.stdout, server.admin("user", "list").stdout,
                 server.admin("key", "list", "--user", user["name"]).stdout):
        assert user["secret_key"] not in text, text


def test_key_create_list_and_second_key_works(server, make_user):
    user = make_user("keys")
    key = server.admin_json("key", "create", "--user", user["name"])
    assert set(key) >= {"access_key", "secret_key", "user"}, key
    assert key["user"] == user["name"] and key["access_key"] != user["access_key"]
    assert works(server, key["access_key"], key["secret_key"])
    assert works(server, user["access_key"], user["secret_key"])
    listing = server.admin_json("key", "list", "--user", user["name"])
    assert find_key_entries(listing, user["access_key"]) and find_key_entries(listing, key["access_key"])


def test_disabled_key_is_rejected_at_once_and_enable_restores_it(server, make_user):
    user = make_user("dis")
    ak, sk = user["access_key"], user["secret_key"]
    assert works(server, ak, sk)
    server.admin("key", "disable", ak)
    assert_rejected(server, ak, sk)
    server.admin("key", "enable", ak)
    assert works(server, ak, sk)


def test_rotate_replaces_the_key(server, make_user):
    user = make_user("rot")
    rotated = server.admin_json("key", "rotate", user["access_key"])
    assert set(rotated) >= {"access_key", "secret_key", "user"}, rotated
    assert rotated["user"] == user["name"]
    assert rotated["secret_key"] != user["secret_key"]
    # The old pair stops working: unknown key id, or a known id whose secret changed.
    old_code = "SignatureDoesNotMatch" if rotated["access_key"] == user["access_key"] else "InvalidAccessKeyId"
    assert_rejected(server, user["access_key"], user["secret_key"], old_code)
    assert works(server, rotated["access_key"], rotated["secret_key"])


def test_deleted_key_is_rejected(server, make_user):
    user = make_user("del")
    second = server.admin_json("key", "create", "--user", user["name"])
    server.admin("key", "delete", user["access_key"])
    assert_rejected(server, user["access_key"], user["secret_key"])
    assert works(server, second["access_key"], second["secret_key"])
    assert not find_key_entries(server.admin_json("key", "list", "--user", user["name"]), user["access_key"])


def test_deleted_user_loses_access_and_a_new_user_of_that_name_is_new(server, make_user):
    user = make_user("gone")
    server.admin("user", "delete", user["name"])
    assert_rejected(server, user["access_key"], user["secret_key"])
    assert server.admin("user", "show", user["name"], check=False).returncode != 0
    again = server.admin_json("user", "create", user["name"])
    assert again["name"] == user["name"] and again["id"] != user["id"]


def test_admin_api_refuses_non_admin_and_bad_credentials(server, make_user):
    user = make_user("plain")
    cp = server.admin("user", "list", creds=(user["access_key"], user["secret_key"]), check=False)
    assert cp.returncode != 0, cp.stdout
    cp = server.admin("user", "list", creds=(server.access_key, "W" * 40), check=False)
    assert cp.returncode != 0, cp.stdout


# ---- offline CLI and the data-dir lock --------------------------------------------------------

def test_admin_works_offline_on_a_stopped_servers_data_dir(start_server):
    srv = start_server()
    srv.stop()
    user = json.loads(srv.admin("user", "create", "carol", endpoint=False).stdout)
    assert user["name"] == "carol" and HEX64.match(user["id"])
    key = json.loads(srv.admin("key", "create", "--user", "carol", endpoint=False).stdout)
    srv.admin("key", "disable", key["access_key"], endpoint=False)
    listed = json.loads(srv.admin("user", "list", endpoint=False).stdout)
    assert "carol" in [u["name"] for u in listed]
    shown = srv.admin("user", "show", "carol", endpoint=False).stdout
    assert user["secret_key"] not in shown and key["secret_key"] not in shown
    srv.start()
    assert works(srv, user["access_key"], user["secret_key"])
    assert_rejected(srv, key["access_key"], key["secret_key"])


def test_admin_without_endpoint_refuses_a_data_dir_in_use(start_server):
    srv = start_server()
    cp = srv.admin("user", "list", endpoint=False, check=False)
    assert cp.returncode != 0, cp.stdout
    err = cp.stderr.strip()
    assert err and "\n" not in err, f"expected a one-line message, got {cp.stderr!r}"
    assert "in use" in err.lower(), err
    # The server is unharmed.
    assert srv.client().list_buckets()["ResponseMetadata"]["HTTPStatusCode"] == 200


# ---- ownership and anonymous access ----------------------------------------------------------

@pytest.fixture
def alice_bob(server, make_user):
    alice, bob = make_user("alice"), make_user("bob")
    return (
        alice, server.client(alice["access_key"], alice["secret_key"]),
        bob, server.client(bob["access_key"], bob["secret_key"]),
    )


def test_owner_has_full_control_of_its_bucket(alice_bob, make_bucket):
    alice, a, _, _ = alice_bob
    name = make_bucket(client=a)
    a.put_object(Bucket=name, Key="k", Body=b"alice's")
    assert a.get_object(Bucket=name, Key="k")["Body"].read() == b"alice's"
    page = a.list_objects_v2(Bucket=name, FetchOwner=True)
    assert page["Contents"][0]["Owner"]["ID"] == alice["id"]
    assert page["Contents"][0]["Owner"].get("DisplayName", alice["name"]) == alice["name"]
    listed = a.list_buckets()
    assert listed["Owner"]["ID"] == alice["id"]
    assert name in [b["Name"] for b in listed["Buckets"]]
    assert a.head_bucket(Bucket=name)["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert a.get_bucket_location(Bucket=name).get("LocationConstraint") is None
    assert [v["Key"] for v in a.list_object_versions(Bucket=name)["Versions"]] == ["k"]
    a.put_object(Bucket=name, Key="k2", Body=b"2")
    assert [d["Key"] for d in a.delete_objects(Bucket=name, Delete={"Objects": [{"Key": "k2"}]})["Deleted"]] == ["k2"]
    a.delete_object(Bucket=name, Key="k")
    a.delete_bucket(Bucket=name)


def test_other_user_is_denied_on_a_bucket_it_does_not_own(alice_bob, make_bucket):
    _, a, _, b = alice_bob
    name = make_bucket(client=a)
    a.put_object(Bucket=name, Key="k", Body=b"private")
    expect_error(403, "AccessDenied", b.get_object, Bucket=name, Key="k")
    expect_error(403, "AccessDenied", b.put_object, Bucket=name, Key="k", Body=b"overwrite")
    expect_error(403, "AccessDenied", b.put_object, Bucket=name, Key="new", Body=b"x")
    expect_error(403, "AccessDenied", b.delete_object, Bucket=name, Key="k")
    expect_error(403, "AccessDenied", b.list_objects_v2, Bucket=name)
    expect_error(403, "AccessDenied", b.delete_bucket, Bucket=name)
    expect_error(403, None, b.head_bucket, Bucket=name)
    expect_error(403, None, b.head_object, Bucket=name, Key="k")
    expect_error(403, "AccessDenied", b.list_objects, Bucket=name)
    expect_error(403, "AccessDenied", b.list_object_versions, Bucket=name)
    expect_error(403, "AccessDenied", b.get_bucket_location, Bucket=name)
    # DeleteObjects: refused as a whole, or (as AWS does) key by key with AccessDenied.
    try:
        resp = b.delete_objects(Bucket=name, Delete={"Objects": [{"Key": "k"}]})
        assert not resp.get("Deleted") and [e["Code"] for e in resp["Errors"]] == ["AccessDenied"], resp
    except ClientError as e:
        assert status_of(e) == 403 and e.response["Error"]["Code"] == "AccessDenied", e.response
    assert name not in [x["Name"] for x in b.list_buckets()["Buckets"]]
    assert a.get_object(Bucket=name, Key="k")["Body"].read() == b"private"
    assert [o["Key"] for o in a.list_objects_v2(Bucket=name)["Contents"]] == ["k"]


def test_root_may_do_everything_on_a_users_bucket(alice_bob, s3, make_bucket):
    _, a, _, _ = alice_bob
    name = make_bucket(client=a)
    a.put_object(Bucket=name, Key="k", Body=b"alice's")
    assert s3.get_object(Bucket=name, Key="k")["Body"].read() == b"alice's"
    s3.put_object(Bucket=name, Key="root", Body=b"r")
    assert sorted(o["Key"] for o in s3.list_objects_v2(Bucket=name)["Contents"]) == ["k", "root"]
    s3.delete_object(Bucket=name, Key="k")


def test_anonymous_requests_are_denied(server, raw, s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"secret")
    path = encode_key_path(bucket, "k")
    for method, p, body in [("GET", path, b""), ("PUT", path, b"x"), ("DELETE", path, b""),
                            ("GET", f"/{bucket}", b""), ("GET", "/", b""), ("PUT", f"/{unique_name('anon')}", b"")]:
        assert_s3_error(raw.request(method, p, body=body, sign=False), 403, "AccessDenied")
    head = raw.exchange("HEAD", path, sign=False)
    assert head.status == 403 and head.body == b"", head
    assert_s3_error(from_requests(requests.get(f"{server.endpoint}{path}", timeout=10)), 403, "AccessDenied")
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"secret"
