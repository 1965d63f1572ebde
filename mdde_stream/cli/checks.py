"""Checks every command runs on its input before any work starts, so a bad option costs no time.

Each check fails the same way: one line on stderr naming the option or field, exit code 2, no
traceback. Messages are printed without console markup, so text such as ``mdde-stream[telemetry]``
reaches the user intact.
"""

from __future__ import annotations

import importlib
import sys
import tempfile
from pathlib import Path
from typing import NoReturn

import typer

EXIT_USAGE = 2


def fail(message: str, code: int = EXIT_USAGE) -> NoReturn:
    """Print ``message`` as one plain line on stderr and exit with ``code``."""
    print(f"error: {' '.join(message.split())}", file=sys.stderr)
    raise typer.Exit(code)


def writable_dir(path: Path, option: str) -> Path:
    """Create ``path`` if needed and prove a file can be written there, before any long work."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".write-check-"):
            pass
    except OSError as exc:
        fail(f"{option} {path}: not writable ({exc.strerror or exc})")
    return path


def require_extra(module: str, extra: str, command: str) -> None:
    """Exit 2 naming the extra to install when ``module`` cannot be imported."""
    try:
        importlib.import_module(module)
    except ImportError as exc:
        fail(f"{command} needs the '{extra}' extra: pip install 'mdde-stream[{extra}]' (missing: {exc.name or exc})")


def require_plots() -> None:
    """Exit 2 naming the 'plots' extra when Altair or vl-convert is missing, before the work that ends in plots."""
    from mdde_stream.plots import PlotsUnavailable, altair

    try:
        altair()
    except PlotsUnavailable as exc:
        fail(str(exc))


def reachable_redis(url: str, option: str, timeout_s: float = 3.0) -> str:
    """PING the Redis at ``url``; an unreachable one is a bad option, not a traceback later."""
    import redis

    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=timeout_s, socket_timeout=timeout_s)
        try:
            client.ping()
        finally:
            client.close()
    except (redis.RedisError, ValueError, OSError) as exc:
        fail(f"{option} {url}: Redis not reachable ({exc})")
    return url


def positive(value: float | None, option: str) -> None:
    """Learning rates and similar must be > 0 (typer's ``min`` allows zero)."""
    if value is not None and not value > 0:
        fail(f"{option} must be > 0, got {value}")



def known_workload(name: str, option: str = "--workload") -> str:
    """A thesis preset or a distribution name the benchmark knows, checked before any setup."""
    from mdde_stream.env.benchmarking import workload_spec

    try:
        workload_spec(name, records=1, operations=None, clients=1)
    except ValueError as exc:
        fail(f"{option}: {exc}")
    return name


def reachable_state() -> None:
    """The registry Redis of ``MDDE_STATE`` (when one is configured) answers, checked before setup."""
    from mdde_stream.config import get_settings

    url = get_settings().state
    if url.startswith(("redis://", "rediss://", "unix://")):
        reachable_redis(url, "MDDE_STATE")
