"""What the client scripts of this folder share: a check that names what failed, and
the DynamoDB error code a call raised."""

from botocore.exceptions import ClientError


def check(cond, what):
    if not cond:
        raise AssertionError(what)


def error_code(call):
    """The `__type` name (`ValidationException`, …) of the ClientError `call` raises."""
    try:
        call()
    except ClientError as e:
        return e.response["Error"]["Code"]
    raise AssertionError("expected a ClientError")
