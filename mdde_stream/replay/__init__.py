"""Replay recorded episodes from the bus: select, verify, export, re-index, re-emit.

Light to import: the environment, Minari and Elasticsearch are loaded by the modules that need them.
"""

from __future__ import annotations

from mdde_stream.bus.base import Bus
from mdde_stream.config import Settings
from mdde_stream.replay.exceptions import (
    CorruptEventError,
    IncompleteRecordingError,
    NothingSelectedError,
    ReplayError,
)
from mdde_stream.replay.recording import EpisodeRecording, StepRecord, group_episodes
from mdde_stream.replay.selection import (
    REPLAY_TOPICS,
    CorruptEvent,
    RecordedEvent,
    SelectedEvents,
    Selection,
    read_selection,
)

__all__ = [
    "REPLAY_TOPICS",
    "CorruptEvent",
    "CorruptEventError",
    "EpisodeRecording",
    "IncompleteRecordingError",
    "NothingSelectedError",
    "RecordedEvent",
    "ReplayError",
    "SelectedEvents",
    "Selection",
    "StepRecord",
    "group_episodes",
    "read_episodes",
    "read_selection",
]


def read_episodes(
    bus: Bus, selection: Selection, settings: Settings | None = None, skip_corrupt: bool = False
) -> list[EpisodeRecording]:
    """Read a selection and group it into episodes (each with its list of recording problems)."""
    return group_episodes(read_selection(bus, selection, settings, skip_corrupt=skip_corrupt))
