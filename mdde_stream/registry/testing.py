"""Helpers for tests that need the real services: find them from settings, fail loudly if absent.

A test that needs Redis and cannot reach it must fail with a message that says which server and
which variable to set, never skip: a skipped real-service test is a hole in CI nobody notices.
"""

from __future__ import annotations

import os
import uuid

import redis

from mdde_stream.config import Settings


def _stack_urls() -> tuple[str, str]:
    """The local stack's registry and data-node URLs, from the ports ``Settings`` gives the stack."""
    s = Settings()
    nodes = range(s.redis_data_base_port, s.redis_data_base_port + s.stack_data_nodes)
    return f"redis://127.0.0.1:{s.redis_registry_port}/0", ",".join(f"redis://127.0.0.1:{p}/0" for p in nodes)


DEFAULT_STATE, DEFAULT_DATA_NODES = _stack_urls()


class ServiceUnavailable(AssertionError):
    """A real service the test needs is not reachable."""


def redis_state_url() -> str:
    """The registry Redis from ``MDDE_STATE`` (a redis:// URL), else the local stack's default."""
    url = os.environ.get("MDDE_STATE", "")
    return url if url.startswith(("redis://", "rediss://", "unix://")) else DEFAULT_STATE


def data_node_urls() -> list[str]:
    raw = os.environ.get("MDDE_DATA_NODES", "") or DEFAULT_DATA_NODES
    return [u.strip() for u in raw.split(",") if u.strip()]


def require_redis(url: str, what: str = "registry Redis", variable: str = "MDDE_STATE") -> redis.Redis:
    client = redis.Redis.from_url(url, socket_connect_timeout=3, socket_timeout=10)
    try:
        client.ping()
    except redis.RedisError as exc:
        raise ServiceUnavailable(
            f"{what} at {url} is not reachable ({exc}); start the local stack "
            f"(`python -m mdde_stream.stack up`) or point {variable} at a running server"
        ) from None
    return client


def unique_prefix(kind: str = "test") -> str:
    """A key prefix no other test run uses, so runs can share one Redis."""
    return f"{kind}:{uuid.uuid4().hex[:12]}"
