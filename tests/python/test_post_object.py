"""Issue 4 item 5: browser POST uploads built by boto3 generate_presigned_post and sent with
requests: conditions (eq, starts-with, content-length-range), success_action_status,
success_action_redirect, ${filename}, refused extra fields, bad signatures."""

import base64
import hashlib
import json

import requests

from support.s3raw import assert_s3_error, from_requests as as_response
from support.util import expect_error, let_anyone_put


def post(url, fields, filename="hello.txt", data=b"hello from a browser"):
    return requests.post(url, data=fields, files={"file": (filename, data)}, timeout=30)


def test_presigned_post_uploads_with_filename_and_status(s3, bucket):
    p = s3.generate_presigned_post(
        bucket, "uploads/${filename}",
        Fields={"success_action_status": "201", "Content-Type": "text/plain"},
        Conditions=[
            ["starts-with", "$key", "uploads/"],
            {"success_action_status": "201"},
            {"Content-Type": "text/plain"},
            ["content-length-range", 1, 1024],
        ],
        ExpiresIn=300,
    )
    r = post(p["url"], p["fields"])
    assert r.status_code == 201, r.text
    assert "<Key>uploads/hello.txt</Key>" in r.text
    got = s3.get_object(Bucket=bucket, Key="uploads/hello.txt")
    assert got["Body"].read() == b"hello from a browser"
    assert got["ContentType"] == "text/plain"


def test_key_conditions_see_the_filename_substituted(s3, bucket):
    p = s3.generate_presigned_post(
        bucket, "uploads/${filename}", Conditions=[["starts-with", "$key", "uploads/hello"]], ExpiresIn=300,
    )
    r = post(p["url"], p["fields"], filename="hello.txt")
    assert r.status_code == 204, r.text
    assert s3.get_object(Bucket=bucket, Key="uploads/hello.txt")["Body"].read() == b"hello from a browser"
    r = post(p["url"], p["fields"], filename="other.txt")
    assert_s3_error(as_response(r), 403, "AccessDenied")
    assert "uploads/hello" in r.text


def test_default_status_is_204_and_redirect_is_303(s3, bucket):
    p = s3.generate_presigned_post(bucket, "plain", ExpiresIn=300)
    r = post(p["url"], p["fields"])
    assert r.status_code == 204, r.text
    p = s3.generate_presigned_post(
        bucket, "redir",
        Fields={"success_action_redirect": "https://app.example.com/done"},
        Conditions=[{"success_action_redirect": "https://app.example.com/done"}],
        ExpiresIn=300,
    )
    r = requests.post(p["url"], data=p["fields"], files={"file": ("f", b"x")}, allow_redirects=False, timeout=30)
    assert r.status_code == 303, r.text
    assert r.headers["Location"].startswith("https://app.example.com/done?bucket=")
    assert "key=redir" in r.headers["Location"]


def test_content_length_range_is_enforced(s3, bucket):
    p = s3.generate_presigned_post(
        bucket, "small", Conditions=[["content-length-range", 1, 10]], ExpiresIn=300,
    )
    r = post(p["url"], p["fields"], data=b"x" * 11)
    assert_s3_error(as_response(r), 400, "EntityTooLarge")
    r = post(p["url"], p["fields"], data=b"")
    assert_s3_error(as_response(r), 400, "EntityTooSmall")
    assert post(p["url"], p["fields"], data=b"12345").status_code == 204


def test_condition_mismatch_and_uncovered_field_are_refused(s3, bucket):
    p = s3.generate_presigned_post(
        bucket, "fixed", Conditions=[["starts-with", "$key", "fixed"]], ExpiresIn=300,
    )
    fields = dict(p["fields"], key="elsewhere")
    assert_s3_error(as_response(post(p["url"], fields)), 403, "AccessDenied")
    extra = dict(p["fields"], **{"x-amz-meta-sneaky": "1"})
    assert_s3_error(as_response(post(p["url"], extra)), 403, "AccessDenied")
    ignored = dict(p["fields"], **{"x-ignore-me": "1"})
    assert post(p["url"], ignored).status_code == 204


def test_tampered_signature_is_refused(s3, bucket):
    p = s3.generate_presigned_post(bucket, "t", ExpiresIn=300)
    fields = dict(p["fields"])
    sig_field = "x-amz-signature" if "x-amz-signature" in fields else "signature"
    fields[sig_field] = ("0" if fields[sig_field][0] != "0" else "1") + fields[sig_field][1:]
    assert_s3_error(as_response(post(p["url"], fields)), 403, "SignatureDoesNotMatch")


def test_oversized_form_field_is_refused_before_signature_checks(server, bucket):
    """Fields other than the file are small; a huge one is refused, not buffered."""
    r = requests.post(f"{server.endpoint}/{bucket}", data={"key": "k", "x-ignore-pad": "a" * (200 * 1024)},
                      files={"file": ("f", b"x")}, timeout=30)
    assert r.status_code == 400, r.text


def test_policy_expiration_must_be_iso8601_gmt(server, s3, bucket):
    import base64, hashlib, hmac, json  # noqa: E401, PLC0415

    from support.sigv4 import signing_key  # noqa: PLC0415

    p = s3.generate_presigned_post(bucket, "k", ExpiresIn=300)
    fields = dict(p["fields"])
    doc = json.loads(base64.b64decode(fields["policy"]))
    doc["expiration"] = doc["expiration"].replace("T", " ")  # str(datetime) style: not ISO 8601
    fields["policy"] = base64.b64encode(json.dumps(doc).encode()).decode()
    date = fields["x-amz-credential"].split("/")[1]
    key = signing_key(server.secret_key, date, "us-east-1")
    fields["x-amz-signature"] = hmac.new(key, fields["policy"].encode(), hashlib.sha256).hexdigest()
    r = post(p["url"], fields)
    assert_s3_error(as_response(r), 400, "InvalidArgument")


def test_missing_signature_field_is_a_bad_request(s3, bucket):
    p = s3.generate_presigned_post(bucket, "k", ExpiresIn=300)
    fields = {k: v for k, v in p["fields"].items() if k.lower() not in ("x-amz-signature", "signature")}
    r = post(p["url"], fields)
    assert_s3_error(as_response(r), 400, "InvalidArgument")


def test_anonymous_form_without_policy_is_denied_in_a_private_bucket(server, s3, bucket):
    r = post(f"{server.endpoint}/{bucket}", {"key": "anon"})
    assert_s3_error(as_response(r), 403, "AccessDenied")
    expect_error(404, "NoSuchKey", s3.get_object, Bucket=bucket, Key="anon")


def test_anonymous_form_without_policy_writes_where_a_bucket_policy_lets_anyone(server, s3, make_bucket):
    # S3 takes a form with neither policy nor signature as anonymous; the bucket decides.
    name = make_bucket()
    let_anyone_put(s3, name, "drop/")
    url = f"{server.endpoint}/{name}"
    r = post(url, {"key": "drop/${filename}", "success_action_status": "201"})
    assert r.status_code == 201, r.text
    assert "<Key>drop/hello.txt</Key>" in r.text
    assert s3.get_object(Bucket=name, Key="drop/hello.txt")["Body"].read() == b"hello from a browser"
    assert_s3_error(as_response(post(url, {"key": "elsewhere"})), 403, "AccessDenied")
    # A signature without the policy it signs is a malformed form, not an anonymous one.
    r = post(url, {"key": "drop/signed", "x-amz-signature": "00" * 32})
    assert_s3_error(as_response(r), 400, "InvalidArgument")
    expect_error(404, "NoSuchKey", s3.get_object, Bucket=name, Key="drop/signed")


def test_tagging_field_tags_the_object(s3, bucket):
    tagging = ("<Tagging><TagSet><Tag><Key>team</Key><Value>web</Value></Tag>"
               "<Tag><Key>stage</Key><Value></Value></Tag></TagSet></Tagging>")
    p = s3.generate_presigned_post(bucket, "tagged", Fields={"tagging": tagging},
                                   Conditions=[{"tagging": tagging}], ExpiresIn=300)
    assert post(p["url"], p["fields"]).status_code == 204
    got = s3.get_object_tagging(Bucket=bucket, Key="tagged")["TagSet"]
    assert sorted((t["Key"], t["Value"]) for t in got) == [("stage", ""), ("team", "web")]
    bad = "<Tagging><TagSet><Tag><Key>aws:x</Key><Value>1</Value></Tag></TagSet></Tagging>"
    p = s3.generate_presigned_post(bucket, "badly-tagged", Fields={"tagging": bad},
                                   Conditions=[{"tagging": bad}], ExpiresIn=300)
    assert_s3_error(as_response(post(p["url"], p["fields"])), 400, "InvalidTag")
    expect_error(404, "NoSuchKey", s3.get_object, Bucket=bucket, Key="badly-tagged")


def test_checksum_field_is_verified_and_kept(s3, bucket):
    data = b"hello from a browser"
    good = base64.b64encode(hashlib.sha256(data).digest()).decode()
    # The checksum field needs no policy condition: it only tests the file.
    p = s3.generate_presigned_post(bucket, "summed", ExpiresIn=300)
    r = post(p["url"], {**p["fields"], "x-amz-checksum-sha256": good}, data=data)
    assert r.status_code == 204, r.text
    head = s3.head_object(Bucket=bucket, Key="summed", ChecksumMode="ENABLED")
    assert head["ChecksumSHA256"] == good
    p = s3.generate_presigned_post(bucket, "missummed", ExpiresIn=300)
    wrong = base64.b64encode(hashlib.sha256(b"other").digest()).decode()
    r = post(p["url"], {**p["fields"], "x-amz-checksum-sha256": wrong}, data=data)
    assert_s3_error(as_response(r), 400, "BadDigest")
    r = post(p["url"], {**p["fields"], "x-amz-checksum-sha256": "not base64"}, data=data)
    assert_s3_error(as_response(r), 400, "InvalidRequest")
    expect_error(404, "NoSuchKey", s3.get_object, Bucket=bucket, Key="missummed")


def test_object_lock_fields_are_refused_as_the_headers_are(s3, bucket):
    """No bucket has Object Lock, so a form asking for a retention or a legal hold is refused
    as a PutObject with those headers is, and nothing is written."""
    until = "2030-01-01T00:00:00Z"
    for key, extra in (
        ("held-mode", {"x-amz-object-lock-mode": "GOVERNANCE", "x-amz-object-lock-retain-until-date": until}),
        ("held-legal", {"x-amz-object-lock-legal-hold": "ON"}),
    ):
        p = s3.generate_presigned_post(bucket, key, Fields=extra,
                                       Conditions=[{k: v} for k, v in extra.items()], ExpiresIn=300)
        r = post(p["url"], p["fields"])
        assert_s3_error(as_response(r), 400, "InvalidRequest")
        assert "Object Lock" in r.text, r.text
        expect_error(404, "NoSuchKey", s3.get_object, Bucket=bucket, Key=key)
    # The same form without them writes.
    p = s3.generate_presigned_post(bucket, "unheld", ExpiresIn=300)
    assert post(p["url"], p["fields"]).status_code == 204
