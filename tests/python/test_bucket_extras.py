"""Issue 4 item 6: GetBucketLocation, ownership controls, public access block and request
payment answer as AWS does for a bucket owner; the configurations Sluice keeps none of (website,
object lock, logging, notification, acceleration) answer as for a bucket without them."""

from datetime import datetime, timedelta, timezone

from support.util import expect_error, list_all_keys, unique_name


def test_ownership_controls(s3, bucket):
    got = s3.get_bucket_ownership_controls(Bucket=bucket)["OwnershipControls"]["Rules"]
    assert got == [{"ObjectOwnership": "BucketOwnerEnforced"}]
    s3.put_bucket_ownership_controls(
        Bucket=bucket, OwnershipControls={"Rules": [{"ObjectOwnership": "ObjectWriter"}]}
    )
    got = s3.get_bucket_ownership_controls(Bucket=bucket)["OwnershipControls"]["Rules"]
    assert got == [{"ObjectOwnership": "ObjectWriter"}]
    s3.delete_bucket_ownership_controls(Bucket=bucket)
    expect_error(404, "OwnershipControlsNotFoundError", s3.get_bucket_ownership_controls, Bucket=bucket)


def test_public_access_block(s3, bucket):
    cfg = s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
    assert cfg == {
        "BlockPublicAcls": True, "IgnorePublicAcls": True,
        "BlockPublicPolicy": True, "RestrictPublicBuckets": True,
    }
    s3.put_public_access_block(
        Bucket=bucket,
        PublicAccessBlockConfiguration={"BlockPublicAcls": False, "IgnorePublicAcls": True,
                                        "BlockPublicPolicy": False, "RestrictPublicBuckets": True},
    )
    cfg = s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
    assert cfg["BlockPublicAcls"] is False and cfg["IgnorePublicAcls"] is True
    s3.delete_public_access_block(Bucket=bucket)
    expect_error(404, "NoSuchPublicAccessBlockConfiguration", s3.get_public_access_block, Bucket=bucket)


def test_request_payment(s3, bucket):
    assert s3.get_bucket_request_payment(Bucket=bucket)["Payer"] == "BucketOwner"
    s3.put_bucket_request_payment(Bucket=bucket, RequestPaymentConfiguration={"Payer": "Requester"})
    assert s3.get_bucket_request_payment(Bucket=bucket)["Payer"] == "Requester"


def test_bucket_location(s3, bucket):
    assert s3.get_bucket_location(Bucket=bucket)["LocationConstraint"] is None


def test_other_users_cannot_read_bucket_settings(server, bucket, make_user):
    other = make_user()
    client = server.client(other["access_key"], other["secret_key"])
    expect_error(403, "AccessDenied", client.get_bucket_ownership_controls, Bucket=bucket)
    expect_error(403, "AccessDenied", client.put_bucket_cors, Bucket=bucket,
                 CORSConfiguration={"CORSRules": [{"AllowedOrigins": ["*"], "AllowedMethods": ["GET"]}]})


def test_configurations_sluice_keeps_none_of(s3, bucket):
    """Website, object lock, logging, notification and acceleration cannot be set on
    Sluice: reading one answers as AWS does for a bucket without it, deleting one succeeds, and
    setting one is refused as not implemented (and leaves none behind)."""
    e = expect_error(404, "NoSuchWebsiteConfiguration", s3.get_bucket_website, Bucket=bucket)
    assert e.response["Error"].get("BucketName") == bucket, e.response["Error"]
    expect_error(404, "ObjectLockConfigurationNotFoundError", s3.get_object_lock_configuration, Bucket=bucket)
    logging = s3.get_bucket_logging(Bucket=bucket)
    assert logging["ResponseMetadata"]["HTTPStatusCode"] == 200 and "LoggingEnabled" not in logging
    notification = s3.get_bucket_notification_configuration(Bucket=bucket)
    assert notification["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert not {"TopicConfigurations", "QueueConfigurations", "LambdaFunctionConfigurations",
                "EventBridgeConfiguration"} & set(notification), notification
    accelerate = s3.get_bucket_accelerate_configuration(Bucket=bucket)
    assert accelerate["ResponseMetadata"]["HTTPStatusCode"] == 200 and "Status" not in accelerate
    assert s3.delete_bucket_website(Bucket=bucket)["ResponseMetadata"]["HTTPStatusCode"] == 204
    expect_error(501, "NotImplemented", s3.put_bucket_website, Bucket=bucket,
                 WebsiteConfiguration={"IndexDocument": {"Suffix": "index.html"}})
    expect_error(404, "NoSuchWebsiteConfiguration", s3.get_bucket_website, Bucket=bucket)


def test_unsupported_configurations_need_the_bucket_and_the_right(s3, server, bucket, make_user):
    missing = bucket + "-missing"
    expect_error(404, "NoSuchBucket", s3.get_bucket_lifecycle_configuration, Bucket=missing)
    expect_error(404, "NoSuchBucket", s3.get_bucket_logging, Bucket=missing)
    expect_error(404, "NoSuchBucket", s3.delete_bucket_website, Bucket=missing)
    other = make_user()
    client = server.client(other["access_key"], other["secret_key"])
    expect_error(403, "AccessDenied", client.get_bucket_lifecycle_configuration, Bucket=bucket)
    expect_error(403, "AccessDenied", client.get_bucket_logging, Bucket=bucket)
    expect_error(403, "AccessDenied", client.delete_bucket_lifecycle, Bucket=bucket)


def test_object_lock_is_refused_not_ignored(s3, bucket):
    """Object Lock needs versioning, which Sluice lacks: a locked bucket is refused, and a
    retention or legal hold on a write is refused as AWS refuses it on a bucket without Object
    Lock, instead of storing an object without the protection asked for."""
    locked = unique_name("locked")
    e = expect_error(501, "NotImplemented", s3.create_bucket, Bucket=locked, ObjectLockEnabledForBucket=True)
    assert e.response["Error"].get("Header") == "x-amz-bucket-object-lock-enabled", e.response["Error"]
    assert locked not in [b["Name"] for b in s3.list_buckets()["Buckets"]]
    until = datetime.now(timezone.utc) + timedelta(days=1)
    expect_error(400, "InvalidRequest", s3.put_object, Bucket=bucket, Key="held", Body=b"x",
                 ObjectLockMode="GOVERNANCE", ObjectLockRetainUntilDate=until)
    expect_error(400, "InvalidRequest", s3.put_object, Bucket=bucket, Key="held", Body=b"x",
                 ObjectLockLegalHoldStatus="ON")
    expect_error(400, "InvalidRequest", s3.create_multipart_upload, Bucket=bucket, Key="held",
                 ObjectLockMode="COMPLIANCE", ObjectLockRetainUntilDate=until)
    s3.put_object(Bucket=bucket, Key="source", Body=b"y")
    expect_error(400, "InvalidRequest", s3.copy_object, Bucket=bucket, Key="held",
                 CopySource={"Bucket": bucket, "Key": "source"}, ObjectLockLegalHoldStatus="ON")
    assert list_all_keys(s3, bucket) == ["source"]
    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []
    # Without the headers the same writes work, and a bucket may say Object Lock is off.
    s3.put_object(Bucket=bucket, Key="held", Body=b"x")
    unlocked = unique_name("unlocked")
    s3.create_bucket(Bucket=unlocked, ObjectLockEnabledForBucket=False)
    s3.delete_bucket(Bucket=unlocked)
