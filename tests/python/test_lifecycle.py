"""Bucket lifecycle rules: the configuration is checked and answered as S3 does, objects carry
`x-amz-expiration`, and a server whose lifecycle day lasts two seconds really removes what its
rules expire (and only that) and aborts the uploads they abort."""

import time
from datetime import datetime, timedelta, timezone
from email.utils import parsedate_to_datetime

import requests

from support.util import expect_error, unique_name


def rules_of(s3, bucket):
    return s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]


def test_configuration_round_trips(s3, bucket):
    rules = [
        {"ID": "logs", "Status": "Enabled", "Filter": {"Prefix": "logs/"}, "Expiration": {"Days": 7}},
        {"ID": "tagged-big", "Status": "Disabled",
         "Filter": {"And": {"Prefix": "data/", "Tags": [{"Key": "class", "Value": "tmp"}],
                            "ObjectSizeGreaterThan": 1024}},
         "Expiration": {"Date": datetime(2099, 11, 10, tzinfo=timezone.utc)}},
        {"ID": "uploads", "Status": "Enabled", "Prefix": "up/",
         "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 2},
         "NoncurrentVersionExpiration": {"NoncurrentDays": 3}},
        {"ID": "small", "Status": "Enabled", "Filter": {"ObjectSizeLessThan": 10},
         "Expiration": {"ExpiredObjectDeleteMarker": True}},
    ]
    s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": rules})
    got = rules_of(s3, bucket)
    assert got == rules, got
    # A rule given without an ID gets one.
    s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": [
        {"Status": "Enabled", "Filter": {"Prefix": ""}, "Expiration": {"Days": 1}}]})
    [only] = rules_of(s3, bucket)
    assert only["ID"] and only["Expiration"] == {"Days": 1} and only["Filter"] == {"Prefix": ""}
    assert s3.delete_bucket_lifecycle(Bucket=bucket)["ResponseMetadata"]["HTTPStatusCode"] == 204
    e = expect_error(404, "NoSuchLifecycleConfiguration", s3.get_bucket_lifecycle_configuration,
                     Bucket=bucket)
    assert e.response["Error"].get("BucketName") == bucket


def test_bad_rules_are_refused_and_keep_the_old_ones(s3, bucket):
    good = {"ID": "keep", "Status": "Enabled", "Filter": {"Prefix": "a/"}, "Expiration": {"Days": 5}}
    s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": [good]})

    def refused(status, code, *rules):
        expect_error(status, code, s3.put_bucket_lifecycle_configuration, Bucket=bucket,
                     LifecycleConfiguration={"Rules": list(rules)})

    def rule(**kw):
        return {"ID": "r", "Status": "Enabled", "Filter": {"Prefix": "p/"}, **kw}

    refused(400, "InvalidArgument", rule(ID="a" * 256, Expiration={"Days": 1}))
    refused(400, "InvalidArgument", rule(Expiration={"Days": 1}), rule(Expiration={"Days": 2}))
    refused(400, "MalformedXML", rule(Status="invalid", Expiration={"Days": 1}))
    refused(400, "InvalidArgument", rule(Expiration={"Days": 0}))
    refused(400, "InvalidArgument",
            rule(Expiration={"Date": datetime(2099, 11, 10, 12, tzinfo=timezone.utc)}))
    refused(400, "InvalidArgument", rule(AbortIncompleteMultipartUpload={"DaysAfterInitiation": 0}))
    refused(400, "InvalidRequest", rule())
    refused(400, "InvalidRequest",
            {"ID": "t", "Status": "Enabled", "Filter": {"Tag": {"Key": "k", "Value": "v"}},
             "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1}})
    # Sluice never moves objects between storage classes: a transition is refused, not ignored.
    refused(501, "NotImplemented",
            rule(Transitions=[{"Days": 30, "StorageClass": "GLACIER"}], Expiration={"Days": 60}))
    assert rules_of(s3, bucket) == [good]


def test_lifecycle_needs_the_right(server, bucket, make_user):
    other = make_user()
    client = server.client(other["access_key"], other["secret_key"])
    rule = {"ID": "x", "Status": "Enabled", "Filter": {"Prefix": ""}, "Expiration": {"Days": 1}}
    expect_error(403, "AccessDenied", client.put_bucket_lifecycle_configuration, Bucket=bucket,
                 LifecycleConfiguration={"Rules": [rule]})
    expect_error(404, "NoSuchBucket", server.client().put_bucket_lifecycle_configuration,
                 Bucket=bucket + "-missing", LifecycleConfiguration={"Rules": [rule]})


def expiry_of(response):
    header = response["ResponseMetadata"]["HTTPHeaders"].get("x-amz-expiration")
    if header is None:
        return None
    date_part, rule_part = header.split(", rule-id=")
    assert date_part.startswith('expiry-date="') and date_part.endswith('"'), header
    return parsedate_to_datetime(date_part[len('expiry-date="'):-1]), rule_part.strip('"')


def test_objects_carry_their_expiry(s3, bucket):
    s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": [
        {"ID": "logs rule", "Status": "Enabled", "Filter": {"Prefix": "logs/"}, "Expiration": {"Days": 3}},
        {"ID": "soon", "Status": "Enabled", "Filter": {"And": {"Prefix": "logs/", "Tags": [
            {"Key": "keep", "Value": "no"}]}}, "Expiration": {"Days": 1}},
        {"ID": "off", "Status": "Disabled", "Filter": {"Prefix": ""}, "Expiration": {"Days": 1}},
    ]})
    put = s3.put_object(Bucket=bucket, Key="logs/a", Body=b"x")
    head = s3.head_object(Bucket=bucket, Key="logs/a")
    # S3: the write time plus the days, rounded up to the next midnight UTC.
    written = head["LastModified"].astimezone(timezone.utc)
    midnight = (written + timedelta(days=3)).replace(hour=0, minute=0, second=0, microsecond=0)
    expected = (midnight + timedelta(days=1), "logs%20rule")
    assert expiry_of(put) == expected
    assert expiry_of(head) == expected
    assert expiry_of(s3.get_object(Bucket=bucket, Key="logs/a")) == expected
    # The earliest matching rule answers.
    s3.put_object(Bucket=bucket, Key="logs/b", Body=b"x", Tagging="keep=no")
    head = s3.head_object(Bucket=bucket, Key="logs/b")
    written = head["LastModified"].astimezone(timezone.utc)
    midnight = (written + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    assert expiry_of(head) == (midnight + timedelta(days=1), "soon")
    # No enabled rule matches: no header.
    assert expiry_of(s3.put_object(Bucket=bucket, Key="other", Body=b"x")) is None
    assert expiry_of(s3.head_object(Bucket=bucket, Key="other")) is None


def keys_of(s3, bucket):
    return {o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])}


def test_rules_remove_what_they_expire_and_nothing_else(start_server):
    # A lifecycle day of two seconds, swept every second.
    srv = start_server(extra_env={"SLUICE_LIFECYCLE_DAY_SECS": "2",
                                  "SLUICE_LIFECYCLE_INTERVAL_SECS": "1"})
    s3 = srv.client()
    bucket = unique_name("lc")
    s3.create_bucket(Bucket=bucket)
    today = datetime.now(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
    s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": [
        {"ID": "tmp", "Status": "Enabled", "Filter": {"Prefix": "tmp/"}, "Expiration": {"Days": 1}},
        {"ID": "tagged", "Status": "Enabled",
         "Filter": {"And": {"Prefix": "t/", "Tags": [{"Key": "k", "Value": "v"}]}},
         "Expiration": {"Days": 1}},
        {"ID": "big", "Status": "Enabled",
         "Filter": {"And": {"Prefix": "s/", "ObjectSizeGreaterThan": 100}}, "Expiration": {"Days": 1}},
        {"ID": "dated", "Status": "Enabled", "Filter": {"Prefix": "old/"}, "Expiration": {"Date": today}},
        {"ID": "off", "Status": "Disabled", "Filter": {"Prefix": "keep/"}, "Expiration": {"Days": 1}},
        {"ID": "uploads", "Status": "Enabled", "Filter": {"Prefix": "up/"},
         "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1}},
    ]})
    doomed = {"tmp/a", "tmp/deep/b", "t/tagged", "s/big", "old/x"}
    kept = {"t/untagged", "s/small", "keep/a", "other/tmp/a", "up/done"}
    for key in sorted(doomed | kept):
        body = b"x" * (200 if key == "s/big" else 10)
        s3.put_object(Bucket=bucket, Key=key, Body=body,
                      **({"Tagging": "k=v"} if key == "t/tagged" else {}))
    stale = s3.create_multipart_upload(Bucket=bucket, Key="up/stale")["UploadId"]
    elsewhere = s3.create_multipart_upload(Bucket=bucket, Key="down/open")["UploadId"]
    # When each doomed object is due, by its own x-amz-expiration: a one-day rule (two seconds
    # here) expires it 2-4 s after its write; the dated rule's date has passed.
    due = {}
    for key in doomed:
        expiry = expiry_of(s3.head_object(Bucket=bucket, Key=key))
        assert expiry is not None, key
        due[key] = expiry[0]
    now = datetime.now(timezone.utc)
    assert all(due[k] > now for k in doomed - {"old/x"}), (due, now)
    assert due["old/x"] <= now
    started = next(u["Initiated"] for u in s3.list_multipart_uploads(Bucket=bucket)["Uploads"]
                   if u["UploadId"] == stale)

    def uploads():
        return {u["UploadId"] for u in s3.list_multipart_uploads(Bucket=bucket).get("Uploads", [])}

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and (keys_of(s3, bucket) & doomed or stale in uploads()):
        now = datetime.now(timezone.utc)
        # Nothing goes before it is due (a second of slack for the HTTP date's precision).
        gone = doomed - keys_of(s3, bucket)
        assert all(due[k] <= now + timedelta(seconds=1) for k in gone), (gone, due, now)
        if stale not in uploads():
            assert now >= started + timedelta(seconds=1), (started, now)
        time.sleep(0.25)
    assert keys_of(s3, bucket) == kept
    assert uploads() == {elsewhere}
    expect_error(404, "NoSuchUpload", s3.list_parts, Bucket=bucket, Key="up/stale", UploadId=stale)
    # Several more sweeps later, what no rule expires is still there.
    time.sleep(3)
    assert keys_of(s3, bucket) == kept
    metrics = requests.get(f"{srv.endpoint}/_sluice/metrics", timeout=10).text
    assert "sluice_lifecycle_objects_expired_total 5\n" in metrics, metrics
    assert "sluice_lifecycle_uploads_aborted_total 1\n" in metrics, metrics
