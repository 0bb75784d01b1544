"""Access to the real services the suite runs against, as started by scripts/test.sh.

Outside CI a missing service skips the tests that need it; in CI (CI=true) it fails them,
so a green CI run always means every test ran against the real thing.
"""

from __future__ import annotations

import os

import pytest
import redis


def service_missing(name: str, hint: str):
    message = f"{name} is not available: {hint}. Run the suite with `make test`, which starts it."
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


def s3_connection() -> dict:
    """Endpoint and credentials of the test S3 server (SeaweedFS)."""
    endpoint = os.environ.get("TEST_S3_ENDPOINT_URL")
    if not endpoint:
        service_missing("S3 (SeaweedFS)", "TEST_S3_ENDPOINT_URL is not set")
    return {
        "endpoint_url": endpoint,
        "access_key_id": os.environ.get("TEST_S3_ACCESS_KEY_ID"),
        "secret_access_key": os.environ.get("TEST_S3_SECRET_ACCESS_KEY"),
        "region": os.environ.get("TEST_S3_REGION", "us-east-1"),
    }


def redis_url() -> str:
    url = os.environ.get("TEST_REDIS_URL")
    if not url:
        service_missing("Redis", "TEST_REDIS_URL is not set")
    try:
        redis.Redis.from_url(url, socket_connect_timeout=2).ping()
    except redis.RedisError as error:
        service_missing("Redis", f"{url} does not answer ({error})")
    return url
