"""Every access decision through Cedar (issue 6): the shipped default policies, identity policies
attached to users and groups, deny-overrides, policy files validated at start and hot-reloaded,
`sluice policy check` / `explain`, and the admin API decided by the `iam` actions."""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
import time

import pytest

from support.server import BIN, REPO, base_env
from support.util import expect_error, unique_name

pytestmark = pytest.mark.iam

POLICIES = REPO / "policies"


def user_client(server, user):
    return server.client(user["access_key"], user["secret_key"])


def attach(server, tmp_path, kind, target, name, text):
    f = tmp_path / f"{name}.cedar"
    f.write_text(text)
    return server.admin_json("policy", "attach", f"--{kind}", target, "--name", name, str(f))


def test_a_user_without_policies_owns_what_it_creates(server, make_user, make_bucket):
    alice, bob = make_user("alice"), make_user("bob")
    a, b = user_client(server, alice), user_client(server, bob)
    bucket = make_bucket(a)
    a.put_object(Bucket=bucket, Key="k", Body=b"mine")
    assert a.get_object(Bucket=bucket, Key="k")["Body"].read() == b"mine"
    a.put_object_tagging(Bucket=bucket, Key="k", Tagging={"TagSet": [{"Key": "t", "Value": "v"}]})
    # Cross-user: bob gets nothing on alice's bucket, including per-key deletes.
    expect_error(403, "AccessDenied", b.get_object, Bucket=bucket, Key="k")
    expect_error(403, "AccessDenied", b.put_object, Bucket=bucket, Key="x", Body=b"")
    expect_error(403, "AccessDenied", b.list_objects_v2, Bucket=bucket)
    expect_error(403, "AccessDenied", b.delete_bucket, Bucket=bucket)
    out = b.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "k"}]})
    assert [e["Code"] for e in out.get("Errors", [])] == ["AccessDenied"]
    assert a.head_object(Bucket=bucket, Key="k")["ContentLength"] == 4
    # Anonymous gets nothing either.
    anon = server.raw(access_key="", secret_key="")
    r = anon.request("GET", f"/{bucket}/k", sign=False)
    assert r.status == 403


def test_policies_attached_to_a_user_and_a_group(server, make_user, make_bucket, tmp_path):
    alice, bob, carol = make_user("alice"), make_user("bob"), make_user("carol")
    a, b, c = (user_client(server, u) for u in (alice, bob, carol))
    bucket = make_bucket(a)
    a.put_object(Bucket=bucket, Key="shared/doc", Body=b"doc")
    a.put_object(Bucket=bucket, Key="private/doc", Body=b"secret")

    group = unique_name("readers")
    server.admin_json("group", "create", group)
    server.admin_json("group", "add-user", group, bob["name"])
    shown = server.admin_json("group", "show", group)
    assert [m["name"] for m in shown["members"]] == [bob["name"]]
    attach(server, tmp_path, "group", group, "read-shared", f"""
        @id("read-shared")
        permit (principal, action == Sluice::Action::"s3:GetObject", resource in Sluice::Bucket::"{bucket}")
        when {{ resource.key like "shared/*" }};
    """)
    assert b.get_object(Bucket=bucket, Key="shared/doc")["Body"].read() == b"doc"
    expect_error(403, "AccessDenied", b.get_object, Bucket=bucket, Key="private/doc")
    expect_error(403, "AccessDenied", c.get_object, Bucket=bucket, Key="shared/doc")

    # A per-user policy: carol may list the bucket's shared/ prefix only.
    out = attach(server, tmp_path, "user", carol["name"], "list-shared", f"""
        permit (principal, action == Sluice::Action::"s3:ListBucket", resource == Sluice::Bucket::"{bucket}")
        when {{ context has prefix && context.prefix like "shared/*" }};
    """)
    assert out["policies"] == [f"user/{carol['name']}/list-shared#0"]
    keys = [o["Key"] for o in c.list_objects_v2(Bucket=bucket, Prefix="shared/")["Contents"]]
    assert keys == ["shared/doc"]
    expect_error(403, "AccessDenied", c.list_objects_v2, Bucket=bucket)

    listed = server.admin_json("policy", "list", "--group", group)
    assert [p["name"] for p in listed] == ["read-shared"]
    server.admin_json("group", "remove-user", group, bob["name"])
    expect_error(403, "AccessDenied", b.get_object, Bucket=bucket, Key="shared/doc")
    server.admin_json("group", "add-user", group, bob["name"])
    server.admin_json("policy", "detach", "--group", group, "--name", "read-shared")
    expect_error(403, "AccessDenied", b.get_object, Bucket=bucket, Key="shared/doc")
    server.admin_json("group", "delete", group)


def test_a_missing_object_is_404_only_to_who_may_list(server, make_user, make_bucket, tmp_path):
    """S3 answers a GET, HEAD or GetObjectAttributes of a missing key by the bucket's list
    permission: 404 NoSuchKey to a caller who may list the bucket, 403 to anyone else, whatever
    they may read."""
    alice, bob = make_user("alice"), make_user("bob")
    a, b = user_client(server, alice), user_client(server, bob)
    bucket = make_bucket(a)
    a.put_object(Bucket=bucket, Key="there", Body=b"x")
    expect_error(404, "NoSuchKey", a.get_object, Bucket=bucket, Key="absent")
    expect_error(403, "AccessDenied", b.get_object, Bucket=bucket, Key="absent")
    attach(server, tmp_path, "user", bob["name"], "read-only", f"""
        permit (principal, action == Sluice::Action::"s3:GetObject", resource in Sluice::Bucket::"{bucket}");
    """)
    assert b.get_object(Bucket=bucket, Key="there")["Body"].read() == b"x"
    expect_error(403, "AccessDenied", b.get_object, Bucket=bucket, Key="absent")
    expect_error(403, None, b.head_object, Bucket=bucket, Key="absent")
    expect_error(403, "AccessDenied", b.get_object_attributes, Bucket=bucket, Key="absent",
                 ObjectAttributes=["ETag"])
    attach(server, tmp_path, "user", bob["name"], "list-too", f"""
        permit (principal, action == Sluice::Action::"s3:ListBucket", resource == Sluice::Bucket::"{bucket}");
    """)
    expect_error(404, "NoSuchKey", b.get_object, Bucket=bucket, Key="absent")
    expect_error(404, None, b.head_object, Bucket=bucket, Key="absent")
    expect_error(404, "NoSuchKey", b.get_object_attributes, Bucket=bucket, Key="absent",
                 ObjectAttributes=["ETag"])
    # Listing alone: a missing key is 404, an existing one is still not readable.
    server.admin_json("policy", "detach", "--user", bob["name"], "--name", "read-only")
    expect_error(404, "NoSuchKey", b.get_object, Bucket=bucket, Key="absent")
    expect_error(403, "AccessDenied", b.get_object, Bucket=bucket, Key="there")


def test_a_missing_copy_source_is_404_only_to_who_may_list(server, make_user, make_bucket, tmp_path):
    """A copy's source is read as a GET reads it: its absence is told (404 NoSuchKey) only to a
    caller who may list the source bucket, whatever it may read there."""
    alice, bob = make_user("alice"), make_user("bob")
    a, b = user_client(server, alice), user_client(server, bob)
    src, dst = make_bucket(a), make_bucket(b)
    a.put_object(Bucket=src, Key="there", Body=b"x")
    upload = b.create_multipart_upload(Bucket=dst, Key="parts")["UploadId"]

    def copy(key):
        return b.copy_object(Bucket=dst, Key="copy", CopySource={"Bucket": src, "Key": key})

    def part_copy(key):
        return b.upload_part_copy(
            Bucket=dst, Key="parts", UploadId=upload, PartNumber=1, CopySource={"Bucket": src, "Key": key}
        )

    expect_error(404, "NoSuchKey", a.copy_object, Bucket=src, Key="c", CopySource={"Bucket": src, "Key": "absent"})
    expect_error(403, "AccessDenied", copy, "absent")
    attach(server, tmp_path, "user", bob["name"], "read-src", f"""
        permit (principal, action == Sluice::Action::"s3:GetObject", resource in Sluice::Bucket::"{src}");
    """)
    copy("there")
    assert b.get_object(Bucket=dst, Key="copy")["Body"].read() == b"x"
    expect_error(403, "AccessDenied", copy, "absent")
    expect_error(403, "AccessDenied", part_copy, "absent")
    attach(server, tmp_path, "user", bob["name"], "list-src", f"""
        permit (principal, action == Sluice::Action::"s3:ListBucket", resource == Sluice::Bucket::"{src}");
    """)
    expect_error(404, "NoSuchKey", copy, "absent")
    expect_error(404, "NoSuchKey", part_copy, "absent")
    # Listing alone: the absence is told, an existing source is still not readable.
    server.admin_json("policy", "detach", "--user", bob["name"], "--name", "read-src")
    expect_error(404, "NoSuchKey", copy, "absent")
    expect_error(403, "AccessDenied", copy, "there")


def test_deny_overrides_the_owners_permit(server, make_user, make_bucket, tmp_path):
    alice = make_user("alice")
    a = user_client(server, alice)
    bucket = make_bucket(a)
    a.put_object(Bucket=bucket, Key="locked/x", Body=b"x")
    attach(server, tmp_path, "user", alice["name"], "no-delete", """
        forbid (principal, action == Sluice::Action::"s3:DeleteObject", resource)
        when { resource has key && resource.key like "locked/*" };
    """)
    expect_error(403, "AccessDenied", a.delete_object, Bucket=bucket, Key="locked/x")
    a.put_object(Bucket=bucket, Key="free/y", Body=b"y")
    a.delete_object(Bucket=bucket, Key="free/y")
    server.admin_json("policy", "detach", "--user", alice["name"], "--name", "no-delete")
    a.delete_object(Bucket=bucket, Key="locked/x")


def test_attached_policies_are_validated_and_bound(server, make_user, tmp_path):
    alice = make_user("alice")
    f = tmp_path / "bad.cedar"
    f.write_text('permit (principal, action, resource) when { principal.nope == 1 };')
    cp = server.admin("policy", "attach", "--user", alice["name"], "--name", "bad", str(f), check=False)
    assert cp.returncode != 0 and "nope" in cp.stderr
    f.write_text('permit (principal == Sluice::User::"someone-else", action, resource);')
    cp = server.admin("policy", "attach", "--user", alice["name"], "--name", "other", str(f), check=False)
    assert cp.returncode != 0 and "another principal" in cp.stderr


def test_admin_api_follows_the_iam_actions(server, make_user, tmp_path):
    ops = make_user("ops")
    creds = (ops["access_key"], ops["secret_key"])
    cp = server.admin("user", "list", creds=creds, check=False)
    assert cp.returncode != 0 and "AccessDenied" in cp.stderr
    attach(server, tmp_path, "user", ops["name"], "user-admin", """
        permit (principal, action in [Sluice::Action::"iam:ListUsers", Sluice::Action::"iam:GetUser"], resource);
    """)
    users = server.admin_json("user", "list", creds=creds)
    assert any(u["name"] == ops["name"] for u in users)
    cp = server.admin("user", "create", unique_name("nope"), creds=creds, check=False)
    assert cp.returncode != 0 and "AccessDenied" in cp.stderr


# ---- policy files: validation at start, hot reload, the CLI --------------------------------

def policy_dir(tmp_path):
    d = tmp_path / "policies"
    d.mkdir()
    for f in POLICIES.glob("*.cedar"):
        shutil.copy(f, d / f.name)
    return d


def sluice(*args, env=None, check=True):
    cp = subprocess.run([str(BIN), *args], env={**base_env(), **(env or {})}, capture_output=True,
                        text=True, timeout=60, stdin=subprocess.DEVNULL)
    if check:
        assert cp.returncode == 0, f"{args} exited {cp.returncode}\n{cp.stdout}\n{cp.stderr}"
    return cp


def test_policy_check_on_the_shipped_and_a_broken_directory(tmp_path):
    out = sluice("policy", "check", str(POLICIES)).stdout
    assert "are valid" in out
    d = policy_dir(tmp_path)
    (d / "zz-broken.cedar").write_text(
        '// a comment\npermit (principal, action, resource)\nwhen { principal.nmae == "x" };\n')
    cp = sluice("policy", "check", str(d), check=False)
    assert cp.returncode != 0
    assert "zz-broken.cedar:3:" in cp.stderr, cp.stderr


def test_a_broken_policy_file_stops_start_up(start_server, tmp_path):
    d = policy_dir(tmp_path)
    (d / "typo.cedar").write_text("permit (principal, action, resource) when { true ;\n")
    srv = start_server(start=False, extra_env={"SLUICE_POLICIES_DIR": str(d)})
    with pytest.raises(RuntimeError) as e:
        srv.start()
    assert "typo.cedar:1:" in str(e.value)


def test_hot_reload_swaps_only_a_validated_set(start_server, tmp_path):
    d = policy_dir(tmp_path)
    srv = start_server(extra_env={"SLUICE_POLICIES_DIR": str(d)})
    s3 = srv.client()
    bucket = unique_name("hot")
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="k", Body=b"v")

    results: list[int] = []
    stop = threading.Event()

    def reader():
        c = srv.client()
        while not stop.is_set():
            try:
                c.get_object(Bucket=bucket, Key="k")["Body"].read()
                results.append(200)
            except Exception as e:  # noqa: BLE001 - any failure is recorded
                results.append(getattr(e, "response", {}).get("ResponseMetadata", {}).get("HTTPStatusCode", 0))

    t = threading.Thread(target=reader)
    t.start()
    try:
        time.sleep(0.5)
        (d / "freeze.cedar").write_text(
            f'@id("freeze")\nforbid (principal, action == Sluice::Action::"s3:GetObject", '
            f'resource in Sluice::Bucket::"{bucket}");\n')
        wait_for(lambda: status(s3, bucket) == 403)
        # A broken edit is refused; the previous set (with the forbid) keeps serving.
        (d / "freeze.cedar").write_text("forbid (principal, action, resource) when {\n")
        wait_for(lambda: "policies not reloaded" in srv.stderr_text())
        assert status(s3, bucket) == 403
        (d / "freeze.cedar").unlink()
        wait_for(lambda: status(s3, bucket) == 200)
    finally:
        stop.set()
        t.join()
    assert results and set(results) <= {200, 403}, set(results)
    assert srv.proc.poll() is None


def status(s3, bucket):
    try:
        s3.get_object(Bucket=bucket, Key="k")
        return 200
    except Exception as e:  # noqa: BLE001
        return e.response["ResponseMetadata"]["HTTPStatusCode"]


def wait_for(cond, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.1)
    raise AssertionError("condition not met in time")


def test_policy_explain_names_the_deciding_policies(start_server, tmp_path):
    srv = start_server()
    alice = srv.admin_json("user", "create", "alice")
    srv.admin_json("user", "create", "bob")
    a = srv.client(alice["access_key"], alice["secret_key"])
    a.create_bucket(Bucket="explained")
    a.put_object(Bucket="explained", Key="doc", Body=b"d")
    a.put_bucket_policy(Bucket="explained", Policy=json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Sid": "NoBobDeletes", "Effect": "Deny",
                       "Principal": {"AWS": "arn:aws:iam::000000000000:user/bob"},
                       "Action": "s3:DeleteObject", "Resource": "arn:aws:s3:::explained/*"}],
    }))
    # Over the admin API while the server runs ...
    env = {"AWS_ACCESS_KEY_ID": srv.access_key, "AWS_SECRET_ACCESS_KEY": srv.secret_key}
    cp = sluice("policy", "explain", "--endpoint", srv.endpoint, "--principal", 'Sluice::User::"alice"',
                "--action", "s3:GetObject", "--resource", "explained/doc", env=env)
    assert cp.stdout.startswith("allow (default.cedar#bucket-owner-objects)"), cp.stdout
    cp = sluice("policy", "explain", "--endpoint", srv.endpoint, "--principal", 'Sluice::User::"bob"',
                "--action", "s3:DeleteObject", "--resource", "explained/doc", env=env)
    assert cp.stdout.startswith("deny (bucket/explained#NoBobDeletes)"), cp.stdout
    # ... and offline on the data dir of the stopped server.
    srv.stop()
    cp = sluice("policy", "explain", "--principal", 'Sluice::Anonymous::"anonymous"',
                "--action", "s3:GetObject", "--resource", "explained/doc",
                "--context", '{"source_ip": "10.1.2.3"}', env=srv.server_env)
    assert cp.stdout.startswith("deny (no policy applies: default deny)"), cp.stdout
    decision = json.loads(cp.stdout.split("\n", 1)[1])
    assert decision["decision"] == "deny" and decision["resource"] == 'Sluice::Object::"explained/doc"'
    # Offline explain sees the bucket policies too.
    cp = sluice("policy", "explain", "--principal", 'Sluice::User::"bob"', "--action", "s3:DeleteObject",
                "--resource", "explained/doc", env=srv.server_env)
    assert cp.stdout.startswith("deny (bucket/explained#NoBobDeletes)"), cp.stdout
