"""The registry: allocation state (memory or Redis), action rules, shuffle queue, snapshot/reset."""

from mdde_stream.registry.base import AllocationStore, StoreError
from mdde_stream.registry.codes import Code, Move, Verdict, validate
from mdde_stream.registry.fragmenter import fragment_layout
from mdde_stream.registry.memory import MemoryStore
from mdde_stream.registry.registry import (
    SERVICE_REGISTRY_PREFIX,
    Registry,
    attach_registry,
    open_data_nodes,
    open_registry,
    open_store,
    run_prefix,
)


def __getattr__(name: str) -> object:
    # RedisStore imports redis-py; load it only when asked for.
    if name == "RedisStore":
        from mdde_stream.registry.redis_store import RedisStore

        return RedisStore
    raise AttributeError(name)


__all__ = [
    "SERVICE_REGISTRY_PREFIX",
    "attach_registry",
    "run_prefix",
    "AllocationStore",
    "Code",
    "MemoryStore",
    "Move",
    "RedisStore",
    "Registry",
    "StoreError",
    "Verdict",
    "fragment_layout",
    "open_data_nodes",
    "open_registry",
    "open_store",
    "validate",
]
