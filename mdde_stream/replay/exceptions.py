"""Errors of the replay package; each names what is missing or broken, so a user can act on it."""

from __future__ import annotations

from mdde_stream.errors import MddeError


class ReplayError(MddeError, RuntimeError):
    """A recording could not be selected, read or replayed."""


class CorruptEventError(ReplayError):
    """A selected record is not a valid event; replay stops unless asked to skip corrupt events."""

    def __init__(self, topic: str, partition: int, offset: int, reason: str) -> None:
        super().__init__(
            f"corrupt event at {topic}[{partition}]@{offset}: {reason} "
            "(rerun with --skip-corrupt to skip it; the replay will then report what it lacks)"
        )
        self.topic = topic
        self.partition = partition
        self.offset = offset
        self.reason = reason


class IncompleteRecordingError(ReplayError):
    """The recording lacks events a replay needs (retention expired, topic deleted, episode cut off)."""

    def __init__(self, what: str, problems: list[str]) -> None:
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"{what} is incomplete:\n{lines}")
        self.what = what
        self.problems = problems


class NothingSelectedError(ReplayError):
    """The selection matched no event at all."""
