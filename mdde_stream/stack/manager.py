"""Start, inspect and stop the local stack: Redis (registry + data nodes), Kafka, Elasticsearch.

`start_stack` is idempotent: services already up are left alone. Slow preparation (Maven
downloads for Kafka and Elasticsearch) runs in parallel, then every missing process is launched
before any is waited on, so the JVMs boot side by side instead of one after another.
"""

from __future__ import annotations

import fcntl
import logging
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

from mdde_stream.config import Settings, get_settings
from mdde_stream.stack.base import HOST, Progress, Service, ServiceStatus, StackLayout, _quiet
from mdde_stream.stack.elasticsearch_node import ElasticsearchNode
from mdde_stream.stack.kafka_broker import KafkaBroker
from mdde_stream.stack.process import StackError
from mdde_stream.stack.redis_servers import redis_services, stray_data_nodes

logger = logging.getLogger(__name__)

GROUPS = ("redis", "kafka", "elasticsearch")
_ALIASES = {"es": "elasticsearch", "elastic": "elasticsearch", "redis-server": "redis"}


def parse_groups(services: Iterable[str] | str | None) -> tuple[str, ...]:
    """Normalise ``"redis,kafka"`` / ``["es"]`` / None (all) to known group names, in stack order."""
    if services is None:
        return GROUPS
    items = services.split(",") if isinstance(services, str) else list(services)
    wanted = {_ALIASES.get(s.strip().lower(), s.strip().lower()) for s in items if s.strip()}
    unknown = wanted - set(GROUPS)
    if unknown:
        raise StackError(f"unknown stack service(s) {sorted(unknown)}; choose from {', '.join(GROUPS)}")
    return tuple(g for g in GROUPS if g in wanted) or GROUPS


def layout_of(settings: Settings) -> StackLayout:
    return StackLayout(settings.stack_dir.expanduser().resolve())


@contextmanager
def _exclusive(layout: StackLayout) -> Iterator[None]:
    """One `up`/`down` at a time per stack dir: two concurrent `up`s would race for the ports."""
    layout.run.mkdir(parents=True, exist_ok=True)
    with (layout.run / ".lock").open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def build_services(settings: Settings, groups: Iterable[str] = GROUPS) -> list[Service]:
    """The services of the selected groups, in start order."""
    layout = layout_of(settings)
    selected = set(groups)
    services: list[Service] = []
    if "redis" in selected:
        services += redis_services(
            layout, settings.redis_registry_port, settings.redis_data_base_port, settings.stack_data_nodes,
            settings.stack_registry_fsync,
        )
    if "kafka" in selected:
        services.append(KafkaBroker(layout, settings.kafka_port, settings.kafka_controller_port, settings.partitions))
    if "elasticsearch" in selected:
        services.append(ElasticsearchNode(layout, settings.elasticsearch_port, settings.stack_java_home))
    return services


def start_stack(
    settings: Settings | None = None,
    services: Iterable[str] | str | None = None,
    progress: Progress = _quiet,
) -> dict[str, ServiceStatus]:
    """Bring the selected services up and wait until each answers; raise StackError otherwise.

    Returns the final status of every selected service.
    """
    settings = settings or get_settings()
    selected = build_services(settings, parse_groups(services))
    with _exclusive(layout_of(settings)):
        return _start(selected, progress)


def _start(selected: list[Service], progress: Progress) -> dict[str, ServiceStatus]:
    started = time.monotonic()

    # A server left running by an older version of this stack (e.g. Elasticsearch 7.17) is
    # restarted, so `stack up` after an upgrade runs what the code now names.
    for service in selected:
        reason = service.outdated() if service.pid() is not None else None
        if reason:
            progress(f"{service.name}: restarting ({reason})")
            service.stop()

    pending = [s for s in selected if not (s.pid() is not None and s.healthy())]
    for service in selected:
        if service not in pending:
            progress(f"{service.name}: already running (pid {service.pid()}, port {service.port})")

    # 0. Refuse before starting anything if a port we need is held by a foreign process.
    conflicts = [s.port_conflict() for s in pending if s.pid() is None]
    if any(conflicts):
        raise StackError("\n".join(c for c in conflicts if c))

    # 1. Prepare (config files, downloads, storage format) - the slow JVM ones in parallel.
    with ThreadPoolExecutor(max_workers=3) as pool:
        futures = {s.name: pool.submit(s.prepare, progress) for s in pending if s.pid() is None}
        failures = {name: f.exception() for name, f in futures.items() if f.exception() is not None}
    if failures:
        raise StackError("\n\n".join(str(exc) for exc in failures.values()))

    # 2. Launch every missing process before waiting on any.
    for service in pending:
        pid = service.launch()
        progress(f"{service.name}: starting (pid {pid}, {service.url})")

    # 3. Wait for health, collecting every failure so one report names them all.
    errors: list[str] = []
    for service in pending:
        t0 = time.monotonic()
        try:
            service.wait_healthy()
        except StackError as exc:
            errors.append(str(exc))
            progress(f"{service.name}: FAILED")
            continue
        progress(f"{service.name}: healthy after {time.monotonic() - t0:.1f} s")
    if errors:
        raise StackError("\n\n".join(errors))
    logger.debug("stack up in %.1f s (%d services)", time.monotonic() - started, len(selected))
    return {s.name: s.status() for s in selected}


def _all_known_services(settings: Settings, groups: Iterable[str]) -> list[Service]:
    services = build_services(settings, groups)
    if "redis" in set(groups):
        services += stray_data_nodes(layout_of(settings), {s.name for s in services})
    return services


def stack_status(
    settings: Settings | None = None, services: Iterable[str] | str | None = None
) -> dict[str, dict[str, Any]]:
    """``{service name: {"group", "state", "pid", "port", "url", "log"}}``; state is up/down/unhealthy."""
    settings = settings or get_settings()
    return {s.name: s.status().as_dict() for s in _all_known_services(settings, parse_groups(services))}


def stop_stack(
    settings: Settings | None = None,
    services: Iterable[str] | str | None = None,
    wipe: bool = False,
    progress: Progress = _quiet,
) -> list[str]:
    """Stop the selected services (reverse start order); returns the names that were running.

    With ``wipe`` the services' data and config are deleted too (the jar cache is kept).
    """
    settings = settings or get_settings()
    stopped: list[str] = []
    with _exclusive(layout_of(settings)):
        for service in reversed(_all_known_services(settings, parse_groups(services))):
            pid = service.pid()
            if service.stop():
                stopped.append(service.name)
                progress(f"{service.name}: stopped (pid {pid})")
            if wipe:
                service.wipe()
                progress(f"{service.name}: data wiped")
    return stopped


def stack_env(settings: Settings | None = None) -> dict[str, str]:
    """The ``MDDE_*`` variables that point the library at the local stack."""
    settings = settings or get_settings()
    data_ports = range(settings.redis_data_base_port, settings.redis_data_base_port + settings.stack_data_nodes)
    return {
        "MDDE_BUS": f"kafka://{HOST}:{settings.kafka_port}",
        "MDDE_STATE": f"redis://{HOST}:{settings.redis_registry_port}/0",
        "MDDE_DATA_NODES": ",".join(f"redis://{HOST}:{port}/0" for port in data_ports),
        "MDDE_ELASTICSEARCH": f"http://{HOST}:{settings.elasticsearch_port}",
    }
