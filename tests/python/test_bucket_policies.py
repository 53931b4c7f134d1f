"""Bucket policies and ACLs (issue 6): the AWS JSON policy language and canned/explicit ACLs,
both decided by Cedar; anonymous access only where a policy or ACL grants it; IP, prefix and
aws:SecureTransport conditions; the public access block and object ownership as AWS applies
them."""

from __future__ import annotations

import json
import subprocess

import pytest
import requests

from support.server import base_env
from support.util import expect_error, unique_name
from test_awscli import aws_executable
from test_tls_and_proxies import https_client, tls_server  # noqa: F401 - fixture

pytestmark = pytest.mark.iam

ALL_USERS = "http://acs.amazonaws.com/groups/global/AllUsers"


def policy(*statements):
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def curl(url, *args):
    cp = subprocess.run(["curl", "-s", "-o", "-", "-w", "\n%{http_code}", *args, url],
                        capture_output=True, timeout=30)
    body, _, code = cp.stdout.rpartition(b"\n")
    return int(code), body


def open_bucket(s3, name):
    """A bucket whose ACLs are enabled and whose public access block is off."""
    s3.create_bucket(Bucket=name, ObjectOwnership="ObjectWriter")
    s3.delete_public_access_block(Bucket=name)


def test_public_read_bucket_read_anonymously_by_curl(server, s3):
    name = unique_name("pub")
    open_bucket(s3, name)
    try:
        s3.put_bucket_acl(Bucket=name, ACL="public-read")
        s3.put_object(Bucket=name, Key="open.txt", Body=b"hello world", ACL="public-read")
        s3.put_object(Bucket=name, Key="closed.txt", Body=b"private")
        code, body = curl(f"{server.endpoint}/{name}/open.txt")
        assert (code, body) == (200, b"hello world")
        # Only a signed request may choose the headers of its answer, as on S3.
        code, body = curl(f"{server.endpoint}/{name}/open.txt?response-content-type=text/html")
        assert code == 400 and b"<Code>InvalidRequest</Code>" in body, body
        code, body = curl(f"{server.endpoint}/{name}/closed.txt")
        assert code == 403 and b"<Code>AccessDenied</Code>" in body
        # Anyone may list the bucket, so a missing key is 404 to them (s3-tests' object_gone).
        code, body = curl(f"{server.endpoint}/{name}/gone.txt")
        assert code == 404 and b"<Code>NoSuchKey</Code>" in body, body
        # Bucket READ lets anyone list; WRITE was not granted.
        code, body = curl(f"{server.endpoint}/{name}?list-type=2")
        assert code == 200 and b"<Key>open.txt</Key>" in body
        code, _ = curl(f"{server.endpoint}/{name}/new.txt", "-X", "PUT", "--data-binary", "x")
        assert code == 403
        acl = s3.get_object_acl(Bucket=name, Key="open.txt")
        grants = {(g["Grantee"].get("URI") or g["Grantee"].get("ID"), g["Permission"]) for g in acl["Grants"]}
        assert (ALL_USERS, "READ") in grants and (acl["Owner"]["ID"], "FULL_CONTROL") in grants
        # IgnorePublicAcls takes the public grants out of every decision at once.
        s3.put_public_access_block(Bucket=name, PublicAccessBlockConfiguration={
            "BlockPublicAcls": False, "IgnorePublicAcls": True,
            "BlockPublicPolicy": False, "RestrictPublicBuckets": False})
        assert curl(f"{server.endpoint}/{name}/open.txt")[0] == 403
    finally:
        for k in ("open.txt", "closed.txt"):
            s3.delete_object(Bucket=name, Key=k)
        s3.delete_bucket(Bucket=name)


def test_acls_follow_ownership_and_the_public_access_block(s3, make_bucket):
    enforced = make_bucket()
    # New buckets enforce bucket-owner ownership: ACLs other than the owner's are refused.
    expect_error(400, "AccessControlListNotSupported", s3.put_bucket_acl, Bucket=enforced, ACL="public-read")
    s3.put_object(Bucket=enforced, Key="k", Body=b"", ACL="bucket-owner-full-control")
    expect_error(400, "AccessControlListNotSupported", s3.put_object, Bucket=enforced, Key="k2",
                 Body=b"", ACL="authenticated-read")
    assert len(s3.get_bucket_acl(Bucket=enforced)["Grants"]) == 1
    # An empty grant list would take the owner's own control away: not an owner-only ACL.
    owner = s3.get_bucket_acl(Bucket=enforced)["Owner"]
    expect_error(400, "AccessControlListNotSupported", s3.put_bucket_acl, Bucket=enforced,
                 AccessControlPolicy={"Owner": owner, "Grants": []})
    assert len(s3.get_bucket_acl(Bucket=enforced)["Grants"]) == 1
    expect_error(400, "InvalidBucketAclWithObjectOwnership", s3.create_bucket,
                 Bucket=unique_name("x"), ACL="public-read")
    # ACLs enabled but the default public access block still refuses public grants.
    name = unique_name("own")
    s3.create_bucket(Bucket=name, ObjectOwnership="BucketOwnerPreferred")
    try:
        expect_error(403, "AccessDenied", s3.put_bucket_acl, Bucket=name, ACL="public-read")
        s3.put_bucket_acl(Bucket=name, ACL="private")
        expect_error(400, "InvalidArgument", s3.put_bucket_acl, Bucket=name, ACL="nonsense")
        # ACLs cannot be disabled over an ACL that grants others, until it is reset (as on S3).
        s3.put_bucket_acl(Bucket=name, ACL="log-delivery-write")
        expect_error(400, "InvalidBucketAclWithObjectOwnership", s3.put_bucket_ownership_controls, Bucket=name,
                     OwnershipControls={"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]})
        rules = s3.get_bucket_ownership_controls(Bucket=name)["OwnershipControls"]["Rules"]
        assert rules == [{"ObjectOwnership": "BucketOwnerPreferred"}]
        s3.put_bucket_acl(Bucket=name, ACL="private")
        s3.put_bucket_ownership_controls(Bucket=name,
                                         OwnershipControls={"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]})
    finally:
        s3.delete_bucket(Bucket=name)


def test_explicit_grants_give_another_user_access(server, s3, make_user):
    bob = make_user("bob")
    b = server.client(bob["access_key"], bob["secret_key"])
    name = unique_name("grant")
    open_bucket(s3, name)
    try:
        s3.put_object(Bucket=name, Key="k", Body=b"data")
        expect_error(403, "AccessDenied", b.get_object, Bucket=name, Key="k")
        s3.put_object_acl(Bucket=name, Key="k", GrantRead=f'id="{bob["id"]}"')
        assert b.get_object(Bucket=name, Key="k")["Body"].read() == b"data"
        # The XML form: give bob WRITE on the bucket (he may then put objects).
        owner = s3.get_bucket_acl(Bucket=name)["Owner"]
        s3.put_bucket_acl(Bucket=name, AccessControlPolicy={
            "Owner": owner,
            "Grants": [
                {"Grantee": {"Type": "CanonicalUser", "ID": owner["ID"]}, "Permission": "FULL_CONTROL"},
                {"Grantee": {"Type": "CanonicalUser", "ID": bob["id"]}, "Permission": "WRITE"},
            ]})
        b.put_object(Bucket=name, Key="from-bob", Body=b"hi")
        expect_error(403, "AccessDenied", b.list_objects_v2, Bucket=name)
        grants = s3.get_bucket_acl(Bucket=name)["Grants"]
        assert {"Type": "CanonicalUser", "ID": bob["id"], "DisplayName": bob["name"]} in [g["Grantee"] for g in grants]
    finally:
        for k in ("k", "from-bob"):
            s3.delete_object(Bucket=name, Key=k)
        s3.delete_bucket(Bucket=name)


def test_bucket_owner_may_delete_but_not_read_another_writers_object(server, make_user):
    """ObjectWriter: an object is its writer's. The bucket owner deletes it, as on S3, but reads
    it and its ACL only where the object's ACL grants so, and not its tags; once ACLs are disabled
    (BucketOwnerEnforced) the bucket owner owns every object again."""
    alice, bob = make_user("alice"), make_user("bob")
    a = server.client(alice["access_key"], alice["secret_key"])
    b = server.client(bob["access_key"], bob["secret_key"])
    name = unique_name("writer")
    a.create_bucket(Bucket=name, ObjectOwnership="ObjectWriter")
    try:
        a.put_bucket_acl(Bucket=name, GrantFullControl=f'id="{alice["id"]}"', GrantWrite=f'id="{bob["id"]}"')
        b.put_object(Bucket=name, Key="bobs", Body=b"bob's")
        b.put_object(Bucket=name, Key="shared", Body=b"shared", ACL="bucket-owner-read")
        b.put_object(Bucket=name, Key="gone", Body=b"to delete")
        a.put_object(Bucket=name, Key="alices", Body=b"alice's")
        expect_error(403, "AccessDenied", a.get_object, Bucket=name, Key="bobs")
        expect_error(403, None, a.head_object, Bucket=name, Key="bobs")
        expect_error(403, "AccessDenied", a.get_object_acl, Bucket=name, Key="bobs")
        expect_error(403, "AccessDenied", a.get_object_tagging, Bucket=name, Key="bobs")
        # Not a public ACL, which the bucket's public access block would refuse anyway.
        expect_error(403, "AccessDenied", a.put_object_acl, Bucket=name, Key="bobs",
                     GrantRead=f'id="{alice["id"]}"')
        assert b.get_object(Bucket=name, Key="bobs")["Body"].read() == b"bob's"
        assert a.get_object(Bucket=name, Key="shared")["Body"].read() == b"shared"
        assert a.get_object(Bucket=name, Key="alices")["Body"].read() == b"alice's"
        a.delete_object(Bucket=name, Key="gone")
        expect_error(404, "NoSuchKey", a.get_object, Bucket=name, Key="gone")

        def listed_owners():
            v2 = a.list_objects_v2(Bucket=name, FetchOwner=True)["Contents"]
            v1 = a.list_objects(Bucket=name)["Contents"]
            versions = a.list_object_versions(Bucket=name)["Versions"]
            return [{o["Key"]: o["Owner"]["ID"] for o in listing} for listing in (v2, v1, versions)]

        writers = {"alices": alice["id"], "bobs": bob["id"], "shared": bob["id"]}
        assert listed_owners() == [writers] * 3
        # ACLs disabled: the bucket owner owns (and reads) every object in it, and every listing
        # and ACL names her as its owner.
        a.put_bucket_acl(Bucket=name, ACL="private")
        a.put_bucket_ownership_controls(
            Bucket=name, OwnershipControls={"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]})
        assert a.get_object(Bucket=name, Key="bobs")["Body"].read() == b"bob's"
        assert a.get_object_acl(Bucket=name, Key="bobs")["Owner"]["ID"] == alice["id"]
        assert listed_owners() == [{k: alice["id"] for k in writers}] * 3
    finally:
        for k in ("bobs", "shared", "gone", "alices"):
            a.delete_object(Bucket=name, Key=k)
        a.delete_bucket(Bucket=name)


def test_bucket_owner_enforced_names_the_bucket_owner_as_every_objects_owner(server, make_user):
    """BucketOwnerEnforced (the default): an object or upload another user writes, by a bucket
    policy's grant, is listed as the bucket owner's; an upload's Initiator stays its writer."""
    alice, bob = make_user("alice"), make_user("bob")
    a = server.client(alice["access_key"], alice["secret_key"])
    b = server.client(bob["access_key"], bob["secret_key"])
    name = unique_name("enforced")
    a.create_bucket(Bucket=name)
    up = None
    try:
        a.put_bucket_policy(Bucket=name, Policy=policy(
            {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::000000000000:user/{bob['name']}"},
             "Action": "s3:PutObject", "Resource": f"arn:aws:s3:::{name}/*"}))
        b.put_object(Bucket=name, Key="bobs", Body=b"bob's")
        up = b.create_multipart_upload(Bucket=name, Key="mpu")["UploadId"]
        b.upload_part(Bucket=name, Key="mpu", UploadId=up, PartNumber=1, Body=b"part")
        [o] = a.list_objects_v2(Bucket=name, FetchOwner=True)["Contents"]
        assert (o["Key"], o["Owner"]["ID"]) == ("bobs", alice["id"])
        [o] = a.list_objects(Bucket=name)["Contents"]
        assert o["Owner"]["ID"] == alice["id"]
        assert a.get_object_acl(Bucket=name, Key="bobs")["Owner"]["ID"] == alice["id"]
        [u] = a.list_multipart_uploads(Bucket=name)["Uploads"]
        assert (u["Initiator"]["ID"], u["Owner"]["ID"]) == (bob["id"], alice["id"])
        parts = a.list_parts(Bucket=name, Key="mpu", UploadId=up)
        assert (parts["Initiator"]["ID"], parts["Owner"]["ID"]) == (bob["id"], alice["id"])
    finally:
        if up:
            a.abort_multipart_upload(Bucket=name, Key="mpu", UploadId=up)
        a.delete_object(Bucket=name, Key="bobs")
        a.delete_bucket_policy(Bucket=name)
        a.delete_bucket(Bucket=name)


def test_bucket_owner_preferred_takes_objects_written_with_bucket_owner_full_control(server, make_user):
    """BucketOwnerPreferred: an object another user writes with the bucket-owner-full-control
    canned ACL becomes the bucket owner's, with full control for the bucket owner alone, whichever
    way it is written (PUT, copy, multipart upload, browser POST); with another ACL or none it
    stays its writer's, as under ObjectWriter."""
    alice, bob = make_user("alice"), make_user("bob")
    a = server.client(alice["access_key"], alice["secret_key"])
    b = server.client(bob["access_key"], bob["secret_key"])
    name = unique_name("preferred")
    a.create_bucket(Bucket=name, ObjectOwnership="BucketOwnerPreferred")
    taken = ["put", "copy", "mpu", "post"]
    try:
        a.put_bucket_acl(Bucket=name, GrantFullControl=f'id="{alice["id"]}"', GrantWrite=f'id="{bob["id"]}"')
        full = {"ACL": "bucket-owner-full-control"}
        b.put_object(Bucket=name, Key="bobs", Body=b"bob's")
        b.put_object(Bucket=name, Key="shared", Body=b"shared", ACL="bucket-owner-read")
        b.put_object(Bucket=name, Key="put", Body=b"put", **full)
        b.copy_object(Bucket=name, Key="copy", CopySource={"Bucket": name, "Key": "bobs"}, **full)
        up = b.create_multipart_upload(Bucket=name, Key="mpu", **full)["UploadId"]
        etag = b.upload_part(Bucket=name, Key="mpu", UploadId=up, PartNumber=1, Body=b"mpu")["ETag"]
        [listed] = a.list_multipart_uploads(Bucket=name)["Uploads"]
        assert (listed["Initiator"]["ID"], listed["Owner"]["ID"]) == (bob["id"], alice["id"])
        b.complete_multipart_upload(Bucket=name, Key="mpu", UploadId=up,
                                    MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": etag}]})
        form = b.generate_presigned_post(name, "post", Fields={"acl": full["ACL"]},
                                         Conditions=[{"acl": full["ACL"]}], ExpiresIn=300)
        r = requests.post(form["url"], data=form["fields"], files={"file": ("f", b"post")}, timeout=30)
        assert r.status_code == 204, r.text
        for key in taken:
            acl = a.get_object_acl(Bucket=name, Key=key)
            assert acl["Owner"]["ID"] == alice["id"], key
            assert [(g["Grantee"].get("ID"), g["Permission"]) for g in acl["Grants"]] == [(alice["id"], "FULL_CONTROL")], key
            # Tags are never the bucket owner's on another writer's object: these are hers.
            assert a.get_object_tagging(Bucket=name, Key=key)["TagSet"] == [], key
        assert a.get_object(Bucket=name, Key="copy")["Body"].read() == b"bob's"
        assert a.get_object(Bucket=name, Key="post")["Body"].read() == b"post"
        for key in ("bobs", "shared"):
            assert b.get_object_acl(Bucket=name, Key=key)["Owner"]["ID"] == bob["id"], key
            expect_error(403, "AccessDenied", a.get_object_tagging, Bucket=name, Key=key)
        expect_error(403, "AccessDenied", a.get_object, Bucket=name, Key="bobs")
        listed = a.list_objects_v2(Bucket=name, FetchOwner=True)["Contents"]
        owners = {o["Key"]: o["Owner"]["ID"] for o in listed}
        assert owners == {**{k: alice["id"] for k in taken}, "bobs": bob["id"], "shared": bob["id"]}
        # Bob gave his objects away: no grant is left for him on them.
        expect_error(403, "AccessDenied", b.get_object_acl, Bucket=name, Key="put")
    finally:
        for k in taken + ["bobs", "shared"]:
            a.delete_object(Bucket=name, Key=k)
        a.delete_bucket(Bucket=name)


def test_bucket_policy_with_ip_and_prefix_conditions(server, s3, make_user, make_bucket):
    bob = make_user("bob")
    b = server.client(bob["access_key"], bob["secret_key"])
    name = make_bucket()
    s3.delete_public_access_block(Bucket=name)
    for k in ("shared/a", "shared/b", "private/c"):
        s3.put_object(Bucket=name, Key=k, Body=k.encode())
    doc = policy(
        {"Sid": "LoopbackReads", "Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
         "Resource": f"arn:aws:s3:::{name}/shared/*",
         "Condition": {"IpAddress": {"aws:SourceIp": "127.0.0.0/8"}}},
        {"Sid": "OfficeOnly", "Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
         "Resource": f"arn:aws:s3:::{name}/private/*",
         "Condition": {"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}},
        {"Sid": "BobListsShared", "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::000000000000:user/{bob['name']}"},
         "Action": "s3:ListBucket", "Resource": f"arn:aws:s3:::{name}",
         "Condition": {"StringLike": {"s3:prefix": "shared/*"}}},
    )
    s3.put_bucket_policy(Bucket=name, Policy=doc)
    assert json.loads(s3.get_bucket_policy(Bucket=name)["Policy"]) == json.loads(doc)
    assert s3.get_bucket_policy(Bucket=name)["Policy"] == doc  # as stored, byte for byte
    assert s3.get_bucket_policy_status(Bucket=name)["PolicyStatus"]["IsPublic"] is False
    assert curl(f"{server.endpoint}/{name}/shared/a") == (200, b"shared/a")
    assert curl(f"{server.endpoint}/{name}/private/c")[0] == 403
    assert [o["Key"] for o in b.list_objects_v2(Bucket=name, Prefix="shared/")["Contents"]] == ["shared/a", "shared/b"]
    expect_error(403, "AccessDenied", b.list_objects_v2, Bucket=name, Prefix="private/")
    expect_error(403, "AccessDenied", b.list_objects_v2, Bucket=name)
    s3.delete_bucket_policy(Bucket=name)
    expect_error(404, "NoSuchBucketPolicy", s3.get_bucket_policy, Bucket=name)
    assert curl(f"{server.endpoint}/{name}/shared/a")[0] == 403


def test_malformed_and_public_policies(s3, make_bucket):
    name = make_bucket()
    stmt = {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{name}/*"}
    e = expect_error(400, "MalformedPolicy", s3.put_bucket_policy, Bucket=name,
                     Policy=policy({**stmt, "Resource": f"arn:aws:s3:::{name}/a?c"}))
    assert "?" in e.response["Error"]["Message"]
    expect_error(400, "MalformedPolicy", s3.put_bucket_policy, Bucket=name, Policy="{not json")
    expect_error(400, "MalformedPolicy", s3.put_bucket_policy, Bucket=name,
                 Policy=policy({**stmt, "Resource": "arn:aws:s3:::some-other-bucket/*"}))
    expect_error(400, "MalformedPolicy", s3.put_bucket_policy, Bucket=name,
                 Policy=policy({**stmt, "Condition": {"StringLike": {"s3:prefix": "a?"}}}))
    # NotPrincipal lists a Deny's exceptions; AWS does not support it with Allow.
    not_principal = {k: v for k, v in stmt.items() if k != "Principal"}
    not_principal["NotPrincipal"] = {"AWS": "arn:aws:iam::123456789012:root"}
    e = expect_error(400, "MalformedPolicy", s3.put_bucket_policy, Bucket=name, Policy=policy(not_principal))
    assert "NotPrincipal" in e.response["Error"]["Message"]
    s3.put_bucket_policy(Bucket=name, Policy=policy({**not_principal, "Effect": "Deny"}))
    s3.delete_bucket_policy(Bucket=name)
    # A public policy on a new bucket meets BlockPublicPolicy.
    expect_error(403, "AccessDenied", s3.put_bucket_policy, Bucket=name, Policy=policy(stmt))
    s3.delete_public_access_block(Bucket=name)
    s3.put_bucket_policy(Bucket=name, Policy=policy(stmt))
    assert s3.get_bucket_policy_status(Bucket=name)["PolicyStatus"]["IsPublic"] is True


def test_referer_and_user_agent_conditions(server, s3, make_bucket):
    name = make_bucket()
    s3.delete_public_access_block(Bucket=name)
    s3.put_object(Bucket=name, Key="img", Body=b"pixels")
    objects = f"arn:aws:s3:::{name}/*"
    s3.put_bucket_policy(Bucket=name, Policy=policy(
        {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": objects,
         "Condition": {"StringLike": {"aws:Referer": "https://app.example.com/*"}}},
        {"Effect": "Deny", "Principal": "*", "Action": "s3:GetObject", "Resource": objects,
         "Condition": {"StringLike": {"aws:UserAgent": "*BadBot*"}}},
    ))
    # A Referer is the client's to choose, so AWS counts such a grant as public.
    assert s3.get_bucket_policy_status(Bucket=name)["PolicyStatus"]["IsPublic"] is True
    url = f"{server.endpoint}/{name}/img"
    assert curl(url, "-H", "Referer: https://app.example.com/page") == (200, b"pixels")
    assert curl(url)[0] == 403
    assert curl(url, "-H", "Referer: https://evil.example.com/app.example.com/")[0] == 403
    assert curl(url, "-H", "Referer: https://app.example.com/page", "-A", "BadBot/1.0")[0] == 403


def test_restrict_public_buckets_ignores_public_allows(server, s3, make_bucket):
    name = make_bucket()
    s3.delete_public_access_block(Bucket=name)
    s3.put_object(Bucket=name, Key="k", Body=b"v")
    s3.put_bucket_policy(Bucket=name, Policy=policy(
        {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{name}/*"}))
    assert curl(f"{server.endpoint}/{name}/k") == (200, b"v")
    s3.put_public_access_block(Bucket=name, PublicAccessBlockConfiguration={
        "BlockPublicAcls": False, "IgnorePublicAcls": False,
        "BlockPublicPolicy": False, "RestrictPublicBuckets": True})
    assert curl(f"{server.endpoint}/{name}/k")[0] == 403


def test_deny_statement_overrides_the_owner(server, s3, make_user):
    alice = make_user("alice")
    a = server.client(alice["access_key"], alice["secret_key"])
    name = unique_name("deny")
    a.create_bucket(Bucket=name)
    try:
        a.put_object(Bucket=name, Key="keep", Body=b"k")
        a.put_bucket_policy(Bucket=name, Policy=policy(
            {"Sid": "KeepForever", "Effect": "Deny", "Principal": "*", "Action": "s3:DeleteObject",
             "Resource": f"arn:aws:s3:::{name}/*"}))
        expect_error(403, "AccessDenied", a.delete_object, Bucket=name, Key="keep")
        a.delete_bucket_policy(Bucket=name)
        a.delete_object(Bucket=name, Key="keep")
    finally:
        s3.delete_bucket(Bucket=name)


def test_secure_transport_condition(tls_server):  # noqa: F811 - fixture
    s3 = tls_server.client()
    name = unique_name("tls")
    s3.create_bucket(Bucket=name)
    s3.put_object(Bucket=name, Key="k", Body=b"v")
    s3.put_bucket_policy(Bucket=name, Policy=policy(
        {"Sid": "TlsOnly", "Effect": "Deny", "Principal": "*", "Action": "s3:GetObject",
         "Resource": f"arn:aws:s3:::{name}/*", "Condition": {"Bool": {"aws:SecureTransport": "false"}}}))
    expect_error(403, "AccessDenied", s3.get_object, Bucket=name, Key="k")
    assert https_client(tls_server).get_object(Bucket=name, Key="k")["Body"].read() == b"v"


def test_aws_cli_puts_and_reads_a_bucket_policy(server, make_bucket, tmp_path):
    name = make_bucket()
    home = tmp_path / "home"
    home.mkdir()
    (home / "credentials").write_text(
        f"[default]\naws_access_key_id = {server.access_key}\naws_secret_access_key = {server.secret_key}\n")
    env = {**base_env(), "HOME": str(home), "AWS_SHARED_CREDENTIALS_FILE": str(home / "credentials"),
           "AWS_CONFIG_FILE": str(home / "config"), "AWS_EC2_METADATA_DISABLED": "true", "AWS_PAGER": ""}
    doc = policy({"Sid": "NoDeletes", "Effect": "Deny", "Principal": "*", "Action": "s3:DeleteObject",
                  "Resource": f"arn:aws:s3:::{name}/*"})

    def aws(*args):
        cp = subprocess.run([aws_executable(), "s3api", *args, "--endpoint-url", server.endpoint],
                            env=env, capture_output=True, text=True, timeout=120)
        return cp

    assert aws("put-bucket-policy", "--bucket", name, "--policy", doc).returncode == 0
    out = json.loads(aws("get-bucket-policy", "--bucket", name).stdout)
    assert json.loads(out["Policy"]) == json.loads(doc)
    server.client().put_object(Bucket=name, Key="k", Body=b"")
    cp = aws("delete-object", "--bucket", name, "--key", "k")
    assert cp.returncode != 0 and "AccessDenied" in cp.stderr
    assert aws("delete-bucket-policy", "--bucket", name).returncode == 0
    assert requests.get(f"{server.endpoint}/{name}/k").status_code == 403
