"""Composable index templates with explicit mappings, and the retention of dated indices.

Mappings are strict: a document with a field nobody declared is rejected (and dead-lettered by the
indexer) instead of silently growing the mapping with guessed types that Kibana then cannot
aggregate. Indices are dated by event time (``{prefix}-{kind}-YYYY.MM.DD``); retention deletes whole
indices older than N days, which is cheap and needs no licensed lifecycle feature.

Why dated indices and not data streams: a data stream keeps an explicit ``_id`` unique only within
its current backing index. Once it rolls over (by its lifecycle, by size, or by hand), a redelivered
or replayed event is written a second time into the new backing index — tested on 9.5: create
``abc``, roll over, create ``abc`` again, and the stream counts two documents. A dated index is a
function of the event's own time, so the same event always meets its earlier copy under the same
``(index, _id)`` and overwrites it, however late it comes back. Data streams also need the
data-streams module for their lifecycle and management API, which Maven Central does not publish,
so the local node could not run them as production would.
"""

from __future__ import annotations

import logging
import re
from datetime import UTC, date, datetime, timedelta
from typing import Any

from mdde_stream.config import Settings
from mdde_stream.telemetry.documents import KINDS

logger = logging.getLogger(__name__)

KEYWORD = {"type": "keyword"}
INTEGER = {"type": "integer"}
LONG = {"type": "long"}
DOUBLE = {"type": "double"}
BOOLEAN = {"type": "boolean"}

COMMON: dict[str, dict[str, Any]] = {
    "@timestamp": {"type": "date"},
    "event_id": KEYWORD,
    "schema": KEYWORD,
    "run_id": KEYWORD,
    "episode": INTEGER,
    "step": INTEGER,
}

FIELDS: dict[str, dict[str, dict[str, Any]]] = {
    "steps": {
        "accepted": INTEGER, "rejected": INTEGER, "skipped": INTEGER, "conflicts": INTEGER,
        "benchmark": BOOLEAN, "benchmark_mode": KEYWORD, "agents": INTEGER,
        "reward_total": DOUBLE, "reward_mean": DOUBLE, "terminated": BOOLEAN, "truncated": BOOLEAN,
        "throughput": DOUBLE, "throughput_first": DOUBLE, "throughput_change": DOUBLE,
    },
    "agents": {"agent": KEYWORD, "reward": DOUBLE, "action": INTEGER},
    "actions": {
        "action_event_id": KEYWORD, "agent": KEYWORD, "agent_index": INTEGER, "action_index": INTEGER,
        "kind": KEYWORD, "accepted": BOOLEAN, "conflict": BOOLEAN, "outcome": KEYWORD, "code": INTEGER,
        "valid": INTEGER, "invalid": INTEGER, "skip": INTEGER, "message": {"type": "text"},
    },
    "nodes": {"node": KEYWORD, "reads": LONG, "read_share": DOUBLE, "storage": INTEGER},
    "fragments": {"fragment": KEYWORD, "replicas": INTEGER},
    "benchmarks": {
        "request_id": KEYWORD, "source": KEYWORD, "throughput": DOUBLE, "operations": LONG,
        "total_reads": LONG, "duration_s": DOUBLE, "workers": INTEGER, "reads_per_s": DOUBLE,
        "reads_per_s_per_worker": DOUBLE, "imbalance_baseline": DOUBLE, "imbalance_current": DOUBLE,
    },
    "reads": {
        "request_id": KEYWORD, "source": KEYWORD, "node": KEYWORD, "fragment": KEYWORD,
        "reads": LONG, "read_share": DOUBLE,
    },
    "workers": {
        "request_id": KEYWORD, "worker_id": KEYWORD, "task_index": INTEGER, "task_count": INTEGER,
        "operations": LONG, "duration_s": DOUBLE, "reads_per_s": DOUBLE, "missing": LONG,
    },
    "telemetry": {"source": KEYWORD, "metric": KEYWORD, "value": DOUBLE, "tags": {"type": "object", "dynamic": True}},
}

AGGREGATABLE_TYPES = {"keyword", "integer", "long", "double", "float", "boolean", "date"}


def index_prefix_for(settings: Settings) -> str:
    """Default index prefix: the topic prefix made index-safe (``mdde`` -> ``mdde``)."""
    return re.sub(r"[^a-z0-9_-]+", "-", settings.topic_prefix.lower()).strip("-_") or "mdde"


def mapping(kind: str) -> dict[str, Any]:
    if kind not in FIELDS:
        raise KeyError(f"unknown index kind {kind!r}; known: {', '.join(KINDS)}")
    return {
        "dynamic": "strict",
        # Tag values are free-form strings: keep them keyword so they can split charts.
        "dynamic_templates": [
            {"tags_as_keywords": {"path_match": "tags.*", "mapping": {"type": "keyword", "ignore_above": 256}}}
        ],
        "properties": {**COMMON, **FIELDS[kind]},
    }


def field_type(kind: str, field: str) -> str | None:
    """The mapped type of ``field`` in ``kind``'s template, or None if the template lacks it."""
    spec = {**COMMON, **FIELDS.get(kind, {})}.get(field)
    return None if spec is None else str(spec["type"])


def index_template(prefix: str, kind: str, shards: int = 1, replicas: int = 0) -> dict[str, Any]:
    return {
        "index_patterns": [f"{prefix}-{kind}-*"],
        "priority": 200,
        "template": {
            # An explicit refresh interval keeps refreshing idle shards, so dashboards stay live.
            "settings": {"number_of_shards": shards, "number_of_replicas": replicas, "refresh_interval": "1s"},
            "mappings": mapping(kind),
        },
        "meta": {"managed_by": "mdde-stream telemetry"},
    }


def ensure_templates(es: Any, prefix: str) -> list[str]:
    """Create or update one composable index template per kind; returns the template names."""
    names = []
    for kind in KINDS:
        name = f"{prefix}-{kind}"
        es.indices.put_index_template(name=name, **index_template(prefix, kind))
        names.append(name)
    logger.info("index templates ready: %s", ", ".join(names))
    return names


def day_index(prefix: str, kind: str, day: date) -> str:
    return f"{prefix}-{kind}-{day:%Y.%m.%d}"


def ensure_day_indices(es: Any, prefix: str, now: datetime | None = None) -> list[str]:
    """Create today's and tomorrow's (UTC) indices of every kind that do not exist yet; returns them.

    Creating an index is a cluster-state update that takes from a fraction of a second to seconds
    on a busy node; done ahead of time, it stays out of the path of the first live event of a day.
    """
    from elasticsearch import BadRequestError  # the telemetry extra; mappings alone need no client

    today = (now or datetime.now(UTC)).date()
    wanted = [day_index(prefix, kind, day) for day in (today, today + timedelta(days=1)) for kind in KINDS]
    existing = set(es.indices.get(index=",".join(wanted), ignore_unavailable=True, allow_no_indices=True))
    created = []
    for name in wanted:
        if name in existing:
            continue
        try:
            es.indices.create(index=name)
        except BadRequestError as exc:  # another indexer of the group created it first
            if exc.error != "resource_already_exists_exception":
                raise
            continue
        created.append(name)
    if created:
        logger.info("created %d day indices ahead of their events", len(created))
    return created


def delete_indices(es: Any, prefix: str) -> list[str]:
    """Delete every index under ``prefix`` by name; returns the names.

    Since 8.0 a cluster refuses wildcard deletes (``action.destructive_requires_name``), so the
    names are listed first.
    """
    names = sorted(es.indices.get(index=f"{prefix}-*", ignore_unavailable=True, allow_no_indices=True))
    # Comma-joined in small groups: a URL holding hundreds of names could pass the HTTP line limit.
    for start in range(0, len(names), 50):
        es.options(ignore_status=404).indices.delete(index=",".join(names[start:start + 50]))
    return names


def delete_templates(es: Any, prefix: str) -> None:
    for kind in KINDS:
        es.options(ignore_status=404).indices.delete_index_template(name=f"{prefix}-{kind}")


_DATED = re.compile(r"^(?P<kind>[a-z]+)-(?P<day>\d{4}\.\d{2}\.\d{2})$")


def dated_indices(es: Any, prefix: str) -> dict[str, date]:
    """Our indices under ``prefix`` and the day each one holds."""
    found = es.indices.get(index=f"{prefix}-*", ignore_unavailable=True, allow_no_indices=True)
    out: dict[str, date] = {}
    for name in found:
        match = _DATED.match(name[len(prefix) + 1 :])
        if match and match["kind"] in KINDS:
            out[name] = datetime.strptime(match["day"], "%Y.%m.%d").date()
    return out


def apply_retention(es: Any, prefix: str, days: int, today: date | None = None) -> list[str]:
    """Delete dated indices whose day is more than ``days`` days before ``today``; returns their names."""
    if days < 1:
        raise ValueError(f"retention must keep at least 1 day, got {days}")
    cutoff = (today or datetime.now(UTC).date()) - timedelta(days=days)
    old = sorted(name for name, day in dated_indices(es, prefix).items() if day < cutoff)
    for name in old:
        es.options(ignore_status=404).indices.delete(index=name)
    if old:
        logger.info("retention (%d days): deleted %s", days, ", ".join(old))
    return old
