"""Shared fixtures: real services come from the running local stack, never from mocks.

CI starts the stack (``mdde-stream stack up``) and exports its ``MDDE_*`` URLs before pytest.
A test that needs a service which is not reachable fails with a message saying how to start it;
it is never skipped, so a green run always means the real servers were exercised.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from mdde_stream.config import Settings
from mdde_stream.registry.testing import ServiceUnavailable, data_node_urls, redis_state_url

__all__ = ["data_node_urls", "require_elasticsearch", "require_kafka", "require_redis"]
from mdde_stream.registry.testing import require_redis as _require_redis

_STACK = Settings()  # the local stack's ports: the URLs below are where `mdde-stream stack up` listens
DEFAULT_KAFKA = f"kafka://127.0.0.1:{_STACK.kafka_port}"
DEFAULT_ES = f"http://127.0.0.1:{_STACK.elasticsearch_port}"

_HOW = "start the local stack first: `mdde-stream stack up` (see README)"


def kafka_url() -> str:
    return os.environ.get("MDDE_BUS") or DEFAULT_KAFKA


def redis_url() -> str:
    return redis_state_url()


def elasticsearch_url() -> str:
    return os.environ.get("MDDE_ELASTICSEARCH") or DEFAULT_ES




def require_kafka() -> str:
    from confluent_kafka.admin import AdminClient

    url = kafka_url()
    try:
        AdminClient({"bootstrap.servers": url.removeprefix("kafka://")}).list_topics(timeout=5)
    except Exception as exc:  # noqa: BLE001 - any failure means "not reachable"
        pytest.fail(f"Kafka at {url} is not reachable ({exc}); {_HOW}", pytrace=False)
    return url


def require_redis(url: str | None = None) -> str:
    """The Redis URL, after a ping (the library's one check, turned into a test failure)."""
    url = url or redis_url()
    try:
        _require_redis(url, what="Redis").close()
    except ServiceUnavailable as exc:
        pytest.fail(str(exc), pytrace=False)
    return url


def require_elasticsearch(url: str | None = None) -> str:
    """The Elasticsearch URL, after a real request to it; fails (never skips) when it does not answer."""
    import json
    import urllib.request

    url = url or elasticsearch_url()
    try:
        with urllib.request.urlopen(f"{url.rstrip('/')}/_cluster/health", timeout=5) as response:
            status = json.load(response).get("status")
    except Exception as exc:  # noqa: BLE001
        pytest.fail(f"Elasticsearch at {url} is not reachable ({exc}); {_HOW}", pytrace=False)
    if status not in ("green", "yellow"):
        pytest.fail(f"Elasticsearch at {url} is {status}; {_HOW}", pytrace=False)
    return url


@pytest.fixture
def unique() -> str:
    """A fresh name fragment for topics, groups and key prefixes, so tests never share state."""
    return uuid.uuid4().hex[:12]


@pytest.fixture
def embedded_settings(tmp_path: Path) -> Iterator[Settings]:
    yield Settings(data_dir=tmp_path, bus="", state="", data_nodes="", elasticsearch="")
