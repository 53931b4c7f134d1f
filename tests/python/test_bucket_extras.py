"""Issue 4 item 6: GetBucketLocation, ownership controls, public access block and request
payment answer as AWS does for a bucket owner."""

from support.util import expect_error


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
