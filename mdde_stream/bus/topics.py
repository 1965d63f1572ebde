"""The project's topics and their partition counts, created explicitly (never auto-created)."""

from __future__ import annotations

from mdde_stream.bus.base import Bus, TopicSpec
from mdde_stream.config import Settings
from mdde_stream.events import EVENT_TYPES

# Short names; the full name is ``{settings.topic_prefix}.{short}`` (``mdde.actions`` by default).
SHORT_NAMES: tuple[str, ...] = tuple(dict.fromkeys(cls.TOPIC for cls in EVENT_TYPES.values()))


def topic_specs(settings: Settings) -> list[TopicSpec]:
    specs = []
    for short in SHORT_NAMES:
        partitions = settings.benchmark_task_partitions if short == "benchmark.tasks" else settings.partitions
        specs.append(TopicSpec(settings.topic(short), partitions))
    return specs


def ensure_topics(bus: Bus, settings: Settings) -> list[TopicSpec]:
    """Create every project topic that is missing; returns the full layout."""
    specs = topic_specs(settings)
    bus.create_topics(specs)
    return specs
